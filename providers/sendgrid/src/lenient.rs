//! Lenient JSON: SendGrid's error bodies, as documented, are not always valid JSON.
//!
//! The rate-limit page of SendGrid's v3 docs shows the 429 body with a trailing comma after the
//! last error object (`[{…},]`). A strict decoder rejects it and the caller loses the message.
//! [`decode`] first tries the bytes as they are, then once more with trailing commas removed
//! (a comma followed only by whitespace and then `]` or `}`, outside strings). Anything still
//! unreadable is `None`, and the caller keeps the raw text. Never panics, on any bytes.

use std::borrow::Cow;

use serde::de::DeserializeOwned;

/// Decodes `body` as `T`, tolerating trailing commas; `None` when it still does not decode.
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Option<T> {
    if let Ok(value) = serde_json::from_slice(body) {
        return Some(value);
    }
    match strip_trailing_commas(body) {
        Cow::Owned(fixed) => serde_json::from_slice(&fixed).ok(),
        Cow::Borrowed(_) => None,
    }
}

/// `body` without the commas that directly precede (whitespace aside) a `]` or `}`, outside
/// strings; borrowed when there was none.
pub fn strip_trailing_commas(body: &[u8]) -> Cow<'_, [u8]> {
    let mut dropped = Vec::new();
    let mut in_string = false;
    let mut escaped = false;
    for (i, &byte) in body.iter().enumerate() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b',' => {
                let next = body
                    .get(i.saturating_add(1)..)
                    .unwrap_or_default()
                    .iter()
                    .find(|b| !b.is_ascii_whitespace());
                if matches!(next, Some(b']' | b'}')) {
                    dropped.push(i);
                }
            }
            _ => {}
        }
    }
    if dropped.is_empty() {
        return Cow::Borrowed(body);
    }
    let mut out = Vec::with_capacity(body.len());
    let mut skip = dropped.into_iter().peekable();
    for (i, &byte) in body.iter().enumerate() {
        if skip.peek() == Some(&i) {
            skip.next();
            continue;
        }
        out.push(byte);
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{Value, json};

    #[test]
    fn trailing_commas_in_arrays_and_objects_are_dropped() {
        let body = b"{\n  \"errors\": [\n    {\n      \"field\": null,\n      \"message\": \"too many requests\"\n    },\n  ]\n}";
        let value: Value = decode(body).unwrap();
        assert_eq!(
            value,
            json!({"errors": [{"field": null, "message": "too many requests"}]})
        );
        let value: Value = decode(br#"{"a": 1, "b": [1, 2,],}"#).unwrap();
        assert_eq!(value, json!({"a": 1, "b": [1, 2]}));
    }

    #[test]
    fn commas_inside_strings_are_kept() {
        let value: Value = decode(br#"{"m": "a,]", "n": "q\",}",}"#).unwrap();
        assert_eq!(value, json!({"m": "a,]", "n": "q\",}"}));
    }

    #[test]
    fn valid_json_is_untouched_and_garbage_is_none() {
        assert!(matches!(
            strip_trailing_commas(br#"{"a":[1,2]}"#),
            Cow::Borrowed(_)
        ));
        assert!(decode::<Value>(b"<html>502 Bad Gateway</html>").is_none());
        assert!(decode::<Value>(b"").is_none());
        assert!(decode::<Value>(b"{\"a\":,}").is_none());
    }

    proptest! {
        #[test]
        fn never_panics_on_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode::<Value>(&bytes);
            let stripped = strip_trailing_commas(&bytes);
            prop_assert!(stripped.len() <= bytes.len());
        }

        #[test]
        fn valid_json_decodes_the_same_with_or_without_leniency(n in any::<i64>(), s in ".{0,20}") {
            let value = json!({"n": n, "s": s, "list": [n, s]});
            let text = serde_json::to_vec(&value).unwrap();
            prop_assert_eq!(decode::<Value>(&text), Some(value));
        }
    }
}
