//! What one strategy did that night, and the table that compares them.

use std::time::Duration;

use crate::args::Args;

/// One strategy's night, from the simulator's ledger and the job counts.
#[derive(Clone, Debug)]
pub(crate) struct Night {
    pub(crate) strategy: &'static str,
    pub(crate) jobs: usize,
    pub(crate) completed: usize,
    pub(crate) permanent_failures: usize,
    /// Jobs neither completed nor failed when the run stopped (a strategy that never drained).
    pub(crate) stuck: usize,
    pub(crate) requests: u64,
    pub(crate) throttled: u64,
    pub(crate) duplicate_charges: u64,
    /// When the last job ended, if every job did.
    pub(crate) drained_after: Option<Duration>,
    pub(crate) ran_for: Duration,
}

impl Night {
    pub(crate) fn amplification(&self) -> f64 {
        self.requests as f64 / self.jobs.max(1) as f64
    }

    fn drain(&self, minimum: Duration) -> String {
        match self.drained_after {
            Some(t) => format!(
                "{:.0} s ({:.2}x)",
                t.as_secs_f64(),
                t.as_secs_f64() / minimum.as_secs_f64().max(f64::MIN_POSITIVE)
            ),
            None => format!("not drained at {:.0} s", self.ran_for.as_secs_f64()),
        }
    }

    pub(crate) fn json(&self, minimum: Duration) -> serde_json::Value {
        serde_json::json!({
            "strategy": self.strategy,
            "jobs": self.jobs,
            "completed": self.completed,
            "permanent_failures": self.permanent_failures,
            "stuck": self.stuck,
            "requests": self.requests,
            "amplification": self.amplification(),
            "throttled_429": self.throttled,
            "duplicate_charges": self.duplicate_charges,
            "drained_after_s": self.drained_after.map(|d| d.as_secs_f64()),
            "ran_for_s": self.ran_for.as_secs_f64(),
            "drain_vs_minimum": self.drained_after
                .map(|d| d.as_secs_f64() / minimum.as_secs_f64().max(f64::MIN_POSITIVE)),
        })
    }
}

/// The side-by-side table.
pub(crate) fn table(args: &Args, nights: &[Night]) -> String {
    let minimum = args.physical_minimum();
    let header = [
        "strategy",
        "completed",
        "requests",
        "amplification",
        "429s",
        "duplicate charges",
        "permanent failures",
        "time to drain (vs minimum)",
    ];
    let rows: Vec<[String; 8]> = nights
        .iter()
        .map(|n| {
            [
                n.strategy.to_owned(),
                format!("{} / {}", n.completed, n.jobs),
                n.requests.to_string(),
                format!("{:.2}x", n.amplification()),
                n.throttled.to_string(),
                n.duplicate_charges.to_string(),
                (n.permanent_failures + n.stuck).to_string(),
                n.drain(minimum),
            ]
        })
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].len())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[String]| {
        let cells: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        format!("| {} |", cells.join(" | "))
    };
    let mut out = vec![
        line(&header.map(str::to_owned)),
        format!(
            "|{}|",
            widths
                .iter()
                .map(|w| "-".repeat(w + 2))
                .collect::<Vec<_>>()
                .join("|")
        ),
    ];
    out.extend(rows.iter().map(|r| line(r)));
    out.push(format!(
        "\n{} jobs ({} backlog + {} webhooks), write limit {}/s: physical minimum {:.0} s. \
         Permanent failures include jobs still stuck when a strategy was stopped.",
        args.total_jobs(),
        args.jobs,
        args.webhook_jobs(),
        args.limit,
        minimum.as_secs_f64()
    ));
    out.join("\n")
}
