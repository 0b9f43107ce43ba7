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

/// `load` of a key never written is `Missing`.
pub async fn load_of_missing_key<S: SessionStore>(store: &S) {
    let outcome = store
        .load(&fresh_key(), now_millis())
        .await
        .expect("load failed");
    assert_eq!(outcome, LoadOutcome::Missing, "load of a missing key");
}

/// What `create` writes, `load` returns exactly (all fields, data bytes included).
pub async fn create_then_load_round_trips<S: SessionStore>(store: &S) {
    let key = fresh_key();
    let mut record = sample_record(Some(&fresh_user()), r#"{"a":1,"text":"é \" \\ ünïcode"}"#);
    record.expiry = Some(crate::Expiry::OnInactivity(Duration::from_secs(90)));
    assert_eq!(
        store
            .create(&key, &record, now_millis())
            .await
            .expect("create failed"),
        CreateOutcome::Created
    );
    let loaded = found(store, &key, now_millis()).await;
    assert_eq!(
        loaded.as_ref(),
        Some(&record),
        "load must return what create wrote"
    );

    let key = fresh_key();
    let mut big = String::from("{");
    for i in 0..2000 {
        big.push_str(&format!("\"k{i}\":\"{}\",", "x".repeat(16)));
    }
    big.push_str("\"end\":null}");
    let record = sample_record(None, &big);
    store
        .create(&key, &record, now_millis())
        .await
        .expect("create failed");
    assert_eq!(
        found(store, &key, now_millis()).await.as_ref(),
        Some(&record),
        "a 40 KB record must round-trip"
    );
}

/// A record's label comes back as written from `load` (through `save`, which may change or
/// drop it, and `rotate`), and from `sessions_of` on a store with a per-user index.
pub async fn labels_are_kept_verbatim<S: SessionStore>(store: &S) {
    let (key, new) = (fresh_key(), fresh_key());
    let user = fresh_user();
    let now = now_millis();
    let mut record = sample_record(Some(&user), "{}");
    record.label = Some("Firefox on Linux · ünïcode \"quoted\" =".to_owned());
    store
        .create(&key, &record, now)
        .await
        .expect("create failed");
    assert_eq!(found(store, &key, now).await.as_ref(), Some(&record));
    if let Some(index) = store.user_index() {
        let listed = index
            .sessions_of(&user, now)
            .await
            .expect("sessions_of failed");
        let labels: Vec<Option<&str>> = listed.iter().map(|info| info.label.as_deref()).collect();
        assert_eq!(
            labels,
            [record.label.as_deref()],
            "sessions_of lists the label"
        );
    }
    for (version, label) in [
        (2, None),
        (3, Some(String::new())),
        (4, Some("x".repeat(200))),
    ] {
        let previous = record.version;
        record.version = version;
        record.label = label;
        assert_eq!(
            store
                .save(&key, &record, previous, now)
                .await
                .expect("save failed"),
            SaveOutcome::Saved
        );
        assert_eq!(
            found(store, &key, now).await.as_ref(),
            Some(&record),
            "save must write the label as given"
        );
    }
    let mut moved = record.clone();
    moved.version = 5;
    assert_eq!(
        store
            .rotate(&key, &new, &moved, 4, now)
            .await
            .expect("rotate failed"),
        RotateOutcome::Rotated
    );
    assert_eq!(
        found(store, &new, now).await,
        Some(moved),
        "rotate keeps the label"
    );
}

/// `create` on an occupied key reports a collision and leaves the record untouched.
pub async fn create_never_overwrites<S: SessionStore>(store: &S) {
    let key = fresh_key();
    let original = sample_record(None, r#"{"owner":"first"}"#);
    store
        .create(&key, &original, now_millis())
        .await
        .expect("create failed");
    let intruder = sample_record(None, r#"{"owner":"second"}"#);
    assert_eq!(
        store
            .create(&key, &intruder, now_millis())
            .await
            .expect("create failed"),
        CreateOutcome::Collision,
        "create over an existing record must report a collision"
    );
    assert_eq!(
        found(store, &key, now_millis()).await,
        Some(original),
        "a collision must leave the existing record untouched"
    );
}

/// `save` writes only when the stored version is the expected one.
pub async fn save_is_compare_and_swap<S: SessionStore>(store: &S) {
    let key = fresh_key();
    let now = now_millis();
    let first = sample_record(None, r#"{"n":1}"#);
    store
        .create(&key, &first, now_millis())
        .await
        .expect("create failed");

    let mut second = first.clone();
    second.version = 2;
    second.data = br#"{"n":2}"#.to_vec();
    second.last_active = now + Duration::from_secs(1);
    assert_eq!(
        store
            .save(&key, &second, 1, now)
            .await
            .expect("save failed"),
        SaveOutcome::Saved
    );
    assert_eq!(found(store, &key, now).await.as_ref(), Some(&second));

    let mut stale = first.clone();
    stale.version = 2;
    stale.data = br#"{"n":"stale"}"#.to_vec();
    assert_eq!(
        store.save(&key, &stale, 1, now).await.expect("save failed"),
        SaveOutcome::Conflict,
        "a save expecting an old version must conflict"
    );
    assert_eq!(
        found(store, &key, now).await.as_ref(),
        Some(&second),
        "a conflicting save must write nothing"
    );
}

/// `save` of a missing or expired record writes nothing.
pub async fn save_never_recreates<S: SessionStore>(store: &S) {
    let key = fresh_key();
    let now = now_millis();
    let mut record = sample_record(None, "{}");
    record.version = 2;
    assert_eq!(
        store
            .save(&key, &record, 1, now)
            .await
            .expect("save failed"),
        SaveOutcome::Missing
    );
    assert_eq!(
        store.load(&key, now).await.expect("load failed"),
        LoadOutcome::Missing,
        "save must never create a record"
    );

    let key = fresh_key();
    let mut expired = sample_record(None, "{}");
    expired.expires_at = now - Duration::from_secs(1);
    store
        .create(&key, &expired, now_millis())
        .await
        .expect("create failed");
    let mut revived = sample_record(None, r#"{"revived":true}"#);
    revived.version = 2;
    assert_eq!(
        store
            .save(&key, &revived, 1, now)
            .await
            .expect("save failed"),
        SaveOutcome::Missing,
        "save must not revive an expired record"
    );
}

/// `touch` moves `last_active` and `expires_at` only, and never recreates.
pub async fn touch_extends_without_rewriting<S: SessionStore>(store: &S) {
    let key = fresh_key();
    let now = now_millis();
    let record = sample_record(None, r#"{"keep":"me"}"#);
    store
        .create(&key, &record, now_millis())
        .await
        .expect("create failed");
    let later = now + Duration::from_secs(10);
    let new_deadline = now + Duration::from_secs(7200);
    assert_eq!(
        store
            .touch(&key, record.version, later, new_deadline, now)
            .await
            .expect("touch failed"),
        TouchOutcome::Touched,
        "touch of a live record"
    );
    let touched = found(store, &key, now).await.expect("record vanished");
    assert_eq!(touched.last_active, later);
    assert_eq!(touched.expires_at, new_deadline);
    assert_eq!(
        touched.version, record.version,
        "touch must not bump the version"
    );
    assert_eq!(touched.data, record.data, "touch must not rewrite data");

    let missing = fresh_key();
    assert_eq!(
        store
            .touch(&missing, 1, later, new_deadline, now)
            .await
            .expect("touch failed"),
        TouchOutcome::Missing
    );
    assert_eq!(
        store.load(&missing, now).await.expect("load failed"),
        LoadOutcome::Missing,
        "touch must never create a record"
    );
}

/// `touch` with a version other than the stored one changes nothing (S38): a reader that
/// loaded before a save must not move the deadline that save set.
pub async fn touch_refuses_a_stale_version<S: SessionStore>(store: &S) {
    let key = fresh_key();
    let now = now_millis();
    let record = sample_record(None, "{}");
    store
        .create(&key, &record, now_millis())
        .await
        .expect("create failed");
    let mut fixed = record.clone();
    fixed.version = 2;
    fixed.expires_at = now + Duration::from_secs(60);
    assert_eq!(
        store.save(&key, &fixed, 1, now).await.expect("save failed"),
        SaveOutcome::Saved
    );
    let stale = store
        .touch(&key, 1, now, now + Duration::from_secs(7200), now)
        .await
        .expect("touch failed");
    assert_eq!(stale, TouchOutcome::Conflict, "a stale touch was applied");
    let stored = found(store, &key, now).await.expect("record vanished");
    assert_eq!(stored, fixed, "a stale touch changed the record");
}

/// `rotate` leaves a marker under the old key for [`ROTATION_MARKER_LIFETIME`]: loads, saves
/// and rotations of it answer `Moved`, a touch `Conflict`, a create `Collision`; it belongs
/// to nobody's index and expires like a record.
pub async fn rotation_leaves_a_short_lived_marker<S: SessionStore>(store: &S) {
    let (old, new) = (fresh_key(), fresh_key());
    let user = fresh_user();
    let now = now_millis();
    let record = sample_record(Some(&user), r#"{"a":1}"#);
    store
        .create(&old, &record, now_millis())
        .await
        .expect("create failed");
    let mut moved = record.clone();
    moved.version = 2;
    assert_eq!(
        store
            .rotate(&old, &new, &moved, 1, now)
            .await
            .expect("rotate failed"),
        RotateOutcome::Rotated
    );
    assert_eq!(
        store.load(&old, now).await.expect("load failed"),
        LoadOutcome::Moved,
        "the old key must hold a rotation marker"
    );
    let mut next = moved.clone();
    next.version = 3;
    assert_eq!(
        store.save(&old, &next, 1, now).await.expect("save failed"),
        SaveOutcome::Moved
    );
    assert_eq!(
        store
            .rotate(&old, &fresh_key(), &next, 1, now)
            .await
            .expect("rotate failed"),
        RotateOutcome::Moved
    );
    assert_eq!(
        store
            .touch(&old, 1, now, now + Duration::from_secs(60), now)
            .await
            .expect("touch failed"),
        TouchOutcome::Conflict
    );
    assert_eq!(
        store
            .create(&old, &record, now_millis())
            .await
            .expect("create failed"),
        CreateOutcome::Collision
    );
    if let Some(index) = store.user_index() {
        let listed = index
            .sessions_of(&user, now)
            .await
            .expect("sessions_of failed");
        assert_eq!(
            listed.iter().map(|info| info.handle).collect::<Vec<_>>(),
            vec![SessionHandle::from_store_key(new)],
            "the marker must not be listed"
        );
    }
    assert_eq!(found(store, &new, now).await, Some(moved), "the new record");

    let after = now + ROTATION_MARKER_LIFETIME;
    assert!(
        matches!(
            store.load(&old, after).await.expect("load failed"),
            LoadOutcome::Missing | LoadOutcome::Expired
        ),
        "the marker must expire after ROTATION_MARKER_LIFETIME"
    );
    store.delete(&new, now).await.expect("delete failed");
    store.delete(&old, now).await.expect("delete failed");
}

/// `delete` removes the record and reports whether there was one.
pub async fn delete_removes<S: SessionStore>(store: &S) {
    let key = fresh_key();
    store
        .create(&key, &sample_record(None, "{}"), now_millis())
        .await
        .expect("create failed");
    assert!(
        store
            .delete(&key, now_millis())
            .await
            .expect("delete failed")
    );
    assert_eq!(
        store.load(&key, now_millis()).await.expect("load failed"),
        LoadOutcome::Missing
    );
    assert!(
        !store
            .delete(&key, now_millis())
            .await
            .expect("delete failed")
    );
}

/// `rotate` leaves the new record, with the contents given, and a marker under the old key.
pub async fn rotate_moves_in_one_step<S: SessionStore>(store: &S) {
    let (old, new) = (fresh_key(), fresh_key());
    let now = now_millis();
    let record = sample_record(None, r#"{"cart":[1,2]}"#);
    store
        .create(&old, &record, now_millis())
        .await
        .expect("create failed");
    let mut moved = record.clone();
    moved.version = 2;
    assert_eq!(
        store
            .rotate(&old, &new, &moved, 1, now)
            .await
            .expect("rotate failed"),
        RotateOutcome::Rotated
    );
    assert_eq!(
        store.load(&old, now).await.expect("load failed"),
        LoadOutcome::Moved,
        "the old key must hold only a rotation marker after a rotation"
    );
    assert_eq!(found(store, &new, now).await, Some(moved));
}

/// `rotate` writes nothing on a version conflict, a missing old record or an occupied new key.
pub async fn rotate_refuses_conflicts_and_collisions<S: SessionStore>(store: &S) {
    let now = now_millis();
    let (old, new) = (fresh_key(), fresh_key());
    let record = sample_record(None, r#"{"v":"old"}"#);
    store
        .create(&old, &record, now_millis())
        .await
        .expect("create failed");
    let mut moved = record.clone();
    moved.version = 8;
    assert_eq!(
        store
            .rotate(&old, &new, &moved, 7, now)
            .await
            .expect("rotate failed"),
        RotateOutcome::Conflict
    );
    assert_eq!(found(store, &old, now).await.as_ref(), Some(&record));
    assert_eq!(
        store.load(&new, now).await.expect("load failed"),
        LoadOutcome::Missing
    );

    let occupant = sample_record(None, r#"{"v":"occupant"}"#);
    store
        .create(&new, &occupant, now_millis())
        .await
        .expect("create failed");
    moved.version = 2;
    assert_eq!(
        store
            .rotate(&old, &new, &moved, 1, now)
            .await
            .expect("rotate failed"),
        RotateOutcome::Collision
    );
    assert_eq!(found(store, &old, now).await.as_ref(), Some(&record));
    assert_eq!(found(store, &new, now).await.as_ref(), Some(&occupant));

    let (gone, target) = (fresh_key(), fresh_key());
    assert_eq!(
        store
            .rotate(&gone, &target, &moved, 1, now)
            .await
            .expect("rotate failed"),
        RotateOutcome::Missing
    );
    assert_eq!(
        store.load(&target, now).await.expect("load failed"),
        LoadOutcome::Missing,
        "a rotation of a missing record must not create the new one"
    );
}

/// A record is invisible to `load` from its deadline on, before any cleanup.
pub async fn expired_records_are_never_returned<S: SessionStore>(store: &S) {
    let key = fresh_key();
    let now = now_millis();
    let mut record = sample_record(None, "{}");
    record.expires_at = now + Duration::from_secs(60);
    store
        .create(&key, &record, now_millis())
        .await
        .expect("create failed");
    assert!(found(store, &key, now).await.is_some());
    let at_deadline = record.expires_at;
    assert!(
        found(store, &key, at_deadline).await.is_none(),
        "load must not return a record at its deadline"
    );
    assert!(
        found(store, &key, at_deadline + Duration::from_secs(3600))
            .await
            .is_none(),
        "load must not return an expired record"
    );
}

/// `delete_expired` removes expired records and keeps live ones.
pub async fn delete_expired_purges_only_expired<S: SessionStore>(store: &S) {
    let now = now_millis();
    let mut expired_keys = Vec::new();
    for _ in 0..5 {
        let key = fresh_key();
        let mut record = sample_record(None, "{}");
        record.expires_at = now + Duration::from_secs(5);
        store
            .create(&key, &record, now_millis())
            .await
            .expect("create failed");
        expired_keys.push(key);
    }
    let live = fresh_key();
    let mut record = sample_record(None, "{}");
    record.expires_at = now + Duration::from_secs(7200);
    store
        .create(&live, &record, now_millis())
        .await
        .expect("create failed");

    let later = now + Duration::from_secs(60);
    let purged = store
        .delete_expired(later)
        .await
        .expect("delete_expired failed");
    assert!(
        purged >= 5,
        "delete_expired reported {purged}, expected at least 5"
    );
    for key in &expired_keys {
        assert!(
            !store
                .delete(key, now_millis())
                .await
                .expect("delete failed"),
            "delete_expired left an expired record behind"
        );
    }
    assert!(
        found(store, &live, later).await.is_some(),
        "delete_expired removed a live record"
    );
}

/// `sessions_of`, `revoke_user` (with and without an exception) and `revoke`.
pub async fn user_index_lists_and_revokes<S: SessionStore>(store: &S) {
    let now = now_millis();
    let user = fresh_user();
    let other = fresh_user();
    let keys: Vec<StoreKey> = (0..3).map(|_| fresh_key()).collect();
    for key in &keys {
        store
            .create(key, &sample_record(Some(&user), "{}"), now_millis())
            .await
            .expect("create failed");
    }
    let bystander = fresh_key();
    store
        .create(&bystander, &sample_record(Some(&other), "{}"), now_millis())
        .await
        .expect("create failed");
    let expired = fresh_key();
    let mut record = sample_record(Some(&user), "{}");
    record.expires_at = now - Duration::from_secs(1);
    store
        .create(&expired, &record, now_millis())
        .await
        .expect("create failed");

    let listed: HashSet<SessionHandle> = index(store)
        .sessions_of(&user, now)
        .await
        .expect("sessions_of failed")
        .into_iter()
        .map(|info| info.handle)
        .collect();
    let expected: HashSet<SessionHandle> = keys
        .iter()
        .map(|key| SessionHandle::from_store_key(*key))
        .collect();
    assert_eq!(
        listed, expected,
        "sessions_of must list exactly the live sessions"
    );

    let keep = SessionHandle::from_store_key(keys[0]);
    let revoked = index(store)
        .revoke_user(&user, Some(&keep), now_millis())
        .await
        .expect("revoke_user failed");
    assert_eq!(revoked, 2, "revoke_user must report what it deleted");
    assert!(
        found(store, &keys[0], now).await.is_some(),
        "the kept session"
    );
    for key in &keys[1..] {
        assert!(found(store, key, now).await.is_none(), "a revoked session");
    }
    assert!(
        found(store, &bystander, now).await.is_some(),
        "revoke_user must not touch other users"
    );

    assert!(
        index(store)
            .revoke(&keep, now_millis())
            .await
            .expect("revoke failed")
    );
    assert!(found(store, &keys[0], now).await.is_none());
    assert!(
        !index(store)
            .revoke(&keep, now_millis())
            .await
            .expect("revoke failed")
    );
    assert!(
        index(store)
            .sessions_of(&user, now)
            .await
            .expect("sessions_of failed")
            .is_empty()
    );
    assert_eq!(
        index(store)
            .revoke_user(&other, None, now_millis())
            .await
            .expect("revoke_user failed"),
        1
    );
    assert!(found(store, &bystander, now).await.is_none());
}

/// The index follows a session through `rotate` and through a `save` that changes its user.
pub async fn user_index_follows_rotation_and_user_change<S: SessionStore>(store: &S) {
    let now = now_millis();
    let (alice, bob) = (fresh_user(), fresh_user());
    let (old, new) = (fresh_key(), fresh_key());
    let record = sample_record(Some(&alice), "{}");
    store
        .create(&old, &record, now_millis())
        .await
        .expect("create failed");
    let mut moved = record.clone();
    moved.version = 2;
    store
        .rotate(&old, &new, &moved, 1, now)
        .await
        .expect("rotate failed");
    let listed: Vec<SessionHandle> = index(store)
        .sessions_of(&alice, now)
        .await
        .expect("sessions_of failed")
        .into_iter()
        .map(|info| info.handle)
        .collect();
    assert_eq!(listed, vec![SessionHandle::from_store_key(new)]);

    let mut switched = moved.clone();
    switched.version = 3;
    switched.user = Some(bob.clone());
    store
        .save(&new, &switched, 2, now)
        .await
        .expect("save failed");
    assert!(
        index(store)
            .sessions_of(&alice, now)
            .await
            .expect("sessions_of failed")
            .is_empty(),
        "a session that changed user must leave the old user's index"
    );
    assert_eq!(
        index(store)
            .revoke_user(&alice, None, now_millis())
            .await
            .expect("revoke_user failed"),
        0,
        "revoking the old user must not delete the session now owned by another"
    );
    assert_eq!(
        index(store)
            .sessions_of(&bob, now)
            .await
            .expect("sessions_of failed")
            .len(),
        1
    );
    index(store)
        .revoke_user(&bob, None, now_millis())
        .await
        .expect("revoke_user failed");
}

/// Of many saves racing on one version, exactly one wins.
pub async fn concurrent_saves_admit_one_winner<S: SessionStore + Clone>(store: &S) {
    let key = fresh_key();
    let now = now_millis();
    store
        .create(&key, &sample_record(None, "{}"), now_millis())
        .await
        .expect("create failed");
    let attempts = (0..16).map(|i| {
        let mut record = sample_record(None, &format!(r#"{{"writer":{i}}}"#));
        record.version = 2;
        let store = store.clone();
        async move {
            store
                .save(&key, &record, 1, now)
                .await
                .expect("save failed")
        }
    });
    let outcomes = join_all(attempts).await;
    let winners = outcomes
        .iter()
        .filter(|outcome| **outcome == SaveOutcome::Saved)
        .count();
    assert_eq!(winners, 1, "exactly one racing save must win: {outcomes:?}");
}

/// Of many creates racing on one key, exactly one wins.
pub async fn concurrent_creates_admit_one_winner<S: SessionStore + Clone>(store: &S) {
    let key = fresh_key();
    let attempts = (0..16).map(|i| {
        let record = sample_record(None, &format!(r#"{{"creator":{i}}}"#));
        let store = store.clone();
        async move {
            store
                .create(&key, &record, now_millis())
                .await
                .expect("create failed")
        }
    });
    let outcomes = join_all(attempts).await;
    let winners = outcomes
        .iter()
        .filter(|outcome| **outcome == CreateOutcome::Created)
        .count();
    assert_eq!(
        winners, 1,
        "exactly one racing create must win: {outcomes:?}"
    );
}

/// Runs the futures as separate tokio tasks (in parallel on a multi-threaded runtime) and
/// collects their outputs in order.
async fn join_all<T: Send + 'static>(
    futures: impl IntoIterator<Item = impl std::future::Future<Output = T> + Send + 'static>,
) -> Vec<T> {
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut outputs = Vec::with_capacity(handles.len());
    for handle in handles {
        outputs.push(handle.await.expect("a racing task panicked"));
    }
    outputs
}

/// A store that says it [is immediate](SessionStore::is_immediate) returns futures that are
/// ready at once: polled once, each operation is complete.
pub async fn immediate_futures_are_ready<S: SessionStore>(store: &S) {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};

    fn now_or_never<T>(future: impl Future<Output = T>) -> Option<T> {
        let mut future = std::pin::pin!(future);
        match future
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
        {
            Poll::Ready(value) => Some(value),
            Poll::Pending => None,
        }
    }

    if !store.is_immediate() {
        return;
    }
    let now = now_millis();
    let (key, moved_to) = (fresh_key(), fresh_key());
    let record = sample_record(Some(&fresh_user()), r#"{"via":"ready"}"#);
    let pending = "an immediate store returned a pending future";
    assert_eq!(
        now_or_never(store.create(&key, &record, now))
            .expect(pending)
            .expect("create failed"),
        CreateOutcome::Created
    );
    assert_eq!(
        now_or_never(store.load(&key, now))
            .expect(pending)
            .expect("load failed"),
        LoadOutcome::Found(record.clone())
    );
    let mut next = record.clone();
    next.version = 2;
    assert_eq!(
        now_or_never(store.save(&key, &next, 1, now))
            .expect(pending)
            .expect("save failed"),
        SaveOutcome::Saved
    );
    assert_eq!(
        now_or_never(store.touch(&key, 2, now, now + Duration::from_secs(60), now))
            .expect(pending)
            .expect("touch failed"),
        TouchOutcome::Touched
    );
    let mut moved = next.clone();
    moved.version = 3;
    assert_eq!(
        now_or_never(store.rotate(&key, &moved_to, &moved, 2, now))
            .expect(pending)
            .expect("rotate failed"),
        RotateOutcome::Rotated
    );
    assert!(
        now_or_never(store.delete(&moved_to, now))
            .expect(pending)
            .expect("delete failed")
    );
    assert!(
        now_or_never(store.delete(&key, now))
            .expect(pending)
            .expect("delete failed")
    );
    now_or_never(store.delete_expired(now))
        .expect(pending)
        .expect("delete_expired failed");
}
