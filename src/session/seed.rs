//! Sessions made without a request, for an application's own tests
//! ([`SessionLayer::test_session`](crate::SessionLayer::test_session)).

use std::borrow::Cow;

use serde_json::{Map, Value};

use crate::context::Context;
use crate::error::SessionError;
use crate::id::SessionId;
use crate::store::{CreateOutcome, Record};

/// Stores a new session for `user` with `values`, as a login through the layer would, and
/// returns the `Cookie` header value (`name=value`) a browser holding it would send.
pub(crate) async fn create(
    context: &Context,
    user: Option<&str>,
    values: &Map<String, Value>,
) -> Result<String, SessionError> {
    let now = context.now();
    let data = serde_json::to_vec(values)?;
    if data.len() > context.max_data_len {
        return Err(SessionError::DataTooLarge {
            len: data.len(),
            limit: context.max_data_len,
        });
    }
    let record = Record {
        version: 1,
        user: user.map(str::to_owned),
        created_at: now,
        last_active: now,
        expires_at: context.lifetime.expires_at(now, None, user, now),
        expiry: None,
        data,
        label: None,
    };
    let value = cookie_value(context, &record).await?;
    Ok(format!("{}={value}", context.cookie.name))
}

/// Stores `record` under a fresh ID (or seals it, with sealed cookies) and returns the
/// cookie value.
async fn cookie_value(context: &Context, record: &Record) -> Result<String, SessionError> {
    #[cfg(feature = "cookie-store")]
    if context.sealed {
        return crate::sealed::seal(context, &SessionId::generate(), record);
    }
    for _ in 0..8 {
        let id = SessionId::generate();
        let key = id.store_key();
        #[cfg(feature = "encryption")]
        let stored = if context.encrypts_at_rest() {
            Cow::Owned(crate::at_rest::seal(context, &key, record))
        } else {
            Cow::Borrowed(record)
        };
        #[cfg(not(feature = "encryption"))]
        let stored = Cow::Borrowed(record);
        match context
            .store
            .create(&key, &stored, record.created_at)
            .await?
        {
            CreateOutcome::Created => return Ok(context.keys.sign(&id)),
            CreateOutcome::Collision => continue,
        }
    }
    Err(SessionError::IdCollision)
}
