//! [`SimServer`]: the simulated upstream over real HTTP on `127.0.0.1:0`.
//!
//! Served by axum over a listener whose connections can be killed: when the upstream decides to
//! drop a connection ([`Fault::ResetAfterCommit`](crate::Fault::ResetAfterCommit)), the handler
//! flips the connection's kill switch and the socket is closed with `SO_LINGER` 0 (a TCP RST)
//! before a single byte of the response is written, so the client sees a broken connection.
//! A body with a [`ChunkedBody`](crate::ChunkedBody) is written piece by piece as each leaves
//! (chunked transfer encoding), and its break kills the connection the same way.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse, Response};
use axum::serve::{IncomingStream, Listener};
use futures_util::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::chunked::{ChunkedBody, Piece, delivery};
use crate::upstream::{Reply, SimUpstream};

/// The largest request body the server reads: 16 MiB.
const MAX_BODY: usize = 16 * 1024 * 1024;

/// A [`SimUpstream`] served over HTTP/1.1 on `127.0.0.1`, on a free port.
///
/// For end-to-end tests and examples; never pause tokio's time around it (its latency is real
/// time). Stops on [`SimServer::shutdown`] or when dropped.
///
/// ```no_run
/// # async fn demo() -> std::io::Result<()> {
/// use ratewise_testkit::{SimServer, SimUpstream};
///
/// let server = SimServer::start(SimUpstream::builder().build()).await?;
/// let url = format!("{}/v1/charges", server.base_url());
/// # let _ = url;
/// server.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct SimServer {
    addr: SocketAddr,
    upstream: SimUpstream,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl SimServer {
    /// How long [`SimServer::shutdown`] lets requests in flight finish: 5 s.
    pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

    /// Binds `127.0.0.1:0` and serves `upstream` until shut down.
    pub async fn start(upstream: SimUpstream) -> io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let app = Router::new()
            .fallback(handle)
            .with_state(upstream.clone())
            .into_make_service_with_connect_info::<Connection>();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(KillableListener { inner: listener }, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(Self {
            addr,
            upstream,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The upstream being served (and its ledger).
    pub fn upstream(&self) -> &SimUpstream {
        &self.upstream
    }

    /// Stops accepting, lets requests in flight finish (at most 5 s), then stops.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(Self::SHUTDOWN_GRACE, &mut task)
                .await
                .is_err()
        {
            task.abort();
        }
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Answers every request through the upstream.
async fn handle(
    State(upstream): State<SimUpstream>,
    ConnectInfo(connection): ConnectInfo<Connection>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY).await else {
        return (
            http::StatusCode::PAYLOAD_TOO_LARGE,
            "request body too large",
        )
            .into_response();
    };
    let request = http::Request::from_parts(parts, body);
    let reply = match upstream.spawn(request) {
        Some(handle) => handle.await.unwrap_or(Reply::Reset),
        None => Reply::Reset,
    };
    match reply {
        Reply::Response(response) if response.extensions().get::<ChunkedBody>().is_some() => {
            let pieces = delivery(&response).map(move |piece| match piece {
                Piece::Data(bytes) => Ok(bytes),
                Piece::Break => {
                    connection.kill();
                    Err(io::Error::new(
                        io::ErrorKind::ConnectionReset,
                        "the simulated server broke the connection mid-body",
                    ))
                }
            });
            response.map(|_| Body::from_stream(pieces))
        }
        Reply::Response(response) => response.map(Body::from),
        Reply::Reset => {
            connection.kill();
            http::StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// The kill switch shared by a connection's stream and the requests it carries.
#[derive(Debug, Default)]
struct KillSwitch {
    killed: AtomicBool,
    wakers: Mutex<Vec<Waker>>,
}

impl KillSwitch {
    fn is_killed(&self) -> bool {
        self.killed.load(Ordering::SeqCst)
    }

    fn park(&self, waker: &Waker) {
        let mut wakers = self.wakers.lock().unwrap_or_else(PoisonError::into_inner);
        if !wakers.iter().any(|w| w.will_wake(waker)) {
            wakers.push(waker.clone());
        }
    }
}

/// The connect info each request sees: a handle to kill its connection.
#[derive(Clone, Debug)]
struct Connection(Arc<KillSwitch>);

impl Connection {
    fn kill(&self) {
        self.0.killed.store(true, Ordering::SeqCst);
        let wakers =
            std::mem::take(&mut *self.0.wakers.lock().unwrap_or_else(PoisonError::into_inner));
        for waker in wakers {
            waker.wake();
        }
    }
}

impl axum::extract::connect_info::Connected<IncomingStream<'_, KillableListener>> for Connection {
    fn connect_info(stream: IncomingStream<'_, KillableListener>) -> Self {
        Connection(stream.io().switch.clone())
    }
}

/// A TCP listener whose accepted streams carry a kill switch.
struct KillableListener {
    inner: TcpListener,
}

impl Listener for KillableListener {
    type Io = KillableStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, addr)) => {
                    let _ = stream.set_nodelay(true);
                    let io = KillableStream {
                        stream,
                        switch: Arc::new(KillSwitch::default()),
                    };
                    return (io, addr);
                }
                // Out of file descriptors and the like: back off briefly, as axum does.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A TCP stream that fails every read and write once killed, resetting the connection.
struct KillableStream {
    stream: TcpStream,
    switch: Arc<KillSwitch>,
}

impl KillableStream {
    /// If killed: arrange a TCP RST on close and fail the operation.
    fn check(&mut self, cx: &Context<'_>) -> Result<(), io::Error> {
        if self.switch.is_killed() {
            #[allow(deprecated)] // zero linger never blocks: it resets at once
            let _ = self.stream.set_linger(Some(Duration::ZERO));
            return Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "connection dropped by the simulated server",
            ));
        }
        self.switch.park(cx.waker());
        Ok(())
    }
}

impl AsyncRead for KillableStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Err(e) = self.check(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for KillableStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if let Err(e) = self.check(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Err(e) = self.check(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Err(e) = self.check(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
