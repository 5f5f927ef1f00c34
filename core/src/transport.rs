//! The only door to the network: [`Transport`], and its reqwest implementation.
//!
//! Requests and responses are `http::Request<Bytes>` / `http::Response<Bytes>`: the body is
//! in memory, so every attempt of a retried call replays exactly the same bytes, and the
//! simulator (`ratewise-testkit`) can stand in for the network by implementing this one trait.
//!
//! A failure says whether the request certainly never reached the server
//! ([`TransportError::certainly_not_sent`]): that is the one case in which a non-idempotent
//! request without an idempotency key may be retried.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};

/// Sends one HTTP request and returns the response with its body read in full (up to a cap).
#[async_trait]
pub trait Transport: Send + Sync + fmt::Debug {
    /// Sends `request`, giving up after `timeout` (the per-attempt timeout).
    async fn send(
        &self,
        request: http::Request<Bytes>,
        timeout: Duration,
    ) -> Result<http::Response<Bytes>, TransportError>;
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

    async fn read_body(
        &self,
        mut response: reqwest::Response,
        timeout: Duration,
    ) -> Result<Bytes, TransportError> {
        let mut body = BytesMut::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len().saturating_add(chunk.len()) > self.max_body {
                        return Err(TransportError::BodyTooLarge {
                            limit: self.max_body,
                        });
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => return Ok(body.freeze()),
                Err(e) => return Err(classify(&e, timeout)),
            }
        }
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
        let request =
            reqwest::Request::try_from(request).map_err(|e| TransportError::InvalidRequest {
                message: e.without_url().to_string(),
            })?;
        let send = async {
            let response = self
                .client
                .execute(request)
                .await
                .map_err(|e| classify(&e, timeout))?;
            let status = response.status();
            let headers = response.headers().clone();
            let version = response.version();
            let body = self.read_body(response, timeout).await?;
            let mut out = http::Response::new(body);
            *out.status_mut() = status;
            *out.headers_mut() = headers;
            *out.version_mut() = version;
            Ok(out)
        };
        match tokio::time::timeout(timeout, send).await {
            Ok(result) => result,
            Err(_) => Err(TransportError::Timeout { timeout }),
        }
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

    fn get(addr: std::net::SocketAddr) -> http::Request<Bytes> {
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
