//! The success path: what the simulated server answers when nothing goes wrong.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http::StatusCode;
use serde_json::json;

use crate::dialect::{epoch_seconds_ceil, json_response};

/// What the engine tells a handler about the request it is answering.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct HandlerContext {
    /// Arrival index of the request, 0-based: unique, so usable in ids.
    pub index: u64,
    /// The request's operation (`"POST /v1/charges"`).
    pub operation: Arc<str>,
    /// Whether the dialect counts the request as a side effect.
    pub side_effect: bool,
    /// Wall-clock time now, from the upstream's clock.
    pub wall: SystemTime,
}

/// Answers requests that passed every limit, fault and idempotency check.
///
/// The engine commits the side effect in the ledger when a side-effect request gets a 2xx, and
/// stores the response for idempotent replay whatever its status.
pub trait Handler: Send + Sync + fmt::Debug + 'static {
    /// The response to `request`.
    fn handle(&self, request: &http::Request<Bytes>, ctx: &HandlerContext)
    -> http::Response<Bytes>;
}

/// The default handler: `200` with a JSON object echoing the request.
///
/// Body: `{"id": "sim_<index>", "object": <last path segment, singular>, "created": <epoch s>,
/// "operation": "POST /v1/charges", "request": <the request body as JSON, or as a string>}`.
#[derive(Clone, Copy, Debug, Default)]
pub struct EchoHandler;

impl Handler for EchoHandler {
    fn handle(
        &self,
        request: &http::Request<Bytes>,
        ctx: &HandlerContext,
    ) -> http::Response<Bytes> {
        let segment = request
            .uri()
            .path()
            .split('/')
            .rev()
            .find(|s| !s.is_empty())
            .unwrap_or("object");
        let object = segment.strip_suffix('s').unwrap_or(segment);
        let body = request.body();
        let echoed = serde_json::from_slice::<serde_json::Value>(body)
            .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(body).into()));
        json_response(
            StatusCode::OK,
            &json!({
                "id": format!("sim_{}", ctx.index),
                "object": object,
                "created": epoch_seconds_ceil(ctx.wall),
                "operation": &*ctx.operation,
                "request": echoed,
            }),
        )
    }
}

impl<H: Handler + ?Sized> Handler for Arc<H> {
    fn handle(
        &self,
        request: &http::Request<Bytes>,
        ctx: &HandlerContext,
    ) -> http::Response<Bytes> {
        (**self).handle(request, ctx)
    }
}
