//! The article's `withRetry`: full jitter, four attempts, `Retry-After` when present.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use ratewise_core::backoff::Backoff;
use ratewise_core::clock::SharedClock;
use ratewise_core::hint::{header_bytes, parse_retry_after};
use ratewise_core::transport::{Transport, TransportError};

use super::{Attempted, Baseline, SeededRng, Sent, send};

/// The TypeScript `withRetry` helper of "API Rate Limited in Production at 3 AM", ported:
///
/// ```text
/// for attempt in 0..maxAttempts (4):
///   try fn()
///   catch: if !isRetryable(err) or last attempt: throw
///          delay = parseRetryAfter(err) ?? random() * min(maxMs (30 s), baseMs (200 ms) * 2^attempt)
///          sleep(delay)
/// ```
///
/// `isRetryable` is the article's: 429, any 5xx, `ECONNRESET` (a broken connection) and
/// `ETIMEDOUT` (a timeout); a refused connection is not retried. `Retry-After` is read as
/// seconds, else as an HTTP-date. No pacing, no budget, no breaker. 60 s per attempt (the
/// article sets none; `fetch` has none).
#[derive(Debug)]
pub struct ArticleRetry {
    max_attempts: u32,
    backoff: Backoff,
    timeout: Duration,
    clock: SharedClock,
    rng: SeededRng,
}

impl ArticleRetry {
    /// The article's defaults (4 attempts, 200 ms base, 30 s cap), wall time from `clock` for
    /// HTTP-date hints, jitter seeded with `seed`.
    pub fn new(clock: SharedClock, seed: u64) -> Self {
        Self {
            max_attempts: 4,
            backoff: Backoff::new()
                .base(Duration::from_millis(200))
                .cap(Duration::from_secs(30)),
            timeout: Duration::from_secs(60),
            clock,
            rng: SeededRng::new(seed),
        }
    }
}

#[async_trait]
impl Baseline for ArticleRetry {
    fn name(&self) -> &'static str {
        "withRetry"
    }

    async fn call(&self, transport: &dyn Transport, request: &http::Request<Bytes>) -> Attempted {
        let mut rng = self.rng.fork();
        let mut attempt = 0;
        loop {
            let sent = send(transport, request, self.timeout).await;
            let (retryable, hint) = match &sent {
                Sent::Success(_) => (false, None),
                Sent::Status(response) => {
                    let status = response.status();
                    let hint = header_bytes(response.headers(), http::header::RETRY_AFTER)
                        .and_then(|v| parse_retry_after(v, self.clock.wall()));
                    (
                        status == http::StatusCode::TOO_MANY_REQUESTS || status.is_server_error(),
                        hint,
                    )
                }
                Sent::Failed(error) => (
                    matches!(
                        error,
                        TransportError::Interrupted { .. } | TransportError::Timeout { .. }
                    ),
                    None,
                ),
            };
            if !retryable || attempt + 1 >= self.max_attempts {
                return sent.finish(attempt + 1);
            }
            let delay = hint.unwrap_or_else(|| self.backoff.delay(attempt, None, &mut rng));
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }
}
