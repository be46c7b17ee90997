//! Sorting the firm's task and request lists (`orderBy`), on both backends: every order and
//! direction, paged forward with first/after and backward with last/before, gives the rows in
//! the order this test sorts them itself, with an unchanged `totalCount`; a cursor made under
//! one order is refused under another.

use serde_json::{Value, json};

use crate::backend_test;
use rappel::graphql::Caller;

use crate::support::app::{TestApp, World, error_codes};

const FIELDS: [&str; 3] = ["DUE_DATE", "CLIENT", "STATUS"];
const DIRECTIONS: [&str; 2] = ["ASC", "DESC"];

/// One row of a list as the test sorts it: the three sort keys and the id.
#[derive(Debug, Clone)]
struct Row {
    id: i64,
    due: String,
    client: String,
    status: String,
}

fn row(node: &Value) -> Row {
    Row {
        id: crate::support::app::row_id(node["id"].as_str().expect("id")),
        due: node["dueDate"].as_str().expect("dueDate").to_string(),
        client: node["client"]["name"].as_str().expect("client").to_string(),
        status: node["status"].as_str().expect("status").to_string(),
    }
}

/// The ids of `rows` sorted by (key of `field`, id), reversed for DESC.
fn expected(rows: &[Row], field: &str, direction: &str) -> Vec<i64> {
    let mut rows = rows.to_vec();
    rows.sort_by(|a, b| {
        let key = |row: &Row| match field {
            "DUE_DATE" => row.due.clone(),
            "CLIENT" => row.client.clone(),
            _ => row.status.clone(),
        };
        key(a).cmp(&key(b)).then(a.id.cmp(&b.id))
    });
    if direction == "DESC" {
        rows.reverse();
    }
    rows.into_iter().map(|row| row.id).collect()
}

/// A query of `list` (a field of `firm`) with its order, page arguments and filter variables.
fn list_query(list: &str, order_type: &str) -> String {
    format!(
        r#"query($order: {order_type}, $first: Int, $after: String, $last: Int, $before: String) {{ firm {{
            {list}(orderBy: $order, first: $first, after: $after, last: $last, before: $before) {{
                totalCount
                pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }}
                nodes {{ id dueDate status client {{ name }} }}
            }}
        }} }}"#
    )
}

/// Every row of `list`, paged `size` at a time forward (first/after), and then backward
/// (last/before); both must give the same sequence, and every page the same totalCount.
async fn walk(
    app: &TestApp,
    caller: &Caller,
    list: &str,
    order_type: &str,
    order: Value,
    size: i64,
    total: i64,
) -> Vec<i64> {
    let query = list_query(list, order_type);
    let mut forward = Vec::new();
    let mut after = Value::Null;
    loop {
        let data = app
            .ok(
                caller,
                &query,
                json!({ "order": order, "first": size, "after": after }),
            )
            .await;
        let page = &data["firm"][list];
        assert_eq!(
            page["totalCount"], total,
            "{list} {order}: totalCount on every page"
        );
        forward.extend(
            page["nodes"]
                .as_array()
                .expect("nodes")
                .iter()
                .map(|n| row(n).id),
        );
        if !page["pageInfo"]["hasNextPage"]
            .as_bool()
            .expect("hasNextPage")
        {
            break;
        }
        after = page["pageInfo"]["endCursor"].clone();
        assert!(forward.len() as i64 <= total, "{list} {order}: paging ends");
    }
    let mut backward = Vec::new();
    let mut before = Value::Null;
    loop {
        let data = app
            .ok(
                caller,
                &query,
                json!({ "order": order, "last": size, "before": before }),
            )
            .await;
        let page = &data["firm"][list];
        assert_eq!(
            page["totalCount"], total,
            "{list} {order}: totalCount on every page"
        );
        let ids: Vec<i64> = page["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .map(|n| row(n).id)
            .collect();
        backward.splice(0..0, ids);
        if !page["pageInfo"]["hasPreviousPage"]
            .as_bool()
            .expect("hasPreviousPage")
        {
            break;
        }
        before = page["pageInfo"]["startCursor"].clone();
        assert!(
            backward.len() as i64 <= total,
            "{list} {order}: paging ends"
        );
    }
    assert_eq!(
        forward, backward,
        "{list} {order}: forward and backward pages agree"
    );
    forward
}

/// Every row of `list` in one page (default order), as the test's rows.
async fn all_rows(app: &TestApp, caller: &Caller, list: &str, order_type: &str) -> (Vec<Row>, i64) {
    let data = app
        .ok(
            caller,
            &list_query(list, order_type),
            json!({ "first": 100 }),
        )
        .await;
    let page = &data["firm"][list];
    let rows: Vec<Row> = page["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(row)
        .collect();
    let total = page["totalCount"].as_i64().expect("totalCount");
    assert_eq!(
        rows.len() as i64,
        total,
        "{list}: one page holds everything"
    );
    (rows, total)
}

backend_test! {
    async fn every_order_and_direction_pages_through_the_rows_as_sorting_them_here_does(db: TestDb) {
        let app = TestApp::new(db);
        let world = World::build(&app).await;
        let admin = &world.admin_a;
        // Mixed statuses, so STATUS has ties and changes; both clients hold work.
        app.ok(&world.contact_a, "mutation($id: ID!) { answerRequest(input: { id: $id, message: \"Ci-joint\" }) { status } }",
            json!({ "id": world.firm_a.request })).await;
        app.ok(admin, "mutation($id: ID!) { completeTask(id: $id) { status } }",
            json!({ "id": world.firm_a.task })).await;

        for (list, order_type) in [("tasks", "TaskOrder"), ("informationRequests", "RequestOrder")] {
            let (rows, total) = all_rows(&app, admin, list, order_type).await;
            assert!(total >= 5, "{list}: the fixture has enough rows to page ({total})");
            assert!(rows.iter().any(|r| r.status != rows[0].status), "{list}: mixed statuses");
            assert!(rows.iter().any(|r| r.client != rows[0].client), "{list}: two clients");
            // No orderBy: today's order, DUE_DATE ASC.
            let default = walk(&app, admin, list, order_type, Value::Null, 2, total).await;
            assert_eq!(default, expected(&rows, "DUE_DATE", "ASC"), "{list}: the default order");
            for field in FIELDS {
                for direction in DIRECTIONS {
                    let order = json!({ "field": field, "direction": direction });
                    for size in [1, 2, 3] {
                        let seen = walk(&app, admin, list, order_type, order.clone(), size, total).await;
                        assert_eq!(seen, expected(&rows, field, direction), "{list} by {field} {direction}, pages of {size}");
                    }
                }
            }
        }
    }
}

backend_test! {
    async fn a_cursor_made_under_one_order_is_refused_under_another(db: TestDb) {
        let app = TestApp::new(db);
        let world = World::build(&app).await;
        let admin = &world.admin_a;
        for (list, order_type) in [("tasks", "TaskOrder"), ("informationRequests", "RequestOrder")] {
            let query = list_query(list, order_type);
            let by_client = json!({ "field": "CLIENT", "direction": "ASC" });
            let data = app.ok(admin, &query, json!({ "order": by_client, "first": 1 })).await;
            let cursor = data["firm"][list]["pageInfo"]["endCursor"].clone();
            assert!(cursor.is_string(), "{list}: a cursor");
            // The same order takes it.
            app.ok(admin, &query, json!({ "order": by_client, "first": 1, "after": cursor })).await;
            for (other, argument) in [
                (json!({ "field": "CLIENT", "direction": "DESC" }), "after"),
                (json!({ "field": "STATUS", "direction": "ASC" }), "after"),
                (Value::Null, "before"),
            ] {
                let variables = if argument == "after" {
                    json!({ "order": other, "first": 1, "after": cursor })
                } else {
                    json!({ "order": other, "last": 1, "before": cursor })
                };
                let response = app.exec(admin, &query, variables).await;
                assert_eq!(error_codes(&response), vec!["BAD_USER_INPUT"], "{list} {other}: {response}");
                let message = response["errors"][0]["message"].as_str().expect("message");
                assert!(message.contains(argument) && message.contains("orderBy"), "{list}: names {argument}: {message}");
                assert!(response["data"].is_null() || response["data"]["firm"].is_null(), "{list}: no page");
            }
        }
        // The client's own lists take orderBy too, with the same cursors rule.
        let query = r#"query($id: ID!, $order: TaskOrder, $after: String) { firm { client(id: $id) {
            tasks(orderBy: $order, first: 1, after: $after) { totalCount pageInfo { endCursor } nodes { id status } }
        } } }"#;
        let by_status = json!({ "field": "STATUS", "direction": "DESC" });
        let data = app.ok(admin, query, json!({ "id": world.firm_a.client, "order": by_status })).await;
        let cursor = data["firm"]["client"]["tasks"]["pageInfo"]["endCursor"].clone();
        let response = app.exec(admin, query, json!({ "id": world.firm_a.client, "after": cursor })).await;
        assert_eq!(error_codes(&response), vec!["BAD_USER_INPUT"], "{response}");
    }
}
