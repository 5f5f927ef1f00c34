//! The durable Redis job store against a local Redis: jobs per second and round trips per job.
//!
//! Needs `redis-server` on PATH (a private one is started on a free port) or `REDIS_URL`.
//! Run: `cargo bench -p ratewise-core --features redis --bench redis_queue`.
//!
//! * `push`: one task pushing jobs one at a time (latency-bound: 1 / round trip).
//! * `reserve + complete, 1 task`: one task taking and finishing jobs one at a time.
//! * `reserve + complete, 16 tasks`: one store (one multiplexed connection), 16 tasks.
//! * `WorkQueue, 16 workers`: the whole runtime over the store, a handler that returns at once.
//!
//! Round trips come from Redis's `INFO commandstats` (script calls made by clients), divided by
//! the jobs moved.

#![allow(clippy::unwrap_used)] // a bench may fail loudly on setup

use std::sync::Arc;
use std::time::Duration;

use ratewise_core::clock::{Clock, TokioClock};
use ratewise_core::queue::{Job, JobContext, JobOutcome, JobStore, Reserved, WorkQueue};
use ratewise_core::redis::{RedisConfig, RedisConnection, RedisJobStore};
use ratewise_testkit::redis::RedisServer;

const JOBS: u64 = 5_000;
const SCRIPTS: &[&str] = &["evalsha", "eval", "script|load", "script"];

fn store(server: &RedisServer) -> Arc<RedisJobStore<u64>> {
    let redis =
        RedisConnection::new(&RedisConfig::new(server.url()).prefix(server.prefix())).unwrap();
    Arc::new(RedisJobStore::builder(redis, "bench").build())
}

async fn push_all(store: &RedisJobStore<u64>, clock: &TokioClock) {
    for n in 0..JOBS {
        store.push(Job::new(n), clock.wall()).await.unwrap();
    }
}

fn report(name: &str, server: &RedisServer, before: u64, elapsed: Duration) {
    let calls = server.command_calls(SCRIPTS) - before;
    println!(
        "{name:<32} {JOBS:>6} jobs in {:>6.3} s: {:>7.0} jobs/s, {:.2} round trips per job",
        elapsed.as_secs_f64(),
        JOBS as f64 / elapsed.as_secs_f64(),
        calls as f64 / JOBS as f64,
    );
}

async fn take_and_complete(store: Arc<RedisJobStore<u64>>, clock: TokioClock) -> u64 {
    let mut done = 0;
    loop {
        match store.reserve(clock.wall()).await.unwrap() {
            Reserved::Job(job) => {
                store.complete(job.id).await.unwrap();
                done += 1;
            }
            _ => return done,
        }
    }
}

async fn reserve_complete(name: &str, server: &RedisServer, tasks: usize) {
    let clock = TokioClock::new();
    let store = store(server);
    push_all(&store, &clock).await;
    let before = server.command_calls(SCRIPTS);
    let start = clock.now();
    let handles: Vec<_> = (0..tasks)
        .map(|_| tokio::spawn(take_and_complete(Arc::clone(&store), clock.clone())))
        .collect();
    let mut done = 0;
    for handle in handles {
        done += handle.await.unwrap();
    }
    assert_eq!(done, JOBS);
    // Each task's last reserve found nothing: not a job's round trip.
    let idle = u64::try_from(tasks).unwrap();
    report(name, server, before + idle, clock.now() - start);
}

async fn work_queue(server: &RedisServer) {
    let clock = TokioClock::new();
    let store = store(server);
    push_all(&store, &clock).await;
    let before = server.command_calls(SCRIPTS);
    let start = clock.now();
    let queue = WorkQueue::builder(|_: u64, _: JobContext| async { JobOutcome::done() })
        .store(store.clone())
        .concurrency(16)
        .poll_interval(Duration::from_millis(100))
        .start();
    loop {
        let stats = queue.stats().await.unwrap();
        if stats.completed >= JOBS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = clock.now() - start;
    let _ = queue.shutdown(Duration::from_secs(5)).await;
    println!(
        "{:<32} {JOBS:>6} jobs in {:>6.3} s: {:>7.0} jobs/s (stats polls included in the calls: {})",
        "WorkQueue, 16 workers",
        elapsed.as_secs_f64(),
        JOBS as f64 / elapsed.as_secs_f64(),
        server.command_calls(SCRIPTS) - before,
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: run once either way.
    let server = RedisServer::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let clock = TokioClock::new();
        let store = store(&server);
        let before = server.command_calls(SCRIPTS);
        let start = clock.now();
        push_all(&store, &clock).await;
        report("push, 1 task", &server, before, clock.now() - start);
        let _ = store.purge().await;
        reserve_complete("reserve + complete, 1 task", &server, 1).await;
        reserve_complete("reserve + complete, 16 tasks", &server, 16).await;
        work_queue(&server).await;
    });
}
