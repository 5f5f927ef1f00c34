//! A concurrency limit learned from throttles: for APIs that cap calls in flight and say nothing.
//!
//! Twilio answers `429` (error 20429) when an account has too many requests in flight, with no
//! quota headers and no `Retry-After`. A rate limiter cannot find such a limit (the capacity in
//! calls per second depends on the latency), and spreading retries with backoff leaves most
//! callers throttled. The signal that is there: a throttle sent while `n` other calls were in
//! flight says the server holds at most `n` at once. So this limiter counts calls in flight and
//! learns a ceiling, the way TCP learns a congestion window:
//!
//! * **Slow start.** Until the first throttle, the ceiling starts at
//!   [`LearnedConcurrencyLimiter::INITIAL`] and grows by one per accepted call that used at least
//!   half of it (doubling every round trip while the callers fill it), so 1,000 callers starting
//!   together do not all land on a server that holds 20.
//! * **On a throttle without a hint** ([`Feedback::Throttled`]), the ceiling drops to the number of other calls
//!   that were in flight when the throttled call was admitted (at least one), and growth slows.
//! * **Probing.** After a throttle the ceiling grows by one per
//!   [`LearnedConcurrencyLimiter::PROBE_ROUNDS`] × ceiling accepted calls that used it: one
//!   throttled probe every few dozen round trips, so a raised limit is found and the probes cost
//!   a small share of requests.
//!
//! A throttle that came with a wait ([`Feedback::ThrottledWithHint`]: `Retry-After`, an
//! exhausted quota's reset) is a rate or quota limit the hint already handles; it teaches
//! nothing about calls in flight and leaves the ceiling alone.
//!
//! Calls wait in arrival order; a cancelled waiter gives back its place. The permit holds the
//! slot until it is dropped, and the pipeline drops it before it reports the response, so the
//! feedback is matched with the call it is about.
//!
//! ```
//! use std::time::Duration;
//! use ratewise_core::limit::{Cost, Feedback, LearnedConcurrencyLimiter, Limiter};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let limiter = LearnedConcurrencyLimiter::new();
//! let held: Vec<_> = (0..5).map(|_| limiter.try_acquire(&Cost::request()).unwrap()).collect();
//! let last = limiter.try_acquire(&Cost::request()).unwrap(); // 5 others in flight
//! drop(last);
//! limiter.feedback(Feedback::Throttled); // the server held no more than those 5
//! assert_eq!(limiter.ceiling(), 5);
//! assert!(limiter.try_acquire(&Cost::request()).is_err());
//! drop(held);
//! # }
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::turnstile::{Admission, Hold, Turnstile};
use super::{BudgetName, Cost, Feedback, Limiter, Permit, ThrottleReason, Throttled};
use crate::clock::{SharedClock, TokioClock};

/// At most a learned number of calls in flight: grows while the server accepts, drops to what
/// the server held when it throttles (see the [module docs](self)).
///
/// Defaults: budget [`BudgetName::REQUESTS`] (a plain request takes one slot), ceiling
/// [`Self::INITIAL`], clock [`TokioClock`].
pub struct LearnedConcurrencyLimiter {
    budget: BudgetName,
    clock: SharedClock,
    line: Arc<Turnstile<State>>,
}

impl LearnedConcurrencyLimiter {
    /// The ceiling before anything is learned: 10 calls in flight (TCP's initial window).
    pub const INITIAL: u64 = 10;
    /// After a throttle, the ceiling grows by one per this many rounds of full use.
    pub const PROBE_ROUNDS: u64 = 50;

    /// A limiter in slow start from [`Self::INITIAL`].
    pub fn new() -> Self {
        let budget = BudgetName::REQUESTS;
        Self {
            clock: TokioClock::shared(),
            line: Arc::new(Turnstile::new(State {
                budget: budget.clone(),
                ceiling: Self::INITIAL,
                in_flight: 0,
                throttled: false,
                grown: 0,
                released: None,
            })),
            budget,
        }
    }

    /// Reads time from `clock` (for waits) instead of tokio's. Default: [`TokioClock`].
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// The current ceiling: calls admitted at once.
    pub fn ceiling(&self) -> u64 {
        self.line.inspect(|s| s.ceiling)
    }

    /// Calls in flight now.
    pub fn in_flight(&self) -> u64 {
        self.line.inspect(|s| s.in_flight)
    }

    /// True once a throttle has set the ceiling (slow start is over).
    pub fn has_learned(&self) -> bool {
        self.line.inspect(|s| s.throttled)
    }

    fn permit(&self, amount: u64) -> Permit {
        // Admission just counted this call: the others in flight are what it was sent beside.
        let others = self.line.inspect(|s| s.in_flight.saturating_sub(amount));
        let line = Arc::clone(&self.line);
        Permit::on_release(move || {
            line.update(|s| {
                s.in_flight = s.in_flight.saturating_sub(amount);
                s.released = Some(others);
            });
        })
    }
}

impl Default for LearnedConcurrencyLimiter {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for LearnedConcurrencyLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LearnedConcurrencyLimiter")
            .field("state", &self.line)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Limiter for LearnedConcurrencyLimiter {
    fn try_acquire(&self, cost: &Cost) -> Result<Permit, Throttled> {
        let amount = cost.amount(&self.budget);
        if amount == 0 {
            return Ok(Permit::empty());
        }
        self.line.try_acquire(self.clock.now(), amount)?;
        Ok(self.permit(amount))
    }

    async fn acquire(&self, cost: &Cost, max_wait: Duration) -> Result<Permit, Throttled> {
        let amount = cost.amount(&self.budget);
        if amount == 0 {
            return Ok(Permit::empty());
        }
        self.line.acquire(&*self.clock, amount, max_wait).await?;
        Ok(self.permit(amount))
    }

    fn feedback(&self, feedback: Feedback) {
        self.line.update(|s| {
            // The call this is about released its slot just before: what it was sent beside.
            let Some(others) = s.released.take() else {
                return;
            };
            if matches!(feedback, Feedback::ThrottledWithHint) {
                // The server said when: a rate or quota limit, not a count in flight.
                return;
            }
            if matches!(feedback, Feedback::Throttled) {
                s.ceiling = s.ceiling.min(others.max(1));
                s.throttled = true;
                s.grown = 0;
                return;
            }
            // Grow only while the ceiling is what holds the callers back.
            if others.saturating_add(1).saturating_mul(2) < s.ceiling {
                return;
            }
            if !s.throttled {
                s.ceiling = s.ceiling.saturating_add(1);
                return;
            }
            s.grown = s.grown.saturating_add(1);
            if s.grown >= s.ceiling.saturating_mul(Self::PROBE_ROUNDS) {
                s.ceiling = s.ceiling.saturating_add(1);
                s.grown = 0;
            }
        });
    }
}

/// The count in flight and the learned ceiling.
#[derive(Debug)]
struct State {
    budget: BudgetName,
    ceiling: u64,
    in_flight: u64,
    /// A throttle has been seen: probing, not slow start.
    throttled: bool,
    /// Accepted full-use calls since the ceiling last grew (after a throttle).
    grown: u64,
    /// Calls that were in flight beside the call whose slot was released last.
    released: Option<u64>,
}

impl Admission for State {
    fn budget(&self) -> &BudgetName {
        &self.budget
    }

    fn try_admit(&mut self, _now: Instant, amount: u64) -> Result<(), Hold> {
        // A call larger than the ceiling goes alone rather than never.
        let fits = self.in_flight.saturating_add(amount) <= self.ceiling || self.in_flight == 0;
        if fits {
            self.in_flight = self.in_flight.saturating_add(amount);
            Ok(())
        } else {
            Err(Hold::new(ThrottleReason::WouldWait, None))
        }
    }

    fn predict(&mut self, _now: Instant, _ahead: u64, _amount: u64) -> Hold {
        // A slot frees when a call in flight finishes: not predictable.
        Hold::new(ThrottleReason::WouldWait, None)
    }
}
