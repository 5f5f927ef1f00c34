//! Non-negative decimal numbers of seconds or milliseconds, as a `Duration` that saturates.
//!
//! Grammar (after the caller trimmed whitespace): `1*DIGIT [ "." 1*DIGIT ]`. No sign, no
//! exponent, no hex, no `inf`/`nan`, no bare `.5` or `5.`: anything else is not a number here.
//! Fractions are exact to the nanosecond; digits past the nanosecond round *up*, so a hint is
//! never obeyed early. A value past `Duration::MAX` saturates to it.

use std::time::Duration;

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// The unit a decimal number counts.
#[derive(Clone, Copy, Debug)]
pub(super) enum Unit {
    /// Seconds (`Retry-After`, epoch resets).
    Seconds,
    /// Milliseconds (`retry-after-ms`).
    Millis,
}

impl Unit {
    /// Nanoseconds in one unit.
    const fn nanos(self) -> u128 {
        match self {
            Self::Seconds => 1_000_000_000,
            Self::Millis => 1_000_000,
        }
    }

    /// Fraction digits that still name whole nanoseconds.
    const fn fraction_digits(self) -> usize {
        match self {
            Self::Seconds => 9,
            Self::Millis => 6,
        }
    }
}

/// `value` (already trimmed) as a number of `unit`s, or `None` when it is not a plain decimal.
pub(super) fn parse(value: &[u8], unit: Unit) -> Option<Duration> {
    let (whole, fraction) = match value.iter().position(|&b| b == b'.') {
        Some(dot) => (value.get(..dot)?, Some(value.get(dot.checked_add(1)?..)?)),
        None => (value, None),
    };
    let fraction_nanos = match fraction {
        Some(fraction) => parse_fraction(fraction, unit)?,
        None => 0,
    };
    if whole.is_empty() {
        return None;
    }
    // Validate every digit before deciding to saturate, so `99…9x` is garbage, not "forever".
    let mut units: Option<u128> = Some(0);
    for &b in whole {
        let d = digit(b)?;
        units = units
            .and_then(|u| u.checked_mul(10))
            .and_then(|u| u.checked_add(u128::from(d)));
    }
    let nanos = units
        .and_then(|u| u.checked_mul(unit.nanos()))
        .and_then(|n| n.checked_add(fraction_nanos));
    Some(nanos.map_or(Duration::MAX, from_nanos))
}

/// Nanoseconds of the fraction digits (`5` in `1.5` seconds is 500 000 000), rounded up.
fn parse_fraction(fraction: &[u8], unit: Unit) -> Option<u128> {
    if fraction.is_empty() {
        return None;
    }
    let kept = unit.fraction_digits();
    let mut nanos: u128 = 0;
    let mut rest_nonzero = false;
    for (i, &b) in fraction.iter().enumerate() {
        let d = digit(b)?;
        if i < kept {
            nanos = nanos.saturating_mul(10).saturating_add(u128::from(d));
        } else {
            rest_nonzero |= d != 0;
        }
    }
    for _ in fraction.len()..kept {
        nanos = nanos.saturating_mul(10);
    }
    Some(nanos.saturating_add(u128::from(rest_nonzero)))
}

fn digit(b: u8) -> Option<u8> {
    b.is_ascii_digit().then(|| b.wrapping_sub(b'0'))
}

/// `nanos` as a `Duration`, saturating at `Duration::MAX`.
fn from_nanos(nanos: u128) -> Duration {
    match u64::try_from(nanos / NANOS_PER_SEC) {
        Ok(secs) => {
            // `nanos % 1e9 < 1e9` fits in u32 and carries nothing into `secs`.
            let sub = u32::try_from(nanos % NANOS_PER_SEC).unwrap_or(0);
            Duration::new(secs, sub)
        }
        Err(_) => Duration::MAX,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_and_fractional_units_are_exact_to_the_nanosecond() {
        assert_eq!(parse(b"120", Unit::Seconds), Some(Duration::from_secs(120)));
        assert_eq!(
            parse(b"1.5", Unit::Seconds),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            parse(b"0.000000001", Unit::Seconds),
            Some(Duration::from_nanos(1))
        );
        assert_eq!(
            parse(b"644", Unit::Millis),
            Some(Duration::from_millis(644))
        );
        assert_eq!(
            parse(b"1.25", Unit::Millis),
            Some(Duration::from_micros(1250))
        );
        assert_eq!(parse(b"0007", Unit::Seconds), Some(Duration::from_secs(7)));
    }

    #[test]
    fn digits_past_the_nanosecond_round_up_so_a_hint_is_never_obeyed_early() {
        assert_eq!(
            parse(b"0.0000000001", Unit::Seconds),
            Some(Duration::from_nanos(1))
        );
        assert_eq!(parse(b"0.0000000000", Unit::Seconds), Some(Duration::ZERO));
        assert_eq!(
            parse(b"0.9999999991", Unit::Seconds),
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            parse(b"0.0000001", Unit::Millis),
            Some(Duration::from_nanos(1))
        );
    }

    #[test]
    fn huge_values_saturate_but_garbage_after_huge_digits_does_not() {
        assert_eq!(
            parse(b"99999999999999999999", Unit::Seconds),
            Some(Duration::MAX)
        );
        let many = [b'9'; 200];
        assert_eq!(parse(&many, Unit::Millis), Some(Duration::MAX));
        assert_eq!(
            parse(b"99999999999999999999999999999999999999999x", Unit::Seconds),
            None
        );
    }

    #[test]
    fn only_plain_decimals_are_numbers() {
        for bad in [
            &b""[..],
            b".",
            b".5",
            b"5.",
            b"1.2.3",
            b"-1",
            b"+1",
            b"0x10",
            b"1e3",
            b"1,5",
            b"inf",
        ] {
            assert_eq!(
                parse(bad, Unit::Seconds),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
