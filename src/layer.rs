//! [`SessionLayer`]: the configuration, and the `tower::Layer` that applies it.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{Response, StatusCode};
use serde_json::{Map, Value};
use tower_layer::Layer;

use crate::contention::WriteTurns;
use crate::cookie::{CookieConfig, CookieTemplate, SameSite};
use crate::error::{ConfigError, SessionError};
use crate::expiry::{Clock, Lifetime, SystemClock};
use crate::id::StoreKey;
use crate::key::{Key, Keyring};
use crate::service::SessionService;
use crate::session::Changes;
use crate::store::{
    CreateOutcome, ErasedStore, LoadOutcome, Record, RotateOutcome, SaveOutcome, SessionStore,
    TouchOutcome,
};

/// The default of [`SessionLayer::conflict_budget`]: of the order of a store timeout.
const DEFAULT_CONFLICT_BUDGET: Duration = Duration::from_secs(2);

/// The default of [`SessionLayer::max_data_len`]: 64 KiB.
const DEFAULT_MAX_DATA_LEN: usize = 64 * 1024;

type ErrorResponse = dyn Fn(&SessionError) -> Response<()> + Send + Sync;
type ErrorObserver = dyn Fn(&SessionError) + Send + Sync;

/// A `tower` layer that gives every request a [`Session`](crate::Session).
///
/// Build it with a store and a key, adjust it with the builder methods (each names its
/// default), and add it to your service stack:
///
/// ```
/// use std::time::Duration;
/// use sessionware::{Key, MemoryStore, SessionLayer};
///
/// let layer = SessionLayer::new(MemoryStore::default(), Key::generate())
///     .idle_timeout(Duration::from_secs(30 * 60))
///     .absolute_timeout(Duration::from_secs(12 * 3600));
/// layer.validate().expect("consistent configuration");
/// ```
///
/// The configuration is checked when the layer is applied ([`Layer::layer`]), which panics
/// with a message naming the fix if it is inconsistent; call
/// [`validate`](Self::validate) first to handle that as an error instead.
///
/// # Security
///
/// The defaults are the safe choice: cookie `__Host-session`, `Secure`, `HttpOnly`,
/// `SameSite=Lax`, `Path=/`, no `Domain`; 30 minutes idle timeout, 12 hours absolute timeout.
/// Settings that weaken them have names that say so.
#[must_use]
pub struct SessionLayer<S> {
    store: Arc<S>,
    config: Arc<Config>,
}

impl<S> Clone for SessionLayer<S> {
    fn clone(&self) -> Self {
        Self {
            store: Arc::clone(&self.store),
            config: Arc::clone(&self.config),
        }
    }
}

/// The values a new record stores.
pub(crate) enum NewData<'a> {
    /// The base record's, unchanged (none without a base).
    Unchanged,
    /// These, serialized.
    Values(&'a Map<String, Value>),
    /// These bytes, already serialized.
    Spliced(Vec<u8>),
}

/// Everything a request needs from the layer, shared by all its services.
#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) store: Arc<dyn ErasedStore>,
    pub(crate) keys: Keyring,
    pub(crate) cookie: CookieConfig,
    /// Rendered from `cookie` on first use; reset by every change to the configuration.
    cookie_template: OnceLock<CookieTemplate>,
    pub(crate) lifetime: Lifetime,
    /// The most bytes of serialized values a session may hold.
    max_data_len: usize,
    /// How long a commit keeps retrying compare-and-swap conflicts with other processes.
    pub(crate) conflict_budget: Duration,
    /// Queues the writers of one session in this process; shared by every clone.
    pub(crate) write_turns: Arc<WriteTurns>,
    clock: Arc<dyn Clock>,
    error_response: Arc<ErrorResponse>,
    on_error: Option<Arc<ErrorObserver>>,
    events: Arc<SecurityCounters>,
}

impl<S: SessionStore> SessionLayer<S> {
    /// A layer keeping sessions in `store` and signing cookies with `key`.
    pub fn new(store: S, key: Key) -> Self {
        let store = Arc::new(store);
        let erased: Arc<dyn ErasedStore> = store.clone();
        Self {
            store,
            config: Arc::new(Config {
                store: erased,
                keys: Keyring::new(key),
                cookie: CookieConfig::default(),
                cookie_template: OnceLock::new(),
                lifetime: Lifetime {
                    idle_timeout: Lifetime::DEFAULT_IDLE,
                    absolute_timeout: Lifetime::DEFAULT_ABSOLUTE,
                    touch_after: None,
                    anonymous_timeout: None,
                },
                max_data_len: DEFAULT_MAX_DATA_LEN,
                conflict_budget: DEFAULT_CONFLICT_BUDGET,
                write_turns: Arc::new(WriteTurns::new()),
                clock: Arc::new(SystemClock),
                error_response: Arc::new(default_error_response),
                on_error: None,
                events: Arc::new(SecurityCounters::default()),
            }),
        }
    }
}

impl<S> SessionLayer<S> {
    fn config_mut(&mut self) -> &mut Config {
        let config = Arc::make_mut(&mut self.config);
        config.cookie_template = OnceLock::new();
        config
    }

    /// The store this layer keeps sessions in, for listing or revoking a user's sessions.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Ends a session after this long without a request that used it. Default: 30 minutes.
    ///
    /// Enforced by the server from the stored record, whatever the client sends.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.config_mut().lifetime.idle_timeout = timeout;
        self
    }

    /// Ends a session this long after it was created, however active it is; survives ID
    /// rotation and login. Default: 12 hours.
    pub fn absolute_timeout(mut self, timeout: Duration) -> Self {
        self.config_mut().lifetime.absolute_timeout = timeout;
        self
    }

    /// Ends a session that has no logged-in user this long after it was created, however
    /// active it is, when that is sooner than the absolute timeout. Default: none (anonymous
    /// sessions live as long as any other).
    ///
    /// Enforced from the stored deadline on every store. Logging in lifts it (the absolute
    /// timeout still counts from the session's creation).
    ///
    /// # Security
    ///
    /// Anonymous sessions are the ones any client can create, as fast as it can send
    /// requests (if the application writes to the session before login). With this set, what
    /// they make a store hold is bounded by their creation rate times this lifetime, on
    /// Redis and PostgreSQL too, which have no capacity bound of their own.
    pub fn anonymous_timeout(mut self, timeout: Duration) -> Self {
        self.config_mut().lifetime.anonymous_timeout = Some(timeout);
        self
    }

    /// A request that only reads a session extends its idle deadline (one cheap `touch` of
    /// the store, and a new cookie `Max-Age`) only when at least this long has passed since
    /// the last extension. Default: a quarter of the idle timeout, at most one minute.
    ///
    /// A longer interval saves store writes; the idle timeout then effectively shrinks by up
    /// to this much.
    pub fn touch_after(mut self, interval: Duration) -> Self {
        self.config_mut().lifetime.touch_after = Some(interval);
        self
    }

    /// Keys that signed cookies before the current one. Cookies they signed are still
    /// accepted and re-issued under the current key. Default: none.
    ///
    /// # Security
    ///
    /// Remove a key from this list to invalidate every cookie it signed that has not been
    /// re-issued yet.
    pub fn previous_keys(mut self, keys: impl IntoIterator<Item = Key>) -> Self {
        self.config_mut()
            .keys
            .set_previous(keys.into_iter().collect());
        self
    }

    /// The cookie's name. Default: `__Host-session`.
    ///
    /// A `__Host-` name requires `Secure`, `Path=/` and no `Domain`; a `__Secure-` name
    /// requires `Secure`. Browsers enforce these prefixes, which protects the cookie from
    /// being overwritten by a sibling subdomain or over plain HTTP.
    pub fn cookie_name(mut self, name: impl Into<String>) -> Self {
        self.config_mut().cookie.name = name.into();
        self
    }

    /// The cookie's `Path`. Default: `/`.
    pub fn cookie_path(mut self, path: impl Into<String>) -> Self {
        self.config_mut().cookie.path = path.into();
        self
    }

    /// The cookie's `Domain`. Default: none (the cookie goes to the exact host only).
    ///
    /// # Security
    ///
    /// With a domain the cookie is also sent to every subdomain; a compromised or
    /// user-controlled subdomain can then read it. Requires a cookie name without the
    /// `__Host-` prefix.
    pub fn cookie_domain(mut self, domain: impl Into<String>) -> Self {
        self.config_mut().cookie.domain = Some(domain.into());
        self
    }

    /// The cookie's `SameSite`. Default: [`SameSite::Lax`].
    pub fn same_site(mut self, same_site: SameSite) -> Self {
        self.config_mut().cookie.same_site = same_site;
        self
    }

    /// Drops the `Secure` attribute, so the cookie also travels over plain HTTP, and renames
    /// a default `__Host-session` cookie to `session` (the prefix requires `Secure`).
    /// Default: `Secure` on.
    ///
    /// # Security
    ///
    /// Only for local development over `http://`. Over a network, anyone on the path can read
    /// a cookie sent without TLS and take over the session.
    pub fn dangerous_insecure_cookie_for_development(mut self) -> Self {
        let config = self.config_mut();
        config.cookie.secure = false;
        if config.cookie.name == CookieConfig::default().name {
            config.cookie.name = "session".to_owned();
        }
        self
    }

    /// The most bytes a session's values may take, serialized as JSON. Default: 64 KiB.
    ///
    /// A change that would make them larger is refused with
    /// [`SessionError::DataTooLarge`] and nothing is saved: [`Session::update`] returns the
    /// error, and a pending [`insert`](crate::Session::insert) fails the response with the
    /// [`error_response`](Self::error_response). Sessions already stored larger (before the
    /// limit was lowered) keep working until their values change.
    ///
    /// [`Session::update`]: crate::Session::update
    pub fn max_data_len(mut self, bytes: usize) -> Self {
        self.config_mut().max_data_len = bytes;
        self
    }

    /// How long a write keeps retrying when other processes keep saving the same session
    /// first. Default: 2 seconds.
    ///
    /// Writers of one session in one process never race each other: they commit one at a
    /// time. A compare-and-swap that conflicts with another process reloads and tries again,
    /// at once the first time, then after a jittered back-off that doubles from 1 ms to
    /// 64 ms (on tokio's timer; a store that answers without waiting, such as
    /// [`MemoryStore`](crate::MemoryStore), yields to the executor instead, so that the layer
    /// needs no timer in front of it); once this budget has passed since the second
    /// conflict, the write fails with [`SessionError::Conflict`].
    pub fn conflict_budget(mut self, budget: Duration) -> Self {
        self.config_mut().conflict_budget = budget;
        self
    }

    /// The clock the layer reads. Default: [`SystemClock`]. Tests pass a
    /// [`ManualClock`](crate::ManualClock) to move time without sleeping.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.config_mut().clock = Arc::new(clock);
        self
    }

    /// The response sent when the store fails while the response is being finished.
    /// Default: an empty `500 Internal Server Error`.
    ///
    /// The handler's response is discarded and no cookie is set. The body is the response
    /// body type's default (empty); set status and headers here.
    pub fn error_response<F>(mut self, f: F) -> Self
    where
        F: Fn(&SessionError) -> Response<()> + Send + Sync + 'static,
    {
        self.config_mut().error_response = Arc::new(f);
        self
    }

    /// Called with every session error the layer handles itself: store failures while
    /// finishing a response, and [`SessionError::Interrupted`] when a concurrent logout
    /// dropped this request's changes. Default: log them with `tracing`.
    pub fn on_error<F>(mut self, f: F) -> Self
    where
        F: Fn(&SessionError) + Send + Sync + 'static,
    {
        self.config_mut().on_error = Some(Arc::new(f));
        self
    }

    /// Counts of rejected session cookies and interrupted sessions since the layer was built.
    pub fn security_events(&self) -> SecurityEvents {
        self.config.events.snapshot()
    }

    /// Checks the configuration: cookie name and attributes consistent with each other and
    /// with the `__Host-`/`__Secure-` prefixes, `SameSite=None` only with `Secure`, timeouts
    /// non-zero with the idle timeout at most the absolute one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.config.cookie.validate()?;
        let lifetime = &self.config.lifetime;
        if lifetime.idle_timeout.is_zero()
            || lifetime.absolute_timeout.is_zero()
            || lifetime
                .anonymous_timeout
                .is_some_and(|timeout| timeout.is_zero())
        {
            return Err(ConfigError::InvalidTimeout {
                reason: "timeouts must be greater than zero",
            });
        }
        if lifetime.idle_timeout > lifetime.absolute_timeout {
            return Err(ConfigError::InvalidTimeout {
                reason: "the idle timeout exceeds the absolute timeout; lower it or raise \
                         `absolute_timeout`",
            });
        }
        Ok(())
    }
}

impl<S, Inner> Layer<Inner> for SessionLayer<S> {
    type Service = SessionService<Inner>;

    /// Wraps `inner`.
    ///
    /// # Panics
    ///
    /// If the configuration is inconsistent (see [`SessionLayer::validate`]); the message
    /// names the fix.
    fn layer(&self, inner: Inner) -> Self::Service {
        if let Err(err) = self.validate() {
            panic!("invalid SessionLayer configuration: {err}");
        }
        SessionService::new(inner, Arc::clone(&self.config))
    }
}

impl<S> fmt::Debug for SessionLayer<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionLayer")
            .field("cookie", &self.config.cookie)
            .field("lifetime", &self.config.lifetime)
            .field("keys", &self.config.keys)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("cookie", &self.cookie)
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// The current time, truncated to whole milliseconds (what stores keep).
    pub(crate) fn now(&self) -> SystemTime {
        let since = self
            .clock
            .now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        // Whole seconds plus whole milliseconds: `as_millis` would divide a u128.
        UNIX_EPOCH
            + Duration::from_secs(since.as_secs())
            + Duration::from_millis(u64::from(since.subsec_millis()))
    }

    /// The session cookie's `Set-Cookie` values.
    pub(crate) fn cookie_template(&self) -> &CookieTemplate {
        self.cookie_template
            .get_or_init(|| CookieTemplate::new(&self.cookie))
    }

    /// The record to store with `data` and this request's changes, on top of `base`.
    pub(crate) fn new_record(
        &self,
        base: Option<&Record>,
        data: NewData<'_>,
        changes: &Changes,
        now: SystemTime,
    ) -> Result<Record, SessionError> {
        let created_at = base.map_or(now, |record| record.created_at);
        let user = match &changes.user {
            Some(user) => user.clone(),
            None => base.and_then(|record| record.user.clone()),
        };
        let expiry = match changes.expiry {
            Some(expiry) => expiry,
            None => base.and_then(|record| record.expiry),
        };
        let data = match (data, base) {
            (NewData::Spliced(data), _) => self.within_limit(data)?,
            (NewData::Values(values), base) => {
                // Sized from the stored data, so that a session larger than the 128
                // bytes `serde_json::to_vec` starts with is written without regrowing.
                let capacity = base.map_or(0, |base| base.data.len()) + 64;
                let mut data = Vec::with_capacity(capacity);
                serde_json::to_writer(&mut data, values)?;
                self.within_limit(data)?
            }
            // Unparsed values are unchanged: the stored bytes are copied as they are, and are
            // not held to a limit lowered since they were written.
            (NewData::Unchanged, Some(base)) => base.data.clone(),
            (NewData::Unchanged, None) => b"{}".to_vec(),
        };
        let expires_at = self
            .lifetime
            .expires_at(created_at, expiry, user.as_deref(), now);
        Ok(Record {
            version: base.map_or(1, |record| record.version + 1),
            user,
            created_at,
            last_active: now,
            expires_at,
            expiry,
            data,
        })
    }

    fn within_limit(&self, data: Vec<u8>) -> Result<Vec<u8>, SessionError> {
        if data.len() > self.max_data_len {
            return Err(SessionError::DataTooLarge {
                len: data.len(),
                limit: self.max_data_len,
            });
        }
        Ok(data)
    }

    // The store calls of the request path: straight to an immediate store, or through the
    // erased store's boxed future.

    pub(crate) async fn load(
        &self,
        key: &StoreKey,
        now: SystemTime,
    ) -> Result<LoadOutcome, SessionError> {
        match self.store.as_immediate() {
            Some(store) => store.load_now(key, now),
            None => self.store.load(key, now).await,
        }
    }

    pub(crate) async fn create(
        &self,
        key: &StoreKey,
        record: &Record,
    ) -> Result<CreateOutcome, SessionError> {
        match self.store.as_immediate() {
            Some(store) => store.create_now(key, record),
            None => self.store.create(key, record).await,
        }
    }

    pub(crate) async fn save(
        &self,
        key: &StoreKey,
        record: &Record,
        expected_version: u64,
        now: SystemTime,
    ) -> Result<SaveOutcome, SessionError> {
        match self.store.as_immediate() {
            Some(store) => store.save_now(key, record, expected_version, now),
            None => self.store.save(key, record, expected_version, now).await,
        }
    }

    pub(crate) async fn touch(
        &self,
        key: &StoreKey,
        expected_version: u64,
        last_active: SystemTime,
        expires_at: SystemTime,
        now: SystemTime,
    ) -> Result<TouchOutcome, SessionError> {
        match self.store.as_immediate() {
            Some(store) => store.touch_now(key, expected_version, last_active, expires_at, now),
            None => {
                self.store
                    .touch(key, expected_version, last_active, expires_at, now)
                    .await
            }
        }
    }

    pub(crate) async fn delete(&self, key: &StoreKey) -> Result<bool, SessionError> {
        match self.store.as_immediate() {
            Some(store) => store.delete_now(key),
            None => self.store.delete(key).await,
        }
    }

    pub(crate) async fn rotate(
        &self,
        old: &StoreKey,
        new: &StoreKey,
        record: &Record,
        expected_version: u64,
        now: SystemTime,
    ) -> Result<RotateOutcome, SessionError> {
        match self.store.as_immediate() {
            Some(store) => store.rotate_now(old, new, record, expected_version, now),
            None => {
                self.store
                    .rotate(old, new, record, expected_version, now)
                    .await
            }
        }
    }

    pub(crate) fn error_response(&self, error: &SessionError) -> Response<()> {
        (self.error_response)(error)
    }

    /// Reports an error the layer handled itself.
    pub(crate) fn notify_error(&self, error: &SessionError) {
        match &self.on_error {
            Some(observer) => observer(error),
            None => {
                tracing::error!(error = %error, source = ?std::error::Error::source(error), "session error")
            }
        }
    }

    /// Counts a security event and reports it with `tracing` (target
    /// `sessionware::security`), never with the raw cookie value.
    ///
    /// Every event is a `debug` event; the 1st, 2nd, 4th, 8th, ... of each kind is also at
    /// `info`, with the running total: a flood of forged cookies is counted in full but
    /// cannot flood the logs (a million of them make 20 `info` lines).
    pub(crate) fn report(&self, event: SecurityEvent) {
        let counter = match event {
            SecurityEvent::Forged => &self.events.forged,
            SecurityEvent::Ambiguous => &self.events.ambiguous,
            SecurityEvent::Expired => &self.events.expired,
            SecurityEvent::Unknown => &self.events.unknown,
            SecurityEvent::Interrupted => &self.events.interrupted,
        };
        let total = counter.fetch_add(1, Ordering::Relaxed).saturating_add(1);
        if total.is_power_of_two() {
            tracing::info!(target: "sessionware::security", event = event.name(), total, "session cookie rejected or session interrupted");
        } else {
            tracing::debug!(target: "sessionware::security", event = event.name(), total, "session cookie rejected or session interrupted");
        }
    }
}

fn default_error_response(_: &SessionError) -> Response<()> {
    let mut response = Response::new(());
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    response
}

/// A kind of security-relevant event.
#[derive(Debug, Clone, Copy)]
pub(crate) enum SecurityEvent {
    Forged,
    Ambiguous,
    Expired,
    Unknown,
    Interrupted,
}

impl SecurityEvent {
    fn name(self) -> &'static str {
        match self {
            Self::Forged => "forged",
            Self::Ambiguous => "ambiguous",
            Self::Expired => "expired",
            Self::Unknown => "unknown",
            Self::Interrupted => "interrupted",
        }
    }
}

#[derive(Debug, Default)]
struct SecurityCounters {
    forged: AtomicU64,
    ambiguous: AtomicU64,
    expired: AtomicU64,
    unknown: AtomicU64,
    interrupted: AtomicU64,
}

impl SecurityCounters {
    fn snapshot(&self) -> SecurityEvents {
        SecurityEvents {
            forged: self.forged.load(Ordering::Relaxed),
            ambiguous: self.ambiguous.load(Ordering::Relaxed),
            expired: self.expired.load(Ordering::Relaxed),
            unknown: self.unknown.load(Ordering::Relaxed),
            interrupted: self.interrupted.load(Ordering::Relaxed),
        }
    }
}

/// Counts of security-relevant events seen by a [`SessionLayer`].
///
/// Each is also reported as a `tracing` event with target `sessionware::security`, an
/// `event` field naming its kind and a `total` field counting that kind so far: at `debug`
/// level every one, at `info` the 1st, 2nd, 4th, 8th, ... of each kind (so that an attacker
/// sending forged cookies cannot flood the logs). Neither carries the cookie value or the
/// session ID.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SecurityEvents {
    /// Requests whose session cookie was malformed, over-long or carried a tag that no
    /// accepted key signed (forged, tampered, or signed with a retired key).
    pub forged: u64,
    /// Requests that carried two or more different validly signed session cookies; they get
    /// an anonymous session.
    pub ambiguous: u64,
    /// Validly signed cookies whose session had expired.
    pub expired: u64,
    /// Validly signed cookies whose session does not exist (never created here, deleted, or
    /// expired and purged).
    pub unknown: u64,
    /// Requests whose changes were dropped because a concurrent request deleted the session.
    pub interrupted: u64,
}
