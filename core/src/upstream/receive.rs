//! How the pipeline receives one attempt's response: read in full ([`Buffered`], behind
//! [`Upstream::execute`]) or head first ([`Streaming`](super::streaming::Streaming), behind
//! [`Upstream::execute_streaming`]). The attempt loop is the same for both; only these steps
//! differ.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;

use super::{Response, Upstream};
use crate::limit::{Cost, Limiter, Permit};
use crate::provider::{Provider, RequestSpec};
use crate::transport::{Transport, TransportError};

/// One way of receiving a response, plugged into the attempt loop.
pub(super) trait Receive<P: Provider>: Sync {
    /// What a successful call returns.
    type Output;
    /// What the loop carries past inspection besides the response it inspects: nothing for a
    /// body read in full; for a success head, its unread body and the limiters' permit.
    type Rest: Send;

    /// Sends one attempt. Returns the response to inspect (its body read in full, or empty for
    /// a head whose body was left on the wire) and the rest. `held` is the limiters' permit of
    /// this attempt: released once the request is over, which for a streamed body is its end.
    fn send(
        &self,
        transport: &dyn Transport,
        request: http::Request<Bytes>,
        timeout: Duration,
        held: Permit,
    ) -> impl Future<Output = Result<(http::Response<Bytes>, Self::Rest), TransportError>> + Send;

    /// The response of a failed attempt with its body, read now if it was left on the wire
    /// (a success head the provider did not judge a success), so the error can quote it.
    fn read_rest(
        &self,
        response: http::Response<Bytes>,
        rest: Self::Rest,
        timeout: Duration,
    ) -> impl Future<Output = http::Response<Bytes>> + Send;

    /// The result of a call whose attempt the provider judged a success. `cost` is what the
    /// limiters were charged for it.
    fn success(
        &self,
        upstream: &Upstream<P>,
        response: http::Response<Bytes>,
        rest: Self::Rest,
        attempts: u32,
        spec: &RequestSpec,
        cost: &Cost,
    ) -> Self::Output;
}

/// The body read in full before inspection; the actual cost reconciled from it at once.
pub(super) struct Buffered;

impl<P: Provider> Receive<P> for Buffered {
    type Output = Response;
    type Rest = ();

    async fn send(
        &self,
        transport: &dyn Transport,
        request: http::Request<Bytes>,
        timeout: Duration,
        held: Permit,
    ) -> Result<(http::Response<Bytes>, ()), TransportError> {
        let sent = transport.send(request, timeout).await;
        drop(held);
        Ok((sent?, ()))
    }

    async fn read_rest(
        &self,
        response: http::Response<Bytes>,
        (): (),
        _timeout: Duration,
    ) -> http::Response<Bytes> {
        response
    }

    fn success(
        &self,
        upstream: &Upstream<P>,
        response: http::Response<Bytes>,
        (): (),
        attempts: u32,
        spec: &RequestSpec,
        cost: &Cost,
    ) -> Response {
        let inner = &*upstream.inner;
        if let Some(actual) = inner.provider.actual_cost(spec, &response) {
            inner.limiter.reconcile(cost, &actual);
        }
        upstream.success(response, attempts, spec)
    }
}
