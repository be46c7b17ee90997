//! Keyset (seek) pagination shared by the list queries: a page is the rows strictly between
//! two sort keys, the first `limit` of them or the last `limit` of them. No OFFSET: a page
//! costs the same however deep it is, and rows added meanwhile do not shift it.

/// Which rows of an ordered list one page reads. `K` is the list's sort key (for example the
/// due date then the id). The query returns rows in the list's order when reading forward and
/// in reverse order when reading `backward` (the caller reverses them).
#[derive(Debug, Clone)]
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

/// Applies a keyset on a two-column order (`$first`, then `$second`, a unique id) whose
/// direction is chosen at run time (`$descending`: both columns descending) to a boxed query:
/// the seek filters, the order and the limit. "After" follows the list's direction.
#[macro_export]
macro_rules! seek_two_dir {
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
        if page.backward != descending {
            query
                .order(($first.desc(), $second.desc()))
                .limit(page.limit)
        } else {
            query.order(($first.asc(), $second.asc())).limit(page.limit)
        }
    }};
}
