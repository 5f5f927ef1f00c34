//! [`ClockReader`]: how the hot paths (limiters, breaker) hold their injected clock.

use std::fmt;
use std::time::Instant;

use super::{FastClock, SharedClock, sealed};

/// A [`SharedClock`] and its epoch, read directly (no dynamic call) when it is a [`FastClock`].
///
/// A `FastClock` read is a counter read and a few arithmetic instructions; behind
/// `Arc<dyn Clock>` it also paid a dynamic call that could not be inlined and a comparison of
/// the base with its origin, a third of the read. Any other clock is read through the trait
/// object as before.
#[derive(Clone)]
pub(crate) struct ClockReader {
    shared: SharedClock,
    /// `shared.epoch()`, taken once: the base of [`ClockReader::nanos`].
    epoch: Instant,
    fast: Option<FastClock>,
}

impl ClockReader {
    /// Reads `clock`.
    pub(crate) fn new(clock: SharedClock) -> Self {
        let fast = clock.as_fast_clock(sealed::Token).cloned();
        Self {
            epoch: clock.epoch(),
            shared: clock,
            fast,
        }
    }

    /// Nanoseconds from [`ClockReader::epoch`] to now.
    #[inline]
    pub(crate) fn nanos(&self) -> u64 {
        match &self.fast {
            // A fast clock's epoch is its origin, which it counts from.
            Some(fast) => fast.elapsed(),
            None => self.nanos_shared(),
        }
    }

    /// [`ClockReader::nanos`] through the trait object: out of line, so the fast path stays
    /// small enough to inline into its callers.
    #[inline(never)]
    fn nanos_shared(&self) -> u64 {
        self.shared.nanos_since(self.epoch)
    }

    /// [`Clock::now`].
    pub(crate) fn now(&self) -> Instant {
        self.shared.now()
    }

    /// The clock's epoch when this reader was made: the base of [`ClockReader::nanos`].
    #[inline]
    pub(crate) fn epoch(&self) -> Instant {
        self.epoch
    }

    /// True when `other` reads the same clock from the same epoch, so their
    /// [`nanos`](ClockReader::nanos) count the same time.
    #[inline]
    pub(crate) fn same_as(&self, other: &ClockReader) -> bool {
        std::sync::Arc::ptr_eq(&self.shared, &other.shared) && self.epoch == other.epoch
    }
}

impl fmt::Debug for ClockReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.shared.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::clock::{Clock, ManualClock};

    #[test]
    fn a_fast_clock_is_read_directly_and_reads_the_same_time() {
        let fast = FastClock::new();
        let reader = ClockReader::new(std::sync::Arc::new(fast.clone()));
        assert!(reader.fast.is_some());
        let base = reader.epoch();
        assert_eq!(base, fast.epoch());
        let (a, b, c, d) = (
            fast.nanos_since(base),
            reader.nanos(),
            reader.nanos(),
            fast.nanos_since(base),
        );
        assert!(
            a <= b + 50_000 && b <= c + 50_000 && c <= d + 50_000,
            "{a} {b} {c} {d}"
        );
    }

    #[test]
    fn any_other_clock_is_read_through_the_trait_object() {
        let manual = ManualClock::new();
        let reader = ClockReader::new(manual.shared());
        assert!(reader.fast.is_none());
        manual.advance(Duration::from_millis(7));
        assert_eq!(reader.nanos(), 7_000_000);
        assert_eq!(reader.now(), manual.now());
        assert!(reader.same_as(&reader.clone()));
        assert!(
            !reader.same_as(&ClockReader::new(manual.shared())),
            "another Arc"
        );
    }
}
