//! Test support: real databases per test (a temporary SQLite file, a throw-away PostgreSQL
//! database), the server started as a real process, and small helpers.

#![allow(dead_code)]

pub mod app;
pub mod db;
pub mod fixture;
pub mod imap;
pub mod server;
pub mod smtp;
pub mod statements;
pub mod webhooks;

pub use db::{Backend, TestDb};

/// Declares one test that runs on both backends, as `NAME::sqlite` and `NAME::postgres`.
#[macro_export]
macro_rules! backend_test {
    ($(#[$meta:meta])* async fn $name:ident($db:ident : TestDb $(,)?) $body:block) => {
        $crate::backend_test!(@setup {}; $(#[$meta])* async fn $name($db: TestDb) $body);
    };
    (
        @setup $setup:block;
        $(#[$meta:meta])* async fn $name:ident($db:ident : TestDb $(,)?) $body:block
    ) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run($db: $crate::support::TestDb) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            $(#[$meta])*
            async fn sqlite() {
                $setup
                let db = $crate::support::TestDb::create($crate::support::Backend::Sqlite).await;
                run(db).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            $(#[$meta])*
            async fn postgres() {
                $setup
                let Some(db) = $crate::support::TestDb::create_postgres_or_skip(concat!(module_path!(), "::postgres")).await else {
                    return;
                };
                run(db).await;
            }
        }
    };
}

/// [`backend_test!`] with the SQL statements counted (`support::statements`): the counter is
/// installed before the test database's first connection opens, so every connection of the
/// test is counted.
#[macro_export]
macro_rules! counted_backend_test {
    ($($test:tt)*) => {
        $crate::backend_test!(
            @setup { $crate::support::statements::count_statements(); };
            $($test)*
        );
    };
}

/// Noon in Paris (the fixtures' time zone), `days` local days after today: an instant when
/// client emails may leave whatever the hour the test runs at (they never leave after the
/// evening cut-off, so "now" or "now plus a day" fails in the evening).
pub fn paris_noon(days: i64) -> chrono::DateTime<chrono::Utc> {
    let zone = chrono_tz::Europe::Paris;
    let today = rappel::domain::calendar::local_today(chrono::Utc::now(), zone);
    rappel::domain::calendar::local_instant(today + chrono::Duration::days(days), 12, zone)
        .expect("noon exists in Paris")
}

/// A fixed-offset IANA zone (`Etc/GMT…`) whose local time is about noon now, for tests that
/// run a real server on the real clock and need its client emails to leave at once.
pub fn zone_where_it_is_noon() -> String {
    let hour = i64::from(chrono::Timelike::hour(&chrono::Utc::now()));
    // Etc/GMT-N is N hours *ahead* of UTC (the sign is POSIX's, inverted).
    let ahead = 12 - hour; // from +12 down to -11, inside Etc/GMT's range (-12..=+14)
    let zone = match ahead {
        0 => "Etc/GMT".to_string(),
        n if n > 0 => format!("Etc/GMT-{n}"),
        n => format!("Etc/GMT+{}", -n),
    };
    assert!(
        rappel::domain::calendar::parse_time_zone(&zone).is_some(),
        "{zone} is a zone"
    );
    zone
}
