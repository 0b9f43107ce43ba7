//! [`SqliteStore`]: sessions in a SQLite table, through `sqlx`.
//!
//! The schema, the migration, concurrency and cleanup are documented on [`SqliteStore`],
//! where rustdoc shows them.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use sqlx::SqlitePool;
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use tokio::sync::Mutex;

use crate::id::StoreKey;
use crate::store::{
    CreateOutcome, DEFAULT_OPERATION_TIMEOUT, LoadOutcome, ROTATION_MARKER_LIFETIME,
    ROTATION_MARKER_VERSION, Record, RotateOutcome, SaveOutcome, SessionStore, StoreError,
    StoreFuture, TouchOutcome, UserIndex, within,
};

mod builder;
mod error;
mod migrate;
mod names;
mod row;
mod sql;
mod user_index;
mod write;

pub use self::builder::SqliteStoreBuilder;
use self::error::{is_unique_violation, sqlx_failure};
use self::names::index_name;
use self::row::{
    RECORD_FORMAT, column, decode_record, is_known_format, push, record_arguments, to_integer,
    to_millis,
};
use self::sql::{Statements, sql};
use self::write::Miss;

/// The table used unless the builder says otherwise.
const DEFAULT_TABLE: &str = "sessionware_sessions";
/// Rows deleted per transaction by `delete_expired` unless the builder says otherwise.
const DEFAULT_DELETE_BATCH_SIZE: u32 = 1_000;
/// How long a connection made by [`SqliteStore::connect`] waits for a lock held by another
/// connection or process. Shorter than the operation timeout, so that a database kept
/// locked elsewhere is reported as [`StoreError::Unavailable`] ("database is locked"), which
/// says more than a timeout.
const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(1);
/// [`ROTATION_MARKER_VERSION`] as stored.
const MARKER_VERSION: i64 = ROTATION_MARKER_VERSION as i64;

/// A [`SessionStore`] keeping sessions in a SQLite table (feature `sqlite`): for an
/// application on one server whose sessions must survive a restart, without running a
/// database server.
///
/// A file database is shared by the processes of one machine only: for several servers,
/// use `PostgresStore` or `RedisStore`. Every write is a `BEGIN IMMEDIATE` transaction (a
/// rotation changes the row's key in place and leaves the marker in the same transaction,
/// so a concurrent [`revoke_user`](UserIndex::revoke_user) never misses a rotating
/// session), and every operation is bounded by the
/// [operation timeout](SqliteStoreBuilder::operation_timeout). Cloning is cheap: clones
/// share the pool. `Debug` shows the table only.
///
/// # Connecting
///
/// [`connect`](Self::connect) makes a pool suited to the URL:
///
/// - a file (`sqlite://sessions.db`, `sqlite:///var/lib/app/sessions.db`): created if
///   missing and switched to [WAL mode](https://www.sqlite.org/wal.html), the recommended
///   mode, in which readers never wait for the writer, with `synchronous = NORMAL`, the
///   setting SQLite advises with WAL (a crash of the application loses no commit; a power
///   loss or an OS crash may undo the last ones, so make your own pool with
///   `SqliteSynchronous::Full` if a logout must survive that too); sqlx's pool of up to
///   10 connections;
/// - in memory (`sqlite::memory:`): **one connection**, never closed for idleness or age.
///   An in-memory database belongs to the connection that opened it: a pool of several
///   would give each its own empty database. The sessions live as long as the store's
///   pool (the process), which is what tests want.
///
/// Both wait up to 1 second for a lock held by another connection or process (SQLite's
/// busy timeout). A pool made by hand and passed to [`new`](Self::new) or
/// [`builder`](Self::builder) keeps its own settings: give a file database
/// `journal_mode(SqliteJournalMode::Wal)` there too, and one connection
/// (`max_connections(1)`, no idle timeout, no lifetime) to an in-memory database, or use a
/// temporary file instead.
///
/// ```no_run
/// use sessionware::SqliteStore;
///
/// # async fn run() -> Result<(), sessionware::store::StoreError> {
/// let store = SqliteStore::connect("sqlite://sessions.db").await?;
/// store.migrate().await?;
/// # Ok(())
/// # }
/// ```
///
/// # Concurrency
///
/// SQLite runs one write transaction at a time per database. Writers of one store (and its
/// clones) take turns in the process, in arrival order, before they ask SQLite for the
/// lock, so many tasks writing at once queue rather than fail with `SQLITE_BUSY`; a writer
/// in another process or pool is waited for up to the busy timeout. Readers never queue
/// behind writers in WAL mode. Each operation still ends within the operation timeout,
/// the wait for its turn included.
///
/// # Schema
///
/// [`SqliteStore::migrate`] creates this (shown for the default table
/// `sessionware_sessions`, configurable on the [builder](SqliteStoreBuilder)):
///
/// ```sql
/// CREATE TABLE IF NOT EXISTS "sessionware_sessions" (
///     key         BLOB    NOT NULL PRIMARY KEY CHECK (length(key) = 32), -- SHA-256 of the ID
///     version     INTEGER NOT NULL, -- compare-and-swap counter
///     user_id     TEXT,             -- the logged-in user, if any
///     created_at  INTEGER NOT NULL, -- milliseconds since the Unix epoch
///     last_active INTEGER NOT NULL, -- milliseconds since the Unix epoch
///     expires_at  INTEGER NOT NULL, -- milliseconds since the Unix epoch
///     expiry      TEXT,             -- the per-session expiry override as JSON, if any
///     data        BLOB    NOT NULL, -- the session's values: JSON bytes, kept verbatim
///     label       TEXT,             -- the application's label of the session, if any
///     format      INTEGER NOT NULL DEFAULT 0 -- the row's format (see "Upgrades")
/// ) STRICT;
///
/// CREATE INDEX IF NOT EXISTS "sessionware_sessions_expires_at_idx"
///     ON "sessionware_sessions" (expires_at);
/// CREATE INDEX IF NOT EXISTS "sessionware_sessions_user_id_idx"
///     ON "sessionware_sessions" (user_id) WHERE user_id IS NOT NULL;
/// ```
///
/// The table is `STRICT`, so SQLite refuses a value of the wrong type in any column. Times
/// are whole milliseconds since 1970, rounded down; a time before 1970 is refused with
/// [`StoreError::TimeOutOfRange`], and a row holding a negative time is
/// [`StoreError::Corrupt`]. The table name is the only text ever formatted into SQL; it
/// is checked to be a plain identifier and always double-quoted. Every value is a bound
/// parameter.
///
/// # Errors
///
/// Every operation fails with a [`StoreError`]:
///
/// - [`Unavailable`](StoreError::Unavailable): the database stayed locked by another
///   connection or process past the busy timeout (`SQLITE_BUSY`, `SQLITE_LOCKED`), or the
///   pool is closed or timed out waiting for a connection; the source is the
///   [`sqlx::Error`];
/// - [`Timeout`](StoreError::Timeout): the operation did not finish within the
///   [operation timeout](SqliteStoreBuilder::operation_timeout), for example while a pool
///   with a busy timeout longer than it (sqlx's default is 5 seconds) waits for a lock;
/// - [`Corrupt`](StoreError::Corrupt): a row does not decode (a value of the wrong type in
///   a table that is not `STRICT`, a negative time or version, an `expiry` that is not
///   valid JSON for an [`Expiry`](crate::Expiry)), naming the column;
/// - [`UnexpectedReply`](StoreError::UnexpectedReply): a reply of unexpected shape (a
///   missing column): usually a table that is not this crate's schema;
/// - [`TimeOutOfRange`](StoreError::TimeOutOfRange): a time to store, or the `now` passed
///   in, is before 1970;
/// - [`Backend`](StoreError::Backend): any other error, such as a missing table, a file that
///   cannot be opened or is not a database, or a full disk.
///
/// # Upgrades
///
/// Each row records the format it was written in: 1 in this release, the first with this
/// store (the format number is the one `PostgresStore` uses for rows with a `label`). A
/// later release that changes the rows upgrades the table in place from
/// [`migrate`](SqliteStore::migrate) and keeps reading format 1. A row of a format this
/// release does not know, written by a later release (after a downgrade), is treated as
/// missing by [`load`](SessionStore::load): that user logs in again, and the row is left
/// alone until it expires.
///
/// # Running the migration
///
/// Call [`SqliteStore::migrate`] once at start-up, before serving requests. It is
/// idempotent and safe to run concurrently: it creates what is missing in one write
/// transaction.
///
/// ```no_run
/// use sessionware::SqliteStore;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = sqlx::SqlitePool::connect("sqlite://app.db").await?;
/// let store = SqliteStore::builder(pool)
///     .table("sessions")
///     .build()?; // a `ConfigError` if the name is not a plain identifier
/// store.migrate().await?; // a `StoreError` if SQLite refuses
/// # Ok(())
/// # }
/// ```
///
/// # Cleanup
///
/// Expired records are never returned by [`load`](crate::SessionStore::load), but they stay
/// in the table until [`delete_expired`](crate::SessionStore::delete_expired) removes them.
/// Call it periodically, for example from a tokio interval task. It deletes in batches
/// (1,000 rows by default, see [`SqliteStoreBuilder::delete_batch_size`]), each its own
/// short write transaction, so live requests write between batches. SQLite reuses the
/// freed pages; the file does not shrink unless you `VACUUM` it.
///
/// ```no_run
/// use std::time::{Duration, SystemTime};
/// use sessionware::{SessionStore, SqliteStore};
///
/// fn spawn_cleanup(store: SqliteStore) -> tokio::task::JoinHandle<()> {
///     tokio::spawn(async move {
///         let mut every = tokio::time::interval(Duration::from_secs(300));
///         loop {
///             every.tick().await;
///             match store.delete_expired(SystemTime::now()).await {
///                 Ok(purged) => tracing::debug!(purged, "expired sessions deleted"),
///                 Err(error) => tracing::warn!(%error, "session cleanup failed"),
///             }
///         }
///     })
/// }
/// ```
///
/// # Security
///
/// The table is keyed by [`StoreKey`]s, the SHA-256 of session IDs; the store never sees an
/// ID. A copy of the database file yields no usable cookie. Keep the file (and its `-wal`
/// and `-shm` companions) readable by the application only: it holds the sessions' data.
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    shared: Arc<Shared>,
}

/// What clones of a store share: the configuration, the SQL built from it once, and the
/// writers' turn.
struct Shared {
    table: String,
    delete_batch_size: u32,
    operation_timeout: Duration,
    sql: Statements,
    /// Held by each write transaction of this store, so that its writers queue here (in
    /// order) instead of polling SQLite's lock from the busy handler.
    writer: Mutex<()>,
}

impl Shared {
    fn new(table: String, delete_batch_size: u32, operation_timeout: Duration) -> Self {
        let sql = Statements::new(
            &table,
            &index_name(&table, "expires_at_idx"),
            &index_name(&table, "user_id_idx"),
        );
        Self {
            table,
            delete_batch_size,
            operation_timeout,
            sql,
            writer: Mutex::new(()),
        }
    }
}

impl SqliteStore {
    /// A store on `pool`, using the table `sessionware_sessions`, deleting expired rows
    /// 1,000 at a time and bounding each operation by 2 seconds. Run
    /// [`migrate`](Self::migrate) before first use. See [Connecting](SqliteStore#connecting)
    /// for the pool an in-memory database needs.
    pub fn new(pool: SqlitePool) -> Self {
        Self {
            pool,
            shared: Arc::new(Shared::new(
                DEFAULT_TABLE.to_owned(),
                DEFAULT_DELETE_BATCH_SIZE,
                DEFAULT_OPERATION_TIMEOUT,
            )),
        }
    }

    /// A builder for a store on `pool` with a custom table, cleanup batch size or operation
    /// timeout. Its [`build`](SqliteStoreBuilder::build) checks them and fails with a
    /// [`ConfigError`](crate::ConfigError).
    pub fn builder(pool: SqlitePool) -> SqliteStoreBuilder {
        SqliteStoreBuilder {
            pool,
            table: DEFAULT_TABLE.to_owned(),
            delete_batch_size: DEFAULT_DELETE_BATCH_SIZE,
            operation_timeout: DEFAULT_OPERATION_TIMEOUT,
        }
    }

    /// Opens a pool on `url` (`sqlite://path/to/file.db`, or `sqlite::memory:`) as
    /// described under [Connecting](SqliteStore#connecting) and returns a store with the
    /// defaults of [`new`](Self::new). A missing file is created. Run
    /// [`migrate`](Self::migrate) before first use.
    ///
    /// # Errors
    ///
    /// - [`StoreError::Backend`] if the URL is invalid or the file cannot be opened or
    ///   created (a missing directory, no permission, not a database);
    /// - [`StoreError::Unavailable`] if another process keeps the database locked;
    /// - [`StoreError::Timeout`] if opening takes longer than 2 seconds.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let failure = |error| sqlx_failure("connect", error);
        let options = SqliteConnectOptions::from_str(url)
            .map_err(failure)?
            .create_if_missing(true)
            .busy_timeout(DEFAULT_BUSY_TIMEOUT);
        let pool_options = SqlitePoolOptions::new().acquire_timeout(DEFAULT_OPERATION_TIMEOUT);
        let (options, pool_options) = if is_in_memory(url) {
            // The database dies with its one connection: keep that connection for good.
            let pool_options = pool_options
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None);
            (options, pool_options)
        } else {
            let options = options
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal);
            (options, pool_options)
        };
        let pool = within(DEFAULT_OPERATION_TIMEOUT, "connect", async {
            pool_options.connect_with(options).await.map_err(failure)
        })
        .await?;
        Ok(Self::new(pool))
    }

    /// The connection pool the store uses.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// The name of the sessions table.
    pub fn table(&self) -> &str {
        &self.shared.table
    }
}

/// Whether `url` names an in-memory database (`sqlite::memory:`, `mode=memory`), read as
/// sqlx reads it. (`SqliteConnectOptions` keeps this private, and rebuilding its URL
/// panics for an in-memory database.)
fn is_in_memory(url: &str) -> bool {
    let rest = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let (database, params) = rest.split_once('?').unwrap_or((rest, ""));
    database == ":memory:" || params.split('&').any(|param| param == "mode=memory")
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("table", &self.shared.table)
            .field("delete_batch_size", &self.shared.delete_batch_size)
            .finish_non_exhaustive()
    }
}

impl SessionStore for SqliteStore {
    fn load<'a>(
        &'a self,
        key: &'a StoreKey,
        now: SystemTime,
    ) -> StoreFuture<'a, Result<LoadOutcome, StoreError>> {
        StoreFuture::boxed(within(self.shared.operation_timeout, "load", async move {
            let now = to_millis(now, "now")?;
            let row = sqlx::query(sql(&self.shared.sql.load))
                .bind(key.as_bytes().as_slice())
                .fetch_optional(&self.pool)
                .await
                .map_err(|error| sqlx_failure("load", error))?;
            let Some(row) = row else {
                return Ok(LoadOutcome::Missing);
            };
            if column::<i64>(&row, "expires_at", "load")? <= now {
                return Ok(LoadOutcome::Expired);
            }
            if column::<i64>(&row, "version", "load")? == MARKER_VERSION {
                return Ok(LoadOutcome::Moved);
            }
            if !is_known_format(&row, "load")? {
                // Written by a later release: the session is missing here (the user logs in
                // again) and the row is left alone.
                return Ok(LoadOutcome::Missing);
            }
            decode_record(&row, "load").map(LoadOutcome::Found)
        }))
    }

    fn create<'a>(
        &'a self,
        key: &'a StoreKey,
        record: &'a Record,
        _now: SystemTime,
    ) -> StoreFuture<'a, Result<CreateOutcome, StoreError>> {
        StoreFuture::boxed(within(
            self.shared.operation_timeout,
            "create",
            async move {
                let args = record_arguments(key, record)?;
                let inserted = self
                    .write_one("create", &self.shared.sql.insert, args)
                    .await?;
                Ok(if inserted == 1 {
                    CreateOutcome::Created
                } else {
                    CreateOutcome::Collision
                })
            },
        ))
    }

    fn save<'a>(
        &'a self,
        key: &'a StoreKey,
        record: &'a Record,
        expected_version: u64,
        now: SystemTime,
    ) -> StoreFuture<'a, Result<SaveOutcome, StoreError>> {
        StoreFuture::boxed(within(self.shared.operation_timeout, "save", async move {
            let now = to_millis(now, "now")?;
            let mut args = record_arguments(key, record)?;
            push(&mut args, to_integer(expected_version, "expected version")?)?;
            push(&mut args, now)?;
            let missed = self
                .write_or_miss("save", &self.shared.sql.save, args, key, now)
                .await?;
            Ok(match missed {
                None => SaveOutcome::Saved,
                Some(Miss::Conflict) => SaveOutcome::Conflict,
                Some(Miss::Missing) => SaveOutcome::Missing,
                Some(Miss::Moved) => SaveOutcome::Moved,
            })
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
        StoreFuture::boxed(within(self.shared.operation_timeout, "touch", async move {
            let now = to_millis(now, "now")?;
            let mut args = SqliteArguments::default();
            push(&mut args, key.as_bytes().to_vec())?;
            push(&mut args, to_millis(last_active, "last_active")?)?;
            push(&mut args, to_millis(expires_at, "expires_at")?)?;
            push(&mut args, now)?;
            push(&mut args, to_integer(expected_version, "expected version")?)?;
            let missed = self
                .write_or_miss("touch", &self.shared.sql.touch, args, key, now)
                .await?;
            Ok(match missed {
                None => TouchOutcome::Touched,
                // A rotation marker: the session changed since the caller loaded it.
                Some(Miss::Conflict | Miss::Moved) => TouchOutcome::Conflict,
                Some(Miss::Missing) => TouchOutcome::Missing,
            })
        }))
    }

    fn delete<'a>(
        &'a self,
        key: &'a StoreKey,
        _now: SystemTime,
    ) -> StoreFuture<'a, Result<bool, StoreError>> {
        StoreFuture::boxed(within(
            self.shared.operation_timeout,
            "delete",
            async move {
                let mut args = SqliteArguments::default();
                push(&mut args, key.as_bytes().to_vec())?;
                let deleted = self
                    .write_one("delete", &self.shared.sql.delete, args)
                    .await?;
                Ok(deleted > 0)
            },
        ))
    }

    fn rotate<'a>(
        &'a self,
        old: &'a StoreKey,
        new: &'a StoreKey,
        record: &'a Record,
        expected_version: u64,
        now: SystemTime,
    ) -> StoreFuture<'a, Result<RotateOutcome, StoreError>> {
        StoreFuture::boxed(within(
            self.shared.operation_timeout,
            "rotate",
            async move {
                let expected = to_integer(expected_version, "expected version")?;
                let now_millis = to_millis(now, "now")?;
                let marker_expires = to_millis(now + ROTATION_MARKER_LIFETIME, "expires_at")?;
                let mut args = record_arguments(new, record)?;
                push(&mut args, old.as_bytes().to_vec())?;
                push(&mut args, expected)?;
                push(&mut args, now_millis)?;
                let mut write = self.begin_write("rotate").await?;
                if old == new {
                    // Moving the row onto its own key would succeed in place, yet the new
                    // key is taken: by the very record being moved.
                    let current = self.live_version(write.connection(), old, now_millis, "rotate");
                    return Ok(match current.await? {
                        None => RotateOutcome::Missing,
                        Some(MARKER_VERSION) => RotateOutcome::Moved,
                        Some(version) if version != expected => RotateOutcome::Conflict,
                        Some(_) => RotateOutcome::Collision,
                    });
                }
                let moved = match sqlx::query_with(sql(&self.shared.sql.rotate_move), args)
                    .execute(write.connection())
                    .await
                {
                    Ok(done) => done.rows_affected(),
                    // The new key is taken; dropping `write` rolls back (nothing changed).
                    Err(error) if is_unique_violation(&error) => {
                        return Ok(RotateOutcome::Collision);
                    }
                    Err(error) => return Err(sqlx_failure("rotate", error)),
                };
                let outcome = if moved == 1 {
                    sqlx::query(sql(&self.shared.sql.rotate_marker))
                        .bind(old.as_bytes().as_slice())
                        .bind(now_millis)
                        .bind(marker_expires)
                        .bind(RECORD_FORMAT)
                        .execute(write.connection())
                        .await
                        .map_err(|error| sqlx_failure("rotate", error))?;
                    RotateOutcome::Rotated
                } else {
                    match self
                        .miss(write.connection(), old, now_millis, "rotate")
                        .await?
                    {
                        Miss::Conflict => RotateOutcome::Conflict,
                        Miss::Missing => RotateOutcome::Missing,
                        Miss::Moved => RotateOutcome::Moved,
                    }
                };
                write.commit("rotate").await?;
                Ok(outcome)
            },
        ))
    }

    /// Deletes in batches; the operation timeout bounds each batch, not the whole purge.
    fn delete_expired(&self, now: SystemTime) -> StoreFuture<'_, Result<u64, StoreError>> {
        StoreFuture::boxed(async move {
            let now = to_millis(now, "now")?;
            let batch = self.shared.delete_batch_size;
            let mut total = 0_u64;
            loop {
                let mut args = SqliteArguments::default();
                push(&mut args, now)?;
                push(&mut args, i64::from(batch))?;
                let deleted = within(
                    self.shared.operation_timeout,
                    "delete_expired",
                    self.write_one(
                        "delete_expired",
                        &self.shared.sql.delete_expired_batch,
                        args,
                    ),
                )
                .await?;
                total += deleted;
                if deleted < u64::from(batch) {
                    return Ok(total);
                }
            }
        })
    }

    /// A `SELECT 1` on a pooled connection, within the operation timeout.
    fn ping(&self) -> StoreFuture<'_, Result<(), StoreError>> {
        StoreFuture::boxed(within(self.shared.operation_timeout, "ping", async move {
            let ping = sqlx::query("SELECT 1").execute(&self.pool).await;
            ping.map(drop).map_err(|error| sqlx_failure("ping", error))
        }))
    }

    fn user_index(&self) -> Option<&dyn UserIndex> {
        Some(self)
    }
}

#[cfg(test)]
mod tests;
