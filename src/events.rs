//! Security events: what the layer counts and reports when it rejects a cookie or a request
//! loses its session to a concurrent one.

use std::sync::atomic::{AtomicU64, Ordering};

/// A kind of security-relevant event.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Event {
    Forged,
    Ambiguous,
    Expired,
    Unknown,
    Interrupted,
}

impl Event {
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

/// The running counts of one layer's events, shared by all its services.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    forged: AtomicU64,
    ambiguous: AtomicU64,
    expired: AtomicU64,
    unknown: AtomicU64,
    interrupted: AtomicU64,
}

impl Counters {
    /// Counts `event` and reports it with `tracing` (target `sessionware::security`), never
    /// with the raw cookie value.
    ///
    /// Every event is a `debug` event; the 1st, 2nd, 4th, 8th, ... of each kind is also at
    /// `info`, with the running total: a flood of forged cookies is counted in full but
    /// cannot flood the logs (a million of them make 20 `info` lines).
    pub(crate) fn report(&self, event: Event) {
        let counter = match event {
            Event::Forged => &self.forged,
            Event::Ambiguous => &self.ambiguous,
            Event::Expired => &self.expired,
            Event::Unknown => &self.unknown,
            Event::Interrupted => &self.interrupted,
        };
        let total = counter.fetch_add(1, Ordering::Relaxed).saturating_add(1);
        if total.is_power_of_two() {
            tracing::info!(target: "sessionware::security", event = event.name(), total, "session cookie rejected or session interrupted");
        } else {
            tracing::debug!(target: "sessionware::security", event = event.name(), total, "session cookie rejected or session interrupted");
        }
    }

    pub(crate) fn snapshot(&self) -> SecurityEvents {
        SecurityEvents {
            forged: self.forged.load(Ordering::Relaxed),
            ambiguous: self.ambiguous.load(Ordering::Relaxed),
            expired: self.expired.load(Ordering::Relaxed),
            unknown: self.unknown.load(Ordering::Relaxed),
            interrupted: self.interrupted.load(Ordering::Relaxed),
        }
    }
}

/// Counts of security-relevant events seen by a [`SessionLayer`](crate::SessionLayer).
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
