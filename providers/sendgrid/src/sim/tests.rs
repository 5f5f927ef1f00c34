//! The client end to end over the simulator, in virtual time.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http::StatusCode;
use ratewise_core::error::Retryable;
use ratewise_core::limit::Rate;
use ratewise_core::transport::{Transport, TransportError};
use ratewise_core::upstream::CallPolicy;
use ratewise_core::verdict::Reason;
use ratewise_testkit::{Fault, FaultPlan, ServerLimit, SimTransport, SimUpstream};

use super::*;
use crate::{
    CallError, ClientBuilder, Content, Error, IdempotencyKey, Mail, MemoryDedupe, Personalization,
    SendGridClient, SendGridClientBuilder, SendGridError, SendGridLimits, SendGridProvider,
};

const MAIL_SEND_OP: &str = "POST /v3/mail/send";

fn sim(dialect: SendGridDialect, handler: &Arc<SendGridHandler>, faults: FaultPlan) -> SimUpstream {
    SimUpstream::builder()
        .dialect(dialect)
        .handler(Arc::clone(handler))
        // SendGrid's per-endpoint window: 10 requests per 10 s.
        .limit(ServerLimit::fixed_window(10, Duration::from_secs(10)).per_operation())
        .faults(faults)
        .build()
}

/// A SendGrid with headers and unlimited credits, meeting `faults`.
fn plain(faults: FaultPlan) -> (Arc<SendGridHandler>, SimUpstream) {
    let handler = Arc::new(SendGridHandler::new());
    let sim = sim(SendGridDialect::new(), &handler, faults);
    (handler, sim)
}

fn store(sim: &SimUpstream) -> Arc<MemoryDedupe> {
    Arc::new(MemoryDedupe::with_clock(1_000, sim.clock()))
}

fn client(sim: &SimUpstream) -> SendGridClientBuilder {
    SendGridClient::builder("SG.test")
        .base_url("http://sendgrid.sim")
        .transport(Arc::new(sim.transport()))
        .clock(sim.clock())
        .seed(7)
}

/// A campaign waits for the window rather than failing fast.
fn patient() -> CallPolicy {
    CallPolicy::new().max_wait(Duration::from_secs(60))
}

fn template() -> Mail {
    Mail::new("news@example.com")
        .subject("Spring news")
        .content(Content::text("Hello"))
        .category("newsletter")
}

fn recipients(n: usize) -> Vec<Personalization> {
    (0..n)
        .map(|i| Personalization::new(format!("reader{i}@example.com")).template_data("n", i))
        .collect()
}

fn one_mail(to: &str) -> Mail {
    template().personalization(Personalization::new(to))
}

#[tokio::test(start_paused = true)]
async fn a_ten_thousand_recipient_campaign_in_batches_of_a_thousand_is_accepted_once_each() {
    let (handler, sim) = plain(FaultPlan::new());
    let client = client(&sim).policy(patient()).build().unwrap();
    let mut progressed = 0;
    let report = client
        .campaign("spring-2026", template(), recipients(10_000))
        .run_with_progress(|_, result| {
            assert!(result.is_ok(), "{result:?}");
            progressed += 1;
        })
        .await;
    assert!(report.is_complete(), "{:?}", report.error());
    assert_eq!(progressed, 10);
    assert_eq!(report.accepted_batches(), (0..10).collect::<Vec<_>>());
    assert_eq!(report.recipients_accepted(), 10_000);
    assert_eq!(handler.recipients(), 10_000);
    assert_eq!(handler.messages().len(), 10);
    assert_eq!(handler.duplicates(), 0);
    let ledger = sim.ledger();
    assert_eq!(ledger.side_effects(MAIL_SEND_OP), 10);
    assert_eq!(ledger.duplicates(), 0);
    assert_eq!(ledger.throttled(), 0, "no 429 even at the server");
    for (batch, accepted) in &report.accepted {
        assert_eq!(accepted.idempotency_key, batch.idempotency_key);
        assert!(accepted.message_id.as_deref().unwrap().starts_with("sim"));
    }
}

/// 30 batches against 10 per 10 s: the pacer spreads them over three windows.
async fn thirty_batches(dialect: SendGridDialect, limits: Option<SendGridLimits>) -> SimUpstream {
    let handler = Arc::new(SendGridHandler::new());
    let sim = sim(dialect, &handler, FaultPlan::new());
    let mut builder = client(&sim).policy(patient());
    if let Some(limits) = limits {
        builder = builder.limits(limits);
    }
    let client = builder.build().unwrap();
    let report = client
        .campaign("summer", template(), recipients(30_000))
        .run()
        .await;
    assert!(report.is_complete(), "{:?}", report.error());
    assert_eq!(handler.recipients(), 30_000);
    assert_eq!(handler.duplicates(), 0);
    assert_eq!(sim.ledger().side_effects(MAIL_SEND_OP), 30);
    assert!(
        sim.elapsed() >= Duration::from_secs(20),
        "three windows: {:?}",
        sim.elapsed()
    );
    sim
}

#[tokio::test(start_paused = true)]
async fn the_headers_pace_every_window_without_a_single_429() {
    let sim = thirty_batches(SendGridDialect::new(), None).await;
    assert_eq!(sim.ledger().throttled(), 0);
    assert_eq!(sim.ledger().requests(), 30);
}

#[tokio::test(start_paused = true)]
async fn without_headers_the_configured_budget_alone_keeps_the_window() {
    let budget = SendGridLimits::new().budget(Rate::new(10, Duration::from_secs(10)), 1);
    let sim = thirty_batches(SendGridDialect::without_headers(), Some(budget)).await;
    assert_eq!(sim.ledger().throttled(), 0);
    assert_eq!(sim.ledger().requests(), 30);
}

#[tokio::test(start_paused = true)]
async fn a_429_waits_for_the_reset_and_the_retry_is_accepted() {
    let (handler, sim) = plain(FaultPlan::new());
    // Another process spent the window: our first request meets the 429.
    let other = sim.transport();
    for _ in 0..10 {
        let request = http::Request::post("http://sendgrid.sim/v3/mail/send")
            .body(Bytes::from_static(b"{}"))
            .unwrap();
        let _ = other.send(request, Duration::from_secs(5)).await;
    }
    let client = client(&sim).build().unwrap();
    let started = sim.elapsed();
    let accepted = client
        .send_mail(one_mail("a@example.com"))
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.attempts, 2);
    assert_eq!(sim.ledger().throttled(), 1, "one 429, then the reset");
    assert!(sim.elapsed() - started >= Duration::from_secs(9));
    assert_eq!(handler.messages().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn the_documented_429_body_decodes_when_the_caller_allows_no_retry() {
    let (handler, sim) =
        plain(FaultPlan::new().request(0, Fault::throttle(Duration::from_secs(3))));
    let client = client(&sim)
        .policy(CallPolicy::new().max_attempts(1))
        .build()
        .unwrap();
    let error = client
        .send_mail(one_mail("a@example.com"))
        .send()
        .await
        .unwrap_err();
    let Error::Call(call) = &error else {
        panic!("{error:?}")
    };
    assert_eq!(call.status(), Some(StatusCode::TOO_MANY_REQUESTS));
    assert_eq!(
        call.api_error().and_then(SendGridError::message),
        Some("too many requests")
    );
    assert!(error.is_retryable());
    assert!(!error.is_ambiguous());
    assert!(handler.messages().is_empty());
}

#[tokio::test(start_paused = true)]
async fn spent_credits_stop_the_campaign_at_once_and_report_the_accepted_batches() {
    let handler = Arc::new(SendGridHandler::new().credits(4_500));
    let sim = sim(SendGridDialect::new(), &handler, FaultPlan::new());
    let client = client(&sim).policy(patient()).build().unwrap();
    let report = client
        .campaign("autumn", template(), recipients(10_000))
        .run()
        .await;
    assert_eq!(report.accepted_batches(), vec![0, 1, 2, 3]);
    assert_eq!(report.recipients_accepted(), 4_000);
    let (batch, error) = report.stopped.as_ref().unwrap();
    assert_eq!(batch.index, 4);
    assert!(error.is_credits_exhausted(), "{error:?}");
    assert!(!error.is_retryable());
    assert!(
        error.to_string().contains("Maximum credits exceeded"),
        "{error}"
    );
    // Nothing after batch 4 was sent, and the 401 was not retried.
    assert_eq!(sim.ledger().requests(), 5);
    assert_eq!(sim.ledger().with_status(StatusCode::UNAUTHORIZED), 1);
    assert_eq!(handler.recipients(), 4_000);
    // The breaker did not count the 401 as an outage.
    assert_eq!(
        client.upstream().stats().breaker,
        ratewise_core::breaker::BreakerState::Closed
    );
}

#[tokio::test(start_paused = true)]
async fn a_wrong_key_is_an_auth_error_never_retried() {
    let handler = Arc::new(SendGridHandler::new().api_key("SG.right"));
    let sim = sim(SendGridDialect::new(), &handler, FaultPlan::new());
    let client = client(&sim).build().unwrap();
    let error = client
        .send_mail(one_mail("a@example.com"))
        .send()
        .await
        .unwrap_err();
    let Error::Call(call) = &error else {
        panic!("{error:?}")
    };
    assert!(matches!(
        call,
        CallError::Api {
            reason: Reason::Unauthorized,
            ..
        }
    ));
    assert!(!error.is_credits_exhausted());
    assert!(!error.is_retryable());
    assert_eq!(sim.ledger().requests(), 1);
}

#[tokio::test(start_paused = true)]
async fn an_invalid_mail_is_refused_before_it_costs_a_request() {
    let (handler, sim) = plain(FaultPlan::new());
    let client = client(&sim).build().unwrap();
    let too_many = template().personalizations(recipients(1_001));
    let error = client.send_mail(too_many).send().await.unwrap_err();
    let Error::Invalid(invalid) = &error else {
        panic!("{error:?}")
    };
    assert_eq!(invalid.field(), "personalizations");
    let no_body = Mail::new("a@example.com")
        .subject("s")
        .personalization(Personalization::new("b@example.com"));
    let error = client.send_mail(no_body).send().await.unwrap_err();
    assert!(matches!(
        error,
        Error::Invalid(crate::InvalidMail::NoContent)
    ));
    assert_eq!(sim.ledger().requests(), 0);
    assert!(handler.messages().is_empty());
}

#[tokio::test(start_paused = true)]
async fn the_key_goes_in_custom_args_and_counts_against_their_limit() {
    let (handler, sim) = plain(FaultPlan::new());
    let client = client(&sim).build().unwrap();
    let key = IdempotencyKey::parse("order-6735-confirmation").unwrap();
    client
        .send_mail(one_mail("a@example.com"))
        .idempotency_key(key.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(
        handler.messages()[0].idempotency_key.as_deref(),
        Some(key.as_str())
    );
    // Custom args that fit alone no longer fit with the key.
    let crowded = one_mail("b@example.com").custom_arg("notes", "x".repeat(9_950));
    let error = client.send_mail(crowded).send().await.unwrap_err();
    assert!(
        matches!(
            &error,
            Error::Invalid(crate::InvalidMail::CustomArgsTooLarge { .. })
        ),
        "{error:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_queue_redelivery_with_the_same_key_sends_nothing_twice() {
    let (handler, sim) = plain(FaultPlan::new());
    let store = store(&sim);
    let client = client(&sim).dedupe(store).build().unwrap();
    let send = || {
        client
            .send_mail(one_mail("a@example.com"))
            .idempotency_key_for(&crate::Uuid::NAMESPACE_URL, "https://shop.example/orders/1")
            .send()
    };
    let first = send().await.unwrap();
    let again = send().await.unwrap();
    assert!(!first.deduplicated);
    assert!(again.deduplicated);
    assert_eq!(again.attempts, 0);
    assert_eq!(again.message_id, first.message_id);
    assert_eq!(sim.ledger().requests(), 1);
    assert_eq!(handler.messages().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn an_ambiguous_failure_is_not_retried_says_why_and_blocks_the_redelivery() {
    let (handler, sim) = plain(FaultPlan::new().request(0, Fault::ResetAfterCommit));
    let store = store(&sim);
    let client = client(&sim).dedupe(store).build().unwrap();
    let key = IdempotencyKey::parse("job-77").unwrap();
    let send = || {
        client
            .send_mail(one_mail("a@example.com"))
            .idempotency_key(key.clone())
            .send()
    };
    let error = send().await.unwrap_err();
    assert!(error.is_ambiguous(), "{error:?}");
    assert!(matches!(error, Error::Call(CallError::Ambiguous { .. })));
    assert!(error.to_string().contains("not retried"), "{error}");
    // The email went out once; the redelivered job is refused, not resent.
    let redelivered = send().await.unwrap_err();
    assert!(
        matches!(redelivered, Error::InFlight { .. }),
        "{redelivered:?}"
    );
    assert!(redelivered.to_string().contains("job-77"));
    assert_eq!(sim.ledger().requests(), 1);
    assert_eq!(handler.messages().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_server_error_is_not_retried_by_default_and_is_when_asked() {
    for (retry, requests) in [(false, 1), (true, 2)] {
        let (handler, sim) = plain(
            FaultPlan::new().request(0, Fault::server_error(StatusCode::INTERNAL_SERVER_ERROR)),
        );
        let client = client(&sim)
            .provider(SendGridProvider::default().retry_ambiguous(retry))
            .build()
            .unwrap();
        let result = client.send_mail(one_mail("a@example.com")).send().await;
        assert_eq!(result.is_ok(), retry, "{result:?}");
        assert_eq!(sim.ledger().requests(), requests);
        assert_eq!(handler.messages().len(), usize::from(retry));
    }
}

/// Refuses the first `failures` connections, then hands over to the simulator.
#[derive(Debug)]
struct Refusing {
    inner: SimTransport,
    failures: AtomicU32,
}

#[async_trait]
impl Transport for Refusing {
    async fn send(
        &self,
        request: http::Request<Bytes>,
        timeout: Duration,
    ) -> Result<http::Response<Bytes>, TransportError> {
        if self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(TransportError::Connect {
                message: "connection refused".into(),
            });
        }
        self.inner.send(request, timeout).await
    }
}

#[tokio::test(start_paused = true)]
async fn refused_connections_are_retried_because_nothing_was_sent() {
    let (handler, sim) = plain(FaultPlan::new());
    let store = store(&sim);
    let client = client(&sim)
        .transport(Arc::new(Refusing {
            inner: sim.transport(),
            failures: AtomicU32::new(2),
        }))
        .dedupe(store.clone())
        .build()
        .unwrap();
    let accepted = client
        .send_mail(one_mail("a@example.com"))
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.attempts, 3);
    assert_eq!(handler.messages().len(), 1);
    // A call that never reached SendGrid leaves the key free for the next attempt.
    let never = SendGridClient::builder("SG.test")
        .base_url("http://sendgrid.sim")
        .transport(Arc::new(Refusing {
            inner: sim.transport(),
            failures: AtomicU32::new(100),
        }))
        .clock(sim.clock())
        .dedupe(store.clone())
        .build()
        .unwrap();
    let key = IdempotencyKey::parse("job-88").unwrap();
    let error = never
        .send_mail(one_mail("b@example.com"))
        .idempotency_key(key.clone())
        .send()
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::Call(CallError::Connect { .. })),
        "{error:?}"
    );
    let retried = client
        .send_mail(one_mail("b@example.com"))
        .idempotency_key(key)
        .send()
        .await
        .unwrap();
    assert!(!retried.deduplicated);
    assert_eq!(handler.messages().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_campaign_resumes_at_the_batch_it_stopped_at_without_resending_earlier_ones() {
    let (handler, sim) = plain(FaultPlan::new());
    let client = client(&sim).policy(patient()).build().unwrap();
    let campaign = client.campaign("winter", template(), recipients(3_000));
    assert!(
        !format!("{campaign:?}").contains("reader"),
        "no addresses in Debug"
    );
    let report = campaign.start_at(2).run().await;
    assert_eq!(report.accepted_batches(), vec![2]);
    assert!(!report.is_complete());
    assert_eq!(handler.recipients(), 1_000);
    assert_eq!(sim.ledger().requests(), 1);
}
