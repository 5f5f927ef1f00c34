//! `Stripe-Signature` verification on an arbitrary header and payload: the header is the
//! first line of the input, the payload the rest.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ratewise_stripe::webhook::WebhookVerifier;

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
    let (header, payload) = data.split_at(split);
    let Ok(header) = std::str::from_utf8(header) else { return };
    let verifier = WebhookVerifier::new("whsec_fuzz");
    let _ = verifier.verify(payload, header);
    let _ = verifier.construct_event(payload, header);
});
