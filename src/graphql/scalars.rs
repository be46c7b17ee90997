//! The contract's scalars: `Date` (exactly YYYY-MM-DD, years 1900–9999) and `DateTime` (an
//! instant, RFC 3339 in UTC, at most milliseconds).

use async_graphql::{InputValueError, InputValueResult, Scalar, ScalarType, Value};
use chrono::{DurationRound as _, NaiveDate, NaiveDateTime, TimeDelta, Utc};

use crate::domain::validation::parse_calendar_date;

/// A calendar date, written exactly YYYY-MM-DD with a year from 1900 to 9999.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date(pub NaiveDate);

/// A calendar date (RFC 3339 full-date), written exactly YYYY-MM-DD, with a year from 1900
/// to 9999, such as 2027-01-31. Dates have no time zone: a firm's "today" is its own local
/// date.
#[Scalar(
    name = "Date",
    specified_by_url = "https://www.rfc-editor.org/rfc/rfc3339#section-5.6"
)]
impl ScalarType for Date {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(text) => parse_calendar_date(text)
                .map(Date)
                .map_err(InputValueError::custom),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.format("%Y-%m-%d").to_string())
    }
}

impl From<NaiveDate> for Date {
    fn from(date: NaiveDate) -> Self {
        Date(date)
    }
}

/// An instant in UTC, shown to GraphQL with at most millisecond precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct DateTime(pub chrono::DateTime<Utc>);

/// An instant, written in RFC 3339 (date-time) in UTC with at most milliseconds, such as
/// 2027-01-20T09:00:00+00:00 or 2027-01-20T09:00:00.250+00:00.
#[Scalar(
    name = "DateTime",
    specified_by_url = "https://www.rfc-editor.org/rfc/rfc3339#section-5.6"
)]
impl ScalarType for DateTime {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(text) => chrono::DateTime::parse_from_rfc3339(text)
                .map(|instant| DateTime::from(instant.with_timezone(&Utc)))
                .map_err(|_| InputValueError::custom("expected an RFC 3339 date-time")),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.to_rfc3339())
    }
}

impl From<chrono::DateTime<Utc>> for DateTime {
    /// Drops whatever lies below the millisecond.
    fn from(instant: chrono::DateTime<Utc>) -> Self {
        DateTime(
            instant
                .duration_trunc(TimeDelta::milliseconds(1))
                .unwrap_or(instant),
        )
    }
}

impl From<NaiveDateTime> for DateTime {
    /// Reads a stored UTC timestamp.
    fn from(instant: NaiveDateTime) -> Self {
        DateTime::from(instant.and_utc())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_times_show_at_most_milliseconds_in_rfc_3339() {
        let instant = chrono::DateTime::parse_from_rfc3339("2027-01-20T09:00:00.123456789Z")
            .expect("valid")
            .with_timezone(&Utc);
        assert_eq!(
            DateTime::from(instant).to_value(),
            Value::String("2027-01-20T09:00:00.123+00:00".into())
        );
        let whole = instant
            .duration_trunc(TimeDelta::seconds(1))
            .expect("truncates");
        assert_eq!(
            DateTime::from(whole).to_value(),
            Value::String("2027-01-20T09:00:00+00:00".into())
        );
        let micros =
            NaiveDateTime::parse_from_str("2027-01-20 09:00:00.000999", "%Y-%m-%d %H:%M:%S%.f")
                .expect("valid");
        assert_eq!(
            DateTime::from(micros).to_value(),
            Value::String("2027-01-20T09:00:00+00:00".into())
        );
    }

    #[test]
    fn date_times_read_rfc_3339_in_any_offset_as_utc() {
        let read =
            DateTime::parse(Value::String("2027-01-20T10:00:00.5+01:00".into())).expect("valid");
        assert_eq!(
            read.to_value(),
            Value::String("2027-01-20T09:00:00.500+00:00".into())
        );
        assert!(DateTime::parse(Value::String("2027-01-20 09:00".into())).is_err());
    }
}
