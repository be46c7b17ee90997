//! Follow-up reminders: the dates a service's policy gives an open request (days before the
//! due date, on the due date, then every N days after, at most M in all), computed in the
//! firm's local calendar, and the periodic pass that enqueues each reminder once (an email per
//! notified contact and the `information_request.reminder` webhooks), with the reminder's
//! date in its dedupe key. Reminders sent at once ("remind now") count against the policy's
//! maximum like the scheduled ones. A pass missed, doubled or run on two instances changes nothing.
//! It never enqueues for an answered, closed or cancelled request, an archived client, an
//! archived contact or one whose notifications the firm turned off; a contact who unsubscribed
//! with its link gets its reminders enqueued and recorded SKIPPED by the worker, so the firm
//! sees them; and it never sends anything itself (the worker checks again at send time).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};

use super::client_email_time;
use crate::announce::{Occurrence, Recipients, deliveries_for_event};
use crate::config::Config;
use crate::db::claims::{self, ReminderCandidate};
use crate::db::clients::{self, Contact};
use crate::db::firms::{self, Firm};
use crate::db::outbox::{self, NewDelivery};
use crate::db::{DbError, Pool};
use crate::domain::DeliveryEvent;
use crate::domain::calendar::parse_time_zone;
use crate::generation::firm_today;
use crate::ops::remind::reminders_counted;
use crate::transaction;

/// Most dedupe keys looked up in one query.
const KEYS_PER_QUERY: usize = 500;

/// When a request's reminders go out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReminderPolicy {
    /// Days before the due date of the first reminder; 0: none before.
    pub days_before: u32,
    /// A reminder on the due date.
    pub on_due_date: bool,
    /// Then one every N days after the due date; 0: none after.
    pub every_days: u32,
    /// At most this many reminders in all.
    pub max_count: u32,
}

impl ReminderPolicy {
    /// The firm-wide default of a configuration.
    pub fn from_config(config: &Config) -> Self {
        Self {
            days_before: config.delivery.reminder_days_before,
            on_due_date: config.delivery.reminder_on_due_date,
            every_days: config.delivery.reminder_every_days,
            max_count: config.delivery.reminder_max_count,
        }
    }

    /// This policy with a service's own values where it sets them.
    pub fn with_overrides(
        &self,
        days_before: Option<i32>,
        on_due_date: Option<bool>,
        every_days: Option<i32>,
        max_count: Option<i32>,
    ) -> Self {
        let read = |value: Option<i32>, default: u32| {
            value
                .and_then(|value| u32::try_from(value).ok())
                .unwrap_or(default)
        };
        Self {
            days_before: read(days_before, self.days_before),
            on_due_date: on_due_date.unwrap_or(self.on_due_date),
            every_days: read(every_days, self.every_days),
            max_count: read(max_count, self.max_count),
        }
    }
}

/// The dates of a request's reminders, in order, numbered from 1 by position: the policy's
/// dates strictly after `first_sent_on` (the day the request itself went out: no reminder the
/// same day, none for periods before it), at most `max_count`.
pub fn reminder_dates(
    due_date: NaiveDate,
    policy: &ReminderPolicy,
    first_sent_on: NaiveDate,
) -> Vec<NaiveDate> {
    let limit = usize::try_from(policy.max_count).unwrap_or(usize::MAX);
    let mut dates = Vec::new();
    let push = |date: Option<NaiveDate>, dates: &mut Vec<NaiveDate>| {
        if let Some(date) = date.filter(|date| *date > first_sent_on) {
            if dates.len() < limit && dates.last().is_none_or(|last| *last < date) {
                dates.push(date);
            }
        }
    };
    if policy.days_before > 0 {
        push(
            due_date.checked_sub_days(chrono::Days::new(u64::from(policy.days_before))),
            &mut dates,
        );
    }
    if policy.on_due_date {
        push(Some(due_date), &mut dates);
    }
    if policy.every_days > 0 {
        let every = i64::from(policy.every_days);
        // The first repeat after `first_sent_on`: a request created long after its due date
        // (a catch-up) starts its repeats from then, not from the due date.
        let first = ((first_sent_on - due_date).num_days() / every + 1).max(1);
        let mut k = first;
        while dates.len() < limit {
            let Some(date) = due_date.checked_add_signed(chrono::Duration::days(k * every)) else {
                break;
            };
            push(Some(date), &mut dates);
            k += 1;
        }
    }
    dates
}

/// The reminder to send on `today`: the latest of `dates` on or before it, with its number.
/// Missed reminders are not sent in a burst: after downtime only the latest one goes out.
pub fn reminder_due(dates: &[NaiveDate], today: NaiveDate) -> Option<u32> {
    let position = dates.iter().rposition(|date| *date <= today)?;
    u32::try_from(position + 1).ok()
}

/// What a reminder pass needs from the configuration.
#[derive(Debug, Clone)]
pub struct ReminderSettings {
    /// The policy of services that set none.
    pub defaults: ReminderPolicy,
    /// Local hour client emails leave at when the firm sets none.
    pub default_sending_hour: u32,
    /// Requests read per batch.
    pub batch_size: i64,
}

impl ReminderSettings {
    /// The settings of a configuration.
    pub fn from_config(config: &Config) -> Self {
        Self {
            defaults: ReminderPolicy::from_config(config),
            default_sending_hour: config.delivery.sending_hour,
            batch_size: i64::from(config.scheduler.batch_size.max(1)),
        }
    }
}

/// What a reminder pass enqueued.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReminderReport {
    pub firms: usize,
    pub requests_examined: usize,
    /// Requests that got a new reminder.
    pub reminders: usize,
    pub deliveries_enqueued: usize,
}

/// Runs a reminder pass over every firm, each on its own local date at `now` (or `as_of`).
pub async fn run_pass(
    pool: &Pool,
    settings: &ReminderSettings,
    now: DateTime<Utc>,
    as_of: Option<NaiveDate>,
) -> Result<ReminderReport, DbError> {
    let firm_list = {
        let mut conn = pool.get().await?;
        firms::list_firms(&mut conn.as_db()).await?
    };
    let mut report = ReminderReport::default();
    for firm in &firm_list {
        let today = as_of.unwrap_or_else(|| firm_today(firm, now));
        let firm_report = remind_firm(pool, settings, firm, today, now).await?;
        report.firms += 1;
        report.requests_examined += firm_report.requests_examined;
        report.reminders += firm_report.reminders;
        report.deliveries_enqueued += firm_report.deliveries_enqueued;
    }
    Ok(report)
}

/// Enqueues the reminders of one firm due on `today`.
async fn remind_firm(
    pool: &Pool,
    settings: &ReminderSettings,
    firm: &Firm,
    today: NaiveDate,
    now: DateTime<Utc>,
) -> Result<ReminderReport, DbError> {
    let zone = parse_time_zone(&firm.time_zone).unwrap_or(chrono_tz::Europe::Paris);
    let email_time = client_email_time(firm, now, settings.default_sending_hour).naive_utc();
    let mut report = ReminderReport::default();
    let mut conn = pool.get().await?;
    let endpoints: Vec<_> = outbox::list_endpoints(&mut conn.as_db(), firm.id)
        .await?
        .into_iter()
        .filter(|endpoint| endpoint.enabled)
        .collect();
    let batch_size = settings.batch_size.max(1);
    let mut after_id = 0;
    loop {
        let candidates =
            claims::reminder_candidates(&mut conn.as_db(), firm.id, today, after_id, batch_size)
                .await?;
        let Some(last) = candidates.last() else { break };
        after_id = last.request.id;
        report.requests_examined += candidates.len();
        let due: Vec<(&ReminderCandidate, u32, NaiveDate)> = candidates
            .iter()
            .filter_map(|candidate| {
                let request = &candidate.request;
                let policy = settings.defaults.with_overrides(
                    candidate.days_before,
                    candidate.on_due_date,
                    candidate.every_days,
                    candidate.max_count,
                );
                let created_locally = request
                    .created_at
                    .and_utc()
                    .with_timezone(&zone)
                    .date_naive();
                let first_sent_on = request.created_on.max(created_locally);
                let dates = reminder_dates(request.due_date, &policy, first_sent_on);
                reminder_due(&dates, today).and_then(|number| {
                    let date = *dates.get(usize::try_from(number).ok()?.checked_sub(1)?)?;
                    Some((candidate, number, date))
                })
            })
            .collect();
        // Reminders already given (scheduled ones and those sent at once with "remind now")
        // count against the policy's maximum: a scheduled reminder not yet given is dropped
        // once the request had max_count, and otherwise numbered after those given.
        let due = if due.is_empty() {
            due
        } else {
            let ids: Vec<i64> = due.iter().map(|(c, _, _)| c.request.id).collect();
            let mut keys: HashMap<i64, Vec<String>> = HashMap::new();
            for chunk in ids.chunks(KEYS_PER_QUERY) {
                for (id, key) in
                    claims::reminder_keys_of_requests(&mut conn.as_db(), firm.id, chunk).await?
                {
                    keys.entry(id).or_default().push(key);
                }
            }
            due.into_iter()
                .filter_map(|(candidate, number, date)| {
                    let given = keys
                        .get(&candidate.request.id)
                        .map_or(&[][..], Vec::as_slice);
                    let suffix = format!(":{date}");
                    if given.iter().any(|key| key.ends_with(&suffix)) {
                        // Already (partly) enqueued: only its missing recipients, same number.
                        return Some((candidate, number, date));
                    }
                    let sent = reminders_counted(given);
                    let policy = settings.defaults.with_overrides(
                        candidate.days_before,
                        candidate.on_due_date,
                        candidate.every_days,
                        candidate.max_count,
                    );
                    (sent < policy.max_count).then(|| (candidate, number.max(sent + 1), date))
                })
                .collect()
        };
        if !due.is_empty() {
            let mut client_ids: Vec<i64> =
                due.iter().map(|(c, _, _)| c.request.client_id).collect();
            client_ids.sort_unstable();
            client_ids.dedup();
            let mut contacts: HashMap<i64, Vec<Contact>> = HashMap::new();
            for contact in
                clients::list_notified_contacts_of_clients(&mut conn.as_db(), firm.id, &client_ids)
                    .await?
            {
                contacts.entry(contact.client_id).or_default().push(contact);
            }
            let rows: Vec<NewDelivery> = due
                .iter()
                .flat_map(|(candidate, number, date)| {
                    let recipients = Recipients {
                        contacts: contacts
                            .get(&candidate.request.client_id)
                            .map_or(&[][..], Vec::as_slice),
                        endpoints: &endpoints,
                    };
                    deliveries_for_event(
                        &candidate.request,
                        DeliveryEvent::RequestReminder,
                        &recipients,
                        now,
                        email_time,
                        Occurrence::Reminder {
                            number: *number,
                            date: *date,
                        },
                    )
                })
                .collect();
            let mut existing = HashSet::new();
            let keys: Vec<String> = rows.iter().map(|row| row.dedupe_key.clone()).collect();
            for chunk in keys.chunks(KEYS_PER_QUERY) {
                existing.extend(claims::existing_dedupe_keys(&mut conn.as_db(), chunk).await?);
            }
            let new_rows: Vec<NewDelivery> = rows
                .into_iter()
                .filter(|row| !existing.contains(&row.dedupe_key))
                .collect();
            if !new_rows.is_empty() {
                let reminded: HashSet<Option<i64>> =
                    new_rows.iter().map(|row| row.request_id).collect();
                let enqueued =
                    transaction!(conn, |tx| outbox::enqueue_many(&mut tx, &new_rows).await)?;
                report.reminders += reminded.len();
                report.deliveries_enqueued += enqueued;
            }
        }
        if i64::try_from(candidates.len()).unwrap_or(i64::MAX) < batch_size {
            break;
        }
    }
    ::metrics::counter!("rappel_reminders_enqueued_total")
        .increment(report.deliveries_enqueued as u64);
    if report.deliveries_enqueued > 0 {
        tracing::info!(
            firm_id = firm.id,
            %today,
            requests = report.reminders,
            deliveries = report.deliveries_enqueued,
            "reminders enqueued"
        );
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        text.parse().expect("valid date")
    }

    fn policy(
        days_before: u32,
        on_due_date: bool,
        every_days: u32,
        max_count: u32,
    ) -> ReminderPolicy {
        ReminderPolicy {
            days_before,
            on_due_date,
            every_days,
            max_count,
        }
    }

    fn texts(dates: &[NaiveDate]) -> Vec<String> {
        dates.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn the_default_policy_reminds_three_days_before_on_the_due_date_then_weekly() {
        let dates = reminder_dates(day("2027-01-30"), &policy(3, true, 7, 5), day("2027-01-20"));
        assert_eq!(
            texts(&dates),
            [
                "2027-01-27",
                "2027-01-30",
                "2027-02-06",
                "2027-02-13",
                "2027-02-20"
            ]
        );
    }

    #[test]
    fn at_most_max_count_reminders_are_given_and_zero_means_none() {
        let dates = reminder_dates(day("2027-01-30"), &policy(3, true, 7, 3), day("2027-01-20"));
        assert_eq!(texts(&dates), ["2027-01-27", "2027-01-30", "2027-02-06"]);
        assert!(
            reminder_dates(day("2027-01-30"), &policy(3, true, 7, 0), day("2027-01-20")).is_empty()
        );
    }

    #[test]
    fn no_reminder_falls_on_or_before_the_day_the_request_went_out() {
        // Created two days before the due date: "3 days before" would precede it.
        let dates = reminder_dates(day("2027-01-30"), &policy(3, true, 7, 3), day("2027-01-28"));
        assert_eq!(texts(&dates), ["2027-01-30", "2027-02-06", "2027-02-13"]);
        // Created on the due date: the first reminder is the first repeat.
        let dates = reminder_dates(day("2027-01-30"), &policy(3, true, 7, 2), day("2027-01-30"));
        assert_eq!(texts(&dates), ["2027-02-06", "2027-02-13"]);
    }

    #[test]
    fn a_request_caught_up_long_after_its_due_date_repeats_from_when_it_went_out() {
        let dates = reminder_dates(day("2027-01-30"), &policy(3, true, 7, 2), day("2027-04-01"));
        assert_eq!(texts(&dates), ["2027-04-03", "2027-04-10"]);
    }

    #[test]
    fn without_repeats_only_the_dates_before_and_on_the_due_date_remain() {
        let dates = reminder_dates(
            day("2027-01-30"),
            &policy(5, true, 0, 10),
            day("2027-01-01"),
        );
        assert_eq!(texts(&dates), ["2027-01-25", "2027-01-30"]);
        let dates = reminder_dates(
            day("2027-01-30"),
            &policy(0, false, 0, 10),
            day("2027-01-01"),
        );
        assert!(dates.is_empty());
    }

    #[test]
    fn months_and_leap_days_are_counted_in_calendar_days() {
        let dates = reminder_dates(
            day("2028-03-01"),
            &policy(2, false, 1, 3),
            day("2028-02-01"),
        );
        assert_eq!(texts(&dates), ["2028-02-28", "2028-03-02", "2028-03-03"]);
    }

    #[test]
    fn the_reminder_due_today_is_the_latest_one_reached_and_missed_ones_are_not_sent_in_a_burst() {
        let dates = reminder_dates(day("2027-01-30"), &policy(3, true, 7, 3), day("2027-01-20"));
        assert_eq!(reminder_due(&dates, day("2027-01-26")), None);
        assert_eq!(reminder_due(&dates, day("2027-01-27")), Some(1));
        assert_eq!(reminder_due(&dates, day("2027-01-29")), Some(1));
        assert_eq!(reminder_due(&dates, day("2027-01-30")), Some(2));
        assert_eq!(reminder_due(&dates, day("2027-03-30")), Some(3));
    }

    #[test]
    fn a_service_policy_overrides_the_firm_default_field_by_field() {
        let defaults = policy(3, true, 7, 3);
        assert_eq!(
            defaults.with_overrides(Some(1), None, Some(2), None),
            policy(1, true, 2, 3)
        );
        assert_eq!(
            defaults.with_overrides(None, Some(false), None, Some(0)),
            policy(3, false, 7, 0)
        );
    }
}
