//! [`PostgresStore`]: sessions in a PostgreSQL table, through `sqlx`.
//!
//! The schema, the migration and cleanup are documented on [`PostgresStore`], where
//! rustdoc shows them.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use sqlx::PgPool;
use sqlx::postgres::PgArguments;

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

pub use self::builder::PostgresStoreBuilder;
use self::error::sqlx_failure;
use self::names::index_name;
use self::row::{
    column, decode_record, is_known_format, push, record_arguments, to_millis, to_version,
};
use self::sql::{Statements, sql};

/// The schema used unless the builder says otherwise.
const DEFAULT_SCHEMA: &str = "public";
/// The table used unless the builder says otherwise.
const DEFAULT_TABLE: &str = "sessionware_sessions";
/// Rows deleted per statement by `delete_expired` unless the builder says otherwise.
const DEFAULT_DELETE_BATCH_SIZE: u32 = 1_000;
/// A [`SessionStore`] keeping sessions in a PostgreSQL table (feature `postgres`).
///
/// Every operation is one atomic statement (a rotation changes the row's key in place, so a
/// concurrent [`revoke_user`](UserIndex::revoke_user) never misses a rotating session),
/// and each is bounded by the [operation timeout](PostgresStoreBuilder::operation_timeout),
/// connecting included. Cloning is cheap: clones share the connection pool. `Debug` shows
/// the schema and table only, never the pool's connection options.
///
/// # Schema
///
/// [`PostgresStore::migrate`] creates this (shown for the default schema `public` and table
/// `sessionware_sessions`; both are configurable on the [builder](PostgresStoreBuilder)):
///
/// ```sql
/// CREATE SCHEMA IF NOT EXISTS "public";
///
/// CREATE TABLE IF NOT EXISTS "public"."sessionware_sessions" (
///     key         BYTEA  PRIMARY KEY CHECK (octet_length(key) = 32), -- SHA-256 of the session ID
///     version     BIGINT NOT NULL,  -- compare-and-swap counter
///     user_id     TEXT,             -- the logged-in user, if any
///     created_at  BIGINT NOT NULL,  -- milliseconds since the Unix epoch
///     last_active BIGINT NOT NULL,  -- milliseconds since the Unix epoch
///     expires_at  BIGINT NOT NULL,  -- milliseconds since the Unix epoch
///     expiry      JSONB,            -- the per-session expiry override, if any
///     data        BYTEA  NOT NULL,  -- the session's values: JSON bytes, kept verbatim
///     label       TEXT,             -- the application's label of the session, if any
///     format      SMALLINT NOT NULL DEFAULT 0 -- the row's format (see "Upgrades")
/// );
///
/// CREATE INDEX IF NOT EXISTS "sessionware_sessions_expires_at_idx"
///     ON "public"."sessionware_sessions" (expires_at);
/// CREATE INDEX IF NOT EXISTS "sessionware_sessions_user_id_idx"
///     ON "public"."sessionware_sessions" (user_id) WHERE user_id IS NOT NULL;
/// ```
///
/// Times are kept as whole milliseconds since 1970, rounded down: a record never outlives
/// the deadline it was given, and whole-millisecond times come back exactly. A time before
/// 1970 (from a [`Clock`](crate::Clock) set before the epoch, say) is refused with
/// [`StoreError::TimeOutOfRange`], and a row holding a negative time is
/// [`StoreError::Corrupt`]. Schema and table names are the
/// only text ever formatted into SQL; they are checked to be plain identifiers and always
/// double-quoted (so they are case-sensitive). Every value is a bound parameter. Index
/// names are the table name plus a suffix; for a table name too long for that, a prefix of
/// it and a stable hash. PostgreSQL `TEXT` cannot hold a NUL character, so a user name
/// containing one fails with [`StoreError::Backend`].
///
/// # Errors
///
/// Every operation fails with a [`StoreError`]:
///
/// - [`Unavailable`](StoreError::Unavailable): the server cannot be reached, the connection
///   was refused, reset or closed, TLS failed, the pool is closed or timed out waiting for a
///   connection, or the server is shutting down or starting up (SQLSTATE class `08`, `57P01`
///   to `57P03`); the source is the [`sqlx::Error`];
/// - [`Timeout`](StoreError::Timeout): the operation did not finish within the
///   [operation timeout](PostgresStoreBuilder::operation_timeout);
/// - [`Corrupt`](StoreError::Corrupt): a row does not decode (a column of the wrong type, a
///   negative time or version, an `expiry` that is not valid JSON for an
///   [`Expiry`](crate::Expiry)), naming the column;
/// - [`UnexpectedReply`](StoreError::UnexpectedReply): a reply of unexpected shape (a missing
///   column, no row where one is required, an unknown type): usually a table that is not
///   this crate's schema;
/// - [`TimeOutOfRange`](StoreError::TimeOutOfRange): a time to store, or the `now` passed in,
///   is before 1970;
/// - [`Backend`](StoreError::Backend): any other error, such as a statement the server
///   refuses (a missing table or privilege, a NUL in a user name).
///
/// # Upgrades
///
/// Each row records the format it was written in: 1 in this release, which added `label`
/// and `format`. On a table of a release before formats, [`migrate`](PostgresStore::migrate)
/// adds the two columns in place:
///
/// ```sql
/// ALTER TABLE "public"."sessionware_sessions"
///     ADD COLUMN IF NOT EXISTS label TEXT,
///     ADD COLUMN IF NOT EXISTS format SMALLINT NOT NULL DEFAULT 0;
/// ```
///
/// Both are nullable or have a constant default, so PostgreSQL (11 or later) adds them
/// without rewriting the table, and every live session survives: its row reads as format 0
/// (no label), and its next save writes format 1. Instances of the older release still running during a rolling upgrade
/// keep working against the upgraded table (they name their columns, and their rows get
/// format 0). This release's statements need the new columns: run `migrate()` before (or as)
/// it starts serving. A row of a format this release does not know, written by a later
/// release, is treated as missing by [`load`](SessionStore::load): that user logs in again,
/// and the row is left alone until it expires. Like the table, the upgrade needs the table's
/// owner; a role that only uses the table can run `migrate()` once it is done.
///
/// # Running the migration
///
/// Call [`PostgresStore::migrate`] once at start-up, before serving requests. It is
/// idempotent and safe to run from several instances at once: it takes a transaction-scoped
/// advisory lock and creates only what is missing, so an application role without `CREATE`
/// privileges can run it once the table exists.
///
/// ```no_run
/// use sessionware::PostgresStore;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = sqlx::PgPool::connect("postgres://app@localhost/app").await?;
/// let store = PostgresStore::builder(pool)
///     .schema("auth")
///     .table("sessions")
///     .build()?; // a `ConfigError` if a name is not a plain identifier
/// store.migrate().await?; // a `StoreError` if the server refuses
/// # Ok(())
/// # }
/// ```
///
/// With the defaults, [`connect`](Self::connect) makes the pool:
///
/// ```no_run
/// use sessionware::PostgresStore;
///
/// # async fn run() -> Result<(), sessionware::store::StoreError> {
/// let store = PostgresStore::connect("postgres://app@localhost/app").await?;
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
/// (1,000 rows by default, see [`PostgresStoreBuilder::delete_batch_size`]), each its own
/// short statement that skips rows locked by live requests, so a large backlog never locks
/// the table for long.
///
/// ```no_run
/// use std::time::{Duration, SystemTime};
/// use sessionware::{PostgresStore, SessionStore};
///
/// fn spawn_cleanup(store: PostgresStore) -> tokio::task::JoinHandle<()> {
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
pub struct PostgresStore {
    pool: PgPool,
    shared: Arc<Shared>,
}

/// What clones of a store share: the configuration and the SQL built from it once.
struct Shared {
    schema: String,
    table: String,
    delete_batch_size: u32,
    operation_timeout: Duration,
    expires_index: String,
    user_index: String,
    sql: Statements,
}

impl Shared {
    fn new(
        schema: String,
        table: String,
        delete_batch_size: u32,
        operation_timeout: Duration,
    ) -> Self {
        let expires_index = index_name(&table, "expires_at_idx");
        let user_index = index_name(&table, "user_id_idx");
        let sql = Statements::new(&schema, &table, &expires_index, &user_index);
        Self {
            schema,
            table,
            delete_batch_size,
            operation_timeout,
            expires_index,
            user_index,
            sql,
        }
    }
}

impl PostgresStore {
    /// A store on `pool`, using the table `public.sessionware_sessions`, deleting expired
    /// rows 1,000 at a time and bounding each operation by 2 seconds. Run
    /// [`migrate`](Self::migrate) before first use.
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            shared: Arc::new(Shared::new(
                DEFAULT_SCHEMA.to_owned(),
                DEFAULT_TABLE.to_owned(),
                DEFAULT_DELETE_BATCH_SIZE,
                DEFAULT_OPERATION_TIMEOUT,
            )),
        }
    }

    /// A builder for a store on `pool` with a custom schema, table, cleanup batch size or
    /// operation timeout. Its [`build`](PostgresStoreBuilder::build) checks them and fails
    /// with a [`ConfigError`](crate::ConfigError).
    pub fn builder(pool: PgPool) -> PostgresStoreBuilder {
        PostgresStoreBuilder {
            pool,
            schema: DEFAULT_SCHEMA.to_owned(),
            table: DEFAULT_TABLE.to_owned(),
            delete_batch_size: DEFAULT_DELETE_BATCH_SIZE,
            operation_timeout: DEFAULT_OPERATION_TIMEOUT,
        }
    }

    /// A builder for a store on a pool that connects to `url` (a
    /// `postgres://user:password@host/database` URL) when the store first needs it, so that
    /// an application can set the schema or table without depending on `sqlx` itself:
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = sessionware::PostgresStore::builder_for_url("postgres://app@db/app")?
    ///     .schema("auth")
    ///     .table("sessions")
    ///     .build()?;
    /// store.migrate().await?; // connects here
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// Nothing is connected yet: an unreachable server or a wrong password shows at the
    /// first operation ([`migrate`](Self::migrate), or [`ping`](SessionStore::ping) for a
    /// check at start), as a [`StoreError`]. Waiting for a connection is bounded by 2
    /// seconds, and each operation by the [operation
    /// timeout](PostgresStoreBuilder::operation_timeout). With `sqlx` at hand, the same is
    /// `PgPoolOptions::new().acquire_timeout(...).connect_lazy(url)` passed to
    /// [`builder`](Self::builder), which lets you set the pool's size too.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidStoreSetting`](crate::ConfigError::InvalidStoreSetting) (setting
    /// `url`) if `url` is not a PostgreSQL URL.
    pub fn builder_for_url(url: &str) -> Result<PostgresStoreBuilder, crate::ConfigError> {
        // The URL itself, which may hold a password, is never repeated in the error.
        let invalid = |reason: String| crate::ConfigError::InvalidStoreSetting {
            setting: "url",
            reason,
        };
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(invalid(
                "not a PostgreSQL URL: it must start with postgres:// or postgresql://".to_owned(),
            ));
        }
        let options: sqlx::postgres::PgConnectOptions = url
            .parse()
            .map_err(|error| invalid(format!("not a PostgreSQL URL ({error})")))?;
        let pool = sqlx::postgres::PgPoolOptions::new()
            .acquire_timeout(DEFAULT_OPERATION_TIMEOUT)
            .connect_lazy_with(options);
        Ok(Self::builder(pool))
    }

    /// Connects a pool with sqlx's default pool options to `url` (a
    /// `postgres://user:password@host/database` URL) and returns a store with the defaults of
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
            sqlx::postgres::PgPoolOptions::new()
                .acquire_timeout(DEFAULT_OPERATION_TIMEOUT)
                .connect(url)
                .await
                .map_err(|error| sqlx_failure("connect", error))
        })
        .await?;
        Ok(Self::new(pool))
    }

    /// The connection pool the store uses.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The schema holding the sessions table.
    pub fn schema(&self) -> &str {
        &self.shared.schema
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
        let mut args = PgArguments::default();
        push(&mut args, key.as_bytes().as_slice())?;
        push(&mut args, now)?;
        let row = sqlx::query_with(sql(&self.shared.sql.live_version), args)
            .fetch_optional(&self.pool)
            .await
            .map_err(|error| sqlx_failure(operation, error))?;
        row.map(|row| column(&row, "version", operation))
            .transpose()
    }
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("schema", &self.shared.schema)
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

impl SessionStore for PostgresStore {
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
                let args = record_arguments(key, record)?;
                let inserted = sqlx::query_with(sql(&self.shared.sql.insert), args)
                    .execute(&self.pool)
                    .await
                    .map_err(|error| sqlx_failure("create", error))?
                    .rows_affected();
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
            let expected = to_version(expected_version, "expected version")?;
            let now = to_millis(now, "now")?;
            let mut args = record_arguments(key, record)?;
            push(&mut args, expected)?;
            push(&mut args, now)?;
            let updated = sqlx::query_with(sql(&self.shared.sql.save), args)
                .execute(&self.pool)
                .await
                .map_err(|error| sqlx_failure("save", error))?
                .rows_affected();
            if updated == 1 {
                return Ok(SaveOutcome::Saved);
            }
            // The update wrote nothing; a fresh look (a new snapshot, after any concurrent
            // writer committed) tells a changed version from a vanished record.
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
                .bind(key.as_bytes().as_slice())
                .bind(to_millis(last_active, "last_active")?)
                .bind(to_millis(expires_at, "expires_at")?)
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
                let mut args = record_arguments(new, record)?;
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

                push(&mut args, old.as_bytes().as_slice())?;
                push(&mut args, expected)?;
                push(&mut args, now_millis)?;
                push(
                    &mut args,
                    to_millis(now + ROTATION_MARKER_LIFETIME, "expires_at")?,
                )?;
                let moved = match sqlx::query_with(sql(&self.shared.sql.rotate), args)
                    .execute(&self.pool)
                    .await
                {
                    Ok(done) => done.rows_affected(),
                    // The new key is taken (unique_violation): the statement changed nothing.
                    Err(error)
                        if error
                            .as_database_error()
                            .is_some_and(|error| error.code().as_deref() == Some("23505")) =>
                    {
                        return Ok(RotateOutcome::Collision);
                    }
                    Err(error) => return Err(sqlx_failure("rotate", error)),
                };
                if moved == 1 {
                    return Ok(RotateOutcome::Rotated);
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
                        .bind(i64::from(batch))
                        .execute(&self.pool)
                        .await
                        .map_err(|error| sqlx_failure("delete_expired", error))
                })
                .await?
                .rows_affected();
                total += deleted;
                // A short batch means the backlog is gone, apart from rows other transactions
                // hold locked; those are left for the next run rather than waited for.
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
