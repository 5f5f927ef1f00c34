//! The proof of admission that records a call's outcome.

use std::fmt;
use std::sync::Arc;

use super::{CallOutcome, Inner, Outcome};

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
    breaker: Holder<'a>,
    word: u64,
    started: u64,
    probe: bool,
    done: bool,
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
    pub(super) fn new(breaker: &'a Inner, word: u64, started: u64, probe: bool) -> Self {
        Self {
            breaker: Holder::Borrowed(breaker),
            word,
            started,
            probe,
            done: false,
        }
    }

    pub(super) fn into_owned(mut self, breaker: &Arc<Inner>) -> BreakerPermit<'static> {
        self.done = true;
        BreakerPermit {
            breaker: Holder::Owned(Arc::clone(breaker)),
            word: self.word,
            started: self.started,
            probe: self.probe,
            done: false,
        }
    }

    /// Records the call's outcome.
    #[inline]
    pub fn record(mut self, outcome: Outcome) {
        self.done = true;
        self.breaker
            .inner()
            .finish(self.word, self.started, self.probe, outcome);
    }

    /// Records what happened to the call, classified by the breaker's failure predicate.
    pub fn record_call(self, call: &CallOutcome) {
        let outcome = self.breaker.inner().config.classify(call);
        self.record(outcome);
    }

    /// True when this call is a half-open probe (its outcome decides whether the breaker
    /// closes or re-opens).
    pub fn is_probe(&self) -> bool {
        self.probe
    }

    #[cfg(test)]
    pub(super) fn generation(&self) -> u64 {
        self.word >> 2
    }
}

impl Drop for BreakerPermit<'_> {
    #[inline]
    fn drop(&mut self) {
        if !self.done {
            self.done = true;
            self.breaker
                .inner()
                .finish(self.word, self.started, self.probe, Outcome::Ignored);
        }
    }
}

impl fmt::Debug for BreakerPermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BreakerPermit")
            .field("breaker", &self.breaker.inner().config.name)
            .field("probe", &self.probe)
            .finish()
    }
}
