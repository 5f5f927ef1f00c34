//! Command-line flags of `three_am`.

use std::path::PathBuf;
use std::time::Duration;

/// The scenario's knobs; every one has the default the README shows.
#[derive(Clone, Debug)]
pub(crate) struct Args {
    /// Jobs in the backlog at 3:14 AM.
    pub(crate) jobs: usize,
    /// The simulated account's write limit, requests per second.
    pub(crate) limit: u32,
    /// Seed of every random choice (faults, jitter).
    pub(crate) seed: u64,
    /// Webhook arrivals per second on top of the backlog, for `webhook_for`.
    pub(crate) webhook_rate: u32,
    /// How long webhooks keep arriving.
    pub(crate) webhook_for: Duration,
    /// Workers pulling jobs, for every strategy.
    pub(crate) workers: usize,
    /// When a strategy that has not drained is stopped.
    pub(crate) give_up_after: Duration,
    /// Run on the wall clock instead of virtual time.
    pub(crate) real_time: bool,
    /// The simulated account does not charge refused requests against its limit (a kinder
    /// server than the incident's, which kept a retry storm throttled).
    pub(crate) lenient: bool,
    /// Where to write the results as JSON.
    pub(crate) json: Option<PathBuf>,
}

impl Args {
    pub(crate) fn parse() -> Result<Self, String> {
        let mut args = Args {
            jobs: 8_400,
            limit: 100,
            seed: 314,
            webhook_rate: 10,
            webhook_for: Duration::from_secs(60),
            workers: 50,
            give_up_after: Duration::from_secs(30 * 60),
            real_time: false,
            lenient: false,
            json: None,
        };
        let mut it = std::env::args().skip(1);
        while let Some(flag) = it.next() {
            if flag == "--real-time" {
                args.real_time = true;
                continue;
            }
            if flag == "--lenient-server" {
                args.lenient = true;
                continue;
            }
            if flag == "--help" || flag == "-h" {
                return Err(USAGE.to_owned());
            }
            let value = it
                .next()
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
            let number = || {
                value
                    .parse::<u64>()
                    .map_err(|e| format!("{flag} {value}: {e}\n{USAGE}"))
            };
            match flag.as_str() {
                "--jobs" => args.jobs = usize::try_from(number()?).unwrap_or(usize::MAX),
                "--limit" => args.limit = u32::try_from(number()?.max(1)).unwrap_or(u32::MAX),
                "--seed" => args.seed = number()?,
                "--workers" => args.workers = usize::try_from(number()?.max(1)).unwrap_or(1),
                "--give-up-after" => args.give_up_after = Duration::from_secs(number()?.max(1)),
                "--json" => args.json = Some(PathBuf::from(value)),
                other => return Err(format!("unknown flag {other}\n{USAGE}")),
            }
        }
        Ok(args)
    }

    /// Every job the run sees: the backlog plus the webhooks.
    pub(crate) fn total_jobs(&self) -> usize {
        self.jobs + self.webhook_jobs()
    }

    pub(crate) fn webhook_jobs(&self) -> usize {
        usize::try_from(u64::from(self.webhook_rate) * self.webhook_for.as_secs()).unwrap_or(0)
    }

    /// The fastest any strategy could finish: every job at the account's limit, and no sooner
    /// than the last webhook arrives.
    pub(crate) fn physical_minimum(&self) -> Duration {
        let at_limit = Duration::from_secs_f64(self.total_jobs() as f64 / f64::from(self.limit));
        at_limit.max(self.webhook_for)
    }
}

const USAGE: &str = "usage: cargo run --release --example three_am -- \
[--jobs N (8400)] [--limit REQ_PER_S (100)] [--seed N] [--workers N (50)] \
[--give-up-after SECS (1800)] [--json PATH] [--real-time] [--lenient-server]";
