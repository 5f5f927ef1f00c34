//! Client-side deduplication for upstreams that have no idempotency key of their own.
//!
//! Twilio and SendGrid do not deduplicate a create: the same SMS or email sent twice is delivered
//! twice. A queue that redelivers a job (a worker crashed after sending, before acknowledging)
//! would then send it again. A [`DedupeStore`] closes that gap: before sending, a call *claims*
//! its idempotency key; after a certain outcome it either *completes* the claim (recording what
//! the upstream returned, such as the message id) or *releases* it (the request certainly never
//! reached the upstream, so a later attempt may send it).
//!
//! A claim that is neither completed nor released (the process died, or the outcome was
//! ambiguous) stays [`Claim::Pending`] until its time to live runs out: a redelivery then refuses
//! to send rather than risk a duplicate. At-most-once is the promise; the caller learns which keys
//! need a human look.
//!
//! Webhook handlers use the same store with the provider's event id as the key: `claim` answers
//! [`Claim::Fresh`] exactly once per id.
//!
//! [`MemoryDedupe`] keeps claims in this process. The `redis` feature adds a store shared by every
//! process (see `ratewise_core::redis`).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;

use crate::clock::{SharedClock, TokioClock};

/// What [`DedupeStore::claim`] found for a key.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Claim {
    /// The key was free and is now claimed by this caller: go ahead and send.
    Fresh,
    /// A claim exists without an outcome: another worker is sending, or a send's outcome was
    /// ambiguous. Sending again could duplicate the side effect.
    Pending,
    /// The side effect already happened; the string is what the first call recorded (a message
    /// id, a resource id), so the caller can return it instead of sending again.
    Done(String),
}

/// The store could not be reached or answered something unexpected. Nothing was claimed.
#[derive(Debug, thiserror::Error)]
#[error("dedupe store unavailable: {0}")]
pub struct DedupeError(pub String);

/// Where claims live: in this process ([`MemoryDedupe`]) or shared (Redis).
#[async_trait]
pub trait DedupeStore: Send + Sync + 'static {
    /// Claims `key` for `ttl` if nobody holds it; says what is there otherwise. Atomic: of two
    /// concurrent claims of one key, exactly one sees [`Claim::Fresh`].
    async fn claim(&self, key: &str, ttl: Duration) -> Result<Claim, DedupeError>;

    /// Records that the side effect of `key` happened, with `record` (returned by later claims),
    /// kept for `ttl`.
    async fn complete(&self, key: &str, record: &str, ttl: Duration) -> Result<(), DedupeError>;

    /// Frees `key`: the side effect certainly did not happen, so a later claim may send.
    async fn release(&self, key: &str) -> Result<(), DedupeError>;
}

/// The time to live of a claim or record when a client is not told otherwise: 24 hours, as
/// Stripe keeps idempotency keys.
pub const DEFAULT_DEDUPE_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// The default number of keys a [`MemoryDedupe`] remembers: 100,000.
pub const DEFAULT_DEDUPE_CAPACITY: usize = 100_000;

/// A [`DedupeStore`] in this process's memory, bounded: past its capacity the oldest entries
/// are forgotten first, and entries expire after their time to live on the injected clock.
#[derive(Clone)]
pub struct MemoryDedupe {
    inner: Arc<Mutex<Entries>>,
    capacity: usize,
    clock: SharedClock,
}

#[derive(Default)]
struct Entries {
    by_key: HashMap<String, Entry>,
    /// Keys in insertion order, with the generation they were inserted at (stale ones skipped).
    order: VecDeque<(String, u64)>,
    generation: u64,
}

struct Entry {
    state: Option<String>,
    expires_at_nanos: u64,
    generation: u64,
}

impl std::fmt::Debug for MemoryDedupe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let len = self.len();
        f.debug_struct("MemoryDedupe")
            .field("entries", &len)
            .field("capacity", &self.capacity)
            .finish()
    }
}

impl Default for MemoryDedupe {
    fn default() -> Self {
        Self::new(DEFAULT_DEDUPE_CAPACITY)
    }
}

impl MemoryDedupe {
    /// A store remembering at most `capacity` keys (at least 1), on tokio's clock.
    pub fn new(capacity: usize) -> Self {
        Self::with_clock(capacity, TokioClock::shared())
    }

    /// A store remembering at most `capacity` keys (at least 1), expiring on `clock`.
    pub fn with_clock(capacity: usize, clock: SharedClock) -> Self {
        Self {
            inner: Arc::default(),
            capacity: capacity.max(1),
            clock,
        }
    }

    /// How many keys are held (expired ones included until they are next looked at or evicted).
    pub fn len(&self) -> usize {
        self.lock().by_key.len()
    }

    /// True when no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn now_nanos(&self) -> u64 {
        self.clock.nanos_since(self.clock.epoch())
    }

    /// Synchronous [`DedupeStore::claim`]: memory needs no await.
    pub fn claim_now(&self, key: &str, ttl: Duration) -> Claim {
        let now = self.now_nanos();
        let mut entries = self.lock();
        if let Some(entry) = entries.by_key.get(key)
            && entry.expires_at_nanos > now
        {
            return match &entry.state {
                Some(record) => Claim::Done(record.clone()),
                None => Claim::Pending,
            };
        }
        entries.put(key, None, expiry(now, ttl), self.capacity);
        Claim::Fresh
    }

    /// Synchronous [`DedupeStore::complete`].
    pub fn complete_now(&self, key: &str, record: &str, ttl: Duration) {
        let now = self.now_nanos();
        self.lock().put(
            key,
            Some(record.to_owned()),
            expiry(now, ttl),
            self.capacity,
        );
    }

    /// Synchronous [`DedupeStore::release`].
    pub fn release_now(&self, key: &str) {
        self.lock().by_key.remove(key);
    }
}

fn expiry(now: u64, ttl: Duration) -> u64 {
    now.saturating_add(u64::try_from(ttl.as_nanos()).unwrap_or(u64::MAX))
}

impl Entries {
    fn put(&mut self, key: &str, state: Option<String>, expires_at_nanos: u64, capacity: usize) {
        self.generation += 1;
        let generation = self.generation;
        self.by_key.insert(
            key.to_owned(),
            Entry {
                state,
                expires_at_nanos,
                generation,
            },
        );
        self.order.push_back((key.to_owned(), generation));
        while self.by_key.len() > capacity {
            let Some((oldest, generation)) = self.order.pop_front() else {
                break;
            };
            if self.by_key.get(&oldest).map(|e| e.generation) == Some(generation) {
                self.by_key.remove(&oldest);
            }
        }
        // Keep the order queue from growing without bound when keys are rewritten often.
        if self.order.len() > capacity.saturating_mul(2).max(16) {
            let by_key = &self.by_key;
            self.order.retain(|(key, generation)| {
                by_key.get(key).map(|e| e.generation) == Some(*generation)
            });
        }
    }
}

#[async_trait]
impl DedupeStore for MemoryDedupe {
    async fn claim(&self, key: &str, ttl: Duration) -> Result<Claim, DedupeError> {
        Ok(self.claim_now(key, ttl))
    }

    async fn complete(&self, key: &str, record: &str, ttl: Duration) -> Result<(), DedupeError> {
        self.complete_now(key, record, ttl);
        Ok(())
    }

    async fn release(&self, key: &str) -> Result<(), DedupeError> {
        self.release_now(key);
        Ok(())
    }
}

/// What [`Deliveries::begin`] found for one delivery of a webhook event.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Delivery {
    /// The first delivery of this id: handle it, then call [`Deliveries::handled`] (or
    /// [`Deliveries::failed`] so the provider's retry is handled afresh).
    First,
    /// A redelivery of an event already handled: answer 2xx without handling it again.
    Duplicate,
    /// A redelivery while the first is still being handled (or its handler died): answer with
    /// an error status so the provider retries later.
    InProgress,
}

/// Webhook redelivery dedupe over any [`DedupeStore`]: Stripe event ids, Twilio's
/// `I-Twilio-Idempotency-Token`. With [`MemoryDedupe`] it holds in one process; with the Redis
/// store (feature `redis`) every process behind the load balancer agrees.
///
/// ```
/// use std::sync::Arc;
/// use ratewise_core::dedupe::{Deliveries, Delivery, MemoryDedupe};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let events = Deliveries::new(Arc::new(MemoryDedupe::default()), "stripe.event:");
/// assert_eq!(events.begin("evt_1").await.unwrap(), Delivery::First);
/// events.handled("evt_1").await.unwrap();
/// assert_eq!(events.begin("evt_1").await.unwrap(), Delivery::Duplicate);
/// # }
/// ```
#[derive(Clone)]
pub struct Deliveries {
    store: Arc<dyn DedupeStore>,
    namespace: String,
    ttl: Duration,
}

impl std::fmt::Debug for Deliveries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deliveries")
            .field("namespace", &self.namespace)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl Deliveries {
    /// Dedupe through `store`, keys prefixed with `namespace`, remembered for
    /// [`DEFAULT_DEDUPE_TTL`].
    pub fn new(store: Arc<dyn DedupeStore>, namespace: impl Into<String>) -> Self {
        Self {
            store,
            namespace: namespace.into(),
            ttl: DEFAULT_DEDUPE_TTL,
        }
    }

    /// How long an id is remembered (default 24 h).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    fn key(&self, id: &str) -> String {
        format!("{}{id}", self.namespace)
    }

    /// Claims the delivery of `id`.
    pub async fn begin(&self, id: &str) -> Result<Delivery, DedupeError> {
        Ok(match self.store.claim(&self.key(id), self.ttl).await? {
            Claim::Fresh => Delivery::First,
            Claim::Done(_) => Delivery::Duplicate,
            Claim::Pending => Delivery::InProgress,
        })
    }

    /// Records that `id` was handled: its redeliveries are duplicates.
    pub async fn handled(&self, id: &str) -> Result<(), DedupeError> {
        self.store
            .complete(&self.key(id), "handled", self.ttl)
            .await
    }

    /// Forgets `id`: the handler failed, so the provider's retry is handled afresh.
    pub async fn failed(&self, id: &str) -> Result<(), DedupeError> {
        self.store.release(&self.key(id)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    const TTL: Duration = Duration::from_secs(60);

    #[tokio::test]
    async fn a_key_is_fresh_once_then_pending_then_done() {
        let store = MemoryDedupe::default();
        assert_eq!(store.claim("k", TTL).await.unwrap(), Claim::Fresh);
        assert_eq!(store.claim("k", TTL).await.unwrap(), Claim::Pending);
        store.complete("k", "SM123", TTL).await.unwrap();
        assert_eq!(
            store.claim("k", TTL).await.unwrap(),
            Claim::Done("SM123".into())
        );
    }

    #[tokio::test]
    async fn a_released_key_can_be_claimed_again() {
        let store = MemoryDedupe::default();
        assert_eq!(store.claim("k", TTL).await.unwrap(), Claim::Fresh);
        store.release("k").await.unwrap();
        assert_eq!(store.claim("k", TTL).await.unwrap(), Claim::Fresh);
    }

    #[test]
    fn claims_expire_on_the_injected_clock() {
        let clock = Arc::new(ManualClock::new());
        let store = MemoryDedupe::with_clock(10, clock.clone());
        assert_eq!(store.claim_now("k", TTL), Claim::Fresh);
        clock.advance(TTL - Duration::from_millis(1));
        assert_eq!(store.claim_now("k", TTL), Claim::Pending);
        clock.advance(Duration::from_millis(1));
        assert_eq!(store.claim_now("k", TTL), Claim::Fresh);
    }

    #[test]
    fn capacity_forgets_the_oldest_first_and_stays_bounded() {
        let store = MemoryDedupe::with_clock(3, Arc::new(ManualClock::new()));
        for key in ["a", "b", "c", "d"] {
            assert_eq!(store.claim_now(key, TTL), Claim::Fresh);
        }
        assert_eq!(store.len(), 3);
        assert_eq!(store.claim_now("a", TTL), Claim::Fresh, "a was evicted");
        assert_eq!(store.claim_now("d", TTL), Claim::Pending);
        for i in 0..1_000 {
            store.complete_now("d", &i.to_string(), TTL);
        }
        assert!(store.lock().order.len() <= 16);
        assert_eq!(store.claim_now("d", TTL), Claim::Done("999".into()));
    }

    #[tokio::test]
    async fn deliveries_are_first_once_in_progress_while_handled_and_retried_after_a_failure() {
        let events = Deliveries::new(Arc::new(MemoryDedupe::default()), "ev:");
        assert_eq!(events.begin("a").await.unwrap(), Delivery::First);
        assert_eq!(events.begin("a").await.unwrap(), Delivery::InProgress);
        events.failed("a").await.unwrap();
        assert_eq!(events.begin("a").await.unwrap(), Delivery::First);
        events.handled("a").await.unwrap();
        assert_eq!(events.begin("a").await.unwrap(), Delivery::Duplicate);
        assert_eq!(events.begin("b").await.unwrap(), Delivery::First);
    }

    #[tokio::test]
    async fn concurrent_claims_of_one_key_admit_exactly_one() {
        let store = MemoryDedupe::default();
        let tasks: Vec<_> = (0..64)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { store.claim("same", TTL).await.unwrap() })
            })
            .collect();
        let mut fresh = 0;
        for task in tasks {
            if task.await.unwrap() == Claim::Fresh {
                fresh += 1;
            }
        }
        assert_eq!(fresh, 1);
    }
}
