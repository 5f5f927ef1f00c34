//! OpenAI for the ratewise testkit simulator: [`OpenAiDialect`] and [`OpenAiHandler`].
//!
//! With these, a [`SimUpstream`](ratewise_testkit::SimUpstream) answers like OpenAI:
//!
//! - **Two token buckets per model**, requests and tokens, each holding one minute's limit and
//!   refilled continuously (a bucket of 1,000,000 TPM gains 16,667 tokens a second). A request
//!   is charged 1 request and the tokens OpenAI reserves on arrival ([`provider::estimate`]: the
//!   larger of `max_tokens` × `n` and the prompt, counted with this crate's [`tokens`]
//!   estimator, so the client's reservation and the server's charge agree as they do closely
//!   with tiktoken against the real API). **Failed requests count too**, as OpenAI documents: a
//!   refused request is charged anyway (a bucket goes into debt down to minus its size), so a
//!   client that hammers stays throttled.
//! - **Exact headers** on every answer of the handler: `x-ratelimit-{limit,remaining,reset}-
//!   {requests,tokens}` of the request's model, resets as Go durations (time until the bucket
//!   is full: `20ms`, `59.94s`), and `x-request-id: req_sim_<n>` on every response.
//! - **Both 429 bodies**: `rate_limit_exceeded` (type `tokens` or `requests`, with OpenAI's
//!   message "… Please try again in 644ms.") and, once the account's credit
//!   ([`OpenAiHandler::credit`]) is spent, `insufficient_quota`. No `retry-after` by default
//!   (OpenAI does not document one); [`OpenAiHandler::retry_after_headers`] adds
//!   `retry-after-ms` and `retry-after`.
//! - **Responses with `usage`**: embeddings (one small deterministic vector per input), chat
//!   completions (a short deterministic reply within `max_tokens`), streamed as server-sent
//!   events with `stream: true` (a final usage chunk when `stream_options.include_usage`), and
//!   `GET /models`. A streamed reply leaves one event at a time, each
//!   [`OpenAiHandler::stream_interval`] after the one before (a [`ChunkedBody`]), so a client
//!   reading it incrementally sees the first chunk before the model has "written" the last; a
//!   [`Fault::ResetMidBody`](ratewise_testkit::Fault::ResetMidBody) breaks it part way.
//!
//! Injected faults ([`ratewise_testkit::FaultPlan`]) answer with OpenAI's bodies through the
//! dialect: a bare 429 `rate_limit_exceeded` without rate-limit headers (as when the headers
//! are missing) and `server_error` 5xx.
//!
//! ```
//! use std::sync::Arc;
//! use ratewise_openai::sim::{OpenAiDialect, OpenAiHandler};
//! use ratewise_openai::{ClientBuilder, CreateEmbedding, OpenAiClient};
//! use ratewise_testkit::SimUpstream;
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
//! let openai = OpenAiHandler::new(3_000, 1_000_000);
//! let sim = SimUpstream::builder()
//!     .dialect(OpenAiDialect::new())
//!     .handler(openai.clone())
//!     .build();
//! let client = OpenAiClient::builder("sk-sim")
//!     .base_url("http://openai.sim/v1")
//!     .transport(Arc::new(sim.transport()))
//!     .clock(sim.clock())
//!     .build()
//!     .unwrap();
//! let response = client
//!     .embeddings()
//!     .create(CreateEmbedding::new("text-embedding-3-small", "hello world"))
//!     .await
//!     .unwrap();
//! assert_eq!(response.usage.total_tokens, 2);
//! assert_eq!(openai.stats().tokens_admitted, 2);
//! # }
//! ```

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use ratewise_core::clock::{SharedClock, TokioClock};
use ratewise_testkit::dialect::{epoch_seconds_ceil, json_response};
use ratewise_testkit::{
    ChunkedBody, Dialect, Handler, HandlerContext, IdempotencyError, ResponseContext,
};
use serde_json::{Value, json};

use crate::headers::{
    LIMIT_REQUESTS, LIMIT_TOKENS, REMAINING_REQUESTS, REMAINING_TOKENS, REQUEST_ID, RESET_REQUESTS,
    RESET_TOKENS, format_go_duration,
};
use crate::{provider, tokens};

/// How OpenAI speaks when the simulator injects a fault (see the [module docs](self)).
#[derive(Debug, Default)]
pub struct OpenAiDialect {
    requests: AtomicU64,
}

impl OpenAiDialect {
    /// The dialect.
    pub fn new() -> Self {
        Self::default()
    }
}

fn error_response(
    status: StatusCode,
    message: &str,
    kind: &str,
    code: Option<&str>,
) -> http::Response<Bytes> {
    json_response(
        status,
        &json!({"error": {"message": message, "type": kind, "param": null, "code": code}}),
    )
}

/// Adds `retry-after-ms` and `retry-after` (whole seconds, rounded up) for `wait`.
fn insert_retry_after(headers: &mut HeaderMap, wait: Duration) {
    let millis = wait.as_millis().max(1);
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    for (name, value) in [
        ("retry-after-ms", millis.to_string()),
        ("retry-after", secs.to_string()),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
}

impl Dialect for OpenAiDialect {
    fn throttle_response(&self, ctx: &ResponseContext<'_>) -> http::Response<Bytes> {
        let mut response = error_response(
            StatusCode::TOO_MANY_REQUESTS,
            "Rate limit reached for requests",
            "requests",
            Some("rate_limit_exceeded"),
        );
        if let Some(wait) = ctx.retry_after {
            insert_retry_after(response.headers_mut(), wait);
        }
        response
    }

    fn server_error_response(
        &self,
        status: StatusCode,
        _ctx: &ResponseContext<'_>,
    ) -> http::Response<Bytes> {
        let message = if status == StatusCode::SERVICE_UNAVAILABLE {
            "The engine is currently overloaded, please try again later."
        } else {
            "The server had an error while processing your request. Sorry about that!"
        };
        error_response(status, message, "server_error", None)
    }

    fn idempotency_error_response(
        &self,
        _error: IdempotencyError,
        _ctx: &ResponseContext<'_>,
    ) -> http::Response<Bytes> {
        error_response(
            StatusCode::BAD_REQUEST,
            "OpenAI has no idempotency keys",
            "invalid_request_error",
            None,
        )
    }

    fn decorate(&self, headers: &mut HeaderMap, _ctx: &ResponseContext<'_>) {
        if headers.contains_key(REQUEST_ID) {
            return;
        }
        let n = self.requests.fetch_add(1, Ordering::Relaxed);
        if let Ok(value) = HeaderValue::from_str(&format!("req_sim_{n}")) {
            headers.insert(REQUEST_ID, value);
        }
    }

    /// OpenAI has no idempotency key: none is read.
    fn idempotency_header(&self) -> Option<HeaderName> {
        None
    }
}

/// A bucket holding `size` units, refilled at `size` per minute; starts full.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    size: f64,
    level: f64,
    at: Instant,
}

impl Bucket {
    fn new(size: u64, now: Instant) -> Self {
        let size = size as f64;
        Self {
            size,
            level: size,
            at: now,
        }
    }

    fn per_sec(&self) -> f64 {
        self.size / 60.0
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.at = self.at.max(now);
        self.level = (self.level + elapsed * self.per_sec()).min(self.size);
    }

    /// Spends `amount`, into debt down to `-size` when it was not there.
    fn charge(&mut self, amount: u64) {
        self.level = (self.level - amount as f64).max(-self.size);
    }

    fn remaining(&self) -> u64 {
        self.level.max(0.0).floor() as u64
    }

    /// How long until `level` units are in the bucket.
    fn until(&self, level: f64) -> Duration {
        let missing = (level.min(self.size) - self.level).max(0.0);
        let per_sec = self.per_sec();
        if per_sec <= 0.0 {
            return Duration::MAX;
        }
        // Whole milliseconds, rounded up, as OpenAI writes its waits.
        let millis = (missing / per_sec * 1000.0).ceil();
        Duration::from_millis(millis as u64)
    }
}

/// A refused request: which budget, how long until it would fit, the buckets after its charge.
struct Refusal {
    budget: &'static str,
    wait: Duration,
    buckets: ModelBuckets,
}

/// One model's two budgets.
#[derive(Clone, Copy, Debug)]
struct ModelBuckets {
    requests: Bucket,
    tokens: Bucket,
}

/// What the simulated OpenAI did, for assertions and reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SimStats {
    /// Requests the handler answered (faults injected by the dialect not included).
    pub requests: u64,
    /// Requests admitted (2xx).
    pub admitted: u64,
    /// 429 `rate_limit_exceeded` from the buckets.
    pub rate_limited: u64,
    /// 429 `insufficient_quota`.
    pub quota_refused: u64,
    /// Tokens charged to admitted requests (what the TPM limit measures).
    pub tokens_admitted: u64,
    /// Tokens the admitted requests used (`usage.total_tokens`).
    pub tokens_used: u64,
    /// When the first request was answered, since the handler was built.
    pub first: Duration,
    /// When the last request was admitted, since the handler was built.
    pub last_admitted: Duration,
}

#[derive(Debug)]
struct State {
    models: HashMap<String, ModelBuckets>,
    stats: SimStats,
    credit_left: Option<u64>,
}

#[derive(Debug)]
struct Inner {
    rpm: u64,
    tpm: u64,
    per_model: HashMap<String, (u64, u64)>,
    retry_after_headers: bool,
    dimensions: usize,
    stream_interval: Duration,
    clock: SharedClock,
    start: Instant,
    state: Mutex<State>,
}

/// A small in-memory OpenAI: the success path and the buckets behind [`OpenAiDialect`].
///
/// Cheap to clone; clones share one account (keep one to read [`OpenAiHandler::stats`]).
/// Defaults: the limits given to [`OpenAiHandler::new`] for every model, unlimited credit, no
/// `retry-after` headers, 8-dimensional embeddings, stream events all leaving at once (no
/// interval, but each its own piece), tokio's clock (virtual under
/// `start_paused`, the same clock the simulator uses by default).
#[derive(Clone, Debug)]
pub struct OpenAiHandler {
    inner: Arc<Inner>,
}

impl OpenAiHandler {
    /// An OpenAI account allowing `rpm` requests and `tpm` tokens per minute for every model.
    pub fn new(rpm: u64, tpm: u64) -> Self {
        let clock = TokioClock::shared();
        let parts = BuilderParts {
            per_model: HashMap::new(),
            credit: None,
            retry_after_headers: false,
            dimensions: 8,
            stream_interval: Duration::ZERO,
            clock,
        };
        Self::build(rpm, tpm, parts)
    }

    fn build(rpm: u64, tpm: u64, parts: BuilderParts) -> Self {
        let start = parts.clock.now();
        Self {
            inner: Arc::new(Inner {
                rpm,
                tpm,
                per_model: parts.per_model,
                retry_after_headers: parts.retry_after_headers,
                dimensions: parts.dimensions,
                stream_interval: parts.stream_interval,
                clock: parts.clock,
                start,
                state: Mutex::new(State {
                    models: HashMap::new(),
                    stats: SimStats::default(),
                    credit_left: parts.credit,
                }),
            }),
        }
    }

    fn rebuild(self, f: impl FnOnce(&mut BuilderParts)) -> Self {
        let inner = &self.inner;
        let mut parts = BuilderParts {
            per_model: inner.per_model.clone(),
            credit: inner
                .state
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .credit_left,
            retry_after_headers: inner.retry_after_headers,
            dimensions: inner.dimensions,
            stream_interval: inner.stream_interval,
            clock: Arc::clone(&inner.clock),
        };
        f(&mut parts);
        Self::build(inner.rpm, inner.tpm, parts)
    }

    /// Other limits for `model`.
    pub fn model(self, model: impl Into<String>, rpm: u64, tpm: u64) -> Self {
        let model = model.into();
        self.rebuild(|p| {
            p.per_model.insert(model, (rpm, tpm));
        })
    }

    /// The account's credit in tokens: once the admitted requests have used that many, every
    /// request gets 429 `insufficient_quota` (default: unlimited). `credit(0)` is an account
    /// out of credit from the start.
    pub fn credit(self, tokens: u64) -> Self {
        self.rebuild(|p| p.credit = Some(tokens))
    }

    /// Whether a 429 carries `retry-after-ms` and `retry-after` (default `false`, as OpenAI
    /// documents none; the wait is always in the message).
    pub fn retry_after_headers(self, yes: bool) -> Self {
        self.rebuild(|p| p.retry_after_headers = yes)
    }

    /// Embedding vector length (default 8).
    pub fn dimensions(self, dimensions: usize) -> Self {
        self.rebuild(|p| p.dimensions = dimensions)
    }

    /// The pause between two events of a streamed reply, as the model "writes" it (default
    /// none: every event leaves at once, still each in its own piece of the body).
    pub fn stream_interval(self, interval: Duration) -> Self {
        self.rebuild(|p| p.stream_interval = interval)
    }

    /// The clock the buckets run on (default tokio's); give the simulator's if it has another.
    pub fn clock(self, clock: SharedClock) -> Self {
        self.rebuild(|p| p.clock = clock)
    }

    /// What happened so far.
    pub fn stats(&self) -> SimStats {
        self.lock().stats
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn since_start(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.inner.start)
    }

    fn limits_of(&self, model: &str) -> (u64, u64) {
        self.inner
            .per_model
            .get(model)
            .copied()
            .unwrap_or((self.inner.rpm, self.inner.tpm))
    }

    /// Charges `model`'s buckets for one request of `charge` tokens: `Ok` with the buckets
    /// after admission, or `Err` with the budget that refused and the buckets after the charge
    /// a failed request still pays.
    fn admit(
        &self,
        state: &mut State,
        model: &str,
        charge: u64,
        now: Instant,
    ) -> Result<ModelBuckets, Refusal> {
        let (rpm, tpm) = self.limits_of(model);
        let buckets = state
            .models
            .entry(model.to_owned())
            .or_insert(ModelBuckets {
                requests: Bucket::new(rpm, now),
                tokens: Bucket::new(tpm, now),
            });
        buckets.requests.refill(now);
        buckets.tokens.refill(now);
        // The wait until the request would fit, measured before a refused request is charged.
        let refused = if buckets.requests.level < 1.0 {
            Some(("requests", buckets.requests.until(1.0)))
        } else if buckets.tokens.level < charge as f64 {
            Some(("tokens", buckets.tokens.until(charge as f64)))
        } else {
            None
        };
        buckets.requests.charge(1);
        buckets.tokens.charge(charge);
        match refused {
            Some((budget, wait)) => Err(Refusal {
                budget,
                wait,
                buckets: *buckets,
            }),
            None => Ok(*buckets),
        }
    }

    fn answer(
        &self,
        request: &http::Request<Bytes>,
        ctx: &HandlerContext,
    ) -> http::Response<Bytes> {
        let path = request.uri().path();
        let now = self.inner.clock.now();
        if request.method() == Method::GET && path.ends_with("/models") {
            return self.models(ctx);
        }
        let kind = if path.ends_with("/embeddings") {
            Kind::Embeddings
        } else if path.ends_with("/chat/completions") {
            Kind::Chat
        } else {
            return error_response(
                StatusCode::NOT_FOUND,
                &format!("Invalid URL ({} {path})", request.method()),
                "invalid_request_error",
                None,
            );
        };
        let body: Value = match serde_json::from_slice(request.body()) {
            Ok(body @ Value::Object(_)) => body,
            _ => {
                return error_response(
                    StatusCode::BAD_REQUEST,
                    "We could not parse the JSON body of your request.",
                    "invalid_request_error",
                    None,
                );
            }
        };
        let Some(model) = body.get("model").and_then(Value::as_str).map(str::to_owned) else {
            return error_response(
                StatusCode::BAD_REQUEST,
                "you must provide a model parameter",
                "invalid_request_error",
                None,
            );
        };
        let charge = provider::estimate(&body);
        let mut state = self.lock();
        if state.stats.requests == 0 {
            state.stats.first = self.since_start(now);
        }
        state.stats.requests = state.stats.requests.saturating_add(1);
        if state.credit_left == Some(0) {
            state.stats.quota_refused = state.stats.quota_refused.saturating_add(1);
            return error_response(
                StatusCode::TOO_MANY_REQUESTS,
                "You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.",
                "insufficient_quota",
                Some("insufficient_quota"),
            );
        }
        let (rpm, tpm) = self.limits_of(&model);
        match self.admit(&mut state, &model, charge, now) {
            Err(Refusal {
                budget,
                wait,
                buckets,
            }) => {
                state.stats.rate_limited = state.stats.rate_limited.saturating_add(1);
                drop(state);
                let (limit, bucket, unit, requested) = match budget {
                    "requests" => (rpm, buckets.requests, "requests per min (RPM)", 1),
                    _ => (tpm, buckets.tokens, "tokens per min (TPM)", charge),
                };
                let used = limit.saturating_sub(bucket.remaining());
                let message = format!(
                    "Rate limit reached for {model} in organization org-sim on {unit}: Limit {limit}, Used {used}, Requested {requested}. Please try again in {}. Visit https://platform.openai.com/account/rate-limits to learn more.",
                    format_go_duration(wait)
                );
                let mut response = error_response(
                    StatusCode::TOO_MANY_REQUESTS,
                    &message,
                    budget,
                    Some("rate_limit_exceeded"),
                );
                rate_limit_headers(response.headers_mut(), rpm, tpm, &buckets);
                if self.inner.retry_after_headers {
                    insert_retry_after(response.headers_mut(), wait);
                }
                response
            }
            Ok(buckets) => {
                let (mut response, used) = match kind {
                    Kind::Embeddings => self.embeddings(&body, &model, charge),
                    Kind::Chat => chat(&body, &model, ctx, self.inner.stream_interval),
                };
                state.stats.admitted = state.stats.admitted.saturating_add(1);
                state.stats.tokens_admitted = state.stats.tokens_admitted.saturating_add(charge);
                state.stats.tokens_used = state.stats.tokens_used.saturating_add(used);
                state.stats.last_admitted = self.since_start(now);
                if let Some(credit) = &mut state.credit_left {
                    *credit = credit.saturating_sub(used);
                }
                rate_limit_headers(response.headers_mut(), rpm, tpm, &buckets);
                response
            }
        }
    }

    fn models(&self, ctx: &HandlerContext) -> http::Response<Bytes> {
        let created = epoch_seconds_ceil(ctx.wall);
        let mut ids: Vec<&str> = self.inner.per_model.keys().map(String::as_str).collect();
        ids.extend(["gpt-4o-mini", "text-embedding-3-small"]);
        ids.sort_unstable();
        ids.dedup();
        let data: Vec<Value> = ids
            .iter()
            .map(
                |id| json!({"id": id, "object": "model", "created": created, "owned_by": "system"}),
            )
            .collect();
        json_response(StatusCode::OK, &json!({"object": "list", "data": data}))
    }

    /// An embeddings response and the tokens it used.
    fn embeddings(&self, body: &Value, model: &str, used: u64) -> (http::Response<Bytes>, u64) {
        let inputs: Vec<&Value> = match body.get("input") {
            Some(Value::Array(items)) if items.iter().all(Value::is_string) => {
                items.iter().collect()
            }
            Some(other) => vec![other],
            None => Vec::new(),
        };
        let dimensions = body
            .get("dimensions")
            .and_then(Value::as_u64)
            .and_then(|d| usize::try_from(d).ok())
            .unwrap_or(self.inner.dimensions);
        let data: Vec<Value> = inputs
            .iter()
            .enumerate()
            .map(|(index, input)| {
                let seed = input.to_string().len();
                let vector: Vec<f64> = (0..dimensions)
                    .map(|i| (((seed + i * 7) % 19) as f64 - 9.0) / 10.0)
                    .collect();
                json!({"object": "embedding", "index": index, "embedding": vector})
            })
            .collect();
        let response = json_response(
            StatusCode::OK,
            &json!({"object": "list", "data": data, "model": model,
                    "usage": {"prompt_tokens": used, "total_tokens": used}}),
        );
        (response, used)
    }
}

struct BuilderParts {
    per_model: HashMap<String, (u64, u64)>,
    credit: Option<u64>,
    retry_after_headers: bool,
    dimensions: usize,
    stream_interval: Duration,
    clock: SharedClock,
}

enum Kind {
    Embeddings,
    Chat,
}

/// The six `x-ratelimit-*` headers of `buckets`.
fn rate_limit_headers(headers: &mut HeaderMap, rpm: u64, tpm: u64, buckets: &ModelBuckets) {
    let values = [
        (LIMIT_REQUESTS, rpm.to_string()),
        (LIMIT_TOKENS, tpm.to_string()),
        (REMAINING_REQUESTS, buckets.requests.remaining().to_string()),
        (REMAINING_TOKENS, buckets.tokens.remaining().to_string()),
        (
            RESET_REQUESTS,
            format_go_duration(buckets.requests.until(f64::INFINITY)),
        ),
        (
            RESET_TOKENS,
            format_go_duration(buckets.tokens.until(f64::INFINITY)),
        ),
    ];
    for (name, value) in values {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
}

/// A chat completion (or its event stream, one event a piece, `interval` apart) and the tokens
/// it used.
fn chat(
    body: &Value,
    model: &str,
    ctx: &HandlerContext,
    interval: Duration,
) -> (http::Response<Bytes>, u64) {
    const WORDS: [&str; 8] = [
        "This",
        " is",
        " a",
        " simulated",
        " reply",
        " from",
        " the",
        " model.",
    ];
    let max = ["max_completion_tokens", "max_tokens"]
        .iter()
        .find_map(|k| body.get(*k).and_then(Value::as_u64))
        .unwrap_or(u64::MAX);
    let words: Vec<&str> = WORDS
        .iter()
        .take(usize::try_from(max).unwrap_or(usize::MAX))
        .copied()
        .collect();
    let text: String = words.concat();
    let finish = if words.len() < WORDS.len() {
        "length"
    } else {
        "stop"
    };
    let mut prompt_body = body.clone();
    if let Some(map) = prompt_body.as_object_mut() {
        for key in ["max_completion_tokens", "max_tokens", "n"] {
            map.remove(key);
        }
    }
    let prompt = provider::estimate(&prompt_body);
    let completion = tokens::count(model, &text);
    let usage = json!({"prompt_tokens": prompt, "completion_tokens": completion,
                       "total_tokens": prompt + completion});
    let id = format!("chatcmpl-sim{}", ctx.index);
    let created = epoch_seconds_ceil(ctx.wall);
    let used = prompt + completion;
    if body.get("stream").and_then(Value::as_bool) == Some(true) {
        let include_usage = body
            .pointer("/stream_options/include_usage")
            .and_then(Value::as_bool)
            == Some(true);
        let chunk = |choices: Value, usage: Option<&Value>| {
            let mut chunk = json!({"id": id, "object": "chat.completion.chunk", "created": created,
                                   "model": model, "choices": choices});
            if let (Some(usage), Some(map)) = (usage, chunk.as_object_mut()) {
                map.insert("usage".to_owned(), usage.clone());
            }
            format!("data: {chunk}\n\n")
        };
        let mut events = vec![chunk(
            json!([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}]),
            None,
        )];
        for word in &words {
            events.push(chunk(
                json!([{"index": 0, "delta": {"content": word}, "finish_reason": null}]),
                None,
            ));
        }
        events.push(chunk(
            json!([{"index": 0, "delta": {}, "finish_reason": finish}]),
            None,
        ));
        if include_usage {
            events.push(chunk(json!([]), Some(&usage)));
        }
        events.push("data: [DONE]\n\n".to_owned());
        let ends: Vec<usize> = events
            .iter()
            .scan(0, |end, event| {
                *end += event.len();
                Some(*end)
            })
            .collect();
        let mut response = http::Response::new(Bytes::from(events.concat()));
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream; charset=utf-8"),
        );
        response
            .extensions_mut()
            .insert(ChunkedBody::new(ends, interval));
        return (response, used);
    }
    let response = json_response(
        StatusCode::OK,
        &json!({"id": id, "object": "chat.completion", "created": created, "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                             "finish_reason": finish}],
                "usage": usage}),
    );
    (response, used)
}

impl Handler for OpenAiHandler {
    fn handle(
        &self,
        request: &http::Request<Bytes>,
        ctx: &HandlerContext,
    ) -> http::Response<Bytes> {
        self.answer(request, ctx)
    }
}

/// `count` texts of 4 to 400 words from a small vocabulary, the same for the same `seed`: a
/// corpus of varied sizes (about 200 tokens each on average) for batch runs and benchmarks.
pub fn corpus(count: usize, seed: u64) -> Vec<String> {
    const WORDS: [&str; 16] = [
        "rate", "limit", "token", "bucket", "server", "client", "minute", "header", "retry",
        "budget", "quota", "model", "embed", "vector", "search", "paper",
    ];
    let mut state = seed;
    let mut next = move |bound: u64| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) % bound
    };
    (0..count)
        .map(|_| {
            let words = 4 + next(397);
            (0..words)
                .map(|_| WORDS.get(next(16) as usize).copied().unwrap_or("rate"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

#[cfg(test)]
mod stream_tests;
#[cfg(test)]
mod tests;
