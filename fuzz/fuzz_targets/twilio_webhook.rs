//! `X-Twilio-Signature` validation on an arbitrary signature, URL and form body: the first
//! line is the signature, the second the URL, the rest the POST body.
#![no_main]

use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use ratewise_twilio::webhook::RequestValidator;

fuzz_target!(|data: &[u8]| {
    let mut lines = data.splitn(3, |&b| b == b'\n');
    let (Some(signature), Some(url)) = (lines.next(), lines.next()) else { return };
    let body = lines.next().unwrap_or_default();
    let (Ok(signature), Ok(url)) = (std::str::from_utf8(signature), std::str::from_utf8(url)) else {
        return;
    };
    let validator = RequestValidator::new("fuzz_auth_token");
    let _ = validator.validate(url, [("Body", "hi"), ("From", "+15005550006")], signature);
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(signature) {
        headers.insert("x-twilio-signature", value);
    }
    let _ = validator.validate_form(url, &headers, body);
    let _ = ratewise_twilio::segments::count(&String::from_utf8_lossy(body));
});
