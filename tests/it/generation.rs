//! Generation seen from outside: the firms' own example, catch-up at signing, exactly-once
//! under repeated and concurrent passes (and two real processes on PostgreSQL), ended and
//! cancelled missions, and each firm's local date (DST, other time zones).

use chrono::{DateTime, Datelike, Days, Months, NaiveDate, Utc};
use diesel::QueryableByName;
use diesel_async::RunQueryDsl;
use rappel::generation::{GenerationSettings, run_pass};
use rappel::graphql::Caller;
use rappel::with_conn;
use serde_json::{Value, json};

use crate::backend_test;
use crate::support::app::TestApp;
use crate::support::{Backend, TestDb};

fn date(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("date")
}

fn instant(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("instant")
        .with_timezone(&Utc)
}

/// A firm (in `time_zone`) with a "Rappel TVA" service (one request, one task, `lead_days`), a
/// client with one contact; returns the admin and the ids.
async fn firm_with_service(
    app: &TestApp,
    tag: &str,
    time_zone: &str,
    lead_days: i64,
) -> (Caller, String, String) {
    let service = json!({ "title": "Rappel TVA", "leadDays": lead_days, "items": [
        { "kind": "INFORMATION_REQUEST", "title": "Merci de déposer vos éléments du mois sur le portail du cabinet" },
        { "kind": "TASK", "title": "Préparer la déclaration de TVA" }
    ]});
    app.firm_with_service(tag, time_zone, service).await
}

/// Creates and signs a mission; returns its id.
async fn signed_mission(app: &TestApp, admin: &Caller, input: Value) -> String {
    let data = app
        .ok(
            admin,
            "mutation($input: CreateMissionInput!) { createMission(input: $input) { id } }",
            json!({ "input": input }),
        )
        .await;
    let mission = data["createMission"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    app.ok(
        admin,
        "mutation($id: ID!) { signMission(id: $id) { status } }",
        json!({ "id": mission }),
    )
    .await;
    mission
}

/// (due date, created on, text) of the firm's requests, by due date, every page of them.
async fn requests(app: &TestApp, admin: &Caller) -> Vec<(String, String, String)> {
    let mut all = Vec::new();
    let mut after = serde_json::Value::Null;
    loop {
        let data = app
            .ok(
                admin,
                "query($after: String) { firm { informationRequests(first: 100, after: $after) { nodes { dueDate createdOn text status } pageInfo { hasNextPage endCursor } } } }",
                json!({ "after": after }),
            )
            .await;
        let page = &data["firm"]["informationRequests"];
        all.extend(page["nodes"].as_array().expect("nodes").iter().map(|node| {
            (
                node["dueDate"].as_str().expect("due").to_string(),
                node["createdOn"].as_str().expect("created").to_string(),
                node["text"].as_str().expect("text").to_string(),
            )
        }));
        if page["pageInfo"]["hasNextPage"] != true {
            return all;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
}

async fn task_count(app: &TestApp, admin: &Caller) -> usize {
    let data = app
        .ok(
            admin,
            "{ firm { tasks(first: 1) { totalCount } } }",
            json!({}),
        )
        .await;
    data["firm"]["tasks"]["totalCount"]
        .as_u64()
        .and_then(|count| usize::try_from(count).ok())
        .expect("totalCount")
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

const SETTINGS: fn() -> GenerationSettings = GenerationSettings::default;

/// A service's items as `ServiceInput` items (with their ids, so an update keeps them).
async fn service_items(app: &TestApp, admin: &Caller, service: &str) -> Vec<Value> {
    let data = app
        .ok(
            admin,
            "query($id: ID!) { firm { service(id: $id) { items { id kind title } } } }",
            json!({ "id": service }),
        )
        .await;
    data["firm"]["service"]["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| json!({ "id": item["id"], "kind": item["kind"], "title": item["title"] }))
        .collect()
}

backend_test!(
    async fn the_firms_example_due_on_the_30th_is_created_ten_days_before_each_month(db: TestDb) {
        let app = TestApp::new(db);
        let (admin, client, service) = firm_with_service(&app, "dupont", "Europe/Paris", 10).await;
        signed_mission(&app, &admin, json!({
            "clientId": client, "name": "TVA 2027", "startDate": "2027-01-01", "endDate": "2027-12-31",
            "lines": [{ "serviceId": service, "frequency": "MONTHLY", "firstDueDate": "2027-01-30" }]
        }))
        .await;
        assert!(
            requests(&app, &admin).await.is_empty(),
            "nothing is due to be created before 2027-01-20"
        );

        let pool = &app.db.pool;
        let report = run_pass(
            pool,
            &SETTINGS(),
            Utc::now(),
            Some(date("2027-01-19")),
            None,
        )
        .await
        .expect("pass");
        assert_eq!((report.requests_created, report.tasks_created), (0, 0));
        assert!(requests(&app, &admin).await.is_empty());

        let report = run_pass(
            pool,
            &SETTINGS(),
            Utc::now(),
            Some(date("2027-01-20")),
            None,
        )
        .await
        .expect("pass");
        assert_eq!((report.requests_created, report.tasks_created), (1, 1));
        let text = "Merci de déposer vos éléments du mois sur le portail du cabinet".to_string();
        assert_eq!(
            requests(&app, &admin).await,
            [("2027-01-30".into(), "2027-01-20".into(), text.clone())]
        );
        assert_eq!(task_count(&app, &admin).await, 1);

        run_pass(
            pool,
            &SETTINGS(),
            Utc::now(),
            Some(date("2027-02-17")),
            None,
        )
        .await
        .expect("pass");
        assert_eq!(
            requests(&app, &admin).await.len(),
            1,
            "February's is created on the 18th, not before"
        );
        run_pass(
            pool,
            &SETTINGS(),
            Utc::now(),
            Some(date("2027-02-18")),
            None,
        )
        .await
        .expect("pass");
        run_pass(
            pool,
            &SETTINGS(),
            Utc::now(),
            Some(date("2027-03-20")),
            None,
        )
        .await
        .expect("pass");
        assert_eq!(
            requests(&app, &admin).await,
            [
                ("2027-01-30".into(), "2027-01-20".into(), text.clone()),
                ("2027-02-28".into(), "2027-02-18".into(), text.clone()),
                ("2027-03-30".into(), "2027-03-20".into(), text.clone()),
            ]
        );
        assert_eq!(task_count(&app, &admin).await, 3);
        // Each new request announced itself to the client's one contact, once.
        assert_eq!(count(&app.db, "deliveries").await, 3);
    }
);

/// A first due date whose monthly periods up to today are exactly six, with no lead time:
/// the anchor falls the day after today's day of month, six months back.
fn six_periods_back(today: NaiveDate) -> NaiveDate {
    if today.day() <= 27 {
        let month_start = today.with_day(1).expect("first of month") - Months::new(6);
        month_start + Days::new(u64::from(today.day()))
    } else {
        today.with_day(1).expect("first of month") - Months::new(5)
    }
}

backend_test!(
    async fn signing_creates_the_past_periods_at_once_unless_the_first_due_date_moves_forward(
        db: TestDb,
    ) {
        let app = TestApp::new(db);
        let (admin, client, service) = firm_with_service(&app, "rattrapage", "UTC", 0).await;
        let today = Utc::now().date_naive();
        let first_due = six_periods_back(today);
        let mission = signed_mission(
            &app,
            &admin,
            json!({
                "clientId": client, "name": "Rattrapage", "startDate": first_due.to_string(),
                "lines": [{ "serviceId": service, "frequency": "MONTHLY" }]
            }),
        )
        .await;
        let created = requests(&app, &admin).await;
        assert_eq!(
            created.len(),
            6,
            "six past periods, created at signing: {created:?}"
        );
        assert!(created.iter().all(|(due, _, _)| date(due) <= today));
        assert_eq!(task_count(&app, &admin).await, 6);

        let next_month = today.with_day(1).expect("first") + Months::new(1);
        let data = app
            .ok(&admin, "mutation($input: CreateMissionInput!) { createMission(input: $input) { id } }", json!({ "input": {
                "clientId": client, "name": "Sans passé", "startDate": first_due.to_string(),
                "lines": [{ "serviceId": service, "frequency": "MONTHLY", "firstDueDate": next_month.to_string() }]
            }}))
            .await;
        let later = data["createMission"]["id"]
            .as_str()
            .expect("id")
            .to_string();
        let preview = app
            .ok(&admin, "query($id: ID!, $until: Date!) { firm { schedulePreview(missionId: $id, until: $until) { dueDate inPast } } }",
                json!({ "id": later, "until": (next_month + Months::new(2)).to_string() }))
            .await;
        let preview = preview["firm"]["schedulePreview"]
            .as_array()
            .expect("preview")
            .clone();
        assert!(!preview.is_empty() && preview.iter().all(|o| o["inPast"] == false));
        app.ok(
            &admin,
            "mutation($id: ID!) { signMission(id: $id) { status } }",
            json!({ "id": later }),
        )
        .await;
        assert_eq!(
            requests(&app, &admin).await.len(),
            6,
            "a first due date next month creates nothing from the past"
        );
        let _ = mission;
    }
);

backend_test!(
    async fn repeated_and_concurrent_passes_create_every_occurrence_once(db: TestDb) {
        let app = TestApp::new(db);
        let (admin, client, service) =
            firm_with_service(&app, "idempotent", "Europe/Paris", 10).await;
        for index in 0..5 {
            signed_mission(&app, &admin, json!({
                "clientId": client, "name": format!("Mission {index}"), "startDate": "2027-01-01", "endDate": "2027-12-31",
                "lines": [
                    { "serviceId": service, "frequency": "MONTHLY", "firstDueDate": "2027-01-30" },
                    { "serviceId": service, "frequency": "NONE", "firstDueDate": "2027-03-15", "quantity": 2 }
                ]
            }))
            .await;
        }
        let pool = app.db.pool.clone();
        let as_of = date("2027-06-30");
        // Four passes at once, then one after: 5 missions x (6 monthly + 2 copies) occurrences.
        let passes = (0..4).map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                run_pass(&pool, &SETTINGS(), Utc::now(), Some(as_of), None).await
            })
        });
        let mut created = 0;
        for pass in passes {
            created += pass
                .await
                .expect("joined")
                .expect("pass succeeds, no lock error")
                .requests_created;
        }
        assert_eq!(
            created,
            5 * 8,
            "the concurrent passes together created each request once"
        );
        assert_eq!(count(&app.db, "information_requests").await, 40);
        assert_eq!(count(&app.db, "tasks").await, 40);
        assert_eq!(count(&app.db, "deliveries").await, 40);
        let again = run_pass(&pool, &SETTINGS(), Utc::now(), Some(as_of), None)
            .await
            .expect("pass");
        assert_eq!(
            (
                again.requests_created,
                again.tasks_created,
                again.deliveries_enqueued
            ),
            (0, 0, 0)
        );

        // Without the watermarks every occurrence is attempted again: the keys still hold.
        let mut conn = pool.get().await.expect("connection");
        with_conn!(conn, |c| diesel::sql_query(
            "UPDATE mission_lines SET generated_through = NULL"
        )
        .execute(c)
        .await)
        .expect("reset");
        drop(conn);
        let passes = (0..3).map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                run_pass(&pool, &SETTINGS(), Utc::now(), Some(as_of), None).await
            })
        });
        for pass in passes {
            let report = pass.await.expect("joined").expect("pass");
            assert_eq!(
                (
                    report.requests_created,
                    report.tasks_created,
                    report.deliveries_enqueued
                ),
                (0, 0, 0)
            );
        }
        assert_eq!(count(&app.db, "information_requests").await, 40);
        assert_eq!(count(&app.db, "deliveries").await, 40);
    }
);

backend_test!(
    async fn ended_and_cancelled_missions_generate_nothing_more(db: TestDb) {
        let app = TestApp::new(db);
        let (admin, client, service) = firm_with_service(&app, "fin", "Europe/Paris", 10).await;
        let line =
            json!([{ "serviceId": service, "frequency": "MONTHLY", "firstDueDate": "2027-01-30" }]);
        let ended = signed_mission(&app, &admin, json!({ "clientId": client, "name": "Finie", "startDate": "2027-01-01", "lines": line })).await;
        let cancelled = signed_mission(&app, &admin, json!({ "clientId": client, "name": "Annulée", "startDate": "2027-01-01", "lines": line })).await;
        let pool = &app.db.pool;
        run_pass(
            pool,
            &SETTINGS(),
            Utc::now(),
            Some(date("2027-02-18")),
            None,
        )
        .await
        .expect("pass");
        assert_eq!(
            requests(&app, &admin).await.len(),
            4,
            "two months for each mission"
        );

        let data = app
            .ok(
                &admin,
                "mutation($id: ID!) { endMission(input: { id: $id }) { status endDate } }",
                json!({ "id": ended }),
            )
            .await;
        assert_eq!(data["endMission"]["status"], "ENDED");
        let data = app
            .ok(
                &admin,
                "mutation($id: ID!) { cancelMission(id: $id) { status } }",
                json!({ "id": cancelled }),
            )
            .await;
        assert_eq!(data["cancelMission"]["status"], "CANCELLED");
        let statuses = app
            .ok(&admin, "query($m: ID!) { firm { informationRequests(missionId: $m) { nodes { status } } tasks(missionId: $m) { nodes { status } } } }", json!({ "m": cancelled }))
            .await;
        for list in ["informationRequests", "tasks"] {
            let nodes = statuses["firm"][list]["nodes"].as_array().expect("nodes");
            assert_eq!(nodes.len(), 2);
            assert!(
                nodes.iter().all(|n| n["status"] == "CANCELLED"),
                "cancelling cancels the open {list}"
            );
        }

        let report = run_pass(
            pool,
            &SETTINGS(),
            Utc::now(),
            Some(date("2027-12-31")),
            None,
        )
        .await
        .expect("pass");
        assert_eq!((report.requests_created, report.tasks_created), (0, 0));
        assert_eq!(requests(&app, &admin).await.len(), 4);
    }
);

backend_test!(
    async fn each_firm_generates_on_its_own_local_date_across_daylight_saving_time(db: TestDb) {
        let app = TestApp::new(db);
        let mut firms = Vec::new();
        for (tag, zone) in [
            ("paris", "Europe/Paris"),
            ("auckland", "Pacific/Auckland"),
            ("newyork", "America/New_York"),
        ] {
            let (admin, client, service) = firm_with_service(&app, tag, zone, 10).await;
            // Due 2027-04-07, created 2027-03-28: the night Paris moves to summer time.
            signed_mission(&app, &admin, json!({ "clientId": client, "name": "DST", "startDate": "2027-01-01",
                "lines": [{ "serviceId": service, "frequency": "NONE", "firstDueDate": "2027-04-07" }] })).await;
            firms.push((tag, admin));
        }
        let pool = &app.db.pool;
        async fn created(
            app: &TestApp,
            firms: &[(&'static str, Caller)],
        ) -> Vec<(&'static str, usize)> {
            let mut out = Vec::new();
            for (tag, admin) in firms {
                out.push((*tag, requests(app, admin).await.len()));
            }
            out
        }
        // 2027-03-27 22:59 UTC: 23:59 on the 27th in Paris (winter time), 11:59 on the 28th in
        // Auckland, 18:59 on the 27th in New York.
        run_pass(
            pool,
            &SETTINGS(),
            instant("2027-03-27T22:59:00Z"),
            None,
            None,
        )
        .await
        .expect("pass");
        assert_eq!(
            created(&app, &firms).await,
            [("paris", 0), ("auckland", 1), ("newyork", 0)]
        );
        // One minute later it is 00:00 on the 28th in Paris.
        run_pass(
            pool,
            &SETTINGS(),
            instant("2027-03-27T23:00:00Z"),
            None,
            None,
        )
        .await
        .expect("pass");
        assert_eq!(
            created(&app, &firms).await,
            [("paris", 1), ("auckland", 1), ("newyork", 0)]
        );
        // New York reaches the 28th at 04:00 UTC (it is on summer time since 03-14).
        run_pass(
            pool,
            &SETTINGS(),
            instant("2027-03-28T03:59:00Z"),
            None,
            None,
        )
        .await
        .expect("pass");
        assert_eq!(created(&app, &firms).await[2], ("newyork", 0));
        run_pass(
            pool,
            &SETTINGS(),
            instant("2027-03-28T04:00:00Z"),
            None,
            None,
        )
        .await
        .expect("pass");
        assert_eq!(
            created(&app, &firms).await,
            [("paris", 1), ("auckland", 1), ("newyork", 1)]
        );
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_postgres_generate_every_occurrence_once() {
    if !crate::support::db::postgres_configured(
        "two_processes_on_postgres_generate_every_occurrence_once",
    ) {
        return;
    }
    let db = TestDb::create(Backend::Postgres).await;
    let app = TestApp::new(db);
    let (admin, client, service) = firm_with_service(&app, "deux", "Europe/Paris", 10).await;
    let lines: Vec<Value> = (0..40)
        .map(|i| json!({ "serviceId": service, "frequency": "MONTHLY", "firstDueDate": format!("2027-01-{:02}", 1 + i % 28) }))
        .collect();
    for index in 0..5 {
        let data = app
            .ok(&admin, "mutation($input: CreateMissionInput!) { createMission(input: $input) { id } }", json!({ "input": {
                "clientId": client, "name": format!("M{index}"), "startDate": "2027-01-01", "endDate": "2027-12-31", "lines": lines
            }}))
            .await;
        let id = data["createMission"]["id"]
            .as_str()
            .expect("id")
            .to_string();
        app.ok(
            &admin,
            "mutation($id: ID!) { signMission(id: $id) { status } }",
            json!({ "id": id }),
        )
        .await;
    }
    assert_eq!(count(&app.db, "information_requests").await, 0);
    let spawn = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_rappel"))
            .args(["generate", "--as-of", "2027-12-31"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("RAPPEL_DATABASE_URL", &app.db.url)
            .env("RAPPEL_SCHEDULER_BATCH_SIZE", "7")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("rappel generate starts")
    };
    let (first, second) = (spawn(), spawn());
    let mut total = 0;
    for child in [first, second] {
        let output = child.wait_with_output().expect("rappel generate ends");
        assert!(output.status.success());
        let stdout = String::from_utf8_lossy(&output.stdout);
        let created: usize = stdout
            .split(" request(s) created")
            .next()
            .and_then(|head| head.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .expect("the report names how many requests it created");
        total += created;
    }
    // 5 missions x 40 lines x 12 months, one request and one task each.
    assert_eq!(
        total, 2400,
        "the two processes together created each request once"
    );
    assert_eq!(count(&app.db, "information_requests").await, 2400);
    assert_eq!(count(&app.db, "tasks").await, 2400);
    assert_eq!(
        count(&app.db, "deliveries").await,
        2400,
        "each request's email was enqueued once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_start_prints_working_tokens_and_generate_as_of_creates_januarys_request_once() {
    let folder = tempfile::tempdir().expect("folder");
    let url = folder.path().join("demo.db").to_string_lossy().to_string();
    let server = crate::support::server::ServerProcess::start(&url, &[("RAPPEL_DEMO", "true")]);
    let lines = server.printed_lines();
    let token_after = |marker: &str| {
        lines
            .iter()
            .find(|line| line.contains(marker))
            .and_then(|line| line.split_whitespace().last())
            .expect("the demo prints a token")
            .to_string()
    };
    let staff = token_after("staff token");
    let contact = token_after("token (client view)");
    let data = crate::support::server::post_graphql(
        &server.base_url,
        Some(&staff),
        "{ firm { name services { nodes { title leadDays items { kind title } } } missions { nodes { status } } } }",
        json!({}),
    )
    .await;
    assert_eq!(
        data["data"]["firm"]["services"]["nodes"][0]["title"],
        "Rappel TVA"
    );
    assert_eq!(
        data["data"]["firm"]["missions"]["nodes"][0]["status"],
        "SIGNED"
    );
    let data = crate::support::server::post_graphql(
        &server.base_url,
        Some(&contact),
        "{ client { clientName requests { nodes { id } } } }",
        json!({}),
    )
    .await;
    assert_eq!(data["data"]["client"]["clientName"], "Boulangerie Martin");
    drop(server);

    let generate = |as_of: &str| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_rappel"))
            .args(["generate", "--as-of", as_of])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("RAPPEL_DATABASE_URL", &url)
            .output()
            .expect("rappel generate runs");
        assert!(output.status.success());
        String::from_utf8_lossy(&output.stdout).to_string()
    };
    assert!(generate("2027-01-19").contains(" 0 task(s) and 0 request(s) created"));
    let january = generate("2027-01-20");
    assert!(
        january.contains(" 1 task(s) and 1 request(s) created"),
        "{january}"
    );
    assert!(january.contains("due 2027-01-30, created on 2027-01-20: Merci de déposer vos éléments du mois sur le portail du cabinet"), "{january}");
    assert!(
        generate("2027-01-20").contains(" 0 task(s) and 0 request(s) created"),
        "a second run creates none"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_runs_a_pass_at_start_so_downtime_is_caught_up() {
    let db = TestDb::create(Backend::Sqlite).await;
    let app = TestApp::new(db);
    let (admin, client, service) = firm_with_service(&app, "reprise", "Europe/Paris", 10).await;
    let data = app
        .ok(&admin, "mutation($input: CreateMissionInput!) { createMission(input: $input) { id } }", json!({ "input": {
            "clientId": client, "name": "Signée hors ligne", "startDate": crate::support::app::months_ago_28th(3),
            "lines": [{ "serviceId": service, "frequency": "MONTHLY" }]
        }}))
        .await;
    let mission = crate::support::app::row_id(data["createMission"]["id"].as_str().expect("id"));
    let preview = app
        .ok(&admin, "query($id: ID!) { firm { schedulePreview(missionId: $id, until: \"2100-01-01\") { itemKind inPast } } }", json!({ "id": crate::support::app::gid(crate::support::app::Kind::Mission, mission) }))
        .await;
    let due_now = preview["firm"]["schedulePreview"]
        .as_array()
        .expect("preview")
        .iter()
        .filter(|o| o["inPast"] == true && o["itemKind"] == "INFORMATION_REQUEST")
        .count();
    assert!(due_now >= 3);
    // Signed while no server ran: the status changes, nothing is generated yet.
    let mut conn = app.db.pool.get().await.expect("connection");
    let firm_id = rappel::db::firms::list_firms(&mut conn.as_db())
        .await
        .expect("firms")[0]
        .id;
    rappel::db::missions::transition(
        &mut conn.as_db(),
        firm_id,
        mission,
        &[rappel::domain::MissionStatus::Draft],
        rappel::domain::MissionStatus::Signed,
        Utc::now().naive_utc(),
        None,
    )
    .await
    .expect("signed")
    .expect("was a draft");
    drop(conn);
    assert_eq!(count(&app.db, "information_requests").await, 0);

    let _server = crate::support::server::ServerProcess::start(
        &app.db.url,
        &[("RAPPEL_SCHEDULER_ENABLED", "true")],
    );
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while count(
        &app.db,
        "scheduler_runs WHERE kind = 'GENERATION' AND finished_at IS NOT NULL",
    )
    .await
        == 0
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no pass ran within 30 s of the start"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        count(&app.db, "information_requests").await as usize,
        due_now,
        "the start-up pass caught up"
    );
}

backend_test!(
    async fn a_longer_lead_time_still_creates_the_occurrences_it_moves_into_the_past(db: TestDb) {
        let app = TestApp::new(db);
        let (admin, client, service) = firm_with_service(&app, "delai", "Europe/Paris", 10).await;
        signed_mission(
            &app,
            &admin,
            json!({ "clientId": client, "name": "TVA", "startDate": "2027-01-01", "endDate": "2027-12-31",
                "lines": [{ "serviceId": service, "frequency": "MONTHLY", "firstDueDate": "2027-01-30" }] }),
        )
        .await;
        let pool = &app.db.pool;
        run_pass(
            pool,
            &SETTINGS(),
            Utc::now(),
            Some(date("2027-03-15")),
            None,
        )
        .await
        .expect("pass");
        assert_eq!(
            requests(&app, &admin).await.len(),
            2,
            "January and February; March is due on the 20th"
        );
        // Twenty days of lead: March's request should have been created on 03-10.
        let items = service_items(&app, &admin, &service).await;
        app.ok(
            &admin,
            "mutation($input: UpdateServiceInput!) { updateService(input: $input) { leadDays } }",
            json!({ "input": { "id": service, "title": "Rappel TVA", "leadDays": 20, "items": items } }),
        )
        .await;
        run_pass(
            pool,
            &SETTINGS(),
            Utc::now(),
            Some(date("2027-03-15")),
            None,
        )
        .await
        .expect("pass");
        let created = requests(&app, &admin).await;
        assert_eq!(created.len(), 3, "{created:?}");
        assert_eq!(created[2].0, "2027-03-30");
    }
);

backend_test!(
    async fn extending_a_signed_missions_end_generates_the_new_periods_only(db: TestDb) {
        let app = TestApp::new(db);
        let (admin, client, service) =
            firm_with_service(&app, "prolonge", "Europe/Paris", 10).await;
        let mission = signed_mission(
            &app,
            &admin,
            json!({ "clientId": client, "name": "TVA", "startDate": "2027-01-01", "endDate": "2027-02-28",
                "lines": [{ "serviceId": service, "frequency": "MONTHLY", "firstDueDate": "2027-01-30" }] }),
        )
        .await;
        let pool = &app.db.pool;
        run_pass(
            pool,
            &SETTINGS(),
            Utc::now(),
            Some(date("2027-06-30")),
            None,
        )
        .await
        .expect("pass");
        assert_eq!(
            requests(&app, &admin).await.len(),
            2,
            "January and February, then the end"
        );
        // The service gains a second request; then the mission is extended to the year's end.
        let mut items = service_items(&app, &admin, &service).await;
        items.push(json!({ "kind": "INFORMATION_REQUEST", "title": "Merci de joindre les relevés bancaires" }));
        app.ok(
            &admin,
            "mutation($input: UpdateServiceInput!) { updateService(input: $input) { id } }",
            json!({ "input": { "id": service, "title": "Rappel TVA", "leadDays": 10, "items": items } }),
        )
        .await;
        app.ok(
            &admin,
            "mutation($id: ID!) { updateMission(input: { id: $id, endDate: \"2027-12-31\" }) { endDate } }",
            json!({ "id": mission }),
        )
        .await;
        run_pass(
            pool,
            &SETTINGS(),
            Utc::now(),
            Some(date("2027-06-30")),
            None,
        )
        .await
        .expect("pass");
        let created = requests(&app, &admin).await;
        // March to June, two requests each; January and February keep their one.
        assert_eq!(created.len(), 2 + 4 * 2, "{created:?}");
        let old_periods = created
            .iter()
            .filter(|(due, _, _)| due.as_str() <= "2027-02-28")
            .count();
        assert_eq!(
            old_periods, 2,
            "no back-fill of the new item into the old periods"
        );
    }
);
