//! Delivery with real parts: real SMTP from lettre to a loopback server, real HTTP to a
//! loopback webhook receiver that verifies signatures with the reference `standardwebhooks`
//! crate, the worker driven with an injected clock (no sleeping, no timing asserts), on both
//! backends. Data is set up through the real code paths: `create_firm`, the GraphQL schema
//! with tokens from `login`, and the generation pass.

use std::time::Duration;

use async_graphql::{Request, Variables};
use chrono::{DateTime, NaiveDate, Utc};
use rappel::config::Config;
use rappel::db::outbox::{self, Delivery, NewWebhookEndpoint};
use rappel::db::{Pool, claims, clients};
use rappel::delivery::reminders::{self, ReminderReport, ReminderSettings};
use rappel::delivery::webhook::generate_secret;
use rappel::delivery::{DeliveryControl, DeliveryWaker, Worker};
use rappel::domain::{DeliveryEvent, DeliveryKind, DeliveryStatus};
use rappel::events::EventBus;
use rappel::generation::{GenerationReport, GenerationSettings, run_pass};
use rappel::graphql::{
    Caller, RappelSchema, SchemaData, build_schema_with_delivery, resolve_caller,
};
use rappel::http::{AppState, router};
use serde_json::{Value, json};

use crate::support::smtp::{ReceivedMail, SmtpSink, parse};
use crate::support::webhooks::{self, WebhookReceiver};
use crate::support::{Backend, TestDb};
use crate::{backend_test, counted_backend_test};

const PASSWORD: &str = "correct horse battery";
/// Generous bound for waiting on something that happens in milliseconds; never asserted on.
const WAIT: Duration = Duration::from_secs(30);
const REQUEST_TEXT: &str = "Merci d'envoyer vos factures de janvier.";
/// Firm-only names that must never reach a client.
const TASK_TITLE: &str = "Contrôler la TVA collectée";
const SERVICE_TITLE: &str = "Prestation TVA interne";
const MISSION_NAME: &str = "Mission confidentielle 2027";

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("valid instant")
        .with_timezone(&Utc)
}

fn day(text: &str) -> NaiveDate {
    text.parse().expect("valid date")
}

/// One test's world: the database, the schema and the HTTP routes (unsubscribe links) served
/// on loopback, an SMTP sink, and a worker sending to them.
struct Harness {
    db: TestDb,
    config: Config,
    schema: RappelSchema,
    events: EventBus,
    worker: Worker,
    sink: SmtpSink,
    http: tokio::task::JoinHandle<()>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.http.abort();
    }
}

impl Harness {
    /// Webhooks to loopback allowed (the receivers are there), 2 s webhook timeout.
    async fn start(db: TestDb) -> Self {
        Self::start_with(db, |_| {}).await
    }

    async fn start_with(db: TestDb, tweak: impl FnOnce(&mut Config)) -> Self {
        let sink = SmtpSink::start().await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let address = listener.local_addr().expect("local address");
        let mut config = Config {
            public_base_url: format!("http://{address}"),
            ..Config::default()
        };
        config.smtp.transport = "smtp".into();
        config.smtp.host = "127.0.0.1".into();
        config.smtp.port = sink.port;
        config.smtp.pool_size = 2;
        config.smtp.from_address = "rappel@rappel.example".into();
        config.webhooks.allow_private_addresses = true;
        config.webhooks.timeout_seconds = 2;
        tweak(&mut config);
        let pool = db.pool.clone();
        let events = EventBus::new();
        let waker = DeliveryWaker::default();
        let schema = build_schema_with_delivery(
            Some(SchemaData {
                pool: pool.clone(),
                events: events.clone(),
                auth: config.auth.clone(),
                generation: GenerationSettings::default(),
            }),
            Some(DeliveryControl::from_config(&config, waker.clone())),
            &config.graphql,
        );
        let state = AppState {
            schema: schema.clone(),
            pool: pool.clone(),
            callers: rappel::graphql::CallerCache::new(5, events.clone()),
            graphiql: false,
            max_batch: 10,
            web: rappel::http::WebOptions::default(),
        };
        let http = tokio::spawn(async move {
            let _ = axum::serve(listener, router(state, 1 << 20)).await;
        });
        let worker = Worker::from_config(pool, &config, waker.clone()).expect("worker builds");
        Self {
            db,
            config,
            schema,
            events,
            worker,
            sink,
            http,
        }
    }

    fn pool(&self) -> &Pool {
        &self.db.pool
    }

    /// Another worker on the same database, as on another instance.
    fn another_worker(&self) -> Worker {
        Worker::from_config(self.pool().clone(), &self.config, DeliveryWaker::default())
            .expect("worker builds")
    }

    async fn exec(&self, caller: &Caller, query: &str, variables: Value) -> Value {
        let request = Request::new(query)
            .variables(Variables::from_json(variables))
            .data(caller.clone());
        serde_json::to_value(self.schema.execute(request).await).expect("response serializes")
    }

    async fn ok(&self, caller: &Caller, query: &str, variables: Value) -> Value {
        let response = self.exec(caller, query, variables).await;
        assert!(
            response["errors"].as_array().is_none_or(Vec::is_empty),
            "{query} failed: {response}"
        );
        response["data"].clone()
    }

    async fn caller(&self, token: &str) -> Caller {
        resolve_caller(self.pool(), Some(token))
            .await
            .expect("token resolves")
    }

    async fn login(&self, email: &str, password: &str) -> Caller {
        let data = self
            .ok(
                &Caller::Anonymous,
                "mutation($e: String!, $p: String!) { login(input: { email: $e, password: $p }) { token } }",
                json!({ "e": email, "p": password }),
            )
            .await;
        self.caller(data["login"]["token"].as_str().expect("token"))
            .await
    }

    async fn generate(&self, now: &str, as_of: &str) -> GenerationReport {
        run_pass(
            self.pool(),
            &GenerationSettings::default(),
            at(now),
            Some(day(as_of)),
            None,
        )
        .await
        .expect("generation pass")
    }

    async fn remind(&self, now: &str) -> ReminderReport {
        reminders::run_pass(
            self.pool(),
            &ReminderSettings::from_config(&self.config),
            at(now),
            None,
        )
        .await
        .expect("reminder pass")
    }

    async fn run(&self, now: &str) -> rappel::delivery::outbox::RunReport {
        self.worker.run_once(at(now)).await.expect("worker runs")
    }

    /// Every delivery of a firm, oldest first.
    async fn deliveries(&self, firm_id: i64) -> Vec<Delivery> {
        let mut conn = self.pool().get().await.expect("connection");
        let mut rows = outbox::list_deliveries(
            &mut conn.as_db(),
            firm_id,
            None,
            None,
            &rappel::db::page::Keyset::first(10_000),
        )
        .await
        .expect("deliveries");
        rows.reverse();
        rows
    }

    async fn deliveries_of(
        &self,
        firm_id: i64,
        kind: DeliveryKind,
        event: DeliveryEvent,
    ) -> Vec<Delivery> {
        self.deliveries(firm_id)
            .await
            .into_iter()
            .filter(|row| row.kind == kind && row.event == event)
            .collect()
    }

    async fn attempts(&self, delivery_id: i64) -> Vec<outbox::DeliveryAttempt> {
        let mut conn = self.pool().get().await.expect("connection");
        claims::attempts_of(&mut conn.as_db(), delivery_id)
            .await
            .expect("attempts")
    }

    async fn delivery(&self, firm_id: i64, id: i64) -> Delivery {
        let mut conn = self.pool().get().await.expect("connection");
        claims::find_delivery(&mut conn.as_db(), firm_id, id)
            .await
            .expect("delivery")
    }
}

/// A firm with a service (an information request and a task), one client with `contacts`
/// (name, email, language), and a signed monthly mission due on the 30th from January 2027
/// (created 10 days before). Nothing is generated yet (the real clock is before 2027).
struct Firm {
    id: i64,
    admin: Caller,
    client: String,
    contacts: Vec<String>,
}

async fn firm_with_mission(
    h: &Harness,
    contacts: &[(&str, &str, Option<&str>)],
    reminder_policy: Option<Value>,
) -> Firm {
    let created = rappel::setup::create_firm(
        h.pool(),
        "Cabinet Dupont",
        "admin@dupont.example",
        Some(PASSWORD),
        "Europe/Paris",
        "fr",
    )
    .await
    .expect("firm created");
    let admin = h.login("admin@dupont.example", PASSWORD).await;
    let mut input = json!({
        "title": SERVICE_TITLE, "deliverableType": "DOCUMENTS", "leadDays": 10,
        "items": [
            { "kind": "INFORMATION_REQUEST", "title": REQUEST_TEXT },
            { "kind": "TASK", "title": TASK_TITLE }
        ]
    });
    if let Some(policy) = reminder_policy {
        input["reminderPolicy"] = policy;
    }
    let data = h
        .ok(
            &admin,
            "mutation($input: CreateServiceInput!) { createService(input: $input) { id } }",
            json!({ "input": input }),
        )
        .await;
    let service = data["createService"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let data = h
        .ok(
            &admin,
            r#"mutation { createClient(input: { name: "Boulangerie Martin" }) { id } }"#,
            json!({}),
        )
        .await;
    let client = data["createClient"]["id"].as_str().expect("id").to_string();
    let mut contact_ids = Vec::new();
    for (name, email, language) in contacts {
        let data = h
            .ok(
                &admin,
                "mutation($input: AddContactInput!) { addContact(input: $input) { id } }",
                json!({ "input": { "clientId": client, "name": name, "email": email, "language": language } }),
            )
            .await;
        contact_ids.push(data["addContact"]["id"].as_str().expect("id").to_string());
    }
    let data = h
        .ok(
            &admin,
            "mutation($input: CreateMissionInput!) { createMission(input: $input) { id } }",
            json!({ "input": {
                "clientId": client, "name": MISSION_NAME, "startDate": "2027-01-01",
                "endDate": "2027-12-31",
                "lines": [{ "serviceId": service, "frequency": "MONTHLY", "firstDueDate": "2027-01-30" }]
            }}),
        )
        .await;
    let mission = data["createMission"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    h.ok(
        &admin,
        "mutation($id: ID!) { signMission(id: $id) { status } }",
        json!({ "id": mission }),
    )
    .await;
    Firm {
        id: created.firm.id,
        admin,
        client,
        contacts: contact_ids,
    }
}

const CREATE_ENDPOINT: &str = "mutation($url: String!, $events: [WebhookEvent!]!, $client: ID) { \
    createWebhookEndpoint(input: { url: $url, events: $events, clientId: $client }) { \
    endpoint { id url events enabled } secret } }";

/// The GraphQL enum value of a webhook event's wire name (`information_request.created` is
/// INFORMATION_REQUEST_CREATED).
fn webhook_event(wire_name: &str) -> String {
    wire_name.replace('.', "_").to_uppercase()
}

/// Adds an endpoint through GraphQL; returns its id and secret.
async fn add_endpoint(h: &Harness, admin: &Caller, url: &str, events: &[&str]) -> (String, String) {
    let data = h
        .ok(
            admin,
            CREATE_ENDPOINT,
            json!({ "url": url, "events": events.iter().map(|name| webhook_event(name)).collect::<Vec<_>>() }),
        )
        .await;
    let created = &data["createWebhookEndpoint"];
    (
        created["endpoint"]["id"].as_str().expect("id").to_string(),
        created["secret"].as_str().expect("secret").to_string(),
    )
}

/// A receiver plus an endpoint posting to it, verifying with the endpoint's secret.
async fn receiver_endpoint(
    h: &Harness,
    admin: &Caller,
    events: &[&str],
) -> (WebhookReceiver, String) {
    let receiver = webhooks::start_without_secret().await;
    let (id, secret) = add_endpoint(h, admin, &receiver.url, events).await;
    receiver.set_secret(&secret);
    (receiver, id)
}

/// The value of `key=` in a link found in `text` after `marker` (up to the first space).
fn link_after<'a>(text: &'a str, marker: &str) -> &'a str {
    let start = text
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} in {text}"))
        + marker.len();
    text[start..]
        .split(|c: char| c.is_whitespace() || c == '"' || c == '<' || c == '>' || c == '&')
        .next()
        .unwrap_or_default()
}

fn codes(response: &Value) -> Vec<String> {
    response["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|error| {
                    error["extensions"]["code"]
                        .as_str()
                        .unwrap_or("-")
                        .to_string()
                })
                .collect()
        })
        .unwrap_or_default()
}

fn message_ids(mails: &[ReceivedMail]) -> Vec<String> {
    mails
        .iter()
        .map(|mail| parse(&mail.data).message_id.unwrap_or_default())
        .collect()
}

#[test]
fn rappels_signature_matches_the_standard_webhooks_test_vector_and_the_reference_library() {
    // The vector published with the Standard Webhooks specification.
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let (id, timestamp, body) = (
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1_614_265_330,
        r#"{"test": 2432232314}"#,
    );
    let ours = rappel::delivery::webhook::sign(secret, id, timestamp, body).expect("signs");
    assert_eq!(ours, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    let reference = standardwebhooks::Webhook::new(secret).expect("secret");
    assert_eq!(
        reference
            .sign(id, timestamp, body.as_bytes())
            .expect("reference signs"),
        ours
    );
    // And a fresh signature passes the reference verifier's full check (timestamp included).
    let now = Utc::now().timestamp();
    let fresh = rappel::delivery::webhook::sign(secret, id, now, body).expect("signs");
    let mut headers = axum::http::HeaderMap::new();
    headers.insert("webhook-id", id.parse().expect("header"));
    headers.insert(
        "webhook-timestamp",
        now.to_string().parse().expect("header"),
    );
    headers.insert("webhook-signature", fresh.parse().expect("header"));
    assert!(reference.verify(body.as_bytes(), &headers).is_ok());
}

backend_test!(
    async fn the_demo_request_arrives_in_french_over_smtp_with_a_reusable_sign_in_link(db: TestDb) {
        let h = Harness::start(db).await;
        let demo = rappel::setup::seed_demo_if_empty(h.pool(), &h.config, None)
            .await
            .expect("demo seeded")
            .expect("the database was empty");
        let admin = h.caller(&demo.admin_token).await;
        let (receiver, _) = receiver_endpoint(&h, &admin, &["information_request.created"]).await;

        let report = h.generate("2027-01-20T09:00:00Z", "2027-01-20").await;
        assert_eq!(report.requests_created, 1);
        let run = h.run("2027-01-20T09:00:00Z").await;
        assert_eq!(run.delivered, 2, "{run:?}");

        let mails = h.sink.wait_for(1, WAIT).await;
        assert_eq!(mails.len(), 1);
        assert_eq!(mails[0].rcpt_to, ["marie.martin@example.fr"]);
        let mail = parse(&mails[0].data);
        assert_eq!(
            mail.subject.as_deref(),
            Some("Cabinet Démo : vos éléments de janvier 2027, au plus tard le 30 janvier 2027")
        );
        let from = mail.from.as_ref().expect("From");
        assert_eq!(from.name.as_deref(), Some("Cabinet Démo"));
        assert_eq!(from.address, "rappel@rappel.example");
        assert_eq!(
            mail.reply_to.as_ref().map(|reply| reply.address.as_str()),
            Some("admin@cabinet-demo.fr")
        );
        assert!(mail.header("Date").is_some());
        assert_eq!(
            mail.header("List-Unsubscribe-Post"),
            Some("List-Unsubscribe=One-Click")
        );
        let firm_id = {
            let mut conn = h.pool().get().await.expect("connection");
            rappel::db::firms::list_firms(&mut conn.as_db())
                .await
                .expect("firms")[0]
                .id
        };
        let email = &h
            .deliveries_of(firm_id, DeliveryKind::Email, DeliveryEvent::RequestCreated)
            .await[0];
        assert_eq!(
            mail.message_id.as_deref(),
            Some(format!("<{}@rappel.example>", email.delivery_uid).as_str())
        );
        let text = mail.text_body.as_deref().expect("a text part");
        let html = mail.html_body.as_deref().expect("an HTML part");
        for part in [text, html] {
            assert!(part.contains("Bonjour Marie Martin"), "{part}");
            assert!(part.contains("Boulangerie Martin"), "{part}");
            assert!(part.contains("Cabinet Démo"), "{part}");
            assert!(
                part.contains("Merci de déposer vos éléments du mois sur le portail du cabinet"),
                "{part}"
            );
            assert!(part.contains("30 janvier 2027"), "{part}");
            // Only what the client view may show: no task, no service or mission name.
            for firm_only in [
                "Préparer la déclaration de TVA",
                "Rappel TVA",
                "TVA mensuelle 2027",
            ] {
                assert!(!part.contains(firm_only), "{firm_only} leaked: {part}");
            }
        }

        let token = link_after(text, "/sign-in?token=");
        assert!(token.starts_with("rpl_"), "{token}");
        let redeem = "mutation($t: String!) { redeemSignInLink(input: { token: $t }) { token } }";
        let first = h
            .ok(&Caller::Anonymous, redeem, json!({ "t": token }))
            .await;
        let contact = h
            .caller(
                first["redeemSignInLink"]["token"]
                    .as_str()
                    .expect("a contact token"),
            )
            .await;
        let requests = h
            .ok(
                &contact,
                "{ client { requests { nodes { text dueDate } } } }",
                json!({}),
            )
            .await;
        assert_eq!(
            requests["client"]["requests"]["nodes"][0]["dueDate"],
            "2027-01-30"
        );
        let second = h
            .exec(&Caller::Anonymous, redeem, json!({ "t": token }))
            .await;
        assert!(codes(&second).is_empty(), "the link works again: {second}");

        let hooks = receiver.wait_for(1, WAIT).await;
        assert_eq!(hooks.len(), 1);
        assert!(
            hooks[0].signature_valid,
            "the reference verifier refused it"
        );
        let webhook = &h
            .deliveries_of(
                firm_id,
                DeliveryKind::Webhook,
                DeliveryEvent::RequestCreated,
            )
            .await[0];
        assert_eq!(hooks[0].webhook_id, webhook.delivery_uid);
        let body: Value = serde_json::from_str(&hooks[0].body).expect("JSON body");
        assert_eq!(body["type"], "information_request.created");
        assert_eq!(body["data"]["dueDate"], "2027-01-30");
        for firm_only in [
            "Préparer la déclaration de TVA",
            "Rappel TVA",
            "TVA mensuelle 2027",
        ] {
            assert!(!hooks[0].body.contains(firm_only), "{firm_only} leaked");
        }
    }
);

backend_test!(
    async fn an_english_contact_reads_the_email_in_english_with_the_date_written_the_english_way(
        db: TestDb,
    ) {
        let h = Harness::start(db).await;
        firm_with_mission(
            &h,
            &[
                ("Jane Smith", "jane@bakery.example", Some("ENGLISH")),
                ("Marie Martin", "marie@bakery.example", None),
            ],
            None,
        )
        .await;
        h.generate("2027-01-20T09:00:00Z", "2027-01-20").await;
        h.run("2027-01-20T09:00:00Z").await;
        let mails = h.sink.wait_for(2, WAIT).await;
        assert_eq!(mails.len(), 2);
        let to = |address: &str| {
            mails
                .iter()
                .find(|mail| mail.rcpt_to == [address])
                .map(|mail| parse(&mail.data))
                .expect("an email to this contact")
        };
        let english = to("jane@bakery.example");
        assert_eq!(
            english.subject.as_deref(),
            Some("Cabinet Dupont: your documents for January 2027, due January 30, 2027")
        );
        let text = english.text_body.expect("text part");
        assert!(text.contains("Hello Jane Smith,"), "{text}");
        assert!(
            text.contains("Please answer by January 30, 2027."),
            "{text}"
        );
        assert!(
            english
                .html_body
                .expect("html part")
                .contains("<html lang=\"en\">")
        );
        // No language of its own: the firm's (French).
        let french = to("marie@bakery.example");
        assert!(
            french
                .text_body
                .expect("text part")
                .contains("Merci de répondre avant le 30 janvier 2027.")
        );
        for mail in [&mails[0], &mails[1]] {
            let raw = String::from_utf8_lossy(&mail.data);
            for firm_only in [TASK_TITLE, SERVICE_TITLE, MISSION_NAME] {
                assert!(!raw.contains(firm_only), "{firm_only} leaked");
            }
        }
    }
);

backend_test!(
    async fn client_emails_wait_for_the_firms_sending_hour_and_retries_never_fall_at_night(
        db: TestDb,
    ) {
        let h = Harness::start(db).await;
        let firm =
            firm_with_mission(&h, &[("Marie Martin", "marie@bakery.example", None)], None).await;
        let (receiver, _) =
            receiver_endpoint(&h, &firm.admin, &["information_request.created"]).await;
        // 03:00 in Paris: the webhook leaves now, the email at 08:00 (07:00 UTC).
        h.generate("2027-01-20T02:00:00Z", "2027-01-20").await;
        let email = &h
            .deliveries_of(firm.id, DeliveryKind::Email, DeliveryEvent::RequestCreated)
            .await[0];
        assert_eq!(email.next_attempt_at.and_utc(), at("2027-01-20T07:00:00Z"));
        let run = h.run("2027-01-20T02:00:00Z").await;
        assert_eq!((run.delivered, run.total()), (1, 1));
        assert_eq!(receiver.wait_for(1, WAIT).await.len(), 1);
        assert!(h.sink.messages().is_empty());

        // At 19:59:50 in Paris the server answers 451: the retry would fall after 20:00, so
        // it waits for the next morning's sending hour.
        h.sink.fail_next_data(451, 1);
        let run = h.run("2027-01-20T18:59:50Z").await;
        assert_eq!(run.retrying, 1, "{run:?}");
        let email = h.delivery(firm.id, email.id).await;
        assert_eq!(email.status, DeliveryStatus::Pending);
        assert_eq!(email.next_attempt_at.and_utc(), at("2027-01-21T07:00:00Z"));
        assert_eq!(h.run("2027-01-21T06:59:00Z").await.total(), 0);
        assert_eq!(h.run("2027-01-21T07:00:00Z").await.delivered, 1);
        assert_eq!(h.sink.wait_for(1, WAIT).await.len(), 1);
    }
);

backend_test!(
    async fn smtp_down_then_up_loses_nothing_and_delivers_each_email_once(db: TestDb) {
        let mut h = Harness::start(db).await;
        let firm = firm_with_mission(
            &h,
            &[
                ("Marie Martin", "marie@bakery.example", None),
                ("Paul Martin", "paul@bakery.example", None),
                ("Lea Martin", "lea@bakery.example", None),
            ],
            None,
        )
        .await;
        h.generate("2027-01-20T09:00:00Z", "2027-01-20").await;
        h.sink.stop().await;
        let run = h.run("2027-01-20T09:00:00Z").await;
        assert_eq!(run.retrying, 3, "{run:?}");
        for email in h
            .deliveries_of(firm.id, DeliveryKind::Email, DeliveryEvent::RequestCreated)
            .await
        {
            assert_eq!(email.status, DeliveryStatus::Pending);
            assert_eq!(email.attempts, 1);
            assert!(email.last_error.is_some());
        }
        h.sink.restart().await;
        let run = h.run("2027-01-20T10:00:00Z").await;
        assert_eq!(run.delivered, 3, "{run:?}");
        assert_eq!(h.run("2027-01-20T12:00:00Z").await.total(), 0);
        let mails = h.sink.wait_for(3, WAIT).await;
        let mut ids = message_ids(&mails);
        ids.sort();
        ids.dedup();
        assert_eq!((mails.len(), ids.len()), (3, 3), "each email exactly once");
        for email in h
            .deliveries_of(firm.id, DeliveryKind::Email, DeliveryEvent::RequestCreated)
            .await
        {
            assert_eq!(email.status, DeliveryStatus::Delivered);
            let outcomes: Vec<String> = h
                .attempts(email.id)
                .await
                .into_iter()
                .map(|attempt| attempt.outcome)
                .collect();
            assert_eq!(outcomes, ["TRANSIENT_FAILURE", "DELIVERED"]);
        }
    }
);

backend_test!(
    async fn an_smtp_451_is_retried_and_the_next_250_delivers_it(db: TestDb) {
        let h = Harness::start(db).await;
        let firm =
            firm_with_mission(&h, &[("Marie Martin", "marie@bakery.example", None)], None).await;
        h.generate("2027-01-20T09:00:00Z", "2027-01-20").await;
        h.sink.fail_next_data(451, 1);
        assert_eq!(h.run("2027-01-20T09:00:00Z").await.retrying, 1);
        assert!(h.sink.messages().is_empty());
        assert_eq!(h.run("2027-01-20T10:00:00Z").await.delivered, 1);
        let mails = h.sink.wait_for(1, WAIT).await;
        assert_eq!(mails.len(), 1);
        let email = &h
            .deliveries_of(firm.id, DeliveryKind::Email, DeliveryEvent::RequestCreated)
            .await[0];
        assert_eq!(
            parse(&mails[0].data).message_id,
            Some(format!("<{}@rappel.example>", email.delivery_uid))
        );
        let attempts = h.attempts(email.id).await;
        assert_eq!(attempts.len(), 2);
        assert_eq!(attempts[0].outcome, "TRANSIENT_FAILURE");
        assert_eq!(attempts[0].response_code, Some(451));
        assert_eq!(attempts[1].outcome, "DELIVERED");
    }
);

backend_test!(
    async fn an_smtp_550_is_not_retried_and_shows_as_failed_in_the_firm_view(db: TestDb) {
        let h = Harness::start(db).await;
        let firm =
            firm_with_mission(&h, &[("Marie Martin", "marie@bakery.example", None)], None).await;
        h.generate("2027-01-20T09:00:00Z", "2027-01-20").await;
        h.sink.fail_next_data(550, 1);
        let run = h.run("2027-01-20T09:00:00Z").await;
        assert_eq!(run.failed, 1, "{run:?}");
        assert_eq!(h.run("2027-01-25T09:00:00Z").await.total(), 0);
        assert!(h.sink.messages().is_empty());
        let data = h
            .ok(
                &firm.admin,
                "{ firm { deliveries(status: FAILED) { nodes { kind status attempts lastError \
                 attemptLog { totalCount nodes { outcome responseCode } } } } } }",
                json!({}),
            )
            .await;
        let nodes = data["firm"]["deliveries"]["nodes"]
            .as_array()
            .expect("nodes");
        assert_eq!(nodes.len(), 1);
        assert_eq!(nodes[0]["kind"], "EMAIL");
        assert_eq!(nodes[0]["attempts"], 1);
        assert!(
            nodes[0]["lastError"]
                .as_str()
                .is_some_and(|error| error.contains("550")),
            "{data}"
        );
        assert_eq!(
            nodes[0]["attemptLog"],
            json!({ "totalCount": 1, "nodes": [{ "outcome": "PERMANENT_FAILURE", "responseCode": 550 }] })
        );
    }
);

backend_test!(
    async fn a_webhook_answering_500_three_times_then_200_takes_four_attempts_with_one_webhook_id(
        db: TestDb,
    ) {
        let h = Harness::start(db).await;
        let firm = firm_with_mission(&h, &[], None).await;
        let (receiver, _) =
            receiver_endpoint(&h, &firm.admin, &["information_request.created"]).await;
        receiver.respond_with(vec![500, 500, 500]);
        h.generate("2027-01-20T09:00:00Z", "2027-01-20").await;
        for hour in ["09", "10", "11"] {
            let run = h.run(&format!("2027-01-20T{hour}:00:00Z")).await;
            assert_eq!(run.retrying, 1, "{hour}: {run:?}");
        }
        assert_eq!(h.run("2027-01-20T12:00:00Z").await.delivered, 1);
        let hooks = receiver.wait_for(4, WAIT).await;
        assert_eq!(hooks.len(), 4);
        let webhook = &h
            .deliveries_of(
                firm.id,
                DeliveryKind::Webhook,
                DeliveryEvent::RequestCreated,
            )
            .await[0];
        assert_eq!(webhook.status, DeliveryStatus::Delivered);
        assert_eq!(webhook.attempts, 4);
        assert!(
            hooks
                .iter()
                .all(|hook| hook.webhook_id == webhook.delivery_uid)
        );
        assert!(hooks.iter().all(|hook| hook.signature_valid));
        assert!(hooks.iter().all(|hook| hook.body == webhook.payload));
        let codes: Vec<Option<i32>> = h
            .attempts(webhook.id)
            .await
            .iter()
            .map(|attempt| attempt.response_code)
            .collect();
        assert_eq!(codes, [Some(500), Some(500), Some(500), Some(200)]);
    }
);

backend_test!(
    async fn a_retry_after_answered_with_429_is_honoured(db: TestDb) {
        let h = Harness::start(db).await;
        let firm = firm_with_mission(&h, &[], None).await;
        let (receiver, _) =
            receiver_endpoint(&h, &firm.admin, &["information_request.created"]).await;
        receiver.respond_with(vec![429]);
        receiver.set_retry_after(Some("7200".into()));
        h.generate("2027-01-20T09:00:00Z", "2027-01-20").await;
        assert_eq!(h.run("2027-01-20T09:00:00Z").await.retrying, 1);
        let webhook = &h
            .deliveries_of(
                firm.id,
                DeliveryKind::Webhook,
                DeliveryEvent::RequestCreated,
            )
            .await[0];
        assert_eq!(
            webhook.next_attempt_at.and_utc(),
            at("2027-01-20T11:00:00Z")
        );
        assert_eq!(h.run("2027-01-20T10:59:59Z").await.total(), 0);
        assert_eq!(h.run("2027-01-20T11:00:00Z").await.delivered, 1);
    }
);

backend_test!(
    async fn a_hanging_endpoint_is_cut_at_the_timeout_while_the_worker_keeps_delivering_others(
        db: TestDb,
    ) {
        let h = Harness::start_with(db, |config| config.webhooks.timeout_seconds = 5).await;
        let firm =
            firm_with_mission(&h, &[("Marie Martin", "marie@bakery.example", None)], None).await;
        let (hanging, _) =
            receiver_endpoint(&h, &firm.admin, &["information_request.created"]).await;
        hanging.hang_next(1);
        let (healthy, _) =
            receiver_endpoint(&h, &firm.admin, &["information_request.created"]).await;
        h.generate("2027-01-20T09:00:00Z", "2027-01-20").await;

        let worker = h.worker.clone();
        let run = tokio::spawn(async move { worker.run_once(at("2027-01-20T09:00:00Z")).await });
        // The email and the healthy webhook arrive while the hanging request is still open.
        assert_eq!(healthy.wait_for(1, WAIT).await.len(), 1);
        assert_eq!(h.sink.wait_for(1, WAIT).await.len(), 1);
        assert_eq!(hanging.wait_for(1, WAIT).await.len(), 1);
        assert!(!run.is_finished(), "the hanging request was already cut");
        let report = run.await.expect("joins").expect("worker runs");
        assert_eq!((report.delivered, report.retrying), (2, 1), "{report:?}");
        let stuck = h
            .deliveries_of(
                firm.id,
                DeliveryKind::Webhook,
                DeliveryEvent::RequestCreated,
            )
            .await
            .into_iter()
            .find(|row| row.status == DeliveryStatus::Pending)
            .expect("the hanging endpoint's delivery waits for a retry");
        let attempts = h.attempts(stuck.id).await;
        assert_eq!(attempts.len(), 1);
        assert_eq!(attempts[0].outcome, "TRANSIENT_FAILURE");
        assert!(
            attempts[0]
                .error
                .as_deref()
                .is_some_and(|error| error.contains("no answer within 5000 ms")),
            "{attempts:?}"
        );
    }
);

backend_test!(
    async fn a_private_address_url_is_refused_when_saved_and_again_when_sent(db: TestDb) {
        let h = Harness::start_with(db, |config| {
            config.webhooks.allow_private_addresses = false;
        })
        .await;
        let firm = firm_with_mission(&h, &[], None).await;
        for url in [
            "https://127.0.0.1/hook",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/hook",
            "https://localhost/hook",
            "http://hooks.example.com/hook",
        ] {
            let response = h
                .exec(
                    &firm.admin,
                    CREATE_ENDPOINT,
                    json!({ "url": url, "events": ["INFORMATION_REQUEST_CREATED"] }),
                )
                .await;
            assert_eq!(codes(&response), ["BAD_USER_INPUT"], "{url}: {response}");
        }
        // Saved anyway (say, before the rule existed, or a DNS name that changed since):
        // the worker refuses at send time, on what the name resolves to, without connecting.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port");
        let port = listener.local_addr().expect("address").port();
        let now = Utc::now().naive_utc();
        for url in [
            format!("https://localhost:{port}/hook"),
            format!("https://127.0.0.1:{port}/hook"),
        ] {
            let mut conn = h.pool().get().await.expect("connection");
            outbox::insert_endpoint(
                &mut conn.as_db(),
                &NewWebhookEndpoint {
                    firm_id: firm.id,
                    client_id: None,
                    url: &url,
                    events: "information_request.created",
                    secret: &generate_secret(),
                    enabled: true,
                    created_at: now,
                    updated_at: now,
                },
            )
            .await
            .expect("endpoint stored");
        }
        h.generate("2027-01-20T09:00:00Z", "2027-01-20").await;
        let run = h.run("2027-01-20T09:00:00Z").await;
        assert_eq!(run.failed, 2, "{run:?}");
        let errors: Vec<String> = h
            .deliveries_of(
                firm.id,
                DeliveryKind::Webhook,
                DeliveryEvent::RequestCreated,
            )
            .await
            .into_iter()
            .map(|row| row.last_error.unwrap_or_default())
            .collect();
        assert!(
            errors
                .iter()
                .any(|error| error.starts_with("localhost resolves to ")
                    && error.ends_with("a private or loopback address")),
            "{errors:?}"
        );
        assert!(
            errors
                .iter()
                .any(|error| error == "127.0.0.1 is a private or loopback address"),
            "{errors:?}"
        );
        let accepted = tokio::time::timeout(Duration::from_millis(200), listener.accept()).await;
        assert!(accepted.is_err(), "a connection was opened");
    }
);

backend_test!(
    async fn a_delivery_sent_but_not_recorded_is_sent_again_with_the_same_ids_after_its_lease(
        db: TestDb,
    ) {
        let h = Harness::start(db).await;
        let firm =
            firm_with_mission(&h, &[("Marie Martin", "marie@bakery.example", None)], None).await;
        let (receiver, _) =
            receiver_endpoint(&h, &firm.admin, &["information_request.created"]).await;
        h.generate("2027-01-20T09:00:00Z", "2027-01-20").await;

        // A worker claims both, sends them, and dies before recording anything.
        let crashed = h.another_worker();
        let claimed = crashed
            .claim(at("2027-01-20T09:00:00Z"), 10)
            .await
            .expect("claims");
        assert_eq!(claimed.len(), 2);
        for delivery in &claimed {
            let attempt = crashed.attempt(delivery, at("2027-01-20T09:00:00Z")).await;
            assert!(
                matches!(attempt, rappel::delivery::outbox::Attempt::Sent { .. }),
                "{attempt:?}"
            );
        }
        drop(crashed);
        // Still leased: nobody sends them meanwhile.
        assert_eq!(h.run("2027-01-20T09:01:00Z").await.total(), 0);
        // The lease (120 s) expires: sent again, and recorded this time.
        assert_eq!(h.run("2027-01-20T09:02:01Z").await.delivered, 2);

        let mails = h.sink.wait_for(2, WAIT).await;
        let ids = message_ids(&mails);
        assert_eq!(ids.len(), 2);
        assert_eq!(ids[0], ids[1], "the same Message-ID both times");
        let hooks = receiver.wait_for(2, WAIT).await;
        assert_eq!(hooks.len(), 2);
        assert_eq!(hooks[0].webhook_id, hooks[1].webhook_id);
        assert!(hooks.iter().all(|hook| hook.signature_valid));
        for delivery in h.deliveries(firm.id).await {
            assert_eq!(delivery.status, DeliveryStatus::Delivered);
        }
    }
);

backend_test!(
    async fn a_worker_that_outlived_its_lease_cannot_overwrite_the_next_workers_result(db: TestDb) {
        let h = Harness::start(db).await;
        let firm =
            firm_with_mission(&h, &[("Marie Martin", "marie@bakery.example", None)], None).await;
        h.generate("2027-01-20T09:00:00Z", "2027-01-20").await;

        // A slow worker claims the email; its lease runs out before it records anything.
        let slow = h.another_worker();
        let claimed = slow
            .claim(at("2027-01-20T09:00:00Z"), 10)
            .await
            .expect("claims");
        assert_eq!(claimed.len(), 1);
        // Another worker takes the row over after the lease and delivers it.
        assert_eq!(h.run("2027-01-20T09:02:01Z").await.delivered, 1);
        // The slow worker's late failure must not put the delivered row back in the queue.
        let late_failure = rappel::delivery::outbox::Attempt::Failed {
            transient: true,
            response_code: Some(451),
            retry_after: None,
            error: "451 too late".into(),
        };
        slow.record(&claimed[0], &late_failure, at("2027-01-20T09:03:00Z"))
            .await
            .expect("records");
        let rows = h.deliveries(firm.id).await;
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].status, DeliveryStatus::Delivered);
        assert_eq!(
            h.run("2027-01-20T12:00:00Z").await.total(),
            0,
            "nothing is sent a third time"
        );
        assert_eq!(h.sink.wait_for(1, WAIT).await.len(), 1);
    }
);

backend_test!(
    async fn a_webhook_moved_to_another_client_before_sending_gets_nothing_of_the_first(
        db: TestDb,
    ) {
        let h = Harness::start(db).await;
        let firm = firm_with_mission(&h, &[], None).await;
        let (receiver, endpoint) =
            receiver_endpoint(&h, &firm.admin, &["information_request.created"]).await;
        h.generate("2027-01-20T09:00:00Z", "2027-01-20").await;
        // Before the worker runs, the admin points the endpoint at another client's system.
        let other = h
            .ok(
                &firm.admin,
                "mutation { createClient(input: { name: \"Garage\" }) { id } }",
                json!({}),
            )
            .await;
        h.ok(
            &firm.admin,
            "mutation($id: ID!, $client: ID!) { updateWebhookEndpoint(input: { id: $id, clientId: $client }) { id } }",
            json!({ "id": endpoint, "client": other["createClient"]["id"] }),
        )
        .await;
        let run = h.run("2027-01-20T09:00:00Z").await;
        assert_eq!((run.delivered, run.skipped), (0, 1), "{run:?}");
        assert!(
            receiver.received().is_empty(),
            "the first client's request did not leave"
        );
        let rows = h.deliveries(firm.id).await;
        assert_eq!(rows[0].status, DeliveryStatus::Skipped);
    }
);

backend_test!(
    async fn every_answer_and_every_closure_reaches_the_webhook_not_only_the_first(db: TestDb) {
        let h = Harness::start(db).await;
        let firm =
            firm_with_mission(&h, &[("Marie Martin", "marie@bakery.example", None)], None).await;
        let (receiver, _) = receiver_endpoint(
            &h,
            &firm.admin,
            &["information_request.answered", "information_request.closed"],
        )
        .await;
        h.generate("2027-01-20T09:00:00Z", "2027-01-20").await;
        let data = h
            .ok(
                &firm.admin,
                "mutation($id: ID!) { createContactAccessToken(input: { contactId: $id }) }",
                json!({ "id": firm.contacts[0] }),
            )
            .await;
        let contact = h
            .caller(data["createContactAccessToken"].as_str().expect("token"))
            .await;
        let requests = h
            .ok(
                &contact,
                "{ client { requests { nodes { id } } } }",
                json!({}),
            )
            .await;
        let id = requests["client"]["requests"]["nodes"][0]["id"].clone();
        for message in ["Premier envoi", "Il manquait une facture"] {
            h.ok(
                &contact,
                "mutation($id: ID!, $m: String!) { answerRequest(input: { id: $id, message: $m }) { status } }",
                json!({ "id": id, "m": message }),
            )
            .await;
        }
        for mutation in [
            "mutation($id: ID!) { closeRequest(id: $id) { status } }",
            "mutation($id: ID!) { reopenRequest(id: $id) { status } }",
            "mutation($id: ID!) { closeRequest(id: $id) { status } }",
        ] {
            h.ok(&firm.admin, mutation, json!({ "id": id })).await;
        }
        h.run("2027-01-20T09:00:00Z").await;
        let hooks = receiver.wait_for(4, WAIT).await;
        let mut types: Vec<String> = hooks
            .iter()
            .map(|hook| {
                serde_json::from_str::<Value>(&hook.body).expect("JSON")["type"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect();
        types.sort();
        assert_eq!(
            types,
            [
                "information_request.answered",
                "information_request.answered",
                "information_request.closed",
                "information_request.closed"
            ]
        );
        let mut ids: Vec<&str> = hooks.iter().map(|hook| hook.webhook_id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 4, "each announcement has its own webhook-id");
    }
);

backend_test!(
    async fn a_client_email_whose_turn_comes_at_night_waits_for_the_morning(db: TestDb) {
        let h = Harness::start(db).await;
        let firm =
            firm_with_mission(&h, &[("Marie Martin", "marie@bakery.example", None)], None).await;
        // Enqueued at 10:00 in Paris, due at once; but the worker only gets to it at 22:30.
        h.generate("2027-01-20T09:00:00Z", "2027-01-20").await;
        let run = h.run("2027-01-20T21:30:00Z").await;
        assert_eq!(run.delivered, 0, "{run:?}");
        assert!(h.sink.messages().is_empty(), "nothing leaves at night");
        let rows = h.deliveries(firm.id).await;
        assert_eq!(rows[0].status, DeliveryStatus::Pending);
        assert_eq!(rows[0].attempts, 0, "waiting is not an attempt");
        assert_eq!(
            rows[0].next_attempt_at.and_utc(),
            at("2027-01-21T07:00:00Z"),
            "08:00 the next morning in Paris"
        );
        assert_eq!(h.run("2027-01-21T06:59:00Z").await.total(), 0);
        assert_eq!(h.run("2027-01-21T07:00:00Z").await.delivered, 1);
        assert_eq!(h.sink.wait_for(1, WAIT).await.len(), 1);
    }
);

backend_test!(
    async fn two_workers_on_the_same_outbox_never_send_a_delivery_twice(db: TestDb) {
        let h = Harness::start(db).await;
        let contacts: Vec<(String, String)> = (0..12)
            .map(|i| (format!("Contact {i}"), format!("contact{i}@bakery.example")))
            .collect();
        let borrowed: Vec<(&str, &str, Option<&str>)> = contacts
            .iter()
            .map(|(name, email)| (name.as_str(), email.as_str(), None))
            .collect();
        let firm = firm_with_mission(&h, &borrowed, None).await;
        let (receiver, _) =
            receiver_endpoint(&h, &firm.admin, &["information_request.created"]).await;
        h.generate("2027-01-20T09:00:00Z", "2027-01-20").await;
        let (first, second) = (h.another_worker(), h.another_worker());
        let now = at("2027-01-20T09:00:00Z");
        let (a, b) = tokio::join!(first.run_once(now), second.run_once(now));
        let (a, b) = (a.expect("first runs"), b.expect("second runs"));
        assert_eq!(a.delivered + b.delivered, 13, "{a:?} {b:?}");
        let mails = h.sink.wait_for(12, WAIT).await;
        let mut ids = message_ids(&mails);
        ids.sort();
        ids.dedup();
        assert_eq!((mails.len(), ids.len()), (12, 12));
        assert_eq!(receiver.wait_for(1, WAIT).await.len(), 1);
    }
);

backend_test!(
    async fn the_running_worker_wakes_as_soon_as_generation_enqueues(db: TestDb) {
        // Polling once an hour: only the wake-up can explain a prompt delivery.
        let h =
            Harness::start_with(db, |config| config.delivery.poll_interval_seconds = 3600).await;
        let firm = firm_with_mission(&h, &[], None).await;
        let (receiver, _) =
            receiver_endpoint(&h, &firm.admin, &["information_request.created"]).await;
        let handle = h.worker.clone().spawn(Some(&h.events));
        // Let the worker go idle first: it finds nothing and waits.
        tokio::task::yield_now().await;
        let report = run_pass(
            h.pool(),
            &GenerationSettings::default(),
            Utc::now(),
            Some(day("2027-01-20")),
            Some(&h.events),
        )
        .await
        .expect("generation");
        assert_eq!(report.requests_created, 1);
        let hooks = receiver.wait_for(1, WAIT).await;
        assert_eq!(hooks.len(), 1);
        assert!(hooks[0].signature_valid);
        handle.shutdown().await;
    }
);

const REDELIVER: &str =
    "mutation($id: ID!) { redeliver(id: $id) { id status attempts deliveryId } }";

backend_test!(
    async fn any_staff_member_redelivers_a_failed_delivery_with_the_same_message_id(db: TestDb) {
        let h = Harness::start(db).await;
        let firm =
            firm_with_mission(&h, &[("Marie Martin", "marie@bakery.example", None)], None).await;
        let invitation = h
            .ok(
                &firm.admin,
                r#"mutation { inviteStaffMember(input: { email: "member@dupont.example", name: "Member" }) { temporaryPassword } }"#,
                json!({}),
            )
            .await;
        let member = h
            .login(
                "member@dupont.example",
                invitation["inviteStaffMember"]["temporaryPassword"]
                    .as_str()
                    .expect("password"),
            )
            .await;
        h.generate("2027-01-20T09:00:00Z", "2027-01-20").await;
        h.sink.fail_next_data(550, 1);
        assert_eq!(h.run("2027-01-20T09:00:00Z").await.failed, 1);
        let email = &h
            .deliveries_of(firm.id, DeliveryKind::Email, DeliveryEvent::RequestCreated)
            .await[0];

        let data = h
            .ok(&member, REDELIVER, json!({ "id": crate::support::app::gid(crate::support::app::Kind::Delivery, email.id) }))
            .await;
        assert_eq!(data["redeliver"]["status"], "PENDING");
        assert_eq!(data["redeliver"]["attempts"], 0);
        assert_eq!(data["redeliver"]["deliveryId"], email.delivery_uid.as_str());
        // Redelivered in the firm's daytime (the real clock may be at night in Paris).
        let requeued = h.delivery(firm.id, email.id).await;
        let due = requeued.next_attempt_at.and_utc();
        assert_eq!(h.worker.run_once(due).await.expect("runs").delivered, 1);
        let mails = h.sink.wait_for(1, WAIT).await;
        assert_eq!(
            parse(&mails[0].data).message_id,
            Some(format!("<{}@rappel.example>", email.delivery_uid))
        );
        assert_eq!(h.attempts(email.id).await.len(), 2);

        let again = h
            .exec(&member, REDELIVER, json!({ "id": crate::support::app::gid(crate::support::app::Kind::Delivery, email.id) }))
            .await;
        assert_eq!(codes(&again), ["CONFLICT"]);
        let unknown = h
            .exec(&member, REDELIVER, json!({ "id": "RGVsaXZlcnk6OTk5OTk5" }))
            .await;
        assert_eq!(codes(&unknown), ["NOT_FOUND"]);
        let anonymous = h
            .exec(
                &Caller::Anonymous,
                REDELIVER,
                json!({ "id": crate::support::app::gid(crate::support::app::Kind::Delivery, email.id) }),
            )
            .await;
        assert_eq!(codes(&anonymous), ["UNAUTHENTICATED"]);
        // Endpoint management is for admins.
        let response = h
            .exec(
                &member,
                CREATE_ENDPOINT,
                json!({ "url": "https://hooks.example.com/x", "events": ["INFORMATION_REQUEST_CREATED"] }),
            )
            .await;
        assert_eq!(codes(&response), ["FORBIDDEN"]);
    }
);

backend_test!(
    async fn admins_manage_endpoints_and_see_each_secret_only_once(db: TestDb) {
        let h = Harness::start(db).await;
        let firm = firm_with_mission(&h, &[], None).await;
        let receiver = webhooks::start_without_secret().await;
        let data = h
            .ok(
                &firm.admin,
                CREATE_ENDPOINT,
                json!({
                    "url": receiver.url,
                    "events": ["INFORMATION_REQUEST_CLOSED", "INFORMATION_REQUEST_CREATED"],
                    "client": firm.client,
                }),
            )
            .await;
        let created = &data["createWebhookEndpoint"];
        let id = created["endpoint"]["id"].as_str().expect("id").to_string();
        let first_secret = created["secret"].as_str().expect("secret").to_string();
        assert!(first_secret.starts_with("whsec_"));
        assert_eq!(
            created["endpoint"]["events"],
            json!(["INFORMATION_REQUEST_CREATED", "INFORMATION_REQUEST_CLOSED"])
        );
        // The endpoint type has no secret field at all.
        let response = h
            .exec(
                &firm.admin,
                "{ firm { webhookEndpoints { nodes { id secret } } } }",
                json!({}),
            )
            .await;
        assert_eq!(codes(&response), ["GRAPHQL_VALIDATION_FAILED"]);

        let data = h
            .ok(
                &firm.admin,
                "mutation($id: ID!) { updateWebhookEndpoint(input: { id: $id, events: [INFORMATION_REQUEST_REMINDER], clientId: null }) { events clientId } }",
                json!({ "id": id }),
            )
            .await;
        assert_eq!(
            data["updateWebhookEndpoint"],
            json!({ "events": ["INFORMATION_REQUEST_REMINDER"], "clientId": null })
        );
        let bad = h
            .exec(
                &firm.admin,
                "mutation($id: ID!) { updateWebhookEndpoint(input: { id: $id, events: [TASK_CREATED] }) { id } }",
                json!({ "id": id }),
            )
            .await;
        assert_eq!(codes(&bad), ["BAD_USER_INPUT"], "not a WebhookEvent: {bad}");
        let none = h
            .exec(
                &firm.admin,
                "mutation($id: ID!) { updateWebhookEndpoint(input: { id: $id, events: [] }) { id } }",
                json!({ "id": id }),
            )
            .await;
        assert_eq!(codes(&none), ["BAD_USER_INPUT"], "no event at all: {none}");

        let data = h
            .ok(
                &firm.admin,
                "mutation($id: ID!) { disableWebhookEndpoint(input: { id: $id, reason: \"maintenance\" }) { enabled disabledReason } }",
                json!({ "id": id }),
            )
            .await;
        assert_eq!(
            data["disableWebhookEndpoint"],
            json!({ "enabled": false, "disabledReason": "maintenance" })
        );
        let data = h
            .ok(
                &firm.admin,
                "mutation($id: ID!) { enableWebhookEndpoint(id: $id) { enabled disabledReason } }",
                json!({ "id": id }),
            )
            .await;
        assert_eq!(
            data["enableWebhookEndpoint"],
            json!({ "enabled": true, "disabledReason": null })
        );
        let data = h
            .ok(
                &firm.admin,
                "mutation($id: ID!) { updateWebhookEndpoint(input: { id: $id, events: [INFORMATION_REQUEST_CREATED] }) { id } }",
                json!({ "id": id }),
            )
            .await;
        assert_eq!(data["updateWebhookEndpoint"]["id"], id.as_str());

        let data = h
            .ok(
                &firm.admin,
                "mutation($id: ID!) { rotateWebhookSecret(id: $id) { secret endpoint { id } } }",
                json!({ "id": id }),
            )
            .await;
        let new_secret = data["rotateWebhookSecret"]["secret"]
            .as_str()
            .expect("secret");
        assert_ne!(new_secret, first_secret);
        // Deliveries are signed with the new secret.
        receiver.set_secret(new_secret);
        h.generate("2027-01-20T09:00:00Z", "2027-01-20").await;
        assert_eq!(h.run("2027-01-20T09:00:00Z").await.delivered, 1);
        let hooks = receiver.wait_for(1, WAIT).await;
        assert!(hooks[0].signature_valid);

        // Another firm cannot see or touch it.
        rappel::setup::create_firm(
            h.pool(),
            "Cabinet Autre",
            "admin@autre.example",
            Some(PASSWORD),
            "Europe/Paris",
            "fr",
        )
        .await
        .expect("other firm");
        let other = h.login("admin@autre.example", PASSWORD).await;
        let foreign = h
            .exec(
                &other,
                "mutation($id: ID!) { deleteWebhookEndpoint(id: $id) }",
                json!({ "id": id }),
            )
            .await;
        assert_eq!(codes(&foreign), ["NOT_FOUND"]);

        let data = h
            .ok(
                &firm.admin,
                "mutation($id: ID!) { deleteWebhookEndpoint(id: $id) }",
                json!({ "id": id }),
            )
            .await;
        assert_eq!(data["deleteWebhookEndpoint"], true);
        let data = h
            .ok(
                &firm.admin,
                "{ firm { webhookEndpoints { nodes { id } } } }",
                json!({}),
            )
            .await;
        assert_eq!(data["firm"]["webhookEndpoints"]["nodes"], json!([]));
        // Its past delivery stays in the outbox.
        assert_eq!(
            h.deliveries_of(
                firm.id,
                DeliveryKind::Webhook,
                DeliveryEvent::RequestCreated
            )
            .await
            .len(),
            1
        );
    }
);

backend_test!(
    async fn an_endpoint_failing_for_the_configured_days_is_disabled_and_the_admins_are_emailed(
        db: TestDb,
    ) {
        let h = Harness::start(db).await;
        let firm = firm_with_mission(&h, &[], None).await;
        let (receiver, endpoint_id) =
            receiver_endpoint(&h, &firm.admin, &["information_request.created"]).await;
        receiver.respond_with(vec![503; 50]);
        h.generate("2027-01-20T09:00:00Z", "2027-01-20").await;
        assert_eq!(h.run("2027-01-20T09:00:00Z").await.retrying, 1);
        assert_eq!(h.run("2027-01-22T09:00:00Z").await.retrying, 1);
        let query =
            "{ firm { webhookEndpoints { nodes { enabled disabledReason failingSince } } } }";
        let data = h.ok(&firm.admin, query, json!({})).await;
        assert_eq!(
            data["firm"]["webhookEndpoints"]["nodes"][0]["enabled"],
            true
        );
        assert_eq!(
            data["firm"]["webhookEndpoints"]["nodes"][0]["failingSince"],
            "2027-01-20T09:00:00+00:00"
        );
        // Five days after the first failure (the default), the next failure disables it.
        let run = h.run("2027-01-25T09:00:01Z").await;
        assert_eq!(run.retrying, 1, "{run:?}");
        assert_eq!(
            run.delivered, 1,
            "the admin notice leaves in the same run: {run:?}"
        );
        let data = h.ok(&firm.admin, query, json!({})).await;
        let endpoint = &data["firm"]["webhookEndpoints"]["nodes"][0];
        assert_eq!(endpoint["enabled"], false);
        assert!(
            endpoint["disabledReason"]
                .as_str()
                .is_some_and(|reason| reason.starts_with("failing since 2027-01-20T09:00:00Z")),
            "{endpoint}"
        );
        let mails = h.sink.wait_for(1, WAIT).await;
        assert_eq!(mails.len(), 1);
        assert_eq!(mails[0].rcpt_to, ["admin@dupont.example"]);
        let mail = parse(&mails[0].data);
        assert_eq!(
            mail.subject.as_deref(),
            Some("Cabinet Dupont : un point de terminaison webhook a été désactivé")
        );
        let text = mail.text_body.expect("text part");
        assert!(text.contains(&receiver.url), "{text}");
        assert!(text.contains("20 janvier 2027"), "{text}");
        // The disabled endpoint gets nothing more: its pending delivery is not sent.
        let sent_so_far = receiver.received().len();
        let run = h.run("2027-01-30T09:00:00Z").await;
        assert_eq!(run.skipped, 1, "{run:?}");
        assert_eq!(receiver.received().len(), sent_so_far);
        let notices = h
            .deliveries_of(
                firm.id,
                DeliveryKind::Email,
                DeliveryEvent::EndpointDisabled,
            )
            .await;
        assert_eq!(notices.len(), 1);
        assert!(notices[0].payload.contains(&endpoint_id));
    }
);

backend_test!(
    async fn reminders_follow_the_services_policy_dates_in_the_firms_calendar(db: TestDb) {
        let h = Harness::start(db).await;
        let firm = firm_with_mission(
            &h,
            &[("Marie Martin", "marie@bakery.example", None)],
            Some(json!({ "daysBefore": 2, "onDueDate": true, "everyDays": 3, "maxCount": 3 })),
        )
        .await;
        let (receiver, _) =
            receiver_endpoint(&h, &firm.admin, &["information_request.reminder"]).await;
        h.generate("2027-01-20T09:00:00Z", "2027-01-20").await;
        h.run("2027-01-20T09:00:00Z").await;
        // Every day at 00:30 in Paris (23:30 UTC the day before) and again at noon: reminders
        // are enqueued on the firm's local date, and leave at its sending hour.
        let mut reminded_on = Vec::new();
        let mut date = day("2027-01-21");
        while date <= day("2027-02-15") {
            let previous = date.pred_opt().expect("a day before");
            let night = h.remind(&format!("{previous}T23:30:00Z")).await;
            let noon = h.remind(&format!("{date}T11:00:00Z")).await;
            assert_eq!(noon.deliveries_enqueued, 0, "{date}: enqueued twice");
            if night.deliveries_enqueued > 0 {
                assert_eq!(
                    night.deliveries_enqueued, 2,
                    "{date}: an email and a webhook"
                );
                reminded_on.push(date.to_string());
                assert_eq!(h.run(&format!("{previous}T23:30:00Z")).await.delivered, 1);
                assert_eq!(h.run(&format!("{date}T07:00:00Z")).await.delivered, 1);
            }
            date = date.succ_opt().expect("a day after");
        }
        assert_eq!(reminded_on, ["2027-01-28", "2027-01-30", "2027-02-02"]);
        let mails = h.sink.wait_for(4, WAIT).await;
        assert_eq!(mails.len(), 4, "the request, then three reminders");
        for mail in &mails[1..] {
            let subject = parse(&mail.data).subject.unwrap_or_default();
            assert!(subject.starts_with("Relance : Cabinet Dupont"), "{subject}");
        }
        let hooks = receiver.wait_for(3, WAIT).await;
        let numbers: Vec<Value> = hooks
            .iter()
            .map(|hook| {
                let body: Value = serde_json::from_str(&hook.body).expect("JSON");
                assert_eq!(body["type"], "information_request.reminder");
                body["data"]["reminderNumber"].clone()
            })
            .collect();
        assert_eq!(numbers, [json!(1), json!(2), json!(3)]);
        assert!(hooks.iter().all(|hook| hook.signature_valid));
        // The journal holds each email the contact's server accepted, as the system's.
        let mut conn = h.pool().get().await.expect("connection");
        let mut entries = rappel::db::journal::list(
            &mut conn.as_db(),
            firm.id,
            &rappel::db::journal::JournalFilter {
                kinds: vec!["request.sent".into(), "request.reminded".into()],
                ..Default::default()
            },
            &rappel::db::page::Keyset::first(100),
        )
        .await
        .expect("journal");
        entries.reverse();
        let kinds: Vec<&str> = entries.iter().map(|entry| entry.kind.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "request.sent",
                "request.reminded",
                "request.reminded",
                "request.reminded"
            ]
        );
        for entry in &entries {
            assert_eq!(entry.actor_kind, "SYSTEM");
            let detail: Value =
                serde_json::from_str(entry.detail.as_deref().expect("detail")).expect("JSON");
            assert_eq!(
                detail["contactId"].to_string(),
                crate::support::app::row_id(&firm.contacts[0]).to_string(),
                "{detail}"
            );
        }
    }
);

backend_test!(
    async fn an_answer_stops_the_next_reminder_even_one_already_enqueued(db: TestDb) {
        let h = Harness::start(db).await;
        let firm =
            firm_with_mission(&h, &[("Marie Martin", "marie@bakery.example", None)], None).await;
        let (receiver, _) =
            receiver_endpoint(&h, &firm.admin, &["information_request.reminder"]).await;
        h.generate("2027-01-20T09:00:00Z", "2027-01-20").await;
        h.run("2027-01-20T09:00:00Z").await;
        // Default policy: 3 days before the due date (01-27) is the first reminder.
        assert_eq!(
            h.remind("2027-01-27T01:00:00Z").await.deliveries_enqueued,
            2
        );
        let data = h
            .ok(
                &firm.admin,
                "mutation($id: ID!) { createContactAccessToken(input: { contactId: $id }) }",
                json!({ "id": firm.contacts[0] }),
            )
            .await;
        let contact = h
            .caller(data["createContactAccessToken"].as_str().expect("token"))
            .await;
        let requests = h
            .ok(
                &contact,
                "{ client { requests { nodes { id } } } }",
                json!({}),
            )
            .await;
        let request_id = requests["client"]["requests"]["nodes"][0]["id"].clone();
        // The client answers before the 08:00 sending hour.
        h.ok(
            &contact,
            "mutation($id: ID!) { answerRequest(input: { id: $id, message: \"Envoyé par courrier\" }) { status } }",
            json!({ "id": request_id }),
        )
        .await;
        let run = h.run("2027-01-27T07:00:00Z").await;
        assert_eq!(run.skipped, 2, "{run:?}");
        // The request itself to the contact; the firm's admin hears of the answer.
        let (to_firm, to_client): (Vec<_>, Vec<_>) =
            h.sink.messages().into_iter().partition(|mail| {
                mail.rcpt_to
                    .iter()
                    .any(|to| to.contains("admin@dupont.example"))
            });
        assert_eq!(to_client.len(), 1, "only the request itself");
        assert_eq!(to_firm.len(), 1, "the firm's notice of the answer");
        assert!(receiver.received().is_empty());
        for reminder in h
            .deliveries(firm.id)
            .await
            .into_iter()
            .filter(|row| row.event == DeliveryEvent::RequestReminder)
        {
            assert_eq!(reminder.status, DeliveryStatus::Skipped);
            assert_eq!(
                reminder.last_error.as_deref(),
                Some("not sent: the request was answered before sending")
            );
        }
        for date in ["2027-01-30", "2027-02-06", "2027-02-13"] {
            let report = h.remind(&format!("{date}T09:00:00Z")).await;
            assert_eq!(report.deliveries_enqueued, 0, "{date}");
        }
    }
);

backend_test!(
    async fn a_contact_who_unsubscribed_with_one_click_gets_no_more_reminders(db: TestDb) {
        let h = Harness::start(db).await;
        let firm = firm_with_mission(
            &h,
            &[
                ("Marie Martin", "marie@bakery.example", None),
                ("Paul Martin", "paul@bakery.example", None),
            ],
            None,
        )
        .await;
        h.generate("2027-01-20T09:00:00Z", "2027-01-20").await;
        h.run("2027-01-20T09:00:00Z").await;
        let mails = h.sink.wait_for(2, WAIT).await;
        let marie = mails
            .iter()
            .find(|mail| mail.rcpt_to == ["marie@bakery.example"])
            .map(|mail| parse(&mail.data))
            .expect("Marie's email");
        let link = marie
            .list_unsubscribe
            .as_deref()
            .expect("List-Unsubscribe")
            .trim_start_matches('<')
            .trim_end_matches('>')
            .to_string();
        assert!(link.starts_with(&h.config.public_base_url), "{link}");
        assert!(
            marie.text_body.as_deref().expect("text").contains(&link),
            "the body carries the same link"
        );
        // A reminder enqueued before the click is not sent after it.
        assert_eq!(
            h.remind("2027-01-27T01:00:00Z").await.deliveries_enqueued,
            2
        );

        let http = reqwest::Client::new();
        let page = http.get(&link).send().await.expect("GET");
        assert_eq!(page.status(), 200);
        let page = page.text().await.expect("page");
        assert!(page.contains("method=\"post\""), "{page}");
        let clicked = http
            .post(&link)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("List-Unsubscribe=One-Click")
            .send()
            .await
            .expect("POST");
        assert_eq!(clicked.status(), 200);
        let again = http
            .post(&link)
            .body("List-Unsubscribe=One-Click")
            .send()
            .await
            .expect("POST");
        assert_eq!(again.status(), 200, "a second click is harmless");
        let forged = http
            .post(format!(
                "{}/unsubscribe?token=rpl_forged",
                h.config.public_base_url
            ))
            .send()
            .await
            .expect("POST");
        assert_eq!(forged.status(), 404);
        let marie_id = crate::support::app::row_id(&firm.contacts[0]);
        {
            let mut conn = h.pool().get().await.expect("connection");
            let row = clients::find_contact(&mut conn.as_db(), firm.id, marie_id)
                .await
                .expect("contact");
            assert!(!row.notifications_enabled);
        }

        let run = h.run("2027-01-27T07:00:00Z").await;
        assert_eq!((run.delivered, run.skipped), (1, 1), "{run:?}");
        let skipped = h
            .deliveries(firm.id)
            .await
            .into_iter()
            .find(|row| {
                row.contact_id == Some(marie_id) && row.event == DeliveryEvent::RequestReminder
            })
            .expect("Marie's first reminder");
        assert_eq!(skipped.status, DeliveryStatus::Skipped);
        assert_eq!(
            skipped.last_error.as_deref(),
            Some("not sent: the contact unsubscribed before sending")
        );
        // The next reminder is enqueued for her too, and recorded SKIPPED: the firm sees it.
        let report = h.remind("2027-01-30T09:00:00Z").await;
        assert_eq!(report.deliveries_enqueued, 2);
        let reminders_to_marie = h
            .deliveries(firm.id)
            .await
            .into_iter()
            .filter(|row| {
                row.contact_id == Some(marie_id) && row.event == DeliveryEvent::RequestReminder
            })
            .count();
        assert_eq!(reminders_to_marie, 2);
        let run = h.run("2027-01-30T09:00:00Z").await;
        assert_eq!((run.delivered, run.skipped), (1, 1), "{run:?}");
        let skipped = h
            .deliveries(firm.id)
            .await
            .into_iter()
            .filter(|row| {
                row.contact_id == Some(marie_id)
                    && row.event == DeliveryEvent::RequestReminder
                    && row.status == DeliveryStatus::Skipped
            })
            .count();
        assert_eq!(skipped, 2, "both reminders show as SKIPPED");
        let contact = h
            .ok(
                &firm.admin,
                "query($c: ID!) { firm { client(id: $c) { contacts { nodes { email unsubscribedAt } } } } }",
                json!({ "c": firm.client }),
            )
            .await;
        let contacts = contact["firm"]["client"]["contacts"]["nodes"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let marie_row = contacts
            .iter()
            .find(|row| row["email"] == "marie@bakery.example")
            .expect("Marie");
        assert!(
            marie_row["unsubscribedAt"].is_string(),
            "the firm sees it: {marie_row}"
        );
        let to_marie = h
            .sink
            .messages()
            .iter()
            .filter(|mail| mail.rcpt_to == ["marie@bakery.example"])
            .count();
        assert_eq!(
            to_marie, 1,
            "only the request itself, before she unsubscribed"
        );
    }
);

/// Makes storing a sign-in or unsubscribe token of one contact fail (`contact_id`), or lifts
/// that failure again.
async fn fail_tokens_of(db: &TestDb, contact_id: Option<i64>) {
    use diesel_async::SimpleAsyncConnection as _;
    let sql = match (db.backend, contact_id) {
        (Backend::Sqlite, Some(id)) => format!(
            "CREATE TRIGGER fail_tokens BEFORE INSERT ON access_tokens WHEN NEW.contact_id = {id} \
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END;"
        ),
        (Backend::Sqlite, None) => "DROP TRIGGER fail_tokens;".to_string(),
        (Backend::Postgres, Some(id)) => format!(
            "CREATE FUNCTION fail_tokens() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$; \
             CREATE TRIGGER fail_tokens BEFORE INSERT ON access_tokens FOR EACH ROW \
             WHEN (NEW.contact_id = {id}) EXECUTE FUNCTION fail_tokens();"
        ),
        (Backend::Postgres, None) => {
            "DROP TRIGGER fail_tokens ON access_tokens; DROP FUNCTION fail_tokens();".to_string()
        }
    };
    let mut conn = db.pool.get().await.expect("conn");
    rappel::with_conn!(&mut conn, |c| c.batch_execute(&sql).await).expect("trigger");
}

/// Contacts' tokens stored (sign-in and unsubscribe links).
async fn contact_tokens(db: &TestDb) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    use diesel_async::RunQueryDsl as _;
    let mut conn = db.pool.get().await.expect("conn");
    let count: Count = rappel::with_conn!(&mut conn, |c| diesel::sql_query(
        "SELECT COUNT(*) AS n FROM access_tokens WHERE contact_id IS NOT NULL"
    )
    .get_result(c)
    .await)
    .expect("count");
    count.n
}

backend_test!(
    async fn the_links_of_a_batch_of_emails_are_stored_together_before_any_email_leaves(
        db: TestDb,
    ) {
        let h = Harness::start(db).await;
        let firm = firm_with_mission(
            &h,
            &[
                ("Marie Martin", "marie@bakery.example", None),
                ("Paul Martin", "paul@bakery.example", None),
                ("Jeanne Martin", "jeanne@bakery.example", None),
            ],
            None,
        )
        .await;
        h.generate("2027-03-20T09:00:00Z", "2027-03-20").await;
        let emails = h
            .deliveries_of(firm.id, DeliveryKind::Email, DeliveryEvent::RequestCreated)
            .await;
        // January to March for three contacts.
        assert_eq!(emails.len(), 9);

        // Paul's links cannot be stored: the batch's links are one transaction, so no email of
        // the batch leaves without its links, and none is half-prepared.
        fail_tokens_of(&h.db, Some(crate::support::app::row_id(&firm.contacts[1]))).await;
        let run = h.run("2027-03-20T09:00:00Z").await;
        assert_eq!((run.retrying, run.delivered), (9, 0), "{run:?}");
        assert_eq!(contact_tokens(&h.db).await, 0);
        for email in h
            .deliveries_of(firm.id, DeliveryKind::Email, DeliveryEvent::RequestCreated)
            .await
        {
            assert_eq!(email.status, DeliveryStatus::Pending);
            let attempts = h.attempts(email.id).await;
            assert_eq!(attempts.len(), 1);
            assert_eq!(attempts[0].outcome, "TRANSIENT_FAILURE");
        }

        // Once the links can be stored, every email leaves with its own two links.
        fail_tokens_of(&h.db, None).await;
        let run = h.run("2027-03-20T12:00:00Z").await;
        assert_eq!(run.delivered, 9, "{run:?}");
        assert_eq!(contact_tokens(&h.db).await, 18);
        let mails = h.sink.wait_for(9, WAIT).await;
        assert_eq!(mails.len(), 9);
        // Each email's sign-in link is its own, and it was stored before the email left.
        let mut tokens = Vec::new();
        for mail in &mails {
            let parsed = parse(&mail.data);
            let text = parsed.text_body.as_deref().expect("a text part");
            let token = link_after(text, "/sign-in?token=").to_owned();
            let caller = h
                .exec(
                    &Caller::Anonymous,
                    "mutation($t: String!) { redeemSignInLink(input: { token: $t }) { token } }",
                    json!({ "t": token }),
                )
                .await;
            assert!(
                caller["data"]["redeemSignInLink"]["token"].is_string(),
                "{caller}"
            );
            tokens.push(token);
        }
        tokens.sort();
        tokens.dedup();
        assert_eq!(tokens.len(), 9);
    }
);

/// A TLS front on `127.0.0.1` for the plain sink on `sink_port` (as an SMTPS relay on port 465
/// is): each connection is TLS from the first byte with `certificates`' server certificate, then
/// relayed to the sink. Returns the front's port.
async fn implicit_tls_front(
    certificates: &crate::support::imap::TestCertificates,
    sink_port: u16,
) -> u16 {
    use rustls_pki_types::pem::PemObject as _;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    use tokio_rustls::rustls;
    let chain = CertificateDer::pem_file_iter(&certificates.cert)
        .expect("certificate file")
        .collect::<Result<Vec<_>, _>>()
        .expect("certificates");
    let key = PrivateKeyDer::from_pem_file(&certificates.key).expect("key");
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .expect("server certificate");
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("front listens");
    let port = listener.local_addr().expect("front address").port();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(socket).await else {
                    return;
                };
                let Ok(mut sink) = tokio::net::TcpStream::connect(("127.0.0.1", sink_port)).await
                else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut sink).await;
            });
        }
    });
    port
}

/// `tls = "tls"` (SMTPS): the mailer speaks TLS from the first byte, checks the server's
/// certificate against the public roots plus `[smtp] ca_file`, and the message arrives whole;
/// without the CA the same server is refused (no email leaves over an unchecked TLS session).
#[tokio::test]
async fn implicit_tls_sends_through_a_relay_signed_by_the_configured_ca_and_refuses_without_it() {
    use rappel::delivery::email::Mailer;
    let dir = tempfile::tempdir().expect("temporary folder");
    let certificates = crate::support::imap::certificates(dir.path());
    let sink = SmtpSink::start().await;
    let port = implicit_tls_front(&certificates, sink.port).await;

    let mut config = Config::default().smtp;
    config.transport = "smtp".into();
    config.host = "127.0.0.1".into();
    config.port = port;
    config.tls = "tls".into();
    config.from_address = "rappel@cabinet.example".into();
    let message = lettre::Message::builder()
        .from("Cabinet <rappel@cabinet.example>".parse().expect("from"))
        .to("client@example.com".parse().expect("to"))
        .message_id(Some("<smtps-test@cabinet.example>".into()))
        .subject("Vos éléments de janvier")
        .body("Merci de déposer vos factures.".to_owned())
        .expect("message");

    // Public roots only: the test CA is unknown, the TLS handshake fails, nothing arrives.
    let untrusting = Mailer::from_config(&config).expect("mailer");
    let refused = untrusting
        .send(&message, "client@example.com")
        .await
        .expect_err("a certificate of an unknown CA is refused");
    assert!(
        refused.to_string().contains("TLS with 127.0.0.1"),
        "the error names the failed TLS session: {refused}"
    );
    assert!(
        sink.messages().is_empty(),
        "nothing went over the refused session"
    );

    config.ca_file = certificates.ca.display().to_string();
    let trusting = Mailer::from_config(&config).expect("mailer with the CA");
    for _ in 0..3 {
        trusting
            .send(&message, "client@example.com")
            .await
            .expect("sent over implicit TLS");
    }
    let received = sink.wait_for(3, WAIT).await;
    assert_eq!(received.len(), 3);
    for mail in &received {
        assert_eq!(mail.mail_from, "rappel@cabinet.example");
        assert_eq!(mail.rcpt_to, vec!["client@example.com".to_owned()]);
        let parsed = parse(&mail.data);
        assert_eq!(
            parsed.header("Message-ID"),
            Some("<smtps-test@cabinet.example>")
        );
        assert!(
            String::from_utf8_lossy(&mail.data).contains("Merci de d"),
            "the body arrived"
        );
    }
    // The pool reused its TLS connection: three emails, one TLS session to the relay.
    assert_eq!(sink.connection_count(), 1);

    // A file without a certificate stops the mailer's set-up with a clear error.
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").expect("written");
    config.ca_file = empty.display().to_string();
    let error = Mailer::from_config(&config).expect_err("no certificate in ca_file");
    assert!(
        error.to_string().contains("holds no certificate"),
        "{error}"
    );
}

/// A relay that takes one connection (relayed to the sink on `sink_port`) and answers every
/// other one `421 Too many connections` at once, as Postfix's anvil or a hosted relay's
/// concurrency limit does. Returns its port.
async fn one_connection_relay(sink_port: u16) -> u16 {
    use tokio::io::AsyncWriteExt as _;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("relay listens");
    let port = listener.local_addr().expect("relay address").port();
    tokio::spawn(async move {
        let mut taken = false;
        while let Ok((mut socket, _)) = listener.accept().await {
            if taken {
                let _ = socket
                    .write_all(b"421 4.7.0 Too many connections from your host\r\n")
                    .await;
                continue;
            }
            taken = true;
            tokio::spawn(async move {
                let Ok(mut sink) = tokio::net::TcpStream::connect(("127.0.0.1", sink_port)).await
                else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut socket, &mut sink).await;
            });
        }
    });
    port
}

/// Emails waiting for an SMTP connection are not failed by a relay refusing one connection too
/// many: they wait for the open one, and all leave over it.
#[tokio::test]
async fn a_relay_refusing_extra_connections_fails_no_email_that_the_open_one_can_carry() {
    use rappel::delivery::email::Mailer;
    let sink = SmtpSink::start().await;
    let port = one_connection_relay(sink.port).await;
    let mut config = Config::default().smtp;
    config.transport = "smtp".into();
    config.host = "127.0.0.1".into();
    config.port = port;
    config.pool_size = 4;
    config.from_address = "rappel@cabinet.example".into();
    let mailer = Mailer::from_config(&config).expect("mailer");
    let message = lettre::Message::builder()
        .from("Cabinet <rappel@cabinet.example>".parse().expect("from"))
        .to("client@example.com".parse().expect("to"))
        .subject("Vos éléments de janvier")
        .body("Merci de déposer vos factures.".to_owned())
        .expect("message");
    let sends = (0..8).map(|_| mailer.send(&message, "client@example.com"));
    let results = futures_util::future::join_all(sends).await;
    for result in &results {
        assert!(result.is_ok(), "every email leaves: {results:?}");
    }
    assert_eq!(sink.wait_for(8, WAIT).await.len(), 8);
    assert_eq!(
        sink.connection_count(),
        1,
        "all over the one open connection"
    );
}

/// Rows a counting query finds (`SELECT COUNT(*) AS n ...`).
async fn count_of(db: &TestDb, sql: &str) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    use diesel_async::RunQueryDsl as _;
    let mut conn = db.pool.get().await.expect("conn");
    let count: Count =
        rappel::with_conn!(&mut conn, |c| diesel::sql_query(sql).get_result(c).await)
            .expect("count");
    count.n
}

/// What [`six_requests_claimed`] set up and claimed.
struct Claimed {
    firm: Firm,
    first: WebhookReceiver,
    second: WebhookReceiver,
    emails: Vec<Delivery>,
    hooks: Vec<Delivery>,
    now: DateTime<Utc>,
}

/// A firm whose mission's six requests (January to June) are each emailed to three contacts
/// and posted to two endpoints (real receivers), every delivery claimed at once.
async fn six_requests_claimed(h: &Harness) -> Claimed {
    let firm = firm_with_mission(
        h,
        &[
            ("Marie Martin", "marie@bakery.example", None),
            ("Paul Martin", "paul@bakery.example", None),
            ("Jeanne Martin", "jeanne@bakery.example", None),
        ],
        None,
    )
    .await;
    let (first, _) = receiver_endpoint(h, &firm.admin, &["information_request.created"]).await;
    let (second, _) = receiver_endpoint(h, &firm.admin, &["information_request.created"]).await;
    h.generate("2027-06-20T09:00:00Z", "2027-06-20").await;
    let now = at("2027-06-20T09:00:00Z");
    let claimed = h.worker.claim(now, 100).await.expect("claims");
    let (emails, hooks): (Vec<Delivery>, Vec<Delivery>) = claimed
        .into_iter()
        .partition(|row| row.kind == DeliveryKind::Email);
    assert_eq!((emails.len(), hooks.len()), (18, 12));
    Claimed {
        firm,
        first,
        second,
        emails,
        hooks,
        now,
    }
}

/// Emails to three contacts and webhooks to two endpoints, sent for real (loopback SMTP sink,
/// signed POSTs to two receivers), then recorded in groups of 2 and of the rest: a group's
/// record runs the same statements whatever its size, and every row of it is recorded.
async fn recording_a_group_runs_the_same_statements_whatever_its_size(db: TestDb) {
    use crate::support::statements::{statements_of, texts_of};
    use rappel::delivery::outbox::{Attempt, Settled};
    let h = Harness::start(db).await;
    let Claimed {
        firm,
        first,
        second,
        emails,
        hooks,
        now,
    } = six_requests_claimed(&h).await;

    let url = h.db.url.clone();
    let mut costs = Vec::new();
    for group in [&emails[..2], &emails[2..], &hooks[..2], &hooks[2..]] {
        let mut attempts = Vec::new();
        for delivery in group {
            let attempt = h.worker.attempt(delivery, now).await;
            assert!(matches!(attempt, Attempt::Sent { .. }), "{attempt:?}");
            attempts.push(attempt);
        }
        let items: Vec<(&Delivery, &Attempt)> = group.iter().zip(&attempts).collect();
        let (before, texts_before) = (statements_of(&url).data, texts_of(&url).len());
        let settled = h.worker.record_group(&items, now).await;
        let cost = statements_of(&url).data - before;
        let texts = texts_of(&url)[texts_before..].join("\n");
        assert_eq!(settled.len(), group.len());
        for outcome in settled {
            assert_eq!(outcome.expect("recorded"), Settled::Delivered);
        }
        costs.push((group.len(), cost, texts));
    }
    let [small_emails, emails_rest, small_hooks, hooks_rest] = &costs[..] else {
        unreachable!("four groups")
    };
    assert_eq!(
        emails_rest.1, small_emails.1,
        "{} emails are recorded with the statements of {}:\n{}\n---\n{}",
        emails_rest.0, small_emails.0, emails_rest.2, small_emails.2
    );
    assert_eq!(
        hooks_rest.1, small_hooks.1,
        "{} webhooks are recorded with the statements of {}:\n{}\n---\n{}",
        hooks_rest.0, small_hooks.0, hooks_rest.2, small_hooks.2
    );
    // BEGIN, the attempts, the states, the requests, the journal, COMMIT (emails); BEGIN, the
    // attempts, the states, the endpoints, COMMIT (webhooks). Before grouping: 56 statements
    // for 16 emails on SQLite, 41 on PostgreSQL.
    assert_eq!(emails_rest.1, 6, "{}", emails_rest.2);
    assert_eq!(hooks_rest.1, 5, "{}", hooks_rest.2);

    // Every row was recorded: delivered, one attempt each, each email journalled once.
    for row in h.deliveries(firm.id).await {
        assert_eq!(row.status, DeliveryStatus::Delivered, "{row:?}");
        assert_eq!(row.lease_until, None);
        let attempts = h.attempts(row.id).await;
        assert_eq!(attempts.len(), 1);
        assert_eq!(attempts[0].outcome, "DELIVERED");
    }
    assert_eq!(
        count_of(
            &h.db,
            "SELECT COUNT(*) AS n FROM journal_entries WHERE kind = 'request.sent'"
        )
        .await,
        18
    );
    assert_eq!(h.sink.wait_for(18, WAIT).await.len(), 18);
    assert_eq!(first.wait_for(6, WAIT).await.len(), 6);
    assert_eq!(second.wait_for(6, WAIT).await.len(), 6);
}

/// Preparing a batch reads its firms, requests, contacts, clients, lines and endpoints ahead:
/// one email (one request, one contact) and seventeen (six requests, three contacts) cost the
/// same statements, as do one webhook and eleven (two endpoints, six requests); every email
/// and webhook still leaves, to the right address.
async fn preparing_a_batch_runs_the_same_statements_whatever_its_size(db: TestDb) {
    use crate::support::statements::{statements_of, texts_of};
    use rappel::delivery::outbox::Attempt;
    let h = Harness::start(db).await;
    let Claimed {
        firm: _,
        first,
        second,
        emails,
        hooks,
        now,
    } = six_requests_claimed(&h).await;
    let distinct = |rows: &[Delivery], of: fn(&Delivery) -> Option<i64>| {
        rows.iter()
            .filter_map(of)
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    };
    assert_eq!(distinct(&emails[1..], |row| row.request_id), 6);
    assert_eq!(distinct(&emails[1..], |row| row.contact_id), 3);
    assert_eq!(distinct(&hooks[1..], |row| row.webhook_endpoint_id), 2);

    let url = h.db.url.clone();
    let mut costs = Vec::new();
    for batch in [&emails[..1], &emails[1..], &hooks[..1], &hooks[1..]] {
        let (before, texts_before) = (statements_of(&url).data, texts_of(&url).len());
        let attempts = h.worker.attempt_batch(batch, now).await;
        let cost = statements_of(&url).data - before;
        let texts = texts_of(&url)[texts_before..].join("\n");
        assert_eq!(attempts.len(), batch.len());
        for attempt in &attempts {
            assert!(matches!(attempt, Attempt::Sent { .. }), "{attempt:?}");
        }
        costs.push((batch.len(), cost, texts));
    }
    let [one_email, emails_rest, one_hook, hooks_rest] = &costs[..] else {
        unreachable!("four batches")
    };
    eprintln!(
        "{url}: emails 1: {}, {}: {}; webhooks 1: {}, {}: {}",
        one_email.1, emails_rest.0, emails_rest.1, one_hook.1, hooks_rest.0, hooks_rest.1
    );
    assert_eq!(
        emails_rest.1, one_email.1,
        "{} emails are prepared with the statements of {}:\n{}\n---\n{}",
        emails_rest.0, one_email.0, emails_rest.2, one_email.2
    );
    assert_eq!(
        hooks_rest.1, one_hook.1,
        "{} webhooks are prepared with the statements of {}:\n{}\n---\n{}",
        hooks_rest.0, one_hook.0, hooks_rest.2, one_hook.2
    );
    // Emails: the firms, the requests, the contacts, the requests' clients and lines, the
    // firm's first admin (the reply-to), then BEGIN, the tokens, COMMIT. Webhooks: the
    // requests, the endpoints. Read one by one (before), 17 emails cost 16 statements and 11
    // webhooks 8.
    assert_eq!(emails_rest.1, 9, "{}", emails_rest.2);
    assert_eq!(hooks_rest.1, 2, "{}", hooks_rest.2);

    // Each contact got its six requests, each endpoint its six.
    let mails = h.sink.wait_for(18, WAIT).await;
    assert_eq!(mails.len(), 18);
    for address in [
        "marie@bakery.example",
        "paul@bakery.example",
        "jeanne@bakery.example",
    ] {
        let received = mails
            .iter()
            .filter(|mail| mail.rcpt_to.iter().any(|to| to == address))
            .count();
        assert_eq!(received, 6, "{address}");
    }
    assert_eq!(first.wait_for(6, WAIT).await.len(), 6);
    assert_eq!(second.wait_for(6, WAIT).await.len(), 6);
}

counted_backend_test!(
    async fn preparing_a_batch_runs_the_same_statements_whatever_its_size(db: TestDb) {
        preparing_a_batch_runs_the_same_statements_whatever_its_size(db).await;
    }
);

counted_backend_test!(
    async fn recording_a_group_of_outcomes_runs_the_same_statements_whatever_its_size(db: TestDb) {
        recording_a_group_runs_the_same_statements_whatever_its_size(db).await;
    }
);

backend_test!(
    async fn a_group_records_only_the_rows_still_under_its_lease_and_logs_every_attempt(
        db: TestDb,
    ) {
        use rappel::delivery::outbox::{Attempt, Settled};
        let h = Harness::start(db).await;
        let firm = firm_with_mission(
            &h,
            &[
                ("Marie Martin", "marie@bakery.example", None),
                ("Paul Martin", "paul@bakery.example", None),
                ("Jeanne Martin", "jeanne@bakery.example", None),
            ],
            None,
        )
        .await;
        h.generate("2027-01-20T09:00:00Z", "2027-01-20").await;
        // A slow worker claims the first email; its lease runs out, another worker takes the
        // row over and delivers it; then the slow worker claims the two others.
        let slow = h.another_worker();
        let lost = slow
            .claim(at("2027-01-20T09:00:00Z"), 1)
            .await
            .expect("claims");
        assert_eq!(lost.len(), 1);
        let later = at("2027-01-20T09:02:01Z");
        let taken = h.worker.claim(later, 1).await.expect("claims");
        assert_eq!(taken[0].id, lost[0].id);
        let sent = h.worker.attempt(&taken[0], later).await;
        assert_eq!(
            h.worker
                .record(&taken[0], &sent, later)
                .await
                .expect("records"),
            Settled::Delivered
        );
        let kept = slow.claim(later, 10).await.expect("claims");
        assert_eq!(kept.len(), 2);

        // The slow worker records its three failures together: the two rows it still holds
        // are retried, the one it lost keeps what the other worker recorded.
        let failure = Attempt::Failed {
            transient: true,
            response_code: Some(451),
            retry_after: None,
            error: "451 try later".into(),
        };
        let group = [
            (&lost[0], &failure),
            (&kept[0], &failure),
            (&kept[1], &failure),
        ];
        let settled = slow.record_group(&group, at("2027-01-20T09:03:00Z")).await;
        assert_eq!(settled.len(), 3);
        assert!(settled.iter().all(Result::is_ok), "{settled:?}");
        let taken_over = h.delivery(firm.id, lost[0].id).await;
        assert_eq!(taken_over.status, DeliveryStatus::Delivered);
        assert_eq!(taken_over.attempts, 1);
        let outcomes: Vec<String> = h
            .attempts(lost[0].id)
            .await
            .into_iter()
            .map(|attempt| attempt.outcome)
            .collect();
        assert_eq!(outcomes, ["DELIVERED", "TRANSIENT_FAILURE"]);
        for row in &kept {
            let row = h.delivery(firm.id, row.id).await;
            assert_eq!(row.status, DeliveryStatus::Pending);
            assert_eq!(row.attempts, 1);
            assert_eq!((row.lease_until, row.leased_by.as_deref()), (None, None));
            assert_eq!(row.last_error.as_deref(), Some("451 try later"));
            assert!(row.next_attempt_at > at("2027-01-20T09:03:00Z").naive_utc());
            let attempts = h.attempts(row.id).await;
            assert_eq!(attempts.len(), 1);
            assert_eq!(attempts[0].outcome, "TRANSIENT_FAILURE");
            assert_eq!(attempts[0].response_code, Some(451));
        }
    }
);

backend_test!(
    async fn a_group_of_failing_webhooks_leaves_each_endpoint_as_recording_them_one_by_one_did(
        db: TestDb,
    ) {
        use rappel::delivery::outbox::{Attempt, Settled};
        // The threshold is a duration (`disable_after_days`, 5 by default): an endpoint is
        // disabled by a failure at least 5 days after its streak began. So each endpoint's
        // streak is started beforehand, on its own day, by a real failed POST recorded alone:
        // B's 6 days before the group (past the threshold), A's 3 days before (not past it).
        let h = Harness::start(db).await;
        let firm = firm_with_mission(&h, &[], None).await;
        let (a, a_id) = receiver_endpoint(&h, &firm.admin, &["information_request.created"]).await;
        let (b, b_id) = receiver_endpoint(&h, &firm.admin, &["information_request.created"]).await;
        // January to May: five requests, each posted to both endpoints.
        h.generate("2027-06-14T09:00:00Z", "2027-06-14").await;
        let t0 = at("2027-06-14T09:00:00Z");
        let claimed = h.worker.claim(t0, 100).await.expect("claims");
        assert_eq!(claimed.len(), 10);
        let a_db_id = claimed
            .iter()
            .filter_map(|row| row.webhook_endpoint_id)
            .min()
            .expect("endpoint ids");
        let of = |rows: &[Delivery], endpoint: i64| -> Vec<Delivery> {
            rows.iter()
                .filter(|row| {
                    row.kind == DeliveryKind::Webhook && row.webhook_endpoint_id == Some(endpoint)
                })
                .cloned()
                .collect()
        };
        let b_db_id = claimed
            .iter()
            .filter_map(|row| row.webhook_endpoint_id)
            .find(|id| *id != a_db_id)
            .expect("two endpoints");
        let (a_rows, b_rows) = (of(&claimed, a_db_id), of(&claimed, b_db_id));
        assert_eq!((a_rows.len(), b_rows.len()), (5, 5));
        b.respond_with(vec![503]);
        let failed = h.worker.attempt(&b_rows[0], t0).await;
        assert!(matches!(failed, Attempt::Failed { .. }), "{failed:?}");
        assert_eq!(
            h.worker
                .record(&b_rows[0], &failed, t0)
                .await
                .expect("records"),
            Settled::Retrying
        );
        // Three days later (the leases of the first claim have run out).
        let t1 = at("2027-06-17T09:00:00Z");
        let reclaimed = h.worker.claim(t1, 100).await.expect("claims");
        let a_first = of(&reclaimed, a_db_id)
            .into_iter()
            .find(|row| row.id == a_rows[0].id)
            .expect("A's first row claimed again");
        a.respond_with(vec![503]);
        let failed = h.worker.attempt(&a_first, t1).await;
        assert!(matches!(failed, Attempt::Failed { .. }), "{failed:?}");
        assert_eq!(
            h.worker
                .record(&a_first, &failed, t1)
                .await
                .expect("records"),
            Settled::Retrying
        );
        let query =
            "{ firm { webhookEndpoints { nodes { id enabled disabledReason failingSince } } } }";
        let endpoint = |data: &Value, id: &str| -> Value {
            data["firm"]["webhookEndpoints"]["nodes"]
                .as_array()
                .expect("nodes")
                .iter()
                .find(|node| node["id"] == id)
                .cloned()
                .unwrap_or_else(|| panic!("{id} in {data}"))
        };
        let data = h.ok(&firm.admin, query, json!({})).await;
        assert_eq!(
            endpoint(&data, &a_id)["failingSince"],
            "2027-06-17T09:00:00+00:00"
        );
        assert_eq!(
            endpoint(&data, &b_id)["failingSince"],
            "2027-06-14T09:00:00+00:00"
        );

        // The group: A fails, succeeds, fails; B fails twice. Each POST is real, in this order.
        let now = at("2027-06-20T09:00:00Z");
        let claimed = h.worker.claim(now, 100).await.expect("claims");
        let fresh = |endpoint: i64, first: i64| -> Vec<Delivery> {
            of(&claimed, endpoint)
                .into_iter()
                .filter(|row| row.id != first)
                .collect()
        };
        let (a_group, b_group) = (fresh(a_db_id, a_rows[0].id), fresh(b_db_id, b_rows[0].id));
        assert!(a_group.len() >= 3 && b_group.len() >= 2);
        let rows = [
            &a_group[0],
            &b_group[0],
            &a_group[1],
            &b_group[1],
            &a_group[2],
        ];
        let statuses = [503, 503, 200, 503, 503];
        let mut attempts = Vec::new();
        for (row, status) in rows.iter().zip(statuses) {
            let receiver = if row.webhook_endpoint_id == Some(a_db_id) {
                &a
            } else {
                &b
            };
            receiver.respond_with(vec![status]);
            let attempt = h.worker.attempt(row, now).await;
            match status {
                200 => assert!(matches!(attempt, Attempt::Sent { .. }), "{attempt:?}"),
                _ => assert!(matches!(attempt, Attempt::Failed { .. }), "{attempt:?}"),
            }
            attempts.push(attempt);
        }
        let items: Vec<(&Delivery, &Attempt)> = rows.iter().copied().zip(&attempts).collect();
        let settled = h.worker.record_group(&items, now).await;
        let settled: Vec<Settled> = settled
            .into_iter()
            .map(|outcome| outcome.expect("recorded"))
            .collect();
        assert_eq!(
            settled,
            [
                Settled::Retrying,
                Settled::Retrying,
                Settled::Delivered,
                Settled::Retrying,
                Settled::Retrying
            ]
        );

        // Recorded one by one, A's first failure continues its streak of the 17th (3 days, not
        // disabled), the success ends it, the last failure starts a new one now: A is enabled,
        // failing since the group's instant, not since the 17th.
        let data = h.ok(&firm.admin, query, json!({})).await;
        let a_state = endpoint(&data, &a_id);
        assert_eq!(a_state["enabled"], true, "{a_state}");
        assert_eq!(a_state["disabledReason"], Value::Null, "{a_state}");
        assert_eq!(a_state["failingSince"], "2027-06-20T09:00:00+00:00");
        // B's first failure is 6 days into its streak: it disables B; the second finds B
        // disabled and changes nothing.
        let b_state = endpoint(&data, &b_id);
        assert_eq!(b_state["enabled"], false, "{b_state}");
        assert_eq!(b_state["failingSince"], "2027-06-14T09:00:00+00:00");
        assert!(
            b_state["disabledReason"]
                .as_str()
                .is_some_and(|reason| reason.starts_with("failing since 2027-06-14T09:00:00Z")),
            "{b_state}"
        );
        let notices = h
            .deliveries_of(
                firm.id,
                DeliveryKind::Email,
                DeliveryEvent::EndpointDisabled,
            )
            .await;
        assert_eq!(notices.len(), 1, "{notices:?}");
        assert_eq!(notices[0].target, "admin@dupont.example");
        assert!(notices[0].payload.contains(&b_id));

        // Every attempt of the group is logged, with the answer it got.
        for (row, status) in rows.iter().zip(statuses) {
            let logged = h.attempts(row.id).await;
            assert_eq!(logged.len(), 1, "{logged:?}");
            assert_eq!(logged[0].response_code, Some(i32::from(status)));
            assert_eq!(
                logged[0].outcome,
                if status == 200 {
                    "DELIVERED"
                } else {
                    "TRANSIENT_FAILURE"
                }
            );
        }
        assert_eq!(a.received().len(), 4);
        assert_eq!(b.received().len(), 3);

        // The admin is emailed once, and later failures tell nobody again.
        h.run("2027-06-20T09:00:00Z").await;
        let mails = h.sink.wait_for(1, WAIT).await;
        assert_eq!(mails.len(), 1);
        assert_eq!(mails[0].rcpt_to, ["admin@dupont.example"]);
        h.run("2027-06-25T09:00:00Z").await;
        assert_eq!(
            b.received().len(),
            3,
            "a disabled endpoint gets nothing more"
        );
        assert_eq!(
            h.deliveries_of(
                firm.id,
                DeliveryKind::Email,
                DeliveryEvent::EndpointDisabled
            )
            .await
            .len(),
            1
        );
        assert_eq!(h.sink.messages().len(), 1);
    }
);
