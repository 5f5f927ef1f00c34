//! [`SharedQuota`]: "this budget is exhausted until T", seen by one process, held by all.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::deadline::SharedDeadline;
use super::{RedisConnection, RedisError, spawn_detached};
use crate::clock::{SharedClock, TokioClock};
use crate::limit::{BudgetName, Cost, Feedback, Limiter, Permit, QuotaSnapshot, Throttled};

/// A local limiter whose "exhausted until T" is shared through Redis.
///
/// The key is `{prefix}quota:{upstream}:{credential}:{budget}`. Defaults: credential `default`,
/// refresh interval 250 ms, [`TokioClock`].
///
/// A server that says `remaining: 0` until a reset tells only the process that made the call.
/// Every other process would spend its next call learning the same thing the hard way (a 429
/// that GitHub and SendGrid count against the integration). [`SharedQuota`] wraps the local
/// limiter that paces the budget (a [`QuotaPacer`](crate::limit::QuotaPacer) or a
/// [`GcraLimiter`](crate::limit::GcraLimiter)): when it observes an exhausted snapshot it
/// publishes the time left to Redis, and before admitting a call it reads what the other
/// processes published (at most once per refresh interval, default 250 ms) and feeds it to the
/// local limiter as a `remaining: 0` snapshot, which holds the budget until then.
///
/// Snapshots never move backwards: the shared deadline is one key whose time to live is the time
/// left, and publishing only ever extends it (one Lua script). A stale worker reporting an
/// earlier reset changes nothing.
///
/// When Redis is unreachable the local limiter keeps working on what this process knows; the
/// failure is logged (`warn`, target `ratewise::redis`). The explicit
/// [`SharedQuota::publish`] and [`SharedQuota::sync`] return the typed error instead.
pub struct SharedQuota {
    inner: Arc<dyn Limiter>,
    budget: BudgetName,
    deadline: SharedDeadline,
    clock: SharedClock,
    refresh: Duration,
    last_sync: Mutex<Option<Instant>>,
}

impl fmt::Debug for SharedQuota {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedQuota")
            .field("key", &self.deadline.key())
            .field("inner", &self.inner)
            .field("refresh", &self.refresh)
            .finish_non_exhaustive()
    }
}

impl SharedQuota {
    /// The default time between two reads of the shared deadline: 250 ms.
    pub const DEFAULT_REFRESH: Duration = Duration::from_millis(250);

    /// Shares the exhaustion of `budget` of `upstream` (credential `default`) among every
    /// process, pacing locally with `inner`.
    pub fn new(
        redis: RedisConnection,
        upstream: &str,
        budget: impl Into<BudgetName>,
        inner: Arc<dyn Limiter>,
    ) -> Self {
        Self::with_credential(redis, upstream, "default", budget, inner)
    }

    /// [`SharedQuota::new`] for one credential's budget (a label, never the secret itself).
    pub fn with_credential(
        redis: RedisConnection,
        upstream: &str,
        credential: &str,
        budget: impl Into<BudgetName>,
        inner: Arc<dyn Limiter>,
    ) -> Self {
        let budget = budget.into();
        let key = redis.key("quota", &[upstream, credential, budget.as_str()]);
        Self {
            inner,
            budget,
            deadline: SharedDeadline::new(redis, key),
            clock: TokioClock::shared(),
            refresh: Self::DEFAULT_REFRESH,
            last_sync: Mutex::new(None),
        }
    }

    /// Reads the shared deadline at most once per `refresh` (default 250 ms; zero: every call).
    pub fn refresh(mut self, refresh: Duration) -> Self {
        self.refresh = refresh;
        self
    }

    /// The clock snapshots are stamped with (default [`TokioClock`]); give it the local
    /// limiter's clock.
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// The Redis key of the shared deadline.
    pub fn key(&self) -> &str {
        self.deadline.key()
    }

    /// Publishes `snapshot` if it says this budget is exhausted (`remaining: 0`, reset ahead):
    /// every process then holds the budget until its reset. Returns the shared deadline after
    /// the call (never earlier than before), or `None` when the snapshot had nothing to share.
    pub async fn publish(&self, snapshot: &QuotaSnapshot) -> Result<Option<Instant>, RedisError> {
        let Some(left) = self.exhausted_for(snapshot) else {
            return Ok(None);
        };
        let now = self.clock.now();
        let left = self.deadline.extend(left).await?;
        Ok(now.checked_add(left))
    }

    /// Reads the shared deadline now and holds the local limiter until it. Returns it.
    pub async fn sync(&self) -> Result<Option<Instant>, RedisError> {
        let left = self.deadline.left().await?;
        let now = self.clock.now();
        *self
            .last_sync
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(now);
        let until = left.and_then(|left| now.checked_add(left));
        if let Some(until) = until {
            self.inner
                .observe(&QuotaSnapshot::new(self.budget.clone(), 0, until, now));
        }
        Ok(until)
    }

    fn exhausted_for(&self, snapshot: &QuotaSnapshot) -> Option<Duration> {
        if snapshot.budget != self.budget || snapshot.remaining != 0 {
            return None;
        }
        let left = snapshot
            .reset_at
            .saturating_duration_since(self.clock.now());
        (!left.is_zero()).then_some(left)
    }

    fn sync_due(&self) -> bool {
        let now = self.clock.now();
        let last = *self
            .last_sync
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        last.is_none_or(|last| now.saturating_duration_since(last) >= self.refresh)
    }
}

#[async_trait]
impl Limiter for SharedQuota {
    /// The local limiter's answer, on the shared deadline as last read (no I/O).
    fn try_acquire(&self, cost: &Cost) -> Result<Permit, Throttled> {
        self.inner.try_acquire(cost)
    }

    /// Reads the shared deadline when the refresh interval has passed (a failure is logged and
    /// the local state used), then asks the local limiter.
    async fn acquire(&self, cost: &Cost, max_wait: Duration) -> Result<Permit, Throttled> {
        if cost.amount(&self.budget) > 0
            && self.sync_due()
            && let Err(error) = self.sync().await
        {
            tracing::warn!(
                target: "ratewise::redis",
                key = %self.deadline.key(),
                error = %error,
                "shared quota unavailable; pacing on local state"
            );
        }
        self.inner.acquire(cost, max_wait).await
    }

    /// Feeds the local limiter and, for an exhausted snapshot, publishes it in the background.
    fn observe(&self, snapshot: &QuotaSnapshot) {
        self.inner.observe(snapshot);
        if let Some(left) = self.exhausted_for(snapshot) {
            let deadline = self.deadline.clone();
            spawn_detached("quota publish", async move {
                deadline.extend(left).await.map(drop)
            });
        }
    }

    fn feedback(&self, feedback: Feedback) {
        self.inner.feedback(feedback);
    }

    fn reconcile(&self, reserved: &Cost, actual: &Cost) {
        self.inner.reconcile(reserved, actual);
    }
}
