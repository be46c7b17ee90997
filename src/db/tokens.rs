//! Access tokens, stored as hashes: staff sessions, contact tokens, single-use sign-in links
//! and unsubscribe links; and the revocation of everything a contact gets in with (these and
//! its reply addresses, `db::replies`) when it or its client is archived.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::schema::access_tokens;
use super::{DbConn, DbResult};
use crate::domain::TokenKind;
use crate::with_conn;

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = access_tokens)]
pub struct AccessToken {
    pub id: i64,
    pub firm_id: i64,
    pub token_hash: String,
    pub kind: TokenKind,
    pub user_id: Option<i64>,
    pub contact_id: Option<i64>,
    pub expires_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
    pub used_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = access_tokens)]
pub struct NewAccessToken<'a> {
    pub firm_id: i64,
    pub token_hash: &'a str,
    pub kind: TokenKind,
    pub user_id: Option<i64>,
    pub contact_id: Option<i64>,
    pub expires_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
}

pub async fn insert(db: &mut DbConn<'_>, new: &NewAccessToken<'_>) -> DbResult<AccessToken> {
    Ok(with_conn!(db, |c| diesel::insert_into(
        access_tokens::table
    )
    .values(new)
    .returning(AccessToken::as_returning())
    .get_result(c)
    .await)?)
}

/// A token inserted with others ([`insert_many`]): owned, and `None` written as NULL, so
/// that many rows go in one statement on SQLite as on PostgreSQL.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = access_tokens, treat_none_as_default_value = false)]
pub struct NewAccessTokenRow {
    pub firm_id: i64,
    pub token_hash: String,
    pub kind: TokenKind,
    pub user_id: Option<i64>,
    pub contact_id: Option<i64>,
    pub expires_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
}

/// Inserts many tokens, one statement per [`super::bulk::ROWS_PER_STATEMENT`] rows on both
/// backends. Call it inside the caller's transaction.
pub async fn insert_many(db: &mut DbConn<'_>, rows: Vec<NewAccessTokenRow>) -> DbResult<()> {
    super::bulk::insert_rows!(db, access_tokens::table, rows);
    Ok(())
}

/// The token with this hash and kind, if it is neither revoked, used, nor expired at `now`.
pub async fn find_valid(
    db: &mut DbConn<'_>,
    token_hash: &str,
    kinds: &[TokenKind],
    now: NaiveDateTime,
) -> DbResult<Option<AccessToken>> {
    let kinds = kinds.to_vec();
    Ok(with_conn!(db, |c| access_tokens::table
        .filter(access_tokens::token_hash.eq(token_hash))
        .filter(access_tokens::kind.eq_any(&kinds))
        .filter(access_tokens::revoked_at.is_null())
        .filter(access_tokens::used_at.is_null())
        .filter(
            access_tokens::expires_at
                .is_null()
                .or(access_tokens::expires_at.gt(now))
        )
        .select(AccessToken::as_select())
        .first(c)
        .await
        .optional())?)
}

pub async fn revoke(db: &mut DbConn<'_>, token_id: i64, now: NaiveDateTime) -> DbResult<usize> {
    Ok(with_conn!(db, |c| diesel::update(
        access_tokens::table
            .find(token_id)
            .filter(access_tokens::revoked_at.is_null())
    )
    .set(access_tokens::revoked_at.eq(now))
    .execute(c)
    .await)?)
}

/// Marks a single-use token used; returns false when it already was (a second redeem).
pub async fn mark_used(db: &mut DbConn<'_>, token_id: i64, now: NaiveDateTime) -> DbResult<bool> {
    let updated = with_conn!(db, |c| diesel::update(
        access_tokens::table
            .find(token_id)
            .filter(access_tokens::used_at.is_null())
    )
    .set(access_tokens::used_at.eq(now))
    .execute(c)
    .await)?;
    Ok(updated == 1)
}

/// Revokes every token of a staff user (when they are removed from the firm).
pub async fn revoke_all_for_user(
    db: &mut DbConn<'_>,
    user_id: i64,
    now: NaiveDateTime,
) -> DbResult<usize> {
    Ok(with_conn!(db, |c| diesel::update(
        access_tokens::table
            .filter(access_tokens::user_id.eq(user_id))
            .filter(access_tokens::revoked_at.is_null())
    )
    .set(access_tokens::revoked_at.eq(now))
    .execute(c)
    .await)?)
}

/// Whether the token with this id is still usable at `now` (not revoked, not expired).
pub async fn is_active(db: &mut DbConn<'_>, token_id: i64, now: NaiveDateTime) -> DbResult<bool> {
    let found: Option<i64> = with_conn!(db, |c| access_tokens::table
        .filter(access_tokens::id.eq(token_id))
        .filter(access_tokens::revoked_at.is_null())
        .filter(
            access_tokens::expires_at
                .is_null()
                .or(access_tokens::expires_at.gt(now))
        )
        .select(access_tokens::id)
        .first(c)
        .await
        .optional())?;
    Ok(found.is_some())
}

/// The tokens that give a contact access (bearer tokens and unused sign-in links): what
/// archiving a client or a contact revokes. Unsubscribe links are not among them: opting
/// out of mail must keep working.
pub const CONTACT_ACCESS_KINDS: [TokenKind; 2] = [TokenKind::Contact, TokenKind::SignInLink];

/// Ends the access of every contact of a client (when the client is archived), like
/// [`revoke_contacts_access`].
pub async fn revoke_client_contacts_access(
    db: &mut DbConn<'_>,
    firm_id: i64,
    client_id: i64,
    now: NaiveDateTime,
) -> DbResult<usize> {
    use super::schema::contacts;
    let contact_ids: Vec<i64> = with_conn!(db, |c| contacts::table
        .filter(contacts::firm_id.eq(firm_id))
        .filter(contacts::client_id.eq(client_id))
        .select(contacts::id)
        .load(c)
        .await)?;
    revoke_contacts_access(db, firm_id, &contact_ids, now).await
}

/// Ends one contact's access (when the contact is archived), like
/// [`revoke_contacts_access`].
pub async fn revoke_contact_access(
    db: &mut DbConn<'_>,
    firm_id: i64,
    contact_id: i64,
    now: NaiveDateTime,
) -> DbResult<usize> {
    revoke_contacts_access(db, firm_id, &[contact_id], now).await
}

/// Ends every way in of these contacts of the firm: their bearer tokens and unused sign-in
/// links ([`CONTACT_ACCESS_KINDS`]) and the reply addresses their request emails carried
/// (`reply_tokens`), so they stay ended if the contact or client comes back. Unsubscribe
/// links stay valid: opting out of mail must keep working. Returns how many were revoked.
pub async fn revoke_contacts_access(
    db: &mut DbConn<'_>,
    firm_id: i64,
    contact_ids: &[i64],
    now: NaiveDateTime,
) -> DbResult<usize> {
    use super::schema::reply_tokens;
    if contact_ids.is_empty() {
        return Ok(0);
    }
    let ids = contact_ids.to_vec();
    let bearer = with_conn!(db, |c| diesel::update(
        access_tokens::table
            .filter(access_tokens::firm_id.eq(firm_id))
            .filter(access_tokens::contact_id.eq_any(&ids))
            .filter(access_tokens::kind.eq_any(CONTACT_ACCESS_KINDS))
            .filter(access_tokens::revoked_at.is_null())
    )
    .set(access_tokens::revoked_at.eq(now))
    .execute(c)
    .await)?;
    let reply = with_conn!(db, |c| diesel::update(
        reply_tokens::table
            .filter(reply_tokens::firm_id.eq(firm_id))
            .filter(reply_tokens::contact_id.eq_any(&ids))
            .filter(reply_tokens::revoked_at.is_null())
    )
    .set(reply_tokens::revoked_at.eq(now))
    .execute(c)
    .await)?;
    Ok(bearer + reply)
}

/// A bearer token with the user or contact it signs in, read in one statement.
#[derive(Debug, Clone)]
pub struct TokenHolder {
    pub token_id: i64,
    pub firm_id: i64,
    pub kind: TokenKind,
    pub expires_at: Option<NaiveDateTime>,
    /// The staff member of a staff session: id, role, and whether archived.
    pub user: Option<(i64, crate::domain::Role, bool)>,
    /// The contact of a contact token: id, client, firm, and whether archived.
    pub contact: Option<(i64, i64, i64, bool)>,
}

type HolderRow = (
    i64,
    i64,
    TokenKind,
    Option<NaiveDateTime>,
    Option<i64>,
    Option<crate::domain::Role>,
    Option<NaiveDateTime>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<NaiveDateTime>,
);

/// The valid token with this hash among `kinds` (neither revoked, used nor expired at `now`)
/// and its holder, in one statement: the user of a staff session (of the token's firm) or
/// the contact of a contact token, joined to it.
pub async fn find_holder(
    db: &mut DbConn<'_>,
    token_hash: &str,
    kinds: &[TokenKind],
    now: NaiveDateTime,
) -> DbResult<Option<TokenHolder>> {
    use super::schema::{contacts, users};
    let kinds = kinds.to_vec();
    let row: Option<HolderRow> = with_conn!(db, |c| access_tokens::table
        .left_join(
            users::table.on(users::id
                .nullable()
                .eq(access_tokens::user_id)
                .and(users::firm_id.eq(access_tokens::firm_id)))
        )
        .left_join(
            contacts::table.on(contacts::id
                .nullable()
                .eq(access_tokens::contact_id)
                .and(contacts::firm_id.eq(access_tokens::firm_id)))
        )
        .filter(access_tokens::token_hash.eq(token_hash))
        .filter(access_tokens::kind.eq_any(&kinds))
        .filter(access_tokens::revoked_at.is_null())
        .filter(access_tokens::used_at.is_null())
        .filter(
            access_tokens::expires_at
                .is_null()
                .or(access_tokens::expires_at.gt(now))
        )
        .select((
            access_tokens::id,
            access_tokens::firm_id,
            access_tokens::kind,
            access_tokens::expires_at,
            users::id.nullable(),
            users::role.nullable(),
            users::archived_at.nullable(),
            contacts::id.nullable(),
            contacts::client_id.nullable(),
            contacts::firm_id.nullable(),
            contacts::archived_at.nullable(),
        ))
        .first(c)
        .await
        .optional())?;
    Ok(row.map(
        |(
            token_id,
            firm_id,
            kind,
            expires_at,
            user_id,
            role,
            user_archived_at,
            contact_id,
            client_id,
            contact_firm_id,
            contact_archived_at,
        )| TokenHolder {
            token_id,
            firm_id,
            kind,
            expires_at,
            user: user_id
                .zip(role)
                .map(|(id, role)| (id, role, user_archived_at.is_some())),
            contact: match (contact_id, client_id, contact_firm_id) {
                (Some(id), Some(client_id), Some(firm_id)) => {
                    Some((id, client_id, firm_id, contact_archived_at.is_some()))
                }
                _ => None,
            },
        },
    ))
}
