//! The durable Redis Streams job store against a real Redis (started by the test; see
//! `ratewise_testkit::redis`). Real time, short timeouts, generous bounds.

#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // test setup may fail loudly

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use ratewise_core::clock::{Clock, TokioClock};
use ratewise_core::queue::{
    DeadLetter, Job, JobContext, JobOutcome, JobStore, ParkScope, PushError, Reserved, WorkQueue,
};
use ratewise_core::redis::{RedisConfig, RedisConnection, RedisJobStore};
use ratewise_testkit::redis::RedisServer;

/// The wall clock, read the way the queue reads it.
fn wall() -> SystemTime {
    TokioClock::new().wall()
}

fn connect(url: &str, prefix: &str) -> RedisConnection {
    let config = RedisConfig::new(url)
        .prefix(prefix)
        .connect_timeout(Duration::from_millis(300))
        .response_timeout(Duration::from_millis(300));
    RedisConnection::new(&config).unwrap()
}

fn store(server: &RedisServer, prefix: &str) -> RedisJobStore<String> {
    RedisJobStore::builder(connect(server.url(), prefix), "jobs").build()
}

/// A store on the queue `jobs` under `prefix` with a short visibility timeout: one "process".
fn leased(server: &RedisServer, prefix: &str, visibility: Duration) -> RedisJobStore<String> {
    RedisJobStore::builder(connect(server.url(), prefix), "jobs")
        .visibility_timeout(visibility)
        .build()
}

fn job(name: &str, group: Option<&str>) -> Job<String> {
    let mut job = Job::new(name.to_owned());
    job.group = group.map(str::to_owned);
    job
}

async fn take(store: &RedisJobStore<String>, now: SystemTime) -> Option<Job<String>> {
    match store.reserve(now).await.unwrap() {
        Reserved::Job(job) => Some(*job),
        _ => None,
    }
}

async fn next_at(store: &RedisJobStore<String>, now: SystemTime) -> Option<SystemTime> {
    match store.reserve(now).await.unwrap() {
        Reserved::Idle { next_at } => next_at,
        other => panic!("unexpected {other:?}"),
    }
}

fn secs(now: SystemTime, s: u64) -> SystemTime {
    now + Duration::from_secs(s)
}

#[tokio::test]
async fn jobs_come_out_in_push_order_with_their_keys_and_complete_removes_them() {
    let server = RedisServer::start();
    let store = store(&server, &server.prefix());
    let now = wall();
    let pushed: Vec<Job<String>> = ["a", "b", "c"].iter().map(|n| job(n, None)).collect();
    for job in &pushed {
        store.push(job.clone(), now).await.unwrap();
    }
    let stats = store.stats().await.unwrap();
    assert_eq!((stats.depth, stats.in_flight), (3, 0), "{stats:?}");
    assert!(stats.oldest_enqueued_at.is_some());

    let mut taken = Vec::new();
    while let Some(job) = take(&store, now).await {
        taken.push(job);
    }
    let names: Vec<&str> = taken.iter().map(|j| j.payload.as_str()).collect();
    assert_eq!(names, ["a", "b", "c"]);
    for (taken, pushed) in taken.iter().zip(&pushed) {
        assert_eq!((taken.id, &taken.key), (pushed.id, &pushed.key));
    }
    assert_eq!(store.stats().await.unwrap().in_flight, 3);
    for job in &taken {
        store.complete(job.id).await.unwrap();
    }
    let stats = store.stats().await.unwrap();
    assert_eq!((stats.depth, stats.in_flight), (0, 0), "{stats:?}");
    assert_eq!(next_at(&store, now).await, None);
}

#[tokio::test]
async fn a_group_park_holds_queued_jobs_of_the_group_and_later_pushes_until_t() {
    let server = RedisServer::start();
    let store = store(&server, &server.prefix());
    let now = wall();
    for (name, group) in [("a1", "a"), ("a2", "a"), ("b1", "b")] {
        store.push(job(name, Some(group)), now).await.unwrap();
    }
    let a1 = take(&store, now).await.unwrap();
    assert_eq!(a1.payload, "a1");
    let mut parked = a1.clone();
    parked.parks += 1;
    store
        .park(parked, secs(now, 30), ParkScope::Group)
        .await
        .unwrap();
    store.push(job("a3", Some("a")), now).await.unwrap();

    assert_eq!(take(&store, now).await.unwrap().payload, "b1");
    assert_eq!(
        next_at(&store, now).await,
        Some(trunc_ms(secs(now, 30))),
        "a2 (queued before the park) and a3 (pushed after) wait for the hold"
    );
    let stats = store.stats().await.unwrap();
    assert_eq!((stats.parked, stats.in_flight), (3, 1), "{stats:?}");

    let later = secs(now, 30);
    let mut resumed = Vec::new();
    while let Some(job) = take(&store, later).await {
        resumed.push(job);
    }
    let names: HashSet<&str> = resumed.iter().map(|j| j.payload.as_str()).collect();
    assert_eq!(names, HashSet::from(["a1", "a2", "a3"]));
    let a1 = resumed.iter().find(|j| j.payload == "a1").unwrap();
    assert_eq!((a1.attempts, a1.parks), (0, 1), "a park spends no attempt");
}

fn trunc_ms(at: SystemTime) -> SystemTime {
    let since = at.duration_since(SystemTime::UNIX_EPOCH).unwrap();
    SystemTime::UNIX_EPOCH + Duration::from_millis(u64::try_from(since.as_millis()).unwrap())
}

#[tokio::test]
async fn a_retry_waits_until_its_time_and_a_dead_letter_requeues_with_its_key_and_no_attempts() {
    let server = RedisServer::start();
    let store = store(&server, &server.prefix());
    let now = wall();
    store.push(job("x", None), now).await.unwrap();
    let mut x = take(&store, now).await.unwrap();
    x.attempts = 1;
    store.retry(x.clone(), secs(now, 60)).await.unwrap();
    assert_eq!(store.stats().await.unwrap().scheduled, 1);
    assert_eq!(next_at(&store, now).await, Some(trunc_ms(secs(now, 60))));
    let mut again = take(&store, secs(now, 60)).await.unwrap();
    assert_eq!((again.id, again.attempts), (x.id, 1));

    again.attempts = 2;
    store
        .dead_letter(DeadLetter::new(again.clone(), "HTTP 400", now))
        .await
        .unwrap();
    let letters = store.dead_letters().await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].error, "HTTP 400");
    assert_eq!(letters[0].job.attempts, 2);
    let stats = store.stats().await.unwrap();
    assert_eq!(
        (stats.depth, stats.in_flight, stats.dead_letters),
        (0, 0, 1)
    );

    assert!(store.requeue(x.id, now).await.unwrap());
    assert!(!store.requeue(x.id, now).await.unwrap(), "requeued once");
    let back = take(&store, now).await.unwrap();
    assert_eq!((back.id, &back.key, back.attempts), (x.id, &x.key, 0));
    assert!(store.dead_letters().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_job_whose_worker_vanished_is_redelivered_with_its_key_and_a_spent_attempt() {
    let server = RedisServer::start();
    let prefix = server.prefix();
    let visibility = Duration::from_millis(300);
    let build = || leased(&server, &prefix, visibility);
    let (crashed, survivor) = (build(), build());
    let now = wall();
    let pushed = job("charge", None);
    crashed.push(pushed.clone(), now).await.unwrap();
    let held = take(&crashed, now).await.unwrap();
    drop(crashed); // its lease renewal stops: as if the process were killed

    assert!(
        take(&survivor, now).await.is_none(),
        "not before the timeout"
    );
    tokio::time::sleep(visibility * 2).await;
    let redelivered = take(&survivor, wall()).await.unwrap();
    assert_eq!(redelivered.id, held.id);
    assert_eq!(redelivered.key, pushed.key, "the same idempotency key");
    assert_eq!(redelivered.attempts, 1, "the lost run counts as an attempt");
    survivor.complete(redelivered.id).await.unwrap();
    assert_eq!(survivor.stats().await.unwrap().in_flight, 0);
}

#[tokio::test]
async fn a_live_worker_keeps_its_job_past_the_visibility_timeout_by_renewing_it() {
    let server = RedisServer::start();
    let prefix = server.prefix();
    let visibility = Duration::from_millis(300);
    let build = || leased(&server, &prefix, visibility);
    let (running, other) = (build(), build());
    let now = wall();
    running.push(job("slow", None), now).await.unwrap();
    let held = take(&running, now).await.unwrap();
    for _ in 0..6 {
        tokio::time::sleep(visibility / 2).await;
        assert!(
            take(&other, wall()).await.is_none(),
            "a renewed job is not taken over"
        );
    }
    running.complete(held.id).await.unwrap();
    assert_eq!(running.stats().await.unwrap().in_flight, 0);
}

#[tokio::test]
async fn a_job_lost_max_losses_times_is_dead_lettered_instead_of_crashing_another_worker() {
    let server = RedisServer::start();
    let prefix = server.prefix();
    let visibility = Duration::from_millis(200);
    let build = || {
        RedisJobStore::<String>::builder(connect(server.url(), &prefix), "jobs")
            .visibility_timeout(visibility)
            .max_losses(2)
            .build()
    };
    let first = build();
    first.push(job("poison", None), wall()).await.unwrap();
    take(&first, wall()).await.unwrap();
    drop(first);
    tokio::time::sleep(visibility * 2).await;
    let second = build();
    let again = take(&second, wall()).await.unwrap();
    assert_eq!(again.attempts, 1);
    drop(second);
    tokio::time::sleep(visibility * 2).await;
    let third = build();
    assert!(take(&third, wall()).await.is_none());
    let letters = third.dead_letters().await.unwrap();
    assert_eq!(letters.len(), 1);
    assert!(
        letters[0].error.contains("vanished"),
        "{}",
        letters[0].error
    );
    assert_eq!(letters[0].job.attempts, 2);
}

#[tokio::test]
async fn a_job_that_no_longer_deserialises_is_quarantined_and_the_queue_moves_on() {
    let server = RedisServer::start();
    let prefix = server.prefix();
    let redis = connect(server.url(), &prefix);
    let numbers = RedisJobStore::<u64>::builder(redis.clone(), "jobs").build();
    let strings = RedisJobStore::<String>::builder(redis, "jobs").build();
    let now = wall();
    numbers.push(Job::new(7), now).await.unwrap();
    strings.push(job("fine", None), now).await.unwrap();
    assert_eq!(take(&strings, now).await.unwrap().payload, "fine");
    let quarantined = strings.quarantined().await.unwrap();
    assert_eq!(quarantined.len(), 1);
    assert!(quarantined[0].1.contains("\"payload\":7"));
}

#[tokio::test]
async fn a_full_queue_and_an_unreachable_redis_hand_the_job_back() {
    let server = RedisServer::start();
    let prefix = server.prefix();
    let store = RedisJobStore::<String>::builder(connect(server.url(), &prefix), "jobs")
        .capacity(2)
        .build();
    let now = wall();
    store.push(job("1", None), now).await.unwrap();
    store.push(job("2", None), now).await.unwrap();
    match store.push(job("3", None), now).await {
        Err(PushError::Full { job, capacity }) => {
            assert_eq!((job.payload, capacity), ("3".into(), 2))
        }
        other => panic!("expected Full, got {other:?}"),
    }

    let nowhere =
        RedisJobStore::<String>::builder(connect("redis://127.0.0.1:1", &prefix), "jobs").build();
    match nowhere.push(job("4", None), now).await {
        Err(PushError::Store { job, error }) => {
            assert_eq!(job.payload, "4");
            assert!(error.0.contains("unreachable"), "{error}");
        }
        other => panic!("expected a store error, got {other:?}"),
    }
    assert!(nowhere.reserve(now).await.is_err());
}

#[tokio::test]
async fn drain_hands_back_waiting_jobs_oldest_first_and_leaves_in_flight_ones() {
    let server = RedisServer::start();
    let store = store(&server, &server.prefix());
    let now = wall();
    for (i, name) in ["a", "b", "c"].iter().enumerate() {
        let mut j = job(name, None);
        j.enqueued_at = secs(now, u64::try_from(i).unwrap());
        store.push(j, now).await.unwrap();
    }
    let a = take(&store, now).await.unwrap();
    let drained: Vec<String> = store
        .drain()
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.payload)
        .collect();
    assert_eq!(drained, ["b", "c"]);
    assert!(
        take(&store, now).await.is_none(),
        "drained entries are skipped"
    );
    let stats = store.stats().await.unwrap();
    assert_eq!((stats.depth, stats.in_flight), (0, 1));
    store.complete(a.id).await.unwrap();
}

#[tokio::test]
async fn a_work_queue_over_redis_runs_every_job_once_and_leaves_nothing_at_shutdown() {
    let server = RedisServer::start();
    let prefix = server.prefix();
    let store =
        Arc::new(RedisJobStore::<u32>::builder(connect(server.url(), &prefix), "jobs").build());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    let queue = WorkQueue::builder(move |n: u32, ctx: JobContext| {
        let record = Arc::clone(&record);
        async move {
            record.lock().unwrap().push((n, ctx.key));
            JobOutcome::done()
        }
    })
    .store(store.clone())
    .concurrency(8)
    .poll_interval(Duration::from_millis(50))
    .start();
    for n in 0..200 {
        queue.push(Job::new(n)).await.unwrap();
    }
    for _ in 0..200 {
        let stats = queue.stats().await.unwrap();
        if stats.depth == 0 && stats.in_flight == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let report = queue.shutdown(Duration::from_secs(5)).await;
    assert!(report.retained && report.errors.is_empty(), "{report:?}");
    let seen = seen.lock().unwrap().clone();
    let distinct: HashSet<u32> = seen.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        (seen.len(), distinct.len()),
        (200, 200),
        "each job ran once"
    );
    let stats = store.stats().await.unwrap();
    assert_eq!((stats.depth, stats.in_flight), (0, 0));
}

#[tokio::test]
async fn a_stopping_queue_leaves_waiting_jobs_in_redis_for_the_next_worker() {
    let server = RedisServer::start();
    let prefix = server.prefix();
    let redis = connect(server.url(), &prefix);
    let store = Arc::new(RedisJobStore::<u32>::builder(redis.clone(), "jobs").build());
    let queue = WorkQueue::builder(|_: u32, _: JobContext| async move {
        JobOutcome::park(
            Duration::from_secs(3600),
            "quota exhausted until the next hour",
        )
    })
    .store(store.clone())
    .concurrency(2)
    .poll_interval(Duration::from_millis(50))
    .start();
    for n in 0..5 {
        queue
            .push(Job::new(n).group("stripe:acct_1"))
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let report = queue.shutdown(Duration::from_secs(2)).await;
    assert!(report.retained);
    assert!(report.unrun.is_empty() && report.into_jobs().is_empty());

    let next = RedisJobStore::<u32>::builder(redis, "jobs").build();
    let stats = next.stats().await.unwrap();
    assert_eq!(stats.depth, 5, "{stats:?}");
    assert_eq!(stats.parked, 5, "the group is held for an hour: {stats:?}");
}
