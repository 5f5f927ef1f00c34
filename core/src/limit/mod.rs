//! Client-side rate limiters: pace calls so the server never has to say 429.
//!
//! Every limiter implements [`Limiter`]: `acquire` waits for capacity (at most the caller's
//! `max_wait`, else it fails at once with [`Throttled`] saying when capacity returns, so an
//! interactive caller fails fast and a batch caller waits), `try_acquire` never waits, `observe`
//! absorbs the quota a server reports in its headers, and `reconcile` corrects a reservation once
//! the real cost is known (OpenAI tokens).
//!
//! The returned [`Permit`] must be held while the call is in flight: limiters that bound
//! concurrency release their slot when it is dropped, including when the caller's future is
//! cancelled.

use std::fmt;
use std::time::{Duration, Instant};

use async_trait::async_trait;

pub use crate::quota::{BudgetName, Cost, QuotaSnapshot};
use shared_now::SharedNow;

/// Why a limiter refused to admit a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ThrottleReason {
    /// Capacity returns at `until`, later than the caller was willing to wait.
    WouldWait,
    /// The server reported this budget exhausted until `until` (`remaining: 0`).
    QuotaExhausted,
    /// The cost is larger than the budget can ever admit at once; waiting will not help.
    ExceedsCapacity,
    /// The caller waited `max_wait` (a concurrency slot did not free up in time).
    TimedOut,
    /// The limiter's shared state (Redis) could not be reached, and the limiter is configured to
    /// refuse rather than guess (fail closed). Nothing was spent; retrying later may succeed.
    Unavailable,
    /// The limiter keeps its state elsewhere (Redis) and cannot decide without a round trip:
    /// `try_acquire` answers this, and [`Limiter::acquire`] (even with a zero `max_wait`) asks.
    /// [`CompositeLimiter`] forwards such members to `acquire`.
    Remote,
}

/// A limiter refused to admit a call: which budget, why, and when capacity returns.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.describe())]
#[non_exhaustive]
pub struct Throttled {
    /// The budget that refused.
    pub budget: BudgetName,
    /// Why it refused.
    pub reason: ThrottleReason,
    /// When the call could be admitted, if that is known.
    pub until: Option<Instant>,
}

impl Throttled {
    /// A refusal of `budget` for `reason`, with capacity back at `until` if known.
    pub fn new(budget: BudgetName, reason: ThrottleReason, until: Option<Instant>) -> Self {
        Self {
            budget,
            reason,
            until,
        }
    }

    /// How long from `now` until capacity returns (`None` if unknown or never).
    pub fn retry_after(&self, now: Instant) -> Option<Duration> {
        self.until.map(|t| t.saturating_duration_since(now))
    }

    fn describe(&self) -> String {
        let what = match self.reason {
            ThrottleReason::WouldWait => "capacity returns later than the caller will wait",
            ThrottleReason::QuotaExhausted => "the server reported this budget exhausted",
            ThrottleReason::ExceedsCapacity => {
                "the cost exceeds what this budget can ever admit at once"
            }
            ThrottleReason::TimedOut => "no capacity freed up within the caller's wait",
            ThrottleReason::Unavailable => "the shared limiter state (Redis) is unreachable",
            ThrottleReason::Remote => "the limiter decides remotely: call `acquire`",
        };
        format!("throttled on budget `{}`: {what}", self.budget)
    }
}

/// What a response said about load, for limiters that adapt to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Feedback {
    /// The server accepted the call (any response that is not a throttle signal).
    Accepted,
    /// The server throttled the call (a 429, or the provider's equivalent) without saying when
    /// to come back: a load signal a client has to learn from.
    Throttled,
    /// The server throttled the call and said when to come back (`Retry-After`, or an exhausted
    /// quota's reset): adaptive rate limiters slow down as for [`Feedback::Throttled`]; limiters
    /// that learn an unannounced limit ([`LearnedConcurrencyLimiter`]) leave it to the hint.
    ThrottledWithHint,
}

/// A client-side limiter: admits calls by their [`Cost`], learns from server snapshots.
///
/// Object-safe: clients store `Arc<dyn Limiter>`.
#[async_trait]
pub trait Limiter: Send + Sync + fmt::Debug {
    /// Admits `cost` now, or refuses at once saying when capacity returns.
    fn try_acquire(&self, cost: &Cost) -> Result<Permit, Throttled>;

    /// Admits `cost`, waiting at most `max_wait`. When the wait is predictable and longer than
    /// `max_wait`, it refuses at once instead of sleeping first. Waiting callers are served in
    /// arrival order. Cancelling the returned future gives back anything it had reserved.
    async fn acquire(&self, cost: &Cost, max_wait: Duration) -> Result<Permit, Throttled>;

    /// [`try_acquire`](Limiter::try_acquire) at a clock reading the caller (a
    /// [`CompositeLimiter`]) took for all its members, so one admission reads the clock once.
    ///
    /// Crate-internal: the reading's type cannot be named outside ratewise-core, so this can be
    /// neither called nor overridden there. Default: ignores `now` and calls `try_acquire`.
    #[doc(hidden)]
    #[inline]
    fn try_acquire_at(&self, cost: &Cost, now: &SharedNow<'_>) -> Result<Permit, Throttled> {
        let _ = now;
        self.try_acquire(cost)
    }

    /// Absorbs a budget's state as reported by the server. Default: ignored.
    fn observe(&self, snapshot: &QuotaSnapshot) {
        let _ = snapshot;
    }

    /// Tells the limiter whether the server throttled a call. Adaptive limiters slow down on
    /// [`Feedback::Throttled`] (and [`Feedback::ThrottledWithHint`]) and recover on
    /// [`Feedback::Accepted`]; others ignore it.
    fn feedback(&self, feedback: Feedback) {
        let _ = feedback;
    }

    /// Corrects an earlier admission of `reserved` now that the call really cost `actual`:
    /// refunds the difference, or charges it. `reconcile(cost, &Cost::none())` is a full refund:
    /// a composite uses it to give back what one budget admitted when another refuses.
    /// Default: nothing to correct.
    fn reconcile(&self, reserved: &Cost, actual: &Cost) {
        let _ = (reserved, actual);
    }
}

mod permit;
pub(crate) mod reservation;
mod rolling;
mod shared_now;
mod turnstile;

pub mod adaptive;
pub mod composite;
pub mod concurrency;
pub mod fixed_window;
pub mod gcra;
pub mod keyed;
pub mod learned_concurrency;
pub mod pacer;
pub mod sliding_window;

pub use adaptive::AdaptiveLimiter;
pub use composite::CompositeLimiter;
pub use concurrency::ConcurrencyLimiter;
pub use fixed_window::FixedWindowLimiter;
pub use gcra::{GcraLimiter, Rate};
pub use keyed::KeyedLimiter;
pub use learned_concurrency::LearnedConcurrencyLimiter;
pub use pacer::QuotaPacer;
pub use permit::Permit;
pub use sliding_window::SlidingWindowLimiter;
