//! The portal's pages and its new-link email, rendered from `templates/` (minijinja, which
//! escapes every value of an `.html` template). Holds the words of statuses and errors in
//! French and English; never a raw enum value, an API token or a firm-only field.

use chrono::NaiveDate;
use minijinja::context;
use serde::Serialize;

use super::PortalOptions;
use crate::db::work::InformationRequest;
use crate::domain::{Language, RequestStatus};
use crate::ops::OpError;
use crate::ops::portal::{Names, NewLink, Overview, RequestDetail, UnsubscribeHolder};

fn code(language: Language) -> &'static str {
    match language {
        Language::English => "en",
        Language::French => "fr",
    }
}

fn render(name: &str, context: impl Serialize) -> String {
    crate::templates::render(name, context).unwrap_or_else(|error| {
        tracing::error!(%error, template = name, "a portal page does not render");
        String::from("<!doctype html><title>Rappel</title><p>Rappel</p>")
    })
}

/// A page saying one thing.
pub fn message(language: Language, heading: &str, paragraphs: &[&str]) -> String {
    crate::templates::message_page(code(language), heading, heading, paragraphs)
}

/// Why the new-link page is shown.
#[derive(Debug, Clone, Copy)]
pub enum NewLinkReason {
    /// The link was unknown, expired or revoked.
    Expired,
    /// No session (never signed in on this device, signed out, or expired).
    SignedOut,
    /// The visitor asked.
    Asked,
}

/// The page that offers "send me a new link", or says it was sent.
pub fn new_link(
    language: Language,
    reason: NewLinkReason,
    error: Option<&str>,
    sent: bool,
    link_days: u32,
) -> String {
    let en = language == Language::English;
    let (heading, why) = match reason {
        NewLinkReason::Expired if en => (
            "Link expired",
            "This link has expired or is not valid. Enter your email address: we will send you a new one.",
        ),
        NewLinkReason::Expired => (
            "Lien expiré",
            "Ce lien a expiré ou n'est pas valide. Saisissez votre adresse email : nous vous en envoyons un nouveau.",
        ),
        NewLinkReason::SignedOut if en => (
            "Sign in",
            "Open the link of your last email, or ask for a new one.",
        ),
        NewLinkReason::SignedOut => (
            "Connexion",
            "Ouvrez le lien de votre dernier email, ou demandez-en un nouveau.",
        ),
        NewLinkReason::Asked if en => ("A new link", ""),
        NewLinkReason::Asked => ("Un nouveau lien", ""),
    };
    render(
        "portal_new_link.html",
        context! {
            lang => code(language), title => heading, heading, reason => why, error, sent, link_days,
        },
    )
}

/// The button page of an emailed link.
pub fn sign_in(language: Language, token: &str, request: Option<&str>) -> String {
    let title = if language == Language::English {
        "Your requests"
    } else {
        "Vos demandes"
    };
    render(
        "sign_in.html",
        context! { lang => code(language), title, token, request => request.unwrap_or_default() },
    )
}

/// A request as a page shows it.
#[derive(Serialize)]
struct RequestView {
    id: i64,
    text: String,
    period: String,
    due_date: String,
    overdue: bool,
    status_words: &'static str,
}

fn status_words(status: RequestStatus, language: Language) -> &'static str {
    match (status, language) {
        (RequestStatus::Open, Language::English) => "Waiting for your answer",
        (RequestStatus::Open, Language::French) => "En attente de votre réponse",
        (RequestStatus::Answered, Language::English) => "Answered",
        (RequestStatus::Answered, Language::French) => "Répondu",
        (RequestStatus::Closed, Language::English) => "Closed by the firm",
        (RequestStatus::Closed, Language::French) => "Clôturé par le cabinet",
        (RequestStatus::Cancelled, Language::English) => "Withdrawn",
        (RequestStatus::Cancelled, Language::French) => "Retiré",
    }
}

fn view(
    request: &InformationRequest,
    period: Option<&String>,
    language: Language,
    today: NaiveDate,
) -> RequestView {
    RequestView {
        id: request.id,
        text: request.text.clone(),
        period: period.cloned().unwrap_or_default(),
        due_date: request.due_date.to_string(),
        overdue: request.status == RequestStatus::Open && request.due_date < today,
        status_words: status_words(request.status, language),
    }
}

/// The list of the client's requests.
pub fn home(language: Language, overview: &Overview, csrf: &str, today: NaiveDate) -> String {
    let open: Vec<RequestView> = overview
        .open
        .iter()
        .map(|request| view(request, overview.periods.get(&request.id), language, today))
        .collect();
    let done: Vec<RequestView> = overview
        .done
        .iter()
        .map(|request| view(request, overview.periods.get(&request.id), language, today))
        .collect();
    let title = if language == Language::English {
        "Your requests"
    } else {
        "Vos demandes"
    };
    render(
        "portal_home.html",
        context! {
            lang => code(language), title, firm_name => &overview.firm_name,
            client_name => &overview.client_name, open, done, csrf,
        },
    )
}

#[derive(Serialize)]
struct AnswerView {
    date: String,
    message: Option<String>,
    nothing_to_report: bool,
    files: Vec<FileView>,
}

/// One request: what was already sent, and the answer form while the firm has not closed it.
pub fn request(
    language: Language,
    names: &Names,
    detail: &RequestDetail,
    csrf: &str,
    sent: bool,
    error: Option<&str>,
    today: NaiveDate,
) -> String {
    let request = &detail.request;
    let answers: Vec<AnswerView> = detail
        .answers
        .iter()
        .map(|answer| AnswerView {
            date: answer.created_at.date().to_string(),
            message: answer.message.clone(),
            nothing_to_report: answer.nothing_to_report,
            files: detail
                .files
                .iter()
                .filter(|file| file.answer_id == answer.id)
                .map(|file| FileView {
                    id: file.id,
                    name: file.name.clone(),
                    size: size_words(file.size_bytes, language),
                })
                .collect(),
        })
        .collect();
    render(
        "portal_request.html",
        context! {
            lang => code(language), title => &request.text, firm_name => &names.firm_name,
            client_name => &names.client_name,
            request => view(request, Some(&detail.period), language, today),
            answers, csrf, sent, error, script => true,
            can_answer => matches!(request.status, RequestStatus::Open | RequestStatus::Answered),
        },
    )
}

/// A file's size as a person reads it: "830 o", "12 Ko", "2,4 Mo" / "830 B", "12 KB", "2.4 MB".
fn size_words(bytes: i64, language: Language) -> String {
    let (unit_bytes, unit_kilo, unit_mega) = match language {
        Language::French => ("o", "Ko", "Mo"),
        Language::English => ("B", "KB", "MB"),
    };
    if bytes < 1024 {
        return format!("{bytes} {unit_bytes}");
    }
    if bytes < 1024 * 1024 {
        return format!("{} {unit_kilo}", (bytes + 512) / 1024);
    }
    let mega = format!("{:.1}", bytes as f64 / (1024.0 * 1024.0));
    let mega = match language {
        Language::French => mega.replace('.', ","),
        Language::English => mega,
    };
    format!("{mega} {unit_mega}")
}

#[derive(Serialize)]
struct FileView {
    id: i64,
    name: String,
    size: String,
}

/// What an answer's refusal says to the contact.
pub fn answer_error(language: Language, error: &OpError) -> String {
    let OpError::BadUserInput { field, message } = error else {
        return error.message();
    };
    match (field.as_deref(), language) {
        (Some("message"), Language::English) if message.starts_with("write") => {
            "Write a message, add a file, or press “Nothing to report”.".into()
        }
        (Some("message"), Language::French) if message.starts_with("write") => {
            "Écrivez un message, joignez un fichier, ou appuyez sur « Rien à signaler ».".into()
        }
        (Some("id"), Language::English) => {
            "The firm closed this request: contact it if something is missing.".into()
        }
        (Some("id"), Language::French) => {
            "Le cabinet a clôturé cette demande : contactez-le s'il manque quelque chose.".into()
        }
        _ => message.clone(),
    }
}

/// After signing out.
pub fn signed_out(language: Language) -> String {
    let title = if language == Language::English {
        "Signed out"
    } else {
        "Déconnecté"
    };
    render(
        "portal_signed_out.html",
        context! { lang => code(language), title },
    )
}

/// The unsubscribe pages: `state` is `confirm`, `done`, `undone` or `invalid`.
pub fn unsubscribe(state: &str, holder: Option<&UnsubscribeHolder>, token: &str) -> String {
    let language = holder.map_or(Language::French, |holder| holder.language);
    let title = if language == Language::English {
        "Unsubscribe"
    } else {
        "Se désabonner"
    };
    render(
        "unsubscribe.html",
        context! {
            lang => code(language), title, state, token => token.trim(),
            email => holder.map(|holder| holder.contact.email.clone()),
            firm_name => holder.map(|holder| holder.firm_name.clone()),
        },
    )
}

/// Emails each new link (after the page answered). Failures are logged with the contact's
/// domain only.
pub async fn send_new_links(options: PortalOptions, links: Vec<NewLink>) {
    if links.is_empty() {
        return;
    }
    let mailer = match crate::delivery::mailer::Mailer::from_config(&options.smtp) {
        Ok(mailer) => mailer,
        Err(error) => {
            tracing::error!(%error, "cannot send portal links");
            return;
        }
    };
    for link in links {
        let url = format!("{}/sign-in?token={}", options.public_base_url, link.token);
        let context = context! {
            lang => code(link.language), firm_name => &link.firm_name,
            contact_name => &link.contact_name, url, link_days => options.link_days,
        };
        let rendered = (|| {
            Ok::<_, minijinja::Error>(crate::delivery::email::RenderedEmail {
                subject: crate::templates::render("portal_link.subject", &context)?
                    .trim()
                    .to_string(),
                text: crate::templates::render("portal_link.txt", &context)?,
                html: crate::templates::render("portal_link.html", &context)?,
            })
        })();
        let rendered = match rendered {
            Ok(rendered) => rendered,
            Err(error) => {
                tracing::error!(%error, "the portal link email does not render");
                continue;
            }
        };
        let domain = options
            .smtp
            .from_address
            .rsplit_once('@')
            .map_or("rappel.invalid", |(_, domain)| domain);
        let message_id = format!("portal-link-{}@{domain}", uuid::Uuid::new_v4());
        let message = match crate::delivery::email::build_plain_message(
            &options.smtp.from_address,
            &link.firm_name,
            (&link.contact_name, &link.to),
            rendered,
            &message_id,
            chrono::Utc::now(),
        ) {
            Ok(message) => message,
            Err(error) => {
                tracing::error!(%error, "cannot build a portal link email");
                continue;
            }
        };
        if let Err(error) = mailer.send(&message, &link.to).await {
            let to_domain = link.to.rsplit_once('@').map_or("", |(_, domain)| domain);
            tracing::error!(%error, to_domain, "cannot send a portal link email");
        }
    }
}
