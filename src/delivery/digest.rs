//! The staff's daily digest: once the firm's local sending hour has come, each active member
//! who did not turn it off gets one email for the firm's local day: their overdue tasks, those
//! due today and this week, the requests answered since their last digest awaiting review,
//! and (admins only) the deliveries that failed meanwhile. Nothing is sent when there is
//! nothing to say. A `digests_sent` row keyed by (member, local date) is claimed before
//! sending, so several instances or doubled passes send one digest; a failed send gives the
//! claim back for the next pass. The sending is journaled (`digest.sent`, actor SYSTEM).
//!
//! Never here: a client's data beyond the names staff already see, or a token in a log.

use chrono::{DateTime, Duration, NaiveDate, Timelike, Utc};
use lettre::Message;
use lettre::message::{Mailbox, MultiPart};
use serde::Serialize;

use super::email::Mailer;
use super::firm_language;
use crate::config::Config;
use crate::db::firms::{self, Firm, User};
use crate::db::journal::{self, NewJournalEntry};
use crate::db::{DbError, Pool, digests};
use crate::domain::calendar::parse_time_zone;
use crate::domain::{Language, Role};

/// What a digest pass needs from the configuration.
#[derive(Debug, Clone)]
pub struct DigestSettings {
    /// Local hour the digest leaves at when the firm sets none.
    pub default_sending_hour: u32,
    /// Envelope sender and From address.
    pub from_address: String,
}

impl DigestSettings {
    pub fn from_config(config: &Config) -> Self {
        Self {
            default_sending_hour: config.delivery.sending_hour,
            from_address: config.smtp.from_address.clone(),
        }
    }
}

/// What a digest pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DigestReport {
    /// Firms whose sending hour had come.
    pub firms: usize,
    pub sent: usize,
    /// Members with nothing to say: no email.
    pub empty: usize,
    /// Sends that failed (tried again next pass).
    pub failed: usize,
}

/// One line of a digest.
#[derive(Debug, Clone, Serialize)]
struct Item {
    title: String,
    client: String,
    due: String,
}

/// What one member's digest says.
#[derive(Debug, Default, Serialize)]
struct Digest {
    overdue: Vec<Item>,
    due_today: Vec<Item>,
    due_week: Vec<Item>,
    answered: Vec<Item>,
    failed: i64,
}

impl Digest {
    fn is_empty(&self) -> bool {
        self.overdue.is_empty()
            && self.due_today.is_empty()
            && self.due_week.is_empty()
            && self.answered.is_empty()
            && self.failed == 0
    }
}

/// Runs a digest pass over every firm at `now`.
pub async fn run_pass(
    pool: &Pool,
    mailer: &Mailer,
    settings: &DigestSettings,
    now: DateTime<Utc>,
) -> Result<DigestReport, DbError> {
    let firm_list = {
        let mut conn = pool.get().await?;
        firms::list_firms(&mut conn.as_db()).await?
    };
    let mut report = DigestReport::default();
    for firm in &firm_list {
        let zone = parse_time_zone(&firm.time_zone).unwrap_or(chrono_tz::Europe::Paris);
        let local = now.with_timezone(&zone);
        let hour = firm
            .sending_hour
            .and_then(|hour| u32::try_from(hour).ok())
            .unwrap_or(settings.default_sending_hour);
        if local.hour() < hour {
            continue;
        }
        report.firms += 1;
        let today = local.date_naive();
        let users = {
            let mut conn = pool.get().await?;
            firms::list_users(&mut conn.as_db(), firm.id).await?
        };
        for user in users.iter().filter(|user| user.archived_at.is_none()) {
            digest_member(pool, mailer, settings, firm, user, today, now, &mut report).await?;
        }
    }
    if report.sent > 0 || report.failed > 0 {
        tracing::info!(
            sent = report.sent,
            failed = report.failed,
            "daily digests sent"
        );
    }
    Ok(report)
}

#[expect(clippy::too_many_arguments, reason = "one member of one pass")]
async fn digest_member(
    pool: &Pool,
    mailer: &Mailer,
    settings: &DigestSettings,
    firm: &Firm,
    user: &User,
    today: NaiveDate,
    now: DateTime<Utc>,
    report: &mut DigestReport,
) -> Result<(), DbError> {
    let mut conn = pool.get().await?;
    let mut db = conn.as_db();
    if !digests::daily_digest_enabled(&mut db, user.id).await?
        || digests::already_sent(&mut db, user.id, today).await?
    {
        return Ok(());
    }
    let since = digests::last_sent_at(&mut db, user.id)
        .await?
        .unwrap_or_else(|| (now - Duration::days(1)).naive_utc());
    let week_end = today + Duration::days(7);
    let mut digest = Digest::default();
    for (task, client) in
        digests::open_tasks_of_assignee(&mut db, firm.id, user.id, week_end).await?
    {
        let item = Item {
            title: task.title,
            client,
            due: task.due_date.to_string(),
        };
        if task.due_date < today {
            digest.overdue.push(item);
        } else if task.due_date == today {
            digest.due_today.push(item);
        } else {
            digest.due_week.push(item);
        }
    }
    for (request, client) in digests::answered_since(&mut db, firm.id, since).await? {
        digest.answered.push(Item {
            title: request.text.chars().take(120).collect(),
            client,
            due: request.due_date.to_string(),
        });
    }
    if user.role == Role::Admin {
        digest.failed = digests::failed_deliveries_since(&mut db, firm.id, since).await?;
    }
    if digest.is_empty() {
        report.empty += 1;
        return Ok(());
    }
    let sent_at = now.naive_utc();
    if !digests::claim(&mut db, firm.id, user.id, today, sent_at).await? {
        return Ok(());
    }
    let message = match build(settings, firm, user, today, &digest) {
        Ok(message) => message,
        Err(error) => {
            tracing::error!(user_id = user.id, %error, "a daily digest cannot be built");
            report.failed += 1;
            return Ok(());
        }
    };
    match mailer.send(&message, &user.email).await {
        Ok(()) => {
            report.sent += 1;
            let detail = serde_json::json!({ "date": today.to_string() }).to_string();
            journal::insert(
                &mut conn.as_db(),
                &[NewJournalEntry {
                    firm_id: firm.id,
                    occurred_at: sent_at,
                    actor_kind: "SYSTEM",
                    actor_user_id: None,
                    actor_contact_id: None,
                    kind: "digest.sent",
                    object_type: "user",
                    object_id: user.id,
                    client_id: None,
                    mission_id: None,
                    before_status: None,
                    after_status: None,
                    detail: Some(&detail),
                }],
            )
            .await?;
        }
        Err(error) => {
            tracing::warn!(user_id = user.id, error = %error, "a daily digest was not sent; the next pass tries again");
            report.failed += 1;
            digests::unclaim(&mut conn.as_db(), user.id, today).await?;
        }
    }
    Ok(())
}

/// The digest email of one member.
fn build(
    settings: &DigestSettings,
    firm: &Firm,
    user: &User,
    today: NaiveDate,
    digest: &Digest,
) -> Result<Message, String> {
    let lang = match firm_language(firm) {
        Language::English => "en",
        Language::French => "fr",
    };
    let subject = if lang == "en" {
        format!("Your day at {}: {}", firm.name, today)
    } else {
        format!("Votre journée chez {} : {}", firm.name, today)
    };
    let subject: String = subject.chars().filter(|c| !c.is_control()).collect();
    let context = minijinja::context! {
        lang,
        subject => subject.clone(),
        name => user.name.clone(),
        firm => firm.name.clone(),
        today => today.to_string(),
        ..minijinja::Value::from_serialize(digest)
    };
    let text = crate::templates::render("digest.txt", &context).map_err(|e| e.to_string())?;
    let html = crate::templates::render("digest.html", &context).map_err(|e| e.to_string())?;
    let from = settings
        .from_address
        .parse()
        .map_err(|e| format!("sender address: {e}"))?;
    let to = user
        .email
        .parse()
        .map_err(|e| format!("recipient address: {e}"))?;
    let firm_name: String = firm.name.chars().filter(|c| !c.is_control()).collect();
    let user_name: String = user.name.chars().filter(|c| !c.is_control()).collect();
    Message::builder()
        .from(Mailbox::new(Some(firm_name), from))
        .to(Mailbox::new(Some(user_name), to))
        .subject(subject)
        .message_id(Some(format!("<digest.{}.{}@rappel>", user.id, today)))
        .multipart(MultiPart::alternative_plain_html(text, html))
        .map_err(|e| e.to_string())
}
