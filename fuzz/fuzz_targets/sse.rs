//! Server-sent-event framing (OpenAI streaming) on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for event in ratewise_openai::sse::events(data) {
        let _ = event.len();
    }
});
