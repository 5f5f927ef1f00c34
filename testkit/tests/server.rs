//! The simulated upstream over real HTTP (real time, real sockets, generous bounds).

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns may unwrap

use std::time::Duration;

use http::StatusCode;
use ratewise_testkit::{Fault, FaultPlan, ServerLimit, SimServer, SimUpstream};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

#[tokio::test]
async fn the_server_answers_over_http_with_limits_and_quota_headers() {
    let upstream = SimUpstream::builder()
        .limit(ServerLimit::fixed_window(2, Duration::from_secs(3600)))
        .latency(Duration::ZERO)
        .build();
    let server = SimServer::start(upstream).await.unwrap();
    assert!(server.addr().ip().is_loopback());
    let url = format!("{}/v1/charges", server.base_url());
    let client = client();
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let response = client
            .post(&url)
            .body("{\"amount\":1}")
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            let secs: u64 = response.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((3590..=3600).contains(&secs), "{secs}");
            assert_eq!(response.headers()["x-ratelimit-remaining"], "0");
        } else {
            let body: serde_json::Value =
                serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
            assert_eq!(body["object"], "charge");
            assert_eq!(body["request"]["amount"], 1);
        }
    }
    assert_eq!(statuses, [200, 200, 429]);
    let ledger = server.upstream().ledger();
    assert_eq!(ledger.side_effects("POST /v1/charges"), 2);
    assert_eq!(ledger.throttled(), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn a_reset_after_commit_is_a_broken_connection_with_the_charge_committed() {
    let upstream = SimUpstream::builder()
        .faults(FaultPlan::new().request(0, Fault::ResetAfterCommit))
        .build();
    let server = SimServer::start(upstream).await.unwrap();
    let url = format!("{}/v1/charges", server.base_url());
    let client = client();
    let send = || {
        client
            .post(&url)
            .header("idempotency-key", "order-42")
            .body("{}")
            .send()
    };
    let err = send().await.unwrap_err();
    assert!(!err.is_timeout(), "{err:?}");
    assert!(err.status().is_none(), "no response at all: {err:?}");
    let ledger = server.upstream().ledger();
    assert_eq!(ledger.side_effects("POST /v1/charges"), 1);
    assert_eq!(ledger.resets(), 1);

    let retry = send().await.unwrap();
    assert_eq!(retry.status(), StatusCode::OK);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    assert_eq!(ledger.side_effects("POST /v1/charges"), 1, "exactly once");
    assert_eq!(ledger.duplicates(), 0);
    server.shutdown().await;
}

#[tokio::test]
async fn the_core_reqwest_transport_sees_the_reset_as_an_interruption() {
    use bytes::Bytes;
    use ratewise_core::transport::{ReqwestTransport, Transport, TransportError};

    let upstream = SimUpstream::builder()
        .faults(FaultPlan::new().request(0, Fault::ResetAfterCommit))
        .build();
    let server = SimServer::start(upstream).await.unwrap();
    let request = http::Request::post(format!("{}/v1/charges", server.base_url()))
        .body(Bytes::from_static(b"{}"))
        .unwrap();
    let err = ReqwestTransport::new()
        .unwrap()
        .send(request, Duration::from_secs(10))
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::Interrupted { .. }), "{err:?}");
    assert_eq!(server.upstream().ledger().total_side_effects(), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn a_slow_response_times_the_client_out_after_the_server_committed() {
    let upstream = SimUpstream::builder()
        .faults(FaultPlan::new().request(0, Fault::slow(Duration::from_secs(3))))
        .build();
    let server = SimServer::start(upstream).await.unwrap();
    let err = reqwest::Client::new()
        .post(format!("{}/v1/charges", server.base_url()))
        .timeout(Duration::from_millis(500))
        .body("{}")
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert_eq!(server.upstream().ledger().total_side_effects(), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn an_outage_answers_503_over_http() {
    let upstream = SimUpstream::builder()
        .faults(FaultPlan::new().outage(Duration::ZERO, Duration::from_secs(3600)))
        .build();
    let server = SimServer::start(upstream).await.unwrap();
    let response = client()
        .get(format!("{}/v1/charges", server.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    server.shutdown().await;
}
