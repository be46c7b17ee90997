//! The ground everything stands on: migrations, constraints, the server process, the schema file.

use diesel::QueryableByName;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sql_types::Text;
use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
use rappel::with_conn;

use crate::backend_test;
use crate::support::server::{ServerProcess, post_graphql};
use crate::support::{Backend, TestDb};

#[derive(QueryableByName, Debug, PartialEq, Eq)]
struct Line {
    #[diesel(sql_type = Text)]
    line: String,
}

/// Every table, column, constraint and index of the database, one line each, sorted.
async fn schema_dump(db: &TestDb) -> Vec<String> {
    let query = match db.backend {
        Backend::Sqlite => {
            "SELECT type || ' ' || name || ' ' || coalesce(sql, '') AS line FROM sqlite_master \
             WHERE name NOT LIKE 'sqlite_%' AND name <> '__diesel_schema_migrations' ORDER BY 1"
        }
        Backend::Postgres => {
            "SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type || ' ' \
               || is_nullable || ' ' || coalesce(column_default, '') AS line \
             FROM information_schema.columns \
             WHERE table_schema = 'public' AND table_name <> '__diesel_schema_migrations' \
             UNION ALL \
             SELECT 'constraint ' || conrelid::regclass::text || ' ' || conname || ' ' \
               || pg_get_constraintdef(oid) \
             FROM pg_constraint WHERE connamespace = 'public'::regnamespace \
               AND conrelid::regclass::text <> '__diesel_schema_migrations' \
             UNION ALL \
             SELECT 'index ' || indexname || ' ' || indexdef FROM pg_indexes \
             WHERE schemaname = 'public' AND tablename <> '__diesel_schema_migrations' \
             ORDER BY 1"
        }
    };
    let mut conn = db.pool.get().await.expect("connection");
    let lines: Vec<Line> =
        with_conn!(&mut conn, |c| diesel::sql_query(query).load(c).await).expect("schema readable");
    lines.into_iter().map(|line| line.line).collect()
}

backend_test!(
    async fn migrations_apply_from_empty_and_down_then_up_returns_the_same_schema(db: TestDb) {
        let empty = TestDb::create_empty(db.backend).await;
        assert!(
            schema_dump(&empty).await.is_empty(),
            "a new database starts empty"
        );
        let applied = empty
            .pool
            .run_migrations()
            .await
            .expect("migrations apply from empty");
        let folder = match db.backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        };
        let embedded = std::fs::read_dir(format!(
            "{}/migrations/{folder}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect("migrations folder")
        .count();
        assert_eq!(applied.len(), embedded, "every migration applies");
        let first = schema_dump(&empty).await;
        for table in [
            "firms",
            "missions",
            "information_requests",
            "deliveries",
            "scheduler_runs",
        ] {
            assert!(
                first.iter().any(|line| line.contains(table)),
                "{table} exists after migrating"
            );
        }
        empty
            .pool
            .revert_all_migrations()
            .await
            .expect("down migrations run");
        assert!(
            schema_dump(&empty).await.is_empty(),
            "down leaves nothing behind"
        );
        empty.pool.run_migrations().await.expect("up again");
        assert_eq!(schema_dump(&empty).await, first);
        // And the ready-made database of this test has the very same schema.
        assert_eq!(schema_dump(&db).await, first);
    }
);

/// Runs one SQL statement and returns diesel's error kind, if any.
async fn execute(db: &TestDb, sql: &str) -> Result<(), DatabaseErrorKind> {
    let mut conn = db.pool.get().await.expect("connection");
    match with_conn!(&mut conn, |c| c.batch_execute(sql).await) {
        Ok(()) => Ok(()),
        Err(DieselError::DatabaseError(kind, _)) => Err(kind),
        Err(other) => panic!("unexpected error {other:?}"),
    }
}

async fn count(db: &TestDb, table: &str) -> i64 {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = db.pool.get().await.expect("connection");
    let sql = format!("SELECT count(*) AS n FROM {table}");
    let rows: Vec<Count> =
        with_conn!(&mut conn, |c| diesel::sql_query(&sql).load(c).await).expect("count");
    rows[0].n
}

const SEED: &str = "
    INSERT INTO firms (id, name, time_zone, locale, created_at)
        VALUES (1, 'Cabinet', 'Europe/Paris', 'fr', '2027-01-01 00:00:00');
    INSERT INTO clients (id, firm_id, name, created_at) VALUES (1, 1, 'Client', '2027-01-01 00:00:00');
    INSERT INTO services (id, firm_id, title, deliverable_type, lead_days, created_at)
        VALUES (1, 1, 'Rappel TVA', 'DOCUMENTS', 10, '2027-01-01 00:00:00');
    INSERT INTO service_items (id, firm_id, service_id, kind, text, position, created_at)
        VALUES (1, 1, 1, 'INFORMATION_REQUEST', 'Merci', 0, '2027-01-01 00:00:00');
    INSERT INTO missions (id, firm_id, client_id, name, start_date, end_date, status, created_at)
        VALUES (1, 1, 1, 'Mission', '2027-01-01', '2027-12-31', 'SIGNED', '2027-01-01 00:00:00');
    INSERT INTO mission_lines (id, firm_id, mission_id, service_id, frequency, first_due_date, quantity, created_at)
        VALUES (1, 1, 1, 1, 'MONTHLY', '2027-01-30', 1, '2027-01-01 00:00:00');
    INSERT INTO information_requests (firm_id, client_id, mission_id, mission_line_id, service_item_id,
            copy_number, due_date, created_on, text, status, created_at)
        VALUES (1, 1, 1, 1, 1, 1, '2027-01-30', '2027-01-20', 'Merci', 'OPEN', '2027-01-20 00:00:00');
";

backend_test!(
    async fn constraints_reject_bad_rows_and_keep_the_good_ones(db: TestDb) {
        execute(&db, SEED)
            .await
            .expect("a coherent seed is accepted");

        let end_before_start = "INSERT INTO missions (firm_id, client_id, name, start_date, end_date, status, created_at)
            VALUES (1, 1, 'Backwards', '2027-06-01', '2027-05-31', 'DRAFT', '2027-01-01 00:00:00')";
        assert_eq!(
            execute(&db, end_before_start).await,
            Err(DatabaseErrorKind::CheckViolation)
        );

        let duplicate_generation_key = "INSERT INTO information_requests (firm_id, client_id, mission_id,
                mission_line_id, service_item_id, copy_number, due_date, created_on, text, status, created_at)
            VALUES (1, 1, 1, 1, 1, 1, '2027-01-30', '2027-01-20', 'Again', 'OPEN', '2027-01-21 00:00:00')";
        assert_eq!(
            execute(&db, duplicate_generation_key).await,
            Err(DatabaseErrorKind::UniqueViolation)
        );

        let missing_parent =
            "INSERT INTO missions (firm_id, client_id, name, start_date, status, created_at)
            VALUES (1, 999, 'Orphan', '2027-01-01', 'DRAFT', '2027-01-01 00:00:00')";
        assert_eq!(
            execute(&db, missing_parent).await,
            Err(DatabaseErrorKind::ForeignKeyViolation)
        );

        let unknown_status =
            "INSERT INTO missions (firm_id, client_id, name, start_date, status, created_at)
            VALUES (1, 1, 'Odd', '2027-01-01', 'SIGNEDISH', '2027-01-01 00:00:00')";
        assert_eq!(
            execute(&db, unknown_status).await,
            Err(DatabaseErrorKind::CheckViolation)
        );

        let quantity_with_monthly =
            "INSERT INTO mission_lines (firm_id, mission_id, service_id, frequency,
                first_due_date, quantity, created_at)
            VALUES (1, 1, 1, 'MONTHLY', '2027-01-30', 3, '2027-01-01 00:00:00')";
        assert_eq!(
            execute(&db, quantity_with_monthly).await,
            Err(DatabaseErrorKind::CheckViolation)
        );

        let another_copy = "INSERT INTO information_requests (firm_id, client_id, mission_id,
                mission_line_id, service_item_id, copy_number, due_date, created_on, text, status, created_at)
            VALUES (1, 1, 1, 1, 1, 2, '2027-01-30', '2027-01-20', 'Copy 2', 'OPEN', '2027-01-21 00:00:00')";
        execute(&db, another_copy)
            .await
            .expect("another copy number is another occurrence");

        assert_eq!(
            count(&db, "missions").await,
            1,
            "no rejected mission was kept"
        );
        assert_eq!(count(&db, "information_requests").await, 2);
    }
);

async fn http_get_status(url: &str) -> u16 {
    reqwest::get(url)
        .await
        .expect("request sent")
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_process_answers_health_and_graphql_and_reports_a_lost_sqlite_file() {
    let folder = tempfile::tempdir().expect("temporary folder");
    let path = folder.path().join("nested/rappel.db");
    let server = ServerProcess::start(&path.to_string_lossy(), &[]);
    assert!(path.exists(), "the SQLite file and its folder are created");

    assert_eq!(
        http_get_status(&format!("{}/healthz", server.base_url)).await,
        200
    );
    let answer = post_graphql(
        &server.base_url,
        None,
        "{ __typename viewer { kind } }",
        serde_json::json!({}),
    )
    .await;
    assert_eq!(answer["data"]["__typename"], "Query");
    assert!(
        answer["data"]["viewer"].is_null(),
        "anonymous callers have no viewer"
    );

    let graphiql = reqwest::Client::new()
        .get(format!("{}/graphql", server.base_url))
        .header("accept", "text/html")
        .send()
        .await
        .expect("GET");
    assert_eq!(graphiql.status().as_u16(), 200);
    assert!(graphiql.text().await.expect("body").contains("graphiql"));

    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let root = client
        .get(format!("{}/", server.base_url))
        .send()
        .await
        .expect("GET /");
    assert!(root.status().is_redirection());
    assert_eq!(root.headers()["location"], "/graphql");
    let traced = client
        .get(format!("{}/healthz", server.base_url))
        .send()
        .await
        .expect("GET");
    assert!(
        traced.headers().contains_key("x-request-id"),
        "every answer carries a request id"
    );

    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    assert_eq!(
        http_get_status(&format!("{}/healthz", server.base_url)).await,
        503
    );

    let status = server.terminate();
    assert!(
        status.success(),
        "SIGTERM stops the server cleanly, got {status:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_process_on_postgres_reports_a_dropped_database() {
    if !crate::support::db::postgres_configured(
        "the_server_process_on_postgres_reports_a_dropped_database",
    ) {
        return;
    }
    let db = TestDb::create_empty(Backend::Postgres).await;
    let server = ServerProcess::start(&db.url, &[]);
    assert_eq!(
        http_get_status(&format!("{}/healthz", server.base_url)).await,
        200
    );
    let answer = post_graphql(
        &server.base_url,
        None,
        "{ __typename }",
        serde_json::json!({}),
    )
    .await;
    assert_eq!(answer["data"]["__typename"], "Query");
    db.drop_postgres_database().await;
    assert_eq!(
        http_get_status(&format!("{}/healthz", server.base_url)).await,
        503
    );
}

#[test]
fn export_schema_prints_the_committed_schema_file() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_rappel"))
        .arg("export-schema")
        .output()
        .expect("rappel runs");
    assert!(output.status.success());
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql"))
        .expect("schema.graphql is committed");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        committed,
        "schema.graphql drifted: run `cargo run -- export-schema > schema.graphql`"
    );
}

#[test]
fn a_bad_setting_fails_at_start_naming_the_setting_and_the_value() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_rappel"))
        .arg("migrate")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("RAPPEL_LISTEN", "not-an-address")
        .output()
        .expect("rappel runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("listen") && stderr.contains("not-an-address"),
        "{stderr}"
    );

    let output = std::process::Command::new(env!("CARGO_BIN_EXE_rappel"))
        .arg("migrate")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("RAPPEL_DATABASE_POOL_SIZE", "many")
        .output()
        .expect("rappel runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("database.pool_size") && stderr.contains("many"),
        "{stderr}"
    );

    let output = std::process::Command::new(env!("CARGO_BIN_EXE_rappel"))
        .args(["--config", "/nonexistent/rappel.toml", "migrate"])
        .output()
        .expect("rappel runs");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("/nonexistent/rappel.toml"));
}
