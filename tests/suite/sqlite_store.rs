//! `SqliteStore` on a file database in a temporary directory and on an in-memory one.
//!
//! SQLite needs no server, so none of these tests is ever skipped.
#![cfg(feature = "sqlite")]

use std::path::PathBuf;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use sessionware::store::conformance::{fresh_key, fresh_user, now_millis, run_all, sample_record};
use sessionware::{
    ConfigError, CreateOutcome, LoadOutcome, SaveOutcome, SessionStore, SqliteStore, StoreError,
    UserIndex,
};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

/// A directory of its own under the system's temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let path =
            std::env::temp_dir().join(format!("sessionware-{}", &fresh_key().to_hex()[..16]));
        std::fs::create_dir_all(&path).expect("create a temporary directory");
        Self(path)
    }

    /// The URL of the database file `name` in the directory.
    fn url(&self, name: &str) -> String {
        format!("sqlite://{}", self.0.join(name).display())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A migrated store on the file `sessions.db` in `dir`, opened as `SqliteStore::connect`
/// opens it but allowed 30 seconds to connect and for each operation: opening a file (and
/// its fsyncs) can take longer than `connect`'s 2 seconds on a machine busy with the rest of
/// the suite, and 500 writers queued for the store's one writer turn wait longer than the
/// default operation timeout there (the timeout counts the wait; what these tests check is
/// that no writer sees `SQLITE_BUSY`).
/// `connect` itself is tested by `connect_creates_a_file_in_wal_mode_that_survives_reopening`.
async fn file_store(dir: &TempDir) -> SqliteStore {
    let options = SqliteConnectOptions::from_str(&dir.url("sessions.db"))
        .expect("a valid URL")
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(1));
    let pool = SqlitePoolOptions::new()
        .acquire_timeout(Duration::from_secs(30))
        .connect_with(options)
        .await
        .expect("connect to a file database");
    let store = SqliteStore::builder(pool)
        .operation_timeout(Duration::from_secs(30))
        .build()
        .expect("valid configuration");
    store.migrate().await.expect("migrate failed");
    store
}

async fn run(store: &SqliteStore, statement: String) {
    sqlx::query(sqlx::AssertSqlSafe(statement))
        .execute(store.pool())
        .await
        .expect("statement failed");
}

async fn row_count(store: &SqliteStore) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM \"{}\"",
        store.table()
    )))
    .fetch_one(store.pool())
    .await
    .expect("count failed")
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_file_store_passes_the_conformance_suite() {
    let dir = TempDir::new();
    let store = file_store(&dir).await;
    run_all(&store).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_in_memory_store_passes_the_conformance_suite() {
    let store = SqliteStore::connect("sqlite::memory:")
        .await
        .expect("connect in memory");
    store.migrate().await.expect("migrate failed");
    // One connection, so every operation sees the one database.
    assert_eq!(store.pool().options().get_max_connections(), 1);
    run_all(&store).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn migrate_is_idempotent_and_safe_to_run_concurrently() {
    let dir = TempDir::new();
    let store = SqliteStore::connect(&dir.url("migrate.db"))
        .await
        .expect("connect");
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
    // Another store (its own pool, its own writer turn) on the same file, at once.
    let other = SqliteStore::connect(&dir.url("migrate.db"))
        .await
        .expect("connect");
    let (a, b) = tokio::join!(store.migrate(), other.migrate());
    a.expect("migrate failed");
    b.expect("migrate failed");

    let key = fresh_key();
    assert_eq!(
        store
            .create(&key, &sample_record(None, "{}"), SystemTime::now())
            .await
            .expect("create failed"),
        CreateOutcome::Created
    );
    store.migrate().await.expect("migrate over data failed");
    assert!(matches!(
        store.load(&key, now_millis()).await.expect("load failed"),
        LoadOutcome::Found(_)
    ));
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?1 \
         AND sql IS NOT NULL ORDER BY name",
    )
    .bind(store.table())
    .fetch_all(store.pool())
    .await
    .expect("listing indexes failed");
    assert_eq!(
        indexes,
        [
            "sessionware_sessions_expires_at_idx",
            "sessionware_sessions_user_id_idx"
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn connect_creates_a_file_in_wal_mode_that_survives_reopening() {
    let dir = TempDir::new();
    let url = dir.url("reopened.db");
    let key = fresh_key();
    let user = fresh_user();
    let mut record = sample_record(Some(&user), r#"{"cart":[1,2]}"#);
    record.label = Some("laptop".to_owned());
    {
        let store = SqliteStore::connect(&url).await.expect("connect");
        store.migrate().await.expect("migrate failed");
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(store.pool())
            .await
            .expect("pragma");
        assert_eq!(mode, "wal", "connect puts a file database in WAL mode");
        store
            .create(&key, &record, SystemTime::now())
            .await
            .expect("create failed");
        store.pool().close().await;
    }
    assert!(
        dir.0.join("reopened.db").exists(),
        "connect created the file"
    );
    let reopened = SqliteStore::connect(&url).await.expect("reconnect");
    reopened.migrate().await.expect("migrate failed");
    assert_eq!(
        reopened
            .load(&key, now_millis())
            .await
            .expect("load failed"),
        LoadOutcome::Found(record)
    );
    assert_eq!(
        reopened
            .sessions_of(&user, now_millis())
            .await
            .expect("sessions_of failed")
            .len(),
        1
    );
}

/// 500 tasks writing at once, each `rounds` compare-and-swap saves of one of `sessions`
/// sessions: conflicts are expected, errors are not.
async fn many_writers(store: &SqliteStore, sessions: usize) {
    let keys: Vec<_> = (0..sessions).map(|_| fresh_key()).collect();
    for key in &keys {
        store
            .create(key, &sample_record(None, "{}"), SystemTime::now())
            .await
            .expect("create failed");
    }
    let started = std::time::Instant::now();
    let writers: Vec<_> = (0..500)
        .map(|i| {
            let store = store.clone();
            let key = keys[i % sessions];
            tokio::spawn(async move {
                let now = now_millis();
                let LoadOutcome::Found(mut record) = store.load(&key, now).await? else {
                    panic!("the session vanished");
                };
                let expected = record.version;
                record.version += 1;
                record.data = format!(r#"{{"writer":{i}}}"#).into_bytes();
                store.save(&key, &record, expected, now).await
            })
        })
        .collect();
    let mut saved = 0;
    for writer in writers {
        match writer.await.expect("a writer panicked") {
            Ok(SaveOutcome::Saved) => saved += 1,
            Ok(SaveOutcome::Conflict) => {}
            other => panic!("a writer failed: {other:?}"),
        }
    }
    eprintln!(
        "500 writers on {sessions} session(s): {saved} saved in {:?}",
        started.elapsed()
    );
    assert!(saved >= 1);
    let mut total_version = 0;
    for key in &keys {
        let LoadOutcome::Found(record) = store.load(key, now_millis()).await.expect("load") else {
            panic!("a session vanished");
        };
        total_version += record.version - 1;
    }
    assert_eq!(total_version, saved, "every save is counted in a version");
}

#[tokio::test(flavor = "multi_thread")]
async fn five_hundred_writers_of_one_session_meet_conflicts_not_errors() {
    let dir = TempDir::new();
    many_writers(&file_store(&dir).await, 1).await;
    let memory = SqliteStore::connect("sqlite::memory:")
        .await
        .expect("connect");
    memory.migrate().await.expect("migrate");
    many_writers(&memory, 1).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn five_hundred_writers_of_many_sessions_all_succeed() {
    let dir = TempDir::new();
    let store = file_store(&dir).await;
    many_writers(&store, 500).await;
    // A second store on the same file, with its own pool: the two wait for each other
    // through SQLite's busy timeout.
    let other = file_store(&dir).await;
    let (a, b) = tokio::join!(many_writers(&store, 250), many_writers(&other, 250));
    let ((), ()) = (a, b);
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_rows_are_corrupt_naming_the_column() {
    let store = SqliteStore::connect("sqlite::memory:")
        .await
        .expect("connect");
    store.migrate().await.expect("migrate");
    let table = format!("\"{}\"", store.table());
    for (column, value) in [
        ("expiry", "'{\"Bogus\":1}'"),
        ("version", "-1"),
        ("created_at", "-5"),
        ("user_id", "X'00ff'"),
    ] {
        let key = fresh_key();
        store
            .create(&key, &sample_record(Some("u"), "{}"), SystemTime::now())
            .await
            .expect("create failed");
        let statement = format!(
            "UPDATE {table} SET {column} = {value} WHERE key = X'{}'",
            key.to_hex()
        );
        // STRICT refuses a blob in a TEXT column: such a row cannot be written at all.
        if column == "user_id" {
            let refused = sqlx::query(sqlx::AssertSqlSafe(statement))
                .execute(store.pool())
                .await;
            assert!(refused.is_err(), "a STRICT table keeps column types");
            continue;
        }
        run(&store, statement).await;
        let error = store
            .load(&key, now_millis())
            .await
            .expect_err("a malformed row must not load");
        assert!(
            matches!(error, StoreError::Corrupt { field, .. } if field == column),
            "{column}: {error:?}"
        );
    }

    // A table that is not STRICT (made by hand) can hold a value of the wrong type.
    let loose = SqliteStore::builder(store.pool().clone())
        .table("loose")
        .build()
        .expect("valid configuration");
    run(
        &store,
        "CREATE TABLE loose (key BLOB PRIMARY KEY, version INTEGER, user_id TEXT, \
         created_at INTEGER, last_active INTEGER, expires_at INTEGER, expiry TEXT, data BLOB, \
         label TEXT, format INTEGER NOT NULL DEFAULT 0)"
            .to_owned(),
    )
    .await;
    let key = fresh_key();
    loose
        .create(&key, &sample_record(None, "{}"), SystemTime::now())
        .await
        .expect("create failed");
    run(
        &store,
        format!(
            "UPDATE loose SET created_at = 'yesterday' WHERE key = X'{}'",
            key.to_hex()
        ),
    )
    .await;
    let error = loose
        .load(&key, now_millis())
        .await
        .expect_err("text in a time column must not load");
    assert!(
        matches!(
            error,
            StoreError::Corrupt {
                field: "created_at",
                ..
            }
        ),
        "{error:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_row_of_a_later_format_loads_as_missing_and_is_left_alone() {
    let store = SqliteStore::connect("sqlite::memory:")
        .await
        .expect("connect");
    store.migrate().await.expect("migrate");
    let key = fresh_key();
    store
        .create(&key, &sample_record(None, "{}"), SystemTime::now())
        .await
        .expect("create failed");
    let format: i64 = sqlx::query_scalar("SELECT format FROM sessionware_sessions")
        .fetch_one(store.pool())
        .await
        .expect("select");
    assert_eq!(format, 1);
    run(
        &store,
        "UPDATE sessionware_sessions SET format = 2".to_owned(),
    )
    .await;
    assert_eq!(
        store.load(&key, now_millis()).await.expect("load failed"),
        LoadOutcome::Missing
    );
    assert_eq!(row_count(&store).await, 1);
}

#[tokio::test]
async fn invalid_table_names_are_refused() {
    let pool = SqlitePoolOptions::new()
        .connect_lazy("sqlite::memory:")
        .expect("lazy pool");
    for bad in [
        "a;drop table x",
        "1abc",
        "",
        "a\"b",
        "ta ble",
        "sqlite_sessions",
    ] {
        let error = SqliteStore::builder(pool.clone())
            .table(bad)
            .build()
            .expect_err(bad);
        assert!(
            matches!(
                error,
                ConfigError::InvalidStoreSetting {
                    setting: "table",
                    ..
                }
            ),
            "{error:?}"
        );
        assert!(
            error.to_string().contains("plain SQLite identifier"),
            "unclear error for {bad:?}: {error}"
        );
    }
    for good in ["app", "_sessions", "Sessions2"] {
        assert!(
            SqliteStore::builder(pool.clone())
                .table(good)
                .build()
                .is_ok()
        );
    }
    assert!(
        SqliteStore::builder(pool.clone())
            .delete_batch_size(0)
            .build()
            .is_err()
    );
    assert!(
        SqliteStore::builder(pool)
            .operation_timeout(Duration::ZERO)
            .build()
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_expired_purges_a_backlog_in_batches() {
    let store = SqliteStore::connect("sqlite::memory:")
        .await
        .expect("connect");
    store.migrate().await.expect("migrate");
    let small = SqliteStore::builder(store.pool().clone())
        .delete_batch_size(2)
        .build()
        .expect("valid configuration");
    let now = now_millis();
    for _ in 0..5 {
        let mut record = sample_record(None, "{}");
        record.expires_at = now - Duration::from_secs(1);
        small
            .create(&fresh_key(), &record, SystemTime::now())
            .await
            .expect("create failed");
    }
    small
        .create(&fresh_key(), &sample_record(None, "{}"), SystemTime::now())
        .await
        .expect("create failed");
    assert_eq!(small.delete_expired(now).await.expect("delete_expired"), 5);
    assert_eq!(row_count(&store).await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unopenable_file_is_a_store_error() {
    let error = SqliteStore::connect("sqlite:///nonexistent-dir-sessionware/x/sessions.db")
        .await
        .expect_err("a missing directory cannot hold a database");
    assert!(matches!(error, StoreError::Backend(_)), "{error:?}");
}

#[tokio::test]
async fn debug_shows_the_table_only() {
    let pool = SqlitePoolOptions::new()
        .connect_lazy("sqlite::memory:")
        .expect("lazy pool");
    let shown = format!(
        "{:?} {:?}",
        SqliteStore::new(pool.clone()),
        SqliteStore::builder(pool)
    );
    assert!(shown.contains("sessionware_sessions"), "{shown}");
}
