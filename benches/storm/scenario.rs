//! The storm's scenarios: a server limit, a workload, and the physical minimum to finish it.

use std::time::Duration;

use ratewise_testkit::{FaultPlan, ServerLimit, SimUpstream};

use crate::openai::{OpenAiDialect, TOKENS_HEADER};

/// Calls per cell in the request-limited scenarios (30 s of work at 100 req/s).
const CALLS: usize = 3_000;
/// The OpenAI scenario's account: 6,000 RPM and 600,000 TPM.
pub(crate) const RPM: u64 = 6_000;
pub(crate) const TPM: u64 = 600_000;

/// What the server enforces.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Kind {
    TokenBucket,
    FixedWindow,
    SlidingWindow,
    Concurrency,
    OpenAi,
    Outage,
}

/// One scenario: the upstream to build and the work to push through it.
#[derive(Clone, Debug)]
pub(crate) struct Scenario {
    pub(crate) name: &'static str,
    pub(crate) kind: Kind,
    pub(crate) calls: usize,
    pub(crate) latency: Duration,
    /// Tokens per call (OpenAI scenario only; empty elsewhere).
    pub(crate) tokens: Vec<u64>,
    /// The sustained limit in calls per second.
    pub(crate) limit_rate: f64,
    /// The earliest every call could have finished, given the limit.
    pub(crate) minimum: Duration,
    /// A human description of the limit for the tables.
    pub(crate) limit_text: String,
    /// Whether the ratewise targets apply.
    pub(crate) targets: bool,
    /// Requests after which a cell is stopped (its unfinished calls counted as such): bounds
    /// the wall time of a retry loop that never ends.
    pub(crate) request_cap: Option<u64>,
}

const OUTAGE_FROM: Duration = Duration::from_secs(5);
const OUTAGE_FOR: Duration = Duration::from_secs(10);

impl Scenario {
    pub(crate) fn all() -> Vec<Scenario> {
        let ms10 = Duration::from_millis(10);
        let windowed = |name, kind, text: &str| Scenario {
            name,
            kind,
            calls: CALLS,
            latency: ms10,
            tokens: Vec::new(),
            limit_rate: 100.0,
            // The first 100 at t = 0, then 100 more each second.
            minimum: Duration::from_secs((CALLS as u64).div_ceil(100) - 1) + ms10,
            limit_text: text.to_owned(),
            targets: true,
            request_cap: None,
        };
        let mut rng = fastrand::Rng::with_seed(42);
        let tokens: Vec<u64> = (0..2 * CALLS).map(|_| rng.u64(20..=380)).collect();
        let total: u64 = tokens.iter().sum();
        let mean = total as f64 / tokens.len() as f64;
        let token_secs = total.saturating_sub(TPM) as f64 / (TPM as f64 / 60.0);
        let request_secs = (tokens.len() as u64).saturating_sub(RPM) as f64 / (RPM as f64 / 60.0);
        let concurrency_latency = Duration::from_millis(100);
        let pre_outage = 100 + 100 * OUTAGE_FROM.as_secs() as usize;
        vec![
            Scenario {
                minimum: Duration::from_secs_f64((CALLS - 100) as f64 / 100.0) + ms10,
                ..windowed("token bucket", Kind::TokenBucket, "100/s, burst 100")
            },
            windowed("fixed window", Kind::FixedWindow, "100 per 1 s window"),
            windowed(
                "sliding window",
                Kind::SlidingWindow,
                "100 per trailing 1 s",
            ),
            Scenario {
                name: "concurrency",
                kind: Kind::Concurrency,
                calls: CALLS,
                latency: concurrency_latency,
                tokens: Vec::new(),
                limit_rate: 20.0 / concurrency_latency.as_secs_f64(),
                minimum: concurrency_latency * (CALLS as u32).div_ceil(20),
                limit_text:
                    "20 in flight, 100 ms each (10 callers: they are the limit, minimum 30 s)"
                        .to_owned(),
                targets: true,
                request_cap: None,
            },
            Scenario {
                name: "openai rpm+tpm",
                kind: Kind::OpenAi,
                calls: tokens.len(),
                latency: ms10,
                limit_rate: (TPM as f64 / 60.0 / mean).min(RPM as f64 / 60.0),
                minimum: Duration::from_secs_f64(token_secs.max(request_secs)) + ms10,
                limit_text: format!("{RPM} RPM + {TPM} TPM, {mean:.0} tokens/call, failures count"),
                tokens,
                targets: true,
                // Failures count against RPM: a loop faster than 100/s never gets out.
                request_cap: Some(20 * 2 * CALLS as u64),
            },
            Scenario {
                name: "outage",
                kind: Kind::Outage,
                targets: false,
                // Before the outage: the burst plus 5 s; after it: a full burst, then the rate.
                minimum: OUTAGE_FROM
                    + OUTAGE_FOR
                    + Duration::from_secs_f64((CALLS - pre_outage - 100) as f64 / 100.0)
                    + ms10,
                ..windowed(
                    "outage",
                    Kind::Outage,
                    "100/s, burst 100; 503 for t in [5 s, 15 s)",
                )
            },
        ]
    }

    /// This scenario as `callers` callers see it: with fewer callers than the concurrency limit
    /// allows in flight, the callers are the limit.
    pub(crate) fn for_callers(&self, callers: usize) -> Scenario {
        let mut scenario = self.clone();
        if let Kind::Concurrency = self.kind {
            let lanes = callers.min(20);
            scenario.limit_rate = lanes as f64 / self.latency.as_secs_f64();
            scenario.minimum =
                self.latency * u32::try_from(self.calls.div_ceil(lanes)).unwrap_or(u32::MAX);
        }
        scenario
    }

    /// The simulated upstream for one cell.
    pub(crate) fn upstream(&self, clock: ratewise::clock::SharedClock, seed: u64) -> SimUpstream {
        let builder = SimUpstream::builder()
            .clock(clock)
            .latency(self.latency)
            .seed(seed);
        match self.kind {
            Kind::TokenBucket => builder.limit(ServerLimit::token_bucket(100.0, 100)),
            Kind::FixedWindow => {
                builder.limit(ServerLimit::fixed_window(100, Duration::from_secs(1)))
            }
            Kind::SlidingWindow => {
                builder.limit(ServerLimit::sliding_window(100, Duration::from_secs(1)))
            }
            Kind::Concurrency => builder.limit(ServerLimit::concurrency(20)),
            Kind::OpenAi => builder
                .dialect(OpenAiDialect::default())
                .limit(
                    ServerLimit::token_bucket(RPM as f64 / 60.0, RPM as u32)
                        .named("requests")
                        .count_failures(true),
                )
                .limit(
                    ServerLimit::token_bucket(TPM as f64 / 60.0, TPM as u32)
                        .named("tokens")
                        .cost_from_header(TOKENS_HEADER.clone()),
                ),
            Kind::Outage => builder
                .limit(ServerLimit::token_bucket(100.0, 100))
                .faults(FaultPlan::new().outage(OUTAGE_FROM, OUTAGE_FOR)),
        }
        .build()
    }
}
