//! The generic mechanisms of ratewise, with no knowledge of any provider.
//!
//! | module | owns |
//! |---|---|
//! | [`clock`] | injected monotonic and wall time (real, virtual, manual) |
//! | [`hint`] | parsers of server hints: `Retry-After`, `retry-after-ms`, epoch resets; the clamp |
//! | [`backoff`] | exponential backoff with full (default), equal, decorrelated or no jitter |
//! | [`budget`] | the retry budget: retries add at most a fixed share of load |
//! | [`retry`] | retry for any async closure, sharing backoff, budget and hints |
//! | [`error`] | the core error type and the [`error::Retryable`] classification trait |
//! | [`telemetry`] | `tracing` events for every retry |
//! | [`idempotency`] | idempotency keys minted once per logical operation |
//! | [`dedupe`] | client-side at-most-once sends for upstreams without idempotency keys |
//! | [`breaker`] | the circuit breaker |
//! | [`limit`] | client-side rate limiters |
//! | [`provider`] | the `Provider` trait (a provider's dialect) and `RequestSpec` (one logical call) |
//! | [`verdict`] | what one response means, as data: success, retry (after, why), fail (why) |
//! | [`transport`] | the only door to the network (bodies buffered or streamed), and its reqwest implementation |
//! | [`options`] | the pipeline settings every provider client builder shares |
//! | [`upstream`] | the pipeline: one logical call through breaker, limiters, transport, inspection and retry; streamed bodies |
//! | [`stats`] | the article's four numbers, in process |
//! | [`secret`] | credentials redacted from `Debug`, `Display`, errors and traces |
//! | [`quota`] | named budgets, costs and server-reported quota snapshots |
//! | [`queue`] | the rate-limited work queue: job store trait, in-memory store, workers, parks, dead letters |
//! | `redis` | feature `redis`: limiter, quota, breaker signal and dedupe shared across processes |

pub mod backoff;
pub mod breaker;
pub mod budget;
pub mod clock;
pub mod dedupe;
pub mod error;
pub mod hint;
pub mod idempotency;
pub mod limit;
pub mod options;
pub mod pages;
pub mod provider;
pub mod queue;
pub mod quota;
#[cfg(feature = "redis")]
pub mod redis;
pub mod retry;
pub mod secret;
pub mod stats;
pub mod telemetry;
pub mod transport;
pub mod upstream;
pub mod verdict;
