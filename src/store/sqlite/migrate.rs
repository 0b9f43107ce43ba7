//! [`SqliteStore::migrate`]: creating the table and its indexes.

use super::SqliteStore;
use super::error::reply_failure;
use super::sql;
use crate::store::StoreError;

impl SqliteStore {
    /// Creates the table and its indexes if they do not exist yet.
    ///
    /// Idempotent: run it at every start. It runs as one write transaction, so concurrent
    /// runs take turns and the later ones find everything in place. The SQL is shown in the
    /// [type documentation](SqliteStore#schema).
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] if SQLite refuses a statement (a read-only file, say),
    /// [`StoreError::Unavailable`] if the database stays locked past the busy timeout.
    /// Unlike the store's operations, the migration is not bounded by the operation timeout.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let sql = &self.shared.sql;
        let mut write = self.begin_write("migrate").await?;
        for statement in [
            &sql.create_table,
            &sql.create_expires_index,
            &sql.create_user_index,
        ] {
            sqlx::query(sql::sql(statement))
                .persistent(false)
                .execute(write.connection())
                .await
                .map_err(|error| reply_failure("migrate", error))?;
        }
        write.commit("migrate").await
    }
}
