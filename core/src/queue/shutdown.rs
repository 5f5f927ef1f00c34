//! [`ShutdownReport`]: everything a stopped queue hands back, so nothing is dropped silently.

use super::job::Job;
use super::store::{DeadLetter, StoreError};

/// What [`super::WorkQueue::shutdown`] hands back.
///
/// Every job the queue accepted and did not finish is in exactly one list. Each keeps its
/// idempotency key and attempt count, so pushing it into a new queue (or running it by hand)
/// sends the same key again.
///
/// A queue over a durable store ([`JobStore::retains_jobs`](super::JobStore::retains_jobs), e.g.
/// Redis) hands back nothing to run: `retained` is true, waiting jobs and dead letters stay in
/// the store for the other workers, and the jobs in `interrupted` were put back into the store as
/// runnable (listed so the owner knows which attempts may have reached the upstream; do not push
/// them again).
#[derive(Debug)]
#[non_exhaustive]
pub struct ShutdownReport<J> {
    /// Jobs that never ran to an end: waiting, parked, scheduled for a retry, or taken by a
    /// worker that had not started the handler yet. Oldest first.
    pub unrun: Vec<Job<J>>,
    /// Jobs whose handler was still running at the deadline and was cancelled. The attempt may
    /// have reached the upstream: run them again only with their key (which they carry) or after
    /// checking the upstream. Their `attempts` do not count the cancelled run.
    pub interrupted: Vec<Job<J>>,
    /// The dead-letter list, taken from the store.
    pub dead_letters: Vec<DeadLetter<J>>,
    /// True when every in-flight handler finished before the deadline.
    pub drained_in_time: bool,
    /// True when the store kept the queue's jobs (a durable store): `unrun` and `dead_letters` are
    /// empty because the jobs are still in the store, and `interrupted` lists jobs put back there.
    pub retained: bool,
    /// Store errors met while handing jobs back (a durable store that could not be reached keeps
    /// its jobs; they are not lost, but not in this report either).
    pub errors: Vec<StoreError>,
}

impl<J> ShutdownReport<J> {
    /// Every job handed back, unrun first, then interrupted (none when the store retained them:
    /// they are still in the store).
    pub fn into_jobs(self) -> Vec<Job<J>> {
        if self.retained {
            return self.unrun;
        }
        let mut jobs = self.unrun;
        jobs.extend(self.interrupted);
        jobs
    }
}
