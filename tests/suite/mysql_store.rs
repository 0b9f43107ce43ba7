//! `MySqlStore` against a real MySQL or MariaDB server, read from `MYSQL_URL`.
//!
//! Each test works in a table of its own, created by `migrate()` and dropped at the end, so
//! runs never see each other's rows. Without `MYSQL_URL` the tests that need a server print
//! why and pass; with it set and the server unreachable they fail.
#![cfg(feature = "mysql")]

use crate::common::proxy::{self, every_operation, operations_are_bounded_and_recover};
use crate::common::{Client, app, send, store_key_of};

use std::error::Error as _;
use std::net::TcpListener;
use std::time::{Duration, Instant, SystemTime};

use axum::http::StatusCode;
use base64::Engine as _;
use sessionware::StoreError;
use sessionware::store::conformance::{fresh_key, now_millis, run_all, sample_record};
use sessionware::{
    CreateOutcome, Key, LoadOutcome, MySqlStore, SaveOutcome, SessionLayer, SessionStore, StoreKey,
};
use sqlx::MySqlPool;
use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions};

/// A pool on `MYSQL_URL`, or `None` (after saying why) when it is unset.
async fn pool() -> Option<MySqlPool> {
    let Ok(url) = std::env::var("MYSQL_URL") else {
        eprintln!("skipping: MYSQL_URL is not set");
        return None;
    };
    let pool = MySqlPoolOptions::new()
        .max_connections(20)
        .acquire_timeout(Duration::from_secs(10))
        .connect(&url)
        .await
        .expect("MYSQL_URL is set but the server is unreachable");
    Some(pool)
}

/// A table name no other test or run uses.
fn unique_table() -> String {
    format!("sw_test_{}", &fresh_key().to_hex()[..16])
}

/// A migrated store on a fresh table, with the given cleanup batch size.
async fn fresh_store(pool: &MySqlPool, batch: u32) -> MySqlStore {
    let store = MySqlStore::builder(pool.clone())
        .table(unique_table())
        .delete_batch_size(batch)
        .operation_timeout(Duration::from_secs(10))
        .build()
        .expect("valid configuration");
    store.migrate().await.expect("migrate failed");
    store
}

async fn drop_table(store: &MySqlStore) {
    let statement = format!("DROP TABLE `{}`", store.table());
    sqlx::query(sqlx::AssertSqlSafe(statement))
        .execute(store.pool())
        .await
        .expect("drop table failed");
}

async fn row_count(store: &MySqlStore) -> i64 {
    let statement = format!("SELECT COUNT(*) FROM `{}`", store.table());
    sqlx::query_scalar(sqlx::AssertSqlSafe(statement))
        .fetch_one(store.pool())
        .await
        .expect("count failed")
}

/// Runs `statement` (with `{table}` for the store's table) on the row under `key`.
async fn update_row(store: &MySqlStore, statement: &str, key: &StoreKey) {
    let statement = statement.replace("{table}", &format!("`{}`", store.table()));
    sqlx::query(sqlx::AssertSqlSafe(statement))
        .bind(key.as_bytes().as_slice())
        .execute(store.pool())
        .await
        .expect("update failed");
}

#[tokio::test(flavor = "multi_thread")]
async fn mysql_store_passes_the_conformance_suite() {
    let Some(pool) = pool().await else { return };
    let store = fresh_store(&pool, 1_000).await;
    run_all(&store).await;
    drop_table(&store).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mysql_migrate_is_idempotent_and_safe_to_run_concurrently() {
    let Some(pool) = pool().await else { return };
    let store = MySqlStore::builder(pool.clone())
        .table(unique_table())
        .build()
        .expect("valid configuration");

    // Several instances starting at once, on a table that does not exist yet.
    let runs: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.migrate().await })
        })
        .collect();
    for run in runs {
        run.await
            .expect("migrate task panicked")
            .expect("concurrent migrate failed");
    }
    store.migrate().await.expect("second migrate failed");
    store.migrate().await.expect("third migrate failed");

    let key = fresh_key();
    assert_eq!(
        store
            .create(&key, &sample_record(None, "{}"), SystemTime::now())
            .await
            .expect("create failed"),
        CreateOutcome::Created
    );
    // A later migrate leaves existing rows alone.
    store.migrate().await.expect("migrate over data failed");
    assert!(matches!(
        store.load(&key, now_millis()).await.expect("load failed"),
        LoadOutcome::Found(_)
    ));

    let mut indexes: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT CAST(index_name AS CHAR) FROM information_schema.statistics \
         WHERE table_schema = DATABASE() AND table_name = ?",
    )
    .bind(store.table())
    .fetch_all(&pool)
    .await
    .expect("listing indexes failed");
    indexes.sort();
    assert_eq!(indexes, ["PRIMARY", "expires_at_idx", "user_id_idx"]);
    drop_table(&store).await;
}

#[tokio::test]
async fn mysql_invalid_table_names_are_refused() {
    // A lazy pool never connects unless used: this test needs no server.
    let pool = MySqlPoolOptions::new()
        .connect_lazy("mysql://nobody@127.0.0.1:1/none")
        .expect("lazy pool");
    let too_long = "a".repeat(65);
    for bad in [
        "a;drop table x",
        "1abc",
        "",
        too_long.as_str(),
        "a`b",
        "ta ble",
    ] {
        let error = MySqlStore::builder(pool.clone())
            .table(bad)
            .build()
            .expect_err(bad);
        assert!(
            matches!(
                error,
                sessionware::ConfigError::InvalidStoreSetting {
                    setting: "table",
                    ..
                }
            ),
            "{error:?}"
        );
        let reason = error.to_string();
        assert!(
            reason.contains("setting `table`") && reason.contains("plain MySQL identifier"),
            "unclear error for {bad:?}: {reason}"
        );
    }
    let longest = "a".repeat(64);
    for good in ["app", "_sessions", "Sessions2", longest.as_str()] {
        assert!(
            MySqlStore::builder(pool.clone())
                .table(good)
                .build()
                .is_ok(),
            "{good} must be accepted"
        );
    }
    assert!(
        MySqlStore::builder(pool.clone())
            .delete_batch_size(0)
            .build()
            .is_err(),
        "a zero batch size would never finish"
    );
    assert!(
        MySqlStore::builder(pool.clone())
            .operation_timeout(Duration::ZERO)
            .build()
            .is_err(),
        "a zero timeout fails every operation"
    );
}

#[tokio::test]
async fn mysql_debug_shows_no_credentials() {
    let pool = MySqlPoolOptions::new()
        .connect_lazy("mysql://app:hunter2@127.0.0.1:1/none")
        .expect("lazy pool");
    let store = MySqlStore::new(pool.clone());
    let shown = format!("{store:?} {:?}", MySqlStore::builder(pool));
    assert!(shown.contains("sessionware_sessions"), "{shown}");
    assert!(!shown.contains("hunter2"), "{shown}");
}

#[tokio::test(flavor = "multi_thread")]
async fn mysql_malformed_rows_are_corrupt_naming_the_column() {
    let Some(pool) = pool().await else { return };
    let store = fresh_store(&pool, 1_000).await;
    let cases = [
        (
            "UPDATE {table} SET expiry = '{\"Bogus\":1}' WHERE `key` = ?",
            "expiry",
        ),
        ("UPDATE {table} SET version = -1 WHERE `key` = ?", "version"),
        (
            "UPDATE {table} SET created_at = -5 WHERE `key` = ?",
            "created_at",
        ),
        (
            "UPDATE {table} SET user_id = X'FF00' WHERE `key` = ?",
            "user_id",
        ),
    ];
    for (statement, column) in cases {
        let key = fresh_key();
        store
            .create(&key, &sample_record(Some("u"), "{}"), SystemTime::now())
            .await
            .expect("create failed");
        update_row(&store, statement, &key).await;
        let error = store
            .load(&key, now_millis())
            .await
            .expect_err("a malformed row must not load");
        assert!(
            matches!(error, StoreError::Corrupt { field, .. } if field == column),
            "{column}: {error:?}"
        );
    }
    drop_table(&store).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mysql_a_row_of_a_later_format_loads_as_missing_and_is_left_alone() {
    let Some(pool) = pool().await else { return };
    let store = fresh_store(&pool, 1_000).await;
    let key = fresh_key();
    store
        .create(&key, &sample_record(None, "{}"), SystemTime::now())
        .await
        .expect("create failed");
    update_row(
        &store,
        "UPDATE {table} SET format = 2 WHERE `key` = ?",
        &key,
    )
    .await;
    assert!(matches!(
        store.load(&key, now_millis()).await.expect("load failed"),
        LoadOutcome::Missing
    ));
    assert_eq!(
        row_count(&store).await,
        1,
        "the row is left for its release"
    );
    drop_table(&store).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mysql_delete_expired_purges_a_backlog_in_batches() {
    let Some(pool) = pool().await else { return };
    let store = fresh_store(&pool, 7).await;
    let now = now_millis();
    for _ in 0..30 {
        let mut record = sample_record(None, "{}");
        record.expires_at = now - Duration::from_secs(1);
        store
            .create(&fresh_key(), &record, SystemTime::now())
            .await
            .expect("create failed");
    }
    let live = fresh_key();
    store
        .create(&live, &sample_record(None, "{}"), SystemTime::now())
        .await
        .expect("create failed");
    assert_eq!(
        store
            .delete_expired(now)
            .await
            .expect("delete_expired failed"),
        30
    );
    assert_eq!(row_count(&store).await, 1, "only the live row remains");
    assert_eq!(
        store
            .delete_expired(now)
            .await
            .expect("delete_expired failed"),
        0
    );
    drop_table(&store).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mysql_500_concurrent_writers_of_one_session_see_only_conflicts() {
    let Some(pool) = pool().await else { return };
    let store = fresh_store(&pool, 1_000).await;
    let key = fresh_key();
    let record = sample_record(None, "{}");
    store
        .create(&key, &record, SystemTime::now())
        .await
        .expect("create failed");
    let writers: Vec<_> = (0..500)
        .map(|n| {
            let store = store.clone();
            let mut record = record.clone();
            tokio::spawn(async move {
                let expected = record.version;
                record.version = expected + 1;
                record.data = format!("{{\"n\":{n}}}").into_bytes();
                store.save(&key, &record, expected, now_millis()).await
            })
        })
        .collect();
    let (mut saved, mut conflicts) = (0, 0);
    for writer in writers {
        match writer.await.expect("writer panicked") {
            Ok(SaveOutcome::Saved) => saved += 1,
            Ok(SaveOutcome::Conflict) => conflicts += 1,
            other => panic!("only Saved or Conflict expected, got {other:?}"),
        }
    }
    assert_eq!((saved, conflicts), (1, 499));
    let LoadOutcome::Found(found) = store.load(&key, now_millis()).await.expect("load failed")
    else {
        panic!("the session must survive");
    };
    assert_eq!(found.version, record.version + 1);
    drop_table(&store).await;
}

/// Runs `statement` on `pool`, failing the test if the server refuses it.
async fn execute(pool: &MySqlPool, statement: String) {
    sqlx::query(sqlx::AssertSqlSafe(statement.clone()))
        .execute(pool)
        .await
        .unwrap_or_else(|error| panic!("{statement}: {error}"));
}

/// Whether the connection's database has a table named `table`.
async fn table_exists(pool: &MySqlPool, table: &str) -> bool {
    let found: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.tables \
         WHERE table_schema = DATABASE() AND table_name = ?",
    )
    .bind(table)
    .fetch_one(pool)
    .await
    .expect("listing tables failed");
    found > 0
}

/// The accounts a restricted user is created under: any host, and `localhost`, which
/// MariaDB matches before `%` for local connections.
const RESTRICTED_HOSTS: [&str; 2] = ["%", "localhost"];

#[tokio::test(flavor = "multi_thread")]
async fn mysql_migrate_needs_no_create_privilege_once_the_table_exists() {
    let Some(pool) = pool().await else { return };
    let store = fresh_store(&pool, 1_000).await;
    let user = format!("sw_nopriv_{}", &fresh_key().to_hex()[..16]);
    let password = fresh_key().to_hex();
    for host in RESTRICTED_HOSTS {
        execute(
            &pool,
            format!("CREATE USER '{user}'@'{host}' IDENTIFIED BY '{password}'"),
        )
        .await;
        // Row access to the one table: no CREATE, ALTER, INDEX or DROP anywhere.
        execute(
            &pool,
            format!(
                "GRANT SELECT, INSERT, UPDATE, DELETE ON `{}` TO '{user}'@'{host}'",
                store.table()
            ),
        )
        .await;
    }

    let url = std::env::var("MYSQL_URL").expect("checked by pool()");
    let options: MySqlConnectOptions = url.parse().expect("MYSQL_URL parses");
    let app_pool = MySqlPoolOptions::new()
        .max_connections(10)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options.username(&user).password(&password))
        .await
        .expect("connect as the restricted user");
    let app_store = MySqlStore::builder(app_pool.clone())
        .table(store.table())
        .operation_timeout(Duration::from_secs(10))
        .build()
        .expect("valid configuration");
    let migrated = app_store.migrate().await;

    // The same user may not create a table that does not exist: the privileges above are
    // really missing, and the error says which one.
    let missing_table = unique_table();
    let missing = MySqlStore::builder(app_pool.clone())
        .table(missing_table.as_str())
        .build()
        .expect("valid configuration");
    let refused = missing.migrate().await;
    let works = match &migrated {
        Ok(()) => {
            // Every operation of the store, as that user.
            run_all(&app_store).await;
            true
        }
        Err(_) => false,
    };

    app_pool.close().await;
    for host in RESTRICTED_HOSTS {
        execute(&pool, format!("DROP USER '{user}'@'{host}'")).await;
    }
    let missing_created = table_exists(&pool, &missing_table).await;
    if missing_created {
        drop_table(&missing).await;
    }
    drop_table(&store).await;

    migrated.expect("migrate of an existing table needs no CREATE privilege");
    assert!(works);
    let error = refused.expect_err("a user without CREATE cannot create the table");
    assert!(matches!(error, StoreError::Backend(_)), "{error:?}");
    let reason = error.source().map(ToString::to_string).unwrap_or_default();
    assert!(
        reason.contains("CREATE command denied") && reason.contains(&missing_table),
        "the error names neither the missing privilege nor the table: {reason}"
    );
    assert!(!missing_created, "the restricted user created a table");
}

/// A row as stored: key, data, user, expiry and label.
type StoredRow = (Vec<u8>, Vec<u8>, Vec<u8>, String, String);

#[tokio::test(flavor = "multi_thread")]
async fn mysql_s10_the_table_holds_only_store_keys() {
    let Some(pool) = pool().await else { return };
    let store = fresh_store(&pool, 1_000).await;
    let app = app().layer(SessionLayer::new(store.clone(), Key::generate()));
    let mut browser = Client::new(app.clone());
    let reply = browser.send("POST", "/set/theme/dark").await;
    assert_eq!(reply.status, StatusCode::OK);
    let anonymous = browser.cookie.clone().expect("a session cookie");
    let reply = browser.send("POST", "/login/alice").await;
    assert_eq!(reply.status, StatusCode::OK);
    let logged_in = browser.cookie.clone().expect("a session cookie");
    assert_ne!(anonymous, logged_in, "the login gives the session a new ID");
    assert_eq!(browser.send("GET", "/user").await.body, "alice");

    let statement = format!(
        "SELECT `key`, data, COALESCE(user_id, ''), COALESCE(expiry, ''), \
         COALESCE(label, '') FROM `{}`",
        store.table()
    );
    let rows: Vec<StoredRow> = sqlx::query_as(sqlx::AssertSqlSafe(statement))
        .fetch_all(&pool)
        .await
        .expect("select failed");
    // The live session under its new key and the rotation marker under the old one.
    let mut keys: Vec<Vec<u8>> = rows.iter().map(|row| row.0.clone()).collect();
    keys.sort();
    let mut expected = vec![
        store_key_of(&anonymous).as_bytes().to_vec(),
        store_key_of(&logged_in).as_bytes().to_vec(),
    ];
    expected.sort();
    assert_eq!(keys, expected, "the table holds SHA-256 of the IDs, only");

    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let contains = |haystack: &[u8], needle: &[u8]| {
        haystack
            .windows(needle.len())
            .any(|window| window == needle)
    };
    for cookie_value in [&anonymous, &logged_in] {
        let id_part = cookie_value.split('.').next().expect("id part");
        let id = b64.decode(id_part).expect("base64 id");
        for (key, data, user, expiry, label) in &rows {
            assert_eq!(key.len(), 32, "every key is 32 bytes");
            assert_ne!(key, &id, "a raw session ID is a key of the table");
            for column in [data, user, expiry.as_bytes(), label.as_bytes()] {
                for needle in [id.as_slice(), id_part.as_bytes(), cookie_value.as_bytes()] {
                    assert!(!contains(column, needle), "a column holds the session ID");
                }
            }
        }
    }

    // What the table holds, presented as a cookie (with the real tag, or as the whole
    // value, in base64url or hex), opens no session.
    let tag = logged_in.split_once('.').expect("id.tag").1;
    for key in &keys {
        for forged in [
            format!("{}.{tag}", b64.encode(key)),
            b64.encode(key),
            hex_of(key),
        ] {
            let cookie = format!("__Host-session={forged}");
            let reply = send(&app, "GET", "/user", Some(&cookie)).await;
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{forged}");
        }
    }
    drop_table(&store).await;
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn mysql_an_unreachable_server_fails_with_a_store_error() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("local addr").port()
    };
    // A refused connection is retried until the pool's acquire timeout; the operation
    // timeout bounds it too, except for `migrate`, which only the pool bounds.
    let bound = Duration::from_secs(3);
    let pool = MySqlPoolOptions::new()
        .acquire_timeout(Duration::from_millis(500))
        .connect_lazy(&format!("mysql://root@127.0.0.1:{port}/none"))
        .expect("lazy pool");
    let store = MySqlStore::builder(pool)
        .operation_timeout(Duration::from_secs(1))
        .build()
        .expect("valid configuration");
    let started = Instant::now();
    let migrated = store.migrate().await;
    let mut results = vec![("migrate", started.elapsed(), migrated)];
    results.extend(every_operation(&store).await);
    for (name, elapsed, result) in results {
        eprintln!("unreachable: {name} answered in {elapsed:?}: {result:?}");
        assert!(elapsed < bound, "{name} took {elapsed:?}");
        match result {
            Err(StoreError::Unavailable(source)) => {
                assert!(
                    source.downcast_ref::<sqlx::Error>().is_some(),
                    "{name}: the sqlx error must be kept"
                );
            }
            Err(StoreError::Timeout { .. }) => {}
            other => panic!("{name} without a server: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn mysql_s44_operations_are_bounded_while_the_server_is_paused_or_gone_and_recover() {
    let Ok(url) = std::env::var("MYSQL_URL") else {
        eprintln!("skipping: MYSQL_URL is not set");
        return;
    };
    let (proxy, through) = proxy::in_front_of_mysql(&url).await;
    let timeout = Duration::from_millis(300);
    // Generous: a shared, noisy machine. Without the timeout an operation waits for as long
    // as the pause lasts.
    let bound = Duration::from_secs(3);
    let pool = MySqlPoolOptions::new()
        .max_connections(4)
        .connect_with(through)
        .await
        .expect("connect through the proxy");
    let store = MySqlStore::builder(pool)
        .table(unique_table())
        .operation_timeout(timeout)
        .build()
        .expect("valid configuration");
    store.migrate().await.expect("migrate");
    operations_are_bounded_and_recover(&store, &proxy, bound).await;
    drop_table(&store).await;
}
