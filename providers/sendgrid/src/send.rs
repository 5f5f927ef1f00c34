//! [`SendMail`]: one `POST /v3/mail/send`, checked, keyed, deduplicated; and the crate's
//! [`Error`].
//!
//! # No duplicate emails without server-side idempotency
//!
//! SendGrid has no idempotency key: a send repeated after a failure that SendGrid may have
//! processed delivers the email twice. So:
//!
//! 1. A send is retried by the pipeline only when the failure was certainly not processed: a
//!    429 (SendGrid refused it) or a connection that never opened. A 5xx, a timeout or a
//!    connection broken after sending ends the call with `Error::Ambiguous`, which says why it
//!    was not retried (unless the provider was built with `retry_ambiguous(true)`).
//! 2. Every send carries an idempotency key (given with [`SendMail::idempotency_key`] or
//!    [`SendMail::idempotency_key_for`], else minted once per call) in its message-level
//!    `custom_args` under [`IDEMPOTENCY_ARG`] (`ratewise_idempotency_key`), so duplicates can be
//!    found in the event webhook. It counts against the 10,000-byte `custom_args` limit.
//! 3. With a dedupe store on the client ([`SendGridClientBuilder::dedupe`]), the key is claimed
//!    before sending: a key already sent returns the recorded message id without sending
//!    ([`Accepted::deduplicated`]); a key whose send is in flight or ended ambiguously is refused
//!    with [`Error::InFlight`]; a failure that certainly did not reach SendGrid releases the
//!    claim so a later attempt may send. A queue that redelivers a job with the same key
//!    (derived from the job's business id) therefore never sends its email twice.
//!
//! A send dropped mid-flight (its future cancelled) keeps its claim pending: its outcome is
//! unknown, so a redelivery is refused rather than risked, until the claim's TTL runs out.
//!
//! [`SendGridClientBuilder::dedupe`]: crate::SendGridClientBuilder::dedupe

use std::time::Duration;

use ratewise_core::dedupe::{Claim, DedupeError};
use ratewise_core::error::Retryable;
use ratewise_core::idempotency::IdempotencyKey;
use ratewise_core::provider::{Provider, RequestSpec};
use ratewise_core::verdict::Reason;
use uuid::Uuid;

use crate::client::SendGridClient;
use crate::error::SendGridError;
use crate::headers;
use crate::mail::Mail;
use crate::provider::SendGridProvider;
use crate::validate::{self, InvalidMail};

/// The `custom_args` entry carrying a send's idempotency key: `ratewise_idempotency_key`.
pub const IDEMPOTENCY_ARG: &str = "ratewise_idempotency_key";

/// The operation name of mail send (its per-endpoint budget is `sendgrid.endpoint:mail.send`).
pub const MAIL_SEND: &str = "mail.send";

/// The path of mail send.
pub const MAIL_SEND_PATH: &str = "/v3/mail/send";

/// The prefix of dedupe keys: `sendgrid:mail.send:<idempotency key>`.
const DEDUPE_PREFIX: &str = "sendgrid:mail.send:";

/// The pipeline's error with SendGrid's typed body.
pub type CallError = ratewise_core::error::Error<SendGridError>;

/// Why a send did not happen (or may have happened: see [`Error::is_ambiguous`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The mail breaks one of SendGrid's limits; nothing was sent.
    #[error("sendgrid: invalid mail, not sent: {0}")]
    Invalid(#[from] InvalidMail),
    /// SendGrid answered 401 "Maximum credits exceeded": the account's email credits are spent.
    /// Not an authentication problem, and never retried: add credits or wait for the plan to
    /// renew. The request was not processed.
    #[error(
        "sendgrid: email credits exhausted ({message}); not sent and not retried: add credits or wait for the plan to renew"
    )]
    CreditsExhausted {
        /// What SendGrid said.
        message: String,
        /// SendGrid's request id, if the response carried one.
        request_id: Option<String>,
    },
    /// The dedupe store holds a claim on this key without an outcome: another worker is
    /// sending it, or an earlier send ended ambiguously. Not sent, to avoid a duplicate; look
    /// for the key in the event webhook's `custom_args` to learn whether it was delivered.
    #[error(
        "sendgrid: a send with idempotency key {key} is in flight or ended ambiguously; not sent again (look for custom_args.{IDEMPOTENCY_ARG}={key} in the event webhook)"
    )]
    InFlight {
        /// The key.
        key: IdempotencyKey,
    },
    /// The dedupe store could not be reached; nothing was claimed or sent.
    #[error("sendgrid: {0}; nothing was sent")]
    Dedupe(#[source] DedupeError),
    /// The call failed in the pipeline (rate limited past the wait allowed, auth refused,
    /// ambiguous, …).
    #[error(transparent)]
    Call(#[from] CallError),
}

impl Error {
    /// True when SendGrid may have accepted the send although the call failed (a 5xx, a timeout
    /// or a broken connection after sending).
    pub fn is_ambiguous(&self) -> bool {
        match self {
            Self::Call(error) => !certainly_not_processed(error, false),
            _ => false,
        }
    }

    /// True for [`Error::CreditsExhausted`].
    pub fn is_credits_exhausted(&self) -> bool {
        matches!(self, Self::CreditsExhausted { .. })
    }
}

impl Retryable for Error {
    fn is_retryable(&self) -> bool {
        match self {
            Self::Call(error) => error.is_retryable(),
            Self::Dedupe(_) => true,
            Self::Invalid(_) | Self::CreditsExhausted { .. } | Self::InFlight { .. } => false,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Call(error) => error.retry_after(),
            _ => None,
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            Self::Call(error) => error.reason(),
            Self::Invalid(_) => "invalid_request",
            Self::CreditsExhausted { .. } => Reason::QuotaExhausted.as_str(),
            Self::InFlight { .. } => "in_flight",
            Self::Dedupe(_) => "dedupe_unavailable",
        }
    }
}

/// True when `error` guarantees SendGrid did not process the send: it answered 4xx, or the
/// request never left (refused connection, local limiter, open breaker, bad request), or the
/// call gave up after a refusal. `lenient` (ambiguous failures were retried) makes the
/// give-up errors uncertain, since an earlier attempt may have been processed.
fn certainly_not_processed(error: &CallError, lenient: bool) -> bool {
    match error {
        CallError::Api { status, .. } => status.is_client_error(),
        CallError::Connect { .. }
        | CallError::Throttled { .. }
        | CallError::CircuitOpen { .. }
        | CallError::InvalidRequest { .. } => true,
        CallError::RetryAfterTooLong { .. }
        | CallError::RetryBudgetExhausted { .. }
        | CallError::DeadlineExceeded { .. } => !lenient,
        _ => false,
    }
}

/// A send SendGrid accepted (202), or one the dedupe store says already was.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Accepted {
    /// SendGrid's `X-Message-Id`, when the response (or the dedupe record) had one.
    pub message_id: Option<String>,
    /// The idempotency key the send carried in `custom_args`.
    pub idempotency_key: IdempotencyKey,
    /// How many addresses the send reaches.
    pub recipients: usize,
    /// Attempts the call took (0 when deduplicated).
    pub attempts: u32,
    /// True when nothing was sent because the dedupe store recorded this key as sent.
    pub deduplicated: bool,
}

/// One `POST /v3/mail/send`, ready to send.
#[must_use = "a send does nothing until `.send()` is awaited"]
#[derive(Clone)]
pub struct SendMail {
    client: SendGridClient,
    mail: Mail,
    key: Option<IdempotencyKey>,
}

impl std::fmt::Debug for SendMail {
    /// Addresses and content are left out: they are personal data.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendMail")
            .field("recipients", &self.mail.recipients())
            .field("idempotency_key", &self.key)
            .finish_non_exhaustive()
    }
}

impl SendMail {
    pub(crate) fn new(client: SendGridClient, mail: Mail) -> Self {
        Self {
            client,
            mail,
            key: None,
        }
    }

    /// Sends `key` in `custom_args` and claims it in the dedupe store: a redelivered job with
    /// the same key is sent at most once. Default: a fresh key per call.
    pub fn idempotency_key(mut self, key: IdempotencyKey) -> Self {
        self.key = Some(key);
        self
    }

    /// A key derived from a business id (UUID v5 of `business_id` in `namespace`): the same
    /// order confirmation always carries the same key.
    pub fn idempotency_key_for(self, namespace: &Uuid, business_id: impl AsRef<[u8]>) -> Self {
        self.idempotency_key(IdempotencyKey::derive(namespace, business_id))
    }

    /// The mail to be sent.
    pub fn mail(&self) -> &Mail {
        &self.mail
    }

    /// Checks the mail, claims its key (with a dedupe store) and sends it.
    pub async fn send(self) -> Result<Accepted, Error> {
        let key = self.key.unwrap_or_else(IdempotencyKey::new);
        let mut mail = self.mail;
        mail.custom_args
            .insert(IDEMPOTENCY_ARG.to_owned(), key.as_str().to_owned());
        let body = validate::encode(&mail)?;
        let recipients = mail.recipients();
        let client = self.client;
        let claim_key = format!("{DEDUPE_PREFIX}{key}");
        let ttl = client.dedupe_ttl();
        if let Some(store) = client.dedupe() {
            match store.claim(&claim_key, ttl).await.map_err(Error::Dedupe)? {
                Claim::Fresh => {}
                Claim::Done(record) => {
                    return Ok(Accepted {
                        message_id: (!record.is_empty()).then_some(record),
                        idempotency_key: key,
                        recipients,
                        attempts: 0,
                        deduplicated: true,
                    });
                }
                _ => return Err(Error::InFlight { key }),
            }
        }
        let spec = RequestSpec::post(MAIL_SEND_PATH, MAIL_SEND)
            .body("application/json", body)
            .idempotency_key(key.clone());
        match client.upstream().execute(spec).await {
            Ok(response) => {
                let message_id = headers::message_id(&response.headers);
                if let Some(store) = client.dedupe() {
                    let record = message_id.as_deref().unwrap_or_default();
                    if let Err(error) = store.complete(&claim_key, record, ttl).await {
                        tracing::warn!(
                            upstream = SendGridProvider::NAME,
                            idempotency_key = key.as_str(),
                            %error,
                            "sent, but the dedupe store did not record it; the claim stays pending"
                        );
                    }
                }
                Ok(Accepted {
                    message_id,
                    idempotency_key: key,
                    recipients,
                    attempts: response.attempts,
                    deduplicated: false,
                })
            }
            Err(error) => {
                let lenient = client.upstream().provider().retries_ambiguous();
                if let Some(store) = client.dedupe()
                    && certainly_not_processed(&error, lenient)
                    && let Err(failure) = store.release(&claim_key).await
                {
                    tracing::warn!(
                        upstream = SendGridProvider::NAME,
                        idempotency_key = key.as_str(),
                        error = %failure,
                        "not sent, but the dedupe store did not release the claim"
                    );
                }
                Err(credits_or(error))
            }
        }
    }
}

/// [`Error::CreditsExhausted`] for a 401 "Maximum credits exceeded", else the call's error.
fn credits_or(error: CallError) -> Error {
    match error {
        CallError::Api {
            reason: Reason::QuotaExhausted,
            error: api,
            body,
            request_id,
            ..
        } => Error::CreditsExhausted {
            message: api
                .as_ref()
                .and_then(|e| e.message().map(str::to_owned))
                .or(body)
                .unwrap_or_default(),
            request_id,
        },
        other => Error::Call(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;

    #[test]
    fn refusals_release_and_ambiguous_failures_do_not() {
        let refused: CallError =
            CallError::api_undecoded("sendgrid", StatusCode::TOO_MANY_REQUESTS, b"");
        assert!(certainly_not_processed(&refused, false));
        let connect = CallError::connect("sendgrid", "refused");
        assert!(certainly_not_processed(&connect, true));
        let ambiguous = CallError::ambiguous("sendgrid", "HTTP 500 on POST mail.send");
        assert!(!certainly_not_processed(&ambiguous, false));
        let server = CallError::api_undecoded("sendgrid", StatusCode::BAD_GATEWAY, b"");
        assert!(!certainly_not_processed(&server, false));
        let gave_up = CallError::retry_budget_exhausted("sendgrid", 3);
        assert!(certainly_not_processed(&gave_up, false));
        assert!(
            !certainly_not_processed(&gave_up, true),
            "after retried 5xx, giving up is uncertain"
        );
    }

    #[test]
    fn a_credits_401_becomes_credits_exhausted_and_others_stay_calls() {
        let body = br#"{"errors":[{"field":null,"message":"Maximum credits exceeded"}]}"#;
        let api = SendGridError::from_body(body).unwrap();
        let error = CallError::api("sendgrid", StatusCode::UNAUTHORIZED, api)
            .with_reason(Reason::QuotaExhausted)
            .with_retryable(false);
        let error = credits_or(error);
        assert!(error.is_credits_exhausted());
        assert!(!error.is_retryable());
        assert_eq!(error.reason(), "quota_exhausted");
        assert!(error.to_string().contains("Maximum credits exceeded"));
        let auth = CallError::api_undecoded("sendgrid", StatusCode::UNAUTHORIZED, b"nope")
            .with_reason(Reason::Unauthorized)
            .with_retryable(false);
        let auth = credits_or(auth);
        assert!(matches!(auth, Error::Call(_)));
        assert_eq!(auth.reason(), "unauthorized");
        assert!(!auth.is_ambiguous());
    }
}
