//! [`RedisConnection`]: one multiplexed, self-healing connection shared by every Redis part.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::{RedisConfig, RedisError, RedisErrorKind};

/// A connection to Redis, shared by limiters, quota, breaker signal and dedupe store.
///
/// Cheap to clone; clones share one multiplexed connection. It connects lazily (building one
/// never fails because Redis is down) and re-dials after the connection drops, so a restarted
/// Redis is picked up by the next command. A command issued while Redis is unreachable fails
/// with [`RedisErrorKind::Unreachable`] within the configured timeouts.
#[derive(Clone)]
pub struct RedisConnection {
    manager: ConnectionManager,
    prefix: Arc<str>,
}

impl fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConnection")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisConnection {
    /// A connection to the Redis of `config`, established on first use.
    ///
    /// Fails only when the URL is malformed. Must be called inside a tokio runtime.
    pub fn new(config: &RedisConfig) -> Result<Self, RedisError> {
        let client = redis::Client::open(config.url.expose())
            .map_err(|e| RedisError::new(RedisErrorKind::InvalidUrl, e.to_string()))?;
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.connect_timeout))
            .set_response_timeout(Some(config.response_timeout))
            .set_number_of_retries(config.reconnect_attempts)
            .set_min_delay(Duration::from_millis(10))
            .set_max_delay(Duration::from_millis(200));
        let manager = ConnectionManager::new_lazy_with_config(client, manager_config)?;
        Ok(Self {
            manager,
            prefix: Arc::from(config.prefix.as_str()),
        })
    }

    /// The prefix of every key this connection's users write.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Asks Redis for `PONG`: a readiness check.
    pub async fn ping(&self) -> Result<(), RedisError> {
        let reply: String = redis::cmd("PING")
            .query_async(&mut self.manager.clone())
            .await?;
        if reply == "PONG" {
            Ok(())
        } else {
            Err(RedisError::unexpected(&reply))
        }
    }

    /// `prefix` + `kind` + `:` + the parts joined by `:`.
    pub(crate) fn key(&self, kind: &str, parts: &[&str]) -> String {
        let len = self.prefix.len() + kind.len() + parts.iter().map(|p| p.len() + 1).sum::<usize>();
        let mut key = String::with_capacity(len);
        key.push_str(&self.prefix);
        key.push_str(kind);
        for part in parts {
            key.push(':');
            key.push_str(part);
        }
        key
    }

    /// A handle to run commands on (a clone of the shared multiplexed connection).
    pub(crate) fn manager(&self) -> ConnectionManager {
        self.manager.clone()
    }
}
