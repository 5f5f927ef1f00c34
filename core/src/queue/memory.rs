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
