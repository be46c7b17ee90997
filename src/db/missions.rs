//! Missions and their lines.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::catalog::Service;
use super::page::Keyset;
use super::schema::{mission_lines, missions, services};
use super::{DbConn, DbResult};
use crate::domain::MissionStatus;
use crate::domain::schedule::{Frequency, LineSchedule, WorkingDayAdjustment};
use crate::{seek_id, with_conn};

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = missions)]
pub struct Mission {
    pub id: i64,
    pub firm_id: i64,
    pub client_id: i64,
    pub name: String,
    pub start_date: NaiveDate,
    pub end_date: Option<NaiveDate>,
    pub status: MissionStatus,
    pub signed_at: Option<NaiveDateTime>,
    pub ended_at: Option<NaiveDateTime>,
    pub cancelled_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = missions)]
pub struct NewMission<'a> {
    pub firm_id: i64,
    pub client_id: i64,
    pub name: &'a str,
    pub start_date: NaiveDate,
    pub end_date: Option<NaiveDate>,
    pub status: MissionStatus,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = mission_lines)]
pub struct MissionLine {
    pub id: i64,
    pub firm_id: i64,
    pub mission_id: i64,
    pub service_id: i64,
    pub frequency: Frequency,
    pub first_due_date: NaiveDate,
    pub quantity: i32,
    pub rrule: Option<String>,
    pub working_day_adjustment: WorkingDayAdjustment,
    pub generated_through: Option<NaiveDate>,
    pub created_at: NaiveDateTime,
}

impl MissionLine {
    /// The line's schedule as the schedule rules read it (generation, preview, operations).
    pub fn schedule(&self) -> LineSchedule {
        LineSchedule {
            frequency: self.frequency,
            first_due_date: self.first_due_date,
            quantity: u32::try_from(self.quantity).unwrap_or(1),
            rrule: self.rrule.clone(),
            adjustment: self.working_day_adjustment,
        }
    }
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = mission_lines)]
pub struct NewMissionLine {
    pub firm_id: i64,
    pub mission_id: i64,
    pub service_id: i64,
    pub frequency: Frequency,
    pub first_due_date: NaiveDate,
    pub quantity: i32,
    pub rrule: Option<String>,
    pub working_day_adjustment: WorkingDayAdjustment,
    pub created_at: NaiveDateTime,
}

pub async fn insert_mission(db: &mut DbConn<'_>, new: &NewMission<'_>) -> DbResult<Mission> {
    Ok(with_conn!(db, |c| diesel::insert_into(missions::table)
        .values(new)
        .returning(Mission::as_returning())
        .get_result(c)
        .await)?)
}

pub async fn find_mission(db: &mut DbConn<'_>, firm_id: i64, id: i64) -> DbResult<Mission> {
    Ok(with_conn!(db, |c| missions::table
        .filter(missions::firm_id.eq(firm_id))
        .filter(missions::id.eq(id))
        .select(Mission::as_select())
        .first(c)
        .await)?)
}

/// The firm's missions matching the filters, as a boxed query (for a page or a count).
macro_rules! filtered_missions {
    ($firm_id:expr, $status:expr, $client_id:expr) => {{
        let mut query = missions::table
            .filter(missions::firm_id.eq($firm_id))
            .into_boxed();
        if let Some(status) = $status {
            query = query.filter(missions::status.eq(status));
        }
        if let Some(client_id) = $client_id {
            query = query.filter(missions::client_id.eq(client_id));
        }
        query
    }};
}

/// One page of the firm's missions, oldest first (by id).
pub async fn list_missions(
    db: &mut DbConn<'_>,
    firm_id: i64,
    status: Option<MissionStatus>,
    client_id: Option<i64>,
    page: &Keyset<i64>,
) -> DbResult<Vec<Mission>> {
    Ok(with_conn!(db, |c| {
        let query = filtered_missions!(firm_id, status, client_id);
        seek_id!(query, page, missions::id, asc)
            .select(Mission::as_select())
            .load(c)
            .await
    })?)
}

/// How many missions match the filters of [`list_missions`].
pub async fn count_missions(
    db: &mut DbConn<'_>,
    firm_id: i64,
    status: Option<MissionStatus>,
    client_id: Option<i64>,
) -> DbResult<i64> {
    Ok(with_conn!(db, |c| filtered_missions!(
        firm_id, status, client_id
    )
    .count()
    .get_result(c)
    .await)?)
}

/// The firm's missions among `ids`.
pub async fn find_missions(
    db: &mut DbConn<'_>,
    firm_id: i64,
    ids: &[i64],
) -> DbResult<Vec<Mission>> {
    Ok(with_conn!(db, |c| missions::table
        .filter(missions::firm_id.eq(firm_id))
        .filter(missions::id.eq_any(ids))
        .select(Mission::as_select())
        .load(c)
        .await)?)
}

/// The missions of several of the firm's clients, oldest first.
pub async fn missions_of_clients(
    db: &mut DbConn<'_>,
    firm_id: i64,
    client_ids: &[i64],
) -> DbResult<Vec<Mission>> {
    Ok(with_conn!(db, |c| missions::table
        .filter(missions::firm_id.eq(firm_id))
        .filter(missions::client_id.eq_any(client_ids))
        .order(missions::id)
        .select(Mission::as_select())
        .load(c)
        .await)?)
}

/// The lines of several of the firm's missions, by id, each with its service (one statement).
pub async fn lines_of_missions(
    db: &mut DbConn<'_>,
    firm_id: i64,
    mission_ids: &[i64],
) -> DbResult<Vec<(MissionLine, Service)>> {
    Ok(with_conn!(db, |c| mission_lines::table
        .inner_join(services::table)
        .filter(mission_lines::firm_id.eq(firm_id))
        .filter(services::firm_id.eq(firm_id))
        .filter(mission_lines::mission_id.eq_any(mission_ids))
        .order(mission_lines::id)
        .select((MissionLine::as_select(), Service::as_select()))
        .load(c)
        .await)?)
}

/// Updates name and dates of a mission of this firm.
pub async fn update_mission_fields(
    db: &mut DbConn<'_>,
    firm_id: i64,
    id: i64,
    name: &str,
    start_date: NaiveDate,
    end_date: Option<NaiveDate>,
) -> DbResult<Mission> {
    Ok(with_conn!(db, |c| diesel::update(
        missions::table
            .filter(missions::firm_id.eq(firm_id))
            .filter(missions::id.eq(id))
    )
    .set((
        missions::name.eq(name),
        missions::start_date.eq(start_date),
        missions::end_date.eq(end_date),
    ))
    .returning(Mission::as_returning())
    .get_result(c)
    .await)?)
}

/// Moves a mission from `from` to `to`, stamping the matching time column. Returns None when
/// the mission was not in `from` (someone else changed it first).
pub async fn transition(
    db: &mut DbConn<'_>,
    firm_id: i64,
    id: i64,
    from: &[MissionStatus],
    to: MissionStatus,
    now: NaiveDateTime,
    end_date: Option<NaiveDate>,
) -> DbResult<Option<Mission>> {
    let from = from.to_vec();
    Ok(with_conn!(db, |c| {
        let target = missions::table
            .filter(missions::firm_id.eq(firm_id))
            .filter(missions::id.eq(id))
            .filter(missions::status.eq_any(&from));
        match to {
            MissionStatus::Signed => {
                diesel::update(target)
                    .set((missions::status.eq(to), missions::signed_at.eq(now)))
                    .returning(Mission::as_returning())
                    .get_result(c)
                    .await
            }
            MissionStatus::Ended => {
                diesel::update(target)
                    .set((
                        missions::status.eq(to),
                        missions::ended_at.eq(now),
                        missions::end_date.eq(end_date),
                    ))
                    .returning(Mission::as_returning())
                    .get_result(c)
                    .await
            }
            MissionStatus::Cancelled => {
                diesel::update(target)
                    .set((missions::status.eq(to), missions::cancelled_at.eq(now)))
                    .returning(Mission::as_returning())
                    .get_result(c)
                    .await
            }
            MissionStatus::Draft => {
                diesel::update(target)
                    .set(missions::status.eq(to))
                    .returning(Mission::as_returning())
                    .get_result(c)
                    .await
            }
        }
        .optional()
    })?)
}

pub async fn insert_lines(db: &mut DbConn<'_>, lines: &[NewMissionLine]) -> DbResult<usize> {
    let mut inserted = 0;
    for line in lines {
        inserted += with_conn!(db, |c| diesel::insert_into(mission_lines::table)
            .values(line)
            .execute(c)
            .await)?;
    }
    Ok(inserted)
}

pub async fn delete_lines(db: &mut DbConn<'_>, firm_id: i64, mission_id: i64) -> DbResult<usize> {
    Ok(with_conn!(db, |c| diesel::delete(
        mission_lines::table
            .filter(mission_lines::firm_id.eq(firm_id))
            .filter(mission_lines::mission_id.eq(mission_id))
    )
    .execute(c)
    .await)?)
}

pub async fn list_lines(
    db: &mut DbConn<'_>,
    firm_id: i64,
    mission_id: i64,
) -> DbResult<Vec<MissionLine>> {
    Ok(with_conn!(db, |c| mission_lines::table
        .filter(mission_lines::firm_id.eq(firm_id))
        .filter(mission_lines::mission_id.eq(mission_id))
        .order(mission_lines::id)
        .select(MissionLine::as_select())
        .load(c)
        .await)?)
}

/// A line of a signed mission, with what generation needs of its mission.
#[derive(Debug, Clone, Queryable)]
pub struct SignedLine {
    pub line: MissionLine,
    pub client_id: i64,
    pub start_date: NaiveDate,
    pub end_date: Option<NaiveDate>,
}

/// Lines of SIGNED missions of `firm_id` (optionally one mission), id after `after_id`, at most
/// `limit`, whose watermark is before `as_of`: a line already generated through `as_of` has
/// nothing new to create.
pub async fn list_signed_lines_to_generate(
    db: &mut DbConn<'_>,
    firm_id: i64,
    mission_id: Option<i64>,
    as_of: NaiveDate,
    after_id: i64,
    limit: i64,
) -> DbResult<Vec<SignedLine>> {
    Ok(with_conn!(db, |c| {
        let mut query = mission_lines::table
            .inner_join(missions::table)
            .filter(mission_lines::firm_id.eq(firm_id))
            .filter(missions::status.eq(MissionStatus::Signed))
            .filter(mission_lines::id.gt(after_id))
            .filter(
                mission_lines::generated_through
                    .is_null()
                    .or(mission_lines::generated_through.lt(as_of)),
            )
            .order(mission_lines::id)
            .limit(limit)
            .select((
                MissionLine::as_select(),
                missions::client_id,
                missions::start_date,
                missions::end_date,
            ))
            .into_boxed();
        if let Some(mission_id) = mission_id {
            query = query.filter(mission_lines::mission_id.eq(mission_id));
        }
        query.load::<SignedLine>(c).await
    })?)
}

/// Records that a line has generated everything created on or before `as_of`.
pub async fn set_generated_through(
    db: &mut DbConn<'_>,
    line_ids: &[i64],
    as_of: NaiveDate,
) -> DbResult<usize> {
    if line_ids.is_empty() {
        return Ok(0);
    }
    let ids = line_ids.to_vec();
    Ok(with_conn!(db, |c| diesel::update(
        mission_lines::table
            .filter(mission_lines::id.eq_any(&ids))
            .filter(
                mission_lines::generated_through
                    .is_null()
                    .or(mission_lines::generated_through.lt(as_of))
            )
    )
    .set(mission_lines::generated_through.eq(as_of))
    .execute(c)
    .await)?)
}

/// Which of `mission_ids` are still SIGNED, read inside the caller's transaction. On
/// PostgreSQL the rows are locked FOR SHARE until it commits, so a concurrent cancel or end
/// waits for the generation writing under them (and then cancels what it wrote); SQLite's
/// write transactions are already serialized.
pub async fn lock_still_signed(
    db: &mut DbConn<'_>,
    firm_id: i64,
    mission_ids: &[i64],
) -> DbResult<Vec<i64>> {
    let ids = mission_ids.to_vec();
    Ok(match db {
        DbConn::Postgres(c) => {
            missions::table
                .filter(missions::firm_id.eq(firm_id))
                .filter(missions::id.eq_any(&ids))
                .filter(missions::status.eq(MissionStatus::Signed))
                .select(missions::id)
                .for_share()
                .load(c)
                .await?
        }
        DbConn::Sqlite(c) => {
            missions::table
                .filter(missions::firm_id.eq(firm_id))
                .filter(missions::id.eq_any(&ids))
                .filter(missions::status.eq(MissionStatus::Signed))
                .select(missions::id)
                .load(c)
                .await?
        }
    })
}

/// The lines of a firm's missions that use `service_id`.
pub async fn lines_of_service(
    db: &mut DbConn<'_>,
    firm_id: i64,
    service_id: i64,
) -> DbResult<Vec<MissionLine>> {
    Ok(with_conn!(db, |c| mission_lines::table
        .filter(mission_lines::firm_id.eq(firm_id))
        .filter(mission_lines::service_id.eq(service_id))
        .order(mission_lines::id)
        .select(MissionLine::as_select())
        .load(c)
        .await)?)
}

/// Moves a line's watermark back to `through` when it is later (never forward): the next pass
/// then re-examines the periods created after `through`.
pub async fn lower_generated_through(
    db: &mut DbConn<'_>,
    line_id: i64,
    through: NaiveDate,
) -> DbResult<usize> {
    Ok(with_conn!(db, |c| diesel::update(
        mission_lines::table
            .find(line_id)
            .filter(mission_lines::generated_through.gt(through))
    )
    .set(mission_lines::generated_through.eq(through))
    .execute(c)
    .await)?)
}

/// The firm's lines with these ids.
pub async fn find_lines(
    db: &mut DbConn<'_>,
    firm_id: i64,
    ids: &[i64],
) -> DbResult<Vec<MissionLine>> {
    Ok(with_conn!(db, |c| mission_lines::table
        .filter(mission_lines::firm_id.eq(firm_id))
        .filter(mission_lines::id.eq_any(ids))
        .select(MissionLine::as_select())
        .load(c)
        .await)?)
}
