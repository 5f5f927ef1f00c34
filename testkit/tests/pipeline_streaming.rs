//! `Upstream::execute_streaming` end to end: over `SimTransport` in virtual time, and over a
//! `SimServer` with the reqwest transport in real time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use http::StatusCode;
use ratewise_core::clock::{SharedClock, TokioClock};
use ratewise_core::error::Error;
use ratewise_core::limit::ConcurrencyLimiter;
use ratewise_core::provider::RequestSpec;
use ratewise_core::transport::{BodyStream, TransportError};
use ratewise_core::upstream::{CallPolicy, Upstream, UpstreamBuilder};
use ratewise_testkit::{
    ChunkedBody, Fault, FaultPlan, GenericProvider, Handler, HandlerContext, SimServer, SimUpstream,
};

const LATENCY: Duration = Duration::from_millis(10);
const INTERVAL: Duration = Duration::from_millis(100);
const BODY: &[u8] = b"one\ntwo\nthree\n";

/// Answers every request with [`BODY`] in three pieces, `interval` apart.
#[derive(Debug)]
struct Trickle(Duration);

impl Handler for Trickle {
    fn handle(
        &self,
        _request: &http::Request<Bytes>,
        _ctx: &HandlerContext,
    ) -> http::Response<Bytes> {
        let mut response = http::Response::new(Bytes::from_static(BODY));
        response
            .extensions_mut()
            .insert(ChunkedBody::new([4, 8], self.0));
        response
    }
}

fn sim(faults: FaultPlan) -> SimUpstream {
    SimUpstream::builder()
        .handler(Trickle(INTERVAL))
        .faults(faults)
        .latency(LATENCY)
        .build()
}

fn client(sim: &SimUpstream) -> UpstreamBuilder<GenericProvider> {
    Upstream::builder(GenericProvider::new(), "http://sim.test")
        .transport(Arc::new(sim.transport()))
        .clock(sim.clock())
        .seed(7)
}

fn charge() -> RequestSpec {
    RequestSpec::post("/v1/charges", "charges.create").body("application/json", "{\"amount\":1}")
}

/// Every item of `body` with the time it arrived since `start`, on `clock`.
async fn drain(
    body: &mut BodyStream,
    clock: &SharedClock,
    start: Instant,
) -> Vec<(Duration, Result<Bytes, TransportError>)> {
    let mut items = Vec::new();
    while let Some(item) = body.next().await {
        items.push((clock.now() - start, item));
    }
    items
}

#[tokio::test(start_paused = true)]
async fn the_head_returns_first_and_the_body_follows_piece_by_piece() {
    let sim = sim(FaultPlan::new());
    let upstream = client(&sim).build().unwrap();
    let clock = sim.clock();
    let start = clock.now();
    let mut response = upstream.execute_streaming(charge()).await.unwrap();
    assert_eq!(clock.now() - start, LATENCY);
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.attempts, 1);
    assert!(
        response.idempotency_key.is_some(),
        "a POST gets a key minted"
    );
    // The breaker counted the call a success when the head arrived.
    let window = upstream.breaker().window_stats();
    assert_eq!((window.calls, window.failures), (1, 0));
    let items = drain(&mut response.body, &clock, start).await;
    let got: Vec<(Duration, Bytes)> = items.into_iter().map(|(at, c)| (at, c.unwrap())).collect();
    assert_eq!(
        got,
        vec![
            (LATENCY, Bytes::from_static(b"one\n")),
            (LATENCY + INTERVAL, Bytes::from_static(b"two\n")),
            (LATENCY + INTERVAL * 2, Bytes::from_static(b"three\n")),
        ]
    );
    let stats = upstream.stats();
    assert_eq!(
        (stats.calls, stats.succeeded_first_try, stats.streams_broken),
        (1, 1, 0)
    );
}

#[tokio::test(start_paused = true)]
async fn an_error_status_is_read_in_full_and_retried_like_execute() {
    let sim = sim(FaultPlan::new().request(0, Fault::unavailable()));
    let upstream = client(&sim).build().unwrap();
    let mut response = upstream.execute_streaming(charge()).await.unwrap();
    assert_eq!(response.attempts, 2);
    let body = std::mem::take(&mut response.body)
        .read_to_end()
        .await
        .unwrap();
    assert_eq!(body, BODY);
    assert_eq!(sim.ledger().requests(), 2);

    // Without a retry left, the 503's body is decoded into the typed error.
    let sim = self::sim(FaultPlan::new().request(0, Fault::unavailable()));
    let upstream = client(&sim)
        .policy(CallPolicy::new().max_attempts(1))
        .build()
        .unwrap();
    let err = upstream.execute_streaming(charge()).await.unwrap_err();
    let Error::Api {
        status,
        error: Some(api),
        ..
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(*status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(api.kind, "api_error");
}

#[tokio::test(start_paused = true)]
async fn a_body_broken_mid_way_is_an_item_error_and_never_retried() {
    let sim = sim(FaultPlan::new().request(0, Fault::reset_mid_body(1)));
    let upstream = client(&sim).build().unwrap();
    let clock = sim.clock();
    let start = clock.now();
    let mut response = upstream.execute_streaming(charge()).await.unwrap();
    let items = drain(&mut response.body, &clock, start).await;
    assert_eq!(items.len(), 2, "{items:?}");
    assert_eq!(items[0], (LATENCY, Ok(Bytes::from_static(b"one\n"))));
    let (at, Err(TransportError::Interrupted { .. })) = &items[1] else {
        panic!("{:?}", items[1]);
    };
    assert_eq!(*at, LATENCY + INTERVAL);
    // The break is counted, not held against the breaker: the call was a success at its head.
    let window = upstream.breaker().window_stats();
    assert_eq!((window.calls, window.failures), (1, 0));
    // One request, no retry, though three more attempts were allowed and the request carries
    // a key.
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(sim.ledger().requests(), 1);
    let stats = upstream.stats();
    assert_eq!(
        (stats.requests, stats.retries, stats.streams_broken),
        (1, 0, 1)
    );
}

#[tokio::test(start_paused = true)]
async fn a_concurrency_slot_is_held_until_the_body_ends_or_is_dropped() {
    let sim = sim(FaultPlan::new());
    let upstream = client(&sim)
        .limiter(Arc::new(ConcurrencyLimiter::new(1)))
        .policy(CallPolicy::new().max_wait(Duration::ZERO))
        .build()
        .unwrap();
    // From a spawned task: the call and its response are `Send`.
    let call = {
        let upstream = upstream.clone();
        tokio::spawn(async move { upstream.execute_streaming(charge()).await })
    };
    let mut first = call.await.unwrap().unwrap();
    let refused = upstream.execute_streaming(charge()).await.unwrap_err();
    assert!(matches!(refused, Error::Throttled { .. }), "{refused:?}");
    // Read to its end: the slot is free again.
    while first.body.next().await.is_some() {}
    let second = upstream.execute_streaming(charge()).await.unwrap();
    assert!(matches!(
        upstream.execute_streaming(charge()).await,
        Err(Error::Throttled { .. })
    ));
    // Dropped half read: free too.
    drop(second);
    upstream.execute_streaming(charge()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_real_sockets_pieces_arrive_as_they_leave_and_a_break_is_an_item_error() {
    let interval = Duration::from_millis(300);
    let sim = SimUpstream::builder()
        .handler(Trickle(interval))
        .faults(FaultPlan::new().request(1, Fault::reset_mid_body(2)))
        .build();
    let server = SimServer::start(sim.clone()).await.unwrap();
    let upstream = Upstream::builder(GenericProvider::new(), server.base_url())
        .seed(7)
        .build()
        .unwrap();

    let clock = TokioClock::shared();
    let start = clock.now();
    let mut response = upstream.execute_streaming(charge()).await.unwrap();
    let items = drain(&mut response.body, &clock, start).await;
    let body: Vec<u8> = items
        .iter()
        .flat_map(|(_, c)| c.as_ref().unwrap().to_vec())
        .collect();
    assert_eq!(body, BODY);
    // The first bytes came at least one interval before the last: not buffered.
    let first = items.first().unwrap().0;
    let last = items.last().unwrap().0;
    assert!(last - first >= interval, "first {first:?}, last {last:?}");

    let mut response = upstream.execute_streaming(charge()).await.unwrap();
    let items = drain(&mut response.body, &clock, clock.now()).await;
    let (data, errors): (Vec<_>, Vec<_>) =
        items.into_iter().map(|(_, c)| c).partition(Result::is_ok);
    let data: Vec<u8> = data.into_iter().flat_map(|c| c.unwrap().to_vec()).collect();
    assert_eq!(data, b"one\ntwo\n");
    assert!(
        matches!(errors.as_slice(), [Err(TransportError::Interrupted { .. })]),
        "{errors:?}"
    );
    assert_eq!(sim.ledger().requests(), 2);
    assert_eq!(upstream.stats().streams_broken, 1);
    server.shutdown().await;
}
