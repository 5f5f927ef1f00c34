//! The pipeline's metrics (the core's `metrics` feature), exact values for a scripted fault
//! plan in virtual time, read from a `metrics_util` debugging recorder.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/metrics.rs"]
mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use metrics_util::debugging::DebuggingRecorder;
use ratewise_core::backoff::{Backoff, Jitter};
use ratewise_core::breaker::{BreakerConfig, BreakerState};
use ratewise_core::error::Error;
use ratewise_core::limit::{GcraLimiter, Rate};
use ratewise_core::provider::RequestSpec;
use ratewise_core::telemetry::metric;
use ratewise_core::upstream::{CallPolicy, Upstream};
use ratewise_testkit::{Fault, FaultPlan, GenericProvider, ServerLimit, SimUpstream};
use support::{paused_runtime, read, recorded};

fn charge(i: usize) -> RequestSpec {
    RequestSpec::post("/v1/charges", "charges.create")
        .body("application/json", format!("{{\"amount\":{i}}}"))
}

/// The script, second by second (no latency, constant 1 s backoff, a client limiter of one
/// request per second, a breaker tripping at 50 % of at least 4 calls and open 5 s):
///
/// - t=0 call A: 503; t=1: 429 `Retry-After: 1`; t=2: 200 (success after two retries);
/// - t=2 call B: waits 1 s for the limiter; t=3: 200;
/// - t=3 call C: waits 1 s; t=4: 503; t=5: 503, the breaker opens (3 failures of 6); t=6: its
///   retry is refused by the open breaker;
/// - t=6 call D: refused before any request (not a call: a breaker rejection);
/// - t=11 call E: the half-open probe, 200: the breaker closes.
async fn scenario() -> Upstream<GenericProvider> {
    let sim = SimUpstream::builder()
        .limit(ServerLimit::fixed_window(1000, Duration::from_secs(3600)))
        .faults(
            FaultPlan::new()
                .request(0, Fault::unavailable())
                .request(1, Fault::throttle(Duration::from_secs(1)))
                .requests(4..6, Fault::unavailable()),
        )
        .latency(Duration::ZERO)
        .build();
    let second = Duration::from_secs(1);
    let upstream = Upstream::builder(GenericProvider::new(), "http://sim.test")
        .transport(Arc::new(sim.transport()))
        .clock(sim.clock())
        .limiters(vec![Arc::new(
            GcraLimiter::new(Rate::per_second(1)).clock(sim.clock()),
        )])
        .breaker(
            BreakerConfig::new()
                .min_calls(4)
                .open_for(Duration::from_secs(5)),
        )
        .policy(
            CallPolicy::new().backoff(Backoff::new().base(second).cap(second).jitter(Jitter::None)),
        )
        .seed(1)
        .build()
        .unwrap();

    let a = upstream.execute(charge(1)).await.unwrap();
    assert_eq!(a.attempts, 3);
    assert_eq!(sim.elapsed(), Duration::from_secs(2));
    upstream.execute(charge(2)).await.unwrap();
    let c = upstream.execute(charge(3)).await.unwrap_err();
    assert!(matches!(c, Error::CircuitOpen { .. }), "{c:?}");
    assert_eq!(sim.elapsed(), Duration::from_secs(6));
    let d = upstream.execute(charge(4)).await.unwrap_err();
    assert!(matches!(d, Error::CircuitOpen { .. }), "{d:?}");
    tokio::time::sleep(Duration::from_secs(5)).await;
    upstream.execute(charge(5)).await.unwrap();
    assert_eq!(sim.ledger().requests(), 7);
    upstream
}

#[test]
fn a_scripted_run_emits_exactly_the_expected_counters_gauges_and_histograms() {
    let (upstream, got) = recorded(scenario());

    let g = "upstream=generic";
    let expected: BTreeMap<String, String> = [
        (format!("{}{{outcome=2xx,{g}}}", metric::REQUESTS), "3"),
        (format!("{}{{outcome=429,{g}}}", metric::REQUESTS), "1"),
        (format!("{}{{outcome=503,{g}}}", metric::REQUESTS), "3"),
        (
            format!("{}{{reason=rate_limited,{g}}}", metric::RETRIES),
            "1",
        ),
        (
            format!("{}{{reason=server_error,{g}}}", metric::RETRIES),
            "3",
        ),
        (format!("{}{{result=success,{g}}}", metric::CALLS), "2"),
        (
            format!("{}{{result=success_after_retry,{g}}}", metric::CALLS),
            "1",
        ),
        // One call failed after its retries; one was refused by the open breaker before any
        // attempt: both are failures the caller saw.
        (format!("{}{{result=failed,{g}}}", metric::CALLS), "2"),
        (format!("{}{{{g}}}", metric::BREAKER_STATE), "0"),
        (
            format!("{}{{to=open,{g}}}", metric::BREAKER_TRANSITIONS),
            "1",
        ),
        (
            format!("{}{{to=half_open,{g}}}", metric::BREAKER_TRANSITIONS),
            "1",
        ),
        (
            format!("{}{{to=closed,{g}}}", metric::BREAKER_TRANSITIONS),
            "1",
        ),
        (
            format!("{}{{budget=all,{g}}}", metric::THROTTLE_WAIT),
            "[1.0, 1.0]",
        ),
        // 1000 per hour; the three 2xx were charged, the faults were not.
        (
            format!("{}{{budget=requests,{g}}}", metric::QUOTA_REMAINING),
            "997",
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.to_owned()))
    .collect();
    assert_eq!(got, expected);

    // The in-process stats tell the same story.
    let stats = upstream.stats();
    assert_eq!(stats.calls, 5);
    assert_eq!(
        (
            stats.succeeded_first_try,
            stats.succeeded_after_retry,
            stats.failed
        ),
        (2, 1, 2)
    );
    assert_eq!((stats.requests, stats.retries), (7, 4));
    assert_eq!(stats.breaker_rejections, 2);
    assert_eq!(stats.throttle_waits, 2);
    assert_eq!(stats.throttle_wait_total, Duration::from_secs(2));
    assert_eq!(stats.breaker, BreakerState::Closed);
}

#[test]
fn without_a_recorder_in_scope_nothing_is_recorded() {
    let recorder = DebuggingRecorder::new();
    paused_runtime().block_on(scenario());
    assert!(read(&recorder).is_empty());
}
