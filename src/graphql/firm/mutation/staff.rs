//! Firm mutations: the firm's members and contacts' access tokens (admins only). Each resolver parses ids and inputs, calls one
//! operation of `crate::ops::staff` with the caller as actor, and maps its answer.

use async_graphql::{Context, ID, InputObject, Object};

use super::StaffInvitation;
use crate::config::AuthConfig;
use crate::domain::Role;
use crate::domain::gid::Kind;
use crate::graphql::context::{AdminGuard, parse_id, visible_to_staff};
use crate::graphql::door::{actor, env};
use crate::graphql::firm::types::StaffMember;
use crate::ops;

/// The firm's members and contacts' access tokens (admins only).
#[derive(Default)]
pub struct StaffMutation;

#[Object(guard = "StaffGuard", visible = "visible_to_staff")]
impl StaffMutation {
    /// Adds a member to the firm (admins only) and returns a temporary password, shown once.
    #[graphql(guard = "AdminGuard", visible = "visible_to_staff")]
    async fn invite_staff_member(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The new member.")] input: InviteStaffMemberInput,
    ) -> async_graphql::Result<StaffInvitation> {
        let invitation = ops::staff::invite_staff_member(
            env(ctx)?,
            &actor(ctx)?,
            &input.email,
            &input.name,
            input.role,
        )
        .await?;
        Ok(StaffInvitation {
            member: StaffMember(invitation.member),
            temporary_password: invitation.temporary_password,
        })
    }

    /// Removes a member from the firm (admins only); their sessions end at once. The last
    /// admin cannot be removed.
    #[graphql(guard = "AdminGuard", visible = "visible_to_staff")]
    async fn remove_staff_member(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "The staff member's id; NOT_FOUND when the firm has no such staff member."
        )]
        id: ID,
    ) -> async_graphql::Result<bool> {
        let actor = actor(ctx)?;
        let id = parse_id(&id, Kind::StaffMember)?;
        ops::staff::remove_staff_member(env(ctx)?, &actor, id).await?;
        Ok(true)
    }

    /// Creates a bearer token for a contact (admins only): for a client portal or an
    /// integration. Shown once; it opens the client view of that contact's client only.
    #[graphql(guard = "AdminGuard", visible = "visible_to_staff")]
    async fn create_contact_access_token(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The contact the token acts for.")] input: CreateContactAccessTokenInput,
    ) -> async_graphql::Result<String> {
        let actor = actor(ctx)?;
        let contact_id = parse_id(&input.contact_id, Kind::Contact)?;
        let lifetime = ctx
            .data::<AuthConfig>()
            .map(|config| config.contact_token_days)
            .unwrap_or(365);
        let session =
            ops::access::create_contact_access_token(env(ctx)?, &actor, contact_id, lifetime)
                .await?;
        Ok(session.token)
    }
}

/// A new member of the firm.
#[derive(InputObject)]
pub struct InviteStaffMemberInput {
    /// The member's email address (BAD_USER_INPUT when not an address; CONFLICT when taken).
    pub email: String,
    /// The member's display name; not blank.
    pub name: String,
    /// What the member may do; MEMBER by default.
    #[graphql(default_with = "Role::Member")]
    pub role: Role,
}

/// The contact a new access token acts for.
#[derive(InputObject)]
pub struct CreateContactAccessTokenInput {
    /// The id of the contact the token acts for; NOT_FOUND when the firm has no such contact.
    pub contact_id: ID,
}
