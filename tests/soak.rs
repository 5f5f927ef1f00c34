//! Fault soak, per provider, in virtual time: 10,000 logical calls through the provider's
//! simulator with about 20 % mixed faults (429 storms with and without hints, 5xx bursts, a
//! 60 s outage, responses slower than the attempt timeout, connections reset after the server
//! committed). For every call: success, or a typed error that carries its idempotency key. The
//! ledger: no side effect twice, none lost (every success committed exactly once). While the
//! breaker is open, calls fail at once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use ratewise_core::clock::SharedClock;
use ratewise_core::error::{Error, Retryable};
use ratewise_core::idempotency::IdempotencyKey;
use ratewise_testkit::{Fault, FaultPlan};

/// The logical calls of one soak.
const CALLS: usize = 10_000;
/// Concurrent callers.
const TASKS: usize = 100;
/// The attempt timeout the clients use; slow faults exceed it.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// About 20 % of requests faulted, of every kind, plus a 60 s outage 120 s in.
fn faults() -> FaultPlan {
    FaultPlan::new()
        .bursts(0.006, 5, Fault::throttle(Duration::from_secs(1)))
        .bursts(0.006, 5, Fault::throttle_without_hint())
        .bursts(
            0.006,
            5,
            Fault::server_error(StatusCode::SERVICE_UNAVAILABLE),
        )
        .random(0.03, Fault::server_error(StatusCode::INTERNAL_SERVER_ERROR))
        .random(0.02, Fault::slow(ATTEMPT_TIMEOUT * 2))
        .random(0.05, Fault::ResetAfterCommit)
        .outage(Duration::from_secs(120), Duration::from_secs(60))
}

/// How one call ended.
struct Ended {
    key: IdempotencyKey,
    ok: bool,
    /// The error's variant (`"CircuitOpen"`, …) for failures.
    kind: Option<String>,
}

/// What a soak saw.
struct Report {
    ended: Vec<Ended>,
    errors: BTreeMap<String, usize>,
    fast_failures_while_open: usize,
}

impl Report {
    fn successes(&self) -> usize {
        self.ended.iter().filter(|e| e.ok).count()
    }
}

/// The variant name of an error, from its `Debug` (`CircuitOpen { .. }` → `CircuitOpen`).
fn kind<A: std::fmt::Debug>(error: &Error<A>) -> String {
    let text = format!("{error:?}");
    text.split([' ', '{', '('])
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// Runs `CALLS` calls from `TASKS` tasks. `call(i, key)` makes call `i` with `key`; `open()`
/// says whether the breaker is open right now. Checks every error carries its key and
/// describes itself, and that a call started while the breaker is open fails in under 1 ms.
async fn soak<A, F, Fut>(
    clock: SharedClock,
    open: impl Fn() -> bool + Clone + Send + 'static,
    call: F,
) -> Report
where
    A: std::fmt::Debug + std::fmt::Display + Send + 'static,
    F: Fn(usize, IdempotencyKey) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<(), Error<A>>> + Send,
    Error<A>: std::fmt::Display,
{
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let (call, open, clock) = (call.clone(), open.clone(), Arc::clone(&clock));
            tokio::spawn(async move {
                let mut ended = Vec::new();
                let mut fast = 0;
                for i in (task..CALLS).step_by(TASKS) {
                    let key = IdempotencyKey::new();
                    let was_open = open();
                    let start = clock.now();
                    let result = call(i, key.clone()).await;
                    let took = clock.now() - start;
                    match result {
                        Ok(()) => ended.push(Ended {
                            key,
                            ok: true,
                            kind: None,
                        }),
                        Err(error) => {
                            assert_eq!(error.idempotency_key(), Some(&key), "{error:?}");
                            assert!(!error.to_string().is_empty());
                            if was_open && kind(&error) == "CircuitOpen" {
                                assert!(took < Duration::from_millis(1), "{took:?}");
                                fast += 1;
                            }
                            ended.push(Ended {
                                key,
                                ok: false,
                                kind: Some(kind(&error)),
                            });
                            // A sane caller does not spin on a fail-fast error: it waits for
                            // what the error says before its next call.
                            if let Some(wait) = error.retry_after() {
                                tokio::time::sleep(wait.min(Duration::from_secs(60))).await;
                            }
                        }
                    }
                }
                (ended, fast)
            })
        })
        .collect();
    let mut report = Report {
        ended: Vec::new(),
        errors: BTreeMap::new(),
        fast_failures_while_open: 0,
    };
    for task in tasks {
        let (ended, fast) = task.await.unwrap();
        report.fast_failures_while_open += fast;
        for e in &ended {
            if let Some(kind) = &e.kind {
                *report.errors.entry(kind.clone()).or_default() += 1;
            }
        }
        report.ended.extend(ended);
    }
    assert_eq!(report.ended.len(), CALLS, "every call ended");
    report
}

#[cfg(feature = "stripe")]
mod stripe {
    use super::*;
    use ratewise_core::upstream::CallPolicy;
    use ratewise_stripe::sim::{StripeDialect, StripeHandler};
    use ratewise_stripe::{ClientBuilder, CreatePaymentIntent, StripeClient};
    use ratewise_testkit::SimUpstream;

    #[tokio::test(start_paused = true)]
    async fn ten_thousand_payment_intents_through_mixed_faults_lose_and_duplicate_nothing() {
        let sim = SimUpstream::builder()
            .dialect(StripeDialect::new())
            .handler(StripeHandler::new())
            .faults(faults())
            .seed(21)
            .build();
        let client = StripeClient::builder("sk_live_soak")
            .base_url("http://stripe.sim")
            .transport(Arc::new(sim.transport()))
            .clock(sim.clock())
            .seed(21)
            .policy(
                CallPolicy::new()
                    .attempt_timeout(ATTEMPT_TIMEOUT)
                    .max_wait(Duration::from_secs(60)),
            )
            .build()
            .unwrap();
        let breaker_client = client.clone();
        let report = soak(
            sim.clock(),
            move || {
                matches!(
                    breaker_client.upstream().breaker().state(),
                    ratewise_core::breaker::BreakerState::Open { .. }
                )
            },
            move |i, key| {
                let client = client.clone();
                async move {
                    client
                        .payment_intents()
                        .create(CreatePaymentIntent::new(100 + i as i64, "usd"))
                        .idempotency_key(key)
                        .send()
                        .await
                        .map(drop)
                }
            },
        )
        .await;

        let ledger = sim.ledger();
        const OP: &str = "POST /v1/payment_intents";
        for ended in &report.ended {
            let committed = ledger.side_effects_for(OP, ended.key.as_str());
            if ended.ok {
                assert_eq!(committed, 1, "a success committed exactly once");
            } else {
                assert!(committed <= 1, "a failure committed at most once");
            }
        }
        assert_eq!(ledger.duplicates(), 0);
        eprintln!(
            "stripe soak: {} ok, errors {:?}, {} requests, statuses {:?}, {} resets, {} fast failures while open, {:?} virtual",
            report.successes(),
            report.errors,
            ledger.requests(),
            ledger.statuses(),
            ledger.resets(),
            report.fast_failures_while_open,
            sim.elapsed(),
        );
        assert!(ledger.resets() > 100, "resets fired: {}", ledger.resets());
        assert!(
            ledger.throttled() > 100,
            "429s fired: {}",
            ledger.throttled()
        );
        assert!(
            report.fast_failures_while_open > 0,
            "the outage opened the breaker: {:?}",
            report.errors
        );
        assert!(
            report.successes() >= CALLS * 8 / 10,
            "{} of {CALLS} succeeded; errors {:?}",
            report.successes(),
            report.errors
        );
    }
}
