//! The edges found by probing the crate from outside (S35..S44), each checked on every store
//! this environment provides: the memory store on its immediate path and through the async
//! path, and Redis, PostgreSQL and MySQL when `REDIS_URL`, `DATABASE_URL` and `MYSQL_URL`
//! are set (each says why it is skipped when its variable is unset).

use std::sync::Arc;
use std::time::Duration;
use std::time::SystemTime;

use crate::common::{Client, Instrumented, app, send, store_key_of};
use crate::common::{DynStore, erased};
use axum::http::StatusCode;
use sessionware::{
    Clock, Key, LoadOutcome, ManualClock, MemoryStore, Session, SessionError, SessionLayer,
    SessionStore,
    store::conformance::{fresh_key, fresh_user, now_millis, sample_record},
};
use tokio::sync::Barrier;

/// A store under test, and how to clean up after it.
struct Backend {
    name: &'static str,
    store: DynStore,
    shared: Shared,
}

/// Where a store's sessions live, so that a second client of the same server can be opened.
enum Shared {
    /// In this process only.
    Process,
    #[cfg(feature = "redis")]
    Redis { url: String, prefix: String },
    #[cfg(feature = "postgres")]
    Postgres {
        url: String,
        pool: sqlx::PgPool,
        schema: String,
    },
    #[cfg(feature = "mysql")]
    MySql {
        url: String,
        pool: sqlx::MySqlPool,
        table: String,
    },
}

impl Backend {
    /// A second client of the same server, as another instance of the app would have; `None`
    /// for a store that lives in this process.
    async fn second_client(&self) -> Option<DynStore> {
        match &self.shared {
            Shared::Process => None,
            #[cfg(feature = "redis")]
            Shared::Redis { url, prefix } => Some(erased(redis_store(url, prefix).await)),
            #[cfg(feature = "postgres")]
            Shared::Postgres { url, schema, .. } => {
                Some(erased(postgres_store(&postgres_pool(url).await, schema)))
            }
            #[cfg(feature = "mysql")]
            Shared::MySql { url, table, .. } => {
                Some(erased(mysql_store(&mysql_pool(url).await, table)))
            }
        }
    }

    async fn clean_up(self) {
        #[cfg(feature = "postgres")]
        if let Shared::Postgres { pool, schema, .. } = &self.shared {
            let statement = format!("DROP SCHEMA \"{schema}\" CASCADE");
            sqlx::query(sqlx::AssertSqlSafe(statement))
                .execute(pool)
                .await
                .expect("drop schema");
        }
        #[cfg(feature = "mysql")]
        if let Shared::MySql { pool, table, .. } = &self.shared {
            let statement = format!("DROP TABLE `{table}`");
            sqlx::query(sqlx::AssertSqlSafe(statement))
                .execute(pool)
                .await
                .expect("drop table");
        }
    }
}

#[cfg(feature = "redis")]
async fn redis_store(url: &str, prefix: &str) -> sessionware::RedisStore {
    sessionware::RedisStore::builder(url)
        .key_prefix(prefix)
        .build()
        .expect("valid Redis store settings")
        .await
        .expect("REDIS_URL is set but the server is unreachable")
}

#[cfg(feature = "postgres")]
async fn postgres_pool(url: &str) -> sqlx::PgPool {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(Duration::from_secs(10))
        .connect(url)
        .await
        .expect("DATABASE_URL is set but the server is unreachable")
}

#[cfg(feature = "postgres")]
fn postgres_store(pool: &sqlx::PgPool, schema: &str) -> sessionware::PostgresStore {
    sessionware::PostgresStore::builder(pool.clone())
        .schema(schema)
        .build()
        .expect("valid configuration")
}

#[cfg(feature = "mysql")]
async fn mysql_pool(url: &str) -> sqlx::MySqlPool {
    sqlx::mysql::MySqlPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(Duration::from_secs(10))
        .connect(url)
        .await
        .expect("MYSQL_URL is set but the server is unreachable")
}

#[cfg(feature = "mysql")]
fn mysql_store(pool: &sqlx::MySqlPool, table: &str) -> sessionware::MySqlStore {
    sessionware::MySqlStore::builder(pool.clone())
        .table(table)
        .build()
        .expect("valid configuration")
}

/// Every store this environment provides, each empty.
async fn backends() -> Vec<Backend> {
    let process = |name, store| Backend {
        name,
        store,
        shared: Shared::Process,
    };
    let mut backends = vec![
        process("memory", erased(MemoryStore::default())),
        process(
            "memory (async path)",
            erased(Instrumented::new(MemoryStore::default())),
        ),
    ];
    #[cfg(feature = "redis")]
    match std::env::var("REDIS_URL") {
        Ok(url) => {
            let prefix = format!("sw-edges-{}:", &fresh_key().to_hex()[..12]);
            let store = erased(redis_store(&url, &prefix).await);
            backends.push(Backend {
                name: "redis",
                store,
                shared: Shared::Redis { url, prefix },
            });
        }
        Err(_) => eprintln!("skipping the Redis store: REDIS_URL is not set"),
    }
    #[cfg(feature = "postgres")]
    match std::env::var("DATABASE_URL") {
        Ok(url) => {
            let pool = postgres_pool(&url).await;
            let schema = format!("sw_edges_{}", &fresh_key().to_hex()[..12]);
            let store = postgres_store(&pool, &schema);
            store.migrate().await.expect("migrate");
            backends.push(Backend {
                name: "postgres",
                store: erased(store),
                shared: Shared::Postgres { url, pool, schema },
            });
        }
        Err(_) => eprintln!("skipping the PostgreSQL store: DATABASE_URL is not set"),
    }
    #[cfg(feature = "mysql")]
    match std::env::var("MYSQL_URL") {
        Ok(url) => {
            let pool = mysql_pool(&url).await;
            let table = format!("sw_edges_{}", &fresh_key().to_hex()[..12]);
            let store = mysql_store(&pool, &table);
            store.migrate().await.expect("migrate");
            backends.push(Backend {
                name: "mysql",
                store: erased(store),
                shared: Shared::MySql { url, pool, table },
            });
        }
        Err(_) => eprintln!("skipping the MySQL store: MYSQL_URL is not set"),
    }
    backends
}

fn layer(store: DynStore) -> SessionLayer<DynStore> {
    SessionLayer::new(store, Key::generate())
}

fn cookie(value: &str) -> String {
    format!("__Host-session={value}")
}

// S35 ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s35_login_then_update_then_a_server_error_leaves_the_old_cookie_anonymous() {
    for backend in backends().await {
        let layer = layer(backend.store.clone());
        let app = app().layer(layer.clone());
        let user = fresh_user();
        // A session planted before the login (an attacker's, say), holding data.
        let mut client = Client::new(app.clone());
        client.send("POST", "/set/cart/apple").await;
        let planted = client.cookie.clone().expect("anonymous session stored");

        let reply = send(
            &app,
            "POST",
            &format!("/login-incr-fail/{user}/n"),
            Some(&cookie(&planted)),
        )
        .await;
        assert_eq!(
            reply.status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "{}",
            backend.name
        );
        let set = reply.session_cookie();
        assert!(
            set.as_ref().is_none_or(|set| set.is_removal()),
            "{}: a 5xx issued a session cookie: {set:?}",
            backend.name
        );

        let after = send(&app, "GET", "/user", Some(&cookie(&planted))).await;
        assert_eq!(
            after.status,
            StatusCode::UNAUTHORIZED,
            "{}: the pre-login cookie is logged in as {:?}",
            backend.name,
            after.body
        );
        let listed = layer
            .store()
            .user_index()
            .expect("a per-user index")
            .sessions_of(&user, std::time::SystemTime::now())
            .await
            .unwrap();
        assert!(listed.is_empty(), "{}: {listed:?}", backend.name);
        backend.clean_up().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s35_cycle_id_then_update_then_a_server_error_writes_nothing_under_the_old_id() {
    for backend in backends().await {
        let layer = layer(backend.store.clone());
        let app = app().layer(layer.clone());
        let user = fresh_user();
        let mut client = Client::new(app.clone());
        client.send("POST", &format!("/login/{user}")).await;
        let old = client.cookie.clone().expect("logged in");

        let reply = send(&app, "POST", "/cycle-incr-fail/n", Some(&cookie(&old))).await;
        assert_eq!(
            reply.status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "{}",
            backend.name
        );
        // The update rotated the ID; the 5xx deleted the new record, and the old ID was
        // rotated away: neither carries the increment.
        let after = send(&app, "GET", "/get/n", Some(&cookie(&old))).await;
        assert_eq!(after.body, "none", "{}", backend.name);
        let user_after = send(&app, "GET", "/user", Some(&cookie(&old))).await;
        assert_eq!(
            user_after.status,
            StatusCode::UNAUTHORIZED,
            "{}",
            backend.name
        );
        let listed = layer
            .store()
            .user_index()
            .expect("a per-user index")
            .sessions_of(&user, std::time::SystemTime::now())
            .await
            .unwrap();
        assert!(listed.is_empty(), "{}: {listed:?}", backend.name);
        backend.clean_up().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s35_during_a_slow_login_the_old_cookie_never_sees_the_user() {
    for backend in backends().await {
        let gates = (Arc::new(Barrier::new(2)), Arc::new(Barrier::new(2)));
        let layer = layer(backend.store.clone());
        let handler_gates = gates.clone();
        let app = app()
            .route(
                "/slow-login/{user}",
                axum::routing::post(
                    move |session: Session, axum::extract::Path(user): axum::extract::Path<String>| {
                        let (updated, checked) = handler_gates.clone();
                        async move {
                            session.login(user).await?;
                            let n: u64 = session.update("n", |n: Option<u64>| n.unwrap_or(0) + 1).await?;
                            updated.wait().await;
                            checked.wait().await;
                            Ok::<_, SessionError>(n.to_string())
                        }
                    },
                ),
            )
            .layer(layer.clone());
        let user = fresh_user();
        let mut client = Client::new(app.clone());
        client.send("POST", "/set/k/v").await;
        let planted = client.cookie.clone().expect("anonymous session stored");

        let login = tokio::spawn({
            let app = app.clone();
            let planted = planted.clone();
            async move {
                send(
                    &app,
                    "POST",
                    &format!("/slow-login/{user}"),
                    Some(&cookie(&planted)),
                )
                .await
            }
        });
        gates.0.wait().await;
        // The login has written its update and is still running.
        let meanwhile = send(&app, "GET", "/user", Some(&cookie(&planted))).await;
        assert_eq!(
            meanwhile.status,
            StatusCode::UNAUTHORIZED,
            "{}: the planted cookie saw the user mid-login: {:?}",
            backend.name,
            meanwhile.body
        );
        gates.1.wait().await;
        let reply = login.await.unwrap();
        assert_eq!(reply.status, StatusCode::OK, "{}", backend.name);
        let fresh = reply
            .session_cookie()
            .expect("the login sets the new cookie");
        assert_ne!(fresh.value, planted);
        let logged_in = send(&app, "GET", "/user", Some(&cookie(&fresh.value))).await;
        assert_eq!(logged_in.status, StatusCode::OK, "{}", backend.name);
        let after = send(&app, "GET", "/user", Some(&cookie(&planted))).await;
        assert_eq!(after.status, StatusCode::UNAUTHORIZED, "{}", backend.name);
        backend.clean_up().await;
    }
}

// S43 ---------------------------------------------------------------------------------------

#[tokio::test]
async fn s43_more_than_eight_candidate_values_are_no_session() {
    let store = Instrumented::new(MemoryStore::default());
    let app = app().layer(SessionLayer::new(store.clone(), Key::generate()));
    let mut client = Client::new(app.clone());
    client.send("POST", "/set/k/v").await;
    let valid = client.cookie.clone().unwrap();
    let forged = "A".repeat(87);

    // Seven forged values and the valid one: eight candidates, the session is found.
    let mut eight: Vec<String> = (0..7).map(|_| cookie(&forged)).collect();
    eight.push(cookie(&valid));
    let reply = send(&app, "GET", "/get/k", Some(&eight.join("; "))).await;
    assert_eq!(reply.body, "v");

    // One more forged value in front: nine candidates, no session, and no store call.
    let loads = store.calls.get(&store.calls.load);
    let mut nine = vec![cookie(&forged)];
    nine.extend(eight);
    let reply = send(&app, "GET", "/get/k", Some(&nine.join("; "))).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, "none");
    assert_eq!(store.calls.get(&store.calls.load), loads);

    // A header with thousands of values under the name is no session either.
    let many = vec![cookie(&forged); 3500].join("; ");
    let reply = send(
        &app,
        "GET",
        "/get/k",
        Some(&format!("{many}; {}", cookie(&valid))),
    )
    .await;
    assert_eq!(reply.body, "none");
}

#[tokio::test]
async fn s43_session_data_over_the_limit_is_refused_and_nothing_is_saved() {
    for backend in backends().await {
        let layer = layer(backend.store.clone()).max_data_len(100);
        let app = app()
            .route(
                "/update-big/{len}",
                axum::routing::post(
                    |session: Session, axum::extract::Path(len): axum::extract::Path<usize>| async move {
                        match session.update("big", |_: Option<String>| "x".repeat(len)).await {
                            Ok(_) => "saved".to_owned(),
                            Err(error @ SessionError::DataTooLarge { .. }) => format!("refused: {error}"),
                            Err(error) => format!("other: {error:?}"),
                        }
                    },
                ),
            )
            .layer(layer.clone());
        let mut client = Client::new(app.clone());
        client.send("POST", "/set/k/small").await;
        assert!(client.cookie.is_some());

        // `insert` over the limit: the response fails and the stored session is unchanged.
        let big = "y".repeat(150);
        let reply = client.send("POST", &format!("/set/k/{big}")).await;
        assert_eq!(
            reply.status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "{}",
            backend.name
        );
        assert_eq!(
            client.send("GET", "/get/k").await.body,
            "small",
            "{}",
            backend.name
        );

        // `update` over the limit returns the error to the handler, which answers normally;
        // the refused value is not saved with the response either.
        let reply = client.send("POST", "/update-big/150").await;
        assert_eq!(reply.status, StatusCode::OK, "{}", backend.name);
        assert!(
            reply.body.starts_with("refused: "),
            "{}: {}",
            backend.name,
            reply.body
        );
        assert_eq!(
            client.send("GET", "/get/big").await.body,
            "none",
            "{}",
            backend.name
        );

        // Within the limit, both work.
        assert_eq!(client.send("POST", "/update-big/20").await.body, "saved");
        client.send("POST", "/set/k/fine").await;
        assert_eq!(
            client.send("GET", "/get/k").await.body,
            "fine",
            "{}",
            backend.name
        );
        backend.clean_up().await;
    }
}

// S38 ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s38_a_stale_reader_never_moves_a_deadline_set_since_it_loaded() {
    for backend in backends().await {
        let clock = ManualClock::default();
        let layer = layer(backend.store.clone())
            .idle_timeout(Duration::from_secs(300))
            .absolute_timeout(Duration::from_secs(3600))
            .clock(clock.clone());
        let gates = (Arc::new(Barrier::new(2)), Arc::new(Barrier::new(2)));
        let handler_gates = gates.clone();
        let app = app()
            .route(
                "/slow-read",
                axum::routing::get(move |session: Session| {
                    let (loaded, released) = handler_gates.clone();
                    async move {
                        session.get::<String>("k").await?;
                        loaded.wait().await;
                        released.wait().await;
                        Ok::<_, SessionError>("read")
                    }
                }),
            )
            .layer(layer.clone());
        let mut client = Client::new(app.clone());
        client.send("POST", "/set/k/v").await;
        let value = client.cookie.clone().expect("session stored");
        let key = store_key_of(&value);
        let stored = |now| {
            let store = backend.store.clone();
            async move {
                match store.load(&key, now).await.expect("load") {
                    LoadOutcome::Found(record) => Some(record),
                    _ => None,
                }
            }
        };
        let created = stored(clock.now()).await.expect("stored").created_at;

        // Far enough into the idle window that a read extends the deadline.
        clock.advance(Duration::from_secs(90));
        let reader = tokio::spawn({
            let app = app.clone();
            let value = value.clone();
            async move { send(&app, "GET", "/slow-read", Some(&cookie(&value))).await }
        });
        gates.0.wait().await;
        // While the reader holds its stale copy, another request fixes the deadline.
        let fixed = client.send("POST", "/expiry/at/120").await;
        assert_eq!(fixed.status, StatusCode::OK, "{}", backend.name);
        gates.1.wait().await;
        assert_eq!(reader.await.unwrap().status, StatusCode::OK);

        let deadline = created + Duration::from_secs(120);
        let record = stored(clock.now()).await.expect("still live");
        assert_eq!(
            record.expires_at, deadline,
            "{}: the stale read moved the fixed deadline",
            backend.name
        );
        clock.set(deadline + Duration::from_millis(1));
        assert_eq!(
            client.send("GET", "/get/k").await.body,
            "none",
            "{}: served past its fixed deadline",
            backend.name
        );
        backend.clean_up().await;
    }
}

// S36 ---------------------------------------------------------------------------------------

/// How many times each store races a revocation against a rotation.
const REVOCATION_TRIALS: usize = 1_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s36_revoking_a_user_while_a_session_rotates_leaves_no_live_session() {
    for backend in backends().await {
        let store = backend.store.clone();
        let mut survived = 0;
        for _ in 0..REVOCATION_TRIALS {
            let user = fresh_user();
            let old = fresh_key();
            let new = fresh_key();
            let record = sample_record(Some(&user), "{}");
            store
                .create(&old, &record, SystemTime::now())
                .await
                .expect("create");
            let mut moved = record.clone();
            moved.version = 2;
            let start = Arc::new(Barrier::new(2));
            let rotation = tokio::spawn({
                let (store, start, moved) = (store.clone(), start.clone(), moved.clone());
                async move {
                    start.wait().await;
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
            rotation.await.unwrap().expect("rotate");
            revocation.await.unwrap().expect("revoke_user");
            let now = now_millis();
            let live = [old, new].into_iter().map(|key| {
                let store = store.clone();
                async move { matches!(store.load(&key, now).await, Ok(LoadOutcome::Found(_))) }
            });
            let mut any_live = false;
            for check in live {
                any_live |= check.await;
            }
            let listed = store
                .user_index()
                .expect("a per-user index")
                .sessions_of(&user, now)
                .await
                .expect("sessions_of");
            if any_live || !listed.is_empty() {
                survived += 1;
            }
        }
        assert_eq!(
            survived, 0,
            "{}: {survived} of {REVOCATION_TRIALS} sessions survived a revocation racing their rotation",
            backend.name
        );
        backend.clean_up().await;
    }
}

// S40 ---------------------------------------------------------------------------------------

/// Sends `writers` concurrent increments of one session's counter, spread over `apps`, and
/// returns how many failed, the final count, and the p50 and p99 latencies.
async fn burst(
    apps: &[axum::Router],
    value: &str,
    writers: usize,
) -> (usize, u64, Duration, Duration) {
    let tasks: Vec<_> = (0..writers)
        .map(|i| {
            let app = apps[i % apps.len()].clone();
            let header = cookie(value);
            tokio::spawn(async move {
                let started = std::time::Instant::now();
                let reply = send(&app, "POST", "/incr/n", Some(&header)).await;
                (reply.status, started.elapsed())
            })
        })
        .collect();
    let mut failed = 0;
    let mut latencies = Vec::with_capacity(writers);
    for task in tasks {
        let (status, latency) = task.await.unwrap();
        failed += usize::from(status != StatusCode::OK);
        latencies.push(latency);
    }
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    let count = send(&apps[0], "GET", "/get-count/n", Some(&cookie(value))).await;
    let count = count.body.parse().expect("a count");
    (failed, count, at(0.5), at(0.99))
}

fn counting_app(layer: SessionLayer<DynStore>) -> axum::Router {
    app()
        .route(
            "/get-count/{key}",
            axum::routing::get(
                |session: Session, axum::extract::Path(key): axum::extract::Path<String>| async move {
                    let n: Option<u64> = session.get(&key).await?;
                    Ok::<_, SessionError>(n.unwrap_or(0).to_string())
                },
            ),
        )
        .layer(layer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s40_concurrent_writers_of_one_session_all_succeed_on_one_and_two_instances() {
    for backend in backends().await {
        let key = Key::generate();
        let mut apps = vec![counting_app(SessionLayer::new(
            backend.store.clone(),
            key.clone(),
        ))];
        let mut client = Client::new(apps[0].clone());
        client.send("POST", "/set/k/v").await;
        let value = client.cookie.clone().expect("session stored");
        let mut expected = 0;
        for writers in [200, 500] {
            let (failed, count, p50, p99) = burst(&apps, &value, writers).await;
            expected += writers as u64;
            eprintln!(
                "{}: one instance, {writers} writers: p50 {p50:?}, p99 {p99:?}",
                backend.name
            );
            assert_eq!(
                failed, 0,
                "{}: {failed} of {writers} writers failed",
                backend.name
            );
            assert_eq!(count, expected, "{}: increments were lost", backend.name);
        }
        if let Some(second) = backend.second_client().await {
            apps.push(counting_app(SessionLayer::new(second, key)));
            for writers in [200, 500] {
                let (failed, count, p50, p99) = burst(&apps, &value, writers).await;
                expected += writers as u64;
                eprintln!(
                    "{}: two instances, {writers} writers: p50 {p50:?}, p99 {p99:?}",
                    backend.name
                );
                assert_eq!(
                    failed, 0,
                    "{}: {failed} of {writers} writers failed",
                    backend.name
                );
                assert_eq!(count, expected, "{}: increments were lost", backend.name);
            }
        }
        backend.clean_up().await;
    }
}

// S42 ---------------------------------------------------------------------------------------

#[tokio::test]
async fn s42_a_full_memory_store_evicts_anonymous_sessions_never_authenticated_ones() {
    const CAPACITY: usize = 200;
    let store = MemoryStore::builder().capacity(CAPACITY).build();
    let clock = ManualClock::default();
    let app = app().layer(SessionLayer::new(store.clone(), Key::generate()).clock(clock.clone()));

    // Fifty users log in, then an anonymous flood fills the store several times over.
    let mut users = Vec::new();
    for i in 0..50 {
        let mut client = Client::new(app.clone());
        client.send("POST", &format!("/login/user-{i}")).await;
        users.push(client);
    }
    let mut oldest_anonymous = Client::new(app.clone());
    oldest_anonymous.send("POST", "/set/k/first").await;
    let mut flood = Vec::new();
    for i in 0..(CAPACITY * 5) {
        clock.advance(Duration::from_millis(1));
        let reply = send(&app, "POST", &format!("/set/k/{i}"), None).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "anonymous session {i} refused"
        );
        flood.push(reply.session_cookie().expect("stored").value);
        assert!(store.len() <= CAPACITY);
    }

    // A new visitor's login after the flood succeeds.
    let mut late = Client::new(app.clone());
    let reply = late.send("POST", "/login/late-user").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(late.send("GET", "/user").await.body, "late-user");

    // Every authenticated session survived; the least recently active anonymous ones went
    // first, the newest are still there.
    for (i, user) in users.iter_mut().enumerate() {
        assert_eq!(user.send("GET", "/user").await.body, format!("user-{i}"));
    }
    assert_eq!(oldest_anonymous.send("GET", "/get/k").await.body, "none");
    let newest = flood.last().unwrap();
    assert_eq!(
        send(&app, "GET", "/get/k", Some(&cookie(newest)))
            .await
            .body,
        (CAPACITY * 5 - 1).to_string()
    );
}

#[tokio::test]
async fn s42_a_memory_store_full_of_authenticated_sessions_refuses_new_ones() {
    const CAPACITY: usize = 20;
    let store = MemoryStore::builder().capacity(CAPACITY).build();
    let app = app().layer(SessionLayer::new(store.clone(), Key::generate()));
    let mut users = Vec::new();
    for i in 0..CAPACITY {
        let mut client = Client::new(app.clone());
        assert_eq!(
            client.send("POST", &format!("/login/u{i}")).await.status,
            StatusCode::OK
        );
        users.push(client);
    }
    let reply = send(&app, "POST", "/login/one-too-many", None).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(reply.session_cookie().is_none());
    let reply = send(&app, "POST", "/set/k/v", None).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    for (i, user) in users.iter_mut().enumerate() {
        assert_eq!(user.send("GET", "/user").await.body, format!("u{i}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s42_anonymous_sessions_end_after_the_anonymous_timeout_on_every_store() {
    for backend in backends().await {
        let clock = ManualClock::default();
        let layer = layer(backend.store.clone())
            .idle_timeout(Duration::from_secs(300))
            .anonymous_timeout(Duration::from_secs(60))
            .clock(clock.clone());
        let app = app().layer(layer);
        let mut anonymous = Client::new(app.clone());
        anonymous.send("POST", "/set/k/v").await;
        let max_age = anonymous
            .send("POST", "/set/k/w")
            .await
            .session_cookie()
            .and_then(|set| set.max_age());
        assert!(
            max_age.is_none_or(|age| age <= 60),
            "{}: Max-Age {max_age:?}",
            backend.name
        );
        let mut user = Client::new(app.clone());
        user.send("POST", "/set/k/v").await;
        user.send("POST", &format!("/login/{}", fresh_user())).await;

        // Active all along, yet the anonymous session ends 60 s after its creation.
        for _ in 0..3 {
            clock.advance(Duration::from_secs(20));
            user.send("GET", "/get/k").await;
            anonymous.send("GET", "/get/k").await;
        }
        clock.advance(Duration::from_millis(1));
        assert_eq!(
            anonymous.send("GET", "/get/k").await.body,
            "none",
            "{}",
            backend.name
        );
        assert_eq!(
            user.send("GET", "/user").await.status,
            StatusCode::OK,
            "{}",
            backend.name
        );
        backend.clean_up().await;
    }
}

// S41 ---------------------------------------------------------------------------------------

/// How many double-submitted logins each store is put through.
const DOUBLE_SUBMITS: usize = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s41_a_double_submitted_login_leaves_the_browser_logged_in_in_either_order() {
    for backend in backends().await {
        let app = app().layer(layer(backend.store.clone()));
        let mut logged_out = 0;
        for _ in 0..DOUBLE_SUBMITS {
            let user = fresh_user();
            let mut client = Client::new(app.clone());
            client.send("POST", "/set/cart/apple").await;
            let before = client.cookie.clone().expect("anonymous session stored");
            let uri = format!("/login/{user}");
            let header = cookie(&before);
            let (first, second) = tokio::join!(
                send(&app, "POST", &uri, Some(&header)),
                send(&app, "POST", &uri, Some(&header))
            );
            assert_eq!(first.status, StatusCode::OK, "{}", backend.name);
            assert_eq!(second.status, StatusCode::OK, "{}", backend.name);
            for order in [[&first, &second], [&second, &first]] {
                let mut jar = Some(before.clone());
                for reply in order {
                    if let Some(set) = reply.session_cookie() {
                        jar = (!set.is_removal()).then_some(set.value);
                    }
                }
                let seen = match &jar {
                    Some(value) => send(&app, "GET", "/user", Some(&cookie(value))).await.body,
                    None => String::new(),
                };
                if seen != user {
                    logged_out += 1;
                }
            }
            // The cookie planted before the login is anonymous whatever happened.
            let planted = send(&app, "GET", "/user", Some(&header)).await;
            assert_eq!(planted.status, StatusCode::UNAUTHORIZED, "{}", backend.name);
        }
        assert_eq!(
            logged_out,
            0,
            "{}: {logged_out} of {} response orders left the browser logged out",
            backend.name,
            2 * DOUBLE_SUBMITS
        );
        backend.clean_up().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s41_requests_in_flight_during_a_rotation_do_not_remove_the_new_cookie() {
    for backend in backends().await {
        let gates = (Arc::new(Barrier::new(2)), Arc::new(Barrier::new(2)));
        let handler_gates = gates.clone();
        let app = app()
            .route(
                "/slow-write",
                axum::routing::post(move |session: Session| {
                    let (loaded, rotated) = handler_gates.clone();
                    async move {
                        session.get::<String>("k").await?;
                        loaded.wait().await;
                        rotated.wait().await;
                        match session.insert("k", "late").await {
                            Ok(()) | Err(SessionError::Interrupted) => Ok("done"),
                            Err(error) => Err(error),
                        }
                    }
                }),
            )
            .layer(layer(backend.store.clone()));
        let mut client = Client::new(app.clone());
        client
            .send("POST", &format!("/login/{}", fresh_user()))
            .await;
        let old = client.cookie.clone().expect("logged in");
        let slow = tokio::spawn({
            let (app, old) = (app.clone(), old.clone());
            async move { send(&app, "POST", "/slow-write", Some(&cookie(&old))).await }
        });
        gates.0.wait().await;
        // While the slow write holds its copy, another request rotates the ID.
        let cycled = client.send("POST", "/cycle").await;
        assert_eq!(cycled.status, StatusCode::OK, "{}", backend.name);
        gates.1.wait().await;
        let late = slow.await.unwrap();
        assert_eq!(late.status, StatusCode::OK, "{}", backend.name);
        assert!(
            late.session_cookie().is_none(),
            "{}: a write that lost to a rotation set a cookie: {:?}",
            backend.name,
            late.session_cookie()
        );
        // A read with the old cookie right after the rotation: anonymous, and no removal.
        let read = send(&app, "GET", "/user", Some(&cookie(&old))).await;
        assert_eq!(read.status, StatusCode::UNAUTHORIZED, "{}", backend.name);
        assert!(
            read.session_cookie().is_none(),
            "{}: {read:?}",
            backend.name
        );
        // The browser, holding the new cookie whatever order the responses came in, is
        // still logged in.
        assert_eq!(
            client.send("GET", "/user").await.status,
            StatusCode::OK,
            "{}",
            backend.name
        );
        backend.clean_up().await;
    }
}
