//! Property tests: random sequences of admit / record / drop / advance / open-until, alone and
//! from concurrent threads, never over-admit half-open probes and never wedge the breaker.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::clock::{Clock, ManualClock};

#[derive(Clone, Debug)]
enum Op {
    Admit,
    Record(usize, Outcome),
    Drop(usize),
    Advance(u64),
    OpenUntil(u64),
    State,
}

fn outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        Just(Outcome::Success),
        Just(Outcome::Failure),
        Just(Outcome::Ignored)
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::Admit),
        4 => (any::<usize>(), outcome()).prop_map(|(i, o)| Op::Record(i, o)),
        1 => any::<usize>().prop_map(Op::Drop),
        2 => (0u64..4_000).prop_map(Op::Advance),
        1 => (0u64..5_000).prop_map(Op::OpenUntil),
        1 => Just(Op::State),
    ]
}

fn config(probes: u32, min_calls: u32, slow: bool) -> BreakerConfig {
    BreakerConfig::default()
        .window(Duration::from_secs(2))
        .buckets(4)
        .min_calls(min_calls)
        .open_for(Duration::from_secs(3))
        .half_open_probes(probes)
        .slow_call(slow.then_some(Duration::from_millis(1500)))
}

fn apply<'a>(
    breaker: &'a CircuitBreaker,
    clock: &ManualClock,
    held: &mut Vec<BreakerPermit<'a>>,
    op: &Op,
) {
    match op {
        Op::Admit => {
            if let Ok(permit) = breaker.admit() {
                held.push(permit);
            }
        }
        Op::Record(i, outcome) => {
            if !held.is_empty() {
                let permit = held.swap_remove(i % held.len());
                permit.record(*outcome);
            }
        }
        Op::Drop(i) => {
            if !held.is_empty() {
                drop(held.swap_remove(i % held.len()));
            }
        }
        Op::Advance(ms) => clock.advance(Duration::from_millis(*ms)),
        Op::OpenUntil(ms) => breaker.open_until(clock.now() + Duration::from_millis(*ms)),
        Op::State => {
            let _ = breaker.state();
        }
    }
}

/// After every permit is gone and the longest open period (3 s, or 5 s from `OpenUntil`) has
/// passed, a call is admitted.
fn assert_not_wedged(breaker: &CircuitBreaker, clock: &ManualClock) {
    clock.advance(Duration::from_secs(5));
    let state = breaker.state();
    assert!(
        matches!(state, BreakerState::Closed | BreakerState::HalfOpen),
        "{state:?}"
    );
    assert!(breaker.admit().is_ok(), "wedged in {state:?}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn sequential_histories_keep_probe_accounting_exact_and_never_wedge(
        probes in 1u32..4,
        min_calls in 1u32..6,
        slow in any::<bool>(),
        ops in proptest::collection::vec(op(), 1..120),
    ) {
        let clock = ManualClock::new();
        let breaker = CircuitBreaker::new(config(probes, min_calls, slow), clock.shared());
        let mut held = Vec::new();
        for op in &ops {
            apply(&breaker, &clock, &mut held, op);
            let word = breaker.inner.state.load(Ordering::Acquire);
            let ctl = breaker.inner.lock();
            if word & KIND_MASK == HALF_OPEN {
                let live = held
                    .iter()
                    .filter(|p| p.is_probe() && p.generation() == word >> 2)
                    .count();
                prop_assert_eq!(ctl.in_flight as usize, live);
                prop_assert!(ctl.in_flight + ctl.successes <= probes);
            } else {
                prop_assert_eq!(ctl.in_flight, 0);
            }
        }
        held.clear();
        assert_not_wedged(&breaker, &clock);
    }

}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn concurrent_histories_never_over_admit_probes_and_never_wedge(
        probes in 1u32..3,
        threads in proptest::collection::vec(proptest::collection::vec(op(), 1..60), 2..4),
    ) {
        let clock = ManualClock::new();
        let breaker = CircuitBreaker::new(config(probes, 2, false), clock.shared());
        // Live probe permits per half-open period (generation), counted by the test itself.
        let live: Mutex<HashMap<u64, u32>> = Mutex::new(HashMap::new());
        std::thread::scope(|s| {
            for ops in &threads {
                let (breaker, clock, live) = (&breaker, &clock, &live);
                s.spawn(move || {
                    let mut held: Vec<BreakerPermit> = Vec::new();
                    for op in ops {
                        // Before a probe's slot can be freed, take it out of the live count.
                        let leaving = match op {
                            Op::Record(i, _) | Op::Drop(i) if !held.is_empty() => {
                                held.get(i % held.len()).filter(|p| p.is_probe()).map(|p| p.generation())
                            }
                            _ => None,
                        };
                        if let Some(generation) = leaving {
                            let mut live = live.lock().unwrap();
                            *live.entry(generation).or_default() -= 1;
                        }
                        let before = held.len();
                        apply(breaker, clock, &mut held, op);
                        if held.len() > before {
                            let permit = held.last().unwrap();
                            if permit.is_probe() {
                                let mut live = live.lock().unwrap();
                                let n = live.entry(permit.generation()).or_default();
                                *n += 1;
                                assert!(*n <= probes, "{n} probes in flight, limit {probes}");
                            }
                        }
                    }
                    let mut live = live.lock().unwrap();
                    for permit in held.drain(..) {
                        if permit.is_probe() {
                            *live.entry(permit.generation()).or_default() -= 1;
                        }
                    }
                });
            }
        });
        assert_not_wedged(&breaker, &clock);
    }
}
