//! One generation pass: for every line of every SIGNED mission, create the tasks and
//! information requests whose creation date has come (in the firm's local calendar), and in the
//! same transaction enqueue each new request's deliveries. Idempotent through the generation
//! key; bounded memory through batches of lines; safe with several instances at once.
//! It never sends anything itself: the delivery worker does.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};

use crate::announce::{Occurrence, Recipients, deliveries_for_event};
use crate::db::catalog::{self, Service, ServiceItem};
use crate::db::clients::{self, Contact};
use crate::db::firms::{self, Firm};
use crate::db::journal::{self, NewJournalEntry};
use crate::db::missions::{self, SignedLine};
use crate::db::outbox::{self, WebhookEndpoint};
use crate::db::work::InformationRequest;
use crate::db::work::{self, NewInformationRequest, NewTask};
use crate::db::{DbError, Pool};
use crate::domain::calendar::{local_today, next_sending_time, parse_time_zone};
use crate::domain::schedule::{self, LineSchedule, MissionWindow, ScheduleLimits};
use crate::domain::{DeliveryEvent, ItemKind, Language, RequestStatus, TaskStatus, placeholders};
use crate::events::{EventBus, RequestEvent, RequestEventKind};
use crate::transaction;

/// What a pass needs from the configuration.
#[derive(Debug, Clone)]
pub struct GenerationSettings {
    /// Mission lines read and written per transaction.
    pub batch_size: i64,
    /// Local hour at which client emails leave when the firm sets none.
    pub default_sending_hour: u32,
    /// Most tasks and requests written per transaction: long generation work commits in
    /// batches, so other writers (on SQLite, every other firm) wait milliseconds, not seconds.
    pub occurrences_per_transaction: usize,
    /// Bounds on quantities, items, lines and occurrences per preview or signing.
    pub limits: ScheduleLimits,
}

impl Default for GenerationSettings {
    fn default() -> Self {
        Self {
            batch_size: 500,
            default_sending_hour: 8,
            occurrences_per_transaction: 200,
            limits: ScheduleLimits::default(),
        }
    }
}

/// What a pass created.
#[derive(Debug, Default, Clone)]
pub struct GenerationReport {
    pub firms: usize,
    pub lines_examined: usize,
    pub tasks_created: usize,
    pub requests_created: usize,
    pub deliveries_enqueued: usize,
    /// The first requests created (at most [`REPORT_SAMPLE`]), for `rappel generate` to print.
    pub sample: Vec<CreatedRequest>,
    /// Lines skipped because their schedule could not be computed (logged).
    pub lines_in_error: usize,
}

/// Longest pause between two write transactions of one batch on SQLite.
const MAX_PAUSE_BETWEEN_CHUNKS: std::time::Duration = std::time::Duration::from_millis(250);

/// How many created requests a report lists.
pub const REPORT_SAMPLE: usize = 50;

/// One created request, as `rappel generate` prints it.
#[derive(Debug, Clone)]
pub struct CreatedRequest {
    pub id: i64,
    pub firm_id: i64,
    pub client_id: i64,
    pub due_date: NaiveDate,
    pub created_on: NaiveDate,
    pub text: String,
}

impl GenerationReport {
    fn absorb(&mut self, other: GenerationReport) {
        self.firms += other.firms;
        self.lines_examined += other.lines_examined;
        self.tasks_created += other.tasks_created;
        self.requests_created += other.requests_created;
        self.deliveries_enqueued += other.deliveries_enqueued;
        self.lines_in_error += other.lines_in_error;
        let room = REPORT_SAMPLE.saturating_sub(self.sample.len());
        self.sample.extend(other.sample.into_iter().take(room));
    }
}

/// Runs a pass over every firm. Each firm generates for its own local date at `now`, or for
/// `as_of` when given (`rappel generate --as-of`).
pub async fn run_pass(
    pool: &Pool,
    settings: &GenerationSettings,
    now: DateTime<Utc>,
    as_of: Option<NaiveDate>,
    events: Option<&EventBus>,
) -> Result<GenerationReport, DbError> {
    let started = std::time::Instant::now();
    let pass = async {
        let firm_list = {
            let mut conn = pool.get().await?;
            firms::list_firms(&mut conn.as_db()).await?
        };
        let mut report = GenerationReport::default();
        for firm in &firm_list {
            let today = as_of.unwrap_or_else(|| firm_today(firm, now));
            report.absorb(generate_for_firm(pool, settings, firm, today, now, None, events).await?);
        }
        Ok(report)
    };
    let span = tracing::info_span!("generation_pass", as_of = ?as_of);
    let result = tracing::Instrument::instrument(pass, span).await;
    crate::metrics::record_generation_pass(
        result.as_ref().ok().map(
            |report: &GenerationReport| crate::metrics::GenerationFigures {
                lines_scanned: report.lines_examined,
                tasks_created: report.tasks_created,
                requests_created: report.requests_created,
                deliveries_enqueued: report.deliveries_enqueued,
            },
        ),
        started.elapsed(),
    );
    result
}

/// The firm's local date at `now` (Europe/Paris if its stored zone is unreadable).
pub fn firm_today(firm: &Firm, now: DateTime<Utc>) -> NaiveDate {
    let zone = parse_time_zone(&firm.time_zone).unwrap_or(chrono_tz::Europe::Paris);
    local_today(now, zone)
}

/// Generates for one firm (or one mission of it) everything created on or before `today`.
pub async fn generate_for_firm(
    pool: &Pool,
    settings: &GenerationSettings,
    firm: &Firm,
    today: NaiveDate,
    now: DateTime<Utc>,
    mission_id: Option<i64>,
    events: Option<&EventBus>,
) -> Result<GenerationReport, DbError> {
    let mut report = GenerationReport {
        firms: 1,
        ..GenerationReport::default()
    };
    let zone = parse_time_zone(&firm.time_zone).unwrap_or(chrono_tz::Europe::Paris);
    let sending_hour = firm
        .sending_hour
        .and_then(|hour| u32::try_from(hour).ok())
        .unwrap_or(settings.default_sending_hour);
    let email_time = next_sending_time(now, zone, sending_hour).naive_utc();
    let now_naive = now.naive_utc();
    let mut after_id = 0;
    loop {
        let mut conn = pool.get().await?;
        let mut db = conn.as_db();
        let lines = missions::list_signed_lines_to_generate(
            &mut db,
            firm.id,
            mission_id,
            today,
            after_id,
            settings.batch_size.max(1),
        )
        .await?;
        let Some(last) = lines.last() else { break };
        after_id = last.line.id;
        report.lines_examined += lines.len();

        let context = BatchContext::load(&mut db, firm.id, &lines).await?;
        let language = if firm.locale == "en" {
            Language::English
        } else {
            Language::French
        };
        let plan = plan_batch(firm.id, &lines, &context, today, now_naive, language);
        report.lines_in_error += plan.lines_in_error;

        let chunks = plan.into_chunks(settings.occurrences_per_transaction.max(1));
        let last_chunk = chunks.len().saturating_sub(1);
        let mut created = Vec::new();
        for (position, chunk) in chunks.into_iter().enumerate() {
            let started = std::time::Instant::now();
            let (tasks_created, created_now, deliveries_enqueued) = transaction!(conn, |tx| {
                // A mission cancelled or ended while this batch was being planned gets nothing.
                let still_signed =
                    missions::lock_still_signed(&mut tx, firm.id, &chunk.mission_ids()).await?;
                let chunk = chunk.keep_missions(&still_signed);
                let tasks_created = work::insert_tasks_if_new(&mut tx, &chunk.tasks).await?;
                let created = work::insert_requests_if_new(&mut tx, &chunk.requests).await?;
                let deliveries: Vec<_> = created
                    .iter()
                    .flat_map(|request| {
                        let recipients = Recipients {
                            contacts: context
                                .contacts
                                .get(&request.client_id)
                                .map_or(&[][..], Vec::as_slice),
                            endpoints: &context.endpoints,
                        };
                        deliveries_for_event(
                            request,
                            DeliveryEvent::RequestCreated,
                            &recipients,
                            now,
                            email_time,
                            Occurrence::Once,
                        )
                    })
                    .collect();
                let deliveries_enqueued = outbox::enqueue_many(&mut tx, &deliveries).await?;
                let occurrences = generated_occurrences(&chunk, &created, tasks_created);
                let entries: Vec<NewJournalEntry<'_>> = occurrences
                    .iter()
                    .map(|occurrence| occurrence.entry(now_naive))
                    .collect();
                journal::insert(&mut tx, &entries).await?;
                // The watermark moves only with the last chunk, once every row of the lines
                // is in: a pass stopped halfway is completed by the next one (keys dedupe).
                if position == last_chunk {
                    let completed: Vec<i64> = chunk
                        .completed_lines
                        .iter()
                        .map(|(line, _)| *line)
                        .collect();
                    missions::set_generated_through(&mut tx, &completed, today).await?;
                }
                Ok::<_, DbError>((tasks_created, created, deliveries_enqueued))
            })?;
            report.tasks_created += tasks_created;
            report.deliveries_enqueued += deliveries_enqueued;
            created.extend(created_now);
            if position < last_chunk && conn.as_db().is_sqlite() && crate::db::sqlite_writers() > 0
            {
                // SQLite has one writer and another transaction waits for it: leave it free
                // about as long as this chunk held it, so writers sleeping in their busy
                // handler find it free when they retry. Alone, go straight on.
                tokio::time::sleep(started.elapsed().min(MAX_PAUSE_BETWEEN_CHUNKS)).await;
            }
        }

        report.requests_created += created.len();
        for request in &created {
            if report.sample.len() < REPORT_SAMPLE {
                report.sample.push(CreatedRequest {
                    id: request.id,
                    firm_id: request.firm_id,
                    client_id: request.client_id,
                    due_date: request.due_date,
                    created_on: request.created_on,
                    text: request.text.clone(),
                });
            }
            if let Some(events) = events {
                events.publish(RequestEvent {
                    kind: RequestEventKind::Created,
                    firm_id: request.firm_id,
                    client_id: request.client_id,
                    request_id: request.id,
                });
            }
        }
        if lines.len() < usize::try_from(settings.batch_size.max(1)).unwrap_or(usize::MAX) {
            break;
        }
    }
    if report.requests_created + report.tasks_created > 0 {
        tracing::info!(
            firm_id = firm.id,
            %today,
            tasks = report.tasks_created,
            requests = report.requests_created,
            deliveries = report.deliveries_enqueued,
            "generation created occurrences"
        );
    }
    Ok(report)
}

/// One line as [`count_occurrences_to_create`] weighs it.
#[derive(Debug, Clone)]
pub struct PendingLine {
    pub service_id: i64,
    pub schedule: LineSchedule,
    /// Everything created on or before this day exists already (not counted).
    pub generated_through: Option<NaiveDate>,
}

/// How many tasks and requests a pass on `today` would create for each line (same order), as
/// generation computes them: one per item of the line's service per occurrence created after
/// the line's watermark. A line whose schedule cannot be computed counts 0 (generation skips
/// it too). Counts saturate instead of overflowing.
pub async fn count_occurrences_to_create(
    db: &mut crate::db::DbConn<'_>,
    firm_id: i64,
    window: &MissionWindow,
    lines: &[PendingLine],
    today: NaiveDate,
) -> Result<Vec<usize>, DbError> {
    let mut service_ids: Vec<i64> = lines.iter().map(|line| line.service_id).collect();
    service_ids.sort_unstable();
    service_ids.dedup();
    let lead_days: HashMap<i64, u32> = catalog::find_services(db, firm_id, &service_ids)
        .await?
        .into_iter()
        .map(|service| (service.id, u32::try_from(service.lead_days).unwrap_or(0)))
        .collect();
    let mut item_counts: HashMap<i64, usize> = HashMap::new();
    for item in catalog::list_items_of_services(db, &service_ids).await? {
        *item_counts.entry(item.service_id).or_default() += 1;
    }
    Ok(lines
        .iter()
        .map(|line| {
            let Some(lead_days) = lead_days.get(&line.service_id) else {
                return 0;
            };
            let items = item_counts.get(&line.service_id).copied().unwrap_or(0);
            schedule::occurrences_created_by(&line.schedule, window, *lead_days, today).map_or(
                0,
                |occurrences| {
                    occurrences
                        .iter()
                        .filter(|occurrence| {
                            line.generated_through
                                .is_none_or(|through| occurrence.creation_date > through)
                        })
                        .count()
                        .saturating_mul(items)
                },
            )
        })
        .collect())
}

/// Refuses work past `limits.max_occurrences`: `counts` are per line (from
/// [`count_occurrences_to_create`]); the refusal is on `field` and names the heaviest line.
///
/// # Errors
///
/// The refusal, as an input error on `field`.
pub fn check_occurrence_budget(
    field: &str,
    doing: &str,
    counts: &[usize],
    limits: &ScheduleLimits,
) -> Result<(), crate::domain::validation::InvalidInput> {
    let total = counts
        .iter()
        .fold(0usize, |sum, count| sum.saturating_add(*count));
    if total <= limits.max_occurrences {
        return Ok(());
    }
    let heaviest = counts
        .iter()
        .enumerate()
        .max_by_key(|(_, count)| **count)
        .map_or(0, |(index, _)| index);
    Err(crate::domain::validation::InvalidInput::new(
        field,
        format!(
            "{doing} would create {total} tasks and requests at once (line {heaviest} alone: {}); \
             at most {} are accepted: move first due dates later, lower quantities or split the \
             mission",
            counts.get(heaviest).copied().unwrap_or(0),
            limits.max_occurrences
        ),
    ))
}

/// What a batch of lines needs besides the lines: their services, items, notified contacts
/// and the firm's webhook endpoints.
struct BatchContext {
    services: HashMap<i64, Service>,
    items: HashMap<i64, Vec<ServiceItem>>,
    contacts: HashMap<i64, Vec<Contact>>,
    endpoints: Vec<WebhookEndpoint>,
}

impl BatchContext {
    async fn load(
        db: &mut crate::db::DbConn<'_>,
        firm_id: i64,
        lines: &[SignedLine],
    ) -> Result<Self, DbError> {
        let mut service_ids: Vec<i64> = lines.iter().map(|l| l.line.service_id).collect();
        service_ids.sort_unstable();
        service_ids.dedup();
        let mut client_ids: Vec<i64> = lines.iter().map(|l| l.client_id).collect();
        client_ids.sort_unstable();
        client_ids.dedup();
        let services = catalog::find_services(db, firm_id, &service_ids)
            .await?
            .into_iter()
            .map(|service| (service.id, service))
            .collect();
        let mut items: HashMap<i64, Vec<ServiceItem>> = HashMap::new();
        for item in catalog::list_items_of_services(db, &service_ids).await? {
            items.entry(item.service_id).or_default().push(item);
        }
        let mut contacts: HashMap<i64, Vec<Contact>> = HashMap::new();
        for contact in clients::list_notified_contacts_of_clients(db, firm_id, &client_ids).await? {
            contacts.entry(contact.client_id).or_default().push(contact);
        }
        let endpoints = outbox::list_endpoints(db, firm_id)
            .await?
            .into_iter()
            .filter(|endpoint| endpoint.enabled)
            .collect();
        Ok(Self {
            services,
            items,
            contacts,
            endpoints,
        })
    }
}

/// The rows a batch would insert, computed before the transaction opens.
struct BatchPlan {
    tasks: Vec<NewTask>,
    requests: Vec<NewInformationRequest>,
    /// Where each occurrence's rows end in `tasks` and `requests` (counts so far, in order):
    /// an occurrence's rows are consecutive and go into one transaction together, so it has
    /// one journal entry.
    occurrence_ends: Vec<(usize, usize)>,
    /// (line id, mission id) of the lines whose every due occurrence is in the plan.
    completed_lines: Vec<(i64, i64)>,
    lines_in_error: usize,
}

impl BatchPlan {
    /// The missions the plan writes for.
    fn mission_ids(&self) -> Vec<i64> {
        let mut ids: Vec<i64> = self
            .completed_lines
            .iter()
            .map(|(_, mission)| *mission)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// The plan cut into pieces of whole occurrences, at most `rows` tasks and requests each
    /// (an occurrence with more rows than that is a piece of its own), in order, the last
    /// piece carrying the completed lines. Always at least one piece.
    fn into_chunks(self, rows: usize) -> Vec<BatchPlan> {
        let rows = rows.max(1);
        let mut chunks = Vec::new();
        let mut tasks = self.tasks.into_iter();
        let mut requests = self.requests.into_iter();
        let mut ends = self.occurrence_ends.into_iter().peekable();
        let (mut tasks_taken, mut requests_taken) = (0, 0);
        loop {
            let (mut tasks_end, mut requests_end) = (tasks_taken, requests_taken);
            let mut occurrence_ends = Vec::new();
            while let Some(&(task_end, request_end)) = ends.peek() {
                let size = (task_end - tasks_taken) + (request_end - requests_taken);
                if size > rows && !occurrence_ends.is_empty() {
                    break;
                }
                (tasks_end, requests_end) = (task_end, request_end);
                occurrence_ends.push((task_end - tasks_taken, request_end - requests_taken));
                ends.next();
            }
            let chunk_tasks: Vec<NewTask> = tasks.by_ref().take(tasks_end - tasks_taken).collect();
            let chunk_requests: Vec<NewInformationRequest> = requests
                .by_ref()
                .take(requests_end - requests_taken)
                .collect();
            (tasks_taken, requests_taken) = (tasks_end, requests_end);
            let done = ends.peek().is_none();
            let touched: Vec<(i64, i64)> = chunk_tasks
                .iter()
                .map(|task| (task.mission_line_id, task.mission_id))
                .chain(
                    chunk_requests
                        .iter()
                        .map(|request| (request.mission_line_id, request.mission_id)),
                )
                .collect();
            chunks.push(BatchPlan {
                tasks: chunk_tasks,
                requests: chunk_requests,
                occurrence_ends,
                // Earlier pieces list the lines they write for, so `mission_ids` locks the
                // right missions; only the last piece's lines get their watermark moved.
                completed_lines: if done {
                    self.completed_lines.clone()
                } else {
                    touched
                },
                lines_in_error: self.lines_in_error,
            });
            if done {
                return chunks;
            }
        }
    }

    /// The plan without what belongs to missions not in `missions`.
    fn keep_missions(&self, missions: &[i64]) -> BatchPlan {
        let missions: std::collections::HashSet<i64> = missions.iter().copied().collect();
        BatchPlan {
            tasks: self
                .tasks
                .iter()
                .filter(|task| missions.contains(&task.mission_id))
                .cloned()
                .collect(),
            requests: self
                .requests
                .iter()
                .filter(|request| missions.contains(&request.mission_id))
                .cloned()
                .collect(),
            // Written as it is, never cut again.
            occurrence_ends: Vec::new(),
            completed_lines: self
                .completed_lines
                .iter()
                .filter(|(_, mission)| missions.contains(mission))
                .copied()
                .collect(),
            lines_in_error: self.lines_in_error,
        }
    }
}

/// An occurrence a chunk created, as the journal records it.
struct GeneratedOccurrence {
    firm_id: i64,
    client_id: i64,
    mission_id: i64,
    mission_line_id: i64,
    /// `{"dueDate", "copyNumber", "tasks", "requests"}`.
    detail: String,
}

impl GeneratedOccurrence {
    /// Its journal entry: actor SYSTEM, kind `occurrence.generated`, object the mission line.
    fn entry(&self, now: chrono::NaiveDateTime) -> NewJournalEntry<'_> {
        NewJournalEntry {
            firm_id: self.firm_id,
            occurred_at: now,
            actor_kind: "SYSTEM",
            actor_user_id: None,
            actor_contact_id: None,
            kind: "occurrence.generated",
            object_type: "mission_line",
            object_id: self.mission_line_id,
            client_id: Some(self.client_id),
            mission_id: Some(self.mission_id),
            before_status: None,
            after_status: None,
            detail: Some(&self.detail),
        }
    }
}

/// The occurrences (mission line, due date, copy number) this chunk created, with how many
/// tasks and requests each got. Tasks count when every planned task was inserted (a
/// concurrent pass that won some keys journals its own).
fn generated_occurrences(
    chunk: &BatchPlan,
    created: &[InformationRequest],
    tasks_created: usize,
) -> Vec<GeneratedOccurrence> {
    type Key = (i64, NaiveDate, i32);
    // key -> (firm, client, mission, tasks, requests)
    let mut occurrences: std::collections::BTreeMap<Key, (i64, i64, i64, u32, u32)> =
        std::collections::BTreeMap::new();
    if tasks_created == chunk.tasks.len() {
        for task in &chunk.tasks {
            occurrences
                .entry((task.mission_line_id, task.due_date, task.copy_number))
                .or_insert((task.firm_id, task.client_id, task.mission_id, 0, 0))
                .3 += 1;
        }
    }
    for request in created {
        occurrences
            .entry((
                request.mission_line_id,
                request.due_date,
                request.copy_number,
            ))
            .or_insert((request.firm_id, request.client_id, request.mission_id, 0, 0))
            .4 += 1;
    }
    occurrences
        .into_iter()
        .map(
            |(
                (mission_line_id, due_date, copy_number),
                (firm_id, client_id, mission_id, tasks, requests),
            )| {
                GeneratedOccurrence {
                    firm_id,
                    client_id,
                    mission_id,
                    mission_line_id,
                    detail: serde_json::json!({
                        "dueDate": due_date,
                        "copyNumber": copy_number,
                        "tasks": tasks,
                        "requests": requests,
                    })
                    .to_string(),
                }
            },
        )
        .collect()
}

fn plan_batch(
    firm_id: i64,
    lines: &[SignedLine],
    context: &BatchContext,
    today: NaiveDate,
    now: chrono::NaiveDateTime,
    language: Language,
) -> BatchPlan {
    let mut plan = BatchPlan {
        tasks: Vec::new(),
        requests: Vec::new(),
        occurrence_ends: Vec::new(),
        completed_lines: Vec::with_capacity(lines.len()),
        lines_in_error: 0,
    };
    for signed in lines {
        let line = &signed.line;
        let Some(service) = context.services.get(&line.service_id) else {
            plan.lines_in_error += 1;
            continue;
        };
        let schedule_line = line.schedule();
        let window = MissionWindow {
            start_date: signed.start_date,
            end_date: signed.end_date,
        };
        let lead_days = u32::try_from(service.lead_days).unwrap_or(0);
        let occurrences =
            match schedule::occurrences_created_by(&schedule_line, &window, lead_days, today) {
                Ok(occurrences) => occurrences,
                Err(error) => {
                    tracing::error!(line_id = line.id, %error, "cannot compute a line's schedule");
                    plan.lines_in_error += 1;
                    continue;
                }
            };
        let no_items = Vec::new();
        let items = context.items.get(&line.service_id).unwrap_or(&no_items);
        for occurrence in occurrences {
            // Everything created on or before the watermark exists already.
            if line
                .generated_through
                .is_some_and(|through| occurrence.creation_date <= through)
            {
                continue;
            }
            let copy_number = i32::try_from(occurrence.copy_number).unwrap_or(i32::MAX);
            for item in items {
                match item.kind {
                    ItemKind::Task => plan.tasks.push(NewTask {
                        firm_id,
                        client_id: signed.client_id,
                        mission_id: line.mission_id,
                        mission_line_id: line.id,
                        service_item_id: item.id,
                        copy_number,
                        due_date: occurrence.due_date,
                        created_on: occurrence.creation_date,
                        title: placeholders::render(&item.text, occurrence.due_date, language),
                        status: TaskStatus::Open,
                        created_at: now,
                    }),
                    ItemKind::InformationRequest => {
                        plan.requests.push(NewInformationRequest {
                            firm_id,
                            client_id: signed.client_id,
                            mission_id: line.mission_id,
                            mission_line_id: line.id,
                            service_item_id: item.id,
                            copy_number,
                            due_date: occurrence.due_date,
                            created_on: occurrence.creation_date,
                            text: placeholders::render(&item.text, occurrence.due_date, language),
                            status: RequestStatus::Open,
                            created_at: now,
                        });
                    }
                }
            }
            let end = (plan.tasks.len(), plan.requests.len());
            if plan.occurrence_ends.last().copied().unwrap_or((0, 0)) != end {
                plan.occurrence_ends.push(end);
            }
        }
        plan.completed_lines.push((line.id, line.mission_id));
    }
    plan
}
