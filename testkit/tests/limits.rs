//! Server-side limits, through the in-memory transport in virtual time.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns may unwrap

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::StatusCode;
use ratewise_core::clock::TokioClock;
use ratewise_core::transport::Transport;
use ratewise_testkit::{ServerLimit, SimUpstream};

const WALL: u64 = 1_767_225_600; // 2026-01-01T00:00:00Z
const LONG: Duration = Duration::from_secs(60);

fn upstream(limits: Vec<ServerLimit>) -> SimUpstream {
    let clock = TokioClock::with_wall(SystemTime::UNIX_EPOCH + Duration::from_secs(WALL));
    limits
        .into_iter()
        .fold(SimUpstream::builder(), |b, l| b.limit(l))
        .clock(std::sync::Arc::new(clock))
        .latency(Duration::ZERO)
        .build()
}

fn post(path: &str) -> http::Request<Bytes> {
    http::Request::post(format!("http://sim{path}"))
        .body(Bytes::new())
        .unwrap()
}

fn header(response: &http::Response<Bytes>, name: &str) -> String {
    response.headers()[name].to_str().unwrap().to_owned()
}

async fn statuses(upstream: &SimUpstream, path: &str, n: usize) -> Vec<u16> {
    let transport = upstream.transport();
    let mut out = Vec::new();
    for _ in 0..n {
        let response = transport.send(post(path), LONG).await.unwrap();
        out.push(response.status().as_u16());
    }
    out
}

fn admitted(statuses: &[u16]) -> usize {
    statuses.iter().filter(|s| **s == 200).count()
}

#[tokio::test(start_paused = true)]
async fn token_bucket_admits_its_burst_then_throttles_with_generic_headers() {
    let upstream = upstream(vec![ServerLimit::token_bucket(2.0, 5)]);
    let got = statuses(&upstream, "/v1/things", 8).await;
    assert_eq!(got, [200, 200, 200, 200, 200, 429, 429, 429]);

    let response = upstream
        .transport()
        .send(post("/v1/things"), LONG)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        header(&response, "retry-after"),
        "1",
        "0.5 s rounds up to 1"
    );
    assert_eq!(header(&response, "x-ratelimit-limit"), "5");
    assert_eq!(header(&response, "x-ratelimit-remaining"), "0");
    assert_eq!(
        header(&response, "x-ratelimit-reset"),
        (WALL + 3).to_string(),
        "5 tokens at 2/s: full again in 2.5 s, rounded up"
    );
    let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
    assert_eq!(body["error"]["type"], "rate_limit_error");

    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(statuses(&upstream, "/v1/things", 2).await, [200, 429]);
    assert_eq!(upstream.ledger().throttled(), 5);
    assert_eq!(upstream.ledger().side_effects("POST /v1/things"), 6);
}

#[tokio::test(start_paused = true)]
async fn fixed_window_admits_its_limit_per_window_and_names_the_window_end() {
    let upstream = upstream(vec![ServerLimit::fixed_window(3, Duration::from_secs(10))]);
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        statuses(&upstream, "/a", 5).await,
        [200, 200, 200, 429, 429]
    );
    let response = upstream.transport().send(post("/a"), LONG).await.unwrap();
    assert_eq!(header(&response, "retry-after"), "6");
    assert_eq!(
        header(&response, "x-ratelimit-reset"),
        (WALL + 10).to_string()
    );
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(admitted(&statuses(&upstream, "/a", 5).await), 3);
}

#[tokio::test(start_paused = true)]
async fn sliding_window_never_admits_more_than_its_limit_in_any_trailing_window() {
    let upstream = upstream(vec![ServerLimit::sliding_window(
        4,
        Duration::from_secs(10),
    )]);
    let transport = upstream.transport();
    let mut admitted_at = Vec::new();
    for step in 0..40u64 {
        let response = transport.send(post("/a"), LONG).await.unwrap();
        if response.status() == StatusCode::OK {
            admitted_at.push(step);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    for &start in &admitted_at {
        let in_window = admitted_at
            .iter()
            .filter(|&&t| t >= start && t < start + 10)
            .count();
        assert!(in_window <= 4, "{admitted_at:?}");
    }
    assert_eq!(
        admitted_at.len(),
        16,
        "4 per 10 s over 40 s: {admitted_at:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn concurrency_limit_admits_only_its_slots_while_requests_are_in_flight() {
    let upstream = SimUpstream::builder()
        .limit(ServerLimit::concurrency(3))
        .latency(Duration::from_secs(1))
        .build();
    let transport = upstream.transport();
    let calls = (0..5).map(|_| {
        let transport = transport.clone();
        tokio::spawn(async move { transport.send(post("/a"), LONG).await.unwrap() })
    });
    let mut got = Vec::new();
    for call in calls.collect::<Vec<_>>() {
        got.push(call.await.unwrap().status().as_u16());
    }
    got.sort_unstable();
    assert_eq!(got, [200, 200, 200, 429, 429]);
    assert_eq!(statuses(&upstream, "/a", 1).await, [200], "slots freed");
}

#[tokio::test(start_paused = true)]
async fn a_global_and_a_per_operation_limit_are_both_enforced() {
    let upstream = upstream(vec![
        ServerLimit::fixed_window(10, Duration::from_secs(60)),
        ServerLimit::fixed_window(2, Duration::from_secs(60))
            .per_operation()
            .named("per-endpoint"),
    ]);
    assert_eq!(statuses(&upstream, "/a", 3).await, [200, 200, 429]);
    assert_eq!(statuses(&upstream, "/b", 3).await, [200, 200, 429]);
    let response = upstream.transport().send(post("/c"), LONG).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        header(&response, "x-ratelimit-remaining"),
        "1",
        "headers report the tightest limit"
    );
}

#[tokio::test(start_paused = true)]
async fn a_limit_scoped_to_one_operation_leaves_the_others_alone() {
    let upstream = upstream(vec![
        ServerLimit::fixed_window(1, Duration::from_secs(60)).for_operation("POST /v1/charges"),
    ]);
    assert_eq!(statuses(&upstream, "/v1/charges", 2).await, [200, 429]);
    assert_eq!(statuses(&upstream, "/v1/refunds", 3).await, [200, 200, 200]);
}

#[tokio::test(start_paused = true)]
async fn per_header_limits_give_each_api_key_its_own_budget() {
    let upstream = upstream(vec![
        ServerLimit::fixed_window(1, Duration::from_secs(60))
            .per_header(http::header::AUTHORIZATION),
    ]);
    let transport = upstream.transport();
    let send = |key: &'static str| {
        let transport = transport.clone();
        async move {
            let request = http::Request::post("http://sim/a")
                .header("authorization", key)
                .body(Bytes::new())
                .unwrap();
            transport
                .send(request, LONG)
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(send("k1").await, 200);
    assert_eq!(send("k2").await, 200);
    assert_eq!(send("k1").await, 429);
}

#[tokio::test(start_paused = true)]
async fn counted_failures_keep_a_retry_storm_throttled() {
    let window = Duration::from_secs(10);
    let counted = upstream(vec![
        ServerLimit::sliding_window(2, window).count_failures(true),
    ]);
    let uncounted = upstream(vec![ServerLimit::sliding_window(2, window)]);
    for upstream in [&counted, &uncounted] {
        assert_eq!(statuses(upstream, "/a", 2).await, [200, 200]);
    }
    // Hammer once a second for 12 s: counted failures keep the window full.
    let mut counted_ok = 0;
    let mut uncounted_ok = 0;
    for _ in 0..12 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        counted_ok += admitted(&statuses(&counted, "/a", 1).await);
        uncounted_ok += admitted(&statuses(&uncounted, "/a", 1).await);
    }
    assert_eq!(counted_ok, 0);
    assert_eq!(uncounted_ok, 2);
}

#[tokio::test(start_paused = true)]
async fn a_limit_charged_from_a_header_spends_each_requests_weight() {
    let tokens = http::HeaderName::from_static("x-tokens");
    let upstream = SimUpstream::builder()
        .limit(
            ServerLimit::token_bucket(0.0, 1_000)
                .named("tokens")
                .cost_from_header(tokens.clone()),
        )
        .build();
    let transport = upstream.transport();
    let mut statuses = Vec::new();
    for weight in ["600", "300", "200", "100"] {
        let request = http::Request::post("http://sim/v1/chat")
            .header(&tokens, weight)
            .body(Bytes::from(weight))
            .unwrap();
        let response = transport
            .send(request, Duration::from_secs(5))
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
    }
    // 600 + 300 fit in 1,000; 200 more does not; 100 more does.
    assert_eq!(statuses, [200, 200, 429, 200]);
}
