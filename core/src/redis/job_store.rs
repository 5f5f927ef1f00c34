//! [`RedisJobStore`]: the durable [`JobStore`] on Redis Streams, shared by every worker process.

use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use redis::{Script, ScriptInvocation};

use super::{RedisConnection, RedisError, queue_scripts as scripts};
use crate::queue::{
    DeadLetter, Job, JobId, JobStore, ParkScope, Payload, PushError, Reserved, StoreError,
    StoreStats,
};

/// The default capacity of a [`RedisJobStore`]: 1,000,000 unfinished jobs.
pub const DEFAULT_REDIS_CAPACITY: usize = 1_000_000;
/// The default visibility timeout: 30 s without a lease renewal and a job is redelivered.
pub const DEFAULT_VISIBILITY_TIMEOUT: Duration = Duration::from_secs(30);
/// The default number of times a job's worker may vanish mid-run before the job is
/// dead-lettered: 3.
pub const DEFAULT_MAX_LOSSES: u32 = 3;

/// How many due parked or scheduled jobs one reserve moves into the stream, at most.
const PROMOTE_LIMIT: u32 = 100;
/// How many unusable jobs (corrupt, lost too often) one reserve call steps over before it
/// reports the store idle for now.
const RESERVE_TRIES: usize = 16;

/// A durable [`JobStore`] in Redis, shared by many worker processes: jobs survive a crashed
/// worker (and, with Redis persistence on, a restarted Redis).
///
/// ```no_run
/// use std::sync::Arc;
/// use ratewise_core::queue::{Job, JobContext, JobOutcome, WorkQueue};
/// use ratewise_core::redis::{RedisConfig, RedisConnection, RedisJobStore};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let redis = RedisConnection::new(&RedisConfig::from_env()).unwrap();
/// let store = RedisJobStore::<u64>::builder(redis, "invoices").build();
/// let queue = WorkQueue::builder(|invoice: u64, ctx: JobContext| async move {
///     let _ = (invoice, ctx.key); // call the upstream with the job's idempotency key
///     JobOutcome::done()
/// })
/// .store(Arc::new(store))
/// .concurrency(16)
/// .start();
/// queue.push(Job::new(42).group("stripe:acct_123")).await.unwrap();
/// # }
/// ```
///
/// # How jobs move
///
/// * **push** (`XADD`): the job (JSON, with its idempotency key) goes into a hash, its id into a
///   stream read by the consumer group `workers`. A job of a held group goes straight to the
///   parked set.
/// * **reserve** (`XREADGROUP`): the next entry is delivered to this process's consumer and stays
///   pending until settled. Due parked and scheduled jobs are moved into the stream first.
/// * **complete** (`XACK` + `XDEL`): the job is forgotten. **retry** and **park**: acked, and the
///   job waits in a sorted set (`retry` or `parked`) scored by when it may run; a group park
///   records the group's hold, and every job of the group met before the hold ends waits for it.
///   **dead letter**: acked, and the job with its last error goes to a dead-letter stream.
/// * **a crashed worker**: while a worker runs a job, this store renews its lease every third of
///   the visibility timeout (`XCLAIM … JUSTID`). A process killed mid-job renews nothing, so
///   after the visibility timeout another worker's reserve reclaims the entry (`XAUTOCLAIM`) and
///   runs the job again, with the same idempotency key. Each such loss counts as a spent attempt;
///   after `max_losses` losses (default 3) the job is dead-lettered rather than crash another
///   worker.
///
/// Every step is one Lua script (one round trip, atomic), listed in `queue_scripts.rs` with the
/// keys it uses (`{prefix}queue:{<name>}:…`; the braces keep one queue's keys in one Redis
/// Cluster slot).
///
/// # Guarantees
///
/// At least once, with one idempotency key: a job is never lost while Redis keeps its data, and
/// a job whose worker vanished after the upstream accepted the request runs again with the key
/// the upstream saw, so an upstream that honours keys performs it once. A settle from a worker
/// whose lease was taken over (it ran longer than the visibility timeout without renewing) does
/// not undo the new holder's run: its retry, park or dead letter is ignored; its completion is
/// kept (the work is done).
///
/// Redis unreachable: every operation returns a [`StoreError`] and changes nothing; a push hands
/// the job back ([`PushError::Store`]); the queue's workers log the error, retry their settles
/// with backoff, and resume when Redis answers. To survive a Redis *restart*, run Redis with
/// persistence (`appendonly yes`; `appendfsync always` loses nothing acknowledged,
/// `everysec` up to a second): without it a restart empties the queue like any other data.
///
/// # Time
///
/// Park and retry times are the workers' wall clocks (ms since the Unix epoch), as the
/// [`JobStore`] contract passes them; workers sharing a queue need clocks in step (NTP). A skew
/// moves when a parked job resumes by the skew, never loses it. The visibility timeout is
/// measured by Redis.
///
/// # Shutdown
///
/// The store outlives any one queue ([`JobStore::retains_jobs`]): a stopping [`WorkQueue`](
/// crate::queue::WorkQueue) leaves waiting jobs and dead letters here for the other workers and
/// puts back the jobs it interrupted. [`JobStore::drain`] and [`JobStore::take_dead_letters`]
/// still work when called directly (to move a queue elsewhere, or to inspect it).
///
/// A stored job that no longer deserialises as `J` (the payload type changed) is moved aside to
/// a `corrupt` hash with an error log, never dropped: see [`RedisJobStore::quarantined`].
pub struct RedisJobStore<J> {
    inner: Arc<Inner>,
    payload: PhantomData<fn() -> J>,
}

struct Inner {
    redis: RedisConnection,
    name: String,
    keys: Keys,
    consumer: String,
    capacity: usize,
    visibility: Duration,
    max_losses: u32,
    /// Jobs this store's workers hold: job id → stream entry id, renewed in the background.
    leases: Mutex<HashMap<JobId, String>>,
}

/// The queue's thirteen keys, in the scripts' order.
struct Keys([String; 13]);

impl Keys {
    const NAMES: [&'static str; 13] = [
        "stream", "jobs", "inflight", "parked", "retry", "ages", "groupof", "holds", "losses",
        "dead", "deadidx", "corrupt", "cursor",
    ];

    fn new(redis: &RedisConnection, name: &str) -> Self {
        let tagged = format!("{{{name}}}");
        Self(Self::NAMES.map(|suffix| redis.key("queue", &[&tagged, suffix])))
    }

    fn stream(&self) -> &str {
        &self.0[0]
    }

    fn corrupt(&self) -> &str {
        &self.0[11]
    }
}

/// Settings of a [`RedisJobStore`]: the connection and the queue's name are required.
#[derive(Debug)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct RedisJobStoreBuilder<J> {
    redis: RedisConnection,
    name: String,
    consumer: Option<String>,
    capacity: usize,
    visibility: Duration,
    max_losses: u32,
    payload: PhantomData<fn() -> J>,
}

impl<J> RedisJobStoreBuilder<J> {
    /// At most `capacity` unfinished jobs (waiting or in flight, across every process; dead
    /// letters do not count). Default [`DEFAULT_REDIS_CAPACITY`].
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    /// How long a job may go without a lease renewal before another worker takes it over
    /// (default [`DEFAULT_VISIBILITY_TIMEOUT`]). A live worker renews every third of it, so this
    /// is how long a crashed worker's job waits, not a limit on how long a handler may run.
    pub fn visibility_timeout(mut self, timeout: Duration) -> Self {
        self.visibility = timeout.max(Duration::from_millis(30));
        self
    }

    /// How many times a job's worker may vanish mid-run before the job is dead-lettered
    /// (default [`DEFAULT_MAX_LOSSES`]; at least 1).
    pub fn max_losses(mut self, losses: u32) -> Self {
        self.max_losses = losses.max(1);
        self
    }

    /// This store's consumer name in the stream's consumer group (default: `<pid>-<random>`,
    /// unique per store). Give each process a stable, distinct name to make `XINFO CONSUMERS`
    /// readable; two live stores must never share one.
    pub fn consumer(mut self, consumer: impl Into<String>) -> Self {
        self.consumer = Some(consumer.into());
        self
    }

    /// The store. Starts the background lease renewal on the current tokio runtime (without
    /// one, leases are not renewed and a job running longer than the visibility timeout is
    /// redelivered; a warning says so).
    pub fn build(self) -> RedisJobStore<J> {
        let consumer = self
            .consumer
            .unwrap_or_else(|| format!("{}-{:08x}", std::process::id(), fastrand::u32(..)));
        let inner = Arc::new(Inner {
            keys: Keys::new(&self.redis, &self.name),
            redis: self.redis,
            name: self.name,
            consumer,
            capacity: self.capacity,
            visibility: self.visibility,
            max_losses: self.max_losses,
            leases: Mutex::new(HashMap::new()),
        });
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn(renew_leases(Arc::downgrade(&inner)))),
            Err(_) => tracing::warn!(
                target: "ratewise::redis",
                queue = %inner.name,
                "no tokio runtime: job leases will not be renewed"
            ),
        }
        RedisJobStore {
            inner,
            payload: PhantomData,
        }
    }
}

impl<J> RedisJobStore<J> {
    /// A builder for the queue `name` (its keys are `{prefix}queue:{<name>}:…`): every process
    /// using the same Redis, prefix and name shares the queue.
    pub fn builder(redis: RedisConnection, name: impl Into<String>) -> RedisJobStoreBuilder<J> {
        RedisJobStoreBuilder {
            redis,
            name: name.into(),
            consumer: None,
            capacity: DEFAULT_REDIS_CAPACITY,
            visibility: DEFAULT_VISIBILITY_TIMEOUT,
            max_losses: DEFAULT_MAX_LOSSES,
            payload: PhantomData,
        }
    }

    /// This store's consumer name in the stream's consumer group.
    pub fn consumer_name(&self) -> &str {
        &self.inner.consumer
    }

    /// Stored jobs that no longer deserialise as `J`, as `(job id, raw JSON)`: moved aside by a
    /// reserve instead of being dropped or wedging the queue.
    pub async fn quarantined(&self) -> Result<Vec<(String, String)>, RedisError> {
        let raw: Vec<(String, String)> = redis::cmd("HGETALL")
            .arg(self.inner.keys.corrupt())
            .query_async(&mut self.inner.redis.manager())
            .await?;
        Ok(raw)
    }

    /// Deletes every key of this queue: waiting and in-flight jobs, dead letters, quarantined
    /// jobs, group holds. For tests, examples and tearing a queue down; workers still running on
    /// it see an empty queue.
    pub async fn purge(&self) -> Result<(), RedisError> {
        let _: i64 = redis::cmd("DEL")
            .arg(&self.inner.keys.0[..])
            .query_async(&mut self.inner.redis.manager())
            .await?;
        Ok(())
    }

    fn invocation<'a>(&'a self, script: &'a Script) -> ScriptInvocation<'a> {
        let mut invocation = script.prepare_invoke();
        for key in &self.inner.keys.0 {
            invocation.key(key);
        }
        invocation
    }

    fn leases(&self) -> MutexGuard<'_, HashMap<JobId, String>> {
        self.inner
            .leases
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    async fn reschedule(
        &self,
        job: &Job<J>,
        ready: SystemTime,
        mode: &str,
        now: SystemTime,
    ) -> Result<(), StoreError>
    where
        J: Payload,
    {
        self.leases().remove(&job.id);
        let body = encode(job)?;
        let _applied: i64 = self
            .invocation(&scripts::RESCHEDULE)
            .arg(job.id.to_string())
            .arg(&self.inner.consumer)
            .arg(body)
            .arg(job.group.as_deref().unwrap_or(""))
            .arg(millis(job.enqueued_at))
            .arg(millis(ready))
            .arg(mode)
            .arg(millis(now))
            .invoke_async(&mut self.inner.redis.manager())
            .await
            .map_err(unreachable)?;
        Ok(())
    }

    async fn settle_dead(&self, dead: &DeadLetter<J>) -> Result<(), StoreError>
    where
        J: Payload,
    {
        self.leases().remove(&dead.job.id);
        let letter = serde_json::to_string(dead)
            .map_err(|e| StoreError(format!("dead letter does not serialise: {e}")))?;
        let _applied: i64 = self
            .invocation(&scripts::DEAD_LETTER)
            .arg(dead.job.id.to_string())
            .arg(&self.inner.consumer)
            .arg(letter)
            .invoke_async(&mut self.inner.redis.manager())
            .await
            .map_err(unreachable)?;
        Ok(())
    }

    async fn quarantine(&self, id: &str, error: &serde_json::Error) -> Result<(), StoreError> {
        tracing::error!(
            target: "ratewise::redis",
            queue = %self.inner.name,
            job = id,
            "a stored job does not deserialise ({error}); moved to the `corrupt` hash"
        );
        let _applied: i64 = self
            .invocation(&scripts::QUARANTINE)
            .arg(id)
            .arg(&self.inner.consumer)
            .invoke_async(&mut self.inner.redis.manager())
            .await
            .map_err(unreachable)?;
        Ok(())
    }

    async fn letters(&self, take: bool) -> Result<Vec<DeadLetter<J>>, StoreError>
    where
        J: Payload,
    {
        let raw: Vec<String> = self
            .invocation(&scripts::DEAD_LETTERS)
            .arg(if take { "take" } else { "read" })
            .invoke_async(&mut self.inner.redis.manager())
            .await
            .map_err(unreachable)?;
        raw.iter()
            .map(|letter| {
                serde_json::from_str(letter)
                    .map_err(|e| StoreError(format!("a dead letter does not deserialise: {e}")))
            })
            .collect()
    }
}

impl<J> fmt::Debug for RedisJobStore<J> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisJobStore")
            .field("name", &self.inner.name)
            .field("consumer", &self.inner.consumer)
            .field("capacity", &self.inner.capacity)
            .field("visibility", &self.inner.visibility)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl<J: Payload> JobStore<J> for RedisJobStore<J> {
    async fn push(&self, job: Job<J>, now: SystemTime) -> Result<(), PushError<J>> {
        let body = match encode(&job) {
            Ok(body) => body,
            Err(error) => {
                return Err(PushError::Store {
                    job: Box::new(job),
                    error,
                });
            }
        };
        let stored: Result<i64, _> = self
            .invocation(&scripts::PUSH)
            .arg(job.id.to_string())
            .arg(body)
            .arg(job.group.as_deref().unwrap_or(""))
            .arg(millis(job.enqueued_at))
            .arg(millis(now))
            .arg(self.inner.capacity)
            .invoke_async(&mut self.inner.redis.manager())
            .await;
        match stored {
            Ok(1) => Ok(()),
            Ok(_) => Err(PushError::Full {
                job: Box::new(job),
                capacity: self.inner.capacity,
            }),
            Err(error) => Err(PushError::Store {
                job: Box::new(job),
                error: unreachable(error),
            }),
        }
    }

    async fn reserve(&self, now: SystemTime) -> Result<Reserved<J>, StoreError> {
        for _ in 0..RESERVE_TRIES {
            let reply: Vec<String> = self
                .invocation(&scripts::RESERVE)
                .arg(millis(now))
                .arg(&self.inner.consumer)
                .arg(u64::try_from(self.inner.visibility.as_millis()).unwrap_or(u64::MAX))
                .arg(PROMOTE_LIMIT)
                .invoke_async(&mut self.inner.redis.manager())
                .await
                .map_err(unreachable)?;
            let (id, body, lost, entry) = match reply.as_slice() {
                [kind, next] if kind == "idle" => {
                    let next_at = next.parse::<i64>().ok().map(at_millis);
                    return Ok(Reserved::Idle { next_at });
                }
                [kind, id, body, lost, entry] if kind == "job" => (id, body, lost, entry),
                other => {
                    return Err(StoreError(format!(
                        "unexpected reply from the reserve script ({} parts)",
                        other.len()
                    )));
                }
            };
            let mut job: Job<J> = match serde_json::from_str(body) {
                Ok(job) => job,
                Err(error) => {
                    self.quarantine(id, &error).await?;
                    continue;
                }
            };
            self.leases().insert(job.id, entry.clone());
            let lost: u32 = lost.parse().unwrap_or(0);
            if lost > 0 {
                job.attempts = job.attempts.saturating_add(lost);
                tracing::warn!(
                    target: "ratewise::redis",
                    queue = %self.inner.name,
                    job = %job.id,
                    lost,
                    "job redelivered: its worker stopped renewing it (crashed or stalled)"
                );
                if lost >= self.inner.max_losses {
                    let error = format!(
                        "its worker vanished mid-run {lost} times (crash or stall); \
                         dead-lettered so it cannot take down another"
                    );
                    let dead = DeadLetter::new(job, error, now);
                    self.settle_dead(&dead).await?;
                    continue;
                }
            }
            return Ok(Reserved::Job(Box::new(job)));
        }
        Ok(Reserved::Idle { next_at: Some(now) })
    }

    async fn complete(&self, id: JobId) -> Result<(), StoreError> {
        self.leases().remove(&id);
        let _: i64 = self
            .invocation(&scripts::COMPLETE)
            .arg(id.to_string())
            .invoke_async(&mut self.inner.redis.manager())
            .await
            .map_err(unreachable)?;
        Ok(())
    }

    async fn retry(&self, job: Job<J>, at: SystemTime) -> Result<(), StoreError> {
        self.reschedule(&job, at, "retry", at).await
    }

    async fn park(
        &self,
        job: Job<J>,
        until: SystemTime,
        scope: ParkScope,
    ) -> Result<(), StoreError> {
        let mode = match scope {
            ParkScope::Group => "park_group",
            ParkScope::Job => "park",
        };
        self.reschedule(&job, until, mode, until).await
    }

    async fn dead_letter(&self, dead: DeadLetter<J>) -> Result<(), StoreError> {
        self.settle_dead(&dead).await
    }

    async fn release(&self, job: Job<J>, now: SystemTime) -> Result<(), StoreError> {
        self.reschedule(&job, now, "release", now).await
    }

    async fn abandon(&self, id: JobId) -> Result<Option<Job<J>>, StoreError> {
        self.leases().remove(&id);
        let body: Option<String> = self
            .invocation(&scripts::ABANDON)
            .arg(id.to_string())
            .arg(&self.inner.consumer)
            .invoke_async(&mut self.inner.redis.manager())
            .await
            .map_err(unreachable)?;
        body.map(|body| decode(&body)).transpose()
    }

    async fn drain(&self) -> Result<Vec<Job<J>>, StoreError> {
        let raw: Vec<(String, String)> = self
            .invocation(&scripts::DRAIN)
            .invoke_async(&mut self.inner.redis.manager())
            .await
            .map_err(unreachable)?;
        let mut jobs = Vec::with_capacity(raw.len());
        for (id, body) in raw {
            match serde_json::from_str::<Job<J>>(&body) {
                Ok(job) => jobs.push(job),
                Err(error) => {
                    // Out of the queue already: keep it beside the other unreadable jobs.
                    tracing::error!(
                        target: "ratewise::redis",
                        queue = %self.inner.name,
                        job = %id,
                        "a drained job does not deserialise ({error}); kept in the `corrupt` hash"
                    );
                    let _: i64 = redis::cmd("HSET")
                        .arg(self.inner.keys.corrupt())
                        .arg(&id)
                        .arg(&body)
                        .query_async(&mut self.inner.redis.manager())
                        .await
                        .map_err(unreachable)?;
                }
            }
        }
        jobs.sort_by_key(|job| job.enqueued_at);
        Ok(jobs)
    }

    async fn dead_letters(&self) -> Result<Vec<DeadLetter<J>>, StoreError> {
        self.letters(false).await
    }

    async fn take_dead_letters(&self) -> Result<Vec<DeadLetter<J>>, StoreError> {
        self.letters(true).await
    }

    async fn requeue(&self, id: JobId, now: SystemTime) -> Result<bool, StoreError> {
        let found: Option<(String, String)> = self
            .invocation(&scripts::DEAD_ENTRY)
            .arg(id.to_string())
            .invoke_async(&mut self.inner.redis.manager())
            .await
            .map_err(unreachable)?;
        let Some((entry, letter)) = found else {
            return Ok(false);
        };
        let dead: DeadLetter<J> = serde_json::from_str(&letter)
            .map_err(|e| StoreError(format!("the dead letter does not deserialise: {e}")))?;
        let mut job = dead.job;
        job.attempts = 0;
        job.parks = 0;
        let requeued: i64 = self
            .invocation(&scripts::REQUEUE)
            .arg(id.to_string())
            .arg(entry)
            .arg(encode(&job)?)
            .arg(job.group.as_deref().unwrap_or(""))
            .arg(millis(job.enqueued_at))
            .arg(millis(now))
            .invoke_async(&mut self.inner.redis.manager())
            .await
            .map_err(unreachable)?;
        Ok(requeued == 1)
    }

    async fn stats(&self) -> Result<StoreStats, StoreError> {
        let reply: Vec<String> = self
            .invocation(&scripts::STATS)
            .invoke_async(&mut self.inner.redis.manager())
            .await
            .map_err(unreachable)?;
        let [jobs, in_flight, parked, scheduled, dead, oldest] = reply.as_slice() else {
            return Err(StoreError(format!(
                "unexpected reply from the stats script ({} parts)",
                reply.len()
            )));
        };
        let count = |s: &String| s.parse::<usize>().unwrap_or(0);
        let mut stats = StoreStats::default();
        stats.in_flight = count(in_flight);
        stats.depth = count(jobs).saturating_sub(stats.in_flight);
        stats.parked = count(parked);
        stats.scheduled = count(scheduled);
        stats.dead_letters = count(dead);
        stats.oldest_enqueued_at = oldest.parse::<i64>().ok().map(at_millis);
        Ok(stats)
    }

    fn retains_jobs(&self) -> bool {
        true
    }
}

/// Renews the leases of the jobs this store's workers hold, every third of the visibility
/// timeout, until the store is dropped.
async fn renew_leases(inner: Weak<Inner>) {
    let every = match inner.upgrade() {
        Some(inner) => inner.visibility / 3,
        None => return,
    };
    loop {
        tokio::time::sleep(every).await;
        let Some(inner) = inner.upgrade() else { return };
        let held: Vec<String> = inner
            .leases
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        if held.is_empty() {
            continue;
        }
        let mut invocation = scripts::RENEW.prepare_invoke();
        invocation.key(inner.keys.stream()).arg(&inner.consumer);
        for entry in &held {
            invocation.arg(entry);
        }
        match invocation
            .invoke_async::<Vec<String>>(&mut inner.redis.manager())
            .await
        {
            Ok(lost) if !lost.is_empty() => {
                tracing::warn!(
                    target: "ratewise::redis",
                    queue = %inner.name,
                    lost = lost.len(),
                    "jobs taken over by another worker (their leases lapsed)"
                );
                inner
                    .leases
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .retain(|_, entry| !lost.contains(entry));
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(
                target: "ratewise::redis",
                queue = %inner.name,
                error = %RedisError::from(error),
                "lease renewal failed; retrying next period"
            ),
        }
    }
}

fn encode<J: Payload>(job: &Job<J>) -> Result<String, StoreError> {
    serde_json::to_string(job).map_err(|e| StoreError(format!("the job does not serialise: {e}")))
}

fn decode<J: Payload>(body: &str) -> Result<Job<J>, StoreError> {
    serde_json::from_str(body).map_err(|e| StoreError(format!("the job does not deserialise: {e}")))
}

fn unreachable(error: redis::RedisError) -> StoreError {
    StoreError(RedisError::from(error).to_string())
}

/// Milliseconds since the Unix epoch (0 for earlier times, saturating far in the future).
fn millis(at: SystemTime) -> i64 {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

fn at_millis(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}
