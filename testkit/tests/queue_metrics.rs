//! The work queue's metrics (the core's `metrics` feature), read from a `metrics_util`
//! debugging recorder in virtual time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/metrics.rs"]
mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use http::StatusCode;
use ratewise_core::error::Error;
use ratewise_core::queue::{Job, JobContext, JobOutcome, WorkQueue};
use ratewise_core::telemetry::metric;
use support::recorded;

/// Three jobs: one succeeds, one is a 400 (dead-lettered), one is parked for 100 s by a 429.
/// Read at t=10 s: one job waiting, pushed 10 s ago, one dead letter.
async fn scenario() {
    let queue = WorkQueue::builder(|name: String, ctx: JobContext| async move {
        match name.as_str() {
            "bad" => JobOutcome::from(Error::api(
                "stripe",
                StatusCode::BAD_REQUEST,
                "invalid amount".to_owned(),
            )),
            "later" if ctx.attempt == 1 => JobOutcome::park(Duration::from_secs(100), "429"),
            _ => JobOutcome::done(),
        }
    })
    .name("payments")
    .start();
    for name in ["ok", "bad", "later"] {
        queue.push(Job::new(name.to_owned())).await.unwrap();
    }
    tokio::time::sleep(Duration::from_secs(10)).await;
    let stats = queue.stats().await.unwrap();
    assert_eq!((stats.depth, stats.parked, stats.dead_letters), (1, 1, 1));
}

#[test]
fn depth_oldest_age_and_dead_letters_are_reported_per_queue() {
    let ((), got) = recorded(scenario());
    let expected = BTreeMap::from([
        (metric::QUEUE_DEPTH, "1"),
        (metric::QUEUE_OLDEST_AGE, "10"),
        (metric::QUEUE_DEAD_LETTER, "1"),
    ]);
    for (name, value) in &expected {
        assert_eq!(got[&format!("{name}{{queue=payments}}")], *value, "{got:?}");
    }
    assert_eq!(got.len(), expected.len(), "{got:?}");
}
