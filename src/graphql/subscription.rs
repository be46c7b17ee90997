//! `requestEvents`: request events of the caller's own scope, streamed over /graphql/ws.
//! A contact hears about its client's requests only; staff about their firm's. Each event
//! carries the client-visible view of the request, read fresh from the database.

use async_graphql::{Context, SimpleObject, Subscription};
use futures_util::Stream;
use tokio::sync::broadcast::error::RecvError;

use crate::db::{Pool, work};
use crate::error::AppError;
use crate::events::{EventBus, RequestEvent, RequestEventKind};
use crate::graphql::client::ClientRequest;
use crate::graphql::context::{Caller, caller};

/// Root of subscriptions.
pub struct SubscriptionRoot;

/// One request event.
#[derive(SimpleObject)]
pub struct RequestEventPayload {
    pub kind: RequestEventKind,
    pub request: ClientRequest,
}

/// Whose events a subscriber may hear.
#[derive(Clone, Copy)]
enum Scope {
    Firm(i64),
    Client { firm_id: i64, client_id: i64 },
}

impl Scope {
    fn covers(self, event: &RequestEvent) -> bool {
        match self {
            Scope::Firm(firm_id) => event.firm_id == firm_id,
            Scope::Client { firm_id, client_id } => {
                event.firm_id == firm_id && event.client_id == client_id
            }
        }
    }
}

#[Subscription]
impl SubscriptionRoot {
    /// Requests created, answered or closed in the caller's scope, as they happen.
    async fn request_events(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<impl Stream<Item = RequestEventPayload> + use<>> {
        let scope = match caller(ctx) {
            Caller::Staff(staff) => Scope::Firm(staff.firm_id),
            Caller::Contact(contact) => Scope::Client {
                firm_id: contact.firm_id,
                client_id: contact.client_id,
            },
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
                    let request = match scope {
                        Scope::Firm(firm_id) => {
                            work::find_request(&mut conn.as_db(), firm_id, event.request_id).await
                        }
                        Scope::Client { firm_id, client_id } => {
                            work::find_request(&mut conn.as_db(), firm_id, event.request_id)
                                .await
                                .and_then(|request| {
                                    if request.client_id == client_id {
                                        Ok(request)
                                    } else {
                                        Err(diesel::result::Error::NotFound.into())
                                    }
                                })
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
