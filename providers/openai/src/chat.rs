//! Chat completions: `POST /chat/completions`, whole or streamed as server-sent events.
//!
//! # Streaming
//!
//! [`Chat::create_stream`] sends `stream: true` through the pipeline's streaming call
//! ([`Upstream::execute_streaming`](ratewise_core::upstream::Upstream::execute_streaming)):
//! admission, pacing and retries run as for [`Chat::create`], and the call returns as soon as
//! a 2xx head arrives. The [`ChatStream`] then parses the `text/event-stream` body
//! incrementally and yields each typed chunk as soon as its event has arrived, while the model
//! is still writing the rest. `data: [DONE]` ends it.
//!
//! - **Retries** happen only before the first byte of the body: a 429 or a 5xx is retried
//!   after its hint as for any call. A connection that breaks (or a body that stalls past the
//!   per-attempt timeout) mid-stream is an item error of the stream and ends it; it is never
//!   retried, since a second attempt would repeat the chunks already yielded. Retry the whole
//!   call yourself if a repeated beginning is acceptable.
//! - **Tokens**: the call reserves the estimate (prompt, or `max_completion_tokens` × `n`) on
//!   admission, and asks for the final usage chunk (`stream_options.include_usage`). When that
//!   chunk arrives, the reservation is settled with its `usage.total_tokens`, refunding what
//!   the completion did not use. A stream dropped before it (or one whose server sends no
//!   usage) keeps the estimate charged: OpenAI may well have spent it.
//! - **Concurrency**: a limiter slot (if a concurrency limiter is configured) is held until the
//!   body ends, breaks, reaches `[DONE]` or the stream is dropped.

use http::{HeaderValue, header};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::client::{Error, OpenAiClient, invalid, json_spec};
use crate::wire::wire_enum;

mod stream;

pub use stream::ChatStream;

wire_enum! {
    /// Who wrote a message.
    pub enum Role {
        /// `system`.
        System => "system",
        /// `developer` (replaces `system` for o-series models).
        Developer => "developer",
        /// `user`.
        User => "user",
        /// `assistant`.
        Assistant => "assistant",
        /// `tool`.
        Tool => "tool",
    }
}

wire_enum! {
    /// Why the model stopped.
    pub enum FinishReason {
        /// `stop`: a natural end or a stop sequence.
        Stop => "stop",
        /// `length`: `max_tokens` (or the context) was reached.
        Length => "length",
        /// `tool_calls`: the model called a tool.
        ToolCalls => "tool_calls",
        /// `content_filter`: content was omitted by a filter.
        ContentFilter => "content_filter",
        /// `function_call` (deprecated).
        FunctionCall => "function_call",
    }
}

/// One message of a conversation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ChatMessage {
    /// Who wrote it.
    pub role: Role,
    /// Its text (`None` for an assistant message that only calls tools).
    #[serde(default)]
    pub content: Option<String>,
    /// A participant name, to tell participants of the same role apart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The model's refusal, when it refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
}

impl ChatMessage {
    /// A message from `role` saying `content`.
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: Some(content.into()),
            name: None,
            refusal: None,
        }
    }

    /// A `system` message.
    pub fn system(content: impl Into<String>) -> Self {
        Self::new(Role::System, content)
    }

    /// A `user` message.
    pub fn user(content: impl Into<String>) -> Self {
        Self::new(Role::User, content)
    }

    /// An `assistant` message (an earlier reply, for context).
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::new(Role::Assistant, content)
    }

    /// This message with a participant `name`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
struct StreamOptions {
    include_usage: bool,
}

/// The parameters of `POST /chat/completions`: the model and messages are required.
///
/// Parameters without a method here (`tools`, `response_format`, …) go through
/// [`param`](Self::param).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct CreateChatCompletion {
    model: String,
    messages: Vec<ChatMessage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_completion_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    n: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

impl CreateChatCompletion {
    /// A completion of `messages` by `model`.
    pub fn new(model: impl Into<String>, messages: Vec<ChatMessage>) -> Self {
        Self {
            model: model.into(),
            messages,
            max_completion_tokens: None,
            max_tokens: None,
            n: None,
            temperature: None,
            stop: None,
            user: None,
            stream: false,
            stream_options: None,
            extra: Map::new(),
        }
    }

    /// At most `tokens` of completion (`max_completion_tokens`). Also what the call reserves
    /// against the tokens-per-minute budget, so set it close to what you need.
    pub fn max_completion_tokens(mut self, tokens: u64) -> Self {
        self.max_completion_tokens = Some(tokens);
        self
    }

    /// The deprecated `max_tokens` (older models).
    pub fn max_tokens(mut self, tokens: u64) -> Self {
        self.max_tokens = Some(tokens);
        self
    }

    /// `n` choices (each may use `max_completion_tokens`).
    pub fn n(mut self, n: u64) -> Self {
        self.n = Some(n);
        self
    }

    /// Sampling temperature (0 to 2).
    pub fn temperature(mut self, temperature: f64) -> Self {
        self.temperature = Some(temperature);
        self
    }

    /// One more stop sequence (up to 4).
    pub fn stop(mut self, sequence: impl Into<String>) -> Self {
        self.stop.get_or_insert_with(Vec::new).push(sequence.into());
        self
    }

    /// An end-user id, for OpenAI's abuse monitoring.
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// Any other parameter, sent as given.
    pub fn param(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.extra.insert(name.into(), value.into());
        self
    }
}

/// Tokens a call used.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Usage {
    /// Tokens of the prompt.
    #[serde(default)]
    pub prompt_tokens: u64,
    /// Tokens of the completion (0 for embeddings).
    #[serde(default)]
    pub completion_tokens: u64,
    /// Their sum: what the tokens-per-minute budget is reconciled with.
    #[serde(default)]
    pub total_tokens: u64,
}

/// One choice of a completion.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct Choice {
    /// Its position among the `n` choices.
    #[serde(default)]
    pub index: u32,
    /// The reply.
    pub message: ChatMessage,
    /// Why the model stopped.
    #[serde(default)]
    pub finish_reason: Option<FinishReason>,
}

/// A chat completion.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct ChatCompletion {
    /// `chatcmpl-…`.
    pub id: String,
    /// Unix seconds.
    #[serde(default)]
    pub created: i64,
    /// The model that answered (a dated snapshot of the one asked for).
    #[serde(default)]
    pub model: String,
    /// The choices.
    #[serde(default)]
    pub choices: Vec<Choice>,
    /// Tokens used.
    #[serde(default)]
    pub usage: Option<Usage>,
    /// The backend configuration fingerprint.
    #[serde(default)]
    pub system_fingerprint: Option<String>,
}

impl ChatCompletion {
    /// The first choice's text, if any.
    pub fn text(&self) -> Option<&str> {
        self.choices.first()?.message.content.as_deref()
    }
}

/// What a streamed chunk adds to a choice.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct Delta {
    /// The role, on the first chunk.
    #[serde(default)]
    pub role: Option<Role>,
    /// More text.
    #[serde(default)]
    pub content: Option<String>,
    /// More refusal text.
    #[serde(default)]
    pub refusal: Option<String>,
}

/// One choice's part of a streamed chunk.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct ChunkChoice {
    /// Which choice.
    #[serde(default)]
    pub index: u32,
    /// What it adds.
    #[serde(default)]
    pub delta: Delta,
    /// Why the model stopped, on the choice's last chunk.
    #[serde(default)]
    pub finish_reason: Option<FinishReason>,
}

/// One chunk of a streamed chat completion (`chat.completion.chunk`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct ChatCompletionChunk {
    /// The completion's id (the same on every chunk).
    pub id: String,
    /// Unix seconds.
    #[serde(default)]
    pub created: i64,
    /// The model.
    #[serde(default)]
    pub model: String,
    /// The choices' deltas (empty on the final usage chunk).
    #[serde(default)]
    pub choices: Vec<ChunkChoice>,
    /// Tokens used: on the final chunk only.
    #[serde(default)]
    pub usage: Option<Usage>,
}

/// The chat completions resource of an [`OpenAiClient`].
#[derive(Clone, Debug)]
pub struct Chat {
    client: OpenAiClient,
}

impl Chat {
    pub(crate) fn new(client: OpenAiClient) -> Self {
        Self { client }
    }

    /// `POST /chat/completions`: the whole completion at once.
    pub async fn create(&self, request: CreateChatCompletion) -> Result<ChatCompletion, Error> {
        let mut request = request;
        request.stream = false;
        request.stream_options = None;
        self.client
            .post_json("/chat/completions", "chat.completions.create", &request)
            .await
    }

    /// `POST /chat/completions` with `stream: true`, as a [`ChatStream`] of chunks yielded as
    /// they arrive; asks for the final usage chunk so the token reservation is reconciled (see
    /// the [module docs](self)).
    pub async fn create_stream(&self, request: CreateChatCompletion) -> Result<ChatStream, Error> {
        let mut request = request;
        request.stream = true;
        request.stream_options = Some(StreamOptions {
            include_usage: true,
        });
        let spec = json_spec("/chat/completions", "chat.completions.stream", &request)
            .map_err(invalid)?
            .header(
                header::ACCEPT,
                HeaderValue::from_static("text/event-stream"),
            );
        let response = self.client.execute_streaming(spec).await?;
        Ok(ChatStream::new(response))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_serialises_only_what_was_set() {
        let request = CreateChatCompletion::new(
            "gpt-4o-mini",
            vec![
                ChatMessage::system("Be brief."),
                ChatMessage::user("Hi").name("ada"),
            ],
        )
        .max_completion_tokens(50)
        .param("response_format", serde_json::json!({"type": "text"}));
        let json = serde_json::to_value(&request).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "model": "gpt-4o-mini",
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "Hi", "name": "ada"}
                ],
                "max_completion_tokens": 50,
                "response_format": {"type": "text"}
            })
        );
    }

    #[test]
    fn a_completion_decodes_with_unknown_roles_reasons_and_fields() {
        let body = r#"{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-mini-2024-07-18",
            "choices":[{"index":0,"message":{"role":"assistant","content":"Hello!","annotations":[]},"logprobs":null,"finish_reason":"stop"},
                       {"index":1,"message":{"role":"critic","content":null},"finish_reason":"thinking_budget"}],
            "usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12,"prompt_tokens_details":{"cached_tokens":0}},
            "service_tier":"default","system_fingerprint":"fp_1"}"#;
        let completion: ChatCompletion = serde_json::from_str(body).unwrap();
        assert_eq!(completion.text(), Some("Hello!"));
        assert_eq!(
            completion.choices[0].finish_reason,
            Some(FinishReason::Stop)
        );
        assert_eq!(
            completion.choices[1].message.role,
            Role::Other("critic".into())
        );
        assert_eq!(
            completion.choices[1].finish_reason,
            Some(FinishReason::Other("thinking_budget".into()))
        );
        assert_eq!(completion.usage.unwrap().total_tokens, 12);
    }
}
