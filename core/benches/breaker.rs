//! Cost of the circuit breaker on the hot path: admit a call and record its outcome.
//!
//! * `breaker/admit_record/uncontended`: one thread, closed breaker, real clock (`TokioClock`
//!   outside a runtime reads the monotonic clock). Target: ≤ 40 ns.
//! * `breaker/admit_record/fast_clock`: the same with a `FastClock` (the CPU's timestamp
//!   counter, ~10 ns a read): what a service that opts into it pays.
//! * `breaker/admit_record/manual_clock`: the same with a `ManualClock`, isolating the
//!   breaker's own cost from the clock read.
//! * `breaker/admit_record/2_threads`: two threads admitting and recording on one breaker at
//!   once; the time is wall time per admit/record pair per thread.
//! * `breaker/admit_refused`: an open breaker failing fast.
//! * `breaker/reference/*`: a clock read and an `Arc` clone, to read the others against on a
//!   loaded machine.

use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use ratewise_core::breaker::{BreakerConfig, CircuitBreaker, Outcome};
use ratewise_core::clock::{Clock, FastClock, ManualClock, SharedClock, TokioClock};

fn closed(clock: SharedClock) -> CircuitBreaker {
    CircuitBreaker::new(BreakerConfig::default().name("bench"), clock)
}

fn admit_record(breaker: &CircuitBreaker) {
    if let Ok(permit) = black_box(breaker).admit() {
        permit.record(black_box(Outcome::Success));
    }
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("breaker/admit_record");

    let breaker = closed(TokioClock::shared());
    group.bench_function("uncontended", |b| b.iter(|| admit_record(&breaker)));

    let breaker = closed(FastClock::shared());
    group.bench_function("fast_clock", |b| b.iter(|| admit_record(&breaker)));

    let breaker = closed(ManualClock::new().shared());
    group.bench_function("manual_clock", |b| b.iter(|| admit_record(&breaker)));

    let breaker = closed(TokioClock::shared());
    group.bench_function("2_threads", |b| {
        b.iter_custom(|iters| {
            let start = Barrier::new(2);
            std::thread::scope(|s| {
                let worker = s.spawn(|| {
                    start.wait();
                    for _ in 0..iters {
                        admit_record(&breaker);
                    }
                });
                start.wait();
                #[allow(clippy::disallowed_methods)] // a benchmark measures real time
                let began = Instant::now();
                for _ in 0..iters {
                    admit_record(&breaker);
                }
                let _ = worker.join();
                began.elapsed()
            })
        })
    });
    group.finish();

    // Reference points on the same machine and load: the clock read and an Arc clone/drop.
    let clock = TokioClock::shared();
    c.bench_function("breaker/reference/clock_now", |b| {
        b.iter(|| black_box(&clock).now())
    });
    let clock = FastClock::shared();
    c.bench_function("breaker/reference/fast_clock_now", |b| {
        b.iter(|| black_box(&clock).now())
    });
    let arc = std::sync::Arc::new(0u64);
    c.bench_function("breaker/reference/arc_clone_drop", |b| {
        b.iter(|| drop(black_box(std::sync::Arc::clone(black_box(&arc)))))
    });

    let clock = ManualClock::new();
    let breaker = closed(clock.shared());
    breaker.open_until(clock.now() + Duration::from_secs(3600));
    c.bench_function("breaker/admit_refused", |b| {
        b.iter(|| black_box(black_box(&breaker).admit()).is_err())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
