//! The GraphQL side of the access log and metrics: names each executed operation, notes the
//! caller's kind, counts errors by `extensions.code`, and opens a span per operation. It never
//! records a variable, a query text or a token.

use std::sync::Arc;

use async_graphql::Response;
use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextRequest,
};

use super::Caller;

/// Registered first, so that it sees every error with the code [`super::ErrorCodes`] gave it.
pub struct Observer;

impl ExtensionFactory for Observer {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ObserverExtension)
    }
}

struct ObserverExtension;

#[async_graphql::async_trait::async_trait]
impl Extension for ObserverExtension {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let response = next.run(ctx).await;
        for error in &response.errors {
            let code = error
                .extensions
                .as_ref()
                .and_then(|extensions| extensions.get("code"))
                .and_then(|code| match code {
                    async_graphql::Value::String(code) => Some(code.as_str()),
                    async_graphql::Value::Enum(code) => Some(code.as_str()),
                    _ => None,
                });
            crate::metrics::count_graphql_error(code);
        }
        response
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        // The request's data (the caller) is only reachable from here on.
        if let Some(caller) = ctx.data_opt::<Caller>() {
            crate::metrics::note_caller(match caller {
                Caller::Staff(_) => "staff",
                Caller::Contact(_) => "contact",
                Caller::Anonymous => "anonymous",
            });
        }
        let name = operation_name.unwrap_or("-");
        crate::metrics::note_operation(name);
        let span = tracing::info_span!("graphql", operation = %name);
        tracing::Instrument::instrument(next.run(ctx, operation_name), span).await
    }
}
