//! [`FastClock`]: monotonic time from the CPU's timestamp counter, for hot paths.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Instant, SystemTime};

use super::{Clock, instant_after, nanos, nanos_between};

/// How often the counter is re-aligned with the system's monotonic clock, in nanoseconds.
const RESYNC_NANOS: u64 = 100_000_000;

/// A clock reading the CPU's timestamp counter: about 10 ns a read instead of 20–40 ns.
///
/// Opt-in, for services whose limiters and breakers admit millions of calls per second: a
/// [`GcraLimiter`](crate::limit::GcraLimiter) or [`CircuitBreaker`](crate::breaker::CircuitBreaker)
/// spends most of its hot path reading the clock, and `clock_gettime` costs 20–40 ns (more in
/// some VMs). This is the clock governor uses by default (through the `quanta` crate); on CPUs
/// without an invariant counter it falls back to the system's monotonic clock.
///
/// **Not virtual**: it ignores tokio's paused time, so don't use it under
/// `#[tokio::test(start_paused = true)]` or with `tokio::time::advance`; tests keep the
/// default [`TokioClock`](super::TokioClock) or a [`ManualClock`](super::ManualClock).
///
/// Its instants are on the same timeline as `std::time::Instant` and tokio's timers: the counter
/// is re-aligned with the system's monotonic clock every 100 ms (one `clock_gettime` then), so
/// calibration error and NTP slewing never accumulate; a re-alignment may step the reading by
/// the drift of those 100 ms, typically well under a microsecond. The first `FastClock` of a
/// process calibrates the counter (once, up to 200 ms). Cloning shares the same alignment.
///
/// ```
/// use std::sync::Arc;
/// use ratewise_core::clock::FastClock;
/// use ratewise_core::limit::{GcraLimiter, Rate};
///
/// let rps = GcraLimiter::new(Rate::per_second(100)).clock(Arc::new(FastClock::new()));
/// ```
#[derive(Clone)]
pub struct FastClock {
    inner: Arc<Inner>,
}

struct Inner {
    counter: quanta::Clock,
    /// The counter's raw reading at `origin`.
    origin_raw: u64,
    origin: Instant,
    origin_wall: SystemTime,
    /// Nanoseconds to add to the counter's elapsed time to get the system's (signed).
    correction: AtomicI64,
    /// The counter's elapsed nanoseconds at which to re-align next.
    resync_at: AtomicU64,
}

impl FastClock {
    /// A clock anchored at the current system time.
    #[allow(clippy::disallowed_methods)] // a clock reads the real clocks
    pub fn new() -> Self {
        let counter = quanta::Clock::new();
        let origin_raw = counter.raw();
        Self {
            inner: Arc::new(Inner {
                origin_raw,
                origin: Instant::now(),
                origin_wall: SystemTime::now(),
                counter,
                correction: AtomicI64::new(0),
                resync_at: AtomicU64::new(RESYNC_NANOS),
            }),
        }
    }

    /// This clock as a [`SharedClock`](super::SharedClock).
    pub fn shared() -> super::SharedClock {
        Arc::new(Self::new())
    }
}

impl Inner {
    /// Nanoseconds since `origin`.
    #[inline]
    fn elapsed(&self) -> u64 {
        let raw = self.counter.raw();
        let counted = self.counter.delta_as_nanos(self.origin_raw, raw);
        if counted >= self.resync_at.load(Ordering::Relaxed) {
            return self.resync(counted);
        }
        counted.saturating_add_signed(self.correction.load(Ordering::Relaxed))
    }

    /// Re-aligns the counter with the system's monotonic clock.
    #[cold]
    #[allow(clippy::disallowed_methods)] // a clock reads the real clocks
    fn resync(&self, counted: u64) -> u64 {
        let actual = nanos(Instant::now().saturating_duration_since(self.origin));
        let correction = i64::try_from(i128::from(actual) - i128::from(counted)).unwrap_or(0);
        self.correction.store(correction, Ordering::Relaxed);
        self.resync_at
            .store(counted.saturating_add(RESYNC_NANOS), Ordering::Relaxed);
        actual
    }
}

impl Default for FastClock {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for FastClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FastClock").finish_non_exhaustive()
    }
}

impl Clock for FastClock {
    fn now(&self) -> Instant {
        instant_after(self.inner.origin, self.inner.elapsed())
    }

    fn wall(&self) -> SystemTime {
        let elapsed = std::time::Duration::from_nanos(self.inner.elapsed());
        self.inner
            .origin_wall
            .checked_add(elapsed)
            .unwrap_or(self.inner.origin_wall)
    }

    #[inline]
    fn nanos_since(&self, base: Instant) -> u64 {
        nanos_between(self.inner.origin, self.inner.elapsed(), base)
    }

    fn epoch(&self) -> Instant {
        self.inner.origin
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Up to how far the counter and the system clock may disagree between re-alignments.
    const SLACK: u64 = 50_000;

    #[test]
    #[allow(clippy::disallowed_methods)] // compares with the system clock it follows
    fn fast_clock_agrees_with_the_system_monotonic_clock() {
        let s0 = Instant::now();
        let clock = FastClock::new();
        let base = clock.epoch();
        let s1 = Instant::now();
        let mut last = 0;
        for _ in 0..10_000 {
            let next = clock.nanos_since(base);
            assert!(next >= last, "never steps back between re-alignments");
            last = next;
        }
        let s2 = Instant::now();
        let ours = clock.nanos_since(base);
        let s3 = Instant::now();
        assert!(ours + SLACK >= nanos(s2 - s1), "{ours} vs {:?}", s2 - s1);
        assert!(ours <= nanos(s3 - s0) + SLACK, "{ours} vs {:?}", s3 - s0);
        assert_eq!(clock.nanos_since(clock.now() + Duration::from_secs(1)), 0);
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // compares with the system clock it follows
    fn a_re_alignment_adopts_the_system_clock_reading() {
        let clock = FastClock::new();
        let inner = &clock.inner;
        let counted = inner
            .counter
            .delta_as_nanos(inner.origin_raw, inner.counter.raw());
        let before = nanos(Instant::now() - inner.origin);
        let aligned = inner.resync(counted);
        let after = nanos(Instant::now() - inner.origin);
        assert!((before..=after).contains(&aligned));
        assert_eq!(
            inner.resync_at.load(Ordering::Relaxed),
            counted + RESYNC_NANOS
        );
        let next = inner.elapsed();
        assert!(next + SLACK >= aligned && next <= nanos(Instant::now() - inner.origin) + SLACK);
    }
}
