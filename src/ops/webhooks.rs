//! Webhook endpoints (admins: create, update, disable, enable, rotate the secret, delete) and
//! redelivery of a failed delivery (any staff member). A URL is checked on save (https,
//! public addresses unless the delivery rules allow private ones) and again by the worker at
//! send time. A secret is returned once, when created or rotated.

use chrono::Utc;

use crate::transaction;

use super::journal::{self, Entry};
use super::{Actor, Env, OpError, found};
use crate::db::outbox::{self, Delivery, EndpointChanges, NewWebhookEndpoint, WebhookEndpoint};
use crate::db::{claims, clients, firms};
use crate::delivery::webhook::generate_secret;
use crate::delivery::{
    DeliveryControl, check_endpoint_url, outbox::redeliver, parse_webhook_events,
};

/// Longest reason an admin may give when disabling an endpoint.
pub const MAX_REASON_CHARS: usize = 500;

/// An endpoint and its signing secret, shown this once.
pub struct EndpointWithSecret {
    pub endpoint: WebhookEndpoint,
    pub secret: String,
}

/// Changes to an endpoint (None: unchanged; `client_id: Some(None)`: every client).
#[derive(Debug, Clone, Default)]
pub struct EndpointUpdate {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub client_id: Option<Option<i64>>,
}

async fn checked_url(control: &DeliveryControl, url: &str) -> Result<String, OpError> {
    check_endpoint_url(url, control.allow_private_addresses)
        .await
        .map_err(|reason| OpError::bad_input("url", reason))
}

fn checked_events(events: &[String]) -> Result<String, OpError> {
    parse_webhook_events(events).map_err(|reason| OpError::bad_input("events", reason))
}

/// A client of the firm (NOT_FOUND for another firm's).
async fn checked_client(env: Env<'_>, firm_id: i64, client_id: i64) -> Result<i64, OpError> {
    let mut conn = env.pool.get().await?;
    found(
        clients::find_client(&mut conn.as_db(), firm_id, client_id).await,
        "client",
    )?;
    Ok(client_id)
}

/// Adds an endpoint that receives `events` for every client, or for `client_id` only.
pub async fn create_endpoint(
    env: Env<'_>,
    control: &DeliveryControl,
    actor: &Actor,
    url: &str,
    events: &[String],
    client_id: Option<i64>,
) -> Result<EndpointWithSecret, OpError> {
    let firm_id = actor.admin()?.firm_id;
    let events = checked_events(events)?;
    let client_id = match client_id {
        Some(id) => Some(checked_client(env, firm_id, id).await?),
        None => None,
    };
    let url = checked_url(control, url).await?;
    let secret = generate_secret();
    let now = Utc::now().naive_utc();
    let mut conn = env.pool.get().await?;
    let endpoint = transaction!(conn, |tx| {
        let endpoint = outbox::insert_endpoint(
            &mut tx,
            &NewWebhookEndpoint {
                firm_id,
                client_id,
                url: &url,
                events: &events,
                secret: &secret,
                enabled: true,
                created_at: now,
                updated_at: now,
            },
        )
        .await?;
        record(&mut tx, actor, now, "webhook.created", &endpoint).await?;
        Ok::<_, OpError>(endpoint)
    })?;
    tracing::info!(
        firm_id,
        endpoint_id = endpoint.id,
        "webhook endpoint created"
    );
    Ok(EndpointWithSecret { endpoint, secret })
}

/// Changes an endpoint's URL, events or client.
pub async fn update_endpoint(
    env: Env<'_>,
    control: &DeliveryControl,
    actor: &Actor,
    id: i64,
    update: &EndpointUpdate,
) -> Result<WebhookEndpoint, OpError> {
    let firm_id = actor.admin()?.firm_id;
    let events = update.events.as_deref().map(checked_events).transpose()?;
    let client_id = match update.client_id {
        None => None,
        Some(None) => Some(None),
        Some(Some(client)) => Some(Some(checked_client(env, firm_id, client).await?)),
    };
    let url = match &update.url {
        Some(url) => Some(checked_url(control, url).await?),
        None => None,
    };
    let mut conn = env.pool.get().await?;
    let now = Utc::now().naive_utc();
    transaction!(conn, |tx| {
        let endpoint = found(
            outbox::update_endpoint(
                &mut tx,
                firm_id,
                id,
                &EndpointChanges {
                    url: url.as_deref(),
                    events: events.as_deref(),
                    client_id,
                    updated_at: now,
                },
            )
            .await,
            "webhook endpoint",
        )?;
        record(&mut tx, actor, now, "webhook.updated", &endpoint).await?;
        Ok::<_, OpError>(endpoint)
    })
}

/// Journals a change of `endpoint` (its URL is in the detail, never its secret).
async fn record(
    tx: &mut crate::db::DbConn<'_>,
    actor: &Actor,
    now: chrono::NaiveDateTime,
    kind: &'static str,
    endpoint: &WebhookEndpoint,
) -> Result<(), OpError> {
    let mut entry = Entry::new(kind, "webhook_endpoint", endpoint.id)
        .detail(serde_json::json!({ "url": endpoint.url }));
    if let Some(client_id) = endpoint.client_id {
        entry = entry.client(client_id);
    }
    journal::record(tx, actor, now, &[entry]).await
}

/// Stops sending to an endpoint; its pending deliveries are not sent.
pub async fn disable_endpoint(
    env: Env<'_>,
    actor: &Actor,
    id: i64,
    reason: Option<&str>,
) -> Result<WebhookEndpoint, OpError> {
    let firm_id = actor.admin()?.firm_id;
    let reason = reason
        .map(|reason| {
            reason
                .trim()
                .chars()
                .take(MAX_REASON_CHARS)
                .collect::<String>()
        })
        .filter(|reason| !reason.is_empty())
        .unwrap_or_else(|| "disabled by an admin".to_string());
    let mut conn = env.pool.get().await?;
    let now = Utc::now().naive_utc();
    transaction!(conn, |tx| {
        let endpoint = found(
            outbox::set_endpoint_enabled(&mut tx, firm_id, id, false, Some(&reason), now).await,
            "webhook endpoint",
        )?;
        record(&mut tx, actor, now, "webhook.disabled", &endpoint).await?;
        Ok::<_, OpError>(endpoint)
    })
}

/// Sends to an endpoint again (its URL is checked again; its failure streak starts over).
pub async fn enable_endpoint(
    env: Env<'_>,
    control: &DeliveryControl,
    actor: &Actor,
    id: i64,
) -> Result<WebhookEndpoint, OpError> {
    let firm_id = actor.admin()?.firm_id;
    let current = {
        let mut conn = env.pool.get().await?;
        found(
            outbox::find_endpoint(&mut conn.as_db(), firm_id, id).await,
            "webhook endpoint",
        )?
    };
    checked_url(control, &current.url).await?;
    let mut conn = env.pool.get().await?;
    let now = Utc::now().naive_utc();
    transaction!(conn, |tx| {
        let endpoint = found(
            outbox::set_endpoint_enabled(&mut tx, firm_id, id, true, None, now).await,
            "webhook endpoint",
        )?;
        record(&mut tx, actor, now, "webhook.enabled", &endpoint).await?;
        Ok::<_, OpError>(endpoint)
    })
}

/// Replaces an endpoint's signing secret; the new one signs every delivery from now on.
pub async fn rotate_secret(
    env: Env<'_>,
    actor: &Actor,
    id: i64,
) -> Result<EndpointWithSecret, OpError> {
    let firm_id = actor.admin()?.firm_id;
    let secret = generate_secret();
    let mut conn = env.pool.get().await?;
    let now = Utc::now().naive_utc();
    let endpoint = transaction!(conn, |tx| {
        let endpoint = found(
            outbox::set_endpoint_secret(&mut tx, firm_id, id, &secret, now).await,
            "webhook endpoint",
        )?;
        record(&mut tx, actor, now, "webhook.rotated", &endpoint).await?;
        Ok::<_, OpError>(endpoint)
    })?;
    tracing::info!(firm_id, endpoint_id = endpoint.id, "webhook secret rotated");
    Ok(EndpointWithSecret { endpoint, secret })
}

/// Deletes an endpoint; its past deliveries stay in the outbox.
pub async fn delete_endpoint(env: Env<'_>, actor: &Actor, id: i64) -> Result<(), OpError> {
    let firm_id = actor.admin()?.firm_id;
    let mut conn = env.pool.get().await?;
    let endpoint = found(
        outbox::find_endpoint(&mut conn.as_db(), firm_id, id).await,
        "webhook endpoint",
    )?;
    let now = Utc::now().naive_utc();
    transaction!(conn, |tx| {
        if !outbox::delete_endpoint(&mut tx, firm_id, id).await? {
            return Err(OpError::NotFound("webhook endpoint"));
        }
        record(&mut tx, actor, now, "webhook.deleted", &endpoint).await
    })
}

/// Sends a FAILED, DEAD or SKIPPED delivery again, now (a client email: at the firm's next
/// sending hour), with the same Message-ID or webhook-id and a fresh attempt budget; wakes
/// the worker.
pub async fn redeliver_delivery(
    env: Env<'_>,
    control: &DeliveryControl,
    actor: &Actor,
    id: i64,
) -> Result<Delivery, OpError> {
    let firm_id = actor.firm_side()?.firm_id;
    let mut conn = env.pool.get().await?;
    let mut db = conn.as_db();
    let delivery = found(
        claims::find_delivery(&mut db, firm_id, id).await,
        "delivery",
    )?;
    let firm = found(firms::find_firm(&mut db, firm_id).await, "firm")?;
    let requeued = redeliver(
        &mut db,
        &firm,
        &delivery,
        Utc::now(),
        control.default_sending_hour,
    )
    .await?
    .ok_or_else(|| {
        OpError::Conflict(format!(
            "only a FAILED, DEAD or SKIPPED delivery can be sent again; this one is {}",
            delivery.status
        ))
    })?;
    control.waker.wake();
    Ok(requeued)
}
