//! How the store's failures become [`StoreError`]s.
//!
//! - [`sqlx::Error::Io`] (a refused, reset or closed connection), [`Tls`](sqlx::Error::Tls),
//!   [`PoolTimedOut`](sqlx::Error::PoolTimedOut), [`PoolClosed`](sqlx::Error::PoolClosed),
//!   [`WorkerCrashed`](sqlx::Error::WorkerCrashed), and a server error saying that the
//!   connection is gone or the server is shutting down or starting up (SQLSTATE class `08`,
//!   `57P01`, `57P02`, `57P03`): [`StoreError::Unavailable`], with the [`sqlx::Error`] as
//!   the source;
//! - a column that does not decode ([`ColumnDecode`](sqlx::Error::ColumnDecode),
//!   [`Decode`](sqlx::Error::Decode)): [`StoreError::Corrupt`], naming the column;
//! - a reply of unexpected shape ([`ColumnNotFound`](sqlx::Error::ColumnNotFound),
//!   [`ColumnIndexOutOfBounds`](sqlx::Error::ColumnIndexOutOfBounds),
//!   [`RowNotFound`](sqlx::Error::RowNotFound) where a row is required,
//!   [`TypeNotFound`](sqlx::Error::TypeNotFound)): [`StoreError::UnexpectedReply`];
//! - any other error (a statement the server refuses, a bad connection URL, a failed
//!   login): [`StoreError::Backend`], with the [`sqlx::Error`] as the source.
//!
//! Values in a row that decode but make no sense (a negative time or version, an `expiry`
//! that is not an [`Expiry`](crate::Expiry)) are [`StoreError::Corrupt`] too (see `row.rs`),
//! and the store's own timeout is [`StoreError::Timeout`] (see [`within`](crate::store::within)).

use crate::store::StoreError;

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
        | sqlx::Error::RowNotFound
        | sqlx::Error::TypeNotFound { .. } => unexpected_reply(operation, &error.to_string()),
        error => StoreError::Backend(Box::new(error)),
    }
}

/// [`sqlx_failure`] for a statement whose answer is not a stored record (a count, a catalog
/// lookup): a value there that does not decode is an unexpected reply, not a corrupt record.
pub(super) fn reply_failure(operation: &'static str, error: sqlx::Error) -> StoreError {
    match error {
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
            unexpected_reply(operation, &error.to_string())
        }
        error => sqlx_failure(operation, error),
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
fn is_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(error) => error.code().is_some_and(|code| {
            // connection_exception, admin_shutdown, crash_shutdown, cannot_connect_now.
            code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03")
        }),
        _ => false,
    }
}

/// The column named by the `index` of a [`sqlx::Error::ColumnDecode`] (the index as sqlx
/// formats it: `"expires_at"`, quotes included, or a position), or `row` if it is none of
/// the table's.
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
    fn every_column_of_the_table_is_named_in_a_corrupt_error() {
        for column in ["label", "format", "expires_at"] {
            let decode = sqlx::Error::ColumnDecode {
                index: format!("\"{column}\""),
                source: "bad".into(),
            };
            assert!(
                matches!(sqlx_failure("load", decode), StoreError::Corrupt { field, .. } if field == column),
                "{column}"
            );
        }
    }

    #[test]
    fn failures_map_to_what_a_caller_can_act_on() {
        let io = std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "closed");
        assert!(matches!(
            sqlx_failure("load", sqlx::Error::Io(io)),
            StoreError::Unavailable(_)
        ));
        assert!(matches!(
            sqlx_failure("load", sqlx::Error::PoolTimedOut),
            StoreError::Unavailable(_)
        ));
        assert!(matches!(
            sqlx_failure("load", sqlx::Error::PoolClosed),
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
            sqlx_failure("revoke_user", sqlx::Error::RowNotFound),
            StoreError::UnexpectedReply { .. }
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
