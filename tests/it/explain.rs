//! Query plans at the bench's size: the tenant tables hold what `bench/compare` seeds (200
//! clients, 400 monthly missions, 9,200 tasks and 9,200 requests for the firm read) and as much
//! for each of four other firms, the database is analyzed, then the firm view's and the
//! client view's lists (and lookups) run through GraphQL; every SELECT they issue (captured with
//! diesel's instrumentation, binds included) is planned again with `EXPLAIN` (PostgreSQL: the
//! custom plan of a prepared statement with the same values; SQLite: `EXPLAIN QUERY PLAN`),
//! and a sequential scan of a tenant table of that size fails the test.

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use rappel::graphql::Caller;
use serde_json::{Value, json};

use crate::counted_backend_test;
use crate::support::app::{TestApp, World};
use crate::support::statements::texts_of;
use crate::support::{Backend, TestDb};

/// Tenant tables with fewer rows than this at the seeded size (categories, services, staff,
/// and the thousand clients and contacts: a dozen pages) may be read whole: reading a few
/// pages in a row costs less than an index walk, and both planners say so.
const LARGE_TABLE_ROWS: i64 = 2_000;

/// Missions per client and months of occurrences per mission, as the bench seeds them.
const MISSIONS_PER_CLIENT: i64 = 2;
const MONTHS: i64 = 23;
const CLIENTS: i64 = 200;
/// Other firms holding as many rows each: the firm read holds a fifth of each table, as it
/// would a small share among many tenants.
const OTHER_FIRMS: [&str; 4] = ["Cabinet B", "Cabinet C", "Cabinet D", "Cabinet E"];

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    count: i64,
}

#[derive(QueryableByName)]
struct PgPlanLine {
    #[diesel(sql_type = Text)]
    #[diesel(column_name = "QUERY PLAN")]
    line: String,
}

#[derive(QueryableByName)]
struct SqlitePlanLine {
    #[diesel(sql_type = Text)]
    detail: String,
}

/// `days` after 2027-01-15 as an SQL date expression of `backend`.
fn due_date(backend: Backend, days: &str) -> String {
    match backend {
        Backend::Postgres => format!("(DATE '2027-01-15' + ({days})::int)"),
        Backend::Sqlite => format!("date('2027-01-15', '+' || ({days}) || ' days')"),
    }
}

/// The statements that give firm `firm` the bench's rows (clients with a
/// contact, signed monthly missions on `service`, their tasks, requests and deliveries).
fn seed_statements(backend: Backend, firm: i64, service: i64) -> Vec<String> {
    let clients = CLIENTS;
    let due = due_date(backend, "30 * n.i");
    vec![
        format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {clients}) \
             INSERT INTO clients (firm_id, name, reference, created_at) \
             SELECT {firm}, 'Banc ' || n.i, 'D' || n.i, CURRENT_TIMESTAMP FROM n"
        ),
        format!(
            "INSERT INTO contacts (firm_id, client_id, name, email, created_at) \
             SELECT firm_id, id, name, 'c' || id || '@banc.example', CURRENT_TIMESTAMP \
             FROM clients WHERE firm_id = {firm} AND name LIKE 'Banc %'"
        ),
        format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {MISSIONS_PER_CLIENT}) \
             INSERT INTO missions (firm_id, client_id, name, start_date, status, signed_at, created_at) \
             SELECT c.firm_id, c.id, 'Banc mission ' || n.i, '2027-01-15', 'SIGNED', \
             CURRENT_TIMESTAMP, CURRENT_TIMESTAMP FROM clients c CROSS JOIN n WHERE c.firm_id = {firm}"
        ),
        format!(
            "INSERT INTO mission_lines (firm_id, mission_id, service_id, frequency, first_due_date, created_at) \
             SELECT firm_id, id, {service}, 'MONTHLY', '2027-01-15', CURRENT_TIMESTAMP \
             FROM missions WHERE firm_id = {firm} AND name LIKE 'Banc mission %'"
        ),
        format!(
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {last}) \
             INSERT INTO tasks (firm_id, client_id, mission_id, mission_line_id, service_item_id, \
             copy_number, due_date, created_on, title, status, created_at) \
             SELECT l.firm_id, m.client_id, m.id, l.id, s.id, 1, {due}, {due}, s.text, 'OPEN', CURRENT_TIMESTAMP \
             FROM mission_lines l JOIN missions m ON m.id = l.mission_id \
             JOIN service_items s ON s.service_id = l.service_id AND s.kind = 'TASK' CROSS JOIN n \
             WHERE l.firm_id = {firm} AND m.name LIKE 'Banc mission %'",
            last = MONTHS - 1
        ),
        format!(
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {last}) \
             INSERT INTO information_requests (firm_id, client_id, mission_id, mission_line_id, \
             service_item_id, copy_number, due_date, created_on, text, status, created_at) \
             SELECT l.firm_id, m.client_id, m.id, l.id, s.id, 1, {due}, {due}, s.text, 'OPEN', CURRENT_TIMESTAMP \
             FROM mission_lines l JOIN missions m ON m.id = l.mission_id \
             JOIN service_items s ON s.service_id = l.service_id AND s.kind = 'INFORMATION_REQUEST' CROSS JOIN n \
             WHERE l.firm_id = {firm} AND m.name LIKE 'Banc mission %'",
            last = MONTHS - 1
        ),
        format!(
            "INSERT INTO deliveries (firm_id, delivery_uid, dedupe_key, kind, event, request_id, \
             target, payload, status, attempts, next_attempt_at, delivered_at, created_at) \
             SELECT r.firm_id, 'banc-' || r.id, 'banc-' || r.id, 'EMAIL', 'information_request.created', \
             r.id, 'c@banc.example', '{{}}', 'DELIVERED', 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP \
             FROM information_requests r JOIN missions m ON m.id = r.mission_id \
             WHERE r.firm_id = {firm} AND m.name LIKE 'Banc mission %'"
        ),
    ]
}

/// Runs `sql` on a connection of its own (not the pool's), returning the rows of `T`.
async fn rows<T>(db: &TestDb, sql: &str) -> Vec<T>
where
    T: QueryableByName<diesel::pg::Pg> + QueryableByName<diesel::sqlite::Sqlite> + Send + 'static,
{
    match db.backend {
        Backend::Postgres => {
            let mut conn = AsyncPgConnection::establish(&db.url)
                .await
                .expect("connects");
            diesel::sql_query(sql)
                .load(&mut conn)
                .await
                .unwrap_or_else(|error| panic!("{sql}: {error}"))
        }
        Backend::Sqlite => {
            use diesel::Connection as _;
            let mut conn = diesel::SqliteConnection::establish(&db.url).expect("opens");
            diesel::RunQueryDsl::load(diesel::sql_query(sql), &mut conn)
                .unwrap_or_else(|error| panic!("{sql}: {error}"))
        }
    }
}

async fn execute(db: &TestDb, sql: &str) {
    match db.backend {
        Backend::Postgres => {
            let mut conn = AsyncPgConnection::establish(&db.url)
                .await
                .expect("connects");
            conn.batch_execute(sql)
                .await
                .unwrap_or_else(|error| panic!("{sql}: {error}"));
        }
        Backend::Sqlite => {
            use diesel::Connection as _;
            use diesel::connection::SimpleConnection as _;
            let mut conn = diesel::SqliteConnection::establish(&db.url).expect("opens");
            conn.batch_execute("PRAGMA busy_timeout = 10000")
                .expect("busy timeout");
            conn.batch_execute(sql)
                .unwrap_or_else(|error| panic!("{sql}: {error}"));
        }
    }
}

async fn one_id(db: &TestDb, sql: &str) -> i64 {
    let found: Vec<Count> = rows(db, sql).await;
    found
        .into_iter()
        .next()
        .map(|row| row.count)
        .expect("one row")
}

/// The tenant tables (those with a `firm_id`) holding at least [`LARGE_TABLE_ROWS`] rows.
async fn large_tenant_tables(db: &TestDb) -> Vec<String> {
    let sql = match db.backend {
        Backend::Postgres => {
            "SELECT table_name::text AS name FROM information_schema.columns \
             WHERE table_schema = 'public' AND column_name = 'firm_id' ORDER BY 1"
        }
        Backend::Sqlite => {
            "SELECT m.name AS name FROM sqlite_master m, pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND p.name = 'firm_id' ORDER BY 1"
        }
    };
    let tables: Vec<Name> = rows(db, sql).await;
    let mut large = Vec::new();
    for table in tables {
        let count = one_id(db, &format!("SELECT count(*) AS count FROM {}", table.name)).await;
        if count >= LARGE_TABLE_ROWS {
            large.push(table.name);
        }
    }
    large
}

/// Splits diesel's debug text (`SQL -- binds: [..]`) into the SQL and its bind values.
fn split_binds(text: &str) -> (&str, Vec<String>) {
    match text.rsplit_once(" -- binds: ") {
        Some((sql, binds)) => (sql, debug_list(binds)),
        None => (text, Vec::new()),
    }
}

/// The top-level entries of a `Debug` list (`[1, "a, b", [2, 3]]`).
fn debug_list(list: &str) -> Vec<String> {
    let inner = list
        .trim()
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .unwrap_or("");
    let mut entries = Vec::new();
    let (mut depth, mut quoted, mut escaped) = (0, false, false);
    let mut current = String::new();
    for character in inner.chars() {
        if quoted {
            current.push(character);
            match (escaped, character) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => quoted = false,
                _ => {}
            }
            continue;
        }
        match character {
            '"' => quoted = true,
            '[' | '(' => depth += 1,
            ']' | ')' => depth -= 1,
            ',' if depth == 0 => {
                entries.push(current.trim().to_string());
                current.clear();
                continue;
            }
            _ => {}
        }
        current.push(character);
    }
    if !current.trim().is_empty() {
        entries.push(current.trim().to_string());
    }
    entries
}

/// A `Debug` string's text (`"a\"b"` -> `a"b`).
fn unquote(debug: &str) -> String {
    serde_json::from_str::<String>(debug).unwrap_or_else(|_| debug.trim_matches('"').to_string())
}

/// One bind value as an untyped PostgreSQL literal (its type comes from the prepared
/// statement): strings as text, lists as array literals, enums in the SQL's spelling.
fn literal(debug: &str) -> String {
    let debug = debug.trim();
    if debug == "None" {
        return "NULL".into();
    }
    if let Some(inner) = debug
        .strip_prefix("Some(")
        .and_then(|rest| rest.strip_suffix(')'))
    {
        return literal(inner);
    }
    let quote = |text: &str| format!("'{}'", text.replace('\'', "''"));
    if debug.starts_with('"') {
        return quote(&unquote(debug));
    }
    if debug.starts_with('[') {
        let items: Vec<String> = debug_list(debug)
            .iter()
            .map(|item| {
                if item.starts_with('"') {
                    serde_json::to_string(&unquote(item)).expect("string")
                } else {
                    item.clone()
                }
            })
            .collect();
        return quote(&format!("{{{}}}", items.join(",")));
    }
    if debug.starts_with(|c: char| c.is_ascii_uppercase()) {
        // An enum's Debug (`InformationRequest`): the SQL spells it INFORMATION_REQUEST.
        let mut spelled = String::new();
        for (position, character) in debug.chars().enumerate() {
            if character.is_ascii_uppercase() && position > 0 {
                spelled.push('_');
            }
            spelled.push(character.to_ascii_uppercase());
        }
        return quote(&spelled);
    }
    quote(debug)
}

/// The plan of one captured statement, one line per node.
async fn plan(db: &TestDb, text: &str) -> Vec<String> {
    let (sql, binds) = split_binds(text);
    match db.backend {
        Backend::Postgres => {
            let mut conn = AsyncPgConnection::establish(&db.url)
                .await
                .expect("connects");
            // Rappel's pool connections plan every prepared statement once, generically
            // (`plan_cache_mode` in their startup options): the plan checked is that one.
            conn.batch_execute("SET plan_cache_mode = force_generic_plan")
                .await
                .expect("generic plans");
            conn.batch_execute(&format!("PREPARE planned AS {sql}"))
                .await
                .unwrap_or_else(|error| panic!("PREPARE {sql}: {error}"));
            let values: Vec<String> = binds.iter().map(|bind| literal(bind)).collect();
            let execute = if values.is_empty() {
                "EXPLAIN EXECUTE planned".to_string()
            } else {
                format!("EXPLAIN EXECUTE planned({})", values.join(", "))
            };
            let lines: Vec<PgPlanLine> = diesel::sql_query(&execute)
                .load(&mut conn)
                .await
                .unwrap_or_else(|error| panic!("{execute} for {text}: {error}"));
            lines.into_iter().map(|line| line.line).collect()
        }
        Backend::Sqlite => {
            let lines: Vec<SqlitePlanLine> = rows(db, &format!("EXPLAIN QUERY PLAN {sql}")).await;
            lines.into_iter().map(|line| line.detail).collect()
        }
    }
}

/// The plan's lines that read all of one of `tables`.
fn full_scans<'a>(backend: Backend, plan: &'a [String], tables: &[String]) -> Vec<&'a String> {
    plan.iter()
        .filter(|line| {
            let line = line.trim().trim_start_matches("->").trim();
            tables.iter().any(|table| match backend {
                Backend::Postgres => {
                    line.starts_with(&format!("Seq Scan on {table} "))
                        || line == format!("Seq Scan on {table}")
                }
                Backend::Sqlite => {
                    line.starts_with(&format!("SCAN {table} ")) || line == format!("SCAN {table}")
                }
            })
        })
        .collect()
}

/// The firm view's and client view's reads: every list with its nested fields, in each
/// order and filter, second pages (keyset seeks) and lookups.
fn reads(world: &World) -> Vec<(&'static str, String)> {
    let firm = &world.firm_a;
    let work = "title dueDate status client { name } mission { name } service { title } \
                assignee { name } requests { id } requestProgress { answered }";
    let asked = "text dueDate status client { name } mission { name } service { title } \
                 tasks { id } answers { totalCount nodes { message } }";
    let mut reads = vec![
        ("staff", format!("{{ firm {{ tasks(first: 50) {{ totalCount pageInfo {{ endCursor }} nodes {{ {work} }} }} }} }}")),
        ("staff", format!("{{ firm {{ informationRequests(first: 50) {{ totalCount pageInfo {{ endCursor }} nodes {{ {asked} }} }} }} }}")),
        ("staff", "{ firm { clients(first: 50) { totalCount pageInfo { endCursor } nodes { name contacts { nodes { name } } missions { nodes { name } } } } } }".into()),
        ("staff", "{ firm { missions(first: 50) { totalCount pageInfo { endCursor } nodes { name client { name } lines { frequency } } } } }".into()),
        ("staff", "{ firm { deliveries(first: 50) { totalCount pageInfo { endCursor } nodes { status attemptLog { nodes { attemptedAt } } } } } }".into()),
        ("staff", "{ firm { services(first: 50) { nodes { title } } categories(first: 50) { nodes { name } } staff(first: 50) { nodes { name } } webhookEndpoints(first: 50) { nodes { url } } } }".into()),
        ("staff", "{ firm { history(first: 50) { nodes { kind } } files(first: 50) { nodes { name } } workload { openTasks overdueRequests byAssignee { openTasks assignee { name } } } } }".into()),
        ("staff", format!("{{ firm {{ client(id: \"{}\") {{ name tasks(first: 50) {{ totalCount nodes {{ title }} }} requests(first: 50) {{ totalCount nodes {{ text }} }} missions {{ nodes {{ name }} }} history(first: 50) {{ nodes {{ kind }} }} }} }} }}", firm.client)),
        ("staff", format!("{{ firm {{ mission(id: \"{}\") {{ name lines {{ frequency }} history(first: 50) {{ nodes {{ kind }} }} }} }} }}", firm.mission)),
        ("staff", format!("{{ firm {{ task(id: \"{}\") {{ {work} }} }} }}", firm.task)),
        ("staff", format!("{{ firm {{ informationRequest(id: \"{}\") {{ {asked} }} }} }}", firm.request)),
        ("contact", "{ client { firmName clientName requests(first: 50) { totalCount pageInfo { endCursor } nodes { text dueDate status answers { totalCount nodes { message } } } } } }".into()),
        ("contact", "{ client { requests(first: 50, status: OPEN) { totalCount nodes { text } } } }".into()),
        ("contact", format!("{{ client {{ request(id: \"{}\") {{ text answers {{ totalCount nodes {{ message }} }} }} }} }}", firm.request)),
    ];
    for list in ["tasks", "informationRequests"] {
        for order in ["DUE_DATE", "CLIENT", "STATUS"] {
            for direction in ["ASC", "DESC"] {
                reads.push(("staff", format!(
                    "{{ firm {{ {list}(first: 50, orderBy: {{ field: {order}, direction: {direction} }}) {{ nodes {{ id }} }} }} }}"
                )));
            }
        }
        reads.push((
            "staff",
            format!(
                "{{ firm {{ {list}(first: 50, status: OPEN) {{ totalCount nodes {{ id }} }} }} }}"
            ),
        ));
        for filter in [
            "{ overdue: true }",
            "{ createdToday: true }",
            "{ dueAfter: \"2027-06-01\", dueBefore: \"2027-07-01\" }",
            "{ search: \"Banc 17\" }",
        ] {
            reads.push(("staff", format!(
                "{{ firm {{ {list}(first: 50, filter: {filter}) {{ totalCount nodes {{ id }} }} }} }}"
            )));
        }
    }
    reads
}

async fn plans_of_the_lists_read_no_large_tenant_table_whole(db: TestDb) {
    let app = TestApp::new(db);
    let world = World::build(&app).await;
    let backend = app.db.backend;
    if backend == Backend::Postgres {
        // The pool's connections ask for generic plans, as the plans below are checked.
        #[derive(diesel::QueryableByName)]
        struct Mode {
            #[diesel(sql_type = diesel::sql_types::Text)]
            plan_cache_mode: String,
        }
        let mut conn = app.db.pool.get().await.expect("connection");
        let modes: Vec<Mode> = rappel::with_conn!(conn, |c| diesel::sql_query(
            "SELECT current_setting('plan_cache_mode') AS plan_cache_mode"
        )
        .load(c)
        .await)
        .expect("setting");
        assert_eq!(modes[0].plan_cache_mode, "force_generic_plan");
    }
    for extra in &OTHER_FIRMS[1..] {
        execute(
            &app.db,
            &format!("INSERT INTO firms (name, created_at) VALUES ('{extra}', CURRENT_TIMESTAMP)"),
        )
        .await;
    }
    // Firm B's service serves the extra firms too: the planner sees ids, not tenants.
    let mut service = 0;
    for firm_name in std::iter::once("Cabinet A").chain(OTHER_FIRMS) {
        let firm = one_id(
            &app.db,
            &format!("SELECT id AS count FROM firms WHERE name = '{firm_name}'"),
        )
        .await;
        if firm_name != "Cabinet C" && firm_name != "Cabinet D" && firm_name != "Cabinet E" {
            service = one_id(
                &app.db,
                &format!(
                    "SELECT min(service_id) AS count FROM service_items WHERE firm_id = {firm} \
                     AND kind = 'TASK' AND service_id IN (SELECT service_id FROM service_items \
                     WHERE kind = 'INFORMATION_REQUEST')"
                ),
            )
            .await;
        }
        for statement in seed_statements(backend, firm, service) {
            execute(&app.db, &statement).await;
        }
    }
    let (firm_a_tasks, firm_a_requests) = (
        one_id(
            &app.db,
            "SELECT count(*) AS count FROM tasks WHERE firm_id = (SELECT id FROM firms WHERE name = 'Cabinet A')",
        )
        .await,
        one_id(
            &app.db,
            "SELECT count(*) AS count FROM information_requests WHERE firm_id = (SELECT id FROM firms WHERE name = 'Cabinet A')",
        )
        .await,
    );
    let bench_size = CLIENTS * MISSIONS_PER_CLIENT * MONTHS;
    assert!(
        firm_a_tasks >= bench_size && firm_a_requests >= bench_size,
        "{firm_a_tasks} tasks, {firm_a_requests} requests"
    );
    match backend {
        Backend::Postgres => execute(&app.db, "VACUUM ANALYZE").await,
        Backend::Sqlite => execute(&app.db, "ANALYZE").await,
    }
    let tables = large_tenant_tables(&app.db).await;
    for expected in [
        "missions",
        "mission_lines",
        "tasks",
        "information_requests",
        "deliveries",
    ] {
        assert!(tables.iter().any(|table| table == expected), "{tables:?}");
    }

    let mut failures = Vec::new();
    let mut planned = 0;
    for (who, query) in reads(&world) {
        let caller: &Caller = if who == "contact" {
            &world.contact_a
        } else {
            &world.admin_a
        };
        let before = texts_of(&app.db.url).len();
        let data = app.ok(caller, &query, json!({})).await;
        let mut texts: Vec<String> = texts_of(&app.db.url)[before..].to_vec();
        // The second page of each list: a keyset seek.
        if let Some((field, cursor)) = end_cursor(&data) {
            let next = query.replacen(
                &format!("{field}(first: 50"),
                &format!("{field}(first: 50, after: \"{cursor}\""),
                1,
            );
            let before = texts_of(&app.db.url).len();
            app.ok(caller, &next, json!({})).await;
            texts.extend(texts_of(&app.db.url)[before..].to_vec());
        }
        for text in texts {
            let trimmed = text.trim_start();
            if !(trimmed.starts_with("SELECT") || trimmed.starts_with("WITH")) {
                continue;
            }
            let lines = plan(&app.db, &text).await;
            planned += 1;
            let scans = full_scans(backend, &lines, &tables);
            if !scans.is_empty() {
                failures.push(format!("{query}\n  {text}\n  {}", lines.join("\n  ")));
            }
        }
    }
    eprintln!("{}: {planned} statements planned", app.db.url);
    assert!(planned > 40, "{planned} statements planned");
    assert!(
        failures.is_empty(),
        "{} statements read a large tenant table whole:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// The first list of `data` (depth-first) with a next page: its field name and end cursor.
fn end_cursor(data: &Value) -> Option<(String, String)> {
    let object = data.as_object()?;
    for (field, value) in object {
        if let Some(cursor) = value["pageInfo"]["endCursor"].as_str() {
            return Some((field.clone(), cursor.to_string()));
        }
        if let Some(found) = end_cursor(value) {
            return Some(found);
        }
    }
    None
}

counted_backend_test!(
    async fn plans_of_the_lists_read_no_large_tenant_table_whole(db: TestDb) {
        plans_of_the_lists_read_no_large_tenant_table_whole(db).await;
    }
);

#[test]
fn debug_binds_become_literals() {
    let (sql, binds) = split_binds(
        r#"SELECT 1 WHERE a = $1 -- binds: [3, "it's, \"x\"", [1, 2], Open, None, 2027-01-15]"#,
    );
    assert_eq!(sql, "SELECT 1 WHERE a = $1");
    let literals: Vec<String> = binds.iter().map(|bind| literal(bind)).collect();
    assert_eq!(
        literals,
        [
            "'3'",
            r#"'it''s, "x"'"#,
            "'{1,2}'",
            "'OPEN'",
            "NULL",
            "'2027-01-15'"
        ]
    );
    assert_eq!(literal("InformationRequest"), "'INFORMATION_REQUEST'");
}
