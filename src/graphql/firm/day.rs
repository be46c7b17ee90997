//! The firm's day: the filters of the task and request lists (`TaskFilter`, `RequestFilter`:
//! due dates, overdue, created today, service, assignee `me`, text search) and the
//! `workload` counts. "Today" is always the firm's local date, never the server's.
//! No diesel here, and no rule that changes anything: these are reads.

use std::hash::Hash;
use std::sync::Arc;

use async_graphql::dataloader::Loader;
use async_graphql::{Context, Enum, ID, InputObject, Lookahead, Object, OutputType};
use chrono::{Datelike, Duration, NaiveDate, Utc};

use futures_util::FutureExt as _;

use super::types::{InformationRequest, StaffMember, Task};
use crate::db::work::{self, AssigneeWorkload, WorkFilter, WorkOrder, WorkPage, WorkSort};
use crate::domain::gid::Kind;
use crate::domain::{RequestStatus, TaskStatus};
use crate::error::AppError;
use crate::generation::firm_today;
use crate::graphql::context::{StaffGuard, connect, parse_id, staff, visible_to_staff};
use crate::graphql::loaders::{
    ClientWork, FirmLoader, WorkCountOfClient, WorkOfClient, WorkQuery, firm_loader, firm_of,
    prime_parents, user_of,
};
use crate::graphql::pages::{Page, PageArgs, TotalCount};
use crate::graphql::scalars::Date;

/// Longest text search, in characters.
const MAX_SEARCH_CHARS: usize = 200;

/// The firm's local date now.
pub async fn today(ctx: &Context<'_>) -> async_graphql::Result<NaiveDate> {
    let firm = firm_of(ctx).await?;
    Ok(firm_today(&firm, Utc::now()))
}

/// Which tasks to list; every field narrows the list (they combine with AND).
#[derive(InputObject, Default)]
pub struct TaskFilter {
    /// Only those due strictly before this date.
    pub due_before: Option<Date>,
    /// Only those due strictly after this date.
    pub due_after: Option<Date>,
    /// True: only OPEN tasks due before the firm's today.
    pub overdue: Option<bool>,
    /// True: only those created on the firm's today.
    pub created_today: Option<bool>,
    /// Only those generated from this service.
    pub service_id: Option<ID>,
    /// Only those assigned to this member; `me` for the signed-in member.
    pub assignee: Option<ID>,
    /// Only those whose title or client's name contains this text (ignoring ASCII case).
    pub search: Option<String>,
}

/// Which requests to list; every field narrows the list (they combine with AND).
#[derive(InputObject, Default)]
pub struct RequestFilter {
    /// Only those due strictly before this date.
    pub due_before: Option<Date>,
    /// Only those due strictly after this date.
    pub due_after: Option<Date>,
    /// True: only OPEN (unanswered) requests due before the firm's today.
    pub overdue: Option<bool>,
    /// True: only those created on the firm's today.
    pub created_today: Option<bool>,
    /// Only those generated from this service.
    pub service_id: Option<ID>,
    /// Only those whose text or client's name contains this text (ignoring ASCII case).
    pub search: Option<String>,
}

/// The key a task or request list is sorted by; the id breaks ties.
#[derive(Enum, Clone, Copy, PartialEq, Eq, Default)]
pub enum WorkOrderField {
    /// By due date (the default).
    #[default]
    DueDate,
    /// By the client's name.
    Client,
    /// By status name, alphabetically (ANSWERED, CANCELLED, CLOSED, DONE, OPEN).
    Status,
}

/// Which way a list is sorted.
#[derive(Enum, Clone, Copy, PartialEq, Eq, Default)]
pub enum OrderDirection {
    /// Smallest first (the default).
    #[default]
    Asc,
    /// Largest first (ties: largest id first).
    Desc,
}

/// How to sort a task list: default DUE_DATE ASC.
#[derive(InputObject, Default)]
pub struct TaskOrder {
    /// The sort key.
    #[graphql(default)]
    pub field: WorkOrderField,
    /// Ascending or descending.
    #[graphql(default)]
    pub direction: OrderDirection,
}

/// How to sort a request list: default DUE_DATE ASC.
#[derive(InputObject, Default)]
pub struct RequestOrder {
    /// The sort key.
    #[graphql(default)]
    pub field: WorkOrderField,
    /// Ascending or descending.
    #[graphql(default)]
    pub direction: OrderDirection,
}

fn work_order(field: WorkOrderField, direction: OrderDirection) -> WorkOrder {
    WorkOrder {
        field: match field {
            WorkOrderField::DueDate => WorkSort::DueDate,
            WorkOrderField::Client => WorkSort::Client,
            WorkOrderField::Status => WorkSort::Status,
        },
        descending: direction == OrderDirection::Desc,
    }
}

impl TaskOrder {
    /// The order of the database read (None: DUE_DATE ASC).
    pub fn read(order: Option<TaskOrder>) -> WorkOrder {
        let order = order.unwrap_or_default();
        work_order(order.field, order.direction)
    }
}

impl RequestOrder {
    /// The order of the database read (None: DUE_DATE ASC).
    pub fn read(order: Option<RequestOrder>) -> WorkOrder {
        let order = order.unwrap_or_default();
        work_order(order.field, order.direction)
    }
}

/// Refuses a cursor made under another order than `order` (BAD_USER_INPUT naming it): its
/// position means nothing in this list.
pub fn same_order(page: &WorkPage, order: WorkOrder) -> Result<(), AppError> {
    for (name, key) in [("after", &page.after), ("before", &page.before)] {
        if key.as_ref().is_some_and(|key| key.order != order) {
            return Err(AppError::bad_input(
                name,
                format!(
                    "{name} is a cursor of this list under another orderBy; ask again from the first page"
                ),
            ));
        }
    }
    Ok(())
}

/// One page of the firm's tasks in `status` matching `filter`, sorted by `order_by`, with
/// `totalCount`: the firm's list and a client's list both answer through it.
pub async fn task_page(
    ctx: &Context<'_>,
    status: Option<TaskStatus>,
    filter: WorkFilter,
    order_by: Option<TaskOrder>,
    args: PageArgs,
) -> async_graphql::Result<Page<work::WorkKey, Task>> {
    let firm_id = staff(ctx)?.firm_id;
    let page = args.read(ctx)?;
    let order = TaskOrder::read(order_by);
    same_order(&page.keyset, order)?;
    let parents = page_shows_parents(ctx);
    let mut conn = connect(ctx).await?;
    let rows = work::list_tasks_sorted(
        &mut conn.as_db(),
        firm_id,
        status,
        &filter,
        order,
        &page.keyset,
        parents,
    )
    .await
    .map_err(AppError::from)?;
    drop(conn);
    prime_parents(
        ctx,
        rows.iter().filter_map(|(.., parents)| parents.as_ref()),
    )?;
    let total = TotalCount::new(move |pool| {
        let filter = filter.clone();
        async move {
            work::count_tasks(&mut pool.get().await?.as_db(), firm_id, status, &filter).await
        }
        .boxed()
    });
    Ok(page.connection(
        rows,
        total,
        |(_, key, _)| key.clone(),
        |(row, ..)| Task(row),
    ))
}

/// One page of the firm's requests in `status` matching `filter`, sorted by `order_by`,
/// with `totalCount`: the firm's list and a client's list both answer through it.
pub async fn request_page(
    ctx: &Context<'_>,
    status: Option<RequestStatus>,
    filter: WorkFilter,
    order_by: Option<RequestOrder>,
    args: PageArgs,
) -> async_graphql::Result<Page<work::WorkKey, InformationRequest>> {
    let firm_id = staff(ctx)?.firm_id;
    let page = args.read(ctx)?;
    let order = RequestOrder::read(order_by);
    same_order(&page.keyset, order)?;
    let parents = page_shows_parents(ctx);
    let mut conn = connect(ctx).await?;
    let rows = work::list_requests_sorted(
        &mut conn.as_db(),
        firm_id,
        status,
        &filter,
        order,
        &page.keyset,
        parents,
    )
    .await
    .map_err(AppError::from)?;
    drop(conn);
    prime_parents(
        ctx,
        rows.iter().filter_map(|(.., parents)| parents.as_ref()),
    )?;
    let total = TotalCount::new(move |pool| {
        let filter = filter.clone();
        async move {
            work::count_requests(&mut pool.get().await?.as_db(), firm_id, status, &filter).await
        }
        .boxed()
    });
    Ok(page.connection(
        rows,
        total,
        |(_, key, _)| key.clone(),
        |(row, ..)| InformationRequest(row),
    ))
}

/// Whether the nodes of the connection `ctx` resolves show one of their parents.
fn page_shows_parents(ctx: &Context<'_>) -> bool {
    shows_parents(ctx.look_ahead().field("nodes"))
        || shows_parents(ctx.look_ahead().field("edges").field("node"))
}

/// One page of a client's tasks (`Client.tasks`): what [`task_page`] answers with the client
/// in `filter`, but read for every client of the level in one statement, and their
/// `totalCount`s in one more (the [`WorkOfClient`] loaders).
pub async fn client_task_page(
    ctx: &Context<'_>,
    client_id: i64,
    status: Option<TaskStatus>,
    filter: WorkFilter,
    order_by: Option<TaskOrder>,
    args: PageArgs,
) -> async_graphql::Result<Page<work::WorkKey, Task>> {
    let order = TaskOrder::read(order_by);
    let count = TotalCount::tasks_of_client;
    client_work_page(ctx, client_id, (status, filter, order), args, count, Task).await
}

/// One page of a client's requests (`Client.requests`): see [`client_task_page`].
pub async fn client_request_page(
    ctx: &Context<'_>,
    client_id: i64,
    status: Option<RequestStatus>,
    filter: WorkFilter,
    order_by: Option<RequestOrder>,
    args: PageArgs,
) -> async_graphql::Result<Page<work::WorkKey, InformationRequest>> {
    let order = RequestOrder::read(order_by);
    let count = TotalCount::requests_of_client;
    let node = InformationRequest;
    client_work_page(ctx, client_id, (status, filter, order), args, count, node).await
}

/// A client's page of work (`S`: a task's or a request's status) through the firm's loaders.
async fn client_work_page<S, Row, Node>(
    ctx: &Context<'_>,
    client_id: i64,
    (status, filter, order): (Option<S>, WorkFilter, WorkOrder),
    args: PageArgs,
    count: fn(WorkCountOfClient<S>) -> TotalCount,
    node: fn(Row) -> Node,
) -> async_graphql::Result<Page<work::WorkKey, Node>>
where
    S: Copy + Hash + Eq + Send + Sync + 'static,
    Row: Clone + Send + Sync + 'static,
    Node: OutputType,
    FirmLoader: Loader<WorkOfClient<S>, Value = ClientWork<Row>, Error = async_graphql::Error>,
{
    staff(ctx)?;
    let page = args.read(ctx)?;
    same_order(&page.keyset, order)?;
    // Every client of the level asks the same query: its client is the key's, not the filter's.
    let filter = WorkFilter {
        client_id: None,
        ..filter
    };
    let query = WorkQuery {
        status,
        filter: filter.clone(),
        order,
        page: page.keyset.clone(),
        parents: page_shows_parents(ctx),
    };
    let key = WorkOfClient {
        client_id,
        query: Arc::new(query),
    };
    let (rows, known) = firm_loader(ctx)?.load_one(key).await?.unwrap_or_default();
    prime_parents(
        ctx,
        rows.iter().filter_map(|(.., parents)| parents.as_ref()),
    )?;
    let total = match known {
        Some(total) => TotalCount::known(total),
        None => count(WorkCountOfClient {
            client_id,
            query: Arc::new((status, filter)),
        }),
    };
    Ok(page.connection(
        rows,
        total,
        |(_, key, _)| key.clone(),
        |(row, ..)| node(row),
    ))
}

/// Whether `node` (a task or request of a page or lookup) shows one of its parents (client,
/// mission, service, mission line, the firm's period label, assignee): then the page's
/// statement joins them and primes the loaders with them.
pub fn shows_parents(node: Lookahead<'_>) -> bool {
    [
        "client",
        "mission",
        "service",
        "missionLine",
        "periodLabel",
        "assignee",
    ]
    .into_iter()
    .any(|parent| node.field(parent).exists())
}

fn checked_search(search: Option<String>) -> Result<Option<String>, AppError> {
    let Some(search) = search else {
        return Ok(None);
    };
    let search = search.trim().to_string();
    if search.chars().count() > MAX_SEARCH_CHARS {
        return Err(AppError::bad_input(
            "filter.search",
            format!("search for at most {MAX_SEARCH_CHARS} characters"),
        ));
    }
    Ok(Some(search).filter(|search| !search.is_empty()))
}

/// `filter` applied to `base` (the list's other arguments), with the firm's today.
pub async fn task_filter(
    ctx: &Context<'_>,
    mut base: WorkFilter,
    filter: Option<TaskFilter>,
) -> async_graphql::Result<WorkFilter> {
    let Some(filter) = filter else {
        return Ok(base);
    };
    let today = today(ctx).await?;
    base.due_before = filter.due_before.map(|date| date.0);
    base.due_after = filter.due_after.map(|date| date.0);
    base.overdue_on = filter.overdue.unwrap_or(false).then_some(today);
    base.created_on = filter.created_today.unwrap_or(false).then_some(today);
    base.service_id = filter
        .service_id
        .map(|id| parse_id(&id, Kind::Service))
        .transpose()?;
    if let Some(assignee) = filter.assignee {
        if base.assignee_id.is_some() {
            return Err(AppError::bad_input(
                "filter.assignee",
                "give the assignee once: assigneeId or filter.assignee",
            )
            .into());
        }
        base.assignee_id = Some(if assignee.as_str() == "me" {
            staff(ctx)?.user_id
        } else {
            parse_id(&assignee, Kind::StaffMember)?
        });
    }
    base.search = checked_search(filter.search)?;
    Ok(base)
}

/// `filter` applied to `base` (the list's other arguments), with the firm's today.
pub async fn request_filter(
    ctx: &Context<'_>,
    mut base: WorkFilter,
    filter: Option<RequestFilter>,
) -> async_graphql::Result<WorkFilter> {
    let Some(filter) = filter else {
        return Ok(base);
    };
    let today = today(ctx).await?;
    base.due_before = filter.due_before.map(|date| date.0);
    base.due_after = filter.due_after.map(|date| date.0);
    base.overdue_on = filter.overdue.unwrap_or(false).then_some(today);
    base.created_on = filter.created_today.unwrap_or(false).then_some(today);
    base.service_id = filter
        .service_id
        .map(|id| parse_id(&id, Kind::Service))
        .transpose()?;
    base.search = checked_search(filter.search)?;
    Ok(base)
}

/// The last day (Sunday) of the ISO week holding `today`.
pub fn end_of_week(today: NaiveDate) -> NaiveDate {
    today + Duration::days(i64::from(6 - today.weekday().num_days_from_monday()))
}

/// The firm's work in numbers, as of its today.
pub struct Workload {
    today: NaiveDate,
    tasks: Vec<AssigneeWorkload>,
    requests: work::RequestWorkload,
}

impl Workload {
    pub async fn load(ctx: &Context<'_>) -> async_graphql::Result<Self> {
        let firm_id = staff(ctx)?.firm_id;
        let today = today(ctx).await?;
        let mut conn = connect(ctx).await?;
        let mut db = conn.as_db();
        let week_end = end_of_week(today);
        let tasks = work::task_workload(&mut db, firm_id, today, week_end)
            .await
            .map_err(AppError::from)?;
        let requests = work::request_workload(&mut db, firm_id, today, week_end)
            .await
            .map_err(AppError::from)?;
        Ok(Self {
            today,
            tasks,
            requests,
        })
    }

    fn tasks_sum(&self, count: impl Fn(&AssigneeWorkload) -> i64) -> i32 {
        clamp(self.tasks.iter().map(count).sum())
    }
}

fn clamp(count: i64) -> i32 {
    i32::try_from(count).unwrap_or(i32::MAX)
}

/// The firm's open work in numbers, as of its today: what is late, what waits for review,
/// what falls due this week, in total and per assignee. Counted in two statements.
#[Object(guard = "StaffGuard", visible = "visible_to_staff")]
impl Workload {
    /// The firm's local date the counts are made for.
    async fn today(&self) -> Date {
        self.today.into()
    }
    /// OPEN tasks.
    async fn open_tasks(&self) -> i32 {
        self.tasks_sum(|row| row.open)
    }
    /// OPEN tasks due before today.
    async fn overdue_tasks(&self) -> i32 {
        self.tasks_sum(|row| row.overdue)
    }
    /// OPEN tasks due from today to Sunday.
    async fn tasks_due_this_week(&self) -> i32 {
        self.tasks_sum(|row| row.due_this_week)
    }
    /// Tasks created today.
    async fn tasks_created_today(&self) -> i32 {
        self.tasks_sum(|row| row.created_today)
    }
    /// OPEN (unanswered) requests.
    async fn open_requests(&self) -> i32 {
        clamp(self.requests.open)
    }
    /// OPEN requests due before today.
    async fn overdue_requests(&self) -> i32 {
        clamp(self.requests.overdue)
    }
    /// ANSWERED requests: the client answered, the firm has not closed them yet.
    async fn answered_to_review(&self) -> i32 {
        clamp(self.requests.answered)
    }
    /// OPEN requests due from today to Sunday.
    async fn requests_due_this_week(&self) -> i32 {
        clamp(self.requests.due_this_week)
    }
    /// Requests created today.
    async fn requests_created_today(&self) -> i32 {
        clamp(self.requests.created_today)
    }
    /// OPEN tasks and requests due from today to Sunday.
    async fn due_this_week(&self) -> i32 {
        clamp(
            self.tasks.iter().map(|row| row.due_this_week).sum::<i64>()
                + self.requests.due_this_week,
        )
    }
    /// The task counts per assignee (unassigned tasks under a null assignee), members with
    /// no task left out.
    async fn by_assignee(&self) -> Vec<AssigneeLoad> {
        self.tasks.iter().cloned().map(AssigneeLoad).collect()
    }
}

/// One assignee's tasks in numbers.
pub struct AssigneeLoad(AssigneeWorkload);

/// One member's (or the unassigned) tasks in numbers.
#[Object(guard = "StaffGuard", visible = "visible_to_staff")]
impl AssigneeLoad {
    /// The member; null for unassigned tasks.
    async fn assignee(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<StaffMember>> {
        let Some(user_id) = self.0.assignee_id else {
            return Ok(None);
        };
        Ok(Some(StaffMember(user_of(ctx, user_id).await?)))
    }
    /// OPEN tasks.
    async fn open_tasks(&self) -> i32 {
        clamp(self.0.open)
    }
    /// OPEN tasks due before today.
    async fn overdue_tasks(&self) -> i32 {
        clamp(self.0.overdue)
    }
    /// OPEN tasks due from today to Sunday.
    async fn due_this_week(&self) -> i32 {
        clamp(self.0.due_this_week)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_week_ends_on_its_sunday() {
        let date = |d| NaiveDate::from_ymd_opt(2027, 1, d).expect("a date");
        // 2027-01-04 is a Monday.
        assert_eq!(end_of_week(date(4)), date(10));
        assert_eq!(end_of_week(date(7)), date(10));
        assert_eq!(end_of_week(date(10)), date(10));
    }
}
