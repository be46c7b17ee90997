//! The web layer: axum routes for GraphQL (POST, GraphiQL on GET, WebSocket subscriptions),
//! `/healthz`, and the request-id and tracing layers. It only turns HTTP into schema calls;
//! no business rule lives here.

use std::time::Duration;

use async_graphql::http::GraphiQLSource;
use async_graphql_axum::{GraphQLBatchRequest, GraphQLResponse, GraphQLSubscription};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderName, Request, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::db::Pool;
use crate::graphql::RappelSchema;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub schema: RappelSchema,
    pub pool: Pool,
    pub graphiql: bool,
    pub max_batch: usize,
}

/// The whole HTTP surface.
pub fn router(state: AppState, max_body_bytes: usize) -> Router {
    let subscriptions = GraphQLSubscription::new(state.schema.clone());
    Router::new()
        .route("/", get(|| async { Redirect::temporary("/graphql") }))
        .route("/graphql", get(graphiql).post(graphql))
        .route_service("/graphql/ws", subscriptions)
        .route("/healthz", get(healthz))
        .with_state(state)
        .layer(RequestBodyLimitLayer::new(max_body_bytes))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
                let request_id = request
                    .headers()
                    .get(REQUEST_ID)
                    .and_then(|value| value.to_str().ok())
                    .unwrap_or("-");
                tracing::info_span!(
                    "http",
                    method = %request.method(),
                    path = %request.uri().path(),
                    request_id = %request_id,
                )
            }),
        )
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

async fn graphiql(State(state): State<AppState>) -> Response {
    if !state.graphiql {
        return (StatusCode::NOT_FOUND, "GraphiQL is turned off").into_response();
    }
    Html(
        GraphiQLSource::build()
            .endpoint("/graphql")
            .subscription_endpoint("/graphql/ws")
            .title("Rappel")
            .finish(),
    )
    .into_response()
}

async fn graphql(State(state): State<AppState>, request: GraphQLBatchRequest) -> Response {
    let batch = request.into_inner();
    if let async_graphql::BatchRequest::Batch(operations) = &batch {
        if operations.len() > state.max_batch {
            let error = async_graphql::ServerError::new(
                format!(
                    "a batch may hold at most {} operations, this one holds {}",
                    state.max_batch,
                    operations.len()
                ),
                None,
            );
            let mut response = async_graphql::Response::from_errors(vec![error]);
            response.errors[0].extensions = Some({
                let mut extensions = async_graphql::ErrorExtensionValues::default();
                extensions.set("code", "BAD_USER_INPUT");
                extensions
            });
            return GraphQLResponse::from(response).into_response();
        }
    }
    GraphQLResponse::from(state.schema.execute_batch(batch).await).into_response()
}

async fn healthz(State(state): State<AppState>) -> Response {
    let check = tokio::time::timeout(Duration::from_secs(5), state.pool.check_health()).await;
    match check {
        Ok(Ok(())) => (StatusCode::OK, "ok\n").into_response(),
        Ok(Err(error)) => {
            tracing::warn!(%error, "health check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n").into_response()
        }
        Err(_) => {
            tracing::warn!("health check timed out");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n").into_response()
        }
    }
}
