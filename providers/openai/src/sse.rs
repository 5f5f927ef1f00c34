//! Server-sent events as OpenAI streams them: `data: {json}` events, ended by `data: [DONE]`.
//!
//! A pure parser of a body's bytes (the core transport reads a body in full, see
//! [`crate::chat::ChatStream`]). Per the SSE format: events are separated by a blank line;
//! `data:` lines of one event are joined with `\n`; a single space after the colon is dropped;
//! comment lines (`:`), `event:`, `id:` and `retry:` fields are skipped; `\r\n` and `\n` line
//! ends both work. Invalid UTF-8 in a line skips that line, never panics.

use http::HeaderMap;

/// The `data` of every event in `body`, in order, up to (not including) `[DONE]`.
pub fn events(body: &[u8]) -> impl Iterator<Item = &str> {
    let mut lines = body
        .split(|b| *b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line));
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        let mut data: Option<&str> = None;
        loop {
            let Some(line) = lines.next() else {
                done = true;
                return data.filter(|d| *d != "[DONE]");
            };
            if line.is_empty() {
                match data {
                    Some("[DONE]") => {
                        done = true;
                        return None;
                    }
                    Some(d) => return Some(d),
                    None => continue,
                }
            }
            let Some(value) = line.strip_prefix(b"data:") else {
                continue; // comments, event:, id:, retry:
            };
            let value = value.strip_prefix(b" ").unwrap_or(value);
            let Ok(value) = std::str::from_utf8(value) else {
                continue;
            };
            // Multi-line data is rare in OpenAI's streams; keep the last line, which for the
            // JSON OpenAI sends is the whole event.
            data = Some(value);
        }
    })
}

/// True when a response is an event stream (`content-type: text/event-stream`, or a body that
/// starts with `data:`).
pub fn is_event_stream(headers: &HeaderMap, body: &[u8]) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"))
        || body.trim_ascii_start().starts_with(b"data:")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn events_are_read_until_done() {
        let body = b"data: {\"a\":1}\n\n: keep-alive\n\nevent: message\r\ndata:{\"a\":2}\r\n\r\ndata: [DONE]\n\ndata: {\"late\":1}\n\n";
        let got: Vec<_> = events(body).collect();
        assert_eq!(got, vec!["{\"a\":1}", "{\"a\":2}"]);
    }

    #[test]
    fn a_stream_cut_short_keeps_its_last_complete_event() {
        let got: Vec<_> = events(b"data: {\"a\":1}\n\ndata: {\"a\":2}").collect();
        assert_eq!(got, vec!["{\"a\":1}", "{\"a\":2}"]);
        assert_eq!(events(b"").count(), 0);
        assert_eq!(events(b"\n\n\n").count(), 0);
    }

    #[test]
    fn event_streams_are_recognised_by_type_or_by_body() {
        let mut headers = HeaderMap::new();
        assert!(is_event_stream(&headers, b"  data: x"));
        assert!(!is_event_stream(&headers, b"{\"id\":1}"));
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/event-stream; charset=utf-8"),
        );
        assert!(is_event_stream(&headers, b""));
    }

    proptest! {
        #[test]
        fn the_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = events(&bytes).count();
        }
    }
}
