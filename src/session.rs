//! The per-request [`Session`] handle: lazy loading, change tracking and the commit that runs
//! when the response is ready.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use futures_util::lock::{Mutex, MutexGuard};
use http::HeaderValue;
use serde::Serialize;
use serde::de::{
    self, Deserialize, DeserializeOwned, DeserializeSeed, IgnoredAny, MapAccess, Visitor,
};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::contention::{Pause, Retry};
use crate::error::SessionError;
use crate::expiry::{Expiry, Lifetime};
use crate::id::{SessionHandle, SessionId, StoreKey};
use crate::key::SignedWith;
use crate::layer::{Config, NewData, SecurityEvent};
use crate::store::{CreateOutcome, LoadOutcome, Record, RotateOutcome, SaveOutcome, TouchOutcome};

/// How many times a create or a rotation draws a new ID after a collision before giving up.
/// With 256-bit IDs a second draw already means the store is misbehaving.
const MAX_ID_DRAWS: usize = 8;

/// The session of the current request.
///
/// The [`SessionLayer`](crate::SessionLayer) puts one into every request's extensions; with
/// the `axum` feature it is also an extractor (`Session` or `Option<Session>`). Cloning is
/// cheap and every clone refers to the same session.
///
/// Nothing is read from the store until a method needs it, and nothing is written until the
/// response is ready (except by [`update`](Self::update) and [`destroy`](Self::destroy), which
/// commit at once). Values are stored as JSON through serde.
///
/// # Concurrent requests
///
/// Every stored session carries a version and every save is a compare-and-swap. When another
/// request saved the same session in the meantime, this request's per-key changes are
/// re-applied on top of the fresh record, so writes to *different* keys from concurrent
/// requests all survive. For the *same* key the last save wins; use
/// [`update`](Self::update) for a read-modify-write that must not lose updates (a counter).
/// A session deleted by a concurrent logout is never recreated by a late save: that
/// request's changes are dropped and its cookie removed. A session moved to a new ID by a
/// concurrent [`login`](Self::login) or [`cycle_id`](Self::cycle_id) drops a late write the
/// same way, but leaves the cookie alone, so the new one set by the rotating response stays
/// in the browser; a concurrent login (a double-submitted form) goes on under a fresh ID of
/// its own, so the browser ends logged in whichever response arrives last. Writers of one
/// session in one process take turns; see
/// [`SessionLayer::conflict_budget`](crate::SessionLayer::conflict_budget).
///
/// ```
/// # async fn handler(session: sessionware::Session) -> Result<(), sessionware::SessionError> {
/// let visits: u64 = session.get("visits").await?.unwrap_or(0);
/// session.insert("visits", visits + 1).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Session {
    shared: Arc<Shared>,
}

struct Shared {
    config: Arc<Config>,
    /// The verified ID from the request's cookie; fixed for the request.
    incoming: Option<Incoming>,
    /// Set by the first method call: a response whose session was never touched is finished
    /// without taking the lock.
    touched: AtomicBool,
    state: Mutex<State>,
}

/// A session ID taken from a verified cookie.
struct Incoming {
    id: SessionId,
    signed_with: SignedWith,
}

/// What the request knows about the stored session.
// One per request, inside the shared handle: boxing `Stored` would add an allocation to every
// load to save bytes that are allocated once anyway.
#[allow(clippy::large_enum_variant)]
enum Base {
    /// A verified cookie arrived; its record has not been fetched yet.
    Unloaded,
    /// No stored session. `stale`: the client sent a valid cookie whose session is gone
    /// (expired, unknown, or deleted), so its cookie should be removed.
    Absent { stale: bool },
    /// The stored session as last read or written by this request. Its data, with this
    /// request's changes applied, is `State::view` (or `record.data` itself while the view is
    /// not parsed).
    Stored {
        /// The session's ID, or `None` while it is the request's incoming one (which saves
        /// a copy, and its wipe, on every load).
        id: Option<SessionId>,
        key: StoreKey,
        record: Record,
    },
}

/// This request's changes that are not yet in the store.
#[derive(Default)]
pub(crate) struct Changes {
    values: BTreeMap<String, Option<Value>>,
    cleared: bool,
    pub(crate) user: Option<Option<String>>,
    pub(crate) expiry: Option<Option<Expiry>>,
    rotate: bool,
}

impl Changes {
    fn writes_data(&self) -> bool {
        self.cleared || !self.values.is_empty() || self.user.is_some() || self.expiry.is_some()
    }

    fn any(&self) -> bool {
        self.writes_data() || self.rotate
    }

    /// Whether the changes touch the values (as opposed to the user, expiry or ID only).
    fn touches_values(&self) -> bool {
        self.cleared || !self.values.is_empty()
    }

    /// Applies the changes on top of freshly loaded `data`.
    fn apply(&self, mut data: Map<String, Value>) -> Map<String, Value> {
        if self.cleared {
            data.clear();
        }
        for (key, value) in &self.values {
            match value {
                Some(value) => data.insert(key.clone(), value.clone()),
                None => data.remove(key),
            };
        }
        data
    }
}

struct State {
    base: Base,
    changes: Changes,
    /// The session's values as the handler sees them: the base plus the changes. `None`
    /// until a change needs them parsed: the values are then exactly the stored record's
    /// data (or none, without a stored record), and a read finds its one key in the stored
    /// JSON without building a map (which saves the map, its keys and values, and their
    /// drop: about a tenth of a read request's cost in the layer).
    view: Option<Map<String, Value>>,
    /// The stored deadline and expiry as loaded, to tell whether the cookie needs a new
    /// `Max-Age`.
    loaded_expiry: Option<(SystemTime, Option<Expiry>)>,
    /// The handler read or wrote the session: the response varies on `Cookie`.
    accessed: bool,
    destroyed: bool,
    /// A concurrent request deleted or moved the session; this request's changes were
    /// dropped.
    interruption: Option<Interruption>,
    /// The stored session's ID was drawn during this request (`update` created the session or
    /// carried out a pending rotation): a server error deletes its record, since the client
    /// never learns that ID.
    issued_here: bool,
    /// See [`State::now`].
    now: Option<SystemTime>,
    /// The record a concurrent rotation moved away while this request's login was pending;
    /// the login commits a fresh record built on it (see `Session::moved_away`).
    // Boxed: rarely set, and every request's state would otherwise carry a record's bytes.
    carried: Option<Box<Record>>,
}

/// What the response needs once the session is settled.
pub(crate) struct Finish {
    pub(crate) set_cookie: Option<HeaderValue>,
    pub(crate) vary: bool,
}

impl Session {
    pub(crate) fn new(config: Arc<Config>, incoming: Option<(SessionId, SignedWith)>) -> Self {
        let base = if incoming.is_some() {
            Base::Unloaded
        } else {
            Base::Absent { stale: false }
        };
        Self {
            shared: Arc::new(Shared {
                config,
                incoming: incoming.map(|(id, signed_with)| Incoming { id, signed_with }),
                touched: AtomicBool::new(false),
                state: Mutex::new(State {
                    base,
                    changes: Changes::default(),
                    view: None,
                    loaded_expiry: None,
                    accessed: false,
                    destroyed: false,
                    interruption: None,
                    issued_here: false,
                    now: None,
                    carried: None,
                }),
            }),
        }
    }

    pub(crate) fn config(&self) -> &Config {
        &self.shared.config
    }

    /// Reads the value stored under `key`, or `None` if there is none.
    ///
    /// Fails with [`SessionError::Serialization`] if the stored value is not a `T`.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, SessionError> {
        self.loaded().await?.lookup(key)
    }

    /// Stores `value` under `key`, replacing any previous value. Saved when the response
    /// is ready (and not at all if the response is a server error).
    pub async fn insert<T: Serialize>(&self, key: &str, value: T) -> Result<(), SessionError> {
        let value = serde_json::to_value(value)?;
        let mut state = self.writable().await?;
        state.set(key, Some(value))
    }

    /// Removes the value under `key` and returns it.
    pub async fn remove<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, SessionError> {
        let mut state = self.writable().await?;
        let old = state.view_mut()?.remove(key);
        if old.is_some() {
            state.changes.values.insert(key.to_owned(), None);
        }
        old.map(|value| T::deserialize(value).map_err(SessionError::from))
            .transpose()
    }

    /// Removes every value (the logged-in user, if any, stays; see [`login`](Self::login)).
    pub async fn clear(&self) -> Result<(), SessionError> {
        let mut state = self.writable().await?;
        state.changes.values.clear();
        state.changes.cleared = true;
        state.view = Some(Map::new());
        Ok(())
    }

    /// Whether the session holds no values.
    pub async fn is_empty(&self) -> Result<bool, SessionError> {
        Ok(self.loaded().await?.view_mut()?.is_empty())
    }

    /// Atomically replaces the value under `key` with `f(current)` and returns the value
    /// committed.
    ///
    /// Unlike [`insert`](Self::insert), this commits at once, together with this request's
    /// other pending changes, by compare-and-swap: when another request changed the session
    /// in between, the current value is read again and `f` runs again. Concurrent updates of
    /// one key, from any number of requests and instances, are never lost.
    ///
    /// After [`login`](Self::login) or [`cycle_id`](Self::cycle_id) in the same request, the
    /// commit carries out the ID change too: the values (and the user) are written under the
    /// new ID only, the old ID stops working at once, and the response sets the new cookie.
    /// If the response is then a server error, the new record is deleted: the client never
    /// received its ID, and its old cookie stays anonymous.
    ///
    /// ```
    /// # async fn handler(session: sessionware::Session) -> Result<(), sessionware::SessionError> {
    /// let count: u64 = session.update("count", |n: Option<u64>| n.unwrap_or(0) + 1).await?;
    /// # Ok(()) }
    /// ```
    pub async fn update<T, F>(&self, key: &str, mut f: F) -> Result<T, SessionError>
    where
        T: Serialize + DeserializeOwned,
        F: FnMut(Option<T>) -> T,
    {
        let mut state = Self::check_writable(self.lock_loaded(true).await?)?;
        let config = &self.shared.config;
        let now = state.now(config);
        let _turn = self.write_turn(&state).await;
        let mut retry = self.retry();
        loop {
            let (next, spliced) = match (&state.view, &state.base) {
                // No value changes pending: the new value replaces the old one in the stored
                // JSON, which is never parsed into a map (parsing, serializing and dropping
                // the map were a third of the layer's share of an update).
                (None, Base::Stored { record, .. }) => {
                    let (current, span) = find_value_and_span(&record.data, key)?;
                    let next = f(current);
                    let value = serde_json::to_vec(&next)?;
                    let spliced = splice_value(&record.data, key, span, &value)?;
                    (next, Some(spliced))
                }
                _ => {
                    // The write parses the values anyway: parse them before the read.
                    state.view_mut()?;
                    let next = f(state.lookup(key)?);
                    // Into the view only: the commit writes the whole view, and a conflict
                    // rebuilds it from the fresh record and the request's other changes, so
                    // this attempt's value needs no entry in `changes`.
                    state.set_view(key, serde_json::to_value(&next)?)?;
                    (next, None)
                }
            };
            // An ID change requested earlier (`login`, `cycle_id`) is carried out here: a
            // user or values written under the pre-login ID would authenticate a cookie
            // planted before the login (session fixation).
            let committed = match self.commit_now(&mut state, now, spliced).await {
                Ok(committed) => committed,
                Err(error @ SessionError::DataTooLarge { .. }) => {
                    // Refused outright: the value is not left pending for the response.
                    state.rebase()?;
                    return Err(error);
                }
                Err(error) => {
                    // Still pending, as for `insert`: the response saves it if it can.
                    let value = serde_json::to_value(&next)?;
                    state.changes.values.insert(key.to_owned(), Some(value));
                    state.rebase()?;
                    return Err(error);
                }
            };
            match committed {
                Committed::Done => return Ok(next),
                Committed::Conflict => {
                    retry.after_conflict().await?;
                    // The reload re-applies the request's other changes.
                    self.reload(&mut state, now).await?;
                    if state.interruption.is_some() {
                        return Err(SessionError::Interrupted);
                    }
                }
                Committed::Gone => {
                    self.interrupt(&mut state, Interruption::Deleted);
                    return Err(SessionError::Interrupted);
                }
                Committed::Moved => {
                    if !self.moved_away(&mut state)? {
                        return Err(SessionError::Interrupted);
                    }
                }
            }
        }
    }

    /// The retry policy of this request's commits.
    fn retry(&self) -> Retry {
        let config = &self.shared.config;
        let pause = match config.store.as_immediate() {
            Some(_) => Pause::Yield,
            None => Pause::Sleep,
        };
        Retry::new(config.conflict_budget, pause)
    }

    /// Waits for this request's turn to write its stored session: the writers of one session
    /// in this process commit one after the other (see [`crate::contention::WriteTurns`]). Not needed for a
    /// store that answers without waiting, whose commits cannot interleave with each other's
    /// I/O, nor before a session is stored (a new one gets a fresh ID).
    async fn write_turn(&self, state: &State) -> Option<MutexGuard<'_, ()>> {
        let config = &self.shared.config;
        match &state.base {
            Base::Stored { key, .. } if config.store.as_immediate().is_none() => {
                Some(config.write_turns.turn(key).await)
            }
            _ => None,
        }
    }

    /// Gives the session a new ID, keeping its data. The old ID stops working as soon as the
    /// response is ready: a request that still sends the old cookie gets an anonymous session.
    pub async fn cycle_id(&self) -> Result<(), SessionError> {
        let mut state = self.writable().await?;
        state.changes.rotate = true;
        Ok(())
    }

    /// Records that `user` has authenticated: the session gets a new ID (always, also when
    /// the same user logs in again), is indexed under `user`, and, if a *different* user was
    /// logged in, its data is flushed first.
    ///
    /// # Security
    ///
    /// Rotating the ID at every authentication defeats session fixation: an ID an attacker
    /// planted before the login is worthless after it.
    pub async fn login(&self, user: impl Into<String>) -> Result<(), SessionError> {
        let user = user.into();
        let mut state = self.writable().await?;
        let previous = state.user();
        if previous.as_deref().is_some_and(|previous| previous != user) {
            state.changes.values.clear();
            state.changes.cleared = true;
            state.changes.expiry = Some(None);
            state.view = Some(Map::new());
        }
        state.changes.user = Some(Some(user));
        state.changes.rotate = true;
        Ok(())
    }

    /// The logged-in user, if any.
    pub async fn user(&self) -> Result<Option<String>, SessionError> {
        Ok(self.loaded().await?.user())
    }

    /// Deletes the session now: its record is removed from the store and the response
    /// removes the cookie (same name, Path, Domain and Secure). A replay of the old cookie
    /// gets an anonymous session. Later calls on this handle fail with
    /// [`SessionError::Destroyed`].
    pub async fn destroy(&self) -> Result<(), SessionError> {
        let mut state = self.loaded().await?;
        if let Base::Stored { key, .. } = &state.base {
            self.shared.config.delete(key).await?;
        }
        state.destroyed = true;
        state.base = Base::Absent { stale: false };
        state.changes = Changes::default();
        state.view = None;
        Ok(())
    }

    /// Logs out: the same as [`destroy`](Self::destroy).
    pub async fn logout(&self) -> Result<(), SessionError> {
        self.destroy().await
    }

    /// Sets this session's lifetime, overriding the layer's idle timeout; `None` goes back to
    /// the layer's settings. The absolute timeout still applies. See [`Expiry`].
    pub async fn set_expiry(&self, expiry: Option<Expiry>) -> Result<(), SessionError> {
        let mut state = self.writable().await?;
        state.changes.expiry = Some(expiry);
        Ok(())
    }

    /// This session's lifetime override, if any.
    pub async fn expiry(&self) -> Result<Option<Expiry>, SessionError> {
        let state = self.loaded().await?;
        Ok(state.changes.expiry.unwrap_or_else(|| match &state.base {
            Base::Stored { record, .. } => record.expiry,
            Base::Unloaded | Base::Absent { .. } => None,
        }))
    }

    /// When the stored session expires unless extended, or `None` if nothing is stored yet.
    pub async fn expires_at(&self) -> Result<Option<SystemTime>, SessionError> {
        Ok(self
            .loaded()
            .await?
            .record()
            .map(|record| record.expires_at))
    }

    /// When the stored session was created, or `None` if nothing is stored yet.
    pub async fn created_at(&self) -> Result<Option<SystemTime>, SessionError> {
        Ok(self
            .loaded()
            .await?
            .record()
            .map(|record| record.created_at))
    }

    /// The opaque handle of the stored session (for
    /// [`SessionStore::revoke_user`](crate::SessionStore::revoke_user)'s `except`), or `None`
    /// if nothing is stored yet. After [`cycle_id`](Self::cycle_id) or
    /// [`login`](Self::login) the handle changes when the response is ready.
    pub async fn handle(&self) -> Result<Option<SessionHandle>, SessionError> {
        let state = self.loaded().await?;
        Ok(match &state.base {
            Base::Stored { key, .. } => Some(SessionHandle::from_store_key(*key)),
            Base::Unloaded | Base::Absent { .. } => None,
        })
    }

    /// Locks the state with the stored session loaded.
    async fn loaded(&self) -> Result<MutexGuard<'_, State>, SessionError> {
        self.lock_loaded(false).await
    }

    /// Locks the state with the stored session loaded; `refresh_now` reads the clock again
    /// first (see [`State::refresh_now`]), so that a write that loads the session reads the
    /// clock once, not twice.
    async fn lock_loaded(&self, refresh_now: bool) -> Result<MutexGuard<'_, State>, SessionError> {
        self.shared.touched.store(true, Ordering::Release);
        let mut state = self.shared.state.lock().await;
        state.accessed = true;
        if refresh_now {
            state.refresh_now(&self.shared.config);
        }
        if matches!(state.base, Base::Unloaded) {
            let now = state.now(&self.shared.config);
            self.load_incoming(&mut state, now).await?;
        }
        Ok(state)
    }

    /// Locks the state for a change: loaded, and not destroyed.
    async fn writable(&self) -> Result<MutexGuard<'_, State>, SessionError> {
        Self::check_writable(self.loaded().await?)
    }

    fn check_writable(state: MutexGuard<'_, State>) -> Result<MutexGuard<'_, State>, SessionError> {
        if state.interruption.is_some() {
            return Err(SessionError::Interrupted);
        }
        if state.destroyed {
            return Err(SessionError::Destroyed);
        }
        Ok(state)
    }

    /// Fetches the record named by the request's cookie.
    async fn load_incoming(&self, state: &mut State, now: SystemTime) -> Result<(), SessionError> {
        let Some(incoming) = &self.shared.incoming else {
            state.base = Base::Absent { stale: false };
            return Ok(());
        };
        let key = incoming.id.store_key();
        let outcome = self.shared.config.load(&key, now).await?;
        match self.live(outcome, now, true) {
            Loaded::Live(record) => {
                state.loaded_expiry = Some((record.expires_at, record.expiry));
                state.base = Base::Stored {
                    id: None,
                    key,
                    record,
                };
                state.rebase()
            }
            Loaded::Ended => {
                state.base = Base::Absent { stale: true };
                Ok(())
            }
            // Rotated by a concurrent request, whose response sets the new cookie: no
            // session here, and no removal cookie that could arrive after the new one.
            Loaded::Moved => {
                state.base = Base::Absent { stale: false };
                Ok(())
            }
        }
    }

    /// Re-reads the stored session after a conflict and re-applies this request's changes.
    async fn reload(&self, state: &mut State, now: SystemTime) -> Result<(), SessionError> {
        let Base::Stored { key, .. } = &state.base else {
            return Ok(());
        };
        let outcome = self.shared.config.load(key, now).await?;
        match self.live(outcome, now, false) {
            Loaded::Live(fresh) => {
                if let Base::Stored { record, .. } = &mut state.base {
                    *record = fresh;
                }
                state.rebase()
            }
            Loaded::Ended => {
                self.interrupt(state, Interruption::Deleted);
                Ok(())
            }
            Loaded::Moved => self.moved_away(state).map(drop),
        }
    }

    /// The stored session moved to a new ID under this request (a concurrent rotation).
    /// A pending login goes on under a fresh ID, built on the record this request loaded
    /// (its values, creation time and expiry, as a rotation would have kept them): a
    /// double-submitted login form then ends logged in whichever response reaches the
    /// browser last, and the absolute timeout still counts from the session's creation. Any other change is dropped, as for
    /// a deleted session, but the cookie is left alone: the rotating response sets the new
    /// one. Returns whether the changes are still to be committed.
    fn moved_away(&self, state: &mut State) -> Result<bool, SessionError> {
        if matches!(state.changes.user, Some(Some(_))) {
            let base = std::mem::replace(&mut state.base, Base::Absent { stale: false });
            if let Base::Stored { record, .. } = base {
                state.carried = Some(Box::new(record));
            }
            return Ok(true);
        }
        self.interrupt(state, Interruption::Moved);
        Ok(false)
    }

    /// What a load found, for this request; `report` counts a rejected ID as a security
    /// event (it is off for reloads, where a vanished record is an interruption, not a
    /// client's doing).
    fn live(&self, outcome: LoadOutcome, now: SystemTime, report: bool) -> Loaded {
        let config = &self.shared.config;
        let event = match outcome {
            LoadOutcome::Found(record)
                if !record.is_expired(now)
                    && config.lifetime.hard_deadline(
                        record.created_at,
                        record.expiry,
                        record.user.as_deref(),
                    ) > now =>
            {
                return Loaded::Live(record);
            }
            LoadOutcome::Moved => return Loaded::Moved,
            LoadOutcome::Found(_) | LoadOutcome::Expired => SecurityEvent::Expired,
            LoadOutcome::Missing => SecurityEvent::Unknown,
        };
        if report {
            config.report(event);
        }
        Loaded::Ended
    }

    /// Marks the session as deleted or moved by someone else: this request's changes are
    /// dropped, and for a deleted session its cookie will be removed.
    fn interrupt(&self, state: &mut State, interruption: Interruption) {
        state.interruption = Some(interruption);
        state.base = Base::Absent {
            stale: interruption == Interruption::Deleted,
        };
        state.changes = Changes::default();
        state.view = None;
        self.shared.config.report(SecurityEvent::Interrupted);
        self.shared.config.notify_error(&SessionError::Interrupted);
    }

    /// Writes the pending changes once: create, rotate (when an ID change is pending) or
    /// compare-and-swap save.
    ///
    /// `spliced`: the stored values with one replaced (by [`update`](Self::update)), to
    /// write instead of the unchanged stored ones; only for a stored session whose values
    /// are not parsed.
    async fn commit_now(
        &self,
        state: &mut State,
        now: SystemTime,
        spliced: Option<Vec<u8>>,
    ) -> Result<Committed, SessionError> {
        let config = &self.shared.config;
        match &state.base {
            Base::Unloaded => {
                self.load_incoming(state, now).await?;
                Ok(Committed::Conflict)
            }
            Base::Absent { .. } => {
                let data = state
                    .view
                    .as_ref()
                    .map_or(NewData::Unchanged, NewData::Values);
                // A login that lost to a rotation builds on the record it had loaded.
                let record =
                    config.new_record(state.carried.as_deref(), data, &state.changes, now)?;
                let no_values = state.view.as_ref().is_none_or(Map::is_empty);
                if no_values && record.user.is_none() && record.expiry.is_none() {
                    // Nothing worth storing: an anonymous session stays anonymous.
                    state.changes = Changes::default();
                    return Ok(Committed::Done);
                }
                for _ in 0..MAX_ID_DRAWS {
                    let id = SessionId::generate();
                    let key = id.store_key();
                    match config.create(&key, &record).await? {
                        CreateOutcome::Created => {
                            state.issued_here = true;
                            state.carried = None;
                            // A fresh ID satisfies any pending rotation.
                            state.settle(id, key, record);
                            return Ok(Committed::Done);
                        }
                        CreateOutcome::Collision => continue,
                    }
                }
                Err(SessionError::IdCollision)
            }
            Base::Stored { key, record, .. } => {
                let old_key = *key;
                let expected = record.version;
                let data = match (spliced, &state.view) {
                    (Some(spliced), _) => NewData::Spliced(spliced),
                    (None, Some(view)) => NewData::Values(view),
                    (None, None) => NewData::Unchanged,
                };
                let next = config.new_record(Some(record), data, &state.changes, now)?;
                if state.changes.rotate {
                    for _ in 0..MAX_ID_DRAWS {
                        let id = SessionId::generate();
                        let key = id.store_key();
                        match config.rotate(&old_key, &key, &next, expected, now).await? {
                            RotateOutcome::Rotated => {
                                state.issued_here = true;
                                state.settle(id, key, next);
                                return Ok(Committed::Done);
                            }
                            RotateOutcome::Collision => continue,
                            RotateOutcome::Conflict => return Ok(Committed::Conflict),
                            RotateOutcome::Missing => return Ok(Committed::Gone),
                            RotateOutcome::Moved => return Ok(Committed::Moved),
                        }
                    }
                    return Err(SessionError::IdCollision);
                }
                match config.save(&old_key, &next, expected, now).await? {
                    SaveOutcome::Saved => {
                        if let Base::Stored { record, .. } = &mut state.base {
                            *record = next;
                        }
                        state.changes = Changes {
                            rotate: state.changes.rotate,
                            ..Changes::default()
                        };
                        Ok(Committed::Done)
                    }
                    SaveOutcome::Conflict => Ok(Committed::Conflict),
                    SaveOutcome::Missing => Ok(Committed::Gone),
                    SaveOutcome::Moved => Ok(Committed::Moved),
                }
            }
        }
    }

    /// Whether the response can be finished without any store I/O; if so, returns what it
    /// needs. Used by the response future to skip the asynchronous path.
    pub(crate) fn try_finish(&self, server_error: bool) -> Option<Finish> {
        let rekey = self.signed_with_previous_key();
        if !rekey && !self.shared.touched.load(Ordering::Acquire) {
            // Never read nor written: nothing to save, and the cookie stays as it is.
            return Some(Finish {
                set_cookie: None,
                vary: false,
            });
        }
        let mut state = self.shared.state.try_lock()?;
        let config = &self.shared.config;
        let now = state.now(config);
        match &state.base {
            _ if server_error => {
                if state.issued_here {
                    return None;
                }
            }
            Base::Unloaded if rekey => return None,
            Base::Unloaded => {}
            Base::Absent { .. } if state.changes.any() => return None,
            Base::Absent { .. } => {}
            Base::Stored { record, .. } => {
                if state.changes.any() || self.touch_due(record, now) {
                    return None;
                }
            }
        }
        Some(self.cookie_for(&state, || now, server_error))
    }

    fn signed_with_previous_key(&self) -> bool {
        matches!(
            self.shared.incoming,
            Some(Incoming {
                signed_with: SignedWith::Previous,
                ..
            })
        )
    }

    /// Settles the session for the response: saves what changed (unless `server_error`),
    /// extends the idle deadline when due, and says which cookie to send.
    pub(crate) async fn finish(&self, server_error: bool) -> Result<Finish, SessionError> {
        let config = &self.shared.config;
        let mut state = self.shared.state.lock().await;
        let now = state.refresh_now(config);
        if server_error {
            if state.issued_here {
                if let Base::Stored { key, .. } = &state.base {
                    config.delete(key).await?;
                }
                // The record of the client's cookie (if any) is gone: rotated away.
                state.base = Base::Absent { stale: true };
                state.issued_here = false;
            }
            return Ok(self.cookie_for(&state, || now, true));
        }
        if matches!(state.base, Base::Unloaded) {
            // A cookie signed with a previous key: load so it can be re-issued with the
            // right Max-Age.
            self.load_incoming(&mut state, now).await?;
        }
        let _turn = if state.changes.any() {
            self.write_turn(&state).await
        } else {
            None
        };
        let mut retry = self.retry();
        while state.changes.any() && state.interruption.is_none() {
            match self.commit_now(&mut state, now, None).await? {
                Committed::Done => {}
                Committed::Conflict => {
                    retry.after_conflict().await?;
                    self.reload(&mut state, now).await?;
                }
                Committed::Gone => self.interrupt(&mut state, Interruption::Deleted),
                Committed::Moved => {
                    self.moved_away(&mut state)?;
                }
            }
        }
        if let Base::Stored { key, record, .. } = &mut state.base
            && self.touch_due(record, now)
        {
            let expires_at = config.lifetime.expires_at(
                record.created_at,
                record.expiry,
                record.user.as_deref(),
                now,
            );
            match config
                .touch(key, record.version, now, expires_at, now)
                .await?
            {
                TouchOutcome::Touched => {
                    record.last_active = now;
                    record.expires_at = expires_at;
                }
                // Another request saved the session since this one loaded it, and set its
                // deadline then: this request's stale view must not move it.
                TouchOutcome::Conflict => {}
                TouchOutcome::Missing => self.interrupt(&mut state, Interruption::Deleted),
            }
        }
        Ok(self.cookie_for(&state, || now, false))
    }

    fn touch_due(&self, record: &Record, now: SystemTime) -> bool {
        let lifetime = &self.shared.config.lifetime;
        Lifetime::slides(record.expiry)
            && now
                .duration_since(record.last_active)
                .is_ok_and(|idle| idle >= lifetime.touch_interval())
    }

    /// The `Set-Cookie` (if any) the response needs for the settled state.
    fn cookie_for(
        &self,
        state: &State,
        now: impl FnOnce() -> SystemTime,
        server_error: bool,
    ) -> Finish {
        let config = &self.shared.config;
        let incoming = &self.shared.incoming;
        let vary = state.accessed;
        let removal = || Finish {
            set_cookie: Some(config.cookie_template().removal()),
            vary,
        };
        let nothing = Finish {
            set_cookie: None,
            vary,
        };
        if state.destroyed {
            return if incoming.is_some() {
                removal()
            } else {
                nothing
            };
        }
        match state.interruption {
            Some(Interruption::Deleted) => return removal(),
            Some(Interruption::Moved) => return nothing,
            None => {}
        }
        match &state.base {
            Base::Stored { id, record, .. } if !server_error => {
                let incoming_id = incoming.as_ref().map(|incoming| &incoming.id);
                let Some(id) = id.as_ref().or(incoming_id) else {
                    // Not reached: only the incoming session is stored without its ID.
                    return nothing;
                };
                let same_id = incoming_id == Some(id);
                let rekey = self.signed_with_previous_key();
                let deadline_moved =
                    state.loaded_expiry != Some((record.expires_at, record.expiry));
                if !same_id || rekey || deadline_moved {
                    let max_age = Lifetime::max_age(record.expiry, record.expires_at, now());
                    Finish {
                        set_cookie: Some(
                            config
                                .cookie_template()
                                .render(&config.keys.sign(id), max_age),
                        ),
                        vary,
                    }
                } else {
                    nothing
                }
            }
            Base::Absent { stale: true } if incoming.is_some() => removal(),
            _ => nothing,
        }
    }
}

enum Committed {
    Done,
    Conflict,
    /// The session was deleted (or expired) meanwhile.
    Gone,
    /// The session moved to a new ID meanwhile (a concurrent rotation).
    Moved,
}

/// What a load of the session found, as the request sees it.
enum Loaded {
    Live(Record),
    /// Expired, deleted, or never stored.
    Ended,
    /// Rotated away moments ago; see [`LoadOutcome::Moved`].
    Moved,
}

/// Why a request's changes to its session were dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Interruption {
    /// A concurrent logout or revocation deleted the session: its cookie is removed.
    Deleted,
    /// A concurrent rotation moved it to a new ID: the cookie is left to the rotating
    /// response.
    Moved,
}

impl State {
    /// The time of this request: read from the layer's clock once for all the reads of a
    /// request (and again before each write), rather than at every step.
    fn now(&mut self, config: &Config) -> SystemTime {
        *self.now.get_or_insert_with(|| config.now())
    }

    /// Reads the clock again before a write, so that a handler that keeps its session for a
    /// long time (a stream, a websocket) still writes fresh deadlines.
    fn refresh_now(&mut self, config: &Config) -> SystemTime {
        *self.now.insert(config.now())
    }

    /// The value under `key` as the handler sees it.
    fn lookup<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, SessionError> {
        match (&self.view, &self.base) {
            (Some(view), _) => view
                .get(key)
                .map(|value| T::deserialize(value).map_err(SessionError::from))
                .transpose(),
            (None, Base::Stored { record, .. }) => find_value(&record.data, key),
            (None, Base::Unloaded | Base::Absent { .. }) => Ok(None),
        }
    }

    /// The values, parsed from the stored record on first use.
    fn view_mut(&mut self) -> Result<&mut Map<String, Value>, SessionError> {
        let view = match self.view.take() {
            Some(view) => view,
            None => self.stored_values()?,
        };
        Ok(self.view.insert(view))
    }

    fn stored_values(&self) -> Result<Map<String, Value>, SessionError> {
        match self.record() {
            Some(record) => parse_data(&record.data),
            None => Ok(Map::new()),
        }
    }

    /// Makes the view agree with a freshly read record and this request's changes.
    fn rebase(&mut self) -> Result<(), SessionError> {
        self.view = None;
        if self.changes.touches_values() {
            let values = self.changes.apply(self.stored_values()?);
            self.view = Some(values);
        }
        Ok(())
    }

    fn set(&mut self, key: &str, value: Option<Value>) -> Result<(), SessionError> {
        match &value {
            Some(value) => self.set_view(key, value.clone())?,
            None => {
                self.view_mut()?.remove(key);
            }
        }
        match self.changes.values.get_mut(key) {
            Some(slot) => *slot = value,
            None => {
                self.changes.values.insert(key.to_owned(), value);
            }
        }
        Ok(())
    }

    /// Sets `key` in the view, without recording the change.
    fn set_view(&mut self, key: &str, value: Value) -> Result<(), SessionError> {
        let view = self.view_mut()?;
        match view.get_mut(key) {
            // Replaced in place: `insert` would allocate a copy of the key only to drop it.
            Some(slot) => *slot = value,
            None => {
                view.insert(key.to_owned(), value);
            }
        }
        Ok(())
    }

    fn record(&self) -> Option<&Record> {
        match &self.base {
            Base::Stored { record, .. } => Some(record),
            Base::Unloaded | Base::Absent { .. } => None,
        }
    }

    fn user(&self) -> Option<String> {
        match &self.changes.user {
            Some(user) => user.clone(),
            None => self.record().and_then(|record| record.user.clone()),
        }
    }

    /// Records that `record` is now stored under the new `id`: every pending change,
    /// including any rotation, is committed.
    fn settle(&mut self, id: SessionId, key: StoreKey, record: Record) {
        self.base = Base::Stored {
            id: Some(id),
            key,
            record,
        };
        self.changes = Changes::default();
    }
}

pub(crate) fn parse_data(bytes: &[u8]) -> Result<Map<String, Value>, SessionError> {
    if bytes.is_empty() {
        return Ok(Map::new());
    }
    serde_json::from_slice(bytes).map_err(SessionError::store)
}

/// Reads the value under `key` straight from a stored JSON object, skipping the other
/// entries without allocating. Agrees with parsing the object into a map and reading the
/// key there (objects written by the layer have no duplicate keys; of duplicates, the last
/// one is returned, as a map would keep it). A value that is not a `T` is a
/// [`SessionError::Serialization`]; a malformed object is a store error, as it is for
/// [`parse_data`].
pub(crate) fn find_value<T: DeserializeOwned>(
    data: &[u8],
    key: &str,
) -> Result<Option<T>, SessionError> {
    if data.is_empty() {
        return Ok(None);
    }
    let in_value = Cell::new(false);
    let mut deserializer = serde_json::Deserializer::from_slice(data);
    let found = de::Deserializer::deserialize_map(
        &mut deserializer,
        FindValue {
            key,
            in_value: &in_value,
            value: PhantomData,
        },
    )
    .and_then(|found| deserializer.end().map(|()| found));
    found.map_err(|error| {
        if in_value.get() && error.is_data() {
            SessionError::from(error)
        } else {
            SessionError::store(error)
        }
    })
}

/// The visitor of [`find_value`] and [`find_value_and_span`]: deserializes the value of
/// `key` (the last one, as a map would keep it), ignores the rest.
struct FindValue<'a, T> {
    key: &'a str,
    /// Set while the value of `key` is being deserialized, to tell a type mismatch in it
    /// from a malformed object.
    in_value: &'a Cell<bool>,
    value: PhantomData<fn() -> T>,
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for FindValue<'_, T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object of session values")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(matches) = map.next_key_seed(KeyIs(self.key))? {
            if matches {
                self.in_value.set(true);
                found = Some(map.next_value::<T>()?);
                self.in_value.set(false);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

/// Like [`find_value`], and also returns where the value sits in `data` (its byte range),
/// for [`splice_value`].
pub(crate) fn find_value_and_span<T: DeserializeOwned>(
    data: &[u8],
    key: &str,
) -> Result<(Option<T>, Option<Range<usize>>), SessionError> {
    if data.is_empty() {
        return Ok((None, None));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(data);
    let in_value = Cell::new(false);
    let finder = FindValue::<&RawValue> {
        key,
        in_value: &in_value,
        value: PhantomData,
    };
    // Any error here is the object's: a raw value takes whatever JSON is there.
    let raw = de::Deserializer::deserialize_map(&mut deserializer, finder)
        .and_then(|raw| deserializer.end().map(|()| raw))
        .map_err(SessionError::store)?;
    let Some(raw) = raw.map(RawValue::get) else {
        return Ok((None, None));
    };
    // A borrowed `RawValue` is a slice of `data`: its offset is the distance between the
    // two pointers.
    let start = raw.as_ptr() as usize - data.as_ptr() as usize;
    let value = serde_json::from_str(raw)?;
    Ok((Some(value), Some(start..start + raw.len())))
}

/// The JSON object `data` with the value at `span` replaced by `value`, or, without a span,
/// with `"key":value` added at its end. `data` is an object (or empty, which counts as
/// `{}`), as [`find_value_and_span`] checked; key order does not matter to a reader.
pub(crate) fn splice_value(
    data: &[u8],
    key: &str,
    span: Option<Range<usize>>,
    value: &[u8],
) -> Result<Vec<u8>, SessionError> {
    let data = if data.is_empty() { b"{}" } else { data };
    let mut out = Vec::with_capacity(data.len() + key.len() + value.len() + 4);
    match span {
        Some(span) => {
            out.extend_from_slice(&data[..span.start]);
            out.extend_from_slice(value);
            out.extend_from_slice(&data[span.end..]);
        }
        None => {
            // Only whitespace may follow the object's closing brace.
            let close = data
                .iter()
                .rposition(|&byte| byte == b'}')
                .ok_or_else(|| SessionError::store(NotAnObject))?;
            let inside = &data[..close];
            let empty = inside.iter().rev().find(|byte| !byte.is_ascii_whitespace()) == Some(&b'{');
            out.extend_from_slice(inside);
            if !empty {
                out.push(b',');
            }
            serde_json::to_writer(&mut out, key)?;
            out.push(b':');
            out.extend_from_slice(value);
            out.extend_from_slice(&data[close..]);
        }
    }
    Ok(out)
}

/// Stored session data that is not a JSON object.
#[derive(Debug)]
struct NotAnObject;

impl fmt::Display for NotAnObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("stored session data is not a JSON object")
    }
}

impl std::error::Error for NotAnObject {}

/// Deserializes a map key into whether it equals the wanted one, borrowing it from the
/// input when it has no escapes.
struct KeyIs<'a>(&'a str);

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for KeyIs<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<bool, E> {
        Ok(key == self.0)
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never shows the ID: only whether the request carried a verified cookie.
        let mut debug = f.debug_struct("Session");
        if let Some(state) = self.shared.state.try_lock() {
            debug.field("has_cookie", &self.shared.incoming.is_some());
            let keys: Vec<String> = match &state.view {
                Some(view) => view.keys().cloned().collect(),
                None => state
                    .stored_values()
                    .map(|values| values.keys().cloned().collect())
                    .unwrap_or_default(),
            };
            debug.field("keys", &keys);
        }
        debug.finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_handle_is_cheap_to_clone_and_shareable_across_tasks() {
        fn assert_send_sync_clone<T: Send + Sync + Clone + 'static>() {}
        assert_send_sync_clone::<Session>();
        // A clone shares the state: it is one reference-counted pointer.
        assert_eq!(std::mem::size_of::<Session>(), std::mem::size_of::<usize>());
    }

    /// The value `find_value` reads, compared with parsing the whole object into a map.
    fn through_map<T: DeserializeOwned>(data: &[u8], key: &str) -> Option<T> {
        parse_data(data)
            .unwrap()
            .get(key)
            .map(|value| T::deserialize(value).unwrap())
    }

    #[test]
    fn reads_one_value_from_stored_json_as_a_parsed_map_would() {
        let data = br#"{"a":1,"n\u00e9":"x","nested":{"a":[1,{"a":2}]},"s":"q\"uo","a":3}"#;
        for key in ["a", "né", "nested", "s", "missing", ""] {
            assert_eq!(
                find_value::<Value>(data, key).unwrap(),
                through_map::<Value>(data, key),
                "key {key:?}"
            );
        }
        assert_eq!(find_value::<u64>(data, "a").unwrap(), Some(3));
        assert_eq!(find_value::<u64>(b"", "a").unwrap(), None);
        assert_eq!(find_value::<u64>(b"{}", "a").unwrap(), None);
    }

    #[test]
    fn tells_a_type_mismatch_from_a_malformed_record() {
        let data = br#"{"a":"text","b":1}"#;
        assert!(matches!(
            find_value::<u64>(data, "a"),
            Err(SessionError::Serialization(_))
        ));
        // Other keys still read, and a mismatch elsewhere does not matter.
        assert_eq!(find_value::<u64>(data, "b").unwrap(), Some(1));
        for malformed in [
            &b"[1,2]"[..],
            b"{\"a\":1",
            b"{\"a\":1}x",
            b"{\"a\" 1}",
            b"null",
        ] {
            let error = find_value::<u64>(malformed, "a").unwrap_err();
            assert!(
                !matches!(error, SessionError::Serialization(_)),
                "{:?} gave {error:?}",
                String::from_utf8_lossy(malformed)
            );
            assert!(parse_data(malformed).is_err());
        }
    }

    /// `data` with `key` set to `value`, by splicing, parsed back into a map.
    fn spliced(data: &[u8], key: &str, value: &Value) -> Map<String, Value> {
        let (_, span) = find_value_and_span::<Value>(data, key).unwrap();
        let value = serde_json::to_vec(value).unwrap();
        parse_data(&splice_value(data, key, span, &value).unwrap()).unwrap()
    }

    /// The same through the map.
    fn through_map_set(data: &[u8], key: &str, value: &Value) -> Map<String, Value> {
        let mut map = parse_data(data).unwrap();
        map.insert(key.to_owned(), value.clone());
        map
    }

    #[test]
    fn splicing_a_value_in_is_setting_it_in_the_parsed_map() {
        let data = br#"{"a":1,"n\u00e9":"x","nested":{"a":[1,{"a":2}]},"s":"q\"uo","a":3}"#;
        let value = serde_json::json!({"new": [1, "two"]});
        for key in ["a", "né", "nested", "s", "missing", "", "q\"uo"] {
            assert_eq!(
                spliced(data, key, &value),
                through_map_set(data, key, &value),
                "key {key:?}"
            );
        }
        for empty in [&b""[..], b"{}", b" { } ", b"{\n}\n"] {
            assert_eq!(
                spliced(empty, "k", &value),
                through_map_set(b"{}", "k", &value),
                "{:?}",
                String::from_utf8_lossy(empty)
            );
        }
        let (found, span) = find_value_and_span::<u64>(br#"{"a":1, "b" : 22 }"#, "b").unwrap();
        assert_eq!((found, span), (Some(22), Some(14..16)));
    }

    #[test]
    fn splicing_refuses_what_reading_refuses() {
        assert!(matches!(
            find_value_and_span::<u64>(br#"{"a":"text"}"#, "a"),
            Err(SessionError::Serialization(_))
        ));
        for malformed in [&b"[1,2]"[..], b"{\"a\":1", b"{\"a\":1}x", b"null"] {
            let error = find_value_and_span::<u64>(malformed, "a").unwrap_err();
            assert!(
                !matches!(error, SessionError::Serialization(_)),
                "{:?} gave {error:?}",
                String::from_utf8_lossy(malformed)
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn splicing_agrees_with_the_parsed_map(
            entries in proptest::collection::vec(("[a-c\"\\\\é]{0,3}", proptest::option::of(0u64..5)), 0..8),
            key in "[a-c\"\\\\é]{0,3}",
            value in proptest::option::of(0u64..1000),
        ) {
            let mut object = Map::new();
            for (name, value) in entries {
                object.insert(name, value.map_or(Value::Null, Value::from));
            }
            let data = serde_json::to_vec(&object).unwrap();
            let value = value.map_or(Value::Null, Value::from);
            proptest::prop_assert_eq!(
                find_value_and_span::<Option<u64>>(&data, &key).unwrap().0,
                through_map::<Option<u64>>(&data, &key)
            );
            proptest::prop_assert_eq!(
                spliced(&data, &key, &value),
                through_map_set(&data, &key, &value)
            );
        }

        #[test]
        fn find_value_agrees_with_the_parsed_map(
            entries in proptest::collection::vec(("[a-c\"\\\\é]{0,3}", proptest::option::of(0u64..5)), 0..8),
            key in "[a-c\"\\\\é]{0,3}",
        ) {
            let mut object = Map::new();
            for (name, value) in entries {
                object.insert(name, value.map_or(Value::Null, Value::from));
            }
            let data = serde_json::to_vec(&object).unwrap();
            proptest::prop_assert_eq!(
                find_value::<Option<u64>>(&data, &key).unwrap(),
                through_map::<Option<u64>>(&data, &key)
            );
        }
    }
}
