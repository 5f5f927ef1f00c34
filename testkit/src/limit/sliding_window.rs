//! The server's sliding window: at most `limit` requests in any trailing `window` (exact log).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// One key's log of request times. Only the newest `limit` entries can decide admission, so
/// the log never holds more than that.
#[derive(Clone, Debug)]
pub(crate) struct SlidingWindow {
    limit: usize,
    window: Duration,
    log: VecDeque<Instant>,
}

impl SlidingWindow {
    pub(crate) fn new(limit: u32, window: Duration) -> Self {
        Self {
            limit: usize::try_from(limit).unwrap_or(usize::MAX),
            window,
            log: VecDeque::new(),
        }
    }

    fn prune(&mut self, now: Instant) {
        while let Some(&oldest) = self.log.front() {
            if now.saturating_duration_since(oldest) >= self.window {
                self.log.pop_front();
            } else {
                break;
            }
        }
    }

    /// When the oldest counted request leaves the window.
    pub(crate) fn reset_after(&mut self, now: Instant) -> Duration {
        self.prune(now);
        match self.log.front() {
            Some(&oldest) => self
                .window
                .saturating_sub(now.saturating_duration_since(oldest)),
            None => Duration::ZERO,
        }
    }

    /// `Ok` under the limit, else when the oldest counted request expires.
    pub(crate) fn check(&mut self, now: Instant) -> Result<(), Option<Duration>> {
        self.prune(now);
        if self.log.len() < self.limit {
            Ok(())
        } else if self.limit == 0 {
            Err(None)
        } else {
            Err(Some(self.reset_after(now)))
        }
    }

    pub(crate) fn charge(&mut self, now: Instant) {
        self.prune(now);
        self.log.push_back(now);
        while self.log.len() > self.limit {
            self.log.pop_front();
        }
    }

    pub(crate) fn limit(&self) -> u64 {
        u64::try_from(self.limit).unwrap_or(u64::MAX)
    }

    pub(crate) fn remaining(&mut self, now: Instant) -> u64 {
        self.prune(now);
        u64::try_from(self.limit.saturating_sub(self.log.len())).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratewise_core::clock::{Clock, ManualClock};

    #[test]
    fn the_window_slides_one_request_at_a_time() {
        let t0 = ManualClock::new().now();
        let mut window = SlidingWindow::new(2, Duration::from_secs(10));
        window.charge(t0);
        window.charge(t0 + Duration::from_secs(5));
        let t = t0 + Duration::from_secs(6);
        assert_eq!(window.check(t), Err(Some(Duration::from_secs(4))));
        assert_eq!(window.check(t0 + Duration::from_secs(10)), Ok(()));
        assert_eq!(window.remaining(t0 + Duration::from_secs(10)), 1);
    }

    #[test]
    fn counted_failures_keep_the_window_full() {
        let t0 = ManualClock::new().now();
        let mut window = SlidingWindow::new(1, Duration::from_secs(10));
        window.charge(t0);
        window.charge(t0 + Duration::from_secs(9));
        assert_eq!(
            window.check(t0 + Duration::from_secs(10)),
            Err(Some(Duration::from_secs(9)))
        );
    }
}
