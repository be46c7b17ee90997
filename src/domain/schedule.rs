//! Recurrence rules for engagement-letter lines: which due dates a line has,
//! when each reminder must be created (due date minus lead days), how due
//! dates move off weekends and French public holidays, and which line
//! settings are acceptable.
//!
//! This module is pure calendar arithmetic. It must never do I/O: no
//! database, no clock (callers pass `as_of`), no network, no logging, no
//! async. Every function is deterministic in its arguments so the daily
//! generation pass can be replayed and property-tested.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Days, Months, NaiveDate, TimeZone, Weekday};
use rrule::{RRule, RRuleSet, Tz, Unvalidated};

/// The largest accepted lead time, in days: a reminder is created at most a
/// year (leap years included) before its due date.
pub const MAX_LEAD_DAYS: u32 = 366;

/// Defensive cap on how many raw periods one call walks through. Real
/// schedules stay far below it (a weekly line over a century is ~5,200);
/// reaching it means the caller asked for an effectively unbounded horizon.
pub const MAX_OCCURRENCES: usize = 100_000;

/// How much work one mission may ask for. The API refuses input past these bounds, naming the
/// field, so that no single request can exhaust memory or hold the database for long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScheduleLimits {
    /// Most copies of a one-off (NONE) line.
    pub max_quantity: u32,
    /// Most items (tasks and information requests) in one service.
    pub max_service_items: usize,
    /// Most lines in one mission.
    pub max_mission_lines: usize,
    /// Most tasks and requests one `schedulePreview` may list, or one signing, extension or
    /// added line may create at once.
    pub max_occurrences: usize,
}

impl Default for ScheduleLimits {
    fn default() -> Self {
        Self {
            max_quantity: 500,
            max_service_items: 100,
            max_mission_lines: 100,
            max_occurrences: 5_000,
        }
    }
}

/// How often a line falls due.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    diesel::expression::AsExpression,
    diesel::deserialize::FromSqlRow,
    async_graphql::Enum,
)]
#[diesel(sql_type = diesel::sql_types::Text)]
pub enum Frequency {
    /// A single due date, possibly with several numbered copies.
    None,
    /// Every 7 days from the first due date.
    Weekly,
    /// Every month, on the first due date's day (clamped to the month's end).
    Monthly,
    /// Every 2 months (not twice a month), anchored like MONTHLY.
    Bimonthly,
    /// Every 3 months, anchored like MONTHLY.
    Quarterly,
    /// Every 6 months, anchored like MONTHLY.
    Semiannual,
    /// Every 12 months, anchored like MONTHLY (29 February becomes
    /// 28 February in common years).
    Annual,
    /// An RFC 5545 RRULE, given in the line's `rrule`.
    ///
    /// Unlike the month-based frequencies, CUSTOM follows RFC 5545 exactly,
    /// including skipping months without the requested day: a rule
    /// `FREQ=MONTHLY;BYMONTHDAY=30` has no February occurrence, whereas
    /// MONTHLY anchored on the 30th clamps to 28/29 February. The first
    /// due date is the rule's DTSTART and, as in the `rrule` crate, is itself
    /// a due date only when the rule matches it (DTSTART 15 January with
    /// `BYMONTHDAY=30` starts on 30 January).
    Custom,
}

impl Frequency {
    /// Every frequency, in declaration order.
    pub const ALL: [Frequency; 8] = [
        Frequency::None,
        Frequency::Weekly,
        Frequency::Monthly,
        Frequency::Bimonthly,
        Frequency::Quarterly,
        Frequency::Semiannual,
        Frequency::Annual,
        Frequency::Custom,
    ];

    /// The stored / wire representation, e.g. `"BIMONTHLY"`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Frequency::None => "NONE",
            Frequency::Weekly => "WEEKLY",
            Frequency::Monthly => "MONTHLY",
            Frequency::Bimonthly => "BIMONTHLY",
            Frequency::Quarterly => "QUARTERLY",
            Frequency::Semiannual => "SEMIANNUAL",
            Frequency::Annual => "ANNUAL",
            Frequency::Custom => "CUSTOM",
        }
    }

    /// Months between two due dates for the month-based frequencies.
    fn months_per_period(self) -> Option<u32> {
        match self {
            Frequency::Monthly => Some(1),
            Frequency::Bimonthly => Some(2),
            Frequency::Quarterly => Some(3),
            Frequency::Semiannual => Some(6),
            Frequency::Annual => Some(12),
            Frequency::None | Frequency::Weekly | Frequency::Custom => None,
        }
    }
}

impl fmt::Display for Frequency {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl FromStr for Frequency {
    type Err = ParseEnumError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Frequency::ALL
            .into_iter()
            .find(|frequency| frequency.as_str() == text)
            .ok_or_else(|| ParseEnumError::new("frequency", text, &FREQUENCY_NAMES))
    }
}

const FREQUENCY_NAMES: [&str; 8] = [
    "NONE",
    "WEEKLY",
    "MONTHLY",
    "BIMONTHLY",
    "QUARTERLY",
    "SEMIANNUAL",
    "ANNUAL",
    "CUSTOM",
];

/// Where a due date goes when it falls on a weekend or a French public
/// holiday.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    diesel::expression::AsExpression,
    diesel::deserialize::FromSqlRow,
    async_graphql::Enum,
)]
#[diesel(sql_type = diesel::sql_types::Text)]
pub enum WorkingDayAdjustment {
    /// Keep the date even if nobody works that day.
    None,
    /// Move to the next working day.
    Next,
    /// Move to the previous working day.
    Previous,
}

impl WorkingDayAdjustment {
    /// Every adjustment, in declaration order.
    pub const ALL: [WorkingDayAdjustment; 3] = [
        WorkingDayAdjustment::None,
        WorkingDayAdjustment::Next,
        WorkingDayAdjustment::Previous,
    ];

    /// The stored / wire representation, e.g. `"NEXT"`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            WorkingDayAdjustment::None => "NONE",
            WorkingDayAdjustment::Next => "NEXT",
            WorkingDayAdjustment::Previous => "PREVIOUS",
        }
    }
}

impl fmt::Display for WorkingDayAdjustment {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl FromStr for WorkingDayAdjustment {
    type Err = ParseEnumError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        WorkingDayAdjustment::ALL
            .into_iter()
            .find(|adjustment| adjustment.as_str() == text)
            .ok_or_else(|| {
                ParseEnumError::new(
                    "working-day adjustment",
                    text,
                    &["NONE", "NEXT", "PREVIOUS"],
                )
            })
    }
}

/// A string that names none of an enum's variants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseEnumError {
    /// What was being parsed, e.g. `"frequency"`.
    pub kind: &'static str,
    /// The rejected input.
    pub value: String,
    /// The accepted spellings.
    pub expected: &'static [&'static str],
}

impl ParseEnumError {
    fn new(kind: &'static str, value: &str, expected: &'static [&'static str]) -> Self {
        ParseEnumError {
            kind,
            value: value.to_owned(),
            expected,
        }
    }
}

impl fmt::Display for ParseEnumError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "\"{}\" is not a {}; expected one of {}",
            self.value,
            self.kind,
            self.expected.join(", ")
        )
    }
}

impl std::error::Error for ParseEnumError {}

/// The recurrence settings of one engagement-letter line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineSchedule {
    /// How often the line falls due.
    pub frequency: Frequency,
    /// The first due date; also the anchor whose day of month later
    /// month-based periods keep.
    pub first_due_date: NaiveDate,
    /// Number of copies of the single due date; must be 1 unless the
    /// frequency is [`Frequency::None`].
    pub quantity: u32,
    /// An RFC 5545 `RRULE` value (with or without the `RRULE:` prefix),
    /// required for [`Frequency::Custom`] and forbidden otherwise. A blank
    /// string counts as absent.
    pub rrule: Option<String>,
    /// What happens to due dates on non-working days.
    pub adjustment: WorkingDayAdjustment,
}

/// The period during which a mission produces due dates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MissionWindow {
    /// The mission's first day.
    pub start_date: NaiveDate,
    /// The mission's last day (inclusive); `None` for an open-ended mission.
    pub end_date: Option<NaiveDate>,
}

/// One reminder to create: a due date and which copy of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Occurrence {
    /// The (working-day adjusted) due date.
    pub due_date: NaiveDate,
    /// 1-based copy number; above 1 only for [`Frequency::None`] lines.
    pub copy_number: u32,
    /// The day the reminder must be created: `due_date - lead_days`.
    pub creation_date: NaiveDate,
}

/// Why a line's schedule is unacceptable or cannot be computed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScheduleError {
    /// The mission ends before it starts.
    EndBeforeStart {
        /// The mission's start date.
        start_date: NaiveDate,
        /// The mission's end date.
        end_date: NaiveDate,
    },
    /// The first due date is before the mission's start or after its end.
    FirstDueDateOutsideWindow {
        /// The rejected first due date.
        first_due_date: NaiveDate,
        /// The mission's start date.
        start_date: NaiveDate,
        /// The mission's end date, if any.
        end_date: Option<NaiveDate>,
    },
    /// A quantity of zero.
    QuantityMustBePositive,
    /// More copies than [`ScheduleLimits::max_quantity`].
    QuantityTooLarge {
        /// The rejected quantity.
        quantity: u32,
        /// The largest accepted quantity.
        limit: u32,
    },
    /// More than one copy was asked of a recurring line.
    QuantityRequiresFrequencyNone {
        /// The rejected quantity.
        quantity: u32,
        /// The line's (recurring) frequency.
        frequency: Frequency,
    },
    /// A CUSTOM line without a rule.
    RruleRequired,
    /// A rule on a line whose frequency is not CUSTOM.
    RruleNotAllowed {
        /// The line's frequency.
        frequency: Frequency,
    },
    /// The rule could not be parsed or validated; the message says why.
    InvalidRrule(String),
    /// A lead time outside `0..=366` days.
    LeadDaysOutOfRange {
        /// The rejected lead time.
        lead_days: i64,
    },
    /// The requested horizon holds more than [`MAX_OCCURRENCES`] periods.
    TooManyOccurrences {
        /// The cap that was reached.
        limit: usize,
    },
}

impl ScheduleError {
    /// The input field (API spelling) this error concerns, so the API layer
    /// can attach it to the right form field.
    #[must_use]
    pub fn field(&self) -> &'static str {
        match self {
            // Bounding the mission is what brings too long a horizon back in range.
            ScheduleError::EndBeforeStart { .. } | ScheduleError::TooManyOccurrences { .. } => {
                "endDate"
            }
            ScheduleError::FirstDueDateOutsideWindow { .. } => "firstDueDate",
            ScheduleError::QuantityMustBePositive
            | ScheduleError::QuantityTooLarge { .. }
            | ScheduleError::QuantityRequiresFrequencyNone { .. } => "quantity",
            ScheduleError::RruleRequired
            | ScheduleError::RruleNotAllowed { .. }
            | ScheduleError::InvalidRrule(_) => "rrule",
            ScheduleError::LeadDaysOutOfRange { .. } => "leadDays",
        }
    }
}

impl fmt::Display for ScheduleError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScheduleError::EndBeforeStart {
                start_date,
                end_date,
            } => write!(
                formatter,
                "the mission's end date {end_date} is before its start date {start_date}"
            ),
            ScheduleError::FirstDueDateOutsideWindow {
                first_due_date,
                start_date,
                end_date,
            } => match end_date {
                Some(end_date) if first_due_date > end_date => write!(
                    formatter,
                    "the first due date {first_due_date} is after the mission's end date {end_date}"
                ),
                _ => write!(
                    formatter,
                    "the first due date {first_due_date} is before the mission's start date {start_date}"
                ),
            },
            ScheduleError::QuantityMustBePositive => {
                formatter.write_str("the quantity must be at least 1")
            }
            ScheduleError::QuantityTooLarge { quantity, limit } => write!(
                formatter,
                "a quantity of {quantity} is too large; at most {limit} copies are accepted"
            ),
            ScheduleError::QuantityRequiresFrequencyNone {
                quantity,
                frequency,
            } => write!(
                formatter,
                "a quantity of {quantity} is only allowed for a one-off line (frequency NONE), \
                 not for frequency {frequency}; recurring lines have exactly 1 copy per due date"
            ),
            ScheduleError::RruleRequired => {
                formatter.write_str("a custom frequency needs a recurrence rule (RRULE)")
            }
            ScheduleError::RruleNotAllowed { frequency } => write!(
                formatter,
                "a recurrence rule (RRULE) is only allowed with frequency CUSTOM, not {frequency}"
            ),
            ScheduleError::InvalidRrule(message) => {
                write!(formatter, "the recurrence rule is invalid: {message}")
            }
            ScheduleError::LeadDaysOutOfRange { lead_days } => write!(
                formatter,
                "the lead time must be between 0 and {MAX_LEAD_DAYS} days, not {lead_days}"
            ),
            ScheduleError::TooManyOccurrences { limit } => write!(
                formatter,
                "the schedule has more than {limit} due dates in the requested period; \
                 give the mission an end date"
            ),
        }
    }
}

impl std::error::Error for ScheduleError {}

/// Accepts a lead time of 0 to [`MAX_LEAD_DAYS`] days, as typed by a user.
///
/// # Errors
///
/// [`ScheduleError::LeadDaysOutOfRange`] for a negative or too large value.
pub fn validate_lead_days(lead_days: i64) -> Result<u32, ScheduleError> {
    u32::try_from(lead_days)
        .ok()
        .filter(|days| *days <= MAX_LEAD_DAYS)
        .ok_or(ScheduleError::LeadDaysOutOfRange { lead_days })
}

/// Accepts a quantity of 1 to `limit` copies.
///
/// # Errors
///
/// [`ScheduleError::QuantityMustBePositive`] for 0, [`ScheduleError::QuantityTooLarge`] above
/// `limit`.
pub fn check_quantity(quantity: u32, limit: u32) -> Result<(), ScheduleError> {
    if quantity == 0 {
        return Err(ScheduleError::QuantityMustBePositive);
    }
    if quantity > limit {
        return Err(ScheduleError::QuantityTooLarge { quantity, limit });
    }
    Ok(())
}

/// Checks a line against its mission, reporting the first problem in form
/// order (mission dates, first due date, quantity, rule).
///
/// # Errors
///
/// Any [`ScheduleError`] variant except `LeadDaysOutOfRange` and
/// `TooManyOccurrences`; [`ScheduleError::field`] names the culprit.
pub fn validate_line(line: &LineSchedule, window: &MissionWindow) -> Result<(), ScheduleError> {
    if let Some(end_date) = window.end_date
        && end_date < window.start_date
    {
        return Err(ScheduleError::EndBeforeStart {
            start_date: window.start_date,
            end_date,
        });
    }
    let after_end = window
        .end_date
        .is_some_and(|end_date| line.first_due_date > end_date);
    if line.first_due_date < window.start_date || after_end {
        return Err(ScheduleError::FirstDueDateOutsideWindow {
            first_due_date: line.first_due_date,
            start_date: window.start_date,
            end_date: window.end_date,
        });
    }
    if line.quantity == 0 {
        return Err(ScheduleError::QuantityMustBePositive);
    }
    if line.quantity != 1 && line.frequency != Frequency::None {
        return Err(ScheduleError::QuantityRequiresFrequencyNone {
            quantity: line.quantity,
            frequency: line.frequency,
        });
    }
    match (line.frequency, given_rrule(line)) {
        (Frequency::Custom, None) => Err(ScheduleError::RruleRequired),
        (Frequency::Custom, Some(rule)) => custom_rule_set(rule, line.first_due_date).map(|_| ()),
        (frequency, Some(_)) => Err(ScheduleError::RruleNotAllowed { frequency }),
        (_, None) => Ok(()),
    }
}

/// Every due date of the line, after working-day adjustment, from the first
/// one up to and including `until`, strictly increasing.
///
/// A period belongs to the mission when its unadjusted date lies in the
/// window (so a period ending the mission on a Saturday still counts even if
/// it moves to the next Monday), while `until` bounds the adjusted date,
/// because that is the day the work is really due.
///
/// # Errors
///
/// Whatever [`validate_line`] reports, or
/// [`ScheduleError::TooManyOccurrences`] when the horizon holds more than
/// [`MAX_OCCURRENCES`] periods.
pub fn due_dates(
    line: &LineSchedule,
    window: &MissionWindow,
    until: NaiveDate,
) -> Result<Vec<NaiveDate>, ScheduleError> {
    validate_line(line, window)?;
    let mut dates: Vec<NaiveDate> = Vec::new();
    for (walked, period_date) in period_dates(line)?.enumerate() {
        if window
            .end_date
            .is_some_and(|end_date| period_date > end_date)
        {
            break;
        }
        let due_date = adjust_to_working_day(period_date, line.adjustment);
        // Adjustment is monotone, so once past `until` every later period is too.
        if due_date > until {
            break;
        }
        if walked >= MAX_OCCURRENCES {
            return Err(ScheduleError::TooManyOccurrences {
                limit: MAX_OCCURRENCES,
            });
        }
        // Two periods can adjust onto the same working day (a daily custom
        // rule's Saturday and Sunday both become Monday): one reminder is enough.
        if dates.last().is_none_or(|last| *last < due_date) {
            dates.push(due_date);
        }
    }
    Ok(dates)
}

/// Every occurrence whose creation date (`due_date - lead_days`) is on or
/// before `as_of`: one per due date, with copies `1..=quantity` for a NONE
/// line. This is what the daily generation pass calls; the result only grows
/// as `as_of` advances, so re-running it is safe when the caller skips
/// occurrences it already created.
///
/// # Errors
///
/// [`ScheduleError::LeadDaysOutOfRange`] above [`MAX_LEAD_DAYS`], then
/// whatever [`due_dates`] reports.
pub fn occurrences_created_by(
    line: &LineSchedule,
    window: &MissionWindow,
    lead_days: u32,
    as_of: NaiveDate,
) -> Result<Vec<Occurrence>, ScheduleError> {
    if lead_days > MAX_LEAD_DAYS {
        return Err(ScheduleError::LeadDaysOutOfRange {
            lead_days: i64::from(lead_days),
        });
    }
    let until = as_of
        .checked_add_days(Days::new(u64::from(lead_days)))
        .unwrap_or(NaiveDate::MAX);
    let copies = if line.frequency == Frequency::None {
        line.quantity
    } else {
        1
    };
    let occurrences = due_dates(line, window, until)?
        .into_iter()
        .flat_map(|due_date| {
            // Only a due date near the calendar's lower limit has no
            // representable creation date; it is overdue for creation anyway.
            let creation_date = creation_date(due_date, lead_days).unwrap_or(NaiveDate::MIN);
            (1..=copies).map(move |copy_number| Occurrence {
                due_date,
                copy_number,
                creation_date,
            })
        })
        .collect();
    Ok(occurrences)
}

/// Where a line's generation watermark must move back to when its mission's end date moves
/// from `old_end` to `new_window.end_date` (later, or removed): the day before the creation
/// date of the first occurrence the extension adds. The first period whose unadjusted date is
/// after `old_end` decides, after working-day adjustment: a PREVIOUS adjustment can move its due
/// date (and so its creation date) back before the old end. `None` when the extension adds no
/// period to this line (a NONE line, a custom rule that has ended, or a first new period past
/// the new end).
///
/// # Errors
///
/// Whatever [`validate_line`] reports against the new window,
/// [`ScheduleError::LeadDaysOutOfRange`], or [`ScheduleError::TooManyOccurrences`] when the
/// old end lies more than [`MAX_OCCURRENCES`] periods after the first due date.
pub fn extension_watermark(
    line: &LineSchedule,
    old_end: NaiveDate,
    new_window: &MissionWindow,
    lead_days: u32,
) -> Result<Option<NaiveDate>, ScheduleError> {
    if lead_days > MAX_LEAD_DAYS {
        return Err(ScheduleError::LeadDaysOutOfRange {
            lead_days: i64::from(lead_days),
        });
    }
    validate_line(line, new_window)?;
    for (walked, period_date) in period_dates(line)?.enumerate() {
        if walked >= MAX_OCCURRENCES {
            return Err(ScheduleError::TooManyOccurrences {
                limit: MAX_OCCURRENCES,
            });
        }
        if period_date <= old_end {
            continue;
        }
        if new_window
            .end_date
            .is_some_and(|end_date| period_date > end_date)
        {
            return Ok(None);
        }
        let due_date = adjust_to_working_day(period_date, line.adjustment);
        let created = creation_date(due_date, lead_days).unwrap_or(NaiveDate::MIN);
        return Ok(Some(created.pred_opt().unwrap_or(NaiveDate::MIN)));
    }
    Ok(None)
}

/// The day a reminder must be created: `lead_days` before its due date.
/// `None` only when that falls before the earliest representable date.
#[must_use]
pub fn creation_date(due_date: NaiveDate, lead_days: u32) -> Option<NaiveDate> {
    due_date.checked_sub_days(Days::new(u64::from(lead_days)))
}

/// Easter Sunday of a Gregorian year (anonymous Meeus/Jones/Butcher
/// algorithm), or `None` outside the representable date range. Years before
/// 1583 get the proleptic Gregorian answer.
#[must_use]
pub fn easter_sunday(year: i32) -> Option<NaiveDate> {
    let golden = year.rem_euclid(19);
    let century = year.div_euclid(100);
    let year_of_century = year.rem_euclid(100);
    let leap_centuries = century / 4;
    let century_remainder = century % 4;
    let lunar_correction = (century + 8) / 25;
    let solar_correction = (century - lunar_correction + 1) / 3;
    let epact = (19 * golden + century - leap_centuries - solar_correction + 15) % 30;
    let leap_years_in_century = year_of_century / 4;
    let year_remainder = year_of_century % 4;
    let weekday_offset =
        (32 + 2 * century_remainder + 2 * leap_years_in_century - epact - year_remainder) % 7;
    let paschal_correction = (golden + 11 * epact + 22 * weekday_offset) / 451;
    let month_and_day = epact + weekday_offset - 7 * paschal_correction + 114;
    let month = u32::try_from(month_and_day / 31).ok()?;
    let day = u32::try_from(month_and_day % 31 + 1).ok()?;
    NaiveDate::from_ymd_opt(year, month, day)
}

/// Whether `date` is a public holiday in metropolitan France: 1 January,
/// Easter Monday, 1 May, 8 May, Ascension Thursday, Whit Monday, 14 July,
/// 15 August, 1 November, 11 November and 25 December. Alsace-Moselle's
/// extra days (Good Friday, 26 December) are not included.
#[must_use]
pub fn is_french_public_holiday(date: NaiveDate) -> bool {
    const FIXED_HOLIDAYS: [(u32, u32); 8] = [
        (1, 1),
        (5, 1),
        (5, 8),
        (7, 14),
        (8, 15),
        (11, 1),
        (11, 11),
        (12, 25),
    ];
    const DAYS_AFTER_EASTER: [u64; 3] = [1, 39, 50];

    if FIXED_HOLIDAYS.contains(&(date.month(), date.day())) {
        return true;
    }
    easter_sunday(date.year()).is_some_and(|easter| {
        DAYS_AFTER_EASTER
            .iter()
            .any(|offset| easter.checked_add_days(Days::new(*offset)) == Some(date))
    })
}

/// Whether an accounting firm works on `date`: Monday to Friday and not a
/// French public holiday.
#[must_use]
pub fn is_working_day(date: NaiveDate) -> bool {
    !matches!(date.weekday(), Weekday::Sat | Weekday::Sun) && !is_french_public_holiday(date)
}

/// Moves `date` to the nearest working day in the requested direction; a
/// working day, or [`WorkingDayAdjustment::None`], leaves it unchanged.
#[must_use]
pub fn adjust_to_working_day(date: NaiveDate, adjustment: WorkingDayAdjustment) -> NaiveDate {
    let step: fn(NaiveDate) -> Option<NaiveDate> = match adjustment {
        WorkingDayAdjustment::None => return date,
        WorkingDayAdjustment::Next => |day| day.succ_opt(),
        WorkingDayAdjustment::Previous => |day| day.pred_opt(),
    };
    let mut candidate = date;
    while !is_working_day(candidate) {
        match step(candidate) {
            Some(neighbour) => candidate = neighbour,
            // At the edge of the calendar there is nowhere to move to.
            None => return date,
        }
    }
    candidate
}

/// The rule text if one was given; blank input from a form counts as none.
fn given_rrule(line: &LineSchedule) -> Option<&str> {
    line.rrule
        .as_deref()
        .map(str::trim)
        .filter(|rule| !rule.is_empty())
}

/// Unadjusted period dates in increasing order, unbounded: the caller stops
/// iterating, so open-ended missions never materialise an infinite list.
fn period_dates(line: &LineSchedule) -> Result<Box<dyn Iterator<Item = NaiveDate>>, ScheduleError> {
    let anchor = line.first_due_date;
    match line.frequency {
        Frequency::None => Ok(Box::new(std::iter::once(anchor))),
        Frequency::Weekly => Ok(Box::new((0u64..).map_while(move |week| {
            anchor.checked_add_days(Days::new(week.checked_mul(7)?))
        }))),
        Frequency::Custom => {
            let rule = given_rrule(line).ok_or(ScheduleError::RruleRequired)?;
            let rule_set = custom_rule_set(rule, anchor)?;
            let mut previous: Option<NaiveDate> = None;
            // Sub-daily parts (BYHOUR=9,14) yield several instants per day;
            // only the date matters here.
            Ok(Box::new(rule_set.into_iter().filter_map(move |instant| {
                let date = instant.date_naive();
                let is_new = previous.is_none_or(|seen| seen < date);
                previous = Some(date);
                is_new.then_some(date)
            })))
        }
        month_based => {
            let months_per_period = month_based.months_per_period().unwrap_or(1);
            // Always step from the anchor so a 30th anchor returns to the
            // 30th after February; chrono clamps to the month's last day.
            Ok(Box::new((0u32..).map_while(move |period| {
                anchor.checked_add_months(Months::new(period.checked_mul(months_per_period)?))
            })))
        }
    }
}

/// Parses and validates a CUSTOM rule with DTSTART at the first due date,
/// midnight UTC, so evaluation never depends on the server's time zone.
fn custom_rule_set(rule: &str, first_due_date: NaiveDate) -> Result<RRuleSet, ScheduleError> {
    let rule = rule.trim();
    let rule = strip_prefix_ignore_case(rule, "RRULE:").unwrap_or(rule);
    if rule.contains(['\n', '\r']) || rule.contains(':') {
        return Err(ScheduleError::InvalidRrule(
            "give a single RRULE value such as FREQ=MONTHLY;BYMONTHDAY=30; \
             DTSTART is the first due date and cannot be set in the rule"
                .to_owned(),
        ));
    }
    let rule = normalise_until(rule)?;
    let unvalidated: RRule<Unvalidated> = rule
        .parse()
        .map_err(|error: rrule::RRuleError| ScheduleError::InvalidRrule(error.to_string()))?;
    // The crate accepts INTERVAL=0 and then silently yields nothing; RFC 5545
    // requires a positive interval, and an empty schedule would go unnoticed.
    if unvalidated.get_interval() == 0 {
        return Err(ScheduleError::InvalidRrule(
            "INTERVAL must be at least 1".to_owned(),
        ));
    }
    if unvalidated.get_freq() > rrule::Frequency::Daily {
        return Err(ScheduleError::InvalidRrule(
            "reminders repeat at most daily; use FREQ=DAILY, WEEKLY, MONTHLY or YEARLY".to_owned(),
        ));
    }
    let dt_start = utc_midnight(first_due_date)?;
    let validated = unvalidated
        .validate(dt_start)
        .map_err(|error| ScheduleError::InvalidRrule(error.to_string()))?;
    // `limit` makes the crate give up on rules that can never match
    // (BYMONTHDAY=30;BYMONTH=2) instead of searching forever.
    Ok(RRuleSet::new(dt_start).rrule(validated).limit())
}

fn utc_midnight(date: NaiveDate) -> Result<DateTime<Tz>, ScheduleError> {
    Tz::UTC
        .from_local_datetime(&date.and_time(chrono::NaiveTime::MIN))
        .single()
        .ok_or_else(|| {
            ScheduleError::InvalidRrule(format!("the first due date {date} cannot start a rule"))
        })
}

/// RFC 5545 wants UNTIL to be a DATE when DTSTART is one, but the `rrule`
/// crate reads a date-only UNTIL in the server's local time zone and then
/// rejects it against a UTC DTSTART. Rewriting it as UTC midnight keeps the
/// date inclusive and the result independent of the server's time zone.
fn normalise_until(rule: &str) -> Result<String, ScheduleError> {
    let parts: Result<Vec<String>, ScheduleError> = rule
        .split(';')
        .map(|part| match part.split_once('=') {
            Some((name, value)) if name.trim().eq_ignore_ascii_case("UNTIL") => {
                let value = value.trim();
                let is_date = value.len() == 8 && value.bytes().all(|byte| byte.is_ascii_digit());
                if is_date {
                    Ok(format!("UNTIL={value}T000000Z"))
                } else if value.ends_with(['Z', 'z']) {
                    Ok(format!("UNTIL={value}"))
                } else {
                    Err(ScheduleError::InvalidRrule(format!(
                        "UNTIL={value} must be a date (YYYYMMDD) or a UTC date-time ending in Z"
                    )))
                }
            }
            _ => Ok(part.to_owned()),
        })
        .collect();
    Ok(parts?.join(";"))
}

fn strip_prefix_ignore_case<'text>(text: &'text str, prefix: &str) -> Option<&'text str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| text.get(prefix.len()..))
        .flatten()
}

#[cfg(test)]
#[expect(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ymd(year: i32, month: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(year, month, day).expect("valid test date")
    }

    fn line(frequency: Frequency, first_due_date: NaiveDate) -> LineSchedule {
        LineSchedule {
            frequency,
            first_due_date,
            quantity: 1,
            rrule: None,
            adjustment: WorkingDayAdjustment::None,
        }
    }

    fn custom_line(rule: &str, first_due_date: NaiveDate) -> LineSchedule {
        LineSchedule {
            rrule: Some(rule.to_owned()),
            ..line(Frequency::Custom, first_due_date)
        }
    }

    fn open_window(start_date: NaiveDate) -> MissionWindow {
        MissionWindow {
            start_date,
            end_date: None,
        }
    }

    fn window(start_date: NaiveDate, end_date: NaiveDate) -> MissionWindow {
        MissionWindow {
            start_date,
            end_date: Some(end_date),
        }
    }

    #[test]
    fn a_31st_anchor_monthly_clamps_to_each_months_last_day() {
        let first = ymd(2027, 1, 31);
        let dates = due_dates(
            &line(Frequency::Monthly, first),
            &open_window(first),
            ymd(2027, 4, 30),
        )
        .unwrap();
        assert_eq!(
            dates,
            vec![first, ymd(2027, 2, 28), ymd(2027, 3, 31), ymd(2027, 4, 30)]
        );
    }

    #[test]
    fn a_31st_anchor_monthly_lands_on_29_february_in_a_leap_year() {
        let first = ymd(2028, 1, 31);
        let dates = due_dates(
            &line(Frequency::Monthly, first),
            &open_window(first),
            ymd(2028, 3, 31),
        )
        .unwrap();
        assert_eq!(dates, vec![first, ymd(2028, 2, 29), ymd(2028, 3, 31)]);
    }

    #[test]
    fn a_30th_anchor_returns_to_the_30th_after_february() {
        let first = ymd(2027, 1, 30);
        let dates = due_dates(
            &line(Frequency::Monthly, first),
            &open_window(first),
            ymd(2027, 4, 30),
        )
        .unwrap();
        assert_eq!(
            dates,
            vec![first, ymd(2027, 2, 28), ymd(2027, 3, 30), ymd(2027, 4, 30)]
        );
    }

    #[test]
    fn bimonthly_means_every_two_months_and_keeps_its_anchor() {
        let first = ymd(2027, 1, 31);
        let dates = due_dates(
            &line(Frequency::Bimonthly, first),
            &open_window(first),
            ymd(2027, 9, 30),
        )
        .unwrap();
        assert_eq!(
            dates,
            vec![
                first,
                ymd(2027, 3, 31),
                ymd(2027, 5, 31),
                ymd(2027, 7, 31),
                ymd(2027, 9, 30)
            ]
        );
    }

    #[test]
    fn quarterly_keeps_its_anchor() {
        let first = ymd(2027, 1, 31);
        let dates = due_dates(
            &line(Frequency::Quarterly, first),
            &open_window(first),
            ymd(2028, 1, 31),
        )
        .unwrap();
        assert_eq!(
            dates,
            vec![
                first,
                ymd(2027, 4, 30),
                ymd(2027, 7, 31),
                ymd(2027, 10, 31),
                ymd(2028, 1, 31)
            ]
        );
    }

    #[test]
    fn semiannual_keeps_its_anchor() {
        let first = ymd(2027, 8, 31);
        let dates = due_dates(
            &line(Frequency::Semiannual, first),
            &open_window(first),
            ymd(2028, 8, 31),
        )
        .unwrap();
        assert_eq!(dates, vec![first, ymd(2028, 2, 29), ymd(2028, 8, 31)]);
    }

    #[test]
    fn annual_from_29_february_keeps_its_anchor_for_the_next_leap_year() {
        let first = ymd(2024, 2, 29);
        let dates = due_dates(
            &line(Frequency::Annual, first),
            &open_window(first),
            ymd(2028, 12, 31),
        )
        .unwrap();
        assert_eq!(
            dates,
            vec![
                first,
                ymd(2025, 2, 28),
                ymd(2026, 2, 28),
                ymd(2027, 2, 28),
                ymd(2028, 2, 29)
            ]
        );
    }

    #[test]
    fn weekly_adds_seven_days_each_time() {
        let first = ymd(2027, 1, 4);
        let dates = due_dates(
            &line(Frequency::Weekly, first),
            &open_window(first),
            ymd(2027, 1, 25),
        )
        .unwrap();
        assert_eq!(
            dates,
            vec![first, ymd(2027, 1, 11), ymd(2027, 1, 18), ymd(2027, 1, 25)]
        );
    }

    #[test]
    fn the_firms_example_creates_each_reminder_ten_days_before_the_30th() {
        let first = ymd(2027, 1, 30);
        let monthly = line(Frequency::Monthly, first);
        let mission = open_window(ymd(2027, 1, 1));

        let too_early = occurrences_created_by(&monthly, &mission, 10, ymd(2027, 1, 19)).unwrap();
        assert!(too_early.is_empty());

        let january = occurrences_created_by(&monthly, &mission, 10, ymd(2027, 1, 20)).unwrap();
        assert_eq!(
            january,
            vec![Occurrence {
                due_date: first,
                copy_number: 1,
                creation_date: ymd(2027, 1, 20)
            }]
        );

        let through_march =
            occurrences_created_by(&monthly, &mission, 10, ymd(2027, 3, 20)).unwrap();
        assert_eq!(
            through_march,
            vec![
                Occurrence {
                    due_date: first,
                    copy_number: 1,
                    creation_date: ymd(2027, 1, 20)
                },
                Occurrence {
                    due_date: ymd(2027, 2, 28),
                    copy_number: 1,
                    creation_date: ymd(2027, 2, 18)
                },
                Occurrence {
                    due_date: ymd(2027, 3, 30),
                    copy_number: 1,
                    creation_date: ymd(2027, 3, 20)
                },
            ]
        );
    }

    #[test]
    fn none_with_quantity_three_gives_one_due_date_and_copies_one_to_three() {
        let first = ymd(2027, 6, 15);
        let one_off = LineSchedule {
            quantity: 3,
            ..line(Frequency::None, first)
        };
        let mission = open_window(first);
        assert_eq!(
            due_dates(&one_off, &mission, ymd(2030, 1, 1)).unwrap(),
            vec![first]
        );
        let occurrences = occurrences_created_by(&one_off, &mission, 5, ymd(2027, 6, 10)).unwrap();
        let copies: Vec<(NaiveDate, u32, NaiveDate)> = occurrences
            .iter()
            .map(|occurrence| {
                (
                    occurrence.due_date,
                    occurrence.copy_number,
                    occurrence.creation_date,
                )
            })
            .collect();
        let created = ymd(2027, 6, 10);
        assert_eq!(
            copies,
            vec![
                (first, 1, created),
                (first, 2, created),
                (first, 3, created)
            ]
        );
    }

    #[test]
    fn the_window_end_bounds_the_due_dates_inclusively() {
        let first = ymd(2027, 1, 15);
        let mission = window(first, ymd(2027, 4, 15));
        let dates = due_dates(&line(Frequency::Monthly, first), &mission, ymd(2030, 1, 1)).unwrap();
        assert_eq!(
            dates,
            vec![first, ymd(2027, 2, 15), ymd(2027, 3, 15), ymd(2027, 4, 15)]
        );
    }

    #[test]
    fn until_bounds_the_due_dates_inclusively() {
        let first = ymd(2027, 1, 15);
        let dates = due_dates(
            &line(Frequency::Monthly, first),
            &open_window(first),
            ymd(2027, 3, 15),
        )
        .unwrap();
        assert_eq!(dates, vec![first, ymd(2027, 2, 15), ymd(2027, 3, 15)]);
    }

    #[test]
    fn an_until_before_the_first_due_date_gives_nothing() {
        let first = ymd(2027, 1, 15);
        let dates = due_dates(
            &line(Frequency::Monthly, first),
            &open_window(first),
            ymd(2027, 1, 14),
        )
        .unwrap();
        assert!(dates.is_empty());
    }

    #[test]
    fn easter_sunday_matches_the_published_dates() {
        assert_eq!(easter_sunday(2024), Some(ymd(2024, 3, 31)));
        assert_eq!(easter_sunday(2025), Some(ymd(2025, 4, 20)));
        assert_eq!(easter_sunday(2026), Some(ymd(2026, 4, 5)));
        assert_eq!(easter_sunday(2027), Some(ymd(2027, 3, 28)));
        assert_eq!(easter_sunday(2038), Some(ymd(2038, 4, 25)));
        assert_eq!(easter_sunday(2285), Some(ymd(2285, 3, 22)));
    }

    #[test]
    fn the_movable_french_holidays_of_2027_are_recognised() {
        assert!(is_french_public_holiday(ymd(2027, 3, 29)));
        assert!(is_french_public_holiday(ymd(2027, 5, 6)));
        assert!(is_french_public_holiday(ymd(2027, 5, 17)));
        assert!(!is_french_public_holiday(ymd(2027, 3, 28)));
        assert!(!is_french_public_holiday(ymd(2027, 3, 26)));
    }

    #[test]
    fn the_fixed_french_holidays_are_recognised_and_ordinary_days_are_not() {
        for (month, day) in [
            (1, 1),
            (5, 1),
            (5, 8),
            (7, 14),
            (8, 15),
            (11, 1),
            (11, 11),
            (12, 25),
        ] {
            assert!(is_french_public_holiday(ymd(2027, month, day)));
        }
        assert!(!is_french_public_holiday(ymd(2027, 12, 26)));
        assert!(is_working_day(ymd(2027, 3, 30)));
        assert!(!is_working_day(ymd(2027, 3, 27)));
    }

    #[test]
    fn a_saturday_holiday_moves_to_the_next_monday() {
        assert_eq!(
            adjust_to_working_day(ymd(2027, 5, 1), WorkingDayAdjustment::Next),
            ymd(2027, 5, 3)
        );
    }

    #[test]
    fn a_friday_holiday_moves_to_monday_or_back_to_thursday() {
        assert_eq!(
            adjust_to_working_day(ymd(2027, 1, 1), WorkingDayAdjustment::Next),
            ymd(2027, 1, 4)
        );
        assert_eq!(
            adjust_to_working_day(ymd(2027, 1, 1), WorkingDayAdjustment::Previous),
            ymd(2026, 12, 31)
        );
        assert_eq!(
            adjust_to_working_day(ymd(2027, 1, 1), WorkingDayAdjustment::None),
            ymd(2027, 1, 1)
        );
    }

    #[test]
    fn adjusted_due_dates_are_the_dates_reported() {
        let first = ymd(2027, 5, 1);
        let adjusted = LineSchedule {
            adjustment: WorkingDayAdjustment::Next,
            ..line(Frequency::Monthly, first)
        };
        let dates = due_dates(&adjusted, &open_window(first), ymd(2027, 8, 2)).unwrap();
        // 1 May is a Saturday holiday, 1 August a Sunday.
        assert_eq!(
            dates,
            vec![
                ymd(2027, 5, 3),
                ymd(2027, 6, 1),
                ymd(2027, 7, 1),
                ymd(2027, 8, 2)
            ]
        );
    }

    #[test]
    fn a_daily_rule_with_adjustment_collapses_the_weekend_onto_monday() {
        let first = ymd(2027, 3, 4);
        let daily = LineSchedule {
            adjustment: WorkingDayAdjustment::Next,
            ..custom_line("FREQ=DAILY", first)
        };
        let dates = due_dates(&daily, &open_window(first), ymd(2027, 3, 9)).unwrap();
        assert_eq!(
            dates,
            vec![
                ymd(2027, 3, 4),
                ymd(2027, 3, 5),
                ymd(2027, 3, 8),
                ymd(2027, 3, 9)
            ]
        );
    }

    #[test]
    fn a_custom_monthly_30th_rule_skips_february() {
        let first = ymd(2027, 1, 30);
        let dates = due_dates(
            &custom_line("RRULE:FREQ=MONTHLY;BYMONTHDAY=30", first),
            &open_window(first),
            ymd(2027, 4, 30),
        )
        .unwrap();
        assert_eq!(dates, vec![first, ymd(2027, 3, 30), ymd(2027, 4, 30)]);
    }

    #[test]
    fn a_custom_first_due_date_the_rule_does_not_match_is_not_a_due_date() {
        let first = ymd(2027, 1, 15);
        let dates = due_dates(
            &custom_line("FREQ=MONTHLY;BYMONTHDAY=30", first),
            &open_window(first),
            ymd(2027, 3, 31),
        )
        .unwrap();
        assert_eq!(dates, vec![ymd(2027, 1, 30), ymd(2027, 3, 30)]);
    }

    #[test]
    fn a_custom_rule_with_a_date_only_until_includes_that_date() {
        let first = ymd(2027, 1, 15);
        let dates = due_dates(
            &custom_line("FREQ=MONTHLY;UNTIL=20270415", first),
            &open_window(first),
            ymd(2030, 1, 1),
        )
        .unwrap();
        assert_eq!(
            dates,
            vec![first, ymd(2027, 2, 15), ymd(2027, 3, 15), ymd(2027, 4, 15)]
        );
    }

    #[test]
    fn a_custom_rule_with_a_count_stops_after_that_many_dates() {
        let first = ymd(2027, 1, 15);
        let dates = due_dates(
            &custom_line("FREQ=WEEKLY;COUNT=3", first),
            &open_window(first),
            ymd(2030, 1, 1),
        )
        .unwrap();
        assert_eq!(dates, vec![first, ymd(2027, 1, 22), ymd(2027, 1, 29)]);
    }

    #[test]
    fn a_custom_rule_that_never_matches_gives_no_dates() {
        let first = ymd(2027, 1, 15);
        let dates = due_dates(
            &custom_line("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", first),
            &open_window(first),
            ymd(2040, 1, 1),
        )
        .unwrap();
        assert!(dates.is_empty());
    }

    #[test]
    fn a_custom_rule_bounded_by_an_open_window_stops_at_until() {
        let first = ymd(2027, 1, 1);
        let dates = due_dates(
            &custom_line("FREQ=DAILY", first),
            &open_window(first),
            ymd(2027, 1, 10),
        )
        .unwrap();
        assert_eq!(dates.len(), 10);
    }

    #[test]
    fn an_effectively_unbounded_horizon_is_refused() {
        let first = ymd(2000, 1, 1);
        let error = due_dates(
            &custom_line("FREQ=DAILY", first),
            &open_window(first),
            ymd(2400, 1, 1),
        )
        .unwrap_err();
        assert_eq!(
            error,
            ScheduleError::TooManyOccurrences {
                limit: MAX_OCCURRENCES
            }
        );
        assert_eq!(error.field(), "endDate");
    }

    #[test]
    fn an_end_before_the_start_is_reported_on_the_end_date() {
        let first = ymd(2027, 2, 1);
        let error = validate_line(
            &line(Frequency::Monthly, first),
            &window(first, ymd(2027, 1, 31)),
        )
        .unwrap_err();
        assert!(matches!(error, ScheduleError::EndBeforeStart { .. }));
        assert_eq!(error.field(), "endDate");
        assert_eq!(
            error.to_string(),
            "the mission's end date 2027-01-31 is before its start date 2027-02-01"
        );
    }

    #[test]
    fn a_first_due_date_before_the_start_is_reported_on_the_first_due_date() {
        let error = validate_line(
            &line(Frequency::Monthly, ymd(2027, 1, 30)),
            &open_window(ymd(2027, 2, 1)),
        )
        .unwrap_err();
        assert!(matches!(
            error,
            ScheduleError::FirstDueDateOutsideWindow { .. }
        ));
        assert_eq!(error.field(), "firstDueDate");
        assert_eq!(
            error.to_string(),
            "the first due date 2027-01-30 is before the mission's start date 2027-02-01"
        );
    }

    #[test]
    fn a_first_due_date_after_the_end_is_reported_on_the_first_due_date() {
        let error = validate_line(
            &line(Frequency::Monthly, ymd(2027, 7, 1)),
            &window(ymd(2027, 1, 1), ymd(2027, 6, 30)),
        )
        .unwrap_err();
        assert!(matches!(
            error,
            ScheduleError::FirstDueDateOutsideWindow { .. }
        ));
        assert_eq!(
            error.to_string(),
            "the first due date 2027-07-01 is after the mission's end date 2027-06-30"
        );
    }

    #[test]
    fn a_zero_quantity_is_refused() {
        let first = ymd(2027, 1, 1);
        let error = validate_line(
            &LineSchedule {
                quantity: 0,
                ..line(Frequency::None, first)
            },
            &open_window(first),
        )
        .unwrap_err();
        assert_eq!(error, ScheduleError::QuantityMustBePositive);
        assert_eq!(error.field(), "quantity");
    }

    #[test]
    fn several_copies_of_a_recurring_line_are_refused() {
        let first = ymd(2027, 1, 1);
        let error = validate_line(
            &LineSchedule {
                quantity: 2,
                ..line(Frequency::Monthly, first)
            },
            &open_window(first),
        )
        .unwrap_err();
        assert_eq!(
            error,
            ScheduleError::QuantityRequiresFrequencyNone {
                quantity: 2,
                frequency: Frequency::Monthly
            }
        );
        assert_eq!(error.field(), "quantity");
    }

    #[test]
    fn a_custom_line_without_a_rule_is_refused() {
        let first = ymd(2027, 1, 1);
        for missing in [None, Some("   ".to_owned())] {
            let error = validate_line(
                &LineSchedule {
                    rrule: missing,
                    ..line(Frequency::Custom, first)
                },
                &open_window(first),
            )
            .unwrap_err();
            assert_eq!(error, ScheduleError::RruleRequired);
            assert_eq!(error.field(), "rrule");
        }
    }

    #[test]
    fn a_rule_on_a_non_custom_line_is_refused() {
        let first = ymd(2027, 1, 1);
        let error = validate_line(
            &LineSchedule {
                rrule: Some("FREQ=MONTHLY".to_owned()),
                ..line(Frequency::Quarterly, first)
            },
            &open_window(first),
        )
        .unwrap_err();
        assert_eq!(
            error,
            ScheduleError::RruleNotAllowed {
                frequency: Frequency::Quarterly
            }
        );
        assert_eq!(error.field(), "rrule");
    }

    #[test]
    fn malformed_rules_are_refused_with_a_message() {
        let first = ymd(2027, 1, 1);
        for bad_rule in [
            "FREQ=SOMETIMES",
            "FREQ=MONTHLY;BYMONTHDAY=32",
            "FREQ=MONTHLY;UNTIL=20261231",
            "FREQ=MONTHLY;UNTIL=20271231T120000",
            "FREQ=HOURLY",
            "FREQ=MONTHLY;INTERVAL=0",
            "DTSTART:20270101T000000Z\nRRULE:FREQ=DAILY",
            "not a rule",
        ] {
            let error =
                validate_line(&custom_line(bad_rule, first), &open_window(first)).unwrap_err();
            assert!(
                matches!(&error, ScheduleError::InvalidRrule(message) if !message.is_empty()),
                "{bad_rule}: {error:?}"
            );
            assert_eq!(error.field(), "rrule");
            assert!(
                error
                    .to_string()
                    .starts_with("the recurrence rule is invalid: ")
            );
            // Computing dates reports the same error rather than guessing.
            assert_eq!(
                due_dates(&custom_line(bad_rule, first), &open_window(first), first),
                Err(error)
            );
        }
    }

    #[test]
    fn lead_days_from_0_to_366_are_accepted_and_others_refused() {
        assert_eq!(validate_lead_days(0), Ok(0));
        assert_eq!(validate_lead_days(366), Ok(366));
        for bad in [-1, 367, i64::MAX, i64::MIN] {
            let error = validate_lead_days(bad).unwrap_err();
            assert_eq!(error, ScheduleError::LeadDaysOutOfRange { lead_days: bad });
            assert_eq!(error.field(), "leadDays");
        }
        let first = ymd(2027, 1, 1);
        assert_eq!(
            occurrences_created_by(
                &line(Frequency::Monthly, first),
                &open_window(first),
                367,
                first
            ),
            Err(ScheduleError::LeadDaysOutOfRange { lead_days: 367 })
        );
    }

    #[test]
    fn a_valid_line_passes_validation() {
        let first = ymd(2027, 1, 30);
        assert_eq!(
            validate_line(
                &custom_line("FREQ=MONTHLY;BYMONTHDAY=30", first),
                &window(first, first)
            ),
            Ok(())
        );
    }

    #[test]
    fn enum_names_round_trip_and_unknown_names_are_refused() {
        for frequency in Frequency::ALL {
            assert_eq!(frequency.as_str().parse::<Frequency>(), Ok(frequency));
        }
        for adjustment in WorkingDayAdjustment::ALL {
            assert_eq!(
                adjustment.as_str().parse::<WorkingDayAdjustment>(),
                Ok(adjustment)
            );
        }
        let error = "FORTNIGHTLY".parse::<Frequency>().unwrap_err();
        assert_eq!(
            error.to_string(),
            "\"FORTNIGHTLY\" is not a frequency; expected one of NONE, WEEKLY, MONTHLY, \
             BIMONTHLY, QUARTERLY, SEMIANNUAL, ANNUAL, CUSTOM"
        );
        assert!("next".parse::<WorkingDayAdjustment>().is_err());
    }

    #[test]
    fn extending_past_a_saturday_holiday_moved_back_resumes_before_the_old_end() {
        // Issue 9 finding 7: monthly from 2027-02-01, PREVIOUS, lead 10, end 2027-12-31 moved
        // to 2028-12-31. The 2028-01-01 period (a Saturday and a holiday) is due 2027-12-31,
        // created 2027-12-21: the watermark must move back to 2027-12-20.
        let monthly = LineSchedule {
            adjustment: WorkingDayAdjustment::Previous,
            ..line(Frequency::Monthly, ymd(2027, 2, 1))
        };
        let extended = window(ymd(2027, 1, 1), ymd(2028, 12, 31));
        assert_eq!(
            extension_watermark(&monthly, ymd(2027, 12, 31), &extended, 10).unwrap(),
            Some(ymd(2027, 12, 20))
        );
        let fresh = occurrences_created_by(&monthly, &extended, 10, ymd(2028, 2, 29)).unwrap();
        assert!(fresh.contains(&Occurrence {
            due_date: ymd(2027, 12, 31),
            copy_number: 1,
            creation_date: ymd(2027, 12, 21),
        }));
    }

    #[test]
    fn an_extension_that_adds_no_period_moves_no_watermark() {
        let one_off = line(Frequency::None, ymd(2027, 3, 1));
        let extended = window(ymd(2027, 1, 1), ymd(2028, 12, 31));
        assert_eq!(
            extension_watermark(&one_off, ymd(2027, 12, 31), &extended, 10).unwrap(),
            None
        );
        let annual = line(Frequency::Annual, ymd(2027, 3, 1));
        let short = window(ymd(2027, 1, 1), ymd(2028, 2, 1));
        assert_eq!(
            extension_watermark(&annual, ymd(2027, 12, 31), &short, 10).unwrap(),
            None
        );
    }

    #[test]
    fn quantities_are_bounded_on_the_quantity_field() {
        assert!(check_quantity(1, 500).is_ok());
        assert!(check_quantity(500, 500).is_ok());
        assert_eq!(
            check_quantity(0, 500),
            Err(ScheduleError::QuantityMustBePositive)
        );
        let too_many = check_quantity(1_000_000, 500).unwrap_err();
        assert_eq!(too_many.field(), "quantity");
        assert!(too_many.to_string().contains("at most 500"));
    }

    #[test]
    fn creation_date_subtracts_the_lead_days() {
        assert_eq!(creation_date(ymd(2027, 3, 1), 1), Some(ymd(2027, 2, 28)));
        assert_eq!(creation_date(ymd(2027, 3, 1), 0), Some(ymd(2027, 3, 1)));
        assert_eq!(creation_date(NaiveDate::MIN, 1), None);
    }

    fn date_in_2000s() -> impl Strategy<Value = NaiveDate> {
        (0u64..36_525).prop_map(|offset| ymd(2000, 1, 1) + Days::new(offset))
    }

    fn recurring_frequency() -> impl Strategy<Value = Frequency> {
        prop::sample::select(vec![
            Frequency::None,
            Frequency::Weekly,
            Frequency::Monthly,
            Frequency::Bimonthly,
            Frequency::Quarterly,
            Frequency::Semiannual,
            Frequency::Annual,
        ])
    }

    fn adjustment() -> impl Strategy<Value = WorkingDayAdjustment> {
        prop::sample::select(WorkingDayAdjustment::ALL.to_vec())
    }

    fn last_day_of_month(year: i32, month: u32) -> u32 {
        (28..=31)
            .rev()
            .find(|day| NaiveDate::from_ymd_opt(year, month, *day).is_some())
            .unwrap()
    }

    /// Independent of chrono's month arithmetic: counts months as integers.
    fn expected_month_based(anchor: NaiveDate, months_per_period: u32, period: usize) -> NaiveDate {
        let months_since_anchor =
            i32::try_from(period).unwrap() * i32::try_from(months_per_period).unwrap();
        let months =
            anchor.year() * 12 + i32::try_from(anchor.month0()).unwrap() + months_since_anchor;
        let year = months.div_euclid(12);
        let month = u32::try_from(months.rem_euclid(12)).unwrap() + 1;
        ymd(
            year,
            month,
            anchor.day().min(last_day_of_month(year, month)),
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn due_dates_are_strictly_increasing_and_inside_the_window(
            frequency in recurring_frequency(),
            first in date_in_2000s(),
            days_before_start in 0u64..400,
            days_to_end in prop::option::of(0u64..3_000),
            days_to_until in 0u64..4_000,
            quantity in 1u32..5,
        ) {
            let schedule = LineSchedule {
                quantity: if frequency == Frequency::None { quantity } else { 1 },
                ..line(frequency, first)
            };
            let mission = MissionWindow {
                start_date: first - Days::new(days_before_start),
                end_date: days_to_end.map(|days| first + Days::new(days)),
            };
            let until = first + Days::new(days_to_until);
            let dates = due_dates(&schedule, &mission, until).unwrap();

            prop_assert_eq!(dates.first(), Some(&first));
            prop_assert!(dates.windows(2).all(|pair| pair[0] < pair[1]));
            for date in &dates {
                prop_assert!(*date >= first && *date <= until);
                prop_assert!(mission.end_date.is_none_or(|end| *date <= end));
            }
            if let Some(months_per_period) = frequency.months_per_period() {
                for (period, date) in dates.iter().enumerate() {
                    let expected = expected_month_based(first, months_per_period, period);
                    prop_assert_eq!(*date, expected);
                    prop_assert_eq!(
                        date.day(),
                        first.day().min(last_day_of_month(date.year(), date.month()))
                    );
                }
                // Nothing was left out: the next period is past a bound.
                let next = expected_month_based(first, months_per_period, dates.len());
                prop_assert!(next > until || mission.end_date.is_some_and(|end| next > end));
            }
            if frequency == Frequency::Weekly {
                prop_assert!(dates.windows(2).all(|pair| pair[1] - pair[0] == chrono::TimeDelta::days(7)));
            }
        }

        #[test]
        fn creation_dates_are_exactly_lead_days_before_due_dates(
            frequency in recurring_frequency(),
            first in date_in_2000s(),
            lead_days in 0u32..=366,
            days_from_first_to_as_of in -400i64..2_000,
            adjustment in adjustment(),
        ) {
            let schedule = LineSchedule { adjustment, ..line(frequency, first) };
            let mission = open_window(first);
            let as_of = first + chrono::TimeDelta::days(days_from_first_to_as_of);
            let occurrences = occurrences_created_by(&schedule, &mission, lead_days, as_of).unwrap();
            for occurrence in &occurrences {
                prop_assert_eq!(
                    occurrence.creation_date,
                    occurrence.due_date - Days::new(u64::from(lead_days))
                );
                prop_assert!(occurrence.creation_date <= as_of);
                prop_assert_eq!(occurrence.copy_number, 1);
            }
            // Exactly the due dates whose creation day has come, none missing.
            let horizon = as_of + Days::new(u64::from(lead_days) + 800);
            let expected: Vec<NaiveDate> = due_dates(&schedule, &mission, horizon)
                .unwrap()
                .into_iter()
                .filter(|due| *due - Days::new(u64::from(lead_days)) <= as_of)
                .collect();
            let got: Vec<NaiveDate> = occurrences.iter().map(|occurrence| occurrence.due_date).collect();
            prop_assert_eq!(got, expected);
        }

        #[test]
        fn working_day_adjustment_never_lands_on_a_weekend_or_holiday(
            date in date_in_2000s(),
        ) {
            let next = adjust_to_working_day(date, WorkingDayAdjustment::Next);
            let previous = adjust_to_working_day(date, WorkingDayAdjustment::Previous);
            prop_assert!(is_working_day(next));
            prop_assert!(is_working_day(previous));
            prop_assert!(next >= date && next - date <= chrono::TimeDelta::days(4));
            prop_assert!(previous <= date && date - previous <= chrono::TimeDelta::days(4));
            if is_working_day(date) {
                prop_assert_eq!(next, date);
                prop_assert_eq!(previous, date);
            }
        }

        #[test]
        fn adjusted_due_dates_are_working_days_and_strictly_increasing(
            frequency in recurring_frequency(),
            first in date_in_2000s(),
            adjustment in prop::sample::select(vec![WorkingDayAdjustment::Next, WorkingDayAdjustment::Previous]),
            days_to_until in 0u64..2_000,
        ) {
            let schedule = LineSchedule { adjustment, ..line(frequency, first) };
            let dates = due_dates(&schedule, &open_window(first), first + Days::new(days_to_until)).unwrap();
            prop_assert!(dates.iter().all(|date| is_working_day(*date)));
            prop_assert!(dates.windows(2).all(|pair| pair[0] < pair[1]));
        }

        /// Extending the end never loses an occurrence that a fresh mission with the new end
        /// would generate, whatever the frequency and adjustment: generate the old mission up
        /// to `first_as_of`, move the watermark back as `updateMission` does, generate again.
        #[test]
        fn extending_the_end_never_loses_an_occurrence_a_fresh_mission_would_generate(
            frequency in recurring_frequency(),
            first in date_in_2000s(),
            adjustment in adjustment(),
            lead_days in 0u32..=40,
            days_to_old_end in 0u64..800,
            days_added in prop::option::of(1u64..800),
            days_old_end_to_first_as_of in -60i64..400,
            days_more in 0u64..900,
            quantity in 1u32..3,
        ) {
            let schedule = LineSchedule {
                adjustment,
                quantity: if frequency == Frequency::None { quantity } else { 1 },
                ..line(frequency, first)
            };
            let start_date = first;
            let old_end = first + Days::new(days_to_old_end);
            let old_window = window(start_date, old_end);
            let new_window = MissionWindow {
                start_date,
                end_date: days_added.map(|days| old_end + Days::new(days)),
            };
            let first_as_of = old_end + chrono::TimeDelta::days(days_old_end_to_first_as_of);
            let second_as_of = first_as_of + Days::new(days_more);

            // First pass, old mission: everything created by `first_as_of`.
            let mut generated: std::collections::HashSet<(NaiveDate, u32)> =
                occurrences_created_by(&schedule, &old_window, lead_days, first_as_of)
                    .unwrap()
                    .into_iter()
                    .map(|occurrence| (occurrence.due_date, occurrence.copy_number))
                    .collect();
            let mut watermark = first_as_of;
            if let Some(through) =
                extension_watermark(&schedule, old_end, &new_window, lead_days).unwrap()
            {
                watermark = watermark.min(through);
            }
            // Second pass, extended mission: what lies after the watermark.
            for occurrence in
                occurrences_created_by(&schedule, &new_window, lead_days, second_as_of).unwrap()
            {
                if occurrence.creation_date > watermark {
                    generated.insert((occurrence.due_date, occurrence.copy_number));
                }
            }
            let fresh: std::collections::HashSet<(NaiveDate, u32)> =
                occurrences_created_by(&schedule, &new_window, lead_days, second_as_of)
                    .unwrap()
                    .into_iter()
                    .map(|occurrence| (occurrence.due_date, occurrence.copy_number))
                    .collect();
            prop_assert_eq!(generated, fresh);
        }

        #[test]
        fn a_custom_rule_agrees_with_the_matching_frequency(
            first in date_in_2000s(),
            days_to_until in 0u64..3_000,
            days_to_end in prop::option::of(0u64..3_000),
            kind in 0usize..4,
        ) {
            let day = first.day();
            let (frequency, rule) = match kind {
                0 => (Frequency::Weekly, "FREQ=WEEKLY".to_owned()),
                1 => (Frequency::Monthly, format!("FREQ=MONTHLY;BYMONTHDAY={day}")),
                2 => (Frequency::Quarterly, format!("FREQ=MONTHLY;INTERVAL=3;BYMONTHDAY={day}")),
                _ => (Frequency::Annual, "FREQ=YEARLY".to_owned()),
            };
            // RFC 5545 skips missing days where the frequencies clamp; they
            // only agree on anchors every month has.
            prop_assume!(frequency == Frequency::Weekly || day <= 28);
            let mission = MissionWindow {
                start_date: first,
                end_date: days_to_end.map(|days| first + Days::new(days)),
            };
            let until = first + Days::new(days_to_until);
            let from_rule = due_dates(&custom_line(&rule, first), &mission, until).unwrap();
            let from_frequency = due_dates(&line(frequency, first), &mission, until).unwrap();
            prop_assert_eq!(from_rule, from_frequency);
        }
    }
}
