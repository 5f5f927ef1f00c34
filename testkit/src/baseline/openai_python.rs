//! openai-python's retry policy (v3.3.1, `_base_client.py`), re-implemented.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, StatusCode};
use ratewise_core::clock::SharedClock;
use ratewise_core::hint::Hint;
use ratewise_core::transport::Transport;

use super::{Attempted, Baseline, SeededRng, Sent, secs, send};

static SHOULD_RETRY: HeaderName = HeaderName::from_static("x-should-retry");

/// openai-python's retries, as its source has them (PROVIDERS.md §1):
///
/// - `DEFAULT_MAX_RETRIES = 2` (three attempts), `INITIAL_RETRY_DELAY = 0.5`,
///   `MAX_RETRY_DELAY = 8.0`, `MAX_RETRY_AFTER_DELAY = 120`.
/// - `_should_retry`: a `Retry-After` over 120 s means no retry; otherwise `x-should-retry:
///   true|false` is obeyed; otherwise 408, 409, 429 and ≥ 500 are retried. Timeouts and
///   connection errors are retried.
/// - `_calculate_retry_timeout`: a `retry-after-ms` (float ms), else `retry-after` (float
///   seconds, else an HTTP-date) in (0, 120 s] is slept exactly; otherwise
///   `min(0.5 · 2ⁿ, 8) × (1 − 0.25 · random())` with n the retries already taken.
/// - 600 s per attempt (`DEFAULT_TIMEOUT`).
#[derive(Debug)]
pub struct OpenAiPython {
    max_retries: u32,
    clock: SharedClock,
    rng: SeededRng,
}

impl OpenAiPython {
    /// `MAX_RETRY_AFTER_DELAY`: the longest `Retry-After` slept on, 120 s.
    pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);

    /// The SDK's defaults; wall time from `clock` for HTTP-date hints, jitter seeded with `seed`.
    pub fn new(clock: SharedClock, seed: u64) -> Self {
        Self {
            max_retries: 2,
            clock,
            rng: SeededRng::new(seed),
        }
    }

    fn retry_after(&self, headers: &HeaderMap) -> Option<Duration> {
        Hint::from_headers(headers, self.clock.wall()).map(|hint| hint.wait)
    }

    fn should_retry(&self, response: &http::Response<Bytes>) -> bool {
        if self
            .retry_after(response.headers())
            .is_some_and(|wait| wait > Self::MAX_RETRY_AFTER)
        {
            return false;
        }
        match response.headers().get(&SHOULD_RETRY).map(|v| v.as_bytes()) {
            Some(b"true") => return true,
            Some(b"false") => return false,
            _ => {}
        }
        let status = response.status();
        matches!(
            status,
            StatusCode::REQUEST_TIMEOUT | StatusCode::CONFLICT | StatusCode::TOO_MANY_REQUESTS
        ) || status.is_server_error()
    }

    fn timeout(
        &self,
        headers: Option<&HeaderMap>,
        retries: u32,
        rng: &mut fastrand::Rng,
    ) -> Duration {
        if let Some(wait) = headers.and_then(|h| self.retry_after(h))
            && !wait.is_zero()
            && wait <= Self::MAX_RETRY_AFTER
        {
            return wait;
        }
        let sleep = (0.5 * 2f64.powi(i32::try_from(retries).unwrap_or(i32::MAX))).min(8.0);
        secs(sleep * (1.0 - 0.25 * rng.f64()))
    }
}

#[async_trait]
impl Baseline for OpenAiPython {
    fn name(&self) -> &'static str {
        "openai-python"
    }

    async fn call(&self, transport: &dyn Transport, request: &http::Request<Bytes>) -> Attempted {
        let mut rng = self.rng.fork();
        let mut retries = 0;
        loop {
            let sent = send(transport, request, Duration::from_secs(600)).await;
            let (retry, headers) = match &sent {
                Sent::Success(_) => (false, None),
                Sent::Status(response) => (self.should_retry(response), Some(response.headers())),
                Sent::Failed(_) => (true, None),
            };
            if !retry || retries >= self.max_retries {
                return sent.finish(retries + 1);
            }
            let wait = self.timeout(headers, retries, &mut rng);
            tokio::time::sleep(wait).await;
            retries += 1;
        }
    }
}
