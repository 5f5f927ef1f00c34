//! `send_streaming`: the reqwest transport against real local sockets, and the default for a
//! transport that only buffers.

use std::net::SocketAddr;

use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

use super::tests::get;
use super::*;

const HEAD: &[u8] =
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";

/// One chunk of HTTP/1.1 chunked transfer encoding.
fn chunk(data: &str) -> Vec<u8> {
    format!("{:x}\r\n{data}\r\n", data.len()).into_bytes()
}

/// Accepts one connection, reads the request, and hands the socket to `serve`.
async fn server<F, Fut>(serve: F) -> SocketAddr
where
    F: FnOnce(TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 4096];
        let _ = socket.read(&mut buf).await;
        serve(socket).await;
    });
    addr
}

/// The body of a GET of `addr` through `transport`, streamed.
async fn stream(transport: &ReqwestTransport, addr: SocketAddr, timeout: Duration) -> BodyStream {
    transport
        .send_streaming(get(addr), timeout)
        .await
        .unwrap()
        .into_body()
}

/// The next item of `body`, failing the test (instead of hanging) if none comes within 10 s.
async fn next(body: &mut BodyStream) -> Option<Result<Bytes, TransportError>> {
    tokio::time::timeout(Duration::from_secs(10), body.next())
        .await
        .expect("an item within 10 s")
}

#[tokio::test]
async fn a_chunk_is_handed_over_before_the_server_has_written_the_next() {
    let (written, go_on) = oneshot::channel::<()>();
    let addr = server(move |mut socket| async move {
        socket.write_all(HEAD).await.unwrap();
        socket.write_all(&chunk("data: 1\n\n")).await.unwrap();
        // The second chunk is written only once the client has the first: a transport that
        // waited for the whole body would never get it.
        let _ = go_on.await;
        socket.write_all(&chunk("data: 2\n\n")).await.unwrap();
        socket.write_all(b"0\r\n\r\n").await.unwrap();
    })
    .await;
    let transport = ReqwestTransport::new().unwrap();
    let response = transport
        .send_streaming(get(addr), Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.into_body();
    assert_eq!(next(&mut body).await.unwrap().unwrap(), "data: 1\n\n");
    written.send(()).unwrap();
    assert_eq!(next(&mut body).await.unwrap().unwrap(), "data: 2\n\n");
    assert!(next(&mut body).await.is_none());
}

#[tokio::test]
async fn a_connection_dropped_mid_body_is_an_interrupted_item() {
    let addr = server(|mut socket| async move {
        socket.write_all(HEAD).await.unwrap();
        socket.write_all(&chunk("data: 1\n\n")).await.unwrap();
        socket.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(socket);
    })
    .await;
    let transport = ReqwestTransport::new().unwrap();
    let mut body = stream(&transport, addr, Duration::from_secs(10)).await;
    assert_eq!(next(&mut body).await.unwrap().unwrap(), "data: 1\n\n");
    let err = next(&mut body).await.unwrap().unwrap_err();
    assert!(matches!(err, TransportError::Interrupted { .. }), "{err:?}");
    assert!(next(&mut body).await.is_none(), "nothing after the error");
}

#[tokio::test]
async fn a_body_that_stalls_longer_than_the_timeout_ends_with_a_timeout() {
    let addr = server(|mut socket| async move {
        socket.write_all(HEAD).await.unwrap();
        socket.write_all(&chunk("data: 1\n\n")).await.unwrap();
        tokio::time::sleep(Duration::from_secs(30)).await;
    })
    .await;
    let transport = ReqwestTransport::new().unwrap();
    let idle = Duration::from_millis(200);
    let mut body = stream(&transport, addr, idle).await;
    assert_eq!(next(&mut body).await.unwrap().unwrap(), "data: 1\n\n");
    let err = next(&mut body).await.unwrap().unwrap_err();
    assert_eq!(err, TransportError::Timeout { timeout: idle });
}

#[tokio::test]
async fn a_streamed_body_over_the_cap_ends_with_body_too_large() {
    let addr = server(|mut socket| async move {
        socket.write_all(HEAD).await.unwrap();
        socket.write_all(&chunk("0123456")).await.unwrap();
        socket.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        socket.write_all(&chunk("7890123")).await.unwrap();
        socket.write_all(b"0\r\n\r\n").await.unwrap();
    })
    .await;
    let transport = ReqwestTransport::new().unwrap().max_body(10);
    let mut body = stream(&transport, addr, Duration::from_secs(10)).await;
    assert_eq!(next(&mut body).await.unwrap().unwrap(), "0123456");
    let err = next(&mut body).await.unwrap().unwrap_err();
    assert_eq!(err, TransportError::BodyTooLarge { limit: 10 });
}

/// A transport that implements only `send`.
#[derive(Debug)]
struct Buffering(&'static str);

#[async_trait]
impl Transport for Buffering {
    async fn send(
        &self,
        _request: http::Request<Bytes>,
        _timeout: Duration,
    ) -> Result<http::Response<Bytes>, TransportError> {
        Ok(http::Response::new(Bytes::from_static(self.0.as_bytes())))
    }
}

#[tokio::test]
async fn a_transport_that_only_buffers_streams_its_body_as_one_chunk() {
    let request = || http::Request::new(Bytes::new());
    let timeout = Duration::from_secs(1);
    let body = Buffering("data: 1\n\ndata: 2\n\n")
        .send_streaming(request(), timeout)
        .await
        .unwrap()
        .into_body();
    let chunks: Vec<_> = body.collect::<Vec<_>>().await;
    assert_eq!(
        chunks,
        vec![Ok(Bytes::from_static(b"data: 1\n\ndata: 2\n\n"))]
    );
    let empty = Buffering("")
        .send_streaming(request(), timeout)
        .await
        .unwrap();
    assert_eq!(empty.into_body().collect::<Vec<_>>().await, Vec::new());
}

#[tokio::test]
async fn a_body_collects_its_chunks_or_its_error_and_debug_shows_no_bytes() {
    let chunks = ["data: se", "cret\n", "\n"].map(|c| Ok(Bytes::from_static(c.as_bytes())));
    let body = BodyStream::new(futures_util::stream::iter(chunks));
    assert!(!format!("{body:?}").contains("se"));
    assert_eq!(
        BodyStream::read_to_end(body).await.unwrap(),
        "data: secret\n\n"
    );
    let broken = BodyStream::new(futures_util::stream::iter([
        Ok(Bytes::from_static(b"data")),
        Err(TransportError::Interrupted {
            message: "reset".into(),
        }),
    ]));
    assert!(matches!(
        BodyStream::read_to_end(broken).await,
        Err(TransportError::Interrupted { .. })
    ));
    assert_eq!(BodyStream::empty().read_to_end().await.unwrap(), "");
}
