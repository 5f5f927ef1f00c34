//! The generic dialect: `Retry-After` and `X-RateLimit-*` with epoch-second resets.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use serde_json::json;

use super::{Dialect, ResponseContext, http_date, json_response};
use crate::idempotency::IdempotencyError;

/// How `Retry-After` is written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum RetryAfterFormat {
    /// Delta-seconds, rounded up: `Retry-After: 2` (the default).
    #[default]
    Seconds,
    /// An HTTP-date, rounded up to the second: `Retry-After: Thu, 01 Jan 2026 00:00:02 GMT`.
    HttpDate,
}

/// The dialect most APIs approximate, used by the core's own tests.
///
/// - Throttle: `429`, `Retry-After` (seconds by default, or an HTTP-date), body
///   `{"error":{"type":"rate_limit_error","message":..}}`.
/// - Every response: `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset` (epoch
///   seconds, rounded up; for a sliding window, when it is whole again) of the primary limit
///   ([`ResponseContext::primary_limit`]). A concurrency limit is never announced: its 429 has
///   no `Retry-After` and no quota headers, as Twilio's.
/// - Server error: the status with `{"error":{"type":"api_error",..}}`.
/// - Idempotency: key in `Idempotency-Key`, replays marked `Idempotent-Replayed: true`, misuse
///   answered 400/409 with `{"error":{"type":"idempotency_error",..}}`.
/// - Side effects: every method but GET, HEAD and OPTIONS.
#[derive(Clone, Debug)]
pub struct GenericDialect {
    retry_after: RetryAfterFormat,
    idempotency_header: Option<HeaderName>,
    replayed_header: HeaderName,
}

impl Default for GenericDialect {
    fn default() -> Self {
        Self {
            retry_after: RetryAfterFormat::Seconds,
            idempotency_header: Some(HeaderName::from_static("idempotency-key")),
            replayed_header: HeaderName::from_static("idempotent-replayed"),
        }
    }
}

impl GenericDialect {
    /// The generic dialect with its defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes `Retry-After` in `format` (default [`RetryAfterFormat::Seconds`]).
    pub fn retry_after_format(mut self, format: RetryAfterFormat) -> Self {
        self.retry_after = format;
        self
    }

    /// Reads idempotency keys from `header` (default `Idempotency-Key`); `None` ignores them.
    pub fn idempotency_header(mut self, header: Option<HeaderName>) -> Self {
        self.idempotency_header = header;
        self
    }

    /// Marks replays with `header` (default `Idempotent-Replayed`).
    pub fn replayed_header(mut self, header: HeaderName) -> Self {
        self.replayed_header = header;
        self
    }

    fn retry_after_value(&self, wait: Duration, ctx: &ResponseContext<'_>) -> Option<HeaderValue> {
        let text = match self.retry_after {
            RetryAfterFormat::Seconds => {
                let secs = wait.as_secs();
                let secs = if wait.subsec_nanos() > 0 {
                    secs.saturating_add(1)
                } else {
                    secs
                };
                secs.to_string()
            }
            RetryAfterFormat::HttpDate => http_date(ctx.wall.checked_add(wait).unwrap_or(ctx.wall)),
        };
        HeaderValue::from_str(&text).ok()
    }
}

impl Dialect for GenericDialect {
    fn throttle_response(&self, ctx: &ResponseContext<'_>) -> http::Response<Bytes> {
        let mut response = json_response(
            StatusCode::TOO_MANY_REQUESTS,
            &json!({"error": {
                "type": "rate_limit_error",
                "message": format!("Too many requests to {}; slow down.", ctx.operation),
            }}),
        );
        if let Some(value) = ctx.retry_after.and_then(|w| self.retry_after_value(w, ctx)) {
            response
                .headers_mut()
                .insert(http::header::RETRY_AFTER, value);
        }
        response
    }

    fn server_error_response(
        &self,
        status: StatusCode,
        _ctx: &ResponseContext<'_>,
    ) -> http::Response<Bytes> {
        json_response(
            status,
            &json!({"error": {
                "type": "api_error",
                "message": format!("The server failed ({}); try again later.", status.as_u16()),
            }}),
        )
    }

    fn idempotency_error_response(
        &self,
        error: IdempotencyError,
        _ctx: &ResponseContext<'_>,
    ) -> http::Response<Bytes> {
        let message = match error {
            IdempotencyError::Mismatch => {
                "Keys for idempotent requests can only be used with the same parameters they were first used with."
            }
            IdempotencyError::InFlight => {
                "There is currently another in-progress request using this idempotency key."
            }
        };
        json_response(
            error.status(),
            &json!({"error": {"type": "idempotency_error", "message": message}}),
        )
    }

    fn decorate(&self, headers: &mut HeaderMap, ctx: &ResponseContext<'_>) {
        let Some(limit) = ctx.primary_limit() else {
            return;
        };
        headers.insert(
            HeaderName::from_static("x-ratelimit-limit"),
            HeaderValue::from(limit.limit),
        );
        headers.insert(
            HeaderName::from_static("x-ratelimit-remaining"),
            HeaderValue::from(limit.remaining),
        );
        headers.insert(
            HeaderName::from_static("x-ratelimit-reset"),
            HeaderValue::from(ctx.reset_epoch(limit)),
        );
    }

    fn idempotency_header(&self) -> Option<HeaderName> {
        self.idempotency_header.clone()
    }

    fn replayed_header(&self) -> HeaderName {
        self.replayed_header.clone()
    }
}
