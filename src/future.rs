//! [`ResponseFuture`]: waits for the inner service, then settles the session.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::Response;
use http::header::{CACHE_CONTROL, HeaderValue, SET_COOKIE, VARY};
use pin_project_lite::pin_project;

use crate::session::{Fate, Session, Settled};

type Settling<B> = Pin<Box<dyn Future<Output = Response<B>> + Send>>;

pin_project! {
    /// The response future of [`SessionService`](crate::SessionService).
    ///
    /// When the session needs no store I/O at the end of the request (it was not touched,
    /// only read, or its cookie was rejected), the response is finished in place with no
    /// allocation. Otherwise one boxed future carries the store calls.
    pub struct ResponseFuture<F, B> {
        #[pin]
        stage: Stage<F, B>,
    }
}

pin_project! {
    #[project = StageProj]
    enum Stage<F, B> {
        Inner {
            #[pin]
            future: F,
            session: Option<Session>,
        },
        Settling {
            future: Settling<B>,
        },
    }
}

impl<F, B> ResponseFuture<F, B> {
    pub(crate) fn new(future: F, session: Session) -> Self {
        Self {
            stage: Stage::Inner {
                future,
                session: Some(session),
            },
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Default + Send + 'static,
{
    type Output = Result<Response<B>, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            match self.as_mut().project().stage.project() {
                StageProj::Inner { future, session } => {
                    // An inner error or a panic propagates without saving anything.
                    let mut response = ready!(future.poll(cx))?;
                    let session = session.take().expect("polled after completion");
                    let fate = Fate::of(response.status());
                    if let Some(settled) = session.try_settle(fate) {
                        apply(&mut response, settled);
                        return Poll::Ready(Ok(response));
                    }
                    let settling: Settling<B> = Box::pin(async move {
                        match session.settle(fate).await {
                            Ok(settled) => {
                                apply(&mut response, settled);
                                response
                            }
                            Err(error) => {
                                let hooks = &session.context().hooks;
                                hooks.notify(&error);
                                let (parts, ()) = hooks.response(&error).into_parts();
                                Response::from_parts(parts, B::default())
                            }
                        }
                    });
                    self.as_mut()
                        .project()
                        .stage
                        .set(Stage::Settling { future: settling });
                }
                StageProj::Settling { future } => return future.as_mut().poll(cx).map(Ok),
            }
        }
    }
}

/// Adds the session's headers to the response.
fn apply<B>(response: &mut Response<B>, settled: Settled) {
    let headers = response.headers_mut();
    if settled.vary && !varies_on_cookie(headers) {
        headers.append(VARY, HeaderValue::from_static("cookie"));
    }
    if let Some(cookie) = settled.set_cookie {
        headers.append(SET_COOKIE, cookie);
        // A response that sets a session cookie must never be stored by a shared cache.
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

fn varies_on_cookie(headers: &http::HeaderMap) -> bool {
    headers.get_all(VARY).iter().any(|value| {
        value.to_str().is_ok_and(|value| {
            value
                .split(',')
                .any(|field| field.trim().eq_ignore_ascii_case("cookie") || field.trim() == "*")
        })
    })
}

impl<F, B> fmt::Debug for ResponseFuture<F, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
