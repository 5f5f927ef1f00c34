//! A worker process sharing one Redis-backed limiter with its siblings (the multi-process test).
//!
//! Usage: `redis-limiter-worker <redis-url> <key-prefix> <per-second> <burst> <start-unix-ms>
//! <run-ms>`. Sleeps until the shared start time (wall clock, so sibling processes start
//! together), then acquires one request at a time until `run-ms` later, and prints
//! `admitted <n>`, `errors <n>` (acquires that found Redis unreachable) and `after_error <n>`
//! (admissions after the last error, i.e. whether it resumed) on stdout.

use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

use ratewise_core::clock::{Clock, TokioClock};
use ratewise_core::limit::{Cost, Limiter, Rate, ThrottleReason};
use ratewise_core::redis::{RedisConfig, RedisConnection, RedisGcraLimiter};

struct Args {
    url: String,
    prefix: String,
    per_second: u64,
    burst: u64,
    start_ms: u64,
    run: Duration,
}

fn parse() -> Result<Args, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, prefix, per_second, burst, start_ms, run_ms] = args.as_slice() else {
        return Err("usage: redis-limiter-worker <url> <prefix> <per-second> <burst> <start-unix-ms> <run-ms>".into());
    };
    let number = |s: &str| s.parse::<u64>().map_err(|e| format!("{s}: {e}"));
    Ok(Args {
        url: url.clone(),
        prefix: prefix.clone(),
        per_second: number(per_second)?,
        burst: number(burst)?,
        start_ms: number(start_ms)?,
        run: Duration::from_millis(number(run_ms)?),
    })
}

fn wall_ms(clock: &TokioClock) -> u64 {
    let since = clock.wall().duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = match parse() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let config = RedisConfig::new(args.url.as_str())
        .prefix(args.prefix)
        .response_timeout(Duration::from_millis(500))
        .connect_timeout(Duration::from_millis(500));
    let redis = match RedisConnection::new(&config) {
        Ok(redis) => redis,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let limiter = RedisGcraLimiter::new(redis, "worker-test", Rate::per_second(args.per_second))
        .burst(args.burst);
    let clock = TokioClock::new();
    let now_ms = wall_ms(&clock);
    tokio::time::sleep(Duration::from_millis(args.start_ms.saturating_sub(now_ms))).await;
    let end = clock.now() + args.run;
    let (mut admitted, mut errors, mut after_error) = (0_u64, 0_u64, 0_u64);
    while clock.now() < end {
        let left = end.saturating_duration_since(clock.now());
        match limiter.acquire(&Cost::request(), left).await {
            Ok(_permit) if clock.now() < end => {
                admitted += 1;
                after_error += 1;
            }
            Ok(_) => break,
            Err(refused) if refused.reason == ThrottleReason::Unavailable => {
                errors += 1;
                after_error = 0;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(_) => {}
        }
    }
    println!("admitted {admitted}");
    println!("errors {errors}");
    println!("after_error {after_error}");
    ExitCode::SUCCESS
}
