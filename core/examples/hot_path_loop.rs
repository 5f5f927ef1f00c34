//! The limiters' and the breaker's hot paths in a plain loop, for instruction counting.
//!
//! Wall-clock benches are noisy on a shared machine; instruction counts are not. Count only
//! the loop (`repeat`, never inlined) and divide by the iterations:
//!
//! ```text
//! cargo build --release -p ratewise-core --example hot_path_loop
//! valgrind --tool=callgrind --toggle-collect='hot_path_loop::repeat*' \
//!     --callgrind-out-file=/dev/null target/release/examples/hot_path_loop gcra_fast 100000
//! ```
//!
//! Cases: `governor` (governor's `check()`, the peer), `gcra_fast`, `gcra_manual`,
//! `gcra_tokio`, `composite_try_fast`, `composite_acquire_fast` (through `dyn Limiter`, boxed),
//! `composite_acquire_concrete_fast` (the inherent, unboxed `acquire`), `breaker_fast`,
//! `breaker_manual`, `clock_fast`, `quanta`.
//!
//! `hot_path_loop race ROUNDS` instead times governor, the GCRA, the composite and the breaker
//! (all on `FastClock`) in alternating rounds of 1,000,000 calls and prints the fastest round
//! of each: on a loaded machine the minimum is the least disturbed estimate. Code layout moves
//! these by a few nanoseconds (adding a case once kept governor's `check` from being inlined
//! here: 55 → 96 instructions, 12 → 15 ns), so compare binaries built from the same harness.

use std::hint::black_box;
use std::num::NonZeroU32;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use governor::{Quota, RateLimiter};
use ratewise_core::breaker::{BreakerConfig, CircuitBreaker, Outcome};
use ratewise_core::clock::{FastClock, ManualClock, SharedClock, TokioClock};
use ratewise_core::limit::{BudgetName, CompositeLimiter, Cost, GcraLimiter, Limiter, Rate};

fn unthrottled(budget: BudgetName, clock: SharedClock) -> GcraLimiter {
    GcraLimiter::new(Rate::new(1_000_000_000, Duration::from_secs(1)))
        .burst(1_000_000_000)
        .budget(budget)
        .clock(clock)
}

fn two_budgets(clock: &SharedClock) -> Arc<dyn Limiter> {
    Arc::new(
        CompositeLimiter::new()
            .with(Arc::new(unthrottled(BudgetName::TOKENS, clock.clone())))
            .with(Arc::new(unthrottled(BudgetName::REQUESTS, clock.clone())))
            .clock(clock.clone()),
    )
}

#[inline(never)]
fn repeat(iters: u64, mut op: impl FnMut() -> bool) -> u64 {
    let mut admitted = 0_u64;
    for _ in 0..iters {
        admitted = admitted.wrapping_add(u64::from(black_box(op())));
    }
    admitted
}

/// Nanoseconds per call of `op` over `iters` calls.
#[allow(clippy::disallowed_methods)] // a timing harness reads the real clock
fn time(iters: u64, op: impl FnMut() -> bool) -> f64 {
    let start = std::time::Instant::now();
    black_box(repeat(iters, op));
    start.elapsed().as_nanos() as f64 / iters as f64
}

fn race(rounds: u32) {
    let ours = unthrottled(BudgetName::REQUESTS, FastClock::shared());
    let theirs = RateLimiter::direct(Quota::per_second(NonZeroU32::MAX));
    let composite = two_budgets(&FastClock::shared());
    let breaker = CircuitBreaker::new(BreakerConfig::default().name("race"), FastClock::shared());
    let (request, both) = (Cost::request(), Cost::request().with(BudgetName::TOKENS, 1));
    let mut best = [f64::MAX; 4];
    for _ in 0..rounds {
        let times = [
            time(1_000_000, || theirs.check().is_ok()),
            time(1_000_000, || ours.try_acquire(black_box(&request)).is_ok()),
            time(1_000_000, || {
                composite.try_acquire(black_box(&both)).is_ok()
            }),
            time(1_000_000, || match black_box(&breaker).admit() {
                Ok(permit) => {
                    permit.record(black_box(Outcome::Success));
                    true
                }
                Err(_) => false,
            }),
        ];
        for (best, time) in best.iter_mut().zip(times) {
            *best = best.min(time);
        }
    }
    println!(
        "fastest of {rounds} rounds (FastClock), ns: governor {:.2}, GCRA {:.2} (ratio {:.2}), \
         composite of 2 {:.2}, breaker {:.2}",
        best[0],
        best[1],
        best[1] / best[0],
        best[2],
        best[3]
    );
}

fn main() {
    let mut args = std::env::args().skip(1);
    let case = args.next().unwrap_or_default();
    let iters: u64 = args.next().and_then(|n| n.parse().ok()).unwrap_or(100_000);
    if case == "race" {
        race(u32::try_from(iters).unwrap_or(u32::MAX));
        return;
    }
    let fast: SharedClock = FastClock::shared();
    let request = Cost::request();
    let both = Cost::request().with(BudgetName::TOKENS, 1);
    let admitted = match case.as_str() {
        "governor" => {
            let limiter = RateLimiter::direct(Quota::per_second(NonZeroU32::MAX));
            repeat(iters, || limiter.check().is_ok())
        }
        "gcra_fast" => {
            let limiter = unthrottled(BudgetName::REQUESTS, fast);
            repeat(iters, || limiter.try_acquire(black_box(&request)).is_ok())
        }
        "gcra_manual" => {
            let limiter = unthrottled(BudgetName::REQUESTS, ManualClock::new().shared());
            repeat(iters, || limiter.try_acquire(black_box(&request)).is_ok())
        }
        "gcra_tokio" => {
            let limiter = unthrottled(BudgetName::REQUESTS, TokioClock::shared());
            repeat(iters, || limiter.try_acquire(black_box(&request)).is_ok())
        }
        "composite_try_fast" => {
            let limiter = two_budgets(&fast);
            repeat(iters, || limiter.try_acquire(black_box(&both)).is_ok())
        }
        "composite_acquire_fast" => {
            let limiter = two_budgets(&fast);
            let mut cx = Context::from_waker(Waker::noop());
            repeat(iters, || {
                let future = pin!(limiter.acquire(black_box(&both), Duration::ZERO));
                matches!(future.poll(&mut cx), Poll::Ready(Ok(_)))
            })
        }
        "composite_acquire_concrete_fast" => {
            let limiter = CompositeLimiter::new()
                .with(Arc::new(unthrottled(BudgetName::TOKENS, fast.clone())))
                .with(Arc::new(unthrottled(BudgetName::REQUESTS, fast.clone())))
                .clock(fast);
            let mut cx = Context::from_waker(Waker::noop());
            repeat(iters, || {
                let future = pin!(limiter.acquire(black_box(&both), Duration::ZERO));
                matches!(future.poll(&mut cx), Poll::Ready(Ok(_)))
            })
        }
        "breaker_fast" | "breaker_manual" => {
            let clock = if case == "breaker_fast" {
                fast
            } else {
                ManualClock::new().shared()
            };
            let breaker = CircuitBreaker::new(BreakerConfig::default().name("loop"), clock);
            repeat(iters, || match black_box(&breaker).admit() {
                Ok(permit) => {
                    permit.record(black_box(Outcome::Success));
                    true
                }
                Err(_) => false,
            })
        }
        "clock_fast" => {
            let base = fast.epoch();
            repeat(iters, || fast.nanos_since(black_box(base)) > 0)
        }
        "quanta" => {
            let clock = quanta::Clock::new();
            repeat(iters, || black_box(clock.raw()) > 0)
        }
        other => {
            eprintln!("unknown case `{other}`");
            std::process::exit(2);
        }
    };
    println!("{case}: {admitted} of {iters} admitted");
}
