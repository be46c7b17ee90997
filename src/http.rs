//! The web layer: axum routes for GraphQL (POST, GraphiQL on GET, WebSocket subscriptions),
//! `/healthz`, `/readyz`, `/metrics`, and the request-id, access-log and tracing layers. It only turns HTTP into schema calls;
//! no business rule lives here.

use std::time::Duration;

use async_graphql::Data;
use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql::http::GraphiQLSource;
use async_graphql_axum::{GraphQLBatchRequest, GraphQLProtocol, GraphQLResponse, GraphQLWebSocket};
use axum::Router;
use axum::extract::WebSocketUpgrade;
use axum::extract::{Extension, Form, Query, State};
use axum::http::HeaderMap;
use axum::http::{HeaderName, Request, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::db::Pool;
use crate::graphql::{Caller, RappelSchema, resolve_caller};
use crate::health::Operations;

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
    Router::new()
        .route("/", get(|| async { Redirect::temporary("/graphql") }))
        .route("/graphql", get(graphiql).post(graphql))
        .route("/graphql/ws", get(graphql_ws))
        .route("/healthz", get(healthz))
        .route("/unsubscribe", get(unsubscribe_page).post(unsubscribe_now))
        .route("/sign-in", get(sign_in_page).post(sign_in_now))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        // Routes added above this line are named by their template in the access log.
        .route_layer(axum::middleware::from_fn(crate::metrics::note_route))
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
        .layer(axum::middleware::from_fn(crate::metrics::access_log))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

/// `GET /readyz`: 200 when the database, its migrations and this process's background parts
/// are fine, else 503; the JSON answer lists every check and what failed.
async fn readyz(
    State(state): State<AppState>,
    operations: Option<Extension<Operations>>,
) -> Response {
    let checks = crate::health::readiness(&state.pool, operations.as_ref().map(|ops| &ops.0)).await;
    let failed: Vec<&str> = checks
        .iter()
        .filter(|check| !check.ok)
        .map(|check| check.name)
        .collect();
    let status = if failed.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::json!({
        "status": if failed.is_empty() { "ready" } else { "not ready" },
        "failed": failed,
        "checks": checks,
    });
    (status, axum::Json(body)).into_response()
}

/// `GET /metrics` on the main listener: the Prometheus text format, behind the bearer token
/// of `[metrics] bearer_token` when one is set. Absent when metrics are off or served on
/// their own address.
async fn metrics(
    State(state): State<AppState>,
    operations: Option<Extension<Operations>>,
    headers: HeaderMap,
) -> Response {
    let operations = operations.map(|ops| ops.0).unwrap_or_default();
    if !operations.metrics_on_main_listener {
        return (StatusCode::NOT_FOUND, "metrics are not served here\n").into_response();
    }
    metrics_answer(&state.pool, &operations, &headers).await
}

async fn metrics_answer(pool: &Pool, operations: &Operations, headers: &HeaderMap) -> Response {
    if !operations.may_read_metrics(bearer_token(headers)) {
        return (
            StatusCode::UNAUTHORIZED,
            [(axum::http::header::WWW_AUTHENTICATE, "Bearer")],
            "a bearer token is required\n",
        )
            .into_response();
    }
    if crate::metrics::install().is_none() {
        return (StatusCode::SERVICE_UNAVAILABLE, "metrics are unavailable\n").into_response();
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::metrics::render(pool).await,
    )
        .into_response()
}

/// Serves `/metrics` alone on `[metrics] listen` (a private port for the scraper), until the
/// returned task is aborted.
pub async fn spawn_metrics_listener(
    address: std::net::SocketAddr,
    pool: Pool,
    operations: Operations,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(address).await?;
    tracing::info!(address = %listener.local_addr()?, "metrics listening");
    let app = Router::new().route(
        "/metrics",
        get(move |headers: HeaderMap| {
            let (pool, operations) = (pool.clone(), operations.clone());
            async move { metrics_answer(&pool, &operations, &headers).await }
        }),
    );
    Ok(tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(%error, "the metrics listener stopped");
        }
    }))
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

/// The bearer token of an `Authorization` header, if any.
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// An error response for the whole request, with a code.
fn request_error(message: &str, code: &str) -> Response {
    let mut error = async_graphql::ServerError::new(message, None);
    let mut extensions = async_graphql::ErrorExtensionValues::default();
    extensions.set("code", code);
    error.extensions = Some(extensions);
    GraphQLResponse::from(async_graphql::Response::from_errors(vec![error])).into_response()
}

async fn graphql(
    State(state): State<AppState>,
    headers: HeaderMap,
    request: GraphQLBatchRequest,
) -> Response {
    let caller = match resolve_caller(&state.pool, bearer_token(&headers)).await {
        Ok(caller) => caller,
        Err(error) => {
            tracing::error!(%error, "cannot check a bearer token");
            return request_error("internal error", "INTERNAL");
        }
    };
    let batch = request.into_inner().data(caller);
    if let async_graphql::BatchRequest::Batch(operations) = &batch {
        if operations.len() > state.max_batch {
            let message = format!(
                "a batch may hold at most {} operations, this one holds {}",
                state.max_batch,
                operations.len()
            );
            return request_error(&message, "BAD_USER_INPUT");
        }
    }
    GraphQLResponse::from(state.schema.execute_batch(batch).await).into_response()
}

/// Subscriptions: the caller is authenticated once, from the connection payload's
/// `Authorization` ("Bearer ...") or `token` field.
async fn graphql_ws(
    State(state): State<AppState>,
    protocol: GraphQLProtocol,
    upgrade: WebSocketUpgrade,
) -> Response {
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |stream| {
            let pool = state.pool.clone();
            GraphQLWebSocket::new(stream, state.schema.clone(), protocol)
                .on_connection_init(move |payload| async move {
                    let token = payload
                        .get("Authorization")
                        .or_else(|| payload.get("authorization"))
                        .and_then(|value| value.as_str())
                        .map(|value| {
                            value
                                .trim_start_matches("Bearer ")
                                .trim_start_matches("bearer ")
                        })
                        .or_else(|| payload.get("token").and_then(|value| value.as_str()))
                        .map(str::to_string);
                    let caller = resolve_caller(&pool, token.as_deref())
                        .await
                        .map_err(|_| async_graphql::Error::new("internal error"))?;
                    if matches!(caller, Caller::Anonymous) {
                        return Err(async_graphql::Error::new(
                            "sign in first: send a valid token in the connection payload",
                        ));
                    }
                    let mut data = Data::default();
                    data.insert(caller);
                    Ok(data)
                })
                .serve()
        })
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

/// The `token` of an emailed unsubscribe link.
#[derive(serde::Deserialize)]
struct UnsubscribeLink {
    token: Option<String>,
}

/// `GET /unsubscribe?token=...`: a confirmation page with a button (a link opened by a mail
/// scanner must not unsubscribe anyone).
async fn unsubscribe_page(
    State(state): State<AppState>,
    Query(link): Query<UnsubscribeLink>,
) -> Response {
    let token = link.token.unwrap_or_default();
    match crate::delivery::unsubscribe_link_is_valid(&state.pool, &token, chrono::Utc::now()).await
    {
        Ok(true) => Html(crate::delivery::unsubscribe_confirmation_page(&token)).into_response(),
        Ok(false) => (
            StatusCode::NOT_FOUND,
            Html(crate::delivery::unsubscribe_result_page(false)),
        )
            .into_response(),
        Err(error) => {
            tracing::error!(%error, "cannot check an unsubscribe link");
            (StatusCode::SERVICE_UNAVAILABLE, "try again later\n").into_response()
        }
    }
}

/// `POST /unsubscribe?token=...`: RFC 8058 one-click unsubscribe (the body,
/// `List-Unsubscribe=One-Click`, says nothing more than the URL).
async fn unsubscribe_now(
    State(state): State<AppState>,
    Query(link): Query<UnsubscribeLink>,
) -> Response {
    let token = link.token.unwrap_or_default();
    match crate::delivery::unsubscribe(&state.pool, &token, chrono::Utc::now()).await {
        Ok(true) => Html(crate::delivery::unsubscribe_result_page(true)).into_response(),
        Ok(false) => (
            StatusCode::NOT_FOUND,
            Html(crate::delivery::unsubscribe_result_page(false)),
        )
            .into_response(),
        Err(error) => {
            tracing::error!(%error, "cannot apply an unsubscribe link");
            (StatusCode::SERVICE_UNAVAILABLE, "try again later\n").into_response()
        }
    }
}

/// The `token` of an emailed sign-in link.
#[derive(serde::Deserialize)]
struct SignInLink {
    token: Option<String>,
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"fr\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <meta name=\"viewport\" content=\"width=device-width\"></head>\
         <body style=\"font-family: sans-serif; max-width: 40em; margin: 2em auto\">{body}</body></html>",
        title = crate::delivery::email::escape_html(title),
    )
}

/// `GET /sign-in?token=...`, the link of a request email: a page with a button. Opening the
/// link spends nothing (mail scanners open links); the button does.
async fn sign_in_page(Query(link): Query<SignInLink>) -> Response {
    let token = crate::delivery::email::escape_html(link.token.as_deref().unwrap_or_default());
    Html(page(
        "Rappel",
        &format!(
            "<h1>Vos demandes / Your requests</h1>\
             <form method=\"post\" action=\"/sign-in\">\
             <input type=\"hidden\" name=\"token\" value=\"{token}\">\
             <button type=\"submit\">Voir mes demandes / See my requests</button></form>"
        ),
    ))
    .into_response()
}

/// `POST /sign-in`: spends the single-use link through `redeemSignInLink`, then shows the
/// client view's requests and the contact token for the client view's API. Only what the
/// client view may show.
async fn sign_in_now(State(state): State<AppState>, Form(link): Form<SignInLink>) -> Response {
    let redeem = async_graphql::Request::new(
        "mutation($token: String!) { redeemSignInLink(token: $token) { token } }",
    )
    .variables(async_graphql::Variables::from_json(serde_json::json!({
        "token": link.token.unwrap_or_default()
    })))
    .data(Caller::Anonymous);
    let response = state.schema.execute(redeem).await;
    let token = response.data.into_json().ok().and_then(|data| {
        data["redeemSignInLink"]["token"]
            .as_str()
            .map(str::to_string)
    });
    let Some(token) = token else {
        return (
            StatusCode::UNAUTHORIZED,
            Html(page(
                "Rappel",
                "<h1>Lien expiré / Link expired</h1><p>Ce lien a déjà servi ou a expiré. \
                 This link was already used or has expired.</p>",
            )),
        )
            .into_response();
    };
    let caller = match resolve_caller(&state.pool, Some(&token)).await {
        Ok(caller) => caller,
        Err(error) => {
            tracing::error!(%error, "cannot resolve a redeemed sign-in token");
            return (StatusCode::SERVICE_UNAVAILABLE, "try again later\n").into_response();
        }
    };
    let view = state
        .schema
        .execute(
            async_graphql::Request::new(
                "{ client { firmName clientName requests { text dueDate status } } }",
            )
            .data(caller),
        )
        .await;
    let data = view.data.into_json().unwrap_or_default();
    let escape = crate::delivery::email::escape_html;
    let text = |value: &serde_json::Value| escape(value.as_str().unwrap_or_default());
    let rows: String = data["client"]["requests"]
        .as_array()
        .map(|requests| {
            requests
                .iter()
                .map(|request| {
                    format!(
                        "<li><strong>{}</strong> ({}, {})</li>",
                        text(&request["text"]),
                        text(&request["dueDate"]),
                        text(&request["status"])
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    Html(page(
        "Rappel",
        &format!(
            "<h1>{} - {}</h1><ul>{rows}</ul>\
             <p>Jeton d'accès au service (gardez-le secret) / API access token (keep it secret):\
             <br><code>{}</code></p>",
            text(&data["client"]["firmName"]),
            text(&data["client"]["clientName"]),
            escape(&token),
        ),
    ))
    .into_response()
}
