//! The outbox: deliveries waiting to be sent (emails and webhooks), their attempts, and the
//! webhook endpoints they go to. Rows are written in the same transaction as the change they
//! announce; the delivery worker claims them with a lease.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::page::Keyset;
use super::schema::{deliveries, delivery_attempts, webhook_endpoints};
use super::{DbConn, DbResult};
use crate::domain::{DeliveryEvent, DeliveryKind, DeliveryStatus};
use crate::{seek_id, with_conn};

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = webhook_endpoints)]
pub struct WebhookEndpoint {
    pub id: i64,
    pub firm_id: i64,
    pub client_id: Option<i64>,
    pub url: String,
    /// Comma-separated event names.
    pub events: String,
    pub secret: String,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub failing_since: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl WebhookEndpoint {
    /// Whether this endpoint subscribed to `event`.
    pub fn wants(&self, event: DeliveryEvent) -> bool {
        self.events.split(',').any(|name| name == event.as_str())
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = webhook_endpoints)]
pub struct NewWebhookEndpoint<'a> {
    pub firm_id: i64,
    pub client_id: Option<i64>,
    pub url: &'a str,
    pub events: &'a str,
    pub secret: &'a str,
    pub enabled: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = deliveries)]
pub struct Delivery {
    pub id: i64,
    pub firm_id: i64,
    pub delivery_uid: String,
    pub dedupe_key: String,
    pub kind: DeliveryKind,
    pub event: DeliveryEvent,
    pub request_id: Option<i64>,
    pub contact_id: Option<i64>,
    pub webhook_endpoint_id: Option<i64>,
    pub target: String,
    pub payload: String,
    pub status: DeliveryStatus,
    pub attempts: i32,
    pub next_attempt_at: NaiveDateTime,
    pub lease_until: Option<NaiveDateTime>,
    pub leased_by: Option<String>,
    pub last_error: Option<String>,
    pub delivered_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = deliveries)]
pub struct NewDelivery {
    pub firm_id: i64,
    pub delivery_uid: String,
    pub dedupe_key: String,
    pub kind: DeliveryKind,
    pub event: DeliveryEvent,
    pub request_id: Option<i64>,
    pub contact_id: Option<i64>,
    pub webhook_endpoint_id: Option<i64>,
    pub target: String,
    pub payload: String,
    pub status: DeliveryStatus,
    pub next_attempt_at: NaiveDateTime,
    pub created_at: NaiveDateTime,
}

/// Enabled endpoints of a firm that receive events about `client_id` (all-client endpoints
/// and that client's own).
pub async fn endpoints_for_client(
    db: &mut DbConn<'_>,
    firm_id: i64,
    client_id: i64,
) -> DbResult<Vec<WebhookEndpoint>> {
    Ok(with_conn!(db, |c| webhook_endpoints::table
        .filter(webhook_endpoints::firm_id.eq(firm_id))
        .filter(webhook_endpoints::enabled.eq(true))
        .filter(
            webhook_endpoints::client_id
                .is_null()
                .or(webhook_endpoints::client_id.eq(client_id))
        )
        .order(webhook_endpoints::id)
        .select(WebhookEndpoint::as_select())
        .load(c)
        .await)?)
}

pub async fn insert_endpoint(
    db: &mut DbConn<'_>,
    new: &NewWebhookEndpoint<'_>,
) -> DbResult<WebhookEndpoint> {
    Ok(with_conn!(db, |c| diesel::insert_into(
        webhook_endpoints::table
    )
    .values(new)
    .returning(WebhookEndpoint::as_returning())
    .get_result(c)
    .await)?)
}

pub async fn list_endpoints(db: &mut DbConn<'_>, firm_id: i64) -> DbResult<Vec<WebhookEndpoint>> {
    Ok(with_conn!(db, |c| webhook_endpoints::table
        .filter(webhook_endpoints::firm_id.eq(firm_id))
        .order(webhook_endpoints::id)
        .select(WebhookEndpoint::as_select())
        .load(c)
        .await)?)
}

/// The firm's endpoints of `ids` (those that exist).
pub async fn find_endpoints(
    db: &mut DbConn<'_>,
    firm_id: i64,
    ids: &[i64],
) -> DbResult<Vec<WebhookEndpoint>> {
    Ok(with_conn!(db, |c| webhook_endpoints::table
        .filter(webhook_endpoints::firm_id.eq(firm_id))
        .filter(webhook_endpoints::id.eq_any(ids))
        .select(WebhookEndpoint::as_select())
        .load(c)
        .await)?)
}

pub async fn find_endpoint(
    db: &mut DbConn<'_>,
    firm_id: i64,
    id: i64,
) -> DbResult<WebhookEndpoint> {
    Ok(with_conn!(db, |c| webhook_endpoints::table
        .filter(webhook_endpoints::firm_id.eq(firm_id))
        .filter(webhook_endpoints::id.eq(id))
        .select(WebhookEndpoint::as_select())
        .first(c)
        .await)?)
}

/// One page of the firm's webhook endpoints, by id.
pub async fn page_endpoints(
    db: &mut DbConn<'_>,
    firm_id: i64,
    page: &Keyset<i64>,
) -> DbResult<Vec<WebhookEndpoint>> {
    Ok(with_conn!(db, |c| {
        let query = webhook_endpoints::table
            .filter(webhook_endpoints::firm_id.eq(firm_id))
            .into_boxed();
        seek_id!(query, page, webhook_endpoints::id, asc)
            .select(WebhookEndpoint::as_select())
            .load(c)
            .await
    })?)
}

/// How many webhook endpoints the firm has.
pub async fn count_endpoints(db: &mut DbConn<'_>, firm_id: i64) -> DbResult<i64> {
    Ok(with_conn!(db, |c| webhook_endpoints::table
        .filter(webhook_endpoints::firm_id.eq(firm_id))
        .count()
        .get_result(c)
        .await)?)
}

/// The firm's deliveries matching the filters, as a boxed query (for a page or a count).
macro_rules! filtered_deliveries {
    ($firm_id:expr, $status:expr, $request_id:expr) => {{
        let mut query = deliveries::table
            .filter(deliveries::firm_id.eq($firm_id))
            .into_boxed();
        if let Some(status) = $status {
            query = query.filter(deliveries::status.eq(status));
        }
        if let Some(request_id) = $request_id {
            query = query.filter(deliveries::request_id.eq(request_id));
        }
        query
    }};
}

/// One page of the firm's deliveries, newest first (by id, descending).
pub async fn list_deliveries(
    db: &mut DbConn<'_>,
    firm_id: i64,
    status: Option<DeliveryStatus>,
    request_id: Option<i64>,
    page: &Keyset<i64>,
) -> DbResult<Vec<Delivery>> {
    Ok(with_conn!(db, |c| {
        let query = filtered_deliveries!(firm_id, status, request_id);
        seek_id!(query, page, deliveries::id, desc)
            .select(Delivery::as_select())
            .load(c)
            .await
    })?)
}

/// How many deliveries match the filters of [`list_deliveries`].
pub async fn count_deliveries(
    db: &mut DbConn<'_>,
    firm_id: i64,
    status: Option<DeliveryStatus>,
    request_id: Option<i64>,
) -> DbResult<i64> {
    Ok(with_conn!(db, |c| filtered_deliveries!(
        firm_id, status, request_id
    )
    .count()
    .get_result(c)
    .await)?)
}

/// Every attempt of a delivery, oldest first.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = delivery_attempts)]
pub struct DeliveryAttempt {
    pub id: i64,
    pub delivery_id: i64,
    pub attempted_at: NaiveDateTime,
    pub outcome: String,
    pub response_code: Option<i32>,
    pub error: Option<String>,
}

pub async fn list_attempts(
    db: &mut DbConn<'_>,
    delivery_id: i64,
) -> DbResult<Vec<DeliveryAttempt>> {
    Ok(with_conn!(db, |c| delivery_attempts::table
        .filter(delivery_attempts::delivery_id.eq(delivery_id))
        .order(delivery_attempts::id)
        .select(DeliveryAttempt::as_select())
        .load(c)
        .await)?)
}

/// The attempts of several of the firm's deliveries, oldest first.
pub async fn attempts_of_deliveries(
    db: &mut DbConn<'_>,
    firm_id: i64,
    delivery_ids: &[i64],
) -> DbResult<Vec<DeliveryAttempt>> {
    Ok(with_conn!(db, |c| delivery_attempts::table
        .inner_join(deliveries::table)
        .filter(deliveries::firm_id.eq(firm_id))
        .filter(delivery_attempts::delivery_id.eq_any(delivery_ids))
        .order((delivery_attempts::delivery_id, delivery_attempts::id))
        .select(DeliveryAttempt::as_select())
        .load(c)
        .await)?)
}

/// Enqueues many deliveries, skipping dedupe keys that exist; returns how many were new.
pub async fn enqueue_many(db: &mut DbConn<'_>, rows: &[NewDelivery]) -> DbResult<usize> {
    super::bulk::insert_deliveries(db, rows, super::bulk::Conflicts::Skip).await
}

/// Changes to a webhook endpoint; `None` keeps a field as it is.
#[derive(Debug, AsChangeset)]
#[diesel(table_name = webhook_endpoints)]
pub struct EndpointChanges<'a> {
    pub url: Option<&'a str>,
    pub events: Option<&'a str>,
    /// `Some(None)`: every client of the firm.
    pub client_id: Option<Option<i64>>,
    pub updated_at: NaiveDateTime,
}

/// Applies `changes` to one of a firm's endpoints.
pub async fn update_endpoint(
    db: &mut DbConn<'_>,
    firm_id: i64,
    id: i64,
    changes: &EndpointChanges<'_>,
) -> DbResult<WebhookEndpoint> {
    Ok(with_conn!(db, |c| diesel::update(
        webhook_endpoints::table
            .filter(webhook_endpoints::firm_id.eq(firm_id))
            .filter(webhook_endpoints::id.eq(id))
    )
    .set(changes)
    .returning(WebhookEndpoint::as_returning())
    .get_result(c)
    .await)?)
}

/// Turns an endpoint on (forgetting its failure streak) or off with a reason.
pub async fn set_endpoint_enabled(
    db: &mut DbConn<'_>,
    firm_id: i64,
    id: i64,
    enabled: bool,
    reason: Option<&str>,
    now: NaiveDateTime,
) -> DbResult<WebhookEndpoint> {
    Ok(with_conn!(db, |c| diesel::update(
        webhook_endpoints::table
            .filter(webhook_endpoints::firm_id.eq(firm_id))
            .filter(webhook_endpoints::id.eq(id))
    )
    .set((
        webhook_endpoints::enabled.eq(enabled),
        webhook_endpoints::disabled_reason.eq(if enabled { None } else { reason }),
        webhook_endpoints::failing_since.eq(None::<NaiveDateTime>),
        webhook_endpoints::updated_at.eq(now),
    ))
    .returning(WebhookEndpoint::as_returning())
    .get_result(c)
    .await)?)
}

/// Replaces an endpoint's signing secret.
pub async fn set_endpoint_secret(
    db: &mut DbConn<'_>,
    firm_id: i64,
    id: i64,
    secret: &str,
    now: NaiveDateTime,
) -> DbResult<WebhookEndpoint> {
    Ok(with_conn!(db, |c| diesel::update(
        webhook_endpoints::table
            .filter(webhook_endpoints::firm_id.eq(firm_id))
            .filter(webhook_endpoints::id.eq(id))
    )
    .set((
        webhook_endpoints::secret.eq(secret),
        webhook_endpoints::updated_at.eq(now),
    ))
    .returning(WebhookEndpoint::as_returning())
    .get_result(c)
    .await)?)
}

/// Deletes an endpoint; its past deliveries stay, without an endpoint. True when deleted.
pub async fn delete_endpoint(db: &mut DbConn<'_>, firm_id: i64, id: i64) -> DbResult<bool> {
    let deleted = with_conn!(db, |c| diesel::delete(
        webhook_endpoints::table
            .filter(webhook_endpoints::firm_id.eq(firm_id))
            .filter(webhook_endpoints::id.eq(id))
    )
    .execute(c)
    .await)?;
    Ok(deleted == 1)
}

/// An endpoint answered: its failure streak, if any, is over.
pub async fn note_endpoint_success(db: &mut DbConn<'_>, id: i64) -> DbResult<()> {
    note_endpoints_success(db, &[id]).await
}

/// These endpoints answered: their failure streaks, if any, are over (one statement per
/// [`super::bulk::ROWS_PER_STATEMENT`] endpoints).
pub async fn note_endpoints_success(db: &mut DbConn<'_>, ids: &[i64]) -> DbResult<()> {
    for chunk in ids.chunks(super::bulk::ROWS_PER_STATEMENT) {
        with_conn!(db, |c| diesel::update(
            webhook_endpoints::table
                .filter(webhook_endpoints::id.eq_any(chunk))
                .filter(webhook_endpoints::failing_since.is_not_null())
        )
        .set(webhook_endpoints::failing_since.eq(None::<NaiveDateTime>))
        .execute(c)
        .await)?;
    }
    Ok(())
}

/// An endpoint failed at `now`: starts its failure streak unless one runs already, and
/// returns the endpoint (None when it was deleted meanwhile).
pub async fn note_endpoint_failure(
    db: &mut DbConn<'_>,
    id: i64,
    now: NaiveDateTime,
) -> DbResult<Option<WebhookEndpoint>> {
    with_conn!(db, |c| diesel::update(
        webhook_endpoints::table
            .filter(webhook_endpoints::id.eq(id))
            .filter(webhook_endpoints::failing_since.is_null())
    )
    .set(webhook_endpoints::failing_since.eq(now))
    .execute(c)
    .await)?;
    Ok(with_conn!(db, |c| webhook_endpoints::table
        .find(id)
        .select(WebhookEndpoint::as_select())
        .first(c)
        .await
        .optional())?)
}

/// Disables an endpoint that is still enabled; true for the one caller that disabled it (so
/// the admins are told once, however many workers saw it fail).
pub async fn disable_failing_endpoint(
    db: &mut DbConn<'_>,
    id: i64,
    reason: &str,
    now: NaiveDateTime,
) -> DbResult<bool> {
    let updated = with_conn!(db, |c| diesel::update(
        webhook_endpoints::table
            .filter(webhook_endpoints::id.eq(id))
            .filter(webhook_endpoints::enabled.eq(true))
    )
    .set((
        webhook_endpoints::enabled.eq(false),
        webhook_endpoints::disabled_reason.eq(reason),
        webhook_endpoints::updated_at.eq(now),
    ))
    .execute(c)
    .await)?;
    Ok(updated == 1)
}
