//! Firm mutations: the catalogue, clients and contacts, missions and their life, work items,
//! staff and access tokens. Each resolver is a door over one operation of `crate::ops`: it
//! parses ids and inputs, calls the operation with the caller as actor, and maps the answer.
//! The rules (and the BAD_USER_INPUT naming the field when an input is refused, with nothing
//! changed) live in the operations.

use async_graphql::{Context, ID, InputObject, MergedObject, SimpleObject};

use super::types::StaffMember;
use crate::db::DbConn;
use crate::domain::gid::Kind;
use crate::domain::schedule::{Frequency, ScheduleLimits, WorkingDayAdjustment};
use crate::domain::{DeliverableType, ItemKind, Language};
use crate::error::AppError;
use crate::generation::GenerationSettings;
use crate::graphql::context::{StaffGuard, parse_id, visible_to_staff};
use crate::graphql::scalars::Date;
use crate::ops;

pub use crate::ops::missions::ValidatedMission;

mod catalog;
mod clients;
mod day;
mod missions;
mod staff;
mod work;

/// Firm mutations, for staff only (some for admins only), one object per aggregate merged in
/// the order the schema lists them.
#[derive(MergedObject, Default)]
pub struct FirmMutation(
    catalog::CatalogMutation,
    clients::ClientsMutation,
    missions::MissionsMutation,
    work::WorkMutation,
    staff::StaffMutation,
    day::DayMutation,
    crate::graphql::firm::replies::RepliesMutation,
);

#[derive(InputObject)]
/// One item of a service.
pub struct ServiceItemInput {
    /// An existing item's id, to keep it (and its generated history) when updating.
    pub id: Option<ID>,
    /// TASK for an internal task, INFORMATION_REQUEST for a request to the client.
    pub kind: ItemKind,
    /// A task's title, or the text the client reads.
    pub title: String,
}

#[derive(InputObject, Default)]
/// When reminders go out for a service's requests; null fields take the firm default.
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
/// A new service: its title, what the client hands over, its lead time and its items.
pub struct CreateServiceInput {
    /// The category to file it in; null for none.
    pub category_id: Option<ID>,
    /// The firm-only title (clients never read it); not blank.
    pub title: String,
    #[graphql(default_with = "DeliverableType::Documents")]
    /// What the client hands over; DOCUMENTS by default.
    pub deliverable_type: DeliverableType,
    /// Days before each due date the occurrence is created (0..366).
    pub lead_days: i32,
    /// The items in their order: internal tasks and requests to the client.
    pub items: Vec<ServiceItemInput>,
    /// When reminders go out; null: the firm default.
    pub reminder_policy: Option<ReminderPolicyInput>,
}

#[derive(InputObject)]
/// A new client company.
pub struct CreateClientInput {
    /// The company's name; not blank.
    pub name: String,
    /// The firm's own reference (a file number); null for none.
    pub reference: Option<String>,
}

/// A new contact of a client.
#[derive(InputObject)]
pub struct AddContactInput {
    /// The id of the client the contact belongs to; NOT_FOUND when the firm has no such client.
    pub client_id: ID,
    /// The contact's name; not blank.
    pub name: String,
    /// The address requests are emailed to (BAD_USER_INPUT when not an address).
    pub email: String,
    /// Null: the firm's language.
    pub language: Option<Language>,
    #[graphql(default = true)]
    /// False to send this contact no email; true by default.
    pub notifications_enabled: bool,
}

/// A contact's new values (every field is checked; BAD_USER_INPUT names the one refused).
#[derive(InputObject)]
pub struct UpdateContactInput {
    /// The contact's id; NOT_FOUND when the firm has no such contact.
    pub id: ID,
    /// The contact's name; not blank.
    pub name: String,
    /// The address requests are emailed to (BAD_USER_INPUT when not an address).
    pub email: String,
    /// Null: the firm's language.
    pub language: Option<Language>,
    #[graphql(default = true)]
    /// False to send this contact no email; true by default.
    pub notifications_enabled: bool,
}

#[derive(InputObject, Clone)]
/// One service on a mission and how often it falls due.
pub struct MissionLineInput {
    /// The id of a live service of the firm.
    pub service_id: ID,
    /// How often it falls due (CUSTOM needs rrule).
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
/// A new mission for one client, with its lines.
pub struct CreateMissionInput {
    /// The id of the client the mission is for.
    pub client_id: ID,
    /// The firm-only name of the mission; not blank.
    pub name: String,
    /// The first day of the mission; the default first due date of its lines.
    pub start_date: Date,
    /// Last day of the mission (inclusive); null for an open-ended mission. It bounds each
    /// period's date before working-day adjustment: a period on or before it belongs to the
    /// mission even when adjustment (NEXT) moves its due date past it.
    pub end_date: Option<Date>,
    /// The services of the mission, in order.
    pub lines: Vec<MissionLineInput>,
}

/// Changes to a mission. While DRAFT everything may change (`lines` replaces the lines).
/// Once SIGNED its past is fixed: only the name and the end date (not before the firm's today
/// nor before an occurrence already generated) may change; add lines with `addMissionLine`.
#[derive(InputObject)]
pub struct UpdateMissionInput {
    /// The mission's id; NOT_FOUND when the firm has no such mission.
    pub id: ID,
    /// A new name; null keeps it.
    pub name: Option<String>,
    /// A new start date (DRAFT only); null keeps it.
    pub start_date: Option<Date>,
    /// New last day (inclusive), bounding each period's date before working-day adjustment.
    /// Extending a signed mission generates every period after the old end that a mission
    /// signed with the new end would have, including one whose adjusted due date (PREVIOUS)
    /// falls on or before the old end.
    pub end_date: Option<Date>,
    /// Set to true to remove the end date.
    #[graphql(default = false)]
    pub clear_end_date: bool,
    /// New lines replacing all of them (DRAFT only); null keeps them.
    pub lines: Option<Vec<MissionLineInput>>,
}

/// A new staff member and the password to hand them (shown once).
#[derive(SimpleObject)]
#[graphql(guard = "StaffGuard", visible = "visible_to_staff")]
pub struct StaffInvitation {
    /// The new member.
    pub member: StaffMember,
    /// A password to hand to the member, shown this once.
    pub temporary_password: String,
}

/// A service's new values (every field is checked; BAD_USER_INPUT names the one refused).
#[derive(InputObject)]
pub struct UpdateServiceInput {
    /// The service's id; NOT_FOUND when the firm has no such service.
    pub id: ID,
    #[graphql(flatten)]
    pub values: CreateServiceInput,
}

/// A client's new values (every field is checked; BAD_USER_INPUT names the one refused).
#[derive(InputObject)]
pub struct UpdateClientInput {
    /// The client's id; NOT_FOUND when the firm has no such client.
    pub id: ID,
    #[graphql(flatten)]
    pub values: CreateClientInput,
}

impl CreateServiceInput {
    pub(super) fn to_op(&self) -> Result<ops::catalog::ServiceInput, AppError> {
        Ok(ops::catalog::ServiceInput {
            category_id: self
                .category_id
                .as_ref()
                .map(|id| parse_id(id, Kind::Category))
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
                            .map(|id| parse_id(id, Kind::ServiceItem))
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

impl CreateClientInput {
    pub(super) fn to_op(&self) -> ops::clients::ClientInput {
        ops::clients::ClientInput {
            name: self.name.clone(),
            reference: self.reference.clone(),
        }
    }
}

impl AddContactInput {
    pub(super) fn to_op(&self) -> ops::clients::ContactInput {
        ops::clients::ContactInput {
            name: self.name.clone(),
            email: self.email.clone(),
            language: self.language,
            notifications_enabled: self.notifications_enabled,
        }
    }
}

impl UpdateContactInput {
    pub(super) fn to_op(&self) -> ops::clients::ContactInput {
        ops::clients::ContactInput {
            name: self.name.clone(),
            email: self.email.clone(),
            language: self.language,
            notifications_enabled: self.notifications_enabled,
        }
    }
}

impl MissionLineInput {
    pub(super) fn to_op(&self) -> Result<ops::missions::MissionLineInput, AppError> {
        Ok(ops::missions::MissionLineInput {
            service_id: parse_id(&self.service_id, Kind::Service)?,
            frequency: self.frequency,
            first_due_date: self.first_due_date.map(|date| date.0),
            quantity: self.quantity,
            rrule: self.rrule.clone(),
            working_day_adjustment: self.working_day_adjustment,
        })
    }
}

pub(super) fn lines_to_op(
    lines: &[MissionLineInput],
) -> Result<Vec<ops::missions::MissionLineInput>, AppError> {
    lines.iter().map(MissionLineInput::to_op).collect()
}

impl CreateMissionInput {
    /// The operation's input: ids parsed (an id that is not one of ours is NOT_FOUND).
    pub fn to_op(&self) -> Result<ops::missions::MissionInput, AppError> {
        Ok(ops::missions::MissionInput {
            client_id: parse_id(&self.client_id, Kind::Client)?,
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
    input: &CreateMissionInput,
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
