//! Relay connections: pages forward and backward through opaque keyset cursors, bounded page
//! sizes, `totalCount`, and the SQL statements a page costs (counted with diesel's
//! instrumentation): nested fields load in one query per level, so a page of 50 costs the same
//! statements as a page of 5.

use rappel::graphql::Caller;
use serde_json::{Value, json};

use crate::support::TestDb;
use crate::support::app::{TestApp, World, error_codes, months_ago_28th};
use crate::support::statements::{Statements, statements_of, texts_of};
use crate::{backend_test, counted_backend_test};
use rappel::db::page::Keyset;

/// Runs `query` as `caller` and returns its data and the statements it ran.
async fn measured(app: &TestApp, caller: &Caller, query: &str) -> (Value, Statements) {
    let before = statements_of(&app.db.url);
    let texts_before = texts_of(&app.db.url).len();
    let data = app.ok(caller, query, json!({})).await;
    let after = statements_of(&app.db.url);
    eprintln!(
        "{query}:\n  {}",
        texts_of(&app.db.url)[texts_before..].join("\n  ")
    );
    (
        data,
        Statements {
            data: after.data - before.data,
            housekeeping: after.housekeeping - before.housekeeping,
            pings: after.pings - before.pings,
        },
    )
}

/// The world, plus a service of 30 tasks and 30 requests on a monthly mission of client A
/// signed three months back (at least 90 of each generated), and one answer to each of the
/// contact's first 60 requests.
async fn big_world(app: &TestApp) -> World {
    let world = World::build(app).await;
    let items: Vec<Value> = (1..=30)
        .flat_map(|n| {
            [
                json!({ "kind": "TASK", "title": format!("Tâche {n}") }),
                json!({ "kind": "INFORMATION_REQUEST", "title": format!("Demande {n}") }),
            ]
        })
        .collect();
    let data = app
        .ok(
            &world.admin_a,
            "mutation($input: CreateServiceInput!) { createService(input: $input) { id } }",
            json!({ "input": {
                "categoryId": world.firm_a.category, "title": "Paie", "deliverableType": "DOCUMENTS",
                "leadDays": 10, "items": items
            }}),
        )
        .await;
    let service = data["createService"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let data = app
        .ok(
            &world.admin_a,
            "mutation($input: CreateMissionInput!) { createMission(input: $input) { id } }",
            json!({ "input": {
                "clientId": world.firm_a.client, "name": "Paie mensuelle",
                "startDate": months_ago_28th(3),
                "lines": [{ "serviceId": service, "frequency": "MONTHLY" }]
            }}),
        )
        .await;
    let mission = data["createMission"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    app.ok(
        &world.admin_a,
        "mutation($id: ID!) { signMission(id: $id) { status } }",
        json!({ "id": mission }),
    )
    .await;
    let data = app
        .ok(
            &world.contact_a,
            "{ client { requests(first: 60) { nodes { id } } } }",
            json!({}),
        )
        .await;
    let ids = data["client"]["requests"]["nodes"]
        .as_array()
        .expect("nodes")
        .clone();
    assert_eq!(ids.len(), 60, "enough requests were generated");
    for node in ids {
        app.ok(
            &world.contact_a,
            "mutation($id: ID!) { answerRequest(input: { id: $id, message: \"Voici\" }) { status } }",
            json!({ "id": node["id"] }),
        )
        .await;
    }
    world
}

fn tasks_page(size: usize) -> String {
    format!(
        "{{ firm {{ tasks(first: {size}) {{ totalCount pageInfo {{ hasNextPage endCursor }} \
         nodes {{ title client {{ name }} mission {{ name }} service {{ title }} }} }} }} }}"
    )
}

fn requests_page(size: usize) -> String {
    format!(
        "{{ client {{ requests(first: {size}) {{ pageInfo {{ hasNextPage }} \
         nodes {{ text answers {{ totalCount nodes {{ message }} }} }} }} }} }}"
    )
}

/// Both pages of a query, after a warm-up run (so the pool holds its connections already).
async fn pages_of_5_and_50(
    app: &TestApp,
    caller: &Caller,
    page: fn(usize) -> String,
) -> [(Value, Statements); 2] {
    app.ok(caller, &page(50), json!({})).await;
    [
        measured(app, caller, &page(5)).await,
        measured(app, caller, &page(50)).await,
    ]
}

async fn statements_per_page_do_not_grow_with_the_page_size(db: TestDb) {
    let app = TestApp::new(db);
    let world = big_world(&app).await;

    let [(small, small_cost), (large, large_cost)] =
        pages_of_5_and_50(&app, &world.admin_a, tasks_page).await;
    let nodes = large["firm"]["tasks"]["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), 50);
    assert_eq!(
        small["firm"]["tasks"]["nodes"].as_array().map(Vec::len),
        Some(5)
    );
    assert!(nodes.iter().all(|task| task["client"]["name"].is_string()
        && task["mission"]["name"].is_string()
        && task["service"]["title"].is_string()));
    eprintln!(
        "{}: tasks page of 5: {small_cost:?}, of 50: {large_cost:?}",
        app.db.url
    );
    assert_eq!(
        small_cost.data, large_cost.data,
        "a page of 50 tasks runs the statements a page of 5 does"
    );
    // The page with its clients, missions and services joined, then its count.
    assert_eq!(large_cost.data, 2, "{large_cost:?}");
    // No `SELECT 1` on pool checkouts.
    assert_eq!(
        (small_cost.pings, large_cost.pings),
        (0, 0),
        "{large_cost:?}"
    );

    // The caller behind a bearer token: one statement, then none while it is cached.
    let callers = rappel::graphql::CallerCache::new(5, rappel::events::EventBus::new());
    let before = statements_of(&app.db.url);
    let caller = callers
        .resolve(&app.db.pool, Some(&world.admin_a_token))
        .await
        .expect("resolves");
    let lookup = statements_of(&app.db.url);
    assert!(matches!(caller, Caller::Staff(_)), "{caller:?}");
    assert_eq!(
        (lookup.data - before.data, lookup.pings - before.pings),
        (1, 0),
        "the token, its user and firm in one statement, no ping \
         (the pool may open a connection meanwhile: its set-up is not a ping)"
    );
    let again = callers
        .resolve(&app.db.pool, Some(&world.admin_a_token))
        .await
        .expect("resolves");
    assert!(matches!(again, Caller::Staff(_)), "{again:?}");
    assert_eq!(
        statements_of(&app.db.url),
        lookup,
        "a cached caller costs no statement"
    );
    let (_, contact_lookup) = {
        let before = statements_of(&app.db.url);
        let contact = callers
            .resolve(&app.db.pool, Some(&world.contact_a_token))
            .await
            .expect("resolves");
        (contact, statements_of(&app.db.url).data - before.data)
    };
    assert_eq!(
        contact_lookup, 1,
        "the token and its contact in one statement"
    );

    let [(small, small_cost), (large, large_cost)] =
        pages_of_5_and_50(&app, &world.contact_a, requests_page).await;
    let nodes = large["client"]["requests"]["nodes"]
        .as_array()
        .expect("nodes");
    assert_eq!(nodes.len(), 50);
    assert_eq!(
        small["client"]["requests"]["nodes"]
            .as_array()
            .map(Vec::len),
        Some(5)
    );
    assert!(
        nodes.iter().all(
            |request| request["answers"]["nodes"][0]["message"] == "Voici"
                && request["answers"]["totalCount"] == 1
        ),
        "{large}"
    );
    eprintln!(
        "{}: contact's requests page of 5: {small_cost:?}, of 50: {large_cost:?}",
        app.db.url
    );
    assert_eq!(
        small_cost.data, large_cost.data,
        "a page of 50 requests with answers runs the statements a page of 5 does"
    );
    // The page, then the answers of all its requests (each request's first page of answers
    // holds them all: their counts need no statement).
    assert_eq!(large_cost.data, 2, "{large_cost:?}");
    assert_eq!(
        (small_cost.pings, large_cost.pings),
        (0, 0),
        "{large_cost:?}"
    );
}

counted_backend_test!(
    async fn a_page_of_50_runs_the_statements_of_a_page_of_5(db: TestDb) {
        statements_per_page_do_not_grow_with_the_page_size(db).await;
    }
);

async fn lookups_and_pages_read_their_parents_in_their_own_statement(db: TestDb) {
    let app = TestApp::new(db);
    let world = World::build(&app).await;
    let admin = &world.admin_a;
    let names = app
        .ok(
            admin,
            "query($c: ID!, $m: ID!, $s: ID!) { firm { client(id: $c) { name } \
             mission(id: $m) { name } service(id: $s) { title } } }",
            json!({ "c": world.firm_a.client, "m": world.firm_a.mission, "s": world.firm_a.service }),
        )
        .await;
    let (client, mission, service) = (
        &names["firm"]["client"]["name"],
        &names["firm"]["mission"]["name"],
        &names["firm"]["service"]["title"],
    );
    app.ok(
        admin,
        "{ firm { tasks(first: 1) { nodes { id } } } }",
        json!({}),
    )
    .await;

    let task = format!(
        "{{ firm {{ task(id: \"{}\") {{ title client {{ name }} mission {{ name }} \
         service {{ title }} }} }} }}",
        world.firm_a.task
    );
    let (data, cost) = measured(&app, admin, &task).await;
    let read = &data["firm"]["task"];
    assert_eq!(
        (
            &read["client"]["name"],
            &read["mission"]["name"],
            &read["service"]["title"]
        ),
        (client, mission, service),
        "{data}"
    );
    assert_eq!(
        (cost.data, cost.pings),
        (1, 0),
        "a task with its client, mission and service: one statement"
    );

    let request = format!(
        "{{ firm {{ informationRequest(id: \"{}\") {{ text client {{ name }} \
         mission {{ name }} service {{ title }} }} }} }}",
        world.firm_a.request
    );
    let (data, cost) = measured(&app, admin, &request).await;
    let read = &data["firm"]["informationRequest"];
    assert_eq!(
        (
            &read["client"]["name"],
            &read["mission"]["name"],
            &read["service"]["title"]
        ),
        (client, mission, service),
        "{data}"
    );
    assert_eq!(cost.data, 1, "a request with its parents: one statement");

    let (_, cost) = measured(
        &app,
        admin,
        &format!(
            "{{ firm {{ task(id: \"{}\") {{ title }} }} }}",
            world.firm_a.task
        ),
    )
    .await;
    assert_eq!(cost.data, 1, "a task alone: one statement");

    // A page without totalCount: one statement, through `edges { node }` as through `nodes`.
    let (data, cost) = measured(
        &app,
        admin,
        "{ firm { informationRequests(first: 50) { edges { node { text client { name } } } } } }",
    )
    .await;
    let edges = data["firm"]["informationRequests"]["edges"]
        .as_array()
        .expect("edges");
    assert!(!edges.is_empty());
    assert!(
        edges
            .iter()
            .all(|edge| edge["node"]["client"]["name"].is_string()),
        "{data}"
    );
    assert_eq!(cost.data, 1, "a page of requests with their clients");

    // Another firm's task, and one that does not exist, are not found, joined or not.
    let missing = format!(
        "{{ firm {{ task(id: \"{}\") {{ title }} }} }}",
        crate::support::app::gid(rappel::domain::gid::Kind::Task, 999_999_999)
    );
    for query in [task.as_str(), missing.as_str()] {
        let response = app.exec(&world.admin_b, query, json!({})).await;
        assert_eq!(error_codes(&response), ["NOT_FOUND"], "{response}");
    }
}

counted_backend_test!(
    async fn a_lookup_by_id_with_its_parents_runs_one_statement(db: TestDb) {
        lookups_and_pages_read_their_parents_in_their_own_statement(db).await;
    }
);

/// Every node of `connection`, following `endCursor` forward, `first` at a time.
async fn walk_forward(app: &TestApp, caller: &Caller, field: &str, first: usize) -> Vec<String> {
    let mut seen = Vec::new();
    let mut after = Value::Null;
    loop {
        let query = format!(
            "query($after: String) {{ firm {{ {field}(first: {first}, after: $after) {{ \
             edges {{ cursor node {{ id }} }} pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }} }} }} }}"
        );
        let data = app.ok(caller, &query, json!({ "after": after })).await;
        let page = &data["firm"][field];
        let edges = page["edges"].as_array().expect("edges");
        assert!(edges.len() <= first);
        assert_eq!(
            page["pageInfo"]["hasPreviousPage"],
            !after.is_null(),
            "{page}"
        );
        if let Some(last) = edges.last() {
            assert_eq!(page["pageInfo"]["endCursor"], last["cursor"]);
            assert_eq!(page["pageInfo"]["startCursor"], edges[0]["cursor"]);
        }
        seen.extend(
            edges
                .iter()
                .map(|edge| edge["node"]["id"].as_str().expect("id").to_string()),
        );
        if page["pageInfo"]["hasNextPage"] != true {
            return seen;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
}

/// Every node, following `startCursor` backward, `last` at a time; in list order.
async fn walk_backward(app: &TestApp, caller: &Caller, field: &str, last: usize) -> Vec<String> {
    let mut pages = Vec::new();
    let mut before = Value::Null;
    loop {
        let query = format!(
            "query($before: String) {{ firm {{ {field}(last: {last}, before: $before) {{ \
             nodes {{ id }} pageInfo {{ hasNextPage hasPreviousPage startCursor }} }} }} }}"
        );
        let data = app.ok(caller, &query, json!({ "before": before })).await;
        let page = &data["firm"][field];
        assert_eq!(page["pageInfo"]["hasNextPage"], !before.is_null(), "{page}");
        let ids: Vec<String> = page["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .map(|node| node["id"].as_str().expect("id").to_string())
            .collect();
        pages.push(ids);
        if page["pageInfo"]["hasPreviousPage"] != true {
            pages.reverse();
            return pages.concat();
        }
        before = page["pageInfo"]["startCursor"].clone();
    }
}

backend_test!(
    async fn pages_cover_every_row_once_forward_and_backward_in_the_same_order(db: TestDb) {
        let app = TestApp::new(db);
        let world = big_world(&app).await;
        for field in [
            "tasks",
            "informationRequests",
            "deliveries",
            "clients",
            "missions",
        ] {
            let whole = app
                .ok(
                    &world.admin_a,
                    &format!(
                        "{{ firm {{ {field}(first: 100) {{ totalCount nodes {{ id }} }} }} }}"
                    ),
                    json!({}),
                )
                .await;
            let total = whole["firm"][field]["totalCount"].as_u64().expect("count");
            let forward = walk_forward(&app, &world.admin_a, field, 7).await;
            let backward = walk_backward(&app, &world.admin_a, field, 7).await;
            assert_eq!(forward.len() as u64, total, "{field}: every row once");
            let mut unique = forward.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(unique.len(), forward.len(), "{field}: no row twice");
            assert_eq!(forward, backward, "{field}: the same order both ways");
            if total <= 100 {
                let first_page: Vec<String> = whole["firm"][field]["nodes"]
                    .as_array()
                    .expect("nodes")
                    .iter()
                    .map(|node| node["id"].as_str().expect("id").to_string())
                    .collect();
                assert_eq!(first_page, forward, "{field}");
            }
        }
    }
);

backend_test!(
    async fn page_arguments_out_of_bounds_answer_bad_user_input_naming_the_argument(db: TestDb) {
        let app = TestApp::new(db);
        let world = World::build(&app).await;
        let cases = [
            ("{ firm { tasks(first: 101) { nodes { id } } } }", "first"),
            ("{ firm { tasks(first: -1) { nodes { id } } } }", "first"),
            ("{ firm { clients(last: 101) { nodes { id } } } }", "last"),
            ("{ firm { missions(last: -5) { nodes { id } } } }", "last"),
            (
                "{ firm { services(first: 2, last: 2) { nodes { id } } } }",
                "last",
            ),
            (
                "{ firm { deliveries(after: \"not-a-cursor\") { nodes { id } } } }",
                "after",
            ),
            (
                "{ firm { staff(before: \"eyJ4IjoxfQ\") { nodes { id } } } }",
                "before",
            ),
        ];
        for (query, argument) in cases {
            let response = app.exec(&world.admin_a, query, json!({})).await;
            assert_eq!(
                error_codes(&response),
                ["BAD_USER_INPUT"],
                "{query}: {response}"
            );
            assert_eq!(
                response["errors"][0]["extensions"]["field"], argument,
                "{response}"
            );
        }
        let response = app
            .exec(
                &world.contact_a,
                "{ client { requests(first: 1000) { nodes { id } } } }",
                json!({}),
            )
            .await;
        assert_eq!(error_codes(&response), ["BAD_USER_INPUT"], "{response}");
        // A cursor of another list (a client's name key) is refused by the tasks list.
        let data = app
            .ok(
                &world.admin_a,
                "{ firm { clients(first: 1) { pageInfo { endCursor } } } }",
                json!({}),
            )
            .await;
        let response = app
            .exec(
                &world.admin_a,
                "query($after: String) { firm { tasks(after: $after) { nodes { id } } } }",
                json!({ "after": data["firm"]["clients"]["pageInfo"]["endCursor"] }),
            )
            .await;
        assert_eq!(error_codes(&response), ["BAD_USER_INPUT"], "{response}");
    }
);

backend_test!(
    async fn a_page_without_first_or_last_holds_the_default_page_size(db: TestDb) {
        let app = TestApp::new(db);
        let world = big_world(&app).await;
        let data = app
            .ok(
                &world.admin_a,
                "{ firm { tasks { totalCount nodes { id } pageInfo { hasNextPage } } } }",
                json!({}),
            )
            .await;
        assert_eq!(
            data["firm"]["tasks"]["nodes"].as_array().map(Vec::len),
            Some(50)
        );
        assert_eq!(data["firm"]["tasks"]["pageInfo"]["hasNextPage"], true);
        assert!(data["firm"]["tasks"]["totalCount"].as_u64() > Some(50));
        let data = app
            .ok(
                &world.contact_a,
                "{ client { requests { nodes { id } } } }",
                json!({}),
            )
            .await;
        assert_eq!(
            data["client"]["requests"]["nodes"].as_array().map(Vec::len),
            Some(50)
        );
    }
);

backend_test!(
    async fn batch_reads_of_the_loaders_never_return_another_tenants_rows(db: TestDb) {
        use rappel::db::{clients, firms, missions, work};
        let app = TestApp::new(db);
        let world = World::build(&app).await;
        app.ok(
            &world.contact_a,
            "mutation($id: ID!) { answerRequest(input: { id: $id, message: \"Voici\" }) { status } }",
            json!({ "id": world.firm_a.request }),
        )
        .await;
        let (Caller::Staff(admin_a), Caller::Staff(admin_b)) = (&world.admin_a, &world.admin_b)
        else {
            panic!("staff callers");
        };
        let id = |text: &str| crate::support::app::row_id(text);
        let (firm_a, firm_b) = (admin_a.firm_id, admin_b.firm_id);
        let clients_of_a = [id(&world.firm_a.client), id(&world.firm_a.other_client)];
        let mut conn = app.db.pool.get().await.expect("connection");
        let mut db = conn.as_db();

        let own = clients::find_clients(&mut db, firm_a, &clients_of_a)
            .await
            .expect("read");
        assert_eq!(own.len(), 2);
        let foreign = clients::find_clients(&mut db, firm_b, &clients_of_a)
            .await
            .expect("read");
        assert!(foreign.is_empty(), "{foreign:?}");
        let missions_of_a = [id(&world.firm_a.mission)];
        assert!(
            missions::find_missions(&mut db, firm_b, &missions_of_a)
                .await
                .expect("read")
                .is_empty()
        );
        assert!(
            missions::missions_of_clients(&mut db, firm_b, &clients_of_a)
                .await
                .expect("read")
                .is_empty()
        );
        // A mission's lines come with their services, of the same firm only.
        let lines = missions::lines_of_missions(&mut db, firm_a, &missions_of_a)
            .await
            .expect("read");
        assert!(
            !lines.is_empty()
                && lines
                    .iter()
                    .all(|(line, service)| line.service_id == service.id
                        && line.firm_id == firm_a
                        && service.firm_id == firm_a),
            "{lines:?}"
        );
        assert!(
            missions::lines_of_missions(&mut db, firm_b, &missions_of_a)
                .await
                .expect("read")
                .is_empty()
        );
        assert!(
            firms::find_users(&mut db, firm_b, &[admin_a.user_id])
                .await
                .expect("read")
                .is_empty()
        );

        let request = [id(&world.firm_a.request)];
        let page = Keyset::first(10);
        let mut answers = async |firm, client| {
            work::answer_pages_of_requests(&mut db, firm, client, &request, &page)
                .await
                .expect("read")
                .len()
        };
        assert_eq!(answers(firm_a, None).await, 1);
        assert_eq!(answers(firm_b, None).await, 0);
        // A contact's loader is scoped by its client too: the other client of the same firm
        // reads nothing of this request.
        let own_client = id(&world.firm_a.client);
        let other_client = id(&world.firm_a.other_client);
        assert_eq!(answers(firm_a, Some(own_client)).await, 1);
        assert_eq!(answers(firm_a, Some(other_client)).await, 0);
        assert_eq!(answers(firm_b, Some(own_client)).await, 0);
        // The joined lookups are scoped by firm too.
        let task_of_a = id(&world.firm_a.task);
        assert!(
            work::find_task_with_parents(&mut db, firm_a, task_of_a)
                .await
                .is_ok()
        );
        assert!(
            work::find_task_with_parents(&mut db, firm_b, task_of_a)
                .await
                .is_err()
        );
        assert!(
            work::find_request_with_parents(&mut db, firm_b, request[0])
                .await
                .is_err()
        );
        let counts = work::count_answers_of_requests(&mut db, firm_b, None, &request)
            .await
            .expect("read");
        assert!(counts.is_empty(), "{counts:?}");
    }
);

backend_test!(
    async fn answers_are_paged_per_request_in_both_views(db: TestDb) {
        let app = TestApp::new(db);
        let world = World::build(&app).await;
        let data = app
            .ok(
                &world.contact_a,
                "{ client { requests(first: 2) { nodes { id } } } }",
                json!({}),
            )
            .await;
        let ids: Vec<Value> = data["client"]["requests"]["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .map(|node| node["id"].clone())
            .collect();
        assert_eq!(ids.len(), 2);
        let answer = async |id: &Value, message: &str| {
            app.ok(
                &world.contact_a,
                "mutation($id: ID!, $message: String!) { answerRequest(input: { id: $id, message: $message }) { status } }",
                json!({ "id": id, "message": message }),
            )
            .await;
        };
        for message in ["un", "deux", "trois"] {
            answer(&ids[0], message).await;
        }
        answer(&ids[1], "seul").await;

        let data = app
            .ok(
                &world.contact_a,
                "{ client { requests(first: 2) { nodes { id answers(first: 2) { totalCount \
                 pageInfo { hasNextPage endCursor } nodes { message } } } } } }",
                json!({}),
            )
            .await;
        let nodes = &data["client"]["requests"]["nodes"];
        let messages = |answers: &Value| -> Vec<String> {
            answers["nodes"]
                .as_array()
                .expect("nodes")
                .iter()
                .map(|node| node["message"].as_str().expect("message").to_string())
                .collect()
        };
        assert_eq!(messages(&nodes[0]["answers"]), ["un", "deux"]);
        assert_eq!(nodes[0]["answers"]["totalCount"], 3);
        assert_eq!(nodes[0]["answers"]["pageInfo"]["hasNextPage"], true);
        assert_eq!(messages(&nodes[1]["answers"]), ["seul"]);
        assert_eq!(nodes[1]["answers"]["totalCount"], 1);
        assert_eq!(nodes[1]["answers"]["pageInfo"]["hasNextPage"], false);

        let data = app
            .ok(
                &world.contact_a,
                "query($id: ID!, $after: String) { client { request(id: $id) { \
                 next: answers(first: 2, after: $after) { nodes { message } pageInfo { hasNextPage hasPreviousPage } } \
                 newest: answers(last: 1) { nodes { message } pageInfo { hasPreviousPage } } } } }",
                json!({ "id": ids[0], "after": nodes[0]["answers"]["pageInfo"]["endCursor"] }),
            )
            .await;
        let request = &data["client"]["request"];
        assert_eq!(messages(&request["next"]), ["trois"]);
        assert_eq!(request["next"]["pageInfo"]["hasNextPage"], false);
        assert_eq!(request["next"]["pageInfo"]["hasPreviousPage"], true);
        assert_eq!(messages(&request["newest"]), ["trois"]);
        assert_eq!(request["newest"]["pageInfo"]["hasPreviousPage"], true);

        let data = app
            .ok(
                &world.admin_a,
                "query($id: ID!) { firm { informationRequest(id: $id) { answers(last: 2) { totalCount nodes { message } } } } }",
                json!({ "id": ids[0] }),
            )
            .await;
        let answers = &data["firm"]["informationRequest"]["answers"];
        assert_eq!(messages(answers), ["deux", "trois"]);
        assert_eq!(answers["totalCount"], 3);

        let response = app
            .exec(
                &world.contact_a,
                "{ client { requests(first: 1) { nodes { answers(first: 101) { nodes { id } } } } } }",
                json!({}),
            )
            .await;
        assert_eq!(error_codes(&response), ["BAD_USER_INPUT"], "{response}");
    }
);

backend_test!(
    async fn a_clients_contacts_and_missions_and_a_categorys_services_page_like_any_connection(
        db: TestDb,
    ) {
        let app = TestApp::new(db);
        let world = World::build(&app).await;
        let admin = &world.admin_a;
        for name in ["Bruno", "Alice"] {
            app.ok(
                admin,
                "mutation($c: ID!, $n: String!, $e: String!) { addContact(input: { clientId: $c, name: $n, email: $e }) { id } }",
                json!({ "c": world.firm_a.client, "n": name, "e": format!("{}@a.example.fr", name.to_lowercase()) }),
            )
            .await;
        }
        let contacts = "query($c: ID!, $first: Int, $after: String, $last: Int, $before: String) { firm { client(id: $c) { \
            contacts(first: $first, after: $after, last: $last, before: $before) { totalCount nodes { name } \
            pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } } } }";
        let page = |variables: Value| {
            let app = &app;
            async move { app.ok(admin, contacts, variables).await["firm"]["client"]["contacts"].clone() }
        };
        let everyone = page(json!({ "c": world.firm_a.client })).await;
        let names: Vec<String> = everyone["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .map(|node| node["name"].as_str().expect("name").to_string())
            .collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted, "by name: {everyone}");
        assert_eq!(everyone["totalCount"], json!(names.len()));
        assert!(names.len() >= 3, "{everyone}");
        // Forward one at a time, then backward from the end: every contact once, same order.
        let mut forward = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let one = page(json!({ "c": world.firm_a.client, "first": 1, "after": after })).await;
            forward.extend(
                one["nodes"]
                    .as_array()
                    .expect("nodes")
                    .iter()
                    .map(|node| node["name"].clone()),
            );
            assert_eq!(one["totalCount"], json!(names.len()));
            if one["pageInfo"]["hasNextPage"] != json!(true) {
                break;
            }
            after = one["pageInfo"]["endCursor"].as_str().map(str::to_string);
        }
        assert_eq!(
            forward,
            names.iter().map(|name| json!(name)).collect::<Vec<_>>()
        );
        let last_two = page(json!({ "c": world.firm_a.client, "last": 2 })).await;
        assert_eq!(
            last_two["nodes"],
            json!(
                names[names.len() - 2..]
                    .iter()
                    .map(|name| json!({ "name": name }))
                    .collect::<Vec<_>>()
            )
        );
        assert_eq!(last_two["pageInfo"]["hasPreviousPage"], true);
        let before = last_two["pageInfo"]["startCursor"]
            .as_str()
            .expect("cursor");
        let earlier = page(json!({ "c": world.firm_a.client, "last": 1, "before": before })).await;
        assert_eq!(
            earlier["nodes"],
            json!([{ "name": names[names.len() - 3] }])
        );
        // A cursor of another list is refused, naming the argument.
        let response = app
            .exec(
                admin,
                contacts,
                json!({ "c": world.firm_a.client, "first": 1, "after": "bm90IGEgY3Vyc29y" }),
            )
            .await;
        assert_eq!(error_codes(&response), ["BAD_USER_INPUT"], "{response}");

        let data = app
            .ok(
                admin,
                "query($c: ID!) { firm { client(id: $c) { missions(first: 1) { totalCount nodes { id } pageInfo { hasNextPage } } } \
                 categories { nodes { services(first: 1) { totalCount nodes { title } } } } } }",
                json!({ "c": world.firm_a.client }),
            )
            .await;
        let missions = &data["firm"]["client"]["missions"];
        assert_eq!(
            missions["nodes"].as_array().expect("nodes").len(),
            1,
            "{data}"
        );
        assert_eq!(
            missions["pageInfo"]["hasNextPage"],
            json!(missions["totalCount"].as_i64().expect("count") > 1)
        );
        let services = &data["firm"]["categories"]["nodes"][0]["services"];
        assert!(
            services["totalCount"].as_i64().expect("count") >= 1,
            "{data}"
        );
        assert_eq!(
            services["nodes"].as_array().expect("nodes").len(),
            1,
            "{data}"
        );
    }
);

/// Gives every answer of the contact's first 60 requests one file row (metadata only: no page
/// reads the bytes), named after its answer.
async fn a_file_per_answer(app: &TestApp, world: &World) -> usize {
    let firm = app.ok(&world.admin_a, "{ firm { id } }", json!({})).await;
    let firm_id = crate::support::app::row_id(firm["firm"]["id"].as_str().expect("firm id"));
    let client_id = crate::support::app::row_id(&world.firm_a.client);
    let data = app
        .ok(
            &world.contact_a,
            "{ client { requests(first: 60) { nodes { id answers { nodes { id } } } } } }",
            json!({}),
        )
        .await;
    let mut conn = app.db.pool.get().await.expect("connection");
    let sha256 = "0".repeat(64);
    let mut inserted = 0;
    for request in data["client"]["requests"]["nodes"]
        .as_array()
        .expect("nodes")
    {
        let request_id = crate::support::app::row_id(request["id"].as_str().expect("id"));
        for answer in request["answers"]["nodes"].as_array().expect("answers") {
            let answer_id = crate::support::app::row_id(answer["id"].as_str().expect("id"));
            let name = format!("releve-{answer_id}.pdf");
            let key = format!("test/{answer_id}");
            rappel::db::files::insert(
                &mut conn.as_db(),
                &[rappel::db::files::NewAnswerFile {
                    firm_id,
                    client_id,
                    request_id,
                    answer_id,
                    uploaded_by_contact_id: None,
                    name: &name,
                    size_bytes: 4,
                    media_type: "application/pdf",
                    sha256: &sha256,
                    storage_key: &key,
                    created_at: chrono::Utc::now().naive_utc(),
                }],
            )
            .await
            .expect("file row");
            inserted += 1;
        }
    }
    inserted
}

/// Every answer of `requests` (a list of request nodes) carries its own one file.
fn each_answer_has_its_file(requests: &Value, answer_gid: impl Fn(&Value) -> i64) -> usize {
    let mut files = 0;
    for request in requests.as_array().expect("nodes") {
        for answer in request["answers"]["nodes"].as_array().expect("answers") {
            let names: Vec<&str> = answer["files"]
                .as_array()
                .expect("files")
                .iter()
                .map(|file| file["name"].as_str().expect("name"))
                .collect();
            assert_eq!(
                names,
                [format!("releve-{}.pdf", answer_gid(answer))],
                "{answer}"
            );
            files += 1;
        }
    }
    files
}

/// Nested shapes of list pages that once cost one statement per row or per level above four:
/// each stays within four statements whatever the page size.
async fn nested_pages_stay_within_four_statements(db: TestDb) {
    let app = TestApp::new(db);
    let world = big_world(&app).await;
    let admin = &world.admin_a;
    let answer_id =
        |answer: &Value| crate::support::app::row_id(answer["id"].as_str().expect("id"));
    assert_eq!(a_file_per_answer(&app, &world).await, 60);

    // Missions with their client, and their lines with their services: the lines and their
    // services are one statement. A page cut short counts its missions (4); a page that holds
    // them all knows its count (3).
    for (first, statements) in [(2, 4), (50, 3)] {
        let query = format!(
            "{{ firm {{ missions(first: {first}) {{ totalCount nodes {{ name client {{ name }} \
             lines {{ frequency service {{ title }} }} }} }} }} }}"
        );
        app.ok(admin, &query, json!({})).await;
        let (data, cost) = measured(&app, admin, &query).await;
        let missions = &data["firm"]["missions"];
        let nodes = missions["nodes"].as_array().expect("nodes");
        assert_eq!(nodes.len(), first.min(4), "{data}");
        assert_eq!(missions["totalCount"], 4, "{data}");
        assert!(
            nodes
                .iter()
                .all(|mission| mission["client"]["name"].is_string()
                    && mission["lines"].as_array().is_some_and(|lines| lines
                        .iter()
                        .all(|line| line["service"]["title"].is_string()))),
            "{data}"
        );
        assert!(
            nodes
                .iter()
                .any(|mission| mission["lines"][0]["service"]["title"] == "Paie")
                || first < 4,
            "{data}"
        );
        assert_eq!(
            (cost.data, cost.pings),
            (statements, 0),
            "{query}: {cost:?}"
        );
    }

    // The firm's requests with their client, answers and the answers' files: the files of
    // every answer of the page in one statement (it was one per answer).
    let query = "{ firm { informationRequests(first: 50) { totalCount nodes { text client { name } \
                 answers { totalCount nodes { id message files { name } } } } } } }";
    app.ok(admin, query, json!({})).await;
    let (data, cost) = measured(&app, admin, query).await;
    let nodes = &data["firm"]["informationRequests"]["nodes"];
    assert_eq!(nodes.as_array().map(Vec::len), Some(50), "{data}");
    let files = each_answer_has_its_file(nodes, answer_id);
    assert!(files > 0, "the page shows answered requests: {data}");
    assert_eq!((cost.data, cost.pings), (4, 0), "{query}: {cost:?}");

    // The contact's requests with answers and their files, through both pages of 5 and 50.
    let page = |size: usize| {
        format!(
            "{{ client {{ requests(first: {size}) {{ totalCount nodes {{ text \
             answers {{ totalCount nodes {{ id message files {{ name }} }} }} }} }} }} }}"
        )
    };
    let contact = &world.contact_a;
    app.ok(contact, &page(50), json!({})).await;
    let (small, small_cost) = measured(&app, contact, &page(5)).await;
    let (large, large_cost) = measured(&app, contact, &page(50)).await;
    assert_eq!(
        each_answer_has_its_file(&small["client"]["requests"]["nodes"], answer_id),
        5
    );
    assert_eq!(
        each_answer_has_its_file(&large["client"]["requests"]["nodes"], answer_id),
        50
    );
    // The page, its count, the answers of its requests, their files.
    assert_eq!(
        (small_cost.data, large_cost.data, large_cost.pings),
        (4, 4, 0),
        "{small_cost:?} {large_cost:?}"
    );
}

counted_backend_test!(
    async fn nested_shapes_of_list_pages_stay_within_four_statements(db: TestDb) {
        nested_pages_stay_within_four_statements(db).await;
    }
);

/// The firm's history with every shape of actor (staff member, contact, system), the client
/// and mission of each entry: the page reads them in its own statement, so the page and its
/// count are the whole cost (it was 6 with staff actors on the page: the page, its count,
/// then one statement each for clients, missions, staff members and contacts).
async fn history_pages_read_their_actors_with_their_entries(db: TestDb) {
    let app = TestApp::new(db);
    let world = big_world(&app).await;
    let admin = &world.admin_a;
    let mut kinds = std::collections::BTreeSet::new();
    let (mut staff, mut contacts, mut clients, mut missions) = (0, 0, 0, 0);
    for page in ["first: 50", "last: 50"] {
        let query = format!(
            "{{ firm {{ history({page}) {{ totalCount pageInfo {{ hasNextPage hasPreviousPage }} \
             nodes {{ id kind actor {{ kind staffMember {{ name }} contact {{ name }} }} \
             client {{ name }} mission {{ name }} }} }} }} }}"
        );
        app.ok(admin, &query, json!({})).await;
        let (data, cost) = measured(&app, admin, &query).await;
        let history = &data["firm"]["history"];
        let nodes = history["nodes"].as_array().expect("nodes");
        assert_eq!(nodes.len(), 50, "{data}");
        assert!(
            history["totalCount"]
                .as_i64()
                .is_some_and(|total| total > 50),
            "{data}"
        );
        for entry in nodes {
            let actor = &entry["actor"];
            let kind = actor["kind"].as_str().expect("kind");
            kinds.insert(kind.to_string());
            match kind {
                "STAFF" => {
                    assert!(actor["staffMember"]["name"].is_string(), "{entry}");
                    assert!(actor["contact"].is_null(), "{entry}");
                    staff += 1;
                }
                "CONTACT" => {
                    assert_eq!(actor["contact"]["name"], "Contact", "{entry}");
                    assert!(actor["staffMember"].is_null(), "{entry}");
                    contacts += 1;
                }
                _ => assert!(
                    actor["staffMember"].is_null() && actor["contact"].is_null(),
                    "{entry}"
                ),
            }
            if entry["kind"] == "request.answered" {
                assert!(entry["client"]["name"].is_string(), "{entry}");
                assert!(entry["mission"]["name"].is_string(), "{entry}");
            }
            clients += usize::from(entry["client"]["name"].is_string());
            missions += usize::from(entry["mission"]["name"].is_string());
        }
        assert_eq!((cost.data, cost.pings), (2, 0), "{query}: {cost:?}");
    }
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        ["CONTACT", "STAFF", "SYSTEM"],
        "every shape of actor was read"
    );
    assert!(staff > 0 && contacts > 0 && clients > 0 && missions > 0);
}

counted_backend_test!(
    async fn a_history_page_with_every_actor_runs_two_statements(db: TestDb) {
        history_pages_read_their_actors_with_their_entries(db).await;
    }
);

/// The period label a French firm gives an occurrence due on `due` (a monthly line).
fn monthly_label(due: &Value) -> String {
    use chrono::Datelike;
    let due: chrono::NaiveDate = due.as_str().expect("date").parse().expect("date");
    format!(
        "{} {}",
        crate::day::FRENCH_MONTHS[due.month0() as usize],
        due.year()
    )
}

/// A page of the firm's tasks showing every field of a task, and of its requests: the page
/// joins each row's client, mission, line, service, firm (for the period label) and assignee;
/// the requests of the occurrences and who completed (closed) each row are one statement
/// each; with the count, four statements whatever the page size.
async fn work_pages_with_every_nested_field_run_four_statements(db: TestDb) {
    let app = TestApp::new(db);
    let world = big_world(&app).await;
    let admin = &world.admin_a;
    let ids = |data: &Value, list: &str| -> Vec<String> {
        data["firm"][list]["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .map(|node| node["id"].as_str().expect("id").to_string())
            .collect()
    };

    // Every third task of the first page assigned to the member, every fourth completed.
    let first = app
        .ok(
            admin,
            "{ firm { tasks(first: 50) { nodes { id } } } }",
            json!({}),
        )
        .await;
    let task_ids = ids(&first, "tasks");
    assert_eq!(task_ids.len(), 50);
    let mut member_email = Value::Null;
    for id in task_ids.iter().step_by(3) {
        let data = app
            .ok(
                admin,
                "mutation($input: AssignTaskInput!) { assignTask(input: $input) { assignee { email } } }",
                json!({ "input": { "id": id, "assigneeId": world.member_a_id } }),
            )
            .await;
        member_email = data["assignTask"]["assignee"]["email"].clone();
    }
    assert!(member_email.is_string(), "{member_email}");
    for id in task_ids.iter().step_by(4) {
        app.ok(
            admin,
            "mutation($id: ID!) { completeTask(id: $id) { status } }",
            json!({ "id": id }),
        )
        .await;
    }

    let tasks = |size: usize| {
        format!(
            "{{ firm {{ tasks(first: {size}) {{ totalCount pageInfo {{ hasNextPage endCursor }} \
             nodes {{ id title status dueDate periodLabel client {{ name }} mission {{ name }} \
             service {{ title }} missionLine {{ id frequency }} assignee {{ email }} \
             requests {{ id status periodLabel }} requestProgress {{ total }} \
             completedBy {{ kind staffMember {{ email }} }} }} }} }} }}"
        )
    };
    app.ok(admin, &tasks(50), json!({})).await;
    let (small, small_cost) = measured(&app, admin, &tasks(5)).await;
    let (large, large_cost) = measured(&app, admin, &tasks(50)).await;
    let nodes = large["firm"]["tasks"]["nodes"].as_array().expect("nodes");
    assert_eq!(
        ids(&large, "tasks"),
        task_ids,
        "the same page, in the same order"
    );
    assert_eq!(ids(&small, "tasks"), task_ids[..5]);
    for (n, task) in nodes.iter().enumerate() {
        let label = monthly_label(&task["dueDate"]);
        assert_eq!(task["periodLabel"], label.as_str(), "{task}");
        assert_eq!(task["missionLine"]["frequency"], "MONTHLY", "{task}");
        assert!(task["client"]["name"].is_string() && task["mission"]["name"].is_string());
        assert!(task["service"]["title"].is_string(), "{task}");
        let assignee = if n % 3 == 0 {
            json!({ "email": member_email })
        } else {
            Value::Null
        };
        assert_eq!(task["assignee"], assignee, "task {n}");
        let completed_by = &task["completedBy"];
        if n % 4 == 0 {
            assert_eq!(task["status"], "DONE", "task {n}");
            assert_eq!(completed_by["kind"], "STAFF", "task {n}");
            assert_eq!(
                completed_by["staffMember"]["email"], "admin@a.example.fr",
                "task {n}"
            );
        } else {
            assert_eq!(*completed_by, Value::Null, "task {n}");
        }
        let requests = task["requests"].as_array().expect("requests");
        assert_eq!(task["requestProgress"]["total"], requests.len(), "{task}");
        assert!(
            requests
                .iter()
                .all(|request| request["periodLabel"] == label.as_str()),
            "{task}"
        );
    }
    assert!(
        nodes.iter().any(|task| task["requests"]
            .as_array()
            .is_some_and(|requests| requests.len() == 30)),
        "the payroll occurrences show their 30 requests"
    );
    eprintln!(
        "{}: tasks with every field, page of 5: {small_cost:?}, of 50: {large_cost:?}",
        app.db.url
    );
    // The page with its parents, its count, the requests of its occurrences, its completions.
    assert_eq!(
        (small_cost.data, large_cost.data, large_cost.pings),
        (4, 4, 0),
        "{small_cost:?} {large_cost:?}"
    );

    // The firm's requests with every field but their answers (their own nested level):
    // every fifth of the first page closed by the admin.
    let first = app
        .ok(
            admin,
            "{ firm { informationRequests(first: 50) { nodes { id } } } }",
            json!({}),
        )
        .await;
    let request_ids = ids(&first, "informationRequests");
    assert_eq!(request_ids.len(), 50);
    for id in request_ids.iter().step_by(5) {
        app.ok(
            admin,
            "mutation($id: ID!) { closeRequest(id: $id) { status } }",
            json!({ "id": id }),
        )
        .await;
    }
    let requests = |size: usize| {
        format!(
            "{{ firm {{ informationRequests(first: {size}) {{ totalCount nodes {{ id text \
             status dueDate periodLabel client {{ name }} mission {{ name }} service {{ title }} \
             missionLine {{ id frequency }} tasks {{ id periodLabel }} \
             closedBy {{ kind staffMember {{ email }} }} }} }} }} }}"
        )
    };
    app.ok(admin, &requests(50), json!({})).await;
    let (small, small_cost) = measured(&app, admin, &requests(5)).await;
    let (large, large_cost) = measured(&app, admin, &requests(50)).await;
    assert_eq!(ids(&large, "informationRequests"), request_ids);
    assert_eq!(ids(&small, "informationRequests"), request_ids[..5]);
    let nodes = large["firm"]["informationRequests"]["nodes"]
        .as_array()
        .expect("nodes");
    for (n, request) in nodes.iter().enumerate() {
        let label = monthly_label(&request["dueDate"]);
        assert_eq!(request["periodLabel"], label.as_str(), "{request}");
        assert_eq!(request["missionLine"]["frequency"], "MONTHLY", "{request}");
        assert!(request["client"]["name"].is_string(), "{request}");
        let tasks = request["tasks"].as_array().expect("tasks");
        assert!(
            tasks
                .iter()
                .all(|task| task["periodLabel"] == label.as_str()),
            "{request}"
        );
        if n % 5 == 0 {
            assert_eq!(request["status"], "CLOSED", "request {n}");
            assert_eq!(
                request["closedBy"]["staffMember"]["email"], "admin@a.example.fr",
                "request {n}"
            );
        } else {
            assert_eq!(request["closedBy"], Value::Null, "request {n}");
        }
    }
    eprintln!(
        "{}: requests with every field, page of 5: {small_cost:?}, of 50: {large_cost:?}",
        app.db.url
    );
    // The page with its parents, its count, the tasks of its occurrences, its closings.
    assert_eq!(
        (small_cost.data, large_cost.data, large_cost.pings),
        (4, 4, 0),
        "{small_cost:?} {large_cost:?}"
    );
}

counted_backend_test!(
    async fn a_work_page_with_every_nested_field_runs_four_statements(db: TestDb) {
        work_pages_with_every_nested_field_run_four_statements(db).await;
    }
);

/// Firm A of the world plus four clients whose monthly missions of the firm's service started
/// 1, 2, 4 and 6 months back (so each has its own number of tasks and requests) and one
/// client with no mission; the first task of every other client completed and the first
/// request of every third closed, so statuses differ. Returns every client's id.
async fn clients_with_work(app: &TestApp, world: &World) -> Vec<String> {
    let admin = &world.admin_a;
    let mut clients = vec![
        world.firm_a.client.clone(),
        world.firm_a.other_client.clone(),
    ];
    for (months, name) in [
        (1, "Atelier"),
        (2, "Cordonnerie"),
        (4, "Droguerie"),
        (6, "Épicerie"),
    ] {
        let data = app
            .ok(
                admin,
                "mutation($name: String!) { createClient(input: { name: $name }) { id } }",
                json!({ "name": name }),
            )
            .await;
        let client = data["createClient"]["id"].as_str().expect("id").to_string();
        let data = app
            .ok(
                admin,
                "mutation($input: CreateMissionInput!) { createMission(input: $input) { id } }",
                json!({ "input": {
                    "clientId": client, "name": format!("TVA {name}"),
                    "startDate": months_ago_28th(months),
                    "lines": [{ "serviceId": world.firm_a.service, "frequency": "MONTHLY" }]
                }}),
            )
            .await;
        app.ok(
            admin,
            "mutation($id: ID!) { signMission(id: $id) { status } }",
            json!({ "id": data["createMission"]["id"] }),
        )
        .await;
        clients.push(client);
    }
    let data = app
        .ok(
            admin,
            "mutation { createClient(input: { name: \"Fromagerie sans mission\" }) { id } }",
            json!({}),
        )
        .await;
    clients.push(data["createClient"]["id"].as_str().expect("id").to_string());
    for (index, client) in clients.iter().enumerate() {
        let data = app
            .ok(
                admin,
                "query($c: ID!) { firm { tasks(clientId: $c, first: 1) { nodes { id } } \
                 informationRequests(clientId: $c, first: 1) { nodes { id } } } }",
                json!({ "c": client }),
            )
            .await;
        if let Some(task) = data["firm"]["tasks"]["nodes"][0]["id"].as_str()
            && index % 2 == 0
        {
            app.ok(
                admin,
                "mutation($id: ID!) { completeTask(id: $id) { status } }",
                json!({ "id": task }),
            )
            .await;
        }
        if let Some(request) = data["firm"]["informationRequests"]["nodes"][0]["id"].as_str()
            && index % 3 == 0
        {
            app.ok(
                admin,
                "mutation($id: ID!) { closeRequest(id: $id) { status } }",
                json!({ "id": request }),
            )
            .await;
        }
    }
    clients
}

/// A nested history with every page field and its entries' links.
const HISTORY: &str = "history(first: 3) { totalCount pageInfo { hasNextPage hasPreviousPage \
                       startCursor endCursor } edges { cursor node { id kind occurredAt \
                       client { name } mission { name } actor { kind } } } }";

/// A nested list of a client's tasks or requests with every page field and its rows' parents.
fn client_work(field: &str, text: &str, arguments: &str) -> String {
    format!(
        "{field}({arguments}) {{ totalCount pageInfo {{ hasNextPage hasPreviousPage startCursor \
         endCursor }} edges {{ cursor node {{ id {text} dueDate status client {{ name }} \
         mission {{ name }} }} }} }}"
    )
}

/// A page of clients with each client's tasks and requests (`Client.tasks`, `Client.requests`)
/// reads each nested list for every client of the page in one statement, whatever the number
/// of clients, and each client's list is exactly what that client's own list answers (the
/// lookup `client(id)` reads it alone, by its own seek): rows, order, cursors, `pageInfo` and
/// `totalCount`, under every order, forward and backward, with filters and after a cursor.
async fn a_clients_page_reads_each_nested_list_in_one_statement(db: TestDb) {
    let app = TestApp::new(db);
    let world = World::build(&app).await;
    let admin = &world.admin_a;
    let clients = clients_with_work(&app, &world).await;
    assert_eq!(clients.len(), 7);

    // The same arguments for both lists: the orders, forward and backward, and a status.
    let shapes = [
        "first: 2",
        "last: 3",
        "first: 3, orderBy: { field: DUE_DATE, direction: DESC }",
        "last: 2, orderBy: { field: STATUS }",
        "first: 2, orderBy: { field: STATUS, direction: DESC }",
        "first: 2, orderBy: { field: CLIENT, direction: DESC }",
        "first: 4, status: OPEN",
    ];
    let mut seen_more = 0;
    let mut totals = std::collections::BTreeSet::new();
    for arguments in shapes {
        let tasks = client_work("tasks", "title", arguments);
        let requests = client_work("requests", "text", arguments);
        let page = format!(
            "{{ firm {{ clients(first: 50) {{ nodes {{ id name {tasks} {requests} {HISTORY} }} }} }} }}"
        );
        app.ok(admin, &page, json!({})).await;
        let (data, cost) = measured(&app, admin, &page).await;
        // The clients, each client's tasks with their parents and counts, its requests too,
        // its history with the entries' clients, missions and actors.
        assert_eq!((cost.data, cost.pings), (4, 0), "{arguments}: {cost:?}");
        let nodes = data["firm"]["clients"]["nodes"].as_array().expect("nodes");
        assert_eq!(nodes.len(), 7, "{data}");
        for node in nodes {
            let alone = app
                .ok(
                    admin,
                    &format!(
                        "query($c: ID!) {{ firm {{ client(id: $c) {{ {tasks} {requests} {HISTORY} }} }} }}"
                    ),
                    json!({ "c": node["id"] }),
                )
                .await;
            assert_eq!(
                node["history"], alone["firm"]["client"]["history"],
                "{}",
                node["name"]
            );
            for list in ["tasks", "requests"] {
                assert_eq!(
                    node[list], alone["firm"]["client"][list],
                    "{arguments}: {list} of {}",
                    node["name"]
                );
                let edges = node[list]["edges"].as_array().expect("edges");
                assert!(
                    edges
                        .iter()
                        .all(|edge| edge["node"]["client"]["name"] == node["name"]),
                    "{arguments}: {node}"
                );
                if node[list]["pageInfo"]["hasNextPage"] == true
                    || node[list]["pageInfo"]["hasPreviousPage"] == true
                {
                    seen_more += 1;
                }
                totals.insert(node[list]["totalCount"].as_i64().expect("count"));
            }
        }
    }
    // The lists were cut for some clients and their counts differ (0 for the client without
    // a mission): the comparison above is not between empty or identical lists.
    assert!(seen_more > 10, "{seen_more}");
    assert!(totals.contains(&0) && totals.len() >= 4, "{totals:?}");

    // After a cursor (one client's, applied to every client's list as to each alone): the
    // counts are then one more statement for the level, not one per client.
    let cursor_of = app
        .ok(
            admin,
            &format!(
                "query($c: ID!) {{ firm {{ client(id: $c) {{ {} }} }} }}",
                client_work("tasks", "title", "first: 1")
            ),
            json!({ "c": clients[5] }),
        )
        .await;
    let cursor = cursor_of["firm"]["client"]["tasks"]["pageInfo"]["endCursor"]
        .as_str()
        .expect("cursor")
        .to_string();
    let tasks = client_work("tasks", "title", &format!("first: 2, after: \"{cursor}\""));
    let page = format!("{{ firm {{ clients(first: 50) {{ nodes {{ id name {tasks} }} }} }} }}");
    app.ok(admin, &page, json!({})).await;
    let (data, cost) = measured(&app, admin, &page).await;
    assert_eq!((cost.data, cost.pings), (3, 0), "{cost:?}");
    let nodes = data["firm"]["clients"]["nodes"].as_array().expect("nodes");
    let mut shown = 0;
    for node in nodes {
        let alone = app
            .ok(
                admin,
                &format!("query($c: ID!) {{ firm {{ client(id: $c) {{ {tasks} }} }} }}"),
                json!({ "c": node["id"] }),
            )
            .await;
        assert_eq!(
            node["tasks"], alone["firm"]["client"]["tasks"],
            "{}",
            node["name"]
        );
        assert_eq!(node["tasks"]["pageInfo"]["hasPreviousPage"], true, "{node}");
        shown += node["tasks"]["edges"].as_array().map_or(0, Vec::len);
    }
    assert!(shown > 4, "{data}");

    // A cursor of another order is refused for the whole page, naming the argument.
    let wrong = format!(
        "{{ firm {{ clients(first: 50) {{ nodes {{ {} }} }} }} }}",
        client_work(
            "tasks",
            "title",
            &format!("first: 2, after: \"{cursor}\", orderBy: {{ field: STATUS }}")
        )
    );
    let response = app.exec(admin, &wrong, json!({})).await;
    assert!(
        error_codes(&response)
            .iter()
            .all(|code| code == "BAD_USER_INPUT")
            && !error_codes(&response).is_empty(),
        "{response}"
    );
}

counted_backend_test!(
    async fn a_clients_page_reads_each_clients_tasks_and_requests_in_one_statement(db: TestDb) {
        a_clients_page_reads_each_nested_list_in_one_statement(db).await;
    }
);

/// `history` under a page of tasks, of requests and of missions reads every row's history
/// in one statement (and, after a cursor, every row's count in one more), each row's
/// history exactly what its own lookup answers: entries, order, cursors, `pageInfo`, counts.
async fn nested_histories_read_every_owners_page_in_one_statement(db: TestDb) {
    let app = TestApp::new(db);
    let world = World::build(&app).await;
    let admin = &world.admin_a;
    clients_with_work(&app, &world).await;
    // More history on some rows: tasks completed and reopened once or twice.
    let data = app
        .ok(
            admin,
            "{ firm { tasks(first: 12) { nodes { id } } } }",
            json!({}),
        )
        .await;
    let tasks = data["firm"]["tasks"]["nodes"]
        .as_array()
        .expect("nodes")
        .clone();
    for (index, task) in tasks.iter().enumerate() {
        for _ in 0..index % 3 {
            for mutation in ["completeTask", "reopenTask"] {
                app.ok(
                    admin,
                    &format!("mutation($id: ID!) {{ {mutation}(id: $id) {{ status }} }}"),
                    json!({ "id": task["id"] }),
                )
                .await;
            }
        }
    }
    let mut seen_more = 0;
    let mut totals = std::collections::BTreeSet::new();
    let kinds = "filter: { kinds: [\"task.completed\", \"mission.signed\", \"request.closed\"] }";
    for (list, lookup) in [
        ("tasks", "task"),
        ("informationRequests", "informationRequest"),
        ("missions", "mission"),
    ] {
        for arguments in [
            "first: 2".to_string(),
            "last: 2".to_string(),
            format!("first: 1, {kinds}"),
        ] {
            let history = format!(
                "history({arguments}) {{ totalCount pageInfo {{ hasNextPage hasPreviousPage \
                 startCursor endCursor }} edges {{ cursor node {{ id kind client {{ name }} \
                 actor {{ kind }} }} }} }}"
            );
            let page = format!("{{ firm {{ {list}(first: 12) {{ nodes {{ id {history} }} }} }} }}");
            app.ok(admin, &page, json!({})).await;
            let (data, cost) = measured(&app, admin, &page).await;
            // The page, then every row's history with its count.
            assert_eq!(
                (cost.data, cost.pings),
                (2, 0),
                "{list} {arguments}: {cost:?}"
            );
            let nodes = data["firm"][list]["nodes"].as_array().expect("nodes");
            assert!(nodes.len() >= 6, "{data}");
            for node in nodes {
                let alone = app
                    .ok(
                        admin,
                        &format!(
                            "query($id: ID!) {{ firm {{ {lookup}(id: $id) {{ {history} }} }} }}"
                        ),
                        json!({ "id": node["id"] }),
                    )
                    .await;
                assert_eq!(
                    node["history"], alone["firm"][lookup]["history"],
                    "{list} {arguments}: {}",
                    node["id"]
                );
                let info = &node["history"]["pageInfo"];
                if info["hasNextPage"] == true || info["hasPreviousPage"] == true {
                    seen_more += 1;
                }
                totals.insert(node["history"]["totalCount"].as_i64().expect("count"));
            }
        }
    }
    assert!(seen_more > 10, "{seen_more}");
    assert!(totals.len() >= 4, "{totals:?}");

    // After a cursor (one task's, applied to every task's history as to each alone).
    let data = app
        .ok(
            admin,
            "query($id: ID!) { firm { task(id: $id) { history(first: 1) { pageInfo { endCursor } } } } }",
            json!({ "id": tasks[11]["id"] }),
        )
        .await;
    let cursor = data["firm"]["task"]["history"]["pageInfo"]["endCursor"]
        .as_str()
        .expect("cursor")
        .to_string();
    let history = format!(
        "history(first: 2, after: \"{cursor}\") {{ totalCount pageInfo {{ hasNextPage \
         hasPreviousPage }} edges {{ cursor node {{ id kind }} }} }}"
    );
    let page = format!("{{ firm {{ tasks(first: 12) {{ nodes {{ id {history} }} }} }} }}");
    app.ok(admin, &page, json!({})).await;
    let (data, cost) = measured(&app, admin, &page).await;
    // The page, every task's history, every task's count.
    assert_eq!((cost.data, cost.pings), (3, 0), "{cost:?}");
    let mut shown = 0;
    for node in data["firm"]["tasks"]["nodes"].as_array().expect("nodes") {
        let alone = app
            .ok(
                admin,
                &format!("query($id: ID!) {{ firm {{ task(id: $id) {{ {history} }} }} }}"),
                json!({ "id": node["id"] }),
            )
            .await;
        assert_eq!(
            node["history"], alone["firm"]["task"]["history"],
            "{}",
            node["id"]
        );
        shown += node["history"]["edges"].as_array().map_or(0, Vec::len);
    }
    assert!(shown > 2, "{data}");
}

counted_backend_test!(
    async fn nested_histories_run_one_statement_per_level(db: TestDb) {
        nested_histories_read_every_owners_page_in_one_statement(db).await;
    }
);
