//! Wall-clock formats servers put in headers: IMF-fixdate and epoch seconds.

use std::time::{Duration, SystemTime};

/// Whole seconds since the Unix epoch, rounded up (a reset announced early would invite a
/// request before the budget is back); times before the epoch are 0.
pub fn epoch_seconds_ceil(time: SystemTime) -> u64 {
    let since = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    let secs = since.as_secs();
    if since.subsec_nanos() > 0 {
        secs.saturating_add(1)
    } else {
        secs
    }
}

/// `time` as an HTTP-date (IMF-fixdate, RFC 9110 §5.6.7): `Sun, 06 Nov 1994 08:49:37 GMT`,
/// rounded up to the whole second.
pub fn http_date(time: SystemTime) -> String {
    let secs = epoch_seconds_ceil(time);
    let days = secs / 86_400;
    let of_day = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    let weekday = match (days % 7).saturating_add(4) % 7 {
        0 => "Sun",
        1 => "Mon",
        2 => "Tue",
        3 => "Wed",
        4 => "Thu",
        5 => "Fri",
        _ => "Sat",
    };
    let month = match month {
        1 => "Jan",
        2 => "Feb",
        3 => "Mar",
        4 => "Apr",
        5 => "May",
        6 => "Jun",
        7 => "Jul",
        8 => "Aug",
        9 => "Sep",
        10 => "Oct",
        11 => "Nov",
        _ => "Dec",
    };
    format!(
        "{weekday}, {day:02} {month} {year:04} {:02}:{:02}:{:02} GMT",
        of_day / 3600,
        (of_day % 3600) / 60,
        of_day % 60
    )
}

/// `time` as an ISO 8601 / RFC 3339 UTC timestamp, as JSON APIs write them:
/// `1994-11-06T08:49:37Z`, rounded up to the whole second.
pub fn iso8601(time: SystemTime) -> String {
    let secs = epoch_seconds_ceil(time);
    let of_day = secs % 86_400;
    let (year, month, day) = civil_from_days(secs / 86_400);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        of_day / 3600,
        (of_day % 3600) / 60,
        of_day % 60
    )
}

/// (year, month 1-12, day 1-31) of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days.saturating_add(719_468);
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe
        .saturating_add(era.saturating_mul(400))
        .saturating_add(u64::from(month <= 2));
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn http_date_matches_the_rfc_example() {
        assert_eq!(http_date(at(784_111_777)), "Sun, 06 Nov 1994 08:49:37 GMT");
    }

    #[test]
    fn http_date_handles_the_epoch_and_leap_days() {
        assert_eq!(http_date(at(0)), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(at(951_782_400)), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(
            http_date(at(1_767_225_600)),
            "Thu, 01 Jan 2026 00:00:00 GMT"
        );
    }

    #[test]
    fn iso8601_matches_the_same_instant() {
        assert_eq!(iso8601(at(784_111_777)), "1994-11-06T08:49:37Z");
        assert_eq!(iso8601(at(951_782_400)), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn fractions_of_a_second_round_up() {
        let t = at(10) + Duration::from_millis(1);
        assert_eq!(epoch_seconds_ceil(t), 11);
        assert_eq!(epoch_seconds_ceil(at(10)), 10);
        assert_eq!(http_date(t), "Thu, 01 Jan 1970 00:00:11 GMT");
    }
}
