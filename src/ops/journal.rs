//! The activity journal, written by the operations: every state change is recorded with its
//! actor, in the same transaction as the change (so a rolled-back change leaves no entry and
//! a committed one always has its entry). Nothing here updates or deletes an entry.
//!
//! An operation builds [`Entry`] values and calls [`record`] inside its transaction:
//! ```ignore
//! journal::record(&mut tx, actor, now, &[Entry::new("task.completed", "task", task.id)
//!     .client(task.client_id).mission(task.mission_id).status(Some("OPEN"), Some("DONE"))])
//! .await?;
//! ```

use chrono::NaiveDateTime;

use super::{Actor, OpError};
use crate::db::DbConn;
use crate::db::journal::{self, NewJournalEntry};

/// One state change to record.
#[derive(Debug, Clone, Default)]
pub struct Entry {
    pub kind: &'static str,
    pub object_type: &'static str,
    pub object_id: i64,
    pub client_id: Option<i64>,
    pub mission_id: Option<i64>,
    pub before_status: Option<String>,
    pub after_status: Option<String>,
    /// A JSON object with what the kind needs beside the statuses.
    pub detail: Option<serde_json::Value>,
}

impl Entry {
    /// `kind` such as `mission.signed`; `object_type` such as `mission`.
    pub fn new(kind: &'static str, object_type: &'static str, object_id: i64) -> Self {
        Self {
            kind,
            object_type,
            object_id,
            ..Self::default()
        }
    }

    pub fn client(mut self, client_id: i64) -> Self {
        self.client_id = Some(client_id);
        self
    }

    pub fn mission(mut self, mission_id: i64) -> Self {
        self.mission_id = Some(mission_id);
        self
    }

    /// The status before and after the change (as the API spells it, e.g. `OPEN`).
    pub fn status(mut self, before: Option<&str>, after: Option<&str>) -> Self {
        self.before_status = before.map(str::to_string);
        self.after_status = after.map(str::to_string);
        self
    }

    pub fn detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = Some(detail);
        self
    }
}

/// Who acted, as the journal stores it: (`actor_kind`, user, contact).
fn actor_columns(actor: &Actor) -> (&'static str, Option<i64>, Option<i64>) {
    match *actor {
        Actor::Staff { user_id, .. } => ("STAFF", Some(user_id), None),
        Actor::Contact { contact_id, .. } => ("CONTACT", None, Some(contact_id)),
        Actor::System { .. } => ("SYSTEM", None, None),
    }
}

/// The firm an actor acts in.
fn actor_firm(actor: &Actor) -> i64 {
    match *actor {
        Actor::Staff { firm_id, .. }
        | Actor::Contact { firm_id, .. }
        | Actor::System { firm_id } => firm_id,
    }
}

/// Records `entries` as done by `actor` at `now`, on the transaction's connection.
pub async fn record(
    tx: &mut DbConn<'_>,
    actor: &Actor,
    now: NaiveDateTime,
    entries: &[Entry],
) -> Result<(), OpError> {
    let (actor_kind, actor_user_id, actor_contact_id) = actor_columns(actor);
    let firm_id = actor_firm(actor);
    let details: Vec<Option<String>> = entries
        .iter()
        .map(|entry| entry.detail.as_ref().map(serde_json::Value::to_string))
        .collect();
    let rows: Vec<NewJournalEntry<'_>> = entries
        .iter()
        .zip(&details)
        .map(|(entry, detail)| NewJournalEntry {
            firm_id,
            occurred_at: now,
            actor_kind,
            actor_user_id,
            actor_contact_id,
            kind: entry.kind,
            object_type: entry.object_type,
            object_id: entry.object_id,
            client_id: entry.client_id,
            mission_id: entry.mission_id,
            before_status: entry.before_status.as_deref(),
            after_status: entry.after_status.as_deref(),
            detail: detail.as_deref(),
        })
        .collect();
    journal::insert(tx, &rows).await?;
    Ok(())
}

/// The CSV export's columns, in order.
pub const CSV_COLUMNS: [&str; 13] = [
    "id",
    "occurred_at",
    "actor_kind",
    "actor_user_id",
    "actor_contact_id",
    "kind",
    "object_type",
    "object_id",
    "client_id",
    "mission_id",
    "before_status",
    "after_status",
    "detail",
];

/// Entries read per statement by the export.
const EXPORT_BATCH: i64 = 1000;

/// One CSV field, quoted as RFC 4180 asks when it holds a comma, a quote or a line break.
fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_string()
    }
}

/// Writes the firm's journal since `since` (the firm's local midnight of that day), oldest
/// first, as RFC 4180 CSV (header line, CRLF line ends) into `out`. Admins and the system
/// only. Returns how many entries were written.
pub async fn export_csv(
    env: super::Env<'_>,
    actor: &Actor,
    since: chrono::NaiveDate,
    out: &mut impl std::io::Write,
) -> Result<usize, OpError> {
    let firm_id = actor.admin()?.firm_id;
    let mut conn = env.pool.get().await?;
    let firm = super::found(
        crate::db::firms::find_firm(&mut conn.as_db(), firm_id).await,
        "firm",
    )?;
    let zone = crate::domain::calendar::parse_time_zone(&firm.time_zone)
        .unwrap_or(chrono_tz::Europe::Paris);
    let midnight = since.and_time(chrono::NaiveTime::MIN);
    let since_utc = midnight
        .and_local_timezone(zone)
        .earliest()
        .map_or(midnight, |local| local.naive_utc());
    let io = |error: std::io::Error| OpError::Internal(format!("cannot write the export: {error}"));
    write!(out, "{}\r\n", CSV_COLUMNS.join(",")).map_err(io)?;
    let mut written = 0;
    let mut after_id = 0;
    loop {
        let rows = journal::list_since(
            &mut conn.as_db(),
            firm_id,
            since_utc,
            after_id,
            EXPORT_BATCH,
        )
        .await?;
        let Some(last) = rows.last() else { break };
        after_id = last.id;
        for row in &rows {
            let number = |value: Option<i64>| value.map(|v| v.to_string()).unwrap_or_default();
            let fields = [
                row.id.to_string(),
                row.occurred_at
                    .and_utc()
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                row.actor_kind.clone(),
                number(row.actor_user_id),
                number(row.actor_contact_id),
                row.kind.clone(),
                row.object_type.clone(),
                row.object_id.to_string(),
                number(row.client_id),
                number(row.mission_id),
                row.before_status.clone().unwrap_or_default(),
                row.after_status.clone().unwrap_or_default(),
                row.detail.clone().unwrap_or_default(),
            ];
            let line: Vec<String> = fields.iter().map(|field| csv_field(field)).collect();
            write!(out, "{}\r\n", line.join(",")).map_err(io)?;
            written += 1;
        }
        if i64::try_from(rows.len()).unwrap_or(i64::MAX) < EXPORT_BATCH {
            break;
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::csv_field;

    #[test]
    fn csv_fields_are_quoted_only_when_rfc_4180_needs_it() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field(""), "");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
    }
}
