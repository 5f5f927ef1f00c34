//! The Redis-backed GCRA limiter against a real Redis (started by the test; see
//! `ratewise_testkit::redis`). Real time, generous bounds.

#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // test setup may fail loudly

use std::sync::Arc;
use std::time::Duration;

use ratewise_core::clock::{Clock, TokioClock};
use ratewise_core::limit::{CompositeLimiter, Cost, GcraLimiter, Limiter, Rate, ThrottleReason};
use ratewise_core::redis::{RedisConfig, RedisConnection, RedisErrorKind, RedisGcraLimiter};
use ratewise_testkit::redis::RedisServer;

fn connect(server: &RedisServer, prefix: &str) -> RedisConnection {
    RedisConnection::new(&RedisConfig::new(server.url()).prefix(prefix)).unwrap()
}

/// A connection to a loopback port nobody listens on.
fn nowhere() -> RedisConnection {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = RedisConfig::new(format!("redis://127.0.0.1:{port}"))
        .connect_timeout(Duration::from_millis(200))
        .response_timeout(Duration::from_millis(200));
    RedisConnection::new(&config).unwrap()
}

#[tokio::test]
async fn a_full_bucket_admits_the_burst_then_refuses_saying_when() {
    let server = RedisServer::start();
    let limiter = RedisGcraLimiter::new(
        connect(&server, &server.prefix()),
        "api",
        Rate::per_second(10),
    )
    .burst(5);
    for _ in 0..5 {
        let _ = limiter
            .acquire(&Cost::request(), Duration::ZERO)
            .await
            .unwrap();
    }
    let clock = TokioClock::new();
    let refused = limiter
        .acquire(&Cost::request(), Duration::ZERO)
        .await
        .unwrap_err();
    assert_eq!(refused.reason, ThrottleReason::WouldWait);
    let wait = refused.retry_after(clock.now()).unwrap();
    assert!(
        wait > Duration::from_millis(20) && wait <= Duration::from_millis(100),
        "one unit comes back 100 ms after the burst: {wait:?}"
    );
}

#[tokio::test]
async fn two_connections_on_one_key_share_one_budget() {
    let server = RedisServer::start();
    let prefix = server.prefix();
    let rate = Rate::per_minute(60);
    let a = RedisGcraLimiter::new(connect(&server, &prefix), "api", rate).burst(4);
    let b = RedisGcraLimiter::new(connect(&server, &prefix), "api", rate).burst(4);
    let other = RedisGcraLimiter::new(connect(&server, &prefix), "api", rate)
        .credential("acct_2")
        .burst(4);
    assert_eq!(a.key(), b.key());
    assert_ne!(a.key(), other.key());
    for limiter in [&a, &b, &a, &b] {
        let _ = limiter
            .acquire(&Cost::request(), Duration::ZERO)
            .await
            .unwrap();
    }
    assert!(a.acquire(&Cost::request(), Duration::ZERO).await.is_err());
    assert!(b.acquire(&Cost::request(), Duration::ZERO).await.is_err());
    let _ = other
        .acquire(&Cost::request(), Duration::ZERO)
        .await
        .unwrap();
}

#[tokio::test]
async fn acquire_sleeps_until_its_reserved_slot_and_refuses_at_once_past_max_wait() {
    let server = RedisServer::start();
    let limiter = RedisGcraLimiter::new(
        connect(&server, &server.prefix()),
        "api",
        Rate::per_second(5),
    )
    .burst(1);
    let clock = TokioClock::new();
    let _ = limiter
        .acquire(&Cost::request(), Duration::ZERO)
        .await
        .unwrap();
    let start = clock.now();
    let refused = limiter
        .acquire(&Cost::request(), Duration::from_millis(50))
        .await
        .unwrap_err();
    assert_eq!(refused.reason, ThrottleReason::WouldWait);
    assert!(
        clock.now() - start < Duration::from_millis(150),
        "refused without sleeping"
    );
    let _ = limiter
        .acquire(&Cost::request(), Duration::from_secs(2))
        .await
        .unwrap();
    let waited = clock.now() - start;
    assert!(
        waited >= Duration::from_millis(120) && waited < Duration::from_millis(1_000),
        "waited for the slot 200 ms after the first admission: {waited:?}"
    );
}

#[tokio::test]
async fn a_cost_above_the_burst_or_outside_the_budget_needs_no_round_trip() {
    let limiter = RedisGcraLimiter::new(nowhere(), "api", Rate::per_second(10)).burst(5);
    let refused = limiter
        .acquire(&Cost::none().with("requests", 6), Duration::from_secs(1))
        .await
        .unwrap_err();
    assert_eq!(refused.reason, ThrottleReason::ExceedsCapacity);
    let _ = limiter
        .acquire(&Cost::none().with("tokens", 100), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(limiter.unavailable_count(), 0);
}

#[tokio::test]
async fn try_acquire_defers_to_acquire_and_a_composite_asks_it_even_without_waiting() {
    let server = RedisServer::start();
    let shared = Arc::new(
        RedisGcraLimiter::new(
            connect(&server, &server.prefix()),
            "api",
            Rate::per_second(10),
        )
        .burst(1),
    );
    let refused = shared.try_acquire(&Cost::request()).unwrap_err();
    assert_eq!(refused.reason, ThrottleReason::Remote);
    let composite = CompositeLimiter::new()
        .with(Arc::new(GcraLimiter::new(Rate::per_second(100))))
        .with(shared.clone());
    let _ = composite
        .acquire(&Cost::request(), Duration::ZERO)
        .await
        .unwrap();
    let refused = composite
        .acquire(&Cost::request(), Duration::ZERO)
        .await
        .unwrap_err();
    assert_eq!(
        refused.reason,
        ThrottleReason::WouldWait,
        "the shared bucket is spent"
    );
}

#[tokio::test]
async fn unreachable_redis_fails_closed_with_a_typed_reason_or_open_to_a_local_limiter() {
    let closed = RedisGcraLimiter::new(nowhere(), "api", Rate::per_second(10));
    let refused = closed
        .acquire(&Cost::request(), Duration::from_secs(1))
        .await
        .unwrap_err();
    assert_eq!(refused.reason, ThrottleReason::Unavailable);
    assert_eq!(refused.until, None);
    assert_eq!(closed.unavailable_count(), 1);
    let error = closed
        .acquire_shared(&Cost::request(), Duration::ZERO)
        .await
        .unwrap_err();
    assert_eq!(error.kind, RedisErrorKind::Unreachable);

    let fallback = Arc::new(GcraLimiter::new(Rate::per_second(1)).burst(1));
    let open = RedisGcraLimiter::new(nowhere(), "api", Rate::per_second(10)).fail_open(fallback);
    let _ = open
        .acquire(&Cost::request(), Duration::ZERO)
        .await
        .unwrap();
    let refused = open
        .acquire(&Cost::request(), Duration::ZERO)
        .await
        .unwrap_err();
    assert_eq!(
        refused.reason,
        ThrottleReason::WouldWait,
        "the fallback's own budget"
    );
    assert_eq!(open.unavailable_count(), 2);
}

#[tokio::test]
async fn a_redis_restart_is_an_error_then_the_limiter_resumes() {
    let server = RedisServer::start();
    assert!(
        server.is_owned(),
        "install redis-server: apt-get install redis-server"
    );
    let limiter = RedisGcraLimiter::new(
        connect(&server, &server.prefix()),
        "api",
        Rate::per_second(100),
    );
    let _ = limiter
        .acquire(&Cost::request(), Duration::ZERO)
        .await
        .unwrap();
    server.kill();
    let error = limiter
        .acquire_shared(&Cost::request(), Duration::ZERO)
        .await
        .unwrap_err();
    assert!(error.is_unreachable(), "{error}");
    server.restart();
    let mut resumed = false;
    for _ in 0..50 {
        if let Ok(Ok(_permit)) = limiter
            .acquire_shared(&Cost::request(), Duration::ZERO)
            .await
        {
            resumed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(resumed, "admitted again once Redis was back");
}

#[tokio::test]
async fn reconcile_refunds_the_shared_bucket() {
    let server = RedisServer::start();
    let limiter = RedisGcraLimiter::new(
        connect(&server, &server.prefix()),
        "api",
        Rate::per_minute(60),
    )
    .burst(3);
    let three = Cost::none().with("requests", 3);
    let _ = limiter.acquire(&three, Duration::ZERO).await.unwrap();
    assert!(
        limiter
            .acquire(&Cost::request(), Duration::ZERO)
            .await
            .is_err()
    );
    limiter.reconcile(&three, &Cost::request());
    let mut refunded = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        if let Ok(Ok(_permit)) = limiter
            .acquire_shared(&Cost::none().with("requests", 2), Duration::ZERO)
            .await
        {
            refunded = true;
            break;
        }
    }
    assert!(refunded, "two of the three units came back");
    assert!(
        limiter
            .acquire(&Cost::request(), Duration::ZERO)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_cancelled_waiter_gives_its_reserved_slot_back() {
    let server = RedisServer::start();
    let limiter = RedisGcraLimiter::new(
        connect(&server, &server.prefix()),
        "api",
        Rate::per_second(2),
    )
    .burst(1);
    let _ = limiter
        .acquire(&Cost::request(), Duration::ZERO)
        .await
        .unwrap();
    // Reserves the slot at +500 ms, then is cancelled.
    let cancelled = tokio::time::timeout(
        Duration::from_millis(100),
        limiter.acquire(&Cost::request(), Duration::from_secs(5)),
    )
    .await;
    assert!(cancelled.is_err());
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Had the slot stayed reserved, the next one would be 500 ms away; it is free now.
    let _ = limiter
        .acquire(&Cost::request(), Duration::from_millis(50))
        .await
        .unwrap();
}
