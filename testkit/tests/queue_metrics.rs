//! The work queue's metrics (the core's `metrics` feature), read from a `metrics_util`
//! debugging recorder in virtual time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use http::StatusCode;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use ratewise_core::error::Error;
use ratewise_core::queue::{Job, JobContext, JobOutcome, WorkQueue};
use ratewise_core::telemetry::metric;

fn read(recorder: &DebuggingRecorder) -> BTreeMap<String, String> {
    recorder
        .snapshotter()
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let key = key.key();
            let labels: Vec<String> = key
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            let value = match value {
                DebugValue::Counter(n) => n.to_string(),
                DebugValue::Gauge(g) => g.0.to_string(),
                DebugValue::Histogram(samples) => format!("{} samples", samples.len()),
            };
            (format!("{}{{{}}}", key.name(), labels.join(",")), value)
        })
        .collect()
}

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
    let recorder = DebuggingRecorder::new();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    metrics::with_local_recorder(&recorder, || runtime.block_on(scenario()));
    let got = read(&recorder);
    let expected: BTreeMap<String, String> = [
        (format!("{}{{queue=payments}}", metric::QUEUE_DEPTH), "1"),
        (
            format!("{}{{queue=payments}}", metric::QUEUE_OLDEST_AGE),
            "10",
        ),
        (
            format!("{}{{queue=payments}}", metric::QUEUE_DEAD_LETTER),
            "1",
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.to_owned()))
    .collect();
    assert_eq!(got, expected);
}
