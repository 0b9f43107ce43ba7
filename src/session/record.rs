//! The record a commit writes: the base record with this request's changes.

use std::time::SystemTime;

use serde_json::{Map, Value};

use super::state::Changes;
use crate::context::Context;
use crate::error::SessionError;
use crate::store::Record;

/// The values a new record stores.
pub(super) enum NewData<'a> {
    /// The base record's, unchanged (none without a base).
    Unchanged,
    /// These, serialized.
    Values(&'a Map<String, Value>),
    /// These bytes, already serialized.
    Spliced(Vec<u8>),
}

/// The record to store with `data` and this request's changes, on top of `base`.
pub(super) fn new_record(
    context: &Context,
    base: Option<&Record>,
    data: NewData<'_>,
    changes: &Changes,
    now: SystemTime,
) -> Result<Record, SessionError> {
    let created_at = base.map_or(now, |record| record.created_at);
    let user = match &changes.user {
        Some(user) => user.clone(),
        None => base.and_then(|record| record.user.clone()),
    };
    let expiry = match changes.expiry {
        Some(expiry) => expiry,
        None => base.and_then(|record| record.expiry),
    };
    let data = match (data, base) {
        (NewData::Spliced(data), _) => within_limit(context, data)?,
        (NewData::Values(values), base) => {
            // Sized from the stored data, so that a session larger than the buffer
            // `serde_json::to_vec` starts with is written without regrowing.
            let capacity = base.map_or(0, |base| base.data.len()) + 64;
            let mut data = Vec::with_capacity(capacity);
            serde_json::to_writer(&mut data, values)?;
            within_limit(context, data)?
        }
        // Unparsed values are unchanged: the stored bytes are copied as they are, and are
        // not held to a limit lowered since they were written.
        (NewData::Unchanged, Some(base)) => base.data.clone(),
        (NewData::Unchanged, None) => b"{}".to_vec(),
    };
    let expires_at = context
        .lifetime
        .expires_at(created_at, expiry, user.as_deref(), now);
    Ok(Record {
        version: base.map_or(1, |record| record.version + 1),
        user,
        created_at,
        last_active: now,
        expires_at,
        expiry,
        data,
        // Kept across saves and rotations until the application sets another.
        label: match &changes.label {
            Some(label) => label.clone(),
            None => base.and_then(|record| record.label.clone()),
        },
    })
}

fn within_limit(context: &Context, data: Vec<u8>) -> Result<Vec<u8>, SessionError> {
    if data.len() > context.max_data_len {
        return Err(SessionError::DataTooLarge {
            len: data.len(),
            limit: context.max_data_len,
        });
    }
    Ok(data)
}
