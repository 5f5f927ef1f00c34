//! Wall-clock arithmetic that saturates instead of overflowing.
//!
//! `SystemTime`'s range is platform-defined (Unix: ±2^63 s around 1970; Windows: 1601 to about
//! 60056), so a hint that names an absurd instant is pinned to the nearest representable one.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `base + by`, or the latest representable instant when that overflows.
pub(super) fn saturating_add(base: SystemTime, by: Duration) -> SystemTime {
    saturate(base, by, SystemTime::checked_add)
}

/// `base - by`, or the earliest representable instant when that underflows.
pub(super) fn saturating_sub(base: SystemTime, by: Duration) -> SystemTime {
    saturate(base, by, SystemTime::checked_sub)
}

/// `step(base, by)`, else `step(base, d)` for the largest `d < by` that fits (binary search,
/// at most ~95 steps, only on the overflow path).
fn saturate(
    base: SystemTime,
    by: Duration,
    step: fn(&SystemTime, Duration) -> Option<SystemTime>,
) -> SystemTime {
    if let Some(t) = step(&base, by) {
        return t;
    }
    // Invariant: `step(base, fits)` is Some, `step(base, overflows)` is None.
    let (mut fits, mut overflows) = (Duration::ZERO, by);
    while overflows.saturating_sub(fits) > Duration::from_nanos(1) {
        let mid = fits.saturating_add(overflows.saturating_sub(fits) / 2);
        if step(&base, mid).is_some() {
            fits = mid;
        } else {
            overflows = mid;
        }
    }
    step(&base, fits).unwrap_or(base)
}

/// Whole seconds since the Unix epoch, rounded towards the past (`-0.5 s` is `-1`); saturates.
pub(super) fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Err(before) => {
            let before = before.duration();
            let secs = i64::try_from(before.as_secs()).unwrap_or(i64::MAX);
            let secs = if before.subsec_nanos() > 0 {
                secs.saturating_add(1)
            } else {
                secs
            };
            secs.saturating_neg()
        }
    }
}

/// The instant `secs` whole seconds from the Unix epoch (negative: before it); saturates.
pub(super) fn from_unix_seconds(secs: i64) -> SystemTime {
    let magnitude = Duration::from_secs(secs.unsigned_abs());
    if secs >= 0 {
        saturating_add(UNIX_EPOCH, magnitude)
    } else {
        saturating_sub(UNIX_EPOCH, magnitude)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adding_past_the_end_of_time_pins_to_the_latest_instant() {
        let end = saturating_add(UNIX_EPOCH, Duration::MAX);
        assert!(end > UNIX_EPOCH + Duration::from_secs(1 << 40));
        assert_eq!(end.checked_add(Duration::from_nanos(1)), None);
        assert_eq!(saturating_add(end, Duration::from_secs(1)), end);
    }

    #[test]
    fn subtracting_past_the_start_of_time_pins_to_the_earliest_instant() {
        let start = saturating_sub(UNIX_EPOCH, Duration::MAX);
        assert_eq!(start.checked_sub(Duration::from_nanos(1)), None);
    }

    #[test]
    fn unix_seconds_round_towards_the_past() {
        assert_eq!(unix_seconds(UNIX_EPOCH + Duration::from_millis(1500)), 1);
        assert_eq!(unix_seconds(UNIX_EPOCH - Duration::from_millis(500)), -1);
        assert_eq!(unix_seconds(UNIX_EPOCH - Duration::from_secs(2)), -2);
        assert_eq!(from_unix_seconds(-2), UNIX_EPOCH - Duration::from_secs(2));
        assert_eq!(from_unix_seconds(7), UNIX_EPOCH + Duration::from_secs(7));
    }
}
