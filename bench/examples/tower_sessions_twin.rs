//! The library's axum example (`../examples/axum.rs`) rebuilt on tower-sessions 0.15, for load-test
//! comparisons: the same routes, the same cookie settings, the same idle timeout.
//!
//! ```text
//! cargo run --release -p sessionware-bench --example tower_sessions_twin
//! ```
//!
//! | variable | meaning | default |
//! | --- | --- | --- |
//! | `SESSIONWARE_ADDR` | address to listen on | `127.0.0.1:3002` |
//! | `SESSION_IDLE_SECS` | idle timeout, in seconds | `300` |
//! | `RUST_LOG` | log filter, as in the sessionware example | `info` |
//!
//! Both apps keep sessions in memory, sign their cookies with HMAC-SHA256 and send them as
//! `session` with `HttpOnly`, `SameSite=Lax`, `Path=/`, a `Max-Age` of the idle timeout, and
//! without `Secure` (plain HTTP on localhost). The differences are tower-sessions' own:
//!
//! - `POST /counter` is a `get` then an `insert`: tower-sessions has no atomic
//!   read-modify-write, so concurrent increments of one session can be lost.
//! - A read-only request never extends the idle deadline (sessionware extends it at most
//!   once a minute); tower-sessions does so only on writes, or on every request with
//!   `with_always_save(true)`.
//! - The signing key is new at every start (tower-sessions wants 64 bytes; the example does
//!   not read `SESSION_KEY`), and there is no sweeper: its memory store drops an expired
//!   session only when it is loaded.
//! - `POST /login` rotates the ID with `cycle_id`; there is no per-user index.

use std::env;
use std::error::Error;
use std::net::SocketAddr;
use std::process::ExitCode;

use axum::extract::Form;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Router, serve};
use serde::Deserialize;
use tokio::net::TcpListener;
use tower_sessions::cookie::{Key, SameSite, time};
use tower_sessions::{Expiry, MemoryStore, Session, SessionManagerLayer};

type AnyError = Box<dyn Error + Send + Sync>;

/// The longest user name `POST /login` accepts, in characters.
const MAX_USERNAME_CHARS: usize = 64;

/// Where the logged-in user's name is kept in the session.
const USER_KEY: &str = "user";

#[tokio::main]
async fn main() -> ExitCode {
    // The same logging as the sessionware example (`RUST_LOG`, default `info`). Note that
    // tower-sessions opens an `info` span per request, which this filter enables.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), AnyError> {
    let addr: SocketAddr = env_or("SESSIONWARE_ADDR", "127.0.0.1:3002")
        .parse()
        .map_err(|err| {
            format!("SESSIONWARE_ADDR is not an address such as 127.0.0.1:3002 ({err})")
        })?;
    let idle_secs: i64 = env_or("SESSION_IDLE_SECS", "300")
        .parse()
        .map_err(|err| format!("SESSION_IDLE_SECS is not a number of seconds ({err})"))?;
    // The same settings as the sessionware example over plain HTTP: never serve this
    // without `Secure` over a network.
    let sessions = SessionManagerLayer::new(MemoryStore::default())
        .with_signed(Key::generate())
        .with_name("session")
        .with_secure(false)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_path("/")
        .with_expiry(Expiry::OnInactivity(time::Duration::seconds(idle_secs)));

    let listener = TcpListener::bind(addr)
        .await
        .map_err(|err| format!("cannot listen on {addr}: {err}"))?;
    println!("listening on http://{}", listener.local_addr()?);
    let app = Router::new()
        .route("/", get(home))
        .route("/login", post(login))
        .route("/logout", post(logout))
        .route("/me", get(me))
        .route("/counter", get(counter).post(increment))
        .route("/plain", get(|| async { "ok" }))
        .layer(sessions);
    serve(listener, app)
        .with_graceful_shutdown(ctrl_c())
        .await?;
    Ok(())
}

/// A session error becomes an empty 500, as in the sessionware example.
struct Internal;

impl From<tower_sessions::session::Error> for Internal {
    fn from(_: tower_sessions::session::Error) -> Self {
        Self
    }
}

impl IntoResponse for Internal {
    fn into_response(self) -> Response {
        StatusCode::INTERNAL_SERVER_ERROR.into_response()
    }
}

async fn home(session: Session) -> Result<Html<String>, Internal> {
    let Some(user) = session.get::<String>(USER_KEY).await? else {
        return Ok(Html(page(
            r#"<form method="post" action="/login">
  <label>Name <input name="username" required maxlength="64" autofocus></label>
  <button>Log in</button>
</form>"#,
        )));
    };
    let visits = session.get::<u64>("visits").await?.unwrap_or(0) + 1;
    session.insert("visits", visits).await?;
    Ok(Html(page(&format!(
        r#"<p>Hello, {}! Visits to this page in this session: {visits}.</p>
<form method="post" action="/logout"><button>Log out</button></form>"#,
        escape_html(&user)
    ))))
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    username: String,
}

async fn login(session: Session, Form(form): Form<LoginForm>) -> Result<Response, Internal> {
    let username = form.username.trim();
    if !(1..=MAX_USERNAME_CHARS).contains(&username.chars().count()) {
        return Ok((
            StatusCode::BAD_REQUEST,
            format!("username must be 1 to {MAX_USERNAME_CHARS} characters\n"),
        )
            .into_response());
    }
    // As sessionware's `login`: a different user starts from an empty session, and the ID
    // always changes.
    if session
        .get::<String>(USER_KEY)
        .await?
        .is_some_and(|previous| previous != username)
    {
        session.clear().await;
    }
    session.cycle_id().await?;
    session.insert(USER_KEY, username).await?;
    Ok(Redirect::to("/").into_response())
}

async fn logout(session: Session) -> Result<Redirect, Internal> {
    session.flush().await?;
    Ok(Redirect::to("/"))
}

async fn me(session: Session) -> Result<Response, Internal> {
    Ok(match session.get::<String>(USER_KEY).await? {
        Some(user) => user.into_response(),
        None => (StatusCode::UNAUTHORIZED, "not logged in\n").into_response(),
    })
}

async fn counter(session: Session) -> Result<String, Internal> {
    let value: u64 = session.get("counter").await?.unwrap_or(0);
    Ok(value.to_string())
}

/// `get` then `insert`: tower-sessions has no atomic read-modify-write.
async fn increment(session: Session) -> Result<String, Internal> {
    let value = session.get::<u64>("counter").await?.unwrap_or(0) + 1;
    session.insert("counter", value).await?;
    Ok(value.to_string())
}

async fn ctrl_c() {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

fn env_or(name: &str, default: &str) -> String {
    env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn page(body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\">\
         <title>tower-sessions twin</title></head>\n<body>\n{body}\n</body>\n</html>\n"
    )
}

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
