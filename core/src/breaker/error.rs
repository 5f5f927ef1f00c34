//! The refusal a breaker returns when it fails fast.

use std::sync::Arc;
use std::time::{Duration, Instant};

/// The breaker refused a call without trying it: the upstream is failing.
///
/// `until` is when the breaker lets a probe through again. While half-open with every probe
/// slot taken (`probing` is true) nobody knows when the probes will finish: `until` is then one
/// bucket of the window from the refusal (1 s by default), a hint to look again soon.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "circuit `{breaker}` open until {remaining:?} from now: the upstream is failing; failing fast"
)]
#[non_exhaustive]
pub struct CircuitOpen {
    /// The label of the breaker that refused (see [`BreakerConfig::name`](super::BreakerConfig::name)).
    pub breaker: Arc<str>,
    /// When the breaker admits a call (a probe) again.
    pub until: Instant,
    /// How long that was from the moment of the refusal.
    pub remaining: Duration,
    /// True when the breaker is half-open and its probes are already in flight.
    pub probing: bool,
}

impl CircuitOpen {
    /// How long from `now` until the breaker admits a call again (zero if already past).
    pub fn retry_after(&self, now: Instant) -> Duration {
        self.until.saturating_duration_since(now)
    }
}
