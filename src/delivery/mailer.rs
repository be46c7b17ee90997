//! Sending: the [`Mailer`] that hands a built message to SMTP (production), to
//! `.eml` files (development) or to memory (tests), and the [`SendError`]
//! that classifies a failed attempt (transient or permanent) for the outbox's
//! retry logic. What a message says and which headers it carries is
//! `super::email`'s part; nothing here renders or reads the database. Logs
//! carry the message id only, never an address.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use lettre::Message;
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::Credentials;

use lettre::transport::smtp::client::TlsParameters;
use rustls_pki_types::CertificateDer;

use super::email::{EmailError, parse_address};
use super::smtp::{Connecting, Security, SmtpServer};
use crate::config::SmtpConfig;

/// How long one SMTP command (connect, EHLO, DATA, ...) may take before the
/// attempt is abandoned and reported as transient.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// A failed delivery attempt, classified for the retry logic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SendError {
    /// `true` when trying again later may succeed (SMTP 4xx, connection
    /// refused, timeout, I/O or TLS trouble); `false` when the server
    /// rejected the message for good (SMTP 5xx) or it can never be sent.
    pub transient: bool,
    /// The SMTP reply code, when the server answered with an error.
    pub code: Option<u16>,
    /// Human-readable description, including the server's reply text.
    pub message: String,
}

impl SendError {
    fn permanent(message: String) -> Self {
        Self {
            transient: false,
            code: None,
            message,
        }
    }

    pub(super) fn transient(message: String) -> Self {
        Self {
            transient: true,
            code: None,
            message,
        }
    }

    pub(super) fn from_smtp(err: &lettre::transport::smtp::Error) -> Self {
        // Only an explicit 5xx reply is final. Everything else (4xx,
        // connection refused, timeouts, TLS handshakes, garbled replies,
        // missing server capabilities) may be fixed by the server or the
        // operator, so it is worth retrying; the caller caps the attempts.
        Self {
            transient: !err.is_permanent(),
            code: err.status().map(u16::from),
            message: err.to_string(),
        }
    }

    fn io(context: &str, err: &std::io::Error) -> Self {
        // A full disk or a permission problem can be fixed without touching
        // the message, so file errors are transient.
        Self {
            transient: true,
            code: None,
            message: format!("{context}: {err}"),
        }
    }
}

/// Where messages go.
#[derive(Debug, Clone)]
pub enum Mailer {
    /// A real SMTP server, through a connection pool.
    Smtp(SmtpPool),
    /// One `<message id>.eml` file per message in this directory
    /// (development): a retry overwrites the same file.
    Files(PathBuf),
    /// Kept in memory (tests).
    Memory(MemoryOutbox),
}

/// Messages kept by [`Mailer::Memory`]: `(envelope recipient, formatted
/// message)`, oldest first. Shared so a test keeps a handle on it.
pub type MemoryOutbox = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

impl Mailer {
    /// Builds the mailer described by the configuration.
    ///
    /// `tls` is `"none"` (plain SMTP, for local relays and tests),
    /// `"starttls"` (upgrade required, no plaintext fallback) or `"tls"`
    /// (implicit TLS); every mode sends over `TCP_NODELAY` sockets (`super::smtp`).
    /// Credentials are used when `username` is not empty; at most `pool_size`
    /// connections are open at once (at least one).
    ///
    /// The SMTP pool must be created inside a Tokio runtime, because it
    /// spawns its idle-connection reaper right away; outside one this
    /// returns [`EmailError::Config`] instead of panicking.
    pub fn from_config(config: &SmtpConfig) -> Result<Mailer, EmailError> {
        match config.transport.as_str() {
            "files" => Ok(Mailer::Files(config.mail_dir.clone())),
            "smtp" => smtp_pool(config).map(|pool| Mailer::Smtp(SmtpPool::Nodelay(pool))),
            other => Err(EmailError::Config(format!(
                "unknown mail transport {other:?}, expected \"smtp\" or \"files\""
            ))),
        }
    }

    /// Sends `message` to `envelope_to` (the SMTP `RCPT TO`; the sender is
    /// the message's envelope sender).
    pub async fn send(&self, message: &Message, envelope_to: &str) -> Result<(), SendError> {
        let recipient = parse_address("recipient address", envelope_to)
            .map_err(|err| SendError::permanent(err.to_string()))?;
        let envelope = Envelope::new(message.envelope().from().cloned(), vec![recipient])
            .map_err(|err| SendError::permanent(format!("invalid envelope: {err}")))?;
        let formatted = message.formatted();
        let message_id = message.headers().get_raw("Message-ID").unwrap_or_default();

        let result = match self {
            Mailer::Smtp(SmtpPool::Nodelay(pool)) => pool.send(&envelope, &formatted).await,
            Mailer::Files(dir) => write_eml(dir, message_id, &formatted).await,
            Mailer::Memory(store) => {
                store
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push((envelope_to.to_owned(), formatted));
                Ok(())
            }
        };
        // Addresses are personal data: log the message id only.
        match &result {
            Ok(()) => tracing::debug!(message_id, "email sent"),
            // The worker logs the outcome once, where it handles it.
            Err(err) => tracing::debug!(
                message_id,
                transient = err.transient,
                code = err.code,
                error = %err.message,
                "email not sent"
            ),
        }
        result
    }
}

/// Connections to one SMTP server.
#[derive(Debug, Clone)]
pub enum SmtpPool {
    /// Plain, STARTTLS or implicit TLS: our pool of `TCP_NODELAY` connections
    /// (`super::smtp`), at most `pool_size` open at once.
    Nodelay(NodelayPool),
}

/// The pool of [`SmtpPool::Nodelay`].
#[derive(Clone)]
pub struct NodelayPool {
    pool: bb8::Pool<SmtpServer>,
    /// The pool's [`SmtpServer::connecting`].
    connecting: Arc<Connecting>,
}

impl std::fmt::Debug for NodelayPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodelayPool").finish_non_exhaustive()
    }
}

impl NodelayPool {
    async fn send(&self, envelope: &Envelope, formatted: &[u8]) -> Result<(), SendError> {
        // A connection that cannot be opened fails this send at once with its reason instead of
        // bb8's 30 s "timed out" (see `Connecting`), but only while nothing else can serve it: no
        // live connection and none being opened (a relay refusing one connection too many must
        // not fail the emails waiting for the open ones). Such a failure may come from another
        // send's attempt, so it is always transient here.
        let mut failures = self.connecting.failures.subscribe();
        let get = self.pool.get();
        tokio::pin!(get);
        let got = loop {
            tokio::select! {
                got = &mut get => break got,
                Ok(()) = failures.changed() => {
                    let opening = self.connecting.opening.load(std::sync::atomic::Ordering::SeqCst);
                    if self.pool.state().connections > 0 || opening > 0 {
                        continue;
                    }
                    let failure = failures.borrow_and_update().clone();
                    return Err(SendError::transient(failure.map_or_else(
                        || "no SMTP connection could be opened".to_owned(),
                        |failure| failure.message,
                    )));
                }
            }
        };
        let mut connection = got.map_err(|error| match error {
            bb8::RunError::User(error) => error,
            bb8::RunError::TimedOut => {
                SendError::transient("no SMTP connection could be opened in time".to_owned())
            }
        })?;
        connection.send(envelope, formatted, SMTP_TIMEOUT).await
    }
}

fn smtp_pool(config: &SmtpConfig) -> Result<NodelayPool, EmailError> {
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(EmailError::Config(
            "the SMTP transport must be created inside a Tokio runtime".to_owned(),
        ));
    }
    if config.host.trim().is_empty() {
        return Err(EmailError::Config("SMTP host is empty".to_owned()));
    }
    let tls_error =
        |err: String| EmailError::Config(format!("cannot set up TLS for {}: {err}", config.host));
    let extra_roots = extra_roots(&config.ca_file).map_err(tls_error)?;
    let security = match config.tls.as_str() {
        "none" => Security::None,
        "starttls" => {
            let mut parameters = TlsParameters::builder(config.host.clone());
            for root in &extra_roots {
                parameters = parameters.add_root_certificate(
                    lettre::transport::smtp::client::Certificate::from_der(root.to_vec())
                        .map_err(|err| tls_error(err.to_string()))?,
                );
            }
            Security::StartTls(
                parameters
                    .build()
                    .map_err(|err| tls_error(err.to_string()))?,
            )
        }
        "tls" => Security::implicit_tls(&config.host, extra_roots).map_err(tls_error)?,
        other => {
            return Err(EmailError::Config(format!(
                "unknown SMTP tls mode {other:?}, expected \"none\", \"starttls\" or \"tls\""
            )));
        }
    };
    let connecting = Arc::new(Connecting::default());
    let server = SmtpServer {
        host: config.host.clone(),
        port: config.port,
        security,
        credentials: (!config.username.is_empty())
            .then(|| Credentials::new(config.username.clone(), config.password.clone())),
        timeout: SMTP_TIMEOUT,
        connecting: Arc::clone(&connecting),
    };
    let pool = bb8::Pool::builder()
        .max_size(config.pool_size.max(1))
        .min_idle(None)
        .connection_timeout(SMTP_TIMEOUT)
        .idle_timeout(Some(Duration::from_secs(60)))
        .test_on_check_out(true)
        // A refused connection is the attempt's error, reported by `get`, not retried here.
        .retry_connection(false)
        .build_unchecked(server);
    Ok(NodelayPool { pool, connecting })
}

/// The certificates of `[smtp] ca_file` (PEM), trusted besides the public roots; none when the
/// setting is empty. An unreadable file or one without a certificate stops the start.
fn extra_roots(ca_file: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    use rustls_pki_types::pem::PemObject as _;
    if ca_file.is_empty() {
        return Ok(Vec::new());
    }
    let roots = CertificateDer::pem_file_iter(ca_file)
        .and_then(|certificates| certificates.collect::<Result<Vec<_>, _>>())
        .map_err(|error| format!("cannot read smtp.ca_file {ca_file}: {error}"))?;
    if roots.is_empty() {
        return Err(format!("smtp.ca_file {ca_file} holds no certificate"));
    }
    Ok(roots)
}

/// File name (without extension) for a message id: `<` and `>` dropped,
/// anything but ASCII letters, digits and `@._+-` replaced by `_`, and a
/// leading dot avoided so the file is never hidden.
fn eml_file_stem(message_id: &str) -> String {
    let id = message_id
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>');
    let mut stem: String = id
        .chars()
        .take(200)
        .map(|c| {
            if c.is_ascii_alphanumeric() || "@._+-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if stem.is_empty() || stem.starts_with('.') {
        stem.insert(0, '_');
    }
    stem
}

async fn write_eml(dir: &Path, message_id: &str, formatted: &[u8]) -> Result<(), SendError> {
    if message_id.trim().is_empty() {
        return Err(SendError::permanent(
            "the message has no Message-ID to name its file after".to_owned(),
        ));
    }
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|err| SendError::io(&format!("cannot create {}", dir.display()), &err))?;
    let stem = eml_file_stem(message_id);
    let path = dir.join(format!("{stem}.eml"));
    // Write then rename, so a reader never sees half a message and a retry
    // replaces the previous file in one step.
    let temporary = dir.join(format!(".{stem}.eml.tmp"));
    tokio::fs::write(&temporary, formatted)
        .await
        .map_err(|err| SendError::io(&format!("cannot write {}", temporary.display()), &err))?;
    tokio::fs::rename(&temporary, &path)
        .await
        .map_err(|err| SendError::io(&format!("cannot write {}", path.display()), &err))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small message with a Message-ID, as `super::email` would build one.
    fn message() -> Message {
        Message::builder()
            .from("Cabinet <cabinet@example.fr>".parse().expect("from"))
            .to("Marie <marie@martin.example>".parse().expect("to"))
            .message_id(Some("<dlv_test@rappel>".to_owned()))
            .subject("Test")
            .body(String::from("Bonjour"))
            .expect("message builds")
    }

    #[test]
    fn eml_file_names_keep_the_id_readable_and_safe() {
        assert_eq!(eml_file_stem("<dlv_abc123@rappel>"), "dlv_abc123@rappel");
        assert_eq!(eml_file_stem("<../../etc/passwd@x>"), "_.._.._etc_passwd@x");
        assert_eq!(eml_file_stem("<.hidden@x>"), "_.hidden@x");
    }

    fn config(transport: &str, tls: &str) -> SmtpConfig {
        SmtpConfig {
            transport: transport.to_owned(),
            mail_dir: PathBuf::from("/tmp/rappel-mail"),
            host: "smtp.example.com".to_owned(),
            port: 2525,
            tls: tls.to_owned(),
            ca_file: String::new(),
            username: "user".to_owned(),
            password: "secret".to_owned(),
            from_address: "rappel@localhost".to_owned(),
            pool_size: 4,
        }
    }

    #[tokio::test]
    async fn every_tls_mode_builds_an_smtp_mailer_with_rustls() {
        for tls in ["none", "starttls", "tls"] {
            let mailer = Mailer::from_config(&config("smtp", tls));
            assert!(matches!(mailer, Ok(Mailer::Smtp(_))), "{tls}: {mailer:?}");
        }
    }

    #[tokio::test]
    async fn unknown_transport_or_tls_mode_is_a_config_error() {
        assert!(matches!(
            Mailer::from_config(&config("pigeon", "none")),
            Err(EmailError::Config(_))
        ));
        assert!(matches!(
            Mailer::from_config(&config("smtp", "ssl")),
            Err(EmailError::Config(_))
        ));
    }

    #[test]
    fn smtp_mailer_outside_a_tokio_runtime_is_an_error_not_a_panic() {
        assert!(matches!(
            Mailer::from_config(&config("smtp", "none")),
            Err(EmailError::Config(_))
        ));
        assert!(matches!(
            Mailer::from_config(&config("files", "none")),
            Ok(Mailer::Files(_))
        ));
    }

    #[tokio::test]
    async fn memory_mailer_keeps_recipient_and_formatted_bytes() {
        let store = Arc::new(Mutex::new(Vec::new()));
        let mailer = Mailer::Memory(Arc::clone(&store));
        let message = message();
        mailer
            .send(&message, "marie@martin.example")
            .await
            .expect("memory send works");
        let stored = store.lock().expect("not poisoned");
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].0, "marie@martin.example");
        assert_eq!(stored[0].1, message.formatted());
    }

    #[tokio::test]
    async fn send_rejects_an_envelope_recipient_with_crlf_as_permanent() {
        let mailer = Mailer::Memory(Arc::new(Mutex::new(Vec::new())));
        let message = message();
        let err = mailer
            .send(&message, "a@b.example\r\nRCPT TO:<victim@x>")
            .await
            .expect_err("must be rejected");
        assert!(!err.transient);
        assert_eq!(err.code, None);
    }
}
