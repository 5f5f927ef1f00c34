//! Server-hint parsing cost, one header value per iteration, side by side with the `httpdate`
//! crate (what hyper-based stacks use for HTTP dates) and `str::parse` for delta-seconds.

use std::hint::black_box;
use std::time::{Duration, SystemTime};

use criterion::{Criterion, criterion_group, criterion_main};
use ratewise_core::hint::{parse_retry_after, parse_retry_after_ms};

const IMF: &[u8] = b"Wed, 21 Oct 2026 07:28:00 GMT";
const RFC850: &[u8] = b"Sunday, 06-Nov-94 08:49:37 GMT";

fn retry_after(c: &mut Criterion) {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_789_683_651);
    let mut group = c.benchmark_group("retry_after");
    group.bench_function("seconds", |b| {
        b.iter(|| parse_retry_after(black_box(b"120"), now))
    });
    group.bench_function("seconds_peer_str_parse", |b| {
        b.iter(|| {
            std::str::from_utf8(black_box(b"120"))
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .map(Duration::from_secs)
        })
    });
    group.bench_function("http_date", |b| {
        b.iter(|| parse_retry_after(black_box(IMF), now))
    });
    group.bench_function("http_date_peer_httpdate", |b| {
        b.iter(|| {
            std::str::from_utf8(black_box(IMF))
                .ok()
                .and_then(|s| httpdate::parse_http_date(s).ok())
                .map(|t| t.duration_since(now).unwrap_or(Duration::ZERO))
        })
    });
    group.bench_function("rfc850", |b| {
        b.iter(|| parse_retry_after(black_box(RFC850), now))
    });
    group.bench_function("rfc850_peer_httpdate", |b| {
        b.iter(|| {
            std::str::from_utf8(black_box(RFC850))
                .ok()
                .and_then(|s| httpdate::parse_http_date(s).ok())
                .map(|t| t.duration_since(now).unwrap_or(Duration::ZERO))
        })
    });
    group.finish();
    c.bench_function("retry_after_ms", |b| {
        b.iter(|| parse_retry_after_ms(black_box(b"644.5")))
    });
}

criterion_group!(benches, retry_after);
criterion_main!(benches);
