//! Delivery: what makes the outbox leave. The worker (`outbox`) claims due deliveries with a
//! lease, sends each one as an email (rendered by `email`, sent by `mailer`) or a signed
//! webhook (`webhook`), and records every attempt as `outcome` decides (next state, retry with
//! backoff, dead); the follow-up pass (`reminders`) enqueues reminders on each service's policy
//! dates. This module also holds the small rules the operations and the web layer call:
//! webhook endpoint checks and `redeliver` (the one-click unsubscribe is `ops::portal`'s).
//!
//! Delivery is at least once: a worker that dies between sending and recording leaves its
//! lease to expire, and the row is sent again with the same Message-ID / `webhook-id`, which
//! receivers use to deduplicate. Nothing here ever puts a firm-only field (a task, a service or
//! mission name) into what leaves for a client, and nothing logs a token, a secret or a full
//! email address.

pub mod answer_notice;
mod batch;
pub mod digest;
pub mod email;
pub mod mailer;
pub mod outbox;
pub mod outcome;
pub mod reminders;
pub mod smtp;
pub mod webhook;
// Replies by email (issue 15): the confirmation a client gets.
pub mod reply_confirmation;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;

use crate::config::Config;
use crate::db::firms::Firm;
use crate::domain::calendar::{next_sending_time, parse_time_zone};
use crate::domain::{DeliveryEvent, Language};

pub use outbox::{Worker, WorkerHandle};

/// The events a webhook endpoint may subscribe to.
pub const WEBHOOK_EVENTS: [DeliveryEvent; 4] = [
    DeliveryEvent::RequestCreated,
    DeliveryEvent::RequestReminder,
    DeliveryEvent::RequestAnswered,
    DeliveryEvent::RequestClosed,
];

/// Longest webhook URL accepted.
pub const MAX_WEBHOOK_URL_CHARS: usize = 2000;

/// What the worker needs from the configuration.
#[derive(Debug, Clone)]
pub struct DeliverySettings {
    /// Attempts before a delivery is dead.
    pub max_attempts: u32,
    /// First retry delay; each retry doubles it, with jitter.
    pub initial_backoff: Duration,
    /// Longest delay between two retries.
    pub max_backoff: Duration,
    /// How long a claimed delivery stays leased to one worker.
    pub lease: Duration,
    /// Deliveries one worker sends at once.
    pub concurrency: usize,
    /// How often an idle worker looks for due rows it was not woken for.
    pub poll_interval: Duration,
    /// Local hour client emails leave at when the firm sets none.
    pub default_sending_hour: u32,
    /// Base of the links in emails (`https://rappel.example`).
    pub public_base_url: String,
    /// Lifetime of the portal link of an email (`[portal] link_days`).
    pub sign_in_link_lifetime: chrono::Duration,
    /// Envelope sender and From address.
    pub from_address: String,
    /// Continuous failure after which a webhook endpoint is disabled.
    pub disable_endpoint_after: chrono::Duration,
    /// `[inbound]` reply address (local part, domain) when replies by email are on.
    pub reply_address: Option<(String, String)>,
}

impl DeliverySettings {
    /// The settings of a configuration.
    pub fn from_config(config: &Config) -> Self {
        Self {
            max_attempts: config.delivery.max_attempts.max(1),
            initial_backoff: Duration::from_secs(u64::from(
                config.delivery.initial_backoff_seconds,
            )),
            max_backoff: Duration::from_secs(u64::from(config.delivery.max_backoff_seconds)),
            lease: Duration::from_secs(u64::from(config.delivery.lease_seconds.max(1))),
            concurrency: usize::try_from(config.delivery.concurrency.max(1)).unwrap_or(1),
            poll_interval: Duration::from_secs(u64::from(
                config.delivery.poll_interval_seconds.max(1),
            )),
            default_sending_hour: config.delivery.sending_hour,
            public_base_url: config.public_base_url.trim_end_matches('/').to_string(),
            sign_in_link_lifetime: chrono::Duration::days(i64::from(config.portal.link_days)),
            from_address: config.smtp.from_address.clone(),
            disable_endpoint_after: chrono::Duration::days(i64::from(
                config.webhooks.disable_after_days,
            )),
            reply_address: config
                .inbound
                .reply_address()
                .map(|(local, domain)| (local.to_string(), domain.to_string())),
        }
    }
}

/// Wakes this process's worker when rows arrive (new requests, redeliveries, reminders).
/// Cheap to clone; a wake with nobody waiting is kept for the next wait.
#[derive(Debug, Clone, Default)]
pub struct DeliveryWaker(Arc<Notify>);

impl DeliveryWaker {
    /// Tells the worker to look for due rows now.
    pub fn wake(&self) {
        self.0.notify_one();
    }

    pub(crate) async fn woken(&self) {
        self.0.notified().await;
    }
}

/// What the GraphQL layer needs from delivery: the webhook URL rule, the default sending
/// hour (for `redeliver`) and the worker's waker.
#[derive(Debug, Clone)]
pub struct DeliveryControl {
    /// Whether webhook URLs may use plain http and private addresses (development, tests).
    pub allow_private_addresses: bool,
    pub default_sending_hour: u32,
    pub waker: DeliveryWaker,
    /// The firm-wide reminder policy (what `remindRequest` counts against).
    pub reminder_defaults: reminders::ReminderPolicy,
    /// Base of the links Rappel hands out (calendar feed URLs); empty: paths only.
    pub public_base_url: String,
}

impl Default for DeliveryControl {
    fn default() -> Self {
        Self {
            allow_private_addresses: false,
            default_sending_hour: 8,
            waker: DeliveryWaker::default(),
            reminder_defaults: reminders::ReminderPolicy {
                days_before: 3,
                on_due_date: true,
                every_days: 7,
                max_count: 3,
            },
            public_base_url: String::new(),
        }
    }
}

impl DeliveryControl {
    /// The controls of a configuration, waking `waker`.
    pub fn from_config(config: &Config, waker: DeliveryWaker) -> Self {
        Self {
            allow_private_addresses: config.webhooks.allow_private_addresses,
            default_sending_hour: config.delivery.sending_hour,
            waker,
            reminder_defaults: reminders::ReminderPolicy::from_config(config),
            public_base_url: config.public_base_url.trim_end_matches('/').to_string(),
        }
    }
}

/// Reads the event names a webhook endpoint subscribes to; returns them comma-separated in
/// the canonical order, or a message naming the unknown one.
pub fn parse_webhook_events(names: &[String]) -> Result<String, String> {
    if names.is_empty() {
        return Err("subscribe to at least one event".into());
    }
    let mut chosen = Vec::new();
    for name in names {
        let name = name.trim();
        let Some(event) = WEBHOOK_EVENTS.iter().find(|event| event.as_str() == name) else {
            let known: Vec<&str> = WEBHOOK_EVENTS.iter().map(|event| event.as_str()).collect();
            return Err(format!(
                "{name:?} is not an event; expected one of {}",
                known.join(", ")
            ));
        };
        if !chosen.contains(event) {
            chosen.push(*event);
        }
    }
    Ok(WEBHOOK_EVENTS
        .iter()
        .filter(|event| chosen.contains(event))
        .map(|event| event.as_str())
        .collect::<Vec<_>>()
        .join(","))
}

/// Checks a webhook URL when it is saved: https only and a public address (what its name
/// resolves to now), unless private addresses are allowed. The worker checks again at send
/// time, on the addresses it connects to.
pub async fn check_endpoint_url(url: &str, allow_private: bool) -> Result<String, String> {
    let url = url.trim();
    if url.chars().count() > MAX_WEBHOOK_URL_CHARS {
        return Err(format!(
            "a webhook URL has at most {MAX_WEBHOOK_URL_CHARS} characters"
        ));
    }
    let parsed =
        webhook::check_url_syntax(url, allow_private).map_err(|rejected| rejected.to_string())?;
    webhook::resolve_and_check(&parsed, allow_private)
        .await
        .map_err(|rejected| rejected.to_string())?;
    Ok(parsed.to_string())
}

/// When a client email about `firm`'s requests may leave, from `at`: at once in the firm's
/// local daytime, otherwise at its next local sending hour.
pub fn client_email_time(
    firm: &Firm,
    at: DateTime<Utc>,
    default_sending_hour: u32,
) -> DateTime<Utc> {
    let zone = parse_time_zone(&firm.time_zone).unwrap_or(chrono_tz::Europe::Paris);
    let hour = firm
        .sending_hour
        .and_then(|hour| u32::try_from(hour).ok())
        .unwrap_or(default_sending_hour);
    next_sending_time(at, zone, hour)
}

/// The language of a firm's emails (its locale; French when unreadable).
pub fn firm_language(firm: &Firm) -> Language {
    firm.locale.parse().unwrap_or(Language::French)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_events_are_read_deduplicated_and_kept_in_canonical_order() {
        let names = vec![
            "information_request.closed".to_string(),
            " information_request.created ".to_string(),
            "information_request.closed".to_string(),
        ];
        assert_eq!(
            parse_webhook_events(&names).as_deref(),
            Ok("information_request.created,information_request.closed")
        );
    }

    #[test]
    fn an_unknown_or_internal_event_is_refused_by_name() {
        let error = parse_webhook_events(&["task.created".to_string()]).expect_err("unknown");
        assert!(error.contains("task.created"), "{error}");
        assert!(parse_webhook_events(&["webhook_endpoint.disabled".to_string()]).is_err());
        assert!(parse_webhook_events(&[]).is_err());
    }
}
