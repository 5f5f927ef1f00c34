//! N worker processes drain one Redis-backed queue of PaymentIntents against a simulated Stripe,
//! under one rate limit shared through Redis, with a live line per worker.
//!
//! The parent process starts the simulator (Stripe's live limits: 100/s global, 25/s for the
//! endpoint; 2 % of connections reset after Stripe committed), pushes the jobs into a
//! [`RedisJobStore`], and spawns the workers: copies of this binary with `--worker`. Each worker
//! runs a `WorkQueue` over the shared store, its Stripe client paced by a `RedisGcraLimiter`
//! that every worker shares (the endpoint's 25/s), and sends each job's idempotency key on every
//! attempt. Halfway through, the parent SIGKILLs one worker: its jobs in flight are redelivered
//! to the others after the visibility timeout, with the same keys. The final check reads the
//! simulator's ledger: one PaymentIntent per job, none twice.
//!
//! Needs a Redis (`REDIS_URL`, default `redis://127.0.0.1:6379`); the keys live under a prefix
//! of their own and are deleted at the end.
//!
//! ```sh
//! cargo run --release --features redis --example redis_workers -- [--jobs N] [--workers N] [--rate N] [--kill-at SECS]
//! ```
#![allow(clippy::print_stdout)]

mod args;
mod supervisor;
mod worker;

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = match args::parse() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("redis_workers: {message}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("redis_workers: no runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match std::mem::replace(&mut args.role, args::Role::Supervisor) {
        args::Role::Supervisor => runtime.block_on(supervisor::run(args)),
        args::Role::Worker { index, sim_url } => {
            runtime.block_on(worker::run(args, index, sim_url))
        }
    }
}
