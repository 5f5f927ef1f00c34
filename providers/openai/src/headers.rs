//! OpenAI's header names and formats: the two rate-limit budgets, the retry hints, the ids.
//!
//! | header | sample | read by |
//! |---|---|---|
//! | `x-ratelimit-limit-requests` / `-tokens` | `60`, `150000` | [`RateLimitHeaders::from_headers`] |
//! | `x-ratelimit-remaining-requests` / `-tokens` | `59`, `149984` | same |
//! | `x-ratelimit-reset-requests` / `-tokens` | `1s`, `6m0s` (Go duration) | [`parse_reset`] |
//! | `retry-after-ms`, `retry-after` | `644`, `2` or an HTTP-date | [`ratewise_core::hint::Hint::from_headers`] |
//! | `x-should-retry` | `true` / `false` | [`should_retry`] |
//! | `x-request-id` | `req_…` | [`request_id`] |
//!
//! Every one of them is optional: PROVIDERS.md records responses without the rate-limit headers,
//! and `retry-after-ms`/`x-should-retry` come from the SDKs' shared template, unverified on
//! api.openai.com. Unknown extra headers (the undocumented `*-tokens_usage_based` variants) are
//! ignored: only the exact names above are read.

mod duration;

use std::time::Duration;

use http::{HeaderMap, HeaderName};
use ratewise_core::clock::Timestamp;
use ratewise_core::hint::{header_bytes, parse_should_retry};
use ratewise_core::quota::{BudgetName, QuotaSnapshot};

pub use duration::{format_go_duration, parse_go_duration, parse_iso8601, parse_reset};

/// `x-ratelimit-limit-requests`: requests per minute allowed.
pub const LIMIT_REQUESTS: HeaderName = HeaderName::from_static("x-ratelimit-limit-requests");
/// `x-ratelimit-limit-tokens`: tokens per minute allowed.
pub const LIMIT_TOKENS: HeaderName = HeaderName::from_static("x-ratelimit-limit-tokens");
/// `x-ratelimit-remaining-requests`: requests left before the limit.
pub const REMAINING_REQUESTS: HeaderName =
    HeaderName::from_static("x-ratelimit-remaining-requests");
/// `x-ratelimit-remaining-tokens`: tokens left before the limit.
pub const REMAINING_TOKENS: HeaderName = HeaderName::from_static("x-ratelimit-remaining-tokens");
/// `x-ratelimit-reset-requests`: time until the request budget is whole again (Go duration).
pub const RESET_REQUESTS: HeaderName = HeaderName::from_static("x-ratelimit-reset-requests");
/// `x-ratelimit-reset-tokens`: time until the token budget is whole again (Go duration).
pub const RESET_TOKENS: HeaderName = HeaderName::from_static("x-ratelimit-reset-tokens");
/// `x-should-retry`: the server's retry decision, `true` or `false`.
pub const SHOULD_RETRY: HeaderName = HeaderName::from_static("x-should-retry");
/// `x-request-id`: OpenAI's id of the request, to quote to support.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// `OpenAI-Organization`: the organization a request is billed to.
pub const ORGANIZATION: HeaderName = HeaderName::from_static("openai-organization");
/// `OpenAI-Project`: the project a request is billed to.
pub const PROJECT: HeaderName = HeaderName::from_static("openai-project");

/// One budget's three headers, each `None` when absent or unreadable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BudgetHeaders {
    /// `x-ratelimit-limit-*`.
    pub limit: Option<u64>,
    /// `x-ratelimit-remaining-*`.
    pub remaining: Option<u64>,
    /// `x-ratelimit-reset-*`: how long until the budget is whole again.
    pub reset: Option<Duration>,
}

impl BudgetHeaders {
    fn read(
        headers: &HeaderMap,
        limit: &HeaderName,
        remaining: &HeaderName,
        reset: &HeaderName,
    ) -> Self {
        Self {
            limit: header_bytes(headers, limit).and_then(parse_count),
            remaining: header_bytes(headers, remaining).and_then(parse_count),
            reset: header_bytes(headers, reset).and_then(parse_reset),
        }
    }

    /// This budget as a quota snapshot at `at`, when the response said both what is left and
    /// when it is whole again.
    ///
    /// OpenAI's budgets roll: `limit` per minute, refilled continuously, and the reset header
    /// says when the bucket is *full* again, not when `remaining` runs out. A pacer spreading
    /// `remaining` over that reset settles with the bucket half full and, measured on the
    /// simulator, spends 8 % under the limit. So when the limit is known and something is left,
    /// the snapshot's reset is the sooner of the header's and the time the refill rate
    /// (`limit` per minute) takes to supply `remaining` again: what is left is then spent at
    /// the rate the server refills it. A spent budget (`remaining: 0`) holds callers until one
    /// unit is back (`1/limit` of a minute), not until the bucket is full.
    pub fn snapshot(&self, budget: BudgetName, at: Timestamp) -> Option<QuotaSnapshot> {
        let remaining = self.remaining?;
        let mut reset = self.reset?;
        if let Some(limit) = self.limit.filter(|l| *l > 0) {
            let units = u128::from(remaining.max(1));
            let nanos = units * 60_000_000_000 / u128::from(limit);
            let refill = Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX));
            reset = reset.min(refill);
        }
        let snapshot = QuotaSnapshot::new(budget, remaining, at.after(reset), at.instant);
        Some(match self.limit {
            Some(limit) => snapshot.with_limit(limit),
            None => snapshot,
        })
    }

    /// True when the response says this budget is spent (`remaining: 0`).
    pub fn exhausted(&self) -> bool {
        self.remaining == Some(0)
    }
}

/// Both of OpenAI's per-minute budgets as one response reported them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RateLimitHeaders {
    /// Requests per minute.
    pub requests: BudgetHeaders,
    /// Tokens per minute.
    pub tokens: BudgetHeaders,
}

impl RateLimitHeaders {
    /// Reads the six `x-ratelimit-*` headers; absent or malformed ones are `None`.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        Self {
            requests: BudgetHeaders::read(
                headers,
                &LIMIT_REQUESTS,
                &REMAINING_REQUESTS,
                &RESET_REQUESTS,
            ),
            tokens: BudgetHeaders::read(headers, &LIMIT_TOKENS, &REMAINING_TOKENS, &RESET_TOKENS),
        }
    }

    /// The snapshots of both budgets ([`BudgetName::REQUESTS`], [`BudgetName::TOKENS`]) that the
    /// headers fully describe.
    pub fn snapshots(&self, at: Timestamp) -> impl Iterator<Item = QuotaSnapshot> {
        [
            self.requests.snapshot(BudgetName::REQUESTS, at),
            self.tokens.snapshot(BudgetName::TOKENS, at),
        ]
        .into_iter()
        .flatten()
    }

    /// The wait the reset headers imply for a throttled call: the reset of a budget reported
    /// spent (the longer one when both are), else `None`.
    pub fn exhausted_reset(&self) -> Option<Duration> {
        [self.requests, self.tokens]
            .iter()
            .filter(|b| b.exhausted())
            .filter_map(|b| b.reset)
            .max()
    }
}

/// A count header (`59`, `149984`): ASCII digits, surrounding spaces ignored.
fn parse_count(value: &[u8]) -> Option<u64> {
    let value = value.trim_ascii();
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// `x-should-retry` as a boolean: `Some(true)`, `Some(false)`, or `None` when absent or neither
/// word (case-insensitive, surrounding spaces ignored).
pub fn should_retry(headers: &HeaderMap) -> Option<bool> {
    header_bytes(headers, &SHOULD_RETRY).and_then(parse_should_retry)
}

/// The `x-request-id` of a response, if it carries a readable one.
pub fn request_id(headers: &HeaderMap) -> Option<String> {
    let value = std::str::from_utf8(header_bytes(headers, &REQUEST_ID)?).ok()?;
    let value = value.trim();
    (!value.is_empty()).then(|| value.to_owned())
}

/// The wait in a rate-limit message: "… Please try again in 644ms." or "… in 9.816s." (the
/// form PROVIDERS.md records), as a Go duration.
pub fn try_again_in(message: &str) -> Option<Duration> {
    const MARKER: &str = "try again in ";
    let start = message.find(MARKER)?.checked_add(MARKER.len())?;
    let rest = message.get(start..)?;
    let end = rest
        .find(|c: char| c.is_whitespace() || c == ',' || c == ';' || c == ')')
        .unwrap_or(rest.len());
    let word = rest.get(..end)?.trim_end_matches('.');
    parse_go_duration(word.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use ratewise_core::clock::{Clock, ManualClock};

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    /// The documented sample set (platform.openai.com/docs/guides/rate-limits).
    const SAMPLE: &[(&str, &str)] = &[
        ("x-ratelimit-limit-requests", "60"),
        ("x-ratelimit-limit-tokens", "150000"),
        ("x-ratelimit-remaining-requests", "59"),
        ("x-ratelimit-remaining-tokens", "149984"),
        ("x-ratelimit-reset-requests", "1s"),
        ("x-ratelimit-reset-tokens", "6m0s"),
    ];

    #[test]
    fn the_documented_sample_reads_into_both_budgets() {
        let read = RateLimitHeaders::from_headers(&headers(SAMPLE));
        assert_eq!(
            read.requests,
            BudgetHeaders {
                limit: Some(60),
                remaining: Some(59),
                reset: Some(Duration::from_secs(1))
            }
        );
        assert_eq!(
            read.tokens,
            BudgetHeaders {
                limit: Some(150_000),
                remaining: Some(149_984),
                reset: Some(Duration::from_secs(360))
            }
        );
        let clock = ManualClock::new();
        let at = clock.timestamp();
        let snaps: Vec<_> = read.snapshots(at).collect();
        assert_eq!(snaps.len(), 2);
        assert_eq!(snaps[0].budget, BudgetName::REQUESTS);
        assert_eq!(snaps[0].reset_at, at.instant + Duration::from_secs(1));
        assert_eq!(snaps[1].budget, BudgetName::TOKENS);
        assert_eq!(snaps[1].remaining, 149_984);
        // 149,984 tokens come back at 150,000 a minute in 59.9936 s, sooner than `6m0s`.
        assert_eq!(
            snaps[1].reset_at,
            at.instant + Duration::from_nanos(59_993_600_000)
        );
        assert_eq!(snaps[1].limit, Some(150_000));
        assert_eq!(read.exhausted_reset(), None);
    }

    #[test]
    fn absent_headers_give_no_snapshot_and_extra_variants_are_ignored() {
        let clock = ManualClock::new();
        let none = RateLimitHeaders::from_headers(&HeaderMap::new());
        assert_eq!(none, RateLimitHeaders::default());
        assert_eq!(none.snapshots(clock.timestamp()).count(), 0);
        let odd = headers(&[
            ("x-ratelimit-limit-tokens_usage_based", "40000"),
            ("x-ratelimit-remaining-tokens_usage_based", "0"),
            ("x-ratelimit-reset-tokens_usage_based", "9m"),
            ("x-ratelimit-remaining-tokens", "10"),
            ("x-ratelimit-reset-tokens", "12ms"),
        ]);
        let read = RateLimitHeaders::from_headers(&odd);
        assert_eq!(read.tokens.limit, None);
        assert_eq!(read.tokens.remaining, Some(10));
        let snaps: Vec<_> = read.snapshots(clock.timestamp()).collect();
        assert_eq!(snaps.len(), 1, "only the token budget is fully described");
        assert_eq!(snaps[0].limit, None);
    }

    #[test]
    fn malformed_values_are_dropped_one_by_one() {
        let read = RateLimitHeaders::from_headers(&headers(&[
            ("x-ratelimit-limit-requests", "-1"),
            ("x-ratelimit-remaining-requests", "5O"),
            ("x-ratelimit-reset-requests", "3"),
            ("x-ratelimit-remaining-tokens", " 0 "),
            ("x-ratelimit-reset-tokens", "23h18m29.144s"),
        ]));
        assert_eq!(read.requests, BudgetHeaders::default());
        assert!(read.tokens.exhausted());
        assert_eq!(
            read.exhausted_reset(),
            Some(Duration::from_millis(83_909_144))
        );
    }

    #[test]
    fn should_retry_reads_true_and_false_and_ignores_anything_else() {
        assert_eq!(
            should_retry(&headers(&[("x-should-retry", "true")])),
            Some(true)
        );
        assert_eq!(
            should_retry(&headers(&[("x-should-retry", " FALSE ")])),
            Some(false)
        );
        assert_eq!(should_retry(&headers(&[("x-should-retry", "1")])), None);
        assert_eq!(should_retry(&HeaderMap::new()), None);
    }

    #[test]
    fn request_id_is_read_from_x_request_id() {
        assert_eq!(
            request_id(&headers(&[("x-request-id", "req_abc")])).as_deref(),
            Some("req_abc")
        );
        assert_eq!(request_id(&headers(&[("x-request-id", " ")])), None);
        assert_eq!(request_id(&HeaderMap::new()), None);
    }

    #[test]
    fn the_wait_in_a_rate_limit_message_is_read() {
        let cases: &[(&str, Option<Duration>)] = &[
            (
                "Rate limit reached for gpt-4o in organization org-x on tokens per min (TPM): Limit 30000, Used 29000, Requested 1538. Please try again in 644ms. Visit https://platform.openai.com/account/rate-limits",
                Some(Duration::from_millis(644)),
            ),
            (
                "… Please try again in 9.816s.",
                Some(Duration::from_millis(9_816)),
            ),
            (
                "… Please try again in 1m2.5s.",
                Some(Duration::from_millis(62_500)),
            ),
            (
                "You exceeded your current quota, please check your plan and billing details.",
                None,
            ),
            ("Please try again in soon.", None),
        ];
        for (message, expected) in cases {
            assert_eq!(try_again_in(message), *expected, "{message}");
        }
    }
}
