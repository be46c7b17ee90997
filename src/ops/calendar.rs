//! Calendar feeds: a secret iCalendar (RFC 5545) URL per staff member or contact, created,
//! rotated and revoked by its owner (the token is shown once and stored hashed), and the feed
//! it serves: work items as all-day events on their due dates, with stable UIDs, a SEQUENCE
//! that only grows (the item's journal entries) and LAST-MODIFIED, the status in the summary.
//! A staff feed shows the firm's tasks and requests (or only the tasks assigned to its owner);
//! a contact's feed shows its own client's requests and never a task.
//!
//! Never here: HTTP types (the `/calendar/{token}.ics` route is the door), SQL (that is
//! `crate::db::feeds`), or a firm-only field (task, service or mission name) in a contact's
//! feed.

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use icalendar::{Calendar, Component, Event, EventLike};

use super::journal::{self, Entry};
use super::{Actor, Env, OpError, found};
use crate::auth::{new_token, token_hash};
use crate::db::feeds::{self, CalendarFeed, FeedOwner, NewCalendarFeed};
use crate::db::{clients, firms};
use crate::generation::firm_today;
use crate::transaction;

/// Days before today a feed still shows.
const FEED_DAYS_BACK: u64 = 180;
/// Days after today a feed shows.
const FEED_DAYS_AHEAD: u64 = 400;
/// Longest summary text taken from a request's text.
const SUMMARY_CHARS: usize = 120;

/// A feed just created or rotated: its secret token, shown this once.
#[derive(Debug, Clone)]
pub struct FeedWithToken {
    pub feed: CalendarFeed,
    pub token: String,
}

/// The URL path of a feed's token (the door prefixes the public base URL).
pub fn feed_path(token: &str) -> String {
    format!("/calendar/{token}.ics")
}

/// Whose feed the actor manages, and the client of a contact.
fn owner_of(actor: &Actor) -> Result<(i64, FeedOwner, Option<i64>), OpError> {
    match *actor {
        Actor::Staff {
            user_id, firm_id, ..
        } => Ok((firm_id, FeedOwner::Staff(user_id), None)),
        Actor::Contact {
            contact_id,
            client_id,
            firm_id,
        } => Ok((firm_id, FeedOwner::Contact(contact_id), Some(client_id))),
        Actor::System { .. } => Err(OpError::Forbidden(
            "a calendar feed belongs to a staff member or a contact".into(),
        )),
    }
}

fn feed_entry(kind: &'static str, feed: &CalendarFeed, client_id: Option<i64>) -> Entry {
    let entry = Entry::new(kind, "calendar_feed", feed.id);
    match client_id {
        Some(client_id) => entry.client(client_id),
        None => entry,
    }
}

/// Creates the actor's calendar feed; CONFLICT when one is live (rotate or revoke it).
pub async fn create_feed(env: Env<'_>, actor: &Actor) -> Result<FeedWithToken, OpError> {
    issue(env, actor, false).await
}

/// Replaces the actor's live feed URL by a new one: the old URL answers 404 from now on.
pub async fn rotate_feed(env: Env<'_>, actor: &Actor) -> Result<FeedWithToken, OpError> {
    issue(env, actor, true).await
}

async fn issue(env: Env<'_>, actor: &Actor, rotate: bool) -> Result<FeedWithToken, OpError> {
    let (firm_id, owner, client_id) = owner_of(actor)?;
    let token = new_token();
    let hash = token_hash(&token);
    let now = Utc::now().naive_utc();
    let mut conn = env.pool.get().await?;
    let feed = transaction!(conn, |tx| {
        let live = feeds::find_live(&mut tx, firm_id, owner).await?;
        match (rotate, live.is_some()) {
            (false, true) => {
                return Err(OpError::Conflict(
                    "you already have a calendar feed; rotate or revoke it".into(),
                ));
            }
            (true, false) => return Err(OpError::NotFound("calendar feed")),
            _ => {}
        }
        feeds::revoke_live(&mut tx, firm_id, owner, now).await?;
        let (user_id, contact_id) = match owner {
            FeedOwner::Staff(id) => (Some(id), None),
            FeedOwner::Contact(id) => (None, Some(id)),
        };
        let feed = feeds::insert(
            &mut tx,
            &NewCalendarFeed {
                firm_id,
                user_id,
                contact_id,
                token_hash: &hash,
                created_at: now,
            },
        )
        .await?;
        let kind = if rotate {
            "calendar_feed.rotated"
        } else {
            "calendar_feed.created"
        };
        journal::record(&mut tx, actor, now, &[feed_entry(kind, &feed, client_id)]).await?;
        Ok::<_, OpError>(feed)
    })?;
    Ok(FeedWithToken { feed, token })
}

/// Revokes the actor's live feed: its URL answers 404 from now on.
pub async fn revoke_feed(env: Env<'_>, actor: &Actor) -> Result<CalendarFeed, OpError> {
    let (firm_id, owner, client_id) = owner_of(actor)?;
    let now = Utc::now().naive_utc();
    let mut conn = env.pool.get().await?;
    transaction!(conn, |tx| {
        let Some(feed) = feeds::find_live(&mut tx, firm_id, owner).await? else {
            return Err(OpError::NotFound("calendar feed"));
        };
        feeds::revoke_live(&mut tx, firm_id, owner, now).await?;
        journal::record(
            &mut tx,
            actor,
            now,
            &[feed_entry("calendar_feed.revoked", &feed, client_id)],
        )
        .await?;
        Ok::<_, OpError>(feed)
    })
}

/// Which items a staff feed shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaffScope {
    /// The firm's tasks and requests.
    Firm,
    /// Only the tasks assigned to the feed's owner.
    Mine,
}

/// The iCalendar text of the live feed `token` names at `now`, or None (unknown, rotated or
/// revoked token; owner archived): the door answers 404 without saying which.
pub async fn render_feed(
    env: Env<'_>,
    token: &str,
    scope: StaffScope,
    now: DateTime<Utc>,
) -> Result<Option<String>, OpError> {
    let mut conn = env.pool.get().await?;
    let mut db = conn.as_db();
    let Some(feed) = feeds::find_live_by_hash(&mut db, &token_hash(token)).await? else {
        return Ok(None);
    };
    let firm = found(firms::find_firm(&mut db, feed.firm_id).await, "firm")?;
    let today = firm_today(&firm, now);
    let from = today - Duration::days(FEED_DAYS_BACK as i64);
    let to = today + Duration::days(FEED_DAYS_AHEAD as i64);
    let mut calendar = Calendar::new();
    calendar.name(&format!("Rappel — {}", firm.name));
    match (feed.user_id, feed.contact_id) {
        (Some(user_id), _) => {
            let user = found(firms::find_user(&mut db, firm.id, user_id).await, "user")?;
            if user.archived_at.is_some() {
                return Ok(None);
            }
            let assignee = (scope == StaffScope::Mine).then_some(user_id);
            let tasks = feeds::feed_tasks(&mut db, firm.id, assignee, from, to).await?;
            let ids: Vec<i64> = tasks.iter().map(|(task, _)| task.id).collect();
            let changes = feeds::journal_changes(&mut db, firm.id, "task", &ids).await?;
            for (task, client_name) in &tasks {
                let (sequence, journaled) = change_of(&changes, task.id);
                let modified = latest(&[Some(task.created_at), task.completed_at, journaled]);
                calendar.push(event(
                    &format!("rappel-task-{}@{}", task.id, firm.id),
                    &format!("[{}] {} — {client_name}", task.status.as_str(), task.title),
                    task.due_date,
                    sequence,
                    modified,
                ));
            }
            if scope == StaffScope::Firm {
                push_requests(&mut db, &mut calendar, firm.id, None, (from, to), true).await?;
            }
        }
        (None, Some(contact_id)) => {
            let contact = found(
                clients::find_contact(&mut db, firm.id, contact_id).await,
                "contact",
            )?;
            let client = found(
                clients::find_client(&mut db, firm.id, contact.client_id).await,
                "client",
            )?;
            if contact.archived_at.is_some() || client.archived_at.is_some() {
                return Ok(None);
            }
            push_requests(
                &mut db,
                &mut calendar,
                firm.id,
                Some(client.id),
                (from, to),
                false,
            )
            .await?;
        }
        (None, None) => return Ok(None),
    }
    Ok(Some(calendar.done().to_string()))
}

/// Adds the requests of a firm (or of one client) to a feed; `with_client` names the client
/// in each summary (a staff feed).
async fn push_requests(
    db: &mut crate::db::DbConn<'_>,
    calendar: &mut Calendar,
    firm_id: i64,
    client_id: Option<i64>,
    (from, to): (chrono::NaiveDate, chrono::NaiveDate),
    with_client: bool,
) -> Result<(), OpError> {
    let requests = feeds::feed_requests(db, firm_id, client_id, from, to).await?;
    let ids: Vec<i64> = requests.iter().map(|(request, _)| request.id).collect();
    let changes = feeds::journal_changes(db, firm_id, "request", &ids).await?;
    for (request, client_name) in &requests {
        let (sequence, journaled) = change_of(&changes, request.id);
        let modified = latest(&[
            Some(request.created_at),
            request.answered_at,
            request.closed_at,
            journaled,
        ]);
        let text: String = request.text.chars().take(SUMMARY_CHARS).collect();
        let summary = if with_client {
            format!("[{}] {text} — {client_name}", request.status.as_str())
        } else {
            format!("[{}] {text}", request.status.as_str())
        };
        calendar.push(event(
            &format!("rappel-request-{}@{}", request.id, firm_id),
            &summary,
            request.due_date,
            sequence,
            modified,
        ));
    }
    Ok(())
}

/// An item's journal entry count (its SEQUENCE) and latest entry.
fn change_of(
    changes: &[(i64, i64, Option<NaiveDateTime>)],
    id: i64,
) -> (u32, Option<NaiveDateTime>) {
    changes
        .iter()
        .find(|(object_id, _, _)| *object_id == id)
        .map_or((0, None), |(_, count, at)| {
            (u32::try_from(*count).unwrap_or(u32::MAX), *at)
        })
}

fn latest(instants: &[Option<NaiveDateTime>]) -> DateTime<Utc> {
    instants
        .iter()
        .flatten()
        .max()
        .copied()
        .unwrap_or_default()
        .and_utc()
}

fn event(
    uid: &str,
    summary: &str,
    due_date: chrono::NaiveDate,
    sequence: u32,
    modified: DateTime<Utc>,
) -> Event {
    Event::new()
        .uid(uid)
        .summary(summary)
        .all_day(due_date)
        .sequence(sequence)
        .last_modified(modified)
        .timestamp(modified)
        .done()
}
