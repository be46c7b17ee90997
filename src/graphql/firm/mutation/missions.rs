//! Firm mutations: missions and their life: create, edit, add a line, sign, end, cancel. Each resolver parses ids and inputs, calls one
//! operation of `crate::ops::missions` with the caller as actor, and maps its answer.

use async_graphql::{Context, ID, InputObject, Object};

use super::{CreateMissionInput, MissionLineInput, UpdateMissionInput, lines_to_op};
use crate::domain::gid::Kind;
use crate::graphql::context::{StaffGuard, parse_id, visible_to_staff};
use crate::graphql::door::{actor, env};
use crate::graphql::firm::types::Mission;
use crate::graphql::scalars::Date;
use crate::ops;

/// Missions and their life: create, edit, add a line, sign, end, cancel.
#[derive(Default)]
pub struct MissionsMutation;

#[Object(guard = "StaffGuard", visible = "visible_to_staff")]
impl MissionsMutation {
    /// Creates a DRAFT mission with its lines; nothing is generated until it is signed.
    #[graphql(visible = "visible_to_staff")]
    async fn create_mission(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The new mission.")] input: CreateMissionInput,
    ) -> async_graphql::Result<Mission> {
        let actor = actor(ctx)?;
        let input = input.to_op()?;
        Ok(Mission(
            ops::missions::create_mission(env(ctx)?, &actor, &input).await?,
        ))
    }

    #[graphql(visible = "visible_to_staff")]
    /// Changes a mission, within the rules of its input type.
    async fn update_mission(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "The mission's id and new values (every field is checked; BAD_USER_INPUT names the one refused)."
        )]
        input: UpdateMissionInput,
    ) -> async_graphql::Result<Mission> {
        let actor = actor(ctx)?;
        let id = parse_id(&input.id, Kind::Mission)?;
        let input = ops::missions::MissionUpdateInput {
            name: input.name,
            start_date: input.start_date.map(|date| date.0),
            end_date: input.end_date.map(|date| date.0),
            clear_end_date: input.clear_end_date,
            lines: input.lines.as_deref().map(lines_to_op).transpose()?,
        };
        Ok(Mission(
            ops::missions::update_mission(env(ctx)?, &actor, id, &input).await?,
        ))
    }

    /// Adds a line to a DRAFT mission, or to a SIGNED one from today on (its first due date
    /// may not lie in the past); a signed mission generates the new line at once.
    #[graphql(visible = "visible_to_staff")]
    async fn add_mission_line(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mission and its new line.")] input: AddMissionLineInput,
    ) -> async_graphql::Result<Mission> {
        let actor = actor(ctx)?;
        let mission_id = parse_id(&input.mission_id, Kind::Mission)?;
        let line = input.line.to_op()?;
        Ok(Mission(
            ops::missions::add_mission_line(env(ctx)?, &actor, mission_id, &line).await?,
        ))
    }

    /// Signs a DRAFT mission: generation starts, and everything already due to be created
    /// (past periods included) is created at once.
    #[graphql(visible = "visible_to_staff")]
    async fn sign_mission(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mission's id; NOT_FOUND when the firm has no such mission.")] id: ID,
    ) -> async_graphql::Result<Mission> {
        let actor = actor(ctx)?;
        let id = parse_id(&id, Kind::Mission)?;
        Ok(Mission(
            ops::missions::sign_mission(env(ctx)?, &actor, id).await?,
        ))
    }

    /// Ends a SIGNED mission now: nothing more is generated. `endDate` (default: today, or the
    /// start date of a mission not started yet) records when it ended and cannot be later; to
    /// stop at a future date, set `endDate` with `updateMission` instead. Open requests stay
    /// open for the client to answer.
    #[graphql(visible = "visible_to_staff")]
    async fn end_mission(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mission and the day it ended.")] input: EndMissionInput,
    ) -> async_graphql::Result<Mission> {
        let actor = actor(ctx)?;
        let id = parse_id(&input.id, Kind::Mission)?;
        let end_date = input.end_date.map(|date| date.0);
        Ok(Mission(
            ops::missions::end_mission(env(ctx)?, &actor, id, end_date).await?,
        ))
    }

    /// Cancels a DRAFT or SIGNED mission, and its open requests and tasks with it.
    #[graphql(visible = "visible_to_staff")]
    async fn cancel_mission(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mission's id; NOT_FOUND when the firm has no such mission.")] id: ID,
    ) -> async_graphql::Result<Mission> {
        let actor = actor(ctx)?;
        let id = parse_id(&id, Kind::Mission)?;
        Ok(Mission(
            ops::missions::cancel_mission(env(ctx)?, &actor, id).await?,
        ))
    }
}

/// A new line for a DRAFT or SIGNED mission: the mission's id and the line's fields.
#[derive(InputObject)]
pub struct AddMissionLineInput {
    /// The id of a DRAFT or SIGNED mission; NOT_FOUND when the firm has no such mission.
    pub mission_id: ID,
    /// The new line; on a signed mission its first due date may not lie before the firm's today.
    #[graphql(flatten)]
    pub line: MissionLineInput,
}

/// A mission to end and the day it ended.
#[derive(InputObject)]
pub struct EndMissionInput {
    /// The mission's id; NOT_FOUND when the firm has no such mission.
    pub id: ID,
    /// The day the mission ended (inclusive); default the firm's today, or the start date of a
    /// mission not started yet. Not later than that.
    pub end_date: Option<Date>,
}
