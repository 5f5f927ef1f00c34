//! The [`Provider`] trait: the only way a provider crate plugs into the pipeline.
//!
//! Everything a provider knows about its upstream's dialect lives here, as pure functions of a
//! request or a response: how to read a response ([`Provider::inspect`]), which header carries
//! the idempotency key, what a call costs against which budgets, which limiters to start with,
//! which requests are safe to retry without a key, and how to decode its error body. No I/O:
//! a provider is testable with fixtures alone.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, Method, StatusCode};
use serde::de::DeserializeOwned;

use crate::clock::{SharedClock, Timestamp};
use crate::idempotency::IdempotencyKey;
use crate::limit::Limiter;
use crate::quota::Cost;
use crate::verdict::Inspection;

/// An upstream's dialect: how to read its responses and what its calls cost.
pub trait Provider: Send + Sync + 'static {
    /// `"openai"`, `"stripe"`, …: the `upstream` label in telemetry and errors.
    const NAME: &'static str;

    /// The provider's typed error body (OpenAI `{"error":{…}}`, Stripe `{"error":{type,code,…}}`).
    type ApiError: DeserializeOwned + std::error::Error + Send + Sync + 'static;

    /// What this response means (success, retry after how long and why, or fail) and the quota
    /// its headers report. `at` is when the response arrived, on both clocks.
    ///
    /// In a streamed call
    /// ([`Upstream::execute_streaming`](crate::upstream::Upstream::execute_streaming)) a 2xx
    /// response is inspected before its body is read, with an empty body: judge a 2xx by its
    /// status and headers.
    fn inspect(&self, response: &http::Response<Bytes>, at: Timestamp) -> Inspection;

    /// The header carrying the idempotency key, if the provider honours one.
    fn idempotency_header(&self) -> Option<HeaderName> {
        None
    }

    /// What `request` spends, against which named budgets. Default: one request.
    fn cost(&self, request: &RequestSpec) -> Cost {
        let _ = request;
        Cost::request()
    }

    /// The limiters to enforce before any header has been seen (documented defaults), on
    /// `clock`.
    fn default_limiters(&self, clock: &SharedClock) -> Vec<Arc<dyn Limiter>> {
        let _ = clock;
        Vec::new()
    }

    /// What a successful call really cost, when the response says (OpenAI's `usage`): the
    /// pipeline reconciles the limiters' reservation with it. Default: as estimated.
    fn actual_cost(&self, request: &RequestSpec, response: &http::Response<Bytes>) -> Option<Cost> {
        let _ = (request, response);
        None
    }

    /// True when `request` may be retried after an ambiguous failure without an idempotency
    /// key. Default: the methods HTTP defines as idempotent (GET, HEAD, OPTIONS, TRACE, PUT,
    /// DELETE).
    fn safe_without_key(&self, request: &RequestSpec) -> bool {
        request.method.is_idempotent()
    }

    /// Decodes the typed error body of a failed response, if it has one.
    fn decode_error(&self, status: StatusCode, body: &[u8]) -> Option<Self::ApiError> {
        let _ = status;
        serde_json::from_slice(body).ok()
    }

    /// The request id the provider put on a response (`x-request-id`, `Request-Id`, …), carried
    /// on every error so the 3 AM reader can quote it to support.
    fn request_id(&self, headers: &HeaderMap) -> Option<String> {
        static NAMES: [HeaderName; 2] = [
            HeaderName::from_static("x-request-id"),
            HeaderName::from_static("request-id"),
        ];
        NAMES
            .iter()
            .find_map(|name| headers.get(name))
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }
}

/// One logical call as a typed endpoint describes it: what to send, and how to account for it.
///
/// The body is `Bytes`, so every attempt replays exactly the same bytes. The idempotency key, when
/// set, is minted before the first attempt and sent on every attempt.
#[derive(Clone)]
#[non_exhaustive]
pub struct RequestSpec {
    /// The HTTP method.
    pub method: Method,
    /// Path and query, relative to the client's base URL (`/v1/payment_intents`).
    pub path: String,
    /// Headers of this call only (content type, API version); credentials belong to the client.
    pub headers: HeaderMap,
    /// The body, replayed as is on every attempt.
    pub body: Bytes,
    /// A stable name for the operation (`payment_intents.create`): telemetry and per-endpoint
    /// budgets use it.
    pub operation: &'static str,
    /// The idempotency key sent on every attempt, if any.
    pub idempotency_key: Option<IdempotencyKey>,
    /// The cost to charge instead of [`Provider::cost`], if the caller knows better.
    pub cost: Option<Cost>,
}

impl RequestSpec {
    /// A call of `method` on `path`, named `operation`, with an empty body.
    pub fn new(method: Method, path: impl Into<String>, operation: &'static str) -> Self {
        Self {
            method,
            path: path.into(),
            headers: HeaderMap::new(),
            body: Bytes::new(),
            operation,
            idempotency_key: None,
            cost: None,
        }
    }

    /// A GET of `path`.
    pub fn get(path: impl Into<String>, operation: &'static str) -> Self {
        Self::new(Method::GET, path, operation)
    }

    /// A POST of `path`.
    pub fn post(path: impl Into<String>, operation: &'static str) -> Self {
        Self::new(Method::POST, path, operation)
    }

    /// This call with `body` (and its content type).
    pub fn body(mut self, content_type: &'static str, body: impl Into<Bytes>) -> Self {
        self.headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static(content_type),
        );
        self.body = body.into();
        self
    }

    /// This call with a header of its own.
    pub fn header(mut self, name: HeaderName, value: http::HeaderValue) -> Self {
        self.headers.insert(name, value);
        self
    }

    /// This call with an idempotency key (sent on every attempt).
    pub fn idempotency_key(mut self, key: IdempotencyKey) -> Self {
        self.idempotency_key = Some(key);
        self
    }

    /// This call charged exactly `cost` instead of what the provider estimates (which always
    /// includes one [`BudgetName::REQUESTS`](crate::quota::BudgetName::REQUESTS)): a cost
    /// without `requests` is not charged to limiters on `requests`.
    pub fn cost(mut self, cost: Cost) -> Self {
        self.cost = Some(cost);
        self
    }
}

impl fmt::Debug for RequestSpec {
    /// Bodies and headers are left out: they may carry personal data or secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestSpec")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("operation", &self.operation)
            .field("idempotency_key", &self.idempotency_key)
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::Verdict;

    #[derive(Debug, serde::Deserialize, thiserror::Error)]
    #[error("{message}")]
    struct GenericError {
        message: String,
    }

    struct Generic;

    impl Provider for Generic {
        const NAME: &'static str = "generic";
        type ApiError = GenericError;

        fn inspect(&self, response: &http::Response<Bytes>, _at: Timestamp) -> Inspection {
            Inspection::new(Verdict::from_status(response.status()))
        }
    }

    #[test]
    fn defaults_charge_one_request_and_trust_only_idempotent_methods() {
        let get = RequestSpec::get("/v1/things", "things.list");
        let post = RequestSpec::post("/v1/things", "things.create");
        assert_eq!(Generic.cost(&get), Cost::request());
        assert!(Generic.safe_without_key(&get));
        assert!(!Generic.safe_without_key(&post));
        assert!(Generic.idempotency_header().is_none());
    }

    #[test]
    fn error_bodies_decode_and_garbage_does_not() {
        let decoded = Generic
            .decode_error(StatusCode::BAD_REQUEST, br#"{"message":"bad amount"}"#)
            .unwrap();
        assert_eq!(decoded.to_string(), "bad amount");
        assert!(
            Generic
                .decode_error(StatusCode::BAD_GATEWAY, b"<html>oops")
                .is_none()
        );
    }

    #[test]
    fn request_debug_leaves_out_body_and_headers() {
        let spec = RequestSpec::post("/v1/charges", "charges.create")
            .body("application/x-www-form-urlencoded", "card=4242424242424242")
            .header(
                http::header::AUTHORIZATION,
                http::HeaderValue::from_static("Bearer sk_live_secret"),
            );
        let text = format!("{spec:?}");
        assert!(!text.contains("4242"));
        assert!(!text.contains("sk_live"));
        assert!(text.contains("charges.create"));
    }
}
