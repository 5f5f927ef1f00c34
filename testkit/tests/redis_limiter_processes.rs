//! Four worker processes (spawned binaries) share one Redis-backed limiter.
//!
//! Real Redis, real time: the only long test (20 s). Run with `--features redis`.

#![allow(clippy::unwrap_used)] // test setup may fail loudly

use std::process::{Command, Stdio};
use std::time::{Duration, UNIX_EPOCH};

use ratewise_core::clock::{Clock, TokioClock};
use ratewise_testkit::redis::RedisServer;

const WORKER: &str = env!("CARGO_BIN_EXE_redis-limiter-worker");

#[derive(Debug, Default)]
struct Report {
    admitted: u64,
    errors: u64,
    after_error: u64,
}

fn parse(stdout: &[u8]) -> Report {
    let mut report = Report::default();
    for line in String::from_utf8_lossy(stdout).lines() {
        let (name, value) = line.split_once(' ').unwrap();
        let value: u64 = value.parse().unwrap();
        match name {
            "admitted" => report.admitted = value,
            "errors" => report.errors = value,
            "after_error" => report.after_error = value,
            other => panic!("unexpected worker output {other}"),
        }
    }
    report
}

/// Starts `n` workers that begin together `lead` from now and run for `run`.
fn spawn_workers(
    server: &RedisServer,
    prefix: &str,
    n: usize,
    per_second: u64,
    lead: Duration,
    run: Duration,
) -> Vec<std::process::Child> {
    let clock = TokioClock::new();
    let start = clock.wall().duration_since(UNIX_EPOCH).unwrap() + lead;
    (0..n)
        .map(|_| {
            Command::new(WORKER)
                .args([
                    server.url(),
                    prefix,
                    &per_second.to_string(),
                    "1",
                    &start.as_millis().to_string(),
                    &run.as_millis().to_string(),
                ])
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap()
        })
        .collect()
}

fn collect(workers: Vec<std::process::Child>) -> Vec<Report> {
    workers
        .into_iter()
        .map(|worker| {
            let output = worker.wait_with_output().unwrap();
            assert!(output.status.success(), "worker failed: {output:?}");
            parse(&output.stdout)
        })
        .collect()
}

#[test]
fn four_processes_sharing_50_per_second_admit_50_per_second_together() {
    let server = RedisServer::start();
    let run = Duration::from_secs(20);
    let workers = spawn_workers(
        &server,
        &server.prefix(),
        4,
        50,
        Duration::from_secs(1),
        run,
    );
    let reports = collect(workers);
    let total: u64 = reports.iter().map(|r| r.admitted).sum();
    let rate = total as f64 / run.as_secs_f64();
    eprintln!("4 workers admitted {total} in {run:?} = {rate:.2}/s: {reports:?}");
    assert!(
        (rate - 50.0).abs() <= 50.0 * 0.03,
        "aggregate {rate:.2}/s ({total} in {run:?}) is not within 3 % of 50/s: {reports:?}"
    );
    assert!(
        reports.iter().all(|r| r.admitted > 100 && r.errors == 0),
        "every worker got a share and no errors: {reports:?}"
    );
}

#[test]
fn workers_report_a_redis_restart_as_errors_and_resume() {
    let server = RedisServer::start();
    if !server.is_owned() {
        panic!("this test restarts Redis: install `redis-server` (apt-get install redis-server)");
    }
    let workers = spawn_workers(
        &server,
        &server.prefix(),
        4,
        50,
        Duration::from_millis(500),
        Duration::from_secs(6),
    );
    std::thread::sleep(Duration::from_millis(2_500));
    server.kill();
    std::thread::sleep(Duration::from_secs(1));
    server.restart();
    let reports = collect(workers);
    for report in &reports {
        assert!(report.errors > 0, "the outage was reported: {reports:?}");
        assert!(
            report.after_error > 10,
            "the worker resumed after Redis came back: {reports:?}"
        );
    }
    // Never over the shared limit, even across the restart (the new Redis starts with a full
    // bucket of 1): at most 6 s at 50/s plus two bursts;
    // and at least 100, as the workers resumed.
    let total: u64 = reports.iter().map(|r| r.admitted).sum();
    eprintln!("across the restart: admitted {total}: {reports:?}");
    assert!(
        (100..=302).contains(&total),
        "admitted {total}: {reports:?}"
    );
}
