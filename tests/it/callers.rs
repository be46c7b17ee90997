//! The caller behind a bearer token: resolved in one statement, kept in memory for
//! `[auth] caller_cache_seconds`, and dropped at once when access ends (logout, archive), on
//! the same instance and, on PostgreSQL, on the others through the event relay. Also: the pool
//! runs no `SELECT 1` per checkout, yet heals after PostgreSQL ended its connections.

use std::time::Duration;

use serde_json::{Value, json};

use crate::backend_test;
use crate::support::TestDb;
use crate::support::app::{TestApp, World};
use crate::support::server::{ServerProcess, post_graphql};

const VIEWER: &str = "{ viewer { kind } }";

async fn viewer_kind(base_url: &str, token: &str) -> Value {
    let response = post_graphql(base_url, Some(token), VIEWER, json!({})).await;
    response["data"]["viewer"]["kind"].clone()
}

backend_test!(
    async fn a_revoked_token_is_refused_at_once_on_the_same_instance(db: TestDb) {
        let app = TestApp::new(db);
        let world = World::build(&app).await;
        // A cache far longer than the test: only the invalidation can end these callers.
        let server =
            ServerProcess::start(&app.db.url, &[("RAPPEL_AUTH_CALLER_CACHE_SECONDS", "3600")]);

        // Logout: the token that was just served from the cache is refused on the next request.
        assert_eq!(
            viewer_kind(&server.base_url, &world.admin_a_token).await,
            "STAFF"
        );
        assert_eq!(
            viewer_kind(&server.base_url, &world.admin_a_token).await,
            "STAFF"
        );
        let logout = post_graphql(
            &server.base_url,
            Some(&world.admin_a_token),
            "mutation { logout }",
            json!({}),
        )
        .await;
        assert_eq!(logout["data"]["logout"], true, "{logout}");
        assert_eq!(
            viewer_kind(&server.base_url, &world.admin_a_token).await,
            Value::Null,
            "a logged-out token is anonymous at once"
        );
        let refused = post_graphql(
            &server.base_url,
            Some(&world.admin_a_token),
            "{ firm { name } }",
            json!({}),
        )
        .await;
        assert_eq!(
            refused["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
            "{refused}"
        );

        // Archiving a contact ends its cached token at once too.
        assert_eq!(
            viewer_kind(&server.base_url, &world.contact_a_token).await,
            "CONTACT"
        );
        let admin = login(&server.base_url).await;
        let archived = post_graphql(
            &server.base_url,
            Some(&admin),
            "mutation($id: ID!) { archiveContact(id: $id) { id } }",
            json!({ "id": world.firm_a.contact }),
        )
        .await;
        assert_eq!(
            archived["data"]["archiveContact"]["id"],
            world.firm_a.contact.as_str(),
            "{archived}"
        );
        assert_eq!(
            viewer_kind(&server.base_url, &world.contact_a_token).await,
            Value::Null,
            "an archived contact's token is anonymous at once"
        );
    }
);

/// A fresh staff session of firm A's admin.
async fn login(base_url: &str) -> String {
    let response = post_graphql(
        base_url,
        None,
        "mutation($email: String!, $password: String!) { login(input: { email: $email, password: $password }) { token } }",
        json!({ "email": "admin@a.example.fr", "password": crate::support::app::PASSWORD }),
    )
    .await;
    response["data"]["login"]["token"]
        .as_str()
        .unwrap_or_else(|| panic!("login answers a token: {response}"))
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_revoked_on_one_instance_is_refused_on_the_other_on_postgres() {
    if !crate::support::db::postgres_configured(
        "a_token_revoked_on_one_instance_is_refused_on_the_other_on_postgres",
    ) {
        return;
    }
    let app = TestApp::new(TestDb::create(crate::support::Backend::Postgres).await);
    let world = World::build(&app).await;
    // Caches far longer than the test: only the relayed invalidation can end the caller.
    let settings = [("RAPPEL_AUTH_CALLER_CACHE_SECONDS", "3600")];
    let serving = ServerProcess::start(&app.db.url, &settings);
    let revoking = ServerProcess::start(&app.db.url, &settings);

    assert_eq!(
        viewer_kind(&serving.base_url, &world.admin_a_token).await,
        "STAFF"
    );
    let logout = post_graphql(
        &revoking.base_url,
        Some(&world.admin_a_token),
        "mutation { logout }",
        json!({}),
    )
    .await;
    assert_eq!(logout["data"]["logout"], true, "{logout}");
    // Bounded polling: the relay delivers within moments; no timing is asserted.
    let mut kind = Value::Null;
    for _ in 0..40 {
        kind = viewer_kind(&serving.base_url, &world.admin_a_token).await;
        if kind.is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(
        kind,
        Value::Null,
        "the token revoked on one instance is refused on the other"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_heal_after_postgres_terminates_the_pools_connections() {
    if !crate::support::db::postgres_configured(
        "requests_heal_after_postgres_terminates_the_pools_connections",
    ) {
        return;
    }
    let app = TestApp::new(TestDb::create(crate::support::Backend::Postgres).await);
    let world = World::build(&app).await;
    // No caller cache: every request reads the database through the pool.
    let server = ServerProcess::start(&app.db.url, &[("RAPPEL_AUTH_CALLER_CACHE_SECONDS", "0")]);
    let query = "{ firm { clients(first: 5) { totalCount } } }";
    let post = || {
        post_graphql(
            &server.base_url,
            Some(&world.admin_a_token),
            query,
            json!({}),
        )
    };
    // Concurrent requests, so that the pool holds several idle connections when they are cut:
    // each one the server cut must not cost a request of its own.
    for _ in 0..3 {
        let answers = futures_util::future::join_all((0..8).map(|_| post())).await;
        for warm in answers {
            assert_eq!(warm["data"]["firm"]["clients"]["totalCount"], 2, "{warm}");
        }
    }

    for round in 0..3 {
        let terminated = terminate_other_backends(&app.db.url).await;
        // The first round cuts a pool of several connections (and the relay's).
        let expected = if round == 0 { 3 } else { 1 };
        assert!(
            terminated >= expected,
            "round {round}: the server's pooled connections were terminated ({terminated})"
        );
        // The first request may meet a connection whose socket does not show the cut yet:
        // then it fails once with a clear error. Every later one succeeds.
        let first = post().await;
        if first["data"]["firm"]["clients"]["totalCount"] != 2 {
            let code = first["errors"][0]["extensions"]["code"].as_str();
            assert_eq!(
                code,
                Some("INTERNAL"),
                "round {round}: a clear error: {first}"
            );
        }
        for attempt in 0..6 {
            let next = post().await;
            assert_eq!(
                next["data"]["firm"]["clients"]["totalCount"], 2,
                "round {round}, request {attempt} after the first: no string of failures: {next}"
            );
        }
        // Back to a pool of several connections for the next round.
        for answer in futures_util::future::join_all((0..8).map(|_| post())).await {
            assert_eq!(
                answer["data"]["firm"]["clients"]["totalCount"], 2,
                "{answer}"
            );
        }
    }
}

/// Terminates every other session on the database of `url` (the server's pool and relay).
async fn terminate_other_backends(url: &str) -> usize {
    use diesel::sql_types::Bool;
    use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

    #[derive(diesel::QueryableByName)]
    struct Terminated {
        #[diesel(sql_type = Bool)]
        done: bool,
    }
    let mut conn = AsyncPgConnection::establish(url)
        .await
        .expect("a connection of the test");
    let rows: Vec<Terminated> = diesel::sql_query(
        "SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .load(&mut conn)
    .await
    .expect("terminates");
    rows.iter().filter(|row| row.done).count()
}
