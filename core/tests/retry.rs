//! The retry loop as a specification, in virtual time.

#![allow(clippy::unwrap_used)] // test helpers may fail loudly

use std::cell::Cell;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fastrand::Rng;
use ratewise_core::backoff::{Backoff, Jitter};
use ratewise_core::budget::RetryBudget;
use ratewise_core::clock::{Clock, TokioClock};
use ratewise_core::error::Retryable;
use ratewise_core::hint::Clamp;
use ratewise_core::retry::{GaveUp, RetryPolicy, retry};

const MS: Duration = Duration::from_millis(1);

/// A test error: retryable or not, with an optional server hint.
#[derive(Debug, Clone, PartialEq)]
struct Failure {
    retryable: bool,
    hint: Option<Duration>,
}

impl Failure {
    const TRANSIENT: Failure = Failure {
        retryable: true,
        hint: None,
    };
    const PERMANENT: Failure = Failure {
        retryable: false,
        hint: None,
    };
    fn hinted(wait: Duration) -> Failure {
        Failure {
            retryable: true,
            hint: Some(wait),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.retryable {
            "service unavailable"
        } else {
            "bad request"
        })
    }
}

impl std::error::Error for Failure {}

impl Retryable for Failure {
    fn is_retryable(&self) -> bool {
        self.retryable
    }
    fn retry_after(&self) -> Option<Duration> {
        self.hint
    }
    fn reason(&self) -> &'static str {
        if self.retryable {
            "server_error"
        } else {
            "client_error"
        }
    }
}

/// The virtual instants (relative to the start) at which each attempt began.
#[derive(Clone, Default)]
struct Attempts(Arc<Mutex<Vec<Duration>>>);

impl Attempts {
    fn record(&self, clock: &TokioClock, start: std::time::Instant) -> usize {
        let mut v = self.0.lock().unwrap();
        v.push(clock.now() - start);
        v.len()
    }
    fn times(&self) -> Vec<Duration> {
        self.0.lock().unwrap().clone()
    }
}

/// An operation that fails with `errors` in turn, then succeeds with the attempt number.
fn scripted(
    errors: Vec<Failure>,
    attempts: &Attempts,
) -> impl FnMut() -> std::future::Ready<Result<usize, Failure>> + Unpin + use<> {
    let clock = TokioClock::new();
    let start = clock.now();
    let attempts = attempts.clone();
    move || {
        let n = attempts.record(&clock, start);
        std::future::ready(match errors.get(n - 1) {
            Some(e) => Err(e.clone()),
            None => Ok(n),
        })
    }
}

fn no_jitter(base: Duration) -> RetryPolicy {
    RetryPolicy::new().backoff(Backoff::new().base(base).jitter(Jitter::None))
}

#[tokio::test(start_paused = true)]
async fn a_call_that_succeeds_first_time_makes_one_attempt_and_never_sleeps() {
    let attempts = Attempts::default();
    let out = RetryPolicy::new().retry(scripted(vec![], &attempts)).await;
    assert_eq!(out.unwrap(), 1);
    assert_eq!(attempts.times(), [Duration::ZERO]);
}

#[tokio::test(start_paused = true)]
async fn retryable_errors_are_retried_after_exponential_backoff() {
    let attempts = Attempts::default();
    let failures = vec![Failure::TRANSIENT; 3];
    let out = no_jitter(100 * MS)
        .retry(scripted(failures, &attempts))
        .await;
    assert_eq!(out.unwrap(), 4);
    assert_eq!(attempts.times(), [0, 100, 300, 700].map(|ms| MS * ms));
}

#[tokio::test(start_paused = true)]
async fn seeded_full_jitter_sleeps_exactly_the_delays_the_backoff_draws() {
    let backoff = Backoff::new();
    let mut rng = Rng::with_seed(7);
    let d0 = backoff.delay(0, None, &mut rng);
    let d1 = backoff.delay(1, Some(d0), &mut rng);
    let d2 = backoff.delay(2, Some(d1), &mut rng);
    // The loop sleeps whole milliseconds (tokio's timer resolution).
    let ms = |d: Duration| MS * u32::try_from(d.as_millis()).unwrap();
    let (d0, d1, d2) = (ms(d0), ms(d1), ms(d2));

    let attempts = Attempts::default();
    let mut notified = Vec::new();
    let out = RetryPolicy::new()
        .seed(7)
        .retry(scripted(vec![Failure::TRANSIENT; 3], &attempts))
        .notify(|event| {
            notified.push((
                event.attempt,
                event.delay,
                event.hinted,
                event.error.clone(),
            ))
        })
        .await;
    assert_eq!(out.unwrap(), 4);
    assert_eq!(
        attempts.times(),
        [Duration::ZERO, d0, d0 + d1, d0 + d1 + d2]
    );
    assert_eq!(
        notified,
        [
            (1, d0, false, Failure::TRANSIENT),
            (2, d1, false, Failure::TRANSIENT),
            (3, d2, false, Failure::TRANSIENT)
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_permanent_error_is_returned_at_once_without_retrying() {
    let attempts = Attempts::default();
    let err = RetryPolicy::new()
        .retry(scripted(vec![Failure::PERMANENT], &attempts))
        .await
        .unwrap_err();
    assert_eq!(err.gave_up(), GaveUp::Permanent);
    assert_eq!(err.attempts(), 1);
    assert!(!err.is_retryable());
    assert_eq!(err.into_inner(), Failure::PERMANENT);
    assert_eq!(attempts.times().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn attempts_are_exhausted_after_max_attempts_keeping_the_last_error() {
    let attempts = Attempts::default();
    let err = no_jitter(10 * MS)
        .retry(scripted(vec![Failure::TRANSIENT; 10], &attempts))
        .await
        .unwrap_err();
    assert_eq!(err.gave_up(), GaveUp::AttemptsExhausted);
    assert_eq!(err.attempts(), 4, "the default is 4 attempts");
    assert_eq!(err.last_error(), &Failure::TRANSIENT);
    assert!(err.is_retryable(), "a queue above may try again later");
    assert_eq!(attempts.times().len(), 4);
    assert_eq!(
        err.to_string(),
        "custom: gave up after 4 attempt(s): every allowed attempt failed; last error: service unavailable"
    );
}

#[tokio::test(start_paused = true)]
async fn a_server_hint_replaces_backoff_exactly() {
    let attempts = Attempts::default();
    let failures = vec![
        Failure::hinted(Duration::from_secs(7)),
        Failure::hinted(1500 * MS),
    ];
    let mut hinted = Vec::new();
    let out = RetryPolicy::new()
        .retry(scripted(failures, &attempts))
        .notify(|event| hinted.push(event.hinted))
        .await;
    assert_eq!(out.unwrap(), 3);
    assert_eq!(attempts.times(), [0, 7000, 8500].map(|ms| MS * ms));
    assert_eq!(hinted, [true, true]);
}

#[tokio::test(start_paused = true)]
async fn a_hint_beyond_the_clamp_ends_the_loop_at_once_with_the_full_wait() {
    let clock = TokioClock::new();
    let start = clock.now();
    let attempts = Attempts::default();
    let err = RetryPolicy::new()
        .retry(scripted(
            vec![Failure::hinted(Duration::from_secs(3600))],
            &attempts,
        ))
        .await
        .unwrap_err();
    assert_eq!(clock.now() - start, Duration::ZERO, "did not sleep at all");
    let GaveUp::RetryAfterTooLong(hint) = err.gave_up() else {
        panic!("gave up for {:?}", err.gave_up());
    };
    assert_eq!(hint.wait, Duration::from_secs(3600));
    assert_eq!(hint.max, Clamp::DEFAULT_MAX);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(3600)));
    assert!(err.is_retryable());
    assert!(err.to_string().contains("retry after 1h00m"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn a_hint_within_a_custom_clamp_is_slept_on() {
    let attempts = Attempts::default();
    let failures = vec![Failure::hinted(Duration::from_secs(300))];
    let out = RetryPolicy::new()
        .clamp(Clamp::new(Duration::from_secs(600)))
        .retry(scripted(failures, &attempts))
        .await;
    assert_eq!(out.unwrap(), 2);
    assert_eq!(attempts.times()[1], Duration::from_secs(300));
}

#[tokio::test(start_paused = true)]
async fn the_deadline_is_never_slept_past() {
    let clock = TokioClock::new();
    let start = clock.now();
    let attempts = Attempts::default();
    let failures = vec![Failure::hinted(400 * MS); 10];
    let err = RetryPolicy::new()
        .max_attempts(10)
        .deadline(Duration::from_secs(1))
        .retry(scripted(failures, &attempts))
        .await
        .unwrap_err();
    assert_eq!(err.gave_up(), GaveUp::DeadlineExceeded);
    assert_eq!(attempts.times(), [0, 400, 800].map(|ms| MS * ms));
    assert_eq!(
        clock.now() - start,
        800 * MS,
        "gave up instead of sleeping to 1.2 s"
    );
    assert_eq!(err.attempts(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_zero_percent_budget_with_no_floor_permits_no_retry() {
    let attempts = Attempts::default();
    let budget = RetryBudget::builder()
        .retry_percent(0.0)
        .min_per_sec(0)
        .build();
    let err = RetryPolicy::new()
        .budget(budget)
        .retry(scripted(vec![Failure::TRANSIENT; 4], &attempts))
        .await
        .unwrap_err();
    assert_eq!(err.gave_up(), GaveUp::BudgetExhausted);
    assert_eq!(err.attempts(), 1);
    assert_eq!(attempts.times().len(), 1);
}

/// Runs `calls` sequential calls that always fail (no backoff delay); returns total attempts.
async fn attempts_under_total_failure(policy: &RetryPolicy, calls: usize) -> usize {
    let total = Cell::new(0);
    for _ in 0..calls {
        let result = policy
            .clone()
            .retry(|| {
                total.set(total.get() + 1);
                std::future::ready(Err::<(), _>(Failure::TRANSIENT))
            })
            .await;
        assert!(result.is_err());
    }
    total.get()
}

#[tokio::test(start_paused = true)]
async fn the_budget_caps_retries_at_its_share_of_calls_and_turning_it_off_differs() {
    let instant = Backoff::new().base(Duration::ZERO);
    let budget = RetryBudget::builder()
        .retry_percent(0.2)
        .min_per_sec(0)
        .build();
    let budgeted = RetryPolicy::new().backoff(instant).budget(budget);
    let unbudgeted = RetryPolicy::new().backoff(instant).without_budget();

    assert_eq!(
        attempts_under_total_failure(&budgeted, 100).await,
        120,
        "100 calls + 20 % retries"
    );
    assert_eq!(
        attempts_under_total_failure(&unbudgeted, 100).await,
        400,
        "4 attempts each"
    );
}

#[tokio::test(start_paused = true)]
async fn the_default_budget_is_on_and_shared_by_clones_of_a_policy() {
    let policy = RetryPolicy::new().backoff(Backoff::new().base(Duration::ZERO));
    assert!(policy.retry_budget().is_some());
    // 1000 failing calls at once: the floor (10/s over 10 s = 100) plus 20 % of 1000.
    let attempts = attempts_under_total_failure(&policy, 1000).await;
    assert_eq!(attempts, 1000 + 100 + 200);
    assert!(RetryPolicy::new().without_budget().retry_budget().is_none());
}

#[tokio::test(start_paused = true)]
async fn retries_stay_within_the_ratio_plus_floor_under_sustained_total_failure() {
    let clock = TokioClock::new();
    let start = clock.now();
    let policy = RetryPolicy::new().backoff(Backoff::new().base(Duration::ZERO));
    let total = Cell::new(0usize);
    let mut calls = 0usize;
    // 50 calls per second for 60 s of virtual time, every attempt failing.
    while clock.now() - start < Duration::from_secs(60) {
        calls += 1;
        let _ = policy
            .retry(|| {
                total.set(total.get() + 1);
                std::future::ready(Err::<(), _>(Failure::TRANSIENT))
            })
            .await;
        tokio::time::sleep(20 * MS).await;
    }
    let retries = total.get() - calls;
    let bound = calls / 5 + 10 * (60 + 10); // 20 % + 10/s over the run and one window
    assert_eq!(calls, 3000);
    assert!(
        retries <= bound,
        "{retries} retries for {calls} calls exceeds {bound}"
    );
    assert!(
        retries >= calls / 5,
        "the budget should still allow its 20 %: {retries}"
    );
    assert!(
        retries < 3 * calls / 2,
        "far below the 3 retries per call an unbudgeted loop makes"
    );
}

#[tokio::test(start_paused = true)]
async fn any_error_type_can_be_retried_with_hooks() {
    #[derive(Debug)]
    struct Plain(u16);
    let n = Cell::new(0u16);
    let mut reasons = Vec::new();
    let out = no_jitter(MS)
        .retry_if(
            || {
                n.set(n.get() + 1);
                std::future::ready(if n.get() < 3 {
                    Err(Plain(503))
                } else {
                    Ok("done")
                })
            },
            |e: &Plain| e.0 >= 500,
        )
        .hint(|e| (e.0 == 503).then_some(Duration::from_secs(2)))
        .reason(|_| "unavailable")
        .notify(|ev| reasons.push((ev.reason, ev.delay)))
        .await;
    assert_eq!(out.unwrap(), "done");
    assert_eq!(reasons, [("unavailable", Duration::from_secs(2)); 2]);

    let err = no_jitter(MS)
        .retry_if(
            || std::future::ready(Err::<(), _>(Plain(404))),
            |e| e.0 >= 500,
        )
        .await
        .unwrap_err();
    assert_eq!(err.gave_up(), GaveUp::Permanent);
    assert_eq!(err.into_inner().0, 404);
}

#[tokio::test(start_paused = true)]
async fn when_overrides_the_trait_classification() {
    let attempts = Attempts::default();
    let err = RetryPolicy::new()
        .retry(scripted(vec![Failure::TRANSIENT; 4], &attempts))
        .when(|_| false)
        .await
        .unwrap_err();
    assert_eq!(err.gave_up(), GaveUp::Permanent);
    assert_eq!(attempts.times().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn io_errors_work_without_configuration() {
    use std::io::{Error, ErrorKind};
    let n = Cell::new(0);
    let out = retry(|| {
        n.set(n.get() + 1);
        std::future::ready(if n.get() == 1 {
            Err(Error::from(ErrorKind::ConnectionReset))
        } else {
            Ok(n.get())
        })
    })
    .await;
    assert_eq!(out.unwrap(), 2);
}

#[tokio::test(start_paused = true)]
async fn max_attempts_of_zero_still_makes_one_attempt() {
    let attempts = Attempts::default();
    let err = RetryPolicy::new()
        .max_attempts(0)
        .retry(scripted(vec![Failure::TRANSIENT], &attempts))
        .await
        .unwrap_err();
    assert_eq!(err.gave_up(), GaveUp::AttemptsExhausted);
    assert_eq!(err.attempts(), 1);
}

#[test]
fn retry_error_is_an_error_with_its_last_error_as_source() {
    fn assert_error<E: std::error::Error + Send + Sync + 'static>() {}
    assert_error::<ratewise_core::retry::RetryError<Failure>>();
}

#[tokio::test(start_paused = true)]
async fn a_retry_call_is_send_when_its_parts_are() {
    fn assert_send<T: Send>(_: &T) {}
    let call = RetryPolicy::new().retry(|| async { Ok::<_, Failure>(1) });
    assert_send(&call);
    assert_eq!(call.await.unwrap(), 1);
}
