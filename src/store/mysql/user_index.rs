//! The [`UserIndex`] of [`MySqlStore`]: over the `user_id` index.

use std::time::SystemTime;

use sqlx::mysql::MySqlArguments;

use super::MySqlStore;
use super::error::{is_deadlock, reply_failure, sqlx_failure, unexpected_reply};
use super::row::{decode_info, push, to_millis};
use super::sql::sql;
use crate::id::SessionHandle;
use crate::store::{SessionInfo, StoreError, StoreFuture, UserIndex, within};

impl UserIndex for MySqlStore {
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
                    .bind(user.as_bytes())
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

    /// Counts the live rows of `user` but `except` under lock and deletes every row of
    /// `user` but `except`, in one transaction; the rows expired at `now` are deleted too,
    /// and not counted.
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
                let except = except.map(|handle| handle.store_key().as_bytes().as_slice());
                let now = to_millis(now, "now")?;
                let revoked = match self.revoke_once(user, except, now).await {
                    // Rolled back by the server (a concurrent rotation); once more.
                    Err(error) if is_deadlock(&error) => {
                        self.revoke_once(user, except, now).await?
                    }
                    revoked => revoked?,
                };
                u64::try_from(revoked).map_err(|_| {
                    unexpected_reply("revoke_user", &format!("negative count {revoked}"))
                })
            },
        ))
    }
}

impl MySqlStore {
    /// One revocation transaction: the live rows of `user` but `except` at `now`
    /// (milliseconds), counted under lock, then every row of `user` but `except` deleted.
    async fn revoke_once(
        &self,
        user: &str,
        except: Option<&[u8]>,
        now: i64,
    ) -> Result<i64, StoreError> {
        let failure = |error| sqlx_failure("revoke_user", error);
        let mut tx = self.pool.begin().await.map_err(failure)?;
        let mut args = MySqlArguments::default();
        push(&mut args, user.as_bytes())?;
        push(&mut args, except)?;
        push(&mut args, now)?;
        let revoked: i64 = sqlx::query_scalar_with(sql(&self.shared.sql.count_live_of_user), args)
            .fetch_one(&mut *tx)
            .await
            .map_err(|error| reply_failure("revoke_user", error))?;
        sqlx::query(sql(&self.shared.sql.revoke_user))
            .bind(user.as_bytes())
            .bind(except)
            .execute(&mut *tx)
            .await
            .map_err(failure)?;
        tx.commit().await.map_err(failure)?;
        Ok(revoked)
    }
}
