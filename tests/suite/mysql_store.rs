//! `MySqlStore` against a real MySQL or MariaDB server, read from `MYSQL_URL`.
//!
//! Each test works in a table of its own, created by `migrate()` and dropped at the end, so
//! runs never see each other's rows. Without `MYSQL_URL` the tests that need a server print
//! why and pass; with it set and the server unreachable they fail.
#![cfg(feature = "mysql")]

use std::time::{Duration, SystemTime};

use sessionware::StoreError;
use sessionware::store::conformance::{fresh_key, now_millis, run_all, sample_record};
use sessionware::{CreateOutcome, LoadOutcome, MySqlStore, SaveOutcome, SessionStore, StoreKey};
use sqlx::MySqlPool;
use sqlx::mysql::MySqlPoolOptions;

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
