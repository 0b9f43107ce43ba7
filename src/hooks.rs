//! What the layer does with the session errors it handles itself: the response it sends and
//! whom it tells.

use std::fmt;
use std::sync::Arc;

use http::{Response, StatusCode};

use crate::error::SessionError;

type ResponseHook = dyn Fn(&SessionError) -> Response<()> + Send + Sync;
type ObserverHook = dyn Fn(&SessionError) + Send + Sync;

/// The layer's error hooks: [`SessionLayer::error_response`](crate::SessionLayer::error_response)
/// and [`SessionLayer::on_error`](crate::SessionLayer::on_error).
#[derive(Clone)]
pub(crate) struct ErrorHooks {
    response: Arc<ResponseHook>,
    observer: Option<Arc<ObserverHook>>,
}

impl Default for ErrorHooks {
    fn default() -> Self {
        Self {
            response: Arc::new(default_error_response),
            observer: None,
        }
    }
}

impl ErrorHooks {
    pub(crate) fn set_response(
        &mut self,
        hook: impl Fn(&SessionError) -> Response<()> + Send + Sync + 'static,
    ) {
        self.response = Arc::new(hook);
    }

    pub(crate) fn set_observer(&mut self, hook: impl Fn(&SessionError) + Send + Sync + 'static) {
        self.observer = Some(Arc::new(hook));
    }

    /// The response that replaces the handler's when `error` fails the request.
    pub(crate) fn response(&self, error: &SessionError) -> Response<()> {
        (self.response)(error)
    }

    /// Reports an error the layer handled itself.
    pub(crate) fn notify(&self, error: &SessionError) {
        match &self.observer {
            Some(observer) => observer(error),
            None => {
                tracing::error!(error = %error, source = ?std::error::Error::source(error), "session error")
            }
        }
    }
}

impl fmt::Debug for ErrorHooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ErrorHooks")
            .field("observer", &self.observer.is_some())
            .finish_non_exhaustive()
    }
}

fn default_error_response(_: &SessionError) -> Response<()> {
    let mut response = Response::new(());
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    response
}
