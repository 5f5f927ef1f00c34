//! SendGrid for the ratewise testkit simulator: [`SendGridDialect`] and [`SendGridHandler`].
//!
//! With these, a [`SimUpstream`](ratewise_testkit::SimUpstream) answers like SendGrid's mail
//! send: `X-RateLimit-Limit/-Remaining/-Reset` (epoch seconds) on every response, or none at all
//! ([`SendGridDialect::without_headers`], as mail send often does); 429s with the body SendGrid
//! documents (trailing comma included); 202 with `X-Message-Id` for an accepted send; 400 with
//! the field at fault; 401 "Maximum credits exceeded" once the account's credits are spent; and
//! a ledger of the messages accepted. Limit it per endpoint with
//! `ServerLimit::fixed_window(n, window).per_operation()`.
//!
//! ```
//! use std::sync::Arc;
//! use ratewise_sendgrid::sim::{SendGridDialect, SendGridHandler};
//! use ratewise_sendgrid::{ClientBuilder, Content, Mail, Personalization, SendGridClient};
//! use ratewise_testkit::SimUpstream;
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
//! let handler = Arc::new(SendGridHandler::new());
//! let sim = SimUpstream::builder()
//!     .dialect(SendGridDialect::new())
//!     .handler(Arc::clone(&handler))
//!     .build();
//! let client = SendGridClient::builder("SG.test")
//!     .base_url("http://sendgrid.sim")
//!     .transport(Arc::new(sim.transport()))
//!     .clock(sim.clock())
//!     .build()
//!     .unwrap();
//! let mail = Mail::new("a@example.com")
//!     .subject("Hi")
//!     .content(Content::text("Hello"))
//!     .personalization(Personalization::new("b@example.com"));
//! let accepted = client.send_mail(mail).send().await.unwrap();
//! assert_eq!(handler.messages()[0].message_id, accepted.message_id.unwrap());
//! # }
//! ```

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use ratewise_testkit::dialect::json_response;
use ratewise_testkit::{Dialect, Handler, HandlerContext, IdempotencyError, ResponseContext};
use serde_json::json;

use crate::error::CREDITS_EXCEEDED;
use crate::headers::{MESSAGE_ID, RATE_LIMIT_LIMIT, RATE_LIMIT_REMAINING, RATE_LIMIT_RESET};
use crate::mail::Mail;
use crate::send::{IDEMPOTENCY_ARG, MAIL_SEND_PATH};
use crate::validate;

/// The 429 body exactly as SendGrid's rate-limit documentation prints it: with a trailing comma
/// after the last error, which is not valid JSON.
pub const THROTTLE_BODY: &str = "{\n  \"errors\": [\n    {\n      \"field\": null,\n      \"message\": \"too many requests\"\n    },\n  ]\n}";

/// How SendGrid speaks, for the simulator.
///
/// - Every response: `X-RateLimit-Limit`, `-Remaining`, `-Reset` (epoch seconds, rounded up)
///   of the refusing or tightest limit, unless built [`without_headers`](Self::without_headers).
/// - Throttle: 429 with [`THROTTLE_BODY`]; no `Retry-After` (SendGrid sends none).
/// - Server error: the status with `{"errors":[{"message":"internal server error"}]}`.
/// - No idempotency header: SendGrid has none, so the ledger keys each send by its body (which
///   carries the client's idempotency key in `custom_args`): a duplicate send is a duplicate.
#[derive(Clone, Debug, Default)]
pub struct SendGridDialect {
    omit_headers: bool,
}

impl SendGridDialect {
    /// The dialect, with rate-limit headers.
    pub fn new() -> Self {
        Self::default()
    }

    /// The dialect sending no `X-RateLimit-*` headers at all (mail send as often observed).
    pub fn without_headers() -> Self {
        Self { omit_headers: true }
    }
}

fn errors(status: StatusCode, field: Option<&str>, message: &str) -> http::Response<Bytes> {
    json_response(
        status,
        &json!({"errors": [{"field": field, "message": message, "help": null}]}),
    )
}

impl Dialect for SendGridDialect {
    fn throttle_response(&self, _ctx: &ResponseContext<'_>) -> http::Response<Bytes> {
        let mut response = http::Response::new(Bytes::from_static(THROTTLE_BODY.as_bytes()));
        *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    }

    fn server_error_response(
        &self,
        status: StatusCode,
        _ctx: &ResponseContext<'_>,
    ) -> http::Response<Bytes> {
        errors(status, None, "internal server error")
    }

    fn idempotency_error_response(
        &self,
        _error: IdempotencyError,
        _ctx: &ResponseContext<'_>,
    ) -> http::Response<Bytes> {
        errors(StatusCode::BAD_REQUEST, None, "invalid request")
    }

    fn decorate(&self, headers: &mut HeaderMap, ctx: &ResponseContext<'_>) {
        if self.omit_headers {
            return;
        }
        let Some(limit) = ctx.primary_limit() else {
            return;
        };
        let values = [
            (RATE_LIMIT_LIMIT, limit.limit),
            (RATE_LIMIT_REMAINING, limit.remaining),
            (RATE_LIMIT_RESET, ctx.reset_epoch(limit)),
        ];
        for (name, value) in values {
            if let Ok(value) = HeaderValue::from_str(&value.to_string()) {
                headers.insert(name, value);
            }
        }
    }

    fn idempotency_header(&self) -> Option<http::HeaderName> {
        None
    }
}

/// One message the simulated SendGrid accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AcceptedMessage {
    /// The `X-Message-Id` it was answered with.
    pub message_id: String,
    /// The addresses it reaches.
    pub recipients: usize,
    /// The client's idempotency key from `custom_args`, if present.
    pub idempotency_key: Option<String>,
}

/// A small in-memory mail send: the success path behind [`SendGridDialect`].
///
/// - `POST /v3/mail/send`: decodes the [`Mail`], applies SendGrid's checks (400 naming the
///   field), spends one credit per recipient (401 "Maximum credits exceeded" when fewer are
///   left than the send needs; nothing is spent then), records the message and answers 202
///   with an empty body and `X-Message-Id`.
/// - With [`api_key`](Self::api_key), any other `Authorization` is answered 401 "The provided
///   authorization grant is invalid, expired, or revoked".
/// - Anything else: 404.
#[derive(Debug, Default)]
pub struct SendGridHandler {
    credits: Option<u64>,
    api_key: Option<String>,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    spent: u64,
    messages: Vec<AcceptedMessage>,
}

impl SendGridHandler {
    /// A mail send with unlimited credits that accepts any key.
    pub fn new() -> Self {
        Self::default()
    }

    /// Allows `credits` emails (one per recipient) in total; past them, 401.
    pub fn credits(mut self, credits: u64) -> Self {
        self.credits = Some(credits);
        self
    }

    /// Accepts only `Authorization: Bearer <key>`.
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every message accepted, in order.
    pub fn messages(&self) -> Vec<AcceptedMessage> {
        self.lock().messages.clone()
    }

    /// Recipients reached by accepted messages.
    pub fn recipients(&self) -> u64 {
        self.lock().spent
    }

    /// Accepted messages that carried an idempotency key already accepted before: zero means
    /// no email went out twice.
    pub fn duplicates(&self) -> usize {
        let mut seen: HashMap<&str, usize> = HashMap::new();
        let state = self.lock();
        for key in state
            .messages
            .iter()
            .filter_map(|m| m.idempotency_key.as_deref())
        {
            *seen.entry(key).or_default() += 1;
        }
        seen.values().map(|n| n.saturating_sub(1)).sum()
    }

    fn authorized(&self, request: &http::Request<Bytes>) -> bool {
        let Some(key) = &self.api_key else {
            return true;
        };
        request
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|given| given == key)
    }
}

impl Handler for SendGridHandler {
    fn handle(
        &self,
        request: &http::Request<Bytes>,
        ctx: &HandlerContext,
    ) -> http::Response<Bytes> {
        if request.method() != Method::POST || request.uri().path() != MAIL_SEND_PATH {
            return errors(StatusCode::NOT_FOUND, None, "not found");
        }
        if !self.authorized(request) {
            return errors(
                StatusCode::UNAUTHORIZED,
                None,
                "The provided authorization grant is invalid, expired, or revoked",
            );
        }
        let mail: Mail = match serde_json::from_slice(request.body()) {
            Ok(mail) => mail,
            Err(e) => {
                return errors(StatusCode::BAD_REQUEST, None, &format!("Bad Request: {e}"));
            }
        };
        if let Err(invalid) = validate::check(&mail) {
            let field = invalid.field();
            return errors(
                StatusCode::BAD_REQUEST,
                (!field.is_empty()).then_some(field.as_str()),
                &invalid.to_string(),
            );
        }
        let recipients = mail.recipients();
        let needed = u64::try_from(recipients).unwrap_or(u64::MAX);
        let mut state = self.lock();
        if let Some(credits) = self.credits
            && state.spent.saturating_add(needed) > credits
        {
            let mut message = CREDITS_EXCEEDED.to_owned();
            if let Some(first) = message.get_mut(..1) {
                first.make_ascii_uppercase();
            }
            return errors(StatusCode::UNAUTHORIZED, None, &message);
        }
        state.spent = state.spent.saturating_add(needed);
        let message_id = format!("sim{:08}.filter0001.16648.5515E0B88.0", ctx.index);
        state.messages.push(AcceptedMessage {
            message_id: message_id.clone(),
            recipients,
            idempotency_key: mail.custom_args.get(IDEMPOTENCY_ARG).cloned(),
        });
        let mut response = http::Response::new(Bytes::new());
        *response.status_mut() = StatusCode::ACCEPTED;
        if let Ok(value) = HeaderValue::from_str(&message_id) {
            response.headers_mut().insert(MESSAGE_ID, value);
        }
        response
    }
}

#[cfg(test)]
mod tests;
