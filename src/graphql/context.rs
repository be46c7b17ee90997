//! Who is calling and what they may see: the caller resolved from a bearer token, the guards
//! on every firm-only and contact-only field, the `visible` rules that hide those fields from
//! other callers' introspection, and small helpers resolvers share.

use async_graphql::{Context, Guard, ID};
use chrono::Utc;

use crate::auth::token_hash;
use crate::db::clients::find_contact_by_id;
use crate::db::firms::find_user;
use crate::db::tokens::find_valid;
use crate::db::{Conn, DbResult, Pool};
use crate::domain::{Role, TokenKind};
use crate::error::AppError;

/// The signed-in caller, put into each request's data by the HTTP layer.
#[derive(Debug, Clone, Default)]
pub enum Caller {
    #[default]
    Anonymous,
    Staff(StaffCaller),
    Contact(ContactCaller),
}

#[derive(Debug, Clone)]
pub struct StaffCaller {
    pub user_id: i64,
    pub firm_id: i64,
    pub role: Role,
    pub token_id: i64,
}

#[derive(Debug, Clone)]
pub struct ContactCaller {
    pub contact_id: i64,
    pub client_id: i64,
    pub firm_id: i64,
    pub token_id: i64,
}

/// Resolves a bearer token to a caller; an unknown, expired or revoked token is anonymous.
pub async fn resolve_caller(pool: &Pool, token: Option<&str>) -> DbResult<Caller> {
    let Some(token) = token.map(str::trim).filter(|token| !token.is_empty()) else {
        return Ok(Caller::Anonymous);
    };
    let mut conn = pool.get().await?;
    let mut db = conn.as_db();
    let now = Utc::now().naive_utc();
    let kinds = [TokenKind::StaffSession, TokenKind::Contact];
    let Some(stored) = find_valid(&mut db, &token_hash(token), &kinds, now).await? else {
        return Ok(Caller::Anonymous);
    };
    match (stored.kind, stored.user_id, stored.contact_id) {
        (TokenKind::StaffSession, Some(user_id), _) => {
            let user = find_user(&mut db, stored.firm_id, user_id).await?;
            if user.archived_at.is_some() {
                return Ok(Caller::Anonymous);
            }
            Ok(Caller::Staff(StaffCaller {
                user_id,
                firm_id: user.firm_id,
                role: user.role,
                token_id: stored.id,
            }))
        }
        (TokenKind::Contact, _, Some(contact_id)) => {
            let contact = find_contact_by_id(&mut db, contact_id).await?;
            if contact.archived_at.is_some() {
                return Ok(Caller::Anonymous);
            }
            Ok(Caller::Contact(ContactCaller {
                contact_id,
                client_id: contact.client_id,
                firm_id: contact.firm_id,
                token_id: stored.id,
            }))
        }
        _ => Ok(Caller::Anonymous),
    }
}

/// The caller of this request.
pub fn caller<'a>(ctx: &'a Context<'_>) -> &'a Caller {
    static ANONYMOUS: Caller = Caller::Anonymous;
    ctx.data_opt::<Caller>().unwrap_or(&ANONYMOUS)
}

/// The staff caller, or UNAUTHENTICATED / FORBIDDEN.
pub fn staff<'a>(ctx: &'a Context<'_>) -> Result<&'a StaffCaller, AppError> {
    match caller(ctx) {
        Caller::Staff(staff) => Ok(staff),
        Caller::Anonymous => Err(AppError::Unauthenticated),
        Caller::Contact(_) => Err(AppError::Forbidden(
            "only the firm's staff may do this".into(),
        )),
    }
}

/// The staff caller if an admin of their firm.
pub fn admin<'a>(ctx: &'a Context<'_>) -> Result<&'a StaffCaller, AppError> {
    let staff = staff(ctx)?;
    if staff.role == Role::Admin {
        Ok(staff)
    } else {
        Err(AppError::Forbidden("only a firm admin may do this".into()))
    }
}

/// The contact caller, or UNAUTHENTICATED / FORBIDDEN.
pub fn contact<'a>(ctx: &'a Context<'_>) -> Result<&'a ContactCaller, AppError> {
    match caller(ctx) {
        Caller::Contact(contact) => Ok(contact),
        Caller::Anonymous => Err(AppError::Unauthenticated),
        Caller::Staff(_) => Err(AppError::Forbidden(
            "only a client's contact may do this".into(),
        )),
    }
}

/// Guard of every firm-only object and field.
pub struct StaffGuard;

impl Guard for StaffGuard {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        staff(ctx).map(drop).map_err(Into::into)
    }
}

/// Guard of fields only a firm admin may use.
pub struct AdminGuard;

impl Guard for AdminGuard {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        admin(ctx).map(drop).map_err(Into::into)
    }
}

/// Guard of every contact-only object and field.
pub struct ContactGuard;

impl Guard for ContactGuard {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        contact(ctx).map(drop).map_err(Into::into)
    }
}

/// Firm-only schema parts are hidden from contacts' introspection (anonymous callers and tools
/// such as `export-schema` see them, so the schema stays documented).
pub fn visible_to_staff(ctx: &Context<'_>) -> bool {
    !matches!(ctx.data_opt::<Caller>(), Some(Caller::Contact(_)))
}

/// Contact-only schema parts are hidden from staff's introspection.
pub fn visible_to_contacts(ctx: &Context<'_>) -> bool {
    !matches!(ctx.data_opt::<Caller>(), Some(Caller::Staff(_)))
}

/// A connection for this request's work.
pub async fn connect(ctx: &Context<'_>) -> Result<Conn, AppError> {
    let pool = ctx
        .data::<Pool>()
        .map_err(|_| AppError::Internal("no database in the schema data".into()))?;
    Ok(pool.get().await?)
}

/// Reads an `ID` of a row; anything that is not one of ours is simply not found.
pub fn parse_id(id: &ID, what: &'static str) -> Result<i64, AppError> {
    id.parse::<i64>()
        .ok()
        .filter(|value| *value > 0)
        .ok_or(AppError::NotFound(what))
}

/// Turns "no row" into NOT_FOUND naming `what`; other errors pass through.
pub fn found<T>(result: DbResult<T>, what: &'static str) -> Result<T, AppError> {
    match result {
        Ok(value) => Ok(value),
        Err(crate::db::DbError::Query(diesel::result::Error::NotFound)) => {
            Err(AppError::NotFound(what))
        }
        Err(other) => Err(other.into()),
    }
}
