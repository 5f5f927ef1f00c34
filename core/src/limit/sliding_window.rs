//! Sliding window, as an exact log: at most `limit` units in any span of one window length.
//!
//! # Which providers it matches
//!
//! Servers that count "the last 60 seconds" rather than "this minute": GitHub's secondary
//! limits (≤ 900 points per minute per endpoint, ≤ 80 content-creating requests per minute and
//! ≤ 500 per hour), and Stripe's per-second limits where a provider wants the strict version of
//! "100 per second" rather than a token bucket's burst. Pick it to mirror a rolling server window
//! exactly; pick [`FixedWindowLimiter`](super::FixedWindowLimiter) when the server resets at fixed
//! instants.
//!
//! # How it works
//!
//! The limiter keeps a log of admissions `(instant, amount)`. An entry counts for one window
//! length after its instant. A call of `n` is admitted at `t` when the entries counting at `t`
//! plus `n` stay within `limit`. This is the exact sliding log, not Cloudflare's weighted
//! two-counter approximation (which can exceed the limit): in any span of length `window`, the
//! admitted cost is at most `limit`. Admissions log at most `limit` entries per window (zero
//! costs are not logged), so memory is bounded by the limit (plus reconcile charges).
//!
//! # Waiting
//!
//! [`acquire`](Limiter::acquire) computes the earliest instant, no earlier than the last
//! reservation, at which enough entries have expired, logs the call at that instant, and sleeps
//! until it. Waiters are therefore served in arrival order by construction. A cancelled waiter
//! removes its entry.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::reservation::wait_reserved;
use super::{BudgetName, Cost, Limiter, Permit, QuotaSnapshot, ThrottleReason, Throttled};
use crate::clock::{SharedClock, TokioClock};

/// At most `limit` units of one budget in any span of `window` (an exact sliding log).
///
/// Defaults: budget [`BudgetName::REQUESTS`], clock [`TokioClock`]. A cost above `limit` is
/// refused with [`ThrottleReason::ExceedsCapacity`].
///
/// ```
/// use std::time::Duration;
/// use ratewise_core::limit::{Cost, Limiter, SlidingWindowLimiter};
///
/// // GitHub: at most 80 content-creating requests in any minute.
/// let creates = SlidingWindowLimiter::new(80, Duration::from_secs(60));
/// let _permit = creates.try_acquire(&Cost::request()).unwrap();
/// ```
#[derive(Debug)]
pub struct SlidingWindowLimiter {
    budget: BudgetName,
    clock: SharedClock,
    window: Duration,
    state: Mutex<Log>,
}

#[derive(Debug)]
struct Log {
    limit: u64,
    /// Admissions and reservations, sorted by instant.
    entries: VecDeque<Entry>,
    next_id: u64,
    exhausted_until: Option<Instant>,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    at: Instant,
    amount: u64,
    id: u64,
}

impl Log {
    /// Forgets entries that no longer count at `now`.
    fn prune(&mut self, now: Instant, window: Duration) {
        while let Some(front) = self.entries.front() {
            match front.at.checked_add(window) {
                Some(expiry) if expiry > now => break,
                _ => {
                    self.entries.pop_front();
                }
            }
        }
    }

    /// Units counting at `now` (entries at or before `now`).
    fn used_at(&self, now: Instant) -> u64 {
        self.entries
            .iter()
            .filter(|e| e.at <= now)
            .fold(0_u64, |sum, e| sum.saturating_add(e.amount))
    }

    /// Inserts an entry at `at`, keeping the log sorted.
    fn insert(&mut self, at: Instant, amount: u64) {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let position = self.entries.partition_point(|e| e.at <= at);
        self.entries.insert(position, Entry { at, amount, id });
    }
}

impl SlidingWindowLimiter {
    /// A limiter admitting at most `limit` units in any span of `window` (a zero window counts
    /// as one nanosecond).
    pub fn new(limit: u64, window: Duration) -> Self {
        Self {
            budget: BudgetName::REQUESTS,
            clock: TokioClock::shared(),
            window: window.max(Duration::from_nanos(1)),
            state: Mutex::new(Log {
                limit,
                entries: VecDeque::new(),
                next_id: 0,
                exhausted_until: None,
            }),
        }
    }

    /// The budget this limiter spends (default [`BudgetName::REQUESTS`]).
    pub fn budget(mut self, budget: impl Into<BudgetName>) -> Self {
        self.budget = budget.into();
        self
    }

    /// The clock this limiter reads (default [`TokioClock`]). Clears the log.
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        let mut state = self.lock();
        state.entries.clear();
        state.exhausted_until = None;
        drop(state);
        self
    }

    /// Changes the limit while running; entries already logged are kept.
    pub fn set_limit(&self, limit: u64) {
        self.lock().limit = limit;
    }

    /// The limit per window.
    pub fn limit(&self) -> u64 {
        self.lock().limit
    }

    /// The window length.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// Units that could be admitted right now (ignoring callers already waiting).
    pub fn available(&self) -> u64 {
        let now = self.clock.now();
        let mut state = self.lock();
        state.prune(now, self.window);
        state.limit.saturating_sub(state.used_at(now))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Log> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Logs `amount` at the earliest instant FIFO allows, if it is within `max_wait`.
    /// Returns (the entry's id, its instant).
    fn reserve(
        &self,
        amount: u64,
        now: Instant,
        max_wait: Duration,
    ) -> Result<(u64, Instant), Throttled> {
        let mut state = self.lock();
        state.prune(now, self.window);
        if amount > state.limit {
            return Err(Throttled::new(
                self.budget.clone(),
                ThrottleReason::ExceedsCapacity,
                None,
            ));
        }
        let earliest = state.entries.back().map_or(now, |e| e.at.max(now));
        let total = state
            .entries
            .iter()
            .fold(0_u64, |sum, e| sum.saturating_add(e.amount));
        let excess = total.saturating_add(amount).saturating_sub(state.limit);
        let mut at = Some(earliest);
        if excess > 0 {
            let mut expired = 0_u64;
            for entry in &state.entries {
                expired = expired.saturating_add(entry.amount);
                if expired >= excess {
                    at = entry.at.checked_add(self.window).map(|t| t.max(earliest));
                    break;
                }
            }
        }
        let at = match at {
            Some(at) if at.saturating_duration_since(now) <= max_wait => at,
            _ => {
                let exhausted = state.exhausted_until.is_some_and(|t| t > now);
                let reason = if exhausted {
                    ThrottleReason::QuotaExhausted
                } else {
                    ThrottleReason::WouldWait
                };
                return Err(Throttled::new(self.budget.clone(), reason, at));
            }
        };
        let id = state.next_id;
        state.next_id = state.next_id.wrapping_add(1);
        state.entries.push_back(Entry { at, amount, id });
        Ok((id, at))
    }

    /// Removes the reservation `id` (a cancelled waiter).
    fn give_back(&self, id: u64) {
        let mut state = self.lock();
        if let Some(position) = state.entries.iter().position(|e| e.id == id) {
            state.entries.remove(position);
        }
    }
}

#[async_trait]
impl Limiter for SlidingWindowLimiter {
    fn try_acquire(&self, cost: &Cost) -> Result<Permit, Throttled> {
        let amount = cost.amount(&self.budget);
        if amount == 0 {
            return Ok(Permit::empty());
        }
        self.reserve(amount, self.clock.now(), Duration::ZERO)?;
        Ok(Permit::empty())
    }

    async fn acquire(&self, cost: &Cost, max_wait: Duration) -> Result<Permit, Throttled> {
        let amount = cost.amount(&self.budget);
        if amount == 0 {
            return Ok(Permit::empty());
        }
        let now = self.clock.now();
        let (id, at) = self.reserve(amount, now, max_wait)?;
        if at <= now {
            return Ok(Permit::empty());
        }
        wait_reserved(at, || self.give_back(id)).await;
        Ok(Permit::empty())
    }

    /// Slows down to what the server reports, never speeds up.
    ///
    /// Only snapshots of this limiter's budget count. `limit`, when present, becomes the limit.
    /// When the server's `remaining` is below the limiter's own estimate (`limit − logged`), the
    /// difference is logged as one entry that stops counting at `reset_at` (at most one window
    /// from now): nothing the server did not allow is admitted before then. With
    /// `remaining = 0`, refusals until `reset_at` say [`ThrottleReason::QuotaExhausted`].
    /// A snapshot whose `reset_at` has passed is ignored. Callers already waiting keep their
    /// slots.
    fn observe(&self, snapshot: &QuotaSnapshot) {
        if snapshot.budget != self.budget {
            return;
        }
        let now = self.clock.now();
        if snapshot.reset_at <= now {
            return;
        }
        let mut state = self.lock();
        state.prune(now, self.window);
        if let Some(limit) = snapshot.limit {
            state.limit = limit;
        }
        let estimate = state.limit.saturating_sub(state.used_at(now));
        if snapshot.remaining < estimate {
            let extra = estimate.saturating_sub(snapshot.remaining);
            let at = snapshot
                .reset_at
                .checked_sub(self.window)
                .map_or(now, |t| t.min(now));
            state.insert(at, extra);
        }
        if snapshot.remaining == 0 {
            state.exhausted_until = Some(snapshot.reset_at);
        }
    }

    /// Refunds or charges the difference.
    ///
    /// A charge is logged now, without an admission check. A refund is taken from the most
    /// recent admissions (entries at or before now), newest first: the log does not know which
    /// entry was the reconciled call, so reconcile promptly (a composite does so at once).
    fn reconcile(&self, reserved: &Cost, actual: &Cost) {
        let reserved = reserved.amount(&self.budget);
        let actual = actual.amount(&self.budget);
        let now = self.clock.now();
        let mut state = self.lock();
        state.prune(now, self.window);
        if actual > reserved {
            state.insert(now, actual.saturating_sub(reserved));
            return;
        }
        let mut refund = reserved.saturating_sub(actual);
        while refund > 0 {
            let position = state.entries.partition_point(|e| e.at <= now);
            let Some(index) = position.checked_sub(1) else {
                break;
            };
            let Some(entry) = state.entries.get_mut(index) else {
                break;
            };
            let taken = entry.amount.min(refund);
            entry.amount = entry.amount.saturating_sub(taken);
            refund = refund.saturating_sub(taken);
            if entry.amount == 0 {
                state.entries.remove(index);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::{Clock, ManualClock};

    fn manual(limit: u64, window: Duration) -> (ManualClock, SlidingWindowLimiter) {
        let clock = ManualClock::new();
        let limiter = SlidingWindowLimiter::new(limit, window).clock(clock.shared());
        (clock, limiter)
    }

    #[test]
    fn capacity_returns_one_window_after_each_admission() {
        let (clock, limiter) = manual(2, Duration::from_secs(10));
        let _ = limiter.try_acquire(&Cost::request()).unwrap();
        clock.advance(Duration::from_secs(4));
        let _ = limiter.try_acquire(&Cost::request()).unwrap();
        let err = limiter.try_acquire(&Cost::request()).unwrap_err();
        assert_eq!(err.reason, ThrottleReason::WouldWait);
        assert_eq!(err.retry_after(clock.now()), Some(Duration::from_secs(6)));
        clock.advance(Duration::from_secs(6));
        assert_eq!(
            limiter.available(),
            1,
            "only the first admission has expired"
        );
    }

    #[test]
    fn unlike_a_fixed_window_it_never_admits_twice_the_limit_across_a_boundary() {
        let (clock, limiter) = manual(3, Duration::from_secs(10));
        clock.advance(Duration::from_secs(9));
        let _ = limiter
            .try_acquire(&Cost::none().with("requests", 3))
            .unwrap();
        clock.advance(Duration::from_secs(2));
        assert!(limiter.try_acquire(&Cost::request()).is_err());
    }

    #[test]
    fn a_cost_above_the_limit_can_never_be_admitted() {
        let (_clock, limiter) = manual(3, Duration::from_secs(1));
        let err = limiter
            .try_acquire(&Cost::none().with("requests", 4))
            .unwrap_err();
        assert_eq!(err.reason, ThrottleReason::ExceedsCapacity);
    }

    #[test]
    fn set_limit_applies_at_once() {
        let (_clock, limiter) = manual(1, Duration::from_secs(1));
        let _ = limiter.try_acquire(&Cost::request()).unwrap();
        limiter.set_limit(3);
        assert_eq!(limiter.available(), 2);
    }

    #[test]
    fn observe_remaining_zero_blocks_until_the_servers_reset() {
        let (clock, limiter) = manual(10, Duration::from_secs(60));
        let now = clock.now();
        let reset = now + Duration::from_secs(20);
        limiter.observe(&QuotaSnapshot::new(BudgetName::REQUESTS, 0, reset, now));
        let err = limiter.try_acquire(&Cost::request()).unwrap_err();
        assert_eq!(err.reason, ThrottleReason::QuotaExhausted);
        assert_eq!(err.until, Some(reset));
        clock.advance(Duration::from_secs(20));
        assert_eq!(limiter.available(), 10);
    }

    #[test]
    fn reconcile_refunds_the_newest_admission_and_charges_now() {
        let (_clock, limiter) = manual(10, Duration::from_secs(1));
        let cost = Cost::none().with("requests", 7);
        let _ = limiter.try_acquire(&cost).unwrap();
        limiter.reconcile(&cost, &Cost::none());
        assert_eq!(limiter.available(), 10);
        limiter.reconcile(&Cost::none(), &cost);
        assert_eq!(limiter.available(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn acquire_waits_for_expiry_within_max_wait() {
        let limiter = SlidingWindowLimiter::new(1, Duration::from_secs(5));
        let start = TokioClock::new().now();
        let _ = limiter
            .acquire(&Cost::request(), Duration::ZERO)
            .await
            .unwrap();
        let err = limiter
            .acquire(&Cost::request(), Duration::from_secs(4))
            .await
            .unwrap_err();
        assert_eq!(err.until, Some(start + Duration::from_secs(5)));
        let _ = limiter
            .acquire(&Cost::request(), Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!((TokioClock::new().now() - start), Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_waiter_removes_its_entry() {
        let limiter = Arc::new(SlidingWindowLimiter::new(2, Duration::from_secs(5)));
        let _ = limiter.try_acquire(&Cost::request()).unwrap();
        let cancelled = tokio::time::timeout(
            Duration::from_secs(1),
            limiter.acquire(&Cost::none().with("requests", 2), Duration::from_secs(60)),
        )
        .await;
        assert!(cancelled.is_err());
        assert_eq!(limiter.available(), 1);
    }
}
