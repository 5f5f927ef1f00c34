//! Every server-hint parser on arbitrary bytes: `Retry-After` (seconds and the three date
//! forms), `retry-after-ms`, epoch resets, and `Hint::from_headers` on a whole header set.
#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use libfuzzer_sys::fuzz_target;
use ratewise_core::hint::{
    Hint, parse_epoch_reset, parse_epoch_seconds, parse_http_date, parse_retry_after,
    parse_retry_after_ms,
};

fuzz_target!(|data: &[u8]| {
    let now = UNIX_EPOCH + Duration::from_secs(1_790_000_000);
    let _ = parse_retry_after(data, now);
    let _ = parse_retry_after_ms(data);
    let _ = parse_http_date(data, now);
    let _ = parse_epoch_seconds(data);
    let _ = parse_epoch_reset(data, now);
    let response = ratewise_fuzz::response(data);
    let _ = Hint::from_headers(response.headers(), now);
});
