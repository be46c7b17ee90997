//! Issue 9 (hardening) on schedules and quantities, seen from outside: bounded quantities,
//! items, lines and occurrences per preview or signing (each refusal naming its field), other
//! firms' writes answering while a large signing runs, extending a signed mission without
//! losing a period, and the `Date` scalar (and `--as-of`) accepting exactly YYYY-MM-DD.

use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};
use diesel::QueryableByName;
use diesel_async::RunQueryDsl;
use rappel::config::{AuthConfig, GraphqlConfig};
use rappel::domain::schedule::ScheduleLimits;
use rappel::events::EventBus;
use rappel::generation::{GenerationSettings, run_pass};
use rappel::graphql::{Caller, SchemaData, build_schema};
use rappel::with_conn;
use serde_json::{Value, json};

use crate::backend_test;
use crate::support::TestDb;
use crate::support::app::{TestApp, error_codes};

/// A test app whose schema uses `settings` instead of the defaults.
fn app_with(db: TestDb, settings: GenerationSettings) -> TestApp {
    let events = EventBus::new();
    let schema = build_schema(
        Some(SchemaData {
            pool: db.pool.clone(),
            events: events.clone(),
            auth: AuthConfig::default(),
            generation: settings,
        }),
        &GraphqlConfig::default(),
    );
    TestApp { db, schema, events }
}

/// A firm with a service of `items` information requests (lead 10 days) and a client with one
/// contact; returns the admin, the client and the service.
async fn firm(app: &TestApp, tag: &str, items: usize) -> (Caller, String, String) {
    let items: Vec<Value> = (0..items)
        .map(|index| json!({ "kind": "INFORMATION_REQUEST", "title": format!("Pièce {index}") }))
        .collect();
    let service = json!({ "title": "Pièces", "leadDays": 10, "items": items });
    app.firm_with_service(tag, "Europe/Paris", service).await
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

async fn count(db: &TestDb, table: &str) -> i64 {
    let mut conn = db.pool.get().await.expect("connection");
    let sql = format!("SELECT count(*) AS n FROM {table}");
    let rows: Vec<Count> =
        with_conn!(conn, |c| diesel::sql_query(&sql).load(c).await).expect("count");
    rows[0].n
}

/// The single error of a response: its code, its field and its message.
fn refusal(response: &Value) -> (String, String, String) {
    assert_eq!(
        response["errors"].as_array().map(Vec::len),
        Some(1),
        "one error expected: {response}"
    );
    let error = &response["errors"][0];
    (
        error["extensions"]["code"]
            .as_str()
            .unwrap_or("<none>")
            .to_string(),
        error["extensions"]["field"]
            .as_str()
            .unwrap_or("<none>")
            .to_string(),
        error["message"].as_str().unwrap_or("").to_string(),
    )
}

const CREATE_MISSION: &str =
    "mutation($input: CreateMissionInput!) { createMission(input: $input) { id } }";
const PREVIEW: &str = "query($m: CreateMissionInput!, $until: Date!) { firm { schedulePreview(mission: $m, until: $until) { dueDate copyNumber } } }";

backend_test!(
    async fn quantities_items_and_lines_past_their_bounds_are_refused_naming_the_field(db: TestDb) {
        let app = TestApp::new(db);
        let (admin, client, service) = firm(&app, "a", 1).await;
        let limits = ScheduleLimits::default();
        let one_off = |quantity: u32| {
            json!({ "clientId": client, "name": "Inventaire", "startDate": "2027-01-01",
                "lines": [{ "serviceId": service, "frequency": "NONE", "quantity": quantity }] })
        };

        // The finding's quantity, in a preview and in a mission.
        let response = app
            .exec(
                &admin,
                PREVIEW,
                json!({ "m": one_off(1_000_000), "until": "2027-12-31" }),
            )
            .await;
        let (code, field, message) = refusal(&response);
        assert_eq!(
            (code.as_str(), field.as_str()),
            ("BAD_USER_INPUT", "lines.0.quantity")
        );
        assert!(
            message.contains(&format!("at most {}", limits.max_quantity)),
            "{message}"
        );
        let response = app
            .exec(&admin, CREATE_MISSION, json!({ "input": one_off(300_000) }))
            .await;
        let (code, field, _) = refusal(&response);
        assert_eq!(
            (code.as_str(), field.as_str()),
            ("BAD_USER_INPUT", "lines.0.quantity")
        );
        let response = app
            .exec(
                &admin,
                CREATE_MISSION,
                json!({ "input": one_off(limits.max_quantity + 1) }),
            )
            .await;
        assert_eq!(refusal(&response).1, "lines.0.quantity");
        assert_eq!(count(&app.db, "missions").await, 0, "nothing was created");

        // At the bound it is accepted, and the preview lists every copy.
        app.ok(
            &admin,
            CREATE_MISSION,
            json!({ "input": one_off(limits.max_quantity) }),
        )
        .await;
        let data = app
            .ok(
                &admin,
                PREVIEW,
                json!({ "m": one_off(limits.max_quantity), "until": "2027-12-31" }),
            )
            .await;
        assert_eq!(
            data["firm"]["schedulePreview"].as_array().map(Vec::len),
            Some(limits.max_quantity as usize)
        );

        // Lines per mission.
        let line = json!({ "serviceId": service, "frequency": "MONTHLY" });
        let too_many_lines = vec![line.clone(); limits.max_mission_lines + 1];
        let response = app
            .exec(
                &admin,
                CREATE_MISSION,
                json!({ "input": { "clientId": client, "name": "Trop", "startDate": "2027-01-01",
                    "lines": too_many_lines } }),
            )
            .await;
        let (code, field, message) = refusal(&response);
        assert_eq!((code.as_str(), field.as_str()), ("BAD_USER_INPUT", "lines"));
        assert!(
            message.contains(&format!("at most {}", limits.max_mission_lines)),
            "{message}"
        );
        assert_eq!(count(&app.db, "missions").await, 1);

        // Items per service (the finding's 10,000, and one past the bound).
        for items in [10_000, limits.max_service_items + 1] {
            let items: Vec<Value> = (0..items)
                .map(|index| json!({ "kind": "TASK", "title": format!("Tâche {index}") }))
                .collect();
            let response = app
                .exec(
                    &admin,
                    "mutation($input: CreateServiceInput!) { createService(input: $input) { id } }",
                    json!({ "input": { "title": "Énorme", "leadDays": 0, "items": items } }),
                )
                .await;
            let (code, field, _) = refusal(&response);
            assert_eq!((code.as_str(), field.as_str()), ("BAD_USER_INPUT", "items"));
        }
        assert_eq!(count(&app.db, "services").await, 1, "nothing was created");
    }
);

backend_test!(
    async fn a_preview_past_the_occurrence_bound_is_refused_on_until(db: TestDb) {
        let app = TestApp::new(db);
        let (admin, client, service) = firm(&app, "a", 100).await;
        let weekly = json!({ "clientId": client, "name": "Hebdo", "startDate": "2027-01-04",
            "lines": [{ "serviceId": service, "frequency": "WEEKLY" }] });
        // 100 items a week: 48 weeks fit (4,800), ten years do not.
        let data = app
            .ok(
                &admin,
                PREVIEW,
                json!({ "m": weekly, "until": "2027-11-29" }),
            )
            .await;
        assert_eq!(
            data["firm"]["schedulePreview"].as_array().map(Vec::len),
            Some(4_800)
        );
        let response = app
            .exec(
                &admin,
                PREVIEW,
                json!({ "m": weekly, "until": "2037-12-31" }),
            )
            .await;
        let (code, field, message) = refusal(&response);
        assert_eq!((code.as_str(), field.as_str()), ("BAD_USER_INPUT", "until"));
        assert!(message.contains("5000"), "{message}");
    }
);

backend_test!(
    async fn signing_past_the_occurrence_bound_is_refused_and_creates_nothing(db: TestDb) {
        let app = TestApp::new(db);
        let (admin, client, service) = firm(&app, "a", 1).await;
        // Eleven one-off lines of 500 copies, all due in the past: 5,500 at once.
        let line = json!({ "serviceId": service, "frequency": "NONE", "quantity": 500 });
        let data = app
            .ok(
                &admin,
                CREATE_MISSION,
                json!({ "input": { "clientId": client, "name": "Rattrapage", "startDate": "2020-01-01",
                    "lines": vec![line; 11] } }),
            )
            .await;
        let mission = data["createMission"]["id"]
            .as_str()
            .expect("id")
            .to_string();
        let response = app
            .exec(
                &admin,
                "mutation($id: ID!) { signMission(id: $id) { status } }",
                json!({ "id": mission }),
            )
            .await;
        let (code, field, message) = refusal(&response);
        assert_eq!((code.as_str(), field.as_str()), ("BAD_USER_INPUT", "id"));
        assert!(
            message.contains("5500") && message.contains("5000"),
            "{message}"
        );
        let data = app
            .ok(
                &admin,
                "query($id: ID!) { firm { mission(id: $id) { status } } }",
                json!({ "id": mission }),
            )
            .await;
        assert_eq!(data["firm"]["mission"]["status"], "DRAFT");
        assert_eq!(count(&app.db, "information_requests").await, 0);
        assert_eq!(count(&app.db, "deliveries").await, 0);
    }
);

backend_test!(
    async fn signing_at_the_cap_leaves_other_firms_writes_answering(db: TestDb) {
        // Eight one-off lines of 1,000 copies: 8,000 requests and 8,000 emails at once, the
        // configured cap. Another firm writes all along.
        let settings = GenerationSettings {
            limits: ScheduleLimits {
                max_quantity: 1_000,
                max_occurrences: 8_000,
                ..ScheduleLimits::default()
            },
            ..GenerationSettings::default()
        };
        let app = std::sync::Arc::new(app_with(db, settings));
        let (admin_a, client_a, service_a) = firm(&app, "a", 1).await;
        let (admin_b, _, _) = firm(&app, "b", 1).await;
        let line = json!({ "serviceId": service_a, "frequency": "NONE", "quantity": 1_000 });
        let data = app
            .ok(
                &admin_a,
                CREATE_MISSION,
                json!({ "input": { "clientId": client_a, "name": "Gros", "startDate": "2020-01-01",
                    "lines": vec![line; 8] } }),
            )
            .await;
        let mission = data["createMission"]["id"]
            .as_str()
            .expect("id")
            .to_string();

        let signing = {
            let app = app.clone();
            tokio::spawn(async move {
                app.exec(
                    &admin_a,
                    "mutation($id: ID!) { signMission(id: $id) { status } }",
                    json!({ "id": mission }),
                )
                .await
            })
        };
        let mut slowest = Duration::ZERO;
        let mut writes = 0;
        while !signing.is_finished() && writes < 500 {
            let started = Instant::now();
            let response = app
                .exec(
                    &admin_b,
                    "mutation($n: String!) { createClient(input: { name: $n }) { id } }",
                    json!({ "n": format!("Client {writes}") }),
                )
                .await;
            let took = started.elapsed();
            assert!(
                error_codes(&response).is_empty(),
                "another firm's write failed during the signing: {response}"
            );
            assert!(
                took < Duration::from_secs(2),
                "another firm's write waited {took:?} during the signing"
            );
            slowest = slowest.max(took);
            writes += 1;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let response = signing.await.expect("signing task");
        assert!(error_codes(&response).is_empty(), "{response}");
        assert_eq!(response["data"]["signMission"]["status"], "SIGNED");
        assert!(
            writes >= 2,
            "the other firm wrote {writes} times during the signing"
        );
        eprintln!("{writes} writes of another firm during the signing, slowest {slowest:?}");
        assert_eq!(count(&app.db, "information_requests").await, 8_000);
        assert_eq!(count(&app.db, "deliveries").await, 8_000);
    }
);

fn instant(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("instant")
        .with_timezone(&Utc)
}

fn date(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("date")
}

backend_test!(
    async fn extending_a_signed_mission_creates_the_period_moved_back_before_the_old_end(
        db: TestDb,
    ) {
        let app = TestApp::new(db);
        let (admin, client, service) = firm(&app, "a", 1).await;
        let data = app
            .ok(
                &admin,
                CREATE_MISSION,
                json!({ "input": { "clientId": client, "name": "TVA", "startDate": "2027-01-01",
                    "endDate": "2027-12-31",
                    "lines": [{ "serviceId": service, "frequency": "MONTHLY",
                        "firstDueDate": "2027-02-01", "workingDayAdjustment": "PREVIOUS" }] } }),
            )
            .await;
        let mission = data["createMission"]["id"]
            .as_str()
            .expect("id")
            .to_string();
        app.ok(
            &admin,
            "mutation($id: ID!) { signMission(id: $id) { status } }",
            json!({ "id": mission }),
        )
        .await;
        let settings = GenerationSettings::default();
        run_pass(
            &app.db.pool,
            &settings,
            instant("2027-12-28T10:00:00Z"),
            Some(date("2027-12-28")),
            None,
        )
        .await
        .expect("pass");
        app.ok(
            &admin,
            "mutation($id: ID!) { updateMission(input: { id: $id, endDate: \"2028-12-31\" }) { id } }",
            json!({ "id": mission }),
        )
        .await;
        run_pass(
            &app.db.pool,
            &settings,
            instant("2028-02-29T10:00:00Z"),
            Some(date("2028-02-29")),
            None,
        )
        .await
        .expect("pass");

        let data = app
            .ok(
                &admin,
                "{ firm { informationRequests(first: 100) { nodes { dueDate createdOn } } } }",
                json!({}),
            )
            .await;
        let mut got: Vec<(String, String)> = data["firm"]["informationRequests"]["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .map(|node| {
                (
                    node["dueDate"].as_str().expect("due").to_string(),
                    node["createdOn"].as_str().expect("created").to_string(),
                )
            })
            .collect();
        got.sort();
        assert!(
            got.contains(&("2027-12-31".to_string(), "2027-12-21".to_string())),
            "the 2028-01-01 period, moved back to 2027-12-31, is missing: {got:?}"
        );
        // Exactly what the preview of the extended mission shows up to that day.
        let data = app
            .ok(
                &admin,
                "query($id: ID) { firm { schedulePreview(missionId: $id, until: \"2028-03-10\") { dueDate creationDate } } }",
                json!({ "id": mission }),
            )
            .await;
        let mut expected: Vec<(String, String)> = data["firm"]["schedulePreview"]
            .as_array()
            .expect("preview")
            .iter()
            .filter(|node| node["creationDate"].as_str().expect("created") <= "2028-02-29")
            .map(|node| {
                (
                    node["dueDate"].as_str().expect("due").to_string(),
                    node["creationDate"].as_str().expect("created").to_string(),
                )
            })
            .collect();
        expected.sort();
        assert_eq!(got, expected);
        assert_eq!(got.len(), 14, "due February 2027 to March 2028: {got:?}");
    }
);

backend_test!(
    async fn dates_other_than_yyyy_mm_dd_in_1900_to_9999_are_refused(db: TestDb) {
        let url = db.url.clone();
        let app = TestApp::new(db);
        let (admin, client, service) = firm(&app, "a", 1).await;
        for bad in [
            "+10000-01-01",
            "-0001-01-01",
            "2026-1-1",
            "1899-12-31",
            "2027-02-30",
        ] {
            let response = app
                .exec(
                    &admin,
                    CREATE_MISSION,
                    json!({ "input": { "clientId": client, "name": "Dates", "startDate": bad,
                        "lines": [{ "serviceId": service, "frequency": "MONTHLY" }] } }),
                )
                .await;
            assert_eq!(
                error_codes(&response),
                ["BAD_USER_INPUT"],
                "{bad}: {response}"
            );
            let message = response["errors"][0]["message"].as_str().unwrap_or("");
            assert!(
                message.contains("YYYY-MM-DD")
                    || message.contains("1900")
                    || message.contains("calendar"),
                "{bad}: {message}"
            );
            let response = app
                .exec(
                    &admin,
                    "query($d: Date!) { firm { tasks(dueFrom: $d) { nodes { id } } } }",
                    json!({ "d": bad }),
                )
                .await;
            assert_eq!(
                error_codes(&response),
                ["BAD_USER_INPUT"],
                "{bad}: {response}"
            );
        }
        assert_eq!(count(&app.db, "missions").await, 0, "nothing was created");
        app.ok(
            &admin,
            CREATE_MISSION,
            json!({ "input": { "clientId": client, "name": "Dates", "startDate": "9999-01-01",
                "lines": [{ "serviceId": service, "frequency": "MONTHLY" }] } }),
        )
        .await;

        // The command line's --as-of follows the same rule.
        let generate = |as_of: &str| {
            std::process::Command::new(env!("CARGO_BIN_EXE_rappel"))
                .args(["generate".to_string(), format!("--as-of={as_of}")])
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .env("RAPPEL_DATABASE_URL", &url)
                .output()
                .expect("rappel generate runs")
        };
        for bad in ["+10000-01-01", "-0001-01-01", "2026-1-1"] {
            let output = generate(bad);
            assert!(!output.status.success(), "--as-of {bad} was accepted");
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(
                stderr.contains("YYYY-MM-DD") || stderr.contains("1900"),
                "{stderr}"
            );
        }
        let output = generate("2027-01-31");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
);

backend_test!(
    async fn extending_past_the_occurrence_bound_is_refused_on_the_end_date(db: TestDb) {
        let app = TestApp::new(db);
        let (admin, client, service) = firm(&app, "a", 90).await;
        // 2020 weekly with 90 items: 4,680 at signing, within the bound.
        let data = app
            .ok(
                &admin,
                CREATE_MISSION,
                json!({ "input": { "clientId": client, "name": "Hebdo", "startDate": "2020-01-01",
                    "endDate": "2020-12-31",
                    "lines": [{ "serviceId": service, "frequency": "WEEKLY", "firstDueDate": "2020-01-06" }] } }),
            )
            .await;
        let mission = data["createMission"]["id"]
            .as_str()
            .expect("id")
            .to_string();
        app.ok(
            &admin,
            "mutation($id: ID!) { signMission(id: $id) { status } }",
            json!({ "id": mission }),
        )
        .await;
        assert_eq!(count(&app.db, "information_requests").await, 4_680);
        // Six more years of catch-up at once is not.
        let response = app
            .exec(
                &admin,
                "mutation($id: ID!) { updateMission(input: { id: $id, endDate: \"2099-12-31\" }) { id } }",
                json!({ "id": mission }),
            )
            .await;
        let (code, field, message) = refusal(&response);
        assert_eq!(
            (code.as_str(), field.as_str()),
            ("BAD_USER_INPUT", "endDate")
        );
        assert!(message.contains("5000"), "{message}");
        assert_eq!(count(&app.db, "information_requests").await, 4_680);
        let data = app
            .ok(
                &admin,
                "query($id: ID!) { firm { mission(id: $id) { endDate } } }",
                json!({ "id": mission }),
            )
            .await;
        assert_eq!(data["firm"]["mission"]["endDate"], "2020-12-31");
    }
);

backend_test!(
    async fn adding_a_line_past_the_occurrence_bound_is_refused_on_its_first_due_date(db: TestDb) {
        let app = TestApp::new(db);
        let (admin, client, service) = firm(&app, "a", 1).await;
        let items: Vec<Value> = (0..100)
            .map(|index| json!({ "kind": "TASK", "title": format!("Tâche {index}") }))
            .collect();
        let data = app
            .ok(
                &admin,
                "mutation($input: CreateServiceInput!) { createService(input: $input) { id } }",
                json!({ "input": { "title": "Long délai", "leadDays": 366, "items": items } }),
            )
            .await;
        let heavy = data["createService"]["id"]
            .as_str()
            .expect("id")
            .to_string();
        let data = app
            .ok(
                &admin,
                CREATE_MISSION,
                json!({ "input": { "clientId": client, "name": "Suivi", "startDate": "2020-01-01",
                    "lines": [{ "serviceId": service, "frequency": "ANNUAL" }] } }),
            )
            .await;
        let mission = data["createMission"]["id"]
            .as_str()
            .expect("id")
            .to_string();
        app.ok(
            &admin,
            "mutation($id: ID!) { signMission(id: $id) { status } }",
            json!({ "id": mission }),
        )
        .await;
        let before = count(&app.db, "tasks").await;
        // Weekly from tomorrow, created 366 days ahead: 53 weeks x 100 tasks at once.
        let tomorrow = (Utc::now().date_naive() + chrono::Days::new(2)).to_string();
        let response = app
            .exec(
                &admin,
                "mutation($input: AddMissionLineInput!) { addMissionLine(input: $input) { id } }",
                json!({ "input": { "missionId": mission, "serviceId": heavy, "frequency": "WEEKLY", "firstDueDate": tomorrow } }),
            )
            .await;
        let (code, field, message) = refusal(&response);
        assert_eq!(
            (code.as_str(), field.as_str()),
            ("BAD_USER_INPUT", "lines.1.firstDueDate")
        );
        assert!(message.contains("5000"), "{message}");
        assert_eq!(count(&app.db, "tasks").await, before);
        assert_eq!(count(&app.db, "mission_lines").await, 1);
    }
);
