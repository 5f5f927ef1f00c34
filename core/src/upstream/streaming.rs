//! [`Upstream::execute_streaming`]: a call whose successful body is handed over as it arrives.
//!
//! The call runs the same attempt loop as [`Upstream::execute`] (breaker, limiters, retry
//! budget, hints, idempotency key, telemetry), through
//! [`Transport::send_streaming`]. What differs:
//!
//! - **A success head** (2xx, inspected by its status and headers alone, since the body is
//!   not read) ends the loop at once: the caller gets the head and the body as a
//!   [`BodyStream`], nothing of which has been read.
//! - **Any other status** has its body read in full (capped by the transport, under the
//!   per-attempt timeout) and is inspected, retried or failed exactly as `execute` does.
//! - **Retries happen only before the first byte of a success body** is handed over. A failure
//!   while the body streams is an item error of the stream, never a retry: a second attempt
//!   could repeat output the caller already consumed (a model's reply, twice).
//!
//! What is settled when:
//!
//! - **The breaker** records the attempt as a success when its 2xx head arrives: the upstream
//!   answered. A body that breaks later is not recorded: the breaker counts one outcome per
//!   call, and a break after minutes of streaming (often the client's network or a proxy's idle
//!   limit) says little about whether the upstream is up now. It is counted instead in
//!   [`Stats::streams_broken`](crate::stats::Stats::streams_broken), the
//!   `ratewise_streams_broken_total` metric and a `WARN` event on target
//!   [`CALL_TARGET`].
//! - **The limiters' permit** (a concurrency slot) is held until the body ends, breaks or is
//!   dropped: the request is in flight until then.
//! - **The limiters' charge** is the estimate until the caller knows the real cost (OpenAI's
//!   final `usage` chunk) and settles the [`Reservation`]. A reservation dropped unsettled
//!   (a stream abandoned early, or one that never reported its cost) leaves the estimate
//!   charged: the provider may well have spent it.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use http::{HeaderMap, StatusCode};

use super::receive::Receive;
use super::{CALL_TARGET, Inner, Upstream};
use crate::error::Error;
use crate::idempotency::IdempotencyKey;
use crate::limit::{CompositeLimiter, Cost, Limiter, Permit};
use crate::provider::{Provider, RequestSpec};
use crate::telemetry::emit;
use crate::transport::{BodyStream, Transport, TransportError, read_body, within};

/// A successful response whose body is still arriving: what
/// [`Upstream::execute_streaming`] returns.
#[derive(Debug)]
#[non_exhaustive]
pub struct StreamingResponse {
    /// The HTTP status (2xx).
    pub status: StatusCode,
    /// The response headers.
    pub headers: HeaderMap,
    /// The body, chunk by chunk as it comes off the wire; none of it has been read. Holds the
    /// limiters' permit until it ends or is dropped.
    pub body: BodyStream,
    /// Attempts the call took (1 when the first succeeded).
    pub attempts: u32,
    /// The idempotency key every attempt sent, if any.
    pub idempotency_key: Option<IdempotencyKey>,
    /// The provider's request id, if the response carried one.
    pub request_id: Option<String>,
    /// What the limiters were charged for the call, to settle once the real cost is known.
    pub reservation: Reservation,
}

/// What a call's admission charged the limiters, until the real cost is known.
///
/// [`settle`](Self::settle) it with the actual cost (refunding or charging the difference).
/// Dropped unsettled, the estimate stays charged.
#[must_use = "settle the reservation with the actual cost, or the estimate stays charged"]
pub struct Reservation {
    limiter: CompositeLimiter,
    cost: Cost,
}

impl Reservation {
    /// What was charged.
    pub fn cost(&self) -> &Cost {
        &self.cost
    }

    /// Reconciles the charge with what the call really cost.
    pub fn settle(self, actual: &Cost) {
        self.limiter.reconcile(&self.cost, actual);
    }
}

impl fmt::Debug for Reservation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reservation")
            .field("cost", &self.cost)
            .finish_non_exhaustive()
    }
}

impl<A> Error<A> {
    /// The error for a body that failed while streaming, after the call had succeeded: a
    /// broken connection is [`Error::Interrupted`], a stalled body [`Error::Timeout`], a body
    /// over the transport's cap [`Error::Decode`].
    pub fn mid_stream(upstream: &'static str, failure: &TransportError) -> Self {
        match failure {
            TransportError::Timeout { .. } => Self::timeout(upstream),
            TransportError::Connect { message } => Self::connect(upstream, message.clone()),
            TransportError::BodyTooLarge { .. } => Self::decode(upstream, b"", failure.to_string()),
            TransportError::InvalidRequest { message } => {
                Self::invalid_request(upstream, message.clone())
            }
            other => Self::interrupted(upstream, other.to_string()),
        }
    }
}

/// The body of a success head, and the permit to hold until it ends.
pub(super) struct Pending {
    body: BodyStream,
    held: Permit,
}

/// The head first, the success body left on the wire.
pub(super) struct Streaming;

impl<P: Provider> Receive<P> for Streaming {
    type Output = StreamingResponse;
    type Rest = Option<Pending>;

    async fn send(
        &self,
        transport: &dyn Transport,
        request: http::Request<Bytes>,
        timeout: Duration,
        held: Permit,
    ) -> Result<(http::Response<Bytes>, Option<Pending>), TransportError> {
        let exchange = async {
            let response = transport.send_streaming(request, timeout).await?;
            if !response.status().is_success() {
                return Ok((read_body(response).await?, None));
            }
            let (parts, body) = response.into_parts();
            Ok((http::Response::from_parts(parts, Bytes::new()), Some(body)))
        };
        let (response, body) = within(timeout, exchange).await?;
        Ok((response, body.map(|body| Pending { body, held })))
    }

    async fn read_rest(
        &self,
        response: http::Response<Bytes>,
        rest: Option<Pending>,
        timeout: Duration,
    ) -> http::Response<Bytes> {
        let Some(Pending { body, held }) = rest else {
            return response;
        };
        // A body that fails to arrive leaves the error without it: the head decided already.
        let read = within(timeout, body.read_to_end()).await;
        drop(held);
        match read {
            Ok(body) => response.map(|_| body),
            Err(_) => response,
        }
    }

    fn success(
        &self,
        upstream: &Upstream<P>,
        response: http::Response<Bytes>,
        rest: Option<Pending>,
        attempts: u32,
        spec: &RequestSpec,
        cost: &Cost,
    ) -> StreamingResponse {
        let Pending { body, held } = rest.unwrap_or_else(|| Pending {
            body: BodyStream::once(response.body().clone()),
            held: Permit::empty(),
        });
        let inner = &upstream.inner;
        let guarded = Guarded {
            body,
            held: Some(held),
            inner: Arc::clone(inner),
            operation: spec.operation,
            read: 0,
        };
        let success = upstream.success(response, attempts, spec);
        StreamingResponse {
            status: success.status,
            headers: success.headers,
            body: BodyStream::new(guarded),
            attempts,
            idempotency_key: success.idempotency_key,
            request_id: success.request_id,
            reservation: Reservation {
                limiter: inner.limiter.clone(),
                cost: cost.clone(),
            },
        }
    }
}

/// A success body that releases the limiters' permit when it ends, breaks or is dropped, and
/// counts a break.
struct Guarded<P: Provider> {
    body: BodyStream,
    /// `None` once the body has ended or broken: the stream is then over for good.
    held: Option<Permit>,
    inner: Arc<Inner<P>>,
    operation: &'static str,
    /// Bytes handed over so far.
    read: u64,
}

impl<P: Provider> Guarded<P> {
    fn broken(&mut self, failure: &TransportError) {
        self.inner.counters.stream_broken();
        emit::stream_broken(P::NAME);
        tracing::warn!(
            target: CALL_TARGET,
            upstream = P::NAME,
            operation = self.operation,
            bytes = self.read,
            "the response body broke after {} bytes: {failure}; not retried (the caller may have consumed part of it)",
            self.read,
        );
    }
}

impl<P: Provider> Stream for Guarded<P> {
    type Item = Result<Bytes, TransportError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.held.is_none() {
            return Poll::Ready(None);
        }
        let item = match Pin::new(&mut this.body).poll_next(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(item) => item,
        };
        match &item {
            Some(Ok(chunk)) => {
                let len = u64::try_from(chunk.len()).unwrap_or(u64::MAX);
                this.read = this.read.saturating_add(len);
                return Poll::Ready(item);
            }
            Some(Err(failure)) => this.broken(failure),
            None => {}
        }
        // Over: the request is no longer in flight.
        this.held = None;
        this.body = BodyStream::empty();
        Poll::Ready(item)
    }
}
