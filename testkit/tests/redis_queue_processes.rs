//! The durable Redis queue across worker processes (spawned binaries): a worker killed with
//! SIGKILL mid-job, and Redis itself restarted mid-run. Real Redis, real time, generous bounds.
//!
//! The workers' jobs write to a ledger that plays an upstream honouring idempotency keys (see
//! `src/bin/redis_queue_worker.rs`): `starts` counts runs per job, `effects` records one side
//! effect per key. "Processed exactly once" means: every job has exactly one effect, under the
//! one key it was pushed with, however many times it ran.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test setup may fail loudly

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ratewise_core::clock::{Clock, TokioClock};
use ratewise_core::queue::{Job, JobStore};
use ratewise_core::redis::{RedisConfig, RedisConnection, RedisJobStore};
use ratewise_testkit::redis::RedisServer;

const WORKER: &str = env!("CARGO_BIN_EXE_redis-queue-worker");
const QUEUE: &str = "ledger-jobs";

#[derive(Debug, Default)]
struct Report {
    runs: u64,
    store_errors: u64,
}

fn spawn_worker(server: &RedisServer, prefix: &str, job_ms: u64, visibility_ms: u64) -> Child {
    Command::new(WORKER)
        .args([server.url(), prefix, QUEUE])
        .args([job_ms, visibility_ms, 1_500, 60_000].map(|n| n.to_string()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn collect(workers: Vec<Child>) -> Vec<Report> {
    workers
        .into_iter()
        .map(|worker| {
            let output = worker.wait_with_output().unwrap();
            assert!(output.status.success(), "worker failed: {output:?}");
            let mut report = Report::default();
            for line in String::from_utf8_lossy(&output.stdout).lines() {
                let (name, value) = line.split_once(' ').unwrap();
                let value: u64 = value.parse().unwrap();
                match name {
                    "runs" => report.runs = value,
                    "store_errors" => report.store_errors = value,
                    "interrupted" => {}
                    other => panic!("unexpected worker output {other}"),
                }
            }
            report
        })
        .collect()
}

fn connection(server: &RedisServer, prefix: &str) -> RedisConnection {
    RedisConnection::new(&RedisConfig::new(server.url()).prefix(prefix)).unwrap()
}

/// Pushes jobs `0..n` and returns their idempotency keys by job.
async fn push_jobs(store: &RedisJobStore<u32>, n: u32) -> HashMap<u32, String> {
    let clock = TokioClock::new();
    let mut keys = HashMap::new();
    for job in 0..n {
        let mut pushed = Job::new(job);
        pushed.enqueued_at = clock.wall();
        keys.insert(job, pushed.key.as_str().to_owned());
        store.push(pushed, clock.wall()).await.unwrap();
    }
    keys
}

/// The ledger, read with a plain client: (runs per job, job per effect key).
fn ledger(server: &RedisServer, prefix: &str) -> (HashMap<u32, u64>, HashMap<String, u32>) {
    let client = redis::Client::open(server.url()).unwrap();
    let mut redis = client.get_connection().unwrap();
    let starts: HashMap<u32, u64> = redis::cmd("HGETALL")
        .arg(format!("{prefix}ledger:starts"))
        .query(&mut redis)
        .unwrap();
    let effects: HashMap<String, u32> = redis::cmd("HGETALL")
        .arg(format!("{prefix}ledger:effects"))
        .query(&mut redis)
        .unwrap();
    (starts, effects)
}

/// Waits (real time) until `ready` holds for the ledger, for at most `limit`.
fn wait_for(
    server: &RedisServer,
    prefix: &str,
    limit: Duration,
    ready: impl Fn(&HashMap<u32, u64>, &HashMap<String, u32>) -> bool,
) {
    let clock = TokioClock::new();
    let deadline = clock.now() + limit;
    while clock.now() < deadline {
        let (starts, effects) = ledger(server, prefix);
        if ready(&starts, &effects) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("the ledger never reached the expected state within {limit:?}");
}

/// Every job has exactly one effect, under the key it was pushed with.
fn assert_exactly_once(keys: &HashMap<u32, String>, effects: &HashMap<String, u32>) {
    assert_eq!(effects.len(), keys.len(), "one effect per job");
    for (job, key) in keys {
        assert_eq!(
            effects.get(key),
            Some(job),
            "job {job}'s effect is under its key"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_job_has_its_jobs_redelivered_and_each_processed_exactly_once() {
    let server = RedisServer::start();
    let prefix = server.prefix();
    let store = RedisJobStore::<u32>::builder(connection(&server, &prefix), QUEUE).build();
    let keys = push_jobs(&store, 120).await;

    let (job_ms, visibility_ms) = (100, 1_000);
    let mut victim = spawn_worker(&server, &prefix, job_ms, visibility_ms);
    // The victim alone until it is in the middle of jobs: some have applied their effect and
    // not been acknowledged yet.
    wait_for(
        &server,
        &prefix,
        Duration::from_secs(20),
        |starts, effects| starts.len() >= 8 && !effects.is_empty(),
    );
    victim.kill().unwrap(); // SIGKILL
    let _ = victim.wait();
    let (started_by_victim, _) = ledger(&server, &prefix);
    let survivors: Vec<Child> = (0..2)
        .map(|_| spawn_worker(&server, &prefix, job_ms, visibility_ms))
        .collect();
    let reports = collect(survivors);

    let (starts, effects) = ledger(&server, &prefix);
    assert_exactly_once(&keys, &effects);
    let redelivered: Vec<u32> = starts
        .iter()
        .filter(|(_, runs)| **runs > 1)
        .map(|(job, _)| *job)
        .collect();
    assert!(
        !redelivered.is_empty(),
        "the victim's in-flight jobs ran again: {starts:?}"
    );
    assert!(
        redelivered
            .iter()
            .all(|job| started_by_victim.contains_key(job)),
        "only jobs the victim had started ran twice"
    );
    let total_runs: u64 = starts.values().sum();
    let survivor_runs: u64 = reports.iter().map(|r| r.runs).sum();
    assert!(survivor_runs + started_by_victim.len() as u64 >= total_runs);
    let stats = store.stats().await.unwrap();
    assert_eq!(
        (stats.depth, stats.in_flight, stats.dead_letters),
        (0, 0, 0),
        "{stats:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_mid_run_loses_no_job_and_the_workers_resume() {
    let server = RedisServer::start_persistent();
    let prefix = server.prefix();
    let store = RedisJobStore::<u32>::builder(connection(&server, &prefix), QUEUE).build();
    let keys = push_jobs(&store, 150).await;

    let workers: Vec<Child> = (0..3)
        .map(|_| spawn_worker(&server, &prefix, 30, 2_000))
        .collect();
    wait_for(&server, &prefix, Duration::from_secs(20), |_, effects| {
        effects.len() >= 30
    });
    server.kill();
    std::thread::sleep(Duration::from_millis(800)); // the workers meet a dead Redis
    server.restart();
    let reports = collect(workers);

    let (_, effects) = ledger(&server, &prefix);
    assert_exactly_once(&keys, &effects);
    let errors: u64 = reports.iter().map(|r| r.store_errors).sum();
    assert!(errors > 0, "the workers saw the outage: {reports:?}");
    // This process's connection broke with the restart too: its first command reports that
    // (a typed error), the connection re-dials, the next one answers.
    let mut stats = store.stats().await;
    for _ in 0..20 {
        if stats.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        stats = store.stats().await;
    }
    let stats = stats.unwrap();
    assert_eq!(
        (stats.depth, stats.in_flight, stats.dead_letters),
        (0, 0, 0),
        "{stats:?}"
    );
}
