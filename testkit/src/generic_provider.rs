//! [`GenericProvider`]: the client side of [`GenericDialect`](crate::GenericDialect).
//!
//! Reads what the generic simulated upstream (and many real APIs) send: the status, `Retry-After`
//! (seconds or HTTP-date) or `retry-after-ms`, and `X-RateLimit-Limit` / `-Remaining` / `-Reset`
//! (epoch seconds). The core's own end-to-end tests, the examples and the benchmarks run the
//! pipeline with it.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, StatusCode};
use ratewise_core::clock::{SharedClock, Timestamp};
use ratewise_core::hint::{Hint, header_bytes, header_u64, parse_epoch_seconds};
use ratewise_core::limit::{LearnedConcurrencyLimiter, Limiter, QuotaPacer};
use ratewise_core::provider::Provider;
use ratewise_core::quota::{BudgetName, QuotaSnapshot};
use ratewise_core::verdict::{Inspection, Verdict};

/// The generic error body: `{"error": {"type": "…", "message": "…"}}`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize, thiserror::Error)]
#[error("{kind}: {message}")]
#[non_exhaustive]
pub struct GenericError {
    /// The error's type (`rate_limit_error`, `api_error`, …).
    #[serde(rename = "type", default)]
    pub kind: String,
    /// What the server said.
    #[serde(default)]
    pub message: String,
}

#[derive(serde::Deserialize)]
struct Envelope {
    error: GenericError,
}

/// A [`Provider`] for the generic dialect: status codes read as HTTP says
/// ([`Verdict::from_status`]), server hints obeyed, `X-RateLimit-*` reported to the limiters.
///
/// Its default limiter is a [`QuotaPacer`] on `requests` that learns the budget from the
/// headers, with [discovery](QuotaPacer::discovery): before the first answer one call goes
/// first and the others wait for it (at most [`GenericProvider::DISCOVERY_WAIT`]). Beside it, a
/// [`LearnedConcurrencyLimiter`] finds a limit on calls in flight that the server enforces
/// without announcing it (429s with no hint, as Twilio's concurrency limit): slow start from 10
/// in flight, the ceiling set by the first throttle. The idempotency header is
/// `Idempotency-Key` unless built [`without_idempotency`](Self::without_idempotency).
#[derive(Clone, Debug)]
pub struct GenericProvider {
    idempotency_header: Option<HeaderName>,
    rolling: Option<std::time::Duration>,
}

impl GenericProvider {
    /// How long callers wait for the first answer before the budget is known: 1 s.
    pub const DISCOVERY_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

    /// A provider that sends keys in `Idempotency-Key`.
    pub fn new() -> Self {
        Self {
            idempotency_header: Some(HeaderName::from_static("idempotency-key")),
            rolling: None,
        }
    }

    /// A provider of an API with no idempotency keys (GitHub, Twilio, SendGrid): ambiguous
    /// failures of non-idempotent requests are not retried.
    pub fn without_idempotency() -> Self {
        Self {
            idempotency_header: None,
            rolling: None,
        }
    }

    /// Reads `X-RateLimit-*` as a rolling window of `window` ("`limit` in any trailing
    /// `window`", as the API documents it): the pacer logs its admissions and admits while the
    /// trailing window has room, rather than spreading what is left to the reset, which is the
    /// full replenishment and about a window away at any rate
    /// ([`QuotaPacer::rolling`]). The headers alone cannot tell: at full use a rolling window
    /// and a fixed one near its end both say "little left, reset within a window".
    pub fn rolling_window(mut self, window: std::time::Duration) -> Self {
        self.rolling = Some(window);
        self
    }
}

impl Default for GenericProvider {
    fn default() -> Self {
        Self::new()
    }
}

static LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
static REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
static RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

/// The `X-RateLimit-*` snapshot of the `requests` budget, if the headers carry one.
pub fn rate_limit_snapshot(headers: &HeaderMap, at: Timestamp) -> Option<QuotaSnapshot> {
    let remaining = header_u64(headers, &REMAINING)?;
    let reset = parse_epoch_seconds(header_bytes(headers, &RESET)?)?;
    let snapshot = QuotaSnapshot::new(
        BudgetName::REQUESTS,
        remaining,
        at.instant_at(reset),
        at.instant,
    );
    Some(match header_u64(headers, &LIMIT) {
        Some(limit) => snapshot.with_limit(limit),
        None => snapshot,
    })
}

impl Provider for GenericProvider {
    const NAME: &'static str = "generic";
    type ApiError = GenericError;

    fn inspect(&self, response: &http::Response<Bytes>, at: Timestamp) -> Inspection {
        let headers = response.headers();
        let snapshot = rate_limit_snapshot(headers, at);
        let hint = Hint::from_headers(headers, at.wall)
            .map(|hint| hint.wait)
            .or_else(|| {
                let exhausted = snapshot.as_ref().filter(|s| s.remaining == 0)?;
                (response.status() == StatusCode::TOO_MANY_REQUESTS)
                    .then(|| exhausted.reset_at.saturating_duration_since(at.instant))
            });
        let inspection = Inspection::new(Verdict::from_status(response.status()).after(hint));
        match snapshot {
            Some(snapshot) => inspection.with_quota(snapshot),
            None => inspection,
        }
    }

    fn idempotency_header(&self) -> Option<HeaderName> {
        self.idempotency_header.clone()
    }

    fn default_limiters(&self, clock: &SharedClock) -> Vec<Arc<dyn Limiter>> {
        let pacer = QuotaPacer::new(BudgetName::REQUESTS)
            .discovery(Self::DISCOVERY_WAIT)
            .clock(Arc::clone(clock));
        let pacer = match self.rolling {
            Some(window) => pacer.rolling(window),
            None => pacer,
        };
        vec![
            Arc::new(pacer),
            Arc::new(LearnedConcurrencyLimiter::new().clock(Arc::clone(clock))),
        ]
    }

    fn decode_error(&self, _status: StatusCode, body: &[u8]) -> Option<GenericError> {
        serde_json::from_slice::<Envelope>(body)
            .ok()
            .map(|envelope| envelope.error)
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use ratewise_core::clock::{Clock, ManualClock};
    use ratewise_core::verdict::{Processing, Reason};

    use super::*;

    fn response(status: u16, headers: &[(&'static str, &str)]) -> http::Response<Bytes> {
        let mut builder = http::Response::builder().status(status);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(Bytes::new()).unwrap()
    }

    fn epoch(t: SystemTime) -> String {
        t.duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            .to_string()
    }

    #[test]
    fn a_429_with_retry_after_is_a_retry_after_the_hint_and_not_processed() {
        let at = ManualClock::new().timestamp();
        let inspection =
            GenericProvider::new().inspect(&response(429, &[("retry-after", "7")]), at);
        assert_eq!(
            inspection.verdict,
            Verdict::Retry {
                after: Some(Duration::from_secs(7)),
                reason: Reason::RateLimited,
                processing: Processing::NotProcessed,
            }
        );
    }

    #[test]
    fn an_exhausted_quota_without_retry_after_waits_for_the_epoch_reset() {
        let at = ManualClock::new().timestamp();
        let reset = epoch(at.wall + Duration::from_secs(30));
        let headers = [
            ("x-ratelimit-limit", "100"),
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", reset.as_str()),
        ];
        let inspection = GenericProvider::new().inspect(&response(429, &headers), at);
        assert_eq!(
            inspection.verdict,
            Verdict::retry(Reason::RateLimited)
                .after(Some(Duration::from_secs(30)))
                .not_processed()
        );
        let quota = &inspection.quotas[0];
        assert_eq!((quota.limit, quota.remaining), (Some(100), 0));
        assert_eq!(quota.reset_at - at.instant, Duration::from_secs(30));
    }

    #[test]
    fn error_bodies_decode_from_the_envelope() {
        let error = GenericProvider::new()
            .decode_error(
                StatusCode::BAD_REQUEST,
                br#"{"error":{"type":"invalid_request_error","message":"amount must be positive"}}"#,
            )
            .unwrap();
        assert_eq!(
            error.to_string(),
            "invalid_request_error: amount must be positive"
        );
        assert!(
            GenericProvider::new()
                .decode_error(StatusCode::BAD_GATEWAY, b"<html>")
                .is_none()
        );
    }
}
