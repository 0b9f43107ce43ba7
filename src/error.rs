//! [`SessionError`]: what a session operation returns at run time. A store's own failures
//! are [`StoreError`]s, which a [`SessionError::Store`] carries; mistakes in the settings are
//! [`ConfigError`](crate::ConfigError)s, reported when a layer or a store is built.

use std::error::Error as StdError;
use std::fmt;

use crate::store::StoreError;

/// An error from a session operation or a store.
///
/// Bad input from a client is never a `SessionError`: a forged, malformed, expired or
/// unknown cookie simply gives the request an anonymous session.
#[derive(Debug)]
#[non_exhaustive]
pub enum SessionError {
    /// The store failed; the [`StoreError`] says how (unavailable, timed out, a corrupt
    /// record, full, an operation it does not support, ...).
    Store(StoreError),
    /// A value could not be serialized into, or deserialized out of, the session.
    ///
    /// Likely cause: the type asked for in [`Session::get`](crate::Session::get) differs from
    /// the type that was stored under that key.
    Serialization(serde_json::Error),
    /// The session was deleted by another request (a logout or a revocation) while this one
    /// was using it. This request's changes were dropped and its cookie removed; the session
    /// is not recreated.
    Interrupted,
    /// The session was destroyed earlier in this request; start a new request to get a new
    /// session.
    Destroyed,
    /// A compare-and-swap save kept conflicting with concurrent writers and gave up after
    /// several attempts. Likely cause: many requests writing the same session at once.
    Conflict,
    /// The session's values, serialized, would exceed the layer's
    /// [`max_data_len`](crate::SessionLayer::max_data_len); nothing was saved.
    ///
    /// Likely cause: a handler storing a large or ever-growing value (a cart without a cap, a
    /// cached response) in the session. Keep large data in your database and its key in the
    /// session.
    DataTooLarge {
        /// The serialized size the change would have produced, in bytes.
        len: usize,
        /// The configured limit, in bytes.
        limit: usize,
    },
    /// With sealed cookie sessions (`SessionLayer::sealed_cookies`, feature `cookie-store`):
    /// the session, sealed, would make its cookie longer than browsers keep; nothing was
    /// saved or sent.
    ///
    /// Likely cause: more values than a cookie holds. Keep sessions of this size in a store.
    CookieTooLarge {
        /// The length the cookie would have had (name, `=` and value), in bytes.
        len: usize,
        /// The most a cookie may have: 4096 bytes.
        limit: usize,
    },
    /// Drawing a fresh session ID kept colliding with existing records. With 256-bit random
    /// IDs this means the store is misbehaving (for example, it reports every create as a
    /// collision).
    IdCollision,
}

impl SessionError {
    /// The store's error, if this is one.
    pub fn store_error(&self) -> Option<&StoreError> {
        match self {
            Self::Store(error) => Some(error),
            _ => None,
        }
    }
}

impl From<StoreError> for SessionError {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Store(_) => f.write_str("session store failed"),
            Self::Serialization(_) => f.write_str("session value could not be (de)serialized"),
            Self::Interrupted => {
                f.write_str("session was deleted by a concurrent request; changes were dropped")
            }
            Self::Destroyed => f.write_str("session was destroyed earlier in this request"),
            Self::Conflict => f.write_str("session save kept conflicting with concurrent writers"),
            Self::DataTooLarge { len, limit } => write!(
                f,
                "session data would take {len} bytes, over the limit of {limit}; store large \
                 data elsewhere or raise `SessionLayer::max_data_len`"
            ),
            Self::CookieTooLarge { len, limit } => write!(
                f,
                "the sealed session cookie would take {len} bytes, over the {limit} browsers \
                 keep; store fewer values or keep sessions in a store"
            ),
            Self::IdCollision => f.write_str("could not draw a session ID that is not in use"),
        }
    }
}

impl StdError for SessionError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Self::Store(source) => Some(source),
            Self::Serialization(source) => Some(source),
            _ => None,
        }
    }
}

impl From<serde_json::Error> for SessionError {
    fn from(error: serde_json::Error) -> Self {
        Self::Serialization(error)
    }
}
