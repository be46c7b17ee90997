//! Issue 10, the API as GraphQL developers expect it: GraphQL over HTTP to the letter (media
//! types, GET, status codes, error codes), the playground served offline by Rappel itself,
//! CORS by configuration, spec-correct nulls in both views, the root types' names, and a valid
//! schema for every caller. The outside checks with graphql-js, the graphql-http audit and
//! Chromium live in tests/web (run by .ci/run).

use std::collections::BTreeSet;

use rappel::graphql::Caller;
use serde_json::{Value, json};

use crate::backend_test;
use crate::support::app::{TestApp, World, error_codes};
use crate::support::server::ServerProcess;

/// A server with the demo seeded (its tokens printed) on a fresh SQLite file.
fn demo_server(folder: &tempfile::TempDir, extra_env: &[(&str, &str)]) -> (ServerProcess, String) {
    let url = folder.path().join("http.db").to_string_lossy().to_string();
    let mail = folder.path().join("mail").to_string_lossy().to_string();
    let mut env = vec![
        ("RAPPEL_DEMO", "true"),
        ("RAPPEL_SMTP_MAIL_DIR", mail.as_str()),
    ];
    env.extend_from_slice(extra_env);
    let server = ServerProcess::start(&url, &env);
    let staff_token = server
        .printed_lines()
        .iter()
        .find_map(|line| {
            line.split_once("staff token (firm view):")
                .map(|(_, token)| token.trim().to_string())
        })
        .expect("the demo's staff token is printed");
    (server, staff_token)
}

fn content_type(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

async fn post(
    server: &ServerProcess,
    accept: Option<&str>,
    content: Option<&str>,
    body: &str,
) -> (u16, String, String) {
    let mut request = reqwest::Client::new()
        .post(format!("{}/graphql", server.base_url))
        .body(body.to_string());
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    if let Some(content) = content {
        request = request.header("content-type", content);
    }
    let response = request.send().await.expect("sent");
    let status = response.status().as_u16();
    let media = content_type(&response);
    (status, media, response.text().await.expect("body"))
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|error| panic!("{error}: {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_negotiate_their_media_type_and_request_errors_carry_no_data() {
    let folder = tempfile::tempdir().expect("folder");
    let (server, _) = demo_server(&folder, &[]);
    let query = r#"{"query": "{ viewer { id } __typename }"}"#;
    const JSON: &str = "application/json";
    const GRAPHQL_JSON: &str = "application/graphql-response+json";

    for accept in [None, Some("*/*"), Some(JSON)] {
        let (status, media, body) = post(&server, accept, Some(JSON), query).await;
        assert_eq!(status, 200, "{accept:?}");
        assert!(media.starts_with(JSON), "{accept:?} answers {media}");
        // Fields come in the order the query asked for them.
        assert!(
            body.find("viewer") < body.find("__typename"),
            "field order kept: {body}"
        );
    }
    let (status, media, body) = post(&server, Some(GRAPHQL_JSON), Some(JSON), query).await;
    assert_eq!(
        (status, media.starts_with(GRAPHQL_JSON)),
        (200, true),
        "{body}"
    );

    // A document that does not parse: one line, GRAPHQL_PARSE_FAILED, no data; 400 for clients
    // that asked for application/graphql-response+json, 200 for application/json.
    for (accept, expected) in [(GRAPHQL_JSON, 400), (JSON, 200)] {
        let (status, _, body) = post(
            &server,
            Some(accept),
            Some(JSON),
            r#"{"query": "{ viewer { id "}"#,
        )
        .await;
        let answer = json_of(&body);
        assert_eq!(status, expected, "{accept}: {body}");
        assert_eq!(error_codes(&answer), ["GRAPHQL_PARSE_FAILED"], "{body}");
        assert!(answer.get("data").is_none(), "no data entry: {body}");
        let message = answer["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(
            !message.contains('\n') && message.starts_with("Syntax error at line 1"),
            "one line: {message}"
        );
    }
    // A document that does not validate.
    for (accept, expected) in [(GRAPHQL_JSON, 400), (JSON, 200)] {
        let (status, _, body) = post(
            &server,
            Some(accept),
            Some(JSON),
            r#"{"query": "{ nope }"}"#,
        )
        .await;
        let answer = json_of(&body);
        assert_eq!(status, expected, "{accept}: {body}");
        assert_eq!(
            error_codes(&answer),
            ["GRAPHQL_VALIDATION_FAILED"],
            "{body}"
        );
        assert!(answer.get("data").is_none(), "no data entry: {body}");
    }
    // A well-formed document with a value of the wrong type: the caller's input.
    let (status, _, body) = post(
        &server,
        Some(GRAPHQL_JSON),
        Some(JSON),
        r#"{"query": "{ __type(name: 7) { name } }"}"#,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(error_codes(&json_of(&body)), ["BAD_USER_INPUT"], "{body}");

    // A field error is no request error: 200 and data, whatever the media type.
    let (status, _, body) = post(
        &server,
        Some(GRAPHQL_JSON),
        Some(JSON),
        r#"{"query": "{ viewer { id } firm { name } }"}"#,
    )
    .await;
    let answer = json_of(&body);
    assert_eq!(status, 200, "{body}");
    assert_eq!(answer["data"], json!({ "viewer": null, "firm": null }));
    assert_eq!(error_codes(&answer), ["UNAUTHENTICATED"]);

    // Bodies that are not GraphQL requests: 400; not JSON at all: 415; nothing acceptable: 406.
    for body in [
        r#"{ "not JSON"#,
        r#"{"qeury": "{ __typename }"}"#,
        r#"{"query": 7}"#,
        r#"{"query": "{ __typename }", "variables": "x"}"#,
    ] {
        let (status, _, answer) = post(&server, None, Some(JSON), body).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(error_codes(&json_of(&answer)), ["BAD_USER_INPUT"]);
    }
    for content in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let (status, _, answer) = post(&server, None, content, query).await;
        assert_eq!(status, 415, "{content:?}: {answer}");
    }
    let (status, _, _) = post(&server, Some("image/png"), Some(JSON), query).await;
    assert_eq!(status, 406);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_executes_queries_refuses_mutations_and_gives_browsers_the_playground() {
    let folder = tempfile::tempdir().expect("folder");
    let (server, staff_token) = demo_server(&folder, &[]);
    let client = reqwest::Client::new();
    let endpoint = format!("{}/graphql", server.base_url);
    let categories = r#"{ firm { categories { nodes { name } } } }"#;
    let get = |query: &str, accept: &str| {
        client
            .get(&endpoint)
            .query(&[("query", query)])
            .header("accept", accept)
            .bearer_auth(&staff_token)
            .send()
    };

    let response = get(categories, "application/json").await.expect("GET");
    assert_eq!(response.status().as_u16(), 200);
    let before: Value = response.json().await.expect("JSON");
    assert!(
        before["data"]["firm"]["categories"]["nodes"].is_array(),
        "GET runs the query: {before}"
    );

    // A mutation over GET is refused with 405 and `Allow: POST`, and changes nothing.
    let mutation = r#"mutation { createCategory(input: { name: "Par GET" }) { id } }"#;
    for accept in ["application/json", "application/graphql-response+json"] {
        let response = get(mutation, accept).await.expect("GET");
        assert_eq!(response.status().as_u16(), 405, "{accept}");
        assert_eq!(
            response
                .headers()
                .get("allow")
                .and_then(|v| v.to_str().ok()),
            Some("POST")
        );
        let answer: Value = response.json().await.expect("JSON");
        assert_eq!(error_codes(&answer), ["BAD_USER_INPUT"], "{answer}");
    }
    let after: Value = get(categories, "application/json")
        .await
        .expect("GET")
        .json()
        .await
        .expect("JSON");
    assert_eq!(before, after, "the mutation did not run");

    // Variables in the URL, as JSON.
    let response = client
        .get(&endpoint)
        .query(&[
            ("query", "query($n: String!) { __type(name: $n) { name } }"),
            ("variables", r#"{"n": "Query"}"#),
        ])
        .send()
        .await
        .expect("GET");
    let answer: Value = response.json().await.expect("JSON");
    assert_eq!(answer["data"]["__type"]["name"], "Query", "{answer}");

    // A browser gets the playground: Rappel's own files only, under a strict policy.
    let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
    let page = client
        .get(&endpoint)
        .header("accept", browser)
        .send()
        .await
        .expect("GET");
    assert_eq!(page.status().as_u16(), 200);
    let policy = page
        .headers()
        .get("content-security-policy")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(policy.contains("default-src 'none'"), "{policy}");
    assert!(policy.contains("script-src 'self'"), "{policy}");
    assert!(policy.contains("connect-src 'self'"), "{policy}");
    let html = page.text().await.expect("page");
    assert!(
        !html.contains("://"),
        "the page names no other host: {html}"
    );
    assert!(
        html.contains(&format!("Bearer {staff_token}")),
        "the demo's staff token is prefilled in the Headers tab"
    );
    let sources: Vec<&str> = html
        .split("src=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .collect();
    assert!(sources.len() >= 4, "{sources:?}");
    for source in sources {
        let asset = client
            .get(format!("{}{source}", server.base_url))
            .send()
            .await
            .expect("asset");
        assert_eq!(asset.status().as_u16(), 200, "{source}");
        assert!(
            content_type(&asset).starts_with("text/javascript"),
            "{source}"
        );
    }
    let missing = client
        .get(format!("{}/graphql/assets/nope.js", server.base_url))
        .send()
        .await
        .expect("GET");
    assert_eq!(missing.status().as_u16(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_answers_preflights_only_for_the_configured_origins() {
    let folder = tempfile::tempdir().expect("folder");
    let (server, _) = demo_server(
        &folder,
        &[(
            "RAPPEL_HTTP_CORS_ORIGINS",
            r#"["https://app.cabinet.example"]"#,
        )],
    );
    let client = reqwest::Client::new();
    let endpoint = format!("{}/graphql", server.base_url);
    let preflight = |origin: &str| {
        client
            .request(reqwest::Method::OPTIONS, &endpoint)
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type",
            )
            .send()
    };
    let allowed = preflight("https://app.cabinet.example")
        .await
        .expect("preflight");
    assert!(allowed.status().is_success(), "{}", allowed.status());
    let header = |response: &reqwest::Response, name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_ascii_lowercase)
    };
    assert_eq!(
        header(&allowed, "access-control-allow-origin").as_deref(),
        Some("https://app.cabinet.example")
    );
    let methods = header(&allowed, "access-control-allow-methods").unwrap_or_default();
    assert!(methods.contains("post"), "{methods}");
    let headers = header(&allowed, "access-control-allow-headers").unwrap_or_default();
    assert!(
        headers.contains("authorization") && headers.contains("content-type"),
        "{headers}"
    );
    let other = preflight("https://evil.example").await.expect("preflight");
    assert_eq!(header(&other, "access-control-allow-origin"), None);
    let post = client
        .post(&endpoint)
        .header("origin", "https://app.cabinet.example")
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .expect("POST");
    assert_eq!(
        header(&post, "access-control-allow-origin").as_deref(),
        Some("https://app.cabinet.example")
    );

    // The default: no CORS at all.
    let plain_folder = tempfile::tempdir().expect("folder");
    let (plain, _) = demo_server(&plain_folder, &[]);
    let response = client
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/graphql", plain.base_url),
        )
        .header("origin", "https://app.cabinet.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .expect("preflight");
    assert_eq!(header(&response, "access-control-allow-origin"), None);
}

/// Every named type that a type's fields, arguments, input fields, interfaces and possible
/// types mention, from an introspection answer.
fn referenced_types(introspection: &Value) -> BTreeSet<String> {
    fn named(type_ref: &Value) -> Option<String> {
        match type_ref["ofType"] {
            Value::Null => type_ref["name"].as_str().map(str::to_string),
            ref inner => named(inner),
        }
    }
    let mut names = BTreeSet::new();
    for schema_type in introspection["__schema"]["types"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let mut refs = Vec::new();
        for field in schema_type["fields"].as_array().into_iter().flatten() {
            refs.push(&field["type"]);
            for arg in field["args"].as_array().into_iter().flatten() {
                refs.push(&arg["type"]);
            }
        }
        for key in ["inputFields", "interfaces", "possibleTypes"] {
            for item in schema_type[key].as_array().into_iter().flatten() {
                refs.push(if key == "inputFields" {
                    &item["type"]
                } else {
                    item
                });
            }
        }
        names.extend(refs.into_iter().filter_map(named));
    }
    names
}

const TYPE_REF: &str =
    "name kind ofType { name kind ofType { name kind ofType { name kind ofType { name kind } } } }";

async fn introspect(app: &TestApp, caller: &Caller) -> Value {
    let query = format!(
        "{{ __schema {{ queryType {{ name }} mutationType {{ name }} subscriptionType {{ name }} \
         types {{ name kind fields {{ name type {{ {TYPE_REF} }} args {{ name type {{ {TYPE_REF} }} }} }} \
         inputFields {{ name type {{ {TYPE_REF} }} }} interfaces {{ {TYPE_REF} }} \
         possibleTypes {{ {TYPE_REF} }} enumValues {{ name }} }} }} }}"
    );
    app.ok(caller, &query, json!({})).await
}

backend_test!(
    async fn every_caller_introspects_a_complete_schema_and_a_contact_sees_nothing_firm_only(
        db: TestDb,
    ) {
        let app = TestApp::new(db);
        let world = World::build(&app).await;
        let callers = [
            ("anonymous", Caller::Anonymous),
            ("contact", world.contact_a.clone()),
            ("member", world.member_a.clone()),
            ("admin", world.admin_a.clone()),
        ];
        for (name, caller) in &callers {
            let introspection = introspect(&app, caller).await;
            let schema = &introspection["__schema"];
            assert_eq!(schema["queryType"]["name"], "Query", "{name}");
            assert_eq!(schema["mutationType"]["name"], "Mutation", "{name}");
            assert_eq!(schema["subscriptionType"]["name"], "Subscription", "{name}");
            let listed: BTreeSet<String> = schema["types"]
                .as_array()
                .expect("types")
                .iter()
                .filter_map(|schema_type| schema_type["name"].as_str().map(str::to_string))
                .collect();
            let missing: Vec<_> = referenced_types(&introspection)
                .into_iter()
                .filter(|referenced| !listed.contains(referenced))
                .collect();
            assert!(
                missing.is_empty(),
                "the {name}'s schema mentions types it does not list: {missing:?}"
            );
            if *name == "contact" {
                let text = introspection.to_string();
                for firm_only in [
                    "\"FirmView\"",
                    "\"Task\"",
                    "\"InformationRequest\"",
                    "\"WebhookEndpointWithSecret\"",
                    "\"createWebhookEndpoint\"",
                    "\"redeliver\"",
                    "\"inviteStaffMember\"",
                    "\"firm\"",
                    "\"role\"",
                    "\"ADMIN\"",
                ] {
                    assert!(
                        !text.contains(firm_only),
                        "a contact's schema names {firm_only}"
                    );
                }
                assert!(text.contains("\"answerRequest\""), "its own mutation");
            }
        }
    }
);

backend_test!(
    async fn nulls_follow_the_spec_in_the_firm_view(db: TestDb) {
        let app = TestApp::new(db);
        let world = World::build(&app).await;

        // A non-null field's error nulls its nearest nullable parent (`firm`), not the field's
        // neighbours elsewhere: `viewer` still answers, and the error is reported once.
        let answer = app
            .exec(
                &world.admin_a,
                r#"{ viewer { kind } firm { name m: mission(id: "TWlzc2lvbjo5OQ") { name } } }"#,
                json!({}),
            )
            .await;
        assert_eq!(
            answer["data"],
            json!({ "viewer": { "kind": "STAFF" }, "firm": null }),
            "{answer}"
        );
        assert_eq!(error_codes(&answer), ["NOT_FOUND"]);
        assert_eq!(answer["errors"][0]["path"], json!(["firm", "m"]));

        // An error in a nullable field makes that field null (present, not absent).
        let answer = app
            .exec(
                &world.contact_a,
                "{ viewer { kind } firm { name } }",
                json!({}),
            )
            .await;
        assert_eq!(
            answer["data"],
            json!({ "viewer": { "kind": "CONTACT" }, "firm": null }),
            "{answer}"
        );
        assert_eq!(error_codes(&answer), ["FORBIDDEN"]);
        assert_eq!(answer["errors"][0]["path"], json!(["firm"]));

        // A non-null root field's error nulls `data` itself (a mutation's fields are non-null).
        let answer = app
            .exec(
                &Caller::Anonymous,
                r#"mutation { createCategory(input: { name: "X" }) { id } }"#,
                json!({}),
            )
            .await;
        assert_eq!(answer["data"], Value::Null, "{answer}");
        assert_eq!(error_codes(&answer), ["UNAUTHENTICATED"]);

        // Without errors nothing changes.
        let data = app
            .ok(
                &world.admin_a,
                "{ firm { name } viewer { kind } }",
                json!({}),
            )
            .await;
        assert!(data["firm"]["name"].is_string(), "{data}");
    }
);

backend_test!(
    async fn nulls_follow_the_spec_in_the_client_view(db: TestDb) {
        let app = TestApp::new(db);
        let world = World::build(&app).await;

        let answer = app
            .exec(
                &world.contact_a,
                r#"{ viewer { kind } client { clientName r: request(id: "SW5mb3JtYXRpb25SZXF1ZXN0Ojk5") { text } } }"#,
                json!({}),
            )
            .await;
        assert_eq!(
            answer["data"],
            json!({ "viewer": { "kind": "CONTACT" }, "client": null }),
            "{answer}"
        );
        assert_eq!(error_codes(&answer), ["NOT_FOUND"]);
        assert_eq!(answer["errors"][0]["path"], json!(["client", "r"]));

        let answer = app
            .exec(
                &world.admin_a,
                "{ viewer { kind } client { clientName } }",
                json!({}),
            )
            .await;
        assert_eq!(
            answer["data"],
            json!({ "viewer": { "kind": "STAFF" }, "client": null }),
            "{answer}"
        );
        assert_eq!(error_codes(&answer), ["FORBIDDEN"]);
        assert_eq!(answer["errors"][0]["path"], json!(["client"]));

        // A contact's mutation refused: the non-null root field nulls `data`.
        let answer = app
            .exec(
                &world.contact_a,
                r#"mutation { answerRequest(input: { id: "SW5mb3JtYXRpb25SZXF1ZXN0Ojk5", message: "x" }) { id } }"#,
                json!({}),
            )
            .await;
        assert_eq!(answer["data"], Value::Null, "{answer}");
        assert_eq!(error_codes(&answer), ["NOT_FOUND"]);

        let data = app
            .ok(
                &world.contact_a,
                "{ client { clientName requests { nodes { id } } } }",
                json!({}),
            )
            .await;
        assert!(data["client"]["clientName"].is_string(), "{data}");
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persisted_queries_are_found_by_hash_once_their_text_was_sent_and_get_still_refuses_mutations()
 {
    use sha2::{Digest, Sha256};
    let folder = tempfile::tempdir().expect("folder");
    let (server, staff_token) = demo_server(&folder, &[]);
    let client = reqwest::Client::new();
    let endpoint = format!("{}/graphql", server.base_url);
    let query = "{ firm { categories { totalCount } } }";
    let hash = format!("{:x}", Sha256::digest(query.as_bytes()));
    let persisted = json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } });
    let post = |body: Value| {
        client
            .post(&endpoint)
            .header("accept", "application/json")
            .bearer_auth(&staff_token)
            .json(&body)
            .send()
    };

    // The hash alone, before the text was ever sent: PERSISTED_QUERY_NOT_FOUND.
    let answer: Value = post(json!({ "extensions": persisted }))
        .await
        .expect("POST")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        error_codes(&answer),
        ["PERSISTED_QUERY_NOT_FOUND"],
        "{answer}"
    );
    assert_eq!(answer["errors"][0]["message"], "PersistedQueryNotFound");

    // A text whose hash is another: refused, and not kept.
    let answer: Value = post(json!({ "query": "{ __typename }", "extensions": persisted }))
        .await
        .expect("POST")
        .json()
        .await
        .expect("JSON");
    assert_eq!(error_codes(&answer), ["BAD_USER_INPUT"], "{answer}");

    // The text with its hash runs and is kept; then the hash alone runs it, by POST and GET.
    let answer: Value = post(json!({ "query": query, "extensions": persisted }))
        .await
        .expect("POST")
        .json()
        .await
        .expect("JSON");
    let expected = answer["data"].clone();
    assert!(
        expected["firm"]["categories"]["totalCount"].is_number(),
        "{answer}"
    );
    let answer: Value = post(json!({ "extensions": persisted }))
        .await
        .expect("POST")
        .json()
        .await
        .expect("JSON");
    assert_eq!(answer["data"], expected, "{answer}");
    let answer: Value = client
        .get(&endpoint)
        .query(&[("extensions", persisted.to_string())])
        .header("accept", "application/json")
        .bearer_auth(&staff_token)
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("JSON");
    assert_eq!(answer["data"], expected, "{answer}");

    // A persisted mutation is still a mutation: GET refuses it (405) and it does not run.
    let mutation = r#"mutation { createCategory(input: { name: "Persistée" }) { id } }"#;
    let mutation_hash = format!("{:x}", Sha256::digest(mutation.as_bytes()));
    let persisted_mutation =
        json!({ "persistedQuery": { "version": 1, "sha256Hash": mutation_hash } });
    let answer: Value = post(json!({ "query": mutation, "extensions": persisted_mutation }))
        .await
        .expect("POST")
        .json()
        .await
        .expect("JSON");
    assert!(
        answer["data"]["createCategory"]["id"].is_string(),
        "{answer}"
    );
    let response = client
        .get(&endpoint)
        .query(&[("extensions", persisted_mutation.to_string())])
        .header("accept", "application/json")
        .bearer_auth(&staff_token)
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status().as_u16(), 405);
    let answer: Value = post(json!({ "extensions": persisted }))
        .await
        .expect("POST")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        answer["data"]["firm"]["categories"]["totalCount"],
        expected["firm"]["categories"]["totalCount"]
            .as_i64()
            .expect("count")
            + 1,
        "one category more (the POST), not two: {answer}"
    );
}
