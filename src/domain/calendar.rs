//! Firm-local time: what "today" is for a firm, and when its client emails may leave.
//! Pure functions of an instant and an IANA time zone; the server's own zone never matters.

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

/// The local hour after which no client email leaves until the next morning's sending hour.
pub const EVENING_CUTOFF_HOUR: u32 = 20;

/// Parses an IANA time zone name ("Europe/Paris").
pub fn parse_time_zone(name: &str) -> Option<Tz> {
    name.parse::<Tz>().ok()
}

/// The firm's local date at `now`.
pub fn local_today(now: DateTime<Utc>, time_zone: Tz) -> NaiveDate {
    now.with_timezone(&time_zone).date_naive()
}

/// When an email to a client may leave: `now` if the firm's local time is between its sending
/// hour and the evening cut-off, otherwise the next local sending hour (never at night).
/// A sending hour that does not exist on a DST-change day falls to the first instant after it.
pub fn next_sending_time(now: DateTime<Utc>, time_zone: Tz, sending_hour: u32) -> DateTime<Utc> {
    let sending_hour = sending_hour.min(23);
    let local = now.with_timezone(&time_zone);
    let hour = chrono::Timelike::hour(&local);
    let cutoff = EVENING_CUTOFF_HOUR.max(sending_hour + 1);
    if hour >= sending_hour && hour < cutoff {
        return now;
    }
    let day = if hour < sending_hour {
        local.date_naive()
    } else {
        local.date_naive() + Duration::days(1)
    };
    local_instant(day, sending_hour, time_zone).unwrap_or(now)
}

/// The UTC instant of `hour`:00 local time on `day`, skipping forward over a DST gap.
pub fn local_instant(day: NaiveDate, hour: u32, time_zone: Tz) -> Option<DateTime<Utc>> {
    let mut time = NaiveTime::from_hms_opt(hour, 0, 0)?;
    for _ in 0..4 {
        let naive = day.and_time(time);
        if let Some(instant) = time_zone.from_local_datetime(&naive).earliest() {
            return Some(instant.with_timezone(&Utc));
        }
        time += Duration::minutes(30);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("valid instant")
            .with_timezone(&Utc)
    }

    #[test]
    fn today_is_the_firms_local_date_not_the_servers() {
        let paris = parse_time_zone("Europe/Paris").expect("zone");
        let noumea = parse_time_zone("Pacific/Noumea").expect("zone");
        let instant = utc("2027-01-19T23:30:00Z");
        assert_eq!(local_today(instant, paris).to_string(), "2027-01-20");
        assert_eq!(
            local_today(instant, chrono_tz::UTC).to_string(),
            "2027-01-19"
        );
        assert_eq!(
            local_today(utc("2027-01-19T13:30:00Z"), noumea).to_string(),
            "2027-01-20"
        );
    }

    #[test]
    fn local_midnight_moves_with_daylight_saving_time_in_paris() {
        let paris = parse_time_zone("Europe/Paris").expect("zone");
        // Winter: UTC+1; summer (after 2027-03-28): UTC+2.
        assert_eq!(
            local_today(utc("2027-03-27T22:59:00Z"), paris).to_string(),
            "2027-03-27"
        );
        assert_eq!(
            local_today(utc("2027-03-27T23:00:00Z"), paris).to_string(),
            "2027-03-28"
        );
        assert_eq!(
            local_today(utc("2027-03-28T21:59:00Z"), paris).to_string(),
            "2027-03-28"
        );
        assert_eq!(
            local_today(utc("2027-03-28T22:00:00Z"), paris).to_string(),
            "2027-03-29"
        );
    }

    #[test]
    fn emails_wait_for_the_sending_hour_and_never_leave_at_night() {
        let paris = parse_time_zone("Europe/Paris").expect("zone");
        // 03:00 local -> 08:00 local the same day.
        assert_eq!(
            next_sending_time(utc("2027-01-20T02:00:00Z"), paris, 8),
            utc("2027-01-20T07:00:00Z")
        );
        // 10:00 local: daytime, leaves now.
        let daytime = utc("2027-01-20T09:00:00Z");
        assert_eq!(next_sending_time(daytime, paris, 8), daytime);
        // 22:00 local -> 08:00 the next day.
        assert_eq!(
            next_sending_time(utc("2027-01-20T21:00:00Z"), paris, 8),
            utc("2027-01-21T07:00:00Z")
        );
        // Summer time: 08:00 local is 06:00 UTC.
        assert_eq!(
            next_sending_time(utc("2027-07-01T01:00:00Z"), paris, 8),
            utc("2027-07-01T06:00:00Z")
        );
    }

    #[test]
    fn a_sending_hour_inside_a_dst_gap_moves_to_the_first_real_instant() {
        let paris = parse_time_zone("Europe/Paris").expect("zone");
        let day = NaiveDate::from_ymd_opt(2027, 3, 28).expect("date");
        // 02:00 does not exist that night in Paris; 03:00 local (01:00 UTC) does.
        assert_eq!(
            local_instant(day, 2, paris),
            Some(utc("2027-03-28T01:00:00Z"))
        );
    }
}
