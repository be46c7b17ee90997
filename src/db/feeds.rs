//! Calendar feeds: the secret feed URLs of staff members and contacts (token stored hashed,
//! one live feed per owner), and the reads a feed is made of (work items by due date with
//! their change counts from the journal). Nothing here renders iCalendar (`ops::calendar`).

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::schema::{calendar_feeds, clients, information_requests, journal_entries, tasks};
use super::work::{InformationRequest, Task};
use super::{DbConn, DbResult};
use crate::domain::{RequestStatus, TaskStatus};
use crate::with_conn;

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = calendar_feeds)]
pub struct CalendarFeed {
    pub id: i64,
    pub firm_id: i64,
    pub user_id: Option<i64>,
    pub contact_id: Option<i64>,
    pub token_hash: String,
    pub created_at: NaiveDateTime,
    pub revoked_at: Option<NaiveDateTime>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = calendar_feeds)]
pub struct NewCalendarFeed<'a> {
    pub firm_id: i64,
    pub user_id: Option<i64>,
    pub contact_id: Option<i64>,
    pub token_hash: &'a str,
    pub created_at: NaiveDateTime,
}

/// Who a feed belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedOwner {
    Staff(i64),
    Contact(i64),
}

pub async fn insert(db: &mut DbConn<'_>, new: &NewCalendarFeed<'_>) -> DbResult<CalendarFeed> {
    Ok(with_conn!(db, |c| diesel::insert_into(
        calendar_feeds::table
    )
    .values(new)
    .returning(CalendarFeed::as_returning())
    .get_result(c)
    .await)?)
}

/// The live (not revoked) feed of an owner, if any.
pub async fn find_live(
    db: &mut DbConn<'_>,
    firm_id: i64,
    owner: FeedOwner,
) -> DbResult<Option<CalendarFeed>> {
    Ok(with_conn!(db, |c| {
        let query = calendar_feeds::table
            .filter(calendar_feeds::firm_id.eq(firm_id))
            .filter(calendar_feeds::revoked_at.is_null())
            .into_boxed();
        let query = match owner {
            FeedOwner::Staff(id) => query.filter(calendar_feeds::user_id.eq(id)),
            FeedOwner::Contact(id) => query.filter(calendar_feeds::contact_id.eq(id)),
        };
        query
            .select(CalendarFeed::as_select())
            .first(c)
            .await
            .optional()
    })?)
}

/// Revokes the live feeds of an owner; how many were.
pub async fn revoke_live(
    db: &mut DbConn<'_>,
    firm_id: i64,
    owner: FeedOwner,
    now: NaiveDateTime,
) -> DbResult<usize> {
    Ok(with_conn!(db, |c| {
        let target = calendar_feeds::table
            .filter(calendar_feeds::firm_id.eq(firm_id))
            .filter(calendar_feeds::revoked_at.is_null());
        match owner {
            FeedOwner::Staff(id) => {
                diesel::update(target.filter(calendar_feeds::user_id.eq(id)))
                    .set(calendar_feeds::revoked_at.eq(Some(now)))
                    .execute(c)
                    .await
            }
            FeedOwner::Contact(id) => {
                diesel::update(target.filter(calendar_feeds::contact_id.eq(id)))
                    .set(calendar_feeds::revoked_at.eq(Some(now)))
                    .execute(c)
                    .await
            }
        }
    })?)
}

/// The live feed a token hash names.
pub async fn find_live_by_hash(
    db: &mut DbConn<'_>,
    token_hash: &str,
) -> DbResult<Option<CalendarFeed>> {
    Ok(with_conn!(db, |c| calendar_feeds::table
        .filter(calendar_feeds::token_hash.eq(token_hash))
        .filter(calendar_feeds::revoked_at.is_null())
        .select(CalendarFeed::as_select())
        .first(c)
        .await
        .optional())?)
}

/// A firm's tasks (not cancelled) due between two dates, with their client's name; only those
/// assigned to `assignee_id` when given.
pub async fn feed_tasks(
    db: &mut DbConn<'_>,
    firm_id: i64,
    assignee_id: Option<i64>,
    from: NaiveDate,
    to: NaiveDate,
) -> DbResult<Vec<(Task, String)>> {
    Ok(with_conn!(db, |c| {
        let mut query = tasks::table
            .inner_join(clients::table)
            .filter(tasks::firm_id.eq(firm_id))
            .filter(tasks::status.ne(TaskStatus::Cancelled))
            .filter(tasks::due_date.between(from, to))
            .into_boxed();
        if let Some(assignee_id) = assignee_id {
            query = query.filter(tasks::assignee_id.eq(assignee_id));
        }
        query
            .order((tasks::due_date, tasks::id))
            .select((Task::as_select(), clients::name))
            .load(c)
            .await
    })?)
}

/// A firm's requests (not cancelled) due between two dates, with their client's name; only
/// one client's when given.
pub async fn feed_requests(
    db: &mut DbConn<'_>,
    firm_id: i64,
    client_id: Option<i64>,
    from: NaiveDate,
    to: NaiveDate,
) -> DbResult<Vec<(InformationRequest, String)>> {
    Ok(with_conn!(db, |c| {
        let mut query = information_requests::table
            .inner_join(clients::table)
            .filter(information_requests::firm_id.eq(firm_id))
            .filter(information_requests::status.ne(RequestStatus::Cancelled))
            .filter(information_requests::due_date.between(from, to))
            .into_boxed();
        if let Some(client_id) = client_id {
            query = query.filter(information_requests::client_id.eq(client_id));
        }
        query
            .order((information_requests::due_date, information_requests::id))
            .select((InformationRequest::as_select(), clients::name))
            .load(c)
            .await
    })?)
}

/// For each object of `object_type` among `ids`: how many journal entries it has and when the
/// latest happened (the journal is append-only, so the count only grows).
pub async fn journal_changes(
    db: &mut DbConn<'_>,
    firm_id: i64,
    object_type: &str,
    ids: &[i64],
) -> DbResult<Vec<(i64, i64, Option<NaiveDateTime>)>> {
    use diesel::dsl::{count, max};
    let mut rows = Vec::new();
    for chunk in ids.chunks(500) {
        let object_type = object_type.to_string();
        let chunk = chunk.to_vec();
        rows.extend(with_conn!(db, |c| journal_entries::table
            .filter(journal_entries::firm_id.eq(firm_id))
            .filter(journal_entries::object_type.eq(&object_type))
            .filter(journal_entries::object_id.eq_any(&chunk))
            .group_by(journal_entries::object_id)
            .select((
                journal_entries::object_id,
                count(journal_entries::id),
                max(journal_entries::occurred_at),
            ))
            .load::<(i64, i64, Option<NaiveDateTime>)>(c)
            .await)?);
    }
    Ok(rows)
}
