//! Secure, fast, framework-agnostic HTTP sessions for the `tower` ecosystem.
//!
//! One [`SessionLayer`] creates, signs, validates, expires, rotates and invalidates session
//! IDs against a pluggable [`SessionStore`]: [`MemoryStore`] in one process, `RedisStore`,
//! `PostgresStore` or `MySqlStore` for a fleet, `SqliteStore` for one server with sessions
//! that survive a restart, or no store at all with sealed cookie sessions. It works with any
//! service built on `http` 1.x: axum, hyper with tower, tonic's HTTP stack.
//!
//! ```
//! use std::time::Duration;
//! use axum::{Router, routing::get};
//! use sessionware::{Key, MemoryStore, Session, SessionError, SessionLayer};
//!
//! async fn handler(session: Session) -> Result<String, SessionError> {
//!     let visits: u64 = session.get("visits").await?.unwrap_or(0);
//!     session.insert("visits", visits + 1).await?;
//!     Ok(format!("{visits}"))
//! }
//!
//! let layer = SessionLayer::new(MemoryStore::default(), Key::generate())
//!     .idle_timeout(Duration::from_secs(30 * 60))
//!     .absolute_timeout(Duration::from_secs(12 * 3600));
//! let app: Router = Router::new().route("/", get(handler)).layer(layer);
//! // login:  session.login("user-42").await?   (new ID, records the user)
//! // logout: session.destroy().await?           (record gone, cookie removed)
//! ```
//!
//! Without the `axum` feature, a handler takes the [`Session`] from
//! `request.extensions().get::<Session>()`.
//!
//! # How a request goes
//!
//! 1. The `Cookie` headers are scanned for the session cookie without allocating. Values
//!    that are over 4096 bytes, badly encoded or of the wrong length mean "no session", with
//!    no store call.
//! 2. The HMAC-SHA256 tag is verified in constant time against the current key, then each
//!    previous key. A forged or tampered value never reaches the store.
//! 3. A lazy [`Session`] goes into the request's extensions. Nothing is read from the store
//!    until the handler uses it.
//! 4. The inner service is called directly.
//! 5. On the response, only what changed is saved, and `Set-Cookie` is sent only when the
//!    cookie must change. `Vary: Cookie` is added when the session was read and
//!    `Cache-Control: no-store` whenever a session cookie is set. Nothing is saved on a 5xx
//!    response.
//!
//! # Security
//!
//! - Session IDs are 256 bits from an OS-seeded CSPRNG and encode nothing.
//! - Stores are keyed by SHA-256 of the ID: a dump of the store yields no usable cookie. The
//!   raw ID never appears in logs, tracing fields or `Debug` output.
//! - Idle and absolute timeouts are enforced from the stored record, never from the cookie.
//! - [`Session::login`] always rotates the ID; [`Session::destroy`] deletes the record.
//! - Every save is a compare-and-swap: concurrent requests never silently overwrite each
//!   other, and a session deleted by a concurrent logout is never recreated.
//! - Bad client input is never an error: it is an anonymous session. Rejected cookies are
//!   counted ([`SessionLayer::security_events`]) and reported with `tracing` under the
//!   target `sessionware::security` (every one at `debug`, sparsely at `info`).
//!
//! # Design notes
//!
//! - Handlers take a plain [`Session`], whatever the store, so the handle reaches the store
//!   through one `dyn SessionStore` pointer; the layer itself stays generic over its store.
//!   Store operations return a [`StoreFuture`]: ready at once, without an allocation, from a
//!   store that answers without waiting (as [`MemoryStore`] does), boxed from one doing I/O.
//! - [`Session::update`] commits at once, together with the request's other pending changes,
//!   so that its result is the committed value; an ID rotation requested earlier in the
//!   request still waits for the response. A session that `update` created is deleted again
//!   if the response is a server error.
//! - When the session cookie's name appears more than once with two *different* validly
//!   signed values, the request is anonymous and no cookie is removed: the outcome does not
//!   depend on the order of the cookies, and neither session is harmed.
//! - Time is read from the layer's [`Clock`] once for a request's reads and again before each
//!   write, in whole milliseconds (what stores keep).
//!
//! # Features
//!
//! - `memory-store` (default): [`MemoryStore`].
//! - `redis`: `RedisStore` on the `redis` crate's connection manager.
//! - `postgres`: `PostgresStore` on `sqlx`.
//! - `sqlite`: `SqliteStore` on `sqlx`, a file or in-memory database for one server.
//! - `mysql`: `MySqlStore` on `sqlx`, for MySQL 8 or MariaDB 10.11 and later.
//! - `cookie-store`: `SessionLayer::sealed_cookies`, sessions sealed whole into their
//!   cookies with XChaCha20-Poly1305 and no store (read `SealedCookies` first: no
//!   server-side revocation).
//! - `encryption`: `SessionLayer::encrypt_data_at_rest`, session values sealed before they
//!   reach any store.
//! - `axum`: `Session` and `Option<Session>` extractors.
//! - `test-util`: the public store conformance suite, `sessionware::store::conformance`.
// The library forbids unsafe code outright; `Cargo.toml` only denies it, so that the
// allocation-counting test can implement `GlobalAlloc`.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "encryption")]
mod at_rest;
mod config;
mod contention;
mod context;
mod cookie;
#[cfg(any(feature = "cookie-store", feature = "encryption"))]
mod crypto;
mod error;
mod events;
mod expiry;
#[cfg(feature = "axum")]
mod extract;
mod future;
#[doc(hidden)]
pub mod fuzz;
mod hooks;
mod id;
mod json;
mod key;
mod layer;
#[cfg(feature = "cookie-store")]
mod sealed;
mod service;
mod session;
pub mod store;

/// A boxed error source, kept intact so callers can inspect or downcast it.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

pub use config::ConfigError;
pub use cookie::SameSite;
pub use error::SessionError;
pub use events::SecurityEvents;
pub use expiry::{Clock, Expiry, ManualClock, SystemClock};
#[cfg(feature = "axum")]
pub use extract::MissingSessionLayer;
pub use future::ResponseFuture;
pub use id::{InvalidHandle, SessionHandle, StoreKey};
pub use key::{Key, MIN_KEY_LEN};
pub use layer::SessionLayer;
#[cfg(feature = "cookie-store")]
pub use sealed::SealedCookies;
pub use service::SessionService;
pub use session::Session;
pub use store::{
    CreateOutcome, LoadOutcome, Record, RotateOutcome, SaveOutcome, SessionInfo, SessionStore,
    StoreError, StoreFuture, TouchOutcome, UserIndex,
};
#[cfg(feature = "memory-store")]
pub use store::{MemoryStore, MemoryStoreBuilder, Sweeper};
#[cfg(feature = "mysql")]
pub use store::{MySqlStore, MySqlStoreBuilder};
#[cfg(feature = "postgres")]
pub use store::{PostgresStore, PostgresStoreBuilder};
#[cfg(feature = "redis")]
pub use store::{RedisStore, RedisStoreBuilder};
#[cfg(feature = "sqlite")]
pub use store::{SqliteStore, SqliteStoreBuilder};

/// Compiles the README's example as a doctest, so it cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctest;
