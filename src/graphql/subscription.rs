//! `requestEvents`: request events of the caller's own scope, streamed over /graphql/ws.
//! A contact hears about its client's requests only; staff about their firm's. Each event
//! carries the client-visible view of the request, read fresh from the database.

use async_graphql::{Context, SimpleObject, Subscription};
use futures_util::Stream;
use tokio::sync::broadcast::error::RecvError;

use crate::db::{Pool, clients, tokens, work};
use crate::error::AppError;
use crate::events::{EventBus, RequestEvent, RequestEventKind};
use crate::graphql::client::ClientRequest;
use crate::graphql::context::{Caller, caller};

/// Root of subscriptions.
pub struct SubscriptionRoot;

/// One request event.
#[derive(SimpleObject)]
pub struct RequestEventPayload {
    /// What happened.
    pub kind: RequestEventKind,
    /// The request as it is after the event.
    pub request: ClientRequest,
}

/// Whose events a subscriber may hear.
#[derive(Clone, Copy)]
enum Scope {
    Firm(i64),
    Client {
        firm_id: i64,
        client_id: i64,
        contact_id: i64,
    },
}

impl Scope {
    fn covers(self, event: &RequestEvent) -> bool {
        match self {
            Scope::Firm(firm_id) => event.firm_id == firm_id,
            Scope::Client {
                firm_id, client_id, ..
            } => event.firm_id == firm_id && event.client_id == client_id,
        }
    }
}

/// Live events over WebSocket (graphql-transport-ws at /graphql/ws), scoped to the caller.
#[Subscription(name = "Subscription")]
impl SubscriptionRoot {
    /// Requests created, answered or closed in the caller's scope, as they happen.
    ///
    /// Live notifications, not a log: events are not replayed. Some can be missed: those
    /// another server instance publishes while this one reconnects to PostgreSQL's LISTEN
    /// channel (about one second after a lost connection), those sent while the subscriber
    /// is disconnected, and the oldest ones when a slow subscriber falls more than the
    /// buffer behind. After (re)subscribing, read `client.requests` or
    /// `firm.informationRequests` to catch up; the stream ends when the caller's token is
    /// revoked or expires, or the contact or its client is archived.
    async fn request_events(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<impl Stream<Item = RequestEventPayload> + use<>> {
        let (scope, token_id) = match caller(ctx) {
            Caller::Staff(staff) => (Scope::Firm(staff.firm_id), staff.token_id),
            Caller::Contact(contact) => (
                Scope::Client {
                    firm_id: contact.firm_id,
                    client_id: contact.client_id,
                    contact_id: contact.contact_id,
                },
                contact.token_id,
            ),
            Caller::Anonymous => return Err(AppError::Unauthenticated.into()),
        };
        let pool = ctx
            .data::<Pool>()
            .map_err(|_| AppError::Internal("no database in the schema data".into()))?
            .clone();
        let receiver = ctx
            .data::<EventBus>()
            .map_err(|_| AppError::Internal("no event bus in the schema data".into()))?
            .subscribe();
        Ok(futures_util::stream::unfold(
            (receiver, pool),
            move |(mut receiver, pool)| async move {
                loop {
                    let event = match receiver.recv().await {
                        Ok(event) => event,
                        Err(RecvError::Lagged(missed)) => {
                            tracing::warn!(missed, "a subscriber fell behind and missed events");
                            continue;
                        }
                        Err(RecvError::Closed) => return None,
                    };
                    if !scope.covers(&event) {
                        continue;
                    }
                    let Ok(mut conn) = pool.get().await else {
                        continue;
                    };
                    // The caller was checked at connection init; a token revoked or expired
                    // since (logout, a removed member), or an archived contact, ends the stream.
                    if !still_allowed(&mut conn.as_db(), scope, token_id).await {
                        return None;
                    }
                    let request = match scope {
                        Scope::Firm(firm_id) => {
                            work::find_request(&mut conn.as_db(), firm_id, event.request_id).await
                        }
                        Scope::Client {
                            firm_id, client_id, ..
                        } => {
                            work::find_client_request(
                                &mut conn.as_db(),
                                firm_id,
                                client_id,
                                event.request_id,
                            )
                            .await
                        }
                    };
                    drop(conn);
                    if let Ok(request) = request {
                        let payload = RequestEventPayload {
                            kind: event.kind,
                            request: ClientRequest(request),
                        };
                        return Some((payload, (receiver, pool)));
                    }
                }
            },
        ))
    }
}

/// Whether the subscriber's token still works and, for a contact, the contact is not archived.
async fn still_allowed(db: &mut crate::db::DbConn<'_>, scope: Scope, token_id: i64) -> bool {
    let now = chrono::Utc::now().naive_utc();
    if !tokens::is_active(db, token_id, now).await.unwrap_or(false) {
        return false;
    }
    match scope {
        Scope::Firm(_) => true,
        Scope::Client { contact_id, .. } => clients::find_contact_by_id(db, contact_id)
            .await
            .is_ok_and(|contact| contact.archived_at.is_none()),
    }
}
