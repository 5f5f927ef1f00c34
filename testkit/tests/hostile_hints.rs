//! Hostile server hints through the whole pipeline: absurd `Retry-After` values, dates in year
//! 9999, negative and enormous resets, limits of zero, `remaining > limit`, a header repeated a
//! thousand times, a 10 MB error body. None may panic, overflow, hang past the clamp, or wedge
//! the client's pacer; error bodies are kept only up to their cap.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use ratewise_core::error::{DECODE_BODY_CAP, Error};
use ratewise_core::provider::RequestSpec;
use ratewise_core::upstream::{CallPolicy, Upstream};
use ratewise_testkit::{GenericProvider, Handler, HandlerContext, SimUpstream};

/// Answers the first `hostile` requests with `status` and `headers` (and `body`), then 200.
#[derive(Debug)]
struct Hostile {
    status: StatusCode,
    headers: Vec<(&'static str, String)>,
    body: Bytes,
    hostile: usize,
    served: AtomicUsize,
}

impl Hostile {
    fn new(status: u16, headers: &[(&'static str, &str)]) -> Self {
        Self {
            status: StatusCode::from_u16(status).unwrap(),
            headers: headers.iter().map(|(k, v)| (*k, (*v).to_owned())).collect(),
            body: Bytes::from_static(b"{\"error\":{\"message\":\"hostile\"}}"),
            hostile: 1,
            served: AtomicUsize::new(0),
        }
    }

    fn times(mut self, hostile: usize) -> Self {
        self.hostile = hostile;
        self
    }

    fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }
}

impl Handler for Hostile {
    fn handle(&self, _: &http::Request<Bytes>, _: &HandlerContext) -> http::Response<Bytes> {
        let n = self.served.fetch_add(1, Ordering::SeqCst);
        if n >= self.hostile {
            return http::Response::new(Bytes::from_static(b"{\"ok\":true}"));
        }
        let mut response = http::Response::new(self.body.clone());
        *response.status_mut() = self.status;
        for (name, value) in &self.headers {
            if let Ok(value) = HeaderValue::from_str(value) {
                response.headers_mut().append(*name, value);
            }
        }
        response
    }
}

async fn call(handler: Hostile) -> (Result<(), Error<ratewise_testkit::GenericError>>, Duration) {
    let sim = SimUpstream::builder().handler(handler).seed(5).build();
    let upstream = Upstream::builder(GenericProvider::new(), "http://sim.test")
        .transport(Arc::new(sim.transport()))
        .clock(sim.clock())
        .seed(5)
        .policy(CallPolicy::new().max_wait(Duration::from_secs(30)))
        .build()
        .unwrap();
    let clock = sim.clock();
    let start = clock.now();
    let result = upstream
        .execute(RequestSpec::get("/v1/things", "things.list"))
        .await
        .map(drop);
    (result, clock.now() - start)
}

/// The clamp on a server-requested wait (`hint::Clamp`'s default).
const CLAMP: Duration = Duration::from_secs(120);

#[tokio::test(start_paused = true)]
async fn an_absurd_retry_after_gives_up_at_once_with_the_wait_it_was_asked_for() {
    for value in [
        "99999999999999999999",
        "18446744073709551616",
        "Fri, 31 Dec 9999 23:59:59 GMT",
        "Sat Jan  1 00:00:00 9999",
    ] {
        let (result, elapsed) = call(Hostile::new(429, &[("retry-after", value)])).await;
        match result {
            Err(Error::RetryAfterTooLong { hint, .. }) => {
                assert!(hint.wait > CLAMP, "{value}: {hint:?}")
            }
            other => panic!("{value}: {other:?}"),
        }
        assert!(
            elapsed < Duration::from_secs(1),
            "{value}: waited {elapsed:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn malformed_and_negative_hints_fall_back_to_backoff_and_the_call_succeeds() {
    for value in ["-5", "1e9", "NaN", "", "  ", "5 seconds", "\u{7f}"] {
        let (result, elapsed) = call(Hostile::new(429, &[("retry-after", value)]).times(2)).await;
        result.unwrap_or_else(|e| panic!("{value:?}: {e}"));
        assert!(elapsed < Duration::from_secs(30), "{value:?}: {elapsed:?}");
    }
    let (result, _) = call(Hostile::new(429, &[("retry-after-ms", "-1")]).times(2)).await;
    result.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_thousand_repeated_hint_headers_are_read_as_one() {
    let handler = Hostile::new(429, &[]);
    let mut handler = handler;
    handler.headers = (0..1_000)
        .map(|i| ("retry-after", (i % 3).to_string()))
        .collect();
    let (result, elapsed) = call(handler).await;
    result.unwrap();
    assert!(elapsed <= Duration::from_secs(3), "{elapsed:?}");
}

#[tokio::test(start_paused = true)]
async fn negative_zero_and_inconsistent_quota_headers_neither_panic_nor_wedge_the_pacer() {
    for headers in [
        &[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "-100"),
        ][..],
        &[
            ("x-ratelimit-limit", "0"),
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "0"),
        ][..],
        &[
            ("x-ratelimit-limit", "10"),
            ("x-ratelimit-remaining", "18446744073709551615"),
            ("x-ratelimit-reset", "1"),
        ][..],
        &[
            ("x-ratelimit-limit", "99999999999999999999999"),
            ("x-ratelimit-remaining", "-1"),
            ("x-ratelimit-reset", "abc"),
        ][..],
    ] {
        // A 200 carrying the hostile snapshot, then a second call must still get through.
        let sim = SimUpstream::builder()
            .handler(Hostile::new(200, headers))
            .build();
        let upstream = Upstream::builder(GenericProvider::new(), "http://sim.test")
            .transport(Arc::new(sim.transport()))
            .clock(sim.clock())
            .build()
            .unwrap();
        for _ in 0..2 {
            upstream
                .execute(RequestSpec::get("/v1/things", "things.list"))
                .await
                .unwrap_or_else(|e| panic!("{headers:?}: {e}"));
        }
    }
}

#[tokio::test(start_paused = true)]
async fn an_enormous_reset_on_a_429_is_refused_at_once_not_slept_on() {
    let (result, elapsed) = call(Hostile::new(
        429,
        &[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "99999999999999999"),
        ],
    ))
    .await;
    assert!(result.is_err());
    assert!(elapsed < Duration::from_secs(1), "{elapsed:?}");
}

#[tokio::test(start_paused = true)]
async fn a_ten_megabyte_error_body_is_kept_only_up_to_its_cap() {
    let body = vec![b'x'; 10 * 1024 * 1024];
    let (result, _) = call(Hostile::new(400, &[]).body(body)).await;
    match result {
        Err(Error::Api {
            body: Some(body), ..
        }) => assert!(body.len() <= DECODE_BODY_CAP + 4),
        other => panic!("{other:?}"),
    }
}
