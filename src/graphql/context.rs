//! Who is calling and what they may see: the caller resolved from a bearer token, the guards
//! on every firm-only and contact-only field, the `visible` rules that hide those fields from
//! other callers' introspection, and small helpers resolvers share.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_graphql::{Context, Guard, ID};
use chrono::{NaiveDateTime, Utc};

use crate::auth::token_hash;
use crate::db::tokens::find_holder;
use crate::db::{Conn, DbResult, Pool};
use crate::domain::gid::{self, GidError, Kind};
use crate::domain::{Role, TokenKind};
use crate::error::AppError;
use crate::events::EventBus;

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

/// Resolves a bearer token to a caller in one statement; an unknown, expired or revoked token
/// is anonymous.
pub async fn resolve_caller(pool: &Pool, token: Option<&str>) -> DbResult<Caller> {
    let Some(token) = token.map(str::trim).filter(|token| !token.is_empty()) else {
        return Ok(Caller::Anonymous);
    };
    Ok(lookup(pool, &token_hash(token))
        .await?
        .map_or(Caller::Anonymous, |(caller, _)| caller))
}

/// The caller of a token hash, and when the token expires.
async fn lookup(pool: &Pool, hash: &str) -> DbResult<Option<(Caller, Option<NaiveDateTime>)>> {
    let mut conn = pool.get().await?;
    let now = Utc::now().naive_utc();
    let kinds = [TokenKind::StaffSession, TokenKind::Contact];
    let Some(holder) = find_holder(&mut conn.as_db(), hash, &kinds, now).await? else {
        return Ok(None);
    };
    let caller = match (holder.kind, holder.user, holder.contact) {
        (TokenKind::StaffSession, Some((user_id, role, false)), _) => Caller::Staff(StaffCaller {
            user_id,
            firm_id: holder.firm_id,
            role,
            token_id: holder.token_id,
        }),
        (TokenKind::Contact, _, Some((contact_id, client_id, firm_id, false))) => {
            Caller::Contact(ContactCaller {
                contact_id,
                client_id,
                firm_id,
                token_id: holder.token_id,
            })
        }
        _ => return Ok(None),
    };
    Ok(Some((caller, holder.expires_at)))
}

/// Resolved callers kept in memory for `[auth] caller_cache_seconds`, by token hash, so a
/// client's burst of requests costs one lookup. An entry read before the latest access change
/// of the [`EventBus`] (logout, revocation, archive of a contact, client or staff member, here
/// or on another instance through the relay) is stale and read again; none outlives its
/// token's expiry. Only signed-in callers are kept: unknown tokens cannot fill the cache.
#[derive(Clone)]
pub struct CallerCache {
    entries: Arc<Mutex<HashMap<String, CachedCaller>>>,
    ttl: Duration,
    events: EventBus,
}

struct CachedCaller {
    caller: Caller,
    epoch: u64,
    until: Instant,
}

/// Most callers kept at once; past it, expired entries go, then all of them.
const CALLER_CACHE_ENTRIES: usize = 10_000;

impl CallerCache {
    /// A cache of `ttl_seconds` (0 disables it) invalidated by `events`' access changes.
    pub fn new(ttl_seconds: u64, events: EventBus) -> Self {
        Self {
            entries: Arc::default(),
            ttl: Duration::from_secs(ttl_seconds),
            events,
        }
    }

    /// The caller of `token`, from memory when fresh, else from the database.
    pub async fn resolve(&self, pool: &Pool, token: Option<&str>) -> DbResult<Caller> {
        let Some(token) = token.map(str::trim).filter(|token| !token.is_empty()) else {
            return Ok(Caller::Anonymous);
        };
        if self.ttl.is_zero() {
            return resolve_caller(pool, Some(token)).await;
        }
        let hash = token_hash(token);
        // Read before the lookup: a change committed during it makes the entry stale at once.
        let epoch = self.events.access_epoch();
        if let Some(caller) = self.fresh(&hash, epoch) {
            return Ok(caller);
        }
        let Some((caller, expires_at)) = lookup(pool, &hash).await? else {
            self.lock().remove(&hash);
            return Ok(Caller::Anonymous);
        };
        let mut until = Instant::now() + self.ttl;
        if let Some(expires_at) = expires_at {
            let left = (expires_at - Utc::now().naive_utc())
                .to_std()
                .unwrap_or(Duration::ZERO);
            until = until.min(Instant::now() + left);
        }
        let mut entries = self.lock();
        if entries.len() >= CALLER_CACHE_ENTRIES {
            let now = Instant::now();
            entries.retain(|_, entry| entry.until > now);
            if entries.len() >= CALLER_CACHE_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(
            hash,
            CachedCaller {
                caller: caller.clone(),
                epoch,
                until,
            },
        );
        Ok(caller)
    }

    fn fresh(&self, hash: &str, epoch: u64) -> Option<Caller> {
        let entries = self.lock();
        let entry = entries.get(hash)?;
        (entry.epoch == epoch && entry.until > Instant::now()).then(|| entry.caller.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, CachedCaller>> {
        // A panic while holding the lock leaves a map that is still valid.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
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

/// The global `ID` of row `id` of `kind` (see [`gid`]).
pub fn gid(kind: Kind, id: i64) -> ID {
    ID(gid::encode(kind, id))
}

/// Reads an id argument of the firm view that must name a row of `kind`: a malformed id, or
/// one of another kind, is BAD_USER_INPUT naming both kinds; a well-formed one of another
/// firm is NOT_FOUND later, when the scoped read finds nothing.
pub fn parse_id(id: &ID, kind: Kind) -> Result<i64, AppError> {
    gid::decode_as(id, kind).map_err(|error| match error {
        GidError::Malformed => bad_id(format!(
            "\"{}\" is not a {} id: pass back an id Rappel gave you",
            shorten(id),
            kind.name()
        )),
        GidError::WrongKind { expected, found } => bad_id(format!(
            "expected a {} id, got a {} id",
            expected.name(),
            found.name()
        )),
    })
}

/// [`parse_id`] for the client view: its messages name only the client view's types.
pub fn parse_client_id(id: &ID, kind: Kind) -> Result<i64, AppError> {
    let expected = kind.client_name().unwrap_or(kind.name());
    gid::decode_as(id, kind).map_err(|error| match error {
        GidError::Malformed => bad_id(format!(
            "\"{}\" is not a {expected} id: pass back an id Rappel gave you",
            shorten(id)
        )),
        GidError::WrongKind { found, .. } => match found.client_name() {
            Some(found) => bad_id(format!("expected a {expected} id, got a {found} id")),
            None => bad_id(format!(
                "expected a {expected} id, got an id of another type"
            )),
        },
    })
}

fn bad_id(message: String) -> AppError {
    AppError::BadUserInput {
        field: None,
        message,
    }
}

/// A caller's string quoted in a message: at most 40 characters, one line.
fn shorten(text: &str) -> String {
    text.chars()
        .take(40)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
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
