//! The code that runs a job: any `async fn(J, JobContext) -> impl Into<JobOutcome>`.

use std::future::Future;

use async_trait::async_trait;

use super::job::JobContext;
use super::outcome::JobOutcome;

/// Runs one attempt of a job.
///
/// Implemented for every `Fn(J, JobContext) -> Future` whose output converts into a
/// [`JobOutcome`]: `()`, a `JobOutcome`, or a `Result<T, ratewise_core::error::Error<A>>` (so a
/// handler can end with the client's result and let the queue classify the error).
///
/// ```
/// use ratewise_core::queue::{JobContext, JobOutcome};
///
/// let handler = |order: u64, ctx: JobContext| async move {
///     // send `order` with `ctx.key` as the idempotency key …
///     if ctx.attempt < 2 { JobOutcome::retry("flaky") } else { JobOutcome::done() }
/// };
/// # let _ = handler;
/// ```
#[async_trait]
pub trait Handler<J>: Send + Sync + 'static {
    /// Runs `payload` once. The context carries the idempotency key to send, the attempt
    /// number and the group.
    async fn handle(&self, payload: J, ctx: JobContext) -> JobOutcome;
}

#[async_trait]
impl<J, F, Fut, O> Handler<J> for F
where
    J: Send + 'static,
    F: Fn(J, JobContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = O> + Send + 'static,
    O: Into<JobOutcome>,
{
    async fn handle(&self, payload: J, ctx: JobContext) -> JobOutcome {
        (self)(payload, ctx).await.into()
    }
}
