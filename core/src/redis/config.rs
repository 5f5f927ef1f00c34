//! [`RedisConfig`]: where Redis is and how long to wait for it.

use std::time::Duration;

use crate::secret::Secret;

/// How to reach Redis: the URL, the key prefix, and the timeouts.
///
/// Defaults: prefix `ratewise:`, connect timeout 1 s, response timeout 1 s, 1 reconnection
/// attempt per failed command. The timeouts are short on purpose: every limiter acquire is a
/// round trip, and a caller waiting on an unreachable Redis should get
/// [`RedisErrorKind::Unreachable`](super::RedisErrorKind::Unreachable) in about a second, not
/// hang. The URL may carry a password, so it is held as a [`Secret`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RedisConfig {
    /// `redis://[:password@]host:port[/db]`.
    pub url: Secret,
    /// Prepended to every key, so several applications (or tests) can share one Redis.
    pub prefix: String,
    /// How long one connection attempt may take.
    pub connect_timeout: Duration,
    /// How long one command may wait for its reply.
    pub response_timeout: Duration,
    /// How many times a dropped connection is re-dialled before a command fails.
    pub reconnect_attempts: usize,
}

impl RedisConfig {
    /// The URL used when `REDIS_URL` is not set: the local default port.
    pub const DEFAULT_URL: &'static str = "redis://127.0.0.1:6379";
    /// The default key prefix.
    pub const DEFAULT_PREFIX: &'static str = "ratewise:";

    /// Redis at `url`, with the default prefix and timeouts.
    pub fn new(url: impl Into<Secret>) -> Self {
        Self {
            url: url.into(),
            prefix: Self::DEFAULT_PREFIX.to_owned(),
            connect_timeout: Duration::from_secs(1),
            response_timeout: Duration::from_secs(1),
            reconnect_attempts: 1,
        }
    }

    /// Redis at `$REDIS_URL`, else [`Self::DEFAULT_URL`].
    pub fn from_env() -> Self {
        let url = std::env::var("REDIS_URL")
            .ok()
            .filter(|url| !url.trim().is_empty())
            .unwrap_or_else(|| Self::DEFAULT_URL.to_owned());
        Self::new(url)
    }

    /// Prepends `prefix` to every key (default `ratewise:`).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long one connection attempt may take (default 1 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long one command may wait for its reply (default 1 s).
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// How many times a dropped connection is re-dialled before a command fails (default 1).
    pub fn reconnect_attempts(mut self, attempts: usize) -> Self {
        self.reconnect_attempts = attempts;
        self
    }
}
