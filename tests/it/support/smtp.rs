//! A real SMTP server on 127.0.0.1 for integration tests.
//!
//! [`SmtpSink`] listens on a free loopback port and speaks enough of RFC 5321
//! (EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT) for lettre's SMTP client,
//! over plain TCP: no STARTTLS, no AUTH. Every accepted message is kept as a
//! [`ReceivedMail`] so a test can check what really went over the wire, and
//! [`parse`] turns the raw bytes into the headers and parts worth asserting.
//!
//! Faults can be injected to test retry logic: [`SmtpSink::fail_next_data`]
//! makes the next DATA transactions fail with a chosen reply code, and
//! [`SmtpSink::stop`] / [`SmtpSink::restart`] take the server down (refused
//! connections, pooled connections cut) and bring it back on the same port.

// Test support: not every test binary uses every helper.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};

/// Largest message accepted, advertised with the SIZE extension.
const MAX_MESSAGE_SIZE: usize = 10 * 1024 * 1024;
/// Longest command line accepted (RFC 5321 asks for at least 512).
const MAX_COMMAND_LINE: u64 = 4096;
/// Longest DATA line accepted; generous, as RFC 5322 allows 998 + CRLF.
const MAX_DATA_LINE: u64 = 64 * 1024;

/// One message accepted by the sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMail {
    /// The reverse path of `MAIL FROM:<...>`, without angle brackets.
    pub mail_from: String,
    /// The forward paths of every `RCPT TO:<...>`, without angle brackets.
    pub rcpt_to: Vec<String>,
    /// The message as sent between DATA and the final `.`, with dot
    /// stuffing removed (each line keeps its CRLF).
    pub data: Vec<u8>,
}

/// State shared by the sink handle and its connection tasks.
struct Shared {
    messages: Mutex<Vec<ReceivedMail>>,
    /// Reply codes for the next DATA transactions, oldest first.
    data_faults: Mutex<VecDeque<u16>>,
    /// Number of stored messages, so waiters wake up without polling.
    count: watch::Sender<usize>,
    /// Number of connections accepted since the sink started.
    connections: AtomicUsize,
}

impl Shared {
    fn store(&self, mail: ReceivedMail) -> usize {
        let mut messages = self.messages.lock().unwrap_or_else(PoisonError::into_inner);
        messages.push(mail);
        let count = messages.len();
        drop(messages);
        self.count.send_replace(count);
        count
    }

    fn next_data_fault(&self) -> Option<u16> {
        self.data_faults
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop_front()
    }
}

/// A running (or stopped) SMTP sink. Dropping it shuts the server down.
pub struct SmtpSink {
    /// The loopback port the sink listens on; it stays the same across
    /// [`SmtpSink::stop`] and [`SmtpSink::restart`].
    pub port: u16,
    shared: Arc<Shared>,
    server: Option<Server>,
}

/// The accept loop of a running sink and the way to stop it.
struct Server {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl SmtpSink {
    /// Starts a sink on `127.0.0.1` with a port chosen by the system.
    ///
    /// # Panics
    ///
    /// When no loopback port can be bound, since no test can go on then.
    pub async fn start() -> SmtpSink {
        let listener = match bind(0) {
            Ok(listener) => listener,
            Err(err) => panic!("SMTP sink cannot listen on 127.0.0.1: {err}"),
        };
        let port = match listener.local_addr() {
            Ok(address) => address.port(),
            Err(err) => panic!("SMTP sink has no local address: {err}"),
        };
        let (count, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            messages: Mutex::new(Vec::new()),
            data_faults: Mutex::new(VecDeque::new()),
            count,
            connections: AtomicUsize::new(0),
        });
        let server = Server::spawn(listener, Arc::clone(&shared));
        SmtpSink {
            port,
            shared,
            server: Some(server),
        }
    }

    /// The messages accepted so far, oldest first.
    pub fn messages(&self) -> Vec<ReceivedMail> {
        self.shared
            .messages
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Waits until at least `count` messages have been accepted, or until
    /// `timeout`, and returns the messages accepted by then (so a test
    /// asserting on the length sees what did arrive when it times out).
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> Vec<ReceivedMail> {
        let mut counter = self.shared.count.subscribe();
        // The sender lives in `self.shared`, so `wait_for` cannot fail with
        // a closed channel; the timeout result is irrelevant either way.
        let _ = tokio::time::timeout(timeout, counter.wait_for(|stored| *stored >= count)).await;
        self.messages()
    }

    /// Makes the next `times` DATA transactions answer `code` (e.g. 451 or
    /// 550) after the message has been received; those messages are not
    /// stored. Calls add up: `fail_next_data(451, 1)` then
    /// `fail_next_data(550, 1)` fails with 451 then 550.
    pub fn fail_next_data(&self, code: u16, times: usize) {
        self.shared
            .data_faults
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(std::iter::repeat_n(code, times));
    }

    /// Takes the server down: the port stops accepting connections and
    /// every open connection (including a client's pooled ones) is closed.
    /// Received messages are kept. Does nothing when already stopped.
    pub async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            // The accept loop may already be gone; then there is nothing to stop.
            let _ = server.stop.send(());
            let _ = server.task.await;
        }
    }

    /// Brings a stopped server back on the same port. Does nothing when the
    /// server is running.
    ///
    /// # Panics
    ///
    /// When the port cannot be bound again within a couple of seconds
    /// (another process took it).
    pub async fn restart(&mut self) {
        if self.server.is_some() {
            return;
        }
        let mut attempts = 0;
        let listener = loop {
            match bind(self.port) {
                Ok(listener) => break listener,
                // The old socket may take a moment to be released.
                Err(_) if attempts < 200 => {
                    attempts += 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err(err) => panic!("SMTP sink cannot listen on port {} again: {err}", self.port),
            }
        };
        self.server = Some(Server::spawn(listener, Arc::clone(&self.shared)));
    }

    /// How many connections the sink has accepted since it started, e.g. to
    /// check that a client reuses pooled connections.
    pub fn connection_count(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// `true` while the server accepts connections.
    pub fn is_running(&self) -> bool {
        self.server.is_some()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            // Aborting the accept loop drops its JoinSet, which aborts the
            // connection tasks too.
            server.task.abort();
        }
    }
}

impl Server {
    fn spawn(listener: TcpListener, shared: Arc<Shared>) -> Server {
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(accept_loop(listener, shared, stopped));
        Server { stop, task }
    }
}

/// Binds a loopback listener, allowing the address to be reused so that
/// a restart on the same port is not blocked by connections in TIME_WAIT.
fn bind(port: u16) -> std::io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(SocketAddr::from(([127, 0, 0, 1], port)))?;
    socket.listen(128)
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut stopped: oneshot::Receiver<()>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    shared.connections.fetch_add(1, Ordering::SeqCst);
                    connections.spawn(serve_connection(stream, Arc::clone(&shared)));
                }
                // Out of file descriptors or similar: let it pass and keep serving.
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            },
            // Reap finished connections so the set does not grow.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    // Refuse new connections first, then cut the open ones and wait until
    // they are really closed, so "stopped" means stopped when stop() returns.
    drop(listener);
    connections.shutdown().await;
}

/// One SMTP session. I/O errors end the session quietly: the client sees a
/// closed connection, which is what a test of a broken server wants anyway.
async fn serve_connection(stream: TcpStream, shared: Arc<Shared>) {
    // Replies are small and each one waits for the client: send them at once.
    let _ = stream.set_nodelay(true);
    let (reader, writer) = stream.into_split();
    let mut session = Session {
        reader: BufReader::new(reader),
        writer,
        shared,
        greeted: false,
        mail_from: None,
        rcpt_to: Vec::new(),
    };
    let _ = session.run().await;
}

struct Session {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    shared: Arc<Shared>,
    greeted: bool,
    mail_from: Option<String>,
    rcpt_to: Vec<String>,
}

impl Session {
    async fn run(&mut self) -> std::io::Result<()> {
        self.reply("220 127.0.0.1 Rappel test SMTP sink ready")
            .await?;
        let mut line = Vec::new();
        loop {
            if !self.read_line(&mut line, MAX_COMMAND_LINE).await? {
                return Ok(());
            }
            if !line.ends_with(b"\n") {
                self.reply("500 5.5.6 Command line too long").await?;
                return Ok(());
            }
            let command = String::from_utf8_lossy(&line);
            let command = command.trim_end_matches(['\r', '\n']);
            let (verb, argument) = match command.split_once(' ') {
                Some((verb, argument)) => (verb.to_ascii_uppercase(), argument.trim()),
                None => (command.to_ascii_uppercase(), ""),
            };
            match verb.as_str() {
                "EHLO" => {
                    self.greeted = true;
                    self.reset();
                    let reply = format!(
                        "250-127.0.0.1 greets {argument}\r\n250-SIZE {MAX_MESSAGE_SIZE}\r\n\
                         250-8BITMIME\r\n250 SMTPUTF8"
                    );
                    self.reply(&reply).await?;
                }
                "HELO" => {
                    self.greeted = true;
                    self.reset();
                    self.reply("250 127.0.0.1").await?;
                }
                "MAIL" => self.mail(argument).await?,
                "RCPT" => self.rcpt(argument).await?,
                "DATA" => {
                    if !self.data().await? {
                        return Ok(());
                    }
                }
                "RSET" => {
                    self.reset();
                    self.reply("250 2.0.0 OK").await?;
                }
                "NOOP" => self.reply("250 2.0.0 OK").await?,
                "QUIT" => {
                    self.reply("221 2.0.0 Bye").await?;
                    return Ok(());
                }
                "STARTTLS" | "AUTH" | "VRFY" | "EXPN" | "BDAT" => {
                    self.reply("502 5.5.1 Command not implemented").await?;
                }
                _ => self.reply("500 5.5.2 Command unrecognized").await?,
            }
        }
    }

    async fn mail(&mut self, argument: &str) -> std::io::Result<()> {
        if !self.greeted {
            return self.reply("503 5.5.1 Say EHLO first").await;
        }
        if self.mail_from.is_some() {
            return self.reply("503 5.5.1 Nested MAIL command").await;
        }
        match path_after(argument, "FROM:") {
            Some(path) => {
                self.mail_from = Some(path);
                self.rcpt_to.clear();
                self.reply("250 2.1.0 OK").await
            }
            None => self.reply("501 5.5.4 Syntax: MAIL FROM:<address>").await,
        }
    }

    async fn rcpt(&mut self, argument: &str) -> std::io::Result<()> {
        if self.mail_from.is_none() {
            return self.reply("503 5.5.1 Need MAIL before RCPT").await;
        }
        match path_after(argument, "TO:") {
            Some(path) if !path.is_empty() => {
                self.rcpt_to.push(path);
                self.reply("250 2.1.5 OK").await
            }
            _ => self.reply("501 5.5.4 Syntax: RCPT TO:<address>").await,
        }
    }

    /// Handles DATA; returns `false` when the client went away mid-message.
    async fn data(&mut self) -> std::io::Result<bool> {
        let Some(mail_from) = self.mail_from.clone() else {
            self.reply("503 5.5.1 Need MAIL before DATA").await?;
            return Ok(true);
        };
        if self.rcpt_to.is_empty() {
            self.reply("503 5.5.1 Need RCPT before DATA").await?;
            return Ok(true);
        }
        self.reply("354 End data with <CR><LF>.<CR><LF>").await?;

        let mut data = Vec::new();
        let mut too_big = false;
        let mut line = Vec::new();
        loop {
            if !self.read_line(&mut line, MAX_DATA_LINE).await? {
                return Ok(false);
            }
            if line == b".\r\n" || line == b".\n" {
                break;
            }
            // Dot stuffing (RFC 5321 4.5.2): a leading dot was doubled.
            let content = line.strip_prefix(b".").unwrap_or(&line);
            if data.len() + content.len() > MAX_MESSAGE_SIZE {
                // Keep reading to the end so the session stays in sync.
                too_big = true;
            } else {
                data.extend_from_slice(content);
            }
        }

        let rcpt_to = std::mem::take(&mut self.rcpt_to);
        self.mail_from = None;
        if too_big {
            return self.reply("552 5.3.4 Message too big").await.map(|()| true);
        }
        if let Some(code) = self.shared.next_data_fault() {
            let text = match code {
                400..=499 => "4.3.0 Injected temporary failure",
                _ => "5.7.1 Injected permanent failure",
            };
            self.reply(&format!("{code} {text}")).await?;
            return Ok(true);
        }
        let number = self.shared.store(ReceivedMail {
            mail_from,
            rcpt_to,
            data,
        });
        self.reply(&format!("250 2.0.0 OK queued as {number}"))
            .await?;
        Ok(true)
    }

    fn reset(&mut self) {
        self.mail_from = None;
        self.rcpt_to.clear();
    }

    /// Reads one line (with its line ending) into `line`, at most `max`
    /// bytes; returns `false` at end of stream.
    async fn read_line(&mut self, line: &mut Vec<u8>, max: u64) -> std::io::Result<bool> {
        line.clear();
        let read = (&mut self.reader).take(max).read_until(b'\n', line).await?;
        Ok(read > 0)
    }

    async fn reply(&mut self, reply: &str) -> std::io::Result<()> {
        // One write per reply: split writes plus Nagle and delayed ACKs
        // would cost tens of milliseconds per command.
        let mut bytes = Vec::with_capacity(reply.len() + 2);
        bytes.extend_from_slice(reply.as_bytes());
        bytes.extend_from_slice(b"\r\n");
        self.writer.write_all(&bytes).await?;
        self.writer.flush().await
    }
}

/// Extracts the path from `FROM:<path> PARAMS` / `TO:<path> PARAMS`
/// (keyword case-insensitive, optional space after the colon).
fn path_after(argument: &str, keyword: &str) -> Option<String> {
    let head = argument.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = argument.get(keyword.len()..)?.trim_start();
    let inner = rest.strip_prefix('<')?;
    let end = inner.find('>')?;
    Some(inner[..end].to_owned())
}

/// A mailbox from a parsed header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedAddress {
    /// The decoded display name, if any.
    pub name: Option<String>,
    /// The address.
    pub address: String,
}

/// The parts of a received message worth asserting on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedMail {
    /// Every top-level header in order: (name, raw value), the value
    /// trimmed but not decoded or unfolded.
    pub headers: Vec<(String, String)>,
    /// The decoded subject.
    pub subject: Option<String>,
    /// The first `From` mailbox.
    pub from: Option<ParsedAddress>,
    /// The first `Reply-To` mailbox.
    pub reply_to: Option<ParsedAddress>,
    /// The raw `Message-ID` value, angle brackets included.
    pub message_id: Option<String>,
    /// The raw `List-Unsubscribe` value, angle brackets included.
    pub list_unsubscribe: Option<String>,
    /// The first text/plain part, decoded.
    pub text_body: Option<String>,
    /// The first text/html part, decoded.
    pub html_body: Option<String>,
}

impl ParsedMail {
    /// The raw value of the first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(header, _)| header.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// How many headers are called `name` (case-insensitive).
    pub fn header_count(&self, name: &str) -> usize {
        self.headers
            .iter()
            .filter(|(header, _)| header.eq_ignore_ascii_case(name))
            .count()
    }
}

/// Parses a received message with mail-parser.
///
/// # Panics
///
/// When `data` is not a message at all, which fails the calling test with
/// the reason.
pub fn parse(data: &[u8]) -> ParsedMail {
    use mail_parser::{MessageParser, PartType};

    let Some(message) = MessageParser::default().parse(data) else {
        panic!(
            "received data is not an email message: {:?}",
            String::from_utf8_lossy(data)
        );
    };
    let address = |list: Option<&mail_parser::Address<'_>>| {
        let first = list?.first()?;
        Some(ParsedAddress {
            name: first.name().map(str::to_owned),
            address: first.address()?.to_owned(),
        })
    };
    let raw = |name: &str| {
        message
            .header_raw(name)
            .map(|value| value.trim().to_owned())
    };

    let mut text_body = None;
    let mut html_body = None;
    for part in &message.parts {
        match &part.body {
            PartType::Text(text) if text_body.is_none() => text_body = Some(text.to_string()),
            PartType::Html(html) if html_body.is_none() => html_body = Some(html.to_string()),
            _ => {}
        }
    }

    ParsedMail {
        headers: message
            .headers_raw()
            .map(|(name, value)| (name.to_owned(), value.trim().to_owned()))
            .collect(),
        subject: message.subject().map(str::to_owned),
        from: address(message.from()),
        reply_to: address(message.reply_to()),
        message_id: raw("Message-ID"),
        list_unsubscribe: raw("List-Unsubscribe"),
        text_body,
        html_body,
    }
}
