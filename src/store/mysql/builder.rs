//! [`MySqlStoreBuilder`]: the store's table, batch size and timeout.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use sqlx::MySqlPool;

use crate::config::ConfigError;
#[cfg(doc)]
use crate::store::{SessionStore, StoreError};

use super::names::check_identifier;
use super::{MySqlStore, Shared};

/// Configures a [`MySqlStore`]; made by [`MySqlStore::builder`].
///
/// Every setting is checked by [`build`](Self::build), which fails with a [`ConfigError`]
/// ([`ConfigError::InvalidStoreSetting`]) naming the setting; the store's operations then
/// fail only with [`StoreError`]s.
///
/// ```no_run
/// # async fn run(pool: sqlx::MySqlPool) -> Result<(), Box<dyn std::error::Error>> {
/// let store = sessionware::MySqlStore::builder(pool)
///     .table("sessions")
///     .delete_batch_size(5_000)
///     .build()?;
/// store.migrate().await?;
/// # Ok(())
/// # }
/// ```
#[must_use]
pub struct MySqlStoreBuilder {
    pub(super) pool: MySqlPool,
    pub(super) table: String,
    pub(super) delete_batch_size: u32,
    pub(super) operation_timeout: Duration,
}

impl MySqlStoreBuilder {
    /// The name of the sessions table, in the connection's database. Default:
    /// `sessionware_sessions`.
    ///
    /// Must be a plain identifier: an ASCII letter or `_`, then ASCII letters, digits or
    /// `_`, at most 64 bytes. It is used backtick-quoted. Checked by [`build`](Self::build).
    pub fn table(mut self, table: impl Into<String>) -> Self {
        self.table = table.into();
        self
    }

    /// How many expired rows [`delete_expired`](SessionStore::delete_expired) deletes per
    /// statement. Default: 1,000.
    ///
    /// Each batch is its own short statement, so a large backlog of expired sessions never
    /// holds locks on many rows at once. Larger batches purge a backlog in fewer round trips;
    /// smaller ones keep each statement shorter. Must not be zero; checked by
    /// [`build`](Self::build).
    pub fn delete_batch_size(mut self, rows: u32) -> Self {
        self.delete_batch_size = rows;
        self
    }

    /// The longest any one store operation may take, waiting for a pooled connection (or
    /// connecting) included; past it the operation is abandoned with
    /// [`StoreError::Timeout`]. Default: 2 seconds.
    ///
    /// While the server is down or paused, every request that needs the store then fails
    /// within this bound instead of piling up. Must not be zero; checked by
    /// [`build`](Self::build).
    pub fn operation_timeout(mut self, timeout: Duration) -> Self {
        self.operation_timeout = timeout;
        self
    }

    /// Checks the configuration and builds the store.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidStoreSetting`], naming the problem and the fix, if the table
    /// name is not a plain identifier (see [`table`](Self::table)), the batch size is zero
    /// or the operation timeout is zero. Names are refused rather than escaped: they are the
    /// only text ever formatted into the store's SQL.
    pub fn build(self) -> Result<MySqlStore, ConfigError> {
        check_identifier("table", &self.table)?;
        if self.delete_batch_size == 0 {
            return Err(ConfigError::InvalidStoreSetting {
                setting: "delete_batch_size",
                reason: "must be at least 1".to_owned(),
            });
        }
        if self.operation_timeout.is_zero() {
            return Err(ConfigError::InvalidStoreSetting {
                setting: "operation_timeout",
                reason: "must be greater than zero".to_owned(),
            });
        }
        Ok(MySqlStore {
            pool: self.pool,
            shared: Arc::new(Shared::new(
                self.table,
                self.delete_batch_size,
                self.operation_timeout,
            )),
        })
    }
}

impl fmt::Debug for MySqlStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MySqlStoreBuilder")
            .field("table", &self.table)
            .field("delete_batch_size", &self.delete_batch_size)
            .field("operation_timeout", &self.operation_timeout)
            .finish_non_exhaustive()
    }
}
