//! [`TwilioProvider`]: how Twilio's responses read, what its calls cost, which limiters apply.
//!
//! # The rules, in order
//!
//! 1. Every response: `Twilio-Concurrent-Requests`, when present, is recorded
//!    ([`TwilioProvider::concurrent_requests`]).
//! 2. 429 (error 20429, account concurrency, or any other 429; the body may be plain text):
//!    [`Reason::RateLimited`], **not processed** (Twilio documents that a 429 was not
//!    processed), so it is retried after backoff even for a message create; `Retry-After` is
//!    honoured when present (Twilio does not document sending it).
//! 3. Error 21611 (the `From` number's queue is full): a failure with
//!    [`Reason::RateLimited`], never retried at once. The client marks the error retryable
//!    after [`TwilioProvider::queue_full_park`] (default 60 s), so a queue parks the message,
//!    and pauses that sender's budget for as long.
//! 4. 401, 403: unauthorized; other 4xx: rejected, never retried.
//! 5. 5xx: retried, *maybe processed*: a fetch or list (GET) is retried, a create is not (Twilio
//!    has no idempotency key for Messages or Calls) and ends in `Error::Ambiguous`, saying a
//!    retry could send a duplicate. `Retry-After` on a 503 is honoured.
//!
//! Connection failures before sending are retried by the pipeline for every call (nothing was
//! sent); a timeout or a broken connection after sending ends a create as ambiguous.
//!
//! # Where this differs from twilio-node, and why
//!
//! twilio-node does not retry by default, and with `autoRetry` it retries only 429s with its
//! own full jitter (100 ms · 2ⁿ, capped at 3 s), ignoring `Retry-After`. Here 429s are retried
//! by default (they are documented as not processed) with the pipeline's full-jitter backoff,
//! `Retry-After` is obeyed when Twilio sends it, and the account concurrency and each sender's
//! throughput are paced before sending so that 429s and 21611s are rare to begin with.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use ratewise_core::clock::{SharedClock, Timestamp};
use ratewise_core::hint::Hint;
use ratewise_core::limit::Limiter;
use ratewise_core::provider::{Provider, RequestSpec};
use ratewise_core::quota::{Cost, QuotaSnapshot};
use ratewise_core::verdict::{Inspection, Reason, Verdict};

use crate::error::TwilioError;
use crate::headers;
use crate::limits::{self, TwilioLimits};

/// How long a 21611 (sender queue full) parks the message and pauses its sender: 60 s.
///
/// Twilio drains a sender's queue at its rate, so room returns quickly, but a full queue means
/// hours of backlog ahead: a minute keeps a queue worker from hammering the sender while the
/// backlog drains.
pub const DEFAULT_QUEUE_FULL_PARK: Duration = Duration::from_secs(60);

/// No `Twilio-Concurrent-Requests` seen yet.
const UNSEEN: u64 = u64::MAX;

/// Twilio's dialect for the ratewise pipeline.
///
/// Defaults: the limits of [`TwilioLimits::new`] (100 in flight; senders at their type's rate);
/// a 21611 parks for [`DEFAULT_QUEUE_FULL_PARK`].
#[derive(Clone, Debug)]
pub struct TwilioProvider {
    limits: TwilioLimits,
    queue_full_park: Duration,
    concurrent: Arc<AtomicU64>,
}

impl Default for TwilioProvider {
    fn default() -> Self {
        Self::new(TwilioLimits::new())
    }
}

impl TwilioProvider {
    /// A provider enforcing `limits`.
    pub fn new(limits: TwilioLimits) -> Self {
        Self {
            limits,
            queue_full_park: DEFAULT_QUEUE_FULL_PARK,
            concurrent: Arc::new(AtomicU64::new(UNSEEN)),
        }
    }

    /// How long a 21611 parks the message and pauses its sender (default 60 s).
    pub fn queue_full_park(mut self, park: Duration) -> Self {
        self.queue_full_park = park;
        self
    }

    /// The park of a 21611.
    pub fn queue_full_wait(&self) -> Duration {
        self.queue_full_park
    }

    /// The limits this provider enforces.
    pub fn limits(&self) -> &TwilioLimits {
        &self.limits
    }

    /// The last `Twilio-Concurrent-Requests` value seen on any response, if any.
    pub fn concurrent_requests(&self) -> Option<u64> {
        match self.concurrent.load(Ordering::Relaxed) {
            UNSEEN => None,
            n => Some(n),
        }
    }

    /// What a message create costs: one concurrency slot, and its segments against its
    /// sender's budget (none for a Messaging Service, which has no `From`). A message longer
    /// than the sender's burst is charged the burst.
    pub fn message_cost(&self, from: Option<&str>, segments: u32) -> Cost {
        let cost = Cost::none().with(limits::CONCURRENCY, 1);
        match from {
            Some(from) => {
                let charged = u64::from(segments.max(1)).min(self.limits.burst_of(from));
                cost.with(limits::sender(from), charged)
            }
            None => cost,
        }
    }

    /// The pause a 21611 puts on `from`'s budget, observed at `at`.
    pub fn queue_full_snapshot(&self, from: &str, at: Timestamp) -> QuotaSnapshot {
        QuotaSnapshot::new(
            limits::sender(from),
            0,
            at.after(self.queue_full_park),
            at.instant,
        )
    }

    /// The verdict for a non-success status, its (possibly undecodable) body and its hint.
    fn classify(
        status: StatusCode,
        error: Option<&TwilioError>,
        hint: Option<Duration>,
    ) -> Verdict {
        match status.as_u16() {
            429 => Verdict::retry(Reason::RateLimited)
                .not_processed()
                .after(hint),
            _ if error.is_some_and(TwilioError::is_queue_full) => {
                Verdict::fail(Reason::RateLimited)
            }
            401 | 403 => Verdict::fail(Reason::Unauthorized),
            400..=499 => Verdict::fail(Reason::Rejected),
            _ => Verdict::from_status(status).after(hint),
        }
    }
}

impl Provider for TwilioProvider {
    const NAME: &'static str = "twilio";
    type ApiError = TwilioError;

    fn inspect(&self, response: &http::Response<Bytes>, at: Timestamp) -> Inspection {
        if let Some(n) = headers::concurrent_requests(response.headers()) {
            self.concurrent.store(n.min(UNSEEN - 1), Ordering::Relaxed);
        }
        let status = response.status();
        if status.as_u16() < 400 {
            return Inspection::new(Verdict::Success);
        }
        let error = TwilioError::from_body(response.body());
        let hint = Hint::from_headers(response.headers(), at.wall).map(|h| h.wait);
        Inspection::new(Self::classify(status, error.as_ref(), hint))
    }

    /// One `twilio.concurrency` slot; message creates set their own cost
    /// ([`TwilioProvider::message_cost`]).
    fn cost(&self, _request: &RequestSpec) -> Cost {
        Cost::none().with(limits::CONCURRENCY, 1)
    }

    fn default_limiters(&self, clock: &SharedClock) -> Vec<Arc<dyn Limiter>> {
        self.limits.limiters(clock)
    }

    fn decode_error(&self, _status: StatusCode, body: &[u8]) -> Option<TwilioError> {
        TwilioError::from_body(body)
    }

    fn request_id(&self, headers: &HeaderMap) -> Option<String> {
        headers::request_id(headers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use ratewise_core::clock::{Clock, ManualClock};
    use ratewise_core::verdict::Processing;

    const LEGACY_429: &str = r#"{"code":20429,"message":"Too Many Requests","more_info":"https://www.twilio.com/docs/errors/20429","status":429}"#;
    const PROBLEM_429: &str = r#"{"type":"https://www.twilio.com/docs/errors/20429","title":"Too many requests","status":429,"code":20429,"detail":"concurrency","instance":"/x"}"#;
    const QUEUE_FULL_400: &str = r#"{"code":21611,"message":"This 'From' number has exceeded the maximum number of queued messages","more_info":"https://www.twilio.com/docs/errors/21611","status":400}"#;
    const INVALID_TO_400: &str = r#"{"code":21211,"message":"The 'To' number is not a valid phone number.","more_info":"https://www.twilio.com/docs/errors/21211","status":400}"#;
    const AUTH_401: &str = r#"{"code":20003,"message":"Authenticate","more_info":"https://www.twilio.com/docs/errors/20003","status":401}"#;
    const SERVER_500: &str = r#"{"code":20500,"message":"Internal Server Error","status":500}"#;

    fn response(
        status: u16,
        body: &str,
        headers: &[(&'static str, &'static str)],
    ) -> http::Response<Bytes> {
        let mut response = http::Response::new(Bytes::from(body.to_owned()));
        *response.status_mut() = StatusCode::from_u16(status).unwrap();
        for (name, value) in headers {
            response
                .headers_mut()
                .insert(*name, HeaderValue::from_static(value));
        }
        response
    }

    fn verdict(status: u16, body: &str, headers: &[(&'static str, &'static str)]) -> Verdict {
        let clock = ManualClock::new();
        TwilioProvider::default()
            .inspect(&response(status, body, headers), clock.timestamp())
            .verdict
    }

    fn retry(reason: Reason, processing: Processing, after: Option<Duration>) -> Verdict {
        Verdict::Retry {
            after,
            reason,
            processing,
        }
    }

    #[test]
    fn every_status_and_code_reads_as_documented() {
        use Processing::{Maybe, NotProcessed};
        type Case = (
            &'static str,
            u16,
            &'static str,
            &'static [(&'static str, &'static str)],
            Verdict,
        );
        let cases: &[Case] = &[
            ("201 created", 201, "{}", &[], Verdict::Success),
            (
                "429 legacy 20429",
                429,
                LEGACY_429,
                &[],
                retry(Reason::RateLimited, NotProcessed, None),
            ),
            (
                "429 RFC 9457 20429",
                429,
                PROBLEM_429,
                &[],
                retry(Reason::RateLimited, NotProcessed, None),
            ),
            (
                "429 plain text",
                429,
                "Too Many Requests",
                &[],
                retry(Reason::RateLimited, NotProcessed, None),
            ),
            (
                "429 empty",
                429,
                "",
                &[],
                retry(Reason::RateLimited, NotProcessed, None),
            ),
            (
                "429 with Retry-After",
                429,
                LEGACY_429,
                &[("retry-after", "2")],
                retry(
                    Reason::RateLimited,
                    NotProcessed,
                    Some(Duration::from_secs(2)),
                ),
            ),
            (
                "400 21611: park, never at once",
                400,
                QUEUE_FULL_400,
                &[],
                Verdict::fail(Reason::RateLimited),
            ),
            (
                "400 21211: rejected",
                400,
                INVALID_TO_400,
                &[],
                Verdict::fail(Reason::Rejected),
            ),
            (
                "401",
                401,
                AUTH_401,
                &[],
                Verdict::fail(Reason::Unauthorized),
            ),
            (
                "404 html",
                404,
                "<html>not found</html>",
                &[],
                Verdict::fail(Reason::Rejected),
            ),
            (
                "500: maybe processed",
                500,
                SERVER_500,
                &[],
                retry(Reason::ServerError, Maybe, None),
            ),
            (
                "503 with Retry-After",
                503,
                "",
                &[("retry-after", "5")],
                retry(Reason::ServerError, Maybe, Some(Duration::from_secs(5))),
            ),
        ];
        for (name, status, body, headers, expected) in cases {
            assert_eq!(verdict(*status, body, headers), *expected, "{name}");
        }
    }

    #[test]
    fn the_concurrent_requests_header_is_recorded_from_any_response() {
        let clock = ManualClock::new();
        let provider = TwilioProvider::default();
        assert_eq!(provider.concurrent_requests(), None);
        let _ = provider.inspect(
            &response(200, "{}", &[("twilio-concurrent-requests", "37")]),
            clock.timestamp(),
        );
        assert_eq!(provider.concurrent_requests(), Some(37));
        let _ = provider.inspect(
            &response(429, "x", &[("twilio-concurrent-requests", "100")]),
            clock.timestamp(),
        );
        assert_eq!(
            provider.clone().concurrent_requests(),
            Some(100),
            "clones share it"
        );
        let _ = provider.inspect(&response(200, "{}", &[]), clock.timestamp());
        assert_eq!(
            provider.concurrent_requests(),
            Some(100),
            "absent leaves it"
        );
    }

    #[test]
    fn a_message_costs_a_slot_and_its_segments_on_its_sender() {
        let provider = TwilioProvider::default();
        let cost = provider.message_cost(Some("+14155552671"), 3);
        assert_eq!(cost.amount(&limits::CONCURRENCY), 1);
        assert_eq!(cost.amount(&limits::sender("+14155552671")), 3);
        let long = provider.message_cost(Some("+14155552671"), 24);
        assert_eq!(
            long.amount(&limits::sender("+14155552671")),
            10,
            "capped at the burst"
        );
        let service = provider.message_cost(None, 3);
        assert_eq!(service.iter().count(), 1);
        let get = provider.cost(&RequestSpec::get("/x", "messages.fetch"));
        assert_eq!(get.amount(&limits::CONCURRENCY), 1);
    }

    #[test]
    fn error_bodies_and_request_ids_decode() {
        let provider = TwilioProvider::default();
        let r = response(400, QUEUE_FULL_400, &[("twilio-request-id", "RQabc")]);
        assert_eq!(provider.request_id(r.headers()).as_deref(), Some("RQabc"));
        assert!(
            provider
                .decode_error(StatusCode::BAD_REQUEST, QUEUE_FULL_400.as_bytes())
                .unwrap()
                .is_queue_full()
        );
        assert!(
            provider
                .decode_error(StatusCode::TOO_MANY_REQUESTS, b"slow down")
                .is_none()
        );
        assert!(provider.idempotency_header().is_none());
    }
}
