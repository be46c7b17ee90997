//! Running Rappel in production, seen from outside: `/metrics` (checked with promtool),
//! `/readyz`, the access log, settings from the environment, nonsense settings, and
//! `rappel backup` under write load.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rappel::db::Pool;
use serde_json::{Value, json};

use crate::backend_test;
use crate::support::Backend;
use crate::support::app::{TestApp, World};
use crate::support::server::post_graphql;

/// A `rappel serve` whose stderr (the log) goes to a file the test reads.
struct LoggedServer {
    child: Child,
    base_url: String,
    log: PathBuf,
    _folder: tempfile::TempDir,
}

impl LoggedServer {
    fn start(database_url: &str, extra_env: &[(&str, &str)]) -> Self {
        Self::try_start(database_url, extra_env).unwrap_or_else(|log| {
            panic!("rappel did not start; its log:\n{log}");
        })
    }

    /// Starts the server; `Err` holds its log when it exits before listening.
    fn try_start(database_url: &str, extra_env: &[(&str, &str)]) -> Result<Self, String> {
        let folder = tempfile::tempdir().expect("temporary folder");
        let log = folder.path().join("rappel.log");
        let log_file = std::fs::File::create(&log).expect("log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_rappel"));
        command
            .arg("serve")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env_remove("RUST_LOG")
            .env("RAPPEL_DATABASE_URL", database_url)
            .env("RAPPEL_LISTEN", "127.0.0.1:0")
            .env("RAPPEL_DEMO", "false")
            .env("RAPPEL_SCHEDULER_ENABLED", "false")
            .env("RAPPEL_DELIVERY_ENABLED", "false")
            .env(
                "RAPPEL_SMTP_MAIL_DIR",
                folder.path().join("mail").to_string_lossy().as_ref(),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file));
        for (key, value) in extra_env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("rappel starts");
        let stdout = child.stdout.take().expect("stdout piped");
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            while let Some(Ok(line)) = lines.next() {
                if let Some(rest) = line.strip_prefix("Rappel listening on ") {
                    let _ = sender.send(rest.trim_end_matches("/graphql").to_string());
                }
            }
        });
        match receiver.recv_timeout(Duration::from_secs(60)) {
            Ok(base_url) => Ok(Self {
                child,
                base_url,
                log,
                _folder: folder,
            }),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(std::fs::read_to_string(&log).unwrap_or_default())
            }
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for LoggedServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `rappel ARGS` to the end; returns (success, stdout, stderr).
fn run_rappel(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_rappel"));
    command
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("RUST_LOG")
        .env("RAPPEL_DEMO", "false");
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().expect("rappel runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

async fn get(url: &str, token: Option<&str>) -> (u16, String) {
    let mut request = reqwest::Client::new().get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("request sent");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

/// Runs `promtool check metrics` on `text`; panics with its findings when it objects.
fn assert_promtool_accepts(text: &str) {
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is installed (apt-get install prometheus; .ci/run does it)");
    {
        use std::io::Write as _;
        let mut stdin = promtool.stdin.take().expect("stdin");
        stdin.write_all(text.as_bytes()).expect("metrics written");
    }
    let mut findings = String::new();
    if let Some(mut stdout) = promtool.stdout.take() {
        let _ = stdout.read_to_string(&mut findings);
    }
    if let Some(mut stderr) = promtool.stderr.take() {
        let _ = stderr.read_to_string(&mut findings);
    }
    let status = promtool.wait().expect("promtool ends");
    assert!(
        status.success(),
        "promtool check metrics failed:\n{findings}\n--- metrics ---\n{text}"
    );
}

/// The sum of every sample of `name` whose labels contain each of `labels`.
fn sample_sum(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter(|line| labels.iter().all(|label| line.contains(label)))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

backend_test!(
    async fn metrics_pass_promtool_and_move_as_a_generation_pass_and_deliveries_run(db: TestDb) {
        let app = TestApp::new(db);
        let world = World::build(&app).await;
        {
            // Signing generated the lines through today; the pass at start scans them again.
            use diesel_async::RunQueryDsl;
            let mut conn = app.db.pool.get().await.expect("connection");
            rappel::with_conn!(conn, |c| diesel::sql_query(
                "UPDATE mission_lines SET generated_through = NULL"
            )
            .execute(c)
            .await)
            .expect("lines reset");
            // Client emails never leave in the evening: move the firms to where it is noon now.
            let zone = crate::support::zone_where_it_is_noon();
            rappel::with_conn!(conn, |c| diesel::sql_query(format!(
                "UPDATE firms SET time_zone = '{zone}'"
            ))
            .execute(c)
            .await)
            .expect("zones set");
            // What signing enqueued this evening waits for the morning: due now instead.
            rappel::with_conn!(conn, |c| diesel::sql_query(
                "UPDATE deliveries SET next_attempt_at = created_at"
            )
            .execute(c)
            .await)
            .expect("deliveries due");
        }
        let server = LoggedServer::start(
            &app.db.url,
            &[
                ("RAPPEL_SCHEDULER_ENABLED", "true"),
                ("RAPPEL_DELIVERY_ENABLED", "true"),
                ("RAPPEL_WEBHOOKS_TIMEOUT_SECONDS", "2"),
                ("RAPPEL_METRICS_BEARER_TOKEN", "scrape-secret"),
            ],
        );
        let url = format!("{}/metrics", server.base_url);
        let (status, _) = get(&url, None).await;
        assert_eq!(status, 401, "the bearer token is required");
        let (status, _) = get(&url, Some("wrong-secret")).await;
        assert_eq!(status, 401, "a wrong token is refused");

        // The pass at start and the worker's first attempts show in the counters.
        let deadline = Instant::now() + Duration::from_secs(60);
        let text = loop {
            let (status, text) = get(&url, Some("scrape-secret")).await;
            assert_eq!(status, 200);
            let passes = sample_sum(&text, "rappel_generation_passes_total", &["result=\"ok\""]);
            let attempts = sample_sum(&text, "rappel_delivery_attempts_total", &[]);
            if passes >= 1.0 && attempts >= 1.0 {
                break text;
            }
            assert!(
                Instant::now() < deadline,
                "no generation pass or delivery attempt counted within a minute:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        };
        assert!(sample_sum(&text, "rappel_generation_lines_scanned_total", &[]) >= 1.0);
        assert!(
            sample_sum(
                &text,
                "rappel_generation_last_success_timestamp_seconds",
                &[]
            ) > 1.0e9
        );
        assert!(sample_sum(&text, "rappel_generation_pass_duration_seconds_count", &[]) >= 1.0);
        assert!(
            sample_sum(&text, "rappel_outbox_deliveries", &[]) >= 1.0,
            "the world's requests enqueued deliveries"
        );
        for name in [
            "rappel_outbox_dead_letters",
            "rappel_outbox_oldest_pending_age_seconds",
            "rappel_db_pool_connections",
            "rappel_process_resident_memory_bytes",
            "rappel_process_uptime_seconds",
            "rappel_sign_ins_total",
            "rappel_reminders_sent_total",
            "rappel_build_info",
        ] {
            assert!(text.contains(&format!("\n{name}")), "{name} is exported");
        }
        assert!(sample_sum(&text, "rappel_process_resident_memory_bytes", &[]) > 1.0e6);

        // A named GraphQL request and a failed one move the request and error counters.
        let before = sample_sum(
            &text,
            "rappel_http_requests_total",
            &["operation=\"WhoAmI\""],
        );
        let answer = post_graphql(
            &server.base_url,
            Some(&world.admin_a_token),
            "query WhoAmI { viewer { kind } }",
            json!({}),
        )
        .await;
        assert!(answer["errors"].is_null(), "{answer}");
        let errors_before = sample_sum(
            &text,
            "rappel_graphql_errors_total",
            &["code=\"NOT_FOUND\""],
        );
        let missing = post_graphql(
            &server.base_url,
            Some(&world.admin_a_token),
            "query Missing { firm { mission(id: \"TWlzc2lvbjo5OTk5OTk\") { id } } }",
            json!({}),
        )
        .await;
        assert_eq!(
            crate::support::app::error_codes(&missing),
            vec!["NOT_FOUND".to_string()]
        );
        let (_, after) = get(&url, Some("scrape-secret")).await;
        assert_promtool_accepts(&after);
        assert_eq!(
            sample_sum(
                &after,
                "rappel_http_requests_total",
                &[
                    "operation=\"WhoAmI\"",
                    "route=\"/graphql\"",
                    "status=\"200\""
                ]
            ),
            before + 1.0
        );
        assert_eq!(
            sample_sum(
                &after,
                "rappel_graphql_errors_total",
                &["code=\"NOT_FOUND\""]
            ),
            errors_before + 1.0
        );
        // Labels only: a sample's value (a latency sum such as 0.0068365449999999) may hold
        // the digits by chance.
        let labels: String = after
            .lines()
            .filter_map(|line| {
                line.split_once('{')
                    .and_then(|(_, rest)| rest.split_once('}'))
            })
            .map(|(labels, _)| labels)
            .collect();
        assert!(
            !after.contains(&world.admin_a_token) && !labels.contains("TWlzc2lvbjo5OTk5OTk"),
            "no token or id in a label"
        );
    }
);

backend_test!(
    async fn every_request_gets_one_json_access_log_line_without_secrets(db: TestDb) {
        let app = TestApp::new(db);
        let world = World::build(&app).await;
        let server = LoggedServer::start(&app.db.url, &[("RAPPEL_LOG_FORMAT", "json")]);
        let client = reqwest::Client::new();
        let mut expected = 0;
        for _ in 0..3 {
            let (status, _) = get(&format!("{}/healthz", server.base_url), None).await;
            assert_eq!(status, 200);
            expected += 1;
        }
        let answer = client
            .post(format!("{}/graphql", server.base_url))
            .bearer_auth(&world.admin_a_token)
            .json(&json!({
                "query": "query ListClients { firm { clients { nodes { id } } } }",
                "operationName": "ListClients"
            }))
            .send()
            .await
            .expect("sent");
        assert_eq!(answer.status().as_u16(), 200);
        expected += 1;
        let login = post_graphql(
            &server.base_url,
            None,
            "mutation SignIn($email: String!, $password: String!) { login(input: { email: $email, password: $password }) { token } }",
            json!({ "email": "admin@a.example.fr", "password": "not-the-password-123" }),
        )
        .await;
        assert!(!login["errors"].is_null());
        expected += 1;
        let (status, _) = get(&format!("{}/no-such-page/42", server.base_url), None).await;
        assert_eq!(status, 404);
        expected += 1;

        // The line is written after the answer leaves: give the log a moment.
        let deadline = Instant::now() + Duration::from_secs(10);
        let access = loop {
            let access: Vec<Value> = server
                .log_text()
                .lines()
                .map(|line| {
                    serde_json::from_str::<Value>(line)
                        .unwrap_or_else(|_| panic!("a log line is not JSON: {line}"))
                })
                .filter(|line| line["target"] == "rappel::access")
                .collect();
            if access.len() >= expected || Instant::now() > deadline {
                break access;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(access.len(), expected, "one line per request: {access:#?}");
        for line in &access {
            assert_eq!(line["level"], "INFO");
            for field in [
                "method",
                "route",
                "status",
                "latency_ms",
                "request_id",
                "operation",
                "caller",
            ] {
                assert!(!line[field].is_null(), "{field} missing in {line}");
            }
            assert_ne!(line["request_id"], "-", "{line}");
        }
        let clients = access
            .iter()
            .find(|line| line["operation"] == "ListClients")
            .expect("the named operation is logged");
        assert_eq!(clients["route"], "/graphql");
        assert_eq!(clients["method"], "POST");
        assert_eq!(clients["status"], 200);
        assert_eq!(clients["caller"], "staff");
        let sign_in = access
            .iter()
            .find(|line| line["operation"] == "SignIn")
            .expect("the sign-in is logged");
        assert_eq!(sign_in["caller"], "anonymous");
        let missing = access
            .iter()
            .find(|line| line["status"] == 404)
            .expect("the 404 is logged");
        assert_eq!(missing["route"], "unmatched", "no raw path as a route");
        let log = server.log_text();
        for secret in [
            world.admin_a_token.as_str(),
            "not-the-password-123",
            "admin@a.example.fr",
        ] {
            assert!(!log.contains(secret), "the log shows {secret:?}");
        }
    }
);

backend_test!(
    async fn text_logs_written_to_a_file_carry_no_colour_codes(db: TestDb) {
        let server = LoggedServer::start(&db.url, &[]);
        let (status, _) = get(&format!("{}/healthz", server.base_url), None).await;
        assert_eq!(status, 200);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !server.log_text().contains("rappel::access") && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let log = server.log_text();
        assert!(log.contains("rappel::access"), "{log}");
        assert!(
            !log.contains('\u{1b}'),
            "ANSI escape codes in a redirected log:\n{log}"
        );
    }
);

backend_test!(
    async fn unknown_rappel_variables_such_as_kubernetes_ones_warn_and_the_server_starts(
        db: TestDb,
    ) {
        let server = LoggedServer::try_start(
            &db.url,
            &[
                ("RAPPEL_PORT", "tcp://10.0.0.12:8080"),
                ("RAPPEL_SERVICE_HOST", "10.0.0.12"),
                ("RAPPEL_PORT_8080_TCP_ADDR", "10.0.0.12"),
                ("RAPPEL_LOG_FORMAT", "json"),
            ],
        )
        .unwrap_or_else(|log| panic!("the server refused to start:\n{log}"));
        let (status, _) = get(&format!("{}/healthz", server.base_url), None).await;
        assert_eq!(status, 200);
        let warnings: Vec<Value> = server
            .log_text()
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|line| line["level"] == "WARN")
            .collect();
        for variable in [
            "RAPPEL_PORT",
            "RAPPEL_SERVICE_HOST",
            "RAPPEL_PORT_8080_TCP_ADDR",
        ] {
            let named = warnings
                .iter()
                .filter(|line| line["variable"] == variable)
                .count();
            assert_eq!(named, 1, "one warning for {variable}: {warnings:#?}");
        }
    }
);

#[test]
fn each_nonsense_setting_stops_the_start_naming_it() {
    let folder = tempfile::tempdir().expect("temporary folder");
    let database = folder.path().join("never.db");
    for (variable, value, setting) in [
        ("RAPPEL_AUTH_SESSION_HOURS", "0", "auth.session_hours"),
        ("RAPPEL_PORTAL_LINK_DAYS", "0", "portal.link_days"),
        (
            "RAPPEL_AUTH_CONTACT_TOKEN_DAYS",
            "0",
            "auth.contact_token_days",
        ),
        (
            "RAPPEL_DELIVERY_SENDING_HOUR",
            "24",
            "delivery.sending_hour",
        ),
        ("RAPPEL_DATABASE_POOL_SIZE", "0", "database.pool_size"),
        (
            "RAPPEL_GRAPHQL_MAX_BODY_BYTES",
            "0",
            "graphql.max_body_bytes",
        ),
        ("RAPPEL_GRAPHQL_MAX_BATCH", "0", "graphql.max_batch"),
        ("RAPPEL_SMTP_POOL_SIZE", "0", "smtp.pool_size"),
        ("RAPPEL_LOG_FORMAT", "xml", "log.format"),
        ("RAPPEL_METRICS_LISTEN", "not-an-address", "metrics.listen"),
    ] {
        let (started, _, stderr) = run_rappel(
            &["serve"],
            &[
                ("RAPPEL_DATABASE_URL", database.to_string_lossy().as_ref()),
                ("RAPPEL_LISTEN", "127.0.0.1:0"),
                (variable, value),
            ],
        );
        assert!(!started, "{variable}={value} must stop the start");
        assert!(
            stderr.contains(setting),
            "{variable}={value}: the error names {setting}: {stderr}"
        );
    }
    assert!(!database.exists(), "nothing was created");
}

#[test]
fn config_check_prints_every_setting_with_its_source_and_masks_secrets() {
    let folder = tempfile::tempdir().expect("temporary folder");
    let file = folder.path().join("rappel.toml");
    std::fs::write(
        &file,
        "listen = \"127.0.0.1:9999\"\n[database]\nurl = \"postgres://app:db-pass@db.internal/rappel\"\n",
    )
    .expect("file written");
    let (ok, stdout, stderr) = run_rappel(
        &["config", "check"],
        &[
            ("RAPPEL_CONFIG", file.to_string_lossy().as_ref()),
            ("RAPPEL_SMTP_PASSWORD", "hunter2-smtp"),
            ("RAPPEL_METRICS_BEARER_TOKEN", "scrape-secret"),
        ],
    );
    assert!(ok, "{stderr}");
    let line = |setting: &str| {
        stdout
            .lines()
            .find(|line| line.starts_with(&format!("{setting} = ")))
            .unwrap_or_else(|| panic!("{setting} is printed:\n{stdout}"))
            .to_string()
    };
    assert!(line("listen").contains("\"127.0.0.1:9999\""), "{stdout}");
    assert!(line("listen").contains("rappel.toml"), "{stdout}");
    assert!(line("smtp.password").contains("\"***\""), "{stdout}");
    assert!(line("smtp.password").contains("environment"), "{stdout}");
    assert!(line("metrics.bearer_token").contains("\"***\""), "{stdout}");
    assert!(
        line("database.url").contains("app:***@db.internal"),
        "{stdout}"
    );
    assert!(
        line("graphql.max_depth").contains("built-in default"),
        "{stdout}"
    );
    for secret in ["hunter2-smtp", "scrape-secret", "db-pass"] {
        assert!(!stdout.contains(secret), "{secret} shown:\n{stdout}");
    }
}

#[test]
fn version_shows_the_git_commit() {
    let (ok, stdout, _) = run_rappel(&["--version"], &[]);
    assert!(ok);
    let commit = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    assert!(
        stdout.contains(&format!("(commit {commit})")),
        "{stdout} should name {commit}"
    );
}

backend_test!(
    async fn readyz_reports_each_part_and_names_what_failed(db: TestDb) {
        let server = LoggedServer::start(
            &db.url,
            &[
                ("RAPPEL_SCHEDULER_ENABLED", "true"),
                ("RAPPEL_DELIVERY_ENABLED", "true"),
            ],
        );
        let (status, body) = get(&format!("{}/readyz", server.base_url), None).await;
        assert_eq!(status, 200, "{body}");
        let answer: Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(answer["status"], "ready");
        let names: Vec<&str> = answer["checks"]
            .as_array()
            .expect("checks")
            .iter()
            .filter_map(|check| check["name"].as_str())
            .collect();
        for part in [
            "database",
            "migrations",
            "scheduler",
            "reminders",
            "delivery_worker",
        ] {
            assert!(names.contains(&part), "{part} is checked: {body}");
        }
        if db.backend == Backend::Sqlite {
            // The database goes away under the running server.
            let path = db.url.trim_start_matches("sqlite://").to_string();
            std::fs::remove_file(&path).expect("database removed");
            let (status, body) = get(&format!("{}/readyz", server.base_url), None).await;
            assert_eq!(status, 503, "{body}");
            let answer: Value = serde_json::from_str(&body).expect("JSON");
            assert_eq!(answer["status"], "not ready");
            assert!(
                answer["failed"]
                    .as_array()
                    .expect("failed")
                    .contains(&json!("database")),
                "{body}"
            );
        }
    }
);

/// Rows of `scheduler_runs` in a database, by id.
async fn run_ids(pool: &Pool) -> Vec<i64> {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use rappel::db::schema::scheduler_runs;
    let mut conn = pool.get().await.expect("connection");
    rappel::with_conn!(conn, |c| scheduler_runs::table
        .select(scheduler_runs::id)
        .order(scheduler_runs::id)
        .load::<i64>(c)
        .await)
    .expect("ids read")
}

backend_test!(
    async fn a_backup_taken_under_concurrent_writes_restores_every_committed_row(db: TestDb) {
        let folder = tempfile::tempdir().expect("temporary folder");
        let backup = folder.path().join("backup.db");
        let backup_arg = backup.to_string_lossy().to_string();
        if db.backend == Backend::Postgres {
            let (ok, _, stderr) = run_rappel(
                &["backup", &backup_arg],
                &[("RAPPEL_DATABASE_URL", &db.url)],
            );
            assert!(!ok, "PostgreSQL is backed up with pg_dump");
            assert!(stderr.contains("pg_dump"), "{stderr}");
            return;
        }
        // A server keeps serving the database, and a writer keeps committing, throughout.
        let server = LoggedServer::start(&db.url, &[]);
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = {
            let (pool, stop) = (db.pool.clone(), stop.clone());
            tokio::spawn(async move {
                let mut committed = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let mut conn = pool.get().await.expect("connection");
                    let id = rappel::db::runs::start_run(
                        &mut conn.as_db(),
                        "GENERATION",
                        "writer",
                        None,
                        chrono::Utc::now().naive_utc(),
                    )
                    .await
                    .expect("row committed");
                    committed.push((id, Instant::now()));
                }
                committed
            })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        let backup_started = Instant::now();
        let (ok, stdout, stderr) = tokio::task::spawn_blocking({
            let (url, backup_arg) = (db.url.clone(), backup_arg.clone());
            move || run_rappel(&["backup", &backup_arg], &[("RAPPEL_DATABASE_URL", &url)])
        })
        .await
        .expect("backup ran");
        assert!(ok, "backup failed: {stdout}{stderr}");
        let (status, _) = get(&format!("{}/healthz", server.base_url), None).await;
        assert_eq!(status, 200, "the server kept serving");
        tokio::time::sleep(Duration::from_millis(200)).await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let committed = writer.await.expect("writer ends");
        let before_backup: Vec<i64> = committed
            .iter()
            .filter(|(_, at)| *at < backup_started)
            .map(|(id, _)| *id)
            .collect();
        assert!(before_backup.len() >= 5, "the writer was busy");
        assert!(
            committed.iter().any(|(_, at)| *at > backup_started),
            "writes went on during the backup"
        );

        // Restore: the copy becomes a database file of its own and Rappel opens it.
        let restored = folder.path().join("restored.db");
        std::fs::copy(&backup, &restored).expect("backup copied");
        let pool = Pool::connect(&restored.to_string_lossy(), 2, 5000)
            .await
            .expect("restored database opens");
        assert!(
            pool.migrations_are_current()
                .await
                .expect("migrations read"),
            "the restored schema is current"
        );
        let ids = run_ids(&pool).await;
        for id in &before_backup {
            assert!(
                ids.contains(id),
                "row {id} committed before the backup is missing"
            );
        }
        let all: Vec<i64> = committed.iter().map(|(id, _)| *id).collect();
        assert_eq!(
            ids,
            all[..ids.len()].to_vec(),
            "the copy is a consistent prefix of the commits"
        );
        let (again, _, stderr) = run_rappel(
            &["backup", &backup_arg],
            &[("RAPPEL_DATABASE_URL", &db.url)],
        );
        assert!(!again, "an existing file is never overwritten");
        assert!(stderr.contains("already exists"), "{stderr}");
        let missing = folder.path().join("missing.db");
        let (copied, _, stderr) = run_rappel(
            &["backup", &folder.path().join("other.db").to_string_lossy()],
            &[("RAPPEL_DATABASE_URL", &missing.to_string_lossy())],
        );
        assert!(!copied && stderr.contains("no database"), "{stderr}");
        assert!(!missing.exists(), "a missing database is not created");
        drop(server);
    }
);
