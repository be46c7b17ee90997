//! Many-row writes of generation (tasks, information requests, their deliveries and journal
//! entries) and of its benchmark's ceiling. PostgreSQL gets one `INSERT ... SELECT FROM
//! UNNEST(...)` per table: one statement whatever the row count (eleven array parameters, not
//! eleven per row), so it is parsed once and cached. SQLite, in-process, gets one cached
//! prepared statement run per row, all rows of a call in one blocking task: a hop to the
//! blocking pool per row would cost more than the insert itself. Nothing here decides what to
//! write; that is `crate::generation`.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::BoxedSqlQuery;
use diesel::sql_types::{Array, BigInt, Date, Integer, Nullable, Text, Timestamp};
use diesel_async::RunQueryDsl;

use super::journal::NewJournalEntry;
use super::outbox::NewDelivery;
use super::schema::{deliveries, information_requests, journal_entries, tasks};
use super::work::{InformationRequest, NewInformationRequest, NewTask};
use super::{DbConn, DbResult};

/// Rows per multi-row statement (attempts, states, tokens, journal entries): at 13 bound
/// parameters a row at most, 6,500 a statement, far under SQLite's 32,766 and PostgreSQL's
/// 65,535; a claimed batch (64 rows by default) always fits in one statement.
pub const ROWS_PER_STATEMENT: usize = 500;

/// Inserts owned rows (`Insertable`, every `None` written as NULL:
/// `treat_none_as_default_value = false`) into `$table`, [`ROWS_PER_STATEMENT`] rows a
/// statement, and evaluates to how many rows were inserted. Call it inside the caller's
/// transaction. On SQLite, diesel writes many rows in one statement through its synchronous
/// connection only, so the chunks run in one blocking task (one hop).
macro_rules! insert_rows {
    ($db:expr, $table:expr, $rows:expr) => {{
        use $crate::db::bulk::ROWS_PER_STATEMENT;
        let rows = $rows;
        let mut inserted: usize = 0;
        if !rows.is_empty() {
            match $db {
                $crate::db::DbConn::Postgres(c) => {
                    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
                        inserted += diesel_async::RunQueryDsl::execute(
                            diesel::insert_into($table).values(chunk),
                            *c,
                        )
                        .await?;
                    }
                }
                $crate::db::DbConn::Sqlite(c) => {
                    inserted = c
                        .spawn_blocking(move |conn| {
                            let mut inserted = 0;
                            for chunk in rows.chunks(ROWS_PER_STATEMENT) {
                                inserted += diesel::RunQueryDsl::execute(
                                    diesel::insert_into($table).values(chunk),
                                    conn,
                                )?;
                            }
                            Ok(inserted)
                        })
                        .await?;
                }
            }
        }
        inserted
    }};
}
pub(crate) use insert_rows;

/// Whether a row whose unique key exists already is skipped (generation: the key makes every
/// pass idempotent) or fails the statement (the benchmark's plain ceiling, which knows its
/// rows are new).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflicts {
    Skip,
    Fail,
}

const WORK_ARRAYS: &str = "SELECT * FROM UNNEST($1::int8[], $2::int8[], $3::int8[], $4::int8[], \
     $5::int8[], $6::int4[], $7::date[], $8::date[], $9::text[], $10::text[], $11::timestamp[])";
const WORK_KEY: &str =
    "ON CONFLICT (mission_line_id, service_item_id, due_date, copy_number) DO NOTHING";

/// One column array per field of a task or a request (their shapes are the same).
#[derive(Default)]
struct WorkColumns<'a> {
    firm_id: Vec<i64>,
    client_id: Vec<i64>,
    mission_id: Vec<i64>,
    mission_line_id: Vec<i64>,
    service_item_id: Vec<i64>,
    copy_number: Vec<i32>,
    due_date: Vec<NaiveDate>,
    created_on: Vec<NaiveDate>,
    label: Vec<&'a str>,
    status: Vec<&'static str>,
    created_at: Vec<NaiveDateTime>,
}

impl<'a> WorkColumns<'a> {
    fn bind(self, sql: String) -> BoxedSqlQuery<'a, Pg, diesel::query_builder::SqlQuery> {
        diesel::sql_query(sql)
            .into_boxed()
            .bind::<Array<BigInt>, _>(self.firm_id)
            .bind::<Array<BigInt>, _>(self.client_id)
            .bind::<Array<BigInt>, _>(self.mission_id)
            .bind::<Array<BigInt>, _>(self.mission_line_id)
            .bind::<Array<BigInt>, _>(self.service_item_id)
            .bind::<Array<Integer>, _>(self.copy_number)
            .bind::<Array<Date>, _>(self.due_date)
            .bind::<Array<Date>, _>(self.created_on)
            .bind::<Array<Text>, _>(self.label)
            .bind::<Array<Text>, _>(self.status)
            .bind::<Array<Timestamp>, _>(self.created_at)
    }
}

/// The column arrays of tasks (`label` = `title`) or requests (`label` = `text`): their
/// fields are the same but for the label's name.
macro_rules! work_columns {
    ($rows:expr, $label:ident) => {{
        let mut columns = WorkColumns::default();
        for row in $rows {
            columns.firm_id.push(row.firm_id);
            columns.client_id.push(row.client_id);
            columns.mission_id.push(row.mission_id);
            columns.mission_line_id.push(row.mission_line_id);
            columns.service_item_id.push(row.service_item_id);
            columns.copy_number.push(row.copy_number);
            columns.due_date.push(row.due_date);
            columns.created_on.push(row.created_on);
            columns.label.push(row.$label.as_str());
            columns.status.push(row.status.as_str());
            columns.created_at.push(row.created_at);
        }
        columns
    }};
}

const WORK_COLUMNS: &str = "firm_id, client_id, mission_id, mission_line_id, service_item_id, \
     copy_number, due_date, created_on";

fn work_sql(table: &str, label: &str, conflicts: Conflicts, returning: bool) -> String {
    let mut sql =
        format!("INSERT INTO {table} ({WORK_COLUMNS}, {label}, status, created_at) {WORK_ARRAYS}");
    if conflicts == Conflicts::Skip {
        sql.push(' ');
        sql.push_str(WORK_KEY);
    }
    if returning {
        sql.push_str(
            " RETURNING id, firm_id, client_id, mission_id, mission_line_id, service_item_id, \
             copy_number, due_date, created_on, text, status, answered_at, closed_at, created_at",
        );
    }
    sql
}

/// Inserts tasks; returns how many were inserted.
pub async fn insert_tasks(
    db: &mut DbConn<'_>,
    rows: &[NewTask],
    conflicts: Conflicts,
) -> DbResult<usize> {
    if rows.is_empty() {
        return Ok(0);
    }
    match db {
        DbConn::Postgres(c) => Ok(work_columns!(rows, title)
            .bind(work_sql("tasks", "title", conflicts, false))
            .execute(*c)
            .await?),
        DbConn::Sqlite(c) => {
            let rows = rows.to_vec();
            Ok(c.spawn_blocking(move |conn| {
                let mut inserted = 0;
                for row in &rows {
                    let insert = diesel::insert_into(tasks::table).values(row);
                    inserted += match conflicts {
                        Conflicts::Skip => diesel::RunQueryDsl::execute(
                            insert
                                .on_conflict((
                                    tasks::mission_line_id,
                                    tasks::service_item_id,
                                    tasks::due_date,
                                    tasks::copy_number,
                                ))
                                .do_nothing(),
                            conn,
                        )?,
                        Conflicts::Fail => diesel::RunQueryDsl::execute(insert, conn)?,
                    };
                }
                Ok(inserted)
            })
            .await?)
        }
    }
}

/// Inserts requests; returns the inserted rows only (with `Conflicts::Skip`, a request another
/// pass created already is not returned, so it is not announced twice).
pub async fn insert_requests(
    db: &mut DbConn<'_>,
    rows: &[NewInformationRequest],
    conflicts: Conflicts,
) -> DbResult<Vec<InformationRequest>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    match db {
        DbConn::Postgres(c) => Ok(work_columns!(rows, text)
            .bind(work_sql("information_requests", "text", conflicts, true))
            .load::<InformationRequest>(*c)
            .await?),
        DbConn::Sqlite(c) => {
            let rows = rows.to_vec();
            Ok(c.spawn_blocking(move |conn| {
                let mut inserted = Vec::with_capacity(rows.len());
                for row in &rows {
                    let insert = diesel::insert_into(information_requests::table).values(row);
                    let created = match conflicts {
                        Conflicts::Skip => diesel::RunQueryDsl::get_result(
                            insert
                                .on_conflict((
                                    information_requests::mission_line_id,
                                    information_requests::service_item_id,
                                    information_requests::due_date,
                                    information_requests::copy_number,
                                ))
                                .do_nothing()
                                .returning(InformationRequest::as_returning()),
                            conn,
                        )
                        .optional()?,
                        Conflicts::Fail => Some(diesel::RunQueryDsl::get_result(
                            insert.returning(InformationRequest::as_returning()),
                            conn,
                        )?),
                    };
                    inserted.extend(created);
                }
                Ok(inserted)
            })
            .await?)
        }
    }
}

/// Inserts deliveries; with `Conflicts::Skip` a dedupe key that exists is skipped. Returns
/// how many were inserted.
pub async fn insert_deliveries(
    db: &mut DbConn<'_>,
    rows: &[NewDelivery],
    conflicts: Conflicts,
) -> DbResult<usize> {
    if rows.is_empty() {
        return Ok(0);
    }
    match db {
        DbConn::Postgres(c) => {
            let mut sql = String::from(
                "INSERT INTO deliveries (firm_id, delivery_uid, dedupe_key, kind, event, \
                 request_id, contact_id, webhook_endpoint_id, target, payload, status, \
                 next_attempt_at, created_at) SELECT * FROM UNNEST($1::int8[], $2::text[], \
                 $3::text[], $4::text[], $5::text[], $6::int8[], $7::int8[], $8::int8[], \
                 $9::text[], $10::text[], $11::text[], $12::timestamp[], $13::timestamp[])",
            );
            if conflicts == Conflicts::Skip {
                sql.push_str(" ON CONFLICT (dedupe_key) DO NOTHING");
            }
            let column = |f: fn(&NewDelivery) -> &str| rows.iter().map(f).collect::<Vec<_>>();
            Ok(diesel::sql_query(sql)
                .into_boxed::<Pg>()
                .bind::<Array<BigInt>, _>(rows.iter().map(|r| r.firm_id).collect::<Vec<_>>())
                .bind::<Array<Text>, _>(column(|r| &r.delivery_uid))
                .bind::<Array<Text>, _>(column(|r| &r.dedupe_key))
                .bind::<Array<Text>, _>(column(|r| r.kind.as_str()))
                .bind::<Array<Text>, _>(column(|r| r.event.as_str()))
                .bind::<Array<Nullable<BigInt>>, _>(
                    rows.iter().map(|r| r.request_id).collect::<Vec<_>>(),
                )
                .bind::<Array<Nullable<BigInt>>, _>(
                    rows.iter().map(|r| r.contact_id).collect::<Vec<_>>(),
                )
                .bind::<Array<Nullable<BigInt>>, _>(
                    rows.iter()
                        .map(|r| r.webhook_endpoint_id)
                        .collect::<Vec<_>>(),
                )
                .bind::<Array<Text>, _>(column(|r| &r.target))
                .bind::<Array<Text>, _>(column(|r| &r.payload))
                .bind::<Array<Text>, _>(column(|r| r.status.as_str()))
                .bind::<Array<Timestamp>, _>(
                    rows.iter().map(|r| r.next_attempt_at).collect::<Vec<_>>(),
                )
                .bind::<Array<Timestamp>, _>(rows.iter().map(|r| r.created_at).collect::<Vec<_>>())
                .execute(*c)
                .await?)
        }
        DbConn::Sqlite(c) => {
            let rows = rows.to_vec();
            Ok(c.spawn_blocking(move |conn| {
                let mut inserted = 0;
                for row in &rows {
                    let insert = diesel::insert_into(deliveries::table).values(row);
                    inserted += match conflicts {
                        Conflicts::Skip => diesel::RunQueryDsl::execute(
                            insert.on_conflict(deliveries::dedupe_key).do_nothing(),
                            conn,
                        )?,
                        Conflicts::Fail => diesel::RunQueryDsl::execute(insert, conn)?,
                    };
                }
                Ok(inserted)
            })
            .await?)
        }
    }
}

/// A journal entry that owns its text, to cross into SQLite's blocking task (`None` written
/// as NULL, so that many entries go in one statement).
#[derive(Insertable)]
#[diesel(table_name = journal_entries, treat_none_as_default_value = false)]
struct OwnedJournalEntry {
    firm_id: i64,
    occurred_at: NaiveDateTime,
    actor_kind: String,
    actor_user_id: Option<i64>,
    actor_contact_id: Option<i64>,
    kind: String,
    object_type: String,
    object_id: i64,
    client_id: Option<i64>,
    mission_id: Option<i64>,
    before_status: Option<String>,
    after_status: Option<String>,
    detail: Option<String>,
}

/// Appends journal entries; returns how many.
pub async fn insert_journal(
    db: &mut DbConn<'_>,
    entries: &[NewJournalEntry<'_>],
) -> DbResult<usize> {
    if entries.is_empty() {
        return Ok(0);
    }
    match db {
        DbConn::Postgres(c) => {
            macro_rules! column {
                ($field:ident) => {
                    entries.iter().map(|e| e.$field).collect::<Vec<_>>()
                };
            }
            Ok(diesel::sql_query(
                "INSERT INTO journal_entries (firm_id, occurred_at, actor_kind, actor_user_id, \
                 actor_contact_id, kind, object_type, object_id, client_id, mission_id, \
                 before_status, after_status, detail) SELECT * FROM UNNEST($1::int8[], \
                 $2::timestamp[], $3::text[], $4::int8[], $5::int8[], $6::text[], $7::text[], \
                 $8::int8[], $9::int8[], $10::int8[], $11::text[], $12::text[], $13::text[])",
            )
            .into_boxed::<Pg>()
            .bind::<Array<BigInt>, _>(column!(firm_id))
            .bind::<Array<Timestamp>, _>(column!(occurred_at))
            .bind::<Array<Text>, _>(column!(actor_kind))
            .bind::<Array<Nullable<BigInt>>, _>(column!(actor_user_id))
            .bind::<Array<Nullable<BigInt>>, _>(column!(actor_contact_id))
            .bind::<Array<Text>, _>(column!(kind))
            .bind::<Array<Text>, _>(column!(object_type))
            .bind::<Array<BigInt>, _>(column!(object_id))
            .bind::<Array<Nullable<BigInt>>, _>(column!(client_id))
            .bind::<Array<Nullable<BigInt>>, _>(column!(mission_id))
            .bind::<Array<Nullable<Text>>, _>(column!(before_status))
            .bind::<Array<Nullable<Text>>, _>(column!(after_status))
            .bind::<Array<Nullable<Text>>, _>(column!(detail))
            .execute(*c)
            .await?)
        }
        DbConn::Sqlite(_) => {
            let owned: Vec<OwnedJournalEntry> = entries
                .iter()
                .map(|entry| OwnedJournalEntry {
                    firm_id: entry.firm_id,
                    occurred_at: entry.occurred_at,
                    actor_kind: entry.actor_kind.to_owned(),
                    actor_user_id: entry.actor_user_id,
                    actor_contact_id: entry.actor_contact_id,
                    kind: entry.kind.to_owned(),
                    object_type: entry.object_type.to_owned(),
                    object_id: entry.object_id,
                    client_id: entry.client_id,
                    mission_id: entry.mission_id,
                    before_status: entry.before_status.map(str::to_owned),
                    after_status: entry.after_status.map(str::to_owned),
                    detail: entry.detail.map(str::to_owned),
                })
                .collect();
            Ok(insert_rows!(db, journal_entries::table, owned))
        }
    }
}
