//! Named budgets, what one call costs against them, and what a server says is left.
//!
//! A provider has several budgets at once (OpenAI: requests *and* tokens per minute; GitHub:
//! one hourly budget per resource plus secondary limits). A [`Cost`] names how much of each
//! budget one call spends; a [`QuotaSnapshot`] is one budget's state as reported by a response's
//! headers (`limit`, `remaining`, `reset`), which the limiters absorb.

use std::borrow::Cow;
use std::fmt;
use std::time::Instant;

/// The name of a budget: `"requests"`, `"tokens"`, `"search"`, …
///
/// Cheap to clone for the built-in names (`Cow::Borrowed`), and cheap to compare: two copies of
/// the same static name compare by address before comparing text.
#[derive(Clone, Eq, PartialOrd, Ord)]
pub struct BudgetName(Cow<'static, str>);

impl PartialEq for BudgetName {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (self.as_str(), other.as_str());
        std::ptr::eq(a, b) || a == b
    }
}

impl std::hash::Hash for BudgetName {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl BudgetName {
    /// Requests: every call spends 1.
    pub const REQUESTS: BudgetName = BudgetName(Cow::Borrowed("requests"));
    /// Tokens (OpenAI TPM): a call spends its estimated token count.
    pub const TOKENS: BudgetName = BudgetName(Cow::Borrowed("tokens"));

    /// A budget with a static name (no allocation).
    pub const fn from_static(name: &'static str) -> Self {
        Self(Cow::Borrowed(name))
    }

    /// A budget with a name computed at run time (e.g. GitHub's `x-ratelimit-resource`).
    pub fn new(name: impl Into<Cow<'static, str>>) -> Self {
        Self(name.into())
    }

    /// The name as text.
    #[inline]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for BudgetName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for BudgetName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&'static str> for BudgetName {
    fn from(name: &'static str) -> Self {
        Self::from_static(name)
    }
}

/// How much of each named budget one call spends.
///
/// `Cost::request()` is the usual "1 request"; OpenAI adds tokens:
/// `Cost::request().with(BudgetName::TOKENS, 1_350)`. A budget a cost does not name is spent by
/// 0. Amounts for the same budget add up.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Cost {
    items: Vec<(BudgetName, u64)>,
}

impl Cost {
    /// A cost that spends nothing.
    pub const fn none() -> Self {
        Self { items: Vec::new() }
    }

    /// One request.
    pub fn request() -> Self {
        Self::none().with(BudgetName::REQUESTS, 1)
    }

    /// This cost, charging one [`BudgetName::REQUESTS`] if it does not charge any yet: every
    /// HTTP request spends one request, whatever provider-specific budgets it also spends.
    pub fn counting_request(mut self) -> Self {
        if self.amount(&BudgetName::REQUESTS) == 0 {
            self.add(BudgetName::REQUESTS, 1);
        }
        self
    }

    /// This cost plus `amount` of `budget`.
    pub fn with(mut self, budget: impl Into<BudgetName>, amount: u64) -> Self {
        self.add(budget.into(), amount);
        self
    }

    /// Adds `amount` of `budget` to this cost (saturating).
    pub fn add(&mut self, budget: BudgetName, amount: u64) {
        match self.items.iter_mut().find(|(name, _)| *name == budget) {
            Some((_, a)) => *a = a.saturating_add(amount),
            None => self.items.push((budget, amount)),
        }
    }

    /// How much of `budget` this cost spends (0 if it does not name it).
    #[inline]
    pub fn amount(&self, budget: &BudgetName) -> u64 {
        // Names made from the same constant share their bytes: a limiter's hot path finds its
        // budget by address, without comparing strings or calling anything.
        for (name, amount) in &self.items {
            if std::ptr::eq(name.as_str(), budget.as_str()) {
                return *amount;
            }
        }
        self.amount_by_name(budget)
    }

    /// [`Cost::amount`], comparing the names' text.
    #[inline(never)]
    fn amount_by_name(&self, budget: &BudgetName) -> u64 {
        for (name, amount) in &self.items {
            if name == budget {
                return *amount;
            }
        }
        0
    }

    /// Every `(budget, amount)` pair.
    pub fn iter(&self) -> impl Iterator<Item = (&BudgetName, u64)> {
        self.items.iter().map(|(name, amount)| (name, *amount))
    }

    /// True when nothing is spent.
    pub fn is_empty(&self) -> bool {
        self.items.iter().all(|(_, a)| *a == 0)
    }
}

impl fmt::Debug for Cost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl fmt::Display for Cost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (name, amount) in self.iter() {
            if !first {
                f.write_str(" + ")?;
            }
            first = false;
            write!(f, "{amount} {name}")?;
        }
        if first {
            f.write_str("nothing")?;
        }
        Ok(())
    }
}

/// One budget's state as a server reported it: `limit`, `remaining`, and when it resets.
///
/// Built by a provider from its headers (`x-ratelimit-remaining-tokens: 149984`,
/// `x-ratelimit-reset-tokens: 6m0s`, …) with instants on the caller's monotonic clock.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct QuotaSnapshot {
    /// Which budget this is about.
    pub budget: BudgetName,
    /// The budget's size per window, when the server said it.
    pub limit: Option<u64>,
    /// How much is left in the current window.
    pub remaining: u64,
    /// When the window resets (or, for a rolling budget, when it is fully replenished).
    pub reset_at: Instant,
    /// When the response carrying this snapshot was received.
    pub observed_at: Instant,
}

impl QuotaSnapshot {
    /// A snapshot of `budget` with `remaining` left until `reset_at`, seen at `observed_at`.
    pub fn new(
        budget: BudgetName,
        remaining: u64,
        reset_at: Instant,
        observed_at: Instant,
    ) -> Self {
        Self {
            budget,
            limit: None,
            remaining,
            reset_at,
            observed_at,
        }
    }

    /// This snapshot with the budget's size per window.
    pub fn with_limit(mut self, limit: u64) -> Self {
        self.limit = Some(limit);
        self
    }
}

/// A cost serialises as a map from budget name to amount (`{"requests":1,"tokens":1350}`), so a
/// durable queue can store what each job spends.
impl serde::Serialize for Cost {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.items.len()))?;
        for (name, amount) in self.iter() {
            map.serialize_entry(name.as_str(), &amount)?;
        }
        map.end()
    }
}

impl<'de> serde::Deserialize<'de> for Cost {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let items = std::collections::BTreeMap::<String, u64>::deserialize(deserializer)?;
        let mut cost = Cost::none();
        for (name, amount) in items {
            cost.add(BudgetName::new(name), amount);
        }
        Ok(cost)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_adds_amounts_of_the_same_budget() {
        let cost = Cost::request()
            .with(BudgetName::TOKENS, 100)
            .with("tokens", 50)
            .with(BudgetName::REQUESTS, 1);
        assert_eq!(cost.amount(&BudgetName::REQUESTS), 2);
        assert_eq!(cost.amount(&BudgetName::TOKENS), 150);
        assert_eq!(cost.amount(&BudgetName::new("search".to_string())), 0);
        assert_eq!(cost.to_string(), "2 requests + 150 tokens");
    }

    #[test]
    fn a_cost_survives_a_serde_round_trip_as_a_map_of_budgets() {
        let cost = Cost::request().with(BudgetName::TOKENS, 1350);
        let json = serde_json::to_string(&cost).unwrap();
        assert_eq!(json, r#"{"requests":1,"tokens":1350}"#);
        let back: Cost = serde_json::from_str(&json).unwrap();
        assert_eq!(back.amount(&BudgetName::REQUESTS), 1);
        assert_eq!(back.amount(&BudgetName::TOKENS), 1350);
    }

    #[test]
    fn empty_cost_reads_as_nothing() {
        assert!(Cost::none().is_empty());
        assert_eq!(Cost::none().to_string(), "nothing");
        assert!(!Cost::request().is_empty());
    }
}
