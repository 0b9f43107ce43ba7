//! How the store's failures become [`StoreError`]s.
//!
//! - `SQLITE_BUSY` and `SQLITE_LOCKED` (with any extended code: another connection or
//!   process held the database's lock past the busy timeout),
//!   [`sqlx::Error::Io`], [`PoolTimedOut`](sqlx::Error::PoolTimedOut),
//!   [`PoolClosed`](sqlx::Error::PoolClosed) and
//!   [`WorkerCrashed`](sqlx::Error::WorkerCrashed): [`StoreError::Unavailable`], with the
//!   [`sqlx::Error`] as the source;
//! - a column that does not decode ([`ColumnDecode`](sqlx::Error::ColumnDecode),
//!   [`Decode`](sqlx::Error::Decode)): [`StoreError::Corrupt`], naming the column;
//! - a reply of unexpected shape ([`ColumnNotFound`](sqlx::Error::ColumnNotFound),
//!   [`ColumnIndexOutOfBounds`](sqlx::Error::ColumnIndexOutOfBounds),
//!   [`RowNotFound`](sqlx::Error::RowNotFound)): [`StoreError::UnexpectedReply`];
//! - any other error (a missing table, a file that cannot be opened or is not a database,
//!   a full disk, a bad URL): [`StoreError::Backend`], with the [`sqlx::Error`] as the
//!   source.

use crate::store::StoreError;

/// SQLite's primary result codes for a database locked by another connection.
const SQLITE_BUSY: i32 = 5;
const SQLITE_LOCKED: i32 = 6;

/// The most characters of a reply kept in [`StoreError::UnexpectedReply`].
const MAX_REPLY_CHARS: usize = 200;

/// The columns of the sessions table, to name the field of a [`StoreError::Corrupt`] with a
/// `&'static str`.
const COLUMNS: [&str; 10] = [
    "key",
    "version",
    "user_id",
    "created_at",
    "last_active",
    "expires_at",
    "expiry",
    "data",
    "label",
    "format",
];

/// The [`StoreError`] for `error`, raised by `operation`.
pub(super) fn sqlx_failure(operation: &'static str, error: sqlx::Error) -> StoreError {
    if is_unavailable(&error) {
        return StoreError::Unavailable(Box::new(error));
    }
    match error {
        sqlx::Error::ColumnDecode { index, source } => StoreError::Corrupt {
            field: column_name(&index),
            reason: source.to_string(),
        },
        sqlx::Error::Decode(source) => StoreError::corrupt("row", source),
        sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::ColumnIndexOutOfBounds { .. }
        | sqlx::Error::RowNotFound => unexpected_reply(operation, &error.to_string()),
        error => StoreError::Backend(Box::new(error)),
    }
}

/// [`sqlx_failure`] for a statement whose answer is not a stored record (a count): a value
/// there that does not decode is an unexpected reply, not a corrupt record.
pub(super) fn reply_failure(operation: &'static str, error: sqlx::Error) -> StoreError {
    match error {
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
            unexpected_reply(operation, &error.to_string())
        }
        error => sqlx_failure(operation, error),
    }
}

/// Whether `error` is a primary or secondary key that is taken.
pub(super) fn is_unique_violation(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .is_some_and(|error| error.kind() == sqlx::error::ErrorKind::UniqueViolation)
}

fn unexpected_reply(operation: &'static str, reply: &str) -> StoreError {
    let reply = match reply.char_indices().nth(MAX_REPLY_CHARS) {
        Some((end, _)) => format!("{}...", &reply[..end]),
        None => reply.to_owned(),
    };
    StoreError::UnexpectedReply { operation, reply }
}

/// Whether `error` means the database cannot serve right now and will again once the
/// lock holder or the pool is back.
fn is_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(error) => error
            .code()
            .and_then(|code| code.parse::<i32>().ok())
            // Extended codes (SQLITE_BUSY_SNAPSHOT, ...) keep the primary code in the low byte.
            .is_some_and(|code| matches!(code & 0xff, SQLITE_BUSY | SQLITE_LOCKED)),
        _ => false,
    }
}

/// The column named by the `index` of a [`sqlx::Error::ColumnDecode`], or `row`.
fn column_name(index: &str) -> &'static str {
    let name = index.trim_matches('"');
    COLUMNS
        .into_iter()
        .find(|column| *column == name)
        .unwrap_or("row")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_map_to_what_a_caller_can_act_on() {
        assert!(matches!(
            sqlx_failure("load", sqlx::Error::PoolTimedOut),
            StoreError::Unavailable(_)
        ));
        let decode = sqlx::Error::ColumnDecode {
            index: "\"expires_at\"".to_owned(),
            source: "bad".into(),
        };
        assert!(matches!(
            sqlx_failure("load", decode),
            StoreError::Corrupt {
                field: "expires_at",
                ..
            }
        ));
        assert!(matches!(
            sqlx_failure("load", sqlx::Error::ColumnNotFound("data".to_owned())),
            StoreError::UnexpectedReply {
                operation: "load",
                ..
            }
        ));
        assert!(matches!(
            sqlx_failure("load", sqlx::Error::Protocol("odd".to_owned())),
            StoreError::Backend(_)
        ));
        let count = sqlx::Error::ColumnDecode {
            index: "0".to_owned(),
            source: "bad".into(),
        };
        assert!(matches!(
            reply_failure("revoke_user", count),
            StoreError::UnexpectedReply { .. }
        ));
    }
}
