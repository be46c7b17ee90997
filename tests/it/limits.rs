//! Issue 9, request-level denial of service: no single request can freeze, crash or starve
//! Rappel. Each attack runs against the real `rappel` binary while other callers (from another
//! loopback address) check that `/healthz` and a small query keep answering within a generous
//! bound; the attack's own duration is never asserted.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use rappel::graphql::Caller;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::backend_test;
use crate::support::TestDb;
use crate::support::app::{PASSWORD, TestApp, error_codes};
use crate::support::server::ServerProcess;

/// How long another caller may wait while an attack runs.
const OTHERS_BOUND: Duration = Duration::from_secs(2);

fn ip(text: &str) -> IpAddr {
    text.parse().expect("an IP address")
}

/// A client whose connections leave from `source` (any 127.0.0.0/8 address reaches the server).
fn client_from(source: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip(source))
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

fn address(server: &ServerProcess) -> SocketAddr {
    server
        .base_url
        .trim_start_matches("http://")
        .parse()
        .expect("a socket address")
}

/// A raw TCP connection to the server from `source`.
async fn connect_from(source: &str, server: &ServerProcess) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::new(ip(source), 0))
        .expect("bind the source address");
    socket.connect(address(server)).await.expect("connects")
}

async fn graphql(
    client: &reqwest::Client,
    server: &ServerProcess,
    body: Value,
) -> (u16, Option<String>, Value) {
    let response = client
        .post(format!("{}/graphql", server.base_url))
        .json(&body)
        .send()
        .await
        .expect("sent");
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|value| value.to_str().ok())
        .map(str::to_string);
    (status, retry_after, response.json().await.expect("JSON"))
}

/// `/healthz` and `{ __typename }` from 127.0.0.2, each answered correctly within the bound.
async fn others_keep_answering(server: &ServerProcess, during: &str) {
    let client = client_from("127.0.0.2");
    let started = Instant::now();
    let health = client
        .get(format!("{}/healthz", server.base_url))
        .timeout(OTHERS_BOUND)
        .send()
        .await
        .unwrap_or_else(|error| {
            panic!("/healthz did not answer within {OTHERS_BOUND:?} during {during}: {error}")
        });
    assert_eq!(health.status().as_u16(), 200, "during {during}");
    let answer: Value = client
        .post(format!("{}/graphql", server.base_url))
        .timeout(OTHERS_BOUND)
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .unwrap_or_else(|error| {
            panic!("a small query did not answer within {OTHERS_BOUND:?} during {during}: {error}")
        })
        .json()
        .await
        .expect("JSON");
    assert_eq!(answer["data"]["__typename"], "Query", "during {during}");
    assert!(started.elapsed() < 2 * OTHERS_BOUND, "during {during}");
}

/// `query { ...F<levels> }` where each fragment spreads the one below ten times.
fn fragment_bomb(levels: usize) -> String {
    let mut query = format!("query {{ ...F{levels} }} fragment F0 on Query {{ __typename }}");
    for level in 1..=levels {
        let spreads = format!("...F{} ", level - 1).repeat(10);
        query.push_str(&format!(" fragment F{level} on Query {{ {spreads}}}"));
    }
    query
}

fn first_error(response: &Value) -> (&str, &str, &str) {
    let error = &response["errors"][0];
    (
        error["extensions"]["code"].as_str().unwrap_or("<none>"),
        error["extensions"]["limit"].as_str().unwrap_or("<none>"),
        error["message"].as_str().unwrap_or_default(),
    )
}

backend_test!(
    async fn a_fragment_explosion_is_refused_before_validation_and_others_keep_answering(
        db: TestDb,
    ) {
        let server = ServerProcess::start(&db.url, &[]);
        let bomb = fragment_bomb(7);
        assert!(
            bomb.len() < 700,
            "the finding's document is small: {} bytes",
            bomb.len()
        );
        let attackers: Vec<_> = (0..4)
            .map(|attacker| {
                let client = client_from("127.0.0.1");
                let url = format!("{}/graphql", server.base_url);
                let query = fragment_bomb(7 + attacker % 3);
                tokio::spawn(async move {
                    let mut answers = Vec::new();
                    let until = Instant::now() + Duration::from_secs(3);
                    while Instant::now() < until {
                        let answer: Value = client
                            .post(&url)
                            .json(&json!({ "query": query }))
                            .send()
                            .await
                            .expect("the attack is answered")
                            .json()
                            .await
                            .expect("JSON");
                        answers.push(answer);
                    }
                    answers
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(200)).await;
        for _ in 0..5 {
            others_keep_answering(&server, "a fragment explosion").await;
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        for attacker in attackers {
            let answers = tokio::time::timeout(Duration::from_secs(120), attacker)
                .await
                .expect("the attackers are answered")
                .expect("attacker task");
            assert!(!answers.is_empty());
            for answer in answers {
                let (code, limit, message) = first_error(&answer);
                assert_eq!((code, limit), ("BAD_USER_INPUT", "max_fields"), "{answer}");
                assert!(message.contains("graphql.max_fields"), "{message}");
                assert!(answer["data"].is_null(), "{answer}");
            }
        }
    }
);

backend_test!(
    async fn documents_over_a_shape_limit_are_refused_naming_the_limit(db: TestDb) {
        let app = TestApp::new(db);
        let anonymous = Caller::Anonymous;
        let aliases: String = (0..31).map(|i| format!("a{i}: description ")).collect();
        let roots = "__typename ".repeat(21);
        let cases = [
            (
                format!("{{ __schema {{ {aliases} }} }}"),
                "max_aliases",
                "31 aliases",
            ),
            (
                format!("{{ {roots} }}"),
                "max_root_fields",
                "21 root fields",
            ),
            (
                fragment_bomb(3),
                "max_fields",
                "fields once its fragments are expanded",
            ),
            (
                format!("{{ __typename }} #{}", "x".repeat(33 * 1024)),
                "max_document_bytes",
                "bytes long",
            ),
            (
                format!("{{ __typename(a: [{}]) }}", "1 ".repeat(5000)),
                "max_tokens",
                "tokens",
            ),
        ];
        for (query, limit, says) in cases {
            let response = app.exec(&anonymous, &query, json!({})).await;
            let (code, named, message) = first_error(&response);
            assert_eq!((code, named), ("BAD_USER_INPUT", limit), "{response}");
            assert_eq!(response["errors"][0]["extensions"]["field"], "query");
            assert!(message.contains(says), "{message}");
            assert!(message.contains(&format!("graphql.{limit}")), "{message}");
        }
        // Just under each limit passes.
        let aliases: String = (0..30).map(|i| format!("a{i}: description ")).collect();
        app.ok(
            &anonymous,
            &format!("{{ __schema {{ {aliases} }} }}"),
            json!({}),
        )
        .await;
        let roots = "__typename ".repeat(20);
        app.ok(&anonymous, &format!("{{ {roots} }}"), json!({}))
            .await;
        app.ok(
            &anonymous,
            "{ ...F } fragment F on Query { __typename viewer { kind } }",
            json!({}),
        )
        .await;
    }
);

const LOGIN: &str = "mutation($email: String!, $password: String!) { login(input: { email: $email, password: $password }) { token } }";

fn login(email: &str, password: &str) -> Value {
    json!({ "query": LOGIN, "variables": { "email": email, "password": password } })
}

async fn create_firm(db: &TestDb, email: &str) {
    rappel::setup::create_firm(
        &db.pool,
        "Cabinet",
        email,
        Some(PASSWORD),
        "Europe/Paris",
        "fr",
    )
    .await
    .expect("firm");
}

backend_test!(
    async fn sign_in_is_one_per_operation_and_per_batch_and_others_keep_answering(db: TestDb) {
        create_firm(&db, "admin@a.example.fr").await;
        let server = ServerProcess::start(&db.url, &[]);
        let attacker = client_from("127.0.0.1");

        let aliased: String = (0..2)
            .map(|i| format!("l{i}: login(input: {{ email: \"admin@a.example.fr\", password: \"guess{i}\" }}) {{ token }} "))
            .collect();
        let (_, _, answer) = graphql(
            &attacker,
            &server,
            json!({ "query": format!("mutation {{ {aliased} }}") }),
        )
        .await;
        let (code, limit, message) = first_error(&answer);
        assert_eq!(
            (code, limit),
            ("BAD_USER_INPUT", "sign_ins_per_operation"),
            "{answer}"
        );
        assert!(message.contains("signs in 2 times"), "{message}");

        let batch: Vec<Value> = (0..3)
            .map(|_| login("admin@a.example.fr", PASSWORD))
            .collect();
        let (_, _, answers) = graphql(&attacker, &server, json!(batch)).await;
        let answers = answers.as_array().expect("a batch answer").clone();
        assert_eq!(answers.len(), 3);
        let signed_in = answers
            .iter()
            .filter(|answer| answer["data"]["login"]["token"].is_string())
            .count();
        assert_eq!(signed_in, 1, "one sign-in per batch: {answers:?}");
        for answer in answers
            .iter()
            .filter(|answer| !answer["data"]["login"]["token"].is_string())
        {
            assert_eq!(first_error(answer).1, "sign_ins_per_batch", "{answer}");
        }

        // The finding's attack: batches of ten operations of aliased logins each.
        let aliased: String = (0..20)
            .map(|i| format!("l{i}: login(input: {{ email: \"admin@a.example.fr\", password: \"guess{i}\" }}) {{ token }} "))
            .collect();
        let attack: Vec<Value> = (0..10)
            .map(|_| json!({ "query": format!("mutation {{ {aliased} }}") }))
            .collect();
        let attack = json!(attack);
        let attackers: Vec<_> = (0..3)
            .map(|_| {
                let client = attacker.clone();
                let url = format!("{}/graphql", server.base_url);
                let attack = attack.clone();
                tokio::spawn(async move {
                    let mut codes = Vec::new();
                    let until = Instant::now() + Duration::from_secs(3);
                    while Instant::now() < until {
                        let answer: Value = client
                            .post(&url)
                            .json(&attack)
                            .send()
                            .await
                            .expect("answered")
                            .json()
                            .await
                            .expect("JSON");
                        codes.push(answer.to_string());
                    }
                    codes
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(200)).await;
        for _ in 0..5 {
            others_keep_answering(&server, "a login amplification").await;
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        for attacker in attackers {
            let answers = tokio::time::timeout(Duration::from_secs(120), attacker)
                .await
                .expect("the attackers are answered")
                .expect("task");
            for answer in answers {
                assert!(
                    !answer.contains("\"token\":\"rpl_"),
                    "no attack operation signs in"
                );
                assert!(answer.contains("BAD_USER_INPUT"), "{answer}");
            }
        }
    }
);

backend_test!(
    async fn sign_in_is_throttled_per_account_with_retry_after_and_works_again_after_the_window(
        db: TestDb,
    ) {
        create_firm(&db, "admin@a.example.fr").await;
        let server = ServerProcess::start(
            &db.url,
            &[
                ("RAPPEL_AUTH_SIGN_IN_ATTEMPTS_PER_ACCOUNT", "2"),
                ("RAPPEL_AUTH_SIGN_IN_ATTEMPTS_PER_IP", "100"),
                ("RAPPEL_AUTH_SIGN_IN_WINDOW_SECONDS", "4"),
            ],
        );
        let client = client_from("127.0.0.1");
        for _ in 0..2 {
            let (status, _, answer) =
                graphql(&client, &server, login("admin@a.example.fr", "wrong")).await;
            assert_eq!(status, 200);
            assert_eq!(error_codes(&answer), ["UNAUTHENTICATED"], "{answer}");
        }
        // The account's third attempt, even with the right password and in another case.
        let (status, retry_after, answer) =
            graphql(&client, &server, login("Admin@A.example.fr", PASSWORD)).await;
        assert_eq!(error_codes(&answer), ["RATE_LIMITED"], "{answer}");
        assert_eq!(status, 429, "the whole answer is throttled");
        let seconds = answer["errors"][0]["extensions"]["retryAfter"]
            .as_u64()
            .expect("retryAfter in seconds");
        assert!((1..=4).contains(&seconds), "{answer}");
        assert_eq!(retry_after.as_deref(), Some(seconds.to_string().as_str()));
        assert!(
            answer["errors"][0]["message"]
                .as_str()
                .unwrap_or_default()
                .contains("too many sign-in attempts")
        );

        // Another account is not affected.
        create_firm(&db, "other@b.example.fr").await;
        let (status, _, answer) =
            graphql(&client, &server, login("other@b.example.fr", PASSWORD)).await;
        assert_eq!(status, 200);
        assert!(answer["data"]["login"]["token"].is_string(), "{answer}");

        tokio::time::sleep(Duration::from_secs(seconds)).await;
        let (status, _, answer) =
            graphql(&client, &server, login("admin@a.example.fr", PASSWORD)).await;
        assert_eq!(status, 200, "{answer}");
        assert!(
            answer["data"]["login"]["token"].is_string(),
            "the right password works again: {answer}"
        );
    }
);

backend_test!(
    async fn sign_in_and_link_redemption_are_throttled_per_client_ip(db: TestDb) {
        create_firm(&db, "admin@a.example.fr").await;
        let server = ServerProcess::start(
            &db.url,
            &[
                ("RAPPEL_AUTH_SIGN_IN_ATTEMPTS_PER_ACCOUNT", "100"),
                ("RAPPEL_AUTH_SIGN_IN_ATTEMPTS_PER_IP", "5"),
                ("RAPPEL_AUTH_SIGN_IN_WINDOW_SECONDS", "60"),
            ],
        );
        let attacker = client_from("127.0.0.1");
        let mut codes = Vec::new();
        for attempt in 0..7 {
            let (_, _, answer) = graphql(
                &attacker,
                &server,
                login(&format!("guess{attempt}@a.example.fr"), "x"),
            )
            .await;
            codes.extend(error_codes(&answer));
        }
        assert_eq!(
            codes,
            [
                "UNAUTHENTICATED",
                "UNAUTHENTICATED",
                "UNAUTHENTICATED",
                "UNAUTHENTICATED",
                "UNAUTHENTICATED",
                "RATE_LIMITED",
                "RATE_LIMITED"
            ]
        );
        let redeem = json!({ "query": "mutation { redeemSignInLink(input: { token: \"rpl_guess\" }) { token } }" });
        let (status, _, answer) = graphql(&attacker, &server, redeem.clone()).await;
        assert_eq!(
            (status, error_codes(&answer)),
            (429, vec!["RATE_LIMITED".to_string()]),
            "{answer}"
        );
        let page = attacker
            .post(format!("{}/sign-in", server.base_url))
            .form(&[("token", "rpl_guess")])
            .send()
            .await
            .expect("sent");
        assert_eq!(
            page.status().as_u16(),
            429,
            "the sign-in page is throttled the same way"
        );
        assert!(page.headers().contains_key("retry-after"));

        // Another address signs in and redeems as usual.
        let other = client_from("127.0.0.2");
        let (_, _, answer) = graphql(&other, &server, login("admin@a.example.fr", PASSWORD)).await;
        assert!(answer["data"]["login"]["token"].is_string(), "{answer}");
        let (_, _, answer) = graphql(&other, &server, redeem).await;
        assert_eq!(error_codes(&answer), ["UNAUTHENTICATED"], "{answer}");
    }
);

/// Reads until the peer closes (Ok(0) or an error), returning what was read; None if still
/// open after `wait`.
async fn read_until_closed(stream: &mut tokio::net::TcpStream, wait: Duration) -> Option<String> {
    let mut received = Vec::new();
    let mut buffer = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(String::from_utf8_lossy(&received).to_string()),
            Ok(Ok(read)) => received.extend_from_slice(&buffer[..read]),
        }
    }
}

backend_test!(
    async fn idle_and_slow_connections_are_capped_and_closed_and_others_keep_answering(db: TestDb) {
        let server = ServerProcess::start(
            &db.url,
            &[
                ("RAPPEL_HTTP_MAX_CONNECTIONS_PER_IP", "20"),
                ("RAPPEL_HTTP_HEADER_READ_TIMEOUT_SECONDS", "3"),
                ("RAPPEL_HTTP_WS_INIT_TIMEOUT_SECONDS", "2"),
            ],
        );
        // Twenty idle sockets from one address fill its share; more are answered 429 at once.
        let mut idle = Vec::new();
        for _ in 0..20 {
            idle.push(connect_from("127.0.0.1", &server).await);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        for _ in 0..5 {
            let mut extra = connect_from("127.0.0.1", &server).await;
            let answer = read_until_closed(&mut extra, Duration::from_secs(5))
                .await
                .expect("a connection over the per-IP cap is closed at once");
            assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
            assert!(answer.contains("http.max_connections_per_ip"), "{answer}");
        }
        others_keep_answering(&server, "idle sockets").await;

        // A slow client sending half its headers, and idle sockets, are closed after the
        // header deadline; a WebSocket that never sends connection_init after its own.
        let mut slow = connect_from("127.0.0.3", &server).await;
        slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .await
            .expect("half a head");
        let url = format!("ws://{}/graphql/ws", address(&server));
        let mut request = url.into_client_request().expect("request");
        request.headers_mut().insert(
            "sec-websocket-protocol",
            "graphql-transport-ws".parse().expect("header"),
        );
        let (mut silent, _) =
            tokio_tungstenite::client_async(request, connect_from("127.0.0.4", &server).await)
                .await
                .expect("upgrades");
        let close = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(message) = silent.next().await {
                if let Ok(Message::Close(frame)) = message {
                    return frame;
                }
            }
            None
        })
        .await
        .expect("a WebSocket without connection_init is closed");
        assert_eq!(close.map(|frame| u16::from(frame.code)), Some(4408));
        assert!(
            read_until_closed(&mut slow, Duration::from_secs(10))
                .await
                .is_some(),
            "slow headers are cut"
        );
        for socket in &mut idle {
            assert!(
                read_until_closed(socket, Duration::from_secs(10))
                    .await
                    .is_some(),
                "idle sockets are closed"
            );
        }
        drop(idle);
        // Their places came back.
        let client = client_from("127.0.0.1");
        let status = client
            .get(format!("{}/healthz", server.base_url))
            .send()
            .await
            .expect("sent")
            .status();
        assert_eq!(status.as_u16(), 200);
    }
);

backend_test!(
    async fn connections_past_the_total_cap_are_answered_503_and_closed(db: TestDb) {
        let server = ServerProcess::start(
            &db.url,
            &[
                ("RAPPEL_HTTP_MAX_CONNECTIONS", "6"),
                ("RAPPEL_HTTP_MAX_CONNECTIONS_PER_IP", "3"),
            ],
        );
        let mut held = Vec::new();
        for source in ["127.0.0.1", "127.0.0.2"] {
            for _ in 0..3 {
                held.push(connect_from(source, &server).await);
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut extra = connect_from("127.0.0.3", &server).await;
        let answer = read_until_closed(&mut extra, Duration::from_secs(5))
            .await
            .expect("closed at once");
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
        assert!(answer.contains("http.max_connections"), "{answer}");
        drop(held);
        tokio::time::sleep(Duration::from_millis(300)).await;
        others_keep_answering(&server, "after the held connections closed").await;
    }
);

/// Opens /graphql/ws with `protocol`, sends connection_init with `payload`; returns the socket.
async fn open_ws(
    server: &ServerProcess,
    protocol: &str,
    payload: Value,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let url = format!("{}/graphql/ws", server.base_url.replace("http://", "ws://"));
    let mut request = url.into_client_request().expect("request");
    request
        .headers_mut()
        .insert("sec-websocket-protocol", protocol.parse().expect("header"));
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("connects");
    socket
        .send(Message::Text(
            json!({ "type": "connection_init", "payload": payload })
                .to_string()
                .into(),
        ))
        .await
        .expect("init sent");
    socket
}

/// The next text message as JSON, or the close frame as (code, reason).
async fn next_ws(
    socket: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) -> Result<Value, (u16, String)> {
    let wait = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(message) = socket.next().await {
            match message.expect("a message") {
                Message::Text(text) => {
                    let value: Value = serde_json::from_str(&text).expect("JSON");
                    if value["type"] != "ka" {
                        return Ok(value);
                    }
                }
                Message::Close(frame) => {
                    return Err(frame.map_or((0, String::new()), |frame| {
                        (u16::from(frame.code), frame.reason.to_string())
                    }));
                }
                _ => {}
            }
        }
        Err((0, String::new()))
    })
    .await;
    wait.expect("an answer within 10 s")
}

backend_test!(
    async fn errors_over_the_websocket_carry_a_code_as_over_http(db: TestDb) {
        let app = TestApp::new(db);
        create_firm(&app.db, "admin@a.example.fr").await;
        let (token, _) = app.login("admin@a.example.fr", PASSWORD).await;
        let server = ServerProcess::start(&app.db.url, &[]);

        let mut refused = open_ws(&server, "graphql-transport-ws", json!({})).await;
        let (code, reason) = next_ws(&mut refused).await.expect_err("closed");
        assert_eq!(code, 4403, "{reason}");
        let reason: Value =
            serde_json::from_str(&reason).expect("the close reason is a JSON error");
        assert_eq!(reason["extensions"]["code"], "UNAUTHENTICATED");
        assert!(
            reason["message"]
                .as_str()
                .unwrap_or_default()
                .contains("sign in first")
        );

        let mut legacy = open_ws(&server, "graphql-ws", json!({})).await;
        let error = next_ws(&mut legacy)
            .await
            .expect("a connection_error message");
        assert_eq!(error["type"], "connection_error", "{error}");
        assert_eq!(
            error["payload"]["extensions"]["code"], "UNAUTHENTICATED",
            "{error}"
        );

        let mut socket = open_ws(
            &server,
            "graphql-transport-ws",
            json!({ "Authorization": format!("Bearer {token}") }),
        )
        .await;
        assert_eq!(
            next_ws(&mut socket).await.expect("ack")["type"],
            "connection_ack"
        );
        let queries = [
            ("subscription { requestEvents { nope } }".to_string(), "GRAPHQL_VALIDATION_FAILED"),
            ("{ __typename(a: [".to_string(), "GRAPHQL_PARSE_FAILED"),
            (fragment_bomb(7), "BAD_USER_INPUT"),
            ("mutation { a: login(input: { email: \"x\", password: \"y\" }) { token } b: login(input: { email: \"x\", password: \"z\" }) { token } }".to_string(), "BAD_USER_INPUT"),
        ];
        for (id, (query, expected)) in queries.iter().enumerate() {
            let id = (id + 1).to_string();
            socket
                .send(Message::Text(
                    json!({ "id": id, "type": "subscribe", "payload": { "query": query } })
                        .to_string()
                        .into(),
                ))
                .await
                .expect("subscribe sent");
            let answer = next_ws(&mut socket).await.expect("an answer");
            let errors = if answer["type"] == "error" {
                answer["payload"].clone()
            } else {
                answer["payload"]["errors"].clone()
            };
            assert_eq!(errors[0]["extensions"]["code"], *expected, "{answer}");
            // The stream completes after its error (graphql-transport-ws sends `complete` only
            // after `next`).
            if answer["type"] == "next" {
                assert_eq!(
                    next_ws(&mut socket).await.expect("complete")["type"],
                    "complete"
                );
            }
        }
    }
);

backend_test!(
    async fn serve_prints_graphiql_at_the_address_it_really_listens_on(db: TestDb) {
        let server = ServerProcess::start(&db.url, &[("RAPPEL_DEMO", "true")]);
        let expected = format!("GraphiQL: {}/graphql", server.base_url);
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let lines = server.printed_lines();
            if let Some(line) = lines.iter().find(|line| line.contains("GraphiQL:")) {
                assert!(line.contains(&expected), "{line} should show {expected}");
                assert!(
                    !server.base_url.ends_with(":8080"),
                    "the test listens on a random port"
                );
                break;
            }
            assert!(
                Instant::now() < until,
                "no GraphiQL line printed: {lines:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
);
