//! [`Secret`]: credentials that never reach logs, `Debug`, errors or traces.
//!
//! API keys, auth tokens and webhook secrets are held in a [`Secret`]: its `Debug` and
//! `Display` print a redaction that keeps only the key's public prefix (`sk_live_…`), so a
//! struct holding one can derive `Debug` safely, and the only way to read the value is the
//! explicit [`Secret::expose`]. Header values made from it are marked sensitive, which `http`
//! prints as `Sensitive` in `Debug`.

use std::fmt;
use std::sync::Arc;

use http::HeaderValue;

/// A credential: readable only through [`Secret::expose`], redacted everywhere else.
///
/// Cheap to clone (an `Arc` inside). Comparison is deliberately not offered: compare
/// signatures with a constant-time function instead.
#[derive(Clone)]
pub struct Secret(Arc<str>);

impl Secret {
    /// Wraps a credential.
    pub fn new(value: impl Into<String>) -> Self {
        Self(Arc::from(value.into()))
    }

    /// The credential itself. Call it only where the value must leave the process (an
    /// `Authorization` header, an HMAC key).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when the credential is empty (a misconfigured environment variable).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The public prefix worth showing: the part before the last `_` of a prefixed key
    /// (`sk_live_`, `rk_test_`, `ghp_`), at most 8 characters, and nothing for keys without one.
    fn public_prefix(&self) -> &str {
        match self.0.rfind('_') {
            Some(end) if end < 8 => self.0.get(..=end).unwrap_or(""),
            _ => "",
        }
    }

    /// A header value carrying `prefix` followed by the credential (`"Bearer "`), marked
    /// sensitive; `None` if the credential has characters a header cannot carry.
    pub fn header_value(&self, prefix: &str) -> Option<HeaderValue> {
        let mut value = HeaderValue::from_str(&format!("{prefix}{}", self.expose())).ok()?;
        value.set_sensitive(true);
        Some(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(\"{}***\")", self.public_prefix())
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}***", self.public_prefix())
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self::new(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "sk_live_51H8abcdefghijklmnopqrstuvwxyz";

    #[test]
    fn debug_and_display_never_show_the_value() {
        let secret = Secret::new(KEY);
        for text in [
            format!("{secret:?}"),
            format!("{secret}"),
            format!("{secret:#?}"),
        ] {
            assert!(!text.contains("51H8"), "{text}");
            assert!(!text.contains("xyz"), "{text}");
        }
        assert_eq!(format!("{secret}"), "sk_live_***");
        assert_eq!(format!("{secret:?}"), "Secret(\"sk_live_***\")");
    }

    #[test]
    fn keys_without_a_short_prefix_show_nothing_of_themselves() {
        assert_eq!(Secret::new("abcdef0123456789").to_string(), "***");
        assert_eq!(Secret::new("SG.very_long_sendgrid_key").to_string(), "***");
        assert_eq!(Secret::new("").to_string(), "***");
    }

    #[test]
    fn a_struct_deriving_debug_stays_safe() {
        #[derive(Debug)]
        #[allow(dead_code)]
        struct Config {
            api_key: Secret,
            region: &'static str,
        }
        let text = format!(
            "{:?}",
            Config {
                api_key: Secret::new(KEY),
                region: "us"
            }
        );
        assert!(!text.contains("51H8"), "{text}");
        assert!(text.contains("region"));
    }

    #[test]
    fn header_values_are_sensitive_and_debug_prints_no_value() {
        let value = Secret::new(KEY).header_value("Bearer ").unwrap();
        assert!(value.is_sensitive());
        assert_eq!(value.to_str().unwrap(), format!("Bearer {KEY}"));
        assert!(!format!("{value:?}").contains("51H8"));
        assert!(Secret::new("bad\nkey").header_value("Bearer ").is_none());
    }
}
