//! Generated work: internal tasks, information requests and the clients' answers.
//! Every read is scoped by firm, and the client view's reads also by client.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde::{Deserialize, Serialize};

use super::catalog::Service;
use super::clients::Client;
use super::firms::{Firm, User};
use super::missions::{Mission, MissionLine};
use super::page::{
    FirstOfEach, Keyset, ParentPages, Place, by_parent, parent_totals, partition_position,
    read_direction,
};
use super::schema::{
    clients, firms, information_requests, mission_lines, missions, request_answers, service_items,
    services, tasks, users,
};
use super::{DbConn, DbResult};
use crate::domain::{RequestStatus, TaskStatus};
use crate::{seek_two, seek_two_bounds_dir, seek_two_dir, with_conn};

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = tasks)]
pub struct Task {
    pub id: i64,
    pub firm_id: i64,
    pub client_id: i64,
    pub mission_id: i64,
    pub mission_line_id: i64,
    pub service_item_id: i64,
    pub copy_number: i32,
    pub due_date: NaiveDate,
    pub created_on: NaiveDate,
    pub title: String,
    pub status: TaskStatus,
    pub assignee_id: Option<i64>,
    pub completed_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = tasks)]
pub struct NewTask {
    pub firm_id: i64,
    pub client_id: i64,
    pub mission_id: i64,
    pub mission_line_id: i64,
    pub service_item_id: i64,
    pub copy_number: i32,
    pub due_date: NaiveDate,
    pub created_on: NaiveDate,
    pub title: String,
    pub status: TaskStatus,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, Identifiable)]
#[diesel(table_name = information_requests)]
pub struct InformationRequest {
    pub id: i64,
    pub firm_id: i64,
    pub client_id: i64,
    pub mission_id: i64,
    pub mission_line_id: i64,
    pub service_item_id: i64,
    pub copy_number: i32,
    pub due_date: NaiveDate,
    pub created_on: NaiveDate,
    pub text: String,
    pub status: RequestStatus,
    pub answered_at: Option<NaiveDateTime>,
    pub closed_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = information_requests)]
pub struct NewInformationRequest {
    pub firm_id: i64,
    pub client_id: i64,
    pub mission_id: i64,
    pub mission_line_id: i64,
    pub service_item_id: i64,
    pub copy_number: i32,
    pub due_date: NaiveDate,
    pub created_on: NaiveDate,
    pub text: String,
    pub status: RequestStatus,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, Identifiable)]
#[diesel(table_name = request_answers)]
pub struct RequestAnswer {
    pub id: i64,
    pub firm_id: i64,
    pub request_id: i64,
    pub contact_id: Option<i64>,
    pub message: Option<String>,
    pub nothing_to_report: bool,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = request_answers)]
pub struct NewRequestAnswer<'a> {
    pub firm_id: i64,
    pub request_id: i64,
    pub contact_id: Option<i64>,
    pub message: Option<&'a str>,
    pub nothing_to_report: bool,
    pub created_at: NaiveDateTime,
}

/// Filters of the firm's work lists; a list is ordered by due date then id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct WorkFilter {
    pub client_id: Option<i64>,
    pub mission_id: Option<i64>,
    pub due_from: Option<NaiveDate>,
    pub due_to: Option<NaiveDate>,
    pub assignee_id: Option<i64>,
    /// Only those due strictly before this date.
    pub due_before: Option<NaiveDate>,
    /// Only those due strictly after this date.
    pub due_after: Option<NaiveDate>,
    /// Only those still waiting (a task OPEN, a request OPEN) and due before this date (the
    /// firm's today): the overdue ones.
    pub overdue_on: Option<NaiveDate>,
    /// Only those created on this date.
    pub created_on: Option<NaiveDate>,
    /// Only those generated from this service.
    pub service_id: Option<i64>,
    /// Only those whose title (task) or text (request), or client's name, contains this
    /// text, ignoring ASCII case; `%`, `_` and `\` match themselves.
    pub search: Option<String>,
}

impl WorkFilter {
    /// The same filter on `client_id`'s list (None: every client's).
    fn for_client(&self, client_id: impl Into<Option<i64>>) -> Self {
        Self {
            client_id: client_id.into(),
            ..self.clone()
        }
    }
}

diesel::define_sql_function! {
    /// SQL `lower(text)`, for searches that ignore case on both backends.
    fn lower(text: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

/// A LIKE pattern that finds `text` anywhere, lower-cased, its wildcards escaped with `\`.
fn contains_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for ch in text.to_lowercase().chars() {
        if matches!(ch, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(ch);
    }
    pattern.push('%');
    pattern
}

/// The keyset of the work lists: (due date, id).
pub type DuePage = Keyset<(NaiveDate, i64)>;

/// The key a firm's work list is sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum WorkSort {
    /// The due date (today's order).
    #[default]
    DueDate,
    /// The client's name (byte order of the stored name).
    Client,
    /// The status's stored name (for example `ANSWERED` < `CANCELLED` < `CLOSED` < `OPEN`).
    Status,
}

/// The order of a firm's work list: a key, then the id, both in the same direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct WorkOrder {
    pub field: WorkSort,
    pub descending: bool,
}

/// A row's sort-key value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SortValue {
    Due(NaiveDate),
    Text(String),
}

impl SortValue {
    fn due(self) -> Option<NaiveDate> {
        match self {
            SortValue::Due(day) => Some(day),
            SortValue::Text(_) => None,
        }
    }

    fn text(self) -> Option<String> {
        match self {
            SortValue::Text(text) => Some(text),
            SortValue::Due(_) => None,
        }
    }
}

/// A position in a firm's work list, as its cursor holds it: the order it was made under
/// (a cursor of another order means nothing here), the row's sort key and its id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WorkKey {
    #[serde(rename = "o")]
    pub order: WorkOrder,
    #[serde(rename = "k")]
    pub key: SortValue,
    #[serde(rename = "i")]
    pub id: i64,
}

impl WorkKey {
    /// A row's position under `order` from its due date, stored status, id and (read only
    /// when sorting by client) its client's name.
    fn new(
        order: WorkOrder,
        due: NaiveDate,
        status: &str,
        id: i64,
        client_name: Option<String>,
    ) -> Self {
        let key = match order.field {
            WorkSort::DueDate => SortValue::Due(due),
            WorkSort::Client => SortValue::Text(client_name.unwrap_or_default()),
            WorkSort::Status => SortValue::Text(status.to_owned()),
        };
        Self { order, key, id }
    }
}

/// The keyset of the firm's work lists under any order.
pub type WorkPage = Keyset<WorkKey>;

impl WorkPage {
    /// The typed keyset of one sort key; a cursor of another key is dropped (the caller
    /// refuses those first).
    fn typed<T>(&self, field: WorkSort, value: fn(SortValue) -> Option<T>) -> Keyset<(T, i64)> {
        let pick = |key: &Option<WorkKey>| {
            key.as_ref()
                .filter(|key| key.order.field == field)
                .and_then(|key| value(key.key.clone()).map(|typed| (typed, key.id)))
        };
        Keyset {
            after: pick(&self.after),
            before: pick(&self.before),
            backward: self.backward,
            limit: self.limit,
        }
    }
}

/// The text search of a work list: its own text or its client's name contains the pattern.
/// `subquery`: the clients are read in a subquery; `joined`: the query already joins them.
macro_rules! client_search {
    (subquery, $query:expr, $firm_id:expr, $pattern:expr, $text:expr, $client_id:expr) => {{
        let pattern = $pattern;
        $query.filter(
            lower($text)
                .like(pattern.clone())
                .escape('\\')
                .or($client_id.eq_any(
                    clients::table
                        .filter(clients::firm_id.eq($firm_id))
                        .filter(lower(clients::name).like(pattern).escape('\\'))
                        .select(clients::id),
                )),
        )
    }};
    (joined, $query:expr, $firm_id:expr, $pattern:expr, $text:expr, $client_id:expr) => {{
        let pattern = $pattern;
        $query.filter(
            lower($text)
                .like(pattern.clone())
                .escape('\\')
                .or(lower(clients::name).like(pattern).escape('\\')),
        )
    }};
}

/// The firm's tasks (`$t` = `tasks`) or requests (`information_requests`) matching `status`
/// and `filter`, as a boxed query (for a page or a count). `$text` is the column the search
/// reads (a task's title, a request's text); `$open` the status "overdue" keeps. `subquery`:
/// the search reads the clients in a subquery; `joined`: `$source` already joins them.
/// A task's `assignee_id` filter is applied by [`filtered_tasks`] (requests have none).
macro_rules! filtered_work {
    ($t:ident, $text:ident, $open:expr, $firm_id:expr, $status:expr, $filter:expr) => {
        filtered_work!(
            $t,
            $text,
            $open,
            $firm_id,
            $status,
            $filter,
            $t::table,
            subquery
        )
    };
    (
        $t:ident, $text:ident, $open:expr, $firm_id:expr, $status:expr, $filter:expr,
        $source:expr, $joined:ident
    ) => {{
        let filter: &WorkFilter = $filter;
        let mut query = $source.filter($t::firm_id.eq($firm_id)).into_boxed();
        if let Some(status) = $status {
            query = query.filter($t::status.eq(status));
        }
        if let Some(client_id) = filter.client_id {
            query = query.filter($t::client_id.eq(client_id));
        }
        if let Some(mission_id) = filter.mission_id {
            query = query.filter($t::mission_id.eq(mission_id));
        }
        if let Some(from) = filter.due_from {
            query = query.filter($t::due_date.ge(from));
        }
        if let Some(to) = filter.due_to {
            query = query.filter($t::due_date.le(to));
        }
        if let Some(before) = filter.due_before {
            query = query.filter($t::due_date.lt(before));
        }
        if let Some(after) = filter.due_after {
            query = query.filter($t::due_date.gt(after));
        }
        if let Some(today) = filter.overdue_on {
            query = query
                .filter($t::status.eq($open))
                .filter($t::due_date.lt(today));
        }
        if let Some(day) = filter.created_on {
            query = query.filter($t::created_on.eq(day));
        }
        if let Some(service_id) = filter.service_id {
            query = query.filter(
                $t::service_item_id.eq_any(
                    service_items::table
                        .filter(service_items::firm_id.eq($firm_id))
                        .filter(service_items::service_id.eq(service_id))
                        .select(service_items::id),
                ),
            );
        }
        if let Some(search) = &filter.search {
            let pattern = contains_pattern(search);
            query = client_search!($joined, query, $firm_id, pattern, $t::$text, $t::client_id);
        }
        query
    }};
}

/// The firm's tasks matching `status` and `filter` (its assignee too), as a boxed query.
macro_rules! filtered_tasks {
    ($firm_id:expr, $status:expr, $filter:expr $(, $source:expr, $joined:ident)?) => {{
        let filter: &WorkFilter = $filter;
        let mut query = filtered_work!(
            tasks, title, TaskStatus::Open, $firm_id, $status, filter $(, $source, $joined)?
        );
        if let Some(assignee_id) = filter.assignee_id {
            query = query.filter(tasks::assignee_id.eq(assignee_id));
        }
        query
    }};
}

/// The firm's requests matching `status` and `filter`, as a boxed query.
macro_rules! filtered_requests {
    ($firm_id:expr, $status:expr, $filter:expr $(, $source:expr, $joined:ident)?) => {
        filtered_work!(
            information_requests, text, RequestStatus::Open, $firm_id, $status, $filter
            $(, $source, $joined)?
        )
    };
}

/// A task or request's parents, read with it in the same statement by the pages and lookups
/// that show them: its client, mission, mission line and service, its firm and a task's
/// assignee (all of its firm).
#[derive(Debug, Clone)]
pub struct Parents {
    pub client: Client,
    pub mission: Mission,
    pub line: MissionLine,
    pub service: Service,
    /// The firm itself (its language names the periods).
    pub firm: Firm,
    /// A task's assignee; always `None` for a request.
    pub assignee: Option<User>,
}

/// One row of a page of work: the row, its position in the list, and its parents when the
/// page was asked to join them.
pub type WorkRow<T> = (T, WorkKey, Option<Parents>);

/// `$t` joined with the parents of its rows (a task's assignee too), each scoped by firm so a
/// join never reads another tenant's row.
macro_rules! with_parents {
    (tasks, $firm_id:expr) => {
        with_parents!(@rows tasks, $firm_id).left_join(
            users::table.on(tasks::assignee_id
                .eq(users::id.nullable())
                .and(users::firm_id.eq($firm_id))),
        )
    };
    (information_requests, $firm_id:expr) => {
        with_parents!(@rows information_requests, $firm_id)
    };
    (@rows $t:ident, $firm_id:expr) => {
        $t::table
            .inner_join(clients::table)
            .inner_join(missions::table)
            .inner_join(mission_lines::table.inner_join(services::table))
            .inner_join(firms::table.on(firms::id.eq($t::firm_id)))
    };
    (filter $query:expr, $firm_id:expr) => {
        $query
            .filter(clients::firm_id.eq($firm_id))
            .filter(missions::firm_id.eq($firm_id))
            .filter(mission_lines::firm_id.eq($firm_id))
            .filter(services::firm_id.eq($firm_id))
            .filter(firms::id.eq($firm_id))
    };
}

/// The selection of a row of `$t` with its parents (a boxed query takes no nullable
/// `as_select`: the assignee is its columns, in [`User`]'s order), and `$extra` after them.
macro_rules! parent_columns {
    (tasks $(, $extra:expr)?) => {
        (
            Task::as_select(),
            Client::as_select(),
            Mission::as_select(),
            MissionLine::as_select(),
            Service::as_select(),
            Firm::as_select(),
            users::all_columns.nullable(),
            $($extra)?
        )
    };
    (information_requests $(, $extra:expr)?) => {
        (
            InformationRequest::as_select(),
            Client::as_select(),
            Mission::as_select(),
            MissionLine::as_select(),
            Service::as_select(),
            Firm::as_select(),
            $($extra)?
        )
    };
}

/// The Rust type [`parent_columns!`] selects for `$t`, and `$extra` after it.
macro_rules! parent_row {
    (tasks $(, $extra:ty)?) => {
        (Task, Client, Mission, MissionLine, Service, Firm, Option<User>, $($extra)?)
    };
    (information_requests $(, $extra:ty)?) => {
        (InformationRequest, Client, Mission, MissionLine, Service, Firm, $($extra)?)
    };
}

/// A page reader's selection: `[parents $t]` (a row of `$t` with its parents) or a list of
/// selected expressions (one: the expression itself, not a tuple), with `$extra` after them.
macro_rules! selection {
    ([parents $t:ident]) => { parent_columns!($t) };
    ([parents $t:ident], $extra:expr) => { parent_columns!($t, $extra) };
    ([$sel:expr]) => { $sel };
    ([$($sel:expr),+]) => { ($($sel),+) };
    ([$($sel:expr),+], $extra:expr) => { ($($sel,)+ $extra) };
}

/// The Rust type of a [`selection!`].
macro_rules! selected_row {
    ([parents $t:ident]) => { parent_row!($t) };
    ([parents $t:ident], $extra:ty) => { parent_row!($t, $extra) };
    ([$ty:ty]) => { $ty };
    ([$($ty:ty),+]) => { ($($ty),+) };
    ([$($ty:ty),+], $extra:ty) => { ($($ty,)+ $extra) };
}

/// A work row read with its parents, split into the row and its [`Parents`].
trait WithParents {
    type Row;
    fn split(self) -> (Self::Row, Parents);
}

/// A row with its parents and a task's assignee (`parent_row!(tasks)`).
impl<R> WithParents for (R, Client, Mission, MissionLine, Service, Firm, Option<User>) {
    type Row = R;
    fn split(self) -> (R, Parents) {
        let (row, client, mission, line, service, firm, assignee) = self;
        let parents = Parents {
            client,
            mission,
            line,
            service,
            firm,
            assignee,
        };
        (row, parents)
    }
}

/// A request with its parents: no assignee.
impl WithParents for parent_row!(information_requests) {
    type Row = InformationRequest;
    fn split(self) -> (InformationRequest, Parents) {
        let (row, client, mission, line, service, firm) = self;
        (row, client, mission, line, service, firm, None).split()
    }
}

/// Reads one page of `$query` (a boxed query of `$t`) sorted by `$first` (whose SQL text is
/// `$first_sql`) then id: the [`selection!`] `$select`, loaded as [`selected_row!`] `$row`. The
/// seek of one list; `$scope` is `()`.
macro_rules! seek_page {
    (
        $c:expr, $query:expr, $t:ident, $page:expr, $first:expr, $first_sql:expr,
        $descending:expr, $select:tt, $row:tt, $scope:expr
    ) => {{
        let () = $scope;
        seek_two_dir!($query, $page, $first, $t::id, $descending)
            .select(selection!($select))
            .load::<selected_row!($row)>($c)
            .await
    }};
}

/// Reads a page of `$query` for each client of `$scope` (their ids, and where to put how many
/// rows each client's list holds between the page's bounds) in one statement, as
/// [`seek_page`] reads one: every client's rows numbered in the list's order (a window
/// function), cut at the page's limit, returned by client then in the order of the page.
macro_rules! pages_per_client {
    (
        $c:expr, $query:expr, $t:ident, $page:expr, $first:expr, $first_sql:expr,
        $descending:expr, $select:tt, $row:tt, $scope:expr
    ) => {{
        let page = $page;
        let descending: bool = $descending;
        let (client_ids, totals): (&[i64], &mut Vec<(i64, i64)>) = $scope;
        let query = seek_two_bounds_dir!($query, page, $first, $t::id, descending)
            .filter($t::client_id.eq_any(client_ids));
        let position = partition_position(
            concat!(stringify!($t), ".client_id"),
            $first_sql,
            concat!(stringify!($t), ".id"),
            read_direction(page, descending),
        );
        FirstOfEach::new(query.select(selection!($select, position)), page.limit)
            .load::<selected_row!($row, Place)>($c)
            .await
            .map(|rows| {
                let (rows, counted) = by_parent(rows);
                *totals = counted;
                rows
            })
    }};
}

/// One page of tasks or requests with their parents ([`Parents`]) joined into its statement,
/// sorted by `$column` (the sort `$sort`, whose cursor value `$reader` reads), read by
/// `$read` ([`seek_page`] or [`pages_per_client`]).
macro_rules! joined_page {
    (
        $db:expr, $t:ident, $filtered:ident, $firm_id:expr, $status:expr,
        $filter:expr, $page:expr, $descending:expr, $sort:expr, $reader:expr, $column:expr,
        $column_sql:expr, $read:ident, $scope:expr
    ) => {{
        let page = $page.typed($sort, $reader);
        with_conn!($db, |c| {
            let query = $filtered!(
                $firm_id,
                $status,
                $filter,
                with_parents!($t, $firm_id),
                joined
            );
            let query = with_parents!(filter query, $firm_id);
            $read!(
                c,
                query,
                $t,
                &page,
                $column,
                $column_sql,
                $descending,
                [parents $t],
                [parents $t],
                $scope
            )
        })?
    }};
}

/// One page of `$filtered` rows (`$row` of table `$t`) in `$order`, parents joined when
/// `$parents`: each row with its position and its parents. `$read` reads the rows: one list
/// ([`seek_page`], `$scope` = `()`) or a page per client ([`pages_per_client`], `$scope` =
/// the clients' ids).
macro_rules! work_page {
    (
        $db:expr, $t:ident, $row:ident, $filtered:ident,
        $firm_id:expr, $status:expr, $filter:expr, $order:expr, $page:expr, $parents:expr,
        $read:ident, $scope:expr
    ) => {{
        let (firm_id, filter, order, page): (i64, &WorkFilter, WorkOrder, &WorkPage) =
            ($firm_id, $filter, $order, $page);
        let status = $status;
        let descending = order.descending;
        let key = |row: &$row, name: Option<String>| {
            WorkKey::new(order, row.due_date, row.status.as_str(), row.id, name)
        };
        let plain = |rows: Vec<$row>| -> Vec<WorkRow<$row>> {
            rows.into_iter()
                .map(|row| (key(&row, None), row))
                .map(|(key, row)| (row, key, None))
                .collect()
        };
        let parented = |rows: Vec<parent_row!($t)>| -> Vec<WorkRow<$row>> {
            rows.into_iter()
                .map(|columns| {
                    let (row, parents) = columns.split();
                    let name =
                        (order.field == WorkSort::Client).then(|| parents.client.name.clone());
                    let key = key(&row, name);
                    (row, key, Some(parents))
                })
                .collect()
        };
        let rows: Vec<WorkRow<$row>> = match (order.field, $parents) {
            (WorkSort::DueDate, false) => {
                let page = page.typed(WorkSort::DueDate, SortValue::due);
                plain(with_conn!($db, |c| {
                    let query = $filtered!(firm_id, status, filter);
                    $read!(
                        c,
                        query,
                        $t,
                        &page,
                        $t::due_date,
                        concat!(stringify!($t), ".due_date"),
                        descending,
                        [$row::as_select()],
                        [$row],
                        $scope
                    )
                })?)
            }
            (WorkSort::Status, false) => {
                let page = page.typed(WorkSort::Status, SortValue::text);
                plain(with_conn!($db, |c| {
                    let query = $filtered!(firm_id, status, filter);
                    $read!(
                        c,
                        query,
                        $t,
                        &page,
                        $t::status,
                        concat!(stringify!($t), ".status"),
                        descending,
                        [$row::as_select()],
                        [$row],
                        $scope
                    )
                })?)
            }
            (WorkSort::Client, false) => {
                let page = page.typed(WorkSort::Client, SortValue::text);
                with_conn!($db, |c| {
                    let query = $filtered!(
                        firm_id,
                        status,
                        filter,
                        $t::table.inner_join(clients::table),
                        joined
                    )
                    // The client's firm too: the join then walks the firm's clients by name
                    // (clients_firm_name_id_idx) instead of every firm's.
                    .filter(clients::firm_id.eq(firm_id));
                    $read!(
                        c,
                        query,
                        $t,
                        &page,
                        clients::name,
                        "clients.name",
                        descending,
                        [$row::as_select(), clients::name],
                        [$row, String],
                        $scope
                    )
                })?
                .into_iter()
                .map(|(row, name)| {
                    let key = key(&row, Some(name));
                    (row, key, None)
                })
                .collect()
            }
            (WorkSort::DueDate, true) => parented(joined_page!(
                $db,
                $t,
                $filtered,
                firm_id,
                status,
                filter,
                page,
                descending,
                WorkSort::DueDate,
                SortValue::due,
                $t::due_date,
                concat!(stringify!($t), ".due_date"),
                $read,
                $scope
            )),
            (WorkSort::Status, true) => parented(joined_page!(
                $db,
                $t,
                $filtered,
                firm_id,
                status,
                filter,
                page,
                descending,
                WorkSort::Status,
                SortValue::text,
                $t::status,
                concat!(stringify!($t), ".status"),
                $read,
                $scope
            )),
            (WorkSort::Client, true) => parented(joined_page!(
                $db,
                $t,
                $filtered,
                firm_id,
                status,
                filter,
                page,
                descending,
                WorkSort::Client,
                SortValue::text,
                clients::name,
                "clients.name",
                $read,
                $scope
            )),
        };
        rows
    }};
}

/// The requests a client sees (cancelled ones are withdrawn from its view), as a boxed query.
macro_rules! client_visible_requests {
    ($firm_id:expr, $client_id:expr, $status:expr) => {{
        let mut query = information_requests::table
            .filter(information_requests::firm_id.eq($firm_id))
            .filter(information_requests::client_id.eq($client_id))
            .filter(information_requests::status.ne(RequestStatus::Cancelled))
            .into_boxed();
        if let Some(status) = $status {
            query = query.filter(information_requests::status.eq(status));
        }
        query
    }};
}

/// One page of the firm's tasks by due date then id.
pub async fn list_tasks(
    db: &mut DbConn<'_>,
    firm_id: i64,
    status: Option<TaskStatus>,
    filter: &WorkFilter,
    page: &DuePage,
) -> DbResult<Vec<Task>> {
    let page = due_keys(page);
    let rows = list_tasks_sorted(
        db,
        firm_id,
        status,
        filter,
        WorkOrder::default(),
        &page,
        false,
    )
    .await?;
    Ok(rows.into_iter().map(|(row, ..)| row).collect())
}

/// A keyset by (due date, id) as the work lists' keyset in their default order.
fn due_keys(page: &DuePage) -> WorkPage {
    let key = |key: &Option<(NaiveDate, i64)>| {
        key.map(|(day, id)| WorkKey {
            order: WorkOrder::default(),
            key: SortValue::Due(day),
            id,
        })
    };
    Keyset {
        after: key(&page.after),
        before: key(&page.before),
        backward: page.backward,
        limit: page.limit,
    }
}

/// One page of the firm's tasks in `order` (the sort key, then the id, in the same
/// direction), each with its position (its cursor's key) and, when `parents`, its
/// [`Parents`] read in the same statement.
pub async fn list_tasks_sorted(
    db: &mut DbConn<'_>,
    firm_id: i64,
    status: Option<TaskStatus>,
    filter: &WorkFilter,
    order: WorkOrder,
    page: &WorkPage,
    parents: bool,
) -> DbResult<Vec<WorkRow<Task>>> {
    Ok(work_page!(
        db,
        tasks,
        Task,
        filtered_tasks,
        firm_id,
        status,
        filter,
        order,
        page,
        parents,
        seek_page,
        ()
    ))
}

/// How many tasks match `status` and `filter`.
pub async fn count_tasks(
    db: &mut DbConn<'_>,
    firm_id: i64,
    status: Option<TaskStatus>,
    filter: &WorkFilter,
) -> DbResult<i64> {
    Ok(with_conn!(db, |c| filtered_tasks!(
        firm_id, status, filter
    )
    .count()
    .get_result(c)
    .await)?)
}

/// The reads of one kind of work (`$t`, rows `$row`) for several clients at once: `$list`, the
/// same page of each client's list in one statement (what `$sorted` returns with that client
/// as filter), and `$count`, how many rows each client's list holds (what `$count_one`
/// returns), as (client id, count), clients without any absent. `filter`'s own client is
/// ignored. One client keeps its own seek (an index walk that stops at the limit), not a
/// window.
macro_rules! work_of_clients {
    (
        $t:ident, $row:ident, $status:ty, $filtered:ident,
        $list:ident = $sorted:ident, $count:ident = $count_one:ident
    ) => {
        #[doc = concat!("The same page of each client's ", stringify!($t), ", in one statement.")]
        #[expect(
            clippy::too_many_arguments,
            reason = "a page's arguments, and its clients"
        )]
        pub async fn $list(
            db: &mut DbConn<'_>,
            firm_id: i64,
            status: Option<$status>,
            filter: &WorkFilter,
            order: WorkOrder,
            page: &WorkPage,
            parents: bool,
            client_ids: &[i64],
        ) -> DbResult<ParentPages<WorkRow<$row>>> {
            match client_ids {
                [] => return Ok(ParentPages::empty()),
                [client_id] => {
                    let filter = filter.for_client(*client_id);
                    let rows = $sorted(db, firm_id, status, &filter, order, page, parents).await?;
                    return Ok(ParentPages::sought(rows));
                }
                _ => {}
            }
            let filter = &filter.for_client(None);
            let mut counted = Vec::new();
            let rows = work_page!(
                db,
                $t,
                $row,
                $filtered,
                firm_id,
                status,
                filter,
                order,
                page,
                parents,
                pages_per_client,
                (client_ids, &mut counted)
            );
            Ok(ParentPages::numbered(rows, counted, page))
        }

        #[doc = concat!("How many ", stringify!($t), " of each client match, in one statement.")]
        pub async fn $count(
            db: &mut DbConn<'_>,
            firm_id: i64,
            status: Option<$status>,
            filter: &WorkFilter,
            client_ids: &[i64],
        ) -> DbResult<Vec<(i64, i64)>> {
            if let [client_id] = client_ids {
                let filter = filter.for_client(*client_id);
                let count = $count_one(db, firm_id, status, &filter).await?;
                return Ok(vec![(*client_id, count)]);
            }
            let filter = &filter.for_client(None);
            // Each client's first row by id, with its total (no GROUP BY on a boxed query).
            let place = || {
                partition_position(
                    concat!(stringify!($t), ".client_id"),
                    concat!(stringify!($t), ".id"),
                    concat!(stringify!($t), ".id"),
                    "ASC",
                )
            };
            let rows: Vec<Place> = with_conn!(db, |c| {
                let query = $filtered!(firm_id, status, filter)
                    .filter($t::client_id.eq_any(client_ids))
                    .select(place());
                FirstOfEach::new(query, 1).load(c).await
            })?;
            Ok(parent_totals(rows))
        }
    };
}

work_of_clients!(
    tasks,
    Task,
    TaskStatus,
    filtered_tasks,
    list_tasks_of_clients = list_tasks_sorted,
    count_tasks_of_clients = count_tasks
);
work_of_clients!(
    information_requests,
    InformationRequest,
    RequestStatus,
    filtered_requests,
    list_requests_of_clients = list_requests_sorted,
    count_requests_of_clients = count_requests
);

pub async fn find_task(db: &mut DbConn<'_>, firm_id: i64, id: i64) -> DbResult<Task> {
    Ok(with_conn!(db, |c| tasks::table
        .filter(tasks::firm_id.eq(firm_id))
        .filter(tasks::id.eq(id))
        .select(Task::as_select())
        .first(c)
        .await)?)
}

/// Reads one of the firm's work rows (of `$t`) by id with its parents, in one statement.
macro_rules! find_with_parents {
    ($db:expr, $t:ident, $firm_id:expr, $id:expr) => {{
        let (firm_id, id): (i64, i64) = ($firm_id, $id);
        let columns = with_conn!($db, |c| {
            let query = with_parents!($t, firm_id)
                .filter($t::firm_id.eq(firm_id))
                .filter($t::id.eq(id));
            with_parents!(filter query, firm_id)
                .select(parent_columns!($t))
                .first::<parent_row!($t)>(c)
                .await
        })?;
        Ok(columns.split())
    }};
}

/// One of the firm's tasks with its [`Parents`], in one statement.
pub async fn find_task_with_parents(
    db: &mut DbConn<'_>,
    firm_id: i64,
    id: i64,
) -> DbResult<(Task, Parents)> {
    find_with_parents!(db, tasks, firm_id, id)
}

/// One of the firm's requests with its [`Parents`], in one statement.
pub async fn find_request_with_parents(
    db: &mut DbConn<'_>,
    firm_id: i64,
    id: i64,
) -> DbResult<(InformationRequest, Parents)> {
    find_with_parents!(db, information_requests, firm_id, id)
}

pub async fn set_task_status(
    db: &mut DbConn<'_>,
    firm_id: i64,
    id: i64,
    status: TaskStatus,
    completed_at: Option<NaiveDateTime>,
) -> DbResult<Task> {
    Ok(with_conn!(db, |c| diesel::update(
        tasks::table
            .filter(tasks::firm_id.eq(firm_id))
            .filter(tasks::id.eq(id))
    )
    .set((
        tasks::status.eq(status),
        tasks::completed_at.eq(completed_at)
    ))
    .returning(Task::as_returning())
    .get_result(c)
    .await)?)
}

pub async fn assign_task(
    db: &mut DbConn<'_>,
    firm_id: i64,
    id: i64,
    assignee_id: Option<i64>,
) -> DbResult<Task> {
    Ok(with_conn!(db, |c| diesel::update(
        tasks::table
            .filter(tasks::firm_id.eq(firm_id))
            .filter(tasks::id.eq(id))
    )
    .set(tasks::assignee_id.eq(assignee_id))
    .returning(Task::as_returning())
    .get_result(c)
    .await)?)
}

/// One page of the firm's requests by due date then id.
pub async fn list_requests(
    db: &mut DbConn<'_>,
    firm_id: i64,
    status: Option<RequestStatus>,
    filter: &WorkFilter,
    page: &DuePage,
) -> DbResult<Vec<InformationRequest>> {
    let page = due_keys(page);
    let rows = list_requests_sorted(
        db,
        firm_id,
        status,
        filter,
        WorkOrder::default(),
        &page,
        false,
    )
    .await?;
    Ok(rows.into_iter().map(|(row, ..)| row).collect())
}

/// One page of the firm's requests in `order` (the sort key, then the id, in the same
/// direction), each with its position (its cursor's key) and, when `parents`, its
/// [`Parents`] read in the same statement.
pub async fn list_requests_sorted(
    db: &mut DbConn<'_>,
    firm_id: i64,
    status: Option<RequestStatus>,
    filter: &WorkFilter,
    order: WorkOrder,
    page: &WorkPage,
    parents: bool,
) -> DbResult<Vec<WorkRow<InformationRequest>>> {
    Ok(work_page!(
        db,
        information_requests,
        InformationRequest,
        filtered_requests,
        firm_id,
        status,
        filter,
        order,
        page,
        parents,
        seek_page,
        ()
    ))
}

/// How many requests match `status` and `filter`.
pub async fn count_requests(
    db: &mut DbConn<'_>,
    firm_id: i64,
    status: Option<RequestStatus>,
    filter: &WorkFilter,
) -> DbResult<i64> {
    Ok(with_conn!(db, |c| filtered_requests!(
        firm_id, status, filter
    )
    .count()
    .get_result(c)
    .await)?)
}

pub async fn find_request(
    db: &mut DbConn<'_>,
    firm_id: i64,
    id: i64,
) -> DbResult<InformationRequest> {
    Ok(with_conn!(db, |c| information_requests::table
        .filter(information_requests::firm_id.eq(firm_id))
        .filter(information_requests::id.eq(id))
        .select(InformationRequest::as_select())
        .first(c)
        .await)?)
}

/// The firm's requests with these ids (those that exist), in one statement per
/// [`super::bulk::ROWS_PER_STATEMENT`] ids.
pub async fn find_requests(
    db: &mut DbConn<'_>,
    firm_id: i64,
    ids: &[i64],
) -> DbResult<Vec<InformationRequest>> {
    let mut found = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(super::bulk::ROWS_PER_STATEMENT) {
        found.extend(with_conn!(db, |c| information_requests::table
            .filter(information_requests::firm_id.eq(firm_id))
            .filter(information_requests::id.eq_any(chunk))
            .select(InformationRequest::as_select())
            .load(c)
            .await)?);
    }
    Ok(found)
}

/// A request as its client sees it: scoped by firm and client.
pub async fn find_client_request(
    db: &mut DbConn<'_>,
    firm_id: i64,
    client_id: i64,
    id: i64,
) -> DbResult<InformationRequest> {
    Ok(with_conn!(db, |c| information_requests::table
        .filter(information_requests::firm_id.eq(firm_id))
        .filter(information_requests::client_id.eq(client_id))
        .filter(information_requests::id.eq(id))
        .filter(information_requests::status.ne(RequestStatus::Cancelled))
        .select(InformationRequest::as_select())
        .first(c)
        .await)?)
}

/// One page of the client's own requests (cancelled ones are withdrawn from its view), by due
/// date then id.
pub async fn list_client_requests(
    db: &mut DbConn<'_>,
    firm_id: i64,
    client_id: i64,
    status: Option<RequestStatus>,
    page: &DuePage,
) -> DbResult<Vec<InformationRequest>> {
    Ok(with_conn!(db, |c| {
        let query = client_visible_requests!(firm_id, client_id, status);
        seek_two!(
            query,
            page,
            information_requests::due_date,
            information_requests::id
        )
        .select(InformationRequest::as_select())
        .load(c)
        .await
    })?)
}

/// How many requests the client sees with `status`.
pub async fn count_client_requests(
    db: &mut DbConn<'_>,
    firm_id: i64,
    client_id: i64,
    status: Option<RequestStatus>,
) -> DbResult<i64> {
    Ok(with_conn!(db, |c| client_visible_requests!(
        firm_id, client_id, status
    )
    .count()
    .get_result(c)
    .await)?)
}

/// Moves a request from one of `from` to `to`; None when it was in another status.
pub async fn transition_request(
    db: &mut DbConn<'_>,
    firm_id: i64,
    id: i64,
    from: &[RequestStatus],
    to: RequestStatus,
    now: NaiveDateTime,
) -> DbResult<Option<InformationRequest>> {
    let from = from.to_vec();
    let answered_at = (to == RequestStatus::Answered).then_some(now);
    let closed_at = (to == RequestStatus::Closed).then_some(now);
    Ok(with_conn!(db, |c| {
        let target = information_requests::table
            .filter(information_requests::firm_id.eq(firm_id))
            .filter(information_requests::id.eq(id))
            .filter(information_requests::status.eq_any(&from));
        if to == RequestStatus::Answered {
            diesel::update(target)
                .set((
                    information_requests::status.eq(to),
                    information_requests::answered_at.eq(answered_at),
                ))
                .returning(InformationRequest::as_returning())
                .get_result(c)
                .await
                .optional()
        } else {
            diesel::update(target)
                .set((
                    information_requests::status.eq(to),
                    information_requests::closed_at.eq(closed_at),
                ))
                .returning(InformationRequest::as_returning())
                .get_result(c)
                .await
                .optional()
        }
    })?)
}

/// Cancels the open requests and tasks of a mission; returns the cancelled requests.
pub async fn cancel_open_work_of_mission(
    db: &mut DbConn<'_>,
    firm_id: i64,
    mission_id: i64,
    now: NaiveDateTime,
) -> DbResult<Vec<InformationRequest>> {
    with_conn!(db, |c| diesel::update(
        tasks::table
            .filter(tasks::firm_id.eq(firm_id))
            .filter(tasks::mission_id.eq(mission_id))
            .filter(tasks::status.eq(TaskStatus::Open))
    )
    .set(tasks::status.eq(TaskStatus::Cancelled))
    .execute(c)
    .await)?;
    Ok(with_conn!(db, |c| diesel::update(
        information_requests::table
            .filter(information_requests::firm_id.eq(firm_id))
            .filter(information_requests::mission_id.eq(mission_id))
            .filter(information_requests::status.eq(RequestStatus::Open))
    )
    .set((
        information_requests::status.eq(RequestStatus::Cancelled),
        information_requests::closed_at.eq(now),
    ))
    .returning(InformationRequest::as_returning())
    .get_results(c)
    .await)?)
}

pub async fn insert_answer(
    db: &mut DbConn<'_>,
    new: &NewRequestAnswer<'_>,
) -> DbResult<RequestAnswer> {
    Ok(with_conn!(db, |c| diesel::insert_into(
        request_answers::table
    )
    .values(new)
    .returning(RequestAnswer::as_returning())
    .get_result(c)
    .await)?)
}

pub async fn list_answers(
    db: &mut DbConn<'_>,
    firm_id: i64,
    request_id: i64,
) -> DbResult<Vec<RequestAnswer>> {
    Ok(with_conn!(db, |c| request_answers::table
        .filter(request_answers::firm_id.eq(firm_id))
        .filter(request_answers::request_id.eq(request_id))
        .order(request_answers::id)
        .select(RequestAnswer::as_select())
        .load(c)
        .await)?)
}

/// One page of answers for each of `request_ids` (of the firm's requests; with `client_id`,
/// only of that client's requests it may see), by id: the keyset applies to every request's
/// answers separately, in one statement (a window function numbers each request's answers).
/// Rows come by request, then by id (descending when reading backward).
pub async fn answer_pages_of_requests(
    db: &mut DbConn<'_>,
    firm_id: i64,
    client_id: Option<i64>,
    request_ids: &[i64],
    page: &Keyset<i64>,
) -> DbResult<Vec<RequestAnswer>> {
    if request_ids.is_empty() {
        return Ok(Vec::new());
    }
    let sqlite = db.is_sqlite();
    let mut binds: Vec<i64> = Vec::new();
    // Every value is bound; only placeholders and fixed words are written into the text.
    let mut bind = |value: i64| {
        binds.push(value);
        if sqlite {
            "?".to_string()
        } else {
            format!("${}", binds.len())
        }
    };
    let direction = if page.backward { "DESC" } else { "ASC" };
    let mut sql = format!(
        "SELECT id, firm_id, request_id, contact_id, message, nothing_to_report, created_at \
         FROM (SELECT a.id, a.firm_id, a.request_id, a.contact_id, a.message, \
         a.nothing_to_report, a.created_at, ROW_NUMBER() OVER \
         (PARTITION BY a.request_id ORDER BY a.id {direction}) AS position \
         FROM request_answers a"
    );
    if let Some(client_id) = client_id {
        sql += &format!(
            " JOIN information_requests r ON r.id = a.request_id AND r.firm_id = a.firm_id \
             AND r.client_id = {} AND r.status <> 'CANCELLED'",
            bind(client_id)
        );
    }
    sql += &format!(" WHERE a.firm_id = {}", bind(firm_id));
    let ids: Vec<String> = request_ids.iter().map(|id| bind(*id)).collect();
    sql += &format!(" AND a.request_id IN ({})", ids.join(", "));
    if let Some(after) = page.after {
        sql += &format!(" AND a.id > {}", bind(after));
    }
    if let Some(before) = page.before {
        sql += &format!(" AND a.id < {}", bind(before));
    }
    sql += &format!(
        ") numbered WHERE position <= {} ORDER BY request_id, id {direction}",
        bind(page.limit)
    );
    Ok(with_conn!(db, |c| {
        let mut query = diesel::sql_query(sql.as_str()).into_boxed();
        for value in &binds {
            query = query.bind::<diesel::sql_types::BigInt, _>(*value);
        }
        query.load::<RequestAnswer>(c).await
    })?)
}

/// How many answers each of `request_ids` has (of the firm's requests; with `client_id`, only
/// of that client's requests it may see), as (request id, count); requests without answers are
/// absent.
pub async fn count_answers_of_requests(
    db: &mut DbConn<'_>,
    firm_id: i64,
    client_id: Option<i64>,
    request_ids: &[i64],
) -> DbResult<Vec<(i64, i64)>> {
    use diesel::dsl::count;
    Ok(match client_id {
        None => with_conn!(db, |c| request_answers::table
            .filter(request_answers::firm_id.eq(firm_id))
            .filter(request_answers::request_id.eq_any(request_ids))
            .group_by(request_answers::request_id)
            .select((request_answers::request_id, count(request_answers::id)))
            .load(c)
            .await)?,
        Some(client_id) => with_conn!(db, |c| request_answers::table
            .inner_join(information_requests::table)
            .filter(request_answers::firm_id.eq(firm_id))
            .filter(request_answers::request_id.eq_any(request_ids))
            .filter(information_requests::firm_id.eq(firm_id))
            .filter(information_requests::client_id.eq(client_id))
            .filter(information_requests::status.ne(RequestStatus::Cancelled))
            .group_by(request_answers::request_id)
            .select((request_answers::request_id, count(request_answers::id)))
            .load(c)
            .await)?,
    })
}

/// The latest due date already generated for a mission (tasks or requests), if any.
pub async fn latest_generated_due_date(
    db: &mut DbConn<'_>,
    firm_id: i64,
    mission_id: i64,
) -> DbResult<Option<NaiveDate>> {
    let latest_request: Option<NaiveDate> = with_conn!(db, |c| information_requests::table
        .filter(information_requests::firm_id.eq(firm_id))
        .filter(information_requests::mission_id.eq(mission_id))
        .select(diesel::dsl::max(information_requests::due_date))
        .first(c)
        .await)?;
    let latest_task: Option<NaiveDate> = with_conn!(db, |c| tasks::table
        .filter(tasks::firm_id.eq(firm_id))
        .filter(tasks::mission_id.eq(mission_id))
        .select(diesel::dsl::max(tasks::due_date))
        .first(c)
        .await)?;
    Ok(latest_request.max(latest_task))
}

/// Inserts the tasks whose generation key is new; returns how many were inserted.
pub async fn insert_tasks_if_new(db: &mut DbConn<'_>, rows: &[NewTask]) -> DbResult<usize> {
    super::bulk::insert_tasks(db, rows, super::bulk::Conflicts::Skip).await
}

/// Inserts the requests whose generation key is new; returns the inserted rows (only those:
/// a request another pass already created is not announced twice).
pub async fn insert_requests_if_new(
    db: &mut DbConn<'_>,
    rows: &[NewInformationRequest],
) -> DbResult<Vec<InformationRequest>> {
    super::bulk::insert_requests(db, rows, super::bulk::Conflicts::Skip).await
}

/// One assignee's tasks in numbers (None: the unassigned tasks).
#[derive(Debug, Clone, QueryableByName)]
pub struct AssigneeWorkload {
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    pub assignee_id: Option<i64>,
    /// OPEN tasks.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub open: i64,
    /// OPEN tasks due before today.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub overdue: i64,
    /// OPEN tasks due from today to the week's end.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub due_this_week: i64,
    /// Tasks (any status) created today.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub created_today: i64,
}

/// The firm's requests in numbers.
#[derive(Debug, Clone, Default, QueryableByName)]
pub struct RequestWorkload {
    /// OPEN (unanswered) requests.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub open: i64,
    /// OPEN requests due before today.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub overdue: i64,
    /// ANSWERED requests (to review).
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub answered: i64,
    /// OPEN requests due from today to the week's end.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub due_this_week: i64,
    /// Requests (any status) created today.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub created_today: i64,
}

/// A bound value of a workload query.
enum Bound {
    Id(i64),
    Day(NaiveDate),
}

/// The workload counts of `table` as one statement: `columns` holds `{p}` where a bound
/// value goes; `values` are bound in order (each placeholder its own bind, for SQLite).
fn workload_sql(sqlite: bool, template: &str, values: &[Bound]) -> String {
    let mut sql = String::with_capacity(template.len() + 32);
    let mut parts = template.split("{p}");
    if let Some(first) = parts.next() {
        sql.push_str(first);
    }
    for (index, part) in parts.enumerate() {
        if sqlite {
            sql.push('?');
        } else {
            sql.push_str(&format!("${}", index + 1));
        }
        sql.push_str(part);
    }
    debug_assert_eq!(template.matches("{p}").count(), values.len());
    sql
}

macro_rules! workload_query {
    ($db:expr, $sql:expr, $values:expr, $row:ty) => {{
        let values: &[Bound] = $values;
        let sql = workload_sql($db.is_sqlite(), $sql, values);
        with_conn!($db, |c| {
            let mut query = diesel::sql_query(sql.as_str()).into_boxed();
            for value in values {
                query = match value {
                    Bound::Id(id) => query.bind::<diesel::sql_types::BigInt, _>(*id),
                    Bound::Day(day) => query.bind::<diesel::sql_types::Date, _>(*day),
                };
            }
            query.load::<$row>(c).await
        })
    }};
}

/// The firm's tasks in numbers per assignee as of `today`, in one statement.
pub async fn task_workload(
    db: &mut DbConn<'_>,
    firm_id: i64,
    today: NaiveDate,
    week_end: NaiveDate,
) -> DbResult<Vec<AssigneeWorkload>> {
    const SQL: &str = "SELECT assignee_id, \
         SUM(CASE WHEN status = 'OPEN' THEN 1 ELSE 0 END) AS open, \
         SUM(CASE WHEN status = 'OPEN' AND due_date < {p} THEN 1 ELSE 0 END) AS overdue, \
         SUM(CASE WHEN status = 'OPEN' AND due_date >= {p} AND due_date <= {p} THEN 1 ELSE 0 END) \
         AS due_this_week, \
         SUM(CASE WHEN created_on = {p} THEN 1 ELSE 0 END) AS created_today \
         FROM tasks WHERE firm_id = {p} GROUP BY assignee_id ORDER BY assignee_id";
    let values = [
        Bound::Day(today),
        Bound::Day(today),
        Bound::Day(week_end),
        Bound::Day(today),
        Bound::Id(firm_id),
    ];
    Ok(workload_query!(db, SQL, &values, AssigneeWorkload)?)
}

/// The firm's requests in numbers as of `today`, in one statement.
pub async fn request_workload(
    db: &mut DbConn<'_>,
    firm_id: i64,
    today: NaiveDate,
    week_end: NaiveDate,
) -> DbResult<RequestWorkload> {
    const SQL: &str = "SELECT \
         COALESCE(SUM(CASE WHEN status = 'OPEN' THEN 1 ELSE 0 END), 0) AS open, \
         COALESCE(SUM(CASE WHEN status = 'OPEN' AND due_date < {p} THEN 1 ELSE 0 END), 0) \
         AS overdue, \
         COALESCE(SUM(CASE WHEN status = 'ANSWERED' THEN 1 ELSE 0 END), 0) AS answered, \
         COALESCE(SUM(CASE WHEN status = 'OPEN' AND due_date >= {p} AND due_date <= {p} \
         THEN 1 ELSE 0 END), 0) AS due_this_week, \
         COALESCE(SUM(CASE WHEN created_on = {p} THEN 1 ELSE 0 END), 0) AS created_today \
         FROM information_requests WHERE firm_id = {p}";
    let values = [
        Bound::Day(today),
        Bound::Day(today),
        Bound::Day(week_end),
        Bound::Day(today),
        Bound::Id(firm_id),
    ];
    let rows = workload_query!(db, SQL, &values, RequestWorkload)?;
    Ok(rows.into_iter().next().unwrap_or_default())
}

/// The firm's tasks of these occurrences (mission line, due date, copy number), in one
/// statement (it reads the lines' rows on those due dates, then keeps the asked copies).
pub async fn tasks_of_occurrences(
    db: &mut DbConn<'_>,
    firm_id: i64,
    occurrences: &[(i64, NaiveDate, i32)],
) -> DbResult<Vec<Task>> {
    let lines: Vec<i64> = occurrences.iter().map(|o| o.0).collect();
    let dates: Vec<NaiveDate> = occurrences.iter().map(|o| o.1).collect();
    let rows: Vec<Task> = with_conn!(db, |c| tasks::table
        .filter(tasks::firm_id.eq(firm_id))
        .filter(tasks::mission_line_id.eq_any(&lines))
        .filter(tasks::due_date.eq_any(&dates))
        .order(tasks::id)
        .select(Task::as_select())
        .load(c)
        .await)?;
    Ok(rows
        .into_iter()
        .filter(|row| occurrences.contains(&(row.mission_line_id, row.due_date, row.copy_number)))
        .collect())
}

/// The firm's requests of these occurrences (mission line, due date, copy number), in one
/// statement.
pub async fn requests_of_occurrences(
    db: &mut DbConn<'_>,
    firm_id: i64,
    occurrences: &[(i64, NaiveDate, i32)],
) -> DbResult<Vec<InformationRequest>> {
    let lines: Vec<i64> = occurrences.iter().map(|o| o.0).collect();
    let dates: Vec<NaiveDate> = occurrences.iter().map(|o| o.1).collect();
    let rows: Vec<InformationRequest> = with_conn!(db, |c| information_requests::table
        .filter(information_requests::firm_id.eq(firm_id))
        .filter(information_requests::mission_line_id.eq_any(&lines))
        .filter(information_requests::due_date.eq_any(&dates))
        .order(information_requests::id)
        .select(InformationRequest::as_select())
        .load(c)
        .await)?;
    Ok(rows
        .into_iter()
        .filter(|row| occurrences.contains(&(row.mission_line_id, row.due_date, row.copy_number)))
        .collect())
}
