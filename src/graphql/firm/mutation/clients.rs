//! Firm mutations: clients and their contacts. Each resolver parses ids and inputs, calls one
//! operation of `crate::ops::clients` with the caller as actor, and maps its answer.

use async_graphql::{Context, ID, Object};

use super::{AddContactInput, CreateClientInput, UpdateClientInput, UpdateContactInput};
use crate::domain::gid::Kind;
use crate::graphql::context::{StaffGuard, parse_id, visible_to_staff};
use crate::graphql::door::{actor, env};
use crate::graphql::firm::types::{Client, Contact};
use crate::ops;

/// Clients and their contacts.
#[derive(Default)]
pub struct ClientsMutation;

#[Object(guard = "StaffGuard", visible = "visible_to_staff")]
impl ClientsMutation {
    #[graphql(visible = "visible_to_staff")]
    /// Creates a client (BAD_USER_INPUT naming the field refused).
    async fn create_client(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The new client.")] input: CreateClientInput,
    ) -> async_graphql::Result<Client> {
        let row = ops::clients::create_client(env(ctx)?, &actor(ctx)?, &input.to_op()).await?;
        Ok(Client(row))
    }

    #[graphql(visible = "visible_to_staff")]
    /// Changes a client's name and reference.
    async fn update_client(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "The client's id and new values (every field is checked; BAD_USER_INPUT names the one refused)."
        )]
        input: UpdateClientInput,
    ) -> async_graphql::Result<Client> {
        let actor = actor(ctx)?;
        let id = parse_id(&input.id, Kind::Client)?;
        let row = ops::clients::update_client(env(ctx)?, &actor, id, &input.values.to_op()).await?;
        Ok(Client(row))
    }

    /// Archives a client: its contacts' tokens and sign-in links end at once (and stay
    /// ended if the client is brought back), so they lose the client view.
    #[graphql(visible = "visible_to_staff")]
    async fn archive_client(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The client's id; NOT_FOUND when the firm has no such client.")] id: ID,
    ) -> async_graphql::Result<Client> {
        let actor = actor(ctx)?;
        let id = parse_id(&id, Kind::Client)?;
        Ok(Client(
            ops::clients::archive_client(env(ctx)?, &actor, id).await?,
        ))
    }

    #[graphql(visible = "visible_to_staff")]
    /// Adds a contact to a client; it receives the client's requests by email.
    async fn add_contact(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The client and the contact's values.")] input: AddContactInput,
    ) -> async_graphql::Result<Contact> {
        let actor = actor(ctx)?;
        let client_id = parse_id(&input.client_id, Kind::Client)?;
        let row = ops::clients::add_contact(env(ctx)?, &actor, client_id, &input.to_op()).await?;
        Ok(Contact(row))
    }

    #[graphql(visible = "visible_to_staff")]
    /// Changes a contact's name, email, language and notifications.
    async fn update_contact(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "The contact's id and new values (every field is checked; BAD_USER_INPUT names the one refused)."
        )]
        input: UpdateContactInput,
    ) -> async_graphql::Result<Contact> {
        let actor = actor(ctx)?;
        let id = parse_id(&input.id, Kind::Contact)?;
        let row = ops::clients::update_contact(env(ctx)?, &actor, id, &input.to_op()).await?;
        Ok(Contact(row))
    }

    #[graphql(visible = "visible_to_staff")]
    /// Archives a contact: no more email, and its tokens and sign-in links end.
    async fn archive_contact(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The contact's id; NOT_FOUND when the firm has no such contact.")] id: ID,
    ) -> async_graphql::Result<Contact> {
        let actor = actor(ctx)?;
        let id = parse_id(&id, Kind::Contact)?;
        Ok(Contact(
            ops::clients::archive_contact(env(ctx)?, &actor, id).await?,
        ))
    }
}
