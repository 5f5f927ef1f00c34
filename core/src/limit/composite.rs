//! Several limiters charged together for one call, all or nothing.
//!
//! # Which providers it matches
//!
//! Providers enforce several budgets at once, and the first one exhausted applies: OpenAI
//! requests per minute *and* tokens per minute; GitHub's hourly primary limit *and* its secondary
//! limits (per-minute points, concurrency); Stripe's global rate, per-endpoint rate and
//! concurrency; Twilio's API concurrency *and* each sender's messages per second. A
//! [`CompositeLimiter`] admits a call only when every member admits it.
//!
//! # All or nothing
//!
//! Members are charged in the order they were added. When one refuses, every member that already
//! admitted the call gets `reconcile(cost, &Cost::none())` (a full refund) and its permit is
//! dropped, so no partial reservation leaks. The same happens when the caller's future is
//! cancelled while a member makes it wait.
//!
//! # Waiting strategy
//!
//! Members are tried in order without waiting. When one refuses with a wait that could help
//! ([`ThrottleReason::WouldWait`] or [`ThrottleReason::QuotaExhausted`]), the composite gives
//! back everything held so far, waits on that member alone with what is left of `max_wait`
//! (taking its FIFO place there), and then charges the other members again from the first. So
//! every member is charged at the instant the call is admitted: a call never holds one budget
//! while it waits for another, and each member's quota holds for the calls as they are sent.
//! The price: a refund a GCRA member cannot take while callers queue on it is dropped (the
//! limiter errs slow), and FIFO holds per member rather than across the whole composite. A member
//! that answers [`ThrottleReason::Remote`] (a Redis-backed limiter, which cannot decide without a
//! round trip) is always asked through `acquire`, even with a zero `max_wait`. Put the
//! budget most likely to make callers wait first (tokens before requests for OpenAI).
//!
//! # Cost
//!
//! Members on the composite's own clock (the same `SharedClock` given to both, as the provider
//! clients do) share one clock reading per admission instead of reading it once each. When
//! nothing has to wait, admission allocates nothing: `try_acquire` and the inherent
//! [`CompositeLimiter::acquire`] (what a client holding the concrete type calls) never box;
//! only [`Limiter::acquire`] through `dyn Limiter` boxes its future, as every `Limiter` does.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::shared_now::SharedNow;
use super::{Cost, Feedback, Limiter, Permit, QuotaSnapshot, ThrottleReason, Throttled};
use crate::clock::{ClockReader, SharedClock, TokioClock};

/// Several limiters charged together for one call: all admit it, or none keeps a charge.
///
/// Defaults: no members (admits everything), clock [`TokioClock`] (to measure what is left of
/// `max_wait`, and read once per admission for the members on the same clock). `reconcile`,
/// `observe` and `feedback` go to every member.
///
/// ```
/// use std::sync::Arc;
/// use ratewise_core::limit::{BudgetName, CompositeLimiter, Cost, GcraLimiter, Limiter, Rate};
///
/// // OpenAI: 500 requests and 30,000 tokens per minute.
/// let openai = CompositeLimiter::new()
///     .with(Arc::new(GcraLimiter::new(Rate::per_minute(30_000)).budget(BudgetName::TOKENS)))
///     .with(Arc::new(GcraLimiter::new(Rate::per_minute(500))));
/// let cost = Cost::request().with(BudgetName::TOKENS, 1_350);
/// let _permit = openai.try_acquire(&cost).unwrap();
/// ```
#[derive(Clone, Debug)]
pub struct CompositeLimiter {
    members: Vec<Arc<dyn Limiter>>,
    clock: ClockReader,
}

impl Default for CompositeLimiter {
    fn default() -> Self {
        Self::new()
    }
}

impl CompositeLimiter {
    /// A composite with no members yet.
    pub fn new() -> Self {
        let clock = ClockReader::new(TokioClock::shared());
        Self {
            members: Vec::new(),
            clock,
        }
    }

    /// This composite with `limiter` added last.
    pub fn with(mut self, limiter: Arc<dyn Limiter>) -> Self {
        self.members.push(limiter);
        self
    }

    /// The clock measuring what is left of `max_wait` (default [`TokioClock`]). Members given
    /// this same `SharedClock` (an `Arc::clone` of it) share one reading of it per admission.
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = ClockReader::new(clock);
        self
    }

    /// The members, in the order they are charged.
    pub fn members(&self) -> &[Arc<dyn Limiter>] {
        &self.members
    }
}

/// What one call holds from the members so far; dropped unless committed, it gives it all back.
///
/// The members holding a charge are those before `prefix` plus `extra` (the member the call last
/// waited on). A member's permit is held only while it holds a charge, so a `Held` with none
/// holds an empty permit and drops without doing anything.
struct Held<'a> {
    members: &'a [Arc<dyn Limiter>],
    cost: &'a Cost,
    prefix: usize,
    extra: Option<usize>,
    permit: Permit,
}

impl<'a> Held<'a> {
    #[inline]
    fn new(members: &'a [Arc<dyn Limiter>], cost: &'a Cost) -> Self {
        Self {
            members,
            cost,
            prefix: 0,
            extra: None,
            permit: Permit::empty(),
        }
    }

    /// The next member in order admitted the call with `permit`.
    #[inline]
    fn admitted(&mut self, permit: Permit) {
        self.prefix = self.prefix.saturating_add(1);
        if !permit.is_empty() {
            self.hold(permit);
        }
    }

    /// Adds a member's slot to what the call holds.
    #[inline(never)]
    fn hold(&mut self, permit: Permit) {
        self.permit = std::mem::take(&mut self.permit).merge(permit);
    }

    /// Releases every slot and refunds every charge held so far.
    #[cold]
    #[inline(never)]
    fn release(&mut self) {
        drop(std::mem::take(&mut self.permit));
        let none = Cost::none();
        for member in self.members.iter().take(self.prefix) {
            member.reconcile(self.cost, &none);
        }
        let extra = self.extra.filter(|e| *e >= self.prefix);
        if let Some(member) = extra.and_then(|e| self.members.get(e)) {
            member.reconcile(self.cost, &none);
        }
        self.prefix = 0;
        self.extra = None;
    }

    /// Keeps everything: the call is admitted.
    #[inline]
    fn commit(mut self) -> Permit {
        self.prefix = 0;
        self.extra = None;
        std::mem::take(&mut self.permit)
    }
}

impl Drop for Held<'_> {
    #[inline]
    fn drop(&mut self) {
        if self.prefix != 0 || self.extra.is_some() {
            self.release();
        }
    }
}

fn waiting_may_help(refusal: &Throttled) -> bool {
    matches!(
        refusal.reason,
        ThrottleReason::WouldWait | ThrottleReason::QuotaExhausted
    )
}

impl CompositeLimiter {
    /// [`Limiter::acquire`], without boxing the future: what a caller holding the concrete
    /// type (the upstream pipeline) gets by `composite.acquire(..)`. Same behaviour; see the
    /// [module docs](self) for how the members are charged and waited on.
    pub async fn acquire(&self, cost: &Cost, max_wait: Duration) -> Result<Permit, Throttled> {
        let mut held = Held::new(&self.members, cost);
        let mut now = SharedNow::new(&self.clock);
        let mut deadline = None;
        let mut index = 0;
        while let Some(member) = self.members.get(index) {
            let next = index.saturating_add(1);
            if held.extra == Some(index) {
                held.prefix = next;
                index = next;
                continue;
            }
            match member.try_acquire_at(cost, &now) {
                Ok(permit) => {
                    held.admitted(permit);
                    index = next;
                }
                Err(refusal)
                    if refusal.reason == ThrottleReason::Remote
                        || (waiting_may_help(&refusal) && !max_wait.is_zero()) =>
                {
                    // Give back what is held, wait on this member alone, then charge the
                    // others again: every charge is taken at the instant the call is admitted.
                    held.release();
                    let deadline =
                        *deadline.get_or_insert_with(|| self.clock.now().checked_add(max_wait));
                    let left = match deadline {
                        Some(deadline) => deadline.saturating_duration_since(self.clock.now()),
                        None => max_wait,
                    };
                    held.permit = member.acquire(cost, left).await?;
                    held.extra = Some(index);
                    now = SharedNow::new(&self.clock);
                    index = 0;
                }
                Err(refusal) => return Err(refusal),
            }
        }
        Ok(held.commit())
    }
}

#[async_trait]
impl Limiter for CompositeLimiter {
    #[inline]
    fn try_acquire(&self, cost: &Cost) -> Result<Permit, Throttled> {
        let now = SharedNow::new(&self.clock);
        let mut held = Held::new(&self.members, cost);
        for member in &self.members {
            // On refusal, `held` drops: slots are released and charges refunded.
            held.admitted(member.try_acquire_at(cost, &now)?);
        }
        Ok(held.commit())
    }

    async fn acquire(&self, cost: &Cost, max_wait: Duration) -> Result<Permit, Throttled> {
        CompositeLimiter::acquire(self, cost, max_wait).await
    }

    fn observe(&self, snapshot: &QuotaSnapshot) {
        for member in &self.members {
            member.observe(snapshot);
        }
    }

    fn feedback(&self, feedback: Feedback) {
        for member in &self.members {
            member.feedback(feedback);
        }
    }

    fn reconcile(&self, reserved: &Cost, actual: &Cost) {
        for member in &self.members {
            member.reconcile(reserved, actual);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};
    use crate::limit::{BudgetName, ConcurrencyLimiter, GcraLimiter, Rate};

    fn openai(clock: &ManualClock) -> (Arc<GcraLimiter>, Arc<GcraLimiter>, CompositeLimiter) {
        let requests = Arc::new(GcraLimiter::new(Rate::per_minute(3)).clock(clock.shared()));
        let tokens = Arc::new(
            GcraLimiter::new(Rate::per_minute(1_000))
                .budget(BudgetName::TOKENS)
                .clock(clock.shared()),
        );
        let composite = CompositeLimiter::new()
            .with(requests.clone())
            .with(tokens.clone())
            .clock(clock.shared());
        (requests, tokens, composite)
    }

    #[test]
    fn a_call_is_admitted_only_when_every_budget_admits_it() {
        let clock = ManualClock::new();
        let (requests, tokens, composite) = openai(&clock);
        let _ = composite
            .try_acquire(&Cost::request().with(BudgetName::TOKENS, 600))
            .unwrap();
        assert_eq!((requests.available(), tokens.available()), (2, 400));
        let err = composite
            .try_acquire(&Cost::request().with(BudgetName::TOKENS, 600))
            .unwrap_err();
        assert_eq!(err.budget, BudgetName::TOKENS);
        assert_eq!(requests.available(), 2, "the request budget was refunded");
    }

    #[test]
    fn a_refusal_releases_the_slots_of_members_that_admitted() {
        let clock = ManualClock::new();
        let slots = Arc::new(ConcurrencyLimiter::new(1));
        let rate = Arc::new(GcraLimiter::new(Rate::per_minute(1)).clock(clock.shared()));
        let composite = CompositeLimiter::new()
            .with(slots.clone())
            .with(rate.clone());
        let permit = composite.try_acquire(&Cost::request()).unwrap();
        drop(permit);
        assert!(composite.try_acquire(&Cost::request()).is_err());
        assert_eq!(slots.available(), 1);
    }

    #[test]
    fn reconcile_and_observe_fan_out_to_every_member() {
        let clock = ManualClock::new();
        let (requests, tokens, composite) = openai(&clock);
        let cost = Cost::request().with(BudgetName::TOKENS, 900);
        let _ = composite.try_acquire(&cost).unwrap();
        composite.reconcile(&cost, &Cost::request().with(BudgetName::TOKENS, 100));
        assert_eq!((requests.available(), tokens.available()), (2, 900));
        let now = clock.now();
        composite.observe(&QuotaSnapshot::new(BudgetName::TOKENS, 10, now, now));
        composite.observe(&QuotaSnapshot::new(BudgetName::REQUESTS, 1, now, now));
        assert_eq!((requests.available(), tokens.available()), (1, 10));
        composite.feedback(Feedback::Throttled);
    }

    #[tokio::test(start_paused = true)]
    async fn acquire_waits_on_each_member_within_what_is_left_of_max_wait() {
        let requests = Arc::new(GcraLimiter::new(Rate::per_second(1)).burst(1));
        let tokens = Arc::new(
            GcraLimiter::new(Rate::per_second(100))
                .burst(100)
                .budget("tokens"),
        );
        let composite = CompositeLimiter::new()
            .with(requests.clone())
            .with(tokens.clone());
        let start = TokioClock::new().now();
        let cost = Cost::request().with("tokens", 100);
        let _ = composite.acquire(&cost, Duration::ZERO).await.unwrap();
        // Requests are back after 1 s and tokens after 1 s: one wait, not two.
        let _ = composite
            .acquire(&cost, Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!((TokioClock::new().now() - start), Duration::from_secs(1));
        // Too far for either: refused at once and nothing stays charged.
        let err = composite
            .acquire(&cost, Duration::from_millis(500))
            .await
            .unwrap_err();
        assert_eq!(err.reason, ThrottleReason::WouldWait);
        assert_eq!((TokioClock::new().now() - start), Duration::from_secs(1));
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!((requests.available(), tokens.available()), (1, 100));
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_acquire_refunds_the_members_already_admitted() {
        let slots = Arc::new(ConcurrencyLimiter::new(1));
        let rate = Arc::new(GcraLimiter::new(Rate::per_second(1)).burst(1));
        let _ = rate.try_acquire(&Cost::request()).unwrap();
        let composite = CompositeLimiter::new()
            .with(slots.clone())
            .with(rate.clone());
        let cancelled = tokio::time::timeout(
            Duration::from_millis(100),
            composite.acquire(&Cost::request(), Duration::from_secs(5)),
        )
        .await;
        assert!(cancelled.is_err());
        assert_eq!(slots.available(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn an_empty_composite_admits_everything() {
        let composite = CompositeLimiter::new();
        let permit = composite
            .acquire(&Cost::request(), Duration::ZERO)
            .await
            .unwrap();
        assert!(permit.is_empty());
    }
}
