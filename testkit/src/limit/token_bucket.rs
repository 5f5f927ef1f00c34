//! The server's token bucket: `burst` tokens, refilled continuously at `rate` per second.

use std::time::{Duration, Instant};

use super::secs_to_duration;

/// One key's bucket. Starts full; a request takes one token.
#[derive(Clone, Debug)]
pub(crate) struct TokenBucket {
    rate_per_sec: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub(crate) fn new(rate_per_sec: f64, burst: u32, now: Instant) -> Self {
        let rate_per_sec = if rate_per_sec.is_finite() && rate_per_sec > 0.0 {
            rate_per_sec
        } else {
            0.0
        };
        Self {
            rate_per_sec,
            burst: f64::from(burst),
            tokens: f64::from(burst),
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed * self.rate_per_sec).min(self.burst);
    }

    /// `Ok` if `amount` tokens are available, else how long until they are (`None`: never,
    /// as when `amount` is more than the bucket holds).
    pub(crate) fn check(&mut self, now: Instant, amount: u64) -> Result<(), Option<Duration>> {
        self.refill(now);
        let amount = amount as f64;
        if self.tokens >= amount {
            Ok(())
        } else if amount > self.burst {
            Err(None)
        } else {
            Err(self.wait_for(amount))
        }
    }

    /// Takes `amount` tokens; a bucket already empty goes into debt, down to `-burst`.
    pub(crate) fn charge(&mut self, now: Instant, amount: u64) {
        self.refill(now);
        self.tokens = (self.tokens - amount as f64).max(-self.burst);
    }

    pub(crate) fn limit(&self) -> u64 {
        self.burst as u64
    }

    pub(crate) fn remaining(&mut self, now: Instant) -> u64 {
        self.refill(now);
        self.tokens.max(0.0).floor() as u64
    }

    /// How long until the bucket is full again.
    pub(crate) fn reset_after(&mut self, now: Instant) -> Duration {
        self.refill(now);
        self.wait_for(self.burst).unwrap_or(Duration::MAX)
    }

    fn wait_for(&self, level: f64) -> Option<Duration> {
        let missing = level - self.tokens;
        if missing <= 0.0 {
            return Some(Duration::ZERO);
        }
        if self.rate_per_sec <= 0.0 {
            return None;
        }
        Some(secs_to_duration(missing / self.rate_per_sec))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratewise_core::clock::{Clock, ManualClock};

    #[test]
    fn a_full_bucket_admits_its_burst_then_says_when_the_next_token_arrives() {
        let t0 = ManualClock::new().now();
        let mut bucket = TokenBucket::new(2.0, 3, t0);
        for _ in 0..3 {
            assert_eq!(bucket.check(t0, 1), Ok(()));
            bucket.charge(t0, 1);
        }
        assert_eq!(bucket.check(t0, 1), Err(Some(Duration::from_millis(500))));
        assert_eq!(
            bucket.check(t0 + Duration::from_millis(500), 1),
            Ok(()),
            "one token refilled at 2/s"
        );
    }

    #[test]
    fn charging_an_empty_bucket_goes_into_bounded_debt() {
        let t0 = ManualClock::new().now();
        let mut bucket = TokenBucket::new(1.0, 2, t0);
        for _ in 0..10 {
            bucket.charge(t0, 1);
        }
        assert_eq!(bucket.check(t0, 1), Err(Some(Duration::from_secs(3))));
    }

    #[test]
    fn a_bucket_without_refill_never_promises_a_token() {
        let t0 = ManualClock::new().now();
        let mut bucket = TokenBucket::new(f64::NAN, 1, t0);
        bucket.charge(t0, 1);
        assert_eq!(bucket.check(t0 + Duration::from_secs(3600), 1), Err(None));
    }

    #[test]
    fn a_weighted_request_waits_for_its_whole_amount() {
        let t0 = ManualClock::new().now();
        let mut bucket = TokenBucket::new(100.0, 1_000, t0);
        bucket.charge(t0, 900);
        assert_eq!(bucket.check(t0, 100), Ok(()));
        assert_eq!(bucket.check(t0, 300), Err(Some(Duration::from_secs(2))));
        assert_eq!(
            bucket.check(t0, 1_001),
            Err(None),
            "more than the bucket holds"
        );
    }
}
