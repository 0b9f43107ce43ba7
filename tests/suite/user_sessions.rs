//! A user's own sessions from the handle: the listing (labels, the current one marked, the
//! layer's clock), revoking one with the ownership check done by the crate, and revoking the
//! current one; on every store with a per-user index.
#![cfg(all(
    feature = "sqlite",
    feature = "redis",
    feature = "postgres",
    feature = "mysql"
))]

use std::time::Duration;

use axum::Router;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::{get, post};
use sessionware::{
    Expiry, Key, ManualClock, MemoryStore, Session, SessionError, SessionHandle, SessionInfo,
    SessionLayer, SessionStore, SqliteStore,
};

use crate::common::{Client, app};

fn routes() -> Router {
    app()
        .route("/label/{label}", post(set_label))
        .route("/label", get(label))
        .route("/listing", get(listing))
        .route("/revoke-session/{handle}", post(revoke_session))
        .route("/expire-in/{secs}", post(expire_in))
}

async fn set_label(session: Session, Path(label): Path<String>) -> (StatusCode, String) {
    match session.set_label(label).await {
        Ok(()) => (StatusCode::OK, "labelled".to_owned()),
        Err(error @ SessionError::DataTooLarge { .. }) => {
            (StatusCode::BAD_REQUEST, error.to_string())
        }
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()),
    }
}

async fn label(session: Session) -> Result<String, SessionError> {
    Ok(session.label().await?.unwrap_or_else(|| "none".to_owned()))
}

async fn listing(session: Session) -> Result<String, SessionError> {
    let sessions = session.user_sessions().await?;
    Ok(serde_json::to_string(&sessions).expect("serializes"))
}

async fn revoke_session(session: Session, Path(handle): Path<String>) -> (StatusCode, String) {
    let Ok(handle) = handle.parse::<SessionHandle>() else {
        return (StatusCode::BAD_REQUEST, "not a handle".to_owned());
    };
    match session.revoke_session(&handle).await {
        Ok(ended) => (StatusCode::OK, ended.to_string()),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()),
    }
}

async fn expire_in(session: Session, Path(secs): Path<u64>) -> Result<&'static str, SessionError> {
    session
        .set_expiry(Some(Expiry::OnInactivity(Duration::from_secs(secs))))
        .await?;
    Ok("set")
}

/// The listing as a browser's request sees it.
#[derive(serde::Deserialize, Debug)]
struct Listed {
    handle: SessionHandle,
    label: Option<String>,
    current: bool,
}

async fn listed<S>(browser: &mut Client<S>) -> Vec<Listed>
where
    S: tower::Service<
            axum::http::Request<axum::body::Body>,
            Response = axum::http::Response<axum::body::Body>,
        > + Clone,
    S::Error: std::fmt::Debug,
{
    let reply = browser.send("GET", "/listing").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    serde_json::from_str(&reply.body).expect("the listing is JSON")
}

async fn handle_of<S>(browser: &mut Client<S>) -> String
where
    S: tower::Service<
            axum::http::Request<axum::body::Body>,
            Response = axum::http::Response<axum::body::Body>,
        > + Clone,
    S::Error: std::fmt::Debug,
{
    browser.send("GET", "/handle").await.body
}

/// Every behaviour of the listing and of revocation from the handle, on `store`.
async fn a_user_sees_and_ends_their_own_sessions<S: SessionStore + Clone>(store: S) {
    let clock = ManualClock::default();
    let layer = SessionLayer::new(store, Key::generate())
        .idle_timeout(Duration::from_secs(5 * 60))
        .clock(clock.clone());
    let app = routes().layer(layer);
    // A unique user per run, so that stores shared between runs start empty for them.
    let alice = format!("alice-{}", rand_suffix());
    let mut laptop = Client::new(app.clone());
    let mut phone = Client::new(app.clone());
    let mut tablet = Client::new(app.clone());
    for (browser, label) in [
        (&mut laptop, "Firefox on Linux"),
        (&mut phone, "Safari on iPhone"),
        (&mut tablet, "Chrome on Android"),
    ] {
        browser.send("POST", &format!("/login/{alice}")).await;
        let path = format!("/label/{}", label.replace(' ', "%20"));
        let reply = browser.send("POST", &path).await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    let mut mallory = Client::new(app.clone());
    mallory
        .send("POST", &format!("/login/mallory-{}", rand_suffix()))
        .await;

    // The listing: all three, labelled, only the requesting one marked current.
    let sessions = listed(&mut laptop).await;
    assert_eq!(sessions.len(), 3, "{sessions:?}");
    let mut labels: Vec<&str> = sessions.iter().filter_map(|s| s.label.as_deref()).collect();
    labels.sort_unstable();
    assert_eq!(
        labels,
        ["Chrome on Android", "Firefox on Linux", "Safari on iPhone"]
    );
    let current: Vec<&Listed> = sessions.iter().filter(|s| s.current).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0].label.as_deref(), Some("Firefox on Linux"));
    assert_eq!(current[0].handle.to_string(), handle_of(&mut laptop).await);
    assert_eq!(laptop.send("GET", "/label").await.body, "Firefox on Linux");

    // Revoking another user's session, a made-up handle or garbage ends nothing.
    let mallorys = handle_of(&mut mallory).await;
    let reply = laptop
        .send("POST", &format!("/revoke-session/{mallorys}"))
        .await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::OK, "false")
    );
    assert_ne!(
        mallory.send("GET", "/user").await.status,
        StatusCode::UNAUTHORIZED
    );
    let made_up = SessionHandle::from_store_key(sessionware::store::conformance::fresh_key());
    let reply = laptop
        .send("POST", &format!("/revoke-session/{made_up}"))
        .await;
    assert_eq!(reply.body, "false");
    let reply = laptop.send("POST", "/revoke-session/garbage").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);

    // Revoking the phone from the laptop ends it there at once, and nothing else.
    let phones = handle_of(&mut phone).await;
    let reply = laptop
        .send("POST", &format!("/revoke-session/{phones}"))
        .await;
    assert_eq!(reply.body, "true");
    assert!(
        reply.set_cookies().is_empty(),
        "the laptop keeps its cookie"
    );
    assert_eq!(
        phone.send("GET", "/user").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(laptop.send("GET", "/user").await.body, alice);
    assert_eq!(listed(&mut laptop).await.len(), 2);

    // The listing reads the layer's clock: a session past its own idle deadline on the
    // manual clock is not listed, though the system clock would still call it live.
    tablet.send("POST", "/expire-in/60").await;
    clock.advance(Duration::from_secs(120));
    let sessions = listed(&mut laptop).await;
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    assert!(sessions[0].current);

    // Revoking the current session is a logout: its cookie is removed in that response.
    let own = handle_of(&mut laptop).await;
    let reply = laptop.send("POST", &format!("/revoke-session/{own}")).await;
    assert_eq!(reply.body, "true");
    assert!(
        reply.session_cookie().expect("removal").is_removal(),
        "{:?}",
        reply.set_cookies()
    );
    assert_eq!(
        laptop.send("GET", "/user").await.status,
        StatusCode::UNAUTHORIZED
    );
    // Nobody logged in: nothing to revoke.
    assert_eq!(
        laptop
            .send("POST", &format!("/revoke-session/{mallorys}"))
            .await
            .body,
        "false"
    );
    assert_ne!(
        mallory.send("GET", "/user").await.status,
        StatusCode::UNAUTHORIZED
    );
}

fn rand_suffix() -> String {
    sessionware::store::conformance::fresh_key().to_hex()[..12].to_owned()
}

#[tokio::test]
async fn memory_store_user_sessions_from_the_handle() {
    a_user_sees_and_ends_their_own_sessions(MemoryStore::default()).await;
}

#[tokio::test]
async fn sqlite_store_user_sessions_from_the_handle() {
    let store = SqliteStore::connect("sqlite::memory:")
        .await
        .expect("in-memory database");
    store.migrate().await.expect("migrate");
    a_user_sees_and_ends_their_own_sessions(store).await;
}

#[tokio::test]
async fn redis_store_user_sessions_from_the_handle() {
    let Ok(url) = std::env::var("REDIS_URL") else {
        eprintln!("skipping: REDIS_URL is not set");
        return;
    };
    let store = sessionware::RedisStore::builder(&url)
        .key_prefix(format!("sw-own-{}:", rand_suffix()))
        .build()
        .expect("valid settings")
        .await
        .expect("REDIS_URL is set but the server is unreachable");
    a_user_sees_and_ends_their_own_sessions(store).await;
}

#[tokio::test]
async fn postgres_store_user_sessions_from_the_handle() {
    let Ok(url) = std::env::var("DATABASE_URL") else {
        eprintln!("skipping: DATABASE_URL is not set");
        return;
    };
    let pool = sqlx::PgPool::connect(&url)
        .await
        .expect("DATABASE_URL is set but the server is unreachable");
    let table = format!("sw_own_{}", rand_suffix());
    let store = sessionware::PostgresStore::builder(pool)
        .table(table.clone())
        .build()
        .expect("valid settings");
    store.migrate().await.expect("migrate");
    a_user_sees_and_ends_their_own_sessions(store.clone()).await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP TABLE \"public\".\"{table}\""
    )))
    .execute(store.pool())
    .await
    .expect("drop");
}

#[tokio::test]
async fn mysql_store_user_sessions_from_the_handle() {
    let Ok(url) = std::env::var("MYSQL_URL") else {
        eprintln!("skipping: MYSQL_URL is not set");
        return;
    };
    let pool = sqlx::MySqlPool::connect(&url)
        .await
        .expect("MYSQL_URL is set but the server is unreachable");
    let table = format!("sw_own_{}", rand_suffix());
    let store = sessionware::MySqlStore::builder(pool)
        .table(table.clone())
        .build()
        .expect("valid settings");
    store.migrate().await.expect("migrate");
    a_user_sees_and_ends_their_own_sessions(store.clone()).await;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP TABLE `{table}`")))
        .execute(store.pool())
        .await
        .expect("drop");
}

#[tokio::test]
async fn a_label_is_kept_across_id_changes_cleared_for_another_user_and_bounded() {
    let app = routes().layer(SessionLayer::new(MemoryStore::default(), Key::generate()));
    let mut browser = Client::new(app);
    browser.send("POST", "/login/alice").await;
    browser.send("POST", "/label/Firefox").await;
    browser.send("POST", "/cycle").await;
    browser.send("POST", "/login/alice").await;
    assert_eq!(browser.send("GET", "/label").await.body, "Firefox");
    browser.send("POST", "/login/bob").await;
    assert_eq!(browser.send("GET", "/label").await.body, "none");
    let long = "x".repeat(257);
    let reply = browser.send("POST", &format!("/label/{long}")).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(browser.send("GET", "/label").await.body, "none");
    let longest = "x".repeat(256);
    let reply = browser.send("POST", &format!("/label/{longest}")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(browser.send("GET", "/label").await.body, longest);
}

#[test]
fn session_info_serializes_its_handle_as_text() {
    let key = sessionware::store::conformance::fresh_key();
    let record = sessionware::store::conformance::sample_record(Some("alice"), "{}");
    let info = SessionInfo::from_record(key, &record);
    let json = serde_json::to_value(&info).expect("serializes");
    assert_eq!(
        json["handle"],
        serde_json::Value::String(SessionHandle::from_store_key(key).to_string())
    );
    assert_eq!(json["current"], serde_json::Value::Bool(false));
}
