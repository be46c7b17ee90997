//! Replies by email in the firm view: the replies held for the firm to decide
//! (`firm { heldReplies }`: a sender who is not a contact of the client, or a failed DMARC),
//! and the two decisions, `acceptHeldReply(id)` and `rejectHeldReply(id)`. Staff only; a
//! contact's schema has none of these names. Resolvers parse, call `crate::ops::replies`, map.

use async_graphql::{Context, ID, Object};

use crate::db::replies::InboundMessage;
use crate::domain::gid::Kind;
use crate::graphql::context::{StaffGuard, gid, parse_id, visible_to_staff};
use crate::graphql::door::{actor, env};
use crate::graphql::firm::types::utc;
use crate::graphql::scalars::DateTime;
use crate::ops;

/// An email received at a reply address and held for the firm: it answers nothing until
/// someone accepts it.
pub struct HeldReply(pub InboundMessage);

/// A reply by email held for the firm to accept or reject: a sender who is not a contact of
/// the client, or a failed DMARC check.
#[Object(guard = "StaffGuard", visible = "visible_to_staff")]
impl HeldReply {
    /// The held reply's id.
    async fn id(&self) -> ID {
        gid(Kind::HeldReply, self.0.id)
    }
    /// The request whose reply address it was sent to.
    async fn request_id(&self) -> ID {
        gid(Kind::InformationRequest, self.0.request_id)
    }
    /// The contact that reply address was given to (accepting answers as this contact).
    async fn contact_id(&self) -> ID {
        gid(Kind::Contact, self.0.contact_id)
    }
    /// The `From` address.
    async fn sender(&self) -> &str {
        &self.0.sender
    }
    /// The email's subject.
    async fn subject(&self) -> &str {
        &self.0.subject
    }
    /// Why it was held.
    async fn reason(&self) -> Option<&str> {
        self.0.reason.as_deref()
    }
    /// HELD, then ACCEPTED, REJECTED or REFUSED (accepted, but the request took no answer).
    async fn status(&self) -> &str {
        &self.0.outcome
    }
    /// What the firm's mail server said (`dmarc=pass spf=pass dkim=pass`), or `none`.
    async fn authentication(&self) -> &str {
        &self.0.authentication
    }
    /// When Rappel received it.
    async fn received_at(&self) -> DateTime {
        utc(self.0.received_at)
    }
}

/// Deciding held replies.
#[derive(Default)]
pub struct RepliesMutation;

#[Object(guard = "StaffGuard", visible = "visible_to_staff")]
impl RepliesMutation {
    /// Accepts a held reply: its text and files answer the request as the contact its reply
    /// address was given to, and that contact gets the confirmation email.
    #[graphql(visible = "visible_to_staff")]
    async fn accept_held_reply(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The held reply's id; NOT_FOUND when the firm has no such reply.")] id: ID,
    ) -> async_graphql::Result<HeldReply> {
        let actor = actor(ctx)?;
        let id = parse_id(&id, Kind::HeldReply)?;
        let env = env(ctx)?;
        ops::replies::accept_held(env, &actor, id).await?;
        Ok(HeldReply(ops::replies::decided(env, &actor, id).await?))
    }

    /// Rejects a held reply: it never answers, and its kept copy is deleted.
    #[graphql(visible = "visible_to_staff")]
    async fn reject_held_reply(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The held reply's id; NOT_FOUND when the firm has no such reply.")] id: ID,
    ) -> async_graphql::Result<HeldReply> {
        let actor = actor(ctx)?;
        let id = parse_id(&id, Kind::HeldReply)?;
        Ok(HeldReply(
            ops::replies::reject_held(env(ctx)?, &actor, id).await?,
        ))
    }
}
