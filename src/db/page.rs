//! Keyset (seek) pagination shared by the list queries: a page is the rows strictly between
//! two sort keys, the first `limit` of them or the last `limit` of them. No OFFSET: a page
//! costs the same however deep it is, and rows added meanwhile do not shift it.

/// Which rows of an ordered list one page reads. `K` is the list's sort key (for example the
/// due date then the id). The query returns rows in the list's order when reading forward and
/// in reverse order when reading `backward` (the caller reverses them).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Keyset<K> {
    /// Only rows after this key.
    pub after: Option<K>,
    /// Only rows before this key.
    pub before: Option<K>,
    /// Read from the end (`last`) instead of from the start (`first`).
    pub backward: bool,
    /// Rows to read: the page size plus one, to learn whether more exist.
    pub limit: i64,
}

impl<K> Keyset<K> {
    /// The first `limit` rows of the whole list.
    pub fn first(limit: i64) -> Self {
        Self {
            after: None,
            before: None,
            backward: false,
            limit,
        }
    }
}

/// Applies a keyset on a two-column ascending order (`$first`, then `$second`, a unique id)
/// to a boxed query: the seek filters, the order and the limit.
#[macro_export]
macro_rules! seek_two {
    ($query:expr, $page:expr, $first:expr, $second:expr) => {{
        let page = $page;
        let mut query = $query;
        if let Some((key, id)) = page.after.clone() {
            query = query.filter(
                $first
                    .gt(key.clone())
                    .or($first.eq(key).and($second.gt(id))),
            );
        }
        if let Some((key, id)) = page.before.clone() {
            query = query.filter(
                $first
                    .lt(key.clone())
                    .or($first.eq(key).and($second.lt(id))),
            );
        }
        if page.backward {
            query
                .order(($first.desc(), $second.desc()))
                .limit(page.limit)
        } else {
            query.order(($first.asc(), $second.asc())).limit(page.limit)
        }
    }};
}

/// Applies a keyset on a one-column order by a unique id, ascending (`asc`) or descending
/// (`desc`: newest first, so "after" means a smaller id).
#[macro_export]
macro_rules! seek_id {
    ($query:expr, $page:expr, $id:expr, asc) => {{
        let page = $page;
        let mut query = $query;
        if let Some(id) = page.after {
            query = query.filter($id.gt(id));
        }
        if let Some(id) = page.before {
            query = query.filter($id.lt(id));
        }
        if page.backward {
            query.order($id.desc()).limit(page.limit)
        } else {
            query.order($id.asc()).limit(page.limit)
        }
    }};
    ($query:expr, $page:expr, $id:expr, desc) => {{
        let page = $page;
        let mut query = $query;
        if let Some(id) = page.after {
            query = query.filter($id.lt(id));
        }
        if let Some(id) = page.before {
            query = query.filter($id.gt(id));
        }
        if page.backward {
            query.order($id.asc()).limit(page.limit)
        } else {
            query.order($id.desc()).limit(page.limit)
        }
    }};
}

/// The seek filters of a keyset on a two-column order (`$first`, then `$second`, a unique id)
/// whose direction is chosen at run time (`$descending`: both columns descending), applied to a
/// boxed query: only rows strictly between the page's bounds. "After" follows the list's
/// direction. [`seek_two_dir`] adds the order and the limit; [`FirstOfEach`] numbers instead.
#[macro_export]
macro_rules! seek_two_bounds_dir {
    ($query:expr, $page:expr, $first:expr, $second:expr, $descending:expr) => {{
        let page = $page;
        let descending: bool = $descending;
        let mut query = $query;
        // A bound "toward the end" of the list: greater when ascending, smaller when not.
        if let Some((key, id)) = page.after.clone() {
            query = if descending {
                query.filter(
                    $first
                        .lt(key.clone())
                        .or($first.eq(key).and($second.lt(id))),
                )
            } else {
                query.filter(
                    $first
                        .gt(key.clone())
                        .or($first.eq(key).and($second.gt(id))),
                )
            };
        }
        if let Some((key, id)) = page.before.clone() {
            query = if descending {
                query.filter(
                    $first
                        .gt(key.clone())
                        .or($first.eq(key).and($second.gt(id))),
                )
            } else {
                query.filter(
                    $first
                        .lt(key.clone())
                        .or($first.eq(key).and($second.lt(id))),
                )
            };
        }
        query
    }};
}

/// Applies a keyset on a two-column order (`$first`, then `$second`, a unique id) whose
/// direction is chosen at run time (`$descending`: both columns descending) to a boxed query:
/// the seek filters, the order and the limit. "After" follows the list's direction.
#[macro_export]
macro_rules! seek_two_dir {
    ($query:expr, $page:expr, $first:expr, $second:expr, $descending:expr) => {{
        let page = $page;
        let descending: bool = $descending;
        let query = $crate::seek_two_bounds_dir!($query, page, $first, $second, descending);
        if page.backward != descending {
            query
                .order(($first.desc(), $second.desc()))
                .limit(page.limit)
        } else {
            query.order(($first.asc(), $second.asc())).limit(page.limit)
        }
    }};
}

/// The direction a keyset page reads its two-column order in, as SQL: descending when the
/// list is (`descending`) or when reading backward, not both.
pub fn read_direction<K>(page: &Keyset<K>, descending: bool) -> &'static str {
    if page.backward != descending {
        "DESC"
    } else {
        "ASC"
    }
}

/// `SELECT * FROM (query) numbered WHERE position <= limit`: the first `limit` rows of every
/// partition of `query`, whose selection ends with a `ROW_NUMBER() OVER (PARTITION BY ...
/// ORDER BY ...) AS position` column (see [`partition_position`]). One statement reads a page
/// of each parent's list (each client's tasks) with the same keyset; rows come in no order.
/// Diesel takes no subquery in FROM: this wraps a (boxed) query as diesel's guide wraps one
/// to paginate it.
#[derive(Debug, Clone, diesel::query_builder::QueryId)]
pub struct FirstOfEach<Q> {
    query: Q,
    limit: i64,
}

impl<Q> FirstOfEach<Q> {
    pub fn new(query: Q, limit: i64) -> Self {
        Self { query, limit }
    }
}

impl<Q: diesel::query_builder::Query> diesel::query_builder::Query for FirstOfEach<Q> {
    type SqlType = Q::SqlType;
}

impl<Q, DB> diesel::query_builder::QueryFragment<DB> for FirstOfEach<Q>
where
    DB: diesel::backend::Backend,
    Q: diesel::query_builder::QueryFragment<DB>,
    i64: diesel::serialize::ToSql<diesel::sql_types::BigInt, DB>,
    DB: diesel::sql_types::HasSqlType<diesel::sql_types::BigInt>,
{
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, DB>,
    ) -> diesel::QueryResult<()> {
        out.push_sql("SELECT * FROM (");
        self.query.walk_ast(out.reborrow())?;
        out.push_sql(") numbered WHERE numbered.position <= ");
        out.push_bind_param::<diesel::sql_types::BigInt, _>(&self.limit)?;
        Ok(())
    }
}

/// The three last columns of a [`FirstOfEach`] query's selection: the partition's key
/// (`partition`, a column as SQL text such as `tasks.client_id`), the row's position in its
/// partition, ordered by `first` then `id` (columns as SQL text) in `direction` (`ASC` or
/// `DESC`), and how many rows its partition holds (before the cut). Only fixed column names and
/// words go into the text, never a value.
pub fn partition_position(
    partition: &str,
    first: &str,
    id: &str,
    direction: &str,
) -> diesel::expression::SqlLiteral<(
    diesel::sql_types::BigInt,
    diesel::sql_types::BigInt,
    diesel::sql_types::BigInt,
)> {
    diesel::dsl::sql(&format!(
        "{partition}, ROW_NUMBER() OVER (PARTITION BY {partition} ORDER BY {first} {direction}, \
         {id} {direction}) AS position, COUNT(*) OVER (PARTITION BY {partition})"
    ))
}

/// A row's place in a page per parent ([`FirstOfEach`]): its parent, its position there, and how
/// many rows the parent's list holds.
pub type Place = (i64, i64, i64);

/// A row read with its [`Place`] after its columns, split into the row (as it would be read
/// without it) and its place.
pub trait WithPlace {
    type Row;
    fn split_place(self) -> (Self::Row, Place);
}

macro_rules! with_place {
    ($name:ident) => {
        impl<$name> WithPlace for ($name, Place) {
            type Row = $name;
            fn split_place(self) -> ($name, Place) {
                self
            }
        }
    };
    ($($name:ident),+) => {
        impl<$($name),+> WithPlace for ($($name,)+ Place) {
            type Row = ($($name),+);
            fn split_place(self) -> (Self::Row, Place) {
                #[expect(non_snake_case, reason = "one binding per type parameter")]
                let ($($name,)+ place) = self;
                (($($name),+), place)
            }
        }
    };
}

with_place!(A);
with_place!(A, B);
with_place!(A, B, C, D, E, F);
with_place!(A, B, C, D, E, F, G);

/// The rows a [`FirstOfEach`] query read (each with its [`Place`]), by parent then in each
/// page's order, and each parent's total, as (parent, total), in the same parent order.
pub fn by_parent<T: WithPlace>(rows: Vec<T>) -> (Vec<T::Row>, Vec<(i64, i64)>) {
    let mut rows: Vec<(T::Row, Place)> = rows.into_iter().map(WithPlace::split_place).collect();
    rows.sort_unstable_by_key(|(_, (parent, position, _))| (*parent, *position));
    let mut totals: Vec<(i64, i64)> = rows
        .iter()
        .map(|(_, (parent, _, total))| (*parent, *total))
        .collect();
    totals.dedup();
    (rows.into_iter().map(|(row, _)| row).collect(), totals)
}

/// The (parent, total) of each row a counting [`FirstOfEach`] query read (one row per parent).
pub fn parent_totals(rows: Vec<Place>) -> Vec<(i64, i64)> {
    rows.into_iter()
        .map(|(parent, _, total)| (parent, total))
        .collect()
}

/// A page of each of several parents' lists (each client's tasks, each task's history).
#[derive(Debug, Clone)]
pub struct ParentPages<R> {
    /// The rows, by parent, each parent's in its page's order.
    pub rows: Vec<R>,
    /// How many rows each parent's whole list holds (a parent absent holds none), when the
    /// statement could count them: pages numbered per parent, without cursor.
    totals: Option<std::collections::HashMap<i64, i64>>,
}

impl<R> ParentPages<R> {
    /// No parent asked for.
    pub fn empty() -> Self {
        Self {
            rows: Vec::new(),
            totals: None,
        }
    }

    /// One parent's page, read by its own seek: no total.
    pub fn sought(rows: Vec<R>) -> Self {
        Self { rows, totals: None }
    }

    /// Pages numbered per parent ([`by_parent`]), with what their statement counted: each
    /// parent's whole list when the page had no cursor.
    pub fn numbered<K>(rows: Vec<R>, counted: Vec<(i64, i64)>, page: &Keyset<K>) -> Self {
        let whole = page.after.is_none() && page.before.is_none();
        Self {
            rows,
            totals: whole.then(|| counted.into_iter().collect()),
        }
    }

    /// How many rows `parent`'s whole list holds, when counted.
    pub fn total_of(&self, parent: i64) -> Option<i64> {
        let totals = self.totals.as_ref()?;
        Some(totals.get(&parent).copied().unwrap_or(0))
    }
}
