//! The firm's work items: tasks (complete, reopen, assign) and information requests (close,
//! reopen). Closing tells the webhooks in the same transaction and the subscribers after it.

use chrono::Utc;

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
    let completed_at = (status == TaskStatus::Done).then(|| Utc::now().naive_utc());
    found(
        work::set_task_status(&mut db, firm_id, id, status, completed_at).await,
        "task",
    )
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
    found(work::find_task(&mut db, firm_id, id).await, "task")?;
    if let Some(assignee_id) = assignee_id {
        let user = found(
            firms::find_user(&mut db, firm_id, assignee_id).await,
            "staff member",
        )?;
        if user.archived_at.is_some() {
            return Err(OpError::NotFound("staff member"));
        }
    }
    found(
        work::assign_task(&mut db, firm_id, id, assignee_id).await,
        "task",
    )
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
    work::transition_request(
        &mut db,
        firm_id,
        id,
        &[RequestStatus::Closed],
        RequestStatus::Open,
        Utc::now().naive_utc(),
    )
    .await?
    .ok_or_else(|| OpError::changed_meanwhile("request"))
}
