//! [`WorkQueueBuilder`]: a queue's settings and their defaults, and starting its workers.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, watch};

use super::handler::Handler;
use super::memory::{DEFAULT_CAPACITY, MemoryStore};
use super::runtime::{Counters, Payload, Shared, WorkQueue};
use super::store::JobStore;
use crate::backoff::Backoff;
use crate::clock::{SharedClock, TokioClock};
use crate::limit::Limiter;

/// Default number of workers: 4.
pub const DEFAULT_CONCURRENCY: usize = 4;
/// Default attempts before a job is dead-lettered: 10.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 10;
/// Default parks after which a park spends an attempt: 100 (an upstream that says "later"
/// forever must not hold a job forever).
pub const DEFAULT_MAX_PARKS: u32 = 100;
/// Default longest wait for the limiter before a job is deferred instead: 5 s.
pub const DEFAULT_LIMITER_WAIT: Duration = Duration::from_secs(5);
/// Default job-level backoff: base 1 min, cap 6 h, full jitter (attempt n waits up to
/// `min(6h, 1min·2ⁿ)`).
pub const DEFAULT_BACKOFF: Backoff = Backoff::new()
    .base(Duration::from_secs(60))
    .cap(Duration::from_secs(6 * 60 * 60));
/// How often idle workers and blocked pushers look at a store given with
/// [`WorkQueueBuilder::store`] (others may change it): 1 s.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Clone, Copy, Debug)]
pub(super) struct Config {
    pub(super) name: &'static str,
    pub(super) concurrency: usize,
    pub(super) max_attempts: u32,
    pub(super) max_parks: u32,
    pub(super) limiter_wait: Duration,
    pub(super) backoff: Backoff,
    pub(super) poll: Option<Duration>,
}

/// Builds a [`WorkQueue`]: the handler is required, everything else has a default.
pub struct WorkQueueBuilder<J> {
    handler: Arc<dyn Handler<J>>,
    store: Option<Arc<dyn JobStore<J>>>,
    capacity: usize,
    limiter: Option<Arc<dyn Limiter>>,
    clock: Option<SharedClock>,
    seed: Option<u64>,
    config: Config,
}

impl<J> fmt::Debug for WorkQueueBuilder<J> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkQueueBuilder")
            .field("config", &self.config)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl<J: Payload> WorkQueueBuilder<J> {
    pub(super) fn new(handler: Arc<dyn Handler<J>>) -> Self {
        Self {
            handler,
            store: None,
            capacity: DEFAULT_CAPACITY,
            limiter: None,
            clock: None,
            seed: None,
            config: Config {
                name: "default",
                concurrency: DEFAULT_CONCURRENCY,
                max_attempts: DEFAULT_MAX_ATTEMPTS,
                max_parks: DEFAULT_MAX_PARKS,
                limiter_wait: DEFAULT_LIMITER_WAIT,
                backoff: DEFAULT_BACKOFF,
                poll: None,
            },
        }
    }

    /// Keep jobs in `store` instead of a [`MemoryStore`] (a durable store shared by many
    /// processes). Idle workers then also look at the store every [`DEFAULT_POLL_INTERVAL`],
    /// since other processes change it.
    pub fn store(mut self, store: Arc<dyn JobStore<J>>) -> Self {
        self.store = Some(store);
        if self.config.poll.is_none() {
            self.config.poll = Some(DEFAULT_POLL_INTERVAL);
        }
        self
    }

    /// The capacity of the default [`MemoryStore`] (default 10,000 jobs waiting or in flight).
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    /// How many jobs run at once (default 4, at least 1).
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.config.concurrency = concurrency.max(1);
        self
    }

    /// Admit every attempt through `limiter` (shared with the clients, or the queue's own).
    pub fn limiter(mut self, limiter: Arc<dyn Limiter>) -> Self {
        self.limiter = Some(limiter);
        self
    }

    /// The longest a worker waits for the limiter before deferring the job to when capacity
    /// returns (default 5 s).
    pub fn limiter_wait(mut self, wait: Duration) -> Self {
        self.config.limiter_wait = wait;
        self
    }

    /// Attempts before a job is dead-lettered (default 10, at least 1). Parks do not count.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.config.max_attempts = attempts.max(1);
        self
    }

    /// Parks of one job after which a further park spends an attempt (default 100).
    pub fn max_parks(mut self, parks: u32) -> Self {
        self.config.max_parks = parks;
        self
    }

    /// The job-level backoff between failed attempts (default base 1 min, cap 6 h, full jitter).
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.config.backoff = backoff;
        self
    }

    /// How often idle workers and blocked pushers look at the store without being woken
    /// (default: never for the in-memory store, 1 s for a store given with
    /// [`WorkQueueBuilder::store`]).
    pub fn poll_interval(mut self, every: Duration) -> Self {
        self.config.poll = Some(every);
        self
    }

    /// The clock for push times, parks and retries (default [`TokioClock`]).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Seed the backoff jitter (default: random), for deterministic tests.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// The queue's name: the `queue` label of its metrics (default `"default"`).
    pub fn name(mut self, name: &'static str) -> Self {
        self.config.name = name;
        self
    }

    /// Starts the workers (tokio tasks on the current runtime) and returns the queue.
    ///
    /// Must be called within a tokio runtime.
    pub fn start(self) -> WorkQueue<J> {
        let store = self
            .store
            .unwrap_or_else(|| Arc::new(MemoryStore::<J>::new(self.capacity)));
        let rng = match self.seed {
            Some(seed) => fastrand::Rng::with_seed(seed),
            None => fastrand::Rng::new(),
        };
        let shared = Arc::new(Shared {
            store,
            handler: self.handler,
            limiter: self.limiter,
            clock: self.clock.unwrap_or_else(TokioClock::shared),
            config: self.config,
            work: Notify::new(),
            space: Notify::new(),
            closing: watch::channel(false).0,
            stop: watch::channel(false).0,
            interrupted: Mutex::new(Vec::new()),
            counters: Counters::default(),
            rng: Mutex::new(rng),
        });
        let workers = (0..self.config.concurrency)
            .map(|_| tokio::spawn(super::worker::run(Arc::clone(&shared))))
            .collect();
        WorkQueue::from_parts(shared, workers)
    }
}
