//! SendGrid's tolerant error-body decoder (trailing commas, malformed JSON) on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ratewise_sendgrid::SendGridError;

fuzz_target!(|data: &[u8]| {
    let _ = ratewise_sendgrid::lenient::strip_trailing_commas(data);
    let _ = ratewise_sendgrid::lenient::decode::<SendGridError>(data);
});
