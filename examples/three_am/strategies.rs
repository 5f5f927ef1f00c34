//! The three ways of draining that night's queue, each against its own fresh simulated Stripe.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::header;
use ratewise::backoff::Backoff;
use ratewise::limit::Rate;
use ratewise::queue::{Job, JobContext, WorkQueue};
use ratewise::upstream::CallPolicy;
use ratewise_stripe::{ClientBuilder, CreatePaymentIntent, Mode, StripeClient, StripeLimits};
use ratewise_testkit::SimUpstream;
use ratewise_testkit::baseline::{ArticleRetry, Baseline, NaiveRetry};

use crate::args::Args;
use crate::progress;
use crate::tally::Night;
use crate::workload::{self, Charges};

const KEY: &str = "sk_live_simulated";
const BASE: &str = "http://stripe.sim";

/// (1) The incident's code: every 429 (or 5xx, or broken connection) retried 100 ms later,
/// forever; no idempotency key.
pub(crate) async fn incident(args: &Args) -> Night {
    run_baseline(args, "incident (100 ms, no cap)", false, |_| {
        Arc::new(NaiveRetry::new()) as Arc<dyn Baseline>
    })
    .await
}

/// (2) The article's `withRetry`: full jitter from 200 ms, 4 attempts, `Retry-After` obeyed,
/// an idempotency key per job (as the article's Stripe example passes one); no pacing, no
/// budget, no breaker. A job that fails after 4 attempts has failed.
pub(crate) async fn with_retry(args: &Args) -> Night {
    run_baseline(args, "article withRetry", true, |sim| {
        Arc::new(ArticleRetry::new(sim.clock(), args.seed)) as Arc<dyn Baseline>
    })
    .await
}

/// A baseline strategy: `workers` tasks pull orders from an in-memory queue and call the
/// simulated Stripe through `baseline`.
async fn run_baseline(
    args: &Args,
    name: &'static str,
    keyed: bool,
    strategy: impl FnOnce(&SimUpstream) -> Arc<dyn Baseline>,
) -> Night {
    let charges = Arc::new(Charges::default());
    let sim = workload::stripe(args, &charges);
    let baseline = strategy(&sim);
    let transport = Arc::new(sim.transport());
    let clock = sim.clock();
    let start = clock.now();
    let bar = progress::bar(name, args.total_jobs());

    let pending = Arc::new(Mutex::new(VecDeque::new()));
    let all_arrived = Arc::new(AtomicBool::new(false));
    let completed = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));

    let producer = {
        let (pending, all_arrived, args) =
            (Arc::clone(&pending), Arc::clone(&all_arrived), args.clone());
        tokio::spawn(async move {
            workload::arrivals(&args, |order| {
                pending
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push_back(order);
                std::future::ready(())
            })
            .await;
            all_arrived.store(true, Ordering::Release);
        })
    };
    let workers: Vec<_> = (0..args.workers)
        .map(|_| {
            let (pending, all_arrived) = (Arc::clone(&pending), Arc::clone(&all_arrived));
            let (completed, failed) = (Arc::clone(&completed), Arc::clone(&failed));
            let (baseline, transport) = (Arc::clone(&baseline), Arc::clone(&transport));
            tokio::spawn(async move {
                loop {
                    let next = pending
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .pop_front();
                    let Some(order) = next else {
                        if all_arrived.load(Ordering::Acquire) {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    };
                    let request = payment_intent(order, keyed);
                    match baseline.call(&*transport, &request).await.result {
                        Ok(_) => completed.fetch_add(1, Ordering::Relaxed),
                        Err(_) => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();

    let all_done = async {
        for worker in workers {
            let _ = worker.await;
        }
        clock.now() - start
    };
    let ticker = tick(&bar, &sim, start, || {
        completed.load(Ordering::Relaxed) + failed.load(Ordering::Relaxed)
    });
    let drained_after = tokio::select! {
        took = all_done => Some(took),
        () = ticker => None,
        () = tokio::time::sleep(args.give_up_after) => None,
    };
    producer.abort();
    let ran_for = clock.now() - start;
    bar.finish();
    let (completed, failed) = (
        completed.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
    );
    night(
        name,
        args,
        &sim,
        &charges,
        completed,
        failed,
        drained_after,
        ran_for,
    )
}

/// The request of order `order` as a plain Stripe call would send it.
fn payment_intent(order: u64, keyed: bool) -> http::Request<Bytes> {
    let mut builder = http::Request::post(format!("{BASE}/v1/payment_intents"))
        .header(header::AUTHORIZATION, format!("Bearer {KEY}"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if keyed {
        let key = ratewise::idempotency::IdempotencyKey::new();
        builder = builder.header("idempotency-key", key.as_str());
    }
    builder
        .body(Bytes::from(workload::form(order)))
        .unwrap_or_else(|_| http::Request::new(Bytes::new()))
}

/// (3) ratewise: the Stripe client (paced to the account's limit, breaker, retry budget,
/// idempotency keys) under the work queue (job-level retries, parking on "not until T").
pub(crate) async fn ratewise(args: &Args) -> Night {
    let name = "ratewise (client+queue)";
    let charges = Arc::new(Charges::default());
    let sim = workload::stripe(args, &charges);
    let clock = sim.clock();
    let start = clock.now();
    let bar = progress::bar(name, args.total_jobs());
    let limit = Rate::per_second(u64::from(args.limit));
    let client = match StripeClient::builder(KEY)
        .base_url(BASE)
        .transport(Arc::new(sim.transport()))
        .clock(sim.clock())
        .seed(args.seed)
        // The simulated account has one write limit: tell the client, as you would your own.
        .limits(StripeLimits::new(Mode::Live).global(limit).endpoint(limit))
        .policy(CallPolicy::new().max_wait(Duration::from_secs(10)))
        .build()
    {
        Ok(client) => client,
        Err(e) => panic!("the Stripe client could not be built: {e}"),
    };
    let queue = {
        let client = client.clone();
        WorkQueue::builder(move |order: u64, ctx: JobContext| {
            let client = client.clone();
            async move {
                let params = CreatePaymentIntent::new(1_000 + (order % 9_000) as i64, "usd")
                    .metadata("order", order.to_string());
                client
                    .payment_intents()
                    .create(params)
                    .idempotency_key(ctx.key)
                    .send()
                    .await
            }
        })
        .concurrency(args.workers)
        .capacity(args.total_jobs().max(1))
        // A payments backlog: job-level retries in seconds to a minute, not the hours default.
        .backoff(
            Backoff::new()
                .base(Duration::from_secs(2))
                .cap(Duration::from_secs(60)),
        )
        .clock(sim.clock())
        .seed(args.seed)
        .name("three_am")
        .start()
    };

    let producer = {
        let (queue, args) = (queue.clone(), args.clone());
        tokio::spawn(async move {
            workload::arrivals(&args, |order| {
                let queue = queue.clone();
                async move {
                    let job = Job::new(order).group("stripe:acct_simulated");
                    if queue.push(job).await.is_err() {
                        eprintln!("three_am: the queue refused order {order}");
                    }
                }
            })
            .await;
        })
    };
    let total = args.total_jobs();
    let ended = || async {
        queue
            .stats()
            .await
            .map(|s| (s.completed + s.dead_lettered) as usize)
            .unwrap_or(0)
    };
    let all_done = async {
        loop {
            if ended().await >= total {
                return clock.now() - start;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let shown = Arc::new(AtomicUsize::new(0));
    let updater = {
        let (queue, shown) = (queue.clone(), Arc::clone(&shown));
        tokio::spawn(async move {
            loop {
                if let Ok(stats) = queue.stats().await {
                    shown.store(
                        (stats.completed + stats.dead_lettered) as usize,
                        Ordering::Relaxed,
                    );
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
    };
    let ticker = tick(&bar, &sim, start, || shown.load(Ordering::Relaxed));
    let drained_after = tokio::select! {
        took = all_done => Some(took),
        () = ticker => None,
        () = tokio::time::sleep(args.give_up_after) => None,
    };
    producer.abort();
    updater.abort();
    let ran_for = clock.now() - start;
    let report = queue.shutdown(Duration::from_secs(1)).await;
    bar.finish();
    let stats = queue.stats().await.ok();
    let completed = stats.as_ref().map_or(0, |s| s.completed as usize);
    let failed = report.dead_letters.len();
    let stuck = report.unrun.len() + report.interrupted.len();
    let mut night = night(
        name,
        args,
        &sim,
        &charges,
        completed,
        failed,
        drained_after,
        ran_for,
    );
    night.stuck = stuck;
    night
}

/// Refreshes `bar` once a (virtual) second; never returns.
async fn tick(
    bar: &indicatif::ProgressBar,
    sim: &SimUpstream,
    start: std::time::Instant,
    ended: impl Fn() -> usize,
) {
    let clock = sim.clock();
    loop {
        let ledger = sim.ledger();
        bar.set_position(ended() as u64);
        bar.set_message(progress::status(
            clock.now() - start,
            ledger.requests(),
            ledger.throttled(),
        ));
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[allow(clippy::too_many_arguments)]
fn night(
    strategy: &'static str,
    args: &Args,
    sim: &SimUpstream,
    charges: &Charges,
    completed: usize,
    failed: usize,
    drained_after: Option<Duration>,
    ran_for: Duration,
) -> Night {
    let ledger = sim.ledger();
    let jobs = args.total_jobs();
    Night {
        strategy,
        jobs,
        completed,
        permanent_failures: failed,
        stuck: jobs.saturating_sub(completed + failed),
        requests: ledger.requests(),
        throttled: ledger.throttled(),
        duplicate_charges: charges.duplicates(),
        drained_after,
        ran_for,
    }
}
