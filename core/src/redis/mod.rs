//! Feature `redis`: limiter budgets, quota exhaustion, the breaker's "open until" and dedupe
//! claims shared by every process through one Redis.
//!
//! | type | shares | round trips |
//! |---|---|---|
//! | [`RedisGcraLimiter`] | a token bucket (GCRA) per upstream + credential + budget | 1 per acquire |
//! | [`SharedQuota`] | "budget exhausted until T" seen by any worker | 1 per refresh interval |
//! | [`SharedBreakerSignal`] | "upstream open until T" | 1 per poll |
//! | [`RedisDedupe`] | dedupe claims and records ([`DedupeStore`](crate::dedupe::DedupeStore)) | 1 per operation |
//! | [`RedisJobStore`] | a durable work queue on Redis Streams ([`JobStore`](crate::queue::JobStore)) | 1 per job state change |
//!
//! All of them go through one [`RedisConnection`] (multiplexed, lazily connected, re-dialled after
//! a drop) built from a [`RedisConfig`] (`REDIS_URL`, key prefix, timeouts). Time-based state is
//! judged on Redis's clock (`TIME` in the scripts, key expiry for deadlines), never on a host's
//! wall clock, so processes on hosts whose clocks disagree still agree.
//!
//! When Redis is unreachable every part fails visibly and safely: the limiter refuses with
//! [`ThrottleReason::Unavailable`](crate::limit::ThrottleReason::Unavailable) (or admits through a
//! configured local fallback, [`FailurePolicy::Open`]), the dedupe store returns an error and
//! claims nothing, and the quota and breaker signals keep to what this process knows. Nothing is
//! spent twice: each decision is one atomic script, applied entirely or not at all.
//!
//! The driver's types never appear in this API: errors are [`RedisError`].

mod breaker;
mod config;
mod connection;
mod deadline;
mod dedupe;
mod error;
mod job_store;
mod limiter;
mod queue_scripts;
mod quota;
mod scripts;

use std::future::Future;

pub use breaker::{SharedBreakerSignal, SignalTask};
pub use config::RedisConfig;
pub use connection::RedisConnection;
pub use dedupe::RedisDedupe;
pub use error::{RedisError, RedisErrorKind};
pub use job_store::{
    DEFAULT_MAX_LOSSES, DEFAULT_REDIS_CAPACITY, DEFAULT_VISIBILITY_TIMEOUT, RedisJobStore,
    RedisJobStoreBuilder,
};
pub use limiter::{FailurePolicy, RedisGcraLimiter};
pub use quota::SharedQuota;

/// Runs a Redis write in the background (from a synchronous trait method: `observe`,
/// `reconcile`, a cancelled wait), logging its failure. Outside a tokio runtime it is dropped
/// with a log line: there is nowhere to run it.
fn spawn_detached(
    what: &'static str,
    work: impl Future<Output = Result<(), RedisError>> + Send + 'static,
) {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => {
            drop(handle.spawn(async move {
                if let Err(error) = work.await {
                    tracing::warn!(target: "ratewise::redis", error = %error, "{what} failed");
                }
            }));
        }
        Err(_) => {
            tracing::warn!(target: "ratewise::redis", "{what} dropped: no tokio runtime");
        }
    }
}
