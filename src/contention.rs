//! How concurrent writers of one session take turns: in one process they queue on a striped
//! lock ([`WriteTurns`]); across processes, a compare-and-swap that keeps conflicting backs
//! off with jitter until a time budget runs out ([`Retry`]).

use std::time::Duration;
// tokio's clock where tokio is present, so that a paused test runtime moves it too.
#[cfg(not(any(feature = "memory-store", feature = "redis", feature = "postgres")))]
use std::time::Instant;
#[cfg(any(feature = "memory-store", feature = "redis", feature = "postgres"))]
use tokio::time::Instant;

use futures_util::lock::{Mutex, MutexGuard};
use rand::RngExt as _;

use crate::error::SessionError;
use crate::id::StoreKey;

/// The number of locks writers are spread over. Two sessions share a lock only when their
/// store keys (SHA-256, so uniformly spread) fall on the same stripe; a writer then waits
/// for one unrelated commit at worst.
const STRIPES: usize = 1024;

/// The first back-off after a conflict with another process; each further conflict doubles
/// it, up to [`MAX_BACKOFF`]. Each wait is drawn between half and all of it, so that writers
/// that collided once do not collide again in lockstep.
const FIRST_BACKOFF: Duration = Duration::from_millis(1);
const MAX_BACKOFF: Duration = Duration::from_millis(64);

/// One lock per stripe of store keys: the writers of one session in this process commit one
/// at a time instead of racing each other to the store, where all but one of each round
/// would conflict, reload and try again.
pub(crate) struct WriteTurns {
    stripes: Box<[Mutex<()>]>,
}

impl WriteTurns {
    pub(crate) fn new() -> Self {
        Self {
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
        }
    }

    /// Waits for the turn to write the session filed under `key`.
    pub(crate) async fn turn(&self, key: &StoreKey) -> MutexGuard<'_, ()> {
        let mut first = [0u8; 8];
        first.copy_from_slice(&key.as_bytes()[..8]);
        let stripe = u64::from_le_bytes(first) as usize % STRIPES;
        self.stripes[stripe].lock().await
    }
}

/// The retry policy of one commit. The first conflict is expected (another request of this
/// process committed between this one's load and its turn) and is retried at once; later
/// ones come from other processes and wait a growing, jittered back-off, until `budget` has
/// passed since the second conflict.
pub(crate) struct Retry {
    budget: Duration,
    pause: Pause,
    conflicts: u32,
    started: Option<Instant>,
}

/// How a retry waits out its back-off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pause {
    /// On a timer: for remote stores, which run on tokio anyway.
    Sleep,
    /// By yielding to the executor once: for in-process stores, whose conflicts clear in
    /// microseconds, so that the layer needs no timer (nor tokio) in front of them.
    Yield,
}

impl Retry {
    pub(crate) fn new(budget: Duration, pause: Pause) -> Self {
        Self {
            budget,
            pause,
            conflicts: 0,
            started: None,
        }
    }

    /// Called after each conflict, before reloading: waits before the next attempt, or
    /// gives up with [`SessionError::Conflict`] once the budget is spent.
    pub(crate) async fn after_conflict(&mut self) -> Result<(), SessionError> {
        self.conflicts += 1;
        if self.conflicts == 1 {
            return Ok(());
        }
        let started = *self.started.get_or_insert_with(Instant::now);
        let elapsed = started.elapsed();
        if elapsed >= self.budget {
            return Err(SessionError::Conflict);
        }
        let doublings = (self.conflicts - 2).min(16);
        let ceiling = FIRST_BACKOFF
            .saturating_mul(1 << doublings)
            .min(MAX_BACKOFF)
            .min(self.budget - elapsed);
        match self.pause {
            Pause::Sleep => {
                // Drawn before the wait: the thread's generator must not be held across it.
                let wait = rand::rng().random_range(ceiling / 2..=ceiling);
                sleep(wait).await;
            }
            Pause::Yield => yield_once().await,
        }
        Ok(())
    }
}

#[cfg(any(feature = "memory-store", feature = "redis", feature = "postgres"))]
async fn sleep(wait: Duration) {
    tokio::time::sleep(wait).await;
}

/// Without tokio (no store feature, a third-party store), retries yield instead of waiting:
/// the budget still bounds them.
#[cfg(not(any(feature = "memory-store", feature = "redis", feature = "postgres")))]
async fn sleep(_: Duration) {
    yield_once().await;
}

/// Lets the executor run other tasks once.
async fn yield_once() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            std::task::Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn retries_once_at_once_then_back_off_until_the_budget_is_spent() {
        let mut retry = Retry::new(Duration::from_millis(500), Pause::Sleep);
        let start = tokio::time::Instant::now();
        retry.after_conflict().await.unwrap();
        assert_eq!(start.elapsed(), Duration::ZERO, "the first retry waits");
        let mut attempts = 1;
        while retry.after_conflict().await.is_ok() {
            attempts += 1;
            assert!(attempts < 1000, "the budget never ran out");
        }
        // The paused clock moves only by the back-offs, which stay within the budget plus
        // the last jittered wait.
        assert!(start.elapsed() <= Duration::from_millis(500) + MAX_BACKOFF);
        assert!(attempts > 5, "gave up after {attempts} attempts");
    }
}
