//! OpenAI's reset durations (`6m0s`, `1.1µs`, `PT1M30S`) on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = ratewise_openai::headers::parse_reset(data);
});
