//! Server-sent-event framing (OpenAI streaming) on arbitrary bytes: never panics, and the
//! incremental parser fed the bytes in pieces yields the events it yields for them whole.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ratewise_openai::sse::{Parser, events};

fuzz_target!(|data: &[u8]| {
    let whole: Vec<String> = events(data).collect();
    // The first byte picks the piece size (1 to 16 bytes) for the rest.
    let Some((size, rest)) = data.split_first() else {
        return;
    };
    let mut parser = Parser::new();
    let mut pieces = Vec::new();
    for piece in rest.chunks(usize::from(size % 16) + 1) {
        parser.feed(piece);
        pieces.extend(std::iter::from_fn(|| parser.next_event()));
    }
    parser.finish();
    pieces.extend(std::iter::from_fn(|| parser.next_event()));
    assert_eq!(pieces, events(rest).collect::<Vec<_>>());
    let _ = whole.len();
});
