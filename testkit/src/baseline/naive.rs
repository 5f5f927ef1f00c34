//! The 3 AM handler: retry every 100 ms, forever.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use ratewise_core::transport::Transport;

use super::{Attempted, Baseline, Sent, send};

/// The retry loop from the article's incident: "hammering Stripe with retries every 100ms
/// whenever it sees a 429". It also retries server errors and broken connections the same way
/// ("retry on any error"), with no cap on attempts, no jitter and no hint.
///
/// Defaults: 100 ms between attempts, unlimited attempts, 30 s per attempt.
#[derive(Clone, Debug)]
pub struct NaiveRetry {
    interval: Duration,
    max_attempts: Option<u32>,
    timeout: Duration,
}

impl NaiveRetry {
    /// The default wait between attempts: 100 ms.
    pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(100);

    /// The incident's loop: every 100 ms, no cap.
    pub fn new() -> Self {
        Self {
            interval: Self::DEFAULT_INTERVAL,
            max_attempts: None,
            timeout: Duration::from_secs(30),
        }
    }

    /// Waits `interval` between attempts (default 100 ms).
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Stops after `attempts` attempts (default: never).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = Some(attempts.max(1));
        self
    }
}

impl Default for NaiveRetry {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Baseline for NaiveRetry {
    fn name(&self) -> &'static str {
        "naive"
    }

    async fn call(&self, transport: &dyn Transport, request: &http::Request<Bytes>) -> Attempted {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let sent = send(transport, request, self.timeout).await;
            let retry = match &sent {
                Sent::Success(_) => false,
                Sent::Status(response) => {
                    let status = response.status();
                    status == http::StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
                }
                Sent::Failed(_) => true,
            };
            if !retry || self.max_attempts.is_some_and(|max| attempts >= max) {
                return sent.finish(attempts);
            }
            tokio::time::sleep(self.interval).await;
        }
    }
}
