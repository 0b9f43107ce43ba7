//! Records as rows: binding a record's columns and reading them back.
//!
//! Times are `INTEGER` milliseconds since the Unix epoch, converted by the shared
//! [`to_unix_millis`] and [`from_unix_millis`]; a stored time that is negative or past what
//! stores keep is a [`StoreError::Corrupt`] naming its column.

use std::time::SystemTime;

use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{Arguments, Row, Sqlite};

use crate::expiry::Expiry;
use crate::id::{SessionHandle, StoreKey};
use crate::store::time::{from_unix_millis, to_unix_millis};
use crate::store::{Record, SessionInfo, StoreError};

use super::error::sqlx_failure;

/// The format of the rows this release writes, in their `format` column: 1, the format
/// with `label` (the number the PostgreSQL store gives it too). A row of a later format is
/// treated as missing by `load` and left for the release that wrote it.
pub(super) const RECORD_FORMAT: i64 = 1;

/// `time` as stored: whole milliseconds since 1970, rounded down
/// ([`StoreError::TimeOutOfRange`] naming `field` before 1970).
pub(super) fn to_millis(time: SystemTime, field: &'static str) -> Result<i64, StoreError> {
    // At most 2^53 - 1: always fits.
    i64::try_from(to_unix_millis(time, field)?).map_err(|_| StoreError::TimeOutOfRange { field })
}

/// A count or version as stored in an `INTEGER` column.
pub(super) fn to_integer(value: u64, field: &'static str) -> Result<i64, StoreError> {
    i64::try_from(value)
        .map_err(|_| StoreError::backend(format!("{field} {value} does not fit SQLite's INTEGER")))
}

/// Binds the next parameter.
pub(super) fn push<'q, T>(args: &mut SqliteArguments, value: T) -> Result<(), StoreError>
where
    T: sqlx::Encode<'q, Sqlite> + sqlx::Type<Sqlite> + 'q,
{
    args.add(value).map_err(StoreError::Backend)
}

/// Binds `?1` to the key and `?2`..`?10` to the record's columns, in table order.
pub(super) fn record_arguments(
    key: &StoreKey,
    record: &Record,
) -> Result<SqliteArguments, StoreError> {
    let expiry = record
        .expiry
        .map(|expiry| serde_json::to_string(&expiry))
        .transpose()
        .map_err(StoreError::backend)?;
    let mut args = SqliteArguments::default();
    push(&mut args, key.as_bytes().to_vec())?;
    push(&mut args, to_integer(record.version, "version")?)?;
    push(&mut args, record.user.clone())?;
    push(&mut args, to_millis(record.created_at, "created_at")?)?;
    push(&mut args, to_millis(record.last_active, "last_active")?)?;
    push(&mut args, to_millis(record.expires_at, "expires_at")?)?;
    push(&mut args, expiry)?;
    push(&mut args, record.data.clone())?;
    push(&mut args, record.label.clone())?;
    push(&mut args, RECORD_FORMAT)?;
    Ok(args)
}

/// The column `name` of a row read by `operation`: [`StoreError::Corrupt`] naming it if it
/// does not decode, [`StoreError::UnexpectedReply`] if the row lacks it.
pub(super) fn column<'r, T>(
    row: &'r SqliteRow,
    name: &'static str,
    operation: &'static str,
) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, Sqlite> + sqlx::Type<Sqlite>,
{
    row.try_get(name).map_err(|error| match error {
        sqlx::Error::ColumnDecode { source, .. } => StoreError::corrupt(name, source),
        error => sqlx_failure(operation, error),
    })
}

/// The non-negative integer in the column `name`, which the store never writes negative.
fn unsigned_column(
    row: &SqliteRow,
    name: &'static str,
    operation: &'static str,
) -> Result<u64, StoreError> {
    let value = column::<i64>(row, name, operation)?;
    u64::try_from(value).map_err(|_| StoreError::corrupt(name, format!("negative value {value}")))
}

/// The time in the column `name`.
fn time_column(
    row: &SqliteRow,
    name: &'static str,
    operation: &'static str,
) -> Result<SystemTime, StoreError> {
    from_unix_millis(unsigned_column(row, name, operation)?, name)
        .map_err(|_| StoreError::corrupt(name, "past the largest time a store keeps"))
}

/// The record in a row read by `operation`.
pub(super) fn decode_record(
    row: &SqliteRow,
    operation: &'static str,
) -> Result<Record, StoreError> {
    let expiry = column::<Option<String>>(row, "expiry", operation)?
        .map(|text| serde_json::from_str::<Expiry>(&text))
        .transpose()
        .map_err(|error| StoreError::corrupt("expiry", format!("not a valid Expiry: {error}")))?;
    Ok(Record {
        version: unsigned_column(row, "version", operation)?,
        user: column(row, "user_id", operation)?,
        created_at: time_column(row, "created_at", operation)?,
        last_active: time_column(row, "last_active", operation)?,
        expires_at: time_column(row, "expires_at", operation)?,
        expiry,
        data: column(row, "data", operation)?,
        label: column(row, "label", operation)?,
    })
}

/// The session metadata in a row read by `operation`.
pub(super) fn decode_info(
    row: &SqliteRow,
    operation: &'static str,
) -> Result<SessionInfo, StoreError> {
    let key: Vec<u8> = column(row, "key", operation)?;
    let key = <[u8; 32]>::try_from(key.as_slice())
        .map_err(|_| StoreError::corrupt("key", format!("{} bytes instead of 32", key.len())))?;
    Ok(SessionInfo {
        handle: SessionHandle::from_store_key(StoreKey::from_bytes(key)),
        created_at: time_column(row, "created_at", operation)?,
        last_active: time_column(row, "last_active", operation)?,
        expires_at: time_column(row, "expires_at", operation)?,
        label: column(row, "label", operation)?,
        current: false,
    })
}

/// Whether this release reads the row's format (see [`RECORD_FORMAT`]).
pub(super) fn is_known_format(
    row: &SqliteRow,
    operation: &'static str,
) -> Result<bool, StoreError> {
    Ok(column::<i64>(row, "format", operation)? <= RECORD_FORMAT)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    #[test]
    fn times_round_down_and_before_1970_is_refused() {
        let whole = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(
            to_millis(whole + Duration::from_micros(999), "t").ok(),
            Some(1_700_000_000_123)
        );
        assert!(matches!(
            to_millis(UNIX_EPOCH - Duration::from_millis(1), "created_at"),
            Err(StoreError::TimeOutOfRange {
                field: "created_at"
            })
        ));
        assert!(matches!(
            to_integer(u64::MAX, "v"),
            Err(StoreError::Backend(_))
        ));
    }
}
