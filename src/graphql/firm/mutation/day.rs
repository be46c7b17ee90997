//! Firm mutations of the firm's day: remind a client now, bulk work (one mission template on
//! many clients, signing, completing and closing several at once), imports, calendar feeds
//! and the daily digest preference. Each resolver parses ids and inputs, calls one operation
//! of `crate::ops` with the caller as actor, and maps its answer; no rule lives here.

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};

use super::{MissionLineInput, lines_to_op};
use crate::domain::gid::Kind;
use crate::error::AppError;
use crate::graphql::context::{StaffGuard, gid, parse_id, visible_to_staff};
use crate::graphql::door::{actor, delivery_control, env};
use crate::graphql::firm::types::InformationRequest;
use crate::graphql::scalars::Date;
use crate::ops;
use crate::ops::bulk::BulkOutcome;

/// Remind now, bulk work, imports, calendar feeds, digest preference.
#[derive(Default)]
pub struct DayMutation;

#[Object(guard = "StaffGuard", visible = "visible_to_staff")]
impl DayMutation {
    /// Sends the client a follow-up reminder for an OPEN request at once (an email to each
    /// notified contact, and the reminder webhooks). It counts against the request's reminder
    /// policy: BAD_USER_INPUT on `id` once the policy's maximum is reached, for a request not
    /// OPEN, or for a client with no contact to notify.
    #[graphql(visible = "visible_to_staff")]
    async fn remind_request(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The request's id; NOT_FOUND when the firm has no such request.")] id: ID,
    ) -> async_graphql::Result<InformationRequest> {
        let actor = actor(ctx)?;
        let id = parse_id(&id, Kind::InformationRequest)?;
        let control = delivery_control(ctx);
        let reminded =
            ops::remind::remind_request(env(ctx)?, &actor, id, &control.reminder_defaults).await?;
        control.waker.wake();
        Ok(InformationRequest(reminded.request))
    }

    /// Applies one mission template to many clients: a DRAFT mission per client, all in one
    /// transaction. One refused client (unknown id, a rule of `createMission`) refuses them
    /// all: nothing is created and `errors` lists every refused client. `dryRun` checks and
    /// reports without creating anything.
    #[graphql(visible = "visible_to_staff")]
    async fn create_missions(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The template and the clients to apply it to.")]
        input: CreateMissionsInput,
    ) -> async_graphql::Result<BulkResult> {
        let actor = actor(ctx)?;
        let template = ops::bulk::MissionTemplate {
            name: input.template.name.clone(),
            start_date: input.template.start_date.0,
            end_date: input.template.end_date.map(|date| date.0),
            lines: lines_to_op(&input.template.lines)?,
        };
        let client_ids = bulk_ids(&input.client_ids, Kind::Client, "clientIds")?;
        let outcome =
            ops::bulk::create_missions(env(ctx)?, &actor, &template, &client_ids, input.dry_run)
                .await?;
        Ok(BulkResult::of(outcome, Kind::Client, Kind::Mission))
    }

    /// Signs several DRAFT missions. Every one is checked first as `signMission` checks it;
    /// one refused leaves them all unsigned (`errors` lists each refused mission).
    #[graphql(visible = "visible_to_staff")]
    async fn sign_missions(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The missions and whether to check only.")] input: SignMissionsInput,
    ) -> async_graphql::Result<BulkResult> {
        let actor = actor(ctx)?;
        let ids = bulk_ids(&input.ids, Kind::Mission, "ids")?;
        let outcome = ops::bulk::sign_missions(env(ctx)?, &actor, &ids, input.dry_run).await?;
        Ok(BulkResult::of(outcome, Kind::Mission, Kind::Mission))
    }

    /// Marks several tasks DONE; one missing or cancelled task leaves them all unchanged.
    #[graphql(visible = "visible_to_staff")]
    async fn complete_tasks(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The tasks and whether to check only.")] input: CompleteTasksInput,
    ) -> async_graphql::Result<BulkResult> {
        let actor = actor(ctx)?;
        let ids = bulk_ids(&input.ids, Kind::Task, "ids")?;
        let outcome = ops::bulk::complete_tasks(env(ctx)?, &actor, &ids, input.dry_run).await?;
        Ok(BulkResult::of(outcome, Kind::Task, Kind::Task))
    }

    /// Closes several requests; one missing or not OPEN/ANSWERED leaves them all unchanged.
    #[graphql(visible = "visible_to_staff")]
    async fn close_requests(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The requests and whether to check only.")] input: CloseRequestsInput,
    ) -> async_graphql::Result<BulkResult> {
        let actor = actor(ctx)?;
        let ids = bulk_ids(&input.ids, Kind::InformationRequest, "ids")?;
        let outcome = ops::bulk::close_requests(env(ctx)?, &actor, &ids, input.dry_run).await?;
        Ok(BulkResult::of(
            outcome,
            Kind::InformationRequest,
            Kind::InformationRequest,
        ))
    }

    /// Imports clients and contacts from CSV text (admins only). Header row: `client`,
    /// `reference`, `contact_name`, `contact_email`, `language` (only `client` required).
    /// One refused line refuses the import: nothing changes and `errors` gives each refused
    /// line's number. `dryRun` reports what would be created.
    #[graphql(visible = "visible_to_staff")]
    async fn import_clients(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The CSV text and whether to check only.")] input: ImportClientsInput,
    ) -> async_graphql::Result<ImportResult> {
        let actor = actor(ctx)?;
        let report =
            ops::import::import_clients(env(ctx)?, &actor, &input.csv, input.dry_run).await?;
        Ok(ImportResult {
            dry_run: report.dry_run,
            applied: report.applied,
            clients_created: count(report.clients_created),
            contacts_created: count(report.contacts_created),
            lines_unchanged: count(report.lines_unchanged),
            errors: report
                .errors
                .into_iter()
                .map(|error| ImportLineError {
                    line: count(error.line),
                    field: error.field,
                    message: error.message,
                })
                .collect(),
        })
    }

    /// Changes the caller's own preferences; null fields stay as they are.
    #[graphql(visible = "visible_to_staff")]
    async fn update_my_preferences(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The preferences to change.")] input: UpdateMyPreferencesInput,
    ) -> async_graphql::Result<MyPreferences> {
        let actor = actor(ctx)?;
        let preferences =
            ops::staff::update_my_preferences(env(ctx)?, &actor, input.daily_digest).await?;
        Ok(MyPreferences {
            daily_digest: preferences.daily_digest,
        })
    }
}

/// The rows of a bulk call's ids, all of `kind`: a malformed id or one of another kind refuses
/// the whole call (BAD_USER_INPUT on `field.N`); a well-formed one the firm does not have is
/// that item's NOT_FOUND.
fn bulk_ids(ids: &[ID], kind: Kind, field: &str) -> Result<Vec<i64>, AppError> {
    ids.iter()
        .enumerate()
        .map(|(index, id)| {
            parse_id(id, kind)
                .map_err(|error| AppError::bad_input(format!("{field}.{index}"), error.message()))
        })
        .collect()
}

fn count(value: usize) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

/// A mission without its client, applied to many clients by `createMissions`.
#[derive(InputObject)]
pub struct MissionTemplateInput {
    /// The firm-only name of each mission; not blank.
    pub name: String,
    /// The first day of each mission; the default first due date of its lines.
    pub start_date: Date,
    /// Last day of each mission (inclusive); null for open-ended missions.
    pub end_date: Option<Date>,
    /// The services of each mission, in order.
    pub lines: Vec<MissionLineInput>,
}

/// One mission template and the clients to apply it to.
#[derive(InputObject)]
pub struct CreateMissionsInput {
    /// What each mission is.
    pub template: MissionTemplateInput,
    /// The clients, one mission each (at most 5000; each once).
    pub client_ids: Vec<ID>,
    /// Check and report only; nothing is created.
    #[graphql(default = false)]
    pub dry_run: bool,
}

/// Why one item of a bulk call was refused.
#[derive(SimpleObject)]
#[graphql(guard = "StaffGuard", visible = "visible_to_staff")]
pub struct BulkItemError {
    /// The item's position in the call (0-based).
    pub index: i32,
    /// The item's id as given.
    pub id: ID,
    /// What `extensions.code` a single call would have answered.
    pub code: ErrorCode,
    /// The field refused within the item, when one is.
    pub field: Option<String>,
    /// The reason, for a person.
    pub message: String,
}

/// What a bulk call did, or would have done.
#[derive(SimpleObject)]
#[graphql(guard = "StaffGuard", visible = "visible_to_staff")]
pub struct BulkResult {
    /// The call was a dry run: nothing was written.
    pub dry_run: bool,
    /// The changes were written (no refused item and not a dry run).
    pub applied: bool,
    /// The ids changed or that would be (for `createMissions`, the new missions once applied).
    pub ids: Vec<ID>,
    /// Every refused item; when not empty nothing changed.
    pub errors: Vec<BulkItemError>,
}

/// An error's `extensions.code`, as an enum where a payload carries one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[graphql(visible = "visible_to_staff")]
pub enum ErrorCode {
    /// No valid bearer token was sent.
    Unauthenticated,
    /// The caller may not do this.
    Forbidden,
    /// No such object in the caller's firm (also another firm's id).
    NotFound,
    /// The input broke a rule; `field` names it.
    BadUserInput,
    /// The object changed meanwhile or is in a state that forbids this.
    Conflict,
    /// Too many calls; try again later.
    RateLimited,
    /// Something failed on Rappel's side.
    Internal,
}

impl ErrorCode {
    /// The enum value of an `extensions.code`.
    pub fn of(code: &str) -> Self {
        match code {
            "UNAUTHENTICATED" => Self::Unauthenticated,
            "FORBIDDEN" => Self::Forbidden,
            "NOT_FOUND" => Self::NotFound,
            "BAD_USER_INPUT" => Self::BadUserInput,
            "CONFLICT" => Self::Conflict,
            "RATE_LIMITED" => Self::RateLimited,
            _ => Self::Internal,
        }
    }
}

impl BulkResult {
    /// The answer of a bulk call over rows of `item_kind` whose results are rows of
    /// `result_kind` (`createMissions`: clients in, missions out).
    fn of(outcome: BulkOutcome, item_kind: Kind, result_kind: Kind) -> Self {
        Self {
            dry_run: outcome.dry_run,
            applied: outcome.applied,
            ids: outcome
                .ids
                .into_iter()
                .map(|id| gid(result_kind, id))
                .collect(),
            errors: outcome
                .errors
                .into_iter()
                .map(|error| BulkItemError {
                    index: count(error.index),
                    id: gid(item_kind, error.id),
                    code: ErrorCode::of(error.code),
                    field: error.field,
                    message: error.message,
                })
                .collect(),
        }
    }
}

/// Why one CSV line was refused.
#[derive(SimpleObject)]
#[graphql(guard = "StaffGuard", visible = "visible_to_staff")]
pub struct ImportLineError {
    /// The line's number in the CSV text (the header is line 1).
    pub line: i32,
    /// The column refused, when one is.
    pub field: Option<String>,
    /// The reason, for a person.
    pub message: String,
}

/// What an import did, or would have done.
#[derive(SimpleObject)]
#[graphql(guard = "StaffGuard", visible = "visible_to_staff")]
pub struct ImportResult {
    /// The call was a dry run: nothing was written.
    pub dry_run: bool,
    /// The clients and contacts were written.
    pub applied: bool,
    /// Clients created (or that would be).
    pub clients_created: i32,
    /// Contacts added (or that would be).
    pub contacts_created: i32,
    /// Lines naming a client or contact that already exists: left as they are.
    pub lines_unchanged: i32,
    /// Every refused line; when not empty nothing changed.
    pub errors: Vec<ImportLineError>,
}

/// A staff member's preferences to change (null: unchanged).
#[derive(InputObject)]
pub struct UpdateMyPreferencesInput {
    /// Receive the daily digest email at the firm's sending hour.
    pub daily_digest: Option<bool>,
}

/// A staff member's own preferences.
#[derive(SimpleObject)]
#[graphql(guard = "StaffGuard", visible = "visible_to_staff")]
pub struct MyPreferences {
    /// Whether the daily digest email is sent to them (on by default).
    pub daily_digest: bool,
}

/// Several DRAFT missions to sign at once.
#[derive(InputObject)]
pub struct SignMissionsInput {
    /// The missions' ids (an unknown one is refused as NOT_FOUND in `errors`).
    pub ids: Vec<ID>,
    /// Check and report only; nothing is signed.
    #[graphql(default = false)]
    pub dry_run: bool,
}

/// Several tasks to mark DONE at once.
#[derive(InputObject)]
pub struct CompleteTasksInput {
    /// The tasks' ids (an unknown one is refused as NOT_FOUND in `errors`).
    pub ids: Vec<ID>,
    /// Check and report only; nothing changes.
    #[graphql(default = false)]
    pub dry_run: bool,
}

/// Several requests to close at once.
#[derive(InputObject)]
pub struct CloseRequestsInput {
    /// The requests' ids (an unknown one is refused as NOT_FOUND in `errors`).
    pub ids: Vec<ID>,
    /// Check and report only; nothing changes.
    #[graphql(default = false)]
    pub dry_run: bool,
}

/// Clients and contacts to import from CSV text.
#[derive(InputObject)]
pub struct ImportClientsInput {
    /// The CSV text, header row first.
    pub csv: String,
    /// Check and report only; nothing is created.
    #[graphql(default = false)]
    pub dry_run: bool,
}
