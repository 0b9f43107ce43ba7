//! Helpers shared by the integration tests: an axum app exercising every session operation,
//! a cookie-keeping client, and store wrappers that count calls and inject failures.
#![allow(dead_code, unreachable_pub)]

pub mod proxy;
#[cfg(feature = "redis")]
pub mod redis_server;

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Body;
use axum::extract::Path;
use axum::http::{Request, Response, StatusCode, header};
use axum::routing::{get, post};
use http_body_util::BodyExt as _;
use sessionware::{
    CreateOutcome, Expiry, LoadOutcome, Record, RotateOutcome, SaveOutcome, Session, SessionError,
    SessionHandle, SessionInfo, SessionStore, StoreError, StoreFuture, StoreKey, TouchOutcome,
    UserIndex,
};
use tower::ServiceExt as _;

/// The axum app every behaviour test drives.
pub fn app() -> Router {
    Router::new()
        .route("/plain", get(|| async { "ok" }))
        .route("/get/{key}", get(get_value))
        .route("/set/{key}/{value}", post(set_value))
        .route("/remove/{key}", post(remove_value))
        .route("/incr/{key}", post(increment))
        .route("/incr-then-fail/{key}", post(increment_then_fail))
        .route(
            "/login-incr-fail/{user}/{key}",
            post(login_increment_then_fail),
        )
        .route("/cycle-incr-fail/{key}", post(cycle_increment_then_fail))
        .route("/login/{user}", post(login))
        .route("/user", get(user))
        .route("/logout", post(logout))
        .route("/cycle", post(cycle))
        .route("/clear", post(clear))
        .route("/expiry/idle/{secs}", post(expiry_idle))
        .route("/expiry/browser", post(expiry_browser))
        .route("/expiry/at/{secs_from_now}", post(expiry_at))
        .route("/fail", post(set_then_fail))
        .route("/panic", post(set_then_panic))
        .route("/handle", get(handle))
        .route("/sessions", get(user_sessions))
        .route("/revoke-others", post(revoke_others))
}

async fn get_value(session: Session, Path(key): Path<String>) -> Result<String, SessionError> {
    let value: Option<String> = session.get(&key).await?;
    Ok(value.unwrap_or_else(|| "none".to_owned()))
}

async fn set_value(
    session: Session,
    Path((key, value)): Path<(String, String)>,
) -> Result<&'static str, SessionError> {
    session.insert(&key, value).await?;
    Ok("set")
}

async fn remove_value(
    session: Session,
    Path(key): Path<String>,
) -> Result<&'static str, SessionError> {
    session.remove::<serde_json::Value>(&key).await?;
    Ok("removed")
}

async fn increment(session: Session, Path(key): Path<String>) -> Result<String, SessionError> {
    let n: u64 = session
        .update(&key, |n: Option<u64>| n.unwrap_or(0) + 1)
        .await?;
    Ok(n.to_string())
}

async fn increment_then_fail(
    session: Session,
    Path(key): Path<String>,
) -> Result<(StatusCode, String), SessionError> {
    let n: u64 = session
        .update(&key, |n: Option<u64>| n.unwrap_or(0) + 1)
        .await?;
    Ok((StatusCode::INTERNAL_SERVER_ERROR, n.to_string()))
}

async fn login_increment_then_fail(
    session: Session,
    Path((user, key)): Path<(String, String)>,
) -> Result<(StatusCode, String), SessionError> {
    session.login(user).await?;
    increment_then_fail(session, Path(key)).await
}

async fn cycle_increment_then_fail(
    session: Session,
    Path(key): Path<String>,
) -> Result<(StatusCode, String), SessionError> {
    session.cycle_id().await?;
    increment_then_fail(session, Path(key)).await
}

async fn login(session: Session, Path(user): Path<String>) -> Result<&'static str, SessionError> {
    session.login(user).await?;
    Ok("welcome")
}

async fn user(session: Session) -> Result<Response<Body>, SessionError> {
    Ok(match session.user().await? {
        Some(user) => Response::new(Body::from(user)),
        None => Response::builder()
            .status(StatusCode::UNAUTHORIZED)
            .body(Body::empty())
            .expect("valid response"),
    })
}

async fn logout(session: Session) -> Result<&'static str, SessionError> {
    session.destroy().await?;
    Ok("bye")
}

async fn cycle(session: Session) -> Result<&'static str, SessionError> {
    session.cycle_id().await?;
    Ok("cycled")
}

async fn clear(session: Session) -> Result<&'static str, SessionError> {
    session.clear().await?;
    Ok("cleared")
}

async fn expiry_idle(
    session: Session,
    Path(secs): Path<u64>,
) -> Result<&'static str, SessionError> {
    session
        .set_expiry(Some(Expiry::OnInactivity(Duration::from_secs(secs))))
        .await?;
    Ok("set")
}

async fn expiry_browser(session: Session) -> Result<&'static str, SessionError> {
    session.set_expiry(Some(Expiry::OnBrowserClose)).await?;
    Ok("set")
}

async fn expiry_at(session: Session, Path(secs): Path<u64>) -> Result<&'static str, SessionError> {
    let created = session.created_at().await?.unwrap_or_else(SystemTime::now);
    session
        .set_expiry(Some(Expiry::AtDateTime(
            created + Duration::from_secs(secs),
        )))
        .await?;
    Ok("set")
}

async fn set_then_fail(session: Session) -> Result<(StatusCode, &'static str), SessionError> {
    session.insert("doomed", "yes").await?;
    session.login("doomed-user").await?;
    Ok((StatusCode::INTERNAL_SERVER_ERROR, "failed"))
}

async fn set_then_panic(session: Session) -> &'static str {
    session.insert("doomed", "yes").await.expect("insert");
    panic!("handler panics after writing to the session");
}

async fn handle(session: Session) -> Result<String, SessionError> {
    Ok(session
        .handle()
        .await?
        .map_or_else(|| "none".to_owned(), |handle| handle.to_string()))
}

/// The number of the user's sessions; 501 when the store keeps no per-user index.
async fn user_sessions(session: Session) -> (StatusCode, String) {
    index_reply(
        session
            .user_sessions()
            .await
            .map(|listed| listed.len() as u64),
    )
}

async fn revoke_others(session: Session) -> (StatusCode, String) {
    index_reply(session.revoke_other_sessions().await)
}

fn index_reply(result: Result<u64, SessionError>) -> (StatusCode, String) {
    match result {
        Ok(count) => (StatusCode::OK, count.to_string()),
        Err(SessionError::Store(StoreError::Unsupported { operation })) => {
            (StatusCode::NOT_IMPLEMENTED, operation.to_owned())
        }
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()),
    }
}

/// A response reduced to what the tests look at.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: String,
}

impl Reply {
    /// Every `Set-Cookie` header.
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|value| value.to_str().expect("ASCII").to_owned())
            .collect()
    }

    /// The single session `Set-Cookie`, if any (asserts there is at most one).
    pub fn session_cookie(&self) -> Option<SetCookie> {
        let cookies = self.set_cookies();
        assert!(cookies.len() <= 1, "more than one Set-Cookie: {cookies:?}");
        cookies.first().map(|raw| SetCookie::parse(raw))
    }

    pub fn header(&self, name: header::HeaderName) -> Option<String> {
        self.headers
            .get(name)
            .map(|value| value.to_str().expect("ASCII").to_owned())
    }
}

/// A parsed `Set-Cookie`.
#[derive(Debug, Clone)]
pub struct SetCookie {
    pub raw: String,
    pub name: String,
    pub value: String,
    pub attributes: Vec<String>,
}

impl SetCookie {
    pub fn parse(raw: &str) -> Self {
        let mut parts = raw.split("; ");
        let pair = parts.next().expect("name=value");
        let (name, value) = pair.split_once('=').expect("name=value");
        Self {
            raw: raw.to_owned(),
            name: name.to_owned(),
            value: value.to_owned(),
            attributes: parts.map(str::to_owned).collect(),
        }
    }

    pub fn has(&self, attribute: &str) -> bool {
        self.attributes
            .iter()
            .any(|a| a.eq_ignore_ascii_case(attribute))
    }

    pub fn attribute(&self, name: &str) -> Option<String> {
        self.attributes.iter().find_map(|a| {
            let (key, value) = a.split_once('=')?;
            key.eq_ignore_ascii_case(name).then(|| value.to_owned())
        })
    }

    pub fn max_age(&self) -> Option<u64> {
        self.attribute("Max-Age")
            .map(|v| v.parse().expect("numeric Max-Age"))
    }

    pub fn is_removal(&self) -> bool {
        self.value.is_empty() && self.max_age() == Some(0)
    }
}

/// Sends one request to `service` with an optional raw `Cookie` header.
pub async fn send<S>(service: &S, method: &str, uri: &str, cookie: Option<&str>) -> Reply
where
    S: tower::Service<Request<Body>, Response = Response<Body>> + Clone,
    S::Error: std::fmt::Debug,
{
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    let request = request.body(Body::empty()).expect("valid request");
    let response = service.clone().oneshot(request).await.expect("infallible");
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("body").to_bytes();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// A browser-like client with one cookie jar slot for the session cookie.
#[derive(Clone)]
pub struct Client<S> {
    pub service: S,
    pub cookie_name: String,
    pub cookie: Option<String>,
}

impl<S> Client<S>
where
    S: tower::Service<Request<Body>, Response = Response<Body>> + Clone,
    S::Error: std::fmt::Debug,
{
    pub fn new(service: S) -> Self {
        Self {
            service,
            cookie_name: "__Host-session".to_owned(),
            cookie: None,
        }
    }

    /// The `Cookie` header this client would send.
    pub fn cookie_header(&self) -> Option<String> {
        self.cookie
            .as_ref()
            .map(|value| format!("{}={value}", self.cookie_name))
    }

    /// Sends a request with the jar's cookie and stores any session cookie set.
    pub async fn send(&mut self, method: &str, uri: &str) -> Reply {
        let reply = send(&self.service, method, uri, self.cookie_header().as_deref()).await;
        if let Some(set) = reply.session_cookie() {
            assert_eq!(set.name, self.cookie_name);
            self.cookie = if set.is_removal() {
                None
            } else {
                Some(set.value)
            };
        }
        reply
    }
}

/// `value` with the character at `at` changed to another base64url character.
pub fn tamper(value: &str, at: usize) -> String {
    let mut bytes = value.as_bytes().to_vec();
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).expect("ASCII")
}

/// The store key a cookie value names: SHA-256 of the decoded ID part.
pub fn store_key_of(cookie_value: &str) -> StoreKey {
    use base64::Engine as _;
    use sha2::Digest as _;
    let id_part = cookie_value.split('.').next().expect("id part");
    let id = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(id_part)
        .expect("base64 id");
    StoreKey::from_bytes(sha2::Sha256::digest(&id).into())
}

/// A store chosen at run time, as the layer takes it.
pub type DynStore = Arc<dyn SessionStore>;

/// `store` behind a `dyn SessionStore`.
pub fn erased(store: impl SessionStore) -> DynStore {
    Arc::new(store)
}

/// Counts of each store operation.
#[derive(Debug, Default)]
pub struct Calls {
    pub load: AtomicUsize,
    pub create: AtomicUsize,
    pub save: AtomicUsize,
    pub touch: AtomicUsize,
    pub delete: AtomicUsize,
    pub rotate: AtomicUsize,
    pub other: AtomicUsize,
}

impl Calls {
    pub fn total(&self) -> usize {
        [
            &self.load,
            &self.create,
            &self.save,
            &self.touch,
            &self.delete,
            &self.rotate,
            &self.other,
        ]
        .iter()
        .map(|c| c.load(Ordering::SeqCst))
        .sum()
    }

    pub fn get(&self, counter: &AtomicUsize) -> usize {
        counter.load(Ordering::SeqCst)
    }
}

/// Wraps a store: counts every call, remembers every key it was given, and fails every
/// operation while `failing` is set.
///
/// Its futures are boxed and it is not [immediate](SessionStore::is_immediate), so tests
/// through it exercise the layer's async store path, while tests on a bare `MemoryStore`
/// exercise the immediate one.
#[derive(Clone)]
pub struct Instrumented<S> {
    pub inner: S,
    pub calls: Arc<Calls>,
    pub failing: Arc<AtomicBool>,
    pub keys_seen: Arc<std::sync::Mutex<Vec<StoreKey>>>,
}

impl<S> Instrumented<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            calls: Arc::default(),
            failing: Arc::default(),
            keys_seen: Arc::default(),
        }
    }

    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    fn enter(&self, counter: &AtomicUsize, key: Option<&StoreKey>) -> Result<(), StoreError> {
        counter.fetch_add(1, Ordering::SeqCst);
        if let Some(key) = key {
            self.keys_seen.lock().expect("lock").push(*key);
        }
        if self.failing.load(Ordering::SeqCst) {
            return Err(StoreError::unavailable(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                "injected store failure",
            )));
        }
        Ok(())
    }
}

impl<S: SessionStore> SessionStore for Instrumented<S> {
    fn load<'a>(
        &'a self,
        key: &'a StoreKey,
        now: SystemTime,
    ) -> StoreFuture<'a, Result<LoadOutcome, StoreError>> {
        StoreFuture::boxed(async move {
            self.enter(&self.calls.load, Some(key))?;
            self.inner.load(key, now).await
        })
    }
    fn create<'a>(
        &'a self,
        key: &'a StoreKey,
        record: &'a Record,
        now: SystemTime,
    ) -> StoreFuture<'a, Result<CreateOutcome, StoreError>> {
        StoreFuture::boxed(async move {
            self.enter(&self.calls.create, Some(key))?;
            self.inner.create(key, record, now).await
        })
    }
    fn save<'a>(
        &'a self,
        key: &'a StoreKey,
        record: &'a Record,
        expected_version: u64,
        now: SystemTime,
    ) -> StoreFuture<'a, Result<SaveOutcome, StoreError>> {
        StoreFuture::boxed(async move {
            self.enter(&self.calls.save, Some(key))?;
            self.inner.save(key, record, expected_version, now).await
        })
    }
    fn touch<'a>(
        &'a self,
        key: &'a StoreKey,
        expected_version: u64,
        last_active: SystemTime,
        expires_at: SystemTime,
        now: SystemTime,
    ) -> StoreFuture<'a, Result<TouchOutcome, StoreError>> {
        StoreFuture::boxed(async move {
            self.enter(&self.calls.touch, Some(key))?;
            self.inner
                .touch(key, expected_version, last_active, expires_at, now)
                .await
        })
    }
    fn delete<'a>(
        &'a self,
        key: &'a StoreKey,
        now: SystemTime,
    ) -> StoreFuture<'a, Result<bool, StoreError>> {
        StoreFuture::boxed(async move {
            self.enter(&self.calls.delete, Some(key))?;
            self.inner.delete(key, now).await
        })
    }
    fn rotate<'a>(
        &'a self,
        old: &'a StoreKey,
        new: &'a StoreKey,
        record: &'a Record,
        expected_version: u64,
        now: SystemTime,
    ) -> StoreFuture<'a, Result<RotateOutcome, StoreError>> {
        StoreFuture::boxed(async move {
            self.enter(&self.calls.rotate, Some(old))?;
            self.keys_seen.lock().expect("lock").push(*new);
            self.inner
                .rotate(old, new, record, expected_version, now)
                .await
        })
    }
    fn delete_expired(&self, now: SystemTime) -> StoreFuture<'_, Result<u64, StoreError>> {
        StoreFuture::boxed(async move {
            self.enter(&self.calls.other, None)?;
            self.inner.delete_expired(now).await
        })
    }
    fn user_index(&self) -> Option<&dyn UserIndex> {
        self.inner.user_index().map(|_| self as &dyn UserIndex)
    }
}

impl<S: SessionStore> Instrumented<S> {
    fn inner_index(&self) -> &dyn UserIndex {
        self.inner
            .user_index()
            .expect("only offered when the inner store has an index")
    }
}

impl<S: SessionStore> UserIndex for Instrumented<S> {
    fn sessions_of<'a>(
        &'a self,
        user: &'a str,
        now: SystemTime,
    ) -> StoreFuture<'a, Result<Vec<SessionInfo>, StoreError>> {
        StoreFuture::boxed(async move {
            self.enter(&self.calls.other, None)?;
            self.inner_index().sessions_of(user, now).await
        })
    }
    fn revoke_user<'a>(
        &'a self,
        user: &'a str,
        except: Option<&'a SessionHandle>,
        now: SystemTime,
    ) -> StoreFuture<'a, Result<u64, StoreError>> {
        StoreFuture::boxed(async move {
            self.enter(&self.calls.other, None)?;
            self.inner_index().revoke_user(user, except, now).await
        })
    }
    fn revoke<'a>(
        &'a self,
        handle: &'a SessionHandle,
        now: SystemTime,
    ) -> StoreFuture<'a, Result<bool, StoreError>> {
        StoreFuture::boxed(async move {
            self.enter(&self.calls.other, None)?;
            self.inner_index().revoke(handle, now).await
        })
    }
}

/// A `tracing` writer that keeps what is written, for tests that read the logs.
#[derive(Clone, Default)]
pub struct Captured(pub Arc<std::sync::Mutex<Vec<u8>>>);

impl Captured {
    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).expect("UTF-8 logs")
    }
}

impl io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Installs (once per test binary) a global subscriber that records every event at every
/// level. A global one, because per-thread subscribers race on tracing's global level hint
/// when tests run in parallel. All tests share the buffer, which only makes the "never
/// appears" checks stricter.
pub fn capture_tracing() -> (Captured, ()) {
    static CAPTURED: std::sync::OnceLock<Captured> = std::sync::OnceLock::new();
    let captured = CAPTURED.get_or_init(|| {
        let captured = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(captured.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_global_default(subscriber)
            .expect("no other global subscriber in this test binary");
        captured
    });
    (captured.clone(), ())
}
