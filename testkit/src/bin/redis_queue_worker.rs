//! A worker process draining a Redis-backed work queue (the durable-queue process tests).
//!
//! Usage: `redis-queue-worker <redis-url> <key-prefix> <queue> <job-ms> <visibility-ms>
//! <idle-exit-ms> <max-run-ms>`.
//!
//! Each job (a `u32`) plays a request to an upstream that honours idempotency keys, with a
//! ledger in the same Redis: the run is counted (`{prefix}ledger:starts`, job → runs), the job
//! sleeps `job-ms`, the side effect is applied under the job's key (`HSETNX
//! {prefix}ledger:effects <key> <job>`: a key seen before is a replay, not a second effect), and
//! the job sleeps `job-ms` again before reporting done: a kill in that window leaves a performed
//! side effect unacknowledged, the case a redelivery must not duplicate.
//!
//! The worker exits when the queue has been empty (nothing waiting, nothing in flight) for
//! `idle-exit-ms`, or after `max-run-ms`, and prints `runs <n>`, `store_errors <n>` (stats calls
//! that found Redis unreachable) and `interrupted <n>` on stdout.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ratewise_core::backoff::Backoff;
use ratewise_core::clock::{Clock, TokioClock};
use ratewise_core::queue::{JobContext, JobOutcome, WorkQueue};
use ratewise_core::redis::{RedisConfig, RedisConnection, RedisJobStore};
use redis::aio::ConnectionManager;

struct Args {
    url: String,
    prefix: String,
    queue: String,
    job: Duration,
    visibility: Duration,
    idle_exit: Duration,
    max_run: Duration,
}

fn parse() -> Result<Args, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, prefix, queue, job, visibility, idle_exit, max_run] = args.as_slice() else {
        return Err(
            "usage: redis-queue-worker <url> <prefix> <queue> <job-ms> <visibility-ms> \
                    <idle-exit-ms> <max-run-ms>"
                .into(),
        );
    };
    let ms = |s: &str| {
        s.parse::<u64>()
            .map(Duration::from_millis)
            .map_err(|e| format!("{s}: {e}"))
    };
    Ok(Args {
        url: url.clone(),
        prefix: prefix.clone(),
        queue: queue.clone(),
        job: ms(job)?,
        visibility: ms(visibility)?,
        idle_exit: ms(idle_exit)?,
        max_run: ms(max_run)?,
    })
}

/// The upstream's ledger, in the test's Redis.
#[derive(Clone)]
struct Ledger {
    redis: ConnectionManager,
    starts: String,
    effects: String,
}

impl Ledger {
    async fn run(&self, job: u32, ctx: JobContext, pause: Duration) -> JobOutcome {
        let mut redis = self.redis.clone();
        let started: Result<i64, _> = redis::cmd("HINCRBY")
            .arg(&self.starts)
            .arg(job)
            .arg(1)
            .query_async(&mut redis)
            .await;
        if let Err(e) = started {
            return JobOutcome::retry(format!("ledger unreachable: {e}"));
        }
        tokio::time::sleep(pause).await;
        let applied: Result<i64, _> = redis::cmd("HSETNX")
            .arg(&self.effects)
            .arg(ctx.key.as_str())
            .arg(job)
            .query_async(&mut redis)
            .await;
        if let Err(e) = applied {
            return JobOutcome::retry(format!("ledger unreachable: {e}"));
        }
        tokio::time::sleep(pause).await;
        JobOutcome::done()
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = match parse() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let config = RedisConfig::new(args.url.as_str())
        .prefix(args.prefix.as_str())
        .connect_timeout(Duration::from_millis(300))
        .response_timeout(Duration::from_millis(500));
    let connection = match RedisConnection::new(&config) {
        Ok(redis) => redis,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let ledger = match redis::Client::open(args.url.as_str()) {
        Ok(client) => {
            let manager_config = redis::aio::ConnectionManagerConfig::new()
                .set_connection_timeout(Some(Duration::from_millis(300)))
                .set_response_timeout(Some(Duration::from_millis(500)));
            match redis::aio::ConnectionManager::new_lazy_with_config(client, manager_config) {
                Ok(redis) => Ledger {
                    redis,
                    starts: format!("{}ledger:starts", args.prefix),
                    effects: format!("{}ledger:effects", args.prefix),
                },
                Err(e) => {
                    eprintln!("ledger: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
        Err(e) => {
            eprintln!("ledger: {e}");
            return ExitCode::FAILURE;
        }
    };

    let store = RedisJobStore::<u32>::builder(connection, args.queue.as_str())
        .visibility_timeout(args.visibility)
        .build();
    let runs = Arc::new(AtomicU64::new(0));
    let counted = Arc::clone(&runs);
    let pause = args.job;
    let queue = WorkQueue::builder(move |job: u32, ctx: JobContext| {
        let ledger = ledger.clone();
        counted.fetch_add(1, Ordering::Relaxed);
        async move { ledger.run(job, ctx, pause).await }
    })
    .store(Arc::new(store))
    .concurrency(4)
    .poll_interval(Duration::from_millis(50))
    .backoff(
        Backoff::new()
            .base(Duration::from_millis(50))
            .cap(Duration::from_millis(500)),
    )
    .max_attempts(50)
    .start();

    let clock = TokioClock::new();
    let (started, mut empty_since) = (clock.now(), None);
    let mut store_errors = 0_u64;
    while clock.now() - started < args.max_run {
        tokio::time::sleep(Duration::from_millis(100)).await;
        match queue.stats().await {
            Ok(stats) if stats.depth == 0 && stats.in_flight == 0 => {
                let since = *empty_since.get_or_insert(clock.now());
                if clock.now() - since >= args.idle_exit {
                    break;
                }
            }
            Ok(_) => empty_since = None,
            Err(e) => {
                store_errors += 1;
                empty_since = None;
                eprintln!("worker {}: {e}", std::process::id());
            }
        }
    }
    let report = queue.shutdown(Duration::from_secs(5)).await;
    println!("runs {}", runs.load(Ordering::Relaxed));
    println!("store_errors {store_errors}");
    println!("interrupted {}", report.interrupted.len());
    ExitCode::SUCCESS
}
