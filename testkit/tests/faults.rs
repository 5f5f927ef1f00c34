//! The fault plan, in virtual time: scripted and seeded faults, and the ambiguous failures.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns may unwrap

use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use ratewise_core::transport::{Transport, TransportError};
use ratewise_testkit::{Fault, FaultPlan, ServerLimit, SimUpstream};

const LONG: Duration = Duration::from_secs(60);

fn post(body: &'static str) -> http::Request<Bytes> {
    http::Request::post("http://sim/v1/charges")
        .body(Bytes::from_static(body.as_bytes()))
        .unwrap()
}

/// Status per request, or 0 for a transport error.
async fn run(upstream: &SimUpstream, n: usize) -> Vec<u16> {
    let transport = upstream.transport();
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(match transport.send(post("{}"), LONG).await {
            Ok(r) => r.status().as_u16(),
            Err(_) => 0,
        });
    }
    out
}

#[tokio::test(start_paused = true)]
async fn scripted_request_ranges_fire_exactly_on_their_indices() {
    let upstream = SimUpstream::builder()
        .faults(
            FaultPlan::new()
                .requests(2..4, Fault::unavailable())
                .request(5, Fault::server_error(StatusCode::BAD_GATEWAY)),
        )
        .build();
    assert_eq!(run(&upstream, 7).await, [200, 200, 503, 503, 200, 502, 200]);
    assert_eq!(upstream.ledger().side_effects("POST /v1/charges"), 4);
    assert_eq!(
        upstream
            .ledger()
            .with_status(StatusCode::SERVICE_UNAVAILABLE),
        2
    );
}

#[tokio::test(start_paused = true)]
async fn an_outage_covers_its_time_window_only() {
    let upstream = SimUpstream::builder()
        .faults(FaultPlan::new().outage(Duration::from_secs(60), Duration::from_secs(60)))
        .latency(Duration::ZERO)
        .build();
    let mut got = Vec::new();
    for _ in 0..4 {
        got.extend(run(&upstream, 1).await);
        tokio::time::sleep(Duration::from_secs(40)).await;
    }
    // Requests at t = 0, 40, 80, 120 s.
    assert_eq!(got, [200, 200, 503, 200]);
    assert_eq!(
        upstream
            .ledger()
            .arrived_in(Duration::from_secs(60)..Duration::from_secs(120)),
        1
    );
}

#[tokio::test(start_paused = true)]
async fn seeded_faults_repeat_for_the_same_seed_and_differ_for_another() {
    let plan = FaultPlan::new()
        .bursts(0.05, 4, Fault::unavailable())
        .random(0.2, Fault::throttle(Duration::from_secs(1)))
        .random(0.2, Fault::throttle_without_hint());
    let build = |seed| {
        SimUpstream::builder()
            .faults(plan.clone())
            .jitter(Duration::from_millis(50))
            .seed(seed)
            .build()
    };
    let a = run(&build(7), 300).await;
    let b = run(&build(7), 300).await;
    let c = run(&build(8), 300).await;
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert!(a.contains(&503) && a.contains(&429) && a.contains(&200));
}

#[tokio::test(start_paused = true)]
async fn a_throttle_without_hint_carries_no_retry_after_nor_quota_headers() {
    let upstream = SimUpstream::builder()
        .limit(ServerLimit::token_bucket(1.0, 10))
        .faults(
            FaultPlan::new()
                .request(0, Fault::throttle_without_hint())
                .request(1, Fault::throttle(Duration::from_secs(7))),
        )
        .build();
    let transport = upstream.transport();
    let bare = transport.send(post("{}"), LONG).await.unwrap();
    assert_eq!(bare.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(bare.headers().get("retry-after").is_none());
    assert!(bare.headers().get("x-ratelimit-reset").is_none());
    let hinted = transport.send(post("{}"), LONG).await.unwrap();
    assert_eq!(hinted.headers()["retry-after"], "7");
    assert_eq!(hinted.headers()["x-ratelimit-limit"], "10");
}

#[tokio::test(start_paused = true)]
async fn a_response_slower_than_the_timeout_is_a_timeout_yet_the_side_effect_is_committed() {
    let upstream = SimUpstream::builder()
        .faults(FaultPlan::new().request(0, Fault::slow(Duration::from_secs(30))))
        .build();
    let transport = upstream.transport();
    let err = transport
        .send(post("{}"), Duration::from_secs(5))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        TransportError::Timeout {
            timeout: Duration::from_secs(5)
        }
    );
    assert_eq!(
        upstream.ledger().side_effects("POST /v1/charges"),
        1,
        "committed before the client gave up"
    );
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(
        upstream.ledger().with_status(StatusCode::OK),
        1,
        "the server did answer"
    );
}

#[tokio::test(start_paused = true)]
async fn latency_beyond_the_timeout_still_commits_once_the_server_finishes() {
    let upstream = SimUpstream::builder()
        .latency(Duration::from_secs(2))
        .build();
    let err = upstream
        .transport()
        .send(post("{}"), Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::Timeout { .. }));
    assert_eq!(
        upstream.ledger().total_side_effects(),
        0,
        "not yet processed"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(upstream.ledger().total_side_effects(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_reset_after_commit_is_an_interruption_with_the_side_effect_in_the_ledger() {
    let upstream = SimUpstream::builder()
        .faults(FaultPlan::new().request(0, Fault::ResetAfterCommit))
        .build();
    let transport = upstream.transport();
    let err = transport.send(post("{}"), LONG).await.unwrap_err();
    assert!(matches!(err, TransportError::Interrupted { .. }), "{err:?}");
    assert!(!err.certainly_not_sent());
    // A blind retry of the same bytes, without an idempotency key, charges twice.
    let retry = transport.send(post("{}"), LONG).await.unwrap();
    assert_eq!(retry.status(), StatusCode::OK);
    let ledger = upstream.ledger();
    assert_eq!(ledger.side_effects("POST /v1/charges"), 2);
    assert_eq!(ledger.duplicates(), 1);
    assert_eq!(ledger.resets(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_reset_before_commit_leaves_no_side_effect() {
    let upstream = SimUpstream::builder()
        .faults(FaultPlan::new().request(0, Fault::ResetBeforeCommit))
        .build();
    let err = upstream
        .transport()
        .send(post("{}"), LONG)
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::Interrupted { .. }));
    assert_eq!(upstream.ledger().total_side_effects(), 0);
    assert_eq!(upstream.ledger().resets(), 1);
}

#[tokio::test(start_paused = true)]
async fn gets_are_not_side_effects() {
    let upstream = SimUpstream::builder().build();
    let request = http::Request::get("http://sim/v1/charges/ch_1")
        .body(Bytes::new())
        .unwrap();
    let response = upstream.transport().send(request, LONG).await.unwrap();
    let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
    assert_eq!(body["object"], "ch_1");
    assert_eq!(upstream.ledger().total_side_effects(), 0);
    assert_eq!(upstream.ledger().requests(), 1);
}
