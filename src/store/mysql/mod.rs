//! [`MySqlStore`]: sessions in a MySQL or MariaDB table, through `sqlx`.
//!
//! The schema, the migration and cleanup are documented on [`MySqlStore`], where rustdoc
//! shows them.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use sqlx::MySqlPool;
use sqlx::mysql::MySqlArguments;

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

pub use self::builder::MySqlStoreBuilder;
use self::error::{is_deadlock, is_unique_violation, sqlx_failure};
use self::row::{
    RECORD_FORMAT, column, decode_record, is_known_format, push, push_record, to_millis, to_version,
};
use self::sql::{Statements, sql};

/// The table used unless the builder says otherwise.
const DEFAULT_TABLE: &str = "sessionware_sessions";
/// Rows deleted per statement by `delete_expired` unless the builder says otherwise.
const DEFAULT_DELETE_BATCH_SIZE: u32 = 1_000;

/// A [`SessionStore`] keeping sessions in a MySQL or MariaDB table (feature `mysql`).
///
/// Tested on MariaDB 10.11; written for MySQL 8 too (it uses only types, statements and
/// catalog tables both have). Every operation is one atomic statement or one short
/// transaction (a rotation changes the row's key in place and inserts the rotation marker
/// in the same transaction, so a concurrent [`revoke_user`](UserIndex::revoke_user) never
/// misses a rotating session), and each is bounded by the
/// [operation timeout](MySqlStoreBuilder::operation_timeout), connecting included. Cloning
/// is cheap: clones share the connection pool. `Debug` shows the table only, never the
/// pool's connection options.
///
/// # Schema
///
/// [`MySqlStore::migrate`] creates this in the connection's database (shown for the
/// default table `sessionware_sessions`; the name is configurable on the
/// [builder](MySqlStoreBuilder)):
///
/// ```sql
/// CREATE TABLE IF NOT EXISTS `sessionware_sessions` (
///     `key`       BINARY(32) NOT NULL PRIMARY KEY, -- SHA-256 of the session ID
///     version     BIGINT     NOT NULL,  -- compare-and-swap counter
///     user_id     VARBINARY(1024),      -- the logged-in user (UTF-8), if any
///     created_at  BIGINT     NOT NULL,  -- milliseconds since the Unix epoch
///     last_active BIGINT     NOT NULL,  -- milliseconds since the Unix epoch
///     expires_at  BIGINT     NOT NULL,  -- milliseconds since the Unix epoch
///     expiry      TEXT,                 -- the per-session expiry override (JSON), if any
///     data        LONGBLOB   NOT NULL,  -- the session's values: JSON bytes, kept verbatim
///     label       TEXT,                 -- the application's label of the session, if any
///     format      SMALLINT   NOT NULL DEFAULT 0 -- the row's format (see "Upgrades")
/// ) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
///
/// CREATE INDEX `expires_at_idx` ON `sessionware_sessions` (expires_at);
/// CREATE INDEX `user_id_idx` ON `sessionware_sessions` (user_id);
/// ```
///
/// Times are kept as whole milliseconds since 1970, rounded down: a record never outlives
/// the deadline it was given, and whole-millisecond times come back exactly. A time before
/// 1970 is refused with [`StoreError::TimeOutOfRange`], and a row holding a negative time is
/// [`StoreError::Corrupt`]. The user is kept as bytes so that names compare exactly (no
/// case folding, no trailing-space padding); a user name longer than 1,024 bytes fails with
/// [`StoreError::Backend`]. `expiry` is `TEXT` rather than `JSON`, which MariaDB only
/// aliases. The table name is the only text ever formatted into SQL; it is checked to be a
/// plain identifier and always backtick-quoted. Every value is a bound parameter.
///
/// # Errors
///
/// Every operation fails with a [`StoreError`]:
///
/// - [`Unavailable`](StoreError::Unavailable): the server cannot be reached, the connection
///   was refused, reset, killed or closed, TLS failed, the pool is closed or timed out
///   waiting for a connection, the server is shutting down or has too many connections, or
///   it gave up on the operation's transaction under contention twice in a row (a deadlock,
///   1213, or a lock wait timeout, 1205: a rotation and a revocation of the same user can
///   deadlock each other on the user index, so each retries its transaction once, which the
///   server rolled back entirely; other operations are single statements on one row and
///   are not retried); the source is the [`sqlx::Error`];
/// - [`Timeout`](StoreError::Timeout): the operation did not finish within the
///   [operation timeout](MySqlStoreBuilder::operation_timeout);
/// - [`Corrupt`](StoreError::Corrupt): a row does not decode (a column of the wrong type, a
///   negative time or version, a user that is not UTF-8, an `expiry` that is not valid JSON
///   for an [`Expiry`](crate::Expiry)), naming the column;
/// - [`UnexpectedReply`](StoreError::UnexpectedReply): a reply of unexpected shape (a missing
///   column, no row where one is required): usually a table that is not this crate's
///   schema;
/// - [`TimeOutOfRange`](StoreError::TimeOutOfRange): a time to store, or the `now` passed in,
///   is before 1970;
/// - [`Backend`](StoreError::Backend): any other error, such as a statement the server
///   refuses (a missing table or privilege, a user name too long for its column).
///
/// # Upgrades
///
/// Each row records the format it was written in: 1 in this release, the store's first.
/// A row of a format this release does not know, written by a later release, is treated as
/// missing by [`load`](SessionStore::load): that user logs in again, and the row is left
/// alone until it expires. A later release that changes the table does so in
/// [`migrate`](MySqlStore::migrate), in place, keeping live sessions.
///
/// # Running the migration
///
/// Call [`MySqlStore::migrate`] once at start-up, before serving requests. It is idempotent
/// and safe to run from several instances at once: it takes a named lock and creates only
/// what is missing, so a user without `CREATE` privileges can run it once the table exists.
///
/// ```no_run
/// use sessionware::MySqlStore;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = sqlx::MySqlPool::connect("mysql://app@localhost/app").await?;
/// let store = MySqlStore::builder(pool)
///     .table("sessions")
///     .build()?; // a `ConfigError` if the name is not a plain identifier
/// store.migrate().await?; // a `StoreError` if the server refuses
/// # Ok(())
/// # }
/// ```
///
/// With the defaults, [`connect`](Self::connect) makes the pool:
///
/// ```no_run
/// use sessionware::MySqlStore;
///
/// # async fn run() -> Result<(), sessionware::store::StoreError> {
/// let store = MySqlStore::connect("mysql://app@localhost/app").await?;
/// store.migrate().await?;
/// # Ok(())
/// # }
/// ```
///
/// # Cleanup
///
/// Expired records are never returned by [`load`](crate::SessionStore::load), but they stay
/// in the table until [`delete_expired`](crate::SessionStore::delete_expired) removes them.
/// Call it periodically, for example from a tokio interval task. It deletes in batches
/// (`DELETE ... ORDER BY expires_at LIMIT n`, 1,000 rows by default, see
/// [`MySqlStoreBuilder::delete_batch_size`]), each its own short statement, so a large
/// backlog never locks the table for long.
///
/// ```no_run
/// use std::time::{Duration, SystemTime};
/// use sessionware::{MySqlStore, SessionStore};
///
/// fn spawn_cleanup(store: MySqlStore) -> tokio::task::JoinHandle<()> {
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
/// ID. A dump of the table, or read access to it, yields no usable cookie.
#[derive(Clone)]
pub struct MySqlStore {
    pool: MySqlPool,
    shared: Arc<Shared>,
}

/// What clones of a store share: the configuration and the SQL built from it once.
struct Shared {
    table: String,
    delete_batch_size: u32,
    operation_timeout: Duration,
    sql: Statements,
}

impl Shared {
    fn new(table: String, delete_batch_size: u32, operation_timeout: Duration) -> Self {
        let sql = Statements::new(&table);
        Self {
            table,
            delete_batch_size,
            operation_timeout,
            sql,
        }
    }
}

impl MySqlStore {
    /// A store on `pool`, using the table `sessionware_sessions`, deleting expired rows
    /// 1,000 at a time and bounding each operation by 2 seconds. Run
    /// [`migrate`](Self::migrate) before first use.
    pub fn new(pool: MySqlPool) -> Self {
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
    /// timeout. Its [`build`](MySqlStoreBuilder::build) checks them and fails with a
    /// [`ConfigError`](crate::ConfigError).
    pub fn builder(pool: MySqlPool) -> MySqlStoreBuilder {
        MySqlStoreBuilder {
            pool,
            table: DEFAULT_TABLE.to_owned(),
            delete_batch_size: DEFAULT_DELETE_BATCH_SIZE,
            operation_timeout: DEFAULT_OPERATION_TIMEOUT,
        }
    }

    /// Connects a pool with sqlx's default pool options to `url` (a
    /// `mysql://user:password@host/database` URL) and returns a store with the defaults of
    /// [`new`](Self::new). Run [`migrate`](Self::migrate) before first use.
    ///
    /// # Errors
    ///
    /// - [`StoreError::Unavailable`] if the server cannot be reached or refuses or drops the
    ///   connection;
    /// - [`StoreError::Timeout`] if it does not answer within 2 seconds;
    /// - [`StoreError::Backend`] if the URL is invalid or the server refuses the client
    ///   otherwise (a wrong password, an unknown database).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let pool = within(DEFAULT_OPERATION_TIMEOUT, "connect", async {
            sqlx::mysql::MySqlPoolOptions::new()
                .acquire_timeout(DEFAULT_OPERATION_TIMEOUT)
                .connect(url)
                .await
                .map_err(|error| sqlx_failure("connect", error))
        })
        .await?;
        Ok(Self::new(pool))
    }

    /// The connection pool the store uses.
    pub fn pool(&self) -> &MySqlPool {
        &self.pool
    }

    /// The name of the sessions table.
    pub fn table(&self) -> &str {
        &self.shared.table
    }

    /// The version of the live record under `key` at `now` (milliseconds), if there is one,
    /// read for `operation`.
    async fn live_version(
        &self,
        key: &StoreKey,
        now: i64,
        operation: &'static str,
    ) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query(sql(&self.shared.sql.live_version))
            .bind(key.as_bytes().as_slice())
            .bind(now)
            .fetch_optional(&self.pool)
            .await
            .map_err(|error| sqlx_failure(operation, error))?;
        row.map(|row| column(&row, "version", operation))
            .transpose()
    }

    /// Moves the live record under `old` with `expected` version to `new` and leaves a
    /// rotation marker under `old`, in one transaction: `Some(outcome)` if it decided the
    /// rotation, `None` if nothing matched (the caller then looks at why).
    async fn move_and_mark(
        &self,
        old: &StoreKey,
        new: &StoreKey,
        record: &Record,
        expected: i64,
        now: SystemTime,
    ) -> Result<Option<RotateOutcome>, StoreError> {
        let failure = |error| sqlx_failure("rotate", error);
        let now_millis = to_millis(now, "now")?;
        let mut args = MySqlArguments::default();
        push(&mut args, new.as_bytes().as_slice())?;
        push_record(&mut args, record)?;
        push(&mut args, old.as_bytes().as_slice())?;
        push(&mut args, expected)?;
        push(&mut args, now_millis)?;
        let mut marker = MySqlArguments::default();
        push(&mut marker, old.as_bytes().as_slice())?;
        push(&mut marker, now_millis)?;
        push(&mut marker, now_millis)?;
        push(
            &mut marker,
            to_millis(now + ROTATION_MARKER_LIFETIME, "expires_at")?,
        )?;
        push(&mut marker, RECORD_FORMAT)?;

        let mut tx = self.pool.begin().await.map_err(failure)?;
        let moved = match sqlx::query_with(sql(&self.shared.sql.move_row), args)
            .execute(&mut *tx)
            .await
        {
            Ok(done) => done.rows_affected(),
            // The new key is taken: dropping the transaction rolls back, changing nothing.
            Err(error) if is_unique_violation(&error) => {
                return Ok(Some(RotateOutcome::Collision));
            }
            Err(error) => return Err(failure(error)),
        };
        if moved != 1 {
            return Ok(None);
        }
        sqlx::query_with(sql(&self.shared.sql.insert_marker), marker)
            .execute(&mut *tx)
            .await
            .map_err(failure)?;
        tx.commit().await.map_err(failure)?;
        Ok(Some(RotateOutcome::Rotated))
    }
}

impl fmt::Debug for MySqlStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MySqlStore")
            .field("table", &self.shared.table)
            .field("delete_batch_size", &self.shared.delete_batch_size)
            .finish_non_exhaustive()
    }
}

/// Why a conditional write on `key` touched no row, judged from the live version read just
/// after it. A live row with another version is a conflict. A live row with the expected
/// version can only be a record created after the write looked (versions never go back
/// otherwise): at the moment of the write there was no live record.
fn classify_miss(current: Option<i64>, expected: i64) -> MissReason {
    match current {
        Some(MARKER_VERSION) => MissReason::Moved,
        Some(version) if version != expected => MissReason::Conflict,
        _ => MissReason::Missing,
    }
}

/// [`ROTATION_MARKER_VERSION`] as stored.
const MARKER_VERSION: i64 = ROTATION_MARKER_VERSION as i64;

enum MissReason {
    Conflict,
    Missing,
    Moved,
}

impl SessionStore for MySqlStore {
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
                // Written by a later release: this one cannot read it, so the session is
                // missing here (the user logs in again) and the row is left alone.
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
                let mut args = MySqlArguments::default();
                push(&mut args, key.as_bytes().as_slice())?;
                push_record(&mut args, record)?;
                match sqlx::query_with(sql(&self.shared.sql.insert), args)
                    .execute(&self.pool)
                    .await
                {
                    Ok(_) => Ok(CreateOutcome::Created),
                    Err(error) if is_unique_violation(&error) => Ok(CreateOutcome::Collision),
                    Err(error) => Err(sqlx_failure("create", error)),
                }
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
            let expected = to_version(expected_version, "expected version")?;
            let now = to_millis(now, "now")?;
            let mut args = MySqlArguments::default();
            push_record(&mut args, record)?;
            push(&mut args, key.as_bytes().as_slice())?;
            push(&mut args, expected)?;
            push(&mut args, now)?;
            // rows_affected counts matched rows: sqlx connects with CLIENT_FOUND_ROWS.
            let updated = sqlx::query_with(sql(&self.shared.sql.save), args)
                .execute(&self.pool)
                .await
                .map_err(|error| sqlx_failure("save", error))?
                .rows_affected();
            if updated == 1 {
                return Ok(SaveOutcome::Saved);
            }
            // The update wrote nothing; a fresh look (after any concurrent writer
            // committed) tells a changed version from a vanished record.
            let current = self.live_version(key, now, "save").await?;
            Ok(match classify_miss(current, expected) {
                MissReason::Conflict => SaveOutcome::Conflict,
                MissReason::Missing => SaveOutcome::Missing,
                MissReason::Moved => SaveOutcome::Moved,
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
            let expected = to_version(expected_version, "expected version")?;
            let now = to_millis(now, "now")?;
            let updated = sqlx::query(sql(&self.shared.sql.touch))
                .bind(to_millis(last_active, "last_active")?)
                .bind(to_millis(expires_at, "expires_at")?)
                .bind(key.as_bytes().as_slice())
                .bind(now)
                .bind(expected)
                .execute(&self.pool)
                .await
                .map_err(|error| sqlx_failure("touch", error))?
                .rows_affected();
            if updated == 1 {
                return Ok(TouchOutcome::Touched);
            }
            let current = self.live_version(key, now, "touch").await?;
            Ok(match classify_miss(current, expected) {
                // A rotation marker: the session changed since the caller loaded it.
                MissReason::Conflict | MissReason::Moved => TouchOutcome::Conflict,
                MissReason::Missing => TouchOutcome::Missing,
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
                let deleted = sqlx::query(sql(&self.shared.sql.delete))
                    .bind(key.as_bytes().as_slice())
                    .execute(&self.pool)
                    .await
                    .map_err(|error| sqlx_failure("delete", error))?
                    .rows_affected();
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
                let expected = to_version(expected_version, "expected version")?;
                let now_millis = to_millis(now, "now")?;
                if old == new {
                    // Moving the row onto its own key would succeed in place, yet the new key is
                    // taken: by the very record being moved.
                    let current = self.live_version(old, now_millis, "rotate").await?;
                    return Ok(match current {
                        None => RotateOutcome::Missing,
                        Some(version) if version != expected => RotateOutcome::Conflict,
                        Some(_) => RotateOutcome::Collision,
                    });
                }
                let decided = match self.move_and_mark(old, new, record, expected, now).await {
                    // Rolled back by the server (a concurrent revocation); once more.
                    Err(error) if is_deadlock(&error) => {
                        self.move_and_mark(old, new, record, expected, now).await?
                    }
                    decided => decided?,
                };
                if let Some(outcome) = decided {
                    return Ok(outcome);
                }
                let current = self.live_version(old, now_millis, "rotate").await?;
                Ok(match classify_miss(current, expected) {
                    MissReason::Conflict => RotateOutcome::Conflict,
                    MissReason::Missing => RotateOutcome::Missing,
                    MissReason::Moved => RotateOutcome::Moved,
                })
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
                let deleted = within(self.shared.operation_timeout, "delete_expired", async {
                    sqlx::query(sql(&self.shared.sql.delete_expired_batch))
                        .bind(now)
                        .bind(batch)
                        .execute(&self.pool)
                        .await
                        .map_err(|error| sqlx_failure("delete_expired", error))
                })
                .await?
                .rows_affected();
                total += deleted;
                // A short batch means the backlog is gone.
                if deleted < u64::from(batch) {
                    return Ok(total);
                }
            }
        })
    }

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
mod tests {
    use super::*;

    #[test]
    fn a_miss_with_another_live_version_is_a_conflict() {
        assert!(matches!(classify_miss(Some(3), 2), MissReason::Conflict));
        assert!(matches!(classify_miss(None, 2), MissReason::Missing));
        assert!(matches!(classify_miss(Some(2), 2), MissReason::Missing));
        assert!(matches!(
            classify_miss(Some(MARKER_VERSION), 2),
            MissReason::Moved
        ));
    }
}
