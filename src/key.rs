//! Signing keys, cookie-value signing and verification, and key rotation.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, KeyInit as _, Mac as _};
use rand::Rng as _;
use sha2::Sha256;
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

use crate::config::ConfigError;
#[cfg(any(feature = "cookie-store", feature = "encryption"))]
use crate::crypto::{Purpose, SealKey};
use crate::id::{ID_LEN, SessionId, decode_32};

/// The shortest secret a [`Key`] accepts, in bytes.
pub const MIN_KEY_LEN: usize = 32;

/// The purpose label mixed into every session tag, so that a value this key signs for
/// another purpose (a CSRF token, say) never passes as a session cookie. Kept at 22 bytes so
/// that label and ID fit one SHA-256 block together with the padding.
const SESSION_PURPOSE: &[u8] = b"sessionware/session/v1";

/// Length of an encoded cookie value: 43 characters of ID, `.`, 43 characters of tag.
pub(crate) const COOKIE_VALUE_LEN: usize = 43 + 1 + 43;

type HmacSha256 = Hmac<Sha256>;

// `Key` wipes its secret on drop through its fields. `Hmac` does not implement
// `ZeroizeOnDrop` itself, but everything it owns does when `hmac` and `sha2` are built with
// their `zeroize` features: the two pre-keyed SHA-256 cores (inner and outer pad) and the
// block buffer. These bounds stop the build if a dependency update or a lost feature flag
// ever takes that away.
// (Compiled in every build; the S39 test calls it.)
#[cfg_attr(not(test), allow(dead_code))]
fn key_material_is_wiped_on_drop() {
    fn wiped_on_drop<T: zeroize::ZeroizeOnDrop>() {}
    wiped_on_drop::<<Sha256 as hmac::EagerHash>::Core>();
    wiped_on_drop::<hmac::digest::block_api::Buffer<hmac::block_api::HmacCore<Sha256>>>();
    // The store key's hash runs over the raw ID: its state is wiped too.
    wiped_on_drop::<Sha256>();
}

/// A secret key that signs session cookies with HMAC-SHA256.
///
/// # Security
///
/// The key must hold at least 32 bytes of secret randomness; shorter keys are refused. The
/// secret is never shown by `Debug`, and the key's state (the HMAC state keyed with the
/// secret, and each copy of it made to sign or verify a value) is zeroized when dropped.
/// Keep it out of source control: load it with [`Key::from_env`] or [`Key::from_base64`].
///
/// With the `cookie-store` or `encryption` feature, the key also derives (with HKDF-SHA256,
/// one label per purpose) the XChaCha20-Poly1305 keys that seal cookie sessions and session
/// values at rest: one secret to keep and rotate, and no derived key opens what another
/// sealed or signs what the HMAC signs.
///
/// To rotate, make the new key current and pass the old one to
/// [`SessionLayer::previous_keys`](crate::SessionLayer::previous_keys): cookies signed with it
/// keep working and are re-issued under the new key.
#[derive(Clone)]
pub struct Key {
    /// HMAC state keyed with the secret and already fed the purpose label, so signing a
    /// value costs one clone and two SHA-256 compressions.
    session_mac: HmacSha256,
    /// Seals whole sessions into cookies.
    #[cfg(feature = "cookie-store")]
    cookie_seal: SealKey,
    /// Seals session values before they reach a store.
    #[cfg(feature = "encryption")]
    data_seal: SealKey,
}

impl Key {
    /// Builds a key from raw secret bytes; fails if there are fewer than 32.
    pub fn from_bytes(secret: &[u8]) -> Result<Self, ConfigError> {
        if secret.len() < MIN_KEY_LEN {
            return Err(ConfigError::KeyTooShort { len: secret.len() });
        }
        // HMAC accepts keys of any length; this cannot fail.
        let mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
        let mut session_mac = mac;
        session_mac.update(SESSION_PURPOSE);
        Ok(Self {
            session_mac,
            #[cfg(feature = "cookie-store")]
            cookie_seal: SealKey::derive(secret, Purpose::Cookie),
            #[cfg(feature = "encryption")]
            data_seal: SealKey::derive(secret, Purpose::Data),
        })
    }

    /// Decodes a base64 secret (standard or URL-safe alphabet, padding optional).
    pub fn from_base64(encoded: &str) -> Result<Self, ConfigError> {
        Self::decode_base64(encoded, "base64 input")
    }

    /// Reads a base64 secret from the environment variable `name`.
    ///
    /// ```no_run
    /// let key = sessionware::Key::from_env("SESSION_KEY")?;
    /// # Ok::<(), sessionware::ConfigError>(())
    /// ```
    pub fn from_env(name: &str) -> Result<Self, ConfigError> {
        let value =
            Zeroizing::new(
                std::env::var(name).map_err(|err| ConfigError::KeyUnreadable {
                    source_name: format!("environment variable {name}"),
                    reason: err.to_string(),
                })?,
            );
        Self::decode_base64(&value, &format!("environment variable {name}"))
    }

    /// Reads the previous keys, for [`SessionLayer::previous_keys`], from the environment
    /// variable `name`: base64 secrets separated by commas or whitespace (neither occurs in
    /// base64), newest first. An unset or empty variable means no previous key, the usual
    /// state between two rotations.
    ///
    /// ```no_run
    /// use sessionware::{Key, MemoryStore, SessionLayer};
    ///
    /// let layer = SessionLayer::new(MemoryStore::new(), Key::from_env("SESSION_KEY")?)
    ///     .previous_keys(Key::previous_from_env("SESSION_PREVIOUS_KEYS")?);
    /// # Ok::<(), sessionware::ConfigError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ConfigError::KeyUnreadable`], naming the variable and the entry (counted from 1),
    /// if an entry is not base64 or holds fewer than 32 bytes, or if the variable is not
    /// valid Unicode.
    ///
    /// [`SessionLayer::previous_keys`]: crate::SessionLayer::previous_keys
    pub fn previous_from_env(name: &str) -> Result<Vec<Self>, ConfigError> {
        let value = match std::env::var(name) {
            Ok(value) => Zeroizing::new(value),
            Err(std::env::VarError::NotPresent) => return Ok(Vec::new()),
            Err(err) => {
                return Err(ConfigError::KeyUnreadable {
                    source_name: format!("environment variable {name}"),
                    reason: err.to_string(),
                });
            }
        };
        Self::list_from_text(&value, &format!("environment variable {name}"))
    }

    /// The keys in `text`, separated by commas or whitespace; `source_name` says where the
    /// text came from in the errors.
    fn list_from_text(text: &str, source_name: &str) -> Result<Vec<Self>, ConfigError> {
        text.split(|c: char| c == ',' || c.is_whitespace())
            .filter(|entry| !entry.is_empty())
            .enumerate()
            .map(|(index, entry)| {
                let entry_name = format!("{source_name}, entry {}", index + 1);
                Self::decode_base64(entry, &entry_name).map_err(|error| match error {
                    ConfigError::KeyTooShort { len } => ConfigError::KeyUnreadable {
                        source_name: entry_name,
                        reason: format!(
                            "{len} bytes, but a key needs at least {MIN_KEY_LEN}: make one \
                             with `openssl rand -base64 32`"
                        ),
                    },
                    error => error,
                })
            })
            .collect()
    }

    /// Generates a fresh random 32-byte key from the OS-seeded CSPRNG.
    ///
    /// Sessions signed with it do not survive a restart; use it for tests and development.
    pub fn generate() -> Self {
        let mut secret = Zeroizing::new([0u8; MIN_KEY_LEN]);
        rand::rng().fill_bytes(secret.as_mut());
        Self::from_bytes(secret.as_ref()).expect("32 bytes is long enough")
    }

    /// Generates a fresh key and returns it with its base64 encoding, so that a development
    /// setup can print it once and reuse it.
    pub fn generate_base64() -> (Self, String) {
        let mut secret = Zeroizing::new([0u8; MIN_KEY_LEN]);
        rand::rng().fill_bytes(secret.as_mut());
        let key = Self::from_bytes(secret.as_ref()).expect("32 bytes is long enough");
        (key, STANDARD.encode(secret.as_ref()))
    }

    fn decode_base64(encoded: &str, source_name: &str) -> Result<Self, ConfigError> {
        let trimmed = encoded.trim();
        let unpadded = trimmed.trim_end_matches('=');
        let decoded = if unpadded.contains(['-', '_']) {
            URL_SAFE_NO_PAD.decode(unpadded)
        } else {
            base64::engine::general_purpose::STANDARD_NO_PAD.decode(unpadded)
        };
        let secret = Zeroizing::new(decoded.map_err(|err| ConfigError::KeyUnreadable {
            source_name: source_name.to_owned(),
            reason: format!("not base64 ({err})"),
        })?);
        Self::from_bytes(&secret)
    }

    /// The session tag of `id`: HMAC-SHA256(key, purpose label ‖ id).
    fn session_tag(&self, id: &[u8; ID_LEN]) -> [u8; 32] {
        let mut mac = self.session_mac.clone();
        mac.update(id);
        mac.finalize().into_bytes().into()
    }

    /// The sealing key this key derives for `purpose`.
    #[cfg(any(feature = "cookie-store", feature = "encryption"))]
    fn seal_key(&self, purpose: Purpose) -> &SealKey {
        match purpose {
            #[cfg(feature = "cookie-store")]
            Purpose::Cookie => &self.cookie_seal,
            #[cfg(feature = "encryption")]
            Purpose::Data => &self.data_seal,
        }
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(<redacted>)")
    }
}

/// The current key and the previous ones still accepted during a rotation.
#[derive(Clone)]
pub(crate) struct Keyring {
    current: Key,
    previous: Vec<Key>,
}

/// Which key verified a cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SignedWith {
    Current,
    Previous,
}

impl Keyring {
    pub(crate) fn new(current: Key) -> Self {
        Self {
            current,
            previous: Vec::new(),
        }
    }

    pub(crate) fn set_previous(&mut self, previous: Vec<Key>) {
        self.previous = previous;
    }

    /// Renders the cookie value of `id`, signed with the current key.
    pub(crate) fn sign(&self, id: &SessionId) -> String {
        let tag = self.current.session_tag(id.as_bytes());
        let mut buf = [0u8; COOKIE_VALUE_LEN];
        let id_len = URL_SAFE_NO_PAD
            .encode_slice(id.as_bytes(), &mut buf[..43])
            .expect("32 bytes encode to 43 characters");
        buf[id_len] = b'.';
        URL_SAFE_NO_PAD
            .encode_slice(tag, &mut buf[44..])
            .expect("32 bytes encode to 43 characters");
        String::from_utf8(buf.to_vec()).expect("base64 is ASCII")
    }

    /// Verifies a cookie value. Returns the ID and which key signed it, or `None` for
    /// anything malformed, forged or signed with a key that is no longer accepted.
    ///
    /// Cost: a length check, two 43-character base64 decodes into stack buffers, and one
    /// HMAC per key tried (the current key first). No allocation.
    pub(crate) fn verify(&self, value: &[u8]) -> Option<(SessionId, SignedWith)> {
        if value.len() != COOKIE_VALUE_LEN || value[43] != b'.' {
            return None;
        }
        let id = SessionId::from_bytes(decode_32(&value[..43])?);
        // Not zeroized: the tag is no more secret than the cookie it was decoded from, whose
        // bytes stay in the request's headers; wiping this copy protects nothing and took
        // 32 volatile writes per request.
        let tag = decode_32(&value[44..])?;
        if tags_equal(&self.current.session_tag(id.as_bytes()), &tag) {
            return Some((id, SignedWith::Current));
        }
        for key in &self.previous {
            if tags_equal(&key.session_tag(id.as_bytes()), &tag) {
                return Some((id, SignedWith::Previous));
            }
        }
        None
    }

    /// `plaintext` sealed for `purpose` under the current key.
    #[cfg(any(feature = "cookie-store", feature = "encryption"))]
    pub(crate) fn seal(&self, purpose: Purpose, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        self.current.seal_key(purpose).seal(plaintext, aad)
    }

    /// The plaintext of a value sealed for `purpose` under the current key or a previous
    /// one, and which one it was.
    #[cfg(any(feature = "cookie-store", feature = "encryption"))]
    pub(crate) fn open(
        &self,
        purpose: Purpose,
        sealed: &[u8],
        aad: &[u8],
    ) -> Option<(Vec<u8>, SignedWith)> {
        if let Some(plaintext) = self.current.seal_key(purpose).open(sealed, aad) {
            return Some((plaintext, SignedWith::Current));
        }
        self.previous.iter().find_map(|key| {
            let plaintext = key.seal_key(purpose).open(sealed, aad)?;
            Some((plaintext, SignedWith::Previous))
        })
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("current", &self.current)
            .field("previous", &self.previous.len())
            .finish()
    }
}

/// Compares two tags in constant time (`subtle`), so that the time taken reveals nothing
/// about how many leading bytes of a forged tag were right. Compared as four 64-bit words:
/// the same guarantee as byte by byte, and cheaper, since `subtle` puts an optimisation
/// barrier in each comparison and each `&`, which here is once a word instead of once a byte.
fn tags_equal(expected: &[u8; 32], given: &[u8; 32]) -> bool {
    let words = |tag: &[u8; 32]| -> [u64; 4] {
        let mut words = [0u64; 4];
        for (word, bytes) in words.iter_mut().zip(tag.chunks_exact(8)) {
            let mut chunk = [0u8; 8];
            chunk.copy_from_slice(bytes);
            *word = u64::from_le_bytes(chunk);
        }
        words
    };
    let (expected, given) = (words(expected), words(given));
    let equal = expected[0].ct_eq(&given[0])
        & expected[1].ct_eq(&given[1])
        & expected[2].ct_eq(&given[2])
        & expected[3].ct_eq(&given[3]);
    bool::from(equal)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring() -> Keyring {
        Keyring::new(Key::generate())
    }

    #[test]
    fn previous_keys_are_read_from_a_list_and_errors_name_the_entry() {
        let (old, old_text) = Key::generate_base64();
        let (older, older_text) = Key::generate_base64();
        let id = SessionId::generate();
        let signed_old = Keyring::new(old).sign(&id);
        let signed_older = Keyring::new(older).sign(&id);
        let text = format!(" {old_text},\n{older_text} ,, ");
        let previous = Key::list_from_text(&text, "environment variable PREV").expect("two keys");
        assert_eq!(previous.len(), 2);
        let mut ring = ring();
        ring.set_previous(previous);
        for signed in [signed_old, signed_older] {
            let (verified, _) = ring
                .verify(signed.as_bytes())
                .expect("a previous key verifies");
            assert_eq!(verified.store_key(), id.store_key());
        }
        assert!(Key::list_from_text("  , ", "x").expect("empty").is_empty());

        let bad = format!("{old_text},not*base64");
        let error = Key::list_from_text(&bad, "environment variable PREV").err();
        assert!(
            matches!(&error, Some(ConfigError::KeyUnreadable { source_name, .. })
                if source_name == "environment variable PREV, entry 2"),
            "{error:?}"
        );
        let short = format!("{old_text} {}", STANDARD.encode([7_u8; 16]));
        let error = Key::list_from_text(&short, "environment variable PREV").err();
        match error {
            Some(ConfigError::KeyUnreadable {
                source_name,
                reason,
            }) => {
                assert_eq!(source_name, "environment variable PREV, entry 2");
                assert!(reason.starts_with("16 bytes"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_unset_previous_keys_variable_is_no_previous_key() {
        let name = "SESSIONWARE_TEST_PREVIOUS_KEYS_NEVER_SET";
        assert!(std::env::var_os(name).is_none());
        assert!(
            Key::previous_from_env(name)
                .expect("unset is fine")
                .is_empty()
        );
    }

    #[test]
    fn sign_then_verify_round_trips() {
        let ring = ring();
        let id = SessionId::generate();
        let value = ring.sign(&id);
        assert_eq!(value.len(), COOKIE_VALUE_LEN);
        let (verified, with) = ring.verify(value.as_bytes()).expect("valid");
        assert_eq!(verified, id);
        assert_eq!(with, SignedWith::Current);
    }

    #[test]
    fn s07_tag_comparison_is_constant_time_and_position_independent() {
        // The comparison is `subtle::ConstantTimeEq` on the tag's four 64-bit words, which
        // examines every word whatever the first difference. Check that a difference at any
        // single byte position is rejected and that only the exact tag passes.
        let a = [7u8; 32];
        assert!(tags_equal(&a, &a));
        for position in 0..32 {
            let mut b = a;
            b[position] ^= 1;
            assert!(
                !tags_equal(&a, &b),
                "difference at byte {position} accepted"
            );
        }
    }

    #[test]
    fn s09_value_signed_for_another_purpose_is_not_a_session() {
        let secret = [0x5a; 32];
        let sign_for_purpose = |purpose: &[u8], data: &[u8]| -> [u8; 32] {
            let mut mac = HmacSha256::new_from_slice(&secret).unwrap();
            mac.update(purpose);
            mac.update(data);
            mac.finalize().into_bytes().into()
        };
        let ring = Keyring::new(Key::from_bytes(&secret).unwrap());
        let id = SessionId::generate();
        let tag = sign_for_purpose(b"csrf-token", id.as_bytes());
        let mut value = URL_SAFE_NO_PAD.encode(id.as_bytes());
        value.push('.');
        value.push_str(&URL_SAFE_NO_PAD.encode(tag));
        assert_eq!(value.len(), COOKIE_VALUE_LEN);
        assert!(ring.verify(value.as_bytes()).is_none());
        // An HMAC of the bare ID (no label at all) is rejected too.
        let bare = sign_for_purpose(b"", id.as_bytes());
        let mut value = URL_SAFE_NO_PAD.encode(id.as_bytes());
        value.push('.');
        value.push_str(&URL_SAFE_NO_PAD.encode(bare));
        assert!(ring.verify(value.as_bytes()).is_none());
    }

    #[test]
    fn previous_keys_verify_and_report_it() {
        let old = Key::generate();
        let id = SessionId::generate();
        let old_value = Keyring::new(old.clone()).sign(&id);
        let mut ring = ring();
        assert!(ring.verify(old_value.as_bytes()).is_none());
        ring.set_previous(vec![old]);
        let (verified, with) = ring.verify(old_value.as_bytes()).expect("accepted");
        assert_eq!(verified, id);
        assert_eq!(with, SignedWith::Previous);
    }

    #[test]
    fn short_keys_are_refused() {
        assert_eq!(
            Key::from_bytes(&[1; 31]).unwrap_err(),
            ConfigError::KeyTooShort { len: 31 }
        );
        assert!(Key::from_bytes(&[1; 32]).is_ok());
    }

    #[test]
    fn base64_keys_decode_in_both_alphabets() {
        let (_, encoded) = Key::generate_base64();
        assert!(Key::from_base64(&encoded).is_ok());
        let url = encoded.replace('+', "-").replace('/', "_");
        assert!(Key::from_base64(&url).is_ok());
        assert!(matches!(
            Key::from_base64("not base64!"),
            Err(ConfigError::KeyUnreadable { .. })
        ));
        assert!(matches!(
            Key::from_base64("c2hvcnQ="),
            Err(ConfigError::KeyTooShort { len: 5 })
        ));
    }

    #[test]
    fn s39_key_material_is_zeroized_on_drop() {
        // Checked by the compiler: this fails to build if any part of the keyed state
        // stops wiping itself on drop.
        key_material_is_wiped_on_drop();
    }

    #[test]
    fn debug_is_redacted() {
        let key = Key::from_bytes(&[0x41; 32]).unwrap();
        assert_eq!(format!("{key:?}"), "Key(<redacted>)");
    }
}
