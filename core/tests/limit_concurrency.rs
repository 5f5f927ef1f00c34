//! Properties of the concurrency limiter under many concurrent callers in virtual time.

#[path = "support/limit.rs"]
mod support;

use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use ratewise_core::limit::ConcurrencyLimiter;
use support::*;

/// The most of the `requests` budget held at once, from admissions and hold times.
pub(crate) fn max_in_flight(outcomes: &[Outcome]) -> u64 {
    let held: Vec<(Duration, Duration, u64)> = outcomes
        .iter()
        .filter_map(|o| {
            let start = o.admitted?;
            let end = start + Duration::from_millis(o.client.hold_ms);
            Some((start, end, o.client.cost.amount(&"requests".into())))
        })
        .collect();
    held.iter()
        .map(|(at, _, _)| {
            held.iter()
                .filter(|(s, e, _)| s <= at && at < e)
                .map(|(_, _, n)| n)
                .sum()
        })
        .max()
        .unwrap_or(0)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn never_more_than_the_limit_in_flight_no_slot_leaks_and_waiters_keep_their_order(
        clients in clients(3, 60),
        limit in 3_u64..8,
    ) {
        paused_runtime().block_on(async {
            let limiter = Arc::new(ConcurrencyLimiter::new(limit));
            let outcomes = run(limiter.clone(), clients).await;
            assert!(max_in_flight(&outcomes) <= limit);
            assert_served_in_arrival_order(&outcomes);
            // Every caller has finished or was cancelled, waiting or holding: all slots are back.
            assert_eq!(limiter.available(), limit);
        });
    }
}
