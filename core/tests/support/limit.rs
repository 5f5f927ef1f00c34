//! Shared harness of the limiter property tests: many clients in virtual time.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use proptest::prelude::*;
use ratewise_core::clock::{Clock, TokioClock};
use ratewise_core::limit::{Cost, Limiter};

/// One simulated caller.
#[derive(Clone, Debug)]
pub struct Client {
    /// When it calls `acquire`, from the start (whole milliseconds keep timers exact).
    pub arrive_ms: u64,
    /// What the call costs.
    pub cost: Cost,
    /// The caller's `max_wait`.
    pub max_wait_ms: u64,
    /// When set, the caller gives up (drops the acquire future) after this long.
    pub cancel_after_ms: Option<u64>,
    /// How long the admitted call holds its permit.
    pub hold_ms: u64,
}

/// What happened to one caller.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub client: Client,
    /// Milliseconds from the start at which it arrived.
    pub arrived: Duration,
    /// When it was admitted, if it was.
    pub admitted: Option<Duration>,
    /// When it was refused, if it was.
    pub refused: Option<Duration>,
}

/// A current-thread runtime with paused (virtual) time.
pub fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
}

/// Runs every client against `limiter` concurrently and returns their outcomes.
pub async fn run(limiter: Arc<dyn Limiter>, clients: Vec<Client>) -> Vec<Outcome> {
    let clock = TokioClock::new();
    let start = clock.now();
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for client in clients {
        let (limiter, outcomes, clock) = (limiter.clone(), outcomes.clone(), clock.clone());
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(client.arrive_ms)).await;
            let arrived = clock.now() - start;
            let acquire = limiter.acquire(&client.cost, Duration::from_millis(client.max_wait_ms));
            let result = match client.cancel_after_ms {
                Some(ms) => tokio::time::timeout(Duration::from_millis(ms), acquire)
                    .await
                    .ok(),
                None => Some(acquire.await),
            };
            let mut outcome = Outcome {
                client: client.clone(),
                arrived,
                admitted: None,
                refused: None,
            };
            match result {
                Some(Ok(permit)) => {
                    outcome.admitted = Some(clock.now() - start);
                    outcomes.lock().unwrap().push(outcome);
                    tokio::time::sleep(Duration::from_millis(client.hold_ms)).await;
                    drop(permit);
                }
                Some(Err(_)) => {
                    outcome.refused = Some(clock.now() - start);
                    outcomes.lock().unwrap().push(outcome);
                }
                None => outcomes.lock().unwrap().push(outcome),
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    outcomes.lock().unwrap().clone()
}

/// The most of `budget` admitted in any half-open span `[t, t + window)`.
pub fn max_in_any_window(outcomes: &[Outcome], budget: &'static str, window: Duration) -> u64 {
    let budget = ratewise_core::limit::BudgetName::from_static(budget);
    let admitted: Vec<(Duration, u64)> = outcomes
        .iter()
        .filter_map(|o| o.admitted.map(|t| (t, o.client.cost.amount(&budget))))
        .collect();
    admitted
        .iter()
        .map(|(start, _)| {
            admitted
                .iter()
                .filter(|(t, _)| t >= start && *t < *start + window)
                .map(|(_, a)| a)
                .sum::<u64>()
        })
        .max()
        .unwrap_or(0)
}

/// Waiting callers are served in arrival order: one that arrived strictly earlier is admitted
/// no later than one that arrived after it.
pub fn assert_served_in_arrival_order(outcomes: &[Outcome]) {
    let admitted: Vec<&Outcome> = outcomes.iter().filter(|o| o.admitted.is_some()).collect();
    for a in &admitted {
        for b in &admitted {
            if a.arrived < b.arrived {
                assert!(
                    a.admitted <= b.admitted,
                    "{a:?} arrived before {b:?} but was admitted later"
                );
            }
        }
    }
}

/// A predictable refusal comes at once, without sleeping first.
pub fn assert_refusals_are_immediate(outcomes: &[Outcome]) {
    for o in outcomes {
        if let Some(refused) = o.refused {
            assert_eq!(refused, o.arrived, "{o:?} slept before being refused");
        }
    }
}

/// Clients of the `requests` budget with costs in `1..=max_cost`.
pub fn clients(max_cost: u64, count: usize) -> impl Strategy<Value = Vec<Client>> {
    prop::collection::vec(
        (
            0_u64..2_000,
            1..=max_cost,
            prop_oneof![Just(0_u64), 0_u64..500, Just(60_000_u64)],
            prop::option::weighted(0.3, 0_u64..1_500),
            0_u64..300,
        ),
        1..count,
    )
    .prop_map(|raw| {
        raw.into_iter()
            .map(
                |(arrive_ms, amount, max_wait_ms, cancel_after_ms, hold_ms)| Client {
                    arrive_ms,
                    cost: Cost::none().with("requests", amount),
                    max_wait_ms,
                    cancel_after_ms,
                    hold_ms,
                },
            )
            .collect()
    })
}

/// Nobody waits longer than its `max_wait` before being refused.
pub fn assert_refusals_within_max_wait(outcomes: &[Outcome]) {
    for o in outcomes {
        if let Some(refused) = o.refused {
            let max_wait = Duration::from_millis(o.client.max_wait_ms);
            assert!(
                refused <= o.arrived + max_wait,
                "{o:?} waited past its max_wait"
            );
        }
    }
}
