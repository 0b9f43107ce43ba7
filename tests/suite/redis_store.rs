//! `RedisStore` against a real server: the conformance suite, the key layout (S10), the
//! per-user index, and behaviour while the server is down and after it comes back.
//!
//! Tests that use a shared server read `REDIS_URL` (and `VALKEY_URL` for Valkey) and skip
//! when it is unset. The fault test starts its own `redis-server` from `PATH`.
#![cfg(all(feature = "redis", feature = "test-util"))]

use crate::common;
use crate::common::redis_server;

use std::collections::{HashMap, HashSet};
use std::error::Error as _;
use std::time::SystemTime;
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis_server::{ServerGuard, find_on_path, free_port, start_private_server};
use sessionware::StoreError;
use sessionware::store::conformance::{fresh_key, fresh_user, now_millis, run_all, sample_record};
use sessionware::{
    CreateOutcome, LoadOutcome, RedisStore, RotateOutcome, SessionHandle, SessionStore, StoreKey,
};

/// A key prefix no other test or run uses.
fn unique_prefix() -> String {
    format!("sessionware-test:{}:", &fresh_key().to_hex()[..16])
}

/// The URL in `var`, or `None` after printing why the test is skipped.
fn url_from_env(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            eprintln!("skipping: {var} is not set");
            None
        }
    }
}

/// A store with a fresh prefix and a raw connection to inspect what it wrote.
async fn open(url: &str) -> (RedisStore, String, MultiplexedConnection) {
    let prefix = unique_prefix();
    let store = RedisStore::builder(url)
        .key_prefix(prefix.clone())
        .build()
        .expect("valid Redis store settings")
        .await
        .unwrap_or_else(|err| panic!("cannot open a RedisStore on {url}: {err:?}"));
    (store, prefix, raw_connection(url).await)
}

async fn raw_connection(url: &str) -> MultiplexedConnection {
    redis::Client::open(url)
        .expect("URL parses")
        .get_multiplexed_async_connection()
        .await
        .expect("raw connection")
}

/// Every key whose name starts with `prefix` (which holds no glob characters).
async fn keys_under(conn: &mut MultiplexedConnection, prefix: &str) -> Vec<String> {
    let mut cursor: u64 = 0;
    let mut keys = Vec::new();
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(conn)
            .await
            .expect("SCAN");
        keys.extend(batch);
        if next == 0 {
            keys.sort();
            keys.dedup();
            return keys;
        }
        cursor = next;
    }
}

async fn remove_keys_under(conn: &mut MultiplexedConnection, prefix: &str) {
    for key in keys_under(conn, prefix).await {
        let _: i64 = redis::cmd("DEL")
            .arg(&key)
            .query_async(conn)
            .await
            .expect("DEL");
    }
}

/// Checks that the per-user indexes and the session hashes agree: every index member names a
/// session that names that index as its owner, and every owned session is in its index.
async fn assert_index_consistent(conn: &mut MultiplexedConnection, prefix: &str) {
    let keys = keys_under(conn, prefix).await;
    let session_prefix = format!("{prefix}s:");
    let index_prefix = format!("{prefix}u:");
    let mut owners: HashMap<String, String> = HashMap::new();
    for key in keys.iter().filter(|key| key.starts_with(&session_prefix)) {
        let owner: Option<String> = redis::cmd("HGET")
            .arg(key)
            .arg("ix")
            .query_async(conn)
            .await
            .expect("HGET");
        if let Some(owner) = owner {
            owners.insert(key.clone(), owner);
        }
    }
    for index in keys.iter().filter(|key| key.starts_with(&index_prefix)) {
        let members: Vec<String> = redis::cmd("ZRANGE")
            .arg(index)
            .arg(0)
            .arg(-1)
            .query_async(conn)
            .await
            .expect("ZRANGE");
        for member in members {
            let session = format!("{session_prefix}{member}");
            assert_eq!(
                owners.get(&session),
                Some(index),
                "index {index} lists {member}, which it does not own"
            );
        }
    }
    for (session, owner) in &owners {
        let member = session.trim_start_matches(&session_prefix);
        let score: Option<f64> = redis::cmd("ZSCORE")
            .arg(owner)
            .arg(member)
            .query_async(conn)
            .await
            .expect("ZSCORE");
        assert!(
            score.is_some(),
            "{session} is missing from its index {owner}"
        );
    }
}

async fn index_members(conn: &mut MultiplexedConnection, index: &str) -> Vec<String> {
    redis::cmd("ZRANGE")
        .arg(index)
        .arg(0)
        .arg(-1)
        .query_async(conn)
        .await
        .expect("ZRANGE")
}

/// The name of `user`'s index key under `prefix`, as documented: URL-safe base64.
fn index_key(prefix: &str, user: &str) -> String {
    use base64::Engine as _;
    format!(
        "{prefix}u:{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(user)
    )
}

async fn conformance_against(var: &str) {
    let Some(url) = url_from_env(var) else {
        return;
    };
    let (store, prefix, mut conn) = open(&url).await;
    run_all(&store).await;
    assert_index_consistent(&mut conn, &prefix).await;
    remove_keys_under(&mut conn, &prefix).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_store_passes_the_conformance_suite() {
    conformance_against("REDIS_URL").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn valkey_passes_the_conformance_suite() {
    conformance_against("VALKEY_URL").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn s10_redis_keys_are_store_keys_only() {
    let Some(url) = url_from_env("REDIS_URL") else {
        return;
    };
    let (store, prefix, mut conn) = open(&url).await;
    let user = "alice:*?[weird] user\n";
    let mut created = HashSet::new();
    for i in 0..4 {
        let key = fresh_key();
        let owner = (i % 2 == 0).then_some(user);
        let outcome = store
            .create(&key, &sample_record(owner, r#"{"n":1}"#), SystemTime::now())
            .await
            .expect("create");
        assert_eq!(outcome, CreateOutcome::Created);
        created.insert(key.to_hex());
    }

    let keys = keys_under(&mut conn, &prefix).await;
    let session_prefix = format!("{prefix}s:");
    let mut sessions = HashSet::new();
    for key in &keys {
        if let Some(hex) = key.strip_prefix(&session_prefix) {
            assert_eq!(hex.len(), 64, "session key {key} is not a store key");
            assert!(
                hex.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
                "session key {key} is not lowercase hex"
            );
            assert!(StoreKey::from_hex(hex).is_some());
            sessions.insert(hex.to_owned());
        } else {
            assert_eq!(
                key,
                &index_key(&prefix, user),
                "unexpected key {key}: only session hashes and user indexes may exist"
            );
        }
    }
    assert_eq!(
        sessions, created,
        "exactly the created store keys are in Redis"
    );
    remove_keys_under(&mut conn, &prefix).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn index_drops_members_whose_session_was_deleted_behind_its_back() {
    let Some(url) = url_from_env("REDIS_URL") else {
        return;
    };
    let (store, prefix, mut conn) = open(&url).await;
    let user = fresh_user();
    let (gone, kept) = (fresh_key(), fresh_key());
    for key in [&gone, &kept] {
        store
            .create(key, &sample_record(Some(&user), "{}"), SystemTime::now())
            .await
            .expect("create");
    }
    let index = index_key(&prefix, &user);
    assert_eq!(index_members(&mut conn, &index).await.len(), 2);

    let deleted: i64 = redis::cmd("DEL")
        .arg(format!("{prefix}s:{}", gone.to_hex()))
        .query_async(&mut conn)
        .await
        .expect("DEL");
    assert_eq!(deleted, 1);

    let listed: Vec<SessionHandle> = store
        .user_index()
        .expect("a per-user index")
        .sessions_of(&user, now_millis())
        .await
        .expect("sessions_of")
        .into_iter()
        .map(|info| info.handle)
        .collect();
    assert_eq!(listed, vec![SessionHandle::from_store_key(kept)]);
    assert_eq!(
        index_members(&mut conn, &index).await,
        vec![kept.to_hex()],
        "sessions_of must prune the member of the deleted session"
    );

    // A key reused by a session of another user is not this user's either.
    let other = fresh_user();
    let hijacked = fresh_key();
    store
        .create(
            &hijacked,
            &sample_record(Some(&user), "{}"),
            SystemTime::now(),
        )
        .await
        .expect("create");
    let _: i64 = redis::cmd("HSET")
        .arg(format!("{prefix}s:{}", hijacked.to_hex()))
        .arg("ix")
        .arg(index_key(&prefix, &other))
        .query_async(&mut conn)
        .await
        .expect("HSET");
    assert_eq!(
        store
            .user_index()
            .expect("a per-user index")
            .revoke_user(&user, None, SystemTime::now())
            .await
            .expect("revoke_user"),
        1,
        "revoke_user deletes only the sessions the user still owns"
    );
    assert!(
        index_members(&mut conn, &index).await.is_empty(),
        "revoke_user leaves nothing in the index"
    );
    assert!(matches!(
        store.load(&hijacked, now_millis()).await.expect("load"),
        LoadOutcome::Found(_)
    ));
    remove_keys_under(&mut conn, &prefix).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn index_lives_at_least_as_long_as_its_sessions() {
    let Some(url) = url_from_env("REDIS_URL") else {
        return;
    };
    let (store, prefix, mut conn) = open(&url).await;
    let user = fresh_user();
    let (short, long) = (fresh_key(), fresh_key());
    let mut record = sample_record(Some(&user), "{}");
    store
        .create(&short, &record, SystemTime::now())
        .await
        .expect("create");
    record.expires_at += Duration::from_secs(7200);
    store
        .create(&long, &record, SystemTime::now())
        .await
        .expect("create");

    let pttl = |key: String| {
        let mut conn = conn.clone();
        async move {
            let ttl: i64 = redis::cmd("PTTL")
                .arg(key)
                .query_async(&mut conn)
                .await
                .expect("PTTL");
            ttl
        }
    };
    let index = index_key(&prefix, &user);
    let long_ttl = pttl(format!("{prefix}s:{}", long.to_hex())).await;
    let short_ttl = pttl(format!("{prefix}s:{}", short.to_hex())).await;
    assert!(
        short_ttl > 0 && long_ttl > short_ttl,
        "{short_ttl} {long_ttl}"
    );
    // TTLs are read one after the other: allow for the milliseconds between the reads.
    let slack = 1000;
    let index_ttl = pttl(index.clone()).await;
    assert!(
        index_ttl >= long_ttl - slack,
        "index outlives its longest session: {index_ttl} {long_ttl}"
    );

    // Once the long-lived session is gone, the index follows the remaining one.
    assert!(
        store
            .delete(&long, SystemTime::now())
            .await
            .expect("delete")
    );
    let index_ttl = pttl(index.clone()).await;
    assert!(
        index_ttl >= short_ttl - slack && index_ttl < long_ttl - slack,
        "index follows its remaining session: {index_ttl} {short_ttl} {long_ttl}"
    );
    assert!(
        store
            .delete(&short, SystemTime::now())
            .await
            .expect("delete")
    );
    assert_eq!(pttl(index).await, -2, "an empty index disappears");
    remove_keys_under(&mut conn, &prefix).await;
}

// S37 ---------------------------------------------------------------------------------------

/// How many stale entries the store documents that one write adding to an index prunes.
const DOCUMENTED_PRUNE_BATCH: u64 = 32;

/// Adds `count` members to `index` the way an index left behind by natively expired
/// sessions looks: scored with deadlines from `first_score` on (one millisecond apart), and
/// with no session key. Sent as pipelined `ZADD`s of 1,000 members each.
async fn add_orphan_members(
    conn: &mut MultiplexedConnection,
    index: &str,
    count: u64,
    first_score: u64,
) {
    let salt = &fresh_key().to_hex()[..16];
    let mut pipe = redis::pipe();
    for chunk in (0..count).step_by(1000) {
        let mut zadd = redis::cmd("ZADD");
        zadd.arg(index);
        for n in chunk..(chunk + 1000).min(count) {
            zadd.arg(first_score + n).arg(format!("{salt}{n:048x}"));
        }
        pipe.add_command(zadd).ignore();
    }
    let () = pipe.query_async(conn).await.expect("ZADD");
}

async fn zcard(conn: &mut MultiplexedConnection, index: &str) -> u64 {
    redis::cmd("ZCARD")
        .arg(index)
        .query_async(conn)
        .await
        .expect("ZCARD")
}

/// How many members of `index` are scored at or before `score`.
async fn zcount_upto(conn: &mut MultiplexedConnection, index: &str, score: u64) -> u64 {
    redis::cmd("ZCOUNT")
        .arg(index)
        .arg("-inf")
        .arg(score)
        .query_async(conn)
        .await
        .expect("ZCOUNT")
}

fn millis_of(time: std::time::SystemTime) -> u64 {
    let since = time
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970");
    u64::try_from(since.as_millis()).expect("fits")
}

#[tokio::test(flavor = "multi_thread")]
async fn s37_writes_that_add_to_an_index_prune_natively_expired_entries_32_at_a_time() {
    let Some(url) = url_from_env("REDIS_URL") else {
        return;
    };
    let prefix = unique_prefix();
    let grace = Duration::from_millis(300);
    let store = RedisStore::builder(&url)
        .key_prefix(prefix.clone())
        .expiry_grace(grace)
        .build()
        .expect("valid Redis store settings")
        .await
        .expect("open the store");
    let mut conn = raw_connection(&url).await;
    let user = fresh_user();
    let index = index_key(&prefix, &user);

    // One long-lived session keeps the index alive while 100 short ones expire natively.
    let long = fresh_key();
    store
        .create(&long, &sample_record(Some(&user), "{}"), SystemTime::now())
        .await
        .expect("create");
    let short_deadline = now_millis() + Duration::from_millis(200);
    for _ in 0..100 {
        let mut record = sample_record(Some(&user), "{}");
        record.expires_at = short_deadline;
        store
            .create(&fresh_key(), &record, SystemTime::now())
            .await
            .expect("create");
    }
    tokio::time::sleep(Duration::from_millis(200) + grace + Duration::from_millis(200)).await;
    let stale_upto = millis_of(short_deadline);
    assert_eq!(zcount_upto(&mut conn, &index, stale_upto).await, 100);
    assert_eq!(zcard(&mut conn, &index).await, 101);

    // Every kind of write that adds to the index prunes at most 32 stale entries.
    let now = now_millis();
    let mut record = sample_record(Some(&user), "{}");
    let first = fresh_key();
    store
        .create(&first, &record, SystemTime::now())
        .await
        .expect("create");
    assert_eq!(
        zcount_upto(&mut conn, &index, stale_upto).await,
        68,
        "after create"
    );
    let mut saved = record.clone();
    saved.version = 2;
    assert_eq!(
        store.save(&first, &saved, 1, now).await.expect("save"),
        sessionware::SaveOutcome::Saved
    );
    assert_eq!(
        zcount_upto(&mut conn, &index, stale_upto).await,
        36,
        "after save"
    );
    let later = now + Duration::from_secs(7200);
    assert_eq!(
        store
            .touch(&first, 2, now, later, now)
            .await
            .expect("touch"),
        sessionware::TouchOutcome::Touched
    );
    assert_eq!(
        zcount_upto(&mut conn, &index, stale_upto).await,
        4,
        "after touch"
    );
    let rotated = fresh_key();
    record.version = 3;
    assert_eq!(
        store
            .rotate(&first, &rotated, &record, 2, now)
            .await
            .expect("rotate"),
        RotateOutcome::Rotated
    );
    assert_eq!(
        zcount_upto(&mut conn, &index, stale_upto).await,
        0,
        "after rotate"
    );
    let mut members = index_members(&mut conn, &index).await;
    members.sort();
    let mut expected = vec![long.to_hex(), rotated.to_hex()];
    expected.sort();
    assert_eq!(members, expected, "only the live sessions are left");
    assert_index_consistent(&mut conn, &prefix).await;
    remove_keys_under(&mut conn, &prefix).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn s37_one_create_prunes_at_most_32_of_10_000_stale_entries() {
    let Some(url) = url_from_env("REDIS_URL") else {
        return;
    };
    let (store, prefix, mut conn) = open(&url).await;
    let user = fresh_user();
    let index = index_key(&prefix, &user);
    let live = fresh_key();
    store
        .create(&live, &sample_record(Some(&user), "{}"), SystemTime::now())
        .await
        .expect("create");
    // Deadlines in 2001: expired far longer than any grace ago.
    add_orphan_members(&mut conn, &index, 10_000, 1_000_000_000_000).await;
    assert_eq!(zcard(&mut conn, &index).await, 10_001);

    let mut created = vec![live];
    for round in 1..=3 {
        let key = fresh_key();
        store
            .create(&key, &sample_record(Some(&user), "{}"), SystemTime::now())
            .await
            .expect("create");
        created.push(key);
        assert_eq!(
            zcard(&mut conn, &index).await,
            10_001 + round - round * DOCUMENTED_PRUNE_BATCH,
            "create {round} adds its own entry and prunes exactly {DOCUMENTED_PRUNE_BATCH} \
             stale ones"
        );
    }
    // The entries pruned first are the oldest.
    assert_eq!(
        zcount_upto(
            &mut conn,
            &index,
            1_000_000_000_000 + 3 * DOCUMENTED_PRUNE_BATCH - 1
        )
        .await,
        0
    );
    // A session without a user has no index to prune.
    store
        .create(&fresh_key(), &sample_record(None, "{}"), SystemTime::now())
        .await
        .expect("create");
    assert_eq!(
        zcard(&mut conn, &index).await,
        10_004 - 3 * DOCUMENTED_PRUNE_BATCH
    );
    remove_keys_under(&mut conn, &prefix).await;
}

/// How many scripts the server has run (`EVALSHA` and `EVAL` calls) since `CONFIG RESETSTAT`.
async fn script_calls(conn: &mut MultiplexedConnection) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await
        .expect("INFO");
    info.lines()
        .filter(|line| line.starts_with("cmdstat_evalsha:") || line.starts_with("cmdstat_eval:"))
        .filter_map(|line| {
            line.split([':', ','])
                .find_map(|field| field.strip_prefix("calls="))
                .and_then(|calls| calls.parse::<u64>().ok())
        })
        .sum()
}

async fn reset_stats(conn: &mut MultiplexedConnection) {
    let () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async(conn)
        .await
        .expect("CONFIG RESETSTAT");
}

#[tokio::test(flavor = "multi_thread")]
async fn s37_sessions_of_and_revoke_user_walk_10_000_stale_entries_100_at_a_time() {
    let Some(server) = start_private_server().await else {
        return;
    };
    let (store, prefix, mut conn) = open(&server.url()).await;
    let user = fresh_user();
    let index = index_key(&prefix, &user);
    let mut live = Vec::new();
    for _ in 0..5 {
        let key = fresh_key();
        store
            .create(&key, &sample_record(Some(&user), "{}"), SystemTime::now())
            .await
            .expect("create");
        live.push(key);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    // Half the orphans expired long ago, half are scored around the live sessions' deadline
    // (their keys were removed behind the store's back), so that the live members sit in
    // the middle of the walk.
    let orphans = |conn: MultiplexedConnection| {
        let index = index.clone();
        async move {
            let mut conn = conn;
            add_orphan_members(&mut conn, &index, 5_000, 1_000_000_000_000).await;
            let around = millis_of(now_millis() + Duration::from_secs(3600)) - 2_500;
            add_orphan_members(&mut conn, &index, 5_000, around).await;
        }
    };
    orphans(conn.clone()).await;
    assert_eq!(zcard(&mut conn, &index).await, 10_005);
    // Load the scripts, so that only the calls of the operations below are counted.
    store
        .user_index()
        .expect("a per-user index")
        .sessions_of(&fresh_user(), now_millis())
        .await
        .expect("sessions_of");
    store
        .user_index()
        .expect("a per-user index")
        .revoke_user(&fresh_user(), None, SystemTime::now())
        .await
        .expect("revoke_user");

    reset_stats(&mut conn).await;
    let listed: Vec<SessionHandle> = store
        .user_index()
        .expect("a per-user index")
        .sessions_of(&user, now_millis())
        .await
        .expect("sessions_of")
        .into_iter()
        .map(|info| info.handle)
        .collect();
    let expected: Vec<SessionHandle> = live
        .iter()
        .copied()
        .map(SessionHandle::from_store_key)
        .collect();
    assert_eq!(listed, expected, "the live sessions, oldest first");
    let calls = script_calls(&mut conn).await;
    assert!(
        calls >= 101,
        "10,005 entries at most 100 per script call take at least 101 calls, not {calls}"
    );
    assert_eq!(zcard(&mut conn, &index).await, 5, "the orphans are pruned");

    orphans(conn.clone()).await;
    reset_stats(&mut conn).await;
    let keep = SessionHandle::from_store_key(live[2]);
    assert_eq!(
        store
            .user_index()
            .expect("a per-user index")
            .revoke_user(&user, Some(&keep), SystemTime::now())
            .await
            .expect("revoke_user"),
        4
    );
    let calls = script_calls(&mut conn).await;
    assert!(
        calls >= 101,
        "10,005 entries at most 100 per script call take at least 101 calls, not {calls}"
    );
    assert_eq!(
        index_members(&mut conn, &index).await,
        vec![live[2].to_hex()]
    );
    for key in &live {
        let found = matches!(
            store.load(key, now_millis()).await.expect("load"),
            LoadOutcome::Found(_)
        );
        assert_eq!(found, *key == live[2], "only the kept session is left");
    }
    assert_index_consistent(&mut conn, &prefix).await;
}

/// How many times a revocation races a rotation that moves the session to the front of the
/// index.
const ROTATION_TRIALS: u64 = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s37_revoke_user_catches_a_session_rotated_to_the_front_while_it_pages() {
    let Some(url) = url_from_env("REDIS_URL") else {
        return;
    };
    let (store, prefix, mut conn) = open(&url).await;
    let mut survived = 0;
    let mut rotations = 0;
    for trial in 0..ROTATION_TRIALS {
        let user = fresh_user();
        let index = index_key(&prefix, &user);
        let (old, new) = (fresh_key(), fresh_key());
        let now = now_millis();
        // 1,000 orphans scored over one second an hour ahead, with the session in the middle:
        // ten pages, and the session is found on the fifth or sixth.
        let mut record = sample_record(Some(&user), "{}");
        record.expires_at = now + Duration::from_millis(3_600_500);
        store
            .create(&old, &record, SystemTime::now())
            .await
            .expect("create");
        add_orphan_members(
            &mut conn,
            &index,
            1_000,
            millis_of(now + Duration::from_secs(3600)),
        )
        .await;
        // The rotated session gets an earlier deadline: it lands below every orphan, behind
        // any cursor a walk by score would have.
        let mut moved = record.clone();
        moved.version = 2;
        moved.expires_at = now + Duration::from_secs(1800);
        let start = std::sync::Arc::new(tokio::sync::Barrier::new(2));
        let delay = Duration::from_micros(trial % 20 * 150);
        let rotation = tokio::spawn({
            let (store, start) = (store.clone(), start.clone());
            async move {
                start.wait().await;
                let until = Instant::now() + delay;
                while Instant::now() < until {
                    tokio::task::yield_now().await;
                }
                store.rotate(&old, &new, &moved, 1, now_millis()).await
            }
        });
        let revocation = tokio::spawn({
            let (store, start, user) = (store.clone(), start.clone(), user.clone());
            async move {
                start.wait().await;
                store
                    .user_index()
                    .expect("a per-user index")
                    .revoke_user(&user, None, SystemTime::now())
                    .await
            }
        });
        if rotation.await.expect("join").expect("rotate") == RotateOutcome::Rotated {
            rotations += 1;
        }
        let revoked = revocation.await.expect("join").expect("revoke_user");
        let now = now_millis();
        let mut live = false;
        for key in [old, new] {
            live |= matches!(
                store.load(&key, now).await.expect("load"),
                LoadOutcome::Found(_)
            );
        }
        let listed = store
            .user_index()
            .expect("a per-user index")
            .sessions_of(&user, now)
            .await
            .expect("sessions_of");
        // Exactly one live session, the old or the new, was revoked.
        if revoked != 1 || live || !listed.is_empty() || zcard(&mut conn, &index).await != 0 {
            survived += 1;
        }
    }
    eprintln!("{rotations} of {ROTATION_TRIALS} rotations happened before the revocation ended");
    assert_eq!(
        survived, 0,
        "{survived} of {ROTATION_TRIALS} sessions survived a revocation racing their rotation"
    );
    remove_keys_under(&mut conn, &prefix).await;
}

#[tokio::test]
async fn debug_output_never_shows_the_url() {
    let url = "redis://admin:hunter2-secret@127.0.0.1:1/";
    let builder = RedisStore::builder(url).key_prefix("app:");
    let shown = format!("{builder:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("app:"), "{shown}");

    let client = redis::Client::open(url).expect("URL parses");
    let lazy = ConnectionManager::new_lazy_with_config(client, ConnectionManagerConfig::new())
        .expect("lazy manager");
    let store = RedisStore::new(lazy);
    let shown = format!("{store:?}");
    assert!(
        !shown.contains("hunter2") && !shown.contains("admin"),
        "{shown}"
    );
    assert!(shown.contains("sessionware:"), "default prefix: {shown}");

    let client = redis::Client::open(url).expect("URL parses");
    let lazy = ConnectionManager::new_lazy_with_config(client, ConnectionManagerConfig::new())
        .expect("lazy manager");
    let refused = RedisStore::builder_with_manager(lazy)
        .connection_config(ConnectionManagerConfig::new())
        .build();
    assert!(matches!(
        refused,
        Err(sessionware::ConfigError::InvalidStoreSetting {
            setting: "connection_config",
            ..
        })
    ));
}

#[track_caller]
fn assert_store_failure<T: std::fmt::Debug>(operation: &str, result: Result<T, StoreError>) {
    match result {
        Err(error @ (StoreError::Unavailable(_) | StoreError::Backend(_))) => {
            let source = error
                .source()
                .unwrap_or_else(|| panic!("{operation}: the store error lost its source"));
            assert!(
                source.downcast_ref::<redis::RedisError>().is_some(),
                "{operation}: the source is not the RedisError: {source:?}"
            );
        }
        other => panic!("{operation} with the server down: expected a store error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn s33_server_loss_fails_closed_and_the_same_store_recovers() {
    let Some(mut server) = start_private_server().await else {
        return;
    };
    let prefix = unique_prefix();
    // Few, short reconnection attempts, so that each failing call returns quickly.
    let config = ConnectionManagerConfig::new()
        .set_number_of_retries(1)
        .set_min_delay(Duration::from_millis(10))
        .set_max_delay(Duration::from_millis(100))
        .set_connection_timeout(Some(Duration::from_millis(500)));
    let store = RedisStore::builder(&server.url())
        .key_prefix(prefix.clone())
        .connection_config(config)
        .build()
        .expect("valid Redis store settings")
        .await
        .expect("open the store");

    let user = fresh_user();
    let key = fresh_key();
    let record = sample_record(Some(&user), r#"{"before":"restart"}"#);
    assert_eq!(
        store
            .create(&key, &record, SystemTime::now())
            .await
            .expect("create"),
        CreateOutcome::Created
    );

    server.stop();
    let now = now_millis();
    let mut next = record.clone();
    next.version = 2;
    let new_key = fresh_key();
    assert_store_failure("load", store.load(&key, now).await);
    assert_store_failure(
        "create",
        store.create(&new_key, &record, SystemTime::now()).await,
    );
    assert_store_failure("save", store.save(&key, &next, 1, now).await);
    assert_store_failure(
        "touch",
        store
            .touch(&key, 1, now, now + Duration::from_secs(60), now)
            .await,
    );
    assert_store_failure("rotate", store.rotate(&key, &new_key, &next, 1, now).await);
    assert_store_failure("delete", store.delete(&key, SystemTime::now()).await);
    assert_store_failure("delete_expired", store.delete_expired(now).await);
    assert_store_failure(
        "sessions_of",
        store
            .user_index()
            .expect("a per-user index")
            .sessions_of(&user, now)
            .await,
    );
    assert_store_failure(
        "revoke_user",
        store
            .user_index()
            .expect("a per-user index")
            .revoke_user(&user, None, SystemTime::now())
            .await,
    );

    server.start().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let outcome = loop {
        match store.load(&key, now_millis()).await {
            Ok(outcome) => break outcome,
            Err(error) => {
                assert!(
                    Instant::now() < deadline,
                    "the store did not recover within 10 s: {error:?}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    assert_eq!(
        outcome,
        LoadOutcome::Missing,
        "the restarted server keeps nothing"
    );
    let mut conn = raw_connection(&server.url()).await;
    let size: i64 = redis::cmd("DBSIZE")
        .query_async(&mut conn)
        .await
        .expect("DBSIZE");
    assert_eq!(size, 0, "no failed operation left anything behind");

    // The same store value works fully again, scripts included (the restarted server has an
    // empty script cache), and keeps the index consistent.
    let now = now_millis();
    assert_eq!(
        store
            .create(&key, &record, SystemTime::now())
            .await
            .expect("create"),
        CreateOutcome::Created
    );
    assert_eq!(
        store
            .rotate(&key, &new_key, &next, 1, now)
            .await
            .expect("rotate"),
        RotateOutcome::Rotated
    );
    let listed = store
        .user_index()
        .expect("a per-user index")
        .sessions_of(&user, now)
        .await
        .expect("sessions_of");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].handle, SessionHandle::from_store_key(new_key));
    assert_index_consistent(&mut conn, &prefix).await;
    assert_eq!(
        store
            .user_index()
            .expect("a per-user index")
            .revoke_user(&user, None, SystemTime::now())
            .await
            .expect("revoke_user"),
        1
    );
    // What is left is the rotation's marker under the old key, which expires by itself.
    assert_eq!(
        keys_under(&mut conn, &prefix).await,
        vec![format!("{prefix}s:{}", key.to_hex())],
        "revoking the last session leaves only the rotation's marker"
    );
    assert_eq!(
        store.load(&key, now).await.expect("load"),
        LoadOutcome::Moved
    );
}

#[tokio::test]
async fn s33_the_layer_answers_with_its_error_response_while_redis_is_down_and_recovers() {
    let Some(binary) = find_on_path("redis-server") else {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "redis-server must be on PATH under CI"
        );
        eprintln!("skipping: redis-server is not on PATH");
        return;
    };
    let mut server = ServerGuard::new(binary, free_port());
    server.start().await;
    let config = ConnectionManagerConfig::new()
        .set_number_of_retries(1)
        .set_min_delay(Duration::from_millis(10))
        .set_max_delay(Duration::from_millis(100))
        .set_connection_timeout(Some(Duration::from_millis(500)));
    let store = RedisStore::builder(&server.url())
        .key_prefix(unique_prefix())
        .connection_config(config)
        .build()
        .expect("valid Redis store settings")
        .await
        .expect("open the store");
    let app = common::app().layer(sessionware::SessionLayer::new(
        store,
        sessionware::Key::generate(),
    ));
    let mut client = common::Client::new(app.clone());
    client.send("POST", "/login/alice").await;
    assert_eq!(client.send("GET", "/user").await.body, "alice");

    server.stop();
    // A read fails in the handler (an empty 500 from `SessionError`'s response), a write
    // fails when the response is finished (the layer's error response): neither sets a
    // cookie, and the client keeps its old one.
    let cookie = client.cookie.clone();
    let read = client.send("GET", "/user").await;
    assert_eq!(read.status, axum::http::StatusCode::INTERNAL_SERVER_ERROR);
    assert!(read.set_cookies().is_empty());
    let write = common::send(&app, "POST", "/set/k/v", None).await;
    assert_eq!(write.status, axum::http::StatusCode::INTERNAL_SERVER_ERROR);
    assert!(write.set_cookies().is_empty());
    assert_eq!(client.cookie, cookie);

    // The server comes back empty (it keeps nothing); the same app serves again without a
    // restart: the old cookie is now anonymous and new sessions work.
    server.start().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let reply = common::send(&app, "POST", "/set/k/v", None).await;
        if reply.status == axum::http::StatusCode::OK {
            assert!(reply.session_cookie().is_some());
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the app did not recover within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        client.send("GET", "/user").await.status,
        axum::http::StatusCode::UNAUTHORIZED
    );
    client.send("POST", "/login/alice").await;
    assert_eq!(client.send("GET", "/user").await.body, "alice");
}

// S44 ---------------------------------------------------------------------------------------

/// The operation timeout of the S44 stores.
const S44_TIMEOUT: Duration = Duration::from_millis(300);
/// How long an S44 operation may take: the timeout plus a generous margin for a busy machine.
const S44_BOUND: Duration = Duration::from_secs(3);

/// Runs each `SessionStore` operation once, on `key` and `user`, and returns its name, its
/// outcome and how long it took.
async fn every_operation(
    store: &RedisStore,
    key: StoreKey,
    user: &str,
) -> Vec<(&'static str, Result<(), StoreError>, Duration)> {
    let now = now_millis();
    let record = sample_record(Some(user), "{}");
    let mut next = record.clone();
    next.version = 2;
    let mut timed = Vec::new();
    macro_rules! time {
        ($name:literal, $operation:expr) => {{
            let started = Instant::now();
            let outcome = $operation.await.map(|_| ());
            timed.push(($name, outcome, started.elapsed()));
        }};
    }
    time!("ping", store.ping());
    time!("load", store.load(&key, now));
    time!(
        "create",
        store.create(&fresh_key(), &record, SystemTime::now())
    );
    time!("save", store.save(&key, &next, 1, now));
    time!(
        "touch",
        store.touch(&key, 1, now, now + Duration::from_secs(60), now)
    );
    time!("delete", store.delete(&key, SystemTime::now()));
    time!("rotate", store.rotate(&key, &fresh_key(), &next, 1, now));
    time!("delete_expired", store.delete_expired(now));
    time!(
        "sessions_of",
        store
            .user_index()
            .expect("a per-user index")
            .sessions_of(user, now)
    );
    time!(
        "revoke_user",
        store
            .user_index()
            .expect("a per-user index")
            .revoke_user(user, None, SystemTime::now())
    );
    // `revoke` is the default one: a `delete` of the handle's key.
    time!(
        "delete",
        store
            .user_index()
            .expect("a per-user index")
            .revoke(&SessionHandle::from_store_key(key), SystemTime::now())
    );
    timed
}

async fn s44_store(url: &str) -> RedisStore {
    RedisStore::builder(url)
        .key_prefix(unique_prefix())
        .operation_timeout(S44_TIMEOUT)
        .build()
        .expect("valid Redis store settings")
        .await
        .expect("open the store")
}

#[tokio::test(flavor = "multi_thread")]
async fn s44_a_paused_server_times_out_every_operation_and_the_same_store_recovers() {
    let Some(mut server) = start_private_server().await else {
        return;
    };
    let store = s44_store(&server.url()).await;
    let user = fresh_user();
    let key = fresh_key();
    store
        .create(&key, &sample_record(Some(&user), "{}"), SystemTime::now())
        .await
        .expect("create");

    server.pause();
    for (operation, outcome, elapsed) in every_operation(&store, key, &user).await {
        eprintln!("paused server: {operation} returned after {elapsed:?}: {outcome:?}");
        match outcome {
            Err(StoreError::Timeout {
                operation: reported,
                timeout,
            }) => {
                assert_eq!(reported, operation);
                assert_eq!(timeout, S44_TIMEOUT);
            }
            other => panic!("{operation} on a paused server: expected a timeout, got {other:?}"),
        }
        assert!(
            elapsed >= S44_TIMEOUT && elapsed < S44_BOUND,
            "{operation} took {elapsed:?}"
        );
    }

    // The abandoned scripts run once the server resumes; the same store then works again.
    server.resume();
    let fresh = fresh_key();
    let deadline = Instant::now() + Duration::from_secs(10);
    let created = loop {
        match store
            .create(&fresh, &sample_record(Some(&user), "{}"), SystemTime::now())
            .await
        {
            Ok(outcome) => break outcome,
            Err(error) => {
                assert!(
                    Instant::now() < deadline,
                    "the store did not recover within 10 s: {error:?}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    assert_eq!(created, CreateOutcome::Created);
    assert!(matches!(
        store.load(&fresh, now_millis()).await.expect("load"),
        LoadOutcome::Found(_)
    ));
    let listed = store
        .user_index()
        .expect("a per-user index")
        .sessions_of(&user, now_millis())
        .await
        .expect("sessions_of");
    assert!(
        listed
            .iter()
            .any(|info| info.handle == SessionHandle::from_store_key(fresh)),
        "{listed:?}"
    );
    assert!(
        store
            .user_index()
            .expect("a per-user index")
            .revoke_user(&user, None, SystemTime::now())
            .await
            .expect("revoke_user")
            >= 1
    );
    assert!(
        store
            .user_index()
            .expect("a per-user index")
            .sessions_of(&user, now_millis())
            .await
            .expect("sessions_of")
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn s44_connecting_and_every_operation_on_a_dead_server_end_within_the_timeout() {
    let Some(mut server) = start_private_server().await else {
        return;
    };
    let url = server.url();

    // Connecting to a paused server: the TCP handshake succeeds, nothing ever answers.
    server.pause();
    let started = Instant::now();
    let built = RedisStore::builder(&url)
        .operation_timeout(S44_TIMEOUT)
        .build()
        .expect("valid Redis store settings")
        .await;
    let elapsed = started.elapsed();
    eprintln!("paused server: build returned after {elapsed:?}: {built:?}");
    assert!(
        matches!(
            built,
            Err(StoreError::Timeout {
                operation: "connect",
                timeout: S44_TIMEOUT
            })
        ),
        "{built:?}"
    );
    assert!(elapsed < S44_BOUND, "build took {elapsed:?}");
    let started = Instant::now();
    let opened = RedisStore::connect(&url).await;
    let elapsed = started.elapsed();
    eprintln!("paused server: open returned after {elapsed:?}: {opened:?}");
    assert!(
        matches!(
            opened,
            Err(StoreError::Timeout {
                operation: "connect",
                timeout,
            }) if timeout == Duration::from_secs(2)
        ),
        "open uses the default timeout of 2 s: {opened:?}"
    );
    assert!(
        elapsed < Duration::from_secs(2) + S44_BOUND,
        "open took {elapsed:?}"
    );
    server.resume();

    let store = s44_store(&url).await;
    let user = fresh_user();
    let key = fresh_key();
    store
        .create(&key, &sample_record(Some(&user), "{}"), SystemTime::now())
        .await
        .expect("create");
    server.stop();
    for (operation, outcome, elapsed) in every_operation(&store, key, &user).await {
        eprintln!("dead server: {operation} returned after {elapsed:?}: {outcome:?}");
        match outcome {
            Err(StoreError::Timeout {
                operation: reported,
                timeout,
            }) => {
                assert_eq!(reported, operation);
                assert_eq!(timeout, S44_TIMEOUT);
            }
            Err(StoreError::Unavailable(_) | StoreError::Backend(_)) => {}
            other => panic!("{operation} on a dead server: expected an error, got {other:?}"),
        }
        assert!(elapsed < S44_BOUND, "{operation} took {elapsed:?}");
    }

    let started = Instant::now();
    let built = RedisStore::builder(&url)
        .operation_timeout(S44_TIMEOUT)
        .build()
        .expect("valid Redis store settings")
        .await;
    let elapsed = started.elapsed();
    eprintln!("dead server: build returned after {elapsed:?}: {built:?}");
    assert!(
        matches!(
            built,
            Err(StoreError::Timeout { .. } | StoreError::Unavailable(_) | StoreError::Backend(_))
        ),
        "{built:?}"
    );
    assert!(elapsed < S44_BOUND, "build took {elapsed:?}");
}

#[tokio::test]
async fn s44_a_zero_operation_timeout_is_refused_before_connecting() {
    let started = Instant::now();
    let refused = RedisStore::builder("redis://127.0.0.1:1/")
        .operation_timeout(Duration::ZERO)
        .build();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "no connection attempt"
    );
    assert!(matches!(
        refused,
        Err(sessionware::ConfigError::InvalidStoreSetting {
            setting: "operation_timeout",
            ..
        })
    ));
}
