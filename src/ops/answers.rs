//! A contact's answers to its client's requests: a message, "nothing to report" for the
//! period, and/or documents staged by `ops::documents`. The answer, its file rows, the
//! request's move to ANSWERED, the webhook deliveries (with the files' metadata) and the
//! email to the firm are one transaction; subscribers hear of it after the commit. A refused
//! answer deletes its staged files. An operation that answers together with a change of its
//! own (a reply by email) checks with [`check_answer`] and records with [`record_in`] inside
//! its own transaction.

use chrono::Utc;

use super::documents::{self, StagedFile};
use super::journal::{self, Entry};
use super::{Actor, Env, OpError, enqueue_webhooks_with, found};
use crate::db::files::{self, AnswerFile, NewAnswerFile};
use crate::db::work::{self, InformationRequest};
use crate::db::{DbConn, clients, firms, outbox};
use crate::domain::gid::{self, Kind};
use crate::domain::validation::{MAX_TEXT_CHARS, check_text};
use crate::domain::{DeliveryEvent, RequestStatus};
use crate::events::RequestEventKind;
use crate::transaction;

/// An answer as a door hands it over.
#[derive(Debug, Clone, Default)]
pub struct AnswerInput {
    /// Blank means none.
    pub message: Option<String>,
    pub nothing_to_report: bool,
    /// Documents staged with `ops::documents::stage_file` (at most 20 by default).
    pub files: Vec<StagedFile>,
}

/// Answers a request of the contact's own client. The request becomes ANSWERED and its
/// reminders stop; a closed or withdrawn request takes no answer.
///
/// The staged files are recorded with the answer; when the answer is refused they are
/// deleted from the store.
pub async fn answer_request(
    env: Env<'_>,
    actor: &Actor,
    id: i64,
    input: &AnswerInput,
) -> Result<InformationRequest, OpError> {
    let answered = record_answer(env, actor, id, input).await;
    if answered.is_err() {
        documents::discard(env, &input.files).await;
    }
    answered
}

async fn record_answer(
    env: Env<'_>,
    actor: &Actor,
    id: i64,
    input: &AnswerInput,
) -> Result<InformationRequest, OpError> {
    let checked = check_answer(env, actor, id, input).await?;
    let now = Utc::now().naive_utc();
    let mut conn = env.pool.get().await?;
    let recorded = transaction!(conn, |tx| {
        record_in(&mut tx, actor, &checked, now).await
    })?;
    env.publish(RequestEventKind::Answered, &recorded.request);
    Ok(recorded.request)
}

/// An answer whose input and request were checked, ready to be recorded by [`record_in`].
#[derive(Debug)]
pub(crate) struct CheckedAnswer<'a> {
    request_id: i64,
    input: &'a AnswerInput,
    /// The checked message; `None` when blank.
    message: Option<String>,
    /// The request's status when it was checked (the journal's "before").
    status_before: RequestStatus,
}

/// Checks an answer before its transaction: its content, its number of files, and that the
/// request is the contact's client's and takes answers. BAD_USER_INPUT or NOT_FOUND
/// otherwise; nothing is written and no staged file is deleted here.
pub(crate) async fn check_answer<'a>(
    env: Env<'_>,
    actor: &Actor,
    id: i64,
    input: &'a AnswerInput,
) -> Result<CheckedAnswer<'a>, OpError> {
    let contact = actor.contact()?;
    let message = input
        .message
        .as_deref()
        .filter(|text| !text.trim().is_empty())
        .map(|text| check_text("message", text, MAX_TEXT_CHARS))
        .transpose()?;
    if message.is_none() && !input.nothing_to_report && input.files.is_empty() {
        return Err(OpError::bad_input(
            "message",
            "write a message, send files, or set nothingToReport to true",
        ));
    }
    let most = documents::max_files(&env);
    if input.files.len() > most {
        return Err(OpError::bad_input(
            "files",
            format!(
                "an answer may carry at most {most} files, this one has {}",
                input.files.len()
            ),
        ));
    }
    let mut conn = env.pool.get().await?;
    let current = found(
        work::find_client_request(&mut conn.as_db(), contact.firm_id, contact.client_id, id).await,
        "request",
    )?;
    documents::check_answerable(current.status)?;
    Ok(CheckedAnswer {
        request_id: id,
        input,
        message,
        status_before: current.status,
    })
}

/// What [`record_in`] wrote.
#[derive(Debug)]
pub(crate) struct RecordedAnswer {
    /// The request, now ANSWERED.
    pub request: InformationRequest,
    pub answer_id: i64,
}

/// Records a checked answer in the caller's transaction: the answer, its file rows, the
/// request's move to ANSWERED (CONFLICT when it was closed meanwhile), the webhooks, the
/// firm's email and the journal. Another operation that must answer atomically with a change
/// of its own (a reply by email marked ANSWERED) calls it inside its transaction; the caller
/// publishes [`RequestEventKind::Answered`] after the commit and discards the staged files
/// when the transaction fails.
pub(crate) async fn record_in(
    tx: &mut DbConn<'_>,
    actor: &Actor,
    checked: &CheckedAnswer<'_>,
    now: chrono::NaiveDateTime,
) -> Result<RecordedAnswer, OpError> {
    let contact = actor.contact()?;
    let id = checked.request_id;
    let input = checked.input;
    let answer = work::insert_answer(
        tx,
        &work::NewRequestAnswer {
            firm_id: contact.firm_id,
            request_id: id,
            contact_id: Some(contact.contact_id),
            message: checked.message.as_deref(),
            nothing_to_report: input.nothing_to_report,
            created_at: now,
        },
    )
    .await?;
    let answered = work::transition_request(
        tx,
        contact.firm_id,
        id,
        &[RequestStatus::Open, RequestStatus::Answered],
        RequestStatus::Answered,
        now,
    )
    .await?
    .ok_or_else(|| OpError::changed_meanwhile("request"))?;
    let rows: Vec<NewAnswerFile<'_>> = input
        .files
        .iter()
        .map(|file| NewAnswerFile {
            firm_id: contact.firm_id,
            client_id: contact.client_id,
            request_id: id,
            answer_id: answer.id,
            uploaded_by_contact_id: Some(contact.contact_id),
            name: &file.name,
            size_bytes: file.size,
            media_type: &file.media_type,
            sha256: &file.sha256,
            storage_key: &file.key,
            created_at: now,
        })
        .collect();
    let recorded = files::insert(tx, &rows).await?;
    let answer_data = answer_data(&answer, &recorded);
    enqueue_webhooks_with(
        tx,
        &answered,
        DeliveryEvent::RequestAnswered,
        Some(answer_data.clone()),
    )
    .await?;
    tell_the_firm(tx, &answered, &answer, answer_data).await?;
    journal::record(
        tx,
        actor,
        now,
        &[Entry::new("request.answered", "request", id)
            .client(answered.client_id)
            .mission(answered.mission_id)
            .status(
                Some(checked.status_before.as_str()),
                Some(answered.status.as_str()),
            )
            .detail(serde_json::json!({
                "answerId": answer.id,
                "files": recorded
                    .iter()
                    .map(|file| serde_json::json!({ "id": file.id, "name": file.name }))
                    .collect::<Vec<_>>(),
            }))],
    )
    .await?;
    Ok(RecordedAnswer {
        request: answered,
        answer_id: answer.id,
    })
}

/// What the answer says, as webhooks and the firm's email carry it: the message, "nothing to
/// report" and each file's metadata with its download path (never its bytes).
fn answer_data(answer: &work::RequestAnswer, recorded: &[AnswerFile]) -> serde_json::Value {
    serde_json::json!({
        "id": gid::encode(Kind::RequestAnswer, answer.id),
        "message": answer.message,
        "nothingToReport": answer.nothing_to_report,
        "files": recorded.iter().map(file_data).collect::<Vec<_>>(),
    })
}

/// A file's metadata in a webhook or an email payload.
pub fn file_data(file: &AnswerFile) -> serde_json::Value {
    serde_json::json!({
        "id": gid::encode(Kind::AnswerFile, file.id),
        "name": file.name,
        "size": file.size_bytes,
        "mediaType": file.media_type,
        "sha256": file.sha256,
        "downloadPath": format!("/files/{}", file.id),
    })
}

/// Enqueues one email per admin of the firm (requests have no assignee) naming the client,
/// the request, the message and the files, in the caller's transaction.
async fn tell_the_firm(
    tx: &mut DbConn<'_>,
    request: &InformationRequest,
    answer: &work::RequestAnswer,
    answer_data: serde_json::Value,
) -> Result<(), OpError> {
    let firm = firms::find_firm(tx, request.firm_id).await?;
    let client = clients::find_client(tx, request.firm_id, request.client_id).await?;
    let contact_name = match answer.contact_id {
        Some(contact_id) => {
            clients::find_contact(tx, request.firm_id, contact_id)
                .await?
                .name
        }
        None => String::new(),
    };
    let now = Utc::now();
    let notices: Vec<outbox::NewDelivery> = firms::list_users(tx, request.firm_id)
        .await?
        .into_iter()
        .filter(|user| user.role == crate::domain::Role::Admin)
        .map(|admin| {
            let payload = serde_json::json!({
                "type": DeliveryEvent::RequestAnswered.as_str(),
                "timestamp": now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "data": {
                    "requestId": gid::encode(Kind::InformationRequest, request.id),
                    "requestText": request.text,
                    "dueDate": request.due_date.to_string(),
                    "clientName": client.name,
                    "contactName": contact_name,
                    "staffName": admin.name,
                    "firmName": firm.name,
                    "answer": answer_data,
                }
            });
            outbox::NewDelivery {
                firm_id: request.firm_id,
                delivery_uid: crate::announce::new_delivery_uid(),
                dedupe_key: format!(
                    "{}:{}:answer:{}:user:{}",
                    DeliveryEvent::RequestAnswered.as_str(),
                    request.id,
                    answer.id,
                    admin.id
                ),
                kind: crate::domain::DeliveryKind::Email,
                event: DeliveryEvent::RequestAnswered,
                request_id: Some(request.id),
                contact_id: None,
                webhook_endpoint_id: None,
                target: admin.email,
                payload: payload.to_string(),
                status: crate::domain::DeliveryStatus::Pending,
                next_attempt_at: now.naive_utc(),
                created_at: now.naive_utc(),
            }
        })
        .collect();
    outbox::enqueue_many(tx, &notices).await?;
    Ok(())
}
