//! The short email a contact gets when a reply to a request email was recorded as its
//! answer: "Nous avons bien reçu vos 3 documents pour la demande de janvier 2027", in the
//! contact's language, threaded under the reply (`In-Reply-To`) and marked
//! `Auto-Submitted: auto-replied` (RFC 3834) so that no responder answers it. Rendered from
//! the delivery's payload (written by `ops::replies` in the answer's transaction).
//!
//! Never here: a database read, an attachment, a firm-only field.

use std::time::SystemTime;

use chrono::{DateTime, Utc};
use lettre::Message;
use lettre::address::Envelope;
use lettre::message::header::{Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use serde::Serialize;

use super::email::{check_message_id, parse_address, single_line};

/// What the confirmation says.
#[derive(Debug, Clone, Serialize)]
pub struct ReplyConfirmation {
    pub lang: String,
    pub firm_name: String,
    pub contact_name: String,
    pub request_text: String,
    /// "janvier 2027"; empty when unknown.
    pub period: String,
    pub file_count: usize,
    pub file_names: Vec<String>,
    /// The reply's Message-ID, with its angle brackets, when it had one.
    pub in_reply_to: Option<String>,
}

impl ReplyConfirmation {
    /// Reads a confirmation from the delivery's payload (`data` of the outbox row).
    pub fn from_payload(payload: &str, firm_name: &str) -> Option<Self> {
        let value: serde_json::Value = serde_json::from_str(payload).ok()?;
        let data = &value["data"];
        let text = |key: &str| data[key].as_str().unwrap_or_default().to_string();
        let file_names: Vec<String> = data["fileNames"]
            .as_array()
            .map(|names| {
                names
                    .iter()
                    .filter_map(|name| name.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        Some(Self {
            lang: if text("language") == "en" { "en" } else { "fr" }.into(),
            firm_name: firm_name.to_string(),
            contact_name: text("contactName"),
            request_text: text("requestText"),
            period: text("period"),
            file_count: file_names.len(),
            file_names,
            in_reply_to: data["inReplyTo"]
                .as_str()
                .filter(|id| check_message_id(id).is_ok())
                .map(|id| format!("<{id}>")),
        })
    }
}

/// `Auto-Submitted: auto-replied` (RFC 3834).
#[derive(Debug, Clone)]
struct AutoReplied;

impl Header for AutoReplied {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }

    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self)
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "auto-replied".to_owned())
    }
}

/// Builds the confirmation for the delivery's payload.
pub fn build(
    from_address: &str,
    firm_name: &str,
    payload: &str,
    to: &str,
    message_id: &str,
    date: DateTime<Utc>,
) -> Result<Message, String> {
    let confirmation = ReplyConfirmation::from_payload(payload, firm_name)
        .ok_or("the confirmation's payload is not JSON")?;
    let from = parse_address("sender address", from_address).map_err(|e| e.to_string())?;
    let recipient = parse_address("recipient address", to).map_err(|e| e.to_string())?;
    check_message_id(message_id).map_err(|e| e.to_string())?;
    let render =
        |name: &str| crate::templates::render(name, &confirmation).map_err(|e| e.to_string());
    let subject = single_line(&render("reply_received.subject")?);
    let text = render("reply_received.txt")?;
    let html = render("reply_received.html")?;
    let envelope =
        Envelope::new(Some(from.clone()), vec![recipient.clone()]).map_err(|e| e.to_string())?;
    let firm_name = single_line(&confirmation.firm_name);
    let contact_name = single_line(&confirmation.contact_name);
    let mut builder = Message::builder()
        .from(Mailbox::new(
            (!firm_name.is_empty()).then_some(firm_name),
            from,
        ))
        .to(Mailbox::new(
            (!contact_name.is_empty()).then_some(contact_name),
            recipient,
        ))
        .subject(subject)
        .date(SystemTime::from(date))
        .message_id(Some(format!("<{message_id}>")))
        .header(AutoReplied)
        .envelope(envelope);
    if let Some(in_reply_to) = confirmation.in_reply_to {
        builder = builder
            .in_reply_to(in_reply_to.clone())
            .references(in_reply_to);
    }
    builder
        .multipart(MultiPart::alternative_plain_html(text, html))
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_subject_counts_the_documents_in_the_contacts_language() {
        let payload = serde_json::json!({"data": {
            "language": "fr", "contactName": "Léa", "requestText": "Factures",
            "period": "janvier 2027", "fileNames": ["a.pdf", "b.pdf", "c.pdf"],
            "inReplyTo": "abc@client.fr",
        }})
        .to_string();
        let confirmation = ReplyConfirmation::from_payload(&payload, "Cabinet").expect("payload");
        let subject =
            crate::templates::render("reply_received.subject", &confirmation).expect("rendered");
        assert_eq!(
            subject.trim(),
            "Nous avons bien reçu vos 3 documents pour la demande de janvier 2027"
        );
        let english = payload.replace("\"fr\"", "\"en\"");
        let confirmation = ReplyConfirmation::from_payload(&english, "Cabinet").expect("payload");
        let subject =
            crate::templates::render("reply_received.subject", &confirmation).expect("rendered");
        assert_eq!(
            subject.trim(),
            "We received your 3 documents for the janvier 2027 request"
        );
    }
}
