//! The IMAP fetcher (`async-imap` over tokio-rustls): signs in to the firm's reply mailbox
//! over TLS, reads the size of each message (`RFC822.SIZE`) before fetching it, so that a
//! message past the limit is never downloaded, hands each one to `ops::replies::receive`, and
//! moves it to the processed folder (MOVE, else COPY + `\Deleted` + EXPUNGE). A message is
//! moved only after it was handled: a crash in between fetches it again, and the operation's
//! message key makes the second time change nothing. Between passes it waits with IDLE when
//! the server has it, polling otherwise.
//!
//! Never here: what a message means (that is `ops::replies`).

use std::sync::Arc;
use std::time::Duration;

use async_imap::Session;
use futures_util::TryStreamExt as _;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls;

use super::Inbound;
use crate::config::InboundImapConfig;
use crate::ops::replies::{Received, Source, receive};

type ImapSession = Session<TlsStream<TcpStream>>;

/// What one pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FetchReport {
    /// What became of each message taken.
    pub received: Vec<Received>,
    /// Messages left unread because they were larger than the limit (moved away).
    pub too_large: usize,
    /// Messages whose handling failed (left in the folder for the next pass).
    pub failed: usize,
}

/// The TLS client: the public roots, plus the certificates of `ca_file` when set.
fn connector(config: &InboundImapConfig) -> anyhow::Result<TlsConnector> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if !config.ca_file.is_empty() {
        for cert in CertificateDer::pem_file_iter(&config.ca_file)
            .map_err(|error| anyhow::anyhow!("cannot read {}: {error}", config.ca_file))?
        {
            roots.add(
                cert.map_err(|error| anyhow::anyhow!("cannot read {}: {error}", config.ca_file))?,
            )?;
        }
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(tls)))
}

/// Connects over TLS and signs in.
pub async fn connect(config: &InboundImapConfig) -> anyhow::Result<ImapSession> {
    let tcp = TcpStream::connect((config.host.as_str(), config.port)).await?;
    let name = rustls_pki_types::ServerName::try_from(config.host.clone())?;
    let tls = connector(config)?.connect(name, tcp).await?;
    let mut client = async_imap::Client::new(tls);
    client
        .read_response()
        .await?
        .ok_or_else(|| anyhow::anyhow!("the IMAP server closed the connection"))?;
    let session = client
        .login(&config.user, &config.password)
        .await
        .map_err(|(error, _)| anyhow::anyhow!("IMAP sign-in refused: {error}"))?;
    Ok(session)
}

/// Makes sure the processed folder exists (creating an existing one fails: either way it
/// exists afterwards).
async fn ensure_processed_folder(session: &mut ImapSession, config: &InboundImapConfig) {
    let _ = session.create(&config.processed_folder).await;
}

/// One pass over the folder: every message in it is taken and moved away.
pub async fn fetch_pass(
    inbound: &Inbound,
    config: &InboundImapConfig,
    session: &mut ImapSession,
) -> anyhow::Result<FetchReport> {
    let mut report = FetchReport::default();
    session.select(&config.folder).await?;
    let mut uids: Vec<u32> = session.uid_search("ALL").await?.into_iter().collect();
    uids.sort_unstable();
    if uids.is_empty() {
        return Ok(report);
    }
    let can_move = session.capabilities().await?.has_str("MOVE");
    let set = uids
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let sizes: Vec<(u32, u64)> = session
        .uid_fetch(&set, "(UID RFC822.SIZE)")
        .await?
        .try_filter_map(|fetch| async move {
            Ok(fetch
                .uid
                .map(|uid| (uid, u64::from(fetch.size.unwrap_or(0)))))
        })
        .try_collect()
        .await?;
    let max = inbound.settings().max_message_bytes;
    for (uid, size) in sizes {
        if size > max {
            tracing::warn!(
                uid,
                size,
                "inbound IMAP: a message larger than the limit is moved away unread"
            );
            report.too_large += 1;
            move_away(session, uid, &config.processed_folder, can_move).await?;
            continue;
        }
        let fetched: Vec<_> = session
            .uid_fetch(uid.to_string(), "BODY.PEEK[]")
            .await?
            .try_collect()
            .await?;
        let Some(body) = fetched.iter().find_map(|fetch| fetch.body()) else {
            continue;
        };
        match receive(inbound.env(), inbound.settings(), body, &[], Source::Imap).await {
            Ok(received) => {
                tracing::info!(uid, outcome = ?received, "inbound IMAP: message received");
                report.received.push(received);
                drop(fetched);
                move_away(session, uid, &config.processed_folder, can_move).await?;
            }
            Err(error) => {
                tracing::error!(uid, error = %error.message(), "inbound IMAP: cannot take a message; it stays for the next pass");
                report.failed += 1;
            }
        }
    }
    Ok(report)
}

async fn move_away(
    session: &mut ImapSession,
    uid: u32,
    folder: &str,
    can_move: bool,
) -> anyhow::Result<()> {
    let uid = uid.to_string();
    if can_move {
        session.uid_mv(&uid, folder).await?;
    } else {
        session.uid_copy(&uid, folder).await?;
        let _: Vec<_> = session
            .uid_store(&uid, "+FLAGS.SILENT (\\Deleted)")
            .await?
            .try_collect()
            .await?;
        let _: Vec<_> = session.expunge().await?.try_collect().await?;
    }
    Ok(())
}

/// Connects, makes one pass and signs out (the CLI and the tests).
pub async fn fetch_once(
    inbound: &Inbound,
    config: &InboundImapConfig,
) -> anyhow::Result<FetchReport> {
    let mut session = connect(config).await?;
    ensure_processed_folder(&mut session, config).await;
    let report = fetch_pass(inbound, config, &mut session).await;
    let _ = session.logout().await;
    report
}

/// Fetches until the task is aborted: a pass, then IDLE (or a pause) until new mail or
/// `poll_seconds`; on an error, connects again after a pause.
pub async fn run(inbound: Inbound, config: InboundImapConfig) {
    let pause = Duration::from_secs(config.poll_seconds.max(1));
    loop {
        if let Err(error) = run_session(&inbound, &config, pause).await {
            tracing::warn!(%error, "inbound IMAP: connection lost; trying again");
        }
        tokio::time::sleep(pause).await;
    }
}

async fn run_session(
    inbound: &Inbound,
    config: &InboundImapConfig,
    pause: Duration,
) -> anyhow::Result<()> {
    let mut session = connect(config).await?;
    ensure_processed_folder(&mut session, config).await;
    let can_idle = session.capabilities().await?.has_str("IDLE");
    loop {
        fetch_pass(inbound, config, &mut session).await?;
        if can_idle {
            let mut idle = session.idle();
            idle.init().await?;
            {
                let (wait, _stop) = idle.wait_with_timeout(pause);
                wait.await?;
            }
            session = idle.done().await?;
        } else {
            tokio::time::sleep(pause).await;
        }
    }
}
