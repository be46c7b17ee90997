//! The catalogue: categories and services (their items, their order, their archive). A
//! service's lead days, items and reminder policy are checked here; a longer lead moves the
//! watermarks of the lines using the service back, so no occurrence is skipped.

use chrono::{Duration, Utc};

use super::journal::{self, Entry};
use super::{Actor, Env, OpError, found};
use crate::db::catalog::{self, Category, NewServiceItem, Service, ServiceFields};
use crate::db::missions;
use crate::domain::placeholders;
use crate::domain::schedule::{self, ScheduleLimits};
use crate::domain::validation::{MAX_TEXT_CHARS, check_count, check_name, check_text};
use crate::domain::{DeliverableType, ItemKind};
use crate::transaction;

/// One item of a service input.
#[derive(Debug, Clone)]
pub struct ServiceItemInput {
    /// An existing item's id, to keep it (and its generated history) when updating.
    pub id: Option<i64>,
    pub kind: ItemKind,
    /// A task's title, or the text the client reads.
    pub title: String,
}

/// When reminders are sent; every field optional.
#[derive(Debug, Clone, Default)]
pub struct ReminderPolicyInput {
    pub days_before: Option<i32>,
    pub on_due_date: Option<bool>,
    pub every_days: Option<i32>,
    pub max_count: Option<i32>,
}

/// A service as a door hands it over.
#[derive(Debug, Clone)]
pub struct ServiceInput {
    pub category_id: Option<i64>,
    pub title: String,
    pub deliverable_type: DeliverableType,
    pub lead_days: i32,
    pub items: Vec<ServiceItemInput>,
    pub reminder_policy: Option<ReminderPolicyInput>,
}

/// Creates a category; its name is unique in the firm.
pub async fn create_category(env: Env<'_>, actor: &Actor, name: &str) -> Result<Category, OpError> {
    let firm_id = actor.firm_side()?.firm_id;
    let name = check_name("name", name)?;
    let mut conn = env.pool.get().await?;
    catalog::insert_category(&mut conn.as_db(), firm_id, &name, Utc::now().naive_utc())
        .await
        .map_err(|error| match OpError::from(error) {
            OpError::Conflict(_) => OpError::Conflict(format!("a category named {name:?} exists")),
            other => other,
        })
}

/// Renames a category.
pub async fn rename_category(
    env: Env<'_>,
    actor: &Actor,
    id: i64,
    name: &str,
) -> Result<Category, OpError> {
    let firm_id = actor.firm_side()?.firm_id;
    let name = check_name("name", name)?;
    let mut conn = env.pool.get().await?;
    found(
        catalog::update_category(&mut conn.as_db(), firm_id, id, &name).await,
        "category",
    )
}

/// A checked service: its row fields and its items in order.
type CheckedService = (ServiceFields, Vec<(Option<i64>, ItemKind, String)>);

/// Checks a service input; returns the row fields and the items in order.
async fn validate_service_input(
    db: &mut crate::db::DbConn<'_>,
    firm_id: i64,
    input: &ServiceInput,
    limits: &ScheduleLimits,
) -> Result<CheckedService, OpError> {
    let category_id = match input.category_id {
        Some(id) => {
            found(catalog::find_category(db, firm_id, id).await, "category")?;
            Some(id)
        }
        None => None,
    };
    let title = check_name("title", &input.title)?;
    let lead_days = schedule::validate_lead_days(i64::from(input.lead_days))?;
    if input.items.is_empty() {
        return Err(OpError::bad_input(
            "items",
            "a service needs at least one task or information request",
        ));
    }
    check_count(
        "items",
        "items",
        input.items.len(),
        limits.max_service_items,
    )?;
    let mut items = Vec::with_capacity(input.items.len());
    for (index, item) in input.items.iter().enumerate() {
        let field = format!("items.{index}.title");
        let text = check_text(&field, &item.title, MAX_TEXT_CHARS)?;
        placeholders::check(&text).map_err(|reason| OpError::bad_input(field, reason))?;
        items.push((item.id, item.kind, text));
    }
    let policy = input.reminder_policy.as_ref();
    let bounded = |field: &str, value: Option<i32>, min: i32, max: i32| match value {
        Some(value) if !(min..=max).contains(&value) => Err(OpError::bad_input(
            format!("reminderPolicy.{field}"),
            format!("{field} must be between {min} and {max}, not {value}"),
        )),
        _ => Ok(value),
    };
    let fields = ServiceFields {
        category_id,
        title,
        deliverable_type: input.deliverable_type,
        lead_days: i32::try_from(lead_days).unwrap_or(0),
        reminder_days_before: bounded("daysBefore", policy.and_then(|p| p.days_before), 0, 366)?,
        reminder_on_due_date: policy.and_then(|p| p.on_due_date),
        reminder_every_days: bounded("everyDays", policy.and_then(|p| p.every_days), 1, 366)?,
        reminder_max_count: bounded("maxCount", policy.and_then(|p| p.max_count), 0, 100)?,
    };
    Ok((fields, items))
}

/// Creates a service with its items.
pub async fn create_service(
    env: Env<'_>,
    actor: &Actor,
    input: &ServiceInput,
) -> Result<Service, OpError> {
    let firm_id = actor.firm_side()?.firm_id;
    let mut conn = env.pool.get().await?;
    let (fields, items) =
        validate_service_input(&mut conn.as_db(), firm_id, input, &env.limits()).await?;
    if items.iter().any(|(id, _, _)| id.is_some()) {
        return Err(OpError::bad_input(
            "items",
            "a new service's items have no id yet",
        ));
    }
    let now = Utc::now().naive_utc();
    transaction!(conn, |tx| {
        let service = catalog::insert_service(&mut tx, firm_id, &fields, now).await?;
        let rows: Vec<NewServiceItem> = items
            .iter()
            .enumerate()
            .map(|(position, (_, kind, text))| NewServiceItem {
                firm_id,
                service_id: service.id,
                kind: *kind,
                text: text.clone(),
                position: i32::try_from(position).unwrap_or(i32::MAX),
                created_at: now,
            })
            .collect();
        catalog::insert_items(&mut tx, &rows).await?;
        journal::record(
            &mut tx,
            actor,
            now,
            &[Entry::new("service.created", "service", service.id)],
        )
        .await?;
        Ok::<_, OpError>(service)
    })
}

/// Updates a service. Items with an `id` are kept (edited in place), items without are
/// added, items left out are archived. Occurrences already generated keep their text.
pub async fn update_service(
    env: Env<'_>,
    actor: &Actor,
    service_id: i64,
    input: &ServiceInput,
) -> Result<Service, OpError> {
    let firm_id = actor.firm_side()?.firm_id;
    let mut conn = env.pool.get().await?;
    let mut db = conn.as_db();
    let previous = found(
        catalog::find_service(&mut db, firm_id, service_id).await,
        "service",
    )?;
    let (fields, items) = validate_service_input(&mut db, firm_id, input, &env.limits()).await?;
    // A longer lead moves creation dates earlier, possibly before a line's watermark:
    // move the watermarks back by as much, so no occurrence is skipped.
    let lead_growth = i64::from(fields.lead_days - previous.lead_days).max(0);
    let lines = if lead_growth > 0 {
        missions::lines_of_service(&mut db, firm_id, service_id).await?
    } else {
        Vec::new()
    };
    let existing: Vec<i64> = catalog::list_items(&mut db, firm_id, service_id)
        .await?
        .into_iter()
        .map(|item| item.id)
        .collect();
    for (index, (item_id, _, _)) in items.iter().enumerate() {
        if item_id.is_some_and(|item_id| !existing.contains(&item_id)) {
            return Err(OpError::bad_input(
                format!("items.{index}.id"),
                "this item is not one of the service's items",
            ));
        }
    }
    let now = Utc::now().naive_utc();
    transaction!(conn, |tx| {
        let service = catalog::update_service(&mut tx, firm_id, service_id, &fields).await?;
        for line in &lines {
            if let Some(through) = line.generated_through {
                let earlier = through - Duration::days(lead_growth);
                missions::lower_generated_through(&mut tx, line.id, earlier).await?;
            }
        }
        let keep: Vec<i64> = items.iter().filter_map(|(id, _, _)| *id).collect();
        catalog::archive_items_except(&mut tx, firm_id, service_id, &keep, now).await?;
        for (position, (item_id, kind, text)) in items.iter().enumerate() {
            let position = i32::try_from(position).unwrap_or(i32::MAX);
            match item_id {
                Some(item_id) => {
                    catalog::update_item(&mut tx, firm_id, *item_id, *kind, text, position).await?;
                }
                None => {
                    catalog::insert_items(
                        &mut tx,
                        &[NewServiceItem {
                            firm_id,
                            service_id,
                            kind: *kind,
                            text: text.clone(),
                            position,
                            created_at: now,
                        }],
                    )
                    .await?;
                }
            }
        }
        journal::record(
            &mut tx,
            actor,
            now,
            &[Entry::new("service.updated", "service", service_id)],
        )
        .await?;
        Ok::<_, OpError>(service)
    })
}

/// Puts a service's items in the given order (every live item, once).
pub async fn reorder_service_items(
    env: Env<'_>,
    actor: &Actor,
    service_id: i64,
    order: &[i64],
) -> Result<Service, OpError> {
    let firm_id = actor.firm_side()?.firm_id;
    let mut conn = env.pool.get().await?;
    let mut db = conn.as_db();
    let service = found(
        catalog::find_service(&mut db, firm_id, service_id).await,
        "service",
    )?;
    let mut existing: Vec<i64> = catalog::list_items(&mut db, firm_id, service_id)
        .await?
        .into_iter()
        .map(|item| item.id)
        .collect();
    let mut sorted = order.to_vec();
    sorted.sort_unstable();
    existing.sort_unstable();
    if sorted != existing {
        return Err(OpError::bad_input(
            "itemIds",
            "give every item of the service exactly once",
        ));
    }
    transaction!(conn, |tx| {
        for (position, item_id) in order.iter().enumerate() {
            let position = i32::try_from(position).unwrap_or(i32::MAX);
            catalog::set_item_position(&mut tx, firm_id, *item_id, position).await?;
        }
        journal::record(
            &mut tx,
            actor,
            Utc::now().naive_utc(),
            &[Entry::new("service.updated", "service", service_id)
                .detail(serde_json::json!({ "itemOrder": order }))],
        )
        .await?;
        Ok::<_, OpError>(())
    })?;
    Ok(service)
}

/// Archives a service: its lines stop being offered for new missions; signed missions keep
/// generating from it.
pub async fn archive_service(env: Env<'_>, actor: &Actor, id: i64) -> Result<Service, OpError> {
    let firm_id = actor.firm_side()?.firm_id;
    let mut conn = env.pool.get().await?;
    let now = Utc::now().naive_utc();
    transaction!(conn, |tx| {
        let service = found(
            catalog::set_service_archived(&mut tx, firm_id, id, Some(now)).await,
            "service",
        )?;
        journal::record(
            &mut tx,
            actor,
            now,
            &[Entry::new("service.archived", "service", id)],
        )
        .await?;
        Ok::<_, OpError>(service)
    })
}
