//! The hasher of the store's maps, for [`StoreKey`](crate::id::StoreKey)s.

use std::hash::{BuildHasher, Hasher};

/// A hasher for [`StoreKey`](crate::id::StoreKey)s.
///
/// Store keys are SHA-256 digests of 256-bit random IDs chosen by the server: already
/// uniformly distributed, and not choosable by clients (a forged cookie never reaches the
/// store). Eight of their bytes, mixed with a per-store random seed, are therefore a hash as
/// good as any, and cost nothing next to SipHash's full pass over 32 bytes.
#[derive(Clone)]
pub(super) struct KeyHasherBuilder {
    seed: u64,
}

impl KeyHasherBuilder {
    pub(super) fn random() -> Self {
        Self {
            seed: rand::random(),
        }
    }
}

impl BuildHasher for KeyHasherBuilder {
    type Hasher = KeyHasher;

    fn build_hasher(&self) -> KeyHasher {
        KeyHasher { state: self.seed }
    }
}

pub(super) struct KeyHasher {
    state: u64,
}

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut word = [0_u8; 8];
        let take = bytes.len().min(8);
        word[..take].copy_from_slice(&bytes[..take]);
        self.state ^= u64::from_le_bytes(word);
    }

    fn write_usize(&mut self, _length: usize) {
        // Only the constant length prefix of the key's 32 bytes comes through here.
    }

    fn finish(&self) -> u64 {
        self.state
    }
}
