//! Firm mutations: the catalogue, clients and contacts, missions and their life, work items,
//! staff and access tokens. Each resolver is a door over one operation of `crate::ops`: it
//! parses ids and inputs, calls the operation with the caller as actor, and maps the answer.
//! The rules (and the BAD_USER_INPUT naming the field when an input is refused, with nothing
//! changed) live in the operations.

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};

use super::types::*;
use crate::config::AuthConfig;
use crate::db::DbConn;
use crate::domain::schedule::{Frequency, ScheduleLimits, WorkingDayAdjustment};
use crate::domain::{DeliverableType, ItemKind, Language, Role, TaskStatus};
use crate::error::AppError;
use crate::generation::GenerationSettings;
use crate::graphql::context::{AdminGuard, StaffGuard, parse_id, visible_to_staff};
use crate::graphql::door::{actor, env};
use crate::graphql::scalars::Date;
use crate::ops;

pub use crate::ops::missions::ValidatedMission;

/// Firm mutations, for staff only (some for admins only).
#[derive(Default)]
pub struct FirmMutation;

#[derive(InputObject)]
pub struct ServiceItemInput {
    /// An existing item's id, to keep it (and its generated history) when updating.
    pub id: Option<ID>,
    pub kind: ItemKind,
    /// A task's title, or the text the client reads.
    pub title: String,
}

#[derive(InputObject, Default)]
pub struct ReminderPolicyInput {
    /// Days before the due date of the first reminder.
    pub days_before: Option<i32>,
    /// Remind on the due date itself.
    pub on_due_date: Option<bool>,
    /// Then remind every N days after the due date.
    pub every_days: Option<i32>,
    /// At most this many reminders in all.
    pub max_count: Option<i32>,
}

#[derive(InputObject)]
pub struct ServiceInput {
    pub category_id: Option<ID>,
    pub title: String,
    #[graphql(default_with = "DeliverableType::Documents")]
    pub deliverable_type: DeliverableType,
    /// Days before each due date the occurrence is created (0..366).
    pub lead_days: i32,
    pub items: Vec<ServiceItemInput>,
    pub reminder_policy: Option<ReminderPolicyInput>,
}

#[derive(InputObject)]
pub struct ClientInput {
    pub name: String,
    pub reference: Option<String>,
}

#[derive(InputObject)]
pub struct ContactInput {
    pub name: String,
    pub email: String,
    /// Null: the firm's language.
    pub language: Option<Language>,
    #[graphql(default = true)]
    pub notifications_enabled: bool,
}

#[derive(InputObject, Clone)]
pub struct MissionLineInput {
    pub service_id: ID,
    pub frequency: Frequency,
    /// Defaults to the mission's start date; move it later to skip past periods.
    pub first_due_date: Option<Date>,
    /// Copies of a one-off (frequency NONE) line; 1 otherwise.
    pub quantity: Option<i32>,
    /// RFC 5545 RRULE, for frequency CUSTOM only.
    pub rrule: Option<String>,
    /// Move due dates off weekends and French public holidays.
    pub working_day_adjustment: Option<WorkingDayAdjustment>,
}

#[derive(InputObject, Clone)]
pub struct MissionInput {
    pub client_id: ID,
    pub name: String,
    pub start_date: Date,
    /// Last day of the mission (inclusive); null for an open-ended mission. It bounds each
    /// period's date before working-day adjustment: a period on or before it belongs to the
    /// mission even when adjustment (NEXT) moves its due date past it.
    pub end_date: Option<Date>,
    pub lines: Vec<MissionLineInput>,
}

/// Changes to a mission. While DRAFT everything may change (`lines` replaces the lines).
/// Once SIGNED its past is fixed: only the name and the end date (not before the firm's today
/// nor before an occurrence already generated) may change; add lines with `addMissionLine`.
#[derive(InputObject)]
pub struct MissionUpdateInput {
    pub name: Option<String>,
    pub start_date: Option<Date>,
    /// New last day (inclusive), bounding each period's date before working-day adjustment.
    /// Extending a signed mission generates every period after the old end that a mission
    /// signed with the new end would have, including one whose adjusted due date (PREVIOUS)
    /// falls on or before the old end.
    pub end_date: Option<Date>,
    /// Set to true to remove the end date.
    #[graphql(default = false)]
    pub clear_end_date: bool,
    pub lines: Option<Vec<MissionLineInput>>,
}

/// A new staff member and the password to hand them (shown once).
#[derive(SimpleObject)]
#[graphql(guard = "StaffGuard", visible = "visible_to_staff")]
pub struct StaffInvitation {
    pub member: StaffMember,
    pub temporary_password: String,
}

impl ServiceInput {
    fn to_op(&self) -> Result<ops::catalog::ServiceInput, AppError> {
        Ok(ops::catalog::ServiceInput {
            category_id: self
                .category_id
                .as_ref()
                .map(|id| parse_id(id, "category"))
                .transpose()?,
            title: self.title.clone(),
            deliverable_type: self.deliverable_type,
            lead_days: self.lead_days,
            items: self
                .items
                .iter()
                .map(|item| {
                    Ok(ops::catalog::ServiceItemInput {
                        id: item
                            .id
                            .as_ref()
                            .map(|id| parse_id(id, "service item"))
                            .transpose()?,
                        kind: item.kind,
                        title: item.title.clone(),
                    })
                })
                .collect::<Result<_, AppError>>()?,
            reminder_policy: self.reminder_policy.as_ref().map(|policy| {
                ops::catalog::ReminderPolicyInput {
                    days_before: policy.days_before,
                    on_due_date: policy.on_due_date,
                    every_days: policy.every_days,
                    max_count: policy.max_count,
                }
            }),
        })
    }
}

impl ClientInput {
    fn to_op(&self) -> ops::clients::ClientInput {
        ops::clients::ClientInput {
            name: self.name.clone(),
            reference: self.reference.clone(),
        }
    }
}

impl ContactInput {
    fn to_op(&self) -> ops::clients::ContactInput {
        ops::clients::ContactInput {
            name: self.name.clone(),
            email: self.email.clone(),
            language: self.language,
            notifications_enabled: self.notifications_enabled,
        }
    }
}

impl MissionLineInput {
    fn to_op(&self) -> Result<ops::missions::MissionLineInput, AppError> {
        Ok(ops::missions::MissionLineInput {
            service_id: parse_id(&self.service_id, "service")?,
            frequency: self.frequency,
            first_due_date: self.first_due_date.map(|date| date.0),
            quantity: self.quantity,
            rrule: self.rrule.clone(),
            working_day_adjustment: self.working_day_adjustment,
        })
    }
}

fn lines_to_op(
    lines: &[MissionLineInput],
) -> Result<Vec<ops::missions::MissionLineInput>, AppError> {
    lines.iter().map(MissionLineInput::to_op).collect()
}

impl MissionInput {
    /// The operation's input: ids parsed (an id that is not one of ours is NOT_FOUND).
    pub fn to_op(&self) -> Result<ops::missions::MissionInput, AppError> {
        Ok(ops::missions::MissionInput {
            client_id: parse_id(&self.client_id, "client")?,
            name: self.name.clone(),
            start_date: self.start_date.0,
            end_date: self.end_date.map(|date| date.0),
            lines: lines_to_op(&self.lines)?,
        })
    }
}

/// Checks a mission input like `createMission` does, writing nothing (`schedulePreview`).
pub async fn validate_mission_input(
    db: &mut DbConn<'_>,
    firm_id: i64,
    input: &MissionInput,
    limits: &ScheduleLimits,
) -> Result<ValidatedMission, AppError> {
    ops::missions::validate_mission_input(db, firm_id, &input.to_op()?, limits).await
}

/// The configured bounds on quantities, items, lines and occurrences.
pub(crate) fn limits(ctx: &Context<'_>) -> ScheduleLimits {
    ctx.data::<GenerationSettings>()
        .map(|settings| settings.limits)
        .unwrap_or_default()
}

#[Object(guard = "StaffGuard", visible = "visible_to_staff")]
impl FirmMutation {
    #[graphql(visible = "visible_to_staff")]
    async fn create_category(
        &self,
        ctx: &Context<'_>,
        name: String,
    ) -> async_graphql::Result<Category> {
        let row = ops::catalog::create_category(env(ctx)?, &actor(ctx)?, &name).await?;
        Ok(Category(row))
    }

    #[graphql(visible = "visible_to_staff")]
    async fn rename_category(
        &self,
        ctx: &Context<'_>,
        id: ID,
        name: String,
    ) -> async_graphql::Result<Category> {
        let actor = actor(ctx)?;
        let id = parse_id(&id, "category")?;
        let row = ops::catalog::rename_category(env(ctx)?, &actor, id, &name).await?;
        Ok(Category(row))
    }

    #[graphql(visible = "visible_to_staff")]
    async fn create_service(
        &self,
        ctx: &Context<'_>,
        input: ServiceInput,
    ) -> async_graphql::Result<Service> {
        let actor = actor(ctx)?;
        let input = input.to_op()?;
        let row = ops::catalog::create_service(env(ctx)?, &actor, &input).await?;
        Ok(Service(row))
    }

    /// Updates a service. Items with an `id` are kept (edited in place), items without are
    /// added, items left out are archived. Occurrences already generated keep their text.
    #[graphql(visible = "visible_to_staff")]
    async fn update_service(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: ServiceInput,
    ) -> async_graphql::Result<Service> {
        let actor = actor(ctx)?;
        let id = parse_id(&id, "service")?;
        let input = input.to_op()?;
        let row = ops::catalog::update_service(env(ctx)?, &actor, id, &input).await?;
        Ok(Service(row))
    }

    /// Puts a service's items in the given order (every live item, once).
    #[graphql(visible = "visible_to_staff")]
    async fn reorder_service_items(
        &self,
        ctx: &Context<'_>,
        service_id: ID,
        item_ids: Vec<ID>,
    ) -> async_graphql::Result<Service> {
        let actor = actor(ctx)?;
        let service_id = parse_id(&service_id, "service")?;
        let order = item_ids
            .iter()
            .map(|id| parse_id(id, "service item"))
            .collect::<Result<Vec<_>, _>>()?;
        let row =
            ops::catalog::reorder_service_items(env(ctx)?, &actor, service_id, &order).await?;
        Ok(Service(row))
    }

    /// Archives a service: its lines stop being offered for new missions; signed missions keep
    /// generating from it.
    #[graphql(visible = "visible_to_staff")]
    async fn archive_service(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Service> {
        let actor = actor(ctx)?;
        let id = parse_id(&id, "service")?;
        Ok(Service(
            ops::catalog::archive_service(env(ctx)?, &actor, id).await?,
        ))
    }

    #[graphql(visible = "visible_to_staff")]
    async fn create_client(
        &self,
        ctx: &Context<'_>,
        input: ClientInput,
    ) -> async_graphql::Result<Client> {
        let row = ops::clients::create_client(env(ctx)?, &actor(ctx)?, &input.to_op()).await?;
        Ok(Client(row))
    }

    #[graphql(visible = "visible_to_staff")]
    async fn update_client(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: ClientInput,
    ) -> async_graphql::Result<Client> {
        let actor = actor(ctx)?;
        let id = parse_id(&id, "client")?;
        let row = ops::clients::update_client(env(ctx)?, &actor, id, &input.to_op()).await?;
        Ok(Client(row))
    }

    /// Archives a client: its contacts' tokens and sign-in links end at once (and stay
    /// ended if the client is brought back), so they lose the client view.
    #[graphql(visible = "visible_to_staff")]
    async fn archive_client(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Client> {
        let actor = actor(ctx)?;
        let id = parse_id(&id, "client")?;
        Ok(Client(
            ops::clients::archive_client(env(ctx)?, &actor, id).await?,
        ))
    }

    #[graphql(visible = "visible_to_staff")]
    async fn add_contact(
        &self,
        ctx: &Context<'_>,
        client_id: ID,
        input: ContactInput,
    ) -> async_graphql::Result<Contact> {
        let actor = actor(ctx)?;
        let client_id = parse_id(&client_id, "client")?;
        let row = ops::clients::add_contact(env(ctx)?, &actor, client_id, &input.to_op()).await?;
        Ok(Contact(row))
    }

    #[graphql(visible = "visible_to_staff")]
    async fn update_contact(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: ContactInput,
    ) -> async_graphql::Result<Contact> {
        let actor = actor(ctx)?;
        let id = parse_id(&id, "contact")?;
        let row = ops::clients::update_contact(env(ctx)?, &actor, id, &input.to_op()).await?;
        Ok(Contact(row))
    }

    #[graphql(visible = "visible_to_staff")]
    async fn archive_contact(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Contact> {
        let actor = actor(ctx)?;
        let id = parse_id(&id, "contact")?;
        Ok(Contact(
            ops::clients::archive_contact(env(ctx)?, &actor, id).await?,
        ))
    }

    /// Creates a DRAFT mission with its lines; nothing is generated until it is signed.
    #[graphql(visible = "visible_to_staff")]
    async fn create_mission(
        &self,
        ctx: &Context<'_>,
        input: MissionInput,
    ) -> async_graphql::Result<Mission> {
        let actor = actor(ctx)?;
        let input = input.to_op()?;
        Ok(Mission(
            ops::missions::create_mission(env(ctx)?, &actor, &input).await?,
        ))
    }

    #[graphql(visible = "visible_to_staff")]
    async fn update_mission(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: MissionUpdateInput,
    ) -> async_graphql::Result<Mission> {
        let actor = actor(ctx)?;
        let id = parse_id(&id, "mission")?;
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
        mission_id: ID,
        line: MissionLineInput,
    ) -> async_graphql::Result<Mission> {
        let actor = actor(ctx)?;
        let mission_id = parse_id(&mission_id, "mission")?;
        let line = line.to_op()?;
        Ok(Mission(
            ops::missions::add_mission_line(env(ctx)?, &actor, mission_id, &line).await?,
        ))
    }

    /// Signs a DRAFT mission: generation starts, and everything already due to be created
    /// (past periods included) is created at once.
    #[graphql(visible = "visible_to_staff")]
    async fn sign_mission(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Mission> {
        let actor = actor(ctx)?;
        let id = parse_id(&id, "mission")?;
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
        id: ID,
        end_date: Option<Date>,
    ) -> async_graphql::Result<Mission> {
        let actor = actor(ctx)?;
        let id = parse_id(&id, "mission")?;
        let end_date = end_date.map(|date| date.0);
        Ok(Mission(
            ops::missions::end_mission(env(ctx)?, &actor, id, end_date).await?,
        ))
    }

    /// Cancels a DRAFT or SIGNED mission, and its open requests and tasks with it.
    #[graphql(visible = "visible_to_staff")]
    async fn cancel_mission(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Mission> {
        let actor = actor(ctx)?;
        let id = parse_id(&id, "mission")?;
        Ok(Mission(
            ops::missions::cancel_mission(env(ctx)?, &actor, id).await?,
        ))
    }

    #[graphql(visible = "visible_to_staff")]
    async fn complete_task(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Task> {
        set_task(ctx, id, TaskStatus::Done).await
    }

    #[graphql(visible = "visible_to_staff")]
    async fn reopen_task(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Task> {
        set_task(ctx, id, TaskStatus::Open).await
    }

    /// Assigns a task to a member of the firm (null: unassigned).
    #[graphql(visible = "visible_to_staff")]
    async fn assign_task(
        &self,
        ctx: &Context<'_>,
        id: ID,
        assignee_id: Option<ID>,
    ) -> async_graphql::Result<Task> {
        let actor = actor(ctx)?;
        let id = parse_id(&id, "task")?;
        let assignee_id = assignee_id
            .as_ref()
            .map(|id| parse_id(id, "staff member"))
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
        id: ID,
    ) -> async_graphql::Result<InformationRequest> {
        let actor = actor(ctx)?;
        let id = parse_id(&id, "information request")?;
        Ok(InformationRequest(
            ops::work::close_request(env(ctx)?, &actor, id).await?,
        ))
    }

    /// Reopens a closed request (reminders resume).
    #[graphql(visible = "visible_to_staff")]
    async fn reopen_request(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<InformationRequest> {
        let actor = actor(ctx)?;
        let id = parse_id(&id, "information request")?;
        Ok(InformationRequest(
            ops::work::reopen_request(env(ctx)?, &actor, id).await?,
        ))
    }

    /// Adds a member to the firm (admins only) and returns a temporary password, shown once.
    #[graphql(guard = "AdminGuard", visible = "visible_to_staff")]
    async fn invite_staff_member(
        &self,
        ctx: &Context<'_>,
        email: String,
        name: String,
        #[graphql(default_with = "Role::Member")] role: Role,
    ) -> async_graphql::Result<StaffInvitation> {
        let invitation =
            ops::staff::invite_staff_member(env(ctx)?, &actor(ctx)?, &email, &name, role).await?;
        Ok(StaffInvitation {
            member: StaffMember(invitation.member),
            temporary_password: invitation.temporary_password,
        })
    }

    /// Removes a member from the firm (admins only); their sessions end at once. The last
    /// admin cannot be removed.
    #[graphql(guard = "AdminGuard", visible = "visible_to_staff")]
    async fn remove_staff_member(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<bool> {
        let actor = actor(ctx)?;
        let id = parse_id(&id, "staff member")?;
        ops::staff::remove_staff_member(env(ctx)?, &actor, id).await?;
        Ok(true)
    }

    /// Creates a bearer token for a contact (admins only): for a client portal or an
    /// integration. Shown once; it opens the client view of that contact's client only.
    #[graphql(guard = "AdminGuard", visible = "visible_to_staff")]
    async fn create_contact_access_token(
        &self,
        ctx: &Context<'_>,
        contact_id: ID,
    ) -> async_graphql::Result<String> {
        let actor = actor(ctx)?;
        let contact_id = parse_id(&contact_id, "contact")?;
        let lifetime = ctx
            .data::<AuthConfig>()
            .map(|config| config.contact_token_days)
            .unwrap_or(365);
        let session =
            ops::access::create_contact_access_token(env(ctx)?, &actor, contact_id, lifetime)
                .await?;
        Ok(session.token)
    }
}

async fn set_task(ctx: &Context<'_>, id: ID, status: TaskStatus) -> async_graphql::Result<Task> {
    let actor = actor(ctx)?;
    let id = parse_id(&id, "task")?;
    Ok(Task(
        ops::work::set_task_status(env(ctx)?, &actor, id, status).await?,
    ))
}
