//! Server-hint parsing cost: one header value per iteration.

use std::hint::black_box;
use std::time::{Duration, SystemTime};

use criterion::{Criterion, criterion_group, criterion_main};
use ratewise_core::hint::{parse_retry_after, parse_retry_after_ms};

fn retry_after(c: &mut Criterion) {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_789_683_651);
    let mut group = c.benchmark_group("retry_after");
    group.bench_function("seconds", |b| {
        b.iter(|| parse_retry_after(black_box(b"120"), now))
    });
    group.bench_function("http_date", |b| {
        b.iter(|| parse_retry_after(black_box(b"Wed, 21 Oct 2026 07:28:00 GMT"), now))
    });
    group.bench_function("rfc850", |b| {
        b.iter(|| parse_retry_after(black_box(b"Sunday, 06-Nov-94 08:49:37 GMT"), now))
    });
    group.finish();
    c.bench_function("retry_after_ms", |b| {
        b.iter(|| parse_retry_after_ms(black_box(b"644.5")))
    });
}

criterion_group!(benches, retry_after);
criterion_main!(benches);
