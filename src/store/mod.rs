//! The [`SessionStore`] trait, the records it keeps, and the stores that ship with the crate.

use std::future::Future;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::error::SessionError;
use crate::expiry::Expiry;
use crate::id::{SessionHandle, StoreKey};

#[cfg(feature = "test-util")]
pub mod conformance;
mod erased;
#[cfg(feature = "memory-store")]
pub(crate) mod memory;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "redis")]
mod redis;

pub use erased::BoxFuture;
pub use erased::DynStore;
pub(crate) use erased::StoreHandle;
#[cfg(feature = "memory-store")]
pub use memory::{MemoryStore, MemoryStoreBuilder, Sweeper};
#[cfg(feature = "postgres")]
pub use postgres::{PostgresStore, PostgresStoreBuilder};
#[cfg(feature = "redis")]
pub use redis::{RedisStore, RedisStoreBuilder};

/// The default bound on each operation of a remote store, connecting included.
#[cfg(any(feature = "redis", feature = "postgres"))]
pub(crate) const DEFAULT_OPERATION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Runs a store operation, giving up with [`SessionError::StoreTimeout`] after `timeout`.
/// Dropping the operation's future abandons it: a script or statement the server already
/// received may still complete there, which every operation tolerates (each is atomic, and
/// a retry after a timeout reads the outcome afresh).
#[cfg(any(feature = "redis", feature = "postgres"))]
pub(crate) async fn within<T>(
    timeout: std::time::Duration,
    operation: &'static str,
    future: impl Future<Output = Result<T, SessionError>>,
) -> Result<T, SessionError> {
    match tokio::time::timeout(timeout, future).await {
        Ok(result) => result,
        Err(_) => Err(SessionError::StoreTimeout { operation, timeout }),
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
}

impl Record {
    /// Whether the record is expired at `now` (its deadline is at or before `now`).
    pub fn is_expired(&self, now: SystemTime) -> bool {
        self.expires_at <= now
    }
}

/// Metadata about one live session of a user, as listed by
/// [`SessionStore::sessions_of`]. Carries an opaque handle, never the session ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// The handle to pass to [`SessionStore::revoke`].
    pub handle: SessionHandle,
    /// When the session was created.
    pub created_at: SystemTime,
    /// When the session was last extended.
    pub last_active: SystemTime,
    /// When the session expires unless extended.
    pub expires_at: SystemTime,
}

impl SessionInfo {
    /// The metadata of the record filed under `key`.
    pub fn from_record(key: StoreKey, record: &Record) -> Self {
        Self {
            handle: SessionHandle::from_store_key(key),
            created_at: record.created_at,
            last_active: record.last_active,
            expires_at: record.expires_at,
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

/// A place to keep sessions.
///
/// Every operation is atomic in the store: a concurrent reader sees the state before or
/// after it, never half of it. Keys are [`StoreKey`]s (SHA-256 of the session ID), never the
/// ID itself. Time is passed in by the caller, so that stores and layer agree on "now".
///
/// The conformance suite, `sessionware::store::conformance` (feature `test-util`), checks
/// all of this; run it against any new store:
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
    fn load(
        &self,
        key: &StoreKey,
        now: SystemTime,
    ) -> impl Future<Output = Result<LoadOutcome, SessionError>> + Send;

    /// Inserts `record` under `key` only if no record exists there. An existing record
    /// (live or expired but not yet purged) is left untouched and reported as a
    /// [`Collision`](CreateOutcome::Collision).
    fn create(
        &self,
        key: &StoreKey,
        record: &Record,
    ) -> impl Future<Output = Result<CreateOutcome, SessionError>> + Send;

    /// Replaces the record under `key` with `record` only if the stored version equals
    /// `expected_version` and the stored record is live at `now` (compare-and-swap).
    /// `record.version` is the new version (the caller sets it to `expected_version + 1`).
    fn save(
        &self,
        key: &StoreKey,
        record: &Record,
        expected_version: u64,
        now: SystemTime,
    ) -> impl Future<Output = Result<SaveOutcome, SessionError>> + Send;

    /// Sets `last_active` and `expires_at` of the live record under `key`, leaving data and
    /// version untouched, only if the stored version equals `expected_version` (the version
    /// the caller loaded): a touch computed from a stale read must never move a deadline that
    /// a later save set. A missing record is not recreated; a rotation marker is a
    /// [`Conflict`](TouchOutcome::Conflict).
    fn touch(
        &self,
        key: &StoreKey,
        expected_version: u64,
        last_active: SystemTime,
        expires_at: SystemTime,
        now: SystemTime,
    ) -> impl Future<Output = Result<TouchOutcome, SessionError>> + Send;

    /// Deletes the record (or rotation marker) under `key`. Returns whether one existed.
    fn delete(&self, key: &StoreKey) -> impl Future<Output = Result<bool, SessionError>> + Send;

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
    fn rotate(
        &self,
        old: &StoreKey,
        new: &StoreKey,
        record: &Record,
        expected_version: u64,
        now: SystemTime,
    ) -> impl Future<Output = Result<RotateOutcome, SessionError>> + Send;

    /// Deletes every record expired at `now` and returns how many it deleted.
    fn delete_expired(
        &self,
        now: SystemTime,
    ) -> impl Future<Output = Result<u64, SessionError>> + Send;

    /// Lists the live sessions of `user`.
    fn sessions_of(
        &self,
        user: &str,
        now: SystemTime,
    ) -> impl Future<Output = Result<Vec<SessionInfo>, SessionError>> + Send;

    /// Deletes every session of `user` except `except`, and returns how many it deleted.
    /// Takes effect on the very next request of each revoked session.
    fn revoke_user(
        &self,
        user: &str,
        except: Option<&SessionHandle>,
    ) -> impl Future<Output = Result<u64, SessionError>> + Send;

    /// Deletes the session behind `handle`. Returns whether one existed.
    fn revoke(
        &self,
        handle: &SessionHandle,
    ) -> impl Future<Output = Result<bool, SessionError>> + Send;

    /// This store as an [`ImmediateStore`], if every request-path operation completes
    /// without waiting (an in-process store). Default: `None`.
    ///
    /// The layer then calls the immediate methods directly and skips the boxed future that
    /// each call through its type-erased store pointer otherwise costs.
    fn as_immediate(&self) -> Option<&dyn ImmediateStore> {
        None
    }
}

/// The request-path operations of a store that never waits, such as an in-process map.
///
/// Each method must behave exactly as its [`SessionStore`] namesake (the conformance suite
/// checks the async ones; a store that implements both should forward one to the other).
/// See [`SessionStore::as_immediate`].
pub trait ImmediateStore: Send + Sync {
    /// [`SessionStore::load`], without waiting.
    fn load_now(&self, key: &StoreKey, now: SystemTime) -> Result<LoadOutcome, SessionError>;
    /// [`SessionStore::create`], without waiting.
    fn create_now(&self, key: &StoreKey, record: &Record) -> Result<CreateOutcome, SessionError>;
    /// [`SessionStore::save`], without waiting.
    fn save_now(
        &self,
        key: &StoreKey,
        record: &Record,
        expected_version: u64,
        now: SystemTime,
    ) -> Result<SaveOutcome, SessionError>;
    /// [`SessionStore::touch`], without waiting.
    fn touch_now(
        &self,
        key: &StoreKey,
        expected_version: u64,
        last_active: SystemTime,
        expires_at: SystemTime,
        now: SystemTime,
    ) -> Result<TouchOutcome, SessionError>;
    /// [`SessionStore::delete`], without waiting.
    fn delete_now(&self, key: &StoreKey) -> Result<bool, SessionError>;
    /// [`SessionStore::rotate`], without waiting.
    fn rotate_now(
        &self,
        old: &StoreKey,
        new: &StoreKey,
        record: &Record,
        expected_version: u64,
        now: SystemTime,
    ) -> Result<RotateOutcome, SessionError>;
}
