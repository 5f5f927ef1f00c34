//! Stripe's header names and formats: the hints it sends, the headers it reads.
//!
//! Stripe sends no `Retry-After` and no remaining-quota headers (stripe-python removed its
//! `Retry-After` support as unused). What it does send: `Stripe-Should-Retry` (the server's
//! own retry decision, obeyed before any other rule by every official SDK),
//! `Stripe-Rate-Limited-Reason` on a 429 (which limiter refused), `Request-Id` on every
//! response and `Idempotent-Replayed: true` on a replayed idempotent response.

use std::fmt;

use http::{HeaderMap, HeaderName};
use ratewise_core::hint::{header_bytes, parse_should_retry};

/// `Idempotency-Key`: the request header carrying the key (up to 255 characters).
pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
/// `Idempotent-Replayed`: `true` on a response replayed from an earlier request with the key.
pub const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");
/// `Request-Id`: Stripe's id of the request (`req_…`), to quote to support.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("request-id");
/// `Stripe-Should-Retry`: `true` or `false`, the server's retry decision.
pub const STRIPE_SHOULD_RETRY: HeaderName = HeaderName::from_static("stripe-should-retry");
/// `Stripe-Rate-Limited-Reason`: which limiter refused a 429.
pub const STRIPE_RATE_LIMITED_REASON: HeaderName =
    HeaderName::from_static("stripe-rate-limited-reason");
/// `Stripe-Version`: the API version a request is pinned to.
pub const STRIPE_VERSION: HeaderName = HeaderName::from_static("stripe-version");
/// `Stripe-Account`: the connected account a platform acts for (Connect).
pub const STRIPE_ACCOUNT: HeaderName = HeaderName::from_static("stripe-account");
/// `Stripe-Signature`: the webhook signature header (`t=…,v1=…`).
pub const STRIPE_SIGNATURE: HeaderName = HeaderName::from_static("stripe-signature");

/// `Stripe-Should-Retry` as a boolean: `Some(true)`, `Some(false)`, or `None` when absent or
/// neither word (case-insensitive, surrounding spaces ignored).
pub fn should_retry(headers: &HeaderMap) -> Option<bool> {
    header_bytes(headers, &STRIPE_SHOULD_RETRY).and_then(parse_should_retry)
}

/// True when the response is a replay of an earlier request with the same idempotency key
/// (`Idempotent-Replayed: true`).
pub fn is_replayed(headers: &HeaderMap) -> bool {
    header_bytes(headers, &IDEMPOTENT_REPLAYED)
        .is_some_and(|v| v.trim_ascii().eq_ignore_ascii_case(b"true"))
}

/// The `Request-Id` of a response, if it carries a readable one.
pub fn request_id(headers: &HeaderMap) -> Option<String> {
    let value = std::str::from_utf8(header_bytes(headers, &REQUEST_ID)?).ok()?;
    let value = value.trim();
    (!value.is_empty()).then(|| value.to_owned())
}

/// Which of Stripe's limiters refused a 429, from `Stripe-Rate-Limited-Reason`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RateLimitedReason {
    /// `global-rate`: the account's requests per second (live 100, sandbox 25).
    GlobalRate,
    /// `endpoint-rate`: one endpoint's requests per second (25 by default).
    EndpointRate,
    /// `global-concurrency`: too many requests in flight for the account.
    GlobalConcurrency,
    /// `endpoint-concurrency`: too many requests in flight on one endpoint.
    EndpointConcurrency,
    /// `resource-specific`: a limit on one object (e.g. 1,000 updates per PaymentIntent per hour).
    ResourceSpecific,
    /// A value this crate does not know yet.
    Unknown,
}

impl RateLimitedReason {
    /// Reads `Stripe-Rate-Limited-Reason`; `None` when the header is absent.
    pub fn from_headers(headers: &HeaderMap) -> Option<Self> {
        let value = header_bytes(headers, &STRIPE_RATE_LIMITED_REASON)?.trim_ascii();
        Some(Self::parse(value))
    }

    /// Parses one header value (case-insensitive); unknown values are [`Self::Unknown`].
    pub fn parse(value: &[u8]) -> Self {
        const ALL: [RateLimitedReason; 5] = [
            RateLimitedReason::GlobalRate,
            RateLimitedReason::EndpointRate,
            RateLimitedReason::GlobalConcurrency,
            RateLimitedReason::EndpointConcurrency,
            RateLimitedReason::ResourceSpecific,
        ];
        ALL.into_iter()
            .find(|r| value.eq_ignore_ascii_case(r.as_str().as_bytes()))
            .unwrap_or(Self::Unknown)
    }

    /// The header value (`global-rate`, …; `unknown` for [`Self::Unknown`]).
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::GlobalRate => "global-rate",
            Self::EndpointRate => "endpoint-rate",
            Self::GlobalConcurrency => "global-concurrency",
            Self::EndpointConcurrency => "endpoint-concurrency",
            Self::ResourceSpecific => "resource-specific",
            Self::Unknown => "unknown",
        }
    }
}

impl fmt::Display for RateLimitedReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn with(name: HeaderName, value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(name, HeaderValue::from_static(value));
        headers
    }

    #[test]
    fn should_retry_reads_true_and_false_and_ignores_anything_else() {
        assert_eq!(should_retry(&with(STRIPE_SHOULD_RETRY, "true")), Some(true));
        assert_eq!(
            should_retry(&with(STRIPE_SHOULD_RETRY, " FALSE ")),
            Some(false)
        );
        assert_eq!(should_retry(&with(STRIPE_SHOULD_RETRY, "maybe")), None);
        assert_eq!(should_retry(&HeaderMap::new()), None);
    }

    #[test]
    fn replayed_is_true_only_for_the_word_true() {
        assert!(is_replayed(&with(IDEMPOTENT_REPLAYED, "true")));
        assert!(!is_replayed(&with(IDEMPOTENT_REPLAYED, "false")));
        assert!(!is_replayed(&HeaderMap::new()));
    }

    #[test]
    fn request_id_is_read_from_request_id() {
        assert_eq!(
            request_id(&with(REQUEST_ID, "req_123")).as_deref(),
            Some("req_123")
        );
        assert_eq!(request_id(&with(REQUEST_ID, "  ")), None);
    }

    #[test]
    fn every_rate_limited_reason_round_trips_and_unknown_values_are_kept_apart() {
        for value in [
            "global-rate",
            "endpoint-rate",
            "global-concurrency",
            "endpoint-concurrency",
            "resource-specific",
        ] {
            assert_eq!(RateLimitedReason::parse(value.as_bytes()).as_str(), value);
        }
        assert_eq!(
            RateLimitedReason::parse(b"cosmic-rays"),
            RateLimitedReason::Unknown
        );
        assert_eq!(
            RateLimitedReason::from_headers(&with(STRIPE_RATE_LIMITED_REASON, "Endpoint-Rate")),
            Some(RateLimitedReason::EndpointRate)
        );
    }
}
