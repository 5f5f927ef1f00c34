//! A family of limiters, one per key, created on first use.
//!
//! Many providers limit per *something* that is only known at run time: Stripe per endpoint,
//! Twilio per sending number, GitHub per resource (`core`, `search`, … learned from
//! `x-ratelimit-resource`), SendGrid per endpoint. A [`KeyedLimiter`] owns every budget whose
//! name starts with its prefix (`twilio.sender:+15005550006`), and keeps one member limiter per
//! such budget, built by a factory the first time a [`Cost`] charges it or a
//! [`QuotaSnapshot`] reports it.
//!
//! # Broadcast signals
//!
//! Some throttle responses name a family but not the member (Stripe's
//! `Stripe-Rate-Limited-Reason: endpoint-rate` does not say which endpoint). A snapshot of the
//! family's *broadcast* budget ([`KeyedLimiter::broadcast`]) is applied to every member admitted
//! during the last second: it errs slow for the few keys active just then rather than missing
//! the right one.
//!
//! # Bounded
//!
//! At most [`max_keys`](KeyedLimiter::max_keys) members are kept (default 10,000); past it, the
//! member used least recently is forgotten (its state starts afresh if the key returns).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{
    BudgetName, CompositeLimiter, Cost, Feedback, Limiter, Permit, QuotaSnapshot, Throttled,
};
use crate::clock::{SharedClock, TokioClock};

/// Builds the member limiter of one budget of the family. The limiter must charge that budget
/// (e.g. `GcraLimiter::new(rate).budget(name.clone())`).
pub type MemberFactory = Arc<dyn Fn(&BudgetName) -> Arc<dyn Limiter> + Send + Sync>;

/// The default bound on members: 10,000.
pub const DEFAULT_MAX_KEYS: usize = 10_000;

/// How far back an admission counts as "active" for a broadcast signal.
const RECENT: Duration = Duration::from_secs(1);

/// One limiter per budget of a family (`<prefix><key>`), created on first use.
///
/// ```
/// use std::sync::Arc;
/// use ratewise_core::limit::{BudgetName, Cost, GcraLimiter, KeyedLimiter, Limiter, Rate};
///
/// // Twilio-style: one message per second per sending number.
/// let senders = KeyedLimiter::new("sender:", |name: &BudgetName| {
///     Arc::new(GcraLimiter::new(Rate::per_second(1)).budget(name.clone())) as Arc<dyn Limiter>
/// });
/// let cost = Cost::none().with(BudgetName::new("sender:+15005550006"), 1);
/// let _permit = senders.try_acquire(&cost).unwrap();
/// assert!(senders.try_acquire(&cost).is_err());
/// let other = Cost::none().with(BudgetName::new("sender:+15005550007"), 1);
/// let _permit = senders.try_acquire(&other).unwrap();
/// ```
pub struct KeyedLimiter {
    prefix: String,
    factory: MemberFactory,
    broadcast: Option<BudgetName>,
    max_keys: usize,
    clock: SharedClock,
    members: Mutex<HashMap<BudgetName, Member>>,
}

struct Member {
    limiter: Arc<dyn Limiter>,
    last_admitted: Option<Instant>,
    last_used: Instant,
}

impl KeyedLimiter {
    /// A family owning every budget named `<prefix>…`, each member built by `factory`.
    pub fn new(
        prefix: impl Into<String>,
        factory: impl Fn(&BudgetName) -> Arc<dyn Limiter> + Send + Sync + 'static,
    ) -> Self {
        Self {
            prefix: prefix.into(),
            factory: Arc::new(factory),
            broadcast: None,
            max_keys: DEFAULT_MAX_KEYS,
            clock: TokioClock::shared(),
            members: Mutex::new(HashMap::new()),
        }
    }

    /// A snapshot of `budget` applies to every member admitted during the last second (see the
    /// [module docs](self)).
    pub fn broadcast(mut self, budget: BudgetName) -> Self {
        self.broadcast = Some(budget);
        self
    }

    /// Keeps at most `max_keys` members (at least 1; default [`DEFAULT_MAX_KEYS`]).
    pub fn max_keys(mut self, max_keys: usize) -> Self {
        self.max_keys = max_keys.max(1);
        self
    }

    /// The clock (default [`TokioClock`]): recency of admissions, and the composite's waits.
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// The prefix of the budgets this family owns.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// True when `budget` belongs to this family.
    pub fn owns(&self, budget: &BudgetName) -> bool {
        budget.as_str().starts_with(&self.prefix)
    }

    /// The member limiter of `budget`, if it exists.
    pub fn member(&self, budget: &BudgetName) -> Option<Arc<dyn Limiter>> {
        self.lock().get(budget).map(|m| Arc::clone(&m.limiter))
    }

    /// The number of members held.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True before any member was created.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<BudgetName, Member>> {
        self.members.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The member of `name`, created if new; the caller holds the lock.
    fn entry<'a>(
        &self,
        members: &'a mut HashMap<BudgetName, Member>,
        name: &BudgetName,
        now: Instant,
    ) -> &'a mut Member {
        if !members.contains_key(name) && members.len() >= self.max_keys {
            let oldest = members
                .iter()
                .min_by_key(|(_, m)| m.last_used)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                members.remove(&oldest);
            }
        }
        let member = members.entry(name.clone()).or_insert_with(|| Member {
            limiter: (self.factory)(name),
            last_admitted: None,
            last_used: now,
        });
        member.last_used = now;
        member
    }

    /// The members `cost` charges, created if new.
    fn charged(&self, cost: &Cost) -> Vec<(BudgetName, Arc<dyn Limiter>)> {
        let mut found = Vec::new();
        let mut members = None;
        for (name, amount) in cost.iter() {
            if amount == 0 || !self.owns(name) {
                continue;
            }
            let members = members.get_or_insert_with(|| (self.lock(), self.clock.now()));
            let (map, now) = (&mut members.0, members.1);
            let member = self.entry(map, name, now);
            found.push((name.clone(), Arc::clone(&member.limiter)));
        }
        found
    }

    fn admitted(&self, charged: &[(BudgetName, Arc<dyn Limiter>)]) {
        let now = self.clock.now();
        let mut members = self.lock();
        for (name, _) in charged {
            if let Some(member) = members.get_mut(name) {
                member.last_admitted = Some(now);
            }
        }
    }

    fn composite(&self, charged: &[(BudgetName, Arc<dyn Limiter>)]) -> CompositeLimiter {
        charged.iter().fold(
            CompositeLimiter::new().clock(Arc::clone(&self.clock)),
            |c, (_, l)| c.with(Arc::clone(l)),
        )
    }
}

impl fmt::Debug for KeyedLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedLimiter")
            .field("prefix", &self.prefix)
            .field("broadcast", &self.broadcast)
            .field("members", &self.len())
            .field("max_keys", &self.max_keys)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Limiter for KeyedLimiter {
    fn try_acquire(&self, cost: &Cost) -> Result<Permit, Throttled> {
        let charged = self.charged(cost);
        let permit = match charged.as_slice() {
            [] => return Ok(Permit::empty()),
            [(_, one)] => one.try_acquire(cost)?,
            _ => self.composite(&charged).try_acquire(cost)?,
        };
        self.admitted(&charged);
        Ok(permit)
    }

    async fn acquire(&self, cost: &Cost, max_wait: Duration) -> Result<Permit, Throttled> {
        let charged = self.charged(cost);
        let permit = match charged.as_slice() {
            [] => return Ok(Permit::empty()),
            [(_, one)] => one.acquire(cost, max_wait).await?,
            _ => self.composite(&charged).acquire(cost, max_wait).await?,
        };
        self.admitted(&charged);
        Ok(permit)
    }

    fn observe(&self, snapshot: &QuotaSnapshot) {
        if self.broadcast.as_ref() == Some(&snapshot.budget) {
            let since = snapshot.observed_at.checked_sub(RECENT);
            let recent: Vec<(BudgetName, Arc<dyn Limiter>)> = self
                .lock()
                .iter()
                .filter(|(_, m)| {
                    m.last_admitted
                        .is_some_and(|t| since.is_none_or(|s| t >= s))
                })
                .map(|(name, m)| (name.clone(), Arc::clone(&m.limiter)))
                .collect();
            for (name, limiter) in recent {
                let mut own = snapshot.clone();
                own.budget = name;
                limiter.observe(&own);
            }
        } else if self.owns(&snapshot.budget) {
            let limiter = {
                let mut members = self.lock();
                let now = self.clock.now();
                Arc::clone(&self.entry(&mut members, &snapshot.budget, now).limiter)
            };
            limiter.observe(snapshot);
        }
    }

    fn feedback(&self, feedback: Feedback) {
        let members: Vec<Arc<dyn Limiter>> = self
            .lock()
            .values()
            .map(|m| Arc::clone(&m.limiter))
            .collect();
        for limiter in members {
            limiter.feedback(feedback);
        }
    }

    fn reconcile(&self, reserved: &Cost, actual: &Cost) {
        for (_, limiter) in self.charged(reserved) {
            limiter.reconcile(reserved, actual);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};
    use crate::limit::{GcraLimiter, QuotaPacer, Rate};

    fn gcra_family(clock: &SharedClock, per_second: u64) -> KeyedLimiter {
        let member_clock = Arc::clone(clock);
        KeyedLimiter::new("op:", move |name: &BudgetName| {
            Arc::new(
                GcraLimiter::new(Rate::per_second(per_second))
                    .burst(1)
                    .budget(name.clone())
                    .clock(Arc::clone(&member_clock)),
            ) as Arc<dyn Limiter>
        })
        .clock(Arc::clone(clock))
    }

    fn cost(key: &str) -> Cost {
        Cost::request().with(BudgetName::new(format!("op:{key}")), 1)
    }

    #[test]
    fn each_key_has_its_own_budget_and_others_pass_untouched() {
        let clock = ManualClock::new().shared();
        let family = gcra_family(&clock, 1);
        let _a = family.try_acquire(&cost("a")).unwrap();
        assert!(family.try_acquire(&cost("a")).is_err());
        let _b = family.try_acquire(&cost("b")).unwrap();
        for _ in 0..10 {
            let _ = family.try_acquire(&Cost::request()).unwrap();
        }
        assert_eq!(family.len(), 2);
    }

    #[test]
    fn a_cost_charging_two_members_is_all_or_nothing() {
        let clock = ManualClock::new().shared();
        let family = gcra_family(&clock, 1);
        let _a = family.try_acquire(&cost("a")).unwrap();
        let both = Cost::none()
            .with(BudgetName::new("op:a"), 1)
            .with(BudgetName::new("op:b"), 1);
        assert!(family.try_acquire(&both).is_err());
        // b was refunded: it still admits one.
        let _b = family.try_acquire(&cost("b")).unwrap();
    }

    #[test]
    fn members_are_bounded_forgetting_the_least_recently_used() {
        let clock = ManualClock::new();
        let family = gcra_family(&clock.shared(), 1).max_keys(2);
        let _ = family.try_acquire(&cost("a")).unwrap();
        clock.advance(Duration::from_millis(1));
        let _ = family.try_acquire(&cost("b")).unwrap();
        clock.advance(Duration::from_millis(1));
        let _ = family.try_acquire(&cost("c")).unwrap();
        assert_eq!(family.len(), 2);
        assert!(family.member(&BudgetName::new("op:a")).is_none());
        assert!(family.member(&BudgetName::new("op:c")).is_some());
    }

    #[test]
    fn a_snapshot_of_an_unseen_key_creates_its_member() {
        let clock = ManualClock::new();
        let shared = clock.shared();
        let member_clock = Arc::clone(&shared);
        let family = KeyedLimiter::new("github.", move |name: &BudgetName| {
            Arc::new(QuotaPacer::new(name.clone()).clock(Arc::clone(&member_clock)))
                as Arc<dyn Limiter>
        })
        .clock(shared);
        let now = clock.now();
        let search = BudgetName::new("github.search");
        family.observe(&QuotaSnapshot::new(
            search.clone(),
            0,
            now + Duration::from_secs(30),
            now,
        ));
        assert_eq!(family.len(), 1);
        let refused = family
            .try_acquire(&Cost::none().with(search.clone(), 1))
            .unwrap_err();
        assert_eq!(refused.budget, search);
        let _core = family
            .try_acquire(&Cost::none().with(BudgetName::new("github.core"), 1))
            .unwrap();
    }

    #[test]
    fn a_broadcast_pauses_only_the_members_active_in_the_last_second() {
        let clock = ManualClock::new();
        let family = gcra_family(&clock.shared(), 100).broadcast(BudgetName::new("op"));
        let _ = family.try_acquire(&cost("old")).unwrap();
        clock.advance(Duration::from_secs(5));
        let _ = family.try_acquire(&cost("hot")).unwrap();
        let now = clock.now();
        family.observe(&QuotaSnapshot::new(
            BudgetName::new("op"),
            0,
            now + Duration::from_secs(1),
            now,
        ));
        assert!(family.try_acquire(&cost("hot")).is_err(), "paused");
        let _ = family.try_acquire(&cost("old")).unwrap();
        clock.advance(Duration::from_secs(1));
        let _ = family.try_acquire(&cost("hot")).unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn acquire_waits_on_the_member() {
        let clock = TokioClock::shared();
        let family = gcra_family(&clock, 10);
        let start = clock.now();
        for _ in 0..3 {
            let _ = family
                .acquire(&cost("a"), Duration::from_secs(1))
                .await
                .unwrap();
        }
        assert!(clock.now() - start >= Duration::from_millis(200));
        let refused = family
            .acquire(&cost("a"), Duration::from_millis(10))
            .await
            .unwrap_err();
        assert!(refused.until.is_some());
    }
}
