//! [`SimTransport`]: the simulated upstream as an in-memory [`Transport`], in virtual time.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;
use ratewise_core::transport::{BodyStream, Transport, TransportError, read_body, within};

use crate::chunked::{Piece, delivery};
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
///
/// A body with a [`ChunkedBody`](crate::ChunkedBody) leaves in pieces over time:
/// [`send_streaming`](Transport::send_streaming) yields each piece as it leaves (a pause longer
/// than `timeout` between two pieces ends the body with [`TransportError::Timeout`], like the
/// reqwest transport's idle limit; a break is [`TransportError::Interrupted`]), and `send` waits
/// for the whole body within `timeout`.
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

    /// Sends `request` and waits for the head of its response (no timeout of its own).
    async fn head(
        &self,
        request: http::Request<Bytes>,
        idle: Duration,
    ) -> Result<http::Response<BodyStream>, TransportError> {
        let Some(handle) = self.upstream.spawn(request) else {
            return Err(TransportError::Connect {
                message: "the simulated upstream needs a tokio runtime".to_owned(),
            });
        };
        match handle.await {
            Err(join) => Err(TransportError::Interrupted {
                message: format!("the simulated server task failed: {join}"),
            }),
            Ok(Reply::Response(response)) => {
                let pieces = delivery(&response);
                Ok(response.map(|_| body(pieces, idle)))
            }
            Ok(Reply::Reset) => Err(TransportError::Interrupted {
                message: "connection reset by the simulated server".to_owned(),
            }),
        }
    }
}

/// The pieces as a body stream: a break or a pause longer than `idle` ends it with an error.
fn body(
    pieces: impl futures_util::Stream<Item = Piece> + Send + 'static,
    idle: Duration,
) -> BodyStream {
    let chunks = pieces.map(|piece| match piece {
        Piece::Data(bytes) => Ok(bytes),
        Piece::Break => Err(TransportError::Interrupted {
            message: "connection reset by the simulated server mid-body".to_owned(),
        }),
    });
    BodyStream::idle_limited(chunks, idle)
}

#[async_trait]
impl Transport for SimTransport {
    async fn send(
        &self,
        request: http::Request<Bytes>,
        timeout: Duration,
    ) -> Result<http::Response<Bytes>, TransportError> {
        within(timeout, async {
            read_body(self.head(request, timeout).await?).await
        })
        .await
    }

    async fn send_streaming(
        &self,
        request: http::Request<Bytes>,
        timeout: Duration,
    ) -> Result<http::Response<BodyStream>, TransportError> {
        within(timeout, self.head(request, timeout)).await
    }
}
