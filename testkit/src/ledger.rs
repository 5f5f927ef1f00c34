//! The ledger: what the simulated server received, answered and committed.
//!
//! Tests assert on it: "exactly one charge per logical operation" is
//! `ledger.duplicates() == 0`; "the retry storm stayed bounded" is `ledger.throttled()`.
//! A side effect is committed when a side-effect request (per the dialect) gets a 2xx from the
//! handler; it is recorded under its operation and its key: the idempotency key when the
//! request carried one, else a fingerprint of the body, so a blind retry of the same bytes shows
//! up as a duplicate. A replayed idempotent response is not a new side effect.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::ops::Range;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use http::StatusCode;

/// How the server finished one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Outcome {
    /// A response with this status left the server (the client may still have timed out).
    Answered(StatusCode),
    /// The connection was dropped without a response.
    Reset,
}

/// One finished request.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LedgerEntry {
    /// Arrival index, 0-based.
    pub index: u64,
    /// Arrival time, since the upstream was built.
    pub arrived: Duration,
    /// When the server finished with it, since the upstream was built.
    pub finished: Duration,
    /// The operation (`"POST /v1/charges"`).
    pub operation: Arc<str>,
    /// How it ended.
    pub outcome: Outcome,
    /// True if it committed a side effect.
    pub committed: bool,
    /// True if it was answered with a replayed idempotent response.
    pub replayed: bool,
}

#[derive(Debug, Default)]
struct State {
    received: u64,
    entries: Vec<LedgerEntry>,
    by_status: BTreeMap<u16, u64>,
    resets: u64,
    replays: u64,
    side_effects: HashMap<(Arc<str>, String), u64>,
    side_effects_by_op: BTreeMap<Arc<str>, u64>,
}

/// Counts of what the simulated server received, answered and committed. Cheap to clone;
/// clones share the same counts.
#[derive(Clone, Default)]
pub struct Ledger {
    state: Arc<Mutex<State>>,
}

impl Ledger {
    /// An empty ledger.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts an arriving request; returns its arrival index.
    pub(crate) fn arrive(&self) -> u64 {
        let mut state = self.lock();
        let index = state.received;
        state.received = state.received.saturating_add(1);
        index
    }

    /// Records a committed side effect of `operation` under `key`.
    pub(crate) fn commit(&self, operation: &Arc<str>, key: String) {
        let mut state = self.lock();
        let count = state
            .side_effects
            .entry((operation.clone(), key))
            .or_insert(0);
        *count = count.saturating_add(1);
        let count = state
            .side_effects_by_op
            .entry(operation.clone())
            .or_insert(0);
        *count = count.saturating_add(1);
    }

    /// Records how a request finished.
    pub(crate) fn finish(&self, entry: LedgerEntry) {
        let mut state = self.lock();
        match entry.outcome {
            Outcome::Answered(status) => {
                let count = state.by_status.entry(status.as_u16()).or_insert(0);
                *count = count.saturating_add(1);
            }
            Outcome::Reset => state.resets = state.resets.saturating_add(1),
        }
        if entry.replayed {
            state.replays = state.replays.saturating_add(1);
        }
        state.entries.push(entry);
    }

    /// Requests received (including those still in flight).
    pub fn requests(&self) -> u64 {
        self.lock().received
    }

    /// Requests finished (answered or reset).
    pub fn finished(&self) -> u64 {
        u64::try_from(self.lock().entries.len()).unwrap_or(u64::MAX)
    }

    /// Side effects committed by `operation` (`"POST /v1/charges"`), duplicates included.
    pub fn side_effects(&self, operation: &str) -> u64 {
        self.lock()
            .side_effects_by_op
            .get(operation)
            .copied()
            .unwrap_or(0)
    }

    /// Side effects committed by `operation` under `key` (an idempotency key, or
    /// `"body:<hex>"` for a request without one).
    pub fn side_effects_for(&self, operation: &str, key: &str) -> u64 {
        let operation: Arc<str> = Arc::from(operation);
        self.lock()
            .side_effects
            .get(&(operation, key.to_owned()))
            .copied()
            .unwrap_or(0)
    }

    /// Side effects committed by every operation.
    pub fn total_side_effects(&self) -> u64 {
        self.lock()
            .side_effects_by_op
            .values()
            .fold(0, |a, b| a.saturating_add(*b))
    }

    /// Side effects committed more than once for the same operation and key: zero means every
    /// logical operation happened at most once.
    pub fn duplicates(&self) -> u64 {
        self.lock()
            .side_effects
            .values()
            .fold(0, |a, b| a.saturating_add(b.saturating_sub(1)))
    }

    /// Responses answered with a replayed idempotent result.
    pub fn replays(&self) -> u64 {
        self.lock().replays
    }

    /// Responses sent with `status`.
    pub fn with_status(&self, status: StatusCode) -> u64 {
        self.lock()
            .by_status
            .get(&status.as_u16())
            .copied()
            .unwrap_or(0)
    }

    /// 429 responses sent.
    pub fn throttled(&self) -> u64 {
        self.with_status(StatusCode::TOO_MANY_REQUESTS)
    }

    /// Responses sent, by status code.
    pub fn statuses(&self) -> BTreeMap<u16, u64> {
        self.lock().by_status.clone()
    }

    /// Connections dropped without a response.
    pub fn resets(&self) -> u64 {
        self.lock().resets
    }

    /// Every finished request, in the order they finished.
    pub fn entries(&self) -> Vec<LedgerEntry> {
        self.lock().entries.clone()
    }

    /// Finished requests that arrived in `range` (times since the upstream was built).
    pub fn arrived_in(&self, range: Range<Duration>) -> u64 {
        let count = self
            .lock()
            .entries
            .iter()
            .filter(|e| range.contains(&e.arrived))
            .count();
        u64::try_from(count).unwrap_or(u64::MAX)
    }

    /// Finished requests per whole second of arrival (second 0 = the upstream's first second).
    pub fn per_second(&self) -> BTreeMap<u64, u64> {
        let mut out = BTreeMap::new();
        for entry in &self.lock().entries {
            let count = out.entry(entry.arrived.as_secs()).or_insert(0u64);
            *count = count.saturating_add(1);
        }
        out
    }
}

impl fmt::Debug for Ledger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("Ledger")
            .field("requests", &state.received)
            .field("by_status", &state.by_status)
            .field("resets", &state.resets)
            .field("replays", &state.replays)
            .field("side_effects", &state.side_effects_by_op)
            .finish()
    }
}
