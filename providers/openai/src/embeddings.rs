//! Embeddings: `POST /embeddings`, for one input or a batch.

use serde::{Deserialize, Serialize};

use crate::chat::Usage;
use crate::client::{Error, OpenAiClient};

/// What to embed: one text, or a batch of texts (up to 2,048 inputs per request).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum EmbeddingInput {
    /// One text.
    Text(String),
    /// A batch of texts; the response has one embedding per text, in order.
    Texts(Vec<String>),
}

impl From<String> for EmbeddingInput {
    fn from(text: String) -> Self {
        Self::Text(text)
    }
}

impl From<&str> for EmbeddingInput {
    fn from(text: &str) -> Self {
        Self::Text(text.to_owned())
    }
}

impl From<Vec<String>> for EmbeddingInput {
    fn from(texts: Vec<String>) -> Self {
        Self::Texts(texts)
    }
}

/// The parameters of `POST /embeddings`: the model and input are required.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct CreateEmbedding {
    model: String,
    input: EmbeddingInput,
    #[serde(skip_serializing_if = "Option::is_none")]
    dimensions: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<String>,
}

impl CreateEmbedding {
    /// Embeddings of `input` by `model` (`text-embedding-3-small`, …).
    pub fn new(model: impl Into<String>, input: impl Into<EmbeddingInput>) -> Self {
        Self {
            model: model.into(),
            input: input.into(),
            dimensions: None,
            user: None,
        }
    }

    /// Shortens the vectors to `dimensions` (`text-embedding-3-*` only).
    pub fn dimensions(mut self, dimensions: u32) -> Self {
        self.dimensions = Some(dimensions);
        self
    }

    /// An end-user id, for OpenAI's abuse monitoring.
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }
}

/// One input's embedding.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct Embedding {
    /// The input's position in the batch.
    #[serde(default)]
    pub index: u32,
    /// The vector.
    #[serde(default)]
    pub embedding: Vec<f32>,
}

/// The response of `POST /embeddings`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct EmbeddingResponse {
    /// One embedding per input, in input order.
    #[serde(default)]
    pub data: Vec<Embedding>,
    /// The model that answered.
    #[serde(default)]
    pub model: String,
    /// Tokens used (`prompt_tokens` = `total_tokens`).
    #[serde(default)]
    pub usage: Usage,
}

/// The embeddings resource of an [`OpenAiClient`].
#[derive(Clone, Debug)]
pub struct Embeddings {
    client: OpenAiClient,
}

impl Embeddings {
    pub(crate) fn new(client: OpenAiClient) -> Self {
        Self { client }
    }

    /// `POST /embeddings`.
    pub async fn create(&self, request: CreateEmbedding) -> Result<EmbeddingResponse, Error> {
        self.client
            .post_json("/embeddings", "embeddings.create", &request)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_and_batched_inputs_serialise_as_openai_expects() {
        let one = CreateEmbedding::new("text-embedding-3-small", "hello").dimensions(256);
        assert_eq!(
            serde_json::to_value(&one).unwrap(),
            serde_json::json!({"model": "text-embedding-3-small", "input": "hello", "dimensions": 256})
        );
        let batch = CreateEmbedding::new(
            "text-embedding-3-small",
            vec!["a".to_owned(), "b".to_owned()],
        );
        assert_eq!(
            serde_json::to_value(&batch).unwrap()["input"],
            serde_json::json!(["a", "b"])
        );
    }

    #[test]
    fn a_response_decodes_and_ignores_unknown_fields() {
        let body = r#"{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.5,-0.25]}],
            "model":"text-embedding-3-small","usage":{"prompt_tokens":2,"total_tokens":2}}"#;
        let response: EmbeddingResponse = serde_json::from_str(body).unwrap();
        assert_eq!(response.data[0].embedding, vec![0.5, -0.25]);
        assert_eq!(response.usage.total_tokens, 2);
        assert_eq!(response.usage.completion_tokens, 0);
    }
}
