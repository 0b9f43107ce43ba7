//! The one type-erased form of a store, and the request path's calls through it.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::SystemTime;

use crate::error::SessionError;
use crate::id::{SessionHandle, StoreKey};
use crate::store::{
    CreateOutcome, ImmediateStore, LoadOutcome, Record, RotateOutcome, SaveOutcome, SessionInfo,
    SessionStore, TouchOutcome,
};

/// A boxed, sendable future, as returned by the type-erased store.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The object-safe twin of [`SessionStore`], with boxed futures.
pub(crate) trait ErasedStore: Send + Sync + 'static {
    fn load<'a>(
        &'a self,
        key: &'a StoreKey,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<LoadOutcome, SessionError>>;
    fn create<'a>(
        &'a self,
        key: &'a StoreKey,
        record: &'a Record,
    ) -> BoxFuture<'a, Result<CreateOutcome, SessionError>>;
    fn save<'a>(
        &'a self,
        key: &'a StoreKey,
        record: &'a Record,
        expected_version: u64,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<SaveOutcome, SessionError>>;
    fn touch<'a>(
        &'a self,
        key: &'a StoreKey,
        expected_version: u64,
        last_active: SystemTime,
        expires_at: SystemTime,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<TouchOutcome, SessionError>>;
    fn delete<'a>(&'a self, key: &'a StoreKey) -> BoxFuture<'a, Result<bool, SessionError>>;
    fn rotate<'a>(
        &'a self,
        old: &'a StoreKey,
        new: &'a StoreKey,
        record: &'a Record,
        expected_version: u64,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<RotateOutcome, SessionError>>;
    fn delete_expired(&self, now: SystemTime) -> BoxFuture<'_, Result<u64, SessionError>>;
    fn sessions_of<'a>(
        &'a self,
        user: &'a str,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<Vec<SessionInfo>, SessionError>>;
    fn revoke_user<'a>(
        &'a self,
        user: &'a str,
        except: Option<&'a SessionHandle>,
    ) -> BoxFuture<'a, Result<u64, SessionError>>;
    fn revoke<'a>(&'a self, handle: &'a SessionHandle)
    -> BoxFuture<'a, Result<bool, SessionError>>;
    fn as_immediate(&self) -> Option<&dyn ImmediateStore>;
}

impl<S: SessionStore> ErasedStore for S {
    fn load<'a>(
        &'a self,
        key: &'a StoreKey,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<LoadOutcome, SessionError>> {
        Box::pin(SessionStore::load(self, key, now))
    }
    fn create<'a>(
        &'a self,
        key: &'a StoreKey,
        record: &'a Record,
    ) -> BoxFuture<'a, Result<CreateOutcome, SessionError>> {
        Box::pin(SessionStore::create(self, key, record))
    }
    fn save<'a>(
        &'a self,
        key: &'a StoreKey,
        record: &'a Record,
        expected_version: u64,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<SaveOutcome, SessionError>> {
        Box::pin(SessionStore::save(self, key, record, expected_version, now))
    }
    fn touch<'a>(
        &'a self,
        key: &'a StoreKey,
        expected_version: u64,
        last_active: SystemTime,
        expires_at: SystemTime,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<TouchOutcome, SessionError>> {
        Box::pin(SessionStore::touch(
            self,
            key,
            expected_version,
            last_active,
            expires_at,
            now,
        ))
    }
    fn delete<'a>(&'a self, key: &'a StoreKey) -> BoxFuture<'a, Result<bool, SessionError>> {
        Box::pin(SessionStore::delete(self, key))
    }
    fn rotate<'a>(
        &'a self,
        old: &'a StoreKey,
        new: &'a StoreKey,
        record: &'a Record,
        expected_version: u64,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<RotateOutcome, SessionError>> {
        Box::pin(SessionStore::rotate(
            self,
            old,
            new,
            record,
            expected_version,
            now,
        ))
    }
    fn delete_expired(&self, now: SystemTime) -> BoxFuture<'_, Result<u64, SessionError>> {
        Box::pin(SessionStore::delete_expired(self, now))
    }
    fn sessions_of<'a>(
        &'a self,
        user: &'a str,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<Vec<SessionInfo>, SessionError>> {
        Box::pin(SessionStore::sessions_of(self, user, now))
    }
    fn revoke_user<'a>(
        &'a self,
        user: &'a str,
        except: Option<&'a SessionHandle>,
    ) -> BoxFuture<'a, Result<u64, SessionError>> {
        Box::pin(SessionStore::revoke_user(self, user, except))
    }
    fn revoke<'a>(
        &'a self,
        handle: &'a SessionHandle,
    ) -> BoxFuture<'a, Result<bool, SessionError>> {
        Box::pin(SessionStore::revoke(self, handle))
    }
    fn as_immediate(&self) -> Option<&dyn ImmediateStore> {
        SessionStore::as_immediate(self)
    }
}

/// A store chosen at run time: wraps any [`SessionStore`] behind one pointer, so that a
/// program can pick memory, Redis or PostgreSQL from its configuration and still build one
/// layer type.
///
/// Each operation pays one boxed future; stores used directly pay nothing of the kind.
///
/// ```
/// use sessionware::{DynStore, MemoryStore};
///
/// let store = match std::env::var("SESSION_STORE").as_deref() {
///     // Ok("redis") => DynStore::new(RedisStore::open(..)?),
///     _ => DynStore::new(MemoryStore::default()),
/// };
/// # let _ = store;
/// ```
#[derive(Clone)]
pub struct DynStore {
    inner: Arc<dyn ErasedStore>,
}

impl DynStore {
    /// Erases the type of `store`.
    pub fn new(store: impl SessionStore) -> Self {
        Self {
            inner: Arc::new(store),
        }
    }
}

impl fmt::Debug for DynStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DynStore")
    }
}

impl SessionStore for DynStore {
    async fn load(&self, key: &StoreKey, now: SystemTime) -> Result<LoadOutcome, SessionError> {
        self.inner.load(key, now).await
    }
    async fn create(&self, key: &StoreKey, record: &Record) -> Result<CreateOutcome, SessionError> {
        self.inner.create(key, record).await
    }
    async fn save(
        &self,
        key: &StoreKey,
        record: &Record,
        expected_version: u64,
        now: SystemTime,
    ) -> Result<SaveOutcome, SessionError> {
        self.inner.save(key, record, expected_version, now).await
    }
    async fn touch(
        &self,
        key: &StoreKey,
        expected_version: u64,
        last_active: SystemTime,
        expires_at: SystemTime,
        now: SystemTime,
    ) -> Result<TouchOutcome, SessionError> {
        self.inner
            .touch(key, expected_version, last_active, expires_at, now)
            .await
    }
    async fn delete(&self, key: &StoreKey) -> Result<bool, SessionError> {
        self.inner.delete(key).await
    }
    async fn rotate(
        &self,
        old: &StoreKey,
        new: &StoreKey,
        record: &Record,
        expected_version: u64,
        now: SystemTime,
    ) -> Result<RotateOutcome, SessionError> {
        self.inner
            .rotate(old, new, record, expected_version, now)
            .await
    }
    async fn delete_expired(&self, now: SystemTime) -> Result<u64, SessionError> {
        self.inner.delete_expired(now).await
    }
    async fn sessions_of(
        &self,
        user: &str,
        now: SystemTime,
    ) -> Result<Vec<SessionInfo>, SessionError> {
        self.inner.sessions_of(user, now).await
    }
    async fn revoke_user(
        &self,
        user: &str,
        except: Option<&SessionHandle>,
    ) -> Result<u64, SessionError> {
        self.inner.revoke_user(user, except).await
    }
    async fn revoke(&self, handle: &SessionHandle) -> Result<bool, SessionError> {
        self.inner.revoke(handle).await
    }
    fn as_immediate(&self) -> Option<&dyn ImmediateStore> {
        self.inner.as_immediate()
    }
}

/// The layer's store behind one pointer: calls an immediate store directly, any other
/// through the erased store's boxed future.
#[derive(Clone)]
pub(crate) struct StoreHandle(Arc<dyn ErasedStore>);

impl StoreHandle {
    pub(crate) fn new(store: Arc<dyn ErasedStore>) -> Self {
        Self(store)
    }

    /// Whether the store answers without waiting.
    pub(crate) fn is_immediate(&self) -> bool {
        self.0.as_immediate().is_some()
    }

    // The store calls of the request path: straight to an immediate store, or through the
    // erased store's boxed future.

    pub(crate) async fn load(
        &self,
        key: &StoreKey,
        now: SystemTime,
    ) -> Result<LoadOutcome, SessionError> {
        match self.0.as_immediate() {
            Some(store) => store.load_now(key, now),
            None => self.0.load(key, now).await,
        }
    }

    pub(crate) async fn create(
        &self,
        key: &StoreKey,
        record: &Record,
    ) -> Result<CreateOutcome, SessionError> {
        match self.0.as_immediate() {
            Some(store) => store.create_now(key, record),
            None => self.0.create(key, record).await,
        }
    }

    pub(crate) async fn save(
        &self,
        key: &StoreKey,
        record: &Record,
        expected_version: u64,
        now: SystemTime,
    ) -> Result<SaveOutcome, SessionError> {
        match self.0.as_immediate() {
            Some(store) => store.save_now(key, record, expected_version, now),
            None => self.0.save(key, record, expected_version, now).await,
        }
    }

    pub(crate) async fn touch(
        &self,
        key: &StoreKey,
        expected_version: u64,
        last_active: SystemTime,
        expires_at: SystemTime,
        now: SystemTime,
    ) -> Result<TouchOutcome, SessionError> {
        match self.0.as_immediate() {
            Some(store) => store.touch_now(key, expected_version, last_active, expires_at, now),
            None => {
                self.0
                    .touch(key, expected_version, last_active, expires_at, now)
                    .await
            }
        }
    }

    pub(crate) async fn delete(&self, key: &StoreKey) -> Result<bool, SessionError> {
        match self.0.as_immediate() {
            Some(store) => store.delete_now(key),
            None => self.0.delete(key).await,
        }
    }

    pub(crate) async fn rotate(
        &self,
        old: &StoreKey,
        new: &StoreKey,
        record: &Record,
        expected_version: u64,
        now: SystemTime,
    ) -> Result<RotateOutcome, SessionError> {
        match self.0.as_immediate() {
            Some(store) => store.rotate_now(old, new, record, expected_version, now),
            None => self.0.rotate(old, new, record, expected_version, now).await,
        }
    }
}
