//! Firm mutations: tasks (complete, reopen, assign) and information requests (close, reopen). Each resolver parses ids and inputs, calls one
//! operation of `crate::ops::work` with the caller as actor, and maps its answer.

use async_graphql::{Context, ID, InputObject, Object};

use crate::domain::TaskStatus;
use crate::domain::gid::Kind;
use crate::graphql::context::{StaffGuard, parse_id, visible_to_staff};
use crate::graphql::door::{actor, env};
use crate::graphql::firm::types::{InformationRequest, Task};
use crate::ops;

/// Tasks (complete, reopen, assign) and information requests (close, reopen).
#[derive(Default)]
pub struct WorkMutation;

#[Object(guard = "StaffGuard", visible = "visible_to_staff")]
impl WorkMutation {
    #[graphql(visible = "visible_to_staff")]
    /// Marks a task DONE.
    async fn complete_task(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The task's id; NOT_FOUND when the firm has no such task.")] id: ID,
    ) -> async_graphql::Result<Task> {
        set_task(ctx, id, TaskStatus::Done).await
    }

    #[graphql(visible = "visible_to_staff")]
    /// Reopens a task: OPEN again.
    async fn reopen_task(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The task's id; NOT_FOUND when the firm has no such task.")] id: ID,
    ) -> async_graphql::Result<Task> {
        set_task(ctx, id, TaskStatus::Open).await
    }

    /// Assigns a task to a member of the firm (null: unassigned).
    #[graphql(visible = "visible_to_staff")]
    async fn assign_task(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The task and its new assignee.")] input: AssignTaskInput,
    ) -> async_graphql::Result<Task> {
        let actor = actor(ctx)?;
        let id = parse_id(&input.id, Kind::Task)?;
        let assignee_id = input
            .assignee_id
            .as_ref()
            .map(|id| parse_id(id, Kind::StaffMember))
            .transpose()?;
        Ok(Task(
            ops::work::assign_task(env(ctx)?, &actor, id, assignee_id).await?,
        ))
    }

    /// Closes a request (answered or not): no more reminders.
    #[graphql(visible = "visible_to_staff")]
    async fn close_request(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The request's id; NOT_FOUND when the firm has no such request.")] id: ID,
    ) -> async_graphql::Result<InformationRequest> {
        let actor = actor(ctx)?;
        let id = parse_id(&id, Kind::InformationRequest)?;
        Ok(InformationRequest(
            ops::work::close_request(env(ctx)?, &actor, id).await?,
        ))
    }

    /// Reopens a closed request (reminders resume).
    #[graphql(visible = "visible_to_staff")]
    async fn reopen_request(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The request's id; NOT_FOUND when the firm has no such request.")] id: ID,
    ) -> async_graphql::Result<InformationRequest> {
        let actor = actor(ctx)?;
        let id = parse_id(&id, Kind::InformationRequest)?;
        Ok(InformationRequest(
            ops::work::reopen_request(env(ctx)?, &actor, id).await?,
        ))
    }
}

async fn set_task(ctx: &Context<'_>, id: ID, status: TaskStatus) -> async_graphql::Result<Task> {
    let actor = actor(ctx)?;
    let id = parse_id(&id, Kind::Task)?;
    Ok(Task(
        ops::work::set_task_status(env(ctx)?, &actor, id, status).await?,
    ))
}

/// A task and the member to assign it to.
#[derive(InputObject)]
pub struct AssignTaskInput {
    /// The task's id; NOT_FOUND when the firm has no such task.
    pub id: ID,
    /// The id of an active member of the firm; null to unassign.
    pub assignee_id: Option<ID>,
}
