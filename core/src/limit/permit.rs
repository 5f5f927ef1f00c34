//! [`Permit`]: the proof of admission a caller holds while its call is in flight.

use std::fmt;

/// What to run when a permit is dropped.
type Release = Box<dyn FnOnce() + Send>;

/// Proof of admission, held while the call is in flight.
///
/// Dropping it releases whatever the limiter holds for the call (a concurrency slot, a
/// half-open probe). Permits of several limiters merge into one ([`Permit::merge`]).
///
/// A rate limiter's permit holds nothing: it is built, merged and dropped without allocating
/// or calling anything, so the admission hot path pays nothing for it.
#[must_use = "dropping a permit releases its slot at once"]
#[derive(Default)]
pub struct Permit {
    /// Every release this permit holds, chained into one call (in merge order).
    release: Option<Release>,
    /// How many releases are chained in `release`.
    holds: usize,
}

impl Permit {
    /// A permit that holds nothing (rate limiters: capacity is spent on admission).
    #[inline]
    pub const fn empty() -> Self {
        Self {
            release: None,
            holds: 0,
        }
    }

    /// A permit that runs `release` exactly once, when dropped.
    pub fn on_release(release: impl FnOnce() + Send + 'static) -> Self {
        Self {
            release: Some(Box::new(release)),
            holds: 1,
        }
    }

    /// One permit holding both `self` and `other`; on drop, `self`'s releases run first.
    #[inline]
    pub fn merge(mut self, mut other: Permit) -> Self {
        if other.is_empty() {
            return self;
        }
        if self.is_empty() {
            return other;
        }
        self.chain(&mut other);
        self
    }

    /// Appends `other`'s releases to `self`'s, leaving `other` empty.
    #[cold]
    #[inline(never)]
    fn chain(&mut self, other: &mut Permit) {
        let holds = self.holds.saturating_add(other.holds);
        let (first, then) = (self.release.take(), other.release.take());
        other.holds = 0;
        self.holds = holds;
        self.release = Some(Box::new(move || {
            // Both run even if the first panics: a slot is never leaked.
            let _then = Permit {
                release: then,
                holds: 1,
            };
            if let Some(first) = first {
                first();
            }
        }));
    }

    /// True when dropping this permit releases nothing.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.release.is_none()
    }
}

impl Drop for Permit {
    #[inline]
    fn drop(&mut self) {
        if let Some(release) = self.release.take() {
            release();
        }
    }
}

impl fmt::Debug for Permit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("holds", &self.holds)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    fn recording(log: &Arc<Mutex<Vec<u32>>>, id: u32) -> Permit {
        let log = Arc::clone(log);
        Permit::on_release(move || log.lock().unwrap().push(id))
    }

    #[test]
    fn an_empty_permit_holds_nothing_and_merges_away() {
        let log = Arc::new(Mutex::new(Vec::new()));
        assert!(Permit::empty().is_empty());
        assert!(Permit::default().merge(Permit::empty()).is_empty());
        let one = Permit::empty().merge(recording(&log, 1));
        assert_eq!(format!("{one:?}"), "Permit { holds: 1 }");
        let one = one.merge(Permit::empty());
        assert!(log.lock().unwrap().is_empty(), "merging releases nothing");
        drop(one);
        assert_eq!(*log.lock().unwrap(), vec![1]);
    }

    #[test]
    fn a_panicking_release_still_runs_the_ones_merged_after_it() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let all = Permit::on_release(|| panic!("release failed")).merge(recording(&log, 2));
        let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(all)));
        assert!(dropped.is_err());
        assert_eq!(*log.lock().unwrap(), vec![2]);
    }

    #[test]
    fn merged_permits_release_each_slot_once_in_merge_order() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let left = recording(&log, 1).merge(recording(&log, 2));
        let right = recording(&log, 3).merge(recording(&log, 4));
        let all = left.merge(right).merge(recording(&log, 5));
        assert_eq!(format!("{all:?}"), "Permit { holds: 5 }");
        drop(all);
        assert_eq!(*log.lock().unwrap(), vec![1, 2, 3, 4, 5]);
    }
}
