//! One unit of work: its payload, its idempotency key (minted at enqueue), its group, its cost and
//! how many attempts it has spent.

use std::fmt;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::idempotency::IdempotencyKey;
use crate::quota::Cost;

/// A job's identity in its queue: a random UUID, unique across processes sharing a durable store.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(Uuid);

impl JobId {
    /// A fresh random id.
    #[allow(clippy::new_without_default)] // a fresh random id is not a "default"
    pub fn new() -> Self {
        Self(Uuid::new_v4())
    }

    /// The id as a UUID.
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl fmt::Debug for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JobId({})", self.0)
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// One job: a payload plus everything the queue needs to run it safely more than once.
///
/// The idempotency key is minted when the job is built ([`Job::new`]) or derived from a business
/// id ([`Job::key`] with [`IdempotencyKey::derive`]); every attempt and every redelivery hands the
/// handler the same key, so a request repeated after a crash or a 429 is performed once by an
/// upstream that honours keys.
///
/// A job serialises with serde (`J: Serialize + DeserializeOwned`), so a durable store can hold
/// it; the in-memory store keeps it typed.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Job<J> {
    /// The job's identity in its queue.
    pub id: JobId,
    /// What to do: handed to the handler on every attempt.
    pub payload: J,
    /// The idempotency key every attempt sends.
    pub key: IdempotencyKey,
    /// The group the job belongs to (`"stripe:acct_123"`: upstream plus credential). When a job
    /// is parked because its upstream said "not until T", every job of its group waits until T.
    pub group: Option<String>,
    /// What one attempt spends from the queue's limiter (default: one request).
    pub cost: Cost,
    /// Attempts spent so far: runs of the handler that ended in anything but a park.
    pub attempts: u32,
    /// How many times the job was parked (parks spend no attempt).
    pub parks: u32,
    /// When the job was pushed (set by the queue, on the queue's clock).
    pub enqueued_at: SystemTime,
    /// What the last failed attempt (or park) said, if any.
    pub last_error: Option<String>,
}

impl<J> Job<J> {
    /// A job for `payload` with a fresh idempotency key, no group, a cost of one request and no
    /// attempts spent.
    pub fn new(payload: J) -> Self {
        Self {
            id: JobId::new(),
            payload,
            key: IdempotencyKey::new(),
            group: None,
            cost: Cost::request(),
            attempts: 0,
            parks: 0,
            enqueued_at: SystemTime::UNIX_EPOCH,
            last_error: None,
        }
    }

    /// This job with the idempotency key `key` (e.g. derived from an order number, so a job
    /// enqueued twice still sends one key).
    pub fn key(mut self, key: IdempotencyKey) -> Self {
        self.key = key;
        self
    }

    /// This job in `group` (upstream plus credential, e.g. `"stripe:acct_123"`).
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.group = Some(group.into());
        self
    }

    /// This job spending `cost` from the queue's limiter per attempt (default: one request).
    pub fn cost(mut self, cost: Cost) -> Self {
        self.cost = cost;
        self
    }
}

/// What a handler knows about the attempt it is running.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct JobContext {
    /// The job's identity.
    pub id: JobId,
    /// The idempotency key to send: the same on every attempt and redelivery.
    pub key: IdempotencyKey,
    /// This attempt's number, 1 for the first. A park does not spend an attempt, so the run after
    /// a park has the same number as the run that was parked.
    pub attempt: u32,
    /// The job's group, if any.
    pub group: Option<String>,
    /// When the job was pushed.
    pub enqueued_at: SystemTime,
}

impl JobContext {
    pub(crate) fn for_job<J>(job: &Job<J>) -> Self {
        Self {
            id: job.id,
            key: job.key.clone(),
            attempt: job.attempts.saturating_add(1),
            group: job.group.clone(),
            enqueued_at: job.enqueued_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_survives_a_serde_round_trip_with_its_key_group_and_cost() {
        let job = Job::new(vec![1u32, 2, 3])
            .group("stripe:acct_1")
            .cost(Cost::request().with("tokens", 40));
        let json = serde_json::to_string(&job).unwrap();
        let back: Job<Vec<u32>> = serde_json::from_str(&json).unwrap();
        assert_eq!(back.id, job.id);
        assert_eq!(back.key, job.key);
        assert_eq!(back.payload, vec![1, 2, 3]);
        assert_eq!(back.group.as_deref(), Some("stripe:acct_1"));
        assert_eq!(back.cost.amount(&"tokens".into()), 40);
        assert_eq!(back.attempts, 0);
    }

    #[test]
    fn every_job_gets_its_own_key_and_id_and_the_context_counts_from_one() {
        let (a, b) = (Job::new(()), Job::new(()));
        assert_ne!(a.key, b.key);
        assert_ne!(a.id, b.id);
        let ctx = JobContext::for_job(&a);
        assert_eq!(ctx.attempt, 1);
        assert_eq!(ctx.key, a.key);
    }
}
