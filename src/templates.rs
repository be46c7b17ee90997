//! HTML pages and email bodies from the templates in `templates/`, compiled into the binary,
//! through one engine (minijinja) and so one escaper: a template whose name ends in `.html`
//! escapes every value it prints; `.txt` and `.subject` templates print text as it is (their
//! callers put it in a text body or a header, which lettre encodes).
//!
//! Adding a template: put the file in `templates/`, add its name to [`TEMPLATES`].
//!
//! Filters every template may use:
//! - `long_date(lang)`: an ISO date (`2027-01-30`) spelled out, "30 janvier 2027" /
//!   "January 30, 2027".

use std::sync::LazyLock;

use chrono::NaiveDate;
use minijinja::{Environment, Error, ErrorKind};
use serde::Serialize;

use crate::domain::Language;

/// Every template, by name, with its source.
macro_rules! templates {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../templates/", $name)))),*]
    };
}

const TEMPLATES: &[(&str, &str)] = templates![
    "answer_notice.html",
    "answer_notice.subject",
    "answer_notice.txt",
    "layout.html",
    "message.html",
    "sign_in.html",
    // The client portal (src/portal).
    "portal_home.html",
    "portal_request.html",
    "portal_new_link.html",
    "portal_signed_out.html",
    "portal_link.subject",
    "portal_link.txt",
    "portal_link.html",
    "unsubscribe.html",
    // Emails (src/delivery/email.rs): request, reminder, endpoint notice.
    "email/created.fr.subject",
    "email/created.fr.txt",
    "email/created.fr.html",
    "email/created.en.subject",
    "email/created.en.txt",
    "email/created.en.html",
    "email/reminder.fr.subject",
    "email/reminder.fr.txt",
    "email/reminder.fr.html",
    "email/reminder.en.subject",
    "email/reminder.en.txt",
    "email/reminder.en.html",
    "email/endpoint_disabled.fr.subject",
    "email/endpoint_disabled.fr.txt",
    "email/endpoint_disabled.fr.html",
    "email/endpoint_disabled.en.subject",
    "email/endpoint_disabled.en.txt",
    "email/endpoint_disabled.en.html",
    // The firm's day: the staff's daily digest.
    "digest.txt",
    "digest.html",
    // Replies by email: the confirmation a client gets.
    "reply_received.subject",
    "reply_received.txt",
    "reply_received.html",
];

static ENGINE: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    // Templates end as their files end (an email body keeps its last line break).
    env.set_keep_trailing_newline(true);
    // The one escaper of the crate: every value an `.html` template prints goes through
    // `escape_html`, unless the caller marked it safe (already escaped by `escape_html`).
    env.set_formatter(|out, state, value| {
        if matches!(state.auto_escape(), minijinja::AutoEscape::Html) && !value.is_safe() {
            if let Some(text) = value.as_str() {
                return out
                    .write_str(&escape_html(text))
                    .map_err(|_| Error::new(ErrorKind::WriteFailure, "cannot write"));
            }
        }
        minijinja::escape_formatter(out, state, value)
    });
    for (name, source) in TEMPLATES {
        if let Err(error) = env.add_template(name, source) {
            // The templates are part of the binary; a test renders each one.
            panic!("template {name} does not compile: {error:#}");
        }
    }
    env.add_filter("long_date", long_date);
    env
});

/// Escapes text for HTML element content and quoted attributes: `&`, `<`, `>`, `"` and `'`.
/// The engine prints every value of an `.html` template through it.
pub fn escape_html(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 16);
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// The language a template is asked to write in (`"fr"` or `"en"`; French otherwise).
pub fn language(code: &str) -> Language {
    if code == "en" {
        Language::English
    } else {
        Language::French
    }
}

fn long_date(value: String, lang: Option<String>) -> Result<String, Error> {
    let date = NaiveDate::parse_from_str(&value, "%Y-%m-%d").map_err(|_| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("long_date expects a date such as 2027-01-30, not {value:?}"),
        )
    })?;
    Ok(crate::delivery::email::format_due_date(
        date,
        language(lang.as_deref().unwrap_or("fr")),
    ))
}

/// Renders the template `name` with `context` (any serde value: a struct, or
/// `minijinja::context! { ... }`).
pub fn render(name: &str, context: impl Serialize) -> Result<String, Error> {
    ENGINE.get_template(name)?.render(context)
}

/// A small page saying one thing: a heading and paragraphs of text.
pub fn message_page(lang: &str, title: &str, heading: &str, paragraphs: &[&str]) -> String {
    render(
        "message.html",
        minijinja::context! { lang, title, heading, paragraphs },
    )
    .unwrap_or_else(|error| {
        tracing::error!(%error, "the message page does not render");
        String::from("<!doctype html><title>Rappel</title><p>Rappel</p>")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_compiles() {
        for (name, _) in TEMPLATES {
            assert!(ENGINE.get_template(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn html_templates_escape_what_they_print() {
        let page = render(
            "sign_in.html",
            minijinja::context! { title => "Rappel", lang => "fr", request => "", token => "\"><script>x</script>" },
        )
        .expect("renders");
        assert!(!page.contains("<script>x"), "{page}");
        assert!(page.contains("&quot;&gt;&lt;script&gt;"), "{page}");
    }

    #[test]
    fn long_date_spells_the_date_in_the_language() {
        let page = message_page("en", "t", "h", &[]);
        assert!(page.contains("lang=\"en\""), "{page}");
        assert_eq!(
            long_date("2027-01-30".into(), Some("fr".into())).expect("date"),
            "30 janvier 2027"
        );
        assert_eq!(
            long_date("2027-01-30".into(), Some("en".into())).expect("date"),
            "January 30, 2027"
        );
        assert!(long_date("soon".into(), None).is_err());
    }
}
