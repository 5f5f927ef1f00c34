//! The client against the simulated OpenAI, in virtual time.

use http::StatusCode;
use ratewise_core::error::Retryable;
use ratewise_core::transport::Transport;
use ratewise_core::upstream::CallPolicy;
use ratewise_core::verdict::Reason;
use ratewise_testkit::{Fault, FaultPlan, SimUpstream};

use super::*;
use crate::ClientBuilder;
use crate::{
    ChatMessage, CreateChatCompletion, CreateEmbedding, Error, OpenAiClient, QuotaExhausted,
};

const MODEL: &str = "text-embedding-3-small";
/// The latency of every simulated response.
pub(super) const LATENCY: Duration = Duration::from_millis(50);

pub(super) fn sim(handler: &OpenAiHandler, faults: FaultPlan) -> SimUpstream {
    SimUpstream::builder()
        .dialect(OpenAiDialect::new())
        .handler(handler.clone())
        .faults(faults)
        .latency(LATENCY)
        .build()
}

pub(super) fn client(sim: &SimUpstream) -> crate::OpenAiClientBuilder {
    OpenAiClient::builder("sk-sim")
        .base_url("http://openai.sim/v1")
        .transport(Arc::new(sim.transport()))
        .clock(sim.clock())
        .seed(3)
}

/// What one batch run achieved, measured on the server.
#[derive(Debug)]
struct Run {
    succeeded: usize,
    requests: u64,
    rate_limited: u64,
    retries: u64,
    tokens: u64,
    elapsed: Duration,
    /// Tokens admitted by [`STEADY_FROM`], when the run's start-up is over.
    tokens_at_mark: u64,
}

/// When the start-up of a run (the bucket's initial minute of credit) is over.
const STEADY_FROM: Duration = Duration::from_secs(90);

impl Run {
    fn from(stats: SimStats, at_mark: SimStats, succeeded: usize, retries: u64) -> Self {
        Self {
            succeeded,
            requests: stats.requests,
            rate_limited: stats.rate_limited,
            retries,
            tokens: stats.tokens_admitted,
            elapsed: stats.last_admitted.saturating_sub(stats.first),
            tokens_at_mark: at_mark.tokens_admitted,
        }
    }

    /// Tokens per minute over the whole run (the initial full bucket included).
    fn tpm(&self) -> f64 {
        self.tokens as f64 / self.elapsed.as_secs_f64() * 60.0
    }

    /// Tokens per minute from [`STEADY_FROM`] to the end: the pace the run sustained.
    fn sustained_tpm(&self) -> f64 {
        let span = self.elapsed.saturating_sub(STEADY_FROM).as_secs_f64();
        self.tokens.saturating_sub(self.tokens_at_mark) as f64 / span * 60.0
    }

    fn report(&self, name: &str, limit: u64) -> String {
        let share = |tpm: f64| tpm / limit as f64 * 100.0;
        format!(
            "{name}: {} ok in {:.1} s; {:.0} tokens/min overall ({:.1} % of {limit} TPM), {:.0} sustained after {} s ({:.1} %); {} requests, {} 429s, {} retries",
            self.succeeded,
            self.elapsed.as_secs_f64(),
            self.tpm(),
            share(self.tpm()),
            self.sustained_tpm(),
            STEADY_FROM.as_secs(),
            share(self.sustained_tpm()),
            self.requests,
            self.rate_limited,
            self.retries,
        )
    }
}

/// The handler's stats at [`STEADY_FROM`] (sampled by a task started with the run).
fn sample_at_mark(openai: &OpenAiHandler) -> tokio::task::JoinHandle<SimStats> {
    let openai = openai.clone();
    tokio::spawn(async move {
        tokio::time::sleep(STEADY_FROM).await;
        openai.stats()
    })
}

const RPM: u64 = 3_000;
/// TPM scaled down from 1,000,000 so 5,000 requests of 4 to 400 words span several minutes.
const TPM: u64 = 150_000;
const REQUESTS: usize = 5_000;
const TASKS: usize = 64;

async fn ratewise_run(texts: Arc<Vec<String>>, tpm: u64, limits: bool) -> Run {
    let openai = OpenAiHandler::new(RPM, tpm);
    let sim = sim(&openai, FaultPlan::new());
    let mark = sample_at_mark(&openai);
    let mut builder = client(&sim).policy(
        CallPolicy::new()
            .max_attempts(8)
            .max_wait(Duration::from_secs(600)),
    );
    if limits {
        builder = builder.limits(RPM, tpm);
    }
    let client = builder.build().unwrap();
    let next = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let (client, texts, next) = (client.clone(), texts.clone(), next.clone());
            tokio::spawn(async move {
                let mut ok = 0;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                    let Some(text) = texts.get(i) else { break ok };
                    let result = client
                        .embeddings()
                        .create(CreateEmbedding::new(MODEL, text.as_str()))
                        .await;
                    match result {
                        Ok(response) => {
                            assert!(response.usage.total_tokens > 0);
                            ok += 1;
                        }
                        Err(error) => panic!("request {i} failed: {error}"),
                    }
                }
            })
        })
        .collect();
    let mut succeeded = 0;
    for task in tasks {
        succeeded += task.await.unwrap();
    }
    let stats = client.upstream().stats();
    Run::from(
        openai.stats(),
        mark.await.unwrap(),
        succeeded,
        stats.retries,
    )
}

/// The OpenAI cookbook's `api_request_parallel_processor.py`, re-implemented as the baseline:
/// request and token capacities refilled continuously at 75 % of the limits (starting full),
/// a request sent only when both cover it, every sender paused 15 s after any 429, a 429
/// retried up to 5 attempts. At most 64 requests in flight, like the ratewise run.
async fn cookbook_run(texts: Arc<Vec<String>>) -> Run {
    const SHARE: f64 = 0.75;
    const PAUSE_AFTER_429: Duration = Duration::from_secs(15);
    let openai = OpenAiHandler::new(RPM, TPM);
    let sim = sim(&openai, FaultPlan::new());
    let mark = sample_at_mark(&openai);
    let transport = Arc::new(sim.transport());
    let clock = sim.clock();
    let slots = Arc::new(tokio::sync::Semaphore::new(TASKS));
    let max_rpm = RPM as f64 * SHARE;
    let max_tpm = TPM as f64 * SHARE;
    let (mut requests, mut tokens) = (max_rpm, max_tpm);
    let mut last_update = clock.now();
    let last_429: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
    let retries = Arc::new(AtomicU64::new(0));
    let (retry_tx, mut retry_rx) = tokio::sync::mpsc::unbounded_channel::<(usize, u32)>();
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let mut queue = (0..texts.len()).map(|i| (i, 5u32));
    let mut succeeded = 0;
    let mut next: Option<(usize, u32, f64)> = None;
    while succeeded < texts.len() {
        while done_rx.try_recv().is_ok() {
            succeeded += 1;
        }
        if next.is_none() {
            next = retry_rx
                .try_recv()
                .ok()
                .or_else(|| queue.next())
                .map(|(i, attempts)| (i, attempts, tokens::count(MODEL, &texts[i]) as f64));
        }
        let now = clock.now();
        let elapsed = now.saturating_duration_since(last_update).as_secs_f64();
        requests = (requests + max_rpm * elapsed / 60.0).min(max_rpm);
        tokens = (tokens + max_tpm * elapsed / 60.0).min(max_tpm);
        last_update = now;
        if let Some((i, attempts_left, cost)) = next
            && requests >= 1.0
            && tokens >= cost
        {
            {
                requests -= 1.0;
                tokens -= cost;
                next = None;
                let permit = slots.clone().acquire_owned().await.unwrap();
                let (transport, texts, last_429) =
                    (transport.clone(), texts.clone(), last_429.clone());
                let (retry_tx, done_tx, retries, clock) = (
                    retry_tx.clone(),
                    done_tx.clone(),
                    retries.clone(),
                    clock.clone(),
                );
                tokio::spawn(async move {
                    let body = serde_json::json!({"model": MODEL, "input": texts[i]}).to_string();
                    let request = http::Request::post("http://openai.sim/v1/embeddings")
                        .header("authorization", "Bearer sk-sim")
                        .header("content-type", "application/json")
                        .body(Bytes::from(body))
                        .unwrap();
                    let response = transport
                        .send(request, Duration::from_secs(60))
                        .await
                        .unwrap();
                    drop(permit);
                    if response.status() == StatusCode::TOO_MANY_REQUESTS {
                        *last_429.lock().unwrap() = Some(clock.now());
                        assert!(attempts_left > 1, "request {i} ran out of attempts");
                        retries.fetch_add(1, Ordering::Relaxed);
                        retry_tx.send((i, attempts_left - 1)).unwrap();
                    } else {
                        assert_eq!(response.status(), StatusCode::OK);
                        done_tx.send(()).unwrap();
                    }
                });
            }
        }
        // The cookbook polls every 1 ms; sleeping until the capacity it polls for is back is
        // the same schedule with fewer wake-ups.
        let refill = match next {
            Some((_, _, cost)) => {
                let short = ((1.0 - requests) / max_rpm)
                    .max((cost - tokens) / max_tpm)
                    .max(0.0);
                Duration::from_secs_f64(short * 60.0)
            }
            None => Duration::ZERO,
        };
        let paused = last_429
            .lock()
            .unwrap()
            .map(|t| (t + PAUSE_AFTER_429).saturating_duration_since(clock.now()))
            .unwrap_or_default();
        tokio::time::sleep(refill.max(paused).max(Duration::from_millis(1))).await;
    }
    Run::from(
        openai.stats(),
        mark.await.unwrap(),
        succeeded,
        retries.load(Ordering::Relaxed),
    )
}

#[tokio::test(start_paused = true)]
async fn five_thousand_embeddings_run_at_the_token_limit_beside_the_cookbook_pacing() {
    let texts = Arc::new(corpus(REQUESTS, 42));
    let ratewise = ratewise_run(texts.clone(), TPM, true).await;
    let cookbook = cookbook_run(texts).await;
    println!("{}", ratewise.report("ratewise (limits given)", TPM));
    println!("{}", cookbook.report("cookbook parallel processor", TPM));

    assert_eq!(ratewise.succeeded, REQUESTS);
    assert!(
        ratewise.tpm() >= 0.95 * TPM as f64,
        "{}",
        ratewise.report("ratewise", TPM)
    );
    assert!(
        ratewise.sustained_tpm() >= 0.95 * TPM as f64,
        "{}",
        ratewise.report("ratewise", TPM)
    );
    assert!(
        ratewise.rate_limited as f64 <= 0.01 * REQUESTS as f64,
        "{}",
        ratewise.report("ratewise", TPM)
    );
    assert_eq!(cookbook.succeeded, REQUESTS);
    assert!(cookbook.sustained_tpm() < ratewise.sustained_tpm());
    assert!(ratewise.elapsed < cookbook.elapsed);
}

#[tokio::test(start_paused = true)]
async fn a_client_without_limits_learns_them_from_the_headers_and_runs_at_the_limit() {
    const TPM: u64 = 50_000;
    let texts = Arc::new(corpus(1_500, 7));
    let learning = ratewise_run(texts, TPM, false).await;
    println!(
        "{}",
        learning.report("ratewise (learning from headers)", TPM)
    );
    assert_eq!(learning.succeeded, 1_500);
    assert!(
        learning.sustained_tpm() >= 0.95 * TPM as f64,
        "{}",
        learning.report("learning", TPM)
    );
    assert!(
        learning.rate_limited <= 15,
        "{}",
        learning.report("learning", TPM)
    );
}

#[tokio::test(start_paused = true)]
async fn insufficient_quota_ends_the_call_at_once_with_the_typed_error() {
    let openai = OpenAiHandler::new(RPM, TPM).credit(0);
    let sim = sim(&openai, FaultPlan::new());
    let client = client(&sim).build().unwrap();
    let error = client
        .embeddings()
        .create(CreateEmbedding::new(MODEL, "hello"))
        .await
        .unwrap_err();
    let body = error.quota_exhausted().expect("a typed quota error");
    assert!(body.is_insufficient_quota());
    assert!(body.request_id.as_deref().unwrap().starts_with("req_sim_"));
    assert!(!error.is_retryable());
    let Error::Api { status, reason, .. } = &error else {
        panic!("{error:?}");
    };
    assert_eq!(
        (*status, *reason),
        (StatusCode::TOO_MANY_REQUESTS, Reason::QuotaExhausted)
    );
    assert_eq!(sim.ledger().requests(), 1, "one request on the wire");
    assert_eq!(openai.stats().quota_refused, 1);
    assert_eq!(client.upstream().stats().retries, 0);
}

#[tokio::test(start_paused = true)]
async fn credit_runs_out_mid_batch_and_every_later_call_fails_fast() {
    let openai = OpenAiHandler::new(RPM, TPM).credit(10);
    let sim = sim(&openai, FaultPlan::new());
    let client = client(&sim).build().unwrap();
    let embeddings = client.embeddings();
    let embed = |text: &'static str| embeddings.create(CreateEmbedding::new(MODEL, text));
    embed("the first call of this batch spends every token of the credit that is left")
        .await
        .unwrap();
    for _ in 0..3 {
        assert!(
            embed("hello")
                .await
                .unwrap_err()
                .quota_exhausted()
                .is_some()
        );
    }
    assert_eq!(sim.ledger().requests(), 4);
}

#[tokio::test(start_paused = true)]
async fn a_rate_limited_call_waits_the_messages_hint_and_succeeds() {
    // A client that does not know the limits bursts past a 2-request bucket.
    let openai = OpenAiHandler::new(2, TPM);
    let sim = sim(&openai, FaultPlan::new());
    let client = client(&sim)
        .policy(CallPolicy::new().max_wait(Duration::from_secs(60)))
        .build()
        .unwrap();
    let started = sim.clock().now();
    for _ in 0..3 {
        client
            .embeddings()
            .create(CreateEmbedding::new(MODEL, "hello"))
            .await
            .unwrap();
    }
    let stats = openai.stats();
    assert_eq!(stats.admitted, 3);
    // The third call either waited for the pacer (headers said 0 left) or got one 429 and
    // waited its hint: both at least the 30 s a request takes to come back at 2 per minute.
    assert!(stats.rate_limited <= 1, "{stats:?}");
    assert!(sim.clock().now() - started >= Duration::from_secs(29));
}

#[tokio::test(start_paused = true)]
async fn injected_429s_and_5xx_are_retried_and_the_retry_after_headers_obeyed() {
    let openai = OpenAiHandler::new(RPM, TPM).retry_after_headers(true);
    let faults = FaultPlan::new()
        .request(0, Fault::throttle(Duration::from_millis(1500)))
        .request(1, Fault::server_error(StatusCode::INTERNAL_SERVER_ERROR));
    let sim = sim(&openai, faults);
    let client = client(&sim).build().unwrap();
    let started = sim.clock().now();
    let response = client
        .embeddings()
        .create(CreateEmbedding::new(MODEL, "hello"))
        .await
        .unwrap();
    assert_eq!(response.data.len(), 1);
    assert_eq!(sim.ledger().requests(), 3);
    assert_eq!(client.upstream().stats().retries, 2);
    assert!(sim.clock().now() - started >= Duration::from_millis(1500));
}

#[tokio::test(start_paused = true)]
async fn models_list_and_the_organization_and_project_headers_are_sent() {
    let openai = OpenAiHandler::new(RPM, TPM).model("gpt-4.1", 500, 30_000);
    let sim = SimUpstream::builder()
        .dialect(OpenAiDialect::new())
        .handler(Recording {
            inner: openai,
            seen: Mutex::default(),
        })
        .build();
    let client = client(&sim)
        .organization("org-sim")
        .project("proj_sim")
        .build()
        .unwrap();
    let models = client.models().list().await.unwrap();
    assert!(models.data.iter().any(|m| m.id == "gpt-4.1"));
    let completion = client
        .chat()
        .create(
            CreateChatCompletion::new("gpt-4.1", vec![ChatMessage::user("hi")])
                .max_completion_tokens(3),
        )
        .await
        .unwrap();
    assert_eq!(completion.text(), Some("This is a"));
    assert_eq!(
        completion.choices[0].finish_reason,
        Some(crate::FinishReason::Length)
    );
    assert!(completion.usage.unwrap().completion_tokens >= 3);
    let limits = crate::headers::RateLimitHeaders::from_headers(&sim_last_headers(&sim).await);
    assert_eq!(limits.requests.limit, Some(500));
    assert_eq!(limits.tokens.limit, Some(30_000));
}

/// The response headers of one more chat call, through the raw transport.
async fn sim_last_headers(sim: &SimUpstream) -> http::HeaderMap {
    let body =
        serde_json::json!({"model": "gpt-4.1", "messages": [{"role": "user", "content": "hi"}]});
    let request = http::Request::post("http://openai.sim/v1/chat/completions")
        .body(Bytes::from(body.to_string()))
        .unwrap();
    let response = sim
        .transport()
        .send(request, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get("x-request-id").is_some());
    response.headers().clone()
}

/// Checks the headers of every request, then answers as [`OpenAiHandler`].
#[derive(Debug)]
struct Recording {
    inner: OpenAiHandler,
    seen: Mutex<u32>,
}

impl Handler for Recording {
    fn handle(
        &self,
        request: &http::Request<Bytes>,
        ctx: &HandlerContext,
    ) -> http::Response<Bytes> {
        let headers = request.headers();
        if headers.get("authorization").is_some() {
            assert_eq!(headers["openai-organization"], "org-sim");
            assert_eq!(headers["openai-project"], "proj_sim");
            assert_eq!(headers["authorization"], "Bearer sk-sim");
            *self.seen.lock().unwrap() += 1;
        }
        self.inner.handle(request, ctx)
    }
}
