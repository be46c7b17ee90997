//! Access: staff sign-in and sign-out, the redemption of an emailed sign-in link (GraphQL's
//! `redeemSignInLink` and the /sign-in page both come here), and the tokens an admin or the
//! system hands out. Throttling per account and per client IP stays at the doors, which know
//! the client; here each attempt is counted in `rappel_sign_ins_total` once, whichever door.

use chrono::{DateTime, Duration, Utc};

use super::journal::{self, Entry};
use super::{Actor, Env, OpError, found};
use crate::auth::{decoy_password_hash, new_token, token_hash};
use crate::db::tokens::{self, NewAccessToken};
use crate::db::{clients, firms};
use crate::domain::TokenKind;
use crate::throttle::SignInGate;
use crate::transaction;

/// A bearer token and when it expires.
#[derive(Debug, Clone)]
pub struct Session {
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

/// The answer to every link that cannot be spent: it says no more than that.
const LINK_REFUSED: &str = "this sign-in link is invalid or expired";

/// The email a staff member signs in with, as stored: trimmed, domain lower-cased. Doors
/// throttle on it before calling [`login`].
pub fn login_email(email: &str) -> String {
    let email = email.trim();
    match email.rsplit_once('@') {
        Some((local, domain)) => format!("{local}@{}", domain.to_lowercase()),
        None => email.to_string(),
    }
}

fn count_sign_in(kind: &'static str, result: &'static str) {
    ::metrics::counter!("rappel_sign_ins_total", "kind" => kind, "result" => result).increment(1);
}

/// Signs a staff member in with `email` (as [`login_email`] gives it) and a password. A wrong
/// email and a wrong password get the same answer and cost the same check. The password is
/// checked on the gate's bounded pool when there is one, holding no database connection.
pub async fn login(
    env: Env<'_>,
    gate: Option<&SignInGate>,
    email: &str,
    password: String,
    session_hours: u32,
) -> Result<Session, OpError> {
    let user = {
        let mut conn = env.pool.get().await?;
        firms::find_active_user_by_email(&mut conn.as_db(), email).await?
    };
    let stored_hash = user.as_ref().map_or_else(
        || decoy_password_hash().to_string(),
        |user| user.password_hash.clone(),
    );
    let password_ok = match gate {
        Some(gate) => gate.verify_password(password, stored_hash).await,
        None => tokio::task::spawn_blocking(move || {
            crate::auth::verify_password(&password, &stored_hash)
        })
        .await
        .unwrap_or(false),
    };
    let Some(user) = user.filter(|_| password_ok) else {
        count_sign_in("staff", "failed");
        return Err(OpError::AuthFailed("wrong email or password".into()));
    };
    count_sign_in("staff", "succeeded");
    let actor = Actor::Staff {
        user_id: user.id,
        firm_id: user.firm_id,
        role: user.role,
    };
    insert_staff_session(env, &actor, user.firm_id, user.id, session_hours).await
}

/// Opens a session for a member of the actor's firm without a password: the system's (the
/// demo seed prints one). Staff sign in with [`login`].
pub async fn open_staff_session(
    env: Env<'_>,
    actor: &Actor,
    user_id: i64,
    session_hours: u32,
) -> Result<Session, OpError> {
    let Actor::System { firm_id } = *actor else {
        return Err(OpError::Forbidden("sign in with a password".into()));
    };
    let user = {
        let mut conn = env.pool.get().await?;
        found(
            firms::find_user(&mut conn.as_db(), firm_id, user_id).await,
            "staff member",
        )?
    };
    if user.archived_at.is_some() {
        return Err(OpError::NotFound("staff member"));
    }
    insert_staff_session(env, actor, firm_id, user_id, session_hours).await
}

/// Opens a session and journals the sign-in (by `actor`: the member, or the system).
async fn insert_staff_session(
    env: Env<'_>,
    actor: &Actor,
    firm_id: i64,
    user_id: i64,
    session_hours: u32,
) -> Result<Session, OpError> {
    let token = new_token();
    let now = Utc::now();
    let expires_at = now + Duration::hours(i64::from(session_hours));
    let mut conn = env.pool.get().await?;
    transaction!(conn, |tx| {
        tokens::insert(
            &mut tx,
            &NewAccessToken {
                firm_id,
                token_hash: &token_hash(&token),
                kind: TokenKind::StaffSession,
                user_id: Some(user_id),
                contact_id: None,
                expires_at: Some(expires_at.naive_utc()),
                created_at: now.naive_utc(),
            },
        )
        .await?;
        journal::record(
            &mut tx,
            actor,
            now.naive_utc(),
            &[Entry::new("staff.signed_in", "staff", user_id)],
        )
        .await?;
        Ok::<_, OpError>(())
    })?;
    Ok(Session { token, expires_at })
}

/// Revokes the token a caller signed in with (its id, from the resolved caller). True when
/// one was revoked.
pub async fn sign_out(env: Env<'_>, token_id: i64) -> Result<bool, OpError> {
    let mut conn = env.pool.get().await?;
    let revoked = tokens::revoke(&mut conn.as_db(), token_id, Utc::now().naive_utc()).await?;
    env.access_changed();
    Ok(revoked == 1)
}

/// Exchanges the token of an emailed sign-in link for a contact token valid
/// `contact_token_days`. A link works again and again until it expires (the portal's links
/// are reusable); expired, revoked or of an archived contact, it answers UNAUTHENTICATED.
pub async fn redeem_sign_in_link(
    env: Env<'_>,
    link_token: &str,
    contact_token_days: u32,
) -> Result<Session, OpError> {
    let now = Utc::now();
    let link_hash = token_hash(link_token.trim());
    let contact_token = new_token();
    let expires_at = now + Duration::days(i64::from(contact_token_days));
    let contact_token_hash = token_hash(&contact_token);
    let mut conn = env.pool.get().await?;
    transaction!(conn, |tx| {
        let link = tokens::find_valid(
            &mut tx,
            &link_hash,
            &[TokenKind::SignInLink],
            now.naive_utc(),
        )
        .await?
        .ok_or_else(|| OpError::AuthFailed(LINK_REFUSED.into()))?;
        let contact_id = link
            .contact_id
            .ok_or_else(|| OpError::Internal("a sign-in link without a contact".into()))?;
        let contact = clients::find_contact_by_id(&mut tx, contact_id).await?;
        if contact.archived_at.is_some() {
            return Err(OpError::AuthFailed(LINK_REFUSED.into()));
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
        Ok::<_, OpError>(())
    })
    .inspect_err(|_| count_sign_in("link", "failed"))?;
    count_sign_in("link", "succeeded");
    Ok(Session {
        token: contact_token,
        expires_at,
    })
}

/// Creates a bearer token for a contact of the actor's firm (admins and the system only), for
/// a client portal or an integration, valid `lifetime_days`. It opens that contact's client
/// view only. An archived contact gets none.
pub async fn create_contact_access_token(
    env: Env<'_>,
    actor: &Actor,
    contact_id: i64,
    lifetime_days: u32,
) -> Result<Session, OpError> {
    let firm_id = actor.admin()?.firm_id;
    let mut conn = env.pool.get().await?;
    let mut db = conn.as_db();
    let contact = found(
        clients::find_contact(&mut db, firm_id, contact_id).await,
        "contact",
    )?;
    if contact.archived_at.is_some() {
        return Err(OpError::bad_input("contactId", "this contact is archived"));
    }
    let token = new_token();
    let now = Utc::now();
    let expires_at = now + Duration::days(i64::from(lifetime_days));
    tokens::insert(
        &mut db,
        &NewAccessToken {
            firm_id,
            token_hash: &token_hash(&token),
            kind: TokenKind::Contact,
            user_id: None,
            contact_id: Some(contact.id),
            expires_at: Some(expires_at.naive_utc()),
            created_at: now.naive_utc(),
        },
    )
    .await?;
    Ok(Session { token, expires_at })
}
