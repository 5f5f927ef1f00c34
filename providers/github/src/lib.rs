//! A GitHub REST client on ratewise: one primary budget per resource learned from the headers,
//! secondary-limit avoidance built in, GitHub's 403-vs-429 rules, and conditional requests that
//! answer unchanged GETs from an ETag cache without spending budget.
//!
//! | module | owns |
//! |---|---|
//! | [`provider`] | [`GitHubProvider`]: how responses read (primary, secondary, permanent), costs |
//! | [`limits`] | per-resource pacers and the secondary-limit avoidance ([`GitHubLimits`]) |
//! | [`headers`] | `x-ratelimit-*`, `x-github-request-id`, `Link` pagination |
//! | [`error`] | [`GitHubError`], the typed error body (`message`, `documentation_url`, `errors[]`) |
//! | [`client`] | [`GitHubClient`]: builder, `from_env`, `User-Agent`, API version, Enterprise |
//! | [`cache`] | [`EtagCache`]: the bounded cache behind `If-None-Match` |
//! | [`request`] | [`Request`]: one logical call, `send`/`send_with_meta` |
//! | [`list`] | [`Pages`]: `Link: rel="next"` pagination, page by page or as a `Stream` |
//! | [`repos`], [`issues`], [`pulls`], [`contents`], [`rate_limit`], [`search`] | typed resources |
//! | `sim` | GitHub's dialect and a small in-memory GitHub for the testkit (feature `sim`) |
//!
//! ```no_run
//! use ratewise_github::{CreateIssue, GitHubClient, StateFilter};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let github = GitHubClient::from_env()?; // GITHUB_TOKEN
//! let issue = github
//!     .issues("octo-org", "hello-world")
//!     .create(CreateIssue::new("Crash on start").label("bug"))
//!     .send()
//!     .await?;
//! let open = github
//!     .issues("octo-org", "hello-world")
//!     .list()
//!     .state(StateFilter::Open)
//!     .per_page(100)
//!     .send()
//!     .await?;
//! println!("#{} created; {} open", issue.number, open.len());
//! # Ok(()) }
//! ```
//!
//! # Decisions where GitHub's docs are silent
//!
//! - A `403` is a rate limit only with a secondary-limit message or `x-ratelimit-remaining: 0`
//!   (as `@octokit/plugin-throttling` reads it); any other 403 is permanent. A `429` is always
//!   a rate limit.
//! - Repeated secondary limits double the wait client-wide (see [`provider`]); a success after
//!   the pause resets it.
//! - A `304` is not counted against the primary budget by the client either: the pacer is
//!   refunded. Whether it counts against secondary limits is not documented; it is counted
//!   (concurrency, the secondary pause).
//! - `GET /rate_limit` is never sent conditionally.

pub mod cache;
pub mod client;
pub mod contents;
pub mod error;
pub mod headers;
pub mod issues;
pub mod limits;
pub mod list;
pub mod provider;
pub mod pulls;
pub mod rate_limit;
pub mod repos;
pub mod request;
pub mod search;
#[cfg(any(test, feature = "sim"))]
pub mod sim;
pub mod user;

pub use cache::{CacheStats, Cached, EtagCache};
pub use client::{ClientError, GitHubClient, GitHubClientBuilder};
pub use contents::File;
pub use error::{FieldError, GitHubError};
pub use headers::RateLimit;
pub use issues::{Comment, CreateIssue, Issue, IssueState, Issues, Label, StateFilter};
pub use limits::GitHubLimits;
pub use list::{Listing, Page, Pages};
pub use provider::GitHubProvider;
pub use pulls::{Branch, PullRequest, Pulls};
pub use rate_limit::{RateLimitOverview, RateLimits, ResourceLimit};
pub use ratewise_core::idempotency::IdempotencyKey;
pub use ratewise_core::options::ClientBuilder;
pub use ratewise_core::secret::Secret;
pub use repos::{Repos, Repository};
pub use request::{Error, Meta, Request};
pub use search::{Search, SearchResults};
pub use user::User;
