//! The generic dialect's wall-clock headers, and a custom dialect plugged into the engine.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns may unwrap

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use ratewise_core::clock::TokioClock;
use ratewise_core::transport::Transport;
use ratewise_testkit::dialect::json_response;
use ratewise_testkit::{
    Dialect, GenericDialect, IdempotencyError, ResponseContext, RetryAfterFormat, ServerLimit,
    SimUpstream,
};

const LONG: Duration = Duration::from_secs(60);
const WALL: u64 = 1_767_225_600; // Thu, 01 Jan 2026 00:00:00 GMT

fn post() -> http::Request<Bytes> {
    http::Request::post("http://sim/v1/things")
        .body(Bytes::new())
        .unwrap()
}

fn clock() -> Arc<TokioClock> {
    Arc::new(TokioClock::with_wall(
        SystemTime::UNIX_EPOCH + Duration::from_secs(WALL),
    ))
}

#[tokio::test(start_paused = true)]
async fn retry_after_can_be_an_http_date_from_the_injected_clock() {
    let upstream = SimUpstream::builder()
        .limit(ServerLimit::fixed_window(1, Duration::from_secs(30)))
        .dialect(GenericDialect::default().retry_after_format(RetryAfterFormat::HttpDate))
        .clock(clock())
        .latency(Duration::ZERO)
        .build();
    let transport = upstream.transport();
    tokio::time::sleep(Duration::from_secs(3600)).await;
    transport.send(post(), LONG).await.unwrap();
    let throttled = transport.send(post(), LONG).await.unwrap();
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        throttled.headers()["retry-after"],
        "Thu, 01 Jan 2026 01:00:30 GMT",
        "virtual time moved the wall clock an hour; the window ends 30 s later"
    );
    assert_eq!(
        throttled.headers()["x-ratelimit-reset"],
        (WALL + 3630).to_string()
    );
}

#[tokio::test(start_paused = true)]
async fn every_response_carries_the_quota_headers() {
    let upstream = SimUpstream::builder()
        .limit(ServerLimit::fixed_window(5, Duration::from_secs(60)))
        .clock(clock())
        .build();
    let ok = upstream.transport().send(post(), LONG).await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(ok.headers()["x-ratelimit-limit"], "5");
    assert_eq!(ok.headers()["x-ratelimit-remaining"], "4");
    assert_eq!(ok.headers()["x-ratelimit-reset"], (WALL + 60).to_string());
}

#[tokio::test(start_paused = true)]
async fn a_concurrency_limit_announces_no_quota_and_no_wait() {
    let upstream = SimUpstream::builder()
        .limit(ServerLimit::concurrency(1))
        .clock(clock())
        .latency(Duration::from_millis(100))
        .build();
    let transport = upstream.transport();
    let (first, second) = tokio::join!(transport.send(post(), LONG), async {
        tokio::time::sleep(Duration::from_millis(10)).await;
        transport.send(post(), LONG).await
    });
    let (first, second) = (first.unwrap(), second.unwrap());
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(second.status(), StatusCode::TOO_MANY_REQUESTS);
    for response in [&first, &second] {
        for name in [
            "x-ratelimit-limit",
            "x-ratelimit-remaining",
            "x-ratelimit-reset",
        ] {
            assert!(
                !response.headers().contains_key(name),
                "{name} on a concurrency limit"
            );
        }
    }
    assert!(!second.headers().contains_key("retry-after"));
}

#[tokio::test(start_paused = true)]
async fn a_sliding_window_resets_when_its_newest_request_leaves_it() {
    let upstream = SimUpstream::builder()
        .limit(ServerLimit::sliding_window(5, Duration::from_secs(60)))
        .clock(clock())
        .latency(Duration::ZERO)
        .build();
    let transport = upstream.transport();
    transport.send(post(), LONG).await.unwrap();
    tokio::time::sleep(Duration::from_secs(30)).await;
    let later = transport.send(post(), LONG).await.unwrap();
    assert_eq!(later.headers()["x-ratelimit-remaining"], "3");
    assert_eq!(
        later.headers()["x-ratelimit-reset"],
        (WALL + 90).to_string(),
        "whole again when the request just made expires, not the first one"
    );
}

/// A provider-style dialect: its own throttle status, header names and side-effect rule.
#[derive(Debug)]
struct Teapot;

impl Dialect for Teapot {
    fn throttle_response(&self, _ctx: &ResponseContext<'_>) -> http::Response<Bytes> {
        json_response(StatusCode::IM_A_TEAPOT, &serde_json::json!({"code": 20429}))
    }
    fn server_error_response(
        &self,
        status: StatusCode,
        _ctx: &ResponseContext<'_>,
    ) -> http::Response<Bytes> {
        json_response(status, &serde_json::json!({}))
    }
    fn idempotency_error_response(
        &self,
        error: IdempotencyError,
        _ctx: &ResponseContext<'_>,
    ) -> http::Response<Bytes> {
        json_response(error.status(), &serde_json::json!({}))
    }
    fn decorate(&self, headers: &mut HeaderMap, ctx: &ResponseContext<'_>) {
        for limit in ctx.limits {
            headers.insert(
                HeaderName::try_from(format!("x-left-{}", limit.name)).unwrap(),
                HeaderValue::from(limit.remaining),
            );
        }
    }
    fn idempotency_header(&self) -> Option<HeaderName> {
        None
    }
    fn is_side_effect(&self, request: &http::Request<Bytes>) -> bool {
        request.uri().path().starts_with("/v1/")
    }
}

#[tokio::test(start_paused = true)]
async fn a_custom_dialect_shapes_every_response() {
    let upstream = SimUpstream::builder()
        .limit(ServerLimit::token_bucket(1.0, 1).named("messages"))
        .dialect(Teapot)
        .build();
    let transport = upstream.transport();
    let ok = transport.send(post(), LONG).await.unwrap();
    assert_eq!(ok.headers()["x-left-messages"], "0");
    let throttled = transport.send(post(), LONG).await.unwrap();
    assert_eq!(throttled.status(), StatusCode::IM_A_TEAPOT);
    assert_eq!(upstream.ledger().side_effects("POST /v1/things"), 1);
}
