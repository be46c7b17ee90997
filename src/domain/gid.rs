//! Global ids: the one spelling of a row's id everywhere it leaves Rappel (GraphQL `ID`s,
//! webhook payloads, subscription events, the journal), and the one parser of the ids callers
//! send back. An id is base64url without padding of `Kind:row` (Relay's convention, URL-safe
//! so it fits a path or a query string unescaped): `Task:123` is `VGFzazoxMjM`. Callers treat
//! it as opaque; `node(id:)` reads any of them back.
//!
//! The kind names the row's table, not one view's type: a request has one id whether the firm
//! reads it as an `InformationRequest` or its client as a `ClientRequest`, so an id from a
//! webhook, a subscription or either view resolves the same row. Pure: no I/O, no other
//! Rappel module.

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
                assert!(text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
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
        let padded = base64::engine::general_purpose::URL_SAFE.encode("Task:1");
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
    fn journal_objects_have_kinds() {
        assert_eq!(
            Kind::of_journal_object("request"),
            Some(Kind::InformationRequest)
        );
        assert_eq!(Kind::of_journal_object("staff"), Some(Kind::StaffMember));
        assert_eq!(Kind::of_journal_object("nothing"), None);
    }
}
