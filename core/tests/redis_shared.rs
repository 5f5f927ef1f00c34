//! Redis-shared quota exhaustion, breaker signal and dedupe store against a real Redis
//! (started by the test; see `ratewise_testkit::redis`). Real time, generous bounds.

#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // test setup may fail loudly

use std::sync::Arc;
use std::time::Duration;

use ratewise_core::breaker::{BreakerConfig, BreakerState, CircuitBreaker};
use ratewise_core::clock::{Clock, TokioClock};
use ratewise_core::dedupe::{Claim, DedupeStore};
use ratewise_core::limit::{BudgetName, Cost, Limiter, QuotaPacer, QuotaSnapshot, ThrottleReason};
use ratewise_core::redis::{
    RedisConfig, RedisConnection, RedisDedupe, SharedBreakerSignal, SharedQuota,
};
use ratewise_testkit::redis::RedisServer;

const TTL: Duration = Duration::from_secs(60);

fn connect(server: &RedisServer, prefix: &str) -> RedisConnection {
    RedisConnection::new(&RedisConfig::new(server.url()).prefix(prefix)).unwrap()
}

fn shared_quota(redis: RedisConnection) -> SharedQuota {
    let pacer =
        Arc::new(QuotaPacer::new(BudgetName::REQUESTS).initial(1_000, Duration::from_secs(60)));
    SharedQuota::new(redis, "github", BudgetName::REQUESTS, pacer).refresh(Duration::ZERO)
}

fn exhausted_for(left: Duration) -> QuotaSnapshot {
    let now = TokioClock::new().now();
    QuotaSnapshot::new(BudgetName::REQUESTS, 0, now + left, now)
}

#[tokio::test]
async fn one_worker_seeing_remaining_zero_holds_every_workers_budget_until_the_reset() {
    let server = RedisServer::start();
    let prefix = server.prefix();
    let (seen_by, other) = (
        shared_quota(connect(&server, &prefix)),
        shared_quota(connect(&server, &prefix)),
    );
    let _ = other
        .acquire(&Cost::request(), Duration::ZERO)
        .await
        .unwrap();

    let until = seen_by
        .publish(&exhausted_for(Duration::from_secs(3)))
        .await
        .unwrap()
        .unwrap();
    let refused = other
        .acquire(&Cost::request(), Duration::ZERO)
        .await
        .unwrap_err();
    assert_eq!(refused.reason, ThrottleReason::QuotaExhausted);
    let held = refused.until.unwrap();
    let gap = if held > until {
        held - until
    } else {
        until - held
    };
    assert!(
        gap < Duration::from_millis(200),
        "held until the published reset: {gap:?}"
    );
}

#[tokio::test]
async fn with_redis_unreachable_the_quota_paces_on_local_state_and_sync_says_why() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = RedisConfig::new(format!("redis://127.0.0.1:{port}"))
        .connect_timeout(Duration::from_millis(200))
        .response_timeout(Duration::from_millis(200));
    let quota = shared_quota(RedisConnection::new(&config).unwrap());
    let error = quota.sync().await.unwrap_err();
    assert!(error.is_unreachable(), "{error}");
    let _ = quota
        .acquire(&Cost::request(), Duration::ZERO)
        .await
        .unwrap();
    quota.observe(&exhausted_for(Duration::from_secs(5)));
    let refused = quota
        .acquire(&Cost::request(), Duration::ZERO)
        .await
        .unwrap_err();
    assert_eq!(
        refused.reason,
        ThrottleReason::QuotaExhausted,
        "local state still holds"
    );
}

#[tokio::test]
async fn a_shared_reset_never_moves_backwards_and_only_exhaustion_is_published() {
    let server = RedisServer::start();
    let quota = shared_quota(connect(&server, &server.prefix()));
    let now = TokioClock::new().now();
    let later = quota
        .publish(&exhausted_for(Duration::from_secs(10)))
        .await
        .unwrap()
        .unwrap();
    let after_stale = quota
        .publish(&exhausted_for(Duration::from_secs(2)))
        .await
        .unwrap()
        .unwrap();
    assert!(
        after_stale + Duration::from_millis(200) >= later,
        "a stale, earlier reset is ignored"
    );
    assert!(after_stale > now + Duration::from_secs(9));
    let not_exhausted = QuotaSnapshot::new(BudgetName::REQUESTS, 5, now + TTL, now);
    assert_eq!(quota.publish(&not_exhausted).await.unwrap(), None);
    assert!(quota.sync().await.unwrap().unwrap() > now + Duration::from_secs(9));
}

#[tokio::test]
async fn observe_publishes_an_exhausted_snapshot_in_the_background() {
    let server = RedisServer::start();
    let prefix = server.prefix();
    let (seen_by, other) = (
        shared_quota(connect(&server, &prefix)),
        shared_quota(connect(&server, &prefix)),
    );
    seen_by.observe(&exhausted_for(Duration::from_secs(5)));
    let mut held = None;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        held = other.sync().await.unwrap();
        if held.is_some() {
            break;
        }
    }
    assert!(held.is_some(), "the other worker sees the exhaustion");
    assert!(other.try_acquire(&Cost::request()).is_err());
}

#[tokio::test]
async fn one_breaker_opening_opens_the_others_until_the_same_time() {
    let server = RedisServer::start();
    let prefix = server.prefix();
    let clock = TokioClock::shared();
    let (a, b) = (
        CircuitBreaker::new(BreakerConfig::new(), clock.clone()),
        CircuitBreaker::new(BreakerConfig::new(), clock.clone()),
    );
    let signal_a = SharedBreakerSignal::new(connect(&server, &prefix), "stripe");
    let signal_b = SharedBreakerSignal::new(connect(&server, &prefix), "stripe");
    let _task_a = signal_a.attach(&a, Duration::from_millis(20));
    let _task_b = signal_b.attach(&b, Duration::from_millis(20));
    assert_eq!(b.state(), BreakerState::Closed);

    let until = clock.now() + Duration::from_secs(5);
    a.open_until(until);
    let mut opened = None;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        if let BreakerState::Open { until } = b.state() {
            opened = Some(until);
            break;
        }
    }
    let opened = opened.expect("b opened from a's signal");
    let gap = if opened > until {
        opened - until
    } else {
        until - opened
    };
    assert!(
        gap < Duration::from_millis(200),
        "open until the same time: {gap:?}"
    );
    assert!(b.admit().is_err());
}

#[tokio::test]
async fn a_published_open_period_is_read_back_and_never_shortened() {
    let server = RedisServer::start();
    let signal = SharedBreakerSignal::new(connect(&server, &server.prefix()), "stripe");
    let clock = TokioClock::new();
    assert_eq!(signal.fetch().await.unwrap(), None);
    let long = clock.now() + Duration::from_secs(30);
    let _ = signal.publish(long).await.unwrap();
    let after = signal
        .publish(clock.now() + Duration::from_secs(1))
        .await
        .unwrap()
        .unwrap();
    assert!(after + Duration::from_millis(200) >= long);
    let breaker = CircuitBreaker::new(BreakerConfig::new(), TokioClock::shared());
    assert!(signal.apply(&breaker).await.unwrap().is_some());
    assert!(matches!(breaker.state(), BreakerState::Open { .. }));
}

#[tokio::test]
async fn dedupe_claims_once_then_pending_then_done_with_the_record() {
    let server = RedisServer::start();
    let store = RedisDedupe::new(connect(&server, &server.prefix()));
    assert_eq!(store.claim("SM1", TTL).await.unwrap(), Claim::Fresh);
    assert_eq!(store.claim("SM1", TTL).await.unwrap(), Claim::Pending);
    store.complete("SM1", "SMabc", TTL).await.unwrap();
    assert_eq!(
        store.claim("SM1", TTL).await.unwrap(),
        Claim::Done("SMabc".into())
    );
    // A record that looks like the pending marker is still a record.
    store.complete("SM2", "p", TTL).await.unwrap();
    assert_eq!(
        store.claim("SM2", TTL).await.unwrap(),
        Claim::Done("p".into())
    );
}

#[tokio::test]
async fn dedupe_release_frees_a_pending_claim_but_never_a_record() {
    let server = RedisServer::start();
    let store = RedisDedupe::new(connect(&server, &server.prefix())).namespace("twilio");
    assert_eq!(store.claim("k", TTL).await.unwrap(), Claim::Fresh);
    store.release("k").await.unwrap();
    assert_eq!(store.claim("k", TTL).await.unwrap(), Claim::Fresh);
    store.complete("k", "done", TTL).await.unwrap();
    store.release("k").await.unwrap();
    assert_eq!(
        store.claim("k", TTL).await.unwrap(),
        Claim::Done("done".into())
    );
}

#[tokio::test]
async fn dedupe_claims_expire_after_their_time_to_live() {
    let server = RedisServer::start();
    let store = RedisDedupe::new(connect(&server, &server.prefix()));
    assert_eq!(
        store.claim("k", Duration::from_millis(50)).await.unwrap(),
        Claim::Fresh
    );
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(store.claim("k", TTL).await.unwrap(), Claim::Fresh);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_claims_from_separate_connections_admit_exactly_one() {
    let server = RedisServer::start();
    let prefix = server.prefix();
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let store = RedisDedupe::new(connect(&server, &prefix));
            tokio::spawn(async move { store.claim("evt_1", TTL).await.unwrap() })
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

#[tokio::test]
async fn dedupe_with_redis_unreachable_is_an_error_and_claims_nothing() {
    let server = RedisServer::start();
    assert!(
        server.is_owned(),
        "install redis-server: apt-get install redis-server"
    );
    let config = RedisConfig::new(server.url())
        .prefix(server.prefix())
        .response_timeout(Duration::from_millis(300))
        .connect_timeout(Duration::from_millis(300));
    let store = RedisDedupe::new(RedisConnection::new(&config).unwrap());
    assert_eq!(store.claim("a", TTL).await.unwrap(), Claim::Fresh);
    server.kill();
    let error = store.claim("b", TTL).await.unwrap_err();
    assert!(error.to_string().contains("unreachable"), "{error}");
    server.restart();
    let mut claimed = None;
    for _ in 0..50 {
        if let Ok(claim) = store.claim("b", TTL).await {
            claimed = Some(claim);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        claimed,
        Some(Claim::Fresh),
        "the failed claim left nothing behind"
    );
}
