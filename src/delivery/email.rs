//! Emails: the information-request emails sent to a firm's client contacts,
//! and the notice sent to a firm's admins when a webhook endpoint is disabled.
//!
//! This module renders the "new information request" and "reminder" emails
//! (French or English, plain text plus HTML) and turns them into RFC 5322
//! messages with the headers mailbox providers expect (`List-Unsubscribe`,
//! one-click unsubscribe, a stable `Message-ID`). Sending them is the
//! [`Mailer`]'s part (`super::mailer`): SMTP in production, `.eml` files in
//! development, memory in tests. Rendering never does I/O.
//!
//! **What may go into an email.** Everything in [`RequestEmail`] ends up in
//! front of the client, so it must only carry what the client view of a
//! request may show: the firm's public name and reply-to address, the
//! client's and contact's names, the client-facing request text, the due
//! date and the two links. Never put internal task titles, service titles,
//! mission names or any other firm-only field into it; the struct has no
//! field for them on purpose, and new fields must keep to that rule.
//!
//! **Header safety.** No caller-supplied value reaches a header with a CR,
//! LF or other control character in it:
//! - addresses, URLs and the message id are *rejected* with
//!   [`EmailError::HeaderInjection`], because changing them silently would
//!   send mail somewhere else or break links;
//! - display names (the firm's and the contact's) and the subject are
//!   *cleaned*: every control character becomes a space and runs of
//!   whitespace collapse to one space, because they are free text typed by
//!   people and a stray newline should not block a delivery.

use std::time::SystemTime;

use chrono::{DateTime, NaiveDate, Utc};
use lettre::address::Envelope;
use lettre::message::header::{Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::{Address, Message};

use crate::domain::Language;

pub use super::mailer::{Mailer, MemoryOutbox, SendError};

/// Why an email is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailEvent {
    /// The firm has just sent a new information request.
    RequestCreated,
    /// A reminder for a request still waiting for an answer; `number` is
    /// 1 for the first reminder, 2 for the second, and so on. The wording
    /// is the same for every reminder: the number is not shown.
    RequestReminder {
        /// Which reminder this is, starting at 1.
        number: u32,
    },
}

/// Everything an information-request email shows to the client contact.
///
/// Only client-visible data belongs here (see the module documentation).
#[derive(Debug, Clone)]
pub struct RequestEmail {
    /// Why the email is sent.
    pub event: EmailEvent,
    /// Language of the contact.
    pub language: Language,
    /// The firm's public name, shown as the sender's name.
    pub firm_name: String,
    /// Address the client's replies should go to, if the firm has one
    /// (`Some("")` counts as none).
    pub firm_reply_to: Option<String>,
    /// The client (company or person) the request is about.
    pub client_name: String,
    /// The person the email is addressed to.
    pub contact_name: String,
    /// The client-facing wording of the request.
    pub request_text: String,
    /// When the firm needs the answer.
    pub due_date: NaiveDate,
    /// The period the request covers, in the contact's language ("janvier 2027", "T1 2027");
    /// empty when unknown.
    pub period: String,
    /// Link to sign in and answer the request.
    pub sign_in_url: String,
    /// One-click unsubscribe link (also used in `List-Unsubscribe`).
    pub unsubscribe_url: String,
    /// The envelope sender (where bounces go) when it is not the From address: the reply
    /// address of `[inbound]`, so that a bounce finds its delivery.
    pub envelope_sender: Option<String>,
    /// The Message-ID (without brackets) of the thread's first email, which a reminder
    /// answers (`In-Reply-To` and `References`), so mail programs show one thread.
    pub thread_root: Option<String>,
}

/// A rendered email, before it becomes a MIME message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedEmail {
    /// Subject line, already cleaned of control characters.
    pub subject: String,
    /// Plain-text part.
    pub text: String,
    /// HTML part; every substituted value is HTML-escaped.
    pub html: String,
}

/// Errors while building a message or a [`Mailer`].
#[derive(Debug, thiserror::Error)]
pub enum EmailError {
    /// A value meant for a header contains a CR, LF or other control
    /// character, which could smuggle extra headers into the message.
    #[error("{field} contains a control character (CR, LF, ...) and cannot go into a header")]
    HeaderInjection {
        /// Which value was rejected.
        field: &'static str,
    },
    /// An email address does not parse.
    #[error("{field} is not a valid email address: {reason}")]
    InvalidAddress {
        /// Which address was rejected.
        field: &'static str,
        /// The parser's explanation.
        reason: String,
    },
    /// A link is not an absolute http(s) URL made of printable ASCII.
    #[error("{field} is not a valid link: {reason}")]
    InvalidUrl {
        /// Which link was rejected.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The message id is not of the form `left@right` in printable ASCII.
    #[error("invalid message id: {0}")]
    InvalidMessageId(&'static str),
    /// lettre refused to assemble the message.
    #[error("could not build the message: {0}")]
    Build(#[from] lettre::error::Error),
    /// The mail configuration cannot work.
    #[error("invalid mail configuration: {0}")]
    Config(String),
}

/// Spells out a due date the way the client reads it:
/// "30 janvier 2027" / "1er janvier 2027" in French,
/// "January 30, 2027" in English.
pub fn format_due_date(date: NaiveDate, language: Language) -> String {
    // One spelling of dates for emails, pages and request texts.
    crate::domain::placeholders::long_date(date, language)
}

/// The name of one email kind's templates in one language, without the extension
/// (`email/created.fr`: `.subject`, `.txt` and `.html` in `templates/`).
fn template_name(event: EmailEvent, language: Language) -> &'static str {
    match (event, language) {
        (EmailEvent::RequestCreated, Language::French) => "email/created.fr",
        (EmailEvent::RequestCreated, Language::English) => "email/created.en",
        (EmailEvent::RequestReminder { .. }, Language::French) => "email/reminder.fr",
        (EmailEvent::RequestReminder { .. }, Language::English) => "email/reminder.en",
    }
}

/// Renders `{name}.{extension}` from `templates/` with `values`. The templates are part of
/// the binary and a test renders each one, so a failure is a bug: it is logged and leaves
/// the part empty rather than sending a half-rendered email.
fn render_part(name: &str, extension: &str, values: minijinja::Value) -> String {
    let template = format!("{name}.{extension}");
    crate::templates::render(&template, values).unwrap_or_else(|error| {
        tracing::error!(%error, template, "an email template does not render");
        String::new()
    })
}

/// Escapes text for HTML (the template engine's one escaper).
pub(crate) fn escape_html(value: &str) -> String {
    crate::templates::escape_html(value)
}

/// Cleans one-line free text (names, subjects): control characters and
/// whitespace runs become a single space, and the ends are trimmed.
pub(super) fn single_line(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut pending_space = false;
    for c in value.chars() {
        if c.is_control() || c.is_whitespace() {
            pending_space = true;
        } else {
            if pending_space && !out.is_empty() {
                out.push(' ');
            }
            pending_space = false;
            out.push(c);
        }
    }
    out
}

/// Cleans multi-line free text (the request): line endings become `\n`, tabs
/// stay, and other control characters are dropped.
fn multi_line(value: &str) -> String {
    value
        .replace("\r\n", "\n")
        .replace('\r', "\n")
        .chars()
        .filter(|c| *c == '\n' || *c == '\t' || !c.is_control())
        .collect::<String>()
        .trim_matches('\n')
        .to_owned()
}

/// Renders the subject, plain-text and HTML parts of an email.
///
/// Values are cleaned (see the module documentation) and HTML-escaped in
/// the HTML part. Links are inserted as given: [`build_message`] checks that
/// they are http(s) URLs before sending.
pub fn render(email: &RequestEmail) -> RenderedEmail {
    let name = template_name(email.event, email.language);
    let due_date = format_due_date(email.due_date, email.language);
    let firm_name = single_line(&email.firm_name);
    let client_name = single_line(&email.client_name);
    let contact_name = single_line(&email.contact_name);
    let request_text = multi_line(&email.request_text);
    let period = single_line(&email.period);

    let subject = single_line(&render_part(
        name,
        "subject",
        minijinja::context! { firm_name, due_date, period },
    ));
    let text = render_part(
        name,
        "txt",
        minijinja::context! {
            firm_name, client_name, contact_name, request_text, due_date, period,
            sign_in_url => &email.sign_in_url, unsubscribe_url => &email.unsubscribe_url,
        },
    );
    // Escaped, then line breaks become <br> so the request keeps its layout without letting
    // any of its text become markup; marked safe so the engine does not escape it twice.
    let html_request =
        minijinja::Value::from_safe_string(escape_html(&request_text).replace('\n', "<br>\n"));
    let html = render_part(
        name,
        "html",
        minijinja::context! {
            subject, firm_name, client_name, contact_name, request_text => html_request,
            due_date, period, sign_in_url => &email.sign_in_url,
            unsubscribe_url => &email.unsubscribe_url,
        },
    );

    RenderedEmail {
        subject,
        text,
        html,
    }
}

/// `true` for characters that must never reach a header: C0/C1 controls
/// (CR and LF among them), DEL, and the Unicode line/paragraph separators.
fn is_forbidden_in_header(c: char) -> bool {
    c.is_control() || c == '\u{2028}' || c == '\u{2029}'
}

fn reject_control_chars(field: &'static str, value: &str) -> Result<(), EmailError> {
    if value.chars().any(is_forbidden_in_header) {
        Err(EmailError::HeaderInjection { field })
    } else {
        Ok(())
    }
}

pub(super) fn parse_address(field: &'static str, value: &str) -> Result<Address, EmailError> {
    reject_control_chars(field, value)?;
    value
        .parse::<Address>()
        .map_err(|err| EmailError::InvalidAddress {
            field,
            reason: err.to_string(),
        })
}

fn check_url(field: &'static str, url: &str) -> Result<(), EmailError> {
    reject_control_chars(field, url)?;
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(EmailError::InvalidUrl {
            field,
            reason: "it must start with https:// or http://",
        });
    }
    // `<`, `>` and `"` would end the `<...>` of List-Unsubscribe or an href.
    if url
        .chars()
        .any(|c| !c.is_ascii_graphic() || matches!(c, '<' | '>' | '"'))
    {
        return Err(EmailError::InvalidUrl {
            field,
            reason: "it must be printable ASCII without spaces, quotes or angle brackets",
        });
    }
    Ok(())
}

pub(super) fn check_message_id(id: &str) -> Result<(), EmailError> {
    reject_control_chars("message id", id)?;
    let Some((left, right)) = id.split_once('@') else {
        return Err(EmailError::InvalidMessageId("it must look like left@right"));
    };
    if left.is_empty() || right.is_empty() || right.contains('@') {
        return Err(EmailError::InvalidMessageId("it must look like left@right"));
    }
    if id
        .chars()
        .any(|c| !c.is_ascii_graphic() || "<>\"\\()[],;:".contains(c))
    {
        return Err(EmailError::InvalidMessageId(
            "it must be printable ASCII without spaces, brackets or quotes",
        ));
    }
    Ok(())
}

/// `List-Unsubscribe: <url>` (RFC 2369). The URL is checked by
/// [`check_url`] before this header is built.
#[derive(Debug, Clone)]
struct ListUnsubscribe(String);

impl Header for ListUnsubscribe {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe")
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let url = s
            .trim()
            .strip_prefix('<')
            .and_then(|rest| rest.strip_suffix('>'))
            .ok_or("List-Unsubscribe must be <url>")?;
        Ok(Self(url.to_owned()))
    }

    fn display(&self) -> HeaderValue {
        // HeaderValue::new encodes and folds; a checked URL is printable
        // ASCII without spaces, so it comes out unchanged on one line.
        HeaderValue::new(Self::name(), format!("<{}>", self.0))
    }
}

/// `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058), which
/// lets mailbox providers unsubscribe with a single POST to the URL.
#[derive(Debug, Clone)]
struct ListUnsubscribePost;

impl ListUnsubscribePost {
    const VALUE: &'static str = "List-Unsubscribe=One-Click";
}

impl Header for ListUnsubscribePost {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe-Post")
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        if s.trim() == Self::VALUE {
            Ok(Self)
        } else {
            Err("unexpected List-Unsubscribe-Post value".into())
        }
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), Self::VALUE.to_owned())
    }
}

/// `Auto-Submitted: auto-generated` (RFC 3834): out-of-office responders do not answer it,
/// so a request email and an auto-reply cannot loop.
#[derive(Debug, Clone)]
pub(crate) struct AutoSubmitted;

impl Header for AutoSubmitted {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        if s.trim() == "auto-generated" {
            Ok(Self)
        } else {
            Err("unexpected Auto-Submitted value".into())
        }
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "auto-generated".to_owned())
    }
}

/// Builds the MIME message for one recipient.
///
/// - `From` is `"<firm name>" <from_address>`, `Reply-To` the firm's
///   address when it has one, `To` the contact (named) at `to`;
/// - `Message-ID` is exactly `<{message_id}>`: callers pass a stable id
///   (e.g. `dlv_abc123@rappel`) so retries of one delivery share it;
/// - `Date` is `date` (to the second);
/// - `List-Unsubscribe` and `List-Unsubscribe-Post` (RFC 8058) point to
///   the unsubscribe link;
/// - the body is multipart/alternative, text/plain then text/html, UTF-8.
///
/// Addresses, links and the message id containing control characters are
/// rejected with [`EmailError::HeaderInjection`]; names and the subject are
/// cleaned instead (see the module documentation).
pub fn build_message(
    from_address: &str,
    email: &RequestEmail,
    to: &str,
    message_id: &str,
    date: DateTime<Utc>,
) -> Result<Message, EmailError> {
    let from = parse_address("sender address", from_address)?;
    let recipient = parse_address("recipient address", to)?;
    // An empty reply-to (a blank form field) means the firm has none.
    let reply_to = email
        .firm_reply_to
        .as_deref()
        .filter(|address| !address.is_empty())
        .map(|address| parse_address("firm reply-to address", address))
        .transpose()?;
    check_url("sign-in link", &email.sign_in_url)?;
    check_url("unsubscribe link", &email.unsubscribe_url)?;
    check_message_id(message_id)?;

    let rendered = render(email);
    let firm_name = non_empty(single_line(&email.firm_name));
    let contact_name = non_empty(single_line(&email.contact_name));

    // The envelope is given explicitly rather than left to lettre, which
    // would re-parse the From/To headers it has just formatted.
    let envelope_sender = email
        .envelope_sender
        .as_deref()
        .map(|address| parse_address("envelope sender", address))
        .transpose()?
        .unwrap_or_else(|| from.clone());
    let envelope = Envelope::new(Some(envelope_sender), vec![recipient.clone()])?;
    let mut builder = Message::builder()
        .from(Mailbox::new(firm_name.clone(), from))
        .to(Mailbox::new(contact_name, recipient))
        .subject(rendered.subject)
        .date(SystemTime::from(date))
        .message_id(Some(format!("<{message_id}>")))
        .header(ListUnsubscribe(email.unsubscribe_url.clone()))
        .header(ListUnsubscribePost)
        .header(AutoSubmitted)
        .envelope(envelope);
    if let Some(reply_to) = reply_to {
        builder = builder.reply_to(Mailbox::new(firm_name, reply_to));
    }
    if let Some(root) = &email.thread_root {
        check_message_id(root)?;
        builder = builder
            .in_reply_to(format!("<{root}>"))
            .references(format!("<{root}>"));
    }
    Ok(builder.multipart(MultiPart::alternative_plain_html(
        rendered.text,
        rendered.html,
    ))?)
}

/// The notice emailed to a firm's admins when one of its webhook endpoints
/// was disabled after failing for too long. Staff-only: it goes to the
/// firm's own admins, never to a client.
#[derive(Debug, Clone)]
pub struct EndpointDisabledEmail {
    /// Language of the firm.
    pub language: Language,
    /// The firm's name, shown as the sender's name.
    pub firm_name: String,
    /// The admin the notice is addressed to.
    pub admin_name: String,
    /// The endpoint's address, without its query string (which may hold a
    /// token the firm put there).
    pub endpoint_url: String,
    /// Since when the endpoint has failed, written as the language writes it.
    pub failing_since: NaiveDate,
    /// The last error, as recorded on the delivery.
    pub last_error: String,
}

/// Renders the subject, plain-text and HTML parts of an endpoint notice.
pub fn render_endpoint_disabled(email: &EndpointDisabledEmail) -> RenderedEmail {
    let name = match email.language {
        Language::French => "email/endpoint_disabled.fr",
        Language::English => "email/endpoint_disabled.en",
    };
    let firm_name = single_line(&email.firm_name);
    let admin_name = single_line(&email.admin_name);
    let endpoint_url = single_line(&email.endpoint_url);
    let failing_since = format_due_date(email.failing_since, email.language);
    let last_error = single_line(&email.last_error);
    let subject = single_line(&render_part(
        name,
        "subject",
        minijinja::context! { firm_name },
    ));
    let values = minijinja::context! {
        subject, firm_name, admin_name, endpoint_url, failing_since, last_error,
    };
    let text = render_part(name, "txt", values.clone());
    let html = render_part(name, "html", values);
    RenderedEmail {
        subject,
        text,
        html,
    }
}

/// Builds the MIME message of an endpoint notice for one admin: `From` the
/// firm's name at `from_address`, `To` the admin, a stable `Message-ID`,
/// `Date`, multipart text and HTML. The same header checks as
/// [`build_message`] apply; there is no unsubscribe header (a notice about
/// the firm's own settings is not a mailing).
pub fn build_notice_message(
    from_address: &str,
    email: &EndpointDisabledEmail,
    to: &str,
    message_id: &str,
    date: DateTime<Utc>,
) -> Result<Message, EmailError> {
    build_plain_message(
        from_address,
        &email.firm_name,
        (&email.admin_name, to),
        render_endpoint_disabled(email),
        message_id,
        date,
    )
}

/// Builds a message that is not a mailing (no unsubscribe header): `From` `sender_name` at
/// `from_address`, `To` the (name, address), a stable `Message-ID`, `Date`, multipart text and
/// HTML, with the same header checks as [`build_message`]. Endpoint notices and the portal's
/// new-link emails use it.
pub fn build_plain_message(
    from_address: &str,
    sender_name: &str,
    (to_name, to): (&str, &str),
    rendered: RenderedEmail,
    message_id: &str,
    date: DateTime<Utc>,
) -> Result<Message, EmailError> {
    let from = parse_address("sender address", from_address)?;
    let recipient = parse_address("recipient address", to)?;
    check_message_id(message_id)?;
    let envelope = Envelope::new(Some(from.clone()), vec![recipient.clone()])?;
    let builder = Message::builder()
        .from(Mailbox::new(non_empty(single_line(sender_name)), from))
        .to(Mailbox::new(non_empty(single_line(to_name)), recipient))
        .subject(single_line(&rendered.subject))
        .date(SystemTime::from(date))
        .message_id(Some(format!("<{message_id}>")))
        .envelope(envelope);
    Ok(builder.multipart(MultiPart::alternative_plain_html(
        rendered.text,
        rendered.html,
    ))?)
}

fn non_empty(value: String) -> Option<String> {
    if value.is_empty() { None } else { Some(value) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("valid test date")
    }

    fn sample(event: EmailEvent, language: Language) -> RequestEmail {
        RequestEmail {
            event,
            language,
            firm_name: "Cabinet Dupont".to_owned(),
            firm_reply_to: Some("contact@dupont-expertise.fr".to_owned()),
            envelope_sender: None,
            thread_root: None,
            client_name: "Boulangerie Martin".to_owned(),
            contact_name: "Marie Martin".to_owned(),
            request_text: "Merci d'envoyer les relevés bancaires de décembre.\nEt les factures."
                .to_owned(),
            due_date: date(2027, 1, 30),
            period: match language {
                Language::French => "janvier 2027".into(),
                Language::English => "January 2027".into(),
            },
            sign_in_url: "https://rappel.example/sign-in?token=abc&lang=fr".to_owned(),
            unsubscribe_url: "https://rappel.example/unsubscribe/u_123".to_owned(),
        }
    }

    fn formatted(message: &Message) -> String {
        String::from_utf8(message.formatted()).expect("formatted message is UTF-8")
    }

    fn header_lines(message: &Message) -> Vec<String> {
        let text = formatted(message);
        let head = text.split("\r\n\r\n").next().unwrap_or_default().to_owned();
        head.split("\r\n").map(str::to_owned).collect()
    }

    fn build(email: &RequestEmail) -> Result<Message, EmailError> {
        build_message(
            "rappel@localhost",
            email,
            "marie@martin.example",
            "dlv_abc123@rappel",
            DateTime::from_timestamp(1_800_000_000, 0).expect("valid timestamp"),
        )
    }

    #[test]
    fn french_due_dates_are_spelled_out_in_words() {
        assert_eq!(
            format_due_date(date(2027, 1, 30), Language::French),
            "30 janvier 2027"
        );
        assert_eq!(
            format_due_date(date(2027, 8, 15), Language::French),
            "15 août 2027"
        );
        assert_eq!(
            format_due_date(date(2027, 12, 2), Language::French),
            "2 décembre 2027"
        );
    }

    #[test]
    fn french_writes_the_first_of_the_month_as_1er() {
        assert_eq!(
            format_due_date(date(2027, 1, 1), Language::French),
            "1er janvier 2027"
        );
        assert_eq!(
            format_due_date(date(2027, 2, 1), Language::French),
            "1er février 2027"
        );
    }

    #[test]
    fn english_due_dates_are_month_day_year() {
        assert_eq!(
            format_due_date(date(2027, 1, 30), Language::English),
            "January 30, 2027"
        );
        assert_eq!(
            format_due_date(date(2027, 1, 1), Language::English),
            "January 1, 2027"
        );
    }

    #[test]
    fn french_created_email_shows_request_client_firm_due_date_and_both_links() {
        let email = sample(EmailEvent::RequestCreated, Language::French);
        let rendered = render(&email);
        assert_eq!(
            rendered.subject,
            "Cabinet Dupont : vos éléments de janvier 2027, au plus tard le 30 janvier 2027"
        );
        for part in [&rendered.text, &rendered.html] {
            assert!(part.contains("Marie Martin"), "{part}");
            assert!(part.contains("Cabinet Dupont"), "{part}");
            assert!(part.contains("Boulangerie Martin"), "{part}");
            assert!(part.contains("relevés bancaires de décembre"), "{part}");
            assert!(part.contains("30 janvier 2027"), "{part}");
            assert!(part.contains("Répondre en ligne"), "{part}");
            assert!(part.contains("https://rappel.example/unsubscribe/u_123"));
        }
        assert!(
            rendered
                .text
                .contains("https://rappel.example/sign-in?token=abc&lang=fr")
        );
        // In HTML the & of the query string is escaped, as attributes require.
        assert!(
            rendered
                .html
                .contains("href=\"https://rappel.example/sign-in?token=abc&amp;lang=fr\"")
        );
        assert!(rendered.text.contains("désabonnez-vous"));
    }

    #[test]
    fn english_created_email_uses_english_wording() {
        let email = sample(EmailEvent::RequestCreated, Language::English);
        let rendered = render(&email);
        assert_eq!(
            rendered.subject,
            "Cabinet Dupont: your documents for January 2027, due January 30, 2027"
        );
        assert!(rendered.text.starts_with("Hello Marie Martin,"));
        assert!(
            rendered
                .text
                .contains("Answer online: https://rappel.example/sign-in")
        );
        assert!(rendered.text.contains("Please answer by January 30, 2027."));
        assert!(
            rendered
                .text
                .contains("unsubscribe here: https://rappel.example/unsubscribe/u_123")
        );
        assert!(rendered.html.contains(">Answer online</a>"));
        assert!(rendered.html.contains("<html lang=\"en\">"));
    }

    #[test]
    fn reminder_subjects_start_with_relance_or_reminder() {
        let reminder = EmailEvent::RequestReminder { number: 2 };
        assert_eq!(
            render(&sample(reminder, Language::French)).subject,
            "Relance : Cabinet Dupont : vos éléments de janvier 2027, au plus tard le 30 janvier 2027"
        );
        assert_eq!(
            render(&sample(reminder, Language::English)).subject,
            "Reminder: Cabinet Dupont: your documents for January 2027, due January 30, 2027"
        );
    }

    #[test]
    fn every_template_has_all_its_placeholders_filled() {
        let events = [
            EmailEvent::RequestCreated,
            EmailEvent::RequestReminder { number: 1 },
        ];
        for event in events {
            for language in [Language::French, Language::English] {
                let rendered = render(&sample(event, language));
                for part in [&rendered.subject, &rendered.text, &rendered.html] {
                    assert!(!part.contains("{{"), "{event:?} {language:?}: {part}");
                    assert!(!part.contains("}}"), "{event:?} {language:?}: {part}");
                }
                assert!(
                    rendered
                        .html
                        .contains(&format!("<html lang=\"{}\">", language.as_str()))
                );
            }
        }
    }

    #[test]
    fn html_part_escapes_every_substituted_value() {
        let mut email = sample(EmailEvent::RequestCreated, Language::English);
        email.request_text = "<script>alert('x')</script> & \"quotes\"".to_owned();
        email.firm_name = "Dupont & <b>Fils</b>".to_owned();
        email.client_name = "<img src=x onerror=alert(1)>".to_owned();
        email.contact_name = "\"><script>".to_owned();
        let html = render(&email).html;
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("<b>"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(
            html.contains(
                "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;quotes&quot;"
            )
        );
        assert!(html.contains("Dupont &amp; &lt;b&gt;Fils&lt;/b&gt;"));
    }

    #[test]
    fn request_line_breaks_become_br_in_html_only() {
        let rendered = render(&sample(EmailEvent::RequestCreated, Language::French));
        assert!(rendered.html.contains("décembre.<br>\nEt les factures."));
        assert!(rendered.text.contains("décembre.\nEt les factures."));
    }

    #[test]
    fn values_containing_placeholders_are_not_expanded_again() {
        let mut email = sample(EmailEvent::RequestCreated, Language::English);
        email.request_text = "Literally {{firm_name}}".to_owned();
        let rendered = render(&email);
        assert!(rendered.text.contains("Literally {{firm_name}}"));
    }

    #[test]
    fn message_id_is_exactly_the_given_one_in_angle_brackets() {
        let message =
            build(&sample(EmailEvent::RequestCreated, Language::French)).expect("message builds");
        assert_eq!(
            message.headers().get_raw("Message-ID"),
            Some("<dlv_abc123@rappel>")
        );
        assert!(
            header_lines(&message)
                .iter()
                .any(|line| line == "Message-ID: <dlv_abc123@rappel>")
        );
    }

    #[test]
    fn message_has_from_reply_to_date_and_one_click_unsubscribe_headers() {
        let message =
            build(&sample(EmailEvent::RequestCreated, Language::French)).expect("message builds");
        let lines = header_lines(&message);
        let has = |expected: &str| lines.iter().any(|line| line == expected);
        assert!(
            has("From: \"Cabinet Dupont\" <rappel@localhost>"),
            "{lines:?}"
        );
        assert!(
            has("Reply-To: \"Cabinet Dupont\" <contact@dupont-expertise.fr>"),
            "{lines:?}"
        );
        assert!(
            has("To: \"Marie Martin\" <marie@martin.example>"),
            "{lines:?}"
        );
        assert!(has("Date: Fri, 15 Jan 2027 08:00:00 +0000"), "{lines:?}");
        assert!(
            has("List-Unsubscribe: <https://rappel.example/unsubscribe/u_123>"),
            "{lines:?}"
        );
        assert!(
            has("List-Unsubscribe-Post: List-Unsubscribe=One-Click"),
            "{lines:?}"
        );
        let text = formatted(&message);
        assert!(text.contains("Content-Type: multipart/alternative;"));
        let plain = text.find("Content-Type: text/plain; charset=utf-8");
        let html = text.find("Content-Type: text/html; charset=utf-8");
        assert!(
            matches!((plain, html), (Some(p), Some(h)) if p < h),
            "{text}"
        );
        assert_eq!(message.envelope().to().len(), 1);
    }

    #[test]
    fn long_unsubscribe_links_stay_whole_in_the_header() {
        let mut email = sample(EmailEvent::RequestCreated, Language::French);
        email.unsubscribe_url = format!("https://rappel.example/unsubscribe/{}", "t".repeat(180));
        let message = build(&email).expect("message builds");
        let expected = format!("List-Unsubscribe: <{}>", email.unsubscribe_url);
        assert!(
            header_lines(&message).contains(&expected),
            "{}",
            formatted(&message)
        );
    }

    #[test]
    fn message_without_reply_to_has_no_reply_to_header() {
        for reply_to in [None, Some(String::new())] {
            let mut email = sample(EmailEvent::RequestCreated, Language::French);
            email.firm_reply_to = reply_to;
            let message = build(&email).expect("message builds");
            assert!(
                !header_lines(&message)
                    .iter()
                    .any(|line| line.starts_with("Reply-To:"))
            );
        }
    }

    #[test]
    fn crlf_in_the_firm_name_cannot_add_a_bcc_header() {
        let mut email = sample(EmailEvent::RequestCreated, Language::English);
        email.firm_name = "Evil\r\nBcc: victim@x".to_owned();
        let message = build(&email).expect("names are cleaned, not rejected");
        let text = formatted(&message);
        let lines = header_lines(&message);
        assert!(
            !lines
                .iter()
                .any(|line| line.to_ascii_lowercase().starts_with("bcc:")),
            "{text}"
        );
        // lettre RFC 2047-encodes the name (it has ':' and '@'); what it
        // encodes is the cleaned, single-line name.
        assert_eq!(
            message.headers().get_raw("From"),
            Some("\"Evil Bcc: victim@x\" <rappel@localhost>")
        );
        assert!(
            lines.iter().any(|line| line.starts_with("From: =?utf-8?b?")
                && line.ends_with(" <rappel@localhost>")),
            "{text}"
        );
        assert!(
            !message
                .envelope()
                .to()
                .iter()
                .any(|a| a.to_string() == "victim@x")
        );
        // The subject embeds the firm name too and is cleaned the same way.
        assert!(
            lines
                .iter()
                .any(|line| line.starts_with("Subject: Evil Bcc: victim@x: your documents")),
            "{text}"
        );
    }

    #[test]
    fn crlf_in_the_contact_name_or_subject_pieces_stays_on_one_header_line() {
        let mut email = sample(EmailEvent::RequestCreated, Language::French);
        email.contact_name = "Marie\nX-Injected: 1".to_owned();
        email.firm_name = "Cabinet\rDupont\u{2028}X-Other: 2".to_owned();
        let message = build(&email).expect("names are cleaned, not rejected");
        let lines = header_lines(&message);
        assert!(
            !lines
                .iter()
                .any(|line| line.starts_with("X-Injected") || line.starts_with("X-Other")),
            "{lines:?}"
        );
    }

    #[test]
    fn addresses_with_crlf_are_rejected() {
        let email = sample(EmailEvent::RequestCreated, Language::French);
        let at = DateTime::from_timestamp(1_800_000_000, 0).expect("valid timestamp");
        let to = build_message(
            "rappel@localhost",
            &email,
            "marie@martin.example\r\nBcc: victim@x",
            "dlv_1@rappel",
            at,
        );
        assert!(matches!(
            to,
            Err(EmailError::HeaderInjection {
                field: "recipient address"
            })
        ));
        let from = build_message(
            "rappel@localhost\n",
            &email,
            "a@b.example",
            "dlv_1@rappel",
            at,
        );
        assert!(matches!(from, Err(EmailError::HeaderInjection { .. })));

        let mut email = email;
        email.firm_reply_to = Some("contact@dupont.fr\r\nBcc: victim@x".to_owned());
        let reply_to = build_message(
            "rappel@localhost",
            &email,
            "a@b.example",
            "dlv_1@rappel",
            at,
        );
        assert!(matches!(
            reply_to,
            Err(EmailError::HeaderInjection {
                field: "firm reply-to address"
            })
        ));
    }

    #[test]
    fn links_and_message_ids_with_crlf_are_rejected() {
        let at = DateTime::from_timestamp(1_800_000_000, 0).expect("valid timestamp");
        let mut email = sample(EmailEvent::RequestCreated, Language::French);
        email.unsubscribe_url = "https://rappel.example/u\r\nBcc: victim@x".to_owned();
        assert!(matches!(
            build(&email),
            Err(EmailError::HeaderInjection {
                field: "unsubscribe link"
            })
        ));

        let mut email = sample(EmailEvent::RequestCreated, Language::French);
        email.sign_in_url = "https://rappel.example/s\n".to_owned();
        assert!(matches!(
            build(&email),
            Err(EmailError::HeaderInjection { .. })
        ));

        let email = sample(EmailEvent::RequestCreated, Language::French);
        let id = build_message(
            "rappel@localhost",
            &email,
            "a@b.example",
            "dlv_1@rappel\r\nBcc: victim@x",
            at,
        );
        assert!(matches!(
            id,
            Err(EmailError::HeaderInjection {
                field: "message id"
            })
        ));
    }

    #[test]
    fn links_must_be_plain_http_urls() {
        let mut email = sample(EmailEvent::RequestCreated, Language::French);
        email.sign_in_url = "javascript:alert(1)".to_owned();
        assert!(matches!(build(&email), Err(EmailError::InvalidUrl { .. })));

        let mut email = sample(EmailEvent::RequestCreated, Language::French);
        email.unsubscribe_url = "https://rappel.example/a>b".to_owned();
        assert!(matches!(build(&email), Err(EmailError::InvalidUrl { .. })));
    }

    #[test]
    fn malformed_message_ids_and_addresses_are_rejected() {
        let email = sample(EmailEvent::RequestCreated, Language::French);
        let at = DateTime::from_timestamp(1_800_000_000, 0).expect("valid timestamp");
        for id in [
            "no-at-sign",
            "<dlv_1@rappel>",
            "a b@rappel",
            "@rappel",
            "a@b@c",
        ] {
            assert!(
                matches!(
                    build_message("rappel@localhost", &email, "a@b.example", id, at),
                    Err(EmailError::InvalidMessageId(_))
                ),
                "{id}"
            );
        }
        assert!(matches!(
            build_message("rappel@localhost", &email, "not an address", "d@r", at),
            Err(EmailError::InvalidAddress { .. })
        ));
    }

    #[test]
    fn formatted_message_uses_crlf_line_endings_only() {
        let message =
            build(&sample(EmailEvent::RequestCreated, Language::French)).expect("message builds");
        let bytes = message.formatted();
        for (i, byte) in bytes.iter().enumerate() {
            if *byte == b'\n' {
                assert!(i > 0 && bytes[i - 1] == b'\r', "bare LF at byte {i}");
            }
        }
    }

    #[test]
    fn an_endpoint_notice_names_the_endpoint_the_date_and_the_error_in_both_languages() {
        let notice = EndpointDisabledEmail {
            language: Language::French,
            firm_name: "Cabinet Dupont".to_owned(),
            admin_name: "Admin".to_owned(),
            endpoint_url: "https://hooks.example.com/rappel".to_owned(),
            failing_since: date(2027, 2, 1),
            last_error: "endpoint answered HTTP 500\r\nInternal Server Error".to_owned(),
        };
        let rendered = render_endpoint_disabled(&notice);
        assert!(
            rendered.subject.contains("Cabinet Dupont"),
            "{}",
            rendered.subject
        );
        for part in [&rendered.text, &rendered.html] {
            assert!(part.contains("https://hooks.example.com/rappel"), "{part}");
            assert!(part.contains("1er février 2027"), "{part}");
            assert!(part.contains("HTTP 500 Internal Server Error"), "{part}");
            assert!(!part.contains("{{"), "{part}");
        }
        let english = render_endpoint_disabled(&EndpointDisabledEmail {
            language: Language::English,
            ..notice.clone()
        });
        assert!(
            english.text.contains("February 1, 2027"),
            "{}",
            english.text
        );
        let message = build_notice_message(
            "rappel@localhost",
            &notice,
            "admin@dupont.example",
            "msg_1@localhost",
            DateTime::from_timestamp(1_800_000_000, 0).expect("valid timestamp"),
        )
        .expect("builds");
        assert!(
            !header_lines(&message)
                .iter()
                .any(|line| line.starts_with("List-Unsubscribe"))
        );
    }
}
