//! Firm mutations: the catalogue: categories, services and their items. Each resolver parses ids and inputs, calls one
//! operation of `crate::ops::catalog` with the caller as actor, and maps its answer.

use async_graphql::{Context, ID, InputObject, Object};

use super::{CreateServiceInput, UpdateServiceInput};
use crate::domain::gid::Kind;
use crate::graphql::context::{StaffGuard, parse_id, visible_to_staff};
use crate::graphql::door::{actor, env};
use crate::graphql::firm::types::{Category, Service};
use crate::ops;

/// The catalogue: categories, services and their items.
#[derive(Default)]
pub struct CatalogMutation;

#[Object(guard = "StaffGuard", visible = "visible_to_staff")]
impl CatalogMutation {
    #[graphql(visible = "visible_to_staff")]
    /// Creates a category; its name must not be blank (BAD_USER_INPUT).
    async fn create_category(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The new category.")] input: CreateCategoryInput,
    ) -> async_graphql::Result<Category> {
        let row = ops::catalog::create_category(env(ctx)?, &actor(ctx)?, &input.name).await?;
        Ok(Category(row))
    }

    #[graphql(visible = "visible_to_staff")]
    /// Renames a category.
    async fn rename_category(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The category and its new name.")] input: RenameCategoryInput,
    ) -> async_graphql::Result<Category> {
        let actor = actor(ctx)?;
        let id = parse_id(&input.id, Kind::Category)?;
        let row = ops::catalog::rename_category(env(ctx)?, &actor, id, &input.name).await?;
        Ok(Category(row))
    }

    #[graphql(visible = "visible_to_staff")]
    /// Creates a service with its items (BAD_USER_INPUT naming the field refused).
    async fn create_service(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The new service.")] input: CreateServiceInput,
    ) -> async_graphql::Result<Service> {
        let actor = actor(ctx)?;
        let input = input.to_op()?;
        let row = ops::catalog::create_service(env(ctx)?, &actor, &input).await?;
        Ok(Service(row))
    }

    /// Updates a service. Items with an `id` are kept (edited in place), items without are
    /// added, items left out are archived. Occurrences already generated keep their text.
    #[graphql(visible = "visible_to_staff")]
    async fn update_service(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "The service's id and new values (every field is checked; BAD_USER_INPUT names the one refused)."
        )]
        input: UpdateServiceInput,
    ) -> async_graphql::Result<Service> {
        let actor = actor(ctx)?;
        let id = parse_id(&input.id, Kind::Service)?;
        let input = input.values.to_op()?;
        let row = ops::catalog::update_service(env(ctx)?, &actor, id, &input).await?;
        Ok(Service(row))
    }

    /// Puts a service's items in the given order (every live item, once).
    #[graphql(visible = "visible_to_staff")]
    async fn reorder_service_items(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The service and its items in the new order.")]
        input: ReorderServiceItemsInput,
    ) -> async_graphql::Result<Service> {
        let actor = actor(ctx)?;
        let service_id = parse_id(&input.service_id, Kind::Service)?;
        let order = input
            .item_ids
            .iter()
            .map(|id| parse_id(id, Kind::ServiceItem))
            .collect::<Result<Vec<_>, _>>()?;
        let row =
            ops::catalog::reorder_service_items(env(ctx)?, &actor, service_id, &order).await?;
        Ok(Service(row))
    }

    /// Archives a service: its lines stop being offered for new missions; signed missions keep
    /// generating from it.
    #[graphql(visible = "visible_to_staff")]
    async fn archive_service(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The service's id; NOT_FOUND when the firm has no such service.")] id: ID,
    ) -> async_graphql::Result<Service> {
        let actor = actor(ctx)?;
        let id = parse_id(&id, Kind::Service)?;
        Ok(Service(
            ops::catalog::archive_service(env(ctx)?, &actor, id).await?,
        ))
    }
}

/// A new category.
#[derive(InputObject)]
pub struct CreateCategoryInput {
    /// The category's name; not blank (BAD_USER_INPUT).
    pub name: String,
}

/// A category and its new name.
#[derive(InputObject)]
pub struct RenameCategoryInput {
    /// The category's id; NOT_FOUND when the firm has no such category.
    pub id: ID,
    /// The new name; not blank (BAD_USER_INPUT).
    pub name: String,
}

/// A service's items in a new order.
#[derive(InputObject)]
pub struct ReorderServiceItemsInput {
    /// The service's id; NOT_FOUND when the firm has no such service.
    pub service_id: ID,
    /// Every live item of the service, once each, in the new order (BAD_USER_INPUT otherwise).
    pub item_ids: Vec<ID>,
}
