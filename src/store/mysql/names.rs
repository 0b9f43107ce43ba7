//! Table names: the only text ever spliced into the store's SQL.

use crate::config::ConfigError;

/// MySQL's and MariaDB's limit on the length of a table name, in characters.
pub(super) const MAX_IDENTIFIER_LEN: usize = 64;

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
                "{name:?} is not a plain MySQL identifier: use an ASCII letter or `_` \
                 followed by ASCII letters, digits or `_`, at most {MAX_IDENTIFIER_LEN} bytes"
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_plain_names_only() {
        for good in ["sessions", "_private", "App_Sessions2", &"a".repeat(64)] {
            assert!(check_identifier("table", good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "1abc",
            "a;drop table x",
            "a`b",
            "a b",
            "a-b",
            "é",
            &"a".repeat(65),
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
                error.to_string().contains("plain MySQL identifier"),
                "{error}"
            );
        }
    }
}
