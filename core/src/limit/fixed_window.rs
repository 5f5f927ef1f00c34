//! Fixed window: at most `limit` units per window of fixed length, counted from the window start.
//!
//! # Which providers it matches
//!
//! SendGrid v3 counts requests per endpoint in a refresh period and says when it ends
//! (`X-RateLimit-Limit: 500`, `X-RateLimit-Remaining`, `X-RateLimit-Reset` in epoch seconds);
//! once exhausted the endpoint stays blocked "for the remainder of the refresh period". GitHub's
//! primary limit (5,000 per hour, `x-ratelimit-reset`) behaves the same way. A fixed window
//! mirrors such a server exactly: [`observe`](Limiter::observe) aligns the window to the
//! server's reset and adopts its count, so the client spends exactly what the server allows,
//! including the full budget again right after the reset.
//!
//! Like every fixed window, it may admit up to `2 · limit` in a span of one window length that
//! straddles a boundary (the end of one window and the start of the next). That is what the
//! server allows too; use [`SlidingWindowLimiter`](super::SlidingWindowLimiter) or
//! [`GcraLimiter`](super::GcraLimiter) when the server counts a rolling window.
//!
//! # Waiting
//!
//! [`acquire`](Limiter::acquire) reserves room in the earliest window after every earlier
//! reservation (the window the last waiter was placed in, or the one after it), then sleeps until
//! that window starts: waiters are served in arrival order by construction, and a large cost is
//! never overtaken by small ones. A cancelled waiter removes its reservation.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::reservation::{nanos, wait_reserved};
use super::{BudgetName, Cost, Limiter, Permit, QuotaSnapshot, ThrottleReason, Throttled};
use crate::clock::{SharedClock, TokioClock};

/// At most `limit` units of one budget per fixed window (SendGrid, GitHub's hourly limit).
///
/// Defaults: budget [`BudgetName::REQUESTS`], clock [`TokioClock`], the first window starting
/// when the limiter is created (until a server snapshot realigns it). A cost above `limit` is
/// refused with [`ThrottleReason::ExceedsCapacity`].
///
/// ```
/// use std::time::Duration;
/// use ratewise_core::limit::{Cost, FixedWindowLimiter, Limiter};
///
/// let sendgrid = FixedWindowLimiter::new(500, Duration::from_secs(60));
/// let _permit = sendgrid.try_acquire(&Cost::request()).unwrap();
/// ```
#[derive(Debug)]
pub struct FixedWindowLimiter {
    budget: BudgetName,
    clock: SharedClock,
    window: Duration,
    state: Mutex<Windows>,
}

/// The current window and the future windows holding reservations.
#[derive(Debug)]
struct Windows {
    limit: u64,
    /// When the current window (`used[0]`) ends.
    current_end: Instant,
    /// The sequence number of the current window.
    first_seq: u64,
    /// Units spent or reserved per window, from the current one on. Never empty.
    used: VecDeque<u64>,
    /// Until when the server reported the budget exhausted.
    exhausted_until: Option<Instant>,
}

impl Windows {
    fn new(limit: u64, now: Instant, window: Duration) -> Self {
        Self {
            limit,
            current_end: now.checked_add(window).unwrap_or(now),
            first_seq: 0,
            used: VecDeque::from([0]),
            exhausted_until: None,
        }
    }

    /// Moves the current window forward to the one containing `now`.
    fn advance(&mut self, now: Instant, window: Duration) {
        if now < self.current_end {
            return;
        }
        let window_nanos = nanos(window).max(1);
        let behind = nanos(now.saturating_duration_since(self.current_end));
        let passed = (behind / window_nanos).saturating_add(1);
        for _ in 0..passed.min(u64::try_from(self.used.len()).unwrap_or(u64::MAX)) {
            self.used.pop_front();
        }
        if self.used.is_empty() {
            self.used.push_back(0);
        }
        self.first_seq = self.first_seq.saturating_add(passed);
        let shift = Duration::from_nanos(passed.saturating_mul(window_nanos));
        self.current_end = self.current_end.checked_add(shift).unwrap_or(now);
    }

    /// When window `index` (0 = current) starts.
    fn start_of(&self, index: usize, now: Instant, window: Duration) -> Option<Instant> {
        if index == 0 {
            return Some(now);
        }
        let later = u32::try_from(index.saturating_sub(1)).ok()?;
        self.current_end.checked_add(window.checked_mul(later)?)
    }

    /// Units spent in the current window.
    fn used_now(&self) -> u64 {
        self.used.front().copied().unwrap_or(0)
    }

    fn set_used_now(&mut self, used: u64) {
        match self.used.front_mut() {
            Some(slot) => *slot = used,
            None => self.used.push_back(used),
        }
    }

    /// Drops empty trailing windows so newcomers are not placed later than needed.
    fn trim(&mut self) {
        while self.used.len() > 1 && self.used.back() == Some(&0) {
            self.used.pop_back();
        }
    }
}

impl FixedWindowLimiter {
    /// A limiter admitting `limit` units per `window` (a zero window counts as one nanosecond).
    pub fn new(limit: u64, window: Duration) -> Self {
        let clock: SharedClock = TokioClock::shared();
        let window = window.max(Duration::from_nanos(1));
        let state = Mutex::new(Windows::new(limit, clock.now(), window));
        Self {
            budget: BudgetName::REQUESTS,
            clock,
            window,
            state,
        }
    }

    /// The budget this limiter spends (default [`BudgetName::REQUESTS`]).
    pub fn budget(mut self, budget: impl Into<BudgetName>) -> Self {
        self.budget = budget.into();
        self
    }

    /// The clock this limiter reads (default [`TokioClock`]). Starts a fresh window.
    pub fn clock(mut self, clock: SharedClock) -> Self {
        let limit = self.limit();
        self.state = Mutex::new(Windows::new(limit, clock.now(), self.window));
        self.clock = clock;
        self
    }

    /// Changes the limit per window while running; reservations already made are kept.
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

    /// Units still available in the current window.
    pub fn available(&self) -> u64 {
        let now = self.clock.now();
        let mut state = self.lock();
        state.advance(now, self.window);
        state.limit.saturating_sub(state.used_now())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Windows> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reserves `amount` in the earliest window FIFO allows, if it starts within `max_wait`.
    /// Returns (the window's sequence number, when it starts).
    fn reserve(
        &self,
        amount: u64,
        now: Instant,
        max_wait: Duration,
    ) -> Result<(u64, Instant), Throttled> {
        let mut state = self.lock();
        state.advance(now, self.window);
        if amount > state.limit {
            return Err(Throttled::new(
                self.budget.clone(),
                ThrottleReason::ExceedsCapacity,
                None,
            ));
        }
        let last = state.used.len().saturating_sub(1);
        let fits_last = state
            .used
            .get(last)
            .is_some_and(|used| used.saturating_add(amount) <= state.limit);
        let index = if fits_last { last } else { state.used.len() };
        let start = state.start_of(index, now, self.window);
        let wait = start.map(|s| s.saturating_duration_since(now));
        let start = match (start, wait) {
            (Some(start), Some(wait)) if wait <= max_wait => start,
            _ => {
                let exhausted = state.exhausted_until.is_some_and(|t| t > now);
                let reason = if exhausted {
                    ThrottleReason::QuotaExhausted
                } else {
                    ThrottleReason::WouldWait
                };
                return Err(Throttled::new(self.budget.clone(), reason, start));
            }
        };
        match state.used.get_mut(index) {
            Some(used) => *used = used.saturating_add(amount),
            None => state.used.push_back(amount),
        }
        let seq = state
            .first_seq
            .saturating_add(u64::try_from(index).unwrap_or(u64::MAX));
        Ok((seq, start))
    }

    /// Gives back `amount` reserved in window `seq` (nothing if that window is over).
    fn give_back(&self, seq: u64, amount: u64) {
        let now = self.clock.now();
        let mut state = self.lock();
        state.advance(now, self.window);
        let Some(offset) = seq.checked_sub(state.first_seq) else {
            return;
        };
        let index = usize::try_from(offset).unwrap_or(usize::MAX);
        if let Some(used) = state.used.get_mut(index) {
            *used = used.saturating_sub(amount);
        }
        state.trim();
    }
}

#[async_trait]
impl Limiter for FixedWindowLimiter {
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
        let (seq, start) = self.reserve(amount, now, max_wait)?;
        if start <= now {
            return Ok(Permit::empty());
        }
        wait_reserved(start, || self.give_back(seq, amount)).await;
        Ok(Permit::empty())
    }

    /// Mirrors the server's window: adopts its limit, its count and its reset.
    ///
    /// Only snapshots of this limiter's budget count. `limit`, when present, becomes the limit
    /// per window. When no caller is waiting for a later window and `reset_at` is in the future,
    /// the current window is realigned to end at `reset_at`. The current window's count is
    /// raised (never lowered) to `limit − remaining`; with `remaining = 0` nothing more is
    /// admitted before the window ends, and refusals until `reset_at` say
    /// [`ThrottleReason::QuotaExhausted`]. Callers already waiting keep their windows.
    fn observe(&self, snapshot: &QuotaSnapshot) {
        if snapshot.budget != self.budget {
            return;
        }
        let now = self.clock.now();
        let mut state = self.lock();
        state.advance(now, self.window);
        if let Some(limit) = snapshot.limit {
            state.limit = limit;
        }
        if snapshot.reset_at > now && state.used.len() <= 1 {
            state.current_end = snapshot.reset_at;
        }
        let server_used = state.limit.saturating_sub(snapshot.remaining);
        let used = state.used_now().max(server_used);
        state.set_used_now(used);
        if snapshot.remaining == 0 && snapshot.reset_at > now {
            state.exhausted_until = Some(snapshot.reset_at);
        }
    }

    /// Refunds or charges the difference in the current window.
    ///
    /// Reconcile within the window the call was admitted in: the window does not know which
    /// window an older call was counted in, so a refund landing in a later window frees room
    /// there. A charge is taken without an admission check.
    fn reconcile(&self, reserved: &Cost, actual: &Cost) {
        let reserved = reserved.amount(&self.budget);
        let actual = actual.amount(&self.budget);
        if reserved == actual {
            return;
        }
        let now = self.clock.now();
        let mut state = self.lock();
        state.advance(now, self.window);
        let used = state.used_now();
        let used = if actual > reserved {
            used.saturating_add(actual.saturating_sub(reserved))
        } else {
            used.saturating_sub(reserved.saturating_sub(actual))
        };
        state.set_used_now(used);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::{Clock, ManualClock};

    fn manual(limit: u64, window: Duration) -> (ManualClock, FixedWindowLimiter) {
        let clock = ManualClock::new();
        let limiter = FixedWindowLimiter::new(limit, window).clock(clock.shared());
        (clock, limiter)
    }

    #[test]
    fn a_window_admits_its_limit_then_refuses_until_the_next_window() {
        let (clock, limiter) = manual(3, Duration::from_secs(10));
        clock.advance(Duration::from_secs(4));
        for _ in 0..3 {
            let _ = limiter.try_acquire(&Cost::request()).unwrap();
        }
        let err = limiter.try_acquire(&Cost::request()).unwrap_err();
        assert_eq!(err.reason, ThrottleReason::WouldWait);
        assert_eq!(err.retry_after(clock.now()), Some(Duration::from_secs(6)));
        clock.advance(Duration::from_secs(6));
        assert_eq!(limiter.available(), 3);
    }

    #[test]
    fn costs_above_one_and_above_the_limit() {
        let (_clock, limiter) = manual(10, Duration::from_secs(1));
        let _ = limiter
            .try_acquire(&Cost::none().with("requests", 8))
            .unwrap();
        assert!(
            limiter
                .try_acquire(&Cost::none().with("requests", 3))
                .is_err()
        );
        let err = limiter
            .try_acquire(&Cost::none().with("requests", 11))
            .unwrap_err();
        assert_eq!(err.reason, ThrottleReason::ExceedsCapacity);
        assert_eq!(limiter.available(), 2);
    }

    #[test]
    fn set_limit_mid_window_applies_at_once() {
        let (_clock, limiter) = manual(2, Duration::from_secs(1));
        let _ = limiter.try_acquire(&Cost::request()).unwrap();
        limiter.set_limit(5);
        assert_eq!(limiter.available(), 4);
    }

    #[test]
    fn observe_adopts_the_servers_limit_count_and_reset() {
        let (clock, limiter) = manual(100, Duration::from_secs(60));
        let now = clock.now();
        let reset = now + Duration::from_secs(15);
        let snapshot = QuotaSnapshot::new(BudgetName::REQUESTS, 0, reset, now).with_limit(500);
        limiter.observe(&snapshot);
        assert_eq!(limiter.limit(), 500);
        let err = limiter.try_acquire(&Cost::request()).unwrap_err();
        assert_eq!(err.reason, ThrottleReason::QuotaExhausted);
        assert_eq!(err.until, Some(reset));
        clock.advance(Duration::from_secs(15));
        assert_eq!(
            limiter.available(),
            500,
            "the full budget is back at the server's reset"
        );
    }

    #[test]
    fn reconcile_refunds_and_charges_the_current_window() {
        let (_clock, limiter) = manual(10, Duration::from_secs(1));
        let cost = Cost::none().with("requests", 6);
        let _ = limiter.try_acquire(&cost).unwrap();
        limiter.reconcile(&cost, &Cost::none());
        assert_eq!(limiter.available(), 10);
        limiter.reconcile(&Cost::none(), &cost);
        assert_eq!(limiter.available(), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn acquire_waits_for_the_next_window_within_max_wait() {
        let limiter = FixedWindowLimiter::new(1, Duration::from_secs(10));
        let start = TokioClock::new().now();
        let _ = limiter
            .acquire(&Cost::request(), Duration::ZERO)
            .await
            .unwrap();
        let err = limiter
            .acquire(&Cost::request(), Duration::from_secs(9))
            .await
            .unwrap_err();
        assert_eq!(err.reason, ThrottleReason::WouldWait);
        assert_eq!((TokioClock::new().now() - start), Duration::ZERO);
        let _ = limiter
            .acquire(&Cost::request(), Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!((TokioClock::new().now() - start), Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_waiter_frees_its_reservation() {
        let limiter = Arc::new(FixedWindowLimiter::new(2, Duration::from_secs(10)));
        let _ = limiter
            .try_acquire(&Cost::none().with("requests", 2))
            .unwrap();
        let cancelled = tokio::time::timeout(
            Duration::from_secs(1),
            limiter.acquire(&Cost::none().with("requests", 2), Duration::from_secs(60)),
        )
        .await;
        assert!(cancelled.is_err());
        tokio::time::sleep(Duration::from_secs(9)).await;
        assert_eq!(limiter.available(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_large_waiter_is_not_overtaken_by_small_ones() {
        let limiter = Arc::new(FixedWindowLimiter::new(4, Duration::from_secs(1)));
        let _ = limiter
            .try_acquire(&Cost::none().with("requests", 2))
            .unwrap();
        let big = {
            let limiter = limiter.clone();
            tokio::spawn(async move {
                let cost = Cost::none().with("requests", 4);
                let _ = limiter
                    .acquire(&cost, Duration::from_secs(5))
                    .await
                    .unwrap();
                TokioClock::new().now()
            })
        };
        tokio::task::yield_now().await;
        // Room remains in the current window, but the big waiter arrived first.
        assert!(limiter.try_acquire(&Cost::request()).is_err());
        let _ = limiter
            .acquire(&Cost::request(), Duration::from_secs(5))
            .await
            .unwrap();
        let small_at = TokioClock::new().now();
        assert!(big.await.unwrap() <= small_at);
    }
}
