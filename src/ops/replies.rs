//! Replies by email: a client presses Reply on a request email and its message and
//! attachments become the answer, through the same operation as the portal
//! (`ops::answers::answer_request`, as the contact). One entry point, [`receive`], fed by both
//! doors (the IMAP fetcher and the SMTP listener in `crate::inbound`), decides what an email
//! is:
//!
//! - its reply address's token (`{local}+{token}@{domain}`, stored hashed, revoked with the
//!   contact) names the request and contact; an unknown or revoked token is refused;
//! - the same email twice (its Message-ID, else a hash of its bytes) changes nothing;
//! - a bounce (a DSN, `multipart/report; report-type=delivery-status`) marks the delivery it
//!   names FAILED with the reason and journals it (`delivery.bounced`): the firm sees it in
//!   its deliveries and history;
//! - an automatic message (RFC 3834 `Auto-Submitted`, `X-Autoreply`, `Precedence`, an
//!   out-of-office subject) is recorded and never answers;
//! - a sender who is not a contact of the request's client, or a DMARC failure reported by
//!   the trusted `authserv_id`, is held for the firm to accept or reject;
//! - otherwise the new text (above the quote) and the attachments (the portal's type and size
//!   rules; small inline images with a Content-ID, a signature's logo, are left out) answer
//!   the request, the contact gets a confirmation email, and the journal records
//!   `reply.received`. The answer and the message's ANSWERED mark are one transaction, so a
//!   message whose claim is left RECEIVING (a crash) never answered, and one marked ANSWERED
//!   did.
//!
//! Never here: sockets, IMAP or SMTP (the doors), SQL (`crate::db::replies`).

use bytes::Bytes;
use chrono::Utc;
use mail_parser::{Message, MessageParser, MimeHeaders as _};
use sha2::{Digest as _, Sha256};

use super::answers::{self, AnswerInput};
use super::documents::{self, StagedFile};
use super::journal::{self, Entry};
use super::{Actor, Env, OpError};
use crate::auth::token_hash;
use crate::db::replies::{
    self as rows, InboundMessage, MessageChanges, NewInboundMessage, ReplyToken,
};
use crate::db::{DbConn, clients, firms, outbox, work};
use crate::domain::gid::{self, Kind};
use crate::domain::replies::{
    AuthResults, cut_quote, is_automatic, is_out_of_office_subject, token_in_address,
    trusted_auth_results,
};
use crate::domain::{DeliveryEvent, DeliveryKind, DeliveryStatus, Language};
use crate::events::RequestEventKind;
use crate::transaction;

/// Inline images at most this large with a Content-ID are a signature's decoration.
const INLINE_IMAGE_MAX_BYTES: usize = 64 * 1024;

/// What receiving needs from `[inbound]`.
#[derive(Debug, Clone)]
pub struct InboundSettings {
    pub reply_local: String,
    pub reply_domain: String,
    /// Whose `Authentication-Results` are trusted; empty: none.
    pub authserv_id: String,
    /// Largest email taken, in bytes.
    pub max_message_bytes: u64,
}

impl InboundSettings {
    /// The settings when `[inbound]` is on with a reply address.
    pub fn from_config(config: &crate::config::InboundConfig) -> Option<Self> {
        let (local, domain) = config.reply_address()?;
        Some(Self {
            reply_local: local.to_string(),
            reply_domain: domain.to_string(),
            authserv_id: config.authserv_id.clone(),
            max_message_bytes: config.max_message_bytes(),
        })
    }
}

/// Which door an email came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Imap,
    Smtp,
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Self::Imap => "IMAP",
            Self::Smtp => "SMTP",
        }
    }
}

/// What became of an email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// It answered the request with this many files.
    Answered { request_id: i64, files: usize },
    /// Held for the firm (the message's id and why).
    Held { id: i64, reason: String },
    /// An out-of-office or other automatic message: recorded, no answer.
    AutoReply,
    /// A bounce; the delivery it names (if found) is now FAILED.
    Bounce { delivery_id: Option<i64> },
    /// Understood but not taken as an answer (the request is closed, nothing in it, a file
    /// refused): the reason.
    Refused { reason: String },
    /// Already received once: nothing changed.
    Duplicate,
    /// No reply address of this server with a live token among its recipients.
    UnknownRecipient,
}

/// Whether `address` is a live reply address (the SMTP listener asks at RCPT time).
pub async fn recipient_is_known(
    env: Env<'_>,
    settings: &InboundSettings,
    address: &str,
) -> Result<bool, OpError> {
    Ok(find_token(env, settings, &[address.to_string()])
        .await?
        .is_some())
}

async fn find_token(
    env: Env<'_>,
    settings: &InboundSettings,
    addresses: &[String],
) -> Result<Option<ReplyToken>, OpError> {
    let mut conn = env.pool.get().await?;
    for address in addresses {
        let Some(token) = token_in_address(address, &settings.reply_local, &settings.reply_domain)
        else {
            continue;
        };
        let hash = token_hash(&token.to_ascii_lowercase());
        if let Some(found) = rows::find_token(&mut conn.as_db(), &hash).await? {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

/// How long a message may stay RECEIVING before its claim is taken for a crashed process's
/// and the message is handled again on its next delivery (IMAP re-fetch, SMTP retry).
/// Handling one message (parsing, storing at most `max_message_mb` of files) takes seconds.
pub const STALE_CLAIM_MINUTES: i64 = 15;

/// Takes one email (its raw bytes, at most `max_message_bytes`: the doors cut before) sent to
/// `envelope_recipients` (the SMTP RCPT addresses; empty for IMAP, where the `To`, `Cc`,
/// `Delivered-To` and `X-Original-To` headers are read) and does what it says.
pub async fn receive(
    env: Env<'_>,
    settings: &InboundSettings,
    raw: &[u8],
    envelope_recipients: &[String],
    source: Source,
) -> Result<Received, OpError> {
    if raw.len() as u64 > settings.max_message_bytes {
        return Ok(Received::Refused {
            reason: "the message is larger than the limit".into(),
        });
    }
    let Some(message) = MessageParser::default().parse(raw) else {
        return Ok(Received::Refused {
            reason: "not an email".into(),
        });
    };
    let mut recipients = envelope_recipients.to_vec();
    if recipients.is_empty() {
        recipients = header_recipients(&message);
    }
    let Some(token) = find_token(env, settings, &recipients).await? else {
        return Ok(Received::UnknownRecipient);
    };
    let key = match message.message_id() {
        Some(id) if !id.trim().is_empty() => format!("{}:mid:{}", token.firm_id, id.trim()),
        _ => format!("{}:sha256:{:x}", token.firm_id, Sha256::digest(raw)),
    };
    let sender = message
        .from()
        .and_then(|from| from.first())
        .and_then(|addr| addr.address())
        .unwrap_or_default()
        .to_string();
    let subject: String = message
        .subject()
        .unwrap_or_default()
        .chars()
        .take(500)
        .collect();
    let auth_values: Vec<&str> = message
        .headers_raw()
        .filter(|(name, _)| name.eq_ignore_ascii_case("Authentication-Results"))
        .map(|(_, value)| value)
        .collect();
    let auth = trusted_auth_results(&auth_values, &settings.authserv_id);
    let now = Utc::now().naive_utc();
    let claimed = {
        let mut conn = env.pool.get().await?;
        rows::claim_message(
            &mut conn.as_db(),
            &NewInboundMessage {
                firm_id: token.firm_id,
                message_key: &key,
                source: source.as_str(),
                request_id: token.request_id,
                contact_id: token.contact_id,
                sender: &sender,
                subject: &subject,
                outcome: "RECEIVING",
                authentication: &auth.summary(),
                received_at: now,
            },
            now - chrono::Duration::minutes(STALE_CLAIM_MINUTES),
        )
        .await?
    };
    let Some(claimed) = claimed else {
        return Ok(Received::Duplicate);
    };
    let decided = decide(env, &token, &claimed, &message, raw, &auth).await;
    if decided.is_err() {
        // Nothing was recorded: the next delivery of this email tries again.
        let mut conn = env.pool.get().await?;
        rows::release_message(&mut conn.as_db(), claimed.id).await?;
    }
    decided
}

fn header_recipients(message: &Message<'_>) -> Vec<String> {
    let mut addresses: Vec<String> = message
        .to()
        .into_iter()
        .chain(message.cc())
        .flat_map(|list| list.iter())
        .filter_map(|addr| addr.address().map(str::to_string))
        .collect();
    for (name, value) in message.headers_raw() {
        if name.eq_ignore_ascii_case("Delivered-To") || name.eq_ignore_ascii_case("X-Original-To") {
            addresses.push(value.trim().to_string());
        }
    }
    addresses
}

async fn decide(
    env: Env<'_>,
    token: &ReplyToken,
    claimed: &InboundMessage,
    message: &Message<'_>,
    raw: &[u8],
    auth: &AuthResults,
) -> Result<Received, OpError> {
    if let Some(bounce) = bounce_of(message, raw) {
        return record_bounce(env, token, claimed, &bounce).await;
    }
    let headers: Vec<(&str, &str)> = message.headers_raw().collect();
    if is_automatic(&headers) || is_out_of_office_subject(message.subject().unwrap_or_default()) {
        settle(env, claimed, "AUTO_REPLY", Some("an automatic reply")).await?;
        return Ok(Received::AutoReply);
    }
    if auth.dmarc_failed() {
        return hold(env, claimed, raw, "DMARC failed for the sender's domain").await;
    }
    let contact = {
        let mut conn = env.pool.get().await?;
        let request =
            work::find_request(&mut conn.as_db(), token.firm_id, token.request_id).await?;
        clients::list_contacts(&mut conn.as_db(), token.firm_id, request.client_id, false)
            .await?
            .into_iter()
            .find(|contact| contact.email.eq_ignore_ascii_case(&claimed.sender))
    };
    let Some(contact) = contact else {
        return hold(
            env,
            claimed,
            raw,
            "the sender is not a contact of this client",
        )
        .await;
    };
    let actor = Actor::Contact {
        contact_id: contact.id,
        client_id: contact.client_id,
        firm_id: contact.firm_id,
    };
    answer_with(env, &actor, claimed, message, Answering::Received).await
}

/// How a message comes to answer: received now (its row is this delivery's RECEIVING claim),
/// or a held one accepted by a member of the firm.
#[derive(Debug, Clone, Copy)]
enum Answering<'a> {
    Received,
    Accepted { staff: &'a Actor },
}

/// Records the message as the answer of `actor` (a contact of the request's client), sends
/// the confirmation and marks the message ANSWERED (or ACCEPTED) in one transaction, whose
/// first statement is a conditional claim of the message (still RECEIVING, or still HELD): of
/// two deliveries or two members accepting at once, one answers; the other changes nothing
/// and gets [`Received::Duplicate`] (a delivery) or CONFLICT (an acceptance). The attachments
/// are staged in the store before and deleted when nothing was recorded.
async fn answer_with(
    env: Env<'_>,
    actor: &Actor,
    claimed: &InboundMessage,
    message: &Message<'_>,
    answering: Answering<'_>,
) -> Result<Received, OpError> {
    let text = message
        .body_text(0)
        .map(|body| cut_quote(&body))
        .unwrap_or_default();
    let files = match stage_attachments(env, actor, claimed.request_id, message).await {
        Ok(files) => files,
        Err(OpError::BadUserInput {
            message: reason, ..
        }) => return refuse(env, claimed, reason, answering).await,
        Err(error) => return Err(error),
    };
    let file_names: Vec<String> = files.iter().map(|file| file.name.clone()).collect();
    let input = AnswerInput {
        message: (!text.is_empty()).then_some(text),
        nothing_to_report: false,
        files,
    };
    let checked = match answers::check_answer(env, actor, claimed.request_id, &input).await {
        Ok(checked) => checked,
        Err(error) => {
            documents::discard(env, &input.files).await;
            if let OpError::BadUserInput {
                message: reason, ..
            } = error
            {
                return refuse(env, claimed, reason, answering).await;
            }
            return Err(error);
        }
    };
    let contact_id = actor.contact()?.contact_id;
    let in_reply_to = message.message_id().map(str::to_string);
    let now = Utc::now().naive_utc();
    let (from, claim) = match answering {
        Answering::Received => (
            "RECEIVING",
            MessageChanges {
                outcome: Some("ANSWERED"),
                ..MessageChanges::default()
            },
        ),
        Answering::Accepted { staff } => (
            "HELD",
            MessageChanges {
                outcome: Some("ACCEPTED"),
                // Its kept copy is deleted once this commits: the answer holds what it said.
                raw_key: Some(None),
                decided_at: Some(Some(now)),
                decided_by_user_id: Some(staff.firm_side()?.user_id),
                ..MessageChanges::default()
            },
        ),
    };
    let count = file_names.len();
    let mut conn = env.pool.get().await?;
    let written = transaction!(conn, |tx| {
        // The claim comes first: a second claimant stops here, before writing anything.
        if !rows::update_message(&mut tx, claimed.firm_id, claimed.id, &[from], &claim).await? {
            return Ok(None);
        }
        let recorded = answers::record_in(&mut tx, actor, &checked, now).await?;
        rows::update_message(
            &mut tx,
            claimed.firm_id,
            claimed.id,
            &[claim.outcome.unwrap_or_default()],
            &MessageChanges {
                answer_id: Some(Some(recorded.answer_id)),
                ..MessageChanges::default()
            },
        )
        .await?;
        let answered = recorded.request;
        enqueue_confirmation(
            &mut tx,
            &answered,
            contact_id,
            claimed,
            &file_names,
            in_reply_to.as_deref(),
        )
        .await?;
        journal::record(
            &mut tx,
            actor,
            now,
            &[Entry::new("reply.received", "request", answered.id)
                .client(answered.client_id)
                .mission(answered.mission_id)
                .detail(serde_json::json!({
                    "inboundMessageId": claimed.id,
                    "files": count,
                    "source": claimed.source,
                    "authentication": claimed.authentication,
                }))],
        )
        .await?;
        if let Answering::Accepted { staff } = answering {
            journal::record(
                &mut tx,
                staff,
                now,
                &[Entry::new("reply.accepted", "request", answered.id)
                    .detail(serde_json::json!({ "inboundMessageId": claimed.id }))],
            )
            .await?;
        }
        Ok::<_, OpError>(Some(answered))
    });
    let answered = match written {
        Ok(Some(answered)) => answered,
        Ok(None) => {
            documents::discard(env, &input.files).await;
            return match answering {
                Answering::Received => Ok(Received::Duplicate),
                Answering::Accepted { .. } => Err(already_decided()),
            };
        }
        Err(error) => {
            documents::discard(env, &input.files).await;
            return Err(error);
        }
    };
    if let Answering::Accepted { .. } = answering {
        delete_kept_copy(env, claimed).await;
    }
    env.publish(RequestEventKind::Answered, &answered);
    Ok(Received::Answered {
        request_id: answered.id,
        files: count,
    })
}

/// A message understood but not taken as an answer (the request is closed, nothing in it, a
/// file refused): REFUSED with the reason. An accepted held message is decided by that member
/// and its kept copy, of no more use, is deleted.
async fn refuse(
    env: Env<'_>,
    claimed: &InboundMessage,
    reason: String,
    answering: Answering<'_>,
) -> Result<Received, OpError> {
    match answering {
        Answering::Received => {
            settle(env, claimed, "REFUSED", Some(&reason)).await?;
        }
        Answering::Accepted { staff } => {
            let mut conn = env.pool.get().await?;
            let decided = rows::update_message(
                &mut conn.as_db(),
                claimed.firm_id,
                claimed.id,
                &["HELD"],
                &MessageChanges {
                    outcome: Some("REFUSED"),
                    reason: Some(Some(&reason)),
                    raw_key: Some(None),
                    decided_at: Some(Some(Utc::now().naive_utc())),
                    decided_by_user_id: Some(staff.firm_side()?.user_id),
                    ..MessageChanges::default()
                },
            )
            .await?;
            drop(conn);
            if !decided {
                return Err(already_decided());
            }
            delete_kept_copy(env, claimed).await;
        }
    }
    Ok(Received::Refused { reason })
}

/// Deletes a decided held message's raw copy, after the decision committed (its row no longer
/// names it). A failure is logged; `ops::sweep` deletes the object on a later pass.
async fn delete_kept_copy(env: Env<'_>, message: &InboundMessage) {
    let (Some(storage), Some(key)) = (env.storage, message.raw_key.as_deref()) else {
        return;
    };
    if let Err(error) = storage.delete(key).await {
        tracing::warn!(%error, message_id = message.id, "cannot delete a decided reply's kept copy; the file sweep will");
    }
}

fn already_decided() -> OpError {
    OpError::Conflict("this reply was already decided".into())
}

/// Writes each attachment to the store through the portal's rules; on a refusal, what was
/// staged is deleted.
async fn stage_attachments(
    env: Env<'_>,
    actor: &Actor,
    request_id: i64,
    message: &Message<'_>,
) -> Result<Vec<StagedFile>, OpError> {
    let mut staged = Vec::new();
    for part in message.attachments() {
        if part.is_message() {
            continue;
        }
        let contents = part.contents();
        let is_image = part
            .content_type()
            .is_some_and(|kind| kind.ctype().eq_ignore_ascii_case("image"));
        let declared_attachment = part
            .content_disposition()
            .is_some_and(|disposition| disposition.is_attachment());
        if is_image
            && part.content_id().is_some()
            && !declared_attachment
            && contents.len() <= INLINE_IMAGE_MAX_BYTES
        {
            continue;
        }
        let name = part.attachment_name().unwrap_or("document").to_string();
        let chunks: Vec<Result<Bytes, std::io::Error>> = contents
            .chunks(64 * 1024)
            .map(|chunk| Ok(Bytes::copy_from_slice(chunk)))
            .collect();
        match documents::stage_file(
            env,
            actor,
            request_id,
            &name,
            futures_util::stream::iter(chunks),
        )
        .await
        {
            Ok(file) => staged.push(file),
            Err(error) => {
                documents::discard(env, &staged).await;
                return Err(error);
            }
        }
    }
    Ok(staged)
}

/// The confirmation email to the contact, in the caller's transaction.
async fn enqueue_confirmation(
    tx: &mut DbConn<'_>,
    request: &work::InformationRequest,
    contact_id: i64,
    claimed: &InboundMessage,
    file_names: &[String],
    in_reply_to: Option<&str>,
) -> Result<(), OpError> {
    let firm = firms::find_firm(tx, request.firm_id).await?;
    let contact = clients::find_contact(tx, request.firm_id, contact_id).await?;
    let language = contact
        .language
        .as_deref()
        .and_then(|language| language.parse::<Language>().ok())
        .unwrap_or_else(|| crate::delivery::firm_language(&firm));
    let period = crate::db::missions::find_lines(tx, firm.id, &[request.mission_line_id])
        .await?
        .first()
        .map(|line| {
            crate::domain::placeholders::period_label(request.due_date, line.frequency, language)
        })
        .unwrap_or_default();
    let now = Utc::now();
    let payload = serde_json::json!({
        "type": "reply.received",
        "timestamp": now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "data": {
            "requestId": gid::encode(Kind::InformationRequest, request.id),
            "requestText": request.text,
            "contactName": contact.name,
            "language": language.as_str(),
            "period": period,
            "fileNames": file_names,
            "inReplyTo": in_reply_to,
        }
    });
    outbox::enqueue_many(
        tx,
        &[outbox::NewDelivery {
            firm_id: request.firm_id,
            delivery_uid: crate::announce::new_delivery_uid(),
            dedupe_key: format!("reply.received:{}", claimed.id),
            kind: DeliveryKind::Email,
            event: DeliveryEvent::RequestAnswered,
            request_id: Some(request.id),
            contact_id: Some(contact.id),
            webhook_endpoint_id: None,
            target: contact.email,
            payload: payload.to_string(),
            status: DeliveryStatus::Pending,
            next_attempt_at: now.naive_utc(),
            created_at: now.naive_utc(),
        }],
    )
    .await?;
    Ok(())
}

/// Sets the final outcome of a message received now (still this delivery's claim).
async fn settle(
    env: Env<'_>,
    claimed: &InboundMessage,
    outcome: &str,
    reason: Option<&str>,
) -> Result<(), OpError> {
    let mut conn = env.pool.get().await?;
    rows::update_message(
        &mut conn.as_db(),
        claimed.firm_id,
        claimed.id,
        &["RECEIVING"],
        &MessageChanges {
            outcome: Some(outcome),
            reason: Some(reason),
            ..MessageChanges::default()
        },
    )
    .await?;
    Ok(())
}

/// Keeps the raw message in the store and holds it for the firm.
async fn hold(
    env: Env<'_>,
    claimed: &InboundMessage,
    raw: &[u8],
    reason: &str,
) -> Result<Received, OpError> {
    let storage = env
        .storage
        .ok_or_else(|| OpError::Internal("no document store to keep a held reply".into()))?;
    let key = format!(
        "inbound/{}/{}.eml",
        claimed.firm_id,
        uuid::Uuid::new_v4().simple()
    );
    let mut writing = storage.begin(&key).await.map_err(documents::store_error)?;
    writing.write(raw).await.map_err(documents::store_error)?;
    writing.finish().await.map_err(documents::store_error)?;
    let now = Utc::now().naive_utc();
    let mut conn = env.pool.get().await?;
    let held = transaction!(conn, |tx| {
        if !rows::update_message(
            &mut tx,
            claimed.firm_id,
            claimed.id,
            &["RECEIVING"],
            &MessageChanges {
                outcome: Some("HELD"),
                reason: Some(Some(reason)),
                raw_key: Some(Some(&key)),
                ..MessageChanges::default()
            },
        )
        .await?
        {
            return Ok(false);
        }
        journal::record(
            &mut tx,
            &Actor::System {
                firm_id: claimed.firm_id,
            },
            now,
            &[
                Entry::new("reply.held", "request", claimed.request_id).detail(serde_json::json!({
                    "inboundMessageId": claimed.id,
                    "sender": claimed.sender,
                    "reason": reason,
                })),
            ],
        )
        .await?;
        Ok::<_, OpError>(true)
    })?;
    if !held {
        // Another delivery of this message took the claim over (this one was stale).
        if let Err(error) = storage.delete(&key).await {
            tracing::warn!(%error, "cannot delete a held reply's bytes kept twice");
        }
        return Ok(Received::Duplicate);
    }
    Ok(Received::Held {
        id: claimed.id,
        reason: reason.to_string(),
    })
}

/// A delivery status notification: why it failed and the original Message-ID it names.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Bounce {
    reason: String,
    original_message_id: Option<String>,
}

fn bounce_of(message: &Message<'_>, raw: &[u8]) -> Option<Bounce> {
    let is_report = message.content_type().is_some_and(|kind| {
        kind.ctype().eq_ignore_ascii_case("multipart")
            && kind
                .subtype()
                .is_some_and(|sub| sub.eq_ignore_ascii_case("report"))
            && kind
                .attribute("report-type")
                .is_some_and(|report| report.eq_ignore_ascii_case("delivery-status"))
    });
    if !is_report {
        return None;
    }
    let mut status = None;
    let mut diagnostic = None;
    let mut original_message_id = None;
    for part in &message.parts {
        let Some(kind) = part.content_type() else {
            continue;
        };
        let start = (part.offset_body as usize).min(raw.len());
        let end = (part.offset_end as usize).clamp(start, raw.len());
        let body = String::from_utf8_lossy(&raw[start..end]);
        let subtype = kind.subtype().unwrap_or_default().to_ascii_lowercase();
        if subtype == "delivery-status" {
            for line in body.lines() {
                if let Some((name, value)) = line.split_once(':') {
                    match name.trim().to_ascii_lowercase().as_str() {
                        "status" if status.is_none() => status = Some(value.trim().to_string()),
                        "diagnostic-code" if diagnostic.is_none() => {
                            diagnostic = Some(value.trim().to_string());
                        }
                        _ => {}
                    }
                }
            }
        } else if subtype == "rfc822" || subtype == "rfc822-headers" {
            original_message_id = body.lines().find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.trim()
                    .eq_ignore_ascii_case("message-id")
                    .then(|| value.trim().trim_matches(['<', '>']).to_string())
            });
        }
    }
    let reason = match (status, diagnostic) {
        (Some(status), Some(diagnostic)) => format!("bounced: {status} {diagnostic}"),
        (Some(status), None) => format!("bounced: {status}"),
        (None, Some(diagnostic)) => format!("bounced: {diagnostic}"),
        (None, None) => "bounced".to_string(),
    };
    Some(Bounce {
        reason: reason.chars().take(500).collect(),
        original_message_id,
    })
}

async fn record_bounce(
    env: Env<'_>,
    token: &ReplyToken,
    claimed: &InboundMessage,
    bounce: &Bounce,
) -> Result<Received, OpError> {
    let now = Utc::now().naive_utc();
    let mut conn = env.pool.get().await?;
    let by_uid = match bounce
        .original_message_id
        .as_deref()
        .and_then(|id| id.split_once('@'))
    {
        Some((uid, _)) => rows::delivery_by_uid(&mut conn.as_db(), token.firm_id, uid).await?,
        None => None,
    };
    let delivery_id = token.delivery_id.or(by_uid);
    let recorded = transaction!(conn, |tx| {
        if !rows::update_message(
            &mut tx,
            claimed.firm_id,
            claimed.id,
            &["RECEIVING"],
            &MessageChanges {
                outcome: Some("BOUNCE"),
                reason: Some(Some(&bounce.reason)),
                ..MessageChanges::default()
            },
        )
        .await?
        {
            return Ok(false);
        }
        let marked = match delivery_id {
            Some(id) => {
                rows::mark_delivery_bounced(&mut tx, token.firm_id, id, &bounce.reason).await?
            }
            None => false,
        };
        if marked {
            journal::record(
                &mut tx,
                &Actor::System {
                    firm_id: token.firm_id,
                },
                now,
                &[Entry::new(
                    "delivery.bounced",
                    "delivery",
                    delivery_id.unwrap_or_default(),
                )
                .status(Some("DELIVERED"), Some("FAILED"))
                .detail(serde_json::json!({
                    "requestId": token.request_id,
                    "contactId": token.contact_id,
                    "reason": bounce.reason,
                }))],
            )
            .await?;
        }
        Ok::<_, OpError>(true)
    })?;
    if !recorded {
        return Ok(Received::Duplicate);
    }
    Ok(Received::Bounce { delivery_id })
}

/// A held message, as the firm sees it.
pub async fn held_page(
    env: Env<'_>,
    actor: &Actor,
    page: &crate::db::page::Keyset<i64>,
) -> Result<(Vec<InboundMessage>, i64), OpError> {
    let firm = actor.firm_side()?;
    let mut conn = env.pool.get().await?;
    let rows = rows::page_messages(&mut conn.as_db(), firm.firm_id, "HELD", page).await?;
    let total = rows::count_messages(&mut conn.as_db(), firm.firm_id, "HELD").await?;
    Ok((rows, total))
}

async fn held_message(env: Env<'_>, firm_id: i64, id: i64) -> Result<InboundMessage, OpError> {
    let mut conn = env.pool.get().await?;
    let message = rows::find_message(&mut conn.as_db(), firm_id, id)
        .await?
        .ok_or(OpError::NotFound("held reply"))?;
    if message.outcome != "HELD" {
        return Err(OpError::Conflict(format!(
            "this reply was already decided ({})",
            message.outcome
        )));
    }
    Ok(message)
}

/// The firm accepts a held reply: it answers the request as the contact the reply address
/// was given to (the firm vouches for the sender). The acceptance is a conditional claim (the
/// reply still HELD) in the answer's transaction: of two members accepting at once, one
/// answers and the other gets CONFLICT.
pub async fn accept_held(env: Env<'_>, actor: &Actor, id: i64) -> Result<Received, OpError> {
    let firm = actor.firm_side()?;
    let held = held_message(env, firm.firm_id, id).await?;
    // Every door of `rappel serve` (HTTP and WebSocket) is given the store; a caller without
    // one (the schema run on its own) is told why, not handed an internal error.
    let storage = env.storage.ok_or_else(|| {
        OpError::bad_input(
            "id",
            "a held reply cannot be read here: this door was given no document store",
        )
    })?;
    let key = held
        .raw_key
        .clone()
        .ok_or_else(|| OpError::Internal(format!("held reply {} has no kept copy", held.id)))?;
    let read = async {
        let mut stream = storage.read(&key).await.map_err(documents::store_error)?;
        let mut raw = Vec::new();
        while let Some(chunk) = futures_util::StreamExt::next(&mut stream).await {
            raw.extend_from_slice(&chunk.map_err(|error| OpError::Internal(error.to_string()))?);
        }
        Ok::<_, OpError>(raw)
    };
    let raw = match read.await {
        Ok(raw) => raw,
        // Another member's acceptance (or rejection) committed meanwhile and deleted the kept
        // copy: that is a decided reply (CONFLICT), not an internal error.
        Err(error) => {
            held_message(env, firm.firm_id, id).await?;
            return Err(error);
        }
    };
    let message = MessageParser::default()
        .parse(&raw)
        .ok_or_else(|| OpError::Internal("a held reply no longer parses".into()))?;
    let contact = {
        let mut conn = env.pool.get().await?;
        clients::find_contact(&mut conn.as_db(), firm.firm_id, held.contact_id).await?
    };
    if contact.archived_at.is_some() {
        return Err(OpError::bad_input(
            "id",
            "the contact this reply address was given to is archived",
        ));
    }
    let contact_actor = Actor::Contact {
        contact_id: contact.id,
        client_id: contact.client_id,
        firm_id: contact.firm_id,
    };
    answer_with(
        env,
        &contact_actor,
        &held,
        &message,
        Answering::Accepted { staff: actor },
    )
    .await
}

/// The firm rejects a held reply: it never answers; its kept bytes are deleted.
pub async fn reject_held(env: Env<'_>, actor: &Actor, id: i64) -> Result<InboundMessage, OpError> {
    let firm = actor.firm_side()?;
    let held = held_message(env, firm.firm_id, id).await?;
    let now = Utc::now().naive_utc();
    let mut conn = env.pool.get().await?;
    transaction!(conn, |tx| {
        let changed = rows::update_message(
            &mut tx,
            firm.firm_id,
            id,
            &["HELD"],
            &MessageChanges {
                outcome: Some("REJECTED"),
                raw_key: Some(None),
                decided_at: Some(Some(now)),
                decided_by_user_id: Some(firm.user_id),
                ..MessageChanges::default()
            },
        )
        .await?;
        if !changed {
            return Err(OpError::changed_meanwhile("held reply"));
        }
        journal::record(
            &mut tx,
            actor,
            now,
            &[Entry::new("reply.rejected", "request", held.request_id)
                .detail(serde_json::json!({ "inboundMessageId": held.id, "sender": held.sender }))],
        )
        .await?;
        Ok::<_, OpError>(())
    })?;
    delete_kept_copy(env, &held).await;
    held_message_any(env, firm.firm_id, id).await
}

/// A reply of the firm's, whatever became of it (after a decision).
pub async fn decided(env: Env<'_>, actor: &Actor, id: i64) -> Result<InboundMessage, OpError> {
    held_message_any(env, actor.firm_side()?.firm_id, id).await
}

async fn held_message_any(env: Env<'_>, firm_id: i64, id: i64) -> Result<InboundMessage, OpError> {
    let mut conn = env.pool.get().await?;
    rows::find_message(&mut conn.as_db(), firm_id, id)
        .await?
        .ok_or(OpError::NotFound("held reply"))
}
