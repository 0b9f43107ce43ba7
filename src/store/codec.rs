//! The binary encoding of a [`Record`]: the memory store's entries (one allocation per
//! session) and the plaintext of a sealed cookie session.
//!
//! Layout, every integer little-endian and of fixed width, so that a load reads its fields
//! at known offsets (a varint layout is smaller per session, but its decoding was a large
//! share of a session read in the layer):
//!
//! ```text
//! flags: u8          bit 0: has user; bit 1: has label;
//!                    bits 2-3: expiry (none, on inactivity, at date-time, on browser close)
//! version            u64
//! created_at         u64, milliseconds since 1970
//! last_active        u64, milliseconds since 1970
//! expires_at         u64, milliseconds since 1970
//! [expiry]           on inactivity: secs u64, nanos u32; at date-time: secs u64 and nanos
//!                    u32 since 1970
//! [user]             length u64, UTF-8 bytes
//! [label]            length u64, UTF-8 bytes
//! data               the rest
//! ```
//!
//! The three record times go through the stores' shared conversion
//! ([`to_unix_millis`], [`from_unix_millis`]), with its rules: whole milliseconds (the
//! layer writes no others), nothing before 1970 ([`StoreError::TimeOutOfRange`], as in every
//! store). An expiry override keeps its nanoseconds, as the other stores' JSON does, and is
//! refused before 1970 alike. The memory store lives and dies with the process, so the layout
//! carries no format version; a sealed cookie, which outlives a release, has one in front of
//! it.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::expiry::Expiry;
use crate::store::time::{from_unix_millis, to_unix_millis};
use crate::store::{ROTATION_MARKER_LIFETIME, ROTATION_MARKER_VERSION, Record, StoreError};

const HAS_USER: u8 = 0b0000_0001;
const HAS_LABEL: u8 = 0b0000_0010;
const EXPIRY_SHIFT: u32 = 2;
const EXPIRY_MASK: u8 = 0b0000_1100;
const EXPIRY_NONE: u8 = 0;
const EXPIRY_ON_INACTIVITY: u8 = 1;
const EXPIRY_AT_DATE_TIME: u8 = 2;
const EXPIRY_ON_BROWSER_CLOSE: u8 = 3;
const NANOS_PER_SEC: u32 = 1_000_000_000;

/// A record as stored, borrowing its user, label and data from the encoding.
#[derive(Debug, Clone, Copy)]
pub(crate) struct View<'a> {
    pub(crate) version: u64,
    pub(crate) user: Option<&'a str>,
    pub(crate) created_at: SystemTime,
    pub(crate) last_active: SystemTime,
    pub(crate) expires_at: SystemTime,
    pub(crate) expiry: Option<Expiry>,
    pub(crate) label: Option<&'a str>,
    pub(crate) data: &'a [u8],
}

/// An entry that does not decode: a bug in this module, never a client's doing.
#[derive(Debug)]
pub(crate) struct CorruptRecord(pub(crate) &'static str);

impl fmt::Display for CorruptRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "corrupt in-memory session record: {}", self.0)
    }
}

impl std::error::Error for CorruptRecord {}

impl From<CorruptRecord> for StoreError {
    fn from(error: CorruptRecord) -> Self {
        StoreError::corrupt("record", error.0)
    }
}

impl<'a> View<'a> {
    pub(crate) fn from_record(record: &'a Record) -> Self {
        Self {
            version: record.version,
            user: record.user.as_deref(),
            created_at: record.created_at,
            last_active: record.last_active,
            expires_at: record.expires_at,
            expiry: record.expiry,
            label: record.label.as_deref(),
            data: &record.data,
        }
    }

    pub(crate) fn to_record(self) -> Record {
        Record {
            version: self.version,
            user: self.user.map(str::to_owned),
            created_at: self.created_at,
            last_active: self.last_active,
            expires_at: self.expires_at,
            expiry: self.expiry,
            data: self.data.to_vec(),
            label: self.label.map(str::to_owned),
        }
    }

    #[cfg_attr(not(feature = "memory-store"), allow(dead_code))]
    pub(crate) fn is_expired(&self, now: SystemTime) -> bool {
        self.expires_at <= now
    }

    #[cfg_attr(not(feature = "memory-store"), allow(dead_code))]
    /// The marker a rotation leaves under the old key (see `SessionStore::rotate`).
    pub(crate) fn marker(now: SystemTime) -> Self {
        Self {
            version: ROTATION_MARKER_VERSION,
            user: None,
            created_at: now,
            last_active: now,
            expires_at: now + ROTATION_MARKER_LIFETIME,
            expiry: None,
            label: None,
            data: b"",
        }
    }

    #[cfg_attr(not(feature = "memory-store"), allow(dead_code))]
    pub(crate) fn is_marker(&self) -> bool {
        self.version == ROTATION_MARKER_VERSION
    }

    /// The encoding, or [`StoreError::TimeOutOfRange`] for a time the stores do not keep.
    pub(crate) fn encode(&self) -> Result<Box<[u8]>, StoreError> {
        let times = [
            to_unix_millis(self.created_at, "created_at")?,
            to_unix_millis(self.last_active, "last_active")?,
            to_unix_millis(self.expires_at, "expires_at")?,
        ];
        let (expiry_kind, expiry_len) = match self.expiry {
            None => (EXPIRY_NONE, 0),
            Some(Expiry::OnInactivity(_)) => (EXPIRY_ON_INACTIVITY, 12),
            Some(Expiry::AtDateTime(_)) => (EXPIRY_AT_DATE_TIME, 12),
            Some(Expiry::OnBrowserClose) => (EXPIRY_ON_BROWSER_CLOSE, 0),
        };
        let mut flags = expiry_kind << EXPIRY_SHIFT;
        if self.user.is_some() {
            flags |= HAS_USER;
        }
        if self.label.is_some() {
            flags |= HAS_LABEL;
        }
        let len = 1
            + 8
            + 3 * 8
            + expiry_len
            + self.user.map_or(0, |user| 8 + user.len())
            + self.label.map_or(0, |label| 8 + label.len())
            + self.data.len();
        // Exactly sized, so that the conversion to a boxed slice does not reallocate.
        let mut out = Vec::with_capacity(len);
        out.push(flags);
        out.extend_from_slice(&self.version.to_le_bytes());
        for millis in times {
            out.extend_from_slice(&millis.to_le_bytes());
        }
        let duration = match self.expiry {
            Some(Expiry::OnInactivity(idle)) => Some(idle),
            Some(Expiry::AtDateTime(at)) => Some(
                at.duration_since(UNIX_EPOCH)
                    .map_err(|_| StoreError::TimeOutOfRange { field: "expiry" })?,
            ),
            None | Some(Expiry::OnBrowserClose) => None,
        };
        if let Some(duration) = duration {
            out.extend_from_slice(&duration.as_secs().to_le_bytes());
            out.extend_from_slice(&duration.subsec_nanos().to_le_bytes());
        }
        for text in [self.user, self.label].into_iter().flatten() {
            out.extend_from_slice(&(text.len() as u64).to_le_bytes());
            out.extend_from_slice(text.as_bytes());
        }
        out.extend_from_slice(self.data);
        Ok(out.into_boxed_slice())
    }

    pub(crate) fn decode(bytes: &'a [u8]) -> Result<Self, CorruptRecord> {
        let mut reader = Reader { bytes };
        let flags = reader.u8()?;
        if flags & !(HAS_USER | HAS_LABEL | EXPIRY_MASK) != 0 {
            return Err(CorruptRecord("unknown flags"));
        }
        let version = reader.u64()?;
        let mut time = || {
            from_unix_millis(reader.u64()?, "time").map_err(|_| CorruptRecord("time out of range"))
        };
        let created_at = time()?;
        let last_active = time()?;
        let expires_at = time()?;
        let expiry = match (flags & EXPIRY_MASK) >> EXPIRY_SHIFT {
            EXPIRY_NONE => None,
            EXPIRY_ON_INACTIVITY => Some(Expiry::OnInactivity(reader.duration()?)),
            EXPIRY_AT_DATE_TIME => Some(Expiry::AtDateTime(
                UNIX_EPOCH
                    .checked_add(reader.duration()?)
                    .ok_or(CorruptRecord("expiry out of range"))?,
            )),
            _ => Some(Expiry::OnBrowserClose),
        };
        let user = if flags & HAS_USER == 0 {
            None
        } else {
            Some(reader.text("user is not UTF-8")?)
        };
        let label = if flags & HAS_LABEL == 0 {
            None
        } else {
            Some(reader.text("label is not UTF-8")?)
        };
        Ok(Self {
            version,
            user,
            created_at,
            last_active,
            expires_at,
            expiry,
            label,
            data: reader.bytes,
        })
    }
}

/// Reads fields off the front of an encoding.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], CorruptRecord> {
        if self.bytes.len() < len {
            return Err(CorruptRecord("truncated"));
        }
        let (taken, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        Ok(taken)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], CorruptRecord> {
        let mut array = [0; N];
        array.copy_from_slice(self.take(N)?);
        Ok(array)
    }

    fn u8(&mut self) -> Result<u8, CorruptRecord> {
        Ok(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32, CorruptRecord> {
        self.array().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Result<u64, CorruptRecord> {
        self.array().map(u64::from_le_bytes)
    }

    /// A duration as seconds and nanoseconds.
    fn duration(&mut self) -> Result<Duration, CorruptRecord> {
        let secs = self.u64()?;
        let nanos = self.u32()?;
        if nanos >= NANOS_PER_SEC {
            return Err(CorruptRecord("nanoseconds out of range"));
        }
        Ok(Duration::new(secs, nanos))
    }

    /// A length-prefixed UTF-8 text; `not_utf8` is the error if it is not UTF-8.
    fn text(&mut self, not_utf8: &'static str) -> Result<&'a str, CorruptRecord> {
        let len = usize::try_from(self.u64()?).map_err(|_| CorruptRecord("length out of range"))?;
        std::str::from_utf8(self.take(len)?).map_err(|_| CorruptRecord(not_utf8))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn record(user: Option<&str>, data: &[u8], times: [SystemTime; 3]) -> Record {
        Record {
            version: 1,
            user: user.map(str::to_owned),
            created_at: times[0],
            last_active: times[1],
            expires_at: times[2],
            expiry: None,
            data: data.to_vec(),
            label: None,
        }
    }

    fn encode(record: &Record) -> Box<[u8]> {
        View::from_record(record).encode().expect("encodes")
    }

    fn round_trip(record: &Record) -> Record {
        View::decode(&encode(record)).expect("decodes").to_record()
    }

    fn millis(millis: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(millis)
    }

    #[test]
    fn small_session_layout() {
        let created = millis(1_750_000_000_123);
        let record = record(
            None,
            br#"{"visits":5}"#,
            [created, created, created + Duration::from_secs(1800)],
        );
        let encoded = encode(&record);
        // flags, version, three times in milliseconds, 12 bytes of data.
        assert_eq!(encoded.len(), 1 + 8 + 3 * 8 + 12);
        assert_eq!(encoded[0], 0);
        assert_eq!(&encoded[9..17], &1_750_000_000_123_u64.to_le_bytes());
        assert_eq!(round_trip(&record), record);
    }

    #[test]
    fn user_and_label_round_trip_after_the_expiry() {
        let at = millis(1_750_000_000_000);
        let mut record = record(Some("ünïcode user"), b"{}", [at, at, at]);
        record.label = Some("Firefox on Linux".to_owned());
        record.expiry = Some(Expiry::OnInactivity(Duration::from_secs(60)));
        let encoded = encode(&record);
        assert_eq!(
            encoded[0],
            HAS_USER | HAS_LABEL | (EXPIRY_ON_INACTIVITY << 2)
        );
        assert_eq!(
            encoded.len(),
            1 + 8 + 3 * 8 + 12 + (8 + "ünïcode user".len()) + (8 + 16) + 2
        );
        assert_eq!(round_trip(&record), record);
        record.user = None;
        record.label = Some(String::new());
        assert_eq!(round_trip(&record), record);
    }

    #[test]
    fn times_follow_the_stores_shared_rules() {
        // Sub-millisecond parts are dropped (the layer writes none), as in every store.
        let at = millis(1_750_000_000_123);
        let partial = record(None, b"{}", [at + Duration::from_micros(999), at, at]);
        assert_eq!(round_trip(&partial).created_at, at);
        // A time before 1970, or past 2^53 ms, is refused with the field named.
        let before = UNIX_EPOCH - Duration::from_millis(1);
        let early = record(None, b"{}", [at, before, at]);
        assert!(matches!(
            View::from_record(&early).encode(),
            Err(StoreError::TimeOutOfRange {
                field: "last_active"
            })
        ));
        let far = record(None, b"{}", [at, at, millis(1 << 53)]);
        assert!(matches!(
            View::from_record(&far).encode(),
            Err(StoreError::TimeOutOfRange {
                field: "expires_at"
            })
        ));
        let mut old_expiry = record(None, b"{}", [at, at, at]);
        old_expiry.expiry = Some(Expiry::AtDateTime(before));
        assert!(matches!(
            View::from_record(&old_expiry).encode(),
            Err(StoreError::TimeOutOfRange { field: "expiry" })
        ));
    }

    #[test]
    fn every_expiry_and_edge_times_round_trip() {
        let expiries = [
            None,
            Some(Expiry::OnInactivity(Duration::new(u64::MAX, 999_999_999))),
            Some(Expiry::AtDateTime(UNIX_EPOCH + Duration::new(1, 1))),
            Some(Expiry::AtDateTime(UNIX_EPOCH)),
            Some(Expiry::OnBrowserClose),
        ];
        for expiry in expiries {
            let mut record = record(
                Some("user"),
                b"",
                [UNIX_EPOCH, millis(1), millis((1 << 53) - 1)],
            );
            record.version = u64::MAX;
            record.expiry = expiry;
            assert_eq!(round_trip(&record), record);
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut labelled = record(Some("user"), b"{}", [UNIX_EPOCH; 3]);
        labelled.label = Some("label".to_owned());
        let valid = encode(&labelled);
        // Cut inside the label: its length promises more than is there.
        let truncated = &valid[..valid.len() - 4];
        let mut far_time = vec![0x00];
        far_time.extend_from_slice(&[0; 8]);
        far_time.extend_from_slice(&u64::MAX.to_le_bytes());
        let mut bad_nanos = vec![EXPIRY_ON_INACTIVITY << 2];
        bad_nanos.extend_from_slice(&[0; 8 + 3 * 8 + 8]);
        bad_nanos.extend_from_slice(&NANOS_PER_SEC.to_le_bytes());
        let mut bad_label = vec![HAS_LABEL];
        bad_label.extend_from_slice(&[0; 8 + 3 * 8]);
        bad_label.extend_from_slice(&1_u64.to_le_bytes());
        bad_label.push(0xff);
        let samples: [&[u8]; 7] = [
            b"",
            &[0xff],
            &[0x00, 0x80],
            truncated,
            &far_time,
            &bad_nanos,
            &bad_label,
        ];
        for sample in samples {
            assert!(View::decode(sample).is_err(), "{sample:?}");
        }
    }

    fn any_time() -> impl Strategy<Value = SystemTime> {
        (0..1_u64 << 53).prop_map(millis)
    }

    proptest! {
        #[test]
        fn any_record_round_trips(
            version: u64,
            user in proptest::option::of(".{0,40}"),
            label in proptest::option::of(".{0,40}"),
            data in proptest::collection::vec(any::<u8>(), 0..100),
            times in [any_time(), any_time(), any_time()],
        ) {
            let mut record = record(user.as_deref(), &data, times);
            record.version = version;
            record.label = label;
            prop_assert_eq!(round_trip(&record), record);
        }

        #[test]
        fn any_bytes_decode_without_panicking(
            bytes in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let _ = View::decode(&bytes);
        }
    }
}
