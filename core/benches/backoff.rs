//! Micro-benchmarks of the retry path's fixed costs: drawing a delay, and a retry-wrapped call
//! that succeeds first time (what every healthy call pays).

#![allow(clippy::unwrap_used)] // a bench may fail loudly on setup

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use fastrand::Rng;
use ratewise_core::backoff::Backoff;
use ratewise_core::error::Retryable;
use ratewise_core::retry::RetryPolicy;

#[derive(Debug)]
struct NeverFails;

impl Retryable for NeverFails {
    fn is_retryable(&self) -> bool {
        true
    }
}

fn full_jitter_delay(c: &mut Criterion) {
    let backoff = Backoff::new();
    let mut rng = Rng::with_seed(42);
    c.bench_function("backoff/full_jitter_delay", |b| {
        b.iter(|| backoff.delay(black_box(3), None, &mut rng))
    });
}

/// backon's exponential builder with jitter (its jitter is off by default), one delay drawn
/// per iteration from a fresh iterator advanced to the same attempt (3).
fn full_jitter_delay_peer_backon(c: &mut Criterion) {
    use backon::BackoffBuilder;
    let builder = backon::ExponentialBuilder::default()
        .with_jitter()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(30))
        .without_max_times();
    let mut delays = builder.build();
    c.bench_function("backoff/full_jitter_delay_peer_backon", |b| {
        b.iter(|| black_box(delays.next()))
    });
}

fn retry_happy_path(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let policy = RetryPolicy::new().deadline(Duration::from_secs(30));
    c.bench_function("retry/happy_path", |b| {
        b.iter(|| runtime.block_on(policy.retry(|| async { Ok::<_, NeverFails>(black_box(1u64)) })))
    });
}

fn retry_happy_path_peer_backon(c: &mut Criterion) {
    use backon::Retryable as _;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let builder = backon::ExponentialBuilder::default().with_jitter();
    c.bench_function("retry/happy_path_peer_backon", |b| {
        b.iter(|| {
            runtime.block_on(
                (|| async { Ok::<_, std::io::Error>(black_box(1u64)) })
                    .retry(builder)
                    .sleep(tokio::time::sleep),
            )
        })
    });
}

criterion_group!(
    benches,
    full_jitter_delay,
    full_jitter_delay_peer_backon,
    retry_happy_path,
    retry_happy_path_peer_backon
);
criterion_main!(benches);
