//! What Rappel announces, and to whom: the outbox rows for a request event (an email per
//! notified contact, a webhook per endpoint that subscribed). Written by the caller in the same
//! transaction as the change it announces; sent later by the delivery worker.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

use crate::db::clients::Contact;
use crate::db::outbox::{NewDelivery, WebhookEndpoint};
use crate::db::work::InformationRequest;
use crate::domain::payload::{RequestSnapshot, request_event_body};
use crate::domain::{DeliveryEvent, DeliveryKind, DeliveryStatus};

/// The recipients of one request event.
pub struct Recipients<'a> {
    /// Contacts emailed (only for events clients are told about: created and reminder).
    pub contacts: &'a [Contact],
    pub endpoints: &'a [WebhookEndpoint],
}

/// Which occurrence of an event a delivery announces, beyond the request and the recipient.
#[derive(Debug, Clone, Copy)]
pub enum Occurrence {
    /// The event happens once per request (created).
    Once,
    /// A follow-up reminder: its number (shown to receivers) and its date (what makes it
    /// unique, so renumbering after a policy change does not send the same day's twice).
    Reminder { number: u32, date: NaiveDate },
    /// An event that may repeat (answered, closed): each happening is its own delivery.
    At(DateTime<Utc>),
    /// A reminder a staff member sent at once (`remindRequest`): its number, and the instant
    /// that makes it unique (its key suffix starts with `now-`).
    ReminderNow { number: u32, at: DateTime<Utc> },
}

impl Occurrence {
    fn key_suffix(self) -> Option<String> {
        match self {
            Occurrence::Once => None,
            Occurrence::Reminder { date, .. } => Some(date.to_string()),
            Occurrence::At(instant) => Some(instant.timestamp_micros().to_string()),
            Occurrence::ReminderNow { at, .. } => Some(format!("now-{}", at.timestamp_micros())),
        }
    }

    fn reminder_number(self) -> Option<u32> {
        match self {
            Occurrence::Reminder { number, .. } | Occurrence::ReminderNow { number, .. } => {
                Some(number)
            }
            _ => None,
        }
    }
}

/// The deliveries of `event` about `request`: one email per contact, one webhook per enabled
/// endpoint that wants the event and covers the request's client.
pub fn deliveries_for_event(
    request: &InformationRequest,
    event: DeliveryEvent,
    recipients: &Recipients<'_>,
    now: DateTime<Utc>,
    email_time: NaiveDateTime,
    occurrence: Occurrence,
) -> Vec<NewDelivery> {
    let reminder_number = occurrence.reminder_number();
    let snapshot = RequestSnapshot::new(
        request.id,
        request.firm_id,
        request.client_id,
        &request.text,
        request.due_date,
        request.status,
        request.created_on,
    );
    let body = request_event_body(event, now, &snapshot, reminder_number);
    let mut deliveries = Vec::new();
    for contact in recipients.contacts {
        if contact.client_id != request.client_id {
            continue;
        }
        deliveries.push(new_delivery(
            request,
            event,
            DeliveryKind::Email,
            (Some(contact.id), None),
            contact.email.clone(),
            body.clone(),
            (email_time, now.naive_utc()),
            occurrence,
        ));
    }
    for endpoint in recipients.endpoints {
        let for_client = endpoint
            .client_id
            .is_none_or(|client_id| client_id == request.client_id);
        if endpoint.enabled && for_client && endpoint.wants(event) {
            deliveries.push(new_delivery(
                request,
                event,
                DeliveryKind::Webhook,
                (None, Some(endpoint.id)),
                endpoint.url.clone(),
                body.clone(),
                (now.naive_utc(), now.naive_utc()),
                occurrence,
            ));
        }
    }
    deliveries
}

/// A delivery row for a request event. Its dedupe key makes enqueuing idempotent: the same
/// event for the same request and recipient is enqueued once, whoever tries again.
#[expect(clippy::too_many_arguments, reason = "a private row constructor")]
fn new_delivery(
    request: &InformationRequest,
    event: DeliveryEvent,
    kind: DeliveryKind,
    (contact_id, webhook_endpoint_id): (Option<i64>, Option<i64>),
    target: String,
    payload: String,
    (next_attempt_at, now): (NaiveDateTime, NaiveDateTime),
    occurrence: Occurrence,
) -> NewDelivery {
    let recipient = match (contact_id, webhook_endpoint_id) {
        (Some(contact_id), _) => format!("contact:{contact_id}"),
        (None, Some(endpoint_id)) => format!("endpoint:{endpoint_id}"),
        (None, None) => "none".to_string(),
    };
    let dedupe_key = match occurrence.key_suffix() {
        Some(suffix) => format!("{}:{}:{recipient}:{suffix}", event.as_str(), request.id),
        None => format!("{}:{}:{recipient}", event.as_str(), request.id),
    };
    NewDelivery {
        firm_id: request.firm_id,
        delivery_uid: new_delivery_uid(),
        dedupe_key,
        kind,
        event,
        request_id: Some(request.id),
        contact_id,
        webhook_endpoint_id,
        target,
        payload,
        status: DeliveryStatus::Pending,
        next_attempt_at,
        created_at: now,
    }
}

/// A stable, unique delivery id (`msg_` + 32 hex digits): the email's Message-ID and the
/// webhook's `webhook-id`, unchanged across retries.
pub fn new_delivery_uid() -> String {
    format!("msg_{}", uuid::Uuid::new_v4().simple())
}
