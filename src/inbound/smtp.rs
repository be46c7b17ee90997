//! The inbound SMTP listener (a subset of RFC 5321 written on tokio, as no maintained async
//! SMTP server crate fits): EHLO/HELO, STARTTLS (RFC 3207, when a certificate is set), SIZE
//! (RFC 1870), MAIL, RCPT (unknown recipients and tokens refused right there), DATA with
//! dot-unstuffing, RSET, NOOP, QUIT. A message past the size limit is refused at MAIL when it
//! declares its SIZE; otherwise DATA is spooled to a private temporary file while counted, and
//! past the limit the rest is read and dropped: its bytes are never held in memory (64 KiB
//! pieces at a time). Each accepted message goes to `ops::replies::receive`.
//!
//! Caps (`[inbound.smtp]`, [`Limits`]): connections in total and per remote IP (the HTTP
//! listener's `ConnectionLimits`; 421 and closed beyond), a timeout per command, DATA line and
//! TLS handshake and one for the whole DATA (421 and closed), recipients per message (452),
//! commands per connection (421 and closed), the command line's length (500 and closed), and
//! bad commands (421 and closed).
//!
//! Never here: what a message means (that is `ops::replies`), relaying anywhere.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{
    AsyncBufReadExt as _, AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, BufReader,
};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

use super::Inbound;
use crate::listener::{ConnectionLimits, Refusal};
use crate::ops::replies::{Received, Source, receive, recipient_is_known};

/// Pieces a DATA line is read in (a line is never held whole beyond this).
const DATA_CHUNK_BYTES: u64 = 64 * 1024;
/// Bad commands after which the connection is closed.
const MAX_ERRORS: u32 = 10;

/// The listener's caps, from `[inbound.smtp]`.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    /// For a command, a DATA line or the TLS handshake.
    pub command_timeout: Duration,
    /// For one message's whole DATA.
    pub data_timeout: Duration,
    pub max_recipients: usize,
    pub max_commands: u32,
    /// Longest command line, line end included.
    pub max_line_bytes: u64,
}

impl Limits {
    pub fn from_config(config: &crate::config::InboundSmtpConfig) -> Self {
        Self {
            max_connections: config.max_connections,
            max_connections_per_ip: config.max_connections_per_ip,
            command_timeout: Duration::from_secs(config.command_timeout_seconds),
            data_timeout: Duration::from_secs(config.data_timeout_seconds),
            max_recipients: config.max_recipients,
            max_commands: config.max_commands,
            max_line_bytes: config.max_line_bytes,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self::from_config(&crate::config::InboundSmtpConfig::default())
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// The STARTTLS certificate from PEM files.
pub fn tls_acceptor(cert_path: &str, key_path: &str) -> anyhow::Result<TlsAcceptor> {
    use rustls_pki_types::pem::PemObject as _;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert_path)
        .map_err(|error| anyhow::anyhow!("cannot read {cert_path}: {error}"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| anyhow::anyhow!("cannot read {cert_path}: {error}"))?;
    let key = PrivateKeyDer::from_pem_file(key_path)
        .map_err(|error| anyhow::anyhow!("cannot read {key_path}: {error}"))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(certs, key)?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Answers SMTP on `listener` until the task is aborted, one task per connection; a
/// connection past `limits`' caps is told 421 and closed at once.
pub async fn serve(
    listener: TcpListener,
    inbound: Inbound,
    tls: Option<TlsAcceptor>,
    limits: Limits,
) {
    let open = ConnectionLimits::new(limits.max_connections, limits.max_connections_per_ip);
    let limits = Arc::new(limits);
    loop {
        let (mut stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "inbound SMTP: cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let slot = match open.admit(peer.ip()) {
            Ok(slot) => slot,
            Err(refusal) => {
                let answer: &[u8] = match refusal {
                    Refusal::TooManyFromThisIp => {
                        b"421 4.7.0 too many connections from your address, try again later\r\n"
                    }
                    Refusal::TooManyInTotal => {
                        b"421 4.3.2 too many connections, try again later\r\n"
                    }
                };
                tracing::info!(?refusal, "inbound SMTP: connection refused");
                // Written in the background (a peer that reads nothing cannot hold the loop).
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(Duration::from_secs(5), async {
                        let _ = stream.write_all(answer).await;
                        let _ = stream.shutdown().await;
                    })
                    .await;
                });
                continue;
            }
        };
        let inbound = inbound.clone();
        let tls = tls.clone();
        let limits = limits.clone();
        tokio::spawn(async move {
            let _slot = slot;
            if let Err(error) = session(stream, &inbound, tls, &limits).await {
                tracing::debug!(%error, %peer, "inbound SMTP session ended");
            }
        });
    }
}

/// One message being received.
#[derive(Default)]
struct Transaction {
    from: Option<String>,
    recipients: Vec<String>,
}

async fn session(
    stream: TcpStream,
    inbound: &Inbound,
    tls: Option<TlsAcceptor>,
    limits: &Limits,
) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    let host = inbound.settings().reply_domain.clone();
    let max = inbound.settings().max_message_bytes;
    let mut reader: BufReader<Box<dyn Io>> = BufReader::new(Box::new(stream));
    let mut secured = false;
    let mut greeted = false;
    let mut errors = 0u32;
    let mut commands = 0u32;
    let mut current = Transaction::default();
    reply(&mut reader, &format!("220 {host} Rappel ESMTP ready")).await?;
    loop {
        let line = match read_command(&mut reader, limits).await? {
            Command::Line(line) => line,
            Command::Closed => return Ok(()),
            Command::TooLong => {
                return last_reply(&mut reader, "500 5.5.2 line too long").await;
            }
            Command::TimedOut => {
                return last_reply(&mut reader, "421 4.4.2 idle too long, closing").await;
            }
        };
        commands += 1;
        if commands > limits.max_commands {
            return last_reply(&mut reader, "421 4.7.0 too many commands, closing").await;
        }
        let upper = line.to_ascii_uppercase();
        let verb = upper.split_whitespace().next().unwrap_or("").to_string();
        match verb.as_str() {
            "EHLO" => {
                greeted = true;
                current = Transaction::default();
                let mut lines = vec![host.clone(), format!("SIZE {max}"), "8BITMIME".into()];
                if tls.is_some() && !secured {
                    lines.push("STARTTLS".into());
                }
                let count = lines.len();
                let text: Vec<String> = lines
                    .into_iter()
                    .enumerate()
                    .map(|(index, line)| {
                        let sep = if index + 1 == count { ' ' } else { '-' };
                        format!("250{sep}{line}")
                    })
                    .collect();
                reply(&mut reader, &text.join("\r\n")).await?;
            }
            "HELO" => {
                greeted = true;
                current = Transaction::default();
                reply(&mut reader, &format!("250 {host}")).await?;
            }
            "STARTTLS" => match (&tls, secured) {
                (Some(acceptor), false) => {
                    if !reader.buffer().is_empty() {
                        // Commands sent before the handshake could be injected in clear.
                        reply(&mut reader, "501 5.5.2 nothing may follow STARTTLS").await?;
                        return Ok(());
                    }
                    reply(&mut reader, "220 2.0.0 ready to start TLS").await?;
                    let plain = reader.into_inner();
                    let secure =
                        tokio::time::timeout(limits.command_timeout, acceptor.accept(plain))
                            .await
                            .map_err(|_| timed_out("TLS handshake"))??;
                    reader = BufReader::new(Box::new(secure));
                    secured = true;
                    greeted = false;
                    current = Transaction::default();
                }
                _ => reply(&mut reader, "502 5.5.1 STARTTLS not available").await?,
            },
            "MAIL" => {
                if !greeted {
                    reply(&mut reader, "503 5.5.1 say EHLO first").await?;
                } else if current.from.is_some() {
                    reply(&mut reader, "503 5.5.1 nested MAIL command").await?;
                } else if let Some(from) = path_argument(&line, "FROM:") {
                    if declared_size(&line).is_some_and(|size| size > max) {
                        reply(
                            &mut reader,
                            &format!("552 5.3.4 message larger than {max} bytes"),
                        )
                        .await?;
                    } else {
                        current.from = Some(from);
                        reply(&mut reader, "250 2.1.0 OK").await?;
                    }
                } else {
                    errors += 1;
                    reply(&mut reader, "501 5.5.4 syntax: MAIL FROM:<address>").await?;
                }
            }
            "RCPT" => {
                if current.from.is_none() {
                    reply(&mut reader, "503 5.5.1 MAIL first").await?;
                } else if current.recipients.len() >= limits.max_recipients {
                    reply(&mut reader, "452 4.5.3 too many recipients").await?;
                } else if let Some(to) = path_argument(&line, "TO:") {
                    match recipient_is_known(inbound.env(), inbound.settings(), &to).await {
                        Ok(true) => {
                            current.recipients.push(to);
                            reply(&mut reader, "250 2.1.5 OK").await?;
                        }
                        Ok(false) => {
                            errors += 1;
                            reply(&mut reader, "550 5.1.1 no such reply address").await?;
                        }
                        Err(error) => {
                            tracing::error!(error = %error.message(), "inbound SMTP: cannot check a recipient");
                            reply(&mut reader, "451 4.3.0 try again later").await?;
                        }
                    }
                } else {
                    errors += 1;
                    reply(&mut reader, "501 5.5.4 syntax: RCPT TO:<address>").await?;
                }
            }
            "DATA" => {
                if current.recipients.is_empty() {
                    reply(&mut reader, "503 5.5.1 RCPT first").await?;
                    continue;
                }
                reply(&mut reader, "354 end data with <CR><LF>.<CR><LF>").await?;
                let body = match tokio::time::timeout(
                    limits.data_timeout,
                    read_data(&mut reader, max, limits.command_timeout),
                )
                .await
                {
                    Ok(Ok(body)) => body,
                    Ok(Err(error)) if error.kind() == std::io::ErrorKind::TimedOut => {
                        return last_reply(&mut reader, "421 4.4.2 idle too long in DATA, closing")
                            .await;
                    }
                    Ok(Err(error)) => return Err(error),
                    Err(_) => {
                        return last_reply(&mut reader, "421 4.4.2 DATA took too long, closing")
                            .await;
                    }
                };
                let recipients = std::mem::take(&mut current.recipients);
                current = Transaction::default();
                let Some(body) = body else {
                    reply(
                        &mut reader,
                        &format!("552 5.3.4 message larger than {max} bytes"),
                    )
                    .await?;
                    continue;
                };
                let answer = match receive(
                    inbound.env(),
                    inbound.settings(),
                    &body,
                    &recipients,
                    Source::Smtp,
                )
                .await
                {
                    Ok(Received::UnknownRecipient) => "550 5.1.1 no such reply address".to_string(),
                    Ok(received) => {
                        tracing::info!(outcome = ?received, "inbound SMTP: message received");
                        "250 2.0.0 OK".to_string()
                    }
                    Err(error) => {
                        tracing::error!(error = %error.message(), "inbound SMTP: cannot take a message");
                        "451 4.3.0 try again later".to_string()
                    }
                };
                drop(body);
                reply(&mut reader, &answer).await?;
            }
            "RSET" => {
                current = Transaction::default();
                reply(&mut reader, "250 2.0.0 OK").await?;
            }
            "NOOP" => reply(&mut reader, "250 2.0.0 OK").await?,
            "VRFY" => reply(&mut reader, "252 2.5.0 cannot verify").await?,
            "QUIT" => {
                reply(&mut reader, "221 2.0.0 bye").await?;
                return Ok(());
            }
            _ => {
                errors += 1;
                reply(&mut reader, "502 5.5.2 command not recognised").await?;
            }
        }
        if errors >= MAX_ERRORS {
            return last_reply(&mut reader, "421 4.7.0 too many errors, closing").await;
        }
    }
}

async fn reply(reader: &mut BufReader<Box<dyn Io>>, text: &str) -> std::io::Result<()> {
    let stream = reader.get_mut();
    stream.write_all(text.as_bytes()).await?;
    stream.write_all(b"\r\n").await?;
    stream.flush().await
}

/// Sends a last reply and closes: the write side first (the client reads the reply, then the
/// end of the stream), then whatever the client still sends is read and dropped for a moment
/// (at most 1 MiB or a second), so that closing with unread bytes does not reset the
/// connection and lose the reply.
async fn last_reply(reader: &mut BufReader<Box<dyn Io>>, text: &str) -> std::io::Result<()> {
    reply(reader, text).await?;
    reader.get_mut().shutdown().await?;
    let stream = reader.get_mut();
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let mut dropped = [0u8; 8192];
        let mut total = 0usize;
        while total < 1024 * 1024 {
            match stream.read(&mut dropped).await {
                Ok(0) | Err(_) => break,
                Ok(read) => total += read,
            }
        }
    })
    .await;
    Ok(())
}

/// What reading a command line gave.
enum Command {
    /// The line without its line end.
    Line(String),
    /// The client closed the connection.
    Closed,
    /// Longer than `max_line_bytes` (the rest is not read).
    TooLong,
    /// Nothing complete within `command_timeout`.
    TimedOut,
}

fn timed_out(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::TimedOut, format!("{what} timed out"))
}

/// One command line, at most `max_line_bytes` long, within `command_timeout`.
async fn read_command(
    reader: &mut BufReader<Box<dyn Io>>,
    limits: &Limits,
) -> std::io::Result<Command> {
    let mut line = Vec::new();
    let Ok(read) = tokio::time::timeout(
        limits.command_timeout,
        (&mut *reader)
            .take(limits.max_line_bytes)
            .read_until(b'\n', &mut line),
    )
    .await
    else {
        return Ok(Command::TimedOut);
    };
    if read? == 0 {
        return Ok(Command::Closed);
    }
    if !line.ends_with(b"\n") {
        return Ok(if line.len() as u64 >= limits.max_line_bytes {
            Command::TooLong
        } else {
            // Closed in the middle of a line.
            Command::Closed
        });
    }
    Ok(Command::Line(
        String::from_utf8_lossy(&line)
            .trim_end_matches(['\r', '\n'])
            .to_string(),
    ))
}

/// A message being received, spooled to a private temporary file (deleted when dropped), so
/// that the bytes of one past the limit are never held in memory.
struct Spool {
    path: std::path::PathBuf,
}

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The message up to the lone dot, dot-unstuffed; `None` when it was larger than `max` (its
/// bytes were read and dropped). The message is written to a spool file as it arrives (64 KiB
/// at a time in memory) and read back whole only when it is within the limit.
async fn read_data(
    reader: &mut BufReader<Box<dyn Io>>,
    max: u64,
    line_timeout: Duration,
) -> std::io::Result<Option<Vec<u8>>> {
    let spool = Spool {
        path: std::env::temp_dir().join(format!(
            "rappel-inbound-{}.eml",
            uuid::Uuid::new_v4().simple()
        )),
    };
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create_new(true).mode(0o600);
    let mut file = Some(tokio::io::BufWriter::new(options.open(&spool.path).await?));
    let mut size: u64 = 0;
    let mut at_line_start = true;
    let mut piece = Vec::new();
    loop {
        piece.clear();
        let read = tokio::time::timeout(
            line_timeout,
            (&mut *reader)
                .take(DATA_CHUNK_BYTES)
                .read_until(b'\n', &mut piece),
        )
        .await
        .map_err(|_| timed_out("a DATA line"))??;
        if read == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed in DATA",
            ));
        }
        let complete = piece.ends_with(b"\n");
        if at_line_start && complete && (piece == b".\r\n" || piece == b".\n") {
            break;
        }
        let data = if at_line_start && piece.first() == Some(&b'.') {
            &piece[1..]
        } else {
            &piece[..]
        };
        size = size.saturating_add(data.len() as u64);
        if size > max {
            // Past the limit: what was spooled goes, the rest is read and dropped.
            file = None;
        } else if let Some(file) = file.as_mut() {
            file.write_all(data).await?;
        }
        at_line_start = complete;
    }
    let Some(mut file) = file else {
        return Ok(None);
    };
    file.flush().await?;
    drop(file);
    Ok(Some(tokio::fs::read(&spool.path).await?))
}

/// `<address>` of `MAIL FROM:<a@b> SIZE=1` / `RCPT TO:<a@b>` (the null path `<>` is empty).
fn path_argument(line: &str, keyword: &str) -> Option<String> {
    let rest = line.get(4..)?.trim_start();
    if !rest.to_ascii_uppercase().starts_with(keyword) {
        return None;
    }
    let rest = rest[keyword.len()..].trim_start();
    let rest = rest.strip_prefix('<')?;
    let end = rest.find('>')?;
    Some(rest[..end].to_string())
}

/// The `SIZE=` parameter of a MAIL command.
fn declared_size(line: &str) -> Option<u64> {
    line.split_whitespace().skip(2).find_map(|parameter| {
        let (name, value) = parameter.split_once('=')?;
        name.eq_ignore_ascii_case("SIZE")
            .then(|| value.parse().ok())?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_sizes_are_read_from_commands() {
        assert_eq!(
            path_argument("MAIL FROM:<a@b.fr> SIZE=12", "FROM:").as_deref(),
            Some("a@b.fr")
        );
        assert_eq!(path_argument("mail from: <>", "FROM:").as_deref(), Some(""));
        assert_eq!(
            path_argument("RCPT TO:<r+x@y.fr>", "TO:").as_deref(),
            Some("r+x@y.fr")
        );
        assert_eq!(path_argument("RCPT TO:r@y.fr", "TO:"), None);
        assert_eq!(
            declared_size("MAIL FROM:<a@b.fr> SIZE=41943040"),
            Some(41_943_040)
        );
        assert_eq!(declared_size("MAIL FROM:<a@b.fr> BODY=8BITMIME"), None);
        // "FROM:" the first word of the second argument (MAIL FROM:<x> counts as 2 words).
        assert_eq!(declared_size("MAIL FROM: <a@b.fr> SIZE=5"), Some(5));
    }
}
