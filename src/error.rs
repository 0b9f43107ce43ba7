//! Errors: [`SessionError`] at run time, [`ConfigError`] when a layer or a store is built.
//! A store's own failures are [`StoreError`]s, which a [`SessionError::Store`] carries.

use std::error::Error as StdError;
use std::fmt;

use crate::store::StoreError;

/// A boxed error source, kept intact so callers can inspect or downcast it.
pub type BoxError = Box<dyn StdError + Send + Sync>;

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

/// A configuration mistake, reported when a key or a layer is built.
///
/// Each message names the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// The signing key has fewer than 32 bytes.
    KeyTooShort {
        /// The length that was given.
        len: usize,
    },
    /// The signing key could not be read: the environment variable is missing or is not
    /// valid base64.
    KeyUnreadable {
        /// Where the key was read from (an environment variable's name, or "base64 input").
        source_name: String,
        /// What went wrong.
        reason: String,
    },
    /// A cookie named with the `__Host-` prefix has a `Domain` attribute.
    HostPrefixWithDomain,
    /// A cookie named with the `__Host-` prefix has a `Path` other than `/`.
    HostPrefixWithPath,
    /// A `__Host-` or `__Secure-` cookie is not marked `Secure`.
    PrefixWithoutSecure,
    /// `SameSite=None` without `Secure`: browsers reject such cookies.
    SameSiteNoneWithoutSecure,
    /// The cookie name is empty or contains characters not allowed in a cookie name.
    InvalidCookieName,
    /// The cookie path or domain contains characters not allowed in a cookie attribute.
    InvalidCookieAttribute,
    /// A store setting is invalid (for example a PostgreSQL table name that is not a plain
    /// identifier).
    InvalidStoreSetting {
        /// Which setting.
        setting: &'static str,
        /// What is wrong with it and how to fix it.
        reason: String,
    },
    /// A timeout is zero, or the idle timeout exceeds the absolute timeout.
    InvalidTimeout {
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::KeyTooShort { len } => write!(
                f,
                "session key has {len} bytes; at least 32 random bytes are required \
                 (generate one with `Key::generate()` or `openssl rand -base64 32`)"
            ),
            Self::KeyUnreadable {
                source_name,
                reason,
            } => write!(
                f,
                "session key from {source_name} could not be read: {reason}; \
                 set it to the base64 encoding of at least 32 random bytes"
            ),
            Self::HostPrefixWithDomain => f.write_str(
                "a `__Host-` cookie must not have a Domain: remove `cookie_domain(..)` \
                 or choose a name without the `__Host-` prefix",
            ),
            Self::HostPrefixWithPath => f.write_str(
                "a `__Host-` cookie must have Path=/: remove `cookie_path(..)` \
                 or choose a name without the `__Host-` prefix",
            ),
            Self::PrefixWithoutSecure => f.write_str(
                "a `__Host-` or `__Secure-` cookie must be Secure: keep Secure on, or choose \
                 a name without the prefix (e.g. `dangerous_insecure_cookie_for_development`)",
            ),
            Self::SameSiteNoneWithoutSecure => f.write_str(
                "SameSite=None requires Secure: keep Secure on or use SameSite=Lax/Strict",
            ),
            Self::InvalidCookieName => f.write_str(
                "cookie name must be a non-empty token (letters, digits and !#$%&'*+-.^_`|~)",
            ),
            Self::InvalidCookieAttribute => {
                f.write_str("cookie path and domain must be visible ASCII without `;` or `,`")
            }
            Self::InvalidStoreSetting { setting, reason } => {
                write!(f, "invalid session store setting `{setting}`: {reason}")
            }
            Self::InvalidTimeout { reason } => write!(f, "invalid session timeout: {reason}"),
        }
    }
}

impl StdError for ConfigError {}
