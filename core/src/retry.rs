//! Retry for any async closure: the article's `withRetry`, done right.
//!
//! A [`RetryPolicy`] (a cheap `Clone`) says how hard to try: at most 4 attempts, full-jitter
//! backoff from 200 ms to 30 s, server hints obeyed up to the 120 s clamp, an optional deadline
//! for the whole call, and a shared retry budget. [`RetryPolicy::retry`] wraps an operation into
//! a [`RetryCall`], a future you can refine with hooks and then `.await`:
//!
//! ```
//! use std::io::{Error, ErrorKind};
//! use std::time::Duration;
//! use ratewise_core::retry::RetryPolicy;
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let policy = RetryPolicy::new().max_attempts(3).upstream("inventory");
//! let mut calls = 0;
//! let stock = policy
//!     .retry(|| {
//!         calls += 1;
//!         let flaky = calls < 3;
//!         async move {
//!             if flaky { Err(Error::from(ErrorKind::ConnectionReset)) } else { Ok(42) }
//!         }
//!     })
//!     .notify(|event| eprintln!("attempt {} failed, retrying in {:?}", event.attempt, event.delay))
//!     .await;
//! assert_eq!(stock.unwrap(), 42);
//! # }
//! ```
//!
//! On each failure, in order:
//! 1. **classify**: not retryable ([`RetryCall::when`], default [`Retryable::is_retryable`])
//!    ends the loop with [`GaveUp::Permanent`];
//! 2. **attempts**: after `max_attempts` attempts, [`GaveUp::AttemptsExhausted`];
//! 3. **wait**: the server's hint ([`RetryCall::hint`], default [`Retryable::retry_after`])
//!    if any, else backoff. A hint beyond the [`Clamp`] ends the loop at once with
//!    [`GaveUp::RetryAfterTooLong`], carrying the full wait;
//! 4. **deadline**: a wait that would reach the call's deadline is not started:
//!    [`GaveUp::DeadlineExceeded`];
//! 5. **budget**: the shared [`RetryBudget`] must allow the retry, else
//!    [`GaveUp::BudgetExhausted`];
//! 6. **notify**: the notify hook and a `tracing` event ([`crate::telemetry`]) see the attempt,
//!    the error and the delay; then the loop sleeps and tries again.
//!
//! Decisions where callers usually have to guess:
//! - The **budget is on by default**: each policy owns one [`RetryBudget`] (20 % of calls plus
//!   10 retries per second over 10 s) shared by all its clones. Build one policy per upstream
//!   and clone it; a policy built per call gets a fresh budget that never bites. Turn it off
//!   with [`RetryPolicy::without_budget`], share one across policies with
//!   [`RetryPolicy::budget`].
//! - The **deadline bounds waiting**, not a running attempt: no sleep reaches past it and no
//!   attempt starts after it, so the loop always ends with a real error to report. Bound each
//!   attempt (or the whole call) with `tokio::time::timeout` if it can hang.
//! - A hint replaces backoff exactly (servers know best), within the clamp. Backoff delays are
//!   truncated to whole milliseconds, the resolution of tokio's timer, so the delay reported to
//!   hooks and telemetry is the delay slept.
//! - Sleeping uses tokio's timer, so the call must run inside a tokio runtime with time
//!   enabled; the deadline is read from the policy's clock (default [`TokioClock`], which
//!   follows tokio's virtual time under `start_paused`).

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use fastrand::Rng;

use crate::backoff::Backoff;
use crate::budget::RetryBudget;
use crate::clock::{SharedClock, TokioClock};
use crate::error::{HumanDuration, Retryable};
use crate::hint::{Clamp, HintTooLong};
use crate::telemetry;

/// How hard to retry: attempts, backoff, clamp, deadline, budget, clock and randomness.
///
/// Defaults: 4 attempts, [`Backoff::new`] (full jitter, 200 ms to 30 s), [`Clamp::default`]
/// (120 s), no deadline, a [`RetryBudget::new`] shared by clones, [`TokioClock`], a random
/// seed, upstream label `"custom"`.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    max_attempts: u32,
    backoff: Backoff,
    clamp: Clamp,
    deadline: Option<Duration>,
    budget: BudgetChoice,
    clock: SharedClock,
    seed: Option<u64>,
    upstream: &'static str,
}

#[derive(Clone, Debug)]
enum BudgetChoice {
    /// The policy's own default budget, rebuilt when the clock changes.
    Default(RetryBudget),
    /// A budget the caller chose (maybe shared with other policies).
    Custom(RetryBudget),
    /// No budget: only `max_attempts` bounds retries.
    Off,
}

impl RetryPolicy {
    /// The default number of attempts, the first included: 4.
    pub const DEFAULT_MAX_ATTEMPTS: u32 = 4;
    /// The default upstream label in telemetry and errors: `"custom"`.
    pub const DEFAULT_UPSTREAM: &'static str = "custom";

    /// The default policy (see the type's docs for the numbers).
    pub fn new() -> Self {
        let clock = TokioClock::shared();
        Self {
            max_attempts: Self::DEFAULT_MAX_ATTEMPTS,
            backoff: Backoff::new(),
            clamp: Clamp::default(),
            deadline: None,
            budget: BudgetChoice::Default(RetryBudget::builder().clock(clock.clone()).build()),
            clock,
            seed: None,
            upstream: Self::DEFAULT_UPSTREAM,
        }
    }

    /// At most `attempts` attempts, the first included (default 4; 0 counts as 1).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The backoff used when the error carries no hint (default [`Backoff::new`]).
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// The longest server hint slept on (default 120 s).
    pub fn clamp(mut self, clamp: Clamp) -> Self {
        self.clamp = clamp;
        self
    }

    /// A deadline for the whole call, measured from its first poll (default: none).
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Withdraws retries from `budget`, e.g. one shared by every policy of an upstream
    /// (default: a budget of this policy's own).
    pub fn budget(mut self, budget: RetryBudget) -> Self {
        self.budget = BudgetChoice::Custom(budget);
        self
    }

    /// No retry budget: only `max_attempts` bounds retries.
    pub fn without_budget(mut self) -> Self {
        self.budget = BudgetChoice::Off;
        self
    }

    /// The clock that measures the deadline and ages the default budget (default
    /// [`TokioClock`]).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        if let BudgetChoice::Default(_) = self.budget {
            self.budget =
                BudgetChoice::Default(RetryBudget::builder().clock(clock.clone()).build());
        }
        self.clock = clock;
        self
    }

    /// Seeds the jitter: every call of this policy draws the same delays (for tests; the
    /// default, a fresh random seed per call, keeps clients from retrying in step).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// The upstream label of telemetry events and errors (default `"custom"`).
    pub fn upstream(mut self, upstream: &'static str) -> Self {
        self.upstream = upstream;
        self
    }

    /// The budget retries are withdrawn from, if any.
    pub fn retry_budget(&self) -> Option<&RetryBudget> {
        match &self.budget {
            BudgetChoice::Default(b) | BudgetChoice::Custom(b) => Some(b),
            BudgetChoice::Off => None,
        }
    }

    /// The most attempts a call makes.
    pub fn attempts(&self) -> u32 {
        self.max_attempts
    }

    /// Retries `op` under this policy; errors classify themselves through [`Retryable`].
    ///
    /// `op` is called once per attempt. Refine the returned call with hooks, then `.await` it.
    pub fn retry<F, Fut, T, E>(&self, op: F) -> RetryCall<F, Fut, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Retryable,
    {
        RetryCall::new(self.clone(), op, E::is_retryable, E::retry_after, E::reason)
    }

    /// Retries `op` for any error type: `when` decides which errors are retryable; there are
    /// no hints unless [`RetryCall::hint`] adds them, and the telemetry reason is `"error"`
    /// unless [`RetryCall::reason`] sets one.
    pub fn retry_if<F, Fut, T, E, W>(&self, op: F, when: W) -> RetryCall<F, Fut, E, W>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        W: Fn(&E) -> bool,
    {
        RetryCall::new(self.clone(), op, when, |_| None, |_| "error")
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::new()
    }
}

/// Retries `op` under the default [`RetryPolicy`] (4 attempts, full jitter, 120 s clamp).
///
/// The budget of a default policy lives only for this call, so it never bites; share a
/// [`RetryPolicy`] to bound retries across calls.
pub fn retry<F, Fut, T, E>(op: F) -> RetryCall<F, Fut, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: Retryable,
{
    RetryPolicy::new().retry(op)
}

/// What the notify hook sees before each sleep.
#[derive(Debug)]
#[non_exhaustive]
pub struct RetryEvent<'a, E> {
    /// The upstream label of the policy.
    pub upstream: &'static str,
    /// The attempt that just failed (1 for the first call).
    pub attempt: u32,
    /// Its error.
    pub error: &'a E,
    /// The sleep about to start.
    pub delay: Duration,
    /// True when the delay is the server's hint rather than backoff.
    pub hinted: bool,
    /// The error's telemetry label.
    pub reason: &'static str,
}

/// One retried call, in flight: a future of `Result<T, RetryError<E>>`.
///
/// Built by [`RetryPolicy::retry`] or [`RetryPolicy::retry_if`]; the hook methods replace one
/// hook each and keep the rest. Polling it after it completed never resolves again.
#[must_use = "a retry does nothing until it is awaited"]
pub struct RetryCall<
    F,
    Fut,
    E,
    W = fn(&E) -> bool,
    H = fn(&E) -> Option<Duration>,
    R = fn(&E) -> &'static str,
    N = fn(&RetryEvent<'_, E>),
> {
    op: F,
    policy: RetryPolicy,
    when: W,
    hint: H,
    reason: R,
    notify: N,
    state: State<Fut>,
    attempts: u32,
    previous: Option<Duration>,
    rng: Option<Rng>,
    deadline: Option<Instant>,
    error: PhantomData<fn() -> E>,
}

enum State<Fut> {
    Start,
    Attempt(Pin<Box<Fut>>),
    Sleep(Pin<Box<tokio::time::Sleep>>),
    Done,
}

impl<F, Fut, E, W, H, R> RetryCall<F, Fut, E, W, H, R> {
    fn new(policy: RetryPolicy, op: F, when: W, hint: H, reason: R) -> Self {
        Self {
            op,
            policy,
            when,
            hint,
            reason,
            notify: |_| {},
            state: State::Start,
            attempts: 0,
            previous: None,
            rng: None,
            deadline: None,
            error: PhantomData,
        }
    }
}

impl<F, Fut, E, W, H, R, N> RetryCall<F, Fut, E, W, H, R, N> {
    /// This call with its hooks mapped by `f` (the state moves over unchanged).
    fn map_hooks<W2, H2, R2, N2>(
        self,
        f: impl FnOnce(W, H, R, N) -> (W2, H2, R2, N2),
    ) -> RetryCall<F, Fut, E, W2, H2, R2, N2> {
        let (when, hint, reason, notify) = f(self.when, self.hint, self.reason, self.notify);
        RetryCall {
            op: self.op,
            policy: self.policy,
            when,
            hint,
            reason,
            notify,
            state: self.state,
            attempts: self.attempts,
            previous: self.previous,
            rng: self.rng,
            deadline: self.deadline,
            error: PhantomData,
        }
    }

    /// Decides which errors are retryable (replacing [`Retryable::is_retryable`]).
    pub fn when<W2: Fn(&E) -> bool>(self, when: W2) -> RetryCall<F, Fut, E, W2, H, R, N> {
        self.map_hooks(|_, hint, reason, notify| (when, hint, reason, notify))
    }

    /// Reads the server's wait from an error (replacing [`Retryable::retry_after`]).
    pub fn hint<H2: Fn(&E) -> Option<Duration>>(
        self,
        hint: H2,
    ) -> RetryCall<F, Fut, E, W, H2, R, N> {
        self.map_hooks(|when, _, reason, notify| (when, hint, reason, notify))
    }

    /// Labels an error for telemetry (replacing [`Retryable::reason`]).
    pub fn reason<R2: Fn(&E) -> &'static str>(
        self,
        reason: R2,
    ) -> RetryCall<F, Fut, E, W, H, R2, N> {
        self.map_hooks(|when, hint, _, notify| (when, hint, reason, notify))
    }

    /// Called before each sleep with the failed attempt, its error and the delay.
    pub fn notify<N2: FnMut(&RetryEvent<'_, E>)>(
        self,
        notify: N2,
    ) -> RetryCall<F, Fut, E, W, H, R, N2> {
        self.map_hooks(|when, hint, reason, _| (when, hint, reason, notify))
    }
}

impl<F, Fut, T, E, W, H, R, N> RetryCall<F, Fut, E, W, H, R, N>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    W: Fn(&E) -> bool,
    H: Fn(&E) -> Option<Duration>,
    R: Fn(&E) -> &'static str,
    N: FnMut(&RetryEvent<'_, E>),
{
    fn start_attempt(&mut self) {
        self.attempts = self.attempts.saturating_add(1);
        self.state = State::Attempt(Box::pin((self.op)()));
    }

    /// The decision after a failed attempt, as data: the delay before the next attempt, or
    /// why the loop ends.
    fn after_failure(&mut self, error: E) -> Result<Duration, RetryError<E>> {
        let reason = (self.reason)(&error);
        if !(self.when)(&error) {
            return Err(self.give_up(error, reason, GaveUp::Permanent, None));
        }
        let hint = (self.hint)(&error);
        if self.attempts >= self.policy.max_attempts {
            return Err(self.give_up(error, reason, GaveUp::AttemptsExhausted, hint));
        }
        let delay = match hint {
            Some(wait) => match self.policy.clamp.apply(wait) {
                Ok(wait) => wait,
                Err(too_long) => {
                    let gave_up = GaveUp::RetryAfterTooLong(too_long);
                    return Err(self.give_up(error, reason, gave_up, hint));
                }
            },
            None => {
                let seed = self.policy.seed;
                let rng = self
                    .rng
                    .get_or_insert_with(|| seed.map_or_else(Rng::new, Rng::with_seed));
                let retry = self.attempts.saturating_sub(1);
                whole_millis(self.policy.backoff.delay(retry, self.previous, rng))
            }
        };
        if let Some(deadline) = self.deadline {
            let wake = self.policy.clock.now().checked_add(delay);
            if wake.is_none_or(|wake| wake >= deadline) {
                return Err(self.give_up(error, reason, GaveUp::DeadlineExceeded, hint));
            }
        }
        if let Some(budget) = self.policy.retry_budget()
            && !budget.try_withdraw()
        {
            return Err(self.give_up(error, reason, GaveUp::BudgetExhausted, hint));
        }
        self.previous = Some(delay);
        let event = RetryEvent {
            upstream: self.policy.upstream,
            attempt: self.attempts,
            error: &error,
            delay,
            hinted: hint.is_some(),
            reason,
        };
        (self.notify)(&event);
        telemetry::retry_scheduled(event.upstream, event.attempt, reason, delay, event.hinted);
        Ok(delay)
    }

    fn give_up(
        &self,
        error: E,
        reason: &'static str,
        gave_up: GaveUp,
        retry_after: Option<Duration>,
    ) -> RetryError<E> {
        if gave_up != GaveUp::Permanent || self.attempts > 1 {
            telemetry::retry_gave_up(
                self.policy.upstream,
                self.attempts,
                reason,
                gave_up.as_str(),
            );
        }
        RetryError {
            error,
            upstream: self.policy.upstream,
            attempts: self.attempts,
            reason,
            retry_after,
            gave_up,
        }
    }
}

impl<F, Fut, T, E, W, H, R, N> Future for RetryCall<F, Fut, E, W, H, R, N>
where
    F: FnMut() -> Fut + Unpin,
    Fut: Future<Output = Result<T, E>>,
    W: Fn(&E) -> bool + Unpin,
    H: Fn(&E) -> Option<Duration> + Unpin,
    R: Fn(&E) -> &'static str + Unpin,
    N: FnMut(&RetryEvent<'_, E>) + Unpin,
{
    type Output = Result<T, RetryError<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        loop {
            match &mut this.state {
                State::Start => {
                    let now = this.policy.clock.now();
                    this.deadline = this.policy.deadline.and_then(|d| now.checked_add(d));
                    if let Some(budget) = this.policy.retry_budget() {
                        budget.deposit();
                    }
                    this.start_attempt();
                }
                State::Attempt(attempt) => {
                    let Poll::Ready(result) = attempt.as_mut().poll(cx) else {
                        return Poll::Pending;
                    };
                    match result {
                        Ok(value) => {
                            this.state = State::Done;
                            return Poll::Ready(Ok(value));
                        }
                        Err(error) => match this.after_failure(error) {
                            Ok(delay) if delay.is_zero() => this.start_attempt(),
                            Ok(delay) => {
                                let now = this.policy.clock.now();
                                let wake = now.checked_add(delay).unwrap_or(now);
                                let wake = tokio::time::Instant::from_std(wake);
                                this.state = State::Sleep(Box::pin(tokio::time::sleep_until(wake)));
                            }
                            Err(gave_up) => {
                                this.state = State::Done;
                                return Poll::Ready(Err(gave_up));
                            }
                        },
                    }
                }
                State::Sleep(sleep) => {
                    if sleep.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    this.start_attempt();
                }
                State::Done => return Poll::Pending,
            }
        }
    }
}

/// `d` truncated to whole milliseconds, the resolution of tokio's timer: the delay reported to
/// hooks and telemetry is then exactly the delay slept.
fn whole_millis(d: Duration) -> Duration {
    Duration::from_millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl<F, Fut, E, W, H, R, N> fmt::Debug for RetryCall<F, Fut, E, W, H, R, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryCall")
            .field("policy", &self.policy)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

/// Why a retry loop gave up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum GaveUp {
    /// The error is not retryable.
    Permanent,
    /// Every allowed attempt failed.
    AttemptsExhausted,
    /// The server asked for a wait beyond the clamp; the full wait is in the [`HintTooLong`].
    RetryAfterTooLong(HintTooLong),
    /// The retry budget refused another retry.
    BudgetExhausted,
    /// The next wait would have reached the call's deadline.
    DeadlineExceeded,
}

impl GaveUp {
    /// A stable label: `permanent`, `attempts_exhausted`, `retry_after_too_long`,
    /// `retry_budget_exhausted`, `deadline_exceeded`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Permanent => "permanent",
            Self::AttemptsExhausted => "attempts_exhausted",
            Self::RetryAfterTooLong(_) => "retry_after_too_long",
            Self::BudgetExhausted => "retry_budget_exhausted",
            Self::DeadlineExceeded => "deadline_exceeded",
        }
    }
}

/// A retried call failed: why the loop gave up, after how many attempts, and the last error.
///
/// Implements [`Retryable`], so a queue above can ask whether and when to try again: it is
/// retryable unless the last error was permanent, and `retry_after()` is the server's last hint
/// (the full wait, even beyond the clamp).
#[derive(Debug)]
pub struct RetryError<E> {
    error: E,
    upstream: &'static str,
    attempts: u32,
    reason: &'static str,
    retry_after: Option<Duration>,
    gave_up: GaveUp,
}

impl<E> RetryError<E> {
    /// Why the loop gave up.
    pub fn gave_up(&self) -> GaveUp {
        self.gave_up
    }

    /// How many attempts were made (at least 1).
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The upstream label of the policy.
    pub fn upstream(&self) -> &'static str {
        self.upstream
    }

    /// The error of the last attempt.
    pub fn last_error(&self) -> &E {
        &self.error
    }

    /// The error of the last attempt, by value.
    pub fn into_inner(self) -> E {
        self.error
    }
}

impl<E: fmt::Display> fmt::Display for RetryError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (upstream, attempts) = (self.upstream, self.attempts);
        write!(f, "{upstream}: gave up after {attempts} attempt(s): ")?;
        match self.gave_up {
            GaveUp::Permanent => f.write_str("the error is not retryable")?,
            GaveUp::AttemptsExhausted => f.write_str("every allowed attempt failed")?,
            GaveUp::RetryAfterTooLong(hint) => write!(
                f,
                "the server asked to wait {}, beyond the {} clamp; retry after {}",
                HumanDuration(hint.wait),
                HumanDuration(hint.max),
                HumanDuration(hint.wait)
            )?,
            GaveUp::BudgetExhausted => {
                f.write_str("retry budget exhausted (too many calls failing); retry later")?
            }
            GaveUp::DeadlineExceeded => {
                f.write_str("the deadline leaves no time for another attempt")?
            }
        }
        write!(f, "; last error: {}", self.error)
    }
}

impl<E: std::error::Error + 'static> std::error::Error for RetryError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl<E> Retryable for RetryError<E> {
    fn is_retryable(&self) -> bool {
        self.gave_up != GaveUp::Permanent
    }

    fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    fn reason(&self) -> &'static str {
        self.reason
    }
}
