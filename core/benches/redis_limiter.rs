//! The Redis-backed GCRA limiter against a local Redis: acquires per second and round trips.
//!
//! Needs `redis-server` on PATH (a private one is started on a free port) or `REDIS_URL`.
//! Run: `cargo bench -p ratewise-core --features redis --bench redis_limiter`.
//!
//! * `ping`: the floor, one `PING` per iteration on the same kind of connection.
//! * `1 worker, sequential`: one task, one acquire at a time (latency-bound: 1 / round trip).
//! * `1 worker, 16 in flight`: one process, one multiplexed connection, 16 concurrent tasks.
//! * `4 workers`: 4 tasks on a multi-thread runtime, each with its own connection and 4 acquires
//!   in flight, all on one shared bucket. (Tasks, not processes: the 4-process run is the test
//!   `testkit/tests/redis_limiter_processes.rs`; here the connections are separate as they
//!   would be across processes.)
//!
//! Round trips per acquire come from Redis itself: the `INFO commandstats` counts of the requests
//! a client can send for a script (`EVALSHA`, `EVAL`, `SCRIPT`) before and after, divided by the
//! acquires made. (The commands the script runs inside Redis, `TIME`, `GET` and `SET`, are
//! counted by Redis too, under their own names, but are not round trips; they are printed
//! separately.) Rates are huge so nothing waits: this measures the admission path.

#![allow(clippy::unwrap_used)] // a bench may fail loudly on setup

use std::sync::Arc;
use std::time::Duration;

use ratewise_core::clock::{Clock, TokioClock};
use ratewise_core::limit::{Cost, Limiter, Rate};
use ratewise_core::redis::{RedisConfig, RedisConnection, RedisGcraLimiter};
use ratewise_testkit::redis::RedisServer;

const PER_WORKER: u64 = 20_000;

fn limiter(url: &str, prefix: &str) -> RedisGcraLimiter {
    let redis = RedisConnection::new(&RedisConfig::new(url).prefix(prefix)).unwrap();
    RedisGcraLimiter::new(redis, "bench", Rate::per_second(1_000_000)).burst(1_000_000_000)
}

/// Calls Redis has counted so far: (script requests from clients, commands run inside scripts).
fn commands(server: &RedisServer) -> (u64, u64) {
    (
        server.command_calls(&["evalsha", "eval", "script|load", "script"]),
        server.command_calls(&["time", "get", "set"]),
    )
}

async fn run(name: &str, server: &RedisServer, workers: usize, in_flight: usize, prefix: &str) {
    let clock = TokioClock::new();
    let url = server.url();
    let limiters: Vec<Arc<RedisGcraLimiter>> = (0..workers)
        .map(|_| Arc::new(limiter(url, prefix)))
        .collect();
    // Warm up: connect and load the script on every connection.
    for limiter in &limiters {
        let _ = limiter
            .acquire(&Cost::request(), Duration::ZERO)
            .await
            .unwrap();
    }
    let per_task = PER_WORKER / in_flight as u64;
    let before = commands(server);
    let start = clock.now();
    let mut tasks = Vec::new();
    for limiter in &limiters {
        for _ in 0..in_flight {
            let limiter = Arc::clone(limiter);
            tasks.push(tokio::spawn(async move {
                for _ in 0..per_task {
                    let _ = limiter
                        .acquire(&Cost::request(), Duration::ZERO)
                        .await
                        .unwrap();
                }
            }));
        }
    }
    for task in tasks {
        task.await.unwrap();
    }
    let elapsed = clock.now() - start;
    let after = commands(server);
    let acquires = per_task * (in_flight * workers) as u64;
    println!(
        "{name:<28} {acquires:>7} acquires in {:>7.3} s: {:>8.0} acquires/s, \
         {:.3} round trips per acquire ({:.1} commands inside the script)",
        elapsed.as_secs_f64(),
        acquires as f64 / elapsed.as_secs_f64(),
        (after.0 - before.0) as f64 / acquires as f64,
        (after.1 - before.1) as f64 / acquires as f64,
    );
}

async fn ping(url: &str) {
    let clock = TokioClock::new();
    let client = redis::Client::open(url).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let start = clock.now();
    for _ in 0..PER_WORKER {
        let _: String = redis::cmd("PING").query_async(&mut con).await.unwrap();
    }
    let elapsed = clock.now() - start;
    println!(
        "{:<28} {PER_WORKER:>7} pings    in {:>7.3} s: {:>8.0} pings/s (the round-trip floor)",
        "ping, sequential",
        elapsed.as_secs_f64(),
        PER_WORKER as f64 / elapsed.as_secs_f64(),
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: run once either way.
    let server = RedisServer::start();
    let url = server.url().to_owned();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        ping(&url).await;
        run("1 worker, sequential", &server, 1, 1, &server.prefix()).await;
        run("1 worker, 16 in flight", &server, 1, 16, &server.prefix()).await;
        run(
            "4 workers, 4 in flight each",
            &server,
            4,
            4,
            &server.prefix(),
        )
        .await;
    });
}
