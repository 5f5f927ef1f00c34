//! [`WorkQueue`]: the worker runtime over a [`JobStore`]: push with back-pressure, workers under a
//! shared limiter, retries, parks, dead letters, stats and graceful shutdown.

use std::fmt;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use super::builder::{Config, WorkQueueBuilder};
use super::handler::Handler;
use super::job::{Job, JobId};
use super::shutdown::ShutdownReport;
use super::stats::QueueStats;
use super::store::{DeadLetter, JobStore, PushError, StoreError};
use crate::clock::SharedClock;
use crate::limit::Limiter;
use crate::telemetry::emit;

/// What a queue's jobs must be: cloneable (each attempt gets a copy, the store keeps the
/// original) and serde-serialisable (so a durable store can hold them).
pub trait Payload: Clone + Serialize + DeserializeOwned + Send + Sync + 'static {}

impl<T: Clone + Serialize + DeserializeOwned + Send + Sync + 'static> Payload for T {}

#[derive(Debug, Default)]
pub(super) struct Counters {
    pub(super) attempts: AtomicU64,
    pub(super) completed: AtomicU64,
    pub(super) retries: AtomicU64,
    pub(super) parks: AtomicU64,
    pub(super) dead_lettered: AtomicU64,
}

impl Counters {
    pub(super) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// The state workers and handles share.
pub(super) struct Shared<J> {
    pub(super) store: Arc<dyn JobStore<J>>,
    pub(super) handler: Arc<dyn Handler<J>>,
    pub(super) limiter: Option<Arc<dyn Limiter>>,
    pub(super) clock: SharedClock,
    pub(super) config: Config,
    /// A job may have become runnable (pushed, retried, parked, released, requeued).
    pub(super) work: Notify,
    /// A place in the store may have freed up.
    pub(super) space: Notify,
    /// True once shutdown began: no pushes, no new reservations.
    pub(super) closing: watch::Sender<bool>,
    /// True once the shutdown deadline passed: running handlers are cancelled.
    pub(super) stop: watch::Sender<bool>,
    pub(super) interrupted: Mutex<Vec<Job<J>>>,
    pub(super) counters: Counters,
    pub(super) rng: Mutex<fastrand::Rng>,
}

impl<J> Shared<J> {
    pub(super) fn wall(&self) -> SystemTime {
        self.clock.wall()
    }
}

/// A rate-limited work queue: `concurrency` workers run jobs from a [`JobStore`] through a
/// shared [`Limiter`], retry failures with long backoff, park a group when its upstream says
/// "not until T", dead-letter what is permanent, and hand back every unrun job at shutdown.
///
/// Cheap to clone: clones share the workers and the store. Workers run (as tokio tasks) until
/// [`WorkQueue::shutdown`]; dropping the handles does not stop them.
pub struct WorkQueue<J> {
    shared: Arc<Shared<J>>,
    workers: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl<J> WorkQueue<J> {
    pub(super) fn from_parts(shared: Arc<Shared<J>>, workers: Vec<JoinHandle<()>>) -> Self {
        Self {
            shared,
            workers: Arc::new(Mutex::new(workers)),
        }
    }
}

impl<J> Clone for WorkQueue<J> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
            workers: Arc::clone(&self.workers),
        }
    }
}

impl<J> fmt::Debug for WorkQueue<J> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkQueue")
            .field("name", &self.shared.config.name)
            .field("store", &self.shared.store)
            .field("concurrency", &self.shared.config.concurrency)
            .finish_non_exhaustive()
    }
}

impl<J: Payload> WorkQueue<J> {
    /// A builder for a queue whose jobs `handler` runs.
    pub fn builder(handler: impl Handler<J>) -> WorkQueueBuilder<J> {
        WorkQueueBuilder::new(Arc::new(handler))
    }

    /// Pushes `job`, waiting while the queue is full (back-pressure). Stamps its push time.
    ///
    /// Fails only when the queue is shutting down or the store cannot be reached; the job is
    /// handed back in the error.
    pub async fn push(&self, job: Job<J>) -> Result<JobId, PushError<J>> {
        let mut job = job;
        job.enqueued_at = self.shared.wall();
        let mut closing = self.shared.closing.subscribe();
        loop {
            if *closing.borrow_and_update() {
                return Err(PushError::Closed { job: Box::new(job) });
            }
            let mut space = pin!(self.shared.space.notified());
            space.as_mut().enable();
            match self.push_once(job).await {
                Err(PushError::Full { job: back, .. }) => job = *back,
                other => return other,
            }
            let poll = self.shared.config.poll;
            tokio::select! {
                () = space => {}
                _ = closing.changed() => {}
                () = sleep_opt(poll) => {}
            }
        }
    }

    /// Pushes `job` if there is room, else hands it back at once ([`PushError::Full`]).
    pub async fn try_push(&self, job: Job<J>) -> Result<JobId, PushError<J>> {
        let mut job = job;
        job.enqueued_at = self.shared.wall();
        if *self.shared.closing.borrow() {
            return Err(PushError::Closed { job: Box::new(job) });
        }
        self.push_once(job).await
    }

    async fn push_once(&self, job: Job<J>) -> Result<JobId, PushError<J>> {
        let id = job.id;
        self.shared.store.push(job, self.shared.wall()).await?;
        self.shared.work.notify_waiters();
        super::worker::refresh_gauges(&self.shared).await;
        Ok(id)
    }

    /// What the store holds now and what this queue has done. Also refreshes the depth and
    /// oldest-age gauges (with the `metrics` feature), so a periodic call keeps the age current.
    pub async fn stats(&self) -> Result<QueueStats, StoreError> {
        let store = self.shared.store.stats().await?;
        let oldest_age = store.oldest_age(self.shared.wall());
        emit::queue_depth(
            self.shared.config.name,
            store.depth,
            oldest_age.unwrap_or(Duration::ZERO),
        );
        let counters = &self.shared.counters;
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Ok(QueueStats {
            depth: store.depth,
            oldest_age,
            in_flight: store.in_flight,
            parked: store.parked,
            scheduled: store.scheduled,
            dead_letters: store.dead_letters,
            completed: read(&counters.completed),
            attempts: read(&counters.attempts),
            retries: read(&counters.retries),
            parks: read(&counters.parks),
            dead_lettered: read(&counters.dead_lettered),
        })
    }

    /// The dead-letter list, oldest first: each job with its key, attempts and last error.
    pub async fn dead_letters(&self) -> Result<Vec<DeadLetter<J>>, StoreError> {
        self.shared.store.dead_letters().await
    }

    /// Removes and returns the dead-letter list, oldest first.
    pub async fn take_dead_letters(&self) -> Result<Vec<DeadLetter<J>>, StoreError> {
        self.shared.store.take_dead_letters().await
    }

    /// Moves the dead letter of job `id` back into the queue, runnable now, with its attempts
    /// reset and its idempotency key unchanged. Returns false if there is no such dead letter.
    pub async fn requeue(&self, id: JobId) -> Result<bool, StoreError> {
        let found = self.shared.store.requeue(id, self.shared.wall()).await?;
        if found {
            self.shared.work.notify_waiters();
        }
        Ok(found)
    }

    /// Stops the queue: no new pushes or reservations; running jobs get until `grace` to finish;
    /// handlers still running then are cancelled. Hands back every job not run to an end.
    ///
    /// A job that finishes within the grace period is settled as usual (a failure it reports is
    /// scheduled, then handed back as unrun). Calling it again returns what is left (usually
    /// nothing).
    pub async fn shutdown(&self, grace: Duration) -> ShutdownReport<J> {
        self.shared.closing.send_replace(true);
        let mut workers =
            std::mem::take(&mut *self.workers.lock().unwrap_or_else(PoisonError::into_inner));
        let drained_in_time = tokio::time::timeout(grace, async {
            for worker in workers.iter_mut() {
                let _ = worker.await;
            }
        })
        .await
        .is_ok();
        if !drained_in_time {
            self.shared.stop.send_replace(true);
            for worker in workers {
                if !worker.is_finished() {
                    let _ = worker.await;
                }
            }
        }

        let mut errors = Vec::new();
        let retained = self.shared.store.retains_jobs();
        let (unrun, dead_letters) = if retained {
            (Vec::new(), Vec::new())
        } else {
            let unrun = self.shared.store.drain().await.unwrap_or_else(|error| {
                errors.push(error);
                Vec::new()
            });
            let dead_letters =
                self.shared
                    .store
                    .take_dead_letters()
                    .await
                    .unwrap_or_else(|error| {
                        errors.push(error);
                        Vec::new()
                    });
            (unrun, dead_letters)
        };
        let interrupted = std::mem::take(
            &mut *self
                .shared
                .interrupted
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        self.shared.space.notify_waiters();
        super::worker::refresh_gauges(&self.shared).await;
        ShutdownReport {
            unrun,
            interrupted,
            dead_letters,
            drained_in_time,
            retained,
            errors,
        }
    }
}

/// Sleeps for `d`, or forever when `None`.
pub(super) async fn sleep_opt(d: Option<Duration>) {
    match d {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}
