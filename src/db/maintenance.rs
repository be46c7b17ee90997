//! What operators ask of the database rather than of the product: the outbox's depth for
//! `/metrics`, whether migrations are current for `/readyz`, pool usage, and a consistent copy
//! of a live SQLite database for `rappel backup`. Reads aggregates only; never changes data.

use std::path::Path;

use chrono::NaiveDateTime;
use diesel::dsl::{count_star, min};
use diesel::prelude::*;
use diesel_async::{AsyncMigrationHarness, RunQueryDsl, SimpleAsyncConnection};
use diesel_migrations::MigrationHarness;

use super::schema::deliveries;
use super::{Conn, DbConn, DbError, DbResult, POSTGRES_MIGRATIONS, Pool, SQLITE_MIGRATIONS};
use crate::with_conn;

/// How many deliveries of one kind are in one status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxCount {
    pub kind: String,
    pub status: String,
    pub count: i64,
}

/// Deliveries counted by kind and status (a handful of rows: both are closed lists).
pub async fn outbox_depth(db: &mut DbConn<'_>) -> DbResult<Vec<OutboxCount>> {
    let rows: Vec<(String, String, i64)> = with_conn!(db, |c| deliveries::table
        .group_by((deliveries::kind, deliveries::status))
        .select((deliveries::kind, deliveries::status, count_star()))
        .load(c)
        .await)?;
    Ok(rows
        .into_iter()
        .map(|(kind, status, count)| OutboxCount {
            kind,
            status,
            count,
        })
        .collect())
}

/// When the oldest delivery still waiting to leave was created.
pub async fn oldest_pending_delivery(db: &mut DbConn<'_>) -> DbResult<Option<NaiveDateTime>> {
    Ok(with_conn!(db, |c| deliveries::table
        .filter(deliveries::status.eq("PENDING"))
        .select(min(deliveries::created_at))
        .first(c)
        .await)?)
}

impl Pool {
    /// Connections the pool holds and how many of them are lent out right now.
    pub fn connection_usage(&self) -> (u32, u32) {
        let state = match self {
            Self::Sqlite { pool, .. } => pool.state(),
            Self::Postgres { pool, .. } => pool.state(),
        };
        (
            state.connections,
            state.connections.saturating_sub(state.idle_connections),
        )
    }

    /// Whether every embedded migration of this backend has been applied.
    pub async fn migrations_are_current(&self) -> DbResult<bool> {
        let conn = self.get().await?;
        let check = move || -> DbResult<bool> {
            let pending = match conn {
                Conn::Sqlite(pooled) => {
                    AsyncMigrationHarness::new(pooled).has_pending_migration(SQLITE_MIGRATIONS)
                }
                Conn::Postgres(pooled) => {
                    AsyncMigrationHarness::new(pooled).has_pending_migration(POSTGRES_MIGRATIONS)
                }
            };
            pending
                .map(|pending| !pending)
                .map_err(|error| DbError::Migration(error.to_string()))
        };
        tokio::task::spawn_blocking(check)
            .await
            .map_err(|error| DbError::Migration(error.to_string()))?
    }

    /// Writes a consistent copy of a SQLite database to `destination` (`VACUUM INTO`: one read
    /// transaction, so writers keep going and the copy holds exactly the transactions committed
    /// before it began). Refuses an existing destination and PostgreSQL (use `pg_dump`).
    pub async fn backup_sqlite(&self, destination: &Path) -> DbResult<()> {
        if !matches!(self, Self::Sqlite { .. }) {
            return Err(DbError::Pool(
                "`rappel backup` copies SQLite databases; back up PostgreSQL with pg_dump".into(),
            ));
        }
        if destination.exists() {
            return Err(DbError::Pool(format!(
                "{} already exists; choose a new file",
                destination.display()
            )));
        }
        let target = destination.to_str().ok_or_else(|| {
            DbError::Pool(format!("{} is not a UTF-8 path", destination.display()))
        })?;
        let mut conn = self.get().await?;
        let statement = format!("VACUUM INTO '{}'", target.replace('\'', "''"));
        with_conn!(conn, |c| c.batch_execute(&statement).await)?;
        Ok(())
    }
}
