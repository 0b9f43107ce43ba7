//! tower-sessions' `MemoryStore`, measured as the library measures its own: resident bytes
//! per live session with 1,000,000 sessions.
//!
//! The library's test (`rss_per_session_of_a_million_sessions` in
//! `tests/suite/memory_store.rs`) asserts that sessionware's store takes at most
//! [`SESSIONWARE_BOUND`] bytes per session, half of what tower-sessions took when the bound
//! was set. This one checks that the bound is still half of tower-sessions' figure. It is
//! the only test of this binary, so no other test shares the process, and it is ignored by
//! default because it allocates about 450 MB:
//!
//! ```text
//! cargo test -p sessionware-bench --test memory -- --ignored --nocapture
//! ```

use sessionware_bench::resident_bytes;
use sessionware_bench::stores::TowerStore;

const MILLION: usize = 1_000_000;

/// The library test's bound on sessionware's bytes per session.
const SESSIONWARE_BOUND: u64 = 207;

#[tokio::test]
#[ignore = "allocates about 450 MB; run alone to measure"]
async fn rss_per_session_of_a_million_tower_sessions() {
    let before = resident_bytes();
    let store = TowerStore::filled(MILLION, false).await;
    let per_session = resident_bytes().saturating_sub(before) / MILLION as u64;
    drop(store);
    println!("tower-sessions MemoryStore: {per_session} bytes per session (RSS)");
    assert!(
        per_session >= 2 * SESSIONWARE_BOUND,
        "tower-sessions takes {per_session} bytes per session: sessionware's bound of \
         {SESSIONWARE_BOUND} is no longer half of it"
    );
}
