//! [`StoreFuture`]: what a store operation returns, ready at once or boxed.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// The future of a store operation.
///
/// A store that answers without waiting (an in-process map) returns
/// [`StoreFuture::ready`], which costs nothing; a store doing I/O returns
/// [`StoreFuture::boxed`], one allocation per operation. Either way the trait stays
/// object-safe, so the layer holds every store behind one `dyn SessionStore` and handlers
/// see one `Session` type whatever the store.
#[must_use = "futures do nothing unless polled"]
pub struct StoreFuture<'a, T> {
    inner: Inner<'a, T>,
}

enum Inner<'a, T> {
    Ready(Option<T>),
    Boxed(Pin<Box<dyn Future<Output = T> + Send + 'a>>),
}

// The value of a ready future is moved out, never pinned, and the boxed future is pinned on
// the heap: the wrapper can move freely.
impl<T> Unpin for StoreFuture<'_, T> {}

impl<'a, T> StoreFuture<'a, T> {
    /// A future that is ready with `value`.
    pub fn ready(value: T) -> Self {
        Self {
            inner: Inner::Ready(Some(value)),
        }
    }

    /// `future`, boxed.
    pub fn boxed(future: impl Future<Output = T> + Send + 'a) -> Self {
        Self {
            inner: Inner::Boxed(Box::pin(future)),
        }
    }
}

impl<T> Future for StoreFuture<'_, T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        match &mut self.get_mut().inner {
            Inner::Ready(value) => {
                Poll::Ready(value.take().expect("StoreFuture polled after completion"))
            }
            Inner::Boxed(future) => future.as_mut().poll(cx),
        }
    }
}

impl<T> fmt::Debug for StoreFuture<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.inner {
            Inner::Ready(_) => "ready",
            Inner::Boxed(_) => "boxed",
        };
        f.debug_tuple("StoreFuture").field(&kind).finish()
    }
}
