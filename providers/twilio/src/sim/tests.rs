//! The client end to end over the simulator, in virtual time.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::StatusCode;
use ratewise_core::dedupe::MemoryDedupe;
use ratewise_core::error::Retryable;
use ratewise_core::limit::{Limiter, Rate};
use ratewise_core::upstream::CallPolicy;
use ratewise_testkit::{Fault, FaultPlan, SimUpstream};

use super::*;
use crate::{
    ClientBuilder, CreateCall, CreateMessage, Error, IdempotencyKey, Instructions, ListMessages,
    SenderType, TwilioClient, TwilioClientBuilder, is_queue_full,
};

const LONG_CODE: &str = "+14155550100";
const TOLL_FREE: &str = "+18005550100";
const SHORT_CODE: &str = "24273";

fn sim(handler: Arc<TwilioHandler>, faults: FaultPlan, seed: u64) -> SimUpstream {
    SimUpstream::builder()
        .dialect(TwilioDialect::new())
        .handler(handler)
        .limit(account_concurrency(100))
        .faults(faults)
        .latency(Duration::from_millis(100))
        .seed(seed)
        .build()
}

fn client(sim: &SimUpstream) -> TwilioClientBuilder {
    TwilioClient::builder("AC00000000000000000000000000000001", "token")
        .base_url("http://twilio.sim")
        .transport(Arc::new(sim.transport()))
        .clock(sim.clock())
        .seed(11)
}

/// Four body shapes: GSM-7 1 and 2 segments, UCS-2 (emoji) 1 and 2 segments; unique per `i`.
fn body(sender: &str, i: usize) -> String {
    match i % 4 {
        0 => format!("Order {i} from {sender} shipped"),
        1 => format!("Order {i} from {sender}: {}", "details ".repeat(22)),
        2 => format!("Order {i} shipped 🚚"),
        _ => format!("Order {i} 🚚 {}", "ship ".repeat(14)),
    }
}

fn seconds(from: SystemTime, to: SystemTime) -> f64 {
    to.duration_since(from).unwrap_or_default().as_secs_f64()
}

#[tokio::test(start_paused = true)]
async fn a_thousand_messages_from_three_senders_are_paced_per_sender_and_never_duplicated() {
    let handler = Arc::new(TwilioHandler::new());
    // 1 % of requests answered 429 / 20429, as if other processes filled the account. Each
    // throttled attempt has spent its sender's slot (the pacer cannot know in advance), so a
    // sender achieves its limit less the throttled share.
    let sim = sim(
        handler.clone(),
        FaultPlan::new().random(0.01, Fault::throttle_without_hint()),
        7,
    );
    let client = client(&sim)
        .policy(
            CallPolicy::new()
                .max_attempts(10)
                .max_wait(Duration::from_secs(3600)),
        )
        .build()
        .unwrap();
    let limits = client.upstream().provider().limits().clone();

    // Earliest deadline first: each message is due when its sender could have sent every
    // segment before it, so the 200 workers keep every sender busy at once.
    let plan = [(LONG_CODE, 120), (TOLL_FREE, 280), (SHORT_CODE, 600)];
    let mut due = Vec::new();
    for (from, count) in plan {
        let rate = limits.rate_of(from).amount() as f64;
        let mut segments = 0u32;
        for i in 0..count {
            let message = CreateMessage::new(format!("+1415555{i:04}"), from).body(body(from, i));
            due.push((f64::from(segments) / rate, message.clone()));
            segments += message.segments();
        }
    }
    due.sort_by(|a, b| a.0.total_cmp(&b.0));
    let queue: Arc<Mutex<VecDeque<CreateMessage>>> =
        Arc::new(Mutex::new(due.into_iter().map(|(_, m)| m).collect()));
    let errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let workers: Vec<_> = (0..200)
        .map(|_| {
            let (client, queue, errors) = (client.clone(), queue.clone(), errors.clone());
            tokio::spawn(async move {
                // The closure takes the guard: the lock is released before the send.
                while let Some(message) = queue.lock().ok().and_then(|mut q| q.pop_front()) {
                    if let Err(error) = client.messages().create(message).send().await {
                        errors.lock().unwrap().push(error.to_string());
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }

    let errors = errors.lock().unwrap();
    assert!(
        errors.is_empty(),
        "{} errors, first: {:?}",
        errors.len(),
        errors.first()
    );
    let ledger = sim.ledger();
    assert!(
        ledger.throttled() >= 5,
        "20429s happened: {}",
        ledger.throttled()
    );
    assert_eq!(ledger.duplicates(), 0);
    let sent = handler.sent();
    assert_eq!(sent.len(), 1000);
    let unique: HashSet<_> = sent.iter().map(|m| (&m.from, &m.to, &m.body)).collect();
    assert_eq!(unique.len(), 1000, "no message sent twice");
    let in_flight = client.concurrent_requests().unwrap();
    assert!((1..=100).contains(&in_flight), "{in_flight}");

    for (from, count) in plan {
        let mine: Vec<&SentMessage> = sent.iter().filter(|m| m.from == from).collect();
        assert_eq!(mine.len(), count);
        let first = mine.iter().map(|m| m.accepted_at).min().unwrap();
        let last = mine.iter().map(|m| m.accepted_at).max().unwrap();
        let segments: u64 = mine.iter().map(|m| u64::from(m.segments)).sum();
        // The sustained rate: what the bucket admitted beyond its initial burst, over the run.
        let burst = limits.burst_of(from);
        let rate = (segments - burst) as f64 / seconds(first, last);
        let limit = limits.rate_of(from).amount() as f64;
        eprintln!("{from}: {count} messages, {segments} segments, {rate:.3}/s (limit {limit})");
        assert!(
            (rate / limit - 1.0).abs() <= 0.05,
            "{from}: {rate:.3} segments/s against a limit of {limit}"
        );
        // Pacing kept the sender's queue at about its burst: never a growing backlog.
        let peak = mine.iter().map(|m| m.backlog).max().unwrap();
        let bound = Duration::from_secs_f64((burst + 3) as f64 / limit + 0.5);
        assert!(peak <= bound, "{from}: peak backlog {peak:?} > {bound:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_429_is_retried_after_its_retry_after_and_sends_once() {
    let handler = Arc::new(TwilioHandler::new());
    let sim = sim(
        handler.clone(),
        FaultPlan::new().request(0, Fault::throttle(Duration::from_secs(3))),
        1,
    );
    let client = client(&sim).build().unwrap();
    let meta = client
        .messages()
        .create(CreateMessage::new("+14155552671", SHORT_CODE).body("hi"))
        .send_with_meta()
        .await
        .unwrap();
    assert_eq!(meta.attempts, 2);
    assert!(
        sim.elapsed() >= Duration::from_secs(3),
        "{:?}",
        sim.elapsed()
    );
    assert_eq!(handler.sent().len(), 1);
    assert!(meta.request_id.unwrap().starts_with("RQ"));
}

#[tokio::test(start_paused = true)]
async fn a_5xx_on_a_create_is_ambiguous_and_not_retried_but_a_fetch_is_retried() {
    let handler = Arc::new(TwilioHandler::new());
    let sim = sim(
        handler.clone(),
        FaultPlan::new()
            .request(0, Fault::server_error(StatusCode::INTERNAL_SERVER_ERROR))
            .request(2, Fault::server_error(StatusCode::SERVICE_UNAVAILABLE)),
        2,
    );
    let client = client(&sim).build().unwrap();
    let error = client
        .messages()
        .create(CreateMessage::new("+14155552671", SHORT_CODE).body("hi"))
        .send()
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Ambiguous { .. }), "{error}");
    assert!(error.to_string().contains("duplicate SMS"), "{error}");
    assert!(!error.is_retryable());
    assert_eq!(sim.ledger().requests(), 1, "not retried");
    let sent = client
        .messages()
        .create(CreateMessage::new("+14155552671", SHORT_CODE).body("hi again"))
        .send()
        .await
        .unwrap();
    let fetched = client
        .messages()
        .fetch(&sent.sid)
        .send_with_meta()
        .await
        .unwrap();
    assert_eq!(fetched.attempts, 2, "the 503 on the GET was retried");
    assert_eq!(fetched.value.body.as_deref(), Some("hi again"));
}

#[tokio::test(start_paused = true)]
async fn a_full_sender_queue_answers_21611_which_parks_the_message_and_pauses_the_sender() {
    let handler = Arc::new(TwilioHandler::new().queue_cap(Duration::from_secs(5)));
    let sim = sim(handler.clone(), FaultPlan::new(), 3);
    // The client believes the long code is fast, so Twilio's queue (1/s) fills up.
    let client = client(&sim)
        .limits(crate::TwilioLimits::new().sender_rate(LONG_CODE, Rate::per_second(1000)))
        .build()
        .unwrap();
    let mut accepted = 0;
    let mut refused = None;
    for i in 0..8 {
        let sms = CreateMessage::new("+14155552671", LONG_CODE).body(format!("n{i}"));
        match client.messages().create(sms).send().await {
            Ok(_) => accepted += 1,
            Err(error) => {
                refused = Some(error);
                break;
            }
        }
    }
    let error = refused.expect("the queue filled up");
    assert!((4..=5).contains(&accepted), "{accepted}");
    assert!(is_queue_full(&error), "{error}");
    assert!(error.is_retryable());
    assert_eq!(error.retry_after(), Some(Duration::from_secs(60)));
    assert_eq!(error.status(), Some(StatusCode::BAD_REQUEST));
    assert_eq!(handler.sent().len(), accepted);
    // The sender's budget is paused locally: the next attempt waits instead of hammering.
    let cost = client
        .upstream()
        .provider()
        .message_cost(Some(LONG_CODE), 1);
    assert!(client.upstream().limiter().try_acquire(&cost).is_err());
    assert_eq!(
        sim.ledger().requests(),
        accepted as u64 + 1,
        "21611 is not retried"
    );
}

#[tokio::test(start_paused = true)]
async fn a_redelivered_job_with_the_same_key_never_sends_twice() {
    let handler = Arc::new(TwilioHandler::new());
    // Request 2 (the third create; request 1 is the dedupe fetch) commits, then the connection
    // breaks: the client cannot know it was sent.
    let sim = sim(
        handler.clone(),
        FaultPlan::new().request(2, Fault::ResetAfterCommit),
        4,
    );
    let store = Arc::new(MemoryDedupe::with_clock(1000, sim.clock()));
    let client = client(&sim).dedupe(store).build().unwrap();
    let key = IdempotencyKey::parse("order-1-shipped").unwrap();
    let sms = || CreateMessage::new("+14155552671", SHORT_CODE).body("Order 1 shipped");

    let first = client
        .messages()
        .create(sms())
        .idempotency_key(key.clone())
        .send_with_meta()
        .await
        .unwrap();
    assert!(!first.deduplicated);
    // Redelivered: nothing is sent, the recorded message is returned.
    let again = client
        .messages()
        .create(sms())
        .idempotency_key(key.clone())
        .send_with_meta()
        .await
        .unwrap();
    assert!(again.deduplicated);
    assert_eq!(
        sim.ledger().requests(),
        2,
        "one create, one fetch of the recorded SID"
    );
    assert_eq!(again.value.sid, first.value.sid);
    assert_eq!(handler.sent().len(), 1);

    // An ambiguous send (committed, then reset) stays claimed: the redelivery refuses.
    let other = IdempotencyKey::parse("order-2-shipped").unwrap();
    let sms2 = || CreateMessage::new("+14155552671", SHORT_CODE).body("Order 2 shipped");
    let error = client
        .messages()
        .create(sms2())
        .idempotency_key(other.clone())
        .send()
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Ambiguous { .. }), "{error}");
    assert_eq!(
        error.idempotency_key(),
        Some(&other),
        "the error names its call"
    );
    let error = client
        .messages()
        .create(sms2())
        .idempotency_key(other.clone())
        .send()
        .await
        .unwrap_err();
    assert!(error.to_string().contains("order-2-shipped"), "{error}");
    assert_eq!(error.idempotency_key(), Some(&other));
    assert_eq!(handler.sent().len(), 2, "sent once despite two deliveries");
    assert_eq!(sim.ledger().duplicates(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_refused_create_releases_its_key_so_a_redelivery_sends() {
    let handler = Arc::new(TwilioHandler::new());
    let sim = sim(handler.clone(), FaultPlan::new(), 5);
    let store = Arc::new(MemoryDedupe::with_clock(1000, sim.clock()));
    let client = client(&sim).dedupe(store).build().unwrap();
    let key = IdempotencyKey::parse("job-9").unwrap();
    // No body: Twilio answers 400 21602, nothing was sent.
    let error = client
        .messages()
        .create(CreateMessage::new("+14155552671", SHORT_CODE))
        .idempotency_key(key.clone())
        .send()
        .await
        .unwrap_err();
    assert_eq!(error.api_error().and_then(|e| e.code), Some(21602));
    let sent = client
        .messages()
        .create(CreateMessage::new("+14155552671", SHORT_CODE).body("fixed"))
        .idempotency_key(key)
        .send_with_meta()
        .await
        .unwrap();
    assert!(!sent.deduplicated);
    assert_eq!(handler.sent().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn messages_list_page_by_page_and_calls_round_trip() {
    let handler = Arc::new(TwilioHandler::new());
    let sim = sim(handler.clone(), FaultPlan::new(), 6);
    let client = client(&sim).build().unwrap();
    for i in 0..3 {
        let sms = CreateMessage::new("+14155552671", TOLL_FREE).body(format!("m{i}"));
        client.messages().create(sms).send().await.unwrap();
    }
    let messages = client.messages();
    let page = messages
        .list(ListMessages::new().from(TOLL_FREE).page_size(2))
        .send()
        .await
        .unwrap();
    assert_eq!(page.messages.len(), 2);
    assert_eq!(page.messages[0].body.as_deref(), Some("m2"), "newest first");
    let next = messages.next_page(&page).unwrap().send().await.unwrap();
    assert_eq!(next.messages.len(), 1);
    assert!(messages.next_page(&next).is_none());
    assert_eq!(SenderType::infer(TOLL_FREE), SenderType::TollFree);

    let call = client
        .calls()
        .create(CreateCall::new(
            "+14155552671",
            LONG_CODE,
            Instructions::Url("https://example.com/twiml".into()),
        ))
        .send()
        .await
        .unwrap();
    let fetched = client.calls().fetch(&call.sid).send().await.unwrap();
    assert_eq!(fetched.sid, call.sid);
    let missing = client.calls().fetch("CA404").send().await.unwrap_err();
    assert_eq!(missing.status(), Some(StatusCode::NOT_FOUND));
    assert_eq!(missing.api_error().and_then(|e| e.code), Some(20404));
}

#[tokio::test(start_paused = true)]
async fn two_hundred_concurrent_sends_stay_within_the_account_concurrency_without_a_429() {
    let handler = Arc::new(TwilioHandler::new());
    let sim = SimUpstream::builder()
        .dialect(TwilioDialect::new())
        .handler(handler.clone())
        .limit(account_concurrency(100))
        .latency(Duration::from_secs(1))
        .build();
    let client = client(&sim).build().unwrap();
    // 200 short codes: no sender waits, only the account's 100 slots.
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move {
                let sms = CreateMessage::new("+14155552671", format!("{}", 10_000 + i)).body("hi");
                client.messages().create(sms).send().await
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(sim.ledger().throttled(), 0, "the client held 100 in flight");
    assert_eq!(handler.sent().len(), 200);
    assert_eq!(sim.elapsed(), Duration::from_secs(2), "two waves of 100");
    assert_eq!(client.concurrent_requests(), Some(100));
}
