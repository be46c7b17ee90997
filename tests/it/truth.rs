//! Issue 9, truth, data and access: writes are not acknowledged into a lost database, health
//! tells the truth, no demo is seeded over lost data, text inputs refuse control characters,
//! names refuse invisible formatting, archived clients lose access, emails are unique whatever
//! their case, members do not read webhook secrets, and `requestEvents` says what it may miss.

use diesel_async::SimpleAsyncConnection;
use rappel::graphql::Caller;
use rappel::with_conn;
use serde_json::{Value, json};

use crate::backend_test;
use crate::support::app::{PASSWORD, TestApp, World, error_codes};
use crate::support::{Backend, TestDb};

fn first_error(response: &Value) -> &Value {
    &response["errors"][0]
}

async fn execute_sql(db: &TestDb, sql: &str) {
    let mut conn = db.pool.get().await.expect("connection");
    with_conn!(conn, |c| c.batch_execute(sql).await).expect(sql);
}

backend_test!(
    async fn control_characters_are_refused_in_every_text_input_before_any_resolver(db: TestDb) {
        let app = TestApp::new(db);
        let world = World::build(&app).await;

        let login = app
            .exec(
                &Caller::Anonymous,
                "mutation($email: String!, $password: String!) { login(input: { email: $email, password: $password }) { token } }",
                json!({ "email": "admin@a.example.fr\u{0}", "password": PASSWORD }),
            )
            .await;
        assert_eq!(error_codes(&login), ["BAD_USER_INPUT"], "{login}");
        assert_eq!(first_error(&login)["extensions"]["field"], "email");
        assert!(
            first_error(&login)["message"]
                .as_str()
                .is_some_and(|m| m.contains("control character")),
            "{login}"
        );

        let search = app
            .exec(
                &world.admin_a,
                r#"{ firm { clients(search: "Cl\u0000") { nodes { id } } } }"#,
                json!({}),
            )
            .await;
        assert_eq!(error_codes(&search), ["BAD_USER_INPUT"], "{search}");
        assert_eq!(first_error(&search)["extensions"]["field"], "search");

        let disable = app
            .exec(
                &world.admin_a,
                "mutation($id: ID!, $reason: String) { disableWebhookEndpoint(input: { id: $id, reason: $reason }) { id } }",
                json!({ "id": world.firm_a.endpoint, "reason": "paused\u{0}by\u{1b}[31m ops" }),
            )
            .await;
        assert_eq!(error_codes(&disable), ["BAD_USER_INPUT"], "{disable}");
        assert_eq!(first_error(&disable)["extensions"]["field"], "reason");
        let endpoints = app
            .ok(
                &world.admin_a,
                "{ firm { webhookEndpoints { nodes { id enabled disabledReason } } } }",
                json!({}),
            )
            .await;
        assert_eq!(
            endpoints["firm"]["webhookEndpoints"]["nodes"][0]["enabled"], true,
            "nothing changed: {endpoints}"
        );

        let nested = app
            .exec(
                &world.admin_a,
                "mutation($input: CreateClientInput!) { createClient(input: $input) { id } }",
                json!({ "input": { "name": "Boulangerie\u{7}" } }),
            )
            .await;
        assert_eq!(error_codes(&nested), ["BAD_USER_INPUT"], "{nested}");
        assert_eq!(first_error(&nested)["extensions"]["field"], "input.name");

        // Line breaks and tabs stay allowed in multi-line texts.
        let multi_line = app
            .exec(
                &world.admin_a,
                "mutation($id: ID!, $reason: String) { disableWebhookEndpoint(input: { id: $id, reason: $reason }) { disabledReason } }",
                json!({ "id": world.firm_a.endpoint, "reason": "paused:\n\tmaintenance" }),
            )
            .await;
        assert!(
            error_codes(&multi_line).is_empty(),
            "line breaks and tabs pass the check: {multi_line}"
        );
    }
);

backend_test!(
    async fn names_that_reach_email_headers_refuse_invisible_formatting_characters(db: TestDb) {
        let app = TestApp::new(db);
        let world = World::build(&app).await;
        for name in [
            "Martin\u{202E}fdp.exe",
            "\u{200B}",
            "\u{2066}Martin\u{2069}",
        ] {
            let client = app
                .exec(
                    &world.admin_a,
                    "mutation($name: String!) { createClient(input: { name: $name }) { id } }",
                    json!({ "name": name }),
                )
                .await;
            assert_eq!(
                error_codes(&client),
                ["BAD_USER_INPUT"],
                "{name:?}: {client}"
            );
            assert_eq!(first_error(&client)["extensions"]["field"], "name");

            let contact = app
                .exec(
                    &world.admin_a,
                    "mutation($client: ID!, $name: String!) { addContact(input: { clientId: $client, name: $name, email: \"new.contact@a.example.fr\" }) { id } }",
                    json!({ "client": world.firm_a.client, "name": name }),
                )
                .await;
            assert_eq!(
                error_codes(&contact),
                ["BAD_USER_INPUT"],
                "{name:?}: {contact}"
            );

            let staff = app
                .exec(
                    &world.admin_a,
                    "mutation($name: String!) { inviteStaffMember(input: { email: \"new.member@a.example.fr\", name: $name }) { member { id } } }",
                    json!({ "name": name }),
                )
                .await;
            assert_eq!(error_codes(&staff), ["BAD_USER_INPUT"], "{name:?}: {staff}");
        }
        let clients = app
            .ok(
                &world.admin_a,
                r#"{ firm { clients(search: "Martin") { nodes { id } } } }"#,
                json!({}),
            )
            .await;
        assert_eq!(
            clients["firm"]["clients"]["nodes"],
            json!([]),
            "nothing was created"
        );
        let staff = app
            .ok(
                &world.admin_a,
                "{ firm { staff { nodes { email } } } }",
                json!({}),
            )
            .await;
        assert!(!staff.to_string().contains("new.member"), "{staff}");
    }
);

backend_test!(
    async fn archiving_a_client_ends_its_contacts_access_and_unarchiving_does_not_revive_it(
        db: TestDb,
    ) {
        let app = TestApp::new(db);
        let world = World::build(&app).await;
        assert!(matches!(
            app.caller(&world.contact_a_token).await,
            Caller::Contact(_)
        ));
        app.ok(
            &world.admin_a,
            "mutation($id: ID!) { archiveClient(id: $id) { id } }",
            json!({ "id": world.firm_a.client }),
        )
        .await;
        assert!(
            matches!(app.caller(&world.contact_a_token).await, Caller::Anonymous),
            "the archived client's contact lost the client view"
        );
        let answer = app
            .exec(
                &app.caller(&world.contact_a_token).await,
                "{ client { requests { nodes { id } } } }",
                json!({}),
            )
            .await;
        assert!(!error_codes(&answer).is_empty(), "{answer}");

        // Bring the client back directly in the database: the tokens stay ended.
        let client_id = crate::support::app::row_id(&world.firm_a.client);
        let mut conn = app.db.pool.get().await.expect("connection");
        let firm_id = match &world.admin_a {
            Caller::Staff(staff) => staff.firm_id,
            _ => unreachable!("admin"),
        };
        rappel::db::clients::set_client_archived(&mut conn.as_db(), firm_id, client_id, None)
            .await
            .expect("unarchived");
        drop(conn);
        assert!(
            matches!(app.caller(&world.contact_a_token).await, Caller::Anonymous),
            "unarchiving does not revive the old token"
        );
        // The other firm's contact is untouched.
        let other = app
            .exec(
                &world.contact_b,
                "{ client { requests { nodes { id } } } }",
                json!({}),
            )
            .await;
        assert!(error_codes(&other).is_empty(), "{other}");
    }
);

backend_test!(
    async fn emails_are_unique_whatever_their_case_and_invites_do_not_reveal_other_firms(
        db: TestDb,
    ) {
        let app = TestApp::new(db);
        let world = World::build(&app).await;
        let invite = |email: &'static str| {
            let app = &app;
            let admin = world.admin_a.clone();
            async move {
                app.exec(
                    &admin,
                    "mutation($email: String!) { inviteStaffMember(input: { email: $email, name: \"Someone\" }) { member { id } } }",
                    json!({ "email": email }),
                )
                .await
            }
        };
        let other_firm = invite("ADMIN@b.example.fr").await;
        assert_eq!(error_codes(&other_firm), ["CONFLICT"], "{other_firm}");
        let own_firm = invite("Member@A.example.fr").await;
        assert_eq!(error_codes(&own_firm), ["CONFLICT"], "{own_firm}");
        assert_eq!(
            first_error(&other_firm)["message"],
            first_error(&own_firm)["message"],
            "another firm's user is answered like any taken address"
        );
        let message = first_error(&other_firm)["message"].to_string();
        assert!(
            !message.contains("Cabinet B") && !message.contains("user with this email exists"),
            "{message}"
        );

        // Signing in ignores case; the address stays one account.
        let (_, caller) = app.login("Admin@A.EXAMPLE.fr", PASSWORD).await;
        assert!(matches!(caller, Caller::Staff(_)));

        let contact = app
            .exec(
                &world.admin_a,
                "mutation($client: ID!) { addContact(input: { clientId: $client, name: \"Twin\", email: \"CONTACT0@a.example.fr\" }) { id } }",
                json!({ "client": world.firm_a.client }),
            )
            .await;
        assert_eq!(error_codes(&contact), ["CONFLICT"], "{contact}");
    }
);

backend_test!(
    async fn the_case_insensitive_email_migration_keeps_the_oldest_of_existing_twins(db: TestDb) {
        // Undo the migration's index and record, add twins, then migrate again.
        execute_sql(
            &db,
            "DROP INDEX users_email_lower_key;
             DROP INDEX contacts_client_email_lower_key;
             DELETE FROM __diesel_schema_migrations WHERE version = '20261129071731';",
        )
        .await;
        rappel::setup::create_firm(
            &db.pool,
            "Cabinet",
            "twin@example.fr",
            Some(PASSWORD),
            "Europe/Paris",
            "fr",
        )
        .await
        .expect("first");
        rappel::setup::create_firm(
            &db.pool,
            "Cabinet 2",
            "TWIN@example.fr",
            Some(PASSWORD),
            "Europe/Paris",
            "fr",
        )
        .await
        .expect("a twin before the migration");
        let applied = db.pool.run_migrations().await.expect("migration applies");
        assert_eq!(applied, ["20261129071731"]);
        let app = TestApp::new(db);
        let (_, caller) = app.login("twin@example.fr", PASSWORD).await;
        let Caller::Staff(staff) = caller else {
            panic!("staff")
        };
        let mut conn = app.db.pool.get().await.expect("connection");
        let users = rappel::db::firms::list_users(&mut conn.as_db(), staff.firm_id)
            .await
            .expect("users");
        assert_eq!(
            users[0].email, "twin@example.fr",
            "the oldest keeps its address"
        );
        let second =
            rappel::db::firms::find_user(&mut conn.as_db(), staff.firm_id + 1, users[0].id + 1)
                .await
                .expect("the twin");
        assert!(
            second.email.ends_with(".invalid") && second.email.starts_with("TWIN@example.fr"),
            "{}",
            second.email
        );
    }
);

backend_test!(
    async fn members_read_webhook_urls_without_their_query_values(db: TestDb) {
        let app = TestApp::new(db);
        let world = World::build(&app).await;
        app.ok(
            &world.admin_a,
            r#"mutation { createWebhookEndpoint(input: { url: "https://93.184.216.34/in?token=s3cret-value", events: [INFORMATION_REQUEST_CREATED] }) { endpoint { id } } }"#,
            json!({}),
        )
        .await;
        let query = "{ firm { webhookEndpoints { nodes { url } } } }";
        let member = app.ok(&world.member_a, query, json!({})).await;
        assert!(!member.to_string().contains("s3cret-value"), "{member}");
        assert!(
            member
                .to_string()
                .contains("https://93.184.216.34/in?token=***"),
            "{member}"
        );
        let admin = app.ok(&world.admin_a, query, json!({})).await;
        assert!(admin.to_string().contains("token=s3cret-value"), "{admin}");
    }
);

#[test]
fn request_events_says_which_events_it_may_miss_and_how_to_catch_up() {
    let sdl = rappel::graphql::schema_sdl();
    let start = sdl.find("requestEvents").expect("field");
    let description = &sdl[start.saturating_sub(900)..start];
    assert!(description.contains("not replayed"), "{description}");
    assert!(description.contains("reconnects"), "{description}");
    assert!(description.contains("catch up"), "{description}");
}

backend_test!(
    async fn health_checks_the_migrations_not_just_select_one(db: TestDb) {
        db.pool.check_health().await.expect("healthy when migrated");
        execute_sql(&db, "DELETE FROM __diesel_schema_migrations").await;
        assert!(
            db.pool.check_health().await.is_err(),
            "a database without this build's migrations is unhealthy"
        );
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_sqlite_file_refuses_writes_instead_of_losing_them() {
    let db = TestDb::create(Backend::Sqlite).await;
    let app = TestApp::new(db);
    rappel::setup::create_firm(
        &app.db.pool,
        "Cabinet",
        "admin@example.fr",
        Some(PASSWORD),
        "Europe/Paris",
        "fr",
    )
    .await
    .expect("firm");
    let (_, admin) = app.login("admin@example.fr", PASSWORD).await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", app.db.url));
    }
    let write = app
        .exec(
            &admin,
            "mutation { createClient(input: { name: \"Lost\" }) { id } }",
            json!({}),
        )
        .await;
    assert!(write["data"].is_null(), "no id acknowledged: {write}");
    assert!(!error_codes(&write).is_empty(), "{write}");
    assert!(app.db.pool.check_health().await.is_err());
    // A file put back at the path (a new one) is not the database either.
    std::fs::write(&app.db.url, b"").expect("a new empty file");
    assert!(app.db.pool.check_health().await.is_err());
    assert!(
        app.db.pool.get().await.is_err(),
        "reads and writes are refused"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_sqlite_database_is_not_reseeded_with_a_demo_firm() {
    let folder = tempfile::tempdir().expect("folder");
    let path = folder.path().join("rappel.db");
    let url = path.to_string_lossy().to_string();
    let config = rappel::config::Config::default();
    {
        let pool = rappel::db::Pool::connect(&url, 2, 5000)
            .await
            .expect("opens");
        pool.run_migrations().await.expect("migrates");
        let demo = rappel::setup::seed_demo_if_empty(&pool, &config, None)
            .await
            .expect("seeded");
        assert!(demo.is_some(), "the first start seeds the demo");
    }
    assert!(rappel::setup::had_data_marker(&path).exists());
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{url}{suffix}"));
    }
    let pool = rappel::db::Pool::connect(&url, 2, 5000)
        .await
        .expect("opens");
    pool.run_migrations().await.expect("migrates");
    let refused = rappel::setup::seed_demo_if_empty(&pool, &config, None).await;
    let error = refused.err().expect("no demo over lost data").to_string();
    assert!(error.contains("held data before"), "{error}");
    let mut conn = pool.get().await.expect("connection");
    assert_eq!(
        rappel::db::firms::count_firms(&mut conn.as_db())
            .await
            .expect("count"),
        0,
        "no new demo firm, no new admin password"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recreated_empty_postgres_database_is_unhealthy() {
    if !crate::support::db::postgres_configured("a_recreated_empty_postgres_database_is_unhealthy")
    {
        return;
    }
    let db = TestDb::create(Backend::Postgres).await;
    db.pool.check_health().await.expect("healthy");
    let name = db.url.rsplit('/').next().expect("name").to_string();
    let admin_url = std::env::var(crate::support::db::POSTGRES_URL_VAR).expect("url");
    let mut admin =
        <diesel_async::AsyncPgConnection as diesel_async::AsyncConnection>::establish(&admin_url)
            .await
            .expect("admin");
    // Two statements: DROP DATABASE cannot run inside the implicit transaction of a batch.
    admin
        .batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .await
        .expect("dropped");
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("recreated");
    assert!(
        db.pool.check_health().await.is_err(),
        "an empty database of the same name is not the one Rappel served"
    );
    assert_eq!(count_firms_or_error(&db).await, None);
}

async fn count_firms_or_error(db: &TestDb) -> Option<i64> {
    let mut conn = db.pool.get().await.ok()?;
    rappel::db::firms::count_firms(&mut conn.as_db()).await.ok()
}
