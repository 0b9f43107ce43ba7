//! Schema, table and index names: the only text ever spliced into the store's SQL.

use crate::config::ConfigError;

/// PostgreSQL's `NAMEDATALEN - 1`: longer identifiers are silently truncated by the server.
pub(super) const MAX_IDENTIFIER_LEN: usize = 63;

/// Refuses anything but a plain identifier: the name is formatted into SQL.
pub(super) fn check_identifier(kind: &'static str, name: &str) -> Result<(), ConfigError> {
    let mut bytes = name.bytes();
    let valid = name.len() <= MAX_IDENTIFIER_LEN
        && bytes
            .next()
            .is_some_and(|first| first.is_ascii_alphabetic() || first == b'_')
        && bytes.all(|byte| byte.is_ascii_alphanumeric() || byte == b'_');
    if valid {
        Ok(())
    } else {
        Err(ConfigError::InvalidStoreSetting {
            setting: kind,
            reason: format!(
                "{name:?} is not a plain PostgreSQL identifier: use an ASCII letter or `_` \
                 followed by ASCII letters, digits or `_`, at most {MAX_IDENTIFIER_LEN} bytes"
            ),
        })
    }
}

/// The name of one of the table's indexes. PostgreSQL truncates names to 63 bytes, which
/// could make the two index names equal (or equal to the table's); a long table name is
/// therefore shortened and disambiguated with a stable hash of the full name.
pub(super) fn index_name(table: &str, suffix: &str) -> String {
    let name = format!("{table}_{suffix}");
    if name.len() <= MAX_IDENTIFIER_LEN {
        return name;
    }
    // FNV-1a: stable across Rust and crate versions, unlike `DefaultHasher`, so the name
    // computed by a later release finds the index an earlier one created.
    let hash = table.bytes().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    });
    let keep = MAX_IDENTIFIER_LEN - suffix.len() - 10;
    // `table` is ASCII (checked by `check_identifier`), so any byte index is a char boundary.
    let prefix = table.get(..keep).unwrap_or(table);
    format!("{prefix}_{hash:08x}_{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_plain_names_only() {
        for good in ["sessions", "_private", "App_Sessions2", &"a".repeat(63)] {
            assert!(check_identifier("table", good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "1abc",
            "a;drop table x",
            "a\"b",
            "a b",
            "a-b",
            "é",
            &"a".repeat(64),
        ] {
            let error = check_identifier("table", bad).expect_err(bad);
            assert!(matches!(
                error,
                ConfigError::InvalidStoreSetting {
                    setting: "table",
                    ..
                }
            ));
            assert!(
                error.to_string().contains("plain PostgreSQL identifier"),
                "{error}"
            );
        }
    }

    #[test]
    fn index_names_fit_and_stay_distinct() {
        assert_eq!(
            index_name("sessionware_sessions", "expires_at_idx"),
            "sessionware_sessions_expires_at_idx"
        );
        let long = "t".repeat(63);
        let expires = index_name(&long, "expires_at_idx");
        let user = index_name(&long, "user_id_idx");
        assert!(expires.len() <= MAX_IDENTIFIER_LEN, "{expires}");
        assert!(user.len() <= MAX_IDENTIFIER_LEN, "{user}");
        assert_ne!(expires, user);
        assert_ne!(expires, long);
        let other = format!("{}u", "t".repeat(62));
        assert_ne!(index_name(&other, "expires_at_idx"), expires);
        assert!(check_identifier("index", &expires).is_ok());
    }
}
