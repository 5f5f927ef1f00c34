//! Twilio's typed error body, in both of the formats it sends.
//!
//! - Legacy (the 2010 API): `{"code": 20429, "message": "…", "more_info":
//!   "https://www.twilio.com/docs/errors/20429", "status": 429}` (the Serverless API spells it
//!   `moreInfo`).
//! - RFC 9457 problem details (newer APIs): `{"type": "https://www.twilio.com/docs/errors/20429",
//!   "title": "…", "status": 429, "code": 20429, "detail": "…", "instance": "…"}`.
//!
//! Fields are read leniently (a `code` or `status` sent as a string still reads) and unknown
//! fields are ignored. A body that is not a JSON object is no `TwilioError`: the pipeline keeps
//! it as text and the status alone decides (a 429 with a plain-text body is still a 429).

use std::fmt;

use serde::Deserialize;
use serde_json::Value;

/// The error codes this crate acts on.
pub mod code {
    /// Too many concurrent requests for the account (HTTP 429): never processed, retry after
    /// backing off.
    pub const TOO_MANY_REQUESTS: u32 = 20429;
    /// The `From` number's queue is full (HTTP 400): park the message, do not retry at once.
    pub const QUEUE_FULL: u32 = 21611;
    /// A Messaging Service's message failed in its queue (sent on status callbacks).
    pub const QUEUE_OVERFLOW: u32 = 30001;
}

/// A Twilio error body (either format).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct TwilioError {
    /// Twilio's error code (`20429`, `21211`, …).
    pub code: Option<u32>,
    /// The HTTP status the body repeats.
    pub status: Option<u16>,
    /// The legacy `message`.
    pub message: Option<String>,
    /// The legacy `more_info` (or `moreInfo`) link to the error's documentation.
    pub more_info: Option<String>,
    /// RFC 9457 `type`: a URI naming the problem.
    pub kind: Option<String>,
    /// RFC 9457 `title`: a short summary.
    pub title: Option<String>,
    /// RFC 9457 `detail`: this occurrence explained.
    pub detail: Option<String>,
    /// RFC 9457 `instance`: this occurrence's URI.
    pub instance: Option<String>,
}

fn number(value: Option<&Value>) -> Option<u64> {
    match value? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn string(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

impl TwilioError {
    /// Decodes a Twilio error body (either format); `None` when the body is not a JSON object
    /// with at least one of the known fields.
    pub fn from_body(body: &[u8]) -> Option<Self> {
        let Value::Object(map) = serde_json::from_slice::<Value>(body).ok()? else {
            return None;
        };
        let error = Self {
            code: number(map.get("code")).and_then(|c| u32::try_from(c).ok()),
            status: number(map.get("status")).and_then(|s| u16::try_from(s).ok()),
            message: string(map.get("message")),
            more_info: string(map.get("more_info")).or_else(|| string(map.get("moreInfo"))),
            kind: string(map.get("type")),
            title: string(map.get("title")),
            detail: string(map.get("detail")),
            instance: string(map.get("instance")),
        };
        (error != Self::default()).then_some(error)
    }

    /// The most specific human-readable text: `detail`, else `message`, else `title`.
    pub fn text(&self) -> Option<&str> {
        self.detail
            .as_deref()
            .or(self.message.as_deref())
            .or(self.title.as_deref())
    }

    /// True for 20429: too many concurrent requests (never processed).
    pub fn is_concurrency_limit(&self) -> bool {
        self.code == Some(code::TOO_MANY_REQUESTS)
    }

    /// True for 21611: the sender's queue is full.
    pub fn is_queue_full(&self) -> bool {
        self.code == Some(code::QUEUE_FULL)
    }
}

/// Deserialises either format, like [`TwilioError::from_body`]; fails on anything else.
impl<'de> Deserialize<'de> for TwilioError {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        let bytes = serde_json::to_vec(&value).map_err(serde::de::Error::custom)?;
        Self::from_body(&bytes).ok_or_else(|| serde::de::Error::custom("not a Twilio error body"))
    }
}

impl fmt::Display for TwilioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.code {
            Some(code) => write!(f, "error {code}")?,
            None => f.write_str("twilio error")?,
        }
        if let Some(text) = self.text() {
            write!(f, ": {text}")?;
        }
        if let Some(link) = self.more_info.as_deref().or(self.kind.as_deref()) {
            write!(f, " ({link})")?;
        }
        Ok(())
    }
}

impl std::error::Error for TwilioError {}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_legacy_format_decodes() {
        let error = TwilioError::from_body(
            br#"{"code":20429,"message":"Too Many Requests","more_info":"https://www.twilio.com/docs/errors/20429","status":429,"details":{}}"#,
        )
        .unwrap();
        assert!(error.is_concurrency_limit());
        assert_eq!(error.status, Some(429));
        assert_eq!(
            error.to_string(),
            "error 20429: Too Many Requests (https://www.twilio.com/docs/errors/20429)"
        );
        let queue = TwilioError::from_body(
            br#"{"code": 21611, "message": "This 'From' number has exceeded the maximum number of queued messages", "more_info": "https://www.twilio.com/docs/errors/21611", "status": 400}"#,
        )
        .unwrap();
        assert!(queue.is_queue_full());
    }

    #[test]
    fn the_rfc_9457_format_decodes() {
        let error = TwilioError::from_body(
            br#"{"type":"https://www.twilio.com/docs/errors/20429","title":"Too many requests","status":429,"code":20429,"detail":"Account exceeded allowed concurrency","instance":"/v1/Services/IS123","errors":[]}"#,
        )
        .unwrap();
        assert!(error.is_concurrency_limit());
        assert_eq!(
            error.kind.as_deref(),
            Some("https://www.twilio.com/docs/errors/20429")
        );
        assert_eq!(error.instance.as_deref(), Some("/v1/Services/IS123"));
        assert_eq!(error.text(), Some("Account exceeded allowed concurrency"));
        assert_eq!(
            error.to_string(),
            "error 20429: Account exceeded allowed concurrency (https://www.twilio.com/docs/errors/20429)"
        );
    }

    #[test]
    fn the_serverless_variant_and_stringly_fields_decode() {
        let error = TwilioError::from_body(
            br#"{"status":"429","message":"Too many requests","detail":"slow down","code":"20429","moreInfo":"https://www.twilio.com/docs/errors/20429"}"#,
        )
        .unwrap();
        assert_eq!((error.code, error.status), (Some(20429), Some(429)));
        assert_eq!(
            error.more_info.as_deref(),
            Some("https://www.twilio.com/docs/errors/20429")
        );
    }

    #[test]
    fn non_json_and_unrelated_json_are_not_twilio_errors() {
        assert_eq!(TwilioError::from_body(b"Too Many Requests"), None);
        assert_eq!(TwilioError::from_body(b"<html>502</html>"), None);
        assert_eq!(TwilioError::from_body(b"[1,2]"), None);
        assert_eq!(TwilioError::from_body(b"{}"), None);
        assert_eq!(TwilioError::from_body(br#"{"sid":"SM1"}"#), None);
        let decoded: Result<TwilioError, _> = serde_json::from_slice(br#"{"code":20003}"#);
        assert_eq!(decoded.unwrap().code, Some(20003));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = TwilioError::from_body(&body);
        }
    }
}
