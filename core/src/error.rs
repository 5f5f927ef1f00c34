//! The core error type [`Error`] and the [`Retryable`] trait every error answers.
//!
//! Every error ratewise returns says whether trying again can help ([`Retryable::is_retryable`])
//! and, when it knows, after how long ([`Retryable::retry_after`]). The retry loop
//! ([`crate::retry`]) reads both, so errors that implement [`Retryable`] need no configuration;
//! a queue above the client reads them to park a job until the wait is over instead of spinning
//! a worker.
//!
//! [`Error`] is the pipeline's error, generic over the provider's typed API error `A` (OpenAI's
//! `{"error":{…}}`, Stripe's `{"error":{type,code,…}}`, …); each provider crate aliases it. Its
//! `Display` says what happened, to which upstream, and what to do:
//! `stripe: HTTP 429 Too Many Requests: rate limited (request req_123); retry after 1.2s`.
//! Neither `Display` nor `Debug` ever contains a credential: errors carry no request headers.

use std::fmt;
use std::time::{Duration, Instant};

use http::StatusCode;

use crate::hint::HintTooLong;
use crate::idempotency::IdempotencyKey;
use crate::limit::{ThrottleReason, Throttled};
use crate::verdict::{Reason, Verdict};

/// An error that knows whether trying again can help, and when.
///
/// Implement it on your own error type and [`crate::retry::RetryPolicy::retry`] classifies it
/// without any configuration.
///
/// ```
/// use std::time::Duration;
/// use ratewise_core::error::Retryable;
///
/// #[derive(Debug)]
/// enum FetchError { Busy { wait: Duration }, NotFound }
///
/// impl Retryable for FetchError {
///     fn is_retryable(&self) -> bool {
///         matches!(self, FetchError::Busy { .. })
///     }
///     fn retry_after(&self) -> Option<Duration> {
///         match self {
///             FetchError::Busy { wait } => Some(*wait),
///             FetchError::NotFound => None,
///         }
///     }
///     fn reason(&self) -> &'static str {
///         match self {
///             FetchError::Busy { .. } => "busy",
///             FetchError::NotFound => "not_found",
///         }
///     }
/// }
/// assert!(FetchError::Busy { wait: Duration::from_secs(1) }.is_retryable());
/// ```
pub trait Retryable {
    /// True when trying the same operation again may succeed (a 429, a 503, a reset connection).
    fn is_retryable(&self) -> bool;

    /// How long the server (or a local mechanism) asked to wait before trying again, if it said.
    ///
    /// A hint beats local backoff. Default: `None` (use backoff).
    fn retry_after(&self) -> Option<Duration> {
        None
    }

    /// A short, stable, low-cardinality label for telemetry (`retry.reason`): `rate_limited`,
    /// `server_error`, `timeout`, … Default: `"error"`.
    fn reason(&self) -> &'static str {
        "error"
    }
}

impl<T: Retryable + ?Sized> Retryable for &T {
    fn is_retryable(&self) -> bool {
        (**self).is_retryable()
    }
    fn retry_after(&self) -> Option<Duration> {
        (**self).retry_after()
    }
    fn reason(&self) -> &'static str {
        (**self).reason()
    }
}

impl<T: Retryable + ?Sized> Retryable for Box<T> {
    fn is_retryable(&self) -> bool {
        (**self).is_retryable()
    }
    fn retry_after(&self) -> Option<Duration> {
        (**self).retry_after()
    }
    fn reason(&self) -> &'static str {
        (**self).reason()
    }
}

/// I/O errors: transient kinds (timeouts, resets, refused or aborted connections, interrupts)
/// are retryable; everything else (not found, permission denied, invalid data, …) is not.
impl Retryable for std::io::Error {
    fn is_retryable(&self) -> bool {
        use std::io::ErrorKind as K;
        matches!(
            self.kind(),
            K::TimedOut
                | K::Interrupted
                | K::WouldBlock
                | K::ConnectionReset
                | K::ConnectionRefused
                | K::ConnectionAborted
                | K::BrokenPipe
                | K::UnexpectedEof
        )
    }

    fn reason(&self) -> &'static str {
        use std::io::ErrorKind as K;
        match self.kind() {
            K::TimedOut => "timeout",
            K::ConnectionReset | K::ConnectionRefused | K::ConnectionAborted | K::BrokenPipe => {
                "connect"
            }
            _ => "io",
        }
    }
}

/// A hint longer than the clamp: retryable, after the full wait the server asked for.
impl Retryable for HintTooLong {
    fn is_retryable(&self) -> bool {
        true
    }
    fn retry_after(&self) -> Option<Duration> {
        Some(self.wait)
    }
    fn reason(&self) -> &'static str {
        "retry_after_too_long"
    }
}

/// The most bytes of an undecodable body kept in [`Error::Decode`]: 4 KiB.
///
/// Enough to see what the server actually said at 3 AM, small enough that a multi-megabyte HTML
/// error page does not end up in every log line.
pub const DECODE_BODY_CAP: usize = 4096;

/// The core error type: what went wrong with one logical call to one upstream.
///
/// Generic over `A`, the provider's typed API error body. Every variant names its `upstream`
/// (`"openai"`, `"stripe"`, …, `"custom"` for plain closures), so `Display` reads
/// `stripe: …; what to do`. Build values with the constructors ([`Error::api`],
/// [`Error::timeout`], …): variants may gain fields. Implements [`Retryable`], so the queue
/// above can ask when to try again.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error<A> {
    /// The server answered with an error status (and, when it decoded, a typed error body).
    #[non_exhaustive]
    Api {
        /// The upstream that answered.
        upstream: &'static str,
        /// The idempotency key every attempt of the call sent, if it had one: retry or
        /// redeliver with the same key and the upstream will not repeat the side effect.
        idempotency_key: Option<IdempotencyKey>,
        /// The HTTP status.
        status: StatusCode,
        /// The provider's typed error body, when the body decoded as one.
        error: Option<A>,
        /// The start of the body (at most [`DECODE_BODY_CAP`] bytes, lossy UTF-8) when it did
        /// not decode as the typed error: what the server actually said (an HTML 502 page, …).
        body: Option<String>,
        /// Why the call failed, as the provider read the response.
        reason: Reason,
        /// The provider's request id (`x-request-id`, `request-id`, …), for support tickets.
        request_id: Option<String>,
        /// The wait the server asked for (`Retry-After`, a reset header), if any.
        retry_after: Option<Duration>,
        /// Whether the server (or the status) says a retry can succeed. Defaults from the
        /// status (408, 429, 5xx except 501); providers override it from their own signals
        /// (`x-should-retry`, `Stripe-Should-Retry`).
        retryable: bool,
    },
    /// A client-side limiter refused the call: the local budget is spent until `wait` passes.
    #[non_exhaustive]
    Throttled {
        /// The upstream whose budget refused.
        upstream: &'static str,
        /// The idempotency key every attempt of the call sent, if it had one: retry or
        /// redeliver with the same key and the upstream will not repeat the side effect.
        idempotency_key: Option<IdempotencyKey>,
        /// Which budget, why, and until when.
        throttled: Throttled,
        /// How long until capacity returns, measured when the error was raised.
        wait: Option<Duration>,
    },
    /// The circuit breaker is open: the upstream has been failing, calls fail fast until `until`.
    #[non_exhaustive]
    CircuitOpen {
        /// The upstream whose breaker is open.
        upstream: &'static str,
        /// The idempotency key every attempt of the call sent, if it had one: retry or
        /// redeliver with the same key and the upstream will not repeat the side effect.
        idempotency_key: Option<IdempotencyKey>,
        /// When the breaker lets a probe through.
        until: Instant,
        /// How long that was from when the error was raised.
        wait: Duration,
    },
    /// The server asked for a wait longer than the clamp; the full wait is in `hint.wait`.
    #[non_exhaustive]
    RetryAfterTooLong {
        /// The upstream that asked.
        upstream: &'static str,
        /// The idempotency key every attempt of the call sent, if it had one: retry or
        /// redeliver with the same key and the upstream will not repeat the side effect.
        idempotency_key: Option<IdempotencyKey>,
        /// The full wait and the clamp that refused it.
        hint: HintTooLong,
    },
    /// The retry budget refused another retry: the upstream is failing for many callers at
    /// once, and more retries would only add load.
    #[non_exhaustive]
    RetryBudgetExhausted {
        /// The upstream being retried.
        upstream: &'static str,
        /// The idempotency key every attempt of the call sent, if it had one: retry or
        /// redeliver with the same key and the upstream will not repeat the side effect.
        idempotency_key: Option<IdempotencyKey>,
        /// Attempts made before giving up.
        attempts: u32,
    },
    /// The caller's deadline for the whole call left no time for another attempt.
    #[non_exhaustive]
    DeadlineExceeded {
        /// The upstream being called.
        upstream: &'static str,
        /// The idempotency key every attempt of the call sent, if it had one: retry or
        /// redeliver with the same key and the upstream will not repeat the side effect.
        idempotency_key: Option<IdempotencyKey>,
        /// Attempts made before giving up.
        attempts: u32,
    },
    /// One attempt took longer than its timeout, and the request is known to be safe to
    /// repeat (idempotent, or carrying an idempotency key).
    #[non_exhaustive]
    Timeout {
        /// The upstream that did not answer in time.
        upstream: &'static str,
        /// The idempotency key every attempt of the call sent, if it had one: retry or
        /// redeliver with the same key and the upstream will not repeat the side effect.
        idempotency_key: Option<IdempotencyKey>,
    },
    /// The connection could not be established: nothing was sent, a retry is safe.
    #[non_exhaustive]
    Connect {
        /// The upstream that could not be reached.
        upstream: &'static str,
        /// The idempotency key every attempt of the call sent, if it had one: retry or
        /// redeliver with the same key and the upstream will not repeat the side effect.
        idempotency_key: Option<IdempotencyKey>,
        /// What the transport said.
        message: String,
    },
    /// The connection broke after the request was sent, and the request is known to be safe to
    /// repeat (idempotent, or carrying an idempotency key).
    #[non_exhaustive]
    Interrupted {
        /// The upstream whose connection broke.
        upstream: &'static str,
        /// The idempotency key every attempt of the call sent, if it had one: retry or
        /// redeliver with the same key and the upstream will not repeat the side effect.
        idempotency_key: Option<IdempotencyKey>,
        /// What the transport said.
        message: String,
    },
    /// The request failed after it may have been processed, and it carries no idempotency key:
    /// a retry could duplicate the side effect (a second charge, a second SMS), so none was made.
    #[non_exhaustive]
    Ambiguous {
        /// The upstream that may have processed the request.
        upstream: &'static str,
        /// The idempotency key every attempt of the call sent, if it had one: retry or
        /// redeliver with the same key and the upstream will not repeat the side effect.
        idempotency_key: Option<IdempotencyKey>,
        /// What the transport said.
        message: String,
    },
    /// The request could not be built (a malformed path or header); sending it again will not
    /// help.
    #[non_exhaustive]
    InvalidRequest {
        /// The upstream the request was for.
        upstream: &'static str,
        /// The idempotency key every attempt of the call sent, if it had one: retry or
        /// redeliver with the same key and the upstream will not repeat the side effect.
        idempotency_key: Option<IdempotencyKey>,
        /// What was wrong.
        message: String,
    },
    /// The response could not be decoded; `body` keeps the first [`DECODE_BODY_CAP`] bytes of
    /// what the server actually sent (lossy UTF-8).
    #[non_exhaustive]
    Decode {
        /// The upstream whose response did not decode.
        upstream: &'static str,
        /// The idempotency key every attempt of the call sent, if it had one: retry or
        /// redeliver with the same key and the upstream will not repeat the side effect.
        idempotency_key: Option<IdempotencyKey>,
        /// The start of the body, at most [`DECODE_BODY_CAP`] bytes.
        body: String,
        /// What the decoder said.
        message: String,
    },
}

impl<A> Error<A> {
    /// An API error from `status` and the typed body `error`; retryability and reason default
    /// from the status (408, 429 and 5xx except 501 are retryable), with no request id or hint.
    pub fn api(upstream: &'static str, status: StatusCode, error: A) -> Self {
        Self::from_status(upstream, status, Some(error), None)
    }

    /// An API error whose body did not decode as the provider's typed error; keeps the first
    /// [`DECODE_BODY_CAP`] bytes of `body` so the reader sees what the server said.
    pub fn api_undecoded(upstream: &'static str, status: StatusCode, body: &[u8]) -> Self {
        Self::from_status(upstream, status, None, Some(capped_text(body)))
    }

    fn from_status(
        upstream: &'static str,
        status: StatusCode,
        error: Option<A>,
        body: Option<String>,
    ) -> Self {
        let retryable = status == StatusCode::REQUEST_TIMEOUT
            || status == StatusCode::TOO_MANY_REQUESTS
            || (status.is_server_error() && status != StatusCode::NOT_IMPLEMENTED);
        let reason = Verdict::from_status(status)
            .reason()
            .unwrap_or(Reason::Rejected);
        Self::Api {
            upstream,
            idempotency_key: None,
            status,
            error,
            body,
            reason,
            request_id: None,
            retry_after: None,
            retryable,
        }
    }

    /// This error with the provider's reading of why it failed (an [`Error::Api`]; others are
    /// unchanged).
    pub fn with_reason(mut self, why: Reason) -> Self {
        if let Self::Api { reason, .. } = &mut self {
            *reason = why;
        }
        self
    }

    /// This error with the provider's request id (an [`Error::Api`]; others are unchanged).
    pub fn with_request_id(mut self, id: impl Into<String>) -> Self {
        if let Self::Api { request_id, .. } = &mut self {
            *request_id = Some(id.into());
        }
        self
    }

    /// This error with the server's wait hint (an [`Error::Api`]; others are unchanged).
    pub fn with_retry_after(mut self, wait: Duration) -> Self {
        if let Self::Api { retry_after, .. } = &mut self {
            *retry_after = Some(wait);
        }
        self
    }

    /// This error with retryability decided by the provider (an [`Error::Api`]; others are
    /// unchanged).
    pub fn with_retryable(mut self, can_retry: bool) -> Self {
        if let Self::Api { retryable, .. } = &mut self {
            *retryable = can_retry;
        }
        self
    }

    /// A limiter refused the call; the wait is measured from `now`.
    pub fn throttled(upstream: &'static str, throttled: Throttled, now: Instant) -> Self {
        let wait = throttled.retry_after(now);
        Self::Throttled {
            upstream,
            idempotency_key: None,
            throttled,
            wait,
        }
    }

    /// The circuit breaker is open until `until`; the wait is measured from `now`.
    pub fn circuit_open(upstream: &'static str, until: Instant, now: Instant) -> Self {
        Self::CircuitOpen {
            upstream,
            idempotency_key: None,
            until,
            wait: until.saturating_duration_since(now),
        }
    }

    /// The server asked for a wait beyond the clamp.
    pub fn retry_after_too_long(upstream: &'static str, hint: HintTooLong) -> Self {
        Self::RetryAfterTooLong {
            upstream,
            idempotency_key: None,
            hint,
        }
    }

    /// The retry budget refused a retry after `attempts` attempts.
    pub fn retry_budget_exhausted(upstream: &'static str, attempts: u32) -> Self {
        Self::RetryBudgetExhausted {
            upstream,
            idempotency_key: None,
            attempts,
        }
    }

    /// The call's deadline left no time after `attempts` attempts.
    pub fn deadline_exceeded(upstream: &'static str, attempts: u32) -> Self {
        Self::DeadlineExceeded {
            upstream,
            idempotency_key: None,
            attempts,
        }
    }

    /// An attempt timed out (and the request is safe to repeat).
    pub fn timeout(upstream: &'static str) -> Self {
        Self::Timeout {
            upstream,
            idempotency_key: None,
        }
    }

    /// The connection could not be established.
    pub fn connect(upstream: &'static str, message: impl Into<String>) -> Self {
        Self::Connect {
            upstream,
            idempotency_key: None,
            message: message.into(),
        }
    }

    /// The request may have been processed and cannot be safely retried.
    pub fn ambiguous(upstream: &'static str, message: impl Into<String>) -> Self {
        Self::Ambiguous {
            upstream,
            idempotency_key: None,
            message: message.into(),
        }
    }

    /// The connection broke after the request was sent (and the request is safe to repeat).
    pub fn interrupted(upstream: &'static str, message: impl Into<String>) -> Self {
        Self::Interrupted {
            upstream,
            idempotency_key: None,
            message: message.into(),
        }
    }

    /// The request could not be built.
    pub fn invalid_request(upstream: &'static str, message: impl Into<String>) -> Self {
        Self::InvalidRequest {
            upstream,
            idempotency_key: None,
            message: message.into(),
        }
    }

    /// The response did not decode; keeps the first [`DECODE_BODY_CAP`] bytes of `body`.
    pub fn decode(upstream: &'static str, body: &[u8], message: impl Into<String>) -> Self {
        Self::Decode {
            upstream,
            idempotency_key: None,
            body: capped_text(body),
            message: message.into(),
        }
    }

    /// The upstream this error is about (`"stripe"`, `"custom"`, …).
    pub fn upstream(&self) -> &'static str {
        match self {
            Self::Api { upstream, .. }
            | Self::Throttled { upstream, .. }
            | Self::CircuitOpen { upstream, .. }
            | Self::RetryAfterTooLong { upstream, .. }
            | Self::RetryBudgetExhausted { upstream, .. }
            | Self::DeadlineExceeded { upstream, .. }
            | Self::Timeout { upstream, .. }
            | Self::Connect { upstream, .. }
            | Self::Interrupted { upstream, .. }
            | Self::Ambiguous { upstream, .. }
            | Self::InvalidRequest { upstream, .. }
            | Self::Decode { upstream, .. } => upstream,
        }
    }

    /// The idempotency key every attempt of the call sent, if it had one. A queue redelivering
    /// the job, or a caller retrying later, must send the same key.
    pub fn idempotency_key(&self) -> Option<&IdempotencyKey> {
        match self {
            Self::Api {
                idempotency_key, ..
            }
            | Self::Throttled {
                idempotency_key, ..
            }
            | Self::CircuitOpen {
                idempotency_key, ..
            }
            | Self::RetryAfterTooLong {
                idempotency_key, ..
            }
            | Self::RetryBudgetExhausted {
                idempotency_key, ..
            }
            | Self::DeadlineExceeded {
                idempotency_key, ..
            }
            | Self::Timeout {
                idempotency_key, ..
            }
            | Self::Connect {
                idempotency_key, ..
            }
            | Self::Interrupted {
                idempotency_key, ..
            }
            | Self::Ambiguous {
                idempotency_key, ..
            }
            | Self::InvalidRequest {
                idempotency_key, ..
            }
            | Self::Decode {
                idempotency_key, ..
            } => idempotency_key.as_ref(),
        }
    }

    /// This error carrying the call's idempotency key (the pipeline sets it on every error of
    /// a keyed call).
    pub fn with_idempotency_key(mut self, key: Option<IdempotencyKey>) -> Self {
        match &mut self {
            Self::Api {
                idempotency_key, ..
            }
            | Self::Throttled {
                idempotency_key, ..
            }
            | Self::CircuitOpen {
                idempotency_key, ..
            }
            | Self::RetryAfterTooLong {
                idempotency_key, ..
            }
            | Self::RetryBudgetExhausted {
                idempotency_key, ..
            }
            | Self::DeadlineExceeded {
                idempotency_key, ..
            }
            | Self::Timeout {
                idempotency_key, ..
            }
            | Self::Connect {
                idempotency_key, ..
            }
            | Self::Interrupted {
                idempotency_key, ..
            }
            | Self::Ambiguous {
                idempotency_key, ..
            }
            | Self::InvalidRequest {
                idempotency_key, ..
            }
            | Self::Decode {
                idempotency_key, ..
            } => *idempotency_key = key,
        }
        self
    }

    /// The HTTP status, for an [`Error::Api`].
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The provider's typed error body, for an [`Error::Api`].
    pub fn api_error(&self) -> Option<&A> {
        match self {
            Self::Api { error, .. } => error.as_ref(),
            _ => None,
        }
    }
}

fn capped_text(body: &[u8]) -> String {
    let kept = body.get(..DECODE_BODY_CAP).unwrap_or(body);
    String::from_utf8_lossy(kept).into_owned()
}

impl<A> Retryable for Error<A> {
    fn is_retryable(&self) -> bool {
        match self {
            Self::Api { retryable, .. } => *retryable,
            Self::Throttled { throttled, .. } => {
                throttled.reason != ThrottleReason::ExceedsCapacity
            }
            Self::CircuitOpen { .. }
            | Self::RetryAfterTooLong { .. }
            | Self::RetryBudgetExhausted { .. }
            | Self::DeadlineExceeded { .. }
            | Self::Timeout { .. }
            | Self::Connect { .. }
            | Self::Interrupted { .. } => true,
            Self::Ambiguous { .. } | Self::InvalidRequest { .. } | Self::Decode { .. } => false,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Api { retry_after, .. } => *retry_after,
            Self::Throttled { wait, .. } => *wait,
            Self::CircuitOpen { wait, .. } => Some(*wait),
            Self::RetryAfterTooLong { hint, .. } => Some(hint.wait),
            _ => None,
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            Self::Api { reason, .. } => reason.as_str(),
            Self::Throttled { .. } => "throttled",
            Self::CircuitOpen { .. } => "circuit_open",
            Self::RetryAfterTooLong { .. } => "retry_after_too_long",
            Self::RetryBudgetExhausted { .. } => "retry_budget_exhausted",
            Self::DeadlineExceeded { .. } => "deadline_exceeded",
            Self::Timeout { .. } => "timeout",
            Self::Connect { .. } => "connect",
            Self::Interrupted { .. } => "interrupted",
            Self::Ambiguous { .. } => "ambiguous",
            Self::InvalidRequest { .. } => "invalid_request",
            Self::Decode { .. } => "decode",
        }
    }
}

impl<A: fmt::Display> fmt::Display for Error<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.upstream())?;
        match self {
            Self::Api {
                status,
                error,
                body,
                request_id,
                retry_after,
                retryable,
                ..
            } => {
                write!(f, "HTTP {status}")?;
                match (error, body) {
                    (Some(error), _) => write!(f, ": {error}")?,
                    (None, Some(body)) if !body.trim().is_empty() => {
                        write!(f, ": {}", body.trim().chars().take(200).collect::<String>())?
                    }
                    _ => {}
                }
                if let Some(id) = request_id {
                    write!(f, " (request {id})")?;
                }
                match (retryable, retry_after) {
                    (true, Some(wait)) => write!(f, "; retry after {}", HumanDuration(*wait)),
                    (true, None) => f.write_str("; retryable"),
                    (false, _) => f.write_str("; not retryable, fix the request"),
                }
            }
            Self::Throttled {
                throttled, wait, ..
            } => {
                write!(f, "{throttled}")?;
                match wait {
                    Some(wait) => write!(f, "; retry after {}", HumanDuration(*wait)),
                    None => Ok(()),
                }
            }
            Self::CircuitOpen { wait, .. } => write!(
                f,
                "circuit open after repeated failures; calls fail fast, retry after {}",
                HumanDuration(*wait)
            ),
            Self::RetryAfterTooLong { hint, .. } => write!(
                f,
                "server asked to wait {}, longer than the {} this client sleeps; park the work and retry after the wait",
                HumanDuration(hint.wait),
                HumanDuration(hint.max)
            ),
            Self::RetryBudgetExhausted { attempts, .. } => write!(
                f,
                "retry budget exhausted after {attempts} attempt(s): too many calls are failing; retry later"
            ),
            Self::DeadlineExceeded { attempts, .. } => write!(
                f,
                "deadline exceeded after {attempts} attempt(s); retry later or allow a longer deadline"
            ),
            Self::Timeout { .. } => f.write_str("attempt timed out; safe to retry"),
            Self::Connect { message, .. } => {
                write!(
                    f,
                    "could not connect ({message}); nothing was sent, safe to retry"
                )
            }
            Self::Interrupted { message, .. } => write!(
                f,
                "connection interrupted after the request was sent ({message}); safe to retry"
            ),
            Self::Ambiguous { message, .. } => write!(
                f,
                "request may have been processed ({message}); not retried because it has no idempotency key and a retry could duplicate"
            ),
            Self::InvalidRequest { message, .. } => {
                write!(
                    f,
                    "invalid request ({message}); fix the request, it was not sent"
                )
            }
            Self::Decode { message, body, .. } => write!(
                f,
                "could not decode the response ({message}; {} byte(s) of body kept); not retryable",
                body.len()
            ),
        }
    }
}

impl<A: std::error::Error + 'static> std::error::Error for Error<A> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Api {
                error: Some(error), ..
            } => Some(error),
            Self::Throttled { throttled, .. } => Some(throttled),
            Self::RetryAfterTooLong { hint, .. } => Some(hint),
            _ => None,
        }
    }
}

/// A duration formatted for people: `450ms`, `1.2s`, `2m05s`, `1h30m`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        let secs = d.as_secs();
        if secs == 0 {
            write!(f, "{}ms", d.subsec_millis())
        } else if secs < 60 {
            let tenths = d.subsec_millis() / 100;
            if tenths == 0 {
                write!(f, "{secs}s")
            } else {
                write!(f, "{secs}.{tenths}s")
            }
        } else if secs < 3600 {
            write!(f, "{}m{:02}s", secs / 60, secs % 60)
        } else {
            write!(f, "{}h{:02}m", secs / 3600, (secs % 3600) / 60)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limit::BudgetName;

    #[derive(Debug)]
    struct StripeError(&'static str);
    impl fmt::Display for StripeError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }
    impl std::error::Error for StripeError {}

    #[test]
    fn api_error_display_says_what_to_whom_and_what_to_do() {
        let err = Error::api(
            "stripe",
            StatusCode::TOO_MANY_REQUESTS,
            StripeError("rate limited on write budget"),
        )
        .with_request_id("req_123")
        .with_retry_after(Duration::from_millis(1200));
        assert_eq!(
            err.to_string(),
            "stripe: HTTP 429 Too Many Requests: rate limited on write budget (request req_123); retry after 1.2s"
        );
        assert!(err.is_retryable());
        assert_eq!(err.retry_after(), Some(Duration::from_millis(1200)));
        assert_eq!(err.reason(), "rate_limited");
        assert_eq!(err.status(), Some(StatusCode::TOO_MANY_REQUESTS));
    }

    #[test]
    fn api_retryability_defaults_from_the_status_and_the_provider_can_override_it() {
        let e = |s: u16| Error::api("x", StatusCode::from_u16(s).unwrap(), StripeError("e"));
        assert!(e(429).is_retryable());
        assert!(e(503).is_retryable());
        assert!(e(408).is_retryable());
        assert!(!e(501).is_retryable());
        assert!(!e(400).is_retryable());
        assert!(e(409).with_retryable(true).is_retryable());
        assert!(!e(500).with_retryable(false).is_retryable());
        assert!(
            e(400)
                .to_string()
                .ends_with("; not retryable, fix the request")
        );
        assert_eq!(e(502).reason(), "server_error");
        assert_eq!(e(404).reason(), "rejected");
        assert_eq!(e(429).reason(), "rate_limited");
        assert_eq!(
            e(429).with_reason(Reason::QuotaExhausted).reason(),
            "quota_exhausted"
        );
    }

    #[test]
    fn an_error_body_that_does_not_decode_is_kept_and_shown() {
        let err: Error<StripeError> = Error::api_undecoded(
            "stripe",
            StatusCode::BAD_GATEWAY,
            b"<html>502 Bad Gateway</html>",
        );
        assert!(err.api_error().is_none());
        assert!(err.is_retryable());
        assert_eq!(
            err.to_string(),
            "stripe: HTTP 502 Bad Gateway: <html>502 Bad Gateway</html>; retryable"
        );
        let huge = vec![b'x'; 10 * 1024 * 1024];
        match Error::<StripeError>::api_undecoded("stripe", StatusCode::BAD_GATEWAY, &huge) {
            Error::Api {
                body: Some(body), ..
            } => assert_eq!(body.len(), DECODE_BODY_CAP),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn ambiguous_failures_are_never_retryable_and_say_why() {
        let err: Error<StripeError> = Error::ambiguous("stripe", "connection reset after send");
        assert!(!err.is_retryable());
        assert!(err.to_string().contains("a retry could duplicate"));
        assert_eq!(err.reason(), "ambiguous");
    }

    #[test]
    fn waits_measured_from_instants_are_relative_to_when_the_error_was_raised() {
        use crate::clock::Clock as _;
        let now = crate::clock::ManualClock::new().now();
        let open: Error<StripeError> =
            Error::circuit_open("github", now + Duration::from_secs(30), now);
        assert_eq!(open.retry_after(), Some(Duration::from_secs(30)));
        assert!(open.to_string().starts_with("github: circuit open"));

        let throttled = Throttled::new(
            BudgetName::TOKENS,
            ThrottleReason::WouldWait,
            Some(now + Duration::from_secs(6)),
        );
        let err: Error<StripeError> = Error::throttled("openai", throttled, now);
        assert!(err.is_retryable());
        assert_eq!(err.retry_after(), Some(Duration::from_secs(6)));
        assert_eq!(
            err.to_string(),
            "openai: throttled on budget `tokens`: capacity returns later than the caller will wait; retry after 6s"
        );

        let never = Throttled::new(BudgetName::TOKENS, ThrottleReason::ExceedsCapacity, None);
        assert!(!Error::<StripeError>::throttled("openai", never, now).is_retryable());
    }

    #[test]
    fn retry_after_too_long_carries_the_full_wait() {
        let hint = crate::hint::Clamp::default()
            .apply(Duration::from_secs(3600))
            .unwrap_err();
        let err: Error<StripeError> = Error::retry_after_too_long("github", hint);
        assert_eq!(err.retry_after(), Some(Duration::from_secs(3600)));
        assert!(err.is_retryable());
        assert!(
            err.to_string()
                .contains("wait 1h00m, longer than the 2m00s")
        );
    }

    #[test]
    fn decode_keeps_at_most_the_cap_of_the_body() {
        let body = vec![b'x'; DECODE_BODY_CAP * 3];
        let Error::<StripeError>::Decode { body: kept, .. } =
            Error::decode("openai", &body, "expected value at line 1")
        else {
            panic!("not a decode error");
        };
        assert_eq!(kept.len(), DECODE_BODY_CAP);
        let err: Error<StripeError> = Error::decode("openai", b"<html>502</html>", "bad json");
        assert!(!err.is_retryable());
        assert!(format!("{err:?}").contains("<html>502</html>"));
    }

    #[test]
    fn io_errors_are_retryable_only_when_transient() {
        use std::io::{Error as IoError, ErrorKind};
        assert!(IoError::from(ErrorKind::ConnectionReset).is_retryable());
        assert!(IoError::from(ErrorKind::TimedOut).is_retryable());
        assert_eq!(IoError::from(ErrorKind::TimedOut).reason(), "timeout");
        assert!(!IoError::from(ErrorKind::NotFound).is_retryable());
        assert!(!IoError::from(ErrorKind::PermissionDenied).is_retryable());
    }

    #[test]
    fn human_durations_read_naturally() {
        let h = |ms: u64| HumanDuration(Duration::from_millis(ms)).to_string();
        assert_eq!(h(450), "450ms");
        assert_eq!(h(1200), "1.2s");
        assert_eq!(h(30_000), "30s");
        assert_eq!(h(125_000), "2m05s");
        assert_eq!(h(5_400_000), "1h30m");
    }
}
