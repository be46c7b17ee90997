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
use crate::graphql::context::{StaffGuard, staff, visible_to_staff};
use crate::graphql::loaders::{
    AnswerPage, AttemptsOf, CategoryKey, ClientKey, ContactKey, ContactsOf, ItemsOf, LinesOf,
    MissionKey, MissionsOf, ServiceKey, ServiceOfLine, ServicesOf, UserKey, firm_loader, list, one,
};
use crate::graphql::pages::{Page, PageArgs, TotalCount};
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
    /// The live services of this category, by title.
    async fn services(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Service>> {
        let rows = list(firm_loader(ctx)?, ServicesOf(self.0.id)).await?;
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
        let row = one(firm_loader(ctx)?, CategoryKey(category_id), "category").await?;
        Ok(Some(Category(row)))
    }
    /// Items in their order.
    async fn items(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ServiceItem>> {
        let rows = list(firm_loader(ctx)?, ItemsOf(self.0.id)).await?;
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
        let key = ContactsOf {
            client_id: self.0.id,
            include_archived,
        };
        let rows = list(firm_loader(ctx)?, key).await?;
        Ok(rows.into_iter().map(Contact).collect())
    }
    /// This client's missions, oldest first.
    async fn missions(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Mission>> {
        let rows = list(firm_loader(ctx)?, MissionsOf(self.0.id)).await?;
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
        let row = one(firm_loader(ctx)?, ClientKey(self.0.client_id), "client").await?;
        Ok(Client(row))
    }
    async fn lines(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<MissionLine>> {
        let rows = list(firm_loader(ctx)?, LinesOf(self.0.id)).await?;
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
        let row = one(firm_loader(ctx)?, ServiceKey(self.0.service_id), "service").await?;
        Ok(Service(row))
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
        let row = one(firm_loader(ctx)?, ClientKey(self.0.client_id), "client").await?;
        Ok(Client(row))
    }
    async fn mission(&self, ctx: &Context<'_>) -> async_graphql::Result<Mission> {
        let row = one(firm_loader(ctx)?, MissionKey(self.0.mission_id), "mission").await?;
        Ok(Mission(row))
    }
    /// The service of the mission line this task was generated from.
    async fn service(&self, ctx: &Context<'_>) -> async_graphql::Result<Service> {
        let row = one(
            firm_loader(ctx)?,
            ServiceOfLine(self.0.mission_line_id),
            "service",
        )
        .await?;
        Ok(Service(row))
    }
    async fn assignee(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<StaffMember>> {
        let Some(assignee_id) = self.0.assignee_id else {
            return Ok(None);
        };
        let row = one(firm_loader(ctx)?, UserKey(assignee_id), "staff member").await?;
        Ok(Some(StaffMember(row)))
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
        let row = one(firm_loader(ctx)?, ClientKey(self.0.client_id), "client").await?;
        Ok(Client(row))
    }
    async fn mission(&self, ctx: &Context<'_>) -> async_graphql::Result<Mission> {
        let row = one(firm_loader(ctx)?, MissionKey(self.0.mission_id), "mission").await?;
        Ok(Mission(row))
    }
    /// The service of the mission line this request was generated from.
    async fn service(&self, ctx: &Context<'_>) -> async_graphql::Result<Service> {
        let row = one(
            firm_loader(ctx)?,
            ServiceOfLine(self.0.mission_line_id),
            "service",
        )
        .await?;
        Ok(Service(row))
    }
    /// The client's answers, oldest first, paginated.
    async fn answers(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Page<i64, RequestAnswer>> {
        let page = PageArgs {
            first,
            after,
            last,
            before,
        }
        .read(ctx)?;
        let key = AnswerPage::new(self.0.id, &page.keyset);
        let rows = list(firm_loader(ctx)?, key).await?;
        let total = TotalCount::answers_of(self.0.id);
        Ok(page.connection(rows, total, |row| row.id, RequestAnswer))
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
        let row = one(firm_loader(ctx)?, ContactKey(contact_id), "contact").await?;
        Ok(Some(Contact(row)))
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
        let rows = list(firm_loader(ctx)?, AttemptsOf(self.0.id)).await?;
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
