//! 1,000 text messages from three senders (a long code, a toll-free number and a short code)
//! through a simulated Twilio, with a progress bar per sender.
//!
//! Runs offline, in virtual time, against the testkit's in-memory Twilio: the account allows
//! 100 requests in flight, 1 % of requests are answered 429 / 20429 as if other processes
//! shared the account, and each sender's queue drains at its type's rate (long code 1,
//! toll-free 3, short code 100 segments per second). The client paces each sender by segments
//! (GSM-7 and UCS-2 bodies of one and two segments), retries every 20429 (never processed),
//! and the final check proves no message was sent twice and each sender ran at its limit.
//!
//! ```sh
//! cargo run --release --example twilio_sms -- [--messages N] [--workers N] [--seed N]
//! ```
#![allow(clippy::print_stdout)]

use std::collections::{HashMap, HashSet, VecDeque};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use ratewise::upstream::CallPolicy;
use ratewise_testkit::{Fault, FaultPlan, SimUpstream};
use ratewise_twilio::sim::{TwilioDialect, TwilioHandler, account_concurrency};
use ratewise_twilio::{ClientBuilder, CreateMessage, SenderType, TwilioClient};

const SENDERS: [(&str, u64); 3] = [
    // (number, share of the messages in percent)
    ("+14155550100", 12),
    ("+18005550100", 28),
    ("24273", 60),
];

struct Args {
    messages: u64,
    workers: u64,
    seed: u64,
}

fn args() -> Result<Args, String> {
    let mut args = Args {
        messages: 1000,
        workers: 200,
        seed: 7,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value"))?
            .parse::<u64>()
            .map_err(|e| format!("{flag}: {e}"))?;
        match flag.as_str() {
            "--messages" => args.messages = value,
            "--workers" => args.workers = value.max(1),
            "--seed" => args.seed = value,
            other => {
                return Err(format!(
                    "unknown flag {other} (use --messages, --workers, --seed)"
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
            eprintln!("twilio_sms: {message}");
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
            eprintln!("twilio_sms: no runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(args))
}

/// Bodies of one and two segments, GSM-7 and UCS-2 (emoji), unique per message.
fn body(i: u64) -> String {
    match i % 4 {
        0 => format!("Order {i} shipped"),
        1 => format!("Order {i}: {}", "details ".repeat(22)),
        2 => format!("Order {i} shipped 🚚"),
        _ => format!("Order {i} 🚚 {}", "ship ".repeat(14)),
    }
}

async fn run(args: Args) -> ExitCode {
    let handler = Arc::new(TwilioHandler::new());
    let sim = SimUpstream::builder()
        .dialect(TwilioDialect::new())
        .handler(handler.clone())
        .limit(account_concurrency(100))
        .faults(FaultPlan::new().random(0.01, Fault::throttle_without_hint()))
        .latency(Duration::from_millis(100))
        .seed(args.seed)
        .build();
    let client = match TwilioClient::builder("AC00000000000000000000000000000001", "simulated")
        .base_url("http://twilio.sim")
        .transport(Arc::new(sim.transport()))
        .clock(sim.clock())
        .seed(args.seed)
        // A batch job: workers wait for their sender's pace instead of failing fast.
        .policy(
            CallPolicy::new()
                .max_attempts(10)
                .max_wait(Duration::from_secs(3600)),
        )
        .build()
    {
        Ok(client) => client,
        Err(e) => {
            eprintln!("twilio_sms: {e}");
            return ExitCode::FAILURE;
        }
    };
    let limits = client.upstream().provider().limits().clone();

    // Earliest deadline first across senders, so every sender stays busy at once.
    let progress = MultiProgress::new();
    let style = ProgressStyle::with_template("{prefix:>28} [{bar:40}] {pos:>4}/{len:4} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    let mut bars = HashMap::new();
    let mut due = Vec::new();
    let mut next = 0;
    for (from, share) in SENDERS {
        let count = args.messages * share / 100;
        let kind = SenderType::infer(from);
        let bar = progress.add(ProgressBar::new(count));
        bar.set_style(style.clone());
        bar.set_prefix(format!("{from} ({kind})"));
        bars.insert(from, bar);
        let rate = limits.rate_of(from).amount() as f64;
        let mut segments = 0u32;
        for _ in 0..count {
            let message = CreateMessage::new(format!("+1415555{next:04}"), from).body(body(next));
            next += 1;
            due.push((f64::from(segments) / rate, message.clone()));
            segments += message.segments();
        }
    }
    due.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total = due.len();
    let queue = Arc::new(Mutex::new(
        due.into_iter().map(|(_, m)| m).collect::<VecDeque<_>>(),
    ));
    let bars = Arc::new(bars);
    let clock = sim.clock();
    let started = clock.now();
    let failures = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..args.workers)
        .map(|_| {
            let (client, queue, bars, failures, clock) = (
                client.clone(),
                queue.clone(),
                bars.clone(),
                failures.clone(),
                clock.clone(),
            );
            tokio::spawn(async move {
                // The closure takes the guard: the lock is released before the send.
                while let Some(message) = queue.lock().ok().and_then(|mut q| q.pop_front()) {
                    let from = message.from_number().unwrap_or_default().to_owned();
                    let result = client.messages().create(message).send().await;
                    if let Some(bar) = bars.get(from.as_str()) {
                        bar.inc(1);
                        let elapsed = clock.now().saturating_duration_since(started);
                        bar.set_message(format!("{:.0} s virtual", elapsed.as_secs_f64()));
                    }
                    if let Err(error) = result
                        && let Ok(mut failures) = failures.lock()
                    {
                        failures.push(error.to_string());
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        if let Err(e) = worker.await {
            eprintln!("a worker panicked: {e}");
        }
    }
    for bar in bars.values() {
        bar.finish();
    }

    let sent = handler.sent();
    let ledger = sim.ledger();
    let failures = failures.lock().map(|f| f.clone()).unwrap_or_default();
    println!();
    println!("messages requested           {total}");
    println!("messages sent                {}", sent.len());
    println!("errors reaching the caller   {}", failures.len());
    println!("20429s retried               {}", ledger.throttled());
    println!(
        "requests sent                {} ({:.3} per message)",
        ledger.requests(),
        ledger.requests() as f64 / total.max(1) as f64
    );
    let mut rates_ok = true;
    for (from, _) in SENDERS {
        let mine: Vec<_> = sent.iter().filter(|m| m.from == from).collect();
        let (Some(first), Some(last)) = (
            mine.iter().map(|m| m.accepted_at).min(),
            mine.iter().map(|m| m.accepted_at).max(),
        ) else {
            continue;
        };
        let segments: u64 = mine.iter().map(|m| u64::from(m.segments)).sum();
        let span = last.duration_since(first).unwrap_or_default().as_secs_f64();
        let burst = limits.burst_of(from);
        let rate = segments.saturating_sub(burst) as f64 / span.max(f64::EPSILON);
        let limit = limits.rate_of(from).amount() as f64;
        let ok = (rate / limit - 1.0).abs() <= 0.05;
        rates_ok &= ok;
        println!(
            "{from:>14}: {:>4} messages, {segments:>4} segments, sustained {rate:>7.2}/s of {limit}/s{}",
            mine.len(),
            if ok { "" } else { "  <- off by more than 5 %" }
        );
    }
    let unique: HashSet<_> = sent.iter().map(|m| (&m.to, &m.body)).collect();
    let duplicates = sent.len() - unique.len();
    let elapsed: Duration = clock.now().saturating_duration_since(started);
    println!(
        "virtual time                 {:.1} s",
        elapsed.as_secs_f64()
    );
    println!(
        "ledger: duplicates {duplicates} (testkit ledger: {})",
        ledger.duplicates()
    );
    if failures.is_empty() && duplicates == 0 && sent.len() == total && rates_ok {
        println!("check: OK — every message sent once, each sender within 5 % of its limit");
        ExitCode::SUCCESS
    } else {
        for failure in failures.iter().take(5) {
            println!("error: {failure}");
        }
        println!("check: FAILED");
        ExitCode::FAILURE
    }
}
