//! A small journal of scheduler runs, for operations: when each pass ran and what it made.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::schema::scheduler_runs;
use super::{DbConn, DbResult};
use crate::with_conn;

pub async fn start_run(
    db: &mut DbConn<'_>,
    kind: &str,
    instance: &str,
    as_of: Option<NaiveDate>,
    now: NaiveDateTime,
) -> DbResult<i64> {
    Ok(with_conn!(db, |c| diesel::insert_into(
        scheduler_runs::table
    )
    .values((
        scheduler_runs::kind.eq(kind),
        scheduler_runs::instance.eq(instance),
        scheduler_runs::as_of.eq(as_of),
        scheduler_runs::started_at.eq(now),
    ))
    .returning(scheduler_runs::id)
    .get_result(c)
    .await)?)
}

pub async fn finish_run(
    db: &mut DbConn<'_>,
    run_id: i64,
    created_count: i64,
    error: Option<&str>,
    now: NaiveDateTime,
) -> DbResult<usize> {
    Ok(with_conn!(db, |c| diesel::update(
        scheduler_runs::table.find(run_id)
    )
    .set((
        scheduler_runs::finished_at.eq(now),
        scheduler_runs::created_count.eq(created_count),
        scheduler_runs::error.eq(error),
    ))
    .execute(c)
    .await)?)
}
