//! Virtual time at scale: many clients, long simulated runs, seconds of wall time.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns may unwrap

use std::time::Duration;

use bytes::Bytes;
use ratewise_core::transport::Transport;
use ratewise_testkit::{Fault, FaultPlan, ServerLimit, SimUpstream};

#[allow(clippy::disallowed_methods)] // measuring the test's own wall time is the point
fn wall_now() -> std::time::Instant {
    std::time::Instant::now()
}

#[tokio::test(start_paused = true)]
async fn ten_thousand_requests_from_a_thousand_clients_run_in_virtual_time() {
    let started = wall_now();
    let upstream = SimUpstream::builder()
        .limit(ServerLimit::token_bucket(50.0, 100))
        .faults(FaultPlan::new().random(0.01, Fault::unavailable()))
        .latency(Duration::from_millis(80))
        .jitter(Duration::from_millis(40))
        .seed(11)
        .build();
    let transport = upstream.transport();
    let clients: Vec<_> = (0..1_000u64)
        .map(|client| {
            let transport = transport.clone();
            tokio::spawn(async move {
                for n in 0..10u64 {
                    // Each client sends every 2 s, staggered: ~500 req/s offered against 50/s.
                    let request = http::Request::post("http://sim/v1/messages")
                        .body(Bytes::from(format!("{client}-{n}")))
                        .unwrap();
                    let _ = transport.send(request, Duration::from_secs(5)).await;
                    tokio::time::sleep(Duration::from_millis(2_000 + client % 7)).await;
                }
            })
        })
        .collect();
    for client in clients {
        client.await.unwrap();
    }
    let ledger = upstream.ledger();
    assert_eq!(ledger.requests(), 10_000);
    assert_eq!(ledger.finished(), 10_000);
    let simulated = upstream.elapsed();
    assert!(
        simulated >= Duration::from_secs(20),
        "{simulated:?} of simulated time"
    );
    // Never more than the bucket allows: burst + rate x elapsed.
    let admitted = ledger.side_effects("POST /v1/messages");
    let bound = 100 + (50.0 * simulated.as_secs_f64()).ceil() as u64;
    assert!(admitted <= bound, "{admitted} > {bound}");
    assert!(ledger.throttled() > 5_000);
    assert_eq!(ledger.duplicates(), 0, "every body is distinct");
    let wall = started.elapsed();
    // About 1 s in a debug build and 0.2 s in release on an idle machine; the bound leaves room
    // for a machine shared with parallel builds.
    assert!(wall < Duration::from_secs(10), "took {wall:?} of wall time");
}
