//! [`OpenAiProvider`]: how OpenAI's responses read, what its calls cost, which limiters apply.
//!
//! # The rules, in order
//!
//! 1. 2xx: success. The `x-ratelimit-*` headers of *every* response (429s included) become
//!    snapshots of the `requests` and `tokens` budgets, which the quota pacers absorb: a second
//!    process spending the same key shows up in `remaining` and slows this one down.
//! 2. 429 `insufficient_quota` (by `code`, else by `type`): out of credits or over the spend
//!    limit. Billing, not pacing: fails at once with [`Reason::QuotaExhausted`], not retryable,
//!    whatever `x-should-retry` says (a retry cannot add credits; openai-python would retry it).
//! 3. `x-should-retry: true|false`, when present, decides retryability for everything else.
//! 4. Any other 429 (`rate_limit_exceeded`, no body): [`Reason::RateLimited`], not processed
//!    (OpenAI refused it), retried after the first hint found among `retry-after-ms`,
//!    `retry-after` (seconds or HTTP-date), the "Please try again in 644ms" of the message, and
//!    the reset of a budget the headers report spent; else local backoff.
//! 5. 408, 409 and 5xx: retried. 400, 401, 403, 404, 422 and other 4xx: never.
//!
//! # Idempotency
//!
//! OpenAI documents no idempotency key, and its SDKs generate one but never send it (PROVIDERS
//! §1), so [`Provider::idempotency_header`] is `None`. Instead every OpenAI operation this crate
//! offers is declared safe to repeat ([`Provider::safe_without_key`]): a completion or an
//! embedding that ran twice has no side effect other than its cost, and listing models is a
//! read. So a timeout or a 5xx is retried, at the price of possibly paying for a completion
//! twice. A caller who will not pay that sets `max_attempts(1)` on the call policy.
//!
//! # Costs and budgets
//!
//! A call costs 1 of [`BudgetName::REQUESTS`] and, for POSTs, the tokens OpenAI reserves on
//! arrival ([`tokens::request_tokens`]: the larger of `max_tokens`/`max_completion_tokens` × `n`
//! and the prompt's tokens) of [`BudgetName::TOKENS`]. The reservation is reconciled with the
//! response's `usage.total_tokens` ([`Provider::actual_cost`]; for a stream, the final chunk's
//! usage as it arrives, see [`crate::chat`]), refunding what the completion did not use.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use ratewise_core::clock::{SharedClock, Timestamp};
use ratewise_core::hint::Hint;
use ratewise_core::limit::{GcraLimiter, Limiter, QuotaPacer, Rate};
use ratewise_core::provider::{Provider, RequestSpec};
use ratewise_core::quota::{BudgetName, Cost};
use ratewise_core::verdict::{Inspection, Reason, Verdict};
use serde_json::Value;

use crate::error::OpenAiError;
use crate::headers::{self, RateLimitHeaders};
use crate::sse;
use crate::tokens;

/// A tier's per-minute limits for the models a client calls: requests and tokens.
///
/// OpenAI's limits depend on the organization's usage tier and the model (Tier 1: 500 RPM and
/// 30,000 TPM for `gpt-4o`; 3,000 RPM and 1,000,000 TPM for `text-embedding-3-small`); the
/// account's limits page lists them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Limits {
    /// Requests per minute.
    pub rpm: u64,
    /// Tokens per minute.
    pub tpm: u64,
}

impl Limits {
    /// `rpm` requests and `tpm` tokens per minute.
    pub const fn new(rpm: u64, tpm: u64) -> Self {
        Self { rpm, tpm }
    }
}

/// The request pace assumed before the first response's headers arrive when no [`Limits`] are
/// given: 500 per minute, Tier 1 for most chat models. At most 5 % of it (25 requests) go at
/// once; the first response's headers then replace it.
pub const CONSERVATIVE_RPM: u64 = 500;

/// OpenAI's dialect for the ratewise pipeline.
///
/// Limiters (see [`OpenAiProvider::limiters`]): a [`QuotaPacer`] per budget, fed by the
/// `x-ratelimit-*` headers; with [`Limits`], also a [`GcraLimiter`] per budget at exactly the
/// tier's rate (burst: one minute's worth, the size of OpenAI's own bucket).
#[derive(Clone, Debug, Default)]
pub struct OpenAiProvider {
    limits: Option<Limits>,
}

impl OpenAiProvider {
    /// A provider that learns its limits from the headers, starting at [`CONSERVATIVE_RPM`].
    pub fn new() -> Self {
        Self::default()
    }

    /// A provider that knows the tier's limits up front.
    pub fn with_limits(limits: Limits) -> Self {
        Self {
            limits: Some(limits),
        }
    }

    /// The limits given up front, if any.
    pub fn limits(&self) -> Option<Limits> {
        self.limits
    }

    /// The limiters every call goes through, tokens first (the budget that usually makes
    /// callers wait), on `clock`.
    pub fn limiters(&self, clock: &SharedClock) -> Vec<Arc<dyn Limiter>> {
        const MINUTE: Duration = Duration::from_secs(60);
        let mut tokens = QuotaPacer::new(BudgetName::TOKENS).clock(Arc::clone(clock));
        let mut requests = QuotaPacer::new(BudgetName::REQUESTS).clock(Arc::clone(clock));
        let mut out: Vec<Arc<dyn Limiter>> = Vec::with_capacity(4);
        match self.limits {
            Some(limits) => {
                tokens = tokens.initial(limits.tpm, MINUTE);
                requests = requests.initial(limits.rpm, MINUTE);
                out.push(Arc::new(
                    GcraLimiter::new(Rate::per_minute(limits.tpm))
                        .budget(BudgetName::TOKENS)
                        .clock(Arc::clone(clock)),
                ));
                out.push(Arc::new(tokens));
                out.push(Arc::new(
                    GcraLimiter::new(Rate::per_minute(limits.rpm)).clock(Arc::clone(clock)),
                ));
                out.push(Arc::new(requests));
            }
            None => {
                out.push(Arc::new(tokens));
                out.push(Arc::new(requests.initial(CONSERVATIVE_RPM, MINUTE)));
            }
        }
        out
    }

    /// The verdict for a status and its (possibly undecodable) error body.
    fn classify(status: StatusCode, error: Option<&OpenAiError>, headers: &HeaderMap) -> Verdict {
        match status.as_u16() {
            100..=399 => Verdict::Success,
            429 if error.is_some_and(OpenAiError::is_insufficient_quota) => {
                Verdict::fail(Reason::QuotaExhausted)
            }
            429 => Verdict::retry(Reason::RateLimited).not_processed(),
            _ => Verdict::from_status(status),
        }
        .obey_server(match error {
            Some(e) if e.is_insufficient_quota() => None,
            _ => headers::should_retry(headers),
        })
    }

    /// The wait a throttled response asks for: `retry-after-ms`, `retry-after`, the message's
    /// "try again in …", then the reset of a budget reported spent.
    fn hint(
        headers: &HeaderMap,
        error: Option<&OpenAiError>,
        limits: &RateLimitHeaders,
        at: Timestamp,
    ) -> Option<Duration> {
        Hint::from_headers(headers, at.wall)
            .map(|h| h.wait)
            .or_else(|| {
                error
                    .and_then(|e| e.message.as_deref())
                    .and_then(headers::try_again_in)
            })
            .or_else(|| limits.exhausted_reset())
    }
}

impl Provider for OpenAiProvider {
    const NAME: &'static str = "openai";
    type ApiError = OpenAiError;

    fn inspect(&self, response: &http::Response<Bytes>, at: Timestamp) -> Inspection {
        let headers = response.headers();
        let limits = RateLimitHeaders::from_headers(headers);
        let status = response.status();
        let error = (status.as_u16() >= 400)
            .then(|| OpenAiError::from_body(response.body()))
            .flatten();
        let mut verdict = Self::classify(status, error.as_ref(), headers);
        if let Verdict::Retry { .. } = verdict {
            verdict = verdict.after(Self::hint(headers, error.as_ref(), &limits, at));
        }
        limits
            .snapshots(at)
            .fold(Inspection::new(verdict), Inspection::with_quota)
    }

    /// 1 request, plus for a POST the tokens OpenAI reserves (see the [module docs](self)).
    fn cost(&self, request: &RequestSpec) -> Cost {
        let cost = Cost::request();
        if request.method == Method::GET {
            return cost;
        }
        match serde_json::from_slice::<Value>(&request.body) {
            Ok(body) => cost.with(BudgetName::TOKENS, estimate(&body)),
            Err(_) => cost,
        }
    }

    /// 1 request plus `usage.total_tokens`, from a JSON body or the last SSE chunk carrying it.
    fn actual_cost(
        &self,
        _request: &RequestSpec,
        response: &http::Response<Bytes>,
    ) -> Option<Cost> {
        let total = if sse::is_event_stream(response.headers(), response.body()) {
            sse::events(response.body())
                .filter_map(|data| serde_json::from_str::<Value>(&data).ok())
                .filter_map(|chunk| total_tokens(&chunk))
                .last()
        } else {
            serde_json::from_slice::<Value>(response.body())
                .ok()
                .as_ref()
                .and_then(total_tokens)
        }?;
        Some(usage_cost(total))
    }

    fn default_limiters(&self, clock: &SharedClock) -> Vec<Arc<dyn Limiter>> {
        self.limiters(clock)
    }

    /// Every operation is safe to repeat: see "Idempotency" in the [module docs](self).
    fn safe_without_key(&self, _request: &RequestSpec) -> bool {
        true
    }

    fn decode_error(&self, _status: StatusCode, body: &[u8]) -> Option<OpenAiError> {
        OpenAiError::from_body(body)
    }

    fn request_id(&self, headers: &HeaderMap) -> Option<String> {
        headers::request_id(headers)
    }
}

/// What a call that used `total_tokens` really cost: 1 request and those tokens.
pub(crate) fn usage_cost(total_tokens: u64) -> Cost {
    Cost::request().with(BudgetName::TOKENS, total_tokens)
}

fn total_tokens(body: &Value) -> Option<u64> {
    body.get("usage")?.get("total_tokens")?.as_u64()
}

/// The tokens OpenAI reserves for a request body (chat completion, completion or embedding).
pub fn estimate(body: &Value) -> u64 {
    let model = body.get("model").and_then(Value::as_str).unwrap_or("");
    let prompt = match (body.get("messages"), body.get("input"), body.get("prompt")) {
        (Some(Value::Array(messages)), _, _) => tokens::chat_prompt(
            model,
            messages.iter().map(|m| {
                (
                    m.get("role").and_then(Value::as_str).unwrap_or(""),
                    m.get("content").map_or("", content_text),
                    m.get("name").and_then(Value::as_str),
                )
            }),
        ),
        (_, Some(input), _) | (_, _, Some(input)) => input_tokens(model, input),
        _ => 0,
    };
    let max = ["max_completion_tokens", "max_tokens"]
        .iter()
        .find_map(|k| body.get(*k).and_then(Value::as_u64));
    let n = body.get("n").and_then(Value::as_u64);
    tokens::request_tokens(prompt, max, n)
}

/// A message's text: a string, or the `text` of its content parts.
fn content_text(content: &Value) -> &str {
    match content {
        Value::String(s) => s,
        Value::Array(parts) => parts
            .iter()
            .find_map(|p| p.get("text").and_then(Value::as_str))
            .unwrap_or(""),
        _ => "",
    }
}

/// Tokens of an `input`: a string, strings, token ids, or arrays of token ids.
fn input_tokens(model: &str, input: &Value) -> u64 {
    match input {
        Value::String(text) => tokens::count(model, text),
        Value::Array(items) => items.iter().fold(0u64, |sum, item| {
            let n = match item {
                Value::Number(_) => 1,
                Value::Array(ids) => u64::try_from(ids.len()).unwrap_or(u64::MAX),
                other => input_tokens(model, other),
            };
            sum.saturating_add(n)
        }),
        _ => 0,
    }
}

#[cfg(test)]
mod tests;
