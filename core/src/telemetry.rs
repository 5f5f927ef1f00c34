//! Telemetry: every retry and every give-up becomes a `tracing` event.
//!
//! Events use the target [`RETRY_TARGET`] (`"ratewise::retry"`) so they can be filtered on
//! their own (`RUST_LOG=ratewise::retry=info`). Field names are stable and low-cardinality:
//!
//! | event | level | fields |
//! |---|---|---|
//! | a retry is about to sleep | `INFO` | `retry.upstream`, `retry.attempt`, `retry.reason`, `retry.delay_ms`, `retry.hinted` |
//! | the loop gave up on a retryable error | `WARN` | `retry.upstream`, `retry.attempts`, `retry.reason`, `retry.gave_up` |
//!
//! `retry.attempt` is the attempt that just failed (1 for the first call); `retry.hinted` is
//! true when the delay came from a server hint rather than backoff. No event carries a
//! credential, a URL or a body.

use std::time::Duration;

/// The `tracing` target of retry events.
pub const RETRY_TARGET: &str = "ratewise::retry";

/// The `tracing` target of work-queue events: a job parked (`INFO`, `queue.park_ms`,
/// `queue.group`), scheduled for a retry (`INFO`, `queue.attempt`, `queue.delay_ms`),
/// dead-lettered (`WARN`, `queue.attempts`), or a store operation that failed (`WARN`,
/// `queue.store_op`). Every event carries `queue.name`, except store failures.
pub const QUEUE_TARGET: &str = "ratewise::queue";

/// Emits the event for one retry, just before its sleep.
///
/// `attempt` is the attempt that failed (1-based), `reason` the error's label (see
/// [`crate::error::Retryable::reason`]), `delay` the sleep about to start.
pub fn retry_scheduled(
    upstream: &'static str,
    attempt: u32,
    reason: &'static str,
    delay: Duration,
    hinted: bool,
) {
    let delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
    tracing::event!(
        target: RETRY_TARGET,
        tracing::Level::INFO,
        retry.upstream = upstream,
        retry.attempt = attempt,
        retry.reason = reason,
        retry.delay_ms = delay_ms,
        retry.hinted = hinted,
        "retrying {upstream} after attempt {attempt} failed ({reason}); waiting {delay_ms} ms"
    );
}

/// Emits the event for a retry loop that gave up (`gave_up`: `permanent`,
/// `attempts_exhausted`, `retry_after_too_long`, `retry_budget_exhausted`, `deadline_exceeded`).
///
/// The retry loop does not call it for an error that was permanent on the first attempt: that
/// is an ordinary failure for the caller to report, not a retry story.
pub fn retry_gave_up(
    upstream: &'static str,
    attempts: u32,
    reason: &'static str,
    gave_up: &'static str,
) {
    tracing::event!(
        target: RETRY_TARGET,
        tracing::Level::WARN,
        retry.upstream = upstream,
        retry.attempts = attempts,
        retry.reason = reason,
        retry.gave_up = gave_up,
        "gave up on {upstream} after {attempts} attempt(s) ({reason}): {gave_up}"
    );
}

/// Metric names emitted with the `metrics` feature, through the `metrics` facade (install any
/// exporter: Prometheus, StatsD, …). Labels are low-cardinality: upstream, outcome (the HTTP
/// status or `timeout`/`connect`/`interrupted`), reason, result, budget, state.
///
/// | metric | kind | labels |
/// |---|---|---|
/// | `ratewise_requests_total` | counter | `upstream`, `outcome` |
/// | `ratewise_retries_total` | counter | `upstream`, `reason` |
/// | `ratewise_calls_total` | counter | `upstream`, `result` = `success`, `success_after_retry`, `failed` |
/// | `ratewise_streams_broken_total` | counter | `upstream` (streamed bodies that broke after success) |
/// | `ratewise_breaker_state` | gauge | `upstream` (0 closed, 1 half-open, 2 open) |
/// | `ratewise_breaker_transitions_total` | counter | `upstream`, `to` |
/// | `ratewise_throttle_wait_seconds` | histogram | `upstream`, `budget` |
/// | `ratewise_quota_remaining` | gauge | `upstream`, `budget` |
/// | `ratewise_queue_depth` | gauge | `queue` (jobs waiting: runnable, parked, scheduled) |
/// | `ratewise_queue_oldest_age_seconds` | gauge | `queue` |
/// | `ratewise_queue_dead_letter_total` | counter | `queue` |
pub mod metric {
    /// `ratewise_requests_total{upstream,outcome}`.
    pub const REQUESTS: &str = "ratewise_requests_total";
    /// `ratewise_retries_total{upstream,reason}`.
    pub const RETRIES: &str = "ratewise_retries_total";
    /// `ratewise_calls_total{upstream,result}`.
    pub const CALLS: &str = "ratewise_calls_total";
    /// `ratewise_streams_broken_total{upstream}`.
    pub const STREAMS_BROKEN: &str = "ratewise_streams_broken_total";
    /// `ratewise_breaker_state{upstream}`.
    pub const BREAKER_STATE: &str = "ratewise_breaker_state";
    /// `ratewise_breaker_transitions_total{upstream,to}`.
    pub const BREAKER_TRANSITIONS: &str = "ratewise_breaker_transitions_total";
    /// `ratewise_throttle_wait_seconds{upstream,budget}`.
    pub const THROTTLE_WAIT: &str = "ratewise_throttle_wait_seconds";
    /// `ratewise_quota_remaining{upstream,budget}`.
    pub const QUOTA_REMAINING: &str = "ratewise_quota_remaining";
    /// `ratewise_queue_depth{queue}`.
    pub const QUEUE_DEPTH: &str = "ratewise_queue_depth";
    /// `ratewise_queue_oldest_age_seconds{queue}`.
    pub const QUEUE_OLDEST_AGE: &str = "ratewise_queue_oldest_age_seconds";
    /// `ratewise_queue_dead_letter_total{queue}`.
    pub const QUEUE_DEAD_LETTER: &str = "ratewise_queue_dead_letter_total";
}

#[cfg(feature = "metrics")]
pub(crate) mod emit {
    use std::time::Duration;

    use super::metric;

    /// True: emitters record.
    pub(crate) const ENABLED: bool = true;

    pub(crate) fn queue_depth(queue: &'static str, depth: usize, oldest_age: Duration) {
        metrics::gauge!(metric::QUEUE_DEPTH, "queue" => queue).set(depth as f64);
        metrics::gauge!(metric::QUEUE_OLDEST_AGE, "queue" => queue).set(oldest_age.as_secs_f64());
    }

    pub(crate) fn queue_dead_letter(queue: &'static str) {
        metrics::counter!(metric::QUEUE_DEAD_LETTER, "queue" => queue).increment(1);
    }

    pub(crate) fn request(upstream: &'static str, outcome: &'static str) {
        metrics::counter!(metric::REQUESTS, "upstream" => upstream, "outcome" => outcome)
            .increment(1);
    }

    pub(crate) fn retry(upstream: &'static str, reason: &'static str) {
        metrics::counter!(metric::RETRIES, "upstream" => upstream, "reason" => reason).increment(1);
    }

    pub(crate) fn call(upstream: &'static str, result: &'static str) {
        metrics::counter!(metric::CALLS, "upstream" => upstream, "result" => result).increment(1);
    }

    pub(crate) fn stream_broken(upstream: &'static str) {
        metrics::counter!(metric::STREAMS_BROKEN, "upstream" => upstream).increment(1);
    }

    pub(crate) fn breaker_state(upstream: &'static str, level: f64) {
        metrics::gauge!(metric::BREAKER_STATE, "upstream" => upstream).set(level);
    }

    pub(crate) fn breaker_transition(upstream: &'static str, to: &'static str) {
        metrics::counter!(metric::BREAKER_TRANSITIONS, "upstream" => upstream, "to" => to)
            .increment(1);
    }

    pub(crate) fn throttle_wait(upstream: &'static str, budget: &str, waited: Duration) {
        metrics::histogram!(metric::THROTTLE_WAIT, "upstream" => upstream, "budget" => budget.to_owned())
            .record(waited.as_secs_f64());
    }

    pub(crate) fn quota_remaining(upstream: &'static str, budget: &str, remaining: u64) {
        metrics::gauge!(metric::QUOTA_REMAINING, "upstream" => upstream, "budget" => budget.to_owned())
            .set(remaining as f64);
    }
}

/// Without the `metrics` feature every emitter compiles to nothing.
#[cfg(not(feature = "metrics"))]
pub(crate) mod emit {
    use std::time::Duration;

    /// False: callers can skip work whose only use is a metric.
    pub(crate) const ENABLED: bool = false;

    pub(crate) fn queue_depth(_: &'static str, _: usize, _: Duration) {}
    pub(crate) fn queue_dead_letter(_: &'static str) {}
    pub(crate) fn request(_: &'static str, _: &'static str) {}
    pub(crate) fn retry(_: &'static str, _: &'static str) {}
    pub(crate) fn call(_: &'static str, _: &'static str) {}
    pub(crate) fn stream_broken(_: &'static str) {}
    pub(crate) fn breaker_state(_: &'static str, _: f64) {}
    pub(crate) fn breaker_transition(_: &'static str, _: &'static str) {}
    pub(crate) fn throttle_wait(_: &'static str, _: &str, _: Duration) {}
    pub(crate) fn quota_remaining(_: &'static str, _: &str, _: u64) {}
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};

    use tracing::field::{Field, Visit};
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::{Context, SubscriberExt};

    use super::*;
    use crate::backoff::{Backoff, Jitter};
    use crate::error::Retryable;
    use crate::retry::RetryPolicy;

    /// One captured event: its target, level and fields as text.
    #[derive(Debug, Clone)]
    struct Captured {
        target: String,
        level: tracing::Level,
        fields: BTreeMap<String, String>,
    }

    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<Captured>>>);

    struct Fields<'a>(&'a mut BTreeMap<String, String>);

    impl Visit for Fields<'_> {
        fn record_str(&mut self, field: &Field, value: &str) {
            self.0.insert(field.name().to_owned(), value.to_owned());
        }
        fn record_u64(&mut self, field: &Field, value: u64) {
            self.0.insert(field.name().to_owned(), value.to_string());
        }
        fn record_bool(&mut self, field: &Field, value: bool) {
            self.0.insert(field.name().to_owned(), value.to_string());
        }
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            self.0.insert(field.name().to_owned(), format!("{value:?}"));
        }
    }

    impl<S: tracing::Subscriber> Layer<S> for Capture {
        fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
            let mut fields = BTreeMap::new();
            event.record(&mut Fields(&mut fields));
            self.0.lock().unwrap().push(Captured {
                target: event.metadata().target().to_owned(),
                level: *event.metadata().level(),
                fields,
            });
        }
    }

    #[derive(Debug)]
    struct RateLimited;
    impl Retryable for RateLimited {
        fn is_retryable(&self) -> bool {
            true
        }
        fn retry_after(&self) -> Option<Duration> {
            Some(Duration::from_millis(1500))
        }
        fn reason(&self) -> &'static str {
            "rate_limited"
        }
    }

    #[tokio::test(start_paused = true)]
    async fn every_retry_emits_an_event_with_upstream_attempt_reason_and_delay() {
        let capture = Capture::default();
        let _guard =
            tracing::subscriber::set_default(tracing_subscriber::registry().with(capture.clone()));

        let result = RetryPolicy::new()
            .upstream("stripe")
            .max_attempts(3)
            .retry(|| async { Err::<(), _>(RateLimited) })
            .await;
        assert!(result.is_err());

        let events = capture.0.lock().unwrap().clone();
        assert!(events.iter().all(|e| e.target == RETRY_TARGET));
        let retries: Vec<_> = events
            .iter()
            .filter(|e| e.level == tracing::Level::INFO)
            .collect();
        assert_eq!(retries.len(), 2, "{events:#?}");
        for (i, event) in retries.iter().enumerate() {
            let f = &event.fields;
            assert_eq!(f["retry.upstream"], "stripe");
            assert_eq!(f["retry.attempt"], (i + 1).to_string());
            assert_eq!(f["retry.reason"], "rate_limited");
            assert_eq!(f["retry.delay_ms"], "1500");
            assert_eq!(f["retry.hinted"], "true");
        }
        let gave_up: Vec<_> = events
            .iter()
            .filter(|e| e.level == tracing::Level::WARN)
            .collect();
        assert_eq!(gave_up.len(), 1);
        assert_eq!(gave_up[0].fields["retry.gave_up"], "attempts_exhausted");
        assert_eq!(gave_up[0].fields["retry.attempts"], "3");
    }

    #[tokio::test(start_paused = true)]
    async fn upstream_defaults_to_custom_and_backoff_delays_are_reported_in_ms() {
        let capture = Capture::default();
        let _guard =
            tracing::subscriber::set_default(tracing_subscriber::registry().with(capture.clone()));

        let _ = RetryPolicy::new()
            .max_attempts(2)
            .backoff(Backoff::new().jitter(Jitter::None))
            .retry(|| async { Err::<(), _>(std::io::Error::from(std::io::ErrorKind::TimedOut)) })
            .await;

        let events = capture.0.lock().unwrap().clone();
        let f = &events[0].fields;
        assert_eq!(f["retry.upstream"], "custom");
        assert_eq!(f["retry.reason"], "timeout");
        assert_eq!(f["retry.delay_ms"], "200");
        assert_eq!(f["retry.hinted"], "false");
    }

    #[tokio::test(start_paused = true)]
    async fn a_permanent_failure_on_the_first_attempt_emits_nothing() {
        let capture = Capture::default();
        let _guard =
            tracing::subscriber::set_default(tracing_subscriber::registry().with(capture.clone()));
        let _ = RetryPolicy::new()
            .retry(|| async { Err::<(), _>(std::io::Error::from(std::io::ErrorKind::NotFound)) })
            .await;
        assert!(capture.0.lock().unwrap().is_empty());
    }
}
