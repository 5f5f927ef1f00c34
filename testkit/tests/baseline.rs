//! The baseline strategies do what their sources do, on the wire, in virtual time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use ratewise_core::clock::{Clock, SharedClock, TokioClock};
use ratewise_testkit::baseline::{
    ArticleRetry, BackonRetry, Baseline, CallFailure, NaiveRetry, OpenAiPython, StripeNode,
};
use ratewise_testkit::{
    Dialect, Fault, FaultPlan, GenericDialect, IdempotencyError, ResponseContext, SimUpstream,
};

fn request() -> http::Request<Bytes> {
    http::Request::post("http://sim.test/v1/work")
        .header("idempotency-key", "call-1")
        .body(Bytes::from_static(b"{}"))
        .unwrap()
}

fn clock() -> SharedClock {
    Arc::new(TokioClock::new())
}

/// Runs one call; returns (attempts, success, the server's arrival times since start).
async fn run(sim: &SimUpstream, baseline: &dyn Baseline) -> (u32, bool, Vec<Duration>) {
    let attempted = baseline.call(&sim.transport(), &request()).await;
    let mut arrivals: Vec<_> = sim.ledger().entries().iter().map(|e| e.arrived).collect();
    arrivals.sort();
    (attempted.attempts, attempted.result.is_ok(), arrivals)
}

fn gaps(arrivals: &[Duration]) -> Vec<Duration> {
    arrivals.windows(2).map(|w| w[1] - w[0]).collect()
}

fn throttled(n: u64) -> FaultPlan {
    FaultPlan::new().requests(0..n, Fault::throttle_without_hint())
}

#[tokio::test(start_paused = true)]
async fn naive_retries_every_100_ms_until_it_gets_through() {
    let sim = SimUpstream::builder()
        .faults(throttled(25))
        .latency(Duration::ZERO)
        .build();
    let (attempts, ok, arrivals) = run(&sim, &NaiveRetry::new()).await;
    assert!(ok);
    assert_eq!(attempts, 26, "no cap on attempts");
    assert!(
        gaps(&arrivals)
            .iter()
            .all(|g| *g == Duration::from_millis(100))
    );
}

#[tokio::test(start_paused = true)]
async fn the_articles_with_retry_makes_four_attempts_with_full_jitter_under_the_doubling_ceiling() {
    let sim = SimUpstream::builder()
        .faults(throttled(10))
        .latency(Duration::ZERO)
        .build();
    let (attempts, ok, arrivals) = run(&sim, &ArticleRetry::new(clock(), 3)).await;
    assert!(!ok);
    assert_eq!(attempts, 4);
    for (n, gap) in gaps(&arrivals).into_iter().enumerate() {
        assert!(
            gap <= Duration::from_millis(200 << n),
            "retry {n} waited {gap:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn the_articles_with_retry_sleeps_exactly_the_retry_after() {
    let sim = SimUpstream::builder()
        .faults(FaultPlan::new().request(0, Fault::throttle(Duration::from_secs(7))))
        .latency(Duration::ZERO)
        .build();
    let (attempts, ok, arrivals) = run(&sim, &ArticleRetry::new(clock(), 3)).await;
    assert!(ok);
    assert_eq!(attempts, 2);
    assert_eq!(gaps(&arrivals), [Duration::from_secs(7)]);
}

#[tokio::test(start_paused = true)]
async fn openai_python_retries_twice_with_half_second_doubling_minus_a_quarter() {
    let sim = SimUpstream::builder()
        .faults(throttled(10))
        .latency(Duration::ZERO)
        .build();
    let (attempts, ok, arrivals) = run(&sim, &OpenAiPython::new(clock(), 5)).await;
    assert!(!ok);
    assert_eq!(attempts, 3);
    let gaps = gaps(&arrivals);
    assert!(gaps[0] > Duration::from_millis(375) && gaps[0] <= Duration::from_millis(500));
    assert!(gaps[1] > Duration::from_millis(750) && gaps[1] <= Duration::from_millis(1000));
}

#[tokio::test(start_paused = true)]
async fn openai_python_honours_retry_after_up_to_120_s_and_gives_up_beyond() {
    let sim = SimUpstream::builder()
        .faults(FaultPlan::new().request(0, Fault::throttle(Duration::from_secs(90))))
        .latency(Duration::ZERO)
        .build();
    let (_, ok, arrivals) = run(&sim, &OpenAiPython::new(clock(), 5)).await;
    assert!(ok);
    assert_eq!(gaps(&arrivals), [Duration::from_secs(90)]);

    let sim = SimUpstream::builder()
        .faults(FaultPlan::new().request(0, Fault::throttle(Duration::from_secs(121))))
        .latency(Duration::ZERO)
        .build();
    let (attempts, ok, _) = run(&sim, &OpenAiPython::new(clock(), 5)).await;
    assert!(!ok);
    assert_eq!(attempts, 1, "a Retry-After over 120 s is not retried");
}

/// The generic dialect, plus `Stripe-Should-Retry: true` on throttles.
#[derive(Debug, Default)]
struct ShouldRetry(GenericDialect);

impl Dialect for ShouldRetry {
    fn throttle_response(&self, ctx: &ResponseContext<'_>) -> http::Response<Bytes> {
        let mut response = self.0.throttle_response(ctx);
        response.headers_mut().insert(
            HeaderName::from_static("stripe-should-retry"),
            HeaderValue::from_static("true"),
        );
        response
    }
    fn server_error_response(
        &self,
        s: StatusCode,
        ctx: &ResponseContext<'_>,
    ) -> http::Response<Bytes> {
        self.0.server_error_response(s, ctx)
    }
    fn idempotency_error_response(
        &self,
        e: IdempotencyError,
        ctx: &ResponseContext<'_>,
    ) -> http::Response<Bytes> {
        self.0.idempotency_error_response(e, ctx)
    }
    fn decorate(&self, headers: &mut HeaderMap, ctx: &ResponseContext<'_>) {
        self.0.decorate(headers, ctx)
    }
}

#[tokio::test(start_paused = true)]
async fn stripe_node_does_not_retry_a_plain_429_but_obeys_stripe_should_retry() {
    let sim = SimUpstream::builder().faults(throttled(1)).build();
    let (attempts, ok, _) = run(&sim, &StripeNode::new(1)).await;
    assert!(!ok);
    assert_eq!(attempts, 1);

    let sim = SimUpstream::builder()
        .dialect(ShouldRetry::default())
        .faults(throttled(1))
        .latency(Duration::ZERO)
        .build();
    let (attempts, ok, arrivals) = run(&sim, &StripeNode::new(1)).await;
    assert!(ok);
    assert_eq!(attempts, 2);
    assert_eq!(
        gaps(&arrivals),
        [Duration::from_millis(500)],
        "retry 1 sleeps 0.5 s"
    );
}

#[tokio::test(start_paused = true)]
async fn stripe_node_retries_server_errors_twice_with_its_half_jitter() {
    let sim = SimUpstream::builder()
        .faults(FaultPlan::new().requests(0..10, Fault::unavailable()))
        .latency(Duration::ZERO)
        .build();
    let baseline = StripeNode::new(1);
    let attempted = baseline.call(&sim.transport(), &request()).await;
    assert_eq!(attempted.attempts, 3);
    assert!(matches!(
        attempted.result,
        Err(CallFailure::Status(StatusCode::SERVICE_UNAVAILABLE))
    ));
    let mut arrivals: Vec<_> = sim.ledger().entries().iter().map(|e| e.arrived).collect();
    arrivals.sort();
    let gaps = gaps(&arrivals);
    assert_eq!(gaps[0], Duration::from_millis(500));
    assert!(gaps[1] >= Duration::from_millis(500) && gaps[1] <= Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn backon_makes_four_attempts_with_jittered_doubling_from_one_second() {
    let sim = SimUpstream::builder()
        .faults(throttled(10))
        .latency(Duration::ZERO)
        .build();
    let started = TokioClock::new().now();
    let (attempts, ok, arrivals) = run(&sim, &BackonRetry::new(9)).await;
    assert!(!ok);
    assert_eq!(attempts, 4);
    for (n, gap) in gaps(&arrivals).into_iter().enumerate() {
        let floor = Duration::from_secs(1 << n);
        assert!(gap >= floor && gap < floor * 2, "retry {n} waited {gap:?}");
    }
    assert!(TokioClock::new().now() - started < Duration::from_secs(15));
}
