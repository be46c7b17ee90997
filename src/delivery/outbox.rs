//! The outbox worker: claims due deliveries with a lease, sends each one (an email through
//! the [`Mailer`], a signed POST through the [`WebhookSender`]), and records the attempt and
//! the delivery's next state. Transient failures retry with exponential backoff and jitter
//! (a `Retry-After` is honoured), permanent ones fail at once, and a delivery that used up its
//! attempts is dead. Client emails never leave at night: a retry falls in the firm's daytime.
//! Before sending, the worker checks again that the delivery still makes sense (the request
//! still open, the contact still subscribed, the endpoint still enabled); if not, it is
//! SKIPPED, with a `not sent: ...` reason.
//!
//! Delivery is at least once, never "exactly once": the send happens before the record, so a
//! worker that dies in between leaves a lease that expires and the row is sent again, with
//! the same Message-ID / `webhook-id`. The worker never changes what a delivery says (its
//! payload is fixed when enqueued), and never logs a token, a secret or a full email address.
//!
//! Time is passed in (`now`) so tests drive retries and leases without sleeping; what is due
//! and when a retry falls follow `now`, while headers (`Date`, `webhook-timestamp`) and token
//! lifetimes follow the wall clock, as receivers check them against theirs.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use futures_util::{FutureExt as _, StreamExt as _};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};

use super::batch::{BatchReads, PendingTokens};
use super::email::{
    EmailEvent, EndpointDisabledEmail, Mailer, RequestEmail, build_message, build_notice_message,
};
use super::outcome::clip;
pub use super::outcome::{Attempt, RetryRule, next_state, redact_addresses, retry_delay};
use super::webhook::WebhookSender;
use super::{DeliverySettings, DeliveryWaker, client_email_time, firm_language};
use crate::announce::new_delivery_uid;
use crate::auth::{new_token, token_hash};
use crate::config::Config;
use crate::db::claims::{self, DeliveryState, NewAttempt};
use crate::db::firms::{self, Firm};
use crate::db::outbox::{self, Delivery, NewDelivery, WebhookEndpoint};
use crate::db::{DbConn, DbError, DbResult, Pool, work};
use crate::domain::{
    DeliveryEvent, DeliveryKind, DeliveryStatus, Language, RequestStatus, Role, TokenKind,
};
use crate::events::EventBus;
use crate::transaction;

/// Shortest pause of an idle worker, so a row due "now" but claimed elsewhere cannot spin it.
const MIN_IDLE_WAIT: Duration = Duration::from_millis(100);

/// What one [`Worker::run_once`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RunReport {
    pub delivered: usize,
    /// Failed transiently and scheduled again.
    pub retrying: usize,
    /// Failed for good (permanent failure).
    pub failed: usize,
    /// Not sent because they no longer made sense.
    pub skipped: usize,
    /// Out of attempts.
    pub dead: usize,
    /// Sent or not, but the outcome could not be recorded (the lease will expire).
    pub unrecorded: usize,
}

impl RunReport {
    /// Every delivery this run handled.
    pub fn total(&self) -> usize {
        self.delivered + self.retrying + self.failed + self.skipped + self.dead + self.unrecorded
    }
}

/// Where a delivery ended up after one try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    Delivered,
    Retrying,
    Failed,
    Skipped,
    Dead,
}

/// A delivery ready to leave, or the reason it will not.
pub(super) enum Prepared {
    Email {
        message: Box<lettre::Message>,
        to: String,
    },
    Webhook {
        url: String,
        secret: String,
    },
    Done(Attempt),
}

/// The outbox worker. Cheap to clone; clones share the mailer's and the HTTP client's
/// connection pools.
#[derive(Clone)]
pub struct Worker {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    mailer: Mailer,
    webhooks: WebhookSender,
    settings: DeliverySettings,
    name: String,
    waker: DeliveryWaker,
}

/// A worker running in the background; stop it with [`WorkerHandle::shutdown`].
pub struct WorkerHandle {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Settled {
    /// The metric label of this outcome.
    pub fn label(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Retrying => "retrying",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
            Self::Dead => "dead",
        }
    }
}

impl WorkerHandle {
    /// Lets `/readyz` see whether the worker's task still runs.
    pub fn abort_handle(&self) -> tokio::task::AbortHandle {
        self.task.abort_handle()
    }

    /// Stops claiming, lets in-flight deliveries finish (at most one lease), and returns.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        if let Err(error) = self.task.await {
            tracing::error!(%error, "the delivery worker ended abnormally");
        }
    }
}

impl Worker {
    /// A worker sending through `mailer` and `webhooks`, woken by `waker`.
    pub fn new(
        pool: Pool,
        settings: DeliverySettings,
        mailer: Mailer,
        webhooks: WebhookSender,
        waker: DeliveryWaker,
    ) -> Self {
        let name = format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple());
        Self {
            inner: Arc::new(Inner {
                pool,
                mailer,
                webhooks,
                settings,
                name,
                waker,
            }),
        }
    }

    /// The worker of a configuration: the `[smtp]` mailer and a webhook sender with the
    /// `[webhooks]` timeout and address rule. Must run inside a Tokio runtime.
    pub fn from_config(pool: Pool, config: &Config, waker: DeliveryWaker) -> anyhow::Result<Self> {
        let mailer = Mailer::from_config(&config.smtp)?;
        let webhooks = WebhookSender::new(
            Duration::from_secs(config.webhooks.timeout_seconds.max(1)),
            config.webhooks.allow_private_addresses,
        )?;
        Ok(Self::new(
            pool,
            DeliverySettings::from_config(config),
            mailer,
            webhooks,
            waker,
        ))
    }

    /// This worker's name, written on the rows it leases.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The waker of this worker.
    pub fn waker(&self) -> DeliveryWaker {
        self.inner.waker.clone()
    }

    fn retry_rule(&self) -> RetryRule {
        RetryRule {
            max_attempts: self.inner.settings.max_attempts,
            initial_backoff: self.inner.settings.initial_backoff,
            max_backoff: self.inner.settings.max_backoff,
        }
    }

    /// Claims at most `limit` deliveries due at `now`, leased to this worker for the lease.
    pub async fn claim(&self, now: DateTime<Utc>, limit: usize) -> DbResult<Vec<Delivery>> {
        let lease = chrono::Duration::from_std(self.inner.settings.lease)
            .unwrap_or(chrono::Duration::minutes(2));
        let mut conn = self.inner.pool.get().await?;
        claims::claim_due(
            &mut conn.as_db(),
            now.naive_utc(),
            (now + lease).naive_utc(),
            &self.inner.name,
            i64::try_from(limit).unwrap_or(i64::MAX),
        )
        .await
    }

    /// Sends every delivery due at `now`, `concurrency` at a time, until none is left;
    /// retries land after `now` and wait for a later run. Two batches are in flight at once,
    /// sharing the `concurrency` sending slots: the next batch is claimed and prepared while
    /// the current one is sent, and its sends take the slots the current one's tail frees.
    pub async fn run_once(&self, now: DateTime<Utc>) -> DbResult<RunReport> {
        let concurrency = self.inner.settings.concurrency.max(1);
        let sending = Arc::new(Semaphore::new(concurrency));
        let mut batches = JoinSet::new();
        let mut report = RunReport::default();
        loop {
            if batches.len() < 2 {
                let claimed = match self.claim(now, concurrency * 4).await {
                    Ok(claimed) => claimed,
                    Err(error) => {
                        // Let the batches in flight finish (and record) before giving up.
                        while batches.join_next().await.is_some() {}
                        return Err(error);
                    }
                };
                if !claimed.is_empty() {
                    let worker = self.clone();
                    let sending = Arc::clone(&sending);
                    batches.spawn(async move {
                        worker
                            .deliver_batch(claimed, Some(now), None, Some(sending))
                            .await
                    });
                    continue;
                }
            }
            let Some(finished) = batches.join_next().await else {
                return Ok(report);
            };
            // Nothing more was due, or two batches are in flight: wait for one. What it
            // recorded may make more rows due (an endpoint's disabling notice): look again.
            let outcomes = match finished {
                Ok(outcomes) => outcomes,
                Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
                Err(_) => continue,
            };
            for outcome in outcomes {
                match outcome {
                    Ok(Settled::Delivered) => report.delivered += 1,
                    Ok(Settled::Retrying) => report.retrying += 1,
                    Ok(Settled::Failed) => report.failed += 1,
                    Ok(Settled::Skipped) => report.skipped += 1,
                    Ok(Settled::Dead) => report.dead += 1,
                    Err(_) => report.unrecorded += 1,
                }
            }
        }
    }

    /// Tries one claimed delivery and records the outcome.
    #[tracing::instrument(name = "delivery_attempt", skip_all, fields(delivery_id = delivery.id, kind = delivery.kind.as_str()))]
    pub async fn deliver(&self, delivery: &Delivery, now: DateTime<Utc>) -> DbResult<Settled> {
        self.deliver_batch(vec![delivery.clone()], Some(now), None, None)
            .await
            .pop()
            .unwrap_or(Err(DbError::Pool("nothing was delivered".into())))
    }

    /// Delivers a batch of claimed rows: prepares them all on one connection (their tokens in
    /// one transaction), sends them `concurrency` at a time, and records outcomes as they come
    /// in, in one transaction per group of outcomes ready together, while the others are still
    /// being sent. `now` is fixed (tests, `run_once`) or None for the wall clock at each step.
    /// `slots` (the background worker's) holds one permit per row, each released when its
    /// row is recorded, and the worker is woken to claim again; `sending` (`run_once`'s) is
    /// shared by the batches in flight, one permit per send. Returns each row's outcome, in
    /// the order of `claimed`.
    async fn deliver_batch(
        &self,
        claimed: Vec<Delivery>,
        now: Option<DateTime<Utc>>,
        mut slots: Option<OwnedSemaphorePermit>,
        sending: Option<Arc<Semaphore>>,
    ) -> Vec<DbResult<Settled>> {
        let clock = move || now.unwrap_or_else(Utc::now);
        let prepared = self.prepare_batch(&claimed, clock()).await;
        let concurrency = self.inner.settings.concurrency.max(1);
        let count = claimed.len();
        let (sent_tx, mut sent_rx) =
            mpsc::unbounded_channel::<(usize, Attempt, Option<OwnedSemaphorePermit>)>();
        let claimed = &claimed;
        let sending = async move {
            let jobs: Vec<_> = prepared
                .into_iter()
                .enumerate()
                .map(|(index, prepared)| {
                    let slot = slots.as_mut().and_then(|slots| slots.split(1));
                    (index, prepared, slot)
                })
                .collect();
            futures_util::stream::iter(jobs)
                .for_each_concurrent(concurrency, |(index, prepared, slot)| {
                    let sent_tx = sent_tx.clone();
                    let sending = sending.clone();
                    async move {
                        let turn = match sending {
                            Some(sending) => sending.acquire_owned().await.ok(),
                            None => None,
                        };
                        // A panic while sending (in a library) is this row's failed attempt,
                        // not the loss of its batch's outcomes.
                        let attempt = std::panic::AssertUnwindSafe(
                            self.send_prepared(&claimed[index], prepared),
                        )
                        .catch_unwind()
                        .await
                        .unwrap_or_else(|_| {
                            tracing::error!(
                                delivery = claimed[index].id,
                                "sending a delivery panicked; it will be tried again"
                            );
                            Attempt::Failed {
                                transient: true,
                                response_code: None,
                                error: "internal error while sending (panic)".to_owned(),
                                retry_after: None,
                            }
                        });
                        drop(turn);
                        let _ = sent_tx.send((index, attempt, slot));
                    }
                })
                .await;
        };
        let recording = async {
            let mut outcomes: Vec<Option<DbResult<Settled>>> = (0..count).map(|_| None).collect();
            let mut ready = Vec::new();
            while sent_rx.recv_many(&mut ready, count.max(1)).await > 0 {
                let items: Vec<(&Delivery, &Attempt)> = ready
                    .iter()
                    .map(|(index, attempt, _)| (&claimed[*index], attempt))
                    .collect();
                let settled = self.record_group(&items, clock()).await;
                let released = ready.iter().any(|(_, _, slot)| slot.is_some());
                for ((index, _, slot), settled) in ready.drain(..).zip(settled) {
                    outcomes[index] = Some(settled);
                    drop(slot);
                }
                if released {
                    self.inner.waker.wake();
                }
            }
            outcomes
        };
        let ((), outcomes) = tokio::join!(sending, recording);
        outcomes
            .into_iter()
            .map(|outcome| {
                outcome.unwrap_or(Err(DbError::Pool("the delivery was not sent".into())))
            })
            .collect()
    }

    /// Prepares a batch of claimed deliveries as the worker does (on one connection, their
    /// rows read ahead, their tokens written together) and sends them one after the other,
    /// without recording anything about the outcomes (that is [`Worker::record_group`]).
    pub async fn attempt_batch(&self, claimed: &[Delivery], now: DateTime<Utc>) -> Vec<Attempt> {
        let prepared = self.prepare_batch(claimed, now).await;
        let mut attempts = Vec::with_capacity(claimed.len());
        for (delivery, prepared) in claimed.iter().zip(prepared) {
            attempts.push(self.send_prepared(delivery, prepared).await);
        }
        attempts
    }

    /// Prepares and sends one claimed delivery, without recording anything about the
    /// outcome (that is [`Worker::record`]). Emails get fresh sign-in and unsubscribe tokens.
    /// `now` decides whether a client email may leave yet (the firm's daytime).
    pub async fn attempt(&self, delivery: &Delivery, now: DateTime<Utc>) -> Attempt {
        let prepared = self
            .prepare_batch(std::slice::from_ref(delivery), now)
            .await
            .pop()
            .unwrap_or_else(unavailable);
        self.send_prepared(delivery, prepared).await
    }

    /// Prepares every row of a batch on one pool connection, reading its firms, requests,
    /// contacts, clients, lines and endpoints ahead in a few statements whatever its size (each
    /// firm's first admin once), and writes the tokens of all its emails in one transaction.
    /// Returns one preparation per row, in order.
    async fn prepare_batch(&self, claimed: &[Delivery], now: DateTime<Utc>) -> Vec<Prepared> {
        let mut conn = match self.inner.pool.get().await {
            Ok(conn) => conn,
            Err(error) => {
                tracing::warn!(%error, "cannot prepare deliveries");
                return claimed.iter().map(|_| unavailable()).collect();
            }
        };
        let mut db = conn.as_db();
        let mut reads = BatchReads::default();
        reads.prefetch(&mut db, claimed).await;
        let mut tokens = PendingTokens::default();
        let mut prepared = Vec::with_capacity(claimed.len());
        let mut carrying_tokens = Vec::new();
        for (index, delivery) in claimed.iter().enumerate() {
            let mark = tokens.mark();
            let result = self
                .prepare(&mut db, &mut reads, &mut tokens, delivery, now)
                .await;
            prepared.push(match result {
                Ok(ready) => {
                    if tokens.mark() != mark {
                        carrying_tokens.push(index);
                    }
                    ready
                }
                Err(DbError::Query(diesel::result::Error::NotFound)) => {
                    tokens.truncate(mark);
                    Prepared::Done(Attempt::Failed {
                        transient: false,
                        response_code: None,
                        error: "what this delivery is about no longer exists".into(),
                        retry_after: None,
                    })
                }
                Err(error) => {
                    tokens.truncate(mark);
                    tracing::warn!(delivery_id = delivery.id, %error, "cannot prepare a delivery");
                    unavailable()
                }
            });
        }
        if !tokens.is_empty() {
            if let Err(error) = tokens.write(&mut db).await {
                tracing::warn!(%error, "cannot store the links of a batch of emails");
                for index in carrying_tokens {
                    prepared[index] = unavailable();
                }
            }
        }
        prepared
    }

    /// Sends one prepared delivery (nothing is recorded here).
    async fn send_prepared(&self, delivery: &Delivery, prepared: Prepared) -> Attempt {
        match prepared {
            Prepared::Done(attempt) => attempt,
            Prepared::Email { message, to } => match self.inner.mailer.send(&message, &to).await {
                Ok(()) => Attempt::Sent {
                    response_code: None,
                },
                Err(error) => Attempt::Failed {
                    transient: error.transient,
                    response_code: error.code,
                    error: error.message,
                    retry_after: None,
                },
            },
            Prepared::Webhook { url, secret } => {
                let sent = self
                    .inner
                    .webhooks
                    .send(
                        &url,
                        &secret,
                        &delivery.delivery_uid,
                        Utc::now().timestamp(),
                        &delivery.payload,
                    )
                    .await;
                match sent {
                    Ok(response) => Attempt::Sent {
                        response_code: Some(response.status),
                    },
                    Err(failure) => Attempt::Failed {
                        transient: failure.transient,
                        response_code: failure.status,
                        error: failure.message,
                        retry_after: failure.retry_after,
                    },
                }
            }
        }
    }

    async fn prepare(
        &self,
        db: &mut DbConn<'_>,
        reads: &mut BatchReads,
        tokens: &mut PendingTokens,
        delivery: &Delivery,
        now: DateTime<Utc>,
    ) -> DbResult<Prepared> {
        match (delivery.kind, delivery.event) {
            (DeliveryKind::Email, DeliveryEvent::EndpointDisabled) => {
                self.prepare_notice(db, reads, delivery).await
            }
            (DeliveryKind::Email, DeliveryEvent::RequestAnswered)
                if delivery.contact_id.is_none() =>
            {
                self.prepare_answer_notice(db, reads, delivery).await
            }
            // An answer told to the contact who sent it by email: the reply's confirmation.
            (DeliveryKind::Email, DeliveryEvent::RequestAnswered) => {
                let firm = reads.firm(db, delivery.firm_id).await?;
                Ok(
                    match crate::delivery::reply_confirmation::build(
                        &self.inner.settings.from_address,
                        &firm.name,
                        &delivery.payload,
                        &delivery.target,
                        &self.message_id(delivery),
                        now,
                    ) {
                        Ok(message) => Prepared::Email {
                            message: Box::new(message),
                            to: delivery.target.clone(),
                        },
                        Err(error) => refuse(&error),
                    },
                )
            }
            (DeliveryKind::Email, _) => {
                self.prepare_client_email(db, reads, tokens, delivery, now)
                    .await
            }
            (DeliveryKind::Webhook, _) => prepare_webhook(db, reads, delivery).await,
        }
    }

    async fn prepare_client_email(
        &self,
        db: &mut DbConn<'_>,
        reads: &mut BatchReads,
        tokens: &mut PendingTokens,
        delivery: &Delivery,
        now: DateTime<Utc>,
    ) -> DbResult<Prepared> {
        let (Some(request_id), Some(contact_id)) = (delivery.request_id, delivery.contact_id)
        else {
            return Ok(refuse("an email delivery without a request or a contact"));
        };
        let firm = reads.firm(db, delivery.firm_id).await?;
        let request = reads.request(db, firm.id, request_id).await?;
        let contact = reads.contact(db, firm.id, contact_id).await?;
        if let Some(reason) = stale_request(request.status) {
            return Ok(skip(reason));
        }
        if contact.archived_at.is_some() {
            return Ok(skip("the contact was archived before sending"));
        }
        if !contact.notifications_enabled {
            return Ok(skip("the contact unsubscribed before sending"));
        }
        // Enqueuing and retries already aim at daytime; this catches a row whose turn comes
        // late (a backlog, a worker down all evening): never at night.
        let leaves_at = client_email_time(&firm, now, self.inner.settings.default_sending_hour);
        if leaves_at > now {
            return Ok(Prepared::Done(Attempt::Deferred { until: leaves_at }));
        }
        let client = reads.client(db, firm.id, request.client_id).await?;
        let reply_to = match &self.inner.settings.reply_address {
            Some((local, domain)) => Some(new_reply_address(
                tokens, delivery, request.id, contact.id, local, domain,
            )),
            None => reads.first_admin_email(db, firm.id).await?,
        };
        let envelope_sender = self
            .inner
            .settings
            .reply_address
            .as_ref()
            .and(reply_to.clone());
        let event = match delivery.event {
            DeliveryEvent::RequestReminder => EmailEvent::RequestReminder {
                number: reminder_number(&delivery.payload).unwrap_or(1),
            },
            _ => EmailEvent::RequestCreated,
        };
        let language = contact
            .language
            .as_deref()
            .and_then(|language| language.parse::<Language>().ok())
            .unwrap_or_else(|| firm_language(&firm));
        let (sign_in_token, unsubscribe_token) = (new_token(), new_token());
        self.add_email_tokens(
            tokens,
            &firm,
            contact.id,
            &sign_in_token,
            &unsubscribe_token,
        );
        let period = reads
            .line(db, firm.id, request.mission_line_id)
            .await?
            .map(|line| {
                crate::domain::placeholders::period_label(
                    request.due_date,
                    line.frequency,
                    language,
                )
            })
            .unwrap_or_default();
        let thread_root = match event {
            EmailEvent::RequestReminder { .. } => {
                crate::db::replies::first_request_email_uid(db, firm.id, request.id, contact.id)
                    .await?
                    .map(|uid| self.message_id_of_uid(&uid))
            }
            EmailEvent::RequestCreated => None,
        };
        let base = &self.inner.settings.public_base_url;
        let email = RequestEmail {
            event,
            language,
            firm_name: firm.name.clone(),
            firm_reply_to: reply_to,
            client_name: client.name,
            contact_name: contact.name,
            request_text: request.text,
            due_date: request.due_date,
            period,
            sign_in_url: format!(
                "{base}/sign-in?token={sign_in_token}&request={}",
                request.id
            ),
            unsubscribe_url: format!("{base}/unsubscribe?token={unsubscribe_token}"),
            envelope_sender,
            thread_root,
        };
        let message_id = self.message_id(delivery);
        Ok(
            match build_message(
                &self.inner.settings.from_address,
                &email,
                &contact.email,
                &message_id,
                Utc::now(),
            ) {
                Ok(message) => Prepared::Email {
                    message: Box::new(message),
                    to: contact.email,
                },
                Err(error) => refuse(&error.to_string()),
            },
        )
    }

    /// A new single-use sign-in link and an unsubscribe link for one email, stored hashed
    /// with the batch's other tokens before the batch leaves.
    fn add_email_tokens(
        &self,
        tokens: &mut PendingTokens,
        firm: &Firm,
        contact_id: i64,
        sign_in_token: &str,
        unsubscribe_token: &str,
    ) {
        let now = Utc::now();
        let sign_in_expires = now + self.inner.settings.sign_in_link_lifetime;
        tokens.add_access(
            firm.id,
            token_hash(sign_in_token),
            TokenKind::SignInLink,
            contact_id,
            Some(sign_in_expires.naive_utc()),
            now.naive_utc(),
        );
        tokens.add_access(
            firm.id,
            token_hash(unsubscribe_token),
            TokenKind::Unsubscribe,
            contact_id,
            None,
            now.naive_utc(),
        );
    }

    async fn prepare_notice(
        &self,
        db: &mut DbConn<'_>,
        reads: &mut BatchReads,
        delivery: &Delivery,
    ) -> DbResult<Prepared> {
        let firm = reads.firm(db, delivery.firm_id).await?;
        let Ok(payload) = serde_json::from_str::<serde_json::Value>(&delivery.payload) else {
            return Ok(refuse("the notice's payload is not JSON"));
        };
        let data = &payload["data"];
        let text = |key: &str| data[key].as_str().unwrap_or_default().to_string();
        let failing_since = DateTime::parse_from_rfc3339(&text("failingSince"))
            .map(|at| at.with_timezone(&Utc).date_naive())
            .unwrap_or_else(|_| delivery.created_at.date());
        let notice = EndpointDisabledEmail {
            language: firm_language(&firm),
            firm_name: firm.name,
            admin_name: text("adminName"),
            endpoint_url: text("url"),
            failing_since,
            last_error: text("lastError"),
        };
        Ok(
            match build_notice_message(
                &self.inner.settings.from_address,
                &notice,
                &delivery.target,
                &self.message_id(delivery),
                Utc::now(),
            ) {
                Ok(message) => Prepared::Email {
                    message: Box::new(message),
                    to: delivery.target.clone(),
                },
                Err(error) => refuse(&error.to_string()),
            },
        )
    }

    /// The email telling a firm's admin that a client answered (files as links).
    async fn prepare_answer_notice(
        &self,
        db: &mut DbConn<'_>,
        reads: &mut BatchReads,
        delivery: &Delivery,
    ) -> DbResult<Prepared> {
        let firm = reads.firm(db, delivery.firm_id).await?;
        let Some(notice) = super::answer_notice::AnswerNotice::from_payload(
            &delivery.payload,
            firm_language(&firm),
            &self.inner.settings.public_base_url,
        ) else {
            return Ok(refuse("the notice's payload is not JSON"));
        };
        Ok(
            match super::answer_notice::build_answer_notice(
                &self.inner.settings.from_address,
                &notice,
                &delivery.target,
                &self.message_id(delivery),
                Utc::now(),
            ) {
                Ok(message) => Prepared::Email {
                    message: Box::new(message),
                    to: delivery.target.clone(),
                },
                Err(error) => refuse(&error),
            },
        )
    }

    /// The email's Message-ID (without angle brackets): the delivery's stable id at the
    /// sender's domain, the same on every retry.
    fn message_id(&self, delivery: &Delivery) -> String {
        self.message_id_of_uid(&delivery.delivery_uid)
    }

    /// The Message-ID of the delivery with this uid.
    fn message_id_of_uid(&self, delivery_uid: &str) -> String {
        let domain = self
            .inner
            .settings
            .from_address
            .rsplit_once('@')
            .map_or("rappel", |(_, domain)| domain);
        format!("{delivery_uid}@{domain}")
    }

    /// Records `attempt` and the delivery's next state; for webhooks, also the endpoint's
    /// failure streak, disabling it (and emailing the firm's admins) once it failed for the
    /// configured period.
    pub async fn record(
        &self,
        delivery: &Delivery,
        attempt: &Attempt,
        now: DateTime<Utc>,
    ) -> DbResult<Settled> {
        self.record_group(&[(delivery, attempt)], now)
            .await
            .pop()
            .unwrap_or(Err(DbError::Pool("nothing was recorded".into())))
    }

    /// Records the outcomes of several deliveries in one transaction on one connection (one
    /// commit, not one per delivery), in a number of statements that does not grow with the
    /// group: one insert of the attempts, one update of the states (each row still guarded by
    /// its lease), the journal, the endpoints. If that transaction fails, each delivery is
    /// recorded in its own, so one delivery's trouble never leaves the others unrecorded.
    /// Returns each delivery's outcome, in order.
    pub async fn record_group(
        &self,
        items: &[(&Delivery, &Attempt)],
        now: DateTime<Utc>,
    ) -> Vec<DbResult<Settled>> {
        if items.len() > 1 {
            match self.record_together(items, now).await {
                Ok(settled) => return settled.into_iter().map(Ok).collect(),
                Err(error) => tracing::warn!(
                    %error,
                    count = items.len(),
                    "cannot record a group of delivery attempts together; recording them one by one"
                ),
            }
        }
        let mut settled = Vec::with_capacity(items.len());
        for item in items {
            settled.push(
                self.record_together(std::slice::from_ref(item), now)
                    .await
                    .and_then(|mut one| {
                        one.pop()
                            .ok_or_else(|| DbError::Pool("nothing was recorded".into()))
                    })
                    .inspect_err(|error| {
                        tracing::error!(
                            delivery_id = item.0.id,
                            %error,
                            "cannot record a delivery attempt; it will be tried again when its lease expires"
                        );
                    }),
            );
        }
        settled
    }

    /// Records every item in one transaction, or nothing.
    async fn record_together(
        &self,
        items: &[(&Delivery, &Attempt)],
        now: DateTime<Utc>,
    ) -> DbResult<Vec<Settled>> {
        let settings = &self.inner.settings;
        let mut conn = self.inner.pool.get().await?;
        let mut firms_read: HashMap<i64, Firm> = HashMap::new();
        let mut writes = Vec::with_capacity(items.len());
        for (delivery, attempt) in items {
            let (mut state, outcome) = next_state(
                delivery,
                attempt,
                now.naive_utc(),
                &self.retry_rule(),
                rand::random::<f64>(),
            );
            if state.status == DeliveryStatus::Pending
                && delivery.kind == DeliveryKind::Email
                && delivery.contact_id.is_some()
            {
                let firm = match firms_read.get(&delivery.firm_id) {
                    Some(firm) => firm.clone(),
                    None => {
                        let firm = firms::find_firm(&mut conn.as_db(), delivery.firm_id).await?;
                        firms_read.insert(delivery.firm_id, firm.clone());
                        firm
                    }
                };
                state.next_attempt_at = client_email_time(
                    &firm,
                    state.next_attempt_at.and_utc(),
                    settings.default_sending_hour,
                )
                .naive_utc();
            }
            let (response_code, error) = match attempt {
                Attempt::Sent { response_code } => (*response_code, None),
                Attempt::Failed {
                    response_code,
                    error,
                    ..
                } => (*response_code, Some(clip(error))),
                Attempt::Skipped { .. } | Attempt::Deferred { .. } => (None, None),
            };
            let new_attempt = outcome.map(|outcome| NewAttempt {
                delivery_id: delivery.id,
                attempted_at: now.naive_utc(),
                outcome: outcome.as_str().to_string(),
                response_code: response_code.map(i32::from),
                error,
            });
            writes.push((state, new_attempt));
        }
        let disable_after = settings.disable_endpoint_after;
        let disabled = transaction!(conn, |tx| {
            // Lost in a database crash, these records are the crash of a worker before
            // recording: the rows are sent again after their lease, with the same ids.
            claims::relax_commit(&mut tx).await?;
            // The group's attempts in one statement, their states in another, each state
            // guarded by its own row's lease.
            let records: Vec<_> = items
                .iter()
                .zip(&writes)
                .map(|((delivery, _), (state, new_attempt))| {
                    (*delivery, new_attempt.as_ref(), state)
                })
                .collect();
            let written = claims::record_attempts(&mut tx, &records).await?;
            let mut sent = Vec::new();
            for ((delivery, attempt), written) in items.iter().zip(written) {
                if !written {
                    tracing::warn!(
                        delivery_id = delivery.id,
                        "a delivery's lease ran out before its attempt was recorded; another worker owns it now"
                    );
                } else if matches!(attempt, Attempt::Sent { .. }) {
                    sent.push(*delivery);
                }
            }
            let sent_entries = email_sent_entries(&mut tx, &sent, now.naive_utc()).await?;
            let entries: Vec<_> = sent_entries.iter().map(SentEntry::entry).collect();
            crate::db::journal::insert(&mut tx, &entries).await?;
            note_endpoints(&mut tx, items, now, disable_after).await
        })?;
        let settled = items
            .iter()
            .zip(&writes)
            .map(|((delivery, attempt), (state, _))| {
                let settled = match (state.status, attempt) {
                    (DeliveryStatus::Delivered, _) => Settled::Delivered,
                    (DeliveryStatus::Pending, _) => Settled::Retrying,
                    (DeliveryStatus::Dead, _) => Settled::Dead,
                    (_, Attempt::Skipped { .. }) => Settled::Skipped,
                    _ => Settled::Failed,
                };
                log_settled(delivery, state, settled);
                settled
            })
            .collect();
        for endpoint in &disabled {
            tracing::warn!(
                firm_id = endpoint.firm_id,
                endpoint_id = endpoint.id,
                "a webhook endpoint failing for too long was disabled; the firm's admins are told"
            );
        }
        if !disabled.is_empty() {
            self.inner.waker.wake();
        }
        Ok(settled)
    }

    /// Runs the worker in the background until [`WorkerHandle::shutdown`]: it claims as many
    /// due rows as it has free slots, sends them concurrently (a slow endpoint holds one slot,
    /// not the queue), and when idle sleeps until the next row falls due, the poll interval
    /// passes, or it is woken (`events`: every request event of this process wakes it).
    pub fn spawn(self, events: Option<&EventBus>) -> WorkerHandle {
        let (stop, stopped) = watch::channel(false);
        if let Some(events) = events {
            let mut receiver = events.subscribe();
            let waker = self.inner.waker.clone();
            let mut stopped = stopped.clone();
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        received = receiver.recv() => match received {
                            Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                                waker.wake();
                            }
                            Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                        },
                        _ = stopped.changed() => break,
                    }
                }
            });
        }
        let task = tokio::spawn(self.run_forever(stopped));
        WorkerHandle { stop, task }
    }

    async fn run_forever(self, mut stopped: watch::Receiver<bool>) {
        let settings = &self.inner.settings;
        let slots = Arc::new(Semaphore::new(settings.concurrency.max(1)));
        let mut in_flight = JoinSet::new();
        tracing::info!(worker = %self.inner.name, "delivery worker started");
        loop {
            if *stopped.borrow() {
                break;
            }
            while let Some(joined) = in_flight.try_join_next() {
                if let Err(error) = joined {
                    tracing::error!(%error, "a delivery batch ended abnormally; its rows come back after their lease");
                }
            }
            let free = slots.available_permits();
            let mut claimed_any = false;
            if free > 0 {
                match self.claim(Utc::now(), free).await {
                    Ok(rows) => {
                        claimed_any = !rows.is_empty();
                        let count = u32::try_from(rows.len()).unwrap_or(u32::MAX);
                        if claimed_any {
                            // One slot per row, each freed when its row is recorded: a slow
                            // endpoint holds its own slot, not its batch's.
                            let Ok(batch_slots) =
                                Arc::clone(&slots).acquire_many_owned(count).await
                            else {
                                break;
                            };
                            let worker = self.clone();
                            in_flight.spawn(async move {
                                // Logged where it happened; the lease brings a row back.
                                let _ = worker
                                    .deliver_batch(rows, None, Some(batch_slots), None)
                                    .await;
                            });
                        }
                    }
                    Err(error) => {
                        tracing::warn!(%error, "cannot claim deliveries; trying again shortly");
                    }
                }
            }
            if claimed_any {
                continue;
            }
            let wait = if free > 0 {
                self.idle_wait().await
            } else {
                settings.poll_interval
            };
            tokio::select! {
                () = self.inner.waker.woken() => {}
                Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
                () = tokio::time::sleep(wait) => {}
                _ = stopped.changed() => {}
            }
        }
        let drained = tokio::time::timeout(settings.lease, async {
            while in_flight.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!("deliveries still in flight at shutdown; they will be sent again");
            in_flight.abort_all();
        }
        tracing::info!(worker = %self.inner.name, "delivery worker stopped");
    }

    /// How long an idle worker sleeps: until the next unleased row falls due, at most the
    /// poll interval (other instances' rows and expired leases are found by polling).
    async fn idle_wait(&self) -> Duration {
        let poll = self.inner.settings.poll_interval;
        let next_due = match self.inner.pool.get().await {
            Ok(mut conn) => claims::next_due_at(&mut conn.as_db()).await.ok().flatten(),
            Err(_) => None,
        };
        next_due
            .and_then(|at| (at.and_utc() - Utc::now()).to_std().ok())
            .map_or(poll, |until| until.min(poll))
            .max(MIN_IDLE_WAIT)
    }
}

/// Puts a FAILED or DEAD delivery back in the queue, due now (a client email: at the firm's
/// next sending time). None when it is in another status.
pub async fn redeliver(
    db: &mut DbConn<'_>,
    firm: &Firm,
    delivery: &Delivery,
    now: DateTime<Utc>,
    default_sending_hour: u32,
) -> DbResult<Option<Delivery>> {
    let due = if delivery.kind == DeliveryKind::Email && delivery.contact_id.is_some() {
        client_email_time(firm, now, default_sending_hour)
    } else {
        now
    };
    claims::requeue_failed(db, firm.id, delivery.id, due.naive_utc()).await
}

/// The journal entry of a request email a contact's server accepted (actor SYSTEM), owned
/// until the group's entries are written in one statement.
struct SentEntry {
    firm_id: i64,
    occurred_at: chrono::NaiveDateTime,
    kind: &'static str,
    request_id: i64,
    client_id: i64,
    mission_id: i64,
    detail: String,
}

impl SentEntry {
    fn entry(&self) -> crate::db::journal::NewJournalEntry<'_> {
        crate::db::journal::NewJournalEntry {
            firm_id: self.firm_id,
            occurred_at: self.occurred_at,
            actor_kind: "SYSTEM",
            actor_user_id: None,
            actor_contact_id: None,
            kind: self.kind,
            object_type: "request",
            object_id: self.request_id,
            client_id: Some(self.client_id),
            mission_id: Some(self.mission_id),
            before_status: None,
            after_status: None,
            detail: Some(&self.detail),
        }
    }
}

/// What to journal for the delivered emails of a group, in order: `request.sent` for the
/// first email of a request, `request.reminded` for a follow-up; other deliveries are not
/// journalled. Their requests are read in one statement per firm.
async fn email_sent_entries(
    tx: &mut DbConn<'_>,
    delivered: &[&Delivery],
    now: chrono::NaiveDateTime,
) -> DbResult<Vec<SentEntry>> {
    let journalled: Vec<(&Delivery, &'static str, i64, i64)> = delivered
        .iter()
        .filter_map(|delivery| {
            let kind = match delivery.event {
                DeliveryEvent::RequestCreated => "request.sent",
                DeliveryEvent::RequestReminder => "request.reminded",
                _ => return None,
            };
            match (delivery.kind, delivery.request_id, delivery.contact_id) {
                (DeliveryKind::Email, Some(request_id), Some(contact_id)) => {
                    Some((*delivery, kind, request_id, contact_id))
                }
                _ => None,
            }
        })
        .collect();
    let mut wanted: HashMap<i64, Vec<i64>> = HashMap::new();
    for (delivery, _, request_id, _) in &journalled {
        let ids = wanted.entry(delivery.firm_id).or_default();
        if !ids.contains(request_id) {
            ids.push(*request_id);
        }
    }
    let mut requests: HashMap<(i64, i64), (i64, i64)> = HashMap::new();
    for (firm_id, ids) in &wanted {
        for request in work::find_requests(tx, *firm_id, ids).await? {
            requests.insert(
                (request.firm_id, request.id),
                (request.client_id, request.mission_id),
            );
        }
    }
    journalled
        .into_iter()
        .map(|(delivery, kind, request_id, contact_id)| {
            // A request gone meanwhile fails the group, as reading it alone did.
            let (client_id, mission_id) = *requests
                .get(&(delivery.firm_id, request_id))
                .ok_or(DbError::Query(diesel::result::Error::NotFound))?;
            let detail = serde_json::json!({
                "contactId": contact_id,
                "deliveryId": delivery.id,
                "reminder": reminder_number(&delivery.payload),
            })
            .to_string();
            Ok(SentEntry {
                firm_id: delivery.firm_id,
                occurred_at: now,
                kind,
                request_id,
                client_id,
                mission_id,
                detail,
            })
        })
        .collect()
}

/// What a group's webhooks tell of their endpoints, in order: a success ends an endpoint's
/// failure streak, a failure starts one (or disables the endpoint once it failed for
/// `disable_after`, telling the firm's admins). Consecutive outcomes of one endpoint alike
/// change nothing more than the first of them (the group shares one `now`), so each run of
/// them is noted once; the endpoints that only succeeded in the group are noted in one
/// statement. Returns the endpoints this group disabled.
async fn note_endpoints(
    tx: &mut DbConn<'_>,
    items: &[(&Delivery, &Attempt)],
    now: DateTime<Utc>,
    disable_after: chrono::Duration,
) -> DbResult<Vec<WebhookEndpoint>> {
    // Per endpoint, in the group's order: None for a run of successes, the first error of a
    // run of failures.
    let mut order: Vec<i64> = Vec::new();
    let mut runs: HashMap<i64, Vec<Option<&str>>> = HashMap::new();
    for (delivery, attempt) in items {
        let Some(endpoint_id) = delivery
            .webhook_endpoint_id
            .filter(|_| delivery.kind == DeliveryKind::Webhook)
        else {
            continue;
        };
        let run = match attempt {
            Attempt::Sent { .. } => None,
            Attempt::Failed { error, .. } => Some(error.as_str()),
            Attempt::Skipped { .. } | Attempt::Deferred { .. } => continue,
        };
        let endpoint_runs = runs.entry(endpoint_id).or_insert_with(|| {
            order.push(endpoint_id);
            Vec::new()
        });
        if endpoint_runs.last().map(Option::is_some) != Some(run.is_some()) {
            endpoint_runs.push(run);
        }
    }
    let only_succeeded: Vec<i64> = order
        .iter()
        .copied()
        .filter(|id| runs[id] == [None])
        .collect();
    outbox::note_endpoints_success(tx, &only_succeeded).await?;
    let mut disabled = Vec::new();
    for endpoint_id in order {
        if only_succeeded.contains(&endpoint_id) {
            continue;
        }
        for run in &runs[&endpoint_id] {
            match run {
                None => outbox::note_endpoint_success(tx, endpoint_id).await?,
                Some(error) => {
                    if let Some(endpoint) =
                        note_failure(tx, endpoint_id, error, now, disable_after).await?
                    {
                        disabled.push(endpoint);
                    }
                }
            }
        }
    }
    Ok(disabled)
}

/// A delivery whose data could not be read now: a transient failure, tried again later.
fn unavailable() -> Prepared {
    Prepared::Done(Attempt::Failed {
        transient: true,
        response_code: None,
        error: "could not read the delivery's data (database unavailable)".into(),
        retry_after: None,
    })
}

fn skip(reason: &str) -> Prepared {
    Prepared::Done(Attempt::Skipped {
        reason: reason.to_string(),
    })
}

fn refuse(error: &str) -> Prepared {
    Prepared::Done(Attempt::Failed {
        transient: false,
        response_code: None,
        error: error.to_string(),
        retry_after: None,
    })
}

/// Why a request event can no longer be sent to the client, if it cannot.
fn stale_request(status: RequestStatus) -> Option<&'static str> {
    match status {
        RequestStatus::Open => None,
        RequestStatus::Answered => Some("the request was answered before sending"),
        RequestStatus::Closed => Some("the request was closed before sending"),
        RequestStatus::Cancelled => Some("the request was cancelled before sending"),
    }
}

fn reminder_number(payload: &str) -> Option<u32> {
    let value: serde_json::Value = serde_json::from_str(payload).ok()?;
    u32::try_from(value["data"]["reminderNumber"].as_u64()?).ok()
}

async fn prepare_webhook(
    db: &mut DbConn<'_>,
    reads: &mut BatchReads,
    delivery: &Delivery,
) -> DbResult<Prepared> {
    let Some(endpoint_id) = delivery.webhook_endpoint_id else {
        return Ok(skip("the webhook endpoint was deleted before sending"));
    };
    let Some(endpoint) = reads.endpoint(db, delivery.firm_id, endpoint_id).await? else {
        return Ok(skip("the webhook endpoint was deleted before sending"));
    };
    if !endpoint.enabled {
        return Ok(skip("the webhook endpoint is disabled"));
    }
    if let Some(request_id) = delivery.request_id {
        let request = reads.request(db, delivery.firm_id, request_id).await?;
        // The endpoint may have been moved to another client, or unsubscribed from this event,
        // since the delivery was enqueued: what it covers now decides.
        let covers_client = endpoint
            .client_id
            .is_none_or(|client_id| client_id == request.client_id);
        if !covers_client || !endpoint.wants(delivery.event) {
            return Ok(skip(
                "the webhook endpoint no longer covers this request or event",
            ));
        }
        if delivery.event == DeliveryEvent::RequestReminder {
            if let Some(reason) = stale_request(request.status) {
                return Ok(skip(reason));
            }
        }
    }
    Ok(Prepared::Webhook {
        url: endpoint.url,
        secret: endpoint.secret,
    })
}

/// Notes a webhook failure on its endpoint; disables the endpoint when its failure streak
/// reached `disable_after`, and enqueues the notice to the firm's admins. Returns the
/// endpoint when this call disabled it.
async fn note_failure(
    tx: &mut DbConn<'_>,
    endpoint_id: i64,
    error: &str,
    now: DateTime<Utc>,
    disable_after: chrono::Duration,
) -> DbResult<Option<WebhookEndpoint>> {
    let Some(endpoint) = outbox::note_endpoint_failure(tx, endpoint_id, now.naive_utc()).await?
    else {
        return Ok(None);
    };
    let Some(failing_since) = endpoint.failing_since else {
        return Ok(None);
    };
    if !endpoint.enabled || now.naive_utc() - failing_since < disable_after {
        return Ok(None);
    }
    let since = failing_since.and_utc();
    let reason = format!(
        "failing since {}: {}",
        since.to_rfc3339_opts(SecondsFormat::Secs, true),
        clip(error)
    );
    if !outbox::disable_failing_endpoint(tx, endpoint.id, &reason, now.naive_utc()).await? {
        return Ok(None);
    }
    let admins: Vec<_> = firms::list_users(tx, endpoint.firm_id)
        .await?
        .into_iter()
        .filter(|user| user.role == Role::Admin)
        .collect();
    let url = endpoint_url_without_query(&endpoint.url);
    let notices: Vec<NewDelivery> = admins
        .iter()
        .map(|admin| {
            let payload = serde_json::json!({
                "type": DeliveryEvent::EndpointDisabled.as_str(),
                "timestamp": now.to_rfc3339_opts(SecondsFormat::Secs, true),
                "data": {
                    "endpointId": crate::domain::gid::encode(crate::domain::gid::Kind::WebhookEndpoint, endpoint.id),
                    "url": url,
                    "failingSince": since.to_rfc3339_opts(SecondsFormat::Secs, true),
                    "lastError": clip(error),
                    "adminName": admin.name,
                }
            });
            NewDelivery {
                firm_id: endpoint.firm_id,
                delivery_uid: new_delivery_uid(),
                dedupe_key: format!(
                    "{}:{}:{}:user:{}",
                    DeliveryEvent::EndpointDisabled.as_str(),
                    endpoint.id,
                    since.timestamp(),
                    admin.id
                ),
                kind: DeliveryKind::Email,
                event: DeliveryEvent::EndpointDisabled,
                request_id: None,
                contact_id: None,
                webhook_endpoint_id: None,
                target: admin.email.clone(),
                payload: payload.to_string(),
                status: DeliveryStatus::Pending,
                next_attempt_at: now.naive_utc(),
                created_at: now.naive_utc(),
            }
        })
        .collect();
    outbox::enqueue_many(tx, &notices).await?;
    Ok(Some(endpoint))
}

/// An endpoint's URL without its query string or fragment (which may hold a token).
fn endpoint_url_without_query(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            parsed.set_query(None);
            parsed.set_fragment(None);
            parsed.to_string()
        }
        Err(_) => url.split(['?', '#']).next().unwrap_or_default().to_string(),
    }
}

fn log_settled(delivery: &Delivery, state: &DeliveryState, settled: Settled) {
    let error = state
        .last_error
        .as_deref()
        .map(redact_addresses)
        .unwrap_or_default();
    let (id, kind, event) = (delivery.id, delivery.kind.as_str(), delivery.event.as_str());
    crate::metrics::record_delivery(kind, event, settled.label());
    match settled {
        Settled::Delivered => tracing::debug!(delivery_id = id, kind, event, "delivered"),
        Settled::Retrying => tracing::info!(
            delivery_id = id,
            kind,
            event,
            attempts = state.attempts,
            next_attempt_at = %state.next_attempt_at,
            error,
            "delivery failed; will retry"
        ),
        Settled::Skipped => {
            tracing::info!(delivery_id = id, kind, event, error, "delivery skipped")
        }
        Settled::Failed => tracing::warn!(
            delivery_id = id,
            kind,
            event,
            error,
            "delivery refused for good"
        ),
        Settled::Dead => tracing::warn!(
            delivery_id = id,
            kind,
            event,
            attempts = state.attempts,
            error,
            "delivery is dead after its last attempt"
        ),
    }
}

/// A new reply address for one request email, `{local}+{token}@{domain}`: the token (128
/// random bits, lowercase hex so that no mail system's case folding breaks it) names the
/// request, the contact and this delivery, and only its SHA-256 is stored.
fn new_reply_address(
    tokens: &mut PendingTokens,
    delivery: &Delivery,
    request_id: i64,
    contact_id: i64,
    local: &str,
    domain: &str,
) -> String {
    use rand::RngCore as _;
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    let token: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    tokens.add_reply(
        delivery.firm_id,
        request_id,
        contact_id,
        delivery.id,
        token_hash(&token),
        Utc::now().naive_utc(),
    );
    format!("{local}+{token}@{domain}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notice_shows_an_endpoint_without_its_query_string() {
        assert_eq!(
            endpoint_url_without_query("https://hooks.example.com/in?token=secret#x"),
            "https://hooks.example.com/in"
        );
    }
}
