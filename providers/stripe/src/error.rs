//! Stripe's typed error body: `{"error": {type, code, decline_code, message, param, …}}`.

use std::fmt;

use ratewise_core::idempotency::IdempotencyKey;
use serde::{Deserialize, Deserializer};

/// The `type` of a Stripe error.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum ErrorType {
    /// `api_error`: Stripe failed (rare).
    ApiError,
    /// `card_error`: the card was declined or cannot be charged (HTTP 402).
    CardError,
    /// `idempotency_error`: the key was reused with different parameters.
    IdempotencyError,
    /// `invalid_request_error`: invalid parameters, and also rate limits (`code: rate_limit`).
    InvalidRequestError,
    /// A type this crate does not know yet, kept as sent.
    Other(String),
    /// No type in the body.
    #[default]
    Missing,
}

impl ErrorType {
    /// The wire value (`card_error`, …; empty when missing).
    pub fn as_str(&self) -> &str {
        match self {
            Self::ApiError => "api_error",
            Self::CardError => "card_error",
            Self::IdempotencyError => "idempotency_error",
            Self::InvalidRequestError => "invalid_request_error",
            Self::Other(other) => other,
            Self::Missing => "",
        }
    }

    fn from_wire(value: String) -> Self {
        match value.as_str() {
            "api_error" => Self::ApiError,
            "card_error" => Self::CardError,
            "idempotency_error" => Self::IdempotencyError,
            "invalid_request_error" => Self::InvalidRequestError,
            "" => Self::Missing,
            _ => Self::Other(value),
        }
    }
}

impl<'de> Deserialize<'de> for ErrorType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Option::<String>::deserialize(deserializer)
            .map(|v| v.map_or(Self::Missing, Self::from_wire))
    }
}

/// The error codes this crate acts on (Stripe's `code` field).
pub mod code {
    /// Too many requests (429; before API version 2015-09-08 sent with HTTP 400).
    pub const RATE_LIMIT: &str = "rate_limit";
    /// The object is locked by another request (429).
    pub const LOCK_TIMEOUT: &str = "lock_timeout";
    /// A request with the same idempotency key is still in flight (409).
    pub const IDEMPOTENCY_KEY_IN_USE: &str = "idempotency_key_in_use";
}

/// A Stripe error body, decoded from `{"error": {…}}`.
///
/// Every field is optional and unknown fields are ignored: Stripe adds fields, and a 5xx may
/// carry a body with only a message. [`StripeError::idempotency_key`] is not in the body: the
/// client fills it in on errors of keyed requests, so an `idempotency_error` names its key.
#[derive(Clone, Debug, PartialEq, Eq, Default, Deserialize)]
#[non_exhaustive]
pub struct StripeError {
    /// The error's type.
    #[serde(rename = "type", default)]
    pub kind: ErrorType,
    /// A short machine-readable code (`rate_limit`, `card_declined`, `lock_timeout`, …).
    #[serde(default)]
    pub code: Option<String>,
    /// For card errors: the issuer's reason (`insufficient_funds`, …).
    #[serde(default)]
    pub decline_code: Option<String>,
    /// A human-readable message.
    #[serde(default)]
    pub message: Option<String>,
    /// The parameter the error is about, if any.
    #[serde(default)]
    pub param: Option<String>,
    /// A link to this request in the Dashboard's logs.
    #[serde(default)]
    pub request_log_url: Option<String>,
    /// A link to the documentation of the error code.
    #[serde(default)]
    pub doc_url: Option<String>,
    /// The idempotency key the failed request carried (filled in by the client).
    #[serde(skip)]
    pub idempotency_key: Option<IdempotencyKey>,
}

#[derive(Deserialize)]
struct Envelope {
    error: StripeError,
}

impl StripeError {
    /// Decodes a Stripe error body (`{"error": {…}}`); `None` when it is not one.
    pub fn from_body(body: &[u8]) -> Option<Self> {
        serde_json::from_slice::<Envelope>(body)
            .ok()
            .map(|e| e.error)
    }

    /// True for `code == rate_limit`.
    pub fn is_rate_limit(&self) -> bool {
        self.code.as_deref() == Some(code::RATE_LIMIT)
    }

    /// True for an idempotency key reused with different parameters (`idempotency_error`).
    pub fn is_idempotency_mismatch(&self) -> bool {
        self.kind == ErrorType::IdempotencyError
    }

    /// True for a card error (declined, expired, …).
    pub fn is_card_error(&self) -> bool {
        self.kind == ErrorType::CardError
    }
}

impl fmt::Display for StripeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind.as_str() {
            "" => "stripe_error",
            kind => kind,
        };
        write!(f, "{kind}")?;
        if let Some(code) = &self.code {
            write!(f, " ({code})")?;
        }
        if let Some(message) = &self.message {
            write!(f, ": {message}")?;
        }
        if let Some(decline) = &self.decline_code {
            write!(f, "; decline code {decline}")?;
        }
        if let Some(param) = &self.param {
            write!(f, "; param `{param}`")?;
        }
        if let Some(key) = &self.idempotency_key {
            write!(f, "; idempotency key {key}")?;
        }
        Ok(())
    }
}

impl std::error::Error for StripeError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_card_error_decodes_every_field_and_ignores_unknown_ones() {
        let body = br#"{"error":{"type":"card_error","code":"card_declined",
            "decline_code":"insufficient_funds","message":"Your card has insufficient funds.",
            "param":"payment_method","request_log_url":"https://dashboard.stripe.com/logs/req_1",
            "doc_url":"https://stripe.com/docs/error-codes/card-declined","charge":"ch_1",
            "payment_intent":{"id":"pi_1"}}}"#;
        let error = StripeError::from_body(body).unwrap();
        assert!(error.is_card_error());
        assert_eq!(error.decline_code.as_deref(), Some("insufficient_funds"));
        assert_eq!(error.param.as_deref(), Some("payment_method"));
        assert_eq!(
            error.to_string(),
            "card_error (card_declined): Your card has insufficient funds.; decline code insufficient_funds; param `payment_method`"
        );
    }

    #[test]
    fn missing_fields_and_unknown_types_are_tolerated() {
        let error = StripeError::from_body(br#"{"error":{}}"#).unwrap();
        assert_eq!(error.kind, ErrorType::Missing);
        assert_eq!(error.to_string(), "stripe_error");
        let error = StripeError::from_body(br#"{"error":{"type":"temporal_error","message":"x"}}"#)
            .unwrap();
        assert_eq!(error.kind, ErrorType::Other("temporal_error".into()));
        let error = StripeError::from_body(br#"{"error":{"type":null,"code":null}}"#).unwrap();
        assert_eq!(error.kind, ErrorType::Missing);
        assert!(StripeError::from_body(b"<html>502</html>").is_none());
    }

    #[test]
    fn an_idempotency_error_names_its_key() {
        let mut error = StripeError::from_body(
            br#"{"error":{"type":"idempotency_error","message":"Keys for idempotent requests can only be used with the same parameters they were first used with."}}"#,
        )
        .unwrap();
        error.idempotency_key = Some(IdempotencyKey::parse("order-42").unwrap());
        assert!(error.is_idempotency_mismatch());
        assert!(error.to_string().ends_with("; idempotency key order-42"));
    }
}
