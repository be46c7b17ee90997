//! What one batch of claimed deliveries shares while the worker prepares it: the rows the
//! preparation reads, each read once per batch on one connection (a batch of emails to 16
//! contacts about 4 requests reads 4 requests and 16 contacts, not 16 of each plus a firm per
//! email), and the tokens its emails carry, all written in one transaction before any of them
//! leaves. A batch is prepared in a few milliseconds, so its reads are as fresh as one
//! delivery's were. Nothing here sends anything or decides an outcome.

use std::collections::HashMap;
use std::hash::Hash;

use chrono::NaiveDateTime;

use crate::db::clients::{self, Client, Contact};
use crate::db::firms::{self, Firm};
use crate::db::missions::{self, MissionLine};
use crate::db::outbox::{self, WebhookEndpoint};
use crate::db::replies::NewReplyTokenRow;
use crate::db::tokens::{self, NewAccessTokenRow};
use crate::db::work::{self, InformationRequest};
use crate::db::{DbConn, DbError, DbResult, replies};
use crate::domain::{Role, TokenKind};
use crate::transaction;

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
