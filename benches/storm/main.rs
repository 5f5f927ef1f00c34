//! The storm benchmark: ratewise against the retry loops people actually ship.
//!
//! Every cell pushes a fixed amount of work (each call with its own idempotency key) through a
//! simulated rate-limited upstream with 10, 100 or 1,000 concurrent callers, in tokio's virtual
//! time, and measures what the server saw. Strategies: the 3 AM naive loop, the article's
//! `withRetry`, openai-python's and stripe-node's policies (re-implemented from their source,
//! PROVIDERS.md), backon's `ExponentialBuilder` with jitter (the real crate) and ratewise's
//! pipeline with its defaults. Per cell:
//!
//! - goodput: successful calls per second ÷ the limit in calls per second;
//! - amplification: requests the server received ÷ logical calls;
//! - 429s: throttled responses (and their share of requests);
//! - permanent failures: calls that ended in an error (calls still unfinished when the cell's
//!   virtual-time cap (3× the physical minimum) ran out, or when a never-ending loop reached
//!   the scenario's request cap, are counted separately as unfinished);
//! - duplicates: side effects committed twice for one idempotency key (the ledger);
//! - completion ÷ minimum: when the last call finished, over the earliest the limit allows.
//!
//! Prints Markdown tables and writes `target/storm.json`. `cargo bench --bench storm`; an
//! argument filters scenarios by name (`cargo bench --bench storm -- openai`).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod client;
mod openai;
mod report;
mod scenario;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use ratewise::clock::{SharedClock, TokioClock};

use client::{Client, STRATEGIES};
use report::Cell;
use scenario::Scenario;

const CALLERS: [usize; 3] = [10, 100, 1_000];
const SEED: u64 = 7;

#[derive(Default)]
struct Tally {
    successes: u64,
    failures: u64,
    reasons: BTreeMap<String, u64>,
    last: Duration,
}

#[allow(clippy::disallowed_methods)] // the benchmark reports its own wall time
fn wall_now() -> std::time::Instant {
    std::time::Instant::now()
}

fn run_cell(scenario: &Scenario, strategy: &'static str, callers: usize) -> Cell {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    let started = wall_now();
    let mut cell = runtime.block_on(async {
        // Wall time on a whole second, so epoch-second resets are exact for 1 s windows.
        let clock: SharedClock = Arc::new(TokioClock::with_wall(
            UNIX_EPOCH + Duration::from_secs(1_800_000_000),
        ));
        let sim = scenario.upstream(Arc::clone(&clock), SEED);
        let client = Arc::new(Client::new(
            strategy,
            scenario,
            sim.transport(),
            clock,
            SEED,
        ));
        let next = Arc::new(AtomicUsize::new(0));
        let tally = Arc::new(Mutex::new(Tally::default()));
        let scenario = Arc::new(scenario.clone());
        let mut handles: Vec<_> = (0..callers)
            .map(|_| {
                let (client, next, tally, scenario, sim) = (
                    Arc::clone(&client),
                    Arc::clone(&next),
                    Arc::clone(&tally),
                    Arc::clone(&scenario),
                    sim.clone(),
                );
                tokio::spawn(async move {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= scenario.calls {
                            break;
                        }
                        let result = client.call(i, &scenario).await;
                        let mut t = tally.lock().unwrap();
                        match result {
                            Ok(()) => t.successes += 1,
                            Err(reason) => {
                                t.failures += 1;
                                *t.reasons.entry(reason).or_insert(0) += 1;
                            }
                        }
                        t.last = t.last.max(sim.elapsed());
                    }
                })
            })
            .collect();
        let cap = client::cap(&scenario);
        let request_cap = scenario.request_cap.unwrap_or(u64::MAX);
        let ledger = sim.ledger();
        let over_requests = async {
            while ledger.requests() < request_cap {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        let all_done = async {
            for handle in &mut handles {
                let _ = handle.await;
            }
        };
        let finished = tokio::time::timeout(cap, async {
            tokio::select! {
                () = all_done => true,
                () = over_requests => false,
            }
        })
        .await
        .unwrap_or(false);
        for handle in &handles {
            handle.abort();
        }
        let t = tally.lock().unwrap();
        let ledger = sim.ledger();
        let calls = scenario.calls as u64;
        let completion = if finished { t.last } else { sim.elapsed() };
        Cell {
            scenario: scenario.name,
            strategy,
            callers,
            calls,
            successes: t.successes,
            failures: t.failures,
            reasons: t.reasons.clone(),
            unfinished: calls - t.successes - t.failures,
            requests: ledger.requests(),
            throttled: ledger.throttled(),
            server_errors: ledger.with_status(http::StatusCode::SERVICE_UNAVAILABLE),
            duplicates: ledger.duplicates(),
            completion,
            minimum: scenario.minimum,
            limit_rate: scenario.limit_rate,
            targets: scenario.targets,
            wall: Duration::ZERO,
        }
    });
    drop(runtime);
    cell.wall = started.elapsed();
    cell
}

fn main() {
    assert!(openai::go_duration_round_trips());
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let scenarios: Vec<Scenario> = Scenario::all()
        .into_iter()
        .filter(|s| filter.is_empty() || filter.iter().any(|f| s.name.contains(f.as_str())))
        .collect();
    let started = wall_now();
    let mut cells = Vec::new();
    for scenario in &scenarios {
        for callers in CALLERS {
            for strategy in STRATEGIES {
                let cell = run_cell(&scenario.for_callers(callers), strategy, callers);
                eprintln!(
                    "{:>15} {:>5} {:>14}: {:>7} requests, {:>6} ok, {:.1} s virtual, {:.2} s wall {:?}",
                    cell.scenario,
                    callers,
                    strategy,
                    cell.requests,
                    cell.successes,
                    cell.completion.as_secs_f64(),
                    cell.wall.as_secs_f64(),
                    cell.reasons,
                );
                cells.push(cell);
            }
        }
    }
    println!("{}", report::markdown(&scenarios, &cells));
    let json = report::json(&cells);
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let path = target.join("storm.json");
    match std::fs::write(&path, json) {
        Ok(()) => eprintln!("wrote {}", path.display()),
        Err(e) => eprintln!("could not write {}: {e}", path.display()),
    }
    eprintln!("storm: {:.1} s wall", started.elapsed().as_secs_f64());
}
