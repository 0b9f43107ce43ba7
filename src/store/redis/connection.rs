//! Timeouts: the bound on each operation, and the connection manager's own timeouts.

use std::future::Future;
use std::time::Duration;

use redis::aio::ConnectionManagerConfig;

use crate::store::{StoreError, within};

#[cfg(doc)]
use super::RedisStoreBuilder;

/// The longest one connection attempt may take with the store's default connection settings
/// (the `redis` crate's own default), or the operation timeout if that is shorter.
const DEFAULT_CONNECTION_TIMEOUT: Duration = Duration::from_secs(1);

/// Runs `step` of `operation` with [`within`], giving up after `timeout`.
///
/// The `redis` crate has timeouts of its own (per response and per connection attempt),
/// which the store's default connection settings set to at most `timeout`. When one of those
/// fires only once the whole `timeout` has passed, it is the same event as the store's own
/// timeout seen from inside (both timers may fire on the same tick), and is reported the
/// same way, as [`StoreError::Timeout`]. One that fires sooner (a shorter timeout in a
/// caller's connection settings) stays a [`StoreError::Unavailable`].
pub(super) async fn bounded<T>(
    timeout: Duration,
    operation: &'static str,
    step: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    let started = tokio::time::Instant::now();
    match within(timeout, operation, step).await {
        Err(StoreError::Unavailable(source))
            if started.elapsed() >= timeout
                && source
                    .downcast_ref::<redis::RedisError>()
                    .is_some_and(redis::RedisError::is_timeout) =>
        {
            Err(StoreError::Timeout { operation, timeout })
        }
        result => result,
    }
}

/// The connection manager settings of a store built from a URL without
/// [`RedisStoreBuilder::connection_config`]: the `redis` crate's defaults (six reconnection
/// attempts with exponential backoff), with each response awaited for at most the operation
/// timeout and each connection attempt for at most 1 second or the operation timeout if that
/// is shorter.
pub(super) fn default_connection_config(operation_timeout: Duration) -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_response_timeout(Some(operation_timeout))
        .set_connection_timeout(Some(DEFAULT_CONNECTION_TIMEOUT.min(operation_timeout)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::DEFAULT_OPERATION_TIMEOUT;

    #[test]
    fn default_connection_settings_stay_within_the_operation_timeout() {
        let short = default_connection_config(Duration::from_millis(300));
        assert_eq!(short.response_timeout(), Some(Duration::from_millis(300)));
        assert_eq!(short.connection_timeout(), Some(Duration::from_millis(300)));
        let default = default_connection_config(DEFAULT_OPERATION_TIMEOUT);
        assert_eq!(default.response_timeout(), Some(DEFAULT_OPERATION_TIMEOUT));
        assert_eq!(default.connection_timeout(), Some(Duration::from_secs(1)));
    }

    fn redis_timeout() -> StoreError {
        super::super::error::redis_failure(
            "load",
            redis::RedisError::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "timed out",
            )),
        )
    }

    #[tokio::test]
    async fn a_redis_timeout_is_a_store_timeout_only_once_the_operation_timeout_passed() {
        let timeout = Duration::from_millis(50);
        // Reported together with the store's own timer (here: only after it ran out).
        let late = bounded(timeout, "load", async {
            std::thread::sleep(timeout + Duration::from_millis(10));
            Err::<(), _>(redis_timeout())
        })
        .await;
        assert!(
            matches!(
                late,
                Err(StoreError::Timeout {
                    operation: "load",
                    timeout: t
                }) if t == timeout
            ),
            "{late:?}"
        );
        // A shorter timeout of the caller's own connection settings stays "unavailable".
        let early = bounded(timeout, "load", async { Err::<(), _>(redis_timeout()) }).await;
        assert!(
            matches!(early, Err(StoreError::Unavailable(_))),
            "{early:?}"
        );
    }
}
