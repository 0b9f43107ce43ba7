//! The per-user index of [`SqliteStore`].

use std::time::SystemTime;

use super::SqliteStore;
use super::error::{reply_failure, sqlx_failure};
use super::row::{decode_info, to_millis};
use super::sql::sql;
use crate::id::SessionHandle;
use crate::store::{SessionInfo, StoreError, StoreFuture, UserIndex, within};

impl UserIndex for SqliteStore {
    fn sessions_of<'a>(
        &'a self,
        user: &'a str,
        now: SystemTime,
    ) -> StoreFuture<'a, Result<Vec<SessionInfo>, StoreError>> {
        StoreFuture::boxed(within(
            self.shared.operation_timeout,
            "sessions_of",
            async move {
                let rows = sqlx::query(sql(&self.shared.sql.sessions_of))
                    .bind(user)
                    .bind(to_millis(now, "now")?)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(|error| sqlx_failure("sessions_of", error))?;
                rows.iter()
                    .map(|row| decode_info(row, "sessions_of"))
                    .collect()
            },
        ))
    }

    /// Deletes every row of `user` but `except` in one statement; the rows expired at `now`
    /// are deleted too, and not counted.
    fn revoke_user<'a>(
        &'a self,
        user: &'a str,
        except: Option<&'a SessionHandle>,
        now: SystemTime,
    ) -> StoreFuture<'a, Result<u64, StoreError>> {
        StoreFuture::boxed(within(
            self.shared.operation_timeout,
            "revoke_user",
            async move {
                let now = to_millis(now, "now")?;
                let mut write = self.begin_write("revoke_user").await?;
                let live: Vec<bool> = sqlx::query_scalar(sql(&self.shared.sql.revoke_user))
                    .bind(user)
                    .bind(except.map(|handle| handle.store_key().as_bytes().as_slice()))
                    .bind(now)
                    .fetch_all(write.connection())
                    .await
                    .map_err(|error| reply_failure("revoke_user", error))?;
                write.commit("revoke_user").await?;
                Ok(live.into_iter().filter(|live| *live).count() as u64)
            },
        ))
    }
}
