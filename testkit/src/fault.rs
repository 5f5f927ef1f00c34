//! Fault injection: which requests the simulated server answers badly, and how.
//!
//! A [`FaultPlan`] is an ordered list of rules; for each request the first rule that matches
//! decides its [`Fault`]. Rules are scripted (by arrival index: "requests 100..200 get 503"; by
//! time since the upstream started: "outage from t=60s for 60s") or probabilistic, drawn from
//! the upstream's seeded RNG so the same seed gives the same sequence of faults.

use std::ops::Range;
use std::time::Duration;

use http::StatusCode;

/// What goes wrong with one request.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// The dialect's throttle response (429). With `retry_after`, it carries the hint and the
    /// rate-limit headers; without, it carries no hint at all (a bare 429).
    Throttle {
        /// The wait announced in `Retry-After`, if any.
        retry_after: Option<Duration>,
    },
    /// The dialect's throttle response as if the limit named `limit` had refused the request
    /// (no hint, nothing committed): lets a dialect answer a refusal it models by name, such as
    /// Stripe's `lock_timeout` for an object lock.
    ThrottledBy {
        /// The refusing limit's name ([`crate::ServerLimit::named`]).
        limit: std::sync::Arc<str>,
    },
    /// The dialect's server error with this status (500, 502, 503, 504); nothing is committed.
    ServerError {
        /// The status to answer with.
        status: StatusCode,
    },
    /// The request is processed normally, then its response is held back `delay` longer than
    /// the usual latency: a client with a shorter timeout gives up after the server committed.
    Slow {
        /// Extra delay before the response leaves.
        delay: Duration,
    },
    /// The request is processed and its side effect committed, then the connection is dropped
    /// without a response: the ambiguous failure.
    ResetAfterCommit,
    /// The connection is dropped before anything is processed.
    ResetBeforeCommit,
    /// The request is processed and committed, its head and the first `pieces` pieces of its
    /// body leave (pieces as its [`ChunkedBody`](crate::ChunkedBody) cuts them; a body without
    /// one is a single piece), then the connection is dropped: a stream broken part way.
    ResetMidBody {
        /// Pieces of the body sent before the break (0: the head only).
        pieces: usize,
    },
}

impl Fault {
    /// The dialect's throttle response as if the limit named `limit` had refused.
    pub fn throttled_by(limit: &str) -> Self {
        Self::ThrottledBy {
            limit: std::sync::Arc::from(limit),
        }
    }

    /// A 429 announcing `retry_after`.
    pub fn throttle(retry_after: Duration) -> Self {
        Self::Throttle {
            retry_after: Some(retry_after),
        }
    }

    /// A 429 with no hint.
    pub fn throttle_without_hint() -> Self {
        Self::Throttle { retry_after: None }
    }

    /// A server error with `status`.
    pub fn server_error(status: StatusCode) -> Self {
        Self::ServerError { status }
    }

    /// A 503 Service Unavailable.
    pub fn unavailable() -> Self {
        Self::server_error(StatusCode::SERVICE_UNAVAILABLE)
    }

    /// A response held back `delay` longer than usual.
    pub fn slow(delay: Duration) -> Self {
        Self::Slow { delay }
    }

    /// A response whose body breaks after `pieces` pieces.
    pub fn reset_mid_body(pieces: usize) -> Self {
        Self::ResetMidBody { pieces }
    }
}

/// When a rule fires.
#[derive(Clone, Debug, PartialEq)]
enum Trigger {
    Requests(Range<u64>),
    Window { from: Duration, until: Duration },
    Random(f64),
    Bursts { probability: f64, length: u64 },
}

#[derive(Clone, Debug, PartialEq)]
struct Rule {
    trigger: Trigger,
    fault: Fault,
}

/// An ordered list of fault rules; the first matching rule decides a request's fault.
///
/// The default plan injects nothing.
///
/// ```
/// use std::time::Duration;
/// use http::StatusCode;
/// use ratewise_testkit::{Fault, FaultPlan};
///
/// let plan = FaultPlan::new()
///     .requests(100..200, Fault::server_error(StatusCode::SERVICE_UNAVAILABLE))
///     .outage(Duration::from_secs(60), Duration::from_secs(60))
///     .random(0.05, Fault::throttle_without_hint());
/// # let _ = plan;
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FaultPlan {
    rules: Vec<Rule>,
}

impl FaultPlan {
    /// A plan that injects nothing.
    pub fn new() -> Self {
        Self::default()
    }

    fn rule(mut self, trigger: Trigger, fault: Fault) -> Self {
        self.rules.push(Rule { trigger, fault });
        self
    }

    /// Requests whose arrival index (0-based, over every request the upstream received) is in
    /// `range` get `fault`.
    pub fn requests(self, range: Range<u64>, fault: Fault) -> Self {
        self.rule(Trigger::Requests(range), fault)
    }

    /// The request with this arrival index gets `fault`.
    pub fn request(self, index: u64, fault: Fault) -> Self {
        self.requests(index..index.saturating_add(1), fault)
    }

    /// Requests arriving in `[from, from + duration)` after the upstream was built get `fault`.
    pub fn window(self, from: Duration, duration: Duration, fault: Fault) -> Self {
        let until = from.saturating_add(duration);
        self.rule(Trigger::Window { from, until }, fault)
    }

    /// A full outage: every request in `[from, from + duration)` gets a 503.
    pub fn outage(self, from: Duration, duration: Duration) -> Self {
        self.window(from, duration, Fault::unavailable())
    }

    /// Each request gets `fault` with `probability` (0.0 to 1.0), drawn from the seeded RNG.
    pub fn random(self, probability: f64, fault: Fault) -> Self {
        self.rule(Trigger::Random(probability), fault)
    }

    /// Bursts: each request outside a burst starts one with `probability`; a burst gives
    /// `fault` to `length` consecutive requests (at least 1).
    pub fn bursts(self, probability: f64, length: u64, fault: Fault) -> Self {
        self.rule(
            Trigger::Bursts {
                probability,
                length: length.max(1),
            },
            fault,
        )
    }

    /// True if the plan has no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

/// A fault plan with its run-time state (burst counters) and its seeded RNG.
#[derive(Debug)]
pub(crate) struct FaultState {
    plan: FaultPlan,
    bursts_left: Vec<u64>,
    rng: fastrand::Rng,
}

impl FaultState {
    pub(crate) fn new(plan: FaultPlan, seed: u64) -> Self {
        let bursts_left = vec![0; plan.rules.len()];
        Self {
            plan,
            bursts_left,
            rng: fastrand::Rng::with_seed(seed),
        }
    }

    /// The fault for the request with arrival index `index` arriving `elapsed` after start.
    pub(crate) fn pick(&mut self, index: u64, elapsed: Duration) -> Option<Fault> {
        for (rule, left) in self.plan.rules.iter().zip(self.bursts_left.iter_mut()) {
            let fires = match &rule.trigger {
                Trigger::Requests(range) => range.contains(&index),
                Trigger::Window { from, until } => *from <= elapsed && elapsed < *until,
                Trigger::Random(p) => self.rng.f64() < *p,
                Trigger::Bursts {
                    probability,
                    length,
                } => {
                    if *left > 0 {
                        *left = left.saturating_sub(1);
                        true
                    } else if self.rng.f64() < *probability {
                        *left = length.saturating_sub(1);
                        true
                    } else {
                        false
                    }
                }
            };
            if fires {
                return Some(rule.fault.clone());
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(plan: &FaultPlan, seed: u64, n: u64) -> Vec<Option<Fault>> {
        let mut state = FaultState::new(plan.clone(), seed);
        (0..n).map(|i| state.pick(i, Duration::ZERO)).collect()
    }

    #[test]
    fn the_first_matching_rule_wins() {
        let plan = FaultPlan::new()
            .request(1, Fault::ResetAfterCommit)
            .requests(0..3, Fault::unavailable());
        let faults = run(&plan, 0, 4);
        assert_eq!(
            faults,
            vec![
                Some(Fault::unavailable()),
                Some(Fault::ResetAfterCommit),
                Some(Fault::unavailable()),
                None
            ]
        );
    }

    #[test]
    fn a_time_window_covers_its_start_but_not_its_end() {
        let plan = FaultPlan::new().outage(Duration::from_secs(60), Duration::from_secs(60));
        let mut state = FaultState::new(plan, 0);
        assert_eq!(state.pick(0, Duration::from_millis(59_999)), None);
        assert_eq!(
            state.pick(1, Duration::from_secs(60)),
            Some(Fault::unavailable())
        );
        assert_eq!(
            state.pick(2, Duration::from_millis(119_999)),
            Some(Fault::unavailable())
        );
        assert_eq!(state.pick(3, Duration::from_secs(120)), None);
    }

    #[test]
    fn bursts_last_their_length() {
        let plan = FaultPlan::new().bursts(1.0, 3, Fault::unavailable());
        let mut state = FaultState::new(plan, 0);
        assert!((0..9).all(|i| state.pick(i, Duration::ZERO).is_some()));
        let plan = FaultPlan::new().bursts(0.02, 5, Fault::unavailable());
        let faults = run(&plan, 3, 5_000);
        let mut runs = Vec::new();
        let mut current = 0;
        for f in &faults {
            if f.is_some() {
                current += 1;
            } else if current > 0 {
                runs.push(current);
                current = 0;
            }
        }
        assert!(!runs.is_empty());
        assert!(runs.iter().all(|r| r % 5 == 0), "{runs:?}");
    }

    #[test]
    fn the_same_seed_gives_the_same_faults_and_another_seed_does_not() {
        let plan = FaultPlan::new().random(0.3, Fault::throttle_without_hint());
        let a = run(&plan, 7, 200);
        assert_eq!(a, run(&plan, 7, 200));
        assert_ne!(a, run(&plan, 8, 200));
        let hits = a.iter().filter(|f| f.is_some()).count();
        assert!((30..90).contains(&hits), "{hits} of 200 at p = 0.3");
    }
}
