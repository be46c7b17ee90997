//! The GraphQL side of the access log and metrics: names each executed operation, notes the
//! caller's kind, counts errors by `extensions.code`, and opens a span per operation. It never
//! records a variable, a query text or a token. Called by the schema's extension
//! ([`super::pipeline`]) around everything else, so it sees every error with the code
//! [`super::add_error_codes`] gave it.

use async_graphql::Response;
use async_graphql::extensions::ExtensionContext;

use super::Caller;

/// Counts the answer's errors by their code.
pub(super) fn count_errors(response: &Response) {
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
}

/// Notes the caller's kind and the operation's name; the span the operation runs in.
pub(super) fn operation_span(
    ctx: &ExtensionContext<'_>,
    operation_name: Option<&str>,
) -> tracing::Span {
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
    tracing::info_span!("graphql", operation = %name)
}
