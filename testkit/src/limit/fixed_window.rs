//! The server's fixed window: `limit` requests per window, windows aligned to the upstream's start.

use std::time::{Duration, Instant};

/// One key's window counter.
#[derive(Clone, Debug)]
pub(crate) struct FixedWindow {
    limit: u64,
    window: Duration,
    origin: Instant,
    index: u128,
    count: u64,
}

impl FixedWindow {
    pub(crate) fn new(limit: u32, window: Duration, origin: Instant) -> Self {
        Self {
            limit: u64::from(limit),
            window: window.max(Duration::from_millis(1)),
            origin,
            index: 0,
            count: 0,
        }
    }

    fn roll(&mut self, now: Instant) {
        let index = now
            .saturating_duration_since(self.origin)
            .as_nanos()
            .checked_div(self.window.as_nanos())
            .unwrap_or(0);
        if index != self.index {
            self.index = index;
            self.count = 0;
        }
    }

    /// When the current window ends.
    pub(crate) fn reset_after(&mut self, now: Instant) -> Duration {
        self.roll(now);
        let end_nanos = self
            .index
            .saturating_add(1)
            .saturating_mul(self.window.as_nanos());
        let end = duration_from_nanos(end_nanos);
        end.saturating_sub(now.saturating_duration_since(self.origin))
    }

    /// `Ok` if `amount` more fits under the limit, else the time to the next window (`None`:
    /// never, as when `amount` is more than a whole window holds).
    pub(crate) fn check(&mut self, now: Instant, amount: u64) -> Result<(), Option<Duration>> {
        self.roll(now);
        if self.count.saturating_add(amount) <= self.limit {
            Ok(())
        } else if amount > self.limit || self.limit == 0 {
            Err(None)
        } else {
            Err(Some(self.reset_after(now)))
        }
    }

    pub(crate) fn charge(&mut self, now: Instant, amount: u64) {
        self.roll(now);
        self.count = self.count.saturating_add(amount);
    }

    pub(crate) fn limit(&self) -> u64 {
        self.limit
    }

    pub(crate) fn remaining(&mut self, now: Instant) -> u64 {
        self.roll(now);
        self.limit.saturating_sub(self.count)
    }
}

fn duration_from_nanos(nanos: u128) -> Duration {
    let secs = u64::try_from(nanos / 1_000_000_000).unwrap_or(u64::MAX);
    let sub = u32::try_from(nanos % 1_000_000_000).unwrap_or(0);
    Duration::new(secs, sub)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratewise_core::clock::{Clock, ManualClock};

    #[test]
    fn a_window_admits_its_limit_and_reopens_at_the_boundary() {
        let t0 = ManualClock::new().now();
        let mut window = FixedWindow::new(2, Duration::from_secs(10), t0);
        let t = t0 + Duration::from_secs(4);
        for _ in 0..2 {
            assert_eq!(window.check(t, 1), Ok(()));
            window.charge(t, 1);
        }
        assert_eq!(window.check(t, 1), Err(Some(Duration::from_secs(6))));
        assert_eq!(window.check(t0 + Duration::from_secs(10), 1), Ok(()));
        assert_eq!(window.remaining(t0 + Duration::from_secs(10)), 2);
    }
}
