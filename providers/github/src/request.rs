//! [`Request`]: one logical GitHub call, ready to send.

use std::marker::PhantomData;

use bytes::Bytes;
use http::Method;
use ratewise_core::idempotency::IdempotencyKey;
use ratewise_core::provider::{Provider, RequestSpec};
use serde::de::DeserializeOwned;

use crate::client::GitHubClient;
use crate::error::GitHubError;
use crate::headers::{self, RateLimit};
use crate::provider::GitHubProvider;

/// The error of a GitHub call: the core's error with GitHub's typed body.
///
/// `Error::Api` carries the [`GitHubError`] (`message`, `documentation_url`, `errors[]`), the
/// status, the `x-github-request-id` and whether a later attempt may succeed. A create that
/// failed after GitHub may have processed it ends with `Error::Ambiguous`: GitHub has no
/// idempotency key, so it was not retried.
pub type Error = ratewise_core::error::Error<GitHubError>;

const JSON: &str = "application/json";

/// A successful call's value, with how it was obtained.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Meta<T> {
    /// The decoded value.
    pub value: T,
    /// GitHub's `x-github-request-id`.
    pub request_id: Option<String>,
    /// The response's `ETag`, if any.
    pub etag: Option<String>,
    /// True when GitHub answered `304 Not Modified` and the value is the cached body (no
    /// primary budget spent).
    pub not_modified: bool,
    /// The response's rate-limit headers.
    pub rate_limit: Option<RateLimit>,
    /// The `rel="next"` page of a list, as a path under the base URL.
    pub next_page: Option<String>,
    /// How many attempts the call took.
    pub attempts: u32,
}

/// One logical GitHub call: method, path, query, body.
///
/// Built by the resource handles ([`GitHubClient::issues`], …). A GET is conditional by
/// default: it sends the cached `ETag` and a `304 Not Modified` returns the cached value without
/// spending primary budget; [`no_cache`](Self::no_cache) opts one call out.
#[must_use = "a request does nothing until sent"]
pub struct Request<T> {
    client: GitHubClient,
    method: Method,
    path: String,
    query: Vec<(String, String)>,
    body: Option<Result<Bytes, String>>,
    operation: &'static str,
    conditional: bool,
    key: Option<IdempotencyKey>,
    out: PhantomData<fn() -> T>,
}

impl<T> Clone for Request<T> {
    fn clone(&self) -> Self {
        Self {
            client: self.client.clone(),
            method: self.method.clone(),
            path: self.path.clone(),
            query: self.query.clone(),
            body: self.body.clone(),
            operation: self.operation,
            conditional: self.conditional,
            key: self.key.clone(),
            out: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for Request<T> {
    /// The body is left out: it may carry personal data.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("query", &self.query)
            .field("operation", &self.operation)
            .field("conditional", &self.conditional)
            .finish_non_exhaustive()
    }
}

impl<T: DeserializeOwned> Request<T> {
    pub(crate) fn new(
        client: GitHubClient,
        method: Method,
        path: String,
        operation: &'static str,
    ) -> Self {
        Self {
            client,
            method,
            path,
            query: Vec::new(),
            body: None,
            operation,
            conditional: true,
            key: None,
            out: PhantomData,
        }
    }

    /// This request with a JSON body.
    pub(crate) fn json(mut self, body: Result<Bytes, String>) -> Self {
        self.body = Some(body);
        self
    }

    /// This request at `path_and_query` (a `Link` page), its own query dropped.
    pub(crate) fn at(mut self, path_and_query: &str) -> Self {
        path_and_query.clone_into(&mut self.path);
        self.query.clear();
        self
    }

    /// This request with the query parameter `name=value` (replacing an earlier one).
    pub fn query(mut self, name: &str, value: impl ToString) -> Self {
        self.query.retain(|(n, _)| n != name);
        self.query.push((name.to_owned(), value.to_string()));
        self
    }

    /// Tags the call with `key`: every error of the call carries it
    /// ([`Error::idempotency_key`](ratewise_core::error::Error::idempotency_key)). GitHub reads
    /// no idempotency key, so nothing is sent and a create is still not retried after an
    /// ambiguous failure; the key only names the call in errors and logs.
    pub fn idempotency_key(mut self, key: IdempotencyKey) -> Self {
        self.key = Some(key);
        self
    }

    /// Sends this GET unconditionally: no `If-None-Match`, the response is not cached.
    pub fn no_cache(mut self) -> Self {
        self.conditional = false;
        self
    }

    /// The path and query as sent, relative to the base URL.
    pub fn path_and_query(&self) -> String {
        if self.query.is_empty() {
            return self.path.clone();
        }
        let query: Vec<String> = self
            .query
            .iter()
            .map(|(n, v)| format!("{}={}", component(n), component(v)))
            .collect();
        let separator = if self.path.contains('?') { '&' } else { '?' };
        format!("{}{separator}{}", self.path, query.join("&"))
    }

    /// Sends the call and decodes the value.
    pub async fn send(self) -> Result<T, Error> {
        self.send_with_meta().await.map(|meta| meta.value)
    }

    /// Sends the call and returns the value with its request id, ETag, rate-limit headers,
    /// next page and attempts.
    pub async fn send_with_meta(self) -> Result<Meta<T>, Error> {
        let name = <GitHubProvider as Provider>::NAME;
        let mut spec = RequestSpec::new(self.method.clone(), self.path_and_query(), self.operation);
        if let Some(body) = self.body {
            let body = body.map_err(|message| Error::invalid_request(name, message))?;
            spec = spec.body(JSON, body);
        }
        if let Some(key) = &self.key {
            spec = spec.idempotency_key(key.clone());
        }
        let sent = self.client.send(spec, self.conditional).await?;
        let response = sent.response;
        let value = serde_json::from_slice(&response.body)
            .map_err(|e| Error::decode(name, &response.body, e.to_string()))?;
        let next_page = match headers::next_link(&response.headers) {
            Some(link) => Some(
                self.client
                    .relative(&link)
                    .map(str::to_owned)
                    .ok_or_else(|| {
                        Error::invalid_request(
                            name,
                            format!(
                                "the next page `{link}` is not under the client's base URL; not followed"
                            ),
                        )
                    })?,
            ),
            None => None,
        };
        Ok(Meta {
            value,
            request_id: response.request_id.clone(),
            etag: response
                .headers
                .get(http::header::ETAG)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            not_modified: sent.not_modified,
            rate_limit: RateLimit::from_headers(&response.headers),
            next_page,
            attempts: response.attempts,
        })
    }
}

/// Percent-encodes a path segment or query component (RFC 3986 unreserved characters pass).
pub(crate) fn component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `/repos/{owner}/{repo}{rest}` with `owner` and `repo` percent-encoded.
pub(crate) fn repo_path(owner: &str, repo: &str, rest: &str) -> String {
    format!("/repos/{}/{}{rest}", component(owner), component(repo))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_are_percent_encoded() {
        assert_eq!(component("is:issue repo:o/r"), "is%3Aissue%20repo%3Ao%2Fr");
        assert_eq!(component("a-b_c.d~"), "a-b_c.d~");
        assert_eq!(
            repo_path("octo org", "r", "/issues"),
            "/repos/octo%20org/r/issues"
        );
    }

    #[test]
    fn the_query_is_appended_and_replaced() {
        let client = GitHubClient::new("t").unwrap();
        let request: Request<serde_json::Value> = Request::new(
            client,
            Method::GET,
            "/repos/o/r/issues".into(),
            "issues.list",
        )
        .query("state", "open")
        .query("per_page", 50)
        .query("state", "all");
        assert_eq!(
            request.path_and_query(),
            "/repos/o/r/issues?per_page=50&state=all"
        );
        let next = request.at("/repositories/1/issues?page=2");
        assert_eq!(next.path_and_query(), "/repositories/1/issues?page=2");
    }
}
