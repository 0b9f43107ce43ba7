//! [`SqliteStoreBuilder`]: the store's table, batch size and timeout.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use sqlx::SqlitePool;

use crate::config::ConfigError;
#[cfg(doc)]
use crate::store::{SessionStore, StoreError};

use super::names::check_identifier;
use super::{Shared, SqliteStore};

/// Configures a [`SqliteStore`]; made by [`SqliteStore::builder`].
///
/// Every setting is checked by [`build`](Self::build), which fails with a [`ConfigError`]
/// ([`ConfigError::InvalidStoreSetting`]) naming the setting; the store's operations then
/// fail only with [`StoreError`]s.
///
/// ```no_run
/// # async fn run(pool: sqlx::SqlitePool) -> Result<(), Box<dyn std::error::Error>> {
/// let store = sessionware::SqliteStore::builder(pool)
///     .table("sessions")
///     .delete_batch_size(5_000)
///     .build()?;
/// store.migrate().await?;
/// # Ok(())
/// # }
/// ```
#[must_use]
pub struct SqliteStoreBuilder {
    pub(super) pool: SqlitePool,
    pub(super) table: String,
    pub(super) delete_batch_size: u32,
    pub(super) operation_timeout: Duration,
}

impl SqliteStoreBuilder {
    /// The name of the sessions table. Default: `sessionware_sessions`.
    ///
    /// Must be a plain identifier: an ASCII letter or `_`, then ASCII letters, digits or
    /// `_`, and not starting with `sqlite_` (reserved by SQLite). It is used double-quoted.
    /// Checked by [`build`](Self::build).
    pub fn table(mut self, table: impl Into<String>) -> Self {
        self.table = table.into();
        self
    }

    /// How many expired rows [`delete_expired`](SessionStore::delete_expired) deletes per
    /// transaction. Default: 1,000.
    ///
    /// Each batch holds the database's write lock only while it runs, so live requests
    /// write between batches. Must not be zero; checked by [`build`](Self::build).
    pub fn delete_batch_size(mut self, rows: u32) -> Self {
        self.delete_batch_size = rows;
        self
    }

    /// The longest any one store operation may take, waiting for the write lock or a
    /// pooled connection included; past it the operation is abandoned with
    /// [`StoreError::Timeout`]. Default: 2 seconds. Must not be zero; checked by
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
    /// name is not a plain identifier (see [`table`](Self::table)), or the batch size or
    /// the timeout is zero. Names are refused rather than escaped: they are the only text
    /// ever formatted into the store's SQL.
    pub fn build(self) -> Result<SqliteStore, ConfigError> {
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
        Ok(SqliteStore {
            pool: self.pool,
            shared: Arc::new(Shared::new(
                self.table,
                self.delete_batch_size,
                self.operation_timeout,
            )),
        })
    }
}

impl fmt::Debug for SqliteStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStoreBuilder")
            .field("table", &self.table)
            .field("delete_batch_size", &self.delete_batch_size)
            .field("operation_timeout", &self.operation_timeout)
            .finish_non_exhaustive()
    }
}
