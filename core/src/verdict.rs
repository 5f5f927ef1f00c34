//! What one response means, as data: success, retry (after how long, why), or fail (why).
//!
//! A provider reads a response and returns an [`Inspection`]: a [`Verdict`] plus the quota
//! snapshots its headers carried. The decision is a value, not control flow buried in a loop
//! (smithy-rs's `RetryAction`), so tests assert on it and telemetry labels with its [`Reason`].

use std::fmt;
use std::time::Duration;

use http::StatusCode;

use crate::quota::QuotaSnapshot;

/// Why a call is retried or failed: the `reason` label in telemetry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reason {
    /// The server throttled the call (429, or the provider's equivalent such as GitHub's 403
    /// with `x-ratelimit-remaining: 0`). Pace, then retry.
    RateLimited,
    /// The account's quota or credit is spent (OpenAI `insufficient_quota`, SendGrid "Maximum
    /// credits exceeded"). Billing, not pacing: retrying will not help.
    QuotaExhausted,
    /// The server failed (5xx).
    ServerError,
    /// No response within the per-attempt timeout.
    Timeout,
    /// The connection could not be established (the request was not sent).
    Connect,
    /// The connection broke after the request was sent.
    Interrupted,
    /// The server reported a conflict with a concurrent request (409, a request with the same
    /// idempotency key still in flight).
    Conflict,
    /// The object is locked by another request (Stripe `lock_timeout`): retry shortly.
    Contention,
    /// The server said to retry (`x-should-retry: true`, `Stripe-Should-Retry: true`).
    ServerRequested,
    /// The server said not to retry (`x-should-retry: false`, `Stripe-Should-Retry: false`).
    ServerRefused,
    /// The credentials were rejected or lack permission (401, 403 that is not a rate limit).
    Unauthorized,
    /// The request was rejected as invalid (other 4xx): fix the request, don't retry it.
    Rejected,
}

impl Reason {
    /// The label used in telemetry (`retry.reason`, `ratewise_retries_total{reason}`).
    pub const fn as_str(&self) -> &'static str {
        match self {
            Reason::RateLimited => "rate_limited",
            Reason::QuotaExhausted => "quota_exhausted",
            Reason::ServerError => "server_error",
            Reason::Timeout => "timeout",
            Reason::Connect => "connect",
            Reason::Interrupted => "interrupted",
            Reason::Conflict => "conflict",
            Reason::Contention => "contention",
            Reason::ServerRequested => "server_requested",
            Reason::ServerRefused => "server_refused",
            Reason::Unauthorized => "unauthorized",
            Reason::Rejected => "rejected",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a failed request may have been processed by the server.
///
/// A non-idempotent request without an idempotency key is retried only when the failure was
/// [`Processing::NotProcessed`]: the server's own guarantee (Stripe and Twilio document that a
/// 429 was not processed) or a connection that never opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Processing {
    /// The request certainly had no effect.
    NotProcessed,
    /// The request may have had an effect (5xx, timeout after sending, broken connection).
    Maybe,
}

/// What one response means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// The call succeeded; decode the body.
    Success,
    /// The call failed in a way a later attempt may fix.
    Retry {
        /// The server's hint of how long to wait (`Retry-After`, a reset header); `None` means
        /// "use the local backoff".
        after: Option<Duration>,
        /// Why.
        reason: Reason,
        /// Whether the failed attempt may have had an effect.
        processing: Processing,
    },
    /// The call failed in a way retrying will not fix.
    Fail {
        /// Why.
        reason: Reason,
    },
}

impl Verdict {
    /// A retry for `reason`, without a hint, that may have been processed.
    pub const fn retry(reason: Reason) -> Self {
        Verdict::Retry {
            after: None,
            reason,
            processing: Processing::Maybe,
        }
    }

    /// A permanent failure for `reason`.
    pub const fn fail(reason: Reason) -> Self {
        Verdict::Fail { reason }
    }

    /// This verdict with the server's wait hint (no effect on success or failure).
    pub const fn after(self, wait: Option<Duration>) -> Self {
        match self {
            Verdict::Retry {
                reason, processing, ..
            } => Verdict::Retry {
                after: wait,
                reason,
                processing,
            },
            other => other,
        }
    }

    /// This verdict marked as certainly not processed (no effect on success or failure).
    pub const fn not_processed(self) -> Self {
        match self {
            Verdict::Retry { after, reason, .. } => Verdict::Retry {
                after,
                reason,
                processing: Processing::NotProcessed,
            },
            other => other,
        }
    }

    /// The generic reading of an HTTP status, for upstreams with no dialect of their own.
    ///
    /// 1xx–3xx: success (a 304 is a success: the cached body applies). 408, 409: retry.
    /// 429: retry, not processed (RFC 6585: the request was refused). 5xx: retry, maybe
    /// processed. 401, 403: unauthorized. Other 4xx: rejected.
    pub fn from_status(status: StatusCode) -> Self {
        match status.as_u16() {
            100..=399 => Verdict::Success,
            408 => Verdict::retry(Reason::Timeout),
            409 => Verdict::retry(Reason::Conflict),
            429 => Verdict::retry(Reason::RateLimited).not_processed(),
            401 | 403 => Verdict::fail(Reason::Unauthorized),
            400..=499 => Verdict::fail(Reason::Rejected),
            _ => Verdict::retry(Reason::ServerError),
        }
    }

    /// This verdict overridden by the server's own retry decision (`x-should-retry`,
    /// `Stripe-Should-Retry`), when it sent one.
    ///
    /// `Some(true)` keeps a retry as it is and turns a failure into a retry for
    /// [`Reason::ServerRequested`]; `Some(false)` keeps a failure as it is and turns a retry into
    /// a failure for [`Reason::ServerRefused`]; `None` changes nothing. A success stays a success.
    pub const fn obey_server(self, should_retry: Option<bool>) -> Self {
        match (should_retry, self) {
            (None, v)
            | (_, v @ Verdict::Success)
            | (Some(true), v @ Verdict::Retry { .. })
            | (Some(false), v @ Verdict::Fail { .. }) => v,
            (Some(true), Verdict::Fail { .. }) => Verdict::retry(Reason::ServerRequested),
            (Some(false), Verdict::Retry { .. }) => Verdict::fail(Reason::ServerRefused),
        }
    }

    /// The reason, unless this is a success.
    pub const fn reason(&self) -> Option<Reason> {
        match self {
            Verdict::Success => None,
            Verdict::Retry { reason, .. } | Verdict::Fail { reason } => Some(*reason),
        }
    }
}

/// A provider's reading of one response: the verdict and the quota its headers reported.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Inspection {
    /// What the response means.
    pub verdict: Verdict,
    /// Each budget's state as the headers reported it (possibly none).
    pub quotas: Vec<QuotaSnapshot>,
}

impl Inspection {
    /// An inspection with no quota information.
    pub fn new(verdict: Verdict) -> Self {
        Self {
            verdict,
            quotas: Vec::new(),
        }
    }

    /// This inspection with one more quota snapshot.
    pub fn with_quota(mut self, snapshot: QuotaSnapshot) -> Self {
        self.quotas.push(snapshot);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> StatusCode {
        StatusCode::from_u16(code).unwrap()
    }

    #[test]
    fn generic_statuses_read_as_http_says() {
        assert_eq!(Verdict::from_status(status(200)), Verdict::Success);
        assert_eq!(Verdict::from_status(status(304)), Verdict::Success);
        assert_eq!(
            Verdict::from_status(status(429)),
            Verdict::Retry {
                after: None,
                reason: Reason::RateLimited,
                processing: Processing::NotProcessed
            }
        );
        assert_eq!(
            Verdict::from_status(status(503)),
            Verdict::retry(Reason::ServerError)
        );
        assert_eq!(
            Verdict::from_status(status(408)),
            Verdict::retry(Reason::Timeout)
        );
        assert_eq!(
            Verdict::from_status(status(409)),
            Verdict::retry(Reason::Conflict)
        );
        assert_eq!(
            Verdict::from_status(status(401)),
            Verdict::fail(Reason::Unauthorized)
        );
        assert_eq!(
            Verdict::from_status(status(400)),
            Verdict::fail(Reason::Rejected)
        );
        assert_eq!(
            Verdict::from_status(status(422)),
            Verdict::fail(Reason::Rejected)
        );
    }

    #[test]
    fn a_hint_attaches_to_a_retry_and_never_to_a_success_or_failure() {
        let wait = Some(Duration::from_secs(3));
        assert_eq!(
            Verdict::retry(Reason::RateLimited).after(wait),
            Verdict::Retry {
                after: wait,
                reason: Reason::RateLimited,
                processing: Processing::Maybe
            }
        );
        assert_eq!(Verdict::Success.after(wait), Verdict::Success);
        assert_eq!(
            Verdict::fail(Reason::Rejected).not_processed(),
            Verdict::fail(Reason::Rejected)
        );
    }

    #[test]
    fn the_servers_retry_decision_overrides_the_status_but_never_a_success() {
        let retry = Verdict::retry(Reason::RateLimited);
        let fail = Verdict::fail(Reason::Rejected);
        assert_eq!(retry.obey_server(None), retry);
        assert_eq!(retry.obey_server(Some(true)), retry);
        assert_eq!(
            retry.obey_server(Some(false)),
            Verdict::fail(Reason::ServerRefused)
        );
        assert_eq!(fail.obey_server(Some(false)), fail);
        assert_eq!(
            fail.obey_server(Some(true)),
            Verdict::retry(Reason::ServerRequested)
        );
        assert_eq!(Verdict::Success.obey_server(Some(false)), Verdict::Success);
    }

    #[test]
    fn reason_labels_are_snake_case_and_distinct() {
        let all = [
            Reason::RateLimited,
            Reason::QuotaExhausted,
            Reason::ServerError,
            Reason::Timeout,
            Reason::Connect,
            Reason::Interrupted,
            Reason::Conflict,
            Reason::Contention,
            Reason::ServerRequested,
            Reason::ServerRefused,
            Reason::Unauthorized,
            Reason::Rejected,
        ];
        let labels: std::collections::HashSet<_> = all.iter().map(Reason::as_str).collect();
        assert_eq!(labels.len(), all.len());
        assert!(
            labels
                .iter()
                .all(|l| l.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        );
    }
}
