//! Stripe's budgets: a global rate, one rate per endpoint, and optionally the older read/write
//! split.
//!
//! # The numbers (docs.stripe.com/rate-limits)
//!
//! - Global: live **100 requests/s**, sandbox **25 requests/s** ([`Mode`], from the key's
//!   prefix).
//! - Per endpoint: **25 requests/s** by default, and each named operation counts as its own
//!   endpoint. Overridable per operation ([`StripeLimits::endpoint_override`]).
//! - Older accounts: 100 read + 100 write per second live, 25 + 25 in test
//!   ([`StripeLimits::read_write_split`], off by default).
//!
//! # How a call is charged
//!
//! [`StripeProvider::cost`](crate::StripeProvider) names every budget a call spends, 1 each:
//! `stripe.global`, `stripe.endpoint:<operation>` (the [`RequestSpec::operation`], e.g.
//! `stripe.endpoint:payment_intents.create`) and `stripe.read` or `stripe.write`. A limiter
//! enforces only the budgets it owns, so naming a budget nobody enforces costs nothing. The
//! global budget is a [`GcraLimiter`]; the per-endpoint budgets are one [`endpoint_limiter`]
//! that keeps a [`GcraLimiter`] per operation, created on first use (operations are
//! `&'static str` names from the code, so the map stays small).
//!
//! # Bursts
//!
//! Each bucket admits a burst of a quarter second of its rate (25 live global, 6 sandbox
//! global, 6 per endpoint), then paces: Stripe counts per second and a full second's burst
//! arriving at once is what trips its limiter.
//!
//! # Slowing the right budget
//!
//! A 429 carries `Stripe-Rate-Limited-Reason`; the provider turns it into a snapshot of
//! `stripe.global` (`global-rate`, `global-concurrency`, or no header) or `stripe.endpoint`
//! (`endpoint-rate`, `endpoint-concurrency`) with nothing remaining for a pause (default 500 ms).
//! `resource-specific` (one object's limit) slows no budget: the retry backs off instead. The
//! response does not say which operation it answered, so the [`endpoint_limiter`] pauses every
//! endpoint it admitted during the last second: it errs slow for the few endpoints active at
//! that moment rather than not slowing the right one.
//!
//! [`RequestSpec::operation`]: ratewise_core::provider::RequestSpec::operation

use std::collections::HashMap;
use std::sync::Arc;

use ratewise_core::clock::SharedClock;
use ratewise_core::limit::{BudgetName, GcraLimiter, KeyedLimiter, Limiter, Rate};

/// The account-wide budget every call spends.
pub const GLOBAL: BudgetName = BudgetName::from_static("stripe.global");
/// The per-endpoint throttle signal: a snapshot of it slows the endpoints active just now.
pub const ENDPOINT: BudgetName = BudgetName::from_static("stripe.endpoint");
/// Read calls (GET), for accounts on the older read/write limits.
pub const READ: BudgetName = BudgetName::from_static("stripe.read");
/// Write calls (everything but GET), for accounts on the older read/write limits.
pub const WRITE: BudgetName = BudgetName::from_static("stripe.write");

const ENDPOINT_PREFIX: &str = "stripe.endpoint:";

/// The budget of one operation: `stripe.endpoint:<operation>`.
pub fn endpoint(operation: &str) -> BudgetName {
    BudgetName::new(format!("{ENDPOINT_PREFIX}{operation}"))
}

/// Live or sandbox: which set of limits applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Mode {
    /// Live keys (`sk_live_…`, `rk_live_…`): 100 requests/s globally.
    Live,
    /// Test keys (`sk_test_…`, `rk_test_…`): 25 requests/s globally.
    Sandbox,
}

impl Mode {
    /// The mode of a secret or restricted key, from its prefix. A key with neither prefix is
    /// treated as sandbox, the stricter limits.
    pub fn from_key(key: &str) -> Self {
        if key.starts_with("sk_live_") || key.starts_with("rk_live_") {
            Mode::Live
        } else {
            Mode::Sandbox
        }
    }
}

/// Stripe's budgets as limiters: documented defaults, each overridable.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct StripeLimits {
    /// The account-wide rate (live 100/s, sandbox 25/s).
    pub global: Rate,
    /// The default per-endpoint rate (25/s).
    pub endpoint: Rate,
    /// Per-operation rates replacing the default (none by default).
    pub overrides: HashMap<&'static str, Rate>,
    /// The older read and write rates, if enforced (default: off).
    pub read_write: Option<(Rate, Rate)>,
}

impl StripeLimits {
    /// The documented limits for `mode`.
    pub fn new(mode: Mode) -> Self {
        let global = match mode {
            Mode::Live => Rate::per_second(100),
            Mode::Sandbox => Rate::per_second(25),
        };
        Self {
            global,
            endpoint: Rate::per_second(25),
            overrides: HashMap::new(),
            read_write: None,
        }
    }

    /// The documented limits for the mode of `key` ([`Mode::from_key`]).
    pub fn for_key(key: &str) -> Self {
        Self::new(Mode::from_key(key))
    }

    /// These limits with another global rate.
    pub fn global(mut self, rate: Rate) -> Self {
        self.global = rate;
        self
    }

    /// These limits with another default per-endpoint rate.
    pub fn endpoint(mut self, rate: Rate) -> Self {
        self.endpoint = rate;
        self
    }

    /// These limits with `operation` (`files.create`) at its own rate.
    pub fn endpoint_override(mut self, operation: &'static str, rate: Rate) -> Self {
        self.overrides.insert(operation, rate);
        self
    }

    /// These limits with the older read/write split enforced too (live 100 + 100, test
    /// 25 + 25 per second).
    pub fn read_write_split(mut self, read: Rate, write: Rate) -> Self {
        self.read_write = Some((read, write));
        self
    }

    /// The limiters for these budgets on `clock`: global first, then per endpoint, then the
    /// read/write pair if enabled.
    pub fn limiters(&self, clock: &SharedClock) -> Vec<Arc<dyn Limiter>> {
        let mut limiters: Vec<Arc<dyn Limiter>> = vec![
            Arc::new(gcra(self.global, GLOBAL, clock)),
            Arc::new(endpoint_limiter(
                self.endpoint,
                self.overrides.clone(),
                clock,
            )),
        ];
        if let Some((read, write)) = self.read_write {
            limiters.push(Arc::new(gcra(read, READ, clock)));
            limiters.push(Arc::new(gcra(write, WRITE, clock)));
        }
        limiters
    }
}

/// A quarter second of `rate`, at least 1.
fn burst(rate: Rate) -> u64 {
    let per_second = u128::from(rate.amount())
        .saturating_mul(1_000_000_000)
        .checked_div(rate.period().as_nanos())
        .unwrap_or(0);
    u64::try_from(per_second / 4).unwrap_or(u64::MAX).max(1)
}

fn gcra(rate: Rate, budget: BudgetName, clock: &SharedClock) -> GcraLimiter {
    GcraLimiter::new(rate)
        .burst(burst(rate))
        .budget(budget)
        .clock(Arc::clone(clock))
}

/// Stripe's per-endpoint budgets: one GCRA limiter per operation, created on first use, as a
/// [`KeyedLimiter`] owning the `stripe.endpoint:<operation>` budgets.
///
/// Every operation runs at `default` (Stripe: 25/s, burst a quarter second) unless `overrides`
/// names it. A snapshot of [`ENDPOINT`] (a 429 with `endpoint-rate`) pauses every operation
/// admitted during the last second; a snapshot of one operation's budget pauses that one.
pub fn endpoint_limiter(
    default: Rate,
    overrides: HashMap<&'static str, Rate>,
    clock: &SharedClock,
) -> KeyedLimiter {
    let member_clock = Arc::clone(clock);
    KeyedLimiter::new(ENDPOINT_PREFIX, move |name: &BudgetName| {
        let operation = name
            .as_str()
            .strip_prefix(ENDPOINT_PREFIX)
            .unwrap_or_default();
        let rate = overrides.get(operation).copied().unwrap_or(default);
        Arc::new(gcra(rate, name.clone(), &member_clock)) as Arc<dyn Limiter>
    })
    .broadcast(ENDPOINT)
    .clock(Arc::clone(clock))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratewise_core::clock::{Clock, ManualClock, TokioClock};
    use ratewise_core::limit::{Cost, QuotaSnapshot};
    use std::time::Duration;

    fn cost(operation: &str) -> Cost {
        Cost::none().with(GLOBAL, 1).with(endpoint(operation), 1)
    }

    #[test]
    fn the_mode_comes_from_the_key_prefix_and_unknown_keys_get_the_stricter_limits() {
        assert_eq!(Mode::from_key("sk_live_abc"), Mode::Live);
        assert_eq!(Mode::from_key("rk_live_abc"), Mode::Live);
        assert_eq!(Mode::from_key("sk_test_abc"), Mode::Sandbox);
        assert_eq!(Mode::from_key("rk_test_abc"), Mode::Sandbox);
        assert_eq!(Mode::from_key("whsec_abc"), Mode::Sandbox);
        assert_eq!(
            StripeLimits::for_key("sk_live_x").global,
            Rate::per_second(100)
        );
        assert_eq!(
            StripeLimits::for_key("sk_test_x").global,
            Rate::per_second(25)
        );
        assert_eq!(
            StripeLimits::for_key("sk_test_x").endpoint,
            Rate::per_second(25)
        );
    }

    #[test]
    fn bursts_are_a_quarter_second_of_the_rate() {
        assert_eq!(burst(Rate::per_second(100)), 25);
        assert_eq!(burst(Rate::per_second(25)), 6);
        assert_eq!(burst(Rate::per_minute(60)), 1);
        assert_eq!(burst(Rate::per_second(0)), 1);
    }

    #[test]
    fn each_operation_has_its_own_budget() {
        let clock = ManualClock::new();
        let limiter = endpoint_limiter(Rate::per_second(4), HashMap::new(), &clock.shared());
        // Burst 1 per operation: a second create waits, a retrieve does not.
        let _a = limiter
            .try_acquire(&cost("payment_intents.create"))
            .unwrap();
        assert!(
            limiter
                .try_acquire(&cost("payment_intents.create"))
                .is_err()
        );
        let _b = limiter.try_acquire(&cost("customers.retrieve")).unwrap();
        assert_eq!(limiter.len(), 2);
        clock.advance(Duration::from_millis(250));
        let _c = limiter
            .try_acquire(&cost("payment_intents.create"))
            .unwrap();
    }

    #[test]
    fn an_override_gives_one_operation_its_own_rate() {
        let clock = ManualClock::new();
        let mut overrides = HashMap::new();
        overrides.insert("files.create", Rate::per_second(400));
        let limiter = endpoint_limiter(Rate::per_second(4), overrides, &clock.shared());
        for _ in 0..100 {
            let _ = limiter.try_acquire(&cost("files.create")).unwrap();
        }
        assert!(limiter.try_acquire(&cost("files.create")).is_err());
    }

    #[test]
    fn a_cost_without_endpoint_budgets_passes_untouched() {
        let limiter = endpoint_limiter(Rate::per_second(1), HashMap::new(), &TokioClock::shared());
        for _ in 0..10 {
            let _ = limiter.try_acquire(&Cost::request()).unwrap();
        }
        assert!(limiter.is_empty());
    }

    #[test]
    fn an_endpoint_throttle_pauses_the_endpoints_active_in_the_last_second_only() {
        let clock = ManualClock::new();
        let limiter = endpoint_limiter(Rate::per_second(100), HashMap::new(), &clock.shared());
        let _ = limiter.try_acquire(&cost("old.op")).unwrap();
        clock.advance(Duration::from_secs(5));
        let _ = limiter.try_acquire(&cost("hot.op")).unwrap();
        let now = clock.now();
        limiter.observe(&QuotaSnapshot::new(
            ENDPOINT,
            0,
            now + Duration::from_secs(1),
            now,
        ));
        assert!(limiter.try_acquire(&cost("hot.op")).is_err(), "paused");
        let _ = limiter.try_acquire(&cost("old.op")).unwrap();
        clock.advance(Duration::from_secs(1));
        let _ = limiter.try_acquire(&cost("hot.op")).unwrap();
    }

    #[test]
    fn the_limiters_enforce_global_endpoint_and_optionally_read_write() {
        let clock = ManualClock::new().shared();
        assert_eq!(StripeLimits::new(Mode::Live).limiters(&clock).len(), 2);
        let split = StripeLimits::new(Mode::Live)
            .read_write_split(Rate::per_second(100), Rate::per_second(100))
            .limiters(&clock);
        assert_eq!(split.len(), 4);
        // Sandbox global: burst 6, so the 7th call across different endpoints waits.
        let limiters = StripeLimits::new(Mode::Sandbox).limiters(&clock);
        let global = limiters.first().unwrap();
        for i in 0..6 {
            let _ = global
                .try_acquire(&cost(["a", "b", "c", "d", "e", "f"][i]))
                .unwrap();
        }
        assert!(global.try_acquire(&cost("g")).is_err());
    }
}
