//! The encoding of a [`Record`]: one allocation per session.
//!
//! Layout, every integer little-endian and of fixed width, so that a load reads its fields
//! at known offsets (a varint layout is smaller per session, but its decoding was a large
//! share of a session read in the layer):
//!
//! ```text
//! flags: u8          bit 0: times in whole milliseconds; bit 1: has user;
//!                    bits 2-3: expiry (none, on inactivity, at date-time, on browser close)
//! version            u64
//! created_at         the time, as below
//! last_active        the time
//! expires_at         the time
//! [expiry]           on inactivity: secs u64, nanos u32; at date-time: secs i64, nanos u32
//! [user]             length u64, UTF-8 bytes
//! data               the rest
//! ```
//!
//! A time is an i64 of milliseconds since the epoch (negative before it) when all three are
//! whole milliseconds, as the layer's clock writes them; otherwise seconds (i64, rounded
//! down) and nanoseconds (u32) since the epoch. Every time round-trips exactly.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::expiry::Expiry;
use crate::store::StoreError;
use crate::store::{ROTATION_MARKER_LIFETIME, ROTATION_MARKER_VERSION, Record};

const WHOLE_MILLIS: u8 = 0b0000_0001;
const HAS_USER: u8 = 0b0000_0010;
const EXPIRY_SHIFT: u32 = 2;
const EXPIRY_MASK: u8 = 0b0000_1100;
const EXPIRY_NONE: u8 = 0;
const EXPIRY_ON_INACTIVITY: u8 = 1;
const EXPIRY_AT_DATE_TIME: u8 = 2;
const EXPIRY_ON_BROWSER_CLOSE: u8 = 3;
const NANOS_PER_SEC: u32 = 1_000_000_000;
const NANOS_PER_MILLI: u32 = 1_000_000;

/// A record as stored, borrowing its user and data from the encoding.
#[derive(Debug, Clone, Copy)]
pub(crate) struct View<'a> {
    pub(super) version: u64,
    pub(super) user: Option<&'a str>,
    pub(super) created_at: SystemTime,
    pub(super) last_active: SystemTime,
    pub(super) expires_at: SystemTime,
    pub(super) expiry: Option<Expiry>,
    pub(super) data: &'a [u8],
}

/// An entry that does not decode: a bug in this module, never a client's doing.
#[derive(Debug)]
pub(crate) struct CorruptRecord(pub(super) &'static str);

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
        }
    }

    pub(super) fn is_expired(&self, now: SystemTime) -> bool {
        self.expires_at <= now
    }

    /// The marker a rotation leaves under the old key (see `SessionStore::rotate`).
    pub(super) fn marker(now: SystemTime) -> Self {
        Self {
            version: ROTATION_MARKER_VERSION,
            user: None,
            created_at: now,
            last_active: now,
            expires_at: now + ROTATION_MARKER_LIFETIME,
            expiry: None,
            data: b"",
        }
    }

    pub(super) fn is_marker(&self) -> bool {
        self.version == ROTATION_MARKER_VERSION
    }

    pub(crate) fn encode(&self) -> Box<[u8]> {
        let times = [self.created_at, self.last_active, self.expires_at].map(split);
        let millis = times.map(|(secs, nanos)| to_millis(secs, nanos));
        let whole_millis = millis.iter().all(Option::is_some);
        let (expiry_kind, expiry_len) = match self.expiry {
            None => (EXPIRY_NONE, 0),
            Some(Expiry::OnInactivity(_)) => (EXPIRY_ON_INACTIVITY, 12),
            Some(Expiry::AtDateTime(_)) => (EXPIRY_AT_DATE_TIME, 12),
            Some(Expiry::OnBrowserClose) => (EXPIRY_ON_BROWSER_CLOSE, 0),
        };
        let mut flags = expiry_kind << EXPIRY_SHIFT;
        if whole_millis {
            flags |= WHOLE_MILLIS;
        }
        if self.user.is_some() {
            flags |= HAS_USER;
        }
        let len = 1
            + 8
            + if whole_millis { 3 * 8 } else { 3 * 12 }
            + expiry_len
            + self.user.map_or(0, |user| 8 + user.len())
            + self.data.len();
        // Exactly sized, so that the conversion to a boxed slice does not reallocate.
        let mut out = Vec::with_capacity(len);
        out.push(flags);
        out.extend_from_slice(&self.version.to_le_bytes());
        for ((secs, nanos), millis) in times.into_iter().zip(millis) {
            match millis {
                Some(millis) if whole_millis => out.extend_from_slice(&millis.to_le_bytes()),
                _ => put_exact(&mut out, secs, nanos),
            }
        }
        match self.expiry {
            Some(Expiry::OnInactivity(idle)) => {
                out.extend_from_slice(&idle.as_secs().to_le_bytes());
                out.extend_from_slice(&idle.subsec_nanos().to_le_bytes());
            }
            Some(Expiry::AtDateTime(at)) => {
                let (secs, nanos) = split(at);
                put_exact(&mut out, secs, nanos);
            }
            None | Some(Expiry::OnBrowserClose) => {}
        }
        if let Some(user) = self.user {
            out.extend_from_slice(&(user.len() as u64).to_le_bytes());
            out.extend_from_slice(user.as_bytes());
        }
        out.extend_from_slice(self.data);
        out.into_boxed_slice()
    }

    pub(crate) fn decode(bytes: &'a [u8]) -> Result<Self, CorruptRecord> {
        let mut reader = Reader { bytes };
        let flags = reader.u8()?;
        if flags & !(WHOLE_MILLIS | HAS_USER | EXPIRY_MASK) != 0 {
            return Err(CorruptRecord("unknown flags"));
        }
        let version = reader.u64()?;
        let mut time = || {
            if flags & WHOLE_MILLIS != 0 {
                let millis = reader.i64()?;
                match u64::try_from(millis) {
                    // After 1970, the common case: one addition.
                    Ok(after) => UNIX_EPOCH
                        .checked_add(Duration::from_millis(after))
                        .ok_or(CorruptRecord("time out of range")),
                    Err(_) => {
                        let nanos = millis.rem_euclid(1_000) as u32 * NANOS_PER_MILLI;
                        join(millis.div_euclid(1_000), nanos)
                    }
                }
            } else {
                reader.exact()
            }
        };
        let created_at = time()?;
        let last_active = time()?;
        let expires_at = time()?;
        let expiry = match (flags & EXPIRY_MASK) >> EXPIRY_SHIFT {
            EXPIRY_NONE => None,
            EXPIRY_ON_INACTIVITY => {
                let secs = reader.u64()?;
                let nanos = reader.u32()?;
                if nanos >= NANOS_PER_SEC {
                    return Err(CorruptRecord("idle duration out of range"));
                }
                Some(Expiry::OnInactivity(Duration::new(secs, nanos)))
            }
            EXPIRY_AT_DATE_TIME => Some(Expiry::AtDateTime(reader.exact()?)),
            _ => Some(Expiry::OnBrowserClose),
        };
        let user = if flags & HAS_USER == 0 {
            None
        } else {
            let len = usize::try_from(reader.u64()?)
                .map_err(|_| CorruptRecord("user length out of range"))?;
            let user = std::str::from_utf8(reader.take(len)?)
                .map_err(|_| CorruptRecord("user is not UTF-8"))?;
            Some(user)
        };
        Ok(Self {
            version,
            user,
            created_at,
            last_active,
            expires_at,
            expiry,
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

    fn i64(&mut self) -> Result<i64, CorruptRecord> {
        self.array().map(i64::from_le_bytes)
    }

    /// A time as seconds and nanoseconds.
    fn exact(&mut self) -> Result<SystemTime, CorruptRecord> {
        let secs = self.i64()?;
        let nanos = self.u32()?;
        join(secs, nanos)
    }
}

fn put_exact(out: &mut Vec<u8>, secs: i64, nanos: u32) {
    out.extend_from_slice(&secs.to_le_bytes());
    out.extend_from_slice(&nanos.to_le_bytes());
}

/// Seconds since the epoch rounded down (negative before it) and the nanoseconds past
/// them. Exact for every time this platform's `SystemTime` holds in an i64 of seconds,
/// which on Unix is every one; saturated beyond.
fn split(time: SystemTime) -> (i64, u32) {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => (
            i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
            after.subsec_nanos(),
        ),
        Err(before) => {
            let before = before.duration();
            let secs = i64::try_from(before.as_secs()).unwrap_or(i64::MAX);
            match before.subsec_nanos() {
                0 => (-secs, 0),
                nanos => (-secs - 1, NANOS_PER_SEC - nanos),
            }
        }
    }
}

/// The time as whole milliseconds since the epoch, if it is one that fits an i64.
fn to_millis(secs: i64, nanos: u32) -> Option<i64> {
    if !nanos.is_multiple_of(NANOS_PER_MILLI) {
        return None;
    }
    secs.checked_mul(1_000)?
        .checked_add(i64::from(nanos / NANOS_PER_MILLI))
}

fn join(secs: i64, nanos: u32) -> Result<SystemTime, CorruptRecord> {
    let out_of_range = CorruptRecord("time out of range");
    if nanos >= NANOS_PER_SEC {
        return Err(out_of_range);
    }
    let whole = if secs >= 0 {
        UNIX_EPOCH.checked_add(Duration::from_secs(secs.unsigned_abs()))
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_secs(secs.unsigned_abs()))
    };
    whole
        .and_then(|whole| whole.checked_add(Duration::from_nanos(u64::from(nanos))))
        .ok_or(out_of_range)
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
        }
    }

    fn round_trip(record: &Record) -> Record {
        let encoded = View::from_record(record).encode();
        View::decode(&encoded).expect("decodes").to_record()
    }

    #[test]
    fn small_session_layout() {
        let created = UNIX_EPOCH + Duration::from_millis(1_750_000_000_123);
        let record = record(
            None,
            br#"{"visits":5}"#,
            [created, created, created + Duration::from_secs(1800)],
        );
        let encoded = View::from_record(&record).encode();
        // flags, version, three times in milliseconds, 12 bytes of data.
        assert_eq!(encoded.len(), 1 + 8 + 3 * 8 + 12);
        assert_eq!(encoded[0], WHOLE_MILLIS);
        assert_eq!(&encoded[9..17], &1_750_000_000_123_i64.to_le_bytes());
        assert_eq!(round_trip(&record), record);
    }

    #[test]
    fn a_time_off_the_millisecond_keeps_its_nanoseconds() {
        let created = UNIX_EPOCH + Duration::new(1_750_000_000, 123_456_789);
        let record = record(None, b"{}", [created, created, created]);
        let encoded = View::from_record(&record).encode();
        assert_eq!(encoded.len(), 1 + 8 + 3 * 12 + 2);
        assert_eq!(encoded[0] & WHOLE_MILLIS, 0);
        assert_eq!(round_trip(&record), record);
    }

    #[test]
    fn every_expiry_and_odd_times_round_trip() {
        let before_epoch = UNIX_EPOCH - Duration::new(12_345, 678);
        let expiries = [
            None,
            Some(Expiry::OnInactivity(Duration::new(u64::MAX, 999_999_999))),
            Some(Expiry::AtDateTime(before_epoch)),
            Some(Expiry::OnBrowserClose),
        ];
        for expiry in expiries {
            let mut record = record(
                Some("ünïcode user"),
                b"",
                [before_epoch, UNIX_EPOCH, UNIX_EPOCH + Duration::new(1, 1)],
            );
            record.version = u64::MAX;
            record.expiry = expiry;
            assert_eq!(round_trip(&record), record);
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let valid = View::from_record(&record(
            Some("user"),
            b"{}",
            [UNIX_EPOCH, UNIX_EPOCH, UNIX_EPOCH],
        ))
        .encode();
        // Cut before the data: every field is missing a byte or more.
        let truncated = &valid[..valid.len() - 3];
        let mut bad_nanos = vec![0x00];
        bad_nanos.extend_from_slice(&[0; 8]);
        bad_nanos.extend_from_slice(&[0; 8]);
        bad_nanos.extend_from_slice(&NANOS_PER_SEC.to_le_bytes());
        let samples: [&[u8]; 5] = [b"", &[0xff], &[0x00, 0x80], truncated, &bad_nanos];
        for sample in samples {
            assert!(View::decode(sample).is_err(), "{sample:?}");
        }
    }

    fn any_time() -> impl Strategy<Value = SystemTime> {
        (any::<bool>(), 0..u64::MAX / 4, 0..1_000_000_000_u32).prop_map(|(before, secs, nanos)| {
            let offset = Duration::new(secs % (1 << 40), nanos);
            if before {
                UNIX_EPOCH - offset
            } else {
                UNIX_EPOCH + offset
            }
        })
    }

    proptest! {
        #[test]
        fn any_record_round_trips(
            version: u64,
            user in proptest::option::of(".{0,40}"),
            data in proptest::collection::vec(any::<u8>(), 0..100),
            times in [any_time(), any_time(), any_time()],
            whole_millis: bool,
        ) {
            let times = times.map(|time| {
                if whole_millis {
                    let (secs, nanos) = split(time);
                    join(secs, nanos - nanos % NANOS_PER_MILLI).expect("in range")
                } else {
                    time
                }
            });
            let mut record = record(user.as_deref(), &data, times);
            record.version = version;
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
