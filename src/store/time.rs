//! The one conversion between `SystemTime` and Unix milliseconds, used by every store.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::StoreError;

/// The largest time a store keeps: 2^53 - 1 ms after 1970 (about 285,000 years), so that a
/// time is exact as a Lua or JSON number too.
const MAX_MILLIS: u64 = (1 << 53) - 1;

/// `time` in whole milliseconds since 1970, rounded down.
///
/// Fails with [`StoreError::TimeOutOfRange`], naming `field`, for a time before 1970 or
/// after 2^53 - 1 ms.
pub fn to_unix_millis(time: SystemTime, field: &'static str) -> Result<u64, StoreError> {
    let since = time
        .duration_since(UNIX_EPOCH)
        .map_err(|_| StoreError::TimeOutOfRange { field })?;
    let millis = since
        .as_secs()
        .checked_mul(1000)
        .and_then(|ms| ms.checked_add(u64::from(since.subsec_millis())))
        .filter(|&ms| ms <= MAX_MILLIS)
        .ok_or(StoreError::TimeOutOfRange { field })?;
    Ok(millis)
}

/// The time `millis` milliseconds after 1970.
///
/// Fails with [`StoreError::TimeOutOfRange`] above 2^53 - 1 ms, which no store writes; a
/// stored value that is negative is the caller's to refuse as [`StoreError::Corrupt`].
pub fn from_unix_millis(millis: u64, field: &'static str) -> Result<SystemTime, StoreError> {
    if millis > MAX_MILLIS {
        return Err(StoreError::TimeOutOfRange { field });
    }
    Ok(UNIX_EPOCH + Duration::from_millis(millis))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_whole_milliseconds_and_refuses_what_stores_cannot_keep() {
        let time = UNIX_EPOCH + Duration::from_millis(1_764_000_000_123);
        assert_eq!(to_unix_millis(time, "t").unwrap(), 1_764_000_000_123);
        assert_eq!(from_unix_millis(1_764_000_000_123, "t").unwrap(), time);
        // Sub-millisecond parts are dropped, never rounded up.
        let later = time + Duration::from_micros(999);
        assert_eq!(to_unix_millis(later, "t").unwrap(), 1_764_000_000_123);
        assert_eq!(to_unix_millis(UNIX_EPOCH, "t").unwrap(), 0);
        let before = UNIX_EPOCH - Duration::from_millis(1);
        assert!(matches!(
            to_unix_millis(before, "created_at"),
            Err(StoreError::TimeOutOfRange {
                field: "created_at"
            })
        ));
        let max = from_unix_millis(MAX_MILLIS, "t").unwrap();
        assert_eq!(to_unix_millis(max, "t").unwrap(), MAX_MILLIS);
        assert!(to_unix_millis(max + Duration::from_millis(1), "t").is_err());
        assert!(from_unix_millis(MAX_MILLIS + 1, "t").is_err());
    }
}
