//! Clients of a firm and their contacts.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::page::Keyset;
use super::schema::{clients, contacts};
use super::{DbConn, DbResult};
use crate::{seek_two, with_conn};

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = clients)]
pub struct Client {
    pub id: i64,
    pub firm_id: i64,
    pub name: String,
    pub reference: Option<String>,
    pub archived_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = clients)]
pub struct NewClient<'a> {
    pub firm_id: i64,
    pub name: &'a str,
    pub reference: Option<&'a str>,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, AsChangeset)]
#[diesel(table_name = clients)]
pub struct ClientChanges<'a> {
    pub name: Option<&'a str>,
    pub reference: Option<Option<&'a str>>,
}

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = contacts)]
pub struct Contact {
    pub id: i64,
    pub firm_id: i64,
    pub client_id: i64,
    pub name: String,
    pub email: String,
    pub language: Option<String>,
    pub notifications_enabled: bool,
    pub archived_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    /// When the contact last unsubscribed from emails; None when subscribed.
    pub unsubscribed_at: Option<NaiveDateTime>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = contacts)]
pub struct NewContact<'a> {
    pub firm_id: i64,
    pub client_id: i64,
    pub name: &'a str,
    pub email: &'a str,
    pub language: Option<&'a str>,
    pub notifications_enabled: bool,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, AsChangeset)]
#[diesel(table_name = contacts)]
pub struct ContactChanges<'a> {
    pub name: Option<&'a str>,
    pub email: Option<&'a str>,
    pub language: Option<Option<&'a str>>,
    pub notifications_enabled: Option<bool>,
}

pub async fn insert_client(db: &mut DbConn<'_>, new: &NewClient<'_>) -> DbResult<Client> {
    Ok(with_conn!(db, |c| diesel::insert_into(clients::table)
        .values(new)
        .returning(Client::as_returning())
        .get_result(c)
        .await)?)
}

pub async fn find_client(db: &mut DbConn<'_>, firm_id: i64, client_id: i64) -> DbResult<Client> {
    Ok(with_conn!(db, |c| clients::table
        .filter(clients::firm_id.eq(firm_id))
        .filter(clients::id.eq(client_id))
        .select(Client::as_select())
        .first(c)
        .await)?)
}

/// The firm's clients matching the filters, as a boxed query (for a page or a count).
macro_rules! filtered_clients {
    ($firm_id:expr, $include_archived:expr, $pattern:expr) => {{
        let mut query = clients::table
            .filter(clients::firm_id.eq($firm_id))
            .into_boxed();
        if !$include_archived {
            query = query.filter(clients::archived_at.is_null());
        }
        if let Some(pattern) = $pattern {
            query = query.filter(clients::name.like(pattern.clone()).escape('\\'));
        }
        query
    }};
}

/// `%part%` for a LIKE on names, with LIKE's own characters escaped; None for no search.
fn like_pattern(search: Option<&str>) -> Option<String> {
    search
        .map(str::trim)
        .filter(|search| !search.is_empty())
        .map(|search| format!("%{}%", search.replace('%', "\\%").replace('_', "\\_")))
}

/// One page of the firm's clients by name then id; `search` matches part of the name.
pub async fn list_clients(
    db: &mut DbConn<'_>,
    firm_id: i64,
    include_archived: bool,
    search: Option<&str>,
    page: &Keyset<(String, i64)>,
) -> DbResult<Vec<Client>> {
    let pattern = like_pattern(search);
    // Boxed queries are tied to one backend, so each arm of `with_conn!` builds its own.
    Ok(with_conn!(db, |c| {
        let query = filtered_clients!(firm_id, include_archived, &pattern);
        seek_two!(query, page, clients::name, clients::id)
            .select(Client::as_select())
            .load(c)
            .await
    })?)
}

/// How many clients match the filters of [`list_clients`].
pub async fn count_clients(
    db: &mut DbConn<'_>,
    firm_id: i64,
    include_archived: bool,
    search: Option<&str>,
) -> DbResult<i64> {
    let pattern = like_pattern(search);
    Ok(with_conn!(db, |c| filtered_clients!(
        firm_id,
        include_archived,
        &pattern
    )
    .count()
    .get_result(c)
    .await)?)
}

/// The firm's clients among `ids` (another firm's ids are simply absent).
pub async fn find_clients(db: &mut DbConn<'_>, firm_id: i64, ids: &[i64]) -> DbResult<Vec<Client>> {
    Ok(with_conn!(db, |c| clients::table
        .filter(clients::firm_id.eq(firm_id))
        .filter(clients::id.eq_any(ids))
        .select(Client::as_select())
        .load(c)
        .await)?)
}

/// The firm's contacts among `ids`.
pub async fn find_contacts(
    db: &mut DbConn<'_>,
    firm_id: i64,
    ids: &[i64],
) -> DbResult<Vec<Contact>> {
    Ok(with_conn!(db, |c| contacts::table
        .filter(contacts::firm_id.eq(firm_id))
        .filter(contacts::id.eq_any(ids))
        .select(Contact::as_select())
        .load(c)
        .await)?)
}

/// The contacts of several of the firm's clients, by id.
pub async fn contacts_of_clients(
    db: &mut DbConn<'_>,
    firm_id: i64,
    client_ids: &[i64],
    include_archived: bool,
) -> DbResult<Vec<Contact>> {
    Ok(with_conn!(db, |c| {
        let mut query = contacts::table
            .filter(contacts::firm_id.eq(firm_id))
            .filter(contacts::client_id.eq_any(client_ids))
            .select(Contact::as_select())
            .order(contacts::id)
            .into_boxed();
        if !include_archived {
            query = query.filter(contacts::archived_at.is_null());
        }
        query.load(c).await
    })?)
}

pub async fn update_client(
    db: &mut DbConn<'_>,
    firm_id: i64,
    client_id: i64,
    changes: &ClientChanges<'_>,
) -> DbResult<Client> {
    Ok(with_conn!(db, |c| diesel::update(
        clients::table
            .filter(clients::firm_id.eq(firm_id))
            .filter(clients::id.eq(client_id))
    )
    .set(changes)
    .returning(Client::as_returning())
    .get_result(c)
    .await)?)
}

pub async fn set_client_archived(
    db: &mut DbConn<'_>,
    firm_id: i64,
    client_id: i64,
    archived_at: Option<NaiveDateTime>,
) -> DbResult<Client> {
    Ok(with_conn!(db, |c| diesel::update(
        clients::table
            .filter(clients::firm_id.eq(firm_id))
            .filter(clients::id.eq(client_id))
    )
    .set(clients::archived_at.eq(archived_at))
    .returning(Client::as_returning())
    .get_result(c)
    .await)?)
}

pub async fn insert_contact(db: &mut DbConn<'_>, new: &NewContact<'_>) -> DbResult<Contact> {
    Ok(with_conn!(db, |c| diesel::insert_into(contacts::table)
        .values(new)
        .returning(Contact::as_returning())
        .get_result(c)
        .await)?)
}

pub async fn find_contact(db: &mut DbConn<'_>, firm_id: i64, contact_id: i64) -> DbResult<Contact> {
    Ok(with_conn!(db, |c| contacts::table
        .filter(contacts::firm_id.eq(firm_id))
        .filter(contacts::id.eq(contact_id))
        .select(Contact::as_select())
        .first(c)
        .await)?)
}

/// A contact by id alone: only for resolving a token that already names the contact.
pub async fn find_contact_by_id(db: &mut DbConn<'_>, contact_id: i64) -> DbResult<Contact> {
    Ok(with_conn!(db, |c| contacts::table
        .find(contact_id)
        .select(Contact::as_select())
        .first(c)
        .await)?)
}

pub async fn list_contacts(
    db: &mut DbConn<'_>,
    firm_id: i64,
    client_id: i64,
    include_archived: bool,
) -> DbResult<Vec<Contact>> {
    Ok(with_conn!(db, |c| {
        let mut query = contacts::table
            .filter(contacts::firm_id.eq(firm_id))
            .filter(contacts::client_id.eq(client_id))
            .select(Contact::as_select())
            .order(contacts::id)
            .into_boxed();
        if !include_archived {
            query = query.filter(contacts::archived_at.is_null());
        }
        query.load(c).await
    })?)
}

/// The contacts of several clients of one firm that emails are enqueued for (generation and
/// reminders read them per batch): those with notifications on, and those who unsubscribed
/// with their link, whose deliveries the worker then records as SKIPPED so the firm sees what
/// was not sent. A contact whose notifications the firm turned off gets none.
pub async fn list_notified_contacts_of_clients(
    db: &mut DbConn<'_>,
    firm_id: i64,
    client_ids: &[i64],
) -> DbResult<Vec<Contact>> {
    let ids = client_ids.to_vec();
    Ok(with_conn!(db, |c| contacts::table
        .filter(contacts::firm_id.eq(firm_id))
        .filter(contacts::client_id.eq_any(&ids))
        .filter(contacts::archived_at.is_null())
        .filter(
            contacts::notifications_enabled
                .eq(true)
                .or(contacts::unsubscribed_at.is_not_null())
        )
        .order(contacts::id)
        .select(Contact::as_select())
        .load(c)
        .await)?)
}

pub async fn update_contact(
    db: &mut DbConn<'_>,
    firm_id: i64,
    contact_id: i64,
    changes: &ContactChanges<'_>,
) -> DbResult<Contact> {
    Ok(with_conn!(db, |c| diesel::update(
        contacts::table
            .filter(contacts::firm_id.eq(firm_id))
            .filter(contacts::id.eq(contact_id))
    )
    .set(changes)
    .returning(Contact::as_returning())
    .get_result(c)
    .await)?)
}

pub async fn set_contact_archived(
    db: &mut DbConn<'_>,
    firm_id: i64,
    contact_id: i64,
    archived_at: Option<NaiveDateTime>,
) -> DbResult<Contact> {
    Ok(with_conn!(db, |c| diesel::update(
        contacts::table
            .filter(contacts::firm_id.eq(firm_id))
            .filter(contacts::id.eq(contact_id))
    )
    .set(contacts::archived_at.eq(archived_at))
    .returning(Contact::as_returning())
    .get_result(c)
    .await)?)
}

/// Turns a contact's notifications off (one-click unsubscribe) and notes when; a contact
/// already unsubscribed keeps its first date. Returns the rows changed (0: already off).
pub async fn unsubscribe_contact(
    db: &mut DbConn<'_>,
    contact_id: i64,
    now: NaiveDateTime,
) -> DbResult<usize> {
    Ok(with_conn!(db, |c| diesel::update(
        contacts::table
            .find(contact_id)
            .filter(contacts::notifications_enabled.eq(true))
    )
    .set((
        contacts::notifications_enabled.eq(false),
        contacts::unsubscribed_at.eq(Some(now)),
    ))
    .execute(c)
    .await)?)
}

/// Turns a contact's notifications back on (the undo of an unsubscribe). Returns the rows
/// changed (0: it was not unsubscribed).
pub async fn resubscribe_contact(db: &mut DbConn<'_>, contact_id: i64) -> DbResult<usize> {
    Ok(with_conn!(db, |c| diesel::update(
        contacts::table
            .find(contact_id)
            .filter(contacts::notifications_enabled.eq(false))
    )
    .set((
        contacts::notifications_enabled.eq(true),
        contacts::unsubscribed_at.eq(None::<NaiveDateTime>),
    ))
    .execute(c)
    .await)?)
}

diesel::define_sql_function! {
    /// SQL `lower(text)`: contact emails compare case-insensitively.
    fn lower(text: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

/// The live contacts (not archived, of a live client) with this email, any case, in any firm.
pub async fn find_live_contacts_by_email(
    db: &mut DbConn<'_>,
    email: &str,
) -> DbResult<Vec<Contact>> {
    let email = email.trim();
    Ok(with_conn!(db, |c| contacts::table
        .inner_join(clients::table)
        .filter(lower(contacts::email).eq(lower(email)))
        .filter(contacts::archived_at.is_null())
        .filter(clients::archived_at.is_null())
        .select(Contact::as_select())
        .order(contacts::id)
        .load(c)
        .await)?)
}
