//! The index walks of [`RedisStore`]: `sessions_of` and `revoke_user` page through a user's
//! index, one bounded script call a page (see [Index upkeep](RedisStore#index-upkeep)).

use std::collections::HashSet;
use std::time::SystemTime;

use super::error::unexpected_reply;
use super::record::{LISTED_VALUES, decode_info};
use super::scripts::SCRIPTS;
use super::{RedisStore, failed};
use crate::id::SessionHandle;
use crate::store::time::to_unix_millis;
use crate::store::{SessionInfo, StoreError, StoreFuture, UserIndex};

/// The most index members one `sessions_of` or `revoke_user` script call examines; both
/// walk a larger index in several calls, so that none of them holds Redis for long.
pub(super) const INDEX_PAGE: usize = 100;
/// The most script calls one `sessions_of` or `revoke_user` makes: 100,000 pages of
/// [`INDEX_PAGE`] members, ten million index entries, far more than one user's sessions.
/// Reaching it means sessions are added as fast as the walk removes them; the operation
/// then fails rather than loop for ever.
const MAX_INDEX_PAGES: usize = 100_000;
// `revoke_user` keeps one member in place and restarts every page from the lowest rank:
// with a page of one it would never move past it.
const _: () = assert!(INDEX_PAGE >= 2);

/// The error for a walk of a user's index that never reached its end.
fn index_too_large(operation: &'static str) -> StoreError {
    unexpected_reply(
        operation,
        &format!(
            "still a full page of the user's index after {MAX_INDEX_PAGES} pages of \
             {INDEX_PAGE} members (are sessions of that user created as fast as they are \
             removed?)"
        ),
    )
}

impl UserIndex for RedisStore {
    /// Pages through the user's index by rank, at most 100 members per script call, each
    /// bounded by the operation timeout; not a snapshot (see
    /// [Index upkeep](RedisStore#index-upkeep)).
    fn sessions_of<'a>(
        &'a self,
        user: &'a str,
        now: SystemTime,
    ) -> StoreFuture<'a, Result<Vec<SessionInfo>, StoreError>> {
        StoreFuture::boxed(async move {
            let index = self.layout.index_key(user);
            let now = to_unix_millis(now, "now")?;
            let mut conn = self.conn();
            let mut seen = HashSet::new();
            let mut sessions = Vec::new();
            let mut first = 0_usize;
            for _ in 0..MAX_INDEX_PAGES {
                let (examined, kept, listed): (usize, usize, Vec<String>) = self
                    .bounded("sessions_of", async {
                        SCRIPTS
                            .list
                            .key(&index)
                            .arg(&self.layout.session_prefix)
                            .arg(now)
                            .arg(self.layout.grace_millis)
                            .arg(first)
                            .arg(INDEX_PAGE)
                            .invoke_async(&mut conn)
                            .await
                            .map_err(failed("sessions_of"))
                    })
                    .await?;
                for entry in listed.chunks(LISTED_VALUES) {
                    let info = decode_info(entry)?;
                    if seen.insert(info.handle) {
                        sessions.push(info);
                    }
                }
                if examined < INDEX_PAGE {
                    sessions.sort_by_key(|info| info.created_at);
                    return Ok(sessions);
                }
                first += kept;
            }
            Err(index_too_large("sessions_of"))
        })
    }

    /// Deletes in pages of at most 100 index members, each one script call bounded by the
    /// operation timeout, until a call finds less than a full page: at that moment no
    /// session of the user but the kept one is left, whatever was rotated or created in the
    /// meantime (see [Index upkeep](RedisStore#index-upkeep)). Sessions expired at `now` are
    /// deleted too but not counted.
    fn revoke_user<'a>(
        &'a self,
        user: &'a str,
        except: Option<&'a SessionHandle>,
        now: SystemTime,
    ) -> StoreFuture<'a, Result<u64, StoreError>> {
        StoreFuture::boxed(async move {
            let now = to_unix_millis(now, "now")?;
            let index = self.layout.index_key(user);
            let keep = except
                .map(|handle| handle.store_key().to_hex())
                .unwrap_or_default();
            let mut conn = self.conn();
            let mut revoked = 0_u64;
            for _ in 0..MAX_INDEX_PAGES {
                let (count, full): (u64, u64) = self
                    .bounded("revoke_user", async {
                        SCRIPTS
                            .revoke_user
                            .key(&index)
                            .arg(&self.layout.session_prefix)
                            .arg(&keep)
                            .arg(now)
                            .arg(self.layout.grace_millis)
                            .arg(INDEX_PAGE)
                            .invoke_async(&mut conn)
                            .await
                            .map_err(failed("revoke_user"))
                    })
                    .await?;
                revoked += count;
                if full == 0 {
                    return Ok(revoked);
                }
            }
            Err(index_too_large("revoke_user"))
        })
    }
}
