//! `MemoryStore`: the conformance suite, capacity, expiry and the sweeper, concurrency, and
//! (ignored by default) its memory footprint.
#![cfg(feature = "memory-store")]

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sessionware::StoreError;
use sessionware::store::ROTATION_MARKER_LIFETIME;
use sessionware::store::conformance::{fresh_key, fresh_user, now_millis, run_all, sample_record};
use sessionware::{
    CreateOutcome, LoadOutcome, ManualClock, MemoryStore, Record, RotateOutcome, SaveOutcome,
    SessionHandle, SessionStore, StoreKey,
};

/// A record created at `at`, expiring `ttl` later.
fn record_at(at: SystemTime, ttl: Duration, user: Option<&str>) -> Record {
    let mut record = sample_record(user, r#"{"visits":5}"#);
    record.created_at = at;
    record.last_active = at;
    record.expires_at = at + ttl;
    record
}

async fn create(store: &MemoryStore, key: &StoreKey, record: &Record) {
    assert_eq!(
        store
            .create(key, record, record.last_active)
            .await
            .expect("create failed"),
        CreateOutcome::Created
    );
}

/// Polls `condition` every few milliseconds, for at most ten seconds.
async fn eventually(mut condition: impl FnMut() -> bool) -> bool {
    for _ in 0..2000 {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    condition()
}

#[tokio::test(flavor = "multi_thread")]
async fn conforms() {
    run_all(&MemoryStore::default()).await;
}

#[tokio::test]
async fn clones_share_the_sessions() {
    let store = MemoryStore::new();
    let clone = store.clone();
    let key = fresh_key();
    create(&store, &key, &sample_record(None, "{}")).await;
    assert!(matches!(
        clone.load(&key, now_millis()).await,
        Ok(LoadOutcome::Found(_))
    ));
    assert_eq!(clone.len(), 1);
    assert!(!store.is_empty());
}

#[tokio::test]
async fn a_full_store_refuses_new_sessions_but_keeps_existing_ones_working() {
    let store = MemoryStore::builder().capacity(3).build();
    assert_eq!(store.capacity(), 3);
    let now = now_millis();
    let ttl = Duration::from_secs(60);
    let keys: Vec<StoreKey> = (0..3).map(|_| fresh_key()).collect();
    for key in &keys {
        create(&store, key, &record_at(now, ttl, Some("alice"))).await;
    }

    let refused = store
        .create(&fresh_key(), &record_at(now, ttl, None), now)
        .await;
    assert!(
        matches!(refused, Err(StoreError::CapacityExceeded)),
        "{refused:?}"
    );
    assert_eq!(
        store
            .create(&keys[0], &record_at(now, ttl, None), now)
            .await
            .expect("create failed"),
        CreateOutcome::Collision,
        "an occupied key is a collision even in a full store"
    );

    // Saving, touching and rotating existing sessions are not growth.
    let mut saved = record_at(now, ttl, Some("alice"));
    saved.version = 2;
    saved.data = br#"{"visits":6}"#.to_vec();
    assert_eq!(
        store
            .save(&keys[0], &saved, 1, now)
            .await
            .expect("save failed"),
        SaveOutcome::Saved
    );
    assert_eq!(
        store
            .touch(&keys[1], 1, now, now + ttl, now)
            .await
            .expect("touch failed"),
        sessionware::TouchOutcome::Touched
    );
    let rotated = fresh_key();
    let mut moved = record_at(now, ttl, Some("alice"));
    moved.version = 2;
    assert_eq!(
        store
            .rotate(&keys[2], &rotated, &moved, 1, now)
            .await
            .expect("rotate failed"),
        RotateOutcome::Rotated
    );
    // The rotation's marker holds the old slot for a while, beyond the capacity: rotating a
    // session is never refused for lack of room.
    assert_eq!(store.len(), 4);
    assert_eq!(
        store
            .user_index()
            .expect("a per-user index")
            .sessions_of("alice", now)
            .await
            .expect("sessions_of failed")
            .len(),
        3
    );

    // Once the sessions have expired, a create purges them and succeeds.
    let later = now + ttl + Duration::from_secs(1);
    let key = fresh_key();
    create(&store, &key, &record_at(later, ttl, None)).await;
    assert_eq!(store.len(), 1, "the expired sessions were purged");
    assert!(
        store
            .user_index()
            .expect("a per-user index")
            .sessions_of("alice", now)
            .await
            .expect("sessions_of failed")
            .is_empty(),
        "purged sessions leave the user index"
    );
    assert!(matches!(
        store.load(&key, later).await,
        Ok(LoadOutcome::Found(_))
    ));
}

#[tokio::test]
async fn a_full_store_purges_at_most_once_a_second() {
    let store = MemoryStore::builder().capacity(2).build();
    let start = now_millis();
    let ttl = Duration::from_millis(500);
    for _ in 0..2 {
        create(&store, &fresh_key(), &record_at(start, ttl, Some("alice"))).await;
    }
    // Full of live authenticated sessions (which are never evicted): the purge finds
    // nothing.
    assert!(matches!(
        store
            .create(&fresh_key(), &record_at(start, ttl, Some("alice")), start)
            .await,
        Err(StoreError::CapacityExceeded)
    ));
    // Both sessions have expired, but the last purge was under a second ago.
    let soon = start + Duration::from_millis(600);
    assert!(matches!(
        store
            .create(&fresh_key(), &record_at(soon, ttl, Some("alice")), soon)
            .await,
        Err(StoreError::CapacityExceeded)
    ));
    assert_eq!(store.len(), 2);
    let later = start + Duration::from_millis(1000);
    create(&store, &fresh_key(), &record_at(later, ttl, None)).await;
    assert_eq!(store.len(), 1);
}

#[tokio::test]
async fn a_store_of_capacity_zero_refuses_everything() {
    let store = MemoryStore::builder().capacity(0).build();
    assert!(matches!(
        store
            .create(&fresh_key(), &sample_record(None, "{}"), SystemTime::now())
            .await,
        Err(StoreError::CapacityExceeded)
    ));
    assert!(store.is_empty());
}

#[tokio::test]
async fn s24_expired_records_are_never_returned_and_delete_expired_removes_them() {
    let store = MemoryStore::new();
    let now = now_millis();
    let user = fresh_user();
    let short = Duration::from_secs(10);
    let expiring: Vec<StoreKey> = (0..4).map(|_| fresh_key()).collect();
    for key in &expiring {
        create(&store, key, &record_at(now, short, Some(&user))).await;
    }
    let live = fresh_key();
    create(
        &store,
        &live,
        &record_at(now, Duration::from_secs(3600), Some(&user)),
    )
    .await;

    let later = now + short;
    assert_eq!(
        store.load(&expiring[0], later).await.expect("load failed"),
        LoadOutcome::Expired,
        "a record at its deadline is expired"
    );
    assert_eq!(
        store.load(&expiring[0], later).await.expect("load failed"),
        LoadOutcome::Missing,
        "load removes the expired record it met"
    );
    assert_eq!(store.len(), 4);
    let listed = store
        .user_index()
        .expect("a per-user index")
        .sessions_of(&user, later)
        .await
        .expect("sessions_of failed");
    assert_eq!(
        listed.iter().map(|info| info.handle).collect::<Vec<_>>(),
        vec![SessionHandle::from_store_key(live)],
        "sessions_of lists only live sessions"
    );

    assert_eq!(
        store
            .delete_expired(later)
            .await
            .expect("delete_expired failed"),
        3
    );
    assert_eq!(store.len(), 1);
    for key in &expiring {
        assert!(
            !store
                .delete(key, SystemTime::now())
                .await
                .expect("delete failed")
        );
    }
    assert!(matches!(
        store.load(&live, later).await,
        Ok(LoadOutcome::Found(_))
    ));
    assert_eq!(
        store
            .delete_expired(later)
            .await
            .expect("delete_expired failed"),
        0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sweeper_removes_expired_sessions_and_stops_when_dropped() {
    let clock = ManualClock::new(now_millis());
    let store = MemoryStore::new();
    let start = sessionware::Clock::now(&clock);
    for _ in 0..3 {
        create(
            &store,
            &fresh_key(),
            &record_at(start, Duration::from_secs(60), None),
        )
        .await;
    }
    let live = fresh_key();
    create(
        &store,
        &live,
        &record_at(start, Duration::from_secs(3600), None),
    )
    .await;

    let sweeper = store.spawn_sweeper_with_clock(Duration::from_millis(5), clock.clone());
    clock.advance(Duration::from_secs(120));
    assert!(
        eventually(|| store.len() == 1).await,
        "the sweeper did not remove the expired sessions: {} left",
        store.len()
    );
    assert!(matches!(
        store.load(&live, sessionware::Clock::now(&clock)).await,
        Ok(LoadOutcome::Found(_))
    ));

    drop(sweeper);
    let now = sessionware::Clock::now(&clock);
    create(
        &store,
        &fresh_key(),
        &record_at(now, Duration::from_secs(60), None),
    )
    .await;
    clock.advance(Duration::from_secs(120));
    // A running sweeper would remove it within a few milliseconds.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(store.len(), 2, "a dropped sweeper kept sweeping");
}

#[tokio::test]
async fn a_stopped_sweeper_sweeps_no_more() {
    let store = MemoryStore::new();
    let sweeper = store.spawn_sweeper(Duration::from_millis(5));
    let now = now_millis();
    let key = fresh_key();
    create(
        &store,
        &key,
        &record_at(
            now - Duration::from_secs(120),
            Duration::from_secs(60),
            None,
        ),
    )
    .await;
    assert!(
        eventually(|| store.is_empty()).await,
        "the system-clock sweeper removes a session expired a minute ago"
    );
    sweeper.stop();
    // A sweep already running when `stop` is called finishes (documented); on a store this
    // small it takes microseconds. Give it ample time before creating the next session.
    tokio::time::sleep(Duration::from_millis(100)).await;
    create(
        &store,
        &key,
        &record_at(
            now - Duration::from_secs(120),
            Duration::from_secs(60),
            None,
        ),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(store.len(), 1, "a stopped sweeper kept sweeping");
}

/// One session as the racing tasks see it: its current key, every key it ever had, and what
/// succeeded on it.
struct Tracked {
    current: Mutex<StoreKey>,
    keys: Mutex<Vec<StoreKey>>,
    writes: AtomicU64,
    deleted: AtomicBool,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_saves_rotations_and_deletes_leave_a_consistent_store() {
    const SESSIONS: usize = 8;
    const TASKS_PER_SESSION: usize = 6;
    const ROUNDS: u64 = 300;

    let store = MemoryStore::new();
    let now = now_millis();
    let ttl = Duration::from_secs(3600);
    let users = [fresh_user(), fresh_user()];
    let mut tracked = Vec::new();
    for session in 0..SESSIONS {
        let key = fresh_key();
        create(
            &store,
            &key,
            &record_at(now, ttl, Some(&users[session % 2])),
        )
        .await;
        tracked.push(Arc::new(Tracked {
            current: Mutex::new(key),
            keys: Mutex::new(vec![key]),
            writes: AtomicU64::new(0),
            deleted: AtomicBool::new(false),
        }));
    }

    let mut tasks = Vec::new();
    for (session, tracked) in tracked.iter().enumerate() {
        for task in 0..TASKS_PER_SESSION {
            let (store, tracked, users) = (store.clone(), tracked.clone(), users.clone());
            tasks.push(tokio::spawn(async move {
                let mut state = (session * 31 + task * 7 + 1) as u64;
                for round in 0..ROUNDS {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    if tracked.deleted.load(Ordering::SeqCst) {
                        return;
                    }
                    let key = *tracked.current.lock().expect("poisoned");
                    let Ok(LoadOutcome::Found(mut record)) = store.load(&key, now).await else {
                        tokio::task::yield_now().await;
                        continue;
                    };
                    let expected = record.version;
                    record.version += 1;
                    record.data =
                        format!(r#"{{"session":{session},"v":{}}}"#, record.version).into_bytes();
                    match state % 10 {
                        0..=4 => {
                            if state.is_multiple_of(7) {
                                record.user = Some(users[(state % 2) as usize].clone());
                            }
                            if store
                                .save(&key, &record, expected, now)
                                .await
                                .expect("save")
                                == SaveOutcome::Saved
                            {
                                tracked.writes.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                        5..=7 => {
                            let new = fresh_key();
                            // Registered before the attempt so the final check sees every key
                            // that may hold the session.
                            tracked.keys.lock().expect("poisoned").push(new);
                            let outcome = store
                                .rotate(&key, &new, &record, expected, now)
                                .await
                                .expect("rotate");
                            if outcome == RotateOutcome::Rotated {
                                tracked.writes.fetch_add(1, Ordering::SeqCst);
                                *tracked.current.lock().expect("poisoned") = new;
                            }
                        }
                        8 => {
                            let later = now + Duration::from_secs(1);
                            store
                                .touch(&key, expected, later, later + ttl, now)
                                .await
                                .expect("touch");
                        }
                        _ => {
                            // Only a few sessions are deleted, late in the run. A rotation
                            // racing the deletion may move the session off `key` (whose
                            // marker `delete` then removes), so every key it ever had goes,
                            // until a pass ends with no key registered meanwhile.
                            if session.is_multiple_of(4) && round > ROUNDS / 2 {
                                loop {
                                    let keys = tracked.keys.lock().expect("poisoned").clone();
                                    for key in &keys {
                                        store.delete(key, SystemTime::now()).await.expect("delete");
                                    }
                                    if tracked.keys.lock().expect("poisoned").len() == keys.len() {
                                        break;
                                    }
                                }
                                tracked.deleted.store(true, Ordering::SeqCst);
                            }
                        }
                    }
                    tokio::task::yield_now().await;
                }
            }));
        }
    }
    for task in tasks {
        task.await.expect("a racing task panicked");
    }

    assert!(
        tracked
            .iter()
            .any(|session| session.deleted.load(Ordering::SeqCst)),
        "the run deleted some sessions"
    );
    assert!(
        tracked
            .iter()
            .any(|session| session.keys.lock().expect("poisoned").len() > 1),
        "the run rotated some sessions"
    );
    let mut live_total = 0;
    let mut expected_index: [HashSet<SessionHandle>; 2] = Default::default();
    for (session, tracked) in tracked.iter().enumerate() {
        let keys = tracked.keys.lock().expect("poisoned").clone();
        let mut found = Vec::new();
        for key in &keys {
            if let LoadOutcome::Found(record) = store.load(key, now).await.expect("load") {
                found.push((*key, record));
            }
        }
        if tracked.deleted.load(Ordering::SeqCst) {
            assert!(
                found.is_empty(),
                "session {session} came back after its deletion"
            );
            continue;
        }
        assert_eq!(
            found.len(),
            1,
            "session {session} must live under exactly one key, not {}",
            found.len()
        );
        let (key, record) = &found[0];
        assert_eq!(*key, *tracked.current.lock().expect("poisoned"));
        assert_eq!(
            record.version,
            1 + tracked.writes.load(Ordering::SeqCst),
            "session {session}: every successful write bumps the version exactly once"
        );
        let owner = users
            .iter()
            .position(|user| Some(user) == record.user.as_ref())
            .expect("the record keeps one of the two users");
        expected_index[owner].insert(SessionHandle::from_store_key(*key));
        live_total += 1;
    }
    // Rotations leave markers for a while; once they have expired, only sessions remain.
    store
        .delete_expired(now + ROTATION_MARKER_LIFETIME)
        .await
        .expect("delete_expired");
    assert_eq!(store.len(), live_total, "no leftover entries");
    for (user, expected) in users.iter().zip(&expected_index) {
        let listed: HashSet<SessionHandle> = store
            .user_index()
            .expect("a per-user index")
            .sessions_of(user, now)
            .await
            .expect("sessions_of")
            .into_iter()
            .map(|info| info.handle)
            .collect();
        assert_eq!(&listed, expected, "the index of {user} matches the records");
        assert_eq!(
            store
                .user_index()
                .expect("a per-user index")
                .revoke_user(user, None, SystemTime::now())
                .await
                .expect("revoke_user"),
            expected.len() as u64
        );
    }
    assert!(store.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revoke_user_catches_sessions_rotating_under_it() {
    for _ in 0..50 {
        let store = MemoryStore::new();
        let now = now_millis();
        let user = fresh_user();
        let old = fresh_key();
        let record = sample_record(Some(&user), "{}");
        create(&store, &old, &record).await;
        let new = fresh_key();
        let mut moved = record.clone();
        moved.version = 2;
        let rotation = {
            let store = store.clone();
            tokio::spawn(async move { store.rotate(&old, &new, &moved, 1, now).await })
        };
        let revoked = store
            .user_index()
            .expect("a per-user index")
            .revoke_user(&user, None, SystemTime::now())
            .await
            .expect("revoke_user");
        let rotated = rotation.await.expect("rotation panicked").expect("rotate");
        // The session was revoked under one key or the other; while the rotation is half
        // done, both entries may be found and counted.
        assert!((1..=2).contains(&revoked), "{revoked}");
        assert!(
            matches!(rotated, RotateOutcome::Rotated | RotateOutcome::Missing),
            "{rotated:?}"
        );
        for key in [old, new] {
            assert!(
                !matches!(store.load(&key, now).await, Ok(LoadOutcome::Found(_))),
                "nothing survives the revocation"
            );
        }
        // What is left is at most the rotation's marker, which expires.
        store
            .delete_expired(now + ROTATION_MARKER_LIFETIME)
            .await
            .expect("delete_expired");
        assert!(store.is_empty());
    }
}

/// Resident memory of this process, in bytes.
fn resident_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .expect("VmRSS line");
    let kib: usize = line
        .split_whitespace()
        .nth(1)
        .and_then(|kib| kib.parse().ok())
        .expect("VmRSS value");
    kib * 1024
}

const MILLION: usize = 1_000_000;

/// Bytes per live session with 1,000,000 sessions holding `{"visits":5}`, measured by RSS.
/// Run alone, so no other test shares the process:
/// `cargo test --test suite -- --ignored --nocapture rss_per_session`. The same measure of
/// tower-sessions' store, which checks that the bound is still half of its figure, is
/// `bench/tests/memory.rs`.
#[tokio::test]
#[ignore = "allocates about 170 MB; run alone to measure"]
async fn rss_per_session_of_a_million_sessions() {
    let store = MemoryStore::new();
    let keys: Vec<StoreKey> = (0..MILLION).map(|_| fresh_key()).collect();
    let before = resident_bytes();
    for key in &keys {
        // As the layer writes it: times from the system clock, in whole milliseconds.
        let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let now = UNIX_EPOCH + Duration::from_millis(since.as_millis() as u64);
        let record = Record {
            version: 1,
            user: None,
            created_at: now,
            last_active: now,
            expires_at: now + Duration::from_secs(30 * 60),
            expiry: None,
            data: br#"{"visits":5}"#.to_vec(),
            label: None,
        };
        store
            .create(key, &record, SystemTime::now())
            .await
            .expect("create failed");
    }
    let per_session = (resident_bytes() - before) / MILLION;
    println!("MemoryStore: {per_session} bytes per session (RSS)");
    assert_eq!(store.len(), MILLION);
    assert!(
        per_session <= 207,
        "{per_session} bytes per session: more than half of tower-sessions' 415"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn dyn_store_over_memory_conforms_and_stays_immediate() {
    let store = crate::common::erased(MemoryStore::default());
    assert!(
        store.is_immediate(),
        "a shared dyn store forwards the in-process fast path"
    );
    assert!(store.user_index().is_some(), "and the per-user index");
    run_all(&store).await;
}
