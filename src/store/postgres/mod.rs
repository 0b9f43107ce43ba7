//! [`PostgresStore`]: sessions in a PostgreSQL table, through `sqlx`.
//!
//! The schema, the migration and cleanup are documented on [`PostgresStore`], where
//! rustdoc shows them.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::encode::Encode;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::types::Type;
use sqlx::{Arguments, AssertSqlSafe, PgPool, Postgres, Row};

use crate::error::{ConfigError, SessionError};
use crate::expiry::Expiry;
use crate::id::{SessionHandle, StoreKey};
use crate::store::{
    CreateOutcome, DEFAULT_OPERATION_TIMEOUT, LoadOutcome, ROTATION_MARKER_LIFETIME,
    ROTATION_MARKER_VERSION, Record, RotateOutcome, SaveOutcome, SessionInfo, SessionStore,
    TouchOutcome, within,
};

/// The schema used unless the builder says otherwise.
const DEFAULT_SCHEMA: &str = "public";
/// The table used unless the builder says otherwise.
const DEFAULT_TABLE: &str = "sessionware_sessions";
/// Rows deleted per statement by `delete_expired` unless the builder says otherwise.
const DEFAULT_DELETE_BATCH_SIZE: u32 = 1_000;
/// PostgreSQL's `NAMEDATALEN - 1`: longer identifiers are silently truncated by the server.
const MAX_IDENTIFIER_LEN: usize = 63;
/// The advisory lock key serializing migrations of every sessionware table in a database
/// (the ASCII bytes of "sessionw"). One key for all tables, because two tables in one new
/// schema race on creating that schema.
const MIGRATION_LOCK_KEY: i64 = 0x7365_7373_696f_6e77;

/// Which schema, table and index names already exist.
const EXISTING_OBJECTS: &str = "\
SELECT
    EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1),
    EXISTS (SELECT 1 FROM pg_catalog.pg_class c
            JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = $1 AND c.relname = $2),
    EXISTS (SELECT 1 FROM pg_catalog.pg_class c
            JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = $1 AND c.relname = $3),
    EXISTS (SELECT 1 FROM pg_catalog.pg_class c
            JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = $1 AND c.relname = $4)";

/// A [`SessionStore`] keeping sessions in a PostgreSQL table (feature `postgres`).
///
/// Every operation is one atomic statement (a rotation changes the row's key in place, so a
/// concurrent [`revoke_user`](SessionStore::revoke_user) never misses a rotating session),
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
///     data        BYTEA  NOT NULL   -- the session's values: JSON bytes, kept verbatim
/// );
///
/// CREATE INDEX IF NOT EXISTS "sessionware_sessions_expires_at_idx"
///     ON "public"."sessionware_sessions" (expires_at);
/// CREATE INDEX IF NOT EXISTS "sessionware_sessions_user_id_idx"
///     ON "public"."sessionware_sessions" (user_id) WHERE user_id IS NOT NULL;
/// ```
///
/// Times are kept to the millisecond, rounded down: a record never outlives the deadline it
/// was given, and whole-millisecond times come back exactly. Schema and table names are the
/// only text ever formatted into SQL; they are checked to be plain identifiers and always
/// double-quoted (so they are case-sensitive). Every value is a bound parameter. Index
/// names are the table name plus a suffix; for a table name too long for that, a prefix of
/// it and a stable hash. PostgreSQL `TEXT` cannot hold a NUL character, so a user name
/// containing one fails with [`SessionError::Store`].
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
///     .build()?;
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

/// The store's SQL, built once from the validated schema and table names. Kept as
/// `Arc<str>` so each query borrows it with a reference-count bump.
struct Statements {
    create_schema: Arc<str>,
    create_table: Arc<str>,
    create_expires_index: Arc<str>,
    create_user_index: Arc<str>,
    load: Arc<str>,
    insert: Arc<str>,
    save: Arc<str>,
    live_version: Arc<str>,
    touch: Arc<str>,
    delete: Arc<str>,
    rotate: Arc<str>,
    delete_expired_batch: Arc<str>,
    sessions_of: Arc<str>,
    revoke_user: Arc<str>,
}

impl Statements {
    /// `schema` and `table` must have passed [`check_identifier`]: they are formatted into
    /// SQL inside double quotes, which is injection-free only for plain identifiers.
    fn new(schema: &str, table: &str, expires_index: &str, user_index: &str) -> Self {
        let t = format!("\"{schema}\".\"{table}\"");
        let sql = |text: String| Arc::<str>::from(text);
        Self {
            create_schema: sql(format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"")),
            create_table: sql(format!(
                "CREATE TABLE IF NOT EXISTS {t} (
                    key         BYTEA  PRIMARY KEY CHECK (octet_length(key) = 32),
                    version     BIGINT NOT NULL,
                    user_id     TEXT,
                    created_at  BIGINT NOT NULL,
                    last_active BIGINT NOT NULL,
                    expires_at  BIGINT NOT NULL,
                    expiry      JSONB,
                    data        BYTEA  NOT NULL
                )"
            )),
            create_expires_index: sql(format!(
                "CREATE INDEX IF NOT EXISTS \"{expires_index}\" ON {t} (expires_at)"
            )),
            create_user_index: sql(format!(
                "CREATE INDEX IF NOT EXISTS \"{user_index}\" ON {t} (user_id) \
                 WHERE user_id IS NOT NULL"
            )),
            load: sql(format!(
                "SELECT version, user_id, created_at, last_active, expires_at, \
                 expiry::text AS expiry, data FROM {t} WHERE key = $1"
            )),
            insert: sql(format!(
                "INSERT INTO {t} \
                 (key, version, user_id, created_at, last_active, expires_at, expiry, data) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8) \
                 ON CONFLICT (key) DO NOTHING"
            )),
            save: sql(format!(
                "UPDATE {t} SET version = $2, user_id = $3, created_at = $4, \
                 last_active = $5, expires_at = $6, expiry = $7::jsonb, data = $8 \
                 WHERE key = $1 AND version = $9 AND expires_at > $10"
            )),
            live_version: sql(format!(
                "SELECT version FROM {t} WHERE key = $1 AND expires_at > $2"
            )),
            touch: sql(format!(
                "UPDATE {t} SET last_active = $2, expires_at = $3 \
                 WHERE key = $1 AND expires_at > $4 AND version = $5"
            )),
            delete: sql(format!("DELETE FROM {t} WHERE key = $1")),
            // The row changes key in place: a concurrent `revoke_user` that waits for the
            // row lock re-checks its condition on the moved row and deletes it, where a
            // DELETE plus INSERT would leave it a row its snapshot never saw.
            // In the same statement, a rotation marker takes the old key.
            rotate: sql(format!(
                "WITH moved AS (\
                 UPDATE {t} SET key = $1, version = $2, user_id = $3, created_at = $4, \
                 last_active = $5, expires_at = $6, expiry = $7::jsonb, data = $8 \
                 WHERE key = $9 AND version = $10 AND expires_at > $11 \
                 AND version <> {ROTATION_MARKER_VERSION} RETURNING 1) \
                 INSERT INTO {t} \
                 (key, version, user_id, created_at, last_active, expires_at, expiry, data) \
                 SELECT $9, {ROTATION_MARKER_VERSION}, NULL, $11, $11, $12, NULL, ''::bytea \
                 FROM moved"
            )),
            delete_expired_batch: sql(format!(
                "DELETE FROM {t} WHERE key IN (\
                 SELECT key FROM {t} WHERE expires_at <= $1 \
                 LIMIT $2 FOR UPDATE SKIP LOCKED)"
            )),
            sessions_of: sql(format!(
                "SELECT key, created_at, last_active, expires_at FROM {t} \
                 WHERE user_id = $1 AND expires_at > $2 ORDER BY created_at, key"
            )),
            // Expired rows of the user go too, but only live ones are counted: they are the
            // sessions that were actually revoked.
            revoke_user: sql(format!(
                "WITH revoked AS (\
                 DELETE FROM {t} WHERE user_id = $1 AND key IS DISTINCT FROM $2 \
                 RETURNING expires_at) \
                 SELECT count(*) FILTER (WHERE expires_at > $3) FROM revoked"
            )),
        }
    }
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

/// Wraps SQL built by [`Statements::new`] for sqlx, which accepts only literal SQL unless
/// told otherwise.
fn sql(text: &Arc<str>) -> AssertSqlSafe<Arc<str>> {
    // Safe: the only dynamic parts are schema and table names checked by
    // `check_identifier` and double-quoted; every value is a bound parameter.
    AssertSqlSafe(Arc::clone(text))
}

impl PostgresStore {
    /// A store on `pool`, using the table `public.sessionware_sessions` and deleting expired
    /// rows 1,000 at a time. Run [`migrate`](Self::migrate) before first use.
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

    /// A builder for a store on `pool` with a custom schema, table or cleanup batch size.
    pub fn builder(pool: PgPool) -> PostgresStoreBuilder {
        PostgresStoreBuilder {
            pool,
            schema: DEFAULT_SCHEMA.to_owned(),
            table: DEFAULT_TABLE.to_owned(),
            delete_batch_size: DEFAULT_DELETE_BATCH_SIZE,
            operation_timeout: DEFAULT_OPERATION_TIMEOUT,
        }
    }

    /// Connects a pool with sqlx's default pool options to `url` (a
    /// `postgres://user:password@host/database` URL) and returns a store with the defaults of
    /// [`new`](Self::new). Run [`migrate`](Self::migrate) before first use.
    ///
    /// # Errors
    ///
    /// [`SessionError::Store`] if the URL is invalid or the server refuses the connection,
    /// [`SessionError::StoreTimeout`] if it does not answer within 2 seconds.
    pub async fn connect(url: &str) -> Result<Self, SessionError> {
        let pool = within(DEFAULT_OPERATION_TIMEOUT, "connect", async {
            sqlx::postgres::PgPoolOptions::new()
                .acquire_timeout(DEFAULT_OPERATION_TIMEOUT)
                .connect(url)
                .await
                .map_err(SessionError::store)
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

    /// Creates the schema, the table and its indexes if they do not exist yet.
    ///
    /// Idempotent: run it at every start. Concurrent runs (several instances starting at
    /// once) are serialized by a transaction-scoped advisory lock, and objects that already
    /// exist are not created again, so once the table exists the role running this needs no
    /// `CREATE` privilege. The SQL is shown in the [type documentation](PostgresStore#schema).
    ///
    /// # Errors
    ///
    /// [`SessionError::Store`] if the server cannot be reached or refuses a statement (for
    /// example, the role may not create the schema or table).
    pub async fn migrate(&self) -> Result<(), SessionError> {
        let shared = &*self.shared;
        let mut tx = self.pool.begin().await.map_err(SessionError::store)?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(MIGRATION_LOCK_KEY)
            .execute(&mut *tx)
            .await
            .map_err(SessionError::store)?;
        let (has_schema, has_table, has_expires_index, has_user_index): (bool, bool, bool, bool) =
            sqlx::query_as(EXISTING_OBJECTS)
                .bind(&shared.schema)
                .bind(&shared.table)
                .bind(&shared.expires_index)
                .bind(&shared.user_index)
                .fetch_one(&mut *tx)
                .await
                .map_err(SessionError::store)?;
        let steps = [
            (has_schema, &shared.sql.create_schema),
            (has_table, &shared.sql.create_table),
            (has_expires_index, &shared.sql.create_expires_index),
            (has_user_index, &shared.sql.create_user_index),
        ];
        for (exists, statement) in steps {
            if !exists {
                sqlx::query(sql(statement))
                    .persistent(false)
                    .execute(&mut *tx)
                    .await
                    .map_err(SessionError::store)?;
            }
        }
        tx.commit().await.map_err(SessionError::store)
    }

    /// The version of the live record under `key` at `now`, if there is one.
    async fn live_version<'c, E>(
        &self,
        executor: E,
        key: &StoreKey,
        now: i64,
    ) -> Result<Option<i64>, SessionError>
    where
        E: sqlx::PgExecutor<'c>,
    {
        let mut args = PgArguments::default();
        push(&mut args, key.as_bytes().as_slice())?;
        push(&mut args, now)?;
        sqlx::query_scalar_with(sql(&self.shared.sql.live_version), args)
            .fetch_optional(executor)
            .await
            .map_err(SessionError::store)
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

/// Configures a [`PostgresStore`]; made by [`PostgresStore::builder`].
///
/// ```no_run
/// # async fn run(pool: sqlx::PgPool) -> Result<(), Box<dyn std::error::Error>> {
/// let store = sessionware::PostgresStore::builder(pool)
///     .schema("auth")
///     .table("sessions")
///     .delete_batch_size(5_000)
///     .build()?;
/// store.migrate().await?;
/// # Ok(())
/// # }
/// ```
#[must_use]
pub struct PostgresStoreBuilder {
    pool: PgPool,
    schema: String,
    table: String,
    delete_batch_size: u32,
    operation_timeout: Duration,
}

impl PostgresStoreBuilder {
    /// The schema holding the sessions table. Default: `public`.
    ///
    /// Must be a plain identifier: an ASCII letter or `_`, then ASCII letters, digits or
    /// `_`, at most 63 bytes. It is used double-quoted, so it is case-sensitive. Checked by
    /// [`build`](Self::build).
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// The name of the sessions table. Default: `sessionware_sessions`.
    ///
    /// The same rules as for [`schema`](Self::schema) apply. Checked by
    /// [`build`](Self::build).
    pub fn table(mut self, table: impl Into<String>) -> Self {
        self.table = table.into();
        self
    }

    /// How many expired rows [`delete_expired`](SessionStore::delete_expired) deletes per
    /// statement. Default: 1,000.
    ///
    /// Each batch is its own short statement that skips rows locked by live requests, so a
    /// large backlog of expired sessions never holds locks on many rows at once. Larger
    /// batches purge a backlog in fewer round trips; smaller ones keep each statement
    /// shorter. Must not be zero; checked by [`build`](Self::build).
    pub fn delete_batch_size(mut self, rows: u32) -> Self {
        self.delete_batch_size = rows;
        self
    }

    /// The longest any one store operation may take, waiting for a pooled connection (or
    /// connecting) included; past it the operation is abandoned with
    /// [`SessionError::StoreTimeout`]. Default: 2 seconds.
    ///
    /// While the server is down or paused, every request that needs the store then fails
    /// within this bound instead of piling up. Must not be zero; checked by
    /// [`build`](Self::build).
    pub fn operation_timeout(mut self, timeout: Duration) -> Self {
        self.operation_timeout = timeout;
        self
    }

    /// Checks the configuration and builds the store.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidStoreSetting`], naming the problem and the fix, if the schema
    /// or table name is not a plain identifier (see [`schema`](Self::schema)) or the batch
    /// size is zero. Names are refused rather than escaped: they are the only text ever formatted
    /// into the store's SQL.
    pub fn build(self) -> Result<PostgresStore, ConfigError> {
        check_identifier("schema", &self.schema)?;
        check_identifier("table", &self.table)?;
        if self.delete_batch_size == 0 {
            return Err(ConfigError::InvalidStoreSetting {
                setting: "delete_batch_size",
                reason: "must be at least 1".to_owned(),
            });
        }
        if self.operation_timeout.is_zero() {
            return Err(ConfigError::InvalidStoreSetting {
                setting: "operation_timeout",
                reason: "must be greater than zero".to_owned(),
            });
        }
        Ok(PostgresStore {
            pool: self.pool,
            shared: Arc::new(Shared::new(
                self.schema,
                self.table,
                self.delete_batch_size,
                self.operation_timeout,
            )),
        })
    }
}

impl fmt::Debug for PostgresStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStoreBuilder")
            .field("schema", &self.schema)
            .field("table", &self.table)
            .field("delete_batch_size", &self.delete_batch_size)
            .field("operation_timeout", &self.operation_timeout)
            .finish_non_exhaustive()
    }
}

/// Refuses anything but a plain identifier: the name is formatted into SQL.
fn check_identifier(kind: &'static str, name: &str) -> Result<(), ConfigError> {
    let mut bytes = name.bytes();
    let valid = name.len() <= MAX_IDENTIFIER_LEN
        && bytes
            .next()
            .is_some_and(|first| first.is_ascii_alphabetic() || first == b'_')
        && bytes.all(|byte| byte.is_ascii_alphanumeric() || byte == b'_');
    if valid {
        Ok(())
    } else {
        Err(ConfigError::InvalidStoreSetting {
            setting: kind,
            reason: format!(
                "{name:?} is not a plain PostgreSQL identifier: use an ASCII letter or `_` \
                 followed by ASCII letters, digits or `_`, at most {MAX_IDENTIFIER_LEN} bytes"
            ),
        })
    }
}

/// The name of one of the table's indexes. PostgreSQL truncates names to 63 bytes, which
/// could make the two index names equal (or equal to the table's); a long table name is
/// therefore shortened and disambiguated with a stable hash of the full name.
fn index_name(table: &str, suffix: &str) -> String {
    let name = format!("{table}_{suffix}");
    if name.len() <= MAX_IDENTIFIER_LEN {
        return name;
    }
    // FNV-1a: stable across Rust and crate versions, unlike `DefaultHasher`, so the name
    // computed by a later release finds the index an earlier one created.
    let hash = table.bytes().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    });
    let keep = MAX_IDENTIFIER_LEN - suffix.len() - 10;
    // `table` is ASCII (checked by `check_identifier`), so any byte index is a char boundary.
    let prefix = table.get(..keep).unwrap_or(table);
    format!("{prefix}_{hash:08x}_{suffix}")
}

/// Errors raised by the store itself, reported as the source of a [`SessionError::Store`].
#[derive(Debug)]
enum StoreError {
    /// A time or version that does not fit the table's `BIGINT` columns.
    OutOfRange { field: &'static str },
    /// A row that does not decode into a record.
    MalformedRow {
        problem: &'static str,
        source: Option<serde_json::Error>,
    },
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OutOfRange { field } => write!(
                f,
                "{field} does not fit the sessions table (a 64-bit integer of milliseconds \
                 or versions)"
            ),
            Self::MalformedRow { problem, .. } => {
                write!(f, "malformed row in the sessions table: {problem}")
            }
        }
    }
}

impl StdError for StoreError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Self::MalformedRow {
                source: Some(source),
                ..
            } => Some(source),
            _ => None,
        }
    }
}

fn malformed(problem: &'static str) -> SessionError {
    SessionError::store(StoreError::MalformedRow {
        problem,
        source: None,
    })
}

/// Milliseconds since the epoch, rounded down (also before the epoch), so a stored deadline
/// is never later than the real one.
fn to_millis(time: SystemTime, field: &'static str) -> Result<i64, SessionError> {
    let millis = match time.duration_since(UNIX_EPOCH) {
        Ok(since) => i128::try_from(since.as_millis()).ok(),
        Err(before) => {
            let before = before.duration();
            let partial = i128::from(before.subsec_nanos() % 1_000_000 != 0);
            i128::try_from(before.as_millis())
                .ok()
                .map(|whole| -(whole + partial))
        }
    };
    millis
        .and_then(|millis| i64::try_from(millis).ok())
        .ok_or_else(|| SessionError::store(StoreError::OutOfRange { field }))
}

/// The time `millis` milliseconds after the epoch, as read back from a row.
fn from_millis(millis: i64, problem: &'static str) -> Result<SystemTime, SessionError> {
    let offset = Duration::from_millis(millis.unsigned_abs());
    let time = if millis >= 0 {
        UNIX_EPOCH.checked_add(offset)
    } else {
        UNIX_EPOCH.checked_sub(offset)
    };
    time.ok_or_else(|| malformed(problem))
}

fn to_version(version: u64, field: &'static str) -> Result<i64, SessionError> {
    i64::try_from(version).map_err(|_| SessionError::store(StoreError::OutOfRange { field }))
}

fn push<'t, T>(args: &mut PgArguments, value: T) -> Result<(), SessionError>
where
    T: Encode<'t, Postgres> + Type<Postgres>,
{
    args.add(value).map_err(SessionError::store)
}

/// Binds `$1` to the key and `$2`..`$8` to the record's columns, in table order.
fn record_arguments(key: &StoreKey, record: &Record) -> Result<PgArguments, SessionError> {
    let expiry = record
        .expiry
        .map(|expiry| serde_json::to_string(&expiry))
        .transpose()
        .map_err(SessionError::store)?;
    let mut args = PgArguments::default();
    push(&mut args, key.as_bytes().as_slice())?;
    push(&mut args, to_version(record.version, "version")?)?;
    push(&mut args, record.user.as_deref())?;
    push(&mut args, to_millis(record.created_at, "created_at")?)?;
    push(&mut args, to_millis(record.last_active, "last_active")?)?;
    push(&mut args, to_millis(record.expires_at, "expires_at")?)?;
    push(&mut args, expiry)?;
    push(&mut args, record.data.as_slice())?;
    Ok(args)
}

fn column<'r, T>(row: &'r PgRow, name: &str) -> Result<T, SessionError>
where
    T: sqlx::Decode<'r, Postgres> + Type<Postgres>,
{
    row.try_get(name).map_err(SessionError::store)
}

fn decode_record(row: &PgRow) -> Result<Record, SessionError> {
    let version =
        u64::try_from(column::<i64>(row, "version")?).map_err(|_| malformed("negative version"))?;
    let expiry = column::<Option<String>>(row, "expiry")?
        .map(|text| serde_json::from_str::<Expiry>(&text))
        .transpose()
        .map_err(|source| {
            SessionError::store(StoreError::MalformedRow {
                problem: "expiry is not a valid Expiry",
                source: Some(source),
            })
        })?;
    Ok(Record {
        version,
        user: column(row, "user_id")?,
        created_at: from_millis(column(row, "created_at")?, "created_at out of range")?,
        last_active: from_millis(column(row, "last_active")?, "last_active out of range")?,
        expires_at: from_millis(column(row, "expires_at")?, "expires_at out of range")?,
        expiry,
        data: column(row, "data")?,
    })
}

fn decode_info(row: &PgRow) -> Result<SessionInfo, SessionError> {
    let key: Vec<u8> = column(row, "key")?;
    let key = <[u8; 32]>::try_from(key.as_slice()).map_err(|_| malformed("key is not 32 bytes"))?;
    Ok(SessionInfo {
        handle: SessionHandle::from_store_key(StoreKey::from_bytes(key)),
        created_at: from_millis(column(row, "created_at")?, "created_at out of range")?,
        last_active: from_millis(column(row, "last_active")?, "last_active out of range")?,
        expires_at: from_millis(column(row, "expires_at")?, "expires_at out of range")?,
    })
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
    async fn load(&self, key: &StoreKey, now: SystemTime) -> Result<LoadOutcome, SessionError> {
        within(self.shared.operation_timeout, "load", async {
            let now = to_millis(now, "now")?;
            let row = sqlx::query(sql(&self.shared.sql.load))
                .bind(key.as_bytes().as_slice())
                .fetch_optional(&self.pool)
                .await
                .map_err(SessionError::store)?;
            let Some(row) = row else {
                return Ok(LoadOutcome::Missing);
            };
            if column::<i64>(&row, "expires_at")? <= now {
                return Ok(LoadOutcome::Expired);
            }
            if column::<i64>(&row, "version")? == MARKER_VERSION {
                return Ok(LoadOutcome::Moved);
            }
            decode_record(&row).map(LoadOutcome::Found)
        })
        .await
    }

    async fn create(&self, key: &StoreKey, record: &Record) -> Result<CreateOutcome, SessionError> {
        within(self.shared.operation_timeout, "create", async {
            let args = record_arguments(key, record)?;
            let inserted = sqlx::query_with(sql(&self.shared.sql.insert), args)
                .execute(&self.pool)
                .await
                .map_err(SessionError::store)?
                .rows_affected();
            Ok(if inserted == 1 {
                CreateOutcome::Created
            } else {
                CreateOutcome::Collision
            })
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
        within(self.shared.operation_timeout, "save", async {
            let expected = to_version(expected_version, "expected version")?;
            let now = to_millis(now, "now")?;
            let mut args = record_arguments(key, record)?;
            push(&mut args, expected)?;
            push(&mut args, now)?;
            let updated = sqlx::query_with(sql(&self.shared.sql.save), args)
                .execute(&self.pool)
                .await
                .map_err(SessionError::store)?
                .rows_affected();
            if updated == 1 {
                return Ok(SaveOutcome::Saved);
            }
            // The update wrote nothing; a fresh look (a new snapshot, after any concurrent
            // writer committed) tells a changed version from a vanished record.
            let current = self.live_version(&self.pool, key, now).await?;
            Ok(match classify_miss(current, expected) {
                MissReason::Conflict => SaveOutcome::Conflict,
                MissReason::Missing => SaveOutcome::Missing,
                MissReason::Moved => SaveOutcome::Moved,
            })
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
        within(self.shared.operation_timeout, "touch", async {
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
                .map_err(SessionError::store)?
                .rows_affected();
            if updated == 1 {
                return Ok(TouchOutcome::Touched);
            }
            let current = self.live_version(&self.pool, key, now).await?;
            Ok(match classify_miss(current, expected) {
                // A rotation marker: the session changed since the caller loaded it.
                MissReason::Conflict | MissReason::Moved => TouchOutcome::Conflict,
                MissReason::Missing => TouchOutcome::Missing,
            })
        })
        .await
    }

    async fn delete(&self, key: &StoreKey) -> Result<bool, SessionError> {
        within(self.shared.operation_timeout, "delete", async {
            let deleted = sqlx::query(sql(&self.shared.sql.delete))
                .bind(key.as_bytes().as_slice())
                .execute(&self.pool)
                .await
                .map_err(SessionError::store)?
                .rows_affected();
            Ok(deleted > 0)
        })
        .await
    }

    async fn rotate(
        &self,
        old: &StoreKey,
        new: &StoreKey,
        record: &Record,
        expected_version: u64,
        now: SystemTime,
    ) -> Result<RotateOutcome, SessionError> {
        within(self.shared.operation_timeout, "rotate", async {
            let expected = to_version(expected_version, "expected version")?;
            let now_millis = to_millis(now, "now")?;
            let mut args = record_arguments(new, record)?;
            if old == new {
                // Moving the row onto its own key would succeed in place, yet the new key is
                // taken: by the very record being moved.
                let current = self.live_version(&self.pool, old, now_millis).await?;
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
                to_millis(now + ROTATION_MARKER_LIFETIME, "marker deadline")?,
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
                Err(error) => return Err(SessionError::store(error)),
            };
            if moved == 1 {
                return Ok(RotateOutcome::Rotated);
            }
            let current = self.live_version(&self.pool, old, now_millis).await?;
            Ok(match classify_miss(current, expected) {
                MissReason::Conflict => RotateOutcome::Conflict,
                MissReason::Missing => RotateOutcome::Missing,
                MissReason::Moved => RotateOutcome::Moved,
            })
        })
        .await
    }

    /// Deletes in batches; the operation timeout bounds each batch, not the whole purge.
    async fn delete_expired(&self, now: SystemTime) -> Result<u64, SessionError> {
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
                    .map_err(SessionError::store)
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
    }

    async fn sessions_of(
        &self,
        user: &str,
        now: SystemTime,
    ) -> Result<Vec<SessionInfo>, SessionError> {
        within(self.shared.operation_timeout, "sessions_of", async {
            let rows = sqlx::query(sql(&self.shared.sql.sessions_of))
                .bind(user)
                .bind(to_millis(now, "now")?)
                .fetch_all(&self.pool)
                .await
                .map_err(SessionError::store)?;
            rows.iter().map(decode_info).collect()
        })
        .await
    }

    async fn revoke_user(
        &self,
        user: &str,
        except: Option<&SessionHandle>,
    ) -> Result<u64, SessionError> {
        within(self.shared.operation_timeout, "revoke_user", async {
            // The trait passes no time here; the system clock decides which of the deleted
            // records were still live sessions and are counted.
            let now = to_millis(SystemTime::now(), "now")?;
            let revoked: i64 = sqlx::query_scalar(sql(&self.shared.sql.revoke_user))
                .bind(user)
                .bind(except.map(|handle| handle.store_key().as_bytes().as_slice()))
                .bind(now)
                .fetch_one(&self.pool)
                .await
                .map_err(SessionError::store)?;
            u64::try_from(revoked).map_err(|_| malformed("negative count"))
        })
        .await
    }

    async fn revoke(&self, handle: &SessionHandle) -> Result<bool, SessionError> {
        within(self.shared.operation_timeout, "revoke", async {
            self.delete(handle.store_key()).await
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_plain_names_only() {
        for good in ["sessions", "_private", "App_Sessions2", &"a".repeat(63)] {
            assert!(check_identifier("table", good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "1abc",
            "a;drop table x",
            "a\"b",
            "a b",
            "a-b",
            "é",
            &"a".repeat(64),
        ] {
            let error = check_identifier("table", bad).expect_err(bad);
            assert!(matches!(
                error,
                ConfigError::InvalidStoreSetting {
                    setting: "table",
                    ..
                }
            ));
            assert!(
                error.to_string().contains("plain PostgreSQL identifier"),
                "{error}"
            );
        }
    }

    #[test]
    fn index_names_fit_and_stay_distinct() {
        assert_eq!(
            index_name("sessionware_sessions", "expires_at_idx"),
            "sessionware_sessions_expires_at_idx"
        );
        let long = "t".repeat(63);
        let expires = index_name(&long, "expires_at_idx");
        let user = index_name(&long, "user_id_idx");
        assert!(expires.len() <= MAX_IDENTIFIER_LEN, "{expires}");
        assert!(user.len() <= MAX_IDENTIFIER_LEN, "{user}");
        assert_ne!(expires, user);
        assert_ne!(expires, long);
        let other = format!("{}u", "t".repeat(62));
        assert_ne!(index_name(&other, "expires_at_idx"), expires);
        assert!(check_identifier("index", &expires).is_ok());
    }

    #[test]
    fn millis_round_down_and_round_trip() {
        let whole = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(to_millis(whole, "t").ok(), Some(1_700_000_000_123));
        assert_eq!(from_millis(1_700_000_000_123, "t").ok(), Some(whole));
        let partial = whole + Duration::from_micros(999);
        assert_eq!(to_millis(partial, "t").ok(), Some(1_700_000_000_123));
        let before = UNIX_EPOCH - Duration::from_micros(1_500);
        assert_eq!(to_millis(before, "t").ok(), Some(-2));
        assert_eq!(
            from_millis(-2, "t").ok(),
            Some(UNIX_EPOCH - Duration::from_millis(2))
        );
    }

    #[test]
    fn versions_beyond_bigint_are_refused() {
        assert_eq!(to_version(7, "v").ok(), Some(7));
        assert!(matches!(
            to_version(u64::MAX, "v"),
            Err(SessionError::Store(_))
        ));
    }

    #[test]
    fn a_miss_with_another_live_version_is_a_conflict() {
        assert!(matches!(classify_miss(Some(3), 2), MissReason::Conflict));
        assert!(matches!(classify_miss(None, 2), MissReason::Missing));
        assert!(matches!(classify_miss(Some(2), 2), MissReason::Missing));
    }
}
