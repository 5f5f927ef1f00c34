//! The idempotency store's three behaviours, and exactly-once across an ambiguous failure.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns may unwrap

use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use ratewise_core::idempotency::IdempotencyKey;
use ratewise_core::transport::{Transport, TransportError};
use ratewise_testkit::{Fault, FaultPlan, GenericDialect, SimUpstream};

const LONG: Duration = Duration::from_secs(60);

fn charge(key: &IdempotencyKey, body: &'static str) -> http::Request<Bytes> {
    http::Request::post("http://sim/v1/charges")
        .header("idempotency-key", key.header_value())
        .body(Bytes::from_static(body.as_bytes()))
        .unwrap()
}

fn json(response: &http::Response<Bytes>) -> serde_json::Value {
    serde_json::from_slice(response.body()).unwrap()
}

#[tokio::test(start_paused = true)]
async fn the_same_key_and_body_replays_the_stored_response() {
    let upstream = SimUpstream::builder().build();
    let transport = upstream.transport();
    let key = IdempotencyKey::new();
    let first = transport
        .send(charge(&key, r#"{"amount":100}"#), LONG)
        .await
        .unwrap();
    let again = transport
        .send(charge(&key, r#"{"amount":100}"#), LONG)
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(json(&again)["id"], json(&first)["id"]);
    assert!(first.headers().get("idempotent-replayed").is_none());
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let ledger = upstream.ledger();
    assert_eq!(ledger.side_effects("POST /v1/charges"), 1);
    assert_eq!(ledger.side_effects_for("POST /v1/charges", key.as_str()), 1);
    assert_eq!(ledger.replays(), 1);
    assert_eq!(ledger.duplicates(), 0);
}

#[tokio::test(start_paused = true)]
async fn the_same_key_with_other_parameters_is_an_idempotency_error() {
    let upstream = SimUpstream::builder().build();
    let transport = upstream.transport();
    let key = IdempotencyKey::new();
    transport
        .send(charge(&key, r#"{"amount":100}"#), LONG)
        .await
        .unwrap();
    let other = transport
        .send(charge(&key, r#"{"amount":200}"#), LONG)
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json(&other)["error"]["type"], "idempotency_error");
    assert_eq!(upstream.ledger().total_side_effects(), 1);
}

#[tokio::test(start_paused = true)]
async fn the_same_key_while_the_first_is_in_flight_is_a_conflict() {
    let upstream = SimUpstream::builder()
        .latency(Duration::from_secs(2))
        .build();
    let transport = upstream.transport();
    let key = IdempotencyKey::new();
    let first = {
        let (transport, key) = (transport.clone(), key.clone());
        tokio::spawn(async move { transport.send(charge(&key, "{}"), LONG).await })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let second = transport.send(charge(&key, "{}"), LONG).await.unwrap();
    assert_eq!(second.status(), StatusCode::CONFLICT);
    assert_eq!(first.await.unwrap().unwrap().status(), StatusCode::OK);
    assert_eq!(upstream.ledger().total_side_effects(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_a_reset_after_commit_replays_instead_of_charging_twice() {
    let upstream = SimUpstream::builder()
        .faults(FaultPlan::new().request(0, Fault::ResetAfterCommit))
        .build();
    let transport = upstream.transport();
    let key = IdempotencyKey::new();
    let err = transport.send(charge(&key, "{}"), LONG).await.unwrap_err();
    assert!(matches!(err, TransportError::Interrupted { .. }));
    assert_eq!(
        upstream.ledger().side_effects("POST /v1/charges"),
        1,
        "committed"
    );
    let retry = transport.send(charge(&key, "{}"), LONG).await.unwrap();
    assert_eq!(retry.status(), StatusCode::OK);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    let ledger = upstream.ledger();
    assert_eq!(ledger.side_effects("POST /v1/charges"), 1, "exactly once");
    assert_eq!(ledger.duplicates(), 0);
    assert_eq!(ledger.requests(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_throttled_or_failed_attempt_stores_nothing_so_its_retry_runs() {
    let upstream = SimUpstream::builder()
        .faults(
            FaultPlan::new()
                .request(0, Fault::throttle(Duration::from_secs(1)))
                .request(1, Fault::unavailable()),
        )
        .build();
    let transport = upstream.transport();
    let key = IdempotencyKey::new();
    let statuses = [
        transport.send(charge(&key, "{}"), LONG).await.unwrap(),
        transport.send(charge(&key, "{}"), LONG).await.unwrap(),
        transport.send(charge(&key, "{}"), LONG).await.unwrap(),
    ]
    .map(|r| r.status().as_u16());
    assert_eq!(statuses, [429, 503, 200]);
    assert_eq!(upstream.ledger().side_effects("POST /v1/charges"), 1);
    assert_eq!(upstream.ledger().replays(), 0);
}

#[tokio::test(start_paused = true)]
async fn the_idempotency_header_name_comes_from_the_dialect() {
    let upstream = SimUpstream::builder()
        .dialect(
            GenericDialect::default()
                .idempotency_header(Some(http::HeaderName::from_static("x-request-key"))),
        )
        .build();
    let transport = upstream.transport();
    let send = || {
        let request = http::Request::post("http://sim/v1/charges")
            .header("x-request-key", "abc")
            .body(Bytes::new())
            .unwrap();
        transport.send(request, LONG)
    };
    send().await.unwrap();
    let again = send().await.unwrap();
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(
        upstream
            .ledger()
            .side_effects_for("POST /v1/charges", "abc"),
        1
    );
}
