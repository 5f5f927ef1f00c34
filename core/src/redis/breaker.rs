//! [`SharedBreakerSignal`]: one process's "open until T" opens every process's breaker.

use std::fmt;
use std::time::{Duration, Instant};

use super::deadline::SharedDeadline;
use super::{RedisConnection, RedisError, spawn_detached};
use crate::breaker::{BreakerState, CircuitBreaker};
use crate::clock::{SharedClock, TokioClock};

/// The shared "open until T" of one upstream's breakers.
///
/// The key is `{prefix}open:{upstream}`. Defaults: [`TokioClock`] (give it the breaker's clock).
///
/// When one process's breaker opens (its failure rate tripped, or a server said "nothing until
/// T"), the others would keep calling the failing upstream until their own windows fill with
/// failures. The signal publishes the open period to Redis (a key whose time to live is the time
/// left, only ever extended) and applies what others published with
/// [`CircuitBreaker::open_until`], which never shortens an open period. Each breaker still probes
/// on its own when the period ends.
#[derive(Clone)]
pub struct SharedBreakerSignal {
    deadline: SharedDeadline,
    clock: SharedClock,
}

impl fmt::Debug for SharedBreakerSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedBreakerSignal")
            .field("key", &self.deadline.key())
            .finish_non_exhaustive()
    }
}

/// The background task of [`SharedBreakerSignal::attach`]: stops polling when dropped.
#[derive(Debug)]
#[must_use = "dropping the task stops applying the shared signal"]
pub struct SignalTask {
    handle: tokio::task::JoinHandle<()>,
}

impl Drop for SignalTask {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

impl SharedBreakerSignal {
    /// The default time between two reads in [`SharedBreakerSignal::attach`]: 1 s.
    pub const DEFAULT_POLL: Duration = Duration::from_secs(1);

    /// The signal of `upstream`'s breakers.
    pub fn new(redis: RedisConnection, upstream: &str) -> Self {
        let key = redis.key("open", &[upstream]);
        Self {
            deadline: SharedDeadline::new(redis, key),
            clock: TokioClock::shared(),
        }
    }

    /// The clock instants are read on (default [`TokioClock`]).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// The Redis key of the signal.
    pub fn key(&self) -> &str {
        self.deadline.key()
    }

    /// Tells every process the upstream is open until `until` (extends, never shortens).
    /// Returns the shared deadline after the call.
    pub async fn publish(&self, until: Instant) -> Result<Option<Instant>, RedisError> {
        let now = self.clock.now();
        let left = until.saturating_duration_since(now);
        if left.is_zero() {
            return self.fetch().await;
        }
        let left = self.deadline.extend(left).await?;
        Ok(now.checked_add(left))
    }

    /// Until when some process said the upstream is open (`None`: nobody, or it has passed).
    pub async fn fetch(&self) -> Result<Option<Instant>, RedisError> {
        let left = self.deadline.left().await?;
        let now = self.clock.now();
        Ok(left.and_then(|left| now.checked_add(left)))
    }

    /// Reads the signal once and opens `breaker` until it (never shortening an open period).
    pub async fn apply(&self, breaker: &CircuitBreaker) -> Result<Option<Instant>, RedisError> {
        let until = self.fetch().await?;
        if let Some(until) = until {
            breaker.open_until(until);
        }
        Ok(until)
    }

    /// Wires `breaker` to the signal: every time it opens, its open period is published (in the
    /// background), and every `poll` (default [`Self::DEFAULT_POLL`]) the signal is read and
    /// applied. Redis failures are logged (`warn`, target `ratewise::redis`) and retried at the
    /// next poll. Must be called inside a tokio runtime; polling stops when the returned task is
    /// dropped (the publishing listener stays registered for the breaker's life).
    pub fn attach(&self, breaker: &CircuitBreaker, poll: Duration) -> SignalTask {
        let publisher = self.clone();
        breaker.on_transition(move |transition| {
            if let BreakerState::Open { until } = transition.to {
                let publisher = publisher.clone();
                spawn_detached("breaker publish", async move {
                    publisher.publish(until).await.map(drop)
                });
            }
        });
        let (signal, breaker) = (self.clone(), breaker.clone());
        let poll = poll.max(Duration::from_millis(1));
        let handle = tokio::spawn(async move {
            loop {
                if let Err(error) = signal.apply(&breaker).await {
                    tracing::warn!(
                        target: "ratewise::redis",
                        key = %signal.key(),
                        error = %error,
                        "shared breaker signal unavailable"
                    );
                }
                tokio::time::sleep(poll).await;
            }
        });
        SignalTask { handle }
    }
}
