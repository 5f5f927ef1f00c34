//! [`ChatStream`]: a streamed chat completion, parsed as its bytes arrive.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::Stream;
use http::StatusCode;
use ratewise_core::provider::Provider;
use ratewise_core::transport::BodyStream;
use ratewise_core::upstream::{Reservation, StreamingResponse};

use super::{ChatCompletionChunk, Usage};
use crate::OpenAiProvider;
use crate::client::Error;
use crate::error::OpenAiError;
use crate::provider::usage_cost;
use crate::sse;

/// A streamed chat completion: a `Stream` of typed chunks, each yielded as soon as its event
/// has arrived (see the [module docs](super) for retries and the token reservation).
///
/// The stream ends after `data: [DONE]`, or when the body ends. An error event inside the
/// stream (`data: {"error": …}`) is yielded as an `Error::Api` and ends the stream; a chunk
/// that does not decode is yielded as `Error::Decode` (with the raw event) and the stream goes
/// on; a connection that breaks or stalls mid-stream is yielded as `Error::Interrupted` or
/// `Error::Timeout` ([`Error::mid_stream`]) and ends the stream, without a retry: the chunks
/// already yielded would be repeated.
#[derive(Debug)]
pub struct ChatStream {
    /// The body still to read; `None` once it ended, broke, or `[DONE]` arrived (dropping it
    /// releases the limiters' permit).
    body: Option<BodyStream>,
    parser: sse::Parser,
    /// The token reservation, until the usage chunk settles it.
    reservation: Option<Reservation>,
    usage: Option<Usage>,
    request_id: Option<String>,
    /// An error ended the stream.
    failed: bool,
}

impl ChatStream {
    pub(super) fn new(response: StreamingResponse) -> Self {
        Self::from_body(
            response.body,
            response.request_id,
            Some(response.reservation),
        )
    }

    pub(super) fn from_body(
        body: BodyStream,
        request_id: Option<String>,
        reservation: Option<Reservation>,
    ) -> Self {
        Self {
            body: Some(body),
            parser: sse::Parser::new(),
            reservation,
            usage: None,
            request_id,
            failed: false,
        }
    }

    /// The usage the final chunk reported (requested automatically), once it has arrived.
    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }

    /// The response's `x-request-id`.
    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }

    /// A chunk on its way out: its usage, if it carries it, settles the reservation.
    fn chunk(&mut self, chunk: ChatCompletionChunk) -> ChatCompletionChunk {
        if let Some(usage) = chunk.usage {
            self.usage = Some(usage);
            if let Some(reservation) = self.reservation.take() {
                reservation.settle(&usage_cost(usage.total_tokens));
            }
        }
        chunk
    }

    /// The error for an event that is not a chunk: an error event (which ends the stream), or
    /// an event that does not decode.
    fn failure(&mut self, data: &str) -> Error {
        let name = OpenAiProvider::NAME;
        let Some(mut error) = OpenAiError::from_body(data.as_bytes()) else {
            return Error::decode(name, data.as_bytes(), "not a chat.completion.chunk");
        };
        self.end(true);
        error.request_id.clone_from(&self.request_id);
        let failed = Error::api(name, StatusCode::OK, error).with_retryable(false);
        match &self.request_id {
            Some(id) => failed.with_request_id(id.clone()),
            None => failed,
        }
    }

    /// Stops reading: the body is dropped (the request is over).
    fn end(&mut self, failed: bool) {
        self.body = None;
        self.failed |= failed;
    }
}

impl Stream for ChatStream {
    type Item = Result<ChatCompletionChunk, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if this.failed {
                return Poll::Ready(None);
            }
            if let Some(data) = this.parser.next_event() {
                let item = match serde_json::from_str::<ChatCompletionChunk>(&data) {
                    Ok(chunk) => Ok(this.chunk(chunk)),
                    Err(_) => Err(this.failure(&data)),
                };
                return Poll::Ready(Some(item));
            }
            if this.parser.is_done() {
                this.end(false);
            }
            let Some(body) = this.body.as_mut() else {
                return Poll::Ready(None);
            };
            match Pin::new(body).poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(bytes))) => this.parser.feed(&bytes),
                Poll::Ready(Some(Err(failure))) => {
                    this.end(true);
                    let error = Error::mid_stream(OpenAiProvider::NAME, &failure);
                    return Poll::Ready(Some(Err(error)));
                }
                Poll::Ready(None) => {
                    this.end(false);
                    this.parser.finish();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
