//! [`PostgresStoreBuilder`]: the store's schema, table, batch size and timeout.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;

use crate::config::ConfigError;
#[cfg(doc)]
use crate::store::{SessionStore, StoreError};

use super::names::check_identifier;
use super::{PostgresStore, Shared};

/// Configures a [`PostgresStore`]; made by [`PostgresStore::builder`].
///
/// Every setting is checked by [`build`](Self::build), which fails with a [`ConfigError`]
/// ([`ConfigError::InvalidStoreSetting`]) naming the setting; the store's operations then
/// fail only with [`StoreError`]s.
///
/// ```no_run
/// # async fn run(pool: sqlx::PgPool) -> Result<(), Box<dyn std::error::Error>> {
/// let store = sessionware::PostgresStore::builder(pool)
///     .schema("auth")
///     .table("sessions")
///     .delete_batch_size(5_000)
///     .build()?;
/// store.migrate().await?;
/// # Ok(())
/// # }
/// ```
#[must_use]
pub struct PostgresStoreBuilder {
    pub(super) pool: PgPool,
    pub(super) schema: String,
    pub(super) table: String,
    pub(super) delete_batch_size: u32,
    pub(super) operation_timeout: Duration,
}

impl PostgresStoreBuilder {
    /// The schema holding the sessions table. Default: `public`.
    ///
    /// Must be a plain identifier: an ASCII letter or `_`, then ASCII letters, digits or
    /// `_`, at most 63 bytes. It is used double-quoted, so it is case-sensitive. Checked by
    /// [`build`](Self::build).
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// The name of the sessions table. Default: `sessionware_sessions`.
    ///
    /// The same rules as for [`schema`](Self::schema) apply. Checked by
    /// [`build`](Self::build).
    pub fn table(mut self, table: impl Into<String>) -> Self {
        self.table = table.into();
        self
    }

    /// How many expired rows [`delete_expired`](SessionStore::delete_expired) deletes per
    /// statement. Default: 1,000.
    ///
    /// Each batch is its own short statement that skips rows locked by live requests, so a
    /// large backlog of expired sessions never holds locks on many rows at once. Larger
    /// batches purge a backlog in fewer round trips; smaller ones keep each statement
    /// shorter. Must not be zero; checked by [`build`](Self::build).
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
    /// [`ConfigError::InvalidStoreSetting`], naming the problem and the fix, if the schema
    /// or table name is not a plain identifier (see [`schema`](Self::schema)) or the batch
    /// size is zero. Names are refused rather than escaped: they are the only text ever formatted
    /// into the store's SQL.
    pub fn build(self) -> Result<PostgresStore, ConfigError> {
        check_identifier("schema", &self.schema)?;
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
        Ok(PostgresStore {
            pool: self.pool,
            shared: Arc::new(Shared::new(
                self.schema,
                self.table,
                self.delete_batch_size,
                self.operation_timeout,
            )),
        })
    }
}

impl fmt::Debug for PostgresStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStoreBuilder")
            .field("schema", &self.schema)
            .field("table", &self.table)
            .field("delete_batch_size", &self.delete_batch_size)
            .field("operation_timeout", &self.operation_timeout)
            .finish_non_exhaustive()
    }
}
