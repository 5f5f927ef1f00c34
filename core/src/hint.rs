//! Server hints: how long the server asks us to wait, and the clamp that bounds obeying it.

use std::time::Duration;

/// The clamp policy: a server hint longer than `max` is not slept on.
///
/// A client that sleeps for whatever `Retry-After` says can be parked for hours by one bad
/// response. Past the clamp the caller gets [`HintTooLong`] carrying the full wait, so a queue
/// can park the job until then instead of holding a worker. The default, 120 s, matches
/// openai-python's `MAX_RETRY_AFTER_DELAY`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Clamp {
    max: Duration,
}

impl Clamp {
    /// The default longest wait obeyed at the client layer: 120 s.
    pub const DEFAULT_MAX: Duration = Duration::from_secs(120);

    /// A clamp that obeys hints up to `max`.
    pub const fn new(max: Duration) -> Self {
        Self { max }
    }

    /// The longest hint obeyed.
    pub const fn max(&self) -> Duration {
        self.max
    }

    /// `Ok(wait)` when the hint may be slept on, else the typed refusal carrying the full wait.
    pub fn apply(&self, wait: Duration) -> Result<Duration, HintTooLong> {
        if wait <= self.max {
            Ok(wait)
        } else {
            Err(HintTooLong {
                wait,
                max: self.max,
            })
        }
    }
}

impl Default for Clamp {
    fn default() -> Self {
        Self::new(Self::DEFAULT_MAX)
    }
}

/// A server asked for a wait longer than the clamp allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "server asked to wait {wait:?}, longer than the {max:?} this client sleeps; park the work and retry after the wait"
)]
#[non_exhaustive]
pub struct HintTooLong {
    /// The full wait the server asked for.
    pub wait: Duration,
    /// The clamp that refused it.
    pub max: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clamp_passes_waits_up_to_its_max_and_refuses_longer_ones_with_the_full_wait() {
        let clamp = Clamp::default();
        assert_eq!(
            clamp.apply(Duration::from_secs(120)),
            Ok(Duration::from_secs(120))
        );
        let err = clamp.apply(Duration::from_secs(3600)).unwrap_err();
        assert_eq!(err.wait, Duration::from_secs(3600));
        assert_eq!(err.max, Duration::from_secs(120));
    }
}
