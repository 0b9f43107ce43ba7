//! [`RedisStore`]: sessions in Redis or Valkey, through an auto-reconnecting
//! [`ConnectionManager`].
//!
//! The key layout, the scripts' guarantees and the role of `delete_expired` are documented on
//! [`RedisStore`] itself, where users of the crate can read them.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use redis::aio::ConnectionManager;

#[cfg(doc)]
use crate::config::ConfigError;
#[cfg(doc)]
use crate::expiry::Expiry;
use crate::id::StoreKey;
use crate::store::time::to_unix_millis;
use crate::store::{
    CreateOutcome, DEFAULT_OPERATION_TIMEOUT, LoadOutcome, Record, RotateOutcome, SaveOutcome,
    SessionStore, StoreError, StoreFuture, TouchOutcome, UserIndex,
};

mod builder;
mod connection;
mod error;
mod index;
mod keys;
mod record;
mod scripts;

use self::builder::Connection;
pub use self::builder::RedisStoreBuilder;
use self::connection::bounded;
use self::error::{redis_failure, unexpected_reply};
use self::keys::KeyLayout;
use self::record::{Fields, decode_marker_deadline, decode_record, encode_record, is_known_format};
use self::scripts::{MARKER_VERSION, SCRIPTS};

const DEFAULT_KEY_PREFIX: &str = "sessionware:";
const DEFAULT_EXPIRY_GRACE: Duration = Duration::from_secs(60);
/// The `COUNT` hint of each `SCAN` step of `delete_expired`, and so the largest batch one
/// purge script handles.
const SCAN_BATCH: usize = 500;

/// A [`SessionStore`] in Redis (6.2 or later) or Valkey.
///
/// Cloning is cheap: clones share one auto-reconnecting connection. Every operation,
/// connecting included, is bounded by the
/// [operation timeout](RedisStoreBuilder::operation_timeout) (2 seconds by default). When the
/// server goes away or stops answering, operations fail within it, with
/// [`StoreError::Timeout`], or sooner with [`StoreError::Unavailable`] (the
/// [`redis::RedisError`] kept as the source) when the failure shows at once, such as a refused
/// connection; meanwhile the manager reconnects in the background, and once the server is back
/// the same store works again without being reopened.
///
/// Make one with [`RedisStore::connect`] (a URL, default settings), [`RedisStore::new`] (a
/// [`ConnectionManager`] the application already has) or [`RedisStore::builder`] (to change
/// the settings):
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use sessionware::RedisStore;
///
/// let store = RedisStore::connect("redis://127.0.0.1:6379").await?;
///
/// let custom = RedisStore::builder("redis://127.0.0.1:6379")
///     .key_prefix("myapp:sessions:")
///     .build()? // settings are checked first: a `ConfigError`
///     .await?; // then it connects: a `StoreError`
/// # let _ = (store, custom);
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// Every operation fails with a [`StoreError`]:
///
/// - [`Unavailable`](StoreError::Unavailable): the connection was refused, reset, closed or
///   dropped, another I/O error occurred, a `redis` response or connection timeout shorter
///   than the operation timeout fired, or the server answered `LOADING`, `MASTERDOWN`,
///   `CLUSTERDOWN` or `TRYAGAIN` (it is restarting or failing over). The
///   [`redis::RedisError`] is the source. Retry later.
/// - [`Timeout`](StoreError::Timeout): the operation (or one step of a multi-step one) did not
///   finish within the [operation timeout](RedisStoreBuilder::operation_timeout).
/// - [`Corrupt`](StoreError::Corrupt): a session hash under this store's prefix does not
///   decode; `field` names the [`Record`] field (`created_at`, `last_active`, `expires_at`,
///   `version`, `user`, `expiry`, `data`; `handle` for a listed index member that is not a
///   store key).
/// - [`UnexpectedReply`](StoreError::UnexpectedReply): a command or script answered with a
///   reply of a shape or value this store never produces (another release's scripts, a proxy
///   that rewrites replies), or a walk of a user's index never reached its end (see
///   [Index upkeep](#index-upkeep)).
/// - [`TimeOutOfRange`](StoreError::TimeOutOfRange): a time to store (or the `now` passed in)
///   is before 1970 or more than 2^53 ms after it.
/// - [`Backend`](StoreError::Backend): any other error of the server or the client (a
///   script error, `NOPERM`, `READONLY`, out of memory, ...), with the [`redis::RedisError`]
///   as the source.
///
/// # Layout
///
/// With the default key prefix `sessionware:` (see [`RedisStoreBuilder::key_prefix`]), the
/// store keeps two kinds of keys:
///
/// - **One hash per session**, named `{prefix}s:{store key as 64 lowercase hex digits}`.
///   Its fields are `version`, `created`, `active` and `expires` (decimal integers; the times
///   are milliseconds since the Unix epoch), `data` (the session's bytes, stored as they are),
///   `format` (the layout's version, see [Upgrades](#upgrades)), and, when present, `user`,
///   `expiry` (the per-session [`Expiry`] as JSON), `label` ([`Record::label`], as it is)
///   and `ix` (the name of the user's index key, used by the scripts to keep the index in
///   step). The key carries a native TTL, `PEXPIREAT expires + grace`: Redis drops it on
///   its own shortly after its deadline, and for the grace period in between
///   [`load`](SessionStore::load) reports [`LoadOutcome::Expired`] rather than
///   [`LoadOutcome::Missing`] (see [`RedisStoreBuilder::expiry_grace`]). Liveness is always decided by the record's
///   `expires` compared with the `now` the caller passes, never by the TTL.
/// - **One sorted set per user**, named `{prefix}u:{user name in URL-safe base64}`. Its members
///   are the store keys (hex) of the user's sessions, each scored with that session's deadline
///   in milliseconds. The set's own TTL is kept at its latest member's deadline plus the grace,
///   so it never disappears before one of its sessions and an abandoned set disappears by
///   itself. User names are arbitrary strings; encoding them keeps every key name printable and
///   free of glob characters, and no user name can reach into another key's namespace.
///
/// # Upgrades
///
/// Each hash records the layout it was written in, as `format`: 1 in this release. A hash
/// without it was written by a release before formats were recorded; it holds the same
/// fields but `label`, and is read as it is, so a rolling upgrade keeps every live session
/// (its later saves write format 1). A hash of a format this release does not know, written
/// by a later one (during a rollback, say), is treated as missing by
/// [`load`](SessionStore::load): that user logs in again, and the hash is left to expire.
/// Nothing needs migrating.
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
///   has already dropped. `now` is the time the caller passes. Each write adds at most one
///   member and removes up to 32
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
/// Each stops with [`StoreError::UnexpectedReply`] after 100,000 pages (ten million members),
/// which only sessions added as fast as the walk removes them can reach.
///
/// Pruning trusts the writer's clock: an application instance whose clock runs ahead of
/// another's by more than the grace can prune the member of a session the other still sees
/// as live, which `sessions_of` and `revoke_user` then miss until that session is next
/// written (any write adds its member back). Keep the grace above the clock skew between
/// instances.
///
/// # Atomicity
///
/// `load` is a single `HGETALL`. `create`, `save`, `touch`, `delete`, `rotate` and `revoke` (a
/// `delete` of the handle's key) are each one Lua script (sent with `EVALSHA`, loaded again automatically after a server restart
/// or a `SCRIPT FLUSH`), so each happens entirely or not at all and no client ever sees half of
/// it. `sessions_of` and `revoke_user` are one script per page of the index, and
/// `delete_expired` one per `SCAN` batch; each of those scripts is atomic in the same way, and
/// their order makes the whole correct (see [Index upkeep](#index-upkeep)). `create` is
/// insert-only, `save` and `rotate` compare the stored version and check liveness at the caller's `now` before
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
/// [`revoke_user`](UserIndex::revoke_user) deletes every session of the user, expired or
/// not, but counts only those live at the `now` it was given.
///
/// # Precision
///
/// Times are stored as whole milliseconds since the Unix epoch: a time with a finer part comes
/// back truncated to the millisecond, and a time before 1970 cannot be stored
/// ([`StoreError::TimeOutOfRange`]).
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
    /// `redis` crate, or `unix://`) with the default settings. Use
    /// [`builder`](Self::builder) to change them.
    ///
    /// # Errors
    ///
    /// - [`StoreError::Unavailable`] if the server refuses or drops the connection;
    /// - [`StoreError::Timeout`] if connecting takes longer than the default operation
    ///   timeout of 2 seconds (the server is down, paused or unreachable);
    /// - [`StoreError::Backend`] if the server refuses the client otherwise (a wrong
    ///   password, say), or if the URL does not parse, with a
    ///   [`ConfigError::InvalidStoreSetting`] for the setting `url` as the source.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        match Self::builder(url).build() {
            Ok(connecting) => connecting.await,
            Err(config) => Err(StoreError::backend(config)),
        }
    }

    /// A store with the default settings (the default operation timeout of 2 seconds
    /// included) on a connection manager the application already has. No I/O happens until
    /// the first operation.
    pub fn new(manager: ConnectionManager) -> Self {
        Self {
            manager,
            layout: Arc::new(KeyLayout::new(
                DEFAULT_KEY_PREFIX.to_owned(),
                DEFAULT_EXPIRY_GRACE,
            )),
            operation_timeout: DEFAULT_OPERATION_TIMEOUT,
        }
    }

    /// Starts configuring a store that will connect to the server at `url`; the URL is
    /// checked by [`build`](RedisStoreBuilder::build).
    pub fn builder(url: &str) -> RedisStoreBuilder {
        RedisStoreBuilder::new(Connection::Url(url.to_owned()))
    }

    /// Starts configuring a store that uses a connection manager the application already has.
    pub fn builder_with_manager(manager: ConnectionManager) -> RedisStoreBuilder {
        RedisStoreBuilder::new(Connection::Manager(manager))
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
        step: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        bounded(self.operation_timeout, operation, step).await
    }
}

/// Maps a [`redis::RedisError`] of `operation` to its [`StoreError`], for `map_err`.
fn failed(operation: &'static str) -> impl Fn(redis::RedisError) -> StoreError {
    move |error| redis_failure(operation, error)
}

/// The error for a script of `operation` that returned `code`, which its code cannot return.
fn unexpected_code(operation: &'static str, code: i64) -> StoreError {
    unexpected_reply(operation, &format!("the script returned {code}"))
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
    fn load<'a>(
        &'a self,
        key: &'a StoreKey,
        now: SystemTime,
    ) -> StoreFuture<'a, Result<LoadOutcome, StoreError>> {
        StoreFuture::boxed(self.bounded("load", async move {
            let fields: Fields = redis::cmd("HGETALL")
                .arg(self.layout.session_key(key))
                .query_async(&mut self.conn())
                .await
                .map_err(failed("load"))?;
            if fields.is_empty() {
                return Ok(LoadOutcome::Missing);
            }
            if fields.get("version").map(Vec::as_slice) == Some(MARKER_VERSION.as_bytes()) {
                // A rotation marker: only its deadline is kept.
                let expires = decode_marker_deadline(&fields)?;
                return Ok(if expires <= now {
                    LoadOutcome::Expired
                } else {
                    LoadOutcome::Moved
                });
            }
            if !is_known_format(&fields)? {
                // Written by a later release: this one cannot read it, so the session is
                // missing here (the user logs in again) and the record is left alone.
                return Ok(LoadOutcome::Missing);
            }
            let record = decode_record(fields)?;
            Ok(if record.is_expired(now) {
                LoadOutcome::Expired
            } else {
                LoadOutcome::Found(record)
            })
        }))
    }

    fn create<'a>(
        &'a self,
        key: &'a StoreKey,
        record: &'a Record,
        now: SystemTime,
    ) -> StoreFuture<'a, Result<CreateOutcome, StoreError>> {
        StoreFuture::boxed(self.bounded("create", async move {
            let encoded = encode_record(&self.layout, record)?;
            let mut invocation = SCRIPTS.create.key(self.layout.session_key(key));
            if let Some(index) = &encoded.index {
                invocation.key(index);
            }
            invocation
                .arg(key.to_hex())
                .arg(encoded.expires)
                .arg(self.layout.grace_millis)
                .arg(to_unix_millis(now, "now")?);
            for (name, value) in &encoded.fields {
                invocation.arg(*name).arg(value.as_slice());
            }
            let created: i64 = invocation
                .invoke_async(&mut self.conn())
                .await
                .map_err(failed("create"))?;
            match created {
                1 => Ok(CreateOutcome::Created),
                0 => Ok(CreateOutcome::Collision),
                code => Err(unexpected_code("create", code)),
            }
        }))
    }

    fn save<'a>(
        &'a self,
        key: &'a StoreKey,
        record: &'a Record,
        expected_version: u64,
        now: SystemTime,
    ) -> StoreFuture<'a, Result<SaveOutcome, StoreError>> {
        StoreFuture::boxed(self.bounded("save", async move {
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
                .arg(to_unix_millis(now, "now")?);
            for (name, value) in &encoded.fields {
                invocation.arg(*name).arg(value.as_slice());
            }
            let saved: i64 = invocation
                .invoke_async(&mut self.conn())
                .await
                .map_err(failed("save"))?;
            match saved {
                1 => Ok(SaveOutcome::Saved),
                0 => Ok(SaveOutcome::Missing),
                2 => Ok(SaveOutcome::Conflict),
                3 => Ok(SaveOutcome::Moved),
                code => Err(unexpected_code("save", code)),
            }
        }))
    }

    fn touch<'a>(
        &'a self,
        key: &'a StoreKey,
        expected_version: u64,
        last_active: SystemTime,
        expires_at: SystemTime,
        now: SystemTime,
    ) -> StoreFuture<'a, Result<TouchOutcome, StoreError>> {
        StoreFuture::boxed(self.bounded("touch", async move {
            let touched: i64 = SCRIPTS
                .touch
                .key(self.layout.session_key(key))
                .arg(key.to_hex())
                .arg(to_unix_millis(last_active, "last_active")?)
                .arg(to_unix_millis(expires_at, "expires_at")?)
                .arg(to_unix_millis(now, "now")?)
                .arg(self.layout.grace_millis)
                .arg(expected_version.to_string())
                .invoke_async(&mut self.conn())
                .await
                .map_err(failed("touch"))?;
            match touched {
                1 => Ok(TouchOutcome::Touched),
                0 => Ok(TouchOutcome::Missing),
                2 => Ok(TouchOutcome::Conflict),
                code => Err(unexpected_code("touch", code)),
            }
        }))
    }

    /// Deletes the session hash and its index entry, in one script. Liveness plays no part,
    /// so `now` is not used.
    fn delete<'a>(
        &'a self,
        key: &'a StoreKey,
        _now: SystemTime,
    ) -> StoreFuture<'a, Result<bool, StoreError>> {
        StoreFuture::boxed(self.bounded("delete", async move {
            let deleted: i64 = SCRIPTS
                .delete
                .key(self.layout.session_key(key))
                .arg(key.to_hex())
                .arg(self.layout.grace_millis)
                .invoke_async(&mut self.conn())
                .await
                .map_err(failed("delete"))?;
            Ok(deleted > 0)
        }))
    }

    fn rotate<'a>(
        &'a self,
        old: &'a StoreKey,
        new: &'a StoreKey,
        record: &'a Record,
        expected_version: u64,
        now: SystemTime,
    ) -> StoreFuture<'a, Result<RotateOutcome, StoreError>> {
        StoreFuture::boxed(self.bounded("rotate", async move {
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
                .arg(to_unix_millis(now, "now")?);
            for (name, value) in &encoded.fields {
                invocation.arg(*name).arg(value.as_slice());
            }
            let rotated: i64 = invocation
                .invoke_async(&mut self.conn())
                .await
                .map_err(failed("rotate"))?;
            match rotated {
                1 => Ok(RotateOutcome::Rotated),
                0 => Ok(RotateOutcome::Missing),
                2 => Ok(RotateOutcome::Conflict),
                3 => Ok(RotateOutcome::Collision),
                4 => Ok(RotateOutcome::Moved),
                code => Err(unexpected_code("rotate", code)),
            }
        }))
    }

    /// Scans in batches; the operation timeout bounds each `SCAN` step and each purge script,
    /// not the whole walk of the keyspace.
    fn delete_expired(&self, now: SystemTime) -> StoreFuture<'_, Result<u64, StoreError>> {
        StoreFuture::boxed(async move {
            let now = to_unix_millis(now, "now")?;
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
                            .map_err(failed("delete_expired"))
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
                                .map_err(failed("delete_expired"))
                        })
                        .await?;
                    purged += count;
                }
                if next == 0 {
                    return Ok(purged);
                }
                cursor = next;
            }
        })
    }

    /// A `PING`, within the operation timeout.
    fn ping(&self) -> StoreFuture<'_, Result<(), StoreError>> {
        StoreFuture::boxed(self.bounded("ping", async move {
            let _: String = redis::cmd("PING")
                .query_async(&mut self.conn())
                .await
                .map_err(failed("ping"))?;
            Ok(())
        }))
    }

    fn user_index(&self) -> Option<&dyn UserIndex> {
        Some(self)
    }
}

#[cfg(test)]
mod tests;
