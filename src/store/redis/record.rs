//! Records as session hashes: the fields the scripts write and `load` reads back.
//!
//! Times are decimal milliseconds since 1970, converted by the shared
//! [`to_unix_millis`] and [`from_unix_millis`]. A hash that does not decode is a
//! [`StoreError::Corrupt`] naming the [`Record`] field it failed on (`created_at` for the
//! hash field `created`, `last_active` for `active`, `expires_at` for `expires`; the others
//! share their names).

use std::collections::HashMap;
use std::time::SystemTime;

use crate::expiry::Expiry;
use crate::id::{SessionHandle, StoreKey};
use crate::store::time::{from_unix_millis, to_unix_millis};
use crate::store::{Record, SessionInfo, StoreError};

use super::error::unexpected_reply;
use super::keys::KeyLayout;

/// The format of the hashes this release writes, in their `format` field.
///
/// - 0 (no `format` field): written before formats were recorded; the same fields as 1
///   without `label`. Read as they are.
/// - 1: adds `format` and the optional `label`.
///
/// A hash of a later format is treated as missing by `load` (the user logs in again) and
/// left for the release that wrote it.
pub(super) const RECORD_FORMAT: u64 = 1;

/// The values `sessions_of`'s script lists per session: member, created, active, expires,
/// label.
pub(super) const LISTED_VALUES: usize = 5;

/// A session hash as `HGETALL` returns it.
pub(super) type Fields = HashMap<String, Vec<u8>>;

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
) -> Result<EncodedRecord, StoreError> {
    let expires = to_unix_millis(record.expires_at, "expires_at")?;
    let mut fields = vec![
        ("version", record.version.to_string().into_bytes()),
        (
            "created",
            to_unix_millis(record.created_at, "created_at")?
                .to_string()
                .into_bytes(),
        ),
        (
            "active",
            to_unix_millis(record.last_active, "last_active")?
                .to_string()
                .into_bytes(),
        ),
        ("expires", expires.to_string().into_bytes()),
        ("data", record.data.clone()),
        ("format", RECORD_FORMAT.to_string().into_bytes()),
    ];
    if let Some(label) = &record.label {
        fields.push(("label", label.clone().into_bytes()));
    }
    let index = record.user.as_deref().map(|user| layout.index_key(user));
    if let (Some(user), Some(index)) = (&record.user, &index) {
        fields.push(("user", user.clone().into_bytes()));
        fields.push(("ix", index.clone().into_bytes()));
    }
    if let Some(expiry) = &record.expiry {
        // The only `Expiry` that does not serialize holds a time before 1970.
        let json = serde_json::to_vec(expiry)
            .map_err(|_| StoreError::TimeOutOfRange { field: "expiry" })?;
        fields.push(("expiry", json));
    }
    Ok(EncodedRecord {
        expires,
        index,
        fields,
    })
}

/// The text of the hash field `name`, if present, decoded as the record's `field`.
fn text(fields: &Fields, name: &str, field: &'static str) -> Result<Option<String>, StoreError> {
    fields
        .get(name)
        .map(|bytes| {
            String::from_utf8(bytes.clone()).map_err(|_| {
                StoreError::corrupt(field, format!("hash field `{name}` is not UTF-8"))
            })
        })
        .transpose()
}

/// The decimal integer in the hash field `name`, decoded as the record's `field`.
fn number(fields: &Fields, name: &str, field: &'static str) -> Result<u64, StoreError> {
    let text = text(fields, name, field)?
        .ok_or_else(|| StoreError::corrupt(field, format!("hash field `{name}` is missing")))?;
    parse_number(&text, name, field)
}

fn parse_number(text: &str, name: &str, field: &'static str) -> Result<u64, StoreError> {
    text.parse().map_err(|_| {
        StoreError::corrupt(
            field,
            format!("hash field `{name}` is not a non-negative decimal integer"),
        )
    })
}

/// The time in the hash field `name` (milliseconds since 1970), decoded as the record's
/// `field`.
fn time(fields: &Fields, name: &str, field: &'static str) -> Result<SystemTime, StoreError> {
    from_unix_millis(number(fields, name, field)?, field)
}

/// Whether this release reads the hash's format (see [`RECORD_FORMAT`]).
pub(super) fn is_known_format(fields: &Fields) -> Result<bool, StoreError> {
    match text(fields, "format", "format")? {
        None => Ok(true),
        Some(format) => Ok(parse_number(&format, "format", "format")? <= RECORD_FORMAT),
    }
}

/// The deadline of a rotation marker, of which only the deadline is read.
pub(super) fn decode_marker_deadline(fields: &Fields) -> Result<SystemTime, StoreError> {
    time(fields, "expires", "expires_at")
}

pub(super) fn decode_record(mut fields: Fields) -> Result<Record, StoreError> {
    let created_at = time(&fields, "created", "created_at")?;
    let last_active = time(&fields, "active", "last_active")?;
    let expires_at = time(&fields, "expires", "expires_at")?;
    let version = number(&fields, "version", "version")?;
    let user = text(&fields, "user", "user")?;
    let label = text(&fields, "label", "label")?;
    let expiry = fields
        .get("expiry")
        .map(|json| {
            serde_json::from_slice::<Expiry>(json)
                .map_err(|error| StoreError::corrupt("expiry", error))
        })
        .transpose()?;
    let data = fields
        .remove("data")
        .ok_or_else(|| StoreError::corrupt("data", "hash field `data` is missing"))?;
    Ok(Record {
        version,
        user,
        created_at,
        last_active,
        expires_at,
        expiry,
        data,
        label,
    })
}

/// One live session as `sessions_of`'s script lists it: member, created, active, expires,
/// label. A time missing from the record comes as an empty string, refused here as corrupt;
/// a label comes behind `=`, no label as an empty string.
pub(super) fn decode_info(entry: &[String]) -> Result<SessionInfo, StoreError> {
    let time = |text: &str, name: &str, field: &'static str| {
        from_unix_millis(parse_number(text, name, field)?, field)
    };
    match entry {
        [member, created, active, expires, label] => Ok(SessionInfo {
            handle: SessionHandle::from_store_key(StoreKey::from_hex(member).ok_or_else(|| {
                StoreError::corrupt("handle", "index member is not 64 hexadecimal digits")
            })?),
            created_at: time(created, "created", "created_at")?,
            last_active: time(active, "active", "last_active")?,
            expires_at: time(expires, "expires", "expires_at")?,
            label: match label.strip_prefix('=') {
                Some(label) => Some(label.to_owned()),
                None if label.is_empty() => None,
                None => {
                    return Err(unexpected_reply(
                        "sessions_of",
                        "a listed label without `=`",
                    ));
                }
            },
            current: false,
        }),
        _ => Err(unexpected_reply(
            "sessions_of",
            &format!(
                "a listed session of {} values instead of {LISTED_VALUES}",
                entry.len()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::store::redis::DEFAULT_EXPIRY_GRACE;

    fn layout(prefix: &str) -> KeyLayout {
        KeyLayout::new(prefix.to_owned(), DEFAULT_EXPIRY_GRACE)
    }

    fn sample() -> Record {
        let at = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        Record {
            version: u64::MAX,
            user: Some("bob".to_owned()),
            created_at: at,
            last_active: at + Duration::from_millis(5),
            expires_at: at + Duration::from_secs(60),
            expiry: Some(Expiry::AtDateTime(at + Duration::from_nanos(7))),
            data: vec![0, 255, b'{', b'}'],
            label: Some("Firefox on Linux".to_owned()),
        }
    }

    fn fields_of(record: &Record) -> Fields {
        encode_record(&layout("app:"), record)
            .expect("encodes")
            .fields
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value))
            .collect()
    }

    #[test]
    fn records_round_trip_through_the_hash_fields() {
        let record = sample();
        let encoded = encode_record(&layout("app:"), &record).expect("encodes");
        assert_eq!(encoded.index.as_deref(), Some("app:u:Ym9i"));
        assert_eq!(encoded.expires, 1_700_000_060_123);
        assert_eq!(decode_record(fields_of(&record)).expect("decodes"), record);
    }

    #[test]
    fn hashes_carry_their_format_and_older_or_later_ones_are_told_apart() {
        let mut fields = fields_of(&sample());
        assert_eq!(fields["format"], RECORD_FORMAT.to_string().as_bytes());
        assert_eq!(fields["label"], b"Firefox on Linux");
        assert!(is_known_format(&fields).expect("a number"));
        // A hash of the release before formats: no `format`, no `label`; read as it is.
        fields.remove("format");
        fields.remove("label");
        assert!(is_known_format(&fields).expect("no format is format 0"));
        let mut older = sample();
        older.label = None;
        assert_eq!(decode_record(fields.clone()).expect("decodes"), older);
        fields.insert(
            "format".to_owned(),
            (RECORD_FORMAT + 1).to_string().into_bytes(),
        );
        assert!(!is_known_format(&fields).expect("a number"));
        fields.insert("format".to_owned(), b"x".to_vec());
        assert!(matches!(
            is_known_format(&fields),
            Err(StoreError::Corrupt {
                field: "format",
                ..
            })
        ));
    }

    #[test]
    fn times_are_stored_as_decimal_milliseconds_since_1970() {
        let fields = fields_of(&sample());
        assert_eq!(fields["created"], b"1700000000123");
        assert_eq!(fields["active"], b"1700000000128");
        assert_eq!(fields["expires"], b"1700000060123");
        assert_eq!(fields["version"], u64::MAX.to_string().as_bytes());
    }

    #[test]
    fn malformed_hashes_are_corrupt_and_name_the_field() {
        let mut fields = fields_of(&sample());
        fields.insert("version".to_owned(), b"not a number".to_vec());
        assert!(matches!(
            decode_record(fields),
            Err(StoreError::Corrupt {
                field: "version",
                ..
            })
        ));
        let mut fields = fields_of(&sample());
        fields.remove("created");
        assert!(matches!(
            decode_record(fields),
            Err(StoreError::Corrupt {
                field: "created_at",
                ..
            })
        ));
        let mut fields = fields_of(&sample());
        fields.insert("active".to_owned(), b"-1".to_vec());
        assert!(matches!(
            decode_record(fields),
            Err(StoreError::Corrupt {
                field: "last_active",
                ..
            })
        ));
        let mut fields = fields_of(&sample());
        fields.insert("user".to_owned(), vec![0xff]);
        assert!(matches!(
            decode_record(fields),
            Err(StoreError::Corrupt { field: "user", .. })
        ));
        let mut fields = fields_of(&sample());
        fields.insert("expiry".to_owned(), b"{".to_vec());
        assert!(matches!(
            decode_record(fields),
            Err(StoreError::Corrupt {
                field: "expiry",
                ..
            })
        ));
        let mut fields = fields_of(&sample());
        fields.remove("data");
        assert!(matches!(
            decode_record(fields),
            Err(StoreError::Corrupt { field: "data", .. })
        ));
    }

    #[test]
    fn listed_sessions_are_checked() {
        let member = "ab".repeat(32);
        let listed = [
            member.clone(),
            "1".into(),
            "2".into(),
            "3".into(),
            String::new(),
        ];
        let info = decode_info(&listed).expect("decodes");
        assert_eq!(info.expires_at, UNIX_EPOCH + Duration::from_millis(3));
        assert_eq!(info.label, None);
        let labelled = [
            member.clone(),
            "1".into(),
            "2".into(),
            "3".into(),
            "==x".into(),
        ];
        assert_eq!(
            decode_info(&labelled).expect("decodes").label.as_deref(),
            Some("=x")
        );
        let bare = [
            member.clone(),
            "1".into(),
            "2".into(),
            "3".into(),
            "x".into(),
        ];
        assert!(matches!(
            decode_info(&bare),
            Err(StoreError::UnexpectedReply { .. })
        ));
        let missing = [member, String::new(), "2".into(), "3".into(), String::new()];
        assert!(matches!(
            decode_info(&missing),
            Err(StoreError::Corrupt {
                field: "created_at",
                ..
            })
        ));
        assert!(matches!(
            decode_info(&listed[..4]),
            Err(StoreError::UnexpectedReply {
                operation: "sessions_of",
                ..
            })
        ));
    }

    #[test]
    fn times_before_1970_are_out_of_range() {
        let mut record = sample();
        record.created_at = UNIX_EPOCH - Duration::from_secs(1);
        assert!(matches!(
            encode_record(&layout("app:"), &record),
            Err(StoreError::TimeOutOfRange {
                field: "created_at"
            })
        ));
        let mut record = sample();
        record.expiry = Some(Expiry::AtDateTime(UNIX_EPOCH - Duration::from_secs(1)));
        assert!(matches!(
            encode_record(&layout("app:"), &record),
            Err(StoreError::TimeOutOfRange { field: "expiry" })
        ));
    }
}
