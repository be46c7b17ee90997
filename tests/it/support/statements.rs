//! The SQL statements each test database runs, counted and kept per database URL with
//! diesel's instrumentation (installed once per process, for every connection opened after
//! it): the statement-count test bounds them, the EXPLAIN test plans them.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex, Once};

use diesel::connection::{Instrumentation, InstrumentationEvent, set_default_instrumentation};

/// Statements run per database URL (each test has its own database), since the
/// instrumentation was installed.
static STATEMENTS: LazyLock<Mutex<HashMap<String, Statements>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// The data statements' texts per database URL, to show what ran when a bound is exceeded.
static TEXTS: LazyLock<Mutex<HashMap<String, Vec<String>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Statements {
    /// Statements that read or write data.
    pub data: usize,
    /// Pool checkout pings (`SELECT 1`) and connection set-up (`PRAGMA ...`, `SET ...`).
    pub housekeeping: usize,
    /// The pings among them: none since checkouts are no longer tested.
    pub pings: usize,
}

/// Counts the statements of every connection established after it is installed, under the
/// URL the connection was opened with.
struct StatementCounter {
    url: Option<String>,
}

impl Instrumentation for StatementCounter {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        match event {
            InstrumentationEvent::StartEstablishConnection { url, .. } => {
                // The database's URL, without the startup options the pool adds to it
                // (`?options=-c plan_cache_mode...`), so counts are found under the test's URL.
                let url = url.split_once("?options=").map_or(url, |(base, _)| base);
                let url = url.split_once("&options=").map_or(url, |(base, _)| base);
                self.url = Some(url.to_string());
            }
            InstrumentationEvent::StartQuery { query, .. } => {
                let Some(url) = &self.url else { return };
                let text = query.to_string();
                let text = text.trim();
                // Connection set-up (SQLite's PRAGMAs, PostgreSQL's SETs when the pool opens a
                // connection) and pool checkout pings are not the page's own statements.
                let housekeeping = text.starts_with("PRAGMA")
                    || text.starts_with("SET ")
                    || text.starts_with("SELECT $1")
                    || text.starts_with("SELECT ?")
                    || text == "SELECT 1";
                let mut counts = STATEMENTS.lock().expect("counter lock");
                let counts = counts.entry(url.clone()).or_default();
                if housekeeping {
                    counts.housekeeping += 1;
                    if text == "SELECT 1" {
                        counts.pings += 1;
                    }
                } else {
                    counts.data += 1;
                    TEXTS
                        .lock()
                        .expect("texts lock")
                        .entry(url.clone())
                        .or_default()
                        .push(text.to_string());
                }
            }
            _ => {}
        }
    }
}

/// Installs the counter for every connection established from now on (once per process).
pub fn count_statements() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        set_default_instrumentation(|| Some(Box::new(StatementCounter { url: None })))
            .expect("instrumentation installed");
    });
}

pub fn statements_of(url: &str) -> Statements {
    STATEMENTS
        .lock()
        .expect("counter lock")
        .get(url)
        .copied()
        .unwrap_or_default()
}

pub fn texts_of(url: &str) -> Vec<String> {
    TEXTS
        .lock()
        .expect("texts lock")
        .get(url)
        .cloned()
        .unwrap_or_default()
}
