//! The client view: what a client's contact reads and answers. Its types hold only what a
//! client may read (the request's text, due date, status, creation date and answers), so no
//! firm-only field can leak through it; its fields are hidden from staff introspection.

use async_graphql::{ComplexObject, Context, ID, InputObject, Object, SimpleObject, Upload};
use chrono::NaiveDate;
use futures_util::FutureExt as _;

use crate::db::work;
use crate::domain::RequestStatus;
use crate::domain::gid::Kind;
use crate::error::AppError;
use crate::graphql::context::{
    Caller, ContactGuard, caller, connect, contact, found, gid, parse_client_id,
    visible_to_contacts,
};
use crate::graphql::door::{actor, env};
use crate::graphql::firm::types::utc;
use crate::graphql::loaders::{
    AnswerPage, ClientKey, FirmKey, client_loader, firm_loader, list, one,
};
use crate::graphql::pages::{Page, PageArgs, TotalCount};
use crate::graphql::scalars::Date;
use crate::ops;

/// The client view, for a client's contacts only.
pub struct ClientView;

/// A request as its client sees it: nothing else.
pub struct ClientRequest(pub work::InformationRequest);

/// An answer to a request, as the client sees it.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct ClientAnswer {
    /// The answer's id.
    pub id: ID,
    /// The contact's message; null when none was written.
    pub message: Option<String>,
    /// True when the contact answered that there is nothing this period.
    pub nothing_to_report: bool,
    /// When the answer was given.
    pub created_at: crate::graphql::scalars::DateTime,
}

#[ComplexObject]
impl ClientAnswer {
    /// The documents deposited with this answer, in the order they were sent.
    async fn files(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<crate::graphql::files::ClientAnswerFile>> {
        let id = parse_client_id(&self.id, Kind::RequestAnswer)?;
        Ok(crate::graphql::files::files_of_answer(ctx, id)
            .await?
            .into_iter()
            .map(|row| crate::graphql::files::client_file(ctx, row))
            .collect())
    }
}

/// A request of the firm to the client: what to send and by when.
#[Object]
impl ClientRequest {
    /// The request's id.
    async fn id(&self) -> ID {
        gid(Kind::InformationRequest, self.0.id)
    }
    /// What the firm asks for.
    async fn text(&self) -> &str {
        &self.0.text
    }
    /// The date the firm needs the answer by.
    async fn due_date(&self) -> Date {
        self.0.due_date.into()
    }
    /// Whether it waits for an answer, was answered or was closed.
    async fn status(&self) -> RequestStatus {
        self.0.status
    }
    /// The day the request was created and first sent.
    async fn created_on(&self) -> Date {
        self.0.created_on.into()
    }
    /// The client's answers to this request, oldest first, paginated.
    async fn answers(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Page<i64, ClientAnswer>> {
        let page = PageArgs {
            first,
            after,
            last,
            before,
        }
        .read(ctx)?;
        let key = AnswerPage::new(self.0.id, &page.keyset);
        // Contacts read through their client's loader; staff (a `requestEvents` subscriber
        // of the firm) through their firm's.
        let rows = match caller(ctx) {
            Caller::Staff(_) => list(firm_loader(ctx)?, key).await?,
            _ => list(client_loader(ctx)?, key).await?,
        };
        let total = TotalCount::answers_of(self.0.id);
        Ok(page.connection(
            rows,
            total,
            |row| row.id,
            |answer| ClientAnswer {
                id: gid(Kind::RequestAnswer, answer.id),
                message: answer.message,
                nothing_to_report: answer.nothing_to_report,
                created_at: utc(answer.created_at),
            },
        ))
    }
}

/// What a client's contact may read: its requests from the firm and their answers.
#[Object(guard = "ContactGuard", visible = "visible_to_contacts")]
impl ClientView {
    /// The name of the contact's company.
    async fn client_name(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        let client_id = contact(ctx)?.client_id;
        Ok(one(client_loader(ctx)?, ClientKey(client_id), "client")
            .await?
            .name)
    }

    /// The firm asking.
    async fn firm_name(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        let firm_id = contact(ctx)?.firm_id;
        Ok(one(client_loader(ctx)?, FirmKey(firm_id), "firm")
            .await?
            .name)
    }

    /// The client's requests by due date then id (withdrawn ones are not shown), paginated.
    async fn requests(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only requests in this status; null: all but withdrawn ones.")]
        status: Option<RequestStatus>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Page<(NaiveDate, i64), ClientRequest>> {
        let contact = contact(ctx)?;
        let (firm_id, client_id) = (contact.firm_id, contact.client_id);
        let page = PageArgs {
            first,
            after,
            last,
            before,
        }
        .read(ctx)?;
        let mut conn = connect(ctx).await?;
        let rows =
            work::list_client_requests(&mut conn.as_db(), firm_id, client_id, status, &page.keyset)
                .await
                .map_err(AppError::from)?;
        let total = TotalCount::new(move |pool| {
            async move {
                work::count_client_requests(
                    &mut pool.get().await?.as_db(),
                    firm_id,
                    client_id,
                    status,
                )
                .await
            }
            .boxed()
        });
        Ok(page.connection(rows, total, |row| (row.due_date, row.id), ClientRequest))
    }

    /// One request of the client, by id; NOT_FOUND for another client's or a missing one.
    async fn request(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The request's id.")] id: ID,
    ) -> async_graphql::Result<ClientRequest> {
        let contact = contact(ctx)?;
        let id = parse_client_id(&id, Kind::InformationRequest)?;
        let mut conn = connect(ctx).await?;
        Ok(ClientRequest(found(
            work::find_client_request(&mut conn.as_db(), contact.firm_id, contact.client_id, id)
                .await,
            "request",
        )?))
    }
}

/// A contact's answer to a request.
#[derive(InputObject)]
#[graphql(visible = "visible_to_contacts")]
pub struct AnswerRequestInput {
    /// The id of a request of the contact's client (NOT_FOUND for any other).
    pub id: ID,
    /// What the contact has to say; null with nothingToReport.
    pub message: Option<String>,
    /// True to answer that there is nothing to send this period.
    #[graphql(default = false)]
    pub nothing_to_report: bool,
    /// Documents to deposit with the answer, sent as a multipart request (the GraphQL multipart
    /// request spec, variables path `variables.input.files.N`): at most 20 files of 25 MB by
    /// default; PDF, images, office documents, CSV, text or ZIP, checked from their bytes.
    pub files: Option<Vec<Upload>>,
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
        #[graphql(desc = "The request and the answer.")] input: AnswerRequestInput,
    ) -> async_graphql::Result<ClientRequest> {
        let AnswerRequestInput {
            id,
            message,
            nothing_to_report,
            files,
        } = input;
        let actor = actor(ctx)?;
        let id = parse_client_id(&id, Kind::InformationRequest)?;
        let env = env(ctx)?;
        let files =
            crate::graphql::files::stage_uploads(ctx, env, &actor, id, files.unwrap_or_default())
                .await?;
        let input = ops::answers::AnswerInput {
            message,
            nothing_to_report,
            files,
        };
        Ok(ClientRequest(
            ops::answers::answer_request(env, &actor, id, &input).await?,
        ))
    }
}
