//! `Query.firm`: the firm's catalogue, clients, missions, generated work and outbox, always
//! scoped to the signed-in staff member's firm.

use async_graphql::{Context, ID, Object};
use futures_util::FutureExt as _;

use super::preview::{PreviewOccurrence, preview_for_input, preview_for_mission};
use super::types::*;
use crate::db::journal::JournalFilter;
use crate::db::{DbConn, DbResult, catalog, clients, firms, missions, outbox, work};
use crate::domain::gid::Kind;
use crate::domain::{DeliveryStatus, MissionStatus, RequestStatus, TaskStatus};
use crate::error::AppError;
use crate::graphql::context::{StaffGuard, connect, found, gid, parse_id, staff, visible_to_staff};
use crate::graphql::firm::day::{
    RequestFilter, RequestOrder, TaskFilter, TaskOrder, Workload, request_filter, request_page,
    shows_parents, task_filter, task_page, today,
};
use crate::graphql::firm::history::{HistoryArgs, HistoryEntry, HistoryFilter, history_page};
use crate::graphql::firm::mutation::{CreateMissionInput, limits};
use crate::graphql::loaders::{firm_of, prime_parents};
use crate::graphql::pages::{Page, PageArgs, TotalCount};
use crate::graphql::scalars::Date;

/// The firm view, for staff only.
pub struct FirmView;

fn optional_id(id: Option<&ID>, kind: Kind) -> Result<Option<i64>, AppError> {
    id.map(|id| parse_id(id, kind)).transpose()
}

/// What a firm's staff may read: its catalogue, clients, missions, generated tasks and
/// requests, webhook endpoints and outbox. Everything is scoped to the signed-in member's firm.
#[Object(guard = "StaffGuard", visible = "visible_to_staff")]
impl FirmView {
    /// The firm's id.
    async fn id(&self, ctx: &Context<'_>) -> async_graphql::Result<ID> {
        Ok(gid(Kind::Firm, staff(ctx)?.firm_id))
    }

    /// The firm's name.
    async fn name(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        Ok(firm_of(ctx).await?.name)
    }

    /// The firm's IANA time zone: its "today" for generation.
    async fn time_zone(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        Ok(firm_of(ctx).await?.time_zone)
    }

    /// The firm's local date now (in its time zone): what "today", "overdue" and "created
    /// today" mean for it.
    async fn today(&self, ctx: &Context<'_>) -> async_graphql::Result<Date> {
        Ok(today(ctx).await?.into())
    }

    /// The firm's open work in numbers as of its today: late, to review, due this week, per
    /// assignee.
    async fn workload(&self, ctx: &Context<'_>) -> async_graphql::Result<Workload> {
        Workload::load(ctx).await
    }

    /// Everything that happened in the firm, newest first: who did what, when.
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
        history_page(
            ctx,
            JournalFilter::default(),
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

    /// The firm's live categories by name, paginated.
    async fn categories(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Page<(String, i64), Category>> {
        let firm_id = staff(ctx)?.firm_id;
        let page = PageArgs {
            first,
            after,
            last,
            before,
        }
        .read(ctx)?;
        let mut conn = connect(ctx).await?;
        let rows = catalog::list_categories(&mut conn.as_db(), firm_id, &page.keyset)
            .await
            .map_err(AppError::from)?;
        let total = TotalCount::new(move |pool| {
            async move { catalog::count_categories(&mut pool.get().await?.as_db(), firm_id).await }
                .boxed()
        });
        Ok(page.connection(rows, total, |row| (row.name.clone(), row.id), Category))
    }

    /// The firm's services by title, paginated; `categoryId` keeps one category's.
    #[expect(clippy::too_many_arguments, reason = "one GraphQL argument each")]
    async fn services(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only this category's services.")] category_id: Option<ID>,
        #[graphql(default = false, desc = "True to include archived services too.")]
        include_archived: bool,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Page<(String, i64), Service>> {
        let firm_id = staff(ctx)?.firm_id;
        let category_id = optional_id(category_id.as_ref(), Kind::Category)?;
        let page = PageArgs {
            first,
            after,
            last,
            before,
        }
        .read(ctx)?;
        let mut conn = connect(ctx).await?;
        let rows = catalog::list_services(
            &mut conn.as_db(),
            firm_id,
            category_id,
            include_archived,
            &page.keyset,
        )
        .await
        .map_err(AppError::from)?;
        let total = TotalCount::new(move |pool| {
            async move {
                catalog::count_services(
                    &mut pool.get().await?.as_db(),
                    firm_id,
                    category_id,
                    include_archived,
                )
                .await
            }
            .boxed()
        });
        Ok(page.connection(rows, total, |row| (row.title.clone(), row.id), Service))
    }

    /// One service, archived or not, by id.
    async fn service(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The service's id; NOT_FOUND when the firm has none with it.")] id: ID,
    ) -> async_graphql::Result<Service> {
        let staff = staff(ctx)?;
        let id = parse_id(&id, Kind::Service)?;
        let mut conn = connect(ctx).await?;
        Ok(Service(found(
            catalog::find_service(&mut conn.as_db(), staff.firm_id, id).await,
            "service",
        )?))
    }

    /// Clients by name, paginated; `search` matches part of the name.
    #[expect(clippy::too_many_arguments, reason = "one GraphQL argument each")]
    async fn clients(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Keep clients whose name contains this text, in any case.")]
        search: Option<String>,
        #[graphql(default = false, desc = "True to include archived clients too.")]
        include_archived: bool,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Page<(String, i64), Client>> {
        let firm_id = staff(ctx)?.firm_id;
        let page = PageArgs {
            first,
            after,
            last,
            before,
        }
        .read(ctx)?;
        let mut conn = connect(ctx).await?;
        let rows = clients::list_clients(
            &mut conn.as_db(),
            firm_id,
            include_archived,
            search.as_deref(),
            &page.keyset,
        )
        .await
        .map_err(AppError::from)?;
        let total = TotalCount::new(move |pool| {
            let search = search.clone();
            async move {
                clients::count_clients(
                    &mut pool.get().await?.as_db(),
                    firm_id,
                    include_archived,
                    search.as_deref(),
                )
                .await
            }
            .boxed()
        });
        Ok(page.connection(rows, total, |row| (row.name.clone(), row.id), Client))
    }

    /// One client by id.
    async fn client(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The client's id; NOT_FOUND when the firm has none with it.")] id: ID,
    ) -> async_graphql::Result<Client> {
        let staff = staff(ctx)?;
        let id = parse_id(&id, Kind::Client)?;
        let mut conn = connect(ctx).await?;
        Ok(Client(found(
            clients::find_client(&mut conn.as_db(), staff.firm_id, id).await,
            "client",
        )?))
    }

    /// The firm's missions, oldest first, paginated; filtered by status and client.
    #[expect(clippy::too_many_arguments, reason = "one GraphQL argument each")]
    async fn missions(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only missions in this status.")] status: Option<MissionStatus>,
        #[graphql(desc = "Only those of this client.")] client_id: Option<ID>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Page<i64, Mission>> {
        let firm_id = staff(ctx)?.firm_id;
        let client_id = optional_id(client_id.as_ref(), Kind::Client)?;
        let page = PageArgs {
            first,
            after,
            last,
            before,
        }
        .read(ctx)?;
        let mut conn = connect(ctx).await?;
        let rows =
            missions::list_missions(&mut conn.as_db(), firm_id, status, client_id, &page.keyset)
                .await
                .map_err(AppError::from)?;
        let total = TotalCount::new(move |pool| {
            async move {
                missions::count_missions(&mut pool.get().await?.as_db(), firm_id, status, client_id)
                    .await
            }
            .boxed()
        });
        Ok(page.connection(rows, total, |row| row.id, Mission))
    }

    /// One mission by id.
    async fn mission(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The mission's id; NOT_FOUND when the firm has none with it.")] id: ID,
    ) -> async_graphql::Result<Mission> {
        let staff = staff(ctx)?;
        let id = parse_id(&id, Kind::Mission)?;
        let mut conn = connect(ctx).await?;
        Ok(Mission(found(
            missions::find_mission(&mut conn.as_db(), staff.firm_id, id).await,
            "mission",
        )?))
    }

    /// Internal tasks, filtered, sorted by `orderBy` (default due date then id) and paginated.
    #[expect(clippy::too_many_arguments, reason = "one GraphQL argument each")]
    async fn tasks(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only tasks in this status.")] status: Option<TaskStatus>,
        #[graphql(desc = "Only those of this client.")] client_id: Option<ID>,
        #[graphql(desc = "Only those of this mission.")] mission_id: Option<ID>,
        #[graphql(desc = "Only those due on or after this date.")] due_from: Option<Date>,
        #[graphql(desc = "Only those due on or before this date (inclusive).")] due_to: Option<
            Date,
        >,
        #[graphql(desc = "Only tasks assigned to this member.")] assignee_id: Option<ID>,
        #[graphql(
            name = "filter",
            desc = "More ways to narrow the list: due before/after, overdue, created today, service, assignee (`me`), text search."
        )]
        task_filter_input: Option<TaskFilter>,
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
        let filter = work::WorkFilter {
            client_id: optional_id(client_id.as_ref(), Kind::Client)?,
            mission_id: optional_id(mission_id.as_ref(), Kind::Mission)?,
            due_from: due_from.map(|date| date.0),
            due_to: due_to.map(|date| date.0),
            assignee_id: optional_id(assignee_id.as_ref(), Kind::StaffMember)?,
            ..work::WorkFilter::default()
        };
        let filter = task_filter(ctx, filter, task_filter_input).await?;
        task_page(
            ctx,
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

    /// One task by id.
    async fn task(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The task's id; NOT_FOUND when the firm has none with it.")] id: ID,
    ) -> async_graphql::Result<Task> {
        let row = work_item(
            ctx,
            &id,
            Kind::Task,
            "task",
            async |db, firm_id, id| work::find_task(db, firm_id, id).await,
            async |db, firm_id, id| work::find_task_with_parents(db, firm_id, id).await,
        )
        .await?;
        Ok(Task(row))
    }

    /// Requests to clients, filtered, sorted by `orderBy` (default due date then id) and
    /// paginated.
    #[expect(clippy::too_many_arguments, reason = "one GraphQL argument each")]
    async fn information_requests(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only requests in this status.")] status: Option<RequestStatus>,
        #[graphql(desc = "Only those of this client.")] client_id: Option<ID>,
        #[graphql(desc = "Only those of this mission.")] mission_id: Option<ID>,
        #[graphql(desc = "Only those due on or after this date.")] due_from: Option<Date>,
        #[graphql(desc = "Only those due on or before this date (inclusive).")] due_to: Option<
            Date,
        >,
        #[graphql(
            name = "filter",
            desc = "More ways to narrow the list: due before/after, overdue, created today, service, text search."
        )]
        request_filter_input: Option<RequestFilter>,
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
        let filter = work::WorkFilter {
            client_id: optional_id(client_id.as_ref(), Kind::Client)?,
            mission_id: optional_id(mission_id.as_ref(), Kind::Mission)?,
            due_from: due_from.map(|date| date.0),
            due_to: due_to.map(|date| date.0),
            assignee_id: None,
            ..work::WorkFilter::default()
        };
        let filter = request_filter(ctx, filter, request_filter_input).await?;
        request_page(
            ctx,
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

    /// One request by id.
    async fn information_request(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "The information request's id; NOT_FOUND when the firm has none with it."
        )]
        id: ID,
    ) -> async_graphql::Result<InformationRequest> {
        let row = work_item(
            ctx,
            &id,
            Kind::InformationRequest,
            "information request",
            async |db, firm_id, id| work::find_request(db, firm_id, id).await,
            async |db, firm_id, id| work::find_request_with_parents(db, firm_id, id).await,
        )
        .await?;
        Ok(InformationRequest(row))
    }

    /// What a mission (saved, by `missionId`, or a draft, by `mission`) would generate up to
    /// `until`, so a firm sees before signing what will be created, past periods included.
    async fn schedule_preview(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "A saved mission to preview (or give mission).")] mission_id: Option<ID>,
        #[graphql(desc = "A draft mission to preview, instead of missionId.")] mission: Option<
            CreateMissionInput,
        >,
        #[graphql(
            desc = "Last due date listed, after working-day adjustment (inclusive). The mission's \
                    end date, by contrast, bounds each period's date before adjustment."
        )]
        until: Date,
    ) -> async_graphql::Result<Vec<PreviewOccurrence>> {
        let staff = staff(ctx)?;
        let mut conn = connect(ctx).await?;
        let mut db = conn.as_db();
        let firm = found(firms::find_firm(&mut db, staff.firm_id).await, "firm")?;
        match (mission_id, mission) {
            (Some(id), None) => {
                let id = parse_id(&id, Kind::Mission)?;
                Ok(preview_for_mission(&mut db, &firm, id, until.0, &limits(ctx)).await?)
            }
            (None, Some(input)) => {
                Ok(preview_for_input(&mut db, &firm, &input, until.0, &limits(ctx)).await?)
            }
            _ => Err(AppError::bad_input(
                "missionId",
                "give either missionId or mission, not both and not neither",
            )
            .into()),
        }
    }

    /// Active members of the firm, by id, paginated.
    async fn staff(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Page<i64, StaffMember>> {
        let firm_id = staff(ctx)?.firm_id;
        let page = PageArgs {
            first,
            after,
            last,
            before,
        }
        .read(ctx)?;
        let mut conn = connect(ctx).await?;
        let rows = firms::page_users(&mut conn.as_db(), firm_id, &page.keyset)
            .await
            .map_err(AppError::from)?;
        let total = TotalCount::new(move |pool| {
            async move { firms::count_users(&mut pool.get().await?.as_db(), firm_id).await }.boxed()
        });
        Ok(page.connection(rows, total, |row| row.id, StaffMember))
    }

    /// The firm's webhook endpoints, by id, paginated.
    async fn webhook_endpoints(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Page<i64, WebhookEndpoint>> {
        let firm_id = staff(ctx)?.firm_id;
        let page = PageArgs {
            first,
            after,
            last,
            before,
        }
        .read(ctx)?;
        let mut conn = connect(ctx).await?;
        let rows = outbox::page_endpoints(&mut conn.as_db(), firm_id, &page.keyset)
            .await
            .map_err(AppError::from)?;
        let total = TotalCount::new(move |pool| {
            async move { outbox::count_endpoints(&mut pool.get().await?.as_db(), firm_id).await }
                .boxed()
        });
        Ok(page.connection(rows, total, |row| row.id, WebhookEndpoint))
    }

    /// The outbox, newest first: emails and webhooks with their status and attempts.
    #[expect(clippy::too_many_arguments, reason = "one GraphQL argument each")]
    async fn deliveries(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only deliveries in this status.")] status: Option<DeliveryStatus>,
        #[graphql(desc = "Only deliveries of this request.")] request_id: Option<ID>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Page<i64, Delivery>> {
        let firm_id = staff(ctx)?.firm_id;
        let request_id = optional_id(request_id.as_ref(), Kind::InformationRequest)?;
        let page = PageArgs {
            first,
            after,
            last,
            before,
        }
        .read(ctx)?;
        let mut conn = connect(ctx).await?;
        let rows =
            outbox::list_deliveries(&mut conn.as_db(), firm_id, status, request_id, &page.keyset)
                .await
                .map_err(AppError::from)?;
        let total = TotalCount::new(move |pool| {
            async move {
                outbox::count_deliveries(
                    &mut pool.get().await?.as_db(),
                    firm_id,
                    status,
                    request_id,
                )
                .await
            }
            .boxed()
        });
        Ok(page.connection(rows, total, |row| row.id, Delivery))
    }

    /// The documents clients deposited with their answers, newest first.
    #[expect(clippy::too_many_arguments, reason = "one GraphQL argument each")]
    async fn files(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only files answering this information request.")] request_id: Option<ID>,
        #[graphql(desc = "Only files of this client.")] client_id: Option<ID>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Page<i64, crate::graphql::files::AnswerFile>> {
        let firm_id = staff(ctx)?.firm_id;
        let filter = crate::db::files::FileFilter {
            request_id: optional_id(request_id.as_ref(), Kind::InformationRequest)?,
            client_id: optional_id(client_id.as_ref(), Kind::Client)?,
        };
        let page = PageArgs {
            first,
            after,
            last,
            before,
        }
        .read(ctx)?;
        let mut conn = connect(ctx).await?;
        let rows = crate::db::files::page(&mut conn.as_db(), firm_id, filter, &page.keyset)
            .await
            .map_err(AppError::from)?;
        let total = TotalCount::new(move |pool| {
            async move {
                crate::db::files::count(&mut pool.get().await?.as_db(), firm_id, filter).await
            }
            .boxed()
        });
        Ok(page.connection(rows, total, |row| row.id, crate::graphql::files::AnswerFile))
    }

    /// Replies by email held for the firm to accept or reject (a sender who is not a contact
    /// of the client, or a failed DMARC check), oldest first.
    async fn held_replies(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "Return the first N items (0 up to the largest page), after `after` when given. Not with `last`; neither: the default page size."
        )]
        first: Option<i32>,
        #[graphql(
            desc = "Start after this cursor (an edge's `cursor` or `pageInfo.endCursor` of this same list)."
        )]
        after: Option<String>,
        #[graphql(
            desc = "Return the last N items (0 up to the largest page), before `before` when given. Not with `first`."
        )]
        last: Option<i32>,
        #[graphql(
            desc = "End before this cursor (an edge's `cursor` or `pageInfo.startCursor` of this same list)."
        )]
        before: Option<String>,
    ) -> async_graphql::Result<Page<i64, crate::graphql::firm::replies::HeldReply>> {
        let actor = crate::graphql::door::actor(ctx)?;
        let page = PageArgs {
            first,
            after,
            last,
            before,
        }
        .read(ctx)?;
        let (rows, total) =
            crate::ops::replies::held_page(crate::graphql::door::env(ctx)?, &actor, &page.keyset)
                .await?;
        Ok(page.connection(
            rows,
            TotalCount::new(move |_| async move { Ok(total) }.boxed()),
            |row| row.id,
            crate::graphql::firm::replies::HeldReply,
        ))
    }
}

/// A task or request of the caller's firm by id: the row alone when no parent field is
/// selected, else the row with its client, mission and service read in the same statement
/// and primed for the nested fields (one statement either way). `line_of` gives the row's
/// mission line, the key of its service.
async fn work_item<Row>(
    ctx: &Context<'_>,
    id: &ID,
    kind: Kind,
    what: &'static str,
    alone: impl AsyncFnOnce(&mut DbConn<'_>, i64, i64) -> DbResult<Row>,
    with_parents: impl AsyncFnOnce(&mut DbConn<'_>, i64, i64) -> DbResult<(Row, work::Parents)>,
) -> async_graphql::Result<Row> {
    let firm_id = staff(ctx)?.firm_id;
    let id = parse_id(id, kind)?;
    let mut conn = connect(ctx).await?;
    if !shows_parents(ctx.look_ahead()) {
        return Ok(found(alone(&mut conn.as_db(), firm_id, id).await, what)?);
    }
    let (row, parents) = found(with_parents(&mut conn.as_db(), firm_id, id).await, what)?;
    drop(conn);
    prime_parents(ctx, [&parents])?;
    Ok(row)
}
