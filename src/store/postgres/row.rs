//! Records as rows: binding a record's columns, reading them back, and the store's errors.

use std::error::Error as StdError;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::encode::Encode;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::types::Type;
use sqlx::{Arguments, Postgres, Row};

use crate::error::SessionError;
use crate::expiry::Expiry;
use crate::id::{SessionHandle, StoreKey};
use crate::store::{Record, SessionInfo};

/// Errors raised by the store itself, reported as the source of a [`SessionError::Store`].
#[derive(Debug)]
pub(super) enum StoreError {
    /// A time or version that does not fit the table's `BIGINT` columns.
    OutOfRange { field: &'static str },
    /// A row that does not decode into a record.
    MalformedRow {
        problem: &'static str,
        source: Option<serde_json::Error>,
    },
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OutOfRange { field } => write!(
                f,
                "{field} does not fit the sessions table (a 64-bit integer of milliseconds \
                 or versions)"
            ),
            Self::MalformedRow { problem, .. } => {
                write!(f, "malformed row in the sessions table: {problem}")
            }
        }
    }
}

impl StdError for StoreError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Self::MalformedRow {
                source: Some(source),
                ..
            } => Some(source),
            _ => None,
        }
    }
}

pub(super) fn malformed(problem: &'static str) -> SessionError {
    SessionError::store(StoreError::MalformedRow {
        problem,
        source: None,
    })
}

/// Milliseconds since the epoch, rounded down (also before the epoch), so a stored deadline
/// is never later than the real one.
pub(super) fn to_millis(time: SystemTime, field: &'static str) -> Result<i64, SessionError> {
    let millis = match time.duration_since(UNIX_EPOCH) {
        Ok(since) => i128::try_from(since.as_millis()).ok(),
        Err(before) => {
            let before = before.duration();
            let partial = i128::from(before.subsec_nanos() % 1_000_000 != 0);
            i128::try_from(before.as_millis())
                .ok()
                .map(|whole| -(whole + partial))
        }
    };
    millis
        .and_then(|millis| i64::try_from(millis).ok())
        .ok_or_else(|| SessionError::store(StoreError::OutOfRange { field }))
}

/// The time `millis` milliseconds after the epoch, as read back from a row.
pub(super) fn from_millis(millis: i64, problem: &'static str) -> Result<SystemTime, SessionError> {
    let offset = Duration::from_millis(millis.unsigned_abs());
    let time = if millis >= 0 {
        UNIX_EPOCH.checked_add(offset)
    } else {
        UNIX_EPOCH.checked_sub(offset)
    };
    time.ok_or_else(|| malformed(problem))
}

pub(super) fn to_version(version: u64, field: &'static str) -> Result<i64, SessionError> {
    i64::try_from(version).map_err(|_| SessionError::store(StoreError::OutOfRange { field }))
}

pub(super) fn push<'t, T>(args: &mut PgArguments, value: T) -> Result<(), SessionError>
where
    T: Encode<'t, Postgres> + Type<Postgres>,
{
    args.add(value).map_err(SessionError::store)
}

/// Binds `$1` to the key and `$2`..`$8` to the record's columns, in table order.
pub(super) fn record_arguments(
    key: &StoreKey,
    record: &Record,
) -> Result<PgArguments, SessionError> {
    let expiry = record
        .expiry
        .map(|expiry| serde_json::to_string(&expiry))
        .transpose()
        .map_err(SessionError::store)?;
    let mut args = PgArguments::default();
    push(&mut args, key.as_bytes().as_slice())?;
    push(&mut args, to_version(record.version, "version")?)?;
    push(&mut args, record.user.as_deref())?;
    push(&mut args, to_millis(record.created_at, "created_at")?)?;
    push(&mut args, to_millis(record.last_active, "last_active")?)?;
    push(&mut args, to_millis(record.expires_at, "expires_at")?)?;
    push(&mut args, expiry)?;
    push(&mut args, record.data.as_slice())?;
    Ok(args)
}

pub(super) fn column<'r, T>(row: &'r PgRow, name: &str) -> Result<T, SessionError>
where
    T: sqlx::Decode<'r, Postgres> + Type<Postgres>,
{
    row.try_get(name).map_err(SessionError::store)
}

pub(super) fn decode_record(row: &PgRow) -> Result<Record, SessionError> {
    let version =
        u64::try_from(column::<i64>(row, "version")?).map_err(|_| malformed("negative version"))?;
    let expiry = column::<Option<String>>(row, "expiry")?
        .map(|text| serde_json::from_str::<Expiry>(&text))
        .transpose()
        .map_err(|source| {
            SessionError::store(StoreError::MalformedRow {
                problem: "expiry is not a valid Expiry",
                source: Some(source),
            })
        })?;
    Ok(Record {
        version,
        user: column(row, "user_id")?,
        created_at: from_millis(column(row, "created_at")?, "created_at out of range")?,
        last_active: from_millis(column(row, "last_active")?, "last_active out of range")?,
        expires_at: from_millis(column(row, "expires_at")?, "expires_at out of range")?,
        expiry,
        data: column(row, "data")?,
    })
}

pub(super) fn decode_info(row: &PgRow) -> Result<SessionInfo, SessionError> {
    let key: Vec<u8> = column(row, "key")?;
    let key = <[u8; 32]>::try_from(key.as_slice()).map_err(|_| malformed("key is not 32 bytes"))?;
    Ok(SessionInfo {
        handle: SessionHandle::from_store_key(StoreKey::from_bytes(key)),
        created_at: from_millis(column(row, "created_at")?, "created_at out of range")?,
        last_active: from_millis(column(row, "last_active")?, "last_active out of range")?,
        expires_at: from_millis(column(row, "expires_at")?, "expires_at out of range")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millis_round_down_and_round_trip() {
        let whole = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(to_millis(whole, "t").ok(), Some(1_700_000_000_123));
        assert_eq!(from_millis(1_700_000_000_123, "t").ok(), Some(whole));
        let partial = whole + Duration::from_micros(999);
        assert_eq!(to_millis(partial, "t").ok(), Some(1_700_000_000_123));
        let before = UNIX_EPOCH - Duration::from_micros(1_500);
        assert_eq!(to_millis(before, "t").ok(), Some(-2));
        assert_eq!(
            from_millis(-2, "t").ok(),
            Some(UNIX_EPOCH - Duration::from_millis(2))
        );
    }

    #[test]
    fn versions_beyond_bigint_are_refused() {
        assert_eq!(to_version(7, "v").ok(), Some(7));
        assert!(matches!(
            to_version(u64::MAX, "v"),
            Err(SessionError::Store(_))
        ));
    }
}
