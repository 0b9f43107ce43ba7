//! The `memory_record` target: the memory store's entry codec.

use std::time::{Duration, UNIX_EPOCH};

use crate::Expiry;
use crate::store::memory::codec::View;

/// Fuzz target `memory_record`: `data` is an entry of the memory store.
///
/// Checks that whatever decodes re-encodes into an entry that decodes to the same
/// record (decode ∘ encode ∘ decode = decode), that this encoding is a fixed point
/// (encode ∘ decode ∘ encode = encode), and that the record's data is the entry's tail.
pub fn memory_record(data: &[u8]) {
    let Ok(view) = View::decode(data) else {
        return;
    };
    let record = view.to_record();
    if known_saturated_time(&record) {
        return;
    }
    assert!(
        data.ends_with(&record.data),
        "the data is not the entry's tail"
    );
    let encoded = View::from_record(&record).encode();
    let again = match View::decode(&encoded) {
        Ok(view) => view.to_record(),
        Err(error) => panic!("a decoded record re-encodes into {encoded:?}: {error}"),
    };
    assert_eq!(again, record, "decode(encode(record)) is not the record");
    let encoded_again = View::from_record(&again).encode();
    assert_eq!(encoded_again, encoded, "the encoding is not a fixed point");
}

/// Known issue, reported and tolerated until it is decided (unless [`super::strict`]):
/// the codec's `split` saturates the seconds of a time 2^63 seconds before the epoch
/// (`i64::MIN` seconds, which the platform holds and `decode` accepts) to `-i64::MAX`, so
/// such a time comes back one second later after a re-encoding.
fn known_saturated_time(record: &crate::Record) -> bool {
    let Some(earliest) = UNIX_EPOCH.checked_sub(Duration::from_secs(1 << 63)) else {
        return false;
    };
    let at_date_time = match record.expiry {
        Some(Expiry::AtDateTime(at)) => Some(at),
        _ => None,
    };
    !super::strict()
        && [record.created_at, record.last_active, record.expires_at]
            .into_iter()
            .chain(at_date_time)
            .any(|time| time == earliest)
}
