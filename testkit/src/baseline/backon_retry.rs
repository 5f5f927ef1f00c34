//! backon's `ExponentialBuilder` with jitter around a plain `error_for_status`-style call.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use backon::{ExponentialBuilder, Retryable};
use bytes::Bytes;
use ratewise_core::transport::Transport;

use super::{Attempted, Baseline, CallFailure, SeededRng};

/// What a backon user writes around a reqwest call (the real `backon` crate, 1.6):
///
/// ```text
/// (|| async { client.post(url).send().await?.error_for_status() })
///     .retry(ExponentialBuilder::default().with_jitter())
///     .sleep(tokio::time::sleep)
///     .await
/// ```
///
/// `ExponentialBuilder::default()`: 1 s first delay, factor 2, 60 s cap, 3 retries (four
/// attempts); `with_jitter` adds up to the current delay again. `when` is left at its default,
/// so every error is retried; `Retry-After` is not read (backon leaves it to the caller).
/// 60 s per attempt.
#[derive(Debug)]
pub struct BackonRetry {
    builder: ExponentialBuilder,
    rng: SeededRng,
}

impl BackonRetry {
    /// `ExponentialBuilder::default().with_jitter()`, jitter seeded from `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            builder: ExponentialBuilder::default().with_jitter(),
            rng: SeededRng::new(seed),
        }
    }
}

#[async_trait]
impl Baseline for BackonRetry {
    fn name(&self) -> &'static str {
        "backon"
    }

    async fn call(&self, transport: &dyn Transport, request: &http::Request<Bytes>) -> Attempted {
        let attempts = AtomicU32::new(0);
        let seed = self.rng.fork().u64(..);
        let fetch = || async {
            attempts.fetch_add(1, Ordering::Relaxed);
            let response = transport
                .send(request.clone(), Duration::from_secs(60))
                .await
                .map_err(CallFailure::Transport)?;
            if response.status().is_success() {
                Ok(response)
            } else {
                Err(CallFailure::Status(response.status()))
            }
        };
        let result = fetch
            .retry(self.builder.with_jitter_seed(seed))
            .sleep(tokio::time::sleep)
            .await;
        Attempted {
            result,
            attempts: attempts.into_inner(),
        }
    }
}
