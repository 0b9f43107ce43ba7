//! [`MySqlStore::migrate`]: creating the table and its indexes.

use sqlx::MySqlConnection;
use sqlx::pool::PoolConnection;

use super::MySqlStore;
use super::error::{reply_failure, unexpected_reply};
use super::sql::{
    EXISTING_INDEXES, EXPIRES_INDEX, MIGRATION_LOCK, MIGRATION_UNLOCK, TABLE_EXISTS, USER_INDEX,
    sql,
};
use crate::store::StoreError;

/// How long a migration waits for another instance's, in seconds.
const MIGRATION_LOCK_WAIT_SECS: i64 = 60;

impl MySqlStore {
    /// Creates the table and its indexes if they do not exist yet.
    ///
    /// Idempotent: run it at every start. Concurrent runs (several instances starting at
    /// once) are serialized by a named lock (`GET_LOCK('sessionware_migrate', ...)`, waiting
    /// up to 60 seconds), and a table or index that already exists (looked up in
    /// `information_schema`: MySQL and MariaDB check the `CREATE` privilege even for
    /// `CREATE TABLE IF NOT EXISTS`, and MySQL 8 has no `CREATE INDEX IF NOT EXISTS`) is not
    /// created again, so once the table exists the user running this needs no `CREATE` or
    /// `INDEX` privilege. The SQL is shown in the
    /// [type documentation](MySqlStore#schema).
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] if the server cannot be reached, [`StoreError::Backend`]
    /// if it refuses a statement (for example, the user may not create the table), and
    /// [`StoreError::UnexpectedReply`] if another migration held the lock for 60 seconds.
    /// Unlike the store's operations, the migration is not bounded by the operation timeout
    /// (it may wait for another instance's migration to finish).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let failure = |error| reply_failure("migrate", error);
        let mut connection = self.pool.acquire().await.map_err(failure)?;
        let locked: Option<i64> = sqlx::query_scalar(MIGRATION_LOCK)
            .bind(MIGRATION_LOCK_WAIT_SECS)
            .fetch_one(&mut *connection)
            .await
            .map_err(failure)?;
        if locked != Some(1) {
            return Err(unexpected_reply(
                "migrate",
                "GET_LOCK('sessionware_migrate') did not return 1: another migration held it",
            ));
        }
        let migrated = self.migrate_locked(&mut connection).await;
        let released = sqlx::query(MIGRATION_UNLOCK)
            .execute(&mut *connection)
            .await
            .map_err(failure);
        if released.is_err() {
            // The lock belongs to the connection: closing it is the sure way to let go.
            close(connection).await;
        }
        migrated.and(released.map(drop))
    }

    /// The migration proper, with the lock held on `connection`.
    async fn migrate_locked(&self, connection: &mut MySqlConnection) -> Result<(), StoreError> {
        let shared = &*self.shared;
        let failure = |error| reply_failure("migrate", error);
        let tables: i64 = sqlx::query_scalar(TABLE_EXISTS)
            .bind(&shared.table)
            .fetch_one(&mut *connection)
            .await
            .map_err(failure)?;
        if tables == 0 {
            sqlx::query(sql(&shared.sql.create_table))
                .persistent(false)
                .execute(&mut *connection)
                .await
                .map_err(failure)?;
        }
        let indexes: Vec<String> = sqlx::query_scalar(EXISTING_INDEXES)
            .bind(&shared.table)
            .fetch_all(&mut *connection)
            .await
            .map_err(failure)?;
        let has = |name: &str| indexes.iter().any(|index| index == name);
        let steps = [
            (has(EXPIRES_INDEX), &shared.sql.create_expires_index),
            (has(USER_INDEX), &shared.sql.create_user_index),
        ];
        for (exists, statement) in steps {
            if !exists {
                sqlx::query(sql(statement))
                    .persistent(false)
                    .execute(&mut *connection)
                    .await
                    .map_err(failure)?;
            }
        }
        Ok(())
    }
}

/// Closes `connection` instead of returning it to the pool, ignoring errors: the server
/// drops whatever the connection held.
async fn close(connection: PoolConnection<sqlx::MySql>) {
    use sqlx::Connection as _;
    let _ = connection.detach().close().await;
}
