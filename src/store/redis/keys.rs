//! Key names: the session hashes and the per-user indexes (see "Layout" on
//! [`RedisStore`](super::RedisStore)).

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::id::StoreKey;

/// The longest grace kept, in milliseconds: 2^53 - 1, the largest integer a Lua number (a
/// double) holds exactly, as for every time the store writes.
const MAX_GRACE_MILLIS: u64 = (1 << 53) - 1;

/// Key names and the expiry grace, shared by the clones of one store.
pub(super) struct KeyLayout {
    pub(super) prefix: String,
    /// `{prefix}s:`, the start of every session key.
    pub(super) session_prefix: String,
    pub(super) grace_millis: u64,
}

impl KeyLayout {
    pub(super) fn new(prefix: String, expiry_grace: Duration) -> Self {
        Self {
            session_prefix: format!("{prefix}s:"),
            prefix,
            grace_millis: u64::try_from(expiry_grace.as_millis())
                .unwrap_or(MAX_GRACE_MILLIS)
                .min(MAX_GRACE_MILLIS),
        }
    }

    pub(super) fn session_key(&self, key: &StoreKey) -> String {
        format!("{}{}", self.session_prefix, key.to_hex())
    }

    pub(super) fn index_key(&self, user: &str) -> String {
        format!("{}u:{}", self.prefix, URL_SAFE_NO_PAD.encode(user))
    }

    /// A `SCAN MATCH` pattern for every session key, with the prefix's glob characters
    /// escaped so that a prefix such as `app[1]:` matches only itself.
    pub(super) fn session_pattern(&self) -> String {
        let mut pattern = String::with_capacity(self.session_prefix.len() + 2);
        for c in self.session_prefix.chars() {
            if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push('*');
        pattern
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::redis::DEFAULT_EXPIRY_GRACE;

    fn layout(prefix: &str) -> KeyLayout {
        KeyLayout::new(prefix.to_owned(), DEFAULT_EXPIRY_GRACE)
    }

    #[test]
    fn key_names_follow_the_documented_layout() {
        let layout = layout("app:");
        let key = StoreKey::from_bytes([0xab; 32]);
        assert_eq!(
            layout.session_key(&key),
            format!("app:s:{}", "ab".repeat(32))
        );
        assert_eq!(layout.index_key("alice"), "app:u:YWxpY2U");
    }

    #[test]
    fn user_names_cannot_escape_their_key() {
        let layout = layout("app:");
        for user in ["a:b", "*", "x\ny", "../s:", "ünï", ""] {
            let index = layout.index_key(user);
            let encoded = index.strip_prefix("app:u:").unwrap_or_default();
            assert!(
                encoded
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "{index}"
            );
        }
        assert_ne!(layout.index_key("a"), layout.index_key("a "));
    }

    #[test]
    fn scan_pattern_escapes_glob_characters() {
        assert_eq!(layout("app:").session_pattern(), "app:s:*");
        assert_eq!(layout(r"a*[?]\:").session_pattern(), r"a\*\[\?\]\\:s:*");
    }
}
