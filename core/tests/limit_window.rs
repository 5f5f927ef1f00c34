//! Properties of the fixed and sliding window limiters under many concurrent callers.

#[path = "support/limit.rs"]
mod support;

use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use ratewise_core::limit::{FixedWindowLimiter, SlidingWindowLimiter};
use support::*;

/// The most of the `requests` budget admitted in one aligned window `[k·w, (k+1)·w)`.
fn max_in_aligned_window(outcomes: &[Outcome], window: Duration) -> u64 {
    let mut per_window = std::collections::BTreeMap::<u128, u64>::new();
    for o in outcomes {
        if let Some(t) = o.admitted {
            *per_window
                .entry(t.as_nanos() / window.as_nanos())
                .or_default() += o.client.cost.amount(&"requests".into());
        }
    }
    per_window.values().copied().max().unwrap_or(0)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn a_fixed_window_admits_at_most_its_limit_per_window_and_twice_that_across_a_boundary(
        clients in clients(5, 60),
        limit in 5_u64..15,
        window_ms in 10_u64..400,
    ) {
        paused_runtime().block_on(async {
            let window = Duration::from_millis(window_ms);
            let limiter = Arc::new(FixedWindowLimiter::new(limit, window));
            let outcomes = run(limiter.clone(), clients).await;
            assert!(max_in_aligned_window(&outcomes, window) <= limit);
            assert!(max_in_any_window(&outcomes, "requests", window) <= 2 * limit);
            assert_served_in_arrival_order(&outcomes);
            assert_refusals_are_immediate(&outcomes);
            // Cancelled waiters left no reservation behind.
            tokio::time::sleep(Duration::from_secs(120)).await;
            assert_eq!(limiter.available(), limit);
        });
    }

    #[test]
    fn a_sliding_window_admits_at_most_its_limit_in_any_span_of_one_window(
        clients in clients(5, 60),
        limit in 5_u64..15,
        window_ms in 10_u64..400,
    ) {
        paused_runtime().block_on(async {
            let window = Duration::from_millis(window_ms);
            let limiter = Arc::new(SlidingWindowLimiter::new(limit, window));
            let outcomes = run(limiter.clone(), clients).await;
            for span in [Duration::from_millis(1), window / 2, window] {
                assert!(max_in_any_window(&outcomes, "requests", span) <= limit);
            }
            assert_served_in_arrival_order(&outcomes);
            assert_refusals_are_immediate(&outcomes);
            tokio::time::sleep(Duration::from_secs(120)).await;
            assert_eq!(limiter.available(), limit);
        });
    }
}
