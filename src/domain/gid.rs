//! Global ids: the one spelling of a row's id everywhere it leaves Rappel (GraphQL `ID`s,
//! webhook payloads, subscription events, the journal), and the one parser of the ids callers
//! send back. An id is base64url without padding of `Kind:row` (Relay's convention, URL-safe
//! so it fits a path or a query string unescaped): `Task:123` is `VGFzazoxMjM`. Callers treat
//! it as opaque; `node(id:)` reads any of them back.
//!
//! The kind names the row's table, not one view's type: a request has one id whether the firm
//! reads it as an `InformationRequest` or its client as a `ClientRequest`, so an id from a
//! webhook, a subscription or either view resolves the same row. Pure: no I/O, no other
//! Rappel module (serde_json only reads and writes journal details).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// What a global id can name. The names are part of the ids: never rename one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Firm,
    Category,
    Service,
    ServiceItem,
    Client,
    Contact,
    Mission,
    MissionLine,
    Task,
    InformationRequest,
    RequestAnswer,
    AnswerFile,
    StaffMember,
    WebhookEndpoint,
    Delivery,
    HeldReply,
    HistoryEntry,
    CalendarFeed,
}

impl Kind {
    /// Every kind.
    pub const ALL: &'static [Kind] = &[
        Kind::Firm,
        Kind::Category,
        Kind::Service,
        Kind::ServiceItem,
        Kind::Client,
        Kind::Contact,
        Kind::Mission,
        Kind::MissionLine,
        Kind::Task,
        Kind::InformationRequest,
        Kind::RequestAnswer,
        Kind::AnswerFile,
        Kind::StaffMember,
        Kind::WebhookEndpoint,
        Kind::Delivery,
        Kind::HeldReply,
        Kind::HistoryEntry,
        Kind::CalendarFeed,
    ];

    /// The name written in the id: the firm view's type of the row.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Firm => "Firm",
            Kind::Category => "Category",
            Kind::Service => "Service",
            Kind::ServiceItem => "ServiceItem",
            Kind::Client => "Client",
            Kind::Contact => "Contact",
            Kind::Mission => "Mission",
            Kind::MissionLine => "MissionLine",
            Kind::Task => "Task",
            Kind::InformationRequest => "InformationRequest",
            Kind::RequestAnswer => "RequestAnswer",
            Kind::AnswerFile => "AnswerFile",
            Kind::StaffMember => "StaffMember",
            Kind::WebhookEndpoint => "WebhookEndpoint",
            Kind::Delivery => "Delivery",
            Kind::HeldReply => "HeldReply",
            Kind::HistoryEntry => "HistoryEntry",
            Kind::CalendarFeed => "CalendarFeed",
        }
    }

    /// The client view's type of the row, for the kinds a contact may read.
    pub fn client_name(self) -> Option<&'static str> {
        match self {
            Kind::InformationRequest => Some("ClientRequest"),
            Kind::RequestAnswer => Some("ClientAnswer"),
            Kind::AnswerFile => Some("ClientAnswerFile"),
            _ => None,
        }
    }

    /// What a person calls it, for NOT_FOUND messages ("task not found").
    pub fn label(self) -> &'static str {
        match self {
            Kind::Firm => "firm",
            Kind::Category => "category",
            Kind::Service => "service",
            Kind::ServiceItem => "service item",
            Kind::Client => "client",
            Kind::Contact => "contact",
            Kind::Mission => "mission",
            Kind::MissionLine => "mission line",
            Kind::Task => "task",
            Kind::InformationRequest => "information request",
            Kind::RequestAnswer => "answer",
            Kind::AnswerFile => "file",
            Kind::StaffMember => "staff member",
            Kind::WebhookEndpoint => "webhook endpoint",
            Kind::Delivery => "delivery",
            Kind::HeldReply => "held reply",
            Kind::HistoryEntry => "history entry",
            Kind::CalendarFeed => "calendar feed",
        }
    }

    /// The kind of a journal entry's `object_type` (`request`, `mission_line`, `staff`...).
    pub fn of_journal_object(object_type: &str) -> Option<Kind> {
        Some(match object_type {
            "firm" => Kind::Firm,
            "category" => Kind::Category,
            "service" => Kind::Service,
            "client" => Kind::Client,
            "contact" => Kind::Contact,
            "mission" => Kind::Mission,
            "mission_line" => Kind::MissionLine,
            "task" => Kind::Task,
            "request" => Kind::InformationRequest,
            "answer" => Kind::RequestAnswer,
            "file" => Kind::AnswerFile,
            "staff" | "user" => Kind::StaffMember,
            "webhook_endpoint" => Kind::WebhookEndpoint,
            "delivery" => Kind::Delivery,
            "held_reply" => Kind::HeldReply,
            "calendar_feed" => Kind::CalendarFeed,
            _ => return None,
        })
    }

    fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.iter().copied().find(|kind| kind.name() == name)
    }
}

/// The global id of row `id` of `kind`.
pub fn encode(kind: Kind, id: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}:{id}", kind.name()))
}

/// Why a string is not the id a caller needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GidError {
    /// Not an id Rappel hands out (bad base64, unknown kind, a row number that is not a
    /// positive 64-bit integer written plainly).
    Malformed,
    /// A well-formed id of another kind.
    WrongKind { expected: Kind, found: Kind },
}

/// Reads any global id: its kind and row. Only the exact spelling [`encode`] writes is
/// accepted (no padding, no leading zeros or sign, canonical base64), so each row has one id.
pub fn decode(text: &str) -> Result<(Kind, i64), GidError> {
    // The longest id is a 18-letter kind, a colon and 19 digits: 51 bytes, 68 characters.
    if text.is_empty() || text.len() > 80 {
        return Err(GidError::Malformed);
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| GidError::Malformed)?;
    let plain = std::str::from_utf8(&bytes).map_err(|_| GidError::Malformed)?;
    let (name, number) = plain.split_once(':').ok_or(GidError::Malformed)?;
    let kind = Kind::from_name(name).ok_or(GidError::Malformed)?;
    let canonical = !number.is_empty()
        && number.bytes().all(|byte| byte.is_ascii_digit())
        && !number.starts_with('0');
    let id = number
        .parse::<i64>()
        .ok()
        .filter(|id| canonical && *id > 0)
        .ok_or(GidError::Malformed)?;
    Ok((kind, id))
}

/// Reads the id of a row of `expected`.
pub fn decode_as(text: &str, expected: Kind) -> Result<i64, GidError> {
    match decode(text)? {
        (kind, id) if kind == expected => Ok(id),
        (found, _) => Err(GidError::WrongKind { expected, found }),
    }
}

/// A journal entry's `detail` JSON as the API shows it: the row numbers it records under
/// known keys (`requestId`, `answerId`, `files[].id`, `itemOrder`, a task assignment's
/// `before`/`after`...) become global ids; anything else, and text that is not JSON, is kept.
pub fn globalize_detail(entry_kind: &str, detail: &str) -> String {
    let Ok(mut value) = serde_json::from_str::<serde_json::Value>(detail) else {
        return detail.to_string();
    };
    let Some(object) = value.as_object_mut() else {
        return detail.to_string();
    };
    let one = |value: &mut serde_json::Value, kind: Kind| {
        if let Some(id) = value.as_i64().filter(|id| *id > 0) {
            *value = serde_json::Value::String(encode(kind, id));
        }
    };
    for (key, kind) in [
        ("requestId", Kind::InformationRequest),
        ("answerId", Kind::RequestAnswer),
        ("contactId", Kind::Contact),
        ("serviceId", Kind::Service),
        ("inboundMessageId", Kind::HeldReply),
    ] {
        if let Some(value) = object.get_mut(key) {
            one(value, kind);
        }
    }
    if let Some(items) = object.get_mut("itemOrder").and_then(|v| v.as_array_mut()) {
        items
            .iter_mut()
            .for_each(|item| one(item, Kind::ServiceItem));
    }
    if let Some(files) = object.get_mut("files").and_then(|v| v.as_array_mut()) {
        for file in files {
            if let Some(id) = file.get_mut("id") {
                one(id, Kind::AnswerFile);
            }
        }
    }
    if entry_kind == "task.assigned" {
        for key in ["before", "after"] {
            if let Some(value) = object.get_mut(key) {
                one(value, Kind::StaffMember);
            }
        }
    }
    value.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_and_names_itself() {
        for &kind in Kind::ALL {
            for id in [1, 42, i64::MAX] {
                let text = encode(kind, id);
                assert_eq!(decode(&text), Ok((kind, id)), "{text}");
                assert_eq!(decode_as(&text, kind), Ok(id));
                assert!(
                    text.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                );
            }
        }
        assert_eq!(encode(Kind::Task, 123), "VGFzazoxMjM");
    }

    #[test]
    fn an_id_of_another_kind_names_both_kinds() {
        let client = encode(Kind::Client, 7);
        assert_eq!(
            decode_as(&client, Kind::Task),
            Err(GidError::WrongKind {
                expected: Kind::Task,
                found: Kind::Client
            })
        );
    }

    #[test]
    fn garbage_is_malformed() {
        let b64 = |plain: &str| URL_SAFE_NO_PAD.encode(plain);
        let padded = base64::engine::general_purpose::URL_SAFE.encode("Task:12");
        for text in [
            String::new(),
            "12".into(),
            "not an id".into(),
            "VGFzazoxMjM=".into(),
            padded,
            b64("Task"),
            b64("Task:"),
            b64("Task:0"),
            b64("Task:-1"),
            b64("Task:+1"),
            b64("Task:012"),
            b64("Task: 1"),
            b64("Task:1x"),
            b64("Nope:1"),
            b64("task:1"),
            b64(":1"),
            "A".repeat(81),
        ] {
            assert_eq!(decode(&text), Err(GidError::Malformed), "{text:?}");
        }
        // Non-canonical trailing bits: decodes to the same bytes elsewhere, refused here.
        assert_eq!(decode("VGFzazoxMjN"), Err(GidError::Malformed));
    }

    #[test]
    fn row_numbers_past_64_bits_are_malformed() {
        let b64 = |plain: &str| URL_SAFE_NO_PAD.encode(plain);
        assert_eq!(
            decode(&b64("Task:9223372036854775807")),
            Ok((Kind::Task, i64::MAX))
        );
        assert_eq!(
            decode(&b64("Task:9223372036854775808")),
            Err(GidError::Malformed)
        );
        assert_eq!(
            decode(&b64("Task:99999999999999999999999")),
            Err(GidError::Malformed)
        );
    }

    #[test]
    fn details_show_global_ids_and_keep_the_rest() {
        let shown = globalize_detail(
            "request.answered",
            r#"{"answerId":3,"files":[{"id":4,"name":"a.pdf"}],"note":5}"#,
        );
        let value: serde_json::Value = serde_json::from_str(&shown).expect("JSON");
        assert_eq!(value["answerId"], encode(Kind::RequestAnswer, 3));
        assert_eq!(value["files"][0]["id"], encode(Kind::AnswerFile, 4));
        assert_eq!(value["files"][0]["name"], "a.pdf");
        assert_eq!(value["note"], 5);
        let assigned = globalize_detail("task.assigned", r#"{"before":null,"after":7}"#);
        assert!(
            assigned.contains(&encode(Kind::StaffMember, 7)),
            "{assigned}"
        );
        assert_eq!(globalize_detail("x", "not json"), "not json");
    }

    #[test]
    fn journal_objects_have_kinds() {
        assert_eq!(
            Kind::of_journal_object("request"),
            Some(Kind::InformationRequest)
        );
        assert_eq!(Kind::of_journal_object("staff"), Some(Kind::StaffMember));
        assert_eq!(Kind::of_journal_object("nothing"), None);
    }
}
