//! Baseline retry strategies: what the 3 AM incident ran, side by side with ratewise.
//!
//! Each [`Baseline`] is a plain call wrapped in a retry policy as its source wrote it: it sends
//! the request through a [`Transport`], looks at the status and headers, and decides whether
//! and when to send it again. No pacing, no retry budget, no breaker. The storm benchmark and
//! the examples run them against the same [`SimUpstream`](crate::SimUpstream) as ratewise's
//! pipeline, through the same transport, so the comparison is fair.
//!
//! | strategy | attempts | wait | retries on |
//! |---|---|---|---|
//! | [`NaiveRetry`] | unlimited | 100 ms, fixed | 429, 5xx, broken connections |
//! | [`ArticleRetry`] (the article's `withRetry`) | 4 | `Retry-After`, else full jitter 200 ms · 2ⁿ, cap 30 s | 429, 5xx, reset, timeout |
//! | [`OpenAiPython`] (openai-python v3.3.1) | 3 | `retry-after-ms`/`retry-after` if in (0, 120 s], else 0.5 s · 2ⁿ, cap 8 s, minus up to 25 % | `x-should-retry`, 408, 409, 429, 5xx, connection errors; never a `Retry-After` over 120 s |
//! | [`StripeNode`] (stripe-node v22.5.0) | 3 | 0.5 s · 2ⁿ⁻¹, cap 5 s, × 0.5–1, at least 0.5 s | `Stripe-Should-Retry`, 409, 5xx, connection errors; **not** a plain 429 |
//! | [`BackonRetry`] (backon 1.6) | 4 | `ExponentialBuilder` with jitter: 1 s · 2ⁿ plus up to as much again, cap 60 s | every error of a `error_for_status`-style call |
//!
//! The caller puts the idempotency key (if any) on the request; every strategy resends the
//! request's bytes and headers unchanged, so every attempt carries the same key. Sleeps use
//! tokio's timer (virtual under paused time); jitter comes from a seeded RNG per strategy.

mod article;
mod backon_retry;
mod naive;
mod openai_python;
mod stripe_node;

use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http::StatusCode;
use ratewise_core::transport::{Transport, TransportError};

pub use article::ArticleRetry;
pub use backon_retry::BackonRetry;
pub use naive::NaiveRetry;
pub use openai_python::OpenAiPython;
pub use stripe_node::StripeNode;

/// How one logical call under a baseline strategy ended.
#[derive(Debug)]
#[non_exhaustive]
pub struct Attempted {
    /// The 2xx response, or why the strategy gave up.
    pub result: Result<http::Response<Bytes>, CallFailure>,
    /// Requests sent for this call, the first included.
    pub attempts: u32,
}

/// Why a baseline strategy gave up on a call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallFailure {
    /// The last response had this non-2xx status.
    #[error("gave up on HTTP {0}")]
    Status(StatusCode),
    /// The last attempt failed in the transport.
    #[error("gave up: {0}")]
    Transport(TransportError),
}

/// A retry strategy around a plain call: send, look at the status and headers, maybe retry.
#[async_trait]
pub trait Baseline: Send + Sync + fmt::Debug {
    /// A short label for tables (`"naive"`, `"openai-python"`, …).
    fn name(&self) -> &'static str;

    /// Runs one logical call: sends `request` (a clone per attempt) until it gets a 2xx or the
    /// strategy gives up.
    async fn call(&self, transport: &dyn Transport, request: &http::Request<Bytes>) -> Attempted;
}

/// What one attempt gave: a 2xx, another status, or a transport failure.
enum Sent {
    Success(http::Response<Bytes>),
    Status(http::Response<Bytes>),
    Failed(TransportError),
}

async fn send(
    transport: &dyn Transport,
    request: &http::Request<Bytes>,
    timeout: Duration,
) -> Sent {
    match transport.send(request.clone(), timeout).await {
        Ok(response) if response.status().is_success() => Sent::Success(response),
        Ok(response) => Sent::Status(response),
        Err(error) => Sent::Failed(error),
    }
}

impl Sent {
    fn finish(self, attempts: u32) -> Attempted {
        let result = match self {
            Sent::Success(response) => Ok(response),
            Sent::Status(response) => Err(CallFailure::Status(response.status())),
            Sent::Failed(error) => Err(CallFailure::Transport(error)),
        };
        Attempted { result, attempts }
    }
}

/// A strategy's jitter source: seeded once, forked per call so concurrent calls draw
/// independent, reproducible sequences.
struct SeededRng(Mutex<fastrand::Rng>);

impl SeededRng {
    fn new(seed: u64) -> Self {
        Self(Mutex::new(fastrand::Rng::with_seed(seed)))
    }

    fn fork(&self) -> fastrand::Rng {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).fork()
    }
}

impl fmt::Debug for SeededRng {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SeededRng")
    }
}

/// Seconds as a `Duration`, saturating; NaN and negatives are zero.
fn secs(value: f64) -> Duration {
    crate::limit::secs_to_duration(value)
}
