//! The [`Sweeper`]: the background task that removes expired sessions.

use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::expiry::{Clock, SystemClock};

use super::{Inner, MemoryStore};

impl MemoryStore {
    /// Starts a background task that removes expired sessions every `period`, judging
    /// expiry by the system clock. The task stops when the returned [`Sweeper`] is dropped
    /// (or [stopped](Sweeper::stop)), or when every clone of the store is gone.
    ///
    /// Each sweep locks one shard of the map at a time and runs on tokio's blocking
    /// thread pool, so it neither stalls the store nor an async worker thread.
    ///
    /// # Panics
    ///
    /// Panics if called outside a tokio runtime, like [`tokio::spawn`].
    pub fn spawn_sweeper(&self, period: Duration) -> Sweeper {
        self.spawn_sweeper_with_clock(period, SystemClock)
    }

    /// Like [`spawn_sweeper`](Self::spawn_sweeper), judging expiry by `clock` (the layer's
    /// clock, or a [`ManualClock`](crate::ManualClock) in tests).
    ///
    /// # Panics
    ///
    /// Panics if called outside a tokio runtime, like [`tokio::spawn`].
    pub fn spawn_sweeper_with_clock(&self, period: Duration, clock: impl Clock) -> Sweeper {
        let store = Arc::downgrade(&self.inner);
        let period = period.max(MIN_SWEEP_PERIOD);
        let task = tokio::spawn(sweep_every(store, period, clock));
        Sweeper { task }
    }
}

/// The shortest sweep period; [`tokio::time::interval`] rejects a zero period.
const MIN_SWEEP_PERIOD: Duration = Duration::from_millis(1);

/// The background task started by [`MemoryStore::spawn_sweeper`]: it removes expired
/// sessions periodically until it is dropped or [stopped](Self::stop).
#[derive(Debug)]
#[must_use = "the sweeper stops when dropped"]
pub struct Sweeper {
    task: tokio::task::JoinHandle<()>,
}

impl Sweeper {
    /// Stops the sweeper. A sweep in progress finishes; no further sweep starts.
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for Sweeper {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn sweep_every(store: Weak<Inner>, period: Duration, clock: impl Clock) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        // A weak reference, so that a sweeper left running does not keep a dropped store's
        // sessions in memory.
        let Some(store) = store.upgrade() else {
            return;
        };
        let now = clock.now();
        match tokio::task::spawn_blocking(move || store.delete_expired(now)).await {
            Ok(Ok(removed)) => tracing::debug!(removed, "swept expired sessions"),
            Ok(Err(error)) => tracing::error!(%error, "sweeping expired sessions failed"),
            Err(error) => tracing::error!(%error, "the session sweep task failed"),
        }
    }
}
