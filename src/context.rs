//! [`Context`]: what every request needs from its layer, shared by all the layer's services.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::contention::WriteTurns;
use crate::cookie::{CookieConfig, CookieTemplate};
use crate::events::{Counters, Event};
use crate::expiry::{Clock, Lifetime, SystemClock};
use crate::hooks::ErrorHooks;
use crate::key::{Key, Keyring};
use crate::store::SessionStore;

/// The default of [`SessionLayer::conflict_budget`](crate::SessionLayer::conflict_budget):
/// of the order of a store timeout.
const DEFAULT_CONFLICT_BUDGET: Duration = Duration::from_secs(2);

/// The default of [`SessionLayer::max_data_len`](crate::SessionLayer::max_data_len): 64 KiB.
const DEFAULT_MAX_DATA_LEN: usize = 64 * 1024;

/// A layer's settings and shared machinery. The builder in [`crate::layer`] fills it in;
/// services, response futures and sessions hold it behind one `Arc`.
#[derive(Clone)]
pub(crate) struct Context {
    pub(crate) store: Arc<dyn SessionStore>,
    pub(crate) keys: Keyring,
    pub(crate) cookie: CookieConfig,
    /// Rendered from `cookie` on first use; reset by every change to the settings.
    cookie_template: OnceLock<CookieTemplate>,
    pub(crate) lifetime: Lifetime,
    /// The most bytes of serialized values a session may hold.
    pub(crate) max_data_len: usize,
    /// How long a commit keeps retrying compare-and-swap conflicts with other processes.
    pub(crate) conflict_budget: Duration,
    /// Queues the writers of one session in this process; shared by every clone.
    pub(crate) write_turns: Arc<WriteTurns>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) hooks: ErrorHooks,
    pub(crate) events: Arc<Counters>,
    /// Sessions live in sealed cookies, not in `store` (which is then
    /// [`Inert`](crate::sealed::Inert)).
    #[cfg(feature = "cookie-store")]
    pub(crate) sealed: bool,
    /// Session values are sealed before they reach the store.
    #[cfg(feature = "encryption")]
    pub(crate) encrypt_data: bool,
}

impl Context {
    pub(crate) fn new(store: Arc<dyn SessionStore>, key: Key) -> Self {
        Self {
            store,
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
            hooks: ErrorHooks::default(),
            events: Arc::new(Counters::default()),
            #[cfg(feature = "cookie-store")]
            sealed: false,
            #[cfg(feature = "encryption")]
            encrypt_data: false,
        }
    }

    /// Forgets what was derived from the settings, before one of them changes.
    pub(crate) fn settings_changed(&mut self) {
        self.cookie_template = OnceLock::new();
    }

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

    /// Whether session values are sealed before they reach the store: asked for, and there
    /// is a store (a sealed cookie seals the whole session anyway).
    #[cfg(feature = "encryption")]
    pub(crate) fn encrypts_at_rest(&self) -> bool {
        #[cfg(feature = "cookie-store")]
        if self.sealed {
            return false;
        }
        self.encrypt_data
    }

    /// The session cookie's `Set-Cookie` values.
    pub(crate) fn cookie_template(&self) -> &CookieTemplate {
        self.cookie_template
            .get_or_init(|| CookieTemplate::new(&self.cookie))
    }

    /// Counts a security event and reports it (see [`Counters::report`]).
    pub(crate) fn report(&self, event: Event) {
        self.events.report(event);
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("cookie", &self.cookie)
            .field("lifetime", &self.lifetime)
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}
