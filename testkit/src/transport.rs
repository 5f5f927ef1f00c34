//! [`SimTransport`]: the simulated upstream as an in-memory [`Transport`], in virtual time.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use ratewise_core::transport::{Transport, TransportError};

use crate::upstream::{Reply, SimUpstream};

/// An in-memory [`Transport`] to a [`SimUpstream`].
///
/// Under `#[tokio::test(start_paused = true)]` every latency and timeout is virtual: thousands
/// of clients and hours of traffic run in seconds of wall time, the same way for the same seed.
/// The request is received the moment `send` is called; the server then finishes it on its own
/// task. If the response takes longer than `timeout` the caller gets
/// [`TransportError::Timeout`] while the server still commits: the ledger records the side
/// effect, exactly the ambiguous failure a retry policy must survive. A connection the server
/// drops is [`TransportError::Interrupted`].
#[derive(Clone, Debug)]
pub struct SimTransport {
    upstream: SimUpstream,
}

impl SimTransport {
    /// A transport to `upstream`.
    pub fn new(upstream: SimUpstream) -> Self {
        Self { upstream }
    }

    /// The upstream behind this transport.
    pub fn upstream(&self) -> &SimUpstream {
        &self.upstream
    }
}

#[async_trait]
impl Transport for SimTransport {
    async fn send(
        &self,
        request: http::Request<Bytes>,
        timeout: Duration,
    ) -> Result<http::Response<Bytes>, TransportError> {
        let Some(handle) = self.upstream.spawn(request) else {
            return Err(TransportError::Connect {
                message: "the simulated upstream needs a tokio runtime".to_owned(),
            });
        };
        match tokio::time::timeout(timeout, handle).await {
            Err(_) => Err(TransportError::Timeout { timeout }),
            Ok(Err(join)) => Err(TransportError::Interrupted {
                message: format!("the simulated server task failed: {join}"),
            }),
            Ok(Ok(Reply::Response(response))) => Ok(response),
            Ok(Ok(Reply::Reset)) => Err(TransportError::Interrupted {
                message: "connection reset by the simulated server".to_owned(),
            }),
        }
    }
}
