//! [`RedisGcraLimiter`]: the token bucket of [`GcraLimiter`](crate::limit::GcraLimiter), in Redis.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;

use super::{RedisConnection, RedisError, scripts, spawn_detached};
use crate::clock::{SharedClock, TokioClock};
use crate::limit::reservation::wait_reserved;
use crate::limit::{BudgetName, Cost, Limiter, Permit, Rate, ThrottleReason, Throttled};

/// What a Redis-backed limiter does when Redis cannot be reached.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub enum FailurePolicy {
    /// Refuse with [`ThrottleReason::Unavailable`] (the default): never exceed the shared budget.
    #[default]
    Closed,
    /// Admit through this local limiter instead: keep working, at the local limiter's pace.
    Open(Arc<dyn Limiter>),
}

/// A GCRA token bucket whose state lives in Redis, shared by every process using the same key.
///
/// The key is `{prefix}gcra:{upstream}:{credential}:{budget}`: one bucket per upstream,
/// credential and budget, so two processes configured alike share a budget with no other
/// coordination. `credential` is a label (an account id, a key's name), never the key itself.
/// Defaults: credential `default`, budget [`BudgetName::REQUESTS`], burst = the rate's amount,
/// fail closed, [`TokioClock`] (used only to turn waits into deadlines).
///
/// ```no_run
/// use std::sync::Arc;
/// use std::time::Duration;
/// use ratewise_core::limit::{Cost, Limiter, Rate};
/// use ratewise_core::redis::{RedisConfig, RedisConnection, RedisGcraLimiter};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let redis = RedisConnection::new(&RedisConfig::from_env()).unwrap();
/// let limiter = RedisGcraLimiter::new(redis, "stripe", Rate::per_second(25))
///     .credential("acct_main")
///     .burst(5);
/// let _permit = limiter.acquire(&Cost::request(), Duration::from_secs(2)).await.unwrap();
/// # }
/// ```
///
/// # One round trip per acquire
///
/// The whole decision is one Lua script (see `scripts.rs`): read the theoretical arrival time
/// (TAT), compare with Redis's `TIME`, and either reserve the caller's slot (advance the TAT) or
/// refuse. The script returns how long the caller must wait for its reserved slot; the caller
/// sleeps that long on its own timer (tokio, so virtual time works in tests) and is admitted
/// without asking again. A wait longer than `max_wait` reserves nothing and is refused at once
/// with [`ThrottleReason::WouldWait`] and `until`. The semantics are those of the local GCRA:
/// admitted at `now` when `max(TAT, now) + n·T − burst·T ≤ now`, FIFO by reservation.
///
/// Time is Redis's clock (`TIME` inside the script), so processes on hosts whose clocks disagree
/// still share one schedule; the wait is a duration, turned into a local deadline on arrival
/// (the reply's network latency makes a caller wait that much longer: the limiter errs slow).
/// The emission interval is kept in whole microseconds, rounded up: rates above 1,000,000 units
/// per second are paced at 1,000,000.
///
/// # `try_acquire` cannot answer
///
/// [`Limiter::try_acquire`] is synchronous and a shared bucket cannot be read without I/O, so it
/// refuses with [`ThrottleReason::Remote`]. [`CompositeLimiter`](crate::limit::CompositeLimiter)
/// (and so the upstream pipeline) then calls [`Limiter::acquire`]; call `acquire(cost,
/// Duration::ZERO)` yourself for a non-waiting check.
///
/// # When Redis is unreachable
///
/// Fail closed by default: `acquire` refuses with [`ThrottleReason::Unavailable`] (nothing spent,
/// nothing admitted, `until` unknown) and the pipeline surfaces it as a typed
/// `Error::Throttled`. [`RedisGcraLimiter::fail_open`] instead hands the call to a local limiter
/// (typically a [`GcraLimiter`](crate::limit::GcraLimiter) with this process's share of the
/// rate) until Redis answers again. Either way the failure is logged (`warn`, target
/// `ratewise::redis`) and counted ([`RedisGcraLimiter::unavailable_count`]); the next acquire
/// tries Redis again, so a restarted Redis is picked up at once. A reservation is made by one
/// atomic script: a call either spent budget and was told so, or spent nothing.
pub struct RedisGcraLimiter {
    redis: RedisConnection,
    upstream: String,
    credential: String,
    budget: BudgetName,
    key: String,
    rate: Rate,
    burst: u64,
    clock: SharedClock,
    policy: FailurePolicy,
    unavailable: AtomicU64,
}

impl fmt::Debug for RedisGcraLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisGcraLimiter")
            .field("key", &self.key)
            .field("rate", &self.rate)
            .field("burst", &self.burst)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// What the acquire script answered.
struct Decision {
    admitted: bool,
    wait: Duration,
    /// The TAT this reservation left (µs, Redis clock), for a refund on cancel.
    new_tat: i64,
}

impl RedisGcraLimiter {
    /// A limiter admitting `rate` for `upstream` through `redis`, with a burst of one period.
    pub fn new(redis: RedisConnection, upstream: impl Into<String>, rate: Rate) -> Self {
        let mut limiter = Self {
            redis,
            upstream: upstream.into(),
            credential: "default".to_owned(),
            budget: BudgetName::REQUESTS,
            key: String::new(),
            rate,
            burst: rate.amount(),
            clock: TokioClock::shared(),
            policy: FailurePolicy::Closed,
            unavailable: AtomicU64::new(0),
        };
        limiter.rekey();
        limiter
    }

    /// The credential label this bucket belongs to (default `default`).
    pub fn credential(mut self, credential: impl Into<String>) -> Self {
        self.credential = credential.into();
        self.rekey();
        self
    }

    /// The budget this limiter spends (default [`BudgetName::REQUESTS`]).
    pub fn budget(mut self, budget: impl Into<BudgetName>) -> Self {
        self.budget = budget.into();
        self.rekey();
        self
    }

    /// The largest cost admitted at once (default: the rate's amount per period).
    pub fn burst(mut self, burst: u64) -> Self {
        self.burst = burst;
        self
    }

    /// The clock waits are measured on (default [`TokioClock`]).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Admits through `fallback` while Redis is unreachable (default: refuse, fail closed).
    pub fn fail_open(mut self, fallback: Arc<dyn Limiter>) -> Self {
        self.policy = FailurePolicy::Open(fallback);
        self
    }

    /// Sets what happens while Redis is unreachable.
    pub fn failure_policy(mut self, policy: FailurePolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The Redis key of the shared bucket.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The rate and burst.
    pub fn quota(&self) -> (Rate, u64) {
        (self.rate, self.burst)
    }

    /// The budget this limiter spends.
    pub fn budget_name(&self) -> &BudgetName {
        &self.budget
    }

    /// How many acquires found Redis unreachable since this limiter was built.
    pub fn unavailable_count(&self) -> u64 {
        self.unavailable.load(Ordering::Relaxed)
    }

    /// Like [`Limiter::acquire`], but says *why* Redis failed instead of applying the failure
    /// policy: `Ok(Ok(permit))` admitted, `Ok(Err(throttled))` refused by the shared budget,
    /// `Err(redis)` Redis could not decide (nothing was spent).
    pub async fn acquire_shared(
        &self,
        cost: &Cost,
        max_wait: Duration,
    ) -> Result<Result<Permit, Throttled>, RedisError> {
        let amount = cost.amount(&self.budget);
        if amount == 0 {
            return Ok(Ok(Permit::empty()));
        }
        if amount > self.burst || self.rate.amount() == 0 {
            return Ok(Err(Throttled::new(
                self.budget.clone(),
                ThrottleReason::ExceedsCapacity,
                None,
            )));
        }
        let decision = self.decide(amount, max_wait).await?;
        if !decision.admitted {
            let until = self.clock.now().checked_add(decision.wait);
            return Ok(Err(Throttled::new(
                self.budget.clone(),
                ThrottleReason::WouldWait,
                until,
            )));
        }
        if !decision.wait.is_zero()
            && let Some(deadline) = self.clock.now().checked_add(decision.wait)
        {
            let increment = self.micros(amount);
            wait_reserved(deadline, || self.adjust(-increment, decision.new_tat)).await;
        }
        Ok(Ok(Permit::empty()))
    }

    fn rekey(&mut self) {
        self.key = self.redis.key(
            "gcra",
            &[&self.upstream, &self.credential, self.budget.as_str()],
        );
    }

    /// `T` in whole microseconds, rounded up, at least 1, at most about 12 days.
    fn interval_micros(&self) -> i64 {
        let micros = self.rate.emission_interval_nanos().div_ceil(1_000).max(1);
        i64::try_from(micros.min(1 << 40)).unwrap_or(1 << 40)
    }

    fn micros(&self, amount: u64) -> i64 {
        i64::try_from(amount)
            .unwrap_or(i64::MAX)
            .saturating_mul(self.interval_micros())
    }

    async fn decide(&self, amount: u64, max_wait: Duration) -> Result<Decision, RedisError> {
        let max_wait = i64::try_from(max_wait.as_micros()).unwrap_or(i64::MAX);
        let burst = i64::try_from(self.burst).unwrap_or(i64::MAX);
        let (admitted, wait, new_tat): (i64, i64, i64) = scripts::GCRA_ACQUIRE
            .key(&self.key)
            .arg(self.interval_micros())
            .arg(burst)
            .arg(i64::try_from(amount).unwrap_or(i64::MAX))
            .arg(max_wait)
            .invoke_async(&mut self.redis.manager())
            .await?;
        Ok(Decision {
            admitted: admitted == 1,
            wait: Duration::from_micros(u64::try_from(wait).unwrap_or(0)),
            new_tat,
        })
    }

    /// Moves the shared TAT by `delta` µs in the background (refund when negative).
    fn adjust(&self, delta: i64, tail: i64) {
        if delta == 0 {
            return;
        }
        let tolerance = self.micros(self.burst);
        let (redis, key) = (self.redis.clone(), self.key.clone());
        spawn_detached("gcra adjust", async move {
            scripts::GCRA_ADJUST
                .key(&key)
                .arg(delta)
                .arg(tail)
                .arg(tolerance)
                .invoke_async::<i64>(&mut redis.manager())
                .await
                .map(drop)
                .map_err(RedisError::from)
        });
    }
}

#[async_trait]
impl Limiter for RedisGcraLimiter {
    /// Refuses with [`ThrottleReason::Remote`] (see [`RedisGcraLimiter`]), except for a cost
    /// that does not name this budget, which passes freely.
    fn try_acquire(&self, cost: &Cost) -> Result<Permit, Throttled> {
        if cost.amount(&self.budget) == 0 {
            return Ok(Permit::empty());
        }
        Err(Throttled::new(
            self.budget.clone(),
            ThrottleReason::Remote,
            None,
        ))
    }

    async fn acquire(&self, cost: &Cost, max_wait: Duration) -> Result<Permit, Throttled> {
        match self.acquire_shared(cost, max_wait).await {
            Ok(decided) => decided,
            Err(error) => {
                self.unavailable.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    target: "ratewise::redis",
                    key = %self.key,
                    error = %error,
                    "shared limiter unavailable"
                );
                match &self.policy {
                    FailurePolicy::Open(fallback) => fallback.acquire(cost, max_wait).await,
                    FailurePolicy::Closed => Err(Throttled::new(
                        self.budget.clone(),
                        ThrottleReason::Unavailable,
                        None,
                    )),
                }
            }
        }
    }

    /// Refunds (`actual < reserved`) or charges (`actual > reserved`) the difference on the
    /// shared bucket, in the background (one script call). A refund while callers are queued is
    /// dropped, as in the local GCRA.
    fn reconcile(&self, reserved: &Cost, actual: &Cost) {
        let reserved = reserved.amount(&self.budget);
        let actual = actual.amount(&self.budget);
        if actual > reserved {
            self.adjust(self.micros(actual.saturating_sub(reserved)), 0);
        } else if reserved > actual {
            self.adjust(-self.micros(reserved.saturating_sub(actual)), 0);
        }
    }
}
