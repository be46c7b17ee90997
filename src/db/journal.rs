//! The activity journal's rows: append-only (the migrations' triggers refuse UPDATE and
//! DELETE on both backends), every read scoped by firm.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::schema::journal_entries;
use super::{DbConn, DbResult};
use crate::with_conn;

/// One recorded state change.
#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = journal_entries)]
pub struct JournalEntry {
    pub id: i64,
    pub firm_id: i64,
    pub occurred_at: NaiveDateTime,
    /// `STAFF`, `CONTACT` or `SYSTEM`.
    pub actor_kind: String,
    pub actor_user_id: Option<i64>,
    pub actor_contact_id: Option<i64>,
    /// What happened, e.g. `mission.signed`, `request.answered`, `task.completed`.
    pub kind: String,
    /// What it happened to: `mission`, `request`, `task`, `client`, `contact`, `staff`,
    /// `webhook_endpoint`, `firm`.
    pub object_type: String,
    pub object_id: i64,
    pub client_id: Option<i64>,
    pub mission_id: Option<i64>,
    pub before_status: Option<String>,
    pub after_status: Option<String>,
    /// A short JSON object with what the kind needs beside the statuses (e.g. the assignee).
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = journal_entries)]
pub struct NewJournalEntry<'a> {
    pub firm_id: i64,
    pub occurred_at: NaiveDateTime,
    pub actor_kind: &'a str,
    pub actor_user_id: Option<i64>,
    pub actor_contact_id: Option<i64>,
    pub kind: &'a str,
    pub object_type: &'a str,
    pub object_id: i64,
    pub client_id: Option<i64>,
    pub mission_id: Option<i64>,
    pub before_status: Option<&'a str>,
    pub after_status: Option<&'a str>,
    pub detail: Option<&'a str>,
}

/// Appends entries, one statement each (SQLite cannot batch rows with optional values).
pub async fn insert(db: &mut DbConn<'_>, entries: &[NewJournalEntry<'_>]) -> DbResult<usize> {
    let mut inserted = 0;
    for entry in entries {
        inserted += with_conn!(db, |c| diesel::insert_into(journal_entries::table)
            .values(entry)
            .execute(c)
            .await)?;
    }
    Ok(inserted)
}

/// How many entries of these kinds exist, in every firm (for checks and diagnostics).
pub async fn count_kinds(db: &mut DbConn<'_>, kinds: &[&str]) -> DbResult<i64> {
    let kinds: Vec<String> = kinds.iter().map(|kind| kind.to_string()).collect();
    Ok(with_conn!(db, |c| journal_entries::table
        .filter(journal_entries::kind.eq_any(&kinds))
        .count()
        .get_result(c)
        .await)?)
}
