//! The server's sliding window: at most `limit` units in any trailing `window` (exact log).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// One key's log of charges: when, and how many units (1 per request, or the request's
/// weight). Only the newest `limit` units can decide admission, so the log never holds more.
#[derive(Clone, Debug)]
pub(crate) struct SlidingWindow {
    limit: u64,
    window: Duration,
    log: VecDeque<(Instant, u64)>,
    sum: u64,
}

impl SlidingWindow {
    pub(crate) fn new(limit: u32, window: Duration) -> Self {
        Self {
            limit: u64::from(limit),
            window,
            log: VecDeque::new(),
            sum: 0,
        }
    }

    fn prune(&mut self, now: Instant) {
        while let Some(&(oldest, amount)) = self.log.front() {
            if now.saturating_duration_since(oldest) >= self.window {
                self.log.pop_front();
                self.sum = self.sum.saturating_sub(amount);
            } else {
                break;
            }
        }
    }

    fn expiry(&self, at: Instant, now: Instant) -> Duration {
        self.window
            .saturating_sub(now.saturating_duration_since(at))
    }

    /// When the budget is whole again: the newest counted charge leaves the window (a rolling
    /// budget's reset is its full replenishment, not the next unit back).
    pub(crate) fn reset_after(&mut self, now: Instant) -> Duration {
        self.prune(now);
        self.log
            .back()
            .map_or(Duration::ZERO, |&(newest, _)| self.expiry(newest, now))
    }

    /// `Ok` if `amount` more fits in the trailing window, else when enough of the logged
    /// charges will have expired (`None`: never, as when `amount` is more than the limit).
    pub(crate) fn check(&mut self, now: Instant, amount: u64) -> Result<(), Option<Duration>> {
        self.prune(now);
        if self.sum.saturating_add(amount) <= self.limit {
            return Ok(());
        }
        if amount > self.limit || self.limit == 0 {
            return Err(None);
        }
        let mut excess = self.sum.saturating_add(amount).saturating_sub(self.limit);
        for &(at, charged) in &self.log {
            excess = excess.saturating_sub(charged);
            if excess == 0 {
                return Err(Some(self.expiry(at, now)));
            }
        }
        Err(Some(self.window))
    }

    pub(crate) fn charge(&mut self, now: Instant, amount: u64) {
        self.prune(now);
        self.log.push_back((now, amount));
        self.sum = self.sum.saturating_add(amount);
        while self.sum > self.limit {
            match self.log.pop_front() {
                Some((_, oldest)) => self.sum = self.sum.saturating_sub(oldest),
                None => break,
            }
        }
    }

    pub(crate) fn limit(&self) -> u64 {
        self.limit
    }

    pub(crate) fn remaining(&mut self, now: Instant) -> u64 {
        self.prune(now);
        self.limit.saturating_sub(self.sum)
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
        window.charge(t0, 1);
        window.charge(t0 + Duration::from_secs(5), 1);
        let t = t0 + Duration::from_secs(6);
        assert_eq!(window.check(t, 1), Err(Some(Duration::from_secs(4))));
        assert_eq!(window.check(t0 + Duration::from_secs(10), 1), Ok(()));
        assert_eq!(window.remaining(t0 + Duration::from_secs(10)), 1);
    }

    #[test]
    fn counted_failures_keep_the_window_full() {
        let t0 = ManualClock::new().now();
        let mut window = SlidingWindow::new(1, Duration::from_secs(10));
        window.charge(t0, 1);
        window.charge(t0 + Duration::from_secs(9), 1);
        assert_eq!(
            window.check(t0 + Duration::from_secs(10), 1),
            Err(Some(Duration::from_secs(9)))
        );
    }

    #[test]
    fn a_weighted_request_waits_until_enough_units_expire() {
        let t0 = ManualClock::new().now();
        let mut window = SlidingWindow::new(100, Duration::from_secs(60));
        window.charge(t0, 40);
        window.charge(t0 + Duration::from_secs(10), 40);
        let t = t0 + Duration::from_secs(20);
        assert_eq!(window.check(t, 20), Ok(()));
        // 50 more needs the first charge gone (t0 + 60 s); 70 more needs both (t0 + 70 s).
        assert_eq!(window.check(t, 50), Err(Some(Duration::from_secs(40))));
        assert_eq!(window.check(t, 70), Err(Some(Duration::from_secs(50))));
        assert_eq!(window.check(t, 101), Err(None));
    }
}
