//! A contact's answers to its client's requests: a message, or "nothing to report" for the
//! period. The answer, the request's move to ANSWERED and the webhook deliveries are one
//! transaction; subscribers hear of it after the commit.

use chrono::Utc;

use super::journal::{self, Entry};
use super::{Actor, Env, OpError, enqueue_webhooks, found};
use crate::db::work::{self, InformationRequest};
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
}

/// Answers a request of the contact's own client. The request becomes ANSWERED and its
/// reminders stop; a closed or withdrawn request takes no answer.
pub async fn answer_request(
    env: Env<'_>,
    actor: &Actor,
    id: i64,
    input: &AnswerInput,
) -> Result<InformationRequest, OpError> {
    let contact = actor.contact()?;
    let message = input
        .message
        .as_deref()
        .filter(|text| !text.trim().is_empty())
        .map(|text| check_text("message", text, MAX_TEXT_CHARS))
        .transpose()?;
    if message.is_none() && !input.nothing_to_report {
        return Err(OpError::bad_input(
            "message",
            "write a message, or set nothingToReport to true",
        ));
    }
    let mut conn = env.pool.get().await?;
    let current = found(
        work::find_client_request(&mut conn.as_db(), contact.firm_id, contact.client_id, id).await,
        "request",
    )?;
    if !matches!(
        current.status,
        RequestStatus::Open | RequestStatus::Answered
    ) {
        return Err(OpError::bad_input(
            "id",
            "this request is closed; contact the firm if something is missing",
        ));
    }
    let now = Utc::now().naive_utc();
    let answered = transaction!(conn, |tx| {
        work::insert_answer(
            &mut tx,
            &work::NewRequestAnswer {
                firm_id: contact.firm_id,
                request_id: id,
                contact_id: Some(contact.contact_id),
                message: message.as_deref(),
                nothing_to_report: input.nothing_to_report,
                created_at: now,
            },
        )
        .await?;
        let answered = work::transition_request(
            &mut tx,
            contact.firm_id,
            id,
            &[RequestStatus::Open, RequestStatus::Answered],
            RequestStatus::Answered,
            now,
        )
        .await?
        .ok_or_else(|| OpError::changed_meanwhile("request"))?;
        enqueue_webhooks(&mut tx, &answered, DeliveryEvent::RequestAnswered).await?;
        journal::record(
            &mut tx,
            actor,
            now,
            &[Entry::new("request.answered", "request", id)
                .client(answered.client_id)
                .mission(answered.mission_id)
                .status(
                    Some(current.status.as_str()),
                    Some(answered.status.as_str()),
                )],
        )
        .await?;
        Ok::<_, OpError>(answered)
    })?;
    env.publish(RequestEventKind::Answered, &answered);
    Ok(answered)
}
