//! The client portal's HTTP door: server-rendered pages (minijinja templates, one escaper)
//! for contacts, opened from the link of a request email. `/sign-in` shows a button (mail
//! scanners open links) that starts a session (an HttpOnly cookie); `/portal` lists the
//! client's requests, `/portal/requests/{id}` answers one; `/portal/new-link` emails a new
//! link; `/unsubscribe` turns emails off and back on. Every page answers with `no-store` and
//! a strict CSP (no inline script), and every form POST checks its Origin, and the session's
//! CSRF token when there is a session.
//!
//! Never here: a rule (they are `crate::ops::portal`'s and `crate::ops::answers`'), a write
//! through `crate::db`, an API token on a page, or any firm-only field (task, mission,
//! service title) in what a page shows.

mod pages;

use std::net::{IpAddr, SocketAddr};

use axum::Router;
use axum::extract::{ConnectInfo, Form, Multipart, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::Utc;

use crate::config::{Config, SmtpConfig};
use crate::domain::Language;
use crate::generation::GenerationSettings;
use crate::http::AppState;
use crate::ops::portal::{self as rules, SignedIn};
use crate::ops::{Actor, Env, OpError};

/// The portal session's cookie.
const COOKIE: &str = "rappel_portal";

/// The portal's settings, from `[portal]`, `public_base_url` and `[smtp]`.
#[derive(Debug, Clone)]
pub struct PortalOptions {
    pub link_days: u32,
    pub session_hours: u32,
    /// `public_base_url` without its trailing slash.
    pub public_base_url: String,
    /// For the new-link emails.
    pub smtp: SmtpConfig,
}

impl PortalOptions {
    pub fn from_config(config: &Config) -> Self {
        Self {
            link_days: config.portal.link_days,
            session_hours: config.portal.session_hours,
            public_base_url: config.public_base_url.trim_end_matches('/').to_string(),
            smtp: config.smtp.clone(),
        }
    }

    /// Whether the cookie is `Secure` (the portal is served over https).
    fn secure(&self) -> bool {
        self.public_base_url.starts_with("https://")
    }
}

/// The portal's routes, `/sign-in` and `/unsubscribe`, with their security headers.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/sign-in", get(sign_in_page).post(sign_in_now))
        .route("/portal", get(home))
        .route("/portal/requests/{id}", get(request_page))
        // The body's size is bounded by the router's upload limit (`downloads::limit_body`),
        // not by axum's 2 MB default for multipart forms.
        .route(
            "/portal/requests/{id}/answer",
            post(answer).layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route("/portal/sign-out", post(sign_out))
        .route("/portal/new-link", get(new_link_page).post(new_link_now))
        .route("/portal/assets/{name}", get(asset))
        .route("/unsubscribe", get(unsubscribe_page).post(unsubscribe_now))
        .route("/unsubscribe/undo", post(resubscribe_now))
        .layer(axum::middleware::from_fn(security_headers))
}

/// What every portal answer carries: not cached, no framing, no referrer, a strict CSP
/// (scripts and styles from Rappel itself only, forms posting to Rappel only).
async fn security_headers(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// The portal's script and stylesheet, compiled into the binary.
async fn asset(Path(name): Path<String>) -> Response {
    let (body, media) = match name.as_str() {
        "portal.js" => (
            include_str!("../../assets/portal/portal.js"),
            "text/javascript; charset=utf-8",
        ),
        "portal.css" => (
            include_str!("../../assets/portal/portal.css"),
            "text/css; charset=utf-8",
        ),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    ([(header::CONTENT_TYPE, media)], body).into_response()
}

fn env(state: &AppState) -> Env<'_> {
    static GENERATION: std::sync::LazyLock<GenerationSettings> =
        std::sync::LazyLock::new(GenerationSettings::default);
    Env {
        pool: &state.pool,
        generation: state
            .schema
            .data::<GenerationSettings>()
            .unwrap_or(&GENERATION),
        events: state.schema.data::<crate::events::EventBus>(),
        storage: state.web.storage.as_ref(),
    }
}

fn options(state: &AppState) -> &PortalOptions {
    &state.web.portal
}

/// The language of a visitor without a session: English when the browser prefers it.
fn browser_language(headers: &HeaderMap) -> Language {
    let preferred = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .trim_start()
        .to_ascii_lowercase();
    if preferred.starts_with("en") {
        Language::English
    } else {
        Language::French
    }
}

/// The session cookie's value, if any.
fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_string())
        .filter(|value| !value.is_empty())
}

/// Whether a form POST comes from the portal's own pages: its `Origin` is
/// `public_base_url`'s, or this request's own host's. Under `Referrer-Policy: no-referrer`
/// browsers send `Origin: null` even for a same-origin form, so a `null` (or missing) Origin
/// is accepted only with `Sec-Fetch-Site: same-origin`, which browsers set and pages of
/// another site cannot. Anything else is refused.
fn same_origin(headers: &HeaderMap, options: &PortalOptions) -> bool {
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|value| value.to_str().ok())
        .filter(|origin| *origin != "null");
    let Some(origin) = origin else {
        return headers
            .get("sec-fetch-site")
            .is_some_and(|site| site.as_bytes() == b"same-origin");
    };
    if origin == options.public_base_url {
        return true;
    }
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    !host.is_empty() && (origin == format!("http://{host}") || origin == format!("https://{host}"))
}

/// 403: a form posted from elsewhere, or without its CSRF token.
fn cross_site(language: Language) -> Response {
    let (heading, text) = match language {
        Language::English => (
            "Request refused",
            "This form did not come from this site, or its page is too old. Go back, reload the page and try again.",
        ),
        Language::French => (
            "Demande refusée",
            "Ce formulaire ne vient pas de ce site, ou sa page est trop ancienne. Revenez en arrière, rechargez la page et réessayez.",
        ),
    };
    (
        StatusCode::FORBIDDEN,
        Html(pages::message(language, heading, &[text])),
    )
        .into_response()
}

fn unavailable(error: &OpError) -> Response {
    tracing::error!(error = ?error, "a portal page failed");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Html(pages::message(
            Language::French,
            "Service indisponible / Service unavailable",
            &["Réessayez dans un instant. Try again in a moment."],
        )),
    )
        .into_response()
}

fn client_ip(extensions: &axum::http::Extensions) -> Option<IpAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip())
}

/// 429 with `Retry-After`, when the sign-in gate throttles an attempt.
fn throttled(
    state: &AppState,
    account: Option<&str>,
    ip: Option<IpAddr>,
    language: Language,
) -> Option<Response> {
    let gate = state.schema.data::<crate::throttle::SignInGate>()?;
    let refused = gate.admit_counted("link", account, ip).err()?;
    let seconds = refused.retry_after_seconds();
    let text = match language {
        Language::English => format!("Too many attempts: try again in {seconds} s."),
        Language::French => format!("Trop de tentatives : réessayez dans {seconds} s."),
    };
    let mut response = (
        StatusCode::TOO_MANY_REQUESTS,
        Html(pages::message(language, "Rappel", &[&text])),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    Some(response)
}

/// The signed-in contact of a request, if its cookie names a live session.
async fn signed_in(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<(SignedIn, String)>, OpError> {
    let Some(token) = session_cookie(headers) else {
        return Ok(None);
    };
    Ok(rules::session(env(state), &token)
        .await?
        .map(|signed_in| (signed_in, token)))
}

/// The contact signed in to the portal by this request's session cookie, if any (for
/// `/files/{id}`, which the portal's pages link to).
pub async fn session_actor(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<Actor>, OpError> {
    Ok(signed_in(state, headers)
        .await?
        .map(|(signed_in, _)| signed_in.actor))
}

/// Where a visitor without a session is sent: the new-link page, saying why.
fn no_session(language: Language) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Html(pages::new_link(
            language,
            pages::NewLinkReason::SignedOut,
            None,
            false,
            0,
        )),
    )
        .into_response()
}

/// The `token` (and request) of an emailed link.
#[derive(serde::Deserialize)]
struct EmailedLink {
    token: Option<String>,
    request: Option<String>,
}

/// Where the link leads once signed in: its request, or the list.
fn destination(request: Option<&str>) -> String {
    match request.and_then(|id| id.trim().parse::<i64>().ok()) {
        Some(id) if id > 0 => format!("/portal/requests/{id}"),
        _ => "/portal".to_string(),
    }
}

/// `GET /sign-in?token=...&request=...`: the link of a request email. Opening it spends
/// nothing (mail scanners open links): it shows a button. A browser already signed in as the
/// link's contact goes straight to the request. An unusable link offers a new one.
async fn sign_in_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(link): Query<EmailedLink>,
) -> Response {
    let token = link.token.unwrap_or_default();
    let holder = match rules::link_holder(env(&state), &token).await {
        Ok(holder) => holder,
        Err(error) => return unavailable(&error),
    };
    let Some(holder) = holder else {
        return (
            StatusCode::UNAUTHORIZED,
            Html(pages::new_link(
                browser_language(&headers),
                pages::NewLinkReason::Expired,
                None,
                false,
                0,
            )),
        )
            .into_response();
    };
    match signed_in(&state, &headers).await {
        Ok(Some((session, _))) if session.contact.id == holder.contact_id => {
            return Redirect::to(&destination(link.request.as_deref())).into_response();
        }
        Ok(_) => {}
        Err(error) => return unavailable(&error),
    }
    let language = match rules::link_language(env(&state), &holder).await {
        Ok(language) => language,
        Err(error) => return unavailable(&error),
    };
    Html(pages::sign_in(language, &token, link.request.as_deref())).into_response()
}

/// `POST /sign-in`: the link's button. Throttled like every sign-in, then it opens a portal
/// session (cookie) and leads to the request.
async fn sign_in_now(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    Form(link): Form<EmailedLink>,
) -> Response {
    let language = browser_language(&headers);
    if let Some(refused) = throttled(&state, None, client_ip(&extensions), language) {
        return refused;
    }
    if !same_origin(&headers, options(&state)) {
        return cross_site(language);
    }
    let opened = rules::sign_in_with_link(
        env(&state),
        &link.token.unwrap_or_default(),
        options(&state).session_hours,
    )
    .await;
    let session = match opened {
        Ok(session) => session,
        Err(OpError::AuthFailed(_)) => {
            return (
                StatusCode::UNAUTHORIZED,
                Html(pages::new_link(
                    language,
                    pages::NewLinkReason::Expired,
                    None,
                    false,
                    0,
                )),
            )
                .into_response();
        }
        Err(error) => return unavailable(&error),
    };
    let max_age = (session.expires_at - Utc::now()).num_seconds().max(0);
    let cookie = format!(
        "{COOKIE}={}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{}",
        session.token,
        if options(&state).secure() {
            "; Secure"
        } else {
            ""
        }
    );
    let mut response = Redirect::to(&destination(link.request.as_deref())).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// `GET /portal`: the client's open requests (overdue ones marked), then answered ones.
async fn home(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let (session, token) = match signed_in(&state, &headers).await {
        Ok(Some(found)) => found,
        Ok(None) => return no_session(browser_language(&headers)),
        Err(error) => return unavailable(&error),
    };
    match rules::overview(env(&state), &session.actor).await {
        Ok(overview) => Html(pages::home(
            session.language,
            &overview,
            &rules::csrf_token(&token),
            Utc::now().date_naive(),
        ))
        .into_response(),
        Err(error) => unavailable(&error),
    }
}

#[derive(serde::Deserialize)]
struct RequestPageQuery {
    sent: Option<String>,
}

/// The request page, with a confirmation or an error; 404 (the same page) for a request
/// that is not the contact's client's, or does not exist.
async fn render_request(
    state: &AppState,
    session: &SignedIn,
    token: &str,
    id: &str,
    sent: bool,
    error: Option<&str>,
) -> Response {
    let Some(id) = id.parse::<i64>().ok().filter(|id| *id > 0) else {
        return not_found(session.language);
    };
    let overview = match rules::names(env(state), &session.actor).await {
        Ok(names) => names,
        Err(error) => return unavailable(&error),
    };
    match rules::request(env(state), &session.actor, id).await {
        Ok(detail) => {
            let page = pages::request(
                session.language,
                &overview,
                &detail,
                &rules::csrf_token(token),
                sent,
                error,
                Utc::now().date_naive(),
            );
            let status = if error.is_some() {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::OK
            };
            (status, Html(page)).into_response()
        }
        Err(OpError::NotFound(_)) => not_found(session.language),
        Err(error) => unavailable(&error),
    }
}

fn not_found(language: Language) -> Response {
    let (heading, text) = match language {
        Language::English => (
            "Request not found",
            "This request does not exist, or is not yours.",
        ),
        Language::French => (
            "Demande introuvable",
            "Cette demande n'existe pas, ou ne vous concerne pas.",
        ),
    };
    (
        StatusCode::NOT_FOUND,
        Html(pages::message(language, heading, &[text])),
    )
        .into_response()
}

/// `GET /portal/requests/{id}`.
async fn request_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Query<RequestPageQuery>,
) -> Response {
    let (session, token) = match signed_in(&state, &headers).await {
        Ok(Some(found)) => found,
        Ok(None) => return no_session(browser_language(&headers)),
        Err(error) => return unavailable(&error),
    };
    render_request(&state, &session, &token, &id, query.sent.is_some(), None).await
}

/// Receives one file part of an answer: streams it into the document store through
/// `ops::documents::stage_file` (which checks the request, the size and the type).
async fn receive_file(
    env: Env<'_>,
    actor: &Actor,
    request_id: i64,
    name: &str,
    field: axum::extract::multipart::Field<'_>,
) -> Result<crate::ops::documents::StagedFile, OpError> {
    use futures_util::TryStreamExt as _;
    let body = field.map_err(|error| std::io::Error::other(error.body_text()));
    crate::ops::documents::stage_file(env, actor, request_id, name, Box::pin(body)).await
}

/// `POST /portal/requests/{id}/answer` (multipart: csrf, message, nothing_to_report,
/// files): answers through `ops::answers`, then shows the request with a confirmation.
async fn answer(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    mut form: Multipart,
) -> Response {
    let (session, token) = match signed_in(&state, &headers).await {
        Ok(Some(found)) => found,
        Ok(None) => return no_session(browser_language(&headers)),
        Err(error) => return unavailable(&error),
    };
    if !same_origin(&headers, options(&state)) {
        return cross_site(session.language);
    }
    let Some(request_id) = id.parse::<i64>().ok().filter(|id| *id > 0) else {
        return not_found(session.language);
    };
    let mut csrf_ok = false;
    let mut input = crate::ops::answers::AnswerInput::default();
    let mut refusal: Option<String> = None;
    loop {
        let field = match form.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(error) => {
                refusal = Some(error.body_text());
                break;
            }
        };
        let name = field.name().unwrap_or_default().to_string();
        if name == "files" {
            let file_name = field.file_name().unwrap_or_default().to_string();
            if file_name.is_empty() {
                // The empty part a browser sends when no file was chosen.
                continue;
            }
            if !csrf_ok {
                return cross_site(session.language);
            }
            match receive_file(env(&state), &session.actor, request_id, &file_name, field).await {
                Ok(staged) => input.files.push(staged),
                Err(OpError::NotFound(_)) => {
                    crate::ops::documents::discard(env(&state), &input.files).await;
                    return not_found(session.language);
                }
                Err(error) => {
                    refusal = Some(error.message());
                    break;
                }
            }
            continue;
        }
        let value = match field.text().await {
            Ok(value) => value,
            Err(error) => {
                refusal = Some(error.body_text());
                break;
            }
        };
        match name.as_str() {
            "csrf" => csrf_ok = rules::csrf_matches(&token, value.trim()),
            "message" => input.message = Some(value),
            "nothing_to_report" => input.nothing_to_report = !value.is_empty(),
            _ => {}
        }
    }
    if !csrf_ok || refusal.is_some() {
        // Nothing of a refused answer is kept.
        crate::ops::documents::discard(env(&state), &input.files).await;
    }
    if !csrf_ok {
        return cross_site(session.language);
    }
    if let Some(refusal) = refusal {
        return render_request(&state, &session, &token, &id, false, Some(&refusal)).await;
    }
    match crate::ops::answers::answer_request(env(&state), &session.actor, request_id, &input).await
    {
        Ok(_) => Redirect::to(&format!("/portal/requests/{request_id}?sent=1")).into_response(),
        Err(OpError::NotFound(_)) => not_found(session.language),
        Err(error @ OpError::BadUserInput { .. }) => {
            let text = pages::answer_error(session.language, &error);
            render_request(&state, &session, &token, &id, false, Some(&text)).await
        }
        Err(error) => unavailable(&error),
    }
}

#[derive(serde::Deserialize)]
struct CsrfForm {
    csrf: Option<String>,
}

/// `POST /portal/sign-out`: ends the session and clears the cookie.
async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    let (session, token) = match signed_in(&state, &headers).await {
        Ok(Some(found)) => found,
        Ok(None) => return no_session(browser_language(&headers)),
        Err(error) => return unavailable(&error),
    };
    if !same_origin(&headers, options(&state))
        || !rules::csrf_matches(&token, form.csrf.as_deref().unwrap_or_default())
    {
        return cross_site(session.language);
    }
    if let Err(error) = rules::sign_out(env(&state), &session).await {
        return unavailable(&error);
    }
    let mut response = Html(pages::signed_out(session.language)).into_response();
    let cookie = format!(
        "{COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax{}",
        if options(&state).secure() {
            "; Secure"
        } else {
            ""
        }
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// `GET /portal/new-link`.
async fn new_link_page(headers: HeaderMap) -> Response {
    Html(pages::new_link(
        browser_language(&headers),
        pages::NewLinkReason::Asked,
        None,
        false,
        0,
    ))
    .into_response()
}

#[derive(serde::Deserialize)]
struct NewLinkForm {
    email: Option<String>,
}

/// `POST /portal/new-link`: emails a new link to every live contact with that address; the
/// page says the same whether the address is known or not. Throttled per address and per IP.
async fn new_link_now(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    Form(form): Form<NewLinkForm>,
) -> Response {
    let language = browser_language(&headers);
    let email = form.email.unwrap_or_default();
    let account = crate::ops::access::login_email(&email);
    if let Some(refused) = throttled(&state, Some(&account), client_ip(&extensions), language) {
        return refused;
    }
    if !same_origin(&headers, options(&state)) {
        return cross_site(language);
    }
    let options = options(&state).clone();
    let links = match rules::request_new_links(env(&state), &email, options.link_days).await {
        Ok(links) => links,
        Err(error @ OpError::BadUserInput { .. }) => {
            let text = match language {
                Language::English => "Enter your email address.".to_string(),
                Language::French => error.message(),
            };
            let text = if language == Language::French {
                "Saisissez votre adresse email.".to_string()
            } else {
                text
            };
            return (
                StatusCode::BAD_REQUEST,
                Html(pages::new_link(
                    language,
                    pages::NewLinkReason::Asked,
                    Some(&text),
                    false,
                    0,
                )),
            )
                .into_response();
        }
        Err(error) => return unavailable(&error),
    };
    // Sent after answering, so a known and an unknown address take the same time.
    tokio::spawn(pages::send_new_links(options.clone(), links));
    Html(pages::new_link(
        language,
        pages::NewLinkReason::Asked,
        None,
        true,
        options.link_days,
    ))
    .into_response()
}

#[derive(serde::Deserialize)]
struct UnsubscribeLink {
    token: Option<String>,
}

/// `GET /unsubscribe?token=...`: names the firm and the address, with a button (a link
/// opened by a mail scanner must not unsubscribe anyone).
async fn unsubscribe_page(
    State(state): State<AppState>,
    Query(link): Query<UnsubscribeLink>,
) -> Response {
    let token = link.token.unwrap_or_default();
    match rules::unsubscribe_holder(env(&state), &token).await {
        Ok(Some(holder)) => {
            Html(pages::unsubscribe("confirm", Some(&holder), &token)).into_response()
        }
        Ok(None) => (
            StatusCode::NOT_FOUND,
            Html(pages::unsubscribe("invalid", None, "")),
        )
            .into_response(),
        Err(error) => unavailable(&error),
    }
}

/// `POST /unsubscribe?token=...`: RFC 8058 one-click unsubscribe (the body,
/// `List-Unsubscribe=One-Click`, says nothing more than the URL; mailbox providers post it
/// without an Origin, and the token alone authorises it).
async fn unsubscribe_now(
    State(state): State<AppState>,
    Query(link): Query<UnsubscribeLink>,
) -> Response {
    subscription(&state, link.token.unwrap_or_default(), false).await
}

/// `POST /unsubscribe/undo?token=...`: the undo button of the unsubscribe page.
async fn resubscribe_now(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(link): Query<UnsubscribeLink>,
) -> Response {
    if !same_origin(&headers, options(&state)) {
        return cross_site(browser_language(&headers));
    }
    subscription(&state, link.token.unwrap_or_default(), true).await
}

async fn subscription(state: &AppState, token: String, subscribed: bool) -> Response {
    match rules::set_subscription(env(state), &token, subscribed).await {
        Ok(Some(holder)) => Html(pages::unsubscribe(
            if subscribed { "undone" } else { "done" },
            Some(&holder),
            &token,
        ))
        .into_response(),
        Ok(None) => (
            StatusCode::NOT_FOUND,
            Html(pages::unsubscribe("invalid", None, "")),
        )
            .into_response(),
        Err(error) => unavailable(&error),
    }
}
