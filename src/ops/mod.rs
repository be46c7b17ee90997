//! Operations: the product's rules, once, behind every door. GraphQL resolvers, the /sign-in
//! page, the CLI (`firm create`), the demo seed and the portal to come parse their input, call
//! one operation here and map its answer; none of them writes through `crate::db` itself (a
//! test, `tests/it/layers.rs`, fails if one does).
//!
//! An operation is a plain async function taking the [`Env`] (pool, generation settings,
//! event bus), an [`Actor`] (a staff member with a role, a contact, or the system), and typed
//! input with numeric ids. It checks the actor's permission and the rules, writes in one
//! transaction (with the outbox rows it owes), publishes its events after the commit, and
//! returns rows of `crate::db` or one [`OpError`]. Signing, extending or adding a line then
//! runs generation for that mission, which commits in its own batches as the scheduler does.
//!
//! Never here: async-graphql, axum or HTML types, request parsing, throttling per client IP
//! (the doors own those), or SQL (that is `crate::db`).

pub mod access;
pub mod answers;
pub mod catalog;
pub mod clients;
pub mod documents;
pub mod error;
pub mod journal;
pub mod missions;
pub mod portal;
// The firm's day (issue 12, second half): remind now, bulk work, imports, calendar feeds, digests.
pub mod bulk;
pub mod calendar;
pub mod import;
pub mod remind;
pub mod staff;
pub mod webhooks;
pub mod work;
// Replies by email (issue 15).
pub mod replies;
pub mod sweep;

use chrono::Utc;

pub use error::{OpError, found};

use crate::announce::{Occurrence, Recipients, deliveries_for_event};
use crate::db::{DbConn, DbError, Pool, firms, outbox};
use crate::domain::schedule::ScheduleLimits;
use crate::domain::{DeliveryEvent, Role};
use crate::events::{EventBus, RequestEvent, RequestEventKind};
use crate::generation::{GenerationSettings, firm_today, generate_for_firm};

/// What operations reach besides their input: the database, the generation settings (and
/// their bounds), and this process's event bus when subscribers may listen.
#[derive(Clone, Copy)]
pub struct Env<'a> {
    pub pool: &'a Pool,
    pub generation: &'a GenerationSettings,
    pub events: Option<&'a EventBus>,
    /// The document store, where a door accepts uploads (`None`: files are refused).
    pub storage: Option<&'a crate::storage::Storage>,
}

impl<'a> Env<'a> {
    /// An environment without subscribers (CLI, seed, tests).
    pub fn new(pool: &'a Pool, generation: &'a GenerationSettings) -> Self {
        Self {
            pool,
            generation,
            events: None,
            storage: None,
        }
    }

    /// The same environment with the document store.
    pub fn with_storage(self, storage: &'a crate::storage::Storage) -> Self {
        Self {
            storage: Some(storage),
            ..self
        }
    }

    /// The configured bounds on quantities, items, lines and occurrences.
    pub fn limits(&self) -> ScheduleLimits {
        self.generation.limits
    }

    /// Says that some access ended, after the commit that ended it: callers cached by this
    /// process (and, through the relay, by the others) are resolved again.
    pub(crate) fn access_changed(&self) {
        if let Some(events) = self.events {
            events.access_changed();
        }
    }

    /// Tells this process's `requestEvents` subscribers about a request.
    pub(crate) fn publish(
        &self,
        kind: RequestEventKind,
        request: &crate::db::work::InformationRequest,
    ) {
        publish(self.events, kind, request);
    }
}

/// Who asks for an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// A signed-in member of a firm.
    Staff {
        user_id: i64,
        firm_id: i64,
        role: Role,
    },
    /// A signed-in contact of a client.
    Contact {
        contact_id: i64,
        client_id: i64,
        firm_id: i64,
    },
    /// Rappel itself acting for a firm (the CLI, the demo seed, an import): an admin's rights
    /// within that firm, and no one's session.
    System { firm_id: i64 },
}

/// A firm-side actor's firm and rights, once checked.
#[derive(Debug, Clone, Copy)]
pub struct FirmActor {
    pub firm_id: i64,
    pub role: Role,
    /// The staff member, or None for the system.
    pub user_id: Option<i64>,
}

/// A contact actor, once checked.
#[derive(Debug, Clone, Copy)]
pub struct ContactActor {
    pub contact_id: i64,
    pub client_id: i64,
    pub firm_id: i64,
}

impl Actor {
    /// The firm a staff member or the system acts for; contacts are FORBIDDEN.
    pub fn firm_side(&self) -> Result<FirmActor, OpError> {
        match *self {
            Self::Staff {
                user_id,
                firm_id,
                role,
            } => Ok(FirmActor {
                firm_id,
                role,
                user_id: Some(user_id),
            }),
            Self::System { firm_id } => Ok(FirmActor {
                firm_id,
                role: Role::Admin,
                user_id: None,
            }),
            Self::Contact { .. } => Err(OpError::Forbidden(
                "only the firm's staff may do this".into(),
            )),
        }
    }

    /// Like [`Actor::firm_side`], for admins (and the system) only.
    pub fn admin(&self) -> Result<FirmActor, OpError> {
        let actor = self.firm_side()?;
        if actor.role == Role::Admin {
            Ok(actor)
        } else {
            Err(OpError::Forbidden("only a firm admin may do this".into()))
        }
    }

    /// The contact acting; firm-side actors are FORBIDDEN.
    pub fn contact(&self) -> Result<ContactActor, OpError> {
        match *self {
            Self::Contact {
                contact_id,
                client_id,
                firm_id,
            } => Ok(ContactActor {
                contact_id,
                client_id,
                firm_id,
            }),
            Self::Staff { .. } | Self::System { .. } => Err(OpError::Forbidden(
                "only a client's contact may do this".into(),
            )),
        }
    }
}

/// Tells this process's `requestEvents` subscribers about a request (after the commit).
fn publish(
    events: Option<&EventBus>,
    kind: RequestEventKind,
    request: &crate::db::work::InformationRequest,
) {
    if let Some(events) = events {
        events.publish(RequestEvent {
            kind,
            firm_id: request.firm_id,
            client_id: request.client_id,
            request_id: request.id,
        });
    }
}

/// Enqueues the webhook deliveries of a request event (answered, closed: the client is not
/// emailed about its own answer or a closure), in the caller's transaction.
pub(crate) async fn enqueue_webhooks(
    db: &mut DbConn<'_>,
    request: &crate::db::work::InformationRequest,
    event: DeliveryEvent,
) -> Result<usize, DbError> {
    enqueue_webhooks_with(db, request, event, None).await
}

/// Like [`enqueue_webhooks`], with `answer` (the answer's message and files' metadata) added
/// to the payload's `data` when given.
pub(crate) async fn enqueue_webhooks_with(
    db: &mut DbConn<'_>,
    request: &crate::db::work::InformationRequest,
    event: DeliveryEvent,
    answer: Option<serde_json::Value>,
) -> Result<usize, DbError> {
    let endpoints = outbox::endpoints_for_client(db, request.firm_id, request.client_id).await?;
    let now = Utc::now();
    let deliveries = deliveries_for_event(
        request,
        event,
        &Recipients {
            contacts: &[],
            endpoints: &endpoints,
        },
        now,
        now.naive_utc(),
        // Answers and closures may repeat; each is announced.
        Occurrence::At(now),
    );
    let deliveries: Vec<_> = match answer {
        None => deliveries,
        Some(answer) => deliveries
            .into_iter()
            .map(|mut delivery| {
                if let Ok(mut body) = serde_json::from_str::<serde_json::Value>(&delivery.payload) {
                    if let Some(data) = body.get_mut("data").and_then(|d| d.as_object_mut()) {
                        data.insert("answer".into(), answer.clone());
                    }
                    delivery.payload = body.to_string();
                }
                delivery
            })
            .collect(),
    };
    outbox::enqueue_many(db, &deliveries).await
}

/// Runs generation for one mission now (after signing, extending or adding a line).
async fn generate_mission(env: Env<'_>, firm_id: i64, mission_id: i64) -> Result<(), OpError> {
    let firm = {
        let mut conn = env.pool.get().await?;
        found(firms::find_firm(&mut conn.as_db(), firm_id).await, "firm")?
    };
    let now = Utc::now();
    let today = firm_today(&firm, now);
    generate_for_firm(
        env.pool,
        env.generation,
        &firm,
        today,
        now,
        Some(mission_id),
        env.events,
    )
    .await?;
    Ok(())
}
