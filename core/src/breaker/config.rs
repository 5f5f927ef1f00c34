//! The breaker's tuning: window, threshold, volume, slow calls, open period, probes.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::outcome::{CallOutcome, FailurePredicate, Outcome, counts_as_failure};

/// How a [`CircuitBreaker`](super::CircuitBreaker) decides to trip, how long it stays open, and
/// how it probes for recovery.
///
/// The defaults are opossum's, as the article uses them: a 10 s rolling window in 10 buckets of
/// 1 s, trip at a 50 % failure rate once the window holds at least 20 calls, stay open 30 s,
/// then let 1 probe through. Slow calls do not count as failures unless
/// [`slow_call`](Self::slow_call) is set. What counts as a failure is decided by
/// [`counts_as_failure`] (5xx, timeouts, connection failures; never a 4xx, not even 429) unless
/// [`failure_predicate`](Self::failure_predicate) replaces it.
///
/// Out-of-range values are clamped, never rejected: each setter says how.
///
/// ```
/// use std::time::Duration;
/// use ratewise_core::breaker::BreakerConfig;
///
/// let config = BreakerConfig::default()
///     .name("openai")
///     .window(Duration::from_secs(30))
///     .buckets(30)
///     .failure_rate(0.25)
///     .min_calls(50)
///     .slow_call(Duration::from_secs(20))
///     .open_for(Duration::from_secs(60))
///     .half_open_probes(3);
/// assert_eq!(config.bucket_duration(), Duration::from_secs(1));
/// ```
#[derive(Clone)]
pub struct BreakerConfig {
    pub(super) name: Arc<str>,
    pub(super) window: Duration,
    pub(super) buckets: u32,
    pub(super) failure_rate: f64,
    pub(super) min_calls: u32,
    pub(super) slow_call: Option<Duration>,
    pub(super) open_for: Duration,
    pub(super) half_open_probes: u32,
    pub(super) predicate: Option<FailurePredicate>,
}

impl BreakerConfig {
    /// Default label in events and errors: `"default"`.
    pub const DEFAULT_NAME: &'static str = "default";
    /// Default rolling window: 10 s.
    pub const DEFAULT_WINDOW: Duration = Duration::from_secs(10);
    /// Default number of buckets the window is split into: 10 (1 s each).
    pub const DEFAULT_BUCKETS: u32 = 10;
    /// Most buckets a window may have: 1000.
    pub const MAX_BUCKETS: u32 = 1000;
    /// Default failure-rate threshold: 0.5 (50 %).
    pub const DEFAULT_FAILURE_RATE: f64 = 0.5;
    /// Default minimum number of calls in the window before the breaker may trip: 20.
    pub const DEFAULT_MIN_CALLS: u32 = 20;
    /// Default open period: 30 s.
    pub const DEFAULT_OPEN_FOR: Duration = Duration::from_secs(30);
    /// Default number of concurrent half-open probes: 1.
    pub const DEFAULT_HALF_OPEN_PROBES: u32 = 1;

    /// The default configuration (see the type's docs for the numbers).
    pub fn new() -> Self {
        Self {
            name: Arc::from(Self::DEFAULT_NAME),
            window: Self::DEFAULT_WINDOW,
            buckets: Self::DEFAULT_BUCKETS,
            failure_rate: Self::DEFAULT_FAILURE_RATE,
            min_calls: Self::DEFAULT_MIN_CALLS,
            slow_call: None,
            open_for: Self::DEFAULT_OPEN_FOR,
            half_open_probes: Self::DEFAULT_HALF_OPEN_PROBES,
            predicate: None,
        }
    }

    /// The label of this breaker (usually the upstream's name) in events, traces and errors.
    /// Default `"default"`.
    pub fn name(mut self, name: impl AsRef<str>) -> Self {
        self.name = Arc::from(name.as_ref());
        self
    }

    /// The rolling window over which the failure rate is computed. Default 10 s; at least 1 ms.
    ///
    /// A call leaves the window when its bucket expires, i.e. between `window - bucket` and
    /// `window` after it was recorded.
    pub fn window(mut self, window: Duration) -> Self {
        self.window = window.max(Duration::from_millis(1));
        self
    }

    /// How many buckets the window is split into. Default 10; clamped to `1..=1000`.
    ///
    /// More buckets make expiry smoother at the cost of a slightly longer sum per record.
    pub fn buckets(mut self, buckets: u32) -> Self {
        self.buckets = buckets.clamp(1, Self::MAX_BUCKETS);
        self
    }

    /// The failure rate (failures / counted calls, `0.0..=1.0`) at or above which the breaker
    /// trips. Default 0.5. Values outside the range are clamped; NaN keeps the default. At 0.0
    /// the first failure trips it (once the minimum volume is reached).
    pub fn failure_rate(mut self, rate: f64) -> Self {
        self.failure_rate = if rate.is_nan() {
            Self::DEFAULT_FAILURE_RATE
        } else {
            rate.clamp(0.0, 1.0)
        };
        self
    }

    /// The minimum number of counted calls in the window before the breaker may trip, so that
    /// 1 failure out of 1 call does not open it. Default 20; at least 1.
    pub fn min_calls(mut self, calls: u32) -> Self {
        self.min_calls = calls.max(1);
        self
    }

    /// A call that takes longer than `threshold` (from admission to record) counts as a failure
    /// even if it succeeded. Default off (`None`).
    pub fn slow_call(mut self, threshold: impl Into<Option<Duration>>) -> Self {
        self.slow_call = threshold.into();
        self
    }

    /// How long the breaker stays open after tripping before it lets probes through.
    /// Default 30 s.
    pub fn open_for(mut self, period: Duration) -> Self {
        self.open_for = period;
        self
    }

    /// How many probes may be in flight at once while half-open; that many successes close the
    /// breaker, one failure re-opens it. Default 1; at least 1.
    pub fn half_open_probes(mut self, probes: u32) -> Self {
        self.half_open_probes = probes.max(1);
        self
    }

    /// Replaces the rule deciding which [`CallOutcome`]s count as failures (default
    /// [`counts_as_failure`]). Outcomes it rejects count as successes.
    pub fn failure_predicate(
        mut self,
        predicate: impl Fn(&CallOutcome) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.predicate = Some(Arc::new(predicate));
        self
    }

    /// The breaker's label.
    pub fn label(&self) -> &str {
        &self.name
    }

    /// The length of one bucket: `window / buckets` (at least 1 ns).
    pub fn bucket_duration(&self) -> Duration {
        self.window
            .checked_div(self.buckets.max(1))
            .unwrap_or(self.window)
            .max(Duration::from_nanos(1))
    }

    /// What `outcome` means to the breaker under this configuration's predicate.
    pub fn classify(&self, outcome: &CallOutcome) -> Outcome {
        let failed = match &self.predicate {
            Some(predicate) => predicate(outcome),
            None => counts_as_failure(outcome),
        };
        if failed {
            Outcome::Failure
        } else {
            Outcome::Success
        }
    }
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for BreakerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BreakerConfig")
            .field("name", &self.name)
            .field("window", &self.window)
            .field("buckets", &self.buckets)
            .field("failure_rate", &self.failure_rate)
            .field("min_calls", &self.min_calls)
            .field("slow_call", &self.slow_call)
            .field("open_for", &self.open_for)
            .field("half_open_probes", &self.half_open_probes)
            .field(
                "predicate",
                &if self.predicate.is_some() {
                    "custom"
                } else {
                    "default"
                },
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;

    #[test]
    fn defaults_are_opossums() {
        let c = BreakerConfig::default();
        assert_eq!(c.label(), "default");
        assert_eq!(c.window, Duration::from_secs(10));
        assert_eq!(c.buckets, 10);
        assert_eq!(c.bucket_duration(), Duration::from_secs(1));
        assert!((c.failure_rate - 0.5).abs() < f64::EPSILON);
        assert_eq!(c.min_calls, 20);
        assert_eq!(c.slow_call, None);
        assert_eq!(c.open_for, Duration::from_secs(30));
        assert_eq!(c.half_open_probes, 1);
    }

    #[test]
    fn out_of_range_settings_are_clamped() {
        let c = BreakerConfig::default()
            .buckets(0)
            .failure_rate(7.0)
            .min_calls(0)
            .half_open_probes(0)
            .window(Duration::ZERO);
        assert_eq!(c.buckets, 1);
        assert!((c.failure_rate - 1.0).abs() < f64::EPSILON);
        assert_eq!(c.min_calls, 1);
        assert_eq!(c.half_open_probes, 1);
        assert_eq!(c.window, Duration::from_millis(1));
        assert_eq!(BreakerConfig::default().buckets(u32::MAX).buckets, 1000);
        let nan = BreakerConfig::default().failure_rate(f64::NAN);
        assert!((nan.failure_rate - 0.5).abs() < f64::EPSILON);
    }

    #[test]
    fn a_custom_predicate_replaces_the_default_rule() {
        let c = BreakerConfig::default().failure_predicate(
            |o| matches!(o, CallOutcome::Status(s) if *s == StatusCode::TOO_MANY_REQUESTS),
        );
        let too_many = CallOutcome::from_status(StatusCode::TOO_MANY_REQUESTS);
        let bad_gateway = CallOutcome::from_status(StatusCode::BAD_GATEWAY);
        assert_eq!(c.classify(&too_many), Outcome::Failure);
        assert_eq!(c.classify(&bad_gateway), Outcome::Success);
        assert!(format!("{c:?}").contains("custom"));
    }
}
