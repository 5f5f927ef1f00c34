//! Webhooks: `X-Twilio-Signature` validation, and dedupe of Twilio's own webhook retries.
//!
//! Twilio signs each webhook request with the account's auth token: `X-Twilio-Signature` is the
//! base64 HMAC-SHA1 of the full URL Twilio requested (scheme, host, port if any, path, query)
//! followed by every POST parameter, sorted by name (then value), as `name` + `value` with no
//! separators. Signatures are compared in constant time. As Twilio's SDKs do, a URL is also
//! tried with its default port added or removed (Twilio signs what it dialled, which a proxy
//! may rewrite). JSON-bodied webhooks (`bodySHA256` in the query) are not covered.
//!
//! Twilio retries a webhook whose response failed or timed out (`#rc=` on the URL: up to 5),
//! sending the same `I-Twilio-Idempotency-Token` each time. [`WebhookDedupe`] claims the token
//! in a [`DedupeStore`] (in memory or shared), so the handler runs once per delivery.
//!
//! ```
//! use ratewise_twilio::webhook::RequestValidator;
//!
//! let validator = RequestValidator::new("12345");
//! let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
//! let params = [
//!     ("CallSid", "CA1234567890ABCDE"),
//!     ("Caller", "+12349013030"),
//!     ("Digits", "1234"),
//!     ("From", "+12349013030"),
//!     ("To", "+18005551212"),
//! ];
//! let signature = validator.signature(url, params);
//! assert_eq!(signature, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
//! assert!(validator.validate(url, params, &signature).is_ok());
//! ```

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use http::{HeaderMap, Uri};
use ratewise_core::dedupe::{DedupeError, DedupeStore, Deliveries, Delivery as Seen};
use ratewise_core::secret::Secret;
use sha1::Sha1;
use subtle::ConstantTimeEq;

use crate::form;
use crate::headers::{X_TWILIO_SIGNATURE, idempotency_token};

type HmacSha1 = Hmac<Sha1>;

/// Why a webhook request was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// The request had no `X-Twilio-Signature` header (or it was not text).
    #[error("no X-Twilio-Signature header: not a Twilio request")]
    MissingSignature,
    /// The signature does not match: wrong auth token, another URL, or tampered parameters.
    #[error(
        "X-Twilio-Signature does not match: wrong auth token, a different URL than Twilio requested, or tampered parameters"
    )]
    Mismatch,
}

/// Validates `X-Twilio-Signature` with the account's auth token (kept as a [`Secret`]).
#[derive(Clone, Debug)]
pub struct RequestValidator {
    token: Secret,
}

impl RequestValidator {
    /// A validator for the auth token Twilio signs with.
    pub fn new(auth_token: impl Into<Secret>) -> Self {
        Self {
            token: auth_token.into(),
        }
    }

    /// The signature Twilio sends for `url` and `params`.
    pub fn signature<'a>(
        &self,
        url: &str,
        params: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> String {
        let sorted = sorted(params);
        base64::engine::general_purpose::STANDARD.encode(self.mac(url, &sorted))
    }

    fn mac(&self, url: &str, sorted: &[(&str, &str)]) -> Vec<u8> {
        let mut mac = HmacSha1::new_from_slice(self.token.expose().as_bytes())
            .unwrap_or_else(|_| <HmacSha1 as Mac>::new(&Default::default()));
        mac.update(url.as_bytes());
        for (name, value) in sorted {
            mac.update(name.as_bytes());
            mac.update(value.as_bytes());
        }
        mac.finalize().into_bytes().to_vec()
    }

    /// Checks `signature` against `url` and `params` (and the URL with its default port added
    /// or removed). Constant-time.
    pub fn validate<'a>(
        &self,
        url: &str,
        params: impl IntoIterator<Item = (&'a str, &'a str)>,
        signature: &str,
    ) -> Result<(), WebhookError> {
        let Ok(expected) = base64::engine::general_purpose::STANDARD.decode(signature.trim())
        else {
            return Err(WebhookError::Mismatch);
        };
        let sorted = sorted(params);
        let matched = url_variants(url).iter().fold(false, |found, candidate| {
            found | bool::from(self.mac(candidate, &sorted).ct_eq(&expected))
        });
        if matched {
            Ok(())
        } else {
            Err(WebhookError::Mismatch)
        }
    }

    /// Validates a form-encoded POST (`body`) to `url` with the signature in `headers`, and
    /// returns its decoded parameters.
    pub fn validate_form(
        &self,
        url: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Vec<(String, String)>, WebhookError> {
        let signature = headers
            .get(X_TWILIO_SIGNATURE)
            .and_then(|v| v.to_str().ok())
            .ok_or(WebhookError::MissingSignature)?;
        let params = form::decode(body);
        self.validate(
            url,
            params.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            signature,
        )?;
        Ok(params)
    }
}

/// Parameters sorted by name, then value, identical pairs once (as twilio-python signs them).
fn sorted<'a>(params: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<(&'a str, &'a str)> {
    let mut sorted: Vec<_> = params.into_iter().collect();
    sorted.sort_unstable();
    sorted.dedup();
    sorted
}

/// `url` as given, then with its scheme's default port removed (if it has it) or added (if it
/// has none).
fn url_variants(url: &str) -> Vec<String> {
    let mut variants = vec![url.to_owned()];
    let Ok(uri) = url.parse::<Uri>() else {
        return variants;
    };
    let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
        return variants;
    };
    let default_port = match scheme {
        "https" => 443,
        "http" => 80,
        _ => return variants,
    };
    let rest = uri.path_and_query().map_or("", |p| p.as_str());
    let host = authority.host();
    let other = match authority.port_u16() {
        Some(port) if port == default_port => format!("{scheme}://{host}{rest}"),
        Some(_) => return variants,
        None => format!("{scheme}://{host}:{default_port}{rest}"),
    };
    variants.push(other);
    variants
}

/// What [`WebhookDedupe::begin`] found for a delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Delivery {
    /// The first delivery with this token: handle it, then call [`WebhookDedupe::handled`]
    /// (or [`WebhookDedupe::failed`] so Twilio's retry is handled).
    First(String),
    /// A retry of a delivery already handled: answer 200 without handling it again.
    Duplicate,
    /// A retry while the first delivery is still being handled (or its handler died): answer
    /// with an error status so Twilio retries later, or 200 to drop it.
    InProgress,
    /// No `I-Twilio-Idempotency-Token`: nothing to dedupe by; handle it.
    Untracked,
}

/// Dedupes Twilio's webhook retries by `I-Twilio-Idempotency-Token`: the core's
/// [`Deliveries`] keyed by that header.
#[derive(Clone, Debug)]
pub struct WebhookDedupe {
    deliveries: Deliveries,
}

/// The prefix of webhook tokens in the store (apart from create keys).
const TOKEN_PREFIX: &str = "twilio.webhook:";

impl WebhookDedupe {
    /// Dedupe through `store`, remembering tokens for 24 hours.
    pub fn new(store: Arc<dyn DedupeStore>) -> Self {
        Self {
            deliveries: Deliveries::new(store, TOKEN_PREFIX),
        }
    }

    /// How long a token is remembered (default 24 h; Twilio retries within seconds).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.deliveries = self.deliveries.ttl(ttl);
        self
    }

    /// Claims the delivery's token, if it has one.
    pub async fn begin(&self, headers: &HeaderMap) -> Result<Delivery, DedupeError> {
        let Some(token) = idempotency_token(headers) else {
            return Ok(Delivery::Untracked);
        };
        Ok(match self.deliveries.begin(token).await? {
            Seen::First => Delivery::First(token.to_owned()),
            Seen::Duplicate => Delivery::Duplicate,
            _ => Delivery::InProgress,
        })
    }

    /// Records that the delivery with `token` was handled: its retries are duplicates.
    pub async fn handled(&self, token: &str) -> Result<(), DedupeError> {
        self.deliveries.handled(token).await
    }

    /// Forgets `token`: the handler failed, so Twilio's retry is handled afresh.
    pub async fn failed(&self, token: &str) -> Result<(), DedupeError> {
        self.deliveries.failed(token).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use proptest::prelude::*;
    use ratewise_core::dedupe::MemoryDedupe;

    // Twilio's documented example (twilio.com/docs/usage/security), also in every SDK's tests.
    const TOKEN: &str = "12345";
    const URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";
    const PARAMS: [(&str, &str); 5] = [
        ("Digits", "1234"),
        ("To", "+18005551212"),
        ("From", "+12349013030"),
        ("Caller", "+12349013030"),
        ("CallSid", "CA1234567890ABCDE"),
    ];
    const EXPECTED: &str = "0/KCTR6DLpKmkAf8muzZqo1nDgQ=";

    #[test]
    fn twilios_documented_example_validates() {
        let validator = RequestValidator::new(TOKEN);
        assert_eq!(validator.signature(URL, PARAMS), EXPECTED);
        assert!(validator.validate(URL, PARAMS, EXPECTED).is_ok());
    }

    #[test]
    fn tampered_parameters_or_url_are_refused() {
        let validator = RequestValidator::new(TOKEN);
        let mut tampered = PARAMS;
        tampered[0] = ("Digits", "1235");
        assert!(matches!(
            validator.validate(URL, tampered, EXPECTED),
            Err(WebhookError::Mismatch)
        ));
        let extra = PARAMS.into_iter().chain([("Extra", "1")]);
        assert!(validator.validate(URL, extra, EXPECTED).is_err());
        assert!(
            validator
                .validate(
                    "https://mycompany.com/myapp.php?foo=1&bar=3",
                    PARAMS,
                    EXPECTED
                )
                .is_err()
        );
    }

    #[test]
    fn a_wrong_token_is_refused() {
        let validator = RequestValidator::new("54321");
        assert!(validator.validate(URL, PARAMS, EXPECTED).is_err());
    }

    #[test]
    fn the_default_port_may_be_added_or_removed() {
        let validator = RequestValidator::new(TOKEN);
        let with_port = "https://mycompany.com:443/myapp.php?foo=1&bar=2";
        assert!(validator.validate(with_port, PARAMS, EXPECTED).is_ok());
        let signed_with_port = validator.signature(with_port, PARAMS);
        assert!(validator.validate(URL, PARAMS, &signed_with_port).is_ok());
        let other_port = "https://mycompany.com:8443/myapp.php?foo=1&bar=2";
        assert!(validator.validate(other_port, PARAMS, EXPECTED).is_err());
    }

    #[test]
    fn a_form_body_validates_from_the_header_and_returns_its_params() {
        let validator = RequestValidator::new(TOKEN);
        let body = form::encode(PARAMS);
        let mut headers = HeaderMap::new();
        assert!(matches!(
            validator.validate_form(URL, &headers, body.as_bytes()),
            Err(WebhookError::MissingSignature)
        ));
        headers.insert(X_TWILIO_SIGNATURE, HeaderValue::from_static(EXPECTED));
        let params = validator
            .validate_form(URL, &headers, body.as_bytes())
            .unwrap();
        assert_eq!(params.len(), 5);
        assert!(validator.validate_form(URL, &headers, b"Digits=9").is_err());
    }

    #[test]
    fn the_token_never_appears_in_debug() {
        let validator = RequestValidator::new("super-secret-token");
        assert!(!format!("{validator:?}").contains("super-secret"));
    }

    #[tokio::test]
    async fn a_retried_delivery_is_handled_once_and_a_failed_one_again() {
        let dedupe = WebhookDedupe::new(Arc::new(MemoryDedupe::default()));
        let mut headers = HeaderMap::new();
        assert_eq!(dedupe.begin(&headers).await.unwrap(), Delivery::Untracked);
        headers.insert(
            "i-twilio-idempotency-token",
            HeaderValue::from_static("tok-1"),
        );
        assert_eq!(
            dedupe.begin(&headers).await.unwrap(),
            Delivery::First("tok-1".into())
        );
        assert_eq!(dedupe.begin(&headers).await.unwrap(), Delivery::InProgress);
        dedupe.handled("tok-1").await.unwrap();
        assert_eq!(dedupe.begin(&headers).await.unwrap(), Delivery::Duplicate);
        headers.insert(
            "i-twilio-idempotency-token",
            HeaderValue::from_static("tok-2"),
        );
        assert_eq!(
            dedupe.begin(&headers).await.unwrap(),
            Delivery::First("tok-2".into())
        );
        dedupe.failed("tok-2").await.unwrap();
        assert_eq!(
            dedupe.begin(&headers).await.unwrap(),
            Delivery::First("tok-2".into())
        );
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(
            url in ".{0,80}",
            body in proptest::collection::vec(any::<u8>(), 0..200),
            signature in proptest::collection::vec(any::<u8>(), 0..60),
        ) {
            let validator = RequestValidator::new(TOKEN);
            let mut headers = HeaderMap::new();
            if let Ok(value) = HeaderValue::from_bytes(&signature) {
                headers.insert(X_TWILIO_SIGNATURE, value);
            }
            let _ = validator.validate_form(&url, &headers, &body);
            let text = String::from_utf8_lossy(&signature);
            let _ = validator.validate(&url, [("a", text.as_ref())], &text);
        }
    }
}
