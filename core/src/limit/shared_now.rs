//! One clock reading shared by the members of a [`CompositeLimiter`](super::CompositeLimiter).
//!
//! A composite of two GCRA budgets used to read the clock once per member: two `dyn Clock` calls
//! (two `clock_gettime` on the default clock) for one admission. The composite now hands each
//! member a [`SharedNow`]: a member on the composite's own clock (the same `SharedClock`, counting
//! from the same epoch) takes its time from it, read once on first use; any other member reads
//! its own clock as before. Sharing is an identity check, never an assumption, so a member on
//! another clock (a `ManualClock` under a composite on the default clock) keeps its own time.
//!
//! Crate-internal: the type is public only so that it can appear in the hidden
//! [`Limiter::try_acquire_at`](super::Limiter::try_acquire_at); it lives in a private module, so
//! code outside ratewise-core can neither build one nor override that method.

use std::cell::Cell;

use crate::clock::ClockReader;

/// A lazily taken reading of one clock, as nanoseconds since its reader's epoch.
#[allow(unreachable_pub)] // sealed: public in a private module, see the module docs
#[derive(Debug)]
pub struct SharedNow<'a> {
    clock: &'a ClockReader,
    nanos: Cell<Option<u64>>,
}

impl<'a> SharedNow<'a> {
    /// A reading of `clock`, not taken yet.
    #[inline]
    pub(crate) fn new(clock: &'a ClockReader) -> Self {
        Self {
            clock,
            nanos: Cell::new(None),
        }
    }

    /// [`ClockReader::nanos`] of `clock` at the shared instant, when `clock` reads the same
    /// clock from the same epoch as this reading; the first caller takes the reading. `None`:
    /// read your own clock.
    #[inline]
    pub(crate) fn nanos_for(&self, clock: &ClockReader) -> Option<u64> {
        if !self.clock.same_as(clock) {
            return None;
        }
        if let Some(nanos) = self.nanos.get() {
            return Some(nanos);
        }
        let nanos = self.clock.nanos();
        self.nanos.set(Some(nanos));
        Some(nanos)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant, SystemTime};

    use super::*;
    use crate::clock::{Clock, ManualClock, SharedClock};
    use crate::limit::{BudgetName, CompositeLimiter, Cost, GcraLimiter, Limiter, Rate};

    #[test]
    fn the_clock_is_read_once_and_only_for_the_same_clock() {
        let manual = ManualClock::new();
        let reader = ClockReader::new(manual.shared());
        let now = SharedNow::new(&reader);
        manual.advance(Duration::from_millis(5));
        assert_eq!(now.nanos_for(&reader), Some(5_000_000));
        manual.advance(Duration::from_millis(5));
        assert_eq!(
            now.nanos_for(&reader.clone()),
            Some(5_000_000),
            "later members see the same instant"
        );
        // The same time behind another `Arc`: not shared.
        assert_eq!(now.nanos_for(&ClockReader::new(manual.shared())), None);
    }

    /// A manual clock that counts its readings and moves `step` forward after each one, so
    /// members reading it one after the other would see different instants.
    #[derive(Debug)]
    struct Ticking {
        manual: ManualClock,
        step: Duration,
        reads: AtomicUsize,
    }

    impl Ticking {
        fn shared(step: Duration) -> (Arc<Ticking>, SharedClock) {
            let clock = Arc::new(Ticking {
                manual: ManualClock::new(),
                step,
                reads: AtomicUsize::new(0),
            });
            (Arc::clone(&clock), clock)
        }

        fn reads(&self) -> usize {
            self.reads.load(Ordering::SeqCst)
        }
    }

    impl Clock for Ticking {
        fn now(&self) -> Instant {
            self.manual.now()
        }

        fn wall(&self) -> SystemTime {
            self.manual.wall()
        }

        fn nanos_since(&self, base: Instant) -> u64 {
            self.reads.fetch_add(1, Ordering::SeqCst);
            let nanos = self.manual.nanos_since(base);
            self.manual.advance(self.step);
            nanos
        }

        fn epoch(&self) -> Instant {
            self.manual.epoch()
        }
    }

    /// Requests (10 per second) then tokens (1 per second), each with a burst of 1, on `clock`.
    fn two_budgets(clock: &SharedClock) -> CompositeLimiter {
        let budget = |name: BudgetName, per_second: u64| {
            Arc::new(
                GcraLimiter::new(Rate::per_second(per_second))
                    .burst(1)
                    .budget(name)
                    .clock(Arc::clone(clock)),
            )
        };
        CompositeLimiter::new()
            .with(budget(BudgetName::REQUESTS, 10))
            .with(budget(BudgetName::TOKENS, 1))
    }

    fn both() -> Cost {
        Cost::request().with(BudgetName::TOKENS, 1)
    }

    #[tokio::test(start_paused = true)]
    async fn members_on_the_composites_clock_are_charged_at_one_reading() {
        let (ticking, clock) = Ticking::shared(Duration::from_millis(600));
        let composite = two_budgets(&clock).clock(Arc::clone(&clock));
        let _ = composite.try_acquire(&both()).unwrap();
        assert_eq!(ticking.reads(), 1, "one reading for both members");
        // At 600 ms requests have refilled and tokens have not. Read one after the other, the
        // tokens member would have seen 1.2 s and admitted; at one shared reading it refuses.
        let refused = composite.try_acquire(&both()).unwrap_err();
        assert_eq!(refused.budget, BudgetName::TOKENS);
        // The unboxed `acquire` shares its reading, and so does `acquire` through the trait.
        ticking.manual.advance(Duration::from_secs(5));
        let before = ticking.reads();
        let _ = composite.acquire(&both(), Duration::ZERO).await.unwrap();
        assert_eq!(ticking.reads() - before, 1);
        ticking.manual.advance(Duration::from_secs(5));
        let shared: &dyn Limiter = &composite;
        let _ = shared.acquire(&both(), Duration::ZERO).await.unwrap();
        assert_eq!(ticking.reads() - before, 2);
    }

    #[test]
    fn members_on_another_clock_read_their_own_and_the_composites_is_not_read() {
        let (members_clock, clock) = Ticking::shared(Duration::ZERO);
        let (composites_clock, other) = Ticking::shared(Duration::ZERO);
        let composite = two_budgets(&clock).clock(other);
        let _ = composite.try_acquire(&both()).unwrap();
        assert_eq!(members_clock.reads(), 2, "each member read its own clock");
        assert_eq!(composites_clock.reads(), 0, "nobody needed the composite's");
    }
}
