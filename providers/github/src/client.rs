//! [`GitHubClient`]: the entry point, cheap to clone, one per token.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode, header};
use ratewise_core::options::{ClientBuilder, ClientOptions};
use ratewise_core::provider::{Provider, RequestSpec};
use ratewise_core::secret::Secret;
use ratewise_core::upstream::{ConfigError, Response, Upstream};

use crate::cache::{Cached, DEFAULT_CAPACITY, EtagCache};
use crate::headers::X_GITHUB_API_VERSION;
use crate::issues::Issues;
use crate::limits::GitHubLimits;
use crate::provider::GitHubProvider;
use crate::pulls::Pulls;
use crate::rate_limit::RateLimits;
use crate::repos::Repos;
use crate::request::Error;
use crate::search::Search;

/// GitHub's REST API root.
pub const DEFAULT_BASE_URL: &str = "https://api.github.com";

/// The REST API version requests are pinned to (`X-GitHub-Api-Version`): `2022-11-28`, the
/// version the models of this crate follow.
pub const DEFAULT_API_VERSION: &str = "2022-11-28";

/// The media type sent in `Accept`: `application/vnd.github+json`.
pub const ACCEPT: &str = "application/vnd.github+json";

/// The default `User-Agent` (GitHub refuses requests without one): `ratewise-github/<version>`.
pub const DEFAULT_USER_AGENT: &str = concat!("ratewise-github/", env!("CARGO_PKG_VERSION"));

/// The environment variable [`GitHubClient::from_env`] reads: `GITHUB_TOKEN`.
pub const TOKEN_ENV: &str = "GITHUB_TOKEN";

/// A client could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// `GITHUB_TOKEN` is not set (or is empty, or not UTF-8).
    #[error("GITHUB_TOKEN is not set: pass the token to GitHubClient::new")]
    MissingToken,
    /// The token, user agent or API version contains characters a header cannot carry.
    #[error("the {0} is not a valid header value")]
    InvalidHeader(&'static str),
    /// The pipeline refused its configuration (a bad base URL).
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// A GitHub REST client: typed resources over the ratewise pipeline.
///
/// Cheap to clone (an `Arc` inside); clones share the limiters (per-resource pacers and the
/// secondary-limit avoidance), the ETag cache, the breaker, the retry budget and the counters,
/// so build one per token and clone it everywhere. The token never appears in `Debug` output.
///
/// ```
/// use ratewise_github::GitHubClient;
///
/// let client = GitHubClient::builder("ghp_example")
///     .enterprise("https://ghe.example.com")
///     .user_agent("my-sync/1.0")
///     .build()
///     .unwrap();
/// let _issues = client.issues("octo-org", "hello-world");
/// assert!(!format!("{client:?}").contains("ghp_example"));
/// ```
#[derive(Clone)]
pub struct GitHubClient {
    upstream: Upstream<GitHubProvider>,
    token: Secret,
    base_url: Arc<str>,
    cache: Option<Arc<EtagCache>>,
}

impl std::fmt::Debug for GitHubClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHubClient")
            .field("token", &self.token)
            .field("base_url", &self.base_url)
            .field("etag_cache", &self.cache.as_ref().map(|c| c.len()))
            .field("upstream", &self.upstream)
            .finish()
    }
}

/// A response as the client layer returns it: a 304 carries the cached body.
#[derive(Debug)]
pub(crate) struct Sent {
    pub(crate) response: Response,
    pub(crate) not_modified: bool,
}

impl GitHubClient {
    /// A client for `token` with every default (see [`GitHubClientBuilder`]).
    pub fn new(token: impl Into<Secret>) -> Result<Self, ClientError> {
        Self::builder(token).build()
    }

    /// A client for the token in `GITHUB_TOKEN`, with every default.
    pub fn from_env() -> Result<Self, ClientError> {
        Self::builder_from_env()?.build()
    }

    /// A builder for the token in `GITHUB_TOKEN`.
    pub fn builder_from_env() -> Result<GitHubClientBuilder, ClientError> {
        match std::env::var(TOKEN_ENV) {
            Ok(token) if !token.trim().is_empty() => Ok(Self::builder(token.trim().to_owned())),
            _ => Err(ClientError::MissingToken),
        }
    }

    /// A builder for `token` (a personal access token, an OAuth or installation token).
    pub fn builder(token: impl Into<Secret>) -> GitHubClientBuilder {
        GitHubClientBuilder::new(token.into())
    }

    /// A repository: get it, read its files.
    pub fn repos(&self, owner: &str, repo: &str) -> Repos {
        Repos::new(self.clone(), owner, repo)
    }

    /// A repository's issues: list, get, create, comment.
    pub fn issues(&self, owner: &str, repo: &str) -> Issues {
        Issues::new(self.clone(), owner, repo)
    }

    /// A repository's pull requests: list.
    pub fn pulls(&self, owner: &str, repo: &str) -> Pulls {
        Pulls::new(self.clone(), owner, repo)
    }

    /// Search (issues and pull requests).
    pub fn search(&self) -> Search {
        Search::new(self.clone())
    }

    /// The rate-limit status of every resource (`GET /rate_limit`, free of primary budget).
    pub fn rate_limit(&self) -> RateLimits {
        RateLimits::new(self.clone())
    }

    /// The pipeline (for its stats, breaker and limiters).
    pub fn upstream(&self) -> &Upstream<GitHubProvider> {
        &self.upstream
    }

    /// The ETag cache, unless turned off.
    pub fn etag_cache(&self) -> Option<&EtagCache> {
        self.cache.as_deref()
    }

    /// The base URL requests go to.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// `url` (a `Link` target) as a path under the base URL; `None` when it points elsewhere
    /// (the token is never sent to another host).
    pub(crate) fn relative<'a>(&self, url: &'a str) -> Option<&'a str> {
        if url.starts_with('/') {
            return Some(url);
        }
        url.strip_prefix(&*self.base_url)
            .filter(|rest| rest.starts_with('/'))
    }

    /// Runs `spec`; a GET with `conditional` sends the cached ETag and turns a 304 into the
    /// cached body.
    pub(crate) async fn send(&self, spec: RequestSpec, conditional: bool) -> Result<Sent, Error> {
        let cache = self
            .cache
            .as_deref()
            .filter(|_| conditional && spec.method == Method::GET);
        let url = spec.path.clone();
        let cached = cache.and_then(|c| c.lookup(&url));
        let spec = match &cached {
            Some(cached) => spec.header(header::IF_NONE_MATCH, cached.etag.clone()),
            None => spec,
        };
        let mut response = self.upstream.execute(spec).await?;
        if response.status == StatusCode::NOT_MODIFIED {
            let Some(cached) = cached else {
                return Err(Error::decode(
                    GitHubProvider::NAME,
                    b"",
                    "304 Not Modified to a request sent without If-None-Match",
                ));
            };
            if let Some(cache) = cache {
                cache.record_not_modified();
            }
            response.body = cached.body;
            if let Some(link) = cached.link
                && !response.headers.contains_key(header::LINK)
            {
                response.headers.insert(header::LINK, link);
            }
            return Ok(Sent {
                response,
                not_modified: true,
            });
        }
        if let Some(cache) = cache
            && response.status == StatusCode::OK
        {
            match response.headers.get(header::ETAG) {
                Some(etag) => {
                    let link = response.headers.get(header::LINK).cloned();
                    cache.store(&url, Cached::new(etag.clone(), response.body.clone(), link));
                }
                None => cache.remove(&url),
            }
        }
        Ok(Sent {
            response,
            not_modified: false,
        })
    }
}

/// Builds a [`GitHubClient`]: the token is required, everything else has a default.
///
/// Defaults: base URL [`DEFAULT_BASE_URL`] (or `https://<host>/api/v3` with
/// [`enterprise`](Self::enterprise)); `X-GitHub-Api-Version` [`DEFAULT_API_VERSION`];
/// `User-Agent` [`DEFAULT_USER_AGENT`]; `Accept: application/vnd.github+json`; the
/// secondary-limit avoidance of [`GitHubLimits::new`]; an ETag cache of 1,000 URLs; the core's
/// `CallPolicy` (4 attempts, full-jitter backoff from 200 ms, server waits up to 120 s slept);
/// the reqwest transport and tokio's clock. The pipeline settings every client shares are the
/// provided methods of [`ClientBuilder`] (re-exported by this crate).
pub struct GitHubClientBuilder {
    token: Secret,
    api_version: String,
    user_agent: String,
    cache_capacity: Option<usize>,
    limits: Option<GitHubLimits>,
    provider: Option<GitHubProvider>,
    options: ClientOptions,
}

impl std::fmt::Debug for GitHubClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHubClientBuilder")
            .field("token", &self.token)
            .field("api_version", &self.api_version)
            .field("user_agent", &self.user_agent)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder for GitHubClientBuilder {
    fn options(&mut self) -> &mut ClientOptions {
        &mut self.options
    }
}

impl GitHubClientBuilder {
    fn new(token: Secret) -> Self {
        Self {
            token,
            api_version: DEFAULT_API_VERSION.to_owned(),
            user_agent: DEFAULT_USER_AGENT.to_owned(),
            cache_capacity: Some(DEFAULT_CAPACITY),
            limits: None,
            provider: None,
            options: ClientOptions::new(),
        }
    }

    /// GitHub Enterprise Server at `host_url` (`https://ghe.example.com`): the API root is
    /// `<host_url>/api/v3`.
    pub fn enterprise(self, host_url: &str) -> Self {
        let root = format!("{}/api/v3", host_url.trim_end_matches('/'));
        self.base_url(root)
    }

    /// Pins requests to `version` (default [`DEFAULT_API_VERSION`]).
    pub fn api_version(mut self, version: impl Into<String>) -> Self {
        self.api_version = version.into();
        self
    }

    /// The `User-Agent` (default [`DEFAULT_USER_AGENT`]); GitHub asks for the app's name.
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// Caches the ETags and bodies of at most `capacity` GET URLs (default 1,000).
    pub fn etag_cache(mut self, capacity: usize) -> Self {
        self.cache_capacity = Some(capacity);
        self
    }

    /// No ETag cache: every GET is sent unconditionally.
    pub fn no_etag_cache(mut self) -> Self {
        self.cache_capacity = None;
        self
    }

    /// Other secondary-limit avoidance than the documented numbers ([`GitHubLimits::off`]
    /// turns it off).
    pub fn limits(mut self, limits: GitHubLimits) -> Self {
        self.limits = Some(limits);
        self
    }

    /// A provider configured beyond its limits (e.g. another secondary wait); replaces
    /// [`limits`](Self::limits).
    pub fn provider(mut self, provider: GitHubProvider) -> Self {
        self.provider = Some(provider);
        self
    }

    /// Builds the client.
    pub fn build(self) -> Result<GitHubClient, ClientError> {
        let provider = match (self.provider, self.limits) {
            (Some(provider), _) => provider,
            (None, Some(limits)) => GitHubProvider::new(limits),
            (None, None) => GitHubProvider::default(),
        };
        let auth = self
            .token
            .header_value("Bearer ")
            .ok_or(ClientError::InvalidHeader("token"))?;
        let user_agent = HeaderValue::from_str(&self.user_agent)
            .map_err(|_| ClientError::InvalidHeader("user agent"))?;
        let version = HeaderValue::from_str(&self.api_version)
            .map_err(|_| ClientError::InvalidHeader("API version"))?;
        let base_url = self
            .options
            .base_url
            .clone()
            .unwrap_or_else(|| DEFAULT_BASE_URL.to_owned())
            .trim_end_matches('/')
            .to_owned();
        let upstream = self
            .options
            .upstream(provider, DEFAULT_BASE_URL)
            .secret_header(header::AUTHORIZATION, auth)
            .redact(self.token.clone())
            .header(header::USER_AGENT, user_agent)
            .header(header::ACCEPT, HeaderValue::from_static(ACCEPT))
            .header(X_GITHUB_API_VERSION, version)
            .build()?;
        Ok(GitHubClient {
            upstream,
            token: self.token,
            base_url: Arc::from(base_url),
            cache: self.cache_capacity.map(|c| Arc::new(EtagCache::new(c))),
        })
    }
}

/// A JSON body, for the requests that send one.
pub(crate) fn json_body(value: &impl serde::Serialize) -> Result<Bytes, String> {
    serde_json::to_vec(value)
        .map(Bytes::from)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_redacted_from_debug() {
        let client = GitHubClient::new("ghp_verysecret").unwrap();
        assert!(!format!("{client:?}").contains("verysecret"));
        let builder = GitHubClient::builder("ghp_verysecret");
        assert!(!format!("{builder:?}").contains("verysecret"));
    }

    #[test]
    fn enterprise_puts_the_api_under_api_v3() {
        let client = GitHubClient::builder("t")
            .enterprise("https://ghe.example.com/")
            .build()
            .unwrap();
        assert_eq!(client.base_url(), "https://ghe.example.com/api/v3");
        assert_eq!(
            client.relative("https://ghe.example.com/api/v3/repos/o/r/issues?page=2"),
            Some("/repos/o/r/issues?page=2")
        );
        assert_eq!(client.relative("https://evil.example.com/repos/o/r"), None);
        assert_eq!(
            client.relative("/repos/o/r?page=3"),
            Some("/repos/o/r?page=3")
        );
        let default = GitHubClient::new("t").unwrap();
        assert_eq!(default.base_url(), DEFAULT_BASE_URL);
    }

    #[test]
    fn bad_configuration_is_refused_with_a_reason() {
        assert!(matches!(
            GitHubClient::new("ghp_\nx"),
            Err(ClientError::InvalidHeader("token"))
        ));
        assert!(matches!(
            GitHubClient::builder("t").user_agent("a\nb").build(),
            Err(ClientError::InvalidHeader("user agent"))
        ));
        assert!(matches!(
            GitHubClient::builder("t").base_url("not a url").build(),
            Err(ClientError::Config(_))
        ));
        let off = GitHubClient::builder("t").no_etag_cache().build().unwrap();
        assert!(off.etag_cache().is_none());
    }
}
