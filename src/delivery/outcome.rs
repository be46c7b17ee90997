//! Recording an attempt: what one try of a delivery (sent, failed, skipped, deferred) makes
//! of it: its next state, when a transient failure is retried (exponential backoff with
//! jitter, a `Retry-After` honoured up to a bound), when it is given up (DEAD), and the error
//! text kept and logged (clipped, addresses redacted). Pure rules: the worker
//! (`super::outbox`) claims, sends, and writes what these decide.

use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};

use super::webhook::MAX_RETRY_AFTER;
use crate::db::claims::{AttemptOutcome, DeliveryState};
use crate::db::outbox::Delivery;
use crate::domain::DeliveryStatus;

/// Longest error text kept on a delivery or an attempt.
const MAX_ERROR_CHARS: usize = 1000;
/// What happened when a delivery was tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// The SMTP server or the endpoint accepted it.
    Sent { response_code: Option<u16> },
    /// It was refused or could not be sent; `transient` failures are retried.
    Failed {
        transient: bool,
        response_code: Option<u16>,
        error: String,
        retry_after: Option<Duration>,
    },
    /// Not sent because it no longer makes sense (request answered, contact unsubscribed,
    /// endpoint disabled or deleted).
    Skipped { reason: String },
    /// Not sent yet: a client email whose turn came outside the firm's daytime (a backlog, a
    /// worker that was down) waits for the next local sending hour. Not an attempt.
    Deferred { until: DateTime<Utc> },
}

/// When retries happen and when they stop.
#[derive(Debug, Clone, Copy)]
pub struct RetryRule {
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

/// The delay before the retry that follows the `failures`-th failed attempt: `initial`
/// doubled per failure, capped at `max`, with "equal jitter" (a random point of the upper
/// half, `jitter` in [0, 1)), and never shorter than a `Retry-After` the receiver asked for
/// (itself capped at a day).
pub fn retry_delay(
    failures: u32,
    initial: Duration,
    max: Duration,
    retry_after: Option<Duration>,
    jitter: f64,
) -> Duration {
    let exponent = failures.saturating_sub(1).min(31);
    let base = initial.saturating_mul(1u32 << exponent).min(max);
    let half = base / 2;
    let jittered = half + half.mul_f64(jitter.clamp(0.0, 1.0));
    match retry_after {
        Some(asked) => jittered.max(asked.min(MAX_RETRY_AFTER)),
        None => jittered,
    }
}

/// The state a delivery moves to after `attempt` at `now`, and the outcome of the attempt row
/// to record (none for a skip: nothing was attempted).
pub fn next_state(
    delivery: &Delivery,
    attempt: &Attempt,
    now: NaiveDateTime,
    rule: &RetryRule,
    jitter: f64,
) -> (DeliveryState, Option<AttemptOutcome>) {
    let attempts = delivery.attempts.saturating_add(1);
    let settled = |status, last_error: Option<String>, delivered_at| DeliveryState {
        status,
        attempts,
        next_attempt_at: delivery.next_attempt_at,
        lease_until: None,
        leased_by: None,
        last_error,
        delivered_at,
    };
    match attempt {
        Attempt::Sent { .. } => (
            settled(DeliveryStatus::Delivered, None, Some(now)),
            Some(AttemptOutcome::Delivered),
        ),
        Attempt::Failed {
            transient: false,
            error,
            ..
        } => (
            settled(DeliveryStatus::Failed, Some(clip(error)), None),
            Some(AttemptOutcome::PermanentFailure),
        ),
        Attempt::Failed {
            transient: true,
            error,
            retry_after,
            ..
        } => {
            let used = u32::try_from(attempts).unwrap_or(u32::MAX);
            if used >= rule.max_attempts {
                let error = format!("{} (gave up after {used} attempts)", clip(error));
                return (
                    settled(DeliveryStatus::Dead, Some(error), None),
                    Some(AttemptOutcome::TransientFailure),
                );
            }
            let delay = retry_delay(
                used,
                rule.initial_backoff,
                rule.max_backoff,
                *retry_after,
                jitter,
            );
            let delay = chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::days(1));
            (
                DeliveryState {
                    next_attempt_at: now + delay,
                    ..settled(DeliveryStatus::Pending, Some(clip(error)), None)
                },
                Some(AttemptOutcome::TransientFailure),
            )
        }
        Attempt::Deferred { until } => (
            DeliveryState {
                attempts: delivery.attempts,
                next_attempt_at: until.naive_utc(),
                ..settled(DeliveryStatus::Pending, delivery.last_error.clone(), None)
            },
            None,
        ),
        Attempt::Skipped { reason } => (
            DeliveryState {
                attempts: delivery.attempts,
                ..settled(
                    DeliveryStatus::Skipped,
                    Some(clip(&format!("not sent: {reason}"))),
                    None,
                )
            },
            None,
        ),
    }
}

/// An error text cut to what a delivery or an attempt keeps.
pub(super) fn clip(text: &str) -> String {
    if text.chars().count() <= MAX_ERROR_CHARS {
        text.to_string()
    } else {
        let mut clipped: String = text.chars().take(MAX_ERROR_CHARS).collect();
        clipped.push('…');
        clipped
    }
}

/// An error text fit for logs: every email address keeps its first character and domain
/// only (SMTP replies often quote the recipient).
pub fn redact_addresses(text: &str) -> String {
    text.split_inclusive(|c: char| c.is_whitespace() || "<>()[],;:\"'".contains(c))
        .map(|word| {
            let trimmed =
                word.trim_end_matches(|c: char| c.is_whitespace() || "<>()[],;:\"'".contains(c));
            let tail = &word[trimmed.len()..];
            match trimmed.split_once('@') {
                Some((local, domain)) if !local.is_empty() && domain.contains('.') => {
                    let first: String = local.chars().take(1).collect();
                    format!("{first}***@{domain}{tail}")
                }
                _ => word.to_string(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{DeliveryEvent, DeliveryKind};

    const SECOND: Duration = Duration::from_secs(1);

    fn delivery(attempts: i32) -> Delivery {
        let at = chrono::NaiveDate::from_ymd_opt(2027, 1, 20)
            .and_then(|day| day.and_hms_opt(9, 0, 0))
            .expect("valid instant");
        Delivery {
            id: 1,
            firm_id: 1,
            delivery_uid: "msg_1".into(),
            dedupe_key: "k".into(),
            kind: DeliveryKind::Webhook,
            event: DeliveryEvent::RequestCreated,
            request_id: Some(1),
            contact_id: None,
            webhook_endpoint_id: Some(1),
            target: "https://hooks.example.com".into(),
            payload: "{}".into(),
            status: DeliveryStatus::Pending,
            attempts,
            next_attempt_at: at,
            lease_until: Some(at),
            leased_by: Some("w".into()),
            last_error: None,
            delivered_at: None,
            created_at: at,
        }
    }

    fn rule() -> RetryRule {
        RetryRule {
            max_attempts: 4,
            initial_backoff: 30 * SECOND,
            max_backoff: 600 * SECOND,
        }
    }

    fn transient(retry_after: Option<Duration>) -> Attempt {
        Attempt::Failed {
            transient: true,
            response_code: Some(503),
            error: "endpoint answered HTTP 503".into(),
            retry_after,
        }
    }

    #[test]
    fn the_backoff_doubles_per_failure_within_its_jitter_band_and_stops_at_the_cap() {
        for (failures, base) in [(1, 30), (2, 60), (3, 120), (4, 240), (5, 480), (6, 600)] {
            let base = base * SECOND;
            let low = retry_delay(failures, 30 * SECOND, 600 * SECOND, None, 0.0);
            let high = retry_delay(failures, 30 * SECOND, 600 * SECOND, None, 0.999_999);
            assert_eq!(low, base / 2, "failure {failures}");
            assert!(
                high <= base && high > base * 99 / 100,
                "failure {failures}: {high:?}"
            );
        }
        assert_eq!(
            retry_delay(u32::MAX, 30 * SECOND, 600 * SECOND, None, 0.0),
            300 * SECOND
        );
    }

    #[test]
    fn a_retry_after_longer_than_the_backoff_is_honoured_and_capped_at_a_day() {
        assert_eq!(
            retry_delay(1, 30 * SECOND, 600 * SECOND, Some(3600 * SECOND), 0.5),
            3600 * SECOND
        );
        assert_eq!(
            retry_delay(3, 30 * SECOND, 600 * SECOND, Some(SECOND), 0.0),
            60 * SECOND
        );
        assert_eq!(
            retry_delay(
                1,
                SECOND,
                SECOND,
                Some(Duration::from_secs(10 * 86_400)),
                0.0
            ),
            MAX_RETRY_AFTER
        );
    }

    #[test]
    fn a_transient_failure_is_retried_later_until_the_attempts_run_out() {
        let now = delivery(0).next_attempt_at;
        let (state, outcome) = next_state(&delivery(0), &transient(None), now, &rule(), 0.0);
        assert_eq!(state.status, DeliveryStatus::Pending);
        assert_eq!(state.attempts, 1);
        assert_eq!(state.next_attempt_at, now + chrono::Duration::seconds(15));
        assert_eq!(state.lease_until, None);
        assert_eq!(outcome, Some(AttemptOutcome::TransientFailure));

        let (state, _) = next_state(
            &delivery(1),
            &transient(Some(120 * SECOND)),
            now,
            &rule(),
            0.0,
        );
        assert_eq!(state.next_attempt_at, now + chrono::Duration::seconds(120));

        let (state, outcome) = next_state(&delivery(3), &transient(None), now, &rule(), 0.0);
        assert_eq!(state.status, DeliveryStatus::Dead);
        assert_eq!(state.attempts, 4);
        assert_eq!(outcome, Some(AttemptOutcome::TransientFailure));
        assert!(
            state
                .last_error
                .as_deref()
                .is_some_and(|error| error.contains("gave up after 4 attempts"))
        );
    }

    #[test]
    fn a_permanent_failure_fails_at_once_and_a_success_is_delivered() {
        let now = delivery(0).next_attempt_at;
        let refused = Attempt::Failed {
            transient: false,
            response_code: Some(550),
            error: "550 mailbox unavailable".into(),
            retry_after: None,
        };
        let (state, outcome) = next_state(&delivery(0), &refused, now, &rule(), 0.5);
        assert_eq!(state.status, DeliveryStatus::Failed);
        assert_eq!(state.attempts, 1);
        assert_eq!(outcome, Some(AttemptOutcome::PermanentFailure));

        let sent = Attempt::Sent {
            response_code: Some(200),
        };
        let (state, outcome) = next_state(&delivery(2), &sent, now, &rule(), 0.5);
        assert_eq!(state.status, DeliveryStatus::Delivered);
        assert_eq!(state.delivered_at, Some(now));
        assert_eq!(state.last_error, None);
        assert_eq!(outcome, Some(AttemptOutcome::Delivered));
    }

    #[test]
    fn a_skipped_delivery_is_marked_skipped_with_its_reason_and_records_no_attempt() {
        let now = delivery(0).next_attempt_at;
        let skipped = Attempt::Skipped {
            reason: "the request was answered before sending".into(),
        };
        let (state, outcome) = next_state(&delivery(1), &skipped, now, &rule(), 0.5);
        assert_eq!(state.status, DeliveryStatus::Skipped);
        assert_eq!(state.attempts, 1);
        assert_eq!(
            state.last_error.as_deref(),
            Some("not sent: the request was answered before sending")
        );
        assert_eq!(outcome, None);
    }

    #[test]
    fn email_addresses_are_redacted_from_logged_errors() {
        assert_eq!(
            redact_addresses("550 5.1.1 <marie.martin@example.fr>: user unknown"),
            "550 5.1.1 <m***@example.fr>: user unknown"
        );
        assert_eq!(redact_addresses("no address here"), "no address here");
    }
}
