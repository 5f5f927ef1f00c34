//! [`GitHubProvider`]: how GitHub's responses read, what its calls cost, which limiters apply.
//!
//! # The rules, in order
//!
//! GitHub's docs never say when a rate limit is a `403` and when a `429`, so both are read the
//! same way:
//!
//! 1. **Secondary limit**: `403` or `429` whose `message` mentions a secondary rate limit
//!    (case-insensitive `secondary rate`, or the older `abuse detection`; `documentation_url`
//!    is never matched, it has changed over time). Wait `retry-after` when sent, else
//!    [`DEFAULT_SECONDARY_WAIT`] (60 s); the wait doubles on each repeat (below). Not
//!    processed. Every caller of the client is paused for the wait ([`limits::SECONDARY`]).
//! 2. **Primary limit**: `403` or `429` with `x-ratelimit-remaining: 0`. Wait until
//!    `x-ratelimit-reset` + 1 s (60 s when the reset is missing). Not processed. The
//!    resource's pacer holds every caller of that resource until then.
//! 3. Any other `429`: an unnamed rate limit, read as rule 1 (GitHub's retry rule: "otherwise
//!    wait at least one minute").
//! 4. Any other `403` (permissions, SSO, a blocked account), `401`: never retried
//!    ([`Reason::Unauthorized`]). `404`, `410`, `422`, `409`, `451` and every other 4xx: never
//!    retried ([`Reason::Rejected`]).
//! 5. `5xx`: retried when the request is safe to repeat (GET, PUT, DELETE); GitHub has no
//!    idempotency key, so a POST that failed this way ends with
//!    [`Error::Ambiguous`](ratewise_core::error::Error::Ambiguous) saying a retry could
//!    duplicate it. Rate-limit responses and connection failures are certainly not
//!    processed, so even creates are retried after them.
//!
//! Whether a wait is slept in-process is the call policy's decision: a wait within its
//! [`clamp`](ratewise_core::upstream::CallPolicy::clamp) is slept and the call retried;
//! longer, the call ends with `Error::RetryAfterTooLong` carrying the full wait (until one second
//! past the reset), for a queue to park the job. Callers held by a pacer wait at most their
//! [`max_wait`](ratewise_core::upstream::CallPolicy::max_wait), else get `Error::Throttled`
//! carrying the reset instant and the resource's budget.
//!
//! # Repeats of a secondary limit
//!
//! The provider keeps one escalation level per client. A secondary-limit response that arrives
//! while an earlier pause is still running (a request sent before the pause was known) joins
//! that pause. One that arrives after the pause ended, with no success in between, is a repeat:
//! the level goes up and the wait doubles (`base × 2^level`, level capped at
//! [`MAX_SECONDARY_LEVEL`]). A success of a request sent after the pause resets the level.
//! Attempts per call are the policy's `max_attempts`; a doubled wait past the clamp ends the
//! call at once.
//!
//! # Costs
//!
//! Every request: one of [`limits::CONCURRENT`] and [`limits::SECONDARY`], and one of its
//! resource's primary budget ([`limits::resource_of`]; none for `/rate_limit`). Mutating
//! requests add [`limits::WRITE`], content-creating POSTs [`limits::CONTENT`], searches
//! [`limits::SEARCH`]. A `304 Not Modified` costs no primary budget: GitHub does not count it,
//! and [`actual_cost`](Provider::actual_cost) refunds the pacer.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, Method, StatusCode};
use ratewise_core::clock::{SharedClock, Timestamp};
use ratewise_core::hint::Hint;
use ratewise_core::limit::Limiter;
use ratewise_core::provider::{Provider, RequestSpec};
use ratewise_core::quota::{Cost, QuotaSnapshot};
use ratewise_core::verdict::{Inspection, Reason, Verdict};

use crate::error::GitHubError;
use crate::headers::{self, RateLimit};
use crate::limits::{self, GitHubLimits};

/// The wait after a secondary limit without `retry-after`: 60 s, as GitHub's docs say ("wait
/// at least one minute") and `@octokit/plugin-throttling` does.
pub const DEFAULT_SECONDARY_WAIT: Duration = Duration::from_secs(60);

/// The margin past `x-ratelimit-reset` before the primary budget is used again: 1 s (the reset
/// is rounded to the second; octokit adds the same second).
pub const RESET_MARGIN: Duration = Duration::from_secs(1);

/// The highest escalation level of repeated secondary limits: the wait is at most
/// `base × 2^6` (64 minutes from the 60 s default).
pub const MAX_SECONDARY_LEVEL: u32 = 6;

/// GitHub's dialect for the ratewise pipeline.
///
/// Cheap to clone; clones share the secondary-limit escalation state. Defaults: the
/// avoidance numbers of [`GitHubLimits::new`], a 60 s secondary wait.
#[derive(Clone, Debug)]
pub struct GitHubProvider {
    limits: GitHubLimits,
    secondary_wait: Duration,
    secondary: Arc<Mutex<Escalation>>,
}

/// The secondary-limit escalation: the current level and the end of the running pause.
#[derive(Debug, Default)]
struct Escalation {
    level: u32,
    until: Option<Instant>,
}

impl Default for GitHubProvider {
    fn default() -> Self {
        Self::new(GitHubLimits::new())
    }
}

impl GitHubProvider {
    /// A provider enforcing `limits`.
    pub fn new(limits: GitHubLimits) -> Self {
        Self {
            limits,
            secondary_wait: DEFAULT_SECONDARY_WAIT,
            secondary: Arc::new(Mutex::new(Escalation::default())),
        }
    }

    /// The wait after a secondary limit without `retry-after` (default 60 s).
    pub fn secondary_wait(mut self, wait: Duration) -> Self {
        self.secondary_wait = wait;
        self
    }

    /// The avoidance limits this provider enforces.
    pub fn limits(&self) -> &GitHubLimits {
        &self.limits
    }

    /// The current escalation level of repeated secondary limits (0 after a success).
    pub fn secondary_level(&self) -> u32 {
        self.escalation().level
    }

    fn escalation(&self) -> std::sync::MutexGuard<'_, Escalation> {
        self.secondary
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The wait for a secondary limit seen at `now` (with `retry-after` when sent), updating
    /// the escalation.
    fn secondary_pause(&self, now: Instant, hint: Option<Duration>) -> Duration {
        let mut state = self.escalation();
        let base = hint.unwrap_or(self.secondary_wait);
        let wait = match state.until {
            Some(until) if now < until => until.saturating_duration_since(now).max(base),
            previous => {
                if previous.is_some() {
                    state.level = state.level.saturating_add(1).min(MAX_SECONDARY_LEVEL);
                }
                base.saturating_mul(1 << state.level)
            }
        };
        let until = now.checked_add(wait).unwrap_or(now);
        state.until = Some(state.until.map_or(until, |u| u.max(until)));
        wait
    }

    /// A success at `now`: a request sent after the pause got through.
    fn secondary_cleared(&self, now: Instant) {
        let mut state = self.escalation();
        if state.until.is_some_and(|until| now >= until) {
            *state = Escalation::default();
        }
    }

    /// The snapshot of the response's resource budget: what is left until reset + 1 s.
    fn resource_snapshot(rate: &RateLimit, at: Timestamp) -> Option<QuotaSnapshot> {
        let reset = rate.reset?;
        let snapshot = QuotaSnapshot::new(
            limits::resource(&rate.resource),
            rate.remaining,
            at.instant_at(reset)
                .checked_add(RESET_MARGIN)
                .unwrap_or(at.instant),
            at.instant,
        );
        Some(match rate.limit {
            Some(limit) => snapshot.with_limit(limit),
            None => snapshot,
        })
    }

    fn rate_limited(
        &self,
        response: &http::Response<Bytes>,
        error: Option<&GitHubError>,
        rate: Option<&RateLimit>,
        at: Timestamp,
    ) -> Option<Inspection> {
        let status = response.status().as_u16();
        if status != 403 && status != 429 {
            return None;
        }
        let headers = response.headers();
        let secondary = error.is_some_and(GitHubError::is_secondary_rate_limit);
        if !secondary && headers::primary_exhausted(headers) {
            let wait = rate
                .and_then(|r| r.reset)
                .map(|reset| {
                    reset
                        .duration_since(at.wall)
                        .unwrap_or(Duration::ZERO)
                        .saturating_add(RESET_MARGIN)
                })
                .unwrap_or(DEFAULT_SECONDARY_WAIT);
            let verdict = Verdict::retry(Reason::RateLimited)
                .not_processed()
                .after(Some(wait));
            let mut inspection = Inspection::new(verdict);
            let budget = limits::resource(rate.map_or(headers::DEFAULT_RESOURCE, |r| &r.resource));
            inspection =
                inspection.with_quota(QuotaSnapshot::new(budget, 0, at.after(wait), at.instant));
            return Some(inspection);
        }
        if !secondary && status == 403 {
            return None;
        }
        let hint = retry_after(headers, at);
        let wait = self.secondary_pause(at.instant, hint);
        let verdict = Verdict::retry(Reason::RateLimited)
            .not_processed()
            .after(Some(wait));
        Some(Inspection::new(verdict).with_quota(QuotaSnapshot::new(
            limits::SECONDARY,
            0,
            at.after(wait),
            at.instant,
        )))
    }
}

/// `retry-after` (seconds or an HTTP-date), if readable.
fn retry_after(headers: &HeaderMap, at: Timestamp) -> Option<Duration> {
    Hint::from_headers(headers, at.wall).map(|h| h.wait)
}

fn is_search(path: &str) -> bool {
    path.starts_with("/search/")
}

/// True for a POST that creates content (anything but searches, `/graphql`, `/markdown`).
fn creates_content(request: &RequestSpec) -> bool {
    let path = request.path.split('?').next().unwrap_or(&request.path);
    request.method == Method::POST
        && !is_search(path)
        && path != "/graphql"
        && !path.starts_with("/markdown")
}

impl Provider for GitHubProvider {
    const NAME: &'static str = "github";
    type ApiError = GitHubError;

    fn inspect(&self, response: &http::Response<Bytes>, at: Timestamp) -> Inspection {
        let rate = RateLimit::from_headers(response.headers());
        let status = response.status();
        if status.as_u16() < 400 {
            self.secondary_cleared(at.instant);
            let inspection = Inspection::new(Verdict::Success);
            return match rate.as_ref().and_then(|r| Self::resource_snapshot(r, at)) {
                Some(snapshot) => inspection.with_quota(snapshot),
                None => inspection,
            };
        }
        let error = GitHubError::from_body(response.body());
        if let Some(inspection) = self.rate_limited(response, error.as_ref(), rate.as_ref(), at) {
            return inspection;
        }
        let verdict = match status.as_u16() {
            401 | 403 => Verdict::fail(Reason::Unauthorized),
            400..=499 => Verdict::fail(Reason::Rejected),
            _ => Verdict::from_status(status),
        };
        let inspection = Inspection::new(verdict);
        match rate.as_ref().and_then(|r| Self::resource_snapshot(r, at)) {
            Some(snapshot) => inspection.with_quota(snapshot),
            None => inspection,
        }
    }

    /// One of [`limits::CONCURRENT`], [`limits::SECONDARY`] and the request's resource; plus
    /// [`limits::WRITE`], [`limits::CONTENT`], [`limits::SEARCH`] where they apply.
    fn cost(&self, request: &RequestSpec) -> Cost {
        let path = request.path.split('?').next().unwrap_or(&request.path);
        let mut cost = Cost::none()
            .with(limits::CONCURRENT, 1)
            .with(limits::SECONDARY, 1);
        if let Some(resource) = limits::resource_of(path) {
            cost.add(limits::resource(resource), 1);
        }
        if !matches!(request.method, Method::GET | Method::HEAD | Method::OPTIONS) {
            cost.add(limits::WRITE, 1);
        }
        if creates_content(request) {
            cost.add(limits::CONTENT, 1);
        }
        if is_search(path) {
            cost.add(limits::SEARCH, 1);
        }
        cost
    }

    fn default_limiters(&self, clock: &SharedClock) -> Vec<Arc<dyn Limiter>> {
        self.limits.limiters(clock)
    }

    /// A `304 Not Modified` spent no primary budget: the resource's share is refunded.
    fn actual_cost(&self, request: &RequestSpec, response: &http::Response<Bytes>) -> Option<Cost> {
        if response.status() != StatusCode::NOT_MODIFIED {
            return None;
        }
        let reserved = request.cost.clone().unwrap_or_else(|| self.cost(request));
        let mut actual = Cost::none();
        for (budget, amount) in reserved.iter() {
            if !budget.as_str().starts_with(limits::RESOURCE_PREFIX) {
                actual.add(budget.clone(), amount);
            }
        }
        Some(actual)
    }

    fn decode_error(&self, _status: StatusCode, body: &[u8]) -> Option<GitHubError> {
        GitHubError::from_body(body)
    }

    fn request_id(&self, headers: &HeaderMap) -> Option<String> {
        headers::request_id(headers)
    }

    fn idempotency_header(&self) -> Option<HeaderName> {
        None
    }
}

#[cfg(test)]
mod tests;
