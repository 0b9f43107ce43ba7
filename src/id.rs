//! Session IDs, the store keys derived from them, and opaque handles.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng as _;
use sha2::{Digest as _, Sha256};
use zeroize::Zeroize;

/// Length of a session ID in bytes (256 bits).
pub(crate) const ID_LEN: usize = 32;

/// A session ID: 256 bits from the thread-local CSPRNG, which the OS seeds.
///
/// It encodes nothing (no user, time or counter), never leaves the crate except inside a
/// signed cookie value, and has no `Debug` output that shows it.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct SessionId([u8; ID_LEN]);

impl SessionId {
    /// Draws a fresh ID from `rand::rng()`, a ChaCha generator seeded (and periodically
    /// reseeded) from the operating system.
    pub(crate) fn generate() -> Self {
        let mut bytes = [0u8; ID_LEN];
        rand::rng().fill_bytes(&mut bytes);
        Self(bytes)
    }

    pub(crate) fn from_bytes(bytes: [u8; ID_LEN]) -> Self {
        Self(bytes)
    }

    pub(crate) fn as_bytes(&self) -> &[u8; ID_LEN] {
        &self.0
    }

    /// The key the store files this session under: SHA-256 of the ID.
    pub(crate) fn store_key(&self) -> StoreKey {
        StoreKey(Sha256::digest(self.0).into())
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionId(<redacted>)")
    }
}

impl Drop for SessionId {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// The key under which a store files a session: SHA-256 of the session ID.
///
/// # Security
///
/// A store key cannot be turned back into a session ID, and a store key presented as a
/// cookie is rejected (it carries no valid signature). A dump of a store therefore yields no
/// usable cookie.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StoreKey([u8; 32]);

impl StoreKey {
    /// Builds a store key from its 32 bytes, as a store reads them back.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The key's 32 bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The key as 64 lowercase hex digits, for stores with textual keys.
    pub fn to_hex(&self) -> String {
        let mut out = String::with_capacity(64);
        for byte in self.0 {
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
        out
    }

    /// Parses 64 hex digits (either case) back into a key.
    pub fn from_hex(hex: &str) -> Option<Self> {
        let hex = hex.as_bytes();
        if hex.len() != 64 {
            return None;
        }
        let mut bytes = [0u8; 32];
        for (byte, pair) in bytes.iter_mut().zip(hex.chunks_exact(2)) {
            *byte = (hex_value(pair[0])? << 4) | hex_value(pair[1])?;
        }
        Some(Self(bytes))
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

impl fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoreKey({})", self.to_hex())
    }
}

/// An opaque reference to a stored session, for "your active sessions" pages and for
/// revoking one session.
///
/// It is derived from the [`StoreKey`], never from the session ID: showing it to a user, or
/// putting it into a form, gives nobody a usable cookie. It renders as 43 URL-safe base64
/// characters and parses back with [`FromStr`].
///
/// # Security
///
/// A handle identifies a session but does not prove ownership. Before revoking a handle that
/// came from a request, check that it is among [`sessions_of`](crate::UserIndex::sessions_of)
/// the logged-in user.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionHandle(StoreKey);

impl SessionHandle {
    /// The handle of the session filed under `key`.
    pub const fn from_store_key(key: StoreKey) -> Self {
        Self(key)
    }

    /// The store key this handle refers to.
    pub const fn store_key(&self) -> &StoreKey {
        &self.0
    }
}

impl fmt::Debug for SessionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionHandle({self})")
    }
}

impl fmt::Display for SessionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 43];
        let written = URL_SAFE_NO_PAD
            .encode_slice(self.0.as_bytes(), &mut buf)
            .map_err(|_| fmt::Error)?;
        f.write_str(std::str::from_utf8(&buf[..written]).map_err(|_| fmt::Error)?)
    }
}

/// The error returned when a string is not a valid [`SessionHandle`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidHandle;

impl fmt::Display for InvalidHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a session handle (expected 43 URL-safe base64 characters)")
    }
}

impl std::error::Error for InvalidHandle {}

/// Serialized as its text form (43 URL-safe base64 characters), so that a handle can go to
/// a page or an API as it is and come back in a form or a JSON body.
impl serde::Serialize for SessionHandle {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for SessionHandle {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl FromStr for SessionHandle {
    type Err = InvalidHandle;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        decode_32(s.as_bytes())
            .map(|bytes| Self(StoreKey(bytes)))
            .ok_or(InvalidHandle)
    }
}

/// Decodes exactly 43 URL-safe base64 characters (no padding) into 32 bytes.
pub(crate) fn decode_32(encoded: &[u8]) -> Option<[u8; 32]> {
    if encoded.len() != 43 {
        return None;
    }
    let mut out = [0u8; 32];
    // 43 characters carry 258 bits; the decoder rejects non-zero trailing bits, so every
    // 32-byte value has exactly one accepted encoding.
    match URL_SAFE_NO_PAD.decode_slice(encoded, &mut out) {
        Ok(32) => Some(out),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn s01_ids_are_256_bit_and_unique_over_a_million() {
        let mut seen = HashSet::with_capacity(1_000_000);
        for _ in 0..1_000_000 {
            let id = SessionId::generate();
            assert_eq!(id.as_bytes().len() * 8, 256);
            assert!(seen.insert(*id.as_bytes()), "duplicate session ID");
        }
    }

    #[test]
    fn s02_ids_encode_no_counter_or_time() {
        // Consecutive IDs share no common prefix or suffix beyond chance, and each byte
        // position takes many values: nothing sequential or time-based is embedded.
        let ids: Vec<_> = (0..4096).map(|_| SessionId::generate()).collect();
        for position in 0..ID_LEN {
            let distinct: HashSet<u8> = ids.iter().map(|id| id.as_bytes()[position]).collect();
            assert!(distinct.len() > 200, "byte {position} is not random");
        }
        let shared_prefix = ids
            .windows(2)
            .filter(|pair| pair[0].as_bytes()[..4] == pair[1].as_bytes()[..4])
            .count();
        assert_eq!(shared_prefix, 0);
    }

    #[test]
    fn store_key_is_sha256_of_id_and_differs_from_it() {
        let id = SessionId::generate();
        let key = id.store_key();
        assert_eq!(
            key.as_bytes(),
            &<[u8; 32]>::from(Sha256::digest(id.as_bytes()))
        );
        assert_ne!(key.as_bytes(), id.as_bytes());
    }

    #[test]
    fn hex_round_trips() {
        let key = SessionId::generate().store_key();
        assert_eq!(StoreKey::from_hex(&key.to_hex()), Some(key));
        assert_eq!(StoreKey::from_hex("zz"), None);
        assert_eq!(StoreKey::from_hex(&"g".repeat(64)), None);
    }

    #[test]
    fn a_handle_serializes_as_its_text_and_back() {
        let handle = SessionHandle::from_store_key(SessionId::generate().store_key());
        let json = serde_json::to_string(&handle).expect("serializes");
        assert_eq!(json, format!("\"{handle}\""));
        let back: SessionHandle = serde_json::from_str(&json).expect("deserializes");
        assert_eq!(back, handle);
        assert!(serde_json::from_str::<SessionHandle>("\"not a handle\"").is_err());
        assert!(serde_json::from_str::<SessionHandle>("42").is_err());
    }

    #[test]
    fn handle_round_trips_and_rejects_garbage() {
        let handle = SessionHandle::from_store_key(SessionId::generate().store_key());
        let text = handle.to_string();
        assert_eq!(text.len(), 43);
        assert_eq!(text.parse::<SessionHandle>(), Ok(handle));
        assert!("short".parse::<SessionHandle>().is_err());
        assert!("!".repeat(43).parse::<SessionHandle>().is_err());
    }

    #[test]
    fn s11_debug_does_not_show_the_id() {
        let id = SessionId::from_bytes([0xab; 32]);
        let shown = format!("{id:?}");
        assert!(!shown.contains("ab"), "{shown}");
        assert!(!shown.contains("171"), "{shown}");
    }
}
