//! Calendar feeds over real HTTP on loopback, parsed by a real iCalendar parser (Python's
//! `icalendar`): a staff feed of tasks and requests as all-day events with stable UIDs and a
//! SEQUENCE that grows on changes, filtered by assignee; a contact's feed holds its own
//! client's requests and never a task; rotated and revoked URLs answer 404.

use std::io::Write as _;
use std::process::{Command, Stdio};

use rappel::graphql::{Caller, resolve_caller};
use rappel::http::{AppState, router};
use serde_json::{Value, json};

use crate::backend_test;
use crate::support::app::{PASSWORD, TestApp, error_codes};
use crate::support::fixture::FirmFixture;

/// Parses iCalendar text with Python's `icalendar`; each VEVENT as JSON.
fn parse_ics(text: &str) -> Vec<Value> {
    const SCRIPT: &str = r#"
import sys, json, datetime, icalendar
cal = icalendar.Calendar.from_ical(sys.stdin.buffer.read())
assert cal.name == "VCALENDAR" and str(cal["VERSION"]) == "2.0"
out = []
for event in cal.walk("VEVENT"):
    start = event.decoded("DTSTART")
    out.append({
        "uid": str(event["UID"]),
        "summary": str(event["SUMMARY"]),
        "start": start.isoformat(),
        "all_day": not isinstance(start, datetime.datetime),
        "sequence": int(event.get("SEQUENCE", 0)),
        "last_modified": event.decoded("LAST-MODIFIED").isoformat(),
    })
print(json.dumps(out))
"#;
    let mut child = Command::new("python3")
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("feed written");
    let output = child.wait_with_output().expect("python3 ends");
    assert!(
        output.status.success(),
        "the iCalendar parser refused the feed: {}\n{text}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("parser output")
}

/// The routes served on loopback; returns the base URL.
async fn serve(app: &TestApp) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let address = listener.local_addr().expect("address");
    let state = AppState {
        schema: app.schema.clone(),
        pool: app.db.pool.clone(),
        callers: rappel::graphql::CallerCache::new(5, app.events.clone()),
        graphiql: false,
        max_batch: 10,
        web: rappel::http::WebOptions::default(),
    };
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, router(state, 1 << 20)).await;
    });
    (format!("http://{address}"), server)
}

async fn fetch(base: &str, path: &str) -> (u16, String) {
    let response = reqwest::get(format!("{base}{path}")).await.expect("GET");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

const CREATE: &str = "mutation { createCalendarFeed { url createdAt } }";
const ROTATE: &str = "mutation { rotateCalendarFeed { url } }";
const REVOKE: &str = "mutation { revokeCalendarFeed { createdAt } }";

async fn feed_path(app: &TestApp, caller: &Caller, mutation: &str, field: &str) -> String {
    let data = app.ok(caller, mutation, json!({})).await;
    let url = data[field]["url"].as_str().expect("url").to_string();
    assert!(
        url.starts_with("/calendar/rpl_") && url.ends_with(".ics"),
        "{url}"
    );
    url
}

backend_test! {
    async fn a_staff_feed_parses_keeps_its_uids_and_grows_its_sequence_on_changes(db: TestDb) {
        let app = TestApp::new(db);
        let (base, server) = serve(&app).await;
        let firm = FirmFixture::create(&app.db.pool, "cal").await;
        let service = firm.service("TVA", 10).await;
        let (client, _) = firm.client_with_contact("Boulangerie").await;
        let mission = firm.monthly_mission(&client, &service).await;
        rappel::ops::missions::sign_mission(firm.env(), &firm.admin(), mission.id).await.expect("signed");
        let (_, admin) = app.login(&firm.admin_email, PASSWORD).await;
        let path = feed_path(&app, &admin, CREATE, "createCalendarFeed").await;
        let again = app.exec(&admin, CREATE, json!({})).await;
        assert_eq!(error_codes(&again), ["CONFLICT"]);

        let (status, first) = fetch(&base, &path).await;
        assert_eq!(status, 200, "{first}");
        let events = parse_ics(&first);
        let tasks: Vec<&Value> = events.iter().filter(|e| e["uid"].as_str().expect("uid").starts_with("rappel-task-")).collect();
        let requests: Vec<&Value> = events.iter().filter(|e| e["uid"].as_str().expect("uid").starts_with("rappel-request-")).collect();
        assert!(!tasks.is_empty() && tasks.len() == requests.len(), "{events:?}");
        assert!(events.iter().all(|e| e["all_day"] == true), "{events:?}");
        assert!(tasks.iter().all(|e| e["summary"].as_str().expect("s").starts_with("[OPEN] TVA: préparer — Boulangerie")), "{tasks:?}");
        let mut uids: Vec<&str> = events.iter().map(|e| e["uid"].as_str().expect("uid")).collect();
        uids.sort_unstable();
        uids.dedup();
        assert_eq!(uids.len(), events.len(), "UIDs are unique");

        let (_, second) = fetch(&base, &path).await;
        assert_eq!(parse_ics(&second), events, "the same feed twice");

        // A change: a reminder (journaled) grows the request's SEQUENCE; a completed task
        // shows DONE with a later LAST-MODIFIED, under the same UIDs.
        let task_id: i64 = tasks[0]["uid"].as_str().expect("uid").trim_start_matches("rappel-task-").split('@').next().expect("id").parse().expect("id");
        let request_id: i64 = requests[0]["uid"].as_str().expect("uid").trim_start_matches("rappel-request-").split('@').next().expect("id").parse().expect("id");
        app.ok(&admin, "mutation($id: ID!) { remindRequest(id: $id) { id } }", json!({ "id": crate::support::app::gid(crate::support::app::Kind::InformationRequest, request_id) })).await;
        rappel::ops::work::set_task_status(firm.env(), &firm.admin(), task_id, rappel::domain::TaskStatus::Done).await.expect("done");
        let (_, third) = fetch(&base, &path).await;
        let changed = parse_ics(&third);
        let find = |events: &[Value], uid: &Value| events.iter().find(|e| &e["uid"] == uid).cloned().expect("same uid");
        let request_after = find(&changed, &requests[0]["uid"]);
        assert!(request_after["sequence"].as_i64() > requests[0]["sequence"].as_i64(), "{request_after}");
        let task_after = find(&changed, &tasks[0]["uid"]);
        assert!(task_after["summary"].as_str().expect("s").starts_with("[DONE]"), "{task_after}");
        // LAST-MODIFIED has whole seconds: created and completed within one second tie.
        assert!(task_after["last_modified"].as_str() >= tasks[0]["last_modified"].as_str(), "{task_after}");
        assert_eq!(changed.len(), events.len());

        // Only the tasks assigned to the owner with ?assignee=me.
        rappel::ops::work::assign_task(firm.env(), &firm.admin(), task_id, Some(firm.admin_id)).await.expect("assigned");
        let (_, mine) = fetch(&base, &format!("{path}?assignee=me")).await;
        let mine = parse_ics(&mine);
        assert_eq!(mine.len(), 1, "{mine:?}");
        assert_eq!(mine[0]["uid"], tasks[0]["uid"]);

        // Rotated: the old URL answers 404, the new one works; revoked: 404.
        let rotated = feed_path(&app, &admin, ROTATE, "rotateCalendarFeed").await;
        assert_ne!(rotated, path);
        assert_eq!(fetch(&base, &path).await.0, 404);
        assert_eq!(fetch(&base, &rotated).await.0, 200);
        app.ok(&admin, REVOKE, json!({})).await;
        assert_eq!(fetch(&base, &rotated).await.0, 404);
        assert_eq!(error_codes(&app.exec(&admin, REVOKE, json!({})).await), ["NOT_FOUND"]);
        assert_eq!(error_codes(&app.exec(&admin, ROTATE, json!({})).await), ["NOT_FOUND"]);
        assert_eq!(fetch(&base, "/calendar/rpl_unknown.ics").await.0, 404);
        server.abort();
    }
}

backend_test! {
    async fn a_contacts_feed_holds_its_clients_requests_and_never_a_task(db: TestDb) {
        let app = TestApp::new(db);
        let (base, server) = serve(&app).await;
        let firm = FirmFixture::create(&app.db.pool, "calcontact").await;
        let service = firm.service("Paie", 10).await;
        let (client, contact) = firm.client_with_contact("Garage").await;
        let (other, _) = firm.client_with_contact("Pharmacie").await;
        for owner in [&client, &other] {
            let mission = firm.monthly_mission(owner, &service).await;
            rappel::ops::missions::sign_mission(firm.env(), &firm.admin(), mission.id).await.expect("signed");
        }
        let session = rappel::ops::access::create_contact_access_token(firm.env(), &firm.admin(), contact.id, 30)
            .await
            .expect("token");
        let caller = resolve_caller(&app.db.pool, Some(&session.token)).await.expect("caller");
        let path = feed_path(&app, &caller, CREATE, "createCalendarFeed").await;
        let (status, text) = fetch(&base, &path).await;
        assert_eq!(status, 200);
        assert!(!text.contains("préparer") && !text.contains("Pharmacie") && !text.contains("Garage"), "{text}");
        let events = parse_ics(&text);
        assert!(!events.is_empty());
        assert!(events.iter().all(|e| e["uid"].as_str().expect("uid").starts_with("rappel-request-")), "{events:?}");
        assert!(events.iter().all(|e| e["summary"].as_str().expect("s").starts_with("[OPEN] Paie: vos pièces")), "{events:?}");
        // Only this client's requests.
        let (_, admin) = app.login(&firm.admin_email, PASSWORD).await;
        let data = app.ok(&admin, "query($c: ID!) { firm { informationRequests(clientId: $c, first: 100) { nodes { id } } } }", json!({ "c": crate::support::app::gid(crate::support::app::Kind::Client, client.id) })).await;
        assert_eq!(events.len(), data["firm"]["informationRequests"]["nodes"].as_array().expect("nodes").len());
        // Revoked from the client view.
        app.ok(&caller, REVOKE, json!({})).await;
        assert_eq!(fetch(&base, &path).await.0, 404);
        server.abort();
    }
}
