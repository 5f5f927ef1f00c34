//! HTTP-date (RFC 9110 §5.6.7): the three forms a `Retry-After` date may take, and IMF-fixdate
//! formatting.
//!
//! The conversion between civil dates and days since 1970-01-01 is Howard Hinnant's
//! `days_from_civil`/`civil_from_days` (proleptic Gregorian calendar), on `i64` with inputs
//! bounded so no step can overflow.

use std::time::SystemTime;

use super::wall;

const SECS_PER_DAY: i64 = 86_400;
/// 0000-01-01T00:00:00Z, the earliest instant with a four-digit year.
const MIN_FORMATTED_SECS: i64 = -62_167_219_200;
/// 9999-12-31T23:59:59Z, the latest instant with a four-digit year.
const MAX_FORMATTED_SECS: i64 = 253_402_300_799;

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
/// Indexed by `(days since 1970-01-01 + 4) mod 7`: 1970-01-01 was a Thursday.
const WEEKDAYS: [(&str, &str); 7] = [
    ("Sun", "Sunday"),
    ("Mon", "Monday"),
    ("Tue", "Tuesday"),
    ("Wed", "Wednesday"),
    ("Thu", "Thursday"),
    ("Fri", "Friday"),
    ("Sat", "Saturday"),
];

/// Parses an HTTP-date in any of RFC 9110's three forms into the instant it names.
///
/// | form | example |
/// |---|---|
/// | IMF-fixdate (preferred) | `Sun, 06 Nov 1994 08:49:37 GMT` |
/// | obsolete RFC 850 | `Sunday, 06-Nov-94 08:49:37 GMT` |
/// | ANSI C `asctime()` | `Sun Nov  6 08:49:37 1994` |
///
/// RFC 9110 asks recipients to be lenient, so this parser
/// - trims surrounding whitespace and accepts runs of spaces (or tabs) between the fields;
/// - matches day and month names case-insensitively and accepts the short (`Sun`) or long
///   (`Sunday`) weekday name in any form. The weekday must be a weekday name but need **not**
///   agree with the date: it is redundant, and the date is what the server meant;
/// - accepts a one- or two-digit day, `GMT` or `UTC`, a leap second (`:60`, read as the next
///   second), and a four-digit year in the RFC 850 form as well.
///
/// It is strict about the date itself: month 1–12, a day that exists in that month (no
/// 30 February, 29 February only in leap years), hour 0–23, minute 0–59.
///
/// A two-digit RFC 850 year is read with RFC 9110's 50-year rule, relative to `now`: it is the
/// year with those last two digits in the window from 49 years before `now`'s year to 50 years
/// after it (so a date that "appears to be more than 50 years in the future" is the most recent
/// past year with those digits). Years 0000–9999 are accepted; an instant outside
/// `SystemTime`'s range saturates to its nearest end.
///
/// Returns `None` for anything that is not an HTTP-date. Never panics.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use ratewise_core::hint::parse_http_date;
///
/// let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_789_683_711); // 2026-09-17
/// let imf = parse_http_date(b"Sun, 06 Nov 1994 08:49:37 GMT", now);
/// assert_eq!(imf, Some(SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777)));
/// assert_eq!(parse_http_date(b"Sunday, 06-Nov-94 08:49:37 GMT", now), imf);
/// assert_eq!(parse_http_date(b"Sun Nov  6 08:49:37 1994", now), imf);
/// assert_eq!(parse_http_date(b"Sun, 30 Feb 1994 08:49:37 GMT", now), None);
/// ```
pub fn parse_http_date(value: &[u8], now: SystemTime) -> Option<SystemTime> {
    let mut tokens: [&[u8]; 6] = [&[]; 6];
    let mut count = 0usize;
    for token in value
        .split(|&b| b == b' ' || b == b'\t')
        .filter(|t| !t.is_empty())
    {
        *tokens.get_mut(count)? = token;
        count = count.saturating_add(1);
    }
    let civil = match tokens.get(..count)? {
        [weekday, day, month, year, time, zone] => {
            // IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`
            weekday_name(weekday.strip_suffix(b",")?)?;
            utc(zone)?;
            Civil::new(
                number(year, 4, 4)?,
                month_number(month)?,
                number(day, 1, 2)?,
                time,
            )?
        }
        [weekday, date, time, zone] => {
            // RFC 850: `Sunday, 06-Nov-94 08:49:37 GMT`
            weekday_name(weekday.strip_suffix(b",")?)?;
            utc(zone)?;
            let mut parts = date.split(|&b| b == b'-');
            let (day, month, year) = (parts.next()?, parts.next()?, parts.next()?);
            if parts.next().is_some() {
                return None;
            }
            let year = match year.len() {
                2 => fifty_year_rule(number(year, 2, 2)?, year_of(now)),
                _ => number(year, 4, 4)?,
            };
            Civil::new(year, month_number(month)?, number(day, 1, 2)?, time)?
        }
        [weekday, month, day, time, year] => {
            // asctime: `Sun Nov  6 08:49:37 1994`
            weekday_name(weekday)?;
            Civil::new(
                number(year, 4, 4)?,
                month_number(month)?,
                number(day, 1, 2)?,
                time,
            )?
        }
        _ => return None,
    };
    Some(wall::from_unix_seconds(civil.unix_seconds()))
}

/// Formats `t` as an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the form servers send.
///
/// Sub-second precision is dropped (rounded towards the past). An instant before year 0000 or
/// after 9999 is pinned to `Sat, 01 Jan 0000 00:00:00 GMT` or `Fri, 31 Dec 9999 23:59:59 GMT`,
/// since the format has four year digits. Useful for simulated servers and tests;
/// [`parse_http_date`] reads the result back to the same second.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use ratewise_core::hint::format_http_date;
///
/// let t = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777);
/// assert_eq!(format_http_date(t), "Sun, 06 Nov 1994 08:49:37 GMT");
/// ```
pub fn format_http_date(t: SystemTime) -> String {
    let secs = wall::unix_seconds(t).clamp(MIN_FORMATTED_SECS, MAX_FORMATTED_SECS);
    let days = secs.div_euclid(SECS_PER_DAY);
    let second_of_day = secs.rem_euclid(SECS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    let weekday = usize::try_from(days.saturating_add(4).rem_euclid(7))
        .ok()
        .and_then(|i| WEEKDAYS.get(i))
        .map_or("Sun", |(short, _)| short);
    let month = usize::try_from(month.saturating_sub(1))
        .ok()
        .and_then(|i| MONTHS.get(i))
        .copied()
        .unwrap_or("Jan");
    format!(
        "{weekday}, {day:02} {month} {year:04} {:02}:{:02}:{:02} GMT",
        second_of_day / 3600,
        second_of_day % 3600 / 60,
        second_of_day % 60,
    )
}

/// A validated UTC civil date and time of day.
struct Civil {
    year: i64,
    month: u32,
    day: u32,
    second_of_day: i64,
}

impl Civil {
    /// Validates the date and parses `time` (`HH:MM:SS`).
    fn new(year: u32, month: u32, day: u32, time: &[u8]) -> Option<Self> {
        let year = i64::from(year);
        if day == 0 || day > days_in_month(year, month)? {
            return None;
        }
        let [h1, h2, b':', m1, m2, b':', s1, s2] = *time else {
            return None;
        };
        let hour = number(&[h1, h2], 2, 2)?;
        let minute = number(&[m1, m2], 2, 2)?;
        let second = number(&[s1, s2], 2, 2)?;
        if hour > 23 || minute > 59 || second > 60 {
            return None;
        }
        let second_of_day = i64::from(hour * 3600 + minute * 60 + second);
        Some(Self {
            year,
            month,
            day,
            second_of_day,
        })
    }

    /// Seconds since 1970-01-01T00:00:00Z (years 0000–9999 stay far inside `i64`).
    fn unix_seconds(&self) -> i64 {
        days_from_civil(self.year, self.month, self.day)
            .saturating_mul(SECS_PER_DAY)
            .saturating_add(self.second_of_day)
    }
}

/// An ASCII decimal of `min..=max` digits (at most 9, so it fits a `u32`).
fn number(token: &[u8], min: usize, max: usize) -> Option<u32> {
    if token.len() < min || token.len() > max || max > 9 {
        return None;
    }
    token.iter().try_fold(0u32, |acc, &b| {
        b.is_ascii_digit()
            .then(|| acc.saturating_mul(10).saturating_add(u32::from(b - b'0')))
    })
}

fn weekday_name(token: &[u8]) -> Option<()> {
    WEEKDAYS
        .iter()
        .any(|(short, long)| {
            token.eq_ignore_ascii_case(short.as_bytes())
                || token.eq_ignore_ascii_case(long.as_bytes())
        })
        .then_some(())
}

fn month_number(token: &[u8]) -> Option<u32> {
    let index = MONTHS
        .iter()
        .position(|m| token.eq_ignore_ascii_case(m.as_bytes()))?;
    u32::try_from(index).ok()?.checked_add(1)
}

fn utc(token: &[u8]) -> Option<()> {
    (token.eq_ignore_ascii_case(b"GMT") || token.eq_ignore_ascii_case(b"UTC")).then_some(())
}

/// RFC 9110's 50-year rule: the year ending in `yy` within `(now_year - 50, now_year + 50]`.
fn fifty_year_rule(yy: u32, now_year: i64) -> u32 {
    let candidate = now_year
        .div_euclid(100)
        .saturating_mul(100)
        .saturating_add(i64::from(yy));
    let year = if candidate > now_year.saturating_add(50) {
        candidate.saturating_sub(100)
    } else if candidate <= now_year.saturating_sub(50) {
        candidate.saturating_add(100)
    } else {
        candidate
    };
    // Outside 0..=9999 only if `now` is absurd; pin so the date stays representable.
    u32::try_from(year.clamp(0, 9999)).unwrap_or(0)
}

/// The UTC calendar year of `now`.
fn year_of(now: SystemTime) -> i64 {
    civil_from_days(wall::unix_seconds(now).div_euclid(SECS_PER_DAY)).0
}

fn is_leap(year: i64) -> bool {
    year.rem_euclid(4) == 0 && (year.rem_euclid(100) != 0 || year.rem_euclid(400) == 0)
}

fn days_in_month(year: i64, month: u32) -> Option<u32> {
    Some(match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => return None,
    })
}

/// Days since 1970-01-01 of a proleptic Gregorian date (`year` within 0..=9999 here).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let (month, day) = (i64::from(month), i64::from(day));
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400; // [0, 399]
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1; // [0, 365]
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The proleptic Gregorian `(year, month, day)` of `days` since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // `unix_seconds / 86_400` is within ±1.1e14, so every step below stays far inside i64.
    let days = days.clamp(-(1 << 50), 1 << 50) + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097; // [0, 146096]
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153; // [0, 11], March = 0
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (
        year,
        u32::try_from(month).unwrap_or(1),
        u32::try_from(day).unwrap_or(1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_conversions_agree_with_known_dates_and_each_other() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(0, 1, 1) * SECS_PER_DAY, MIN_FORMATTED_SECS);
        assert_eq!(
            days_from_civil(9999, 12, 31) * SECS_PER_DAY + SECS_PER_DAY - 1,
            MAX_FORMATTED_SECS
        );
        for days in (-800_000..3_000_000).step_by(997) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn fifty_year_rule_window_is_relative_to_the_current_year() {
        assert_eq!(fifty_year_rule(94, 2026), 1994);
        assert_eq!(fifty_year_rule(76, 2026), 2076);
        assert_eq!(fifty_year_rule(77, 2026), 1977);
        assert_eq!(fifty_year_rule(10, 2090), 2110);
        assert_eq!(fifty_year_rule(40, 2090), 2140);
        assert_eq!(fifty_year_rule(41, 2090), 2041);
    }

    #[test]
    fn leap_years_follow_the_gregorian_rule() {
        assert!(is_leap(2000) && is_leap(2024) && is_leap(0));
        assert!(!is_leap(1900) && !is_leap(2026));
    }
}
