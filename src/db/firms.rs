//! Firms (the tenants) and their staff users.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::page::Keyset;
use super::schema::{firms, users};
use super::{DbConn, DbResult};
use crate::domain::Role;
use crate::{seek_id, with_conn};

diesel::define_sql_function! {
    /// SQL `lower(text)`: emails compare case-insensitively (a unique index on
    /// `lower(email)` backs it on both backends).
    fn lower(text: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = firms)]
pub struct Firm {
    pub id: i64,
    pub name: String,
    pub time_zone: String,
    pub locale: String,
    pub sending_hour: Option<i32>,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = firms)]
pub struct NewFirm<'a> {
    pub name: &'a str,
    pub time_zone: &'a str,
    pub locale: &'a str,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = users)]
pub struct User {
    pub id: i64,
    pub firm_id: i64,
    pub email: String,
    pub name: String,
    pub password_hash: String,
    pub role: Role,
    pub archived_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = users)]
pub struct NewUser<'a> {
    pub firm_id: i64,
    pub email: &'a str,
    pub name: &'a str,
    pub password_hash: &'a str,
    pub role: Role,
    pub created_at: NaiveDateTime,
}

pub async fn insert_firm(db: &mut DbConn<'_>, new: &NewFirm<'_>) -> DbResult<Firm> {
    Ok(with_conn!(db, |c| diesel::insert_into(firms::table)
        .values(new)
        .returning(Firm::as_returning())
        .get_result(c)
        .await)?)
}

pub async fn find_firm(db: &mut DbConn<'_>, firm_id: i64) -> DbResult<Firm> {
    Ok(with_conn!(db, |c| firms::table
        .find(firm_id)
        .select(Firm::as_select())
        .first(c)
        .await)?)
}

/// The firms of `ids` (those that exist), for the work of several firms at once (a batch of
/// deliveries); never shown to a caller, whose reads are scoped by their own firm.
pub async fn find_firms(db: &mut DbConn<'_>, ids: &[i64]) -> DbResult<Vec<Firm>> {
    Ok(with_conn!(db, |c| firms::table
        .filter(firms::id.eq_any(ids))
        .select(Firm::as_select())
        .load(c)
        .await)?)
}

/// Every firm's id and time zone, in id order, for the generation pass.
pub async fn list_firms(db: &mut DbConn<'_>) -> DbResult<Vec<Firm>> {
    Ok(with_conn!(db, |c| firms::table
        .order(firms::id)
        .select(Firm::as_select())
        .load(c)
        .await)?)
}

pub async fn count_firms(db: &mut DbConn<'_>) -> DbResult<i64> {
    Ok(with_conn!(db, |c| firms::table
        .count()
        .get_result(c)
        .await)?)
}

pub async fn insert_user(db: &mut DbConn<'_>, new: &NewUser<'_>) -> DbResult<User> {
    Ok(with_conn!(db, |c| diesel::insert_into(users::table)
        .values(new)
        .returning(User::as_returning())
        .get_result(c)
        .await)?)
}

/// A signed-in user by email, across firms (emails are unique whatever their case): only
/// for `login`.
pub async fn find_active_user_by_email(db: &mut DbConn<'_>, email: &str) -> DbResult<Option<User>> {
    Ok(with_conn!(db, |c| users::table
        .filter(lower(users::email).eq(lower(email)))
        .filter(users::archived_at.is_null())
        .select(User::as_select())
        .first(c)
        .await
        .optional())?)
}

pub async fn find_user(db: &mut DbConn<'_>, firm_id: i64, user_id: i64) -> DbResult<User> {
    Ok(with_conn!(db, |c| users::table
        .filter(users::firm_id.eq(firm_id))
        .filter(users::id.eq(user_id))
        .select(User::as_select())
        .first(c)
        .await)?)
}

pub async fn list_users(db: &mut DbConn<'_>, firm_id: i64) -> DbResult<Vec<User>> {
    Ok(with_conn!(db, |c| users::table
        .filter(users::firm_id.eq(firm_id))
        .filter(users::archived_at.is_null())
        .order(users::id)
        .select(User::as_select())
        .load(c)
        .await)?)
}

/// Removes a member from the firm (kept for history: tasks stay assigned to them).
/// One page of the firm's active staff, by id.
pub async fn page_users(
    db: &mut DbConn<'_>,
    firm_id: i64,
    page: &Keyset<i64>,
) -> DbResult<Vec<User>> {
    Ok(with_conn!(db, |c| {
        let query = users::table
            .filter(users::firm_id.eq(firm_id))
            .filter(users::archived_at.is_null())
            .into_boxed();
        seek_id!(query, page, users::id, asc)
            .select(User::as_select())
            .load(c)
            .await
    })?)
}

/// How many active staff members the firm has.
pub async fn count_users(db: &mut DbConn<'_>, firm_id: i64) -> DbResult<i64> {
    Ok(with_conn!(db, |c| users::table
        .filter(users::firm_id.eq(firm_id))
        .filter(users::archived_at.is_null())
        .count()
        .get_result(c)
        .await)?)
}

/// The firm's users among `ids` (archived ones too: they may still be a task's assignee).
pub async fn find_users(db: &mut DbConn<'_>, firm_id: i64, ids: &[i64]) -> DbResult<Vec<User>> {
    Ok(with_conn!(db, |c| users::table
        .filter(users::firm_id.eq(firm_id))
        .filter(users::id.eq_any(ids))
        .select(User::as_select())
        .load(c)
        .await)?)
}

pub async fn archive_user(
    db: &mut DbConn<'_>,
    firm_id: i64,
    user_id: i64,
    now: NaiveDateTime,
) -> DbResult<usize> {
    Ok(with_conn!(db, |c| diesel::update(
        users::table
            .filter(users::firm_id.eq(firm_id))
            .filter(users::id.eq(user_id))
            .filter(users::archived_at.is_null())
    )
    .set(users::archived_at.eq(now))
    .execute(c)
    .await)?)
}

/// How many active admins the firm has. Inside a transaction on PostgreSQL their rows stay
/// locked until it ends, so two removals at once cannot both see a second admin and leave the
/// firm with none (SQLite's write transactions are serialized already).
pub async fn count_active_admins(db: &mut DbConn<'_>, firm_id: i64) -> DbResult<i64> {
    let admins: Vec<i64> = match db {
        DbConn::Postgres(c) => {
            users::table
                .filter(users::firm_id.eq(firm_id))
                .filter(users::role.eq(Role::Admin))
                .filter(users::archived_at.is_null())
                .select(users::id)
                .for_update()
                .load(c)
                .await?
        }
        DbConn::Sqlite(c) => {
            users::table
                .filter(users::firm_id.eq(firm_id))
                .filter(users::role.eq(Role::Admin))
                .filter(users::archived_at.is_null())
                .select(users::id)
                .load(c)
                .await?
        }
    };
    Ok(i64::try_from(admins.len()).unwrap_or(i64::MAX))
}
