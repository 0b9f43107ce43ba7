//! [`RedisStore`]: sessions in Redis or Valkey, through an auto-reconnecting
//! [`ConnectionManager`].
//!
//! The key layout, the scripts' guarantees and the role of `delete_expired` are documented on
//! [`RedisStore`] itself, where users of the crate can read them.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use redis::aio::ConnectionManager;

use crate::error::SessionError;
#[cfg(doc)]
use crate::expiry::Expiry;
use crate::id::{SessionHandle, StoreKey};
use crate::store::{
    CreateOutcome, DEFAULT_OPERATION_TIMEOUT, LoadOutcome, Record, RotateOutcome, SaveOutcome,
    SessionInfo, SessionStore, TouchOutcome,
};

mod builder;
mod connection;
mod error;
mod keys;
mod record;
mod scripts;

use self::builder::Connection;
pub use self::builder::RedisStoreBuilder;
use self::connection::bounded;
use self::error::RedisStoreError;
use self::keys::KeyLayout;
use self::record::{decode_info, decode_record, encode_record, from_millis, to_millis};
use self::scripts::{MARKER_VERSION, SCRIPTS};

const DEFAULT_KEY_PREFIX: &str = "sessionware:";
const DEFAULT_EXPIRY_GRACE: Duration = Duration::from_secs(60);
/// The `COUNT` hint of each `SCAN` step of `delete_expired`, and so the largest batch one
/// purge script handles.
const SCAN_BATCH: usize = 500;
/// The most index members one `sessions_of` or `revoke_user` script call examines; both
/// walk a larger index in several calls, so that none of them holds Redis for long.
const INDEX_PAGE: usize = 100;
/// The most script calls one `sessions_of` or `revoke_user` makes: 100,000 pages of
/// [`INDEX_PAGE`] members, ten million index entries, far more than one user's sessions.
/// Reaching it means sessions are added as fast as the walk removes them; the operation
/// then fails rather than loop for ever.
const MAX_INDEX_PAGES: usize = 100_000;
// `revoke_user` keeps one member in place and restarts every page from the lowest rank:
// with a page of one it would never move past it.
const _: () = assert!(INDEX_PAGE >= 2);

/// A [`SessionStore`] in Redis (6.2 or later) or Valkey.
///
/// Cloning is cheap: clones share one auto-reconnecting connection. Every operation,
/// connecting included, is bounded by the
/// [operation timeout](RedisStoreBuilder::operation_timeout) (2 seconds by default). When the
/// server goes away or stops answering, operations fail within it, with
/// [`SessionError::StoreTimeout`], or sooner with [`SessionError::Store`] (the
/// [`redis::RedisError`] kept as the source) when the failure shows at once, such as a refused
/// connection; meanwhile the manager reconnects in the background, and once the server is back
/// the same store works again without being reopened.
///
/// ```no_run
/// # async fn run() -> Result<(), sessionware::SessionError> {
/// use sessionware::RedisStore;
///
/// let store = RedisStore::builder("redis://127.0.0.1:6379")
///     .key_prefix("myapp:sessions:")
///     .build()
///     .await?;
/// # let _ = store;
/// # Ok(())
/// # }
/// ```
///
/// # Layout
///
/// With the default key prefix `sessionware:` (see [`RedisStoreBuilder::key_prefix`]), the
/// store keeps two kinds of keys:
///
/// - **One hash per session**, named `{prefix}s:{store key as 64 lowercase hex digits}`.
///   Its fields are `version`, `created`, `active` and `expires` (decimal integers; the times
///   are milliseconds since the Unix epoch), `data` (the session's bytes, stored as they are),
///   and, when present, `user`, `expiry` (the per-session [`Expiry`] as JSON) and `ix` (the
///   name of the user's index key, used by the scripts to keep the index in step). The key
///   carries a native TTL, `PEXPIREAT expires + grace`: Redis drops it on its own shortly after
///   its deadline, and for the grace period in between [`load`](SessionStore::load) reports
///   [`LoadOutcome::Expired`] rather than [`LoadOutcome::Missing`] (see
///   [`RedisStoreBuilder::expiry_grace`]). Liveness is always decided by the record's
///   `expires` compared with the `now` the caller passes, never by the TTL.
/// - **One sorted set per user**, named `{prefix}u:{user name in URL-safe base64}`. Its members
///   are the store keys (hex) of the user's sessions, each scored with that session's deadline
///   in milliseconds. The set's own TTL is kept at its latest member's deadline plus the grace,
///   so it never disappears before one of its sessions and an abandoned set disappears by
///   itself. User names are arbitrary strings; encoding them keeps every key name printable and
///   free of glob characters, and no user name can reach into another key's namespace.
///
/// # Index upkeep
///
/// Members of deleted sessions leave the index inside the scripts that delete them
/// (`delete`, `rotate`, `revoke`, `revoke_user`, `delete_expired`, and a `save` that changes
/// the session's user). Members whose session key expired natively stay behind until one of
/// these removes them:
///
/// - **Every write that adds to an index prunes it.** `create`, `save`, `touch` and `rotate`
///   of a session with a user remove, in the same script, at most 32 members of that index
///   scored at or before `now` minus the [expiry grace](RedisStoreBuilder::expiry_grace),
///   lowest scores first: sessions that expired longer than the grace ago, whose keys Redis
///   has already dropped. `now` is the time the caller passes; `create`, which is given none,
///   uses the record's `last_active`. Each write adds at most one member and removes up to 32
///   stale ones, so stale members cannot pile up in an index that is still written to, and a
///   backlog drains 32 members per write.
/// - **`sessions_of` and `revoke_user` drop members whose session is gone**: they check that
///   each member's key still exists and still names this index as its owner.
///
/// No index operation does unbounded work in one go. A write that adds to an index examines
/// at most 32 stale members besides its own. `sessions_of` and `revoke_user` walk the index
/// in pages, each one script call that examines at most 100 members, so a large index costs
/// them more calls but never holds Redis for longer than a page takes:
///
/// - `sessions_of` pages through the index by rank, lowest deadline first, and returns the
///   live sessions sorted by creation time, each once. It is not a snapshot: a session
///   written while it runs may be listed as it was before or after that write, and one whose
///   rank changes meanwhile may be missed.
/// - `revoke_user` starts every page again from the lowest rank and stops after a page that
///   is not full, which it sees only once no session of the user but the kept one is left.
///   A session created or rotated while it runs is therefore revoked too, wherever its new
///   deadline ranks it.
///
/// Each stops with [`SessionError::Store`] after 100,000 pages (ten million members), which
/// only sessions added as fast as the walk removes them can reach.
///
/// Pruning trusts the writer's clock: an application instance whose clock runs ahead of
/// another's by more than the grace can prune the member of a session the other still sees
/// as live, which `sessions_of` and `revoke_user` then miss until that session is next
/// written (any write adds its member back). Keep the grace above the clock skew between
/// instances.
///
/// # Atomicity
///
/// `load` is a single `HGETALL`. `create`, `save`, `touch`, `delete`, `rotate` and `revoke` are
/// each one Lua script (sent with `EVALSHA`, loaded again automatically after a server restart
/// or a `SCRIPT FLUSH`), so each happens entirely or not at all and no client ever sees half of
/// it. `sessions_of` and `revoke_user` are one script per page of the index, and
/// `delete_expired` one per `SCAN` batch; each of those scripts is atomic in the same way, and
/// their order makes the whole correct (see [Index upkeep](#index-upkeep)). `create` is
/// insert-only, `save`
/// and `rotate` compare the stored version and check liveness at the caller's `now` before
/// writing, and `touch` never recreates a record.
///
/// The scripts use only commands and options available since Redis 6.2 (no functions, no
/// `EXPIRETIME`, no `EXPIRE ... GT`), so the store runs on Redis 6.2 and later and on Valkey.
/// Some scripts reach keys they find by reading (a session's index, an index's sessions)
/// rather than keys declared up front; on Redis Cluster, put every key of the store in one
/// slot with a hash tag in the prefix (for example `{sessions}:`).
///
/// # Expired records
///
/// In production, the native TTLs do the work: Redis removes each session shortly after its
/// deadline, its index entry is pruned by the next write to that index (or the next
/// `sessions_of` or `revoke_user` of its user), and the index itself expires after its last
/// session. [`delete_expired`](SessionStore::delete_expired) is a backstop for callers whose
/// clock runs ahead of the server's, and for tests: it walks `{prefix}s:*` with `SCAN` in
/// batches and deletes, in one script per batch that re-checks each record, every record whose
/// deadline is at or before the `now` it was given. It costs a full `SCAN` of the keyspace and
/// need not be scheduled.
///
/// [`revoke_user`](SessionStore::revoke_user) deletes every session of the user, expired or
/// not, but counts only those live by this process's clock, as the trait passes it no time.
///
/// # Precision
///
/// Times are stored as whole milliseconds since the Unix epoch: a time with a finer part comes
/// back truncated to the millisecond, and a time before 1970 cannot be stored.
///
/// # Security
///
/// Keys are store keys (SHA-256 of the session ID), never session IDs: a dump of the database
/// yields no usable cookie. The `Debug` output shows neither the URL nor its credentials.
#[derive(Clone)]
pub struct RedisStore {
    manager: ConnectionManager,
    layout: Arc<KeyLayout>,
    operation_timeout: Duration,
}

impl RedisStore {
    /// Connects to the server at `url` (`redis://`, `rediss://` with TLS enabled in the
    /// `redis` crate, or `unix://`) with the default settings.
    ///
    /// # Errors
    ///
    /// [`SessionError::Store`] if the URL does not parse or the server refuses the
    /// connection, [`SessionError::StoreTimeout`] if connecting takes longer than the default
    /// operation timeout of 2 seconds (the server is down, paused or unreachable).
    pub async fn open(url: &str) -> Result<Self, SessionError> {
        Self::builder(url).build().await
    }

    /// Starts configuring a store that will connect to the server at `url`.
    pub fn builder(url: &str) -> RedisStoreBuilder {
        RedisStoreBuilder::new(Connection::Url(url.to_owned()))
    }

    /// Starts configuring a store that uses a connection manager the application already has.
    pub fn builder_with_manager(manager: ConnectionManager) -> RedisStoreBuilder {
        RedisStoreBuilder::new(Connection::Manager(manager))
    }

    /// A store with the default settings (the default operation timeout of 2 seconds
    /// included) on a connection manager the application already has. No I/O happens until
    /// the first operation.
    pub fn from_manager(manager: ConnectionManager) -> Self {
        Self {
            manager,
            layout: Arc::new(KeyLayout::new(
                DEFAULT_KEY_PREFIX.to_owned(),
                DEFAULT_EXPIRY_GRACE,
            )),
            operation_timeout: DEFAULT_OPERATION_TIMEOUT,
        }
    }

    /// The prefix of every key this store writes.
    pub fn key_prefix(&self) -> &str {
        &self.layout.prefix
    }

    /// A connection for one operation: a clone of the manager, which shares the connection.
    fn conn(&self) -> ConnectionManager {
        self.manager.clone()
    }

    /// Runs one store operation, or one step of a longer one, under the operation timeout.
    async fn bounded<T>(
        &self,
        operation: &'static str,
        step: impl Future<Output = Result<T, SessionError>>,
    ) -> Result<T, SessionError> {
        bounded(self.operation_timeout, operation, step).await
    }

    /// Deletes the session under `key` and its index entry: `delete` and `revoke`.
    async fn delete_key(&self, key: &StoreKey) -> Result<bool, SessionError> {
        let deleted: i64 = SCRIPTS
            .delete
            .key(self.layout.session_key(key))
            .arg(key.to_hex())
            .arg(self.layout.grace_millis)
            .invoke_async(&mut self.conn())
            .await
            .map_err(SessionError::store)?;
        Ok(deleted > 0)
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The manager's own `Debug` shows the connection info; leave it out so that nothing
        // derived from the URL can end up in a log.
        f.debug_struct("RedisStore")
            .field("key_prefix", &self.layout.prefix)
            .field("expiry_grace_ms", &self.layout.grace_millis)
            .field("operation_timeout", &self.operation_timeout)
            .finish_non_exhaustive()
    }
}

impl SessionStore for RedisStore {
    async fn load(&self, key: &StoreKey, now: SystemTime) -> Result<LoadOutcome, SessionError> {
        self.bounded("load", async {
            let fields: HashMap<String, Vec<u8>> = redis::cmd("HGETALL")
                .arg(self.layout.session_key(key))
                .query_async(&mut self.conn())
                .await
                .map_err(SessionError::store)?;
            if fields.is_empty() {
                return Ok(LoadOutcome::Missing);
            }
            if fields.get("version").map(Vec::as_slice) == Some(MARKER_VERSION.as_bytes()) {
                // A rotation marker: only its deadline is kept.
                let expires = fields
                    .get("expires")
                    .and_then(|text| std::str::from_utf8(text).ok()?.parse().ok())
                    .and_then(from_millis)
                    .ok_or_else(|| SessionError::store(RedisStoreError::UnexpectedReply("load")))?;
                return Ok(if expires <= now {
                    LoadOutcome::Expired
                } else {
                    LoadOutcome::Moved
                });
            }
            let record = decode_record(fields)?;
            Ok(if record.is_expired(now) {
                LoadOutcome::Expired
            } else {
                LoadOutcome::Found(record)
            })
        })
        .await
    }

    async fn create(&self, key: &StoreKey, record: &Record) -> Result<CreateOutcome, SessionError> {
        self.bounded("create", async {
            let encoded = encode_record(&self.layout, record)?;
            let mut invocation = SCRIPTS.create.key(self.layout.session_key(key));
            if let Some(index) = &encoded.index {
                invocation.key(index);
            }
            // `create` is given no time: the record's last activity, which the caller set to
            // its "now" when it made the record, decides which index entries are stale.
            invocation
                .arg(key.to_hex())
                .arg(encoded.expires)
                .arg(self.layout.grace_millis)
                .arg(to_millis(record.last_active)?);
            for (name, value) in &encoded.fields {
                invocation.arg(*name).arg(value.as_slice());
            }
            let created: i64 = invocation
                .invoke_async(&mut self.conn())
                .await
                .map_err(SessionError::store)?;
            match created {
                1 => Ok(CreateOutcome::Created),
                0 => Ok(CreateOutcome::Collision),
                _ => Err(SessionError::store(RedisStoreError::UnexpectedReply(
                    "create",
                ))),
            }
        })
        .await
    }

    async fn save(
        &self,
        key: &StoreKey,
        record: &Record,
        expected_version: u64,
        now: SystemTime,
    ) -> Result<SaveOutcome, SessionError> {
        self.bounded("save", async {
            let encoded = encode_record(&self.layout, record)?;
            let mut invocation = SCRIPTS.save.key(self.layout.session_key(key));
            if let Some(index) = &encoded.index {
                invocation.key(index);
            }
            invocation
                .arg(key.to_hex())
                .arg(encoded.expires)
                .arg(self.layout.grace_millis)
                .arg(expected_version.to_string())
                .arg(to_millis(now)?);
            for (name, value) in &encoded.fields {
                invocation.arg(*name).arg(value.as_slice());
            }
            let saved: i64 = invocation
                .invoke_async(&mut self.conn())
                .await
                .map_err(SessionError::store)?;
            match saved {
                1 => Ok(SaveOutcome::Saved),
                0 => Ok(SaveOutcome::Missing),
                2 => Ok(SaveOutcome::Conflict),
                3 => Ok(SaveOutcome::Moved),
                _ => Err(SessionError::store(RedisStoreError::UnexpectedReply(
                    "save",
                ))),
            }
        })
        .await
    }

    async fn touch(
        &self,
        key: &StoreKey,
        expected_version: u64,
        last_active: SystemTime,
        expires_at: SystemTime,
        now: SystemTime,
    ) -> Result<TouchOutcome, SessionError> {
        self.bounded("touch", async {
            let touched: i64 = SCRIPTS
                .touch
                .key(self.layout.session_key(key))
                .arg(key.to_hex())
                .arg(to_millis(last_active)?)
                .arg(to_millis(expires_at)?)
                .arg(to_millis(now)?)
                .arg(self.layout.grace_millis)
                .arg(expected_version.to_string())
                .invoke_async(&mut self.conn())
                .await
                .map_err(SessionError::store)?;
            match touched {
                1 => Ok(TouchOutcome::Touched),
                0 => Ok(TouchOutcome::Missing),
                2 => Ok(TouchOutcome::Conflict),
                _ => Err(SessionError::store(RedisStoreError::UnexpectedReply(
                    "touch",
                ))),
            }
        })
        .await
    }

    async fn delete(&self, key: &StoreKey) -> Result<bool, SessionError> {
        self.bounded("delete", self.delete_key(key)).await
    }

    async fn rotate(
        &self,
        old: &StoreKey,
        new: &StoreKey,
        record: &Record,
        expected_version: u64,
        now: SystemTime,
    ) -> Result<RotateOutcome, SessionError> {
        self.bounded("rotate", async {
            let encoded = encode_record(&self.layout, record)?;
            let mut invocation = SCRIPTS.rotate.key(self.layout.session_key(old));
            invocation.key(self.layout.session_key(new));
            if let Some(index) = &encoded.index {
                invocation.key(index);
            }
            invocation
                .arg(old.to_hex())
                .arg(new.to_hex())
                .arg(encoded.expires)
                .arg(self.layout.grace_millis)
                .arg(expected_version.to_string())
                .arg(to_millis(now)?);
            for (name, value) in &encoded.fields {
                invocation.arg(*name).arg(value.as_slice());
            }
            let rotated: i64 = invocation
                .invoke_async(&mut self.conn())
                .await
                .map_err(SessionError::store)?;
            match rotated {
                1 => Ok(RotateOutcome::Rotated),
                0 => Ok(RotateOutcome::Missing),
                2 => Ok(RotateOutcome::Conflict),
                3 => Ok(RotateOutcome::Collision),
                4 => Ok(RotateOutcome::Moved),
                _ => Err(SessionError::store(RedisStoreError::UnexpectedReply(
                    "rotate",
                ))),
            }
        })
        .await
    }

    /// Scans in batches; the operation timeout bounds each `SCAN` step and each purge script,
    /// not the whole walk of the keyspace.
    async fn delete_expired(&self, now: SystemTime) -> Result<u64, SessionError> {
        let now = to_millis(now)?;
        let pattern = self.layout.session_pattern();
        let mut conn = self.conn();
        let mut cursor: u64 = 0;
        let mut purged: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<Vec<u8>>) = self
                .bounded("delete_expired", async {
                    redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(&pattern)
                        .arg("COUNT")
                        .arg(SCAN_BATCH)
                        .query_async(&mut conn)
                        .await
                        .map_err(SessionError::store)
                })
                .await?;
            if !keys.is_empty() {
                let mut invocation = SCRIPTS.purge.prepare_invoke();
                for key in &keys {
                    invocation.key(key.as_slice());
                }
                invocation.arg(now).arg(self.layout.grace_millis);
                let count: u64 = self
                    .bounded("delete_expired", async {
                        invocation
                            .invoke_async(&mut conn)
                            .await
                            .map_err(SessionError::store)
                    })
                    .await?;
                purged += count;
            }
            if next == 0 {
                return Ok(purged);
            }
            cursor = next;
        }
    }

    /// Pages through the user's index by rank, at most 100 members per script call, each
    /// bounded by the operation timeout; not a snapshot (see
    /// [Index upkeep](RedisStore#index-upkeep)).
    async fn sessions_of(
        &self,
        user: &str,
        now: SystemTime,
    ) -> Result<Vec<SessionInfo>, SessionError> {
        let index = self.layout.index_key(user);
        let now = to_millis(now)?;
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
                        .map_err(SessionError::store)
                })
                .await?;
            for entry in listed.chunks(4) {
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
        Err(SessionError::store(RedisStoreError::IndexTooLarge(
            "sessions_of",
        )))
    }

    /// Deletes in pages of at most 100 index members, each one script call bounded by the
    /// operation timeout, until a call finds less than a full page: at that moment no
    /// session of the user but the kept one is left, whatever was rotated or created in the
    /// meantime (see [Index upkeep](RedisStore#index-upkeep)).
    async fn revoke_user(
        &self,
        user: &str,
        except: Option<&SessionHandle>,
    ) -> Result<u64, SessionError> {
        // The trait passes no time here, so "how many were live" is judged by this process's
        // clock; records already expired by it are deleted all the same but not counted.
        let now = to_millis(SystemTime::now())?;
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
                        .map_err(SessionError::store)
                })
                .await?;
            revoked += count;
            if full == 0 {
                return Ok(revoked);
            }
        }
        Err(SessionError::store(RedisStoreError::IndexTooLarge(
            "revoke_user",
        )))
    }

    async fn revoke(&self, handle: &SessionHandle) -> Result<bool, SessionError> {
        self.bounded("revoke", self.delete_key(handle.store_key()))
            .await
    }
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use redis::Client;

    use super::*;

    /// A raw connection to the server in `REDIS_URL`, or `None` when it is unset.
    async fn shared_server() -> Option<redis::aio::MultiplexedConnection> {
        let Ok(url) = std::env::var("REDIS_URL") else {
            eprintln!("skipping: REDIS_URL is not set");
            return None;
        };
        let client = Client::open(url).expect("REDIS_URL parses");
        Some(
            client
                .get_multiplexed_async_connection()
                .await
                .expect("REDIS_URL is set but the server is unreachable"),
        )
    }

    async fn zcard(conn: &mut redis::aio::MultiplexedConnection, key: &str) -> usize {
        redis::cmd("ZCARD")
            .arg(key)
            .query_async(conn)
            .await
            .expect("ZCARD")
    }

    #[tokio::test]
    async fn each_index_walking_script_call_examines_at_most_one_page() {
        let Some(mut conn) = shared_server().await else {
            return;
        };
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let layout = KeyLayout::new(format!("sessionware-unit:{nanos:x}:"), DEFAULT_EXPIRY_GRACE);
        let index = layout.index_key("u");
        // 1,000 members without a session, scored an hour ahead so that nothing prunes them
        // as stale: only the walk can drop them.
        let now = to_millis(SystemTime::now()).expect("now");
        let mut zadd = redis::cmd("ZADD");
        zadd.arg(&index);
        for n in 0..1_000_u64 {
            zadd.arg(now + 3_600_000 + n).arg(format!("{n:064x}"));
        }
        let () = zadd.query_async(&mut conn).await.expect("ZADD");

        let (examined, kept, listed): (usize, usize, Vec<String>) = SCRIPTS
            .list
            .key(&index)
            .arg(&layout.session_prefix)
            .arg(now)
            .arg(layout.grace_millis)
            .arg(0)
            .arg(INDEX_PAGE)
            .invoke_async(&mut conn)
            .await
            .expect("list");
        assert_eq!((examined, kept, listed.len()), (INDEX_PAGE, 0, 0));
        assert_eq!(zcard(&mut conn, &index).await, 1_000 - INDEX_PAGE);

        let (revoked, full): (u64, u64) = SCRIPTS
            .revoke_user
            .key(&index)
            .arg(&layout.session_prefix)
            .arg("")
            .arg(now)
            .arg(layout.grace_millis)
            .arg(INDEX_PAGE)
            .invoke_async(&mut conn)
            .await
            .expect("revoke_user");
        assert_eq!((revoked, full), (0, 1));
        assert_eq!(zcard(&mut conn, &index).await, 1_000 - 2 * INDEX_PAGE);

        let _: i64 = redis::cmd("DEL")
            .arg(&index)
            .query_async(&mut conn)
            .await
            .expect("DEL");
    }
}
