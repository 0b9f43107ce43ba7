//! Sealing bytes with XChaCha20-Poly1305 under keys derived from a layer's [`Key`](crate::Key):
//! the whole session in a sealed cookie (`cookie-store`), and session values sealed before
//! they reach a store (`encryption`).
//!
//! Each purpose has a key of its own, derived from the secret with HKDF-SHA256 and a label
//! naming the purpose, so that a value sealed for one purpose never opens as the other, and
//! neither shares a key with the HMAC that signs session IDs. Nonces are 192 bits drawn at
//! random for every seal: at that size random nonces do not collide in any number of
//! messages a key will ever seal, which is why XChaCha20 rather than AES-GCM, whose 96-bit
//! nonces do not allow that.

use chacha20poly1305::{AeadInOut as _, KeyInit as _, Tag, XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use rand::Rng as _;
use sha2::Sha256;
use zeroize::Zeroizing;

/// The first byte of every sealed value: the layout below. A later layout gets a new byte.
const FORMAT: u8 = 1;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

/// What sealing adds to a plaintext: the format byte, the nonce and the tag.
pub(crate) const SEAL_OVERHEAD: usize = 1 + NONCE_LEN + TAG_LEN;

/// What a derived key is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// A whole session in a cookie.
    #[cfg(feature = "cookie-store")]
    Cookie,
    /// A session's values in a store.
    #[cfg(feature = "encryption")]
    Data,
}

impl Purpose {
    /// The HKDF `info` label of the purpose.
    fn label(self) -> &'static [u8] {
        match self {
            #[cfg(feature = "cookie-store")]
            Self::Cookie => b"sessionware/sealed-cookie/v1",
            #[cfg(feature = "encryption")]
            Self::Data => b"sessionware/data-at-rest/v1",
        }
    }
}

/// An XChaCha20-Poly1305 key for one [`Purpose`]; wiped on drop (the cipher zeroizes its key).
#[derive(Clone)]
pub(crate) struct SealKey {
    cipher: XChaCha20Poly1305,
}

impl SealKey {
    /// The key for `purpose` derived from a [`Key`](crate::Key)'s `secret`.
    pub(crate) fn derive(secret: &[u8], purpose: Purpose) -> Self {
        let mut okm = Zeroizing::new([0u8; 32]);
        Hkdf::<Sha256>::new(None, secret)
            .expand(purpose.label(), okm.as_mut())
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        Self {
            cipher: XChaCha20Poly1305::new(&(*okm).into()),
        }
    }

    /// `plaintext` sealed: the format byte, a fresh random nonce, the ciphertext and its tag.
    /// `aad` is authenticated with it but not part of it: opening needs the same `aad`.
    pub(crate) fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let mut sealed = Vec::with_capacity(SEAL_OVERHEAD + plaintext.len());
        sealed.push(FORMAT);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(plaintext);
        let tag = self
            .cipher
            .encrypt_inout_detached(
                &XNonce::from(nonce),
                aad,
                (&mut sealed[1 + NONCE_LEN..]).into(),
            )
            .expect("XChaCha20-Poly1305 seals up to 256 GiB");
        sealed.extend_from_slice(&tag);
        sealed
    }

    /// The plaintext of `sealed`, or `None` if it was not sealed by this key with this `aad`
    /// (tampered with, truncated, another key, another layout).
    pub(crate) fn open(&self, sealed: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < SEAL_OVERHEAD || sealed[0] != FORMAT {
            return None;
        }
        let (nonce, rest) = sealed[1..].split_at(NONCE_LEN);
        let (ciphertext, tag) = rest.split_at(rest.len() - TAG_LEN);
        let nonce = XNonce::try_from(nonce).ok()?;
        let tag = Tag::try_from(tag).ok()?;
        let mut plaintext = ciphertext.to_vec();
        self.cipher
            .decrypt_inout_detached(&nonce, aad, plaintext.as_mut_slice().into(), &tag)
            .ok()?;
        Some(plaintext)
    }
}

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn purpose() -> Purpose {
        #[cfg(feature = "cookie-store")]
        return Purpose::Cookie;
        #[cfg(not(feature = "cookie-store"))]
        return Purpose::Data;
    }

    #[test]
    fn seals_and_opens_with_the_same_key_and_aad_only() {
        let key = SealKey::derive(&[7; 32], purpose());
        let sealed = key.seal(b"secret values", b"aad");
        assert_eq!(sealed.len(), SEAL_OVERHEAD + b"secret values".len());
        assert!(
            !sealed
                .windows(b"secret".len())
                .any(|window| window == b"secret")
        );
        assert_eq!(
            key.open(&sealed, b"aad").as_deref(),
            Some(&b"secret values"[..])
        );
        assert_eq!(key.open(&sealed, b"other aad"), None);
        let other = SealKey::derive(&[8; 32], purpose());
        assert_eq!(other.open(&sealed, b"aad"), None);
        // Every bit of the sealed value is covered: flip each and it no longer opens.
        for at in 0..sealed.len() {
            let mut tampered = sealed.clone();
            tampered[at] ^= 0x01;
            assert_eq!(key.open(&tampered, b"aad"), None, "byte {at}");
        }
        for len in 0..sealed.len() {
            assert_eq!(key.open(&sealed[..len], b"aad"), None, "truncated to {len}");
        }
    }

    #[test]
    fn every_seal_draws_a_fresh_nonce() {
        let key = SealKey::derive(&[7; 32], purpose());
        let a = key.seal(b"same", b"");
        let b = key.seal(b"same", b"");
        assert_ne!(a, b);
        assert_ne!(a[1..1 + NONCE_LEN], b[1..1 + NONCE_LEN]);
    }

    #[cfg(all(feature = "cookie-store", feature = "encryption"))]
    #[test]
    fn the_purposes_have_keys_of_their_own() {
        let cookie = SealKey::derive(&[7; 32], Purpose::Cookie);
        let data = SealKey::derive(&[7; 32], Purpose::Data);
        let sealed = cookie.seal(b"values", b"");
        assert_eq!(data.open(&sealed, b""), None);
    }
}
