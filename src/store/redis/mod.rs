//! [`RedisStore`]: sessions in Redis or Valkey, through an auto-reconnecting
//! [`ConnectionManager`].
//!
//! The key layout, the scripts' guarantees and the role of `delete_expired` are documented on
//! [`RedisStore`] itself, where users of the crate can read them.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, Script};

use crate::error::{ConfigError, SessionError};
use crate::expiry::Expiry;
use crate::id::{SessionHandle, StoreKey};
use crate::store::{
    CreateOutcome, DEFAULT_OPERATION_TIMEOUT, LoadOutcome, ROTATION_MARKER_LIFETIME, Record,
    RotateOutcome, SaveOutcome, SessionInfo, SessionStore, TouchOutcome, within,
};

/// [`ROTATION_MARKER_VERSION`](crate::store::ROTATION_MARKER_VERSION) as the `version`
/// field holds it (a unit test checks that the two agree).
const MARKER_VERSION: &str = "0";

const DEFAULT_KEY_PREFIX: &str = "sessionware:";
const DEFAULT_EXPIRY_GRACE: Duration = Duration::from_secs(60);
/// The longest one connection attempt may take with the store's default connection settings
/// (the `redis` crate's own default), or the operation timeout if that is shorter.
const DEFAULT_CONNECTION_TIMEOUT: Duration = Duration::from_secs(1);
/// The `COUNT` hint of each `SCAN` step of `delete_expired`, and so the largest batch one
/// purge script handles.
const SCAN_BATCH: usize = 500;
/// The most stale entries one write that adds to a user's index removes from it (see
/// "Index upkeep" on [`RedisStore`]): enough to outpace the rate at which sessions can
/// expire, small enough that the write stays a constant cost.
const INDEX_PRUNE_BATCH: usize = 32;
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
/// Lua numbers are doubles: beyond 2^53 milliseconds (about 285,000 years) the scripts'
/// comparisons would lose precision, so such times are refused rather than mangled.
const MAX_MILLIS: u64 = (1 << 53) - 1;

/// Helpers shared by every script, after a line defining `INDEX_PRUNE_BATCH` (see
/// [`SCRIPTS`]). Field names here must match those written by [`encode_record`] and read by
/// [`decode_record`].
const LUA_PRELUDE: &str = r"
local function int(n) return string.format('%d', n) end
local function refresh_index(ukey, grace)
  local top = redis.call('ZRANGE', ukey, -1, -1, 'WITHSCORES')
  if top[2] then
    redis.call('PEXPIREAT', ukey, int(tonumber(top[2]) + grace))
  end
end
-- Drops at most INDEX_PRUNE_BATCH members scored (with their session's deadline) at or before
-- now - grace: their sessions expired longer than the grace ago, so Redis has dropped the
-- session keys and nothing will remove the members otherwise.
local function prune_index(ukey, now, grace)
  local stale = redis.call('ZRANGEBYSCORE', ukey, '-inf', int(now - grace),
    'LIMIT', 0, INDEX_PRUNE_BATCH)
  if #stale > 0 then redis.call('ZREM', ukey, unpack(stale)) end
end
local function index_add(ukey, member, expires, now, grace)
  redis.call('ZADD', ukey, int(expires), member)
  prune_index(ukey, now, grace)
  refresh_index(ukey, grace)
end
local function index_remove(ukey, member, grace)
  if redis.call('ZREM', ukey, member) == 1 then refresh_index(ukey, grace) end
end
local function write_record(key, expires, grace, first_field)
  redis.call('DEL', key)
  redis.call('HSET', key, unpack(ARGV, first_field))
  redis.call('PEXPIREAT', key, int(expires + grace))
end
local function owner(key)
  if redis.call('TYPE', key)['ok'] ~= 'hash' then return false end
  return redis.call('HGET', key, 'ix')
end
";

/// KEYS: session, [index]. ARGV: member, expires, grace, now (the record's last activity),
/// field/value pairs... Returns 1 when created, 0 on a collision.
const LUA_CREATE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local expires, grace, now = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
write_record(KEYS[1], expires, grace, 5)
if KEYS[2] then index_add(KEYS[2], ARGV[1], expires, now, grace) end
return 1
";

/// KEYS: session, [index]. ARGV: member, expires, grace, expected version, now, pairs...
/// Returns 1 when saved, 0 when missing or expired, 2 on a version conflict, 3 on a rotation
/// marker.
const LUA_SAVE: &str = r"
local cur = redis.call('HMGET', KEYS[1], 'version', 'expires', 'ix')
if not cur[1] or tonumber(cur[2]) <= tonumber(ARGV[5]) then return 0 end
if cur[1] == MARKER_VERSION then return 3 end
if cur[1] ~= ARGV[4] then return 2 end
local expires, grace, now = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[5])
write_record(KEYS[1], expires, grace, 6)
if cur[3] and cur[3] ~= KEYS[2] then index_remove(cur[3], ARGV[1], grace) end
if KEYS[2] then index_add(KEYS[2], ARGV[1], expires, now, grace) end
return 1
";

/// KEYS: session. ARGV: member, last active, expires, now, grace, expected version.
/// Returns 1 when touched, 0 when missing or expired, 2 on a version conflict.
const LUA_TOUCH: &str = r"
local cur = redis.call('HMGET', KEYS[1], 'expires', 'ix', 'version')
if not cur[1] or tonumber(cur[1]) <= tonumber(ARGV[4]) then return 0 end
if cur[3] ~= ARGV[6] then return 2 end
local expires, now, grace = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
redis.call('HSET', KEYS[1], 'active', ARGV[2], 'expires', ARGV[3])
redis.call('PEXPIREAT', KEYS[1], int(expires + grace))
if cur[2] then index_add(cur[2], ARGV[1], expires, now, grace) end
return 1
";

/// KEYS: session. ARGV: member, grace. Returns how many keys it deleted (0 or 1).
const LUA_DELETE: &str = r"
local ix = owner(KEYS[1])
local deleted = redis.call('DEL', KEYS[1])
if ix then index_remove(ix, ARGV[1], tonumber(ARGV[2])) end
return deleted
";

/// KEYS: old session, new session, [new index]. ARGV: old member, new member, expires, grace,
/// expected version, now, pairs... Returns 1 when rotated, 0 when the old record is missing
/// or expired, 2 on a version conflict, 3 when the new key is taken, 4 when the old key holds
/// a rotation marker.
const LUA_ROTATE: &str = r"
local cur = redis.call('HMGET', KEYS[1], 'version', 'expires', 'ix')
if not cur[1] or tonumber(cur[2]) <= tonumber(ARGV[6]) then return 0 end
if cur[1] == MARKER_VERSION then return 4 end
if cur[1] ~= ARGV[5] then return 2 end
if redis.call('EXISTS', KEYS[2]) == 1 then return 3 end
local expires, grace, now = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[6])
-- The old key keeps only a rotation marker, which Redis drops when it expires.
local marker = int(now + MARKER_LIFETIME_MS)
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'version', MARKER_VERSION, 'expires', marker)
redis.call('PEXPIREAT', KEYS[1], marker)
if cur[3] then index_remove(cur[3], ARGV[1], grace) end
write_record(KEYS[2], expires, grace, 7)
if KEYS[3] then index_add(KEYS[3], ARGV[2], expires, now, grace) end
return 1
";

/// KEYS: candidate session keys. ARGV: now, grace. Deletes those expired at `now` and
/// returns how many.
const LUA_PURGE: &str = r"
local now, grace = tonumber(ARGV[1]), tonumber(ARGV[2])
local purged = 0
for _, key in ipairs(KEYS) do
  if redis.call('TYPE', key)['ok'] == 'hash' then
    local cur = redis.call('HMGET', key, 'expires', 'ix')
    local expires = tonumber(cur[1])
    if expires and expires <= now then
      redis.call('DEL', key)
      if cur[2] then index_remove(cur[2], string.sub(key, -64), grace) end
      purged = purged + 1
    end
  end
end
return purged
";

/// KEYS: index. ARGV: session key prefix, now, grace, first rank, page size. Examines the
/// members ranked first .. first + page - 1 and drops those whose session is gone or owned
/// by another index. Returns {examined, kept, {member, created, active, expires, ...}}: how
/// many members it looked at, how many of them it left in place (so the next page starts at
/// first + kept), and the live sessions among those. A field missing from a record is sent
/// as an empty string, for the caller to refuse.
const LUA_LIST: &str = r"
local now, grace = tonumber(ARGV[2]), tonumber(ARGV[3])
local first, page = tonumber(ARGV[4]), tonumber(ARGV[5])
local members = redis.call('ZRANGE', KEYS[1], first, first + page - 1)
local listed = {}
local kept = 0
for _, member in ipairs(members) do
  local key = ARGV[1] .. member
  if owner(key) ~= KEYS[1] then
    redis.call('ZREM', KEYS[1], member)
  else
    kept = kept + 1
    local cur = redis.call('HMGET', key, 'created', 'active', 'expires')
    local expires = tonumber(cur[3])
    if not expires or expires > now then
      listed[#listed + 1] = member
      listed[#listed + 1] = cur[1] or ''
      listed[#listed + 1] = cur[2] or ''
      listed[#listed + 1] = cur[3] or ''
    end
  end
end
if kept < #members then refresh_index(KEYS[1], grace) end
return {#members, kept, listed}
";

/// KEYS: index. ARGV: session key prefix, member to keep (or empty), now, grace, page size.
/// Examines the `page` lowest-ranked members: deletes each session the index owns except the
/// kept one, and drops every member but the kept one. Returns {how many of the deleted
/// sessions were live at `now`, 1 if it examined a full page and 0 otherwise}.
///
/// Every call starts again from the lowest rank, never from a score cursor: a session rotated
/// or re-scored (a `set_expiry` can lower a deadline) between two calls re-enters the index
/// with a score anywhere, and the next call must still find it. The kept member is examined
/// again by each call rather than skipped with an offset, because any member, the new one of
/// a rotation included, can rank below it.
const LUA_REVOKE_USER: &str = r"
local now, grace, page = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local members = redis.call('ZRANGE', KEYS[1], 0, page - 1)
local revoked = 0
local removed = 0
for _, member in ipairs(members) do
  local key = ARGV[1] .. member
  if owner(key) ~= KEYS[1] then
    redis.call('ZREM', KEYS[1], member)
    removed = removed + 1
  elseif member ~= ARGV[2] then
    local expires = tonumber(redis.call('HGET', key, 'expires'))
    redis.call('DEL', key)
    redis.call('ZREM', KEYS[1], member)
    removed = removed + 1
    if expires and expires > now then revoked = revoked + 1 end
  end
end
if removed > 0 then refresh_index(KEYS[1], grace) end
if #members == page then return {revoked, 1} end
return {revoked, 0}
";

/// The scripts, hashed once per process. Each is the prelude, preceded by the definition of
/// `INDEX_PRUNE_BATCH`, followed by its own body.
struct Scripts {
    create: Script,
    save: Script,
    touch: Script,
    delete: Script,
    rotate: Script,
    purge: Script,
    list: Script,
    revoke_user: Script,
}

static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| {
    let script = |body: &str| {
        Script::new(&format!(
            "local INDEX_PRUNE_BATCH = {INDEX_PRUNE_BATCH}\n\
             local MARKER_VERSION = '{MARKER_VERSION}'\n\
             local MARKER_LIFETIME_MS = {}\n{LUA_PRELUDE}{body}",
            ROTATION_MARKER_LIFETIME.as_millis()
        ))
    };
    Scripts {
        create: script(LUA_CREATE),
        save: script(LUA_SAVE),
        touch: script(LUA_TOUCH),
        delete: script(LUA_DELETE),
        rotate: script(LUA_ROTATE),
        purge: script(LUA_PURGE),
        list: script(LUA_LIST),
        revoke_user: script(LUA_REVOKE_USER),
    }
});

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

/// Builds a [`RedisStore`]; made by [`RedisStore::builder`] or
/// [`RedisStore::builder_with_manager`].
#[must_use = "a builder does nothing until `build` is awaited"]
pub struct RedisStoreBuilder {
    connection: Connection,
    config: Option<ConnectionManagerConfig>,
    key_prefix: String,
    expiry_grace: Duration,
    operation_timeout: Duration,
}

enum Connection {
    Url(String),
    Manager(ConnectionManager),
}

/// Key names and the expiry grace, shared by the clones of one store.
struct KeyLayout {
    prefix: String,
    /// `{prefix}s:`, the start of every session key.
    session_prefix: String,
    grace_millis: u64,
}

impl KeyLayout {
    fn new(prefix: String, expiry_grace: Duration) -> Self {
        Self {
            session_prefix: format!("{prefix}s:"),
            prefix,
            grace_millis: u64::try_from(expiry_grace.as_millis())
                .unwrap_or(MAX_MILLIS)
                .min(MAX_MILLIS),
        }
    }

    fn session_key(&self, key: &StoreKey) -> String {
        format!("{}{}", self.session_prefix, key.to_hex())
    }

    fn index_key(&self, user: &str) -> String {
        format!("{}u:{}", self.prefix, URL_SAFE_NO_PAD.encode(user))
    }

    /// A `SCAN MATCH` pattern for every session key, with the prefix's glob characters
    /// escaped so that a prefix such as `app[1]:` matches only itself.
    fn session_pattern(&self) -> String {
        let mut pattern = String::with_capacity(self.session_prefix.len() + 2);
        for c in self.session_prefix.chars() {
            if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push('*');
        pattern
    }
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

/// Runs `step` of `operation` with [`within`], giving up after `timeout`.
///
/// The `redis` crate has timeouts of its own (per response and per connection attempt),
/// which the store's default connection settings set to at most `timeout`. When one of those
/// fires only once the whole `timeout` has passed, it is the same event as the store's own
/// timeout seen from inside (both timers may fire on the same tick), and is reported the
/// same way, as [`SessionError::StoreTimeout`]. One that fires sooner (a shorter timeout in a
/// caller's connection settings) stays a [`SessionError::Store`].
async fn bounded<T>(
    timeout: Duration,
    operation: &'static str,
    step: impl Future<Output = Result<T, SessionError>>,
) -> Result<T, SessionError> {
    let started = tokio::time::Instant::now();
    match within(timeout, operation, step).await {
        Err(SessionError::Store(source))
            if started.elapsed() >= timeout
                && source
                    .downcast_ref::<redis::RedisError>()
                    .is_some_and(redis::RedisError::is_timeout) =>
        {
            Err(SessionError::StoreTimeout { operation, timeout })
        }
        result => result,
    }
}

/// The connection manager settings of a store built from a URL without
/// [`RedisStoreBuilder::connection_config`]: the `redis` crate's defaults (six reconnection
/// attempts with exponential backoff), with each response awaited for at most the operation
/// timeout and each connection attempt for at most 1 second or the operation timeout if that
/// is shorter.
fn default_connection_config(operation_timeout: Duration) -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_response_timeout(Some(operation_timeout))
        .set_connection_timeout(Some(DEFAULT_CONNECTION_TIMEOUT.min(operation_timeout)))
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

impl RedisStoreBuilder {
    fn new(connection: Connection) -> Self {
        Self {
            connection,
            config: None,
            key_prefix: DEFAULT_KEY_PREFIX.to_owned(),
            expiry_grace: DEFAULT_EXPIRY_GRACE,
            operation_timeout: DEFAULT_OPERATION_TIMEOUT,
        }
    }

    /// The prefix of every key the store writes. Default: `"sessionware:"`.
    ///
    /// Give each application sharing a server its own prefix. On Redis Cluster, wrap a part
    /// of it in a hash tag (`"{myapp}:sessions:"`) so that all of the store's keys share one
    /// slot, as its scripts require.
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }

    /// How long Redis keeps a record after its deadline before the native TTL drops it.
    /// Default: 60 seconds.
    ///
    /// During the grace, `load` reports [`LoadOutcome::Expired`] instead of
    /// [`LoadOutcome::Missing`], and an application clock that lags the server's by less than
    /// the grace still sees its sessions live until their stored deadline. An expired record
    /// is never returned as live, whatever the grace.
    ///
    /// A user's index also keeps the member of an expired session until it has been expired
    /// for longer than the grace, so the grace should exceed the clock skew between the
    /// application's instances (see [Index upkeep](RedisStore#index-upkeep)).
    pub fn expiry_grace(mut self, grace: Duration) -> Self {
        self.expiry_grace = grace;
        self
    }

    /// The longest any one store operation may take, connecting included; past it the
    /// operation is abandoned with [`SessionError::StoreTimeout`]. Default: 2 seconds.
    ///
    /// While the server is down, paused or unreachable, every request that needs the store
    /// then fails within this bound instead of waiting for the connection manager's
    /// reconnection attempts. [`build`](Self::build) connects within it too.
    /// [`delete_expired`](SessionStore::delete_expired), [`sessions_of`](SessionStore::sessions_of)
    /// and [`revoke_user`](SessionStore::revoke_user) take several steps on a large keyspace or
    /// index (see [`RedisStore`]); the bound applies to each step. An abandoned script may
    /// still run on the server once it answers again, which every operation tolerates (each
    /// script is atomic, and a retry reads the outcome afresh). Must not be zero; checked by
    /// [`build`](Self::build).
    pub fn operation_timeout(mut self, timeout: Duration) -> Self {
        self.operation_timeout = timeout;
        self
    }

    /// Reconnection and timeout settings of the connection manager. Default: the `redis`
    /// crate's defaults (six reconnection attempts with exponential backoff), with a response
    /// timeout equal to the [operation timeout](Self::operation_timeout) and a connection
    /// timeout of 1 second or the operation timeout if that is shorter.
    ///
    /// Settings given here replace those defaults entirely, timeouts included. The operation
    /// timeout bounds each operation whatever they say: a longer response or connection
    /// timeout here changes nothing, a shorter one makes an operation fail sooner with
    /// [`SessionError::Store`].
    ///
    /// Only for a builder made with [`RedisStore::builder`]: a manager passed to
    /// [`RedisStore::builder_with_manager`] is already configured, and `build` fails if this
    /// is set too.
    pub fn connection_config(mut self, config: ConnectionManagerConfig) -> Self {
        self.config = Some(config);
        self
    }

    /// Connects (for a builder made from a URL) and returns the store.
    ///
    /// # Errors
    ///
    /// - [`SessionError::Store`] if the URL does not parse, the server refuses the connection,
    ///   or a connection configuration was given for an existing manager;
    /// - [`SessionError::Store`] with a [`ConfigError::InvalidStoreSetting`] as its source if
    ///   the [operation timeout](Self::operation_timeout) is zero (checked before connecting);
    /// - [`SessionError::StoreTimeout`] if connecting takes longer than the operation timeout
    ///   (the server is down, paused or unreachable).
    pub async fn build(self) -> Result<RedisStore, SessionError> {
        let timeout = self.operation_timeout;
        if timeout.is_zero() {
            return Err(SessionError::store(ConfigError::InvalidStoreSetting {
                setting: "operation_timeout",
                reason: "must be greater than zero".to_owned(),
            }));
        }
        let manager = match (self.connection, self.config) {
            (Connection::Url(url), config) => {
                let client = Client::open(url.as_str()).map_err(SessionError::store)?;
                let config = config.unwrap_or_else(|| default_connection_config(timeout));
                bounded(timeout, "connect", async {
                    ConnectionManager::new_with_config(client, config)
                        .await
                        .map_err(SessionError::store)
                })
                .await?
            }
            (Connection::Manager(manager), None) => manager,
            (Connection::Manager(_), Some(_)) => {
                return Err(SessionError::store(RedisStoreError::ConfigForManager));
            }
        };
        Ok(RedisStore {
            manager,
            layout: Arc::new(KeyLayout::new(self.key_prefix, self.expiry_grace)),
            operation_timeout: timeout,
        })
    }
}

impl fmt::Debug for RedisStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may carry a password: never show it.
        f.debug_struct("RedisStoreBuilder")
            .field("key_prefix", &self.key_prefix)
            .field("expiry_grace", &self.expiry_grace)
            .field("operation_timeout", &self.operation_timeout)
            .finish_non_exhaustive()
    }
}

/// Data read back from Redis that is not what this store writes, or a value it cannot write.
#[derive(Debug)]
enum RedisStoreError {
    /// A session hash lacks a field or holds one that does not parse.
    MalformedRecord(&'static str),
    /// A script answered something its code cannot return.
    UnexpectedReply(&'static str),
    /// A time before the Unix epoch or too far in the future to be kept in milliseconds.
    TimeOutOfRange,
    /// `connection_config` was set on a builder made from an existing manager.
    ConfigForManager,
    /// `sessions_of` or `revoke_user` walked [`MAX_INDEX_PAGES`] pages of one user's index
    /// without reaching its end.
    IndexTooLarge(&'static str),
}

impl fmt::Display for RedisStoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MalformedRecord(field) => write!(
                f,
                "stored session record has a missing or malformed `{field}` field \
                 (was the key written by something other than this store?)"
            ),
            Self::UnexpectedReply(script) => {
                write!(f, "unexpected reply from the `{script}` script")
            }
            Self::TimeOutOfRange => f.write_str(
                "time cannot be stored: it is before 1970 or more than 2^53 ms after it",
            ),
            Self::ConfigForManager => f.write_str(
                "`connection_config` has no effect on a store built from an existing \
                 ConnectionManager: configure the manager instead",
            ),
            Self::IndexTooLarge(operation) => write!(
                f,
                "`{operation}` gave up after {MAX_INDEX_PAGES} pages of {INDEX_PAGE} members \
                 of one user's index (are sessions of that user created as fast as they are \
                 removed?)"
            ),
        }
    }
}

impl std::error::Error for RedisStoreError {}

fn to_millis(time: SystemTime) -> Result<u64, SessionError> {
    time.duration_since(UNIX_EPOCH)
        .ok()
        .and_then(|since| u64::try_from(since.as_millis()).ok())
        .filter(|millis| *millis <= MAX_MILLIS)
        .ok_or_else(|| SessionError::store(RedisStoreError::TimeOutOfRange))
}

fn from_millis(millis: u64) -> Option<SystemTime> {
    UNIX_EPOCH.checked_add(Duration::from_millis(millis))
}

/// A record as the scripts write it: its deadline, its index key, and the hash's field/value
/// pairs.
struct EncodedRecord {
    expires: u64,
    index: Option<String>,
    fields: Vec<(&'static str, Vec<u8>)>,
}

fn encode_record(layout: &KeyLayout, record: &Record) -> Result<EncodedRecord, SessionError> {
    let expires = to_millis(record.expires_at)?;
    let mut fields = vec![
        ("version", record.version.to_string().into_bytes()),
        (
            "created",
            to_millis(record.created_at)?.to_string().into_bytes(),
        ),
        (
            "active",
            to_millis(record.last_active)?.to_string().into_bytes(),
        ),
        ("expires", expires.to_string().into_bytes()),
        ("data", record.data.clone()),
    ];
    let index = record.user.as_deref().map(|user| layout.index_key(user));
    if let (Some(user), Some(index)) = (&record.user, &index) {
        fields.push(("user", user.clone().into_bytes()));
        fields.push(("ix", index.clone().into_bytes()));
    }
    if let Some(expiry) = &record.expiry {
        fields.push(("expiry", serde_json::to_vec(expiry)?));
    }
    Ok(EncodedRecord {
        expires,
        index,
        fields,
    })
}

/// One live session as `sessions_of`'s script lists it: member, created, active, expires.
fn decode_info(entry: &[String]) -> Result<SessionInfo, SessionError> {
    let malformed = || SessionError::store(RedisStoreError::UnexpectedReply("sessions_of"));
    let time = |text: &str| {
        text.parse()
            .ok()
            .and_then(from_millis)
            .ok_or_else(malformed)
    };
    match entry {
        [member, created, active, expires] => Ok(SessionInfo {
            handle: SessionHandle::from_store_key(
                StoreKey::from_hex(member).ok_or_else(malformed)?,
            ),
            created_at: time(created)?,
            last_active: time(active)?,
            expires_at: time(expires)?,
        }),
        _ => Err(malformed()),
    }
}

fn decode_record(mut fields: HashMap<String, Vec<u8>>) -> Result<Record, SessionError> {
    let malformed = |name| SessionError::store(RedisStoreError::MalformedRecord(name));
    let mut text = |name: &'static str| -> Result<Option<String>, SessionError> {
        fields
            .remove(name)
            .map(|bytes| String::from_utf8(bytes).map_err(|_| malformed(name)))
            .transpose()
    };
    let mut number = |name: &'static str| -> Result<u64, SessionError> {
        text(name)?
            .and_then(|text| text.parse().ok())
            .ok_or_else(|| malformed(name))
    };
    let mut time = |name: &'static str| -> Result<SystemTime, SessionError> {
        from_millis(number(name)?).ok_or_else(|| malformed(name))
    };
    let created_at = time("created")?;
    let last_active = time("active")?;
    let expires_at = time("expires")?;
    let version = number("version")?;
    let user = text("user")?;
    let expiry = fields
        .remove("expiry")
        .map(|json| serde_json::from_slice::<Expiry>(&json).map_err(|_| malformed("expiry")))
        .transpose()?;
    let data = fields.remove("data").ok_or_else(|| malformed("data"))?;
    Ok(Record {
        version,
        user,
        created_at,
        last_active,
        expires_at,
        expiry,
        data,
    })
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
    use super::*;

    #[test]
    fn the_marker_version_is_the_stores_own() {
        assert_eq!(
            MARKER_VERSION,
            crate::store::ROTATION_MARKER_VERSION.to_string()
        );
    }

    fn layout(prefix: &str) -> KeyLayout {
        KeyLayout::new(prefix.to_owned(), DEFAULT_EXPIRY_GRACE)
    }

    #[test]
    fn key_names_follow_the_documented_layout() {
        let layout = layout("app:");
        let key = StoreKey::from_bytes([0xab; 32]);
        assert_eq!(
            layout.session_key(&key),
            format!("app:s:{}", "ab".repeat(32))
        );
        assert_eq!(layout.index_key("alice"), "app:u:YWxpY2U");
    }

    #[test]
    fn user_names_cannot_escape_their_key() {
        let layout = layout("app:");
        for user in ["a:b", "*", "x\ny", "../s:", "ünï", ""] {
            let index = layout.index_key(user);
            let encoded = index.strip_prefix("app:u:").unwrap_or_default();
            assert!(
                encoded
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "{index}"
            );
        }
        assert_ne!(layout.index_key("a"), layout.index_key("a "));
    }

    #[test]
    fn scan_pattern_escapes_glob_characters() {
        assert_eq!(layout("app:").session_pattern(), "app:s:*");
        assert_eq!(layout(r"a*[?]\:").session_pattern(), r"a\*\[\?\]\\:s:*");
    }

    #[test]
    fn records_round_trip_through_the_hash_fields() {
        let layout = layout("app:");
        let at = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        let record = Record {
            version: u64::MAX,
            user: Some("bob".to_owned()),
            created_at: at,
            last_active: at + Duration::from_millis(5),
            expires_at: at + Duration::from_secs(60),
            expiry: Some(Expiry::AtDateTime(at + Duration::from_nanos(7))),
            data: vec![0, 255, b'{', b'}'],
        };
        let encoded = encode_record(&layout, &record).expect("encodes");
        assert_eq!(encoded.index.as_deref(), Some("app:u:Ym9i"));
        let fields = encoded
            .fields
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value))
            .collect();
        assert_eq!(decode_record(fields).expect("decodes"), record);
    }

    #[test]
    fn malformed_hashes_are_errors_not_panics() {
        let mut fields = HashMap::new();
        fields.insert("version".to_owned(), b"not a number".to_vec());
        assert!(matches!(decode_record(fields), Err(SessionError::Store(_))));
        let mut fields = HashMap::new();
        fields.insert("data".to_owned(), Vec::new());
        assert!(matches!(decode_record(fields), Err(SessionError::Store(_))));
    }

    #[test]
    fn default_connection_settings_stay_within_the_operation_timeout() {
        let short = default_connection_config(Duration::from_millis(300));
        assert_eq!(short.response_timeout(), Some(Duration::from_millis(300)));
        assert_eq!(short.connection_timeout(), Some(Duration::from_millis(300)));
        let default = default_connection_config(DEFAULT_OPERATION_TIMEOUT);
        assert_eq!(default.response_timeout(), Some(DEFAULT_OPERATION_TIMEOUT));
        assert_eq!(default.connection_timeout(), Some(Duration::from_secs(1)));
    }

    fn redis_timeout() -> SessionError {
        SessionError::store(redis::RedisError::from(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "timed out",
        )))
    }

    #[tokio::test]
    async fn a_redis_timeout_is_a_store_timeout_only_once_the_operation_timeout_passed() {
        let timeout = Duration::from_millis(50);
        // Reported together with the store's own timer (here: only after it ran out).
        let late = bounded(timeout, "load", async {
            std::thread::sleep(timeout + Duration::from_millis(10));
            Err::<(), _>(redis_timeout())
        })
        .await;
        assert!(
            matches!(
                late,
                Err(SessionError::StoreTimeout {
                    operation: "load",
                    timeout: t
                }) if t == timeout
            ),
            "{late:?}"
        );
        // A shorter timeout of the caller's own connection settings stays a store error.
        let early = bounded(timeout, "load", async { Err::<(), _>(redis_timeout()) }).await;
        assert!(matches!(early, Err(SessionError::Store(_))), "{early:?}");
    }

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
        let layout = layout(&format!("sessionware-unit:{nanos:x}:"));
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

    #[test]
    fn times_out_of_range_are_refused() {
        assert!(to_millis(UNIX_EPOCH - Duration::from_secs(1)).is_err());
        assert!(to_millis(UNIX_EPOCH + Duration::from_millis(MAX_MILLIS + 1)).is_err());
        assert_eq!(
            to_millis(UNIX_EPOCH + Duration::from_micros(1_500)).ok(),
            Some(1)
        );
    }
}
