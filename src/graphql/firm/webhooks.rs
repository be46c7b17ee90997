//! The firm view's delivery mutations: admins manage webhook endpoints (create, update,
//! disable, enable, rotate the secret, delete) and any staff member sends a failed delivery
//! again with `redeliver`. A secret is shown once, when created or rotated; it is never a
//! field of `WebhookEndpoint`. Each resolver calls one operation of `crate::ops::webhooks`,
//! which checks URLs on save (https, public addresses; the worker checks again at send time).

use async_graphql::{Context, Enum, ID, InputObject, MaybeUndefined, Object, SimpleObject};

use crate::domain::gid::Kind;
use crate::graphql::context::{AdminGuard, StaffGuard, parse_id, visible_to_staff};
use crate::graphql::door::{actor, delivery_control, env};
use crate::graphql::firm::types::{Delivery, WebhookEndpoint};
use crate::ops;

/// An endpoint with its signing secret (`whsec_...`), shown this once: store it now to verify
/// the `webhook-signature` of every delivery (Standard Webhooks).
#[derive(SimpleObject)]
#[graphql(guard = "StaffGuard", visible = "visible_to_staff")]
pub struct WebhookEndpointWithSecret {
    /// The endpoint.
    pub endpoint: WebhookEndpoint,
    /// The signing secret, whsec_ followed by base64; shown this once.
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

/// An event a webhook endpoint can receive. Payloads keep the event's wire name in `type`
/// (`information_request.created`, ...), which the description of each value gives.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(visible = "visible_to_staff")]
pub enum WebhookEvent {
    /// A request was created for the client (`information_request.created`).
    InformationRequestCreated,
    /// A follow-up reminder of an open request was sent (`information_request.reminder`).
    InformationRequestReminder,
    /// The client answered a request (`information_request.answered`).
    InformationRequestAnswered,
    /// The firm closed a request (`information_request.closed`).
    InformationRequestClosed,
}

impl WebhookEvent {
    /// Every value, in the order the schema lists them.
    pub const ALL: [WebhookEvent; 4] = [
        Self::InformationRequestCreated,
        Self::InformationRequestReminder,
        Self::InformationRequestAnswered,
        Self::InformationRequestClosed,
    ];

    /// The delivery event it stands for, whose `as_str` is the wire name in payloads.
    pub fn delivery_event(self) -> crate::domain::DeliveryEvent {
        use crate::domain::DeliveryEvent;
        match self {
            Self::InformationRequestCreated => DeliveryEvent::RequestCreated,
            Self::InformationRequestReminder => DeliveryEvent::RequestReminder,
            Self::InformationRequestAnswered => DeliveryEvent::RequestAnswered,
            Self::InformationRequestClosed => DeliveryEvent::RequestClosed,
        }
    }

    /// The value whose wire name is `name`; None for any other text.
    pub fn from_wire(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|event| event.delivery_event().as_str() == name)
    }
}

fn wire_names(events: &[WebhookEvent]) -> Vec<String> {
    events
        .iter()
        .map(|event| event.delivery_event().as_str().to_string())
        .collect()
}

/// Webhook endpoint management and redelivery.
#[derive(Default)]
pub struct WebhookMutation;

fn with_secret(created: ops::webhooks::EndpointWithSecret) -> WebhookEndpointWithSecret {
    WebhookEndpointWithSecret {
        endpoint: WebhookEndpoint(created.endpoint),
        secret: created.secret,
    }
}

#[Object(guard = "StaffGuard", visible = "visible_to_staff")]
impl WebhookMutation {
    /// Adds an endpoint that receives `events` (request created, reminded, answered, closed)
    /// for every client, or for `clientId` only. Admins only. The URL
    /// must be https and reach a public address.
    #[graphql(guard = "AdminGuard", visible = "visible_to_staff")]
    async fn create_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The new endpoint.")] input: CreateWebhookEndpointInput,
    ) -> async_graphql::Result<WebhookEndpointWithSecret> {
        let actor = actor(ctx)?;
        let CreateWebhookEndpointInput {
            url,
            events,
            client_id,
        } = input;
        let client_id = client_id
            .as_ref()
            .map(|id| parse_id(id, Kind::Client))
            .transpose()?;
        let created = ops::webhooks::create_endpoint(
            env(ctx)?,
            &delivery_control(ctx),
            &actor,
            &url,
            &wire_names(&events),
            client_id,
        )
        .await?;
        Ok(with_secret(created))
    }

    /// Changes an endpoint's URL, events or client (`clientId: null`: every client). Admins
    /// only.
    #[graphql(guard = "AdminGuard", visible = "visible_to_staff")]
    async fn update_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The endpoint and what changes.")] input: UpdateWebhookEndpointInput,
    ) -> async_graphql::Result<WebhookEndpoint> {
        let actor = actor(ctx)?;
        let UpdateWebhookEndpointInput {
            id,
            url,
            events,
            client_id,
        } = input;
        let id = parse_id(&id, Kind::WebhookEndpoint)?;
        let client_id = match client_id {
            MaybeUndefined::Undefined => None,
            MaybeUndefined::Null => Some(None),
            MaybeUndefined::Value(client) => Some(Some(parse_id(&client, Kind::Client)?)),
        };
        let update = ops::webhooks::EndpointUpdate {
            url,
            events: events.as_deref().map(wire_names),
            client_id,
        };
        let endpoint =
            ops::webhooks::update_endpoint(env(ctx)?, &delivery_control(ctx), &actor, id, &update)
                .await?;
        Ok(WebhookEndpoint(endpoint))
    }

    /// Stops sending to an endpoint; its pending deliveries are not sent. Admins only.
    #[graphql(guard = "AdminGuard", visible = "visible_to_staff")]
    async fn disable_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The endpoint and why it is disabled.")]
        input: DisableWebhookEndpointInput,
    ) -> async_graphql::Result<WebhookEndpoint> {
        let actor = actor(ctx)?;
        let id = parse_id(&input.id, Kind::WebhookEndpoint)?;
        let endpoint =
            ops::webhooks::disable_endpoint(env(ctx)?, &actor, id, input.reason.as_deref()).await?;
        Ok(WebhookEndpoint(endpoint))
    }

    /// Sends to an endpoint again (its URL is checked again; its failure streak starts
    /// over). Deliveries skipped meanwhile can be sent with `redeliver`. Admins only.
    #[graphql(guard = "AdminGuard", visible = "visible_to_staff")]
    async fn enable_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "The webhook endpoint's id; NOT_FOUND when the firm has no such webhook endpoint."
        )]
        id: ID,
    ) -> async_graphql::Result<WebhookEndpoint> {
        let actor = actor(ctx)?;
        let id = parse_id(&id, Kind::WebhookEndpoint)?;
        let endpoint =
            ops::webhooks::enable_endpoint(env(ctx)?, &delivery_control(ctx), &actor, id).await?;
        Ok(WebhookEndpoint(endpoint))
    }

    /// Replaces an endpoint's signing secret; the new one is shown this once and signs every
    /// delivery from now on, retries included. Admins only.
    #[graphql(guard = "AdminGuard", visible = "visible_to_staff")]
    async fn rotate_webhook_secret(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "The webhook endpoint's id; NOT_FOUND when the firm has no such webhook endpoint."
        )]
        id: ID,
    ) -> async_graphql::Result<WebhookEndpointWithSecret> {
        let actor = actor(ctx)?;
        let id = parse_id(&id, Kind::WebhookEndpoint)?;
        Ok(with_secret(
            ops::webhooks::rotate_secret(env(ctx)?, &actor, id).await?,
        ))
    }

    /// Deletes an endpoint; its past deliveries stay in the outbox. Admins only.
    #[graphql(guard = "AdminGuard", visible = "visible_to_staff")]
    async fn delete_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "The webhook endpoint's id; NOT_FOUND when the firm has no such webhook endpoint."
        )]
        id: ID,
    ) -> async_graphql::Result<bool> {
        let actor = actor(ctx)?;
        let id = parse_id(&id, Kind::WebhookEndpoint)?;
        ops::webhooks::delete_endpoint(env(ctx)?, &actor, id).await?;
        Ok(true)
    }

    /// Sends a FAILED, DEAD or SKIPPED delivery again, now (a client email: at the firm's next sending
    /// hour), with the same Message-ID or webhook-id and a fresh attempt budget.
    #[graphql(visible = "visible_to_staff")]
    async fn redeliver(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The delivery's id; NOT_FOUND when the firm has no such delivery.")]
        id: ID,
    ) -> async_graphql::Result<Delivery> {
        let actor = actor(ctx)?;
        let id = parse_id(&id, Kind::Delivery)?;
        let requeued =
            ops::webhooks::redeliver_delivery(env(ctx)?, &delivery_control(ctx), &actor, id)
                .await?;
        Ok(Delivery(requeued))
    }
}

/// A new webhook endpoint.
#[derive(InputObject)]
pub struct CreateWebhookEndpointInput {
    /// An https URL reaching a public address (BAD_USER_INPUT otherwise).
    pub url: String,
    /// The events to receive; at least one (BAD_USER_INPUT when empty).
    pub events: Vec<WebhookEvent>,
    /// The id of one client to keep; null for every client.
    pub client_id: Option<ID>,
}

/// Changes to a webhook endpoint; a field left out stays as it is.
#[derive(InputObject)]
pub struct UpdateWebhookEndpointInput {
    /// The webhook endpoint's id; NOT_FOUND when the firm has no such webhook endpoint.
    pub id: ID,
    /// An https URL reaching a public address (BAD_USER_INPUT otherwise).
    pub url: Option<String>,
    /// The events to receive; at least one (BAD_USER_INPUT when empty); left out, unchanged.
    pub events: Option<Vec<WebhookEvent>>,
    /// The id of one client to keep; null for every client; left out, unchanged.
    pub client_id: MaybeUndefined<ID>,
}

/// A webhook endpoint to stop sending to.
#[derive(InputObject)]
pub struct DisableWebhookEndpointInput {
    /// The webhook endpoint's id; NOT_FOUND when the firm has no such webhook endpoint.
    pub id: ID,
    /// Why, shown in the endpoint's disabledReason.
    pub reason: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_events_map_to_the_wire_names_of_payloads_and_back() {
        let names: Vec<String> = wire_names(&WebhookEvent::ALL);
        assert_eq!(
            names,
            [
                "information_request.created",
                "information_request.reminder",
                "information_request.answered",
                "information_request.closed"
            ]
        );
        for event in WebhookEvent::ALL {
            assert_eq!(
                WebhookEvent::from_wire(event.delivery_event().as_str()),
                Some(event)
            );
        }
        assert_eq!(WebhookEvent::from_wire("webhook_endpoint.disabled"), None);
        assert_eq!(
            crate::delivery::WEBHOOK_EVENTS.map(|event| WebhookEvent::from_wire(event.as_str())),
            WebhookEvent::ALL.map(Some),
            "the GraphQL enum lists exactly the events an endpoint may receive"
        );
    }

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
