//! The firm's day through GraphQL, on both backends: `today`, the list filters (overdue,
//! created today, due before/after, service, assignee `me`, search) with their `totalCount`,
//! and the `workload` counts, each checked against a count made here from the rows
//! themselves; and the period placeholders of request texts, in French and English.

use chrono::{Datelike, Duration, NaiveDate, Utc};
use rappel::db::firms;
use rappel::db::work::{DuePage, InformationRequest, Task, WorkFilter, list_requests, list_tasks};
use rappel::domain::{RequestStatus, TaskStatus};
use rappel::generation::firm_today;
use serde_json::{Value, json};

use crate::backend_test;
use crate::support::app::{Kind, PASSWORD, TestApp, World, error_codes, gid, row_id};

/// Every task and request of a firm, read from the database without any of the filters.
async fn rows(app: &TestApp, firm_id: i64) -> (Vec<Task>, Vec<InformationRequest>) {
    let mut conn = app.db.pool.get().await.expect("connection");
    let all = WorkFilter::default();
    let tasks = list_tasks(
        &mut conn.as_db(),
        firm_id,
        None,
        &all,
        &DuePage::first(100_000),
    )
    .await
    .expect("tasks");
    let requests = list_requests(
        &mut conn.as_db(),
        firm_id,
        None,
        &all,
        &DuePage::first(100_000),
    )
    .await
    .expect("requests");
    (tasks, requests)
}

fn count<T>(rows: &[T], keep: impl Fn(&T) -> bool) -> i64 {
    rows.iter().filter(|row| keep(row)).count() as i64
}

/// The ids of a connection's nodes, sorted.
fn ids(connection: &Value) -> Vec<i64> {
    let mut ids: Vec<i64> = connection["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|node| row_id(node["id"].as_str().expect("id")))
        .collect();
    ids.sort_unstable();
    ids
}

fn ids_of<T>(rows: &[T], id: impl Fn(&T) -> i64, keep: impl Fn(&T) -> bool) -> Vec<i64> {
    let mut ids: Vec<i64> = rows.iter().filter(|row| keep(row)).map(id).collect();
    ids.sort_unstable();
    ids
}

backend_test! {
    async fn today_overdue_filters_and_workload_agree_with_the_rows(db: TestDb) {
        let app = TestApp::new(db);
        let world = World::build(&app).await;
        let admin = &world.admin_a;
        let data = app.ok(admin, "{ firm { id today } }", json!({})).await;
        let firm_id = row_id(data["firm"]["id"].as_str().expect("id"));
        let firm = {
            let mut conn = app.db.pool.get().await.expect("connection");
            firms::find_firm(&mut conn.as_db(), firm_id).await.expect("firm")
        };
        let today = firm_today(&firm, Utc::now());
        assert_eq!(data["firm"]["today"], today.to_string());

        // Some work moves: a task assigned to the member and one done, a request answered.
        app.ok(admin, "mutation($id: ID!, $to: ID) { assignTask(input: { id: $id, assigneeId: $to }) { id } }",
            json!({ "id": world.firm_a.task, "to": world.member_a_id })).await;
        app.ok(&world.contact_a, "mutation($id: ID!) { answerRequest(input: { id: $id, message: \"Ci-joint\" }) { status } }",
            json!({ "id": world.firm_a.request })).await;
        let (tasks, requests) = rows(&app, firm_id).await;
        let other_task = tasks.iter().find(|t| gid(Kind::Task, t.id) != world.firm_a.task).expect("another task");
        app.ok(admin, "mutation($id: ID!) { completeTask(id: $id) { status } }", json!({ "id": gid(Kind::Task, other_task.id) })).await;
        let (tasks, requests) = {
            let _ = requests;
            rows(&app, firm_id).await
        };
        assert!(count(&tasks, |t| t.status == TaskStatus::Open && t.due_date < today) > 0, "the fixture has overdue work");

        let query = r#"query($task: TaskFilter, $request: RequestFilter) { firm {
            tasks(filter: $task, first: 100) { totalCount nodes { id } }
            informationRequests(filter: $request, first: 100) { totalCount nodes { id } }
        } }"#;
        let week_end = today + Duration::days(i64::from(6 - today.weekday().num_days_from_monday()));
        type TaskRule<'a> = Box<dyn Fn(&Task) -> bool + 'a>;
        type RequestRule<'a> = Box<dyn Fn(&InformationRequest) -> bool + 'a>;
        let garage = world.firm_a.other_client.clone();
        let garage_too = garage.clone();
        let cases: Vec<(Value, TaskRule, RequestRule)> = vec![
            (json!({ "overdue": true }),
                Box::new(move |t: &Task| t.status == TaskStatus::Open && t.due_date < today),
                Box::new(move |r: &InformationRequest| r.status == RequestStatus::Open && r.due_date < today)),
            (json!({ "createdToday": true }),
                Box::new(move |t: &Task| t.created_on == today),
                Box::new(move |r: &InformationRequest| r.created_on == today)),
            (json!({ "dueBefore": today.to_string() }),
                Box::new(move |t: &Task| t.due_date < today),
                Box::new(move |r: &InformationRequest| r.due_date < today)),
            (json!({ "dueAfter": today.to_string() }),
                Box::new(move |t: &Task| t.due_date > today),
                Box::new(move |r: &InformationRequest| r.due_date > today)),
            (json!({ "serviceId": world.firm_a.service }),
                Box::new(|_: &Task| true),
                Box::new(|_: &InformationRequest| true)),
            (json!({ "search": "GARAGE" }),
                Box::new(move |t: &Task| gid(Kind::Client, t.client_id) == garage),
                Box::new(move |r: &InformationRequest| gid(Kind::Client, r.client_id) == garage_too)),
            (json!({ "search": "déclaration" }),
                Box::new(|_: &Task| true),
                Box::new(|_: &InformationRequest| false)),
            (json!({ "search": "100%" }),
                Box::new(|_: &Task| false),
                Box::new(|_: &InformationRequest| false)),
        ];
        for (filter, task_rule, request_rule) in &cases {
            let data = app.ok(admin, query, json!({ "task": filter, "request": filter })).await;
            let listed = &data["firm"]["tasks"];
            let expected = ids_of(&tasks, |t| t.id, task_rule);
            assert_eq!(ids(listed), expected, "tasks {filter}");
            assert_eq!(listed["totalCount"], expected.len(), "tasks {filter}");
            let listed = &data["firm"]["informationRequests"];
            let expected = ids_of(&requests, |r| r.id, request_rule);
            assert_eq!(ids(listed), expected, "requests {filter}");
            assert_eq!(listed["totalCount"], expected.len(), "requests {filter}");
        }
        // Filters combine with the list's own arguments.
        let data = app.ok(admin, r#"query($c: ID!) { firm { tasks(clientId: $c, filter: { overdue: true }) { totalCount } } }"#,
            json!({ "c": world.firm_a.client })).await;
        assert_eq!(data["firm"]["tasks"]["totalCount"],
            count(&tasks, |t| gid(Kind::Client, t.client_id) == world.firm_a.client && t.status == TaskStatus::Open && t.due_date < today));

        // `me` is the signed-in member.
        let data = app.ok(&world.member_a, r#"{ firm { tasks(filter: { assignee: "me" }) { totalCount nodes { id } } } }"#, json!({})).await;
        assert_eq!(data["firm"]["tasks"]["nodes"], json!([{ "id": world.firm_a.task }]));
        let data = app.ok(admin, r#"{ firm { tasks(filter: { assignee: "me" }) { totalCount } } }"#, json!({})).await;
        assert_eq!(data["firm"]["tasks"]["totalCount"], 0);

        // The workload, counted in the database, agrees with the rows.
        let data = app.ok(admin, r#"{ firm { workload {
            today openTasks overdueTasks tasksDueThisWeek tasksCreatedToday
            openRequests overdueRequests answeredToReview requestsDueThisWeek requestsCreatedToday dueThisWeek
            byAssignee { assignee { id } openTasks overdueTasks dueThisWeek }
        } } }"#, json!({})).await;
        let workload = &data["firm"]["workload"];
        let open_task = |t: &Task| t.status == TaskStatus::Open;
        let open_request = |r: &InformationRequest| r.status == RequestStatus::Open;
        let this_week = |due: NaiveDate| due >= today && due <= week_end;
        assert_eq!(workload["today"], today.to_string());
        assert_eq!(workload["openTasks"], count(&tasks, open_task));
        assert_eq!(workload["overdueTasks"], count(&tasks, |t| open_task(t) && t.due_date < today));
        assert_eq!(workload["tasksDueThisWeek"], count(&tasks, |t| open_task(t) && this_week(t.due_date)));
        assert_eq!(workload["tasksCreatedToday"], count(&tasks, |t| t.created_on == today));
        assert_eq!(workload["openRequests"], count(&requests, open_request));
        assert_eq!(workload["overdueRequests"], count(&requests, |r| open_request(r) && r.due_date < today));
        assert_eq!(workload["answeredToReview"], count(&requests, |r| r.status == RequestStatus::Answered));
        assert_eq!(workload["answeredToReview"], 1);
        assert_eq!(workload["requestsDueThisWeek"], count(&requests, |r| open_request(r) && this_week(r.due_date)));
        assert_eq!(workload["requestsCreatedToday"], count(&requests, |r| r.created_on == today));
        assert_eq!(workload["dueThisWeek"],
            count(&tasks, |t| open_task(t) && this_week(t.due_date)) + count(&requests, |r| open_request(r) && this_week(r.due_date)));
        let by_assignee = workload["byAssignee"].as_array().expect("rows");
        let member_row = by_assignee.iter().find(|row| row["assignee"]["id"] == world.member_a_id.as_str()).expect("the member's row");
        assert_eq!(member_row["openTasks"], 1);
        let unassigned = by_assignee.iter().find(|row| row["assignee"].is_null()).expect("the unassigned row");
        assert_eq!(unassigned["openTasks"], count(&tasks, |t| open_task(t) && t.assignee_id.is_none()));

        // Bad filters are refused, naming the field.
        let response = app.exec(admin, r#"{ firm { tasks(assigneeId: "1", filter: { assignee: "me" }) { totalCount } } }"#, json!({})).await;
        assert_eq!(error_codes(&response), vec!["BAD_USER_INPUT"], "{response}");
        let long = "x".repeat(201);
        let response = app.exec(admin, "query($s: String!) { firm { tasks(filter: { search: $s }) { totalCount } } }", json!({ "s": long })).await;
        assert_eq!(error_codes(&response), vec!["BAD_USER_INPUT"], "{response}");
        assert_eq!(response["errors"][0]["extensions"]["field"], "filter.search", "{response}");
    }
}

/// A firm in `locale` with a monthly mission whose service's texts use placeholders, signed
/// so that past periods are generated; returns its admin and its requests' and tasks' texts.
async fn firm_with_placeholders(
    app: &TestApp,
    tag: &str,
    locale: &str,
) -> (Vec<(String, String)>, Vec<(String, String)>) {
    let email = format!("admin@{tag}.example.fr");
    rappel::setup::create_firm(
        &app.db.pool,
        &format!("Cabinet {tag}"),
        &email,
        Some(PASSWORD),
        "Europe/Paris",
        locale,
    )
    .await
    .expect("firm");
    let (_, admin) = app.login(&email, PASSWORD).await;
    let data = app.ok(&admin, "mutation($input: CreateServiceInput!) { createService(input: $input) { id } }", json!({ "input": {
        "title": "TVA", "deliverableType": "DOCUMENTS", "leadDays": 5,
        "items": [
            { "kind": "INFORMATION_REQUEST", "title": "Vos éléments de {mois} ({previous_month}, {trimestre}), au plus tard le {echeance}" },
            { "kind": "TASK", "title": "TVA {month} {annee}" }
        ]
    }})).await;
    let service = data["createService"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let data = app
        .ok(
            &admin,
            r#"mutation { createClient(input: { name: "Boulangerie" }) { id } }"#,
            json!({}),
        )
        .await;
    let client = data["createClient"]["id"].as_str().expect("id").to_string();
    let data = app.ok(&admin, "mutation($input: CreateMissionInput!) { createMission(input: $input) { id } }", json!({ "input": {
        "clientId": client, "name": "TVA", "startDate": crate::support::app::months_ago_28th(2),
        "lines": [{ "serviceId": service, "frequency": "MONTHLY" }]
    }})).await;
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
    let data = app.ok(&admin, "{ firm { informationRequests(first: 50) { nodes { text dueDate } } tasks(first: 50) { nodes { title dueDate } } } }", json!({})).await;
    let pairs = |list: &Value, field: &str| -> Vec<(String, String)> {
        list["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .map(|node| {
                (
                    node["dueDate"].as_str().expect("date").to_string(),
                    node[field].as_str().expect("text").to_string(),
                )
            })
            .collect()
    };
    (
        pairs(&data["firm"]["informationRequests"], "text"),
        pairs(&data["firm"]["tasks"], "title"),
    )
}

pub(crate) const FRENCH_MONTHS: [&str; 12] = [
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
];
const ENGLISH_MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

backend_test! {
    async fn request_texts_and_task_titles_name_their_period_in_the_firms_language(db: TestDb) {
        let app = TestApp::new(db);
        for (tag, locale) in [("fr", "fr"), ("en", "en")] {
            let (requests, tasks) = firm_with_placeholders(&app, tag, locale).await;
            assert!(!requests.is_empty() && requests.len() == tasks.len(), "{requests:?}");
            for ((due, text), (_, title)) in requests.iter().zip(&tasks) {
                let due: NaiveDate = due.parse().expect("date");
                let month = due.month0() as usize;
                let previous = due.checked_sub_months(chrono::Months::new(1)).expect("date");
                let quarter = due.month0() / 3 + 1;
                let expected = if locale == "fr" {
                    let day = if due.day() == 1 { "1er".to_string() } else { due.day().to_string() };
                    format!(
                        "Vos éléments de {} {} ({} {}, T{quarter} {}), au plus tard le {day} {} {}",
                        FRENCH_MONTHS[month], due.year(), FRENCH_MONTHS[previous.month0() as usize], previous.year(),
                        due.year(), FRENCH_MONTHS[month], due.year()
                    )
                } else {
                    format!(
                        "Vos éléments de {} {} ({} {}, Q{quarter} {}), au plus tard le {} {}, {}",
                        ENGLISH_MONTHS[month], due.year(), ENGLISH_MONTHS[previous.month0() as usize], previous.year(),
                        due.year(), ENGLISH_MONTHS[month], due.day(), due.year()
                    )
                };
                assert_eq!(text, &expected);
                let months = if locale == "fr" { FRENCH_MONTHS } else { ENGLISH_MONTHS };
                assert_eq!(title, &format!("TVA {} {} {}", months[month], due.year(), due.year()));
            }
        }
    }
}

backend_test! {
    async fn an_unknown_placeholder_is_refused_when_the_service_is_saved(db: TestDb) {
        let app = TestApp::new(db);
        let service = json!({
            "title": "TVA", "deliverableType": "DOCUMENTS", "leadDays": 5,
            "items": [{ "kind": "INFORMATION_REQUEST", "title": "Vos éléments de {mois}" }]
        });
        let (admin, _, service_id) = app.firm_with_service("ph", "Europe/Paris", service).await;
        let before = app.ok(&admin, "{ firm { services { totalCount } } }", json!({})).await;
        let bad = json!({
            "title": "TVA 2", "deliverableType": "DOCUMENTS", "leadDays": 5,
            "items": [
                { "kind": "TASK", "title": "Préparer {annee}" },
                { "kind": "INFORMATION_REQUEST", "title": "Vos éléments de {moi}" }
            ]
        });
        let response = app.exec(&admin, "mutation($input: CreateServiceInput!) { createService(input: $input) { id } }", json!({ "input": bad })).await;
        assert_eq!(error_codes(&response), vec!["BAD_USER_INPUT"], "{response}");
        assert_eq!(response["errors"][0]["extensions"]["field"], "items.1.title", "{response}");
        assert!(response["errors"][0]["message"].as_str().expect("message").contains("{moi}"), "{response}");
        let response = app.exec(&admin, "mutation($input: UpdateServiceInput!) { updateService(input: $input) { id } }",
            json!({ "input": { "id": service_id, "title": bad["title"], "deliverableType": bad["deliverableType"], "leadDays": bad["leadDays"], "items": bad["items"] } })).await;
        assert_eq!(error_codes(&response), vec!["BAD_USER_INPUT"], "{response}");
        let after = app.ok(&admin, "{ firm { services { totalCount } } }", json!({})).await;
        assert_eq!(before, after);
        let data = app.ok(&admin, "query($id: ID!) { firm { service(id: $id) { items { title } } } }", json!({ "id": service_id })).await;
        assert_eq!(data["firm"]["service"]["items"], json!([{ "title": "Vos éléments de {mois}" }]));
    }
}

backend_test! {
    async fn a_task_and_its_requests_know_their_occurrence_and_period(db: TestDb) {
        let app = TestApp::new(db);
        let world = World::build(&app).await;
        let admin = &world.admin_a;
        app.ok(&world.contact_a, "mutation($id: ID!) { answerRequest(input: { id: $id, message: \"Ci-joint\" }) { status } }",
            json!({ "id": world.firm_a.request })).await;
        let data = app.ok(admin, r#"query($c: ID!) { firm { tasks(clientId: $c, first: 10) { nodes {
            id dueDate periodLabel missionLine { id frequency } service { id }
            requests { id dueDate status periodLabel missionLine { id } tasks { id } }
            requestProgress { total open answered closed cancelled }
        } } } }"#, json!({ "c": world.firm_a.client })).await;
        let nodes = data["firm"]["tasks"]["nodes"].as_array().expect("tasks");
        assert!(nodes.len() >= 2);
        let mut answered_seen = 0;
        for task in nodes {
            let due: NaiveDate = task["dueDate"].as_str().expect("date").parse().expect("date");
            let month = FRENCH_MONTHS[due.month0() as usize];
            assert_eq!(task["periodLabel"], format!("{month} {}", due.year()));
            assert_eq!(task["missionLine"]["frequency"], "MONTHLY");
            assert_eq!(task["service"]["id"], world.firm_a.service.as_str());
            let requests = task["requests"].as_array().expect("requests");
            // The service has one request item: one request per occurrence.
            assert_eq!(requests.len(), 1, "{task}");
            for request in requests {
                assert_eq!(request["dueDate"], task["dueDate"]);
                assert_eq!(request["periodLabel"], task["periodLabel"]);
                assert_eq!(request["missionLine"]["id"], task["missionLine"]["id"]);
                assert_eq!(request["tasks"], json!([{ "id": task["id"] }]));
                if request["status"] == "ANSWERED" {
                    answered_seen += 1;
                }
            }
            let progress = &task["requestProgress"];
            assert_eq!(progress["total"], 1);
            let answered = requests[0]["status"] == "ANSWERED";
            assert_eq!(progress["answered"], i32::from(answered));
            assert_eq!(progress["open"], i32::from(!answered));
        }
        assert_eq!(answered_seen, 1);
    }
}

backend_test! {
    async fn a_clients_file_holds_its_requests_tasks_and_history(db: TestDb) {
        let app = TestApp::new(db);
        let world = World::build(&app).await;
        let data = app.ok(&world.admin_a, r#"query($c: ID!) { firm {
            client(id: $c) {
                tasks(first: 100) { totalCount nodes { id } }
                overdue: tasks(filter: { overdue: true }) { totalCount }
                requests(first: 100) { totalCount nodes { id } }
                history(first: 100) { totalCount nodes { kind client { id } } }
            }
            tasks(clientId: $c, first: 100) { totalCount nodes { id } }
            overdue: tasks(clientId: $c, filter: { overdue: true }) { totalCount }
            informationRequests(clientId: $c, first: 100) { totalCount nodes { id } }
        } }"#, json!({ "c": world.firm_a.client })).await;
        let firm = &data["firm"];
        let client = &firm["client"];
        assert_eq!(client["tasks"], firm["tasks"]);
        assert_eq!(client["overdue"], firm["overdue"]);
        assert_eq!(client["requests"], firm["informationRequests"]);
        assert!(client["requests"]["totalCount"].as_i64().expect("count") > 0);
        let history = client["history"]["nodes"].as_array().expect("history");
        assert!(history.iter().any(|entry| entry["kind"] == "client.created"));
        assert!(history.iter().any(|entry| entry["kind"] == "occurrence.generated"));
        assert!(history.iter().all(|entry| entry["client"]["id"] == world.firm_a.client.as_str()));
    }
}
