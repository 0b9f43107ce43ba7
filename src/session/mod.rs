//! The per-request [`Session`] handle.
//!
//! The handle's methods are here; the machinery behind them is apart: [`state`] (what the
//! request knows and has changed), [`engine`] (loading and the compare-and-swap commit),
//! [`record`] (the record a commit writes) and [`settle`] (what the response needs).

mod engine;
mod record;
#[cfg(feature = "test-util")]
pub(crate) mod seed;
mod settle;
mod state;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::SystemTime;

use futures_util::lock::Mutex;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Map;

use crate::context::Context;
use crate::error::SessionError;
use crate::expiry::Expiry;
use crate::id::{SessionHandle, SessionId};
use crate::json::find_value_and_span;
use crate::json::splice_value;
use crate::key::SignedWith;
use crate::store::{SessionInfo, StoreError, UserIndex};

use engine::Committed;
pub(crate) use settle::{Fate, Settled};
use state::{Absence, Base, Changes, Interruption, State};

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
    inner: Arc<Inner>,
}

/// What every clone of one request's handle shares.
struct Inner {
    context: Arc<Context>,
    /// The request's session cookie; fixed for the request.
    incoming: Option<Incoming>,
    /// Set by the first method call: a response whose session was never touched is finished
    /// without taking the lock.
    touched: AtomicBool,
    state: Mutex<State>,
}

/// The session cookie a request carried.
pub(crate) enum Incoming {
    /// A session ID taken from a verified cookie.
    Signed {
        id: SessionId,
        signed_with: SignedWith,
    },
    /// Sealed cookie values, opened when the handler first uses the session.
    #[cfg(feature = "cookie-store")]
    Sealed(crate::sealed::Candidates),
}

impl Incoming {
    /// The verified ID of a signed cookie (a sealed one's is known once it is opened).
    pub(super) fn signed_id(&self) -> Option<&SessionId> {
        match self {
            Self::Signed { id, .. } => Some(id),
            #[cfg(feature = "cookie-store")]
            Self::Sealed(_) => None,
        }
    }
}

impl Session {
    pub(crate) fn new(context: Arc<Context>, incoming: Option<Incoming>) -> Self {
        let base = if incoming.is_some() {
            Base::Unloaded
        } else {
            Base::Absent(Absence::Fresh)
        };
        Self {
            inner: Arc::new(Inner {
                context,
                incoming,
                touched: AtomicBool::new(false),
                state: Mutex::new(State::new(base)),
            }),
        }
    }

    pub(crate) fn context(&self) -> &Context {
        &self.inner.context
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
        let mut state = self.writable_for_commit().await?;
        let now = state.now(&self.inner.context);
        let _turn = self.write_turn(&state).await;
        let mut retry = self.retry();
        loop {
            let (next, spliced) = match (&state.view, &state.base) {
                // No value changes pending: the new value replaces the old one in the stored
                // JSON, which is never parsed into a map (which saves parsing, serializing
                // and dropping a map of every value).
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
                Err(
                    error @ (SessionError::DataTooLarge { .. }
                    | SessionError::CookieTooLarge { .. }),
                ) => {
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
                    if state.interrupted() {
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
            state.changes.label = Some(None);
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
        let now = state.now(&self.inner.context);
        if let Base::Stored { key, .. } = &state.base {
            self.inner.context.store.delete(key, now).await?;
        }
        state.base = Base::Absent(Absence::Destroyed);
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
            Base::Unloaded | Base::Absent(_) => None,
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

    /// Labels the session for the user's list of sessions ([`SessionInfo::label`]): a short
    /// text of the application's choosing, such as a summary of the browser and device it
    /// was logged in from, set typically right after [`login`](Self::login). Saved when the
    /// response is ready; kept across saves and ID changes, and cleared when a different
    /// user logs in. At most 256 bytes.
    ///
    /// # Errors
    ///
    /// [`SessionError::DataTooLarge`] for a label longer than 256 bytes; nothing is changed.
    ///
    /// # Security
    ///
    /// The label is shown back to the user and stored as it is, also with
    /// [encryption at rest](crate::SessionLayer::encrypt_data_at_rest) (the store lists it):
    /// escape it where it is displayed, and put nothing secret in it.
    pub async fn set_label(&self, label: impl Into<String>) -> Result<(), SessionError> {
        let label = label.into();
        if label.len() > MAX_LABEL_LEN {
            return Err(SessionError::DataTooLarge {
                len: label.len(),
                limit: MAX_LABEL_LEN,
            });
        }
        let mut state = self.writable().await?;
        state.changes.label = Some(Some(label));
        Ok(())
    }

    /// The session's label (see [`set_label`](Self::set_label)), if it has one.
    pub async fn label(&self) -> Result<Option<String>, SessionError> {
        let state = self.loaded().await?;
        Ok(match &state.changes.label {
            Some(label) => label.clone(),
            None => state.record().and_then(|record| record.label.clone()),
        })
    }

    /// The live sessions of the logged-in user, this one included and marked
    /// [`current`](SessionInfo::current), at the layer's clock; empty when nobody is logged
    /// in.
    ///
    /// Fails with [`StoreError::Unsupported`] when the store keeps no per-user index (see
    /// [`SessionStore::user_index`](crate::SessionStore::user_index)).
    pub async fn user_sessions(&self) -> Result<Vec<SessionInfo>, SessionError> {
        let index = self.user_index("sessions_of")?;
        let mut state = self.loaded().await?;
        let now = state.now(&self.inner.context);
        let Some(user) = state.user() else {
            return Ok(Vec::new());
        };
        let current = current_handle(&state);
        let mut sessions = index.sessions_of(&user, now).await?;
        for session in &mut sessions {
            session.current = Some(session.handle) == current;
        }
        Ok(sessions)
    }

    /// Ends one of the logged-in user's sessions, named by its handle (from
    /// [`user_sessions`](Self::user_sessions)), and returns whether it ended one.
    ///
    /// The crate checks ownership: a handle that is not one of the logged-in user's live
    /// sessions (another user's, an expired one, made up) ends nothing and returns `false`,
    /// as does a request where nobody is logged in. The current session's own handle is a
    /// logout: the session is destroyed and this response removes its cookie.
    ///
    /// Fails with [`StoreError::Unsupported`] when the store keeps no per-user index.
    pub async fn revoke_session(&self, handle: &SessionHandle) -> Result<bool, SessionError> {
        let index = self.user_index("revoke")?;
        let state = self.loaded().await?;
        let Some(user) = state.user() else {
            return Ok(false);
        };
        if current_handle(&state).as_ref() == Some(handle) {
            drop(state);
            self.destroy().await?;
            return Ok(true);
        }
        let mut state = state;
        let now = state.now(&self.inner.context);
        drop(state);
        let owned = index
            .sessions_of(&user, now)
            .await?
            .iter()
            .any(|session| session.handle == *handle);
        if !owned {
            return Ok(false);
        }
        Ok(index.revoke(handle, now).await?)
    }

    /// Logs the user out everywhere else: deletes every session of the logged-in user except
    /// this one, and returns how many it deleted. Does nothing when nobody is logged in.
    ///
    /// Fails with [`StoreError::Unsupported`] when the store keeps no per-user index.
    pub async fn revoke_other_sessions(&self) -> Result<u64, SessionError> {
        let index = self.user_index("revoke_user")?;
        let mut state = self.loaded().await?;
        let now = state.now(&self.inner.context);
        let Some(user) = state.user() else {
            return Ok(0);
        };
        let current = current_handle(&state);
        Ok(index.revoke_user(&user, current.as_ref(), now).await?)
    }

    fn user_index(&self, operation: &'static str) -> Result<&dyn UserIndex, SessionError> {
        self.inner
            .context
            .store
            .user_index()
            .ok_or(SessionError::Store(StoreError::Unsupported { operation }))
    }

    /// The opaque handle of the stored session (for
    /// [`UserIndex::revoke_user`]'s `except`), or `None`
    /// if nothing is stored yet. After [`cycle_id`](Self::cycle_id) or
    /// [`login`](Self::login) the handle changes when the response is ready.
    pub async fn handle(&self) -> Result<Option<SessionHandle>, SessionError> {
        Ok(current_handle(&*self.loaded().await?))
    }
}

/// The longest label [`Session::set_label`] takes, in bytes.
const MAX_LABEL_LEN: usize = 256;

/// The handle of the stored session as the request knows it.
fn current_handle(state: &State) -> Option<SessionHandle> {
    match &state.base {
        Base::Stored { key, .. } => Some(SessionHandle::from_store_key(*key)),
        Base::Unloaded | Base::Absent(_) => None,
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never shows the ID: only whether the request carried a verified cookie.
        let mut debug = f.debug_struct("Session");
        if let Some(state) = self.inner.state.try_lock() {
            debug.field("has_cookie", &self.inner.incoming.is_some());
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
}
