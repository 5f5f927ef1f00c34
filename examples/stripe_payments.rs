//! 2,000 PaymentIntents through a faulty simulated Stripe, and the ledger check that proves no
//! card was charged twice.
//!
//! Runs offline, in virtual time, against the testkit's in-memory Stripe: about 20 % of
//! requests meet a fault (the connection reset *after* Stripe committed the PaymentIntent, a
//! 500, `lock_timeout`, bursts of 429s) behind Stripe's live limits (100/s global, 25/s for the endpoint).
//! Every call carries one idempotency key for all its attempts, so a retry after a reset is
//! answered by a replay instead of a second charge.
//!
//! ```sh
//! cargo run --release --example stripe_payments -- [--calls N] [--workers N] [--seed N]
//! ```
#![allow(clippy::print_stdout)]

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use ratewise::error::Retryable;
use ratewise::upstream::CallPolicy;
use ratewise_stripe::sim::{OBJECT_LOCK, StripeDialect, StripeHandler};
use ratewise_stripe::{ClientBuilder, CreatePaymentIntent, StripeClient};
use ratewise_testkit::{Fault, FaultPlan, ServerLimit, SimUpstream};

struct Args {
    calls: u64,
    workers: u64,
    seed: u64,
}

fn args() -> Result<Args, String> {
    let mut args = Args {
        calls: 2000,
        workers: 50,
        seed: 5,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value"))?
            .parse::<u64>()
            .map_err(|e| format!("{flag}: {e}"))?;
        match flag.as_str() {
            "--calls" => args.calls = value,
            "--workers" => args.workers = value.max(1),
            "--seed" => args.seed = value,
            other => {
                return Err(format!(
                    "unknown flag {other} (use --calls, --workers, --seed)"
                ));
            }
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("stripe_payments: {message}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("stripe_payments: no runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(args))
}

async fn run(args: Args) -> ExitCode {
    let faults = FaultPlan::new()
        .random(0.07, Fault::ResetAfterCommit)
        .random(0.06, Fault::server_error(StatusCode::INTERNAL_SERVER_ERROR))
        .random(0.03, Fault::throttled_by(OBJECT_LOCK))
        .bursts(0.01, 5, Fault::throttle_without_hint());
    let sim = SimUpstream::builder()
        .dialect(StripeDialect::new())
        .handler(StripeHandler::new())
        .limit(ServerLimit::token_bucket(100.0, 100))
        .limit(ServerLimit::token_bucket(25.0, 25).per_operation())
        .faults(faults)
        .seed(args.seed)
        .build();
    let client = match StripeClient::builder("sk_live_simulated".to_owned())
        .base_url("http://stripe.sim")
        .transport(Arc::new(sim.transport()))
        .clock(sim.clock())
        .seed(args.seed)
        // A batch job: workers wait for the budgets instead of failing fast.
        .policy(
            CallPolicy::new()
                .max_attempts(10)
                .max_wait(Duration::from_secs(600)),
        )
        .build()
    {
        Ok(client) => client,
        Err(e) => {
            eprintln!("stripe_payments: {e}");
            return ExitCode::FAILURE;
        }
    };

    let clock = sim.clock();
    let started = clock.now();
    let per_worker = args.calls.div_ceil(args.workers);
    let workers: Vec<_> = (0..args.workers)
        .map(|worker| {
            let client = client.clone();
            let first = worker * per_worker;
            let last = (first + per_worker).min(args.calls);
            tokio::spawn(async move {
                let mut tally = Tally::default();
                for order in first..last {
                    let params = CreatePaymentIntent::new(1000 + order as i64, "usd")
                        .metadata("order", order.to_string());
                    match client
                        .payment_intents()
                        .create(params)
                        .send_with_meta()
                        .await
                    {
                        Ok(meta) => {
                            tally.succeeded += 1;
                            tally.replayed += u64::from(meta.replayed);
                            tally.retried += u64::from(meta.attempts > 1);
                        }
                        Err(error) if error.is_retryable() => {
                            tally.transient += 1;
                            eprintln!("transient error escaped: {error}");
                        }
                        Err(error) => {
                            tally.permanent += 1;
                            eprintln!("permanent error: {error}");
                        }
                    }
                }
                tally
            })
        })
        .collect();
    let mut total = Tally::default();
    for worker in workers {
        match worker.await {
            Ok(tally) => total.add(&tally),
            Err(e) => eprintln!("a worker panicked: {e}"),
        }
    }
    let elapsed = clock.now().saturating_duration_since(started);

    let ledger = sim.ledger();
    let created = ledger.side_effects("POST /v1/payment_intents");
    let duplicates = ledger.duplicates();
    println!("PaymentIntents requested     {}", args.calls);
    println!("calls succeeded              {}", total.succeeded);
    println!("  after at least one retry   {}", total.retried);
    println!("  answered by a replay       {}", total.replayed);
    println!("typed permanent errors       {}", total.permanent);
    println!("transient errors escaped     {}", total.transient);
    println!(
        "requests sent                {} ({:.2} per call)",
        ledger.requests(),
        ledger.requests() as f64 / args.calls.max(1) as f64
    );
    println!("  connection resets          {}", ledger.resets());
    println!(
        "  500s                       {}",
        ledger.with_status(StatusCode::INTERNAL_SERVER_ERROR)
    );
    println!("  429s (lock_timeout, rate)  {}", ledger.throttled());
    println!(
        "virtual time                 {:.1} s",
        elapsed.as_secs_f64()
    );
    println!("ledger: PaymentIntents created {created}, duplicates {duplicates}");

    let every_call_accounted =
        total.succeeded + total.permanent == args.calls && total.transient == 0;
    if duplicates == 0 && created == total.succeeded && every_call_accounted {
        println!("ledger check: OK — exactly one PaymentIntent per successful call, none twice");
        ExitCode::SUCCESS
    } else {
        println!("ledger check: FAILED");
        ExitCode::FAILURE
    }
}

#[derive(Default)]
struct Tally {
    succeeded: u64,
    retried: u64,
    replayed: u64,
    permanent: u64,
    transient: u64,
}

impl Tally {
    fn add(&mut self, other: &Tally) {
        self.succeeded += other.succeeded;
        self.retried += other.retried;
        self.replayed += other.replayed;
        self.permanent += other.permanent;
        self.transient += other.transient;
    }
}
