//! The client end to end over the simulator, in virtual time.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::StatusCode;
use ratewise_core::error::Retryable;
use ratewise_core::upstream::CallPolicy;
use ratewise_testkit::{Fault, FaultPlan, ServerLimit, SimUpstream};

use super::*;
use crate::{
    ClientBuilder, CreatePaymentIntent, CustomerParams, Error, IdempotencyKey, StripeClient,
};

fn sim(faults: FaultPlan, seed: u64) -> SimUpstream {
    SimUpstream::builder()
        .dialect(StripeDialect::new())
        .handler(StripeHandler::new())
        .faults(faults)
        .seed(seed)
        .build()
}

fn client(sim: &SimUpstream, key: &str) -> crate::StripeClientBuilder {
    StripeClient::builder(key.to_owned())
        .base_url("http://stripe.sim")
        .transport(Arc::new(sim.transport()))
        .clock(sim.clock())
        .seed(11)
}

#[tokio::test(start_paused = true)]
async fn two_thousand_payment_intents_through_twenty_percent_faults_commit_exactly_once_each() {
    let faults = FaultPlan::new()
        .random(0.07, Fault::ResetAfterCommit)
        .random(0.06, Fault::server_error(StatusCode::INTERNAL_SERVER_ERROR))
        .random(0.03, Fault::throttled_by(OBJECT_LOCK))
        .bursts(0.01, 5, Fault::throttle_without_hint());
    let sim = sim(faults, 5);
    let client = client(&sim, "sk_live_e2e")
        // A batch: workers wait for the limiters rather than fail fast.
        .policy(
            CallPolicy::new()
                .max_attempts(10)
                .max_wait(Duration::from_secs(600)),
        )
        .build()
        .unwrap();

    let workers: Vec<_> = (0..50)
        .map(|worker| {
            let client = client.clone();
            tokio::spawn(async move {
                let mut outcomes = Vec::new();
                for i in 0..40 {
                    let params = CreatePaymentIntent::new(100 + worker * 40 + i, "usd")
                        .metadata("order", format!("{worker}-{i}"));
                    outcomes.push(
                        client
                            .payment_intents()
                            .create(params)
                            .send_with_meta()
                            .await,
                    );
                }
                outcomes
            })
        })
        .collect();
    let mut succeeded = 0;
    let mut replayed = 0;
    for worker in workers {
        for outcome in worker.await.unwrap() {
            match outcome {
                Ok(meta) => {
                    succeeded += 1;
                    replayed += usize::from(meta.replayed);
                    assert!(meta.idempotency_key.is_some());
                    assert!(meta.request_id.unwrap().starts_with("req_sim_"));
                }
                Err(error) => assert!(!error.is_retryable(), "a transient error escaped: {error}"),
            }
        }
    }

    let ledger = sim.ledger();
    assert_eq!(succeeded, 2000, "every call succeeded");
    assert_eq!(ledger.total_side_effects(), 2000);
    assert_eq!(ledger.side_effects("POST /v1/payment_intents"), 2000);
    assert_eq!(ledger.duplicates(), 0);
    assert!(ledger.resets() > 100, "resets fired: {}", ledger.resets());
    assert!(
        ledger.throttled() > 20,
        "429s fired: {}",
        ledger.throttled()
    );
    assert!(
        ledger.with_status(StatusCode::INTERNAL_SERVER_ERROR) > 100,
        "500s fired"
    );
    assert!(
        ledger.throttled() > 60,
        "lock_timeouts and 429 bursts fired: {}",
        ledger.throttled()
    );
    assert!(
        replayed > 100,
        "retries after a committed reset were replays: {replayed}"
    );
    assert_eq!(client.upstream().stats().calls, 2000);
}

#[tokio::test(start_paused = true)]
async fn a_key_reused_with_other_parameters_fails_at_once_naming_the_key() {
    let sim = sim(FaultPlan::new(), 1);
    let client = client(&sim, "sk_test_x").build().unwrap();
    let key = IdempotencyKey::parse("order-42").unwrap();
    client
        .payment_intents()
        .create(CreatePaymentIntent::new(1000, "usd"))
        .idempotency_key(key.clone())
        .send()
        .await
        .unwrap();
    let error = client
        .payment_intents()
        .create(CreatePaymentIntent::new(9999, "usd"))
        .idempotency_key(key)
        .send()
        .await
        .unwrap_err();
    let Error::Api {
        status,
        error: Some(api),
        request_id,
        ..
    } = &error
    else {
        panic!("{error:?}");
    };
    assert_eq!(*status, StatusCode::BAD_REQUEST);
    assert!(api.is_idempotency_mismatch());
    assert!(request_id.is_some());
    assert!(!error.is_retryable());
    assert!(
        error.to_string().contains("idempotency key order-42"),
        "{error}"
    );
    assert_eq!(sim.ledger().requests(), 2, "not retried");
    assert_eq!(sim.ledger().total_side_effects(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_a_committed_reset_is_a_replay_and_says_so() {
    let sim = sim(FaultPlan::new().request(0, Fault::ResetAfterCommit), 1);
    let client = client(&sim, "sk_test_x").build().unwrap();
    let meta = client
        .payment_intents()
        .create(CreatePaymentIntent::new(500, "eur"))
        .send_with_meta()
        .await
        .unwrap();
    assert!(meta.replayed);
    assert_eq!(meta.attempts, 2);
    assert_eq!(meta.value.amount, 500);
    assert_eq!(sim.ledger().total_side_effects(), 1);
}

#[tokio::test(start_paused = true)]
async fn the_same_business_id_derives_the_same_key_so_a_second_call_is_a_replay() {
    let sim = sim(FaultPlan::new(), 1);
    let client = client(&sim, "sk_test_x").build().unwrap();
    let create = || {
        client
            .payment_intents()
            .create(CreatePaymentIntent::new(700, "usd"))
            .idempotency_key_for(&uuid::Uuid::NAMESPACE_OID, "order-7")
            .send_with_meta()
    };
    let first = create().await.unwrap();
    let second = create().await.unwrap();
    assert!(!first.replayed);
    assert!(second.replayed);
    assert_eq!(first.value.id, second.value.id);
    assert_eq!(sim.ledger().total_side_effects(), 1);
}

/// Records the headers of every request, then answers as [`StripeHandler`].
#[derive(Debug, Default)]
struct Recording {
    inner: StripeHandler,
    seen: Mutex<Vec<(String, HeaderMap, String)>>,
}

impl Handler for Recording {
    fn handle(
        &self,
        request: &http::Request<Bytes>,
        ctx: &HandlerContext,
    ) -> http::Response<Bytes> {
        self.seen.lock().unwrap().push((
            request.uri().to_string(),
            request.headers().clone(),
            String::from_utf8_lossy(request.body()).into_owned(),
        ));
        self.inner.handle(request, ctx)
    }
}

#[tokio::test(start_paused = true)]
async fn requests_carry_auth_version_account_key_and_a_bracketed_form() {
    let recording = Arc::new(Recording::default());
    let sim = SimUpstream::builder()
        .dialect(StripeDialect::new())
        .handler(Arc::clone(&recording))
        .build();
    let client = client(&sim, "sk_test_abc")
        .account("acct_123")
        .build()
        .unwrap();
    let intent = client
        .payment_intents()
        .create(CreatePaymentIntent::new(2000, "usd").metadata("order id", "a&b"))
        .expand("customer")
        .send()
        .await
        .unwrap();
    client
        .payment_intents()
        .retrieve(&intent.id)
        .expand("latest_charge")
        .send()
        .await
        .unwrap();
    let seen = recording.seen.lock().unwrap();
    let (_, post_headers, body) = seen.first().unwrap();
    assert_eq!(post_headers["authorization"], "Bearer sk_test_abc");
    assert_eq!(
        post_headers["stripe-version"],
        crate::client::DEFAULT_API_VERSION
    );
    assert_eq!(post_headers["stripe-account"], "acct_123");
    assert_eq!(
        post_headers["content-type"],
        "application/x-www-form-urlencoded"
    );
    assert!(post_headers.contains_key("idempotency-key"));
    assert!(body.contains("metadata[order%20id]=a%26b"), "{body}");
    assert!(body.contains("expand[]=customer"), "{body}");
    let (get_uri, get_headers, _) = seen.get(1).unwrap();
    assert!(
        get_uri.ends_with(&format!(
            "/v1/payment_intents/{}?expand[]=latest_charge",
            intent.id
        )),
        "{get_uri}"
    );
    assert!(
        !get_headers.contains_key("idempotency-key"),
        "GETs carry no key"
    );
}

#[tokio::test(start_paused = true)]
async fn confirm_cancel_update_and_refund_walk_the_lifecycle() {
    let sim = sim(FaultPlan::new(), 1);
    let client = client(&sim, "sk_test_x").build().unwrap();
    let intents = client.payment_intents();
    let a = intents
        .create(CreatePaymentIntent::new(100, "usd"))
        .send()
        .await
        .unwrap();
    let b = intents
        .create(CreatePaymentIntent::new(200, "usd"))
        .send()
        .await
        .unwrap();
    let confirmed = intents
        .confirm(&a.id)
        .param("payment_method", "pm_card_visa")
        .send()
        .await
        .unwrap();
    assert_eq!(confirmed.status, crate::PaymentIntentStatus::Succeeded);
    let canceled = intents
        .cancel(
            &b.id,
            Some(crate::payment_intents::CancellationReason::Duplicate),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(canceled.status, crate::PaymentIntentStatus::Canceled);
    let customer = client
        .customers()
        .create(CustomerParams::new().email("ada@example.com"))
        .send()
        .await
        .unwrap();
    let updated = client
        .customers()
        .update(&customer.id, CustomerParams::new().name("Ada"))
        .send()
        .await
        .unwrap();
    assert_eq!(updated.name.as_deref(), Some("Ada"));
    assert_eq!(updated.email.as_deref(), Some("ada@example.com"));
    let refund = client
        .refunds()
        .create(crate::CreateRefund::payment_intent(&a.id).amount(50))
        .send()
        .await
        .unwrap();
    assert_eq!(
        client
            .refunds()
            .retrieve(&refund.id)
            .send()
            .await
            .unwrap()
            .amount,
        50
    );
    let missing = client
        .customers()
        .retrieve("cus_nope")
        .send()
        .await
        .unwrap_err();
    assert_eq!(missing.status(), Some(StatusCode::NOT_FOUND));
    assert!(!missing.is_retryable());
}

#[tokio::test(start_paused = true)]
async fn pages_follow_starting_after_to_the_end() {
    let sim = sim(FaultPlan::new(), 1);
    let client = client(&sim, "sk_test_x").build().unwrap();
    for i in 0..25 {
        client
            .customers()
            .create(CustomerParams::new().name(format!("c{i}")))
            .send()
            .await
            .unwrap();
    }
    let first = client.customers().list().limit(10).send().await.unwrap();
    assert!(first.has_more);
    assert_eq!(
        first.next_cursor(),
        first.data.last().map(|c| c.id.as_str())
    );
    let mut pages = client.customers().list().limit(10).pages();
    let mut sizes = Vec::new();
    let mut ids = std::collections::HashSet::new();
    while let Some(page) = pages.next_page().await.unwrap() {
        sizes.push(page.data.len());
        ids.extend(page.data.into_iter().map(|c| c.id));
    }
    assert_eq!(sizes, [10, 10, 5]);
    assert_eq!(ids.len(), 25);

    use futures_util::StreamExt;
    let streamed: Vec<_> = client
        .customers()
        .list()
        .limit(7)
        .pages()
        .into_stream()
        .collect()
        .await;
    assert_eq!(streamed.len(), 25);
    assert!(streamed.iter().all(Result::is_ok));
    assert_eq!(
        sim.ledger().requests(),
        25 + 1 + 3 + 4,
        "four pages of seven"
    );
}

/// 60 concurrent creations against a server allowing 20/s per operation, from a client that
/// believes 40/s: the number of 429s the server sent.
async fn endpoint_storm(pause: Duration) -> u64 {
    let sim = SimUpstream::builder()
        .dialect(StripeDialect::new())
        .handler(StripeHandler::new())
        .limit(
            ServerLimit::token_bucket(20.0, 20)
                .named("endpoint")
                .per_operation(),
        )
        .build();
    let limits = crate::StripeLimits::new(crate::Mode::Live)
        .endpoint(ratewise_core::limit::Rate::per_second(40));
    let client = client(&sim, "sk_live_x")
        .provider(crate::StripeProvider::new(limits).throttle_pause(pause))
        .policy(
            CallPolicy::new()
                .max_attempts(10)
                .max_wait(Duration::from_secs(120)),
        )
        .build()
        .unwrap();
    let calls: Vec<_> = (0..60)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move {
                client
                    .payment_intents()
                    .create(CreatePaymentIntent::new(i, "usd"))
                    .send()
                    .await
            })
        })
        .collect();
    for call in calls {
        let _ = call.await.unwrap();
    }
    assert_eq!(sim.ledger().duplicates(), 0);
    sim.ledger().throttled()
}

#[tokio::test(start_paused = true)]
async fn an_endpoint_rate_429_pauses_the_endpoint_so_fewer_requests_are_refused() {
    let paused = endpoint_storm(crate::provider::DEFAULT_THROTTLE_PAUSE).await;
    let unpaused = endpoint_storm(Duration::ZERO).await;
    assert!(paused > 0, "the server did refuse some");
    assert!(
        paused < unpaused,
        "{paused} 429s with the pause, {unpaused} without"
    );
}

#[test]
fn only_writes_to_an_existing_object_take_its_lock() {
    assert_eq!(
        locked_object("POST /v1/customers/cus_1"),
        Some("/v1/customers/cus_1".to_owned())
    );
    assert_eq!(
        locked_object("POST /v1/payment_intents/pi_1/confirm"),
        Some("/v1/payment_intents/pi_1".to_owned())
    );
    assert_eq!(locked_object("POST /v1/customers"), None);
    assert_eq!(locked_object("GET /v1/customers/cus_1"), None);
}

#[tokio::test(start_paused = true)]
async fn concurrent_writes_to_one_object_meet_lock_timeout_and_all_land_after_retries() {
    let sim = SimUpstream::builder()
        .dialect(StripeDialect::new())
        .handler(StripeHandler::new())
        .limit(object_lock())
        .seed(9)
        .build();
    let client = client(&sim, "sk_test_lock").build().unwrap();
    let customer = client
        .customers()
        .create(CustomerParams::new().email("a@example.com"))
        .send()
        .await
        .unwrap();

    let writers: Vec<_> = (0..8)
        .map(|i| {
            let client = client.clone();
            let id = customer.id.clone();
            tokio::spawn(async move {
                client
                    .customers()
                    .update(&id, CustomerParams::new().description(format!("note {i}")))
                    .send_with_meta()
                    .await
            })
        })
        .collect();
    let mut retried = 0;
    for writer in writers {
        let meta = writer
            .await
            .unwrap()
            .expect("every write lands after retries");
        retried += u32::from(meta.attempts > 1);
    }

    let ledger = sim.ledger();
    let update = format!("POST /v1/customers/{}", customer.id);
    assert!(ledger.throttled() > 0, "concurrent writes met the lock");
    assert!(retried > 0, "and were retried");
    assert_eq!(ledger.side_effects(&update), 8, "each write applied once");
    assert_eq!(ledger.duplicates(), 0);
}
