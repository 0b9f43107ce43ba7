//! `PostgresStore` against a real server, read from `DATABASE_URL`.
//!
//! Each test works in a schema of its own, created by `migrate()` and dropped at the end, so
//! runs never see each other's rows. Without `DATABASE_URL` the tests that need a server
//! print why and pass; with it set and the server unreachable they fail.
#![cfg(feature = "postgres")]

use crate::common::proxy;

use std::collections::HashSet;
use std::error::Error as _;
use std::net::TcpListener;
use std::time::Duration;
use std::time::SystemTime;

use sessionware::StoreError;
use sessionware::store::conformance::{fresh_key, fresh_user, now_millis, run_all, sample_record};
use sessionware::{CreateOutcome, LoadOutcome, PostgresStore, SessionStore, StoreKey};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

/// A pool on `DATABASE_URL`, or `None` (after saying why) when it is unset.
async fn pool() -> Option<PgPool> {
    let Ok(url) = std::env::var("DATABASE_URL") else {
        eprintln!("skipping: DATABASE_URL is not set");
        return None;
    };
    let pool = PgPoolOptions::new()
        .max_connections(20)
        .acquire_timeout(Duration::from_secs(10))
        .connect(&url)
        .await
        .expect("DATABASE_URL is set but the server is unreachable");
    Some(pool)
}

/// A schema name no other test or run uses.
fn unique_schema() -> String {
    format!("sw_test_{}", &fresh_key().to_hex()[..16])
}

/// A migrated store in a fresh schema, with the given cleanup batch size.
async fn fresh_store(pool: &PgPool, batch: u32) -> PostgresStore {
    let store = PostgresStore::builder(pool.clone())
        .schema(unique_schema())
        .table("sessions")
        .delete_batch_size(batch)
        .build()
        .expect("valid configuration");
    store.migrate().await.expect("migrate failed");
    store
}

async fn drop_schema(store: &PostgresStore) {
    let statement = format!("DROP SCHEMA \"{}\" CASCADE", store.schema());
    sqlx::query(sqlx::AssertSqlSafe(statement))
        .execute(store.pool())
        .await
        .expect("drop schema failed");
}

async fn row_count(store: &PostgresStore) -> i64 {
    let statement = format!(
        "SELECT count(*) FROM \"{}\".\"{}\"",
        store.schema(),
        store.table()
    );
    sqlx::query_scalar(sqlx::AssertSqlSafe(statement))
        .fetch_one(store.pool())
        .await
        .expect("count failed")
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_store_passes_the_conformance_suite() {
    let Some(pool) = pool().await else { return };
    let store = fresh_store(&pool, 1_000).await;
    run_all(&store).await;
    drop_schema(&store).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn migrate_is_idempotent_and_safe_to_run_concurrently() {
    let Some(pool) = pool().await else { return };
    let store = PostgresStore::builder(pool.clone())
        .schema(unique_schema())
        .build()
        .expect("valid configuration");

    // Several instances starting at once, on a schema that does not exist yet.
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

    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT indexname::text FROM pg_indexes WHERE schemaname = $1 AND tablename = $2 \
         ORDER BY indexname",
    )
    .bind(store.schema())
    .bind(store.table())
    .fetch_all(&pool)
    .await
    .expect("listing indexes failed");
    assert_eq!(
        indexes,
        [
            "sessionware_sessions_expires_at_idx",
            "sessionware_sessions_pkey",
            "sessionware_sessions_user_id_idx",
        ]
    );
    drop_schema(&store).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn migrate_needs_no_create_privilege_once_the_table_exists() {
    let Some(pool) = pool().await else { return };
    let store = fresh_store(&pool, 1_000).await;
    let role = format!("sw_app_{}", &fresh_key().to_hex()[..16]);
    let setup = [
        format!("CREATE ROLE \"{role}\" LOGIN"),
        format!("GRANT USAGE ON SCHEMA \"{}\" TO \"{role}\"", store.schema()),
        format!(
            "GRANT SELECT, INSERT, UPDATE, DELETE ON \"{}\".\"{}\" TO \"{role}\"",
            store.schema(),
            store.table()
        ),
    ];
    for statement in setup {
        if let Err(error) = sqlx::query(sqlx::AssertSqlSafe(statement))
            .execute(&pool)
            .await
        {
            eprintln!("skipping: DATABASE_URL's role cannot set up a restricted role: {error}");
            drop_schema(&store).await;
            return;
        }
    }

    let url = std::env::var("DATABASE_URL").expect("checked by pool()");
    let options: PgConnectOptions = url.parse().expect("DATABASE_URL parses");
    let app_pool = PgPoolOptions::new()
        .max_connections(2)
        .connect_with(options.username(&role))
        .await
        .expect("connect as the restricted role");
    let app_store = PostgresStore::builder(app_pool.clone())
        .schema(store.schema())
        .table(store.table())
        .build()
        .expect("valid configuration");
    app_store
        .migrate()
        .await
        .expect("migrate of an existing table needs no CREATE privilege");
    let key = fresh_key();
    app_store
        .create(&key, &sample_record(None, "{}"), SystemTime::now())
        .await
        .expect("the restricted role can use the store");

    // The same role may not create a table that does not exist: the check above is real.
    let missing = PostgresStore::builder(app_pool.clone())
        .schema(store.schema())
        .table("not_there")
        .build()
        .expect("valid configuration");
    let error = missing
        .migrate()
        .await
        .expect_err("a role without CREATE cannot create the table");
    assert!(
        matches!(
            error,
            StoreError::Unavailable(_) | StoreError::Backend(_) | StoreError::Timeout { .. }
        ),
        "{error:?}"
    );

    app_pool.close().await;
    drop_schema(&store).await;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP ROLE \"{role}\"")))
        .execute(&pool)
        .await
        .expect("drop role failed");
}

/// The table of the release before record formats, as its `migrate()` made it.
const TABLE_BEFORE_FORMATS: &str = "CREATE TABLE {table} (
    key         BYTEA  PRIMARY KEY CHECK (octet_length(key) = 32),
    version     BIGINT NOT NULL,
    user_id     TEXT,
    created_at  BIGINT NOT NULL,
    last_active BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    expiry      JSONB,
    data        BYTEA  NOT NULL
)";

#[tokio::test(flavor = "multi_thread")]
async fn migrate_upgrades_a_table_of_the_release_before_formats_in_place() {
    let Some(pool) = pool().await else { return };
    let store = PostgresStore::builder(pool.clone())
        .schema(unique_schema())
        .table("sessions")
        .build()
        .expect("valid configuration");
    let table = format!("\"{}\".\"{}\"", store.schema(), store.table());
    let run = |statement: String| {
        let pool = pool.clone();
        async move {
            sqlx::query(sqlx::AssertSqlSafe(statement))
                .execute(&pool)
                .await
                .expect("statement failed");
        }
    };
    run(format!("CREATE SCHEMA \"{}\"", store.schema())).await;
    run(TABLE_BEFORE_FORMATS.replace("{table}", &table)).await;
    // A live session of a logged-in user, written by the older release.
    let key = fresh_key();
    let user = fresh_user();
    let now = now_millis();
    let millis = now
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as i64;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {table} VALUES ($1, 3, $2, $3, $3, $4, NULL, $5)"
    )))
    .bind(key.as_bytes().as_slice())
    .bind(&user)
    .bind(millis)
    .bind(millis + 3_600_000)
    .bind(br#"{"cart":[1]}"#.as_slice())
    .execute(&pool)
    .await
    .expect("insert failed");

    store.migrate().await.expect("migrate upgrades the table");
    store.migrate().await.expect("and is idempotent after it");
    let LoadOutcome::Found(record) = store.load(&key, now).await.expect("load failed") else {
        panic!("the older release's session must survive the upgrade");
    };
    assert_eq!(record.version, 3);
    assert_eq!(record.user.as_deref(), Some(user.as_str()));
    assert_eq!(record.data, br#"{"cart":[1]}"#);
    assert_eq!(record.label, None);
    let listed = sessionware::UserIndex::sessions_of(&store, &user, now)
        .await
        .expect("sessions_of failed");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].label, None);

    // Saved by this release, the row gets a label and this release's format.
    let mut labelled = record.clone();
    labelled.version = 4;
    labelled.label = Some("phone".to_owned());
    store
        .save(&key, &labelled, 3, now)
        .await
        .expect("save failed");
    let format: i16 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT format FROM {table} WHERE key = $1"
    )))
    .bind(key.as_bytes().as_slice())
    .fetch_one(&pool)
    .await
    .expect("select failed");
    assert_eq!(format, 1);
    assert_eq!(
        store.load(&key, now).await.expect("load failed"),
        LoadOutcome::Found(labelled)
    );

    // A row of a later release's format is no session here, and is left alone.
    run(format!("UPDATE {table} SET format = 2")).await;
    assert_eq!(
        store.load(&key, now).await.expect("load failed"),
        LoadOutcome::Missing
    );
    assert_eq!(row_count(&store).await, 1);
    drop_schema(&store).await;
}

#[tokio::test]
async fn invalid_schema_and_table_names_are_refused() {
    // A lazy pool never connects unless used: this test needs no server.
    let pool = PgPoolOptions::new()
        .connect_lazy("postgres://nobody@127.0.0.1:1/none")
        .expect("lazy pool");
    let too_long = "a".repeat(64);
    for bad in [
        "a;drop table x",
        "1abc",
        "",
        too_long.as_str(),
        "a\"b",
        "sch ema",
    ] {
        for (what, builder) in [
            ("schema", PostgresStore::builder(pool.clone()).schema(bad)),
            ("table", PostgresStore::builder(pool.clone()).table(bad)),
        ] {
            let error = builder.build().expect_err(bad);
            assert!(
                matches!(error, sessionware::ConfigError::InvalidStoreSetting { setting, .. } if setting == what),
                "{error:?}"
            );
            let reason = error.to_string();
            assert!(
                reason.contains(&format!("setting `{what}`"))
                    && reason.contains("plain PostgreSQL identifier"),
                "unclear error for {bad:?}: {reason}"
            );
        }
    }
    let longest = "a".repeat(63);
    for good in ["app", "_sessions", "Sessions2", longest.as_str()] {
        assert!(
            PostgresStore::builder(pool.clone())
                .schema(good)
                .table(good)
                .build()
                .is_ok(),
            "{good} must be accepted"
        );
    }
    assert!(
        PostgresStore::builder(pool.clone())
            .delete_batch_size(0)
            .build()
            .is_err(),
        "a zero batch size would never finish"
    );
}

#[tokio::test]
async fn debug_shows_no_credentials() {
    let pool = PgPoolOptions::new()
        .connect_lazy("postgres://app:hunter2@127.0.0.1:1/none")
        .expect("lazy pool");
    let store = PostgresStore::new(pool.clone());
    let shown = format!("{store:?} {:?}", PostgresStore::builder(pool));
    assert!(shown.contains("sessionware_sessions"), "{shown}");
    assert!(!shown.contains("hunter2"), "{shown}");
}

#[tokio::test(flavor = "multi_thread")]
async fn s10_the_table_holds_only_store_keys() {
    let Some(pool) = pool().await else { return };
    let store = fresh_store(&pool, 1_000).await;
    let user = fresh_user();
    let mut created = HashSet::new();
    for i in 0..20 {
        let key = fresh_key();
        let record = sample_record(Some(&user), &format!(r#"{{"n":{i}}}"#));
        store
            .create(&key, &record, SystemTime::now())
            .await
            .expect("create failed");
        created.insert(key);
    }

    let statement = format!(
        "SELECT key FROM \"{}\".\"{}\"",
        store.schema(),
        store.table()
    );
    let keys: Vec<Vec<u8>> = sqlx::query_scalar(sqlx::AssertSqlSafe(statement))
        .fetch_all(&pool)
        .await
        .expect("select failed");
    assert_eq!(keys.len(), created.len());
    for key in keys {
        let bytes = <[u8; 32]>::try_from(key.as_slice()).expect("every key is 32 bytes");
        assert!(
            created.contains(&StoreKey::from_bytes(bytes)),
            "the table holds a key that is not a store key we created"
        );
    }
    drop_schema(&store).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_expired_purges_a_backlog_in_batches() {
    let Some(pool) = pool().await else { return };
    let store = fresh_store(&pool, 1_000).await;
    let now = now_millis();

    // 2,500 expired rows: two full batches and a short one.
    let statement = format!(
        "INSERT INTO \"{}\".\"{}\" \
         (key, version, user_id, created_at, last_active, expires_at, expiry, data) \
         SELECT sha256(int4send(n)), 1, NULL, $1 - 7200000, $1 - 7200000, $1 - 1000, NULL, \
         '\\x7b7d'::bytea FROM generate_series(1, 2500) AS n",
        store.schema(),
        store.table()
    );
    let now_ms = i64::try_from(
        now.duration_since(std::time::UNIX_EPOCH)
            .expect("after the epoch")
            .as_millis(),
    )
    .expect("fits");
    sqlx::query(sqlx::AssertSqlSafe(statement))
        .bind(now_ms)
        .execute(&pool)
        .await
        .expect("bulk insert failed");
    let live: Vec<StoreKey> = (0..3).map(|_| fresh_key()).collect();
    for key in &live {
        store
            .create(key, &sample_record(None, "{}"), SystemTime::now())
            .await
            .expect("create failed");
    }
    assert_eq!(row_count(&store).await, 2_503);

    let purged = store
        .delete_expired(now)
        .await
        .expect("delete_expired failed");
    assert_eq!(purged, 2_500);
    assert_eq!(row_count(&store).await, 3, "only live rows remain");
    for key in &live {
        assert!(matches!(
            store.load(key, now).await.expect("load failed"),
            LoadOutcome::Found(_)
        ));
    }
    assert_eq!(
        store
            .delete_expired(now)
            .await
            .expect("delete_expired failed"),
        0,
        "nothing left to purge"
    );

    // An exact multiple of the batch size ends with an empty batch.
    let small = PostgresStore::builder(pool.clone())
        .schema(store.schema())
        .table(store.table())
        .delete_batch_size(2)
        .build()
        .expect("valid configuration");
    for _ in 0..4 {
        let mut record = sample_record(None, "{}");
        record.expires_at = now - Duration::from_secs(1);
        small
            .create(&fresh_key(), &record, SystemTime::now())
            .await
            .expect("create failed");
    }
    assert_eq!(
        small
            .delete_expired(now)
            .await
            .expect("delete_expired failed"),
        4
    );
    assert_eq!(row_count(&store).await, 3);
    drop_schema(&store).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_rows_are_store_errors() {
    let Some(pool) = pool().await else { return };
    let store = fresh_store(&pool, 1_000).await;
    let table = format!("\"{}\".\"{}\"", store.schema(), store.table());

    let bad_expiry = fresh_key();
    store
        .create(
            &bad_expiry,
            &sample_record(Some("u"), "{}"),
            SystemTime::now(),
        )
        .await
        .expect("create failed");
    let statement = format!("UPDATE {table} SET expiry = '{{\"Bogus\":1}}' WHERE key = $1");
    sqlx::query(sqlx::AssertSqlSafe(statement))
        .bind(bad_expiry.as_bytes().as_slice())
        .execute(&pool)
        .await
        .expect("update failed");
    let error = store
        .load(&bad_expiry, now_millis())
        .await
        .expect_err("a bad expiry must not load");
    assert!(
        matches!(
            error,
            StoreError::Corrupt {
                field: "expiry",
                ..
            }
        ),
        "{error:?}"
    );

    let bad_version = fresh_key();
    store
        .create(&bad_version, &sample_record(None, "{}"), SystemTime::now())
        .await
        .expect("create failed");
    let statement = format!("UPDATE {table} SET version = -1 WHERE key = $1");
    sqlx::query(sqlx::AssertSqlSafe(statement))
        .bind(bad_version.as_bytes().as_slice())
        .execute(&pool)
        .await
        .expect("update failed");
    let error = store
        .load(&bad_version, now_millis())
        .await
        .expect_err("a negative version must not load");
    assert!(
        matches!(
            error,
            StoreError::Corrupt {
                field: "version",
                ..
            }
        ),
        "{error:?}"
    );
    drop_schema(&store).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_server_fails_with_a_store_error() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("local addr").port()
    };
    let pool = PgPoolOptions::new()
        .acquire_timeout(Duration::from_millis(500))
        .connect_lazy(&format!("postgres://postgres@127.0.0.1:{port}/none"))
        .expect("lazy pool");
    let store = PostgresStore::new(pool);
    let key = fresh_key();
    let now = now_millis();
    let record = sample_record(Some("someone"), "{}");

    let errors = [
        store.migrate().await.err(),
        store.ping().await.err(),
        store.load(&key, now).await.err(),
        store.create(&key, &record, SystemTime::now()).await.err(),
        store.save(&key, &record, 1, now).await.err(),
        store.touch(&key, 1, now, now, now).await.err(),
        store.delete(&key, SystemTime::now()).await.err(),
        store
            .rotate(&key, &fresh_key(), &record, 1, now)
            .await
            .err(),
        store.delete_expired(now).await.err(),
        store
            .user_index()
            .expect("a per-user index")
            .sessions_of("someone", now)
            .await
            .err(),
        store
            .user_index()
            .expect("a per-user index")
            .revoke_user("someone", None, SystemTime::now())
            .await
            .err(),
    ];
    for error in errors {
        let error = error.expect("an operation succeeded without a server");
        assert!(
            matches!(
                error,
                StoreError::Unavailable(_) | StoreError::Backend(_) | StoreError::Timeout { .. }
            ),
            "{error:?}"
        );
        assert!(error.source().is_some(), "the sqlx error must be kept");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn s44_operations_are_bounded_while_the_server_is_paused_or_gone_and_recover() {
    let Ok(url) = std::env::var("DATABASE_URL") else {
        eprintln!("skipping: DATABASE_URL is not set");
        return;
    };
    let (proxy, through) = proxy::in_front_of_postgres(&url).await;
    let timeout = Duration::from_millis(300);
    let bound = Duration::from_secs(3);
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .connect(&through)
        .await
        .expect("connect through the proxy");
    let store = PostgresStore::builder(pool)
        .schema(unique_schema())
        .operation_timeout(timeout)
        .build()
        .expect("valid configuration");
    store.migrate().await.expect("migrate");
    proxy::operations_are_bounded_and_recover(&store, &proxy, bound).await;
    drop_schema(&store).await;
}

#[tokio::test]
async fn a_store_from_a_url_takes_a_schema_and_table_and_connects_lazily() {
    let Ok(url) = std::env::var("DATABASE_URL") else {
        eprintln!("skipping: DATABASE_URL is not set");
        return;
    };
    let schema = unique_schema();
    let store = PostgresStore::builder_for_url(&url)
        .expect("a PostgreSQL URL")
        .schema(schema.clone())
        .table("app_sessions")
        .build()
        .expect("valid settings");
    assert_eq!(
        (store.schema(), store.table()),
        (schema.as_str(), "app_sessions")
    );
    store.migrate().await.expect("migrate connects");
    let app = crate::common::app().layer(sessionware::SessionLayer::new(
        store.clone(),
        sessionware::Key::generate(),
    ));
    let mut browser = crate::common::Client::new(app);
    browser.send("POST", "/login/alice").await;
    assert_eq!(browser.send("GET", "/user").await.body, "alice");
    assert_eq!(row_count(&store).await, 1);
    drop_schema(&store).await;

    // Nothing connects before the first operation, which then fails as a store error.
    let port = TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("its address")
        .port();
    let unreachable =
        PostgresStore::builder_for_url(&format!("postgres://someone:hunter2@127.0.0.1:{port}/db"))
            .expect("lazy: no connection yet")
            .build()
            .expect("valid settings");
    let started = std::time::Instant::now();
    let error = unreachable.ping().await.expect_err("no server");
    assert!(
        matches!(
            error,
            StoreError::Unavailable(_) | StoreError::Timeout { .. }
        ),
        "{error:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));

    // Not a PostgreSQL URL: a configuration error naming the setting, without the password.
    for bad in [
        "mysql://someone:hunter2@db/app",
        "postgres://someone:hunter2@db:port/app",
    ] {
        match PostgresStore::builder_for_url(bad) {
            Err(sessionware::ConfigError::InvalidStoreSetting { setting, reason }) => {
                assert_eq!(setting, "url");
                assert!(!reason.contains("hunter2"), "{reason}");
            }
            other => panic!("{bad}: {other:?}"),
        }
    }
}
