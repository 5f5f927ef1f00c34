//! Stripe's retry rules through the whole client: scripted responses, virtual time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use ratewise_core::clock::{Clock, TokioClock};
use ratewise_core::error::{Error, Retryable};
use ratewise_core::transport::{Transport, TransportError};
use ratewise_stripe::{ClientBuilder, CreatePaymentIntent, StripeClient};

const CREATED: &str = r#"{"id":"pi_1","object":"payment_intent","amount":2000,"currency":"usd","status":"requires_payment_method"}"#;
const LOCK_TIMEOUT: &str = r#"{"error":{"type":"invalid_request_error","code":"lock_timeout","message":"This object cannot be accessed right now because another API request or Stripe process is currently accessing it."}}"#;
const KEY_IN_USE: &str = r#"{"error":{"type":"invalid_request_error","code":"idempotency_key_in_use","message":"There is currently another in-progress request using this Idempotent Key."}}"#;
const RATE_LIMIT: &str = r#"{"error":{"type":"invalid_request_error","code":"rate_limit","message":"Request rate limit exceeded."}}"#;
const CARD_DECLINED: &str = r#"{"error":{"type":"card_error","code":"card_declined","decline_code":"insufficient_funds","message":"Your card has insufficient funds."}}"#;

/// Answers each request with the next scripted response and records the keys it saw.
#[derive(Debug, Default)]
struct Script {
    replies: Mutex<VecDeque<Result<http::Response<Bytes>, TransportError>>>,
    keys: Mutex<Vec<Option<String>>>,
}

impl Script {
    fn new(replies: Vec<Result<http::Response<Bytes>, TransportError>>) -> Arc<Self> {
        Arc::new(Self {
            replies: Mutex::new(replies.into()),
            keys: Mutex::default(),
        })
    }

    fn keys(&self) -> Vec<Option<String>> {
        self.keys.lock().unwrap().clone()
    }
}

#[async_trait]
impl Transport for Script {
    async fn send(
        &self,
        request: http::Request<Bytes>,
        _timeout: Duration,
    ) -> Result<http::Response<Bytes>, TransportError> {
        self.keys.lock().unwrap().push(
            request
                .headers()
                .get("idempotency-key")
                .map(|v| v.to_str().unwrap().to_owned()),
        );
        self.replies
            .lock()
            .unwrap()
            .pop_front()
            .expect("a scripted reply")
    }
}

fn reply(
    status: u16,
    body: &str,
    headers: &[(&'static str, &'static str)],
) -> Result<http::Response<Bytes>, TransportError> {
    let mut response = http::Response::new(Bytes::from(body.to_owned()));
    *response.status_mut() = StatusCode::from_u16(status).unwrap();
    response
        .headers_mut()
        .insert("request-id", HeaderValue::from_static("req_script"));
    for (name, value) in headers {
        response
            .headers_mut()
            .insert(*name, HeaderValue::from_static(value));
    }
    Ok(response)
}

fn client(script: &Arc<Script>) -> StripeClient {
    StripeClient::builder("sk_test_script")
        .base_url("http://stripe.script")
        .transport(Arc::clone(script) as Arc<dyn Transport>)
        .seed(3)
        .build()
        .unwrap()
}

async fn create(
    client: &StripeClient,
) -> Result<ratewise_stripe::Meta<ratewise_stripe::PaymentIntent>, ratewise_stripe::Error> {
    client
        .payment_intents()
        .create(CreatePaymentIntent::new(2000, "usd"))
        .send_with_meta()
        .await
}

#[tokio::test(start_paused = true)]
async fn lock_timeout_then_key_in_use_then_success_is_one_call_with_one_key() {
    let script = Script::new(vec![
        reply(429, LOCK_TIMEOUT, &[]),
        reply(409, KEY_IN_USE, &[]),
        reply(200, CREATED, &[("idempotent-replayed", "true")]),
    ]);
    let clock = TokioClock::new();
    let start = clock.now();
    let meta = create(&client(&script)).await.unwrap();
    assert_eq!(meta.attempts, 3);
    assert!(meta.replayed);
    assert_eq!(meta.request_id.as_deref(), Some("req_script"));
    let keys = script.keys();
    assert_eq!(keys.len(), 3);
    assert!(
        keys.iter().all(|k| k.is_some() && *k == keys[0]),
        "one key on every attempt: {keys:?}"
    );
    assert!(
        clock.now().duration_since(start) >= Duration::from_millis(500),
        "the 409 waited for the request in flight"
    );
}

#[tokio::test(start_paused = true)]
async fn a_plain_429_is_retried_unlike_stripe_node() {
    let script = Script::new(vec![reply(429, RATE_LIMIT, &[]), reply(200, CREATED, &[])]);
    let meta = create(&client(&script)).await.unwrap();
    assert_eq!(meta.attempts, 2);
}

#[tokio::test(start_paused = true)]
async fn a_declined_card_is_never_retried_and_keeps_its_decline_code_and_request_id() {
    let script = Script::new(vec![reply(402, CARD_DECLINED, &[])]);
    let error = create(&client(&script)).await.unwrap_err();
    assert!(!error.is_retryable());
    let Error::Api {
        error: Some(api),
        request_id,
        ..
    } = &error
    else {
        panic!("{error:?}");
    };
    assert_eq!(api.decline_code.as_deref(), Some("insufficient_funds"));
    assert!(
        api.idempotency_key.is_some(),
        "the error names the key it was sent with"
    );
    assert_eq!(request_id.as_deref(), Some("req_script"));
    assert_eq!(script.keys().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn should_retry_false_stops_a_500_and_should_retry_true_retries_a_400() {
    let script = Script::new(vec![reply(500, "{}", &[("stripe-should-retry", "false")])]);
    let error = create(&client(&script)).await.unwrap_err();
    assert_eq!(error.reason(), "server_refused");
    assert_eq!(script.keys().len(), 1);

    let script = Script::new(vec![
        reply(
            400,
            r#"{"error":{"type":"invalid_request_error"}}"#,
            &[("stripe-should-retry", "true")],
        ),
        reply(200, CREATED, &[]),
    ]);
    assert_eq!(create(&client(&script)).await.unwrap().attempts, 2);
}

#[tokio::test(start_paused = true)]
async fn connection_failures_and_5xx_are_retried_with_the_same_key() {
    let script = Script::new(vec![
        Err(TransportError::Interrupted {
            message: "reset by peer".into(),
        }),
        reply(503, "<html>unavailable</html>", &[]),
        reply(200, CREATED, &[]),
    ]);
    let meta = create(&client(&script)).await.unwrap();
    assert_eq!(meta.attempts, 3);
    let keys = script.keys();
    assert!(keys.iter().all(|k| *k == keys[0]));
}

#[tokio::test(start_paused = true)]
async fn unauthorized_and_not_found_are_never_retried() {
    for status in [401, 403, 404] {
        let script = Script::new(vec![reply(
            status,
            r#"{"error":{"type":"invalid_request_error","message":"no"}}"#,
            &[],
        )]);
        let error = create(&client(&script)).await.unwrap_err();
        assert!(!error.is_retryable(), "{status}");
        assert_eq!(script.keys().len(), 1, "{status}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_limiter_added_on_requests_paces_every_call_whatever_budgets_stripe_names() {
    use ratewise_core::limit::{GcraLimiter, Rate};
    let script = Script::new((0..3).map(|_| reply(200, CREATED, &[])).collect());
    let clock = TokioClock::shared();
    // One request per second, shared by this client and any other given the same limiter.
    let shared = Arc::new(
        GcraLimiter::new(Rate::per_second(1))
            .burst(1)
            .clock(clock.clone()),
    );
    let client = StripeClient::builder("sk_test_123".to_owned())
        .transport(script.clone())
        .clock(clock.clone())
        .limiter(shared)
        .build()
        .unwrap();
    let started = clock.now();
    for _ in 0..3 {
        client
            .payment_intents()
            .create(CreatePaymentIntent::new(2000, "usd"))
            .send()
            .await
            .unwrap();
    }
    let elapsed = clock.now() - started;
    assert!(
        elapsed >= Duration::from_secs(2) && elapsed < Duration::from_secs(3),
        "three calls at 1/s take two seconds, took {elapsed:?}"
    );
}
