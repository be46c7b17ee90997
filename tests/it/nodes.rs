//! Global ids and `node`/`nodes`: every id the API hands out reads its object back, in the
//! caller's own view only; id arguments take only the global id of their type.

use rappel::graphql::Caller;
use serde_json::{Value, json};

use crate::backend_test;
use crate::support::app::{Kind, TestApp, World, error_codes, gid, row_id};

const NODES: &str = "query($ids: [ID!]!) { nodes(ids: $ids) { __typename id } }";
const NODE: &str = "query($id: ID!) { node(id: $id) { __typename id } }";

async fn nodes(app: &TestApp, caller: &Caller, ids: &[&str]) -> Vec<Value> {
    let data = app.ok(caller, NODES, json!({ "ids": ids })).await;
    data["nodes"].as_array().expect("a list").clone()
}

backend_test! {
    async fn node_and_nodes_read_every_firm_object_back_by_its_global_id(db: TestDb) {
        let app = TestApp::new(db);
        let world = World::build(&app).await;
        let a = &world.firm_a;
        let firm = app.ok(&world.admin_a, "{ firm { id } }", json!({})).await["firm"]["id"]
            .as_str().expect("id").to_string();
        let history = app.ok(&world.admin_a, "{ firm { history(first: 1) { nodes { id } } } }", json!({})).await
            ["firm"]["history"]["nodes"][0]["id"].as_str().expect("an entry").to_string();
        let expected = [
            (firm.as_str(), "FirmView"),
            (a.category.as_str(), "Category"),
            (a.service.as_str(), "Service"),
            (a.client.as_str(), "Client"),
            (a.contact.as_str(), "Contact"),
            (a.mission.as_str(), "Mission"),
            (a.task.as_str(), "Task"),
            (a.request.as_str(), "InformationRequest"),
            (a.endpoint.as_str(), "WebhookEndpoint"),
            (a.delivery.as_str(), "Delivery"),
            (a.held_reply.as_str(), "HeldReply"),
            (history.as_str(), "HistoryEntry"),
            (world.member_a_id.as_str(), "StaffMember"),
        ];
        let ids: Vec<&str> = expected.iter().map(|(id, _)| *id).collect();
        let found = nodes(&app, &world.admin_a, &ids).await;
        for ((id, typename), node) in expected.iter().zip(&found) {
            assert_eq!(node, &json!({ "__typename": typename, "id": id }), "{id}");
            let one = app.ok(&world.admin_a, NODE, json!({ "id": id })).await;
            assert_eq!(&one["node"], node);
        }
        // Nested fields read through the interface like anywhere else.
        let data = app.ok(&world.admin_a, "query($id: ID!) { node(id: $id) { ... on Task { title client { id } } } }",
            json!({ "id": a.task })).await;
        assert_eq!(data["node"]["client"]["id"], a.client.as_str());

        // Another firm's ids, malformed ids, an id asked twice: null where nothing, in order.
        let b = &world.firm_b;
        let found = nodes(&app, &world.admin_a, &[&b.task, "garbage", &a.task, &b.client, "12", &a.task]).await;
        let types: Vec<&Value> = found.iter().map(|node| &node["__typename"]).collect();
        assert_eq!(types, [&Value::Null, &Value::Null, &json!("Task"), &Value::Null, &Value::Null, &json!("Task")]);
        let data = app.exec(&world.admin_a, NODE, json!({ "id": b.request })).await;
        assert_eq!(data["data"]["node"], Value::Null);
        assert!(error_codes(&data).is_empty(), "{data}");
        // A deleted object is null too.
        app.ok(&world.admin_a, "mutation($id: ID!) { deleteWebhookEndpoint(id: $id) }", json!({ "id": a.endpoint })).await;
        let data = app.ok(&world.admin_a, NODE, json!({ "id": a.endpoint })).await;
        assert_eq!(data["node"], Value::Null);

        // At most 100 ids; anonymous callers are refused.
        let many: Vec<String> = (1..=101).map(|n| gid(Kind::Task, n)).collect();
        let refused = app.exec(&world.admin_a, NODES, json!({ "ids": many })).await;
        assert_eq!(error_codes(&refused), ["BAD_USER_INPUT"], "{refused}");
        assert_eq!(refused["errors"][0]["extensions"]["field"], "ids");
        let anonymous = app.exec(&Caller::Anonymous, NODE, json!({ "id": a.task })).await;
        assert_eq!(error_codes(&anonymous), ["UNAUTHENTICATED"]);
    }
}

backend_test! {
    async fn a_contact_reaches_only_its_own_requests_and_answers_through_node(db: TestDb) {
        let app = TestApp::new(db);
        let world = World::build(&app).await;
        let (a, b) = (&world.firm_a, &world.firm_b);
        let answered = app.ok(&world.contact_a,
            "mutation($id: ID!) { answerRequest(input: { id: $id, message: \"Ci-joint\" }) { id answers { nodes { id } } } }",
            json!({ "id": a.request })).await;
        // The client view's request has the firm view's id: one id per object.
        assert_eq!(answered["answerRequest"]["id"], a.request.as_str());
        let answer = answered["answerRequest"]["answers"]["nodes"][0]["id"].as_str().expect("answer").to_string();
        let found = nodes(&app, &world.contact_a, &[&a.request, &answer]).await;
        assert_eq!(found, [
            json!({ "__typename": "ClientRequest", "id": a.request }),
            json!({ "__typename": "ClientAnswer", "id": answer }),
        ]);
        // The firm reads the same ids as its own types.
        let found = nodes(&app, &world.admin_a, &[&a.request, &answer]).await;
        assert_eq!(found[0]["__typename"], "InformationRequest");
        assert_eq!(found[1]["__typename"], "RequestAnswer");
        // Never a task, a firm object, another client's request or another firm's.
        let firm_only = [&a.task, &a.client, &a.contact, &a.mission, &a.service, &a.delivery,
            &a.other_client_request, &b.request];
        let ids: Vec<&str> = firm_only.iter().map(|id| id.as_str()).collect();
        let found = nodes(&app, &world.contact_a, &ids).await;
        assert!(found.iter().all(Value::is_null), "{found:?}");
    }
}

backend_test! {
    async fn id_arguments_take_only_the_global_id_of_their_type(db: TestDb) {
        let app = TestApp::new(db);
        let world = World::build(&app).await;
        let (a, b) = (&world.firm_a, &world.firm_b);
        let task = "query($id: ID!) { firm { task(id: $id) { id } } }";
        let wrong = app.exec(&world.admin_a, task, json!({ "id": a.client })).await;
        assert_eq!(error_codes(&wrong), ["BAD_USER_INPUT"], "{wrong}");
        assert_eq!(wrong["errors"][0]["message"], "expected a Task id, got a Client id");
        for malformed in ["12".to_string(), "garbage".into(), format!("{}=", a.task), String::new()] {
            let answer = app.exec(&world.admin_a, task, json!({ "id": malformed })).await;
            assert_eq!(error_codes(&answer), ["BAD_USER_INPUT"], "{malformed}: {answer}");
        }
        let foreign = app.exec(&world.admin_a, task, json!({ "id": b.task })).await;
        assert_eq!(error_codes(&foreign), ["NOT_FOUND"], "{foreign}");
        let data = app.ok(&world.admin_a, task, json!({ "id": a.task })).await;
        assert_eq!(data["firm"]["task"]["id"], a.task.as_str());
        // Nothing is written by a refused mutation.
        let close = "mutation($id: ID!) { closeRequest(id: $id) { status } }";
        let refused = app.exec(&world.admin_a, close, json!({ "id": a.task })).await;
        assert_eq!(error_codes(&refused), ["BAD_USER_INPUT"]);
        let data = app.ok(&world.admin_a, "query($id: ID!) { firm { informationRequest(id: $id) { status } } }",
            json!({ "id": a.request })).await;
        assert_eq!(data["firm"]["informationRequest"]["status"], "OPEN");
        // A contact's messages name only the client view's types.
        let answer = app.exec(&world.contact_a, "query($id: ID!) { client { request(id: $id) { id } } }",
            json!({ "id": a.task })).await;
        assert_eq!(error_codes(&answer), ["BAD_USER_INPUT"]);
        assert_eq!(answer["errors"][0]["message"], "expected a ClientRequest id, got an id of another type");
    }
}

backend_test! {
    async fn ids_in_a_delivery_payload_resolve_through_node(db: TestDb) {
        let app = TestApp::new(db);
        let world = World::build(&app).await;
        let Caller::Staff(admin) = &world.admin_a else { panic!("staff") };
        let mut conn = app.db.pool.get().await.expect("connection");
        let rows = rappel::db::nodes::deliveries_by_id(&mut conn.as_db(), admin.firm_id, &[row_id(&world.firm_a.delivery)])
            .await
            .expect("the delivery");
        drop(conn);
        let payload: Value = serde_json::from_str(&rows[0].payload).expect("JSON");
        let data = &payload["data"];
        let ids = [data["id"].as_str().expect("id"), data["clientId"].as_str().expect("client"), data["firmId"].as_str().expect("firm")];
        let found = nodes(&app, &world.admin_a, &ids).await;
        let types: Vec<&Value> = found.iter().map(|node| &node["__typename"]).collect();
        assert_eq!(types, ["InformationRequest", "Client", "FirmView"], "{payload}");
        assert_eq!(found[1]["id"], data["clientId"]);
    }
}
