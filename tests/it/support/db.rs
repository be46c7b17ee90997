//! A fresh database per test, on either backend, migrated and dropped afterwards.

use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use rappel::db::Pool;

/// The environment variable naming the PostgreSQL server the tests may create databases on.
pub const POSTGRES_URL_VAR: &str = "RAPPEL_TEST_POSTGRES_URL";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// One test's database: its URL, an open pool, and what to clean up.
pub struct TestDb {
    pub backend: Backend,
    pub url: String,
    pub pool: Pool,
    cleanup: Cleanup,
}

enum Cleanup {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

impl TestDb {
    /// A migrated database on `backend` (PostgreSQL must be configured).
    pub async fn create(backend: Backend) -> Self {
        let db = Self::create_empty(backend).await;
        db.pool.run_migrations().await.expect("migrations apply");
        db
    }

    /// An empty database with no migration applied.
    pub async fn create_empty(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let folder = tempfile::tempdir().expect("temporary folder");
                let url = folder
                    .path()
                    .join("rappel.db")
                    .to_string_lossy()
                    .to_string();
                let pool = Pool::connect(&url, 4, 10_000).await.expect("sqlite opens");
                Self {
                    backend,
                    url,
                    pool,
                    cleanup: Cleanup::Sqlite(folder),
                }
            }
            Backend::Postgres => {
                let admin_url = std::env::var(POSTGRES_URL_VAR).expect("PostgreSQL configured");
                let name = format!("rappel_test_{}", uuid::Uuid::new_v4().simple());
                let mut admin = AsyncPgConnection::establish(&admin_url)
                    .await
                    .expect("PostgreSQL reachable");
                admin
                    .batch_execute(&format!("CREATE DATABASE {name}"))
                    .await
                    .expect("test database created");
                let url = replace_database_name(&admin_url, &name);
                let pool = Pool::connect(&url, 4, 10_000)
                    .await
                    .expect("postgres opens");
                Self {
                    backend,
                    url,
                    pool,
                    cleanup: Cleanup::Postgres { admin_url, name },
                }
            }
        }
    }

    /// The PostgreSQL half: a database when configured; otherwise says so and returns None,
    /// or fails under CI=true, where a skipped half would hide a broken backend.
    pub async fn create_postgres_or_skip(test: &str) -> Option<Self> {
        if postgres_configured(test) {
            Some(Self::create(Backend::Postgres).await)
        } else {
            None
        }
    }

    /// Drops the PostgreSQL database now (while a server may still use it).
    pub async fn drop_postgres_database(&self) {
        if let Cleanup::Postgres { admin_url, name } = &self.cleanup {
            drop_database(admin_url, name).await;
        }
    }
}

/// Whether the PostgreSQL half can run; prints why not, or panics under CI.
pub fn postgres_configured(test: &str) -> bool {
    if std::env::var(POSTGRES_URL_VAR).is_ok_and(|url| !url.is_empty()) {
        return true;
    }
    if std::env::var("CI").is_ok_and(|ci| ci == "true") {
        panic!(
            "{test}: CI=true but {POSTGRES_URL_VAR} is not set: the PostgreSQL half must run in CI"
        );
    }
    eprintln!("{test}: PostgreSQL half did not run ({POSTGRES_URL_VAR} is not set)");
    false
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Cleanup::Postgres { admin_url, name } = &self.cleanup {
            let (admin_url, name) = (admin_url.clone(), name.clone());
            // Drop runs outside async; a short-lived runtime on its own thread does the I/O.
            let _ = std::thread::spawn(move || {
                if let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    runtime.block_on(drop_database(&admin_url, &name));
                }
            })
            .join();
        }
    }
}

async fn drop_database(admin_url: &str, name: &str) {
    if let Ok(mut admin) = AsyncPgConnection::establish(admin_url).await {
        let _ = admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await;
    }
}

/// `postgres://u@h:p/test?x` with the database `name` instead of `test`.
pub fn replace_database_name(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let without_db = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{without_db}/{name}?{query}"),
        None => format!("{without_db}/{name}"),
    }
}
