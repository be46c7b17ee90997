//! Firm mutations: the catalogue, clients and contacts, missions and their life, work items,
//! staff and access tokens. Every input is checked before anything is written; a rejected
//! input answers BAD_USER_INPUT naming the field and changes nothing.

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::{Duration, Utc};

use super::types::*;
use crate::announce::{Occurrence, Recipients, deliveries_for_event};
use crate::auth::{generate_password, hash_password, new_token, token_hash};
use crate::config::AuthConfig;
use crate::db::catalog::{NewServiceItem, ServiceFields};
use crate::db::clients::{ClientChanges, ContactChanges, NewClient, NewContact};
use crate::db::missions::{NewMission, NewMissionLine};
use crate::db::tokens::NewAccessToken;
use crate::db::{DbConn, DbError, Pool, catalog, clients, firms, missions, outbox, tokens, work};
use crate::domain::schedule::{
    self, Frequency, LineSchedule, MissionWindow, ScheduleError, ScheduleLimits,
    WorkingDayAdjustment,
};
use crate::domain::validation::{MAX_TEXT_CHARS, check_count, check_email, check_name, check_text};
use crate::domain::{
    DeliverableType, DeliveryEvent, ItemKind, Language, MissionStatus, RequestStatus, Role,
    TaskStatus, TokenKind,
};
use crate::error::AppError;
use crate::events::{EventBus, RequestEvent, RequestEventKind};
use crate::generation::{
    GenerationSettings, PendingLine, check_occurrence_budget, count_occurrences_to_create,
    firm_today, generate_for_firm,
};
use crate::graphql::context::{
    AdminGuard, StaffGuard, connect, found, parse_id, staff, visible_to_staff,
};
use crate::graphql::scalars::Date;
use crate::transaction;

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

/// A line checked against its service and mission window, ready to insert.
pub struct ValidatedLine {
    pub service_id: i64,
    pub schedule: LineSchedule,
}

/// A mission input checked in full.
pub struct ValidatedMission {
    pub client_id: i64,
    pub name: String,
    pub window: MissionWindow,
    pub lines: Vec<ValidatedLine>,
}

fn line_error(index: usize, error: ScheduleError) -> AppError {
    AppError::bad_input(
        format!("lines.{index}.{}", error.field()),
        error.to_string(),
    )
}

/// Checks a mission input: client of this firm, name, dates, and every line.
pub async fn validate_mission_input(
    db: &mut DbConn<'_>,
    firm_id: i64,
    input: &MissionInput,
    limits: &ScheduleLimits,
) -> Result<ValidatedMission, AppError> {
    let client_id = parse_id(&input.client_id, "client")?;
    found(clients::find_client(db, firm_id, client_id).await, "client")?;
    let name = check_name("name", &input.name)?;
    let window = MissionWindow {
        start_date: input.start_date.0,
        end_date: input.end_date.map(|date| date.0),
    };
    check_window(&window)?;
    let lines = validate_lines(db, firm_id, &window, &input.lines, 0, limits).await?;
    Ok(ValidatedMission {
        client_id,
        name,
        window,
        lines,
    })
}

fn check_window(window: &MissionWindow) -> Result<(), AppError> {
    if let Some(end_date) = window.end_date {
        if end_date < window.start_date {
            return Err(AppError::bad_input(
                "endDate",
                ScheduleError::EndBeforeStart {
                    start_date: window.start_date,
                    end_date,
                }
                .to_string(),
            ));
        }
    }
    Ok(())
}

async fn validate_lines(
    db: &mut DbConn<'_>,
    firm_id: i64,
    window: &MissionWindow,
    inputs: &[MissionLineInput],
    first_index: usize,
    limits: &ScheduleLimits,
) -> Result<Vec<ValidatedLine>, AppError> {
    check_count(
        if first_index == 0 { "lines" } else { "line" },
        "mission lines",
        first_index.saturating_add(inputs.len()),
        limits.max_mission_lines,
    )?;
    let mut lines = Vec::with_capacity(inputs.len());
    for (offset, input) in inputs.iter().enumerate() {
        let index = first_index + offset;
        let service_id = parse_id(&input.service_id, "service")?;
        let service = found(
            catalog::find_service(db, firm_id, service_id).await,
            "service",
        )?;
        if service.archived_at.is_some() {
            return Err(AppError::bad_input(
                format!("lines.{index}.serviceId"),
                format!("the service {:?} is archived", service.title),
            ));
        }
        let quantity = input.quantity.unwrap_or(1);
        let quantity = u32::try_from(quantity)
            .map_err(|_| line_error(index, ScheduleError::QuantityMustBePositive))?;
        schedule::check_quantity(quantity, limits.max_quantity)
            .map_err(|error| line_error(index, error))?;
        let schedule = LineSchedule {
            frequency: input.frequency,
            first_due_date: input
                .first_due_date
                .map_or(window.start_date, |date| date.0),
            quantity,
            rrule: input
                .rrule
                .as_deref()
                .map(str::trim)
                .filter(|rule| !rule.is_empty())
                .map(str::to_string),
            adjustment: input
                .working_day_adjustment
                .unwrap_or(WorkingDayAdjustment::None),
        };
        schedule::validate_line(&schedule, window).map_err(|error| line_error(index, error))?;
        lines.push(ValidatedLine {
            service_id,
            schedule,
        });
    }
    Ok(lines)
}

/// A saved line as generation sees it.
fn pending_line(line: &missions::MissionLine) -> PendingLine {
    PendingLine {
        service_id: line.service_id,
        schedule: LineSchedule {
            frequency: line.frequency,
            first_due_date: line.first_due_date,
            quantity: u32::try_from(line.quantity).unwrap_or(1),
            rrule: line.rrule.clone(),
            adjustment: line.working_day_adjustment,
        },
        generated_through: line.generated_through,
    }
}

fn new_lines(
    firm_id: i64,
    mission_id: i64,
    lines: &[ValidatedLine],
    now: chrono::NaiveDateTime,
) -> Vec<NewMissionLine> {
    lines
        .iter()
        .map(|line| NewMissionLine {
            firm_id,
            mission_id,
            service_id: line.service_id,
            frequency: line.schedule.frequency,
            first_due_date: line.schedule.first_due_date,
            quantity: i32::try_from(line.schedule.quantity).unwrap_or(1),
            rrule: line.schedule.rrule.clone(),
            working_day_adjustment: line.schedule.adjustment,
            created_at: now,
        })
        .collect()
}

/// Checks a service input; returns the row fields and the items in order.
async fn validate_service_input(
    db: &mut DbConn<'_>,
    firm_id: i64,
    input: &ServiceInput,
    limits: &ScheduleLimits,
) -> Result<(ServiceFields, Vec<(Option<i64>, ItemKind, String)>), AppError> {
    let category_id = match &input.category_id {
        Some(id) => {
            let id = parse_id(id, "category")?;
            found(catalog::find_category(db, firm_id, id).await, "category")?;
            Some(id)
        }
        None => None,
    };
    let title = check_name("title", &input.title)?;
    let lead_days = schedule::validate_lead_days(i64::from(input.lead_days))?;
    if input.items.is_empty() {
        return Err(AppError::bad_input(
            "items",
            "a service needs at least one task or information request",
        ));
    }
    check_count(
        "items",
        "items",
        input.items.len(),
        limits.max_service_items,
    )?;
    let mut items = Vec::with_capacity(input.items.len());
    for (index, item) in input.items.iter().enumerate() {
        let field = format!("items.{index}.title");
        let text = check_text(&field, &item.title, MAX_TEXT_CHARS)?;
        let id = item
            .id
            .as_ref()
            .map(|id| parse_id(id, "service item"))
            .transpose()?;
        items.push((id, item.kind, text));
    }
    let policy = input.reminder_policy.as_ref();
    let bounded = |field: &str, value: Option<i32>, min: i32, max: i32| match value {
        Some(value) if !(min..=max).contains(&value) => Err(AppError::bad_input(
            format!("reminderPolicy.{field}"),
            format!("{field} must be between {min} and {max}, not {value}"),
        )),
        _ => Ok(value),
    };
    let fields = ServiceFields {
        category_id,
        title,
        deliverable_type: input.deliverable_type,
        lead_days: i32::try_from(lead_days).unwrap_or(0),
        reminder_days_before: bounded("daysBefore", policy.and_then(|p| p.days_before), 0, 366)?,
        reminder_on_due_date: policy.and_then(|p| p.on_due_date),
        reminder_every_days: bounded("everyDays", policy.and_then(|p| p.every_days), 1, 366)?,
        reminder_max_count: bounded("maxCount", policy.and_then(|p| p.max_count), 0, 100)?,
    };
    Ok((fields, items))
}

fn validate_contact_input(
    input: &ContactInput,
) -> Result<(String, String, Option<&'static str>), AppError> {
    let name = check_name("name", &input.name)?;
    let email = check_email("email", &input.email)?;
    Ok((name, email, input.language.map(Language::as_str)))
}

/// An optional single-line text: blank means none.
fn optional_name(field: &str, value: Option<&str>) -> Result<Option<String>, AppError> {
    Ok(value
        .filter(|text| !text.trim().is_empty())
        .map(|text| check_name(field, text))
        .transpose()?)
}

/// The configured bounds on quantities, items, lines and occurrences.
pub(crate) fn limits(ctx: &Context<'_>) -> ScheduleLimits {
    ctx.data::<GenerationSettings>()
        .map(|settings| settings.limits)
        .unwrap_or_default()
}

fn pool<'a>(ctx: &'a Context<'_>) -> Result<&'a Pool, AppError> {
    ctx.data::<Pool>()
        .map_err(|_| AppError::Internal("no database in the schema data".into()))
}

/// Tells this process's `requestEvents` subscribers about a request.
pub(crate) fn publish(
    ctx: &Context<'_>,
    kind: RequestEventKind,
    request: &work::InformationRequest,
) {
    if let Ok(events) = ctx.data::<EventBus>() {
        events.publish(RequestEvent {
            kind,
            firm_id: request.firm_id,
            client_id: request.client_id,
            request_id: request.id,
        });
    }
}

/// Enqueues the webhook deliveries of a request event (answered, closed: the client is not
/// emailed about its own answer or a closure).
pub async fn enqueue_webhooks(
    db: &mut DbConn<'_>,
    request: &work::InformationRequest,
    event: DeliveryEvent,
) -> Result<usize, DbError> {
    let endpoints = outbox::endpoints_for_client(db, request.firm_id, request.client_id).await?;
    let now = Utc::now();
    let deliveries = deliveries_for_event(
        request,
        event,
        &Recipients {
            contacts: &[],
            endpoints: &endpoints,
        },
        now,
        now.naive_utc(),
        // Answers and closures may repeat; each is announced.
        Occurrence::At(now),
    );
    outbox::enqueue_many(db, &deliveries).await
}

#[Object(guard = "StaffGuard", visible = "visible_to_staff")]
impl FirmMutation {
    #[graphql(visible = "visible_to_staff")]
    async fn create_category(
        &self,
        ctx: &Context<'_>,
        name: String,
    ) -> async_graphql::Result<Category> {
        let staff = staff(ctx)?;
        let name = check_name("name", &name)?;
        let mut conn = connect(ctx).await?;
        let row = catalog::insert_category(
            &mut conn.as_db(),
            staff.firm_id,
            &name,
            Utc::now().naive_utc(),
        )
        .await
        .map_err(|error| match AppError::from(error) {
            AppError::Conflict(_) => {
                AppError::Conflict(format!("a category named {name:?} exists"))
            }
            other => other,
        })?;
        Ok(Category(row))
    }

    #[graphql(visible = "visible_to_staff")]
    async fn rename_category(
        &self,
        ctx: &Context<'_>,
        id: ID,
        name: String,
    ) -> async_graphql::Result<Category> {
        let staff = staff(ctx)?;
        let id = parse_id(&id, "category")?;
        let name = check_name("name", &name)?;
        let mut conn = connect(ctx).await?;
        Ok(Category(found(
            catalog::update_category(&mut conn.as_db(), staff.firm_id, id, &name).await,
            "category",
        )?))
    }

    #[graphql(visible = "visible_to_staff")]
    async fn create_service(
        &self,
        ctx: &Context<'_>,
        input: ServiceInput,
    ) -> async_graphql::Result<Service> {
        let staff = staff(ctx)?;
        let mut conn = connect(ctx).await?;
        let (fields, items) =
            validate_service_input(&mut conn.as_db(), staff.firm_id, &input, &limits(ctx)).await?;
        if items.iter().any(|(id, _, _)| id.is_some()) {
            return Err(
                AppError::bad_input("items", "a new service's items have no id yet").into(),
            );
        }
        let firm_id = staff.firm_id;
        let now = Utc::now().naive_utc();
        let service = transaction!(conn, |tx| {
            let service = catalog::insert_service(&mut tx, firm_id, &fields, now).await?;
            let rows: Vec<NewServiceItem> = items
                .iter()
                .enumerate()
                .map(|(position, (_, kind, text))| NewServiceItem {
                    firm_id,
                    service_id: service.id,
                    kind: *kind,
                    text: text.clone(),
                    position: i32::try_from(position).unwrap_or(i32::MAX),
                    created_at: now,
                })
                .collect();
            catalog::insert_items(&mut tx, &rows).await?;
            Ok::<_, AppError>(service)
        })?;
        Ok(Service(service))
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
        let staff = staff(ctx)?;
        let service_id = parse_id(&id, "service")?;
        let firm_id = staff.firm_id;
        let mut conn = connect(ctx).await?;
        let mut db = conn.as_db();
        let previous = found(
            catalog::find_service(&mut db, firm_id, service_id).await,
            "service",
        )?;
        let (fields, items) =
            validate_service_input(&mut db, firm_id, &input, &limits(ctx)).await?;
        // A longer lead moves creation dates earlier, possibly before a line's watermark:
        // move the watermarks back by as much, so no occurrence is skipped.
        let lead_growth = i64::from(fields.lead_days - previous.lead_days).max(0);
        let lines = if lead_growth > 0 {
            missions::lines_of_service(&mut db, firm_id, service_id).await?
        } else {
            Vec::new()
        };
        let existing: Vec<i64> = catalog::list_items(&mut db, firm_id, service_id)
            .await?
            .into_iter()
            .map(|item| item.id)
            .collect();
        for (index, (item_id, _, _)) in items.iter().enumerate() {
            if item_id.is_some_and(|item_id| !existing.contains(&item_id)) {
                return Err(AppError::bad_input(
                    format!("items.{index}.id"),
                    "this item is not one of the service's items",
                )
                .into());
            }
        }
        let now = Utc::now().naive_utc();
        let service = transaction!(conn, |tx| {
            let service = catalog::update_service(&mut tx, firm_id, service_id, &fields).await?;
            for line in &lines {
                if let Some(through) = line.generated_through {
                    let earlier = through - Duration::days(lead_growth);
                    missions::lower_generated_through(&mut tx, line.id, earlier).await?;
                }
            }
            let keep: Vec<i64> = items.iter().filter_map(|(id, _, _)| *id).collect();
            catalog::archive_items_except(&mut tx, firm_id, service_id, &keep, now).await?;
            for (position, (item_id, kind, text)) in items.iter().enumerate() {
                let position = i32::try_from(position).unwrap_or(i32::MAX);
                match item_id {
                    Some(item_id) => {
                        catalog::update_item(&mut tx, firm_id, *item_id, *kind, text, position)
                            .await?;
                    }
                    None => {
                        catalog::insert_items(
                            &mut tx,
                            &[NewServiceItem {
                                firm_id,
                                service_id,
                                kind: *kind,
                                text: text.clone(),
                                position,
                                created_at: now,
                            }],
                        )
                        .await?;
                    }
                }
            }
            Ok::<_, AppError>(service)
        })?;
        Ok(Service(service))
    }

    /// Puts a service's items in the given order (every live item, once).
    #[graphql(visible = "visible_to_staff")]
    async fn reorder_service_items(
        &self,
        ctx: &Context<'_>,
        service_id: ID,
        item_ids: Vec<ID>,
    ) -> async_graphql::Result<Service> {
        let staff = staff(ctx)?;
        let firm_id = staff.firm_id;
        let service_id = parse_id(&service_id, "service")?;
        let mut conn = connect(ctx).await?;
        let mut db = conn.as_db();
        let service = found(
            catalog::find_service(&mut db, firm_id, service_id).await,
            "service",
        )?;
        let mut existing: Vec<i64> = catalog::list_items(&mut db, firm_id, service_id)
            .await?
            .into_iter()
            .map(|item| item.id)
            .collect();
        let order = item_ids
            .iter()
            .map(|id| parse_id(id, "service item"))
            .collect::<Result<Vec<_>, _>>()?;
        let mut sorted = order.clone();
        sorted.sort_unstable();
        existing.sort_unstable();
        if sorted != existing {
            return Err(AppError::bad_input(
                "itemIds",
                "give every item of the service exactly once",
            )
            .into());
        }
        transaction!(conn, |tx| {
            for (position, item_id) in order.iter().enumerate() {
                let position = i32::try_from(position).unwrap_or(i32::MAX);
                catalog::set_item_position(&mut tx, firm_id, *item_id, position).await?;
            }
            Ok::<_, AppError>(())
        })?;
        Ok(Service(service))
    }

    /// Archives a service: its lines stop being offered for new missions; signed missions keep
    /// generating from it.
    #[graphql(visible = "visible_to_staff")]
    async fn archive_service(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Service> {
        let staff = staff(ctx)?;
        let id = parse_id(&id, "service")?;
        let mut conn = connect(ctx).await?;
        Ok(Service(found(
            catalog::set_service_archived(
                &mut conn.as_db(),
                staff.firm_id,
                id,
                Some(Utc::now().naive_utc()),
            )
            .await,
            "service",
        )?))
    }

    #[graphql(visible = "visible_to_staff")]
    async fn create_client(
        &self,
        ctx: &Context<'_>,
        input: ClientInput,
    ) -> async_graphql::Result<Client> {
        let staff = staff(ctx)?;
        let name = check_name("name", &input.name)?;
        let reference = optional_name("reference", input.reference.as_deref())?;
        let mut conn = connect(ctx).await?;
        let row = clients::insert_client(
            &mut conn.as_db(),
            &NewClient {
                firm_id: staff.firm_id,
                name: &name,
                reference: reference.as_deref(),
                created_at: Utc::now().naive_utc(),
            },
        )
        .await
        .map_err(AppError::from)?;
        Ok(Client(row))
    }

    #[graphql(visible = "visible_to_staff")]
    async fn update_client(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: ClientInput,
    ) -> async_graphql::Result<Client> {
        let staff = staff(ctx)?;
        let id = parse_id(&id, "client")?;
        let name = check_name("name", &input.name)?;
        let reference = optional_name("reference", input.reference.as_deref())?;
        let mut conn = connect(ctx).await?;
        Ok(Client(found(
            clients::update_client(
                &mut conn.as_db(),
                staff.firm_id,
                id,
                &ClientChanges {
                    name: Some(&name),
                    reference: Some(reference.as_deref()),
                },
            )
            .await,
            "client",
        )?))
    }

    /// Archives a client: its contacts' tokens and sign-in links end at once (and stay
    /// ended if the client is brought back), so they lose the client view.
    #[graphql(visible = "visible_to_staff")]
    async fn archive_client(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Client> {
        let staff = staff(ctx)?;
        let id = parse_id(&id, "client")?;
        let now = Utc::now().naive_utc();
        let mut conn = connect(ctx).await?;
        let row = transaction!(conn, |tx| {
            let row = found(
                clients::set_client_archived(&mut tx, staff.firm_id, id, Some(now)).await,
                "client",
            )?;
            tokens::revoke_client_contacts_access(&mut tx, staff.firm_id, id, now)
                .await
                .map_err(AppError::from)?;
            Ok::<_, AppError>(row)
        })?;
        Ok(Client(row))
    }

    #[graphql(visible = "visible_to_staff")]
    async fn add_contact(
        &self,
        ctx: &Context<'_>,
        client_id: ID,
        input: ContactInput,
    ) -> async_graphql::Result<Contact> {
        let staff = staff(ctx)?;
        let client_id = parse_id(&client_id, "client")?;
        let (name, email, language) = validate_contact_input(&input)?;
        let mut conn = connect(ctx).await?;
        let mut db = conn.as_db();
        found(
            clients::find_client(&mut db, staff.firm_id, client_id).await,
            "client",
        )?;
        let row = clients::insert_contact(
            &mut db,
            &NewContact {
                firm_id: staff.firm_id,
                client_id,
                name: &name,
                email: &email,
                language,
                notifications_enabled: input.notifications_enabled,
                created_at: Utc::now().naive_utc(),
            },
        )
        .await
        .map_err(|error| match AppError::from(error) {
            AppError::Conflict(_) => {
                AppError::Conflict("this client already has a contact with that email".into())
            }
            other => other,
        })?;
        Ok(Contact(row))
    }

    #[graphql(visible = "visible_to_staff")]
    async fn update_contact(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: ContactInput,
    ) -> async_graphql::Result<Contact> {
        let staff = staff(ctx)?;
        let id = parse_id(&id, "contact")?;
        let (name, email, language) = validate_contact_input(&input)?;
        let mut conn = connect(ctx).await?;
        Ok(Contact(found(
            clients::update_contact(
                &mut conn.as_db(),
                staff.firm_id,
                id,
                &ContactChanges {
                    name: Some(&name),
                    email: Some(&email),
                    language: Some(language),
                    notifications_enabled: Some(input.notifications_enabled),
                },
            )
            .await,
            "contact",
        )?))
    }

    #[graphql(visible = "visible_to_staff")]
    async fn archive_contact(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Contact> {
        let staff = staff(ctx)?;
        let id = parse_id(&id, "contact")?;
        let now = Utc::now().naive_utc();
        let mut conn = connect(ctx).await?;
        let row = transaction!(conn, |tx| {
            let row = found(
                clients::set_contact_archived(&mut tx, staff.firm_id, id, Some(now)).await,
                "contact",
            )?;
            tokens::revoke_contact_access(&mut tx, staff.firm_id, id, now)
                .await
                .map_err(AppError::from)?;
            Ok::<_, AppError>(row)
        })?;
        Ok(Contact(row))
    }

    /// Creates a DRAFT mission with its lines; nothing is generated until it is signed.
    #[graphql(visible = "visible_to_staff")]
    async fn create_mission(
        &self,
        ctx: &Context<'_>,
        input: MissionInput,
    ) -> async_graphql::Result<Mission> {
        let staff = staff(ctx)?;
        let firm_id = staff.firm_id;
        let mut conn = connect(ctx).await?;
        let validated =
            validate_mission_input(&mut conn.as_db(), firm_id, &input, &limits(ctx)).await?;
        let now = Utc::now().naive_utc();
        let mission = transaction!(conn, |tx| {
            let mission = missions::insert_mission(
                &mut tx,
                &NewMission {
                    firm_id,
                    client_id: validated.client_id,
                    name: &validated.name,
                    start_date: validated.window.start_date,
                    end_date: validated.window.end_date,
                    status: MissionStatus::Draft,
                    created_at: now,
                },
            )
            .await?;
            missions::insert_lines(
                &mut tx,
                &new_lines(firm_id, mission.id, &validated.lines, now),
            )
            .await?;
            Ok::<_, AppError>(mission)
        })?;
        Ok(Mission(mission))
    }

    #[graphql(visible = "visible_to_staff")]
    async fn update_mission(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: MissionUpdateInput,
    ) -> async_graphql::Result<Mission> {
        let staff = staff(ctx)?;
        let firm_id = staff.firm_id;
        let mission_id = parse_id(&id, "mission")?;
        let mut conn = connect(ctx).await?;
        let mut db = conn.as_db();
        let mission = found(
            missions::find_mission(&mut db, firm_id, mission_id).await,
            "mission",
        )?;
        let name = match &input.name {
            Some(name) => check_name("name", name)?,
            None => mission.name.clone(),
        };
        let start_date = input.start_date.map_or(mission.start_date, |date| date.0);
        let end_date = if input.clear_end_date {
            None
        } else {
            input.end_date.map(|date| date.0).or(mission.end_date)
        };
        let window = MissionWindow {
            start_date,
            end_date,
        };
        check_window(&window)?;
        match mission.status {
            MissionStatus::Draft => {}
            MissionStatus::Signed => {
                let firm = found(firms::find_firm(&mut db, firm_id).await, "firm")?;
                let today = firm_today(&firm, Utc::now());
                if start_date != mission.start_date {
                    return Err(AppError::bad_input(
                        "startDate",
                        "a signed mission's start date is in its past and cannot change",
                    )
                    .into());
                }
                if input.lines.is_some() {
                    return Err(AppError::bad_input(
                        "lines",
                        "a signed mission's lines cannot change; add new ones with addMissionLine",
                    )
                    .into());
                }
                if end_date != mission.end_date {
                    if let Some(end_date) = end_date {
                        let latest =
                            work::latest_generated_due_date(&mut db, firm_id, mission_id).await?;
                        if end_date < today || latest.is_some_and(|latest| end_date < latest) {
                            return Err(AppError::bad_input(
                                "endDate",
                                format!(
                                    "a signed mission cannot end before today ({today}) or before \
                                     an occurrence it already generated"
                                ),
                            )
                            .into());
                        }
                    }
                }
            }
            MissionStatus::Ended | MissionStatus::Cancelled => {
                return Err(AppError::bad_input(
                    "id",
                    format!("an {} mission cannot be edited", mission.status.as_str()),
                )
                .into());
            }
        }
        let lines = match &input.lines {
            Some(lines) => {
                Some(validate_lines(&mut db, firm_id, &window, lines, 0, &limits(ctx)).await?)
            }
            None => {
                // The window may have moved: the kept lines must still fit in it (a signed
                // mission's lines keep generating, so an end before one of them would break it).
                for (index, line) in missions::list_lines(&mut db, firm_id, mission_id)
                    .await?
                    .iter()
                    .enumerate()
                {
                    let schedule = LineSchedule {
                        frequency: line.frequency,
                        first_due_date: line.first_due_date,
                        quantity: u32::try_from(line.quantity).unwrap_or(1),
                        rrule: line.rrule.clone(),
                        adjustment: line.working_day_adjustment,
                    };
                    schedule::validate_line(&schedule, &window)
                        .map_err(|error| line_error(index, error))?;
                }
                None
            }
        };
        let now = Utc::now().naive_utc();
        let extended =
            mission.end_date.is_some() && end_date.is_none_or(|end| Some(end) > mission.end_date);
        // Periods after the old end come back into the window. Each line's watermark moves back
        // to just before the first of them could be created, not further, so items added to a
        // service since are not back-filled into the old periods. The first period after the
        // old end decides after working-day adjustment: PREVIOUS can move its due date, and so
        // its creation date, before the old end.
        let mut watermarks = Vec::new();
        if let (true, Some(old_end)) = (extended, mission.end_date) {
            let lines = missions::list_lines(&mut db, firm_id, mission_id).await?;
            let mut service_ids: Vec<i64> = lines.iter().map(|line| line.service_id).collect();
            service_ids.sort_unstable();
            service_ids.dedup();
            let services = catalog::find_services(&mut db, firm_id, &service_ids).await?;
            let mut pending = Vec::with_capacity(lines.len());
            for (index, line) in lines.iter().enumerate() {
                let lead_days = services
                    .iter()
                    .find(|service| service.id == line.service_id)
                    .map_or(0, |service| u32::try_from(service.lead_days).unwrap_or(0));
                let mut pending_line = pending_line(line);
                let through = schedule::extension_watermark(
                    &pending_line.schedule,
                    old_end,
                    &window,
                    lead_days,
                )
                .map_err(|error| line_error(index, error))?;
                if let Some(through) = through {
                    watermarks.push((line.id, through));
                    pending_line.generated_through = pending_line
                        .generated_through
                        .map(|current| current.min(through));
                }
                pending.push(pending_line);
            }
            if mission.status == MissionStatus::Signed {
                let firm = found(firms::find_firm(&mut db, firm_id).await, "firm")?;
                let counts = count_occurrences_to_create(
                    &mut db,
                    firm_id,
                    &window,
                    &pending,
                    firm_today(&firm, Utc::now()),
                )
                .await?;
                check_occurrence_budget(
                    "endDate",
                    "extending this mission",
                    &counts,
                    &limits(ctx),
                )?;
            }
        }
        let mission = transaction!(conn, |tx| {
            let updated = missions::update_mission_fields(
                &mut tx, firm_id, mission_id, &name, start_date, end_date,
            )
            .await?;
            if let Some(lines) = &lines {
                missions::delete_lines(&mut tx, firm_id, mission_id).await?;
                missions::insert_lines(&mut tx, &new_lines(firm_id, mission_id, lines, now))
                    .await?;
            }
            for (line_id, through) in &watermarks {
                missions::lower_generated_through(&mut tx, *line_id, *through).await?;
            }
            Ok::<_, AppError>(updated)
        })?;
        if mission.status == MissionStatus::Signed && extended {
            generate_mission(ctx, firm_id, mission_id).await?;
        }
        Ok(Mission(mission))
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
        let staff = staff(ctx)?;
        let firm_id = staff.firm_id;
        let mission_id = parse_id(&mission_id, "mission")?;
        let mut conn = connect(ctx).await?;
        let mut db = conn.as_db();
        let mission = found(
            missions::find_mission(&mut db, firm_id, mission_id).await,
            "mission",
        )?;
        let window = MissionWindow {
            start_date: mission.start_date,
            end_date: mission.end_date,
        };
        let index = missions::list_lines(&mut db, firm_id, mission_id)
            .await?
            .len();
        let lines = validate_lines(
            &mut db,
            firm_id,
            &window,
            std::slice::from_ref(&line),
            index,
            &limits(ctx),
        )
        .await?;
        match mission.status {
            MissionStatus::Draft => {}
            MissionStatus::Signed => {
                let firm = found(firms::find_firm(&mut db, firm_id).await, "firm")?;
                let today = firm_today(&firm, Utc::now());
                if lines
                    .iter()
                    .any(|line| line.schedule.first_due_date < today)
                {
                    return Err(AppError::bad_input(
                        format!("lines.{index}.firstDueDate"),
                        format!(
                            "a line added to a signed mission cannot start in the past (before {today})"
                        ),
                    )
                    .into());
                }
                let pending: Vec<PendingLine> = lines
                    .iter()
                    .map(|line| PendingLine {
                        service_id: line.service_id,
                        schedule: line.schedule.clone(),
                        generated_through: None,
                    })
                    .collect();
                let counts =
                    count_occurrences_to_create(&mut db, firm_id, &window, &pending, today).await?;
                check_occurrence_budget(
                    &format!("lines.{index}.firstDueDate"),
                    "adding this line",
                    &counts,
                    &limits(ctx),
                )?;
            }
            MissionStatus::Ended | MissionStatus::Cancelled => {
                return Err(AppError::bad_input(
                    "missionId",
                    format!("an {} mission cannot be edited", mission.status.as_str()),
                )
                .into());
            }
        }
        let now = Utc::now().naive_utc();
        missions::insert_lines(&mut db, &new_lines(firm_id, mission_id, &lines, now))
            .await
            .map_err(AppError::from)?;
        if mission.status == MissionStatus::Signed {
            generate_mission(ctx, firm_id, mission_id).await?;
        }
        Ok(Mission(mission))
    }

    /// Signs a DRAFT mission: generation starts, and everything already due to be created
    /// (past periods included) is created at once.
    #[graphql(visible = "visible_to_staff")]
    async fn sign_mission(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Mission> {
        let staff = staff(ctx)?;
        let firm_id = staff.firm_id;
        let mission_id = parse_id(&id, "mission")?;
        let mut conn = connect(ctx).await?;
        let mut db = conn.as_db();
        let mission = found(
            missions::find_mission(&mut db, firm_id, mission_id).await,
            "mission",
        )?;
        if mission.status != MissionStatus::Draft {
            return Err(AppError::bad_input(
                "id",
                format!(
                    "only a DRAFT mission can be signed; this one is {}",
                    mission.status.as_str()
                ),
            )
            .into());
        }
        let lines = missions::list_lines(&mut db, firm_id, mission_id).await?;
        if lines.is_empty() {
            return Err(
                AppError::bad_input("id", "a mission with no lines cannot be signed").into(),
            );
        }
        // Everything already due is created at once: that catch-up must stay within bounds.
        let firm = found(firms::find_firm(&mut db, firm_id).await, "firm")?;
        let window = MissionWindow {
            start_date: mission.start_date,
            end_date: mission.end_date,
        };
        let pending: Vec<PendingLine> = lines.iter().map(pending_line).collect();
        let counts = count_occurrences_to_create(
            &mut db,
            firm_id,
            &window,
            &pending,
            firm_today(&firm, Utc::now()),
        )
        .await?;
        check_occurrence_budget("id", "signing this mission", &counts, &limits(ctx))?;
        let signed = missions::transition(
            &mut db,
            firm_id,
            mission_id,
            &[MissionStatus::Draft],
            MissionStatus::Signed,
            Utc::now().naive_utc(),
            None,
        )
        .await
        .map_err(AppError::from)?
        .ok_or_else(|| AppError::Conflict("the mission changed meanwhile; reload it".into()))?;
        drop(conn);
        generate_mission(ctx, firm_id, mission_id).await?;
        Ok(Mission(signed))
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
        let staff = staff(ctx)?;
        let firm_id = staff.firm_id;
        let mission_id = parse_id(&id, "mission")?;
        let mut conn = connect(ctx).await?;
        let mut db = conn.as_db();
        let mission = found(
            missions::find_mission(&mut db, firm_id, mission_id).await,
            "mission",
        )?;
        if mission.status != MissionStatus::Signed {
            return Err(AppError::bad_input(
                "id",
                format!(
                    "only a SIGNED mission can be ended; this one is {}",
                    mission.status.as_str()
                ),
            )
            .into());
        }
        let firm = found(firms::find_firm(&mut db, firm_id).await, "firm")?;
        // A mission that has not started yet ends on its first day.
        let latest = firm_today(&firm, Utc::now()).max(mission.start_date);
        let end_date = end_date.map_or(latest, |date| date.0);
        if end_date > latest {
            return Err(AppError::bad_input(
                "endDate",
                format!(
                    "ending stops generation now, so the end date cannot be after {latest}; \
                     to stop at a later date, set it with updateMission"
                ),
            )
            .into());
        }
        if end_date < mission.start_date {
            return Err(AppError::bad_input(
                "endDate",
                format!(
                    "the end date {end_date} is before the mission's start date {}",
                    mission.start_date
                ),
            )
            .into());
        }
        let ended = missions::transition(
            &mut db,
            firm_id,
            mission_id,
            &[MissionStatus::Signed],
            MissionStatus::Ended,
            Utc::now().naive_utc(),
            Some(end_date),
        )
        .await
        .map_err(AppError::from)?
        .ok_or_else(|| AppError::Conflict("the mission changed meanwhile; reload it".into()))?;
        Ok(Mission(ended))
    }

    /// Cancels a DRAFT or SIGNED mission, and its open requests and tasks with it.
    #[graphql(visible = "visible_to_staff")]
    async fn cancel_mission(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Mission> {
        let staff = staff(ctx)?;
        let firm_id = staff.firm_id;
        let mission_id = parse_id(&id, "mission")?;
        let mut conn = connect(ctx).await?;
        let mission = found(
            missions::find_mission(&mut conn.as_db(), firm_id, mission_id).await,
            "mission",
        )?;
        if !matches!(mission.status, MissionStatus::Draft | MissionStatus::Signed) {
            return Err(AppError::bad_input(
                "id",
                format!("an {} mission cannot be cancelled", mission.status.as_str()),
            )
            .into());
        }
        let now = Utc::now().naive_utc();
        let (cancelled, requests) = transaction!(conn, |tx| {
            let cancelled = missions::transition(
                &mut tx,
                firm_id,
                mission_id,
                &[MissionStatus::Draft, MissionStatus::Signed],
                MissionStatus::Cancelled,
                now,
                None,
            )
            .await?
            .ok_or_else(|| AppError::Conflict("the mission changed meanwhile; reload it".into()))?;
            let requests =
                work::cancel_open_work_of_mission(&mut tx, firm_id, mission_id, now).await?;
            for request in &requests {
                enqueue_webhooks(&mut tx, request, DeliveryEvent::RequestClosed).await?;
            }
            Ok::<_, AppError>((cancelled, requests))
        })?;
        for request in &requests {
            publish(ctx, RequestEventKind::Closed, request);
        }
        Ok(Mission(cancelled))
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
        let staff = staff(ctx)?;
        let id = parse_id(&id, "task")?;
        let mut conn = connect(ctx).await?;
        let mut db = conn.as_db();
        found(work::find_task(&mut db, staff.firm_id, id).await, "task")?;
        let assignee = match assignee_id {
            Some(assignee_id) => {
                let assignee_id = parse_id(&assignee_id, "staff member")?;
                let user = found(
                    firms::find_user(&mut db, staff.firm_id, assignee_id).await,
                    "staff member",
                )?;
                if user.archived_at.is_some() {
                    return Err(AppError::NotFound("staff member").into());
                }
                Some(assignee_id)
            }
            None => None,
        };
        Ok(Task(found(
            work::assign_task(&mut db, staff.firm_id, id, assignee).await,
            "task",
        )?))
    }

    /// Closes a request (answered or not): no more reminders.
    #[graphql(visible = "visible_to_staff")]
    async fn close_request(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<InformationRequest> {
        let staff = staff(ctx)?;
        let firm_id = staff.firm_id;
        let id = parse_id(&id, "information request")?;
        let mut conn = connect(ctx).await?;
        let current = found(
            work::find_request(&mut conn.as_db(), firm_id, id).await,
            "information request",
        )?;
        if !matches!(
            current.status,
            RequestStatus::Open | RequestStatus::Answered
        ) {
            return Err(AppError::bad_input(
                "id",
                format!("a {} request cannot be closed", current.status.as_str()),
            )
            .into());
        }
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
            .ok_or_else(|| AppError::Conflict("the request changed meanwhile; reload it".into()))?;
            enqueue_webhooks(&mut tx, &closed, DeliveryEvent::RequestClosed).await?;
            Ok::<_, AppError>(closed)
        })?;
        publish(ctx, RequestEventKind::Closed, &closed);
        Ok(InformationRequest(closed))
    }

    /// Reopens a closed request (reminders resume).
    #[graphql(visible = "visible_to_staff")]
    async fn reopen_request(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<InformationRequest> {
        let staff = staff(ctx)?;
        let id = parse_id(&id, "information request")?;
        let mut conn = connect(ctx).await?;
        let mut db = conn.as_db();
        let current = found(
            work::find_request(&mut db, staff.firm_id, id).await,
            "information request",
        )?;
        if current.status != RequestStatus::Closed {
            return Err(AppError::bad_input(
                "id",
                format!(
                    "only a CLOSED request can be reopened; this one is {}",
                    current.status.as_str()
                ),
            )
            .into());
        }
        let reopened = work::transition_request(
            &mut db,
            staff.firm_id,
            id,
            &[RequestStatus::Closed],
            RequestStatus::Open,
            Utc::now().naive_utc(),
        )
        .await
        .map_err(AppError::from)?
        .ok_or_else(|| AppError::Conflict("the request changed meanwhile; reload it".into()))?;
        Ok(InformationRequest(reopened))
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
        let staff = staff(ctx)?;
        let email = check_email("email", &email)?;
        let name = check_name("name", &name)?;
        let password = generate_password();
        let password_hash = hash_password(&password).map_err(AppError::Internal)?;
        let mut conn = connect(ctx).await?;
        let user = firms::insert_user(
            &mut conn.as_db(),
            &firms::NewUser {
                firm_id: staff.firm_id,
                email: &email,
                name: &name,
                password_hash: &password_hash,
                role,
                created_at: Utc::now().naive_utc(),
            },
        )
        .await
        .map_err(|error| match AppError::from(error) {
            // The same answer whoever holds the address (this firm or another, in any case):
            // it names no firm and no person.
            AppError::Conflict(_) => AppError::Conflict(
                "this email address cannot be used for a new staff account; \
                 use another address"
                    .into(),
            ),
            other => other,
        })?;
        Ok(StaffInvitation {
            member: StaffMember(user),
            temporary_password: password,
        })
    }

    /// Removes a member from the firm (admins only); their sessions end at once. The last
    /// admin cannot be removed.
    #[graphql(guard = "AdminGuard", visible = "visible_to_staff")]
    async fn remove_staff_member(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<bool> {
        let staff = staff(ctx)?;
        let firm_id = staff.firm_id;
        let user_id = parse_id(&id, "staff member")?;
        let mut conn = connect(ctx).await?;
        let user = found(
            firms::find_user(&mut conn.as_db(), firm_id, user_id).await,
            "staff member",
        )?;
        if user.archived_at.is_some() {
            return Err(AppError::NotFound("staff member").into());
        }
        let now = Utc::now().naive_utc();
        transaction!(conn, |tx| {
            if user.role == Role::Admin && firms::count_active_admins(&mut tx, firm_id).await? <= 1
            {
                return Err(AppError::bad_input(
                    "id",
                    "the firm's last admin cannot be removed",
                ));
            }
            firms::archive_user(&mut tx, firm_id, user_id, now).await?;
            tokens::revoke_all_for_user(&mut tx, user_id, now).await?;
            Ok::<_, AppError>(())
        })?;
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
        let staff = staff(ctx)?;
        let contact_id = parse_id(&contact_id, "contact")?;
        let lifetime = ctx
            .data::<AuthConfig>()
            .map(|config| config.contact_token_days)
            .unwrap_or(365);
        let mut conn = connect(ctx).await?;
        let mut db = conn.as_db();
        let contact = found(
            clients::find_contact(&mut db, staff.firm_id, contact_id).await,
            "contact",
        )?;
        if contact.archived_at.is_some() {
            return Err(AppError::bad_input("contactId", "this contact is archived").into());
        }
        let token = new_token();
        let now = Utc::now().naive_utc();
        tokens::insert(
            &mut db,
            &NewAccessToken {
                firm_id: staff.firm_id,
                token_hash: &token_hash(&token),
                kind: TokenKind::Contact,
                user_id: None,
                contact_id: Some(contact.id),
                expires_at: Some(now + Duration::days(i64::from(lifetime))),
                created_at: now,
            },
        )
        .await
        .map_err(AppError::from)?;
        Ok(token)
    }
}

async fn set_task(ctx: &Context<'_>, id: ID, status: TaskStatus) -> async_graphql::Result<Task> {
    let staff = staff(ctx)?;
    let id = parse_id(&id, "task")?;
    let mut conn = connect(ctx).await?;
    let mut db = conn.as_db();
    let task = found(work::find_task(&mut db, staff.firm_id, id).await, "task")?;
    if task.status == TaskStatus::Cancelled {
        return Err(AppError::bad_input("id", "a cancelled task cannot change").into());
    }
    let completed_at = (status == TaskStatus::Done).then(|| Utc::now().naive_utc());
    Ok(Task(found(
        work::set_task_status(&mut db, staff.firm_id, id, status, completed_at).await,
        "task",
    )?))
}

/// Runs generation for one mission now (after signing or adding a line).
async fn generate_mission(
    ctx: &Context<'_>,
    firm_id: i64,
    mission_id: i64,
) -> Result<(), AppError> {
    let pool = pool(ctx)?;
    let settings = ctx
        .data::<GenerationSettings>()
        .cloned()
        .unwrap_or_default();
    let events = ctx.data::<EventBus>().ok();
    let firm = {
        let mut conn = pool.get().await?;
        found(firms::find_firm(&mut conn.as_db(), firm_id).await, "firm")?
    };
    let now = Utc::now();
    let today = firm_today(&firm, now);
    generate_for_firm(pool, &settings, &firm, today, now, Some(mission_id), events).await?;
    Ok(())
}
