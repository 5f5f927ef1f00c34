//! Where jobs live: the [`JobStore`] trait, separate from the workers that run them.
//!
//! The worker runtime ([`super::WorkQueue`]) only talks to a store through this trait, so the
//! in-memory default ([`super::MemoryStore`]) and a durable store (Redis Streams, shared by many
//! processes) are interchangeable. A store owns every state a job can be in:
//!
//! ```text
//! push ──► waiting ──reserve──► in flight ──complete──► (gone)
//!            ▲  ▲                  │ │ │
//!            │  └──retry / park────┘ │ └──dead_letter──► dead letters ──requeue──► waiting
//!            └──────release──────────┘
//! ```
//!
//! Times are wall-clock [`SystemTime`]s read from the queue's injected clock and passed in, so a
//! durable store shared by several machines can compare them, and a test drives them in virtual
//! time. A store never sleeps: [`JobStore::reserve`] says when the next job becomes runnable and the
//! runtime waits.

use std::fmt;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::job::{Job, JobId};

/// The store could not be reached or answered something unexpected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("job store unavailable: {0}")]
pub struct StoreError(pub String);

/// A job the store would not accept, handed back to the caller: nothing is dropped silently.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PushError<J> {
    /// The queue holds `capacity` unfinished jobs already; try again when one finishes.
    #[error("queue full ({capacity} jobs waiting or in flight); retry when one finishes")]
    Full {
        /// The job, handed back.
        job: Box<Job<J>>,
        /// The queue's capacity.
        capacity: usize,
    },
    /// The queue is shutting down and takes no new jobs.
    #[error("queue is shutting down and takes no new jobs")]
    Closed {
        /// The job, handed back.
        job: Box<Job<J>>,
    },
    /// The store could not be reached.
    #[error("{error}")]
    Store {
        /// The job, handed back.
        job: Box<Job<J>>,
        /// What the store said.
        error: StoreError,
    },
}

impl<J> PushError<J> {
    /// The job that was not accepted.
    pub fn into_job(self) -> Job<J> {
        match self {
            Self::Full { job, .. } | Self::Closed { job } | Self::Store { job, .. } => *job,
        }
    }
}

/// What [`JobStore::reserve`] found.
#[derive(Debug)]
#[non_exhaustive]
pub enum Reserved<J> {
    /// A runnable job, now in flight: the caller must settle it (complete, retry, park,
    /// dead-letter or release).
    Job(Box<Job<J>>),
    /// Nothing is runnable now; `next_at` is when the earliest waiting job becomes runnable
    /// (`None`: nothing is waiting).
    Idle {
        /// When to look again, at the latest.
        next_at: Option<SystemTime>,
    },
}

/// How far a park reaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ParkScope {
    /// Only this job waits (a local limiter refused it; other groups are just as affected).
    Job,
    /// The job and every job of its group wait (the upstream said "not until T" for its
    /// credential). A job without a group parks alone.
    Group,
}

/// A job that failed for good, with what the last attempt said.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DeadLetter<J> {
    /// The job, with its key and the attempts it spent.
    pub job: Job<J>,
    /// The last error, as text.
    pub error: String,
    /// When it was dead-lettered.
    pub at: SystemTime,
}

impl<J> DeadLetter<J> {
    /// A dead letter of `job` failed with `error` at `at`.
    pub fn new(job: Job<J>, error: impl Into<String>, at: SystemTime) -> Self {
        Self {
            job,
            error: error.into(),
            at,
        }
    }
}

/// What a store holds right now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreStats {
    /// Jobs waiting: runnable, parked or scheduled for a retry (not in flight, not dead).
    pub depth: usize,
    /// Of those, jobs held by a park (including ones whose park just ended and no worker has
    /// taken yet).
    pub parked: usize,
    /// Of those, jobs waiting for a retry after a failed attempt.
    pub scheduled: usize,
    /// Jobs a worker is running.
    pub in_flight: usize,
    /// Jobs in the dead-letter list.
    pub dead_letters: usize,
    /// When the oldest waiting job was pushed.
    pub oldest_enqueued_at: Option<SystemTime>,
}

impl StoreStats {
    /// How long the oldest waiting job has waited, as of `now`.
    pub fn oldest_age(&self, now: SystemTime) -> Option<Duration> {
        self.oldest_enqueued_at
            .map(|at| now.duration_since(at).unwrap_or(Duration::ZERO))
    }
}

/// Where a queue's jobs live: waiting, in flight, parked, scheduled, dead.
///
/// Every method that settles an in-flight job takes the job back by value, with the fields the
/// runtime updated (`attempts`, `parks`, `last_error`), so a durable store rewrites what it holds.
/// A capacity, when the store has one, counts every job it holds that is not dead: waiting and in
/// flight, so a job coming back from a worker always has its place.
#[async_trait]
pub trait JobStore<J>: Send + Sync + fmt::Debug + 'static {
    /// Accepts a new job as runnable now, or hands it back ([`PushError::Full`]).
    async fn push(&self, job: Job<J>, now: SystemTime) -> Result<(), PushError<J>>;

    /// Takes the runnable job that has waited longest (jobs of a parked group and jobs scheduled
    /// later are not runnable) and marks it in flight.
    async fn reserve(&self, now: SystemTime) -> Result<Reserved<J>, StoreError>;

    /// The in-flight job `id` finished: forget it.
    async fn complete(&self, id: JobId) -> Result<(), StoreError>;

    /// The in-flight `job` failed and will run again at `at`.
    async fn retry(&self, job: Job<J>, at: SystemTime) -> Result<(), StoreError>;

    /// The in-flight `job` waits until `until`; with [`ParkScope::Group`] every waiting job of its
    /// group, and every job of the group pushed or retried before `until`, waits too.
    async fn park(
        &self,
        job: Job<J>,
        until: SystemTime,
        scope: ParkScope,
    ) -> Result<(), StoreError>;

    /// The in-flight job failed for good: move it to the dead-letter list.
    async fn dead_letter(&self, dead: DeadLetter<J>) -> Result<(), StoreError>;

    /// The in-flight `job` was not run (or its run was abandoned): make it runnable again now,
    /// spending nothing.
    async fn release(&self, job: Job<J>, now: SystemTime) -> Result<(), StoreError>;

    /// Removes the in-flight job `id` and hands it back (its worker was stopped at shutdown).
    async fn abandon(&self, id: JobId) -> Result<Option<Job<J>>, StoreError>;

    /// Removes and returns every waiting job (runnable, parked, scheduled), oldest first: what a
    /// shutting-down queue hands back to its owner. A durable store shared by other processes
    /// may leave the jobs stored for them and return none; it says so in its documentation.
    async fn drain(&self) -> Result<Vec<Job<J>>, StoreError>;

    /// The dead-letter list, oldest first.
    async fn dead_letters(&self) -> Result<Vec<DeadLetter<J>>, StoreError>;

    /// Removes and returns the dead-letter list, oldest first.
    async fn take_dead_letters(&self) -> Result<Vec<DeadLetter<J>>, StoreError>;

    /// Moves the dead letter of job `id` back to waiting, runnable at `now`, with its attempts
    /// reset to 0 (its key unchanged). Returns false if there is no such dead letter.
    async fn requeue(&self, id: JobId, now: SystemTime) -> Result<bool, StoreError>;

    /// What the store holds right now.
    async fn stats(&self) -> Result<StoreStats, StoreError>;

    /// True when the store outlives the queue that uses it (durable, shared by processes): a
    /// shutting-down queue then leaves waiting jobs and dead letters in it for the other workers
    /// (or the next start) instead of taking them out, and puts a job whose handler it cancelled
    /// back as runnable ([`JobStore::release`]) rather than removing it. Default: false.
    fn retains_jobs(&self) -> bool {
        false
    }
}
