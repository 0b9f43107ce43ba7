//! Heap allocations the layer adds to a request, counted with a counting global allocator,
//! and the store calls a forged cookie causes (none). Reading one value of an existing
//! session (case 2) adds one allocation to an untouched one: the copy of the stored data
//! the store hands out; the value is found in it without building a map.
//!
//! The allocator counts per thread, so tests running in parallel on other threads do not
//! disturb a measurement. Each measurement drives a warmed-up service by polling its future
//! once with a no-op waker (the paths measured complete without waiting), so no executor
//! allocates in between, and subtracts the same request through the bare inner service.
//!
//! What the numbers are, on a request without a cookie whose handler never touches the
//! session (case 1 of the performance issue):
//!
//! - The layer itself allocates twice: the shared `Session` handle (one `Arc`) and its
//!   slot in the request's extensions (`http::Extensions` boxes every value).
//! - A request that has no extension yet also pays for the extension map: a `Box` for the
//!   map and the first allocation of its hash table, two more. Requests routed by axum
//!   already carry extensions (`OriginalUri`, `MatchedPath`) before a route's layers run;
//!   the first test gives its request one extension to stand for that, the second shows the
//!   raw count without.
//! - Through an axum `Router`, `Router::layer` wraps and boxes every route once more,
//!   whatever the layer, and axum clones that boxed route for each call; the third test
//!   counts the session layer's allocations against an identity layer's. By the time the
//!   layer runs, axum has filled the extension table's first allocation (three slots) with
//!   `OriginalUri`, `MatchedPath` and its URL parameters, so inserting the session grows
//!   it: the session layer costs three allocations there (axum 0.8.9), as would any layer
//!   that inserts one `Arc`. The router is finalized with `with_state(())` as
//!   `axum::serve` does; a `Router<()>` called directly applies its layers again on every
//!   request.
// A global allocator needs `unsafe impl GlobalAlloc`; the library itself forbids unsafe code.
#![allow(unsafe_code)]

#[path = "suite/common/mod.rs"]
mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::convert::Infallible;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::header::COOKIE;
use http::{HeaderValue, Request, Response};
use sessionware::{Key, MemoryStore, Session, SessionLayer};
use tower::{Layer as _, Service, ServiceExt as _};

use common::{Instrumented, tamper};

struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to `System`; the counter is a const-initialized
// thread-local `Cell` without a destructor, which never allocates.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_one();
        // SAFETY: the caller's contract for `alloc` is passed on unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_one();
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_one();
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

fn count_one() {
    // `try_with`: the thread-local may already be gone while a thread shuts down.
    let _ = ALLOCATIONS.try_with(|count| count.set(count.get() + 1));
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Allocations made on this thread while `f` runs.
fn allocations_of<T>(f: impl FnOnce() -> T) -> (u64, T) {
    let before = ALLOCATIONS.with(Cell::get);
    let out = f();
    (ALLOCATIONS.with(Cell::get) - before, out)
}

/// Polls `future` once; the paths measured here never wait.
fn poll_once<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the measured path waited"),
    }
}

/// The inner service: answers at once, never touching the session.
async fn plain(_: Request<String>) -> Result<Response<String>, Infallible> {
    Ok(Response::new(String::new()))
}

/// A marker extension standing for those a router inserts before the layer runs.
#[derive(Clone)]
struct AlreadyRouted;

fn request(cookie: Option<&HeaderValue>, with_extension: bool) -> Request<String> {
    let mut request = Request::new(String::new());
    if let Some(cookie) = cookie {
        request.headers_mut().insert(COOKIE, cookie.clone());
    }
    if with_extension {
        request.extensions_mut().insert(AlreadyRouted);
    }
    request
}

/// Allocations of one call (and dropping its response), median of several warmed-up runs.
fn allocations_per_call<S>(
    service: &mut S,
    cookie: Option<&HeaderValue>,
    with_extension: bool,
) -> u64
where
    S: Service<Request<String>, Response = Response<String>, Error = Infallible>,
{
    let mut counts: Vec<u64> = (0..16)
        .map(|_| {
            let request = request(cookie, with_extension);
            let (count, response) = allocations_of(|| {
                let response = poll_once(service.call(request));
                drop(response);
            });
            let () = response;
            count
        })
        .collect();
    counts.sort_unstable();
    counts[counts.len() / 2]
}

fn layer() -> SessionLayer<Instrumented<MemoryStore>> {
    SessionLayer::new(
        Instrumented::new(MemoryStore::default()),
        Key::from_bytes(&[9; 32]).expect("32 bytes"),
    )
}

/// A cookie of the right shape whose signature fails: a valid value with one character of
/// the signed ID changed.
fn forged_cookie() -> HeaderValue {
    let (name, value) = new_session(layer());
    HeaderValue::from_str(&format!("{name}={}", tamper(&value, 10))).expect("header")
}

/// Creates a session holding `{"n": 1}` through `layer`; returns its cookie's name and value.
fn new_session<S>(layer: SessionLayer<S>) -> (String, String)
where
    S: sessionware::SessionStore,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let app = Router::new()
        .route(
            "/new",
            get(|session: Session| async move { session.insert("n", 1).await.map(|()| "ok") }),
        )
        .layer(layer);
    let response = runtime
        .block_on(app.oneshot(Request::get("/new").body(Body::empty()).expect("request")))
        .expect("infallible");
    let set_cookie = response
        .headers()
        .get(http::header::SET_COOKIE)
        .expect("a new session sets a cookie")
        .to_str()
        .expect("ASCII")
        .to_owned();
    let pair = set_cookie.split(';').next().expect("name=value");
    let (name, value) = pair.split_once('=').expect("name=value");
    (name.to_owned(), value.to_owned())
}

/// A response with one header, as a real handler's would have: the header map's storage
/// is allocated by the handler, not by the layer's `Vary`.
fn text_response() -> Response<String> {
    let mut response = Response::new(String::new());
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain"),
    );
    response
}

/// The inner service of the read measurement, without the read.
async fn text(_: Request<String>) -> Result<Response<String>, Infallible> {
    Ok(text_response())
}

/// The inner service of the read measurement: reads one value of the session.
async fn read_one(request: Request<String>) -> Result<Response<String>, Infallible> {
    let session = request
        .extensions()
        .get::<Session>()
        .expect("the layer's session")
        .clone();
    let value: Option<u64> = session.get("n").await.expect("a readable session");
    assert_eq!(value, Some(1));
    Ok(text_response())
}

#[test]
fn case1_the_layer_adds_at_most_two_allocations() {
    let mut bare = tower::service_fn(plain);
    let mut layered = layer().layer(tower::service_fn(plain));
    // Warm up: lazily initialized statics (tracing's callsite registry, say) allocate once.
    for _ in 0..4 {
        allocations_per_call(&mut layered, None, true);
    }
    let without = allocations_per_call(&mut bare, None, true);
    let with = allocations_per_call(&mut layered, None, true);
    eprintln!("case 1, request already carrying an extension: bare {without}, layered {with}");
    assert!(
        with - without <= 2,
        "the layer added {} allocations (bare service {without}, with the layer {with})",
        with - without
    );
}

#[test]
fn case1_raw_count_includes_the_extension_map() {
    let mut bare = tower::service_fn(plain);
    let mut layered = layer().layer(tower::service_fn(plain));
    for _ in 0..4 {
        allocations_per_call(&mut layered, None, false);
    }
    let without = allocations_per_call(&mut bare, None, false);
    let with = allocations_per_call(&mut layered, None, false);
    eprintln!("case 1, request without extensions: bare {without}, layered {with}");
    // Two of the layer's own, and the extension map's box and table.
    assert!(
        with - without <= 4,
        "the layer added {} allocations (bare service {without}, with the layer {with})",
        with - without
    );
}

#[test]
fn case1_through_an_axum_router() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    // `with_state(())` builds the routes and applies the layers once, as `axum::serve`
    // does; otherwise axum would apply them again for every request.
    let routes = || Router::new().route("/plain", get(|| async { "ok" }));
    let bare = routes().with_state(());
    // `Router::layer` wraps and boxes each route once more whatever the layer: an identity
    // layer isolates that cost from the session layer's own.
    let identity = routes()
        .layer(tower::layer::util::Identity::new())
        .with_state(());
    let layered = routes().layer(layer()).with_state(());
    let count = |router: &Router| {
        let mut counts: Vec<u64> = (0..16)
            .map(|_| {
                let request = Request::get("/plain").body(Body::empty()).expect("request");
                let router = router.clone();
                allocations_of(|| {
                    let response = runtime
                        .block_on(router.oneshot(request))
                        .expect("infallible");
                    drop(response);
                })
                .0
            })
            .collect();
        counts.sort_unstable();
        counts[counts.len() / 2]
    };
    for router in [&bare, &identity, &layered] {
        count(router);
    }
    let (without, identity, with) = (count(&bare), count(&identity), count(&layered));
    eprintln!(
        "case 1 through axum's Router: no layer {without}, identity layer {identity}, \
         session layer {with}"
    );
    // Two of the layer's own and the growth of the extension table.
    assert!(
        with - identity <= 3,
        "the layer added {} allocations through axum (identity layer {identity}, session \
         layer {with})",
        with - identity
    );
}

#[test]
fn case5_a_forged_cookie_allocates_no_more_than_no_cookie() {
    let forged = forged_cookie();
    let mut layered = layer().layer(tower::service_fn(plain));
    for _ in 0..4 {
        allocations_per_call(&mut layered, Some(&forged), true);
        allocations_per_call(&mut layered, None, true);
    }
    let no_cookie = allocations_per_call(&mut layered, None, true);
    let with_forged = allocations_per_call(&mut layered, Some(&forged), true);
    eprintln!("case 5: no cookie {no_cookie}, forged cookie {with_forged}");
    assert!(
        with_forged <= no_cookie,
        "a forged cookie allocated {with_forged} times, no cookie {no_cookie}"
    );
}

#[test]
fn case5_a_forged_cookie_never_reaches_the_store() {
    let forged = forged_cookie();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let layer = layer();
    let calls = layer.store().calls.clone();
    // The handler reads the session: even then, a forged cookie causes no store call.
    let app = Router::new()
        .route(
            "/read",
            get(|session: Session| async move {
                let value: Option<u64> = session.get("n").await?;
                Ok::<_, sessionware::SessionError>(
                    value.map_or("none".to_owned(), |n| n.to_string()),
                )
            }),
        )
        .layer(layer);
    for _ in 0..100 {
        let request = Request::get("/read")
            .header(COOKIE, forged.clone())
            .body(Body::empty())
            .expect("request");
        let response = runtime
            .block_on(app.clone().oneshot(request))
            .expect("infallible");
        assert_eq!(response.status(), http::StatusCode::OK);
        assert!(response.headers().get(http::header::SET_COOKIE).is_none());
    }
    assert_eq!(
        calls.total(),
        0,
        "a forged cookie reached the store: {calls:?}"
    );
}

#[test]
fn case2_a_read_allocates_only_the_copy_of_the_stored_data() {
    // A plain `MemoryStore`: the instrumented one keeps the boxed-future path on purpose.
    let layer = || {
        SessionLayer::new(
            MemoryStore::default(),
            Key::from_bytes(&[9; 32]).expect("32 bytes"),
        )
    };
    let layer = layer();
    let (name, value) = new_session(layer.clone());
    let cookie = HeaderValue::from_str(&format!("{name}={value}")).expect("header");
    let mut untouched = layer.clone().layer(tower::service_fn(text));
    let mut read = layer.layer(tower::service_fn(read_one));
    for _ in 0..4 {
        allocations_per_call(&mut untouched, Some(&cookie), true);
        allocations_per_call(&mut read, Some(&cookie), true);
    }
    let without = allocations_per_call(&mut untouched, Some(&cookie), true);
    let with = allocations_per_call(&mut read, Some(&cookie), true);
    eprintln!("case 2: session untouched {without}, one value read {with}");
    // The record the store hands out owns a copy of the stored data; the value is read
    // from it without building a map of the session's values.
    assert!(
        with - without <= 1,
        "reading one value allocated {} times (untouched {without}, read {with})",
        with - without
    );
}
