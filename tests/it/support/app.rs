//! The schema over a real test database, called in process (`schema.execute`) with callers
//! resolved from real tokens, and a small world of two firms to test views and isolation.

use async_graphql::{Request, Variables};
use rappel::config::{AuthConfig, GraphqlConfig};
use rappel::events::EventBus;
use rappel::generation::GenerationSettings;
use rappel::graphql::{Caller, RappelSchema, SchemaData, build_schema, resolve_caller};
use serde_json::{Value, json};

use super::TestDb;

pub use rappel::domain::gid::Kind;

/// The global id of row `id` of `kind`, as the API spells it: tests that take a row id from
/// the database pass it to GraphQL through this.
pub fn gid(kind: Kind, id: i64) -> String {
    rappel::domain::gid::encode(kind, id)
}

/// The row id inside a global id the API handed out (for the database, the CLI and the
/// portal's URLs, which use row ids).
pub fn row_id(global: &str) -> i64 {
    rappel::domain::gid::decode(global)
        .unwrap_or_else(|_| panic!("{global:?} is not a global id"))
        .1
}

/// The schema of one test database.
pub struct TestApp {
    pub db: TestDb,
    pub schema: RappelSchema,
    pub events: EventBus,
}

impl TestApp {
    pub fn new(db: TestDb) -> Self {
        let events = EventBus::new();
        let schema = build_schema(
            Some(SchemaData {
                pool: db.pool.clone(),
                events: events.clone(),
                auth: AuthConfig::default(),
                generation: GenerationSettings::default(),
            }),
            &GraphqlConfig::default(),
        );
        Self { db, schema, events }
    }

    /// Runs an operation as `caller`; returns the whole response as JSON (data and errors).
    pub async fn exec(&self, caller: &Caller, query: &str, variables: Value) -> Value {
        let request = Request::new(query)
            .variables(Variables::from_json(variables))
            .data(caller.clone());
        let response = self.schema.execute(request).await;
        serde_json::to_value(&response).expect("response serializes")
    }

    /// Runs an operation that must succeed; returns its `data`.
    pub async fn ok(&self, caller: &Caller, query: &str, variables: Value) -> Value {
        let response = self.exec(caller, query, variables).await;
        assert!(
            response
                .get("errors")
                .is_none_or(|errors| errors.as_array().is_none_or(Vec::is_empty)),
            "{query} failed: {response}"
        );
        response["data"].clone()
    }

    /// A firm (in `time_zone`) created by `rappel firm create`'s code, its admin signed in,
    /// a service (`service`: a `ServiceInput`) and a client "Boulangerie" with one contact
    /// (`marie@{tag}.example.fr`), made through the GraphQL API; returns the admin and the
    /// client's and service's ids.
    pub async fn firm_with_service(
        &self,
        tag: &str,
        time_zone: &str,
        service: Value,
    ) -> (Caller, String, String) {
        let email = format!("admin@{tag}.example.fr");
        rappel::setup::create_firm(
            &self.db.pool,
            &format!("Cabinet {tag}"),
            &email,
            Some(PASSWORD),
            time_zone,
            "fr",
        )
        .await
        .expect("firm");
        let (_, admin) = self.login(&email, PASSWORD).await;
        let data = self
            .ok(
                &admin,
                "mutation($input: CreateServiceInput!) { createService(input: $input) { id } }",
                json!({ "input": service }),
            )
            .await;
        let service = data["createService"]["id"]
            .as_str()
            .expect("id")
            .to_string();
        let data = self
            .ok(
                &admin,
                "mutation { createClient(input: { name: \"Boulangerie\" }) { id } }",
                json!({}),
            )
            .await;
        let client = data["createClient"]["id"].as_str().expect("id").to_string();
        self.ok(
            &admin,
            "mutation($c: ID!, $e: String!) { addContact(input: { clientId: $c, name: \"Marie\", email: $e }) { id } }",
            json!({ "c": client, "e": format!("marie@{tag}.example.fr") }),
        )
        .await;
        (admin, client, service)
    }

    /// Signs a staff member in through `login` and returns the caller its token resolves to.
    pub async fn login(&self, email: &str, password: &str) -> (String, Caller) {
        let data = self
            .ok(
                &Caller::Anonymous,
                "mutation($email: String!, $password: String!) { login(input: { email: $email, password: $password }) { token } }",
                json!({ "email": email, "password": password }),
            )
            .await;
        let token = data["login"]["token"].as_str().expect("token").to_string();
        let caller = resolve_caller(&self.db.pool, Some(&token))
            .await
            .expect("resolves");
        (token, caller)
    }

    /// The caller a token resolves to.
    pub async fn caller(&self, token: &str) -> Caller {
        resolve_caller(&self.db.pool, Some(token))
            .await
            .expect("resolves")
    }
}

/// The `extensions.code` of every error of a response.
pub fn error_codes(response: &Value) -> Vec<String> {
    response["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|error| {
                    error["extensions"]["code"]
                        .as_str()
                        .unwrap_or("<none>")
                        .to_string()
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Two firms: A with an admin, a member, two clients (each with a contact), a service and a
/// signed mission whose past periods were generated; B with an admin and the same shapes.
pub struct World {
    pub admin_a: Caller,
    pub member_a: Caller,
    pub admin_b: Caller,
    pub contact_a: Caller,
    pub contact_b: Caller,
    pub admin_a_token: String,
    pub contact_a_token: String,
    pub firm_a: FirmIds,
    pub firm_b: FirmIds,
    pub member_a_id: String,
}

/// Ids of one firm's objects.
#[derive(Debug, Clone)]
pub struct FirmIds {
    pub category: String,
    pub service: String,
    pub client: String,
    pub other_client: String,
    pub contact: String,
    pub other_contact: String,
    pub mission: String,
    pub draft_mission: String,
    pub task: String,
    pub request: String,
    pub other_client_request: String,
    pub endpoint: String,
    pub delivery: String,
    /// A reply by email held for the firm (a stranger wrote to the request's reply address).
    pub held_reply: String,
}

pub const PASSWORD: &str = "correct horse battery";

/// A date `months` months before today's (UTC) 28th, as text: safe for any month length.
pub fn months_ago_28th(months: u32) -> String {
    use chrono::Datelike;
    let today = chrono::Utc::now().date_naive();
    let mut year = today.year();
    let mut month = today.month() as i32 - months as i32;
    while month < 1 {
        month += 12;
        year -= 1;
    }
    format!("{year:04}-{month:02}-28")
}

impl World {
    pub async fn build(app: &TestApp) -> Self {
        let pool = &app.db.pool;
        rappel::setup::create_firm(
            pool,
            "Cabinet A",
            "admin@a.example.fr",
            Some(PASSWORD),
            "Europe/Paris",
            "fr",
        )
        .await
        .expect("firm A");
        rappel::setup::create_firm(
            pool,
            "Cabinet B",
            "admin@b.example.fr",
            Some(PASSWORD),
            "Europe/Paris",
            "fr",
        )
        .await
        .expect("firm B");
        let (admin_a_token, admin_a) = app.login("admin@a.example.fr", PASSWORD).await;
        let (_, admin_b) = app.login("admin@b.example.fr", PASSWORD).await;
        let invitation = app
            .ok(
                &admin_a,
                r#"mutation { inviteStaffMember(input: { email: "member@a.example.fr", name: "Member" }) { member { id } temporaryPassword } }"#,
                json!({}),
            )
            .await;
        let member_a_id = invitation["inviteStaffMember"]["member"]["id"]
            .as_str()
            .expect("id")
            .to_string();
        let member_password = invitation["inviteStaffMember"]["temporaryPassword"]
            .as_str()
            .expect("password")
            .to_string();
        let (_, member_a) = app.login("member@a.example.fr", &member_password).await;
        let (firm_a, contact_a_token, contact_b_token) = Self::populate(app, &admin_a, "a").await;
        let (firm_b, _, _) = Self::populate(app, &admin_b, "b").await;
        let contact_a = app.caller(&contact_a_token).await;
        let contact_b = app.caller(&contact_b_token).await;
        Self {
            admin_a,
            member_a,
            admin_b,
            contact_a,
            contact_b,
            admin_a_token,
            contact_a_token,
            firm_a,
            firm_b,
            member_a_id,
        }
    }

    /// Creates a firm's catalogue, two clients with a contact each, a signed mission (three
    /// past months generated) for the first client and one for the second, and a draft.
    async fn populate(app: &TestApp, admin: &Caller, tag: &str) -> (FirmIds, String, String) {
        let data = app
            .ok(
                admin,
                r#"mutation { createCategory(input: { name: "Fiscal" }) { id } }"#,
                json!({}),
            )
            .await;
        let category = data["createCategory"]["id"]
            .as_str()
            .expect("id")
            .to_string();
        let data = app
            .ok(
                admin,
                "mutation($input: CreateServiceInput!) { createService(input: $input) { id } }",
                json!({ "input": {
                    "categoryId": category, "title": "Rappel TVA", "deliverableType": "DOCUMENTS",
                    "leadDays": 10,
                    "items": [
                        { "kind": "INFORMATION_REQUEST", "title": "Merci de déposer vos éléments du mois" },
                        { "kind": "TASK", "title": "Préparer la déclaration de TVA" }
                    ]
                }}),
            )
            .await;
        let service = data["createService"]["id"]
            .as_str()
            .expect("id")
            .to_string();
        let mut clients = Vec::new();
        for (index, name) in ["Boulangerie", "Garage"].iter().enumerate() {
            let data = app
                .ok(
                    admin,
                    "mutation($name: String!) { createClient(input: { name: $name }) { id } }",
                    json!({ "name": format!("{name} {tag}") }),
                )
                .await;
            let client = data["createClient"]["id"].as_str().expect("id").to_string();
            let data = app
                .ok(
                    admin,
                    "mutation($client: ID!, $email: String!) { addContact(input: { clientId: $client, name: \"Contact\", email: $email }) { id } }",
                    json!({ "client": client, "email": format!("contact{index}@{tag}.example.fr") }),
                )
                .await;
            let contact = data["addContact"]["id"].as_str().expect("id").to_string();
            let data = app
                .ok(
                    admin,
                    "mutation($contact: ID!) { createContactAccessToken(input: { contactId: $contact }) }",
                    json!({ "contact": contact }),
                )
                .await;
            let token = data["createContactAccessToken"]
                .as_str()
                .expect("token")
                .to_string();
            let mission = Self::signed_mission(app, admin, &client, &service).await;
            clients.push((client, contact, token, mission));
        }
        let data = app
            .ok(
                admin,
                "mutation($input: CreateMissionInput!) { createMission(input: $input) { id } }",
                json!({ "input": {
                    "clientId": clients[0].0, "name": "Brouillon", "startDate": "2030-01-01",
                    "lines": [{ "serviceId": service, "frequency": "MONTHLY" }]
                }}),
            )
            .await;
        let draft_mission = data["createMission"]["id"]
            .as_str()
            .expect("id")
            .to_string();
        let request_of = |data: &Value| {
            data["firm"]["informationRequests"]["nodes"][0]["id"]
                .as_str()
                .expect("a generated request")
                .to_string()
        };
        let data = app
            .ok(
                admin,
                "query($client: ID!) { firm { informationRequests(clientId: $client, first: 1) { nodes { id } } tasks(clientId: $client, first: 1) { nodes { id } } } }",
                json!({ "client": clients[0].0 }),
            )
            .await;
        let request = request_of(&data);
        let task = data["firm"]["tasks"]["nodes"][0]["id"]
            .as_str()
            .expect("a task")
            .to_string();
        let data = app
            .ok(
                admin,
                "query($client: ID!) { firm { informationRequests(clientId: $client, first: 1) { nodes { id } } } }",
                json!({ "client": clients[1].0 }),
            )
            .await;
        let other_client_request = request_of(&data);
        let data = app
            .ok(
                admin,
                r#"mutation { createWebhookEndpoint(input: { url: "https://93.184.216.34/hook", events: [INFORMATION_REQUEST_CREATED] }) { endpoint { id } } }"#,
                json!({}),
            )
            .await;
        let endpoint = data["createWebhookEndpoint"]["endpoint"]["id"]
            .as_str()
            .expect("id")
            .to_string();
        let data = app
            .ok(
                admin,
                "{ firm { deliveries(first: 1) { nodes { id } } } }",
                json!({}),
            )
            .await;
        let delivery = data["firm"]["deliveries"]["nodes"][0]["id"]
            .as_str()
            .expect("generation enqueued deliveries")
            .to_string();
        let data = app.ok(admin, "{ firm { id } }", json!({})).await;
        let firm_id = row_id(data["firm"]["id"].as_str().expect("firm id"));
        let held_reply = held_reply(app, firm_id, &request, &clients[0].1).await;
        let ids = FirmIds {
            category,
            service,
            client: clients[0].0.clone(),
            other_client: clients[1].0.clone(),
            contact: clients[0].1.clone(),
            other_contact: clients[1].1.clone(),
            mission: clients[0].3.clone(),
            draft_mission,
            task,
            request,
            other_client_request,
            endpoint,
            delivery,
            held_reply,
        };
        (ids, clients[0].2.clone(), clients[1].2.clone())
    }

    /// A monthly mission on the 28th starting three months ago, signed: its past periods exist.
    pub async fn signed_mission(
        app: &TestApp,
        admin: &Caller,
        client: &str,
        service: &str,
    ) -> String {
        let data = app
            .ok(
                admin,
                "mutation($input: CreateMissionInput!) { createMission(input: $input) { id } }",
                json!({ "input": {
                    "clientId": client, "name": "TVA mensuelle", "startDate": months_ago_28th(3),
                    "lines": [{ "serviceId": service, "frequency": "MONTHLY" }]
                }}),
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
}

/// A reply held for the firm, written straight to the table (as `ops::replies` leaves one).
async fn held_reply(app: &TestApp, firm_id: i64, request: &str, contact: &str) -> String {
    use rappel::db::replies::{MessageChanges, NewInboundMessage, claim_message, update_message};
    let mut conn = app.db.pool.get().await.expect("conn");
    let key = format!("{firm_id}:mid:held-{request}@stranger.example");
    let row = claim_message(
        &mut conn.as_db(),
        &NewInboundMessage {
            firm_id,
            message_key: &key,
            source: "SMTP",
            request_id: row_id(request),
            contact_id: row_id(contact),
            sender: "stranger@elsewhere.example",
            subject: "Re: vos éléments",
            outcome: "RECEIVING",
            authentication: "none",
            received_at: chrono::Utc::now().naive_utc(),
        },
        chrono::Utc::now().naive_utc() - chrono::Duration::minutes(15),
    )
    .await
    .expect("claimed")
    .expect("a new message");
    update_message(
        &mut conn.as_db(),
        firm_id,
        row.id,
        &["RECEIVING"],
        &MessageChanges {
            outcome: Some("HELD"),
            reason: Some(Some("the sender is not a contact of this client")),
            ..MessageChanges::default()
        },
    )
    .await
    .expect("held");
    gid(Kind::HeldReply, row.id)
}
