//! An OpenAI client on ratewise: requests-per-minute *and* tokens-per-minute budgets, paced
//! from OpenAI's `x-ratelimit-*` headers; rate-limit 429s retried after the server's hint,
//! quota 429s (`insufficient_quota`) failed at once; typed chat completions, embeddings and
//! models.
//!
//! | module | owns |
//! |---|---|
//! | [`provider`] | [`OpenAiProvider`]: how responses read (retry, fail, why), costs, limiters |
//! | [`headers`] | OpenAI's headers, and its reset format (Go durations like `6m0s`) |
//! | [`error`] | [`OpenAiError`], the typed error body; [`QuotaExhausted`] |
//! | [`tokens`] | token estimates: BPE (feature `tokenizer`) or one per 4 characters |
//! | [`client`] | [`OpenAiClient`]: builder, `from_env`, organization/project, tier limits |
//! | [`chat`], [`embeddings`], [`models`] | typed resources |
//! | [`sse`] | the incremental server-sent events parser behind [`ChatStream`] |
//! | `sim` | OpenAI's dialect and a small in-memory OpenAI for the testkit (feature `sim`) |
//!
//! ```no_run
//! use ratewise_openai::{CreateEmbedding, OpenAiClient};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let openai = OpenAiClient::builder_from_env()? // OPENAI_API_KEY
//!     .limits(3_000, 1_000_000) // your tier's RPM and TPM for the model
//!     .build()?;
//! let response = openai
//!     .embeddings()
//!     .create(CreateEmbedding::new("text-embedding-3-small", "The food was delicious."))
//!     .await?;
//! println!("{} dimensions, {} tokens", response.data[0].embedding.len(), response.usage.total_tokens);
//! # Ok(()) }
//! ```
//!
//! # Where this differs from openai-python and openai-node
//!
//! Both SDKs retry an `insufficient_quota` 429 like any other 429 (twice, with backoff) unless
//! the server sends `x-should-retry: false`; this crate fails it at once, because a retry
//! cannot add credits. Both SDKs wait only after a 429; this crate paces every call against
//! both per-minute budgets first, reserving the tokens OpenAI will charge, so a batch runs at
//! the limit instead of bouncing off it. See [`provider`] for every rule.

pub mod chat;
pub mod client;
pub mod embeddings;
pub mod error;
pub mod headers;
pub mod models;
pub mod provider;
#[cfg(any(test, feature = "sim"))]
pub mod sim;
pub mod sse;
pub mod tokens;
mod wire;

pub use chat::{
    ChatCompletion, ChatCompletionChunk, ChatMessage, ChatStream, CreateChatCompletion,
    FinishReason, Role, Usage,
};
pub use client::{ClientError, Error, OpenAiClient, OpenAiClientBuilder};
pub use embeddings::{CreateEmbedding, EmbeddingInput, EmbeddingResponse};
pub use error::{ErrorCode, OpenAiError, QuotaExhausted};
pub use models::{Model, ModelList};
pub use provider::{Limits, OpenAiProvider};
pub use ratewise_core::options::ClientBuilder;
pub use ratewise_core::secret::Secret;
