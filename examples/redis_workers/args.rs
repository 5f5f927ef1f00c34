//! Command-line flags, shared by the supervisor and the workers it spawns.

use std::time::Duration;

/// Which half of the example this process is.
pub(crate) enum Role {
    /// Starts the simulator, pushes the jobs, spawns and watches the workers.
    Supervisor,
    /// Drains the queue: `--worker <index> <simulator URL>`.
    Worker { index: usize, sim_url: String },
}

pub(crate) struct Args {
    pub(crate) role: Role,
    pub(crate) redis_url: String,
    /// The key prefix of this run (the supervisor picks one; workers are told).
    pub(crate) prefix: String,
    pub(crate) jobs: u64,
    pub(crate) workers: usize,
    /// The shared limit, requests per second, across every worker.
    pub(crate) rate: u64,
    /// When the supervisor kills worker 0 (`None`: never).
    pub(crate) kill_at: Option<Duration>,
    /// How long a dead worker's job waits before another takes it over.
    pub(crate) visibility: Duration,
}

pub(crate) fn parse() -> Result<Args, String> {
    let mut args = Args {
        role: Role::Supervisor,
        redis_url: std::env::var("REDIS_URL")
            .ok()
            .filter(|url| !url.trim().is_empty())
            .unwrap_or_else(|| "redis://127.0.0.1:6379".to_owned()),
        prefix: format!("ratewise:example:{}:", std::process::id()),
        jobs: 500,
        workers: 4,
        rate: 25,
        kill_at: Some(Duration::from_secs(6)),
        visibility: Duration::from_secs(3),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let number = |s: String| s.parse::<u64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--jobs" => args.jobs = number(value()?)?.max(1),
            "--workers" => args.workers = usize::try_from(number(value()?)?.max(1)).unwrap_or(1),
            "--rate" => args.rate = number(value()?)?.max(1),
            "--kill-at" => {
                let secs = number(value()?)?;
                args.kill_at = (secs > 0).then(|| Duration::from_secs(secs));
            }
            "--redis" => args.redis_url = value()?,
            "--prefix" => args.prefix = value()?,
            "--worker" => {
                let index = usize::try_from(number(value()?)?).unwrap_or(0);
                let sim_url = value()?;
                args.role = Role::Worker { index, sim_url };
            }
            other => {
                return Err(format!(
                    "unknown flag {other} (use --jobs, --workers, --rate, --kill-at)"
                ));
            }
        }
    }
    Ok(args)
}
