//! GitHub's typed error body: `{"message", "documentation_url", "errors": [...], "status"}`.

use std::fmt;

use serde::{Deserialize, Deserializer};

/// A GitHub error body.
///
/// Every field is optional and unknown fields are ignored. `documentation_url` is kept for the
/// reader but never matched on: it has changed over time (ossf/criticality_score#813).
#[derive(Clone, Debug, PartialEq, Eq, Default, Deserialize)]
#[non_exhaustive]
pub struct GitHubError {
    /// What went wrong (`Not Found`, `API rate limit exceeded for …`, `Validation Failed`).
    #[serde(default)]
    pub message: String,
    /// A link to the documentation of the error.
    #[serde(default)]
    pub documentation_url: Option<String>,
    /// Field errors of a 422 `Validation Failed`.
    #[serde(default)]
    pub errors: Vec<FieldError>,
    /// The status as a string (`"404"`), sent by newer endpoints.
    #[serde(default, deserialize_with = "lenient_status")]
    pub status: Option<String>,
}

/// One entry of `errors[]`: an object (`resource`, `field`, `code`, `message`) or, on some
/// endpoints, a bare string (kept as `message`).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct FieldError {
    /// The resource (`Issue`).
    pub resource: Option<String>,
    /// The field (`title`).
    pub field: Option<String>,
    /// The code (`missing_field`, `invalid`, `already_exists`, `custom`, …).
    pub code: Option<String>,
    /// A message, for `custom` codes and bare-string errors.
    pub message: Option<String>,
}

impl<'de> Deserialize<'de> for FieldError {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Object {
            #[serde(default)]
            resource: Option<String>,
            #[serde(default)]
            field: Option<String>,
            #[serde(default)]
            code: Option<String>,
            #[serde(default)]
            message: Option<String>,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Object(Object),
            Text(String),
        }
        Ok(match Raw::deserialize(deserializer)? {
            Raw::Object(o) => Self {
                resource: o.resource,
                field: o.field,
                code: o.code,
                message: o.message,
            },
            Raw::Text(message) => Self {
                message: Some(message),
                ..Self::default()
            },
        })
    }
}

fn lenient_status<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Ok(match serde_json::Value::deserialize(deserializer)? {
        serde_json::Value::String(s) => Some(s),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

impl GitHubError {
    /// Decodes a GitHub error body; `None` when it is not one (an HTML 502 page).
    pub fn from_body(body: &[u8]) -> Option<Self> {
        serde_json::from_slice(body).ok()
    }

    /// True when the message names a secondary rate limit (`You have exceeded a secondary rate
    /// limit…`), or the older abuse-detection wording; case-insensitive, as
    /// `@octokit/plugin-throttling` matches `/\bsecondary rate\b/i`.
    pub fn is_secondary_rate_limit(&self) -> bool {
        is_secondary_message(&self.message)
    }
}

/// True when `message` names a secondary rate limit (case-insensitive `secondary rate`, or the
/// pre-2022 `abuse detection` wording).
pub fn is_secondary_message(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    lower.contains("secondary rate") || lower.contains("abuse detection")
}

impl fmt::Display for GitHubError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.message.is_empty() {
            f.write_str("github error")?;
        } else {
            f.write_str(&self.message)?;
        }
        for error in &self.errors {
            f.write_str("; ")?;
            let parts = [&error.resource, &error.field, &error.code, &error.message];
            let text: Vec<&str> = parts.iter().filter_map(|p| p.as_deref()).collect();
            f.write_str(&text.join(" "))?;
        }
        Ok(())
    }
}

impl std::error::Error for GitHubError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_bodies_decode() {
        let primary = GitHubError::from_body(br#"{"message":"API rate limit exceeded for installation ID xxxxxxx.","documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"}"#).unwrap();
        assert!(!primary.is_secondary_rate_limit());
        assert!(primary.documentation_url.is_some());
        let secondary = GitHubError::from_body(br#"{"message":"You have exceeded a secondary rate limit. Please wait a few minutes before you try again.","documentation_url":"https://docs.github.com/rest/overview/resources-in-the-rest-api#secondary-rate-limits"}"#).unwrap();
        assert!(secondary.is_secondary_rate_limit());
        assert!(is_secondary_message(
            "YOU HAVE EXCEEDED A SECONDARY RATE LIMIT"
        ));
        assert!(is_secondary_message(
            "You have triggered an abuse detection mechanism. Please wait a few minutes before you try again."
        ));
        assert!(!is_secondary_message(
            "Resource not accessible by integration"
        ));
    }

    #[test]
    fn validation_errors_keep_objects_and_strings() {
        let error = GitHubError::from_body(br#"{"message":"Validation Failed","errors":[{"resource":"Issue","code":"missing_field","field":"title"},"title is too long"],"documentation_url":"https://docs.github.com/rest/issues/issues#create-an-issue","status":"422"}"#).unwrap();
        assert_eq!(error.errors.len(), 2);
        assert_eq!(error.errors[0].code.as_deref(), Some("missing_field"));
        assert_eq!(
            error.errors[1].message.as_deref(),
            Some("title is too long")
        );
        assert_eq!(error.status.as_deref(), Some("422"));
        assert_eq!(
            error.to_string(),
            "Validation Failed; Issue title missing_field; title is too long"
        );
        let numeric = GitHubError::from_body(br#"{"message":"Not Found","status":404}"#).unwrap();
        assert_eq!(numeric.status.as_deref(), Some("404"));
        assert!(GitHubError::from_body(b"<html>502</html>").is_none());
    }
}
