//! The adaptive limiter reproduces the AWS SDKs' adaptive retry mode, number for number.
//!
//! Expected values are the test vectors of aws-sdk-go-v2 `aws/retry/adaptive_ratelimit_test.go`
//! (`TestAdaptiveRateLimit_cubic`, `TestAdaptiveRateLimit_Update`) and smithy-rs
//! `aws-smithy-runtime/src/client/retries/client_rate_limiter.rs` (`should_match_beta_decrease`,
//! `test_calculated_rate_with_successes`, `test_calculated_rate_with_throttles`,
//! `test_client_sending_rates`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use proptest::prelude::*;
use ratewise_core::clock::{Clock, ManualClock, TokioClock};
use ratewise_core::limit::adaptive::{
    AdaptiveRate, BETA, MIN_FILL_RATE, cubic_success, cubic_throttle, time_window,
};
use ratewise_core::limit::{AdaptiveLimiter, Cost, Feedback, Limiter, ThrottleReason};

fn assert_close(expected: f64, actual: f64, what: &str) {
    let tolerance = 1e-12 * expected.abs().max(1.0);
    assert!(
        (expected - actual).abs() <= tolerance,
        "{what}: expected {expected}, got {actual}"
    );
}

const MS_200: Duration = Duration::from_millis(200);

/// (throttled, t, measured rate, fill rate) from `test_client_sending_rates`.
const SENDING_RATES: [(bool, f64, f64, f64); 17] = [
    (false, 0.2, 0.0, 0.5),
    (false, 0.4, 0.0, 0.5),
    (false, 0.6, 4.800000000000001, 0.5),
    (false, 0.8, 4.800000000000001, 0.5),
    (false, 1.0, 4.16, 0.5),
    (false, 1.2, 4.16, 0.6912),
    (false, 1.4, 4.16, 1.0975999999999997),
    (false, 1.6, 5.632000000000001, 1.6384000000000005),
    (false, 1.8, 5.632000000000001, 2.3328),
    (true, 2.0, 4.3264, 3.0284799999999996),
    (false, 2.2, 4.3264, 3.48663917347026),
    (false, 2.4, 4.3264, 3.821874416040255),
    (false, 2.6, 5.66528, 4.053385727709987),
    (false, 2.8, 5.66528, 4.200373108479454),
    (false, 3.0, 4.333056, 4.282036558348658),
    (true, 3.2, 4.333056, 2.99742559084406),
    (false, 3.4, 4.333056, 3.4522263943863463),
];

#[test]
fn a_throttle_cuts_the_rate_to_seventy_percent_and_the_cubic_starts_there() {
    assert_close(7.0, cubic_throttle(10.0), "cubic_throttle(10)");
    assert_close(
        7.0,
        cubic_success(1.0, 1.0, 10.0),
        "cubic_success at the throttle",
    );
    assert_close((10.0f64 * 0.3 / 0.4).cbrt(), time_window(10.0), "K");
}

#[test]
fn recovery_after_a_throttle_follows_the_cubic_of_the_aws_vectors() {
    let expected = [
        (5.0, 7.0),
        (6.0, 9.64893600966),
        (7.0, 10.000030849917364),
        (8.0, 10.453284520772092),
        (9.0, 13.408697022224185),
        (10.0, 21.26626835427364),
        (11.0, 36.425998516920465),
    ];
    for (t, rate) in expected {
        assert_close(rate, cubic_success(t, 5.0, 10.0), &format!("rate at t={t}"));
    }
}

#[test]
fn throttles_and_successes_mixed_follow_the_aws_vectors() {
    let attempts = [
        (false, 5.0, 7.0),
        (false, 6.0, 9.64893600966),
        (true, 7.0, 6.754255206761999),
        (true, 8.0, 4.727978644733399),
        (false, 9.0, 4.670125557970046),
        (false, 10.0, 4.770870456867401),
        (false, 11.0, 6.011819748005445),
        (false, 12.0, 10.792973431384178),
    ];
    let (mut last_throttle, mut last_max) = (5.0, 10.0);
    let mut rate = 0.0;
    for (throttled, t, expected) in attempts {
        if throttled {
            rate = cubic_throttle(rate);
            last_throttle = t;
            last_max = rate;
        } else {
            rate = cubic_success(t, last_throttle, last_max);
        }
        assert_close(expected, rate, &format!("rate at t={t}"));
    }
}

#[test]
fn measured_send_rate_and_fill_rate_follow_the_aws_vectors_with_explicit_timestamps() {
    let mut rate = AdaptiveRate::new(0.0);
    for (throttled, t, measured, fill) in SENDING_RATES {
        rate.update(t, throttled);
        assert_close(
            measured,
            rate.measured_rate(),
            &format!("measured at t={t}"),
        );
        assert_close(fill, rate.fill_rate(), &format!("fill rate at t={t}"));
    }
}

#[test]
fn the_limiter_driven_by_its_clock_matches_the_aws_vectors() {
    let clock = ManualClock::new();
    let limiter = AdaptiveLimiter::new().clock(clock.shared());
    for (throttled, t, measured, fill) in SENDING_RATES {
        clock.advance(MS_200);
        assert_eq!(clock.elapsed().as_secs_f64(), t);
        limiter.feedback(if throttled {
            Feedback::Throttled
        } else {
            Feedback::Accepted
        });
        let state = limiter.state();
        assert_close(
            measured,
            state.measured_rate(),
            &format!("measured at t={t}"),
        );
        assert_close(fill, state.fill_rate(), &format!("fill rate at t={t}"));
    }
}

#[test]
fn the_limiter_admits_freely_until_the_first_throttle() {
    let clock = ManualClock::new();
    let limiter = AdaptiveLimiter::new().clock(clock.shared());
    for _ in 0..1_000 {
        let _permit = limiter.try_acquire(&Cost::request()).unwrap();
        limiter.feedback(Feedback::Accepted);
    }
    assert!(!limiter.state().is_enabled());

    limiter.feedback(Feedback::Throttled);
    assert!(limiter.state().is_enabled());
    let refused = (0..10)
        .map(|_| limiter.try_acquire(&Cost::request()))
        .filter(Result::is_err)
        .count();
    assert!(refused > 0, "an enabled bucket must refuse a burst");
}

#[test]
fn a_throttle_cuts_the_rate_in_use_by_beta() {
    let clock = ManualClock::new();
    let limiter = AdaptiveLimiter::new().clock(clock.shared());
    // Send 10 calls per second for 3 s so the measured rate settles near 10/s.
    for _ in 0..30 {
        clock.advance(Duration::from_millis(100));
        limiter.feedback(Feedback::Accepted);
    }
    let before = limiter.state();
    assert!(before.measured_rate() > 9.0, "{before:?}");
    clock.advance(Duration::from_millis(100));
    limiter.feedback(Feedback::Throttled);
    let after = limiter.state();
    // Still disabled before the throttle: the measured rate is the rate in use.
    assert_close(
        after.measured_rate(),
        after.last_max_rate(),
        "last max rate",
    );
    assert_close(after.measured_rate() * BETA, after.fill_rate(), "fill rate");
}

#[test]
fn the_rate_never_exceeds_twice_the_measured_send_rate() {
    let clock = ManualClock::new();
    let limiter = AdaptiveLimiter::new().clock(clock.shared());
    for _ in 0..20 {
        clock.advance(Duration::from_millis(250)); // 4 calls/s
        limiter.feedback(Feedback::Accepted);
    }
    limiter.feedback(Feedback::Throttled);
    // Long after the throttle the cubic is huge, but the client only sends 1 call per second.
    for _ in 0..30 {
        clock.advance(Duration::from_secs(1));
        limiter.feedback(Feedback::Accepted);
    }
    let state = limiter.state();
    let cubic = cubic_success(
        clock.elapsed().as_secs_f64(),
        state.last_throttle(),
        state.last_max_rate(),
    );
    assert!(cubic > 100.0, "cubic {cubic}");
    assert_close(
        2.0 * state.measured_rate(),
        state.fill_rate(),
        "capped fill rate",
    );
    assert!(state.fill_rate() < 3.0, "{state:?}");
}

#[test]
fn the_rate_never_falls_below_half_a_call_per_second() {
    let clock = ManualClock::new();
    let limiter = AdaptiveLimiter::new().clock(clock.shared());
    limiter.feedback(Feedback::Throttled); // nothing measured: rate 0
    assert_eq!(limiter.state().fill_rate(), MIN_FILL_RATE);
    for _ in 0..5 {
        clock.advance(Duration::from_secs(10));
        limiter.feedback(Feedback::Throttled);
        assert!(limiter.state().fill_rate() >= MIN_FILL_RATE);
    }
    assert_eq!(limiter.state().max_capacity(), 1.0);
}

#[test]
fn a_refused_call_says_when_the_bucket_has_its_tokens() {
    let clock = ManualClock::new();
    let limiter = AdaptiveLimiter::new().clock(clock.shared());
    limiter.feedback(Feedback::Throttled);
    let refused = limiter.try_acquire(&Cost::request()).unwrap_err();
    assert_eq!(refused.reason, ThrottleReason::WouldWait);
    let wait = refused.retry_after(clock.now()).unwrap();
    assert!(
        (wait.as_secs_f64() - 2.0).abs() < 1e-3,
        "1 token at 0.5/s: {wait:?}"
    );
    clock.advance(Duration::from_secs(2));
    assert!(limiter.try_acquire(&Cost::request()).is_ok());
}

#[test]
fn reconcile_to_nothing_refunds_the_tokens() {
    let clock = ManualClock::new();
    let limiter = AdaptiveLimiter::new().clock(clock.shared());
    limiter.feedback(Feedback::Throttled);
    clock.advance(Duration::from_secs(2));
    let _permit = limiter.try_acquire(&Cost::request()).unwrap();
    assert!(limiter.try_acquire(&Cost::request()).is_err());
    limiter.reconcile(&Cost::request(), &Cost::none());
    assert!(limiter.try_acquire(&Cost::request()).is_ok());
}

#[tokio::test(start_paused = true)]
async fn acquire_refuses_at_once_when_the_wait_exceeds_max_wait() {
    let clock = TokioClock::shared();
    let limiter = AdaptiveLimiter::new().clock(clock.clone());
    limiter.feedback(Feedback::Throttled);
    let start = clock.now();
    let refused = limiter
        .acquire(&Cost::request(), Duration::from_secs(1))
        .await
        .unwrap_err();
    assert_eq!(refused.reason, ThrottleReason::WouldWait);
    assert_eq!(clock.now(), start, "refused without sleeping");
    let _permit = limiter
        .acquire(&Cost::request(), Duration::from_secs(3))
        .await
        .unwrap();
    let waited = clock.now() - start;
    assert!(waited >= Duration::from_secs(2) && waited < Duration::from_millis(2_010));
}

#[tokio::test(start_paused = true)]
async fn an_enabled_limiter_paces_a_burst_at_its_fill_rate() {
    let clock = TokioClock::shared();
    let limiter = Arc::new(AdaptiveLimiter::new().clock(clock.clone()));
    limiter.feedback(Feedback::Throttled); // 0.5 calls per second
    let start = clock.now();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (limiter, clock) = (limiter.clone(), clock.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = limiter
                .acquire(&Cost::request(), Duration::from_secs(60))
                .await
                .unwrap();
            clock.now()
        }));
    }
    let mut times = Vec::new();
    for task in tasks {
        times.push((task.await.unwrap() - start).as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    for (i, t) in times.iter().enumerate() {
        let expected = 2.0 * (i as f64 + 1.0);
        assert!(
            (t - expected).abs() < 0.01,
            "call {i} at {t}s, expected {expected}s"
        );
    }
}

#[allow(clippy::unwrap_used)] // a test helper: no runtime, no test
fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Waiting callers are admitted in arrival order, whatever the costs and rate changes.
    #[test]
    fn waiting_callers_are_served_in_arrival_order(
        costs in prop::collection::vec(1u64..4, 2..25),
        feedback_every in 1usize..5,
    ) {
        paused_runtime().block_on(async {
            let clock = TokioClock::shared();
            let limiter = Arc::new(AdaptiveLimiter::new().clock(clock.clone()));
            limiter.feedback(Feedback::Throttled);
            let order = Arc::new(Mutex::new(Vec::new()));
            let mut tasks = Vec::new();
            for (i, cost) in costs.iter().copied().enumerate() {
                let (limiter, order) = (limiter.clone(), order.clone());
                tasks.push(tokio::spawn(async move {
                    let cost = Cost::none().with("requests", cost);
                    let _permit = limiter.acquire(&cost, Duration::from_secs(3_600)).await.unwrap();
                    order.lock().unwrap().push(i);
                    if i % feedback_every == 0 {
                        limiter.feedback(Feedback::Accepted);
                    }
                }));
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            for task in tasks {
                task.await.unwrap();
            }
            let order = order.lock().unwrap().clone();
            let sorted: Vec<usize> = (0..costs.len()).collect();
            prop_assert_eq!(order, sorted);
            Ok(())
        })?;
    }

    /// Callers cancelled at random points leave nobody in line and nothing spent.
    #[test]
    fn cancelled_callers_leave_no_trace(
        cancel_after_ms in prop::collection::vec(0u64..20_000, 1..30),
    ) {
        paused_runtime().block_on(async {
            let clock = TokioClock::shared();
            let limiter = Arc::new(AdaptiveLimiter::new().clock(clock.clone()));
            limiter.feedback(Feedback::Throttled);
            let mut tasks = Vec::new();
            for ms in cancel_after_ms.iter().copied() {
                let limiter = limiter.clone();
                tasks.push(tokio::spawn(async move {
                    tokio::time::timeout(
                        Duration::from_millis(ms),
                        limiter.acquire(&Cost::request(), Duration::from_secs(3_600)),
                    )
                    .await
                    .is_ok()
                }));
            }
            let mut admitted = 0u32;
            for task in tasks {
                admitted += u32::from(task.await.unwrap());
            }
            prop_assert_eq!(limiter.waiting(), 0);
            // At 0.5/s from an empty bucket, admissions within 20 s are at most 10.
            prop_assert!(admitted <= 10, "admitted {}", admitted);
            // Nothing leaked: after the bucket refills, the next caller goes at once.
            tokio::time::sleep(Duration::from_secs(10)).await;
            prop_assert!(limiter.try_acquire(&Cost::request()).is_ok());
            Ok(())
        })?;
    }

    /// Arbitrary feedback at arbitrary times never panics and keeps the rates sane.
    #[test]
    fn any_feedback_sequence_keeps_the_rates_finite_and_floored(
        steps in prop::collection::vec((0u64..5_000, any::<bool>()), 1..100),
    ) {
        let clock = ManualClock::new();
        let limiter = AdaptiveLimiter::new().clock(clock.shared());
        for (ms, throttled) in steps {
            clock.advance(Duration::from_millis(ms));
            limiter.feedback(if throttled { Feedback::Throttled } else { Feedback::Accepted });
            let _ = limiter.try_acquire(&Cost::request());
            let state = limiter.state();
            prop_assert!(state.fill_rate().is_finite() && state.fill_rate() >= MIN_FILL_RATE);
            prop_assert!(state.max_capacity() >= 1.0 && state.capacity() <= state.max_capacity());
        }
    }
}
