//! Records as rows: binding a record's columns and reading them back.
//!
//! Times are stored as `BIGINT` milliseconds since the Unix epoch, converted by the shared
//! [`to_unix_millis`] and [`from_unix_millis`]: a time to store before 1970 (or past 2^53 - 1
//! ms) is a [`StoreError::TimeOutOfRange`]; a stored time that is negative or past that
//! bound is a [`StoreError::Corrupt`] naming its column.

use std::time::SystemTime;

use sqlx::encode::Encode;
use sqlx::mysql::{MySqlArguments, MySqlRow};
use sqlx::types::Type;
use sqlx::{Arguments, MySql, Row};

use crate::expiry::Expiry;
use crate::id::{SessionHandle, StoreKey};
use crate::store::time::{from_unix_millis, to_unix_millis};
use crate::store::{Record, SessionInfo, StoreError};

use super::error::sqlx_failure;

/// `time` as stored in a `BIGINT` column: whole milliseconds since 1970, rounded down.
///
/// Fails with [`StoreError::TimeOutOfRange`], naming `field`, for a time before 1970 or past
/// 2^53 - 1 ms.
pub(super) fn to_millis(time: SystemTime, field: &'static str) -> Result<i64, StoreError> {
    let millis = to_unix_millis(time, field)?;
    // At most 2^53 - 1: always fits.
    i64::try_from(millis).map_err(|_| StoreError::TimeOutOfRange { field })
}

/// The time stored as `millis` in the column `field`.
///
/// Fails with [`StoreError::Corrupt`] for a negative value or one past 2^53 - 1 ms, which
/// the store never writes.
pub(super) fn from_millis(millis: i64, field: &'static str) -> Result<SystemTime, StoreError> {
    let millis = u64::try_from(millis)
        .map_err(|_| StoreError::corrupt(field, format!("negative time {millis}")))?;
    from_unix_millis(millis, field).map_err(|_| {
        StoreError::corrupt(
            field,
            format!("time {millis} is past the largest a store keeps (2^53 - 1 ms)"),
        )
    })
}

/// A version as stored in the `BIGINT` column.
pub(super) fn to_version(version: u64, field: &'static str) -> Result<i64, StoreError> {
    i64::try_from(version).map_err(|_| {
        StoreError::backend(format!(
            "{field} {version} does not fit the sessions table's BIGINT column"
        ))
    })
}

/// Binds the next parameter.
pub(super) fn push<'t, T>(args: &mut MySqlArguments, value: T) -> Result<(), StoreError>
where
    T: Encode<'t, MySql> + Type<MySql>,
{
    args.add(value).map_err(StoreError::Backend)
}

/// The format of the rows this release writes, in their `format` column.
///
/// - 1: the first format of this store, with `label`.
///
/// A row of a later format is treated as missing by `load` (the user logs in again) and left
/// for the release that wrote it.
pub(super) const RECORD_FORMAT: i16 = 1;

/// Binds the record's columns after the key: version, user, times, expiry, data, label and
/// format, in table order.
pub(super) fn push_record(args: &mut MySqlArguments, record: &Record) -> Result<(), StoreError> {
    let expiry = record
        .expiry
        .map(|expiry| serde_json::to_string(&expiry))
        .transpose()
        .map_err(StoreError::backend)?;
    push(args, to_version(record.version, "version")?)?;
    push(args, record.user.as_deref().map(str::as_bytes))?;
    push(args, to_millis(record.created_at, "created_at")?)?;
    push(args, to_millis(record.last_active, "last_active")?)?;
    push(args, to_millis(record.expires_at, "expires_at")?)?;
    push(args, expiry)?;
    push(args, record.data.as_slice())?;
    push(args, record.label.as_deref())?;
    push(args, RECORD_FORMAT)
}

/// The column `name` of a row read by `operation`: [`StoreError::Corrupt`] naming it if it
/// does not decode, [`StoreError::UnexpectedReply`] if the row lacks it.
pub(super) fn column<'r, T>(
    row: &'r MySqlRow,
    name: &'static str,
    operation: &'static str,
) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, MySql> + Type<MySql>,
{
    row.try_get(name).map_err(|error| match error {
        sqlx::Error::ColumnDecode { source, .. } => StoreError::corrupt(name, source),
        error => sqlx_failure(operation, error),
    })
}

/// The time in the column `name`.
fn time_column(
    row: &MySqlRow,
    name: &'static str,
    operation: &'static str,
) -> Result<SystemTime, StoreError> {
    from_millis(column(row, name, operation)?, name)
}

/// The user in the `user_id` column, kept as bytes so that names compare exactly.
fn user_column(row: &MySqlRow, operation: &'static str) -> Result<Option<String>, StoreError> {
    column::<Option<Vec<u8>>>(row, "user_id", operation)?
        .map(|bytes| {
            String::from_utf8(bytes)
                .map_err(|_| StoreError::corrupt("user_id", "not valid UTF-8".to_owned()))
        })
        .transpose()
}

/// The record in a row read by `operation`.
pub(super) fn decode_record(row: &MySqlRow, operation: &'static str) -> Result<Record, StoreError> {
    let version = column::<i64>(row, "version", operation)?;
    let version = u64::try_from(version)
        .map_err(|_| StoreError::corrupt("version", format!("negative version {version}")))?;
    let expiry = column::<Option<String>>(row, "expiry", operation)?
        .map(|text| serde_json::from_str::<Expiry>(&text))
        .transpose()
        .map_err(|error| StoreError::corrupt("expiry", format!("not a valid Expiry: {error}")))?;
    Ok(Record {
        version,
        user: user_column(row, operation)?,
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
    row: &MySqlRow,
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
pub(super) fn is_known_format(row: &MySqlRow, operation: &'static str) -> Result<bool, StoreError> {
    Ok(column::<i16>(row, "format", operation)? <= RECORD_FORMAT)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    #[test]
    fn millis_round_down_and_round_trip() {
        let whole = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(to_millis(whole, "t").ok(), Some(1_700_000_000_123));
        assert_eq!(from_millis(1_700_000_000_123, "t").ok(), Some(whole));
        let partial = whole + Duration::from_micros(999);
        assert_eq!(to_millis(partial, "t").ok(), Some(1_700_000_000_123));
    }

    #[test]
    fn negative_stored_times_and_huge_versions_are_refused() {
        assert!(matches!(
            from_millis(-2, "expires_at"),
            Err(StoreError::Corrupt {
                field: "expires_at",
                ..
            })
        ));
        assert!(matches!(
            to_version(u64::MAX, "v"),
            Err(StoreError::Backend(_))
        ));
    }
}
