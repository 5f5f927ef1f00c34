//! Stripe for the ratewise testkit simulator: [`StripeDialect`] and [`StripeHandler`].
//!
//! With these, a [`SimUpstream`](ratewise_testkit::SimUpstream) answers like Stripe: 429s with
//! a `rate_limit` body and `Stripe-Rate-Limited-Reason`, `idempotency_error` (400) and
//! `idempotency_key_in_use` (409) bodies, `api_error` 5xx (503 with `Stripe-Should-Retry:
//! true`), a `Request-Id` on every response and `Idempotent-Replayed: true` on replays; and a
//! small in-memory Stripe that creates, retrieves, updates, confirms, cancels and lists objects.
//!
//! ```
//! use std::sync::Arc;
//! use ratewise_stripe::sim::{StripeDialect, StripeHandler};
//! use ratewise_stripe::{ClientBuilder, CreatePaymentIntent, StripeClient};
//! use ratewise_testkit::SimUpstream;
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
//! let sim = SimUpstream::builder()
//!     .dialect(StripeDialect::new())
//!     .handler(StripeHandler::new())
//!     .build();
//! let client = StripeClient::builder("sk_test_123")
//!     .base_url("http://stripe.sim")
//!     .transport(Arc::new(sim.transport()))
//!     .clock(sim.clock())
//!     .build()
//!     .unwrap();
//! let intent = client
//!     .payment_intents()
//!     .create(CreatePaymentIntent::new(2000, "usd"))
//!     .send()
//!     .await
//!     .unwrap();
//! assert_eq!(intent.amount, 2000);
//! # }
//! ```

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use ratewise_testkit::dialect::{epoch_seconds_ceil, json_response};
use ratewise_testkit::{
    Dialect, Handler, HandlerContext, IdempotencyError, ResponseContext, ServerLimit,
};
use serde_json::{Map, Value, json};

use crate::error::code;
use crate::headers::{REQUEST_ID, STRIPE_RATE_LIMITED_REASON, STRIPE_SHOULD_RETRY};

/// How Stripe speaks, for the simulator.
///
/// - Throttle: 429, `{"error":{"type":"invalid_request_error","code":"rate_limit",…}}`, and
///   `Stripe-Rate-Limited-Reason: endpoint-rate` when the refusing server limit's name contains
///   `endpoint`, `global-rate` for any other named limit, none for an injected bare 429. No
///   `Retry-After` (Stripe sends none).
/// - Server error: `{"error":{"type":"api_error",…}}`; a 503 adds `Stripe-Should-Retry: true`.
/// - Idempotency: 400 `idempotency_error`, 409 `idempotency_key_in_use`.
/// - Every response: `Request-Id: req_sim_<n>`.
#[derive(Debug, Default)]
pub struct StripeDialect {
    requests: AtomicU64,
}

impl StripeDialect {
    /// The dialect.
    pub fn new() -> Self {
        Self::default()
    }
}

fn error_body(status: StatusCode, error: Value) -> http::Response<Bytes> {
    json_response(status, &json!({ "error": error }))
}

/// The name of the [`object_lock`] limit; the dialect answers its refusals with `lock_timeout`.
pub const OBJECT_LOCK: &str = "object-lock";

/// Stripe's object lock: one write at a time per existing object (`POST /v1/customers/cus_1`,
/// `POST /v1/payment_intents/pi_1/confirm`); a concurrent write to the same object is refused
/// with 429 `lock_timeout`, as Stripe does. Creates (`POST /v1/customers`) and reads are not
/// locked. Add it with `SimUpstream::builder().limit(object_lock())`.
pub fn object_lock() -> ServerLimit {
    ServerLimit::concurrency(1)
        .keyed_by(locked_object)
        .named(OBJECT_LOCK)
}

/// `/v1/<resource>/<id>` for a write to an existing object, else `None`.
fn locked_object(operation: &str) -> Option<String> {
    let path = operation.strip_prefix("POST ")?;
    let path = path.split('?').next().unwrap_or(path);
    let mut segments = path.trim_start_matches('/').split('/');
    let (version, resource, id) = (segments.next()?, segments.next()?, segments.next()?);
    (!id.is_empty()).then(|| format!("/{version}/{resource}/{id}"))
}

impl Dialect for StripeDialect {
    fn throttle_response(&self, ctx: &ResponseContext<'_>) -> http::Response<Bytes> {
        if ctx
            .limits
            .iter()
            .any(|l| l.exceeded && &*l.name == OBJECT_LOCK)
        {
            return error_body(
                StatusCode::TOO_MANY_REQUESTS,
                json!({
                    "type": "invalid_request_error",
                    "code": code::LOCK_TIMEOUT,
                    "message": "This object cannot be accessed right now because another API request or Stripe process is currently accessing it. If you see this error intermittently, retry the request. If you see this error frequently and are making multiple concurrent requests to a single object, make your requests serially or at a lower rate.",
                }),
            );
        }
        let mut response = error_body(
            StatusCode::TOO_MANY_REQUESTS,
            json!({
                "type": "invalid_request_error",
                "code": code::RATE_LIMIT,
                "message": "Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.",
            }),
        );
        let reason = ctx.limits.iter().find(|l| l.exceeded).map(|l| {
            if l.name.contains("endpoint") {
                "endpoint-rate"
            } else {
                "global-rate"
            }
        });
        if let Some(reason) = reason {
            response
                .headers_mut()
                .insert(STRIPE_RATE_LIMITED_REASON, HeaderValue::from_static(reason));
        }
        response
    }

    fn server_error_response(
        &self,
        status: StatusCode,
        _ctx: &ResponseContext<'_>,
    ) -> http::Response<Bytes> {
        let mut response = error_body(
            status,
            json!({"type": "api_error", "message": "An unknown error occurred"}),
        );
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(STRIPE_SHOULD_RETRY, HeaderValue::from_static("true"));
        }
        response
    }

    fn idempotency_error_response(
        &self,
        error: IdempotencyError,
        _ctx: &ResponseContext<'_>,
    ) -> http::Response<Bytes> {
        match error {
            IdempotencyError::InFlight => error_body(
                StatusCode::CONFLICT,
                json!({
                    "type": "invalid_request_error",
                    "code": code::IDEMPOTENCY_KEY_IN_USE,
                    "message": "There is currently another in-progress request using this Idempotent Key (that probably means you submitted twice, and the other request is still going through). Please try again later.",
                }),
            ),
            _ => error_body(
                StatusCode::BAD_REQUEST,
                json!({
                    "type": "idempotency_error",
                    "message": "Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than the one used if you meant to execute a different request.",
                }),
            ),
        }
    }

    fn decorate(&self, headers: &mut HeaderMap, _ctx: &ResponseContext<'_>) {
        let n = self.requests.fetch_add(1, Ordering::Relaxed);
        if let Ok(value) = HeaderValue::from_str(&format!("req_sim_{n}")) {
            headers.insert(REQUEST_ID, value);
        }
    }
}

/// A small in-memory Stripe: the success path behind [`StripeDialect`].
///
/// - `POST /v1/{resource}`: creates an object from the form fields (`amount` and `balance` as
///   integers, `metadata[k]` as a map), id `<prefix>_sim_<n>` (`pi`, `cus`, `re`), PaymentIntents
///   in `requires_payment_method`.
/// - `GET /v1/{resource}/{id}`, `POST /v1/{resource}/{id}` (update), `POST
///   /v1/payment_intents/{id}/confirm` (→ `succeeded`) and `/cancel` (→ `canceled`).
/// - `GET /v1/{resource}`: every object, newest first, as a list (honours `limit` and
///   `starting_after`).
/// - Unknown ids: 404 `resource_missing`.
#[derive(Debug, Default)]
pub struct StripeHandler {
    objects: Mutex<BTreeMap<String, Vec<Value>>>,
}

impl StripeHandler {
    /// An empty Stripe.
    pub fn new() -> Self {
        Self::default()
    }
}

fn singular(resource: &str) -> (&'static str, String) {
    match resource {
        "payment_intents" => ("pi", "payment_intent".to_owned()),
        "customers" => ("cus", "customer".to_owned()),
        "refunds" => ("re", "refund".to_owned()),
        other => ("obj", other.strip_suffix('s').unwrap_or(other).to_owned()),
    }
}

fn not_found(id: &str) -> http::Response<Bytes> {
    error_body(
        StatusCode::NOT_FOUND,
        json!({"type": "invalid_request_error", "code": "resource_missing", "param": "id",
               "message": format!("No such object: '{id}'")}),
    )
}

/// Decodes one form component (`+` and `%XX`).
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i.saturating_add(1)..i.saturating_add(3))
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(byte) => {
                        out.push(byte);
                        i = i.saturating_add(2);
                    }
                    None => out.push(b'%'),
                }
            }
            other => out.push(other),
        }
        i = i.saturating_add(1);
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The fields of a flat Stripe form (nested `metadata[k]` becomes a map).
fn fields(form: &str) -> Map<String, Value> {
    let mut map = Map::new();
    for pair in form.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let (key, value) = (decode(key), decode(value));
        if let Some(inner) = key
            .strip_prefix("metadata[")
            .and_then(|k| k.strip_suffix(']'))
        {
            let metadata = map
                .entry("metadata")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(metadata) = metadata {
                metadata.insert(inner.to_owned(), Value::String(value));
            }
        } else if key == "amount" || key == "balance" {
            let number = value.parse::<i64>().map(Value::from);
            map.insert(key, number.unwrap_or(Value::String(value)));
        } else {
            map.insert(key, Value::String(value));
        }
    }
    map
}

impl Handler for StripeHandler {
    fn handle(
        &self,
        request: &http::Request<Bytes>,
        ctx: &HandlerContext,
    ) -> http::Response<Bytes> {
        let path = request.uri().path();
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let body = String::from_utf8_lossy(request.body());
        let query = request.uri().query().unwrap_or("");
        let mut objects = self.objects.lock().unwrap_or_else(PoisonError::into_inner);
        let method = request.method();
        match segments.as_slice() {
            ["v1", resource] if method == Method::POST => {
                let (prefix, object) = singular(resource);
                let mut value = fields(&body);
                value.insert("id".into(), json!(format!("{prefix}_sim_{}", ctx.index)));
                value.insert("object".into(), json!(object));
                value.insert("created".into(), json!(epoch_seconds_ceil(ctx.wall)));
                value.insert("livemode".into(), json!(false));
                value
                    .entry("metadata")
                    .or_insert_with(|| Value::Object(Map::new()));
                match *resource {
                    "payment_intents" => {
                        value.insert("status".into(), json!("requires_payment_method"));
                    }
                    "refunds" => {
                        value.insert("status".into(), json!("succeeded"));
                        value.entry("amount").or_insert(json!(0));
                        value.entry("currency").or_insert(json!("usd"));
                    }
                    _ => {}
                }
                let value = Value::Object(value);
                objects
                    .entry((*resource).to_owned())
                    .or_default()
                    .push(value.clone());
                json_response(StatusCode::OK, &value)
            }
            ["v1", resource] if method == Method::GET => {
                let params = fields(query);
                let all = objects.get(*resource).cloned().unwrap_or_default();
                let mut newest_first: Vec<Value> = all.into_iter().rev().collect();
                if let Some(after) = params.get("starting_after").and_then(Value::as_str) {
                    let position = newest_first.iter().position(|o| o["id"] == *after);
                    newest_first = match position {
                        Some(p) => newest_first.split_off(p.saturating_add(1)),
                        None => Vec::new(),
                    };
                }
                let limit = params
                    .get("limit")
                    .and_then(Value::as_str)
                    .and_then(|l| l.parse::<usize>().ok())
                    .unwrap_or(10);
                let has_more = newest_first.len() > limit;
                newest_first.truncate(limit);
                json_response(
                    StatusCode::OK,
                    &json!({"object": "list", "data": newest_first, "has_more": has_more,
                            "url": format!("/v1/{resource}")}),
                )
            }
            ["v1", resource, id, rest @ ..] => {
                let Some(object) = objects
                    .get_mut(*resource)
                    .and_then(|list| list.iter_mut().find(|o| o["id"] == **id))
                else {
                    return not_found(id);
                };
                if method == Method::POST
                    && let Value::Object(map) = object
                {
                    for (k, v) in fields(&body) {
                        map.insert(k, v);
                    }
                    match rest {
                        ["confirm"] => {
                            map.insert("status".into(), json!("succeeded"));
                        }
                        ["cancel"] => {
                            map.insert("status".into(), json!("canceled"));
                        }
                        _ => {}
                    }
                }
                json_response(StatusCode::OK, object)
            }
            _ => not_found(path),
        }
    }
}

#[cfg(test)]
mod tests;
