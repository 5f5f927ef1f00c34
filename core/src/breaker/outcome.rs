//! What counts: the outcome a permit records, and the rule that derives it from a call.

use std::sync::Arc;

use http::StatusCode;

/// What one admitted call means to the breaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Outcome {
    /// The upstream handled the call (any response that is not an outage signal, 4xx included).
    Success,
    /// The upstream is failing: a server error, a timeout, a connection failure, or a slow call.
    Failure,
    /// Says nothing about the upstream's health (cancelled, or decided locally): not counted.
    /// A half-open probe recorded as ignored frees its slot for another probe.
    Ignored,
}

/// What happened to one call, as the breaker's failure predicate sees it.
///
/// The upstream pipeline builds one per attempt and turns it into an [`Outcome`] with
/// [`BreakerConfig::classify`](super::BreakerConfig::classify) (or records it directly with
/// [`BreakerPermit::record_call`](super::BreakerPermit::record_call)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CallOutcome {
    /// The server answered with this status.
    Status(StatusCode),
    /// No answer within the attempt's timeout.
    Timeout,
    /// The connection could not be established (DNS, refused, TLS handshake).
    Connect,
    /// The connection failed after it was established (reset, truncated body).
    Transport,
}

impl CallOutcome {
    /// The outcome of a response with `status`.
    pub const fn from_status(status: StatusCode) -> Self {
        Self::Status(status)
    }
}

impl From<StatusCode> for CallOutcome {
    fn from(status: StatusCode) -> Self {
        Self::Status(status)
    }
}

/// A rule deciding whether a [`CallOutcome`] counts as a failure; what it rejects counts as a
/// success.
pub type FailurePredicate = Arc<dyn Fn(&CallOutcome) -> bool + Send + Sync>;

/// The default failure rule: server errors (5xx), timeouts and connection or transport
/// failures count; every other status does not, 4xx included.
///
/// 429 in particular is not an outage: the server is up and asking us to slow down, which is
/// the limiters' job. Counting it would open the breaker exactly when the pacer needs responses
/// to learn the quota from.
pub fn counts_as_failure(outcome: &CallOutcome) -> bool {
    match outcome {
        CallOutcome::Status(status) => status.is_server_error(),
        CallOutcome::Timeout | CallOutcome::Connect | CallOutcome::Transport => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_timeouts_and_connection_failures_count_as_failures() {
        for status in [500, 502, 503, 504, 599] {
            let status = StatusCode::from_u16(status).unwrap();
            assert!(
                counts_as_failure(&CallOutcome::from_status(status)),
                "{status}"
            );
        }
        assert!(counts_as_failure(&CallOutcome::Timeout));
        assert!(counts_as_failure(&CallOutcome::Connect));
        assert!(counts_as_failure(&CallOutcome::Transport));
    }

    #[test]
    fn client_errors_including_429_do_not_count_as_failures() {
        for status in [200, 201, 301, 400, 401, 404, 409, 422, 429] {
            let status = StatusCode::from_u16(status).unwrap();
            assert!(!counts_as_failure(&status.into()), "{status}");
        }
    }
}
