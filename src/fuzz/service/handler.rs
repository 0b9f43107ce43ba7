//! The handler behind the layer, and its routes.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::header::{HeaderValue, VARY};
use http::{Request, Response, StatusCode};
use tower_service::Service;

use crate::{Expiry, ManualClock, Session, SessionError};

/// The routes of the handler, and what it does for each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Route {
    /// Does not touch the session.
    Untouched,
    /// Reads `n` and `s`.
    Read,
    /// Inserts `s`.
    Insert,
    /// Increments `n` with `update`.
    Count,
    /// Logs in as one user, or another, and inserts `s`.
    Login(&'static str),
    /// Cycles the ID.
    Cycle,
    /// Destroys the session.
    Destroy,
    /// Destroys the session, then tries to insert (`Destroyed`, as documented).
    DestroyThenInsert,
    /// Sets one of the expiries.
    Expiry(u8),
    /// Removes `s`.
    Remove,
    /// Clears the values.
    Clear,
    /// Reads, inserts, updates, cycles and reads the user.
    Mixed,
    /// Updates `n`, inserts `s`, then answers 503.
    Fail,
    /// Reads `n`, then answers 500.
    FailAfterRead,
    /// Reads `n` and answers with a `Vary` of its own.
    Vary,
}

pub(super) const ROUTES: [(&str, Route); 19] = [
    ("/", Route::Untouched),
    ("/read", Route::Read),
    ("/insert", Route::Insert),
    ("/count", Route::Count),
    ("/login/alice", Route::Login("alice")),
    ("/login/bob", Route::Login("bob")),
    ("/cycle", Route::Cycle),
    ("/destroy", Route::Destroy),
    ("/destroy-then-insert", Route::DestroyThenInsert),
    ("/expiry/none", Route::Expiry(0)),
    ("/expiry/idle", Route::Expiry(1)),
    ("/expiry/at", Route::Expiry(2)),
    ("/expiry/browser", Route::Expiry(3)),
    ("/remove", Route::Remove),
    ("/clear", Route::Clear),
    ("/mixed", Route::Mixed),
    ("/fail", Route::Fail),
    ("/fail-after-read", Route::FailAfterRead),
    ("/vary", Route::Vary),
];

impl Route {
    fn from_path(path: &str) -> Self {
        ROUTES
            .iter()
            .find(|(route, _)| *route == path)
            .map_or(Route::Untouched, |(_, route)| *route)
    }

    /// The status the handler answers with when nothing fails.
    pub(super) fn status(self) -> StatusCode {
        match self {
            Route::Fail => StatusCode::SERVICE_UNAVAILABLE,
            Route::FailAfterRead => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::OK,
        }
    }
}

/// The header the handler names an unexpected session error in.
pub(super) const ERROR_HEADER: &str = "x-fuzz-error";

/// The handler behind the layer: does what the route says to the request's session.
#[derive(Clone)]
pub(super) struct Handler {
    pub(super) clock: ManualClock,
}

impl Handler {
    async fn run(&self, session: &Session, route: Route) -> Result<(), SessionError> {
        match route {
            Route::Untouched => {}
            Route::Read => {
                session.get::<u64>("n").await?;
                session.get::<String>("s").await?;
            }
            Route::Insert => session.insert("s", "inserted").await?,
            Route::Count => {
                session
                    .update("n", |n: Option<u64>| n.unwrap_or(0).wrapping_add(1))
                    .await?;
            }
            Route::Login(user) => {
                session.login(user).await?;
                session.insert("s", user).await?;
            }
            Route::Cycle => session.cycle_id().await?,
            Route::Destroy => session.destroy().await?,
            Route::DestroyThenInsert => {
                session.destroy().await?;
                match session.insert("s", "after").await {
                    Err(SessionError::Destroyed) => {}
                    other => panic!("insert after destroy gave {other:?}, not Destroyed"),
                }
            }
            Route::Expiry(kind) => {
                let expiry = match kind {
                    0 => None,
                    1 => Some(Expiry::OnInactivity(Duration::from_secs(10 * 60))),
                    2 => Some(Expiry::AtDateTime(
                        crate::Clock::now(&self.clock) + Duration::from_secs(5 * 60),
                    )),
                    _ => Some(Expiry::OnBrowserClose),
                };
                session.set_expiry(expiry).await?;
            }
            Route::Remove => {
                session.remove::<String>("s").await?;
            }
            Route::Clear => session.clear().await?,
            Route::Mixed => {
                let n = session.get::<u64>("n").await?.unwrap_or(0);
                session.insert("s", n.to_string()).await?;
                session
                    .update("n", |n: Option<u64>| n.unwrap_or(0).wrapping_add(2))
                    .await?;
                session.cycle_id().await?;
                session.user().await?;
            }
            Route::Fail => {
                session
                    .update("n", |n: Option<u64>| n.unwrap_or(0).wrapping_add(1))
                    .await?;
                session.insert("s", "lost").await?;
            }
            Route::FailAfterRead | Route::Vary => {
                session.get::<u64>("n").await?;
            }
        }
        Ok(())
    }
}

type HandlerFuture = Pin<Box<dyn Future<Output = Result<Response<()>, Infallible>> + Send>>;

impl Service<Request<()>> for Handler {
    type Response = Response<()>;
    type Error = Infallible;
    type Future = HandlerFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<()>) -> Self::Future {
        let session = request
            .extensions()
            .get::<Session>()
            .expect("the layer puts a Session into every request")
            .clone();
        let route = Route::from_path(request.uri().path());
        let handler = self.clone();
        Box::pin(async move {
            let mut response = Response::new(());
            match handler.run(&session, route).await {
                Ok(()) => *response.status_mut() = route.status(),
                Err(error) => {
                    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                    let name = match error {
                        SessionError::Store(crate::store::StoreError::CapacityExceeded) => {
                            "capacity".to_owned()
                        }
                        other => format!("{other:?}"),
                    };
                    let value = HeaderValue::from_str(&name)
                        .unwrap_or_else(|_| HeaderValue::from_static("unprintable"));
                    response.headers_mut().insert(ERROR_HEADER, value);
                }
            }
            if route == Route::Vary {
                response
                    .headers_mut()
                    .append(VARY, HeaderValue::from_static("Accept-Encoding"));
            }
            Ok(response)
        })
    }
}
