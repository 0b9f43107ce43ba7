//! What a request knows about its session: the stored base, its pending changes, and the
//! view the handler reads.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::context::Context;
use crate::error::SessionError;
use crate::expiry::Expiry;
use crate::id::{SessionId, StoreKey};
use crate::json::{find_value, parse_data};
use crate::store::Record;

/// What the request knows about the stored session.
// One per request, inside the shared handle: boxing `Stored` would add an allocation to every
// load to save bytes that are allocated once anyway.
#[allow(clippy::large_enum_variant)]
pub(super) enum Base {
    /// A verified cookie arrived; its record has not been fetched yet.
    Unloaded,
    /// No stored session, for the reason given.
    Absent(Absence),
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
pub(super) struct Changes {
    pub(super) values: BTreeMap<String, Option<Value>>,
    pub(super) cleared: bool,
    pub(super) user: Option<Option<String>>,
    pub(super) expiry: Option<Option<Expiry>>,
    pub(super) label: Option<Option<String>>,
    pub(super) rotate: bool,
}

impl Changes {
    pub(super) fn writes_data(&self) -> bool {
        self.cleared
            || !self.values.is_empty()
            || self.user.is_some()
            || self.expiry.is_some()
            || self.label.is_some()
    }

    pub(super) fn any(&self) -> bool {
        self.writes_data() || self.rotate
    }

    /// Whether the changes touch the values (as opposed to the user, expiry or ID only).
    pub(super) fn touches_values(&self) -> bool {
        self.cleared || !self.values.is_empty()
    }

    /// Applies the changes on top of freshly loaded `data`.
    pub(super) fn apply(&self, mut data: Map<String, Value>) -> Map<String, Value> {
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

pub(super) struct State {
    pub(super) base: Base,
    pub(super) changes: Changes,
    /// The session's values as the handler sees them: the base plus the changes. `None`
    /// until a change needs them parsed: the values are then exactly the stored record's
    /// data (or none, without a stored record), and a read finds its one key in the stored
    /// JSON without building a map (which saves the map, its keys and values, and their
    /// drop).
    pub(super) view: Option<Map<String, Value>>,
    /// The stored deadline and expiry as loaded, to tell whether the cookie needs a new
    /// `Max-Age`.
    pub(super) loaded_expiry: Option<(SystemTime, Option<Expiry>)>,
    /// The handler read or wrote the session: the response varies on `Cookie`.
    pub(super) accessed: bool,
    /// The stored session's ID was drawn during this request (`update` created the session or
    /// carried out a pending rotation): a server error deletes its record, since the client
    /// never learns that ID.
    pub(super) issued_here: bool,
    /// See [`State::now`].
    now: Option<SystemTime>,
    /// The record a concurrent rotation moved away while this request's login was pending;
    /// the login commits a fresh record built on it (see `Session::moved_away`).
    // Boxed: rarely set, and every request's state would otherwise carry a record's bytes.
    pub(super) carried: Option<Box<Record>>,
    /// With sealed cookies: the cookie value that carries the record as it now is, once a
    /// commit changed it or it was re-sealed.
    #[cfg(feature = "cookie-store")]
    pub(super) sealed_out: Option<String>,
    /// With sealed cookies: the record must be sealed again for the response although
    /// nothing changed it (a previous key sealed it, or its deadline moved).
    #[cfg(feature = "cookie-store")]
    pub(super) reseal_due: bool,
}

/// Why a request has no stored session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Absence {
    /// Nothing is stored yet: no cookie came, or its session moved to a new ID moments ago
    /// (the rotating response sets the new cookie, so this one is left alone).
    Fresh,
    /// The client's validly signed cookie names a session that is gone (expired, unknown,
    /// or rotated away by this request's own failed response): its cookie is removed.
    Ended,
    /// This request destroyed the session: its cookie is removed and later writes fail with
    /// [`SessionError::Destroyed`].
    Destroyed,
    /// A concurrent request deleted or moved the session and this request's changes were
    /// dropped; later writes fail with [`SessionError::Interrupted`].
    Interrupted(Interruption),
}

/// Why a request's changes to its session were dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Interruption {
    /// A concurrent logout or revocation deleted the session: its cookie is removed.
    Deleted,
    /// A concurrent rotation moved it to a new ID: the cookie is left to the rotating
    /// response.
    Moved,
}

impl State {
    pub(super) fn new(base: Base) -> Self {
        Self {
            base,
            changes: Changes::default(),
            view: None,
            loaded_expiry: None,
            accessed: false,
            issued_here: false,
            now: None,
            carried: None,
            #[cfg(feature = "cookie-store")]
            sealed_out: None,
            #[cfg(feature = "cookie-store")]
            reseal_due: false,
        }
    }

    /// The time of this request: read from the layer's clock once for all the reads of a
    /// request (and again before each write), rather than at every step.
    pub(super) fn now(&mut self, context: &Context) -> SystemTime {
        *self.now.get_or_insert_with(|| context.now())
    }

    /// Reads the clock again before a write, so that a handler that keeps its session for a
    /// long time (a stream, a websocket) still writes fresh deadlines.
    pub(super) fn refresh_now(&mut self, context: &Context) -> SystemTime {
        *self.now.insert(context.now())
    }

    /// The value under `key` as the handler sees it.
    pub(super) fn lookup<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, SessionError> {
        match (&self.view, &self.base) {
            (Some(view), _) => view
                .get(key)
                .map(|value| T::deserialize(value).map_err(SessionError::from))
                .transpose(),
            (None, Base::Stored { record, .. }) => find_value(&record.data, key),
            (None, Base::Unloaded | Base::Absent(_)) => Ok(None),
        }
    }

    /// The values, parsed from the stored record on first use.
    pub(super) fn view_mut(&mut self) -> Result<&mut Map<String, Value>, SessionError> {
        let view = match self.view.take() {
            Some(view) => view,
            None => self.stored_values()?,
        };
        Ok(self.view.insert(view))
    }

    pub(super) fn stored_values(&self) -> Result<Map<String, Value>, SessionError> {
        match self.record() {
            Some(record) => parse_data(&record.data),
            None => Ok(Map::new()),
        }
    }

    /// Makes the view agree with a freshly read record and this request's changes.
    pub(super) fn rebase(&mut self) -> Result<(), SessionError> {
        self.view = None;
        if self.changes.touches_values() {
            let values = self.changes.apply(self.stored_values()?);
            self.view = Some(values);
        }
        Ok(())
    }

    pub(super) fn set(&mut self, key: &str, value: Option<Value>) -> Result<(), SessionError> {
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
    pub(super) fn set_view(&mut self, key: &str, value: Value) -> Result<(), SessionError> {
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

    /// Whether a concurrent request deleted or moved the session under this one.
    pub(super) fn interrupted(&self) -> bool {
        matches!(self.base, Base::Absent(Absence::Interrupted(_)))
    }

    pub(super) fn record(&self) -> Option<&Record> {
        match &self.base {
            Base::Stored { record, .. } => Some(record),
            Base::Unloaded | Base::Absent(_) => None,
        }
    }

    pub(super) fn user(&self) -> Option<String> {
        match &self.changes.user {
            Some(user) => user.clone(),
            None => self.record().and_then(|record| record.user.clone()),
        }
    }

    /// Records that `record` is now stored under the new `id`: every pending change,
    /// including any rotation, is committed.
    pub(super) fn adopt(&mut self, id: SessionId, key: StoreKey, record: Record) {
        self.base = Base::Stored {
            id: Some(id),
            key,
            record,
        };
        self.changes = Changes::default();
    }
}
