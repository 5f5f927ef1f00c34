//! Limiter micro-benchmarks, side by side with governor in one run.
//!
//! Rates are huge so nothing is ever throttled: these measure the admission hot path.
//!
//! * `gcra/ratewise_try_acquire`: the default clock (`TokioClock`, i.e. `clock_gettime`).
//! * `gcra/ratewise_try_acquire_fast_clock` beside `gcra/governor_check`: the apples-to-apples
//!   pair, both reading the CPU's timestamp counter through quanta. Target: within 1.2×.
//! * `gcra/ratewise_try_acquire_manual_clock`: the limiter's own cost, nearly without a clock.
//! * `composite/*`: two budgets charged together (OpenAI's requests and tokens), both members on
//!   the composite's clock. `try_acquire_*` and `acquire_*` go through `Arc<dyn Limiter>` (so
//!   `acquire` boxes its future, as every trait-object call does); `acquire_concrete_*` calls
//!   the inherent, unboxed `CompositeLimiter::acquire`, as the upstream pipeline does.
//!   Target: ≤ 100 ns.
//! * `clock/*`: what one read of each clock costs (every admission reads it once).

use std::num::NonZeroU32;
use std::pin::pin;
use std::sync::{Arc, Barrier};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use governor::{Quota, RateLimiter};
use ratewise_core::clock::{Clock, FastClock, ManualClock, SharedClock, TokioClock};
use ratewise_core::limit::{BudgetName, CompositeLimiter, Cost, GcraLimiter, Limiter, Rate};
use std::hint::black_box;

fn unthrottled(budget: BudgetName) -> GcraLimiter {
    GcraLimiter::new(Rate::new(1_000_000_000, Duration::from_secs(1)))
        .burst(1_000_000_000)
        .budget(budget)
}

/// An OpenAI-style composite (tokens, then requests) whose members read `clock`.
fn two_budgets(clock: &SharedClock) -> CompositeLimiter {
    CompositeLimiter::new()
        .with(Arc::new(
            unthrottled(BudgetName::TOKENS).clock(clock.clone()),
        ))
        .with(Arc::new(
            unthrottled(BudgetName::REQUESTS).clock(clock.clone()),
        ))
        .clock(clock.clone())
}

fn governor() -> governor::DefaultDirectRateLimiter {
    RateLimiter::direct(Quota::per_second(NonZeroU32::MAX))
}

/// Runs `op` `iters` times on each of `threads` threads at once; returns the wall time.
fn contended(threads: usize, iters: u64, op: impl Fn() + Sync) -> Duration {
    let barrier = Barrier::new(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    #[allow(clippy::disallowed_methods)] // the bench measures real time
                    let start = Instant::now();
                    for _ in 0..iters {
                        op();
                    }
                    start.elapsed()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .max()
            .unwrap_or_default()
    })
}

fn gcra(c: &mut Criterion) {
    let mut group = c.benchmark_group("gcra");
    let ours = unthrottled(BudgetName::REQUESTS);
    let theirs = governor();
    let cost = Cost::request();
    group.bench_function("ratewise_try_acquire", |b| {
        b.iter(|| black_box(ours.try_acquire(black_box(&cost)).is_ok()))
    });
    let manual = ManualClock::new();
    let on_manual_clock = unthrottled(BudgetName::REQUESTS).clock(manual.shared());
    group.bench_function("ratewise_try_acquire_manual_clock", |b| {
        b.iter(|| black_box(on_manual_clock.try_acquire(black_box(&cost)).is_ok()))
    });
    let fast = unthrottled(BudgetName::REQUESTS).clock(FastClock::shared());
    group.bench_function("ratewise_try_acquire_fast_clock", |b| {
        b.iter(|| black_box(fast.try_acquire(black_box(&cost)).is_ok()))
    });
    group.bench_function("governor_check", |b| {
        b.iter(|| black_box(theirs.check().is_ok()))
    });
    group.bench_function("ratewise_try_acquire_2_threads", |b| {
        b.iter_custom(|iters| {
            contended(2, iters, || {
                black_box(ours.try_acquire(&cost).is_ok());
            })
        })
    });
    group.bench_function("governor_check_2_threads", |b| {
        b.iter_custom(|iters| {
            contended(2, iters, || {
                black_box(theirs.check().is_ok());
            })
        })
    });
    group.finish();
}

fn composite(c: &mut Criterion) {
    let mut group = c.benchmark_group("composite");
    let cost = Cost::request().with(BudgetName::TOKENS, 1);
    let mut cx = Context::from_waker(Waker::noop());
    let clocks: [(&str, SharedClock); 2] = [
        ("", TokioClock::shared()),
        ("_fast_clock", FastClock::shared()),
    ];
    for (suffix, clock) in clocks {
        // As the upstream pipeline holds it: the concrete type, whose `acquire` is not boxed.
        let concrete = two_budgets(&clock);
        group.bench_function(format!("acquire_concrete_2_budgets{suffix}"), |b| {
            b.iter(|| {
                let future = pin!(concrete.acquire(black_box(&cost), Duration::ZERO));
                black_box(matches!(future.poll(&mut cx), Poll::Ready(Ok(_))))
            })
        });
        // As a client holding `Arc<dyn Limiter>` calls it.
        let limiter: Arc<dyn Limiter> = Arc::new(two_budgets(&clock));
        group.bench_function(format!("acquire_2_budgets{suffix}"), |b| {
            b.iter(|| {
                let future = pin!(limiter.acquire(black_box(&cost), Duration::ZERO));
                black_box(matches!(future.poll(&mut cx), Poll::Ready(Ok(_))))
            })
        });
        group.bench_function(format!("try_acquire_2_budgets{suffix}"), |b| {
            b.iter(|| black_box(limiter.try_acquire(black_box(&cost)).is_ok()))
        });
    }
    group.finish();
}

/// What one read of the injected clock costs (every admission reads it once).
fn clock(c: &mut Criterion) {
    let clock: Arc<dyn Clock> = Arc::new(TokioClock::new());
    c.bench_function("clock/tokio_clock_now", |b| {
        b.iter(|| black_box(clock.now()))
    });
    let fast: Arc<dyn Clock> = Arc::new(FastClock::new());
    c.bench_function("clock/fast_clock_now", |b| b.iter(|| black_box(fast.now())));
    let base = fast.epoch();
    c.bench_function("clock/fast_clock_nanos_since", |b| {
        b.iter(|| black_box(fast.nanos_since(black_box(base))))
    });
    let quanta = quanta::Clock::new();
    c.bench_function("clock/quanta_now", |b| b.iter(|| black_box(quanta.now())));
    #[allow(clippy::disallowed_methods)] // the baseline the clock is compared with
    c.bench_function("clock/std_instant_now", |b| {
        b.iter(|| black_box(Instant::now()))
    });
}

criterion_group!(benches, gcra, composite, clock);
criterion_main!(benches);
