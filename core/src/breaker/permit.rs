//! The proof of admission that records a call's outcome.

use std::fmt;
use std::sync::Arc;

use super::{CallOutcome, HALF_OPEN, Inner, KIND_MASK, Outcome};

/// Proof that a [`CircuitBreaker`](super::CircuitBreaker) admitted one call; records how the call went.
///
/// Record exactly once with [`record`](Self::record) (or [`record_call`](Self::record_call)).
/// Dropping the permit without recording counts as [`Outcome::Ignored`]: nothing is counted,
/// and a half-open probe slot is freed for the next caller, so a cancelled call never wedges
/// the breaker. The call's duration, for the slow-call threshold, is measured on the breaker's
/// clock from admission to recording.
///
/// [`CircuitBreaker::admit`](super::CircuitBreaker::admit) lends a permit tied to the breaker
/// (no reference counting on the hot path);
/// [`admit_owned`](super::CircuitBreaker::admit_owned) gives a `'static` one that can move
/// into a spawned task.
#[must_use = "record the call's outcome; dropping the permit counts the call as ignored"]
pub struct BreakerPermit<'a> {
    /// The breaker, until the outcome is recorded.
    breaker: Option<Holder<'a>>,
    /// The state word the call was admitted in (a half-open one: the call is a probe).
    word: u64,
    started: u64,
}

enum Holder<'a> {
    Borrowed(&'a Inner),
    Owned(Arc<Inner>),
}

impl Holder<'_> {
    #[inline]
    fn inner(&self) -> &Inner {
        match self {
            Holder::Borrowed(inner) => inner,
            Holder::Owned(inner) => inner,
        }
    }
}

impl<'a> BreakerPermit<'a> {
    #[inline]
    pub(super) fn new(breaker: &'a Inner, word: u64, started: u64) -> Self {
        Self {
            breaker: Some(Holder::Borrowed(breaker)),
            word,
            started,
        }
    }

    pub(super) fn into_owned(mut self, breaker: &Arc<Inner>) -> BreakerPermit<'static> {
        self.breaker = None;
        BreakerPermit {
            breaker: Some(Holder::Owned(Arc::clone(breaker))),
            word: self.word,
            started: self.started,
        }
    }

    /// Records the call's outcome.
    #[inline]
    pub fn record(mut self, outcome: Outcome) {
        if let Some(breaker) = self.breaker.take() {
            breaker.inner().finish(self.word, self.started, outcome);
        }
    }

    /// Records what happened to the call, classified by the breaker's failure predicate.
    pub fn record_call(self, call: &CallOutcome) {
        let outcome = match &self.breaker {
            Some(breaker) => breaker.inner().config.classify(call),
            None => return,
        };
        self.record(outcome);
    }

    /// True when this call is a half-open probe (its outcome decides whether the breaker
    /// closes or re-opens).
    pub fn is_probe(&self) -> bool {
        self.word & KIND_MASK == HALF_OPEN
    }

    #[cfg(test)]
    pub(super) fn generation(&self) -> u64 {
        self.word >> 2
    }

    /// Dropped without recording: the call counts as ignored.
    #[cold]
    #[inline(never)]
    fn ignored(&mut self) {
        if let Some(breaker) = self.breaker.take() {
            breaker
                .inner()
                .finish(self.word, self.started, Outcome::Ignored);
        }
    }
}

impl Drop for BreakerPermit<'_> {
    #[inline]
    fn drop(&mut self) {
        if self.breaker.is_some() {
            self.ignored();
        }
    }
}

impl fmt::Debug for BreakerPermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match &self.breaker {
            Some(breaker) => &*breaker.inner().config.name,
            None => "(recorded)",
        };
        f.debug_struct("BreakerPermit")
            .field("breaker", &name)
            .field("probe", &self.is_probe())
            .finish()
    }
}
