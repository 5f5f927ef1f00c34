//! OpenAI's reset durations: Go's `time.Duration` text (`6m0s`, `12ms`, `1.1µs`), and ISO 8601
//! durations (`PT1M30S`) for gateways that translate them.
//!
//! OpenAI writes `x-ratelimit-reset-{requests,tokens}` with Go's `Duration.String()`: one or more
//! `<number><unit>` components, units `h`, `m`, `s`, `ms`, `us`, `µs` (U+00B5 MICRO SIGN),
//! `μs` (U+03BC GREEK SMALL LETTER MU) and `ns`, each number a decimal with an optional
//! fraction; a bare `0` is zero. The parser reads exactly that, into whole nanoseconds with no
//! floating point (so `4m12.172s` is exactly 252,172,000,000 ns), rounding a fraction below
//! the nanosecond *up* so a reset is never obeyed early.
//!
//! Rejected (`None`), never panicking: an empty value, a number without a unit (`3`), a sign
//! (`-5s`: a reset is never negative; `+5s`, which Go accepts, is refused too since no server
//! writes it), an unknown unit, a dangling `.`, and anything past `u64::MAX` nanoseconds
//! (about 584 years: garbage, not a reset).

use std::time::Duration;

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// Parses a reset value: a Go duration, or an ISO 8601 duration starting with `P`.
///
/// ```
/// use std::time::Duration;
/// use ratewise_openai::headers::parse_reset;
///
/// assert_eq!(parse_reset(b"6m0s"), Some(Duration::from_secs(360)));
/// assert_eq!(parse_reset(b"4m12.172s"), Some(Duration::from_millis(252_172)));
/// assert_eq!(parse_reset("1.1µs".as_bytes()), Some(Duration::from_nanos(1_100)));
/// assert_eq!(parse_reset(b"PT1M30S"), Some(Duration::from_secs(90)));
/// assert_eq!(parse_reset(b"3"), None);
/// assert_eq!(parse_reset(b"-5s"), None);
/// ```
pub fn parse_reset(value: &[u8]) -> Option<Duration> {
    let value = value.trim_ascii();
    match value.first()? {
        b'P' => parse_iso8601(value),
        _ => parse_go_duration(value),
    }
}

/// Parses a Go duration (`1s`, `6m0s`, `23h18m29.144s`, `1.1µs`, `0`) into exact nanoseconds.
pub fn parse_go_duration(value: &[u8]) -> Option<Duration> {
    if value == b"0" {
        return Some(Duration::ZERO);
    }
    if value.is_empty() {
        return None;
    }
    let mut rest = value;
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let (nanos, tail) = component(rest)?;
        total = total.checked_add(nanos)?;
        rest = tail;
    }
    let total = u64::try_from(total).ok()?;
    Some(Duration::from_nanos(total))
}

/// One `<number><unit>` component at the start of `input`: its nanoseconds and what follows.
fn component(input: &[u8]) -> Option<(u128, &[u8])> {
    let whole_len = input.iter().take_while(|b| b.is_ascii_digit()).count();
    let (whole, rest) = input.split_at(whole_len);
    let (fraction, rest) = match rest.split_first() {
        Some((b'.', after)) => {
            let len = after.iter().take_while(|b| b.is_ascii_digit()).count();
            after.split_at(len)
        }
        _ => (&[][..], rest),
    };
    // Go accepts `.5s` and `1.s`, but not a lone `.`.
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    let (unit, rest) = unit(rest)?;
    let whole_nanos = digits(whole)?.checked_mul(unit)?;
    let fraction_nanos = fraction_nanos(fraction, unit)?;
    Some((whole_nanos.checked_add(fraction_nanos)?, rest))
}

/// The unit at the start of `input`, in nanoseconds, and what follows it.
fn unit(input: &[u8]) -> Option<(u128, &[u8])> {
    const UNITS: [(&[u8], u128); 8] = [
        (b"ns", 1),
        (b"us", 1_000),
        ("\u{b5}s".as_bytes(), 1_000),
        ("\u{3bc}s".as_bytes(), 1_000),
        (b"ms", 1_000_000),
        (b"s", NANOS_PER_SEC),
        (b"m", 60 * NANOS_PER_SEC),
        (b"h", 3_600 * NANOS_PER_SEC),
    ];
    // Longest match first: `ms` before `m`, `ns`/`us` before `s`.
    UNITS
        .iter()
        .filter(|(name, _)| input.starts_with(name))
        .max_by_key(|(name, _)| name.len())
        .map(|(name, nanos)| (*nanos, input.get(name.len()..).unwrap_or_default()))
}

/// A run of ASCII digits as an integer, `None` past `u128` (an empty run is 0).
fn digits(run: &[u8]) -> Option<u128> {
    run.iter().try_fold(0u128, |acc, b| {
        acc.checked_mul(10)?
            .checked_add(u128::from(b.wrapping_sub(b'0')))
    })
}

/// `0.<fraction>` of one `unit` in nanoseconds, rounded up.
fn fraction_nanos(fraction: &[u8], unit: u128) -> Option<u128> {
    // 30 digits already resolve far below a nanosecond of an hour; later digits only round up.
    let (kept, dropped) = fraction.split_at(fraction.len().min(30));
    let scale = 10u128.checked_pow(u32::try_from(kept.len()).ok()?)?;
    let numerator = digits(kept)?.checked_mul(unit)?;
    let mut nanos = numerator / scale;
    if numerator % scale != 0 || dropped.iter().any(|b| *b != b'0') {
        nanos = nanos.checked_add(1)?;
    }
    Some(nanos)
}

/// Writes `d` as Go's `Duration.String()` does: `0s`, `17ns`, `1.1µs` (micro sign), `12ms`,
/// `1s`, `6m0s`, `4m12.172s`, `23h18m29.144s`. What the simulator sends; [`parse_reset`] reads
/// it back exactly.
pub fn format_go_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".to_owned();
    }
    if nanos < NANOS_PER_SEC {
        let (unit, per) = match nanos {
            0..1_000 => ("ns", 1),
            1_000..1_000_000 => ("\u{b5}s", 1_000),
            _ => ("ms", 1_000_000),
        };
        return format!("{}{unit}", decimal(nanos, per));
    }
    let secs = nanos / NANOS_PER_SEC;
    let (hours, minutes) = (secs / 3_600, secs / 60 % 60);
    let seconds = decimal(nanos % (60 * NANOS_PER_SEC), NANOS_PER_SEC);
    match (hours, minutes) {
        (0, 0) => format!("{seconds}s"),
        (0, m) => format!("{m}m{seconds}s"),
        (h, m) => format!("{h}h{m}m{seconds}s"),
    }
}

/// `value / per` as a decimal without trailing zeros (`1100 / 1000` is `1.1`).
fn decimal(value: u128, per: u128) -> String {
    let whole = value / per;
    let fraction = value % per;
    if fraction == 0 {
        return whole.to_string();
    }
    let width = per.ilog10() as usize;
    let digits = format!("{fraction:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// An ISO 8601 duration (`PT1M30S`, `PT0.5S`, `P1DT2H`, `P2W`) through the `iso8601` crate.
///
/// Years and months are refused: their length depends on the calendar, and no rate-limit window
/// is measured in them.
pub fn parse_iso8601(value: &[u8]) -> Option<Duration> {
    // The crate ignores trailing garbage and reads a bare `PT` as zero: only plain designators
    // and digits, with at least one digit, are handed to it.
    let plain = value
        .iter()
        .all(|b| b.is_ascii_digit() || b".,PTWDHMS".contains(b));
    if !plain || !value.iter().any(u8::is_ascii_digit) {
        return None;
    }
    let text = std::str::from_utf8(value).ok()?;
    match iso8601::duration(text).ok()? {
        iso8601::Duration::Weeks(weeks) => Some(Duration::from_secs(
            u64::from(weeks).checked_mul(7 * 86_400)?,
        )),
        iso8601::Duration::YMDHMS {
            year,
            month,
            day,
            hour,
            minute,
            second,
            millisecond,
        } => {
            if year != 0 || month != 0 {
                return None;
            }
            let secs = u64::from(day)
                .checked_mul(86_400)?
                .checked_add(u64::from(hour).checked_mul(3_600)?)?
                .checked_add(u64::from(minute).checked_mul(60)?)?
                .checked_add(u64::from(second))?;
            Duration::from_secs(secs).checked_add(Duration::from_millis(u64::from(millisecond)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ns(n: u64) -> Option<Duration> {
        Some(Duration::from_nanos(n))
    }

    #[test]
    fn every_observed_reset_value_parses_exactly() {
        let cases: &[(&str, Option<Duration>)] = &[
            ("1s", ns(1_000_000_000)),
            ("6m0s", ns(360_000_000_000)),
            ("12ms", ns(12_000_000)),
            ("120ms", ns(120_000_000)),
            ("4m12.172s", ns(252_172_000_000)),
            ("23h18m29.144s", ns(83_909_144_000_000)),
            ("1.1\u{b5}s", ns(1_100)),
            ("1.1\u{3bc}s", ns(1_100)),
            ("1.1us", ns(1_100)),
            ("0", ns(0)),
            ("0s", ns(0)),
            ("17ns", ns(17)),
            ("2h", ns(7_200_000_000_000)),
            ("1h0m0.001s", ns(3_600_001_000_000)),
            (".5s", ns(500_000_000)),
            ("1.s", ns(1_000_000_000)),
            ("0.0000000001s", ns(1)),
            (" 9.816s ", ns(9_816_000_000)),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_reset(text.as_bytes()), *expected, "{text:?}");
        }
    }

    #[test]
    fn malformed_resets_are_refused() {
        for text in [
            "",
            "3",
            "-5s",
            "+5s",
            "s",
            ".s",
            "5x",
            "5 s",
            "1s2",
            "1.2.3s",
            "5sec",
            "\u{b5}",
            "1e3s",
            "99999999999h",
            "NaN",
            "PT",
            "P1Y",
            "P1M",
            "p1s",
            "PT1Sx",
        ] {
            assert_eq!(parse_reset(text.as_bytes()), None, "{text:?}");
        }
        assert_eq!(parse_reset(b"\xff\xfe"), None);
    }

    #[test]
    fn iso8601_durations_from_gateways_parse() {
        assert_eq!(parse_reset(b"PT1M30S"), ns(90_000_000_000));
        assert_eq!(parse_reset(b"PT0.5S"), ns(500_000_000));
        assert_eq!(parse_reset(b"P1DT2H"), ns(93_600_000_000_000));
        assert_eq!(parse_reset(b"P2W"), ns(1_209_600_000_000_000));
        assert_eq!(parse_reset(b"PT0S"), ns(0));
    }

    #[test]
    fn a_fraction_below_the_nanosecond_rounds_up_never_down() {
        assert_eq!(parse_reset(b"1.0000000001s"), ns(1_000_000_001));
        assert_eq!(parse_reset(b"0.5ns"), ns(1));
        assert_eq!(
            parse_reset(b"1.000000000000000000000000000000000001s"),
            ns(1_000_000_001)
        );
    }

    #[test]
    fn durations_are_written_as_go_writes_them() {
        let cases: &[(u64, &str)] = &[
            (0, "0s"),
            (17, "17ns"),
            (1_100, "1.1\u{b5}s"),
            (12_000_000, "12ms"),
            (1_500_000, "1.5ms"),
            (1_000_000_000, "1s"),
            (360_000_000_000, "6m0s"),
            (252_172_000_000, "4m12.172s"),
            (83_909_144_000_000, "23h18m29.144s"),
            (3_600_000_000_000, "1h0m0s"),
        ];
        for (nanos, text) in cases {
            assert_eq!(format_go_duration(Duration::from_nanos(*nanos)), *text);
        }
    }

    proptest! {
        #[test]
        fn the_parser_never_panics_on_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = parse_reset(&bytes);
        }

        #[test]
        fn the_parser_never_panics_on_duration_shaped_text(text in "[-+P]?[0-9.]{0,25}(h|m|s|ms|us|\u{b5}s|\u{3bc}s|ns|T|D|W|S|M|H){0,3}[0-9.]{0,5}") {
            let _ = parse_reset(text.as_bytes());
        }

        #[test]
        fn written_durations_read_back_exactly(nanos in any::<u64>()) {
            let d = Duration::from_nanos(nanos);
            prop_assert_eq!(parse_reset(format_go_duration(d).as_bytes()), Some(d));
        }

        #[test]
        fn go_formatted_durations_round_trip(h in 0u64..100, m in 0u64..60, s in 0u64..60, ms in 0u64..1000) {
            let text = format!("{h}h{m}m{s}.{ms:03}s");
            let expected = Duration::from_millis(((h * 60 + m) * 60 + s) * 1000 + ms);
            prop_assert_eq!(parse_reset(text.as_bytes()), Some(expected));
        }
    }
}
