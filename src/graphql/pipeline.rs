//! The schema's one extension: every rule that runs around a request, in one place and in
//! this order (outermost first):
//!
//! 1. persisted queries put a hashed document's text back ([`super::persisted`]);
//! 2. the answer's errors are counted by code ([`super::observe`]) once each has its code
//!    ([`super::add_error_codes`]);
//! 3. the document limits refuse what is too big before it is validated ([`super::limits`]);
//! 4. fresh per-request DataLoaders, driven inside the operation's task ([`super::loaders`]);
//! 5. parse errors and validation errors get their codes; every text the caller sent is checked
//!    for control characters once parsed ([`super::input_check`]);
//! 6. each operation is named in the metrics and runs in its span, then the spec's null
//!    propagation finishes its answer ([`super::nulls`]).
//!
//! They were seven extensions. async-graphql sends every field and list item through the whole
//! chain of registered extensions, one boxed future per extension even when it only passes the
//! field on; only null propagation needs that hook, so with one extension a field costs one
//! hook instead of seven.

use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextPrepareRequest,
    NextRequest, NextResolve, NextSubscribe, NextValidation, ResolveInfo,
};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{
    Request, Response, ServerError, ServerResult, ValidationResult, Value, Variables,
};
use futures_util::StreamExt as _;
use futures_util::stream::BoxStream;

use super::limits::DocumentLimits;
use super::nulls::NullPropagation;
use super::persisted::PersistedQueries;
use super::{input_check, limits, loaders, observe};
use crate::config::GraphqlConfig;

/// Registers the request rules on a schema (see the module's documentation).
pub struct Pipeline {
    persisted: PersistedQueries,
    limits: Arc<DocumentLimits>,
}

impl Pipeline {
    /// The rules with the configured limits and a fresh persisted-query cache.
    pub fn from_config(config: &GraphqlConfig) -> Self {
        Self {
            persisted: PersistedQueries::new(config.persisted_queries, config.max_document_bytes),
            limits: Arc::new(DocumentLimits::from_config(config)),
        }
    }

    /// The persisted-query cache, which the GET handler also reads.
    pub fn persisted(&self) -> &PersistedQueries {
        &self.persisted
    }
}

impl ExtensionFactory for Pipeline {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(RequestRules {
            persisted: self.persisted.clone(),
            limits: self.limits.clone(),
            nulls: NullPropagation::default(),
        })
    }
}

/// The rules of one request.
struct RequestRules {
    persisted: PersistedQueries,
    limits: Arc<DocumentLimits>,
    nulls: NullPropagation,
}

#[async_graphql::async_trait::async_trait]
impl Extension for RequestRules {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let mut response = next.run(ctx).await;
        super::add_error_codes(&mut response);
        observe::count_errors(&response);
        response
    }

    /// Subscriptions and operations sent over /graphql/ws: every answer of the stream.
    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        let finish = self.nulls.finisher();
        next.run(ctx, stream)
            .map(move |response| {
                let mut response = finish(response);
                super::add_error_codes(&mut response);
                response
            })
            .boxed()
    }

    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        mut request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        self.persisted.resolve(&mut request)?;
        let request = limits::check_prepared(request, &self.limits)?;
        let request = loaders::with_loaders(ctx, request);
        next.run(ctx, request).await
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let checked = async {
            let document = next.run(ctx, query, variables).await?;
            input_check::check_request(&document, variables)?;
            Ok(document)
        };
        checked.await.map_err(super::code_parse_error)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        next.run(ctx).await.map_err(super::code_validation_errors)
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let span = observe::operation_span(ctx, operation_name);
        let operation = async {
            let response = loaders::execute(ctx, operation_name, next).await;
            self.nulls.finish(response)
        };
        tracing::Instrument::instrument(operation, span).await
    }

    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        self.nulls.resolve(ctx, info, next).await
    }
}
