//! Firm mutations of the firm's day: remind a client now, bulk work (one mission template on
//! many clients, signing, completing and closing several at once), imports, calendar feeds
//! and the daily digest preference. Each resolver parses ids and inputs, calls one operation
//! of `crate::ops` with the caller as actor, and maps its answer; no rule lives here.

use async_graphql::{Context, ID, Object};

use crate::graphql::context::{StaffGuard, parse_id, visible_to_staff};
use crate::graphql::door::{actor, delivery_control, env};
use crate::graphql::firm::types::InformationRequest;
use crate::ops;

/// Remind now, bulk work, imports, calendar feeds, digest preference.
#[derive(Default)]
pub struct DayMutation;

#[Object(guard = "StaffGuard", visible = "visible_to_staff")]
impl DayMutation {
    /// Sends the client a follow-up reminder for an OPEN request at once (an email to each
    /// notified contact, and the reminder webhooks). It counts against the request's reminder
    /// policy: BAD_USER_INPUT on `id` once the policy's maximum is reached, for a request not
    /// OPEN, or for a client with no contact to notify.
    async fn remind_request(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The request's id; NOT_FOUND when the firm has no such request.")] id: ID,
    ) -> async_graphql::Result<InformationRequest> {
        let actor = actor(ctx)?;
        let id = parse_id(&id, "information request")?;
        let control = delivery_control(ctx);
        let reminded =
            ops::remind::remind_request(env(ctx)?, &actor, id, &control.reminder_defaults).await?;
        control.waker.wake();
        Ok(InformationRequest(reminded.request))
    }
}
