//! The generic client against limits the headers alone do not describe: a concurrency limit
//! that announces nothing, and a rolling window read as one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use ratewise_core::provider::RequestSpec;
use ratewise_core::upstream::Upstream;
use ratewise_testkit::{GenericProvider, ServerLimit, SimUpstream};

fn charge(i: usize) -> RequestSpec {
    RequestSpec::post("/v1/charges", "charges.create")
        .body("application/json", format!("{{\"amount\":{i}}}"))
}

/// Runs `calls` calls from `callers` callers, each expected to succeed.
async fn storm(sim: &SimUpstream, provider: GenericProvider, callers: usize, calls: usize) {
    let upstream = Upstream::builder(provider, "http://sim.test")
        .transport(Arc::new(sim.transport()))
        .clock(sim.clock())
        .seed(7)
        .build()
        .unwrap();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let tasks: Vec<_> = (0..callers)
        .map(|_| {
            let (upstream, next) = (upstream.clone(), Arc::clone(&next));
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= calls {
                        return;
                    }
                    upstream
                        .execute(charge(i))
                        .await
                        .expect("every call succeeds");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn an_unannounced_concurrency_limit_is_learned_with_few_throttles() {
    let sim = SimUpstream::builder()
        .limit(ServerLimit::concurrency(20))
        .latency(Duration::from_millis(100))
        .build();
    storm(&sim, GenericProvider::new(), 200, 1_000).await;
    let ledger = sim.ledger();
    assert_eq!(ledger.total_side_effects(), 1_000);
    assert!(
        ledger.throttled() * 100 <= ledger.requests(),
        "{} of {} requests throttled",
        ledger.throttled(),
        ledger.requests()
    );
    // 1,000 calls of 100 ms, 20 at a time: 5 s at best.
    assert!(
        sim.elapsed() <= Duration::from_millis(5_500),
        "{:?}",
        sim.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn a_rolling_window_read_as_one_runs_at_its_limit() {
    let sim = SimUpstream::builder()
        .limit(ServerLimit::sliding_window(100, Duration::from_secs(1)))
        .latency(Duration::from_millis(10))
        .build();
    let provider = GenericProvider::new().rolling_window(Duration::from_secs(1));
    storm(&sim, provider, 200, 1_000).await;
    let ledger = sim.ledger();
    assert_eq!(ledger.total_side_effects(), 1_000);
    assert_eq!(ledger.throttled(), 0);
    // 100 at once, then 100 more each second: the last batch starts at 9 s.
    assert!(
        sim.elapsed() <= Duration::from_millis(9_100),
        "{:?}",
        sim.elapsed()
    );
}
