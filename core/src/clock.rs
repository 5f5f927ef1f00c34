//! Time, injected: the only file that reads a real clock.
//!
//! Every timing decision in ratewise (backoff, budgets, breakers, limiters, hints) asks a
//! [`Clock`] instead of calling `Instant::now()` or `SystemTime::now()`. Clippy's
//! `disallowed-methods` lint (see `clippy.toml`) rejects direct calls anywhere else, so a test can
//! always drive time by hand ([`ManualClock`]) or in virtual time ([`TokioClock`] under
//! `#[tokio::test(start_paused = true)]`).
//!
//! Waiting is done with tokio's timer (`tokio::time::sleep_until`), which follows the same
//! virtual time as [`TokioClock`]. [`ManualClock`] does not drive tokio's timer: use it for
//! synchronous state-machine tests, and [`TokioClock`] with paused time for anything that sleeps.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

/// A source of monotonic and wall-clock time.
///
/// Monotonic time ([`Clock::now`]) measures intervals: waits, windows, deadlines. Wall time
/// ([`Clock::wall`]) only interprets what servers send: HTTP dates and epoch-second resets.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current monotonic instant.
    fn now(&self) -> Instant;
    /// The current wall-clock time.
    fn wall(&self) -> SystemTime;
}

/// A shared, type-erased clock, as stored by every mechanism that needs time.
pub type SharedClock = Arc<dyn Clock>;

/// The default clock: tokio's monotonic time, with wall time anchored to it.
///
/// `now()` is `tokio::time::Instant::now()`, so a test under `start_paused = true` sees virtual
/// time, exactly like tokio's timers. `wall()` is the system time read once when the clock is
/// created, advanced by the monotonic time elapsed since: wall time therefore moves in virtual
/// time too, and never jumps backwards when the system clock is stepped.
#[derive(Clone)]
pub struct TokioClock {
    origin: tokio::time::Instant,
    origin_wall: SystemTime,
}

impl TokioClock {
    /// A clock anchored at the current system time.
    #[allow(clippy::disallowed_methods)] // the one place that reads the real clocks
    pub fn new() -> Self {
        Self {
            origin: tokio::time::Instant::now(),
            origin_wall: SystemTime::now(),
        }
    }

    /// A clock whose wall time reads `wall` now (useful to replay a recorded scenario).
    #[allow(clippy::disallowed_methods)] // the one place that reads the real clocks
    pub fn with_wall(wall: SystemTime) -> Self {
        Self {
            origin: tokio::time::Instant::now(),
            origin_wall: wall,
        }
    }

    /// This clock as a [`SharedClock`].
    pub fn shared() -> SharedClock {
        Arc::new(Self::new())
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for TokioClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokioClock").finish_non_exhaustive()
    }
}

impl Clock for TokioClock {
    #[allow(clippy::disallowed_methods)] // the one place that reads the real clocks
    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }

    #[allow(clippy::disallowed_methods)] // the one place that reads the real clocks
    fn wall(&self) -> SystemTime {
        let elapsed = tokio::time::Instant::now().saturating_duration_since(self.origin);
        self.origin_wall
            .checked_add(elapsed)
            .unwrap_or(self.origin_wall)
    }
}

/// A clock that only moves when told to: exact, synchronous tests of state machines.
///
/// Cloning shares the same time. Both monotonic and wall time advance together.
#[derive(Clone)]
pub struct ManualClock {
    inner: Arc<ManualInner>,
}

struct ManualInner {
    origin: Instant,
    origin_wall: SystemTime,
    offset_nanos: AtomicU64,
}

impl ManualClock {
    /// A manual clock whose wall time starts at 2026-01-01T00:00:00Z.
    pub fn new() -> Self {
        Self::with_wall(SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600))
    }

    /// A manual clock whose wall time starts at `wall`.
    #[allow(clippy::disallowed_methods)] // the one place that reads the real clocks
    pub fn with_wall(wall: SystemTime) -> Self {
        Self {
            inner: Arc::new(ManualInner {
                origin: Instant::now(),
                origin_wall: wall,
                offset_nanos: AtomicU64::new(0),
            }),
        }
    }

    /// Moves time forward by `by` (saturating at about 584 years).
    pub fn advance(&self, by: Duration) {
        let nanos = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        let _ = self
            .inner
            .offset_nanos
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |cur| {
                Some(cur.saturating_add(nanos))
            });
    }

    /// Time elapsed on this clock since it was created.
    pub fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.inner.offset_nanos.load(Ordering::SeqCst))
    }

    /// This clock as a [`SharedClock`] (sharing the same time).
    pub fn shared(&self) -> SharedClock {
        Arc::new(self.clone())
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualClock")
            .field("elapsed", &self.elapsed())
            .finish()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.inner.origin + self.elapsed()
    }

    fn wall(&self) -> SystemTime {
        self.inner.origin_wall + self.elapsed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_advanced() {
        let clock = ManualClock::new();
        let (t0, w0) = (clock.now(), clock.wall());
        assert_eq!(clock.now(), t0);
        clock.advance(Duration::from_millis(1500));
        assert_eq!(clock.now() - t0, Duration::from_millis(1500));
        assert_eq!(
            clock.wall().duration_since(w0).unwrap(),
            Duration::from_millis(1500)
        );
    }

    #[test]
    fn manual_clock_clones_share_time() {
        let clock = ManualClock::new();
        let other = clock.clone();
        clock.advance(Duration::from_secs(3));
        assert_eq!(other.elapsed(), Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn tokio_clock_follows_virtual_time_for_both_readings() {
        let clock = TokioClock::new();
        let (t0, w0) = (clock.now(), clock.wall());
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert_eq!(clock.now() - t0, Duration::from_secs(3600));
        assert_eq!(
            clock.wall().duration_since(w0).unwrap(),
            Duration::from_secs(3600)
        );
    }
}
