//! Encryption at rest: a session's values sealed before they reach the store, opened after
//! they come back (see [`SessionLayer::encrypt_data_at_rest`](crate::SessionLayer::encrypt_data_at_rest)).
//!
//! Only `data` is sealed: the store still reads the version, the deadlines and the user,
//! which it needs for compare-and-swap, expiry and the per-user index. The sealed value is
//! bound to the store key it is written under (the key is the associated data), so values
//! copied from one record into another do not open.

use crate::context::Context;
use crate::crypto::Purpose;
use crate::id::StoreKey;
use crate::store::Record;

/// `record` as the store is to keep it under `key`: its values sealed under the current key.
pub(crate) fn seal(context: &Context, key: &StoreKey, record: &Record) -> Record {
    Record {
        version: record.version,
        user: record.user.clone(),
        created_at: record.created_at,
        last_active: record.last_active,
        expires_at: record.expires_at,
        expiry: record.expiry,
        data: context
            .keys
            .seal(Purpose::Data, &record.data, key.as_bytes()),
        label: record.label.clone(),
    }
}

/// The values of a record the store keeps under `key`, or `None` if they do not open under
/// the current key or a previous one (written before encryption was on, sealed by a retired
/// key, copied from another record, or altered in the store).
pub(crate) fn open(context: &Context, key: &StoreKey, data: &[u8]) -> Option<Vec<u8>> {
    let (data, _) = context.keys.open(Purpose::Data, data, key.as_bytes())?;
    Some(data)
}
