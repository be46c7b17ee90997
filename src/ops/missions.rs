//! Missions and their life: create (DRAFT), edit, add a line, sign, end, cancel. What a signed
//! mission may still change lives here (its past is fixed: name and end date only, the end
//! not before the firm's today nor before an occurrence already generated), with the
//! watermark rule of an extension and the occurrence budget of signing, extending and adding
//! a line. Cancelling cancels the mission's open work and tells the webhooks, in one
//! transaction. Signing, extending and adding a line then generate that mission at once.

use chrono::{NaiveDate, NaiveDateTime, Utc};

use super::journal::{self, Entry};
use super::{Actor, Env, OpError, enqueue_webhooks, found, generate_mission};
use crate::db::missions::{self, Mission, NewMission, NewMissionLine};
use crate::db::{DbConn, catalog, clients, firms, work};
use crate::domain::schedule::{
    self, Frequency, LineSchedule, MissionWindow, ScheduleError, ScheduleLimits,
    WorkingDayAdjustment,
};
use crate::domain::validation::{check_count, check_name};
use crate::domain::{DeliveryEvent, MissionStatus};
use crate::events::RequestEventKind;
use crate::generation::{
    PendingLine, check_occurrence_budget, count_occurrences_to_create, firm_today,
};
use crate::transaction;

/// One line of a mission as a door hands it over.
#[derive(Debug, Clone)]
pub struct MissionLineInput {
    pub service_id: i64,
    pub frequency: Frequency,
    /// Defaults to the mission's start date.
    pub first_due_date: Option<NaiveDate>,
    /// Copies of a one-off (frequency NONE) line; 1 when None.
    pub quantity: Option<i32>,
    /// RFC 5545 RRULE, for frequency CUSTOM only.
    pub rrule: Option<String>,
    pub working_day_adjustment: Option<WorkingDayAdjustment>,
}

/// A new mission as a door hands it over.
#[derive(Debug, Clone)]
pub struct MissionInput {
    pub client_id: i64,
    pub name: String,
    pub start_date: NaiveDate,
    /// Last day (inclusive); None for an open-ended mission.
    pub end_date: Option<NaiveDate>,
    pub lines: Vec<MissionLineInput>,
}

/// Changes to a mission (None: unchanged).
#[derive(Debug, Clone, Default)]
pub struct MissionUpdateInput {
    pub name: Option<String>,
    pub start_date: Option<NaiveDate>,
    pub end_date: Option<NaiveDate>,
    /// Removes the end date.
    pub clear_end_date: bool,
    pub lines: Option<Vec<MissionLineInput>>,
}

/// A line checked against its service and mission window, ready to insert.
pub struct ValidatedLine {
    pub service_id: i64,
    pub schedule: LineSchedule,
}

/// A mission input checked in full.
pub struct ValidatedMission {
    pub client_id: i64,
    pub name: String,
    pub window: MissionWindow,
    pub lines: Vec<ValidatedLine>,
}

fn line_error(index: usize, error: ScheduleError) -> OpError {
    OpError::bad_input(
        format!("lines.{index}.{}", error.field()),
        error.to_string(),
    )
}

/// Checks a mission input: client of this firm, name, dates, and every line. Reads only
/// (also what `schedulePreview` checks before previewing).
pub async fn validate_mission_input(
    db: &mut DbConn<'_>,
    firm_id: i64,
    input: &MissionInput,
    limits: &ScheduleLimits,
) -> Result<ValidatedMission, OpError> {
    found(
        clients::find_client(db, firm_id, input.client_id).await,
        "client",
    )?;
    let name = check_name("name", &input.name)?;
    let window = MissionWindow {
        start_date: input.start_date,
        end_date: input.end_date,
    };
    check_window(&window)?;
    let lines = validate_lines(db, firm_id, &window, &input.lines, 0, limits).await?;
    Ok(ValidatedMission {
        client_id: input.client_id,
        name,
        window,
        lines,
    })
}

fn check_window(window: &MissionWindow) -> Result<(), OpError> {
    if let Some(end_date) = window.end_date {
        if end_date < window.start_date {
            return Err(OpError::bad_input(
                "endDate",
                ScheduleError::EndBeforeStart {
                    start_date: window.start_date,
                    end_date,
                }
                .to_string(),
            ));
        }
    }
    Ok(())
}

async fn validate_lines(
    db: &mut DbConn<'_>,
    firm_id: i64,
    window: &MissionWindow,
    inputs: &[MissionLineInput],
    first_index: usize,
    limits: &ScheduleLimits,
) -> Result<Vec<ValidatedLine>, OpError> {
    check_count(
        if first_index == 0 { "lines" } else { "line" },
        "mission lines",
        first_index.saturating_add(inputs.len()),
        limits.max_mission_lines,
    )?;
    let mut lines = Vec::with_capacity(inputs.len());
    for (offset, input) in inputs.iter().enumerate() {
        let index = first_index + offset;
        let service = found(
            catalog::find_service(db, firm_id, input.service_id).await,
            "service",
        )?;
        if service.archived_at.is_some() {
            return Err(OpError::bad_input(
                format!("lines.{index}.serviceId"),
                format!("the service {:?} is archived", service.title),
            ));
        }
        let quantity = input.quantity.unwrap_or(1);
        let quantity = u32::try_from(quantity)
            .map_err(|_| line_error(index, ScheduleError::QuantityMustBePositive))?;
        schedule::check_quantity(quantity, limits.max_quantity)
            .map_err(|error| line_error(index, error))?;
        let schedule = LineSchedule {
            frequency: input.frequency,
            first_due_date: input.first_due_date.unwrap_or(window.start_date),
            quantity,
            rrule: input
                .rrule
                .as_deref()
                .map(str::trim)
                .filter(|rule| !rule.is_empty())
                .map(str::to_string),
            adjustment: input
                .working_day_adjustment
                .unwrap_or(WorkingDayAdjustment::None),
        };
        schedule::validate_line(&schedule, window).map_err(|error| line_error(index, error))?;
        lines.push(ValidatedLine {
            service_id: input.service_id,
            schedule,
        });
    }
    Ok(lines)
}

/// A mission of the firm (NOT_FOUND for another firm's).
async fn mission_of(db: &mut DbConn<'_>, firm_id: i64, id: i64) -> Result<Mission, OpError> {
    found(missions::find_mission(db, firm_id, id).await, "mission")
}

/// The mission's dates as the schedule rules read them.
fn window_of(mission: &Mission) -> MissionWindow {
    MissionWindow {
        start_date: mission.start_date,
        end_date: mission.end_date,
    }
}

/// The firm's local today.
async fn today_of(db: &mut DbConn<'_>, firm_id: i64) -> Result<NaiveDate, OpError> {
    let firm = found(firms::find_firm(db, firm_id).await, "firm")?;
    Ok(firm_today(&firm, Utc::now()))
}

/// A saved line as generation sees it.
fn pending_line(line: &missions::MissionLine) -> PendingLine {
    PendingLine {
        service_id: line.service_id,
        schedule: line.schedule(),
        generated_through: line.generated_through,
    }
}

pub(crate) fn new_lines(
    firm_id: i64,
    mission_id: i64,
    lines: &[ValidatedLine],
    now: NaiveDateTime,
) -> Vec<NewMissionLine> {
    lines
        .iter()
        .map(|line| NewMissionLine {
            firm_id,
            mission_id,
            service_id: line.service_id,
            frequency: line.schedule.frequency,
            first_due_date: line.schedule.first_due_date,
            quantity: i32::try_from(line.schedule.quantity).unwrap_or(1),
            rrule: line.schedule.rrule.clone(),
            working_day_adjustment: line.schedule.adjustment,
            created_at: now,
        })
        .collect()
}

/// Creates a DRAFT mission with its lines; nothing is generated until it is signed.
pub async fn create_mission(
    env: Env<'_>,
    actor: &Actor,
    input: &MissionInput,
) -> Result<Mission, OpError> {
    let firm_id = actor.firm_side()?.firm_id;
    let mut conn = env.pool.get().await?;
    let validated =
        validate_mission_input(&mut conn.as_db(), firm_id, input, &env.limits()).await?;
    let now = Utc::now().naive_utc();
    transaction!(conn, |tx| {
        let mission = missions::insert_mission(
            &mut tx,
            &NewMission {
                firm_id,
                client_id: validated.client_id,
                name: &validated.name,
                start_date: validated.window.start_date,
                end_date: validated.window.end_date,
                status: MissionStatus::Draft,
                created_at: now,
            },
        )
        .await?;
        missions::insert_lines(
            &mut tx,
            &new_lines(firm_id, mission.id, &validated.lines, now),
        )
        .await?;
        journal::record(
            &mut tx,
            actor,
            now,
            &[Entry::new("mission.created", "mission", mission.id)
                .client(mission.client_id)
                .mission(mission.id)
                .status(None, Some(mission.status.as_str()))],
        )
        .await?;
        Ok::<_, OpError>(mission)
    })
}

/// Changes a mission. While DRAFT everything may change (`lines` replaces the lines). Once
/// SIGNED only the name and the end date may (not before the firm's today nor before an
/// occurrence already generated); extending it generates the periods after the old end.
pub async fn update_mission(
    env: Env<'_>,
    actor: &Actor,
    mission_id: i64,
    input: &MissionUpdateInput,
) -> Result<Mission, OpError> {
    let firm_id = actor.firm_side()?.firm_id;
    let limits = env.limits();
    let mut conn = env.pool.get().await?;
    let mut db = conn.as_db();
    let mission = mission_of(&mut db, firm_id, mission_id).await?;
    let name = match &input.name {
        Some(name) => check_name("name", name)?,
        None => mission.name.clone(),
    };
    let start_date = input.start_date.unwrap_or(mission.start_date);
    let end_date = if input.clear_end_date {
        None
    } else {
        input.end_date.or(mission.end_date)
    };
    let window = MissionWindow {
        start_date,
        end_date,
    };
    check_window(&window)?;
    match mission.status {
        MissionStatus::Draft => {}
        MissionStatus::Signed => {
            let today = today_of(&mut db, firm_id).await?;
            if start_date != mission.start_date {
                return Err(OpError::bad_input(
                    "startDate",
                    "a signed mission's start date is in its past and cannot change",
                ));
            }
            if input.lines.is_some() {
                return Err(OpError::bad_input(
                    "lines",
                    "a signed mission's lines cannot change; add new ones with addMissionLine",
                ));
            }
            if end_date != mission.end_date {
                if let Some(end_date) = end_date {
                    let latest =
                        work::latest_generated_due_date(&mut db, firm_id, mission_id).await?;
                    if end_date < today || latest.is_some_and(|latest| end_date < latest) {
                        return Err(OpError::bad_input(
                            "endDate",
                            format!(
                                "a signed mission cannot end before today ({today}) or before \
                                 an occurrence it already generated"
                            ),
                        ));
                    }
                }
            }
        }
        MissionStatus::Ended | MissionStatus::Cancelled => {
            return Err(OpError::bad_input(
                "id",
                format!("an {} mission cannot be edited", mission.status.as_str()),
            ));
        }
    }
    let lines = match &input.lines {
        Some(lines) => Some(validate_lines(&mut db, firm_id, &window, lines, 0, &limits).await?),
        None => {
            // The window may have moved: the kept lines must still fit in it (a signed
            // mission's lines keep generating, so an end before one of them would break it).
            for (index, line) in missions::list_lines(&mut db, firm_id, mission_id)
                .await?
                .iter()
                .enumerate()
            {
                schedule::validate_line(&line.schedule(), &window)
                    .map_err(|error| line_error(index, error))?;
            }
            None
        }
    };
    let now = Utc::now().naive_utc();
    let extended =
        mission.end_date.is_some() && end_date.is_none_or(|end| Some(end) > mission.end_date);
    // Periods after the old end come back into the window. Each line's watermark moves back
    // to just before the first of them could be created, not further, so items added to a
    // service since are not back-filled into the old periods. The first period after the
    // old end decides after working-day adjustment: PREVIOUS can move its due date, and so
    // its creation date, before the old end.
    let mut watermarks = Vec::new();
    if let (true, Some(old_end)) = (extended, mission.end_date) {
        let lines = missions::list_lines(&mut db, firm_id, mission_id).await?;
        let mut service_ids: Vec<i64> = lines.iter().map(|line| line.service_id).collect();
        service_ids.sort_unstable();
        service_ids.dedup();
        let services = catalog::find_services(&mut db, firm_id, &service_ids).await?;
        let mut pending = Vec::with_capacity(lines.len());
        for (index, line) in lines.iter().enumerate() {
            let lead_days = services
                .iter()
                .find(|service| service.id == line.service_id)
                .map_or(0, |service| u32::try_from(service.lead_days).unwrap_or(0));
            let mut pending_line = pending_line(line);
            let through =
                schedule::extension_watermark(&pending_line.schedule, old_end, &window, lead_days)
                    .map_err(|error| line_error(index, error))?;
            if let Some(through) = through {
                watermarks.push((line.id, through));
                pending_line.generated_through = pending_line
                    .generated_through
                    .map(|current| current.min(through));
            }
            pending.push(pending_line);
        }
        if mission.status == MissionStatus::Signed {
            let today = today_of(&mut db, firm_id).await?;
            let counts =
                count_occurrences_to_create(&mut db, firm_id, &window, &pending, today).await?;
            check_occurrence_budget("endDate", "extending this mission", &counts, &limits)?;
        }
    }
    let mission = transaction!(conn, |tx| {
        let updated = missions::update_mission_fields(
            &mut tx, firm_id, mission_id, &name, start_date, end_date,
        )
        .await?;
        if let Some(lines) = &lines {
            missions::delete_lines(&mut tx, firm_id, mission_id).await?;
            missions::insert_lines(&mut tx, &new_lines(firm_id, mission_id, lines, now)).await?;
        }
        for (line_id, through) in &watermarks {
            missions::lower_generated_through(&mut tx, *line_id, *through).await?;
        }
        journal::record(
            &mut tx,
            actor,
            now,
            &[Entry::new("mission.updated", "mission", mission_id)
                .client(updated.client_id)
                .mission(mission_id)
                .detail(serde_json::json!({
                    "name": updated.name,
                    "startDate": updated.start_date,
                    "endDate": updated.end_date,
                    "linesReplaced": lines.is_some(),
                }))],
        )
        .await?;
        Ok::<_, OpError>(updated)
    })?;
    drop(conn);
    if mission.status == MissionStatus::Signed && extended {
        generate_mission(env, firm_id, mission_id).await?;
    }
    Ok(mission)
}

/// Adds a line to a DRAFT mission, or to a SIGNED one from today on (its first due date may
/// not lie in the past); a signed mission generates the new line at once.
pub async fn add_mission_line(
    env: Env<'_>,
    actor: &Actor,
    mission_id: i64,
    line: &MissionLineInput,
) -> Result<Mission, OpError> {
    let firm_id = actor.firm_side()?.firm_id;
    let limits = env.limits();
    let mut conn = env.pool.get().await?;
    let mut db = conn.as_db();
    let mission = mission_of(&mut db, firm_id, mission_id).await?;
    let window = window_of(&mission);
    let index = missions::list_lines(&mut db, firm_id, mission_id)
        .await?
        .len();
    let lines = validate_lines(
        &mut db,
        firm_id,
        &window,
        std::slice::from_ref(line),
        index,
        &limits,
    )
    .await?;
    match mission.status {
        MissionStatus::Draft => {}
        MissionStatus::Signed => {
            let today = today_of(&mut db, firm_id).await?;
            if lines
                .iter()
                .any(|line| line.schedule.first_due_date < today)
            {
                return Err(OpError::bad_input(
                    format!("lines.{index}.firstDueDate"),
                    format!(
                        "a line added to a signed mission cannot start in the past (before {today})"
                    ),
                ));
            }
            let pending: Vec<PendingLine> = lines
                .iter()
                .map(|line| PendingLine {
                    service_id: line.service_id,
                    schedule: line.schedule.clone(),
                    generated_through: None,
                })
                .collect();
            let counts =
                count_occurrences_to_create(&mut db, firm_id, &window, &pending, today).await?;
            check_occurrence_budget(
                &format!("lines.{index}.firstDueDate"),
                "adding this line",
                &counts,
                &limits,
            )?;
        }
        MissionStatus::Ended | MissionStatus::Cancelled => {
            return Err(OpError::bad_input(
                "missionId",
                format!("an {} mission cannot be edited", mission.status.as_str()),
            ));
        }
    }
    let now = Utc::now().naive_utc();
    transaction!(conn, |tx| {
        let new = new_lines(firm_id, mission_id, &lines, now);
        missions::insert_lines(&mut tx, &new).await?;
        let entries: Vec<Entry> = new
            .iter()
            .map(|line| {
                Entry::new("mission.line_added", "mission", mission_id)
                    .client(mission.client_id)
                    .mission(mission_id)
                    .detail(serde_json::json!({ "serviceId": line.service_id }))
            })
            .collect();
        journal::record(&mut tx, actor, now, &entries).await?;
        Ok::<_, OpError>(())
    })?;
    drop(conn);
    if mission.status == MissionStatus::Signed {
        generate_mission(env, firm_id, mission_id).await?;
    }
    Ok(mission)
}

/// Signs a DRAFT mission: generation starts, and everything already due to be created (past
/// periods included) is created at once, within the occurrence budget.
pub async fn sign_mission(
    env: Env<'_>,
    actor: &Actor,
    mission_id: i64,
) -> Result<Mission, OpError> {
    let firm_id = actor.firm_side()?.firm_id;
    let mut conn = env.pool.get().await?;
    let mut db = conn.as_db();
    let mission = check_signable(&mut db, firm_id, mission_id, &env.limits()).await?;
    let now = Utc::now().naive_utc();
    let signed = transaction!(conn, |tx| {
        let signed = missions::transition(
            &mut tx,
            firm_id,
            mission_id,
            &[MissionStatus::Draft],
            MissionStatus::Signed,
            now,
            None,
        )
        .await?
        .ok_or_else(|| OpError::changed_meanwhile("mission"))?;
        journal::record(
            &mut tx,
            actor,
            now,
            &[mission_entry("mission.signed", &mission, &signed)],
        )
        .await?;
        Ok::<_, OpError>(signed)
    })?;
    drop(conn);
    generate_mission(env, firm_id, mission_id).await?;
    Ok(signed)
}

/// Whether a mission may be signed now: DRAFT, with lines, and what signing would create at
/// once within the occurrence budget. Reads only (bulk signing checks every mission first).
pub(crate) async fn check_signable(
    db: &mut DbConn<'_>,
    firm_id: i64,
    mission_id: i64,
    limits: &ScheduleLimits,
) -> Result<Mission, OpError> {
    let mission = mission_of(db, firm_id, mission_id).await?;
    if mission.status != MissionStatus::Draft {
        return Err(OpError::bad_input(
            "id",
            format!(
                "only a DRAFT mission can be signed; this one is {}",
                mission.status.as_str()
            ),
        ));
    }
    let lines = missions::list_lines(db, firm_id, mission_id).await?;
    if lines.is_empty() {
        return Err(OpError::bad_input(
            "id",
            "a mission with no lines cannot be signed",
        ));
    }
    // Everything already due is created at once: that catch-up must stay within bounds.
    let today = today_of(db, firm_id).await?;
    let pending: Vec<PendingLine> = lines.iter().map(pending_line).collect();
    let counts =
        count_occurrences_to_create(db, firm_id, &window_of(&mission), &pending, today).await?;
    check_occurrence_budget("id", "signing this mission", &counts, limits)?;
    Ok(mission)
}

/// Ends a SIGNED mission now: nothing more is generated. `end_date` (default: today, or the
/// start date of a mission not started yet) records when it ended and cannot be later.
pub async fn end_mission(
    env: Env<'_>,
    actor: &Actor,
    mission_id: i64,
    end_date: Option<NaiveDate>,
) -> Result<Mission, OpError> {
    let firm_id = actor.firm_side()?.firm_id;
    let mut conn = env.pool.get().await?;
    let mut db = conn.as_db();
    let mission = mission_of(&mut db, firm_id, mission_id).await?;
    if mission.status != MissionStatus::Signed {
        return Err(OpError::bad_input(
            "id",
            format!(
                "only a SIGNED mission can be ended; this one is {}",
                mission.status.as_str()
            ),
        ));
    }
    // A mission that has not started yet ends on its first day.
    let latest = today_of(&mut db, firm_id).await?.max(mission.start_date);
    let end_date = end_date.unwrap_or(latest);
    if end_date > latest {
        return Err(OpError::bad_input(
            "endDate",
            format!(
                "ending stops generation now, so the end date cannot be after {latest}; \
                 to stop at a later date, set it with updateMission"
            ),
        ));
    }
    if end_date < mission.start_date {
        return Err(OpError::bad_input(
            "endDate",
            format!(
                "the end date {end_date} is before the mission's start date {}",
                mission.start_date
            ),
        ));
    }
    let now = Utc::now().naive_utc();
    transaction!(conn, |tx| {
        let ended = missions::transition(
            &mut tx,
            firm_id,
            mission_id,
            &[MissionStatus::Signed],
            MissionStatus::Ended,
            now,
            Some(end_date),
        )
        .await?
        .ok_or_else(|| OpError::changed_meanwhile("mission"))?;
        journal::record(
            &mut tx,
            actor,
            now,
            &[mission_entry("mission.ended", &mission, &ended)
                .detail(serde_json::json!({ "endDate": end_date }))],
        )
        .await?;
        Ok::<_, OpError>(ended)
    })
}

/// The journal entry of a mission's move from `before` to `after`.
fn mission_entry(kind: &'static str, before: &Mission, after: &Mission) -> Entry {
    Entry::new(kind, "mission", after.id)
        .client(after.client_id)
        .mission(after.id)
        .status(Some(before.status.as_str()), Some(after.status.as_str()))
}

/// Cancels a DRAFT or SIGNED mission, and its open requests and tasks with it (the webhooks
/// hear of each closed request).
pub async fn cancel_mission(
    env: Env<'_>,
    actor: &Actor,
    mission_id: i64,
) -> Result<Mission, OpError> {
    let firm_id = actor.firm_side()?.firm_id;
    let mut conn = env.pool.get().await?;
    let mission = mission_of(&mut conn.as_db(), firm_id, mission_id).await?;
    if !matches!(mission.status, MissionStatus::Draft | MissionStatus::Signed) {
        return Err(OpError::bad_input(
            "id",
            format!("an {} mission cannot be cancelled", mission.status.as_str()),
        ));
    }
    let now = Utc::now().naive_utc();
    let (cancelled, requests) = transaction!(conn, |tx| {
        let cancelled = missions::transition(
            &mut tx,
            firm_id,
            mission_id,
            &[MissionStatus::Draft, MissionStatus::Signed],
            MissionStatus::Cancelled,
            now,
            None,
        )
        .await?
        .ok_or_else(|| OpError::changed_meanwhile("mission"))?;
        let requests = work::cancel_open_work_of_mission(&mut tx, firm_id, mission_id, now).await?;
        for request in &requests {
            enqueue_webhooks(&mut tx, request, DeliveryEvent::RequestClosed).await?;
        }
        let mut entries = vec![mission_entry("mission.cancelled", &mission, &cancelled)];
        entries.extend(requests.iter().map(|request| {
            Entry::new("request.cancelled", "request", request.id)
                .client(request.client_id)
                .mission(request.mission_id)
                .status(Some("OPEN"), Some(request.status.as_str()))
        }));
        journal::record(&mut tx, actor, now, &entries).await?;
        Ok::<_, OpError>((cancelled, requests))
    })?;
    for request in &requests {
        env.publish(RequestEventKind::Closed, request);
    }
    Ok(cancelled)
}
