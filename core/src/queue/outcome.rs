//! What one run of a job's handler decided, and how a ratewise [`Error`] maps onto it.
//!
//! | the handler's error | outcome | attempt spent |
//! |---|---|---|
//! | `Api`, retryable, with a known `retry_after` (a 429 or 503 with `Retry-After`) | [`JobOutcome::Park`] for the hint | no |
//! | `RetryAfterTooLong` (a hint beyond the client's clamp) | park for the full hint | no |
//! | `CircuitOpen` (the breaker fails fast until T) | park until T | no |
//! | `Throttled` with a known wait (quota exhausted until T, or a local budget back at T) | park until T | no |
//! | `Api` retryable without a hint, `Timeout`, `Connect`, `Interrupted`, `RetryBudgetExhausted`, `DeadlineExceeded`, `Throttled` with no known wait | [`JobOutcome::Retry`] with the queue's long backoff | yes |
//! | `Api` not retryable (4xx, or the provider said `should-retry: false`), `InvalidRequest`, `Decode`, `Throttled` beyond capacity | [`JobOutcome::Fail`]: dead-letter | yes |
//! | `Ambiguous` | fail: dead-letter | yes |
//!
//! Why parks spend no attempt: the server said when it will accept the work; nothing about the job
//! is wrong, so waiting must not push it towards the dead-letter list. A park holds the job's whole
//! group, since the wait belongs to the credential, not the job.
//!
//! Why `Ambiguous` is dead-lettered: the client only raises it when a request that may have been
//! processed carried no idempotency key (or the upstream honours none). Running the job again
//! could charge a card or send an SMS twice, so the job goes to the dead-letter list with the
//! error, for a person (or a reconciliation against the upstream) to decide; requeue it once the
//! upstream shows it did not happen.
//!
//! Why `Decode` is dead-lettered: the upstream answered with success but the body did not decode;
//! the side effect happened, and a retry would repeat it where keys are not honoured.

use std::fmt;
use std::time::Duration;

use crate::error::{Error, Retryable};

/// What one run of a handler decided.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum JobOutcome {
    /// The job is done.
    Done,
    /// The attempt failed but another may succeed: spends an attempt, then waits `after` (when the
    /// server said) or the queue's backoff. Past the queue's attempt limit the job is
    /// dead-lettered.
    Retry {
        /// The wait the server asked for, if any; otherwise the queue's backoff decides.
        after: Option<Duration>,
        /// What went wrong.
        error: String,
    },
    /// The upstream said "not until T": the job and every job of its group wait `after`; no
    /// attempt is spent and the worker moves on.
    Park {
        /// How long until the upstream accepts work again.
        after: Duration,
        /// What the upstream said.
        error: String,
    },
    /// The job can never succeed as it is: dead-letter it with `error`.
    Fail {
        /// What went wrong.
        error: String,
    },
}

impl JobOutcome {
    /// The job is done.
    pub const fn done() -> Self {
        Self::Done
    }

    /// Try again after the queue's backoff, spending an attempt.
    pub fn retry(error: impl fmt::Display) -> Self {
        Self::Retry {
            after: None,
            error: error.to_string(),
        }
    }

    /// Try again after `after`, spending an attempt.
    pub fn retry_after(after: Duration, error: impl fmt::Display) -> Self {
        Self::Retry {
            after: Some(after),
            error: error.to_string(),
        }
    }

    /// Hold the job and its group for `after`, spending no attempt.
    pub fn park(after: Duration, error: impl fmt::Display) -> Self {
        Self::Park {
            after,
            error: error.to_string(),
        }
    }

    /// Dead-letter the job with `error`.
    pub fn fail(error: impl fmt::Display) -> Self {
        Self::Fail {
            error: error.to_string(),
        }
    }

    /// Classifies any [`Retryable`] error: not retryable → fail; retryable with a known wait →
    /// park for it; retryable without one → retry with backoff.
    ///
    /// Use it for your own error types; [`Error`] converts with `From` and its finer mapping (see
    /// the module docs).
    pub fn from_retryable<E: Retryable + fmt::Display + ?Sized>(error: &E) -> Self {
        if !error.is_retryable() {
            return Self::fail(error);
        }
        match error.retry_after() {
            Some(after) => Self::park(after, error),
            None => Self::retry(error),
        }
    }

    /// A short label for telemetry: `done`, `retry`, `park`, `fail`.
    pub const fn label(&self) -> &'static str {
        match self {
            Self::Done => "done",
            Self::Retry { .. } => "retry",
            Self::Park { .. } => "park",
            Self::Fail { .. } => "fail",
        }
    }
}

impl<A: fmt::Display> From<Error<A>> for JobOutcome {
    fn from(error: Error<A>) -> Self {
        match &error {
            Error::Api {
                retryable: true,
                retry_after: Some(after),
                ..
            } => Self::park(*after, &error),
            Error::Api {
                retryable: true, ..
            } => Self::retry(&error),
            Error::Api { .. } => Self::fail(&error),
            Error::RetryAfterTooLong { hint, .. } => Self::park(hint.wait, &error),
            Error::CircuitOpen { wait, .. } => Self::park(*wait, &error),
            Error::Throttled { .. } => Self::from_retryable(&error),
            Error::RetryBudgetExhausted { .. }
            | Error::DeadlineExceeded { .. }
            | Error::Timeout { .. }
            | Error::Connect { .. }
            | Error::Interrupted { .. } => Self::retry(&error),
            Error::Ambiguous { .. } | Error::InvalidRequest { .. } | Error::Decode { .. } => {
                Self::fail(&error)
            }
        }
    }
}

impl From<()> for JobOutcome {
    fn from((): ()) -> Self {
        Self::Done
    }
}

/// `Ok(_)` is done; `Err(e)` is classified as `e` converts (a ratewise [`Error`] by the table in
/// the module docs), so a handler can end with the client's result.
impl<T, E> From<Result<T, E>> for JobOutcome
where
    JobOutcome: From<E>,
{
    fn from(result: Result<T, E>) -> Self {
        match result {
            Ok(_) => Self::Done,
            Err(error) => Self::from(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use http::StatusCode;

    use super::*;
    use crate::clock::Clock as _;
    use crate::hint::Clamp;
    use crate::limit::{BudgetName, ThrottleReason, Throttled};

    type E = Error<String>;

    fn api(status: u16) -> E {
        Error::api(
            "stripe",
            StatusCode::from_u16(status).unwrap(),
            "boom".into(),
        )
    }

    fn kind(outcome: &JobOutcome) -> &'static str {
        outcome.label()
    }

    #[test]
    fn a_429_with_a_hint_parks_and_without_one_retries() {
        let parked = JobOutcome::from(api(429).with_retry_after(Duration::from_secs(30)));
        assert_eq!(
            parked,
            JobOutcome::park(
                Duration::from_secs(30),
                api(429).with_retry_after(Duration::from_secs(30))
            )
        );
        assert_eq!(kind(&JobOutcome::from(api(429))), "retry");
        assert_eq!(kind(&JobOutcome::from(api(503))), "retry");
    }

    #[test]
    fn client_errors_fail_and_provider_overrides_are_respected() {
        assert_eq!(kind(&JobOutcome::from(api(400))), "fail");
        assert_eq!(kind(&JobOutcome::from(api(404))), "fail");
        assert_eq!(
            kind(&JobOutcome::from(api(500).with_retryable(false))),
            "fail"
        );
        assert_eq!(
            kind(&JobOutcome::from(api(409).with_retryable(true))),
            "retry"
        );
    }

    #[test]
    fn server_said_wait_errors_park_for_the_full_wait() {
        let now = crate::clock::ManualClock::new().now();
        let open: E = Error::circuit_open("github", now + Duration::from_secs(90), now);
        assert_eq!(
            JobOutcome::from(open),
            JobOutcome::Park {
                after: Duration::from_secs(90),
                error: Error::<String>::circuit_open("github", now + Duration::from_secs(90), now)
                    .to_string()
            }
        );

        let hint = Clamp::default()
            .apply(Duration::from_secs(3600))
            .unwrap_err();
        match JobOutcome::from(E::retry_after_too_long("github", hint)) {
            JobOutcome::Park { after, .. } => assert_eq!(after, Duration::from_secs(3600)),
            other => panic!("{other:?}"),
        }

        let quota = Throttled::new(
            BudgetName::TOKENS,
            ThrottleReason::QuotaExhausted,
            Some(now + Duration::from_secs(40)),
        );
        match JobOutcome::from(E::throttled("openai", quota, now)) {
            JobOutcome::Park { after, .. } => assert_eq!(after, Duration::from_secs(40)),
            other => panic!("{other:?}"),
        }
        let never = Throttled::new(BudgetName::TOKENS, ThrottleReason::ExceedsCapacity, None);
        assert_eq!(
            kind(&JobOutcome::from(E::throttled("openai", never, now))),
            "fail"
        );
        let timed_out = Throttled::new(BudgetName::REQUESTS, ThrottleReason::TimedOut, None);
        assert_eq!(
            kind(&JobOutcome::from(E::throttled("openai", timed_out, now))),
            "retry"
        );
    }

    #[test]
    fn transient_failures_retry_and_ambiguous_or_undecodable_ones_dead_letter() {
        for transient in [
            E::timeout("x"),
            E::connect("x", "refused"),
            E::interrupted("x", "reset"),
            E::retry_budget_exhausted("x", 3),
            E::deadline_exceeded("x", 2),
        ] {
            assert_eq!(kind(&JobOutcome::from(transient)), "retry");
        }
        for permanent in [
            E::ambiguous("x", "reset after send"),
            E::invalid_request("x", "bad path"),
            E::decode("x", b"<html>", "expected value"),
        ] {
            assert_eq!(kind(&JobOutcome::from(permanent)), "fail");
        }
        match JobOutcome::from(E::ambiguous("twilio", "reset after send")) {
            JobOutcome::Fail { error } => assert!(error.contains("a retry could duplicate")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_handler_result_converts_ok_to_done_and_err_by_its_error() {
        let ok: Result<u32, E> = Ok(7);
        assert_eq!(JobOutcome::from(ok), JobOutcome::Done);
        let err: Result<u32, E> = Err(api(422));
        assert_eq!(kind(&JobOutcome::from(err)), "fail");
    }

    #[test]
    fn own_retryable_errors_classify_by_retryability_and_hint() {
        let io = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert_eq!(kind(&JobOutcome::from_retryable(&io)), "retry");
        let io = std::io::Error::from(std::io::ErrorKind::NotFound);
        assert_eq!(kind(&JobOutcome::from_retryable(&io)), "fail");
    }
}
