//! Storage: the connection pool for either backend, the dispatch macros that let each query be
//! written once for SQLite and PostgreSQL, the embedded migrations, and one module per table.
//! Nothing here knows about GraphQL or HTTP; every query that reads tenant data takes a firm id.

pub mod bulk;
pub mod catalog;
pub mod claims;
pub mod clients;
pub mod digests;
pub mod feeds;
pub mod files;
pub mod firms;
pub mod journal;
pub mod maintenance;
pub mod missions;
pub mod nodes;
pub mod outbox;
pub mod page;
pub mod portal;
pub mod runs;
pub mod schema;
mod sql_enums;
pub mod tokens;
pub mod work;
// Replies by email (issue 15).
pub mod replies;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use diesel::SqliteConnection;
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, PoolableConnection,
};
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::{
    AsyncConnection, AsyncMigrationHarness, AsyncPgConnection, SimpleAsyncConnection,
};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use futures_util::FutureExt;

/// The SQLite connection as diesel-async sees it (a sync connection run on blocking threads).
pub type SqliteConn = SyncConnectionWrapper<SqliteConnection>;
type SqlitePool = bb8::Pool<AsyncDieselConnectionManager<SqliteConn>>;
type PgPool = bb8::Pool<PgManager>;

/// diesel-async's manager of PostgreSQL connections, which also notes when a connection comes
/// back to the pool broken: the server may have cut its idle siblings too (restart, failover,
/// `pg_terminate_backend`), before their sockets show it.
pub struct PgManager {
    inner: AsyncDieselConnectionManager<AsyncPgConnection>,
    suspect: Arc<AtomicBool>,
}

impl bb8::ManageConnection for PgManager {
    type Connection = AsyncPgConnection;
    type Error = <AsyncDieselConnectionManager<AsyncPgConnection> as bb8::ManageConnection>::Error;

    fn connect(
        &self,
    ) -> impl std::future::Future<Output = Result<Self::Connection, Self::Error>> + Send {
        self.inner.connect()
    }

    fn is_valid(
        &self,
        conn: &mut Self::Connection,
    ) -> impl std::future::Future<Output = Result<(), Self::Error>> + Send {
        self.inner.is_valid(conn)
    }

    fn has_broken(&self, conn: &mut Self::Connection) -> bool {
        let broken = self.inner.has_broken(conn);
        if broken {
            self.suspect.store(true, Ordering::SeqCst);
        }
        broken
    }
}

pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Errors of the data layer: a query error (diesel's own), or no connection could be had.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
    #[error("no database connection: {0}")]
    Pool(String),
    #[error("migration failed: {0}")]
    Migration(String),
}

pub type DbResult<T> = Result<T, DbError>;

/// Which backend a URL selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// A SQLite file (its folder is created on first use).
    Sqlite(PathBuf),
    /// A `postgres://` or `postgresql://` URL.
    Postgres(String),
}

impl DatabaseUrl {
    /// Reads a configured URL: `postgres://...` selects PostgreSQL; `sqlite://path`,
    /// `sqlite:path` or a bare path selects a SQLite file.
    pub fn parse(url: &str) -> Result<Self, String> {
        let url = url.trim();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres(url.to_string()));
        }
        if url.contains("://") && !url.starts_with("sqlite://") {
            return Err("expected a SQLite file path or a postgres:// URL".into());
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        if path.is_empty() || path == ":memory:" {
            return Err(
                "expected a SQLite file path (an in-memory database would lose everything)".into(),
            );
        }
        Ok(Self::Sqlite(PathBuf::from(path)))
    }
}

/// A pool of connections to one backend.
#[derive(Clone)]
pub enum Pool {
    /// `identity` is the file's device and inode when the pool opened it: a file deleted or
    /// replaced while serving is detected by comparing it, since SQLite keeps writing to an
    /// unlinked file (and new connections would create a fresh empty one at the same path).
    Sqlite {
        pool: SqlitePool,
        path: PathBuf,
        identity: Option<FileIdentity>,
        busy_timeout_ms: u32,
    },
    /// `database_oid` identifies the database the pool opened: a database dropped and
    /// recreated under the same name has another one.
    /// `suspect` is set when a connection was found broken: until one answers a ping, each
    /// checkout pings its connection first, so one cut costs at most the request that met it.
    Postgres {
        pool: PgPool,
        database_oid: i64,
        suspect: Arc<AtomicBool>,
    },
}

/// Which file a path names: its device and inode (unix), compared to notice a replacement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileIdentity {
    pub device: u64,
    pub inode: u64,
}

impl FileIdentity {
    /// The identity of the file at `path` now; `None` when it does not exist, or on
    /// platforms without inodes.
    pub fn of(path: &Path) -> Option<Self> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt as _;
            std::fs::metadata(path).ok().map(|metadata| Self {
                device: metadata.dev(),
                inode: metadata.ino(),
            })
        }
        #[cfg(not(unix))]
        {
            let _ = path;
            None
        }
    }
}

/// What a health check found wrong, in words for logs.
fn unhealthy(reason: String) -> DbError {
    DbError::Pool(reason)
}

#[derive(diesel::QueryableByName)]
struct DatabaseOid {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    oid: i64,
}

#[derive(diesel::QueryableByName)]
struct Flag {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    value: bool,
}

/// One pooled connection, owned; borrow it as a [`DbConn`] with [`Conn::as_db`].
#[expect(
    clippy::large_enum_variant,
    reason = "short-lived, one per request; boxing would add an allocation per query"
)]
pub enum Conn {
    Sqlite(bb8::PooledConnection<'static, AsyncDieselConnectionManager<SqliteConn>>),
    Postgres(bb8::PooledConnection<'static, PgManager>),
}

/// A borrowed connection of either backend: what every data function takes, inside or outside
/// a transaction.
pub enum DbConn<'a> {
    Sqlite(&'a mut SqliteConn),
    Postgres(&'a mut AsyncPgConnection),
}

impl Conn {
    /// Borrows this connection for data functions.
    pub fn as_db(&mut self) -> DbConn<'_> {
        match self {
            Self::Sqlite(pooled) => DbConn::Sqlite(pooled),
            Self::Postgres(pooled) => DbConn::Postgres(pooled),
        }
    }
}

impl DbConn<'_> {
    /// Reborrows, so a `&mut DbConn` can be handed on.
    pub fn as_db(&mut self) -> DbConn<'_> {
        match self {
            Self::Sqlite(conn) => DbConn::Sqlite(conn),
            Self::Postgres(conn) => DbConn::Postgres(conn),
        }
    }

    /// Which backend this connection talks to.
    pub fn is_sqlite(&self) -> bool {
        matches!(self, Self::Sqlite(_))
    }
}

/// Runs `$body` with `$c` bound to the concrete connection of either backend: the body is
/// written once and compiled for both (diesel's MultiConnection does not work with
/// diesel-async). `$conn` is a pooled [`Conn`] or a [`DbConn`].
#[macro_export]
macro_rules! with_conn {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn.as_db() {
            $crate::db::DbConn::Sqlite($c) => $body,
            $crate::db::DbConn::Postgres($c) => $body,
        }
    };
}

/// SQLite write transactions of this process begun through [`transaction!`] and not ended
/// yet, waiting for the write lock or holding it. SQLite has one writer and its waiters sleep
/// in the busy handler: a long job that commits in pieces (generation) leaves the lock free
/// between pieces only while someone else waits, so it runs at full speed alone and does not
/// starve others. Process-wide (every pool of the process): at worst a job pauses for a writer
/// of another database, which costs it time, never correctness.
static SQLITE_WRITERS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// One SQLite write transaction in progress, counted in [`sqlite_writers`] while it lives.
#[doc(hidden)]
pub struct SqliteWriter(());

impl SqliteWriter {
    /// Counts a write transaction until the returned value is dropped.
    pub fn enter() -> Self {
        SQLITE_WRITERS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Self(())
    }
}

impl Drop for SqliteWriter {
    fn drop(&mut self) {
        SQLITE_WRITERS.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// How many SQLite write transactions of this process are in progress now.
pub fn sqlite_writers() -> usize {
    SQLITE_WRITERS.load(std::sync::atomic::Ordering::SeqCst)
}

/// Runs `$body` in one write transaction with `$tx` bound to a `DbConn` of the transaction.
/// `$body` returns `Result<_, E>` with `E: From<diesel::result::Error>`; an `Err` rolls back.
/// SQLite takes its write lock up front (`BEGIN IMMEDIATE`), so concurrent writers wait for
/// the busy timeout instead of failing with "database is locked" when a read transaction
/// tries to upgrade.
#[macro_export]
macro_rules! transaction {
    ($conn:expr, |$tx:ident| $body:expr) => {
        match $conn.as_db() {
            $crate::db::DbConn::Sqlite(conn) => {
                let _writer = $crate::db::SqliteWriter::enter();
                conn.immediate_transaction(async |conn| {
                    let mut $tx = $crate::db::DbConn::Sqlite(conn);
                    $body
                })
                .await
            }
            $crate::db::DbConn::Postgres(conn) => {
                use diesel_async::AsyncConnection as _;
                conn.transaction(async |conn| {
                    let mut $tx = $crate::db::DbConn::Postgres(conn);
                    $body
                })
                .await
            }
        }
    };
}

/// Rappel's PostgreSQL URL with `plan_cache_mode = force_generic_plan` sent in the startup
/// packet (libpq's `options`, no extra statement): every query is a prepared statement kept per
/// connection, and with PostgreSQL's default (`auto`) the joined page queries were planned
/// again at every execution (1.5-2.9 ms of planning for 0.4 ms of execution on the bench's
/// tasks page); a generic plan is made once per connection. A URL that already sets
/// `options` is the operator's choice and is kept as it is.
fn with_generic_plans(url: &str) -> String {
    let query = url.split_once('?').map(|(_, query)| query).unwrap_or("");
    if query
        .split('&')
        .any(|pair| pair.split('=').next() == Some("options"))
    {
        return url.to_string();
    }
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}options=-c%20plan_cache_mode%3Dforce_generic_plan")
}

impl Pool {
    /// Opens a pool for `url`, creating the SQLite file's folder when needed.
    pub async fn connect(url: &str, pool_size: u32, busy_timeout_ms: u32) -> DbResult<Self> {
        match DatabaseUrl::parse(url).map_err(DbError::Pool)? {
            DatabaseUrl::Sqlite(path) => {
                if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(folder).map_err(|error| {
                        DbError::Pool(format!("cannot create {}: {error}", folder.display()))
                    })?;
                }
                let mut config = ManagerConfig::<SqliteConn>::default();
                config.custom_setup = Box::new(move |url| {
                    let url = url.to_string();
                    async move {
                        let mut conn = SqliteConn::establish(&url).await?;
                        conn.batch_execute(&format!(
                            "PRAGMA busy_timeout = {busy_timeout_ms};
                             PRAGMA journal_mode = WAL;
                             PRAGMA synchronous = NORMAL;
                             PRAGMA foreign_keys = ON;"
                        ))
                        .await
                        .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
                        Ok(conn)
                    }
                    .boxed()
                });
                let manager =
                    AsyncDieselConnectionManager::new_with_config(path.to_string_lossy(), config);
                let pool = bb8::Pool::builder()
                    .max_size(pool_size)
                    .connection_timeout(Duration::from_secs(30))
                    // A local file does not go away under a connection: no ping per checkout.
                    .test_on_check_out(false)
                    .build(manager)
                    .await
                    .map_err(|error| DbError::Pool(error.to_string()))?;
                // The first connection creates the file when it is new; then it has an identity.
                drop(
                    pool.get()
                        .await
                        .map_err(|error| DbError::Pool(error.to_string()))?,
                );
                let identity = FileIdentity::of(&path);
                Ok(Self::Sqlite {
                    pool,
                    path,
                    identity,
                    busy_timeout_ms,
                })
            }
            DatabaseUrl::Postgres(url) => {
                let suspect = Arc::new(AtomicBool::new(false));
                let manager = PgManager {
                    inner: AsyncDieselConnectionManager::<AsyncPgConnection>::new(
                        with_generic_plans(&url),
                    ),
                    suspect: suspect.clone(),
                };
                let pool = bb8::Pool::builder()
                    .max_size(pool_size)
                    .connection_timeout(Duration::from_secs(10))
                    // No `SELECT 1` round trip per checkout: a connection whose socket closed
                    // (server restarted, backend terminated) is skipped by `Pool::get`, and one
                    // that fails mid-query is discarded when it returns to the pool.
                    .test_on_check_out(false)
                    .build(manager)
                    .await
                    .map_err(|error| DbError::Pool(error.to_string()))?;
                let database_oid = {
                    let mut conn = pool
                        .get()
                        .await
                        .map_err(|error| DbError::Pool(error.to_string()))?;
                    current_database_oid_of(&mut conn).await?
                };
                Ok(Self::Postgres {
                    pool,
                    database_oid,
                    suspect,
                })
            }
        }
    }

    /// Takes a connection from the pool.
    pub async fn get(&self) -> DbResult<Conn> {
        match self {
            Self::Sqlite { pool, .. } => {
                // Checked before every use: a deleted or replaced file must not take writes
                // that vanish (or land in a fresh empty database) while answering success.
                self.check_file_identity()?;
                pool.get_owned()
                    .await
                    .map(Conn::Sqlite)
                    .map_err(|error| DbError::Pool(error.to_string()))
            }
            Self::Postgres { pool, suspect, .. } => {
                // Connections whose socket is known closed are dropped (bb8 discards a broken
                // connection when it comes back) and the next one taken; each try either
                // returns or removes one connection, so a pool's worth of tries is enough.
                // After a broken one, the next checkouts ping first (a cut server closes every
                // connection, but a socket may not show it yet) until a connection answers.
                let tries = pool.state().connections + 1;
                for _ in 0..tries {
                    let mut pooled = pool
                        .get_owned()
                        .await
                        .map_err(|error| DbError::Pool(error.to_string()))?;
                    if PoolableConnection::is_broken(&mut *pooled) {
                        suspect.store(true, Ordering::SeqCst);
                        continue;
                    }
                    if suspect.load(Ordering::SeqCst) {
                        if pooled.batch_execute("SELECT 1").await.is_err() {
                            continue;
                        }
                        suspect.store(false, Ordering::SeqCst);
                    }
                    return Ok(Conn::Postgres(pooled));
                }
                pool.get_owned()
                    .await
                    .map(Conn::Postgres)
                    .map_err(|error| DbError::Pool(error.to_string()))
            }
        }
    }

    /// The SQLite file of this pool; `None` on PostgreSQL.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match self {
            Self::Sqlite { path, .. } => Some(path),
            Self::Postgres { .. } => None,
        }
    }

    /// Which backend this pool talks to, for logs and tests.
    pub fn backend_name(&self) -> &'static str {
        match self {
            Self::Sqlite { .. } => "sqlite",
            Self::Postgres { .. } => "postgres",
        }
    }

    /// Applies every pending migration of this backend; returns the versions applied.
    pub async fn run_migrations(&self) -> DbResult<Vec<String>> {
        let conn = self.get().await?;
        let migrate = move || -> DbResult<Vec<String>> {
            let applied = match conn {
                Conn::Sqlite(pooled) => AsyncMigrationHarness::new(pooled)
                    .run_pending_migrations(SQLITE_MIGRATIONS)
                    .map(|versions| versions.iter().map(ToString::to_string).collect()),
                Conn::Postgres(pooled) => AsyncMigrationHarness::new(pooled)
                    .run_pending_migrations(POSTGRES_MIGRATIONS)
                    .map(|versions| versions.iter().map(ToString::to_string).collect()),
            };
            applied.map_err(|error| DbError::Migration(error.to_string()))
        };
        tokio::task::spawn_blocking(migrate)
            .await
            .map_err(|error| DbError::Migration(error.to_string()))?
    }

    /// Reverts every applied migration (tests check that down then up returns the same schema).
    pub async fn revert_all_migrations(&self) -> DbResult<()> {
        let conn = self.get().await?;
        let revert = move || -> DbResult<()> {
            let reverted = match conn {
                Conn::Sqlite(pooled) => AsyncMigrationHarness::new(pooled)
                    .revert_all_migrations(SQLITE_MIGRATIONS)
                    .map(drop),
                Conn::Postgres(pooled) => AsyncMigrationHarness::new(pooled)
                    .revert_all_migrations(POSTGRES_MIGRATIONS)
                    .map(drop),
            };
            reverted.map_err(|error| DbError::Migration(error.to_string()))
        };
        tokio::task::spawn_blocking(revert)
            .await
            .map_err(|error| DbError::Migration(error.to_string()))?
    }

    /// Fails when the SQLite file is no longer the one this pool opened (deleted, or replaced
    /// by another file at the same path).
    pub fn check_file_identity(&self) -> DbResult<()> {
        if let Self::Sqlite { path, identity, .. } = self {
            let now = FileIdentity::of(path);
            let same = match (identity, now) {
                (Some(opened), Some(now)) => *opened == now,
                (Some(_), None) => false,
                // No identity on this platform: only the file's presence can be checked.
                (None, _) => path.exists(),
            };
            if !same {
                return Err(unhealthy(format!(
                    "the database file {} was deleted or replaced after Rappel opened it; \
                     reads and writes are refused until the file is restored and Rappel restarts",
                    path.display()
                )));
            }
        }
        Ok(())
    }

    /// Answers whether the database can serve the application, cheaply (a few indexed reads,
    /// no write): the SQLite file is still the one opened; the PostgreSQL database is still
    /// the one opened (not dropped and recreated); the latest migration of this build is
    /// recorded (an empty or foreign database answers `SELECT 1` too); and the database takes
    /// writes (a read-only SQLite file, a read-only PostgreSQL server or standby does not).
    pub async fn check_health(&self) -> DbResult<()> {
        let mut conn = self.get().await?;
        let latest = match self {
            Self::Sqlite { .. } => latest_migration_version(&SQLITE_MIGRATIONS),
            Self::Postgres { .. } => latest_migration_version(&POSTGRES_MIGRATIONS),
        };
        // Versions are digits from this build (checked), so inlining them is safe.
        let latest: String = latest.chars().filter(char::is_ascii_digit).collect();
        let probe = format!(
            "SELECT TRUE AS value FROM __diesel_schema_migrations WHERE version = '{latest}'"
        );
        let migrated: Vec<Flag> = with_conn!(conn, |c| {
            use diesel_async::RunQueryDsl as _;
            diesel::sql_query(probe.as_str()).load(c).await
        })
        .map_err(|error| {
            unhealthy(format!(
                "the database has no migrations table ({error}); is it the right database?"
            ))
        })?;
        if migrated.is_empty() {
            return Err(unhealthy(format!(
                "the database lacks migration {latest}; is it the right database?"
            )));
        }
        match (self, conn.as_db()) {
            (
                Self::Sqlite {
                    busy_timeout_ms, ..
                },
                DbConn::Sqlite(c),
            ) => sqlite_check_writable(c, *busy_timeout_ms).await,
            (Self::Postgres { database_oid, .. }, DbConn::Postgres(c)) => {
                use diesel_async::RunQueryDsl as _;
                let now = current_database_oid_of(c).await?;
                if now != *database_oid {
                    return Err(unhealthy(
                        "the PostgreSQL database was dropped and recreated after Rappel opened it"
                            .into(),
                    ));
                }
                let read_only: Flag = diesel::sql_query(
                    "SELECT (pg_is_in_recovery() \
                       OR current_setting('transaction_read_only') = 'on') AS value",
                )
                .get_result(c)
                .await?;
                if read_only.value {
                    return Err(unhealthy("the PostgreSQL database is read-only".into()));
                }
                Ok(())
            }
            _ => Err(unhealthy("connection of the wrong backend".into())),
        }
    }
}

/// The newest migration version embedded in this build, as diesel records it.
fn latest_migration_version(migrations: &EmbeddedMigrations) -> String {
    let versions: Vec<String> =
        diesel::migration::MigrationSource::<diesel::sqlite::Sqlite>::migrations(migrations)
            .map(|all| all.iter().map(|m| m.name().version().to_string()).collect())
            .unwrap_or_default();
    versions.into_iter().max().unwrap_or_default()
}

/// Whether SQLite would let this connection write, without writing: `BEGIN IMMEDIATE` takes
/// the write lock or fails at once on a read-only file. The busy timeout is lowered for the
/// probe so a long write elsewhere (which proves the file writable) does not stall `/healthz`.
async fn sqlite_check_writable(conn: &mut SqliteConn, busy_timeout_ms: u32) -> DbResult<()> {
    conn.batch_execute("PRAGMA busy_timeout = 0").await?;
    let probe = conn.batch_execute("BEGIN IMMEDIATE").await;
    if probe.is_ok() {
        conn.batch_execute("ROLLBACK").await?;
    }
    conn.batch_execute(&format!("PRAGMA busy_timeout = {busy_timeout_ms}"))
        .await?;
    match probe {
        Ok(()) => Ok(()),
        Err(diesel::result::Error::DatabaseError(_, info))
            if info.message().contains("locked") || info.message().contains("busy") =>
        {
            Ok(())
        }
        Err(error) => Err(unhealthy(format!(
            "the SQLite database is not writable: {error}"
        ))),
    }
}

async fn current_database_oid_of(conn: &mut AsyncPgConnection) -> DbResult<i64> {
    use diesel_async::RunQueryDsl as _;
    let row: DatabaseOid = diesel::sql_query(
        "SELECT oid::bigint AS oid FROM pg_database WHERE datname = current_database()",
    )
    .get_result(conn)
    .await?;
    Ok(row.oid)
}

#[cfg(test)]
mod tests {
    use super::with_generic_plans;

    #[test]
    fn postgres_urls_ask_for_generic_plans_unless_they_set_options_themselves() {
        assert_eq!(
            with_generic_plans("postgres://u@h:5432/db"),
            "postgres://u@h:5432/db?options=-c%20plan_cache_mode%3Dforce_generic_plan"
        );
        assert_eq!(
            with_generic_plans("postgres://u@h/db?sslmode=disable"),
            "postgres://u@h/db?sslmode=disable&options=-c%20plan_cache_mode%3Dforce_generic_plan"
        );
        let own = "postgres://u@h/db?sslmode=disable&options=-c%20work_mem%3D64MB";
        assert_eq!(with_generic_plans(own), own);
    }
}
