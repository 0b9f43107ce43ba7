//! The in-memory store: a sharded [`DashMap`], bounded, with a per-user index and a
//! background sweeper.

use std::collections::HashSet;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;

use crate::error::SessionError;
use crate::expiry::{Clock, SystemClock};
use crate::id::{SessionHandle, StoreKey};
use crate::store::{
    CreateOutcome, ImmediateStore, LoadOutcome, Record, RotateOutcome, SaveOutcome, SessionInfo,
    SessionStore, TouchOutcome,
};

use self::codec::View;

/// The capacity of [`MemoryStore::new`] and [`MemoryStore::default`].
const DEFAULT_CAPACITY: usize = 1_000_000;

/// `create` on a full store purges expired entries at most this often (in the caller's time),
/// so that an attacker who keeps the store full cannot make every `create` scan the map.
const PURGE_INTERVAL: Duration = Duration::from_secs(1);

/// The fewest shards a store is built with. Sweeps, purges and table growth lock one shard at
/// a time; more shards keep each of those pauses short (about 16,000 entries per shard at
/// 1,000,000 sessions). Each shard costs about 128 bytes when empty.
const MIN_SHARDS: usize = 64;

/// A full store evicts about `capacity / EVICTION_SHARE` anonymous sessions per pass, so that
/// under a flood of anonymous sessions a pass (two scans of the map) runs once per that many
/// creations rather than at each one.
const EVICTION_SHARE: usize = 64;

/// Stores up to this capacity judge which anonymous sessions are the least recently active
/// from all of them; larger ones from a sample of one session in [`EVICTION_SAMPLE_STRIDE`]
/// (those whose store key's last byte is below `256 / stride`: a uniform sample, since keys
/// are SHA-256 hashes).
const EVICTION_SAMPLE_ALL_UP_TO: usize = 65_536;
const EVICTION_SAMPLE_STRIDE: usize = 16;

/// `revoke_user` re-reads the index when a session it meant to delete moved (a rotation in
/// flight); this bounds the number of passes under a storm of concurrent rotations.
const MAX_REVOKE_PASSES: usize = 16;

/// The shortest sweep period; [`tokio::time::interval`] rejects a zero period.
const MIN_SWEEP_PERIOD: Duration = Duration::from_millis(1);

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
/// [`SessionError::CapacityExceeded`] (and does not scan again for a second). Existing
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
/// writes them), user and data; [`load`] decodes it into a [`Record`]. With 1,000,000
/// sessions holding a small value each, the store takes about 170 bytes per session,
/// hash-table slack included.
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
    /// [`SessionError::CapacityExceeded`]. See [the type's docs](MemoryStore#capacity).
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

    /// Starts a background task that removes expired sessions every `period`, judging
    /// expiry by the system clock. The task stops when the returned [`Sweeper`] is dropped
    /// (or [stopped](Sweeper::stop)), or when every clone of the store is gone.
    ///
    /// Each sweep locks one shard of the map at a time and runs on tokio's blocking
    /// thread pool, so it neither stalls the store nor an async worker thread.
    ///
    /// # Panics
    ///
    /// Panics if called outside a tokio runtime, like [`tokio::spawn`].
    pub fn spawn_sweeper(&self, period: Duration) -> Sweeper {
        self.spawn_sweeper_with_clock(period, SystemClock)
    }

    /// Like [`spawn_sweeper`](Self::spawn_sweeper), judging expiry by `clock` (the layer's
    /// clock, or a [`ManualClock`](crate::ManualClock) in tests).
    ///
    /// # Panics
    ///
    /// Panics if called outside a tokio runtime, like [`tokio::spawn`].
    pub fn spawn_sweeper_with_clock(&self, period: Duration, clock: impl Clock) -> Sweeper {
        let store = Arc::downgrade(&self.inner);
        let period = period.max(MIN_SWEEP_PERIOD);
        let task = tokio::spawn(sweep_every(store, period, clock));
        Sweeper { task }
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

/// The background task started by [`MemoryStore::spawn_sweeper`]: it removes expired
/// sessions periodically until it is dropped or [stopped](Self::stop).
#[derive(Debug)]
#[must_use = "the sweeper stops when dropped"]
pub struct Sweeper {
    task: tokio::task::JoinHandle<()>,
}

impl Sweeper {
    /// Stops the sweeper. A sweep in progress finishes; no further sweep starts.
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for Sweeper {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn sweep_every(store: Weak<Inner>, period: Duration, clock: impl Clock) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        // A weak reference, so that a sweeper left running does not keep a dropped store's
        // sessions in memory.
        let Some(store) = store.upgrade() else {
            return;
        };
        let now = clock.now();
        match tokio::task::spawn_blocking(move || store.delete_expired(now)).await {
            Ok(Ok(removed)) => tracing::debug!(removed, "swept expired sessions"),
            Ok(Err(error)) => tracing::error!(%error, "sweeping expired sessions failed"),
            Err(error) => tracing::error!(%error, "the session sweep task failed"),
        }
    }
}

impl ImmediateStore for MemoryStore {
    fn load_now(&self, key: &StoreKey, now: SystemTime) -> Result<LoadOutcome, SessionError> {
        self.inner.load(key, now)
    }

    fn create_now(&self, key: &StoreKey, record: &Record) -> Result<CreateOutcome, SessionError> {
        self.inner.create(key, record)
    }

    fn save_now(
        &self,
        key: &StoreKey,
        record: &Record,
        expected_version: u64,
        now: SystemTime,
    ) -> Result<SaveOutcome, SessionError> {
        self.inner.save(key, record, expected_version, now)
    }

    fn touch_now(
        &self,
        key: &StoreKey,
        expected_version: u64,
        last_active: SystemTime,
        expires_at: SystemTime,
        now: SystemTime,
    ) -> Result<TouchOutcome, SessionError> {
        self.inner
            .touch(key, expected_version, last_active, expires_at, now)
    }

    fn delete_now(&self, key: &StoreKey) -> Result<bool, SessionError> {
        Ok(self.inner.remove_if(key, |_| true)?.is_some())
    }

    fn rotate_now(
        &self,
        old: &StoreKey,
        new: &StoreKey,
        record: &Record,
        expected_version: u64,
        now: SystemTime,
    ) -> Result<RotateOutcome, SessionError> {
        self.inner.rotate(old, new, record, expected_version, now)
    }
}

impl SessionStore for MemoryStore {
    async fn load(&self, key: &StoreKey, now: SystemTime) -> Result<LoadOutcome, SessionError> {
        self.load_now(key, now)
    }

    /// Inserts `record` under `key` if the key is free and the store has room.
    ///
    /// This operation has no `now` argument: when the store is full, it removes the
    /// sessions expired at `record.last_active` (the layer sets it to the time of creation)
    /// before giving up with [`SessionError::CapacityExceeded`].
    async fn create(&self, key: &StoreKey, record: &Record) -> Result<CreateOutcome, SessionError> {
        self.create_now(key, record)
    }

    async fn save(
        &self,
        key: &StoreKey,
        record: &Record,
        expected_version: u64,
        now: SystemTime,
    ) -> Result<SaveOutcome, SessionError> {
        self.save_now(key, record, expected_version, now)
    }

    async fn touch(
        &self,
        key: &StoreKey,
        expected_version: u64,
        last_active: SystemTime,
        expires_at: SystemTime,
        now: SystemTime,
    ) -> Result<TouchOutcome, SessionError> {
        self.touch_now(key, expected_version, last_active, expires_at, now)
    }

    async fn delete(&self, key: &StoreKey) -> Result<bool, SessionError> {
        self.delete_now(key)
    }

    async fn rotate(
        &self,
        old: &StoreKey,
        new: &StoreKey,
        record: &Record,
        expected_version: u64,
        now: SystemTime,
    ) -> Result<RotateOutcome, SessionError> {
        self.rotate_now(old, new, record, expected_version, now)
    }

    async fn delete_expired(&self, now: SystemTime) -> Result<u64, SessionError> {
        self.inner.delete_expired(now)
    }

    async fn sessions_of(
        &self,
        user: &str,
        now: SystemTime,
    ) -> Result<Vec<SessionInfo>, SessionError> {
        self.inner.sessions_of(user, now)
    }

    /// Deletes every session of `user` except `except`.
    ///
    /// Expired sessions of the user are deleted too but not counted; since this operation
    /// has no `now` argument, expiry is judged by the system clock.
    async fn revoke_user(
        &self,
        user: &str,
        except: Option<&SessionHandle>,
    ) -> Result<u64, SessionError> {
        self.inner.revoke_user(user, except)
    }

    async fn revoke(&self, handle: &SessionHandle) -> Result<bool, SessionError> {
        self.delete_now(handle.store_key())
    }

    fn as_immediate(&self) -> Option<&dyn ImmediateStore> {
        Some(self)
    }
}

/// Why a rotation of `stored` from `expected_version` at `now` is refused, if it is.
fn refusal(stored: &View<'_>, expected_version: u64, now: SystemTime) -> Option<RotateOutcome> {
    if stored.is_expired(now) {
        Some(RotateOutcome::Missing)
    } else if stored.is_marker() {
        Some(RotateOutcome::Moved)
    } else if stored.version != expected_version {
        Some(RotateOutcome::Conflict)
    } else {
        None
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

/// What the last eviction pass found.
#[derive(Default)]
struct Eviction {
    /// When a pass last found no anonymous session to evict: passes are not repeated within
    /// [`PURGE_INTERVAL`] of it, so a store full of authenticated sessions refuses new ones
    /// without scanning the map at every attempt.
    fruitless_at: Option<SystemTime>,
}

impl Inner {
    fn load(&self, key: &StoreKey, now: SystemTime) -> Result<LoadOutcome, SessionError> {
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
        self.remove_if(key, |view| view.is_expired(now))?;
        Ok(LoadOutcome::Expired)
    }

    fn create(&self, key: &StoreKey, record: &Record) -> Result<CreateOutcome, SessionError> {
        let encoded = View::from_record(record).encode();
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
            let now = record.last_active;
            let room = match attempts {
                1 => self.purge_if_due(now)? || self.evict_anonymous(now)?,
                2 => self.evict_anonymous(now)?,
                _ => false,
            };
            if !room {
                return Err(SessionError::CapacityExceeded);
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

    /// Removes the entries expired at `now`, unless a purge ran less than
    /// [`PURGE_INTERVAL`] before `now` or is running. Returns whether it purged.
    fn purge_if_due(&self, now: SystemTime) -> Result<bool, SessionError> {
        let now_micros = now.duration_since(UNIX_EPOCH).map_or(0, |since| {
            u64::try_from(since.as_micros()).unwrap_or(u64::MAX)
        });
        let last = self.last_purge_micros.load(Ordering::Acquire);
        let interval = u64::try_from(PURGE_INTERVAL.as_micros()).unwrap_or(u64::MAX);
        // A clock that moved backwards (a test clock) does not block purges.
        let due = !self.purged_once.load(Ordering::Acquire)
            || now_micros < last
            || now_micros - last >= interval;
        if !due {
            return Ok(false);
        }
        // Of concurrent creators finding the store full, one purges; the others fail.
        if self
            .last_purge_micros
            .compare_exchange(last, now_micros, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Ok(false);
        }
        self.purged_once.store(true, Ordering::Release);
        let removed = self.delete_expired(now)?;
        tracing::debug!(removed, "session store full: purged expired sessions");
        Ok(true)
    }

    /// Makes room in a full store by evicting the least recently active anonymous sessions
    /// (about `capacity / EVICTION_SHARE` of them, judged by `last_active`), unless another
    /// creator's pass made room meanwhile. Returns whether there may be room now.
    fn evict_anonymous(&self, now: SystemTime) -> Result<bool, SessionError> {
        let mut eviction = self
            .eviction
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if self.len.load(Ordering::Acquire) < self.capacity {
            return Ok(true);
        }
        if eviction.fruitless_at.is_some_and(|at| {
            now.duration_since(at)
                .is_ok_and(|since| since < PURGE_INTERVAL)
        }) {
            return Ok(false);
        }
        let batch = (self.capacity / EVICTION_SHARE).max(1);
        let stride = if self.capacity <= EVICTION_SAMPLE_ALL_UP_TO {
            1
        } else {
            EVICTION_SAMPLE_STRIDE
        };
        let in_sample = |key: &StoreKey| usize::from(key.as_bytes()[31]) < 256 / stride;
        // Pass 1: the last-activity times of (a sample of) the anonymous sessions.
        let mut sample = Vec::new();
        for entry in self.sessions.iter() {
            if in_sample(entry.key()) {
                let stored = View::decode(entry.value())?;
                if stored.user.is_none() {
                    sample.push(stored.last_active);
                }
            }
        }
        if sample.is_empty() {
            eviction.fruitless_at = Some(now);
            return Ok(false);
        }
        // The last activity below which about `batch` anonymous sessions lie.
        let at = (batch / stride).min(sample.len() - 1);
        let (_, &mut threshold, _) = sample.select_nth_unstable(at);
        // Pass 2: evict anonymous sessions at or before it, at most `batch`.
        let mut evicted = 0;
        self.sessions.retain(|_, encoded| {
            if evicted >= batch {
                return true;
            }
            match View::decode(encoded) {
                Ok(stored) if stored.user.is_none() && stored.last_active <= threshold => {
                    evicted += 1;
                    false
                }
                _ => true,
            }
        });
        self.len.fetch_sub(evicted, Ordering::AcqRel);
        tracing::debug!(
            evicted,
            "session store full: evicted least recently active anonymous sessions"
        );
        eviction.fruitless_at = (evicted == 0).then_some(now);
        Ok(evicted > 0)
    }

    fn save(
        &self,
        key: &StoreKey,
        record: &Record,
        expected_version: u64,
        now: SystemTime,
    ) -> Result<SaveOutcome, SessionError> {
        let encoded = View::from_record(record).encode();
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
    ) -> Result<TouchOutcome, SessionError> {
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
        .encode();
        *slot = touched;
        Ok(TouchOutcome::Touched)
    }

    /// Removes the entry under `key` if `condition` holds for it, keeping the index in step.
    /// Returns whether the removed record was expired by the system clock, or `None` if
    /// nothing was removed.
    fn remove_if(
        &self,
        key: &StoreKey,
        condition: impl FnOnce(&View<'_>) -> bool,
    ) -> Result<Option<Removed>, SessionError> {
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
            was_expired: stored.is_expired(SystemTime::now()),
        };
        entry.remove();
        self.len.fetch_sub(1, Ordering::AcqRel);
        Ok(Some(removed))
    }

    fn rotate(
        &self,
        old: &StoreKey,
        new: &StoreKey,
        record: &Record,
        expected_version: u64,
        now: SystemTime,
    ) -> Result<RotateOutcome, SessionError> {
        // Nobody may see the session under neither key, so the new entry goes in first and
        // the old one goes out second, each under its own shard guard (holding both at once
        // could deadlock when they share a shard). A save on `old` in between makes the
        // removal fail, and the new entry is rolled back: nobody else can have used it, as
        // its key comes from a fresh random ID.
        if let Some(refusal) = self.check_rotatable(old, expected_version, now)? {
            return Ok(refusal);
        }
        let encoded = View::from_record(record).encode();
        match self.sessions.entry(*new) {
            Entry::Occupied(_) => return Ok(RotateOutcome::Collision),
            Entry::Vacant(vacant) => {
                if let Some(user) = &record.user {
                    self.index_add(user, new);
                }
                // Rotation does not grow the store, so it bypasses the capacity check.
                self.len.fetch_add(1, Ordering::AcqRel);
                vacant.insert(encoded);
            }
        }
        match self.leave_marker(old, expected_version, now) {
            Ok(None) => Ok(RotateOutcome::Rotated),
            Ok(Some(refusal)) => {
                self.remove_if(new, |_| true)?;
                Ok(refusal)
            }
            Err(error) => {
                self.remove_if(new, |_| true)?;
                Err(error)
            }
        }
    }

    /// Replaces the record under `old` with a rotation marker if it is live at `now` with
    /// `expected_version`, keeping the index in step; otherwise says why not.
    fn leave_marker(
        &self,
        old: &StoreKey,
        expected_version: u64,
        now: SystemTime,
    ) -> Result<Option<RotateOutcome>, SessionError> {
        let Entry::Occupied(mut entry) = self.sessions.entry(*old) else {
            return Ok(Some(RotateOutcome::Missing));
        };
        let stored = View::decode(entry.get())?;
        if let Some(refusal) = refusal(&stored, expected_version, now) {
            return Ok(Some(refusal));
        }
        if let Some(user) = stored.user {
            self.index_remove(user, old);
        }
        // The marker takes the old entry's slot: it does not grow the store.
        *entry.get_mut() = View::marker(now).encode();
        Ok(None)
    }

    /// Why `old` cannot be rotated, if it cannot: checked before writing anything, so that a
    /// refused rotation usually leaves no trace at all.
    fn check_rotatable(
        &self,
        old: &StoreKey,
        expected_version: u64,
        now: SystemTime,
    ) -> Result<Option<RotateOutcome>, SessionError> {
        let Some(entry) = self.sessions.get(old) else {
            return Ok(Some(RotateOutcome::Missing));
        };
        let stored = View::decode(entry.value())?;
        Ok(refusal(&stored, expected_version, now))
    }

    fn delete_expired(&self, now: SystemTime) -> Result<u64, SessionError> {
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
            return Err(SessionError::store(codec::CorruptRecord(
                "undecodable entries found while sweeping",
            )));
        }
        Ok(removed)
    }

    fn sessions_of(&self, user: &str, now: SystemTime) -> Result<Vec<SessionInfo>, SessionError> {
        let mut sessions = Vec::new();
        for key in self.keys_of(user) {
            let Some(entry) = self.sessions.get(&key) else {
                continue;
            };
            let stored = View::decode(entry.value())?;
            if stored.user == Some(user) && !stored.is_expired(now) {
                sessions.push(SessionInfo {
                    handle: SessionHandle::from_store_key(key),
                    created_at: stored.created_at,
                    last_active: stored.last_active,
                    expires_at: stored.expires_at,
                });
            }
        }
        sessions.sort_by_key(|info| info.created_at);
        Ok(sessions)
    }

    fn revoke_user(&self, user: &str, except: Option<&SessionHandle>) -> Result<u64, SessionError> {
        let mut revoked = 0;
        for _ in 0..MAX_REVOKE_PASSES {
            // A key that is gone by the time we reach it may have been rotated to a new key,
            // which the rotation indexed before removing the old one: look again.
            let mut moved = false;
            for key in self.keys_of(user) {
                if except.is_some_and(|kept| kept.store_key() == &key) {
                    continue;
                }
                match self.remove_if(&key, |stored| stored.user == Some(user))? {
                    Some(removed) => revoked += u64::from(!removed.was_expired),
                    None => moved = true,
                }
            }
            if !moved {
                break;
            }
        }
        Ok(revoked)
    }

    /// A snapshot of the keys indexed under `user`, taken without holding the guard after.
    fn keys_of(&self, user: &str) -> Vec<StoreKey> {
        self.users
            .get(user)
            .map(|keys| keys.iter().copied().collect())
            .unwrap_or_default()
    }

    fn index_add(&self, user: &str, key: &StoreKey) {
        if let Some(mut keys) = self.users.get_mut(user) {
            keys.insert(*key);
            return;
        }
        self.users
            .entry(user.into())
            .or_insert_with(|| HashSet::with_hasher(self.key_hasher.clone()))
            .insert(*key);
    }

    fn index_remove(&self, user: &str, key: &StoreKey) {
        let now_empty = match self.users.get_mut(user) {
            Some(mut keys) => {
                keys.remove(key);
                keys.is_empty()
            }
            None => false,
        };
        if now_empty {
            self.users.remove_if(user, |_, keys| keys.is_empty());
        }
    }
}

/// What [`Inner::remove_if`] removed.
struct Removed {
    was_expired: bool,
}

/// A hasher for [`StoreKey`]s.
///
/// Store keys are SHA-256 digests of 256-bit random IDs chosen by the server: already
/// uniformly distributed, and not choosable by clients (a forged cookie never reaches the
/// store). Eight of their bytes, mixed with a per-store random seed, are therefore a hash as
/// good as any, and cost nothing next to SipHash's full pass over 32 bytes.
#[derive(Clone)]
struct KeyHasherBuilder {
    seed: u64,
}

impl KeyHasherBuilder {
    fn random() -> Self {
        Self {
            seed: rand::random(),
        }
    }
}

impl BuildHasher for KeyHasherBuilder {
    type Hasher = KeyHasher;

    fn build_hasher(&self) -> KeyHasher {
        KeyHasher { state: self.seed }
    }
}

struct KeyHasher {
    state: u64,
}

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut word = [0_u8; 8];
        let take = bytes.len().min(8);
        word[..take].copy_from_slice(&bytes[..take]);
        self.state ^= u64::from_le_bytes(word);
    }

    fn write_usize(&mut self, _length: usize) {
        // Only the constant length prefix of the key's 32 bytes comes through here.
    }

    fn finish(&self) -> u64 {
        self.state
    }
}

/// The encoding of a [`Record`]: one allocation per session.
///
/// Layout, every integer little-endian and of fixed width, so that a load reads its fields
/// at known offsets (a varint layout was 14 bytes smaller per session, and its decoding took
/// a fifth of a session read in the layer):
///
/// ```text
/// flags: u8          bit 0: times in whole milliseconds; bit 1: has user;
///                    bits 2-3: expiry (none, on inactivity, at date-time, on browser close)
/// version            u64
/// created_at         the time, as below
/// last_active        the time
/// expires_at         the time
/// [expiry]           on inactivity: secs u64, nanos u32; at date-time: secs i64, nanos u32
/// [user]             length u64, UTF-8 bytes
/// data               the rest
/// ```
///
/// A time is an i64 of milliseconds since the epoch (negative before it) when all three are
/// whole milliseconds, as the layer's clock writes them; otherwise seconds (i64, rounded
/// down) and nanoseconds (u32) since the epoch. Every time round-trips exactly.
pub(crate) mod codec {
    use std::fmt;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use crate::error::SessionError;
    use crate::expiry::Expiry;
    use crate::store::{ROTATION_MARKER_LIFETIME, ROTATION_MARKER_VERSION, Record};

    const WHOLE_MILLIS: u8 = 0b0000_0001;
    const HAS_USER: u8 = 0b0000_0010;
    const EXPIRY_SHIFT: u32 = 2;
    const EXPIRY_MASK: u8 = 0b0000_1100;
    const EXPIRY_NONE: u8 = 0;
    const EXPIRY_ON_INACTIVITY: u8 = 1;
    const EXPIRY_AT_DATE_TIME: u8 = 2;
    const EXPIRY_ON_BROWSER_CLOSE: u8 = 3;
    const NANOS_PER_SEC: u32 = 1_000_000_000;
    const NANOS_PER_MILLI: u32 = 1_000_000;

    /// A record as stored, borrowing its user and data from the encoding.
    #[derive(Debug, Clone, Copy)]
    pub(crate) struct View<'a> {
        pub(super) version: u64,
        pub(super) user: Option<&'a str>,
        pub(super) created_at: SystemTime,
        pub(super) last_active: SystemTime,
        pub(super) expires_at: SystemTime,
        pub(super) expiry: Option<Expiry>,
        pub(super) data: &'a [u8],
    }

    /// An entry that does not decode: a bug in this module, never a client's doing.
    #[derive(Debug)]
    pub(crate) struct CorruptRecord(pub(super) &'static str);

    impl fmt::Display for CorruptRecord {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "corrupt in-memory session record: {}", self.0)
        }
    }

    impl std::error::Error for CorruptRecord {}

    impl From<CorruptRecord> for SessionError {
        fn from(error: CorruptRecord) -> Self {
            SessionError::store(error)
        }
    }

    impl<'a> View<'a> {
        pub(crate) fn from_record(record: &'a Record) -> Self {
            Self {
                version: record.version,
                user: record.user.as_deref(),
                created_at: record.created_at,
                last_active: record.last_active,
                expires_at: record.expires_at,
                expiry: record.expiry,
                data: &record.data,
            }
        }

        pub(crate) fn to_record(self) -> Record {
            Record {
                version: self.version,
                user: self.user.map(str::to_owned),
                created_at: self.created_at,
                last_active: self.last_active,
                expires_at: self.expires_at,
                expiry: self.expiry,
                data: self.data.to_vec(),
            }
        }

        pub(super) fn is_expired(&self, now: SystemTime) -> bool {
            self.expires_at <= now
        }

        /// The marker a rotation leaves under the old key (see `SessionStore::rotate`).
        pub(super) fn marker(now: SystemTime) -> Self {
            Self {
                version: ROTATION_MARKER_VERSION,
                user: None,
                created_at: now,
                last_active: now,
                expires_at: now + ROTATION_MARKER_LIFETIME,
                expiry: None,
                data: b"",
            }
        }

        pub(super) fn is_marker(&self) -> bool {
            self.version == ROTATION_MARKER_VERSION
        }

        pub(crate) fn encode(&self) -> Box<[u8]> {
            let times = [self.created_at, self.last_active, self.expires_at].map(split);
            let millis = times.map(|(secs, nanos)| to_millis(secs, nanos));
            let whole_millis = millis.iter().all(Option::is_some);
            let (expiry_kind, expiry_len) = match self.expiry {
                None => (EXPIRY_NONE, 0),
                Some(Expiry::OnInactivity(_)) => (EXPIRY_ON_INACTIVITY, 12),
                Some(Expiry::AtDateTime(_)) => (EXPIRY_AT_DATE_TIME, 12),
                Some(Expiry::OnBrowserClose) => (EXPIRY_ON_BROWSER_CLOSE, 0),
            };
            let mut flags = expiry_kind << EXPIRY_SHIFT;
            if whole_millis {
                flags |= WHOLE_MILLIS;
            }
            if self.user.is_some() {
                flags |= HAS_USER;
            }
            let len = 1
                + 8
                + if whole_millis { 3 * 8 } else { 3 * 12 }
                + expiry_len
                + self.user.map_or(0, |user| 8 + user.len())
                + self.data.len();
            // Exactly sized, so that the conversion to a boxed slice does not reallocate.
            let mut out = Vec::with_capacity(len);
            out.push(flags);
            out.extend_from_slice(&self.version.to_le_bytes());
            for ((secs, nanos), millis) in times.into_iter().zip(millis) {
                match millis {
                    Some(millis) if whole_millis => out.extend_from_slice(&millis.to_le_bytes()),
                    _ => put_exact(&mut out, secs, nanos),
                }
            }
            match self.expiry {
                Some(Expiry::OnInactivity(idle)) => {
                    out.extend_from_slice(&idle.as_secs().to_le_bytes());
                    out.extend_from_slice(&idle.subsec_nanos().to_le_bytes());
                }
                Some(Expiry::AtDateTime(at)) => {
                    let (secs, nanos) = split(at);
                    put_exact(&mut out, secs, nanos);
                }
                None | Some(Expiry::OnBrowserClose) => {}
            }
            if let Some(user) = self.user {
                out.extend_from_slice(&(user.len() as u64).to_le_bytes());
                out.extend_from_slice(user.as_bytes());
            }
            out.extend_from_slice(self.data);
            out.into_boxed_slice()
        }

        pub(crate) fn decode(bytes: &'a [u8]) -> Result<Self, CorruptRecord> {
            let mut reader = Reader { bytes };
            let flags = reader.u8()?;
            if flags & !(WHOLE_MILLIS | HAS_USER | EXPIRY_MASK) != 0 {
                return Err(CorruptRecord("unknown flags"));
            }
            let version = reader.u64()?;
            let mut time = || {
                if flags & WHOLE_MILLIS != 0 {
                    let millis = reader.i64()?;
                    match u64::try_from(millis) {
                        // After 1970, the common case: one addition.
                        Ok(after) => UNIX_EPOCH
                            .checked_add(Duration::from_millis(after))
                            .ok_or(CorruptRecord("time out of range")),
                        Err(_) => {
                            let nanos = millis.rem_euclid(1_000) as u32 * NANOS_PER_MILLI;
                            join(millis.div_euclid(1_000), nanos)
                        }
                    }
                } else {
                    reader.exact()
                }
            };
            let created_at = time()?;
            let last_active = time()?;
            let expires_at = time()?;
            let expiry = match (flags & EXPIRY_MASK) >> EXPIRY_SHIFT {
                EXPIRY_NONE => None,
                EXPIRY_ON_INACTIVITY => {
                    let secs = reader.u64()?;
                    let nanos = reader.u32()?;
                    if nanos >= NANOS_PER_SEC {
                        return Err(CorruptRecord("idle duration out of range"));
                    }
                    Some(Expiry::OnInactivity(Duration::new(secs, nanos)))
                }
                EXPIRY_AT_DATE_TIME => Some(Expiry::AtDateTime(reader.exact()?)),
                _ => Some(Expiry::OnBrowserClose),
            };
            let user = if flags & HAS_USER == 0 {
                None
            } else {
                let len = usize::try_from(reader.u64()?)
                    .map_err(|_| CorruptRecord("user length out of range"))?;
                let user = std::str::from_utf8(reader.take(len)?)
                    .map_err(|_| CorruptRecord("user is not UTF-8"))?;
                Some(user)
            };
            Ok(Self {
                version,
                user,
                created_at,
                last_active,
                expires_at,
                expiry,
                data: reader.bytes,
            })
        }
    }

    /// Reads fields off the front of an encoding.
    struct Reader<'a> {
        bytes: &'a [u8],
    }

    impl<'a> Reader<'a> {
        fn take(&mut self, len: usize) -> Result<&'a [u8], CorruptRecord> {
            if self.bytes.len() < len {
                return Err(CorruptRecord("truncated"));
            }
            let (taken, rest) = self.bytes.split_at(len);
            self.bytes = rest;
            Ok(taken)
        }

        fn array<const N: usize>(&mut self) -> Result<[u8; N], CorruptRecord> {
            let mut array = [0; N];
            array.copy_from_slice(self.take(N)?);
            Ok(array)
        }

        fn u8(&mut self) -> Result<u8, CorruptRecord> {
            Ok(self.array::<1>()?[0])
        }

        fn u32(&mut self) -> Result<u32, CorruptRecord> {
            self.array().map(u32::from_le_bytes)
        }

        fn u64(&mut self) -> Result<u64, CorruptRecord> {
            self.array().map(u64::from_le_bytes)
        }

        fn i64(&mut self) -> Result<i64, CorruptRecord> {
            self.array().map(i64::from_le_bytes)
        }

        /// A time as seconds and nanoseconds.
        fn exact(&mut self) -> Result<SystemTime, CorruptRecord> {
            let secs = self.i64()?;
            let nanos = self.u32()?;
            join(secs, nanos)
        }
    }

    fn put_exact(out: &mut Vec<u8>, secs: i64, nanos: u32) {
        out.extend_from_slice(&secs.to_le_bytes());
        out.extend_from_slice(&nanos.to_le_bytes());
    }

    /// Seconds since the epoch rounded down (negative before it) and the nanoseconds past
    /// them. Exact for every time this platform's `SystemTime` holds in an i64 of seconds,
    /// which on Unix is every one; saturated beyond.
    fn split(time: SystemTime) -> (i64, u32) {
        match time.duration_since(UNIX_EPOCH) {
            Ok(after) => (
                i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
                after.subsec_nanos(),
            ),
            Err(before) => {
                let before = before.duration();
                let secs = i64::try_from(before.as_secs()).unwrap_or(i64::MAX);
                match before.subsec_nanos() {
                    0 => (-secs, 0),
                    nanos => (-secs - 1, NANOS_PER_SEC - nanos),
                }
            }
        }
    }

    /// The time as whole milliseconds since the epoch, if it is one that fits an i64.
    fn to_millis(secs: i64, nanos: u32) -> Option<i64> {
        if !nanos.is_multiple_of(NANOS_PER_MILLI) {
            return None;
        }
        secs.checked_mul(1_000)?
            .checked_add(i64::from(nanos / NANOS_PER_MILLI))
    }

    fn join(secs: i64, nanos: u32) -> Result<SystemTime, CorruptRecord> {
        let out_of_range = CorruptRecord("time out of range");
        if nanos >= NANOS_PER_SEC {
            return Err(out_of_range);
        }
        let whole = if secs >= 0 {
            UNIX_EPOCH.checked_add(Duration::from_secs(secs.unsigned_abs()))
        } else {
            UNIX_EPOCH.checked_sub(Duration::from_secs(secs.unsigned_abs()))
        };
        whole
            .and_then(|whole| whole.checked_add(Duration::from_nanos(u64::from(nanos))))
            .ok_or(out_of_range)
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use proptest::prelude::*;

        fn record(user: Option<&str>, data: &[u8], times: [SystemTime; 3]) -> Record {
            Record {
                version: 1,
                user: user.map(str::to_owned),
                created_at: times[0],
                last_active: times[1],
                expires_at: times[2],
                expiry: None,
                data: data.to_vec(),
            }
        }

        fn round_trip(record: &Record) -> Record {
            let encoded = View::from_record(record).encode();
            View::decode(&encoded).expect("decodes").to_record()
        }

        #[test]
        fn small_session_layout() {
            let created = UNIX_EPOCH + Duration::from_millis(1_750_000_000_123);
            let record = record(
                None,
                br#"{"visits":5}"#,
                [created, created, created + Duration::from_secs(1800)],
            );
            let encoded = View::from_record(&record).encode();
            // flags, version, three times in milliseconds, 12 bytes of data.
            assert_eq!(encoded.len(), 1 + 8 + 3 * 8 + 12);
            assert_eq!(encoded[0], WHOLE_MILLIS);
            assert_eq!(&encoded[9..17], &1_750_000_000_123_i64.to_le_bytes());
            assert_eq!(round_trip(&record), record);
        }

        #[test]
        fn a_time_off_the_millisecond_keeps_its_nanoseconds() {
            let created = UNIX_EPOCH + Duration::new(1_750_000_000, 123_456_789);
            let record = record(None, b"{}", [created, created, created]);
            let encoded = View::from_record(&record).encode();
            assert_eq!(encoded.len(), 1 + 8 + 3 * 12 + 2);
            assert_eq!(encoded[0] & WHOLE_MILLIS, 0);
            assert_eq!(round_trip(&record), record);
        }

        #[test]
        fn every_expiry_and_odd_times_round_trip() {
            let before_epoch = UNIX_EPOCH - Duration::new(12_345, 678);
            let expiries = [
                None,
                Some(Expiry::OnInactivity(Duration::new(u64::MAX, 999_999_999))),
                Some(Expiry::AtDateTime(before_epoch)),
                Some(Expiry::OnBrowserClose),
            ];
            for expiry in expiries {
                let mut record = record(
                    Some("ünïcode user"),
                    b"",
                    [before_epoch, UNIX_EPOCH, UNIX_EPOCH + Duration::new(1, 1)],
                );
                record.version = u64::MAX;
                record.expiry = expiry;
                assert_eq!(round_trip(&record), record);
            }
        }

        #[test]
        fn garbage_is_an_error_not_a_panic() {
            let valid = View::from_record(&record(
                Some("user"),
                b"{}",
                [UNIX_EPOCH, UNIX_EPOCH, UNIX_EPOCH],
            ))
            .encode();
            // Cut before the data: every field is missing a byte or more.
            let truncated = &valid[..valid.len() - 3];
            let mut bad_nanos = vec![0x00];
            bad_nanos.extend_from_slice(&[0; 8]);
            bad_nanos.extend_from_slice(&[0; 8]);
            bad_nanos.extend_from_slice(&NANOS_PER_SEC.to_le_bytes());
            let samples: [&[u8]; 5] = [b"", &[0xff], &[0x00, 0x80], truncated, &bad_nanos];
            for sample in samples {
                assert!(View::decode(sample).is_err(), "{sample:?}");
            }
        }

        fn any_time() -> impl Strategy<Value = SystemTime> {
            (any::<bool>(), 0..u64::MAX / 4, 0..1_000_000_000_u32).prop_map(
                |(before, secs, nanos)| {
                    let offset = Duration::new(secs % (1 << 40), nanos);
                    if before {
                        UNIX_EPOCH - offset
                    } else {
                        UNIX_EPOCH + offset
                    }
                },
            )
        }

        proptest! {
            #[test]
            fn any_record_round_trips(
                version: u64,
                user in proptest::option::of(".{0,40}"),
                data in proptest::collection::vec(any::<u8>(), 0..100),
                times in [any_time(), any_time(), any_time()],
                whole_millis: bool,
            ) {
                let times = times.map(|time| {
                    if whole_millis {
                        let (secs, nanos) = split(time);
                        join(secs, nanos - nanos % NANOS_PER_MILLI).expect("in range")
                    } else {
                        time
                    }
                });
                let mut record = record(user.as_deref(), &data, times);
                record.version = version;
                prop_assert_eq!(round_trip(&record), record);
            }

            #[test]
            fn any_bytes_decode_without_panicking(
                bytes in proptest::collection::vec(any::<u8>(), 0..64),
            ) {
                let _ = View::decode(&bytes);
            }
        }
    }
}
