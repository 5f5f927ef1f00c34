//! The queue's runtime, in virtual time: parking, dead letters, shutdown, back-pressure, limiter.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::StatusCode;
use tokio::sync::Semaphore;

use super::*;
use crate::backoff::{Backoff, Jitter};
use crate::clock::{Clock as _, SharedClock, TokioClock};
use crate::error::Error;
use crate::idempotency::IdempotencyKey;
use crate::limit::{GcraLimiter, Rate};

/// One run of the handler: which job, its context, and when (seconds since the test began).
#[derive(Clone, Debug)]
struct Run {
    name: String,
    key: IdempotencyKey,
    attempt: u32,
    at: Duration,
}

#[derive(Clone)]
struct Recorder {
    runs: Arc<Mutex<Vec<Run>>>,
    clock: SharedClock,
    start: std::time::Instant,
}

impl Recorder {
    fn new() -> Self {
        let clock = TokioClock::shared();
        let start = clock.now();
        Self {
            runs: Arc::default(),
            clock,
            start,
        }
    }

    fn record(&self, name: &str, ctx: &JobContext) {
        self.runs.lock().unwrap().push(Run {
            name: name.to_owned(),
            key: ctx.key.clone(),
            attempt: ctx.attempt,
            at: self.clock.now() - self.start,
        });
    }

    /// A queue builder whose handler records each run as it starts, then runs `then`.
    fn queue<F, Fut, O>(&self, then: F) -> WorkQueueBuilder<String>
    where
        F: Fn(String, JobContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = O> + Send + 'static,
        O: Into<JobOutcome>,
    {
        let rec = self.clone();
        WorkQueue::builder(move |name: String, ctx: JobContext| {
            rec.record(&name, &ctx);
            then(name, ctx)
        })
    }

    fn runs_of_all(&self) -> Vec<Run> {
        self.runs.lock().unwrap().clone()
    }

    fn runs_of(&self, name: &str) -> Vec<Run> {
        let runs = self.runs.lock().unwrap();
        runs.iter().filter(|r| r.name == name).cloned().collect()
    }
}

async fn until_completed<J: Payload>(queue: &WorkQueue<J>, completed: u64) -> QueueStats {
    for _ in 0..100_000 {
        let stats = queue.stats().await.unwrap();
        if stats.completed + stats.dead_lettered >= completed {
            return stats;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("jobs did not finish: {:?}", queue.stats().await);
}

/// A queue whose handler works for `work` (recorded as it starts).
fn slow_queue(recorder: &Recorder, work: Duration, concurrency: usize) -> WorkQueue<String> {
    recorder
        .queue(move |_, _| tokio::time::sleep(work))
        .concurrency(concurrency)
        .start()
}

fn rate_limited(after: Duration) -> Error<String> {
    Error::api(
        "stripe",
        StatusCode::TOO_MANY_REQUESTS,
        "rate limited".to_owned(),
    )
    .with_retry_after(after)
}

#[tokio::test(start_paused = true)]
async fn a_429_with_a_30s_hint_parks_the_group_while_the_worker_serves_other_groups() {
    let recorder = Recorder::new();
    let rec = recorder.clone();
    let queue = recorder
        .queue(move |name, _| {
            let rec = rec.clone();
            async move {
                if name == "a1" && rec.runs_of("a1").len() == 1 {
                    return Err(rate_limited(Duration::from_secs(30)));
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
                Ok(())
            }
        })
        .concurrency(1)
        .start();

    for (name, group) in [
        ("a1", "a"),
        ("a2", "a"),
        ("b1", "b"),
        ("b2", "b"),
        ("b3", "b"),
    ] {
        queue
            .push(Job::new(name.to_owned()).group(group))
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_secs(10)).await;
    let during = queue.stats().await.unwrap();
    assert_eq!(during.parked, 2, "a1 and a2 wait for the group: {during:?}");
    assert_eq!(
        during.completed, 3,
        "the one worker served group b meanwhile"
    );
    assert_eq!(during.in_flight, 0, "no worker sits on a parked job");

    let stats = until_completed(&queue, 5).await;
    assert_eq!(stats.completed, 5);
    assert_eq!(stats.parks, 1);
    assert_eq!(stats.retries, 0);
    assert_eq!(stats.dead_lettered, 0);

    for b in ["b1", "b2", "b3"] {
        assert!(recorder.runs_of(b)[0].at < Duration::from_secs(5), "{b}");
    }
    let a1 = recorder.runs_of("a1");
    assert_eq!(a1.len(), 2);
    assert_eq!(a1[0].at, Duration::ZERO);
    assert_eq!(a1[1].at, Duration::from_secs(30), "resumes exactly at T");
    assert_eq!(
        (a1[0].attempt, a1[1].attempt),
        (1, 1),
        "the park spent no attempt"
    );
    assert_eq!(a1[0].key, a1[1].key, "the same key on every run");
    let a2 = recorder.runs_of("a2");
    assert!(
        a2[0].at >= Duration::from_secs(30),
        "a2 was held with its group: {a2:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn permanent_failures_are_dead_lettered_with_the_last_error_and_can_be_requeued() {
    let fixed = Arc::new(Mutex::new(false));
    let flag = Arc::clone(&fixed);
    let recorder = Recorder::new();
    let queue = recorder
        .queue(move |name, _| {
            let flag = Arc::clone(&flag);
            async move {
                if *flag.lock().unwrap() {
                    return Ok(());
                }
                Err(match name.as_str() {
                    "invalid" => Error::<String>::api(
                        "stripe",
                        StatusCode::BAD_REQUEST,
                        "no such customer".into(),
                    ),
                    _ => Error::timeout("stripe"),
                })
            }
        })
        .max_attempts(3)
        .backoff(
            Backoff::new()
                .base(Duration::from_secs(60))
                .cap(Duration::from_secs(3600))
                .jitter(Jitter::None),
        )
        .start();

    let invalid = queue.push(Job::new("invalid".to_owned())).await.unwrap();
    let flaky = Job::new("flaky".to_owned());
    let flaky_key = flaky.key.clone();
    let flaky_id = queue.push(flaky).await.unwrap();
    let stats = until_completed(&queue, 2).await;
    assert_eq!(stats.dead_lettered, 2);
    assert_eq!(stats.dead_letters, 2);
    assert_eq!(stats.retries, 2);

    let dead = queue.dead_letters().await.unwrap();
    let by_id = |id| dead.iter().find(|d| d.job.id == id).unwrap();
    assert_eq!(by_id(invalid).job.attempts, 1, "a 400 is not retried");
    assert!(by_id(invalid).error.contains("no such customer"));
    assert_eq!(by_id(flaky_id).job.attempts, 3);
    assert!(
        by_id(flaky_id).error.contains("gave up after 3 attempts"),
        "{}",
        by_id(flaky_id).error
    );
    let runs = recorder.runs_of("flaky");
    let times: Vec<_> = runs.iter().map(|r| r.at.as_secs()).collect();
    assert_eq!(times, [0, 60, 180], "long backoff between job attempts");
    assert!(runs.iter().all(|r| r.key == flaky_key));

    *fixed.lock().unwrap() = true;
    assert!(queue.requeue(flaky_id).await.unwrap());
    assert!(!queue.requeue(flaky_id).await.unwrap(), "requeued once");
    let stats = until_completed(&queue, 3).await;
    assert_eq!(stats.completed, 1);
    let again = recorder.runs_of("flaky");
    let last = again.last().unwrap();
    assert_eq!(last.attempt, 1, "a requeued job starts its attempts over");
    assert_eq!(last.key, flaky_key, "and keeps its key");
    assert_eq!(queue.take_dead_letters().await.unwrap().len(), 1);
    assert!(queue.dead_letters().await.unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn shutdown_lets_running_jobs_finish_and_hands_back_every_unrun_job() {
    let recorder = Recorder::new();
    let queue = slow_queue(&recorder, Duration::from_secs(10), 1);
    let mut keys = Vec::new();
    for i in 0..5 {
        let job = Job::new(format!("job{i}"));
        keys.push(job.key.clone());
        queue.push(job).await.unwrap();
    }
    tokio::time::sleep(Duration::from_secs(1)).await;

    let report = queue.shutdown(Duration::from_secs(60)).await;
    assert!(report.drained_in_time);
    assert!(report.interrupted.is_empty());
    assert_eq!(recorder.runs_of_all().len(), 1, "only job0 started");
    let unrun: Vec<_> = report.unrun.iter().map(|j| j.key.clone()).collect();
    assert_eq!(unrun, keys[1..], "the rest, oldest first, with their keys");
    assert!(report.unrun.iter().all(|j| j.attempts == 0));

    match queue.push(Job::new("late".to_owned())).await {
        Err(PushError::Closed { job }) => assert_eq!(job.payload, "late"),
        other => panic!("{other:?}"),
    }
    assert_eq!(queue.stats().await.unwrap().depth, 0);
}

#[tokio::test(start_paused = true)]
async fn a_handler_still_running_at_the_deadline_is_cancelled_and_reported_interrupted() {
    let recorder = Recorder::new();
    let queue = slow_queue(&recorder, Duration::from_secs(3600), 2);
    for i in 0..3 {
        queue.push(Job::new(format!("job{i}"))).await.unwrap();
    }
    queue
        .push(Job::new("later".to_owned()).group("g"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;

    let report = queue.shutdown(Duration::from_secs(5)).await;
    assert!(!report.drained_in_time);
    assert_eq!(report.interrupted.len(), 2, "two workers were mid-run");
    assert_eq!(report.unrun.len(), 2);
    let mut started: Vec<_> = recorder.runs_of_all().into_iter().map(|r| r.key).collect();
    let mut interrupted: Vec<_> = report.interrupted.iter().map(|j| j.key.clone()).collect();
    started.sort();
    interrupted.sort();
    assert_eq!(
        started, interrupted,
        "the two started jobs, with their keys"
    );
    let mut names: Vec<_> = report.into_jobs().into_iter().map(|j| j.payload).collect();
    names.sort();
    assert_eq!(names, ["job0", "job1", "job2", "later"], "nothing lost");
    let stats = queue.stats().await.unwrap();
    assert_eq!((stats.depth, stats.in_flight), (0, 0));
}

#[tokio::test(start_paused = true)]
async fn a_full_queue_pushes_back_try_push_returns_the_job_and_push_waits_for_room() {
    let gate = Arc::new(Semaphore::new(0));
    let open = Arc::clone(&gate);
    let queue = WorkQueue::builder(move |_: u32, _: JobContext| {
        let gate = Arc::clone(&open);
        async move {
            let _ = gate.acquire().await.map(|p| p.forget());
        }
    })
    .concurrency(1)
    .capacity(2)
    .start();
    queue.push(Job::new(1)).await.unwrap();
    queue.push(Job::new(2)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(10)).await;
    let stats = queue.stats().await.unwrap();
    assert_eq!((stats.in_flight, stats.depth), (1, 1), "in flight counts");

    let third = Job::new(3);
    let third_id = third.id;
    match queue.try_push(third).await {
        Err(PushError::Full { job, capacity }) => {
            assert_eq!((job.id, job.payload, capacity), (third_id, 3, 2));
        }
        other => panic!("{other:?}"),
    }

    let pusher = {
        let queue = queue.clone();
        tokio::spawn(async move { queue.push(Job::new(4)).await })
    };
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(!pusher.is_finished(), "push waits while the queue is full");
    gate.add_permits(1);
    pusher.await.unwrap().unwrap();
    gate.add_permits(2);
    let stats = until_completed(&queue, 3).await;
    assert_eq!(stats.completed, 3);
}

#[tokio::test(start_paused = true)]
async fn the_shared_limiter_paces_jobs_and_a_long_wait_defers_without_spending_attempts() {
    let recorder = Recorder::new();
    let limiter = Arc::new(GcraLimiter::new(Rate::per_minute(1)).burst(1));
    let queue = recorder
        .queue(|_, _| async {})
        .concurrency(3)
        .limiter(limiter)
        .limiter_wait(Duration::from_secs(1))
        .start();
    for i in 0..3 {
        queue.push(Job::new(format!("job{i}"))).await.unwrap();
    }
    let stats = until_completed(&queue, 3).await;
    assert_eq!(stats.completed, 3);
    assert_eq!(stats.retries, 0);
    let runs = recorder.runs_of_all();
    let mut times: Vec<_> = runs.iter().map(|r| r.at.as_secs()).collect();
    times.sort_unstable();
    assert_eq!(times, [0, 60, 120], "one job per minute: {runs:?}");
    assert!(
        runs.iter().all(|r| r.attempt == 1),
        "deferrals spend no attempt"
    );
}

#[tokio::test(start_paused = true)]
async fn a_panicking_handler_spends_an_attempt_and_the_job_runs_again() {
    let recorder = Recorder::new();
    let queue = recorder
        .queue(|_, ctx| async move { assert!(ctx.attempt > 1, "first attempt panics") })
        .backoff(
            Backoff::new()
                .base(Duration::from_secs(5))
                .jitter(Jitter::None),
        )
        .start();
    queue.push(Job::new("boom".to_owned())).await.unwrap();
    let stats = until_completed(&queue, 1).await;
    assert_eq!((stats.completed, stats.retries), (1, 1));
    let runs = recorder.runs_of("boom");
    assert_eq!(runs.iter().map(|r| r.attempt).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(runs[1].at, Duration::from_secs(5));
}

#[tokio::test(start_paused = true)]
async fn a_job_parked_more_than_max_parks_times_spends_attempts_and_is_dead_lettered() {
    let queue = WorkQueue::builder(|_: u8, _: JobContext| async {
        Err::<(), _>(rate_limited(Duration::from_secs(10)))
    })
    .max_parks(3)
    .max_attempts(2)
    .start();
    let id = queue.push(Job::new(0)).await.unwrap();
    let stats = until_completed(&queue, 1).await;
    assert_eq!(stats.parks, 3);
    assert_eq!(stats.dead_lettered, 1);
    let dead = queue.dead_letters().await.unwrap();
    assert_eq!(dead[0].job.id, id);
    assert_eq!(dead[0].job.attempts, 2);
    assert!(dead[0].error.contains("429"), "{}", dead[0].error);
}

#[tokio::test(start_paused = true)]
async fn a_store_shared_with_other_writers_is_polled_and_jobs_pushed_there_run() {
    let store = Arc::new(MemoryStore::<String>::new(100));
    let recorder = Recorder::new();
    let queue = recorder
        .queue(|_, _| async {})
        .store(Arc::clone(&store) as Arc<dyn JobStore<String>>)
        .poll_interval(Duration::from_secs(2))
        .start();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Another process's push: straight into the store, no worker is woken.
    let clock = TokioClock::new();
    let job = Job::new("elsewhere".to_owned());
    let key = job.key.clone();
    store.push(job, clock.wall()).await.unwrap();
    let stats = until_completed(&queue, 1).await;
    assert_eq!(stats.completed, 1);
    let run = &recorder.runs_of("elsewhere")[0];
    assert_eq!(run.key, key);
    assert_eq!(run.at, Duration::from_secs(2), "found at the next poll");
}

/// A store that fails its first `failures` settle writes (as a restarting Redis would), and
/// says it retains jobs.
#[derive(Debug)]
struct Flaky {
    inner: MemoryStore<String>,
    failures: Mutex<u32>,
}

impl Flaky {
    fn fail(&self) -> Result<(), StoreError> {
        let mut left = self.failures.lock().unwrap();
        if *left > 0 {
            *left -= 1;
            return Err(StoreError("connection refused".into()));
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl JobStore<String> for Flaky {
    async fn push(
        &self,
        job: Job<String>,
        now: std::time::SystemTime,
    ) -> Result<(), PushError<String>> {
        self.inner.push(job, now).await
    }
    async fn reserve(&self, now: std::time::SystemTime) -> Result<Reserved<String>, StoreError> {
        self.inner.reserve(now).await
    }
    async fn complete(&self, id: JobId) -> Result<(), StoreError> {
        self.fail()?;
        self.inner.complete(id).await
    }
    async fn retry(&self, job: Job<String>, at: std::time::SystemTime) -> Result<(), StoreError> {
        self.fail()?;
        self.inner.retry(job, at).await
    }
    async fn park(
        &self,
        job: Job<String>,
        until: std::time::SystemTime,
        scope: ParkScope,
    ) -> Result<(), StoreError> {
        self.fail()?;
        self.inner.park(job, until, scope).await
    }
    async fn dead_letter(&self, dead: DeadLetter<String>) -> Result<(), StoreError> {
        self.fail()?;
        self.inner.dead_letter(dead).await
    }
    async fn release(
        &self,
        job: Job<String>,
        now: std::time::SystemTime,
    ) -> Result<(), StoreError> {
        self.fail()?;
        self.inner.release(job, now).await
    }
    async fn abandon(&self, id: JobId) -> Result<Option<Job<String>>, StoreError> {
        self.inner.abandon(id).await
    }
    async fn drain(&self) -> Result<Vec<Job<String>>, StoreError> {
        self.inner.drain().await
    }
    async fn dead_letters(&self) -> Result<Vec<DeadLetter<String>>, StoreError> {
        self.inner.dead_letters().await
    }
    async fn take_dead_letters(&self) -> Result<Vec<DeadLetter<String>>, StoreError> {
        self.inner.take_dead_letters().await
    }
    async fn requeue(&self, id: JobId, now: std::time::SystemTime) -> Result<bool, StoreError> {
        self.inner.requeue(id, now).await
    }
    async fn stats(&self) -> Result<StoreStats, StoreError> {
        self.inner.stats().await
    }
    fn retains_jobs(&self) -> bool {
        true
    }
}

#[tokio::test(start_paused = true)]
async fn a_settle_the_store_refuses_is_retried_until_it_lands_and_the_job_runs_once() {
    let store = Arc::new(Flaky {
        inner: MemoryStore::new(10),
        failures: Mutex::new(5),
    });
    let rec = Recorder::new();
    let queue = rec
        .queue(|_, _| async { JobOutcome::done() })
        .store(store.clone())
        .start();
    queue.push(Job::new("once".to_owned())).await.unwrap();
    until_completed(&queue, 1).await;
    assert_eq!(rec.runs_of("once").len(), 1);
    let stats = store.stats().await.unwrap();
    assert_eq!((stats.depth, stats.in_flight), (0, 0), "{stats:?}");
    assert_eq!(
        *store.failures.lock().unwrap(),
        0,
        "five refusals, then it landed"
    );
}

#[tokio::test(start_paused = true)]
async fn a_queue_over_a_retaining_store_hands_nothing_back_and_puts_interrupted_jobs_back() {
    let store = Arc::new(Flaky {
        inner: MemoryStore::new(10),
        failures: Mutex::new(0),
    });
    let rec = Recorder::new();
    let queue = rec
        .queue(|_, _| async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            JobOutcome::done()
        })
        .store(store.clone())
        .concurrency(1)
        .start();
    queue.push(Job::new("long".to_owned())).await.unwrap();
    queue.push(Job::new("waiting".to_owned())).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let report = queue.shutdown(Duration::from_secs(5)).await;
    assert!(report.retained && !report.drained_in_time);
    assert!(report.unrun.is_empty() && report.dead_letters.is_empty());
    assert_eq!(report.interrupted.len(), 1);
    assert_eq!(report.interrupted[0].payload, "long");
    let stats = store.stats().await.unwrap();
    assert_eq!(
        (stats.depth, stats.in_flight),
        (2, 0),
        "both jobs are still in the store: {stats:?}"
    );
}
