//! Twilio's budgets: the account's API concurrency and each sender's segment throughput.
//!
//! # The numbers
//!
//! - **Account concurrency**: requests in flight to the REST API. Twilio answers 429 with
//!   error 20429 past it; third parties put it at 100 (unverified), so the default is
//!   **100**, configurable ([`TwilioLimits::concurrency`]).
//! - **Per sender**: segments per second by [`SenderType`] (long code 1, toll-free 3, short
//!   code 100), inferred from the `From` number, overridable per number by type
//!   ([`TwilioLimits::sender_type`]) or by rate ([`TwilioLimits::sender_rate`]).
//!
//! # How a call is charged
//!
//! Every call costs one `twilio.concurrency` slot, held while it is in flight. A message create
//! also costs its segment count ([`segments::count`](crate::segments::count); an MMS is one)
//! against `twilio.sender:<From>`, kept by a [`KeyedLimiter`] with one GCRA member per sender,
//! created on first use. A Messaging Service (no `From`) picks its own senders: it is charged
//! no sender budget.
//!
//! # Bursts
//!
//! Each sender's bucket admits a burst of `max(1 s of its rate, 10 segments)`
//! ([`DEFAULT_SENDER_BURST`]) then paces at its rate: Twilio's queue absorbs a short burst (it
//! holds hours), and a burst of at least 10 lets a multi-segment message through on a 1/s long
//! code. A message longer than the burst is charged the whole burst.

use std::collections::HashMap;
use std::sync::Arc;

use ratewise_core::clock::SharedClock;
use ratewise_core::limit::{
    BudgetName, ConcurrencyLimiter, GcraLimiter, KeyedLimiter, Limiter, Rate,
};

use crate::sender::SenderType;

/// Requests in flight for the account.
pub const CONCURRENCY: BudgetName = BudgetName::from_static("twilio.concurrency");

/// The prefix of the per-sender budgets (`twilio.sender:+15005550006`).
pub const SENDER_PREFIX: &str = "twilio.sender:";

/// Twilio's default account concurrency: 100 requests in flight (unverified; see the module
/// docs).
pub const DEFAULT_CONCURRENCY: u64 = 100;

/// The smallest burst of a sender's bucket, in segments: 10.
pub const DEFAULT_SENDER_BURST: u64 = 10;

/// The budget of one sender: `twilio.sender:<from>`.
pub fn sender(from: &str) -> BudgetName {
    BudgetName::new(format!("{SENDER_PREFIX}{}", from.trim()))
}

/// Twilio's budgets as limiters: documented defaults, each overridable.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TwilioLimits {
    /// Requests in flight for the account (default 100).
    pub concurrency: u64,
    /// Segments per second by sender type (default [`SenderType::default_rate`]).
    pub rates: HashMap<SenderType, Rate>,
    /// Sender types that the number does not reveal, by `From` value.
    pub types: HashMap<String, SenderType>,
    /// Rates for particular senders (a high-throughput toll-free number), by `From` value.
    pub sender_rates: HashMap<String, Rate>,
    /// The smallest burst of a sender's bucket, in segments (default 10).
    pub min_burst: u64,
}

impl Default for TwilioLimits {
    fn default() -> Self {
        Self::new()
    }
}

impl TwilioLimits {
    /// The documented defaults.
    pub fn new() -> Self {
        Self {
            concurrency: DEFAULT_CONCURRENCY,
            rates: HashMap::new(),
            types: HashMap::new(),
            sender_rates: HashMap::new(),
            min_burst: DEFAULT_SENDER_BURST,
        }
    }

    /// These limits with another account concurrency (at least 1).
    pub fn concurrency(mut self, limit: u64) -> Self {
        self.concurrency = limit.max(1);
        self
    }

    /// These limits with every sender of `kind` at `rate` segments.
    pub fn type_rate(mut self, kind: SenderType, rate: Rate) -> Self {
        self.rates.insert(kind, rate);
        self
    }

    /// These limits treating `from` as a sender of `kind`, whatever its number looks like.
    pub fn sender_type(mut self, from: impl Into<String>, kind: SenderType) -> Self {
        self.types.insert(from.into().trim().to_owned(), kind);
        self
    }

    /// These limits pacing `from` at `rate` segments (e.g. a toll-free number upgraded to
    /// 25 MPS).
    pub fn sender_rate(mut self, from: impl Into<String>, rate: Rate) -> Self {
        self.sender_rates
            .insert(from.into().trim().to_owned(), rate);
        self
    }

    /// These limits with another smallest sender burst (at least 1 segment).
    pub fn min_burst(mut self, segments: u64) -> Self {
        self.min_burst = segments.max(1);
        self
    }

    /// The type of `from`: its override, else inferred from the number.
    pub fn type_of(&self, from: &str) -> SenderType {
        self.types
            .get(from.trim())
            .copied()
            .unwrap_or_else(|| SenderType::infer(from))
    }

    /// The rate `from` is paced at, in segments.
    pub fn rate_of(&self, from: &str) -> Rate {
        if let Some(rate) = self.sender_rates.get(from.trim()) {
            return *rate;
        }
        let kind = self.type_of(from);
        self.rates
            .get(&kind)
            .copied()
            .unwrap_or_else(|| kind.default_rate())
    }

    /// The burst of `from`'s bucket: one second of its rate, at least [`Self::min_burst`].
    pub fn burst_of(&self, from: &str) -> u64 {
        let rate = self.rate_of(from);
        let per_second = u128::from(rate.amount())
            .saturating_mul(1_000_000_000)
            .checked_div(rate.period().as_nanos())
            .unwrap_or(0);
        u64::try_from(per_second)
            .unwrap_or(u64::MAX)
            .max(self.min_burst)
    }

    /// The limiters for these budgets on `clock`: the per-sender family first (the budget most
    /// likely to make a call wait), then the account concurrency.
    pub fn limiters(&self, clock: &SharedClock) -> Vec<Arc<dyn Limiter>> {
        vec![
            Arc::new(sender_limiter(self.clone(), clock)),
            Arc::new(
                ConcurrencyLimiter::new(self.concurrency)
                    .budget(CONCURRENCY)
                    .clock(Arc::clone(clock)),
            ),
        ]
    }
}

/// One GCRA limiter per sender, at the rate and burst [`TwilioLimits`] gives its `From`, as a
/// [`KeyedLimiter`] owning the `twilio.sender:<From>` budgets.
pub fn sender_limiter(limits: TwilioLimits, clock: &SharedClock) -> KeyedLimiter {
    let member_clock = Arc::clone(clock);
    KeyedLimiter::new(SENDER_PREFIX, move |name: &BudgetName| {
        let from = name
            .as_str()
            .strip_prefix(SENDER_PREFIX)
            .unwrap_or_default();
        Arc::new(
            GcraLimiter::new(limits.rate_of(from))
                .burst(limits.burst_of(from))
                .budget(name.clone())
                .clock(Arc::clone(&member_clock)),
        ) as Arc<dyn Limiter>
    })
    .clock(Arc::clone(clock))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratewise_core::clock::ManualClock;
    use ratewise_core::limit::Cost;
    use std::time::Duration;

    fn segments(from: &str, n: u64) -> Cost {
        Cost::none().with(sender(from), n)
    }

    #[test]
    fn rates_follow_the_inferred_type_unless_overridden() {
        let limits = TwilioLimits::new()
            .sender_type("+15005550006", SenderType::ShortCode)
            .sender_rate("+18005550100", Rate::per_second(25))
            .type_rate(SenderType::LongCode, Rate::per_second(2));
        assert_eq!(limits.rate_of("+15005550006"), Rate::per_second(100));
        assert_eq!(limits.rate_of("+18005550100"), Rate::per_second(25));
        assert_eq!(limits.rate_of("+18885550100"), Rate::per_second(3));
        assert_eq!(limits.rate_of("+14155552671"), Rate::per_second(2));
        assert_eq!(limits.burst_of("+18885550100"), 10);
        assert_eq!(limits.burst_of("+15005550006"), 100);
    }

    #[test]
    fn each_sender_is_paced_at_its_own_rate() {
        let clock = ManualClock::new();
        let limiter = sender_limiter(TwilioLimits::new(), &clock.shared());
        // Long code: a burst of 10 segments, then one per second.
        let _ = limiter.try_acquire(&segments("+14155552671", 10)).unwrap();
        assert!(limiter.try_acquire(&segments("+14155552671", 1)).is_err());
        // Another sender is unaffected.
        let _ = limiter.try_acquire(&segments("+14155552672", 3)).unwrap();
        clock.advance(Duration::from_secs(1));
        let _ = limiter.try_acquire(&segments("+14155552671", 1)).unwrap();
        assert!(limiter.try_acquire(&segments("+14155552671", 1)).is_err());
        // Short code: 100 at once.
        let _ = limiter.try_acquire(&segments("24273", 100)).unwrap();
        assert!(limiter.try_acquire(&segments("24273", 1)).is_err());
        assert_eq!(limiter.len(), 3);
    }

    #[test]
    fn concurrency_is_a_second_limiter_on_its_own_budget() {
        let clock = ManualClock::new().shared();
        let limiters = TwilioLimits::new().concurrency(2).limiters(&clock);
        let concurrency = limiters.get(1).unwrap();
        let one = Cost::none().with(CONCURRENCY, 1);
        let a = concurrency.try_acquire(&one).unwrap();
        let _b = concurrency.try_acquire(&one).unwrap();
        assert!(concurrency.try_acquire(&one).is_err());
        drop(a);
        let _c = concurrency.try_acquire(&one).unwrap();
    }
}
