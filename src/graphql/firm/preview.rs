//! `schedulePreview`: the occurrences a mission would generate, computed with the same
//! schedule rules as generation, without writing anything.

use async_graphql::{ID, SimpleObject};
use chrono::{NaiveDate, Utc};

use crate::db::firms::Firm;
use crate::db::{DbConn, catalog, missions};
use crate::domain::ItemKind;
use crate::domain::gid::Kind;
use crate::domain::schedule::{self, LineSchedule, MissionWindow, ScheduleLimits};
use crate::error::AppError;
use crate::generation::firm_today;
use crate::graphql::context::{StaffGuard, found, gid, visible_to_staff};
use crate::graphql::firm::mutation::{CreateMissionInput, validate_mission_input};
use crate::graphql::scalars::Date;

/// One occurrence a mission would generate.
#[derive(SimpleObject)]
#[graphql(guard = "StaffGuard", visible = "visible_to_staff")]
pub struct PreviewOccurrence {
    /// Position of the line in the mission (0-based).
    pub line_index: i32,
    /// The id of the line's service.
    pub service_id: ID,
    /// The service's firm-only title.
    pub service_title: String,
    /// Whether it would be a task or a request.
    pub item_kind: ItemKind,
    /// The task's title or the request's text.
    pub item_title: String,
    /// Its due date, after working-day adjustment.
    pub due_date: Date,
    /// The day it would be created (due date minus lead days).
    pub creation_date: Date,
    /// Which copy of the due date, from 1.
    pub copy_number: i32,
    /// Created at once when the mission is signed: its creation date is today or before.
    pub in_past: bool,
}

/// Occurrences of every line of a saved mission with a due date on or before `until`.
pub async fn preview_for_mission(
    db: &mut DbConn<'_>,
    firm: &Firm,
    mission_id: i64,
    until: NaiveDate,
    limits: &ScheduleLimits,
) -> Result<Vec<PreviewOccurrence>, AppError> {
    let mission = found(
        missions::find_mission(db, firm.id, mission_id).await,
        "mission",
    )?;
    let lines = missions::list_lines(db, firm.id, mission_id).await?;
    let window = MissionWindow {
        start_date: mission.start_date,
        end_date: mission.end_date,
    };
    let schedules: Vec<(i64, LineSchedule)> = lines
        .iter()
        .map(|line| (line.service_id, line.schedule()))
        .collect();
    preview(db, firm, &window, &schedules, until, limits).await
}

/// Occurrences of a draft mission input, validated like `createMission`.
pub async fn preview_for_input(
    db: &mut DbConn<'_>,
    firm: &Firm,
    input: &CreateMissionInput,
    until: NaiveDate,
    limits: &ScheduleLimits,
) -> Result<Vec<PreviewOccurrence>, AppError> {
    let validated = validate_mission_input(db, firm.id, input, limits).await?;
    let schedules: Vec<(i64, LineSchedule)> = validated
        .lines
        .iter()
        .map(|line| (line.service_id, line.schedule.clone()))
        .collect();
    preview(db, firm, &validated.window, &schedules, until, limits).await
}

async fn preview(
    db: &mut DbConn<'_>,
    firm: &Firm,
    window: &MissionWindow,
    schedules: &[(i64, LineSchedule)],
    until: NaiveDate,
    limits: &ScheduleLimits,
) -> Result<Vec<PreviewOccurrence>, AppError> {
    let today = firm_today(firm, Utc::now());
    // Every line's dates and items first, so the size of the answer is known before any of it
    // is built: a preview past the bound is refused, not truncated.
    let mut planned = Vec::with_capacity(schedules.len());
    let mut total: usize = 0;
    for (service_id, line) in schedules {
        let service = found(
            catalog::find_service(db, firm.id, *service_id).await,
            "service",
        )?;
        let items = catalog::list_items(db, firm.id, *service_id).await?;
        let due_dates = schedule::due_dates(line, window, until)
            .map_err(|error| AppError::bad_input(error.field(), error.to_string()))?;
        let copies = if line.frequency == schedule::Frequency::None {
            line.quantity.max(1)
        } else {
            1
        };
        total = total.saturating_add(
            due_dates
                .len()
                .saturating_mul(usize::try_from(copies).unwrap_or(usize::MAX))
                .saturating_mul(items.len()),
        );
        if total > limits.max_occurrences {
            return Err(AppError::bad_input(
                "until",
                format!(
                    "the preview up to {until} holds more than {} tasks and requests; \
                     choose an earlier date for until",
                    limits.max_occurrences
                ),
            ));
        }
        planned.push((service, items, due_dates, copies));
    }
    let mut occurrences = Vec::with_capacity(total);
    for (index, (service, items, due_dates, copies)) in planned.into_iter().enumerate() {
        let lead_days = u32::try_from(service.lead_days).unwrap_or(0);
        for due_date in due_dates {
            let creation_date = schedule::creation_date(due_date, lead_days).unwrap_or(due_date);
            for copy_number in 1..=copies {
                for item in &items {
                    occurrences.push(PreviewOccurrence {
                        line_index: i32::try_from(index).unwrap_or(i32::MAX),
                        service_id: gid(Kind::Service, service.id),
                        service_title: service.title.clone(),
                        item_kind: item.kind,
                        item_title: item.text.clone(),
                        due_date: due_date.into(),
                        creation_date: creation_date.into(),
                        copy_number: i32::try_from(copy_number).unwrap_or(i32::MAX),
                        in_past: creation_date <= today,
                    });
                }
            }
        }
    }
    occurrences.sort_by_key(|occurrence| (occurrence.due_date, occurrence.line_index));
    Ok(occurrences)
}
