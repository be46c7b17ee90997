//! "Remind now": a staff member sends the client a follow-up reminder at once, through the
//! outbox like the scheduled ones (an email per notified contact, the reminder webhooks), and
//! counted against the same policy: a request that already had its policy's maximum number of
//! reminders, or that is not OPEN, is refused and nothing is enqueued.
//!
//! Never here: sending itself (the delivery worker does), or a firm-only field in what the
//! client receives (the outbox rows carry the request's client-facing text only).

use chrono::Utc;

use super::journal::{self, Entry};
use super::{Actor, Env, OpError, found};
use crate::announce::{Occurrence, Recipients, deliveries_for_event};
use crate::db::work::{self, InformationRequest};
use crate::db::{claims, clients, outbox};
use crate::delivery::reminders::ReminderPolicy;
use crate::domain::{DeliveryEvent, RequestStatus};
use crate::transaction;

/// What a reminder sent at once enqueued.
#[derive(Debug, Clone)]
pub struct Reminded {
    pub request: InformationRequest,
    /// This reminder's number (1 for the request's first reminder, scheduled ones included).
    pub number: u32,
    /// Outbox rows enqueued (emails and webhooks).
    pub deliveries: usize,
}

/// How many reminders the dedupe keys of a request's reminder deliveries stand for: one per
/// distinct occurrence suffix (a scheduled reminder's date, or `now-…`).
pub fn reminders_counted(keys: &[String]) -> u32 {
    let mut suffixes: Vec<&str> = keys
        .iter()
        .filter_map(|key| key.rsplit_once(':').map(|(_, suffix)| suffix))
        .collect();
    suffixes.sort_unstable();
    suffixes.dedup();
    u32::try_from(suffixes.len()).unwrap_or(u32::MAX)
}

/// Sends a reminder for an OPEN request now, within its service's reminder policy (or
/// `defaults`): BAD_USER_INPUT on `id` past the policy's maximum, for a request not OPEN, or
/// for a client without a contact to notify.
pub async fn remind_request(
    env: Env<'_>,
    actor: &Actor,
    id: i64,
    defaults: &ReminderPolicy,
) -> Result<Reminded, OpError> {
    let firm_id = actor.firm_side()?.firm_id;
    let mut conn = env.pool.get().await?;
    let mut db = conn.as_db();
    let request = found(
        work::find_request(&mut db, firm_id, id).await,
        "information request",
    )?;
    if request.status != RequestStatus::Open {
        return Err(OpError::bad_input(
            "id",
            format!(
                "only an OPEN request can be reminded; this one is {}",
                request.status.as_str()
            ),
        ));
    }
    let (days_before, on_due_date, every_days, max_count) =
        claims::reminder_policy_of_request(&mut db, firm_id, id).await?;
    let policy = defaults.with_overrides(days_before, on_due_date, every_days, max_count);
    let sent = reminders_counted(&claims::reminder_keys_of_request(&mut db, firm_id, id).await?);
    if sent >= policy.max_count {
        return Err(OpError::bad_input(
            "id",
            format!(
                "this request already had {sent} reminders, the most its reminder policy allows ({})",
                policy.max_count
            ),
        ));
    }
    let client = found(
        clients::find_client(&mut db, firm_id, request.client_id).await,
        "client",
    )?;
    if client.archived_at.is_some() {
        return Err(OpError::bad_input("id", "the request's client is archived"));
    }
    let contacts =
        clients::list_notified_contacts_of_clients(&mut db, firm_id, &[request.client_id]).await?;
    if contacts.is_empty() {
        return Err(OpError::bad_input(
            "id",
            "the client has no contact who receives emails",
        ));
    }
    let endpoints = outbox::endpoints_for_client(&mut db, firm_id, request.client_id).await?;
    let now = Utc::now();
    let number = sent + 1;
    let rows = deliveries_for_event(
        &request,
        DeliveryEvent::RequestReminder,
        &Recipients {
            contacts: &contacts,
            endpoints: &endpoints,
        },
        now,
        now.naive_utc(),
        Occurrence::ReminderNow { number, at: now },
    );
    let deliveries = transaction!(conn, |tx| {
        let enqueued = outbox::enqueue_many(&mut tx, &rows).await?;
        journal::record(
            &mut tx,
            actor,
            now.naive_utc(),
            &[Entry::new("request.reminded", "request", request.id)
                .client(request.client_id)
                .mission(request.mission_id)
                .detail(serde_json::json!({ "number": number, "deliveries": enqueued }))],
        )
        .await?;
        Ok::<_, OpError>(enqueued)
    })?;
    Ok(Reminded {
        request,
        number,
        deliveries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_reminder_counts_once_whatever_its_recipients() {
        let keys: Vec<String> = [
            "information_request.reminder:7:contact:1:2027-01-27",
            "information_request.reminder:7:endpoint:2:2027-01-27",
            "information_request.reminder:7:contact:1:now-1700000000000000",
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        assert_eq!(reminders_counted(&keys), 2);
        assert_eq!(reminders_counted(&[]), 0);
    }
}
