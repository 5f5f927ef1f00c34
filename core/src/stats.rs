//! The article's four numbers, in process: retry rate, success after retry, permanent failures,
//! breaker state — plus throttle waits.
//!
//! Alert on these, not on error counts: a retry rate five times its baseline says the upstream
//! is degrading before any call fails; a low success-after-retry rate says retries are not
//! helping; permanent failures are what users see. [`crate::upstream::Upstream::stats`] returns a
//! [`Stats`] snapshot without any metrics exporter installed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::breaker::BreakerState;

/// A snapshot of one upstream's counters since it was built.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Stats {
    /// Logical calls finished (each may have made several requests).
    pub calls: u64,
    /// Calls that succeeded on their first attempt.
    pub succeeded_first_try: u64,
    /// Calls that succeeded after at least one retry.
    pub succeeded_after_retry: u64,
    /// Calls that failed after retries were exhausted, refused or not allowed: what users see.
    pub failed: u64,
    /// Calls that needed at least one retry (whatever their end).
    pub retried_calls: u64,
    /// HTTP requests sent (attempts that reached the transport).
    pub requests: u64,
    /// Retries scheduled.
    pub retries: u64,
    /// Calls refused without a request because the breaker was open.
    pub breaker_rejections: u64,
    /// Acquisitions that had to wait for a limiter.
    pub throttle_waits: u64,
    /// Total time spent waiting for limiters.
    pub throttle_wait_total: Duration,
    /// Streamed bodies ([`crate::upstream::Upstream::execute_streaming`]) that broke after
    /// their call had succeeded: never retried, and not counted by the breaker.
    pub streams_broken: u64,
    /// The breaker's state when the snapshot was taken.
    pub breaker: BreakerState,
}

impl Stats {
    /// Retries per request sent (0 when nothing was sent). Alert when it runs at several times
    /// its baseline.
    pub fn retry_rate(&self) -> f64 {
        ratio(self.retries, self.requests)
    }

    /// Of the calls that needed a retry, the share that then succeeded (1 when none needed
    /// one). High (> 90 %) means retries are doing their job; low (< 50 %) means they are not.
    pub fn success_after_retry_rate(&self) -> f64 {
        if self.retried_calls == 0 {
            1.0
        } else {
            ratio(self.succeeded_after_retry, self.retried_calls)
        }
    }

    /// Requests sent per logical call: 1.0 is no amplification.
    pub fn amplification(&self) -> f64 {
        ratio(self.requests, self.calls)
    }
}

fn ratio(numerator: u64, denominator: u64) -> f64 {
    if denominator == 0 {
        0.0
    } else {
        numerator as f64 / denominator as f64
    }
}

/// The live counters behind [`Stats`]: relaxed atomics, a handful of increments per call.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    calls: AtomicU64,
    succeeded_first_try: AtomicU64,
    succeeded_after_retry: AtomicU64,
    failed: AtomicU64,
    retried_calls: AtomicU64,
    requests: AtomicU64,
    retries: AtomicU64,
    breaker_rejections: AtomicU64,
    throttle_waits: AtomicU64,
    throttle_wait_nanos: AtomicU64,
    streams_broken: AtomicU64,
}

impl Counters {
    pub(crate) fn request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn breaker_rejection(&self) {
        self.breaker_rejections.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn throttle_wait(&self, waited: Duration) {
        self.throttle_waits.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(waited.as_nanos()).unwrap_or(u64::MAX);
        self.throttle_wait_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    pub(crate) fn stream_broken(&self) {
        self.streams_broken.fetch_add(1, Ordering::Relaxed);
    }

    /// Records the end of one logical call after `attempts` attempts.
    pub(crate) fn call_finished(&self, succeeded: bool, attempts: u32) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if attempts > 1 {
            self.retried_calls.fetch_add(1, Ordering::Relaxed);
        }
        let counter = match (succeeded, attempts > 1) {
            (true, false) => &self.succeeded_first_try,
            (true, true) => &self.succeeded_after_retry,
            (false, _) => &self.failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self, breaker: BreakerState) -> Stats {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Stats {
            calls: load(&self.calls),
            succeeded_first_try: load(&self.succeeded_first_try),
            succeeded_after_retry: load(&self.succeeded_after_retry),
            failed: load(&self.failed),
            retried_calls: load(&self.retried_calls),
            requests: load(&self.requests),
            retries: load(&self.retries),
            breaker_rejections: load(&self.breaker_rejections),
            throttle_waits: load(&self.throttle_waits),
            throttle_wait_total: Duration::from_nanos(load(&self.throttle_wait_nanos)),
            streams_broken: load(&self.streams_broken),
            breaker,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_four_numbers_come_from_the_counters() {
        let counters = Counters::default();
        // A call that succeeded first time, one after a retry, one that failed after three.
        counters.request();
        counters.call_finished(true, 1);
        counters.request();
        counters.retry();
        counters.request();
        counters.call_finished(true, 2);
        for _ in 0..3 {
            counters.request();
        }
        counters.retry();
        counters.retry();
        counters.call_finished(false, 3);
        counters.throttle_wait(Duration::from_millis(250));

        let stats = counters.snapshot(BreakerState::Closed);
        assert_eq!(stats.calls, 3);
        assert_eq!(stats.requests, 6);
        assert_eq!(stats.retries, 3);
        assert_eq!(stats.failed, 1);
        assert_eq!(stats.retried_calls, 2);
        assert!((stats.retry_rate() - 0.5).abs() < 1e-9);
        assert!((stats.success_after_retry_rate() - 0.5).abs() < 1e-9);
        assert!((stats.amplification() - 2.0).abs() < 1e-9);
        assert_eq!(stats.throttle_wait_total, Duration::from_millis(250));
    }

    #[test]
    fn empty_stats_have_no_division_by_zero() {
        let stats = Counters::default().snapshot(BreakerState::Closed);
        assert_eq!(stats.retry_rate(), 0.0);
        assert_eq!(stats.success_after_retry_rate(), 1.0);
        assert_eq!(stats.amplification(), 0.0);
    }
}
