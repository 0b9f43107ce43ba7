//! The [`SessionStore`] trait, the records it keeps, and the stores that ship with the crate.

#[cfg(any(
    feature = "redis",
    feature = "postgres",
    feature = "sqlite",
    feature = "mysql"
))]
use std::future::Future;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::expiry::Expiry;
use crate::id::{SessionHandle, StoreKey};

#[cfg(any(feature = "memory-store", feature = "cookie-store"))]
pub(crate) mod codec;
#[cfg(feature = "test-util")]
pub mod conformance;
mod error;
mod future;
#[cfg(feature = "memory-store")]
pub(crate) mod memory;
#[cfg(feature = "mysql")]
mod mysql;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "sqlite")]
mod sqlite;
pub mod time;

pub use error::StoreError;
pub use future::StoreFuture;
#[cfg(feature = "memory-store")]
pub use memory::{MemoryStore, MemoryStoreBuilder, Sweeper};
#[cfg(feature = "mysql")]
pub use mysql::{MySqlStore, MySqlStoreBuilder};
#[cfg(feature = "postgres")]
pub use postgres::{PostgresStore, PostgresStoreBuilder};
#[cfg(feature = "redis")]
pub use redis::{RedisStore, RedisStoreBuilder};
#[cfg(feature = "sqlite")]
pub use sqlite::{SqliteStore, SqliteStoreBuilder};

/// The default bound on each operation of a remote store, connecting included.
#[cfg(any(
    feature = "redis",
    feature = "postgres",
    feature = "sqlite",
    feature = "mysql"
))]
pub(crate) const DEFAULT_OPERATION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Runs a store operation, giving up with [`StoreError::Timeout`] after `timeout`.
/// Dropping the operation's future abandons it: a script or statement the server already
/// received may still complete there, which every operation tolerates (each is atomic, and
/// a retry after a timeout reads the outcome afresh).
#[cfg(any(
    feature = "redis",
    feature = "postgres",
    feature = "sqlite",
    feature = "mysql"
))]
pub(crate) async fn within<T>(
    timeout: std::time::Duration,
    operation: &'static str,
    future: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(timeout, future).await {
        Ok(result) => result,
        Err(_) => Err(StoreError::Timeout { operation, timeout }),
    }
}

/// How long a rotation's marker stays under the old key (see [`SessionStore::rotate`]).
///
/// Long enough for the requests that were in flight with the old cookie when the ID changed
/// (a double-submitted login form, a page's parallel requests) to learn that the session
/// moved rather than ended; short enough that the marker, which holds no data and
/// authenticates nothing, costs little.
pub const ROTATION_MARKER_LIFETIME: std::time::Duration = std::time::Duration::from_secs(30);

/// The `version` a rotation marker is stored with. Records start at version 1, so a store
/// can keep a marker as a record with version 0, no user and no data.
pub const ROTATION_MARKER_VERSION: u64 = 0;

/// A stored session.
///
/// Stores keep it as they please but must return exactly what was written. The layer
/// decides every field; stores only compare `version` (for compare-and-swap), read
/// `expires_at` (to hide and purge expired records) and index `user`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Incremented by every save; the basis of compare-and-swap. A new record has version 1.
    pub version: u64,
    /// The logged-in user, if any: the per-user index is kept on it.
    pub user: Option<String>,
    /// When the session was created; the absolute timeout counts from here and survives ID
    /// rotation.
    pub created_at: SystemTime,
    /// When the session was last extended (saved or touched).
    pub last_active: SystemTime,
    /// The server-side deadline: the record does not exist for `load` at or after it.
    pub expires_at: SystemTime,
    /// The per-session expiry override, if any.
    pub expiry: Option<Expiry>,
    /// The session's values, serialized as a JSON object. Opaque to stores.
    pub data: Vec<u8>,
    /// A short text the application chose for the session (which device it is, say),
    /// returned by [`UserIndex::sessions_of`]. Opaque to stores, which keep it verbatim.
    /// Records serialized before it existed deserialize with no label.
    #[serde(default)]
    pub label: Option<String>,
}

impl Record {
    /// Whether the record is expired at `now` (its deadline is at or before `now`).
    pub fn is_expired(&self, now: SystemTime) -> bool {
        self.expires_at <= now
    }
}

/// Metadata about one live session of a user, as listed by
/// [`UserIndex::sessions_of`]. Carries an opaque handle, never the session ID.
///
/// Marked `#[non_exhaustive]`, so that later releases can add to it: stores make one with
/// [`SessionInfo::from_record`].
///
/// Serializes with serde (times as serde serializes a `SystemTime`), for an "active
/// sessions" page or API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct SessionInfo {
    /// The handle to pass to [`UserIndex::revoke`] or
    /// [`Session::revoke_session`](crate::Session::revoke_session).
    pub handle: SessionHandle,
    /// When the session was created.
    pub created_at: SystemTime,
    /// When the session was last used, to the layer's
    /// [`touch_after`](crate::SessionLayer::touch_after) granularity: a request that writes
    /// the session sets it exactly, one that only reads it moves it only when the last
    /// extension is at least that long ago (by default a quarter of the idle timeout, at most
    /// a minute).
    pub last_active: SystemTime,
    /// When the session expires unless extended.
    pub expires_at: SystemTime,
    /// The application's label of the session ([`Session::set_label`](crate::Session::set_label)),
    /// if it set one.
    pub label: Option<String>,
    /// Whether this is the session of the request that listed it. Set by
    /// [`Session::user_sessions`](crate::Session::user_sessions); a store's own listing
    /// leaves it `false`.
    pub current: bool,
}

impl SessionInfo {
    /// The metadata of the record filed under `key`.
    pub fn from_record(key: StoreKey, record: &Record) -> Self {
        Self {
            handle: SessionHandle::from_store_key(key),
            created_at: record.created_at,
            last_active: record.last_active,
            expires_at: record.expires_at,
            label: record.label.clone(),
            current: false,
        }
    }
}

/// What [`SessionStore::load`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadOutcome {
    /// A live record.
    Found(Record),
    /// A record exists but its deadline has passed. Stores that have already dropped it
    /// (a TTL fired) return [`Missing`](Self::Missing) instead.
    Expired,
    /// The session moved to a new ID moments ago: a rotation left its marker here. The
    /// request gets no session under this key, but its cookie is not removed (the response
    /// that rotated it sets the new one).
    Moved,
    /// No record under this key.
    Missing,
}

/// What [`SessionStore::create`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateOutcome {
    /// The record was inserted.
    Created,
    /// A record already exists under this key; it was left untouched.
    Collision,
}

/// What [`SessionStore::save`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveOutcome {
    /// The record was replaced.
    Saved,
    /// The stored version differs from the expected one; nothing was written.
    Conflict,
    /// No live record under this key (deleted or expired); nothing was written.
    Missing,
    /// The session moved to a new ID (a rotation marker is under this key); nothing was
    /// written.
    Moved,
}

/// What [`SessionStore::touch`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TouchOutcome {
    /// The deadline was moved.
    Touched,
    /// The stored version differs from the one the caller loaded: another request changed
    /// the session since (and may have set its deadline, with `set_expiry` say); nothing was
    /// written.
    Conflict,
    /// No live record under this key; nothing was written.
    Missing,
}

/// What [`SessionStore::rotate`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotateOutcome {
    /// The new record exists and the old one is gone.
    Rotated,
    /// The old record's version differs from the expected one; nothing was written.
    Conflict,
    /// No live record under the old key; nothing was written.
    Missing,
    /// The old key holds a rotation marker: the session already moved to another ID;
    /// nothing was written.
    Moved,
    /// A record already exists under the new key; nothing was written.
    Collision,
}

/// A place to keep sessions: the operations the layer calls.
///
/// Every operation is atomic in the store: a concurrent reader sees the state before or
/// after it, never half of it. Keys are [`StoreKey`]s (SHA-256 of the session ID), never the
/// ID itself. Every operation receives `now` from the layer's [`Clock`](crate::Clock), so
/// that stores and layer agree on the time and tests can move it; a store never reads the
/// system clock for a decision.
///
/// Operations return a [`StoreFuture`]: [`StoreFuture::ready`] from a store that answers
/// without waiting (then also override [`is_immediate`](Self::is_immediate)),
/// [`StoreFuture::boxed`] from one doing I/O. The trait is object-safe, and the layer keeps
/// its store as a `dyn SessionStore`.
///
/// The per-user index (listing and revoking a user's sessions) is a trait of its own,
/// [`UserIndex`], which a store offers through [`user_index`](Self::user_index).
///
/// # Stability
///
/// The trait is meant to change in additive ways only. Operations planned for later
/// releases (an atomic cap on a user's sessions at login, on [`UserIndex`]; a feed of
/// changes for a local read cache) will be provided methods whose default answers
/// [`StoreError::Unsupported`] or "not offered", as [`user_index`](Self::user_index) does
/// today, so that a store written against this release keeps compiling and keeps working
/// without them. [`Record`] carries what the planned features store ([`Record::label`]);
/// [`SessionInfo`] and [`StoreError`] are `#[non_exhaustive]`, so they can grow. A store that persists records across releases should record a format version
/// with each (both built-in server stores do; see `docs/custom-store.md`).
///
/// The conformance suite, `sessionware::store::conformance` (feature `test-util`), checks
/// all of this; run it against any new store (`docs/custom-store.md` has a complete one-file
/// example):
///
/// ```ignore
/// #[tokio::test(flavor = "multi_thread")]
/// async fn my_store_conforms() {
///     let store = MyStore::connect("...").await.unwrap();
///     sessionware::store::conformance::run_all(&store).await;
/// }
/// ```
pub trait SessionStore: Send + Sync + 'static {
    /// Loads the record under `key`. Never returns a record whose `expires_at` is at or
    /// before `now`, even if no cleanup has run yet.
    fn load<'a>(
        &'a self,
        key: &'a StoreKey,
        now: SystemTime,
    ) -> StoreFuture<'a, Result<LoadOutcome, StoreError>>;

    /// Inserts `record` under `key` only if no record exists there. An existing record
    /// (live or expired but not yet purged) is left untouched and reported as a
    /// [`Collision`](CreateOutcome::Collision). `now` is the time of the request (a store
    /// that makes room when full judges expiry by it).
    fn create<'a>(
        &'a self,
        key: &'a StoreKey,
        record: &'a Record,
        now: SystemTime,
    ) -> StoreFuture<'a, Result<CreateOutcome, StoreError>>;

    /// Replaces the record under `key` with `record` only if the stored version equals
    /// `expected_version` and the stored record is live at `now` (compare-and-swap).
    /// `record.version` is the new version (the caller sets it to `expected_version + 1`).
    fn save<'a>(
        &'a self,
        key: &'a StoreKey,
        record: &'a Record,
        expected_version: u64,
        now: SystemTime,
    ) -> StoreFuture<'a, Result<SaveOutcome, StoreError>>;

    /// Sets `last_active` and `expires_at` of the live record under `key`, leaving data and
    /// version untouched, only if the stored version equals `expected_version` (the version
    /// the caller loaded): a touch computed from a stale read must never move a deadline that
    /// a later save set. A missing record is not recreated; a rotation marker is a
    /// [`Conflict`](TouchOutcome::Conflict).
    fn touch<'a>(
        &'a self,
        key: &'a StoreKey,
        expected_version: u64,
        last_active: SystemTime,
        expires_at: SystemTime,
        now: SystemTime,
    ) -> StoreFuture<'a, Result<TouchOutcome, StoreError>>;

    /// Deletes the record (or rotation marker) under `key`, expired or not, and removes it
    /// from its user's index. Returns whether one existed.
    fn delete<'a>(
        &'a self,
        key: &'a StoreKey,
        now: SystemTime,
    ) -> StoreFuture<'a, Result<bool, StoreError>>;

    /// In one step: checks that the live record under `old` has `expected_version` and that
    /// nothing is filed under `new`, then inserts `record` under `new` and replaces the
    /// record under `old` with a rotation marker: a record with version
    /// [`ROTATION_MARKER_VERSION`], no user, empty data, created and last active at `now`,
    /// expiring at `now +` [`ROTATION_MARKER_LIFETIME`], and in no user's index. Used when a
    /// session changes ID (`cycle_id`, `login`).
    ///
    /// Until it expires, the marker makes `load` of `old` answer
    /// [`Moved`](LoadOutcome::Moved), and `save` and `rotate` of it answer `Moved` too, so
    /// that the requests still in flight with the old cookie do not remove the new one from
    /// the browser, and a double-submitted login still ends logged in.
    fn rotate<'a>(
        &'a self,
        old: &'a StoreKey,
        new: &'a StoreKey,
        record: &'a Record,
        expected_version: u64,
        now: SystemTime,
    ) -> StoreFuture<'a, Result<RotateOutcome, StoreError>>;

    /// Deletes every record expired at `now` and returns how many it deleted.
    fn delete_expired(&self, now: SystemTime) -> StoreFuture<'_, Result<u64, StoreError>>;

    /// Checks that the store can serve requests, cheaply (a `PING`, a `SELECT 1`), within
    /// its operation timeout: for a readiness probe. Default: [`StoreError::Unsupported`],
    /// so that a store that does not check is never reported ready by mistake.
    fn ping(&self) -> StoreFuture<'_, Result<(), StoreError>> {
        StoreFuture::ready(Err(StoreError::Unsupported { operation: "ping" }))
    }

    /// This store's per-user index, if it keeps one. Default: none, and the index calls of
    /// a [`Session`](crate::Session) fail with [`StoreError::Unsupported`].
    fn user_index(&self) -> Option<&dyn UserIndex> {
        None
    }

    /// Whether every operation completes without waiting (every future it returns is
    /// [`StoreFuture::ready`]), as for an in-process map. Default: `false`.
    ///
    /// The layer then lets writers of one session commit without queueing them (their
    /// commits cannot interleave), and yields to the executor between compare-and-swap
    /// retries instead of sleeping on a timer.
    fn is_immediate(&self) -> bool {
        false
    }
}

/// The per-user index of a store: the sessions of each logged-in user.
///
/// A store that keeps records with a `user` lists them here; the layer's
/// [`Session`](crate::Session) reaches it through [`SessionStore::user_index`].
pub trait UserIndex: SessionStore {
    /// Lists the sessions of `user` that are live at `now`.
    fn sessions_of<'a>(
        &'a self,
        user: &'a str,
        now: SystemTime,
    ) -> StoreFuture<'a, Result<Vec<SessionInfo>, StoreError>>;

    /// Deletes every session of `user` except `except`, and returns how many it deleted
    /// (expired ones it finds are deleted too, and not counted). Takes effect on the very
    /// next request of each revoked session.
    fn revoke_user<'a>(
        &'a self,
        user: &'a str,
        except: Option<&'a SessionHandle>,
        now: SystemTime,
    ) -> StoreFuture<'a, Result<u64, StoreError>>;

    /// Deletes the session behind `handle`. Returns whether one existed. Default:
    /// [`SessionStore::delete`] of the handle's key.
    fn revoke<'a>(
        &'a self,
        handle: &'a SessionHandle,
        now: SystemTime,
    ) -> StoreFuture<'a, Result<bool, StoreError>> {
        self.delete(handle.store_key(), now)
    }
}

/// A shared store is a store: `Arc<dyn SessionStore>` is how a program picks its store at
/// run time (memory, Redis or PostgreSQL from its configuration) and still builds one layer
/// type. Every call forwards, the immediate fast path included.
///
/// ```
/// use std::sync::Arc;
/// use sessionware::{Key, MemoryStore, SessionLayer, SessionStore};
///
/// let store: Arc<dyn SessionStore> = match std::env::var("SESSION_STORE").as_deref() {
///     // Ok("redis") => Arc::new(RedisStore::connect(&url).await?),
///     _ => Arc::new(MemoryStore::default()),
/// };
/// let layer: SessionLayer<Arc<dyn SessionStore>> = SessionLayer::new(store, Key::generate());
/// # let _ = layer;
/// ```
impl<S: SessionStore + ?Sized> SessionStore for std::sync::Arc<S> {
    fn load<'a>(
        &'a self,
        key: &'a StoreKey,
        now: SystemTime,
    ) -> StoreFuture<'a, Result<LoadOutcome, StoreError>> {
        (**self).load(key, now)
    }

    fn create<'a>(
        &'a self,
        key: &'a StoreKey,
        record: &'a Record,
        now: SystemTime,
    ) -> StoreFuture<'a, Result<CreateOutcome, StoreError>> {
        (**self).create(key, record, now)
    }

    fn save<'a>(
        &'a self,
        key: &'a StoreKey,
        record: &'a Record,
        expected_version: u64,
        now: SystemTime,
    ) -> StoreFuture<'a, Result<SaveOutcome, StoreError>> {
        (**self).save(key, record, expected_version, now)
    }

    fn touch<'a>(
        &'a self,
        key: &'a StoreKey,
        expected_version: u64,
        last_active: SystemTime,
        expires_at: SystemTime,
        now: SystemTime,
    ) -> StoreFuture<'a, Result<TouchOutcome, StoreError>> {
        (**self).touch(key, expected_version, last_active, expires_at, now)
    }

    fn delete<'a>(
        &'a self,
        key: &'a StoreKey,
        now: SystemTime,
    ) -> StoreFuture<'a, Result<bool, StoreError>> {
        (**self).delete(key, now)
    }

    fn rotate<'a>(
        &'a self,
        old: &'a StoreKey,
        new: &'a StoreKey,
        record: &'a Record,
        expected_version: u64,
        now: SystemTime,
    ) -> StoreFuture<'a, Result<RotateOutcome, StoreError>> {
        (**self).rotate(old, new, record, expected_version, now)
    }

    fn delete_expired(&self, now: SystemTime) -> StoreFuture<'_, Result<u64, StoreError>> {
        (**self).delete_expired(now)
    }

    fn ping(&self) -> StoreFuture<'_, Result<(), StoreError>> {
        (**self).ping()
    }

    fn user_index(&self) -> Option<&dyn UserIndex> {
        (**self).user_index()
    }

    fn is_immediate(&self) -> bool {
        (**self).is_immediate()
    }
}
