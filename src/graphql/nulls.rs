//! Null propagation as the GraphQL spec says (§6.4.4 "Handling Execution Errors"): a field that
//! raises an error answers null (async-graphql drops it from its parent instead), and a null in
//! a non-null position (a failed `T!` field or list item) makes its parent null in turn, up to
//! the nearest nullable field, or `data` itself. Each error is reported once, where it happened.
//! Only shapes the answer; never runs a resolver of its own.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextResolve, NextSubscribe,
    ResolveInfo,
};
use async_graphql::{QueryPathNode, QueryPathSegment, Response, ServerError, ServerResult, Value};
use futures_util::StreamExt as _;
use futures_util::stream::BoxStream;

/// Registers the spec's null propagation on a schema.
pub struct NullPropagation;

impl ExtensionFactory for NullPropagation {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(NullPropagationExtension::default())
    }
}

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
    /// Non-null positions that are null because of an error: their parents must be null too.
    nulled: HashSet<Vec<Segment>>,
    /// Errors of nullable fields, which now answer null: added to the response at the end.
    errors: Vec<ServerError>,
}

#[derive(Default)]
struct NullPropagationExtension {
    state: Arc<Mutex<Propagation>>,
}

fn lock(state: &Mutex<Propagation>) -> MutexGuard<'_, Propagation> {
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Adds the errors of nullable fields, and nulls `data` when a non-null root field failed.
fn finish(state: &Mutex<Propagation>, mut response: Response) -> Response {
    let mut state = lock(state);
    response.errors.append(&mut state.errors);
    if state.nulled.iter().any(|path| path.len() == 1) {
        response.data = Value::Null;
    }
    state.nulled.clear();
    response
}

#[async_graphql::async_trait::async_trait]
impl Extension for NullPropagationExtension {
    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let response = next.run(ctx, operation_name).await;
        finish(&self.state, response)
    }

    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        // Each event of a subscription is one answer, not finished by `execute`.
        let state = self.state.clone();
        next.run(ctx, stream)
            .map(move |response| finish(&state, response))
            .boxed()
    }

    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        let node = info.path_node;
        let non_null = info.return_type.ends_with('!');
        let result = next.run(ctx, info).await;
        let mut state = lock(&self.state);
        if state.nulled.is_empty() && result.is_ok() {
            return result;
        }
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
                }
                Ok(Some(Value::Null))
            }
            Err(error) if non_null => {
                // The parent reports the error (async-graphql adds it) and is nulled above.
                state.nulled.insert(path);
                Err(error)
            }
            Err(error) => {
                state.errors.push(error);
                Ok(Some(Value::Null))
            }
        }
    }
}
