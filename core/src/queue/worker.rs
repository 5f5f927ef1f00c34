//! One worker: take the next runnable job, admit it through the limiter, run the handler, settle
//! the outcome (done, retry, park, dead-letter). Workers never sleep on a parked job: the store
//! holds it and the worker takes the next one.

use std::pin::pin;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use tokio::sync::watch;

use super::job::{Job, JobContext};
use super::outcome::JobOutcome;
use super::runtime::{Counters, Payload, Shared, sleep_opt};
use super::store::{DeadLetter, ParkScope, Reserved, StoreError};
use crate::limit::{Permit, ThrottleReason, Throttled};
use crate::telemetry::{QUEUE_TARGET, emit};

/// A worker's loop: runs until shutdown begins (or, mid-job, until its deadline passes).
pub(super) async fn run<J: Payload>(shared: Arc<Shared<J>>) {
    let mut closing = shared.closing.subscribe();
    let mut stop = shared.stop.subscribe();
    loop {
        if *closing.borrow_and_update() {
            return;
        }
        let mut work = pin!(shared.work.notified());
        work.as_mut().enable();
        let wait = match shared.store.reserve(shared.wall()).await {
            Ok(Reserved::Job(job)) => {
                process(&shared, *job, &mut stop).await;
                continue;
            }
            Ok(Reserved::Idle { next_at }) => {
                let until_next =
                    next_at.map(|at| at.duration_since(shared.wall()).unwrap_or(Duration::ZERO));
                match (until_next, shared.config.poll) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            }
            Err(error) => {
                store_failed("reserve", &error);
                Some(shared.config.poll.unwrap_or(Duration::from_secs(1)))
            }
        };
        tokio::select! {
            () = work => {}
            _ = closing.changed() => {}
            () = sleep_opt(wait) => {}
        }
    }
}

/// Resolves once the shutdown deadline has passed.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    if stop.wait_for(|stopped| *stopped).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Aborts the handler's task if the worker stops waiting for it.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn process<J: Payload>(shared: &Shared<J>, job: Job<J>, stop: &mut watch::Receiver<bool>) {
    let permit = match admit(shared, &job, stop).await {
        Admission::Admitted(permit) => permit,
        Admission::Refused(throttled) => return defer(shared, job, throttled).await,
        Admission::Stopped => {
            // Never ran: back to waiting, so shutdown's drain hands it back as unrun.
            let now = shared.wall();
            return persist(shared, "release", || shared.store.release(job.clone(), now)).await;
        }
    };

    Counters::bump(&shared.counters.attempts);
    let handler = Arc::clone(&shared.handler);
    let (payload, ctx) = (job.payload.clone(), JobContext::for_job(&job));
    let mut task = tokio::spawn(async move { handler.handle(payload, ctx).await });
    let guard = AbortOnDrop(task.abort_handle());
    let joined = tokio::select! {
        joined = &mut task => Some(joined),
        () = stopped(stop) => None,
    };
    drop(guard);
    drop(permit);
    let outcome = match joined {
        Some(Ok(outcome)) => outcome,
        Some(Err(error)) if error.is_panic() => JobOutcome::retry("the job's handler panicked"),
        Some(Err(_)) | None => return interrupted(shared, job).await,
    };
    settle(shared, job, outcome).await;
}

enum Admission {
    Admitted(Option<Permit>),
    Refused(Throttled),
    Stopped,
}

async fn admit<J>(shared: &Shared<J>, job: &Job<J>, stop: &mut watch::Receiver<bool>) -> Admission {
    let Some(limiter) = &shared.limiter else {
        return Admission::Admitted(None);
    };
    tokio::select! {
        acquired = limiter.acquire(&job.cost, shared.config.limiter_wait) => match acquired {
            Ok(permit) => Admission::Admitted(Some(permit)),
            Err(throttled) => Admission::Refused(throttled),
        },
        () = stopped(stop) => Admission::Stopped,
    }
}

/// The limiter would not admit the job within the configured wait: the job alone waits until
/// capacity returns (the limiter is shared, so other groups are no better off), no attempt spent.
async fn defer<J: Payload>(shared: &Shared<J>, mut job: Job<J>, throttled: Throttled) {
    if throttled.reason == ThrottleReason::ExceedsCapacity {
        return dead_letter(shared, job, throttled.to_string()).await;
    }
    let wait = throttled
        .retry_after(shared.clock.now())
        .filter(|wait| !wait.is_zero())
        .unwrap_or(shared.config.limiter_wait);
    job.last_error = Some(throttled.to_string());
    let until = shared.wall() + wait;
    persist(shared, "park", || {
        shared.store.park(job.clone(), until, ParkScope::Job)
    })
    .await;
    shared.work.notify_waiters();
}

/// The handler was cancelled at the shutdown deadline: take the job out of the store and report
/// it as interrupted.
async fn interrupted<J: Payload>(shared: &Shared<J>, job: Job<J>) {
    if shared.store.retains_jobs() {
        // A durable store keeps the job for the other workers: put it back, runnable, and list
        // it so the owner knows this attempt may have reached the upstream.
        let now = shared.wall();
        persist(shared, "release", || shared.store.release(job.clone(), now)).await;
        shared
            .interrupted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(job);
        return;
    }
    let held = match shared.store.abandon(job.id).await {
        Ok(held) => held,
        Err(error) => {
            store_failed("abandon", &error);
            None
        }
    };
    shared
        .interrupted
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(held.unwrap_or(job));
    shared.space.notify_waiters();
}

/// Applies a handler's outcome to the job and the store.
async fn settle<J: Payload>(shared: &Shared<J>, mut job: Job<J>, outcome: JobOutcome) {
    let config = &shared.config;
    let outcome = match outcome {
        JobOutcome::Park { after, error } if job.parks >= config.max_parks => JobOutcome::Retry {
            after: Some(after),
            error: format!(
                "{error} (parked {} times; this park spends an attempt)",
                job.parks
            ),
        },
        other => other,
    };
    match outcome {
        JobOutcome::Done => {
            persist(shared, "complete", || shared.store.complete(job.id)).await;
            Counters::bump(&shared.counters.completed);
            shared.space.notify_waiters();
        }
        JobOutcome::Park { after, error } => {
            job.parks = job.parks.saturating_add(1);
            tracing::event!(
                target: QUEUE_TARGET,
                tracing::Level::INFO,
                queue.name = config.name,
                queue.group = job.group.as_deref().unwrap_or(""),
                queue.park_ms = millis(after),
                "parking job {} and its group for {} ms: {error}",
                job.id,
                millis(after)
            );
            job.last_error = Some(error);
            let until = shared.wall() + after;
            persist(shared, "park", || {
                shared.store.park(job.clone(), until, ParkScope::Group)
            })
            .await;
            Counters::bump(&shared.counters.parks);
            shared.work.notify_waiters();
        }
        JobOutcome::Retry { after, error } => {
            job.attempts = job.attempts.saturating_add(1);
            if job.attempts >= config.max_attempts {
                let error = format!("{error} (gave up after {} attempts)", job.attempts);
                return dead_letter(shared, job, error).await;
            }
            let delay = after.unwrap_or_else(|| {
                let mut rng = shared.rng.lock().unwrap_or_else(PoisonError::into_inner);
                config.backoff.delay(job.attempts - 1, None, &mut rng)
            });
            tracing::event!(
                target: QUEUE_TARGET,
                tracing::Level::INFO,
                queue.name = config.name,
                queue.attempt = job.attempts,
                queue.delay_ms = millis(delay),
                "job {} failed attempt {}; retrying in {} ms: {error}",
                job.id,
                job.attempts,
                millis(delay)
            );
            job.last_error = Some(error);
            let at = shared.wall() + delay;
            persist(shared, "retry", || shared.store.retry(job.clone(), at)).await;
            Counters::bump(&shared.counters.retries);
            shared.work.notify_waiters();
        }
        JobOutcome::Fail { error } => {
            job.attempts = job.attempts.saturating_add(1);
            dead_letter(shared, job, error).await;
        }
    }
    refresh_gauges(shared).await;
}

async fn dead_letter<J: Payload>(shared: &Shared<J>, mut job: Job<J>, error: String) {
    tracing::event!(
        target: QUEUE_TARGET,
        tracing::Level::WARN,
        queue.name = shared.config.name,
        queue.attempts = job.attempts,
        "dead-lettering job {} (key {}) after {} attempt(s): {error}",
        job.id,
        job.key,
        job.attempts
    );
    job.last_error = Some(error.clone());
    let dead = DeadLetter::new(job, error, shared.wall());
    persist(shared, "dead_letter", || {
        shared.store.dead_letter(dead.clone())
    })
    .await;
    Counters::bump(&shared.counters.dead_lettered);
    emit::queue_dead_letter(shared.config.name);
    shared.space.notify_waiters();
}

/// Publishes the depth and oldest-age gauges (with the `metrics` feature; a no-op without).
pub(super) async fn refresh_gauges<J: 'static>(shared: &Shared<J>) {
    if !emit::ENABLED {
        return;
    }
    if let Ok(stats) = shared.store.stats().await {
        let age = stats.oldest_age(shared.wall()).unwrap_or(Duration::ZERO);
        emit::queue_depth(shared.config.name, stats.depth, age);
    }
}

/// How long a worker keeps retrying a store write that failed (a durable store restarting).
const STORE_RETRY_FOR: Duration = Duration::from_secs(30);

/// Runs a store write, retrying a failure with backoff (50 ms doubling to 1 s) for up to
/// [`STORE_RETRY_FOR`] or until the shutdown deadline, logging each failure. A write that never
/// succeeds leaves the job where the store has it: a durable store redelivers an in-flight job
/// after its visibility timeout, so the job is run again with its key rather than lost.
async fn persist<J, F, Fut>(shared: &Shared<J>, operation: &'static str, mut write: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), StoreError>>,
{
    let mut delay = Duration::from_millis(50);
    let mut waited = Duration::ZERO;
    loop {
        let Err(error) = write().await else { return };
        store_failed(operation, &error);
        if waited >= STORE_RETRY_FOR || *shared.stop.borrow() {
            return;
        }
        tokio::time::sleep(delay).await;
        waited += delay;
        delay = (delay * 2).min(Duration::from_secs(1));
    }
}

fn store_failed(operation: &'static str, error: &StoreError) {
    tracing::event!(
        target: QUEUE_TARGET,
        tracing::Level::WARN,
        queue.store_op = operation,
        "job store {operation} failed: {error}"
    );
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
