//! The in-memory store: a sharded [`DashMap`], bounded, with a per-user index and a
//! background sweeper.

use std::collections::HashSet;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;

use crate::id::{SessionHandle, StoreKey};
use crate::store::{
    CreateOutcome, LoadOutcome, Record, RotateOutcome, SaveOutcome, SessionInfo, SessionStore,
    StoreError, StoreFuture, TouchOutcome, UserIndex,
};

mod eviction;
mod hasher;
mod index;
mod rotation;
mod sweeper;

use self::eviction::Eviction;
use self::hasher::KeyHasherBuilder;
pub use self::sweeper::Sweeper;
use crate::store::codec::{self, View};

/// The capacity of [`MemoryStore::new`] and [`MemoryStore::default`].
const DEFAULT_CAPACITY: usize = 1_000_000;

/// The fewest shards a store is built with. Sweeps, purges and table growth lock one shard at
/// a time; more shards keep each of those pauses short (about 16,000 entries per shard at
/// 1,000,000 sessions), and an empty shard costs little memory.
const MIN_SHARDS: usize = 64;

/// An in-memory [`SessionStore`]: a sharded concurrent hash map in this process.
///
/// The default store, for a single instance of a service (sessions are lost when the
/// process exits, and are not shared between instances: use the Redis or PostgreSQL store
/// for that). Clones share the same sessions.
///
/// ```
/// use std::time::Duration;
/// use sessionware::MemoryStore;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let store = MemoryStore::builder().capacity(100_000).build();
/// // Removes expired sessions every minute, until `sweeper` is dropped.
/// let sweeper = store.spawn_sweeper(Duration::from_secs(60));
/// # drop(sweeper);
/// # }
/// ```
///
/// # Capacity
///
/// The store holds at most [`capacity`](MemoryStoreBuilder::capacity) sessions (1,000,000 by
/// default), counting expired sessions that have not been removed yet. When it is full,
/// [`create`](SessionStore::create) makes room in two steps:
///
/// 1. it removes expired sessions (at most once per second, so that an attacker who keeps
///    the store full cannot make every request scan it);
/// 2. if the store is still full, it evicts the least recently active *anonymous* sessions
///    (those with no logged-in user): about a 64th of the capacity at once, so that a flood
///    pays for one pass per that many sessions. The order is approximate: sessions are
///    ranked by their `last_active` (which a read-only request moves only every
///    [`touch_after`](crate::SessionLayer::touch_after)), and in a store of more than
///    65,536 sessions the cut-off is estimated from a uniform sample of one session in 16.
///    A pass scans the map twice, one shard lock at a time, and the creators that find the
///    store full meanwhile wait for it.
///
/// Authenticated sessions are never evicted. A store full of them refuses new sessions with
/// [`StoreError::CapacityExceeded`] (and does not scan again for a second). Existing
/// sessions keep working: saving, touching and rotating a session are never refused for lack
/// of room (a rotation's marker holds the old key's slot for
/// [`ROTATION_MARKER_LIFETIME`](crate::store::ROTATION_MARKER_LIFETIME), counted in
/// [`len`](MemoryStore::len), and can be evicted like an anonymous session).
///
/// # Security
///
/// Whoever can create sessions (any anonymous visitor, if the application writes to the
/// session before login) can fill the store, but only at the expense of other anonymous
/// sessions: a flood never logs a user out, and a login after it succeeds. An anonymous
/// visitor's session data (a cart before login, say) can be lost to a flood; give anonymous
/// sessions a short lifetime with
/// [`SessionLayer::anonymous_timeout`](crate::SessionLayer::anonymous_timeout), size the
/// capacity for the expected number of live sessions, and rate-limit anonymous session
/// creation if it is exposed.
///
/// Expired sessions are never returned by [`load`](SessionStore::load), even before they are
/// removed. They are removed when `load` meets them, when a full store purges, and by the
/// background [`Sweeper`] ([`spawn_sweeper`](Self::spawn_sweeper)), which you should run.
///
/// # Memory
///
/// Each session takes one map slot (its 32-byte [`StoreKey`] and a pointer) and one heap
/// allocation holding its metadata (33 bytes for times in whole milliseconds, as the layer
/// writes them), user and data; [`load`] decodes it into a [`Record`]. The hash table's
/// slack comes on top of these.
///
/// [`load`]: SessionStore::load
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

/// Builds a [`MemoryStore`]; see [`MemoryStore::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct MemoryStoreBuilder {
    capacity: usize,
}

impl MemoryStoreBuilder {
    /// The most sessions the store holds, expired but unswept ones included. Default:
    /// 1,000,000.
    ///
    /// When the store is full, expired and then the least recently active anonymous sessions
    /// make room; when only authenticated sessions are left, creating a session fails with
    /// [`StoreError::CapacityExceeded`]. See [the type's docs](MemoryStore#capacity).
    /// The memory is not reserved up front: the map grows as sessions are created.
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    /// Builds the store.
    pub fn build(self) -> MemoryStore {
        let shards = std::thread::available_parallelism()
            .map_or(1, usize::from)
            .saturating_mul(4)
            .max(MIN_SHARDS)
            .next_power_of_two();
        let key_hasher = KeyHasherBuilder::random();
        MemoryStore {
            inner: Arc::new(Inner {
                sessions: DashMap::with_hasher_and_shard_amount(key_hasher.clone(), shards),
                users: DashMap::with_shard_amount(shards),
                key_hasher,
                len: AtomicUsize::new(0),
                capacity: self.capacity,
                last_purge_micros: AtomicU64::new(0),
                purged_once: AtomicBool::new(false),
                eviction: Mutex::new(Eviction::default()),
            }),
        }
    }
}

impl Default for MemoryStoreBuilder {
    fn default() -> Self {
        Self {
            capacity: DEFAULT_CAPACITY,
        }
    }
}

impl MemoryStore {
    /// A store with the default capacity of 1,000,000 sessions.
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// A builder, to set the capacity.
    pub fn builder() -> MemoryStoreBuilder {
        MemoryStoreBuilder::default()
    }

    /// The number of sessions held, expired ones not yet removed included.
    pub fn len(&self) -> usize {
        self.inner.len.load(Ordering::Acquire)
    }

    /// Whether the store holds no session at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most sessions the store holds.
    pub fn capacity(&self) -> usize {
        self.inner.capacity
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .finish_non_exhaustive()
    }
}

// Every operation completes before it returns: the futures are ready at once.
impl SessionStore for MemoryStore {
    fn load<'a>(
        &'a self,
        key: &'a StoreKey,
        now: SystemTime,
    ) -> StoreFuture<'a, Result<LoadOutcome, StoreError>> {
        StoreFuture::ready(self.inner.load(key, now))
    }

    /// Inserts `record` under `key` if the key is free and the store has room.
    ///
    /// When the store is full, it first removes the sessions expired at `now`, then
    /// evicts anonymous sessions, before giving up with [`StoreError::CapacityExceeded`].
    fn create<'a>(
        &'a self,
        key: &'a StoreKey,
        record: &'a Record,
        now: SystemTime,
    ) -> StoreFuture<'a, Result<CreateOutcome, StoreError>> {
        StoreFuture::ready(self.inner.create(key, record, now))
    }

    fn save<'a>(
        &'a self,
        key: &'a StoreKey,
        record: &'a Record,
        expected_version: u64,
        now: SystemTime,
    ) -> StoreFuture<'a, Result<SaveOutcome, StoreError>> {
        StoreFuture::ready(self.inner.save(key, record, expected_version, now))
    }

    fn touch<'a>(
        &'a self,
        key: &'a StoreKey,
        expected_version: u64,
        last_active: SystemTime,
        expires_at: SystemTime,
        now: SystemTime,
    ) -> StoreFuture<'a, Result<TouchOutcome, StoreError>> {
        StoreFuture::ready(
            self.inner
                .touch(key, expected_version, last_active, expires_at, now),
        )
    }

    fn delete<'a>(
        &'a self,
        key: &'a StoreKey,
        now: SystemTime,
    ) -> StoreFuture<'a, Result<bool, StoreError>> {
        StoreFuture::ready(
            self.inner
                .remove_if(key, now, |_| true)
                .map(|removed| removed.is_some()),
        )
    }

    fn rotate<'a>(
        &'a self,
        old: &'a StoreKey,
        new: &'a StoreKey,
        record: &'a Record,
        expected_version: u64,
        now: SystemTime,
    ) -> StoreFuture<'a, Result<RotateOutcome, StoreError>> {
        StoreFuture::ready(self.inner.rotate(old, new, record, expected_version, now))
    }

    fn delete_expired(&self, now: SystemTime) -> StoreFuture<'_, Result<u64, StoreError>> {
        StoreFuture::ready(self.inner.delete_expired(now))
    }

    /// Always ready: the sessions are in this process.
    fn ping(&self) -> StoreFuture<'_, Result<(), StoreError>> {
        StoreFuture::ready(Ok(()))
    }

    fn user_index(&self) -> Option<&dyn UserIndex> {
        Some(self)
    }

    fn is_immediate(&self) -> bool {
        true
    }
}

impl UserIndex for MemoryStore {
    fn sessions_of<'a>(
        &'a self,
        user: &'a str,
        now: SystemTime,
    ) -> StoreFuture<'a, Result<Vec<SessionInfo>, StoreError>> {
        StoreFuture::ready(self.inner.sessions_of(user, now))
    }

    /// Deletes every session of `user` except `except`; expired sessions of the user (at
    /// `now`) are deleted too but not counted.
    fn revoke_user<'a>(
        &'a self,
        user: &'a str,
        except: Option<&'a SessionHandle>,
        now: SystemTime,
    ) -> StoreFuture<'a, Result<u64, StoreError>> {
        StoreFuture::ready(self.inner.revoke_user(user, except, now))
    }
}

/// The shared state of a store and its clones.
///
/// Locking discipline, which keeps the two maps free of deadlocks:
/// - never hold a guard of one map while taking another guard of the same map (two guards
///   in one shard deadlock);
/// - a guard of `users` may be taken while holding a guard of `sessions`, never the reverse.
///
/// Every change to a session's entry in `users` is made while holding the write guard of
/// that session's entry in `sessions`, so the index always agrees with the records: a key is
/// in `users[u]` exactly when `sessions` holds it with user `u`.
struct Inner {
    /// Store key to encoded record (see [`codec`]).
    sessions: DashMap<StoreKey, Box<[u8]>, KeyHasherBuilder>,
    /// User name to the keys of that user's sessions.
    users: DashMap<Box<str>, HashSet<StoreKey, KeyHasherBuilder>>,
    key_hasher: KeyHasherBuilder,
    /// Entries in `sessions`, kept beside the map so that checking the capacity does not
    /// lock every shard.
    len: AtomicUsize,
    capacity: usize,
    /// The time (micros since the epoch) of the last purge started by a full store.
    last_purge_micros: AtomicU64,
    purged_once: AtomicBool,
    /// Serializes eviction passes: a creator that finds the store full waits for a pass in
    /// progress, which usually made room for it too.
    eviction: Mutex<Eviction>,
}

impl Inner {
    fn load(&self, key: &StoreKey, now: SystemTime) -> Result<LoadOutcome, StoreError> {
        {
            let Some(entry) = self.sessions.get(key) else {
                return Ok(LoadOutcome::Missing);
            };
            let view = View::decode(entry.value())?;
            if view.is_marker() && !view.is_expired(now) {
                return Ok(LoadOutcome::Moved);
            }
            if !view.is_expired(now) {
                return Ok(LoadOutcome::Found(view.to_record()));
            }
        }
        self.remove_if(key, now, |view| view.is_expired(now))?;
        Ok(LoadOutcome::Expired)
    }

    fn create(
        &self,
        key: &StoreKey,
        record: &Record,
        now: SystemTime,
    ) -> Result<CreateOutcome, StoreError> {
        let encoded = View::from_record(record).encode()?;
        let mut attempts = 0;
        loop {
            match self.sessions.entry(*key) {
                Entry::Occupied(_) => return Ok(CreateOutcome::Collision),
                Entry::Vacant(vacant) => {
                    if self.reserve_slot() {
                        if let Some(user) = &record.user {
                            self.index_add(user, key);
                        }
                        vacant.insert(encoded);
                        return Ok(CreateOutcome::Created);
                    }
                }
            }
            // The shard guard is released here: a purge or an eviction takes every shard in
            // turn. First expired sessions make room, then the least recently active
            // anonymous ones; authenticated sessions never do.
            attempts += 1;
            let room = match attempts {
                1 => self.purge_if_due(now)? || self.evict_anonymous(now)?,
                2 => self.evict_anonymous(now)?,
                _ => false,
            };
            if !room {
                return Err(StoreError::CapacityExceeded);
            }
        }
    }

    /// Counts one more entry if the store has room for it.
    fn reserve_slot(&self) -> bool {
        self.len
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |len| {
                (len < self.capacity).then_some(len + 1)
            })
            .is_ok()
    }

    fn save(
        &self,
        key: &StoreKey,
        record: &Record,
        expected_version: u64,
        now: SystemTime,
    ) -> Result<SaveOutcome, StoreError> {
        let encoded = View::from_record(record).encode()?;
        let Some(mut slot) = self.sessions.get_mut(key) else {
            return Ok(SaveOutcome::Missing);
        };
        let stored = View::decode(slot.value())?;
        if stored.is_expired(now) {
            return Ok(SaveOutcome::Missing);
        }
        if stored.is_marker() {
            return Ok(SaveOutcome::Moved);
        }
        if stored.version != expected_version {
            return Ok(SaveOutcome::Conflict);
        }
        if stored.user != record.user.as_deref() {
            if let Some(user) = stored.user {
                self.index_remove(user, key);
            }
            if let Some(user) = &record.user {
                self.index_add(user, key);
            }
        }
        *slot = encoded;
        Ok(SaveOutcome::Saved)
    }

    fn touch(
        &self,
        key: &StoreKey,
        expected_version: u64,
        last_active: SystemTime,
        expires_at: SystemTime,
        now: SystemTime,
    ) -> Result<TouchOutcome, StoreError> {
        let Some(mut slot) = self.sessions.get_mut(key) else {
            return Ok(TouchOutcome::Missing);
        };
        let stored = View::decode(slot.value())?;
        if stored.is_expired(now) {
            return Ok(TouchOutcome::Missing);
        }
        if stored.version != expected_version {
            return Ok(TouchOutcome::Conflict);
        }
        let touched = View {
            last_active,
            expires_at,
            ..stored
        }
        .encode()?;
        *slot = touched;
        Ok(TouchOutcome::Touched)
    }

    /// Removes the entry under `key` if `condition` holds for it, keeping the index in step.
    /// Returns whether the removed record was expired by the system clock, or `None` if
    /// nothing was removed.
    fn remove_if(
        &self,
        key: &StoreKey,
        now: SystemTime,
        condition: impl FnOnce(&View<'_>) -> bool,
    ) -> Result<Option<Removed>, StoreError> {
        let Entry::Occupied(entry) = self.sessions.entry(*key) else {
            return Ok(None);
        };
        let stored = View::decode(entry.get())?;
        if !condition(&stored) {
            return Ok(None);
        }
        if let Some(user) = stored.user {
            self.index_remove(user, key);
        }
        let removed = Removed {
            was_expired: stored.is_expired(now),
        };
        entry.remove();
        self.len.fetch_sub(1, Ordering::AcqRel);
        Ok(Some(removed))
    }

    fn delete_expired(&self, now: SystemTime) -> Result<u64, StoreError> {
        let mut removed = 0;
        let mut undecodable = 0_u64;
        // `retain` write-locks one shard at a time.
        self.sessions
            .retain(|key, encoded| match View::decode(encoded) {
                Ok(stored) if stored.is_expired(now) => {
                    if let Some(user) = stored.user {
                        self.index_remove(user, key);
                    }
                    self.len.fetch_sub(1, Ordering::AcqRel);
                    removed += 1;
                    false
                }
                Ok(_) => true,
                Err(_) => {
                    undecodable += 1;
                    true
                }
            });
        if undecodable > 0 {
            return Err(StoreError::from(codec::CorruptRecord(
                "undecodable entries found while sweeping",
            )));
        }
        Ok(removed)
    }
}

/// What [`Inner::remove_if`] removed.
struct Removed {
    was_expired: bool,
}
