//! Bulk work through the GraphQL schema on both backends: one mission template on many
//! clients, all or nothing (one bad client id changes no table), dry runs that change
//! nothing, bulk completion and closing, and the CSV import with its errors per line.

use diesel::QueryableByName;
use diesel_async::RunQueryDsl;
use rappel::graphql::Caller;
use rappel::with_conn;
use serde_json::{Value, json};

use crate::backend_test;
use crate::support::TestDb;
use crate::support::app::{Kind, PASSWORD, TestApp, error_codes, gid};
use crate::support::fixture::FirmFixture;

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// Row counts of every table.
async fn table_counts(db: &TestDb) -> Vec<(String, i64)> {
    let mut counts = Vec::new();
    for table in [
        "firms",
        "users",
        "clients",
        "contacts",
        "access_tokens",
        "categories",
        "services",
        "service_items",
        "missions",
        "mission_lines",
        "tasks",
        "information_requests",
        "request_answers",
        "webhook_endpoints",
        "deliveries",
        "delivery_attempts",
        "journal_entries",
    ] {
        let mut conn = db.pool.get().await.expect("connection");
        let sql = format!("SELECT count(*) AS n FROM {table}");
        let rows: Vec<Count> =
            with_conn!(conn, |c| diesel::sql_query(&sql).load(c).await).expect("count");
        counts.push((table.to_string(), rows[0].n));
    }
    counts
}

const CREATE_MISSIONS: &str = "mutation($input: CreateMissionsInput!) { createMissions(input: $input) { dryRun applied ids errors { index id code field message } } }";

/// A firm with a service and `clients` clients; its admin signed in.
async fn firm_with_clients(
    app: &TestApp,
    tag: &str,
    clients: usize,
) -> (FirmFixture, Caller, i64, Vec<i64>) {
    let firm = FirmFixture::create(&app.db.pool, tag).await;
    let service = firm.service("Paie", 5).await;
    let mut ids = Vec::new();
    for n in 0..clients {
        ids.push(firm.client_with_contact(&format!("Client {n}")).await.0.id);
    }
    let (_, admin) = app.login(&firm.admin_email, PASSWORD).await;
    (firm, admin, service.id, ids)
}

fn template(service_id: i64) -> Value {
    json!({
        "name": "Paie 2031",
        "startDate": "2031-01-01",
        "endDate": "2031-12-31",
        "lines": [{ "serviceId": gid(Kind::Service, service_id), "frequency": "MONTHLY" }],
    })
}

fn ids(values: &[i64]) -> Vec<String> {
    values.iter().map(|id| gid(Kind::Client, *id)).collect()
}

backend_test! {
    async fn a_template_applied_to_many_clients_creates_one_draft_mission_each_and_journals_them(db: TestDb) {
        let app = TestApp::new(db);
        let (_firm, admin, service, clients) = firm_with_clients(&app, "bulk", 5).await;
        let data = app
            .ok(&admin, CREATE_MISSIONS, json!({ "input": { "template": template(service), "clientIds": ids(&clients) } }))
            .await;
        let result = &data["createMissions"];
        assert_eq!(result["applied"], true, "{result}");
        assert_eq!(result["errors"], json!([]));
        let created = result["ids"].as_array().expect("ids");
        assert_eq!(created.len(), 5);
        let data = app.ok(&admin, "{ firm { missions(status: DRAFT, first: 50) { nodes { name status client { id } lines { frequency } } } } }", json!({})).await;
        let missions = data["firm"]["missions"]["nodes"].as_array().expect("missions");
        assert_eq!(missions.len(), 5);
        let mut owners: Vec<String> = missions
            .iter()
            .map(|mission| mission["client"]["id"].as_str().expect("id").to_string())
            .collect();
        owners.sort();
        let mut expected = ids(&clients);
        expected.sort();
        assert_eq!(owners, expected);
        assert!(missions.iter().all(|m| m["name"] == "Paie 2031" && m["lines"][0]["frequency"] == "MONTHLY"));
        let journal = table_counts(&app.db).await.into_iter().find(|(t, _)| t == "journal_entries").expect("journal").1;
        assert!(journal >= 5, "each mission has its entry: {journal}");

        // Signing them all at once generates each one.
        let sign = "mutation($ids: [ID!]!) { signMissions(input: { ids: $ids }) { applied errors { id message } } }";
        let data = app.ok(&admin, sign, json!({ "ids": created })).await;
        assert_eq!(data["signMissions"]["applied"], true, "{data}");
        let data = app.ok(&admin, "{ firm { missions(status: SIGNED, first: 50) { nodes { id } } } }", json!({})).await;
        assert_eq!(data["firm"]["missions"]["nodes"].as_array().expect("missions").len(), 5);
        // Signing again is refused for every one, and nothing changes.
        let data = app.ok(&admin, sign, json!({ "ids": created })).await;
        assert_eq!(data["signMissions"]["applied"], false);
        assert_eq!(data["signMissions"]["errors"].as_array().expect("errors").len(), 5);
    }
}

backend_test! {
    async fn one_bad_client_id_among_many_changes_nothing_and_names_the_client(db: TestDb) {
        let app = TestApp::new(db);
        let (_firm, admin, service, mut clients) = firm_with_clients(&app, "allornothing", 3).await;
        // Another firm's client answers as a missing one.
        let (_other, _, _, foreign) = firm_with_clients(&app, "foreign", 1).await;
        clients.insert(1, foreign[0]);
        let before = table_counts(&app.db).await;
        // A malformed id, or an id of another type, refuses the whole call naming its place.
        for wrong in ["not-an-id".to_string(), gid(Kind::Mission, clients[0])] {
            let mut given = ids(&clients);
            given.push(wrong);
            let refused = app
                .exec(&admin, CREATE_MISSIONS, json!({ "input": { "template": template(service), "clientIds": given } }))
                .await;
            assert_eq!(error_codes(&refused), ["BAD_USER_INPUT"], "{refused}");
            assert_eq!(refused["errors"][0]["extensions"]["field"], "clientIds.4", "{refused}");
            assert_eq!(table_counts(&app.db).await, before);
        }
        let data = app
            .ok(&admin, CREATE_MISSIONS, json!({ "input": { "template": template(service), "clientIds": ids(&clients) } }))
            .await;
        let result = &data["createMissions"];
        assert_eq!(result["applied"], false, "{result}");
        assert_eq!(result["ids"], json!([]));
        let errors = result["errors"].as_array().expect("errors");
        assert_eq!(errors.len(), 1, "{result}");
        assert_eq!(errors[0]["index"], 1);
        assert_eq!(errors[0]["id"], gid(Kind::Client, foreign[0]));
        assert_eq!(errors[0]["code"], "NOT_FOUND");
        assert_eq!(table_counts(&app.db).await, before);

        // A template refused by createMission's rules is refused for every client.
        let mut bad = template(service);
        bad["endDate"] = json!("2030-01-01");
        let data = app
            .ok(&admin, CREATE_MISSIONS, json!({ "input": { "template": bad, "clientIds": ids(&clients[..1]) } }))
            .await;
        let error = &data["createMissions"]["errors"][0];
        assert_eq!(error["code"], "BAD_USER_INPUT");
        assert_eq!(error["field"], "endDate");
        // Repeating a client is refused too.
        let data = app
            .ok(&admin, CREATE_MISSIONS, json!({ "input": { "template": template(service), "clientIds": [gid(Kind::Client, clients[0]), gid(Kind::Client, clients[0])] } }))
            .await;
        assert_eq!(data["createMissions"]["errors"][0]["index"], 1);
        assert_eq!(table_counts(&app.db).await, before);
    }
}

backend_test! {
    async fn a_dry_run_reports_what_would_change_and_changes_nothing(db: TestDb) {
        let app = TestApp::new(db);
        let (firm, admin, service, clients) = firm_with_clients(&app, "dryrun", 3).await;
        let before = table_counts(&app.db).await;
        let data = app
            .ok(&admin, CREATE_MISSIONS, json!({ "input": { "template": template(service), "clientIds": ids(&clients), "dryRun": true } }))
            .await;
        assert_eq!(data["createMissions"]["dryRun"], true);
        assert_eq!(data["createMissions"]["applied"], false);
        assert_eq!(data["createMissions"]["errors"], json!([]));
        let csv = "client,contact_name,contact_email\nNouveau,Ana,ana@nouveau.example.fr\n";
        let data = app
            .ok(&admin, "mutation($csv: String!) { importClients(input: { csv: $csv, dryRun: true }) { applied clientsCreated contactsCreated errors { line } } }", json!({ "csv": csv }))
            .await;
        assert_eq!(data["importClients"]["clientsCreated"], 1);
        assert_eq!(data["importClients"]["contactsCreated"], 1);
        assert_eq!(data["importClients"]["applied"], false);
        assert_eq!(table_counts(&app.db).await, before);

        // Bulk completion and closing: a dry run changes nothing, then all or nothing.
        let mission = firm.monthly_mission(&firm_client(&firm, clients[0]).await, &rappel_service(&firm, service).await).await;
        rappel::ops::missions::sign_mission(firm.env(), &firm.admin(), mission.id).await.expect("signed");
        let data = app.ok(&admin, "{ firm { tasks(first: 50) { nodes { id } } informationRequests(first: 50) { nodes { id } } } }", json!({})).await;
        let tasks: Vec<Value> = data["firm"]["tasks"]["nodes"].as_array().expect("tasks").iter().map(|t| t["id"].clone()).collect();
        let requests: Vec<Value> = data["firm"]["informationRequests"]["nodes"].as_array().expect("requests").iter().map(|r| r["id"].clone()).collect();
        assert!(tasks.len() >= 2 && requests.len() >= 2, "{data}");
        let complete = "mutation($ids: [ID!]!, $dry: Boolean!) { completeTasks(input: { ids: $ids, dryRun: $dry }) { applied ids errors { index code } } }";
        let before = table_counts(&app.db).await;
        let data = app.ok(&admin, complete, json!({ "ids": tasks, "dry": true })).await;
        assert_eq!(data["completeTasks"]["ids"].as_array().expect("ids").len(), tasks.len());
        let mut with_missing = tasks.clone();
        with_missing.push(json!("VGFzazo5OTk5OTk"));
        let data = app.ok(&admin, complete, json!({ "ids": with_missing, "dry": false })).await;
        assert_eq!(data["completeTasks"]["errors"][0]["code"], "NOT_FOUND");
        let data = app.ok(&admin, "{ firm { tasks(status: DONE, first: 50) { nodes { id } } } }", json!({})).await;
        assert_eq!(data["firm"]["tasks"]["nodes"], json!([]));
        assert_eq!(table_counts(&app.db).await, before);
        let data = app.ok(&admin, complete, json!({ "ids": tasks, "dry": false })).await;
        assert_eq!(data["completeTasks"]["applied"], true);
        let data = app.ok(&admin, "{ firm { tasks(status: DONE, first: 50) { nodes { id } } } }", json!({})).await;
        assert_eq!(data["firm"]["tasks"]["nodes"].as_array().expect("done").len(), tasks.len());
        let close = "mutation($ids: [ID!]!) { closeRequests(input: { ids: $ids }) { applied errors { code } } }";
        let data = app.ok(&admin, close, json!({ "ids": requests })).await;
        assert_eq!(data["closeRequests"]["applied"], true, "{data}");
        let data = app.ok(&admin, close, json!({ "ids": requests })).await;
        assert_eq!(data["closeRequests"]["errors"][0]["code"], "BAD_USER_INPUT");
    }
}

async fn firm_client(firm: &FirmFixture, id: i64) -> rappel::db::clients::Client {
    let mut conn = firm.pool.get().await.expect("connection");
    rappel::db::clients::find_client(&mut conn.as_db(), firm.firm.id, id)
        .await
        .expect("client")
}

async fn rappel_service(firm: &FirmFixture, id: i64) -> rappel::db::catalog::Service {
    let mut conn = firm.pool.get().await.expect("connection");
    rappel::db::catalog::find_service(&mut conn.as_db(), firm.firm.id, id)
        .await
        .expect("service")
}

backend_test! {
    async fn a_csv_import_creates_clients_and_contacts_or_reports_each_bad_line_and_changes_nothing(db: TestDb) {
        let app = TestApp::new(db);
        let (_firm, admin, _service, _clients) = firm_with_clients(&app, "import", 1).await;
        let import = "mutation($csv: String!) { importClients(input: { csv: $csv }) { applied clientsCreated contactsCreated linesUnchanged errors { line field message } } }";
        let before = table_counts(&app.db).await;
        let bad = "client,reference,contact_name,contact_email,language\n\
                   Garage Martin,G-1,Luc,luc@garage.example.fr,fr\n\
                   ,G-2,Ana,ana@x.example.fr,fr\n\
                   Pharmacie,P-1,Jo,not-an-email,en\n\
                   Pharmacie,P-1,Zoé,zoe@pharma.example.fr,de\n";
        let data = app.ok(&admin, import, json!({ "csv": bad })).await;
        let result = &data["importClients"];
        assert_eq!(result["applied"], false);
        let errors = result["errors"].as_array().expect("errors");
        let lines: Vec<i64> = errors.iter().map(|e| e["line"].as_i64().expect("line")).collect();
        assert_eq!(lines, [3, 4, 5], "{result}");
        assert_eq!(errors[0]["field"], "client");
        assert_eq!(errors[1]["field"], "contact_email");
        assert_eq!(errors[2]["field"], "language");
        assert_eq!(table_counts(&app.db).await, before);

        let good = "client,reference,contact_name,contact_email,language\n\
                    Garage Martin,G-1,Luc,luc@garage.example.fr,fr\n\
                    Garage Martin,G-1,Léa,lea@garage.example.fr,en\n\
                    Pharmacie,P-1,Zoé,zoe@pharma.example.fr,\n\
                    Client 0,,,,\n";
        let data = app.ok(&admin, import, json!({ "csv": good })).await;
        let result = &data["importClients"];
        assert_eq!(result["applied"], true, "{result}");
        assert_eq!(result["clientsCreated"], 2);
        assert_eq!(result["contactsCreated"], 3);
        assert_eq!(result["linesUnchanged"], 1);
        let data = app.ok(&admin, "{ firm { clients(first: 10) { nodes { name contacts { nodes { email } } } } } }", json!({})).await;
        let names: Vec<&str> = data["firm"]["clients"]["nodes"].as_array().expect("clients").iter().map(|c| c["name"].as_str().expect("name")).collect();
        assert_eq!(names, ["Client 0", "Garage Martin", "Pharmacie"]);
        // Importing the same file again adds nothing.
        let data = app.ok(&admin, import, json!({ "csv": good })).await;
        assert_eq!(data["importClients"]["clientsCreated"], 0);
        assert_eq!(data["importClients"]["contactsCreated"], 0);
        // A member may not import.
        let member = _firm.member("paul").await;
        let refused = rappel::ops::import::import_clients(_firm.env(), &member, good, true).await;
        assert!(matches!(refused, Err(rappel::ops::OpError::Forbidden(_))));
    }
}
