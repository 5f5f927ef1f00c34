//! Exponential backoff with jitter: how long to wait before the next attempt.
//!
//! Retrying at fixed intervals makes every client that failed together retry together, and the
//! storm repeats. Exponential backoff spreads retries out in time; jitter spreads them among
//! clients. [`Jitter::Full`] (the default) draws uniformly from `[0, min(cap, base·2ⁿ)]`, which
//! AWS's analysis ("Exponential Backoff And Jitter", 2015) found to do the least total work.
//!
//! A [`Backoff`] is a small `Copy` policy (base 200 ms, cap 30 s, full jitter by default). Each
//! call draws its own delays, either one at a time with [`Backoff::delay`] or as a sequence with
//! [`Backoff::state`] (a [`BackoffState`], which remembers the previous delay that
//! [`Jitter::Decorrelated`] needs). The same type serves the queue layer's minutes-to-hours
//! backoff: `Backoff::new().base(Duration::from_secs(60)).cap(Duration::from_secs(6 * 3600))`.
//!
//! Randomness is injected: pass a seeded `fastrand::Rng` for deterministic tests.
//!
//! ```
//! use std::time::Duration;
//! use ratewise_core::backoff::{Backoff, Jitter};
//!
//! let backoff = Backoff::new().base(Duration::from_millis(100)).jitter(Jitter::None);
//! let delays: Vec<_> = backoff.state(fastrand::Rng::with_seed(7)).take(4).collect();
//! assert_eq!(delays, [100, 200, 400, 800].map(Duration::from_millis));
//! ```

use std::time::Duration;

use fastrand::Rng;

/// How a delay is drawn from the exponential ceiling `min(cap, base·2ⁿ)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Jitter {
    /// Uniform in `[0, ceiling]`: the least total work under contention (the default).
    #[default]
    Full,
    /// Uniform in `[ceiling/2, ceiling]`: never retries very early, at the cost of more overlap.
    Equal,
    /// Uniform in `[base, min(cap, 3·previous)]`, starting from `previous = base`: grows like
    /// the exponential but wanders, decorrelating clients that started together.
    Decorrelated,
    /// Exactly the ceiling: deterministic, for tests and for callers that add their own jitter.
    None,
}

/// An exponential backoff policy: base, cap and jitter (a small `Copy` value).
///
/// Defaults: base 200 ms, cap 30 s, [`Jitter::Full`]. Delays never exceed the cap, and no
/// attempt number (up to `u32::MAX`) overflows. Durations are handled in nanoseconds up to
/// `u64::MAX` (about 584 years); longer bases or caps are treated as that.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    jitter: Jitter,
}

impl Backoff {
    /// The default first ceiling: 200 ms.
    pub const DEFAULT_BASE: Duration = Duration::from_millis(200);
    /// The default longest delay: 30 s.
    pub const DEFAULT_CAP: Duration = Duration::from_secs(30);

    /// The default policy: base 200 ms, cap 30 s, full jitter.
    pub const fn new() -> Self {
        Self {
            base: Self::DEFAULT_BASE,
            cap: Self::DEFAULT_CAP,
            jitter: Jitter::Full,
        }
    }

    /// This policy with the ceiling of the first retry set to `base` (default 200 ms).
    pub const fn base(mut self, base: Duration) -> Self {
        self.base = base;
        self
    }

    /// This policy with no delay longer than `cap` (default 30 s).
    pub const fn cap(mut self, cap: Duration) -> Self {
        self.cap = cap;
        self
    }

    /// This policy with `jitter` (default [`Jitter::Full`]).
    pub const fn jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }

    /// The configured base.
    pub const fn base_delay(&self) -> Duration {
        self.base
    }

    /// The configured cap.
    pub const fn max_delay(&self) -> Duration {
        self.cap
    }

    /// The configured jitter.
    pub const fn jitter_kind(&self) -> Jitter {
        self.jitter
    }

    /// The exponential ceiling for retry number `attempt` (0 for the first retry):
    /// `min(cap, base·2^attempt)`, saturating instead of overflowing.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let base = nanos(self.base);
        let cap = nanos(self.cap);
        let grown = 1u64
            .checked_shl(attempt)
            .and_then(|factor| base.checked_mul(factor))
            .unwrap_or(if base == 0 { 0 } else { u64::MAX });
        Duration::from_nanos(grown.min(cap))
    }

    /// One delay for retry number `attempt` (0 for the first retry).
    ///
    /// `previous` is the delay before the previous retry (`None` for the first); only
    /// [`Jitter::Decorrelated`] reads it. [`Backoff::state`] tracks it for you.
    pub fn delay(&self, attempt: u32, previous: Option<Duration>, rng: &mut Rng) -> Duration {
        let cap = nanos(self.cap);
        let ceiling = nanos(self.ceiling(attempt));
        let drawn = match self.jitter {
            Jitter::Full => rng.u64(0..=ceiling),
            Jitter::Equal => {
                let half = ceiling / 2;
                rng.u64(half..=ceiling)
            }
            Jitter::Decorrelated => {
                let base = nanos(self.base).min(cap);
                let previous = previous.map_or(base, nanos);
                let upper = previous.saturating_mul(3).min(cap).max(base);
                rng.u64(base..=upper)
            }
            Jitter::None => ceiling,
        };
        Duration::from_nanos(drawn.min(cap))
    }

    /// Per-call state: the delays of one call's retries, in order, drawn from `rng`.
    pub fn state(&self, rng: Rng) -> BackoffState {
        BackoffState {
            policy: *self,
            attempt: 0,
            previous: None,
            rng,
        }
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new()
    }
}

/// The delays of one call's retries: an endless iterator over [`Backoff::delay`].
///
/// Remembers the retry number and the previous delay (for [`Jitter::Decorrelated`]). Once the
/// retry number saturates at `u32::MAX` every further delay is drawn from the cap.
#[derive(Clone, Debug)]
pub struct BackoffState {
    policy: Backoff,
    attempt: u32,
    previous: Option<Duration>,
    rng: Rng,
}

impl BackoffState {
    /// The delay before the next retry.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self
            .policy
            .delay(self.attempt, self.previous, &mut self.rng);
        self.attempt = self.attempt.saturating_add(1);
        self.previous = Some(delay);
        delay
    }

    /// How many delays have been drawn.
    pub fn retries(&self) -> u32 {
        self.attempt
    }

    /// The policy this state draws from.
    pub fn policy(&self) -> Backoff {
        self.policy
    }
}

impl Iterator for BackoffState {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        Some(self.next_delay())
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (usize::MAX, None)
    }
}

/// `d` in nanoseconds, saturating at `u64::MAX`.
fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn defaults_are_full_jitter_from_200ms_capped_at_30s() {
        let b = Backoff::default();
        assert_eq!(b.base_delay(), Duration::from_millis(200));
        assert_eq!(b.max_delay(), Duration::from_secs(30));
        assert_eq!(b.jitter_kind(), Jitter::Full);
    }

    #[test]
    fn ceiling_doubles_from_base_until_the_cap() {
        let b = Backoff::new();
        let ceilings: Vec<_> = (0..10).map(|n| b.ceiling(n)).collect();
        let expected = [
            200, 400, 800, 1600, 3200, 6400, 12_800, 25_600, 30_000, 30_000,
        ];
        assert_eq!(ceilings, expected.map(|ms| MS * ms));
    }

    #[test]
    fn huge_attempt_numbers_saturate_at_the_cap() {
        let b = Backoff::new().jitter(Jitter::None);
        let mut rng = Rng::with_seed(1);
        assert_eq!(b.delay(u32::MAX, None, &mut rng), Duration::from_secs(30));
        assert_eq!(b.delay(64, None, &mut rng), Duration::from_secs(30));
        let unbounded = Backoff::new().cap(Duration::MAX).jitter(Jitter::None);
        assert_eq!(
            unbounded.delay(u32::MAX, None, &mut rng),
            Duration::from_nanos(u64::MAX)
        );
    }

    #[test]
    fn zero_base_never_waits() {
        let b = Backoff::new().base(Duration::ZERO);
        let mut rng = Rng::with_seed(3);
        for n in [0, 5, 63, 64, u32::MAX] {
            assert_eq!(b.delay(n, None, &mut rng), Duration::ZERO);
        }
    }

    #[test]
    fn same_seed_draws_the_same_delays() {
        let b = Backoff::new();
        let a: Vec<_> = b.state(Rng::with_seed(42)).take(8).collect();
        let c: Vec<_> = b.state(Rng::with_seed(42)).take(8).collect();
        let d: Vec<_> = b.state(Rng::with_seed(43)).take(8).collect();
        assert_eq!(a, c);
        assert_ne!(a, d);
    }

    #[test]
    fn decorrelated_starts_from_base_and_grows_with_the_previous_delay() {
        let b = Backoff::new().jitter(Jitter::Decorrelated);
        let mut state = b.state(Rng::with_seed(9));
        let first = state.next_delay();
        assert!(first >= MS * 200 && first <= MS * 600, "{first:?}");
        let mut prev = first;
        for _ in 0..50 {
            let d = state.next_delay();
            assert!(d >= MS * 200 && d <= (prev * 3).min(Duration::from_secs(30)));
            prev = d;
        }
        assert_eq!(state.retries(), 51);
    }

    #[test]
    fn a_cap_below_the_base_bounds_every_jitter() {
        for jitter in [
            Jitter::Full,
            Jitter::Equal,
            Jitter::Decorrelated,
            Jitter::None,
        ] {
            let b = Backoff::new()
                .base(Duration::from_secs(10))
                .cap(Duration::from_secs(1))
                .jitter(jitter);
            let mut state = b.state(Rng::with_seed(5));
            assert!(state.by_ref().take(20).all(|d| d <= Duration::from_secs(1)));
        }
    }
}
