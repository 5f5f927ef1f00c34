//! The pipeline end to end over real sockets: `Upstream` with its default `ReqwestTransport`
//! against a `SimServer` on loopback. Real time (never paused), generous bounds, a few seconds
//! of wall time per test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, StatusCode};
use ratewise_core::breaker::{BreakerConfig, BreakerState};
use ratewise_core::clock::{Clock, TokioClock};
use ratewise_core::error::Error;
use ratewise_core::limit::{GcraLimiter, Rate};
use ratewise_core::provider::RequestSpec;
use ratewise_core::upstream::{CallPolicy, Upstream, UpstreamBuilder};
use ratewise_testkit::{
    Dialect, Fault, FaultPlan, GenericDialect, GenericProvider, IdempotencyError, ResponseContext,
    RetryAfterFormat, ServerLimit, SimServer, SimUpstream,
};

fn client(server: &SimServer, provider: GenericProvider) -> UpstreamBuilder<GenericProvider> {
    Upstream::builder(provider, server.base_url()).seed(7)
}

fn charge(i: usize) -> RequestSpec {
    RequestSpec::post("/v1/charges", "charges.create")
        .body("application/json", format!("{{\"amount\":{i}}}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_200_callers_against_100_per_second_all_succeed_without_amplification() {
    let sim = SimUpstream::builder()
        .limit(ServerLimit::token_bucket(100.0, 100))
        .seed(1)
        .build();
    let server = SimServer::start(sim).await.unwrap();
    // The client paces at the server's rate with half its burst: over real sockets requests
    // overtake each other by a few ms (100 connections opening at once), and the server's
    // spare 50 tokens absorb that instead of answering 429. In virtual time the full burst works.
    let upstream = client(&server, GenericProvider::new())
        .limiter(Arc::new(GcraLimiter::new(Rate::per_second(100)).burst(50)))
        .build()
        .unwrap();

    let calls: Vec<_> = (0..200)
        .map(|i| {
            let upstream = upstream.clone();
            tokio::spawn(async move { upstream.execute(charge(i)).await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().expect("every call succeeds");
    }

    let ledger = server.upstream().ledger();
    assert_eq!(upstream.stats().calls, 200);
    assert_eq!(ledger.total_side_effects(), 200);
    assert_eq!(ledger.duplicates(), 0);
    assert!(
        ledger.requests() as f64 <= 1.05 * 200.0,
        "{} requests for 200 calls",
        ledger.requests()
    );
    assert!(
        ledger.throttled() as f64 <= 0.02 * ledger.requests() as f64,
        "{} of {} requests were throttled",
        ledger.throttled(),
        ledger.requests()
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resets_after_commit_on_keyed_posts_leave_exactly_one_side_effect_per_call() {
    let sim = SimUpstream::builder()
        .faults(FaultPlan::new().random(0.2, Fault::ResetAfterCommit))
        .latency(Duration::from_millis(1))
        .seed(3)
        .build();
    let server = SimServer::start(sim).await.unwrap();
    let upstream = client(&server, GenericProvider::new())
        .policy(CallPolicy::new().max_attempts(8))
        .build()
        .unwrap();

    let calls: Vec<_> = (0..200)
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
                assert!(matches!(error, Error::Interrupted { .. }), "{error:?}");
            }
        }
    }

    let ledger = server.upstream().ledger();
    assert!(ledger.resets() >= 20, "the fault plan fired: {ledger:?}");
    assert_eq!(ledger.duplicates(), 0, "{ledger:?}");
    assert_eq!(
        ledger.total_side_effects(),
        200,
        "{failures} calls failed; {ledger:?}"
    );
    assert!(
        ledger.replays() > 0,
        "retries after a committed reset were replays"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn without_a_key_a_reset_after_commit_is_not_retried_and_the_error_says_why() {
    let sim = SimUpstream::builder()
        .dialect(GenericDialect::default().idempotency_header(None))
        .faults(FaultPlan::new().request(0, Fault::ResetAfterCommit))
        .build();
    let server = SimServer::start(sim).await.unwrap();
    let upstream = client(&server, GenericProvider::without_idempotency())
        .build()
        .unwrap();

    let error = upstream.execute(charge(1)).await.unwrap_err();
    assert!(matches!(error, Error::Ambiguous { .. }), "{error:?}");
    let text = error.to_string();
    assert!(text.contains("a retry could duplicate"), "{text}");
    assert!(text.contains("charges.create"), "{text}");
    let ledger = server.upstream().ledger();
    assert_eq!(ledger.requests(), 1, "nothing was retried");
    assert_eq!(ledger.total_side_effects(), 1);
    assert_eq!(ledger.resets(), 1);
    server.shutdown().await;
}

/// How long one call took on the real clock, the wall time it started, and the server.
async fn timed_call(sim: SimUpstream, limiters: bool) -> (Duration, SystemTime, SimServer) {
    let server = SimServer::start(sim).await.unwrap();
    let mut builder = client(&server, GenericProvider::new());
    if !limiters {
        builder = builder.limiters(Vec::new());
    }
    let upstream = builder.build().unwrap();
    let clock = TokioClock::new();
    let (start, wall) = (clock.now(), clock.wall());
    upstream.execute(charge(1)).await.unwrap();
    (clock.now() - start, wall, server)
}

fn throttled_once(format: RetryAfterFormat, hint: Duration) -> SimUpstream {
    SimUpstream::builder()
        .dialect(GenericDialect::default().retry_after_format(format))
        .faults(FaultPlan::new().request(0, Fault::throttle(hint)))
        .latency(Duration::ZERO)
        .build()
}

#[tokio::test]
async fn retry_after_in_seconds_is_honoured_within_50_ms() {
    let hint = Duration::from_secs(1);
    let (took, _, server) = timed_call(throttled_once(RetryAfterFormat::Seconds, hint), true).await;
    assert!(
        took >= hint && took <= hint + Duration::from_millis(50),
        "{took:?}"
    );
    assert_eq!(server.upstream().ledger().requests(), 2);
}

/// `time` rounded up to the whole second, as an HTTP date or an epoch reset carries it.
fn ceil_to_second(time: SystemTime) -> SystemTime {
    let since = time.duration_since(SystemTime::UNIX_EPOCH).unwrap();
    let whole = Duration::from_secs(since.as_secs());
    let up = if since > whole {
        whole + Duration::from_secs(1)
    } else {
        whole
    };
    SystemTime::UNIX_EPOCH + up
}

#[tokio::test]
async fn retry_after_as_an_http_date_is_honoured_to_the_second_it_names() {
    // An HTTP date has whole seconds and the server rounds up, so the wait it names is the hint
    // plus the rest of the current second: between 2 and 3 s here. The client must wait until
    // that date, within 50 ms. The server read its wall clock a few ms after `wall`; allow that
    // to cross a second boundary (then the date is one second later).
    let hint = Duration::from_secs(2);
    let (took, wall, server) =
        timed_call(throttled_once(RetryAfterFormat::HttpDate, hint), true).await;
    let slack = Duration::from_millis(50);
    let earliest = ceil_to_second(wall + hint).duration_since(wall).unwrap();
    let latest = ceil_to_second(wall + slack + hint)
        .duration_since(wall)
        .unwrap();
    assert!(
        took + slack >= earliest && took <= latest + slack,
        "took {took:?}, the date named {earliest:?} (or {latest:?})"
    );
    assert_eq!(server.upstream().ledger().requests(), 2);
}

/// The generic dialect without `Retry-After`: a throttle says when only through
/// `X-RateLimit-Remaining: 0` and the epoch `X-RateLimit-Reset`.
#[derive(Debug)]
struct ResetHeadersOnly(GenericDialect);

impl Dialect for ResetHeadersOnly {
    fn throttle_response(&self, ctx: &ResponseContext<'_>) -> http::Response<Bytes> {
        let mut response = self.0.throttle_response(ctx);
        response.headers_mut().remove(http::header::RETRY_AFTER);
        response
    }
    fn server_error_response(
        &self,
        status: StatusCode,
        ctx: &ResponseContext<'_>,
    ) -> http::Response<Bytes> {
        self.0.server_error_response(status, ctx)
    }
    fn idempotency_error_response(
        &self,
        error: IdempotencyError,
        ctx: &ResponseContext<'_>,
    ) -> http::Response<Bytes> {
        self.0.idempotency_error_response(error, ctx)
    }
    fn decorate(&self, headers: &mut HeaderMap, ctx: &ResponseContext<'_>) {
        self.0.decorate(headers, ctx);
    }
}

#[tokio::test]
async fn an_exhausted_quota_is_waited_out_until_its_epoch_reset() {
    // One request per 2 s window; a raw request spends it, so the pipeline's first attempt is
    // refused with `X-RateLimit-Remaining: 0` and the window's end in epoch seconds (rounded
    // up), and no `Retry-After`. The client's own pacer is left out: the 429 alone must say
    // when. The reset names an exact second: the wait must not end before it.
    let sim = SimUpstream::builder()
        .dialect(ResetHeadersOnly(GenericDialect::default()))
        .limit(ServerLimit::fixed_window(1, Duration::from_secs(2)))
        .latency(Duration::ZERO)
        .build();
    let server = SimServer::start(sim.clone()).await.unwrap();
    let spent = reqwest::Client::new()
        .post(format!("{}/v1/charges", server.base_url()))
        .body("{\"amount\":0}")
        .send()
        .await
        .unwrap();
    assert_eq!(spent.status(), StatusCode::OK);
    let remaining = HeaderName::from_static("x-ratelimit-remaining");
    assert_eq!(spent.headers()[&remaining], "0");
    let reset: u64 = spent.headers()["x-ratelimit-reset"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let reset = SystemTime::UNIX_EPOCH + Duration::from_secs(reset);

    let upstream = client(&server, GenericProvider::new())
        .limiters(Vec::new())
        .build()
        .unwrap();
    let clock = TokioClock::new();
    let (start, wall) = (clock.now(), clock.wall());
    upstream.execute(charge(1)).await.unwrap();
    let took = clock.now() - start;
    let expected = reset.duration_since(wall).unwrap();
    // Never early (a 50 ms allowance for rounding); late only by scheduling, which a loaded
    // 2-core machine can stretch, so that side is generous.
    assert!(
        took + Duration::from_millis(50) >= expected && took <= expected + Duration::from_secs(1),
        "took {took:?}, the reset was {expected:?} away"
    );
    let ledger = sim.ledger();
    assert_eq!(ledger.throttled(), 1, "{ledger:?}");
    assert_eq!(ledger.requests(), 3);
    server.shutdown().await;
}

#[tokio::test]
async fn a_short_outage_opens_the_breaker_and_refused_calls_fail_in_under_a_millisecond() {
    const CALLERS: usize = 10;
    const RUN: Duration = Duration::from_millis(4500);
    let sim = SimUpstream::builder()
        .faults(FaultPlan::new().outage(Duration::ZERO, Duration::from_secs(3)))
        .latency(Duration::from_millis(1))
        .build();
    let server = SimServer::start(sim.clone()).await.unwrap();
    let upstream = client(&server, GenericProvider::new())
        .breaker(
            BreakerConfig::new()
                .window(Duration::from_secs(2))
                .min_calls(5)
                .open_for(Duration::from_secs(1)),
        )
        .policy(CallPolicy::new().max_attempts(1))
        .build()
        .unwrap();
    let seen = Arc::new(Mutex::new(Vec::<(BreakerState, u64, Duration)>::new()));
    {
        let (seen, sim) = (Arc::clone(&seen), sim.clone());
        upstream.breaker().on_transition(move |t| {
            seen.lock()
                .unwrap()
                .push((t.to, sim.ledger().requests(), sim.elapsed()));
        });
    }

    let callers: Vec<_> = (0..CALLERS)
        .map(|_| {
            let (upstream, sim) = (upstream.clone(), sim.clone());
            tokio::spawn(async move {
                let clock = TokioClock::new();
                let mut ticks = tokio::time::interval(Duration::from_millis(10));
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                let mut calls = Vec::new();
                while sim.elapsed() < RUN {
                    ticks.tick().await;
                    let started = sim.elapsed();
                    let before = clock.now();
                    let result = upstream
                        .execute(RequestSpec::get("/v1/things", "things.get"))
                        .await;
                    calls.push((started, clock.now() - before, result.map(|_| ())));
                }
                calls
            })
        })
        .collect();
    let mut calls = Vec::new();
    for caller in callers {
        calls.extend(caller.await.unwrap());
    }
    let seen = seen.lock().unwrap().clone();

    // The breaker opened, re-opened on failed probes, and closed after the outage.
    assert!(
        matches!(seen.first(), Some((BreakerState::Open { .. }, _, _))),
        "{seen:?}"
    );
    let (last, _, closed_at) = seen.last().unwrap();
    assert_eq!(*last, BreakerState::Closed, "{seen:?}");
    assert!(*closed_at >= Duration::from_secs(3), "{seen:?}");
    // While not closed, only the probes reached the server.
    for pair in seen.windows(2) {
        if let [
            (BreakerState::Open { .. }, from, _),
            (BreakerState::Open { .. } | BreakerState::Closed, to, _),
        ] = pair
        {
            assert!(to - from <= 1, "{seen:?}");
        }
    }

    // Refused calls fail fast: p99 under a millisecond of real time.
    let mut refused: Vec<Duration> = calls
        .iter()
        .filter(|(_, _, r)| matches!(r, Err(Error::CircuitOpen { .. })))
        .map(|(_, took, _)| *took)
        .collect();
    assert!(refused.len() >= 500, "{} refused", refused.len());
    refused.sort();
    let p99 = refused[refused.len() * 99 / 100];
    assert!(
        p99 < Duration::from_millis(1),
        "p99 {p99:?} over {} refusals",
        refused.len()
    );

    // After the close, calls succeed.
    let after: Vec<_> = calls
        .iter()
        .filter(|(started, _, _)| *started > *closed_at + Duration::from_millis(100))
        .collect();
    assert!(after.len() >= 100, "{} calls after the close", after.len());
    assert!(after.iter().all(|(_, _, r)| r.is_ok()));
    assert_eq!(upstream.stats().breaker, BreakerState::Closed);
    server.shutdown().await;
}
