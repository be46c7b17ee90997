//! Null propagation as the GraphQL spec says (§6.4.4 "Handling Execution Errors"): a field that
//! raises an error answers null (async-graphql drops it from its parent instead), and a null in
//! a non-null position (a failed `T!` field or list item) makes its parent null in turn, up to
//! the nearest nullable field, or `data` itself. Each error is reported once, where it happened.
//! Only shapes the answer; never runs a resolver of its own. Its hooks are called by the
//! schema's extension ([`super::pipeline`]), one [`NullPropagation`] per request.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_graphql::extensions::{ExtensionContext, NextResolve, ResolveInfo};
use async_graphql::{QueryPathNode, QueryPathSegment, Response, ServerError, ServerResult, Value};

/// One segment of a response path: a response key (alias or name) or a list index.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Segment {
    Key(String),
    Index(usize),
}

fn path_of(node: &QueryPathNode<'_>) -> Vec<Segment> {
    let mut path: Vec<Segment> = std::iter::once(node)
        .chain(node.parents())
        .map(|node| match node.segment {
            QueryPathSegment::Name(name) => Segment::Key(name.to_string()),
            QueryPathSegment::Index(index) => Segment::Index(index),
        })
        .collect();
    path.reverse();
    path
}

#[derive(Default)]
struct Propagation {
    /// The type of each list being resolved (`[Item!]`), by path: its items' type. (The
    /// type async-graphql gives a list item is not reliable: it is always non-null.)
    list_types: std::collections::HashMap<Vec<Segment>, String>,
    /// Non-null positions that are null because of an error: their parents must be null too.
    nulled: HashSet<Vec<Segment>>,
    /// Errors of nullable fields, which now answer null: added to the response at the end.
    errors: Vec<ServerError>,
}

/// The spec's null propagation for one request (or one subscription's stream of answers).
#[derive(Default)]
pub(super) struct NullPropagation {
    state: Arc<Mutex<Propagation>>,
    /// Whether `state.nulled` holds anything: while not, and while fields succeed (nearly
    /// always), a field costs no lock and no path.
    nulled_any: Arc<AtomicBool>,
}

fn lock(state: &Mutex<Propagation>) -> MutexGuard<'_, Propagation> {
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Adds the errors of nullable fields, and nulls `data` when a non-null root field failed.
fn finish(state: &Mutex<Propagation>, nulled_any: &AtomicBool, mut response: Response) -> Response {
    nulled_any.store(false, Ordering::SeqCst);
    let mut state = lock(state);
    response.errors.append(&mut state.errors);
    if state.nulled.iter().any(|path| path.len() == 1) {
        response.data = Value::Null;
    }
    state.nulled.clear();
    state.list_types.clear();
    response
}

/// `[Item!]!` -> `Item!`.
fn item_type(list_type: &str) -> &str {
    let list = list_type.strip_suffix('!').unwrap_or(list_type);
    list.strip_prefix('[')
        .and_then(|inner| inner.strip_suffix(']'))
        .unwrap_or(list)
}

impl NullPropagation {
    /// The GraphQL type at `node`: the field's, or for a list item its list's item type.
    fn return_type<'a>(&self, node: &QueryPathNode<'_>, given: &'a str) -> Cow<'a, str> {
        let is_item = matches!(node.segment, QueryPathSegment::Index(_));
        let return_type = match (is_item, node.parent) {
            (true, Some(parent)) => lock(&self.state)
                .list_types
                .get(&path_of(parent))
                .map_or(Cow::Borrowed(given), |list| {
                    Cow::Owned(item_type(list).to_string())
                }),
            _ => Cow::Borrowed(given),
        };
        if return_type.starts_with('[') {
            lock(&self.state)
                .list_types
                .insert(path_of(node), return_type.to_string());
        }
        return_type
    }
}

impl NullPropagation {
    /// Finishes an answer: the errors of nullable fields added, `data` nulled when a non-null
    /// root field failed. Each answer of a subscription is finished this way too.
    pub(super) fn finish(&self, response: Response) -> Response {
        finish(&self.state, &self.nulled_any, response)
    }

    /// [`Self::finish`] for a stream that outlives the request's hook.
    pub(super) fn finisher(&self) -> impl Fn(Response) -> Response + Send + 'static {
        let (state, nulled_any) = (self.state.clone(), self.nulled_any.clone());
        move |response| finish(&state, &nulled_any, response)
    }

    /// Around every field and list item.
    pub(super) async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        let node = info.path_node;
        let given = info.return_type;
        // A list notes its type for its items before they resolve (only lists: a list item's
        // own type is looked up below, and only when it failed).
        if given.starts_with('[') {
            self.return_type(node, given);
        }
        let result = next.run(ctx, info).await;
        if result.is_ok() && !self.nulled_any.load(Ordering::SeqCst) {
            return result;
        }
        let non_null = self.return_type(node, given).ends_with('!');
        let mut state = lock(&self.state);
        let path = path_of(node);
        let child_nulled = result.is_ok()
            && state
                .nulled
                .iter()
                .any(|nulled| nulled.len() == path.len() + 1 && nulled.starts_with(&path));
        match result {
            Ok(value) if !child_nulled => Ok(value),
            // A non-null child is null: so is this field (its error is already reported).
            Ok(_) => {
                if non_null {
                    state.nulled.insert(path);
                    self.nulled_any.store(true, Ordering::SeqCst);
                }
                Ok(Some(Value::Null))
            }
            Err(error) if non_null => {
                // The parent reports the error (async-graphql adds it) and is nulled above.
                state.nulled.insert(path);
                self.nulled_any.store(true, Ordering::SeqCst);
                Err(error)
            }
            Err(error) => {
                state.errors.push(error);
                Ok(Some(Value::Null))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema};
    use serde_json::{Value as Json, json};

    use crate::config::GraphqlConfig;
    use crate::graphql::pipeline::Pipeline;

    struct Root;
    struct Parent;
    struct Item(i32);

    #[Object]
    impl Root {
        async fn ok(&self) -> i32 {
            1
        }
        async fn nullable_fails(&self) -> async_graphql::Result<Option<i32>> {
            Err("nullable root field".into())
        }
        async fn parent(&self) -> Option<Parent> {
            Some(Parent)
        }
        async fn strict_parent(&self) -> Parent {
            Parent
        }
        async fn items(&self) -> Option<Vec<Item>> {
            Some(vec![Item(1), Item(2)])
        }
        async fn loose_items(&self) -> Vec<Option<Item>> {
            vec![Some(Item(1)), Some(Item(2))]
        }
    }

    #[Object]
    impl Parent {
        async fn fine(&self) -> i32 {
            1
        }
        async fn strict_fails(&self) -> async_graphql::Result<i32> {
            Err("non-null field".into())
        }
        async fn nullable_fails(&self) -> async_graphql::Result<Option<i32>> {
            Err("nullable field".into())
        }
        async fn child(&self) -> Parent {
            Parent
        }
    }

    #[Object]
    impl Item {
        async fn value(&self) -> async_graphql::Result<i32> {
            if self.0 == 2 {
                Err("second item".into())
            } else {
                Ok(self.0)
            }
        }
    }

    async fn run(query: &str) -> (Json, Vec<Json>) {
        let schema = Schema::build(Root, EmptyMutation, EmptySubscription)
            .extension(Pipeline::from_config(&GraphqlConfig::default()))
            .finish();
        let response = serde_json::to_value(schema.execute(query).await).expect("serializes");
        let paths = response["errors"]
            .as_array()
            .map(|errors| errors.iter().map(|error| error["path"].clone()).collect())
            .unwrap_or_default();
        (response["data"].clone(), paths)
    }

    #[tokio::test]
    async fn an_error_in_a_nullable_field_makes_that_field_null_not_absent() {
        let (data, paths) = run("{ ok nullableFails }").await;
        assert_eq!(data, json!({ "ok": 1, "nullableFails": null }));
        assert_eq!(paths, [json!(["nullableFails"])]);
        let (data, paths) = run("{ ok parent { fine nullableFails } }").await;
        assert_eq!(
            data,
            json!({ "ok": 1, "parent": { "fine": 1, "nullableFails": null } })
        );
        assert_eq!(paths, [json!(["parent", "nullableFails"])]);
    }

    #[tokio::test]
    async fn an_error_in_a_non_null_field_nulls_the_nearest_nullable_parent() {
        let (data, paths) = run("{ ok parent { fine strictFails } }").await;
        assert_eq!(data, json!({ "ok": 1, "parent": null }));
        assert_eq!(paths, [json!(["parent", "strictFails"])], "reported once");
        let (data, paths) = run("{ ok parent { fine child { child { strictFails } } } }").await;
        assert_eq!(data, json!({ "ok": 1, "parent": null }));
        assert_eq!(paths, [json!(["parent", "child", "child", "strictFails"])]);
    }

    #[tokio::test]
    async fn a_null_reaching_a_non_null_root_field_nulls_data() {
        let (data, paths) = run("{ ok strictParent { child { strictFails } } }").await;
        assert_eq!(data, Json::Null);
        assert_eq!(paths, [json!(["strictParent", "child", "strictFails"])]);
    }

    #[tokio::test]
    async fn a_failed_non_null_list_item_nulls_the_nullable_list() {
        let (data, paths) = run("{ ok items { value } }").await;
        assert_eq!(data, json!({ "ok": 1, "items": null }));
        assert_eq!(paths, [json!(["items", 1, "value"])]);
    }

    #[tokio::test]
    async fn a_failed_nullable_list_item_is_null_and_its_siblings_stay() {
        let (data, paths) = run("{ ok looseItems { value } }").await;
        assert_eq!(
            data,
            json!({ "ok": 1, "looseItems": [{ "value": 1 }, null] })
        );
        assert_eq!(paths, [json!(["looseItems", 1, "value"])]);
    }

    #[tokio::test]
    async fn answers_without_errors_are_untouched() {
        let (data, paths) =
            run("{ ok parent { fine child { fine } } looseItems { __typename } }").await;
        assert_eq!(
            data,
            json!({ "ok": 1, "parent": { "fine": 1, "child": { "fine": 1 } },
                    "looseItems": [{ "__typename": "Item" }, { "__typename": "Item" }] })
        );
        assert!(paths.is_empty());
    }
}
