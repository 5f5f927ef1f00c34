//! Properties of the server-hint parsers: no input panics them, numbers are exact or saturate,
//! and HTTP-dates round-trip through the formatter.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proptest::prelude::*;
use ratewise_core::hint::{
    Hint, format_http_date, parse_epoch_reset, parse_epoch_seconds, parse_http_date,
    parse_retry_after, parse_retry_after_ms,
};

/// 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z as Unix seconds.
const MIN_SECS: i64 = -62_167_219_200;
const MAX_SECS: i64 = 253_402_300_799;

fn time(secs: i64, nanos: u32) -> SystemTime {
    let base = if secs >= 0 {
        UNIX_EPOCH + Duration::from_secs(secs.unsigned_abs())
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    };
    base + Duration::from_nanos(u64::from(nanos))
}

fn any_now() -> impl Strategy<Value = SystemTime> {
    (MIN_SECS..=MAX_SECS, 0u32..1_000_000_000).prop_map(|(s, n)| time(s, n))
}

/// Runs every parser on `bytes`: none may panic, and the layered parsers must agree.
fn parse_all(bytes: &[u8], now: SystemTime) -> Result<(), TestCaseError> {
    let retry_after = parse_retry_after(bytes, now);
    prop_assert_eq!(Hint::retry_after(bytes, now).map(|h| h.wait), retry_after);
    let ms = parse_retry_after_ms(bytes);
    prop_assert_eq!(Hint::retry_after_ms(bytes).map(|h| h.wait), ms);
    if let Some(date) = parse_http_date(bytes, now) {
        let wait = date.duration_since(now).unwrap_or(Duration::ZERO);
        prop_assert_eq!(retry_after, Some(wait));
    }
    let reset = parse_epoch_seconds(bytes);
    let reset_wait = parse_epoch_reset(bytes, now);
    prop_assert_eq!(reset.is_some(), reset_wait.is_some());
    prop_assert_eq!(Hint::epoch_reset(bytes, now).map(|h| h.wait), reset_wait);
    Ok(())
}

/// `imf` (`Sun, 06 Nov 1994 08:49:37 GMT`) rewritten in RFC 850 form with a two-digit year.
fn as_rfc850(imf: &str) -> Option<String> {
    let fields = imf.split(' ').collect::<Vec<_>>();
    let [weekday, day, month, year, time, zone] = fields.as_slice() else {
        return None;
    };
    Some(format!(
        "{weekday} {day}-{month}-{} {time} {zone}",
        year.get(2..)?
    ))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic_any_parser(
        bytes in proptest::collection::vec(any::<u8>(), 0..48),
        now in any_now(),
    ) {
        parse_all(&bytes, now)?;
        parse_all(&bytes, UNIX_EPOCH)?;
    }

    #[test]
    fn near_miss_dates_and_numbers_never_panic_any_parser(
        text in "[SunMoTeWdFriNvJaOctDe0-9 ,:.+\\-\t]{0,40}",
        now in any_now(),
    ) {
        parse_all(text.as_bytes(), now)?;
    }

    #[test]
    fn any_u64_seconds_parse_to_exactly_that_many_seconds(
        secs in any::<u64>(),
        pad in "[ \t]{0,2}",
    ) {
        let text = format!("{pad}{secs}{pad}");
        prop_assert_eq!(parse_retry_after(text.as_bytes(), UNIX_EPOCH), Some(Duration::from_secs(secs)));
        prop_assert_eq!(parse_retry_after_ms(text.as_bytes()), Some(Duration::from_millis(secs)));
        let reset = parse_epoch_seconds(text.as_bytes()).unwrap();
        match UNIX_EPOCH.checked_add(Duration::from_secs(secs)) {
            Some(exact) => prop_assert_eq!(reset, exact),
            // Past `SystemTime`'s range: pinned to its last instant.
            None => prop_assert_eq!(reset.checked_add(Duration::from_secs(1)), None),
        }
    }

    #[test]
    fn seconds_beyond_u64_saturate_at_duration_max(extra in 1u128..=u128::from(u64::MAX)) {
        let text = (u128::from(u64::MAX) + extra).to_string();
        prop_assert_eq!(parse_retry_after(text.as_bytes(), UNIX_EPOCH), Some(Duration::MAX));
    }

    #[test]
    fn fractional_seconds_are_exact_to_the_nanosecond(secs in any::<u64>(), nanos in 0u32..1_000_000_000) {
        let text = format!("{secs}.{nanos:09}");
        prop_assert_eq!(parse_retry_after(text.as_bytes(), UNIX_EPOCH), Some(Duration::new(secs, nanos)));
    }

    #[test]
    fn imf_fixdate_round_trips_to_the_second(
        secs in MIN_SECS..=MAX_SECS,
        nanos in 0u32..1_000_000_000,
        now in any_now(),
    ) {
        let formatted = format_http_date(time(secs, nanos));
        prop_assert_eq!(parse_http_date(formatted.as_bytes(), now), Some(time(secs, 0)), "{}", formatted);
    }

    #[test]
    fn rfc850_round_trips_within_fifty_years_of_now(
        secs in -30_000_000_000i64..=220_000_000_000,
        years_from_date in -50i64..50,
        day_of_now in 0u64..365,
    ) {
        let date = time(secs, 0);
        let imf = format_http_date(date);
        let year: i64 = imf[12..16].parse().unwrap();
        let now_year = year + years_from_date;
        let now = parse_http_date(format!("Sun, 01 Jan {now_year:04} 00:00:00 GMT").as_bytes(), date)
            .unwrap()
            + Duration::from_secs(day_of_now * 86_400);
        let rfc850 = as_rfc850(&imf).unwrap();
        prop_assert_eq!(parse_http_date(rfc850.as_bytes(), now), Some(date), "{} at {}", rfc850, format_http_date(now));
    }

    #[test]
    fn retry_after_date_waits_until_the_date_or_not_at_all(
        secs in MIN_SECS..=MAX_SECS,
        now in any_now(),
    ) {
        let date = time(secs, 0);
        let wait = parse_retry_after(format_http_date(date).as_bytes(), now);
        prop_assert_eq!(wait, Some(date.duration_since(now).unwrap_or(Duration::ZERO)));
    }
}
