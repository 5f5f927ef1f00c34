//! [`SendGridProvider`]: how SendGrid's responses read, what its calls cost, which limiters apply.
//!
//! # The rules, in order
//!
//! 1. 2xx (mail send answers 202): success.
//! 2. 401 whose error says "Maximum credits exceeded": the account's email credits are spent.
//!    [`Reason::QuotaExhausted`], never retried; the client turns it into
//!    [`Error::CreditsExhausted`](crate::Error::CreditsExhausted). The text is also looked for
//!    in a body that does not decode.
//! 3. Any other 401 or 403: [`Reason::Unauthorized`], never retried.
//! 4. 429: [`Reason::RateLimited`], not processed (SendGrid refused it), retried after the
//!    `X-RateLimit-Reset` the response names: the endpoint stays blocked "for the remainder of
//!    the refresh period", so an earlier retry only burns another request. The endpoint's pacer
//!    is told it has nothing left until then, so every caller sharing the client waits too.
//!    Without a usable reset, the endpoint is held for the throttle pause (default
//!    [`DEFAULT_THROTTLE_PAUSE`], 1 s) and the retry uses the local backoff: never a tight loop.
//! 5. Other 4xx (400 invalid, 413 too large, …): [`Reason::Rejected`], never retried.
//! 6. 5xx: [`Reason::ServerError`], *maybe* processed. SendGrid has no idempotency key, so the
//!    pipeline does not retry it and the call fails with `Error::Ambiguous` saying why, unless
//!    the provider was built with [`SendGridProvider::retry_ambiguous`]. Connection failures
//!    before sending are retried (nothing was sent).
//!
//! Every response's `X-RateLimit-*` headers, when present, are reported to the endpoint's pacer
//! (see [`limits`]).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use ratewise_core::clock::{SharedClock, Timestamp};
use ratewise_core::limit::Limiter;
use ratewise_core::provider::{Provider, RequestSpec};
use ratewise_core::quota::{Cost, QuotaSnapshot};
use ratewise_core::verdict::{Inspection, Reason, Verdict};

use crate::error::{CREDITS_EXCEEDED, SendGridError};
use crate::headers;
use crate::limits::{self, SendGridLimits};

/// How long a 429 without a usable `X-RateLimit-Reset` holds its endpoint: 1 s.
///
/// SendGrid's headers name whole epoch seconds, so one second is the shortest period they can
/// describe; the retry itself backs off from there (full jitter, 200 ms base, 30 s cap).
pub const DEFAULT_THROTTLE_PAUSE: Duration = Duration::from_secs(1);

/// SendGrid's dialect for the ratewise pipeline.
///
/// Defaults: the configured budgets of [`SendGridLimits::new`] (10 requests per second per
/// endpoint, burst 10), a 1 s hold after a 429 without a reset, and no retry of ambiguous
/// failures.
#[derive(Clone, Debug, Default)]
pub struct SendGridProvider {
    limits: SendGridLimits,
    throttle_pause: Option<Duration>,
    retry_ambiguous: bool,
}

impl SendGridProvider {
    /// A provider enforcing `limits`.
    pub fn new(limits: SendGridLimits) -> Self {
        Self {
            limits,
            throttle_pause: None,
            retry_ambiguous: false,
        }
    }

    /// How long a 429 without a usable reset holds its endpoint (default 1 s; zero holds none).
    pub fn throttle_pause(mut self, pause: Duration) -> Self {
        self.throttle_pause = Some(pause);
        self
    }

    /// Retries failures that may have been processed (5xx, a timeout or broken connection after
    /// sending). Default `false`: SendGrid has no idempotency key, so such a retry can deliver
    /// the same email twice. With `true`, delivery is at least once; the call's idempotency key
    /// in `custom_args` lets duplicates be found in the event webhook.
    pub fn retry_ambiguous(mut self, retry: bool) -> Self {
        self.retry_ambiguous = retry;
        self
    }

    /// True when failures that may have been processed are retried.
    pub fn retries_ambiguous(&self) -> bool {
        self.retry_ambiguous
    }

    /// The configured budgets.
    pub fn limits(&self) -> &SendGridLimits {
        &self.limits
    }

    fn pause(&self) -> Duration {
        self.throttle_pause.unwrap_or(DEFAULT_THROTTLE_PAUSE)
    }

    /// The verdict for a non-success status and its body.
    fn classify(status: StatusCode, body: &[u8], error: Option<&SendGridError>) -> Verdict {
        match status.as_u16() {
            401 if error.map_or_else(
                || mentions_credits(body),
                SendGridError::is_credits_exceeded,
            ) =>
            {
                Verdict::fail(Reason::QuotaExhausted)
            }
            401 | 403 => Verdict::fail(Reason::Unauthorized),
            429 => Verdict::retry(Reason::RateLimited).not_processed(),
            400..=499 => Verdict::fail(Reason::Rejected),
            _ => Verdict::from_status(status),
        }
    }

    /// What a 429 says about its endpoint: nothing left until the reset it names, else for the
    /// throttle pause. The wait is the hint for the retry (`None`: back off locally).
    fn throttled(
        &self,
        reported: Option<QuotaSnapshot>,
        at: Timestamp,
    ) -> (Option<Duration>, Option<QuotaSnapshot>) {
        match reported {
            Some(mut snapshot) if snapshot.reset_at > at.instant => {
                snapshot.remaining = 0;
                let wait = snapshot.reset_at.saturating_duration_since(at.instant);
                (Some(wait), Some(snapshot))
            }
            _ => {
                let pause = self.pause();
                let snapshot = (!pause.is_zero())
                    .then(|| QuotaSnapshot::new(limits::ENDPOINT, 0, at.after(pause), at.instant));
                (None, snapshot)
            }
        }
    }
}

/// True when a body (decodable or not) carries "Maximum credits exceeded", in any case.
fn mentions_credits(body: &[u8]) -> bool {
    let needle = CREDITS_EXCEEDED.as_bytes();
    body.windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

impl Provider for SendGridProvider {
    const NAME: &'static str = "sendgrid";
    type ApiError = SendGridError;

    fn inspect(&self, response: &http::Response<Bytes>, at: Timestamp) -> Inspection {
        let status = response.status();
        let reported = headers::quota_snapshot(response.headers(), limits::ENDPOINT, at);
        if status.as_u16() < 400 {
            let inspection = Inspection::new(Verdict::Success);
            return match reported {
                Some(snapshot) => inspection.with_quota(snapshot),
                None => inspection,
            };
        }
        let error = SendGridError::from_body(response.body());
        let verdict = Self::classify(status, response.body(), error.as_ref());
        let (verdict, snapshot) = if verdict.reason() == Some(Reason::RateLimited) {
            let (wait, snapshot) = self.throttled(reported, at);
            (verdict.after(wait), snapshot)
        } else {
            (verdict, reported)
        };
        let inspection = Inspection::new(verdict);
        match snapshot {
            Some(snapshot) => inspection.with_quota(snapshot),
            None => inspection,
        }
    }

    /// One unit of `sendgrid.endpoint:<operation>`.
    fn cost(&self, request: &RequestSpec) -> Cost {
        Cost::none().with(limits::endpoint(request.operation), 1)
    }

    fn default_limiters(&self, clock: &SharedClock) -> Vec<Arc<dyn Limiter>> {
        self.limits.limiters(clock)
    }

    fn safe_without_key(&self, request: &RequestSpec) -> bool {
        self.retry_ambiguous || request.method.is_idempotent()
    }

    fn decode_error(&self, _status: StatusCode, body: &[u8]) -> Option<SendGridError> {
        SendGridError::from_body(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderName, HeaderValue};
    use ratewise_core::clock::{Clock, ManualClock};
    use ratewise_core::verdict::Processing;
    use std::time::UNIX_EPOCH;

    const NOW: u64 = 1_392_815_203;
    const CREDITS_401: &str =
        r#"{"errors":[{"field":null,"message":"Maximum credits exceeded","help":null}]}"#;
    const AUTH_401: &str = r#"{"errors":[{"field":null,"message":"The provided authorization grant is invalid, expired, or revoked","help":null}]}"#;
    const FORBIDDEN_403: &str = r#"{"errors":[{"message":"access forbidden","field":"null"}]}"#;
    const INVALID_400: &str = r#"{"errors":[{"message":"The from object must be provided for every email send.","field":"from","help":"http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html#message.from"}]}"#;
    const TOO_LARGE_413: &str = r#"{"errors":[{"message":"content too large","field":"null"}]}"#;
    const SERVER_500: &str = r#"{"errors":[{"message":"internal server error"}]}"#;
    const DOCUMENTED_429: &str = "{\n  \"errors\": [\n    {\n      \"field\": null,\n      \"message\": \"too many requests\"\n    },\n  ]\n}";

    fn at() -> Timestamp {
        ManualClock::with_wall(UNIX_EPOCH + Duration::from_secs(NOW)).timestamp()
    }

    fn response(
        status: u16,
        body: &str,
        headers: &[(&'static str, &str)],
    ) -> http::Response<Bytes> {
        let mut response = http::Response::new(Bytes::from(body.to_owned()));
        *response.status_mut() = StatusCode::from_u16(status).unwrap();
        for (name, value) in headers {
            response.headers_mut().insert(
                HeaderName::from_static(name),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        response
    }

    fn inspect(status: u16, body: &str, headers: &[(&'static str, &str)]) -> Inspection {
        SendGridProvider::default().inspect(&response(status, body, headers), at())
    }

    fn reset_in(secs: u64) -> String {
        (NOW + secs).to_string()
    }

    #[test]
    fn a_202_succeeds_and_reports_its_headers_when_present() {
        let reset = reset_in(60);
        let with = inspect(
            202,
            "",
            &[
                ("x-ratelimit-limit", "600"),
                ("x-ratelimit-remaining", "599"),
                ("x-ratelimit-reset", &reset),
            ],
        );
        assert_eq!(with.verdict, Verdict::Success);
        assert_eq!(with.quotas.len(), 1);
        assert_eq!(with.quotas[0].budget, limits::ENDPOINT);
        assert_eq!(with.quotas[0].remaining, 599);
        assert_eq!(with.quotas[0].limit, Some(600));
        let without = inspect(202, "", &[]);
        assert_eq!(without.verdict, Verdict::Success);
        assert!(without.quotas.is_empty(), "no headers, no snapshot");
    }

    #[test]
    fn credits_exceeded_is_quota_exhausted_and_other_401s_are_auth_errors() {
        assert_eq!(
            inspect(401, CREDITS_401, &[]).verdict,
            Verdict::fail(Reason::QuotaExhausted)
        );
        // Even when the body is not valid JSON.
        assert_eq!(
            inspect(
                401,
                "{\"errors\":[{\"message\":\"maximum CREDITS exceeded\"},]",
                &[]
            )
            .verdict,
            Verdict::fail(Reason::QuotaExhausted)
        );
        assert_eq!(
            inspect(401, AUTH_401, &[]).verdict,
            Verdict::fail(Reason::Unauthorized)
        );
        assert_eq!(
            inspect(401, "", &[]).verdict,
            Verdict::fail(Reason::Unauthorized)
        );
        assert_eq!(
            inspect(403, FORBIDDEN_403, &[]).verdict,
            Verdict::fail(Reason::Unauthorized)
        );
        // A 403 that mentions credits is still a permission problem.
        assert_eq!(
            inspect(403, CREDITS_401, &[]).verdict,
            Verdict::fail(Reason::Unauthorized)
        );
    }

    #[test]
    fn a_429_waits_for_the_reset_and_holds_the_endpoint_until_then() {
        let reset = reset_in(42);
        let inspection = inspect(
            429,
            DOCUMENTED_429,
            &[
                ("x-ratelimit-limit", "150"),
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-reset", &reset),
            ],
        );
        assert_eq!(
            inspection.verdict,
            Verdict::Retry {
                after: Some(Duration::from_secs(42)),
                reason: Reason::RateLimited,
                processing: Processing::NotProcessed,
            }
        );
        let snapshot = &inspection.quotas[0];
        assert_eq!(snapshot.remaining, 0);
        assert_eq!(
            snapshot.reset_at - snapshot.observed_at,
            Duration::from_secs(42)
        );
    }

    #[test]
    fn a_429_claiming_quota_left_is_still_held_to_zero() {
        let reset = reset_in(5);
        let inspection = inspect(
            429,
            DOCUMENTED_429,
            &[
                ("x-ratelimit-remaining", "7"),
                ("x-ratelimit-reset", &reset),
            ],
        );
        assert_eq!(inspection.quotas[0].remaining, 0);
    }

    #[test]
    fn a_429_without_headers_or_with_a_stale_reset_backs_off_and_pauses_the_endpoint() {
        for headers in [
            vec![],
            vec![
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-reset", "1000"),
            ],
            vec![("x-ratelimit-reset", "soon")],
        ] {
            let inspection = inspect(429, DOCUMENTED_429, &headers);
            assert_eq!(
                inspection.verdict,
                Verdict::retry(Reason::RateLimited).not_processed(),
                "no hint: local backoff, never an immediate retry"
            );
            let snapshot = &inspection.quotas[0];
            assert_eq!(snapshot.remaining, 0);
            assert_eq!(
                snapshot.reset_at - snapshot.observed_at,
                DEFAULT_THROTTLE_PAUSE
            );
        }
        let no_pause = SendGridProvider::default()
            .throttle_pause(Duration::ZERO)
            .inspect(&response(429, "", &[]), at());
        assert!(no_pause.quotas.is_empty());
    }

    #[test]
    fn other_client_errors_are_rejected_and_server_errors_maybe_processed() {
        assert_eq!(
            inspect(400, INVALID_400, &[]).verdict,
            Verdict::fail(Reason::Rejected)
        );
        assert_eq!(
            inspect(413, TOO_LARGE_413, &[]).verdict,
            Verdict::fail(Reason::Rejected)
        );
        assert_eq!(
            inspect(500, SERVER_500, &[]).verdict,
            Verdict::retry(Reason::ServerError)
        );
        assert_eq!(
            inspect(502, "<html>bad gateway</html>", &[]).verdict,
            Verdict::retry(Reason::ServerError)
        );
    }

    #[test]
    fn a_send_is_retried_after_ambiguous_failures_only_when_asked() {
        let spec = RequestSpec::post("/v3/mail/send", "mail.send");
        assert!(!SendGridProvider::default().safe_without_key(&spec));
        assert!(
            SendGridProvider::default()
                .retry_ambiguous(true)
                .safe_without_key(&spec)
        );
        assert!(SendGridProvider::default().idempotency_header().is_none());
    }

    #[test]
    fn a_call_spends_its_endpoint_budget() {
        let spec = RequestSpec::post("/v3/mail/send", "mail.send");
        assert_eq!(
            SendGridProvider::default().cost(&spec),
            Cost::none().with(limits::endpoint("mail.send"), 1)
        );
    }

    #[test]
    fn malformed_error_bodies_decode_or_are_kept_raw() {
        let provider = SendGridProvider::default();
        let decoded = provider
            .decode_error(StatusCode::TOO_MANY_REQUESTS, DOCUMENTED_429.as_bytes())
            .unwrap();
        assert_eq!(decoded.message(), Some("too many requests"));
        assert!(
            provider
                .decode_error(StatusCode::BAD_GATEWAY, b"<html>oops")
                .is_none()
        );
    }
}
