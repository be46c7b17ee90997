//! What every mutation resolver needs to call an operation (`crate::ops`): the operation
//! environment taken from the schema data, and the caller as an operation's actor. Resolvers
//! parse ids and inputs, call one operation and map its answer; they hold no rule and write
//! nothing themselves.

use std::sync::LazyLock;

use async_graphql::Context;

use crate::db::Pool;
use crate::delivery::DeliveryControl;
use crate::error::AppError;
use crate::events::EventBus;
use crate::generation::GenerationSettings;
use crate::graphql::context::{Caller, caller};
use crate::ops::{Actor, Env};

static DEFAULT_GENERATION: LazyLock<GenerationSettings> =
    LazyLock::new(GenerationSettings::default);

/// The operations' environment: this schema's pool, generation settings and event bus.
pub fn env<'a>(ctx: &'a Context<'_>) -> Result<Env<'a>, AppError> {
    let pool = ctx
        .data::<Pool>()
        .map_err(|_| AppError::Internal("no database in the schema data".into()))?;
    Ok(Env {
        pool,
        generation: ctx
            .data::<GenerationSettings>()
            .unwrap_or(&DEFAULT_GENERATION),
        events: ctx.data::<EventBus>().ok(),
        storage: ctx.data::<crate::storage::Storage>().ok(),
    })
}

/// The caller as an operation's actor, or UNAUTHENTICATED.
pub fn actor(ctx: &Context<'_>) -> Result<Actor, AppError> {
    match caller(ctx) {
        Caller::Anonymous => Err(AppError::Unauthenticated),
        Caller::Staff(staff) => Ok(Actor::Staff {
            user_id: staff.user_id,
            firm_id: staff.firm_id,
            role: staff.role,
        }),
        Caller::Contact(contact) => Ok(Actor::Contact {
            contact_id: contact.contact_id,
            client_id: contact.client_id,
            firm_id: contact.firm_id,
        }),
    }
}

/// The delivery rules of this schema (webhook URL rule, sending hour, the worker's waker).
pub fn delivery_control(ctx: &Context<'_>) -> DeliveryControl {
    ctx.data_opt::<DeliveryControl>()
        .cloned()
        .unwrap_or_default()
}
