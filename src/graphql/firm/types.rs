//! Output types of the firm view. Each wraps a row of the data layer; every one is firm-only:
//! guarded by `StaffGuard` and hidden from contacts' introspection.

use async_graphql::{Context, Enum, ID, Object, SimpleObject};

use crate::domain::gid::Kind;
use crate::error::AppError;
use crate::graphql::firm::webhooks::WebhookEvent;
use chrono::NaiveDateTime;

use crate::db::journal::HistoryOwner;
use crate::db::{catalog, clients, firms, missions, outbox, work};
use crate::domain::schedule::{Frequency, WorkingDayAdjustment};
use crate::domain::{
    DeliverableType, DeliveryEvent, DeliveryKind, DeliveryStatus, ItemKind, Language,
    MissionStatus, RequestStatus, Role, TaskStatus,
};
use crate::graphql::context::{StaffGuard, gid, staff, visible_to_staff};
use crate::graphql::firm::day::{
    RequestFilter, RequestOrder, TaskFilter, TaskOrder, client_request_page, client_task_page,
    request_filter, task_filter,
};
use crate::graphql::firm::history::{
    HistoryActor, HistoryArgs, HistoryEntry, HistoryFilter, owner_history_page,
};
use crate::graphql::loaders::{
    AnswerPage, AttemptsOf, CategoryKey, ContactKey, ContactsOf, ItemsOf, LinesOf, MissionsOf,
    ServiceKey, ServicesOf, client_of, firm_loader, firm_of, line_of, list, mission_of, one,
    service_of_line, user_of,
};
use crate::graphql::loaders::{ClosingOf, CompletionOf, Occurrence, RequestsOf, TasksOf};
use crate::graphql::pages::{Page, PageArgs, TotalCount};
use crate::graphql::scalars::{Date, DateTime};

pub(crate) fn utc(instant: NaiveDateTime) -> DateTime {
    DateTime::from(instant)
}

/// The occurrence (line, due date, copy) of a task or request row.
macro_rules! occurrence_of {
    ($row:expr) => {
        Occurrence {
            mission_line_id: $row.mission_line_id,
            due_date: $row.due_date,
            copy_number: $row.copy_number,
        }
    };
}

/// The period label of an occurrence of `line_id` due on `due_date`, in the firm's language.
async fn period_label(
    ctx: &Context<'_>,
    line_id: i64,
    due_date: chrono::NaiveDate,
) -> async_graphql::Result<String> {
    let line = line_of(ctx, line_id).await?;
    let firm = firm_of(ctx).await?;
    let language = if firm.locale == "en" {
        Language::English
    } else {
        Language::French
    };
    Ok(crate::domain::placeholders::period_label(
        due_date,
        line.frequency,
        language,
    ))
}

/// How far the requests of an occurrence got.
#[derive(SimpleObject)]
#[graphql(guard = "StaffGuard", visible = "visible_to_staff")]
pub struct RequestProgress {
    /// Requests of the occurrence.
    pub total: i32,
    /// Waiting for the client.
    pub open: i32,
    /// Answered, not closed yet.
    pub answered: i32,
    /// Closed by the firm.
    pub closed: i32,
    /// Cancelled with their mission.
    pub cancelled: i32,
}

/// A folder of services.
pub struct Category(pub catalog::Category);

/// A folder of the firm's services.
#[Object(guard = "StaffGuard", visible = "visible_to_staff")]
impl Category {
    /// The category's id.
    async fn id(&self) -> ID {
        gid(Kind::Category, self.0.id)
    }
    /// The category's name, unique in the firm.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// The live services of this category, by title, paginated.
    async fn services(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Page<(String, i64), Service>> {
        let page = PageArgs {
            first,
            after,
            last,
            before,
        }
        .read(ctx)?;
        let rows = list(firm_loader(ctx)?, ServicesOf(self.0.id)).await?;
        Ok(page.connection_of_loaded(rows, |row| (row.title.clone(), row.id), Service))
    }
}

/// A reusable template of work: internal tasks and client requests, created `leadDays`
/// before each due date.
pub struct Service(pub catalog::Service);

/// When follow-up reminders go out for a service's requests (null fields: the firm default).
#[derive(SimpleObject)]
#[graphql(guard = "StaffGuard", visible = "visible_to_staff")]
pub struct ReminderPolicy {
    /// Days before the due date of the first reminder; null: the firm default.
    pub days_before: Option<i32>,
    /// Whether to remind on the due date itself; null: the firm default.
    pub on_due_date: Option<bool>,
    /// Then remind every N days after the due date; null: the firm default.
    pub every_days: Option<i32>,
    /// At most this many reminders in all; null: the firm default.
    pub max_count: Option<i32>,
}

/// A reusable template of work: a firm-only title, what the client hands over, how many days
/// before each due date its occurrences are created, and its items (internal tasks and
/// client-facing requests).
#[Object(guard = "StaffGuard", visible = "visible_to_staff")]
impl Service {
    /// The service's id.
    async fn id(&self) -> ID {
        gid(Kind::Service, self.0.id)
    }
    /// Firm-only title (clients read the items' texts, never this).
    async fn title(&self) -> &str {
        &self.0.title
    }
    /// What the client is asked to hand over.
    async fn deliverable_type(&self) -> DeliverableType {
        self.0.deliverable_type
    }
    /// Days before each due date that its tasks and requests are created (0 to 366).
    async fn lead_days(&self) -> i32 {
        self.0.lead_days
    }
    /// True once archived: no longer offered for new missions; signed missions keep generating from it.
    async fn archived(&self) -> bool {
        self.0.archived_at.is_some()
    }
    /// When follow-up reminders go out for its requests.
    async fn reminder_policy(&self) -> ReminderPolicy {
        ReminderPolicy {
            days_before: self.0.reminder_days_before,
            on_due_date: self.0.reminder_on_due_date,
            every_days: self.0.reminder_every_days,
            max_count: self.0.reminder_max_count,
        }
    }
    /// The category it is filed in; null when none.
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

/// One item of a service: an internal task or a request to the client.
#[Object(guard = "StaffGuard", visible = "visible_to_staff")]
impl ServiceItem {
    /// The item's id.
    async fn id(&self) -> ID {
        gid(Kind::ServiceItem, self.0.id)
    }
    /// Whether it becomes an internal task or a client-facing request.
    async fn kind(&self) -> ItemKind {
        self.0.kind
    }
    /// A task's title, or the text the client reads.
    async fn title(&self) -> &str {
        &self.0.text
    }
    /// Its place in the service, from 0.
    async fn position(&self) -> i32 {
        self.0.position
    }
}

/// A company the firm works for.
pub struct Client(pub clients::Client);

/// A company the firm works for.
#[Object(guard = "StaffGuard", visible = "visible_to_staff")]
impl Client {
    /// The client's id.
    async fn id(&self) -> ID {
        gid(Kind::Client, self.0.id)
    }
    /// The company's name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// The firm's own reference for the client (a file number); null when none.
    async fn reference(&self) -> Option<&str> {
        self.0.reference.as_deref()
    }
    /// True once archived: its contacts lose the client view.
    async fn archived(&self) -> bool {
        self.0.archived_at.is_some()
    }
    /// The client's contacts, by name, paginated.
    async fn contacts(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = false, desc = "True to list archived contacts too.")]
        include_archived: bool,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Page<(String, i64), Contact>> {
        let page = PageArgs {
            first,
            after,
            last,
            before,
        }
        .read(ctx)?;
        let key = ContactsOf {
            client_id: self.0.id,
            include_archived,
        };
        let rows = list(firm_loader(ctx)?, key).await?;
        Ok(page.connection_of_loaded(rows, |row| (row.name.clone(), row.id), Contact))
    }
    /// This client's missions, oldest first, paginated.
    async fn missions(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Page<i64, Mission>> {
        let page = PageArgs {
            first,
            after,
            last,
            before,
        }
        .read(ctx)?;
        let rows = list(firm_loader(ctx)?, MissionsOf(self.0.id)).await?;
        Ok(page.connection_of_loaded(rows, |row| row.id, Mission))
    }
    /// The client's tasks, sorted by `orderBy` (default due date), paginated: its file's internal work.
    #[expect(clippy::too_many_arguments, reason = "one GraphQL argument each")]
    async fn tasks(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only those in this status.")] status: Option<TaskStatus>,
        #[graphql(desc = "More ways to narrow the list.")] filter: Option<TaskFilter>,
        #[graphql(
            desc = "How to sort: by DUE_DATE (default), CLIENT or STATUS, ASC (default) or DESC; ties by id. A cursor works only under the order it was made with."
        )]
        order_by: Option<TaskOrder>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Page<work::WorkKey, Task>> {
        staff(ctx)?;
        let base = work::WorkFilter {
            client_id: Some(self.0.id),
            ..work::WorkFilter::default()
        };
        let filter = task_filter(ctx, base, filter).await?;
        client_task_page(
            ctx,
            self.0.id,
            status,
            filter,
            order_by,
            PageArgs {
                first,
                after,
                last,
                before,
            },
        )
        .await
    }
    /// The client's requests, sorted by `orderBy` (default due date), paginated: what it was
    /// asked and answered.
    #[expect(clippy::too_many_arguments, reason = "one GraphQL argument each")]
    async fn requests(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only those in this status.")] status: Option<RequestStatus>,
        #[graphql(desc = "More ways to narrow the list.")] filter: Option<RequestFilter>,
        #[graphql(
            desc = "How to sort: by DUE_DATE (default), CLIENT or STATUS, ASC (default) or DESC; ties by id. A cursor works only under the order it was made with."
        )]
        order_by: Option<RequestOrder>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Page<work::WorkKey, InformationRequest>> {
        staff(ctx)?;
        let base = work::WorkFilter {
            client_id: Some(self.0.id),
            ..work::WorkFilter::default()
        };
        let filter = request_filter(ctx, base, filter).await?;
        client_request_page(
            ctx,
            self.0.id,
            status,
            filter,
            order_by,
            PageArgs {
                first,
                after,
                last,
                before,
            },
        )
        .await
    }
    /// What happened to this client's file, newest first: its missions, requests, tasks, contacts.
    async fn history(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only entries of these kinds, in this time range.")] filter: Option<
            HistoryFilter,
        >,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Page<i64, HistoryEntry>> {
        owner_history_page(
            ctx,
            HistoryOwner::Client,
            self.0.id,
            HistoryArgs {
                filter,
                page: PageArgs {
                    first,
                    after,
                    last,
                    before,
                },
            },
        )
        .await
    }
}

/// A person of a client who receives and answers requests.
pub struct Contact(pub clients::Contact);

/// A person of a client who receives its requests by email and may sign in to the client view.
#[Object(guard = "StaffGuard", visible = "visible_to_staff")]
impl Contact {
    /// The contact's id.
    async fn id(&self) -> ID {
        gid(Kind::Contact, self.0.id)
    }
    /// The contact's name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Where the client's requests and reminders are sent.
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
    /// False when the contact receives no email (they may still sign in).
    async fn notifications_enabled(&self) -> bool {
        self.0.notifications_enabled
    }
    /// When the contact unsubscribed from emails (its unsubscribe link); null while it
    /// receives them. Emails not sent because of it show as SKIPPED deliveries.
    async fn unsubscribed_at(&self) -> Option<crate::graphql::scalars::DateTime> {
        self.0.unsubscribed_at.map(utc)
    }
    /// True once archived: no more email, no more sign-in.
    async fn archived(&self) -> bool {
        self.0.archived_at.is_some()
    }
    /// The id of the contact's client.
    async fn client_id(&self) -> ID {
        gid(Kind::Client, self.0.client_id)
    }
}

/// Services attached to one client, with dates and a status; generation runs once SIGNED.
pub struct Mission(pub missions::Mission);

/// Work agreed with one client: its lines say which services fall due when. Only SIGNED
/// missions generate tasks and requests.
#[Object(guard = "StaffGuard", visible = "visible_to_staff")]
impl Mission {
    /// The mission's id.
    async fn id(&self) -> ID {
        gid(Kind::Mission, self.0.id)
    }
    /// The firm-only name of the mission.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Where the mission stands: DRAFT, SIGNED, ENDED or CANCELLED.
    async fn status(&self) -> MissionStatus {
        self.0.status
    }
    /// The first day of the mission, and the default first due date of its lines.
    async fn start_date(&self) -> Date {
        self.0.start_date.into()
    }
    /// The last day of the mission (inclusive); null for an open-ended mission.
    async fn end_date(&self) -> Option<Date> {
        self.0.end_date.map(Date)
    }
    /// When it was signed; null while DRAFT.
    async fn signed_at(&self) -> Option<DateTime> {
        self.0.signed_at.map(utc)
    }
    /// The client the mission is for.
    async fn client(&self, ctx: &Context<'_>) -> async_graphql::Result<Client> {
        Ok(Client(client_of(ctx, self.0.client_id).await?))
    }
    /// The services of the mission with their frequency, in order.
    async fn lines(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<MissionLine>> {
        let rows = list(firm_loader(ctx)?, LinesOf(self.0.id)).await?;
        Ok(rows
            .into_iter()
            .map(|(line, service)| MissionLine(line, Some(service)))
            .collect())
    }
    /// What happened to this mission and the work it generated, newest first.
    async fn history(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only entries of these kinds, in this time range.")] filter: Option<
            HistoryFilter,
        >,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Page<i64, HistoryEntry>> {
        owner_history_page(
            ctx,
            HistoryOwner::Mission,
            self.0.id,
            HistoryArgs {
                filter,
                page: PageArgs {
                    first,
                    after,
                    last,
                    before,
                },
            },
        )
        .await
    }
}

/// One service on a mission, with its rhythm, and its service when it was read with it
/// (a mission's `lines` join them: no statement more for `lines { service }`).
pub struct MissionLine(pub missions::MissionLine, pub Option<catalog::Service>);

/// One service on a mission, with how often it falls due.
#[Object(guard = "StaffGuard", visible = "visible_to_staff")]
impl MissionLine {
    /// The line's id.
    async fn id(&self) -> ID {
        gid(Kind::MissionLine, self.0.id)
    }
    /// How often the line falls due.
    async fn frequency(&self) -> Frequency {
        self.0.frequency
    }
    /// The first due date; later ones follow from the frequency.
    async fn first_due_date(&self) -> Date {
        self.0.first_due_date.into()
    }
    /// Numbered copies per due date (more than 1 only for frequency NONE).
    async fn quantity(&self) -> i32 {
        self.0.quantity
    }
    /// The RFC 5545 recurrence rule of a CUSTOM line; null otherwise.
    async fn rrule(&self) -> Option<&str> {
        self.0.rrule.as_deref()
    }
    /// Where due dates on weekends and French public holidays go.
    async fn working_day_adjustment(&self) -> WorkingDayAdjustment {
        self.0.working_day_adjustment
    }
    /// The service this line generates.
    async fn service(&self, ctx: &Context<'_>) -> async_graphql::Result<Service> {
        if let Some(service) = &self.1 {
            return Ok(Service(service.clone()));
        }
        let row = one(firm_loader(ctx)?, ServiceKey(self.0.service_id), "service").await?;
        Ok(Service(row))
    }
}

/// An internal task: firm view only, never seen by clients.
pub struct Task(pub work::Task);

/// An internal task generated for one due date of a mission line. Firm view only: clients
/// never see tasks.
#[Object(guard = "StaffGuard", visible = "visible_to_staff")]
impl Task {
    /// The task's id.
    async fn id(&self) -> ID {
        gid(Kind::Task, self.0.id)
    }
    /// The task's title, from its service item.
    async fn title(&self) -> &str {
        &self.0.title
    }
    /// The date it is due.
    async fn due_date(&self) -> Date {
        self.0.due_date.into()
    }
    /// The day it was created (the due date minus the service's lead days).
    async fn created_on(&self) -> Date {
        self.0.created_on.into()
    }
    /// Whether it is open, done or cancelled.
    async fn status(&self) -> TaskStatus {
        self.0.status
    }
    /// Which copy of the due date it is, from 1 (frequency NONE with a quantity).
    async fn copy_number(&self) -> i32 {
        self.0.copy_number
    }
    /// When it was completed; null while not done.
    async fn completed_at(&self) -> Option<DateTime> {
        self.0.completed_at.map(utc)
    }
    /// The client of its mission.
    async fn client(&self, ctx: &Context<'_>) -> async_graphql::Result<Client> {
        Ok(Client(client_of(ctx, self.0.client_id).await?))
    }
    /// The mission that generated it.
    async fn mission(&self, ctx: &Context<'_>) -> async_graphql::Result<Mission> {
        Ok(Mission(mission_of(ctx, self.0.mission_id).await?))
    }
    /// The service of the mission line this task was generated from.
    async fn service(&self, ctx: &Context<'_>) -> async_graphql::Result<Service> {
        Ok(Service(service_of_line(ctx, self.0.mission_line_id).await?))
    }
    /// The member it is assigned to; null when unassigned.
    async fn assignee(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<StaffMember>> {
        let Some(assignee_id) = self.0.assignee_id else {
            return Ok(None);
        };
        Ok(Some(StaffMember(user_of(ctx, assignee_id).await?)))
    }
    /// The mission line that generated it.
    async fn mission_line(&self, ctx: &Context<'_>) -> async_graphql::Result<MissionLine> {
        Ok(MissionLine(
            line_of(ctx, self.0.mission_line_id).await?,
            None,
        ))
    }
    /// The period its occurrence covers, in the firm's language: "janvier 2027" (monthly and
    /// shorter), "T1 2027" / "Q1 2027" (quarterly), "S1 2027" / "H1 2027", "2027" (annual).
    async fn period_label(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        period_label(ctx, self.0.mission_line_id, self.0.due_date).await
    }
    /// The requests of the same occurrence (same line, due date and copy).
    async fn requests(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<InformationRequest>> {
        let rows = list(firm_loader(ctx)?, RequestsOf(occurrence_of!(self.0))).await?;
        Ok(rows.into_iter().map(InformationRequest).collect())
    }
    /// How far the requests of the same occurrence got, by status.
    async fn request_progress(&self, ctx: &Context<'_>) -> async_graphql::Result<RequestProgress> {
        let rows = list(firm_loader(ctx)?, RequestsOf(occurrence_of!(self.0))).await?;
        let count = |status: RequestStatus| {
            i32::try_from(rows.iter().filter(|row| row.status == status).count())
                .unwrap_or(i32::MAX)
        };
        Ok(RequestProgress {
            total: i32::try_from(rows.len()).unwrap_or(i32::MAX),
            open: count(RequestStatus::Open),
            answered: count(RequestStatus::Answered),
            closed: count(RequestStatus::Closed),
            cancelled: count(RequestStatus::Cancelled),
        })
    }
    /// Who last completed it; null while never completed.
    async fn completed_by(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<HistoryActor>> {
        let entry = firm_loader(ctx)?.load_one(CompletionOf(self.0.id)).await?;
        Ok(entry
            .filter(|_| self.0.status == TaskStatus::Done)
            .map(|(entry, links)| HistoryActor::read_with(&entry, Some(&links))))
    }
    /// What happened to this task, newest first.
    async fn history(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only entries of these kinds, in this time range.")] filter: Option<
            HistoryFilter,
        >,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Page<i64, HistoryEntry>> {
        owner_history_page(
            ctx,
            HistoryOwner::Object("task"),
            self.0.id,
            HistoryArgs {
                filter,
                page: PageArgs {
                    first,
                    after,
                    last,
                    before,
                },
            },
        )
        .await
    }
}

/// A request to a client, as the firm sees it.
pub struct InformationRequest(pub work::InformationRequest);

/// A request to a client, generated for one due date of a mission line and emailed to its
/// contacts, with reminders until it is answered or closed.
#[Object(guard = "StaffGuard", visible = "visible_to_staff")]
impl InformationRequest {
    /// The request's id.
    async fn id(&self) -> ID {
        gid(Kind::InformationRequest, self.0.id)
    }
    /// What the client is asked for, as the client reads it.
    async fn text(&self) -> &str {
        &self.0.text
    }
    /// The date the firm needs the answer by.
    async fn due_date(&self) -> Date {
        self.0.due_date.into()
    }
    /// The day it was created and sent (the due date minus the service's lead days).
    async fn created_on(&self) -> Date {
        self.0.created_on.into()
    }
    /// Whether it waits for an answer, was answered, closed or cancelled.
    async fn status(&self) -> RequestStatus {
        self.0.status
    }
    /// Which copy of the due date it is, from 1 (frequency NONE with a quantity).
    async fn copy_number(&self) -> i32 {
        self.0.copy_number
    }
    /// When the client first answered; null while unanswered.
    async fn answered_at(&self) -> Option<DateTime> {
        self.0.answered_at.map(utc)
    }
    /// The mission line that generated it.
    async fn mission_line(&self, ctx: &Context<'_>) -> async_graphql::Result<MissionLine> {
        Ok(MissionLine(
            line_of(ctx, self.0.mission_line_id).await?,
            None,
        ))
    }
    /// The period its occurrence covers, in the firm's language: "janvier 2027" (monthly and
    /// shorter), "T1 2027" / "Q1 2027" (quarterly), "S1 2027" / "H1 2027", "2027" (annual).
    async fn period_label(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        period_label(ctx, self.0.mission_line_id, self.0.due_date).await
    }
    /// The tasks of the same occurrence (same line, due date and copy).
    async fn tasks(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Task>> {
        let rows = list(firm_loader(ctx)?, TasksOf(occurrence_of!(self.0))).await?;
        Ok(rows.into_iter().map(Task).collect())
    }
    /// When it was closed (or cancelled); null while open or answered.
    async fn closed_at(&self) -> Option<DateTime> {
        self.0
            .closed_at
            .filter(|_| {
                matches!(
                    self.0.status,
                    RequestStatus::Closed | RequestStatus::Cancelled
                )
            })
            .map(utc)
    }
    /// Who closed (or cancelled) it; null while open or answered.
    async fn closed_by(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<HistoryActor>> {
        if !matches!(
            self.0.status,
            RequestStatus::Closed | RequestStatus::Cancelled
        ) {
            return Ok(None);
        }
        let entry = firm_loader(ctx)?.load_one(ClosingOf(self.0.id)).await?;
        Ok(entry.map(|(entry, links)| HistoryActor::read_with(&entry, Some(&links))))
    }
    /// What happened to this request (sent, reminded, answered, closed...), newest first.
    async fn history(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only entries of these kinds, in this time range.")] filter: Option<
            HistoryFilter,
        >,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Page<i64, HistoryEntry>> {
        owner_history_page(
            ctx,
            HistoryOwner::Object("request"),
            self.0.id,
            HistoryArgs {
                filter,
                page: PageArgs {
                    first,
                    after,
                    last,
                    before,
                },
            },
        )
        .await
    }
    /// The client it is addressed to.
    async fn client(&self, ctx: &Context<'_>) -> async_graphql::Result<Client> {
        Ok(Client(client_of(ctx, self.0.client_id).await?))
    }
    /// The mission that generated it.
    async fn mission(&self, ctx: &Context<'_>) -> async_graphql::Result<Mission> {
        Ok(Mission(mission_of(ctx, self.0.mission_id).await?))
    }
    /// The service of the mission line this request was generated from.
    async fn service(&self, ctx: &Context<'_>) -> async_graphql::Result<Service> {
        Ok(Service(service_of_line(ctx, self.0.mission_line_id).await?))
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

/// An answer of a client's contact to a request.
#[Object(guard = "StaffGuard", visible = "visible_to_staff")]
impl RequestAnswer {
    /// The answer's id.
    async fn id(&self) -> ID {
        gid(Kind::RequestAnswer, self.0.id)
    }
    /// The contact's message; null when none was written.
    async fn message(&self) -> Option<&str> {
        self.0.message.as_deref()
    }
    /// True when the contact answered that there is nothing this period.
    async fn nothing_to_report(&self) -> bool {
        self.0.nothing_to_report
    }
    /// When the answer was given.
    async fn created_at(&self) -> DateTime {
        utc(self.0.created_at)
    }
    /// The documents deposited with this answer, in the order they were sent.
    async fn files(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<crate::graphql::files::AnswerFile>> {
        Ok(crate::graphql::files::files_of_answer(ctx, self.0.id)
            .await?
            .into_iter()
            .map(crate::graphql::files::AnswerFile)
            .collect())
    }
    /// The contact who answered; null when that contact was removed.
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

/// A member of the firm who signs in to the firm view.
#[Object(guard = "StaffGuard", visible = "visible_to_staff")]
impl StaffMember {
    /// The member's id.
    async fn id(&self) -> ID {
        gid(Kind::StaffMember, self.0.id)
    }
    /// The member's name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// The email address the member signs in with.
    async fn email(&self) -> &str {
        &self.0.email
    }
    /// What the member may do: ADMIN or MEMBER.
    async fn role(&self) -> Role {
        self.0.role
    }
}

/// An address the firm's events are posted to.
pub struct WebhookEndpoint(pub outbox::WebhookEndpoint);

/// A URL that receives the firm's request events as signed HTTPS POSTs (Standard Webhooks).
#[Object(guard = "StaffGuard", visible = "visible_to_staff")]
impl WebhookEndpoint {
    /// The endpoint's id.
    async fn id(&self) -> ID {
        gid(Kind::WebhookEndpoint, self.0.id)
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
    /// The events it receives.
    async fn events(&self) -> Vec<WebhookEvent> {
        self.0
            .events
            .split(',')
            .filter_map(WebhookEvent::from_wire)
            .collect()
    }
    /// The only client whose events it receives; null for every client.
    async fn client_id(&self) -> Option<ID> {
        self.0.client_id.map(|id| gid(Kind::Client, id))
    }
    /// False once disabled (by an admin, or after failing too long).
    async fn enabled(&self) -> bool {
        self.0.enabled
    }
    /// Why it was disabled; null while enabled.
    async fn disabled_reason(&self) -> Option<&str> {
        self.0.disabled_reason.as_deref()
    }
    /// When its current streak of failed deliveries began; null when the last one succeeded.
    async fn failing_since(&self) -> Option<DateTime> {
        self.0.failing_since.map(utc)
    }
}

/// One message in the outbox: an email to a contact or a webhook post.
pub struct Delivery(pub outbox::Delivery);

/// One email or webhook POST in the outbox, with its status and attempts.
#[Object(guard = "StaffGuard", visible = "visible_to_staff")]
impl Delivery {
    /// The delivery's id.
    async fn id(&self) -> ID {
        gid(Kind::Delivery, self.0.id)
    }
    /// The stable id sent as Message-ID or webhook-id, the same on every retry.
    async fn delivery_id(&self) -> &str {
        &self.0.delivery_uid
    }
    /// EMAIL or WEBHOOK.
    async fn kind(&self) -> DeliveryKind {
        self.0.kind
    }
    /// What it announces.
    async fn event(&self) -> DeliveryEvent {
        self.0.event
    }
    /// Where it stands in the outbox.
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
    /// How many times sending was tried.
    async fn attempts(&self) -> i32 {
        self.0.attempts
    }
    /// When it is (or was) due to be sent next.
    async fn next_attempt_at(&self) -> DateTime {
        utc(self.0.next_attempt_at)
    }
    /// The error of the last failed attempt; null when none.
    async fn last_error(&self) -> Option<&str> {
        self.0.last_error.as_deref()
    }
    /// When it was delivered; null until then.
    async fn delivered_at(&self) -> Option<DateTime> {
        self.0.delivered_at.map(utc)
    }
    /// The request it is about; null for an endpoint event.
    async fn request_id(&self) -> Option<ID> {
        self.0
            .request_id
            .map(|id| gid(Kind::InformationRequest, id))
    }
    /// Every attempt, oldest first, paginated.
    async fn attempt_log(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Page<i64, DeliveryAttempt>> {
        let page = PageArgs {
            first,
            after,
            last,
            before,
        }
        .read(ctx)?;
        let rows = list(firm_loader(ctx)?, AttemptsOf(self.0.id)).await?;
        let attempts = rows
            .into_iter()
            .map(|attempt| {
                Ok((
                    attempt.id,
                    DeliveryAttempt {
                        attempted_at: utc(attempt.attempted_at),
                        outcome: AttemptOutcome::from_stored(&attempt.outcome)?,
                        response_code: attempt.response_code,
                        error: attempt.error,
                    },
                ))
            })
            .collect::<Result<Vec<_>, AppError>>()?;
        Ok(page.connection_of_loaded(attempts, |(id, _)| *id, |(_, attempt)| attempt))
    }
}

/// How one try at sending a delivery ended.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "DeliveryAttemptOutcome", visible = "visible_to_staff")]
pub enum AttemptOutcome {
    /// The mail server or the webhook consumer accepted it.
    Delivered,
    /// It failed in a way worth retrying (a timeout, a 5xx, a 429); it is tried again later.
    TransientFailure,
    /// It was refused for good (a 4xx, an address the mail server refuses); no retry.
    PermanentFailure,
}

impl AttemptOutcome {
    /// The value stored in `delivery_attempts.outcome` (see `db::claims::AttemptOutcome`).
    fn from_stored(stored: &str) -> Result<Self, AppError> {
        use crate::db::claims::AttemptOutcome as Stored;
        [
            Stored::Delivered,
            Stored::TransientFailure,
            Stored::PermanentFailure,
        ]
        .into_iter()
        .find(|outcome| outcome.as_str() == stored)
        .map(|outcome| match outcome {
            Stored::Delivered => Self::Delivered,
            Stored::TransientFailure => Self::TransientFailure,
            Stored::PermanentFailure => Self::PermanentFailure,
        })
        .ok_or_else(|| AppError::Internal(format!("unknown attempt outcome {stored:?}")))
    }
}

/// One try at sending a delivery.
#[derive(SimpleObject)]
#[graphql(guard = "StaffGuard", visible = "visible_to_staff")]
pub struct DeliveryAttempt {
    /// When the attempt was made.
    pub attempted_at: DateTime,
    /// How it ended.
    pub outcome: AttemptOutcome,
    /// SMTP or HTTP status, when the peer answered.
    pub response_code: Option<i32>,
    /// What went wrong; null when it was delivered.
    pub error: Option<String>,
}
