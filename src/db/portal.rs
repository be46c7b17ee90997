//! Portal sessions: a contact signed in to the client portal, stored as the SHA-256 of the
//! cookie's value (never the value itself), expiring, revocable.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::clients::Contact;
use super::schema::{clients, contacts, portal_sessions};
use super::{DbConn, DbResult};
use crate::with_conn;

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = portal_sessions)]
pub struct PortalSession {
    pub id: i64,
    pub firm_id: i64,
    pub contact_id: i64,
    pub token_hash: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub revoked_at: Option<NaiveDateTime>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = portal_sessions)]
pub struct NewPortalSession<'a> {
    pub firm_id: i64,
    pub contact_id: i64,
    pub token_hash: &'a str,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

pub async fn insert(db: &mut DbConn<'_>, new: &NewPortalSession<'_>) -> DbResult<PortalSession> {
    Ok(with_conn!(db, |c| diesel::insert_into(
        portal_sessions::table
    )
    .values(new)
    .returning(PortalSession::as_returning())
    .get_result(c)
    .await)?)
}

/// The live session with this hash (not revoked, not expired at `now`) and its contact, when
/// that contact and its client are not archived.
pub async fn find_live(
    db: &mut DbConn<'_>,
    token_hash: &str,
    now: NaiveDateTime,
) -> DbResult<Option<(PortalSession, Contact)>> {
    Ok(with_conn!(db, |c| portal_sessions::table
        .inner_join(
            contacts::table.on(contacts::id
                .eq(portal_sessions::contact_id)
                .and(contacts::firm_id.eq(portal_sessions::firm_id)))
        )
        .inner_join(clients::table.on(clients::id.eq(contacts::client_id)))
        .filter(portal_sessions::token_hash.eq(token_hash))
        .filter(portal_sessions::revoked_at.is_null())
        .filter(portal_sessions::expires_at.gt(now))
        .filter(contacts::archived_at.is_null())
        .filter(clients::archived_at.is_null())
        .select((PortalSession::as_select(), Contact::as_select()))
        .first(c)
        .await
        .optional())?)
}

/// Revokes one session; returns false when it was already revoked or does not exist.
pub async fn revoke(db: &mut DbConn<'_>, session_id: i64, now: NaiveDateTime) -> DbResult<bool> {
    let updated = with_conn!(db, |c| diesel::update(
        portal_sessions::table
            .find(session_id)
            .filter(portal_sessions::revoked_at.is_null())
    )
    .set(portal_sessions::revoked_at.eq(now))
    .execute(c)
    .await)?;
    Ok(updated == 1)
}
