//! The email a firm's admins get when a client answers a request: who answered, which
//! request, the message, and each deposited file with a download link (never the file's
//! bytes), in the firm's language. Rendered from the delivery's payload (written by
//! `ops::answers` in the answer's transaction) through the templates `answer_notice.*`.
//!
//! Never here: an attachment, a database read, or a link that does not go through
//! `GET /files/{id}` (which checks the reader).

use std::time::SystemTime;

use chrono::{DateTime, Utc};
use lettre::Message;
use lettre::address::Envelope;
use lettre::message::{Mailbox, MultiPart};
use serde::Serialize;

use super::email::{EmailError, check_message_id, parse_address, single_line};
use crate::domain::Language;

/// One file as the email lists it.
#[derive(Debug, Clone, Serialize)]
pub struct NoticeFile {
    pub name: String,
    /// "1.2 MB", "340 KB", "12 B".
    pub size: String,
    pub media_type: String,
    pub url: String,
}

/// What the notice says.
#[derive(Debug, Clone, Serialize)]
pub struct AnswerNotice {
    pub lang: &'static str,
    pub firm_name: String,
    pub staff_name: String,
    pub client_name: String,
    pub contact_name: String,
    pub request_text: String,
    /// The request's first words, for the subject.
    pub request_summary: String,
    pub due_date: String,
    pub message: Option<String>,
    pub nothing_to_report: bool,
    pub files: Vec<NoticeFile>,
}

impl AnswerNotice {
    /// Reads a notice from the delivery's payload; links start with `public_base_url`.
    pub fn from_payload(payload: &str, language: Language, public_base_url: &str) -> Option<Self> {
        let value: serde_json::Value = serde_json::from_str(payload).ok()?;
        let data = &value["data"];
        let text = |key: &str| data[key].as_str().unwrap_or_default().to_string();
        let answer = &data["answer"];
        let files = answer["files"]
            .as_array()
            .map(|files| {
                files
                    .iter()
                    .map(|file| NoticeFile {
                        name: file["name"].as_str().unwrap_or_default().to_string(),
                        size: human_size(file["size"].as_i64().unwrap_or_default()),
                        media_type: file["mediaType"].as_str().unwrap_or_default().to_string(),
                        url: format!(
                            "{}{}",
                            public_base_url.trim_end_matches('/'),
                            file["downloadPath"].as_str().unwrap_or_default()
                        ),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Some(Self {
            lang: language.as_str(),
            firm_name: text("firmName"),
            staff_name: text("staffName"),
            client_name: text("clientName"),
            contact_name: text("contactName"),
            request_summary: summary(&text("requestText")),
            request_text: text("requestText"),
            due_date: text("dueDate"),
            message: answer["message"].as_str().map(str::to_string),
            nothing_to_report: answer["nothingToReport"].as_bool().unwrap_or_default(),
            files,
        })
    }
}

/// The first 60 characters of a text on one line, with "…" when cut.
fn summary(text: &str) -> String {
    let line = single_line(text);
    if line.chars().count() > 60 {
        format!("{}…", line.chars().take(60).collect::<String>())
    } else {
        line
    }
}

/// A size for people: bytes, KB or MB (powers of 1024).
fn human_size(bytes: i64) -> String {
    const KIB: f64 = 1024.0;
    let value = bytes as f64;
    if value >= KIB * KIB {
        format!("{:.1} MB", value / (KIB * KIB))
    } else if value >= KIB {
        format!("{:.0} KB", value / KIB)
    } else {
        format!("{bytes} B")
    }
}

/// Builds the MIME message of a notice for one staff member: from the firm's name at
/// `from_address`, text and HTML parts, a stable Message-ID.
pub fn build_answer_notice(
    from_address: &str,
    notice: &AnswerNotice,
    to: &str,
    message_id: &str,
    date: DateTime<Utc>,
) -> Result<Message, String> {
    let from = parse_address("sender address", from_address).map_err(|e| e.to_string())?;
    let recipient = parse_address("recipient address", to).map_err(|e| e.to_string())?;
    check_message_id(message_id).map_err(|e: EmailError| e.to_string())?;
    let render = |name: &str| crate::templates::render(name, notice).map_err(|e| e.to_string());
    let subject = single_line(&render("answer_notice.subject")?);
    let text = render("answer_notice.txt")?;
    let html = render("answer_notice.html")?;
    let envelope =
        Envelope::new(Some(from.clone()), vec![recipient.clone()]).map_err(|e| e.to_string())?;
    let firm_name = single_line(&notice.firm_name);
    let staff_name = single_line(&notice.staff_name);
    Message::builder()
        .from(Mailbox::new(
            (!firm_name.is_empty()).then_some(firm_name),
            from,
        ))
        .to(Mailbox::new(
            (!staff_name.is_empty()).then_some(staff_name),
            recipient,
        ))
        .subject(subject)
        .date(SystemTime::from(date))
        .message_id(Some(format!("<{message_id}>")))
        .envelope(envelope)
        .multipart(MultiPart::alternative_plain_html(text, html))
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notice_names_the_client_the_request_the_message_and_the_files() {
        let payload = serde_json::json!({"data": {
            "clientName": "Boulangerie <Martin>", "contactName": "Marie", "staffName": "Alice",
            "firmName": "Cabinet", "requestText": "Relevés de mars", "dueDate": "2027-03-30",
            "answer": {"message": "Voici", "nothingToReport": false, "files": [
                {"name": "relevé.pdf", "size": 2048, "mediaType": "application/pdf",
                 "downloadPath": "/files/7"}]}}})
        .to_string();
        let notice = AnswerNotice::from_payload(&payload, Language::French, "https://r.example/")
            .expect("notice");
        let message = build_answer_notice(
            "rappel@r.example",
            &notice,
            "alice@cabinet.example",
            "msg_1@r.example",
            Utc::now(),
        )
        .expect("message");
        let raw = String::from_utf8(message.formatted()).expect("utf8");
        assert!(raw.contains("https://r.example/files/7"), "{raw}");
        assert!(raw.contains("Boulangerie &lt;Martin&gt;"), "{raw}");
        assert_eq!(human_size(2048), "2 KB");
    }
}
