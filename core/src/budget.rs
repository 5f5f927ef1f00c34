//! The retry budget: retries may add at most a fixed share of load.
//!
//! Per-call retry limits do not stop a retry storm: when an upstream fails for everyone, every
//! caller retries up to its limit and the load multiplies (4 attempts per call is 4× the load
//! on a server that is already drowning). A budget bounds retries across *all* calls sharing
//! it: each call deposits, each retry withdraws, and when the balance is spent retries stop
//! until fresh calls refill it.
//!
//! The semantics are Finagle's `RetryBudget` and tower's `TpsBudget`: within any sliding
//! window (default 10 s, kept in 10 slots) retries may add at most `retry_percent` (default
//! 20 %) of the calls made in that window, plus a floor of `min_per_sec` retries per second
//! (default 10) so a quiet client can still retry its occasional failure. Deposits and
//! withdrawals both expire with the window.
//!
//! Time comes from the injected [`SharedClock`]. The state is a few integers behind a
//! `Mutex` held for a handful of arithmetic operations; [`RetryBudget`] is `Send + Sync` and a
//! cheap `Clone` whose clones share one budget.
//!
//! ```
//! use std::time::Duration;
//! use ratewise_core::budget::RetryBudget;
//! use ratewise_core::clock::ManualClock;
//!
//! let clock = ManualClock::new();
//! let budget = RetryBudget::builder()
//!     .retry_percent(0.2)
//!     .min_per_sec(0)
//!     .clock(clock.shared())
//!     .build();
//! for _ in 0..10 {
//!     budget.deposit();
//! }
//! assert!(budget.try_withdraw());
//! assert!(budget.try_withdraw());
//! assert!(!budget.try_withdraw(), "20 % of 10 calls is 2 retries");
//! ```

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::clock::{SharedClock, TokioClock};

/// Slots the window is divided into: deposits expire one slot (a tenth of the window) at a time.
const SLOTS: usize = 10;
/// Balance units one retry withdraws; a call deposits `retry_percent × UNITS`.
const UNITS: i64 = 1000;
/// The largest `retry_percent` accepted (tower's bound): 1000 retries per call.
const MAX_PERCENT: f32 = 1000.0;

/// A retry budget shared by every call to one upstream (Finagle/tower semantics).
///
/// Defaults: 10 s window, 20 % of calls, floor of 10 retries per second, [`TokioClock`].
/// Call [`RetryBudget::deposit`] once per logical call and [`RetryBudget::try_withdraw`] before
/// each retry; the retry loop ([`crate::retry`]) does both.
#[derive(Clone)]
pub struct RetryBudget {
    inner: Arc<Inner>,
}

struct Inner {
    clock: SharedClock,
    origin: Instant,
    slot_nanos: u64,
    deposit: i64,
    reserve: i64,
    config: RetryBudgetBuilder,
    state: Mutex<State>,
}

struct State {
    slots: [i64; SLOTS],
    current: u64,
}

impl RetryBudget {
    /// The default window: 10 s.
    pub const DEFAULT_WINDOW: Duration = Duration::from_secs(10);
    /// The default floor: 10 retries per second.
    pub const DEFAULT_MIN_PER_SEC: u32 = 10;
    /// The default share of calls that may be retried: 20 %.
    pub const DEFAULT_RETRY_PERCENT: f32 = 0.2;

    /// A budget with the defaults (10 s window, 20 %, 10 per second, [`TokioClock`]).
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// A builder starting from the defaults.
    pub fn builder() -> RetryBudgetBuilder {
        RetryBudgetBuilder {
            window: Self::DEFAULT_WINDOW,
            min_per_sec: Self::DEFAULT_MIN_PER_SEC,
            retry_percent: Self::DEFAULT_RETRY_PERCENT,
            clock: None,
        }
    }

    /// Records one call (not a retry): it earns `retry_percent` of a retry.
    pub fn deposit(&self) {
        let deposit = self.inner.deposit;
        self.with_current_slot(|state, idx| {
            if let Some(slot) = state.slots.get_mut(idx) {
                *slot = slot.saturating_add(deposit);
            }
        });
    }

    /// Spends one retry if the budget allows it; `false` means do not retry.
    pub fn try_withdraw(&self) -> bool {
        let reserve = self.inner.reserve;
        self.with_current_slot(|state, idx| {
            let balance = state
                .slots
                .iter()
                .fold(reserve, |sum, slot| sum.saturating_add(*slot));
            if balance < UNITS {
                return false;
            }
            if let Some(slot) = state.slots.get_mut(idx) {
                *slot = slot.saturating_sub(UNITS);
            }
            true
        })
    }

    /// How many retries the budget would allow right now.
    pub fn available(&self) -> u64 {
        let reserve = self.inner.reserve;
        self.with_current_slot(|state, _| {
            let balance = state
                .slots
                .iter()
                .fold(reserve, |sum, slot| sum.saturating_add(*slot));
            u64::try_from(balance / UNITS).unwrap_or(0)
        })
    }

    /// The window over which deposits count.
    pub fn window(&self) -> Duration {
        self.inner.config.window
    }

    /// The floor of retries per second.
    pub fn min_per_sec(&self) -> u32 {
        self.inner.config.min_per_sec
    }

    /// The share of calls that may be retried (after clamping to `0.0..=1000.0`).
    pub fn retry_percent(&self) -> f32 {
        self.inner.config.retry_percent
    }

    /// Expires the slots time has moved past, then runs `f` on the state and the current slot.
    fn with_current_slot<R>(&self, f: impl FnOnce(&mut State, usize) -> R) -> R {
        let inner = &*self.inner;
        let elapsed = inner.clock.now().saturating_duration_since(inner.origin);
        let elapsed = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        let now_slot = elapsed / inner.slot_nanos;
        let mut state = lock(&inner.state);
        if now_slot > state.current {
            let passed = now_slot - state.current;
            let expire = passed.min(SLOTS as u64);
            let current = state.current;
            for k in 1..=expire {
                if let Some(slot) = state.slots.get_mut(slot_index(current.saturating_add(k))) {
                    *slot = 0;
                }
            }
            state.current = now_slot;
        }
        let idx = slot_index(state.current);
        f(&mut state, idx)
    }
}

impl Default for RetryBudget {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for RetryBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryBudget")
            .field("window", &self.inner.config.window)
            .field("min_per_sec", &self.inner.config.min_per_sec)
            .field("retry_percent", &self.inner.config.retry_percent)
            .field("available", &self.available())
            .finish()
    }
}

/// Builds a [`RetryBudget`]; every setting has a documented default.
#[derive(Clone, Debug)]
#[must_use = "call .build() to get the budget"]
pub struct RetryBudgetBuilder {
    window: Duration,
    min_per_sec: u32,
    retry_percent: f32,
    clock: Option<SharedClock>,
}

impl RetryBudgetBuilder {
    /// How long deposits and withdrawals count (default 10 s; at least 10 ns).
    pub fn window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// Retries per second always allowed, whatever the call volume (default 10; 0 for none).
    pub fn min_per_sec(mut self, min_per_sec: u32) -> Self {
        self.min_per_sec = min_per_sec;
        self
    }

    /// The share of calls that may be retried on top of the floor (default 0.2, i.e. 20 %).
    ///
    /// Clamped to `0.0..=1000.0` (NaN counts as 0); resolution is 0.1 %.
    pub fn retry_percent(mut self, retry_percent: f32) -> Self {
        self.retry_percent = retry_percent;
        self
    }

    /// The clock that ages the window (default [`TokioClock`]).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The budget.
    pub fn build(self) -> RetryBudget {
        let mut config = self;
        config.retry_percent = if config.retry_percent.is_nan() {
            0.0
        } else {
            config.retry_percent.clamp(0.0, MAX_PERCENT)
        };
        let clock = config.clock.clone().unwrap_or_else(TokioClock::shared);
        let window_nanos = u64::try_from(config.window.as_nanos()).unwrap_or(u64::MAX);
        let slot_nanos = (window_nanos / SLOTS as u64).max(1);
        // The floor in units: `min_per_sec × window_secs` retries of UNITS (1000) each, which is
        // `min_per_sec × window_ms`.
        let reserve = u128::from(config.min_per_sec).saturating_mul(config.window.as_millis());
        // In 0..=1_000_000 after the clamp, so the (saturating) cast is exact.
        let deposit = (f64::from(config.retry_percent) * UNITS as f64).round() as i64;
        RetryBudget {
            inner: Arc::new(Inner {
                origin: clock.now(),
                clock,
                slot_nanos,
                deposit,
                reserve: i64::try_from(reserve).unwrap_or(i64::MAX),
                config,
                state: Mutex::new(State {
                    slots: [0; SLOTS],
                    current: 0,
                }),
            }),
        }
    }
}

fn slot_index(slot: u64) -> usize {
    // `slot % SLOTS` is below SLOTS, so it fits any usize.
    usize::try_from(slot % SLOTS as u64).unwrap_or(0)
}

/// Locks the state; a panic elsewhere cannot leave these integers inconsistent, so a poisoned
/// lock is simply taken over.
fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn budget(clock: &ManualClock, percent: f32, floor: u32) -> RetryBudget {
        RetryBudget::builder()
            .retry_percent(percent)
            .min_per_sec(floor)
            .clock(clock.shared())
            .build()
    }

    #[test]
    fn defaults_are_ten_seconds_twenty_percent_and_ten_per_second() {
        let b = RetryBudget::new();
        assert_eq!(b.window(), Duration::from_secs(10));
        assert_eq!(b.min_per_sec(), 10);
        assert!((b.retry_percent() - 0.2).abs() < f32::EPSILON);
        assert_eq!(
            b.available(),
            100,
            "a fresh budget holds the floor: 10/s over 10 s"
        );
    }

    #[test]
    fn zero_percent_and_zero_floor_permit_no_retry_at_all() {
        let clock = ManualClock::new();
        let b = budget(&clock, 0.0, 0);
        for _ in 0..1000 {
            b.deposit();
        }
        assert!(!b.try_withdraw());
        assert_eq!(b.available(), 0);
    }

    #[test]
    fn the_floor_alone_allows_min_per_sec_over_the_window() {
        let clock = ManualClock::new();
        let b = budget(&clock, 0.0, 2);
        let allowed = (0..100).filter(|_| b.try_withdraw()).count();
        assert_eq!(allowed, 20);
    }

    #[test]
    fn deposits_expire_after_the_window() {
        let clock = ManualClock::new();
        let b = budget(&clock, 0.5, 0);
        for _ in 0..10 {
            b.deposit();
        }
        assert_eq!(b.available(), 5);
        clock.advance(Duration::from_secs(9));
        assert_eq!(b.available(), 5);
        clock.advance(Duration::from_secs(1));
        assert_eq!(b.available(), 0);
    }

    #[test]
    fn withdrawals_expire_too_so_the_floor_refills() {
        let clock = ManualClock::new();
        let b = budget(&clock, 0.0, 1);
        assert_eq!((0..50).filter(|_| b.try_withdraw()).count(), 10);
        clock.advance(Duration::from_secs(10));
        assert_eq!(b.available(), 10);
    }

    #[test]
    fn out_of_range_percentages_are_clamped_not_panicked_on() {
        let clock = ManualClock::new();
        assert_eq!(budget(&clock, f32::NAN, 0).retry_percent(), 0.0);
        assert_eq!(budget(&clock, -3.0, 0).retry_percent(), 0.0);
        assert_eq!(budget(&clock, f32::INFINITY, 0).retry_percent(), 1000.0);
        let zero_window = RetryBudget::builder()
            .window(Duration::ZERO)
            .clock(clock.shared())
            .build();
        zero_window.deposit();
        assert_eq!(zero_window.available(), 0);
    }

    #[test]
    fn clones_share_one_budget() {
        let clock = ManualClock::new();
        let a = budget(&clock, 1.0, 0);
        let b = a.clone();
        a.deposit();
        assert!(b.try_withdraw());
        assert!(!a.try_withdraw());
    }

    #[test]
    fn no_ten_second_window_retries_more_than_its_share_plus_the_floor() {
        let clock = ManualClock::new();
        let b = budget(&clock, 0.2, 1);
        // 20 calls per second for 120 s, each wanting 3 retries; count per 100 ms tick.
        let mut calls = Vec::new();
        let mut retries = Vec::new();
        for tick in 0..1200 {
            let (mut c, mut r) = (0, 0);
            if tick % 5 == 0 {
                c = 1;
                b.deposit();
                r = (0..3).filter(|_| b.try_withdraw()).count();
            }
            calls.push(c);
            retries.push(r);
            clock.advance(Duration::from_millis(100));
        }
        // Any window of 10 s (100 ticks): retries ≤ 20 % of the calls in it and the slot
        // before it (deposits age out a slot at a time) + the floor (1/s × 10 s).
        for start in 10..1100 {
            let r: usize = retries[start..start + 100].iter().sum();
            let c: usize = calls[start - 10..start + 100].iter().sum();
            assert!(
                r <= c / 5 + 10,
                "window at {start}: {r} retries for {c} calls"
            );
        }
        let total: usize = retries.iter().sum();
        assert!(
            total >= 240 * 2 / 3,
            "the budget is not starving retries: {total}"
        );
    }

    #[test]
    fn budget_is_send_sync_and_clone() {
        fn assert_shareable<T: Send + Sync + Clone + 'static>() {}
        assert_shareable::<RetryBudget>();
    }
}
