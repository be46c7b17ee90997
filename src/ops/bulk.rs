//! Bulk work: one mission template applied to many clients, several missions signed, several
//! tasks completed, several requests closed, each in one call. Every item is checked first by
//! the single-item operation's own rules (`validate_mission_input`, `check_signable`,
//! `check_task_may_change`, `check_request_closable`); one refused item refuses the whole
//! call and changes nothing, and the answer lists every refused item with its reason. A dry
//! run checks and reports what would change, and writes nothing.
//!
//! Never here: a rule of its own about missions, tasks or requests (those live in the
//! single-item operations), or SQL (that is `crate::db`).

use std::collections::HashSet;

use chrono::{NaiveDate, Utc};

use super::journal::{self, Entry};
use super::missions::{MissionInput, MissionLineInput, check_signable, new_lines};
use super::work::{check_request_closable, check_task_may_change};
use super::{Actor, Env, OpError, found};
use crate::db::missions::{self, NewMission};
use crate::db::work as work_db;
use crate::domain::{MissionStatus, TaskStatus};
use crate::transaction;

/// Most items one bulk call takes.
pub const MAX_BULK_ITEMS: usize = 5_000;

/// A mission without its client: what `createMissions` applies to each client.
#[derive(Debug, Clone)]
pub struct MissionTemplate {
    pub name: String,
    pub start_date: NaiveDate,
    pub end_date: Option<NaiveDate>,
    pub lines: Vec<MissionLineInput>,
}

impl MissionTemplate {
    /// This template for one client.
    pub fn for_client(&self, client_id: i64) -> MissionInput {
        MissionInput {
            client_id,
            name: self.name.clone(),
            start_date: self.start_date,
            end_date: self.end_date,
            lines: self.lines.clone(),
        }
    }
}

/// Why one item of a bulk call was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemError {
    /// The item's position in the call (0-based).
    pub index: usize,
    /// The item's id as given.
    pub id: i64,
    /// The error's `extensions.code` (NOT_FOUND, BAD_USER_INPUT, ...).
    pub code: &'static str,
    /// The field refused within the item, when one is.
    pub field: Option<String>,
    pub message: String,
}

impl ItemError {
    fn new(index: usize, id: i64, error: &OpError) -> Self {
        Self {
            index,
            id,
            code: error.code(),
            field: match error {
                OpError::BadUserInput { field, .. } => field.clone(),
                _ => None,
            },
            message: error.message(),
        }
    }
}

/// What a bulk call did or, in a dry run or when refused, would have done.
#[derive(Debug, Clone, Default)]
pub struct BulkOutcome {
    pub dry_run: bool,
    /// True when the changes were written (no error, not a dry run).
    pub applied: bool,
    /// The ids changed (or that would be): the new missions' ids for `create_missions`
    /// (empty in a dry run), the given ids otherwise.
    pub ids: Vec<i64>,
    /// Every refused item; non-empty means nothing changed.
    pub errors: Vec<ItemError>,
}

/// Sorts one item's check: its value when it passed, its refusal kept for the report (None),
/// or the whole call stopped when the failure is ours (INTERNAL), not the item's.
fn item_checked<T>(
    errors: &mut Vec<ItemError>,
    index: usize,
    id: i64,
    checked: Result<T, OpError>,
) -> Result<Option<T>, OpError> {
    match checked {
        Ok(value) => Ok(Some(value)),
        Err(OpError::Internal(detail)) => Err(OpError::Internal(detail)),
        Err(error) => {
            errors.push(ItemError::new(index, id, &error));
            Ok(None)
        }
    }
}

/// Refuses an empty or oversized list, and reports repeated ids.
fn check_ids(field: &str, ids: &[i64]) -> Result<Vec<ItemError>, OpError> {
    if ids.is_empty() {
        return Err(OpError::bad_input(field, "give at least one id"));
    }
    if ids.len() > MAX_BULK_ITEMS {
        return Err(OpError::bad_input(
            field,
            format!("at most {MAX_BULK_ITEMS} ids in one call"),
        ));
    }
    let mut seen = HashSet::new();
    Ok(ids
        .iter()
        .enumerate()
        .filter(|(_, id)| !seen.insert(**id))
        .map(|(index, id)| ItemError {
            index,
            id: *id,
            code: "BAD_USER_INPUT",
            field: Some(field.to_string()),
            message: format!("{id} is given twice"),
        })
        .collect())
}

/// Creates one DRAFT mission from `template` for each client, all in one transaction, or
/// none when any client or the template is refused.
pub async fn create_missions(
    env: Env<'_>,
    actor: &Actor,
    template: &MissionTemplate,
    client_ids: &[i64],
    dry_run: bool,
) -> Result<BulkOutcome, OpError> {
    let firm_id = actor.firm_side()?.firm_id;
    let mut errors = check_ids("clientIds", client_ids)?;
    let mut conn = env.pool.get().await?;
    let limits = env.limits();
    let mut validated = Vec::with_capacity(client_ids.len());
    {
        let mut db = conn.as_db();
        for (index, client_id) in client_ids.iter().enumerate() {
            let checked = super::missions::validate_mission_input(
                &mut db,
                firm_id,
                &template.for_client(*client_id),
                &limits,
            )
            .await;
            validated.extend(item_checked(&mut errors, index, *client_id, checked)?);
        }
    }
    errors.sort_by_key(|error| error.index);
    if !errors.is_empty() || dry_run {
        return Ok(BulkOutcome {
            dry_run,
            applied: false,
            ids: Vec::new(),
            errors,
        });
    }
    let now = Utc::now().naive_utc();
    let ids = transaction!(conn, |tx| {
        let mut ids = Vec::with_capacity(validated.len());
        let mut entries = Vec::with_capacity(validated.len());
        let mut lines = Vec::new();
        for mission in &validated {
            let row = missions::insert_mission(
                &mut tx,
                &NewMission {
                    firm_id,
                    client_id: mission.client_id,
                    name: &mission.name,
                    start_date: mission.window.start_date,
                    end_date: mission.window.end_date,
                    status: MissionStatus::Draft,
                    created_at: now,
                },
            )
            .await?;
            lines.extend(new_lines(firm_id, row.id, &mission.lines, now));
            entries.push(
                Entry::new("mission.created", "mission", row.id)
                    .client(row.client_id)
                    .mission(row.id)
                    .status(None, Some("DRAFT"))
                    .detail(serde_json::json!({ "bulk": true })),
            );
            ids.push(row.id);
        }
        for chunk in lines.chunks(1_000) {
            missions::insert_lines(&mut tx, chunk).await?;
        }
        journal::record(&mut tx, actor, now, &entries).await?;
        Ok::<_, OpError>(ids)
    })?;
    Ok(BulkOutcome {
        dry_run,
        applied: true,
        ids,
        errors,
    })
}

/// Signs several DRAFT missions: every one is checked first (as `signMission` checks it), and
/// one refused leaves them all unsigned; then each is signed and generated in turn.
pub async fn sign_missions(
    env: Env<'_>,
    actor: &Actor,
    ids: &[i64],
    dry_run: bool,
) -> Result<BulkOutcome, OpError> {
    let firm_id = actor.firm_side()?.firm_id;
    let mut errors = check_ids("ids", ids)?;
    {
        let mut conn = env.pool.get().await?;
        let mut db = conn.as_db();
        for (index, id) in ids.iter().enumerate() {
            let checked = check_signable(&mut db, firm_id, *id, &env.limits()).await;
            item_checked(&mut errors, index, *id, checked)?;
        }
    }
    finish(errors, ids, dry_run, async || {
        for id in ids {
            super::missions::sign_mission(env, actor, *id).await?;
        }
        Ok(())
    })
    .await
}

/// Marks several tasks DONE, or none when one is missing or cancelled.
pub async fn complete_tasks(
    env: Env<'_>,
    actor: &Actor,
    ids: &[i64],
    dry_run: bool,
) -> Result<BulkOutcome, OpError> {
    let firm_id = actor.firm_side()?.firm_id;
    let mut errors = check_ids("ids", ids)?;
    {
        let mut conn = env.pool.get().await?;
        let mut db = conn.as_db();
        for (index, id) in ids.iter().enumerate() {
            let checked = found(work_db::find_task(&mut db, firm_id, *id).await, "task")
                .and_then(|task| check_task_may_change(&task));
            item_checked(&mut errors, index, *id, checked)?;
        }
    }
    finish(errors, ids, dry_run, async || {
        for id in ids {
            super::work::set_task_status(env, actor, *id, TaskStatus::Done).await?;
        }
        Ok(())
    })
    .await
}

/// Closes several requests, or none when one is missing or not OPEN/ANSWERED.
pub async fn close_requests(
    env: Env<'_>,
    actor: &Actor,
    ids: &[i64],
    dry_run: bool,
) -> Result<BulkOutcome, OpError> {
    let firm_id = actor.firm_side()?.firm_id;
    let mut errors = check_ids("ids", ids)?;
    {
        let mut conn = env.pool.get().await?;
        let mut db = conn.as_db();
        for (index, id) in ids.iter().enumerate() {
            let checked = found(
                work_db::find_request(&mut db, firm_id, *id).await,
                "information request",
            )
            .and_then(|request| check_request_closable(&request));
            item_checked(&mut errors, index, *id, checked)?;
        }
    }
    finish(errors, ids, dry_run, async || {
        for id in ids {
            super::work::close_request(env, actor, *id).await?;
        }
        Ok(())
    })
    .await
}

/// Applies `apply` when every item passed its checks and this is not a dry run.
async fn finish(
    mut errors: Vec<ItemError>,
    ids: &[i64],
    dry_run: bool,
    apply: impl AsyncFnOnce() -> Result<(), OpError>,
) -> Result<BulkOutcome, OpError> {
    errors.sort_by_key(|error| error.index);
    let applied = errors.is_empty() && !dry_run;
    if applied {
        apply().await?;
    }
    Ok(BulkOutcome {
        dry_run,
        applied,
        ids: if errors.is_empty() {
            ids.to_vec()
        } else {
            Vec::new()
        },
        errors,
    })
}
