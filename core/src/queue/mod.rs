//! A rate-limited work queue: the second, slow layer of retry.
//!
//! The client retries a call a few times within seconds; the queue above it retries a *job* over
//! minutes or hours, parks a credential's jobs until its quota resets, dead-letters what can never
//! succeed, and reports depth and age. It runs in process by default; the storage is a trait
//! ([`JobStore`]) so a durable store (Redis, shared by many processes) plugs in under the same
//! workers.
//!
//! ```
//! use std::time::Duration;
//! use ratewise_core::queue::{Job, JobContext, JobOutcome, WorkQueue};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let queue = WorkQueue::builder(|order: u64, ctx: JobContext| async move {
//!     // call the upstream with `ctx.key` as the idempotency key; return its result, or:
//!     let _ = (order, ctx);
//!     JobOutcome::done()
//! })
//! .concurrency(8)
//! .start();
//! queue.push(Job::new(42).group("stripe:acct_123")).await.unwrap();
//! let report = queue.shutdown(Duration::from_secs(30)).await;
//! assert!(report.interrupted.is_empty());
//! # }
//! ```
//!
//! # The pieces
//!
//! | file | owns |
//! |---|---|
//! | `job.rs` | [`Job`]: payload, idempotency key (minted at enqueue), group, cost, attempts; [`JobContext`] |
//! | `outcome.rs` | [`JobOutcome`] and how a ratewise [`Error`](crate::error::Error) maps onto it |
//! | `handler.rs` | [`Handler`]: any `async fn(J, JobContext) -> impl Into<JobOutcome>` |
//! | `store.rs` | the [`JobStore`] trait, [`PushError`], [`DeadLetter`], [`StoreStats`] |
//! | `memory.rs` | [`MemoryStore`]: the in-process default |
//! | `builder.rs` | [`WorkQueueBuilder`]: settings, defaults, starting the workers |
//! | `runtime.rs` | [`WorkQueue`]: push, stats, dead letters, shutdown |
//! | `worker.rs` | one worker's loop: reserve, limiter, handler, settle |
//! | `stats.rs`, `shutdown.rs` | [`QueueStats`], [`ShutdownReport`] |
//!
//! # How a job runs
//!
//! A worker reserves the runnable job that has waited longest, acquires its cost (default one
//! request) from the shared [`Limiter`](crate::limit::Limiter) waiting at most `limiter_wait`
//! (default 5 s) — if capacity returns later, the job alone is deferred until then, no attempt
//! spent — and runs the handler with the job's payload and a [`JobContext`] (its idempotency key,
//! attempt number, group). The handler's [`JobOutcome`]:
//!
//! - **done**: the job is forgotten.
//! - **park** for T ("not until T": a 429 with a hint, a hint beyond the client's clamp, a
//!   breaker open until T, a quota exhausted until T): the job and every job of its group
//!   (upstream plus credential, e.g. `"stripe:acct_123"`) wait until T. No attempt is spent and
//!   no worker waits: other groups keep flowing. After `max_parks` (default 100) parks of one job,
//!   a further park spends an attempt, so an upstream that says "later" forever cannot hold a job
//!   forever.
//! - **retry**: spends an attempt and waits the server's hint or the job-level backoff (the
//!   core's [`Backoff`](crate::backoff::Backoff), default base 1 min, cap 6 h, full jitter). At
//!   `max_attempts` (default 10) the job is dead-lettered.
//! - **fail**: dead-lettered at once with the error.
//!
//! A handler that panics counts as a failed attempt (retry).
//!
//! # Errors to outcomes
//!
//! A handler may return the client's `Result<T, Error<A>>`; the queue classifies the error (the
//! full table is in `outcome.rs`, [`JobOutcome`]): server-said-wait errors (`RetryAfterTooLong`,
//! `CircuitOpen`, `Throttled` with a known wait, a retryable `Api` error with a `retry_after`)
//! park the group; transient errors (`Timeout`, `Connect`, `Interrupted`,
//! `RetryBudgetExhausted`, `DeadlineExceeded`, a retryable `Api` error without a hint) retry with
//! backoff; permanent errors (non-retryable `Api` errors such as 4xx, `InvalidRequest`, `Decode`)
//! are dead-lettered. `Ambiguous` (a request that may have been processed and carried no
//! idempotency key the upstream honours) is dead-lettered with its reason: running it again could
//! duplicate a side effect, so a person decides and [`WorkQueue::requeue`]s it.
//!
//! # Capacity and back-pressure
//!
//! The capacity (default 10,000) counts every job the queue holds and has not finished:
//! runnable, parked, scheduled for a retry, and in flight (so a job coming back from a worker
//! always has its place). Dead letters do not count. [`WorkQueue::push`] waits for room;
//! [`WorkQueue::try_push`] hands the job back in [`PushError::Full`]. A requeued dead letter is
//! accepted even past capacity: it was accepted once already.
//!
//! # Shutdown
//!
//! [`WorkQueue::shutdown`] stops taking pushes and reservations, gives running handlers until the
//! grace period ends, then cancels the ones still running. The [`ShutdownReport`] hands back every
//! job not run to an end: `unrun` (waiting, parked, scheduled, or reserved but not started),
//! `interrupted` (cancelled mid-run: the attempt may have reached the upstream, so the job keeps
//! its key and is reported apart), and the dead letters. Nothing is dropped silently.
//!
//! # Telemetry
//!
//! [`QueueStats`] ([`WorkQueue::stats`]): depth, oldest job age, in flight, parked, scheduled,
//! dead letters, and this queue's completed, attempts, retries, parks and dead-lettered counts.
//! With the `metrics` feature: `ratewise_queue_depth`, `ratewise_queue_oldest_age_seconds`
//! (gauges, refreshed on every push, settled job and [`WorkQueue::stats`] call) and `ratewise_queue_dead_letter_total`, each
//! labelled `queue` ([`WorkQueueBuilder::name`]). `tracing` events under the target
//! [`QUEUE_TARGET`](crate::telemetry::QUEUE_TARGET).
//!
//! # Time
//!
//! Push times, parks and retries read the injected clock's wall time ([`Clock::wall`](
//! crate::clock::Clock::wall)), which a durable store can compare across machines; waiting uses
//! tokio's timer, so tests run hours of parks and backoff in virtual time
//! (`#[tokio::test(start_paused = true)]` with the default [`TokioClock`](crate::clock::TokioClock)).

mod builder;
mod handler;
mod job;
mod memory;
mod outcome;
mod runtime;
mod shutdown;
mod stats;
mod store;
mod worker;

#[cfg(test)]
mod tests;

pub use builder::{
    DEFAULT_BACKOFF, DEFAULT_CONCURRENCY, DEFAULT_LIMITER_WAIT, DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MAX_PARKS, DEFAULT_POLL_INTERVAL, WorkQueueBuilder,
};
pub use handler::Handler;
pub use job::{Job, JobContext, JobId};
pub use memory::{DEFAULT_CAPACITY, MemoryStore};
pub use outcome::JobOutcome;
pub use runtime::{Payload, WorkQueue};
pub use shutdown::ShutdownReport;
pub use stats::QueueStats;
pub use store::{DeadLetter, JobStore, ParkScope, PushError, Reserved, StoreError, StoreStats};
