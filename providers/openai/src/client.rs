//! [`OpenAiClient`]: the entry point, cheap to clone, one per API key.

use http::{HeaderValue, header};
use ratewise_core::options::{ClientBuilder, ClientOptions};
use ratewise_core::provider::{Provider, RequestSpec};
use ratewise_core::secret::Secret;
use ratewise_core::upstream::{ConfigError, Response, StreamingResponse, Upstream};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::chat::Chat;
use crate::embeddings::Embeddings;
use crate::error::OpenAiError;
use crate::headers::{ORGANIZATION, PROJECT};
use crate::models::Models;
use crate::provider::{Limits, OpenAiProvider};

/// The error of an OpenAI call: the core's error with OpenAI's typed body.
///
/// An `insufficient_quota` 429 is `Error::Api` with `reason: Reason::QuotaExhausted` and
/// `retryable: false`; see [`QuotaExhausted`](crate::QuotaExhausted) to test for it.
pub type Error = ratewise_core::error::Error<OpenAiError>;

/// OpenAI's API, version 1 (paths below it are `/chat/completions`, `/embeddings`, …).
pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";
/// The environment variable [`OpenAiClient::from_env`] reads the key from: `OPENAI_API_KEY`.
pub const API_KEY_ENV: &str = "OPENAI_API_KEY";
/// Read by [`OpenAiClient::from_env`] when set: `OPENAI_BASE_URL` (a proxy).
pub const BASE_URL_ENV: &str = "OPENAI_BASE_URL";
/// Read by [`OpenAiClient::from_env`] when set: `OPENAI_ORG_ID`.
pub const ORGANIZATION_ENV: &str = "OPENAI_ORG_ID";
/// Read by [`OpenAiClient::from_env`] when set: `OPENAI_PROJECT_ID`.
pub const PROJECT_ENV: &str = "OPENAI_PROJECT_ID";

/// A client could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// `OPENAI_API_KEY` is not set (or is empty, or not UTF-8).
    #[error("OPENAI_API_KEY is not set: pass the API key to OpenAiClient::new")]
    MissingKey,
    /// The key, organization or project contains characters a header cannot carry.
    #[error("the {0} is not a valid header value")]
    InvalidHeader(&'static str),
    /// The pipeline refused its configuration (a bad base URL).
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// An OpenAI client: typed resources over the ratewise pipeline.
///
/// Cheap to clone (an `Arc` inside); clones share the limiters, breaker, retry budget and
/// counters, so build one per key and clone it into every task: the requests-per-minute and
/// tokens-per-minute budgets are then paced for all of them together. The key never appears in
/// `Debug` output.
///
/// ```
/// use ratewise_openai::OpenAiClient;
///
/// let client = OpenAiClient::builder("sk-proj-123")
///     .organization("org-abc")
///     .limits(3_000, 1_000_000)
///     .build()
///     .unwrap();
/// let _embeddings = client.embeddings();
/// assert!(!format!("{client:?}").contains("123"));
/// ```
#[derive(Clone)]
pub struct OpenAiClient {
    upstream: Upstream<OpenAiProvider>,
    key: Secret,
}

impl std::fmt::Debug for OpenAiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiClient")
            .field("key", &self.key)
            .field("upstream", &self.upstream)
            .finish()
    }
}

impl OpenAiClient {
    /// A client for `api_key` with every default (see [`OpenAiClientBuilder`]).
    pub fn new(api_key: impl Into<Secret>) -> Result<Self, ClientError> {
        Self::builder(api_key).build()
    }

    /// A client for the key in `OPENAI_API_KEY` (and `OPENAI_BASE_URL`, `OPENAI_ORG_ID`,
    /// `OPENAI_PROJECT_ID` when set), with every other default.
    pub fn from_env() -> Result<Self, ClientError> {
        Self::builder_from_env()?.build()
    }

    /// A builder for the key in `OPENAI_API_KEY`, with the optional variables applied.
    pub fn builder_from_env() -> Result<OpenAiClientBuilder, ClientError> {
        let var = |name| {
            std::env::var(name)
                .ok()
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let key = var(API_KEY_ENV).ok_or(ClientError::MissingKey)?;
        let mut builder = Self::builder(key);
        if let Some(url) = var(BASE_URL_ENV) {
            builder = builder.base_url(url);
        }
        if let Some(org) = var(ORGANIZATION_ENV) {
            builder = builder.organization(org);
        }
        if let Some(project) = var(PROJECT_ENV) {
            builder = builder.project(project);
        }
        Ok(builder)
    }

    /// A builder for `api_key` (`sk-…`, `sk-proj-…`).
    pub fn builder(api_key: impl Into<Secret>) -> OpenAiClientBuilder {
        OpenAiClientBuilder::new(api_key.into())
    }

    /// Chat completions: create, and stream.
    pub fn chat(&self) -> Chat {
        Chat::new(self.clone())
    }

    /// Embeddings: one input or a batch.
    pub fn embeddings(&self) -> Embeddings {
        Embeddings::new(self.clone())
    }

    /// Models: list.
    pub fn models(&self) -> Models {
        Models::new(self.clone())
    }

    /// The pipeline (for its stats, breaker and limiters).
    pub fn upstream(&self) -> &Upstream<OpenAiProvider> {
        &self.upstream
    }

    /// Runs `spec` and returns the raw successful response, filling the request id into a
    /// typed error body.
    pub(crate) async fn execute(&self, spec: RequestSpec) -> Result<Response, Error> {
        self.upstream.execute(spec).await.map_err(with_request_id)
    }

    /// Runs `spec` and returns the successful head with its body still streaming, filling the
    /// request id into a typed error body.
    pub(crate) async fn execute_streaming(
        &self,
        spec: RequestSpec,
    ) -> Result<StreamingResponse, Error> {
        self.upstream
            .execute_streaming(spec)
            .await
            .map_err(with_request_id)
    }

    /// POSTs `body` as JSON to `path` and decodes the JSON answer.
    pub(crate) async fn post_json<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        operation: &'static str,
        body: &B,
    ) -> Result<T, Error> {
        let spec = json_spec(path, operation, body).map_err(invalid)?;
        let response = self.execute(spec).await?;
        decode(&response).map_err(|e| undecodable(&response, &e))
    }

    /// GETs `path` and decodes the JSON answer.
    pub(crate) async fn get_json<T: DeserializeOwned>(
        &self,
        path: &str,
        operation: &'static str,
    ) -> Result<T, Error> {
        let response = self.execute(RequestSpec::get(path, operation)).await?;
        decode(&response).map_err(|e| undecodable(&response, &e))
    }
}

/// A POST of `body` as JSON.
pub(crate) fn json_spec<B: Serialize>(
    path: &str,
    operation: &'static str,
    body: &B,
) -> Result<RequestSpec, serde_json::Error> {
    let bytes = serde_json::to_vec(body)?;
    Ok(RequestSpec::post(path, operation).body("application/json", bytes))
}

/// A request body that could not be serialised.
pub(crate) fn invalid(error: serde_json::Error) -> Error {
    Error::invalid_request(OpenAiProvider::NAME, error.to_string())
}

/// Decodes a JSON body.
fn decode<T: DeserializeOwned>(response: &Response) -> Result<T, serde_json::Error> {
    response.json()
}

/// A body that did not decode, kept raw so the reader sees what the server said.
fn undecodable(response: &Response, error: &serde_json::Error) -> Error {
    Error::decode(OpenAiProvider::NAME, &response.body, error.to_string())
}

/// Copies the error's request id into the typed body, so it travels with it.
fn with_request_id(mut error: Error) -> Error {
    if let Error::Api {
        error: Some(api),
        request_id: Some(id),
        ..
    } = &mut error
    {
        api.request_id = Some(id.clone());
    }
    error
}

/// Builds an [`OpenAiClient`]: the API key is required, everything else has a default.
///
/// Defaults: base URL [`DEFAULT_BASE_URL`]; no organization or project header; no limits
/// known up front (the limiters learn them from the first response's headers, starting at
/// [`CONSERVATIVE_RPM`](crate::provider::CONSERVATIVE_RPM)); the core's `CallPolicy`
/// (4 attempts, hints obeyed up to 120 s, full-jitter backoff from 200 ms); the reqwest
/// transport and tokio's clock. The pipeline settings every client shares (base URL, policy,
/// transport, clock, breaker, extra limiters, retry budget, seed) are the provided methods of
/// [`ClientBuilder`] (re-exported by this crate).
pub struct OpenAiClientBuilder {
    key: Secret,
    organization: Option<String>,
    project: Option<String>,
    limits: Option<Limits>,
    options: ClientOptions,
}

impl std::fmt::Debug for OpenAiClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiClientBuilder")
            .field("key", &self.key)
            .field("organization", &self.organization)
            .field("project", &self.project)
            .field("limits", &self.limits)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder for OpenAiClientBuilder {
    fn options(&mut self) -> &mut ClientOptions {
        &mut self.options
    }
}

impl OpenAiClientBuilder {
    fn new(key: Secret) -> Self {
        Self {
            key,
            organization: None,
            project: None,
            limits: None,
            options: ClientOptions::new(),
        }
    }

    /// Bills requests to `organization` (`OpenAI-Organization`).
    pub fn organization(mut self, organization: impl Into<String>) -> Self {
        self.organization = Some(organization.into());
        self
    }

    /// Bills requests to `project` (`OpenAI-Project`).
    pub fn project(mut self, project: impl Into<String>) -> Self {
        self.project = Some(project.into());
        self
    }

    /// The tier's limits for the model(s) this client calls: `rpm` requests and `tpm` tokens
    /// per minute. The client then paces to them from the first call, and still follows the
    /// headers (another process spending the same key).
    pub fn limits(mut self, rpm: u64, tpm: u64) -> Self {
        self.limits = Some(Limits::new(rpm, tpm));
        self
    }

    /// Builds the client.
    pub fn build(self) -> Result<OpenAiClient, ClientError> {
        let provider = match self.limits {
            Some(limits) => OpenAiProvider::with_limits(limits),
            None => OpenAiProvider::new(),
        };
        let auth = self
            .key
            .header_value("Bearer ")
            .ok_or(ClientError::InvalidHeader("API key"))?;
        let mut builder = self
            .options
            .upstream(provider, DEFAULT_BASE_URL)
            .secret_header(header::AUTHORIZATION, auth)
            .redact(self.key.clone())
            .header(
                header::USER_AGENT,
                HeaderValue::from_static(concat!("ratewise-openai/", env!("CARGO_PKG_VERSION"))),
            );
        for (name, value, what) in [
            (ORGANIZATION, &self.organization, "organization"),
            (PROJECT, &self.project, "project"),
        ] {
            if let Some(value) = value {
                let value =
                    HeaderValue::from_str(value).map_err(|_| ClientError::InvalidHeader(what))?;
                builder = builder.header(name, value);
            }
        }
        Ok(OpenAiClient {
            upstream: builder.build()?,
            key: self.key,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_redacted_from_debug() {
        let client = OpenAiClient::new("sk-proj-verysecret").unwrap();
        assert!(!format!("{client:?}").contains("verysecret"));
        let builder = OpenAiClient::builder("sk-verysecret").project("proj_1");
        let text = format!("{builder:?}");
        assert!(!text.contains("verysecret"), "{text}");
        assert!(text.contains("proj_1"));
    }

    #[test]
    fn limits_given_up_front_reach_the_provider() {
        let client = OpenAiClient::builder("sk-x")
            .limits(500, 30_000)
            .build()
            .unwrap();
        assert_eq!(
            client.upstream().provider().limits(),
            Some(Limits::new(500, 30_000))
        );
        assert_eq!(client.upstream().limiter().members().len(), 4);
        let learning = OpenAiClient::new("sk-x").unwrap();
        assert_eq!(learning.upstream().provider().limits(), None);
        assert_eq!(learning.upstream().limiter().members().len(), 2);
    }

    #[test]
    fn bad_configuration_is_refused_with_a_reason() {
        assert!(matches!(
            OpenAiClient::new("sk-\nx"),
            Err(ClientError::InvalidHeader("API key"))
        ));
        assert!(matches!(
            OpenAiClient::builder("sk-x").organization("org\n").build(),
            Err(ClientError::InvalidHeader("organization"))
        ));
        assert!(matches!(
            OpenAiClient::builder("sk-x").base_url("not a url").build(),
            Err(ClientError::Config(_))
        ));
    }
}
