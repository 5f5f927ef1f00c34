//! [`StripeProvider`]: how Stripe's responses read, what its calls cost, which limiters apply.
//!
//! # The rules, in order
//!
//! 1. `Stripe-Should-Retry: true|false`, when present, decides first (as in every official
//!    SDK): `true` retries (keeping the status's own reason when it was retryable anyway),
//!    `false` fails with [`Reason::ServerRefused`] (or the status's own reason when it was
//!    permanent anyway).
//! 2. 429 with `code: lock_timeout`: the object is locked by another request:
//!    [`Reason::Contention`], not processed, local backoff (short: 200 ms base by default).
//! 3. Any other 429 (`rate_limit`, a concurrency limit): [`Reason::RateLimited`], not
//!    processed; the budget `Stripe-Rate-Limited-Reason` names is paused (see
//!    [`limits`] module).
//! 4. 400 with `code: rate_limit` (API versions before 2015-09-08), or a 400 "creating
//!    accounts too quickly": rate limited, as stripe-node does.
//! 5. 400 `type: idempotency_error` (a key reused with other parameters): never retried.
//! 6. 409 (`idempotency_key_in_use`: the same key is still in flight): retried after
//!    [`IN_FLIGHT_DELAY`] (500 ms), when the first request has usually finished.
//! 7. 402 card errors, 401, 403, 404 and other 4xx: never retried.
//! 8. 5xx: retried; safe because every POST carries an idempotency key. Connection failures
//!    are retried by the pipeline for the same reason.
//!
//! # Where this differs from stripe-node, and why
//!
//! stripe-node retries a plain 429 only when `Stripe-Should-Retry: true` says so. Stripe
//! documents that a rate-limited request was not processed, so retrying it is always safe;
//! this provider retries it after backoff, while the limiters (which every caller sharing the
//! client goes through) slow the budget that was exceeded. A caller who wants stripe-node's
//! behaviour sets `max_attempts(1)` on the call policy. stripe-node also retries a closed
//! connection once even with retries disabled; here the policy's `max_attempts` is the only
//! bound.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, Method, StatusCode};
use ratewise_core::clock::{SharedClock, Timestamp};
use ratewise_core::limit::Limiter;
use ratewise_core::provider::{Provider, RequestSpec};
use ratewise_core::quota::{Cost, QuotaSnapshot};
use ratewise_core::verdict::{Inspection, Reason, Verdict};

use crate::error::{ErrorType, StripeError, code};
use crate::headers::{self, RateLimitedReason};
use crate::limits::{self, StripeLimits};

/// How long to wait before retrying a 409 `idempotency_key_in_use`: 500 ms.
pub const IN_FLIGHT_DELAY: Duration = Duration::from_millis(500);

/// How long a 429 pauses the budget it names: 500 ms, half of Stripe's one-second rate window.
///
/// Long enough for the window to drain part-way, short enough that one stray 429 (another
/// process sharing the key) does not stall every caller for a full second; the budget then
/// refills at its configured rate.
pub const DEFAULT_THROTTLE_PAUSE: Duration = Duration::from_millis(500);

/// Stripe's dialect for the ratewise pipeline.
///
/// Defaults: the limits of [`StripeLimits::new`] for the mode given (use
/// [`StripeProvider::for_key`] to pick it from the key); a 429 pauses its budget for
/// [`DEFAULT_THROTTLE_PAUSE`] (500 ms).
#[derive(Clone, Debug)]
pub struct StripeProvider {
    limits: StripeLimits,
    throttle_pause: Duration,
}

impl StripeProvider {
    /// A provider enforcing `limits`.
    pub fn new(limits: StripeLimits) -> Self {
        Self {
            limits,
            throttle_pause: DEFAULT_THROTTLE_PAUSE,
        }
    }

    /// A provider with the documented limits for the mode of `key` (live or sandbox).
    pub fn for_key(key: &str) -> Self {
        Self::new(StripeLimits::for_key(key))
    }

    /// How long a 429 pauses the budget it names (default 500 ms; zero pauses nothing).
    pub fn throttle_pause(mut self, pause: Duration) -> Self {
        self.throttle_pause = pause;
        self
    }

    /// The limits this provider enforces.
    pub fn limits(&self) -> &StripeLimits {
        &self.limits
    }

    /// The verdict for a non-success status and its (possibly undecodable) error body,
    /// before `Stripe-Should-Retry` is applied.
    fn classify(status: StatusCode, error: Option<&StripeError>) -> Verdict {
        let code = error.and_then(|e| e.code.as_deref());
        let kind = error.map(|e| &e.kind);
        match status.as_u16() {
            429 if code == Some(code::LOCK_TIMEOUT) => {
                Verdict::retry(Reason::Contention).not_processed()
            }
            429 => Verdict::retry(Reason::RateLimited).not_processed(),
            400 if kind == Some(&ErrorType::IdempotencyError) => Verdict::fail(Reason::Rejected),
            400 if code == Some(code::RATE_LIMIT) || error.is_some_and(creating_too_quickly) => {
                Verdict::retry(Reason::RateLimited).not_processed()
            }
            409 => Verdict::retry(Reason::Conflict)
                .not_processed()
                .after(Some(IN_FLIGHT_DELAY)),
            401 | 403 => Verdict::fail(Reason::Unauthorized),
            400..=499 => Verdict::fail(Reason::Rejected),
            _ => Verdict::from_status(status),
        }
    }

    /// The pause a 429 puts on the budget its `Stripe-Rate-Limited-Reason` names.
    fn throttle_snapshot(&self, headers: &HeaderMap, at: Timestamp) -> Option<QuotaSnapshot> {
        if self.throttle_pause.is_zero() {
            return None;
        }
        let budget = match RateLimitedReason::from_headers(headers) {
            None
            | Some(RateLimitedReason::GlobalRate)
            | Some(RateLimitedReason::GlobalConcurrency)
            | Some(RateLimitedReason::Unknown) => limits::GLOBAL,
            Some(RateLimitedReason::EndpointRate)
            | Some(RateLimitedReason::EndpointConcurrency) => limits::ENDPOINT,
            Some(RateLimitedReason::ResourceSpecific) => return None,
        };
        Some(QuotaSnapshot::new(
            budget,
            0,
            at.after(self.throttle_pause),
            at.instant,
        ))
    }
}

/// Stripe's 400 for account creation that is too fast ("Sorry, you're creating accounts too
/// quickly…"): a rate limit in a 400.
fn creating_too_quickly(error: &StripeError) -> bool {
    error
        .message
        .as_deref()
        .is_some_and(|m| m.contains("too quickly"))
}

impl Provider for StripeProvider {
    const NAME: &'static str = "stripe";
    type ApiError = StripeError;

    fn inspect(&self, response: &http::Response<Bytes>, at: Timestamp) -> Inspection {
        let status = response.status();
        if status.as_u16() < 400 {
            return Inspection::new(Verdict::Success);
        }
        let error = StripeError::from_body(response.body());
        let verdict = Self::classify(status, error.as_ref())
            .obey_server(headers::should_retry(response.headers()));
        let inspection = Inspection::new(verdict);
        match verdict.reason() {
            Some(Reason::RateLimited) => match self.throttle_snapshot(response.headers(), at) {
                Some(snapshot) => inspection.with_quota(snapshot),
                None => inspection,
            },
            _ => inspection,
        }
    }

    fn idempotency_header(&self) -> Option<HeaderName> {
        Some(headers::IDEMPOTENCY_KEY)
    }

    /// One unit of `stripe.global`, of `stripe.endpoint:<operation>` and of `stripe.read`
    /// (GET) or `stripe.write` (anything else).
    fn cost(&self, request: &RequestSpec) -> Cost {
        let direction = if request.method == Method::GET {
            limits::READ
        } else {
            limits::WRITE
        };
        Cost::none()
            .with(limits::GLOBAL, 1)
            .with(limits::endpoint(request.operation), 1)
            .with(direction, 1)
    }

    fn default_limiters(&self, clock: &SharedClock) -> Vec<Arc<dyn Limiter>> {
        self.limits.limiters(clock)
    }

    fn decode_error(&self, _status: StatusCode, body: &[u8]) -> Option<StripeError> {
        StripeError::from_body(body)
    }

    fn request_id(&self, headers: &HeaderMap) -> Option<String> {
        headers::request_id(headers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::Mode;
    use http::HeaderValue;
    use ratewise_core::clock::{Clock, ManualClock};
    use ratewise_core::verdict::Processing;

    const RATE_LIMIT_429: &str = r#"{"error":{"type":"invalid_request_error","code":"rate_limit","message":"Request rate limit exceeded."}}"#;
    const LEGACY_RATE_LIMIT_400: &str = r#"{"error":{"type":"invalid_request_error","code":"rate_limit","message":"Request rate limit exceeded"}}"#;
    const LOCK_TIMEOUT_429: &str = r#"{"error":{"type":"invalid_request_error","code":"lock_timeout","message":"This object cannot be accessed right now because another API request or Stripe process is currently accessing it. If you see this error intermittently, retry the request."}}"#;
    const IDEMPOTENCY_MISMATCH_400: &str = r#"{"error":{"type":"idempotency_error","message":"Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than 'k1' if you meant to execute a different request."}}"#;
    const KEY_IN_USE_409: &str = r#"{"error":{"type":"invalid_request_error","code":"idempotency_key_in_use","message":"There is currently another in-progress request using this Idempotent Key."}}"#;
    const CARD_DECLINED_402: &str = r#"{"error":{"type":"card_error","code":"card_declined","decline_code":"generic_decline","message":"Your card was declined."}}"#;
    const ACCOUNTS_TOO_QUICKLY_400: &str = r#"{"error":{"type":"invalid_request_error","message":"Sorry, you're creating accounts too quickly. You should limit your requests to less than 5 creation attempts per second with a test key, or less than 30 with a live key."}}"#;
    const API_ERROR_500: &str =
        r#"{"error":{"type":"api_error","message":"An unknown error occurred"}}"#;
    const INVALID_400: &str = r#"{"error":{"type":"invalid_request_error","code":"parameter_missing","param":"amount","message":"Missing required param: amount."}}"#;
    const AUTH_401: &str = r#"{"error":{"type":"invalid_request_error","message":"Invalid API Key provided: sk_test_****1234"}}"#;
    const NOT_FOUND_404: &str = r#"{"error":{"type":"invalid_request_error","code":"resource_missing","param":"id","message":"No such payment_intent: 'pi_123'"}}"#;

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

    fn inspect(status: u16, body: &str, headers: &[(&'static str, &'static str)]) -> Inspection {
        let clock = ManualClock::new();
        StripeProvider::new(StripeLimits::new(Mode::Sandbox))
            .inspect(&response(status, body, headers), clock.timestamp())
    }

    fn retry(reason: Reason, processing: Processing, after: Option<Duration>) -> Verdict {
        Verdict::Retry {
            after,
            reason,
            processing,
        }
    }

    /// (name, status, body, headers, expected verdict)
    type Case = (&'static str, u16, &'static str, Headers, Verdict);
    type Headers = &'static [(&'static str, &'static str)];

    #[test]
    fn every_status_and_code_reads_as_documented() {
        use Processing::{Maybe, NotProcessed};
        let cases: &[Case] = &[
            ("200 ok", 200, "{}", &[], Verdict::Success),
            (
                "429 rate_limit: retry, not processed",
                429,
                RATE_LIMIT_429,
                &[],
                retry(Reason::RateLimited, NotProcessed, None),
            ),
            (
                "429 lock_timeout: contention",
                429,
                LOCK_TIMEOUT_429,
                &[],
                retry(Reason::Contention, NotProcessed, None),
            ),
            (
                "429 with no body",
                429,
                "",
                &[],
                retry(Reason::RateLimited, NotProcessed, None),
            ),
            (
                "legacy 400 rate_limit",
                400,
                LEGACY_RATE_LIMIT_400,
                &[],
                retry(Reason::RateLimited, NotProcessed, None),
            ),
            (
                "400 accounts too quickly",
                400,
                ACCOUNTS_TOO_QUICKLY_400,
                &[],
                retry(Reason::RateLimited, NotProcessed, None),
            ),
            (
                "409 key in use: short delay",
                409,
                KEY_IN_USE_409,
                &[],
                retry(Reason::Conflict, NotProcessed, Some(IN_FLIGHT_DELAY)),
            ),
            (
                "400 idempotency_error: never",
                400,
                IDEMPOTENCY_MISMATCH_400,
                &[],
                Verdict::fail(Reason::Rejected),
            ),
            (
                "402 card error: never",
                402,
                CARD_DECLINED_402,
                &[],
                Verdict::fail(Reason::Rejected),
            ),
            (
                "400 invalid: never",
                400,
                INVALID_400,
                &[],
                Verdict::fail(Reason::Rejected),
            ),
            (
                "401: never",
                401,
                AUTH_401,
                &[],
                Verdict::fail(Reason::Unauthorized),
            ),
            (
                "403: never",
                403,
                AUTH_401,
                &[],
                Verdict::fail(Reason::Unauthorized),
            ),
            (
                "404: never",
                404,
                NOT_FOUND_404,
                &[],
                Verdict::fail(Reason::Rejected),
            ),
            (
                "500: retry, maybe processed",
                500,
                API_ERROR_500,
                &[],
                retry(Reason::ServerError, Maybe, None),
            ),
            (
                "503 html: retry",
                503,
                "<html>down</html>",
                &[],
                retry(Reason::ServerError, Maybe, None),
            ),
            (
                "500 + should-retry false: never",
                500,
                API_ERROR_500,
                &[("stripe-should-retry", "false")],
                Verdict::fail(Reason::ServerRefused),
            ),
            (
                "429 + should-retry false: never",
                429,
                RATE_LIMIT_429,
                &[("stripe-should-retry", "false")],
                Verdict::fail(Reason::ServerRefused),
            ),
            (
                "400 + should-retry true: retry",
                400,
                INVALID_400,
                &[("stripe-should-retry", "true")],
                retry(Reason::ServerRequested, Maybe, None),
            ),
            (
                "402 + should-retry false: card error stays",
                402,
                CARD_DECLINED_402,
                &[("stripe-should-retry", "false")],
                Verdict::fail(Reason::Rejected),
            ),
            (
                "429 + should-retry true keeps its reason",
                429,
                RATE_LIMIT_429,
                &[("stripe-should-retry", "true")],
                retry(Reason::RateLimited, NotProcessed, None),
            ),
            (
                "should-retry garbage is ignored",
                500,
                API_ERROR_500,
                &[("stripe-should-retry", "perhaps")],
                retry(Reason::ServerError, Maybe, None),
            ),
        ];
        for (name, status, body, headers, expected) in cases {
            assert_eq!(inspect(*status, body, headers).verdict, *expected, "{name}");
        }
    }

    #[test]
    fn a_rate_limited_reason_pauses_the_budget_it_names() {
        let budget = |value: &'static str| {
            let headers: &[(&'static str, &'static str)] = &[("stripe-rate-limited-reason", value)];
            inspect(429, RATE_LIMIT_429, headers)
                .quotas
                .first()
                .map(|q| q.budget.clone())
        };
        assert_eq!(budget("global-rate"), Some(limits::GLOBAL));
        assert_eq!(budget("global-concurrency"), Some(limits::GLOBAL));
        assert_eq!(budget("endpoint-rate"), Some(limits::ENDPOINT));
        assert_eq!(budget("endpoint-concurrency"), Some(limits::ENDPOINT));
        assert_eq!(budget("resource-specific"), None);
        let without = inspect(429, RATE_LIMIT_429, &[]);
        let snapshot = without.quotas.first().unwrap();
        assert_eq!(snapshot.budget, limits::GLOBAL);
        assert_eq!(snapshot.remaining, 0);
        assert_eq!(
            snapshot.reset_at.duration_since(snapshot.observed_at),
            DEFAULT_THROTTLE_PAUSE
        );
        assert!(
            inspect(429, LOCK_TIMEOUT_429, &[]).quotas.is_empty(),
            "contention pauses nothing"
        );
        assert!(inspect(500, API_ERROR_500, &[]).quotas.is_empty());
    }

    #[test]
    fn a_zero_pause_pauses_nothing() {
        let clock = ManualClock::new();
        let provider = StripeProvider::for_key("sk_test_x").throttle_pause(Duration::ZERO);
        let inspection = provider.inspect(&response(429, RATE_LIMIT_429, &[]), clock.timestamp());
        assert!(inspection.quotas.is_empty());
    }

    #[test]
    fn a_call_costs_one_of_global_its_endpoint_and_its_direction() {
        let provider = StripeProvider::for_key("sk_live_x");
        let create = provider.cost(&RequestSpec::post(
            "/v1/payment_intents",
            "payment_intents.create",
        ));
        assert_eq!(create.amount(&limits::GLOBAL), 1);
        assert_eq!(
            create.amount(&limits::endpoint("payment_intents.create")),
            1
        );
        assert_eq!(create.amount(&limits::WRITE), 1);
        assert_eq!(create.amount(&limits::READ), 0);
        let list = provider.cost(&RequestSpec::get("/v1/customers", "customers.list"));
        assert_eq!(list.amount(&limits::READ), 1);
        assert_eq!(
            provider.limits().global,
            ratewise_core::limit::Rate::per_second(100)
        );
    }

    #[test]
    fn the_request_id_and_the_key_header_are_stripes() {
        let provider = StripeProvider::for_key("sk_test_x");
        let r = response(500, API_ERROR_500, &[("request-id", "req_abc")]);
        assert_eq!(provider.request_id(r.headers()).as_deref(), Some("req_abc"));
        assert_eq!(
            provider.idempotency_header(),
            Some(headers::IDEMPOTENCY_KEY)
        );
        let error = provider
            .decode_error(StatusCode::PAYMENT_REQUIRED, CARD_DECLINED_402.as_bytes())
            .unwrap();
        assert_eq!(error.decline_code.as_deref(), Some("generic_decline"));
    }

    #[test]
    fn the_default_limiters_charge_each_endpoint_its_own_budget() {
        use ratewise_core::limit::CompositeLimiter;
        let clock = ManualClock::new();
        let provider = StripeProvider::for_key("sk_live_x");
        let composite = provider
            .default_limiters(&clock.shared())
            .into_iter()
            .fold(CompositeLimiter::new().clock(clock.shared()), |c, l| {
                c.with(l)
            });
        let create = provider.cost(&RequestSpec::post(
            "/v1/payment_intents",
            "payment_intents.create",
        ));
        let list = provider.cost(&RequestSpec::get("/v1/customers", "customers.list"));
        // Per-endpoint burst: 6 (a quarter second of 25/s).
        for _ in 0..6 {
            let _ = composite.try_acquire(&create).unwrap();
        }
        let refused = composite.try_acquire(&create).unwrap_err();
        assert_eq!(refused.budget, limits::endpoint("payment_intents.create"));
        let _ = composite.try_acquire(&list).unwrap();
        clock.advance(Duration::from_millis(40));
        let _ = composite.try_acquire(&create).unwrap();
    }
}
