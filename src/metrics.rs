//! Operating signals: the Prometheus registry behind `GET /metrics`, the access log (one INFO
//! line per HTTP request), and the GraphQL extension that names each request's operations and
//! counts errors by code. Counters elsewhere are one-line `metrics::counter!` calls; this
//! module describes them and computes the gauges read at scrape time.
//!
//! It must never put an id, a token, an email address or a request text in a label or a log
//! line: every label value comes from a closed list or is bounded here.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use ::metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::db::Pool;

/// The git commit this binary was built from (`build.rs`), or "unknown".
pub const GIT_COMMIT: &str = env!("RAPPEL_GIT_COMMIT");

/// Latency buckets in seconds, from a cache hit to a slow generation pass.
const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Most distinct GraphQL operation names used as label values; later names count as "other".
const MAX_OPERATION_LABELS: usize = 100;

/// The error codes of the contract; any other code counts as "OTHER".
const ERROR_CODES: [&str; 7] = [
    "UNAUTHENTICATED",
    "FORBIDDEN",
    "NOT_FOUND",
    "BAD_USER_INPUT",
    "CONFLICT",
    "INTERNAL",
    "TOO_MANY_REQUESTS",
];

struct Registry {
    handle: PrometheusHandle,
    started: Instant,
}

static REGISTRY: OnceLock<Option<Registry>> = OnceLock::new();

/// Installs the process-wide recorder on first use (the `metrics` facade has one recorder per
/// process) and returns its handle; `None` when another recorder was installed first.
pub fn install() -> Option<PrometheusHandle> {
    REGISTRY
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &LATENCY_BUCKETS)
                .ok()?;
            let handle = builder.install_recorder().ok()?;
            describe();
            Some(Registry {
                handle,
                started: Instant::now(),
            })
        })
        .as_ref()
        .map(|registry| registry.handle.clone())
}

fn describe() {
    describe_counter!(
        "rappel_http_requests_total",
        "HTTP requests answered, by route, GraphQL operation and status"
    );
    describe_histogram!(
        "rappel_http_request_duration_seconds",
        ::metrics::Unit::Seconds,
        "Time to answer an HTTP request, by route and GraphQL operation"
    );
    describe_counter!(
        "rappel_graphql_errors_total",
        "GraphQL errors returned, by extensions.code"
    );
    describe_counter!(
        "rappel_generation_passes_total",
        "Generation passes run, by result (ok, error)"
    );
    describe_histogram!(
        "rappel_generation_pass_duration_seconds",
        ::metrics::Unit::Seconds,
        "Duration of a generation pass"
    );
    describe_counter!(
        "rappel_generation_rows_created_total",
        "Rows created by generation passes, by kind (task, request, delivery)"
    );
    describe_counter!(
        "rappel_generation_lines_scanned_total",
        "Mission lines examined by generation passes"
    );
    describe_gauge!(
        "rappel_generation_last_success_timestamp_seconds",
        "Unix time at which the last successful generation pass ended"
    );
    describe_counter!(
        "rappel_delivery_attempts_total",
        "Delivery attempts, by kind (EMAIL, WEBHOOK) and outcome"
    );
    describe_counter!(
        "rappel_reminders_enqueued_total",
        "Follow-up reminder deliveries enqueued"
    );
    describe_counter!(
        "rappel_reminders_sent_total",
        "Follow-up reminder deliveries delivered"
    );
    describe_counter!(
        "rappel_sign_ins_total",
        "Sign-in attempts, by kind (staff, link) and result (succeeded, failed, throttled)"
    );
    describe_gauge!(
        "rappel_outbox_deliveries",
        "Deliveries in the outbox, by kind and status"
    );
    describe_gauge!(
        "rappel_outbox_dead_letters",
        "Deliveries that gave up after their last attempt"
    );
    describe_gauge!(
        "rappel_outbox_oldest_pending_age_seconds",
        "Age of the oldest delivery still waiting to leave (0 when none waits)"
    );
    describe_gauge!(
        "rappel_db_pool_connections",
        "Database connections open, by state (in_use, idle)"
    );
    describe_gauge!(
        "rappel_process_resident_memory_bytes",
        "Resident memory of the process"
    );
    describe_gauge!(
        "rappel_process_uptime_seconds",
        "Seconds since the process started"
    );
    describe_gauge!(
        "rappel_build_info",
        "Always 1; the labels give the version and git commit"
    );
    // Counters that may stay at zero for a long time are shown from the start, so that an
    // alert on their rate has a series to read.
    for kind in ["staff", "link"] {
        for result in ["succeeded", "failed", "throttled"] {
            counter!("rappel_sign_ins_total", "kind" => kind, "result" => result).absolute(0);
        }
    }
    counter!("rappel_reminders_enqueued_total").absolute(0);
    counter!("rappel_reminders_sent_total").absolute(0);
    for result in ["ok", "error"] {
        counter!("rappel_generation_passes_total", "result" => result).absolute(0);
    }
    gauge!(
        "rappel_build_info",
        "version" => env!("CARGO_PKG_VERSION"),
        "commit" => GIT_COMMIT,
    )
    .set(1.0);
}

/// Renders every metric in the Prometheus text format, after reading the gauges that are
/// measured at scrape time (outbox, pool, process).
pub async fn render(pool: &Pool) -> String {
    let Some(registry) = REGISTRY.get().and_then(Option::as_ref) else {
        return String::new();
    };
    record_database_gauges(pool).await;
    let (open, in_use) = pool.connection_usage();
    gauge!("rappel_db_pool_connections", "state" => "in_use").set(f64::from(in_use));
    gauge!("rappel_db_pool_connections", "state" => "idle").set(f64::from(open - in_use));
    if let Some(bytes) = resident_memory_bytes() {
        gauge!("rappel_process_resident_memory_bytes").set(bytes as f64);
    }
    gauge!("rappel_process_uptime_seconds").set(registry.started.elapsed().as_secs_f64());
    registry.handle.run_upkeep();
    registry.handle.render()
}

async fn record_database_gauges(pool: &Pool) {
    use crate::db::maintenance;
    let read = async {
        let mut conn = pool.get().await?;
        let depth = maintenance::outbox_depth(&mut conn.as_db()).await?;
        let oldest = maintenance::oldest_pending_delivery(&mut conn.as_db()).await?;
        Ok::<_, crate::db::DbError>((depth, oldest))
    };
    match tokio::time::timeout(Duration::from_secs(5), read).await {
        Ok(Ok((depth, oldest))) => {
            let mut dead = 0;
            for kind in ["EMAIL", "WEBHOOK"] {
                for status in ["PENDING", "DELIVERED", "FAILED", "DEAD", "SKIPPED"] {
                    let count = depth
                        .iter()
                        .filter(|row| row.kind == kind && row.status == status)
                        .map(|row| row.count)
                        .sum::<i64>();
                    if status == "DEAD" {
                        dead += count;
                    }
                    gauge!("rappel_outbox_deliveries", "kind" => kind, "status" => status)
                        .set(count as f64);
                }
            }
            gauge!("rappel_outbox_dead_letters").set(dead as f64);
            let age = oldest
                .map(|created| (chrono::Utc::now().naive_utc() - created).num_milliseconds())
                .unwrap_or(0)
                .max(0);
            gauge!("rappel_outbox_oldest_pending_age_seconds").set(age as f64 / 1000.0);
        }
        Ok(Err(error)) => tracing::warn!(%error, "cannot read the outbox for /metrics"),
        Err(_) => tracing::warn!("reading the outbox for /metrics timed out"),
    }
}

/// The resident set size from `/proc/self/status` (Linux), in bytes.
fn resident_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kilobytes: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kilobytes * 1024)
}

/// What a finished generation pass did, for [`record_generation_pass`].
#[derive(Debug, Clone, Copy, Default)]
pub struct GenerationFigures {
    pub lines_scanned: usize,
    pub tasks_created: usize,
    pub requests_created: usize,
    pub deliveries_enqueued: usize,
}

/// Records a finished generation pass (`None`: it failed).
pub fn record_generation_pass(figures: Option<GenerationFigures>, elapsed: Duration) {
    histogram!("rappel_generation_pass_duration_seconds").record(elapsed.as_secs_f64());
    let Some(figures) = figures else {
        counter!("rappel_generation_passes_total", "result" => "error").increment(1);
        return;
    };
    counter!("rappel_generation_passes_total", "result" => "ok").increment(1);
    let created = [
        ("task", figures.tasks_created),
        ("request", figures.requests_created),
        ("delivery", figures.deliveries_enqueued),
    ];
    for (kind, count) in created {
        counter!("rappel_generation_rows_created_total", "kind" => kind).increment(count as u64);
    }
    counter!("rappel_generation_lines_scanned_total").increment(figures.lines_scanned as u64);
    let now = chrono::Utc::now();
    gauge!("rappel_generation_last_success_timestamp_seconds")
        .set(now.timestamp_millis() as f64 / 1000.0);
}

/// Records where one delivery attempt ended (`outcome`: delivered, retrying, failed,
/// skipped, dead).
pub fn record_delivery(kind: &'static str, event: &str, outcome: &'static str) {
    counter!("rappel_delivery_attempts_total", "kind" => kind, "outcome" => outcome).increment(1);
    if outcome == "delivered" && event == "information_request.reminder" {
        counter!("rappel_reminders_sent_total").increment(1);
    }
}

/// What the access log learns about a request while it is served: the route axum matched,
/// and from the GraphQL extension the operation names and the caller's kind.
#[derive(Default)]
struct RequestFacts {
    route: Option<String>,
    operations: Vec<String>,
    caller: Option<&'static str>,
}

tokio::task_local! {
    static FACTS: Arc<Mutex<RequestFacts>>;
}

fn with_facts(update: impl FnOnce(&mut RequestFacts)) {
    let _ = FACTS.try_with(|facts| {
        if let Ok(mut facts) = facts.lock() {
            update(&mut facts);
        }
    });
}

/// Route layer: notes the route template axum matched (`/graphql`, never a raw path).
pub async fn note_route(request: Request, next: Next) -> Response {
    if let Some(path) = request.extensions().get::<MatchedPath>() {
        let route = path.as_str().to_string();
        with_facts(|facts| facts.route = Some(route));
    }
    next.run(request).await
}

/// Outer layer: one INFO line per request (method, route, status, latency, request id,
/// GraphQL operations, caller kind), and the request counters and latency histogram.
pub async fn access_log(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("-")
        .to_string();
    let facts = Arc::new(Mutex::new(RequestFacts::default()));
    let response = FACTS.scope(facts.clone(), next.run(request)).await;
    let elapsed = started.elapsed();
    let (route, operations, caller) = match facts.lock() {
        Ok(mut facts) => (
            facts.route.take(),
            std::mem::take(&mut facts.operations),
            facts.caller,
        ),
        Err(_) => (None, Vec::new(), None),
    };
    let route = route.unwrap_or_else(|| "unmatched".into());
    let status = response.status().as_u16();
    let operation_label = match operations.as_slice() {
        [] => "-".to_string(),
        [one] => bounded_operation_label(one),
        _ => "batch".to_string(),
    };
    counter!(
        "rappel_http_requests_total",
        "method" => method.to_string(),
        "route" => route.clone(),
        "operation" => operation_label.clone(),
        "status" => status.to_string(),
    )
    .increment(1);
    histogram!(
        "rappel_http_request_duration_seconds",
        "route" => route.clone(),
        "operation" => operation_label,
    )
    .record(elapsed.as_secs_f64());
    let operations = if operations.is_empty() {
        "-".to_string()
    } else {
        operations.join(",")
    };
    tracing::info!(
        target: "rappel::access",
        method = %method,
        route = %route,
        status,
        latency_ms = elapsed.as_secs_f64() * 1000.0,
        request_id = %request_id,
        operation = %operations,
        caller = caller.unwrap_or("-"),
        "request"
    );
    response
}

/// An operation name as a label value: names are chosen by clients, so only well-formed ones
/// and only the first [`MAX_OPERATION_LABELS`] distinct ones become labels.
fn bounded_operation_label(name: &str) -> String {
    static SEEN: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    if name == "-" {
        return name.to_string();
    }
    if !is_plain_name(name) {
        return "other".into();
    }
    let Ok(mut seen) = SEEN.get_or_init(Default::default).lock() else {
        return "other".into();
    };
    if seen.contains(name) {
        return name.to_string();
    }
    if seen.len() < MAX_OPERATION_LABELS {
        seen.insert(name.to_string());
        return name.to_string();
    }
    "other".into()
}

fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|character| character.is_ascii_alphanumeric() || character == '_')
}

/// Notes the caller's kind (staff, contact, anonymous) for the access log.
pub fn note_caller(kind: &'static str) {
    with_facts(|facts| facts.caller = Some(kind));
}

/// Notes one executed GraphQL operation's name ("-" when unnamed) for the access log.
pub fn note_operation(name: &str) {
    let name = if is_plain_name(name) { name } else { "-" };
    with_facts(|facts| facts.operations.push(name.to_string()));
}

/// Counts one GraphQL error by its `extensions.code` (codes outside the contract count as
/// "OTHER").
pub fn count_graphql_error(code: Option<&str>) {
    let code = match code {
        Some(code) => ERROR_CODES
            .iter()
            .find(|known| **known == code)
            .copied()
            .unwrap_or("OTHER"),
        None => "NONE",
    };
    counter!("rappel_graphql_errors_total", "code" => code).increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_labels_are_plain_names_and_their_number_is_bounded() {
        assert_eq!(bounded_operation_label("Viewer"), "Viewer");
        assert_eq!(bounded_operation_label("a b\"c"), "other");
        assert_eq!(bounded_operation_label(&"x".repeat(65)), "other");
        for index in 0..(MAX_OPERATION_LABELS * 2) {
            bounded_operation_label(&format!("Generated{index}"));
        }
        assert_eq!(bounded_operation_label("OneTooMany"), "other");
        assert_eq!(bounded_operation_label("Viewer"), "Viewer");
    }
}
