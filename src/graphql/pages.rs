//! Relay connections for every list that can grow, through async-graphql's `connection`
//! module: `edges { cursor node }`, `nodes`, `pageInfo` (both directions) and `totalCount`,
//! paged with `first`/`after` or `last`/`before`. Cursors are opaque (base64 of the row's sort
//! key) and pages are keyset seeks, never OFFSET. The page size is bounded by
//! `[graphql] default_page_size` and `max_page_size`. No diesel here.

use std::sync::Arc;

use async_graphql::connection::{Connection, CursorType, Edge, EmptyFields, OpaqueCursor};
use std::borrow::Cow;

use async_graphql::parser::types::Field;
use async_graphql::registry::{MetaType, Registry};
use async_graphql::{
    Context, ContextSelectionSet, Object, OutputType, Positioned, ServerResult, Value,
};
use futures_util::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::config::GraphqlConfig;
use crate::db::page::Keyset;
use crate::db::{DbResult, Pool};
use crate::domain::{RequestStatus, TaskStatus};
use crate::error::AppError;
use crate::graphql::context::{Caller, caller};
use crate::graphql::loaders::{
    AnswerCount, HistoryCountOf, WorkCountOfClient, client_loader, firm_loader,
};

/// The page sizes of the schema, from `[graphql]`.
#[derive(Debug, Clone, Copy)]
pub struct PageSizes {
    /// Rows in a page when neither `first` nor `last` is given.
    pub default: usize,
    /// Most rows `first` or `last` may ask for.
    pub max: usize,
}

impl PageSizes {
    pub fn from_config(config: &GraphqlConfig) -> Self {
        Self {
            default: config.default_page_size,
            max: config.max_page_size,
        }
    }
}

impl Default for PageSizes {
    fn default() -> Self {
        Self::from_config(&GraphqlConfig::default())
    }
}

/// The one description of each page argument (`first`, `after`, `last`, `before`) of every
/// connection field, written by [`PageArgumentDocs`].
const PAGE_ARGUMENT_DOCS: [(&str, &str); 4] = [
    (
        "first",
        "Return the first N items (0 up to the largest page), after `after` when given. Not \
         with `last`; neither: the default page size.",
    ),
    (
        "after",
        "Start after this cursor (an edge's `cursor` or `pageInfo.endCursor` of this same list).",
    ),
    (
        "last",
        "Return the last N items (0 up to the largest page), before `before` when given. Not \
         with `first`.",
    ),
    (
        "before",
        "End before this cursor (an edge's `cursor` or `pageInfo.startCursor` of this same list).",
    ),
];

/// Not a type of the schema: registered after the roots (`register_output_type`), it gives
/// the page arguments of every connection field their description, so the connection fields
/// declare `first`, `after`, `last` and `before` bare and the text lives here once.
pub struct PageArgumentDocs;

impl OutputType for PageArgumentDocs {
    fn type_name() -> Cow<'static, str> {
        Cow::Borrowed("Boolean")
    }

    fn create_type_info(registry: &mut Registry) -> String {
        for meta in registry.types.values_mut() {
            let (MetaType::Object { fields, .. } | MetaType::Interface { fields, .. }) = meta
            else {
                continue;
            };
            for field in fields.values_mut() {
                if !field.ty.trim_end_matches('!').ends_with("Connection") {
                    continue;
                }
                for (name, text) in PAGE_ARGUMENT_DOCS {
                    if let Some(argument) = field.args.get_mut(name)
                        && argument.description.is_none()
                    {
                        argument.description = Some(text.to_string());
                    }
                }
            }
        }
        Self::type_name().into_owned()
    }

    async fn resolve(
        &self,
        _ctx: &ContextSelectionSet<'_>,
        _field: &Positioned<Field>,
    ) -> ServerResult<Value> {
        Ok(Value::Null)
    }
}

/// The pagination arguments of a connection field, as the caller gave them.
#[derive(Debug, Default)]
pub struct PageArgs {
    pub first: Option<i32>,
    pub after: Option<String>,
    pub last: Option<i32>,
    pub before: Option<String>,
}

/// A connection of `Node`s whose cursor is the opaque sort key `K`, with `totalCount`.
type Relay<K, Node> = Connection<OpaqueCursor<K>, Node, TotalCount, EmptyFields>;

/// async-graphql's connection, with a description for its type (the `connection` module
/// names the type but cannot describe it): resolved exactly as the connection is.
pub struct Page<K, Node>(Relay<K, Node>)
where
    K: Serialize + DeserializeOwned + Send + Sync,
    Node: OutputType;

impl<K, Node> OutputType for Page<K, Node>
where
    K: Serialize + DeserializeOwned + Send + Sync,
    Node: OutputType,
{
    fn type_name() -> Cow<'static, str> {
        Relay::<K, Node>::type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        let qualified = Relay::<K, Node>::create_type_info(registry);
        let name = Self::type_name();
        let node = Node::type_name();
        if let Some(MetaType::Object { description, .. }) = registry.types.get_mut(name.as_ref())
            && description.is_none()
        {
            *description = Some(format!(
                "One page of a list of {node} items (a Relay cursor connection): the items \
                 as `nodes` or as `edges` with their cursors, `pageInfo` to ask for the next or \
                 previous page, and `totalCount` for the whole list."
            ));
        }
        qualified
    }

    async fn resolve(
        &self,
        ctx: &ContextSelectionSet<'_>,
        field: &Positioned<Field>,
    ) -> ServerResult<Value> {
        self.0.resolve(ctx, field).await
    }
}

/// A page request read from [`PageArgs`]: the keyset to seek and the page size.
pub struct PageRequest<K> {
    pub keyset: Keyset<K>,
    pub size: usize,
}

impl PageArgs {
    /// Checks the arguments and reads the cursors: `first` and `last` are exclusive, each
    /// between 0 and the maximum page size; a cursor must be one Rappel gave. Every refusal
    /// is BAD_USER_INPUT naming the argument.
    pub fn read<K>(self, ctx: &Context<'_>) -> Result<PageRequest<K>, AppError>
    where
        K: Serialize + DeserializeOwned,
    {
        let sizes = ctx.data_opt::<PageSizes>().copied().unwrap_or_default();
        let checked = |name: &str, value: i32| -> Result<usize, AppError> {
            usize::try_from(value)
                .ok()
                .filter(|size| *size <= sizes.max)
                .ok_or_else(|| {
                    AppError::bad_input(
                        name,
                        format!(
                            "{name} must be between 0 and {} (the largest page), not {value}",
                            sizes.max
                        ),
                    )
                })
        };
        let (backward, size) = match (self.first, self.last) {
            (Some(_), Some(_)) => {
                return Err(AppError::bad_input(
                    "last",
                    "give first (with after) or last (with before), not both",
                ));
            }
            (Some(first), None) => (false, checked("first", first)?),
            (None, Some(last)) => (true, checked("last", last)?),
            (None, None) => (false, sizes.default),
        };
        let cursor = |name: &str, text: Option<String>| -> Result<Option<K>, AppError> {
            text.map(|text| {
                OpaqueCursor::<K>::decode_cursor(&text)
                    .map(|cursor| cursor.0)
                    .map_err(|_| {
                        AppError::bad_input(
                            name,
                            format!("{name} is not a cursor of this list given by Rappel"),
                        )
                    })
            })
            .transpose()
        };
        Ok(PageRequest {
            keyset: Keyset {
                after: cursor("after", self.after)?,
                before: cursor("before", self.before)?,
                backward,
                limit: i64::try_from(size).unwrap_or(i64::MAX).saturating_add(1),
            },
            size,
        })
    }
}

impl<K> PageRequest<K> {
    /// Builds the connection from the rows the keyset query returned (`size + 1` at most, in
    /// reverse order when reading backward): `key` gives a row's sort key, `node` its GraphQL
    /// object.
    pub fn connection<Row, Node>(
        self,
        mut rows: Vec<Row>,
        total: TotalCount,
        key: impl Fn(&Row) -> K,
        node: impl Fn(Row) -> Node,
    ) -> Page<K, Node>
    where
        K: Serialize + DeserializeOwned + Send + Sync,
        Node: OutputType,
    {
        let more = rows.len() > self.size;
        // A first page (no cursor) that is not cut holds the whole list: its length is the
        // count, and no count statement runs.
        let total = match total.0 {
            Counter::Query(_)
            | Counter::AnswersOf(_)
            | Counter::TasksOfClient(_)
            | Counter::RequestsOfClient(_)
            | Counter::HistoryOf(_)
                if !more && self.keyset.after.is_none() && self.keyset.before.is_none() =>
            {
                TotalCount(Counter::Known(
                    i64::try_from(rows.len()).unwrap_or(i64::MAX),
                ))
            }
            _ => total,
        };
        rows.truncate(self.size);
        let (has_previous_page, has_next_page) = if self.keyset.backward {
            rows.reverse();
            (more, self.keyset.before.is_some())
        } else {
            (self.keyset.after.is_some(), more)
        };
        let mut connection =
            Connection::with_additional_fields(has_previous_page, has_next_page, total);
        connection.edges.extend(
            rows.into_iter()
                .map(|row| Edge::new(OpaqueCursor(key(&row)), node(row))),
        );
        Page(connection)
    }
}

impl<K> PageRequest<K>
where
    K: Ord + Serialize + DeserializeOwned + Send + Sync,
{
    /// Builds the connection of a parent's own list (a client's contacts, a category's
    /// services...), loaded whole for every parent of the level in one statement: the rows are
    /// ordered by `key` and the page is cut from them, so cursors and `pageInfo` behave exactly
    /// as a seek would.
    pub fn connection_of_loaded<Row, Node>(
        self,
        mut rows: Vec<Row>,
        key: impl Fn(&Row) -> K,
        node: impl Fn(Row) -> Node,
    ) -> Page<K, Node>
    where
        Node: OutputType,
    {
        let total = TotalCount(Counter::Known(
            i64::try_from(rows.len()).unwrap_or(i64::MAX),
        ));
        rows.sort_by_key(|row| key(row));
        let keyset = &self.keyset;
        rows.retain(|row| {
            let row_key = key(row);
            keyset.after.as_ref().is_none_or(|after| row_key > *after)
                && keyset
                    .before
                    .as_ref()
                    .is_none_or(|before| row_key < *before)
        });
        if keyset.backward {
            rows.reverse();
        }
        rows.truncate(usize::try_from(keyset.limit).unwrap_or(usize::MAX));
        self.connection(rows, total, key, node)
    }
}

type CountFn = dyn Fn(Pool) -> BoxFuture<'static, DbResult<i64>> + Send + Sync;

/// `totalCount` of a connection: counted only when asked for, with the list's filters.
pub struct TotalCount(Counter);

enum Counter {
    /// A count query of a top-level list.
    Query(Arc<CountFn>),
    /// The answers of a request: counted for every request of the level in one statement.
    AnswersOf(i64),
    /// A client's tasks: counted for every client of the level in one statement.
    TasksOfClient(WorkCountOfClient<TaskStatus>),
    /// A client's requests: counted for every client of the level in one statement.
    RequestsOfClient(WorkCountOfClient<RequestStatus>),
    /// An owner's history: counted for every owner of the level in one statement.
    HistoryOf(HistoryCountOf),
    /// A list loaded whole: its length.
    Known(i64),
}

impl TotalCount {
    /// The number of answers of a request (as the caller may see them).
    pub fn answers_of(request_id: i64) -> Self {
        Self(Counter::AnswersOf(request_id))
    }

    /// A count already known.
    pub fn known(count: i64) -> Self {
        Self(Counter::Known(count))
    }

    /// The number of a client's tasks matching a status and filter.
    pub fn tasks_of_client(key: WorkCountOfClient<TaskStatus>) -> Self {
        Self(Counter::TasksOfClient(key))
    }

    /// The number of a client's requests matching a status and filter.
    pub fn requests_of_client(key: WorkCountOfClient<RequestStatus>) -> Self {
        Self(Counter::RequestsOfClient(key))
    }

    /// The number of entries of an owner's history matching a filter.
    pub fn history_of(key: HistoryCountOf) -> Self {
        Self(Counter::HistoryOf(key))
    }

    /// A count run by `count` on a connection of the schema's pool when the field is read.
    pub fn new(
        count: impl Fn(Pool) -> BoxFuture<'static, DbResult<i64>> + Send + Sync + 'static,
    ) -> Self {
        Self(Counter::Query(Arc::new(count)))
    }
}

#[Object(name = "ConnectionTotalCount")]
impl TotalCount {
    /// How many items the list holds with these filters, across every page.
    async fn total_count(&self, ctx: &Context<'_>) -> async_graphql::Result<i32> {
        let count = match &self.0 {
            Counter::Query(count) => {
                let pool = ctx
                    .data::<Pool>()
                    .map_err(|_| AppError::Internal("no database in the schema data".into()))?
                    .clone();
                count(pool).await.map_err(AppError::from)?
            }
            Counter::Known(count) => *count,
            Counter::AnswersOf(request_id) => {
                let key = AnswerCount(*request_id);
                let counted = match caller(ctx) {
                    Caller::Staff(_) => firm_loader(ctx)?.load_one(key).await?,
                    _ => client_loader(ctx)?.load_one(key).await?,
                };
                counted.unwrap_or_default()
            }
            Counter::TasksOfClient(key) => firm_loader(ctx)?
                .load_one(key.clone())
                .await?
                .unwrap_or_default(),
            Counter::RequestsOfClient(key) => firm_loader(ctx)?
                .load_one(key.clone())
                .await?
                .unwrap_or_default(),
            Counter::HistoryOf(key) => firm_loader(ctx)?
                .load_one(key.clone())
                .await?
                .unwrap_or_default(),
        };
        Ok(i32::try_from(count).unwrap_or(i32::MAX))
    }
}
