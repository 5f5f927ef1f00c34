//! Server-sent events as OpenAI streams them: `data: {json}` events, ended by `data: [DONE]`.
//!
//! [`Parser`] is incremental: fed a body in chunks cut anywhere (inside a line, between the
//! `\r` and `\n` of a line end, inside a UTF-8 character) it yields exactly the events it
//! yields when fed the whole body at once, each as soon as the blank line ending it arrives.
//! [`events`] runs it over a body already in memory. Per the SSE format: events are separated
//! by a blank line; the `data:` lines of one event are joined with `\n`; a single space after
//! the colon is dropped; comment lines (`:`), `event:`, `id:`, `retry:` and unknown fields are
//! skipped; `\r\n`, `\n` and `\r` all end a line. A `data:` line that is not valid UTF-8 is
//! skipped; nothing here panics on any input. Unlike a browser, a body that ends without the
//! blank line after its last event still yields that event (a server that closes right after
//! its last `data:` line).

use std::collections::VecDeque;
use std::fmt;

use http::HeaderMap;

/// The `data` that ends an OpenAI stream.
const DONE: &str = "[DONE]";

/// An incremental server-sent-events parser (see the [module docs](self)).
///
/// ```
/// use ratewise_openai::sse::Parser;
///
/// let mut parser = Parser::new();
/// parser.feed(b"data: {\"a\":");
/// assert_eq!(parser.next_event(), None);
/// parser.feed(b"1}\r");
/// parser.feed(b"\n\r\ndata: [DONE]\n\n");
/// assert_eq!(parser.next_event().as_deref(), Some("{\"a\":1}"));
/// assert_eq!(parser.next_event(), None);
/// assert!(parser.is_done());
/// ```
#[derive(Default)]
pub struct Parser {
    /// The bytes of the line not yet ended.
    line: Vec<u8>,
    /// The data of the event not yet dispatched (`Some` once it has a `data` field).
    data: Option<String>,
    /// The last byte fed was a `\r`: a `\n` first in the next chunk belongs to that line end.
    after_cr: bool,
    /// `[DONE]` was seen: nothing after it is read.
    done: bool,
    /// Events dispatched and not yet taken.
    ready: VecDeque<String>,
}

impl Parser {
    /// A parser at the start of a body.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads the next chunk of the body.
    pub fn feed(&mut self, mut bytes: &[u8]) {
        if self.done {
            return;
        }
        if self.after_cr && !bytes.is_empty() {
            self.after_cr = false;
            bytes = bytes.strip_prefix(b"\n").unwrap_or(bytes);
        }
        while let Some(end) = bytes.iter().position(|b| matches!(b, b'\n' | b'\r')) {
            let (line, rest) = bytes.split_at(end);
            let (terminator, mut rest) = rest.split_first().unwrap_or((&b'\n', rest));
            if *terminator == b'\r' {
                match rest.split_first() {
                    Some((b'\n', after)) => rest = after,
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
            bytes = rest;
            if self.line.is_empty() {
                self.process(line);
            } else {
                let mut whole = std::mem::take(&mut self.line);
                whole.extend_from_slice(line);
                self.process(&whole);
                whole.clear();
                self.line = whole;
            }
            if self.done {
                return;
            }
        }
        self.line.extend_from_slice(bytes);
    }

    /// Ends the body: a last line without its line end, and a last event without its blank
    /// line, are read as if they had them.
    pub fn finish(&mut self) {
        self.after_cr = false;
        if self.done {
            return;
        }
        let line = std::mem::take(&mut self.line);
        if !line.is_empty() {
            self.process(&line);
        }
        self.dispatch();
    }

    /// The next complete event's data, in order (never `[DONE]`).
    pub fn next_event(&mut self) -> Option<String> {
        self.ready.pop_front()
    }

    /// True once `data: [DONE]` has been read: no event after it will come.
    pub fn is_done(&self) -> bool {
        self.done
    }

    fn process(&mut self, line: &[u8]) {
        if line.is_empty() {
            return self.dispatch();
        }
        let (field, value) = match line.iter().position(|b| *b == b':') {
            Some(colon) => {
                let (field, value) = line.split_at(colon);
                let value = value.get(1..).unwrap_or_default();
                (field, value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        // Comments (an empty field name), event:, id:, retry: and unknown fields.
        if field != b"data" {
            return;
        }
        let Ok(value) = std::str::from_utf8(value) else {
            return;
        };
        match &mut self.data {
            Some(data) => {
                data.push('\n');
                data.push_str(value);
            }
            None => self.data = Some(value.to_owned()),
        }
    }

    fn dispatch(&mut self) {
        let Some(data) = self.data.take() else {
            return;
        };
        if data == DONE {
            self.done = true;
            self.line = Vec::new();
        } else {
            self.ready.push_back(data);
        }
    }
}

impl fmt::Debug for Parser {
    /// Lengths only: the events carry the model's output.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Parser")
            .field("partial_line", &self.line.len())
            .field("ready", &self.ready.len())
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

/// The `data` of every event in `body`, in order, up to (not including) `[DONE]`.
pub fn events(body: &[u8]) -> impl Iterator<Item = String> + use<> {
    let mut parser = Parser::new();
    parser.feed(body);
    parser.finish();
    std::iter::from_fn(move || parser.next_event())
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
mod tests;
