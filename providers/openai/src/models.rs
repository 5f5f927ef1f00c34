//! Models: `GET /models`.

use serde::Deserialize;

use crate::client::{Error, OpenAiClient};

/// A model the key can use.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct Model {
    /// `gpt-4o-mini`, `text-embedding-3-small`, …
    pub id: String,
    /// Unix seconds.
    #[serde(default)]
    pub created: i64,
    /// The organization that owns it (`system`, `openai`, your organization for fine-tunes).
    #[serde(default)]
    pub owned_by: String,
}

/// The response of `GET /models`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct ModelList {
    /// Every model the key can use.
    #[serde(default)]
    pub data: Vec<Model>,
}

/// The models resource of an [`OpenAiClient`].
#[derive(Clone, Debug)]
pub struct Models {
    client: OpenAiClient,
}

impl Models {
    pub(crate) fn new(client: OpenAiClient) -> Self {
        Self { client }
    }

    /// `GET /models`.
    pub async fn list(&self) -> Result<ModelList, Error> {
        self.client.get_json("/models", "models.list").await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_model_list_decodes() {
        let body = r#"{"object":"list","data":[{"id":"gpt-4o-mini","object":"model","created":1721172741,"owned_by":"system"}]}"#;
        let list: ModelList = serde_json::from_str(body).unwrap();
        assert_eq!(list.data[0].id, "gpt-4o-mini");
        assert_eq!(list.data[0].owned_by, "system");
    }
}
