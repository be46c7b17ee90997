//! The web layer: axum routes for GraphQL (POST and GET per the GraphQL-over-HTTP spec, the
//! GraphiQL playground for browsers, WebSocket subscriptions), `/healthz`, `/readyz`,
//! `/metrics`, and the request-id, access-log, tracing and CORS layers. It only turns HTTP into
//! schema calls; no business rule lives here.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_graphql::Data;
use async_graphql::http::{ALL_WEBSOCKET_PROTOCOLS, WebSocketProtocols, WsMessage};
use axum::Router;
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use axum::extract::{ConnectInfo, WebSocketUpgrade};
use axum::extract::{Extension, Query, State};
use axum::http::{Extensions, HeaderMap, HeaderValue};
use axum::http::{HeaderName, Method, Request, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use futures_util::{SinkExt as _, StreamExt as _};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::db::Pool;
use crate::graphql::limits::{DocumentLimits, SignInBudget};
use crate::graphql::{Caller, CallerCache, RappelSchema, resolve_caller};
use crate::graphql_over_http::{self as over_http, MediaType, Refusal, Wanted};
use crate::health::Operations;
use crate::playground::DemoToken;
use crate::throttle::ClientIp;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub schema: RappelSchema,
    pub pool: Pool,
    /// Callers resolved from bearer tokens, kept for `[auth] caller_cache_seconds`.
    pub callers: CallerCache,
    pub graphiql: bool,
    pub max_batch: usize,
    pub web: WebOptions,
}

/// The settings of the HTTP side of GraphQL beyond the schema.
#[derive(Clone, Debug)]
pub struct WebOptions {
    /// The document limits, checked before a GET's operation is parsed to refuse mutations.
    pub document_limits: DocumentLimits,
    /// `[http] cors_origins`: empty for no CORS.
    pub cors_origins: Vec<String>,
    /// The demo staff token prefilled in the playground's Headers tab, once seeded.
    pub demo_token: DemoToken,
    /// The document store (`[storage]`): uploads and `/files/{id}`; `None` refuses both.
    pub storage: Option<crate::storage::Storage>,
    /// `public_base_url`, for the download URLs the API shows.
    pub public_base_url: String,
    /// The client portal's settings.
    pub portal: crate::portal::PortalOptions,
}

impl WebOptions {
    pub fn from_config(config: &crate::config::Config) -> Self {
        Self {
            document_limits: DocumentLimits::from_config(&config.graphql),
            cors_origins: config.http.cors_origins.clone(),
            demo_token: DemoToken::default(),
            storage: None,
            public_base_url: config.public_base_url.clone(),
            portal: crate::portal::PortalOptions::from_config(config),
        }
    }
}

impl Default for WebOptions {
    fn default() -> Self {
        Self::from_config(&crate::config::Config::default())
    }
}

/// How long a WebSocket has to send `connection_init` (an extension of the router; 10 s when
/// absent).
#[derive(Debug, Clone, Copy)]
pub struct WsInitTimeout(pub Duration);

/// The client's address, set by the accept loop (absent when the router is called in process).
fn client_ip(extensions: &Extensions) -> Option<IpAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip())
}

/// When every answer of a response is refused RATE_LIMITED, the longest `retryAfter`.
fn throttled_everywhere(responses: &[&async_graphql::Response]) -> Option<u64> {
    let mut longest = None;
    for response in responses {
        if response.errors.is_empty() || response.data != async_graphql::Value::Null {
            return None;
        }
        for error in &response.errors {
            let extensions = error.extensions.as_ref()?;
            if extensions.get("code") != Some(&async_graphql::Value::from("RATE_LIMITED")) {
                return None;
            }
            let seconds = match extensions.get("retryAfter") {
                Some(async_graphql::Value::Number(number)) => number.as_u64().unwrap_or(1),
                _ => 1,
            };
            longest = Some(longest.unwrap_or(0).max(seconds));
        }
    }
    longest
}

/// 429 with `Retry-After` when the whole answer was throttled.
fn too_many_requests(mut response: Response, retry_after: u64) -> Response {
    *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    response.headers_mut().insert(
        axum::http::header::RETRY_AFTER,
        HeaderValue::from(retry_after),
    );
    response
}

/// The whole HTTP surface.
pub fn router(state: AppState, max_body_bytes: usize) -> Router {
    let cors = cors_layer(&state.web.cors_origins);
    let body_limits = crate::downloads::BodyLimits {
        default: max_body_bytes,
        upload: state
            .web
            .storage
            .as_ref()
            .map(|storage| storage.limits.max_request_bytes().max(max_body_bytes)),
    };
    let router = Router::new()
        .route("/", get(|| async { Redirect::temporary("/graphql") }))
        .route("/graphql", get(graphql_get).post(graphql_post))
        .route(
            &format!("{}/{{name}}", crate::playground::ASSETS_PATH),
            get(crate::playground::asset),
        )
        .route("/graphql/ws", get(graphql_ws))
        .route("/healthz", get(healthz))
        // The client portal, /sign-in and /unsubscribe (server-rendered pages).
        .merge(crate::portal::routes())
        .route("/calendar/{file}", get(calendar_feed))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/files/{id}", get(crate::downloads::download))
        // Routes added above this line are named by their template in the access log.
        .route_layer(axum::middleware::from_fn(crate::metrics::note_route))
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(
            body_limits,
            crate::downloads::limit_body,
        ))
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
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid));
    match cors {
        Some(cors) => router.layer(cors),
        None => router,
    }
}

/// CORS for `[http] cors_origins`: preflights answered for those origins (GET and POST, the
/// `Authorization` and `Content-Type` headers); no CORS headers at all when the list is empty.
/// Origins were checked when the settings were loaded; one that is not a header value is
/// skipped.
fn cors_layer(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow_origin = if origins.iter().any(|origin| origin == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            origins
                .iter()
                .filter_map(|origin| HeaderValue::from_str(origin).ok()),
        )
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow_origin)
            .allow_methods([Method::GET, Method::POST])
            .allow_headers([
                axum::http::header::AUTHORIZATION,
                axum::http::header::CONTENT_TYPE,
                axum::http::header::ACCEPT,
            ])
            .expose_headers([REQUEST_ID, axum::http::header::RETRY_AFTER])
            .max_age(Duration::from_secs(600)),
    )
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

/// The bearer token of an `Authorization` header, if any.
pub(crate) fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// `GET /graphql`: a browser (`Accept: text/html`) gets the GraphiQL playground; a client that
/// accepts JSON gets the query of the URL executed. Mutations are refused with 405: a GET must
/// not change anything (a link or a prefetch could trigger it).
async fn graphql_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: Extensions,
    uri: Uri,
) -> Response {
    let media = match over_http::negotiate(&headers, true) {
        Wanted::Html if state.graphiql => return crate::playground::page(&state.web.demo_token),
        Wanted::Html => {
            return (StatusCode::NOT_FOUND, "GraphiQL is turned off\n").into_response();
        }
        Wanted::Nothing => return not_acceptable(),
        Wanted::Graphql(media) => media,
    };
    let mut request = match over_http::request_from_query_string(uri.query().unwrap_or_default()) {
        Ok(request) => request,
        Err(refusal) => return over_http::refusal_answer(&refusal, "BAD_USER_INPUT", media),
    };
    // A persisted query's text is needed to tell a query from a mutation.
    if let Some(persisted) = state
        .schema
        .data::<crate::graphql::persisted::PersistedQueries>()
        && let Err(error) = persisted.resolve(&mut request)
    {
        let response = async_graphql::Response::from_errors(vec![error]);
        return over_http::answer(&async_graphql::BatchResponse::Single(response), media);
    }
    let limits = &state.web.document_limits;
    let within_limits = request.query.len() <= limits.max_document_bytes
        && crate::graphql::limits::count_tokens(&request.query, limits.max_tokens)
            <= limits.max_tokens;
    // A document past the limits is refused unparsed by the schema's limits.
    if within_limits && over_http::is_state_changing(&request) {
        let refusal = Refusal {
            status: StatusCode::METHOD_NOT_ALLOWED,
            message: "mutations and subscriptions cannot be sent with GET: use POST (or \
                      /graphql/ws for subscriptions)"
                .into(),
        };
        let mut answer = over_http::refusal_answer(&refusal, "BAD_USER_INPUT", media);
        answer
            .headers_mut()
            .insert(axum::http::header::ALLOW, HeaderValue::from_static("POST"));
        return answer;
    }
    execute(
        &state,
        &headers,
        &extensions,
        async_graphql::BatchRequest::Single(request),
        media,
    )
    .await
}

/// `POST /graphql`: a JSON body (`Content-Type: application/json`) holding one request or a
/// batch (an array).
async fn graphql_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: Extensions,
    body: axum::body::Body,
) -> Response {
    let media = match over_http::negotiate(&headers, false) {
        Wanted::Graphql(media) => media,
        Wanted::Html | Wanted::Nothing => return not_acceptable(),
    };
    if crate::downloads::is_multipart(&headers) && state.web.storage.is_some() {
        return match multipart_batch(&state, &headers, body).await {
            Ok(batch) => execute(&state, &headers, &extensions, batch, media).await,
            Err(refusal) => over_http::refusal_answer(&refusal, "BAD_USER_INPUT", media),
        };
    }
    let body = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(body) => body,
        Err(_) => {
            let refusal = Refusal {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                message: "the request body is too large, or was cut off".into(),
            };
            return over_http::refusal_answer(&refusal, "BAD_USER_INPUT", media);
        }
    };
    if !over_http::is_json_body(&headers) {
        let refusal = Refusal {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            message: "send the request as JSON with Content-Type: application/json".into(),
        };
        let mut answer = over_http::refusal_answer(&refusal, "BAD_USER_INPUT", media);
        answer.headers_mut().insert(
            HeaderName::from_static("accept-post"),
            HeaderValue::from_static("application/json"),
        );
        return answer;
    }
    match over_http::batch_from_body(&body) {
        Ok(batch) => execute(&state, &headers, &extensions, batch, media).await,
        Err(refusal) => over_http::refusal_answer(&refusal, "BAD_USER_INPUT", media),
    }
}

/// A `multipart/form-data` POST (the GraphQL multipart request spec): the operations, the
/// map and the files, each file written to a temporary file as it arrives (never held in
/// memory) and cut at `[storage] max_file_mb`.
async fn multipart_batch(
    state: &AppState,
    headers: &HeaderMap,
    body: axum::body::Body,
) -> Result<async_graphql::BatchRequest, Refusal> {
    use futures_util::TryStreamExt as _;
    let Some(storage) = state.web.storage.as_ref() else {
        return Err(Refusal::bad_request("this server does not accept files"));
    };
    let limits = &storage.limits;
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let reader = body
        .into_data_stream()
        .map_err(std::io::Error::other)
        .into_async_read();
    let options = async_graphql::http::MultipartOptions::default()
        .max_file_size(usize::try_from(limits.max_file_bytes).unwrap_or(usize::MAX))
        .max_num_files(limits.max_files.saturating_add(1));
    let too_large = || Refusal {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        message: format!(
            "files: a file is larger than {} MB, the largest file accepted; nothing was kept",
            limits.max_file_bytes / (1024 * 1024)
        ),
    };
    async_graphql::http::receive_batch_body(Some(content_type), reader, options)
        .await
        .map_err(|error| match error {
            async_graphql::ParseRequestError::PayloadTooLarge => too_large(),
            async_graphql::ParseRequestError::Io(ref io)
                if io.to_string().contains("length limit exceeded") =>
            {
                too_large()
            }
            other => Refusal::bad_request(format!(
                "the multipart request is invalid: {other}; nothing was kept"
            )),
        })
}

/// 406: the client accepts none of the media types GraphQL answers in.
fn not_acceptable() -> Response {
    let refusal = Refusal {
        status: StatusCode::NOT_ACCEPTABLE,
        message: "accept application/graphql-response+json or application/json".into(),
    };
    over_http::refusal_answer(&refusal, "BAD_USER_INPUT", MediaType::Json)
}

/// Runs a request or a batch as the bearer token's caller.
async fn execute(
    state: &AppState,
    headers: &HeaderMap,
    extensions: &Extensions,
    batch: async_graphql::BatchRequest,
    media: MediaType,
) -> Response {
    let caller = match state
        .callers
        .resolve(&state.pool, bearer_token(headers))
        .await
    {
        Ok(caller) => caller,
        Err(error) => {
            tracing::error!(%error, "cannot check a bearer token");
            let refusal = Refusal {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                message: "internal error".into(),
            };
            return over_http::refusal_answer(&refusal, "INTERNAL", media);
        }
    };
    if let async_graphql::BatchRequest::Batch(operations) = &batch {
        if operations.len() > state.max_batch {
            let refusal = Refusal::bad_request(format!(
                "a batch may hold at most {} operations, this one holds {}",
                state.max_batch,
                operations.len()
            ));
            return over_http::refusal_answer(&refusal, "BAD_USER_INPUT", media);
        }
    }
    // One sign-in per batch: the operations of a batch share this budget.
    let mut batch = batch.data(caller).data(SignInBudget::per_batch()).data(
        crate::graphql::files::PublicBaseUrl(state.web.public_base_url.clone()),
    );
    if let Some(storage) = &state.web.storage {
        batch = batch.data(storage.clone());
    }
    if let Some(ip) = client_ip(extensions) {
        batch = batch.data(ClientIp(ip));
    }
    let response = state.schema.execute_batch(batch).await;
    let throttled = match &response {
        async_graphql::BatchResponse::Single(response) => throttled_everywhere(&[response]),
        async_graphql::BatchResponse::Batch(responses) => {
            throttled_everywhere(&responses.iter().collect::<Vec<_>>())
        }
    };
    let answer = over_http::answer(&response, media);
    match throttled {
        Some(retry_after) => too_many_requests(answer, retry_after),
        None => answer,
    }
}

/// The close code of graphql-transport-ws for a refused `connection_init`.
const CLOSE_FORBIDDEN: u16 = 4403;
/// The close code of graphql-transport-ws for a socket that never sent `connection_init`.
const CLOSE_INIT_TIMEOUT: u16 = 4408;

/// Subscriptions (and any operation sent over the socket): the caller is authenticated once,
/// from the connection payload's `Authorization` ("Bearer ...") or `token` field. A socket
/// that does not send `connection_init` in time is closed.
async fn graphql_ws(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: Extensions,
    upgrade: WebSocketUpgrade,
) -> Response {
    let protocol = headers
        .get(axum::http::header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            value
                .split(',')
                .find_map(|protocol| WebSocketProtocols::from_str(protocol.trim()).ok())
        });
    let Some(protocol) = protocol else {
        return (
            StatusCode::BAD_REQUEST,
            "ask for the graphql-transport-ws (or graphql-ws) subprotocol\n",
        )
            .into_response();
    };
    let ip = client_ip(&extensions);
    let init_timeout = extensions
        .get::<WsInitTimeout>()
        .map_or(Duration::from_secs(10), |timeout| timeout.0);
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| serve_ws(state, socket, protocol, ip, init_timeout))
}

/// Why a `connection_init` was refused, as the error code the client reads.
type InitRefusal = Arc<Mutex<Option<&'static str>>>;

async fn serve_ws(
    state: AppState,
    socket: WebSocket,
    protocol: WebSocketProtocols,
    ip: Option<IpAddr>,
    init_timeout: Duration,
) {
    let (mut sink, stream) = socket.split();
    let input = stream
        .take_while(|message| futures_util::future::ready(message.is_ok()))
        .filter_map(|message| {
            futures_util::future::ready(match message {
                Ok(Message::Text(text)) => Some(axum::body::Bytes::from(text)),
                Ok(Message::Binary(bytes)) => Some(bytes),
                _ => None,
            })
        });
    let initialised = Arc::new(AtomicBool::new(false));
    let refusal: InitRefusal = Arc::default();
    let mut connection_data = Data::default();
    if let Some(ip) = ip {
        connection_data.insert(ClientIp(ip));
    }
    // Download URLs of files in subscription answers.
    connection_data.insert(crate::graphql::files::PublicBaseUrl(
        state.web.public_base_url.clone(),
    ));
    // Mutations sent over the socket reach the document store as over POST (accepting a held
    // reply reads its kept copy).
    if let Some(storage) = &state.web.storage {
        connection_data.insert(storage.clone());
    }
    let pool = state.pool.clone();
    let (init_seen, init_refusal) = (initialised.clone(), refusal.clone());
    let messages = async_graphql::http::WebSocket::new(state.schema.clone(), input, protocol)
        .connection_data(connection_data)
        .on_connection_init(move |payload| async move {
            init_seen.store(true, Ordering::SeqCst);
            let refuse = |code: &'static str, message: &str| {
                if let Ok(mut refusal) = init_refusal.lock() {
                    *refusal = Some(code);
                }
                async_graphql::Error::new(message)
            };
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
                .map_err(|_| refuse("INTERNAL", "internal error"))?;
            if matches!(caller, Caller::Anonymous) {
                return Err(refuse(
                    "UNAUTHENTICATED",
                    "sign in first: send a valid token in the connection payload",
                ));
            }
            let mut data = Data::default();
            data.insert(caller);
            Ok(data)
        });
    futures_util::pin_mut!(messages);
    let deadline = tokio::time::sleep(init_timeout);
    tokio::pin!(deadline);
    loop {
        let outgoing = tokio::select! {
            message = messages.next() => match message {
                Some(message) => ws_message(message, &refusal),
                None => break,
            },
            () = &mut deadline, if !initialised.load(Ordering::SeqCst) => {
                Message::Close(Some(CloseFrame {
                    code: CLOSE_INIT_TIMEOUT,
                    reason: "Connection initialisation timeout".into(),
                }))
            }
        };
        let closing = matches!(outgoing, Message::Close(_));
        if sink.send(outgoing).await.is_err() || closing {
            break;
        }
    }
}

/// An outgoing message, with the refusal of `connection_init` carrying its code: in the
/// payload of `connection_error` (graphql-ws), or as a JSON close reason with code 4403
/// (graphql-transport-ws, whose close frames carry no payload).
fn ws_message(message: WsMessage, refusal: &InitRefusal) -> Message {
    let code = refusal.lock().ok().and_then(|refusal| *refusal);
    match (message, code) {
        (WsMessage::Text(text), Some(code)) => {
            match serde_json::from_str::<serde_json::Value>(&text) {
                Ok(mut value) if value["type"] == "connection_error" => {
                    value["payload"]["extensions"] = serde_json::json!({ "code": code });
                    Message::Text(value.to_string().into())
                }
                _ => Message::Text(text.into()),
            }
        }
        (WsMessage::Text(text), None) => Message::Text(text.into()),
        (WsMessage::Close(_, reason), Some(code)) => Message::Close(Some(CloseFrame {
            code: CLOSE_FORBIDDEN,
            reason: serde_json::json!({ "message": reason, "extensions": { "code": code } })
                .to_string()
                .into(),
        })),
        (WsMessage::Close(code, reason), None) => Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        })),
    }
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

/// The query of `GET /calendar/{token}.ics`.
#[derive(serde::Deserialize)]
struct CalendarQuery {
    /// `me`: a staff feed shows only the tasks assigned to its owner.
    assignee: Option<String>,
}

/// `GET /calendar/{token}.ics`: the iCalendar feed a secret token names (404 for an unknown,
/// rotated or revoked one, without saying which).
async fn calendar_feed(
    State(state): State<AppState>,
    axum::extract::Path(file): axum::extract::Path<String>,
    Query(query): Query<CalendarQuery>,
) -> Response {
    let not_found = || (StatusCode::NOT_FOUND, "no such calendar\n").into_response();
    let Some(token) = file.strip_suffix(".ics") else {
        return not_found();
    };
    let scope = match query.assignee.as_deref() {
        Some("me") => crate::ops::calendar::StaffScope::Mine,
        None | Some("") | Some("all") => crate::ops::calendar::StaffScope::Firm,
        Some(_) => {
            return (StatusCode::BAD_REQUEST, "assignee is `me` or `all`\n").into_response();
        }
    };
    let generation = crate::generation::GenerationSettings::default();
    match crate::ops::calendar::render_feed(
        crate::ops::Env::new(&state.pool, &generation),
        token,
        scope,
        chrono::Utc::now(),
    )
    .await
    {
        Ok(Some(text)) => (
            [
                (
                    axum::http::header::CONTENT_TYPE,
                    HeaderValue::from_static("text/calendar; charset=utf-8"),
                ),
                (
                    axum::http::header::CACHE_CONTROL,
                    HeaderValue::from_static("private, no-store"),
                ),
            ],
            text,
        )
            .into_response(),
        Ok(None) => not_found(),
        Err(error) => {
            tracing::error!(error = ?error, "cannot render a calendar feed");
            (StatusCode::SERVICE_UNAVAILABLE, "try again later\n").into_response()
        }
    }
}
