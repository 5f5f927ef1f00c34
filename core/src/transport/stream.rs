//! [`BodyStream`]: a response body that arrives chunk by chunk.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};

use super::TransportError;

/// The body of a response as it comes off the wire: chunks of bytes in order, or the
/// [`TransportError`] that ended it early.
///
/// What [`Transport::send_streaming`](super::Transport::send_streaming) returns. A boxed
/// `Stream<Item = Result<Bytes, TransportError>> + Send`: chunk boundaries are wherever the
/// network put them (inside a line, inside a UTF-8 character), so a consumer must buffer what
/// it needs across chunks. After an error item the stream ends. Dropping it closes the
/// connection (or returns it to the pool when the body was read to its end).
///
/// `Debug` shows no contents: a body may carry personal data.
pub struct BodyStream {
    inner: Pin<Box<dyn Stream<Item = Result<Bytes, TransportError>> + Send>>,
}

impl BodyStream {
    /// A body made of `stream`'s chunks.
    pub fn new(stream: impl Stream<Item = Result<Bytes, TransportError>> + Send + 'static) -> Self {
        Self {
            inner: Box::pin(stream),
        }
    }

    /// A body made of `stream`'s chunks, each of which must arrive within `idle` of the one
    /// before (the first within `idle` of the first poll): a longer pause ends the body with
    /// [`TransportError::Timeout`]. Nothing is read after an error.
    pub fn idle_limited(
        stream: impl Stream<Item = Result<Bytes, TransportError>> + Send + 'static,
        idle: Duration,
    ) -> Self {
        let chunks =
            futures_util::stream::unfold(Some(Box::pin(stream)), move |state| async move {
                let mut stream = state?;
                match tokio::time::timeout(idle, stream.next()).await {
                    Ok(None) => None,
                    Ok(Some(Ok(chunk))) => Some((Ok(chunk), Some(stream))),
                    Ok(Some(Err(failure))) => Some((Err(failure), None)),
                    Err(_) => Some((Err(TransportError::Timeout { timeout: idle }), None)),
                }
            });
        Self::new(chunks)
    }

    /// A body already in memory, as one chunk (none when it is empty): what the default
    /// [`Transport::send_streaming`](super::Transport::send_streaming) wraps a buffered body in.
    pub fn once(body: Bytes) -> Self {
        let chunk = (!body.is_empty()).then_some(Ok(body));
        Self::new(futures_util::stream::iter(chunk))
    }

    /// An empty body.
    pub fn empty() -> Self {
        Self::new(futures_util::stream::empty())
    }

    /// Reads the rest of the body into memory, or returns the error that ended it.
    ///
    /// No cap of its own: the transport's cap on a body
    /// ([`TransportError::BodyTooLarge`]) ends the stream past it.
    pub async fn read_to_end(mut self) -> Result<Bytes, TransportError> {
        // A body that came in one chunk (every buffered body) is returned without a copy.
        let Some(first) = self.inner.next().await.transpose()? else {
            return Ok(Bytes::new());
        };
        let Some(second) = self.inner.next().await.transpose()? else {
            return Ok(first);
        };
        let mut body = BytesMut::from(first);
        body.extend_from_slice(&second);
        while let Some(chunk) = self.inner.next().await {
            body.extend_from_slice(&chunk?);
        }
        Ok(body.freeze())
    }
}

impl Stream for BodyStream {
    type Item = Result<Bytes, TransportError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl fmt::Debug for BodyStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BodyStream").finish_non_exhaustive()
    }
}

impl Default for BodyStream {
    fn default() -> Self {
        Self::empty()
    }
}
