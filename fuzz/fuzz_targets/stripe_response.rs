//! Stripe's reading of an arbitrary response: status, `Stripe-Should-Retry`,
//! `Stripe-Rate-Limited-Reason`, `Retry-After`, the error body and the request id.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ratewise_core::provider::Provider;
use ratewise_stripe::StripeProvider;

fuzz_target!(|data: &[u8]| {
    let provider = StripeProvider::for_key("sk_test_fuzz");
    let response = ratewise_fuzz::response(data);
    let _ = provider.inspect(&response, ratewise_fuzz::timestamp());
    let _ = provider.decode_error(response.status(), response.body());
    let _ = provider.request_id(response.headers());
});
