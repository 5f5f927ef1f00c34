//! [`QueueStats`]: what a queue holds and what it has done, in one snapshot.

use std::time::Duration;

/// A snapshot of a queue: what its store holds now, and what this queue's workers have done.
///
/// The first group of fields comes from the store (shared by every process using a durable
/// store); the counters are this queue's, since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueueStats {
    /// Jobs waiting: runnable, parked or scheduled for a retry.
    pub depth: usize,
    /// How long the oldest waiting job has waited since it was pushed.
    pub oldest_age: Option<Duration>,
    /// Jobs a worker is running.
    pub in_flight: usize,
    /// Waiting jobs held by a park ("not until T").
    pub parked: usize,
    /// Waiting jobs scheduled for a retry after a failed attempt.
    pub scheduled: usize,
    /// Jobs in the dead-letter list now.
    pub dead_letters: usize,
    /// Jobs this queue completed.
    pub completed: u64,
    /// Attempts this queue's handlers started (parked runs included).
    pub attempts: u64,
    /// Failed attempts this queue scheduled for a retry.
    pub retries: u64,
    /// Runs this queue parked (no attempt spent).
    pub parks: u64,
    /// Jobs this queue moved to the dead-letter list.
    pub dead_lettered: u64,
}
