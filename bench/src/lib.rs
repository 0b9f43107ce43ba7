//! The harness the benchmarks (`benches/rounds.rs`, `benches/sessions.rs`) and the memory
//! comparison (`tests/memory.rs`) share: the apps under test (no session layer, floors, the
//! minimal layer, sessionware, tower-sessions 0.15), the request of each case, the stores
//! filled with live sessions, and the resident-set probe.
//!
//! Every app is an axum `Router` with the same routes, driven in-process with
//! `tower::ServiceExt::oneshot`. The handlers do the same work on both sides; the no-layer
//! baseline has the same routes with handlers that return the same kind of body without a
//! session.
//!
//! What each side does per request, beyond the handler:
//!
//! - sessionware: finds its cookie, verifies the HMAC, puts a lazy handle in the request.
//!   A read loads the record (one `MemoryStore::load`); a read-only request extends the idle
//!   deadline (one `touch`) only when a minute has passed since the last extension, so the
//!   benchmarks see that write about once a minute. `update` commits at once by
//!   compare-and-swap; every write moves the idle deadline, so the response carries a new
//!   `Set-Cookie` with `Max-Age`.
//! - tower-sessions: its `CookieManager` parses every cookie of the request into a jar, the
//!   signed jar verifies the HMAC, the session is created lazily too. A read loads the record
//!   from its `MemoryStore` (a `tokio::sync::Mutex` around a `HashMap`, records cloned out);
//!   a read-only request never extends the expiry (it does only with `with_always_save`).
//!   A write saves the whole record and sends `Set-Cookie` with `Max-Age`.

mod minimal;

use std::hint::black_box;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::{HeaderValue, Method, Request, StatusCode};
use axum::routing::{get, post};
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;

/// The idle timeout on both sides (sessionware's default).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// The cookie name on both sides, so that both parse the same header.
pub const COOKIE_NAME: &str = "__Host-session";

/// The session stores hold at most this many sessions: creating a session in a loop must
/// never hit the capacity (the memory is not reserved up front).
const STORE_CAPACITY: usize = 50_000_000;

/// The app under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// The same routes without any session layer.
    Baseline,
    /// The baseline's routes behind `tower::layer::util::Identity`: what any layer costs
    /// through `Router::layer` (axum wraps and boxes each layered route once more), the
    /// floor of a session layer's overhead in this harness.
    IdentityLayer,
    /// The baseline's routes behind a layer that only puts a fresh `Arc` handle into each
    /// request's extensions: the least a lazy session layer does on a request that never
    /// touches its session (one shared handle and its extension slot), the floor of case 1.
    HandleLayer,
    /// The least a layer built to the design can do to serve a session read
    /// ([`minimal`]): the floor of cases 1, 2, 3 and 5 (measured in those only).
    MinimalSession,
    /// `sessionware::SessionLayer` over `sessionware::MemoryStore`.
    Sessionware,
    /// `tower_sessions::SessionManagerLayer` over its `MemoryStore`, signed cookies.
    TowerSessions,
    /// As `Sessionware`, with encryption at rest (`SessionLayer::encrypt_data_at_rest`).
    /// Not in [`Variant::ALL`]: the `modes` section of the rounds measures it.
    SessionwareEncrypted,
    /// `SessionLayer::sealed_cookies`: the session in its cookie, no store. Not in
    /// [`Variant::ALL`]: the `modes` section of the rounds measures it.
    SessionwareSealed,
}

impl Variant {
    /// Every app, in the order the tables list them.
    pub const ALL: [Self; 6] = [
        Self::Baseline,
        Self::IdentityLayer,
        Self::HandleLayer,
        Self::MinimalSession,
        Self::Sessionware,
        Self::TowerSessions,
    ];

    /// sessionware's other modes, against [`Variant::Sessionware`].
    pub const MODES: [Self; 4] = [
        Self::Baseline,
        Self::Sessionware,
        Self::SessionwareEncrypted,
        Self::SessionwareSealed,
    ];

    /// Whether `case` is measured for this app: the floors only in the cases they bound.
    pub fn measures(self, case: Case) -> bool {
        match self {
            Self::SessionwareEncrypted | Self::SessionwareSealed => {
                matches!(case, Case::Read | Case::Increment | Case::NewSession)
            }
            Self::IdentityLayer | Self::HandleLayer => case == Case::NoCookie,
            Self::MinimalSession => matches!(
                case,
                Case::NoCookie | Case::Read | Case::Increment | Case::Forged
            ),
            Self::Baseline | Self::Sessionware | Self::TowerSessions => true,
        }
    }

    /// Whether the app has sessions at all.
    pub fn has_sessions(self) -> bool {
        matches!(
            self,
            Self::MinimalSession
                | Self::Sessionware
                | Self::TowerSessions
                | Self::SessionwareEncrypted
                | Self::SessionwareSealed
        )
    }

    /// A short name, for criterion groups and tables.
    pub fn name(self) -> &'static str {
        match self {
            Self::Baseline => "baseline",
            Self::IdentityLayer => "identity-layer",
            Self::HandleLayer => "handle-layer",
            Self::MinimalSession => "minimal-session",
            Self::Sessionware => "sessionware",
            Self::TowerSessions => "tower-sessions",
            Self::SessionwareEncrypted => "sessionware-encrypted",
            Self::SessionwareSealed => "sessionware-sealed",
        }
    }
}

/// A workload, numbered as in the issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    /// 1. No cookie; the handler never touches the session.
    NoCookie,
    /// 2. An existing session; the handler reads one value.
    Read,
    /// 3. An existing session; the handler increments a counter. sessionware uses
    ///    `Session::update` (an atomic read-modify-write); tower-sessions has no such call
    ///    and uses `get` then `insert`.
    Increment,
    /// 3b. As 3, with `get` then `insert` on both sides (like for like).
    IncrementGetInsert,
    /// 4. No cookie; the handler inserts a value: a new session and `Set-Cookie`.
    NewSession,
    /// 5. A forged cookie of the right shape (one character of a valid value changed); the
    ///    handler never touches the session.
    Forged,
}

impl Case {
    /// Every case, in the order the tables list them.
    pub const ALL: [Self; 6] = [
        Self::NoCookie,
        Self::Read,
        Self::Increment,
        Self::IncrementGetInsert,
        Self::NewSession,
        Self::Forged,
    ];

    /// A short name, for criterion groups and tables.
    pub fn name(self) -> &'static str {
        match self {
            Self::NoCookie => "case1_no_cookie",
            Self::Read => "case2_read",
            Self::Increment => "case3_increment",
            Self::IncrementGetInsert => "case3b_increment_get_insert",
            Self::NewSession => "case4_new_session",
            Self::Forged => "case5_forged_cookie",
        }
    }

    fn method_and_path(self) -> (Method, &'static str) {
        match self {
            Self::NoCookie | Self::Forged => (Method::GET, "/plain"),
            Self::Read => (Method::GET, "/read"),
            Self::Increment => (Method::POST, "/increment"),
            Self::IncrementGetInsert => (Method::POST, "/increment-get-insert"),
            Self::NewSession => (Method::POST, "/new"),
        }
    }
}

/// One app under test, with the cookies its cases send.
#[derive(Debug, Clone)]
pub struct App {
    /// Which app this is.
    pub variant: Variant,
    router: Router,
    /// The session read by case 2.
    read_cookie: HeaderValue,
    /// The session incremented by case 3 and 3b.
    increment_cookie: HeaderValue,
    forged_cookie: HeaderValue,
}

impl App {
    /// Builds the app and creates the sessions its cases use.
    pub async fn new(variant: Variant) -> Self {
        let router = match variant {
            Variant::Baseline => baseline::router(),
            Variant::IdentityLayer => baseline::router().layer(tower::layer::util::Identity::new()),
            Variant::HandleLayer => baseline::router().layer(tower::util::MapRequestLayer::new(
                |mut request: Request<Body>| {
                    request
                        .extensions_mut()
                        .insert(Handle(std::sync::Arc::new(())));
                    request
                },
            )),
            Variant::MinimalSession => minimal::router(),
            Variant::Sessionware => sessionware_app::router(sessionware_app::Mode::Store),
            Variant::SessionwareEncrypted => {
                sessionware_app::router(sessionware_app::Mode::Encrypted)
            }
            Variant::SessionwareSealed => sessionware_app::router(sessionware_app::Mode::Sealed),
            Variant::TowerSessions => tower_app::router(),
        };
        // Turns every handler into a route (and applies the layers) once, as
        // `axum::serve` does through `into_make_service`. A `Router<()>` called directly
        // would do it again for every request, layers included.
        let router = router.with_state(());
        let mut app = Self {
            variant,
            router,
            // The baseline gets a cookie of the same length as sessionware's, so that
            // building and parsing the request costs the same.
            read_cookie: HeaderValue::from_static(PLACEHOLDER_COOKIE),
            increment_cookie: HeaderValue::from_static(PLACEHOLDER_COOKIE),
            forged_cookie: HeaderValue::from_static(PLACEHOLDER_COOKIE),
        };
        if variant.has_sessions() {
            app.read_cookie = app.new_session_cookie().await;
            app.increment_cookie = app.new_session_cookie().await;
            app.forged_cookie = forge(&app.read_cookie);
        }
        app.check().await;
        app
    }

    /// The request of `case`, as a client would send it.
    pub fn request(&self, case: Case) -> Request<Body> {
        let (method, path) = case.method_and_path();
        let builder = Request::builder().method(method).uri(path);
        let builder = match case {
            Case::NoCookie | Case::NewSession => builder,
            Case::Read => builder.header(COOKIE, self.read_cookie.clone()),
            Case::Increment | Case::IncrementGetInsert => {
                builder.header(COOKIE, self.increment_cookie.clone())
            }
            Case::Forged => builder.header(COOKIE, self.forged_cookie.clone()),
        };
        builder.body(Body::empty()).expect("valid request")
    }

    /// A second cookie for case 2, for a second thread that reads its own session.
    pub async fn with_own_read_session(&self) -> Self {
        let mut app = self.clone();
        if self.variant.has_sessions() {
            app.read_cookie = app.new_session_cookie().await;
        }
        app
    }

    /// Runs one request of `case` through the app.
    pub async fn call(&self, case: Case) {
        let response = self
            .router
            .clone()
            .oneshot(self.request(case))
            .await
            .expect("infallible");
        // Cheap, and catches a store that started failing (a full store, say).
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "{:?} {case:?}",
            self.variant
        );
        black_box(response);
    }

    async fn call_for_body(&self, request: Request<Body>) -> (Option<HeaderValue>, String) {
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("infallible");
        assert_eq!(response.status(), StatusCode::OK);
        let set_cookie = response.headers().get(SET_COOKIE).cloned();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        (set_cookie, String::from_utf8_lossy(&body).into_owned())
    }

    /// Creates a session through `POST /new` and returns the `Cookie` header a browser
    /// would send back.
    async fn new_session_cookie(&self) -> HeaderValue {
        let (set_cookie, _) = self.call_for_body(self.request(Case::NewSession)).await;
        let set_cookie = set_cookie.expect("POST /new sets a cookie");
        let pair = set_cookie
            .to_str()
            .expect("ASCII")
            .split(';')
            .next()
            .expect("name=value");
        assert!(pair.starts_with(COOKIE_NAME), "{pair}");
        HeaderValue::from_str(pair).expect("valid header")
    }

    /// Checks that every case does what it claims: the read finds the stored value, the
    /// forged cookie reads as no session, writes set a cookie.
    async fn check(&self) {
        let (_, body) = self.call_for_body(self.request(Case::Read)).await;
        let expected = if self.variant.has_sessions() {
            "1"
        } else {
            "0"
        };
        assert_eq!(
            body, expected,
            "{:?} case 2 reads the stored value",
            self.variant
        );
        let forged_read = Request::builder()
            .uri("/read")
            .header(COOKIE, self.forged_cookie.clone())
            .body(Body::empty())
            .expect("valid request");
        let (set_cookie, body) = self.call_for_body(forged_read).await;
        assert_eq!(
            body, "0",
            "{:?}: a forged cookie finds no session",
            self.variant
        );
        assert!(set_cookie.is_none());
        for case in Case::ALL {
            let (set_cookie, _) = self.call_for_body(self.request(case)).await;
            let expected = match (self.variant, case) {
                (Variant::Baseline | Variant::IdentityLayer | Variant::HandleLayer, _) => {
                    Some(false)
                }
                (_, Case::NewSession) => Some(true),
                // As sessionware's (below), the minimal layer re-sends the cookie after an
                // increment only when the deadline moved; it has no other write paths.
                (Variant::MinimalSession, Case::Increment) => None,
                (Variant::MinimalSession, _) => Some(false),
                // sessionware re-sends the cookie after a write only when the idle deadline
                // moved, which it keeps in whole milliseconds: a write in the same
                // millisecond as the previous one sends none.
                (
                    Variant::Sessionware | Variant::SessionwareEncrypted,
                    Case::Increment | Case::IncrementGetInsert,
                ) => None,
                // A sealed cookie carries the session: every write sends it.
                (Variant::SessionwareSealed, Case::Increment | Case::IncrementGetInsert) => {
                    Some(true)
                }
                (Variant::TowerSessions, Case::Increment | Case::IncrementGetInsert) => Some(true),
                (_, Case::NoCookie | Case::Read | Case::Forged) => Some(false),
            };
            if let Some(expected) = expected {
                assert_eq!(
                    set_cookie.is_some(),
                    expected,
                    "{:?} {case:?}: Set-Cookie",
                    self.variant
                );
            }
        }
    }
}

const PLACEHOLDER_COOKIE: &str = "__Host-session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.\
                                  AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

/// A forgery of the right shape: `cookie` with one character of its value changed (inside
/// the signed part on both sides, so decoding succeeds and the HMAC check fails).
fn forge(cookie: &HeaderValue) -> HeaderValue {
    let mut bytes = cookie.as_bytes().to_vec();
    let at = COOKIE_NAME.len() + 1 + 10;
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    HeaderValue::from_bytes(&bytes).expect("valid header")
}

/// A signing key for sessionware, from fixed bytes so runs are comparable.
pub fn sessionware_key() -> sessionware::Key {
    sessionware::Key::from_bytes(&[7; 32]).expect("32 bytes")
}

mod baseline {
    use super::*;

    pub(super) fn router() -> Router {
        Router::new()
            .route("/plain", get(|| async { "ok" }))
            .route("/read", get(|| async { 0u64.to_string() }))
            .route("/increment", post(|| async { 1u64.to_string() }))
            .route("/increment-get-insert", post(|| async { 1u64.to_string() }))
            .route("/new", post(|| async { 1u64.to_string() }))
    }
}

mod sessionware_app {
    use super::*;
    use sessionware::{MemoryStore, Session, SessionLayer};

    /// Where the app keeps its sessions.
    pub(super) enum Mode {
        /// In a `MemoryStore`.
        Store,
        /// In a `MemoryStore`, values sealed.
        Encrypted,
        /// In sealed cookies.
        Sealed,
    }

    pub(super) fn router(mode: Mode) -> Router {
        let routes = Router::new()
            .route("/plain", get(|| async { "ok" }))
            .route("/read", get(read))
            .route("/increment", post(increment))
            .route("/increment-get-insert", post(increment_get_insert))
            .route("/new", post(new));
        let store = || MemoryStore::builder().capacity(STORE_CAPACITY).build();
        match mode {
            Mode::Store => routes
                .layer(SessionLayer::new(store(), sessionware_key()).idle_timeout(IDLE_TIMEOUT)),
            Mode::Encrypted => routes.layer(
                SessionLayer::new(store(), sessionware_key())
                    .idle_timeout(IDLE_TIMEOUT)
                    .encrypt_data_at_rest(),
            ),
            Mode::Sealed => routes
                .layer(SessionLayer::sealed_cookies(sessionware_key()).idle_timeout(IDLE_TIMEOUT)),
        }
    }

    async fn read(session: Session) -> Result<String, StatusCode> {
        let value: u64 = session.get("counter").await.map_err(internal)?.unwrap_or(0);
        Ok(value.to_string())
    }

    async fn increment(session: Session) -> Result<String, StatusCode> {
        let value = session
            .update("counter", |n: Option<u64>| n.unwrap_or(0) + 1)
            .await
            .map_err(internal)?;
        Ok(value.to_string())
    }

    async fn increment_get_insert(session: Session) -> Result<String, StatusCode> {
        let value: u64 = session.get("counter").await.map_err(internal)?.unwrap_or(0) + 1;
        session.insert("counter", value).await.map_err(internal)?;
        Ok(value.to_string())
    }

    async fn new(session: Session) -> Result<String, StatusCode> {
        session.insert("counter", 1u64).await.map_err(internal)?;
        Ok(1u64.to_string())
    }

    fn internal(_: sessionware::SessionError) -> StatusCode {
        StatusCode::INTERNAL_SERVER_ERROR
    }
}

mod tower_app {
    use super::*;
    use tower_sessions::cookie::{Key, SameSite, time};
    use tower_sessions::{Expiry, MemoryStore, Session, SessionManagerLayer};

    pub(super) fn router() -> Router {
        let idle = time::Duration::seconds(i64::try_from(IDLE_TIMEOUT.as_secs()).expect("small"));
        let layer = SessionManagerLayer::new(MemoryStore::default())
            .with_signed(Key::from(&[7; 64]))
            .with_name(COOKIE_NAME)
            .with_secure(true)
            .with_http_only(true)
            .with_same_site(SameSite::Lax)
            .with_expiry(Expiry::OnInactivity(idle));
        Router::new()
            .route("/plain", get(|| async { "ok" }))
            .route("/read", get(read))
            .route("/increment", post(increment))
            .route("/increment-get-insert", post(increment))
            .route("/new", post(new))
            .layer(layer)
    }

    async fn read(session: Session) -> Result<String, StatusCode> {
        let value: u64 = session.get("counter").await.map_err(internal)?.unwrap_or(0);
        Ok(value.to_string())
    }

    async fn increment(session: Session) -> Result<String, StatusCode> {
        let value: u64 = session.get("counter").await.map_err(internal)?.unwrap_or(0) + 1;
        session.insert("counter", value).await.map_err(internal)?;
        Ok(value.to_string())
    }

    async fn new(session: Session) -> Result<String, StatusCode> {
        session.insert("counter", 1u64).await.map_err(internal)?;
        Ok(1u64.to_string())
    }

    fn internal(_: tower_sessions::session::Error) -> StatusCode {
        StatusCode::INTERNAL_SERVER_ERROR
    }
}

/// A small, fast, seedable generator (xorshift64*): enough to shuffle cases and pick keys,
/// without touching the generators under test.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed` (the same seed gives the same sequence).
    pub fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        // The bias of a modulo over 64 bits is negligible for the sizes used here.
        (self.next_u64() % n as u64) as usize
    }

    /// Shuffles `items` in place (Fisher-Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }

    /// 32 random bytes.
    pub fn bytes32(&mut self) -> [u8; 32] {
        let mut out = [0; 32];
        for chunk in out.chunks_exact_mut(8) {
            chunk.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        out
    }
}

/// The stores alone (case 6), filled with live sessions that each hold one small value.
pub mod stores {
    use super::*;
    use sessionware::{CreateOutcome, LoadOutcome, Record, SaveOutcome, SessionStore, StoreKey};
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicU64, Ordering};
    use tower_sessions::SessionStore as _;
    use tower_sessions::cookie::time::OffsetDateTime;
    use tower_sessions::session::{Id, Record as TowerRecord};

    /// The value each session holds, as sessionware stores it (a JSON object).
    const SMALL_VALUE_JSON: &[u8] = br#"{"counter":1}"#;

    /// A record as the layer writes it for a new session holding `{"counter": 1}`.
    pub fn sessionware_record(now: SystemTime) -> Record {
        // As the layer writes it: its clock keeps whole milliseconds.
        let since = now.duration_since(UNIX_EPOCH).expect("after 1970");
        let now = UNIX_EPOCH + Duration::from_millis(since.as_millis() as u64);
        Record {
            version: 1,
            user: None,
            created_at: now,
            last_active: now,
            expires_at: now + IDLE_TIMEOUT,
            expiry: None,
            data: SMALL_VALUE_JSON.to_vec(),
            label: None,
        }
    }

    /// A record as tower-sessions writes it for a session holding `{"counter": 1}`.
    pub fn tower_record(id: Id) -> TowerRecord {
        let mut data = HashMap::new();
        data.insert("counter".to_owned(), serde_json::Value::from(1u64));
        TowerRecord {
            id,
            data,
            expiry_date: OffsetDateTime::now_utc() + IDLE_TIMEOUT,
        }
    }

    /// sessionware's `MemoryStore` with `n` live sessions.
    #[derive(Debug)]
    pub struct SessionwareStore {
        /// The filled store.
        pub store: sessionware::MemoryStore,
        /// The key of every session, if kept (empty otherwise).
        pub keys: Vec<StoreKey>,
        /// The stored version of each key, for compare-and-swap saves.
        pub versions: Vec<AtomicU64>,
        /// The time the sessions were written at, for loads that find them live.
        pub now: SystemTime,
    }

    impl SessionwareStore {
        /// A store with `n` sessions; their keys are kept when `keep_keys` (for loads and
        /// saves), and not when only the store's memory is measured.
        pub async fn filled(n: usize, keep_keys: bool) -> Self {
            let store = sessionware::MemoryStore::builder()
                .capacity(STORE_CAPACITY)
                .build();
            let now = SystemTime::now();
            let record = sessionware_record(now);
            let mut rng = Rng::new(0x5e55_1011);
            let mut keys = Vec::with_capacity(if keep_keys { n } else { 0 });
            for _ in 0..n {
                let key = StoreKey::from_bytes(rng.bytes32());
                let outcome = store.create(&key, &record, now).await.expect("create");
                assert_eq!(outcome, CreateOutcome::Created);
                if keep_keys {
                    keys.push(key);
                }
            }
            let versions = keys.iter().map(|_| AtomicU64::new(1)).collect();
            Self {
                store,
                keys,
                versions,
                now,
            }
        }

        /// Loads a random session, which must be found.
        pub async fn load(&self, rng: &mut Rng) {
            let key = &self.keys[rng.below(self.keys.len())];
            let outcome = self.store.load(key, self.now).await.expect("load");
            assert!(matches!(outcome, LoadOutcome::Found(_)));
            black_box(outcome);
        }

        /// Saves a random session among those whose index is `lane` modulo `lanes` (each
        /// thread has its own lane, so compare-and-swap never conflicts).
        pub async fn save(&self, rng: &mut Rng, record: &mut Record, lane: usize, lanes: usize) {
            let per_lane = self.keys.len() / lanes;
            let index = rng.below(per_lane) * lanes + lane;
            let expected = self.versions[index].load(Ordering::Relaxed);
            record.version = expected + 1;
            let outcome = self
                .store
                .save(&self.keys[index], record, expected, self.now)
                .await
                .expect("save");
            assert_eq!(outcome, SaveOutcome::Saved);
            self.versions[index].store(expected + 1, Ordering::Relaxed);
        }
    }

    /// tower-sessions' `MemoryStore` with `n` live sessions.
    #[derive(Debug)]
    pub struct TowerStore {
        /// The filled store.
        pub store: tower_sessions::MemoryStore,
        /// The ID of every session, if kept (empty otherwise).
        pub ids: Vec<Id>,
    }

    impl TowerStore {
        /// A store with `n` sessions; their IDs are kept when `keep_keys`.
        pub async fn filled(n: usize, keep_keys: bool) -> Self {
            let store = tower_sessions::MemoryStore::default();
            let mut ids = Vec::with_capacity(if keep_keys { n } else { 0 });
            let mut rng = Rng::new(0x5e55_1011);
            for _ in 0..n {
                let id = Id(i128::from(rng.next_u64()) << 64 | i128::from(rng.next_u64()));
                let mut record = tower_record(id);
                store.create(&mut record).await.expect("create");
                if keep_keys {
                    ids.push(record.id);
                }
            }
            Self { store, ids }
        }

        /// Loads a random session, which must be found.
        pub async fn load(&self, rng: &mut Rng) {
            let id = &self.ids[rng.below(self.ids.len())];
            let record = self.store.load(id).await.expect("load");
            assert!(record.is_some());
            black_box(record);
        }

        /// Saves `record` under a random session among those whose index is `lane` modulo
        /// `lanes`, as [`SessionwareStore::save`] does.
        pub async fn save(
            &self,
            rng: &mut Rng,
            record: &mut TowerRecord,
            lane: usize,
            lanes: usize,
        ) {
            let per_lane = self.ids.len() / lanes;
            record.id = self.ids[rng.below(per_lane) * lanes + lane];
            self.store.save(record).await.expect("save");
        }
    }
}

/// The median of `values` (which it sorts).
pub fn median(values: &mut [f64]) -> f64 {
    percentile(values, 0.5)
}

/// The `p` quantile of `values` (which it sorts), interpolating between neighbours.
pub fn percentile(values: &mut [f64], p: f64) -> f64 {
    assert!(!values.is_empty());
    values.sort_by(f64::total_cmp);
    let rank = p * (values.len() - 1) as f64;
    let (low, high) = (rank.floor() as usize, rank.ceil() as usize);
    values[low] + (values[high] - values[low]) * (rank - low as f64)
}

/// The extension of [`Variant::HandleLayer`].
#[derive(Clone)]
struct Handle(
    #[allow(dead_code, reason = "only held, to be dropped with the request")] std::sync::Arc<()>,
);

/// This process's resident set size in bytes, from `/proc/self/status` (Linux only).
pub fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("Linux /proc");
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in kB");
    kib * 1024
}
