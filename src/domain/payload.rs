//! The body of every request event that leaves Rappel (webhooks, and the snapshot kept with
//! each email delivery). It holds exactly what the client view may show plus global ids (the API's, so
//! `node(id:)` reads them back): never a
//! task, a service or mission name, or any other firm-only field.

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde::Serialize;

use super::gid::{self, Kind};
use super::{DeliveryEvent, RequestStatus};

/// The client-visible view of a request at the time of the event.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestSnapshot {
    pub id: String,
    pub firm_id: String,
    pub client_id: String,
    pub text: String,
    pub due_date: NaiveDate,
    pub status: &'static str,
    pub created_on: NaiveDate,
}

impl RequestSnapshot {
    pub fn new(
        id: i64,
        firm_id: i64,
        client_id: i64,
        text: &str,
        due_date: NaiveDate,
        status: RequestStatus,
        created_on: NaiveDate,
    ) -> Self {
        Self {
            id: gid::encode(Kind::InformationRequest, id),
            firm_id: gid::encode(Kind::Firm, firm_id),
            client_id: gid::encode(Kind::Client, client_id),
            text: text.to_string(),
            due_date,
            status: status.as_str(),
            created_on,
        }
    }
}

#[derive(Serialize)]
struct EventBody<'a> {
    #[serde(rename = "type")]
    event_type: &'a str,
    timestamp: String,
    data: EventData<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EventData<'a> {
    #[serde(flatten)]
    request: &'a RequestSnapshot,
    #[serde(skip_serializing_if = "Option::is_none")]
    reminder_number: Option<u32>,
}

/// The JSON body of a request event, in the Standard Webhooks shape (`type`, `timestamp`,
/// `data`).
pub fn request_event_body(
    event: DeliveryEvent,
    occurred_at: DateTime<Utc>,
    request: &RequestSnapshot,
    reminder_number: Option<u32>,
) -> String {
    let body = EventBody {
        event_type: event.as_str(),
        timestamp: occurred_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        data: EventData {
            request,
            reminder_number,
        },
    };
    serde_json::to_string(&body).unwrap_or_else(|_| "{}".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_body_holds_the_client_view_and_ids_only() {
        let due = NaiveDate::from_ymd_opt(2027, 1, 30).expect("date");
        let created = NaiveDate::from_ymd_opt(2027, 1, 20).expect("date");
        let snapshot = RequestSnapshot::new(7, 1, 3, "Merci", due, RequestStatus::Open, created);
        let at = DateTime::parse_from_rfc3339("2027-01-20T07:00:00Z")
            .expect("instant")
            .with_timezone(&Utc);
        let body = request_event_body(DeliveryEvent::RequestCreated, at, &snapshot, None);
        let value: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(value["type"], "information_request.created");
        assert_eq!(value["timestamp"], "2027-01-20T07:00:00Z");
        let data = value["data"].as_object().expect("object");
        let mut keys: Vec<&str> = data.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "clientId",
                "createdOn",
                "dueDate",
                "firmId",
                "id",
                "status",
                "text"
            ]
        );
        assert_eq!(data["dueDate"], "2027-01-30");
    }
}
