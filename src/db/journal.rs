//! The activity journal's rows: append-only (the migrations' triggers refuse UPDATE and
//! DELETE on both backends), every read scoped by firm.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::clients::{Client, Contact};
use super::firms::User;
use super::missions::Mission;
use super::page::{
    FirstOfEach, Keyset, ParentPages, Place, by_parent, parent_totals, partition_position,
    read_direction,
};
use super::schema::{clients, contacts, journal_entries, missions, users};
use super::{DbConn, DbResult};
use crate::with_conn;

/// One recorded state change.
#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = journal_entries)]
pub struct JournalEntry {
    pub id: i64,
    pub firm_id: i64,
    pub occurred_at: NaiveDateTime,
    /// `STAFF`, `CONTACT` or `SYSTEM`.
    pub actor_kind: String,
    pub actor_user_id: Option<i64>,
    pub actor_contact_id: Option<i64>,
    /// What happened, e.g. `mission.signed`, `request.answered`, `task.completed`.
    pub kind: String,
    /// What it happened to: `mission`, `request`, `task`, `client`, `contact`, `staff`,
    /// `webhook_endpoint`, `firm`.
    pub object_type: String,
    pub object_id: i64,
    pub client_id: Option<i64>,
    pub mission_id: Option<i64>,
    pub before_status: Option<String>,
    pub after_status: Option<String>,
    /// A short JSON object with what the kind needs beside the statuses (e.g. the assignee).
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = journal_entries)]
pub struct NewJournalEntry<'a> {
    pub firm_id: i64,
    pub occurred_at: NaiveDateTime,
    pub actor_kind: &'a str,
    pub actor_user_id: Option<i64>,
    pub actor_contact_id: Option<i64>,
    pub kind: &'a str,
    pub object_type: &'a str,
    pub object_id: i64,
    pub client_id: Option<i64>,
    pub mission_id: Option<i64>,
    pub before_status: Option<&'a str>,
    pub after_status: Option<&'a str>,
    pub detail: Option<&'a str>,
}

/// Appends entries in one statement on PostgreSQL; on SQLite one multi-row statement per
/// [`super::bulk::ROWS_PER_STATEMENT`] entries, in one blocking hop.
pub async fn insert(db: &mut DbConn<'_>, entries: &[NewJournalEntry<'_>]) -> DbResult<usize> {
    super::bulk::insert_journal(db, entries).await
}

/// What a history list keeps; every field narrows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct JournalFilter {
    /// Entries about one object: (`object_type`, id).
    pub object: Option<(&'static str, i64)>,
    pub client_id: Option<i64>,
    pub mission_id: Option<i64>,
    /// Entries of these kinds (empty: every kind).
    pub kinds: Vec<String>,
    /// Entries at or after this time.
    pub since: Option<NaiveDateTime>,
    /// Entries before this time.
    pub until: Option<NaiveDateTime>,
}

/// The rows an entry names, read in the same statement as the entry by the lists that show
/// them (each `None` when the entry names none, or when it names a row that is gone).
#[derive(Debug, Clone, Default)]
pub struct EntryLinks {
    pub client: Option<Client>,
    pub mission: Option<Mission>,
    /// The staff member who acted.
    pub user: Option<User>,
    /// The contact who acted.
    pub contact: Option<Contact>,
}

/// An entry with the rows it names.
pub type LinkedEntry = (JournalEntry, EntryLinks);

/// The columns of a [`LinkedEntry`] (over [`linked_entries!`]).
type LinkedColumns = (
    JournalEntry,
    Option<Client>,
    Option<Mission>,
    Option<User>,
    Option<Contact>,
);

fn linked(rows: Vec<LinkedColumns>) -> Vec<LinkedEntry> {
    rows.into_iter()
        .map(|(entry, client, mission, user, contact)| {
            let links = EntryLinks {
                client,
                mission,
                user,
                contact,
            };
            (entry, links)
        })
        .collect()
}

/// `journal_entries` left-joined with the client, mission, staff member and contact each
/// entry names, every joined row scoped by the firm so a join never reads another tenant's.
macro_rules! linked_entries {
    ($firm_id:expr) => {
        journal_entries::table
            .left_join(
                clients::table.on(journal_entries::client_id
                    .eq(clients::id.nullable())
                    .and(clients::firm_id.eq($firm_id))),
            )
            .left_join(
                missions::table.on(journal_entries::mission_id
                    .eq(missions::id.nullable())
                    .and(missions::firm_id.eq($firm_id))),
            )
            .left_join(
                users::table.on(journal_entries::actor_user_id
                    .eq(users::id.nullable())
                    .and(users::firm_id.eq($firm_id))),
            )
            .left_join(
                contacts::table.on(journal_entries::actor_contact_id
                    .eq(contacts::id.nullable())
                    .and(contacts::firm_id.eq($firm_id))),
            )
    };
}

/// The selection of [`LinkedColumns`] (the joined tables' columns in their structs' order:
/// a boxed query does not take a nullable `as_select`);
/// `$extra` goes after them.
macro_rules! linked_columns {
    ($($extra:expr)?) => {
        (
            JournalEntry::as_select(),
            clients::all_columns.nullable(),
            missions::all_columns.nullable(),
            users::all_columns.nullable(),
            contacts::all_columns.nullable(),
            $($extra)?
        )
    };
}

/// The firm's entries matching `filter`, as a boxed query (for a page or a count), over
/// `journal_entries` or a join of it.
macro_rules! filtered_entries {
    ($firm_id:expr, $filter:expr) => {
        filtered_entries!($firm_id, $filter, journal_entries::table)
    };
    ($firm_id:expr, $filter:expr, $source:expr) => {{
        let filter: &JournalFilter = $filter;
        let mut query = $source
            .filter(journal_entries::firm_id.eq($firm_id))
            .into_boxed();
        if let Some((object_type, object_id)) = filter.object {
            query = query
                .filter(journal_entries::object_type.eq(object_type))
                .filter(journal_entries::object_id.eq(object_id));
        }
        if let Some(client_id) = filter.client_id {
            query = query.filter(journal_entries::client_id.eq(client_id));
        }
        if let Some(mission_id) = filter.mission_id {
            query = query.filter(journal_entries::mission_id.eq(mission_id));
        }
        if !filter.kinds.is_empty() {
            query = query.filter(journal_entries::kind.eq_any(filter.kinds.clone()));
        }
        if let Some(since) = filter.since {
            query = query.filter(journal_entries::occurred_at.ge(since));
        }
        if let Some(until) = filter.until {
            query = query.filter(journal_entries::occurred_at.lt(until));
        }
        query
    }};
}

/// One page of the firm's entries matching `filter`, newest first (by id: entries are
/// appended in time order).
pub async fn list(
    db: &mut DbConn<'_>,
    firm_id: i64,
    filter: &JournalFilter,
    page: &Keyset<i64>,
) -> DbResult<Vec<JournalEntry>> {
    Ok(with_conn!(db, |c| {
        let query = filtered_entries!(firm_id, filter);
        crate::seek_id!(query, page, journal_entries::id, desc)
            .select(JournalEntry::as_select())
            .load(c)
            .await
    })?)
}

/// One page of the firm's entries matching `filter`, newest first, each with the client,
/// mission and actor it names read in the same statement.
pub async fn list_linked(
    db: &mut DbConn<'_>,
    firm_id: i64,
    filter: &JournalFilter,
    page: &Keyset<i64>,
) -> DbResult<Vec<LinkedEntry>> {
    let rows: Vec<LinkedColumns> = with_conn!(db, |c| {
        let query = filtered_entries!(firm_id, filter, linked_entries!(firm_id));
        crate::seek_id!(query, page, journal_entries::id, desc)
            .select(linked_columns!())
            .load(c)
            .await
    })?;
    Ok(linked(rows))
}

/// Whose history a nested history list shows: each client's, each mission's, or each object's
/// of one type (`task`, `request`...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HistoryOwner {
    Client,
    Mission,
    Object(&'static str),
}

impl HistoryOwner {
    /// `filter` narrowed to the history of the owner `id`.
    pub fn narrow(self, mut filter: JournalFilter, id: i64) -> JournalFilter {
        match self {
            HistoryOwner::Client => filter.client_id = Some(id),
            HistoryOwner::Mission => filter.mission_id = Some(id),
            HistoryOwner::Object(object_type) => filter.object = Some((object_type, id)),
        }
        filter
    }

    /// The owner an entry's history belongs to, among owners of this kind.
    pub fn of(self, entry: &JournalEntry) -> Option<i64> {
        match self {
            HistoryOwner::Client => entry.client_id,
            HistoryOwner::Mission => entry.mission_id,
            HistoryOwner::Object(_) => Some(entry.object_id),
        }
    }
}

/// The firm's entries matching `filter` and owned by one of `$ids` (`$owner`'s kind), over
/// `$source` (`journal_entries` or its join), as a boxed query.
macro_rules! owned_entries {
    ($firm_id:expr, $filter:expr, $owner:expr, $ids:expr, $source:expr) => {{
        let ids: &[i64] = $ids;
        let query = filtered_entries!($firm_id, $filter, $source);
        match $owner {
            HistoryOwner::Client => query.filter(journal_entries::client_id.eq_any(ids)),
            HistoryOwner::Mission => query.filter(journal_entries::mission_id.eq_any(ids)),
            HistoryOwner::Object(object_type) => query
                .filter(journal_entries::object_type.eq(object_type))
                .filter(journal_entries::object_id.eq_any(ids)),
        }
    }};
}

/// The column an owner's entries are partitioned by, as SQL text.
fn owner_column(owner: HistoryOwner) -> &'static str {
    match owner {
        HistoryOwner::Client => "journal_entries.client_id",
        HistoryOwner::Mission => "journal_entries.mission_id",
        HistoryOwner::Object(_) => "journal_entries.object_id",
    }
}

/// The same page of the history of each of `ids` (owners of kind `owner`; `filter`'s own
/// owner fields are kept as they are, so leave them unset), with the client, mission and actor
/// of each entry, in one statement: for each owner, what [`list_linked`] returns with it as
/// filter.
pub async fn list_linked_of_owners(
    db: &mut DbConn<'_>,
    firm_id: i64,
    filter: &JournalFilter,
    owner: HistoryOwner,
    ids: &[i64],
    page: &Keyset<i64>,
) -> DbResult<ParentPages<LinkedEntry>> {
    match ids {
        [] => return Ok(ParentPages::empty()),
        // One owner: its own seek (an index walk that stops at the limit), not a window.
        [id] => {
            let filter = owner.narrow(filter.clone(), *id);
            let rows = list_linked(db, firm_id, &filter, page).await?;
            return Ok(ParentPages::sought(rows));
        }
        _ => {}
    }
    let rows: Vec<(LinkedColumns, Place)> = with_conn!(db, |c| {
        let mut query = owned_entries!(firm_id, filter, owner, ids, linked_entries!(firm_id));
        // Newest first: "after" is older.
        if let Some(after) = page.after {
            query = query.filter(journal_entries::id.lt(after));
        }
        if let Some(before) = page.before {
            query = query.filter(journal_entries::id.gt(before));
        }
        let place = partition_position(
            owner_column(owner),
            "journal_entries.id",
            "journal_entries.id",
            read_direction(page, true),
        );
        FirstOfEach::new(query.select(linked_columns!(place)), page.limit)
            .load::<(
                JournalEntry,
                Option<Client>,
                Option<Mission>,
                Option<User>,
                Option<Contact>,
                Place,
            )>(c)
            .await
    })?
    .into_iter()
    .map(|(entry, client, mission, user, contact, place)| {
        ((entry, client, mission, user, contact), place)
    })
    .collect();
    let (rows, counted) = by_parent(rows);
    Ok(ParentPages::numbered(linked(rows), counted, page))
}

/// How many entries of each of `ids` (owners of kind `owner`) match `filter`, as (owner id,
/// count); owners without any are absent.
pub async fn count_of_owners(
    db: &mut DbConn<'_>,
    firm_id: i64,
    filter: &JournalFilter,
    owner: HistoryOwner,
    ids: &[i64],
) -> DbResult<Vec<(i64, i64)>> {
    if let [id] = ids {
        let count = count(db, firm_id, &owner.narrow(filter.clone(), *id)).await?;
        return Ok(vec![(*id, count)]);
    }
    // Each owner's newest entry, with its total (no GROUP BY on a boxed query).
    let place = || {
        let column = owner_column(owner);
        partition_position(column, "journal_entries.id", "journal_entries.id", "DESC")
    };
    let rows: Vec<Place> = with_conn!(db, |c| {
        let query = owned_entries!(firm_id, filter, owner, ids, journal_entries::table);
        FirstOfEach::new(query.select(place()), 1).load(c).await
    })?;
    Ok(parent_totals(rows))
}

/// How many of the firm's entries match `filter`.
pub async fn count(db: &mut DbConn<'_>, firm_id: i64, filter: &JournalFilter) -> DbResult<i64> {
    Ok(with_conn!(db, |c| filtered_entries!(firm_id, filter)
        .count()
        .get_result(c)
        .await)?)
}

/// The latest entry of `kind` for each of `object_ids` of `object_type` (e.g. who closed
/// each request), with the rows it names (its actor), in one statement.
pub async fn latest_of_kind(
    db: &mut DbConn<'_>,
    firm_id: i64,
    object_type: &'static str,
    kinds: &[&'static str],
    object_ids: &[i64],
) -> DbResult<Vec<LinkedEntry>> {
    let ids = object_ids.to_vec();
    let kinds = kinds.to_vec();
    let rows: Vec<LinkedColumns> = with_conn!(db, |c| linked_entries!(firm_id)
        .filter(journal_entries::firm_id.eq(firm_id))
        .filter(journal_entries::object_type.eq(object_type))
        .filter(journal_entries::kind.eq_any(kinds.clone()))
        .filter(journal_entries::object_id.eq_any(ids.clone()))
        .order(journal_entries::id.desc())
        .select(linked_columns!())
        .load(c)
        .await)?;
    // Newest first: the first row met for an object is its latest.
    let mut latest: std::collections::HashMap<i64, LinkedEntry> = std::collections::HashMap::new();
    for row in linked(rows) {
        latest.entry(row.0.object_id).or_insert(row);
    }
    Ok(latest.into_values().collect())
}

/// Every entry of the firm at or after `since`, oldest first, in pages of `batch` after
/// `after_id` (for the CSV export).
pub async fn list_since(
    db: &mut DbConn<'_>,
    firm_id: i64,
    since: NaiveDateTime,
    after_id: i64,
    batch: i64,
) -> DbResult<Vec<JournalEntry>> {
    Ok(with_conn!(db, |c| journal_entries::table
        .filter(journal_entries::firm_id.eq(firm_id))
        .filter(journal_entries::occurred_at.ge(since))
        .filter(journal_entries::id.gt(after_id))
        .order(journal_entries::id.asc())
        .limit(batch)
        .select(JournalEntry::as_select())
        .load(c)
        .await)?)
}

/// How many entries of these kinds exist, in every firm (for checks and diagnostics).
pub async fn count_kinds(db: &mut DbConn<'_>, kinds: &[&str]) -> DbResult<i64> {
    let kinds: Vec<String> = kinds.iter().map(|kind| kind.to_string()).collect();
    Ok(with_conn!(db, |c| journal_entries::table
        .filter(journal_entries::kind.eq_any(&kinds))
        .count()
        .get_result(c)
        .await)?)
}
