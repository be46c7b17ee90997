//! The activity journal: each operation of the role matrix leaves one entry with its actor
//! (staff member, admin, contact, SYSTEM for generation), the firm reads it through `history`
//! (contacts cannot), and nothing can change or delete an entry, on both backends.

use diesel::result::Error as DieselError;
use diesel_async::SimpleAsyncConnection;
use rappel::db::journal::{self, JournalEntry, JournalFilter};
use rappel::db::page::Keyset;
use rappel::db::work::{DuePage, WorkFilter, list_requests, list_tasks};
use rappel::delivery::DeliveryControl;
use rappel::domain::TaskStatus;
use rappel::ops::answers::AnswerInput;
use rappel::ops::{self, Actor};
use rappel::with_conn;
use serde_json::json;

use crate::backend_test;
use crate::support::TestDb;
use crate::support::app::{TestApp, World};
use crate::support::fixture::FirmFixture;

/// Every entry of a firm, oldest first.
async fn entries(db: &TestDb, firm_id: i64) -> Vec<JournalEntry> {
    let mut conn = db.pool.get().await.expect("connection");
    let mut rows = journal::list(
        &mut conn.as_db(),
        firm_id,
        &JournalFilter::default(),
        &Keyset::first(100_000),
    )
    .await
    .expect("journal");
    rows.reverse();
    rows
}

/// (actor kind, user, contact) of an actor, as the journal should hold it.
fn who(actor: &Actor) -> (&'static str, Option<i64>, Option<i64>) {
    match *actor {
        Actor::Staff { user_id, .. } => ("STAFF", Some(user_id), None),
        Actor::Contact { contact_id, .. } => ("CONTACT", None, Some(contact_id)),
        Actor::System { .. } => ("SYSTEM", None, None),
    }
}

fn entry_who(entry: &JournalEntry) -> (&str, Option<i64>, Option<i64>) {
    (
        entry.actor_kind.as_str(),
        entry.actor_user_id,
        entry.actor_contact_id,
    )
}

/// The one entry of `kind` about `object_id` (panics unless exactly one).
fn the<'a>(entries: &'a [JournalEntry], kind: &str, object_id: i64) -> &'a JournalEntry {
    let found: Vec<&JournalEntry> = entries
        .iter()
        .filter(|entry| entry.kind == kind && entry.object_id == object_id)
        .collect();
    assert_eq!(found.len(), 1, "{kind} of {object_id}: {entries:#?}");
    found[0]
}

backend_test! {
    async fn every_operation_of_the_role_matrix_is_journalled_with_its_actor(db: TestDb) {
        let firm = FirmFixture::create(&db.pool, "journal").await;
        let admin = firm.admin();
        let member = firm.member("paul").await;
        let Actor::Staff { user_id: member_id, .. } = member else { unreachable!() };
        let service = firm.service("TVA", 10).await;
        let (client, contact) = firm.client_with_contact("Boulangerie").await;
        let contact_actor = Actor::Contact {
            contact_id: contact.id,
            client_id: client.id,
            firm_id: firm.firm.id,
        };
        let mission = firm.monthly_mission(&client, &service).await;
        ops::missions::sign_mission(firm.env(), &member, mission.id).await.expect("signed");

        let mut conn = db.pool.get().await.expect("connection");
        let tasks = list_tasks(&mut conn.as_db(), firm.firm.id, None, &WorkFilter::default(), &DuePage::first(1000))
            .await
            .expect("tasks");
        let requests = list_requests(&mut conn.as_db(), firm.firm.id, None, &WorkFilter::default(), &DuePage::first(1000))
            .await
            .expect("requests");
        drop(conn);
        assert!(tasks.len() >= 2 && !requests.is_empty(), "the signing caught up past periods");

        ops::work::set_task_status(firm.env(), &member, tasks[0].id, TaskStatus::Done).await.expect("done");
        ops::work::assign_task(firm.env(), &admin, tasks[1].id, Some(member_id)).await.expect("assigned");
        let answer = AnswerInput { message: Some("Ci-joint".into()), nothing_to_report: false, files: Vec::new() };
        ops::answers::answer_request(firm.env(), &contact_actor, requests[0].id, &answer).await.expect("answered");
        ops::work::close_request(firm.env(), &member, requests[0].id).await.expect("closed");
        ops::work::reopen_request(firm.env(), &admin, requests[0].id).await.expect("reopened");
        let control = DeliveryControl { allow_private_addresses: true, ..DeliveryControl::default() };
        let endpoint = ops::webhooks::create_endpoint(
            firm.env(), &control, &admin, "http://127.0.0.1:9/hook",
            &["information_request.closed".to_string()], None,
        ).await.expect("endpoint").endpoint;
        ops::webhooks::disable_endpoint(firm.env(), &admin, endpoint.id, None).await.expect("disabled");
        ops::webhooks::delete_endpoint(firm.env(), &admin, endpoint.id).await.expect("deleted");
        ops::clients::archive_contact(firm.env(), &member, contact.id).await.expect("archived");

        let entries = entries(&db, firm.firm.id).await;
        assert_eq!(entry_who(the(&entries, "staff.invited", member_id)), who(&admin));
        assert_eq!(entry_who(the(&entries, "service.created", service.id)), who(&admin));
        assert_eq!(entry_who(the(&entries, "client.created", client.id)), who(&admin));
        assert_eq!(entry_who(the(&entries, "contact.created", contact.id)), who(&admin));
        assert_eq!(entry_who(the(&entries, "mission.created", mission.id)), who(&admin));
        let signed = the(&entries, "mission.signed", mission.id);
        assert_eq!(entry_who(signed), who(&member));
        assert_eq!(
            (signed.before_status.as_deref(), signed.after_status.as_deref()),
            (Some("DRAFT"), Some("SIGNED"))
        );
        let completed = the(&entries, "task.completed", tasks[0].id);
        assert_eq!(entry_who(completed), who(&member));
        assert_eq!(
            (completed.before_status.as_deref(), completed.after_status.as_deref()),
            (Some("OPEN"), Some("DONE"))
        );
        assert_eq!(completed.client_id, Some(client.id));
        assert_eq!(completed.mission_id, Some(mission.id));
        assert_eq!(entry_who(the(&entries, "task.assigned", tasks[1].id)), who(&admin));
        let answered = the(&entries, "request.answered", requests[0].id);
        assert_eq!(entry_who(answered), who(&contact_actor));
        let closed = the(&entries, "request.closed", requests[0].id);
        assert_eq!(entry_who(closed), who(&member));
        assert_eq!(
            (closed.before_status.as_deref(), closed.after_status.as_deref()),
            (Some("ANSWERED"), Some("CLOSED"))
        );
        assert_eq!(entry_who(the(&entries, "request.reopened", requests[0].id)), who(&admin));
        for kind in ["webhook.created", "webhook.disabled", "webhook.deleted"] {
            assert_eq!(entry_who(the(&entries, kind, endpoint.id)), who(&admin), "{kind}");
        }
        assert_eq!(entry_who(the(&entries, "contact.archived", contact.id)), who(&member));

        // Generation is the system's: one entry per occurrence (line, due date, copy).
        let mut occurrences: Vec<_> = requests.iter().map(|r| (r.mission_line_id, r.due_date, r.copy_number)).collect();
        occurrences.sort();
        occurrences.dedup();
        let generated: Vec<&JournalEntry> = entries.iter().filter(|e| e.kind == "occurrence.generated").collect();
        assert_eq!(generated.len(), occurrences.len());
        for entry in &generated {
            assert_eq!(entry_who(entry), ("SYSTEM", None, None));
            assert_eq!(entry.mission_id, Some(mission.id));
            let detail: serde_json::Value = serde_json::from_str(entry.detail.as_deref().expect("detail")).expect("json");
            assert_eq!(detail["requests"], 1, "{detail}");
            assert_eq!(detail["tasks"], 1, "{detail}");
        }
    }
}

backend_test! {
    async fn a_refused_operation_leaves_no_entry(db: TestDb) {
        let firm = FirmFixture::create(&db.pool, "refused").await;
        let (client, contact) = firm.client_with_contact("Boulangerie").await;
        let contact_actor = Actor::Contact { contact_id: contact.id, client_id: client.id, firm_id: firm.firm.id };
        let before = entries(&db, firm.firm.id).await.len();
        ops::clients::archive_client(firm.env(), &contact_actor, client.id).await.expect_err("a contact cannot");
        ops::clients::archive_client(firm.env(), &firm.admin(), client.id + 1000).await.expect_err("no such client");
        assert_eq!(entries(&db, firm.firm.id).await.len(), before);
    }
}

backend_test! {
    async fn no_statement_can_update_or_delete_a_journal_entry(db: TestDb) {
        let firm = FirmFixture::create(&db.pool, "append").await;
        firm.client_with_contact("Boulangerie").await;
        let before = entries(&db, firm.firm.id).await;
        assert!(!before.is_empty());
        for sql in [
            "UPDATE journal_entries SET kind = 'forged'",
            "UPDATE journal_entries SET actor_kind = 'SYSTEM', actor_user_id = NULL",
            "DELETE FROM journal_entries",
        ] {
            let mut conn = db.pool.get().await.expect("connection");
            let result = with_conn!(&mut conn, |c| c.batch_execute(sql).await);
            match result {
                Err(DieselError::DatabaseError(_, info)) => {
                    assert!(info.message().contains("append-only"), "{sql}: {}", info.message());
                }
                other => panic!("{sql} was not refused: {other:?}"),
            }
        }
        let after = entries(&db, firm.firm.id).await;
        assert_eq!(
            after.iter().map(|e| (e.id, e.kind.clone(), e.actor_kind.clone())).collect::<Vec<_>>(),
            before.iter().map(|e| (e.id, e.kind.clone(), e.actor_kind.clone())).collect::<Vec<_>>()
        );
    }
}

#[test]
fn no_api_changes_or_deletes_a_journal_entry() {
    // The data layer has no UPDATE or DELETE of the journal...
    let data = include_str!("../../src/db/journal.rs");
    for forbidden in [
        "diesel::update",
        "diesel::delete",
        "UPDATE journal",
        "DELETE FROM",
    ] {
        assert!(
            !data.contains(forbidden),
            "src/db/journal.rs holds {forbidden}"
        );
    }
    // ...and the API has no mutation about it.
    let schema = include_str!("../../schema.graphql");
    let mutation = schema
        .split("type Mutation {")
        .nth(1)
        .and_then(|rest| rest.split("\n}\n").next())
        .expect("a Mutation type");
    for word in ["journal", "history", "History"] {
        assert!(!mutation.contains(word), "a mutation names {word}");
    }
}

backend_test! {
    async fn the_firm_reads_its_history_with_actors_and_contacts_cannot(db: TestDb) {
        let app = TestApp::new(db);
        let world = World::build(&app).await;
        let admin = &world.admin_a;
        let mission = world.firm_a.mission.clone();
        let request = world.firm_a.request.clone();
        app.ok(admin, "mutation($id: ID!) { closeRequest(id: $id) { status } }", json!({ "id": request })).await;

        let data = app.ok(admin, r#"query($id: ID!, $m: ID!) { firm {
            history(filter: { kinds: ["request.closed", "mission.signed"] }) {
                totalCount nodes { kind objectId beforeStatus afterStatus actor { kind staffMember { email } } }
            }
            informationRequest(id: $id) {
                status closedAt closedBy { kind staffMember { email } }
                history { nodes { kind actor { kind } } }
            }
            mission(id: $m) { history(filter: { kinds: ["occurrence.generated"] }) { totalCount nodes { actor { kind } } } }
        } }"#, json!({ "id": request, "m": mission })).await;
        let history = &data["firm"]["history"];
        let nodes = history["nodes"].as_array().expect("nodes");
        assert_eq!(history["totalCount"], nodes.len(), "{history}");
        assert!(nodes[1..].iter().all(|node| node["kind"] == "mission.signed"), "{history}");
        // Newest first: the closing, then the signings.
        assert_eq!(history["nodes"][0]["kind"], "request.closed");
        assert_eq!(history["nodes"][0]["objectId"], request.as_str());
        assert_eq!(history["nodes"][0]["beforeStatus"], "OPEN");
        assert_eq!(history["nodes"][0]["afterStatus"], "CLOSED");
        assert_eq!(history["nodes"][0]["actor"]["kind"], "STAFF");
        assert_eq!(history["nodes"][0]["actor"]["staffMember"]["email"], "admin@a.example.fr");
        assert_eq!(history["nodes"][1]["kind"], "mission.signed");
        let closed = &data["firm"]["informationRequest"];
        assert_eq!(closed["status"], "CLOSED");
        assert!(closed["closedAt"].is_string(), "{closed}");
        assert_eq!(closed["closedBy"]["staffMember"]["email"], "admin@a.example.fr");
        assert_eq!(closed["history"]["nodes"][0]["kind"], "request.closed");
        let generated = &data["firm"]["mission"]["history"];
        assert!(generated["totalCount"].as_i64().expect("count") >= 3, "{generated}");
        assert!(generated["nodes"].as_array().expect("nodes").iter().all(|n| n["actor"]["kind"] == "SYSTEM"));

        // A contact has no history anywhere: the firm view is closed and its own view has none.
        let response = app.exec(&world.contact_a, "{ firm { history { totalCount } } }", json!({})).await;
        assert!(response["errors"].as_array().is_some_and(|e| !e.is_empty()), "{response}");
        let response = app.exec(&world.contact_a, "{ client { history { totalCount } } }", json!({})).await;
        assert!(response["errors"].as_array().is_some_and(|e| !e.is_empty()), "{response}");
    }
}

/// Parses RFC 4180 CSV (quoted fields, doubled quotes, CRLF records) into records.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(ch) = chars.next() {
        match (quoted, ch) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, other) => field.push(other),
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\r') => {
                assert_eq!(chars.next(), Some('\n'), "records end with CRLF");
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (false, other) => field.push(other),
        }
    }
    assert!(
        field.is_empty() && record.is_empty(),
        "the last record ends with CRLF"
    );
    records
}

backend_test! {
    async fn the_cli_exports_the_history_as_rfc_4180_csv(db: TestDb) {
        let firm = FirmFixture::create(&db.pool, "csv").await;
        // Details are JSON: their quotes and commas must survive the CSV quoting.
        let (client, _) = firm.client_with_contact("Boulangerie, \"Chez Paul\"").await;
        let service = firm.service("TVA", 10).await;
        let mission = firm.monthly_mission(&client, &service).await;
        ops::missions::sign_mission(firm.env(), &firm.admin(), mission.id).await.expect("signed");
        let expected = entries(&db, firm.firm.id).await;
        let since = (chrono::Utc::now() - chrono::Duration::days(2)).date_naive().to_string();
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_rappel"))
            .args(["export", "history", "--firm", &firm.firm.id.to_string(), "--since", &since])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("RAPPEL_DATABASE_URL", &db.url)
            .env("RAPPEL_DEMO", "false")
            .output()
            .expect("rappel runs");
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let text = String::from_utf8(output.stdout).expect("utf-8");
        let records = parse_csv(&text);
        assert_eq!(records[0], rappel::ops::journal::CSV_COLUMNS.to_vec());
        let rows = &records[1..];
        assert_eq!(rows.len(), expected.len());
        for (row, entry) in rows.iter().zip(&expected) {
            assert_eq!(row.len(), 13);
            assert_eq!(row[0], entry.id.to_string());
            assert_eq!(row[2], entry.actor_kind);
            assert_eq!(row[5], entry.kind);
            assert_eq!(row[7], entry.object_id.to_string());
            assert_eq!(row[12], entry.detail.clone().unwrap_or_default());
        }
        assert!(rows.iter().any(|row| row[5] == "occurrence.generated" && row[12].contains("\"dueDate\"")));
        // Nothing before --since: a later day exports the header alone.
        let tomorrow = (chrono::Utc::now() + chrono::Duration::days(2)).date_naive().to_string();
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_rappel"))
            .args(["export", "history", "--firm", &firm.firm.id.to_string(), "--since", &tomorrow])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("RAPPEL_DATABASE_URL", &db.url)
            .env("RAPPEL_DEMO", "false")
            .output()
            .expect("rappel runs");
        assert_eq!(parse_csv(&String::from_utf8(output.stdout).expect("utf-8")).len(), 1);
    }
}

backend_test! {
    async fn an_occurrence_is_journalled_once_whatever_the_transaction_size(db: TestDb) {
        // Transactions of 1 and 3 rows: an occurrence has a task and a request, so cut by rows
        // alone its two rows would land in different transactions and be journalled twice.
        for (tag, rows) in [("chunks-one", 1), ("chunks-three", 3)] {
            let mut firm = FirmFixture::create(&db.pool, tag).await;
            firm.settings.occurrences_per_transaction = rows;
            let service = firm.service("TVA", 10).await;
            let (client, _) = firm.client_with_contact("Boulangerie").await;
            let mission = firm.monthly_mission(&client, &service).await;
            ops::missions::sign_mission(firm.env(), &firm.admin(), mission.id).await.expect("signed");

            let mut conn = db.pool.get().await.expect("connection");
            let requests = list_requests(&mut conn.as_db(), firm.firm.id, None, &WorkFilter::default(), &DuePage::first(1000))
                .await
                .expect("requests");
            drop(conn);
            let mut occurrences: Vec<_> = requests.iter().map(|r| (r.mission_line_id, r.due_date, r.copy_number)).collect();
            occurrences.sort();
            occurrences.dedup();
            assert!(occurrences.len() >= 3, "{tag}: the signing caught up several periods");

            let entries = entries(&db, firm.firm.id).await;
            let mut journalled: Vec<_> = entries
                .iter()
                .filter(|e| e.kind == "occurrence.generated")
                .map(|entry| {
                    let detail: serde_json::Value =
                        serde_json::from_str(entry.detail.as_deref().expect("detail")).expect("json");
                    assert_eq!((detail["tasks"].as_i64(), detail["requests"].as_i64()), (Some(1), Some(1)), "{tag}: {detail}");
                    let due_date = detail["dueDate"].as_str().expect("dueDate").to_owned();
                    (entry.object_id, due_date, detail["copyNumber"].as_i64().expect("copy"))
                })
                .collect();
            journalled.sort();
            let expected: Vec<_> = occurrences
                .iter()
                .map(|(line, due, copy)| (*line, due.to_string(), i64::from(*copy)))
                .collect();
            assert_eq!(journalled, expected, "{tag}: one entry per occurrence");
        }
    }
}
