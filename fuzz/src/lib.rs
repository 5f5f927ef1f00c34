//! Shared input shaping for the fuzz targets: arbitrary bytes become an HTTP response (status,
//! headers, body) the way a hostile server could send one.

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Response, StatusCode};
use ratewise_core::clock::{Clock, ManualClock, Timestamp};

/// Header names the providers read; the fuzzer picks among them (and arbitrary ones).
pub const NAMES: &[&str] = &[
    "retry-after",
    "retry-after-ms",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "x-ratelimit-used",
    "x-ratelimit-resource",
    "x-ratelimit-limit-requests",
    "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-requests",
    "x-ratelimit-reset-tokens",
    "x-should-retry",
    "stripe-should-retry",
    "stripe-rate-limited-reason",
    "idempotent-replayed",
    "request-id",
    "x-request-id",
    "x-github-request-id",
    "twilio-concurrent-requests",
    "x-message-id",
    "content-type",
];

/// A response built from `data`: 2 bytes of status, then up to 16 headers as
/// `[name index][len][value…]`, the rest is the body.
pub fn response(data: &[u8]) -> Response<Bytes> {
    let mut rest = data;
    let status = match rest {
        [a, b, tail @ ..] => {
            rest = tail;
            StatusCode::from_u16(100 + (u16::from(*a) << 8 | u16::from(*b)) % 500)
                .unwrap_or(StatusCode::TOO_MANY_REQUESTS)
        }
        _ => StatusCode::TOO_MANY_REQUESTS,
    };
    let mut response = Response::new(Bytes::new());
    *response.status_mut() = status;
    for _ in 0..16 {
        let [which, len, tail @ ..] = rest else { break };
        let len = usize::from(*len).min(tail.len());
        let (value, tail) = tail.split_at(len);
        rest = tail;
        let name = HeaderName::from_static(NAMES[usize::from(*which) % NAMES.len()]);
        if let Ok(value) = HeaderValue::from_bytes(value) {
            response.headers_mut().append(name, value);
        }
    }
    *response.body_mut() = Bytes::copy_from_slice(rest);
    response
}

/// A fixed instant on a manual clock: parsers must not depend on the real time to be safe.
pub fn timestamp() -> Timestamp {
    ManualClock::new().timestamp()
}
