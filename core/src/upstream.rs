//! [`Upstream`]: the pipeline that runs one logical call against a provider.
//!
//! Every attempt goes through the same steps, in this order (DESIGN §4):
//!
//! 1. **breaker** — open means fail fast with [`Error::CircuitOpen`], no waiting, no request;
//! 2. **limiters** — the call's [`Cost`] is acquired from every limiter at once, waiting at most
//!    `max_wait` (and never past the deadline), else [`Error::Throttled`] saying until when;
//!    then [`CircuitBreaker::admit`] takes the breaker's permit (a half-open probe slot is
//!    never held while its call waits on a limiter; refused there, the charge is given back);
//! 3. **send** — through the [`Transport`], with the idempotency key (minted once, before the
//!    first attempt) and a per-attempt timeout;
//! 4. **inspect** — the provider reads the response into a [`Verdict`] and quota snapshots;
//! 5. **observe** — the limiters absorb the snapshots (header-driven pacing for every caller
//!    sharing the budget) and the throttle signal;
//! 6. **record** — the breaker counts server errors, timeouts and connection failures; 4xx and
//!    429 are not outages;
//! 7. **decide** — success returns; a permanent failure returns the typed API error; a retry
//!    waits the server's hint (refused past the clamp with [`Error::RetryAfterTooLong`] carrying
//!    the full wait) or full-jitter backoff, if the retry budget allows and the deadline leaves
//!    room.
//!
//! [`Upstream::execute_streaming`] runs the same steps but hands a success body over as it
//! arrives, retrying only before its first byte (see [`streaming`]).
//!
//! A request that may have been processed (a 5xx, a timeout, a broken connection) is retried
//! only when repeating it is safe: it carries an idempotency key the provider honours, or the
//! provider says the operation is safe without one (GET, PUT, DELETE…). Otherwise the call ends
//! with [`Error::Ambiguous`], saying a retry could duplicate the side effect. A failure the
//! provider guarantees was not processed (a 429, a refused connection) is always retryable.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use fastrand::Rng;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri};
use serde::de::DeserializeOwned;
use tracing::{Instrument, field};

use crate::backoff::Backoff;
use crate::breaker::{BreakerConfig, BreakerState, CallOutcome, CircuitBreaker, Outcome};
use crate::budget::RetryBudget;
use crate::clock::{SharedClock, TokioClock};
use crate::error::Error;
use crate::hint::Clamp;
use crate::idempotency::IdempotencyKey;
use crate::limit::{CompositeLimiter, Cost, Feedback, Limiter};
use crate::provider::{Provider, RequestSpec};
use crate::secret::{Secret, scrub};
use crate::stats::{Counters, Stats};
use crate::telemetry::{self, emit};
use crate::transport::{ReqwestTransport, Transport, TransportError};
use crate::verdict::{Processing, Reason, Verdict};

mod receive;
pub mod streaming;

use receive::{Buffered, Receive};
pub use streaming::{Reservation, StreamingResponse};

/// The `tracing` target of the per-call span.
pub const CALL_TARGET: &str = "ratewise::call";

/// How one logical call is run: attempts, waits and timeouts.
///
/// Defaults: 4 attempts; full-jitter backoff from 200 ms to 30 s; server hints obeyed up to
/// 120 s; 60 s per attempt; no deadline for the whole call; at most 30 s waiting for the
/// limiters. The client layer makes a few quick attempts; longer waits belong to a queue, which
/// reads [`crate::error::Retryable::retry_after`] from the error and parks the job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CallPolicy {
    /// Attempts per call, the first included (default 4; at least 1).
    pub max_attempts: u32,
    /// Backoff when the server gives no hint (default [`Backoff::new`]).
    pub backoff: Backoff,
    /// The longest server hint slept on (default 120 s).
    pub clamp: Clamp,
    /// Timeout of one attempt, response body included (default 60 s).
    pub attempt_timeout: Duration,
    /// Deadline for the whole call, waits included (default none).
    pub deadline: Option<Duration>,
    /// The longest wait for the limiters before failing with [`Error::Throttled`] (default 30 s;
    /// zero makes interactive callers fail fast).
    pub max_wait: Duration,
}

impl CallPolicy {
    /// The documented defaults.
    pub const fn new() -> Self {
        Self {
            max_attempts: 4,
            backoff: Backoff::new(),
            clamp: Clamp::new(Clamp::DEFAULT_MAX),
            attempt_timeout: Duration::from_secs(60),
            deadline: None,
            max_wait: Duration::from_secs(30),
        }
    }

    /// This policy with `attempts` attempts per call (at least 1).
    pub const fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = if attempts == 0 { 1 } else { attempts };
        self
    }

    /// This policy with `backoff`.
    pub const fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// This policy with `clamp`.
    pub const fn clamp(mut self, clamp: Clamp) -> Self {
        self.clamp = clamp;
        self
    }

    /// This policy with a per-attempt timeout.
    pub const fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = timeout;
        self
    }

    /// This policy with a deadline for the whole call.
    pub const fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// This policy waiting at most `max_wait` for the limiters.
    pub const fn max_wait(mut self, max_wait: Duration) -> Self {
        self.max_wait = max_wait;
        self
    }
}

impl Default for CallPolicy {
    fn default() -> Self {
        Self::new()
    }
}

/// A successful response, with how it was obtained.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Response {
    /// The HTTP status.
    pub status: StatusCode,
    /// The response headers.
    pub headers: HeaderMap,
    /// The body, read in full.
    pub body: Bytes,
    /// Attempts the call took (1 when the first succeeded).
    pub attempts: u32,
    /// The idempotency key every attempt sent, if any.
    pub idempotency_key: Option<IdempotencyKey>,
    /// The provider's request id, if the response carried one.
    pub request_id: Option<String>,
}

impl Response {
    /// Decodes the body as JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }
}

/// The builder of an [`Upstream`] was given something unusable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid upstream configuration: {0}")]
pub struct ConfigError(String);

/// The pipeline for one provider: breaker, limiters, retry budget, transport and policy.
///
/// Cheap to clone (an `Arc` inside); clones share the breaker, the limiters, the budget and the
/// counters, so build one per upstream and credential and clone it everywhere.
pub struct Upstream<P: Provider> {
    inner: Arc<Inner<P>>,
    policy: CallPolicy,
}

struct Inner<P: Provider> {
    provider: P,
    base_url: String,
    origin: Origin,
    headers: HeaderMap,
    transport: Arc<dyn Transport>,
    clock: SharedClock,
    breaker: CircuitBreaker,
    limiter: CompositeLimiter,
    budget: RetryBudget,
    rng: Mutex<Rng>,
    counters: Counters,
    /// Credentials scrubbed from error bodies before they are decoded or kept.
    redactions: Vec<Secret>,
}

impl<P: Provider> Clone for Upstream<P> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
            policy: self.policy,
        }
    }
}

impl<P: Provider> fmt::Debug for Upstream<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upstream")
            .field("provider", &P::NAME)
            .field("base_url", &self.inner.base_url)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl<P: Provider> Upstream<P> {
    /// A builder for `provider` at `base_url` (`https://api.stripe.com`).
    pub fn builder(provider: P, base_url: impl Into<String>) -> UpstreamBuilder<P> {
        UpstreamBuilder::new(provider, base_url)
    }

    /// The provider.
    pub fn provider(&self) -> &P {
        &self.inner.provider
    }

    /// The policy calls run with.
    pub fn policy(&self) -> CallPolicy {
        self.policy
    }

    /// A handle sharing everything with this one but running calls with `policy` (an
    /// interactive path with `max_wait` zero beside a batch path that waits).
    pub fn with_policy(&self, policy: CallPolicy) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
            policy,
        }
    }

    /// The circuit breaker.
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.inner.breaker
    }

    /// The limiters every call is charged against.
    pub fn limiter(&self) -> &CompositeLimiter {
        &self.inner.limiter
    }

    /// The clock.
    pub fn clock(&self) -> &SharedClock {
        &self.inner.clock
    }

    /// The article's four numbers (retry rate, success after retry, permanent failures, breaker
    /// state) and throttle waits, since this upstream was built.
    pub fn stats(&self) -> Stats {
        self.inner.counters.snapshot(self.inner.breaker.state())
    }

    /// Runs one logical call and decodes a successful body as JSON.
    pub async fn execute_json<T: DeserializeOwned>(
        &self,
        spec: RequestSpec,
    ) -> Result<T, Error<P::ApiError>> {
        let response = self.execute(spec).await?;
        response
            .json()
            .map_err(|e| Error::decode(P::NAME, &response.body, e.to_string()))
    }

    /// Runs one logical call: every attempt, in order, until success or a typed error.
    pub async fn execute(&self, spec: RequestSpec) -> Result<Response, Error<P::ApiError>> {
        self.call(spec, &Buffered).await
    }

    /// Runs one logical call like [`execute`](Self::execute), but returns as soon as a success
    /// head arrives, with the body as a stream: retries happen only before its first byte, and
    /// a failure while it streams is an item error of the body (see [`streaming`]).
    pub async fn execute_streaming(
        &self,
        spec: RequestSpec,
    ) -> Result<StreamingResponse, Error<P::ApiError>> {
        self.call(spec, &streaming::Streaming).await
    }

    /// One logical call, its response received by `mode`.
    async fn call<M: Receive<P>>(
        &self,
        mut spec: RequestSpec,
        mode: &M,
    ) -> Result<M::Output, Error<P::ApiError>> {
        let key_header = self.inner.provider.idempotency_header();
        if key_header.is_some() && spec.idempotency_key.is_none() && !spec.method.is_idempotent() {
            spec.idempotency_key = Some(IdempotencyKey::new());
        }
        let span = tracing::info_span!(
            target: CALL_TARGET,
            "ratewise.call",
            upstream = P::NAME,
            operation = spec.operation,
            idempotency_key = field::Empty,
            attempts = field::Empty,
            outcome = field::Empty,
        );
        if let Some(key) = &spec.idempotency_key {
            span.record("idempotency_key", key.as_str());
        }
        let mut attempts = 0;
        let result = self
            .run(&spec, key_header, &mut attempts, mode)
            .instrument(span.clone())
            .await;
        let outcome = match &result {
            Ok(_) if attempts > 1 => "success_after_retry",
            Ok(_) => "success",
            Err(_) => "failed",
        };
        span.record("attempts", attempts);
        span.record("outcome", outcome);
        // A call refused before its first attempt (breaker open, limiter wait too long) is a
        // failure the caller sees, so it counts as one.
        self.inner.counters.call_finished(result.is_ok(), attempts);
        emit::call(P::NAME, outcome);
        result.map_err(|error| error.with_idempotency_key(spec.idempotency_key))
    }

    async fn run<M: Receive<P>>(
        &self,
        spec: &RequestSpec,
        key_header: Option<HeaderName>,
        attempts: &mut u32,
        mode: &M,
    ) -> Result<M::Output, Error<P::ApiError>> {
        let inner = &*self.inner;
        let policy = self.policy;
        let clock = &inner.clock;
        let deadline = policy.deadline.and_then(|d| clock.now().checked_add(d));
        let safe_to_repeat = (key_header.is_some() && spec.idempotency_key.is_some())
            || inner.provider.safe_without_key(spec);
        // Every attempt spends one request, whatever budgets the provider names, so a limiter
        // added on `requests` (the default budget of every limiter) is charged by every client.
        let cost = spec
            .cost
            .clone()
            .unwrap_or_else(|| inner.provider.cost(spec).counting_request());
        let template = self.template(spec, key_header)?;
        inner.budget.deposit();
        let rng = inner
            .rng
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .fork();
        let mut backoff = policy.backoff.state(rng);

        loop {
            *attempts += 1;
            let attempt = *attempts;

            // 1. The breaker: fail fast while open, before waiting on any limiter.
            if let BreakerState::Open { until } = inner.breaker.state() {
                inner.counters.breaker_rejection();
                *attempts -= 1;
                return Err(Error::circuit_open(P::NAME, until, clock.now()));
            }

            // 2. The limiters: pace, waiting at most max_wait and never past the deadline.
            let before = clock.now();
            let max_wait = bounded(policy.max_wait, deadline, before);
            let held = match inner.limiter.acquire(&cost, max_wait).await {
                Ok(held) => held,
                Err(throttled) => {
                    *attempts -= 1;
                    return Err(Error::throttled(P::NAME, throttled, clock.now()));
                }
            };
            let waited = clock.now().saturating_duration_since(before);
            if !waited.is_zero() {
                inner.counters.throttle_wait(waited);
                emit::throttle_wait(P::NAME, "all", waited);
            }

            // 3. The breaker's permit, taken only now that the call can be sent: a half-open
            // probe slot is never held while its call waits on a limiter (a probe paced for a
            // minute would otherwise fail every other caller fast for that minute). Refused
            // here (the breaker opened, or another caller holds the probe slot): the limiters'
            // charge is given back.
            let permit = match inner.breaker.admit() {
                Ok(permit) => permit,
                Err(open) => {
                    inner.limiter.reconcile(&cost, &Cost::none());
                    drop(held);
                    inner.counters.breaker_rejection();
                    *attempts -= 1;
                    return Err(Error::circuit_open(P::NAME, open.until, clock.now()));
                }
            };

            // 4. Send, under the per-attempt timeout (never past the deadline).
            let timeout = bounded(policy.attempt_timeout, deadline, clock.now());
            if timeout.is_zero() {
                permit.record(Outcome::Ignored);
                return Err(Error::deadline_exceeded(P::NAME, attempt - 1));
            }
            inner.counters.request();
            let sent = mode
                .send(&*inner.transport, template.request(), timeout, held)
                .await;
            let at = clock.timestamp();

            // 5–7. Inspect, observe, record.
            let (after, reason, processing, error) = match sent {
                Ok((response, rest)) => {
                    let status = response.status();
                    emit::request(P::NAME, status_label(status));
                    let inspection = inner.provider.inspect(&response, at);
                    for quota in &inspection.quotas {
                        inner.limiter.observe(quota);
                        emit::quota_remaining(P::NAME, quota.budget.as_str(), quota.remaining);
                    }
                    let throttled = inspection.verdict.reason() == Some(Reason::RateLimited);
                    let hinted =
                        matches!(inspection.verdict, Verdict::Retry { after: Some(_), .. });
                    inner.limiter.feedback(match (throttled, hinted) {
                        (false, _) => Feedback::Accepted,
                        (true, false) => Feedback::Throttled,
                        (true, true) => Feedback::ThrottledWithHint,
                    });
                    permit.record_call(&CallOutcome::Status(status));
                    let (reason, retry) = match inspection.verdict {
                        Verdict::Success => {
                            return Ok(mode.success(self, response, rest, attempt, spec, &cost));
                        }
                        Verdict::Fail { reason } => (reason, None),
                        Verdict::Retry {
                            after,
                            reason,
                            processing,
                        } => (reason, Some((after, processing))),
                    };
                    let response = mode.read_rest(response, rest, timeout).await;
                    let Some((after, processing)) = retry else {
                        return Err(self.api_error(&response, reason, None, false));
                    };
                    let error = self.api_error(&response, reason, after, true);
                    (after, reason, processing, error)
                }
                Err(failure) => {
                    emit::request(P::NAME, transport_label(&failure));
                    let (outcome, reason, error) = match &failure {
                        TransportError::Connect { message } => (
                            CallOutcome::Connect,
                            Reason::Connect,
                            Error::connect(P::NAME, message.clone()),
                        ),
                        TransportError::Timeout { .. } => (
                            CallOutcome::Timeout,
                            Reason::Timeout,
                            Error::timeout(P::NAME),
                        ),
                        TransportError::Interrupted { message } => (
                            CallOutcome::Transport,
                            Reason::Interrupted,
                            Error::interrupted(P::NAME, message.clone()),
                        ),
                        TransportError::BodyTooLarge { .. } => {
                            permit.record(Outcome::Success);
                            return Err(Error::decode(P::NAME, b"", failure.to_string()));
                        }
                        other => {
                            permit.record(Outcome::Ignored);
                            return Err(Error::invalid_request(P::NAME, other.to_string()));
                        }
                    };
                    permit.record_call(&outcome);
                    let processing = if failure.certainly_not_sent() {
                        Processing::NotProcessed
                    } else {
                        Processing::Maybe
                    };
                    (None, reason, processing, error)
                }
            };

            // 7. Decide.
            if processing == Processing::Maybe && !safe_to_repeat {
                return Err(Error::ambiguous(P::NAME, ambiguity(&error, spec)));
            }
            if attempt >= policy.max_attempts {
                return Err(error);
            }
            let wait = match after {
                Some(hint) => match policy.clamp.apply(hint) {
                    Ok(wait) => wait,
                    Err(too_long) => return Err(Error::retry_after_too_long(P::NAME, too_long)),
                },
                None => backoff.next_delay(),
            };
            if deadline.is_some_and(|d| clock.now().checked_add(wait).is_none_or(|t| t >= d)) {
                return Err(Error::deadline_exceeded(P::NAME, attempt));
            }
            if !inner.budget.try_withdraw() {
                return Err(Error::retry_budget_exhausted(P::NAME, attempt));
            }
            inner.counters.retry();
            emit::retry(P::NAME, reason.as_str());
            telemetry::retry_scheduled(P::NAME, attempt, reason.as_str(), wait, after.is_some());
            tokio::time::sleep(wait).await;
        }
    }

    fn template(
        &self,
        spec: &RequestSpec,
        key_header: Option<HeaderName>,
    ) -> Result<Template, Error<P::ApiError>> {
        let uri = self.inner.origin.join(&spec.path).map_err(|e| {
            Error::invalid_request(P::NAME, format!("bad path `{}`: {e}", spec.path))
        })?;
        let mut headers = self.inner.headers.clone();
        for (name, value) in &spec.headers {
            headers.insert(name.clone(), value.clone());
        }
        if let (Some(name), Some(key)) = (key_header, &spec.idempotency_key) {
            headers.insert(name, key.header_value());
        }
        Ok(Template {
            method: spec.method.clone(),
            uri,
            headers,
            body: spec.body.clone(),
        })
    }

    fn success(
        &self,
        response: http::Response<Bytes>,
        attempts: u32,
        spec: &RequestSpec,
    ) -> Response {
        let request_id = self.inner.provider.request_id(response.headers());
        let (parts, body) = response.into_parts();
        Response {
            status: parts.status,
            headers: parts.headers,
            body,
            attempts,
            idempotency_key: spec.idempotency_key.clone(),
            request_id,
        }
    }

    fn api_error(
        &self,
        response: &http::Response<Bytes>,
        reason: Reason,
        after: Option<Duration>,
        retryable: bool,
    ) -> Error<P::ApiError> {
        let status = response.status();
        let provider = &self.inner.provider;
        let body = scrub(response.body(), &self.inner.redactions);
        let mut error = match provider.decode_error(status, &body) {
            Some(api) => Error::api(P::NAME, status, api),
            None => Error::api_undecoded(P::NAME, status, &body),
        }
        .with_reason(reason)
        .with_retryable(retryable);
        if let Some(wait) = after {
            error = error.with_retry_after(wait);
        }
        if let Some(id) = provider.request_id(response.headers()) {
            error = error.with_request_id(id);
        }
        error
    }
}

/// The base URL, parsed once: each call only validates its own path.
struct Origin {
    scheme: http::uri::Scheme,
    authority: http::uri::Authority,
    /// The base URL's path without its trailing slash (`""`, or `/api/v3` for GitHub Enterprise).
    base_path: String,
}

impl Origin {
    fn parse(base_url: &str) -> Result<Self, ConfigError> {
        let uri: Uri = base_url
            .parse()
            .map_err(|e| ConfigError(format!("base URL `{base_url}`: {e}")))?;
        let parts = uri.into_parts();
        let (Some(scheme), Some(authority)) = (parts.scheme, parts.authority) else {
            return Err(ConfigError(format!(
                "base URL `{base_url}` needs a scheme and a host (https://api.example.com)"
            )));
        };
        let base_path = parts
            .path_and_query
            .map(|p| p.path().trim_end_matches('/').to_owned())
            .unwrap_or_default();
        Ok(Self {
            scheme,
            authority,
            base_path,
        })
    }

    /// The URI of `path` (which must start with `/`) under this origin.
    fn join(&self, path: &str) -> Result<Uri, String> {
        if !path.starts_with('/') {
            return Err("a path must start with `/`".to_owned());
        }
        let path_and_query = if self.base_path.is_empty() {
            http::uri::PathAndQuery::try_from(path)
        } else {
            http::uri::PathAndQuery::try_from(format!("{}{path}", self.base_path))
        }
        .map_err(|e| e.to_string())?;
        let mut parts = http::uri::Parts::default();
        parts.scheme = Some(self.scheme.clone());
        parts.authority = Some(self.authority.clone());
        parts.path_and_query = Some(path_and_query);
        Uri::from_parts(parts).map_err(|e| e.to_string())
    }
}

/// The parts of a request replayed on every attempt.
struct Template {
    method: http::Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
}

impl Template {
    fn request(&self) -> http::Request<Bytes> {
        let mut request = http::Request::new(self.body.clone());
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.uri.clone();
        *request.headers_mut() = self.headers.clone();
        request
    }
}

/// `limit`, shortened to what is left before `deadline`.
fn bounded(limit: Duration, deadline: Option<Instant>, now: Instant) -> Duration {
    match deadline {
        Some(deadline) => limit.min(deadline.saturating_duration_since(now)),
        None => limit,
    }
}

fn status_label(status: StatusCode) -> &'static str {
    match status.as_u16() {
        304 => "304",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        409 => "409",
        429 => "429",
        500 => "500",
        502 => "502",
        503 => "503",
        504 => "504",
        _ if status.is_success() => "2xx",
        _ if status.is_redirection() => "3xx",
        _ if status.is_client_error() => "4xx",
        _ => "5xx",
    }
}

fn transport_label(failure: &TransportError) -> &'static str {
    match failure {
        TransportError::Connect { .. } => "connect",
        TransportError::Timeout { .. } => "timeout",
        TransportError::Interrupted { .. } => "interrupted",
        TransportError::BodyTooLarge { .. } => "body_too_large",
        _ => "invalid_request",
    }
}

fn ambiguity<A>(error: &Error<A>, spec: &RequestSpec) -> String {
    let what = match error {
        Error::Api { status, .. } => format!("HTTP {status}"),
        Error::Timeout { .. } => "no response within the timeout".to_owned(),
        Error::Interrupted { message, .. } => format!("connection broke after sending: {message}"),
        _ => "the request may have been processed".to_owned(),
    };
    format!("{what} on {} {}", spec.method, spec.operation)
}

/// Builds an [`Upstream`]: the provider and base URL are required, everything else has a
/// documented default.
pub struct UpstreamBuilder<P: Provider> {
    provider: P,
    base_url: String,
    headers: HeaderMap,
    transport: Option<Arc<dyn Transport>>,
    clock: Option<SharedClock>,
    breaker: BreakerConfig,
    limiters: Option<Vec<Arc<dyn Limiter>>>,
    extra_limiters: Vec<Arc<dyn Limiter>>,
    budget: Option<RetryBudget>,
    policy: CallPolicy,
    seed: Option<u64>,
    redactions: Vec<Secret>,
}

impl<P: Provider> UpstreamBuilder<P> {
    /// A builder for `provider` at `base_url`.
    pub fn new(provider: P, base_url: impl Into<String>) -> Self {
        Self {
            provider,
            base_url: base_url.into(),
            headers: HeaderMap::new(),
            transport: None,
            clock: None,
            breaker: BreakerConfig::new().name(P::NAME),
            limiters: None,
            extra_limiters: Vec::new(),
            budget: None,
            policy: CallPolicy::new(),
            seed: None,
            redactions: Vec::new(),
        }
    }

    /// A header sent on every request (an API version, a user agent).
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.insert(name, value);
        self
    }

    /// A credential header sent on every request, marked sensitive so that `Debug` output of
    /// the header map shows `Sensitive` instead of its value.
    pub fn secret_header(mut self, name: HeaderName, mut value: HeaderValue) -> Self {
        value.set_sensitive(true);
        self.headers.insert(name, value);
        self
    }

    /// A credential to scrub from error bodies (a server echoing the key it refused), before
    /// they are decoded into the provider's error or kept in [`Error::Api`]. Provider clients
    /// register their API key here.
    pub fn redact(mut self, secret: Secret) -> Self {
        if !secret.is_empty() {
            self.redactions.push(secret);
        }
        self
    }

    /// The transport (default: a [`ReqwestTransport`] with its documented defaults).
    pub fn transport(mut self, transport: Arc<dyn Transport>) -> Self {
        self.transport = Some(transport);
        self
    }

    /// The clock (default [`TokioClock`]); limiters, breaker and budget built here use it.
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The breaker's configuration (default [`BreakerConfig::new`], named after the provider).
    pub fn breaker(mut self, config: BreakerConfig) -> Self {
        self.breaker = config;
        self
    }

    /// Replaces the provider's default limiters.
    pub fn limiters(mut self, limiters: Vec<Arc<dyn Limiter>>) -> Self {
        self.limiters = Some(limiters);
        self
    }

    /// Adds a limiter to the provider's defaults (a process-wide budget, a Redis-shared one).
    pub fn limiter(mut self, limiter: Arc<dyn Limiter>) -> Self {
        self.extra_limiters.push(limiter);
        self
    }

    /// The retry budget (default [`RetryBudget`] on the builder's clock: 20 % plus 10/s).
    pub fn budget(mut self, budget: RetryBudget) -> Self {
        self.budget = Some(budget);
        self
    }

    /// The call policy (default [`CallPolicy::new`]).
    pub fn policy(mut self, policy: CallPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Seeds the backoff jitter, for reproducible runs (default: random).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Builds the upstream.
    pub fn build(self) -> Result<Upstream<P>, ConfigError> {
        let base_url = self.base_url.trim_end_matches('/').to_owned();
        let origin = Origin::parse(&base_url)?;
        let clock = self.clock.unwrap_or_else(TokioClock::shared);
        let transport = match self.transport {
            Some(transport) => transport,
            None => Arc::new(ReqwestTransport::new().map_err(|e| ConfigError(e.to_string()))?)
                as Arc<dyn Transport>,
        };
        let breaker = CircuitBreaker::new(self.breaker, Arc::clone(&clock));
        breaker.on_transition(move |transition| {
            emit::breaker_transition(P::NAME, transition.to.as_str());
            emit::breaker_state(P::NAME, breaker_level(&transition.to));
        });
        let limiters = self
            .limiters
            .unwrap_or_else(|| self.provider.default_limiters(&clock));
        let limiter = limiters
            .into_iter()
            .chain(self.extra_limiters)
            .fold(CompositeLimiter::new().clock(Arc::clone(&clock)), |c, l| {
                c.with(l)
            });
        let budget = self
            .budget
            .unwrap_or_else(|| RetryBudget::builder().clock(Arc::clone(&clock)).build());
        let rng = match self.seed {
            Some(seed) => Rng::with_seed(seed),
            None => Rng::new(),
        };
        Ok(Upstream {
            inner: Arc::new(Inner {
                provider: self.provider,
                base_url,
                origin,
                headers: self.headers,
                transport,
                clock,
                breaker,
                limiter,
                budget,
                rng: Mutex::new(rng),
                counters: Counters::default(),
                redactions: self.redactions,
            }),
            policy: self.policy,
        })
    }
}

fn breaker_level(state: &BreakerState) -> f64 {
    match state {
        BreakerState::Closed => 0.0,
        BreakerState::HalfOpen => 1.0,
        _ => 2.0,
    }
}

impl<P: Provider> fmt::Debug for UpstreamBuilder<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamBuilder")
            .field("provider", &P::NAME)
            .field("base_url", &self.base_url)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_path_joins_the_base_url_and_keeps_its_path_prefix() {
        let plain = Origin::parse("https://api.stripe.com").unwrap();
        assert_eq!(
            plain.join("/v1/charges?limit=3").unwrap(),
            "https://api.stripe.com/v1/charges?limit=3"
        );
        let enterprise = Origin::parse("https://ghe.example.com/api/v3/").unwrap();
        assert_eq!(
            enterprise.join("/repos/o/r").unwrap(),
            "https://ghe.example.com/api/v3/repos/o/r"
        );
    }

    #[test]
    fn a_path_without_a_leading_slash_or_a_base_without_a_host_is_refused() {
        let origin = Origin::parse("http://127.0.0.1:8080").unwrap();
        assert!(origin.join("v1/things").is_err());
        assert!(origin.join("/v1/bad path").is_err());
        assert!(Origin::parse("/just/a/path").is_err());
        assert!(Origin::parse("not a url").is_err());
    }
}
