//! Concurrency limit: at most `N` calls in flight, released when their permit is dropped.
//!
//! # Which providers it matches
//!
//! Twilio answers 429 with error 20429 when an account "exceeds allowed concurrency" to its REST
//! API; GitHub's secondary limits allow at most 100 concurrent requests (octokit's throttling
//! plugin keeps 10 in flight); Stripe runs a concurrency limiter besides its rate limits. These
//! count requests in flight, not requests per second, so they need a semaphore rather than a
//! rate. Pair it with a rate limiter in a [`CompositeLimiter`](super::CompositeLimiter) for
//! "concurrency + rate" (Twilio concurrency + per-sender MPS, Stripe global rate + concurrency).
//!
//! # How it works
//!
//! A fair [`tokio::sync::Semaphore`]: waiters are served in arrival order, including calls that
//! need several slots. The [`Permit`] holds the slots; dropping it (or cancelling the future that
//! waits for it) returns them. [`ConcurrencyLimiter::set_limit`] resizes it while running:
//! shrinking takes free slots at once and the rest as calls in flight finish.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};

use super::{BudgetName, Cost, Limiter, Permit, ThrottleReason, Throttled};
use crate::clock::{SharedClock, TokioClock};

/// At most `limit` units of one budget in flight at once (Twilio, GitHub's 100 concurrent).
///
/// Defaults: budget [`BudgetName::REQUESTS`] (so a plain request takes one slot), clock
/// [`TokioClock`]. A call that needs more slots than the limit is refused with
/// [`ThrottleReason::ExceedsCapacity`]; one that waits longer than `max_wait` gets
/// [`ThrottleReason::TimedOut`]. The limit is capped at `u32::MAX` slots.
///
/// ```
/// use std::time::Duration;
/// use ratewise_core::limit::{ConcurrencyLimiter, Cost, Limiter};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let twilio = ConcurrencyLimiter::new(100);
/// let permit = twilio.acquire(&Cost::request(), Duration::from_secs(1)).await.unwrap();
/// // ... send the request ...
/// drop(permit); // the slot is free again
/// # }
/// ```
#[derive(Debug)]
pub struct ConcurrencyLimiter {
    budget: BudgetName,
    clock: SharedClock,
    semaphore: Arc<Semaphore>,
    limit: AtomicU64,
    /// Slots to take back as calls in flight finish (after the limit shrank).
    debt: Arc<AtomicU64>,
}

fn clamp_limit(limit: u64) -> u64 {
    let max = u64::try_from(Semaphore::MAX_PERMITS).unwrap_or(u64::MAX);
    limit.min(max).min(u64::from(u32::MAX))
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

impl ConcurrencyLimiter {
    /// A limiter allowing `limit` calls in flight.
    pub fn new(limit: u64) -> Self {
        let limit = clamp_limit(limit);
        Self {
            budget: BudgetName::REQUESTS,
            clock: TokioClock::shared(),
            semaphore: Arc::new(Semaphore::new(to_usize(limit))),
            limit: AtomicU64::new(limit),
            debt: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The budget whose amount says how many slots a call takes (default
    /// [`BudgetName::REQUESTS`]).
    pub fn budget(mut self, budget: impl Into<BudgetName>) -> Self {
        self.budget = budget.into();
        self
    }

    /// The clock this limiter measures `max_wait` on (default [`TokioClock`]).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// The limit on calls in flight.
    pub fn limit(&self) -> u64 {
        self.limit.load(Ordering::Acquire)
    }

    /// Free slots right now.
    pub fn available(&self) -> u64 {
        u64::try_from(self.semaphore.available_permits()).unwrap_or(u64::MAX)
    }

    /// Changes the limit while running. Growing frees slots at once; shrinking takes free slots
    /// at once and the rest as calls in flight finish.
    pub fn set_limit(&self, limit: u64) {
        let limit = clamp_limit(limit);
        let old = self.limit.swap(limit, Ordering::AcqRel);
        if limit > old {
            let grow = limit.saturating_sub(old);
            let mut paid = 0;
            let _ = self
                .debt
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |debt| {
                    paid = debt.min(grow);
                    Some(debt.saturating_sub(paid))
                });
            self.semaphore
                .add_permits(to_usize(grow.saturating_sub(paid)));
        } else if old > limit {
            let shrink = old.saturating_sub(limit);
            let forgotten = self.semaphore.forget_permits(to_usize(shrink));
            let owed = shrink.saturating_sub(u64::try_from(forgotten).unwrap_or(u64::MAX));
            self.debt.fetch_add(owed, Ordering::AcqRel);
        }
    }

    fn permit(&self, slots: OwnedSemaphorePermit) -> Permit {
        let debt = self.debt.clone();
        let semaphore = self.semaphore.clone();
        Permit::on_release(move || {
            let held = u64::try_from(slots.num_permits()).unwrap_or(u64::MAX);
            let mut owed = 0;
            let _ = debt.fetch_update(Ordering::AcqRel, Ordering::Acquire, |d| {
                owed = d.min(held);
                Some(d.saturating_sub(owed))
            });
            drop(slots);
            if owed > 0 {
                let forgotten = semaphore.forget_permits(to_usize(owed));
                let still = owed.saturating_sub(u64::try_from(forgotten).unwrap_or(u64::MAX));
                debt.fetch_add(still, Ordering::AcqRel);
            }
        })
    }

    fn slots(&self, cost: &Cost) -> Result<Option<u32>, Throttled> {
        let amount = cost.amount(&self.budget);
        if amount == 0 {
            return Ok(None);
        }
        if amount > self.limit() {
            return Err(Throttled::new(
                self.budget.clone(),
                ThrottleReason::ExceedsCapacity,
                None,
            ));
        }
        match u32::try_from(amount) {
            Ok(n) => Ok(Some(n)),
            Err(_) => Err(Throttled::new(
                self.budget.clone(),
                ThrottleReason::ExceedsCapacity,
                None,
            )),
        }
    }
}

#[async_trait]
impl Limiter for ConcurrencyLimiter {
    fn try_acquire(&self, cost: &Cost) -> Result<Permit, Throttled> {
        let Some(n) = self.slots(cost)? else {
            return Ok(Permit::empty());
        };
        match self.semaphore.clone().try_acquire_many_owned(n) {
            Ok(slots) => Ok(self.permit(slots)),
            Err(TryAcquireError::NoPermits | TryAcquireError::Closed) => Err(Throttled::new(
                self.budget.clone(),
                ThrottleReason::WouldWait,
                None,
            )),
        }
    }

    async fn acquire(&self, cost: &Cost, max_wait: Duration) -> Result<Permit, Throttled> {
        let Some(n) = self.slots(cost)? else {
            return Ok(Permit::empty());
        };
        let timed_out = || Throttled::new(self.budget.clone(), ThrottleReason::TimedOut, None);
        let wait = self.semaphore.clone().acquire_many_owned(n);
        let slots = match self.clock.now().checked_add(max_wait) {
            Some(deadline) => {
                let deadline = tokio::time::Instant::from_std(deadline);
                match tokio::time::timeout_at(deadline, wait).await {
                    Ok(slots) => slots,
                    Err(_) => return Err(timed_out()),
                }
            }
            None => wait.await,
        };
        slots
            .map(|slots| self.permit(slots))
            .map_err(|_| timed_out())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::clock::Clock;

    #[tokio::test(start_paused = true)]
    async fn at_most_the_limit_is_in_flight_and_dropping_a_permit_frees_a_slot() {
        let limiter = ConcurrencyLimiter::new(2);
        let a = limiter.try_acquire(&Cost::request()).unwrap();
        let _b = limiter.try_acquire(&Cost::request()).unwrap();
        let err = limiter.try_acquire(&Cost::request()).unwrap_err();
        assert_eq!(err.reason, ThrottleReason::WouldWait);
        drop(a);
        let _c = limiter.try_acquire(&Cost::request()).unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn acquire_times_out_after_max_wait() {
        let limiter = ConcurrencyLimiter::new(1);
        let _held = limiter.try_acquire(&Cost::request()).unwrap();
        let start = TokioClock::new().now();
        let err = limiter
            .acquire(&Cost::request(), Duration::from_millis(250))
            .await
            .unwrap_err();
        assert_eq!(err.reason, ThrottleReason::TimedOut);
        assert_eq!(
            (TokioClock::new().now() - start),
            Duration::from_millis(250)
        );
        assert_eq!(limiter.available(), 0, "the timed-out waiter holds nothing");
    }

    #[tokio::test(start_paused = true)]
    async fn a_cost_above_one_takes_that_many_slots_and_above_the_limit_is_refused() {
        let limiter = ConcurrencyLimiter::new(4);
        let permit = limiter
            .try_acquire(&Cost::none().with("requests", 3))
            .unwrap();
        assert_eq!(limiter.available(), 1);
        let err = limiter
            .try_acquire(&Cost::none().with("requests", 5))
            .unwrap_err();
        assert_eq!(err.reason, ThrottleReason::ExceedsCapacity);
        drop(permit);
        assert_eq!(limiter.available(), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn set_limit_grows_at_once_and_shrinks_as_calls_finish() {
        let limiter = ConcurrencyLimiter::new(3);
        let a = limiter.try_acquire(&Cost::request()).unwrap();
        let b = limiter.try_acquire(&Cost::request()).unwrap();
        limiter.set_limit(1);
        assert_eq!(limiter.available(), 0);
        drop(a);
        assert_eq!(
            limiter.available(),
            0,
            "one call still in flight, limit is 1"
        );
        drop(b);
        assert_eq!(limiter.available(), 1);
        limiter.set_limit(4);
        assert_eq!(limiter.available(), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_waiter_and_a_cancelled_holder_both_free_their_slots() {
        let limiter = Arc::new(ConcurrencyLimiter::new(1));
        let held = limiter.try_acquire(&Cost::request()).unwrap();
        let waiter = tokio::time::timeout(
            Duration::from_millis(10),
            limiter.acquire(&Cost::request(), Duration::from_secs(60)),
        )
        .await;
        assert!(waiter.is_err());
        drop(held);
        let holder = {
            let limiter = limiter.clone();
            tokio::spawn(async move {
                let _permit = limiter.acquire(&Cost::request(), Duration::ZERO).await;
                tokio::time::sleep(Duration::from_secs(3600)).await;
            })
        };
        tokio::task::yield_now().await;
        assert_eq!(limiter.available(), 0);
        holder.abort();
        let _ = holder.await;
        assert_eq!(limiter.available(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn waiters_get_slots_in_arrival_order() {
        let limiter = Arc::new(ConcurrencyLimiter::new(2));
        let held = limiter
            .try_acquire(&Cost::none().with("requests", 2))
            .unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for (i, slots) in [2_u64, 1, 1].into_iter().enumerate() {
            let (limiter, order) = (limiter.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let cost = Cost::none().with("requests", slots);
                let permit = limiter
                    .acquire(&cost, Duration::from_secs(60))
                    .await
                    .unwrap();
                order.lock().unwrap().push(i);
                tokio::time::sleep(Duration::from_millis(10)).await;
                drop(permit);
            }));
            tokio::task::yield_now().await;
        }
        drop(held);
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), vec![0, 1, 2]);
    }
}
