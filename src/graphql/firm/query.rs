//! `Query.firm`: the firm's catalogue, clients, missions, generated work and outbox, always
//! scoped to the signed-in staff member's firm.

use async_graphql::{Context, ID, Object};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::NaiveDate;

use super::preview::{PreviewOccurrence, preview_for_input, preview_for_mission};
use super::types::*;
use crate::db::{catalog, clients, firms, missions, outbox, work};
use crate::domain::{DeliveryStatus, MissionStatus, RequestStatus, TaskStatus};
use crate::error::AppError;
use crate::graphql::context::{StaffGuard, connect, found, parse_id, staff, visible_to_staff};
use crate::graphql::firm::mutation::{MissionInput, limits};
use crate::graphql::scalars::Date;

/// Largest page a list returns.
pub const MAX_PAGE: i32 = 200;

/// The firm view, for staff only.
pub struct FirmView;

/// The page size asked for, within 1..=MAX_PAGE (default 50).
fn page_size(first: Option<i32>) -> Result<i64, AppError> {
    match first {
        None => Ok(50),
        Some(first) if (1..=MAX_PAGE).contains(&first) => Ok(i64::from(first)),
        Some(first) => Err(AppError::bad_input(
            "first",
            format!("first must be between 1 and {MAX_PAGE}, not {first}"),
        )),
    }
}

fn encode_cursor(text: &str) -> String {
    URL_SAFE_NO_PAD.encode(text)
}

fn decode_cursor(cursor: &str) -> Result<String, AppError> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| AppError::bad_input("after", "this cursor was not given by Rappel"))
}

/// A (due date, id) cursor of the work lists.
fn decode_due_cursor(cursor: Option<String>) -> Result<Option<(NaiveDate, i64)>, AppError> {
    let Some(cursor) = cursor else {
        return Ok(None);
    };
    let text = decode_cursor(&cursor)?;
    let parsed = text.split_once('|').and_then(|(date, id)| {
        Some((
            NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?,
            id.parse::<i64>().ok()?,
        ))
    });
    parsed
        .map(Some)
        .ok_or_else(|| AppError::bad_input("after", "this cursor was not given by Rappel"))
}

/// Splits `limit + 1` fetched rows into a page and whether more exist.
fn paginate<T>(mut rows: Vec<T>, limit: i64) -> (Vec<T>, bool) {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let has_next = rows.len() > limit;
    rows.truncate(limit);
    (rows, has_next)
}

fn optional_id(id: Option<&ID>, what: &'static str) -> Result<Option<i64>, AppError> {
    id.map(|id| parse_id(id, what)).transpose()
}

#[Object(guard = "StaffGuard", visible = "visible_to_staff")]
impl FirmView {
    async fn id(&self, ctx: &Context<'_>) -> async_graphql::Result<ID> {
        Ok(staff(ctx)?.firm_id.into())
    }

    async fn name(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        let staff = staff(ctx)?;
        let mut conn = connect(ctx).await?;
        Ok(found(
            firms::find_firm(&mut conn.as_db(), staff.firm_id).await,
            "firm",
        )?
        .name)
    }

    /// The firm's IANA time zone: its "today" for generation.
    async fn time_zone(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        let staff = staff(ctx)?;
        let mut conn = connect(ctx).await?;
        Ok(found(
            firms::find_firm(&mut conn.as_db(), staff.firm_id).await,
            "firm",
        )?
        .time_zone)
    }

    async fn categories(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Category>> {
        let staff = staff(ctx)?;
        let mut conn = connect(ctx).await?;
        let rows = catalog::list_categories(&mut conn.as_db(), staff.firm_id)
            .await
            .map_err(AppError::from)?;
        Ok(rows.into_iter().map(Category).collect())
    }

    async fn services(
        &self,
        ctx: &Context<'_>,
        category_id: Option<ID>,
        #[graphql(default = false)] include_archived: bool,
    ) -> async_graphql::Result<Vec<Service>> {
        let staff = staff(ctx)?;
        let category_id = optional_id(category_id.as_ref(), "category")?;
        let mut conn = connect(ctx).await?;
        let rows = catalog::list_services(
            &mut conn.as_db(),
            staff.firm_id,
            category_id,
            include_archived,
        )
        .await
        .map_err(AppError::from)?;
        Ok(rows.into_iter().map(Service).collect())
    }

    async fn service(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Service> {
        let staff = staff(ctx)?;
        let id = parse_id(&id, "service")?;
        let mut conn = connect(ctx).await?;
        Ok(Service(found(
            catalog::find_service(&mut conn.as_db(), staff.firm_id, id).await,
            "service",
        )?))
    }

    /// Clients by name, paginated; `search` matches part of the name.
    async fn clients(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        search: Option<String>,
        #[graphql(default = false)] include_archived: bool,
    ) -> async_graphql::Result<ClientConnection> {
        let staff = staff(ctx)?;
        let limit = page_size(first)?;
        let after = match after {
            Some(cursor) => {
                let text = decode_cursor(&cursor)?;
                let (id, name) = text
                    .split_once('|')
                    .and_then(|(id, name)| Some((id.parse::<i64>().ok()?, name.to_string())))
                    .ok_or_else(|| {
                        AppError::bad_input("after", "this cursor was not given by Rappel")
                    })?;
                Some((name, id))
            }
            None => None,
        };
        let mut conn = connect(ctx).await?;
        let rows = clients::list_clients(
            &mut conn.as_db(),
            staff.firm_id,
            include_archived,
            search.as_deref(),
            after,
            limit + 1,
        )
        .await
        .map_err(AppError::from)?;
        let (rows, has_next_page) = paginate(rows, limit);
        let end_cursor = rows
            .last()
            .map(|client| encode_cursor(&format!("{}|{}", client.id, client.name)));
        Ok(ClientConnection {
            nodes: rows.into_iter().map(Client).collect(),
            page_info: PageInfo {
                has_next_page,
                end_cursor,
            },
        })
    }

    async fn client(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Client> {
        let staff = staff(ctx)?;
        let id = parse_id(&id, "client")?;
        let mut conn = connect(ctx).await?;
        Ok(Client(found(
            clients::find_client(&mut conn.as_db(), staff.firm_id, id).await,
            "client",
        )?))
    }

    async fn missions(
        &self,
        ctx: &Context<'_>,
        status: Option<MissionStatus>,
        client_id: Option<ID>,
    ) -> async_graphql::Result<Vec<Mission>> {
        let staff = staff(ctx)?;
        let client_id = optional_id(client_id.as_ref(), "client")?;
        let mut conn = connect(ctx).await?;
        let rows = missions::list_missions(&mut conn.as_db(), staff.firm_id, status, client_id)
            .await
            .map_err(AppError::from)?;
        Ok(rows.into_iter().map(Mission).collect())
    }

    async fn mission(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Mission> {
        let staff = staff(ctx)?;
        let id = parse_id(&id, "mission")?;
        let mut conn = connect(ctx).await?;
        Ok(Mission(found(
            missions::find_mission(&mut conn.as_db(), staff.firm_id, id).await,
            "mission",
        )?))
    }

    /// Internal tasks by due date, filtered and paginated.
    #[expect(clippy::too_many_arguments, reason = "one GraphQL argument each")]
    async fn tasks(
        &self,
        ctx: &Context<'_>,
        status: Option<TaskStatus>,
        client_id: Option<ID>,
        mission_id: Option<ID>,
        due_from: Option<Date>,
        due_to: Option<Date>,
        assignee_id: Option<ID>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<TaskConnection> {
        let staff = staff(ctx)?;
        let limit = page_size(first)?;
        let filter = work::WorkFilter {
            client_id: optional_id(client_id.as_ref(), "client")?,
            mission_id: optional_id(mission_id.as_ref(), "mission")?,
            due_from: due_from.map(|date| date.0),
            due_to: due_to.map(|date| date.0),
            assignee_id: optional_id(assignee_id.as_ref(), "staff member")?,
            after: decode_due_cursor(after)?,
            limit: limit + 1,
        };
        let mut conn = connect(ctx).await?;
        let rows = work::list_tasks(&mut conn.as_db(), staff.firm_id, status, &filter)
            .await
            .map_err(AppError::from)?;
        let (rows, has_next_page) = paginate(rows, limit);
        let end_cursor = rows
            .last()
            .map(|task| encode_cursor(&format!("{}|{}", task.due_date, task.id)));
        Ok(TaskConnection {
            nodes: rows.into_iter().map(Task).collect(),
            page_info: PageInfo {
                has_next_page,
                end_cursor,
            },
        })
    }

    async fn task(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Task> {
        let staff = staff(ctx)?;
        let id = parse_id(&id, "task")?;
        let mut conn = connect(ctx).await?;
        Ok(Task(found(
            work::find_task(&mut conn.as_db(), staff.firm_id, id).await,
            "task",
        )?))
    }

    /// Requests to clients by due date, filtered and paginated.
    #[expect(clippy::too_many_arguments, reason = "one GraphQL argument each")]
    async fn information_requests(
        &self,
        ctx: &Context<'_>,
        status: Option<RequestStatus>,
        client_id: Option<ID>,
        mission_id: Option<ID>,
        due_from: Option<Date>,
        due_to: Option<Date>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<InformationRequestConnection> {
        let staff = staff(ctx)?;
        let limit = page_size(first)?;
        let filter = work::WorkFilter {
            client_id: optional_id(client_id.as_ref(), "client")?,
            mission_id: optional_id(mission_id.as_ref(), "mission")?,
            due_from: due_from.map(|date| date.0),
            due_to: due_to.map(|date| date.0),
            assignee_id: None,
            after: decode_due_cursor(after)?,
            limit: limit + 1,
        };
        let mut conn = connect(ctx).await?;
        let rows = work::list_requests(&mut conn.as_db(), staff.firm_id, status, &filter)
            .await
            .map_err(AppError::from)?;
        let (rows, has_next_page) = paginate(rows, limit);
        let end_cursor = rows
            .last()
            .map(|request| encode_cursor(&format!("{}|{}", request.due_date, request.id)));
        Ok(InformationRequestConnection {
            nodes: rows.into_iter().map(InformationRequest).collect(),
            page_info: PageInfo {
                has_next_page,
                end_cursor,
            },
        })
    }

    async fn information_request(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<InformationRequest> {
        let staff = staff(ctx)?;
        let id = parse_id(&id, "information request")?;
        let mut conn = connect(ctx).await?;
        Ok(InformationRequest(found(
            work::find_request(&mut conn.as_db(), staff.firm_id, id).await,
            "information request",
        )?))
    }

    /// What a mission (saved, by `missionId`, or a draft, by `mission`) would generate up to
    /// `until`, so a firm sees before signing what will be created, past periods included.
    async fn schedule_preview(
        &self,
        ctx: &Context<'_>,
        mission_id: Option<ID>,
        mission: Option<MissionInput>,
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
                let id = parse_id(&id, "mission")?;
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

    /// Members of the firm.
    async fn staff(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<StaffMember>> {
        let staff = staff(ctx)?;
        let mut conn = connect(ctx).await?;
        let rows = firms::list_users(&mut conn.as_db(), staff.firm_id)
            .await
            .map_err(AppError::from)?;
        Ok(rows.into_iter().map(StaffMember).collect())
    }

    async fn webhook_endpoints(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<WebhookEndpoint>> {
        let staff = staff(ctx)?;
        let mut conn = connect(ctx).await?;
        let rows = outbox::list_endpoints(&mut conn.as_db(), staff.firm_id)
            .await
            .map_err(AppError::from)?;
        Ok(rows.into_iter().map(WebhookEndpoint).collect())
    }

    /// The outbox, newest first: emails and webhooks with their status and attempts.
    async fn deliveries(
        &self,
        ctx: &Context<'_>,
        status: Option<DeliveryStatus>,
        request_id: Option<ID>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<DeliveryConnection> {
        let staff = staff(ctx)?;
        let limit = page_size(first)?;
        let before_id = match after {
            Some(cursor) => Some(decode_cursor(&cursor)?.parse::<i64>().map_err(|_| {
                AppError::bad_input("after", "this cursor was not given by Rappel")
            })?),
            None => None,
        };
        let request_id = optional_id(request_id.as_ref(), "information request")?;
        let mut conn = connect(ctx).await?;
        let rows = outbox::list_deliveries(
            &mut conn.as_db(),
            staff.firm_id,
            status,
            request_id,
            before_id,
            limit + 1,
        )
        .await
        .map_err(AppError::from)?;
        let (rows, has_next_page) = paginate(rows, limit);
        let end_cursor = rows
            .last()
            .map(|delivery| encode_cursor(&delivery.id.to_string()));
        Ok(DeliveryConnection {
            nodes: rows.into_iter().map(Delivery).collect(),
            page_info: PageInfo {
                has_next_page,
                end_cursor,
            },
        })
    }
}
