//! A store-independent acceptance suite for [`SessionStore`] implementations.
//!
//! Every store shipped with this crate passes it against a real backend, and a third-party
//! store can run it the same way:
//!
//! ```ignore
//! #[tokio::test]
//! async fn my_store_conforms() {
//!     let store = MyStore::connect("...").await.unwrap();
//!     sessionware::store::conformance::run_all(&store).await;
//! }
//! ```
//!
//! Each check uses fresh random keys and user names, so the suite can run against a store
//! shared with other tests or other runs. Checks panic with a message naming the broken
//! guarantee. Times in the records it writes are whole milliseconds; stores must give them
//! back exactly at that precision.

use std::collections::HashSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

mod expiry;
mod index;
mod races;
mod records;
mod rotation;

pub use self::expiry::{delete_expired_purges_only_expired, expired_records_are_never_returned};
pub use self::index::{user_index_follows_rotation_and_user_change, user_index_lists_and_revokes};
pub use self::races::{
    concurrent_creates_admit_one_winner, concurrent_saves_admit_one_winner,
    immediate_futures_are_ready, ping_answers_when_the_store_is_up,
};
pub use self::records::{
    create_never_overwrites, create_then_load_round_trips, delete_removes,
    labels_are_kept_verbatim, load_of_missing_key, save_is_compare_and_swap, save_never_recreates,
    touch_extends_without_rewriting, touch_refuses_a_stale_version,
};
pub use self::rotation::{
    rotate_moves_in_one_step, rotate_refuses_conflicts_and_collisions,
    rotation_leaves_a_short_lived_marker,
};

use crate::id::{SessionHandle, SessionId, StoreKey};
use crate::store::{
    CreateOutcome, LoadOutcome, ROTATION_MARKER_LIFETIME, Record, RotateOutcome, SaveOutcome,
    SessionStore, TouchOutcome, UserIndex,
};

/// Runs every check of the suite against `store`.
///
/// Run it on a multi-threaded tokio runtime (`#[tokio::test(flavor = "multi_thread")]`)
/// so that the racing checks really race.
pub async fn run_all<S: SessionStore + Clone>(store: &S) {
    load_of_missing_key(store).await;
    create_then_load_round_trips(store).await;
    create_never_overwrites(store).await;
    save_is_compare_and_swap(store).await;
    save_never_recreates(store).await;
    touch_extends_without_rewriting(store).await;
    touch_refuses_a_stale_version(store).await;
    delete_removes(store).await;
    rotate_moves_in_one_step(store).await;
    rotate_refuses_conflicts_and_collisions(store).await;
    rotation_leaves_a_short_lived_marker(store).await;
    expired_records_are_never_returned(store).await;
    delete_expired_purges_only_expired(store).await;
    labels_are_kept_verbatim(store).await;
    if store.user_index().is_some() {
        user_index_lists_and_revokes(store).await;
        user_index_follows_rotation_and_user_change(store).await;
    }
    concurrent_saves_admit_one_winner(store).await;
    concurrent_creates_admit_one_winner(store).await;
    immediate_futures_are_ready(store).await;
    ping_answers_when_the_store_is_up(store).await;
}

/// The store's per-user index; the index checks run only on stores that have one.
fn index<S: SessionStore + ?Sized>(store: &S) -> &dyn UserIndex {
    store
        .user_index()
        .expect("the index checks run only on stores with a per-user index")
}

/// A fresh random store key.
pub fn fresh_key() -> StoreKey {
    SessionId::generate().store_key()
}

/// A user name no other check or run uses.
pub fn fresh_user() -> String {
    format!(
        "user-{}",
        fresh_key().to_hex().get(..16).unwrap_or_default()
    )
}

/// The current time, truncated to whole milliseconds.
pub fn now_millis() -> SystemTime {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    UNIX_EPOCH + Duration::from_millis(u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
}

/// A live record (expiring in an hour) holding `data` as its JSON data.
pub fn sample_record(user: Option<&str>, data: &str) -> Record {
    let now = now_millis();
    Record {
        version: 1,
        user: user.map(str::to_owned),
        created_at: now,
        last_active: now,
        expires_at: now + Duration::from_secs(3600),
        expiry: None,
        data: data.as_bytes().to_vec(),
        label: None,
    }
}

async fn found<S: SessionStore>(store: &S, key: &StoreKey, now: SystemTime) -> Option<Record> {
    match store.load(key, now).await.expect("load failed") {
        LoadOutcome::Found(record) => Some(record),
        LoadOutcome::Expired | LoadOutcome::Missing | LoadOutcome::Moved => None,
    }
}
