//! [`RedisDedupe`]: the [`DedupeStore`] shared by every process through Redis.

use std::time::Duration;

use async_trait::async_trait;

use super::{RedisConnection, RedisError, scripts};
use crate::dedupe::{Claim, DedupeError, DedupeStore};

/// The marker of a claim without an outcome.
const PENDING: &str = "p";
/// The prefix of a completed record.
const DONE: char = 'd';

/// A [`DedupeStore`] in Redis: claims and records shared by every process.
///
/// One key per dedupe key, `{prefix}dedupe:{key}`, holding `p` while claimed and `d` followed by
/// the record once done, expiring after its time to live:
///
/// * `claim`: a Lua script reads the key and, when absent, sets the pending marker with `PX`:
///   atomic, so of two processes claiming one key exactly one sees [`Claim::Fresh`].
/// * `complete`: `SET` the record with `PX` (overwrites the claim).
/// * `release`: a Lua script deletes the key only while it is still the pending marker, so a
///   late release never erases a completed record.
///
/// Every operation is one round trip. Redis unreachable: a [`DedupeError`] and nothing claimed,
/// so the caller must not send (at-most-once holds).
#[derive(Clone, Debug)]
pub struct RedisDedupe {
    redis: RedisConnection,
    namespace: String,
}

impl RedisDedupe {
    /// A store keeping its keys under `{prefix}dedupe:`.
    pub fn new(redis: RedisConnection) -> Self {
        Self {
            redis,
            namespace: "dedupe".to_owned(),
        }
    }

    /// Keeps keys under `{prefix}{namespace}:` instead (one namespace per use: `twilio`,
    /// `webhooks`).
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    fn key(&self, key: &str) -> String {
        self.redis.key(&self.namespace, &[key])
    }
}

fn millis(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis().max(1)).unwrap_or(i64::MAX)
}

fn unavailable(e: RedisError) -> DedupeError {
    DedupeError(e.to_string())
}

#[async_trait]
impl DedupeStore for RedisDedupe {
    async fn claim(&self, key: &str, ttl: Duration) -> Result<Claim, DedupeError> {
        let found: Option<String> = scripts::DEDUPE_CLAIM
            .key(self.key(key))
            .arg(millis(ttl))
            .invoke_async(&mut self.redis.manager())
            .await
            .map_err(|e| unavailable(e.into()))?;
        match found {
            None => Ok(Claim::Fresh),
            Some(value) if value == PENDING => Ok(Claim::Pending),
            Some(value) => match value.strip_prefix(DONE) {
                Some(record) => Ok(Claim::Done(record.to_owned())),
                None => Err(unavailable(RedisError::unexpected(
                    "a dedupe key holds neither a claim nor a record",
                ))),
            },
        }
    }

    async fn complete(&self, key: &str, record: &str, ttl: Duration) -> Result<(), DedupeError> {
        let mut value = String::with_capacity(record.len() + 1);
        value.push(DONE);
        value.push_str(record);
        redis::cmd("SET")
            .arg(self.key(key))
            .arg(value)
            .arg("PX")
            .arg(millis(ttl))
            .query_async::<()>(&mut self.redis.manager())
            .await
            .map_err(|e| unavailable(e.into()))
    }

    async fn release(&self, key: &str) -> Result<(), DedupeError> {
        scripts::DEDUPE_RELEASE
            .key(self.key(key))
            .invoke_async::<i64>(&mut self.redis.manager())
            .await
            .map(drop)
            .map_err(|e| unavailable(e.into()))
    }
}
