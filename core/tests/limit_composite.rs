//! Properties of the composite limiter (requests + tokens + concurrency) under many callers.

#[path = "support/limit.rs"]
mod support;

use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use ratewise_core::limit::{
    BudgetName, CompositeLimiter, ConcurrencyLimiter, Cost, GcraLimiter, Limiter, Rate,
};
use support::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn every_budget_holds_and_nothing_leaks_when_callers_give_up(
        clients in clients(40, 60).prop_map(|clients| {
            clients
                .into_iter()
                .map(|mut c| {
                    let tokens = c.cost.amount(&BudgetName::REQUESTS);
                    c.cost = Cost::request().with(BudgetName::TOKENS, tokens);
                    c
                })
                .collect::<Vec<_>>()
        }),
        tokens_first in any::<bool>(),
    ) {
        paused_runtime().block_on(async {
            let requests = Arc::new(GcraLimiter::new(Rate::new(1, Duration::from_millis(10))).burst(3));
            let tokens = Arc::new(
                GcraLimiter::new(Rate::new(1, Duration::from_millis(1)))
                    .burst(50)
                    .budget(BudgetName::TOKENS),
            );
            let slots = Arc::new(ConcurrencyLimiter::new(4));
            let (a, b): (Arc<dyn Limiter>, Arc<dyn Limiter>) = if tokens_first {
                (tokens.clone(), requests.clone())
            } else {
                (requests.clone(), tokens.clone())
            };
            let composite = Arc::new(CompositeLimiter::new().with(a).with(b).with(slots.clone()));
            let outcomes = run(composite, clients).await;
            for window in [Duration::from_millis(1), Duration::from_millis(10), Duration::from_millis(100)] {
                let w = window.as_millis() as u64;
                assert!(max_in_any_window(&outcomes, "requests", window) <= 3 + (w - 1) / 10);
                assert!(max_in_any_window(&outcomes, "tokens", window) <= 50 + (w - 1));
            }
            assert_refusals_within_max_wait(&outcomes);
            assert_eq!(slots.available(), 4);
            tokio::time::sleep(Duration::from_secs(120)).await;
            assert_eq!((requests.available(), tokens.available()), (3, 50));
        });
    }
}
