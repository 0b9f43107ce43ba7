//! [`SessionService`]: reads the cookie, hands the request a [`Session`], calls the inner
//! service.

use std::sync::Arc;
use std::task::{self, Poll};

use http::{Request, Response};
use tower_service::Service;

use crate::context::Context;
use crate::cookie::{MAX_COOKIE_VALUE_LEN, cookie_values};
use crate::events::Event;
use crate::future::ResponseFuture;
use crate::id::SessionId;
use crate::key::SignedWith;
#[cfg(feature = "cookie-store")]
use crate::sealed::Candidates;
use crate::session::{Incoming, Session};

/// The most values under the session cookie's name that a request may carry, malformed ones
/// included. Each costs an HMAC check per accepted key, so a client could otherwise make one
/// request cost thousands of them; a browser sends one, or a few when cookies of several paths
/// or domains share the name.
pub(crate) const MAX_COOKIE_CANDIDATES: usize = 8;

/// The service made by [`SessionLayer`](crate::SessionLayer).
#[derive(Debug, Clone)]
pub struct SessionService<Inner> {
    inner: Inner,
    context: Arc<Context>,
}

impl<Inner> SessionService<Inner> {
    pub(crate) fn new(inner: Inner, context: Arc<Context>) -> Self {
        Self { inner, context }
    }

    /// Finds the session cookie and verifies it.
    ///
    /// Only the cookie with the configured name counts (never a URL, a query string or
    /// another header). When the name appears more than once, invalid values are ignored
    /// and so are duplicates of one valid value; two *different* valid values make the
    /// request anonymous, so the outcome never depends on their order. More than
    /// [`MAX_COOKIE_CANDIDATES`] values make it anonymous too, before any further check.
    fn verified_id(&self, request_headers: &http::HeaderMap) -> Option<(SessionId, SignedWith)> {
        let mut found: Option<(SessionId, SignedWith)> = None;
        let mut rejected = false;
        let mut ambiguous = false;
        for (seen, value) in cookie_values(request_headers, &self.context.cookie.name).enumerate() {
            if seen == MAX_COOKIE_CANDIDATES {
                self.context.report(Event::Forged);
                return None;
            }
            let verified = if value.len() > MAX_COOKIE_VALUE_LEN {
                None
            } else {
                self.context.keys.verify(value)
            };
            match (verified, &mut found) {
                (None, _) => rejected = true,
                (Some(verified), None) => found = Some(verified),
                (Some((id, with)), Some((found_id, found_with))) => {
                    if id == *found_id {
                        if with == SignedWith::Current {
                            *found_with = with;
                        }
                    } else {
                        ambiguous = true;
                    }
                }
            }
        }
        if rejected {
            self.context.report(Event::Forged);
        }
        if ambiguous {
            self.context.report(Event::Ambiguous);
            return None;
        }
        found
    }
}

impl<Inner, ReqBody, ResBody> Service<Request<ReqBody>> for SessionService<Inner>
where
    Inner: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Default + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = Inner::Error;
    type Future = ResponseFuture<Inner::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut task::Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        #[cfg(feature = "cookie-store")]
        if self.context.sealed {
            let incoming = Candidates::from_request(&self.context, request.headers());
            let session = Session::new(Arc::clone(&self.context), incoming.map(Incoming::Sealed));
            request.extensions_mut().insert(session.clone());
            return ResponseFuture::new(self.inner.call(request), session);
        }
        let incoming = self
            .verified_id(request.headers())
            .map(|(id, signed_with)| Incoming::Signed { id, signed_with });
        let session = Session::new(Arc::clone(&self.context), incoming);
        request.extensions_mut().insert(session.clone());
        ResponseFuture::new(self.inner.call(request), session)
    }
}
