//! The fault matrix: a layer whose store connection goes through a proxy of the test's own,
//! which pauses the traffic (as SIGSTOP would), cuts every connection (a dead server), or
//! loses one connection in the middle of an operation; and, for Redis, a private server
//! restarted empty. Every request answers within the store's timeout, nothing is
//! half-written, and the next request after recovery succeeds.
//!
//! The shared servers other tests use are never stopped: PostgreSQL is reached through the
//! proxy, Redis is a private `redis-server` on a free port. Each store is skipped, saying
//! why, when its URL variable (or for Redis, `redis-server`) is missing.

use crate::common::proxy;
#[cfg(feature = "redis")]
use crate::common::redis_server;
use crate::common::{DynStore, erased};

use std::time::{Duration, Instant};

use crate::common::{Client, app};
use axum::http::StatusCode;
use proxy::Proxy;
use sessionware::{Key, SessionLayer};

/// The store timeout the layers here are built with.
const TIMEOUT: Duration = Duration::from_millis(300);
/// What "answers within the timeout" allows on a loaded machine: a request makes at most a
/// few store calls, each bounded by `TIMEOUT`.
const BOUND: Duration = Duration::from_secs(3);

type App = Client<axum::Router>;

/// Sends one request and checks it answered within [`BOUND`].
async fn timed(client: &mut App, method: &str, uri: &str) -> (StatusCode, String) {
    let started = Instant::now();
    let reply = client.send(method, uri).await;
    let elapsed = started.elapsed();
    eprintln!("{method} {uri}: {} in {elapsed:?}", reply.status);
    assert!(elapsed < BOUND, "{method} {uri} took {elapsed:?}");
    (reply.status, reply.body)
}

/// The count under `n` as the store has it now (read through a healthy connection).
async fn count(client: &mut App) -> u64 {
    let (status, body) = timed(client, "GET", "/get-count").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body.parse().expect("a count")
}

fn fault_app(store: DynStore) -> axum::Router {
    app()
        .route(
            "/get-count",
            axum::routing::get(|session: sessionware::Session| async move {
                let n: Option<u64> = session.get("n").await?;
                Ok::<_, sessionware::SessionError>(n.unwrap_or(0).to_string())
            }),
        )
        .layer(SessionLayer::new(store, Key::generate()))
}

/// The matrix every store goes through, with `proxy` between the layer and the server.
async fn run_matrix(name: &str, store: DynStore, proxy: &Proxy) {
    let mut client = Client::new(fault_app(store));
    let (status, _) = timed(&mut client, "POST", "/login/fault-user").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(timed(&mut client, "POST", "/incr/n").await.1, "1");

    // Paused: the request fails within the bound, and writes nothing.
    proxy.pause(true);
    let (status, _) = timed(&mut client, "POST", "/incr/n").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{name} paused");
    proxy.pause(false);
    let after_pause = count(&mut client).await;
    // A paused server may still run the operation when it resumes; a half-written one
    // would have lost the count or the session.
    assert!(
        (1..=2).contains(&after_pause),
        "{name}: count {after_pause} after the pause"
    );
    assert_eq!(
        timed(&mut client, "POST", "/incr/n").await.1,
        (after_pause + 1).to_string(),
        "{name}: the request after the pause"
    );

    // Gone: refused connections fail fast.
    proxy.cut(true);
    let (status, _) = timed(&mut client, "POST", "/incr/n").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{name} cut");
    let (status, _) = timed(&mut client, "GET", "/user").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{name} cut");
    proxy.cut(false);
    let before_cut = count(&mut client).await;
    assert_eq!(
        before_cut,
        after_pause + 1,
        "{name}: nothing was written while cut"
    );
    let (status, user) = timed(&mut client, "GET", "/user").await;
    assert_eq!(
        (status, user.as_str()),
        (StatusCode::OK, "fault-user"),
        "{name}"
    );

    // Lost in the middle of an operation: the operation either happened whole or not at
    // all, and the next request succeeds.
    proxy.cut_after_next_request();
    let (status, _) = timed(&mut client, "POST", "/incr/n").await;
    assert!(
        status == StatusCode::INTERNAL_SERVER_ERROR || status == StatusCode::OK,
        "{name}: {status}"
    );
    let after_cut = count(&mut client).await;
    assert!(
        after_cut == before_cut || after_cut == before_cut + 1,
        "{name}: count {before_cut} -> {after_cut} across a lost connection"
    );
    assert_eq!(
        timed(&mut client, "POST", "/incr/n").await.1,
        (after_cut + 1).to_string(),
        "{name}: the request after the lost connection"
    );
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_fault_matrix() {
    use sqlx::postgres::PgPoolOptions;
    let Ok(url) = std::env::var("DATABASE_URL") else {
        eprintln!("skipping: DATABASE_URL is not set");
        return;
    };
    let (proxy, through) = proxy::in_front_of_postgres(&url).await;
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .connect(&through)
        .await
        .expect("connect through the proxy");
    let schema = format!(
        "sw_faults_{}",
        &sessionware::store::conformance::fresh_key().to_hex()[..12]
    );
    let store = sessionware::PostgresStore::builder(pool.clone())
        .schema(schema.clone())
        .operation_timeout(TIMEOUT)
        .build()
        .expect("valid configuration");
    store.migrate().await.expect("migrate");
    run_matrix("postgres", erased(store), &proxy).await;
    let statement = format!("DROP SCHEMA \"{schema}\" CASCADE");
    sqlx::query(sqlx::AssertSqlSafe(statement))
        .execute(&pool)
        .await
        .expect("drop schema");
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_fault_matrix() {
    let Some(mut server) = redis_server::start_private_server().await else {
        return;
    };
    let upstream = format!("127.0.0.1:{}", server.port())
        .parse()
        .expect("an address");
    let proxy = Proxy::start(upstream).await;
    let open = || async {
        sessionware::RedisStore::builder(&format!("redis://127.0.0.1:{}", proxy.port))
            .operation_timeout(TIMEOUT)
            .build()
            .expect("valid Redis store settings")
            .await
            .expect("connect through the proxy")
    };
    let store = open().await;
    run_matrix("redis", erased(store.clone()), &proxy).await;

    // Restarted empty: every session is gone. Requests answer within the bound while it is
    // down, and once it is back the same store serves anonymous sessions and new logins.
    let mut client = Client::new(fault_app(erased(store)));
    timed(&mut client, "POST", "/login/before-restart").await;
    assert_eq!(timed(&mut client, "POST", "/incr/n").await.1, "1");
    server.stop();
    let (status, _) = timed(&mut client, "POST", "/incr/n").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "redis down");
    server.start().await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let (status, user) = loop {
        let (status, user) = timed(&mut client, "GET", "/user").await;
        if status != StatusCode::INTERNAL_SERVER_ERROR || Instant::now() > deadline {
            break (status, user);
        }
        // The connection manager reconnects with a back-off of its own.
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        (status, user.as_str()),
        (StatusCode::UNAUTHORIZED, ""),
        "the restarted server holds no session"
    );
    let (status, _) = timed(&mut client, "POST", "/login/after-restart").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(timed(&mut client, "POST", "/incr/n").await.1, "1");
}
