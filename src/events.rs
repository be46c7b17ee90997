//! In-process request events for GraphQL subscriptions: generation and mutations publish,
//! `requestEvents` subscribers receive those of their own scope. Events carry ids only; the
//! subscriber reads what its view may show.

use tokio::sync::broadcast;

/// What happened to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, async_graphql::Enum)]
pub enum RequestEventKind {
    Created,
    Answered,
    Closed,
}

/// One event: which request, of which firm and client.
#[derive(Debug, Clone)]
pub struct RequestEvent {
    pub kind: RequestEventKind,
    pub firm_id: i64,
    pub client_id: i64,
    pub request_id: i64,
}

/// A broadcast channel shared by the process; slow subscribers miss old events rather than
/// holding memory.
#[derive(Clone)]
pub struct EventBus {
    sender: broadcast::Sender<RequestEvent>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBus {
    pub fn new() -> Self {
        let (sender, _) = broadcast::channel(1024);
        Self { sender }
    }

    /// Publishes an event; nobody listening is fine.
    pub fn publish(&self, event: RequestEvent) {
        let _ = self.sender.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<RequestEvent> {
        self.sender.subscribe()
    }
}
