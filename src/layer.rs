//! [`SessionLayer`]: the builder of a layer's settings, and the `tower::Layer` that applies
//! them.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::Response;
use tower_layer::Layer;

use crate::config::ConfigError;
use crate::context::Context;
use crate::cookie::{CookieConfig, SameSite};
use crate::error::SessionError;
use crate::events::SecurityEvents;
use crate::expiry::Clock;
use crate::key::Key;
use crate::service::SessionService;
use crate::store::SessionStore;

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
pub struct SessionLayer<S: ?Sized> {
    store: Arc<S>,
    context: Arc<Context>,
}

impl<S: ?Sized> Clone for SessionLayer<S> {
    fn clone(&self) -> Self {
        Self {
            store: Arc::clone(&self.store),
            context: Arc::clone(&self.context),
        }
    }
}

impl<S: SessionStore> SessionLayer<S> {
    /// A layer keeping sessions in `store` and signing cookies with `key`.
    pub fn new(store: S, key: Key) -> Self {
        let store = Arc::new(store);
        Self {
            context: Arc::new(Context::new(store.clone(), key)),
            store,
        }
    }
}

#[cfg(feature = "cookie-store")]
impl SessionLayer<crate::SealedCookies> {
    /// A layer that keeps each session in its client's cookie, sealed with
    /// XChaCha20-Poly1305 under a key derived from `key`, instead of in a store.
    ///
    /// Read [`SealedCookies`](crate::SealedCookies) first: a sealed cookie session cannot be
    /// revoked by the server, and a copy of the cookie replays until its deadline.
    ///
    /// Everything else works as with a store: the same handle and builder methods, idle and
    /// absolute timeouts (kept inside the sealed value and enforced by the layer), a new ID
    /// at login, [previous keys](Self::previous_keys), and laziness: a request whose handler
    /// does not use the session opens nothing, and a response carries the cookie only when
    /// the session changed or its deadline moved.
    ///
    /// ```
    /// use sessionware::{Key, SessionLayer};
    ///
    /// let layer = SessionLayer::sealed_cookies(Key::generate());
    /// layer.validate().expect("consistent configuration");
    /// ```
    pub fn sealed_cookies(key: Key) -> Self {
        let mut context = Context::new(Arc::new(crate::sealed::Inert), key);
        context.sealed = true;
        Self {
            store: Arc::new(crate::SealedCookies::new()),
            context: Arc::new(context),
        }
    }
}

impl<S: ?Sized> SessionLayer<S> {
    fn settings_mut(&mut self) -> &mut Context {
        let context = Arc::make_mut(&mut self.context);
        context.settings_changed();
        context
    }

    /// The store this layer keeps sessions in, for listing or revoking a user's sessions.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Ends a session after this long without a request that used it. Default: 30 minutes.
    ///
    /// Enforced by the server from the stored record, whatever the client sends.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.settings_mut().lifetime.idle_timeout = timeout;
        self
    }

    /// Ends a session this long after it was created, however active it is; survives ID
    /// rotation and login. Default: 12 hours.
    pub fn absolute_timeout(mut self, timeout: Duration) -> Self {
        self.settings_mut().lifetime.absolute_timeout = timeout;
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
        self.settings_mut().lifetime.anonymous_timeout = Some(timeout);
        self
    }

    /// A request that only reads a session extends its idle deadline (one cheap `touch` of
    /// the store, and a new cookie `Max-Age`) only when at least this long has passed since
    /// the last extension. Default: a quarter of the idle timeout, at most one minute.
    ///
    /// A longer interval saves store writes; the idle timeout then effectively shrinks by up
    /// to this much.
    pub fn touch_after(mut self, interval: Duration) -> Self {
        self.settings_mut().lifetime.touch_after = Some(interval);
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
        self.settings_mut()
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
        self.settings_mut().cookie.name = name.into();
        self
    }

    /// The cookie's `Path`. Default: `/`.
    pub fn cookie_path(mut self, path: impl Into<String>) -> Self {
        self.settings_mut().cookie.path = path.into();
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
        self.settings_mut().cookie.domain = Some(domain.into());
        self
    }

    /// The cookie's `SameSite`. Default: [`SameSite::Lax`].
    pub fn same_site(mut self, same_site: SameSite) -> Self {
        self.settings_mut().cookie.same_site = same_site;
        self
    }

    /// Marks the cookie `Partitioned` (CHIPS): in a third-party context (an app embedded in
    /// an iframe of another site), the browser keeps a separate cookie jar per top-level site,
    /// so the session works where third-party cookies are blocked, and no site that embeds
    /// the app shares its session with another. Default: off.
    ///
    /// Requires `Secure` (browsers reject the cookie otherwise): the layer refuses it with
    /// [`ConfigError::PartitionedWithoutSecure`] together with
    /// [`dangerous_insecure_cookie_for_development`](Self::dangerous_insecure_cookie_for_development).
    /// An embedded app usually also needs [`SameSite::None`].
    pub fn partitioned(mut self, partitioned: bool) -> Self {
        self.settings_mut().cookie.partitioned = partitioned;
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
        let config = self.settings_mut();
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
        self.settings_mut().max_data_len = bytes;
        self
    }

    /// Seals every session's values with XChaCha20-Poly1305 before they reach the store, so
    /// that a dump or a backup of the store exposes neither the session IDs (it never holds
    /// them) nor the values (CSRF secrets, carts, anything the application keeps there).
    /// Default: off. Feature `encryption`.
    ///
    /// The key is derived from the layer's [`Key`] for this purpose only (HKDF-SHA256);
    /// [previous keys](Self::previous_keys) still open what they sealed, and the next write
    /// of a session seals it under the current key. Each sealed value is bound to the store
    /// key of its session, so values copied from one record to another, or altered in the
    /// store, do not open. A session whose values do not open is no session: its client
    /// gets an anonymous one.
    ///
    /// What stays readable in the store is what the store needs: the version, the
    /// deadlines, the logged-in user (for the per-user index) and the device label.
    ///
    /// Turn it on for every instance sharing a store at once: sessions written before it
    /// was on (and any written by an instance without it) do not open, so their users start
    /// anonymous again. It has no effect on a [sealed cookie](Self::sealed_cookies) layer,
    /// whose sessions are sealed whole anyway.
    ///
    /// Sealing costs one XChaCha20-Poly1305 pass over the values per load and per write,
    /// and 41 bytes per stored session (see `docs/performance.md` for the measured cost).
    #[cfg(feature = "encryption")]
    pub fn encrypt_data_at_rest(mut self) -> Self {
        self.settings_mut().encrypt_data = true;
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
        self.settings_mut().conflict_budget = budget;
        self
    }

    /// The clock the layer reads. Default: [`SystemClock`](crate::SystemClock). Tests pass a
    /// [`ManualClock`](crate::ManualClock) to move time without sleeping.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.settings_mut().clock = Arc::new(clock);
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
        self.settings_mut().hooks.set_response(f);
        self
    }

    /// Called with every session error the layer handles itself: store failures while
    /// finishing a response, and [`SessionError::Interrupted`] when a concurrent logout
    /// dropped this request's changes. Default: log them with `tracing`.
    pub fn on_error<F>(mut self, f: F) -> Self
    where
        F: Fn(&SessionError) + Send + Sync + 'static,
    {
        self.settings_mut().hooks.set_observer(f);
        self
    }

    /// Makes a session as a login through this layer would, without a request, and returns
    /// the `Cookie` header value (`name=value`) that carries it: for an application's own
    /// tests, which then send it with their requests instead of driving an HTTP login.
    /// Feature `test-util`.
    ///
    /// `user` is the logged-in user (`None` for an anonymous session) and `values` the
    /// session's values: anything that serializes to a JSON object (a map, a struct, or
    /// `serde_json::json!({...})`). The session is stored in the layer's store (sealed,
    /// with [`sealed_cookies`](Self::sealed_cookies)) with the layer's deadlines, clock,
    /// key and encryption, so every request the application's tests send with it sees a
    /// live session.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), sessionware::SessionError> {
    /// use sessionware::{Key, MemoryStore, SessionLayer};
    ///
    /// let layer = SessionLayer::new(MemoryStore::new(), Key::generate());
    /// let cookie = layer
    ///     .test_session(Some("alice"), serde_json::json!({ "cart": [1, 2] }))
    ///     .await?;
    /// assert!(cookie.starts_with("__Host-session="));
    /// // request.header("cookie", cookie) ... then apply `layer` to the app under test.
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`SessionError::Serialization`] if `values` is not a JSON object,
    /// [`SessionError::DataTooLarge`] past [`max_data_len`](Self::max_data_len), and the
    /// store's errors.
    #[cfg(feature = "test-util")]
    pub async fn test_session(
        &self,
        user: Option<&str>,
        values: impl serde::Serialize,
    ) -> Result<String, SessionError> {
        let values = match serde_json::to_value(values)? {
            serde_json::Value::Object(values) => values,
            _ => {
                return Err(SessionError::Serialization(
                    <serde_json::Error as serde::ser::Error>::custom(
                        "the values of a test session must serialize to a JSON object",
                    ),
                ));
            }
        };
        crate::session::seed::create(&self.context, user, &values).await
    }

    /// Counts of rejected session cookies and interrupted sessions since the layer was built.
    pub fn security_events(&self) -> SecurityEvents {
        self.context.events.snapshot()
    }

    /// Checks the configuration: cookie name and attributes consistent with each other and
    /// with the `__Host-`/`__Secure-` prefixes, `SameSite=None` and `Partitioned` only with
    /// `Secure`, timeouts non-zero with the idle timeout at most the absolute one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.context.cookie.validate()?;
        let lifetime = &self.context.lifetime;
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

impl<S: ?Sized, Inner> Layer<Inner> for SessionLayer<S> {
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
        SessionService::new(inner, Arc::clone(&self.context))
    }
}

impl<S: ?Sized> fmt::Debug for SessionLayer<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionLayer")
            .field("cookie", &self.context.cookie)
            .field("lifetime", &self.context.lifetime)
            .field("keys", &self.context.keys)
            .finish_non_exhaustive()
    }
}
