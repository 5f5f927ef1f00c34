//! The quota pacer's reading of a rolling budget: a log of what was spent and when it comes back.
//!
//! A rolling (sliding) window of `limit` per `window` gives each unit back one window after it
//! was spent, so at full use the server reports little left and a full replenishment about a
//! window away, whatever the rate: spreading what is left to that reset (the fixed-window
//! reading) settles at half the limit. The log instead admits while the units spent in the
//! trailing window, plus what other clients spent, stay within the limit, and says when enough
//! come back. See [`QuotaPacer::rolling`](super::QuotaPacer::rolling).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Units spent, each with the instant it comes back, in order of that instant.
#[derive(Clone, Debug)]
pub(crate) struct RollingLog {
    window: Duration,
    /// `(comes back at, amount)`, sorted by the first.
    entries: VecDeque<(Instant, u64)>,
}

impl RollingLog {
    pub(crate) fn new(window: Duration) -> Self {
        Self {
            window,
            entries: VecDeque::new(),
        }
    }

    /// Forgets units back for longer than `keep` (they may still explain a late snapshot).
    pub(crate) fn prune(&mut self, now: Instant, keep: Duration) {
        while let Some(&(back, _)) = self.entries.front() {
            if back.checked_add(keep).is_some_and(|t| t <= now) {
                self.entries.pop_front();
            } else {
                break;
            }
        }
    }

    /// Units still out at `at` (coming back after it).
    pub(crate) fn used_at(&self, at: Instant) -> u64 {
        self.entries
            .iter()
            .filter(|(back, _)| *back > at)
            .fold(0u64, |sum, (_, amount)| sum.saturating_add(*amount))
    }

    /// Spends `amount` at `now`: back one window later.
    pub(crate) fn spend(&mut self, now: Instant, amount: u64) {
        let back = now.checked_add(self.window).unwrap_or(now);
        self.insert(back, amount);
    }

    /// Logs `amount` coming back at `back` (another client's units, learned from a snapshot).
    pub(crate) fn insert(&mut self, back: Instant, amount: u64) {
        if amount == 0 {
            return;
        }
        let at = self.entries.partition_point(|(t, _)| *t <= back);
        self.entries.insert(at, (back, amount));
    }

    /// Gives back up to `amount` of the most recent spending (a refund).
    pub(crate) fn refund(&mut self, mut amount: u64) {
        while amount > 0 {
            let Some(last) = self.entries.back_mut() else {
                return;
            };
            let take = last.1.min(amount);
            last.1 -= take;
            amount -= take;
            if last.1 == 0 {
                self.entries.pop_back();
            }
        }
    }

    /// When `need` more units than are free at `now` will have come back (`None`: the log
    /// cannot free that many; the caller waits whole windows beyond its last entry).
    pub(crate) fn free_by(&self, now: Instant, mut need: u64) -> Option<Instant> {
        if need == 0 {
            return Some(now);
        }
        for &(back, amount) in self.entries.iter().filter(|(back, _)| *back > now) {
            need = need.saturating_sub(amount);
            if need == 0 {
                return Some(back);
            }
        }
        None
    }

    /// When everything spent has come back: the rolling budget's reset.
    pub(crate) fn whole_at(&self, now: Instant) -> Instant {
        self.entries
            .back()
            .map_or(now, |(back, _)| (*back).max(now))
    }

    /// The window length.
    pub(crate) fn window(&self) -> Duration {
        self.window
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn units_come_back_one_window_after_they_were_spent() {
        let t0 = ManualClock::new().now();
        let mut log = RollingLog::new(1000 * MS);
        log.spend(t0, 3);
        log.spend(t0 + 10 * MS, 2);
        assert_eq!(log.used_at(t0 + 10 * MS), 5);
        assert_eq!(log.used_at(t0 + 1000 * MS), 2);
        assert_eq!(log.free_by(t0 + 20 * MS, 4), Some(t0 + 1010 * MS));
        assert_eq!(log.free_by(t0 + 20 * MS, 6), None);
        assert_eq!(log.whole_at(t0), t0 + 1010 * MS);
        log.refund(3);
        assert_eq!(log.used_at(t0 + 10 * MS), 2);
        log.prune(t0 + 2000 * MS, Duration::ZERO);
        assert_eq!(log.used_at(t0), 0);
    }

    #[test]
    fn foreign_units_are_kept_in_order_of_their_return() {
        let t0 = ManualClock::new().now();
        let mut log = RollingLog::new(1000 * MS);
        log.spend(t0, 1);
        log.insert(t0 + 500 * MS, 4);
        assert_eq!(log.free_by(t0, 4), Some(t0 + 500 * MS));
        assert_eq!(log.free_by(t0, 5), Some(t0 + 1000 * MS));
    }
}
