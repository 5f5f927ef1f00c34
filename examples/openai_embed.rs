//! Embeds a generated corpus at OpenAI's tokens-per-minute limit, with a progress bar.
//!
//! By default it runs offline, in virtual time, against the testkit's simulated OpenAI
//! (per-model RPM and TPM buckets that charge failed requests too, OpenAI's headers and 429
//! bodies): 5,000 texts of 4 to 400 words (about a million tokens) from 64 workers under
//! 3,000 RPM and 150,000 TPM, scaled down from Tier 1's 1,000,000 TPM for
//! `text-embedding-3-small` so the run spans minutes instead of fitting in one bucket.
//! With `--live` it calls the real API with `OPENAI_API_KEY` (keep `--requests` small: it
//! costs money). The last line says what was achieved: tokens per minute against the limit,
//! requests sent, 429s and retries.
//!
//! ```sh
//! cargo run --release --example openai_embed -- [--requests N] [--workers N] [--rpm N] [--tpm N]
//! OPENAI_API_KEY=sk-… cargo run --example openai_embed -- --live --requests 20
//! ```
#![allow(clippy::print_stdout)]

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use ratewise::upstream::CallPolicy;
use ratewise_openai::sim::{OpenAiDialect, OpenAiHandler, corpus};
use ratewise_openai::{ClientBuilder, CreateEmbedding, OpenAiClient};
use ratewise_testkit::SimUpstream;

const MODEL: &str = "text-embedding-3-small";

struct Args {
    live: bool,
    requests: u64,
    workers: u64,
    rpm: u64,
    tpm: u64,
}

fn args() -> Result<Args, String> {
    let mut args = Args {
        live: false,
        requests: 5_000,
        workers: 64,
        rpm: 3_000,
        tpm: 150_000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--live" {
            args.live = true;
            continue;
        }
        let value = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value"))?
            .parse::<u64>()
            .map_err(|e| format!("{flag}: {e}"))?;
        match flag.as_str() {
            "--requests" => args.requests = value,
            "--workers" => args.workers = value.max(1),
            "--rpm" => args.rpm = value.max(1),
            "--tpm" => args.tpm = value.max(1),
            other => {
                return Err(format!(
                    "unknown flag {other} (use --live, --requests, --workers, --rpm, --tpm)"
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
            eprintln!("openai_embed: {message}");
            return ExitCode::from(2);
        }
    };
    // The simulator runs in virtual time: minutes of traffic in seconds.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(!args.live)
        .build();
    match runtime {
        Ok(runtime) => runtime.block_on(run(args)),
        Err(e) => {
            eprintln!("openai_embed: no runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> ExitCode {
    let policy = CallPolicy::new()
        .max_attempts(8)
        .max_wait(Duration::from_secs(600));
    let (client, sim) = if args.live {
        match OpenAiClient::builder_from_env() {
            Ok(builder) => match builder.limits(args.rpm, args.tpm).policy(policy).build() {
                Ok(client) => (client, None),
                Err(e) => {
                    eprintln!("openai_embed: {e}");
                    return ExitCode::FAILURE;
                }
            },
            Err(e) => {
                eprintln!("openai_embed: {e}");
                return ExitCode::from(2);
            }
        }
    } else {
        let handler = OpenAiHandler::new(args.rpm, args.tpm);
        let upstream = SimUpstream::builder()
            .dialect(OpenAiDialect::new())
            .handler(handler.clone())
            .latency(Duration::from_millis(50))
            .build();
        let client = OpenAiClient::builder("sk-sim")
            .base_url("http://openai.sim/v1")
            .transport(Arc::new(upstream.transport()))
            .clock(upstream.clock())
            .limits(args.rpm, args.tpm)
            .policy(policy)
            .build();
        match client {
            Ok(client) => (client, Some(handler)),
            Err(e) => {
                eprintln!("openai_embed: {e}");
                return ExitCode::FAILURE;
            }
        }
    };

    let count = usize::try_from(args.requests).unwrap_or(usize::MAX);
    let texts = Arc::new(corpus(count, 42));
    let bar = ProgressBar::new(args.requests);
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} embeddings, {msg} tokens")
    {
        bar.set_style(style);
    }
    let clock = client.upstream().clock().clone();
    let started = clock.now();
    let next = Arc::new(AtomicU64::new(0));
    let tokens = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..args.workers)
        .map(|_| {
            let (client, texts, next, tokens, failures, bar) = (
                client.clone(),
                texts.clone(),
                next.clone(),
                tokens.clone(),
                failures.clone(),
                bar.clone(),
            );
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(text) = usize::try_from(i).ok().and_then(|i| texts.get(i)) else {
                        break;
                    };
                    match client
                        .embeddings()
                        .create(CreateEmbedding::new(MODEL, text.as_str()))
                        .await
                    {
                        Ok(response) => {
                            let used =
                                tokens.fetch_add(response.usage.total_tokens, Ordering::Relaxed);
                            bar.set_message((used + response.usage.total_tokens).to_string());
                        }
                        Err(error) => {
                            failures.fetch_add(1, Ordering::Relaxed);
                            bar.println(format!("text {i}: {error}"));
                        }
                    }
                    bar.inc(1);
                }
            })
        })
        .collect();
    for worker in workers {
        if worker.await.is_err() {
            failures.fetch_add(1, Ordering::Relaxed);
        }
    }
    bar.finish();

    let elapsed = clock.now().saturating_duration_since(started);
    let used = tokens.load(Ordering::Relaxed);
    let per_minute = used as f64 / elapsed.as_secs_f64().max(1e-9) * 60.0;
    let stats = client.upstream().stats();
    // The simulator counts its 429s; against the live API every retry here followed a 429, a
    // 5xx or a timeout, so the retries bound them.
    let throttled = sim.map_or_else(|| "n/a".to_owned(), |h| h.stats().rate_limited.to_string());
    println!(
        "{:.0} tokens/min achieved vs {} limit ({:.1} %) over {:.1} s; requests {}, 429s {}, retries {}, failed {}",
        per_minute,
        args.tpm,
        per_minute / args.tpm as f64 * 100.0,
        elapsed.as_secs_f64(),
        stats.requests,
        throttled,
        stats.retries,
        failures.load(Ordering::Relaxed),
    );
    if failures.load(Ordering::Relaxed) == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
