//! The client view: what a client's contact reads and answers. Its types hold only what a
//! client may read (the request's text, due date, status, creation date and answers), so no
//! firm-only field can leak through it; its fields are hidden from staff introspection.

use async_graphql::{Context, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};

use crate::db::{clients, firms, work};
use crate::domain::RequestStatus;
use crate::error::AppError;
use crate::graphql::context::{
    ContactGuard, connect, contact, found, parse_id, visible_to_contacts,
};
use crate::graphql::door::{actor, env};
use crate::graphql::firm::types::utc;
use crate::graphql::scalars::Date;
use crate::ops;

/// The client view, for a client's contacts only.
pub struct ClientView;

/// A request as its client sees it: nothing else.
pub struct ClientRequest(pub work::InformationRequest);

/// An answer to a request, as the client sees it.
#[derive(SimpleObject)]
pub struct ClientAnswer {
    pub id: ID,
    pub message: Option<String>,
    pub nothing_to_report: bool,
    pub created_at: DateTime<Utc>,
}

#[Object]
impl ClientRequest {
    async fn id(&self) -> ID {
        self.0.id.into()
    }
    /// What the firm asks for.
    async fn text(&self) -> &str {
        &self.0.text
    }
    async fn due_date(&self) -> Date {
        self.0.due_date.into()
    }
    async fn status(&self) -> RequestStatus {
        self.0.status
    }
    async fn created_on(&self) -> Date {
        self.0.created_on.into()
    }
    async fn answers(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ClientAnswer>> {
        let mut conn = connect(ctx).await?;
        let rows = work::list_answers(&mut conn.as_db(), self.0.firm_id, self.0.id)
            .await
            .map_err(AppError::from)?;
        Ok(rows
            .into_iter()
            .map(|answer| ClientAnswer {
                id: answer.id.into(),
                message: answer.message,
                nothing_to_report: answer.nothing_to_report,
                created_at: utc(answer.created_at),
            })
            .collect())
    }
}

#[Object(guard = "ContactGuard", visible = "visible_to_contacts")]
impl ClientView {
    /// The name of the contact's company.
    async fn client_name(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        let contact = contact(ctx)?;
        let mut conn = connect(ctx).await?;
        Ok(found(
            clients::find_client(&mut conn.as_db(), contact.firm_id, contact.client_id).await,
            "client",
        )?
        .name)
    }

    /// The firm asking.
    async fn firm_name(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        let contact = contact(ctx)?;
        let mut conn = connect(ctx).await?;
        Ok(found(
            firms::find_firm(&mut conn.as_db(), contact.firm_id).await,
            "firm",
        )?
        .name)
    }

    /// The client's requests by due date (withdrawn ones are not shown).
    async fn requests(
        &self,
        ctx: &Context<'_>,
        status: Option<RequestStatus>,
    ) -> async_graphql::Result<Vec<ClientRequest>> {
        let contact = contact(ctx)?;
        let mut conn = connect(ctx).await?;
        let rows = work::list_client_requests(
            &mut conn.as_db(),
            contact.firm_id,
            contact.client_id,
            status,
        )
        .await
        .map_err(AppError::from)?;
        Ok(rows.into_iter().map(ClientRequest).collect())
    }

    async fn request(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<ClientRequest> {
        let contact = contact(ctx)?;
        let id = parse_id(&id, "request")?;
        let mut conn = connect(ctx).await?;
        Ok(ClientRequest(found(
            work::find_client_request(&mut conn.as_db(), contact.firm_id, contact.client_id, id)
                .await,
            "request",
        )?))
    }
}

/// Mutations of the client view.
#[derive(Default)]
pub struct ClientMutation;

#[Object(guard = "ContactGuard", visible = "visible_to_contacts")]
impl ClientMutation {
    /// Answers a request: a message, or `nothingToReport` for "nothing this period". The
    /// request becomes ANSWERED and its reminders stop.
    #[graphql(visible = "visible_to_contacts")]
    async fn answer_request(
        &self,
        ctx: &Context<'_>,
        id: ID,
        message: Option<String>,
        #[graphql(default = false)] nothing_to_report: bool,
    ) -> async_graphql::Result<ClientRequest> {
        let actor = actor(ctx)?;
        let id = parse_id(&id, "request")?;
        let input = ops::answers::AnswerInput {
            message,
            nothing_to_report,
        };
        Ok(ClientRequest(
            ops::answers::answer_request(env(ctx)?, &actor, id, &input).await?,
        ))
    }
}
