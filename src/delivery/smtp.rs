//! The pool of SMTP connections the [`super::mailer::Mailer`] sends through. Why not lettre's
//! own pool: lettre opens its sockets without `TCP_NODELAY` and writes a message's body and its
//! final `\r\n.\r\n` in two writes, so the small last write waits in Nagle's algorithm for the
//! server's delayed ACK of the body (about 40 ms on Linux) before the server can answer: some
//! 50 ms per email per connection, whatever the server's speed. Here each connection is a
//! lettre [`AsyncSmtpConnection`] over a socket we open with `TCP_NODELAY` (plain, upgraded
//! by `STARTTLS`, or wrapped in implicit TLS by us before lettre sees it), and a connection
//! used within the last second is trusted without lettre's `NOOP` before every message.
//! Nothing here builds or reads a message.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls;

use super::mailer::SendError;

/// A connection idle for longer than this is checked with `NOOP` before it is used (the server
/// may have closed it); a busier one is used at once.
const TRUSTED_IDLE: Duration = Duration::from_secs(1);

/// How connections are secured.
#[derive(Clone)]
pub enum Security {
    /// Plain SMTP (local relays, tests).
    None,
    /// `STARTTLS` right after the greeting, required (no plaintext fallback).
    StartTls(TlsParameters),
    /// Implicit TLS (SMTPS, usually port 465): TLS from the first byte.
    ImplicitTls {
        connector: TlsConnector,
        server_name: ServerName<'static>,
    },
}

impl Security {
    /// Implicit TLS to `host`, checked against the public roots (webpki-roots) and `extra_roots`
    /// (`[smtp] ca_file`).
    pub fn implicit_tls(
        host: &str,
        extra_roots: Vec<rustls_pki_types::CertificateDer<'static>>,
    ) -> Result<Self, String> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        for root in extra_roots {
            roots.add(root).map_err(|error| error.to_string())?;
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|error| error.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let server_name = ServerName::try_from(host.to_owned())
            .map_err(|error| format!("{host:?} is not a server name: {error}"))?;
        Ok(Self::ImplicitTls {
            connector: TlsConnector::from(Arc::new(config)),
            server_name,
        })
    }
}

/// A TLS session over our own `TCP_NODELAY` socket, handed to lettre as its stream (lettre
/// only reads, writes and asks for the peer's address).
#[derive(Debug)]
struct TlsSocket(TlsStream<TcpStream>);

impl AsyncRead for TlsSocket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsSocket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

impl AsyncTokioStream for TlsSocket {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}

/// Where and how to connect.
pub struct SmtpServer {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub credentials: Option<Credentials>,
    /// How long connecting and each command may take.
    pub timeout: Duration,
    /// What the pool's senders watch of the connections being opened.
    pub connecting: Arc<Connecting>,
}

/// The connections being opened, and the last failure. bb8 opens connections in tasks of its
/// own and only tells a waiting `get` "timed out" once its timeout has passed: the pool's
/// senders watch this instead, so a refused connection, a failed TLS handshake or refused
/// credentials fail a send at once, with their own reason, when nothing else can serve it.
#[derive(Debug)]
pub struct Connecting {
    /// Connections being opened right now.
    pub opening: std::sync::atomic::AtomicUsize,
    /// The last failure to open one (told after `opening` went down).
    pub failures: tokio::sync::watch::Sender<Option<SendError>>,
}

impl Default for Connecting {
    fn default() -> Self {
        Self {
            opening: std::sync::atomic::AtomicUsize::new(0),
            failures: tokio::sync::watch::Sender::new(None),
        }
    }
}

/// One open SMTP session and when it last sent.
pub struct SmtpConnection {
    session: AsyncSmtpConnection,
    last_used: Instant,
}

impl SmtpConnection {
    /// Sends one message (`MAIL`, `RCPT`, `DATA`); the session stays open for the next.
    pub async fn send(
        &mut self,
        envelope: &Envelope,
        message: &[u8],
        timeout: Duration,
    ) -> Result<(), SendError> {
        let sent = tokio::time::timeout(timeout, self.session.send(envelope, message)).await;
        self.last_used = Instant::now();
        match sent {
            Ok(result) => result
                .map(drop)
                .map_err(|error| SendError::from_smtp(&error)),
            Err(_) => {
                // The session is in an unknown state: never reuse it.
                abort(&mut self.session).await;
                Err(timed_out())
            }
        }
    }
}

/// Ends a session that is broken or stuck. lettre's `abort` says `QUIT` and waits for the
/// answer with no limit: a server that stopped answering would hold the sending slot (and its
/// lease) until TCP gives up, so it gets [`ABORT_LIMIT`], then the session is dropped.
async fn abort(session: &mut AsyncSmtpConnection) {
    let _ = tokio::time::timeout(ABORT_LIMIT, session.abort()).await;
}

/// How long a `QUIT` on a broken session may wait for its answer.
const ABORT_LIMIT: Duration = Duration::from_secs(2);

fn timed_out() -> SendError {
    SendError::transient("the SMTP server did not answer in time".to_owned())
}

impl SmtpServer {
    async fn open(&self) -> Result<SmtpConnection, SendError> {
        let hello = ClientId::default();
        let smtp = |error: lettre::transport::smtp::Error| SendError::from_smtp(&error);
        let open = async {
            let stream = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
                .await
                .map_err(|error| {
                    SendError::transient(format!(
                        "cannot connect to {}:{}: {error}",
                        self.host, self.port
                    ))
                })?;
            // The whole point of this pool: each write leaves at once.
            stream.set_nodelay(true).map_err(|error| {
                SendError::transient(format!("cannot set TCP_NODELAY: {error}"))
            })?;
            let transport: Box<dyn AsyncTokioStream> = match &self.security {
                Security::ImplicitTls {
                    connector,
                    server_name,
                } => Box::new(TlsSocket(
                    connector
                        .connect(server_name.clone(), stream)
                        .await
                        .map_err(|error| {
                            SendError::transient(format!(
                                "TLS with {}:{} failed: {error}",
                                self.host, self.port
                            ))
                        })?,
                )),
                Security::None | Security::StartTls(_) => Box::new(stream),
            };
            let mut session = AsyncSmtpConnection::connect_with_transport(transport, &hello)
                .await
                .map_err(smtp)?;
            if let Security::StartTls(parameters) = &self.security {
                session
                    .starttls(parameters.clone(), &hello)
                    .await
                    .map_err(smtp)?;
            }
            if let Some(credentials) = &self.credentials {
                session
                    .auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                    .await
                    .map_err(smtp)?;
            }
            Ok(SmtpConnection {
                session,
                last_used: Instant::now(),
            })
        };
        tokio::time::timeout(self.timeout, open)
            .await
            .unwrap_or_else(|_| Err(timed_out()))
    }
}

impl bb8::ManageConnection for SmtpServer {
    type Connection = SmtpConnection;
    type Error = SendError;

    async fn connect(&self) -> Result<SmtpConnection, Self::Error> {
        use std::sync::atomic::Ordering;
        self.connecting.opening.fetch_add(1, Ordering::SeqCst);
        let opened = self.open().await;
        self.connecting.opening.fetch_sub(1, Ordering::SeqCst);
        if let Err(error) = &opened {
            self.connecting.failures.send_replace(Some(error.clone()));
        }
        opened
    }

    async fn is_valid(&self, connection: &mut SmtpConnection) -> Result<(), Self::Error> {
        if connection.last_used.elapsed() < TRUSTED_IDLE {
            return Ok(());
        }
        let alive = tokio::time::timeout(self.timeout, connection.session.test_connected()).await;
        if alive == Ok(true) {
            connection.last_used = Instant::now();
            Ok(())
        } else {
            abort(&mut connection.session).await;
            Err(SendError::transient(
                "the SMTP server closed an idle connection".to_owned(),
            ))
        }
    }

    fn has_broken(&self, connection: &mut SmtpConnection) -> bool {
        connection.session.has_broken()
    }
}
