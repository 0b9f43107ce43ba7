//! [`PostgresStore::migrate`]: creating the table, and upgrading one of an older release.

use super::PostgresStore;
use super::error::reply_failure;
use super::sql::{EXISTING_OBJECTS, MIGRATION_LOCK, sql};
use crate::store::StoreError;

/// The advisory lock key serializing migrations of every sessionware table in a database
/// (the ASCII bytes of "sessionw"). One key for all tables, because two tables in one new
/// schema race on creating that schema.
const MIGRATION_LOCK_KEY: i64 = 0x7365_7373_696f_6e77;

impl PostgresStore {
    /// Creates the schema, the table and its indexes if they do not exist yet, and upgrades
    /// a table of an older release in place (see [Upgrades](PostgresStore#upgrades)).
    ///
    /// Idempotent: run it at every start. Concurrent runs (several instances starting at
    /// once) are serialized by a transaction-scoped advisory lock, and objects that already
    /// exist are not created again, so once the table exists the role running this needs no
    /// `CREATE` privilege. The SQL is shown in the [type documentation](PostgresStore#schema).
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] if the server cannot be reached, [`StoreError::Backend`]
    /// if it refuses a statement (for example, the role may not create the schema or table).
    /// Unlike the store's operations, the migration is not bounded by the operation timeout
    /// (it may wait for another instance's migration to finish).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let shared = &*self.shared;
        let failure = |error| reply_failure("migrate", error);
        let mut tx = self.pool.begin().await.map_err(failure)?;
        sqlx::query(MIGRATION_LOCK)
            .bind(MIGRATION_LOCK_KEY)
            .execute(&mut *tx)
            .await
            .map_err(failure)?;
        let (has_schema, has_table, has_expires_index, has_user_index, has_columns): (
            bool,
            bool,
            bool,
            bool,
            bool,
        ) = sqlx::query_as(EXISTING_OBJECTS)
            .bind(&shared.schema)
            .bind(&shared.table)
            .bind(&shared.expires_index)
            .bind(&shared.user_index)
            .fetch_one(&mut *tx)
            .await
            .map_err(failure)?;
        let steps = [
            (has_schema, &shared.sql.create_schema),
            (has_table, &shared.sql.create_table),
            // A table made just now has the columns; one of an older release gets them.
            (!has_table || has_columns, &shared.sql.add_label_and_format),
            (has_expires_index, &shared.sql.create_expires_index),
            (has_user_index, &shared.sql.create_user_index),
        ];
        for (exists, statement) in steps {
            if !exists {
                sqlx::query(sql(statement))
                    .persistent(false)
                    .execute(&mut *tx)
                    .await
                    .map_err(failure)?;
            }
        }
        tx.commit().await.map_err(failure)
    }
}
