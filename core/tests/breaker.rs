//! The circuit breaker's state machine, as a specification, on a manual clock (and tokio's
//! virtual time where a test sleeps).

#![allow(clippy::unwrap_used)] // helpers outside `#[test]` fns too

use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

use http::StatusCode;
use ratewise_core::breaker::{
    BreakerConfig, BreakerState, CallOutcome, CircuitBreaker, Outcome, Transition, TransitionCause,
};
use ratewise_core::clock::{Clock, ManualClock, TokioClock};

const SEC: Duration = Duration::from_secs(1);

fn breaker(config: BreakerConfig) -> (CircuitBreaker, ManualClock) {
    let clock = ManualClock::new();
    (CircuitBreaker::new(config, clock.shared()), clock)
}

fn small() -> BreakerConfig {
    BreakerConfig::default().min_calls(4)
}

fn call(breaker: &CircuitBreaker, outcome: Outcome) {
    breaker.admit().unwrap().record(outcome);
}

fn calls(breaker: &CircuitBreaker, outcome: Outcome, n: usize) {
    for _ in 0..n {
        call(breaker, outcome);
    }
}

/// Trips a `small()` breaker: 4 failures.
fn trip(breaker: &CircuitBreaker) {
    calls(breaker, Outcome::Failure, 4);
    assert!(matches!(breaker.state(), BreakerState::Open { .. }));
}

fn record_transitions(breaker: &CircuitBreaker) -> Arc<Mutex<Vec<Transition>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    breaker.on_transition(move |t| sink.lock().unwrap().push(t.clone()));
    seen
}

#[test]
fn a_new_breaker_is_closed_and_counts_calls_in_its_window() {
    let (breaker, _) = breaker(BreakerConfig::default());
    assert_eq!(breaker.state(), BreakerState::Closed);
    calls(&breaker, Outcome::Success, 3);
    calls(&breaker, Outcome::Failure, 1);
    let stats = breaker.window_stats();
    assert_eq!((stats.calls, stats.failures), (4, 1));
    assert!((stats.failure_rate() - 0.25).abs() < 1e-9);
}

#[test]
fn it_trips_when_the_failure_rate_reaches_the_threshold_with_enough_calls() {
    let (breaker, clock) = breaker(BreakerConfig::default());
    calls(&breaker, Outcome::Success, 10);
    calls(&breaker, Outcome::Failure, 9);
    assert_eq!(
        breaker.state(),
        BreakerState::Closed,
        "19 calls: below the minimum"
    );
    call(&breaker, Outcome::Failure);
    assert_eq!(
        breaker.state(),
        BreakerState::Open {
            until: clock.now() + Duration::from_secs(30)
        }
    );
}

#[test]
fn it_never_trips_below_the_minimum_volume_even_at_100_percent_failures() {
    let (breaker, _) = breaker(BreakerConfig::default());
    calls(&breaker, Outcome::Failure, 19);
    assert_eq!(breaker.state(), BreakerState::Closed);
    assert_eq!(breaker.window_stats().failures, 19);
}

#[test]
fn it_stays_closed_below_the_failure_rate() {
    let (breaker, _) = breaker(BreakerConfig::default());
    calls(&breaker, Outcome::Failure, 9);
    calls(&breaker, Outcome::Success, 11);
    calls(&breaker, Outcome::Failure, 1);
    assert_eq!(
        breaker.state(),
        BreakerState::Closed,
        "10 of 21 is below 50 %"
    );
}

#[test]
fn a_success_that_brings_a_failing_window_to_the_minimum_volume_trips_it() {
    let (breaker, _) = breaker(small());
    calls(&breaker, Outcome::Failure, 3);
    call(&breaker, Outcome::Success);
    assert!(matches!(breaker.state(), BreakerState::Open { .. }));
}

#[test]
fn an_old_failure_leaves_the_window_when_its_bucket_expires() {
    let (breaker, clock) = breaker(small().failure_rate(1.0));
    calls(&breaker, Outcome::Failure, 3);
    clock.advance(Duration::from_secs(10));
    assert_eq!(breaker.window_stats().calls, 0);
    call(&breaker, Outcome::Failure);
    assert_eq!(
        breaker.state(),
        BreakerState::Closed,
        "the 3 old failures expired"
    );
    calls(&breaker, Outcome::Failure, 3);
    assert!(matches!(breaker.state(), BreakerState::Open { .. }));
}

#[test]
fn a_failure_still_counts_until_its_bucket_expires() {
    let (breaker, clock) = breaker(small());
    call(&breaker, Outcome::Failure);
    clock.advance(Duration::from_millis(9_999));
    assert_eq!(breaker.window_stats().failures, 1);
    clock.advance(Duration::from_millis(1));
    assert_eq!(breaker.window_stats().failures, 0);
}

#[test]
fn ignored_outcomes_and_dropped_permits_are_not_counted() {
    let (breaker, _) = breaker(small());
    call(&breaker, Outcome::Ignored);
    drop(breaker.admit().unwrap());
    assert_eq!(breaker.window_stats().calls, 0);
}

#[test]
fn an_open_breaker_fails_fast_saying_until_when() {
    let (breaker, clock) = breaker(small().name("stripe"));
    trip(&breaker);
    clock.advance(Duration::from_secs(10));
    let refused = breaker.admit().unwrap_err();
    assert_eq!(refused.remaining, Duration::from_secs(20));
    assert_eq!(refused.retry_after(clock.now()), Duration::from_secs(20));
    assert!(!refused.probing);
    assert_eq!(&*refused.breaker, "stripe");
    assert_eq!(
        refused.to_string(),
        "circuit `stripe` open until 20s from now: the upstream is failing; failing fast"
    );
}

#[test]
fn it_reaches_half_open_after_the_open_period_with_no_traffic_in_between() {
    // opossum#385: the half-open transition must not depend on a timer or on traffic.
    let (breaker, clock) = breaker(small());
    trip(&breaker);
    clock.advance(Duration::from_secs(30) - Duration::from_nanos(1));
    assert!(matches!(breaker.state(), BreakerState::Open { .. }));
    clock.advance(Duration::from_nanos(1));
    assert_eq!(breaker.state(), BreakerState::HalfOpen);

    let (idle, clock) = self::breaker(small());
    trip(&idle);
    clock.advance(Duration::from_secs(3600));
    assert!(idle.admit().unwrap().is_probe());
}

#[tokio::test(start_paused = true)]
async fn in_virtual_time_a_sleeping_caller_finds_the_breaker_half_open() {
    let breaker = CircuitBreaker::new(small(), TokioClock::shared());
    trip(&breaker);
    let until = breaker.admit().unwrap_err().until;
    tokio::time::sleep_until(tokio::time::Instant::from_std(until)).await;
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
}

#[test]
fn half_open_admits_exactly_the_configured_number_of_probes() {
    let (breaker, clock) = breaker(small().half_open_probes(3));
    trip(&breaker);
    clock.advance(Duration::from_secs(30));
    let probes: Vec<_> = (0..3).map(|_| breaker.admit().unwrap()).collect();
    assert!(probes.iter().all(|p| p.is_probe()));
    let refused = breaker.admit().unwrap_err();
    assert!(refused.probing);
    assert_eq!(refused.remaining, SEC, "look again in one bucket");
}

#[test]
fn half_open_admits_exactly_the_probes_with_many_concurrent_callers() {
    // opossum#119: concurrent callers must not all slip through as probes.
    for probes in [1, 3] {
        let (breaker, clock) = breaker(small().half_open_probes(probes));
        trip(&breaker);
        clock.advance(Duration::from_secs(30));
        let callers = 32;
        let start = Barrier::new(callers);
        let admitted: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..callers)
                .map(|_| {
                    s.spawn(|| {
                        start.wait();
                        breaker.admit().ok()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let admitted: Vec<_> = admitted.into_iter().flatten().collect();
        assert_eq!(admitted.len(), probes as usize);
    }
}

#[test]
fn a_failed_probe_reopens_the_breaker_for_another_open_period() {
    let (breaker, clock) = breaker(small());
    trip(&breaker);
    clock.advance(Duration::from_secs(30));
    breaker.admit().unwrap().record(Outcome::Failure);
    assert_eq!(
        breaker.state(),
        BreakerState::Open {
            until: clock.now() + Duration::from_secs(30)
        }
    );
}

#[test]
fn the_configured_number_of_successful_probes_closes_it_with_an_empty_window() {
    let (breaker, clock) = breaker(small().half_open_probes(2));
    trip(&breaker);
    clock.advance(Duration::from_secs(30));
    let (a, b) = (breaker.admit().unwrap(), breaker.admit().unwrap());
    a.record(Outcome::Success);
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
    assert!(
        breaker.admit().is_err(),
        "a success does not free a probe slot"
    );
    b.record(Outcome::Success);
    assert_eq!(breaker.state(), BreakerState::Closed);
    assert_eq!(breaker.window_stats().calls, 0);
    call(&breaker, Outcome::Failure);
    assert_eq!(breaker.state(), BreakerState::Closed);
}

#[test]
fn a_probe_dropped_without_an_outcome_frees_its_slot() {
    let (breaker, clock) = breaker(small());
    trip(&breaker);
    clock.advance(Duration::from_secs(30));
    let probe = breaker.admit().unwrap();
    assert!(breaker.admit().is_err());
    drop(probe);
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
    breaker.admit().unwrap().record(Outcome::Ignored);
    breaker.admit().unwrap().record(Outcome::Success);
    assert_eq!(breaker.state(), BreakerState::Closed);
}

#[test]
fn a_call_slower_than_the_threshold_counts_as_a_failure() {
    let (breaker, clock) = breaker(small().slow_call(Duration::from_secs(2)));
    for _ in 0..4 {
        let permit = breaker.admit().unwrap();
        clock.advance(Duration::from_millis(2_001));
        permit.record(Outcome::Success);
    }
    assert!(matches!(breaker.state(), BreakerState::Open { .. }));
}

#[test]
fn a_call_at_the_slow_threshold_is_not_slow() {
    let (breaker, clock) = breaker(small().slow_call(Duration::from_secs(2)));
    let permit = breaker.admit().unwrap();
    clock.advance(Duration::from_secs(2));
    permit.record(Outcome::Success);
    assert_eq!(breaker.window_stats().failures, 0);
}

#[test]
fn a_slow_probe_reopens_the_breaker() {
    let (breaker, clock) = breaker(small().slow_call(Duration::from_secs(2)));
    trip(&breaker);
    clock.advance(Duration::from_secs(30));
    let probe = breaker.admit().unwrap();
    clock.advance(Duration::from_secs(5));
    probe.record(Outcome::Success);
    assert!(matches!(breaker.state(), BreakerState::Open { .. }));
}

#[test]
fn slow_calls_are_not_counted_when_the_threshold_is_off() {
    let (breaker, clock) = breaker(small());
    let permit = breaker.admit().unwrap();
    clock.advance(Duration::from_secs(3600));
    permit.record(Outcome::Success);
    assert_eq!(breaker.window_stats().failures, 0);
}

#[test]
fn a_429_storm_does_not_open_the_breaker() {
    let (breaker, _) = breaker(small());
    for _ in 0..100 {
        let permit = breaker.admit().unwrap();
        permit.record_call(&CallOutcome::from_status(StatusCode::TOO_MANY_REQUESTS));
    }
    assert_eq!(breaker.state(), BreakerState::Closed);
}

#[test]
fn server_errors_and_timeouts_open_the_breaker() {
    let (breaker, _) = breaker(small());
    for outcome in [
        CallOutcome::from_status(StatusCode::BAD_GATEWAY),
        CallOutcome::Timeout,
        CallOutcome::Connect,
        CallOutcome::from_status(StatusCode::SERVICE_UNAVAILABLE),
    ] {
        breaker.admit().unwrap().record_call(&outcome);
    }
    assert!(matches!(breaker.state(), BreakerState::Open { .. }));
}

#[test]
fn open_until_opens_a_closed_breaker_until_the_servers_time_then_half_open() {
    let (breaker, clock) = breaker(small());
    let until = clock.now() + Duration::from_secs(90);
    breaker.open_until(until);
    assert_eq!(breaker.state(), BreakerState::Open { until });
    assert_eq!(breaker.admit().unwrap_err().until, until);
    clock.advance(Duration::from_secs(90));
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
}

#[test]
fn open_until_extends_an_open_period_but_never_shortens_it() {
    let (breaker, clock) = breaker(small());
    trip(&breaker);
    let tripped_until = clock.now() + Duration::from_secs(30);
    breaker.open_until(clock.now() + Duration::from_secs(5));
    assert_eq!(
        breaker.state(),
        BreakerState::Open {
            until: tripped_until
        }
    );
    let later = clock.now() + Duration::from_secs(60);
    breaker.open_until(later);
    assert_eq!(breaker.state(), BreakerState::Open { until: later });
}

#[test]
fn open_until_a_past_instant_does_nothing() {
    let (breaker, clock) = breaker(small());
    clock.advance(SEC);
    breaker.open_until(clock.now() - SEC);
    breaker.open_until(clock.now());
    assert_eq!(breaker.state(), BreakerState::Closed);
}

#[test]
fn open_until_during_half_open_voids_the_probes_in_flight() {
    let (breaker, clock) = breaker(small());
    trip(&breaker);
    clock.advance(Duration::from_secs(30));
    let probe = breaker.admit().unwrap();
    breaker.open_until(clock.now() + Duration::from_secs(10));
    probe.record(Outcome::Success);
    assert!(matches!(breaker.state(), BreakerState::Open { .. }));
    clock.advance(Duration::from_secs(10));
    breaker.admit().unwrap().record(Outcome::Success);
    assert_eq!(breaker.state(), BreakerState::Closed);
}

#[test]
fn a_call_admitted_before_the_trip_is_not_counted_after_it() {
    let (breaker, clock) = breaker(small());
    let late = breaker.admit().unwrap();
    trip(&breaker);
    clock.advance(Duration::from_secs(30));
    late.record(Outcome::Success);
    assert_eq!(
        breaker.state(),
        BreakerState::HalfOpen,
        "not a probe: not counted"
    );
}

#[test]
fn listeners_receive_every_transition_in_order_with_its_failure_rate() {
    let (breaker, clock) = breaker(small());
    let seen = record_transitions(&breaker);
    call(&breaker, Outcome::Success);
    calls(&breaker, Outcome::Failure, 3);
    let opened_at = clock.now();
    clock.advance(Duration::from_secs(30));
    breaker.admit().unwrap().record(Outcome::Success);

    let seen = seen.lock().unwrap();
    let summary: Vec<_> = seen.iter().map(|t| (t.from, t.to, t.cause)).collect();
    let until = opened_at + Duration::from_secs(30);
    assert_eq!(
        summary,
        [
            (
                BreakerState::Closed,
                BreakerState::Open { until },
                TransitionCause::FailureRate
            ),
            (
                BreakerState::Open { until },
                BreakerState::HalfOpen,
                TransitionCause::OpenPeriodElapsed
            ),
            (
                BreakerState::HalfOpen,
                BreakerState::Closed,
                TransitionCause::ProbesSucceeded
            ),
        ]
    );
    assert!((seen[0].failure_rate - 0.75).abs() < 1e-9);
    assert!((seen[1].failure_rate - 0.75).abs() < 1e-9);
    assert!(seen[2].failure_rate.abs() < 1e-9);
    assert_eq!(seen[0].at, opened_at);
    assert_eq!(&*seen[0].breaker, "default");
}

#[test]
fn a_listener_may_read_the_breaker_without_deadlocking() {
    let (breaker, clock) = breaker(small());
    let states = Arc::new(Mutex::new(Vec::new()));
    let (inner, sink) = (breaker.clone(), Arc::clone(&states));
    breaker.on_transition(move |_| sink.lock().unwrap().push(inner.state()));
    trip(&breaker);
    clock.advance(Duration::from_secs(30));
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
    assert_eq!(states.lock().unwrap().len(), 2);
}

#[test]
fn a_panicking_listener_does_not_break_the_breaker() {
    let (breaker, clock) = breaker(small());
    breaker.on_transition(|_| panic!("listener bug"));
    let seen = record_transitions(&breaker);
    trip(&breaker);
    clock.advance(Duration::from_secs(30));
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
    assert_eq!(seen.lock().unwrap().len(), 2);
}

#[test]
fn transitions_are_traced_under_ratewise_breaker_with_the_breakers_name() {
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let sink = Sink::default();
    let writer = sink.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        let (breaker, _) = breaker(small().name("github"));
        trip(&breaker);
    });
    let out = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
    assert!(out.contains("WARN ratewise::breaker"), "{out}");
    assert!(
        out.contains("circuit `github` opened (failure_rate, failure rate 100 %)"),
        "{out}"
    );
    assert!(
        out.contains("breaker=\"github\"") || out.contains("breaker=github"),
        "{out}"
    );
}

#[test]
fn clones_share_one_state_and_the_breaker_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync + Clone + 'static>() {}
    assert_send_sync::<CircuitBreaker>();
    let (breaker, _) = breaker(small());
    let other = breaker.clone();
    trip(&other);
    assert!(breaker.admit().is_err());
    assert!(format!("{breaker:?}").contains("Open"));
}

#[tokio::test(start_paused = true)]
async fn an_owned_permit_moves_into_a_spawned_task_and_records_there() {
    let breaker = CircuitBreaker::new(small(), TokioClock::shared());
    trip(&breaker);
    tokio::time::sleep(Duration::from_secs(30)).await;
    let probe = breaker.admit_owned().unwrap();
    assert!(probe.is_probe());
    tokio::spawn(async move { probe.record(Outcome::Success) })
        .await
        .unwrap();
    assert_eq!(breaker.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_probe_frees_its_slot() {
    let breaker = CircuitBreaker::new(small(), TokioClock::shared());
    trip(&breaker);
    tokio::time::sleep(Duration::from_secs(30)).await;
    let probe = breaker.admit_owned().unwrap();
    let call = tokio::spawn(async move {
        let _probe = probe;
        tokio::time::sleep(Duration::from_secs(3600)).await;
    });
    tokio::task::yield_now().await;
    assert!(breaker.admit().unwrap_err().probing);
    call.abort();
    let _ = call.await;
    assert!(breaker.admit().unwrap().is_probe());
}
