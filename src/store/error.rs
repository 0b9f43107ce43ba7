//! [`StoreError`]: how a store operation failed, in terms a caller can act on.

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use crate::BoxError;

/// A store operation failed.
///
/// Every store reports its failures with these variants, whatever its backend, so that an
/// application can tell a store that is down (retry later, fail over) from one holding a
/// record it cannot read (a bug or a tampered database) or one that lacks a feature. The
/// backend's own error, where there is one, is the [`source`](StdError::source).
#[derive(Debug)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend could not be reached or dropped the connection.
    ///
    /// Likely cause: the server is down, restarting, or unreachable from this host; the
    /// connection pool is closed. Operations succeed again once it is back, without
    /// restarting the application.
    Unavailable(BoxError),
    /// An operation, connecting included, did not finish within the store's timeout and was
    /// abandoned.
    ///
    /// Likely cause: the server is paused, overloaded or unreachable. Each remote store's
    /// builder sets the timeout (`operation_timeout`, default 2 seconds).
    Timeout {
        /// The operation that timed out (`load`, `save`, ...).
        operation: &'static str,
        /// The timeout it exceeded.
        timeout: Duration,
    },
    /// A stored record could not be read back.
    ///
    /// Likely cause: the record was written by something other than this crate, edited by
    /// hand, or damaged. The session behind it cannot be used; deleting it is safe.
    Corrupt {
        /// The record's field that failed to decode (`data`, `created_at`, ...).
        field: &'static str,
        /// What was wrong with it.
        reason: String,
    },
    /// The backend answered with something the store does not expect.
    ///
    /// Likely cause: a server version, module or proxy that changes replies; a script or
    /// schema from another release of this crate.
    UnexpectedReply {
        /// The operation that got the reply.
        operation: &'static str,
        /// What was received.
        reply: String,
    },
    /// A time outside what stores keep: before 1970, or too far in the future to count in
    /// milliseconds.
    ///
    /// Likely cause: a [`Clock`](crate::Clock) that returns a time before the Unix epoch.
    TimeOutOfRange {
        /// The field that held the time.
        field: &'static str,
    },
    /// The store is full and refused to create a new session.
    ///
    /// Raised by [`MemoryStore`](crate::MemoryStore) when its capacity is reached and neither
    /// an expired nor an anonymous session can be evicted: it is full of authenticated
    /// sessions. Existing sessions keep working.
    CapacityExceeded,
    /// The store does not offer this operation (for example a per-user listing on a store
    /// without a [`UserIndex`](crate::store::UserIndex)).
    Unsupported {
        /// The operation that was asked for.
        operation: &'static str,
    },
    /// Any other failure of the backend: a query or command failed on the server.
    Backend(BoxError),
}

impl StoreError {
    /// A backend that cannot be reached, with its error as the source.
    pub fn unavailable(source: impl Into<BoxError>) -> Self {
        Self::Unavailable(source.into())
    }

    /// A failure of the backend, with its error as the source.
    pub fn backend(source: impl Into<BoxError>) -> Self {
        Self::Backend(source.into())
    }

    /// A stored record whose `field` could not be decoded.
    pub fn corrupt(field: &'static str, reason: impl fmt::Display) -> Self {
        Self::Corrupt {
            field,
            reason: reason.to_string(),
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unavailable(source) => write!(f, "session store is unavailable: {source}"),
            Self::Timeout { operation, timeout } => write!(
                f,
                "session store operation `{operation}` did not finish within {timeout:?}"
            ),
            Self::Corrupt { field, reason } => {
                write!(f, "stored session has a corrupt `{field}`: {reason}")
            }
            Self::UnexpectedReply { operation, reply } => write!(
                f,
                "session store operation `{operation}` got an unexpected reply: {reply}"
            ),
            Self::TimeOutOfRange { field } => write!(
                f,
                "session time `{field}` is before 1970 or too far in the future; check the \
                 layer's clock"
            ),
            Self::CapacityExceeded => f.write_str("session store is full"),
            Self::Unsupported { operation } => match *operation {
                "sessions_of" | "revoke_user" | "revoke" => write!(
                    f,
                    "this session store does not support `{operation}`; use a store with a \
                     per-user index"
                ),
                _ => write!(f, "this session store does not support `{operation}`"),
            },
            Self::Backend(source) => write!(f, "session store operation failed: {source}"),
        }
    }
}

impl StdError for StoreError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Self::Unavailable(source) | Self::Backend(source) => Some(source.as_ref()),
            _ => None,
        }
    }
}
