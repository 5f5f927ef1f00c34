//! Dialects: the headers and bodies the simulated server speaks.
//!
//! Each provider throttles, fails and reports its quota in its own words (Stripe's
//! `Idempotent-Replayed`, GitHub's `x-ratelimit-reset` in epoch seconds, OpenAI's
//! `x-ratelimit-reset-requests: 6m0s`). A [`Dialect`] says how a throttle response looks, which
//! headers decorate every response, how a server error looks, which header carries the
//! idempotency key and which requests are side effects. Provider crates implement it for their
//! API; [`GenericDialect`] is the one the core's own tests use.

mod generic;
mod http_date;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, Method, StatusCode};

use crate::idempotency::IdempotencyError;
use crate::limit::LimitStatus;

pub use generic::{GenericDialect, RetryAfterFormat};
pub use http_date::{epoch_seconds_ceil, http_date, iso8601};

/// What a dialect may put in a response: the time, the limits that apply, the wait to announce.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct ResponseContext<'a> {
    /// Wall-clock time now, from the upstream's injected clock.
    pub wall: SystemTime,
    /// The state of every limit that applies to this request, in the order configured. Empty
    /// when the response must carry no rate-limit hints (a bare 429 fault).
    pub limits: &'a [LimitStatus],
    /// For a throttle: the wait to announce (`None`: announce none).
    pub retry_after: Option<Duration>,
    /// The request's operation (`"POST /v1/charges"`).
    pub operation: &'a str,
}

impl<'a> ResponseContext<'a> {
    /// A context at `wall` for `operation`, with no limits and no wait.
    pub fn new(wall: SystemTime, operation: &'a str) -> Self {
        Self {
            wall,
            limits: &[],
            retry_after: None,
            operation,
        }
    }

    /// Sets the limits' state.
    pub fn with_limits(mut self, limits: &'a [LimitStatus]) -> Self {
        self.limits = limits;
        self
    }

    /// Sets the wait to announce.
    pub fn with_retry_after(mut self, retry_after: Option<Duration>) -> Self {
        self.retry_after = retry_after;
        self
    }

    /// The limit to report in single-limit quota headers (limit, remaining, reset): the one that
    /// refused the request, else the one with the least remaining (ties: the first configured).
    /// Concurrency limits ([`LimitStatus::in_flight`]) are never reported: they have no window
    /// and no reset, and APIs that enforce them (Twilio) send no quota headers for them.
    pub fn primary_limit(&self) -> Option<&'a LimitStatus> {
        let windowed = || self.limits.iter().filter(|l| !l.in_flight);
        windowed()
            .find(|l| l.exceeded)
            .or_else(|| windowed().min_by_key(|l| l.remaining))
    }

    /// When `limit` resets, in whole epoch seconds rounded up.
    pub fn reset_epoch(&self, limit: &LimitStatus) -> u64 {
        epoch_seconds_ceil(
            self.wall
                .checked_add(limit.reset_after)
                .unwrap_or(self.wall),
        )
    }
}

/// How the simulated server speaks: the provider-specific part of every response.
///
/// The engine builds each response with one of the `*_response` methods (or the handler) and
/// then passes its headers through [`Dialect::decorate`].
pub trait Dialect: Send + Sync + fmt::Debug + 'static {
    /// The response to a throttled request: status (usually 429), hint headers such as
    /// `Retry-After` when `ctx.retry_after` is set, and the error body.
    fn throttle_response(&self, ctx: &ResponseContext<'_>) -> http::Response<Bytes>;

    /// The response to a server failure with `status` (500, 502, 503, 504).
    fn server_error_response(
        &self,
        status: StatusCode,
        ctx: &ResponseContext<'_>,
    ) -> http::Response<Bytes>;

    /// The response to a misused idempotency key (400 mismatch, 409 in flight).
    fn idempotency_error_response(
        &self,
        error: IdempotencyError,
        ctx: &ResponseContext<'_>,
    ) -> http::Response<Bytes>;

    /// Adds the headers every response carries (limit, remaining, reset) from `ctx.limits`;
    /// adds none when `ctx.limits` is empty.
    fn decorate(&self, headers: &mut HeaderMap, ctx: &ResponseContext<'_>);

    /// The request header carrying the idempotency key; default `Idempotency-Key`. `None`: the
    /// server ignores idempotency keys.
    fn idempotency_header(&self) -> Option<HeaderName> {
        Some(HeaderName::from_static("idempotency-key"))
    }

    /// The header marking a replayed response (value `true`); default `Idempotent-Replayed`.
    fn replayed_header(&self) -> HeaderName {
        HeaderName::from_static("idempotent-replayed")
    }

    /// Whether a request has a side effect the ledger counts; default: every method but GET,
    /// HEAD and OPTIONS.
    fn is_side_effect(&self, request: &http::Request<Bytes>) -> bool {
        !matches!(
            *request.method(),
            Method::GET | Method::HEAD | Method::OPTIONS
        )
    }

    /// The operation a request belongs to, for limits and the ledger; default
    /// `"METHOD /path"` (no query).
    fn operation(&self, request: &http::Request<Bytes>) -> String {
        format!("{} {}", request.method(), request.uri().path())
    }
}

impl<D: Dialect + ?Sized> Dialect for Arc<D> {
    fn throttle_response(&self, ctx: &ResponseContext<'_>) -> http::Response<Bytes> {
        (**self).throttle_response(ctx)
    }
    fn server_error_response(
        &self,
        status: StatusCode,
        ctx: &ResponseContext<'_>,
    ) -> http::Response<Bytes> {
        (**self).server_error_response(status, ctx)
    }
    fn idempotency_error_response(
        &self,
        error: IdempotencyError,
        ctx: &ResponseContext<'_>,
    ) -> http::Response<Bytes> {
        (**self).idempotency_error_response(error, ctx)
    }
    fn decorate(&self, headers: &mut HeaderMap, ctx: &ResponseContext<'_>) {
        (**self).decorate(headers, ctx)
    }
    fn idempotency_header(&self) -> Option<HeaderName> {
        (**self).idempotency_header()
    }
    fn replayed_header(&self) -> HeaderName {
        (**self).replayed_header()
    }
    fn is_side_effect(&self, request: &http::Request<Bytes>) -> bool {
        (**self).is_side_effect(request)
    }
    fn operation(&self, request: &http::Request<Bytes>) -> String {
        (**self).operation(request)
    }
}

/// A JSON response with `status` and `body`.
pub fn json_response(status: StatusCode, body: &serde_json::Value) -> http::Response<Bytes> {
    let mut response = http::Response::new(Bytes::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}
