//! SendGrid's typed error body: `{"errors": [{field, message, help}], "id"?}`.

use std::fmt;

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::lenient;

/// The message of the 401 SendGrid answers once the account's email credits are spent
/// (sendgrid/sendgrid-nodejs#1032). Matched case-insensitively, anywhere in an error message.
pub const CREDITS_EXCEEDED: &str = "maximum credits exceeded";

/// One entry of `errors[]`.
#[derive(Clone, Debug, PartialEq, Eq, Default, Deserialize)]
#[non_exhaustive]
pub struct ErrorItem {
    /// The request field the error is about (`personalizations.0.to`), when there is one.
    /// SendGrid writes "no field" as `null` and, in its own examples, as the string `"null"`:
    /// both read as `None`.
    #[serde(default, deserialize_with = "field")]
    pub field: Option<String>,
    /// What went wrong.
    #[serde(default)]
    pub message: String,
    /// Help: a link or an object pointing to the documentation, as sent.
    #[serde(default)]
    pub help: Option<Value>,
}

fn field<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    let value = Option::<Value>::deserialize(deserializer)?;
    Ok(match value {
        Some(Value::String(s)) if !s.is_empty() && s != "null" => Some(s),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    })
}

/// A SendGrid error body.
///
/// Decoded leniently ([`SendGridError::from_body`]): unknown fields are ignored, a missing
/// `errors` is empty, and trailing commas (as in SendGrid's documented 429 body) are tolerated.
#[derive(Clone, Debug, PartialEq, Eq, Default, Deserialize)]
#[non_exhaustive]
pub struct SendGridError {
    /// Every error the server listed.
    #[serde(default)]
    pub errors: Vec<ErrorItem>,
    /// An error id, when SendGrid sends one.
    #[serde(default)]
    pub id: Option<String>,
}

impl SendGridError {
    /// Decodes an error body; `None` when it is not one (the caller keeps the raw text).
    pub fn from_body(body: &[u8]) -> Option<Self> {
        let error: Self = lenient::decode(body)?;
        (!error.errors.is_empty() || error.id.is_some()).then_some(error)
    }

    /// True when an error says the account's credits are spent ("Maximum credits exceeded").
    pub fn is_credits_exceeded(&self) -> bool {
        self.errors
            .iter()
            .any(|e| e.message.to_ascii_lowercase().contains(CREDITS_EXCEEDED))
    }

    /// The first error's message, if any.
    pub fn message(&self) -> Option<&str> {
        self.errors.first().map(|e| e.message.as_str())
    }
}

impl fmt::Display for SendGridError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.errors.is_empty() {
            f.write_str("sendgrid_error")?;
        }
        for (i, error) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            f.write_str(if error.message.is_empty() {
                "error"
            } else {
                &error.message
            })?;
            if let Some(field) = &error.field {
                write!(f, " (field `{field}`)")?;
            }
        }
        if let Some(id) = &self.id {
            write!(f, " [id {id}]")?;
        }
        Ok(())
    }
}

impl std::error::Error for SendGridError {}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 429 body as SendGrid's rate-limit docs print it, trailing comma included.
    pub(crate) const DOCUMENTED_429: &[u8] = b"{\n  \"errors\": [\n    {\n      \"field\": null,\n      \"message\": \"too many requests\"\n    },\n  ]\n}";

    #[test]
    fn the_documented_429_decodes_despite_its_trailing_comma() {
        let error = SendGridError::from_body(DOCUMENTED_429).unwrap();
        assert_eq!(error.errors.len(), 1);
        assert_eq!(error.message(), Some("too many requests"));
        assert_eq!(error.errors[0].field, None);
        assert_eq!(error.to_string(), "too many requests");
    }

    #[test]
    fn fields_help_and_ids_decode_and_the_string_null_is_no_field() {
        let error = SendGridError::from_body(
            br#"{"errors":[{"field":"personalizations.0.to","message":"The to array is required for all personalization objects.","help":"http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html#message.personalizations.to"},{"field":"null","message":"access forbidden","help":{"url":"x"}}],"id":"abc","extra":1}"#,
        )
        .unwrap();
        assert_eq!(
            error.errors[0].field.as_deref(),
            Some("personalizations.0.to")
        );
        assert!(error.errors[0].help.is_some());
        assert_eq!(error.errors[1].field, None);
        assert_eq!(error.id.as_deref(), Some("abc"));
        assert_eq!(
            error.to_string(),
            "The to array is required for all personalization objects. (field `personalizations.0.to`); access forbidden [id abc]"
        );
    }

    #[test]
    fn credits_exceeded_is_recognised_in_any_case() {
        let error = SendGridError::from_body(
            br#"{"errors":[{"field":null,"message":"Maximum credits exceeded","help":null}]}"#,
        )
        .unwrap();
        assert!(error.is_credits_exceeded());
        let auth = SendGridError::from_body(
            br#"{"errors":[{"field":null,"message":"The provided authorization grant is invalid, expired, or revoked"}]}"#,
        )
        .unwrap();
        assert!(!auth.is_credits_exceeded());
    }

    #[test]
    fn bodies_that_are_not_error_bodies_are_none() {
        assert!(SendGridError::from_body(b"<html>502</html>").is_none());
        assert!(SendGridError::from_body(b"{}").is_none());
        assert!(SendGridError::from_body(b"{\"errors\": []}").is_none());
        assert!(SendGridError::from_body(b"").is_none());
        assert!(SendGridError::from_body(b"[1,2]").is_none());
    }
}
