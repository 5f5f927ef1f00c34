//! The work queue over the real pipeline, in virtual time: 1,000 jobs through `Upstream` into a
//! simulated upstream that opens with a one-minute 429 storm (30 s hints, beyond the client's
//! 5 s clamp, so the queue parks) and keeps throttling and dropping connections after commit.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ratewise_core::hint::Clamp;
use ratewise_core::idempotency::IdempotencyKey;
use ratewise_core::provider::RequestSpec;
use ratewise_core::queue::{Job, JobContext, JobOutcome, WorkQueue};
use ratewise_core::upstream::{CallPolicy, Upstream};
use ratewise_testkit::{Fault, FaultPlan, GenericProvider, SimUpstream};

const JOBS: u32 = 1000;
const GROUPS: u32 = 4;

#[tokio::test(start_paused = true)]
async fn a_thousand_jobs_through_a_429_storm_each_complete_once_with_one_key() {
    let sim = SimUpstream::builder()
        .faults(
            FaultPlan::new()
                .window(
                    Duration::ZERO,
                    Duration::from_secs(60),
                    Fault::throttle(Duration::from_secs(30)),
                )
                .random(0.02, Fault::throttle(Duration::from_secs(30)))
                .random(0.05, Fault::ResetAfterCommit),
        )
        .seed(11)
        .build();
    let upstream = Upstream::builder(GenericProvider::new(), "http://sim.test")
        .transport(Arc::new(sim.transport()))
        .clock(sim.clock())
        .policy(
            CallPolicy::new()
                .max_attempts(1)
                .clamp(Clamp::new(Duration::from_secs(5))),
        )
        .seed(7)
        .build()
        .unwrap();

    // Every key each job's handler was given, in order.
    let keys: Arc<Mutex<HashMap<u32, Vec<IdempotencyKey>>>> = Arc::default();
    let seen = Arc::clone(&keys);
    let queue = WorkQueue::builder(move |order: u32, ctx: JobContext| {
        let (upstream, seen) = (upstream.clone(), Arc::clone(&seen));
        async move {
            seen.lock()
                .unwrap()
                .entry(order)
                .or_default()
                .push(ctx.key.clone());
            let spec = RequestSpec::post("/v1/charges", "charges.create")
                .body("application/json", format!("{{\"order\":{order}}}"))
                .idempotency_key(ctx.key.clone());
            match upstream.execute(spec).await {
                Ok(response) if response.idempotency_key.as_ref() == Some(&ctx.key) => {
                    JobOutcome::done()
                }
                Ok(_) => JobOutcome::fail("the upstream sent another key"),
                Err(error) => JobOutcome::from(error),
            }
        }
    })
    .concurrency(16)
    .max_attempts(20)
    .clock(sim.clock())
    .seed(3)
    .start();

    let mut pushed = HashMap::new();
    for order in 0..JOBS {
        let job = Job::new(order).group(format!("generic:acct_{}", order % GROUPS));
        pushed.insert(order, job.key.clone());
        queue.push(job).await.unwrap();
    }

    let mut stats = queue.stats().await.unwrap();
    while stats.completed + stats.dead_lettered < u64::from(JOBS) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        stats = queue.stats().await.unwrap();
    }
    let report = queue.shutdown(Duration::from_secs(1)).await;
    assert!(report.into_jobs().is_empty());

    assert_eq!(stats.completed, u64::from(JOBS), "{stats:?}");
    assert_eq!(stats.dead_lettered, 0);
    assert!(stats.parks >= 4, "the storm parked the groups: {stats:?}");
    assert!(
        stats.retries > 0,
        "resets after commit were retried: {stats:?}"
    );

    let ledger = sim.ledger();
    assert!(ledger.throttled() > 0);
    // Parked groups send nothing: during the minute of storm only the jobs in flight when their
    // group was parked reached the upstream (16 workers, at t=0 and again when the parks ended at
    // 30 s), not 1,000 jobs retrying into it.
    let during_storm = ledger.arrived_in(Duration::ZERO..Duration::from_secs(60));
    assert!(
        (16..100).contains(&during_storm),
        "{during_storm} requests during the storm"
    );
    assert!(ledger.resets() > 0);
    assert_eq!(ledger.total_side_effects(), u64::from(JOBS));
    assert_eq!(ledger.duplicates(), 0);

    let keys = keys.lock().unwrap();
    let mut rerun = 0;
    for (order, key) in &pushed {
        let given = &keys[order];
        assert!(given.iter().all(|k| k == key), "job {order} changed key");
        assert_eq!(
            ledger.side_effects_for("POST /v1/charges", key.as_str()),
            1,
            "job {order}"
        );
        rerun += usize::from(given.len() > 1);
    }
    // About 7 % of requests draw a throttle or a reset after commit, besides the storm's parks:
    // on the order of 100 jobs rerun, the exact count depending on the order requests go out.
    assert!(rerun > 50, "many jobs ran more than once: {rerun}");
    // The storm lasted a minute and parks spend no attempt: nothing was near max_attempts.
    assert!(stats.attempts < u64::from(JOBS) * 3, "{stats:?}");
}
