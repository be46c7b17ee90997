//! What one batch of claimed deliveries shares while the worker prepares it: the rows the
//! preparation reads, read ahead together on one connection (a batch of emails to 16 contacts
//! about 4 requests reads its requests in one statement and its contacts in another, not 16 of
//! each plus a firm per email), and the tokens its emails carry, all written in one
//! transaction before any of them leaves. A batch is prepared in a few milliseconds, so its
//! reads are as fresh as one delivery's were. Nothing here sends anything or decides an outcome.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::Hash;

use chrono::NaiveDateTime;

use crate::db::clients::{self, Client, Contact};
use crate::db::firms::{self, Firm};
use crate::db::missions::{self, MissionLine};
use crate::db::outbox::{self, Delivery, WebhookEndpoint};
use crate::db::replies::NewReplyTokenRow;
use crate::db::tokens::{self, NewAccessTokenRow};
use crate::db::work::{self, InformationRequest};
use crate::db::{DbConn, DbError, DbResult, replies};
use crate::domain::{DeliveryEvent, DeliveryKind, Role, TokenKind};
use crate::transaction;

/// The rows one firm's deliveries of a batch name.
#[derive(Default)]
struct Named {
    requests: BTreeSet<i64>,
    contacts: BTreeSet<i64>,
    endpoints: BTreeSet<i64>,
    /// Whether an email is among them: only emails read their firm.
    emails: bool,
    /// The requests emailed to a contact (created, reminded): only those read their client
    /// and mission line.
    emailed: BTreeSet<i64>,
}

/// Rows read for a batch, by id (and firm, as every read is scoped by firm).
#[derive(Default)]
pub(super) struct BatchReads {
    firms: HashMap<i64, Firm>,
    requests: HashMap<(i64, i64), InformationRequest>,
    contacts: HashMap<(i64, i64), Contact>,
    clients: HashMap<(i64, i64), Client>,
    lines: HashMap<(i64, i64), Option<MissionLine>>,
    first_admin_emails: HashMap<i64, Option<String>>,
    endpoints: HashMap<(i64, i64), Option<WebhookEndpoint>>,
}

/// The value at `key` in `cache`, read by `read` on a miss and kept for the rest of the batch.
async fn memo<K: Hash + Eq, V: Clone>(
    cache: &mut HashMap<K, V>,
    key: K,
    read: impl AsyncFnOnce() -> DbResult<V>,
) -> DbResult<V> {
    if let Some(value) = cache.get(&key) {
        return Ok(value.clone());
    }
    let value = read().await?;
    cache.insert(key, value.clone());
    Ok(value)
}

impl BatchReads {
    /// Reads what the batch's deliveries are about in a few statements whatever the batch's
    /// size (per firm: its requests, contacts, endpoints, and the clients and mission lines of
    /// the requests it emails to contacts; the firms of its emails together), so that
    /// preparing each delivery then reads nothing of those. A request, contact, client or firm
    /// that is gone is not cached: the delivery that needs it reads it again and finds it
    /// missing, as it would have without this; a line or endpoint that is gone is kept as
    /// None, as the per-row read keeps it. A failed read only costs the per-row reads.
    pub(super) async fn prefetch(&mut self, db: &mut DbConn<'_>, claimed: &[Delivery]) {
        if let Err(error) = self.read_ahead(db, claimed).await {
            tracing::warn!(%error, "cannot read a batch's rows ahead: reading them one by one");
        }
    }

    async fn read_ahead(&mut self, db: &mut DbConn<'_>, claimed: &[Delivery]) -> DbResult<()> {
        // Per firm, the requests, contacts and endpoints its deliveries name.
        let mut named: BTreeMap<i64, Named> = BTreeMap::new();
        for delivery in claimed {
            let named = named.entry(delivery.firm_id).or_default();
            named.requests.extend(delivery.request_id);
            named.contacts.extend(delivery.contact_id);
            named.endpoints.extend(delivery.webhook_endpoint_id);
            named.emails |= delivery.kind == DeliveryKind::Email;
            if let (Some(request_id), Some(_)) = (delivery.request_id, delivery.contact_id)
                && delivery.kind == DeliveryKind::Email
                && delivery.event != DeliveryEvent::RequestAnswered
            {
                named.emailed.insert(request_id);
            }
        }
        let firm_ids: Vec<i64> = named
            .iter()
            .filter(|(_, named)| named.emails)
            .map(|(firm_id, _)| *firm_id)
            .collect();
        if !firm_ids.is_empty() {
            for firm in firms::find_firms(db, &firm_ids).await? {
                self.firms.insert(firm.id, firm);
            }
        }
        for (firm_id, named) in named {
            let request_ids: Vec<i64> = named.requests.iter().copied().collect();
            let contact_ids: Vec<i64> = named.contacts.iter().copied().collect();
            let endpoint_ids: Vec<i64> = named.endpoints.iter().copied().collect();
            let requests = if request_ids.is_empty() {
                Vec::new()
            } else {
                work::find_requests(db, firm_id, &request_ids).await?
            };
            if !contact_ids.is_empty() {
                for contact in clients::find_contacts(db, firm_id, &contact_ids).await? {
                    self.contacts.insert((firm_id, contact.id), contact);
                }
            }
            if !endpoint_ids.is_empty() {
                let endpoints = outbox::find_endpoints(db, firm_id, &endpoint_ids).await?;
                let mut found: HashMap<i64, WebhookEndpoint> = endpoints
                    .into_iter()
                    .map(|endpoint| (endpoint.id, endpoint))
                    .collect();
                // An endpoint that is gone (deleted) reads as None, as the per-row read says.
                for endpoint_id in endpoint_ids {
                    self.endpoints
                        .insert((firm_id, endpoint_id), found.remove(&endpoint_id));
                }
            }
            let emailed = requests
                .iter()
                .filter(|row| named.emailed.contains(&row.id));
            let client_ids: BTreeSet<i64> = emailed.clone().map(|row| row.client_id).collect();
            let line_ids: BTreeSet<i64> = emailed.map(|row| row.mission_line_id).collect();
            if !client_ids.is_empty() {
                let client_ids: Vec<i64> = client_ids.into_iter().collect();
                for client in clients::find_clients(db, firm_id, &client_ids).await? {
                    self.clients.insert((firm_id, client.id), client);
                }
            }
            if !line_ids.is_empty() {
                let line_ids: Vec<i64> = line_ids.into_iter().collect();
                let lines = missions::find_lines(db, firm_id, &line_ids).await?;
                let mut found: HashMap<i64, MissionLine> =
                    lines.into_iter().map(|line| (line.id, line)).collect();
                // A line that is gone reads as None, as the per-row read says.
                for line_id in line_ids {
                    self.lines
                        .insert((firm_id, line_id), found.remove(&line_id));
                }
            }
            for request in requests {
                self.requests.insert((firm_id, request.id), request);
            }
        }
        Ok(())
    }

    pub(super) async fn firm(&mut self, db: &mut DbConn<'_>, firm_id: i64) -> DbResult<Firm> {
        memo(&mut self.firms, firm_id, async || {
            firms::find_firm(db, firm_id).await
        })
        .await
    }

    pub(super) async fn request(
        &mut self,
        db: &mut DbConn<'_>,
        firm_id: i64,
        request_id: i64,
    ) -> DbResult<InformationRequest> {
        memo(&mut self.requests, (firm_id, request_id), async || {
            work::find_request(db, firm_id, request_id).await
        })
        .await
    }

    pub(super) async fn contact(
        &mut self,
        db: &mut DbConn<'_>,
        firm_id: i64,
        contact_id: i64,
    ) -> DbResult<Contact> {
        memo(&mut self.contacts, (firm_id, contact_id), async || {
            clients::find_contact(db, firm_id, contact_id).await
        })
        .await
    }

    pub(super) async fn client(
        &mut self,
        db: &mut DbConn<'_>,
        firm_id: i64,
        client_id: i64,
    ) -> DbResult<Client> {
        memo(&mut self.clients, (firm_id, client_id), async || {
            clients::find_client(db, firm_id, client_id).await
        })
        .await
    }

    /// The mission line a request came from (None when it is gone).
    pub(super) async fn line(
        &mut self,
        db: &mut DbConn<'_>,
        firm_id: i64,
        line_id: i64,
    ) -> DbResult<Option<MissionLine>> {
        memo(&mut self.lines, (firm_id, line_id), async || {
            let lines = missions::find_lines(db, firm_id, &[line_id]).await?;
            Ok(lines.into_iter().next())
        })
        .await
    }

    /// The email address of the firm's first admin, if it has one.
    pub(super) async fn first_admin_email(
        &mut self,
        db: &mut DbConn<'_>,
        firm_id: i64,
    ) -> DbResult<Option<String>> {
        memo(&mut self.first_admin_emails, firm_id, async || {
            let users = firms::list_users(db, firm_id).await?;
            let admin = users.into_iter().find(|user| user.role == Role::Admin);
            Ok(admin.map(|admin| admin.email))
        })
        .await
    }

    /// A webhook endpoint of the firm (None when it was deleted).
    pub(super) async fn endpoint(
        &mut self,
        db: &mut DbConn<'_>,
        firm_id: i64,
        endpoint_id: i64,
    ) -> DbResult<Option<WebhookEndpoint>> {
        memo(
            &mut self.endpoints,
            (firm_id, endpoint_id),
            async || match outbox::find_endpoint(db, firm_id, endpoint_id).await {
                Ok(endpoint) => Ok(Some(endpoint)),
                Err(DbError::Query(diesel::result::Error::NotFound)) => Ok(None),
                Err(other) => Err(other),
            },
        )
        .await
    }
}

/// The tokens a batch's emails carry, written together before any email leaves.
#[derive(Default)]
pub(super) struct PendingTokens {
    /// Sign-in and unsubscribe links, stored hashed.
    access: Vec<NewAccessTokenRow>,
    /// Reply addresses' tokens, stored hashed.
    replies: Vec<NewReplyTokenRow>,
}

/// A point to go back to when a delivery's preparation fails half-way.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct TokensMark(usize, usize);

impl PendingTokens {
    pub(super) fn mark(&self) -> TokensMark {
        TokensMark(self.access.len(), self.replies.len())
    }

    /// Forgets the tokens added since `mark`.
    pub(super) fn truncate(&mut self, mark: TokensMark) {
        self.access.truncate(mark.0);
        self.replies.truncate(mark.1);
    }

    pub(super) fn is_empty(&self) -> bool {
        self.access.is_empty() && self.replies.is_empty()
    }

    pub(super) fn add_access(
        &mut self,
        firm_id: i64,
        token_hash: String,
        kind: TokenKind,
        contact_id: i64,
        expires_at: Option<NaiveDateTime>,
        created_at: NaiveDateTime,
    ) {
        self.access.push(NewAccessTokenRow {
            firm_id,
            token_hash,
            kind,
            user_id: None,
            contact_id: Some(contact_id),
            expires_at,
            created_at,
        });
    }

    pub(super) fn add_reply(
        &mut self,
        firm_id: i64,
        request_id: i64,
        contact_id: i64,
        delivery_id: i64,
        token_hash: String,
        created_at: NaiveDateTime,
    ) {
        self.replies.push(NewReplyTokenRow {
            firm_id,
            request_id,
            contact_id,
            delivery_id: Some(delivery_id),
            token_hash,
            created_at,
        });
    }

    /// Writes every token in one transaction, all of them or none: one statement for the
    /// links and one for the reply addresses, however many emails.
    pub(super) async fn write(self, db: &mut DbConn<'_>) -> DbResult<()> {
        let Self {
            access: links,
            replies: reply_addresses,
        } = self;
        transaction!(db, |tx| {
            tokens::insert_many(&mut tx, links).await?;
            replies::insert_tokens(&mut tx, reply_addresses).await?;
            Ok::<_, DbError>(())
        })
    }
}
