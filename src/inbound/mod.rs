//! The doors replies by email come in through: an SMTP listener ([`smtp`]) for firms that
//! point an MX or a forwarding rule at Rappel, and an IMAP fetcher ([`imap`]) for firms whose
//! replies land in a mailbox. Both only read bytes (never more than `[inbound]
//! max_message_mb`) and hand each email to `ops::replies::receive`, which holds every rule.
//!
//! Never here: a rule about what an email means, SQL.

pub mod imap;
pub mod smtp;

use std::sync::Arc;

use crate::db::Pool;
use crate::events::EventBus;
use crate::generation::GenerationSettings;
use crate::ops::Env;
use crate::ops::replies::InboundSettings;
use crate::storage::Storage;

/// What both doors share: the database, the document store and the settings.
#[derive(Clone)]
pub struct Inbound {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    storage: Storage,
    generation: GenerationSettings,
    events: Option<EventBus>,
    settings: InboundSettings,
}

impl Inbound {
    pub fn new(
        pool: Pool,
        storage: Storage,
        generation: GenerationSettings,
        events: Option<EventBus>,
        settings: InboundSettings,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                pool,
                storage,
                generation,
                events,
                settings,
            }),
        }
    }

    /// The operations' environment, with the document store.
    pub fn env(&self) -> Env<'_> {
        Env {
            pool: &self.inner.pool,
            generation: &self.inner.generation,
            events: self.inner.events.as_ref(),
            storage: Some(&self.inner.storage),
        }
    }

    pub fn settings(&self) -> &InboundSettings {
        &self.inner.settings
    }
}

/// Starts the doors `[inbound]` turns on: the SMTP listener (bound before this returns, so a
/// wrong address stops the start) and the IMAP fetcher. Nothing when inbound is off.
pub async fn start(
    config: &crate::config::Config,
    pool: Pool,
    storage: Option<Storage>,
    generation: GenerationSettings,
    events: EventBus,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    use anyhow::Context as _;
    let mut tasks = Vec::new();
    let Some(settings) = InboundSettings::from_config(&config.inbound) else {
        return Ok(tasks);
    };
    let storage = storage.context("[inbound] needs the document store ([storage])")?;
    let inbound = Inbound::new(pool, storage, generation, Some(events), settings);
    let smtp = &config.inbound.smtp;
    if smtp.enabled {
        let tls = if smtp.tls_cert.is_empty() {
            None
        } else {
            Some(self::smtp::tls_acceptor(&smtp.tls_cert, &smtp.tls_key)?)
        };
        let listener = tokio::net::TcpListener::bind(&smtp.listen)
            .await
            .with_context(|| format!("cannot listen on {} ([inbound.smtp] listen)", smtp.listen))?;
        tracing::info!(address = %smtp.listen, starttls = tls.is_some(), "inbound SMTP listening");
        tasks.push(tokio::spawn(self::smtp::serve(
            listener,
            inbound.clone(),
            tls,
            self::smtp::Limits::from_config(smtp),
        )));
    }
    if config.inbound.imap.enabled {
        tasks.push(tokio::spawn(self::imap::run(
            inbound.clone(),
            config.inbound.imap.clone(),
        )));
    }
    Ok(tasks)
}
