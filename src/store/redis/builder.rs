//! [`RedisStoreBuilder`]: the store's settings, and connecting.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use redis::Client;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::config::ConfigError;
use crate::store::{DEFAULT_OPERATION_TIMEOUT, StoreError};
#[cfg(doc)]
use crate::store::{LoadOutcome, SessionStore, UserIndex};

use super::connection::{bounded, default_connection_config};
use super::error::redis_failure;
use super::keys::KeyLayout;
use super::{DEFAULT_EXPIRY_GRACE, DEFAULT_KEY_PREFIX, RedisStore};

/// Builds a [`RedisStore`]; made by [`RedisStore::builder`] or
/// [`RedisStore::builder_with_manager`].
#[must_use = "a builder does nothing until `build` is awaited"]
pub struct RedisStoreBuilder {
    connection: Connection,
    config: Option<ConnectionManagerConfig>,
    key_prefix: String,
    expiry_grace: Duration,
    operation_timeout: Duration,
}

pub(super) enum Connection {
    Url(String),
    Manager(ConnectionManager),
}

impl RedisStoreBuilder {
    pub(super) fn new(connection: Connection) -> Self {
        Self {
            connection,
            config: None,
            key_prefix: DEFAULT_KEY_PREFIX.to_owned(),
            expiry_grace: DEFAULT_EXPIRY_GRACE,
            operation_timeout: DEFAULT_OPERATION_TIMEOUT,
        }
    }

    /// The prefix of every key the store writes. Default: `"sessionware:"`.
    ///
    /// Give each application sharing a server its own prefix. On Redis Cluster, wrap a part
    /// of it in a hash tag (`"{myapp}:sessions:"`) so that all of the store's keys share one
    /// slot, as its scripts require.
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }

    /// How long Redis keeps a record after its deadline before the native TTL drops it.
    /// Default: 60 seconds.
    ///
    /// During the grace, `load` reports [`LoadOutcome::Expired`] instead of
    /// [`LoadOutcome::Missing`], and an application clock that lags the server's by less than
    /// the grace still sees its sessions live until their stored deadline. An expired record
    /// is never returned as live, whatever the grace.
    ///
    /// A user's index also keeps the member of an expired session until it has been expired
    /// for longer than the grace, so the grace should exceed the clock skew between the
    /// application's instances (see [Index upkeep](RedisStore#index-upkeep)).
    pub fn expiry_grace(mut self, grace: Duration) -> Self {
        self.expiry_grace = grace;
        self
    }

    /// The longest any one store operation may take, connecting included; past it the
    /// operation is abandoned with [`StoreError::Timeout`]. Default: 2 seconds.
    ///
    /// While the server is down, paused or unreachable, every request that needs the store
    /// then fails within this bound instead of waiting for the connection manager's
    /// reconnection attempts. [`build`](Self::build) connects within it too.
    /// [`delete_expired`](SessionStore::delete_expired), [`sessions_of`](UserIndex::sessions_of)
    /// and [`revoke_user`](UserIndex::revoke_user) take several steps on a large keyspace or
    /// index (see [`RedisStore`]); the bound applies to each step. An abandoned script may
    /// still run on the server once it answers again, which every operation tolerates (each
    /// script is atomic, and a retry reads the outcome afresh). Must not be zero; checked by
    /// [`build`](Self::build), which refuses zero with a [`ConfigError`].
    pub fn operation_timeout(mut self, timeout: Duration) -> Self {
        self.operation_timeout = timeout;
        self
    }

    /// Reconnection and timeout settings of the connection manager. Default: the `redis`
    /// crate's defaults (six reconnection attempts with exponential backoff), with a response
    /// timeout equal to the [operation timeout](Self::operation_timeout) and a connection
    /// timeout of 1 second or the operation timeout if that is shorter.
    ///
    /// Settings given here replace those defaults entirely, timeouts included. The operation
    /// timeout bounds each operation whatever they say: a longer response or connection
    /// timeout here changes nothing, a shorter one makes an operation fail sooner with
    /// [`StoreError::Unavailable`].
    ///
    /// Only for a builder made with [`RedisStore::builder`]: a manager passed to
    /// [`RedisStore::builder_with_manager`] is already configured, and `build` fails with a
    /// [`ConfigError`] if this is set too.
    pub fn connection_config(mut self, config: ConnectionManagerConfig) -> Self {
        self.config = Some(config);
        self
    }

    /// Checks the settings, then returns the future that connects (for a builder made from
    /// a URL) and yields the store.
    ///
    /// The settings are checked before any I/O, so a mistake in them shows at once, and the
    /// connection's own failures come from the future:
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    /// use sessionware::RedisStore;
    ///
    /// let store = RedisStore::builder("redis://127.0.0.1:6379")
    ///     .operation_timeout(Duration::from_millis(500))
    ///     .build()? // a `ConfigError`: the settings are wrong
    ///     .await?; // a `StoreError`: the server could not be reached
    /// # let _ = store;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// For a builder made with [`RedisStore::builder_with_manager`], the future is ready at
    /// once and never fails.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidStoreSetting`], before connecting, naming the setting:
    ///
    /// - `operation_timeout` if the [operation timeout](Self::operation_timeout) is zero;
    /// - `url` if the URL does not parse;
    /// - `connection_config` if a [connection configuration](Self::connection_config) was
    ///   given for an existing manager.
    ///
    /// The future then fails with:
    ///
    /// - [`StoreError::Unavailable`] if the server refuses the connection or drops it (the
    ///   [`redis::RedisError`] is the source);
    /// - [`StoreError::Timeout`] if connecting takes longer than the operation timeout (the
    ///   server is down, paused or unreachable);
    /// - [`StoreError::Backend`] if the server refuses the client otherwise (a wrong password,
    ///   say; the [`redis::RedisError`] is the source).
    pub fn build(
        self,
    ) -> Result<impl Future<Output = Result<RedisStore, StoreError>> + Send + 'static, ConfigError>
    {
        let timeout = self.operation_timeout;
        if timeout.is_zero() {
            return Err(ConfigError::InvalidStoreSetting {
                setting: "operation_timeout",
                reason: "must be greater than zero".to_owned(),
            });
        }
        let source = match (self.connection, self.config) {
            (Connection::Url(url), config) => {
                let client = Client::open(url.as_str()).map_err(|error| {
                    ConfigError::InvalidStoreSetting {
                        setting: "url",
                        reason: format!("the Redis URL is not valid: {error}"),
                    }
                })?;
                let config = config.unwrap_or_else(|| default_connection_config(timeout));
                Source::Connect(client, config)
            }
            (Connection::Manager(manager), None) => Source::Ready(manager),
            (Connection::Manager(_), Some(_)) => {
                return Err(ConfigError::InvalidStoreSetting {
                    setting: "connection_config",
                    reason: "has no effect on a store built from an existing \
                             ConnectionManager: configure the manager instead"
                        .to_owned(),
                });
            }
        };
        let layout = Arc::new(KeyLayout::new(self.key_prefix, self.expiry_grace));
        Ok(async move {
            let manager = match source {
                Source::Ready(manager) => manager,
                Source::Connect(client, config) => {
                    bounded(timeout, "connect", async {
                        ConnectionManager::new_with_config(client, config)
                            .await
                            .map_err(|error| redis_failure("connect", error))
                    })
                    .await?
                }
            };
            Ok(RedisStore {
                manager,
                layout,
                operation_timeout: timeout,
            })
        })
    }
}

/// Where [`RedisStoreBuilder::build`] gets its connection manager.
// Built once per store and consumed by `build`: boxing the large variant would save nothing.
#[allow(clippy::large_enum_variant)]
enum Source {
    Connect(Client, ConnectionManagerConfig),
    Ready(ConnectionManager),
}

impl fmt::Debug for RedisStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may carry a password: never show it.
        f.debug_struct("RedisStoreBuilder")
            .field("key_prefix", &self.key_prefix)
            .field("expiry_grace", &self.expiry_grace)
            .field("operation_timeout", &self.operation_timeout)
            .finish_non_exhaustive()
    }
}
