//! The pipeline end to end, in virtual time: `Upstream` over `SimTransport`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use ratewise_core::clock::{Clock, TokioClock};
use ratewise_core::error::Error;
use ratewise_core::idempotency::IdempotencyKey;
use ratewise_core::limit::{GcraLimiter, Rate};
use ratewise_core::provider::RequestSpec;
use ratewise_core::upstream::{CallPolicy, Upstream};
use ratewise_testkit::{
    Fault, FaultPlan, GenericDialect, GenericProvider, RetryAfterFormat, ServerLimit, SimUpstream,
};

fn client(
    sim: &SimUpstream,
    provider: GenericProvider,
) -> ratewise_core::upstream::UpstreamBuilder<GenericProvider> {
    Upstream::builder(provider, "http://sim.test")
        .transport(Arc::new(sim.transport()))
        .clock(sim.clock())
        .seed(7)
}

fn charge(i: usize) -> RequestSpec {
    RequestSpec::post("/v1/charges", "charges.create")
        .body("application/json", format!("{{\"amount\":{i}}}"))
}

#[tokio::test(start_paused = true)]
async fn a_storm_of_500_callers_against_100_per_second_all_succeed_without_amplification() {
    let sim = SimUpstream::builder()
        .limit(ServerLimit::token_bucket(100.0, 100))
        .seed(1)
        .build();
    let upstream = client(&sim, GenericProvider::new())
        .limiter(Arc::new(
            GcraLimiter::new(Rate::per_second(100))
                .burst(100)
                .clock(sim.clock()),
        ))
        .build()
        .unwrap();

    let calls: Vec<_> = (0..500)
        .map(|i| {
            let upstream = upstream.clone();
            tokio::spawn(async move { upstream.execute(charge(i)).await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().expect("every call succeeds");
    }

    let ledger = sim.ledger();
    let stats = upstream.stats();
    assert_eq!(stats.calls, 500);
    assert_eq!(ledger.total_side_effects(), 500);
    assert_eq!(ledger.duplicates(), 0);
    assert!(
        ledger.requests() as f64 <= 1.05 * 500.0,
        "{} requests for 500 calls",
        ledger.requests()
    );
    assert!(
        ledger.throttled() as f64 <= 0.02 * ledger.requests() as f64,
        "{} of {} requests were throttled",
        ledger.throttled(),
        ledger.requests()
    );
}

#[tokio::test(start_paused = true)]
async fn resets_after_commit_on_keyed_posts_leave_exactly_one_side_effect_per_call() {
    let sim = SimUpstream::builder()
        .faults(FaultPlan::new().random(0.2, Fault::ResetAfterCommit))
        .seed(3)
        .build();
    let upstream = client(&sim, GenericProvider::new())
        .policy(CallPolicy::new().max_attempts(8))
        .build()
        .unwrap();

    let calls: Vec<_> = (0..1000)
        .map(|i| {
            let upstream = upstream.clone();
            tokio::spawn(async move { upstream.execute(charge(i)).await })
        })
        .collect();
    let mut failures = 0;
    for call in calls {
        match call.await.unwrap() {
            Ok(response) => assert!(response.idempotency_key.is_some()),
            Err(error) => {
                failures += 1;
                assert!(matches!(error, Error::Interrupted { .. }), "{error}");
            }
        }
    }

    let ledger = sim.ledger();
    assert!(
        ledger.resets() > 100,
        "the fault plan fired: {}",
        ledger.resets()
    );
    assert_eq!(ledger.duplicates(), 0);
    assert_eq!(ledger.total_side_effects(), 1000, "{failures} calls failed");
    assert!(
        ledger.replays() > 0,
        "retries after a committed reset were replays"
    );
}

#[tokio::test(start_paused = true)]
async fn without_a_key_an_ambiguous_failure_is_not_retried_and_the_error_says_why() {
    let sim = SimUpstream::builder()
        .dialect(GenericDialect::default().idempotency_header(None))
        .faults(FaultPlan::new().request(0, Fault::ResetAfterCommit))
        .build();
    let upstream = client(&sim, GenericProvider::without_idempotency())
        .build()
        .unwrap();

    let error = upstream.execute(charge(1)).await.unwrap_err();
    assert!(matches!(error, Error::Ambiguous { .. }), "{error:?}");
    let text = error.to_string();
    assert!(text.contains("a retry could duplicate"), "{text}");
    assert!(text.contains("charges.create"), "{text}");
    assert_eq!(sim.ledger().requests(), 1, "nothing was retried");
    assert_eq!(sim.ledger().total_side_effects(), 1);
}

#[tokio::test(start_paused = true)]
async fn the_same_key_is_sent_on_every_attempt() {
    // Attempt 1 commits and then loses its connection; attempt 2 meets a 503; attempt 3 can
    // only be answered by a replay if it carries attempt 1's key.
    let sim = SimUpstream::builder()
        .faults(
            FaultPlan::new()
                .request(0, Fault::ResetAfterCommit)
                .request(1, Fault::unavailable()),
        )
        .build();
    let upstream = client(&sim, GenericProvider::new()).build().unwrap();
    let key = IdempotencyKey::parse("order-42").unwrap();

    let response = upstream
        .execute(charge(42).idempotency_key(key.clone()))
        .await
        .unwrap();
    assert_eq!(response.attempts, 3);
    assert_eq!(response.idempotency_key, Some(key));
    let ledger = sim.ledger();
    assert_eq!(ledger.requests(), 3);
    assert_eq!(ledger.replays(), 1);
    assert_eq!(ledger.side_effects_for("POST /v1/charges", "order-42"), 1);
    assert_eq!(ledger.total_side_effects(), 1);
}

async fn observed_wait(format: RetryAfterFormat, hint_secs: u64) -> Duration {
    let sim = SimUpstream::builder()
        .dialect(GenericDialect::default().retry_after_format(format))
        .faults(FaultPlan::new().request(0, Fault::throttle(Duration::from_secs(hint_secs))))
        .latency(Duration::ZERO)
        .build();
    let upstream = client(&sim, GenericProvider::new()).build().unwrap();
    let clock = TokioClock::new();
    let start = clock.now();
    upstream.execute(charge(1)).await.unwrap();
    clock.now() - start
}

#[tokio::test(start_paused = true)]
async fn retry_after_in_seconds_is_honoured_on_the_wire() {
    let waited = observed_wait(RetryAfterFormat::Seconds, 7).await;
    assert!(
        waited.abs_diff(Duration::from_secs(7)) <= Duration::from_millis(50),
        "{waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn retry_after_as_an_http_date_is_honoured_on_the_wire() {
    let waited = observed_wait(RetryAfterFormat::HttpDate, 9).await;
    // An HTTP date has whole seconds: the wait is the hint, give or take the sub-second part.
    assert!(
        waited.abs_diff(Duration::from_secs(9)) <= Duration::from_millis(1000),
        "{waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_hint_beyond_the_clamp_returns_the_typed_error_at_once() {
    let sim = SimUpstream::builder()
        .faults(FaultPlan::new().request(0, Fault::throttle(Duration::from_secs(3600))))
        .build();
    let upstream = client(&sim, GenericProvider::new()).build().unwrap();
    let clock = TokioClock::new();
    let start = clock.now();
    let error = upstream.execute(charge(1)).await.unwrap_err();
    match &error {
        Error::RetryAfterTooLong { hint, .. } => assert_eq!(hint.wait, Duration::from_secs(3600)),
        other => panic!("unexpected {other:?}"),
    }
    assert!(
        clock.now() - start < Duration::from_secs(1),
        "no sleep on a refused hint"
    );
    assert_eq!(sim.ledger().requests(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_400_is_never_retried() {
    let sim = SimUpstream::builder()
        .faults(FaultPlan::new().request(
            0,
            Fault::ServerError {
                status: http::StatusCode::BAD_REQUEST,
            },
        ))
        .build();
    let upstream = client(&sim, GenericProvider::new()).build().unwrap();
    let error = upstream.execute(charge(1)).await.unwrap_err();
    assert_eq!(error.status(), Some(http::StatusCode::BAD_REQUEST));
    assert_eq!(sim.ledger().requests(), 1);
}

#[tokio::test(start_paused = true)]
async fn every_error_of_a_keyed_call_carries_the_key_every_attempt_sent() {
    let sim = SimUpstream::builder()
        .faults(FaultPlan::new().requests(
            0..100,
            Fault::server_error(http::StatusCode::SERVICE_UNAVAILABLE),
        ))
        .build();
    let upstream = client(&sim, GenericProvider::new()).build().unwrap();
    let key = IdempotencyKey::new();
    let err = upstream
        .execute(charge(7).idempotency_key(key.clone()))
        .await
        .unwrap_err();
    assert_eq!(err.idempotency_key(), Some(&key), "{err:?}");
    assert!(sim.ledger().requests() > 1, "the call was retried");
    // A minted key is reported too.
    let err = upstream.execute(charge(8)).await.unwrap_err();
    assert!(err.idempotency_key().is_some());
}
