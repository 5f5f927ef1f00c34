//! [`Request`]: one logical Stripe call, ready to send, with its idempotency key and params.

use std::marker::PhantomData;

use http::Method;
use ratewise_core::idempotency::IdempotencyKey;
use ratewise_core::provider::{Provider, RequestSpec};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::StripeProvider;
use crate::client::StripeClient;
use crate::error::StripeError;
use crate::form;
use crate::headers::{self, STRIPE_ACCOUNT};

/// The error of a Stripe call: the core's error with Stripe's typed body.
///
/// `Error::Api` carries the [`StripeError`] (with the idempotency key of a keyed request
/// filled in), the status, the `Request-Id` and whether a later attempt may succeed.
pub type Error = ratewise_core::error::Error<StripeError>;

const FORM: &str = "application/x-www-form-urlencoded";

/// A successful call's value, with how it was obtained.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Meta<T> {
    /// The decoded object.
    pub value: T,
    /// Stripe's `Request-Id`.
    pub request_id: Option<String>,
    /// True when Stripe replayed a response saved under the idempotency key
    /// (`Idempotent-Replayed: true`): the side effect happened on an earlier attempt or call.
    pub replayed: bool,
    /// The idempotency key every attempt sent (POSTs only).
    pub idempotency_key: Option<IdempotencyKey>,
    /// How many attempts the call took.
    pub attempts: u32,
}

/// One logical Stripe call: method, path, parameters and idempotency key.
///
/// Built by the resource handles ([`StripeClient::payment_intents`], …). A POST is sent with
/// an `Idempotency-Key`: the one given with [`idempotency_key`](Self::idempotency_key) or
/// [`idempotency_key_for`](Self::idempotency_key_for), else a fresh UUID v4 minted when the
/// call is sent, once, and repeated on every retry.
#[must_use = "a request does nothing until sent"]
pub struct Request<T> {
    client: StripeClient,
    method: Method,
    path: String,
    operation: &'static str,
    params: Result<Map<String, Value>, String>,
    key: Option<IdempotencyKey>,
    out: PhantomData<fn() -> T>,
}

impl<T> Clone for Request<T> {
    fn clone(&self) -> Self {
        Self {
            client: self.client.clone(),
            method: self.method.clone(),
            path: self.path.clone(),
            operation: self.operation,
            params: self.params.clone(),
            key: self.key.clone(),
            out: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for Request<T> {
    /// Parameters are left out: they may carry personal data.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("operation", &self.operation)
            .field("idempotency_key", &self.key)
            .finish_non_exhaustive()
    }
}

impl<T: DeserializeOwned> Request<T> {
    pub(crate) fn new(
        client: StripeClient,
        method: Method,
        path: String,
        operation: &'static str,
    ) -> Self {
        Self {
            client,
            method,
            path,
            operation,
            params: Ok(Map::new()),
            key: None,
            out: PhantomData,
        }
    }

    /// This request with the fields of `params` (a typed params struct) added.
    pub(crate) fn params<P: Serialize>(mut self, params: &P) -> Self {
        let fields = serde_json::to_value(params).map_err(|e| e.to_string());
        self.params = match (self.params, fields) {
            (Ok(mut map), Ok(Value::Object(fields))) => {
                map.extend(fields);
                Ok(map)
            }
            (Ok(_), Ok(_)) => Err("parameters must serialise to an object".to_owned()),
            (Err(e), _) | (_, Err(e)) => Err(e),
        };
        self
    }

    /// This request with one more parameter (any Stripe parameter the typed builders do not
    /// cover yet; nested values are form-encoded with brackets).
    pub fn param(mut self, name: &str, value: impl Into<Value>) -> Self {
        if let Ok(map) = &mut self.params {
            map.insert(name.to_owned(), value.into());
        }
        self
    }

    /// Expands `field` in the response (`expand[]=customer`).
    pub fn expand(mut self, field: &str) -> Self {
        if let Ok(map) = &mut self.params {
            let entry = map
                .entry("expand")
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(fields) = entry {
                fields.push(Value::String(field.to_owned()));
            }
        }
        self
    }

    /// Sends `key` as the `Idempotency-Key` (POSTs only): a retry of the same business
    /// operation, even from another process, is then performed once.
    pub fn idempotency_key(mut self, key: IdempotencyKey) -> Self {
        self.key = Some(key);
        self
    }

    /// Sends a key derived from a business id (UUID v5 of `business_id` in `namespace`): the
    /// same order always sends the same key.
    pub fn idempotency_key_for(self, namespace: &Uuid, business_id: impl AsRef<[u8]>) -> Self {
        self.idempotency_key(IdempotencyKey::derive(namespace, business_id))
    }

    /// Sends the call and decodes the object.
    pub async fn send(self) -> Result<T, Error> {
        self.send_with_meta().await.map(|meta| meta.value)
    }

    /// Sends the call and returns the object with its request id, replay flag, key and
    /// attempts.
    pub async fn send_with_meta(self) -> Result<Meta<T>, Error> {
        let name = <StripeProvider as Provider>::NAME;
        let params = self
            .params
            .map_err(|message| Error::invalid_request(name, message))?;
        let encoded = form::encode(&Value::Object(params))
            .map_err(|e| Error::invalid_request(name, e.to_string()))?;
        let keyed = self.method == Method::POST;
        let key = keyed.then(|| self.key.unwrap_or_else(IdempotencyKey::new));
        let mut spec = if keyed {
            RequestSpec::new(self.method, self.path, self.operation).body(FORM, encoded)
        } else if encoded.is_empty() {
            RequestSpec::new(self.method, self.path, self.operation)
        } else {
            RequestSpec::new(
                self.method,
                format!("{}?{encoded}", self.path),
                self.operation,
            )
        };
        if let Some(key) = &key {
            spec = spec.idempotency_key(key.clone());
        }
        if let Some(account) = self.client.account() {
            spec = spec.header(STRIPE_ACCOUNT, account.clone());
        }
        match self.client.upstream().execute(spec).await {
            Ok(response) => {
                let value = response
                    .json()
                    .map_err(|e| Error::decode(name, &response.body, e.to_string()))?;
                Ok(Meta {
                    value,
                    replayed: headers::is_replayed(&response.headers),
                    request_id: response.request_id,
                    idempotency_key: response.idempotency_key,
                    attempts: response.attempts,
                })
            }
            Err(mut error) => {
                if let Error::Api {
                    error: Some(api), ..
                } = &mut error
                {
                    api.idempotency_key = key;
                }
                Err(error)
            }
        }
    }
}

/// `/v1/{resource}/{id}` with `id` percent-encoded.
pub(crate) fn object_path(resource: &str, id: &str) -> String {
    format!("/v1/{resource}/{}", form::component(id))
}
