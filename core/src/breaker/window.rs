//! The rolling window: a ring of time buckets counting calls and failures, lock-free.
//!
//! Each bucket is one `AtomicU64` packing the bucket's number (32 bits, wrapping), its calls
//! (16 bits) and its failures (16 bits), so recording a call is one compare-and-swap and
//! reading the window is one load per bucket: the closed-state hot path takes no lock.
//!
//! A bucket whose number is not among the last `len` bucket numbers is expired and reads as
//! empty; the next record landing on it replaces it. A bucket saturates at 65 535 calls (past
//! that, its calls and failures stop counting, so its rate stays that of its first 65 535
//! calls). Bucket numbers wrap after 2^32 buckets: a bucket untouched for that long (136 years
//! at 1 s, 50 days at 1 ms) has a one-in-2^32/len chance of being read as recent once.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The calls and failures a breaker's rolling window holds right now.
///
/// Only calls recorded while closed are counted (probes are counted apart), and the window
/// starts empty each time the breaker closes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WindowStats {
    /// Counted calls (successes and failures; ignored outcomes are not counted).
    pub calls: u64,
    /// Of which failures (including slow calls when a slow-call threshold is set).
    pub failures: u64,
}

impl WindowStats {
    /// failures / calls, `0.0..=1.0`; 0.0 for an empty window.
    pub fn failure_rate(self) -> f64 {
        if self.calls == 0 {
            0.0
        } else {
            self.failures as f64 / self.calls as f64
        }
    }
}

/// Division by a constant without a `div` instruction (a 64-bit `div` is 15 to 45 cycles, the
/// largest single cost of a record otherwise): multiply by the reciprocal, then correct.
#[derive(Clone, Copy, Debug)]
struct Divisor {
    d: u64,
    /// floor((2^64 - 1) / d): n * m / 2^64 is at most n / d, and at least n / d - 2.
    m: u64,
}

impl Divisor {
    fn new(d: u64) -> Self {
        let d = d.max(1);
        Self {
            d,
            m: u64::MAX.checked_div(d).unwrap_or(0),
        }
    }

    /// (n / d, n % d).
    #[inline]
    fn div_rem(self, n: u64) -> (u64, u64) {
        let mut q = ((u128::from(n) * u128::from(self.m)) >> 64) as u64;
        // q <= n / d, so q * d <= n: neither wraps.
        let mut r = n.wrapping_sub(q.wrapping_mul(self.d));
        while r >= self.d {
            q = q.wrapping_add(1);
            r = r.wrapping_sub(self.d);
        }
        (q, r)
    }
}

pub(super) struct Window {
    slots: Box<[AtomicU64]>,
    bucket: Divisor,
    len: Divisor,
    /// 1 + the bucket of the latest failure (0: none since the last clear), so a success in a
    /// window without failures, which cannot trip anything, skips the sum.
    last_failure: AtomicU64,
}

const COUNT_BITS: u32 = 16;
const COUNT_MASK: u64 = 0xFFFF;

fn pack(id: u32, calls: u64, failures: u64) -> u64 {
    (u64::from(id) << (2 * COUNT_BITS))
        | ((calls & COUNT_MASK) << COUNT_BITS)
        | (failures & COUNT_MASK)
}

fn unpack(slot: u64) -> (u32, u64, u64) {
    (
        (slot >> (2 * COUNT_BITS)) as u32,
        (slot >> COUNT_BITS) & COUNT_MASK,
        slot & COUNT_MASK,
    )
}

impl Window {
    pub(super) fn new(bucket: Duration, buckets: u32) -> Self {
        let bucket_nanos = u64::try_from(bucket.as_nanos()).unwrap_or(u64::MAX).max(1);
        let slots: Box<[AtomicU64]> = (0..buckets.max(1)).map(|_| AtomicU64::new(0)).collect();
        Self {
            len: Divisor::new(slots.len() as u64),
            slots,
            bucket: Divisor::new(bucket_nanos),
            last_failure: AtomicU64::new(0),
        }
    }

    #[inline]
    fn bucket_of(&self, nanos: u64) -> u64 {
        self.bucket.div_rem(nanos).0
    }

    /// Counts one call at `nanos` (a failure or not) and returns the window's tally after it,
    /// or `None` when the window holds no failure (so it cannot trip).
    #[inline]
    pub(super) fn record(&self, nanos: u64, failure: bool) -> Option<WindowStats> {
        let bucket = self.bucket_of(nanos);
        let len = self.len.d;
        let index = self.len.div_rem(bucket).1;
        let id = bucket as u32;
        if failure {
            self.last_failure
                .store(bucket.saturating_add(1), Ordering::Relaxed);
        } else {
            let last = self.last_failure.load(Ordering::Relaxed);
            if last == 0 || bucket.saturating_sub(last.saturating_sub(1)) >= len {
                self.add(index, id, false);
                return None;
            }
        }
        self.add(index, id, failure);
        Some(self.tally_at_bucket(bucket))
    }

    #[inline]
    fn add(&self, index: u64, id: u32, failure: bool) {
        if let Some(slot) = usize::try_from(index).ok().and_then(|i| self.slots.get(i)) {
            let failed = u64::from(failure);
            let _ = slot.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |cur| {
                let (slot_id, calls, failures) = unpack(cur);
                if slot_id != id {
                    // Replace an older bucket; a record older than the bucket is dropped.
                    (id.wrapping_sub(slot_id) < 1 << 31).then(|| pack(id, 1, failed))
                } else if calls >= COUNT_MASK {
                    None
                } else {
                    Some(pack(
                        id,
                        calls.saturating_add(1),
                        failures.saturating_add(failed),
                    ))
                }
            });
        }
    }

    /// The window's tally as seen at `nanos`.
    pub(super) fn tally(&self, nanos: u64) -> WindowStats {
        self.tally_at_bucket(self.bucket_of(nanos))
    }

    #[inline(never)]
    fn tally_at_bucket(&self, bucket: u64) -> WindowStats {
        let now_id = bucket as u32;
        let len = self.slots.len() as u32;
        let mut tally = WindowStats::default();
        for slot in &self.slots {
            let (id, calls, failures) = unpack(slot.load(Ordering::Relaxed));
            if now_id.wrapping_sub(id) < len {
                tally.calls = tally.calls.saturating_add(calls);
                tally.failures = tally.failures.saturating_add(failures);
            }
        }
        tally
    }

    /// Forgets every call (on closing: a closed breaker starts from a clean window).
    pub(super) fn clear(&self) {
        self.last_failure.store(0, Ordering::Relaxed);
        for slot in &self.slots {
            slot.store(0, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000_000;

    fn window() -> Window {
        Window::new(Duration::from_secs(1), 10)
    }

    #[test]
    fn a_call_stays_in_the_window_until_its_bucket_expires() {
        let w = window();
        let t0 = 100 * SEC + SEC / 2;
        assert_eq!(
            w.record(t0, true),
            Some(WindowStats {
                calls: 1,
                failures: 1
            })
        );
        assert_eq!(w.tally(t0 + 9 * SEC).failures, 1);
        // Bucket 100 expires when bucket 110 begins: 9.5 s after the call here.
        assert_eq!(w.tally(110 * SEC), WindowStats::default());
    }

    #[test]
    fn a_stale_bucket_is_replaced_by_the_next_record_landing_on_it() {
        let w = window();
        w.record(0, true);
        w.record(SEC, false);
        assert_eq!(w.record(10 * SEC, false), None, "the failure expired");
        assert_eq!(
            w.tally(10 * SEC),
            WindowStats {
                calls: 2,
                failures: 0
            }
        );
    }

    #[test]
    fn a_success_reports_the_tally_only_while_a_failure_is_in_the_window() {
        let w = window();
        assert_eq!(w.record(0, false), None);
        w.record(SEC, true);
        assert_eq!(
            w.record(2 * SEC, false),
            Some(WindowStats {
                calls: 3,
                failures: 1
            })
        );
        assert_eq!(w.record(11 * SEC, false), None);
    }

    #[test]
    fn a_bucket_saturates_instead_of_overflowing() {
        let w = Window::new(Duration::from_secs(1), 1);
        for _ in 0..70_000 {
            w.record(0, true);
        }
        let tally = w.tally(0);
        assert_eq!(tally.calls, 65_535);
        assert_eq!(tally.failures, 65_535);
        assert!((tally.failure_rate() - 1.0).abs() < f64::EPSILON);
    }

    #[test]
    fn division_by_reciprocal_is_exact() {
        let samples = [
            0,
            1,
            2,
            7,
            999,
            1_000,
            1_000_000_007,
            u64::MAX / 3,
            u64::MAX - 1,
            u64::MAX,
        ];
        for d in [
            1,
            2,
            3,
            7,
            10,
            1000,
            1_000_000,
            1_000_000_000,
            u64::MAX / 2,
            u64::MAX,
        ] {
            let divisor = Divisor::new(d);
            for n in samples {
                assert_eq!(divisor.div_rem(n), (n / d, n % d), "{n} / {d}");
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn division_by_reciprocal_matches_div(n in proptest::num::u64::ANY, d in 1u64..) {
            proptest::prop_assert_eq!(Divisor::new(d).div_rem(n), (n / d, n % d));
        }
    }

    #[test]
    fn clearing_forgets_everything() {
        let w = window();
        w.record(5 * SEC, true);
        w.clear();
        assert_eq!(w.tally(5 * SEC), WindowStats::default());
        assert!(WindowStats::default().failure_rate().abs() < f64::EPSILON);
    }
}
