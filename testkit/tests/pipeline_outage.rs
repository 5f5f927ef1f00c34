//! The pipeline through a 60 s outage, in virtual time: the breaker opens, fails fast, lets
//! only its probes through, and closes once the upstream is back.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ratewise_core::breaker::{BreakerConfig, BreakerState};
use ratewise_core::clock::{Clock, TokioClock};
use ratewise_core::error::Error;
use ratewise_core::provider::RequestSpec;
use ratewise_core::upstream::Upstream;
use ratewise_testkit::{FaultPlan, GenericProvider, SimUpstream};

const CALLERS: usize = 20;
const EVERY: Duration = Duration::from_millis(100);
const OUTAGE_FROM: Duration = Duration::from_secs(5);
const OUTAGE: Duration = Duration::from_secs(60);
const RUN: Duration = Duration::from_secs(85);

/// A breaker transition, seen from the upstream: when, and how many requests had reached the
/// server by then.
#[derive(Clone, Debug)]
struct Seen {
    to: BreakerState,
    at: Duration,
    arrived: u64,
}

/// One finished call: when it started, how long it took, how it ended.
struct Call {
    started: Duration,
    took: Duration,
    result: Result<(), Error<ratewise_testkit::GenericError>>,
}

#[tokio::test(start_paused = true)]
async fn an_outage_opens_the_breaker_which_fails_fast_probes_alone_and_closes_on_recovery() {
    let sim = SimUpstream::builder()
        .faults(FaultPlan::new().outage(OUTAGE_FROM, OUTAGE))
        .seed(5)
        .build();
    // The documented defaults: 10 s window, 50 %, 20 calls, open 30 s, one probe.
    let upstream = Upstream::builder(GenericProvider::new(), "http://sim.test")
        .transport(Arc::new(sim.transport()))
        .clock(sim.clock())
        .breaker(BreakerConfig::new())
        .seed(11)
        .build()
        .unwrap();
    let seen = Arc::new(Mutex::new(Vec::<Seen>::new()));
    {
        let (seen, sim) = (Arc::clone(&seen), sim.clone());
        upstream.breaker().on_transition(move |t| {
            seen.lock().unwrap().push(Seen {
                to: t.to,
                at: sim.elapsed(),
                arrived: sim.ledger().requests(),
            });
        });
    }

    let callers: Vec<_> = (0..CALLERS)
        .map(|caller| {
            let (upstream, sim) = (upstream.clone(), sim.clone());
            tokio::spawn(async move {
                let clock = TokioClock::new();
                let mut ticks = tokio::time::interval(EVERY);
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                let mut calls = Vec::new();
                let mut n = 0usize;
                while sim.elapsed() < RUN {
                    ticks.tick().await;
                    let spec = if caller % 2 == 0 {
                        RequestSpec::get(format!("/v1/things/{caller}"), "things.get")
                    } else {
                        RequestSpec::post("/v1/charges", "charges.create")
                            .body("application/json", format!("{{\"c\":{caller},\"n\":{n}}}"))
                    };
                    n += 1;
                    let started = sim.elapsed();
                    let before = clock.now();
                    let result = upstream.execute(spec).await.map(|_| ());
                    calls.push(Call {
                        started,
                        took: clock.now() - before,
                        result,
                    });
                }
                calls
            })
        })
        .collect();
    let mut calls = Vec::new();
    for caller in callers {
        calls.extend(caller.await.unwrap());
    }
    let seen = seen.lock().unwrap().clone();
    let ledger = sim.ledger();
    let entries = ledger.entries();

    // It opens within the configured window (10 s) of the outage's start.
    let first_open = seen
        .iter()
        .find(|s| matches!(s.to, BreakerState::Open { .. }))
        .expect("the breaker opened");
    assert!(
        first_open.at >= OUTAGE_FROM && first_open.at <= OUTAGE_FROM + Duration::from_secs(10),
        "opened at {:?}",
        first_open.at
    );

    // Every period away from closed (open, then half-open) lets at most one request through
    // beyond those already in flight when it began: the probe. It ends closed after recovery.
    let mut periods = 0;
    let mut open: Option<&Seen> = None;
    for s in &seen {
        match (s.to, open) {
            (BreakerState::Open { .. }, None) => open = Some(s),
            (BreakerState::Open { .. } | BreakerState::Closed, Some(start)) => {
                let through = s.arrived - start.arrived;
                assert!(through <= 1, "{through} requests during {start:?}..{s:?}");
                periods += 1;
                open = matches!(s.to, BreakerState::Open { .. }).then_some(s);
            }
            _ => {}
        }
    }
    assert!(open.is_none(), "the breaker ended closed: {seen:#?}");
    let closed_at = seen.last().unwrap().at;
    assert!(
        closed_at >= OUTAGE_FROM + OUTAGE
            && closed_at <= OUTAGE_FROM + OUTAGE + Duration::from_secs(31),
        "closed at {closed_at:?}, {seen:#?}"
    );
    // 30 s open periods over a 60 s outage: it re-opened on a failed probe at least once.
    assert!(periods >= 2, "{seen:#?}");
    // The same from the ledger's side: between the first trip and the close, only probes arrived.
    let between = entries
        .iter()
        .filter(|e| e.index >= first_open.arrived && e.index < seen.last().unwrap().arrived)
        .count();
    assert_eq!(between, periods, "one probe per period");

    // While open, calls fail with CircuitOpen at once: no wait at all, in virtual time.
    let open_spans: Vec<(Duration, Duration)> = seen
        .windows(2)
        .filter(|w| matches!(w[0].to, BreakerState::Open { .. }))
        .map(|w| (w[0].at, w[1].at))
        .collect();
    let mut refused_at_once = 0u64;
    let mut refused_later = 0u64;
    for call in &calls {
        let inside_open = open_spans
            .iter()
            .any(|(from, until)| call.started > *from && call.started < *until);
        if inside_open {
            assert!(
                matches!(call.result, Err(Error::CircuitOpen { .. })) && call.took.is_zero(),
                "a call started while open was not refused at once: {:?} after {:?}",
                call.result,
                call.took
            );
        }
        if let Err(Error::CircuitOpen { .. }) = call.result {
            if call.took.is_zero() {
                refused_at_once += 1;
            } else {
                // Refused on a retry, after its backoff: its first attempt ran before the trip.
                refused_later += 1;
            }
        }
    }
    assert!(refused_at_once > 5_000, "{refused_at_once} refused at once");

    // After recovery, every call succeeds.
    let after = closed_at + Duration::from_millis(500);
    let recovered: Vec<_> = calls.iter().filter(|c| c.started > after).collect();
    assert!(
        recovered.len() > 1_000,
        "{} calls after recovery",
        recovered.len()
    );
    assert!(recovered.iter().all(|c| c.result.is_ok()));
    // And before the outage, too.
    assert!(
        calls
            .iter()
            .filter(|c| c.started + Duration::from_secs(1) < OUTAGE_FROM)
            .all(|c| c.result.is_ok())
    );

    // The stats agree: closed at the end, every refusal counted, every failure counted.
    let stats = upstream.stats();
    assert_eq!(stats.breaker, BreakerState::Closed);
    assert_eq!(stats.breaker_rejections, refused_at_once + refused_later);
    let failed = calls.iter().filter(|c| c.result.is_err()).count() as u64;
    // Calls refused before their first attempt are failures the caller saw: they count.
    assert_eq!(stats.failed, failed);
    assert_eq!(stats.calls, calls.len() as u64);
    assert_eq!(stats.requests, ledger.requests());
}
