//! The only door to the network: [`Transport`], and its reqwest implementation.
//!
//! Requests and responses are `http::Request<Bytes>` / `http::Response<Bytes>`: the body is
//! in memory, so every attempt of a retried call replays exactly the same bytes, and the
//! simulator (`ratewise-testkit`) can stand in for the network by implementing this one trait.
//! [`Transport::send_streaming`] hands back the head of a response with its body still on the
//! wire, as a [`BodyStream`] (server-sent events, read as they arrive); its default sends the
//! request with [`Transport::send`] and yields the buffered body as one chunk, so a transport
//! that implements only `send` streams too, just not incrementally.
//!
//! A failure says whether the request certainly never reached the server
//! ([`TransportError::certainly_not_sent`]): that is the one case in which a non-idempotent
//! request without an idempotency key may be retried.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

mod stream;

pub use stream::BodyStream;

/// Sends one HTTP request and returns the response with its body read in full (up to a cap), or
/// with its body as a stream.
#[async_trait]
pub trait Transport: Send + Sync + fmt::Debug {
    /// Sends `request`, giving up after `timeout` (the per-attempt timeout).
    async fn send(
        &self,
        request: http::Request<Bytes>,
        timeout: Duration,
    ) -> Result<http::Response<Bytes>, TransportError>;

    /// Sends `request` and returns as soon as the response's head has arrived (`timeout`
    /// covers the wait until then), with the body as a [`BodyStream`] of chunks as they come.
    ///
    /// A failure while the body streams is an item of the stream:
    /// [`TransportError::Interrupted`] for a broken connection, [`TransportError::Timeout`] for
    /// a body that stalls (the transport's idle limit), [`TransportError::BodyTooLarge`] past the
    /// transport's cap. The default implementation calls [`send`](Self::send) and yields the
    /// buffered body as one chunk: correct for any transport, incremental for none.
    async fn send_streaming(
        &self,
        request: http::Request<Bytes>,
        timeout: Duration,
    ) -> Result<http::Response<BodyStream>, TransportError> {
        let response = self.send(request, timeout).await?;
        Ok(response.map(BodyStream::once))
    }
}

/// Runs `exchange` under `timeout`: its result, or [`TransportError::Timeout`] once `timeout`
/// has passed. The per-attempt timeout of a transport's `send` and `send_streaming`.
pub async fn within<T>(
    timeout: Duration,
    exchange: impl Future<Output = Result<T, TransportError>>,
) -> Result<T, TransportError> {
    tokio::time::timeout(timeout, exchange)
        .await
        .unwrap_or(Err(TransportError::Timeout { timeout }))
}

/// Reads the body of a streamed response to its end: the response `send` returns, for a
/// transport that streams natively.
pub async fn read_body(
    response: http::Response<BodyStream>,
) -> Result<http::Response<Bytes>, TransportError> {
    let (parts, body) = response.into_parts();
    Ok(http::Response::from_parts(parts, body.read_to_end().await?))
}

/// Why a request got no usable response.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The connection could not be established: the request never left this process, so any
    /// request may be retried.
    #[error("could not connect: {message}; the request was not sent")]
    Connect {
        /// What the connector said (no URL, no headers).
        message: String,
    },
    /// No response within the timeout. The server may have processed the request.
    #[error("no response within {timeout:?}; the server may have processed the request")]
    Timeout {
        /// The timeout that expired.
        timeout: Duration,
    },
    /// The connection broke after the request was sent. The server may have processed it.
    #[error(
        "connection interrupted after the request was sent: {message}; the server may have processed it"
    )]
    Interrupted {
        /// What the I/O layer said (no URL, no headers).
        message: String,
    },
    /// The response body was larger than the transport accepts.
    #[error("response body exceeds {limit} bytes; it was not read in full")]
    BodyTooLarge {
        /// The cap, in bytes.
        limit: usize,
    },
    /// The request itself was malformed (bad URL, bad header); sending it again will not help.
    #[error("invalid request: {message}")]
    InvalidRequest {
        /// What was wrong.
        message: String,
    },
}

impl TransportError {
    /// True when the request certainly never reached the server (safe to retry anything).
    pub fn certainly_not_sent(&self) -> bool {
        matches!(self, Self::Connect { .. } | Self::InvalidRequest { .. })
    }

    /// True when sending again might succeed (everything but an invalid request).
    pub fn is_retryable(&self) -> bool {
        !matches!(self, Self::InvalidRequest { .. })
    }
}

/// A [`Transport`] over a pooled `reqwest::Client`.
///
/// Defaults, each chosen so that nothing waits forever and nothing is replayed by accident:
/// connect timeout 10 s; the per-attempt timeout comes from the caller on every send; idle
/// keep-alive connections are kept 90 s; redirects are never followed (a redirected POST would
/// be re-sent by the HTTP client behind the retry logic's back); response bodies are read up to
/// 16 MiB and refused beyond.
///
/// [`send_streaming`](Transport::send_streaming) returns once the head has arrived (the
/// per-attempt timeout covers that wait) and then yields the body chunk by chunk as reqwest
/// reads it. The same per-attempt timeout is then the **idle timeout between chunks**: a body
/// that sends nothing for that long ends with [`TransportError::Timeout`], while a stream that
/// keeps sending may run as long as it likes. The 16 MiB cap applies to a streamed body too (it
/// ends with [`TransportError::BodyTooLarge`]); raise it with [`max_body`](Self::max_body) for
/// longer streams. Any other failure mid-body is [`TransportError::Interrupted`].
#[derive(Clone)]
pub struct ReqwestTransport {
    client: reqwest::Client,
    max_body: usize,
}

impl ReqwestTransport {
    /// The default connect timeout: 10 s.
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
    /// The default cap on a response body: 16 MiB.
    pub const DEFAULT_MAX_BODY: usize = 16 * 1024 * 1024;

    /// A transport with the documented defaults.
    pub fn new() -> Result<Self, TransportError> {
        let client = reqwest::Client::builder()
            .connect_timeout(Self::DEFAULT_CONNECT_TIMEOUT)
            .pool_idle_timeout(Duration::from_secs(90))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| TransportError::InvalidRequest {
                message: format!("could not build the HTTP client: {}", e.without_url()),
            })?;
        Ok(Self::from_client(client))
    }

    /// A transport over a client you configured yourself (proxies, TLS roots, …).
    ///
    /// Keep redirects off and a connect timeout set; the per-attempt timeout is still applied.
    pub fn from_client(client: reqwest::Client) -> Self {
        Self {
            client,
            max_body: Self::DEFAULT_MAX_BODY,
        }
    }

    /// Caps the response body at `bytes` (default 16 MiB).
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// Sends `request` and waits for the head of the response (no timeout of its own).
    async fn head(
        &self,
        request: http::Request<Bytes>,
        timeout: Duration,
    ) -> Result<reqwest::Response, TransportError> {
        let request =
            reqwest::Request::try_from(request).map_err(|e| TransportError::InvalidRequest {
                message: e.without_url().to_string(),
            })?;
        self.client
            .execute(request)
            .await
            .map_err(|e| classify(&e, timeout))
    }

    /// The head of `response` over its body, which streams with at most `idle` between chunks
    /// and at most `max_body` bytes in all.
    fn streaming(&self, response: reqwest::Response, idle: Duration) -> http::Response<BodyStream> {
        let mut out = http::Response::new(());
        *out.status_mut() = response.status();
        *out.headers_mut() = response.headers().clone();
        *out.version_mut() = response.version();
        let max_body = self.max_body;
        let read = move |(mut response, read): (reqwest::Response, usize)| async move {
            let item = match response.chunk().await {
                Ok(None) => return None,
                Ok(Some(chunk)) => {
                    let read = read.saturating_add(chunk.len());
                    if read <= max_body {
                        return Some((Ok(chunk), (response, read)));
                    }
                    Err(TransportError::BodyTooLarge { limit: max_body })
                }
                Err(e) => Err(classify_body(&e, idle)),
            };
            // The body ends after an error (`BodyStream::idle_limited` reads no further).
            Some((item, (response, read)))
        };
        let chunks = futures_util::stream::unfold((response, 0usize), read);
        out.map(|()| BodyStream::idle_limited(chunks, idle))
    }
}

impl fmt::Debug for ReqwestTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReqwestTransport")
            .field("max_body", &self.max_body)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Transport for ReqwestTransport {
    async fn send(
        &self,
        request: http::Request<Bytes>,
        timeout: Duration,
    ) -> Result<http::Response<Bytes>, TransportError> {
        within(timeout, async {
            read_body(self.streaming(self.head(request, timeout).await?, timeout)).await
        })
        .await
    }

    async fn send_streaming(
        &self,
        request: http::Request<Bytes>,
        timeout: Duration,
    ) -> Result<http::Response<BodyStream>, TransportError> {
        let head = within(timeout, self.head(request, timeout)).await?;
        Ok(self.streaming(head, timeout))
    }
}

/// Sorts a reqwest error into what it means for a retry. The URL is stripped: it may carry
/// credentials in a query string.
fn classify(error: &reqwest::Error, timeout: Duration) -> TransportError {
    let message = strip_url(error);
    if error.is_connect() {
        TransportError::Connect { message }
    } else if error.is_timeout() {
        TransportError::Timeout { timeout }
    } else if error.is_builder() {
        TransportError::InvalidRequest { message }
    } else {
        TransportError::Interrupted { message }
    }
}

/// Sorts a reqwest error met while reading a body: the request was sent and answered, so
/// anything but a timeout is a broken connection.
fn classify_body(error: &reqwest::Error, timeout: Duration) -> TransportError {
    if error.is_timeout() {
        TransportError::Timeout { timeout }
    } else {
        TransportError::Interrupted {
            message: strip_url(error),
        }
    }
}

fn strip_url(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    if let Some(url) = error.url() {
        text = text.replace(url.as_str(), "<url>");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    async fn serve_once(response: &'static [u8]) -> std::net::SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let _ = socket.read(&mut buf).await;
            let _ = socket.write_all(response).await;
            let _ = socket.shutdown().await;
        });
        addr
    }

    pub(super) fn get(addr: std::net::SocketAddr) -> http::Request<Bytes> {
        http::Request::get(format!("http://{addr}/v1/things"))
            .body(Bytes::new())
            .unwrap()
    }

    #[tokio::test]
    async fn a_response_comes_back_with_status_headers_and_body() {
        let addr = serve_once(
            b"HTTP/1.1 429 Too Many Requests\r\nretry-after: 7\r\ncontent-length: 5\r\n\r\nslow!",
        )
        .await;
        let transport = ReqwestTransport::new().unwrap();
        let response = transport
            .send(get(addr), Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers()["retry-after"], "7");
        assert_eq!(response.body().as_ref(), b"slow!");
    }

    #[tokio::test]
    async fn a_refused_connection_is_certainly_not_sent() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let transport = ReqwestTransport::new().unwrap();
        let err = transport
            .send(get(addr), Duration::from_secs(10))
            .await
            .unwrap_err();
        assert!(matches!(err, TransportError::Connect { .. }), "{err:?}");
        assert!(err.certainly_not_sent());
    }

    #[tokio::test]
    async fn a_body_over_the_cap_is_refused_not_buffered() {
        let addr = serve_once(b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 64\r\n\r\n0123456789012345678901234567890123456789012345678901234567890123").await;
        let transport = ReqwestTransport::new().unwrap().max_body(16);
        let err = transport
            .send(get(addr), Duration::from_secs(10))
            .await
            .unwrap_err();
        assert_eq!(err, TransportError::BodyTooLarge { limit: 16 });
    }

    #[tokio::test]
    async fn a_server_that_never_answers_times_out_as_maybe_processed() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hold = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(30)).await;
            drop(socket);
        });
        let transport = ReqwestTransport::new().unwrap();
        let err = transport
            .send(get(addr), Duration::from_millis(200))
            .await
            .unwrap_err();
        assert_eq!(
            err,
            TransportError::Timeout {
                timeout: Duration::from_millis(200)
            }
        );
        assert!(!err.certainly_not_sent());
        hold.abort();
    }

    #[tokio::test]
    async fn redirects_are_returned_not_followed() {
        let addr =
            serve_once(b"HTTP/1.1 307 Temporary Redirect\r\nlocation: http://127.0.0.1:9/elsewhere\r\ncontent-length: 0\r\n\r\n")
                .await;
        let transport = ReqwestTransport::new().unwrap();
        let response = transport
            .send(get(addr), Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(response.status(), 307);
    }
}

#[cfg(test)]
mod streaming_tests;
