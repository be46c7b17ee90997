//! Signing in and out: staff `login`/`logout`, and `redeemSignInLink`, which turns the
//! single-use token of an emailed link into a contact token, each through `crate::ops::access`.
//! Open to every caller, so each attempt is throttled here (per account and per client IP)
//! before the operation reads the database; the operation checks the password on the gate's
//! bounded pool without holding a database connection.

use async_graphql::{Context, InputObject, Object, SimpleObject};

use crate::config::AuthConfig;
use crate::graphql::context::{Caller, caller};
use crate::graphql::door::env;
use crate::ops;
use crate::throttle::{ClientIp, SignInGate};

/// A bearer token and when it expires.
#[derive(SimpleObject)]
pub struct Session {
    /// Send as `Authorization: Bearer <token>`.
    pub token: String,
    /// When the token stops working; sign in again after it.
    pub expires_at: crate::graphql::scalars::DateTime,
}

impl From<ops::access::Session> for Session {
    fn from(session: ops::access::Session) -> Self {
        Self {
            token: session.token,
            expires_at: session.expires_at.into(),
        }
    }
}

/// Sign-in mutations.
#[derive(Default)]
pub struct AuthMutation;

fn auth_config(ctx: &Context<'_>) -> AuthConfig {
    ctx.data::<AuthConfig>().cloned().unwrap_or_default()
}

/// Admits one sign-in attempt through the schema's gate, or answers RATE_LIMITED.
fn admit(ctx: &Context<'_>, account: Option<&str>) -> async_graphql::Result<()> {
    // Only `login` names an account; a sign-in link's attempt does not.
    let kind = if account.is_some() { "staff" } else { "link" };
    let ip = ctx.data_opt::<ClientIp>().map(|ip| ip.0);
    match ctx.data_opt::<SignInGate>() {
        Some(gate) => gate
            .admit_counted(kind, account, ip)
            .map_err(|throttled| throttled.into_error()),
        None => Ok(()),
    }
}

/// A staff member's credentials.
#[derive(InputObject)]
pub struct LoginInput {
    /// The staff member's email address, in any case.
    pub email: String,
    /// The staff member's password.
    pub password: String,
}

/// The token of an emailed sign-in link.
#[derive(InputObject)]
pub struct RedeemSignInLinkInput {
    /// The token in the emailed link, as it was sent.
    pub token: String,
}

#[Object]
impl AuthMutation {
    /// Signs a staff member in. A wrong email and a wrong password get the same answer.
    async fn login(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The staff member's credentials.")] input: LoginInput,
    ) -> async_graphql::Result<Session> {
        let LoginInput { email, password } = input;
        let config = auth_config(ctx);
        let email = ops::access::login_email(&email);
        admit(ctx, Some(&email))?;
        let session = ops::access::login(
            env(ctx)?,
            ctx.data_opt::<SignInGate>(),
            &email,
            password,
            config.session_hours,
        )
        .await?;
        Ok(session.into())
    }

    /// Revokes the token this request was made with. True when one was revoked.
    async fn logout(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        let token_id = match caller(ctx) {
            Caller::Staff(staff) => staff.token_id,
            Caller::Contact(contact) => contact.token_id,
            Caller::Anonymous => return Ok(false),
        };
        Ok(ops::access::sign_out(env(ctx)?, token_id).await?)
    }

    /// Exchanges the single-use token of an emailed sign-in link for a contact token. A link
    /// works once; after that, or once expired, it answers UNAUTHENTICATED.
    async fn redeem_sign_in_link(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The emailed link's token.")] input: RedeemSignInLinkInput,
    ) -> async_graphql::Result<Session> {
        let token = input.token;
        let config = auth_config(ctx);
        admit(ctx, None)?;
        let session =
            ops::access::redeem_sign_in_link(env(ctx)?, &token, config.contact_token_days).await?;
        Ok(session.into())
    }
}
