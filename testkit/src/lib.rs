//! Simulated rate-limited upstreams for ratewise's tests, examples and benchmarks.
//!
//! One scenario, two ways to reach it:
//!
//! - [`SimTransport`]: an in-memory [`Transport`](ratewise_core::transport::Transport) that runs
//!   the upstream in tokio's virtual time (`#[tokio::test(start_paused = true)]`): thousands of
//!   clients and hours of traffic in seconds, the same way for the same seed.
//! - [`SimServer`]: the same upstream over real HTTP on `127.0.0.1:0`, where faults that need a
//!   socket (a connection reset after the server committed) are real.
//!
//! The scenario is a [`SimUpstream`]: server-side [limits](limit) (token bucket, fixed and
//! sliding windows, concurrency; global, per operation or per header value; several at once), a
//! [`FaultPlan`] (scripted or seeded), an idempotency store with Stripe's semantics, a
//! [`Dialect`] (how throttles, errors and quota headers look), a [`Handler`] for the success
//! path and a [`Ledger`] that counts side effects so "exactly once" is an assertion.
//!
//! ```
//! use std::time::Duration;
//! use bytes::Bytes;
//! use ratewise_core::transport::Transport;
//! use ratewise_testkit::{ServerLimit, SimUpstream};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let upstream = SimUpstream::builder()
//!     .limit(ServerLimit::token_bucket(1.0, 2))
//!     .build();
//! let transport = upstream.transport();
//! for _ in 0..3 {
//!     let request = http::Request::post("http://sim/v1/charges").body(Bytes::new()).unwrap();
//!     let _ = transport.send(request, Duration::from_secs(5)).await;
//! }
//! assert_eq!(upstream.ledger().throttled(), 1);
//! assert_eq!(upstream.ledger().side_effects("POST /v1/charges"), 2);
//! # }
//! ```
//!
//! The core's pipeline ([`Upstream`](ratewise_core::upstream::Upstream) with
//! [`GenericProvider`]) is tested end to end against it in `tests/`: `pipeline_virtual.rs` (retry
//! storm, resets after commit with and without keys, hints, clamp; virtual time),
//! `pipeline_outage.rs` (a 60 s outage: the breaker opens, fails fast, lets only probes
//! through, closes), `pipeline_server.rs` (the same over real sockets with the default
//! `ReqwestTransport`, real-clock hint and fail-fast bounds), `pipeline_metrics.rs` (exact
//! metric values for a scripted plan), `pipeline_cancel.rs` (calls dropped at random await
//! points leak no permit and no probe slot) and `pipeline_streaming.rs` (`execute_streaming`:
//! bodies in [`ChunkedBody`] pieces, retries only before the first byte, a break mid-body).
//!
//! [`baseline`] holds the retry loops ratewise is measured against (the 3 AM naive loop, the
//! article's `withRetry`, openai-python's and stripe-node's policies, backon), each a plain
//! call through the same [`Transport`](ratewise_core::transport::Transport): the storm
//! benchmark (`benches/storm`) and the examples run them side by side with the pipeline.
//!
//! Decisions where the brief was silent: fault rules are checked before limits (a server that
//! is down does not rate-limit); a throttled or faulted request stores no idempotent result, so
//! its retry runs; latency (default 10 ms) applies to every response and the side effect commits
//! at its end, so a request is "in flight" (409 for its key, holding its concurrency slot) for
//! that long; the ledger keys a side effect by its idempotency key, else by a hash of its body.

pub mod baseline;
mod chunked;
pub mod dialect;
mod fault;
mod generic_provider;
mod handler;
mod idempotency;
mod ledger;
pub mod limit;
#[cfg(feature = "redis")]
pub mod redis;
mod server;
mod transport;
mod upstream;

pub use chunked::ChunkedBody;
pub use dialect::{Dialect, GenericDialect, ResponseContext, RetryAfterFormat};
pub use fault::{Fault, FaultPlan};
pub use generic_provider::{GenericError, GenericProvider, rate_limit_snapshot};
pub use handler::{EchoHandler, Handler, HandlerContext};
pub use idempotency::IdempotencyError;
pub use ledger::{Ledger, LedgerEntry, Outcome};
pub use limit::{Algorithm, LimitStatus, OperationKey, Scope, ServerLimit};
pub use ratewise_core::clock::ManualClock;
pub use server::SimServer;
pub use transport::SimTransport;
pub use upstream::{Reply, SimUpstream, SimUpstreamBuilder};
