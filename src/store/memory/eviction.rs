//! Making room in a full store: purging expired sessions, then evicting the least recently
//! active anonymous ones.

use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::id::StoreKey;
use crate::store::StoreError;

use super::Inner;
use crate::store::codec::View;

/// `create` on a full store purges expired entries at most this often (in the caller's time),
/// so that an attacker who keeps the store full cannot make every `create` scan the map.
const PURGE_INTERVAL: Duration = Duration::from_secs(1);

/// A full store evicts about `capacity / EVICTION_SHARE` anonymous sessions per pass, so that
/// under a flood of anonymous sessions a pass (two scans of the map) runs once per that many
/// creations rather than at each one.
const EVICTION_SHARE: usize = 64;

/// Stores up to this capacity judge which anonymous sessions are the least recently active
/// from all of them; larger ones from a sample of one session in [`EVICTION_SAMPLE_STRIDE`]
/// (those whose store key's last byte is below `256 / stride`: a uniform sample, since keys
/// are SHA-256 hashes).
const EVICTION_SAMPLE_ALL_UP_TO: usize = 65_536;
const EVICTION_SAMPLE_STRIDE: usize = 16;

/// What the last eviction pass found.
#[derive(Default)]
pub(super) struct Eviction {
    /// When a pass last found no anonymous session to evict: passes are not repeated within
    /// [`PURGE_INTERVAL`] of it, so a store full of authenticated sessions refuses new ones
    /// without scanning the map at every attempt.
    fruitless_at: Option<SystemTime>,
}

impl Inner {
    /// Removes the entries expired at `now`, unless a purge ran less than
    /// [`PURGE_INTERVAL`] before `now` or is running. Returns whether it purged.
    pub(super) fn purge_if_due(&self, now: SystemTime) -> Result<bool, StoreError> {
        let now_micros = now.duration_since(UNIX_EPOCH).map_or(0, |since| {
            u64::try_from(since.as_micros()).unwrap_or(u64::MAX)
        });
        let last = self.last_purge_micros.load(Ordering::Acquire);
        let interval = u64::try_from(PURGE_INTERVAL.as_micros()).unwrap_or(u64::MAX);
        // A clock that moved backwards (a test clock) does not block purges.
        let due = !self.purged_once.load(Ordering::Acquire)
            || now_micros < last
            || now_micros - last >= interval;
        if !due {
            return Ok(false);
        }
        // Of concurrent creators finding the store full, one purges; the others fail.
        if self
            .last_purge_micros
            .compare_exchange(last, now_micros, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Ok(false);
        }
        self.purged_once.store(true, Ordering::Release);
        let removed = self.delete_expired(now)?;
        tracing::debug!(removed, "session store full: purged expired sessions");
        Ok(true)
    }

    /// Makes room in a full store by evicting the least recently active anonymous sessions
    /// (about `capacity / EVICTION_SHARE` of them, judged by `last_active`), unless another
    /// creator's pass made room meanwhile. Returns whether there may be room now.
    pub(super) fn evict_anonymous(&self, now: SystemTime) -> Result<bool, StoreError> {
        let mut eviction = self
            .eviction
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if self.len.load(Ordering::Acquire) < self.capacity {
            return Ok(true);
        }
        if eviction.fruitless_at.is_some_and(|at| {
            now.duration_since(at)
                .is_ok_and(|since| since < PURGE_INTERVAL)
        }) {
            return Ok(false);
        }
        let batch = (self.capacity / EVICTION_SHARE).max(1);
        let stride = if self.capacity <= EVICTION_SAMPLE_ALL_UP_TO {
            1
        } else {
            EVICTION_SAMPLE_STRIDE
        };
        let in_sample = |key: &StoreKey| usize::from(key.as_bytes()[31]) < 256 / stride;
        // Pass 1: the last-activity times of (a sample of) the anonymous sessions.
        let mut sample = Vec::new();
        for entry in self.sessions.iter() {
            if in_sample(entry.key()) {
                let stored = View::decode(entry.value())?;
                if stored.user.is_none() {
                    sample.push(stored.last_active);
                }
            }
        }
        if sample.is_empty() {
            eviction.fruitless_at = Some(now);
            return Ok(false);
        }
        // The last activity below which about `batch` anonymous sessions lie.
        let at = (batch / stride).min(sample.len() - 1);
        let (_, &mut threshold, _) = sample.select_nth_unstable(at);
        // Pass 2: evict anonymous sessions at or before it, at most `batch`.
        let mut evicted = 0;
        self.sessions.retain(|_, encoded| {
            if evicted >= batch {
                return true;
            }
            match View::decode(encoded) {
                Ok(stored) if stored.user.is_none() && stored.last_active <= threshold => {
                    evicted += 1;
                    false
                }
                _ => true,
            }
        });
        self.len.fetch_sub(evicted, Ordering::AcqRel);
        tracing::debug!(
            evicted,
            "session store full: evicted least recently active anonymous sessions"
        );
        eviction.fruitless_at = (evicted == 0).then_some(now);
        Ok(evicted > 0)
    }
}
