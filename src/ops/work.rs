//! The firm's work items: tasks (complete, reopen, assign) and information requests (close,
//! reopen). Closing tells the webhooks in the same transaction and the subscribers after it.

use chrono::Utc;

use super::journal::{self, Entry};
use super::{Actor, Env, OpError, enqueue_webhooks, found};
use crate::db::firms;
use crate::db::work::{self, InformationRequest, Task};
use crate::domain::{DeliveryEvent, RequestStatus, TaskStatus};
use crate::events::RequestEventKind;
use crate::transaction;

/// Marks a task DONE or OPEN again; a cancelled task cannot change.
pub async fn set_task_status(
    env: Env<'_>,
    actor: &Actor,
    id: i64,
    status: TaskStatus,
) -> Result<Task, OpError> {
    let firm_id = actor.firm_side()?.firm_id;
    let mut conn = env.pool.get().await?;
    let mut db = conn.as_db();
    let task = found(work::find_task(&mut db, firm_id, id).await, "task")?;
    check_task_may_change(&task)?;
    let now = Utc::now().naive_utc();
    let completed_at = (status == TaskStatus::Done).then_some(now);
    let kind = if status == TaskStatus::Done {
        "task.completed"
    } else {
        "task.reopened"
    };
    transaction!(conn, |tx| {
        let updated = found(
            work::set_task_status(&mut tx, firm_id, id, status, completed_at).await,
            "task",
        )?;
        journal::record(
            &mut tx,
            actor,
            now,
            &[Entry::new(kind, "task", id)
                .client(updated.client_id)
                .mission(updated.mission_id)
                .status(Some(task.status.as_str()), Some(updated.status.as_str()))],
        )
        .await?;
        Ok::<_, OpError>(updated)
    })
}

/// A cancelled task cannot change (bulk completion checks every task first).
pub(crate) fn check_task_may_change(task: &Task) -> Result<(), OpError> {
    if task.status == TaskStatus::Cancelled {
        return Err(OpError::bad_input("id", "a cancelled task cannot change"));
    }
    Ok(())
}

/// Only an OPEN or ANSWERED request can be closed (bulk closing checks every request first).
pub(crate) fn check_request_closable(request: &InformationRequest) -> Result<(), OpError> {
    if !matches!(
        request.status,
        RequestStatus::Open | RequestStatus::Answered
    ) {
        return Err(OpError::bad_input(
            "id",
            format!("a {} request cannot be closed", request.status.as_str()),
        ));
    }
    Ok(())
}

/// Assigns a task to an active member of the firm (None: unassigned).
pub async fn assign_task(
    env: Env<'_>,
    actor: &Actor,
    id: i64,
    assignee_id: Option<i64>,
) -> Result<Task, OpError> {
    let firm_id = actor.firm_side()?.firm_id;
    let mut conn = env.pool.get().await?;
    let mut db = conn.as_db();
    let task = found(work::find_task(&mut db, firm_id, id).await, "task")?;
    if let Some(assignee_id) = assignee_id {
        let user = found(
            firms::find_user(&mut db, firm_id, assignee_id).await,
            "staff member",
        )?;
        if user.archived_at.is_some() {
            return Err(OpError::NotFound("staff member"));
        }
    }
    let now = Utc::now().naive_utc();
    transaction!(conn, |tx| {
        let updated = found(
            work::assign_task(&mut tx, firm_id, id, assignee_id).await,
            "task",
        )?;
        journal::record(
            &mut tx,
            actor,
            now,
            &[Entry::new("task.assigned", "task", id)
                .client(updated.client_id)
                .mission(updated.mission_id)
                .detail(serde_json::json!({
                    "before": task.assignee_id,
                    "after": updated.assignee_id,
                }))],
        )
        .await?;
        Ok::<_, OpError>(updated)
    })
}

/// Closes a request (answered or not): no more reminders.
pub async fn close_request(
    env: Env<'_>,
    actor: &Actor,
    id: i64,
) -> Result<InformationRequest, OpError> {
    let firm_id = actor.firm_side()?.firm_id;
    let mut conn = env.pool.get().await?;
    let current = found(
        work::find_request(&mut conn.as_db(), firm_id, id).await,
        "information request",
    )?;
    check_request_closable(&current)?;
    let now = Utc::now().naive_utc();
    let closed = transaction!(conn, |tx| {
        let closed = work::transition_request(
            &mut tx,
            firm_id,
            id,
            &[RequestStatus::Open, RequestStatus::Answered],
            RequestStatus::Closed,
            now,
        )
        .await?
        .ok_or_else(|| OpError::changed_meanwhile("request"))?;
        enqueue_webhooks(&mut tx, &closed, DeliveryEvent::RequestClosed).await?;
        journal::record(
            &mut tx,
            actor,
            now,
            &[request_entry("request.closed", &current, &closed)],
        )
        .await?;
        Ok::<_, OpError>(closed)
    })?;
    env.publish(RequestEventKind::Closed, &closed);
    Ok(closed)
}

/// Reopens a closed request (reminders resume).
pub async fn reopen_request(
    env: Env<'_>,
    actor: &Actor,
    id: i64,
) -> Result<InformationRequest, OpError> {
    let firm_id = actor.firm_side()?.firm_id;
    let mut conn = env.pool.get().await?;
    let mut db = conn.as_db();
    let current = found(
        work::find_request(&mut db, firm_id, id).await,
        "information request",
    )?;
    if current.status != RequestStatus::Closed {
        return Err(OpError::bad_input(
            "id",
            format!(
                "only a CLOSED request can be reopened; this one is {}",
                current.status.as_str()
            ),
        ));
    }
    let now = Utc::now().naive_utc();
    transaction!(conn, |tx| {
        let reopened = work::transition_request(
            &mut tx,
            firm_id,
            id,
            &[RequestStatus::Closed],
            RequestStatus::Open,
            now,
        )
        .await?
        .ok_or_else(|| OpError::changed_meanwhile("request"))?;
        journal::record(
            &mut tx,
            actor,
            now,
            &[request_entry("request.reopened", &current, &reopened)],
        )
        .await?;
        Ok::<_, OpError>(reopened)
    })
}

/// The journal entry of a request's move from `before` to `after`.
fn request_entry(
    kind: &'static str,
    before: &InformationRequest,
    after: &InformationRequest,
) -> Entry {
    Entry::new(kind, "request", after.id)
        .client(after.client_id)
        .mission(after.mission_id)
        .status(Some(before.status.as_str()), Some(after.status.as_str()))
}
