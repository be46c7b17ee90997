//! Output types of the firm view. Each wraps a row of the data layer; every one is firm-only:
//! guarded by `StaffGuard` and hidden from contacts' introspection.

use async_graphql::{Context, ID, Object, SimpleObject};
use chrono::{DateTime, NaiveDateTime, Utc};

use crate::db::{catalog, clients, firms, missions, outbox, work};
use crate::domain::schedule::{Frequency, WorkingDayAdjustment};
use crate::domain::{
    DeliverableType, DeliveryEvent, DeliveryKind, DeliveryStatus, ItemKind, Language,
    MissionStatus, RequestStatus, Role, TaskStatus,
};
use crate::error::AppError;
use crate::graphql::context::{StaffGuard, connect, found, staff, visible_to_staff};
use crate::graphql::scalars::Date;

pub(crate) fn utc(instant: NaiveDateTime) -> DateTime<Utc> {
    instant.and_utc()
}

/// A folder of services.
pub struct Category(pub catalog::Category);

#[Object(guard = "StaffGuard", visible = "visible_to_staff")]
impl Category {
    async fn id(&self) -> ID {
        self.0.id.into()
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// The live services of this category.
    async fn services(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Service>> {
        let staff = staff(ctx)?;
        let mut conn = connect(ctx).await?;
        let rows = catalog::list_services(&mut conn.as_db(), staff.firm_id, Some(self.0.id), false)
            .await
            .map_err(AppError::from)?;
        Ok(rows.into_iter().map(Service).collect())
    }
}

/// A reusable template of work: internal tasks and client requests, created `leadDays`
/// before each due date.
pub struct Service(pub catalog::Service);

/// When follow-up reminders go out for a service's requests (null fields: the firm default).
#[derive(SimpleObject)]
#[graphql(guard = "StaffGuard", visible = "visible_to_staff")]
pub struct ReminderPolicy {
    pub days_before: Option<i32>,
    pub on_due_date: Option<bool>,
    pub every_days: Option<i32>,
    pub max_count: Option<i32>,
}

#[Object(guard = "StaffGuard", visible = "visible_to_staff")]
impl Service {
    async fn id(&self) -> ID {
        self.0.id.into()
    }
    /// Firm-only title (clients read the items' texts, never this).
    async fn title(&self) -> &str {
        &self.0.title
    }
    async fn deliverable_type(&self) -> DeliverableType {
        self.0.deliverable_type
    }
    async fn lead_days(&self) -> i32 {
        self.0.lead_days
    }
    async fn archived(&self) -> bool {
        self.0.archived_at.is_some()
    }
    async fn reminder_policy(&self) -> ReminderPolicy {
        ReminderPolicy {
            days_before: self.0.reminder_days_before,
            on_due_date: self.0.reminder_on_due_date,
            every_days: self.0.reminder_every_days,
            max_count: self.0.reminder_max_count,
        }
    }
    async fn category(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Category>> {
        let Some(category_id) = self.0.category_id else {
            return Ok(None);
        };
        let mut conn = connect(ctx).await?;
        let row = found(
            catalog::find_category(&mut conn.as_db(), self.0.firm_id, category_id).await,
            "category",
        )?;
        Ok(Some(Category(row)))
    }
    /// Items in their order.
    async fn items(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ServiceItem>> {
        let mut conn = connect(ctx).await?;
        let rows = catalog::list_items(&mut conn.as_db(), self.0.firm_id, self.0.id)
            .await
            .map_err(AppError::from)?;
        Ok(rows.into_iter().map(ServiceItem).collect())
    }
}

/// One item of a service: a TASK (internal) or an INFORMATION_REQUEST (sent to the client).
pub struct ServiceItem(pub catalog::ServiceItem);

#[Object(guard = "StaffGuard", visible = "visible_to_staff")]
impl ServiceItem {
    async fn id(&self) -> ID {
        self.0.id.into()
    }
    async fn kind(&self) -> ItemKind {
        self.0.kind
    }
    /// A task's title, or the text the client reads.
    async fn title(&self) -> &str {
        &self.0.text
    }
    async fn position(&self) -> i32 {
        self.0.position
    }
}

/// A company the firm works for.
pub struct Client(pub clients::Client);

#[Object(guard = "StaffGuard", visible = "visible_to_staff")]
impl Client {
    async fn id(&self) -> ID {
        self.0.id.into()
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn reference(&self) -> Option<&str> {
        self.0.reference.as_deref()
    }
    async fn archived(&self) -> bool {
        self.0.archived_at.is_some()
    }
    async fn contacts(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = false)] include_archived: bool,
    ) -> async_graphql::Result<Vec<Contact>> {
        let mut conn = connect(ctx).await?;
        let rows = clients::list_contacts(
            &mut conn.as_db(),
            self.0.firm_id,
            self.0.id,
            include_archived,
        )
        .await
        .map_err(AppError::from)?;
        Ok(rows.into_iter().map(Contact).collect())
    }
    async fn missions(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Mission>> {
        let mut conn = connect(ctx).await?;
        let rows =
            missions::list_missions(&mut conn.as_db(), self.0.firm_id, None, Some(self.0.id))
                .await
                .map_err(AppError::from)?;
        Ok(rows.into_iter().map(Mission).collect())
    }
}

/// A person of a client who receives and answers requests.
pub struct Contact(pub clients::Contact);

#[Object(guard = "StaffGuard", visible = "visible_to_staff")]
impl Contact {
    async fn id(&self) -> ID {
        self.0.id.into()
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn email(&self) -> &str {
        &self.0.email
    }
    /// The language of this contact's emails; null means the firm's.
    async fn language(&self) -> Option<Language> {
        self.0
            .language
            .as_deref()
            .and_then(|text| text.parse().ok())
    }
    async fn notifications_enabled(&self) -> bool {
        self.0.notifications_enabled
    }
    async fn archived(&self) -> bool {
        self.0.archived_at.is_some()
    }
    async fn client_id(&self) -> ID {
        self.0.client_id.into()
    }
}

/// Services attached to one client, with dates and a status; generation runs once SIGNED.
pub struct Mission(pub missions::Mission);

#[Object(guard = "StaffGuard", visible = "visible_to_staff")]
impl Mission {
    async fn id(&self) -> ID {
        self.0.id.into()
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn status(&self) -> MissionStatus {
        self.0.status
    }
    async fn start_date(&self) -> Date {
        self.0.start_date.into()
    }
    async fn end_date(&self) -> Option<Date> {
        self.0.end_date.map(Date)
    }
    async fn signed_at(&self) -> Option<DateTime<Utc>> {
        self.0.signed_at.map(utc)
    }
    async fn client(&self, ctx: &Context<'_>) -> async_graphql::Result<Client> {
        let mut conn = connect(ctx).await?;
        Ok(Client(found(
            clients::find_client(&mut conn.as_db(), self.0.firm_id, self.0.client_id).await,
            "client",
        )?))
    }
    async fn lines(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<MissionLine>> {
        let mut conn = connect(ctx).await?;
        let rows = missions::list_lines(&mut conn.as_db(), self.0.firm_id, self.0.id)
            .await
            .map_err(AppError::from)?;
        Ok(rows.into_iter().map(MissionLine).collect())
    }
}

/// One service on a mission, with its rhythm.
pub struct MissionLine(pub missions::MissionLine);

#[Object(guard = "StaffGuard", visible = "visible_to_staff")]
impl MissionLine {
    async fn id(&self) -> ID {
        self.0.id.into()
    }
    async fn frequency(&self) -> Frequency {
        self.0.frequency
    }
    async fn first_due_date(&self) -> Date {
        self.0.first_due_date.into()
    }
    async fn quantity(&self) -> i32 {
        self.0.quantity
    }
    async fn rrule(&self) -> Option<&str> {
        self.0.rrule.as_deref()
    }
    async fn working_day_adjustment(&self) -> WorkingDayAdjustment {
        self.0.working_day_adjustment
    }
    async fn service(&self, ctx: &Context<'_>) -> async_graphql::Result<Service> {
        let mut conn = connect(ctx).await?;
        Ok(Service(found(
            catalog::find_service(&mut conn.as_db(), self.0.firm_id, self.0.service_id).await,
            "service",
        )?))
    }
}

/// An internal task: firm view only, never seen by clients.
pub struct Task(pub work::Task);

#[Object(guard = "StaffGuard", visible = "visible_to_staff")]
impl Task {
    async fn id(&self) -> ID {
        self.0.id.into()
    }
    async fn title(&self) -> &str {
        &self.0.title
    }
    async fn due_date(&self) -> Date {
        self.0.due_date.into()
    }
    async fn created_on(&self) -> Date {
        self.0.created_on.into()
    }
    async fn status(&self) -> TaskStatus {
        self.0.status
    }
    async fn copy_number(&self) -> i32 {
        self.0.copy_number
    }
    async fn completed_at(&self) -> Option<DateTime<Utc>> {
        self.0.completed_at.map(utc)
    }
    async fn client(&self, ctx: &Context<'_>) -> async_graphql::Result<Client> {
        let mut conn = connect(ctx).await?;
        Ok(Client(found(
            clients::find_client(&mut conn.as_db(), self.0.firm_id, self.0.client_id).await,
            "client",
        )?))
    }
    async fn mission(&self, ctx: &Context<'_>) -> async_graphql::Result<Mission> {
        let mut conn = connect(ctx).await?;
        Ok(Mission(found(
            missions::find_mission(&mut conn.as_db(), self.0.firm_id, self.0.mission_id).await,
            "mission",
        )?))
    }
    async fn assignee(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<StaffMember>> {
        let Some(assignee_id) = self.0.assignee_id else {
            return Ok(None);
        };
        let mut conn = connect(ctx).await?;
        Ok(Some(StaffMember(found(
            firms::find_user(&mut conn.as_db(), self.0.firm_id, assignee_id).await,
            "staff member",
        )?)))
    }
}

/// A request to a client, as the firm sees it.
pub struct InformationRequest(pub work::InformationRequest);

#[Object(guard = "StaffGuard", visible = "visible_to_staff")]
impl InformationRequest {
    async fn id(&self) -> ID {
        self.0.id.into()
    }
    async fn text(&self) -> &str {
        &self.0.text
    }
    async fn due_date(&self) -> Date {
        self.0.due_date.into()
    }
    async fn created_on(&self) -> Date {
        self.0.created_on.into()
    }
    async fn status(&self) -> RequestStatus {
        self.0.status
    }
    async fn copy_number(&self) -> i32 {
        self.0.copy_number
    }
    async fn answered_at(&self) -> Option<DateTime<Utc>> {
        self.0.answered_at.map(utc)
    }
    async fn client(&self, ctx: &Context<'_>) -> async_graphql::Result<Client> {
        let mut conn = connect(ctx).await?;
        Ok(Client(found(
            clients::find_client(&mut conn.as_db(), self.0.firm_id, self.0.client_id).await,
            "client",
        )?))
    }
    async fn mission(&self, ctx: &Context<'_>) -> async_graphql::Result<Mission> {
        let mut conn = connect(ctx).await?;
        Ok(Mission(found(
            missions::find_mission(&mut conn.as_db(), self.0.firm_id, self.0.mission_id).await,
            "mission",
        )?))
    }
    async fn service(&self, ctx: &Context<'_>) -> async_graphql::Result<Service> {
        let mut conn = connect(ctx).await?;
        let mut db = conn.as_db();
        let line = found(
            missions::list_lines(&mut db, self.0.firm_id, self.0.mission_id).await,
            "mission",
        )?
        .into_iter()
        .find(|line| line.id == self.0.mission_line_id)
        .ok_or(AppError::NotFound("mission line"))?;
        Ok(Service(found(
            catalog::find_service(&mut db, self.0.firm_id, line.service_id).await,
            "service",
        )?))
    }
    async fn answers(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<RequestAnswer>> {
        let mut conn = connect(ctx).await?;
        let rows = work::list_answers(&mut conn.as_db(), self.0.firm_id, self.0.id)
            .await
            .map_err(AppError::from)?;
        Ok(rows.into_iter().map(RequestAnswer).collect())
    }
}

/// A client's answer, as the firm sees it.
pub struct RequestAnswer(pub work::RequestAnswer);

#[Object(guard = "StaffGuard", visible = "visible_to_staff")]
impl RequestAnswer {
    async fn id(&self) -> ID {
        self.0.id.into()
    }
    async fn message(&self) -> Option<&str> {
        self.0.message.as_deref()
    }
    async fn nothing_to_report(&self) -> bool {
        self.0.nothing_to_report
    }
    async fn created_at(&self) -> DateTime<Utc> {
        utc(self.0.created_at)
    }
    async fn contact(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Contact>> {
        let Some(contact_id) = self.0.contact_id else {
            return Ok(None);
        };
        let mut conn = connect(ctx).await?;
        Ok(Some(Contact(found(
            clients::find_contact(&mut conn.as_db(), self.0.firm_id, contact_id).await,
            "contact",
        )?)))
    }
}

/// A member of the firm.
pub struct StaffMember(pub firms::User);

#[Object(guard = "StaffGuard", visible = "visible_to_staff")]
impl StaffMember {
    async fn id(&self) -> ID {
        self.0.id.into()
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn email(&self) -> &str {
        &self.0.email
    }
    async fn role(&self) -> Role {
        self.0.role
    }
}

/// An address the firm's events are posted to.
pub struct WebhookEndpoint(pub outbox::WebhookEndpoint);

#[Object(guard = "StaffGuard", visible = "visible_to_staff")]
impl WebhookEndpoint {
    async fn id(&self) -> ID {
        self.0.id.into()
    }
    /// Where events are posted. Admins read the whole URL; members read it with query values
    /// and user-info masked as `***` (they often hold the consumer's access token).
    async fn url(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        let role = staff(ctx)?.role;
        Ok(crate::graphql::firm::webhooks::url_for_role(
            &self.0.url,
            role,
        ))
    }
    async fn events(&self) -> Vec<String> {
        self.0.events.split(',').map(str::to_string).collect()
    }
    async fn client_id(&self) -> Option<ID> {
        self.0.client_id.map(ID::from)
    }
    async fn enabled(&self) -> bool {
        self.0.enabled
    }
    async fn disabled_reason(&self) -> Option<&str> {
        self.0.disabled_reason.as_deref()
    }
    async fn failing_since(&self) -> Option<DateTime<Utc>> {
        self.0.failing_since.map(utc)
    }
}

/// One message in the outbox: an email to a contact or a webhook post.
pub struct Delivery(pub outbox::Delivery);

#[Object(guard = "StaffGuard", visible = "visible_to_staff")]
impl Delivery {
    async fn id(&self) -> ID {
        self.0.id.into()
    }
    /// The stable id sent as Message-ID or webhook-id, the same on every retry.
    async fn delivery_id(&self) -> &str {
        &self.0.delivery_uid
    }
    async fn kind(&self) -> DeliveryKind {
        self.0.kind
    }
    async fn event(&self) -> DeliveryEvent {
        self.0.event
    }
    async fn status(&self) -> DeliveryStatus {
        self.0.status
    }
    /// The email address or the webhook URL; members read webhook URLs with query values and
    /// user-info masked as `***`, like `WebhookEndpoint.url`.
    async fn target(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        Ok(match self.0.kind {
            DeliveryKind::Webhook => {
                crate::graphql::firm::webhooks::url_for_role(&self.0.target, staff(ctx)?.role)
            }
            _ => self.0.target.clone(),
        })
    }
    async fn attempts(&self) -> i32 {
        self.0.attempts
    }
    async fn next_attempt_at(&self) -> DateTime<Utc> {
        utc(self.0.next_attempt_at)
    }
    async fn last_error(&self) -> Option<&str> {
        self.0.last_error.as_deref()
    }
    async fn delivered_at(&self) -> Option<DateTime<Utc>> {
        self.0.delivered_at.map(utc)
    }
    async fn request_id(&self) -> Option<ID> {
        self.0.request_id.map(ID::from)
    }
    async fn attempt_log(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<DeliveryAttempt>> {
        let mut conn = connect(ctx).await?;
        let rows = outbox::list_attempts(&mut conn.as_db(), self.0.id)
            .await
            .map_err(AppError::from)?;
        Ok(rows
            .into_iter()
            .map(|attempt| DeliveryAttempt {
                attempted_at: utc(attempt.attempted_at),
                outcome: attempt.outcome,
                response_code: attempt.response_code,
                error: attempt.error,
            })
            .collect())
    }
}

/// One try at sending a delivery.
#[derive(SimpleObject)]
#[graphql(guard = "StaffGuard", visible = "visible_to_staff")]
pub struct DeliveryAttempt {
    pub attempted_at: DateTime<Utc>,
    /// DELIVERED, TRANSIENT_FAILURE or PERMANENT_FAILURE.
    pub outcome: String,
    /// SMTP or HTTP status, when the peer answered.
    pub response_code: Option<i32>,
    pub error: Option<String>,
}

/// Where a page of a list ends.
#[derive(SimpleObject)]
#[graphql(guard = "StaffGuard", visible = "visible_to_staff")]
pub struct PageInfo {
    pub has_next_page: bool,
    /// Pass as `after` to get the next page.
    pub end_cursor: Option<String>,
}

macro_rules! connection {
    ($name:ident, $node:ty) => {
        /// A page of a list: `nodes`, then `pageInfo` to ask for the next one.
        #[derive(SimpleObject)]
        #[graphql(guard = "StaffGuard", visible = "visible_to_staff")]
        pub struct $name {
            pub nodes: Vec<$node>,
            pub page_info: PageInfo,
        }
    };
}

connection!(ClientConnection, Client);
connection!(TaskConnection, Task);
connection!(InformationRequestConnection, InformationRequest);
connection!(DeliveryConnection, Delivery);
