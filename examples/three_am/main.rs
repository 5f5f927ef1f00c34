//! The main job: the article's 3 AM incident, replayed offline, three ways.
//!
//! 3:14 AM. 8,400 order jobs are queued behind a Stripe webhook handler, webhooks keep coming,
//! and Stripe degrades for 15 seconds. The same night is run three times against a fresh
//! simulated Stripe (in virtual time, so it takes seconds):
//!
//! 1. the incident's code: retry every 100 ms on any 429, no cap, no idempotency key;
//! 2. the article's `withRetry`: full jitter, 4 attempts, `Retry-After` obeyed, a key per job,
//!    but no pacing, no budget, no breaker;
//! 3. ratewise: the Stripe client (paced to the account's limit, breaker, retry budget,
//!    idempotency keys) under the work queue (job retries, parking when Stripe says "later").
//!
//! The simulated account charges refused requests against its limit, so a retry storm keeps
//! itself throttled ("Stripe is now rate-limiting your IP entirely"), and 1 % of connections
//! reset after the charge committed (a retry without a key charges twice). `--lenient-server`
//! runs the same night against a server that does not charge refused requests.
//!
//! ```sh
//! cargo run --release --example three_am -- [--jobs 8400] [--limit 100] [--seed 314]
//!     [--workers 50] [--give-up-after 1800] [--json results.json] [--real-time]
//!     [--lenient-server]
//! ```
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod args;
mod progress;
mod strategies;
mod tally;
mod workload;

use std::future::Future;
use std::process::ExitCode;

use args::Args;
use tally::Night;

fn main() -> ExitCode {
    let args = match Args::parse() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    println!(
        "3:14 AM: {} jobs queued, {} more webhooks/s for {} s, Stripe write limit {}/s, \
         a 15 s degradation at t=30 s, refused requests {} the limit. {} workers per \
         strategy; {} time.\n",
        args.jobs,
        args.webhook_rate,
        args.webhook_for.as_secs(),
        args.limit,
        if args.lenient {
            "not charged against"
        } else {
            "charged against"
        },
        args.workers,
        if args.real_time {
            "wall-clock"
        } else {
            "virtual"
        }
    );
    let mut nights = Vec::new();
    for run in [
        run(&args, strategies::incident(&args)),
        run(&args, strategies::with_retry(&args)),
        run(&args, strategies::ratewise(&args)),
    ] {
        match run {
            Ok(night) => nights.push(night),
            Err(message) => {
                eprintln!("three_am: {message}");
                return ExitCode::FAILURE;
            }
        }
    }
    println!("\n{}", tally::table(&args, &nights));
    if let Some(path) = &args.json {
        let minimum = args.physical_minimum();
        let json = serde_json::json!({
            "jobs": args.total_jobs(),
            "backlog": args.jobs,
            "webhooks": args.webhook_jobs(),
            "limit_per_s": args.limit,
            "seed": args.seed,
            "workers": args.workers,
            "physical_minimum_s": minimum.as_secs_f64(),
            "strategies": nights.iter().map(|n| n.json(minimum)).collect::<Vec<_>>(),
        });
        let text = serde_json::to_string_pretty(&json).unwrap_or_default();
        if let Err(e) = std::fs::write(path, text) {
            eprintln!("three_am: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
        println!("results written to {}", path.display());
    }
    ExitCode::SUCCESS
}

/// Runs one strategy on a runtime of its own: paused (virtual) time unless `--real-time`.
fn run(args: &Args, night: impl Future<Output = Night>) -> Result<Night, String> {
    let mut builder = tokio::runtime::Builder::new_current_thread();
    builder.enable_all();
    if !args.real_time {
        builder.start_paused(true);
    }
    let runtime = builder.build().map_err(|e| format!("no runtime: {e}"))?;
    Ok(runtime.block_on(night))
}
