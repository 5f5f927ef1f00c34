//! [`MemoryStore`]: the embedded default [`JobStore`], in this process's memory.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use async_trait::async_trait;

use super::job::{Job, JobId};
use super::store::{DeadLetter, JobStore, ParkScope, PushError, Reserved, StoreError, StoreStats};

/// The default capacity of a [`MemoryStore`]: 10,000 unfinished jobs.
pub const DEFAULT_CAPACITY: usize = 10_000;

/// A [`JobStore`] in this process's memory, holding jobs typed (no serialisation).
///
/// Bounded: at most `capacity` jobs waiting or in flight (dead letters do not count; they are
/// kept until taken). Runnable jobs are taken in the order they became runnable, ties in push
/// order. Every operation is `O(log n)`, except a group park, which also moves the group's
/// waiting jobs (`O(k log n)` for `k` of them). Jobs are lost with the process: use a durable
/// store when that matters.
pub struct MemoryStore<J> {
    state: Mutex<State<J>>,
    capacity: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Ready,
    Parked,
    Retry,
}

struct Waiting<J> {
    job: Job<J>,
    seq: u64,
    ready_at: SystemTime,
    kind: Kind,
}

#[derive(Default)]
struct Group {
    held_until: Option<SystemTime>,
    waiting: HashSet<JobId>,
}

struct State<J> {
    next_seq: u64,
    waiting: HashMap<JobId, Waiting<J>>,
    /// Waiting jobs by when they become runnable, then push order.
    timeline: BTreeSet<(SystemTime, u64, JobId)>,
    /// Waiting jobs by when they were pushed, then push order.
    ages: BTreeSet<(SystemTime, u64)>,
    groups: HashMap<String, Group>,
    in_flight: HashMap<JobId, (Job<J>, u64)>,
    dead: VecDeque<DeadLetter<J>>,
    parked: usize,
    scheduled: usize,
}

impl<J> Default for State<J> {
    fn default() -> Self {
        Self {
            next_seq: 0,
            waiting: HashMap::new(),
            timeline: BTreeSet::new(),
            ages: BTreeSet::new(),
            groups: HashMap::new(),
            in_flight: HashMap::new(),
            dead: VecDeque::new(),
            parked: 0,
            scheduled: 0,
        }
    }
}

impl<J> State<J> {
    fn count(&mut self, kind: Kind, up: bool) {
        let counter = match kind {
            Kind::Ready => return,
            Kind::Parked => &mut self.parked,
            Kind::Retry => &mut self.scheduled,
        };
        *counter = if up {
            counter.saturating_add(1)
        } else {
            counter.saturating_sub(1)
        };
    }

    /// Adds a waiting job, runnable at `ready_at` or when its group's hold ends if later.
    fn insert(&mut self, job: Job<J>, seq: u64, ready_at: SystemTime, kind: Kind) {
        let mut ready_at = ready_at;
        let mut kind = kind;
        if let Some(name) = &job.group {
            let group = self.groups.entry(name.clone()).or_default();
            if let Some(hold) = group.held_until.filter(|hold| *hold > ready_at) {
                ready_at = hold;
                if kind == Kind::Ready {
                    kind = Kind::Parked;
                }
            }
            group.waiting.insert(job.id);
        }
        self.timeline.insert((ready_at, seq, job.id));
        self.ages.insert((job.enqueued_at, seq));
        self.count(kind, true);
        self.waiting.insert(
            job.id,
            Waiting {
                job,
                seq,
                ready_at,
                kind,
            },
        );
    }

    fn remove(&mut self, id: JobId) -> Option<Waiting<J>> {
        let entry = self.waiting.remove(&id)?;
        self.timeline.remove(&(entry.ready_at, entry.seq, id));
        self.ages.remove(&(entry.job.enqueued_at, entry.seq));
        self.count(entry.kind, false);
        if let Some(name) = &entry.job.group
            && let Some(group) = self.groups.get_mut(name)
        {
            group.waiting.remove(&id);
        }
        Some(entry)
    }

    /// Holds `name` until `until`: its waiting jobs runnable earlier move to `until`.
    fn hold_group(&mut self, name: &str, until: SystemTime) {
        let group = self.groups.entry(name.to_owned()).or_default();
        if group.held_until.is_none_or(|hold| hold < until) {
            group.held_until = Some(until);
        }
        let held: Vec<JobId> = group.waiting.iter().copied().collect();
        for id in held {
            let Some(entry) = self.waiting.get_mut(&id) else {
                continue;
            };
            if entry.ready_at >= until {
                continue;
            }
            self.timeline.remove(&(entry.ready_at, entry.seq, id));
            entry.ready_at = until;
            self.timeline.insert((until, entry.seq, id));
            let was = std::mem::replace(&mut entry.kind, Kind::Parked);
            if was != Kind::Parked {
                self.count(was, false);
                self.count(Kind::Parked, true);
            }
        }
    }

    /// Forgets a group whose hold is over and which has no waiting job.
    fn tidy_group(&mut self, name: &str, now: SystemTime) {
        if let Some(group) = self.groups.get(name)
            && group.waiting.is_empty()
            && group.held_until.is_none_or(|hold| hold <= now)
        {
            self.groups.remove(name);
        }
    }

    fn take_in_flight(&mut self, id: JobId) -> Option<u64> {
        self.in_flight.remove(&id).map(|(_, seq)| seq)
    }

    fn seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        seq
    }
}

impl<J> MemoryStore<J> {
    /// A store holding at most `capacity` unfinished jobs (at least 1).
    pub fn new(capacity: usize) -> Self {
        Self {
            state: Mutex::new(State::default()),
            capacity: capacity.max(1),
        }
    }

    /// The most unfinished jobs this store holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    fn lock(&self) -> MutexGuard<'_, State<J>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Puts an in-flight job back as waiting, keeping its place in push order when known.
    fn settle(&self, job: Job<J>, ready_at: SystemTime, kind: Kind) {
        let mut state = self.lock();
        let seq = match state.take_in_flight(job.id) {
            Some(seq) => seq,
            None => state.seq(),
        };
        state.insert(job, seq, ready_at, kind);
    }
}

impl<J> Default for MemoryStore<J> {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

impl<J> fmt::Debug for MemoryStore<J> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("MemoryStore")
            .field("waiting", &state.waiting.len())
            .field("in_flight", &state.in_flight.len())
            .field("dead_letters", &state.dead.len())
            .field("capacity", &self.capacity)
            .finish()
    }
}

#[async_trait]
impl<J: Clone + Send + Sync + 'static> JobStore<J> for MemoryStore<J> {
    async fn push(&self, job: Job<J>, now: SystemTime) -> Result<(), PushError<J>> {
        let mut state = self.lock();
        if state.waiting.len() + state.in_flight.len() >= self.capacity {
            return Err(PushError::Full {
                job: Box::new(job),
                capacity: self.capacity,
            });
        }
        let seq = state.seq();
        state.insert(job, seq, now, Kind::Ready);
        Ok(())
    }

    async fn reserve(&self, now: SystemTime) -> Result<Reserved<J>, StoreError> {
        let mut state = self.lock();
        let Some(&(ready_at, seq, id)) = state.timeline.first() else {
            return Ok(Reserved::Idle { next_at: None });
        };
        if ready_at > now {
            return Ok(Reserved::Idle {
                next_at: Some(ready_at),
            });
        }
        let Some(entry) = state.remove(id) else {
            // The indexes disagree, which `insert`/`remove` never allow; drop the stray entry.
            state.timeline.remove(&(ready_at, seq, id));
            return Ok(Reserved::Idle { next_at: None });
        };
        if let Some(name) = &entry.job.group {
            state.tidy_group(name, now);
        }
        let job = entry.job.clone();
        state.in_flight.insert(id, (entry.job, entry.seq));
        Ok(Reserved::Job(Box::new(job)))
    }

    async fn complete(&self, id: JobId) -> Result<(), StoreError> {
        self.lock().in_flight.remove(&id);
        Ok(())
    }

    async fn retry(&self, job: Job<J>, at: SystemTime) -> Result<(), StoreError> {
        self.settle(job, at, Kind::Retry);
        Ok(())
    }

    async fn park(
        &self,
        job: Job<J>,
        until: SystemTime,
        scope: ParkScope,
    ) -> Result<(), StoreError> {
        if scope == ParkScope::Group
            && let Some(name) = &job.group
        {
            self.lock().hold_group(name, until);
        }
        self.settle(job, until, Kind::Parked);
        Ok(())
    }

    async fn dead_letter(&self, dead: DeadLetter<J>) -> Result<(), StoreError> {
        let mut state = self.lock();
        state.in_flight.remove(&dead.job.id);
        state.dead.push_back(dead);
        Ok(())
    }

    async fn release(&self, job: Job<J>, now: SystemTime) -> Result<(), StoreError> {
        self.settle(job, now, Kind::Ready);
        Ok(())
    }

    async fn abandon(&self, id: JobId) -> Result<Option<Job<J>>, StoreError> {
        Ok(self.lock().in_flight.remove(&id).map(|(job, _)| job))
    }

    async fn drain(&self) -> Result<Vec<Job<J>>, StoreError> {
        let mut state = self.lock();
        let mut entries: Vec<Waiting<J>> = state.waiting.drain().map(|(_, entry)| entry).collect();
        entries.sort_by_key(|entry| (entry.job.enqueued_at, entry.seq));
        state.timeline.clear();
        state.ages.clear();
        state.groups.retain(|_, group| {
            group.waiting.clear();
            group.held_until.is_some()
        });
        state.parked = 0;
        state.scheduled = 0;
        Ok(entries.into_iter().map(|entry| entry.job).collect())
    }

    async fn dead_letters(&self) -> Result<Vec<DeadLetter<J>>, StoreError> {
        Ok(self.lock().dead.iter().cloned().collect())
    }

    async fn take_dead_letters(&self) -> Result<Vec<DeadLetter<J>>, StoreError> {
        Ok(self.lock().dead.drain(..).collect())
    }

    async fn requeue(&self, id: JobId, now: SystemTime) -> Result<bool, StoreError> {
        let mut state = self.lock();
        let Some(position) = state.dead.iter().position(|dead| dead.job.id == id) else {
            return Ok(false);
        };
        let Some(dead) = state.dead.remove(position) else {
            return Ok(false);
        };
        let mut job = dead.job;
        job.attempts = 0;
        job.parks = 0;
        let seq = state.seq();
        state.insert(job, seq, now, Kind::Ready);
        Ok(true)
    }

    async fn stats(&self) -> Result<StoreStats, StoreError> {
        let state = self.lock();
        Ok(StoreStats {
            depth: state.waiting.len(),
            parked: state.parked,
            scheduled: state.scheduled,
            in_flight: state.in_flight.len(),
            dead_letters: state.dead.len(),
            oldest_enqueued_at: state.ages.first().map(|(at, _)| *at),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const T0: SystemTime = SystemTime::UNIX_EPOCH;

    fn at(secs: u64) -> SystemTime {
        T0 + Duration::from_secs(secs)
    }

    fn job(name: &str, group: Option<&str>) -> Job<String> {
        let mut job = Job::new(name.to_owned());
        job.group = group.map(str::to_owned);
        job
    }

    async fn take(store: &MemoryStore<String>, now: SystemTime) -> Option<Job<String>> {
        match store.reserve(now).await.unwrap() {
            Reserved::Job(job) => Some(*job),
            Reserved::Idle { .. } => None,
        }
    }

    async fn next_at(store: &MemoryStore<String>, now: SystemTime) -> Option<SystemTime> {
        match store.reserve(now).await.unwrap() {
            Reserved::Idle { next_at } => next_at,
            Reserved::Job(job) => panic!("unexpected {job:?}"),
        }
    }

    #[tokio::test]
    async fn runnable_jobs_come_out_in_push_order() {
        let store = MemoryStore::new(10);
        for name in ["a", "b", "c"] {
            store.push(job(name, None), T0).await.unwrap();
        }
        let mut order = Vec::new();
        while let Some(job) = take(&store, T0).await {
            order.push(job.payload);
        }
        assert_eq!(order, ["a", "b", "c"]);
        assert_eq!(store.stats().await.unwrap().in_flight, 3);
        assert_eq!(next_at(&store, T0).await, None);
    }

    #[tokio::test]
    async fn a_group_park_holds_the_waiting_jobs_of_the_group_and_later_pushes_into_it() {
        let store = MemoryStore::new(10);
        store.push(job("a1", Some("a")), T0).await.unwrap();
        store.push(job("a2", Some("a")), T0).await.unwrap();
        store.push(job("b1", Some("b")), T0).await.unwrap();
        let a1 = take(&store, T0).await.unwrap();
        store.park(a1, at(30), ParkScope::Group).await.unwrap();
        store.push(job("a3", Some("a")), at(1)).await.unwrap();

        let stats = store.stats().await.unwrap();
        assert_eq!((stats.depth, stats.parked), (4, 3), "{stats:?}");
        assert_eq!(take(&store, at(1)).await.unwrap().payload, "b1");
        assert_eq!(next_at(&store, at(1)).await, Some(at(30)));
        let resumed: Vec<_> = [
            take(&store, at(30)).await,
            take(&store, at(30)).await,
            take(&store, at(30)).await,
        ]
        .into_iter()
        .map(|j| j.unwrap().payload)
        .collect();
        assert_eq!(resumed, ["a1", "a2", "a3"], "in push order at T");
        assert_eq!(store.stats().await.unwrap().parked, 0);
    }

    #[tokio::test]
    async fn a_job_park_holds_only_that_job_and_a_retry_into_a_held_group_waits_for_the_hold() {
        let store = MemoryStore::new(10);
        store.push(job("a1", Some("a")), T0).await.unwrap();
        store.push(job("a2", Some("a")), T0).await.unwrap();
        let a1 = take(&store, T0).await.unwrap();
        store.park(a1, at(30), ParkScope::Job).await.unwrap();
        let a2 = take(&store, T0).await.unwrap();
        assert_eq!(a2.payload, "a2", "the group is not held");

        store.push(job("a3", Some("a")), T0).await.unwrap();
        let a3 = take(&store, T0).await.unwrap();
        store.park(a3, at(60), ParkScope::Group).await.unwrap();
        store.retry(a2, at(5)).await.unwrap();
        assert_eq!(
            next_at(&store, at(1)).await,
            Some(at(60)),
            "the group hold reaches a1 (parked alone until 30) and a2's retry at 5"
        );
        let stats = store.stats().await.unwrap();
        assert_eq!((stats.parked, stats.scheduled), (2, 1));
        let names: Vec<_> = [
            take(&store, at(60)).await,
            take(&store, at(60)).await,
            take(&store, at(60)).await,
        ]
        .into_iter()
        .map(|j| j.unwrap().payload)
        .collect();
        assert_eq!(names, ["a1", "a2", "a3"]);
    }

    #[tokio::test]
    async fn capacity_counts_waiting_and_in_flight_jobs_but_not_dead_letters() {
        let store = MemoryStore::new(2);
        store.push(job("a", None), T0).await.unwrap();
        store.push(job("b", None), T0).await.unwrap();
        let a = take(&store, T0).await.unwrap();
        match store.push(job("c", None), T0).await {
            Err(PushError::Full { job, capacity }) => {
                assert_eq!((job.payload.as_str(), capacity), ("c", 2));
            }
            other => panic!("{other:?}"),
        }
        let id = a.id;
        store
            .dead_letter(DeadLetter::new(a, "boom", T0))
            .await
            .unwrap();
        store.push(job("c", None), T0).await.unwrap();
        let stats = store.stats().await.unwrap();
        assert_eq!(
            (stats.depth, stats.in_flight, stats.dead_letters),
            (2, 0, 1)
        );

        assert!(store.requeue(id, at(1)).await.unwrap(), "past capacity");
        assert!(!store.requeue(id, at(1)).await.unwrap());
        assert_eq!(store.stats().await.unwrap().depth, 3);
    }

    #[tokio::test]
    async fn drain_hands_back_every_waiting_job_oldest_first_and_leaves_in_flight_ones() {
        let store = MemoryStore::new(10);
        for (i, name) in ["a", "b", "c", "d"].into_iter().enumerate() {
            let mut j = job(name, Some("g"));
            j.enqueued_at = at(i as u64);
            store.push(j, at(i as u64)).await.unwrap();
        }
        let a = take(&store, at(5)).await.unwrap();
        let b = take(&store, at(5)).await.unwrap();
        store.retry(b, at(100)).await.unwrap();
        store.park(a, at(50), ParkScope::Group).await.unwrap();
        let resumed = take(&store, at(60)).await.unwrap();
        assert_eq!(resumed.payload, "a", "a resumes first at its park end");
        let stats = store.stats().await.unwrap();
        assert_eq!(stats.oldest_enqueued_at, Some(at(1)));

        let drained: Vec<_> = store
            .drain()
            .await
            .unwrap()
            .into_iter()
            .map(|j| j.payload)
            .collect();
        assert_eq!(drained, ["b", "c", "d"]);
        let stats = store.stats().await.unwrap();
        assert_eq!(
            (stats.depth, stats.parked, stats.scheduled, stats.in_flight),
            (0, 0, 0, 1)
        );
        assert_eq!(stats.oldest_enqueued_at, None);
        assert_eq!(
            store.abandon(resumed.id).await.unwrap().unwrap().payload,
            "a"
        );
        assert_eq!(store.stats().await.unwrap().in_flight, 0);
    }

    #[tokio::test]
    async fn a_released_job_is_runnable_at_once_and_keeps_its_place() {
        let store = MemoryStore::new(10);
        store.push(job("a", None), T0).await.unwrap();
        store.push(job("b", None), T0).await.unwrap();
        let a = take(&store, T0).await.unwrap();
        store.release(a, T0).await.unwrap();
        assert_eq!(take(&store, T0).await.unwrap().payload, "a");
    }
}
