//! Daily digests: staff members' preference (no row: opted in), the digests sent (one row per
//! member per local day, the key that makes a digest go out once across instances), and the
//! reads a digest is made of. Nothing here renders or sends an email (`delivery::digest`).

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::schema::{
    clients, deliveries, digests_sent, information_requests, journal_entries, staff_preferences,
    tasks,
};
use super::work::{InformationRequest, Task};
use super::{DbConn, DbResult};
use crate::domain::{DeliveryStatus, RequestStatus, TaskStatus};
use crate::with_conn;

/// Whether a member receives the daily digest (true unless they turned it off).
pub async fn daily_digest_enabled(db: &mut DbConn<'_>, user_id: i64) -> DbResult<bool> {
    let value: Option<bool> = with_conn!(db, |c| staff_preferences::table
        .filter(staff_preferences::user_id.eq(user_id))
        .select(staff_preferences::daily_digest)
        .first(c)
        .await
        .optional())?;
    Ok(value.unwrap_or(true))
}

/// Turns a member's daily digest on or off.
pub async fn set_daily_digest(
    db: &mut DbConn<'_>,
    firm_id: i64,
    user_id: i64,
    enabled: bool,
    now: NaiveDateTime,
) -> DbResult<usize> {
    Ok(with_conn!(db, |c| diesel::insert_into(
        staff_preferences::table
    )
    .values((
        staff_preferences::user_id.eq(user_id),
        staff_preferences::firm_id.eq(firm_id),
        staff_preferences::daily_digest.eq(enabled),
        staff_preferences::updated_at.eq(now),
    ))
    .on_conflict(staff_preferences::user_id)
    .do_update()
    .set((
        staff_preferences::daily_digest.eq(enabled),
        staff_preferences::updated_at.eq(now),
    ))
    .execute(c)
    .await)?)
}

/// Claims the digest of a member for a local day: true for the one caller that inserted it.
pub async fn claim(
    db: &mut DbConn<'_>,
    firm_id: i64,
    user_id: i64,
    digest_date: NaiveDate,
    now: NaiveDateTime,
) -> DbResult<bool> {
    let inserted = with_conn!(db, |c| diesel::insert_into(digests_sent::table)
        .values((
            digests_sent::user_id.eq(user_id),
            digests_sent::digest_date.eq(digest_date),
            digests_sent::firm_id.eq(firm_id),
            digests_sent::sent_at.eq(now),
        ))
        .on_conflict((digests_sent::user_id, digests_sent::digest_date))
        .do_nothing()
        .execute(c)
        .await)?;
    Ok(inserted == 1)
}

/// Gives a claim back (the email could not be sent: the next pass tries again).
pub async fn unclaim(db: &mut DbConn<'_>, user_id: i64, digest_date: NaiveDate) -> DbResult<usize> {
    Ok(with_conn!(db, |c| diesel::delete(
        digests_sent::table
            .filter(digests_sent::user_id.eq(user_id))
            .filter(digests_sent::digest_date.eq(digest_date))
    )
    .execute(c)
    .await)?)
}

/// Whether a member's digest of a day went out already.
pub async fn already_sent(
    db: &mut DbConn<'_>,
    user_id: i64,
    digest_date: NaiveDate,
) -> DbResult<bool> {
    let found: Option<i64> = with_conn!(db, |c| digests_sent::table
        .filter(digests_sent::user_id.eq(user_id))
        .filter(digests_sent::digest_date.eq(digest_date))
        .select(digests_sent::user_id)
        .first(c)
        .await
        .optional())?;
    Ok(found.is_some())
}

/// When a member's previous digest went out.
pub async fn last_sent_at(db: &mut DbConn<'_>, user_id: i64) -> DbResult<Option<NaiveDateTime>> {
    Ok(with_conn!(db, |c| digests_sent::table
        .filter(digests_sent::user_id.eq(user_id))
        .select(diesel::dsl::max(digests_sent::sent_at))
        .first(c)
        .await)?)
}

/// A member's OPEN tasks due on or before `until`, with their client's name, by due date.
pub async fn open_tasks_of_assignee(
    db: &mut DbConn<'_>,
    firm_id: i64,
    user_id: i64,
    until: NaiveDate,
) -> DbResult<Vec<(Task, String)>> {
    Ok(with_conn!(db, |c| tasks::table
        .inner_join(clients::table)
        .filter(tasks::firm_id.eq(firm_id))
        .filter(tasks::assignee_id.eq(user_id))
        .filter(tasks::status.eq(TaskStatus::Open))
        .filter(tasks::due_date.le(until))
        .order((tasks::due_date, tasks::id))
        .limit(500)
        .select((Task::as_select(), clients::name))
        .load(c)
        .await)?)
}

/// The firm's requests answered after `since` and still waiting for review (ANSWERED).
pub async fn answered_since(
    db: &mut DbConn<'_>,
    firm_id: i64,
    since: NaiveDateTime,
) -> DbResult<Vec<(InformationRequest, String)>> {
    Ok(with_conn!(db, |c| information_requests::table
        .inner_join(clients::table)
        .filter(information_requests::firm_id.eq(firm_id))
        .filter(information_requests::status.eq(RequestStatus::Answered))
        .filter(information_requests::answered_at.gt(since))
        .order((information_requests::due_date, information_requests::id))
        .limit(500)
        .select((InformationRequest::as_select(), clients::name))
        .load(c)
        .await)?)
}

/// How many of the firm's deliveries failed for good (FAILED or DEAD) since `since`: those
/// created after it, and older ones a bounce failed after it (a bounce comes back hours or
/// days after the email left, often after the next digest; `delivery.bounced` journals when).
pub async fn failed_deliveries_since(
    db: &mut DbConn<'_>,
    firm_id: i64,
    since: NaiveDateTime,
) -> DbResult<i64> {
    let bounced_since = journal_entries::table
        .filter(journal_entries::firm_id.eq(firm_id))
        .filter(journal_entries::kind.eq("delivery.bounced"))
        .filter(journal_entries::occurred_at.gt(since))
        .select(journal_entries::object_id);
    Ok(with_conn!(db, |c| deliveries::table
        .filter(deliveries::firm_id.eq(firm_id))
        .filter(deliveries::status.eq_any([DeliveryStatus::Failed, DeliveryStatus::Dead]))
        .filter(
            deliveries::created_at
                .gt(since)
                .or(deliveries::id.eq_any(bounced_since))
        )
        .count()
        .get_result(c)
        .await)?)
}
