//! Table and index names: the only text ever spliced into the store's SQL.

use crate::config::ConfigError;

/// Refuses anything but a plain identifier that SQLite lets an application use: the name is
/// formatted into SQL, and names starting with `sqlite_` are reserved by SQLite itself.
pub(super) fn check_identifier(kind: &'static str, name: &str) -> Result<(), ConfigError> {
    let mut bytes = name.bytes();
    let plain = bytes
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == b'_')
        && bytes.all(|byte| byte.is_ascii_alphanumeric() || byte == b'_');
    let reserved = name
        .get(..7)
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case("sqlite_"));
    if plain && !reserved {
        return Ok(());
    }
    Err(ConfigError::InvalidStoreSetting {
        setting: kind,
        reason: format!(
            "{name:?} is not a plain SQLite identifier: use an ASCII letter or `_` followed \
             by ASCII letters, digits or `_`, not starting with the reserved `sqlite_`"
        ),
    })
}

/// The name of one of the table's indexes. SQLite does not shorten names, so the table
/// name and a suffix always stay distinct.
pub(super) fn index_name(table: &str, suffix: &str) -> String {
    format!("{table}_{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_plain_names_only() {
        for good in ["sessions", "_private", "App_Sessions2", "sqlite", "sqlitex"] {
            assert!(check_identifier("table", good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "1abc",
            "a;drop table x",
            "a\"b",
            "a b",
            "é",
            "sqlite_x",
            "SQLite_x",
        ] {
            let error = check_identifier("table", bad).expect_err(bad);
            assert!(
                error.to_string().contains("plain SQLite identifier"),
                "{error}"
            );
        }
    }
}
