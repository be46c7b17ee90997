//! What one batch of claimed deliveries shares while the worker prepares it: the rows the
//! preparation reads, each read once per batch on one connection (a batch of emails to 16
//! contacts about 4 requests reads 4 requests and 16 contacts, not 16 of each plus a firm per
//! email), and the tokens its emails carry, all written in one transaction before any of them
//! leaves. A batch is prepared in a few milliseconds, so its reads are as fresh as one
//! delivery's were. Nothing here sends anything or decides an outcome.

use std::collections::HashMap;

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

impl BatchReads {
    pub(super) async fn firm(&mut self, db: &mut DbConn<'_>, firm_id: i64) -> DbResult<Firm> {
        if let Some(firm) = self.firms.get(&firm_id) {
            return Ok(firm.clone());
        }
        let firm = firms::find_firm(db, firm_id).await?;
        self.firms.insert(firm_id, firm.clone());
        Ok(firm)
    }

    pub(super) async fn request(
        &mut self,
        db: &mut DbConn<'_>,
        firm_id: i64,
        request_id: i64,
    ) -> DbResult<InformationRequest> {
        if let Some(request) = self.requests.get(&(firm_id, request_id)) {
            return Ok(request.clone());
        }
        let request = work::find_request(db, firm_id, request_id).await?;
        self.requests.insert((firm_id, request_id), request.clone());
        Ok(request)
    }

    pub(super) async fn contact(
        &mut self,
        db: &mut DbConn<'_>,
        firm_id: i64,
        contact_id: i64,
    ) -> DbResult<Contact> {
        if let Some(contact) = self.contacts.get(&(firm_id, contact_id)) {
            return Ok(contact.clone());
        }
        let contact = clients::find_contact(db, firm_id, contact_id).await?;
        self.contacts.insert((firm_id, contact_id), contact.clone());
        Ok(contact)
    }

    pub(super) async fn client(
        &mut self,
        db: &mut DbConn<'_>,
        firm_id: i64,
        client_id: i64,
    ) -> DbResult<Client> {
        if let Some(client) = self.clients.get(&(firm_id, client_id)) {
            return Ok(client.clone());
        }
        let client = clients::find_client(db, firm_id, client_id).await?;
        self.clients.insert((firm_id, client_id), client.clone());
        Ok(client)
    }

    /// The mission line a request came from (None when it is gone).
    pub(super) async fn line(
        &mut self,
        db: &mut DbConn<'_>,
        firm_id: i64,
        line_id: i64,
    ) -> DbResult<Option<MissionLine>> {
        if let Some(line) = self.lines.get(&(firm_id, line_id)) {
            return Ok(line.clone());
        }
        let line = missions::find_lines(db, firm_id, &[line_id])
            .await?
            .into_iter()
            .next();
        self.lines.insert((firm_id, line_id), line.clone());
        Ok(line)
    }

    /// The email address of the firm's first admin, if it has one.
    pub(super) async fn first_admin_email(
        &mut self,
        db: &mut DbConn<'_>,
        firm_id: i64,
    ) -> DbResult<Option<String>> {
        if let Some(email) = self.first_admin_emails.get(&firm_id) {
            return Ok(email.clone());
        }
        let email = firms::list_users(db, firm_id)
            .await?
            .into_iter()
            .find(|user| user.role == Role::Admin)
            .map(|admin| admin.email);
        self.first_admin_emails.insert(firm_id, email.clone());
        Ok(email)
    }

    /// A webhook endpoint of the firm (None when it was deleted).
    pub(super) async fn endpoint(
        &mut self,
        db: &mut DbConn<'_>,
        firm_id: i64,
        endpoint_id: i64,
    ) -> DbResult<Option<WebhookEndpoint>> {
        if let Some(endpoint) = self.endpoints.get(&(firm_id, endpoint_id)) {
            return Ok(endpoint.clone());
        }
        let endpoint = match outbox::find_endpoint(db, firm_id, endpoint_id).await {
            Ok(endpoint) => Some(endpoint),
            Err(DbError::Query(diesel::result::Error::NotFound)) => None,
            Err(other) => return Err(other),
        };
        self.endpoints
            .insert((firm_id, endpoint_id), endpoint.clone());
        Ok(endpoint)
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
