//! Streamed chat completions against the simulated OpenAI, in virtual time: chunks arrive as
//! the model writes them, retries happen only before the first byte, the usage chunk settles
//! the token reservation.

use std::sync::Mutex;

use async_trait::async_trait;
use futures_util::StreamExt;
use ratewise_core::breaker::BreakerState;
use ratewise_core::limit::{BudgetName, Cost, Limiter, Permit, Throttled};
use ratewise_testkit::{Fault, FaultPlan, SimUpstream};

use super::tests::{LATENCY, client, sim};
use super::*;
use crate::{ChatMessage, ChatStream, ClientBuilder, CreateChatCompletion, Error};

const RPM: u64 = 3_000;
const TPM: u64 = 150_000;
const INTERVAL: Duration = Duration::from_millis(100);
/// The reply's events: role, 8 words, finish, usage (`[DONE]` ends it).
const CHUNKS: usize = 11;
const REPLY: &str = "This is a simulated reply from the model.";

fn request() -> CreateChatCompletion {
    CreateChatCompletion::new("gpt-4o-mini", vec![ChatMessage::user("Say hi")])
        .max_completion_tokens(4_000)
}

/// Every item of `stream` with the virtual time it arrived, since `start`.
async fn drain(
    stream: &mut ChatStream,
    sim: &SimUpstream,
    start: Instant,
) -> Vec<(Duration, Result<crate::ChatCompletionChunk, Error>)> {
    let mut items = Vec::new();
    while let Some(item) = stream.next().await {
        items.push((sim.clock().now() - start, item));
    }
    items
}

fn text(items: &[(Duration, Result<crate::ChatCompletionChunk, Error>)]) -> String {
    items
        .iter()
        .filter_map(|(_, c)| c.as_ref().ok())
        .flat_map(|c| c.choices.iter())
        .filter_map(|c| c.delta.content.as_deref())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn the_first_chunk_arrives_before_the_model_has_written_the_last() {
    let openai = OpenAiHandler::new(RPM, TPM).stream_interval(INTERVAL);
    let sim = sim(&openai, FaultPlan::new());
    let client = client(&sim).build().unwrap();
    let start = sim.clock().now();
    let mut stream = client.chat().create_stream(request()).await.unwrap();
    // The call returns with the head, before any chunk has been read.
    assert_eq!(sim.clock().now() - start, LATENCY);
    assert!(stream.request_id().is_some());
    let items = drain(&mut stream, &sim, start).await;
    assert_eq!(items.len(), CHUNKS);
    assert_eq!(text(&items), REPLY);
    // Each chunk is handed over when its event leaves the server, one interval apart: the
    // first at the head's latency, the last ten intervals later (a buffered body would hand
    // them all over at the end).
    let times: Vec<Duration> = items.iter().map(|(at, _)| *at).collect();
    let expected: Vec<Duration> = (0..CHUNKS as u32).map(|i| LATENCY + INTERVAL * i).collect();
    assert_eq!(times, expected);
    assert_eq!(
        stream.usage().map(|u| u.total_tokens),
        Some(openai.stats().tokens_used)
    );
}

#[tokio::test(start_paused = true)]
async fn a_429_and_a_503_before_the_first_byte_are_retried_after_their_hints() {
    let openai = OpenAiHandler::new(RPM, TPM)
        .retry_after_headers(true)
        .stream_interval(INTERVAL);
    let faults = FaultPlan::new()
        .request(0, Fault::throttle(Duration::from_millis(1500)))
        .request(1, Fault::unavailable());
    let sim = sim(&openai, faults);
    let client = client(&sim).build().unwrap();
    let start = sim.clock().now();
    let mut stream = client.chat().create_stream(request()).await.unwrap();
    let head_at = sim.clock().now() - start;
    assert!(
        head_at >= LATENCY * 3 + Duration::from_millis(1500),
        "{head_at:?}"
    );
    let items = drain(&mut stream, &sim, start).await;
    assert_eq!(text(&items), REPLY);
    assert!(items.iter().all(|(_, item)| item.is_ok()));
    assert_eq!(sim.ledger().requests(), 3);
    let stats = client.upstream().stats();
    assert_eq!((stats.retries, stats.succeeded_after_retry), (2, 1));
}

#[tokio::test(start_paused = true)]
async fn a_connection_broken_mid_stream_is_an_item_error_and_never_retried() {
    let openai = OpenAiHandler::new(RPM, TPM).stream_interval(INTERVAL);
    let sim = sim(
        &openai,
        FaultPlan::new().request(0, Fault::reset_mid_body(3)),
    );
    let client = client(&sim).build().unwrap();
    let start = sim.clock().now();
    let mut stream = client.chat().create_stream(request()).await.unwrap();
    let items = drain(&mut stream, &sim, start).await;
    // Three chunks (the role, "This", " is"), then the break, then the end.
    assert_eq!(items.len(), 4, "{items:?}");
    assert_eq!(text(&items), "This is");
    let (at, Err(Error::Interrupted { .. })) = &items[3] else {
        panic!("{:?}", items[3]);
    };
    assert_eq!(*at, LATENCY + INTERVAL * 3);
    assert!(stream.next().await.is_none());
    // One request on the wire: no retry, though the policy allows four attempts.
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(sim.ledger().requests(), 1);
    let stats = client.upstream().stats();
    assert_eq!(
        (stats.requests, stats.retries, stats.streams_broken),
        (1, 0, 1)
    );
    assert_eq!(stats.breaker, BreakerState::Closed);
    assert_eq!(stream.usage(), None);
}

/// A limiter that admits everything and records what the pipeline does with its charges.
#[derive(Debug, Default)]
struct Recording {
    /// (reserved tokens, actual tokens) of every reconcile.
    reconciled: Mutex<Vec<(u64, u64)>>,
    released: Arc<AtomicU64>,
}

impl Recording {
    fn reconciled(&self) -> Vec<(u64, u64)> {
        self.reconciled
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn released(&self) -> u64 {
        self.released.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl Limiter for Recording {
    fn try_acquire(&self, _cost: &Cost) -> Result<Permit, Throttled> {
        let released = Arc::clone(&self.released);
        Ok(Permit::on_release(move || {
            released.fetch_add(1, Ordering::SeqCst);
        }))
    }

    async fn acquire(&self, cost: &Cost, _max_wait: Duration) -> Result<Permit, Throttled> {
        self.try_acquire(cost)
    }

    fn reconcile(&self, reserved: &Cost, actual: &Cost) {
        let tokens = |c: &Cost| c.amount(&BudgetName::TOKENS);
        self.reconciled
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((tokens(reserved), tokens(actual)));
    }
}

/// A streaming OpenAI, and a client to it whose limiters include a [`Recording`].
fn recorded() -> (OpenAiHandler, crate::OpenAiClient, Arc<Recording>) {
    let openai = OpenAiHandler::new(RPM, TPM).stream_interval(INTERVAL);
    let sim = sim(&openai, FaultPlan::new());
    let recording = Arc::new(Recording::default());
    let client = client(&sim)
        .limiter(Arc::clone(&recording) as Arc<dyn Limiter>)
        .build()
        .unwrap();
    (openai, client, recording)
}

#[tokio::test(start_paused = true)]
async fn the_usage_chunk_settles_the_reservation_and_the_end_releases_the_permit() {
    let (openai, client, recording) = recorded();
    let mut stream = client.chat().create_stream(request()).await.unwrap();
    // In flight: the permit is held and the estimate charged until the usage chunk.
    for _ in 0..CHUNKS - 1 {
        stream.next().await.unwrap().unwrap();
    }
    assert_eq!(recording.reconciled(), Vec::new());
    assert_eq!(recording.released(), 0);
    let last = stream.next().await.unwrap().unwrap();
    let usage = last.usage.unwrap();
    assert_eq!(stream.usage(), Some(usage));
    assert_eq!(usage.total_tokens, openai.stats().tokens_used);
    // Reserved: the 4,000 completion tokens asked for (what the server charged too).
    assert_eq!(openai.stats().tokens_admitted, 4_000);
    assert_eq!(recording.reconciled(), vec![(4_000, usage.total_tokens)]);
    // [DONE] ends the stream and the request.
    assert!(stream.next().await.is_none());
    assert_eq!(recording.released(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_stream_dropped_before_its_usage_keeps_the_estimate_and_frees_the_permit() {
    let (_openai, client, recording) = recorded();
    let mut stream = client.chat().create_stream(request()).await.unwrap();
    stream.next().await.unwrap().unwrap();
    drop(stream);
    assert_eq!(recording.released(), 1);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        recording.reconciled(),
        Vec::new(),
        "the estimate stays charged"
    );
}
