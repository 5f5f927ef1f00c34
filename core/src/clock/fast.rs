//! [`FastClock`]: monotonic time from the CPU's timestamp counter, for hot paths.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime};

use super::{Clock, from_other_base, instant_after, nanos};

/// How often the counter is re-aligned with the system's monotonic clock, in nanoseconds.
const RESYNC_NANOS: u64 = 100_000_000;

/// A clock reading the CPU's timestamp counter: about 10 ns a read instead of 20–40 ns.
///
/// Opt-in, for services whose limiters and breakers admit millions of calls per second: a
/// [`GcraLimiter`](crate::limit::GcraLimiter) or [`CircuitBreaker`](crate::breaker::CircuitBreaker)
/// spends most of its hot path reading the clock, and `clock_gettime` costs 20–40 ns (more in
/// some VMs). This is the clock governor uses by default (through the `quanta` crate); on CPUs
/// without an invariant counter it falls back to the system's monotonic clock. Those limiters
/// and the breaker recognise a `FastClock` behind their `SharedClock` and read it without a
/// dynamic call.
///
/// **Not virtual**: it ignores tokio's paused time, so don't use it under
/// `#[tokio::test(start_paused = true)]` or with `tokio::time::advance`; tests keep the
/// default [`TokioClock`](super::TokioClock) or a [`ManualClock`](super::ManualClock).
///
/// Its instants are on the same timeline as `std::time::Instant` and tokio's timers: the counter
/// is re-aligned with the system's monotonic clock every 100 ms (one `clock_gettime` then), so
/// calibration error and NTP slewing never accumulate; a re-alignment may step the reading by
/// the drift of those 100 ms, typically well under a microsecond. The first `FastClock` of a
/// process calibrates the counter (once, up to 200 ms). Cloning shares the same alignment. If
/// the counter ever reads less than at the last alignment (a VM moved to another host), the
/// reading re-aligns at once instead of standing still.
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
    origin: Instant,
    origin_wall: SystemTime,
    /// A scaled counter reading minus this is the system's nanoseconds since `origin`: the
    /// reading at `origin`, corrected at every re-alignment.
    offset: AtomicU64,
    /// The scaled counter reading at the last alignment: readings within `RESYNC_NANOS` after
    /// it are used as they are; any other (later, or earlier: the counter went back) re-aligns.
    aligned_at: AtomicU64,
}

impl FastClock {
    /// A clock anchored at the current system time.
    #[allow(clippy::disallowed_methods)] // a clock reads the real clocks
    pub fn new() -> Self {
        let counter = quanta::Clock::new();
        let scaled = counter.delta_as_nanos(0, counter.raw());
        Self {
            inner: Arc::new(Inner {
                origin: Instant::now(),
                origin_wall: SystemTime::now(),
                counter,
                offset: AtomicU64::new(scaled),
                aligned_at: AtomicU64::new(scaled),
            }),
        }
    }

    /// This clock as a [`SharedClock`](super::SharedClock).
    pub fn shared() -> super::SharedClock {
        Arc::new(Self::new())
    }
}

impl Inner {
    /// The counter, scaled to nanoseconds (from an arbitrary start), as governor reads it.
    #[inline]
    fn scaled(&self) -> u64 {
        self.counter.delta_as_nanos(0, self.counter.raw())
    }

    /// Nanoseconds since `origin`: one counter read, one comparison, one subtraction.
    #[inline]
    fn elapsed(&self) -> u64 {
        let scaled = self.scaled();
        // Wrapping: a reading before the last alignment (the counter went back, say a VM moved
        // to another host) is as far out of the window as one long after it.
        if scaled.wrapping_sub(self.aligned_at.load(Ordering::Relaxed)) < RESYNC_NANOS {
            return scaled.saturating_sub(self.offset.load(Ordering::Relaxed));
        }
        self.resync(scaled)
    }

    /// Re-aligns the counter with the system's monotonic clock.
    #[cold]
    #[inline(never)]
    #[allow(clippy::disallowed_methods)] // a clock reads the real clocks
    fn resync(&self, scaled: u64) -> u64 {
        let actual = nanos(Instant::now().saturating_duration_since(self.origin));
        self.offset
            .store(scaled.saturating_sub(actual), Ordering::Relaxed);
        self.aligned_at.store(scaled, Ordering::Relaxed);
        actual
    }
}

impl FastClock {
    /// Nanoseconds since [`Clock::epoch`], without the trait's base argument.
    #[inline]
    pub(crate) fn elapsed(&self) -> u64 {
        self.inner.elapsed()
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
        if base != self.inner.origin {
            return from_other_base(self.inner.origin, self.inner.elapsed(), base);
        }
        self.inner.elapsed()
    }

    fn epoch(&self) -> Instant {
        self.inner.origin
    }

    fn as_fast_clock(&self, _: super::sealed::Token) -> Option<&FastClock> {
        Some(self)
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
        let scaled = inner.scaled();
        let before = nanos(Instant::now() - inner.origin);
        let aligned = inner.resync(scaled);
        let after = nanos(Instant::now() - inner.origin);
        assert!((before..=after).contains(&aligned));
        assert_eq!(inner.aligned_at.load(Ordering::Relaxed), scaled);
        assert_eq!(inner.offset.load(Ordering::Relaxed), scaled - aligned);
        let next = inner.elapsed();
        assert!(next + SLACK >= aligned && next <= nanos(Instant::now() - inner.origin) + SLACK);
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // compares with the system clock it follows
    fn a_counter_that_went_back_re_aligns_instead_of_freezing() {
        let clock = FastClock::new();
        let inner = &clock.inner;
        // As if the last alignment had read the counter 10 s ahead of where it reads now (a
        // VM migration), with an offset that would now make the reading stand at zero.
        let ahead = inner.scaled() + 10_000_000_000;
        inner.aligned_at.store(ahead, Ordering::Relaxed);
        inner.offset.store(ahead, Ordering::Relaxed);
        let before = nanos(Instant::now() - inner.origin);
        let read = inner.elapsed();
        assert!(read >= before && read <= nanos(Instant::now() - inner.origin));
        assert!(inner.aligned_at.load(Ordering::Relaxed) < ahead);
        assert!(inner.offset.load(Ordering::Relaxed) < ahead);
    }
}
