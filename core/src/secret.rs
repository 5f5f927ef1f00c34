//! [`Secret`]: credentials that never reach logs, `Debug`, errors or traces.
//!
//! API keys, auth tokens and webhook secrets are held in a [`Secret`]: its `Debug` and
//! `Display` print a redaction that keeps only the key's public prefix (`sk_live_…`), so a
//! struct holding one can derive `Debug` safely, and the only way to read the value is the
//! explicit [`Secret::expose`]. Header values made from it are marked sensitive, which `http`
//! prints as `Sensitive` in `Debug`.

use std::borrow::Cow;
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

/// `text` with every occurrence of a secret in `secrets` replaced by its redaction
/// (`sk_live_***`): for bodies a server may echo a credential back in (an error message quoting
/// the key it refused). Borrows `text` unchanged when no secret occurs in it; empty secrets are
/// ignored.
pub fn scrub<'a>(text: &'a [u8], secrets: &[Secret]) -> Cow<'a, [u8]> {
    let mut out = Cow::Borrowed(text);
    for secret in secrets {
        let needle = secret.expose().as_bytes();
        if needle.is_empty() || find(&out, needle).is_none() {
            continue;
        }
        let redaction = secret.to_string();
        let mut scrubbed = Vec::with_capacity(out.len());
        let mut rest: &[u8] = &out;
        while let Some(at) = find(rest, needle) {
            scrubbed.extend_from_slice(rest.get(..at).unwrap_or_default());
            scrubbed.extend_from_slice(redaction.as_bytes());
            rest = rest.get(at + needle.len()..).unwrap_or_default();
        }
        scrubbed.extend_from_slice(rest);
        out = Cow::Owned(scrubbed);
    }
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, _) = needle.split_first()?;
    let mut from = 0;
    while let Some(offset) = haystack.get(from..)?.iter().position(|&b| b == first) {
        let at = from + offset;
        if haystack.get(at..at + needle.len()) == Some(needle) {
            return Some(at);
        }
        from = at + 1;
    }
    None
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

    #[test]
    fn scrub_replaces_every_occurrence_and_borrows_when_clean() {
        let key = Secret::new("sk_live_abcdef123456");
        let body = br#"{"error":{"message":"Invalid API Key provided: sk_live_abcdef123456 (sk_live_abcdef123456)"}}"#;
        let scrubbed = scrub(body, &[key.clone(), Secret::new("")]);
        let text = String::from_utf8(scrubbed.into_owned()).unwrap();
        assert!(!text.contains("abcdef123456"), "{text}");
        assert_eq!(text.matches("sk_live_***").count(), 2);
        assert!(matches!(scrub(b"nothing here", &[key]), Cow::Borrowed(_)));
        assert!(matches!(
            scrub(b"sk_live_abc", &[Secret::new("sk_live_abcdef123456")]),
            Cow::Borrowed(_)
        ));
    }

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
