//! SendGrid's budgets: one per endpoint, paced by the `X-RateLimit-*` headers, under a
//! configured budget that holds when the headers are absent.
//!
//! # What SendGrid says
//!
//! Limits are per endpoint, reported on each response (`X-RateLimit-Limit`, `-Remaining`,
//! `-Reset` in epoch seconds), and an endpoint that runs out answers 429 "for the remainder of
//! the refresh period". No table of numbers is published, and `/v3/mail/send` often sends no
//! headers at all (SendGrid's FAQ speaks of up to 10,000 requests per second for mail send; a
//! second-hand source claims 600 per minute).
//!
//! # How a call is charged
//!
//! A call spends 1 of `sendgrid.endpoint:<operation>` (e.g. `sendgrid.endpoint:mail.send`).
//! [`endpoint_limiter`] keeps, per operation, two limiters on that budget, both of which must
//! admit:
//!
//! - a [`QuotaPacer`]: admits freely until a response reports the budget, then spreads what is
//!   left over the time to the reset and holds at zero until the reset;
//! - the configured budget, a [`GcraLimiter`]: [`DEFAULT_BUDGET`] (10 requests per second,
//!   burst 10) unless [`SendGridLimits::budget`] or [`SendGridLimits::endpoint_override`] say
//!   otherwise. It is what applies when the headers are absent; a reported budget can only make
//!   it slower, never faster.
//!
//! # Which endpoint a response describes
//!
//! A response does not say which endpoint it answered, so the provider reports its headers as a
//! snapshot of [`ENDPOINT`]; the limiter applies it to every endpoint admitted during the last
//! second. With one endpoint in use (this crate types mail send) that is exact; with several in
//! flight at once it errs slow for the others.

use std::collections::HashMap;
use std::sync::Arc;

use ratewise_core::clock::SharedClock;
use ratewise_core::limit::{
    BudgetName, CompositeLimiter, GcraLimiter, KeyedLimiter, Limiter, QuotaPacer, Rate,
};

/// The broadcast budget: a snapshot of it describes the endpoints active just now.
pub const ENDPOINT: BudgetName = BudgetName::from_static("sendgrid.endpoint");

const ENDPOINT_PREFIX: &str = "sendgrid.endpoint:";

/// The configured per-endpoint budget when nothing else is said: 10 requests per second.
///
/// Conservative against the unverified 600 per minute for mail send, and with batches of 1,000
/// recipients still 10,000 emails per second.
pub const DEFAULT_BUDGET: Rate = Rate::per_second(10);

/// The default burst of the configured budget: 10 requests (one second's worth).
pub const DEFAULT_BURST: u64 = 10;

/// The budget of one operation: `sendgrid.endpoint:<operation>`.
pub fn endpoint(operation: &str) -> BudgetName {
    BudgetName::new(format!("{ENDPOINT_PREFIX}{operation}"))
}

/// The configured budgets: one rate and burst for every endpoint, overridable per operation.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SendGridLimits {
    /// The per-endpoint rate (default [`DEFAULT_BUDGET`], 10/s).
    pub budget: Rate,
    /// The per-endpoint burst (default [`DEFAULT_BURST`], 10).
    pub burst: u64,
    /// Per-operation rate and burst replacing the default (none by default).
    pub overrides: HashMap<&'static str, (Rate, u64)>,
}

impl Default for SendGridLimits {
    fn default() -> Self {
        Self::new()
    }
}

impl SendGridLimits {
    /// The documented defaults: 10 requests per second per endpoint, burst 10.
    pub fn new() -> Self {
        Self {
            budget: DEFAULT_BUDGET,
            burst: DEFAULT_BURST,
            overrides: HashMap::new(),
        }
    }

    /// Every endpoint at `rate` with `burst` (at least 1). To mirror a server window of `n`
    /// requests per `w` without ever crossing it, use `Rate::new(n, w)` with burst 1.
    pub fn budget(mut self, rate: Rate, burst: u64) -> Self {
        self.budget = rate;
        self.burst = burst.max(1);
        self
    }

    /// `operation` (`mail.send`) at its own rate and burst.
    pub fn endpoint_override(mut self, operation: &'static str, rate: Rate, burst: u64) -> Self {
        self.overrides.insert(operation, (rate, burst.max(1)));
        self
    }

    /// The limiters for these budgets on `clock`: one [`endpoint_limiter`].
    pub fn limiters(&self, clock: &SharedClock) -> Vec<Arc<dyn Limiter>> {
        vec![Arc::new(endpoint_limiter(self.clone(), clock))]
    }
}

/// SendGrid's per-endpoint budgets: for each `sendgrid.endpoint:<operation>`, a [`QuotaPacer`]
/// fed by the headers and the configured [`GcraLimiter`], created on first use; snapshots of
/// [`ENDPOINT`] reach the endpoints admitted during the last second.
pub fn endpoint_limiter(limits: SendGridLimits, clock: &SharedClock) -> KeyedLimiter {
    let member_clock = Arc::clone(clock);
    KeyedLimiter::new(ENDPOINT_PREFIX, move |name: &BudgetName| {
        let operation = name
            .as_str()
            .strip_prefix(ENDPOINT_PREFIX)
            .unwrap_or_default();
        let (rate, burst) = limits
            .overrides
            .get(operation)
            .copied()
            .unwrap_or((limits.budget, limits.burst));
        let pacer = QuotaPacer::new(name.clone()).clock(Arc::clone(&member_clock));
        let configured = GcraLimiter::new(rate)
            .burst(burst)
            .budget(name.clone())
            .clock(Arc::clone(&member_clock));
        Arc::new(
            CompositeLimiter::new()
                .clock(Arc::clone(&member_clock))
                .with(Arc::new(pacer))
                .with(Arc::new(configured)),
        ) as Arc<dyn Limiter>
    })
    .broadcast(ENDPOINT)
    .clock(Arc::clone(clock))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratewise_core::clock::{Clock, ManualClock};
    use ratewise_core::limit::{Cost, QuotaSnapshot};
    use std::time::Duration;

    fn cost(operation: &str) -> Cost {
        Cost::none().with(endpoint(operation), 1)
    }

    #[test]
    fn without_headers_only_the_configured_budget_applies() {
        let clock = ManualClock::new();
        let limiter = endpoint_limiter(
            SendGridLimits::new().budget(Rate::new(2, Duration::from_secs(10)), 1),
            &clock.shared(),
        );
        let _a = limiter.try_acquire(&cost("mail.send")).unwrap();
        assert!(limiter.try_acquire(&cost("mail.send")).is_err());
        clock.advance(Duration::from_secs(5));
        let _b = limiter.try_acquire(&cost("mail.send")).unwrap();
        // Another endpoint has its own budget.
        let _c = limiter.try_acquire(&cost("scopes.list")).unwrap();
    }

    #[test]
    fn a_reported_zero_holds_the_endpoint_until_the_reset() {
        let clock = ManualClock::new();
        let limiter = endpoint_limiter(SendGridLimits::new(), &clock.shared());
        let _ = limiter.try_acquire(&cost("mail.send")).unwrap();
        let now = clock.now();
        let reset = now + Duration::from_secs(30);
        limiter.observe(&QuotaSnapshot::new(ENDPOINT, 0, reset, now).with_limit(600));
        let refused = limiter.try_acquire(&cost("mail.send")).unwrap_err();
        assert_eq!(
            refused.retry_after(clock.now()),
            Some(Duration::from_secs(30))
        );
        clock.advance(Duration::from_secs(30));
        let _ = limiter.try_acquire(&cost("mail.send")).unwrap();
    }

    #[test]
    fn an_override_gives_one_operation_its_own_budget() {
        let clock = ManualClock::new();
        let limiter = endpoint_limiter(
            SendGridLimits::new()
                .budget(Rate::per_second(1), 1)
                .endpoint_override("mail.send", Rate::per_second(100), 50),
            &clock.shared(),
        );
        for _ in 0..50 {
            let _ = limiter.try_acquire(&cost("mail.send")).unwrap();
        }
        assert!(limiter.try_acquire(&cost("mail.send")).is_err());
        let _ = limiter.try_acquire(&cost("other")).unwrap();
        assert!(limiter.try_acquire(&cost("other")).is_err());
    }

    #[test]
    fn the_defaults_are_ten_per_second_with_a_burst_of_ten() {
        let limits = SendGridLimits::default();
        assert_eq!(limits.budget, Rate::per_second(10));
        assert_eq!(limits.burst, 10);
        let clock = ManualClock::new();
        let limiters = limits.limiters(&clock.shared());
        assert_eq!(limiters.len(), 1);
        for _ in 0..10 {
            let _ = limiters[0].try_acquire(&cost("mail.send")).unwrap();
        }
        assert!(limiters[0].try_acquire(&cost("mail.send")).is_err());
    }
}
