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
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run($db: $crate::support::TestDb) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            $(#[$meta])*
            async fn sqlite() {
                let db = $crate::support::TestDb::create($crate::support::Backend::Sqlite).await;
                run(db).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            $(#[$meta])*
            async fn postgres() {
                let Some(db) = $crate::support::TestDb::create_postgres_or_skip(concat!(module_path!(), "::postgres")).await else {
                    return;
                };
                run(db).await;
            }
        }
    };
}
