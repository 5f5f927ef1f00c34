//! A shared "nothing until T": a Redis key whose time to live is the time left.

use std::time::Duration;

use super::{RedisConnection, RedisError, scripts};

/// One deadline shared by every process: it only ever moves later, and Redis expires it on its
/// own clock, so no process's clock is trusted over another's.
#[derive(Clone, Debug)]
pub(crate) struct SharedDeadline {
    redis: RedisConnection,
    key: String,
}

impl SharedDeadline {
    pub(crate) fn new(redis: RedisConnection, key: String) -> Self {
        Self { redis, key }
    }

    pub(crate) fn key(&self) -> &str {
        &self.key
    }

    /// Moves the deadline to `left` from now unless it is already later; returns the time left
    /// after the call (the later of the two).
    pub(crate) async fn extend(&self, left: Duration) -> Result<Duration, RedisError> {
        let ms = i64::try_from(left.as_millis().max(1)).unwrap_or(i64::MAX);
        let after: i64 = scripts::DEADLINE_EXTEND
            .key(&self.key)
            .arg(ms)
            .invoke_async(&mut self.redis.manager())
            .await?;
        Ok(Duration::from_millis(u64::try_from(after).unwrap_or(0)))
    }

    /// The time left before the deadline, `None` when there is none (or it has passed).
    pub(crate) async fn left(&self) -> Result<Option<Duration>, RedisError> {
        let ms: i64 = redis::cmd("PTTL")
            .arg(&self.key)
            .query_async(&mut self.redis.manager())
            .await?;
        Ok(u64::try_from(ms)
            .ok()
            .filter(|ms| *ms > 0)
            .map(Duration::from_millis))
    }
}
