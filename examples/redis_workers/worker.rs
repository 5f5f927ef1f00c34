//! One worker process: a `WorkQueue` over the shared Redis store, its Stripe client paced by the
//! Redis-shared limit. Reports `status <completed> <attempts> <retries> <running> <waiting>`
//! on stdout every 250 ms for the supervisor's live line.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use ratewise::core::clock::{Clock, TokioClock};
use ratewise::core::limit::Rate;
use ratewise::core::queue::{JobContext, JobOutcome, WorkQueue};
use ratewise::core::redis::{RedisConfig, RedisConnection, RedisGcraLimiter, RedisJobStore};
use ratewise::upstream::CallPolicy;
use ratewise_stripe::{ClientBuilder, CreatePaymentIntent, StripeClient};

use crate::args::Args;

/// How long the queue must look empty before a worker exits.
const IDLE_EXIT: Duration = Duration::from_millis(1_500);

pub(crate) async fn run(args: Args, index: usize, sim_url: String) -> ExitCode {
    let config = RedisConfig::new(args.redis_url.as_str()).prefix(args.prefix.as_str());
    let redis = match RedisConnection::new(&config) {
        Ok(redis) => redis,
        Err(e) => {
            eprintln!("worker {index}: {e}");
            return ExitCode::FAILURE;
        }
    };
    // One bucket for every worker: the endpoint's limit, shared through Redis.
    let limiter = RedisGcraLimiter::new(redis.clone(), "stripe", Rate::per_second(args.rate))
        .credential("acct_sim")
        .burst(1);
    let client = match StripeClient::builder("sk_live_simulated".to_owned())
        .base_url(sim_url)
        .limiter(Arc::new(limiter))
        .policy(
            CallPolicy::new()
                .max_attempts(6)
                .max_wait(Duration::from_secs(30)),
        )
        .build()
    {
        Ok(client) => client,
        Err(e) => {
            eprintln!("worker {index}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let store = RedisJobStore::<u64>::builder(redis, "payments")
        .visibility_timeout(args.visibility)
        .consumer(format!("worker-{index}-{}", std::process::id()))
        .build();

    let running = Arc::new(AtomicI64::new(0));
    let gauge = Arc::clone(&running);
    let queue = WorkQueue::builder(move |order: u64, ctx: JobContext| {
        let (client, gauge) = (client.clone(), Arc::clone(&gauge));
        async move {
            gauge.fetch_add(1, Ordering::Relaxed);
            let amount = 1_000 + i64::try_from(order % 10_000).unwrap_or(0);
            let result = client
                .payment_intents()
                .create(
                    CreatePaymentIntent::new(amount, "usd").metadata("order", order.to_string()),
                )
                .idempotency_key(ctx.key)
                .send()
                .await;
            gauge.fetch_sub(1, Ordering::Relaxed);
            JobOutcome::from(result)
        }
    })
    .store(Arc::new(store))
    .concurrency(8)
    .poll_interval(Duration::from_millis(100))
    .name("payments")
    .start();

    let clock = TokioClock::new();
    let mut empty_since = None;
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let Ok(stats) = queue.stats().await else {
            empty_since = None;
            continue;
        };
        println!(
            "status {} {} {} {} {}",
            stats.completed,
            stats.attempts,
            stats.retries + stats.parks,
            running.load(Ordering::Relaxed),
            stats.depth + stats.in_flight
        );
        if stats.depth == 0 && stats.in_flight == 0 {
            let since = *empty_since.get_or_insert(clock.now());
            if clock.now() - since >= IDLE_EXIT {
                break;
            }
        } else {
            empty_since = None;
        }
    }
    let report = queue.shutdown(Duration::from_secs(10)).await;
    if !report.interrupted.is_empty() {
        eprintln!(
            "worker {index}: {} jobs interrupted, left in Redis",
            report.interrupted.len()
        );
    }
    ExitCode::SUCCESS
}
