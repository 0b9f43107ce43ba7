//! Sealed cookie sessions: the whole session in an encrypted cookie, and no store.
//!
//! The layer's machinery is the same as with a store (the lazy handle, the deadlines, the
//! rotation on login, the lazy `Set-Cookie`); what differs is where the record lives. A
//! request's cookie is opened into the record when the handler first uses the session,
//! writes go to [`Inert`], which keeps nothing, and the response carries the record back,
//! sealed again, whenever it changed.

use std::fmt;
use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::context::Context;
use crate::cookie::{MAX_COOKIE_VALUE_LEN, cookie_values};
use crate::crypto::{Purpose, SEAL_OVERHEAD};
use crate::error::SessionError;
use crate::events::Event;
use crate::id::{ID_LEN, SessionId, StoreKey};
use crate::key::SignedWith;
use crate::service::MAX_COOKIE_CANDIDATES;
use crate::store::codec::View;
use crate::store::{
    CreateOutcome, LoadOutcome, Record, RotateOutcome, SaveOutcome, SessionStore, StoreError,
    StoreFuture, TouchOutcome,
};

/// The most bytes a browser keeps of one cookie, name and value together (RFC 6265's
/// minimum, and what every current browser stops at).
pub(crate) const MAX_COOKIE_LEN: usize = 4096;

/// The "store" of a layer made with
/// [`SessionLayer::sealed_cookies`](crate::SessionLayer::sealed_cookies): there is none.
/// Each session lives in its client's cookie, sealed with XChaCha20-Poly1305.
///
/// # What a sealed cookie session cannot do
///
/// Read this before choosing it. As Django's documentation says of its cookie-based
/// sessions, the data is stored by the client: the server has no copy, so it cannot take
/// anything back.
///
/// - **No server-side revocation or per-user listing.** Nothing on the server knows which
///   sessions exist: [`Session::user_sessions`](crate::Session::user_sessions) and
///   [`Session::revoke_other_sessions`](crate::Session::revoke_other_sessions) fail with
///   [`StoreError::Unsupported`], and there is no store to revoke a user's sessions in.
/// - **A stolen cookie replays until its deadline.** A copy of the cookie keeps working,
///   alongside the client's, until its idle or absolute deadline passes (both travel
///   inside the sealed value and are enforced by the layer) or the key that sealed it is
///   retired. Keep the timeouts short.
/// - **Logout only clears the browser's copy.** [`Session::destroy`](crate::Session::destroy)
///   removes the cookie from the browser that sent the request; a copy taken earlier still
///   opens. So does the cookie from before a [`login`](crate::Session::login): the rotation
///   gives the session a new ID, but the old cookie is not invalidated.
/// - **Concurrent responses overwrite each other's cookie.** Two requests that change the
///   session at once each send back their own version, and the browser keeps whichever
///   arrives last: there is no compare-and-swap, and [`Session::update`](crate::Session::update)
///   is atomic only within one request.
/// - **Everything must fit in 4096 bytes** with the cookie's name: a change that would make
///   the cookie longer fails with [`SessionError::CookieTooLarge`] and nothing is sent.
///   The nonce, tag, ID and deadlines take 106 bytes, the user 8 more than its name, then
///   the values as JSON, and base64 adds a third: `{"counter":1}` makes a 159-character
///   value, and about 2,900 bytes of values fill the cookie.
///
/// So of the security requirements a server-side store meets, these do not hold: S16 (a
/// destroyed session is gone), S17 (revocation of a user's sessions), S18 (revocation takes
/// effect on the very next request), S36 (rotation racing revocation) and S40 (concurrent
/// writers never overwrite each other). What does hold: the values are confidential and
/// tamper-proof (the key is derived from the layer's [`Key`](crate::Key) for this purpose
/// only, with HKDF-SHA256), the deadlines are enforced by the server, the ID rotates on
/// login, a forged, tampered or oversized cookie is an anonymous session, and
/// [previous keys](crate::SessionLayer::previous_keys) still open the cookies they sealed,
/// which are re-sealed under the current key when the request uses the session.
///
/// Pick it for small, low-stakes state (preferences, a cart) on apps that want no server
/// state at all; pick a store for anything a logout or a revocation must really end.
pub struct SealedCookies {
    _private: (),
}

impl SealedCookies {
    pub(crate) fn new() -> Self {
        Self { _private: () }
    }
}

impl fmt::Debug for SealedCookies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealedCookies")
    }
}

/// The values of the session cookie a request carried, kept as they came until the handler
/// uses the session: a request that never does pays no decryption.
pub(crate) struct Candidates {
    values: Vec<Box<[u8]>>,
}

impl Candidates {
    /// The request's session cookie values, if any: at most
    /// [`MAX_COOKIE_CANDIDATES`] of them, each at most [`MAX_COOKIE_VALUE_LEN`] bytes (a
    /// request with more, or only longer ones, counts as forged and is anonymous).
    pub(crate) fn from_request(context: &Context, headers: &http::HeaderMap) -> Option<Self> {
        let mut values = Vec::new();
        let mut rejected = false;
        for (seen, value) in cookie_values(headers, &context.cookie.name).enumerate() {
            if seen == MAX_COOKIE_CANDIDATES {
                context.report(Event::Forged);
                return None;
            }
            if value.len() > MAX_COOKIE_VALUE_LEN {
                rejected = true;
            } else {
                values.push(Box::from(value));
            }
        }
        if rejected {
            context.report(Event::Forged);
        }
        (!values.is_empty()).then_some(Self { values })
    }

    /// Opens the cookie into its session. Values that do not open (forged, tampered,
    /// sealed by a retired key, another layout) are ignored and counted as forged, and so
    /// are duplicates of one value; two values that open to *different* sessions make the
    /// request anonymous, as for signed cookies.
    pub(crate) fn open(&self, context: &Context) -> Option<Opened> {
        let mut found: Option<Opened> = None;
        let mut rejected = false;
        for value in &self.values {
            match (open_value(context, value), &mut found) {
                (None, _) => rejected = true,
                (Some(opened), None) => found = Some(opened),
                (Some(opened), Some(first)) => {
                    if opened.id != first.id {
                        context.report(Event::Ambiguous);
                        return None;
                    }
                    if opened.sealed_with == SignedWith::Current {
                        *first = opened;
                    }
                }
            }
        }
        if rejected {
            context.report(Event::Forged);
        }
        found
    }
}

/// A session opened from its cookie.
pub(crate) struct Opened {
    pub(crate) id: SessionId,
    pub(crate) record: Record,
    /// Whether a previous key sealed it: the response re-seals it under the current one.
    pub(crate) sealed_with: SignedWith,
}

/// The plaintext of a sealed cookie: the session's ID, then its record in the memory
/// store's encoding (see [`crate::store::codec`]); the crypto layer's format byte versions
/// it.
fn open_value(context: &Context, value: &[u8]) -> Option<Opened> {
    let sealed = URL_SAFE_NO_PAD.decode(value).ok()?;
    let (plaintext, sealed_with) =
        context
            .keys
            .open(Purpose::Cookie, &sealed, context.cookie.name.as_bytes())?;
    if plaintext.len() < ID_LEN {
        return None;
    }
    let (id, record) = plaintext.split_at(ID_LEN);
    let id = SessionId::from_bytes(id.try_into().ok()?);
    let record = View::decode(record).ok()?.to_record();
    Some(Opened {
        id,
        record,
        sealed_with,
    })
}

/// The cookie value that carries `record` as the session `id`, sealed under the current key.
///
/// Fails with [`SessionError::CookieTooLarge`] when the cookie (name, `=` and value) would
/// exceed [`MAX_COOKIE_LEN`], which browsers would drop.
pub(crate) fn seal(
    context: &Context,
    id: &SessionId,
    record: &Record,
) -> Result<String, SessionError> {
    let name = context.cookie.name.as_bytes();
    let encoded = View::from_record(record).encode()?;
    let sealed_len = SEAL_OVERHEAD + ID_LEN + encoded.len();
    let len = name.len() + 1 + base64_len(sealed_len);
    if len > MAX_COOKIE_LEN {
        return Err(SessionError::CookieTooLarge {
            len,
            limit: MAX_COOKIE_LEN,
        });
    }
    let mut plaintext = zeroize::Zeroizing::new(Vec::with_capacity(ID_LEN + encoded.len()));
    plaintext.extend_from_slice(id.as_bytes());
    plaintext.extend_from_slice(&encoded);
    let sealed = context.keys.seal(Purpose::Cookie, &plaintext, name);
    Ok(URL_SAFE_NO_PAD.encode(sealed))
}

/// The length of `len` bytes in unpadded base64.
fn base64_len(len: usize) -> usize {
    len / 3 * 4 + [0, 2, 3][len % 3]
}

/// The store behind a sealed layer. Every write succeeds and keeps nothing (the response
/// carries the record in its cookie); a load finds nothing (a request's session comes from
/// its cookie, never from here); there is no per-user index.
pub(crate) struct Inert;

impl SessionStore for Inert {
    fn load<'a>(
        &'a self,
        _key: &'a StoreKey,
        _now: SystemTime,
    ) -> StoreFuture<'a, Result<LoadOutcome, StoreError>> {
        StoreFuture::ready(Ok(LoadOutcome::Missing))
    }

    fn create<'a>(
        &'a self,
        _key: &'a StoreKey,
        _record: &'a Record,
        _now: SystemTime,
    ) -> StoreFuture<'a, Result<CreateOutcome, StoreError>> {
        StoreFuture::ready(Ok(CreateOutcome::Created))
    }

    fn save<'a>(
        &'a self,
        _key: &'a StoreKey,
        _record: &'a Record,
        _expected_version: u64,
        _now: SystemTime,
    ) -> StoreFuture<'a, Result<SaveOutcome, StoreError>> {
        StoreFuture::ready(Ok(SaveOutcome::Saved))
    }

    fn touch<'a>(
        &'a self,
        _key: &'a StoreKey,
        _expected_version: u64,
        _last_active: SystemTime,
        _expires_at: SystemTime,
        _now: SystemTime,
    ) -> StoreFuture<'a, Result<TouchOutcome, StoreError>> {
        StoreFuture::ready(Ok(TouchOutcome::Touched))
    }

    fn delete<'a>(
        &'a self,
        _key: &'a StoreKey,
        _now: SystemTime,
    ) -> StoreFuture<'a, Result<bool, StoreError>> {
        StoreFuture::ready(Ok(true))
    }

    fn rotate<'a>(
        &'a self,
        _old: &'a StoreKey,
        _new: &'a StoreKey,
        _record: &'a Record,
        _expected_version: u64,
        _now: SystemTime,
    ) -> StoreFuture<'a, Result<RotateOutcome, StoreError>> {
        StoreFuture::ready(Ok(RotateOutcome::Rotated))
    }

    fn delete_expired(&self, _now: SystemTime) -> StoreFuture<'_, Result<u64, StoreError>> {
        StoreFuture::ready(Ok(0))
    }

    fn ping(&self) -> StoreFuture<'_, Result<(), StoreError>> {
        StoreFuture::ready(Ok(()))
    }

    fn is_immediate(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_session_makes_the_cookie_its_docs_say_and_opens_again() {
        let context = Context::new(std::sync::Arc::new(Inert), crate::Key::generate());
        let now = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000);
        let record = Record {
            version: 3,
            user: None,
            created_at: now,
            last_active: now,
            expires_at: now + std::time::Duration::from_secs(1800),
            expiry: None,
            data: br#"{"counter":1}"#.to_vec(),
            label: None,
        };
        let id = SessionId::generate();
        let value = seal(&context, &id, &record).expect("fits");
        assert_eq!(value.len(), 159);
        let opened = open_value(&context, value.as_bytes()).expect("opens");
        assert!(opened.id == id);
        assert_eq!(opened.record, record);
        assert_eq!(opened.sealed_with, SignedWith::Current);
    }

    #[test]
    fn base64_len_matches_the_encoder() {
        for len in 0..200 {
            assert_eq!(base64_len(len), URL_SAFE_NO_PAD.encode(vec![0; len]).len());
        }
    }
}
