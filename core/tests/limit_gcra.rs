//! Properties of the GCRA token bucket under many concurrent callers in virtual time.

#[path = "support/limit.rs"]
mod support;

use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use ratewise_core::limit::{GcraLimiter, Rate};
use support::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn admitted_cost_never_exceeds_burst_plus_rate_in_any_window_and_waiters_keep_their_order(
        clients in clients(6, 60),
        burst in 6_u64..12,
        interval_ms in 1_u64..80,
    ) {
        paused_runtime().block_on(async {
            let interval = Duration::from_millis(interval_ms);
            let limiter = Arc::new(GcraLimiter::new(Rate::new(1, interval)).burst(burst));
            let outcomes = run(limiter.clone(), clients).await;
            for window in [Duration::from_millis(1), interval, interval * 10, Duration::from_secs(1)] {
                let bound = burst + (window.as_nanos() as u64 - 1) / interval.as_nanos() as u64;
                let admitted = max_in_any_window(&outcomes, "requests", window);
                assert!(admitted <= bound, "{admitted} > {bound} in a {window:?} window");
            }
            assert_served_in_arrival_order(&outcomes);
            assert_refusals_are_immediate(&outcomes);
            // Cancelled callers leave nothing behind: once the reserved time has passed, the
            // bucket is full again.
            tokio::time::sleep(Duration::from_secs(120)).await;
            assert_eq!(limiter.available(), burst);
        });
    }
}
