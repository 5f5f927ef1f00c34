//! OpenAI's typed error body: `{"error": {"message", "type", "param", "code"}}`.
//!
//! The `x-request-id` of the failed response is carried by the core error
//! ([`ratewise_core::error::Error::Api`]'s `request_id`) and also copied here by the client, so
//! an [`OpenAiError`] logged on its own still names the request.

use std::fmt;

use serde::{Deserialize, Deserializer};

/// The error codes this crate acts on (OpenAI's `code` field), and a few more worth naming.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// `rate_limit_exceeded`: a per-minute (or per-day) budget is spent. Pace, then retry.
    RateLimitExceeded,
    /// `insufficient_quota`: out of credits or over the monthly spend limit. Billing, not
    /// pacing: a retry will not help.
    InsufficientQuota,
    /// `invalid_api_key`: the key is wrong or revoked.
    InvalidApiKey,
    /// `model_not_found`: the model does not exist or the key has no access to it.
    ModelNotFound,
    /// `context_length_exceeded`: the prompt plus `max_tokens` exceed the model's context.
    ContextLengthExceeded,
    /// A code this crate does not know yet, kept as sent.
    Other(String),
}

impl ErrorCode {
    /// The wire value.
    pub fn as_str(&self) -> &str {
        match self {
            Self::RateLimitExceeded => "rate_limit_exceeded",
            Self::InsufficientQuota => "insufficient_quota",
            Self::InvalidApiKey => "invalid_api_key",
            Self::ModelNotFound => "model_not_found",
            Self::ContextLengthExceeded => "context_length_exceeded",
            Self::Other(other) => other,
        }
    }

    /// The code for a wire value.
    pub fn from_wire(value: &str) -> Self {
        match value {
            "rate_limit_exceeded" => Self::RateLimitExceeded,
            "insufficient_quota" => Self::InsufficientQuota,
            "invalid_api_key" => Self::InvalidApiKey,
            "model_not_found" => Self::ModelNotFound,
            "context_length_exceeded" => Self::ContextLengthExceeded,
            other => Self::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An OpenAI error body, decoded from `{"error": {…}}`.
///
/// Every field is optional and unknown fields are ignored. `code` is read from a string or a
/// number (both have been seen); `type` is kept as sent (`invalid_request_error`, `tokens`,
/// `requests`, `insufficient_quota`, `server_error`, …).
#[derive(Clone, Debug, PartialEq, Eq, Default, Deserialize)]
#[non_exhaustive]
pub struct OpenAiError {
    /// A human-readable message.
    #[serde(default)]
    pub message: Option<String>,
    /// The error's type (`invalid_request_error`, `tokens`, `insufficient_quota`, …).
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// The parameter the error is about, if any.
    #[serde(default)]
    pub param: Option<String>,
    /// A machine-readable code.
    #[serde(default, deserialize_with = "code")]
    pub code: Option<ErrorCode>,
    /// The `x-request-id` of the failed response (filled in by the client).
    #[serde(skip)]
    pub request_id: Option<String>,
}

fn code<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<ErrorCode>, D::Error> {
    Ok(
        match Option::<serde_json::Value>::deserialize(deserializer)? {
            Some(serde_json::Value::String(s)) => Some(ErrorCode::from_wire(&s)),
            Some(serde_json::Value::Number(n)) => Some(ErrorCode::Other(n.to_string())),
            _ => None,
        },
    )
}

#[derive(Deserialize)]
struct Envelope {
    error: OpenAiError,
}

impl OpenAiError {
    /// Decodes an OpenAI error body (`{"error": {…}}`); `None` when it is not one.
    pub fn from_body(body: &[u8]) -> Option<Self> {
        serde_json::from_slice::<Envelope>(body)
            .ok()
            .map(|e| e.error)
    }

    /// True for `code: insufficient_quota` (also recognised by `type`): billing, not pacing.
    pub fn is_insufficient_quota(&self) -> bool {
        self.code == Some(ErrorCode::InsufficientQuota)
            || self.kind.as_deref() == Some("insufficient_quota")
    }

    /// True for `code: rate_limit_exceeded`.
    pub fn is_rate_limit(&self) -> bool {
        self.code == Some(ErrorCode::RateLimitExceeded)
    }
}

impl fmt::Display for OpenAiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.as_deref().unwrap_or("openai_error"))?;
        if let Some(code) = &self.code {
            write!(f, " ({code})")?;
        }
        if let Some(message) = &self.message {
            write!(f, ": {message}")?;
        }
        if let Some(param) = &self.param {
            write!(f, "; param `{param}`")?;
        }
        if self.is_insufficient_quota() {
            f.write_str("; add credits or raise the spend limit, retrying will not help")?;
        }
        if let Some(id) = &self.request_id {
            write!(f, "; request id {id}")?;
        }
        Ok(())
    }
}

impl std::error::Error for OpenAiError {}

/// Tells OpenAI's billing failure apart: `insufficient_quota` (out of credits, over the spend
/// limit), which ends a call at once instead of being retried.
///
/// ```
/// use ratewise_openai::{Error, QuotaExhausted};
///
/// fn explain(error: &Error) -> String {
///     match error.quota_exhausted() {
///         Some(body) => format!("billing: {body}"),
///         None => error.to_string(),
///     }
/// }
/// ```
pub trait QuotaExhausted {
    /// The `insufficient_quota` error body, when this error is one.
    fn quota_exhausted(&self) -> Option<&OpenAiError>;
}

impl QuotaExhausted for ratewise_core::error::Error<OpenAiError> {
    fn quota_exhausted(&self) -> Option<&OpenAiError> {
        match self {
            Self::Api {
                reason: ratewise_core::verdict::Reason::QuotaExhausted,
                error: Some(body),
                ..
            } => Some(body),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const RATE_LIMIT_BODY: &str = r#"{"error":{"message":"Request too large for gpt-4o in organization org-abc on tokens per min (TPM): Limit 30000, Requested 31538. The input or output tokens must be reduced in order to run successfully.","type":"tokens","param":null,"code":"rate_limit_exceeded"}}"#;
    pub(crate) const QUOTA_BODY: &str = r#"{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#;

    #[test]
    fn the_two_429_bodies_decode_to_their_codes() {
        let rate = OpenAiError::from_body(RATE_LIMIT_BODY.as_bytes()).unwrap();
        assert!(rate.is_rate_limit());
        assert!(!rate.is_insufficient_quota());
        assert_eq!(rate.kind.as_deref(), Some("tokens"));
        assert_eq!(rate.param, None);
        let quota = OpenAiError::from_body(QUOTA_BODY.as_bytes()).unwrap();
        assert!(quota.is_insufficient_quota());
        assert_eq!(quota.code, Some(ErrorCode::InsufficientQuota));
        assert!(quota.to_string().contains("retrying will not help"));
    }

    #[test]
    fn unknown_codes_numbers_and_missing_fields_are_tolerated() {
        let e = OpenAiError::from_body(br#"{"error":{"code":"brand_new","extra":1}}"#).unwrap();
        assert_eq!(e.code, Some(ErrorCode::Other("brand_new".into())));
        assert_eq!(e.to_string(), "openai_error (brand_new)");
        let e = OpenAiError::from_body(br#"{"error":{"code":429,"message":"x"}}"#).unwrap();
        assert_eq!(e.code, Some(ErrorCode::Other("429".into())));
        let e = OpenAiError::from_body(
            br#"{"error":{"message":"m","type":null,"code":null,"param":"model"}}"#,
        )
        .unwrap();
        assert_eq!(e.to_string(), "openai_error: m; param `model`");
        assert!(OpenAiError::from_body(b"<html>502 Bad Gateway</html>").is_none());
    }

    #[test]
    fn a_request_id_is_named_in_the_message() {
        let mut e = OpenAiError::from_body(QUOTA_BODY.as_bytes()).unwrap();
        e.request_id = Some("req_123".into());
        assert!(e.to_string().ends_with("; request id req_123"));
    }
}
