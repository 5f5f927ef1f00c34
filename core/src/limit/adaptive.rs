//! The adaptive limiter: the AWS SDKs' "adaptive retry mode" client rate limiter.
//!
//! Some upstreams throttle without saying how much is left: Twilio answers `429` with error
//! 20429 when an account exceeds its REST concurrency, with no quota headers and no documented
//! `Retry-After`; Stripe answers `429` for rate, concurrency and lock limits and sends no
//! `Retry-After` either (stripe-python dropped its support as unused). Nothing tells a client
//! the limit, so it has to find it: slow down sharply on each throttle, then probe back up.
//! The AWS SDKs solved exactly this with a CUBIC-style controller (TCP CUBIC's window growth,
//! applied to a request rate), and this module reproduces it number for number. GitHub's
//! secondary limits (undisclosed triggers, "no way to check" their status) are the same kind.
//!
//! Feed it [`Feedback::Throttled`] only for load signals: a Stripe `429` with
//! `code: lock_timeout` is contention on one object, and an OpenAI `insufficient_quota` is
//! billing; slowing every call down helps neither.
//!
//! # The algorithm
//!
//! Read from aws-sdk-go-v2 `aws/retry/adaptive_ratelimit.go` (and its test vectors in
//! `adaptive_ratelimit_test.go`) and smithy-rs
//! `rust-runtime/aws-smithy-runtime/src/client/retries/client_rate_limiter.rs`
//! (`cubic_success`, `cubic_throttle`, `test_client_sending_rates`). Times are seconds since
//! the limiter was created.
//!
//! * **Disabled until the first throttle**: calls are admitted freely; the controller still
//!   measures and computes so it starts from sensible numbers.
//! * **Measured send rate**: every feedback counts one call into half-second buckets
//!   (`floor(2t)/2`); when a new bucket starts, `rate = count / (bucket − last_bucket)` is
//!   smoothed into `measured = 0.8·rate + 0.2·measured` ([`SMOOTH`]).
//! * **On a throttle**: `last_max_rate = min(measured, fill_rate)` (just `measured` while still
//!   disabled), the throttle time is noted, the new rate is `last_max_rate × 0.7`
//!   ([`cubic_throttle`], [`BETA`]), and the bucket is enabled.
//! * **On success**: the rate grows along the cubic `0.4·(t − t_throttle − K)³ + last_max_rate`
//!   with `K = ∛(last_max_rate·(1 − 0.7)/0.4)` ([`cubic_success`], [`time_window`],
//!   [`SCALE_CONSTANT`]): fast recovery right after the cut, a plateau near the old maximum,
//!   then accelerating probes beyond it.
//! * **Caps**: the new rate is at most `2 × measured` (never race far ahead of what the client
//!   actually sends), the token bucket refills at `max(rate, 0.5)` per second
//!   ([`MIN_FILL_RATE`]) and holds `max(rate, 1)` tokens ([`MIN_CAPACITY`]).
//!
//! Every call spends its cost in the configured budget (default [`BudgetName::REQUESTS`]) from
//! the bucket; a cost larger than the bucket is admitted once the bucket is full and leaves it
//! in debt, as in smithy-rs. The AWS SDKs also charge retries 5 tokens; a [`Cost`] does not say
//! whether it is a retry, so here a retry costs what its cost says. Waiting callers are served
//! in arrival order; nothing is spent before admission, so a cancelled waiter costs nothing.
//! `reconcile` refunds or charges the difference; `observe` is ignored (use a
//! [`QuotaPacer`](super::pacer::QuotaPacer) where the server sends quota headers).
//!
//! ```
//! use std::time::Duration;
//! use ratewise_core::clock::ManualClock;
//! use ratewise_core::limit::{AdaptiveLimiter, Cost, Feedback, Limiter};
//!
//! let clock = ManualClock::new();
//! let limiter = AdaptiveLimiter::new().clock(clock.shared());
//! assert!(limiter.try_acquire(&Cost::request()).is_ok()); // disabled: free
//! limiter.feedback(Feedback::Throttled);                 // a Twilio 20429
//! assert!(limiter.state().is_enabled());
//! assert_eq!(limiter.state().fill_rate(), 0.5);           // nothing measured yet: the floor
//! ```

use std::fmt;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::turnstile::{Admission, Hold, Turnstile, later};
use super::{BudgetName, Cost, Feedback, Limiter, Permit, ThrottleReason, Throttled};
use crate::clock::{SharedClock, TokioClock};

/// How much the rate is cut on a throttle: to 70 % (`BETA = 0.7`).
pub const BETA: f64 = 0.7;
/// How aggressively the rate grows back after a throttle (`SCALE_CONSTANT = 0.4`).
pub const SCALE_CONSTANT: f64 = 0.4;
/// Weight of the newest half-second bucket in the measured send rate (`SMOOTH = 0.8`).
pub const SMOOTH: f64 = 0.8;
/// The slowest the bucket ever refills: 0.5 tokens per second.
pub const MIN_FILL_RATE: f64 = 0.5;
/// The smallest bucket: 1 token, so a single call can always eventually go.
pub const MIN_CAPACITY: f64 = 1.0;

/// The rate after a throttle, given the rate in use when it came: `rate × BETA`.
pub fn cubic_throttle(rate: f64) -> f64 {
    rate * BETA
}

/// The cubic's time to climb back to `last_max_rate`: `K = ∛(last_max_rate·(1 − BETA)/SCALE)`.
pub fn time_window(last_max_rate: f64) -> f64 {
    ((last_max_rate * (1.0 - BETA)) / SCALE_CONSTANT).cbrt()
}

/// The rate at time `t` (seconds) after a throttle at `last_throttle` cut `last_max_rate`:
/// `SCALE·(t − last_throttle − K)³ + last_max_rate`.
pub fn cubic_success(t: f64, last_throttle: f64, last_max_rate: f64) -> f64 {
    let dt = t - last_throttle - time_window(last_max_rate);
    SCALE_CONSTANT * dt.powi(3) + last_max_rate
}

/// The adaptive controller's state, without I/O: every method takes the time in seconds.
///
/// [`AdaptiveLimiter`] drives one with its clock; tests and simulations can drive one directly
/// with explicit timestamps. The math follows aws-sdk-go-v2 `adaptive_ratelimit.go` exactly.
#[derive(Clone, Debug, PartialEq)]
pub struct AdaptiveRate {
    fill_rate: f64,
    max_capacity: f64,
    capacity: f64,
    last_refill: Option<f64>,
    enabled: bool,
    measured_rate: f64,
    last_bucket: f64,
    request_count: u64,
    last_max_rate: f64,
    last_throttle: f64,
}

impl AdaptiveRate {
    /// A disabled controller created at `t` seconds: nothing measured, bucket empty.
    pub fn new(t: f64) -> Self {
        Self {
            fill_rate: MIN_FILL_RATE,
            max_capacity: MIN_CAPACITY,
            capacity: 0.0,
            last_refill: None,
            enabled: false,
            measured_rate: 0.0,
            last_bucket: t.floor(),
            request_count: 0,
            last_max_rate: 0.0,
            last_throttle: t,
        }
    }

    /// Absorbs one response at `t`: a throttle (`throttled`) or anything else.
    pub fn update(&mut self, t: f64, throttled: bool) {
        self.measure(t);
        let calculated = if throttled {
            let rate = if self.enabled {
                self.measured_rate.min(self.fill_rate)
            } else {
                self.measured_rate
            };
            self.last_max_rate = rate;
            self.last_throttle = t;
            self.enabled = true;
            cubic_throttle(rate)
        } else {
            cubic_success(t, self.last_throttle, self.last_max_rate)
        };
        let rate = calculated.min(2.0 * self.measured_rate);
        self.refill(t);
        self.fill_rate = rate.max(MIN_FILL_RATE);
        self.max_capacity = rate.max(MIN_CAPACITY);
        self.capacity = self.capacity.min(self.max_capacity);
    }

    /// Takes `amount` tokens at `t`, or says how many seconds until they are there.
    ///
    /// Free while disabled. An amount above the bucket's size is taken once the bucket is full.
    pub fn try_take(&mut self, t: f64, amount: f64) -> Result<(), f64> {
        if !self.enabled {
            return Ok(());
        }
        self.refill(t);
        let need = amount.min(self.max_capacity);
        if self.capacity + 1e-9 >= need {
            self.capacity -= amount;
            Ok(())
        } else {
            Err((need - self.capacity) / self.fill_rate)
        }
    }

    /// Seconds until `amount` more tokens than `ahead` are there at `t` (0 while disabled).
    pub fn wait_for(&self, t: f64, ahead: f64, amount: f64) -> f64 {
        if !self.enabled {
            return 0.0;
        }
        let elapsed = self.last_refill.map_or(0.0, |last| (t - last).max(0.0));
        let capacity = (self.capacity + elapsed * self.fill_rate).min(self.max_capacity);
        let need = ahead + amount.min(self.max_capacity);
        ((need - capacity) / self.fill_rate).max(0.0)
    }

    /// Gives back `amount` tokens (capped at the bucket's size).
    pub fn refund(&mut self, amount: f64) {
        self.capacity = (self.capacity + amount).min(self.max_capacity);
    }

    /// Spends `amount` more tokens (the bucket may go into debt).
    pub fn charge(&mut self, amount: f64) {
        self.capacity -= amount;
    }

    /// True once a throttle has been seen: only then does the bucket limit anything.
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Tokens added per second.
    pub fn fill_rate(&self) -> f64 {
        self.fill_rate
    }

    /// The bucket's size.
    pub fn max_capacity(&self) -> f64 {
        self.max_capacity
    }

    /// Tokens in the bucket at the last refill (negative when in debt).
    pub fn capacity(&self) -> f64 {
        self.capacity
    }

    /// The smoothed send rate, calls per second.
    pub fn measured_rate(&self) -> f64 {
        self.measured_rate
    }

    /// The rate in use when the last throttle came.
    pub fn last_max_rate(&self) -> f64 {
        self.last_max_rate
    }

    /// When (seconds) the last throttle came.
    pub fn last_throttle(&self) -> f64 {
        self.last_throttle
    }

    fn measure(&mut self, t: f64) {
        let bucket = (t * 2.0).floor() / 2.0;
        self.request_count = self.request_count.saturating_add(1);
        if bucket > self.last_bucket {
            let rate = self.request_count as f64 / (bucket - self.last_bucket);
            self.measured_rate = rate * SMOOTH + self.measured_rate * (1.0 - SMOOTH);
            self.request_count = 0;
            self.last_bucket = bucket;
        }
    }

    fn refill(&mut self, t: f64) {
        if let Some(last) = self.last_refill {
            let added = (t - last).max(0.0) * self.fill_rate;
            self.capacity = (self.capacity + added).min(self.max_capacity);
        }
        self.last_refill = Some(t);
    }
}

/// A limiter that finds an unannounced limit from throttle signals (AWS adaptive retry mode).
///
/// Admits freely until the first [`Feedback::Throttled`], then paces calls with a token bucket
/// whose rate follows [`AdaptiveRate`]. Defaults: budget [`BudgetName::REQUESTS`],
/// [`TokioClock`]; the constants are AWS's ([`BETA`], [`SCALE_CONSTANT`], [`SMOOTH`],
/// [`MIN_FILL_RATE`], [`MIN_CAPACITY`]).
pub struct AdaptiveLimiter {
    budget: BudgetName,
    clock: SharedClock,
    line: Turnstile<AdaptiveState>,
}

impl AdaptiveLimiter {
    /// A disabled limiter over requests, on tokio's clock.
    pub fn new() -> Self {
        let clock = TokioClock::shared();
        let origin = clock.now();
        Self {
            budget: BudgetName::REQUESTS,
            clock,
            line: Turnstile::new(AdaptiveState {
                budget: BudgetName::REQUESTS,
                origin,
                rate: AdaptiveRate::new(0.0),
            }),
        }
    }

    /// Spends costs of `budget` instead of requests. Default [`BudgetName::REQUESTS`].
    pub fn budget(mut self, budget: impl Into<BudgetName>) -> Self {
        self.budget = budget.into();
        let budget = self.budget.clone();
        self.line.inspect(|s| s.budget = budget);
        self
    }

    /// Reads time from `clock` (restarting the controller at its now). Default: [`TokioClock`].
    pub fn clock(mut self, clock: SharedClock) -> Self {
        let origin = clock.now();
        self.clock = clock;
        self.line.inspect(|s| {
            s.origin = origin;
            s.rate = AdaptiveRate::new(0.0);
        });
        self
    }

    /// A copy of the controller's state (rates, bucket), times in seconds since creation.
    pub fn state(&self) -> AdaptiveRate {
        self.line.inspect(|s| s.rate.clone())
    }

    /// How many callers are waiting in line.
    pub fn waiting(&self) -> usize {
        self.line.waiting()
    }

    fn amount(&self, cost: &Cost) -> u64 {
        cost.amount(&self.budget)
    }
}

impl Default for AdaptiveLimiter {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for AdaptiveLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdaptiveLimiter")
            .field("state", &self.line)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Limiter for AdaptiveLimiter {
    fn try_acquire(&self, cost: &Cost) -> Result<Permit, Throttled> {
        let amount = self.amount(cost);
        self.line
            .try_acquire(self.clock.now(), amount)
            .map(|()| Permit::empty())
    }

    async fn acquire(&self, cost: &Cost, max_wait: Duration) -> Result<Permit, Throttled> {
        let amount = self.amount(cost);
        self.line
            .acquire(&*self.clock, amount, max_wait)
            .await
            .map(|()| Permit::empty())
    }

    fn feedback(&self, feedback: Feedback) {
        let now = self.clock.now();
        let throttled = matches!(feedback, Feedback::Throttled | Feedback::ThrottledWithHint);
        self.line.update(|s| {
            let t = s.seconds(now);
            s.rate.update(t, throttled);
        });
    }

    fn reconcile(&self, reserved: &Cost, actual: &Cost) {
        self.line.update(|s| {
            let (reserved, actual) = (reserved.amount(&s.budget), actual.amount(&s.budget));
            if actual < reserved {
                s.rate.refund(reserved.saturating_sub(actual) as f64);
            } else {
                s.rate.charge(actual.saturating_sub(reserved) as f64);
            }
        });
    }
}

/// The limiter's state behind the wait line: the controller and its time origin.
#[derive(Debug)]
struct AdaptiveState {
    budget: BudgetName,
    origin: Instant,
    rate: AdaptiveRate,
}

impl AdaptiveState {
    fn seconds(&self, now: Instant) -> f64 {
        now.saturating_duration_since(self.origin).as_secs_f64()
    }
}

impl Admission for AdaptiveState {
    fn budget(&self) -> &BudgetName {
        &self.budget
    }

    fn try_admit(&mut self, now: Instant, amount: u64) -> Result<(), Hold> {
        let t = self.seconds(now);
        self.rate
            .try_take(t, amount as f64)
            .map_err(|wait| Hold::new(ThrottleReason::WouldWait, Some(later(now, wait + 1e-6))))
    }

    fn predict(&mut self, now: Instant, ahead: u64, amount: u64) -> Hold {
        let wait = self
            .rate
            .wait_for(self.seconds(now), ahead as f64, amount as f64);
        Hold::new(ThrottleReason::WouldWait, Some(later(now, wait)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_controller_is_disabled_and_admits_any_amount() {
        let mut rate = AdaptiveRate::new(0.0);
        assert!(!rate.is_enabled());
        assert_eq!(rate.try_take(0.0, 1_000.0), Ok(()));
        assert_eq!(rate.wait_for(0.0, 50.0, 1.0), 0.0);
    }

    #[test]
    fn a_cost_above_the_bucket_goes_once_the_bucket_is_full_and_leaves_debt() {
        let mut rate = AdaptiveRate::new(0.0);
        rate.update(0.0, true); // enabled, rate 0 → floor 0.5/s, bucket of 1
        assert_eq!(rate.max_capacity(), MIN_CAPACITY);
        let wait = rate.try_take(0.0, 5.0).unwrap_err();
        assert!((wait - 2.0).abs() < 1e-9, "1 token at 0.5/s: {wait}");
        assert_eq!(rate.try_take(2.0, 5.0), Ok(()));
        assert!((rate.capacity() + 4.0).abs() < 1e-9);
    }
}
