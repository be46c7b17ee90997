//! The GraphQL contract seen from outside: who may call what (a matrix over every root field,
//! read from the schema itself), what introspection shows each caller, tenant isolation,
//! input validation that changes nothing, and a walk-through over real HTTP.

use std::time::Duration;

use async_graphql::Request;
use diesel::QueryableByName;
use diesel_async::RunQueryDsl;
use futures_util::StreamExt;
use rappel::graphql::Caller;
use rappel::with_conn;
use serde_json::{Value, json};

use crate::backend_test;
use crate::support::TestDb;
use crate::support::app::{
    FirmIds, Kind, PASSWORD, TestApp, World, error_codes, gid, months_ago_28th,
};
use crate::support::server::{ServerProcess, post_graphql};

/// Who may call a root field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Policy {
    /// Anyone, signed in or not.
    Public,
    /// Anyone; the answer depends on the credential given alone (here a bad one), never on
    /// who calls.
    PublicCredential,
    /// Any signed-in caller (staff or contact), each in its own scope.
    SignedIn,
    /// The firm's staff.
    Staff,
    /// The firm's admins.
    Admin,
    /// A client's contacts.
    Contact,
}

/// What a caller gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Allowed,
    Unauthenticated,
    Forbidden,
    NotFound,
}

/// The callers of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Anonymous,
    ContactA,
    ContactB,
    MemberA,
    AdminA,
    AdminB,
}

const EVERYONE: [Who; 6] = [
    Who::Anonymous,
    Who::ContactA,
    Who::ContactB,
    Who::MemberA,
    Who::AdminA,
    Who::AdminB,
];

/// One root field: its policy, whether the operation names firm A / client A objects (so that
/// firm B's admin and client B's contact must get NOT_FOUND), and the operation.
struct Entry {
    kind: &'static str,
    field: &'static str,
    policy: Policy,
    names_firm_a_objects: bool,
    operation: &'static str,
}

/// The explicit policy table: every root query, mutation and subscription field.
const POLICY: &[Entry] = &[
    Entry {
        kind: "query",
        field: "viewer",
        policy: Policy::Public,
        names_firm_a_objects: false,
        operation: "{ viewer { kind } }",
    },
    Entry {
        kind: "query",
        field: "firm",
        policy: Policy::Staff,
        names_firm_a_objects: false,
        operation: "{ firm { name } }",
    },
    // Any signed-in caller reads ids back in its own scope: another scope's id is null.
    Entry {
        kind: "query",
        field: "node",
        policy: Policy::SignedIn,
        names_firm_a_objects: false,
        operation: r#"{ node(id: "{request}") { id } }"#,
    },
    Entry {
        kind: "query",
        field: "nodes",
        policy: Policy::SignedIn,
        names_firm_a_objects: false,
        operation: r#"{ nodes(ids: ["{request}", "{task}"]) { id } }"#,
    },
    Entry {
        kind: "query",
        field: "client",
        policy: Policy::Contact,
        names_firm_a_objects: false,
        operation: "{ client { requests { nodes { id } } } }",
    },
    Entry {
        kind: "mutation",
        field: "login",
        policy: Policy::Public,
        names_firm_a_objects: false,
        operation: r#"mutation { login(input: { email: "admin@a.example.fr", password: "correct horse battery" }) { token } }"#,
    },
    Entry {
        kind: "mutation",
        field: "logout",
        policy: Policy::Public,
        names_firm_a_objects: false,
        operation: "mutation { logout }",
    },
    Entry {
        kind: "mutation",
        field: "redeemSignInLink",
        policy: Policy::PublicCredential,
        names_firm_a_objects: false,
        operation: r#"mutation { redeemSignInLink(input: { token: "rpl_unknown" }) { token } }"#,
    },
    Entry {
        kind: "mutation",
        field: "createCategory",
        policy: Policy::Staff,
        names_firm_a_objects: false,
        operation: r#"mutation { createCategory(input: { name: "Social" }) { id } }"#,
    },
    Entry {
        kind: "mutation",
        field: "renameCategory",
        policy: Policy::Staff,
        names_firm_a_objects: true,
        operation: r#"mutation { renameCategory(input: { id: "{category}", name: "Fiscalité" }) { id } }"#,
    },
    Entry {
        kind: "mutation",
        field: "createService",
        policy: Policy::Staff,
        names_firm_a_objects: false,
        operation: r#"mutation { createService(input: { title: "Paie", leadDays: 5, items: [{ kind: TASK, title: "Saisir" }] }) { id } }"#,
    },
    Entry {
        kind: "mutation",
        field: "updateService",
        policy: Policy::Staff,
        names_firm_a_objects: true,
        operation: r#"mutation { updateService(input: { id: "{service}", title: "Rappel TVA", leadDays: 10, items: [{ kind: INFORMATION_REQUEST, title: "Merci" }] }) { id } }"#,
    },
    Entry {
        kind: "mutation",
        field: "reorderServiceItems",
        policy: Policy::Staff,
        names_firm_a_objects: true,
        operation: r#"mutation { reorderServiceItems(input: { serviceId: "{service}", itemIds: [] }) { id } }"#,
    },
    Entry {
        kind: "mutation",
        field: "archiveService",
        policy: Policy::Staff,
        names_firm_a_objects: true,
        operation: r#"mutation { archiveService(id: "{service}") { id } }"#,
    },
    Entry {
        kind: "mutation",
        field: "createClient",
        policy: Policy::Staff,
        names_firm_a_objects: false,
        operation: r#"mutation { createClient(input: { name: "Nouveau" }) { id } }"#,
    },
    Entry {
        kind: "mutation",
        field: "updateClient",
        policy: Policy::Staff,
        names_firm_a_objects: true,
        operation: r#"mutation { updateClient(input: { id: "{client}", name: "Renommé" }) { id } }"#,
    },
    Entry {
        kind: "mutation",
        field: "archiveClient",
        policy: Policy::Staff,
        names_firm_a_objects: true,
        operation: r#"mutation { archiveClient(id: "{other_client}") { id } }"#,
    },
    Entry {
        kind: "mutation",
        field: "addContact",
        policy: Policy::Staff,
        names_firm_a_objects: true,
        operation: r#"mutation { addContact(input: { clientId: "{client}", name: "Paul", email: "paul@example.fr" }) { id } }"#,
    },
    Entry {
        kind: "mutation",
        field: "updateContact",
        policy: Policy::Staff,
        names_firm_a_objects: true,
        operation: r#"mutation { updateContact(input: { id: "{contact}", name: "Contact", email: "contact0@a.example.fr" }) { id } }"#,
    },
    Entry {
        kind: "mutation",
        field: "archiveContact",
        policy: Policy::Staff,
        names_firm_a_objects: true,
        operation: r#"mutation { archiveContact(id: "{other_contact}") { id } }"#,
    },
    Entry {
        kind: "mutation",
        field: "createMission",
        policy: Policy::Staff,
        names_firm_a_objects: true,
        operation: r#"mutation { createMission(input: { clientId: "{client}", name: "M", startDate: "2031-01-01", lines: [] }) { id } }"#,
    },
    Entry {
        kind: "mutation",
        field: "updateMission",
        policy: Policy::Staff,
        names_firm_a_objects: true,
        operation: r#"mutation { updateMission(input: { id: "{draft}", name: "Brouillon 2" }) { id } }"#,
    },
    Entry {
        kind: "mutation",
        field: "addMissionLine",
        policy: Policy::Staff,
        names_firm_a_objects: true,
        operation: r#"mutation { addMissionLine(input: { missionId: "{draft}", serviceId: "{service}", frequency: QUARTERLY }) { id } }"#,
    },
    Entry {
        kind: "mutation",
        field: "signMission",
        policy: Policy::Staff,
        names_firm_a_objects: true,
        operation: r#"mutation { signMission(id: "{draft}") { id } }"#,
    },
    Entry {
        kind: "mutation",
        field: "endMission",
        policy: Policy::Staff,
        names_firm_a_objects: true,
        operation: r#"mutation { endMission(input: { id: "{mission}" }) { id } }"#,
    },
    Entry {
        kind: "mutation",
        field: "cancelMission",
        policy: Policy::Staff,
        names_firm_a_objects: true,
        operation: r#"mutation { cancelMission(id: "{draft}") { id } }"#,
    },
    Entry {
        kind: "mutation",
        field: "completeTask",
        policy: Policy::Staff,
        names_firm_a_objects: true,
        operation: r#"mutation { completeTask(id: "{task}") { id } }"#,
    },
    Entry {
        kind: "mutation",
        field: "reopenTask",
        policy: Policy::Staff,
        names_firm_a_objects: true,
        operation: r#"mutation { reopenTask(id: "{task}") { id } }"#,
    },
    Entry {
        kind: "mutation",
        field: "assignTask",
        policy: Policy::Staff,
        names_firm_a_objects: true,
        operation: r#"mutation { assignTask(input: { id: "{task}", assigneeId: null }) { id } }"#,
    },
    Entry {
        kind: "mutation",
        field: "closeRequest",
        policy: Policy::Staff,
        names_firm_a_objects: true,
        operation: r#"mutation { closeRequest(id: "{other_client_request}") { id } }"#,
    },
    Entry {
        kind: "mutation",
        field: "reopenRequest",
        policy: Policy::Staff,
        names_firm_a_objects: true,
        operation: r#"mutation { reopenRequest(id: "{other_client_request}") { id } }"#,
    },
    // Rejected first, so that accepting then answers CONFLICT (decided) without a store.
    Entry {
        kind: "mutation",
        field: "rejectHeldReply",
        policy: Policy::Staff,
        names_firm_a_objects: true,
        operation: r#"mutation { rejectHeldReply(id: "{held_reply}") { id } }"#,
    },
    Entry {
        kind: "mutation",
        field: "acceptHeldReply",
        policy: Policy::Staff,
        names_firm_a_objects: true,
        operation: r#"mutation { acceptHeldReply(id: "{held_reply}") { id } }"#,
    },
    Entry {
        kind: "mutation",
        field: "inviteStaffMember",
        policy: Policy::Admin,
        names_firm_a_objects: false,
        operation: r#"mutation { inviteStaffMember(input: { email: "new{n}@example.fr", name: "New" }) { member { id } } }"#,
    },
    Entry {
        kind: "mutation",
        field: "removeStaffMember",
        policy: Policy::Admin,
        names_firm_a_objects: true,
        operation: r#"mutation { removeStaffMember(id: "{member}") }"#,
    },
    Entry {
        kind: "mutation",
        field: "createContactAccessToken",
        policy: Policy::Admin,
        names_firm_a_objects: true,
        operation: r#"mutation { createContactAccessToken(input: { contactId: "{contact}" }) }"#,
    },
    Entry {
        kind: "mutation",
        field: "answerRequest",
        policy: Policy::Contact,
        names_firm_a_objects: true,
        operation: r#"mutation { answerRequest(input: { id: "{request}", nothingToReport: true }) { id } }"#,
    },
    Entry {
        kind: "mutation",
        field: "createWebhookEndpoint",
        policy: Policy::Admin,
        names_firm_a_objects: false,
        operation: r#"mutation { createWebhookEndpoint(input: { url: "https://93.184.216.34/hook", events: [INFORMATION_REQUEST_CREATED] }) { endpoint { id } } }"#,
    },
    Entry {
        kind: "mutation",
        field: "updateWebhookEndpoint",
        policy: Policy::Admin,
        names_firm_a_objects: true,
        operation: r#"mutation { updateWebhookEndpoint(input: { id: "{endpoint}", events: [INFORMATION_REQUEST_ANSWERED] }) { id } }"#,
    },
    Entry {
        kind: "mutation",
        field: "disableWebhookEndpoint",
        policy: Policy::Admin,
        names_firm_a_objects: true,
        operation: r#"mutation { disableWebhookEndpoint(input: { id: "{endpoint}" }) { id } }"#,
    },
    Entry {
        kind: "mutation",
        field: "enableWebhookEndpoint",
        policy: Policy::Admin,
        names_firm_a_objects: true,
        operation: r#"mutation { enableWebhookEndpoint(id: "{endpoint}") { id } }"#,
    },
    Entry {
        kind: "mutation",
        field: "rotateWebhookSecret",
        policy: Policy::Admin,
        names_firm_a_objects: true,
        operation: r#"mutation { rotateWebhookSecret(id: "{endpoint}") { endpoint { id } } }"#,
    },
    Entry {
        kind: "mutation",
        field: "deleteWebhookEndpoint",
        policy: Policy::Admin,
        names_firm_a_objects: true,
        operation: r#"mutation { deleteWebhookEndpoint(id: "{endpoint}") }"#,
    },
    Entry {
        kind: "mutation",
        field: "redeliver",
        policy: Policy::Staff,
        names_firm_a_objects: true,
        operation: r#"mutation { redeliver(id: "{delivery}") { id } }"#,
    },
    Entry {
        kind: "mutation",
        field: "remindRequest",
        policy: Policy::Staff,
        names_firm_a_objects: true,
        operation: r#"mutation { remindRequest(id: "{request}") { id } }"#,
    },
    Entry {
        kind: "mutation",
        field: "createMissions",
        policy: Policy::Staff,
        names_firm_a_objects: false,
        operation: r#"mutation { createMissions(input: { template: { name: "T", startDate: "2031-01-01", lines: [] }, clientIds: ["{client}"], dryRun: true }) { applied } }"#,
    },
    Entry {
        kind: "mutation",
        field: "signMissions",
        policy: Policy::Staff,
        names_firm_a_objects: false,
        operation: r#"mutation { signMissions(input: { ids: ["{draft}"], dryRun: true }) { applied } }"#,
    },
    Entry {
        kind: "mutation",
        field: "completeTasks",
        policy: Policy::Staff,
        names_firm_a_objects: false,
        operation: r#"mutation { completeTasks(input: { ids: ["{task}"], dryRun: true }) { applied } }"#,
    },
    Entry {
        kind: "mutation",
        field: "closeRequests",
        policy: Policy::Staff,
        names_firm_a_objects: false,
        operation: r#"mutation { closeRequests(input: { ids: ["{request}"], dryRun: true }) { applied } }"#,
    },
    Entry {
        kind: "mutation",
        field: "importClients",
        policy: Policy::Admin,
        names_firm_a_objects: false,
        operation: r#"mutation { importClients(input: { csv: "client\nImport {n}\n", dryRun: true }) { applied } }"#,
    },
    Entry {
        kind: "mutation",
        field: "updateMyPreferences",
        policy: Policy::Staff,
        names_firm_a_objects: false,
        operation: r#"mutation { updateMyPreferences(input: { dailyDigest: true }) { dailyDigest } }"#,
    },
    // Created first for every caller, so that rotating and revoking find a feed.
    Entry {
        kind: "mutation",
        field: "createCalendarFeed",
        policy: Policy::SignedIn,
        names_firm_a_objects: false,
        operation: r#"mutation { createCalendarFeed { url } }"#,
    },
    Entry {
        kind: "mutation",
        field: "rotateCalendarFeed",
        policy: Policy::SignedIn,
        names_firm_a_objects: false,
        operation: r#"mutation { rotateCalendarFeed { url } }"#,
    },
    Entry {
        kind: "mutation",
        field: "revokeCalendarFeed",
        policy: Policy::SignedIn,
        names_firm_a_objects: false,
        operation: r#"mutation { revokeCalendarFeed { createdAt } }"#,
    },
    Entry {
        kind: "subscription",
        field: "requestEvents",
        policy: Policy::SignedIn,
        names_firm_a_objects: false,
        operation: "subscription { requestEvents { kind request { id } } }",
    },
];

fn expected(entry: &Entry, who: Who) -> Outcome {
    let staff = matches!(who, Who::MemberA | Who::AdminA | Who::AdminB);
    let contact = matches!(who, Who::ContactA | Who::ContactB);
    let foreign = entry.names_firm_a_objects && matches!(who, Who::AdminB | Who::ContactB);
    match entry.policy {
        Policy::Public => Outcome::Allowed,
        Policy::PublicCredential => Outcome::Unauthenticated,
        _ if who == Who::Anonymous => Outcome::Unauthenticated,
        Policy::SignedIn => Outcome::Allowed,
        Policy::Staff | Policy::Admin if contact => Outcome::Forbidden,
        Policy::Admin if who == Who::MemberA => Outcome::Forbidden,
        Policy::Contact if staff => Outcome::Forbidden,
        _ if foreign => Outcome::NotFound,
        _ => Outcome::Allowed,
    }
}

fn classify(response: &Value) -> Outcome {
    let codes = error_codes(response);
    if codes.iter().any(|code| code == "UNAUTHENTICATED") {
        Outcome::Unauthenticated
    } else if codes.iter().any(|code| code == "FORBIDDEN") {
        Outcome::Forbidden
    } else if codes.iter().any(|code| code == "NOT_FOUND") {
        Outcome::NotFound
    } else {
        Outcome::Allowed
    }
}

fn fill(operation: &str, ids: &FirmIds, member: &str, n: usize) -> String {
    operation
        .replace("{category}", &ids.category)
        .replace("{service}", &ids.service)
        .replace("{other_client_request}", &ids.other_client_request)
        .replace("{other_client}", &ids.other_client)
        .replace("{other_contact}", &ids.other_contact)
        .replace("{client}", &ids.client)
        .replace("{contact}", &ids.contact)
        .replace("{mission}", &ids.mission)
        .replace("{draft}", &ids.draft_mission)
        .replace("{task}", &ids.task)
        .replace("{request}", &ids.request)
        .replace("{member}", member)
        .replace("{endpoint}", &ids.endpoint)
        .replace("{delivery}", &ids.delivery)
        .replace("{held_reply}", &ids.held_reply)
        .replace("{n}", &n.to_string())
}

/// The root fields the schema really has, read by introspection (anonymous callers see
/// every field, so nothing escapes the table).
async fn root_fields(app: &TestApp) -> Vec<(String, String)> {
    let data = app
        .ok(
            &Caller::Anonymous,
            "{ __schema { queryType { fields { name } } mutationType { fields { name } } subscriptionType { fields { name } } } }",
            json!({}),
        )
        .await;
    let mut fields = Vec::new();
    for (kind, key) in [
        ("query", "queryType"),
        ("mutation", "mutationType"),
        ("subscription", "subscriptionType"),
    ] {
        for field in data["__schema"][key]["fields"].as_array().expect("fields") {
            fields.push((
                kind.to_string(),
                field["name"].as_str().expect("name").to_string(),
            ));
        }
    }
    fields.sort();
    fields
}

async fn run_as(app: &TestApp, caller: &Caller, entry: &Entry, operation: &str) -> Value {
    if entry.kind != "subscription" {
        return app.exec(caller, operation, json!({})).await;
    }
    let mut stream = app
        .schema
        .execute_stream(Request::new(operation).data(caller.clone()));
    // A refused subscription answers at once with an error; an accepted one waits for events.
    match tokio::time::timeout(Duration::from_millis(300), stream.next()).await {
        Ok(Some(response)) => serde_json::to_value(&response).expect("JSON"),
        Ok(None) | Err(_) => json!({ "data": null }),
    }
}

backend_test!(
    async fn the_authorization_matrix_covers_every_root_field_and_matches_the_policy(db: TestDb) {
        let app = TestApp::new(db);
        let world = World::build(&app).await;

        let mut table: Vec<(String, String)> = POLICY
            .iter()
            .map(|entry| (entry.kind.to_string(), entry.field.to_string()))
            .collect();
        table.sort();
        assert_eq!(
            root_fields(&app).await,
            table,
            "every root field of the schema must have a row in the policy table, and no more"
        );

        let callers = [
            (Who::Anonymous, Caller::Anonymous),
            (Who::ContactA, world.contact_a.clone()),
            (Who::ContactB, world.contact_b.clone()),
            (Who::MemberA, world.member_a.clone()),
            (Who::AdminA, world.admin_a.clone()),
            (Who::AdminB, world.admin_b.clone()),
        ];
        let mut mismatches = Vec::new();
        let mut runs = 0;
        for entry in POLICY {
            // Refusals first: they must change nothing that the allowed runs rely on.
            let mut order = EVERYONE.to_vec();
            order.sort_by_key(|who| expected(entry, *who) == Outcome::Allowed);
            for who in order {
                let caller = &callers.iter().find(|(w, _)| *w == who).expect("caller").1;
                runs += 1;
                let operation = fill(entry.operation, &world.firm_a, &world.member_a_id, runs);
                let response = run_as(&app, caller, entry, &operation).await;
                let got = classify(&response);
                let want = expected(entry, who);
                if got != want {
                    mismatches.push(format!(
                        "{} {} as {who:?}: expected {want:?}, got {got:?}: {response}",
                        entry.kind, entry.field
                    ));
                }
            }
        }
        assert_eq!(runs, POLICY.len() * EVERYONE.len());
        assert!(
            mismatches.is_empty(),
            "policy mismatches:\n{}",
            mismatches.join("\n")
        );
    }
);

/// Every type name and root field a caller's introspection shows.
async fn introspection(app: &TestApp, caller: &Caller) -> (Vec<String>, Vec<String>) {
    let data = app
        .ok(
            caller,
            "{ __schema { types { name fields { name } } queryType { fields { name } } mutationType { fields { name } } } }",
            json!({}),
        )
        .await;
    let types = data["__schema"]["types"]
        .as_array()
        .expect("types")
        .iter()
        .map(|t| t["name"].as_str().expect("name").to_string())
        .collect();
    let mut fields = Vec::new();
    for key in ["queryType", "mutationType"] {
        for field in data["__schema"][key]["fields"].as_array().expect("fields") {
            fields.push(field["name"].as_str().expect("name").to_string());
        }
    }
    (types, fields)
}

backend_test!(
    async fn a_contacts_introspection_shows_no_task_and_no_firm_only_field(db: TestDb) {
        let app = TestApp::new(db);
        let world = World::build(&app).await;

        let (types, fields) = introspection(&app, &world.contact_a).await;
        for firm_only in [
            "Task",
            "TaskConnection",
            "FirmView",
            "InformationRequest",
            "Mission",
            "Service",
            "StaffMember",
            "Delivery",
            "WebhookEndpoint",
            "HeldReply",
        ] {
            assert!(
                !types.contains(&firm_only.to_string()),
                "a contact sees the type {firm_only}"
            );
        }
        for firm_only in [
            "firm",
            "createMission",
            "completeTask",
            "createService",
            "inviteStaffMember",
            "createContactAccessToken",
            "heldReplies",
            "acceptHeldReply",
            "rejectHeldReply",
        ] {
            assert!(
                !fields.contains(&firm_only.to_string()),
                "a contact sees the field {firm_only}"
            );
        }
        assert!(types.contains(&"ClientRequest".to_string()));
        assert!(
            fields.contains(&"answerRequest".to_string()) && fields.contains(&"client".to_string())
        );

        let (types, fields) = introspection(&app, &world.member_a).await;
        for firm_type in [
            "Task",
            "FirmView",
            "InformationRequest",
            "Mission",
            "Service",
        ] {
            assert!(
                types.contains(&firm_type.to_string()),
                "staff must see {firm_type}"
            );
        }
        assert!(
            fields.contains(&"firm".to_string()) && fields.contains(&"completeTask".to_string())
        );
        assert!(
            !fields.contains(&"answerRequest".to_string()),
            "staff do not see contact-only fields"
        );

        // A contact that writes a firm-only field anyway is refused, not answered.
        let response = app
            .exec(
                &world.contact_a,
                "{ firm { tasks { nodes { title } } } }",
                json!({}),
            )
            .await;
        assert_eq!(error_codes(&response), ["FORBIDDEN"]);
        assert!(response["data"].is_null() || response["data"]["firm"].is_null());
    }
);

backend_test!(
    async fn ids_of_another_tenant_answer_not_found_like_ids_that_do_not_exist(db: TestDb) {
        let app = TestApp::new(db);
        let world = World::build(&app).await;
        let b = &world.firm_b;

        let lookups = [
            ("mission", &b.mission, Kind::Mission),
            ("task", &b.task, Kind::Task),
            ("informationRequest", &b.request, Kind::InformationRequest),
            ("client", &b.client, Kind::Client),
            ("service", &b.service, Kind::Service),
        ];
        for (field, foreign_id, kind) in lookups {
            let query = format!("query($id: ID!) {{ firm {{ {field}(id: $id) {{ id }} }} }}");
            let foreign = app
                .exec(&world.admin_a, &query, json!({ "id": foreign_id }))
                .await;
            let missing = app
                .exec(&world.admin_a, &query, json!({ "id": gid(kind, 999_999) }))
                .await;
            assert_eq!(error_codes(&foreign), ["NOT_FOUND"], "{field}: {foreign}");
            assert_eq!(
                foreign["errors"][0]["message"], missing["errors"][0]["message"],
                "{field}: a foreign id must be indistinguishable from a missing one"
            );
        }

        let response = app
            .exec(
                &world.admin_a,
                "mutation($id: ID!) { completeTask(id: $id) { id } }",
                json!({ "id": b.task }),
            )
            .await;
        assert_eq!(error_codes(&response), ["NOT_FOUND"]);
        let still_open = app
            .ok(
                &world.admin_b,
                "query($id: ID!) { firm { task(id: $id) { status } } }",
                json!({ "id": b.task }),
            )
            .await;
        assert_eq!(
            still_open["firm"]["task"]["status"], "OPEN",
            "firm B's task was not touched"
        );

        // Contacts: another client's request, in the same firm or another one.
        for foreign_request in [&world.firm_a.other_client_request, &b.request] {
            let response = app
                .exec(
                    &world.contact_a,
                    "query($id: ID!) { client { request(id: $id) { id text } } }",
                    json!({ "id": foreign_request }),
                )
                .await;
            assert_eq!(error_codes(&response), ["NOT_FOUND"], "{response}");
            let response = app
                .exec(
                    &world.contact_a,
                    "mutation($id: ID!) { answerRequest(input: { id: $id, nothingToReport: true }) { id } }",
                    json!({ "id": foreign_request }),
                )
                .await;
            assert_eq!(error_codes(&response), ["NOT_FOUND"], "{response}");
        }
        let own = app
            .ok(
                &world.contact_a,
                "{ client { requests { nodes { id } } } }",
                json!({}),
            )
            .await;
        let own_ids: Vec<&str> = own["client"]["requests"]["nodes"]
            .as_array()
            .expect("list")
            .iter()
            .map(|r| r["id"].as_str().expect("id"))
            .collect();
        assert!(own_ids.contains(&world.firm_a.request.as_str()));
        assert!(
            !own_ids.contains(&world.firm_a.other_client_request.as_str()),
            "a contact sees only its own client's requests"
        );
    }
);

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// Row counts of every table a rejected mutation could touch.
async fn table_counts(db: &TestDb) -> Vec<(String, i64)> {
    let mut counts = Vec::new();
    for table in [
        "categories",
        "services",
        "service_items",
        "clients",
        "contacts",
        "missions",
        "mission_lines",
        "tasks",
        "information_requests",
        "deliveries",
        "users",
    ] {
        let mut conn = db.pool.get().await.expect("connection");
        let sql = format!("SELECT count(*) AS n FROM {table}");
        let rows: Vec<Count> =
            with_conn!(conn, |c| diesel::sql_query(&sql).load(c).await).expect("count");
        counts.push((table.to_string(), rows[0].n));
    }
    counts
}

backend_test!(
    async fn each_invalid_input_answers_bad_user_input_naming_the_field_and_changes_nothing(
        db: TestDb,
    ) {
        let app = TestApp::new(db);
        let world = World::build(&app).await;
        let a = &world.firm_a;
        let empty = app
            .ok(
                &world.admin_a,
                "mutation($input: CreateMissionInput!) { createMission(input: $input) { id } }",
                json!({ "input": { "clientId": a.client, "name": "Vide", "startDate": "2031-01-01", "lines": [] } }),
            )
            .await;
        app.ok(
            &world.admin_a,
            "mutation($id: ID!, $service: ID!) { addMissionLine(input: { missionId: $id, serviceId: $service, frequency: ANNUAL, firstDueDate: \"2099-01-31\" }) { id } }",
            json!({ "id": a.mission, "service": a.service }),
        )
        .await;
        let admin_id =
            app.ok(&world.admin_a, "{ viewer { id } }", json!({})).await["viewer"]["id"].clone();
        let empty_mission = empty["createMission"]["id"]
            .as_str()
            .expect("id")
            .to_string();
        let long_title = "x".repeat(201);
        let mission = |end: &str, line: Value| json!({ "input": { "clientId": a.client, "name": "M", "startDate": "2031-01-01", "endDate": end, "lines": [line] } });
        let line = |extra: Value| {
            let mut line = json!({ "serviceId": a.service, "frequency": "MONTHLY" });
            line.as_object_mut()
                .expect("object")
                .extend(extra.as_object().expect("object").clone());
            line
        };
        let create_mission =
            "mutation($input: CreateMissionInput!) { createMission(input: $input) { id } }";
        let create_service =
            "mutation($input: CreateServiceInput!) { createService(input: $input) { id } }";
        let service = |title: &str, lead_days: i64| json!({ "input": { "title": title, "leadDays": lead_days, "items": [{ "kind": "TASK", "title": "T" }] } });
        let cases: Vec<(&str, &str, Value, &str)> = vec![
            (
                "end date before start date",
                create_mission,
                mission("2030-12-31", line(json!({}))),
                "endDate",
            ),
            (
                "first due date before the mission",
                create_mission,
                mission("2031-12-31", line(json!({ "firstDueDate": "2030-12-30" }))),
                "lines.0.firstDueDate",
            ),
            (
                "first due date after the mission",
                create_mission,
                mission("2031-12-31", line(json!({ "firstDueDate": "2032-01-30" }))),
                "lines.0.firstDueDate",
            ),
            (
                "quantity with a recurring frequency",
                create_mission,
                mission("2031-12-31", line(json!({ "quantity": 3 }))),
                "lines.0.quantity",
            ),
            (
                "quantity zero",
                create_mission,
                mission(
                    "2031-12-31",
                    line(json!({ "frequency": "NONE", "quantity": 0 })),
                ),
                "lines.0.quantity",
            ),
            (
                "custom frequency without a rule",
                create_mission,
                mission("2031-12-31", line(json!({ "frequency": "CUSTOM" }))),
                "lines.0.rrule",
            ),
            (
                "custom frequency with an invalid rule",
                create_mission,
                mission(
                    "2031-12-31",
                    line(json!({ "frequency": "CUSTOM", "rrule": "FREQ=SOMETIMES" })),
                ),
                "lines.0.rrule",
            ),
            (
                "lead days above 366",
                create_service,
                service("Paie", 367),
                "leadDays",
            ),
            (
                "negative lead days",
                create_service,
                service("Paie", -1),
                "leadDays",
            ),
            ("an empty title", create_service, service("   ", 5), "title"),
            (
                "an over-long title",
                create_service,
                service(&long_title, 5),
                "title",
            ),
            (
                "a malformed email",
                "mutation($client: ID!) { addContact(input: { clientId: $client, name: \"X\", email: \"pas-un-email\" }) { id } }",
                json!({ "client": a.client }),
                "email",
            ),
            (
                "an email with a line break",
                "mutation($client: ID!) { addContact(input: { clientId: $client, name: \"X\", email: \"x@example.fr\\r\\nBcc: y@example.fr\" }) { id } }",
                json!({ "client": a.client }),
                "email",
            ),
            (
                "signing a mission with no lines",
                "mutation($id: ID!) { signMission(id: $id) { id } }",
                json!({ "id": empty_mission }),
                "id",
            ),
            (
                "moving a signed mission's start",
                "mutation($id: ID!) { updateMission(input: { id: $id, startDate: \"2020-01-01\" }) { id } }",
                json!({ "id": a.mission }),
                "startDate",
            ),
            (
                "ending a signed mission in the past",
                "mutation($id: ID!) { updateMission(input: { id: $id, endDate: \"2021-01-01\" }) { id } }",
                json!({ "id": a.mission }),
                "endDate",
            ),
            (
                "replacing a signed mission's lines",
                "mutation($id: ID!, $service: ID!) { updateMission(input: { id: $id, lines: [{ serviceId: $service, frequency: ANNUAL }] }) { id } }",
                json!({ "id": a.mission, "service": a.service }),
                "lines",
            ),
            (
                "adding a past line to a signed mission",
                "mutation($input: AddMissionLineInput!) { addMissionLine(input: $input) { id } }",
                json!({ "input": { "missionId": a.mission, "serviceId": a.service, "frequency": "MONTHLY", "firstDueDate": months_ago_28th(1) } }),
                "lines.2.firstDueDate",
            ),
            (
                "ending a mission at a future date",
                "mutation($id: ID!) { endMission(input: { id: $id, endDate: \"2099-01-01\" }) { id } }",
                json!({ "id": a.mission }),
                "endDate",
            ),
            (
                "ending a signed mission before one of its lines starts",
                "mutation($id: ID!) { updateMission(input: { id: $id, endDate: \"2098-12-31\" }) { id } }",
                json!({ "id": a.mission }),
                "lines.1.firstDueDate",
            ),
            (
                "removing the firm's last admin",
                "mutation($id: ID!) { removeStaffMember(id: $id) }",
                json!({ "id": admin_id }),
                "id",
            ),
            (
                "a page size out of range",
                "{ firm { tasks(first: 101) { nodes { id } } } }",
                json!({}),
                "first",
            ),
        ];
        let before = table_counts(&app.db).await;
        for (case, operation, variables, field) in cases {
            let response = app.exec(&world.admin_a, operation, variables).await;
            assert_eq!(
                error_codes(&response),
                ["BAD_USER_INPUT"],
                "{case}: {response}"
            );
            assert_eq!(
                response["errors"][0]["extensions"]["field"], field,
                "{case}: {response}"
            );
            let message = response["errors"][0]["message"]
                .as_str()
                .unwrap_or_default();
            assert!(
                !message.is_empty() && !message.contains("SQL") && !message.contains("diesel"),
                "{case}: {message}"
            );
        }
        assert_eq!(
            table_counts(&app.db).await,
            before,
            "rejected inputs must change nothing"
        );

        // A malformed value in the query itself also gets a code and no internal detail.
        let response = app
            .exec(
                &world.admin_a,
                "{ firm { tasks(dueFrom: \"30/01/2027\") { nodes { id } } } }",
                json!({}),
            )
            .await;
        assert_eq!(error_codes(&response), ["BAD_USER_INPUT"], "{response}");
    }
);

backend_test!(
    async fn a_firm_and_its_client_work_through_the_api_over_real_http(db: TestDb) {
        let server = ServerProcess::start(&db.url, &[]);
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_rappel"))
            .args([
                "firm",
                "create",
                "--name",
                "Cabinet Dupont",
                "--admin-email",
                "expert@dupont.fr",
                "--admin-password",
                PASSWORD,
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("RAPPEL_DATABASE_URL", &db.url)
            .output()
            .expect("rappel firm create runs");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let base = &server.base_url;
        let gql = |token: Option<String>, query: &'static str, variables: Value| {
            let base = base.clone();
            async move {
                let response = post_graphql(&base, token.as_deref(), query, variables).await;
                assert!(response.get("errors").is_none(), "{query}: {response}");
                response["data"].clone()
            }
        };

        let wrong = post_graphql(base, None, "mutation { login(input: { email: \"expert@dupont.fr\", password: \"wrong password\" }) { token } }", json!({})).await;
        let unknown = post_graphql(base, None, "mutation { login(input: { email: \"nobody@dupont.fr\", password: \"wrong password\" }) { token } }", json!({})).await;
        assert_eq!(error_codes(&wrong), ["UNAUTHENTICATED"]);
        assert_eq!(
            wrong["errors"][0]["message"], unknown["errors"][0]["message"],
            "a wrong email and a wrong password look the same"
        );

        let data = gql(
            None,
            "mutation($e: String!, $p: String!) { login(input: { email: $e, password: $p }) { token } }",
            json!({ "e": "expert@dupont.fr", "p": PASSWORD }),
        )
        .await;
        let staff = Some(data["login"]["token"].as_str().expect("token").to_string());
        let data = gql(staff.clone(), "{ viewer { kind name role } }", json!({})).await;
        assert_eq!(data["viewer"]["kind"], "STAFF");
        assert_eq!(data["viewer"]["role"], "ADMIN");

        let data = gql(
            staff.clone(),
            "mutation { createCategory(input: { name: \"Fiscal\" }) { id } }",
            json!({}),
        )
        .await;
        let category = data["createCategory"]["id"].clone();
        let data = gql(staff.clone(), "mutation($input: CreateServiceInput!) { createService(input: $input) { id title leadDays items { kind title position } } }", json!({ "input": {
            "categoryId": category, "title": "Rappel TVA", "deliverableType": "DOCUMENTS", "leadDays": 10,
            "items": [
                { "kind": "INFORMATION_REQUEST", "title": "Merci de déposer vos éléments du mois sur le portail du cabinet" },
                { "kind": "TASK", "title": "Préparer la déclaration de TVA" }
            ]
        }})).await;
        let service = data["createService"]["id"].clone();
        assert_eq!(
            data["createService"]["items"]
                .as_array()
                .expect("items")
                .len(),
            2
        );
        let data = gql(
            staff.clone(),
            "mutation { createClient(input: { name: \"Boulangerie Martin\" }) { id } }",
            json!({}),
        )
        .await;
        let client = data["createClient"]["id"].clone();
        let data = gql(staff.clone(), "mutation($c: ID!) { addContact(input: { clientId: $c, name: \"Marie Martin\", email: \"marie@boulangerie.fr\", language: FRENCH }) { id } }", json!({ "c": client })).await;
        let contact = data["addContact"]["id"].clone();
        let start = months_ago_28th(2);
        let data = gql(
            staff.clone(),
            "mutation($input: CreateMissionInput!) { createMission(input: $input) { id status } }",
            json!({ "input": {
                "clientId": client, "name": "TVA mensuelle", "startDate": start,
                "lines": [{ "serviceId": service, "frequency": "MONTHLY" }]
            }}),
        )
        .await;
        let mission = data["createMission"]["id"].clone();
        assert_eq!(data["createMission"]["status"], "DRAFT");
        let data = gql(staff.clone(), "query($id: ID!) { firm { schedulePreview(missionId: $id, until: \"2100-01-01\") { dueDate creationDate inPast itemKind } } }", json!({ "id": mission })).await;
        let preview = data["firm"]["schedulePreview"]
            .as_array()
            .expect("preview")
            .clone();
        let past = preview.iter().filter(|o| o["inPast"] == true).count();
        assert!(
            past >= 4,
            "two or three past months, a request and a task each: {preview:?}"
        );
        let data = gql(
            staff.clone(),
            "mutation($id: ID!) { signMission(id: $id) { status } }",
            json!({ "id": mission }),
        )
        .await;
        assert_eq!(data["signMission"]["status"], "SIGNED");
        let data = gql(staff.clone(), "{ firm { missions { nodes { name status client { name } lines { frequency service { title } } } } informationRequests { nodes { id status } } tasks { nodes { title } } } }", json!({})).await;
        assert_eq!(data["firm"]["missions"]["nodes"][0]["status"], "SIGNED");
        assert_eq!(
            data["firm"]["missions"]["nodes"][0]["lines"][0]["service"]["title"],
            "Rappel TVA"
        );
        let requests = data["firm"]["informationRequests"]["nodes"]
            .as_array()
            .expect("requests")
            .clone();
        assert_eq!(
            requests.len() * 2,
            past,
            "signing created exactly the past occurrences the preview showed"
        );
        assert_eq!(
            data["firm"]["tasks"]["nodes"]
                .as_array()
                .expect("tasks")
                .len(),
            requests.len()
        );

        let data = gql(
            staff.clone(),
            "mutation($c: ID!) { createContactAccessToken(input: { contactId: $c }) }",
            json!({ "c": contact }),
        )
        .await;
        let client_token = Some(
            data["createContactAccessToken"]
                .as_str()
                .expect("token")
                .to_string(),
        );
        let data = gql(
            client_token.clone(),
            "{ viewer { kind name } client { clientName requests { nodes { id text dueDate status } } } }",
            json!({}),
        )
        .await;
        assert_eq!(data["viewer"]["kind"], "CONTACT");
        let seen = data["client"]["requests"]["nodes"]
            .as_array()
            .expect("requests")
            .clone();
        assert_eq!(seen.len(), requests.len());
        assert_eq!(
            seen[0]["text"],
            "Merci de déposer vos éléments du mois sur le portail du cabinet"
        );
        let request_id = seen[0]["id"].clone();
        let data = gql(client_token.clone(), "mutation($id: ID!) { answerRequest(input: { id: $id, message: \"Déposé sur le portail\" }) { status answers { nodes { message } } } }", json!({ "id": request_id })).await;
        assert_eq!(data["answerRequest"]["status"], "ANSWERED");
        let data = gql(staff.clone(), "query($id: ID!) { firm { informationRequest(id: $id) { status answers { totalCount nodes { message contact { name } } } } } }", json!({ "id": request_id })).await;
        assert_eq!(data["firm"]["informationRequest"]["status"], "ANSWERED");
        assert_eq!(
            data["firm"]["informationRequest"]["answers"]["nodes"][0]["contact"]["name"],
            "Marie Martin"
        );
        assert_eq!(
            data["firm"]["informationRequest"]["answers"]["totalCount"],
            1
        );

        let data = gql(staff.clone(), "mutation { logout }", json!({})).await;
        assert_eq!(data["logout"], true);
        let after = post_graphql(base, staff.as_deref(), "{ firm { name } }", json!({})).await;
        assert_eq!(
            error_codes(&after),
            ["UNAUTHENTICATED"],
            "a revoked token opens nothing"
        );
    }
);

/// Reads WebSocket messages until one of type `next`, `error` or `complete` (or the socket
/// closes); answers pings. Bounded: at most 10 s.
async fn next_event<S>(socket: &mut S) -> Option<Value>
where
    S: futures_util::Stream<
            Item = Result<
                tokio_tungstenite::tungstenite::Message,
                tokio_tungstenite::tungstenite::Error,
            >,
        > + Unpin,
{
    next_event_within(socket, Duration::from_secs(10)).await
}

/// [`next_event`] with a chosen wait.
async fn next_event_within<S>(socket: &mut S, wait: Duration) -> Option<Value>
where
    S: futures_util::Stream<
            Item = Result<
                tokio_tungstenite::tungstenite::Message,
                tokio_tungstenite::tungstenite::Error,
            >,
        > + Unpin,
{
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let message = tokio::time::timeout_at(deadline, socket.next())
            .await
            .ok()??
            .ok()?;
        let tokio_tungstenite::tungstenite::Message::Text(text) = message else {
            if matches!(message, tokio_tungstenite::tungstenite::Message::Close(_)) {
                return None;
            }
            continue;
        };
        let value: Value = serde_json::from_str(&text).ok()?;
        if matches!(
            value["type"].as_str(),
            Some("next" | "error" | "complete" | "connection_ack")
        ) {
            return Some(value);
        }
    }
}

/// Opens /graphql/ws, authenticates with `token` at connection init, subscribes to
/// requestEvents; returns the socket, or the refusal.
async fn subscribe(
    base_url: &str,
    token: Option<&str>,
) -> Result<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    String,
> {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let url = format!("{}/graphql/ws", base_url.replace("http://", "ws://"));
    let mut request = url.into_client_request().expect("request");
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().expect("header"),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("connects");
    let payload = token.map_or(
        json!({}),
        |token| json!({ "Authorization": format!("Bearer {token}") }),
    );
    socket
        .send(Message::Text(
            json!({ "type": "connection_init", "payload": payload })
                .to_string()
                .into(),
        ))
        .await
        .expect("init sent");
    match next_event(&mut socket).await {
        Some(ack) if ack["type"] == "connection_ack" => {}
        other => return Err(format!("{other:?}")),
    }
    socket
        .send(Message::Text(
            json!({ "id": "1", "type": "subscribe", "payload": { "query": "subscription { requestEvents { kind request { id text } } }" } })
                .to_string()
                .into(),
        ))
        .await
        .expect("subscribe sent");
    Ok(socket)
}

backend_test!(
    async fn subscriptions_authenticate_at_connection_init_and_stream_only_the_callers_scope(
        db: TestDb,
    ) {
        let app = TestApp::new(db);
        let world = World::build(&app).await;
        let server = ServerProcess::start(&app.db.url, &[]);
        let contact_b_token = {
            let data = app
                .ok(
                    &world.admin_a,
                    "mutation($c: ID!) { createContactAccessToken(input: { contactId: $c }) }",
                    json!({ "c": world.firm_a.other_contact }),
                )
                .await;
            data["createContactAccessToken"]
                .as_str()
                .expect("token")
                .to_string()
        };

        assert!(
            subscribe(&server.base_url, None).await.is_err(),
            "an anonymous connection is refused at init"
        );
        let mut contact_a = subscribe(&server.base_url, Some(&world.contact_a_token))
            .await
            .expect("contact A");
        let mut contact_b = subscribe(&server.base_url, Some(&contact_b_token))
            .await
            .expect("contact B");
        let mut staff = subscribe(&server.base_url, Some(&world.admin_a_token))
            .await
            .expect("staff");
        // A subscription starts listening a moment after `subscribe` is sent, so each answer
        // is repeated (answers may be) until its author hears it, within a bounded number.
        let answer = "mutation($id: ID!) { answerRequest(input: { id: $id, message: \"Voici\" }) { status } }";
        let mut heard = Vec::new();
        for (token, request, socket) in [
            (
                &world.contact_a_token,
                &world.firm_a.request,
                &mut contact_a,
            ),
            (
                &contact_b_token,
                &world.firm_a.other_client_request,
                &mut contact_b,
            ),
        ] {
            let mut event = None;
            for _ in 0..20 {
                let response = post_graphql(
                    &server.base_url,
                    Some(token),
                    answer,
                    json!({ "id": request }),
                )
                .await;
                assert_eq!(
                    response["data"]["answerRequest"]["status"], "ANSWERED",
                    "{response}"
                );
                event = next_event_within(socket, Duration::from_millis(500)).await;
                if event.is_some() {
                    break;
                }
            }
            let event = event.expect("a contact hears its own client's answer");
            assert_eq!(
                event["payload"]["data"]["requestEvents"]["kind"],
                "ANSWERED"
            );
            heard.push(event["payload"]["data"]["requestEvents"]["request"]["id"].clone());
        }
        assert_eq!(heard[0], world.firm_a.request.as_str());
        assert_eq!(
            heard[1],
            world.firm_a.other_client_request.as_str(),
            "contact B's first event is its own client's: client A's answers never reached it"
        );
        // Staff hear both clients' answers (again repeated until heard, within a bound).
        let mut staff_heard = std::collections::BTreeSet::new();
        for _ in 0..20 {
            for (token, request) in [
                (&world.contact_a_token, &world.firm_a.request),
                (&contact_b_token, &world.firm_a.other_client_request),
            ] {
                post_graphql(
                    &server.base_url,
                    Some(token),
                    answer,
                    json!({ "id": request }),
                )
                .await;
            }
            while let Some(event) = next_event_within(&mut staff, Duration::from_millis(500)).await
            {
                staff_heard.insert(
                    event["payload"]["data"]["requestEvents"]["request"]["id"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                );
            }
            if staff_heard.len() == 2 {
                break;
            }
        }
        let expected: std::collections::BTreeSet<String> = [
            world.firm_a.request.clone(),
            world.firm_a.other_client_request.clone(),
        ]
        .into();
        assert_eq!(staff_heard, expected);
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_refuse_deep_queries_big_batches_and_big_bodies() {
    let folder = tempfile::tempdir().expect("folder");
    let url = folder
        .path()
        .join("limits.db")
        .to_string_lossy()
        .to_string();
    let server = ServerProcess::start(&url, &[]);
    let client = reqwest::Client::new();
    let endpoint = format!("{}/graphql", server.base_url);

    let batch: Vec<Value> = (0..11)
        .map(|_| json!({ "query": "{ __typename }" }))
        .collect();
    let response: Value = client
        .post(&endpoint)
        .json(&batch)
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("JSON");
    assert_eq!(error_codes(&response), ["BAD_USER_INPUT"], "{response}");
    let batch: Vec<Value> = (0..10)
        .map(|_| json!({ "query": "{ __typename }" }))
        .collect();
    let response: Value = client
        .post(&endpoint)
        .json(&batch)
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        response.as_array().map(Vec::len),
        Some(10),
        "ten operations are within the limit"
    );

    let mut deep = String::from("__typename");
    // 4 + 2 x 7 = 18 levels: over the depth limit (15), under the parser's recursion limit.
    for _ in 0..7 {
        deep = format!("missions {{ client {{ {deep} }} }}");
    }
    let query = format!("{{ firm {{ clients {{ nodes {{ {deep} }} }} }} }}");
    let response = post_graphql(&server.base_url, None, &query, json!({})).await;
    assert_eq!(error_codes(&response), ["BAD_USER_INPUT"], "{response}");
    assert!(
        response["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("nested too deep"),
        "{response}"
    );

    // The server answers 413 from the announced length alone, before any of the body is read
    // (a client still writing a big body would meet a closed socket, so none is written here).
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = server.base_url.trim_start_matches("http://").to_string();
    let mut socket = tokio::net::TcpStream::connect(&address)
        .await
        .expect("connects");
    let head = format!(
        "POST /graphql HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        2 * 1024 * 1024
    );
    socket.write_all(head.as_bytes()).await.expect("head sent");
    let mut answer = vec![0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(10), socket.read(&mut answer))
        .await
        .expect("the server answers without waiting for the body")
        .expect("read");
    let status_line = String::from_utf8_lossy(&answer[..read]).to_string();
    assert!(
        status_line.starts_with("HTTP/1.1 413"),
        "a body over max_body_bytes is refused: {status_line}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_settings_turn_introspection_suggestions_and_graphiql_off() {
    let folder = tempfile::tempdir().expect("folder");
    let url = folder.path().join("prod.db").to_string_lossy().to_string();
    let server = ServerProcess::start(
        &url,
        &[
            ("RAPPEL_GRAPHQL_INTROSPECTION", "false"),
            ("RAPPEL_GRAPHQL_SUGGESTIONS", "false"),
            ("RAPPEL_GRAPHQL_GRAPHIQL", "false"),
        ],
    );
    let response = post_graphql(
        &server.base_url,
        None,
        "{ __schema { types { name } } }",
        json!({}),
    )
    .await;
    assert!(response["data"]["__schema"].is_null(), "{response}");
    let response = post_graphql(&server.base_url, None, "{ viewr { kind } }", json!({})).await;
    let message = response["errors"][0]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        !message.contains("Did you mean"),
        "no suggestions in production: {message}"
    );
    let status = reqwest::Client::new()
        .get(format!("{}/graphql", server.base_url))
        .header("accept", "text/html")
        .send()
        .await
        .expect("GET")
        .status();
    assert_eq!(status.as_u16(), 404, "a browser finds no playground");

    let dev_folder = tempfile::tempdir().expect("folder");
    let dev_url = dev_folder
        .path()
        .join("dev.db")
        .to_string_lossy()
        .to_string();
    let dev = ServerProcess::start(&dev_url, &[]);
    let response = post_graphql(&dev.base_url, None, "{ viewr { kind } }", json!({})).await;
    let message = response["errors"][0]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message.contains("Did you mean"),
        "the development default suggests: {message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_on_one_instance_hears_what_another_instance_did_on_postgres() {
    if !crate::support::db::postgres_configured(
        "a_subscriber_on_one_instance_hears_what_another_instance_did_on_postgres",
    ) {
        return;
    }
    let app = TestApp::new(TestDb::create(crate::support::Backend::Postgres).await);
    let world = World::build(&app).await;
    let listening = ServerProcess::start(&app.db.url, &[]);
    let acting = ServerProcess::start(&app.db.url, &[]);
    let mut socket = subscribe(&listening.base_url, Some(&world.contact_a_token))
        .await
        .expect("subscribed on the first instance");
    let answer = "mutation($id: ID!) { answerRequest(input: { id: $id, nothingToReport: true }) { status } }";
    let mut event = None;
    // Bounded: the instances' listeners connect a moment after start.
    for _ in 0..20 {
        let response = post_graphql(
            &acting.base_url,
            Some(&world.contact_a_token),
            answer,
            json!({ "id": world.firm_a.request }),
        )
        .await;
        assert_eq!(
            response["data"]["answerRequest"]["status"], "ANSWERED",
            "{response}"
        );
        event = next_event_within(&mut socket, Duration::from_millis(500)).await;
        if event.is_some() {
            break;
        }
    }
    let event = event.expect("the answer given on the second instance reached the first");
    assert_eq!(
        event["payload"]["data"]["requestEvents"]["kind"],
        "ANSWERED"
    );
    assert_eq!(
        event["payload"]["data"]["requestEvents"]["request"]["id"],
        world.firm_a.request.as_str()
    );
}

backend_test!(
    async fn a_subscription_ends_when_its_token_is_revoked(db: TestDb) {
        let app = TestApp::new(db);
        let world = World::build(&app).await;
        let server = ServerProcess::start(&app.db.url, &[]);
        let Caller::Contact(contact) = &world.contact_a else {
            panic!("contact A is a contact");
        };
        // A second token of the same contact, to keep answering after the first is revoked.
        let second = app
            .ok(
                &world.admin_a,
                "mutation($c: ID!) { createContactAccessToken(input: { contactId: $c }) }",
                json!({ "c": gid(Kind::Contact, contact.contact_id) }),
            )
            .await["createContactAccessToken"]
            .as_str()
            .expect("token")
            .to_string();
        let mut socket = subscribe(&server.base_url, Some(&world.contact_a_token))
            .await
            .expect("subscribed");
        let answer = "mutation($id: ID!) { answerRequest(input: { id: $id, nothingToReport: true }) { status } }";
        let mut heard = None;
        for _ in 0..20 {
            post_graphql(
                &server.base_url,
                Some(&second),
                answer,
                json!({ "id": world.firm_a.request }),
            )
            .await;
            heard = next_event_within(&mut socket, Duration::from_millis(500)).await;
            if heard.is_some() {
                break;
            }
        }
        assert_eq!(heard.expect("live before logout")["type"], "next");

        let response = post_graphql(
            &server.base_url,
            Some(&world.contact_a_token),
            "mutation { logout }",
            json!({}),
        )
        .await;
        assert_eq!(response["data"]["logout"], true);
        post_graphql(
            &server.base_url,
            Some(&second),
            answer,
            json!({ "id": world.firm_a.request }),
        )
        .await;
        let after = next_event_within(&mut socket, Duration::from_secs(5)).await;
        assert!(
            after
                .as_ref()
                .is_none_or(|message| message["type"] != "next"),
            "no event after the token was revoked: {after:?}"
        );
    }
);
