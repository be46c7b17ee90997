//! Signing in and out: staff `login`/`logout`, and `redeemSignInLink`, which turns the
//! single-use token of an emailed link into a contact token. Open to every caller, so each
//! attempt is throttled (per account and per client IP) before it reads the database, and the
//! password check runs on the bounded pool without holding a database connection.

use async_graphql::{Context, Object, SimpleObject};
use chrono::{Duration, Utc};

use crate::auth::{decoy_password_hash, new_token, token_hash};
use crate::config::AuthConfig;
use crate::db::tokens::{self, NewAccessToken};
use crate::db::{clients, firms};
use crate::domain::TokenKind;
use crate::error::AppError;
use crate::graphql::context::{Caller, caller, connect};
use crate::throttle::{ClientIp, SignInGate};
use crate::transaction;

/// A bearer token and when it expires.
#[derive(SimpleObject)]
pub struct Session {
    /// Send as `Authorization: Bearer <token>`.
    pub token: String,
    pub expires_at: chrono::DateTime<Utc>,
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
        Some(gate) => gate.admit(account, ip).map_err(|throttled| {
            tracing::warn!(
                client_ip = ?ip,
                retry_after = throttled.retry_after_seconds(),
                "sign-in attempt throttled"
            );
            ::metrics::counter!("rappel_sign_ins_total", "kind" => kind, "result" => "throttled")
                .increment(1);
            throttled.into_error()
        }),
        None => Ok(()),
    }
}

#[Object]
impl AuthMutation {
    /// Signs a staff member in. A wrong email and a wrong password get the same answer.
    async fn login(
        &self,
        ctx: &Context<'_>,
        email: String,
        password: String,
    ) -> async_graphql::Result<Session> {
        let config = auth_config(ctx);
        let email = email.trim().to_string();
        // Emails are stored with a lower-cased domain; accept any case from the user.
        let normalized = match email.rsplit_once('@') {
            Some((local, domain)) => format!("{local}@{}", domain.to_lowercase()),
            None => email.clone(),
        };
        admit(ctx, Some(&normalized))?;
        let user = {
            let mut conn = connect(ctx).await?;
            firms::find_active_user_by_email(&mut conn.as_db(), &normalized)
                .await
                .map_err(AppError::from)?
        };
        let stored_hash = user.as_ref().map_or_else(
            || decoy_password_hash().to_string(),
            |u| u.password_hash.clone(),
        );
        // No connection is held while the password is checked.
        let password_ok = match ctx.data_opt::<SignInGate>() {
            Some(gate) => gate.verify_password(password, stored_hash).await,
            None => tokio::task::spawn_blocking(move || {
                crate::auth::verify_password(&password, &stored_hash)
            })
            .await
            .unwrap_or(false),
        };
        let Some(user) = user.filter(|_| password_ok) else {
            ::metrics::counter!("rappel_sign_ins_total", "kind" => "staff", "result" => "failed")
                .increment(1);
            return Err(AppError::AuthFailed("wrong email or password".into()).into());
        };
        ::metrics::counter!("rappel_sign_ins_total", "kind" => "staff", "result" => "succeeded")
            .increment(1);
        let mut conn = connect(ctx).await?;
        let token = new_token();
        let now = Utc::now();
        let expires_at = now + Duration::hours(i64::from(config.session_hours));
        tokens::insert(
            &mut conn.as_db(),
            &NewAccessToken {
                firm_id: user.firm_id,
                token_hash: &token_hash(&token),
                kind: TokenKind::StaffSession,
                user_id: Some(user.id),
                contact_id: None,
                expires_at: Some(expires_at.naive_utc()),
                created_at: now.naive_utc(),
            },
        )
        .await
        .map_err(AppError::from)?;
        Ok(Session { token, expires_at })
    }

    /// Revokes the token this request was made with. True when one was revoked.
    async fn logout(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        let token_id = match caller(ctx) {
            Caller::Staff(staff) => staff.token_id,
            Caller::Contact(contact) => contact.token_id,
            Caller::Anonymous => return Ok(false),
        };
        let mut conn = connect(ctx).await?;
        let revoked = tokens::revoke(&mut conn.as_db(), token_id, Utc::now().naive_utc())
            .await
            .map_err(AppError::from)?;
        Ok(revoked == 1)
    }

    /// Exchanges the single-use token of an emailed sign-in link for a contact token. A link
    /// works once; after that, or once expired, it answers UNAUTHENTICATED.
    async fn redeem_sign_in_link(
        &self,
        ctx: &Context<'_>,
        token: String,
    ) -> async_graphql::Result<Session> {
        let config = auth_config(ctx);
        admit(ctx, None)?;
        let mut conn = connect(ctx).await?;
        let now = Utc::now();
        let link_hash = token_hash(token.trim());
        let contact_token = new_token();
        let expires_at = now + Duration::days(i64::from(config.contact_token_days));
        let contact_token_hash = token_hash(&contact_token);
        transaction!(conn, |tx| {
            let link = tokens::find_valid(
                &mut tx,
                &link_hash,
                &[TokenKind::SignInLink],
                now.naive_utc(),
            )
            .await?
            .ok_or_else(|| {
                AppError::AuthFailed("this sign-in link is invalid, used or expired".into())
            })?;
            let contact_id = link
                .contact_id
                .ok_or_else(|| AppError::Internal("a sign-in link without a contact".into()))?;
            let contact = clients::find_contact_by_id(&mut tx, contact_id).await?;
            if contact.archived_at.is_some()
                || !tokens::mark_used(&mut tx, link.id, now.naive_utc()).await?
            {
                return Err(AppError::AuthFailed(
                    "this sign-in link is invalid, used or expired".into(),
                ));
            }
            tokens::insert(
                &mut tx,
                &NewAccessToken {
                    firm_id: link.firm_id,
                    token_hash: &contact_token_hash,
                    kind: TokenKind::Contact,
                    user_id: None,
                    contact_id: Some(contact_id),
                    expires_at: Some(expires_at.naive_utc()),
                    created_at: now.naive_utc(),
                },
            )
            .await?;
            Ok::<_, AppError>(())
        })
        .inspect_err(|_| {
            ::metrics::counter!("rappel_sign_ins_total", "kind" => "link", "result" => "failed")
                .increment(1);
        })?;
        ::metrics::counter!("rappel_sign_ins_total", "kind" => "link", "result" => "succeeded")
            .increment(1);
        Ok(Session {
            token: contact_token,
            expires_at,
        })
    }
}
