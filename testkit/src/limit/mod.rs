//! Server-side limit algorithms: what the simulated upstream enforces.
//!
//! These model the *server*, written independently of the core's client limiters so that a bug
//! in one cannot hide a bug in the other. A [`ServerLimit`] is an algorithm ([`Algorithm`]), a
//! [`Scope`] (one shared budget, one per operation, one per header value such as an API key)
//! and whether failed requests still count ([`ServerLimit::count_failures`]; OpenAI counts
//! them). An upstream enforces several at once (e.g. a global limit plus a per-endpoint one);
//! a request is admitted only when every limit that applies to it admits it, and then each of
//! them is charged one request.

mod concurrency;
mod fixed_window;
mod sliding_window;
mod token_bucket;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::HeaderName;

use concurrency::Concurrency;
use fixed_window::FixedWindow;
use sliding_window::SlidingWindow;
use token_bucket::TokenBucket;

/// How a server limit counts requests.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Algorithm {
    /// `burst` tokens refilled continuously at `rate_per_sec`; a request takes one. Starts full.
    TokenBucket {
        /// Tokens added per second (a non-positive or non-finite rate never refills).
        rate_per_sec: f64,
        /// Bucket size: the most requests admitted at once.
        burst: u32,
    },
    /// `limit` requests per `window`; windows are aligned to the upstream's start.
    FixedWindow {
        /// Requests admitted per window.
        limit: u32,
        /// Window length (at least 1 ms).
        window: Duration,
    },
    /// At most `limit` requests in any trailing `window` (an exact log).
    SlidingWindow {
        /// Requests admitted per trailing window.
        limit: u32,
        /// Window length.
        window: Duration,
    },
    /// At most `max` requests in flight at once.
    Concurrency {
        /// Requests in flight at once.
        max: u32,
    },
}

/// Which requests share one budget of a limit.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Scope {
    /// Every request shares one budget (the default).
    Global,
    /// Each operation (`"POST /v1/charges"`) has its own budget.
    PerOperation,
    /// Only this operation is limited, with one budget.
    Operation(String),
    /// Each value of this request header (an API key, an account id) has its own budget;
    /// requests without it share one.
    PerHeader(HeaderName),
    /// The budget key is computed from the operation (`"POST /v1/customers/cus_1"`); requests
    /// for which it returns `None` are not limited. Models per-object locks.
    Keyed(OperationKey),
}

/// A function from an operation (`"POST /v1/customers/cus_1"`) to its budget key, or `None`
/// when the limit does not apply: see [`Scope::Keyed`].
#[derive(Clone, Copy)]
pub struct OperationKey(pub fn(&str) -> Option<String>);

impl PartialEq for OperationKey {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::fn_addr_eq(self.0, other.0)
    }
}

impl Eq for OperationKey {}

impl std::fmt::Debug for OperationKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OperationKey(fn)")
    }
}

/// One limit the simulated server enforces.
///
/// Defaults: scope [`Scope::Global`], failed requests do not count, name `"requests"`, each
/// request spends one unit.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerLimit {
    name: Arc<str>,
    algorithm: Algorithm,
    scope: Scope,
    count_failures: bool,
    cost_header: Option<HeaderName>,
}

impl ServerLimit {
    /// A limit with this algorithm and the documented defaults.
    pub fn new(algorithm: Algorithm) -> Self {
        Self {
            name: Arc::from("requests"),
            algorithm,
            scope: Scope::Global,
            count_failures: false,
            cost_header: None,
        }
    }

    /// A token bucket of `burst` requests refilled at `rate_per_sec`.
    pub fn token_bucket(rate_per_sec: f64, burst: u32) -> Self {
        Self::new(Algorithm::TokenBucket {
            rate_per_sec,
            burst,
        })
    }

    /// A fixed window of `limit` requests per `window`.
    pub fn fixed_window(limit: u32, window: Duration) -> Self {
        Self::new(Algorithm::FixedWindow { limit, window })
    }

    /// A sliding window of `limit` requests per trailing `window`.
    pub fn sliding_window(limit: u32, window: Duration) -> Self {
        Self::new(Algorithm::SlidingWindow { limit, window })
    }

    /// At most `max` requests in flight.
    pub fn concurrency(max: u32) -> Self {
        Self::new(Algorithm::Concurrency { max })
    }

    /// Names the limit (default `"requests"`): dialects may put it in headers or bodies.
    pub fn named(mut self, name: impl Into<Arc<str>>) -> Self {
        self.name = name.into();
        self
    }

    /// Sets which requests share a budget (default [`Scope::Global`]).
    pub fn scope(mut self, scope: Scope) -> Self {
        self.scope = scope;
        self
    }

    /// One budget per operation (shorthand for [`Scope::PerOperation`]).
    pub fn per_operation(self) -> Self {
        self.scope(Scope::PerOperation)
    }

    /// Limits only `operation` (`"POST /v1/charges"`), shorthand for [`Scope::Operation`].
    pub fn for_operation(self, operation: impl Into<String>) -> Self {
        self.scope(Scope::Operation(operation.into()))
    }

    /// One budget per key that `key` computes from the operation; operations it maps to `None`
    /// are not limited (shorthand for [`Scope::Keyed`]).
    pub fn keyed_by(self, key: fn(&str) -> Option<String>) -> Self {
        self.scope(Scope::Keyed(OperationKey(key)))
    }

    /// One budget per value of `header` (shorthand for [`Scope::PerHeader`]).
    pub fn per_header(self, header: HeaderName) -> Self {
        self.scope(Scope::PerHeader(header))
    }

    /// Whether requests that fail (throttled by any limit, or answered by a fault) still spend
    /// this budget (default `false`). OpenAI counts them, so a retry storm keeps itself
    /// throttled. A concurrency limit is never charged for a request it did not admit.
    pub fn count_failures(mut self, yes: bool) -> Self {
        self.count_failures = yes;
        self
    }

    /// Each request spends the number in its `header` instead of one unit (OpenAI's tokens per
    /// minute: a request spends its estimated tokens). A request without the header, or with a
    /// value that is not a whole number, spends one. A concurrency limit ignores it.
    pub fn cost_from_header(mut self, header: HeaderName) -> Self {
        self.cost_header = Some(header);
        self
    }

    /// The units `headers`' request spends of this limit.
    fn amount(&self, headers: &http::HeaderMap) -> u64 {
        self.cost_header
            .as_ref()
            .and_then(|name| headers.get(name))
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(1)
    }

    /// The limit's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The limit's algorithm.
    pub fn algorithm(&self) -> &Algorithm {
        &self.algorithm
    }

    /// The budget key for a request, or `None` if this limit does not apply to it.
    fn key_for(&self, operation: &str, headers: &http::HeaderMap) -> Option<String> {
        match &self.scope {
            Scope::Global => Some(String::new()),
            Scope::PerOperation => Some(operation.to_owned()),
            Scope::Operation(only) => (only == operation).then(String::new),
            Scope::PerHeader(name) => Some(
                headers
                    .get(name)
                    .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                    .unwrap_or_default(),
            ),
            Scope::Keyed(OperationKey(key)) => key(operation),
        }
    }

    fn meter(&self, origin: Instant, now: Instant) -> Meter {
        match self.algorithm {
            Algorithm::TokenBucket {
                rate_per_sec,
                burst,
            } => Meter::TokenBucket(TokenBucket::new(rate_per_sec, burst, now)),
            Algorithm::FixedWindow { limit, window } => {
                Meter::FixedWindow(FixedWindow::new(limit, window, origin))
            }
            Algorithm::SlidingWindow { limit, window } => {
                Meter::SlidingWindow(SlidingWindow::new(limit, window))
            }
            Algorithm::Concurrency { max } => Meter::Concurrency(Concurrency::new(max)),
        }
    }
}

/// One limit's state for one request, as the server reports it in headers.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LimitStatus {
    /// The limit's name ([`ServerLimit::named`]).
    pub name: Arc<str>,
    /// The budget's size (bucket size, requests per window, slots).
    pub limit: u64,
    /// What is left after this request.
    pub remaining: u64,
    /// When the budget is whole again: the window's end, the bucket full, the newest logged
    /// request expired (a sliding window); zero for a concurrency limit.
    pub reset_after: Duration,
    /// True if this limit refused the request.
    pub exceeded: bool,
    /// True for a concurrency limit: `limit` and `remaining` count requests in flight, and
    /// nothing resets on a clock. Dialects that announce windowed quotas (`X-RateLimit-*`)
    /// leave it out, as concurrency-limited APIs (Twilio) do.
    pub in_flight: bool,
}

/// One key's live state of one limit.
#[derive(Clone, Debug)]
enum Meter {
    TokenBucket(TokenBucket),
    FixedWindow(FixedWindow),
    SlidingWindow(SlidingWindow),
    Concurrency(Concurrency),
}

impl Meter {
    fn check(&mut self, now: Instant, amount: u64) -> Result<(), Option<Duration>> {
        match self {
            Self::TokenBucket(m) => m.check(now, amount),
            Self::FixedWindow(m) => m.check(now, amount),
            Self::SlidingWindow(m) => m.check(now, amount),
            Self::Concurrency(m) => m.check(),
        }
    }

    /// Spends `amount` units; a concurrency slot is taken only when `admitted`.
    fn charge(&mut self, now: Instant, amount: u64, admitted: bool) {
        match self {
            Self::TokenBucket(m) => m.charge(now, amount),
            Self::FixedWindow(m) => m.charge(now, amount),
            Self::SlidingWindow(m) => m.charge(now, amount),
            Self::Concurrency(m) => {
                if admitted {
                    m.acquire();
                }
            }
        }
    }

    fn status(&mut self, now: Instant) -> (u64, u64, Duration) {
        match self {
            Self::TokenBucket(m) => (m.limit(), m.remaining(now), m.reset_after(now)),
            Self::FixedWindow(m) => (m.limit(), m.remaining(now), m.reset_after(now)),
            Self::SlidingWindow(m) => (m.limit(), m.remaining(now), m.reset_after(now)),
            Self::Concurrency(m) => (m.limit(), m.remaining(), Duration::ZERO),
        }
    }
}

/// A slot held by an admitted request in a concurrency limit: `(limit index, key)`.
pub(crate) type Slot = (usize, String);

/// What the limits decided about one request.
#[derive(Debug)]
pub(crate) struct Admission {
    /// `None` if admitted; else the longest wait any refusing limit announced (inner `None`:
    /// no refusing limit can say).
    pub(crate) refused: Option<Option<Duration>>,
    /// Every applicable limit's state after the decision, in the order they were configured.
    pub(crate) statuses: Vec<LimitStatus>,
    /// Concurrency slots to release when the request completes.
    pub(crate) slots: Vec<Slot>,
}

/// The live state of every configured limit, keyed by budget.
#[derive(Debug)]
pub(crate) struct LimitSet {
    limits: Vec<ServerLimit>,
    meters: Vec<HashMap<String, Meter>>,
    origin: Instant,
}

impl LimitSet {
    pub(crate) fn new(limits: Vec<ServerLimit>, origin: Instant) -> Self {
        let meters = limits.iter().map(|_| HashMap::new()).collect();
        Self {
            limits,
            meters,
            origin,
        }
    }

    /// The limits that apply to a request: `(index, budget key, units it spends)`.
    fn applicable(&self, operation: &str, headers: &http::HeaderMap) -> Vec<(usize, String, u64)> {
        self.limits
            .iter()
            .enumerate()
            .filter_map(|(i, l)| {
                l.key_for(operation, headers)
                    .map(|k| (i, k, l.amount(headers)))
            })
            .collect()
    }

    fn with_meter<T>(
        &mut self,
        index: usize,
        key: &str,
        now: Instant,
        f: impl FnOnce(&mut Meter) -> T,
    ) -> Option<T> {
        let limit = self.limits.get(index)?;
        let meters = self.meters.get_mut(index)?;
        if !meters.contains_key(key) {
            meters.insert(key.to_owned(), limit.meter(self.origin, now));
        }
        meters.get_mut(key).map(f)
    }

    /// Decides whether a request is admitted, and charges the limits accordingly.
    pub(crate) fn admit(
        &mut self,
        operation: &str,
        headers: &http::HeaderMap,
        now: Instant,
    ) -> Admission {
        let applicable = self.applicable(operation, headers);
        let mut exceeded = Vec::with_capacity(applicable.len());
        let mut refused: Option<Option<Duration>> = None;
        for (index, key, amount) in &applicable {
            let verdict = self.with_meter(*index, key, now, |m| m.check(now, *amount));
            let denied = matches!(verdict, Some(Err(_)));
            if let Some(Err(wait)) = verdict {
                refused = Some(match refused {
                    None => wait,
                    Some(prev) => longest(prev, wait),
                });
            }
            exceeded.push(denied);
        }
        let admitted = refused.is_none();
        let mut slots = Vec::new();
        for (index, key, amount) in &applicable {
            let counts = admitted || self.counts_failures(*index);
            if counts {
                self.with_meter(*index, key, now, |m| m.charge(now, *amount, admitted));
                if admitted && self.is_concurrency(*index) {
                    slots.push((*index, key.clone()));
                }
            }
        }
        let statuses = self.statuses(&applicable, &exceeded, now);
        Admission {
            refused,
            statuses,
            slots,
        }
    }

    /// Charges the limits that count failures for a request answered without admission (a
    /// fault), and reports the applicable limits' state.
    pub(crate) fn charge_failure(
        &mut self,
        operation: &str,
        headers: &http::HeaderMap,
        now: Instant,
    ) -> Vec<LimitStatus> {
        let applicable = self.applicable(operation, headers);
        for (index, key, amount) in &applicable {
            if self.counts_failures(*index) {
                self.with_meter(*index, key, now, |m| m.charge(now, *amount, false));
            }
        }
        let exceeded = vec![false; applicable.len()];
        self.statuses(&applicable, &exceeded, now)
    }

    /// Releases concurrency slots taken by an admitted request.
    pub(crate) fn release(&mut self, slots: &[Slot]) {
        for (index, key) in slots {
            if let Some(Meter::Concurrency(m)) =
                self.meters.get_mut(*index).and_then(|m| m.get_mut(key))
            {
                m.release();
            }
        }
    }

    fn counts_failures(&self, index: usize) -> bool {
        self.limits.get(index).is_some_and(|l| l.count_failures)
    }

    fn is_concurrency(&self, index: usize) -> bool {
        self.limits
            .get(index)
            .is_some_and(|l| matches!(l.algorithm, Algorithm::Concurrency { .. }))
    }

    fn statuses(
        &mut self,
        applicable: &[(usize, String, u64)],
        exceeded: &[bool],
        now: Instant,
    ) -> Vec<LimitStatus> {
        let mut out = Vec::with_capacity(applicable.len());
        for ((index, key, _), exceeded) in applicable.iter().zip(exceeded) {
            let Some(limit) = self.limits.get(*index) else {
                continue;
            };
            let name = limit.name.clone();
            let in_flight = matches!(limit.algorithm, Algorithm::Concurrency { .. });
            if let Some((limit, remaining, reset_after)) =
                self.with_meter(*index, key, now, |m| m.status(now))
            {
                out.push(LimitStatus {
                    name,
                    limit,
                    remaining,
                    reset_after,
                    exceeded: *exceeded,
                    in_flight,
                });
            }
        }
        out
    }
}

/// The longer of two announced waits; an unknown wait loses to a known one.
fn longest(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (Some(a), None) | (None, Some(a)) => Some(a),
        (None, None) => None,
    }
}

/// Seconds as a `Duration`, saturating; NaN and negatives are zero.
pub(crate) fn secs_to_duration(secs: f64) -> Duration {
    if secs.is_nan() || secs <= 0.0 {
        Duration::ZERO
    } else {
        Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX)
    }
}
