//! GraphQL over HTTP as the spec (graphql.github.io/graphql-over-http) says: which media type
//! answers (`application/graphql-response+json` when asked for, `application/json` for clients
//! that ask for it or for nothing in particular), what a POST body and a GET query string may
//! hold, and which status a request error gets. Pure functions over headers, bytes and
//! responses: the handler in `http.rs` wires them; no schema and no database here.

use async_graphql::parser::types::{DocumentOperations, OperationType};
use async_graphql::{BatchRequest, Request, Variables};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The media types a GraphQL answer can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaType {
    /// `application/json`: every well-formed request answers 200, errors included.
    Json,
    /// `application/graphql-response+json`: request errors (parse, validation, variables,
    /// limits) answer 4xx and carry no `data`.
    GraphqlResponseJson,
}

impl MediaType {
    fn header(self) -> HeaderValue {
        match self {
            MediaType::Json => HeaderValue::from_static("application/json; charset=utf-8"),
            MediaType::GraphqlResponseJson => {
                HeaderValue::from_static("application/graphql-response+json; charset=utf-8")
            }
        }
    }
}

/// What the `Accept` header asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wanted {
    /// A GraphQL answer in this media type.
    Graphql(MediaType),
    /// A page for a person (a browser's `Accept: text/html`): the playground.
    Html,
    /// Nothing Rappel can answer: 406.
    Nothing,
}

/// The `q` of each media range of an `Accept` header that matches `media` (`*/*` and
/// `type/*` included), the highest one; 0 when none matches.
fn quality(accept: &str, media: &str, exact_only: bool) -> f32 {
    let (kind, _) = media.split_once('/').unwrap_or((media, ""));
    accept
        .split(',')
        .filter_map(|range| {
            let mut parts = range.split(';');
            let range = parts.next()?.trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|parameter| parameter.split_once('='))
                .find(|(name, _)| name.trim().eq_ignore_ascii_case("q"))
                .and_then(|(_, value)| value.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            let matches =
                range == media || (!exact_only && (range == "*/*" || range == format!("{kind}/*")));
            matches.then_some(q)
        })
        .fold(0.0, f32::max)
}

/// Content negotiation. No `Accept` (or `*/*`) is `application/json`; an explicit
/// `application/graphql-response+json` wins over `application/json` of the same or a lower
/// quality; `text/html` preferred to both (a browser) is the playground when `html_allowed`.
pub fn negotiate(headers: &HeaderMap, html_allowed: bool) -> Wanted {
    let Some(accept) = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .filter(|value| !value.trim().is_empty())
    else {
        return Wanted::Graphql(MediaType::Json);
    };
    let graphql_response = quality(accept, "application/graphql-response+json", true);
    let json = quality(accept, "application/json", false);
    let html = quality(accept, "text/html", true);
    if html_allowed && html > 0.0 && html > graphql_response.max(json) {
        return Wanted::Html;
    }
    if graphql_response > 0.0 && graphql_response >= json {
        Wanted::Graphql(MediaType::GraphqlResponseJson)
    } else if json > 0.0 {
        Wanted::Graphql(MediaType::Json)
    } else {
        Wanted::Nothing
    }
}

/// True when a POST says its body is JSON (`application/json`, any charset parameter).
pub fn is_json_body(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}

/// A request the server refuses before GraphQL sees it: its status and its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: StatusCode,
    pub message: String,
}

impl Refusal {
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }
}

/// One GraphQL request from its JSON form: `query` (a string, required unless
/// `extensions.persistedQuery` stands for it), `operationName`
/// (string or null), `variables` and `extensions` (maps or null).
fn request_from_json(value: serde_json::Value) -> Result<Request, Refusal> {
    let serde_json::Value::Object(mut fields) = value else {
        return Err(Refusal::bad_request(
            "a GraphQL request is a JSON object with a \"query\" string",
        ));
    };
    let persisted = fields
        .get("extensions")
        .and_then(|extensions| extensions.get("persistedQuery"))
        .is_some();
    let query = match fields.remove("query") {
        Some(serde_json::Value::String(query)) => query,
        Some(_) => return Err(Refusal::bad_request("\"query\" must be a string")),
        // A persisted query's hash stands for its text (`graphql::persisted`).
        None if persisted => String::new(),
        None => return Err(Refusal::bad_request("the request has no \"query\"")),
    };
    let mut request = Request::new(query);
    match fields.remove("operationName") {
        None | Some(serde_json::Value::Null) => {}
        Some(serde_json::Value::String(name)) => request = request.operation_name(name),
        Some(_) => {
            return Err(Refusal::bad_request(
                "\"operationName\" must be a string or null",
            ));
        }
    }
    match fields.remove("variables") {
        None | Some(serde_json::Value::Null) => {}
        Some(variables @ serde_json::Value::Object(_)) => {
            request = request.variables(Variables::from_json(variables));
        }
        Some(_) => {
            return Err(Refusal::bad_request(
                "\"variables\" must be an object or null",
            ));
        }
    }
    match fields.remove("extensions") {
        None | Some(serde_json::Value::Null) => {}
        Some(serde_json::Value::Object(extensions)) => {
            for (name, value) in extensions {
                let value = async_graphql::Value::from_json(value)
                    .map_err(|_| Refusal::bad_request("\"extensions\" holds an invalid value"))?;
                request.extensions.insert(name, value);
            }
        }
        Some(_) => {
            return Err(Refusal::bad_request(
                "\"extensions\" must be an object or null",
            ));
        }
    }
    Ok(request)
}

/// A POST body: one request object, or a non-empty array of them (a batch).
pub fn batch_from_body(body: &[u8]) -> Result<BatchRequest, Refusal> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(Refusal::bad_request("the request body is empty"));
    }
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|error| Refusal::bad_request(format!("the body is not valid JSON: {error}")))?;
    match value {
        serde_json::Value::Array(items) => {
            if items.is_empty() {
                return Err(Refusal::bad_request("a batch holds at least one request"));
            }
            let requests = items
                .into_iter()
                .map(request_from_json)
                .collect::<Result<Vec<_>, _>>()?;
            Ok(BatchRequest::Batch(requests))
        }
        value => Ok(BatchRequest::Single(request_from_json(value)?)),
    }
}

/// A GET query string: `query`, and `operationName`, `variables` and `extensions` (JSON
/// texts), URL-encoded.
pub fn request_from_query_string(query_string: &str) -> Result<Request, Refusal> {
    let mut fields = serde_json::Map::new();
    for (name, value) in url::form_urlencoded::parse(query_string.as_bytes()) {
        let value = match name.as_ref() {
            "query" | "operationName" => serde_json::Value::String(value.into_owned()),
            "variables" | "extensions" => serde_json::from_str(&value).map_err(|_| {
                Refusal::bad_request(format!("\"{name}\" must be URL-encoded JSON"))
            })?,
            _ => continue,
        };
        if fields.insert(name.into_owned(), value).is_some() {
            return Err(Refusal::bad_request("a parameter is given twice"));
        }
    }
    request_from_json(serde_json::Value::Object(fields))
}

/// True when the operation a GET would run is a mutation (or a subscription): those are
/// refused with 405. A document that does not parse, or names no such operation, is left to
/// GraphQL to refuse with its usual error.
pub fn is_state_changing(request: &Request) -> bool {
    let Ok(document) = async_graphql::parser::parse_query(&request.query) else {
        return false;
    };
    let kind = match (&document.operations, request.operation_name.as_deref()) {
        (DocumentOperations::Single(operation), _) => Some(operation.node.ty),
        (DocumentOperations::Multiple(operations), Some(name)) => {
            operations.get(name).map(|operation| operation.node.ty)
        }
        (DocumentOperations::Multiple(_), None) => None,
    };
    matches!(
        kind,
        Some(OperationType::Mutation | OperationType::Subscription)
    )
}

/// True when the answer is a request error: GraphQL did not execute (parse, validation,
/// variables or a limit refused the request), so `data` is absent and every error lacks a path.
fn is_request_error(response: &async_graphql::Response) -> bool {
    !response.errors.is_empty()
        && response.data == async_graphql::Value::Null
        && response.errors.iter().all(|error| error.path.is_empty())
}

/// One response's JSON body: `data` (absent for a request error), `errors`, `extensions`, in
/// that order, and each object's fields in the order the query asked for them.
#[derive(serde::Serialize)]
struct Body<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a async_graphql::Value>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    errors: &'a [async_graphql::ServerError],
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    extensions: &'a std::collections::BTreeMap<String, async_graphql::Value>,
}

fn body_of(response: &async_graphql::Response) -> Body<'_> {
    Body {
        data: (!is_request_error(response)).then_some(&response.data),
        errors: &response.errors,
        extensions: &response.extensions,
    }
}

/// The HTTP answer to an executed request or batch. With `application/graphql-response+json` a
/// single request error answers 400; everything else answers 200.
pub fn answer(response: &async_graphql::BatchResponse, media: MediaType) -> Response {
    let (body, request_error) = match response {
        async_graphql::BatchResponse::Single(response) => (
            serde_json::to_string(&body_of(response)),
            is_request_error(response),
        ),
        async_graphql::BatchResponse::Batch(responses) => (
            serde_json::to_string(&responses.iter().map(body_of).collect::<Vec<_>>()),
            false,
        ),
    };
    let status = if request_error && media == MediaType::GraphqlResponseJson {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    match body {
        Ok(body) => json_response(status, media, body),
        Err(error) => {
            tracing::error!(%error, "cannot serialize a GraphQL answer");
            let refusal = Refusal {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                message: "internal error".into(),
            };
            refusal_answer(&refusal, "INTERNAL", media)
        }
    }
}

/// A refusal as a GraphQL error with `extensions.code`.
pub fn refusal_answer(refusal: &Refusal, code: &str, media: MediaType) -> Response {
    let body = serde_json::json!({
        "errors": [{ "message": refusal.message, "extensions": { "code": code } }]
    });
    json_response(refusal.status, media, body.to_string())
}

fn json_response(status: StatusCode, media: MediaType, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, media.header())], body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_str(value).expect("header"),
        );
        headers
    }

    #[test]
    fn negotiation_follows_the_spec() {
        use MediaType::*;
        use Wanted::*;
        assert_eq!(negotiate(&HeaderMap::new(), true), Graphql(Json));
        assert_eq!(negotiate(&accept("*/*"), true), Graphql(Json));
        assert_eq!(negotiate(&accept("application/json"), true), Graphql(Json));
        assert_eq!(
            negotiate(&accept("application/graphql-response+json"), true),
            Graphql(GraphqlResponseJson)
        );
        assert_eq!(
            negotiate(
                &accept("application/graphql-response+json, application/json;q=0.9"),
                true
            ),
            Graphql(GraphqlResponseJson)
        );
        assert_eq!(
            negotiate(
                &accept("application/json, application/graphql-response+json;q=0.5"),
                true
            ),
            Graphql(Json)
        );
        let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
        assert_eq!(negotiate(&accept(browser), true), Html);
        assert_eq!(negotiate(&accept(browser), false), Graphql(Json));
        assert_eq!(negotiate(&accept("image/png"), true), Nothing);
        assert_eq!(negotiate(&accept("application/json;q=0"), true), Nothing);
    }

    #[test]
    fn bodies_with_wrongly_typed_parameters_are_refused() {
        for body in [
            r#"{"query": 1}"#,
            r#"{"notquery": "{ a }"}"#,
            r#"{"query": "{ a }", "variables": "x"}"#,
            r#"{"query": "{ a }", "variables": [1]}"#,
            r#"{"query": "{ a }", "operationName": false}"#,
            r#"{"query": "{ a }", "extensions": 0}"#,
            r#"{ "not a JSON"#,
            "",
            "[]",
            "7",
        ] {
            let refusal = batch_from_body(body.as_bytes()).expect_err(body);
            assert_eq!(refusal.status, StatusCode::BAD_REQUEST, "{body}");
        }
        let fine = batch_from_body(
            br#"{"query": "{ a }", "variables": null, "operationName": null, "extensions": {"x": 1}}"#,
        );
        assert!(matches!(fine, Ok(BatchRequest::Single(_))));
    }

    #[test]
    fn get_requests_name_their_operation_kind() {
        let mutation = request_from_query_string("query=mutation%20%7B%20logout%20%7D")
            .expect("a GET request");
        assert!(is_state_changing(&mutation));
        let query = request_from_query_string(
            "query=query%20A%20%7B%20a%20%7D%20mutation%20B%20%7B%20b%20%7D&operationName=A",
        )
        .expect("a GET request");
        assert!(!is_state_changing(&query));
        let named_mutation = request_from_query_string(
            "query=query%20A%20%7B%20a%20%7D%20mutation%20B%20%7B%20b%20%7D&operationName=B",
        )
        .expect("a GET request");
        assert!(is_state_changing(&named_mutation));
        assert!(request_from_query_string("variables=%7Bx").is_err());
    }
}
