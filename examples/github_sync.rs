//! Mirrors the issues of one simulated GitHub repository into another, with a progress bar
//! and a rate-limit summary.
//!
//! Runs offline, in virtual time, against the testkit's in-memory GitHub with GitHub's limits:
//! 5,000 requests per hour per resource, and the secondary limits (100 in flight, 80
//! content-creating requests per minute, 500 per hour) that answer `403 You have exceeded a
//! secondary rate limit`. The client stays under them on its own: creates are serialized a
//! second apart, reads go through the ETag cache. A second pass shows the sync is incremental
//! and nearly free: every unchanged page comes back `304 Not Modified`, which costs no primary
//! budget.
//!
//! ```sh
//! cargo run --example github_sync -- [--issues N] [--workers N] [--seed N]
//! ```
#![allow(clippy::print_stdout)]

use std::collections::HashSet;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{StreamExt, pin_mut};
use http::StatusCode;
use indicatif::{ProgressBar, ProgressStyle};
use ratewise::upstream::CallPolicy;
use ratewise_github::sim::GitHubSim;
use ratewise_github::{ClientBuilder, CreateIssue, GitHubClient, Issue, StateFilter};
use ratewise_testkit::SimUpstream;

const OWNER: &str = "octo-org";
const SOURCE: &str = "upstream";
const MIRROR: &str = "mirror";

struct Args {
    issues: u64,
    workers: u64,
    seed: u64,
}

fn args() -> Result<Args, String> {
    let mut args = Args {
        issues: 250,
        workers: 8,
        seed: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value"))?
            .parse::<u64>()
            .map_err(|e| format!("{flag}: {e}"))?;
        match flag.as_str() {
            "--issues" => args.issues = value,
            "--workers" => args.workers = value.max(1),
            "--seed" => args.seed = value,
            other => {
                return Err(format!(
                    "unknown flag {other} (use --issues, --workers, --seed)"
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
            eprintln!("github_sync: {message}");
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
            eprintln!("github_sync: no runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(args))
}

/// Every issue of `repo`, following `Link: rel="next"`.
async fn all_issues(
    client: &GitHubClient,
    repo: &str,
) -> Result<Vec<Issue>, ratewise_github::Error> {
    let stream = client
        .issues(OWNER, repo)
        .list()
        .state(StateFilter::All)
        .per_page(100)
        .pages()
        .into_stream();
    pin_mut!(stream);
    let mut issues = Vec::new();
    while let Some(issue) = stream.next().await {
        issues.push(issue?);
    }
    Ok(issues)
}

/// One sync pass: creates in the mirror every source issue it lacks. Returns how many.
async fn sync(client: &GitHubClient, workers: u64, bar: &ProgressBar) -> Result<u64, String> {
    let source = all_issues(client, SOURCE)
        .await
        .map_err(|e| e.to_string())?;
    let mirrored: HashSet<String> = all_issues(client, MIRROR)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|i| i.title)
        .collect();
    let missing: Vec<Issue> = source
        .into_iter()
        .rev()
        .filter(|i| !mirrored.contains(&i.title))
        .collect();
    bar.set_length(missing.len() as u64);
    bar.set_position(0);
    let queue = Arc::new(std::sync::Mutex::new(missing));
    let tasks: Vec<_> = (0..workers)
        .map(|_| {
            let (client, queue, bar) = (client.clone(), Arc::clone(&queue), bar.clone());
            tokio::spawn(async move {
                let mut created = 0_u64;
                loop {
                    let next = queue.lock().map(|mut q| q.pop()).unwrap_or(None);
                    let Some(issue) = next else { break };
                    let mut copy = CreateIssue::new(issue.title.clone()).body(format!(
                        "Mirrored from {OWNER}/{SOURCE}#{}.\n\n{}",
                        issue.number,
                        issue.body.as_deref().unwrap_or("")
                    ));
                    for label in &issue.labels {
                        copy = copy.label(label.name.clone());
                    }
                    match client.issues(OWNER, MIRROR).create(copy).send().await {
                        Ok(_) => created += 1,
                        Err(e) => bar.println(format!("#{}: {e}", issue.number)),
                    }
                    bar.inc(1);
                }
                created
            })
        })
        .collect();
    let mut created = 0;
    for task in tasks {
        created += task.await.map_err(|e| e.to_string())?;
    }
    Ok(created)
}

async fn run(args: Args) -> ExitCode {
    let mut github = GitHubSim::new().repo(OWNER, SOURCE).repo(OWNER, MIRROR);
    for n in 1..=args.issues {
        let label = ["bug", "docs", "enhancement"][(n % 3) as usize];
        github = github.issue(OWNER, SOURCE, &format!("Upstream issue {n}"), &[label]);
    }
    let github = Arc::new(github);
    let sim = github
        .install(SimUpstream::builder())
        .seed(args.seed)
        .build();
    let client = match GitHubClient::builder("ghp_simulated")
        .base_url("http://github.sim")
        .user_agent("ratewise-github-sync-example")
        .transport(Arc::new(sim.transport()))
        .clock(sim.clock())
        .seed(args.seed)
        // A batch job: workers wait for the budgets instead of failing fast.
        .policy(
            CallPolicy::new()
                .max_attempts(6)
                .max_wait(Duration::from_secs(3600)),
        )
        .build()
    {
        Ok(client) => client,
        Err(e) => {
            eprintln!("github_sync: {e}");
            return ExitCode::FAILURE;
        }
    };

    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("{prefix:>8} [{bar:40}] {pos}/{len} issues")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let mut created = Vec::new();
    for pass in ["first", "second"] {
        bar.set_prefix(pass);
        match sync(&client, args.workers, &bar).await {
            Ok(n) => created.push(n),
            Err(e) => {
                bar.abandon();
                eprintln!("github_sync: {pass} pass failed: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    bar.finish();

    let ledger = sim.ledger();
    let secondary = ledger.with_status(StatusCode::FORBIDDEN) + ledger.throttled();
    let cache = client.etag_cache().map(|c| c.stats()).unwrap_or_default();
    println!(
        "issues mirrored              first pass {}, second pass {}",
        created[0], created[1]
    );
    println!("requests sent                {}", ledger.requests());
    println!(
        "  304 Not Modified (free)    {} of {} conditional GETs",
        cache.not_modified, cache.conditional
    );
    println!("  secondary-limit refusals   {secondary}");
    println!(
        "virtual time                 {:.0} s",
        sim.elapsed().as_secs_f64()
    );
    match client.rate_limit().get().send().await {
        Ok(overview) => {
            println!("rate limits (GET /rate_limit)");
            for (resource, limit) in &overview.resources {
                println!(
                    "  {resource:<12} used {:>5} of {:>5}, {:>5} left",
                    limit.used, limit.limit, limit.remaining
                );
            }
        }
        Err(e) => eprintln!("github_sync: rate limit: {e}"),
    }
    let mirrored = github.issue_count(OWNER, MIRROR) as u64;
    if mirrored == args.issues && created[1] == 0 && secondary == 0 {
        println!("sync check: OK — every issue mirrored once, no secondary limit met");
        ExitCode::SUCCESS
    } else {
        println!(
            "sync check: FAILED ({mirrored} of {} mirrored)",
            args.issues
        );
        ExitCode::FAILURE
    }
}
