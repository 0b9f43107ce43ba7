//! The least a layer built to the design can do to serve a session read: a floor for cases
//! 1, 2, 3 and 5, measured in the same rounds as the real layers.
//!
//! It does exactly the work the design makes every request pay, each step in its cheapest
//! form, and nothing else:
//!
//! - find the cookie by name (a `memchr` split of the header's bytes), check its length,
//!   base64-decode the ID and the tag, check the tag with a pre-keyed HMAC-SHA256 in
//!   constant time;
//! - put a fresh `Arc` handle into the request's extensions and call the inner service at
//!   once, with a named response future;
//! - on a read: SHA-256 of the ID, one lookup in a sharded map (`DashMap`, hashed by eight
//!   bytes of the key, as `MemoryStore`), the idle and absolute deadlines and the touch interval checked
//!   against the system clock, and the value deserialized straight from the stored JSON
//!   under the shard's read lock (not even copied out);
//! - on an increment: the same read under the shard's write lock, the version compared
//!   and bumped, the value serialized back and stored with a new idle deadline;
//! - on the response: `Vary: Cookie` when the session was read, and a `Set-Cookie` with a
//!   fresh `Max-Age` (and `Cache-Control: no-store`) when the deadline moved, which in a
//!   tight loop is about once a millisecond, as for sessionware.
//!
//! What it leaves out, and a real layer cannot: a per-request lock (two handlers' clones of
//! one handle may run at once), change tracking, the store trait, per-session expiry,
//! security-event counters, an asynchronous `get` (a store may have to wait), and every
//! write path but the increment's. So sessionware's overhead minus this one's is what
//! all of that costs, and a target below this layer's overhead is below the floor.

use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::header::{CACHE_CONTROL, COOKIE, SET_COOKIE, VARY};
use axum::http::{HeaderValue, Request, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use dashmap::DashMap;
use hmac::{Hmac, KeyInit as _, Mac as _};
use sha2::{Digest as _, Sha256};
use tower::{Layer, Service};

use super::{COOKIE_NAME, IDLE_TIMEOUT};

/// The stored session: its version, times and values as JSON.
struct Entry {
    version: u64,
    created_ms: u64,
    last_active_ms: u64,
    expires_at_ms: u64,
    data: Box<[u8]>,
}

impl Entry {
    /// Whether the session is past its idle or absolute deadline at `now`.
    fn is_expired(&self, now: u64) -> bool {
        self.expires_at_ms <= now || self.created_ms + ABSOLUTE_MS <= now
    }
}

/// sessionware's default absolute timeout and touch interval.
const ABSOLUTE_MS: u64 = 12 * 3600 * 1000;
const TOUCH_AFTER_MS: u64 = 60 * 1000;

struct Shared {
    /// HMAC-SHA256 keyed, with the purpose label already absorbed.
    keyed: Hmac<Sha256>,
    store: DashMap<[u8; 32], Entry, KeyHasher>,
}

/// The store key is a SHA-256 digest: eight of its bytes are already a uniform hash (as in
/// `MemoryStore`), where the default SipHash took 30 ns.
#[derive(Clone, Default)]
struct KeyHasher;

impl std::hash::BuildHasher for KeyHasher {
    type Hasher = FirstEightBytes;

    fn build_hasher(&self) -> FirstEightBytes {
        FirstEightBytes(0)
    }
}

struct FirstEightBytes(u64);

impl std::hash::Hasher for FirstEightBytes {
    fn write(&mut self, bytes: &[u8]) {
        if let Some(word) = bytes.first_chunk::<8>() {
            self.0 = u64::from_le_bytes(*word);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl Shared {
    /// The signed cookie of `id`.
    fn set_cookie(&self, id: &[u8; 32], max_age: Duration) -> HeaderValue {
        let mut mac = self.keyed.clone();
        mac.update(id);
        let tag = mac.finalize().into_bytes();
        let value = format!(
            "{COOKIE_NAME}={}.{}; Path=/; Max-Age={}; Secure; HttpOnly; SameSite=Lax",
            URL_SAFE_NO_PAD.encode(id),
            URL_SAFE_NO_PAD.encode(tag),
            max_age.as_secs()
        );
        HeaderValue::from_str(&value).expect("a valid header")
    }
}

/// The layer.
#[derive(Clone)]
pub(crate) struct MinimalLayer(Arc<Shared>);

impl MinimalLayer {
    pub(crate) fn new() -> Self {
        let mut keyed = Hmac::<Sha256>::new_from_slice(&[7; 32]).expect("any key length");
        keyed.update(b"sessionware/session/v1");
        Self(Arc::new(Shared {
            keyed,
            store: DashMap::with_hasher(KeyHasher),
        }))
    }
}

impl<S> Layer<S> for MinimalLayer {
    type Service = MinimalService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MinimalService {
            inner,
            shared: self.0.clone(),
        }
    }
}

#[derive(Clone)]
pub(crate) struct MinimalService<S> {
    inner: S,
    shared: Arc<Shared>,
}

/// The per-request handle, as the handler extracts it.
#[derive(Clone)]
pub(crate) struct MinimalSession(Arc<State>);

struct State {
    shared: Arc<Shared>,
    id: Option<[u8; 32]>,
    read: AtomicBool,
    /// The idle deadline moved: the cookie needs a fresh `Max-Age`.
    deadline_moved: AtomicBool,
}

impl MinimalSession {
    /// Reads the `u64` stored under `counter`, if the session exists and is live.
    pub(crate) fn counter(&self) -> Option<u64> {
        self.0.read.store(true, Ordering::Relaxed);
        let id = self.0.id.as_ref()?;
        let key: [u8; 32] = Sha256::digest(id).into();
        let entry = self.0.shared.store.get(&key)?;
        let now = now_ms();
        if entry.is_expired(now) {
            return None;
        }
        // A read extends the idle deadline only once a touch interval has passed (a write
        // the benchmark never reaches within a minute; sessionware's touch is not measured
        // either).
        let _touch_due = black_box(now - entry.last_active_ms >= TOUCH_AFTER_MS);
        serde_json::from_slice::<Values>(&entry.data)
            .ok()
            .map(|values| values.counter)
    }

    /// Adds one to the `u64` stored under `counter` and returns the new value: the read
    /// above, then the value serialized back to JSON and written, with a new idle deadline,
    /// under the shard's write lock (which is what makes it atomic). No `Set-Cookie`:
    /// sessionware sends one only when the deadline moved by a millisecond, which a tight
    /// loop rarely sees.
    pub(crate) fn increment(&self) -> Option<u64> {
        self.0.read.store(true, Ordering::Relaxed);
        let id = self.0.id.as_ref()?;
        let key: [u8; 32] = Sha256::digest(id).into();
        let mut entry = self.0.shared.store.get_mut(&key)?;
        let now = now_ms();
        if entry.is_expired(now) {
            return None;
        }
        let expected = black_box(entry.version);
        let mut values = serde_json::from_slice::<Values>(&entry.data).ok()?;
        values.counter += 1;
        let data = serde_json::to_vec(&values).ok()?.into_boxed_slice();
        // The compare of a compare-and-swap; under the shard's write lock it always holds.
        if entry.version != expected {
            return None;
        }
        let expires_at_ms = (now + idle_ms()).min(entry.created_ms + ABSOLUTE_MS);
        if expires_at_ms != entry.expires_at_ms {
            self.0.deadline_moved.store(true, Ordering::Relaxed);
        }
        *entry = Entry {
            version: expected + 1,
            created_ms: entry.created_ms,
            last_active_ms: now,
            expires_at_ms,
            data,
        };
        Some(values.counter)
    }

    /// Creates a session holding `{"counter": 1}` and returns its `Set-Cookie` value (for
    /// the setup of the benchmarks only; not a measured path).
    pub(crate) fn create(&self) -> HeaderValue {
        let id: [u8; 32] = rand::random();
        let key: [u8; 32] = Sha256::digest(id).into();
        let now = now_ms();
        self.0.shared.store.insert(
            key,
            Entry {
                version: 1,
                created_ms: now,
                last_active_ms: now,
                expires_at_ms: now + idle_ms(),
                data: br#"{"counter":1}"#.to_vec().into_boxed_slice(),
            },
        );
        self.0.shared.set_cookie(&id, IDLE_TIMEOUT)
    }
}

/// The session's values, as the benchmarks store them.
#[derive(serde::Deserialize, serde::Serialize)]
struct Values {
    counter: u64,
}

fn idle_ms() -> u64 {
    u64::try_from(IDLE_TIMEOUT.as_millis()).expect("small")
}

fn now_ms() -> u64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    since.as_secs() * 1000 + u64::from(since.subsec_millis())
}

impl<S> MinimalService<S> {
    fn verified_id(&self, headers: &axum::http::HeaderMap) -> Option<[u8; 32]> {
        // Bytes, split with `memchr`, as sessionware does: a `str` split with a trim was
        // twice as slow.
        let header = headers.get(COOKIE)?.as_bytes();
        let mut start = 0;
        let value = std::iter::from_fn(|| {
            if start > header.len() {
                return None;
            }
            let end = memchr::memchr(b';', &header[start..]).map_or(header.len(), |at| start + at);
            let pair = &header[start..end];
            start = end + 1;
            Some(pair)
        })
        .find_map(|pair| {
            pair.trim_ascii()
                .strip_prefix(COOKIE_NAME.as_bytes())?
                .strip_prefix(b"=")
        })?;
        if value.len() != 87 || value[43] != b'.' {
            return None;
        }
        let (id, tag) = (&value[..43], &value[44..]);
        let (mut id_bytes, mut tag_bytes) = ([0u8; 32], [0u8; 32]);
        URL_SAFE_NO_PAD.decode_slice(id, &mut id_bytes).ok()?;
        URL_SAFE_NO_PAD.decode_slice(tag, &mut tag_bytes).ok()?;
        let mut mac = self.shared.keyed.clone();
        mac.update(&id_bytes);
        mac.verify_slice(&tag_bytes).ok()?;
        Some(id_bytes)
    }
}

impl<S, B, R> Service<Request<B>> for MinimalService<S>
where
    S: Service<Request<B>, Response = Response<R>>,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = MinimalFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let session = MinimalSession(Arc::new(State {
            shared: self.shared.clone(),
            id: self.verified_id(request.headers()),
            read: AtomicBool::new(false),
            deadline_moved: AtomicBool::new(false),
        }));
        request.extensions_mut().insert(session.clone());
        MinimalFuture {
            future: self.inner.call(request),
            session: Some(session),
        }
    }
}

pin_project_lite::pin_project! {
    pub(crate) struct MinimalFuture<F> {
        #[pin]
        future: F,
        session: Option<MinimalSession>,
    }
}

impl<F, R, E> Future for MinimalFuture<F>
where
    F: Future<Output = Result<Response<R>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = ready!(this.future.poll(cx))?;
        let session = this.session.take().expect("polled after completion");
        let state = &session.0;
        if state.read.load(Ordering::Relaxed) {
            response
                .headers_mut()
                .append(VARY, HeaderValue::from_static("cookie"));
        }
        if let Some(id) = &state.id
            && state.deadline_moved.load(Ordering::Relaxed)
        {
            let cookie = state.shared.set_cookie(id, IDLE_TIMEOUT);
            let headers = response.headers_mut();
            headers.append(SET_COOKIE, cookie);
            headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
        Poll::Ready(Ok(response))
    }
}

/// The routes of the minimal app (the same paths as the others; only `/read` and `/new`
/// use the session).
pub(super) fn router() -> axum::Router {
    use axum::Extension;
    use axum::routing::{get, post};

    axum::Router::new()
        .route("/plain", get(|| async { "ok" }))
        .route(
            "/read",
            get(|Extension(session): Extension<MinimalSession>| async move {
                session.counter().unwrap_or(0).to_string()
            }),
        )
        .route(
            "/increment",
            post(|Extension(session): Extension<MinimalSession>| async move {
                session.increment().unwrap_or(0).to_string()
            }),
        )
        .route("/increment-get-insert", post(|| async { 1u64.to_string() }))
        .route(
            "/new",
            post(|Extension(session): Extension<MinimalSession>| async move {
                ([(SET_COOKIE, session.create())], 1u64.to_string())
            }),
        )
        .layer(MinimalLayer::new())
}
