//! Cancellation: `Upstream::execute` futures dropped at random await points (waiting for a
//! limiter, in flight, sleeping before a retry, probing a half-open breaker) leak nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use ratewise_core::breaker::{BreakerConfig, BreakerState};
use ratewise_core::limit::{ConcurrencyLimiter, GcraLimiter, Rate};
use ratewise_core::provider::RequestSpec;
use ratewise_core::upstream::Upstream;
use ratewise_testkit::{FaultPlan, GenericProvider, SimUpstream};

const LIMIT: u64 = 4;
const BURST: u64 = 10;

/// Outages of 1 s every 3 s for the first `secs` seconds: the breaker trips, probes and closes
/// over and over.
fn outages(secs: u64) -> FaultPlan {
    (0..secs / 3).fold(FaultPlan::new(), |plan, k| {
        plan.outage(Duration::from_secs(3 * k), Duration::from_secs(1))
    })
}

/// The client's limiters: at most 4 calls in flight, 100 per second with a burst of 10.
struct Limiters {
    concurrency: Arc<ConcurrencyLimiter>,
    rate: Arc<GcraLimiter>,
}

impl Limiters {
    fn new(sim: &SimUpstream) -> Self {
        Self {
            concurrency: Arc::new(ConcurrencyLimiter::new(LIMIT).clock(sim.clock())),
            rate: Arc::new(
                GcraLimiter::new(Rate::per_second(100))
                    .burst(BURST)
                    .clock(sim.clock()),
            ),
        }
    }
}

fn build(sim: &SimUpstream, limiters: &Limiters) -> Upstream<GenericProvider> {
    Upstream::builder(GenericProvider::new(), "http://sim.test")
        .transport(Arc::new(sim.transport()))
        .clock(sim.clock())
        .limiter(Arc::clone(&limiters.concurrency) as _)
        .limiter(Arc::clone(&limiters.rate) as _)
        .breaker(
            BreakerConfig::new()
                .window(Duration::from_secs(2))
                .min_calls(5)
                .open_for(Duration::from_millis(500)),
        )
        .seed(9)
        .build()
        .unwrap()
}

fn call(i: u64) -> RequestSpec {
    if i.is_multiple_of(2) {
        RequestSpec::get(format!("/v1/things/{i}"), "things.get")
    } else {
        RequestSpec::post("/v1/charges", "charges.create")
            .body("application/json", format!("{{\"amount\":{i}}}"))
    }
}

#[tokio::test(start_paused = true)]
async fn calls_dropped_at_random_points_leak_no_permit_and_no_probe_slot() {
    let sim = SimUpstream::builder()
        .faults(outages(21))
        .latency(Duration::from_millis(10))
        .jitter(Duration::from_millis(10))
        .seed(4)
        .build();
    let limiters = Limiters::new(&sim);
    let upstream = build(&sim, &limiters);
    let mut rng = fastrand::Rng::with_seed(42);

    let mut tasks = Vec::new();
    for i in 0..400u64 {
        for j in 0..3 {
            let upstream = upstream.clone();
            let within = Duration::from_millis(rng.u64(0..80));
            tasks.push(tokio::spawn(async move {
                let result = tokio::time::timeout(within, upstream.execute(call(i * 3 + j))).await;
                let probing = upstream.breaker().state() == BreakerState::HalfOpen;
                (result.is_err(), probing, result.map(|r| r.is_ok()))
            }));
        }
        tokio::time::sleep(Duration::from_millis(rng.u64(0..120))).await;
    }
    let (mut cancelled, mut cancelled_half_open, mut succeeded) = (0, 0, 0);
    for task in tasks {
        let (dropped, half_open, result) = task.await.unwrap();
        if dropped {
            cancelled += 1;
            cancelled_half_open += u32::from(half_open);
        } else if result == Ok(true) {
            succeeded += 1;
        }
    }
    assert!(cancelled > 300, "{cancelled} of 1200 calls were dropped");
    assert!(succeeded > 100, "{succeeded} of 1200 calls succeeded");
    assert!(cancelled_half_open > 0, "some were dropped while half-open");

    // Nothing is held: every concurrency permit came back.
    assert_eq!(
        limiters.concurrency.available(),
        limiters.concurrency.limit()
    );
    assert_eq!(limiters.concurrency.limit(), LIMIT);

    // The outages are over; once the open period passes the breaker admits (no probe slot
    // leaked), the next call closes it, and every call succeeds.
    assert!(sim.elapsed() > Duration::from_secs(21));
    tokio::time::sleep(Duration::from_secs(1)).await;
    // And the rate limiter has its whole burst again: dropped waiters left no debt behind.
    assert_eq!(limiters.rate.available(), BURST);
    drop(upstream.breaker().admit().expect("the breaker admits"));
    for i in 0..20 {
        upstream.execute(call(i)).await.unwrap();
    }
    assert_eq!(upstream.breaker().state(), BreakerState::Closed);
    assert_eq!(limiters.concurrency.available(), LIMIT);
}

#[tokio::test(start_paused = true)]
async fn a_probe_dropped_in_flight_frees_its_slot_for_the_next_caller() {
    let sim = SimUpstream::builder()
        .faults(FaultPlan::new().outage(Duration::ZERO, Duration::from_secs(1)))
        .latency(Duration::from_millis(10))
        .build();
    let limiters = Limiters::new(&sim);
    let upstream = build(&sim, &limiters);
    while !matches!(upstream.breaker().state(), BreakerState::Open { .. }) {
        let _ = upstream.execute(call(0)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(upstream.breaker().state(), BreakerState::HalfOpen);

    // The probe is admitted, sent, and dropped 5 ms into its 10 ms round trip.
    let before = sim.ledger().requests();
    let dropped = tokio::time::timeout(Duration::from_millis(5), upstream.execute(call(0))).await;
    assert!(dropped.is_err());
    assert_eq!(sim.ledger().requests(), before + 1, "the probe was sent");
    assert_eq!(upstream.breaker().state(), BreakerState::HalfOpen);
    assert_eq!(limiters.concurrency.available(), LIMIT);

    // The slot is free: the next caller probes, succeeds and closes the breaker.
    upstream.execute(call(0)).await.unwrap();
    assert_eq!(upstream.breaker().state(), BreakerState::Closed);
}
