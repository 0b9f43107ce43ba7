//! Entry points of the fuzz targets under `fuzz/` and of the corpus-replay test
//! (`tests/suite/fuzz_corpus.rs`).
//!
//! Not a stable API: hidden from the documentation and free to change at any release. Each
//! function takes arbitrary bytes, never panics on any of them, and panics only when it
//! catches the crate disagreeing with itself (an assertion naming the broken invariant),
//! which is what the fuzzer reports as a crash. [`seeds()`] renders the inputs of the
//! committed seed corpus.

use std::sync::OnceLock;

use crate::id::SessionId;
use crate::key::{Key, Keyring};

mod cookie_header;
mod json_value;
#[cfg(feature = "memory-store")]
mod memory_record;
mod seeds;
#[cfg(feature = "memory-store")]
mod service;

pub use self::cookie_header::cookie_header;
pub use self::json_value::json_value;
#[cfg(feature = "memory-store")]
pub use self::memory_record::memory_record;
pub use self::seeds::seeds;
#[cfg(feature = "memory-store")]
pub use self::service::service;

/// The default session cookie name, which every target looks for.
const COOKIE_NAME: &str = "__Host-session";

/// The secret of the fixed current key of the targets.
const CURRENT_SECRET: [u8; 32] = [0x42; 32];

/// The secret of the previous key that the `service` target's layer still accepts.
#[cfg(feature = "memory-store")]
const PREVIOUS_SECRET: [u8; 32] = [0x17; 32];

/// The ID whose signed cookie value the `cookie_header` target knows.
const FIXED_ID: [u8; 32] = [0x5a; 32];

/// A keyring holding only the key made from `secret`.
fn keyring(secret: &[u8; 32]) -> Keyring {
    Keyring::new(Key::from_bytes(secret).expect("32 bytes is a valid key"))
}

/// The fixed keyring and the value it signs for [`FIXED_ID`].
fn cookie_fixture() -> &'static (Keyring, String) {
    static FIXTURE: OnceLock<(Keyring, String)> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let keys = keyring(&CURRENT_SECRET);
        let signed = keys.sign(&SessionId::from_bytes(FIXED_ID));
        (keys, signed)
    })
}

/// Whether the targets check strictly, without tolerating the known issues (the `known_*`
/// functions of the `json_value` target): set the environment variable
/// `SESSIONWARE_FUZZ_STRICT` to `1`, to list the inputs that hit a known issue or to check
/// its fix.
fn strict() -> bool {
    static STRICT: OnceLock<bool> = OnceLock::new();
    *STRICT.get_or_init(|| std::env::var_os("SESSIONWARE_FUZZ_STRICT").is_some_and(|v| v == "1"))
}
