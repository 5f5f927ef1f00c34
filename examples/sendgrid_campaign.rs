//! A 10,000-recipient newsletter through a simulated SendGrid that allows 10 mail sends per
//! 10 s window, with a progress bar; then the same campaign again, which sends nothing.
//!
//! Runs offline, in virtual time, against the testkit's in-memory mail send. The campaign is
//! cut into batches of 1,000 personalizations; the client reads `X-RateLimit-*` from every
//! response and spreads the batches over the windows, so no 429 reaches it. Each batch
//! carries an idempotency key derived from the campaign id and its number, claimed in a dedupe
//! store: the second run finds every batch already sent. With `--credits N` the account runs out
//! part-way: the campaign stops at once with `CreditsExhausted` and says which batches went out.
//!
//! ```sh
//! cargo run --example sendgrid_campaign -- [--recipients N] [--credits N] [--no-headers]
//! ```
#![allow(clippy::print_stdout)]

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use ratewise::limit::Rate;
use ratewise::upstream::CallPolicy;
use ratewise_sendgrid::sim::{SendGridDialect, SendGridHandler};
use ratewise_sendgrid::{
    ClientBuilder, Content, Mail, MemoryDedupe, Personalization, SendGridClient, SendGridLimits,
};
use ratewise_testkit::{ServerLimit, SimUpstream};

/// SendGrid's window in this simulation: 10 mail sends per 10 s.
const WINDOW_REQUESTS: u64 = 10;
const WINDOW: Duration = Duration::from_secs(10);

struct Args {
    recipients: usize,
    credits: Option<u64>,
    headers: bool,
}

fn args() -> Result<Args, String> {
    let mut args = Args {
        recipients: 10_000,
        credits: None,
        headers: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--no-headers" {
            args.headers = false;
            continue;
        }
        let value = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value"))?
            .parse::<u64>()
            .map_err(|e| format!("{flag}: {e}"))?;
        match flag.as_str() {
            "--recipients" => args.recipients = usize::try_from(value).unwrap_or(usize::MAX),
            "--credits" => args.credits = Some(value),
            other => {
                return Err(format!(
                    "unknown flag {other} (use --recipients, --credits, --no-headers)"
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
            eprintln!("sendgrid_campaign: {message}");
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
            eprintln!("sendgrid_campaign: no runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(args))
}

async fn run(args: Args) -> ExitCode {
    let handler = match args.credits {
        Some(credits) => SendGridHandler::new().credits(credits),
        None => SendGridHandler::new(),
    };
    let handler = Arc::new(handler);
    let dialect = if args.headers {
        SendGridDialect::new()
    } else {
        SendGridDialect::without_headers()
    };
    let sim = SimUpstream::builder()
        .dialect(dialect)
        .handler(Arc::clone(&handler))
        .limit(ServerLimit::fixed_window(WINDOW_REQUESTS as u32, WINDOW).per_operation())
        .build();
    let store = Arc::new(MemoryDedupe::with_clock(10_000, sim.clock()));
    let mut builder = SendGridClient::builder("SG.simulated")
        .base_url("http://sendgrid.sim")
        .transport(Arc::new(sim.transport()))
        .clock(sim.clock())
        .dedupe(store)
        // A campaign: a batch may wait for the next window instead of failing fast.
        .policy(CallPolicy::new().max_wait(Duration::from_secs(120)));
    if !args.headers {
        // No headers to learn from: the configured budget must mirror the window on its own.
        builder =
            builder.limits(SendGridLimits::new().budget(Rate::new(WINDOW_REQUESTS, WINDOW), 1));
    }
    let client = match builder.build() {
        Ok(client) => client,
        Err(e) => {
            eprintln!("sendgrid_campaign: {e}");
            return ExitCode::FAILURE;
        }
    };

    let template = Mail::new("news@example.com")
        .subject("Spring news")
        .content(Content::html("<p>Hello {{name}}, spring is here.</p>"))
        .category("newsletter");
    let recipients: Vec<Personalization> = (0..args.recipients)
        .map(|i| {
            Personalization::new(format!("reader{i}@example.com"))
                .template_data("name", format!("Reader {i}"))
        })
        .collect();
    let campaign = client.campaign("spring-2026", template, recipients);

    let bar = ProgressBar::new(args.recipients as u64);
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {pos:>6}/{len} recipients  batch {msg}")
    {
        bar.set_style(style);
    }
    let clock = sim.clock();
    let started = clock.now();
    let report = campaign
        .clone()
        .run_with_progress(|batch, result| {
            bar.set_message(format!(
                "{} {}",
                batch.index,
                if result.is_ok() { "accepted" } else { "failed" }
            ));
            if result.is_ok() {
                bar.inc(batch.recipients as u64);
            }
        })
        .await;
    bar.finish();
    let elapsed = clock.now().saturating_duration_since(started);

    let ledger = sim.ledger();
    println!("batches                      {}", report.batches);
    println!(
        "  accepted                   {:?}",
        report.accepted_batches()
    );
    println!(
        "recipients accepted          {}",
        report.recipients_accepted()
    );
    if let Some((batch, error)) = &report.stopped {
        println!("stopped at batch {}: {error}", batch.index);
    }
    println!("mail sends received          {}", ledger.requests());
    println!("429s at the server           {}", ledger.throttled());
    println!(
        "virtual time                 {:.1} s",
        elapsed.as_secs_f64()
    );

    // The same campaign again: every accepted batch is already recorded, nothing is resent.
    let before = ledger.requests();
    let again = campaign.run().await;
    let resent = ledger.requests() - before;
    let deduplicated = again
        .accepted
        .iter()
        .filter(|(_, a)| a.deduplicated)
        .count();
    println!("second run: {deduplicated} batch(es) recognised as sent, {resent} request(s) sent");

    let messages = handler.messages().len();
    println!(
        "ledger: messages accepted {messages}, duplicates {} (by key) / {} (by body)",
        handler.duplicates(),
        ledger.duplicates()
    );
    let consistent = messages == report.accepted.len()
        && handler.duplicates() == 0
        && ledger.duplicates() == 0
        && deduplicated == report.accepted.len();
    let expected_stop = match &report.stopped {
        None => report.is_complete(),
        Some((_, error)) => args.credits.is_some() && error.is_credits_exhausted(),
    };
    if consistent && expected_stop {
        println!("ledger check: OK — every accepted batch sent exactly once");
        ExitCode::SUCCESS
    } else {
        println!("ledger check: FAILED");
        ExitCode::FAILURE
    }
}
