//! The firm and its members: creating a firm with its first admin (the CLI and the demo
//! seed), inviting a member with a temporary password, removing one (their sessions end in
//! the same transaction; the last admin stays). Only admins (or the system) manage members.

use chrono::Utc;

use super::journal::{self, Entry};
use super::{Actor, Env, OpError, found};
use crate::auth::{generate_password, hash_password};
use crate::db::firms::{self, Firm, NewFirm, NewUser, User};
use crate::db::tokens;
use crate::domain::Role;
use crate::domain::calendar::parse_time_zone;
use crate::domain::validation::{check_email, check_name};
use crate::transaction;

/// Shortest admin password a person may choose (a generated one is longer).
pub const MIN_PASSWORD_CHARS: usize = 12;

/// A new firm as the CLI hands it over.
#[derive(Debug, Clone)]
pub struct FirmInput<'a> {
    pub name: &'a str,
    pub admin_email: &'a str,
    /// None: a password is generated.
    pub admin_password: Option<&'a str>,
    pub time_zone: &'a str,
    pub locale: &'a str,
}

/// A firm just created, with its admin and the admin's password (generated when none given).
pub struct CreatedFirm {
    pub firm: Firm,
    pub admin: User,
    pub password: String,
    pub password_was_generated: bool,
}

/// A new staff member and the password to hand them (shown once).
pub struct Invitation {
    pub member: User,
    pub temporary_password: String,
}

/// Creates a firm and its first admin, in one transaction. No actor: only the server's
/// operator reaches this (the CLI's `firm create`, the demo seed); no API door calls it.
pub async fn create_firm(env: Env<'_>, input: &FirmInput<'_>) -> Result<CreatedFirm, OpError> {
    let name = check_name("name", input.name)?;
    let email = check_email("admin-email", input.admin_email)?;
    if parse_time_zone(input.time_zone).is_none() {
        return Err(OpError::bad_input(
            "time-zone",
            format!(
                "{:?} is not an IANA time zone such as Europe/Paris",
                input.time_zone
            ),
        ));
    }
    if !matches!(input.locale, "fr" | "en") {
        return Err(OpError::bad_input(
            "locale",
            format!("{:?} is not a supported locale (fr or en)", input.locale),
        ));
    }
    let (password, password_was_generated) = match input.admin_password {
        Some(password) if password.chars().count() >= MIN_PASSWORD_CHARS => {
            (password.to_string(), false)
        }
        Some(_) => {
            return Err(OpError::bad_input(
                "admin-password",
                format!("the admin password must be at least {MIN_PASSWORD_CHARS} characters long"),
            ));
        }
        None => (generate_password(), true),
    };
    let password_hash = hash_password(&password).map_err(OpError::Internal)?;
    let now = Utc::now().naive_utc();
    let mut conn = env.pool.get().await?;
    let (firm, admin) = transaction!(conn, |tx| {
        let firm = firms::insert_firm(
            &mut tx,
            &NewFirm {
                name: &name,
                time_zone: input.time_zone,
                locale: input.locale,
                created_at: now,
            },
        )
        .await?;
        let admin = firms::insert_user(
            &mut tx,
            &NewUser {
                firm_id: firm.id,
                email: &email,
                name: "Admin",
                password_hash: &password_hash,
                role: Role::Admin,
                created_at: now,
            },
        )
        .await?;
        Ok::<_, OpError>((firm, admin))
    })
    .map_err(|error| match error {
        OpError::Conflict(_) => {
            OpError::Conflict(format!("cannot create the firm: {email} is already a user"))
        }
        other => other,
    })?;
    Ok(CreatedFirm {
        firm,
        admin,
        password,
        password_was_generated,
    })
}

/// Adds a member to the firm (admins only) with a temporary password, shown once.
pub async fn invite_staff_member(
    env: Env<'_>,
    actor: &Actor,
    email: &str,
    name: &str,
    role: Role,
) -> Result<Invitation, OpError> {
    let firm_id = actor.admin()?.firm_id;
    let email = check_email("email", email)?;
    let name = check_name("name", name)?;
    let password = generate_password();
    let password_hash = hash_password(&password).map_err(OpError::Internal)?;
    let mut conn = env.pool.get().await?;
    let now = Utc::now().naive_utc();
    let member = transaction!(conn, |tx| {
        let member = firms::insert_user(
            &mut tx,
            &NewUser {
                firm_id,
                email: &email,
                name: &name,
                password_hash: &password_hash,
                role,
                created_at: now,
            },
        )
        .await
        .map_err(|error| match OpError::from(error) {
            // The same answer whoever holds the address (this firm or another, in any case):
            // it names no firm and no person.
            OpError::Conflict(_) => OpError::Conflict(
                "this email address cannot be used for a new staff account; \
                 use another address"
                    .into(),
            ),
            other => other,
        })?;
        journal::record(
            &mut tx,
            actor,
            now,
            &[Entry::new("staff.invited", "staff", member.id)
                .detail(serde_json::json!({ "role": role.as_str() }))],
        )
        .await?;
        Ok::<_, OpError>(member)
    })?;
    Ok(Invitation {
        member,
        temporary_password: password,
    })
}

/// Removes a member from the firm (admins only); their sessions end at once. The last admin
/// cannot be removed.
pub async fn remove_staff_member(env: Env<'_>, actor: &Actor, user_id: i64) -> Result<(), OpError> {
    let firm_id = actor.admin()?.firm_id;
    let mut conn = env.pool.get().await?;
    let user = found(
        firms::find_user(&mut conn.as_db(), firm_id, user_id).await,
        "staff member",
    )?;
    if user.archived_at.is_some() {
        return Err(OpError::NotFound("staff member"));
    }
    let now = Utc::now().naive_utc();
    transaction!(conn, |tx| {
        if user.role == Role::Admin && firms::count_active_admins(&mut tx, firm_id).await? <= 1 {
            return Err(OpError::bad_input(
                "id",
                "the firm's last admin cannot be removed",
            ));
        }
        firms::archive_user(&mut tx, firm_id, user_id, now).await?;
        tokens::revoke_all_for_user(&mut tx, user_id, now).await?;
        journal::record(
            &mut tx,
            actor,
            now,
            &[Entry::new("staff.removed", "staff", user_id)],
        )
        .await?;
        Ok::<_, OpError>(())
    })?;
    env.access_changed();
    Ok(())
}

// ---- The firm's day: a member's own preferences ----

/// A staff member's own preferences.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preferences {
    /// Whether they receive the daily digest.
    pub daily_digest: bool,
}

/// The acting staff member's preferences.
pub async fn my_preferences(env: Env<'_>, actor: &Actor) -> Result<Preferences, OpError> {
    let Actor::Staff { user_id, .. } = *actor else {
        return Err(OpError::Forbidden(
            "only a staff member has preferences".into(),
        ));
    };
    let mut conn = env.pool.get().await?;
    Ok(Preferences {
        daily_digest: crate::db::digests::daily_digest_enabled(&mut conn.as_db(), user_id).await?,
    })
}

/// Changes the acting staff member's preferences (None: unchanged).
pub async fn update_my_preferences(
    env: Env<'_>,
    actor: &Actor,
    daily_digest: Option<bool>,
) -> Result<Preferences, OpError> {
    let Actor::Staff {
        user_id, firm_id, ..
    } = *actor
    else {
        return Err(OpError::Forbidden(
            "only a staff member has preferences".into(),
        ));
    };
    if let Some(enabled) = daily_digest {
        let now = chrono::Utc::now().naive_utc();
        let mut conn = env.pool.get().await?;
        crate::transaction!(conn, |tx| {
            crate::db::digests::set_daily_digest(&mut tx, firm_id, user_id, enabled, now).await?;
            super::journal::record(
                &mut tx,
                actor,
                now,
                &[
                    super::journal::Entry::new("preferences.updated", "user", user_id)
                        .detail(serde_json::json!({ "dailyDigest": enabled })),
                ],
            )
            .await?;
            Ok::<_, OpError>(())
        })?;
    }
    my_preferences(env, actor).await
}
