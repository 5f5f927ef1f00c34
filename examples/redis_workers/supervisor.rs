//! The supervisor: simulator, jobs, worker processes, a live line per worker, the ledger check.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use http::StatusCode;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use ratewise::core::clock::{Clock, TokioClock};
use ratewise::core::queue::{Job, JobStore};
use ratewise::core::redis::{RedisConfig, RedisConnection, RedisJobStore};
use ratewise_stripe::sim::{StripeDialect, StripeHandler};
use ratewise_testkit::{Fault, FaultPlan, ServerLimit, SimServer, SimUpstream};

use crate::args::Args;

const CREATE: &str = "POST /v1/payment_intents";

pub(crate) async fn run(args: Args) -> ExitCode {
    let config = RedisConfig::new(args.redis_url.as_str()).prefix(args.prefix.as_str());
    let redis = match RedisConnection::new(&config) {
        Ok(redis) => redis,
        Err(e) => return fail(&format!("{e}")),
    };
    if let Err(e) = redis.ping().await {
        return fail(&format!(
            "no Redis answers ({e}); start one (`redis-server`) or set REDIS_URL"
        ));
    }
    let sim = SimUpstream::builder()
        .dialect(StripeDialect::new())
        .handler(StripeHandler::new())
        .limit(ServerLimit::token_bucket(100.0, 100))
        .limit(ServerLimit::token_bucket(25.0, 25).per_operation())
        .faults(FaultPlan::new().random(0.02, Fault::ResetAfterCommit))
        .seed(7)
        .build();
    let server = match SimServer::start(sim).await {
        Ok(server) => server,
        Err(e) => return fail(&format!("simulator: {e}")),
    };

    let store = RedisJobStore::<u64>::builder(redis, "payments").build();
    let clock = TokioClock::new();
    for order in 0..args.jobs {
        let job = Job::new(order).group("stripe:acct_sim");
        if let Err(e) = store.push(job, clock.wall()).await {
            return fail(&format!("pushing job {order}: {e}"));
        }
    }
    println!(
        "{} PaymentIntents queued in Redis; {} worker processes share {}/s (the endpoint's limit); \
         worker 0 is killed {}",
        args.jobs,
        args.workers,
        args.rate,
        args.kill_at
            .map_or("never".to_owned(), |at| format!("at {} s", at.as_secs()))
    );

    let multi = MultiProgress::new();
    let total = multi.add(
        ProgressBar::new(args.jobs).with_style(
            ProgressStyle::with_template("queue     [{bar:30}] {pos}/{len} done  {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        ),
    );
    let started = clock.now();
    let mut workers = Vec::new();
    for index in 0..args.workers {
        let line = multi.add(ProgressBar::new_spinner());
        match spawn(&args, index, &server.base_url()) {
            Ok(child) => workers.push(Worker::watch(index, child, line)),
            Err(e) => return fail(&format!("spawning worker {index}: {e}")),
        }
    }

    let limit = Duration::from_secs(60 + 3 * args.jobs / args.rate);
    let mut killed = false;
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let elapsed = clock.now() - started;
        if let Ok(stats) = store.stats().await {
            let left = u64::try_from(stats.depth + stats.in_flight).unwrap_or(u64::MAX);
            total.set_position(args.jobs.saturating_sub(left));
            total.set_message(format!(
                "{} waiting, {} in flight, {:.0}/s",
                stats.depth,
                stats.in_flight,
                server.upstream().ledger().side_effects(CREATE) as f64
                    / elapsed.as_secs_f64().max(0.001)
            ));
        }
        if let Some(at) = args.kill_at.filter(|at| !killed && elapsed >= *at) {
            killed = true;
            if let Some(victim) = workers.first_mut() {
                victim.kill(at);
            }
        }
        if workers.iter_mut().all(Worker::exited) || elapsed > limit {
            break;
        }
    }
    let elapsed = clock.now() - started;
    for worker in &mut workers {
        worker.stop();
    }
    total.finish();

    let ledger = server.upstream().ledger();
    let created = ledger.side_effects(CREATE);
    let duplicates = ledger.duplicates();
    let stats = store.stats().await.ok();
    println!();
    println!("PaymentIntents queued         {}", args.jobs);
    println!("PaymentIntents created        {created}");
    println!("  created twice               {duplicates}");
    println!(
        "requests sent                 {} ({} answered by an idempotent replay)",
        ledger.requests(),
        ledger.replays()
    );
    println!("  connections reset          {}", ledger.resets());
    println!(
        "  429s                        {}",
        ledger.with_status(StatusCode::TOO_MANY_REQUESTS)
    );
    println!(
        "wall time                     {:.1} s: {:.1} PaymentIntents/s against a shared limit of {}/s",
        elapsed.as_secs_f64(),
        created as f64 / elapsed.as_secs_f64().max(0.001),
        args.rate
    );
    if let Some(stats) = stats {
        println!(
            "left in Redis                 {} waiting, {} in flight, {} dead letters",
            stats.depth, stats.in_flight, stats.dead_letters
        );
    }
    if let Err(e) = store.purge().await {
        eprintln!("redis_workers: could not delete the run's keys: {e}");
    }
    server.shutdown().await;
    if created == args.jobs && duplicates == 0 {
        println!(
            "ledger check: OK — one PaymentIntent per job, none twice, a worker killed mid-run"
        );
        ExitCode::SUCCESS
    } else {
        println!("ledger check: FAILED");
        ExitCode::FAILURE
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("redis_workers: {message}");
    ExitCode::FAILURE
}

fn spawn(args: &Args, index: usize, sim_url: &str) -> std::io::Result<Child> {
    Command::new(std::env::current_exe()?)
        .args(["--worker", &index.to_string(), sim_url])
        .args(["--redis", &args.redis_url, "--prefix", &args.prefix])
        .args(["--rate", &args.rate.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
}

/// A worker process and its live line.
struct Worker {
    index: usize,
    child: Child,
    line: ProgressBar,
    status: Arc<Mutex<String>>,
    done: bool,
}

impl Worker {
    /// Follows the worker's status lines on a thread of their own.
    fn watch(index: usize, mut child: Child, line: ProgressBar) -> Self {
        let pid = child.id();
        let status = Arc::new(Mutex::new("starting".to_owned()));
        line.set_style(
            ProgressStyle::with_template("{prefix} {spinner} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        line.set_prefix(format!("worker {index} (pid {pid:>6})"));
        line.set_message("starting");
        line.enable_steady_tick(Duration::from_millis(120));
        if let Some(stdout) = child.stdout.take() {
            let (line, status) = (line.clone(), Arc::clone(&status));
            std::thread::spawn(move || {
                for text in BufReader::new(stdout).lines().map_while(Result::ok) {
                    let numbers: Vec<u64> = text
                        .split_whitespace()
                        .skip(1)
                        .filter_map(|n| n.parse().ok())
                        .collect();
                    if let [completed, attempts, retries, running, _left] = numbers[..] {
                        let message = format!(
                            "{completed:>5} done  {attempts:>5} attempts  {retries:>3} retried or parked  {running:>2} running"
                        );
                        line.set_message(message.clone());
                        *status.lock().unwrap_or_else(PoisonError::into_inner) = message;
                    }
                }
            });
        }
        Self {
            index,
            child,
            line,
            status,
            done: false,
        }
    }

    fn kill(&mut self, at: Duration) {
        if self.child.kill().is_ok() {
            let _ = self.child.wait();
            let last = self
                .status
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            self.line.finish_with_message(format!(
                "{last}  KILLED (SIGKILL) at {:.0} s: its jobs in flight go to the others",
                at.as_secs_f64()
            ));
            self.done = true;
        }
    }

    fn exited(&mut self) -> bool {
        if !self.done && matches!(self.child.try_wait(), Ok(Some(_))) {
            self.done = true;
            let last = self
                .status
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            self.line
                .finish_with_message(format!("{last}  (queue empty: exited)"));
        }
        self.done
    }

    fn stop(&mut self) {
        if !self.exited() {
            let _ = self.child.kill();
            let _ = self.child.wait();
            self.line
                .finish_with_message(format!("worker {} stopped at the time limit", self.index));
        }
    }
}
