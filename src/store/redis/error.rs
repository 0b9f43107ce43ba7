//! The errors the store raises itself, as the source of a
//! [`SessionError::Store`](crate::SessionError::Store).

use std::fmt;

use super::{INDEX_PAGE, MAX_INDEX_PAGES};

/// Data read back from Redis that is not what this store writes, or a value it cannot write.
#[derive(Debug)]
pub(super) enum RedisStoreError {
    /// A session hash lacks a field or holds one that does not parse.
    MalformedRecord(&'static str),
    /// A script answered something its code cannot return.
    UnexpectedReply(&'static str),
    /// A time before the Unix epoch or too far in the future to be kept in milliseconds.
    TimeOutOfRange,
    /// `connection_config` was set on a builder made from an existing manager.
    ConfigForManager,
    /// `sessions_of` or `revoke_user` walked [`MAX_INDEX_PAGES`] pages of one user's index
    /// without reaching its end.
    IndexTooLarge(&'static str),
}

impl fmt::Display for RedisStoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MalformedRecord(field) => write!(
                f,
                "stored session record has a missing or malformed `{field}` field \
                 (was the key written by something other than this store?)"
            ),
            Self::UnexpectedReply(script) => {
                write!(f, "unexpected reply from the `{script}` script")
            }
            Self::TimeOutOfRange => f.write_str(
                "time cannot be stored: it is before 1970 or more than 2^53 ms after it",
            ),
            Self::ConfigForManager => f.write_str(
                "`connection_config` has no effect on a store built from an existing \
                 ConnectionManager: configure the manager instead",
            ),
            Self::IndexTooLarge(operation) => write!(
                f,
                "`{operation}` gave up after {MAX_INDEX_PAGES} pages of {INDEX_PAGE} members \
                 of one user's index (are sessions of that user created as fast as they are \
                 removed?)"
            ),
        }
    }
}

impl std::error::Error for RedisStoreError {}
