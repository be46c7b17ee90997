//! A real webhook endpoint for tests: an axum HTTP server on 127.0.0.1 that
//! records every request and answers as scripted.
//!
//! Signatures are checked with the reference `standardwebhooks` crate, not
//! with Rappel's own `sign`, so a test passing here means a firm using any
//! Standard Webhooks library would accept the delivery.
//!
//! Senders must be built with `allow_private = true` to reach it (it is
//! plain http on loopback). The server stops when the receiver is dropped.
//! The secret can be given after start ([`WebhookReceiver::set_secret`]), since
//! Rappel creates it when the endpoint (which needs the receiver's URL) is saved.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header::{CONTENT_LENGTH, LOCATION, RETRY_AFTER};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// Chunk size of large scripted bodies.
const BODY_CHUNK: usize = 64 * 1024;
/// Pause between chunks of large scripted bodies, so that a client reading a
/// 10 MB body to the end takes seconds while one stopping early does not.
const BODY_CHUNK_PACE: Duration = Duration::from_millis(20);
/// How long a "hanging" request waits before answering: longer than any test.
const HANG: Duration = Duration::from_secs(3600);

/// One request as the receiver saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedWebhook {
    /// All request headers, names lower-case, in arrival order.
    pub headers: Vec<(String, String)>,
    /// `webhook-id` header, or empty if absent.
    pub webhook_id: String,
    /// `webhook-timestamp` header, or empty if absent.
    pub timestamp: String,
    /// Request body (lossy UTF-8).
    pub body: String,
    /// Whether the reference `standardwebhooks` verifier accepts the request
    /// (signature and a timestamp within its 5-minute tolerance).
    pub signature_valid: bool,
}

impl ReceivedWebhook {
    /// First value of header `name` (case-insensitive), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A running webhook endpoint on 127.0.0.1.
pub struct WebhookReceiver {
    /// URL to deliver to: `http://127.0.0.1:PORT/hook`. Any path is accepted.
    pub url: String,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

struct Shared {
    verifier: Mutex<Option<standardwebhooks::Webhook>>,
    state: Mutex<Scripted>,
    /// Woken after every recorded request, for `wait_for`.
    arrived: Notify,
}

#[derive(Default)]
struct Scripted {
    received: Vec<ReceivedWebhook>,
    statuses: VecDeque<u16>,
    hang: usize,
    retry_after: Option<String>,
    location: Option<String>,
    body_size: Option<usize>,
}

/// Starts a receiver that verifies signatures against `secret`
/// (`whsec_...`). Panics if the secret is malformed or no port can be bound:
/// both are mistakes in the test, not conditions to handle.
pub async fn start(secret: &str) -> WebhookReceiver {
    let receiver = start_without_secret().await;
    receiver.set_secret(secret);
    receiver
}

/// Starts a receiver that flags every request as unverified until
/// [`WebhookReceiver::set_secret`] is called.
pub async fn start_without_secret() -> WebhookReceiver {
    let shared = Arc::new(Shared {
        verifier: Mutex::new(None),
        state: Mutex::new(Scripted::default()),
        arrived: Notify::new(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("test receiver could not bind 127.0.0.1:0: {e}"));
    let addr = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("test receiver has no local address: {e}"));
    // A fallback instead of a route: every method and path is recorded, so a
    // stray request (e.g. a followed redirect) is visible to the test.
    let app = Router::new().fallback(handle).with_state(shared.clone());
    let server = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("test webhook receiver stopped: {e}");
        }
    });
    WebhookReceiver {
        url: format!("http://{addr}/hook"),
        shared,
        server,
    }
}

impl WebhookReceiver {
    /// Verifies the requests arriving from now on against `secret` (`whsec_...`).
    pub fn set_secret(&self, secret: &str) {
        let verifier = standardwebhooks::Webhook::new(secret)
            .unwrap_or_else(|e| panic!("test receiver got an invalid secret: {e}"));
        *self
            .shared
            .verifier
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(verifier);
    }

    /// The next requests are answered with these statuses in order; after
    /// that, 200 again. Replaces any statuses still queued.
    pub fn respond_with(&self, statuses: Vec<u16>) {
        self.shared.lock().statuses = statuses.into();
    }

    /// The next `n` requests are recorded but never answered (the handler
    /// sleeps for an hour), so the sender's timeout has to cut them.
    pub fn hang_next(&self, n: usize) {
        self.shared.lock().hang = n;
    }

    /// Sends this `Retry-After` value with every following answer (`None`
    /// stops sending it).
    pub fn set_retry_after(&self, value: Option<String>) {
        self.shared.lock().retry_after = value;
    }

    /// Sends this `Location` value with every following answer (pair it with
    /// a 3xx status in [`Self::respond_with`]).
    pub fn set_location(&self, value: Option<String>) {
        self.shared.lock().location = value;
    }

    /// Every following answer carries a body of `bytes` bytes (`x`s, with a
    /// matching Content-Length), streamed in 64 KiB chunks 20 ms apart.
    /// `None` returns to the default short body.
    pub fn set_response_body_size(&self, bytes: Option<usize>) {
        self.shared.lock().body_size = bytes;
    }

    /// Everything received so far, in arrival order.
    pub fn received(&self) -> Vec<ReceivedWebhook> {
        self.shared.lock().received.clone()
    }

    /// Waits until at least `count` requests have arrived or `timeout`
    /// passes, and returns what has arrived either way.
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> Vec<ReceivedWebhook> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Created before checking, so a request recorded in between
            // still wakes it (notify_waiters reaches unpolled `Notified`s).
            let arrived = self.shared.arrived.notified();
            let received = self.received();
            if received.len() >= count {
                return received;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                return self.received();
            }
        }
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Shared {
    /// A panicking test must not poison the receiver for the next assertion.
    fn lock(&self) -> MutexGuard<'_, Scripted> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What to answer one request with, decided under the lock.
struct Plan {
    hang: bool,
    status: u16,
    retry_after: Option<String>,
    location: Option<String>,
    body_size: Option<usize>,
}

async fn handle(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let header_text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let record = ReceivedWebhook {
        headers: headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        webhook_id: header_text("webhook-id"),
        timestamp: header_text("webhook-timestamp"),
        body: String::from_utf8_lossy(&body).into_owned(),
        signature_valid: shared
            .verifier
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .is_some_and(|verifier| verifier.verify(&body, &headers).is_ok()),
    };

    let plan = {
        let mut state = shared.lock();
        state.received.push(record);
        let hang = state.hang > 0;
        if hang {
            state.hang -= 1;
        }
        Plan {
            hang,
            // A hanging request never answers, so it does not use up a status.
            status: if hang {
                200
            } else {
                state.statuses.pop_front().unwrap_or(200)
            },
            retry_after: state.retry_after.clone(),
            location: state.location.clone(),
            body_size: state.body_size,
        }
    };
    shared.arrived.notify_waiters();

    if plan.hang {
        tokio::time::sleep(HANG).await;
    }
    answer(plan)
}

fn answer(plan: Plan) -> Response {
    let status = StatusCode::from_u16(plan.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = Response::builder().status(status);
    if let Some(value) = plan.retry_after {
        response = response.header(RETRY_AFTER, value);
    }
    if let Some(value) = plan.location {
        response = response.header(LOCATION, value);
    }
    let body = match plan.body_size {
        Some(size) => {
            response = response.header(CONTENT_LENGTH, size);
            paced_body(size)
        }
        None => Body::from(status.canonical_reason().unwrap_or("answer")),
    };
    response.body(body).unwrap_or_else(|e| {
        // Only reachable through a header value the test scripted badly.
        let mut fallback = Response::new(Body::from(format!("bad scripted answer: {e}")));
        *fallback.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        fallback
    })
}

/// `total` bytes of `x`, one chunk at a time with a pause between chunks.
fn paced_body(total: usize) -> Body {
    let chunks = futures_util::stream::unfold(0usize, move |sent| async move {
        if sent >= total {
            return None;
        }
        if sent > 0 {
            tokio::time::sleep(BODY_CHUNK_PACE).await;
        }
        let len = BODY_CHUNK.min(total - sent);
        Some((
            Ok::<_, std::io::Error>(Bytes::from(vec![b'x'; len])),
            sent + len,
        ))
    });
    Body::from_stream(chunks)
}
