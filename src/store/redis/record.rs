//! Records as session hashes: the fields the scripts write and `load` reads back.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::SessionError;
use crate::expiry::Expiry;
use crate::id::{SessionHandle, StoreKey};
use crate::store::{Record, SessionInfo};

use super::error::RedisStoreError;
use super::keys::KeyLayout;

/// Lua numbers are doubles: beyond 2^53 milliseconds (about 285,000 years) the scripts'
/// comparisons would lose precision, so such times are refused rather than mangled.
pub(super) const MAX_MILLIS: u64 = (1 << 53) - 1;

pub(super) fn to_millis(time: SystemTime) -> Result<u64, SessionError> {
    time.duration_since(UNIX_EPOCH)
        .ok()
        .and_then(|since| u64::try_from(since.as_millis()).ok())
        .filter(|millis| *millis <= MAX_MILLIS)
        .ok_or_else(|| SessionError::store(RedisStoreError::TimeOutOfRange))
}

pub(super) fn from_millis(millis: u64) -> Option<SystemTime> {
    UNIX_EPOCH.checked_add(Duration::from_millis(millis))
}

/// A record as the scripts write it: its deadline, its index key, and the hash's field/value
/// pairs.
pub(super) struct EncodedRecord {
    pub(super) expires: u64,
    pub(super) index: Option<String>,
    pub(super) fields: Vec<(&'static str, Vec<u8>)>,
}

pub(super) fn encode_record(
    layout: &KeyLayout,
    record: &Record,
) -> Result<EncodedRecord, SessionError> {
    let expires = to_millis(record.expires_at)?;
    let mut fields = vec![
        ("version", record.version.to_string().into_bytes()),
        (
            "created",
            to_millis(record.created_at)?.to_string().into_bytes(),
        ),
        (
            "active",
            to_millis(record.last_active)?.to_string().into_bytes(),
        ),
        ("expires", expires.to_string().into_bytes()),
        ("data", record.data.clone()),
    ];
    let index = record.user.as_deref().map(|user| layout.index_key(user));
    if let (Some(user), Some(index)) = (&record.user, &index) {
        fields.push(("user", user.clone().into_bytes()));
        fields.push(("ix", index.clone().into_bytes()));
    }
    if let Some(expiry) = &record.expiry {
        fields.push(("expiry", serde_json::to_vec(expiry)?));
    }
    Ok(EncodedRecord {
        expires,
        index,
        fields,
    })
}

/// One live session as `sessions_of`'s script lists it: member, created, active, expires.
pub(super) fn decode_info(entry: &[String]) -> Result<SessionInfo, SessionError> {
    let malformed = || SessionError::store(RedisStoreError::UnexpectedReply("sessions_of"));
    let time = |text: &str| {
        text.parse()
            .ok()
            .and_then(from_millis)
            .ok_or_else(malformed)
    };
    match entry {
        [member, created, active, expires] => Ok(SessionInfo {
            handle: SessionHandle::from_store_key(
                StoreKey::from_hex(member).ok_or_else(malformed)?,
            ),
            created_at: time(created)?,
            last_active: time(active)?,
            expires_at: time(expires)?,
        }),
        _ => Err(malformed()),
    }
}

pub(super) fn decode_record(mut fields: HashMap<String, Vec<u8>>) -> Result<Record, SessionError> {
    let malformed = |name| SessionError::store(RedisStoreError::MalformedRecord(name));
    let mut text = |name: &'static str| -> Result<Option<String>, SessionError> {
        fields
            .remove(name)
            .map(|bytes| String::from_utf8(bytes).map_err(|_| malformed(name)))
            .transpose()
    };
    let mut number = |name: &'static str| -> Result<u64, SessionError> {
        text(name)?
            .and_then(|text| text.parse().ok())
            .ok_or_else(|| malformed(name))
    };
    let mut time = |name: &'static str| -> Result<SystemTime, SessionError> {
        from_millis(number(name)?).ok_or_else(|| malformed(name))
    };
    let created_at = time("created")?;
    let last_active = time("active")?;
    let expires_at = time("expires")?;
    let version = number("version")?;
    let user = text("user")?;
    let expiry = fields
        .remove("expiry")
        .map(|json| serde_json::from_slice::<Expiry>(&json).map_err(|_| malformed("expiry")))
        .transpose()?;
    let data = fields.remove("data").ok_or_else(|| malformed("data"))?;
    Ok(Record {
        version,
        user,
        created_at,
        last_active,
        expires_at,
        expiry,
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::redis::DEFAULT_EXPIRY_GRACE;

    fn layout(prefix: &str) -> KeyLayout {
        KeyLayout::new(prefix.to_owned(), DEFAULT_EXPIRY_GRACE)
    }

    #[test]
    fn records_round_trip_through_the_hash_fields() {
        let layout = layout("app:");
        let at = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        let record = Record {
            version: u64::MAX,
            user: Some("bob".to_owned()),
            created_at: at,
            last_active: at + Duration::from_millis(5),
            expires_at: at + Duration::from_secs(60),
            expiry: Some(Expiry::AtDateTime(at + Duration::from_nanos(7))),
            data: vec![0, 255, b'{', b'}'],
        };
        let encoded = encode_record(&layout, &record).expect("encodes");
        assert_eq!(encoded.index.as_deref(), Some("app:u:Ym9i"));
        let fields = encoded
            .fields
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value))
            .collect();
        assert_eq!(decode_record(fields).expect("decodes"), record);
    }

    #[test]
    fn malformed_hashes_are_errors_not_panics() {
        let mut fields = HashMap::new();
        fields.insert("version".to_owned(), b"not a number".to_vec());
        assert!(matches!(decode_record(fields), Err(SessionError::Store(_))));
        let mut fields = HashMap::new();
        fields.insert("data".to_owned(), Vec::new());
        assert!(matches!(decode_record(fields), Err(SessionError::Store(_))));
    }

    #[test]
    fn times_out_of_range_are_refused() {
        assert!(to_millis(UNIX_EPOCH - Duration::from_secs(1)).is_err());
        assert!(to_millis(UNIX_EPOCH + Duration::from_millis(MAX_MILLIS + 1)).is_err());
        assert_eq!(
            to_millis(UNIX_EPOCH + Duration::from_micros(1_500)).ok(),
            Some(1)
        );
    }
}
