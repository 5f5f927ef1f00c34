//! Every rule of the provider, on the header sets and bodies GitHub documents.

use std::time::{Duration, UNIX_EPOCH};

use http::HeaderValue;
use ratewise_core::clock::{Clock, ManualClock};
use ratewise_core::verdict::Processing;

use super::*;

const PRIMARY: &str = r#"{"message":"API rate limit exceeded for installation ID xxxxxxx.","documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"}"#;
const SECONDARY_BODY: &str = r#"{"message":"You have exceeded a secondary rate limit. Please wait a few minutes before you try again.","documentation_url":"https://docs.github.com/rest/overview/resources-in-the-rest-api#secondary-rate-limits"}"#;
const SSO: &str = r#"{"message":"Resource protected by organization SAML enforcement. You must grant your Personal Access token access to this organization.","documentation_url":"https://docs.github.com/articles/authenticating-to-a-github-organization-with-saml-single-sign-on/"}"#;
const NOT_FOUND: &str = r#"{"message":"Not Found","documentation_url":"https://docs.github.com/rest/issues/issues#get-an-issue","status":"404"}"#;
const VALIDATION: &str = r#"{"message":"Validation Failed","errors":[{"resource":"Issue","code":"missing_field","field":"title"}],"documentation_url":"https://docs.github.com/rest/issues/issues#create-an-issue","status":"422"}"#;
const BAD_CREDENTIALS: &str =
    r#"{"message":"Bad credentials","documentation_url":"https://docs.github.com/rest"}"#;

/// 1789683651: one minute before the reset in PROVIDERS.md's example (`1789683711`).
fn clock() -> ManualClock {
    ManualClock::with_wall(UNIX_EPOCH + Duration::from_secs(1_789_683_651))
}

fn response(status: u16, body: &str, headers: &[(&str, &'static str)]) -> http::Response<Bytes> {
    let mut response = http::Response::new(Bytes::from(body.to_owned()));
    *response.status_mut() = StatusCode::from_u16(status).unwrap();
    for (name, value) in headers {
        response.headers_mut().insert(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_static(value),
        );
    }
    response
}

/// The primary-limit header set, in the casing given.
fn exhausted(upper: bool) -> Vec<(&'static str, &'static str)> {
    if upper {
        vec![
            ("X-RateLimit-Limit", "5000"),
            ("X-RateLimit-Remaining", "0"),
            ("X-RateLimit-Used", "5000"),
            ("X-RateLimit-Reset", "1789683711"),
            ("X-RateLimit-Resource", "core"),
        ]
    } else {
        vec![
            ("x-ratelimit-limit", "5000"),
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-used", "5000"),
            ("x-ratelimit-reset", "1789683711"),
            ("x-ratelimit-resource", "core"),
        ]
    }
}

fn retry_after(verdict: Verdict) -> Option<Duration> {
    match verdict {
        Verdict::Retry {
            after,
            reason: Reason::RateLimited,
            processing: Processing::NotProcessed,
        } => after,
        other => panic!("not a rate-limit retry: {other:?}"),
    }
}

#[test]
fn a_primary_limit_is_read_from_a_403_or_a_429_in_either_casing() {
    let clock = clock();
    let provider = GitHubProvider::default();
    for status in [403, 429] {
        for upper in [false, true] {
            let inspection = provider.inspect(
                &response(status, PRIMARY, &exhausted(upper)),
                clock.timestamp(),
            );
            assert_eq!(
                retry_after(inspection.verdict),
                Some(Duration::from_secs(61)),
                "{status} upper={upper}: until the reset + 1 s"
            );
            let quota = inspection.quotas.first().unwrap();
            assert_eq!(quota.budget, limits::resource("core"));
            assert_eq!(quota.remaining, 0);
            assert_eq!(
                quota.reset_at.duration_since(quota.observed_at),
                Duration::from_secs(61)
            );
        }
    }
}

#[test]
fn a_primary_limit_names_its_resource_and_a_missing_reset_waits_a_minute() {
    let clock = clock();
    let provider = GitHubProvider::default();
    let search = response(
        403,
        PRIMARY,
        &[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "1789683671"),
            ("x-ratelimit-resource", "search"),
        ],
    );
    let inspection = provider.inspect(&search, clock.timestamp());
    assert_eq!(
        retry_after(inspection.verdict),
        Some(Duration::from_secs(21))
    );
    assert_eq!(inspection.quotas[0].budget, limits::resource("search"));
    let no_reset = response(429, PRIMARY, &[("x-ratelimit-remaining", "0")]);
    let inspection = provider.inspect(&no_reset, clock.timestamp());
    assert_eq!(
        retry_after(inspection.verdict),
        Some(DEFAULT_SECONDARY_WAIT)
    );
    let past = response(
        403,
        PRIMARY,
        &[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "1")],
    );
    assert_eq!(
        retry_after(provider.inspect(&past, clock.timestamp()).verdict),
        Some(RESET_MARGIN),
        "a reset in the past: one second"
    );
}

#[test]
fn a_secondary_limit_obeys_retry_after_else_waits_a_minute_and_pauses_everyone() {
    let clock = clock();
    for status in [403, 429] {
        let provider = GitHubProvider::default();
        let with_hint = provider.inspect(
            &response(status, SECONDARY_BODY, &[("retry-after", "30")]),
            clock.timestamp(),
        );
        assert_eq!(
            retry_after(with_hint.verdict),
            Some(Duration::from_secs(30))
        );
        let pause = with_hint.quotas.first().unwrap();
        assert_eq!(pause.budget, limits::SECONDARY);
        assert_eq!(
            pause.reset_at.duration_since(pause.observed_at),
            Duration::from_secs(30)
        );
        let provider = GitHubProvider::default();
        let bare = provider.inspect(&response(status, SECONDARY_BODY, &[]), clock.timestamp());
        assert_eq!(retry_after(bare.verdict), Some(Duration::from_secs(60)));
    }
}

#[test]
fn the_secondary_message_wins_over_remaining_and_is_matched_without_case() {
    let clock = clock();
    let provider = GitHubProvider::default();
    let shouting = r#"{"message":"YOU HAVE EXCEEDED A SECONDARY RATE LIMIT."}"#;
    let inspection = provider.inspect(
        &response(403, shouting, &exhausted(false)),
        clock.timestamp(),
    );
    assert_eq!(
        retry_after(inspection.verdict),
        Some(Duration::from_secs(60))
    );
    assert_eq!(inspection.quotas[0].budget, limits::SECONDARY);
}

#[test]
fn documentation_url_is_never_matched() {
    let clock = clock();
    let provider = GitHubProvider::default();
    let misleading = r#"{"message":"Must have admin rights to Repository.","documentation_url":"https://docs.github.com/rest/overview/resources-in-the-rest-api#secondary-rate-limits"}"#;
    let inspection = provider.inspect(&response(403, misleading, &[]), clock.timestamp());
    assert_eq!(inspection.verdict, Verdict::fail(Reason::Unauthorized));
}

#[test]
fn repeated_secondary_limits_double_the_wait_and_a_success_resets_it() {
    let clock = clock();
    let provider = GitHubProvider::default();
    let secondary = || response(403, SECONDARY_BODY, &[]);
    let wait = |p: &GitHubProvider, c: &ManualClock| {
        retry_after(p.inspect(&secondary(), c.timestamp()).verdict).unwrap()
    };
    assert_eq!(wait(&provider, &clock), Duration::from_secs(60));
    clock.advance(Duration::from_secs(10));
    assert_eq!(
        wait(&provider, &clock),
        Duration::from_secs(60),
        "a request sent before the pause joins it (50 s left, at least the 60 s base)"
    );
    clock.advance(Duration::from_secs(61));
    assert_eq!(
        wait(&provider, &clock),
        Duration::from_secs(120),
        "a repeat"
    );
    assert_eq!(provider.secondary_level(), 1);
    clock.advance(Duration::from_secs(121));
    assert_eq!(wait(&provider, &clock), Duration::from_secs(240));
    clock.advance(Duration::from_secs(241));
    let ok = response(200, "{}", &[]);
    let _ = provider.inspect(&ok, clock.timestamp());
    assert_eq!(provider.secondary_level(), 0);
    assert_eq!(wait(&provider, &clock), Duration::from_secs(60));
    for _ in 0..20 {
        clock.advance(Duration::from_secs(100_000));
        let _ = wait(&provider, &clock);
    }
    assert_eq!(provider.secondary_level(), MAX_SECONDARY_LEVEL);
    clock.advance(Duration::from_secs(100_000));
    assert_eq!(wait(&provider, &clock), Duration::from_secs(60 * 64));
}

#[test]
fn a_bare_429_waits_at_least_a_minute() {
    let clock = clock();
    let provider = GitHubProvider::default();
    let inspection = provider.inspect(&response(429, "", &[]), clock.timestamp());
    assert_eq!(
        retry_after(inspection.verdict),
        Some(Duration::from_secs(60))
    );
}

#[test]
fn other_403s_and_client_errors_are_never_retried() {
    let clock = clock();
    let provider = GitHubProvider::default();
    let budget_left = [("x-ratelimit-remaining", "4000")];
    let cases: &[(u16, &str, Reason)] = &[
        (403, SSO, Reason::Unauthorized),
        (
            403,
            r#"{"message":"Resource not accessible by integration"}"#,
            Reason::Unauthorized,
        ),
        (
            403,
            r#"{"message":"Repository access blocked"}"#,
            Reason::Unauthorized,
        ),
        (401, BAD_CREDENTIALS, Reason::Unauthorized),
        (404, NOT_FOUND, Reason::Rejected),
        (
            410,
            r#"{"message":"Issues are disabled for this repo"}"#,
            Reason::Rejected,
        ),
        (422, VALIDATION, Reason::Rejected),
    ];
    for (status, body, reason) in cases {
        let inspection =
            provider.inspect(&response(*status, body, &budget_left), clock.timestamp());
        assert_eq!(
            inspection.verdict,
            Verdict::fail(*reason),
            "{status} {body}"
        );
    }
}

#[test]
fn server_errors_are_retried_as_maybe_processed() {
    let clock = clock();
    let provider = GitHubProvider::default();
    let inspection = provider.inspect(&response(502, "<html>", &[]), clock.timestamp());
    assert_eq!(inspection.verdict, Verdict::retry(Reason::ServerError));
}

#[test]
fn a_success_reports_its_resource_budget() {
    let clock = clock();
    let provider = GitHubProvider::default();
    let inspection = provider.inspect(
        &response(
            200,
            "{}",
            &[
                ("X-RateLimit-Limit", "30"),
                ("X-RateLimit-Remaining", "29"),
                ("X-RateLimit-Used", "1"),
                ("X-RateLimit-Reset", "1789683711"),
                ("X-RateLimit-Resource", "search"),
            ],
        ),
        clock.timestamp(),
    );
    assert_eq!(inspection.verdict, Verdict::Success);
    let quota = &inspection.quotas[0];
    assert_eq!(quota.budget, limits::resource("search"));
    assert_eq!(quota.limit, Some(30));
    assert_eq!(quota.remaining, 29);
    assert_eq!(
        quota.reset_at.duration_since(clock.now()),
        Duration::from_secs(61)
    );
}

#[test]
fn costs_name_the_resource_and_the_secondary_budgets() {
    let provider = GitHubProvider::default();
    let get = provider.cost(&RequestSpec::get("/repos/o/r/issues/1", "issues.get"));
    assert_eq!(get.amount(&limits::resource("core")), 1);
    assert_eq!(get.amount(&limits::CONCURRENT), 1);
    assert_eq!(get.amount(&limits::SECONDARY), 1);
    assert_eq!(get.amount(&limits::WRITE), 0);
    let create = provider.cost(&RequestSpec::post("/repos/o/r/issues", "issues.create"));
    assert_eq!(create.amount(&limits::WRITE), 1);
    assert_eq!(create.amount(&limits::CONTENT), 1);
    let search = provider.cost(&RequestSpec::get("/search/issues?q=bug", "search.issues"));
    assert_eq!(search.amount(&limits::resource("search")), 1);
    assert_eq!(search.amount(&limits::resource("core")), 0);
    assert_eq!(search.amount(&limits::SEARCH), 1);
    let rate = provider.cost(&RequestSpec::get("/rate_limit", "rate_limit.get"));
    assert!(
        rate.iter()
            .all(|(b, _)| !b.as_str().starts_with(limits::RESOURCE_PREFIX)),
        "GET /rate_limit spends no primary budget"
    );
    let render = provider.cost(&RequestSpec::post("/markdown", "markdown.render"));
    assert_eq!(render.amount(&limits::CONTENT), 0);
    assert_eq!(render.amount(&limits::WRITE), 1);
}

#[test]
fn a_304_gives_its_primary_budget_back_and_nothing_else() {
    let provider = GitHubProvider::default();
    let spec = RequestSpec::get("/repos/o/r/issues/1", "issues.get");
    let actual = provider
        .actual_cost(&spec, &response(304, "", &[]))
        .unwrap();
    assert_eq!(actual.amount(&limits::resource("core")), 0);
    assert_eq!(actual.amount(&limits::CONCURRENT), 1);
    assert!(
        provider
            .actual_cost(&spec, &response(200, "{}", &[]))
            .is_none()
    );
}

#[test]
fn the_request_id_and_error_body_are_githubs() {
    let provider = GitHubProvider::default();
    let r = response(
        404,
        NOT_FOUND,
        &[("x-github-request-id", "CE0C:3D4A:1F2B3C:2A3B4C:65F1A2B3")],
    );
    assert_eq!(
        provider.request_id(r.headers()).as_deref(),
        Some("CE0C:3D4A:1F2B3C:2A3B4C:65F1A2B3")
    );
    let error = provider
        .decode_error(StatusCode::UNPROCESSABLE_ENTITY, VALIDATION.as_bytes())
        .unwrap();
    assert_eq!(error.errors[0].field.as_deref(), Some("title"));
    assert!(provider.idempotency_header().is_none());
}
