//! A small axum app with sessions: log in, count visits, log out.
//!
//! ```text
//! cargo run --example axum --features axum
//! ```
//!
//! then open <http://localhost:3000>. The cookie keeps the crate's secure defaults
//! (`__Host-session`, `Secure`), which Chromium and Firefox accept from `http://localhost`;
//! Safari does not, so start it with `SESSIONWARE_INSECURE_COOKIE=1` there. Configuration
//! comes from the environment:
//!
//! | variable | meaning | default |
//! | --- | --- | --- |
//! | `SESSIONWARE_ADDR` | address to listen on | `127.0.0.1:3000` |
//! | `SESSION_KEY` | signing key: base64 of at least 32 random bytes | a new key per run |
//! | `SESSION_PREVIOUS_KEYS` | keys still accepted after a rotation, comma-separated, newest first | none |
//! | `SESSION_IDLE_SECS` | idle timeout, in seconds | `300` |
//! | `SESSION_ANONYMOUS_SECS` | lifetime of a session nobody logged in to, in seconds | `60` |
//! | `SESSION_STORE` | `memory`, `redis`, `postgres`, `mysql`, `sqlite` or `cookie` (no store: sealed cookies) | `memory` |
//! | `REDIS_URL` | Redis server, for `SESSION_STORE=redis` (feature `redis`) | |
//! | `DATABASE_URL` | PostgreSQL database, for `SESSION_STORE=postgres` (feature `postgres`) | |
//! | `MYSQL_URL` | MySQL or MariaDB database, for `SESSION_STORE=mysql` (feature `mysql`) | |
//! | `SQLITE_PATH` | SQLite database file, for `SESSION_STORE=sqlite` (feature `sqlite`) | an in-memory database |
//! | `SESSION_ENCRYPT` | `1` seals session values before they reach the store (feature `encryption`) | unset |
//! | `SESSIONWARE_INSECURE_COOKIE` | `1` drops `Secure` and the `__Host-` prefix (plain-HTTP development in browsers that need it) | unset |
//!
//! Two instances on two ports with the same `SESSION_KEY` and a shared Redis or PostgreSQL
//! share their sessions:
//!
//! ```text
//! export SESSION_KEY=$(openssl rand -base64 32) SESSION_STORE=redis REDIS_URL=redis://127.0.0.1:6379
//! SESSIONWARE_ADDR=127.0.0.1:3000 cargo run --example axum --features axum,redis &
//! SESSIONWARE_ADDR=127.0.0.1:3001 cargo run --example axum --features axum,redis
//! ```
//!
//! Routes:
//!
//! - `GET /`: a login form, or a greeting with a per-session visit counter and a logout button
//! - `POST /login` (form field `username`), `POST /logout`: redirect to `/`
//! - `GET /me`: the logged-in user's name, or 401
//! - `GET /counter`, `POST /counter`: read or increment a per-session counter
//! - `GET /plain`: `ok`, without touching the session (a baseline for load tests)
//! - `GET /ready`: a readiness probe, 200 when the session store answers, else 503
//! - `GET /sessions`: the logged-in user's sessions (device label, last active, the current
//!   one marked), each with a revoke button; 401 when nobody is logged in
//! - `POST /sessions/revoke` (form field `handle`): ends one of them (the current one is a
//!   logout), `POST /sessions/revoke-others`: ends all the others; both redirect to
//!   `/sessions`
//!
//! With `SESSION_STORE=cookie` (feature `cookie-store`) each session lives in its sealed
//! cookie and the server keeps nothing: a logout then clears only the browser's copy (see
//! `SealedCookies` in the crate's docs for everything that changes).

use std::env;
use std::error::Error;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use axum::extract::Form;
use axum::http::header::USER_AGENT;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Router, serve};
use serde::Deserialize;
use sessionware::store::Sweeper;
use std::sync::Arc;

use sessionware::{Key, MemoryStore, Session, SessionError, SessionLayer, SessionStore};
use tokio::net::TcpListener;

type AnyError = Box<dyn Error + Send + Sync>;

/// The longest user name `POST /login` accepts, in characters.
const MAX_USERNAME_CHARS: usize = 64;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            report(&*err);
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), AnyError> {
    let addr: SocketAddr = env_or("SESSIONWARE_ADDR", "127.0.0.1:3000")
        .parse()
        .map_err(|err| {
            format!("SESSIONWARE_ADDR is not an address such as 127.0.0.1:3000 ({err})")
        })?;
    let idle_secs: u64 = env_or("SESSION_IDLE_SECS", "300")
        .parse()
        .map_err(|err| format!("SESSION_IDLE_SECS is not a number of seconds ({err})"))?;
    let anonymous_secs: u64 = env_or("SESSION_ANONYMOUS_SECS", "60")
        .parse()
        .map_err(|err| format!("SESSION_ANONYMOUS_SECS is not a number of seconds ({err})"))?;
    let key = signing_key()?;
    let settings = Settings {
        previous_keys: Key::previous_from_env("SESSION_PREVIOUS_KEYS")?,
        idle: Duration::from_secs(idle_secs),
        anonymous: Duration::from_secs(anonymous_secs),
    };
    // Kept alive until the server stops: dropping it stops the memory store's sweeps.
    let (router, _sweeper) = match store_from_env().await? {
        Backend::Store(store, sweeper) => {
            let probe = Arc::clone(&store);
            let sessions = settings.apply(SessionLayer::new(store, key))?;
            (app(sessions, Some(probe)), sweeper)
        }
        #[cfg(feature = "cookie-store")]
        Backend::Cookie => {
            let sessions = settings.apply(SessionLayer::sealed_cookies(key))?;
            (app(sessions, None), None)
        }
    };

    let listener = TcpListener::bind(addr)
        .await
        .map_err(|err| format!("cannot listen on {addr}: {err}"))?;
    println!("listening on http://{}", listener.local_addr()?);
    serve(listener, router)
        .with_graceful_shutdown(ctrl_c())
        .await?;
    Ok(())
}

/// The layer settings read from the environment.
struct Settings {
    previous_keys: Vec<Key>,
    idle: Duration,
    anonymous: Duration,
}

impl Settings {
    /// `layer` with these settings, checked.
    fn apply<S: ?Sized>(self, layer: SessionLayer<S>) -> Result<SessionLayer<S>, AnyError> {
        // Anonymous sessions (a counter before login) end soon: whoever floods the server
        // with them makes it hold at most a minute's worth.
        let mut sessions = layer
            .previous_keys(self.previous_keys)
            .idle_timeout(self.idle)
            .anonymous_timeout(self.anonymous);
        if env_or("SESSIONWARE_INSECURE_COOKIE", "0") == "1" {
            // Only for browsers that drop `Secure` cookies from plain http://localhost
            // (Safari): the cookie goes without `Secure` (and without the `__Host-` prefix,
            // which requires it). Never in production: without TLS, anyone on the network
            // path can read the cookie and take over the session.
            sessions = sessions.dangerous_insecure_cookie_for_development();
        }
        if env_or("SESSION_ENCRYPT", "0") == "1" {
            #[cfg(feature = "encryption")]
            {
                // A dump of the store then shows no session values.
                sessions = sessions.encrypt_data_at_rest();
            }
            #[cfg(not(feature = "encryption"))]
            return Err("SESSION_ENCRYPT=1 needs the `encryption` feature".into());
        }
        // Report a bad configuration (an idle timeout of 0, say) as an error; applying an
        // invalid layer would panic.
        sessions.validate()?;
        Ok(sessions)
    }
}

/// The application: its routes, wrapped in the session layer. `store` answers the
/// readiness probe; a sealed cookie layer has none and is always ready.
fn app<S>(sessions: SessionLayer<S>, store: Option<Arc<dyn SessionStore>>) -> Router
where
    S: ?Sized + Send + Sync + 'static,
{
    Router::new()
        .route("/", get(home))
        .route("/login", post(login))
        .route("/logout", post(logout))
        .route("/me", get(me))
        .route("/counter", get(counter).post(increment))
        .route("/plain", get(|| async { "ok" }))
        .route("/ready", get(move || ready(store.clone())))
        .route("/sessions", get(sessions_page))
        .route("/sessions/revoke", post(revoke_one))
        .route("/sessions/revoke-others", post(revoke_others))
        .layer(sessions)
}

/// Readiness: 200 when the session store answers its cheap health call, 503 with the reason
/// when it does not (the app would fail every session request meanwhile).
async fn ready(store: Option<Arc<dyn SessionStore>>) -> (StatusCode, String) {
    let Some(store) = store else {
        return (StatusCode::OK, "ready\n".to_owned());
    };
    match store.ping().await {
        Ok(()) => (StatusCode::OK, "ready\n".to_owned()),
        Err(error) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("session store not ready: {error}\n"),
        ),
    }
}

/// The login form for anonymous visitors; a greeting and a visit counter once logged in.
async fn home(session: Session) -> Result<Html<String>, SessionError> {
    let Some(user) = session.user().await? else {
        // Anonymous visitors get no session: nothing is stored until someone logs in.
        return Ok(Html(page(
            r#"<form method="post" action="/login">
  <label>Name <input name="username" required maxlength="64" autofocus></label>
  <button>Log in</button>
</form>"#,
        )));
    };
    // `update` is an atomic read-modify-write: visits from concurrent tabs are all counted.
    let visits: u64 = session
        .update("visits", |n: Option<u64>| n.unwrap_or(0) + 1)
        .await?;
    Ok(Html(page(&format!(
        r#"<p>Hello, {}! Visits to this page in this session: {visits}.</p>
<p><a href="/sessions">Your sessions</a></p>
<form method="post" action="/logout"><button>Log out</button></form>"#,
        escape_html(&user)
    ))))
}

#[derive(Deserialize)]
struct LoginForm {
    // A missing field is treated like an empty one: a 400, not axum's 422.
    #[serde(default)]
    username: String,
}

/// A short label for the device a request came from, for the sessions page.
fn device_label(headers: &HeaderMap) -> String {
    let agent = headers
        .get(USER_AGENT)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    let browser = ["Firefox", "Edg", "Chrome", "Safari", "curl"]
        .into_iter()
        .find(|name| agent.contains(name))
        .map_or(
            "Unknown browser",
            |name| if name == "Edg" { "Edge" } else { name },
        );
    let system = ["Android", "iPhone", "iPad", "Windows", "Mac OS", "Linux"]
        .into_iter()
        .find(|name| agent.contains(name));
    match system {
        Some(system) => format!("{browser} on {system}"),
        None => browser.to_owned(),
    }
}

/// Logs the user in. There is no password: the example shows the session, not authentication.
///
/// The session cookie is `SameSite=Lax`, so browsers do not send it with cross-site form
/// posts; a real application still adds a CSRF token to its forms.
async fn login(
    session: Session,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, SessionError> {
    let username = form.username.trim();
    if !(1..=MAX_USERNAME_CHARS).contains(&username.chars().count()) {
        return Ok((
            StatusCode::BAD_REQUEST,
            format!("username must be 1 to {MAX_USERNAME_CHARS} characters\n"),
        )
            .into_response());
    }
    // Control characters (a newline, an escape) would forge lines in logs and terminals
    // that show the name; checked before trimming, which would hide some of them.
    if form.username.chars().any(char::is_control) {
        return Ok((
            StatusCode::BAD_REQUEST,
            "username must not contain control characters\n",
        )
            .into_response());
    }
    // `login` gives the session a new ID, so an ID planted before the login is worthless.
    session.login(username).await?;
    // Shown on the sessions page, to tell the user's devices apart.
    session.set_label(device_label(&headers)).await?;
    Ok(Redirect::to("/").into_response())
}

/// Deletes the session from the store and removes the cookie.
async fn logout(session: Session) -> Result<Redirect, SessionError> {
    session.destroy().await?;
    Ok(Redirect::to("/"))
}

/// The logged-in user's name, or 401.
async fn me(session: Session) -> Result<Response, SessionError> {
    Ok(match session.user().await? {
        Some(user) => user.into_response(),
        None => (StatusCode::UNAUTHORIZED, "not logged in\n").into_response(),
    })
}

/// The logged-in user's sessions, with a button to end each.
async fn sessions_page(session: Session) -> Result<Response, SessionError> {
    if session.user().await?.is_none() {
        return Ok((StatusCode::UNAUTHORIZED, "not logged in\n").into_response());
    }
    let sessions = match session.user_sessions().await {
        Ok(sessions) => sessions,
        // Sealed cookies: no server-side list.
        Err(SessionError::Store(sessionware::StoreError::Unsupported { .. })) => {
            return Ok(Html(page(
                "<p>Sessions live in sealed cookies here: the server keeps no list of them.</p>",
            ))
            .into_response());
        }
        Err(error) => return Err(error),
    };
    let now = std::time::SystemTime::now();
    let mut rows = String::new();
    for info in &sessions {
        let idle = now
            .duration_since(info.last_active)
            .unwrap_or_default()
            .as_secs();
        rows.push_str(&format!(
            r#"<tr><td>{}{}</td><td>{idle} s ago</td><td><form method="post" action="/sessions/revoke"><input type="hidden" name="handle" value="{}"><button>{}</button></form></td></tr>"#,
            escape_html(info.label.as_deref().unwrap_or("(no label)")),
            if info.current { " <b>(this one)</b>" } else { "" },
            info.handle,
            if info.current { "Log out" } else { "Revoke" },
        ));
    }
    Ok(Html(page(&format!(
        r#"<h1>Your sessions</h1>
<table><tr><th>device</th><th>last active</th><th></th></tr>
{rows}</table>
<form method="post" action="/sessions/revoke-others"><button>Log out everywhere else</button></form>
<p><a href="/">Home</a></p>"#
    )))
    .into_response())
}

#[derive(Deserialize)]
struct RevokeForm {
    #[serde(default)]
    handle: String,
}

/// Ends one of the user's sessions; the crate checks that it is theirs.
async fn revoke_one(
    session: Session,
    Form(form): Form<RevokeForm>,
) -> Result<Response, SessionError> {
    let Ok(handle) = form.handle.parse::<sessionware::SessionHandle>() else {
        return Ok((StatusCode::BAD_REQUEST, "not a session handle\n").into_response());
    };
    // `false` (not the user's, or already ended) needs no message: the page shows what is left.
    allow_unsupported(session.revoke_session(&handle).await)?;
    Ok(Redirect::to("/sessions").into_response())
}

/// Ends every session of the user but this one.
async fn revoke_others(session: Session) -> Result<Redirect, SessionError> {
    allow_unsupported(session.revoke_other_sessions().await)?;
    Ok(Redirect::to("/sessions"))
}

/// Treats "this backend keeps no per-user list" (sealed cookies) as nothing to do: the
/// sessions page says why.
fn allow_unsupported<T>(result: Result<T, SessionError>) -> Result<(), SessionError> {
    match result {
        Ok(_) | Err(SessionError::Store(sessionware::StoreError::Unsupported { .. })) => Ok(()),
        Err(error) => Err(error),
    }
}

/// The counter's current value.
async fn counter(session: Session) -> Result<String, SessionError> {
    let value: u64 = session.get("counter").await?.unwrap_or(0);
    Ok(value.to_string())
}

/// Increments the counter and returns the new value. With `update`, concurrent increments
/// (from other tabs, or other instances sharing the store) are never lost; a `get` followed
/// by an `insert` could lose some.
async fn increment(session: Session) -> Result<String, SessionError> {
    let value: u64 = session
        .update("counter", |n: Option<u64>| n.unwrap_or(0) + 1)
        .await?;
    Ok(value.to_string())
}

/// The signing key from `SESSION_KEY`, or a new one when it is unset.
fn signing_key() -> Result<Key, AnyError> {
    if env::var_os("SESSION_KEY").is_some() {
        // A key that is set but unusable is an error: silently replacing it would log
        // everyone out at every restart.
        return Ok(Key::from_env("SESSION_KEY")?);
    }
    // The generated key is never printed: logs are read by more people than should sign
    // sessions.
    eprintln!(
        "SESSION_KEY is not set: signing with a new random key, so sessions will not survive \
         a restart.\nTo keep them, set SESSION_KEY to the base64 of 32 random bytes, for \
         example SESSION_KEY=$(openssl rand -base64 32)"
    );
    Ok(Key::generate())
}

/// Where sessions live.
enum Backend {
    /// In a store, as a `dyn SessionStore` so that one layer type serves every store, with
    /// the memory store's background sweeper.
    Store(Arc<dyn SessionStore>, Option<Sweeper>),
    /// In sealed cookies.
    #[cfg(feature = "cookie-store")]
    Cookie,
}

/// The backend named by `SESSION_STORE`.
async fn store_from_env() -> Result<Backend, AnyError> {
    let name = env_or("SESSION_STORE", "memory");
    match name.as_str() {
        "memory" => {
            let store = MemoryStore::default();
            let sweeper = store.spawn_sweeper(Duration::from_secs(60));
            Ok(Backend::Store(Arc::new(store), Some(sweeper)))
        }
        #[cfg(feature = "redis")]
        "redis" => {
            let url = required_env("REDIS_URL")?;
            // Redis drops expired sessions by itself (native TTLs): no cleanup task.
            let store = sessionware::RedisStore::connect(&url).await?;
            Ok(Backend::Store(Arc::new(store), None))
        }
        #[cfg(feature = "postgres")]
        "postgres" => {
            let url = required_env("DATABASE_URL")?;
            let store = sessionware::PostgresStore::connect(&url).await?;
            store.migrate().await?;
            Ok(with_cleanup(Arc::new(store)))
        }
        #[cfg(feature = "mysql")]
        "mysql" => {
            let url = required_env("MYSQL_URL")?;
            let store = sessionware::MySqlStore::connect(&url).await?;
            store.migrate().await?;
            Ok(with_cleanup(Arc::new(store)))
        }
        #[cfg(feature = "sqlite")]
        "sqlite" => {
            let url = match env::var("SQLITE_PATH") {
                // Created if missing.
                Ok(path) => format!("sqlite://{path}?mode=rwc"),
                Err(_) => "sqlite::memory:".to_owned(),
            };
            let store = sessionware::SqliteStore::connect(&url).await?;
            store.migrate().await?;
            Ok(with_cleanup(Arc::new(store)))
        }
        #[cfg(feature = "cookie-store")]
        "cookie" => Ok(Backend::Cookie),
        other => Err(unknown_store(other).into()),
    }
}

/// Why `SESSION_STORE=name` cannot be served by this build.
fn unknown_store(name: &str) -> String {
    let feature = match name {
        "redis" | "postgres" | "mysql" | "sqlite" => name,
        "cookie" => "cookie-store",
        _ => {
            return format!(
                "SESSION_STORE={name:?}: expected memory, redis, postgres, mysql, sqlite or \
                 cookie"
            );
        }
    };
    format!(
        "SESSION_STORE={name} needs the `{feature}` feature: \
         cargo run --example axum --features axum,{feature}"
    )
}

/// A SQL store, with a task that deletes its expired sessions every five minutes: SQL stores
/// never return expired rows, but keep them until they are deleted.
#[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite"))]
fn with_cleanup(store: Arc<dyn SessionStore>) -> Backend {
    let cleaned = Arc::clone(&store);
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(300));
        loop {
            every.tick().await;
            if let Err(err) = cleaned.delete_expired(std::time::SystemTime::now()).await {
                tracing::warn!(error = %err, "deleting expired sessions failed");
            }
        }
    });
    Backend::Store(store, None)
}

/// Resolves on Ctrl-C: the server stops accepting connections and finishes the requests in
/// flight.
async fn ctrl_c() {
    if let Err(err) = tokio::signal::ctrl_c().await {
        // Without a signal handler, run until killed rather than stop at once.
        tracing::warn!(error = %err, "cannot listen for Ctrl-C");
        std::future::pending::<()>().await;
    }
}

/// Prints a startup error and its causes on one line. The library's messages name the fix,
/// which a panic's backtrace would bury.
fn report(err: &dyn Error) {
    let mut message = format!("error: {err}");
    let mut source = err.source();
    while let Some(cause) = source {
        // Some errors already include their source in their own message.
        let cause_text = cause.to_string();
        if !message.contains(&cause_text) {
            message.push_str(": ");
            message.push_str(&cause_text);
        }
        source = cause.source();
    }
    eprintln!("{message}");
}

fn env_or(name: &str, default: &str) -> String {
    env::var(name).unwrap_or_else(|_| default.to_owned())
}

#[cfg(any(feature = "redis", feature = "postgres", feature = "mysql"))]
fn required_env(name: &str) -> Result<String, AnyError> {
    env::var(name).map_err(|_| format!("{name} is not set").into())
}

fn page(body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\">\
         <title>sessionware example</title></head>\n<body>\n{body}\n</body>\n</html>\n"
    )
}

/// Escapes text for HTML element content and quoted attribute values.
fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#x27;"),
            c => escaped.push(c),
        }
    }
    escaped
}
