//! An OpenAI-style upstream for the RPM + TPM scenario: the dialect the simulator speaks and
//! the provider ratewise reads it with. Kept here (not the `ratewise-openai` crate) so the
//! benchmark stands alone; it models only what the scenario needs.
//!
//! - Two limits, `requests` (RPM) and `tokens` (TPM), token buckets whose capacity is the
//!   per-minute limit; a request's tokens are in its `x-sim-tokens` header.
//! - Every response carries `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`, resets as
//!   Go durations (`6m0s`, `1.5s`, `12ms`): the time until the bucket is full.
//! - A throttle is a 429 with OpenAI's `rate_limit_exceeded` body and no `Retry-After` (that it
//!   is sent is unverified, PROVIDERS.md §1).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use ratewise::clock::{SharedClock, Timestamp};
use ratewise::limit::{GcraLimiter, Limiter, Rate};
use ratewise::provider::{Provider, RequestSpec};
use ratewise::quota::{BudgetName, Cost, QuotaSnapshot};
use ratewise::verdict::{Inspection, Verdict};
use ratewise_testkit::dialect::json_response;
use ratewise_testkit::{Dialect, GenericDialect, GenericError, IdempotencyError, ResponseContext};

/// The request header carrying a call's token estimate.
pub(crate) static TOKENS_HEADER: HeaderName = HeaderName::from_static("x-sim-tokens");

/// The simulator's side: OpenAI's rate-limit headers and throttle body.
#[derive(Debug, Default)]
pub(crate) struct OpenAiDialect {
    generic: GenericDialect,
}

impl Dialect for OpenAiDialect {
    fn throttle_response(&self, ctx: &ResponseContext<'_>) -> http::Response<Bytes> {
        let kind = ctx
            .limits
            .iter()
            .find(|l| l.exceeded)
            .map_or("requests", |l| &*l.name);
        json_response(
            StatusCode::TOO_MANY_REQUESTS,
            &serde_json::json!({"error": {
                "message": format!("Rate limit reached on {kind} per min."),
                "type": kind,
                "param": null,
                "code": "rate_limit_exceeded",
            }}),
        )
    }

    fn server_error_response(
        &self,
        status: StatusCode,
        ctx: &ResponseContext<'_>,
    ) -> http::Response<Bytes> {
        self.generic.server_error_response(status, ctx)
    }

    fn idempotency_error_response(
        &self,
        error: IdempotencyError,
        ctx: &ResponseContext<'_>,
    ) -> http::Response<Bytes> {
        self.generic.idempotency_error_response(error, ctx)
    }

    fn decorate(&self, headers: &mut HeaderMap, ctx: &ResponseContext<'_>) {
        for limit in ctx.limits {
            let name = &*limit.name;
            let mut put = |what: &str, value: HeaderValue| {
                if let Ok(header) = HeaderName::try_from(format!("x-ratelimit-{what}-{name}")) {
                    headers.insert(header, value);
                }
            };
            put("limit", HeaderValue::from(limit.limit));
            put("remaining", HeaderValue::from(limit.remaining));
            if let Ok(value) = HeaderValue::from_str(&go_duration(limit.reset_after)) {
                put("reset", value);
            }
        }
    }
}

/// A duration the way OpenAI writes resets: `12ms`, `1.5s`, `6m0s`.
fn go_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1_000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{}s", d.as_secs_f64())
    } else {
        format!("{}m{}s", ms / 60_000, (ms % 60_000) as f64 / 1_000.0)
    }
}

/// Parses the subset of Go durations [`go_duration`] writes (`h`, `m`, `s`, `ms`).
fn parse_go_duration(text: &str) -> Option<Duration> {
    let mut total = 0.0;
    let mut rest = text.trim();
    while !rest.is_empty() {
        let end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let value: f64 = rest[..end].parse().ok()?;
        rest = &rest[end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "h" => 3_600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            _ => return None,
        };
        total += value * scale;
        rest = &rest[unit_end..];
    }
    Duration::try_from_secs_f64(total).ok()
}

/// The client's side: reads both budgets from the headers and paces them with one GCRA each,
/// configured with the account's published RPM and TPM (as an OpenAI client is configured with
/// its tier).
#[derive(Clone, Debug)]
pub(crate) struct OpenAiLike {
    rpm: u64,
    tpm: u64,
}

impl OpenAiLike {
    pub(crate) fn new(rpm: u64, tpm: u64) -> Self {
        Self { rpm, tpm }
    }
}

fn snapshot(headers: &HeaderMap, budget: BudgetName, at: Timestamp) -> Option<QuotaSnapshot> {
    let read = |what: &str| {
        headers
            .get(format!("x-ratelimit-{what}-{}", budget.as_str()))
            .and_then(|v| v.to_str().ok())
    };
    let remaining: u64 = read("remaining")?.parse().ok()?;
    let limit: Option<u64> = read("limit").and_then(|l| l.parse().ok());
    // OpenAI's reset is when the bucket is *full*; a snapshot's `reset_at` with nothing left
    // means "nothing until then" (the GCRA blocks until it). The next unit arrives after
    // reset ÷ (limit − remaining): one unit's share of the refill.
    let full = parse_go_duration(read("reset")?)?;
    let missing = limit.map_or(1, |l| l.saturating_sub(remaining).max(1));
    let reset = full / u32::try_from(missing).unwrap_or(u32::MAX);
    let snapshot = QuotaSnapshot::new(budget.clone(), remaining, at.after(reset), at.instant);
    Some(match limit {
        Some(limit) => snapshot.with_limit(limit),
        None => snapshot,
    })
}

impl Provider for OpenAiLike {
    const NAME: &'static str = "openai-sim";
    type ApiError = GenericError;

    fn inspect(&self, response: &http::Response<Bytes>, at: Timestamp) -> Inspection {
        let mut inspection = Inspection::new(Verdict::from_status(response.status()));
        for budget in [BudgetName::REQUESTS, BudgetName::TOKENS] {
            if let Some(s) = snapshot(response.headers(), budget, at) {
                inspection = inspection.with_quota(s);
            }
        }
        inspection
    }

    fn idempotency_header(&self) -> Option<HeaderName> {
        Some(HeaderName::from_static("idempotency-key"))
    }

    fn cost(&self, request: &RequestSpec) -> Cost {
        let tokens = request
            .headers
            .get(&TOKENS_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        Cost::request().with(BudgetName::TOKENS, tokens)
    }

    fn default_limiters(&self, clock: &SharedClock) -> Vec<Arc<dyn Limiter>> {
        vec![
            Arc::new(
                GcraLimiter::new(Rate::per_minute(self.rpm))
                    .burst(self.rpm)
                    .budget(BudgetName::REQUESTS)
                    .clock(Arc::clone(clock)),
            ),
            Arc::new(
                GcraLimiter::new(Rate::per_minute(self.tpm))
                    .burst(self.tpm)
                    .budget(BudgetName::TOKENS)
                    .clock(Arc::clone(clock)),
            ),
        ]
    }
}

/// The reset format round-trips (checked once at start-up).
pub(crate) fn go_duration_round_trips() -> bool {
    [
        Duration::from_millis(12),
        Duration::from_millis(1_500),
        Duration::from_secs(360),
    ]
    .into_iter()
    .all(|d| parse_go_duration(&go_duration(d)) == Some(d))
}
