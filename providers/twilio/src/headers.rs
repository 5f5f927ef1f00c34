//! Twilio's header names and formats.
//!
//! Twilio sends `Twilio-Request-Id` on every response and, per its 20429 documentation,
//! `Twilio-Concurrent-Requests` (the account's requests in flight) worth monitoring. Whether it
//! sends `Retry-After` on a 429 is not documented; the provider honours it when present. On
//! webhook requests to you it sends `X-Twilio-Signature` and `I-Twilio-Idempotency-Token`.

use http::{HeaderMap, HeaderName};
use ratewise_core::hint::header_bytes;

/// `Twilio-Request-Id`: Twilio's id of the request (`RQ…`), to quote to support.
pub const TWILIO_REQUEST_ID: HeaderName = HeaderName::from_static("twilio-request-id");
/// `Twilio-Concurrent-Requests`: the account's requests in flight, as Twilio counts them.
pub const TWILIO_CONCURRENT_REQUESTS: HeaderName =
    HeaderName::from_static("twilio-concurrent-requests");
/// `X-Twilio-Signature`: the webhook signature (base64 HMAC-SHA1).
pub const X_TWILIO_SIGNATURE: HeaderName = HeaderName::from_static("x-twilio-signature");
/// `I-Twilio-Idempotency-Token`: the same on every retry of one webhook delivery.
pub const I_TWILIO_IDEMPOTENCY_TOKEN: HeaderName =
    HeaderName::from_static("i-twilio-idempotency-token");

/// A header's value as trimmed, non-empty text.
fn text<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
    let value = std::str::from_utf8(header_bytes(headers, name)?)
        .ok()?
        .trim();
    (!value.is_empty()).then_some(value)
}

/// The `Twilio-Request-Id` of a response, if it carries a readable one.
pub fn request_id(headers: &HeaderMap) -> Option<String> {
    text(headers, &TWILIO_REQUEST_ID).map(str::to_owned)
}

/// `Twilio-Concurrent-Requests` as a number, if present and readable.
pub fn concurrent_requests(headers: &HeaderMap) -> Option<u64> {
    text(headers, &TWILIO_CONCURRENT_REQUESTS)?.parse().ok()
}

/// The `I-Twilio-Idempotency-Token` of a webhook request, if present.
pub fn idempotency_token(headers: &HeaderMap) -> Option<&str> {
    text(headers, &I_TWILIO_IDEMPOTENCY_TOKEN)
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
    fn ids_counts_and_tokens_are_read_and_garbage_is_not() {
        assert_eq!(
            request_id(&with(TWILIO_REQUEST_ID, "RQ123")).as_deref(),
            Some("RQ123")
        );
        assert_eq!(request_id(&with(TWILIO_REQUEST_ID, " ")), None);
        assert_eq!(
            concurrent_requests(&with(TWILIO_CONCURRENT_REQUESTS, " 42 ")),
            Some(42)
        );
        assert_eq!(
            concurrent_requests(&with(TWILIO_CONCURRENT_REQUESTS, "many")),
            None
        );
        assert_eq!(concurrent_requests(&HeaderMap::new()), None);
        assert_eq!(
            idempotency_token(&with(I_TWILIO_IDEMPOTENCY_TOKEN, "tok-1")),
            Some("tok-1")
        );
    }
}
