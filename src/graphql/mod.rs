//! The GraphQL schema: root types, the caller's identity as request data, and the limits.
//! Built apart from HTTP so tests can call `schema.execute(request)` directly. No diesel here:
//! data comes from `crate::db` functions.

use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema, SimpleObject};

use crate::config::GraphqlConfig;
use crate::db::Pool;

/// The schema type served at /graphql.
pub type RappelSchema = Schema<QueryRoot, EmptyMutation, EmptySubscription>;

/// Who is calling, resolved from the bearer token by the HTTP layer.
#[derive(Debug, Clone, Default)]
pub enum Caller {
    #[default]
    Anonymous,
}

/// Root of every query.
pub struct QueryRoot;

/// The signed-in caller.
#[derive(SimpleObject)]
pub struct Viewer {
    /// `STAFF` or `CONTACT`.
    pub kind: String,
}

#[Object]
impl QueryRoot {
    /// The signed-in caller, or null when anonymous.
    async fn viewer(&self, ctx: &async_graphql::Context<'_>) -> Option<Viewer> {
        match ctx.data_opt::<Caller>() {
            None | Some(Caller::Anonymous) => None,
        }
    }
}

/// Builds the schema with the configured limits; `pool` is reachable from every resolver.
pub fn build_schema(pool: Option<Pool>, config: &GraphqlConfig) -> RappelSchema {
    let mut builder = Schema::build(QueryRoot, EmptyMutation, EmptySubscription)
        .limit_depth(config.max_depth)
        .limit_complexity(config.max_complexity);
    if !config.introspection {
        builder = builder.disable_introspection();
    }
    if !config.suggestions {
        builder = builder.disable_suggestions();
    }
    if let Some(pool) = pool {
        builder = builder.data(pool);
    }
    builder.finish()
}

/// The SDL that `rappel export-schema` prints and `schema.graphql` holds.
pub fn schema_sdl() -> String {
    build_schema(None, &GraphqlConfig::default()).sdl()
}
