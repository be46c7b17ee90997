//! The firm's catalogue: categories, services and their items.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::page::Keyset;
use super::schema::{categories, service_items, services};
use super::{DbConn, DbResult};
use crate::domain::{DeliverableType, ItemKind};
use crate::{seek_two, with_conn};

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = categories)]
pub struct Category {
    pub id: i64,
    pub firm_id: i64,
    pub name: String,
    pub archived_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = services)]
pub struct Service {
    pub id: i64,
    pub firm_id: i64,
    pub category_id: Option<i64>,
    pub title: String,
    pub deliverable_type: DeliverableType,
    pub lead_days: i32,
    pub reminder_days_before: Option<i32>,
    pub reminder_on_due_date: Option<bool>,
    pub reminder_every_days: Option<i32>,
    pub reminder_max_count: Option<i32>,
    pub archived_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Insertable, AsChangeset)]
#[diesel(table_name = services, treat_none_as_null = true)]
pub struct ServiceFields {
    pub category_id: Option<i64>,
    pub title: String,
    pub deliverable_type: DeliverableType,
    pub lead_days: i32,
    pub reminder_days_before: Option<i32>,
    pub reminder_on_due_date: Option<bool>,
    pub reminder_every_days: Option<i32>,
    pub reminder_max_count: Option<i32>,
}

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = service_items)]
pub struct ServiceItem {
    pub id: i64,
    pub firm_id: i64,
    pub service_id: i64,
    pub kind: ItemKind,
    pub text: String,
    pub position: i32,
    pub archived_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = service_items)]
pub struct NewServiceItem {
    pub firm_id: i64,
    pub service_id: i64,
    pub kind: ItemKind,
    pub text: String,
    pub position: i32,
    pub created_at: NaiveDateTime,
}

pub async fn insert_category(
    db: &mut DbConn<'_>,
    firm_id: i64,
    name: &str,
    now: NaiveDateTime,
) -> DbResult<Category> {
    Ok(with_conn!(db, |c| diesel::insert_into(categories::table)
        .values((
            categories::firm_id.eq(firm_id),
            categories::name.eq(name),
            categories::created_at.eq(now),
        ))
        .returning(Category::as_returning())
        .get_result(c)
        .await)?)
}

pub async fn find_category(db: &mut DbConn<'_>, firm_id: i64, id: i64) -> DbResult<Category> {
    Ok(with_conn!(db, |c| categories::table
        .filter(categories::firm_id.eq(firm_id))
        .filter(categories::id.eq(id))
        .select(Category::as_select())
        .first(c)
        .await)?)
}

/// One page of the firm's live categories by name then id.
pub async fn list_categories(
    db: &mut DbConn<'_>,
    firm_id: i64,
    page: &Keyset<(String, i64)>,
) -> DbResult<Vec<Category>> {
    Ok(with_conn!(db, |c| {
        let query = categories::table
            .filter(categories::firm_id.eq(firm_id))
            .filter(categories::archived_at.is_null())
            .into_boxed();
        seek_two!(query, page, categories::name, categories::id)
            .select(Category::as_select())
            .load(c)
            .await
    })?)
}

/// How many live categories the firm has.
pub async fn count_categories(db: &mut DbConn<'_>, firm_id: i64) -> DbResult<i64> {
    Ok(with_conn!(db, |c| categories::table
        .filter(categories::firm_id.eq(firm_id))
        .filter(categories::archived_at.is_null())
        .count()
        .get_result(c)
        .await)?)
}

/// The firm's categories among `ids`.
pub async fn find_categories(
    db: &mut DbConn<'_>,
    firm_id: i64,
    ids: &[i64],
) -> DbResult<Vec<Category>> {
    Ok(with_conn!(db, |c| categories::table
        .filter(categories::firm_id.eq(firm_id))
        .filter(categories::id.eq_any(ids))
        .select(Category::as_select())
        .load(c)
        .await)?)
}

pub async fn update_category(
    db: &mut DbConn<'_>,
    firm_id: i64,
    id: i64,
    name: &str,
) -> DbResult<Category> {
    Ok(with_conn!(db, |c| diesel::update(
        categories::table
            .filter(categories::firm_id.eq(firm_id))
            .filter(categories::id.eq(id))
    )
    .set(categories::name.eq(name))
    .returning(Category::as_returning())
    .get_result(c)
    .await)?)
}

pub async fn insert_service(
    db: &mut DbConn<'_>,
    firm_id: i64,
    fields: &ServiceFields,
    now: NaiveDateTime,
) -> DbResult<Service> {
    Ok(with_conn!(db, |c| diesel::insert_into(services::table)
        .values((
            services::firm_id.eq(firm_id),
            fields,
            services::created_at.eq(now),
        ))
        .returning(Service::as_returning())
        .get_result(c)
        .await)?)
}

pub async fn update_service(
    db: &mut DbConn<'_>,
    firm_id: i64,
    id: i64,
    fields: &ServiceFields,
) -> DbResult<Service> {
    Ok(with_conn!(db, |c| diesel::update(
        services::table
            .filter(services::firm_id.eq(firm_id))
            .filter(services::id.eq(id))
    )
    .set(fields)
    .returning(Service::as_returning())
    .get_result(c)
    .await)?)
}

pub async fn set_service_archived(
    db: &mut DbConn<'_>,
    firm_id: i64,
    id: i64,
    archived_at: Option<NaiveDateTime>,
) -> DbResult<Service> {
    Ok(with_conn!(db, |c| diesel::update(
        services::table
            .filter(services::firm_id.eq(firm_id))
            .filter(services::id.eq(id))
    )
    .set(services::archived_at.eq(archived_at))
    .returning(Service::as_returning())
    .get_result(c)
    .await)?)
}

pub async fn find_service(db: &mut DbConn<'_>, firm_id: i64, id: i64) -> DbResult<Service> {
    Ok(with_conn!(db, |c| services::table
        .filter(services::firm_id.eq(firm_id))
        .filter(services::id.eq(id))
        .select(Service::as_select())
        .first(c)
        .await)?)
}

/// Services by id, across the firm (generation reads them per batch).
pub async fn find_services(
    db: &mut DbConn<'_>,
    firm_id: i64,
    ids: &[i64],
) -> DbResult<Vec<Service>> {
    let ids = ids.to_vec();
    Ok(with_conn!(db, |c| services::table
        .filter(services::firm_id.eq(firm_id))
        .filter(services::id.eq_any(&ids))
        .select(Service::as_select())
        .load(c)
        .await)?)
}

/// The firm's services matching the filters, as a boxed query (for a page or a count).
macro_rules! filtered_services {
    ($firm_id:expr, $category_ids:expr, $include_archived:expr) => {{
        let mut query = services::table
            .filter(services::firm_id.eq($firm_id))
            .into_boxed();
        if let Some(category_ids) = $category_ids {
            query = query.filter(services::category_id.eq_any(category_ids));
        }
        if !$include_archived {
            query = query.filter(services::archived_at.is_null());
        }
        query
    }};
}

/// One page of the firm's services by title then id.
pub async fn list_services(
    db: &mut DbConn<'_>,
    firm_id: i64,
    category_id: Option<i64>,
    include_archived: bool,
    page: &Keyset<(String, i64)>,
) -> DbResult<Vec<Service>> {
    let category_ids = category_id.map(|id| vec![id]);
    // Boxed queries are tied to one backend, so each arm of `with_conn!` builds its own.
    Ok(with_conn!(db, |c| {
        let query = filtered_services!(firm_id, category_ids.as_deref(), include_archived);
        seek_two!(query, page, services::title, services::id)
            .select(Service::as_select())
            .load(c)
            .await
    })?)
}

/// How many services match the filters of [`list_services`].
pub async fn count_services(
    db: &mut DbConn<'_>,
    firm_id: i64,
    category_id: Option<i64>,
    include_archived: bool,
) -> DbResult<i64> {
    let category_ids = category_id.map(|id| vec![id]);
    Ok(with_conn!(db, |c| filtered_services!(
        firm_id,
        category_ids.as_deref(),
        include_archived
    )
    .count()
    .get_result(c)
    .await)?)
}

/// The live services of several of the firm's categories, by title then id.
pub async fn services_of_categories(
    db: &mut DbConn<'_>,
    firm_id: i64,
    category_ids: &[i64],
) -> DbResult<Vec<Service>> {
    Ok(with_conn!(db, |c| filtered_services!(
        firm_id,
        Some(category_ids),
        false
    )
    .order((services::title, services::id))
    .select(Service::as_select())
    .load(c)
    .await)?)
}

/// The live items of several of the firm's services, in their order.
pub async fn items_of_services(
    db: &mut DbConn<'_>,
    firm_id: i64,
    service_ids: &[i64],
) -> DbResult<Vec<ServiceItem>> {
    Ok(with_conn!(db, |c| service_items::table
        .filter(service_items::firm_id.eq(firm_id))
        .filter(service_items::service_id.eq_any(service_ids))
        .filter(service_items::archived_at.is_null())
        .order((
            service_items::service_id,
            service_items::position,
            service_items::id
        ))
        .select(ServiceItem::as_select())
        .load(c)
        .await)?)
}

/// The services of several of the firm's mission lines, as (line id, service) pairs.
pub async fn services_of_lines(
    db: &mut DbConn<'_>,
    firm_id: i64,
    line_ids: &[i64],
) -> DbResult<Vec<(i64, Service)>> {
    use super::schema::mission_lines;
    Ok(with_conn!(db, |c| mission_lines::table
        .inner_join(services::table)
        .filter(mission_lines::firm_id.eq(firm_id))
        .filter(services::firm_id.eq(firm_id))
        .filter(mission_lines::id.eq_any(line_ids))
        .select((mission_lines::id, Service::as_select()))
        .load(c)
        .await)?)
}

pub async fn insert_items(db: &mut DbConn<'_>, items: &[NewServiceItem]) -> DbResult<usize> {
    // One statement per item: diesel-async has no multi-row insert for SQLite, and a service
    // has a handful of items.
    let mut inserted = 0;
    for item in items {
        inserted += with_conn!(db, |c| diesel::insert_into(service_items::table)
            .values(item)
            .execute(c)
            .await)?;
    }
    Ok(inserted)
}

/// The live items of a service, in their order.
pub async fn list_items(
    db: &mut DbConn<'_>,
    firm_id: i64,
    service_id: i64,
) -> DbResult<Vec<ServiceItem>> {
    Ok(with_conn!(db, |c| service_items::table
        .filter(service_items::firm_id.eq(firm_id))
        .filter(service_items::service_id.eq(service_id))
        .filter(service_items::archived_at.is_null())
        .order((service_items::position, service_items::id))
        .select(ServiceItem::as_select())
        .load(c)
        .await)?)
}

/// The live items of several services at once (generation reads them per batch).
pub async fn list_items_of_services(
    db: &mut DbConn<'_>,
    service_ids: &[i64],
) -> DbResult<Vec<ServiceItem>> {
    let ids = service_ids.to_vec();
    Ok(with_conn!(db, |c| service_items::table
        .filter(service_items::service_id.eq_any(&ids))
        .filter(service_items::archived_at.is_null())
        .order((
            service_items::service_id,
            service_items::position,
            service_items::id
        ))
        .select(ServiceItem::as_select())
        .load(c)
        .await)?)
}

pub async fn update_item(
    db: &mut DbConn<'_>,
    firm_id: i64,
    item_id: i64,
    kind: ItemKind,
    text: &str,
    position: i32,
) -> DbResult<usize> {
    Ok(with_conn!(db, |c| diesel::update(
        service_items::table
            .filter(service_items::firm_id.eq(firm_id))
            .filter(service_items::id.eq(item_id))
    )
    .set((
        service_items::kind.eq(kind),
        service_items::text.eq(text),
        service_items::position.eq(position),
    ))
    .execute(c)
    .await)?)
}

pub async fn set_item_position(
    db: &mut DbConn<'_>,
    firm_id: i64,
    item_id: i64,
    position: i32,
) -> DbResult<usize> {
    Ok(with_conn!(db, |c| diesel::update(
        service_items::table
            .filter(service_items::firm_id.eq(firm_id))
            .filter(service_items::id.eq(item_id))
    )
    .set(service_items::position.eq(position))
    .execute(c)
    .await)?)
}

/// Archives items no longer in a service (occurrences already generated keep their copy).
pub async fn archive_items_except(
    db: &mut DbConn<'_>,
    firm_id: i64,
    service_id: i64,
    keep: &[i64],
    now: NaiveDateTime,
) -> DbResult<usize> {
    let keep = keep.to_vec();
    Ok(with_conn!(db, |c| diesel::update(
        service_items::table
            .filter(service_items::firm_id.eq(firm_id))
            .filter(service_items::service_id.eq(service_id))
            .filter(service_items::archived_at.is_null())
            .filter(service_items::id.ne_all(&keep))
    )
    .set(service_items::archived_at.eq(now))
    .execute(c)
    .await)?)
}
