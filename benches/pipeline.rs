//! The pipeline's overhead: one GET over loopback, raw `reqwest` against `Upstream::execute`.
//!
//! One `SimServer` on 127.0.0.1 (no limits, no faults, no latency) answers both. The pipeline
//! adds the breaker, the limiters (the generic provider's quota pacer, idle without quota
//! headers), the retry budget, the span, the request template and the response inspection to
//! the same `reqwest` round trip; the target is (b)/(a) ≤ 1.01. After the criterion group, an
//! interleaved run of both prints the ratio directly.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use criterion::{Criterion, criterion_group, criterion_main};
use ratewise::provider::RequestSpec;
use ratewise::transport::{ReqwestTransport, Transport, TransportError};
use ratewise::upstream::Upstream;
use ratewise_testkit::{GenericProvider, SimServer, SimUpstream};

/// A `reqwest` client configured as `ReqwestTransport` configures its own.
fn raw_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(ReqwestTransport::DEFAULT_CONNECT_TIMEOUT)
        .pool_idle_timeout(Duration::from_secs(90))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn raw_get(client: &reqwest::Client, url: &str) -> usize {
    let response = client.get(url).send().await.unwrap();
    assert!(response.status().is_success());
    response.bytes().await.unwrap().len()
}

async fn pipeline_get(upstream: &Upstream<GenericProvider>) -> usize {
    let response = upstream
        .execute(RequestSpec::get("/v1/things", "things.get"))
        .await
        .unwrap();
    response.body.len()
}

fn pipeline(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let sim = SimUpstream::builder().latency(Duration::ZERO).build();
    let server = rt.block_on(SimServer::start(sim)).unwrap();
    let url = format!("{}/v1/things", server.base_url());
    let raw = raw_client();
    let upstream = Upstream::builder(GenericProvider::new(), server.base_url())
        .build()
        .unwrap();

    let mut group = c.benchmark_group("pipeline_overhead");
    group.bench_function("raw_reqwest_get", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(raw_get(&raw, &url).await) })
    });
    group.bench_function("upstream_execute_get", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(pipeline_get(&upstream).await) })
    });
    group.finish();

    // The ratio, measured directly: alternating blocks so drift hits both alike.
    let (raw_time, pipeline_time) = rt.block_on(async {
        let (mut raw_time, mut pipeline_time) = (Duration::ZERO, Duration::ZERO);
        for _ in 0..20 {
            #[allow(clippy::disallowed_methods)] // a benchmark measures wall time itself
            let start = std::time::Instant::now();
            for _ in 0..250 {
                black_box(raw_get(&raw, &url).await);
            }
            raw_time += start.elapsed();
            #[allow(clippy::disallowed_methods)]
            let start = std::time::Instant::now();
            for _ in 0..250 {
                black_box(pipeline_get(&upstream).await);
            }
            pipeline_time += start.elapsed();
        }
        (raw_time, pipeline_time)
    });
    let per = |total: Duration| total / 5_000;
    println!(
        "pipeline_overhead: raw {:?}/GET, pipeline {:?}/GET, ratio (b)/(a) = {:.4}",
        per(raw_time),
        per(pipeline_time),
        pipeline_time.as_secs_f64() / raw_time.as_secs_f64()
    );
    rt.block_on(server.shutdown());
}

/// A transport that answers at once from memory: what is left is the pipeline's own CPU.
#[derive(Debug)]
struct Instant200;

#[async_trait::async_trait]
impl Transport for Instant200 {
    async fn send(
        &self,
        request: http::Request<Bytes>,
        _timeout: Duration,
    ) -> Result<http::Response<Bytes>, TransportError> {
        black_box(request);
        Ok(http::Response::new(Bytes::from_static(b"{\"id\":\"x\"}")))
    }
}

/// The pipeline's CPU per call, without a network: `Upstream::execute` over an in-memory
/// transport beside calling that transport directly with the same request.
fn pipeline_cpu(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let transport = Arc::new(Instant200);
    let upstream = Upstream::builder(GenericProvider::new(), "http://in-memory.test")
        .transport(transport.clone())
        .build()
        .unwrap();
    let mut group = c.benchmark_group("pipeline_cpu");
    group.bench_function("transport_direct", |b| {
        b.to_async(&rt).iter(|| async {
            let request = http::Request::get("http://in-memory.test/v1/things")
                .body(Bytes::new())
                .unwrap();
            black_box(
                transport
                    .send(request, Duration::from_secs(60))
                    .await
                    .unwrap(),
            )
        })
    });
    group.bench_function("upstream_execute", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(pipeline_get(&upstream).await) })
    });
    group.finish();
}

criterion_group!(benches, pipeline, pipeline_cpu);
criterion_main!(benches);
