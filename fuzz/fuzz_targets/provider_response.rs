//! Every provider's reading of an arbitrary response (status, its header set, its error body,
//! its request id): Stripe, OpenAI, GitHub, Twilio, SendGrid.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ratewise_core::provider::Provider;

fn read<P: Provider>(provider: &P, response: &http::Response<bytes::Bytes>) {
    let _ = provider.inspect(response, ratewise_fuzz::timestamp());
    let _ = provider.decode_error(response.status(), response.body());
    let _ = provider.request_id(response.headers());
}

fuzz_target!(|data: &[u8]| {
    let response = ratewise_fuzz::response(data);
    read(&ratewise_stripe::StripeProvider::for_key("sk_test_fuzz"), &response);
    read(&ratewise_openai::OpenAiProvider::default(), &response);
    read(&ratewise_github::GitHubProvider::default(), &response);
    read(&ratewise_twilio::TwilioProvider::default(), &response);
    read(&ratewise_sendgrid::SendGridProvider::default(), &response);
});
