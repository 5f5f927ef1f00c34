//! GitHub for the ratewise testkit simulator: [`GitHubSim`], GitHub's dialect and a small
//! in-memory GitHub in one value.
//!
//! - **Primary limit**: one hourly window per resource ([`GitHubSim::primary`], default
//!   5,000 per hour) with the real headers on every response (`x-ratelimit-limit`,
//!   `-remaining`, `-used`, `-reset` in epoch seconds, `-resource`); a refusal is a `403` or a
//!   `429` (alternately, since GitHub's docs allow both) with `x-ratelimit-remaining: 0` and
//!   the `API rate limit exceeded` body.
//! - **Secondary limits**: at most 100 requests in flight, at most 80 content-creating
//!   requests per minute and 500 per hour (sliding windows). A refusal is a `403` with the
//!   secondary-limit message; every other one carries no `retry-after`.
//! - **Conditional requests**: every GET answers with a weak `ETag`; a GET whose
//!   `If-None-Match` still matches is answered `304 Not Modified` and is **not charged** to the
//!   primary window (it is to the concurrency limit).
//! - **Resources**: `GET /repos/{o}/{r}`, issues (list with `state`, `labels`, `per_page`,
//!   `page` and `Link` pagination; get; create; comment), `GET /repos/{o}/{r}/pulls`,
//!   `GET /repos/{o}/{r}/contents/{path}` (base64), `GET /rate_limit`, `GET /search/issues`.
//!   Unknown repositories and issues are `404`; an issue without a title is `422`.
//!
//! ```
//! use std::sync::Arc;
//! use ratewise_github::sim::GitHubSim;
//! use ratewise_github::{ClientBuilder, CreateIssue, GitHubClient};
//! use ratewise_testkit::SimUpstream;
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
//! let github = Arc::new(GitHubSim::new().repo("octo", "hello"));
//! let sim = github.install(SimUpstream::builder()).build();
//! let client = GitHubClient::builder("ghp_sim")
//!     .base_url("http://github.sim")
//!     .transport(Arc::new(sim.transport()))
//!     .clock(sim.clock())
//!     .build()
//!     .unwrap();
//! let issue = client.issues("octo", "hello").create(CreateIssue::new("Crash")).send().await.unwrap();
//! assert_eq!(issue.number, 1);
//! # }
//! ```

mod store;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use ratewise_testkit::dialect::{epoch_seconds_ceil, json_response};
use ratewise_testkit::{
    Dialect, Handler, HandlerContext, IdempotencyError, ResponseContext, ServerLimit,
    SimUpstreamBuilder,
};
use serde_json::json;

use crate::headers::{
    X_GITHUB_REQUEST_ID, X_RATELIMIT_LIMIT, X_RATELIMIT_REMAINING, X_RATELIMIT_RESET,
    X_RATELIMIT_RESOURCE, X_RATELIMIT_USED,
};
use crate::limits::resource_of;

use store::Store;
pub use store::etag_of;

/// The name of the primary (hourly, per resource) limit.
pub const PRIMARY: &str = "primary";
/// The name of the secondary concurrency limit.
pub const SECONDARY_CONCURRENCY: &str = "secondary-concurrency";
/// The name of the secondary content-creation limit per minute.
pub const SECONDARY_CONTENT_MINUTE: &str = "secondary-content-minute";
/// The name of the secondary content-creation limit per hour.
pub const SECONDARY_CONTENT_HOUR: &str = "secondary-content-hour";

/// Marks the operation of a conditional GET that will be answered 304 (not charged).
const NOT_MODIFIED: &str = " (not modified)";

/// The primary-limit refusal body.
pub const PRIMARY_MESSAGE: &str = "API rate limit exceeded for user ID 1. If you reach out to GitHub Support for help, please include the request ID SIM and timestamp.";
/// The secondary-limit refusal body.
pub const SECONDARY_MESSAGE: &str = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID SIM.";

/// GitHub's dialect and an in-memory GitHub: use one `Arc<GitHubSim>` as both the dialect and
/// the handler of a [`SimUpstream`](ratewise_testkit::SimUpstream) ([`GitHubSim::install`]).
#[derive(Debug)]
pub struct GitHubSim {
    store: Store,
    primary_limit: u32,
    primary_window: Duration,
    max_concurrent: u32,
    content: (u32, u32),
    requests: AtomicU64,
    refusals: AtomicU64,
    seen: Mutex<HashMap<String, Seen>>,
}

/// The last primary status reported per resource, for responses the window did not charge.
#[derive(Clone, Copy, Debug)]
struct Seen {
    limit: u64,
    remaining: u64,
    reset: u64,
}

impl Default for GitHubSim {
    fn default() -> Self {
        Self::new()
    }
}

impl GitHubSim {
    /// An empty GitHub with the documented limits: 5,000 per hour per resource, 100 in flight,
    /// 80 content creations per minute and 500 per hour.
    pub fn new() -> Self {
        Self {
            store: Store::default(),
            primary_limit: 5_000,
            primary_window: Duration::from_secs(3600),
            max_concurrent: 100,
            content: (80, 500),
            requests: AtomicU64::new(0),
            refusals: AtomicU64::new(0),
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// `limit` requests per `window` per resource (default 5,000 per hour).
    pub fn primary(mut self, limit: u32, window: Duration) -> Self {
        self.primary_limit = limit;
        self.primary_window = window;
        self
    }

    /// At most `max` requests in flight (default 100).
    pub fn max_concurrent(mut self, max: u32) -> Self {
        self.max_concurrent = max;
        self
    }

    /// Content-creating requests per minute and per hour (default 80 and 500).
    pub fn content(mut self, per_minute: u32, per_hour: u32) -> Self {
        self.content = (per_minute, per_hour);
        self
    }

    /// A repository `owner/name`, empty.
    pub fn repo(self, owner: &str, name: &str) -> Self {
        self.store.add_repo(owner, name);
        self
    }

    /// A file at `path` in `owner/name` (the repository is created if needed).
    pub fn file(self, owner: &str, name: &str, path: &str, content: &[u8]) -> Self {
        self.store.add_file(owner, name, path, content);
        self
    }

    /// An open issue `title` with `labels` in `owner/name` (the repository is created if
    /// needed), numbered after the existing ones.
    pub fn issue(self, owner: &str, name: &str, title: &str, labels: &[&str]) -> Self {
        self.store.add_issue(owner, name, title, labels);
        self
    }

    /// A pull request `title` from `head` into `base` in `owner/name`.
    pub fn pull(self, owner: &str, name: &str, title: &str, head: &str, base: &str) -> Self {
        self.store.add_pull(owner, name, title, head, base);
        self
    }

    /// The server limits: the primary window per resource, the concurrency limit, the
    /// content-creation limits.
    pub fn limits(&self) -> Vec<ServerLimit> {
        let window = |limit, window| ServerLimit::sliding_window(limit, window);
        vec![
            ServerLimit::fixed_window(self.primary_limit, self.primary_window)
                .keyed_by(primary_key)
                .named(PRIMARY),
            ServerLimit::concurrency(self.max_concurrent).named(SECONDARY_CONCURRENCY),
            window(self.content.0, Duration::from_secs(60))
                .keyed_by(content_key)
                .named(SECONDARY_CONTENT_MINUTE),
            window(self.content.1, Duration::from_secs(3600))
                .keyed_by(content_key)
                .named(SECONDARY_CONTENT_HOUR),
        ]
    }

    /// `builder` with this GitHub as dialect and handler, and its [`limits`](Self::limits).
    pub fn install(self: &Arc<Self>, builder: SimUpstreamBuilder) -> SimUpstreamBuilder {
        self.limits()
            .into_iter()
            .fold(builder, |b, l| b.limit(l))
            .dialect(Arc::clone(self))
            .handler(Arc::clone(self))
    }

    /// The issues created in `owner/name` so far.
    pub fn issue_count(&self, owner: &str, name: &str) -> usize {
        self.store.issue_count(owner, name)
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, HashMap<String, Seen>> {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// What the primary window of `resource` looks like now, for `/rate_limit`.
    fn primary_status(&self, resource: &str, wall: SystemTime) -> Seen {
        let now = epoch_seconds_ceil(wall);
        match self.seen().get(resource) {
            Some(seen) if seen.reset > now => *seen,
            _ => Seen {
                limit: u64::from(self.primary_limit),
                remaining: u64::from(self.primary_limit),
                reset: epoch_seconds_ceil(wall.checked_add(self.primary_window).unwrap_or(wall)),
            },
        }
    }
}

/// The primary window's key: the resource; `None` for 304s and `/rate_limit` (not charged).
fn primary_key(operation: &str) -> Option<String> {
    if operation.ends_with(NOT_MODIFIED) {
        return None;
    }
    let path = operation.split_once(' ').map_or(operation, |(_, p)| p);
    resource_of(store::route(path)).map(str::to_owned)
}

/// Content-creating requests share one budget: POSTs but searches and renders.
fn content_key(operation: &str) -> Option<String> {
    let path = operation.strip_prefix("POST ")?;
    let path = store::route(path);
    (!path.starts_with("/search/") && path != "/graphql" && !path.starts_with("/markdown"))
        .then(String::new)
}

fn header(value: u64) -> HeaderValue {
    HeaderValue::from(value)
}

impl Dialect for GitHubSim {
    fn throttle_response(&self, ctx: &ResponseContext<'_>) -> http::Response<Bytes> {
        let refusal = self.refusals.fetch_add(1, Ordering::Relaxed);
        let primary = ctx
            .limits
            .iter()
            .filter(|l| l.exceeded)
            .all(|l| &*l.name == PRIMARY)
            && ctx.limits.iter().any(|l| l.exceeded);
        if primary {
            let status = if refusal.is_multiple_of(2) {
                StatusCode::FORBIDDEN
            } else {
                StatusCode::TOO_MANY_REQUESTS
            };
            return json_response(
                status,
                &json!({"message": PRIMARY_MESSAGE,
                        "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"}),
            );
        }
        let mut response = json_response(
            StatusCode::FORBIDDEN,
            &json!({"message": SECONDARY_MESSAGE,
                    "documentation_url": "https://docs.github.com/free-pro-team@latest/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"}),
        );
        if refusal.is_multiple_of(2) {
            let wait = ctx.retry_after.unwrap_or(Duration::from_secs(60));
            let secs = wait
                .as_secs()
                .saturating_add(u64::from(wait.subsec_nanos() > 0));
            response
                .headers_mut()
                .insert(http::header::RETRY_AFTER, header(secs.max(1)));
        }
        response
    }

    fn server_error_response(
        &self,
        status: StatusCode,
        _ctx: &ResponseContext<'_>,
    ) -> http::Response<Bytes> {
        json_response(status, &json!({"message": "Server Error"}))
    }

    fn idempotency_error_response(
        &self,
        _error: IdempotencyError,
        _ctx: &ResponseContext<'_>,
    ) -> http::Response<Bytes> {
        // GitHub reads no idempotency key ([`Dialect::idempotency_header`] is `None`).
        json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            &json!({"message": "Server Error"}),
        )
    }

    fn decorate(&self, headers: &mut HeaderMap, ctx: &ResponseContext<'_>) {
        let n = self.requests.fetch_add(1, Ordering::Relaxed);
        if let Ok(id) = HeaderValue::from_str(&format!("SIM0:{n:X}")) {
            headers.insert(X_GITHUB_REQUEST_ID, id);
        }
        let path = ctx.operation.split_once(' ').map_or("", |(_, p)| p);
        let path = path.strip_suffix(NOT_MODIFIED).unwrap_or(path);
        let resource = resource_of(store::route(path)).unwrap_or("core");
        let status = ctx.limits.iter().find(|l| &*l.name == PRIMARY);
        let seen = match status {
            Some(limit) => {
                let seen = Seen {
                    limit: limit.limit,
                    remaining: if limit.exceeded { 0 } else { limit.remaining },
                    reset: ctx.reset_epoch(limit),
                };
                self.seen().insert(resource.to_owned(), seen);
                seen
            }
            None => self.primary_status(resource, ctx.wall),
        };
        headers.insert(X_RATELIMIT_LIMIT, header(seen.limit));
        headers.insert(X_RATELIMIT_REMAINING, header(seen.remaining));
        headers.insert(
            X_RATELIMIT_USED,
            header(seen.limit.saturating_sub(seen.remaining)),
        );
        headers.insert(X_RATELIMIT_RESET, header(seen.reset));
        if let Ok(value) = HeaderValue::from_str(resource) {
            headers.insert(X_RATELIMIT_RESOURCE, value);
        }
    }

    fn idempotency_header(&self) -> Option<http::HeaderName> {
        None
    }

    fn operation(&self, request: &http::Request<Bytes>) -> String {
        let operation = format!("{} {}", request.method(), request.uri().path());
        if request.method() == Method::GET
            && let Some(sent) = request.headers().get(http::header::IF_NONE_MATCH)
            && let Some(current) = self.store.etag(request)
            && etag_matches(sent.as_bytes(), &current)
        {
            return format!("{operation}{NOT_MODIFIED}");
        }
        operation
    }
}

/// True when an `If-None-Match` value names `current` (weak comparison, lists allowed, `*`).
fn etag_matches(sent: &[u8], current: &str) -> bool {
    let Ok(sent) = std::str::from_utf8(sent) else {
        return false;
    };
    let strip = |tag: &str| tag.trim().trim_start_matches("W/").to_owned();
    sent.split(',')
        .any(|tag| tag.trim() == "*" || strip(tag) == strip(current))
}

impl Handler for GitHubSim {
    fn handle(
        &self,
        request: &http::Request<Bytes>,
        ctx: &HandlerContext,
    ) -> http::Response<Bytes> {
        if ctx.operation.ends_with(NOT_MODIFIED)
            && let Some(current) = self.store.etag(request)
        {
            let mut response = http::Response::new(Bytes::new());
            *response.status_mut() = StatusCode::NOT_MODIFIED;
            if let Ok(value) = HeaderValue::from_str(&current) {
                response.headers_mut().insert(http::header::ETAG, value);
            }
            return response;
        }
        if request.method() == Method::GET && store::route(request.uri().path()) == "/rate_limit" {
            let resources: serde_json::Map<String, serde_json::Value> =
                ["core", "search", "code_search", "graphql"]
                    .into_iter()
                    .map(|r| {
                        let s = self.primary_status(r, ctx.wall);
                        let used = s.limit.saturating_sub(s.remaining);
                        let value = json!({"limit": s.limit, "remaining": s.remaining,
                                           "used": used, "reset": s.reset});
                        (r.to_owned(), value)
                    })
                    .collect();
            let core = resources.get("core").cloned();
            return json_response(
                StatusCode::OK,
                &json!({"resources": resources, "rate": core}),
            );
        }
        self.store.handle(request, ctx)
    }
}

#[cfg(test)]
mod tests;
