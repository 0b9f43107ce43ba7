//! How the store's failures become [`StoreError`]s.
//!
//! - an I/O failure, a refused, reset, closed or dropped connection, a `redis` timeout that
//!   fires before the store's own, a server that is loading its dataset, failing over or
//!   whose cluster is down: [`StoreError::Unavailable`], with the [`redis::RedisError`] as
//!   the source;
//! - a reply that does not convert to what the command or script returns:
//!   [`StoreError::UnexpectedReply`];
//! - any other error of the server or the client: [`StoreError::Backend`], with the
//!   [`redis::RedisError`] as the source.
//!
//! Records that do not decode are [`StoreError::Corrupt`] (see `record.rs`), and the
//! store's own timeout is [`StoreError::Timeout`] (see `connection.rs`).

use redis::{ErrorKind, RedisError, ServerErrorKind};

use crate::store::StoreError;

/// The most characters of a reply kept in [`StoreError::UnexpectedReply`]: enough to show
/// its shape, not enough to copy much of a session into a log.
const MAX_REPLY_CHARS: usize = 200;

/// The [`StoreError`] for `error`, raised by `operation`.
pub(super) fn redis_failure(operation: &'static str, error: RedisError) -> StoreError {
    if is_unavailable(&error) {
        return StoreError::Unavailable(Box::new(error));
    }
    match error.kind() {
        ErrorKind::UnexpectedReturnType | ErrorKind::Parse => {
            unexpected_reply(operation, &error.to_string())
        }
        _ => StoreError::Backend(Box::new(error)),
    }
}

/// A reply of the wrong shape to `operation`, described by `reply`.
pub(super) fn unexpected_reply(operation: &'static str, reply: &str) -> StoreError {
    let reply = match reply.char_indices().nth(MAX_REPLY_CHARS) {
        Some((end, _)) => format!("{}...", &reply[..end]),
        None => reply.to_owned(),
    };
    StoreError::UnexpectedReply { operation, reply }
}

/// Whether `error` means the server cannot be reached or cannot serve right now, and will
/// again once it is back.
fn is_unavailable(error: &RedisError) -> bool {
    error.is_io_error()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_timeout()
        || matches!(
            error.kind(),
            ErrorKind::ClusterConnectionNotFound
                | ErrorKind::Server(
                    ServerErrorKind::BusyLoading
                        | ServerErrorKind::MasterDown
                        | ServerErrorKind::ClusterDown
                        | ServerErrorKind::TryAgain
                )
        )
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::*;

    #[test]
    fn connection_failures_are_unavailable_and_keep_their_source() {
        for kind in [
            io::ErrorKind::ConnectionRefused,
            io::ErrorKind::ConnectionReset,
            io::ErrorKind::BrokenPipe,
            io::ErrorKind::TimedOut,
            io::ErrorKind::Other,
        ] {
            let error = redis_failure("load", RedisError::from(io::Error::new(kind, "down")));
            match error {
                StoreError::Unavailable(source) => {
                    assert!(source.downcast_ref::<RedisError>().is_some(), "{kind:?}");
                }
                other => panic!("{kind:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn wrong_replies_and_other_errors_are_told_apart() {
        let wrong = RedisError::from((ErrorKind::UnexpectedReturnType, "not an integer"));
        assert!(matches!(
            redis_failure("save", wrong),
            StoreError::UnexpectedReply {
                operation: "save",
                ..
            }
        ));
        let other = RedisError::from((ErrorKind::Client, "refused by the client"));
        assert!(matches!(
            redis_failure("save", other),
            StoreError::Backend(_)
        ));
    }

    #[test]
    fn long_replies_are_cut() {
        let StoreError::UnexpectedReply { reply, .. } = unexpected_reply("load", &"é".repeat(500))
        else {
            panic!("not an unexpected reply");
        };
        assert_eq!(reply.chars().count(), MAX_REPLY_CHARS + 3);
    }
}
