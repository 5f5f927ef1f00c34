//! Every status, body and header OpenAI sends, read into a verdict and quota snapshots.

use std::time::Duration;

use http::HeaderValue;
use ratewise_core::clock::{Clock, ManualClock};
use ratewise_core::verdict::Processing;

use super::*;

const RATE_LIMIT_429: &str = r#"{"error":{"message":"Rate limit reached for gpt-4o in organization org-abc on tokens per min (TPM): Limit 30000, Used 29000, Requested 1538. Please try again in 644ms. Visit https://platform.openai.com/account/rate-limits to learn more.","type":"tokens","param":null,"code":"rate_limit_exceeded"}}"#;
const RATE_LIMIT_NO_WAIT_429: &str = r#"{"error":{"message":"Rate limit reached for requests","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#;
const QUOTA_429: &str = r#"{"error":{"message":"You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#;
const INVALID_400: &str = r#"{"error":{"message":"'messages' is a required property","type":"invalid_request_error","param":null,"code":null}}"#;
const AUTH_401: &str = r#"{"error":{"message":"Incorrect API key provided: sk-abc***.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#;
const SERVER_500: &str = r#"{"error":{"message":"The server had an error while processing your request. Sorry about that!","type":"server_error","param":null,"code":null}}"#;

type Headers = &'static [(&'static str, &'static str)];

fn response(status: u16, body: &str, headers: Headers) -> http::Response<Bytes> {
    let mut response = http::Response::new(Bytes::from(body.to_owned()));
    *response.status_mut() = StatusCode::from_u16(status).unwrap();
    for (name, value) in headers {
        response
            .headers_mut()
            .append(*name, HeaderValue::from_static(value));
    }
    response
}

fn inspect(status: u16, body: &str, headers: Headers) -> Inspection {
    let clock = ManualClock::new();
    OpenAiProvider::new().inspect(&response(status, body, headers), clock.timestamp())
}

fn retry(reason: Reason, processing: Processing, after: Option<Duration>) -> Verdict {
    Verdict::Retry {
        after,
        reason,
        processing,
    }
}

fn ms(n: u64) -> Option<Duration> {
    Some(Duration::from_millis(n))
}

#[test]
fn every_status_body_and_hint_reads_as_documented() {
    use Processing::{Maybe, NotProcessed};
    let cases: &[(&str, u16, &str, Headers, Verdict)] = &[
        ("200", 200, "{}", &[], Verdict::Success),
        (
            "429 rate_limit_exceeded: the message's wait",
            429,
            RATE_LIMIT_429,
            &[],
            retry(Reason::RateLimited, NotProcessed, ms(644)),
        ),
        (
            "retry-after-ms beats the message",
            429,
            RATE_LIMIT_429,
            &[("retry-after-ms", "1500"), ("retry-after", "9")],
            retry(Reason::RateLimited, NotProcessed, ms(1500)),
        ),
        (
            "retry-after seconds",
            429,
            RATE_LIMIT_NO_WAIT_429,
            &[("retry-after", "2")],
            retry(Reason::RateLimited, NotProcessed, ms(2000)),
        ),
        (
            "retry-after as an HTTP-date in the past: now",
            429,
            RATE_LIMIT_NO_WAIT_429,
            &[("retry-after", "Sun, 06 Nov 1994 08:49:37 GMT")],
            retry(Reason::RateLimited, NotProcessed, ms(0)),
        ),
        (
            "no hint but a spent budget: its reset",
            429,
            RATE_LIMIT_NO_WAIT_429,
            &[
                ("x-ratelimit-remaining-requests", "0"),
                ("x-ratelimit-reset-requests", "120ms"),
                ("x-ratelimit-remaining-tokens", "500"),
                ("x-ratelimit-reset-tokens", "4m12.172s"),
            ],
            retry(Reason::RateLimited, NotProcessed, ms(120)),
        ),
        (
            "no hint at all: local backoff",
            429,
            "",
            &[],
            retry(Reason::RateLimited, NotProcessed, None),
        ),
        (
            "429 insufficient_quota: never, whatever x-should-retry says",
            429,
            QUOTA_429,
            &[("x-should-retry", "true"), ("retry-after", "1")],
            Verdict::fail(Reason::QuotaExhausted),
        ),
        (
            "x-should-retry: false on a rate limit",
            429,
            RATE_LIMIT_429,
            &[("x-should-retry", "false")],
            Verdict::fail(Reason::ServerRefused),
        ),
        (
            "x-should-retry: true on a 400",
            400,
            INVALID_400,
            &[("x-should-retry", "true")],
            retry(Reason::ServerRequested, Maybe, None),
        ),
        ("408", 408, "", &[], retry(Reason::Timeout, Maybe, None)),
        ("409", 409, "", &[], retry(Reason::Conflict, Maybe, None)),
        (
            "500",
            500,
            SERVER_500,
            &[],
            retry(Reason::ServerError, Maybe, None),
        ),
        (
            "503 with retry-after",
            503,
            SERVER_500,
            &[("retry-after", "3")],
            retry(Reason::ServerError, Maybe, ms(3000)),
        ),
        (
            "400",
            400,
            INVALID_400,
            &[],
            Verdict::fail(Reason::Rejected),
        ),
        (
            "401",
            401,
            AUTH_401,
            &[],
            Verdict::fail(Reason::Unauthorized),
        ),
        ("403", 403, "", &[], Verdict::fail(Reason::Unauthorized)),
        ("404", 404, "", &[], Verdict::fail(Reason::Rejected)),
        ("422", 422, "", &[], Verdict::fail(Reason::Rejected)),
    ];
    for (name, status, body, headers, expected) in cases {
        assert_eq!(inspect(*status, body, headers).verdict, *expected, "{name}");
    }
}

#[test]
fn every_response_reports_both_budgets_429s_included() {
    let headers: Headers = &[
        ("x-ratelimit-limit-requests", "3000"),
        ("x-ratelimit-limit-tokens", "1000000"),
        ("x-ratelimit-remaining-requests", "0"),
        ("x-ratelimit-remaining-tokens", "12"),
        ("x-ratelimit-reset-requests", "20ms"),
        ("x-ratelimit-reset-tokens", "59.9s"),
        ("x-ratelimit-remaining-tokens_usage_based", "99"),
    ];
    for status in [200, 429] {
        let inspection = inspect(status, RATE_LIMIT_NO_WAIT_429, headers);
        assert_eq!(inspection.quotas.len(), 2, "{status}");
        assert_eq!(inspection.quotas[0].budget, BudgetName::REQUESTS);
        assert_eq!(inspection.quotas[0].remaining, 0);
        assert_eq!(inspection.quotas[0].limit, Some(3000));
        assert_eq!(
            inspection.quotas[0].reset_at - inspection.quotas[0].observed_at,
            Duration::from_millis(20)
        );
        assert_eq!(inspection.quotas[1].budget, BudgetName::TOKENS);
        assert_eq!(inspection.quotas[1].remaining, 12);
    }
    assert!(
        inspect(200, "{}", &[]).quotas.is_empty(),
        "headers may be absent"
    );
}

#[test]
fn the_request_id_is_read_from_x_request_id() {
    let headers = response(200, "{}", &[("x-request-id", "req_42")]);
    assert_eq!(
        OpenAiProvider::new()
            .request_id(headers.headers())
            .as_deref(),
        Some("req_42")
    );
}

fn post(body: serde_json::Value) -> RequestSpec {
    RequestSpec::post("/chat/completions", "chat.completions.create")
        .body("application/json", body.to_string())
}

#[test]
fn a_call_costs_one_request_and_the_tokens_openai_reserves() {
    let provider = OpenAiProvider::new();
    let prompt = tokens::chat_prompt("gpt-4o", [("user", "Say this is a test", None)]);
    let chat = |extra: serde_json::Value| {
        let mut body = serde_json::json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "Say this is a test"}]});
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            body.extend(extra.clone());
        }
        provider.cost(&post(body)).amount(&BudgetName::TOKENS)
    };
    assert_eq!(chat(serde_json::json!({})), prompt);
    assert_eq!(chat(serde_json::json!({"max_tokens": 500})), 500);
    assert_eq!(
        chat(serde_json::json!({"max_completion_tokens": 300, "n": 2})),
        600
    );
    assert_eq!(chat(serde_json::json!({"max_tokens": 1})), prompt);
    let embed = provider.cost(&post(serde_json::json!({"model": "text-embedding-3-small", "input": ["hello world", "hello world"]})));
    assert_eq!(embed.amount(&BudgetName::REQUESTS), 1);
    assert_eq!(
        embed.amount(&BudgetName::TOKENS),
        2 * tokens::count("text-embedding-3-small", "hello world")
    );
    let ids = provider.cost(&post(
        serde_json::json!({"model": "m", "input": [[1, 2, 3], [4]]}),
    ));
    assert_eq!(ids.amount(&BudgetName::TOKENS), 4);
    let list = provider.cost(&RequestSpec::get("/models", "models.list"));
    assert_eq!(list, Cost::request());
    let garbage = RequestSpec::post("/x", "x").body("application/json", "{not json");
    assert_eq!(provider.cost(&garbage), Cost::request());
}

#[test]
fn the_actual_cost_is_the_usage_of_a_body_or_of_a_streams_last_chunk() {
    let provider = OpenAiProvider::new();
    let spec = post(serde_json::json!({}));
    let json = response(
        200,
        r#"{"id":"x","usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12}}"#,
        &[],
    );
    assert_eq!(
        provider.actual_cost(&spec, &json),
        Some(Cost::request().with(BudgetName::TOKENS, 12))
    );
    let stream = response(
        200,
        "data: {\"id\":\"c\",\"choices\":[]}\n\ndata: {\"id\":\"c\",\"choices\":[],\"usage\":{\"total_tokens\":7}}\n\ndata: [DONE]\n\n",
        &[("content-type", "text/event-stream")],
    );
    assert_eq!(
        provider.actual_cost(&spec, &stream),
        Some(Cost::request().with(BudgetName::TOKENS, 7))
    );
    let no_usage = response(200, r#"{"id":"x"}"#, &[]);
    assert_eq!(provider.actual_cost(&spec, &no_usage), None);
}

#[test]
fn every_operation_is_safe_to_repeat_and_no_key_header_is_sent() {
    let provider = OpenAiProvider::new();
    assert!(provider.idempotency_header().is_none());
    assert!(provider.safe_without_key(&post(serde_json::json!({}))));
}

#[test]
fn limits_up_front_add_a_gcra_per_budget_and_learning_starts_conservatively() {
    let clock = ManualClock::new().shared();
    let learning = OpenAiProvider::new().limiters(&clock);
    assert_eq!(learning.len(), 2);
    let known = OpenAiProvider::with_limits(Limits::new(3000, 1_000_000)).limiters(&clock);
    assert_eq!(known.len(), 4);
    // The learning client admits a burst of 5 % of CONSERVATIVE_RPM, then waits.
    let composite = learning.into_iter().fold(
        ratewise_core::limit::CompositeLimiter::new().clock(clock.clone()),
        |c, l| c.with(l),
    );
    let admitted = (0..100)
        .take_while(|_| composite.try_acquire(&Cost::request()).is_ok())
        .count();
    assert_eq!(admitted as u64, CONSERVATIVE_RPM / 20);
}
