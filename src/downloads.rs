//! `GET /files/{id}`: a deposited document, streamed from the document store to a caller who
//! may read it: the firm's staff (bearer token) and the client's own contacts (the client
//! view's bearer token). Which callers may read is [`file_reader`], one function over a
//! resolved caller (a portal session adds one arm there); which files is
//! `ops::documents::file_for_download`. Any other firm's or client's file answers 404, as a
//! missing one. Also the body limits of multipart uploads (`limit_body`).
//!
//! Never here: a file read whole into memory, a rule about who may read beyond mapping the
//! caller, or an inline (rendered) download: every file is an attachment, never sniffed.

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::graphql::Caller;
use crate::http::AppState;
use crate::ops::documents::{FileReader, file_for_download};
use crate::ops::{Env, OpError};

/// Who may download, from a resolved caller; `None` must sign in.
pub fn file_reader(caller: &Caller) -> Option<FileReader> {
    match caller {
        Caller::Anonymous => None,
        Caller::Staff(staff) => Some(FileReader::Staff {
            firm_id: staff.firm_id,
        }),
        Caller::Contact(contact) => Some(FileReader::Contact {
            firm_id: contact.firm_id,
            client_id: contact.client_id,
        }),
    }
}

fn plain(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        format!("{message}\n"),
    )
        .into_response()
}

fn not_found() -> Response {
    plain(StatusCode::NOT_FOUND, "file not found")
}

fn internal() -> Response {
    plain(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
}

/// `GET /files/{id}`.
pub async fn download(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let token = crate::http::bearer_token(&headers);
    let caller = match state.callers.resolve(&state.pool, token).await {
        Ok(caller) => caller,
        Err(error) => {
            tracing::error!(%error, "cannot check a bearer token");
            return internal();
        }
    };
    let mut reader = file_reader(&caller);
    if reader.is_none() {
        // The portal's pages link here: a contact signed in by its session cookie.
        match crate::portal::session_actor(&state, &headers).await {
            Ok(Some(crate::ops::Actor::Contact {
                firm_id, client_id, ..
            })) => reader = Some(FileReader::Contact { firm_id, client_id }),
            Ok(_) => {}
            Err(error) => {
                tracing::error!(error = %error.message(), "cannot check a portal session");
                return internal();
            }
        }
    }
    let Some(reader) = reader else {
        let mut answer = plain(
            StatusCode::UNAUTHORIZED,
            "sign in first: send Authorization: Bearer <token>",
        );
        answer
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return answer;
    };
    let (Ok(id), Some(storage)) = (id.parse::<i64>(), state.web.storage.as_ref()) else {
        return not_found();
    };
    let generation = crate::generation::GenerationSettings::default();
    let env = Env::new(&state.pool, &generation).with_storage(storage);
    let file = match file_for_download(env, reader, id).await {
        Ok(file) => file,
        Err(OpError::NotFound(_)) => return not_found(),
        Err(error) => {
            tracing::error!(error = %error.message(), file_id = id, "cannot look a file up");
            return internal();
        }
    };
    let stream = match storage.read(&file.storage_key).await {
        Ok(stream) => stream,
        Err(error) => {
            tracing::error!(%error, file_id = id, "a recorded file is missing from the store");
            return internal();
        }
    };
    let media_type = HeaderValue::from_str(&file.media_type)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    let disposition = HeaderValue::from_str(&content_disposition(&file.name))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
    let mut response = Body::from_stream(stream).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, media_type);
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(file.size_bytes));
    headers.insert(header::CONTENT_DISPOSITION, disposition);
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    response
}

/// `attachment` with the name twice (RFC 6266): an ASCII `filename` for old clients and
/// `filename*=UTF-8''...` with the exact name, percent-encoded (RFC 8187).
pub fn content_disposition(name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::with_capacity(name.len() * 3);
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// The body limits: `[graphql] max_body_bytes` for every request, except multipart uploads
/// to `/graphql`, which may carry every file of an answer at its largest.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    pub default: usize,
    /// `None`: uploads are not accepted, the default limit applies.
    pub upload: Option<usize>,
}

/// True when the request's body is `multipart/form-data`.
pub fn is_multipart(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("multipart/form-data"))
}

/// Refuses a body announced larger than its limit (413) before reading it, and cuts one
/// that grows past it while read (whatever its `Content-Length` said, or when chunked).
pub async fn limit_body(
    State(limits): State<BodyLimits>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    let upload_route =
        path == "/graphql" || (path.starts_with("/portal/requests/") && path.ends_with("/answer"));
    let upload = upload_route && is_multipart(request.headers());
    let limit = match (upload, limits.upload) {
        (true, Some(upload)) => upload,
        _ => limits.default,
    };
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if announced.is_some_and(|length| length > limit as u64) {
        return plain(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("the request body is larger than {limit} bytes"),
        );
    }
    let request = request.map(|body| Body::new(http_body_util::Limited::new(body, limit)));
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_disposition_names_the_file_in_ascii_and_in_utf8() {
        assert_eq!(
            content_disposition("relevé \"mars\".pdf"),
            "attachment; filename=\"relev_ _mars_.pdf\"; \
             filename*=UTF-8''relev%C3%A9%20%22mars%22.pdf"
        );
        assert_eq!(
            content_disposition("a;b\r\n.pdf"),
            "attachment; filename=\"a;b__.pdf\"; filename*=UTF-8''a%3Bb%0D%0A.pdf"
        );
    }
}
