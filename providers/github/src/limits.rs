//! GitHub's budgets: one primary budget per resource, learned from the headers, plus the
//! secondary-limit avoidance GitHub's docs ask for.
//!
//! # Primary: one pacer per resource
//!
//! Each response says which resource it spent (`x-ratelimit-resource`: `core`, `search`,
//! `code_search`, `graphql`, …), how much is left and when the hour resets. A [`KeyedLimiter`]
//! keeps one [`QuotaPacer`] per resource (`github.resource:<name>`, [`resource`]), created the
//! first time a request names it or a response reports it. A request's cost names its resource
//! by path ([`resource_of`]): `/search/code` → `code_search`, other `/search/…` → `search`,
//! `/graphql` → `graphql`, `/rate_limit` → none (it does not count), anything else → `core`.
//! Until a resource's first response the pacer admits freely; then it spreads what is left to
//! the reset, and at `remaining: 0` it holds every caller of that resource until the reset.
//!
//! # Secondary limits: avoided, not discovered
//!
//! GitHub offers no way to read the secondary limits' state, and continuing to send while
//! limited "may result in the banning of your integration". So the client stays under the
//! documented numbers (each configurable, each can be turned off; [`GitHubLimits::off`] turns
//! all of them off):
//!
//! | budget | default | limiter |
//! |---|---|---|
//! | [`CONCURRENT`] | at most **100** requests in flight | [`ConcurrencyLimiter`] |
//! | [`WRITE`] (POST, PATCH, PUT, DELETE) | serialized, **≥ 1 s** between starts | [`ConcurrencyLimiter`] of 1 + [`GcraLimiter`] |
//! | [`CONTENT`] (content-creating POSTs) | **≤ 80 per minute** and **≤ 500 per hour** | two [`SlidingWindowLimiter`]s |
//! | [`SEARCH`] (`/search/…`) | **≥ 2 s** between searches | [`GcraLimiter`] |
//!
//! A POST is content-creating unless it is a search, `/graphql` or `/markdown` (a render).
//!
//! # Secondary limits: obeyed when hit
//!
//! [`SECONDARY`] is charged by every request and enforced by a [`QuotaPacer`] that admits
//! freely until a secondary-limit response pauses it (see [`provider`](crate::provider)): then
//! every caller of the client waits out the pause, not only the one that was refused.

use std::sync::Arc;
use std::time::Duration;

use ratewise_core::clock::SharedClock;
use ratewise_core::limit::{
    BudgetName, ConcurrencyLimiter, GcraLimiter, KeyedLimiter, Limiter, QuotaPacer, Rate,
    SlidingWindowLimiter,
};

/// Requests in flight at once.
pub const CONCURRENT: BudgetName = BudgetName::from_static("github.concurrent");
/// Mutating requests (serialized and spaced).
pub const WRITE: BudgetName = BudgetName::from_static("github.write");
/// Content-creating requests (issues, comments, pull requests…).
pub const CONTENT: BudgetName = BudgetName::from_static("github.content");
/// Search requests (spaced).
pub const SEARCH: BudgetName = BudgetName::from_static("github.search");
/// The pause a secondary-limit response puts on every request of the client.
pub const SECONDARY: BudgetName = BudgetName::from_static("github.secondary");

/// The prefix of the per-resource primary budgets.
pub const RESOURCE_PREFIX: &str = "github.resource:";

/// The primary budget of `resource`: `github.resource:<resource>`.
pub fn resource(resource: &str) -> BudgetName {
    BudgetName::new(format!("{RESOURCE_PREFIX}{resource}"))
}

/// The resource a request to `path` (relative to the API root, query allowed) spends, by
/// GitHub's rules; `None` for `/rate_limit`, which spends none.
pub fn resource_of(path: &str) -> Option<&'static str> {
    let path = path.split('?').next().unwrap_or(path);
    if path == "/rate_limit" {
        None
    } else if path.starts_with("/search/code") {
        Some("code_search")
    } else if path.starts_with("/search/") {
        Some("search")
    } else if path == "/graphql" {
        Some("graphql")
    } else {
        Some(crate::headers::DEFAULT_RESOURCE)
    }
}

/// The secondary-limit avoidance settings; `None` turns one rule off.
///
/// Defaults ([`GitHubLimits::new`]) are GitHub's documented numbers: 100 concurrent requests,
/// writes serialized 1 s apart, 80 content-creating requests per minute and 500 per hour,
/// searches 2 s apart.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct GitHubLimits {
    /// Requests in flight at once (default 100).
    pub max_concurrent: Option<u64>,
    /// Writes one at a time, at least this far apart (default 1 s).
    pub write_interval: Option<Duration>,
    /// Content-creating requests per minute (default 80).
    pub content_per_minute: Option<u64>,
    /// Content-creating requests per hour (default 500).
    pub content_per_hour: Option<u64>,
    /// Searches at least this far apart (default 2 s).
    pub search_interval: Option<Duration>,
}

impl Default for GitHubLimits {
    fn default() -> Self {
        Self::new()
    }
}

impl GitHubLimits {
    /// GitHub's documented numbers.
    pub const fn new() -> Self {
        Self {
            max_concurrent: Some(100),
            write_interval: Some(Duration::from_secs(1)),
            content_per_minute: Some(80),
            content_per_hour: Some(500),
            search_interval: Some(Duration::from_secs(2)),
        }
    }

    /// No secondary-limit avoidance at all (the primary pacers and the secondary pause stay).
    pub const fn off() -> Self {
        Self {
            max_concurrent: None,
            write_interval: None,
            content_per_minute: None,
            content_per_hour: None,
            search_interval: None,
        }
    }

    /// These limits with at most `max` requests in flight (`None`: unbounded).
    pub fn max_concurrent(mut self, max: Option<u64>) -> Self {
        self.max_concurrent = max;
        self
    }

    /// These limits with writes serialized `interval` apart (`None`: writes unpaced).
    pub fn write_interval(mut self, interval: Option<Duration>) -> Self {
        self.write_interval = interval;
        self
    }

    /// These limits with other content-creation budgets per minute and per hour.
    pub fn content(mut self, per_minute: Option<u64>, per_hour: Option<u64>) -> Self {
        self.content_per_minute = per_minute;
        self.content_per_hour = per_hour;
        self
    }

    /// These limits with searches `interval` apart (`None`: searches unpaced).
    pub fn search_interval(mut self, interval: Option<Duration>) -> Self {
        self.search_interval = interval;
        self
    }

    /// The limiters on `clock`: the per-resource pacers and the secondary pause always, then
    /// each avoidance rule that is on.
    pub fn limiters(&self, clock: &SharedClock) -> Vec<Arc<dyn Limiter>> {
        let mut limiters: Vec<Arc<dyn Limiter>> = vec![
            Arc::new(resource_limiter(clock)),
            Arc::new(QuotaPacer::new(SECONDARY).clock(Arc::clone(clock))),
        ];
        if let Some(max) = self.max_concurrent {
            limiters.push(Arc::new(
                ConcurrencyLimiter::new(max)
                    .budget(CONCURRENT)
                    .clock(Arc::clone(clock)),
            ));
        }
        if let Some(interval) = self.write_interval {
            limiters.push(Arc::new(
                ConcurrencyLimiter::new(1)
                    .budget(WRITE)
                    .clock(Arc::clone(clock)),
            ));
            limiters.push(Arc::new(spacing(interval, WRITE, clock)));
        }
        for (limit, window) in [
            (self.content_per_minute, Duration::from_secs(60)),
            (self.content_per_hour, Duration::from_secs(3600)),
        ] {
            if let Some(limit) = limit {
                limiters.push(Arc::new(
                    SlidingWindowLimiter::new(limit, window)
                        .budget(CONTENT)
                        .clock(Arc::clone(clock)),
                ));
            }
        }
        if let Some(interval) = self.search_interval {
            limiters.push(Arc::new(spacing(interval, SEARCH, clock)));
        }
        limiters
    }
}

/// One unit per `interval`, no burst.
fn spacing(interval: Duration, budget: BudgetName, clock: &SharedClock) -> GcraLimiter {
    GcraLimiter::new(Rate::new(1, interval))
        .burst(1)
        .budget(budget)
        .clock(Arc::clone(clock))
}

/// The per-resource primary budgets: one [`QuotaPacer`] per `github.resource:<name>`,
/// created on first use.
pub fn resource_limiter(clock: &SharedClock) -> KeyedLimiter {
    let member_clock = Arc::clone(clock);
    KeyedLimiter::new(RESOURCE_PREFIX, move |name: &BudgetName| {
        Arc::new(QuotaPacer::new(name.clone()).clock(Arc::clone(&member_clock))) as Arc<dyn Limiter>
    })
    .clock(Arc::clone(clock))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratewise_core::clock::{Clock, ManualClock};
    use ratewise_core::limit::{CompositeLimiter, Cost, QuotaSnapshot, ThrottleReason};

    fn composite(limits: &GitHubLimits, clock: &ManualClock) -> CompositeLimiter {
        limits
            .limiters(&clock.shared())
            .into_iter()
            .fold(CompositeLimiter::new().clock(clock.shared()), |c, l| {
                c.with(l)
            })
    }

    #[test]
    fn paths_name_their_resource() {
        assert_eq!(resource_of("/repos/o/r/issues?page=2"), Some("core"));
        assert_eq!(resource_of("/search/issues?q=bug"), Some("search"));
        assert_eq!(resource_of("/search/code?q=x"), Some("code_search"));
        assert_eq!(resource_of("/graphql"), Some("graphql"));
        assert_eq!(resource_of("/rate_limit"), None);
        assert_eq!(resource("core").as_str(), "github.resource:core");
    }

    #[test]
    fn writes_are_serialized_and_spaced_a_second_apart() {
        let clock = ManualClock::new();
        let limiter = composite(&GitHubLimits::new(), &clock);
        let write = Cost::none().with(WRITE, 1);
        let first = limiter.try_acquire(&write).unwrap();
        assert!(limiter.try_acquire(&write).is_err(), "one at a time");
        drop(first);
        assert!(limiter.try_acquire(&write).is_err(), "and a second apart");
        clock.advance(Duration::from_secs(1));
        let _second = limiter.try_acquire(&write).unwrap();
    }

    #[test]
    fn content_creation_stops_at_eighty_a_minute() {
        let clock = ManualClock::new();
        let limits = GitHubLimits::off().content(Some(80), Some(500));
        let limiter = composite(&limits, &clock);
        let content = Cost::none().with(CONTENT, 1);
        for _ in 0..80 {
            let _ = limiter.try_acquire(&content).unwrap();
        }
        assert!(limiter.try_acquire(&content).is_err());
        clock.advance(Duration::from_secs(60));
        let _ = limiter.try_acquire(&content).unwrap();
    }

    #[test]
    fn searches_are_two_seconds_apart_and_off_means_off() {
        let clock = ManualClock::new();
        let limiter = composite(&GitHubLimits::new(), &clock);
        let search = Cost::none().with(SEARCH, 1);
        let _ = limiter.try_acquire(&search).unwrap();
        assert!(limiter.try_acquire(&search).is_err());
        clock.advance(Duration::from_secs(2));
        let _ = limiter.try_acquire(&search).unwrap();
        let off = composite(&GitHubLimits::off(), &clock);
        for _ in 0..200 {
            let cost = Cost::none()
                .with(SEARCH, 1)
                .with(WRITE, 1)
                .with(CONTENT, 1)
                .with(CONCURRENT, 1);
            let _ = off.try_acquire(&cost).unwrap();
        }
        assert_eq!(GitHubLimits::off().limiters(&clock.shared()).len(), 2);
        assert_eq!(GitHubLimits::new().limiters(&clock.shared()).len(), 8);
    }

    #[test]
    fn a_hundred_requests_in_flight_at_most() {
        let clock = ManualClock::new();
        let limiter = composite(&GitHubLimits::new(), &clock);
        let cost = Cost::none().with(CONCURRENT, 1);
        let held: Vec<_> = (0..100)
            .map(|_| limiter.try_acquire(&cost).unwrap())
            .collect();
        assert!(limiter.try_acquire(&cost).is_err());
        drop(held);
        let _ = limiter.try_acquire(&cost).unwrap();
    }

    #[test]
    fn each_resource_is_paced_on_its_own() {
        let clock = ManualClock::new();
        let limiter = composite(&GitHubLimits::new(), &clock);
        let now = clock.now();
        limiter.observe(&QuotaSnapshot::new(
            resource("search"),
            0,
            now + Duration::from_secs(30),
            now,
        ));
        let refused = limiter
            .try_acquire(&Cost::none().with(resource("search"), 1))
            .unwrap_err();
        assert_eq!(refused.reason, ThrottleReason::QuotaExhausted);
        assert_eq!(refused.budget, resource("search"));
        let _ = limiter
            .try_acquire(&Cost::none().with(resource("core"), 1))
            .unwrap();
    }
}
