//! The GraphQL schema: one root with `viewer`, `firm` (staff) and `client` (contacts), the
//! mutations of each view, `requestEvents`, and the limits. Built apart from HTTP so tests can
//! call `schema.execute(request)` directly. No diesel here: reads come from `crate::db`, and every
//! write goes through one operation of `crate::ops` (see `door`).

pub mod auth;
pub mod calendar;
pub mod client;
pub mod context;
pub mod door;
pub mod files;
pub mod firm;
pub mod input_check;
pub mod limits;
pub mod loaders;
pub mod node;
mod nulls;
mod observe;
pub mod pages;
pub mod persisted;
mod pipeline;
pub mod scalars;
pub mod subscription;

use async_graphql::ServerError;
use async_graphql::{Context, Enum, ID, MergedObject, Object, Response, Schema, SimpleObject};

use crate::config::{AuthConfig, GraphqlConfig};
use crate::db::{Pool, clients, firms};
use crate::domain::Role;
use crate::domain::gid::Kind;
use crate::error::AppError;
use crate::events::EventBus;
use crate::generation::GenerationSettings;

pub use context::{Caller, CallerCache, resolve_caller};
use context::{
    ContactGuard, StaffGuard, caller, connect, found, gid, visible_to_contacts, visible_to_staff,
};

/// The schema type served at /graphql.
pub type RappelSchema = Schema<QueryRoot, MutationRoot, subscription::SubscriptionRoot>;

/// Root of every query.
pub struct QueryRoot;

/// Every mutation: sign-in, the firm view's, the client view's.
#[derive(MergedObject, Default)]
#[graphql(name = "Mutation")]
pub struct MutationRoot(
    auth::AuthMutation,
    firm::mutation::FirmMutation,
    firm::webhooks::WebhookMutation,
    client::ClientMutation,
    calendar::CalendarMutation,
);

/// Which kind of caller is signed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum ViewerKind {
    /// A member of the firm (the firm view).
    Staff,
    /// A contact of a client (the client view).
    Contact,
}

/// The signed-in caller.
#[derive(SimpleObject)]
pub struct Viewer {
    /// Whether a staff member or a contact is signed in.
    pub kind: ViewerKind,
    /// The staff member's or the contact's id.
    pub id: ID,
    /// Their display name.
    pub name: String,
    /// Their email address (the one they sign in with or receive requests at).
    pub email: String,
    /// The staff member's role; null for a contact. Hidden from contacts' introspection.
    #[graphql(visible = "visible_to_staff")]
    pub role: Option<Role>,
}

/// The entry point of every read: who is signed in, the firm view for staff, the client view
/// for contacts. Send a bearer token in the Authorization header.
#[Object(name = "Query")]
impl QueryRoot {
    /// The signed-in caller, or null when anonymous.
    async fn viewer(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Viewer>> {
        match caller(ctx) {
            Caller::Anonymous => Ok(None),
            Caller::Staff(staff) => {
                let mut conn = connect(ctx).await?;
                let user = found(
                    firms::find_user(&mut conn.as_db(), staff.firm_id, staff.user_id).await,
                    "user",
                )?;
                Ok(Some(Viewer {
                    kind: ViewerKind::Staff,
                    id: gid(Kind::StaffMember, user.id),
                    name: user.name,
                    email: user.email,
                    role: Some(user.role),
                }))
            }
            Caller::Contact(contact) => {
                let mut conn = connect(ctx).await?;
                let row = found(
                    clients::find_contact(&mut conn.as_db(), contact.firm_id, contact.contact_id)
                        .await,
                    "contact",
                )?;
                Ok(Some(Viewer {
                    kind: ViewerKind::Contact,
                    id: gid(Kind::Contact, row.id),
                    name: row.name,
                    email: row.email,
                    role: None,
                }))
            }
        }
    }

    /// The object of a global id: any `id` Rappel handed out (in either view, a webhook, a
    /// subscription or the history). Staff read their firm's objects; a contact reads its
    /// client's requests, answers and files only. Null, without an error, for another firm's
    /// id, a deleted object, one the caller may not read or a malformed id.
    async fn node(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "A global id.")] id: ID,
    ) -> async_graphql::Result<Option<node::Node>> {
        Ok(node::load(ctx, std::slice::from_ref(&id))
            .await?
            .pop()
            .flatten())
    }

    /// The objects of several global ids, in the order given, with null where `node` would
    /// answer null. At most 100 ids (BAD_USER_INPUT on `ids` above); each kind of object
    /// present is read in one statement.
    async fn nodes(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Global ids, at most 100.")] ids: Vec<ID>,
    ) -> async_graphql::Result<Vec<Option<node::Node>>> {
        node::check_count(&ids)?;
        node::load(ctx, &ids).await
    }

    /// The firm view (staff only). Null, with an error, for anyone else, or when an error
    /// inside it nulls a non-null field.
    #[graphql(guard = "StaffGuard", visible = "visible_to_staff")]
    async fn firm(&self) -> Option<firm::query::FirmView> {
        Some(firm::query::FirmView)
    }

    /// The client view (a client's contacts only). Null, with an error, for anyone else, or
    /// when an error inside it nulls a non-null field.
    #[graphql(guard = "ContactGuard", visible = "visible_to_contacts")]
    async fn client(&self) -> Option<client::ClientView> {
        Some(client::ClientView)
    }
}

/// What the schema's resolvers reach besides the request's caller.
pub struct SchemaData {
    pub pool: Pool,
    pub events: EventBus,
    pub auth: AuthConfig,
    pub generation: GenerationSettings,
}

/// Builds the schema with the configured limits.
pub fn build_schema(data: Option<SchemaData>, config: &GraphqlConfig) -> RappelSchema {
    build_schema_with_delivery(data, None, config)
}

/// Builds the schema with the delivery controls too (the webhook URL rule, the worker's
/// waker); without them webhook URLs must be https to public addresses.
pub fn build_schema_with_delivery(
    data: Option<SchemaData>,
    delivery: Option<crate::delivery::DeliveryControl>,
    config: &GraphqlConfig,
) -> RappelSchema {
    let pipeline = pipeline::Pipeline::from_config(config);
    let persisted = pipeline.persisted().clone();
    let mut builder = Schema::build(
        QueryRoot,
        MutationRoot::default(),
        subscription::SubscriptionRoot,
    )
    .limit_depth(config.max_depth)
    .limit_complexity(config.max_complexity)
    .extension(pipeline)
    .register_output_type::<pages::PageArgumentDocs>()
    .data(pages::PageSizes::from_config(config))
    .data(persisted);
    if !config.introspection {
        builder = builder.disable_introspection();
    }
    if !config.suggestions {
        builder = builder.disable_suggestions();
    }
    if let Some(data) = data {
        builder = builder
            .data(data.pool)
            .data(data.events)
            .data(crate::throttle::SignInGate::from_config(&data.auth))
            .data(data.auth)
            .data(data.generation);
    }
    if let Some(delivery) = delivery {
        builder = builder.data(delivery);
    }
    builder.finish()
}

/// The SDL that `rappel export-schema` prints and `schema.graphql` holds.
pub fn schema_sdl() -> String {
    build_schema(None, &GraphqlConfig::default())
        .sdl_with_options(async_graphql::SDLExportOptions::new().include_specified_by())
}

/// Gives every error an `extensions.code`: errors raised by Rappel carry theirs; a document
/// that does not parse is GRAPHQL_PARSE_FAILED (with a one-line message, see
/// [`code_parse_error`]), one that does not validate against the schema
/// GRAPHQL_VALIDATION_FAILED (see [`code_validation_errors`]); the others come from limits or
/// argument values, so they are the caller's (BAD_USER_INPUT). Anything else is answered
/// INTERNAL with its text hidden. Run on every answer by the schema's extension
/// ([`pipeline`]), subscriptions' and WebSocket operations' included.
fn code_parse_error(mut error: ServerError) -> ServerError {
    if !has_code(&error) {
        error.message = one_line_syntax_error(&error);
        set_code(&mut error, "GRAPHQL_PARSE_FAILED");
    }
    error
}

/// Codes the errors of a document that does not validate: GRAPHQL_VALIDATION_FAILED, but a
/// wrong argument value, and the depth and complexity limits naming their setting, are
/// BAD_USER_INPUT.
fn code_validation_errors(mut errors: Vec<ServerError>) -> Vec<ServerError> {
    for error in errors.iter_mut().filter(|error| !has_code(error)) {
        let limit = match error.message.as_str() {
            "Query is nested too deep." => Some("max_depth"),
            "Query is too complex." => Some("max_complexity"),
            _ => None,
        };
        let bad_input = AppError::bad_input("query", "").code();
        match limit {
            Some(limit) => {
                set_code(error, bad_input);
                if let Some(extensions) = error.extensions.as_mut() {
                    extensions.set("field", "query");
                    extensions.set("limit", limit);
                }
            }
            // The document is fine; a value in it (or in the variables) is not.
            None if error.message.starts_with("Invalid value for argument") => {
                set_code(error, bad_input);
            }
            None => set_code(error, "GRAPHQL_VALIDATION_FAILED"),
        }
    }
    errors
}

fn has_code(error: &ServerError) -> bool {
    error
        .extensions
        .as_ref()
        .is_some_and(|extensions| extensions.get("code").is_some())
}

fn set_code(error: &mut ServerError, code: &str) {
    error
        .extensions
        .get_or_insert_with(Default::default)
        .set("code", code);
}

/// The parser's multi-line report (` --> 1:2 | ... ^--- | = expected selection`) as one line:
/// "Syntax error at line 1, column 2: expected selection".
fn one_line_syntax_error(error: &ServerError) -> String {
    let reason = error
        .message
        .lines()
        .rev()
        .find_map(|line| line.trim_start().strip_prefix("= "))
        .unwrap_or_else(|| error.message.lines().last().unwrap_or_default().trim());
    match error.locations.first() {
        Some(at) => format!(
            "Syntax error at line {}, column {}: {reason}",
            at.line, at.column
        ),
        None => format!("Syntax error: {reason}"),
    }
}

fn add_error_codes(response: &mut Response) {
    for error in &mut response.errors {
        let has_code = error
            .extensions
            .as_ref()
            .is_some_and(|extensions| extensions.get("code").is_some());
        if !has_code {
            let caller_input = error.message.starts_with("Failed to parse")
                || error.message.starts_with("Invalid value for argument");
            let code = if error.path.is_empty() || caller_input {
                AppError::bad_input("query", "").code()
            } else {
                // A resolver error that did not come through AppError: never show its text.
                tracing::error!(message = %error.message, "uncoded resolver error");
                error.message = "internal error".into();
                AppError::Internal(String::new()).code()
            };
            error
                .extensions
                .get_or_insert_with(Default::default)
                .set("code", code);
        }
    }
}
