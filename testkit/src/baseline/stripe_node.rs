//! stripe-node's retry policy (v22.5.0, `RequestSender.ts`), re-implemented.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http::{HeaderName, StatusCode};
use ratewise_core::transport::{Transport, TransportError};

use super::{Attempted, Baseline, SeededRng, Sent, secs, send};

static SHOULD_RETRY: HeaderName = HeaderName::from_static("stripe-should-retry");

/// stripe-node's retries, as its source has them (PROVIDERS.md §2):
///
/// - `maxNetworkRetries = 2` (three attempts).
/// - `_shouldRetry`, in order: a closed connection is retried once even with no retries left;
///   then the retry count is checked; connection errors are retried; `Stripe-Should-Retry:
///   false|true` is obeyed; otherwise 409 and ≥ 500 are retried. **A plain 429 is not
///   retried.**
/// - Sleep before retry n (1-based): `min(0.5 · 2ⁿ⁻¹, 5) × 0.5 · (1 + random())`, at least
///   0.5 s.
/// - 80 s per attempt (the default `timeout`).
#[derive(Debug)]
pub struct StripeNode {
    max_retries: u32,
    rng: SeededRng,
}

impl StripeNode {
    /// The SDK's defaults, jitter seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            max_retries: 2,
            rng: SeededRng::new(seed),
        }
    }

    fn should_retry(&self, sent: &Sent, retries: u32) -> bool {
        if retries == 0 && matches!(sent, Sent::Failed(TransportError::Interrupted { .. })) {
            return true;
        }
        if retries >= self.max_retries {
            return false;
        }
        let response = match sent {
            Sent::Success(_) => return false,
            Sent::Failed(_) => return true,
            Sent::Status(response) => response,
        };
        match response.headers().get(&SHOULD_RETRY).map(|v| v.as_bytes()) {
            Some(b"false") => return false,
            Some(b"true") => return true,
            _ => {}
        }
        response.status() == StatusCode::CONFLICT || response.status().is_server_error()
    }

    fn sleep(retries: u32, rng: &mut fastrand::Rng) -> Duration {
        let exponent = i32::try_from(retries.saturating_sub(1)).unwrap_or(i32::MAX);
        let seconds = (0.5 * 2f64.powi(exponent)).min(5.0) * 0.5 * (1.0 + rng.f64());
        secs(seconds.max(0.5))
    }
}

#[async_trait]
impl Baseline for StripeNode {
    fn name(&self) -> &'static str {
        "stripe-node"
    }

    async fn call(&self, transport: &dyn Transport, request: &http::Request<Bytes>) -> Attempted {
        let mut rng = self.rng.fork();
        let mut retries = 0;
        loop {
            let sent = send(transport, request, Duration::from_secs(80)).await;
            if !self.should_retry(&sent, retries) {
                return sent.finish(retries + 1);
            }
            retries += 1;
            tokio::time::sleep(Self::sleep(retries, &mut rng)).await;
        }
    }
}
