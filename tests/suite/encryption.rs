//! Encryption at rest (`SessionLayer::encrypt_data_at_rest`) on every server-side store: what
//! the store holds shows no values, values moved between records do not open, records
//! written without encryption do not open, and keys rotate. The remote stores read
//! `REDIS_URL`, `DATABASE_URL` and `MYSQL_URL`; each prints why and passes when its
//! variable is unset.
#![cfg(all(
    feature = "encryption",
    feature = "redis",
    feature = "postgres",
    feature = "mysql",
    feature = "sqlite"
))]

use std::time::SystemTime;

use crate::common::{Client, app, send, store_key_of};
use sessionware::store::conformance::fresh_key;
use sessionware::{
    Key, LoadOutcome, MemoryStore, MySqlStore, PostgresStore, Record, RedisStore, SaveOutcome,
    SessionLayer, SessionStore, SqliteStore,
};

/// A value an application would never want in a backup.
const SECRET: &str = "csrf-secret-4f1d9a";

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

fn cookie(value: &str) -> String {
    format!("__Host-session={value}")
}

async fn stored(store: &impl SessionStore, cookie_value: &str) -> Record {
    match store
        .load(&store_key_of(cookie_value), SystemTime::now())
        .await
        .expect("load")
    {
        LoadOutcome::Found(record) => record,
        other => panic!("expected a stored record, found {other:?}"),
    }
}

/// Every guarantee of encryption at rest, on `store`.
async fn values_are_sealed_in_the_store<S: SessionStore + Clone>(store: S) {
    let key = Key::generate();
    let encrypted = |key: Key| SessionLayer::new(store.clone(), key).encrypt_data_at_rest();
    let app_ = app().layer(encrypted(key.clone()));
    let mut browser = Client::new(app_.clone());
    browser.send("POST", "/login/alice").await;
    browser.send("POST", &format!("/set/csrf/{SECRET}")).await;
    assert_eq!(browser.send("GET", "/get/csrf").await.body, SECRET);
    let value = browser.cookie.clone().expect("cookie");

    // The store holds neither the values nor their names; what it needs stays readable.
    let record = stored(&store, &value).await;
    assert!(!contains(&record.data, SECRET.as_bytes()));
    assert!(!contains(&record.data, b"csrf"));
    assert_eq!(record.user.as_deref(), Some("alice"));

    // Values copied into another session's record do not open there: that session is
    // anonymous.
    let mut other = Client::new(app_.clone());
    other.send("POST", "/set/csrf/other").await;
    let other_value = other.cookie.clone().expect("cookie");
    let target = stored(&store, &other_value).await;
    let moved = Record {
        version: target.version + 1,
        data: record.data.clone(),
        ..target.clone()
    };
    assert_eq!(
        store
            .save(
                &store_key_of(&other_value),
                &moved,
                target.version,
                SystemTime::now()
            )
            .await
            .expect("save"),
        SaveOutcome::Saved
    );
    assert_eq!(other.send("GET", "/get/csrf").await.body, "none");

    // A session written by a layer without encryption does not open under one with it.
    let plain = app().layer(SessionLayer::new(store.clone(), key.clone()));
    let mut plain_browser = Client::new(plain);
    plain_browser.send("POST", "/set/csrf/plain").await;
    let plain_value = plain_browser.cookie.clone().expect("cookie");
    assert!(contains(&stored(&store, &plain_value).await.data, b"plain"));
    let reply = send(&app_, "GET", "/get/csrf", Some(&cookie(&plain_value))).await;
    assert_eq!(reply.body, "none");

    // Key rotation: the new key with the old one as previous still opens the values; the
    // next write seals them under the new key, which alone then opens them.
    let new_key = Key::generate();
    let rotated = app().layer(encrypted(new_key.clone()).previous_keys([key]));
    browser.service = rotated;
    assert_eq!(browser.send("GET", "/get/csrf").await.body, SECRET);
    browser.send("POST", "/set/theme/dark").await;
    browser.service = app().layer(encrypted(new_key));
    assert_eq!(browser.send("GET", "/get/csrf").await.body, SECRET);
    assert_eq!(browser.send("GET", "/get/theme").await.body, "dark");
    let record = stored(&store, browser.cookie.as_deref().expect("cookie")).await;
    assert!(!contains(&record.data, SECRET.as_bytes()));
    assert!(!contains(&record.data, b"dark"));
}

#[tokio::test]
async fn memory_store_values_are_sealed() {
    values_are_sealed_in_the_store(MemoryStore::default()).await;
}

#[tokio::test]
async fn sqlite_store_values_are_sealed() {
    let store = SqliteStore::connect("sqlite::memory:")
        .await
        .expect("in-memory database");
    store.migrate().await.expect("migrate");
    values_are_sealed_in_the_store(store).await;
}

#[tokio::test]
async fn redis_store_values_are_sealed_and_a_raw_dump_shows_none() {
    let Ok(url) = std::env::var("REDIS_URL") else {
        eprintln!("skipping: REDIS_URL is not set");
        return;
    };
    let prefix = format!("sw-sealed-{}:", &fresh_key().to_hex()[..12]);
    let store = RedisStore::builder(&url)
        .key_prefix(prefix.clone())
        .build()
        .expect("valid settings")
        .await
        .expect("REDIS_URL is set but the server is unreachable");
    values_are_sealed_in_the_store(store).await;

    // Everything the store wrote, read raw: no secret anywhere.
    let redis = redis::Client::open(url.as_str()).expect("url");
    let mut connection = redis
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut connection)
        .await
        .expect("KEYS");
    assert!(!keys.is_empty());
    for key in &keys {
        let dumped: Vec<u8> = redis::cmd("DUMP")
            .arg(key)
            .query_async(&mut connection)
            .await
            .expect("DUMP");
        assert!(!contains(&dumped, SECRET.as_bytes()), "{key}");
        assert!(!contains(&dumped, b"dark"), "{key}");
    }
    let _: i64 = redis::cmd("DEL")
        .arg(&keys)
        .query_async(&mut connection)
        .await
        .expect("DEL");
}

#[tokio::test]
async fn postgres_store_values_are_sealed_and_a_raw_dump_shows_none() {
    let Ok(url) = std::env::var("DATABASE_URL") else {
        eprintln!("skipping: DATABASE_URL is not set");
        return;
    };
    let pool = sqlx::PgPool::connect(&url)
        .await
        .expect("DATABASE_URL is set but the server is unreachable");
    let table = format!("sw_sealed_{}", &fresh_key().to_hex()[..12]);
    let store = PostgresStore::builder(pool)
        .table(table.clone())
        .build()
        .expect("valid settings");
    store.migrate().await.expect("migrate");
    values_are_sealed_in_the_store(store.clone()).await;

    let rows: Vec<(Vec<u8>,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT data FROM \"public\".\"{table}\" WHERE user_id = 'alice'"
    )))
    .fetch_all(store.pool())
    .await
    .expect("select");
    assert_eq!(rows.len(), 1);
    assert!(!contains(&rows[0].0, SECRET.as_bytes()));
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP TABLE \"public\".\"{table}\""
    )))
    .execute(store.pool())
    .await
    .expect("drop");
}

#[tokio::test]
async fn mysql_store_values_are_sealed() {
    let Ok(url) = std::env::var("MYSQL_URL") else {
        eprintln!("skipping: MYSQL_URL is not set");
        return;
    };
    let pool = sqlx::MySqlPool::connect(&url)
        .await
        .expect("MYSQL_URL is set but the server is unreachable");
    let table = format!("sw_sealed_{}", &fresh_key().to_hex()[..12]);
    let store = MySqlStore::builder(pool)
        .table(table.clone())
        .build()
        .expect("valid settings");
    store.migrate().await.expect("migrate");
    values_are_sealed_in_the_store(store.clone()).await;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP TABLE `{table}`")))
        .execute(store.pool())
        .await
        .expect("drop");
}
