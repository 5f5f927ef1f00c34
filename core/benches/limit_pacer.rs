//! Cost of one admission decision of the quota pacer and the adaptive limiter.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use ratewise_core::clock::{Clock, ManualClock};
use ratewise_core::limit::{
    AdaptiveLimiter, BudgetName, Cost, Feedback, Limiter, QuotaPacer, QuotaSnapshot,
};

fn pacer(c: &mut Criterion) {
    let mut group = c.benchmark_group("limit_pacer");
    let cost = Cost::request();

    let clock = ManualClock::new();
    let free = QuotaPacer::new(BudgetName::REQUESTS).clock(clock.shared());
    group.bench_function("try_acquire_free", |b| {
        b.iter(|| black_box(free.try_acquire(black_box(&cost)).is_ok()))
    });

    // A window so large that pacing admits every call: the full admission path.
    let paced = QuotaPacer::new(BudgetName::REQUESTS)
        .burst_share(1.0)
        .clock(clock.shared());
    let now = clock.now();
    paced.observe(
        &QuotaSnapshot::new(
            BudgetName::REQUESTS,
            u64::MAX / 2,
            now + Duration::from_secs(3_600),
            now,
        )
        .with_limit(u64::MAX / 2),
    );
    group.bench_function("try_acquire_paced", |b| {
        b.iter(|| black_box(paced.try_acquire(black_box(&cost)).is_ok()))
    });

    let snapshot = QuotaSnapshot::new(
        BudgetName::REQUESTS,
        4_000,
        now + Duration::from_secs(3_600),
        now,
    );
    group.bench_function("observe", |b| {
        b.iter(|| paced.observe(black_box(&snapshot)))
    });
    group.finish();
}

fn adaptive(c: &mut Criterion) {
    let mut group = c.benchmark_group("limit_adaptive");
    let cost = Cost::request();
    let clock = ManualClock::new();
    let limiter = AdaptiveLimiter::new().clock(clock.shared());
    group.bench_function("try_acquire_disabled", |b| {
        b.iter(|| black_box(limiter.try_acquire(black_box(&cost)).is_ok()))
    });
    limiter.feedback(Feedback::Throttled);
    group.bench_function("try_acquire_refused", |b| {
        b.iter(|| black_box(limiter.try_acquire(black_box(&cost)).is_ok()))
    });
    group.bench_function("feedback_accepted", |b| {
        b.iter(|| limiter.feedback(black_box(Feedback::Accepted)))
    });
    group.finish();
}

criterion_group!(benches, pacer, adaptive);
criterion_main!(benches);
