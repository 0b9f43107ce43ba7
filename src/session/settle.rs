//! Settling the session when the response is ready: what to save, and which headers the
//! response needs.

use std::sync::atomic::Ordering;
use std::time::SystemTime;

use http::HeaderValue;

use super::engine::Committed;
use super::state::{Absence, Base, Interruption, State};
use super::{Incoming, Session};
use crate::error::SessionError;
use crate::expiry::Lifetime;
use crate::key::SignedWith;
use crate::store::{Record, TouchOutcome};

/// What becomes of the request's pending changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fate {
    /// The response succeeded (or failed on the client's side): save them.
    Commit,
    /// The response is a server error: save nothing, and delete a record whose ID this
    /// request drew, since the client never learns it.
    Discard,
}

impl Fate {
    /// The fate of the changes of a request answered with `status`.
    pub(crate) fn of(status: http::StatusCode) -> Self {
        if status.is_server_error() {
            Self::Discard
        } else {
            Self::Commit
        }
    }
}

/// The session's headers for the response.
#[derive(Debug)]
pub(crate) struct Settled {
    /// The session cookie to set or remove, if it changes.
    pub(crate) set_cookie: Option<HeaderValue>,
    /// The handler read or wrote the session: the response varies on `Cookie`.
    pub(crate) vary: bool,
}

impl Session {
    /// Whether the response can be settled without any store I/O; if so, returns what it
    /// needs. Used by the response future to skip the asynchronous path.
    pub(crate) fn try_settle(&self, fate: Fate) -> Option<Settled> {
        let rekey = self.signed_with_previous_key();
        if !rekey && !self.inner.touched.load(Ordering::Acquire) {
            // Never read nor written: nothing to save, and the cookie stays as it is.
            return Some(Settled {
                set_cookie: None,
                vary: false,
            });
        }
        let mut state = self.inner.state.try_lock()?;
        let now = state.now(&self.inner.context);
        match &state.base {
            _ if fate == Fate::Discard => {
                if state.issued_here {
                    return None;
                }
            }
            Base::Unloaded if rekey => return None,
            Base::Unloaded => {}
            Base::Absent(_) if state.changes.any() => return None,
            Base::Absent(_) => {}
            Base::Stored { record, .. } => {
                if state.changes.any() || self.touch_due(record, now) || reseal_due(&state) {
                    return None;
                }
            }
        }
        Some(self.headers_for(&state, || now, fate))
    }

    fn signed_with_previous_key(&self) -> bool {
        matches!(
            self.inner.incoming,
            Some(Incoming::Signed {
                signed_with: SignedWith::Previous,
                ..
            })
        )
    }

    /// Settles the session for the response: saves what changed (unless the changes are
    /// discarded), extends the idle deadline when due, and says which cookie to send.
    pub(crate) async fn settle(&self, fate: Fate) -> Result<Settled, SessionError> {
        let context = &self.inner.context;
        let mut state = self.inner.state.lock().await;
        let now = state.refresh_now(context);
        if fate == Fate::Discard {
            #[cfg(feature = "cookie-store")]
            if context.sealed {
                // Nothing was stored: the client's cookie, if any, is still its session.
                return Ok(Settled {
                    set_cookie: None,
                    vary: state.accessed,
                });
            }
            if state.issued_here {
                if let Base::Stored { key, .. } = &state.base {
                    context.store.delete(key, now).await?;
                }
                // The record of the client's cookie (if any) is gone: rotated away.
                state.base = Base::Absent(Absence::Ended);
                state.issued_here = false;
            }
            return Ok(self.headers_for(&state, || now, fate));
        }
        // A cookie signed with a previous key is loaded even if unused, so that it can be
        // re-issued with the right Max-Age.
        self.ensure_loaded(&mut state).await?;
        let _turn = if state.changes.any() {
            self.write_turn(&state).await
        } else {
            None
        };
        let mut retry = self.retry();
        // An interruption drops the changes, which ends the loop.
        while state.changes.any() {
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
        let mut touched = false;
        if let Base::Stored { key, record, .. } = &mut state.base
            && self.touch_due(record, now)
        {
            let expires_at = context.lifetime.expires_at(
                record.created_at,
                record.expiry,
                record.user.as_deref(),
                now,
            );
            match context
                .store
                .touch(key, record.version, now, expires_at, now)
                .await?
            {
                TouchOutcome::Touched => {
                    record.last_active = now;
                    record.expires_at = expires_at;
                    touched = true;
                }
                // Another request saved the session since this one loaded it, and set its
                // deadline then: this request's stale view must not move it.
                TouchOutcome::Conflict => {}
                TouchOutcome::Missing => self.interrupt(&mut state, Interruption::Deleted),
            }
        }
        #[cfg(feature = "cookie-store")]
        if context.sealed && (touched || state.reseal_due) {
            self.reseal(&mut state)?;
        }
        let _ = touched;
        Ok(self.headers_for(&state, || now, fate))
    }

    /// Seals the stored record again for the response (its deadline moved, or a previous key
    /// sealed it).
    #[cfg(feature = "cookie-store")]
    fn reseal(&self, state: &mut State) -> Result<(), SessionError> {
        if let Base::Stored {
            id: Some(id),
            record,
            ..
        } = &state.base
        {
            let sealed = crate::sealed::seal(&self.inner.context, id, record)?;
            state.sealed_out = Some(sealed);
        }
        state.reseal_due = false;
        Ok(())
    }

    fn touch_due(&self, record: &Record, now: SystemTime) -> bool {
        let lifetime = &self.inner.context.lifetime;
        Lifetime::slides(record.expiry)
            && now
                .duration_since(record.last_active)
                .is_ok_and(|idle| idle >= lifetime.touch_interval())
    }

    /// The headers the response needs for the settled state.
    fn headers_for(&self, state: &State, now: impl FnOnce() -> SystemTime, fate: Fate) -> Settled {
        let context = &self.inner.context;
        let incoming = &self.inner.incoming;
        let vary = state.accessed;
        let removal = || Settled {
            set_cookie: Some(context.cookie_template().removal()),
            vary,
        };
        let nothing = Settled {
            set_cookie: None,
            vary,
        };
        match &state.base {
            Base::Absent(Absence::Ended | Absence::Destroyed) if incoming.is_some() => removal(),
            Base::Absent(Absence::Interrupted(Interruption::Deleted)) => removal(),
            // Moved: the rotating response sets the new cookie.
            Base::Absent(_) | Base::Unloaded => nothing,
            Base::Stored { .. } if fate == Fate::Discard => nothing,
            #[cfg(feature = "cookie-store")]
            Base::Stored { record, .. } if context.sealed => match &state.sealed_out {
                Some(sealed) => {
                    let max_age = Lifetime::max_age(record.expiry, record.expires_at, now());
                    Settled {
                        set_cookie: Some(context.cookie_template().render(sealed, max_age)),
                        vary,
                    }
                }
                None => nothing,
            },
            Base::Stored { id, record, .. } => {
                let incoming_id = incoming.as_ref().and_then(Incoming::signed_id);
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
                    Settled {
                        set_cookie: Some(
                            context
                                .cookie_template()
                                .render(&context.keys.sign(id), max_age),
                        ),
                        vary,
                    }
                } else {
                    nothing
                }
            }
        }
    }
}

/// Whether a sealed cookie must be sealed again although nothing changed it.
fn reseal_due(state: &State) -> bool {
    #[cfg(feature = "cookie-store")]
    return state.reseal_due;
    #[cfg(not(feature = "cookie-store"))]
    {
        let _ = state;
        false
    }
}
