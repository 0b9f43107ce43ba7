//! axum extractors for [`Session`] (feature `axum`).

use std::convert::Infallible;
use std::fmt;

use axum_core::extract::{FromRequestParts, OptionalFromRequestParts};
use axum_core::response::{IntoResponse, Response};
use http::StatusCode;
use http::request::Parts;

use crate::error::SessionError;
use crate::session::Session;

/// The rejection of the [`Session`] extractor: the request has no session, because the
/// [`SessionLayer`](crate::SessionLayer) is not installed around this route.
///
/// Responds `500 Internal Server Error` with a message naming the fix.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct MissingSessionLayer;

impl fmt::Display for MissingSessionLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "no session in the request extensions: is the SessionLayer installed? \
             Add `.layer(SessionLayer::new(store, key))` to the Router after the routes \
             that use `Session`",
        )
    }
}

impl std::error::Error for MissingSessionLayer {}

impl IntoResponse for MissingSessionLayer {
    fn into_response(self) -> Response {
        tracing::error!("{self}");
        (StatusCode::INTERNAL_SERVER_ERROR, self.to_string()).into_response()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Session {
    type Rejection = MissingSessionLayer;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Session>()
            .cloned()
            .ok_or(MissingSessionLayer)
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for Session {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<Session>().cloned())
    }
}

/// A [`SessionError`] returned from a handler becomes an empty
/// `500 Internal Server Error`; the error is logged with `tracing`, without any session ID.
impl IntoResponse for SessionError {
    fn into_response(self) -> Response {
        tracing::error!(error = %self, source = ?std::error::Error::source(&self), "session error in handler");
        StatusCode::INTERNAL_SERVER_ERROR.into_response()
    }
}
