//! Loading the stored session and committing a request's changes to it by compare-and-swap.

use std::borrow::Cow;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use futures_util::lock::MutexGuard;
use serde_json::Map;

use super::record::{NewData, new_record};
use super::state::{Absence, Base, Changes, Interruption, State};
use super::{Incoming, Session};
use crate::contention::{Pause, Retry};
use crate::error::SessionError;
use crate::events::Event;
use crate::id::{SessionId, StoreKey};
#[cfg(feature = "cookie-store")]
use crate::key::SignedWith;
use crate::store::{CreateOutcome, LoadOutcome, Record, RotateOutcome, SaveOutcome};

/// How many times a create or a rotation draws a new ID after a collision before giving up.
/// With 256-bit IDs a second draw already means the store is misbehaving.
const MAX_ID_DRAWS: usize = 8;

/// What one commit attempt did.
pub(super) enum Committed {
    /// Written; nothing is pending any more.
    Done,
    /// Another request changed the session since it was read: reload and try again.
    Conflict,
    /// The session was deleted (or expired) meanwhile.
    Gone,
    /// The session moved to a new ID meanwhile (a concurrent rotation).
    Moved,
}

/// What a load of the session found, as the request sees it.
enum Loaded {
    Live(Record),
    /// Expired, deleted, or never stored: the event a client's cookie for it counts as.
    Ended(Event),
    /// Rotated away moments ago; see [`LoadOutcome::Moved`].
    Moved,
}

impl Session {
    /// Locks the state, marking the session as used by the handler.
    async fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.touched.store(true, Ordering::Release);
        let mut state = self.inner.state.lock().await;
        state.accessed = true;
        state
    }

    /// Locks the state with the stored session loaded.
    pub(super) async fn loaded(&self) -> Result<MutexGuard<'_, State>, SessionError> {
        let mut state = self.lock().await;
        self.ensure_loaded(&mut state).await?;
        Ok(state)
    }

    /// Locks the state with the stored session loaded, for a commit: the clock is read again
    /// first (see [`State::refresh_now`]), and only once when the load happens here too.
    pub(super) async fn loaded_for_commit(&self) -> Result<MutexGuard<'_, State>, SessionError> {
        let mut state = self.lock().await;
        state.refresh_now(&self.inner.context);
        self.ensure_loaded(&mut state).await?;
        Ok(state)
    }

    /// Locks the state for a change: loaded, and neither destroyed nor interrupted.
    pub(super) async fn writable(&self) -> Result<MutexGuard<'_, State>, SessionError> {
        Self::check_writable(self.loaded().await?)
    }

    /// [`writable`](Self::writable), for a change committed at once.
    pub(super) async fn writable_for_commit(&self) -> Result<MutexGuard<'_, State>, SessionError> {
        Self::check_writable(self.loaded_for_commit().await?)
    }

    fn check_writable(state: MutexGuard<'_, State>) -> Result<MutexGuard<'_, State>, SessionError> {
        match state.base {
            Base::Absent(Absence::Interrupted(_)) => Err(SessionError::Interrupted),
            Base::Absent(Absence::Destroyed) => Err(SessionError::Destroyed),
            _ => Ok(state),
        }
    }

    pub(super) async fn ensure_loaded(&self, state: &mut State) -> Result<(), SessionError> {
        if matches!(state.base, Base::Unloaded) {
            let now = state.now(&self.inner.context);
            self.load_incoming(state, now).await?;
        }
        Ok(())
    }

    /// Fetches the record named by the request's cookie.
    async fn load_incoming(&self, state: &mut State, now: SystemTime) -> Result<(), SessionError> {
        let (id, key, outcome) = match &self.inner.incoming {
            None => {
                state.base = Base::Absent(Absence::Fresh);
                return Ok(());
            }
            Some(Incoming::Signed { id, .. }) => {
                let key = id.store_key();
                let outcome = self.inner.context.store.load(&key, now).await?;
                (None, key, self.as_loaded(&key, outcome))
            }
            #[cfg(feature = "cookie-store")]
            Some(Incoming::Sealed(candidates)) => {
                let Some(opened) = candidates.open(&self.inner.context) else {
                    // Nothing that opens: as for a forged signed cookie, no session and no
                    // removal.
                    state.base = Base::Absent(Absence::Fresh);
                    return Ok(());
                };
                state.reseal_due = opened.sealed_with == SignedWith::Previous;
                let key = opened.id.store_key();
                (Some(opened.id), key, LoadOutcome::Found(opened.record))
            }
        };
        match self.classify(outcome, now) {
            Loaded::Live(record) => {
                state.loaded_expiry = Some((record.expires_at, record.expiry));
                state.base = Base::Stored { id, key, record };
                state.rebase()
            }
            Loaded::Ended(event) => {
                self.inner.context.report(event);
                state.base = Base::Absent(Absence::Ended);
                Ok(())
            }
            // Rotated by a concurrent request, whose response sets the new cookie: no
            // session here, and no removal cookie that could arrive after the new one.
            Loaded::Moved => {
                state.base = Base::Absent(Absence::Fresh);
                Ok(())
            }
        }
    }

    /// Re-reads the stored session after a conflict and re-applies this request's changes.
    pub(super) async fn reload(
        &self,
        state: &mut State,
        now: SystemTime,
    ) -> Result<(), SessionError> {
        let Base::Stored { key, .. } = &state.base else {
            return Ok(());
        };
        let outcome = self.inner.context.store.load(key, now).await?;
        match self.classify(self.as_loaded(key, outcome), now) {
            Loaded::Live(fresh) => {
                if let Base::Stored { record, .. } = &mut state.base {
                    *record = fresh;
                }
                state.rebase()
            }
            // Not a client's doing (the cookie was good when the request came): an
            // interruption, not a rejected cookie.
            Loaded::Ended(_) => {
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
    /// browser last, and the absolute timeout still counts from the session's creation. Any
    /// other change is dropped, as for a deleted session, but the cookie is left alone: the
    /// rotating response sets the new one. Returns whether the changes are still to be
    /// committed.
    pub(super) fn moved_away(&self, state: &mut State) -> Result<bool, SessionError> {
        if matches!(state.changes.user, Some(Some(_))) {
            let base = std::mem::replace(&mut state.base, Base::Absent(Absence::Fresh));
            if let Base::Stored { record, .. } = base {
                state.carried = Some(Box::new(record));
            }
            return Ok(true);
        }
        self.interrupt(state, Interruption::Moved);
        Ok(false)
    }

    /// What a load found, for this request: a live record, or why there is none.
    fn classify(&self, outcome: LoadOutcome, now: SystemTime) -> Loaded {
        let lifetime = &self.inner.context.lifetime;
        match outcome {
            LoadOutcome::Found(record)
                if !record.is_expired(now)
                    && lifetime.hard_deadline(
                        record.created_at,
                        record.expiry,
                        record.user.as_deref(),
                    ) > now =>
            {
                Loaded::Live(record)
            }
            LoadOutcome::Moved => Loaded::Moved,
            LoadOutcome::Found(_) | LoadOutcome::Expired => Loaded::Ended(Event::Expired),
            LoadOutcome::Missing => Loaded::Ended(Event::Unknown),
        }
    }

    /// `record` as the store is to keep it under `key`: with
    /// [encryption at rest](crate::SessionLayer::encrypt_data_at_rest), its values sealed.
    fn for_store<'r>(&self, key: &StoreKey, record: &'r Record) -> Cow<'r, Record> {
        #[cfg(feature = "encryption")]
        if self.inner.context.encrypts_at_rest() {
            return Cow::Owned(crate::at_rest::seal(&self.inner.context, key, record));
        }
        let _ = key;
        Cow::Borrowed(record)
    }

    /// What a load from the store means to the layer: with encryption at rest, a record
    /// whose values do not open is no session (it cannot be told from one altered in the
    /// store).
    fn as_loaded(&self, key: &StoreKey, outcome: LoadOutcome) -> LoadOutcome {
        #[cfg(feature = "encryption")]
        if self.inner.context.encrypts_at_rest()
            && let LoadOutcome::Found(mut record) = outcome
        {
            return match crate::at_rest::open(&self.inner.context, key, &record.data) {
                Some(data) => {
                    record.data = data;
                    LoadOutcome::Found(record)
                }
                None => LoadOutcome::Missing,
            };
        }
        let _ = key;
        outcome
    }

    /// Marks the session as deleted or moved by someone else: this request's changes are
    /// dropped, and for a deleted session its cookie will be removed.
    pub(super) fn interrupt(&self, state: &mut State, interruption: Interruption) {
        state.base = Base::Absent(Absence::Interrupted(interruption));
        state.changes = Changes::default();
        state.view = None;
        let context = &self.inner.context;
        context.report(Event::Interrupted);
        context.hooks.notify(&SessionError::Interrupted);
    }

    /// The retry policy of this request's commits.
    pub(super) fn retry(&self) -> Retry {
        let context = &self.inner.context;
        let pause = if context.store.is_immediate() {
            Pause::Yield
        } else {
            Pause::Sleep
        };
        Retry::new(context.conflict_budget, pause)
    }

    /// Waits for this request's turn to write its stored session: the writers of one session
    /// in this process commit one after the other (see [`crate::contention::WriteTurns`]).
    /// Not needed for a store that answers without waiting, whose commits cannot interleave
    /// with each other's I/O, nor before a session is stored (a new one gets a fresh ID).
    pub(super) async fn write_turn(&self, state: &State) -> Option<MutexGuard<'_, ()>> {
        let context = &self.inner.context;
        match &state.base {
            Base::Stored { key, .. } if !context.store.is_immediate() => {
                Some(context.write_turns.turn(key).await)
            }
            _ => None,
        }
    }

    /// Writes the pending changes once: create, rotate (when an ID change is pending) or
    /// compare-and-swap save.
    ///
    /// `spliced`: the stored values with one replaced (by [`update`](Self::update)), to
    /// write instead of the unchanged stored ones; only for a stored session whose values
    /// are not parsed.
    pub(super) async fn commit_now(
        &self,
        state: &mut State,
        now: SystemTime,
        spliced: Option<Vec<u8>>,
    ) -> Result<Committed, SessionError> {
        self.ensure_loaded(state).await?;
        let context = &self.inner.context;
        #[cfg(feature = "cookie-store")]
        if context.sealed {
            return self.commit_sealed(state, now, spliced);
        }
        let Base::Stored { key, record, .. } = &state.base else {
            return self.commit_new(state, now).await;
        };
        let old_key = *key;
        let expected = record.version;
        let data = match (spliced, &state.view) {
            (Some(spliced), _) => NewData::Spliced(spliced),
            (None, Some(view)) => NewData::Values(view),
            (None, None) => NewData::Unchanged,
        };
        let next = new_record(context, Some(record), data, &state.changes, now)?;
        if state.changes.rotate {
            for _ in 0..MAX_ID_DRAWS {
                let id = SessionId::generate();
                let key = id.store_key();
                let stored = self.for_store(&key, &next);
                match context
                    .store
                    .rotate(&old_key, &key, &stored, expected, now)
                    .await?
                {
                    RotateOutcome::Rotated => {
                        state.issued_here = true;
                        state.adopt(id, key, next);
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
        let stored = self.for_store(&old_key, &next);
        match context.store.save(&old_key, &stored, expected, now).await? {
            SaveOutcome::Saved => {
                if let Base::Stored { record, .. } = &mut state.base {
                    *record = next;
                }
                state.changes = Changes::default();
                Ok(Committed::Done)
            }
            SaveOutcome::Conflict => Ok(Committed::Conflict),
            SaveOutcome::Missing => Ok(Committed::Gone),
            SaveOutcome::Moved => Ok(Committed::Moved),
        }
    }

    /// Stores a new session under a fresh ID, unless there is nothing worth storing.
    async fn commit_new(
        &self,
        state: &mut State,
        now: SystemTime,
    ) -> Result<Committed, SessionError> {
        let context = &self.inner.context;
        let data = state
            .view
            .as_ref()
            .map_or(NewData::Unchanged, NewData::Values);
        // A login that lost to a rotation builds on the record it had loaded.
        let record = new_record(context, state.carried.as_deref(), data, &state.changes, now)?;
        let no_values = state.view.as_ref().is_none_or(Map::is_empty);
        if no_values && record.user.is_none() && record.expiry.is_none() {
            // Nothing worth storing: an anonymous session stays anonymous.
            state.changes = Changes::default();
            return Ok(Committed::Done);
        }
        for _ in 0..MAX_ID_DRAWS {
            let id = SessionId::generate();
            let key = id.store_key();
            let stored = self.for_store(&key, &record);
            match context.store.create(&key, &stored, now).await? {
                CreateOutcome::Created => {
                    state.issued_here = true;
                    state.carried = None;
                    // A fresh ID satisfies any pending rotation.
                    state.adopt(id, key, record);
                    return Ok(Committed::Done);
                }
                CreateOutcome::Collision => continue,
            }
        }
        Err(SessionError::IdCollision)
    }

    /// Commits to a sealed cookie: the new record is sealed for the response at once (so that
    /// one too large for a cookie fails here, before anything changes), under a fresh ID
    /// when the session is new or an ID change is pending. There is no store to conflict
    /// with: the commit always succeeds or fails outright.
    #[cfg(feature = "cookie-store")]
    fn commit_sealed(
        &self,
        state: &mut State,
        now: SystemTime,
        spliced: Option<Vec<u8>>,
    ) -> Result<Committed, SessionError> {
        let context = &self.inner.context;
        let (base, current_id) = match &state.base {
            Base::Stored { id, record, .. } => (Some(record), id.as_ref()),
            Base::Unloaded | Base::Absent(_) => (None, None),
        };
        let data = match (spliced, &state.view) {
            (Some(spliced), _) => NewData::Spliced(spliced),
            (None, Some(view)) => NewData::Values(view),
            (None, None) => NewData::Unchanged,
        };
        let next = new_record(context, base, data, &state.changes, now)?;
        let no_values = state.view.as_ref().is_none_or(Map::is_empty);
        if base.is_none() && no_values && next.user.is_none() && next.expiry.is_none() {
            // Nothing worth a cookie: an anonymous session stays anonymous.
            state.changes = Changes::default();
            return Ok(Committed::Done);
        }
        match current_id {
            Some(id) if !state.changes.rotate => {
                let sealed = crate::sealed::seal(context, id, &next)?;
                state.sealed_out = Some(sealed);
                if let Base::Stored { record, .. } = &mut state.base {
                    *record = next;
                }
                state.changes = Changes::default();
            }
            _ => {
                let id = SessionId::generate();
                state.sealed_out = Some(crate::sealed::seal(context, &id, &next)?);
                state.issued_here = true;
                let key = id.store_key();
                state.adopt(id, key, next);
            }
        }
        state.reseal_due = false;
        Ok(Committed::Done)
    }
}
