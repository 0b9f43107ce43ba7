//! Write transactions: one writer at a time per store, each a `BEGIN IMMEDIATE`
//! transaction, and why a conditional write missed.

use std::sync::Arc;

use sqlx::sqlite::{SqliteArguments, SqliteConnection};
use sqlx::{Sqlite, Transaction};
use tokio::sync::MutexGuard;

use super::error::sqlx_failure;
use super::row::column;
use super::sql::{BEGIN_WRITE, sql};
use super::{MARKER_VERSION, SqliteStore};
use crate::id::StoreKey;
use crate::store::StoreError;

/// A write transaction in progress, holding the store's writer turn. Dropped without
/// [`commit`](Self::commit), it rolls back.
pub(super) struct Write<'a> {
    // Declared first, so dropped first: the rollback starts before the next writer's turn.
    tx: Transaction<'static, Sqlite>,
    _turn: MutexGuard<'a, ()>,
}

impl Write<'_> {
    pub(super) fn connection(&mut self) -> &mut SqliteConnection {
        &mut self.tx
    }

    /// Runs `statement` with `args` for `operation` and returns how many rows it changed.
    pub(super) async fn execute(
        &mut self,
        operation: &'static str,
        statement: &Arc<str>,
        args: SqliteArguments,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query_with(sql(statement), args)
            .execute(self.connection())
            .await
            .map_err(|error| sqlx_failure(operation, error))?;
        Ok(done.rows_affected())
    }

    pub(super) async fn commit(self, operation: &'static str) -> Result<(), StoreError> {
        self.tx
            .commit()
            .await
            .map_err(|error| sqlx_failure(operation, error))
    }
}

impl SqliteStore {
    /// Waits for this store's writer turn and opens a write transaction for `operation`.
    pub(super) async fn begin_write(
        &self,
        operation: &'static str,
    ) -> Result<Write<'_>, StoreError> {
        let turn = self.shared.writer.lock().await;
        let tx = self
            .pool
            .begin_with(BEGIN_WRITE)
            .await
            .map_err(|error| sqlx_failure(operation, error))?;
        Ok(Write { tx, _turn: turn })
    }

    /// Runs one write statement with `args` in its own write transaction and returns how
    /// many rows it changed.
    pub(super) async fn write_one(
        &self,
        operation: &'static str,
        statement: &Arc<str>,
        args: SqliteArguments,
    ) -> Result<u64, StoreError> {
        let mut write = self.begin_write(operation).await?;
        let changed = write.execute(operation, statement, args).await?;
        write.commit(operation).await?;
        Ok(changed)
    }

    /// Runs the conditional write `statement` on the record under `key` with `args` in its
    /// own write transaction: `None` if it changed the record, else why it missed.
    pub(super) async fn write_or_miss(
        &self,
        operation: &'static str,
        statement: &Arc<str>,
        args: SqliteArguments,
        key: &StoreKey,
        now: i64,
    ) -> Result<Option<Miss>, StoreError> {
        let mut write = self.begin_write(operation).await?;
        let changed = write.execute(operation, statement, args).await?;
        let missed = if changed == 1 {
            None
        } else {
            Some(self.miss(write.connection(), key, now, operation).await?)
        };
        write.commit(operation).await?;
        Ok(missed)
    }

    /// The version of the live record under `key` at `now` (milliseconds), if there is one,
    /// read for `operation` inside a write transaction: under the write lock, so nothing
    /// changed since the transaction's own statements.
    pub(super) async fn live_version(
        &self,
        connection: &mut SqliteConnection,
        key: &StoreKey,
        now: i64,
        operation: &'static str,
    ) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query(sql(&self.shared.sql.live_version))
            .bind(key.as_bytes().as_slice())
            .bind(now)
            .fetch_optional(connection)
            .await
            .map_err(|error| sqlx_failure(operation, error))?;
        row.map(|row| column(&row, "version", operation))
            .transpose()
    }

    /// Why a conditional write on `key` that changed nothing missed.
    pub(super) async fn miss(
        &self,
        connection: &mut SqliteConnection,
        key: &StoreKey,
        now: i64,
        operation: &'static str,
    ) -> Result<Miss, StoreError> {
        Ok(
            match self.live_version(connection, key, now, operation).await? {
                None => Miss::Missing,
                Some(MARKER_VERSION) => Miss::Moved,
                Some(_) => Miss::Conflict,
            },
        )
    }
}

/// What a conditional write that changed nothing found under its key.
pub(super) enum Miss {
    /// A live record of another version.
    Conflict,
    /// No live record.
    Missing,
    /// A rotation marker.
    Moved,
}
