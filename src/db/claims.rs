//! The delivery worker's queries: claiming due outbox rows with a lease, recording each
//! attempt and its outcome, putting a failed delivery back in the queue, and the candidates of
//! a follow-up reminder pass. Claims are safe with several workers on several instances: on
//! PostgreSQL `FOR UPDATE SKIP LOCKED`, on SQLite one `BEGIN IMMEDIATE` transaction (a single
//! writer at a time). Nothing here sends anything or decides a retry delay: that is
//! `crate::delivery`.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::bulk::ROWS_PER_STATEMENT;
use super::outbox::{Delivery, DeliveryAttempt};
use super::schema::{
    clients, deliveries, delivery_attempts, information_requests, mission_lines, services,
};
use super::work::InformationRequest;
use super::{DbConn, DbError, DbResult};
use crate::domain::{DeliveryStatus, RequestStatus};
use crate::{transaction, with_conn};

/// How a delivery attempt ended, as stored in `delivery_attempts.outcome`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    Delivered,
    TransientFailure,
    PermanentFailure,
}

impl AttemptOutcome {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "DELIVERED",
            Self::TransientFailure => "TRANSIENT_FAILURE",
            Self::PermanentFailure => "PERMANENT_FAILURE",
        }
    }
}

/// One attempt to record. `None` is written as NULL (not `DEFAULT`), which lets SQLite insert
/// many attempts in one statement as PostgreSQL does.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = delivery_attempts, treat_none_as_default_value = false)]
pub struct NewAttempt {
    pub delivery_id: i64,
    pub attempted_at: NaiveDateTime,
    pub outcome: String,
    pub response_code: Option<i32>,
    pub error: Option<String>,
}

/// A delivery's state after an attempt (or a skip): every column the worker owns, written
/// together. `None` writes NULL.
#[derive(Debug, Clone, AsChangeset)]
#[diesel(table_name = deliveries, treat_none_as_null = true)]
pub struct DeliveryState {
    pub status: DeliveryStatus,
    pub attempts: i32,
    pub next_attempt_at: NaiveDateTime,
    pub lease_until: Option<NaiveDateTime>,
    pub leased_by: Option<String>,
    pub last_error: Option<String>,
    pub delivered_at: Option<NaiveDateTime>,
}

/// The ids of due, unleased deliveries, oldest due first (a macro: each backend's arm needs
/// its own query value, and the locking clause exists on PostgreSQL only).
macro_rules! due_ids {
    ($now:expr, $limit:expr) => {
        deliveries::table
            .select(deliveries::id)
            .filter(deliveries::status.eq(DeliveryStatus::Pending))
            .filter(deliveries::next_attempt_at.le($now))
            .filter(
                deliveries::lease_until
                    .is_null()
                    .or(deliveries::lease_until.lt($now)),
            )
            .order((deliveries::next_attempt_at, deliveries::id))
            .limit($limit)
    };
}

/// Claims at most `limit` deliveries due at `now` (PENDING, `next_attempt_at <= now`, not
/// leased or lease expired), leasing them to `worker` until `lease_until`. Each row is claimed
/// by one worker only, however many run at once; a crashed worker's rows come back when
/// their lease expires. Returned in due order.
pub async fn claim_due(
    db: &mut DbConn<'_>,
    now: NaiveDateTime,
    lease_until: NaiveDateTime,
    worker: &str,
    limit: i64,
) -> DbResult<Vec<Delivery>> {
    let worker = worker.to_string();
    let mut claimed = transaction!(db, |tx| {
        relax_commit(&mut tx).await?;
        let ids: Vec<i64> = match &mut tx {
            DbConn::Postgres(c) => {
                due_ids!(now, limit)
                    .for_update()
                    .skip_locked()
                    .load(*c)
                    .await?
            }
            // SQLite: the transaction holds the write lock from its first statement
            // (BEGIN IMMEDIATE), so no other claim runs between this read and the update.
            DbConn::Sqlite(c) => due_ids!(now, limit).load(*c).await?,
        };
        if ids.is_empty() {
            return Ok::<_, DbError>(Vec::new());
        }
        let rows = with_conn!(tx, |c| diesel::update(
            deliveries::table.filter(deliveries::id.eq_any(&ids))
        )
        .set((
            deliveries::lease_until.eq(lease_until),
            deliveries::leased_by.eq(&worker),
        ))
        .returning(Delivery::as_returning())
        .get_results(c)
        .await)?;
        Ok(rows)
    })?;
    claimed.sort_by_key(|row| (row.next_attempt_at, row.id));
    Ok(claimed)
}

/// Lets the current transaction commit without waiting for its write-ahead log to reach the
/// disk (PostgreSQL's `SET LOCAL synchronous_commit = off`; SQLite in WAL mode with
/// `synchronous = NORMAL` does not wait already): about 4 ms per commit on a plain disk,
/// which claims and records paid once per delivery. Only for writes whose loss in a
/// database crash is safe: a lost claim or record leaves the row pending (its lease expires)
/// and it is sent again with the same ids, as after a worker's crash. Never for what must
/// exist before something leaves (an email's links).
pub async fn relax_commit(tx: &mut DbConn<'_>) -> DbResult<()> {
    if let DbConn::Postgres(c) = tx {
        diesel::sql_query("SET LOCAL synchronous_commit = off")
            .execute(*c)
            .await?;
    }
    Ok(())
}

/// Records an attempt (when there was one) and the delivery's new state. Call it inside the
/// caller's `transaction!`, with whatever else the outcome changes. The state is written only
/// while the row is still under the lease this worker claimed it with (`claimed`): a worker
/// that outlived its lease must not overwrite what the worker that took the row over
/// recorded. The attempt itself, which did happen, is always logged. Returns whether the
/// state was written.
pub async fn record_attempt(
    tx: &mut DbConn<'_>,
    claimed: &Delivery,
    attempt: Option<&NewAttempt>,
    state: &DeliveryState,
) -> DbResult<bool> {
    let written = record_attempts(tx, &[(claimed, attempt, state)]).await?;
    Ok(written.into_iter().next().unwrap_or(false))
}

/// [`record_attempt`] for a group of deliveries, in a constant number of statements (one
/// multi-row insert of the attempts, one `UPDATE … FROM` of the states, per
/// [`ROWS_PER_STATEMENT`] rows), with the same lease guard on every row: a row whose lease
/// was lost (or that was never leased) keeps the state the other worker wrote, while its
/// attempt is logged. Returns, per record in order, whether its state was written.
pub async fn record_attempts(
    tx: &mut DbConn<'_>,
    records: &[(&Delivery, Option<&NewAttempt>, &DeliveryState)],
) -> DbResult<Vec<bool>> {
    // Rows are told apart by id below: a group holds each delivery once (it comes from
    // distinct claimed rows).
    debug_assert_eq!(
        records
            .iter()
            .map(|(claimed, ..)| claimed.id)
            .collect::<std::collections::HashSet<_>>()
            .len(),
        records.len(),
        "a group records each delivery once"
    );
    let attempts: Vec<NewAttempt> = records
        .iter()
        .filter_map(|(_, attempt, _)| attempt.cloned())
        .collect();
    super::bulk::insert_rows!(tx, delivery_attempts::table, attempts);
    let leased: Vec<LeasedState<'_>> = records
        .iter()
        .filter_map(|(claimed, _, state)| {
            Some(LeasedState {
                id: claimed.id,
                leased_by: claimed.leased_by.as_deref()?,
                lease_until: claimed.lease_until?,
                state,
            })
        })
        .collect();
    let mut written = std::collections::HashSet::with_capacity(leased.len());
    for chunk in leased.chunks(ROWS_PER_STATEMENT) {
        written.extend(write_states(tx, chunk).await?);
    }
    Ok(records
        .iter()
        .map(|(claimed, _, _)| written.contains(&claimed.id))
        .collect())
}

/// A state to write on a row still leased by `leased_by` until `lease_until`.
struct LeasedState<'a> {
    id: i64,
    leased_by: &'a str,
    lease_until: NaiveDateTime,
    state: &'a DeliveryState,
}

/// The id of a row an update wrote.
#[derive(QueryableByName)]
struct WrittenId {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    id: i64,
}

/// The columns of [`write_states`]' values, with their PostgreSQL types.
const STATE_VALUES: [(&str, &str); 10] = [
    ("id", "int8"),
    ("old_leased_by", "text"),
    ("old_lease_until", "timestamp"),
    ("status", "text"),
    ("attempts", "int4"),
    ("next_attempt_at", "timestamp"),
    ("lease_until", "timestamp"),
    ("leased_by", "text"),
    ("last_error", "text"),
    ("delivered_at", "timestamp"),
];

/// The statement writing `rows` states: one `UPDATE … FROM` a list of values (both backends
/// have it: SQLite since 3.33), each row guarded by its own lease, returning the ids written.
fn write_states_sql(rows: usize, postgres: bool) -> String {
    let names: Vec<&str> = STATE_VALUES.iter().map(|(name, _)| *name).collect();
    let mut sql = format!("WITH v ({}) AS (VALUES ", names.join(", "));
    let mut parameter = 0;
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for (column, (_, pg_type)) in STATE_VALUES.iter().enumerate() {
            if column > 0 {
                sql.push_str(", ");
            }
            parameter += 1;
            if postgres {
                sql.push_str(&format!("CAST(${parameter} AS {pg_type})"));
            } else {
                sql.push('?');
            }
        }
        sql.push(')');
    }
    sql.push_str(
        ") UPDATE deliveries SET status = v.status, attempts = v.attempts, \
         next_attempt_at = v.next_attempt_at, lease_until = v.lease_until, \
         leased_by = v.leased_by, last_error = v.last_error, delivered_at = v.delivered_at \
         FROM v WHERE deliveries.id = v.id AND deliveries.leased_by = v.old_leased_by \
         AND deliveries.lease_until = v.old_lease_until RETURNING deliveries.id",
    );
    sql
}

/// Binds the values of [`write_states_sql`], row by row (a macro: each backend has its own
/// boxed query type).
macro_rules! bind_states {
    ($query:expr, $rows:expr) => {{
        use diesel::sql_types::{BigInt, Integer, Nullable, Text, Timestamp};
        let mut query = $query;
        for row in $rows {
            query = query
                .bind::<BigInt, _>(row.id)
                .bind::<Text, _>(row.leased_by)
                .bind::<Timestamp, _>(row.lease_until)
                .bind::<Text, _>(row.state.status.as_str())
                .bind::<Integer, _>(row.state.attempts)
                .bind::<Timestamp, _>(row.state.next_attempt_at)
                .bind::<Nullable<Timestamp>, _>(row.state.lease_until)
                .bind::<Nullable<Text>, _>(row.state.leased_by.as_deref())
                .bind::<Nullable<Text>, _>(row.state.last_error.as_deref())
                .bind::<Nullable<Timestamp>, _>(row.state.delivered_at);
        }
        query
    }};
}

/// Writes each row's state if its lease is still the one given; returns the ids written.
async fn write_states(tx: &mut DbConn<'_>, rows: &[LeasedState<'_>]) -> DbResult<Vec<i64>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let written: Vec<WrittenId> = match tx {
        DbConn::Postgres(c) => {
            bind_states!(
                diesel::sql_query(write_states_sql(rows.len(), true)).into_boxed(),
                rows
            )
            .load(*c)
            .await?
        }
        DbConn::Sqlite(c) => {
            bind_states!(
                diesel::sql_query(write_states_sql(rows.len(), false)).into_boxed(),
                rows
            )
            .load(*c)
            .await?
        }
    };
    Ok(written.into_iter().map(|row| row.id).collect())
}

/// One delivery of a firm.
pub async fn find_delivery(db: &mut DbConn<'_>, firm_id: i64, id: i64) -> DbResult<Delivery> {
    Ok(with_conn!(db, |c| deliveries::table
        .filter(deliveries::firm_id.eq(firm_id))
        .filter(deliveries::id.eq(id))
        .select(Delivery::as_select())
        .first(c)
        .await)?)
}

/// Puts a FAILED, DEAD or SKIPPED delivery back in the queue for `next_attempt_at`, with a fresh
/// attempt budget (its attempt log keeps the history). None when the delivery is in another
/// status.
pub async fn requeue_failed(
    db: &mut DbConn<'_>,
    firm_id: i64,
    id: i64,
    next_attempt_at: NaiveDateTime,
) -> DbResult<Option<Delivery>> {
    let failed = [
        DeliveryStatus::Failed,
        DeliveryStatus::Dead,
        DeliveryStatus::Skipped,
    ];
    Ok(with_conn!(db, |c| diesel::update(
        deliveries::table
            .filter(deliveries::firm_id.eq(firm_id))
            .filter(deliveries::id.eq(id))
            .filter(deliveries::status.eq_any(failed))
    )
    .set((
        deliveries::status.eq(DeliveryStatus::Pending),
        deliveries::attempts.eq(0),
        deliveries::next_attempt_at.eq(next_attempt_at),
        deliveries::lease_until.eq(None::<NaiveDateTime>),
        deliveries::leased_by.eq(None::<String>),
    ))
    .returning(Delivery::as_returning())
    .get_result(c)
    .await
    .optional())?)
}

/// When the earliest unleased pending delivery falls due, if any (the idle worker sleeps
/// until then at most).
pub async fn next_due_at(db: &mut DbConn<'_>) -> DbResult<Option<NaiveDateTime>> {
    Ok(with_conn!(db, |c| deliveries::table
        .filter(deliveries::status.eq(DeliveryStatus::Pending))
        .filter(deliveries::lease_until.is_null())
        .select(diesel::dsl::min(deliveries::next_attempt_at))
        .first::<Option<NaiveDateTime>>(c)
        .await)?)
}

/// Every attempt of a delivery, oldest first (tests and the bench read them).
pub async fn attempts_of(db: &mut DbConn<'_>, delivery_id: i64) -> DbResult<Vec<DeliveryAttempt>> {
    super::outbox::list_attempts(db, delivery_id).await
}

/// An open request with the reminder policy of its service (null: the firm default).
#[derive(Debug, Clone)]
pub struct ReminderCandidate {
    pub request: InformationRequest,
    pub days_before: Option<i32>,
    pub on_due_date: Option<bool>,
    pub every_days: Option<i32>,
    pub max_count: Option<i32>,
}

type PolicyColumns = (Option<i32>, Option<bool>, Option<i32>, Option<i32>);

/// OPEN requests of a firm created on or before `today`, of clients not archived, after the
/// `after_id` cursor, at most `limit`, in id order, each with its service's reminder policy.
pub async fn reminder_candidates(
    db: &mut DbConn<'_>,
    firm_id: i64,
    today: NaiveDate,
    after_id: i64,
    limit: i64,
) -> DbResult<Vec<ReminderCandidate>> {
    let rows: Vec<(InformationRequest, PolicyColumns)> = with_conn!(db, |c| {
        information_requests::table
            .inner_join(mission_lines::table.inner_join(services::table))
            .inner_join(clients::table)
            .filter(information_requests::firm_id.eq(firm_id))
            .filter(information_requests::status.eq(RequestStatus::Open))
            .filter(information_requests::created_on.le(today))
            .filter(information_requests::id.gt(after_id))
            .filter(clients::archived_at.is_null())
            .order(information_requests::id)
            .limit(limit)
            .select((
                InformationRequest::as_select(),
                (
                    services::reminder_days_before,
                    services::reminder_on_due_date,
                    services::reminder_every_days,
                    services::reminder_max_count,
                ),
            ))
            .load(c)
            .await
    })?;
    Ok(rows
        .into_iter()
        .map(
            |(request, (days_before, on_due_date, every_days, max_count))| ReminderCandidate {
                request,
                days_before,
                on_due_date,
                every_days,
                max_count,
            },
        )
        .collect())
}

/// Which of `keys` already name a delivery (a reminder pass skips those).
pub async fn existing_dedupe_keys(db: &mut DbConn<'_>, keys: &[String]) -> DbResult<Vec<String>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let keys = keys.to_vec();
    Ok(with_conn!(db, |c| deliveries::table
        .filter(deliveries::dedupe_key.eq_any(&keys))
        .select(deliveries::dedupe_key)
        .load(c)
        .await)?)
}

// ---- Remind now (the firm's day): a request's policy and the reminders it already had ----

/// The reminder policy columns of a request's service (null: the firm default).
pub async fn reminder_policy_of_request(
    db: &mut DbConn<'_>,
    firm_id: i64,
    request_id: i64,
) -> DbResult<(Option<i32>, Option<bool>, Option<i32>, Option<i32>)> {
    Ok(with_conn!(db, |c| information_requests::table
        .inner_join(mission_lines::table.inner_join(services::table))
        .filter(information_requests::firm_id.eq(firm_id))
        .filter(information_requests::id.eq(request_id))
        .select((
            services::reminder_days_before,
            services::reminder_on_due_date,
            services::reminder_every_days,
            services::reminder_max_count,
        ))
        .first(c)
        .await)?)
}

/// The dedupe keys of the reminder deliveries (scheduled and sent at once) of these requests
/// of the firm, as (request id, key), in one statement.
pub async fn reminder_keys_of_requests(
    db: &mut DbConn<'_>,
    firm_id: i64,
    request_ids: &[i64],
) -> DbResult<Vec<(i64, String)>> {
    let rows: Vec<(Option<i64>, String)> = with_conn!(db, |c| deliveries::table
        .filter(deliveries::firm_id.eq(firm_id))
        .filter(deliveries::request_id.eq_any(request_ids))
        .filter(deliveries::event.eq(crate::domain::DeliveryEvent::RequestReminder))
        .select((deliveries::request_id, deliveries::dedupe_key))
        .load(c)
        .await)?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, key)| id.map(|id| (id, key)))
        .collect())
}

/// The dedupe keys of every reminder delivery of a request (scheduled or sent at once): one
/// reminder is one key suffix, shared by its emails and webhooks.
pub async fn reminder_keys_of_request(
    db: &mut DbConn<'_>,
    firm_id: i64,
    request_id: i64,
) -> DbResult<Vec<String>> {
    Ok(with_conn!(db, |c| deliveries::table
        .filter(deliveries::firm_id.eq(firm_id))
        .filter(deliveries::request_id.eq(request_id))
        .filter(deliveries::event.eq(crate::domain::DeliveryEvent::RequestReminder))
        .select(deliveries::dedupe_key)
        .load(c)
        .await)?)
}
