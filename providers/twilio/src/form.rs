//! Twilio's form encoding: flat `Name=value` pairs, a repeated name for a list (`MediaUrl`).
//!
//! Requests are `application/x-www-form-urlencoded`; webhook requests from Twilio are too, and
//! the signature is computed over their decoded parameters ([`decode`]).

/// Encodes `pairs` in order (`To=%2B1415…&Body=Hi+there`).
pub fn encode<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut out = String::new();
    for (name, value) in pairs {
        if !out.is_empty() {
            out.push('&');
        }
        push_encoded(&mut out, name, "+");
        out.push('=');
        push_encoded(&mut out, value, "+");
    }
    out
}

/// One percent-encoded path segment (a space is `%20`).
pub fn path_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    push_encoded(&mut out, text, "%20");
    out
}

fn push_encoded(out: &mut String, text: &str, space: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &byte in text.as_bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(char::from(byte));
            }
            b' ' => out.push_str(space),
            _ => {
                out.push('%');
                out.push(char::from(HEX[usize::from(byte >> 4)]));
                out.push(char::from(HEX[usize::from(byte & 0xf)]));
            }
        }
    }
}

/// Decodes a form body into its pairs, in order (`+` is a space, `%XX` a byte; malformed
/// escapes are kept as written; invalid UTF-8 is replaced).
pub fn decode(body: &[u8]) -> Vec<(String, String)> {
    body.split(|&b| b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let mut parts = pair.splitn(2, |&b| b == b'=');
            let name = parts.next().unwrap_or_default();
            let value = parts.next().unwrap_or_default();
            (unescape(name), unescape(value))
        })
        .collect()
}

fn unescape(text: &[u8]) -> String {
    fn hex(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    }
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while let Some(&b) = text.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let high = text.get(i + 1).copied().and_then(hex);
                let low = text.get(i + 2).copied().and_then(hex);
                match (high, low) {
                    (Some(h), Some(l)) => {
                        out.push(h << 4 | l);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn pairs_encode_in_order_and_decode_back() {
        let body = encode([
            ("To", "+14155552671"),
            ("Body", "Hi there & €5!"),
            ("MediaUrl", "https://a.example/1.png"),
            ("MediaUrl", "https://a.example/2.png"),
        ]);
        assert_eq!(
            body,
            "To=%2B14155552671&Body=Hi+there+%26+%E2%82%AC5%21&MediaUrl=https%3A%2F%2Fa.example%2F1.png&MediaUrl=https%3A%2F%2Fa.example%2F2.png"
        );
        let pairs = decode(body.as_bytes());
        assert_eq!(pairs.len(), 4);
        assert_eq!(pairs[1], ("Body".to_owned(), "Hi there & €5!".to_owned()));
    }

    #[test]
    fn path_segments_escape_spaces_and_slashes() {
        assert_eq!(path_segment("AC 1/x"), "AC%201%2Fx");
    }

    #[test]
    fn malformed_escapes_are_kept() {
        assert_eq!(
            decode(b"a=%zz&b&=c"),
            vec![
                ("a".to_owned(), "%zz".to_owned()),
                ("b".to_owned(), String::new()),
                (String::new(), "c".to_owned()),
            ]
        );
    }

    proptest! {
        #[test]
        fn any_text_round_trips(name in ".{0,20}", value in ".{0,60}") {
            let body = encode([(name.as_str(), value.as_str())]);
            prop_assert_eq!(decode(body.as_bytes()), vec![(name, value)]);
        }

        #[test]
        fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode(&body);
        }
    }
}
