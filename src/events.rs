//! Request events for GraphQL subscriptions: generation and mutations publish,
//! `requestEvents` subscribers receive those of their own scope. Events carry ids only; the
//! subscriber reads what its view may show.
//!
//! Within a process a broadcast channel carries them. On PostgreSQL, where several instances
//! share one database, [`EventBus::bridge_postgres`] also relays them through LISTEN/NOTIFY, so
//! a subscriber connected to one instance hears what another instance did. Delivery of events
//! is best effort (a subscriber that falls behind or an instance that restarts misses some);
//! the data itself is always in the database.
//!
//! The bus also carries "access changed" signals (a token revoked, a contact, client or staff
//! member archived): they bump an epoch that cached callers are checked against, in this
//! process at once and in the others through the same relay. An instance whose listener lost
//! its connection bumps its own epoch when it listens again, since it may have missed some.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc};

/// The PostgreSQL channel events travel on between instances.
const CHANNEL: &str = "rappel_request_events";

/// What happened to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, async_graphql::Enum)]
pub enum RequestEventKind {
    /// The request was just created (its creation date came).
    Created,
    /// The client answered it.
    Answered,
    /// The firm closed it.
    Closed,
}

/// One event: which request, of which firm and client.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RequestEvent {
    pub kind: RequestEventKind,
    pub firm_id: i64,
    pub client_id: i64,
    pub request_id: i64,
}

/// What travels between instances: a request event, or a change of who may sign in.
#[derive(Debug, Clone)]
enum Outgoing {
    Request(RequestEvent),
    AccessChanged,
}

/// A message on the wire between instances, with the instance it comes from. An older
/// instance, which knows only `event`, ignores the messages without one.
#[derive(Serialize, Deserialize)]
struct Relayed {
    origin: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    event: Option<RequestEvent>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    access_changed: bool,
}

/// A broadcast channel shared by the process; slow subscribers miss old events rather than
/// holding memory.
#[derive(Clone)]
pub struct EventBus {
    sender: broadcast::Sender<RequestEvent>,
    relay: Option<mpsc::UnboundedSender<Outgoing>>,
    access_epoch: Arc<AtomicU64>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBus {
    pub fn new() -> Self {
        let (sender, _) = broadcast::channel(1024);
        Self {
            sender,
            relay: None,
            access_epoch: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Publishes an event to this process's subscribers, and to the other instances when
    /// bridged; nobody listening is fine.
    pub fn publish(&self, event: RequestEvent) {
        if let Some(relay) = &self.relay {
            let _ = relay.send(Outgoing::Request(event.clone()));
        }
        let _ = self.sender.send(event);
    }

    /// Says that some access ended (a token revoked, a contact, client or staff member
    /// archived): callers cached before now are resolved again, here at once and on the other
    /// instances when the relay carries it there.
    pub fn access_changed(&self) {
        self.access_epoch.fetch_add(1, Ordering::SeqCst);
        if let Some(relay) = &self.relay {
            let _ = relay.send(Outgoing::AccessChanged);
        }
    }

    /// The number of access changes heard so far: a cached caller read before the latest
    /// one is stale.
    pub fn access_epoch(&self) -> u64 {
        AtomicU64::load(&self.access_epoch, Ordering::SeqCst)
    }

    pub fn subscribe(&self) -> broadcast::Receiver<RequestEvent> {
        self.sender.subscribe()
    }

    /// Relays events between the instances sharing the PostgreSQL database at `url`: this
    /// bus's events are NOTIFYed, and the other instances' are published here. Two dedicated
    /// connections (one listening, one notifying) that reconnect after a failure.
    pub fn bridge_postgres(&mut self, url: &str) {
        let origin = uuid::Uuid::new_v4().simple().to_string();
        let (relay, outgoing) = mpsc::unbounded_channel();
        self.relay = Some(relay);
        tokio::spawn(notify_loop(url.to_string(), origin.clone(), outgoing));
        tokio::spawn(listen_loop(
            url.to_string(),
            origin,
            self.sender.clone(),
            self.access_epoch.clone(),
        ));
    }
}

async fn notify_loop(url: String, origin: String, mut outgoing: mpsc::UnboundedReceiver<Outgoing>) {
    let mut conn: Option<AsyncPgConnection> = None;
    while let Some(message) = outgoing.recv().await {
        let relayed = match message {
            Outgoing::Request(event) => Relayed {
                origin: origin.clone(),
                event: Some(event),
                access_changed: false,
            },
            Outgoing::AccessChanged => Relayed {
                origin: origin.clone(),
                event: None,
                access_changed: true,
            },
        };
        let payload = match serde_json::to_string(&relayed) {
            Ok(payload) => payload,
            Err(_) => continue,
        };
        for _ in 0..2 {
            if conn.is_none() {
                conn = AsyncPgConnection::establish(&url).await.ok();
            }
            let Some(connection) = conn.as_mut() else {
                break;
            };
            let sent = diesel::sql_query("SELECT pg_notify($1, $2)")
                .bind::<diesel::sql_types::Text, _>(CHANNEL)
                .bind::<diesel::sql_types::Text, _>(&payload)
                .execute(connection)
                .await;
            match sent {
                Ok(_) => break,
                Err(error) => {
                    tracing::warn!(%error, "cannot relay a request event; reconnecting");
                    conn = None;
                }
            }
        }
    }
}

async fn listen_loop(
    url: String,
    origin: String,
    local: broadcast::Sender<RequestEvent>,
    access_epoch: Arc<AtomicU64>,
) {
    loop {
        match AsyncPgConnection::establish(&url).await {
            Ok(mut conn) => {
                let listening = diesel::sql_query(format!("LISTEN {CHANNEL}"))
                    .execute(&mut conn)
                    .await;
                if let Err(error) = listening {
                    tracing::warn!(%error, "cannot listen for other instances' events");
                } else {
                    // Changes made while this instance was not listening went unheard.
                    access_epoch.fetch_add(1, Ordering::SeqCst);
                    let mut notifications = std::pin::pin!(conn.notifications_stream());
                    while let Some(notification) = notifications.next().await {
                        let Ok(notification) = notification else {
                            break;
                        };
                        if let Ok(relayed) = serde_json::from_str::<Relayed>(&notification.payload)
                        {
                            if relayed.origin != origin {
                                if relayed.access_changed {
                                    access_epoch.fetch_add(1, Ordering::SeqCst);
                                }
                                if let Some(event) = relayed.event {
                                    let _ = local.send(event);
                                }
                            }
                        }
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "cannot connect to listen for events"),
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}
