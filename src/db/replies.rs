//! Replies by email: the reply tokens carried by request emails (stored as SHA-256 hashes),
//! and the emails received at a reply address (`inbound_messages`), one row per message key so
//! that a second delivery of the same email changes nothing. Archiving revokes reply tokens
//! with the contact's other tokens (`db::tokens::revoke_contacts_access`). Every read of a firm's messages
//! is scoped by firm. Nothing here parses an email or decides what it is: that is
//! `crate::ops::replies`.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::page::Keyset;
use super::schema::{deliveries, inbound_messages, reply_tokens};
use super::{DbConn, DbResult};
use crate::domain::DeliveryStatus;
use crate::{seek_id, with_conn};

/// A reply address's token: which request and contact it answers for.
#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = reply_tokens)]
pub struct ReplyToken {
    pub id: i64,
    pub firm_id: i64,
    pub request_id: i64,
    pub contact_id: i64,
    /// The email that carried it (a bounce to this address is that delivery's).
    pub delivery_id: Option<i64>,
    pub token_hash: String,
    pub created_at: NaiveDateTime,
    pub revoked_at: Option<NaiveDateTime>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = reply_tokens)]
pub struct NewReplyToken<'a> {
    pub firm_id: i64,
    pub request_id: i64,
    pub contact_id: i64,
    pub delivery_id: Option<i64>,
    pub token_hash: &'a str,
    pub created_at: NaiveDateTime,
}

/// An email received at a reply address.
#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = inbound_messages)]
pub struct InboundMessage {
    pub id: i64,
    pub firm_id: i64,
    pub message_key: String,
    /// `IMAP` or `SMTP`.
    pub source: String,
    pub request_id: i64,
    /// The contact the reply address was given to.
    pub contact_id: i64,
    /// The `From` address.
    pub sender: String,
    pub subject: String,
    /// `RECEIVING`, `ANSWERED`, `HELD`, `ACCEPTED`, `REJECTED`, `AUTO_REPLY`, `BOUNCE`, `REFUSED`.
    pub outcome: String,
    /// Why it was held, refused or bounced.
    pub reason: Option<String>,
    /// The trusted authentication results, `dmarc=pass spf=pass dkim=pass`, or `none`.
    pub authentication: String,
    /// Where a held message's raw bytes are kept in the document store.
    pub raw_key: Option<String>,
    pub answer_id: Option<i64>,
    pub received_at: NaiveDateTime,
    pub decided_at: Option<NaiveDateTime>,
    pub decided_by_user_id: Option<i64>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = inbound_messages)]
pub struct NewInboundMessage<'a> {
    pub firm_id: i64,
    pub message_key: &'a str,
    pub source: &'a str,
    pub request_id: i64,
    pub contact_id: i64,
    pub sender: &'a str,
    pub subject: &'a str,
    pub outcome: &'a str,
    pub authentication: &'a str,
    pub received_at: NaiveDateTime,
}

/// What becomes of a message once it is understood or decided.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = inbound_messages)]
pub struct MessageChanges<'a> {
    pub outcome: Option<&'a str>,
    pub reason: Option<Option<&'a str>>,
    pub raw_key: Option<Option<&'a str>>,
    pub answer_id: Option<Option<i64>>,
    pub decided_at: Option<Option<NaiveDateTime>>,
    pub decided_by_user_id: Option<Option<i64>>,
}

pub async fn insert_token(db: &mut DbConn<'_>, new: &NewReplyToken<'_>) -> DbResult<()> {
    with_conn!(db, |c| diesel::insert_into(reply_tokens::table)
        .values(new)
        .execute(c)
        .await)?;
    Ok(())
}

/// A reply token inserted with others ([`insert_tokens`]): owned, and `None` written as
/// NULL, so that many rows go in one statement on SQLite as on PostgreSQL.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = reply_tokens, treat_none_as_default_value = false)]
pub struct NewReplyTokenRow {
    pub firm_id: i64,
    pub request_id: i64,
    pub contact_id: i64,
    pub delivery_id: Option<i64>,
    pub token_hash: String,
    pub created_at: NaiveDateTime,
}

/// Inserts many reply tokens, one statement per [`super::bulk::ROWS_PER_STATEMENT`] rows on
/// both backends. Call it inside the caller's transaction.
pub async fn insert_tokens(db: &mut DbConn<'_>, rows: Vec<NewReplyTokenRow>) -> DbResult<()> {
    super::bulk::insert_rows!(db, reply_tokens::table, rows);
    Ok(())
}

/// The token with this hash, unless revoked.
pub async fn find_token(db: &mut DbConn<'_>, token_hash: &str) -> DbResult<Option<ReplyToken>> {
    Ok(with_conn!(db, |c| reply_tokens::table
        .filter(reply_tokens::token_hash.eq(token_hash))
        .filter(reply_tokens::revoked_at.is_null())
        .select(ReplyToken::as_select())
        .first(c)
        .await
        .optional())?)
}

/// Records a message under its key; `None` when a message with that key was already
/// recorded (a second delivery of the same email).
///
/// A claim still RECEIVING whose `received_at` is before `stale_before` belongs to a process
/// that died while handling the message (nothing was recorded, or its processing would have
/// settled it): it is dropped first, so the message's next delivery is handled instead of
/// being taken for a duplicate and lost.
pub async fn claim_message(
    db: &mut DbConn<'_>,
    new: &NewInboundMessage<'_>,
    stale_before: NaiveDateTime,
) -> DbResult<Option<InboundMessage>> {
    with_conn!(db, |c| diesel::delete(
        inbound_messages::table
            .filter(inbound_messages::message_key.eq(new.message_key))
            .filter(inbound_messages::outcome.eq("RECEIVING"))
            .filter(inbound_messages::received_at.lt(stale_before))
    )
    .execute(c)
    .await)?;
    Ok(with_conn!(db, |c| diesel::insert_into(
        inbound_messages::table
    )
    .values(new)
    .on_conflict(inbound_messages::message_key)
    .do_nothing()
    .returning(InboundMessage::as_returning())
    .get_result(c)
    .await
    .optional())?)
}

/// Gives a claim back (its processing failed before anything was recorded).
pub async fn release_message(db: &mut DbConn<'_>, id: i64) -> DbResult<()> {
    with_conn!(db, |c| diesel::delete(
        inbound_messages::table
            .find(id)
            .filter(inbound_messages::outcome.eq("RECEIVING"))
    )
    .execute(c)
    .await)?;
    Ok(())
}

/// Writes `changes` on message `id` when it is still in one of the outcomes `from`; returns
/// whether it was.
pub async fn update_message(
    db: &mut DbConn<'_>,
    firm_id: i64,
    id: i64,
    from: &[&str],
    changes: &MessageChanges<'_>,
) -> DbResult<bool> {
    let from: Vec<String> = from.iter().map(|s| (*s).to_string()).collect();
    let written = with_conn!(db, |c| diesel::update(
        inbound_messages::table
            .filter(inbound_messages::firm_id.eq(firm_id))
            .filter(inbound_messages::id.eq(id))
            .filter(inbound_messages::outcome.eq_any(&from))
    )
    .set(changes)
    .execute(c)
    .await)?;
    Ok(written == 1)
}

/// One message of the firm.
pub async fn find_message(
    db: &mut DbConn<'_>,
    firm_id: i64,
    id: i64,
) -> DbResult<Option<InboundMessage>> {
    Ok(with_conn!(db, |c| inbound_messages::table
        .filter(inbound_messages::firm_id.eq(firm_id))
        .filter(inbound_messages::id.eq(id))
        .select(InboundMessage::as_select())
        .first(c)
        .await
        .optional())?)
}

/// The message recorded under a key, whatever its firm (the receiving side's view).
pub async fn find_by_key(db: &mut DbConn<'_>, key: &str) -> DbResult<Option<InboundMessage>> {
    Ok(with_conn!(db, |c| inbound_messages::table
        .filter(inbound_messages::message_key.eq(key))
        .select(InboundMessage::as_select())
        .first(c)
        .await
        .optional())?)
}

/// One page of the firm's messages in `outcome`, oldest first.
pub async fn page_messages(
    db: &mut DbConn<'_>,
    firm_id: i64,
    outcome: &str,
    page: &Keyset<i64>,
) -> DbResult<Vec<InboundMessage>> {
    let outcome = outcome.to_string();
    Ok(with_conn!(db, |c| {
        let query = inbound_messages::table
            .filter(inbound_messages::firm_id.eq(firm_id))
            .filter(inbound_messages::outcome.eq(outcome.clone()))
            .into_boxed();
        seek_id!(query, page, inbound_messages::id, asc)
            .select(InboundMessage::as_select())
            .load(c)
            .await
    })?)
}

/// How many of the firm's messages are in `outcome`.
pub async fn count_messages(db: &mut DbConn<'_>, firm_id: i64, outcome: &str) -> DbResult<i64> {
    let outcome = outcome.to_string();
    Ok(with_conn!(db, |c| inbound_messages::table
        .filter(inbound_messages::firm_id.eq(firm_id))
        .filter(inbound_messages::outcome.eq(outcome.clone()))
        .count()
        .get_result(c)
        .await)?)
}

/// Marks an email delivery of the firm FAILED with `reason` (a bounce came back for it);
/// returns whether it was one.
pub async fn mark_delivery_bounced(
    db: &mut DbConn<'_>,
    firm_id: i64,
    delivery_id: i64,
    reason: &str,
) -> DbResult<bool> {
    let written = with_conn!(db, |c| diesel::update(
        deliveries::table
            .filter(deliveries::firm_id.eq(firm_id))
            .filter(deliveries::id.eq(delivery_id))
    )
    .set((
        deliveries::status.eq(DeliveryStatus::Failed),
        deliveries::last_error.eq(reason),
        deliveries::lease_until.eq(None::<NaiveDateTime>),
        deliveries::leased_by.eq(None::<String>),
    ))
    .execute(c)
    .await)?;
    Ok(written == 1)
}

/// The delivery whose Message-ID is `uid@...` (a bounce naming the original message).
pub async fn delivery_by_uid(
    db: &mut DbConn<'_>,
    firm_id: i64,
    delivery_uid: &str,
) -> DbResult<Option<i64>> {
    Ok(with_conn!(db, |c| deliveries::table
        .filter(deliveries::firm_id.eq(firm_id))
        .filter(deliveries::delivery_uid.eq(delivery_uid))
        .select(deliveries::id)
        .first(c)
        .await
        .optional())?)
}

/// The uid of the email that first asked `contact_id` for `request_id` (the thread's root:
/// reminders refer to it).
pub async fn first_request_email_uid(
    db: &mut DbConn<'_>,
    firm_id: i64,
    request_id: i64,
    contact_id: i64,
) -> DbResult<Option<String>> {
    use crate::domain::{DeliveryEvent, DeliveryKind};
    Ok(with_conn!(db, |c| deliveries::table
        .filter(deliveries::firm_id.eq(firm_id))
        .filter(deliveries::request_id.eq(request_id))
        .filter(deliveries::contact_id.eq(contact_id))
        .filter(deliveries::kind.eq(DeliveryKind::Email))
        .filter(deliveries::event.eq(DeliveryEvent::RequestCreated))
        .order(deliveries::id)
        .select(deliveries::delivery_uid)
        .first(c)
        .await
        .optional())?)
}

/// Which of `keys` a message still keeps (a held reply's raw copy); the file sweep keeps those.
/// Every firm's: the sweep runs for the whole store.
pub async fn kept_raw_keys(db: &mut DbConn<'_>, keys: &[String]) -> DbResult<Vec<String>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let kept: Vec<Option<String>> = with_conn!(db, |c| inbound_messages::table
        .filter(inbound_messages::raw_key.eq_any(keys))
        .select(inbound_messages::raw_key)
        .load(c)
        .await)?;
    Ok(kept.into_iter().flatten().collect())
}
