//! Twilio for the ratewise testkit simulator: [`TwilioDialect`] and [`TwilioHandler`].
//!
//! With these, a [`SimUpstream`](ratewise_testkit::SimUpstream) answers like Twilio: a 429
//! with error 20429 when the account's concurrency limit ([`account_concurrency`]) or an
//! injected throttle refuses, 5xx with Twilio's error body, `Twilio-Request-Id` and
//! `Twilio-Concurrent-Requests` on every response, and no idempotency key (Twilio has none).
//! The handler is a small in-memory Twilio: Messages (create, fetch, list with paging) and
//! Calls (create, fetch), with **one queue per sender** that drains at the sender type's rate
//! (long code 1, toll-free 3, short code 100 segments/s), answering 21611 when a message would
//! push the queue's backlog past its cap (default 10 h), and a ledger of every message sent.
//!
//! ```
//! use std::sync::Arc;
//! use ratewise_twilio::sim::{TwilioDialect, TwilioHandler, account_concurrency};
//! use ratewise_twilio::{ClientBuilder, CreateMessage, TwilioClient};
//! use ratewise_testkit::SimUpstream;
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
//! let handler = Arc::new(TwilioHandler::new());
//! let sim = SimUpstream::builder()
//!     .dialect(TwilioDialect::new())
//!     .handler(handler.clone())
//!     .limit(account_concurrency(100))
//!     .build();
//! let client = TwilioClient::builder("AC123", "token")
//!     .base_url("http://twilio.sim")
//!     .transport(Arc::new(sim.transport()))
//!     .clock(sim.clock())
//!     .build()
//!     .unwrap();
//! let message = client
//!     .messages()
//!     .create(CreateMessage::new("+14155552671", "+15005550006").body("Hi"))
//!     .send()
//!     .await
//!     .unwrap();
//! assert_eq!(handler.sent().len(), 1);
//! assert_eq!(handler.sent()[0].sid, message.sid);
//! # }
//! ```

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use ratewise_testkit::dialect::{http_date, json_response};
use ratewise_testkit::{
    Dialect, Handler, HandlerContext, IdempotencyError, ResponseContext, ServerLimit,
};
use serde_json::{Value, json};

use crate::error::code;
use crate::form;
use crate::headers::{TWILIO_CONCURRENT_REQUESTS, TWILIO_REQUEST_ID};
use crate::limits::TwilioLimits;
use crate::segments;

/// The name of the [`account_concurrency`] limit.
pub const ACCOUNT_CONCURRENCY: &str = "account-concurrency";

/// Twilio's account concurrency: at most `limit` requests in flight; past it, 429 / 20429.
/// Add it with `SimUpstream::builder().limit(account_concurrency(100))`.
pub fn account_concurrency(limit: u32) -> ServerLimit {
    ServerLimit::concurrency(limit).named(ACCOUNT_CONCURRENCY)
}

/// A Twilio error body (legacy format) with `status`.
fn error(status: StatusCode, code: u32, message: &str) -> http::Response<Bytes> {
    json_response(
        status,
        &json!({
            "code": code,
            "message": message,
            "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
            "status": status.as_u16(),
        }),
    )
}

/// How Twilio speaks, for the simulator.
///
/// - Throttle: 429 `{"code":20429,"message":"Too Many Requests",…}`, with `Retry-After` only
///   when the throttle announces a wait (Twilio does not document sending one).
/// - Server error: Twilio's legacy error body (code 20500).
/// - Every response: `Twilio-Request-Id: RQ…`; `Twilio-Concurrent-Requests` (the account's
///   requests in flight) when the [`account_concurrency`] limit applies.
/// - No idempotency header: every request is a new request.
#[derive(Debug, Default)]
pub struct TwilioDialect {
    requests: AtomicU64,
}

impl TwilioDialect {
    /// The dialect.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Dialect for TwilioDialect {
    fn throttle_response(&self, ctx: &ResponseContext<'_>) -> http::Response<Bytes> {
        let mut response = error(
            StatusCode::TOO_MANY_REQUESTS,
            code::TOO_MANY_REQUESTS,
            "Too Many Requests",
        );
        if let Some(wait) = ctx.retry_after
            && let Ok(value) = HeaderValue::from_str(&wait.as_secs().max(1).to_string())
        {
            response
                .headers_mut()
                .insert(http::header::RETRY_AFTER, value);
        }
        response
    }

    fn server_error_response(
        &self,
        status: StatusCode,
        _ctx: &ResponseContext<'_>,
    ) -> http::Response<Bytes> {
        error(status, 20500, "An internal server error has occurred")
    }

    fn idempotency_error_response(
        &self,
        _error: IdempotencyError,
        _ctx: &ResponseContext<'_>,
    ) -> http::Response<Bytes> {
        // Unreachable in practice: the dialect names no idempotency header.
        error(StatusCode::BAD_REQUEST, 20001, "Bad request")
    }

    fn decorate(&self, headers: &mut HeaderMap, ctx: &ResponseContext<'_>) {
        let n = self.requests.fetch_add(1, Ordering::Relaxed);
        if let Ok(value) = HeaderValue::from_str(&format!("RQ{n:032x}")) {
            headers.insert(TWILIO_REQUEST_ID, value);
        }
        let concurrency = ctx.limits.iter().find(|l| &*l.name == ACCOUNT_CONCURRENCY);
        if let Some(limit) = concurrency {
            let in_flight = limit.limit.saturating_sub(limit.remaining);
            headers.insert(TWILIO_CONCURRENT_REQUESTS, HeaderValue::from(in_flight));
        }
    }

    fn idempotency_header(&self) -> Option<http::HeaderName> {
        None
    }

    /// Creates only: a POST to `…/Messages.json` or `…/Calls.json`.
    fn is_side_effect(&self, request: &http::Request<Bytes>) -> bool {
        let path = request.uri().path();
        request.method() == Method::POST
            && (path.ends_with("/Messages.json") || path.ends_with("/Calls.json"))
    }
}

/// One message the simulated Twilio accepted, from its ledger.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SentMessage {
    /// The message SID.
    pub sid: String,
    /// The sender (`From`), or the Messaging Service SID.
    pub from: String,
    /// The recipient.
    pub to: String,
    /// The text.
    pub body: String,
    /// Segments it spent of its sender's throughput.
    pub segments: u32,
    /// When the API accepted it.
    pub accepted_at: SystemTime,
    /// When its last segment left the sender's queue.
    pub sent_at: SystemTime,
    /// The sender's queue backlog just after it was queued.
    pub backlog: Duration,
}

/// The default cap of a sender's queue: 10 hours of backlog (Twilio's maximum validity
/// period, 36,000 s).
pub const DEFAULT_QUEUE_CAP: Duration = Duration::from_secs(36_000);

/// A small in-memory Twilio: the success path behind [`TwilioDialect`].
///
/// - `POST …/Messages.json`: `To` and `From` (or `MessagingServiceSid`) and `Body` (or
///   `MediaUrl`) required (400 21604, 21603, 21602). A message from a number joins that
///   sender's queue, which drains at the rate [`TwilioLimits`] gives the number (by default
///   inferred from it); if the backlog would exceed the cap: 400 **21611**. The message is
///   created `queued` with Twilio's `num_segments`.
/// - `GET …/Messages/{Sid}.json`; `GET …/Messages.json` (newest first, `PageSize` default 50,
///   `Page`, `next_page_uri`, filters `To` and `From`).
/// - `POST …/Calls.json` (`To`, `From`, and `Url`, `Twiml` or `ApplicationSid`), `GET
///   …/Calls/{Sid}.json`.
/// - Unknown resources: 404 20404.
#[derive(Debug)]
pub struct TwilioHandler {
    limits: TwilioLimits,
    queue_cap: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    messages: Vec<Value>,
    calls: BTreeMap<String, Value>,
    /// When each sender's queue is empty again.
    busy_until: HashMap<String, SystemTime>,
    sent: Vec<SentMessage>,
}

impl Default for TwilioHandler {
    fn default() -> Self {
        Self::new()
    }
}

impl TwilioHandler {
    /// An empty Twilio with Twilio's default sender rates and a 10-hour queue cap.
    pub fn new() -> Self {
        Self {
            limits: TwilioLimits::new(),
            queue_cap: DEFAULT_QUEUE_CAP,
            state: Mutex::default(),
        }
    }

    /// Sender types and rates as `limits` gives them (its concurrency is not used here: add
    /// [`account_concurrency`] to the upstream).
    pub fn limits(mut self, limits: TwilioLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The longest backlog a sender's queue holds before 21611 (default 10 h).
    pub fn queue_cap(mut self, cap: Duration) -> Self {
        self.queue_cap = cap;
        self
    }

    /// Every message accepted, in order.
    pub fn sent(&self) -> Vec<SentMessage> {
        self.lock().sent.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn create_message(
        &self,
        fields: &Fields,
        ctx: &HandlerContext,
        account: &str,
    ) -> http::Response<Bytes> {
        let Some(to) = fields.get("To") else {
            return error(
                StatusCode::BAD_REQUEST,
                21604,
                "A 'To' phone number is required.",
            );
        };
        let from = fields.get("From");
        let Some(sender) = from.or_else(|| fields.get("MessagingServiceSid")) else {
            return error(
                StatusCode::BAD_REQUEST,
                21603,
                "A 'From' phone number is required.",
            );
        };
        let body = fields.get("Body").unwrap_or_default();
        let media = fields.all("MediaUrl");
        if body.is_empty() && media == 0 {
            return error(StatusCode::BAD_REQUEST, 21602, "Message body is required.");
        }
        let segments = if media > 0 {
            1
        } else {
            segments::count(body).count
        };
        let now = ctx.wall;
        let mut state = self.lock();
        let (sent_at, backlog) = match from {
            Some(from) => {
                let rate = self.limits.rate_of(from);
                let per_segment = rate
                    .period()
                    .checked_div(u32::try_from(rate.amount()).unwrap_or(u32::MAX).max(1))
                    .unwrap_or(rate.period());
                let drain = per_segment.saturating_mul(segments);
                let queued = state
                    .busy_until
                    .get(from)
                    .and_then(|until| until.duration_since(now).ok())
                    .unwrap_or_default();
                if queued.saturating_add(drain) > self.queue_cap {
                    return error(
                        StatusCode::BAD_REQUEST,
                        code::QUEUE_FULL,
                        "This 'From' number has exceeded the maximum number of queued messages",
                    );
                }
                let backlog = queued.saturating_add(drain);
                let until = now.checked_add(backlog).unwrap_or(now);
                state.busy_until.insert(from.to_owned(), until);
                (until, backlog)
            }
            None => (now, Duration::ZERO),
        };
        let sid = format!("SM{:032x}", ctx.index);
        let message = json!({
            "sid": sid,
            "account_sid": account,
            "to": to,
            "from": from,
            "messaging_service_sid": fields.get("MessagingServiceSid"),
            "body": body,
            "status": "queued",
            "num_segments": segments.to_string(),
            "num_media": media.to_string(),
            "direction": "outbound-api",
            "api_version": "2010-04-01",
            "date_created": http_date(now),
            "date_updated": http_date(now),
            "date_sent": null,
            "error_code": null,
            "error_message": null,
            "price": null,
            "price_unit": "USD",
            "uri": format!("/2010-04-01/Accounts/{account}/Messages/{sid}.json"),
        });
        state.messages.push(message.clone());
        state.sent.push(SentMessage {
            sid,
            from: sender.to_owned(),
            to: to.to_owned(),
            body: body.to_owned(),
            segments,
            accepted_at: now,
            sent_at,
            backlog,
        });
        json_response(StatusCode::CREATED, &message)
    }

    fn list_messages(&self, query: &Fields, account: &str) -> http::Response<Bytes> {
        let state = self.lock();
        let matching: Vec<&Value> = state
            .messages
            .iter()
            .rev()
            .filter(|m| query.get("To").is_none_or(|to| m["to"] == to))
            .filter(|m| query.get("From").is_none_or(|from| m["from"] == from))
            .collect();
        let size = query
            .get("PageSize")
            .and_then(|s| s.parse::<usize>().ok())
            .unwrap_or(50)
            .clamp(1, 1000);
        let page = query
            .get("Page")
            .and_then(|p| p.parse::<usize>().ok())
            .unwrap_or(0);
        let start = page.saturating_mul(size);
        let items: Vec<&Value> = matching.iter().skip(start).take(size).copied().collect();
        let base = format!("/2010-04-01/Accounts/{account}/Messages.json");
        let next = (start.saturating_add(size) < matching.len()).then(|| {
            format!(
                "{base}?PageSize={size}&Page={}&PageToken=PASM{}",
                page + 1,
                page + 1
            )
        });
        json_response(
            StatusCode::OK,
            &json!({
                "messages": items,
                "page": page,
                "page_size": size,
                "uri": format!("{base}?PageSize={size}&Page={page}"),
                "first_page_uri": format!("{base}?PageSize={size}&Page=0"),
                "next_page_uri": next,
                "previous_page_uri": null,
            }),
        )
    }

    fn create_call(
        &self,
        fields: &Fields,
        ctx: &HandlerContext,
        account: &str,
    ) -> http::Response<Bytes> {
        let (Some(to), Some(from)) = (fields.get("To"), fields.get("From")) else {
            return error(
                StatusCode::BAD_REQUEST,
                21201,
                "'To' and 'From' are required.",
            );
        };
        if ["Url", "Twiml", "ApplicationSid"]
            .iter()
            .all(|k| fields.get(k).is_none())
        {
            return error(StatusCode::BAD_REQUEST, 21205, "Url parameter is required.");
        }
        let sid = format!("CA{:032x}", ctx.index);
        let call = json!({
            "sid": sid,
            "account_sid": account,
            "to": to,
            "from": from,
            "status": "queued",
            "direction": "outbound-api",
            "date_created": http_date(ctx.wall),
            "uri": format!("/2010-04-01/Accounts/{account}/Calls/{sid}.json"),
        });
        self.lock().calls.insert(sid, call.clone());
        json_response(StatusCode::CREATED, &call)
    }
}

/// Decoded form or query fields.
struct Fields(Vec<(String, String)>);

impl Fields {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn all(&self, name: &str) -> usize {
        self.0.iter().filter(|(k, _)| k == name).count()
    }
}

fn not_found(path: &str) -> http::Response<Bytes> {
    error(
        StatusCode::NOT_FOUND,
        20404,
        &format!("The requested resource {path} was not found"),
    )
}

impl Handler for TwilioHandler {
    fn handle(
        &self,
        request: &http::Request<Bytes>,
        ctx: &HandlerContext,
    ) -> http::Response<Bytes> {
        let path = request.uri().path();
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let method = request.method();
        let query = Fields(form::decode(request.uri().query().unwrap_or("").as_bytes()));
        let fields = Fields(form::decode(request.body()));
        match segments.as_slice() {
            ["2010-04-01", "Accounts", account, "Messages.json"] if method == Method::POST => {
                self.create_message(&fields, ctx, account)
            }
            ["2010-04-01", "Accounts", account, "Messages.json"] if method == Method::GET => {
                self.list_messages(&query, account)
            }
            ["2010-04-01", "Accounts", _, "Messages", file] if method == Method::GET => {
                let sid = file.strip_suffix(".json").unwrap_or(file);
                let state = self.lock();
                match state.messages.iter().find(|m| m["sid"] == sid) {
                    Some(message) => json_response(StatusCode::OK, message),
                    None => not_found(path),
                }
            }
            ["2010-04-01", "Accounts", account, "Calls.json"] if method == Method::POST => {
                self.create_call(&fields, ctx, account)
            }
            ["2010-04-01", "Accounts", _, "Calls", file] if method == Method::GET => {
                let sid = file.strip_suffix(".json").unwrap_or(file);
                match self.lock().calls.get(sid) {
                    Some(call) => json_response(StatusCode::OK, call),
                    None => not_found(path),
                }
            }
            _ => not_found(path),
        }
    }
}

#[cfg(test)]
mod tests;
