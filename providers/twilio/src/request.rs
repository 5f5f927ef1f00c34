//! [`Request`]: one logical Twilio call, ready to send; for creates, the no-duplicate rules.
//!
//! # Creates and duplicates
//!
//! Twilio documents no idempotency header for Messages or Calls, so a create is retried only
//! when the failed attempt certainly was not processed: a 429 (20429) or a connection that
//! never opened. A 5xx, a timeout after sending or a broken connection ends the call with
//! `Error::Ambiguous`, saying a retry could send a duplicate.
//!
//! A queue that redelivers a job (the worker crashed after sending) would still send twice.
//! With a dedupe store on the client ([`TwilioClientBuilder::dedupe`]) and a caller-supplied key
//! ([`Request::idempotency_key`], carried by the job across redeliveries), a create first
//! claims its key:
//!
//! - fresh: it is sent; on success the key is completed with the created SID; on a failure
//!   that certainly sent nothing (a 4xx, a limiter refusal, a connect failure) the claim is
//!   released so a redelivery may send; on an ambiguous failure the claim stays pending;
//! - pending (in flight elsewhere, or ambiguous): nothing is sent, `Error::Ambiguous`;
//! - done: nothing is sent; the resource is fetched by its recorded SID and returned with
//!   [`Meta::deduplicated`] set.
//!
//! Without a caller-supplied key there is nothing a redelivery could match, so the store is not
//! consulted.
//!
//! [`TwilioClientBuilder::dedupe`]: crate::TwilioClientBuilder::dedupe

use std::marker::PhantomData;

use http::Method;
use ratewise_core::dedupe::Claim;
use ratewise_core::idempotency::IdempotencyKey;
use ratewise_core::limit::Limiter as _;
use ratewise_core::provider::{Provider, RequestSpec};
use ratewise_core::quota::Cost;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::client::TwilioClient;
use crate::error::TwilioError;
use crate::form;
use crate::provider::TwilioProvider;

/// The error of a Twilio call: the core's error with Twilio's typed body.
///
/// `Error::Api` carries the [`TwilioError`] (either body format), the status, the
/// `Twilio-Request-Id` and whether a later attempt may succeed. A 21611 (sender queue full) is
/// an `Error::Api` marked retryable after the provider's park (default 60 s): check
/// [`is_queue_full`].
pub type Error = ratewise_core::error::Error<TwilioError>;

/// True when `error` is Twilio's 21611: the sender's queue is full; park the message until
/// `retry_after()`.
pub fn is_queue_full(error: &Error) -> bool {
    error.api_error().is_some_and(TwilioError::is_queue_full)
}

const NAME: &str = <TwilioProvider as Provider>::NAME;
const FORM: &str = "application/x-www-form-urlencoded";

/// A successful call's value, with how it was obtained.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Meta<T> {
    /// The decoded resource.
    pub value: T,
    /// Twilio's `Twilio-Request-Id`.
    pub request_id: Option<String>,
    /// The key the create was deduplicated by, if one was given.
    pub idempotency_key: Option<IdempotencyKey>,
    /// True when nothing was sent: the dedupe store recorded an earlier send under the key,
    /// and the value is that resource, fetched by its SID.
    pub deduplicated: bool,
    /// How many attempts the call took (of the fetch, when deduplicated).
    pub attempts: u32,
}

/// What a create needs beyond a plain call.
#[derive(Clone, Debug)]
struct Create {
    /// The collection, without `.json` (`…/Messages`): a recorded SID is fetched below it.
    collection: String,
    /// The sender, for the pause a 21611 puts on its budget.
    from: Option<String>,
    /// What the created thing is, for error messages (`SMS`, `call`).
    what: &'static str,
}

/// One logical Twilio call: method, path, form parameters and, for a create, its key.
#[must_use = "a request does nothing until sent"]
pub struct Request<T> {
    client: TwilioClient,
    method: Method,
    path: String,
    operation: &'static str,
    form: Vec<(String, String)>,
    cost: Option<Cost>,
    key: Option<IdempotencyKey>,
    create: Option<Create>,
    out: PhantomData<fn() -> T>,
}

impl<T> Clone for Request<T> {
    fn clone(&self) -> Self {
        Self {
            client: self.client.clone(),
            method: self.method.clone(),
            path: self.path.clone(),
            operation: self.operation,
            form: self.form.clone(),
            cost: self.cost.clone(),
            key: self.key.clone(),
            create: self.create.clone(),
            out: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for Request<T> {
    /// Parameters are left out: they carry phone numbers and message bodies.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("operation", &self.operation)
            .field("idempotency_key", &self.key)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Sid {
    sid: String,
}

impl<T: DeserializeOwned> Request<T> {
    /// A GET of `path` (with `query` pairs).
    pub(crate) fn get(
        client: TwilioClient,
        path: String,
        operation: &'static str,
        query: Vec<(String, String)>,
    ) -> Self {
        Self {
            client,
            method: Method::GET,
            path,
            operation,
            form: query,
            cost: None,
            key: None,
            create: None,
            out: PhantomData,
        }
    }

    /// A create: a form POST to `collection.json`, charged `cost`.
    pub(crate) fn create(
        client: TwilioClient,
        collection: String,
        operation: &'static str,
        form: Vec<(String, String)>,
        cost: Cost,
        from: Option<String>,
        what: &'static str,
    ) -> Self {
        Self {
            client,
            method: Method::POST,
            path: format!("{collection}.json"),
            operation,
            form,
            cost: Some(cost),
            key: None,
            create: Some(Create {
                collection,
                from,
                what,
            }),
            out: PhantomData,
        }
    }

    /// This request with one more parameter (any Twilio parameter the typed builders do not
    /// cover; a repeated name sends a list).
    pub fn param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.form.push((name.into(), value.into()));
        self
    }

    /// The key this create is deduplicated by: the same job, redelivered, carries the same
    /// key, so the client's dedupe store sends it at most once. (Twilio itself has no
    /// idempotency header for creates; the key is never sent.)
    pub fn idempotency_key(mut self, key: IdempotencyKey) -> Self {
        self.key = Some(key);
        self
    }

    /// A key derived from a business id (UUID v5 of `business_id` in `namespace`): the same
    /// notification always has the same key.
    pub fn idempotency_key_for(self, namespace: &Uuid, business_id: impl AsRef<[u8]>) -> Self {
        self.idempotency_key(IdempotencyKey::derive(namespace, business_id))
    }

    /// Sends the call and decodes the resource.
    pub async fn send(self) -> Result<T, Error> {
        self.send_with_meta().await.map(|meta| meta.value)
    }

    /// Sends the call and returns the resource with its request id, key, dedupe flag and
    /// attempts.
    pub async fn send_with_meta(self) -> Result<Meta<T>, Error> {
        let dedupe = match (&self.create, &self.key, self.client.dedupe()) {
            (Some(_), Some(key), Some((store, ttl))) => Some((key.clone(), store.clone(), ttl)),
            _ => None,
        };
        let Some((key, store, ttl)) = dedupe else {
            return self.execute().await.map(|(meta, _)| meta);
        };
        let what = self.create.as_ref().map_or("resource", |c| c.what);
        match store.claim(key.as_str(), ttl).await {
            Ok(Claim::Fresh) => {}
            Ok(Claim::Done(sid)) => return self.fetch_recorded(&sid, key).await,
            Ok(_) => {
                return Err(Error::ambiguous(
                    NAME,
                    format!(
                        "idempotency key {key}: an earlier send is in flight or its outcome was ambiguous; not sent again, a retry could send a duplicate {what}"
                    ),
                )
                .with_idempotency_key(Some(key)));
            }
            Err(error) => {
                return Err(Error::connect(NAME, format!("{error}; nothing was sent")));
            }
        }
        let result = self.execute().await;
        // Store failures after the send change nothing for the caller: an unreleased claim
        // stays pending until its TTL (a redelivery refuses, never duplicates), and an
        // uncompleted one likewise.
        match &result {
            Ok((_, Some(sid))) => {
                let _ = store.complete(key.as_str(), sid, ttl).await;
            }
            Ok((_, None)) => {}
            Err(error) if certainly_not_sent(error) => {
                let _ = store.release(key.as_str()).await;
            }
            Err(_) => {}
        }
        result.map(|(meta, _)| meta)
    }

    /// Fetches the resource a completed claim recorded.
    async fn fetch_recorded(self, sid: &str, key: IdempotencyKey) -> Result<Meta<T>, Error> {
        let collection = self.create.map(|c| c.collection).unwrap_or_default();
        let path = format!("{collection}/{}.json", form::path_segment(sid));
        let fetch = Request::<T>::get(self.client, path, self.operation, Vec::new());
        let (mut meta, _) = fetch.execute().await?;
        meta.deduplicated = true;
        meta.idempotency_key = Some(key);
        Ok(meta)
    }

    /// One call through the pipeline; the created SID alongside, for creates.
    async fn execute(self) -> Result<(Meta<T>, Option<String>), Error> {
        let encoded = form::encode(self.form.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let mut spec = if self.method == Method::GET {
            let path = if encoded.is_empty() {
                self.path
            } else {
                format!("{}?{encoded}", self.path)
            };
            RequestSpec::new(Method::GET, path, self.operation)
        } else {
            RequestSpec::new(self.method, self.path, self.operation).body(FORM, encoded)
        };
        if let Some(cost) = self.cost {
            spec = spec.cost(cost);
        }
        // Twilio reads no key, so the pipeline sends none; on the spec it only makes every
        // error of the call carry it.
        if let Some(key) = &self.key {
            spec = spec.idempotency_key(key.clone());
        }
        let upstream = self.client.upstream();
        match upstream.execute(spec).await {
            Ok(response) => {
                let value = response
                    .json()
                    .map_err(|e| Error::decode(NAME, &response.body, e.to_string()))?;
                let sid = self
                    .create
                    .is_some()
                    .then(|| serde_json::from_slice::<Sid>(&response.body).ok())
                    .flatten()
                    .map(|s| s.sid);
                let meta = Meta {
                    value,
                    request_id: response.request_id,
                    idempotency_key: self.key,
                    deduplicated: false,
                    attempts: response.attempts,
                };
                Ok((meta, sid))
            }
            Err(error) if is_queue_full(&error) => {
                let provider = upstream.provider();
                if let Some(from) = self.create.as_ref().and_then(|c| c.from.as_deref()) {
                    let at = upstream.clock().timestamp();
                    upstream
                        .limiter()
                        .observe(&provider.queue_full_snapshot(from, at));
                }
                Err(error
                    .with_retryable(true)
                    .with_retry_after(provider.queue_full_wait()))
            }
            Err(Error::Ambiguous { message, .. }) => {
                let what = self.create.as_ref().map_or("request", |c| c.what);
                Err(Error::ambiguous(
                    NAME,
                    format!(
                        "{message}; Twilio has no idempotency key for this create, so a retry could send a duplicate {what}"
                    ),
                )
                .with_idempotency_key(self.key))
            }
            Err(error) => Err(error),
        }
    }
}

/// True when `error` proves the create never reached Twilio's side effect: an HTTP 4xx answer
/// (Twilio refused it), a refusal before sending, or a connection that never opened.
fn certainly_not_sent(error: &Error) -> bool {
    match error {
        Error::Api { status, .. } => status.is_client_error(),
        Error::Throttled { .. }
        | Error::CircuitOpen { .. }
        | Error::RetryAfterTooLong { .. }
        | Error::RetryBudgetExhausted { .. }
        | Error::DeadlineExceeded { .. }
        | Error::Connect { .. }
        | Error::InvalidRequest { .. } => true,
        _ => false,
    }
}
