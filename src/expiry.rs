//! Session lifetimes: per-session [`Expiry`], the layer's timeouts, and the [`Clock`].

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// A per-session lifetime that overrides the layer's idle timeout, as Django's
/// `set_expiry` does. Set it with [`Session::set_expiry`](crate::Session::set_expiry).
///
/// Whatever the choice, the layer's absolute timeout still bounds the session: no expiry
/// outlives `created_at + absolute_timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Expiry {
    /// A sliding idle timeout of this length instead of the layer's (a "remember me" box,
    /// or a shorter window for a sensitive area).
    OnInactivity(Duration),
    /// A fixed deadline that activity does not move.
    AtDateTime(SystemTime),
    /// The cookie has no `Max-Age`, so the browser drops it when it closes. The server still
    /// ends the session after the layer's idle timeout, so its lifetime stays bounded.
    OnBrowserClose,
}

/// A source of the current time. The layer and the stores read time only from here, so
/// tests can move time without sleeping (see [`ManualClock`]).
pub trait Clock: Send + Sync + 'static {
    /// The current wall-clock time.
    fn now(&self) -> SystemTime;
}

/// The system clock, [`SystemTime::now`]. The default.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that moves only when told to: for tests of timeouts.
///
/// Clones share the same time.
///
/// ```
/// use std::time::Duration;
/// use sessionware::{Clock, ManualClock};
///
/// let clock = ManualClock::default();
/// let before = clock.now();
/// clock.advance(Duration::from_secs(300));
/// assert_eq!(clock.now().duration_since(before).unwrap(), Duration::from_secs(300));
/// ```
#[derive(Clone)]
pub struct ManualClock {
    micros_since_epoch: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock stopped at `start`.
    pub fn new(start: SystemTime) -> Self {
        Self {
            micros_since_epoch: Arc::new(AtomicU64::new(to_micros(start))),
        }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let micros = u64::try_from(by.as_micros()).unwrap_or(u64::MAX);
        self.micros_since_epoch.fetch_add(micros, Ordering::SeqCst);
    }

    /// Sets the clock to `to`.
    pub fn set(&self, to: SystemTime) {
        self.micros_since_epoch
            .store(to_micros(to), Ordering::SeqCst);
    }
}

impl Default for ManualClock {
    /// A clock stopped at the current system time.
    fn default() -> Self {
        Self::new(SystemTime::now())
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_micros(self.micros_since_epoch.load(Ordering::SeqCst))
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ManualClock").field(&self.now()).finish()
    }
}

fn to_micros(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|since| u64::try_from(since.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The layer's lifetime settings and the arithmetic on them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lifetime {
    pub(crate) idle_timeout: Duration,
    pub(crate) absolute_timeout: Duration,
    /// A read-only request extends the idle deadline only once this much of the idle window
    /// has passed since the last extension.
    pub(crate) touch_after: Option<Duration>,
    /// The most an anonymous session (no user) lives from its creation, when set.
    pub(crate) anonymous_timeout: Option<Duration>,
}

impl Lifetime {
    pub(crate) const DEFAULT_IDLE: Duration = Duration::from_secs(30 * 60);
    pub(crate) const DEFAULT_ABSOLUTE: Duration = Duration::from_secs(12 * 3600);

    /// The touch interval: the configured one, or a quarter of the idle timeout capped at one
    /// minute.
    pub(crate) fn touch_interval(&self) -> Duration {
        self.touch_after
            .unwrap_or_else(|| (self.idle_timeout / 4).min(Duration::from_secs(60)))
    }

    /// The latest moment a session created at `created_at` and held by `user` may live to:
    /// the absolute timeout, or the anonymous timeout for a session without a user when that
    /// is shorter.
    pub(crate) fn absolute_deadline(
        &self,
        created_at: SystemTime,
        user: Option<&str>,
    ) -> SystemTime {
        let timeout = match (user, self.anonymous_timeout) {
            (None, Some(anonymous)) => anonymous.min(self.absolute_timeout),
            _ => self.absolute_timeout,
        };
        created_at.checked_add(timeout).unwrap_or(created_at)
    }

    /// The deadline that no activity moves: the absolute timeout, or an earlier
    /// [`Expiry::AtDateTime`]. Checked again on every load, whatever `expires_at` a store
    /// returns.
    pub(crate) fn hard_deadline(
        &self,
        created_at: SystemTime,
        expiry: Option<Expiry>,
        user: Option<&str>,
    ) -> SystemTime {
        let absolute = self.absolute_deadline(created_at, user);
        match expiry {
            Some(Expiry::AtDateTime(at)) => at.min(absolute),
            _ => absolute,
        }
    }

    /// The server-side deadline of a session active at `now`.
    pub(crate) fn expires_at(
        &self,
        created_at: SystemTime,
        expiry: Option<Expiry>,
        user: Option<&str>,
        now: SystemTime,
    ) -> SystemTime {
        let absolute = self.absolute_deadline(created_at, user);
        let deadline = match expiry {
            None | Some(Expiry::OnBrowserClose) => now.checked_add(self.idle_timeout),
            Some(Expiry::OnInactivity(idle)) => now.checked_add(idle),
            Some(Expiry::AtDateTime(at)) => Some(at),
        };
        deadline.map_or(absolute, |deadline| deadline.min(absolute))
    }

    /// Whether a record with this expiry slides its deadline on activity.
    pub(crate) fn slides(expiry: Option<Expiry>) -> bool {
        !matches!(expiry, Some(Expiry::AtDateTime(_)))
    }

    /// The cookie's `Max-Age` for a session whose server deadline is `expires_at`: the time
    /// left, rounded down to whole seconds, so the cookie never outlives the record. `None`
    /// for browser-session cookies.
    pub(crate) fn max_age(
        expiry: Option<Expiry>,
        expires_at: SystemTime,
        now: SystemTime,
    ) -> Option<Duration> {
        if matches!(expiry, Some(Expiry::OnBrowserClose)) {
            return None;
        }
        let left = expires_at.duration_since(now).unwrap_or_default();
        Some(Duration::from_secs(left.as_secs()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lifetime() -> Lifetime {
        Lifetime {
            idle_timeout: Duration::from_secs(300),
            absolute_timeout: Duration::from_secs(3600),
            touch_after: None,
            anonymous_timeout: None,
        }
    }

    #[test]
    fn s22_deadline_is_the_smaller_of_idle_and_absolute() {
        let created = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let lifetime = lifetime();
        let early = created + Duration::from_secs(10);
        assert_eq!(
            lifetime.expires_at(created, None, None, early),
            early + Duration::from_secs(300)
        );
        let late = created + Duration::from_secs(3500);
        assert_eq!(
            lifetime.expires_at(created, None, None, late),
            created + Duration::from_secs(3600)
        );
        let remember = Some(Expiry::OnInactivity(Duration::from_secs(86_400)));
        assert_eq!(
            lifetime.expires_at(created, remember, None, early),
            created + Duration::from_secs(3600)
        );
    }

    #[test]
    fn max_age_rounds_down_and_is_absent_for_browser_sessions() {
        let now = UNIX_EPOCH + Duration::from_secs(10);
        let expires = now + Duration::from_millis(2999);
        assert_eq!(
            Lifetime::max_age(None, expires, now),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            Lifetime::max_age(Some(Expiry::OnBrowserClose), expires, now),
            None
        );
        assert_eq!(
            Lifetime::max_age(None, now - Duration::from_secs(1), now),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn default_touch_interval_is_a_quarter_of_idle_capped_at_a_minute() {
        assert_eq!(lifetime().touch_interval(), Duration::from_secs(60));
        let short = Lifetime {
            idle_timeout: Duration::from_secs(40),
            ..lifetime()
        };
        assert_eq!(short.touch_interval(), Duration::from_secs(10));
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(5));
        assert_eq!(clock.now(), UNIX_EPOCH + Duration::from_secs(5));
        clock.clone().advance(Duration::from_secs(1));
        assert_eq!(clock.now(), UNIX_EPOCH + Duration::from_secs(6));
    }
}
