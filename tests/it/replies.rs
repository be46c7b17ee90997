//! Replies by email, with real parts: the request email leaves through the delivery worker to
//! an SMTP sink (its Reply-To carries the token), the client's reply comes back through
//! Rappel's SMTP listener over real TCP (with STARTTLS) or through a real Dovecot fetched over
//! IMAPS, and what it did is read back from the database, the outbox, the journal and the
//! firm's GraphQL view.

use std::time::Duration;

use async_graphql::{Request, Variables};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use rappel::config::Config;
use rappel::db::page::Keyset;
use rappel::delivery::{DeliveryWaker, Worker};
use rappel::domain::{DeliveryEvent, DeliveryStatus, RequestStatus};
use rappel::generation::GenerationSettings;
use rappel::graphql::{Caller, RappelSchema, SchemaData, build_schema, resolve_caller};
use rappel::inbound::Inbound;
use rappel::ops;
use rappel::ops::replies::{InboundSettings, Received, Source};
use rappel::storage::Storage;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};

use crate::backend_test;
use crate::support::app::PASSWORD;
use crate::support::fixture::FirmFixture;
use crate::support::imap::{Dovecot, certificates};
use crate::support::smtp::{SmtpSink, parse};
use crate::support::{Backend, TestDb};

const WAIT: Duration = Duration::from_secs(20);
const REPLY_LOCAL: &str = "reponses";
const REPLY_DOMAIN: &str = "reply.cabinet.example";
const AUTHSERV: &str = "mx.cabinet.example";

fn pdf(seed: u8, size: usize) -> Vec<u8> {
    let mut bytes = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
    bytes.extend((0..size).map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed)));
    bytes
}

fn sha256(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// One part of a hand-made email.
struct Part<'a> {
    name: &'a str,
    media_type: &'a str,
    bytes: Vec<u8>,
    /// Inline with this Content-ID (a signature's logo) instead of an attachment.
    content_id: Option<&'a str>,
}

/// A MIME email as a mail client writes it: headers, a UTF-8 text part, base64 parts.
fn email(headers: &[String], text: &str, parts: &[Part<'_>]) -> Vec<u8> {
    let boundary = "rappel-reply-boundary-42";
    let mut out = String::new();
    for header in headers {
        out.push_str(header);
        out.push_str("\r\n");
    }
    out.push_str("MIME-Version: 1.0\r\n");
    out.push_str(&format!(
        "Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n"
    ));
    out.push_str(&format!(
        "--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{}\r\n",
        text.replace('\n', "\r\n")
    ));
    for part in parts {
        let disposition = match part.content_id {
            Some(id) => format!("inline; filename=\"{}\"\r\nContent-ID: <{id}>", part.name),
            None => format!("attachment; filename=\"{}\"", part.name),
        };
        let encoded = base64::engine::general_purpose::STANDARD.encode(&part.bytes);
        let wrapped: Vec<&str> = encoded
            .as_bytes()
            .chunks(76)
            .map(|chunk| std::str::from_utf8(chunk).expect("base64 is ASCII"))
            .collect();
        out.push_str(&format!(
            "--{boundary}\r\nContent-Type: {}; name=\"{}\"\r\nContent-Disposition: {disposition}\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n",
            part.media_type,
            part.name,
            wrapped.join("\r\n")
        ));
    }
    out.push_str(&format!("--{boundary}--\r\n"));
    out.into_bytes()
}

fn headers(from: &str, to: &str, subject: &str, message_id: &str) -> Vec<String> {
    vec![
        format!("From: {from}"),
        format!("To: {to}"),
        format!("Subject: {subject}"),
        format!("Message-ID: <{message_id}>"),
        "Date: Mon, 4 Jan 2027 10:00:00 +0100".into(),
    ]
}

const QUOTED_REPLY: &str = "Voici les deux factures de janvier.\nBonne journée\n\n\
    Le lun. 4 janv. 2027 à 09:00, Cabinet inb <reponses@reply.cabinet.example> a écrit :\n\
    > Merci de déposer vos éléments du mois\n> Cordialement";

/// One test's world: a firm with a signed mission whose request emails went out (with reply
/// addresses) to an SMTP sink, the document store in a temporary folder, and the inbound side.
struct World {
    firm: FirmFixture,
    contact: rappel::db::clients::Contact,
    config: Config,
    worker: Worker,
    sink: SmtpSink,
    storage: Storage,
    inbound: Inbound,
    schema: RappelSchema,
    /// The request whose email was read, and its reply address.
    request_id: i64,
    reply_address: String,
    /// The request email's Message-ID (without brackets) and its delivery.
    request_message_id: String,
    _files: tempfile::TempDir,
}

/// A moment the worker may send client emails at (tomorrow, 11:00 in Paris).
fn sending_time() -> DateTime<Utc> {
    let tomorrow = Utc::now().date_naive() + chrono::Duration::days(1);
    tomorrow.and_hms_opt(10, 0, 0).expect("a time").and_utc()
}

impl World {
    async fn start(db: &TestDb) -> Self {
        let firm = FirmFixture::create(&db.pool, "inb").await;
        let service = firm.service("TVA", 10).await;
        let (client, contact) = firm.client_with_contact("Boulangerie").await;
        let mission = firm.monthly_mission(&client, &service).await;
        ops::missions::sign_mission(firm.env(), &firm.admin(), mission.id)
            .await
            .expect("signed");
        let sink = SmtpSink::start().await;
        let mut config = Config::default();
        config.smtp.transport = "smtp".into();
        config.smtp.host = "127.0.0.1".into();
        config.smtp.port = sink.port;
        config.smtp.from_address = "rappel@rappel.example".into();
        config.inbound.enabled = true;
        config.inbound.reply_to = format!("{REPLY_LOCAL}@{REPLY_DOMAIN}");
        config.inbound.authserv_id = AUTHSERV.into();
        let files = tempfile::tempdir().expect("temporary folder");
        config.storage.url = files.path().display().to_string();
        let storage = Storage::from_config(&config.storage).expect("store");
        let worker = Worker::from_config(db.pool.clone(), &config, DeliveryWaker::default())
            .expect("worker builds");
        worker.run_once(sending_time()).await.expect("worker runs");
        let mails = sink.wait_for(1, WAIT).await;
        let mail = parse(&mails[0].data);
        let reply_to = mail.header("Reply-To").expect("a Reply-To").to_string();
        let reply_address = reply_to
            .rsplit_once('<')
            .and_then(|(_, rest)| rest.strip_suffix('>'))
            .expect("an address in brackets")
            .to_string();
        assert!(
            reply_address.starts_with("reponses+")
                && reply_address.ends_with("@reply.cabinet.example"),
            "{reply_address}"
        );
        assert_eq!(mail.header("Auto-Submitted"), Some("auto-generated"));
        assert_eq!(
            mails[0].mail_from, reply_address,
            "bounces come back to the reply address"
        );
        let request_message_id = mail
            .header("Message-ID")
            .expect("a Message-ID")
            .trim_matches(['<', '>'])
            .to_string();
        let token = reply_address
            .trim_start_matches("reponses+")
            .split('@')
            .next()
            .expect("a token");
        let request_id = {
            let mut conn = db.pool.get().await.expect("conn");
            rappel::db::replies::find_token(&mut conn.as_db(), &rappel::auth::token_hash(token))
                .await
                .expect("read")
                .expect("the token is stored (hashed)")
                .request_id
        };
        let inbound = Inbound::new(
            db.pool.clone(),
            storage.clone(),
            GenerationSettings::default(),
            None,
            InboundSettings::from_config(&config.inbound).expect("inbound is on"),
        );
        let schema = build_schema(
            Some(SchemaData {
                pool: db.pool.clone(),
                events: rappel::events::EventBus::new(),
                auth: config.auth.clone(),
                generation: GenerationSettings::default(),
            }),
            &config.graphql,
        );
        Self {
            firm,
            contact,
            config,
            worker,
            sink,
            storage,
            inbound,
            schema,
            request_id,
            reply_address,
            request_message_id,
            _files: files,
        }
    }

    async fn request(&self) -> rappel::db::work::InformationRequest {
        let mut conn = self.firm.pool.get().await.expect("conn");
        rappel::db::work::find_request(&mut conn.as_db(), self.firm.firm.id, self.request_id)
            .await
            .expect("request")
    }

    async fn answers(&self) -> Vec<rappel::db::work::RequestAnswer> {
        let mut conn = self.firm.pool.get().await.expect("conn");
        rappel::db::work::list_answers(&mut conn.as_db(), self.firm.firm.id, self.request_id)
            .await
            .expect("answers")
    }

    async fn files(&self) -> Vec<rappel::db::files::AnswerFile> {
        let mut conn = self.firm.pool.get().await.expect("conn");
        rappel::db::files::page(
            &mut conn.as_db(),
            self.firm.firm.id,
            rappel::db::files::FileFilter {
                request_id: Some(self.request_id),
                client_id: None,
            },
            &Keyset::first(100),
        )
        .await
        .expect("files")
    }

    /// How many objects the document store holds (files of answers, held messages).
    fn stored_objects(&self) -> usize {
        fn count(folder: &std::path::Path) -> usize {
            std::fs::read_dir(folder)
                .map(|entries| {
                    entries
                        .flatten()
                        .map(|entry| match entry.file_type() {
                            Ok(kind) if kind.is_dir() => count(&entry.path()),
                            Ok(kind) if kind.is_file() => 1,
                            _ => 0,
                        })
                        .sum()
                })
                .unwrap_or(0)
        }
        count(self._files.path())
    }

    async fn stored_sha256(&self, key: &str) -> String {
        let mut stream = self.storage.read(key).await.expect("stored bytes");
        let mut hasher = Sha256::new();
        while let Some(chunk) = futures_util::StreamExt::next(&mut stream).await {
            hasher.update(chunk.expect("chunk"));
        }
        format!("{:x}", hasher.finalize())
    }

    async fn deliveries(&self) -> Vec<rappel::db::outbox::Delivery> {
        let mut conn = self.firm.pool.get().await.expect("conn");
        rappel::db::outbox::list_deliveries(
            &mut conn.as_db(),
            self.firm.firm.id,
            None,
            None,
            &Keyset::first(10_000),
        )
        .await
        .expect("deliveries")
    }

    async fn journal_kinds(&self) -> Vec<String> {
        let mut conn = self.firm.pool.get().await.expect("conn");
        rappel::db::journal::list(
            &mut conn.as_db(),
            self.firm.firm.id,
            &rappel::db::journal::JournalFilter::default(),
            &Keyset::first(10_000),
        )
        .await
        .expect("journal")
        .into_iter()
        .map(|entry| entry.kind)
        .collect()
    }

    fn contact_email(&self) -> String {
        self.contact.email.clone()
    }

    /// The reply a client writes: new text above the quote, two PDFs and a signature logo.
    fn reply_with_two_pdfs(&self, message_id: &str) -> (Vec<u8>, Vec<Vec<u8>>) {
        let pdfs = vec![pdf(1, 200_000), pdf(2, 3_000)];
        let mut headers = headers(
            &format!("Contact <{}>", self.contact_email()),
            &self.reply_address,
            "Re: Merci de déposer vos éléments",
            message_id,
        );
        headers.push(format!("In-Reply-To: <{}>", self.request_message_id));
        headers.push(format!(
            "Authentication-Results: {AUTHSERV}; dkim=pass header.d=client.example.fr; spf=pass; dmarc=pass"
        ));
        let bytes = email(
            &headers,
            QUOTED_REPLY,
            &[
                Part {
                    name: "facture-1.pdf",
                    media_type: "application/pdf",
                    bytes: pdfs[0].clone(),
                    content_id: None,
                },
                Part {
                    name: "facture-2.pdf",
                    media_type: "application/pdf",
                    bytes: pdfs[1].clone(),
                    content_id: None,
                },
                Part {
                    name: "logo.png",
                    media_type: "image/png",
                    bytes: b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x10".to_vec(),
                    content_id: Some("logo@client"),
                },
            ],
        );
        (bytes, pdfs)
    }

    async fn staff(&self) -> Caller {
        let response = self
            .exec(
                &Caller::Anonymous,
                "mutation($input: LoginInput!) { login(input: $input) { token } }",
                json!({ "input": { "email": self.firm.admin_email, "password": PASSWORD } }),
            )
            .await;
        let token = response["data"]["login"]["token"].as_str().expect("token");
        resolve_caller(&self.firm.pool, Some(token))
            .await
            .expect("resolves")
    }

    async fn exec(&self, caller: &Caller, query: &str, variables: Value) -> Value {
        let request = Request::new(query)
            .variables(Variables::from_json(variables))
            .data(caller.clone())
            .data(self.storage.clone());
        serde_json::to_value(self.schema.execute(request).await).expect("serializes")
    }

    /// Checks the answer of the two-PDF reply: the request ANSWERED by the contact with the
    /// cut text and both files, byte for byte; the confirmation, the firm's notice and the
    /// journal entry.
    async fn assert_answered_with_two_pdfs(&self, pdfs: &[Vec<u8>]) {
        assert_eq!(self.request().await.status, RequestStatus::Answered);
        let answers = self.answers().await;
        assert_eq!(answers.len(), 1, "one answer");
        assert_eq!(
            answers[0].message.as_deref(),
            Some("Voici les deux factures de janvier.\nBonne journée"),
            "the quoted part is cut"
        );
        assert_eq!(answers[0].contact_id, Some(self.contact.id));
        let files = self.files().await;
        assert_eq!(
            files.len(),
            2,
            "two PDFs, the signature logo left out: {files:?}"
        );
        let mut expected: Vec<String> = pdfs.iter().map(|bytes| sha256(bytes)).collect();
        let mut recorded: Vec<String> = files.iter().map(|file| file.sha256.clone()).collect();
        expected.sort();
        recorded.sort();
        assert_eq!(recorded, expected);
        for file in &files {
            assert_eq!(file.media_type, "application/pdf");
            assert_eq!(self.stored_sha256(&file.storage_key).await, file.sha256);
        }
        let deliveries = self.deliveries().await;
        let confirmations: Vec<_> = deliveries
            .iter()
            .filter(|d| d.event == DeliveryEvent::RequestAnswered && d.contact_id.is_some())
            .collect();
        assert_eq!(confirmations.len(), 1, "one confirmation");
        assert_eq!(confirmations[0].target, self.contact_email());
        assert!(
            deliveries
                .iter()
                .any(|d| d.event == DeliveryEvent::RequestAnswered
                    && d.contact_id.is_none()
                    && d.target == self.firm.admin_email),
            "the firm is told as for a portal answer"
        );
        assert!(
            self.journal_kinds()
                .await
                .contains(&"reply.received".to_string())
        );
    }

    /// Sends the outbox (the confirmation) and returns the confirmation as the client gets it.
    async fn confirmation(&self) -> crate::support::smtp::ParsedMail {
        let before = self.sink.messages().len();
        self.worker
            .run_once(sending_time())
            .await
            .expect("worker runs");
        let mails = self.sink.wait_for(before + 1, WAIT).await;
        mails
            .iter()
            .map(|mail| parse(&mail.data))
            .find(|mail| {
                mail.subject
                    .as_deref()
                    .is_some_and(|subject| subject.contains("Nous avons bien reçu"))
            })
            .expect("the confirmation was sent")
    }
}

/// Sends `data` to `address` over SMTP with STARTTLS, as a mail server would (lettre).
async fn send_with_starttls(port: u16, ca: &[u8], from: &str, to: &str, data: &[u8]) {
    use lettre::AsyncTransport as _;
    use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
    let tls = TlsParameters::builder("localhost".into())
        .add_root_certificate(Certificate::from_pem(ca).expect("CA"))
        .build_rustls()
        .expect("TLS parameters");
    let transport =
        lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::builder_dangerous("127.0.0.1")
            .port(port)
            .tls(Tls::Required(tls))
            .build();
    let envelope = lettre::address::Envelope::new(
        Some(from.parse().expect("from")),
        vec![to.parse().expect("to")],
    )
    .expect("envelope");
    transport
        .send_raw(&envelope, data)
        .await
        .expect("the listener takes the message");
}

/// A raw SMTP conversation on loopback: send a line, read the whole reply.
struct RawSmtp {
    reader: BufReader<tokio::net::TcpStream>,
}

impl RawSmtp {
    async fn connect(port: u16) -> Self {
        let (session, greeting) = Self::open(port, [127, 0, 0, 1]).await;
        assert!(greeting.starts_with("220"), "{greeting}");
        session
    }

    /// Connects from the loopback address `from` and returns the server's first reply.
    async fn open(port: u16, from: [u8; 4]) -> (Self, String) {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind((std::net::Ipv4Addr::from(from), 0).into())
            .expect("binds a loopback address");
        let stream = socket
            .connect(([127, 0, 0, 1], port).into())
            .await
            .expect("connects");
        let mut session = Self {
            reader: BufReader::new(stream),
        };
        let first = session.read_reply().await;
        (session, first)
    }

    /// Connects once the server has a place again (closed connections free theirs as the
    /// server notices their end).
    async fn connect_when_free(port: u16) -> Self {
        let mut waited = Duration::ZERO;
        loop {
            let (session, greeting) = Self::open(port, [127, 0, 0, 1]).await;
            if greeting.starts_with("220") {
                return session;
            }
            assert!(waited < WAIT, "a place again: {greeting}");
            tokio::time::sleep(Duration::from_millis(100)).await;
            waited += Duration::from_millis(100);
        }
    }

    /// Whether the server closed the connection (the next read finds its end), within `WAIT`.
    async fn closed_by_server(&mut self) -> bool {
        let mut rest = String::new();
        matches!(
            tokio::time::timeout(WAIT, self.reader.read_line(&mut rest)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }

    async fn read_reply(&mut self) -> String {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            tokio::time::timeout(WAIT, self.reader.read_line(&mut line))
                .await
                .expect("a reply in time")
                .expect("reply");
            all.push_str(&line);
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                return all;
            }
        }
    }

    async fn command(&mut self, line: &str) -> String {
        self.reader
            .get_mut()
            .write_all(format!("{line}\r\n").as_bytes())
            .await
            .expect("sent");
        self.read_reply().await
    }
}

backend_test! {
    async fn a_reply_by_smtp_with_two_pdfs_answers_its_request_once_and_is_confirmed(db: TestDb) {
        let world = World::start(&db).await;
        let folder = tempfile::tempdir().expect("folder");
        let certs = certificates(folder.path());
        let tls = rappel::inbound::smtp::tls_acceptor(
            &certs.cert.display().to_string(),
            &certs.key.display().to_string(),
        )
        .expect("certificate");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("port");
        let port = listener.local_addr().expect("address").port();
        let server = tokio::spawn(rappel::inbound::smtp::serve(
            listener,
            world.inbound.clone(),
            Some(tls),
            rappel::inbound::smtp::Limits::default(),
        ));
        let ca = std::fs::read(&certs.ca).expect("CA");

        let (reply, pdfs) = world.reply_with_two_pdfs("reply-1@client.example.fr");
        send_with_starttls(port, &ca, &world.contact_email(), &world.reply_address, &reply).await;
        world.assert_answered_with_two_pdfs(&pdfs).await;

        // The same email delivered again (a retry of the sending server) answers once.
        send_with_starttls(port, &ca, &world.contact_email(), &world.reply_address, &reply).await;
        assert_eq!(world.answers().await.len(), 1);
        assert_eq!(world.files().await.len(), 2);

        let confirmation = world.confirmation().await;
        let subject = confirmation.subject.as_deref().expect("subject");
        assert!(
            subject.starts_with("Nous avons bien reçu vos 2 documents pour la demande de "),
            "{subject}"
        );
        assert_eq!(confirmation.header("Auto-Submitted"), Some("auto-replied"));
        assert_eq!(
            confirmation.header("In-Reply-To"),
            Some("<reply-1@client.example.fr>")
        );

        // Reminders stop: the request is answered, so a reminder pass far ahead sends none.
        let later = Utc::now() + chrono::Duration::days(400);
        rappel::delivery::reminders::run_pass(
            &world.firm.pool,
            &rappel::delivery::reminders::ReminderSettings::from_config(&world.config),
            later,
            None,
        )
        .await
        .expect("reminder pass");
        assert!(
            !world.deliveries().await.iter().any(|d| d.event == DeliveryEvent::RequestReminder
                && d.request_id == Some(world.request_id)),
            "no reminder for an answered request"
        );
        server.abort();
    }
}

backend_test! {
    async fn smtp_refuses_forged_tokens_at_rcpt_and_a_40_mb_message_and_archiving_revokes_the_address(db: TestDb) {
        let world = World::start(&db).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("port");
        let port = listener.local_addr().expect("address").port();
        let server = tokio::spawn(rappel::inbound::smtp::serve(
            listener,
            world.inbound.clone(),
            None,
            rappel::inbound::smtp::Limits::default(),
        ));

        let mut smtp = RawSmtp::connect(port).await;
        let ehlo = smtp.command("EHLO client.example.fr").await;
        assert!(ehlo.contains(&format!("SIZE {}", 30 * 1024 * 1024)), "{ehlo}");
        assert!(!ehlo.contains("STARTTLS"), "no certificate, no STARTTLS: {ehlo}");
        assert!(smtp.command("MAIL FROM:<x@client.example.fr>").await.starts_with("250"));
        let forged = format!("RCPT TO:<{REPLY_LOCAL}+{}@{REPLY_DOMAIN}>", "0".repeat(32));
        assert!(smtp.command(&forged).await.starts_with("550"), "a forged token is refused");
        assert!(smtp.command("RCPT TO:<someone@elsewhere.example>").await.starts_with("550"));
        let forged_data = smtp.command("DATA").await;
        assert!(forged_data.starts_with("503"), "no recipient, no DATA: {forged_data}");
        assert!(smtp.command("RSET").await.starts_with("250"));

        // A message declaring 40 MB is refused at MAIL.
        let declared = smtp
            .command(&format!("MAIL FROM:<x@client.example.fr> SIZE={}", 40 * 1024 * 1024))
            .await;
        assert!(declared.starts_with("552"), "{declared}");

        // One not declaring it is read to its end, dropped, and refused.
        assert!(smtp.command("MAIL FROM:<x@client.example.fr>").await.starts_with("250"));
        assert!(smtp
            .command(&format!("RCPT TO:<{}>", world.reply_address))
            .await
            .starts_with("250"));
        assert!(smtp.command("DATA").await.starts_with("354"));
        let (big, _) = world.reply_with_two_pdfs("big@client.example.fr");
        let header_end = big.windows(4).position(|w| w == b"\r\n\r\n").expect("headers");
        let stream = smtp.reader.get_mut();
        stream.write_all(&big[..header_end + 4]).await.expect("headers sent");
        let line = [b'A'; 998];
        let mut sent = 0usize;
        while sent < 40 * 1024 * 1024 {
            stream.write_all(&line).await.expect("sent");
            stream.write_all(b"\r\n").await.expect("sent");
            sent += 1000;
        }
        stream.write_all(b".\r\n").await.expect("end sent");
        let refused = smtp.read_reply().await;
        assert!(refused.starts_with("552"), "{refused}");
        assert_eq!(world.answers().await.len(), 0, "nothing answered");
        assert_eq!(world.request().await.status, RequestStatus::Open);
        assert!(smtp.command("QUIT").await.starts_with("221"));

        // Archiving the contact revokes its reply addresses: refused at RCPT from then on.
        assert!(ops::replies::recipient_is_known(world.inbound.env(), world.inbound.settings(), &world.reply_address)
            .await
            .expect("checked"));
        ops::clients::archive_contact(world.firm.env(), &world.firm.admin(), world.contact.id)
            .await
            .expect("archived");
        let mut smtp = RawSmtp::connect(port).await;
        smtp.command("HELO client.example.fr").await;
        smtp.command("MAIL FROM:<x@client.example.fr>").await;
        let revoked = smtp.command(&format!("RCPT TO:<{}>", world.reply_address)).await;
        assert!(revoked.starts_with("550"), "{revoked}");
        server.abort();
    }
}

backend_test! {
    async fn imap_replies_answer_and_out_of_office_bounces_strangers_and_dmarc_failures_do_not(db: TestDb) {
        let world = World::start(&db).await;
        let dovecot = Dovecot::start();
        let imap = dovecot.settings();
        let (reply, pdfs) = world.reply_with_two_pdfs("reply-imap@client.example.fr");
        let contact = format!("Contact <{}>", world.contact_email());
        let mut out_of_office = headers(&contact, &world.reply_address, "Réponse automatique : absent", "ooo@client.example.fr");
        out_of_office.push("Auto-Submitted: auto-replied".into());
        let out_of_office = email(&out_of_office, "Je suis absent jusqu'au 15.", &[]);
        let ooo_subject_only = email(
            &headers(&contact, &world.reply_address, "Out of Office: back Monday", "ooo2@client.example.fr"),
            "Away.",
            &[],
        );
        let bounce = world.bounce();
        let stranger = email(
            &headers("Inconnu <inconnu@ailleurs.example>", &world.reply_address, "Re: vos éléments", "stranger@ailleurs.example"),
            "Voici mes papiers",
            &[Part { name: "papiers.pdf", media_type: "application/pdf", bytes: pdf(9, 1000), content_id: None }],
        );
        let mut dmarc_failed = headers(&contact, &world.reply_address, "Re: vos éléments", "spoofed@client.example.fr");
        dmarc_failed.push(format!("Authentication-Results: {AUTHSERV}; spf=fail; dkim=none; dmarc=fail (p=reject)"));
        let dmarc_failed = email(&dmarc_failed, "Rien à signaler", &[]);
        let mut forged_token = headers(&contact, &format!("{REPLY_LOCAL}+{}@{REPLY_DOMAIN}", "ab".repeat(16)), "Re:", "forged@client.example.fr");
        forged_token.push("X-Test: forged".into());
        let forged_token = email(&forged_token, "hello", &[]);

        dovecot
            .append("INBOX", &[
                reply.clone(),
                out_of_office,
                ooo_subject_only,
                bounce,
                stranger,
                dmarc_failed,
                forged_token,
            ])
            .await;
        // 40 MB: its RFC822.SIZE is read, never its bytes.
        let mut huge = headers(&contact, &world.reply_address, "Re: gros fichier", "huge@client.example.fr")
            .join("\r\n")
            .into_bytes();
        huge.extend_from_slice(b"\r\n\r\n");
        huge.resize(40 * 1024 * 1024, b'A');
        dovecot.append("INBOX", &[huge]).await;

        let report = rappel::inbound::imap::fetch_once(&world.inbound, &imap)
            .await
            .expect("a pass");
        assert_eq!(report.too_large, 1, "{report:?}");
        assert_eq!(report.failed, 0, "{report:?}");
        let outcomes = &report.received;
        assert_eq!(outcomes.len(), 7, "{outcomes:?}");
        assert_eq!(outcomes[0], Received::Answered { request_id: world.request_id, files: 2 });
        assert_eq!(outcomes[1], Received::AutoReply);
        assert_eq!(outcomes[2], Received::AutoReply);
        assert!(matches!(outcomes[3], Received::Bounce { delivery_id: Some(_) }), "{outcomes:?}");
        assert!(matches!(&outcomes[4], Received::Held { reason, .. } if reason.contains("not a contact")), "{outcomes:?}");
        assert!(matches!(&outcomes[5], Received::Held { reason, .. } if reason.contains("DMARC")), "{outcomes:?}");
        assert_eq!(outcomes[6], Received::UnknownRecipient, "a forged token answers nothing");
        world.assert_answered_with_two_pdfs(&pdfs).await;
        assert_eq!(dovecot.count("INBOX").await, 0, "every message was moved away");
        assert_eq!(dovecot.count("Rappel-processed").await, 8);

        // The bounce marked the request email's delivery FAILED with the reason.
        let Received::Bounce { delivery_id: Some(bounced) } = outcomes[3] else { unreachable!() };
        let delivery = world
            .deliveries()
            .await
            .into_iter()
            .find(|d| d.id == bounced)
            .expect("the bounced delivery");
        assert_eq!(delivery.status, DeliveryStatus::Failed);
        assert!(
            delivery.last_error.as_deref().is_some_and(|error| error.contains("5.1.1")),
            "{:?}",
            delivery.last_error
        );
        assert!(world.journal_kinds().await.contains(&"delivery.bounced".to_string()));

        // A re-fetch after a crash (the message put back): answered once.
        dovecot.append("INBOX", &[reply]).await;
        let again = rappel::inbound::imap::fetch_once(&world.inbound, &imap).await.expect("a pass");
        assert_eq!(again.received, vec![Received::Duplicate]);
        assert_eq!(world.answers().await.len(), 1);

        // The firm sees the held replies and decides.
        let staff = world.staff().await;
        let held = world
            .exec(&staff, "{ firm { heldReplies(first: 10) { totalCount nodes { id sender reason status authentication } } } }", json!({}))
            .await;
        let nodes = held["data"]["firm"]["heldReplies"]["nodes"].as_array().expect("nodes").clone();
        assert_eq!(held["data"]["firm"]["heldReplies"]["totalCount"], 2, "{held}");
        assert_eq!(nodes[0]["sender"], "inconnu@ailleurs.example");
        assert_eq!(nodes[1]["authentication"], "dmarc=fail spf=fail dkim=none");
        let rejected = world
            .exec(&staff, "mutation($id: ID!) { rejectHeldReply(id: $id) { status } }", json!({ "id": nodes[1]["id"] }))
            .await;
        assert_eq!(rejected["data"]["rejectHeldReply"]["status"], "REJECTED", "{rejected}");
        let accepted = world
            .exec(&staff, "mutation($id: ID!) { acceptHeldReply(id: $id) { status } }", json!({ "id": nodes[0]["id"] }))
            .await;
        assert_eq!(accepted["data"]["acceptHeldReply"]["status"], "ACCEPTED", "{accepted}");
        assert_eq!(world.answers().await.len(), 2, "the accepted reply is an answer");
        assert_eq!(world.files().await.len(), 3);
        let twice = world
            .exec(&staff, "mutation($id: ID!) { acceptHeldReply(id: $id) { status } }", json!({ "id": nodes[0]["id"] }))
            .await;
        assert_eq!(twice["errors"][0]["extensions"]["code"], "CONFLICT", "{twice}");
        let unknown = world
            .exec(&staff, "mutation { rejectHeldReply(id: \"SGVsZFJlcGx5Ojk5OTk5OQ\") { status } }", json!({}))
            .await;
        assert_eq!(unknown["errors"][0]["extensions"]["code"], "NOT_FOUND", "{unknown}");
        let left = world
            .exec(&staff, "{ firm { heldReplies { totalCount } } }", json!({}))
            .await;
        assert_eq!(left["data"]["firm"]["heldReplies"]["totalCount"], 0);
    }
}

backend_test! {
    async fn the_receiving_operation_ignores_untrusted_authentication_results_and_empty_replies(db: TestDb) {
        let world = World::start(&db).await;
        let contact = format!("Contact <{}>", world.contact_email());
        let env = world.inbound.env();
        let settings = world.inbound.settings();
        // DMARC "pass" written by another server counts for nothing, and "fail" neither.
        let mut untrusted = headers(&contact, &world.reply_address, "Re:", "untrusted@client.example.fr");
        untrusted.push("Authentication-Results: evil.example; dmarc=fail".into());
        let received = ops::replies::receive(env, settings, &email(&untrusted, "Tout est là.\n\n> quoted", &[]), &[], Source::Imap)
            .await
            .expect("received");
        assert_eq!(received, Received::Answered { request_id: world.request_id, files: 0 });
        assert_eq!(world.answers().await[0].message.as_deref(), Some("Tout est là."));
        // A reply with nothing above the quote and no file is not an answer.
        let empty = email(
            &headers(&contact, &world.reply_address, "Re:", "empty@client.example.fr"),
            "\n> only the quote",
            &[],
        );
        let received = ops::replies::receive(env, settings, &empty, &[], Source::Smtp).await.expect("received");
        assert!(matches!(received, Received::Refused { .. }), "{received:?}");
        assert_eq!(world.answers().await.len(), 1);
        // A reply to an unknown address of the right domain is unknown; envelope recipients
        // take precedence over headers.
        let received = ops::replies::receive(env, settings, &empty, &["nobody@reply.cabinet.example".into()], Source::Smtp)
            .await
            .expect("received");
        assert_eq!(received, Received::UnknownRecipient);
    }
}

/// The request a sent email is about, read from its reply address's token.
async fn request_of_mail(db: &TestDb, mail: &crate::support::smtp::ParsedMail) -> i64 {
    let reply_to = mail.header("Reply-To").expect("a Reply-To");
    let token = reply_to
        .split("reponses+")
        .nth(1)
        .and_then(|rest| rest.split('@').next())
        .expect("a token");
    let mut conn = db.pool.get().await.expect("conn");
    rappel::db::replies::find_token(&mut conn.as_db(), &rappel::auth::token_hash(token))
        .await
        .expect("read")
        .expect("a live token")
        .request_id
}

backend_test! {
    async fn reminders_thread_under_the_request_email_and_the_imap_loop_wakes_on_new_mail(db: TestDb) {
        let world = World::start(&db).await;
        let first_mails: Vec<_> = world.sink.messages().iter().map(|mail| parse(&mail.data)).collect();
        let later = sending_time() + chrono::Duration::days(400);
        rappel::delivery::reminders::run_pass(
            &world.firm.pool,
            &rappel::delivery::reminders::ReminderSettings::from_config(&world.config),
            later,
            None,
        )
        .await
        .expect("reminder pass");
        world.worker.run_once(later).await.expect("worker runs");
        let all = world.sink.wait_for(first_mails.len() + 1, WAIT).await;
        let reminder = parse(&all[first_mails.len()].data);
        assert!(reminder.header("In-Reply-To").is_some(), "a reminder answers the request email");
        let request = request_of_mail(&db, &reminder).await;
        let mut root = None;
        for mail in &first_mails {
            if request_of_mail(&db, mail).await == request {
                root = mail.header("Message-ID").map(str::to_string);
            }
        }
        let root = root.expect("the request email");
        assert_eq!(reminder.header("In-Reply-To"), Some(root.as_str()));
        assert_eq!(reminder.header("References"), Some(root.as_str()));
        assert_eq!(reminder.header("Auto-Submitted"), Some("auto-generated"));

        // The fetch loop: after its first pass it waits with IDLE (poll_seconds is far longer
        // than the wait below), and a new message wakes it.
        let dovecot = Dovecot::start();
        let mut imap = dovecot.settings();
        imap.poll_seconds = 600;
        let fetcher = tokio::spawn(rappel::inbound::imap::run(world.inbound.clone(), imap));
        // The loop's sign-in creates the processed folder; then it is idle.
        let mut waited = Duration::ZERO;
        while dovecot.count_if_exists("Rappel-processed").await.is_none() {
            assert!(waited < WAIT, "the fetcher signs in");
            tokio::time::sleep(Duration::from_millis(100)).await;
            waited += Duration::from_millis(100);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (reply, _) = world.reply_with_two_pdfs("idle@client.example.fr");
        dovecot.append("INBOX", &[reply]).await;
        let mut waited = Duration::ZERO;
        while world.answers().await.is_empty() {
            assert!(waited < WAIT, "the idle fetcher took the new message");
            tokio::time::sleep(Duration::from_millis(100)).await;
            waited += Duration::from_millis(100);
        }
        fetcher.abort();
        assert_eq!(world.request().await.status, RequestStatus::Answered);
    }
}

backend_test! {
    async fn a_message_claimed_by_a_process_that_died_is_handled_on_its_next_delivery(db: TestDb) {
        use rappel::db::replies::{NewInboundMessage, claim_message};
        let world = World::start(&db).await;
        let contact = format!("Contact <{}>", world.contact_email());
        let env = world.inbound.env();
        let settings = world.inbound.settings();
        // What a process leaves when it dies between claiming a message and settling it.
        let claim = |message_id: &'static str, minutes_ago: i64| {
            let key = format!("{}:mid:{message_id}", world.firm.firm.id);
            let (pool, firm_id) = (world.firm.pool.clone(), world.firm.firm.id);
            let (request_id, contact_id) = (world.request_id, world.contact.id);
            async move {
                let mut conn = pool.get().await.expect("conn");
                let now = chrono::Utc::now().naive_utc();
                claim_message(
                    &mut conn.as_db(),
                    &NewInboundMessage {
                        firm_id,
                        message_key: &key,
                        source: "IMAP",
                        request_id,
                        contact_id,
                        sender: "contact@client.example.fr",
                        subject: "Re:",
                        outcome: "RECEIVING",
                        authentication: "none",
                        received_at: now - chrono::Duration::minutes(minutes_ago),
                    },
                    now - chrono::Duration::minutes(ops::replies::STALE_CLAIM_MINUTES),
                )
                .await
                .expect("claimed")
                .expect("a new claim")
            }
        };
        // A claim still being worked on (a minute old) makes the same message a duplicate.
        claim("busy@client.example.fr", 1).await;
        let busy = email(&headers(&contact, &world.reply_address, "Re:", "busy@client.example.fr"), "Voici.", &[]);
        let received = ops::replies::receive(env, settings, &busy, &[], Source::Imap).await.expect("received");
        assert_eq!(received, Received::Duplicate);
        assert!(world.answers().await.is_empty());
        // A claim older than any handling takes was left by a crash: the next delivery
        // answers, and only once.
        claim("crash@client.example.fr", ops::replies::STALE_CLAIM_MINUTES + 5).await;
        let crashed = email(&headers(&contact, &world.reply_address, "Re:", "crash@client.example.fr"), "Voici.", &[]);
        let received = ops::replies::receive(env, settings, &crashed, &[], Source::Imap).await.expect("received");
        assert_eq!(received, Received::Answered { request_id: world.request_id, files: 0 });
        let received = ops::replies::receive(env, settings, &crashed, &[], Source::Imap).await.expect("received");
        assert_eq!(received, Received::Duplicate);
        assert_eq!(world.answers().await.len(), 1);
    }
}

/// Makes the statement that links an inbound message to its answer (`answer_id` set) fail:
/// the last write of the answer's transaction, and where a crash would fall if the answer and
/// the message's mark were two transactions.
async fn fail_linking_answers(db: &TestDb, fail: bool) {
    use diesel_async::SimpleAsyncConnection as _;
    let sql = match (db.backend, fail) {
        (Backend::Sqlite, true) => {
            "CREATE TRIGGER fail_linking BEFORE UPDATE OF answer_id ON inbound_messages \
             WHEN NEW.answer_id IS NOT NULL BEGIN SELECT RAISE(ABORT, 'injected failure'); END;"
        }
        (Backend::Sqlite, false) => "DROP TRIGGER fail_linking;",
        (Backend::Postgres, true) => {
            "CREATE FUNCTION fail_linking() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$; \
             CREATE TRIGGER fail_linking BEFORE UPDATE OF answer_id ON inbound_messages \
             FOR EACH ROW WHEN (NEW.answer_id IS NOT NULL) EXECUTE FUNCTION fail_linking();"
        }
        (Backend::Postgres, false) => {
            "DROP TRIGGER fail_linking ON inbound_messages; DROP FUNCTION fail_linking();"
        }
    };
    let mut conn = db.pool.get().await.expect("conn");
    rappel::with_conn!(&mut conn, |c| c.batch_execute(sql).await).expect("trigger");
}

backend_test! {
    async fn an_answer_and_its_answered_mark_commit_together_so_no_redelivery_answers_twice(db: TestDb) {
        let world = World::start(&db).await;
        let env = world.inbound.env();
        let settings = world.inbound.settings();
        let objects_before = world.stored_objects();
        let (reply, pdfs) = world.reply_with_two_pdfs("atomic@client.example.fr");

        // The transaction fails at its last write: nothing of the answer stays, not even the
        // staged files, and the claim is given back.
        fail_linking_answers(&db, true).await;
        let failed = ops::replies::receive(env, settings, &reply, &[], Source::Imap).await;
        assert!(failed.is_err(), "{failed:?}");
        assert!(world.answers().await.is_empty(), "the answer went with its mark");
        assert!(world.files().await.is_empty());
        assert_eq!(world.request().await.status, RequestStatus::Open);
        assert_eq!(world.stored_objects(), objects_before, "the staged files were deleted");
        assert!(!world.journal_kinds().await.contains(&"request.answered".to_string()));

        // The message's next delivery is handled, and answers once.
        fail_linking_answers(&db, false).await;
        let received = ops::replies::receive(env, settings, &reply, &[], Source::Imap)
            .await
            .expect("received");
        assert_eq!(received, Received::Answered { request_id: world.request_id, files: 2 });
        world.assert_answered_with_two_pdfs(&pdfs).await;

        // A delivery long after the stale window finds the claim ANSWERED: a duplicate.
        let mut conn = db.pool.get().await.expect("conn");
        rappel::with_conn!(&mut conn, |c| diesel_async::RunQueryDsl::execute(
            diesel::sql_query("UPDATE inbound_messages SET received_at = '2020-01-01 00:00:00'"),
            c
        )
        .await)
        .expect("backdated");
        drop(conn);
        let late = ops::replies::receive(env, settings, &reply, &[], Source::Smtp)
            .await
            .expect("received");
        assert_eq!(late, Received::Duplicate);
        assert_eq!(world.answers().await.len(), 1);
        assert_eq!(world.files().await.len(), 2);
        assert_eq!(world.stored_objects(), objects_before + 2, "no staged file left behind");
    }
}

backend_test! {
    async fn two_members_accepting_the_same_held_reply_at_once_answer_it_once(db: TestDb) {
        let world = World::start(&db).await;
        let env = world.inbound.env();
        let settings = world.inbound.settings();
        let admin = world.firm.admin();
        let member = world.firm.member("Second").await;
        for round in 0..3u8 {
            let stranger = email(
                &headers(
                    "Inconnu <inconnu@ailleurs.example>",
                    &world.reply_address,
                    "Re: vos éléments",
                    &format!("held-{round}@ailleurs.example"),
                ),
                "Voici mes papiers",
                &[Part { name: "papiers.pdf", media_type: "application/pdf", bytes: pdf(round, 5_000), content_id: None }],
            );
            let held = ops::replies::receive(env, settings, &stranger, &[], Source::Imap)
                .await
                .expect("received");
            let Received::Held { id, .. } = held else { panic!("held: {held:?}") };
            let (first, second) = tokio::join!(
                ops::replies::accept_held(env, &admin, id),
                ops::replies::accept_held(env, &member, id),
            );
            let outcomes = [first, second];
            let answered = outcomes
                .iter()
                .filter(|outcome| matches!(outcome, Ok(Received::Answered { files: 1, .. })))
                .count();
            let conflicts = outcomes
                .iter()
                .filter(|outcome| matches!(outcome, Err(error) if error.code() == "CONFLICT"))
                .count();
            assert_eq!((answered, conflicts), (1, 1), "{outcomes:?}");
            assert_eq!(world.answers().await.len(), usize::from(round) + 1, "one answer per held reply");
            assert_eq!(world.files().await.len(), usize::from(round) + 1);
        }
        let kinds = world.journal_kinds().await;
        assert_eq!(kinds.iter().filter(|kind| *kind == "reply.accepted").count(), 3);
        assert_eq!(kinds.iter().filter(|kind| *kind == "request.answered").count(), 3);
        // Three answer files: the losers' staged files are gone, and so are the accepted
        // messages' kept copies.
        assert_eq!(world.stored_objects(), 3);
    }
}

/// Writes `bytes` and the end of DATA after a 354.
async fn send_data(smtp: &mut RawSmtp, bytes: &[u8]) -> String {
    let stream = smtp.reader.get_mut();
    stream.write_all(bytes).await.expect("data sent");
    stream.write_all(b"\r\n.\r\n").await.expect("end sent");
    smtp.read_reply().await
}

backend_test! {
    async fn the_smtp_listener_caps_connections_idle_clients_long_lines_recipients_commands_and_data_time(db: TestDb) {
        let world = World::start(&db).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("port");
        let port = listener.local_addr().expect("address").port();
        let limits = rappel::inbound::smtp::Limits {
            max_connections: 3,
            max_connections_per_ip: 2,
            command_timeout: Duration::from_secs(2),
            data_timeout: Duration::from_secs(4),
            max_recipients: 2,
            max_commands: 20,
            max_line_bytes: 512,
        };
        let server = tokio::spawn(rappel::inbound::smtp::serve(listener, world.inbound.clone(), None, limits));

        // Two connections from one address; the third from it is refused, then the total.
        let (mut first, greeting) = RawSmtp::open(port, [127, 0, 0, 1]).await;
        assert!(greeting.starts_with("220"), "{greeting}");
        let (second, greeting) = RawSmtp::open(port, [127, 0, 0, 1]).await;
        assert!(greeting.starts_with("220"), "{greeting}");
        let (mut refused, answer) = RawSmtp::open(port, [127, 0, 0, 1]).await;
        assert!(answer.starts_with("421 ") && answer.contains("from your address"), "{answer}");
        assert!(refused.closed_by_server().await);
        let (third, greeting) = RawSmtp::open(port, [127, 0, 0, 2]).await;
        assert!(greeting.starts_with("220"), "{greeting}");
        let (mut refused, answer) = RawSmtp::open(port, [127, 0, 0, 3]).await;
        assert!(answer.starts_with("421 ") && answer.contains("too many connections"), "{answer}");
        assert!(refused.closed_by_server().await);

        // A silent client is told and disconnected after the command timeout.
        let idle = first.read_reply().await;
        assert!(idle.starts_with("421 4.4.2"), "{idle}");
        assert!(first.closed_by_server().await);
        drop((first, second, third));

        // Places come back when connections end.
        let mut smtp = RawSmtp::connect_when_free(port).await;

        // An over-long command line: 500, then closed.
        let long = smtp.command(&format!("EHLO {}", "a".repeat(600))).await;
        assert!(long.starts_with("500 ") && long.contains("too long"), "{long}");
        assert!(smtp.closed_by_server().await);
        drop(smtp);

        // Recipients past the cap: 452.
        let mut smtp = RawSmtp::connect_when_free(port).await;
        assert!(smtp.command("EHLO client.example.fr").await.starts_with("250"));
        assert!(smtp.command("MAIL FROM:<x@client.example.fr>").await.starts_with("250"));
        for _ in 0..2 {
            let rcpt = smtp.command(&format!("RCPT TO:<{}>", world.reply_address)).await;
            assert!(rcpt.starts_with("250"), "{rcpt}");
        }
        let third_rcpt = smtp.command(&format!("RCPT TO:<{}>", world.reply_address)).await;
        assert!(third_rcpt.starts_with("452"), "{third_rcpt}");

        // Commands past the cap (20, five used): 421, then closed.
        for _ in 0..15 {
            assert!(smtp.command("NOOP").await.starts_with("250"));
        }
        let over = smtp.command("NOOP").await;
        assert!(over.starts_with("421 ") && over.contains("too many commands"), "{over}");
        assert!(smtp.closed_by_server().await);
        drop(smtp);

        // DATA that trickles in (each line within the command timeout) past the DATA limit:
        // 421, then closed, and nothing recorded.
        let mut smtp = RawSmtp::connect_when_free(port).await;
        assert!(smtp.command("EHLO client.example.fr").await.starts_with("250"));
        assert!(smtp.command("MAIL FROM:<x@client.example.fr>").await.starts_with("250"));
        assert!(smtp.command(&format!("RCPT TO:<{}>", world.reply_address)).await.starts_with("250"));
        assert!(smtp.command("DATA").await.starts_with("354"));
        // A line every half second, sent a quarter second off the DATA limit's expiry, and
        // the server's answer looked for before each line.
        let slow = async {
            tokio::time::sleep(Duration::from_millis(250)).await;
            loop {
                let mut line = String::new();
                if let Ok(read) = tokio::time::timeout(Duration::from_millis(10), smtp.reader.read_line(&mut line)).await {
                    return (read.map(|_| line).unwrap_or_default(), smtp.closed_by_server().await);
                }
                if smtp.reader.get_mut().write_all(b"Subject: slow\r\n").await.is_err() {
                    return (String::new(), true);
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        };
        let (answer, closed) = tokio::time::timeout(WAIT, slow).await.expect("the DATA limit ends it");
        assert!(answer.starts_with("421 ") && answer.contains("DATA took too long"), "{answer}");
        assert!(closed);
        assert!(world.answers().await.is_empty());
        drop(smtp);

        // And a good client is still served: its reply answers the request.
        let mut smtp = RawSmtp::connect_when_free(port).await;
        assert!(smtp.command("EHLO client.example.fr").await.starts_with("250"));
        assert!(smtp.command(&format!("MAIL FROM:<{}>", world.contact_email())).await.starts_with("250"));
        assert!(smtp.command(&format!("RCPT TO:<{}>", world.reply_address)).await.starts_with("250"));
        assert!(smtp.command("DATA").await.starts_with("354"));
        let (reply, pdfs) = world.reply_with_two_pdfs("after-caps@client.example.fr");
        let accepted = send_data(&mut smtp, &reply).await;
        assert!(accepted.starts_with("250"), "{accepted}");
        assert!(smtp.command("QUIT").await.starts_with("221"));
        world.assert_answered_with_two_pdfs(&pdfs).await;
        server.abort();
    }
}

/// A stranger's reply with one PDF to `world`'s reply address, held; returns its id and the key
/// of its kept copy (checked to be in the store).
async fn held_stranger_reply(world: &World, message_id: &str) -> (i64, String) {
    let stranger = email(
        &headers(
            "Inconnu <inconnu@ailleurs.example>",
            &world.reply_address,
            "Re: vos éléments",
            message_id,
        ),
        "Voici mes papiers",
        &[Part {
            name: "papiers.pdf",
            media_type: "application/pdf",
            bytes: pdf(7, 4_000),
            content_id: None,
        }],
    );
    let received = ops::replies::receive(
        world.inbound.env(),
        world.inbound.settings(),
        &stranger,
        &[],
        Source::Smtp,
    )
    .await
    .expect("received");
    let Received::Held { id, .. } = received else {
        panic!("held: {received:?}")
    };
    let key = world
        .kept_copy(id)
        .await
        .expect("a held reply's copy is kept");
    assert!(world.storage.exists(&key).await.expect("head"), "{key}");
    (id, key)
}

impl World {
    /// The DSN the contact's mail server sends back when the request email cannot be delivered.
    fn bounce(&self) -> Vec<u8> {
        format!(
            "From: Mail Delivery System <MAILER-DAEMON@mx.client.example.fr>\r\n\
             To: {to}\r\nSubject: Undelivered Mail Returned to Sender\r\n\
             Message-ID: <bounce-1@mx.client.example.fr>\r\nAuto-Submitted: auto-replied\r\n\
             MIME-Version: 1.0\r\n\
             Content-Type: multipart/report; report-type=delivery-status; boundary=\"b1\"\r\n\r\n\
             --b1\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n\
             --b1\r\nContent-Type: message/delivery-status\r\n\r\n\
             Reporting-MTA: dns; mx.client.example.fr\r\n\r\n\
             Final-Recipient: rfc822; {contact}\r\nAction: failed\r\nStatus: 5.1.1\r\n\
             Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n\r\n\
             --b1\r\nContent-Type: text/rfc822-headers\r\n\r\n\
             Message-ID: <{original}>\r\nSubject: Merci de déposer\r\n\r\n--b1--\r\n",
            to = self.reply_address,
            contact = self.contact_email(),
            original = self.request_message_id,
        )
        .into_bytes()
    }

    /// The key of a reply's kept copy, as its row names it.
    async fn kept_copy(&self, id: i64) -> Option<String> {
        let mut conn = self.firm.pool.get().await.expect("conn");
        rappel::db::replies::find_message(&mut conn.as_db(), self.firm.firm.id, id)
            .await
            .expect("read")
            .expect("the message")
            .raw_key
    }
}

/// Sends one GraphQL operation over `/graphql/ws` (graphql-transport-ws) signed in with
/// `token`, and returns its `next` payload.
async fn over_websocket(base_url: &str, token: &str, query: &str, variables: Value) -> Value {
    use futures_util::{SinkExt as _, StreamExt as _};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
    let url = format!("{}/graphql/ws", base_url.replace("http://", "ws://"));
    let mut request = url.into_client_request().expect("request");
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().expect("header"),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("connects");
    let send = |value: Value| Message::Text(value.to_string().into());
    socket
        .send(send(json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } })))
        .await
        .expect("init sent");
    socket
        .send(send(json!({ "id": "1", "type": "subscribe", "payload": { "query": query, "variables": variables } })))
        .await
        .expect("operation sent");
    loop {
        let message = tokio::time::timeout(WAIT, socket.next())
            .await
            .expect("an answer in time")
            .expect("the socket stays open")
            .expect("a message");
        let Message::Text(text) = message else {
            continue;
        };
        let value: Value = serde_json::from_str(&text).expect("JSON");
        match value["type"].as_str() {
            Some("next") => return value["payload"].clone(),
            Some("connection_ack" | "ping" | "pong") => {}
            _ => panic!("unexpected: {value}"),
        }
    }
}

backend_test! {
    async fn an_accepted_held_reply_keeps_no_copy_and_the_websocket_door_reaches_the_store(db: TestDb) {
        let world = World::start(&db).await;
        let staff = world.staff().await;
        let accept = "mutation($id: ID!) { acceptHeldReply(id: $id) { status } }";
        let (first, first_key) = held_stranger_reply(&world, "held-ws@ailleurs.example").await;
        let first_gid = crate::support::app::gid(rappel::domain::gid::Kind::HeldReply, first);

        // A door given no store refuses clearly and changes nothing.
        let request = Request::new(accept)
            .variables(Variables::from_json(json!({ "id": first_gid })))
            .data(staff.clone());
        let refused = serde_json::to_value(world.schema.execute(request).await).expect("serializes");
        assert_eq!(refused["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{refused}");
        assert!(
            refused["errors"][0]["message"].as_str().unwrap_or_default().contains("no document store"),
            "{refused}"
        );
        assert!(world.answers().await.is_empty());
        assert_eq!(world.kept_copy(first).await.as_deref(), Some(first_key.as_str()));

        // `rappel serve` over its WebSocket: the mutation reaches the store, answers, and the
        // kept copy is deleted with its row's key.
        let server = crate::support::server::ServerProcess::start(
            &db.url,
            &[("RAPPEL_STORAGE_URL", &world._files.path().display().to_string())],
        );
        let login = crate::support::server::post_graphql(
            &server.base_url,
            None,
            "mutation($input: LoginInput!) { login(input: $input) { token } }",
            json!({ "input": { "email": world.firm.admin_email, "password": PASSWORD } }),
        )
        .await;
        let token = login["data"]["login"]["token"].as_str().expect("token");
        let accepted = over_websocket(&server.base_url, token, accept, json!({ "id": first_gid })).await;
        assert_eq!(accepted["data"]["acceptHeldReply"]["status"], "ACCEPTED", "{accepted}");
        assert_eq!(world.answers().await.len(), 1);
        let files = world.files().await;
        assert_eq!(files.len(), 1);
        assert_eq!(world.stored_sha256(&files[0].storage_key).await, sha256(&pdf(7, 4_000)));
        assert_eq!(world.kept_copy(first).await, None, "the row names no copy");
        assert!(!world.storage.exists(&first_key).await.expect("head"), "the copy is deleted");
        assert_eq!(world.stored_objects(), 1, "only the answer's file");

        // Accepted once the request is closed: REFUSED, decided, and its copy deleted too.
        let (second, second_key) = held_stranger_reply(&world, "held-late@ailleurs.example").await;
        ops::work::close_request(world.firm.env(), &world.firm.admin(), world.request_id)
            .await
            .expect("closed");
        let late = world
            .exec(&staff, accept, json!({ "id": crate::support::app::gid(rappel::domain::gid::Kind::HeldReply, second) }))
            .await;
        assert_eq!(late["data"]["acceptHeldReply"]["status"], "REFUSED", "{late}");
        assert_eq!(world.kept_copy(second).await, None);
        assert!(!world.storage.exists(&second_key).await.expect("head"));
        assert_eq!(world.answers().await.len(), 1, "a closed request takes no answer");
        assert_eq!(world.stored_objects(), 1);
        drop(server);
    }
}

backend_test! {
    async fn objects_no_row_names_are_swept_once_a_day_old_and_named_ones_never(db: TestDb) {
        use rappel::ops::sweep::sweep_files;
        let world = World::start(&db).await;
        let env = world.inbound.env();
        let (reply, pdfs) = world.reply_with_two_pdfs("swept@client.example.fr");
        let received = ops::replies::receive(env, world.inbound.settings(), &reply, &[], Source::Imap)
            .await
            .expect("received");
        assert_eq!(received, Received::Answered { request_id: world.request_id, files: 2 });
        let (_, held_key) = held_stranger_reply(&world, "held-sweep@ailleurs.example").await;

        // What a crash leaves: a file staged for an answer that never committed, and a held
        // reply's copy whose deletion failed after the decision.
        let contact = rappel::ops::Actor::Contact {
            contact_id: world.contact.id,
            client_id: world.contact.client_id,
            firm_id: world.firm.firm.id,
        };
        let staged = ops::documents::stage_file(
            env,
            &contact,
            world.request_id,
            "crash.pdf",
            futures_util::stream::iter(vec![Ok::<_, std::io::Error>(bytes::Bytes::from(pdf(3, 2_000)))]),
        )
        .await
        .expect("staged");
        let lost = format!("inbound/{}/lost-copy.eml", world.firm.firm.id);
        let outside = "exports/not-rappels.csv";
        for key in [lost.as_str(), outside] {
            let mut writing = world.storage.begin(key).await.expect("begin");
            writing.write(b"bytes").await.expect("write");
            writing.finish().await.expect("finish");
        }
        assert_eq!(world.stored_objects(), 6);

        // Younger than the safe age: examined, kept.
        let now = Utc::now();
        let day = chrono::Duration::hours(24);
        let report = sweep_files(env, now, day, false).await.expect("swept");
        assert_eq!((report.examined, report.orphans, report.deleted), (5, 0, 0), "{report:?}");
        // A day later, a dry run names the two orphans and deletes nothing.
        let later = now + chrono::Duration::hours(25);
        let report = sweep_files(env, later, day, true).await.expect("swept");
        assert_eq!((report.examined, report.orphans, report.deleted), (5, 2, 0), "{report:?}");
        let mut sample = report.sample.clone();
        sample.sort();
        let mut expected = vec![staged.key.clone(), lost.clone()];
        expected.sort();
        assert_eq!(sample, expected);
        assert_eq!(report.orphan_bytes, staged.size as u64 + 5);
        assert_eq!(world.stored_objects(), 6);
        // For real: the orphans go, the answer's files, the held copy and what Rappel never
        // wrote stay.
        let report = sweep_files(env, later, day, false).await.expect("swept");
        assert_eq!((report.orphans, report.deleted, report.failed), (2, 2, 0), "{report:?}");
        assert!(!world.storage.exists(&staged.key).await.expect("head"));
        assert!(!world.storage.exists(&lost).await.expect("head"));
        assert!(world.storage.exists(&held_key).await.expect("head"));
        assert!(world.storage.exists(outside).await.expect("head"));
        assert_eq!(world.stored_objects(), 4);
        world.assert_answered_with_two_pdfs(&pdfs).await;

        // A sweep closer than the safe age is refused.
        let refused = sweep_files(env, later, chrono::Duration::minutes(30), false).await;
        assert!(matches!(&refused, Err(error) if error.code() == "BAD_USER_INPUT"), "{refused:?}");

        // The command line, on the same folder, two days on (libfaketime): a new orphan goes.
        let orphan = format!("staging/{}/0/left-by-a-crash", world.firm.firm.id);
        let mut writing = world.storage.begin(&orphan).await.expect("begin");
        writing.write(b"%PDF-1.4").await.expect("write");
        writing.finish().await.expect("finish");
        let folder = world._files.path().display().to_string();
        let printed = crate::documents::sweep_files_cli(&db.url, &[("RAPPEL_STORAGE_URL", &folder)], 2, true);
        assert!(printed.contains(&format!("  {orphan}\n")), "{printed}");
        assert!(world.storage.exists(&orphan).await.expect("head"), "a dry run deletes nothing");
        let printed = crate::documents::sweep_files_cli(&db.url, &[("RAPPEL_STORAGE_URL", &folder)], 2, false);
        assert!(printed.contains("4 object(s) examined, 1 named by no answer"), "{printed}");
        assert!(printed.contains(", 1 deleted, 0 failed"), "{printed}");
        assert!(!world.storage.exists(&orphan).await.expect("head"));
        assert_eq!(world.stored_objects(), 4);
    }
}

backend_test! {
    async fn a_server_without_idle_or_move_is_polled_and_its_messages_copied_then_expunged(db: TestDb) {
        let world = World::start(&db).await;
        // Capabilities after sign-in, as a server without IDLE and MOVE announces them.
        let dovecot = Dovecot::start_with(
            "imap_capability = IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE LITERAL+ NAMESPACE UIDPLUS CHILDREN UNSELECT\n",
        );
        let mut imap = dovecot.settings();
        imap.poll_seconds = 1;
        {
            let mut session = rappel::inbound::imap::connect(&imap).await.expect("session");
            let capabilities = session.capabilities().await.expect("capabilities");
            assert!(!capabilities.has_str("IDLE") && !capabilities.has_str("MOVE"));
            let _ = session.logout().await;
        }
        let fetcher = tokio::spawn(rappel::inbound::imap::run(world.inbound.clone(), imap));
        let mut waited = Duration::ZERO;
        while dovecot.count_if_exists("Rappel-processed").await.is_none() {
            assert!(waited < WAIT, "the fetcher signs in");
            tokio::time::sleep(Duration::from_millis(100)).await;
            waited += Duration::from_millis(100);
        }
        // Mail arriving after the first pass is found by the next poll.
        let (reply, pdfs) = world.reply_with_two_pdfs("polled@client.example.fr");
        dovecot.append("INBOX", &[reply]).await;
        let mut waited = Duration::ZERO;
        while world.answers().await.is_empty() || dovecot.count("INBOX").await > 0 {
            assert!(waited < WAIT, "the polling fetcher took the message and moved it away");
            tokio::time::sleep(Duration::from_millis(100)).await;
            waited += Duration::from_millis(100);
        }
        fetcher.abort();
        world.assert_answered_with_two_pdfs(&pdfs).await;
        assert_eq!(dovecot.count("INBOX").await, 0, "copied away, then expunged");
        assert_eq!(dovecot.count("Rappel-processed").await, 1);
    }
}

backend_test! {
    async fn a_bounce_coming_back_after_the_emails_day_is_told_in_the_admins_next_digest(db: TestDb) {
        use rappel::delivery::digest::{DigestSettings, run_pass};
        let world = World::start(&db).await;
        // The admin's last digest went out a minute ago, long after the request email left
        // (three days ago); then the bounce comes back.
        let mut conn = db.pool.get().await.expect("conn");
        let claimed = rappel::db::digests::claim(
            &mut conn.as_db(),
            world.firm.firm.id,
            world.firm.admin_id,
            world.firm.today(),
            (Utc::now() - chrono::Duration::minutes(1)).naive_utc(),
        )
        .await
        .expect("a digest recorded");
        assert!(claimed);
        let received = ops::replies::receive(world.inbound.env(), world.inbound.settings(), &world.bounce(), &[], Source::Smtp)
            .await
            .expect("received");
        let Received::Bounce { delivery_id: Some(bounced) } = received else { panic!("a bounce: {received:?}") };
        let three_days_ago = (Utc::now() - chrono::Duration::days(3)).naive_utc().format("%Y-%m-%d %H:%M:%S");
        let sql = format!("UPDATE deliveries SET created_at = '{three_days_ago}' WHERE id = {bounced}");
        let written = rappel::with_conn!(&mut conn, |c| diesel_async::RunQueryDsl::execute(diesel::sql_query(sql.as_str()), c).await)
            .expect("backdated");
        assert_eq!(written, 1);
        drop(conn);

        // The next digest (tomorrow, at noon in Paris) tells the admin.
        let before = world.sink.messages().len();
        let mailer = rappel::delivery::email::Mailer::from_config(&world.config.smtp).expect("mailer");
        let report = run_pass(&world.firm.pool, &mailer, &DigestSettings::from_config(&world.config), crate::support::paris_noon(1))
            .await
            .expect("digest pass");
        assert_eq!(report.sent, 1, "the admin is told: {report:?}");
        let mails = world.sink.wait_for(before + 1, WAIT).await;
        assert_eq!(mails[before].rcpt_to, std::slice::from_ref(&world.firm.admin_email));
        let text = parse(&mails[before].data).text_body.clone().unwrap_or_default();
        assert!(
            text.contains("Envois en échec depuis le dernier récapitulatif : 1.")
                || text.contains("Deliveries that failed since the last digest: 1."),
            "{text}"
        );
    }
}
