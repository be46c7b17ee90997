//! The firm view's delivery mutations: admins manage webhook endpoints (create, update,
//! disable, enable, rotate the secret, delete) and any staff member sends a failed delivery
//! again with `redeliver`. A secret is shown once, when created or rotated; it is never a
//! field of `WebhookEndpoint`. URLs are checked here on save (https, public addresses) and
//! again by the worker at send time. No diesel here: data comes from `crate::db`.

use async_graphql::{Context, ID, MaybeUndefined, Object, SimpleObject};
use chrono::Utc;

use crate::db::outbox::{self, EndpointChanges, NewWebhookEndpoint};
use crate::db::{claims, clients, firms};
use crate::delivery::webhook::generate_secret;
use crate::delivery::{
    DeliveryControl, check_endpoint_url, outbox::redeliver, parse_webhook_events,
};
use crate::error::AppError;
use crate::graphql::context::{
    AdminGuard, StaffGuard, connect, found, parse_id, staff, visible_to_staff,
};
use crate::graphql::firm::types::{Delivery, WebhookEndpoint};

/// Longest reason an admin may give when disabling an endpoint.
const MAX_REASON_CHARS: usize = 500;

/// An endpoint with its signing secret (`whsec_...`), shown this once: store it now to verify
/// the `webhook-signature` of every delivery (Standard Webhooks).
#[derive(SimpleObject)]
#[graphql(guard = "StaffGuard", visible = "visible_to_staff")]
pub struct WebhookEndpointWithSecret {
    pub endpoint: WebhookEndpoint,
    pub secret: String,
}

/// An endpoint URL as a staff member with `role` may read it: admins see it whole; members
/// see it with its query values and any user-info password replaced by `***` (query strings
/// and user-info often carry the consumer's access token), keys and path kept so they can
/// still tell endpoints apart.
pub fn url_for_role(url: &str, role: crate::domain::Role) -> String {
    if role == crate::domain::Role::Admin {
        return url.to_string();
    }
    let Ok(mut parsed) = url::Url::parse(url) else {
        return "***".into();
    };
    if parsed.password().is_some() {
        let _ = parsed.set_password(Some("***"));
    }
    if !parsed.username().is_empty() {
        let _ = parsed.set_username("***");
    }
    parsed.set_fragment(None);
    if parsed.query().is_some() {
        let keys: Vec<String> = parsed
            .query_pairs()
            .map(|(key, _)| key.into_owned())
            .collect();
        let masked = keys
            .iter()
            .map(|key| {
                format!(
                    "{}=***",
                    url::form_urlencoded::byte_serialize(key.as_bytes()).collect::<String>()
                )
            })
            .collect::<Vec<_>>()
            .join("&");
        parsed.set_query(Some(&masked));
    }
    parsed.to_string()
}

/// Webhook endpoint management and redelivery.
#[derive(Default)]
pub struct WebhookMutation;

fn control(ctx: &Context<'_>) -> DeliveryControl {
    ctx.data_opt::<DeliveryControl>()
        .cloned()
        .unwrap_or_default()
}

async fn checked_url(ctx: &Context<'_>, url: &str) -> Result<String, AppError> {
    check_endpoint_url(url, control(ctx).allow_private_addresses)
        .await
        .map_err(|reason| AppError::bad_input("url", reason))
}

fn checked_events(events: &[String]) -> Result<String, AppError> {
    parse_webhook_events(events).map_err(|reason| AppError::bad_input("events", reason))
}

/// A client of the caller's firm, by id (NOT_FOUND for another firm's).
async fn checked_client(ctx: &Context<'_>, firm_id: i64, id: &ID) -> Result<i64, AppError> {
    let client_id = parse_id(id, "client")?;
    let mut conn = connect(ctx).await?;
    found(
        clients::find_client(&mut conn.as_db(), firm_id, client_id).await,
        "client",
    )?;
    Ok(client_id)
}

#[Object(guard = "StaffGuard", visible = "visible_to_staff")]
impl WebhookMutation {
    /// Adds an endpoint that receives `events` (`information_request.created`, `.reminder`,
    /// `.answered`, `.closed`) for every client, or for `clientId` only. Admins only. The URL
    /// must be https and reach a public address.
    #[graphql(guard = "AdminGuard", visible = "visible_to_staff")]
    async fn create_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        url: String,
        events: Vec<String>,
        client_id: Option<ID>,
    ) -> async_graphql::Result<WebhookEndpointWithSecret> {
        let staff = staff(ctx)?.clone();
        let events = checked_events(&events)?;
        let client_id = match client_id {
            Some(id) => Some(checked_client(ctx, staff.firm_id, &id).await?),
            None => None,
        };
        let url = checked_url(ctx, &url).await?;
        let secret = generate_secret();
        let now = Utc::now().naive_utc();
        let mut conn = connect(ctx).await?;
        let endpoint = outbox::insert_endpoint(
            &mut conn.as_db(),
            &NewWebhookEndpoint {
                firm_id: staff.firm_id,
                client_id,
                url: &url,
                events: &events,
                secret: &secret,
                enabled: true,
                created_at: now,
                updated_at: now,
            },
        )
        .await
        .map_err(AppError::from)?;
        tracing::info!(
            firm_id = staff.firm_id,
            endpoint_id = endpoint.id,
            "webhook endpoint created"
        );
        Ok(WebhookEndpointWithSecret {
            endpoint: WebhookEndpoint(endpoint),
            secret,
        })
    }

    /// Changes an endpoint's URL, events or client (`clientId: null`: every client). Admins
    /// only.
    #[graphql(guard = "AdminGuard", visible = "visible_to_staff")]
    async fn update_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        id: ID,
        url: Option<String>,
        events: Option<Vec<String>>,
        client_id: MaybeUndefined<ID>,
    ) -> async_graphql::Result<WebhookEndpoint> {
        let staff = staff(ctx)?.clone();
        let id = parse_id(&id, "webhook endpoint")?;
        let events = events.as_deref().map(checked_events).transpose()?;
        let client_id = match client_id {
            MaybeUndefined::Undefined => None,
            MaybeUndefined::Null => Some(None),
            MaybeUndefined::Value(client) => {
                Some(Some(checked_client(ctx, staff.firm_id, &client).await?))
            }
        };
        let url = match url {
            Some(url) => Some(checked_url(ctx, &url).await?),
            None => None,
        };
        let mut conn = connect(ctx).await?;
        let endpoint = found(
            outbox::update_endpoint(
                &mut conn.as_db(),
                staff.firm_id,
                id,
                &EndpointChanges {
                    url: url.as_deref(),
                    events: events.as_deref(),
                    client_id,
                    updated_at: Utc::now().naive_utc(),
                },
            )
            .await,
            "webhook endpoint",
        )?;
        Ok(WebhookEndpoint(endpoint))
    }

    /// Stops sending to an endpoint; its pending deliveries are not sent. Admins only.
    #[graphql(guard = "AdminGuard", visible = "visible_to_staff")]
    async fn disable_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        id: ID,
        reason: Option<String>,
    ) -> async_graphql::Result<WebhookEndpoint> {
        let staff = staff(ctx)?.clone();
        let id = parse_id(&id, "webhook endpoint")?;
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
        let mut conn = connect(ctx).await?;
        let endpoint = found(
            outbox::set_endpoint_enabled(
                &mut conn.as_db(),
                staff.firm_id,
                id,
                false,
                Some(&reason),
                Utc::now().naive_utc(),
            )
            .await,
            "webhook endpoint",
        )?;
        Ok(WebhookEndpoint(endpoint))
    }

    /// Sends to an endpoint again (its URL is checked again; its failure streak starts
    /// over). Deliveries skipped meanwhile can be sent with `redeliver`. Admins only.
    #[graphql(guard = "AdminGuard", visible = "visible_to_staff")]
    async fn enable_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<WebhookEndpoint> {
        let staff = staff(ctx)?.clone();
        let id = parse_id(&id, "webhook endpoint")?;
        let current = {
            let mut conn = connect(ctx).await?;
            found(
                outbox::find_endpoint(&mut conn.as_db(), staff.firm_id, id).await,
                "webhook endpoint",
            )?
        };
        checked_url(ctx, &current.url).await?;
        let mut conn = connect(ctx).await?;
        let endpoint = found(
            outbox::set_endpoint_enabled(
                &mut conn.as_db(),
                staff.firm_id,
                id,
                true,
                None,
                Utc::now().naive_utc(),
            )
            .await,
            "webhook endpoint",
        )?;
        Ok(WebhookEndpoint(endpoint))
    }

    /// Replaces an endpoint's signing secret; the new one is shown this once and signs every
    /// delivery from now on, retries included. Admins only.
    #[graphql(guard = "AdminGuard", visible = "visible_to_staff")]
    async fn rotate_webhook_secret(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<WebhookEndpointWithSecret> {
        let staff = staff(ctx)?.clone();
        let id = parse_id(&id, "webhook endpoint")?;
        let secret = generate_secret();
        let mut conn = connect(ctx).await?;
        let endpoint = found(
            outbox::set_endpoint_secret(
                &mut conn.as_db(),
                staff.firm_id,
                id,
                &secret,
                Utc::now().naive_utc(),
            )
            .await,
            "webhook endpoint",
        )?;
        tracing::info!(
            firm_id = staff.firm_id,
            endpoint_id = endpoint.id,
            "webhook secret rotated"
        );
        Ok(WebhookEndpointWithSecret {
            endpoint: WebhookEndpoint(endpoint),
            secret,
        })
    }

    /// Deletes an endpoint; its past deliveries stay in the outbox. Admins only.
    #[graphql(guard = "AdminGuard", visible = "visible_to_staff")]
    async fn delete_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<bool> {
        let staff = staff(ctx)?.clone();
        let id = parse_id(&id, "webhook endpoint")?;
        let mut conn = connect(ctx).await?;
        let deleted = outbox::delete_endpoint(&mut conn.as_db(), staff.firm_id, id)
            .await
            .map_err(AppError::from)?;
        if !deleted {
            return Err(AppError::NotFound("webhook endpoint").into());
        }
        Ok(true)
    }

    /// Sends a FAILED, DEAD or SKIPPED delivery again, now (a client email: at the firm's next sending
    /// hour), with the same Message-ID or webhook-id and a fresh attempt budget.
    #[graphql(visible = "visible_to_staff")]
    async fn redeliver(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Delivery> {
        let staff = staff(ctx)?.clone();
        let id = parse_id(&id, "delivery")?;
        let control = control(ctx);
        let mut conn = connect(ctx).await?;
        let mut db = conn.as_db();
        let delivery = found(
            claims::find_delivery(&mut db, staff.firm_id, id).await,
            "delivery",
        )?;
        let firm = found(firms::find_firm(&mut db, staff.firm_id).await, "firm")?;
        let requeued = redeliver(
            &mut db,
            &firm,
            &delivery,
            Utc::now(),
            control.default_sending_hour,
        )
        .await
        .map_err(AppError::from)?
        .ok_or_else(|| {
            AppError::Conflict(format!(
                "only a FAILED, DEAD or SKIPPED delivery can be sent again; this one is {}",
                delivery.status
            ))
        })?;
        control.waker.wake();
        Ok(Delivery(requeued))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_read_endpoint_urls_without_query_values_or_credentials() {
        use crate::domain::Role;
        let url = "https://user:pw@hooks.example.com/in/abc?token=s3cret&team=42#frag";
        assert_eq!(url_for_role(url, Role::Admin), url);
        let masked = url_for_role(url, Role::Member);
        assert_eq!(
            masked,
            "https://***:***@hooks.example.com/in/abc?token=***&team=***"
        );
        assert!(!masked.contains("s3cret") && !masked.contains("pw"));
        assert_eq!(
            url_for_role("https://hooks.example.com/in", Role::Member),
            "https://hooks.example.com/in"
        );
    }
}
