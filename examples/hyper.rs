//! Sessions without axum: a per-session counter on hyper 1, hyper-util and tower.
//!
//! ```text
//! cargo run --example hyper
//! curl -c jar -b jar -X POST http://localhost:3001/counter   # 1
//! curl -c jar -b jar -X POST http://localhost:3001/counter   # 2
//! curl -c jar -b jar http://localhost:3001/counter           # 2
//! ```
//!
//! The cookie keeps the crate's secure defaults (`__Host-session`, `Secure`), which curl,
//! Chromium and Firefox accept from `http://localhost`; for a client that does not (Safari),
//! start with `SESSIONWARE_INSECURE_COOKIE=1`.
//!
//! Routes: `GET /counter` (the value, 0 when unset), `POST /counter` (increments it and
//! returns the new value), `GET /plain` (`ok`, without touching the session).
//!
//! Environment: `SESSIONWARE_ADDR` (default `127.0.0.1:3001`), `SESSION_KEY` (base64 of at
//! least 32 random bytes; a new key per run when unset) and `SESSIONWARE_INSECURE_COOKIE`
//! (`1` drops `Secure` and the `__Host-` prefix).

use std::convert::Infallible;
use std::env;
use std::error::Error;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::CONTENT_TYPE;
use hyper::server::conn::http1;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use sessionware::{Key, MemoryStore, Session, SessionError, SessionLayer};
use tokio::net::TcpListener;
use tower::ServiceBuilder;

type AnyError = Box<dyn Error + Send + Sync>;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            // The library's messages name the fix; show them as they are.
            eprintln!("error: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), AnyError> {
    let addr: SocketAddr = env::var("SESSIONWARE_ADDR")
        .unwrap_or_else(|_| "127.0.0.1:3001".to_owned())
        .parse()?;
    let key = match env::var_os("SESSION_KEY") {
        Some(_) => Key::from_env("SESSION_KEY")?,
        None => {
            eprintln!("SESSION_KEY is not set: signing with a new key for this run");
            Key::generate()
        }
    };
    let store = MemoryStore::default();
    // Removes expired sessions in the background until it is dropped at the end of `main`.
    let _sweeper = store.spawn_sweeper(Duration::from_secs(60));
    let mut sessions = SessionLayer::new(store, key).idle_timeout(Duration::from_secs(300));
    if env::var("SESSIONWARE_INSECURE_COOKIE").as_deref() == Ok("1") {
        // For clients that drop `Secure` cookies from plain http://localhost (Safari). Never
        // in production, where the cookie would travel readable by anyone on the network
        // path.
        sessions = sessions.dangerous_insecure_cookie_for_development();
    }

    // The layer needs a response body with a `Default` (for its error response): `Full`.
    let service = ServiceBuilder::new().layer(sessions).service_fn(handle);

    let listener = TcpListener::bind(addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => accepted?,
            // Stops accepting; connections still open are dropped when `main` returns.
            _ = &mut ctrl_c => return Ok(()),
        };
        let service = TowerToHyperService::new(service.clone());
        tokio::spawn(async move {
            if let Err(err) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                eprintln!("connection error: {err}");
            }
        });
    }
}

async fn handle(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    // The layer puts a `Session` into every request; nothing is read from the store until
    // it is used, so `/plain` costs no store call.
    let Some(session) = request.extensions().get::<Session>().cloned() else {
        return Ok(text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "no session: is the SessionLayer installed?",
        ));
    };
    let response = match (request.method(), request.uri().path()) {
        (&Method::GET, "/plain") => Ok(text(StatusCode::OK, "ok")),
        (&Method::GET, "/counter") => counter(&session).await,
        (&Method::POST, "/counter") => increment(&session).await,
        _ => Ok(text(StatusCode::NOT_FOUND, "not found")),
    };
    Ok(response.unwrap_or_else(|err| {
        eprintln!("session error: {err}");
        text(StatusCode::INTERNAL_SERVER_ERROR, "")
    }))
}

async fn counter(session: &Session) -> Result<Response<Full<Bytes>>, SessionError> {
    let value: u64 = session.get("counter").await?.unwrap_or(0);
    Ok(text(StatusCode::OK, value.to_string()))
}

/// `update` is an atomic read-modify-write: concurrent increments are never lost.
async fn increment(session: &Session) -> Result<Response<Full<Bytes>>, SessionError> {
    let value: u64 = session
        .update("counter", |n: Option<u64>| n.unwrap_or(0) + 1)
        .await?;
    Ok(text(StatusCode::OK, value.to_string()))
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
