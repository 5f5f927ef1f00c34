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
//!
//! Reading the system's monotonic clock costs about 20–40 ns (a `clock_gettime` through the vDSO;
//! more in some VMs), which dominates a limiter's or breaker's hot path. Services that admit
//! millions of calls per second and never pause tokio's time can opt into [`FastClock`], which
//! reads the CPU's timestamp counter (~10 ns). [`TokioClock`] stays the default everywhere.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

mod fast;
mod reader;

pub use fast::FastClock;
pub(crate) use reader::ClockReader;

/// A value only this crate can build: a [`Clock`] method taking it can be neither called nor
/// overridden outside ratewise-core.
mod sealed {
    #[allow(unreachable_pub)] // sealed: public in a private module
    #[derive(Clone, Copy, Debug)]
    pub struct Token;
}

/// A source of monotonic and wall-clock time.
///
/// Monotonic time ([`Clock::now`]) measures intervals: waits, windows, deadlines. Wall time
/// ([`Clock::wall`]) only interprets what servers send: HTTP dates and epoch-second resets.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current monotonic instant.
    fn now(&self) -> Instant;
    /// The current wall-clock time.
    fn wall(&self) -> SystemTime;

    /// Nanoseconds elapsed from `base` to now: 0 if `base` is later, saturating at about 584
    /// years.
    ///
    /// The hot paths of the limiters and the breaker count time as nanoseconds since a base
    /// instant (taken from [`Clock::epoch`]) and call this once per admission. The default is
    /// computed from [`Clock::now`]; clocks that count nanoseconds internally ([`ManualClock`],
    /// [`FastClock`]) override it to skip the `Instant` arithmetic when `base` is their epoch.
    #[inline]
    fn nanos_since(&self, base: Instant) -> u64 {
        nanos(self.now().saturating_duration_since(base))
    }

    /// An instant no later than any later reading of this clock: the base to count
    /// [`Clock::nanos_since`] from. Default: [`Clock::now`]; clocks that count from a fixed
    /// origin return it, which makes `nanos_since(epoch())` a subtraction-free read.
    fn epoch(&self) -> Instant {
        self.now()
    }

    /// This clock as a [`FastClock`], if it is one, so the hot paths read it without a dynamic
    /// call. Crate-internal (sealed). Default: `None`.
    #[doc(hidden)]
    fn as_fast_clock(&self, token: sealed::Token) -> Option<&FastClock> {
        let _ = token;
        None
    }

    /// Both readings at once, for code that turns server wall times into monotonic instants.
    fn timestamp(&self) -> Timestamp {
        Timestamp {
            instant: self.now(),
            wall: self.wall(),
        }
    }
}

/// One reading of both clocks: a monotonic instant and the wall time at that instant.
///
/// Servers speak wall time (`X-RateLimit-Reset: 1789683711`, HTTP dates); limiters and
/// deadlines speak monotonic instants. A timestamp converts one into the other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timestamp {
    /// The monotonic reading.
    pub instant: Instant,
    /// The wall-clock reading at the same moment.
    pub wall: SystemTime,
}

impl Timestamp {
    /// The monotonic instant at which the wall clock reads `wall`; a wall time in the past maps
    /// to this timestamp's instant (never earlier), and one too far ahead saturates at 100 years.
    pub fn instant_at(&self, wall: SystemTime) -> Instant {
        let ahead = wall.duration_since(self.wall).unwrap_or(Duration::ZERO);
        self.after(ahead)
    }

    /// The instant `delay` after this timestamp, saturating at 100 years ahead.
    pub fn after(&self, delay: Duration) -> Instant {
        const FAR: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
        self.instant
            .checked_add(delay.min(FAR))
            .unwrap_or(self.instant)
    }
}

/// `d` in nanoseconds, saturating at about 584 years.
#[inline]
fn nanos(d: Duration) -> u64 {
    d.as_secs()
        .saturating_mul(1_000_000_000)
        .saturating_add(u64::from(d.subsec_nanos()))
}

/// Nanoseconds from `base` to the instant `elapsed` nanoseconds after `origin` (0 if `base` is
/// later): the [`Clock::nanos_since`] of clocks that count nanoseconds since an origin.
#[inline]
fn nanos_between(origin: Instant, elapsed: u64, base: Instant) -> u64 {
    if base == origin {
        return elapsed;
    }
    from_other_base(origin, elapsed, base)
}

/// [`nanos_between`] when `base` is not `origin`: out of line, so the common case stays a
/// comparison and keeps the caller's registers free.
#[cold]
#[inline(never)]
fn from_other_base(origin: Instant, elapsed: u64, base: Instant) -> u64 {
    match base.checked_duration_since(origin) {
        Some(ahead) => elapsed.saturating_sub(nanos(ahead)),
        None => elapsed.saturating_add(nanos(origin.saturating_duration_since(base))),
    }
}

/// The instant `elapsed` nanoseconds after `origin`, saturating at `origin` on overflow.
#[inline]
fn instant_after(origin: Instant, elapsed: u64) -> Instant {
    origin
        .checked_add(Duration::from_nanos(elapsed))
        .unwrap_or(origin)
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

    /// The instant this clock was created: every mechanism built on one shared `TokioClock`
    /// then counts from the same base, so a [`CompositeLimiter`](crate::limit::CompositeLimiter)
    /// can share one reading among its members.
    fn epoch(&self) -> Instant {
        self.origin.into_std()
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
        instant_after(
            self.inner.origin,
            self.inner.offset_nanos.load(Ordering::SeqCst),
        )
    }

    fn wall(&self) -> SystemTime {
        let elapsed = self.elapsed();
        self.inner
            .origin_wall
            .checked_add(elapsed)
            .unwrap_or(self.inner.origin_wall)
    }

    #[inline]
    fn nanos_since(&self, base: Instant) -> u64 {
        let elapsed = self.inner.offset_nanos.load(Ordering::SeqCst);
        nanos_between(self.inner.origin, elapsed, base)
    }

    fn epoch(&self) -> Instant {
        self.inner.origin
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
    fn timestamp_maps_server_wall_times_onto_the_monotonic_clock() {
        let clock = ManualClock::new();
        let ts = clock.timestamp();
        let reset = ts.wall + Duration::from_secs(42);
        assert_eq!(ts.instant_at(reset) - ts.instant, Duration::from_secs(42));
        assert_eq!(ts.instant_at(ts.wall - Duration::from_secs(5)), ts.instant);
        let far = ts.instant_at(SystemTime::UNIX_EPOCH + Duration::from_secs(u64::MAX / 4));
        assert!(far > ts.instant);
    }

    #[test]
    fn manual_clock_counts_nanos_from_any_base() {
        let clock = ManualClock::new();
        let epoch = clock.epoch();
        clock.advance(Duration::from_millis(1500));
        let later = clock.now();
        clock.advance(Duration::from_millis(250));
        assert_eq!(clock.nanos_since(epoch), 1_750_000_000);
        assert_eq!(clock.nanos_since(later), 250_000_000);
        assert_eq!(
            clock.nanos_since(epoch - Duration::from_secs(1)),
            2_750_000_000
        );
        assert_eq!(clock.nanos_since(clock.now() + Duration::from_secs(1)), 0);
        assert!(epoch <= clock.now());
    }

    #[test]
    fn the_default_nanos_since_counts_from_now() {
        let clock = TokioClock::new();
        let epoch = clock.epoch();
        assert!(clock.nanos_since(epoch) < 1_000_000_000);
        assert_eq!(clock.nanos_since(clock.now() + Duration::from_secs(5)), 0);
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
