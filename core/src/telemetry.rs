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
        tracing::Level::INFO,
        retry.upstream = upstream,
        retry.attempts = attempts,
        retry.reason = reason,
        retry.gave_up = gave_up,
        "gave up on {upstream} after {attempts} attempt(s) ({reason}): {gave_up}"
    );
}
