//! GitHub's header names and formats: the rate-limit set, the request id, `Link` pagination.
//!
//! Every REST response carries `x-ratelimit-{limit,remaining,used,reset,resource}`: one hourly
//! budget per resource (`core`, `search`, `code_search`, `graphql`, …), its reset in **UTC
//! epoch seconds**. Header names are case-insensitive (GitHub has sent both `X-RateLimit-*`
//! and `x-ratelimit-*`); [`http::HeaderMap`] normalises them, so both read the same.
//! `retry-after` (seconds) comes with secondary limits only.

use std::time::SystemTime;

use http::{HeaderMap, HeaderName};
use ratewise_core::hint::{header_bytes, parse_epoch_seconds};

/// `x-ratelimit-limit`: the budget per window (5,000 per hour for a token on `core`).
pub const X_RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
/// `x-ratelimit-remaining`: what is left in the window; `0` on a primary-limit refusal.
pub const X_RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
/// `x-ratelimit-used`: what was spent in the window.
pub const X_RATELIMIT_USED: HeaderName = HeaderName::from_static("x-ratelimit-used");
/// `x-ratelimit-reset`: when the window resets, in UTC epoch seconds.
pub const X_RATELIMIT_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");
/// `x-ratelimit-resource`: which budget the request spent (`core`, `search`, …).
pub const X_RATELIMIT_RESOURCE: HeaderName = HeaderName::from_static("x-ratelimit-resource");
/// `x-github-request-id`: GitHub's id of the request, to quote to support.
pub const X_GITHUB_REQUEST_ID: HeaderName = HeaderName::from_static("x-github-request-id");
/// `X-GitHub-Api-Version`: the REST API version a request is pinned to.
pub const X_GITHUB_API_VERSION: HeaderName = HeaderName::from_static("x-github-api-version");

/// The resource a response names when it carries no `x-ratelimit-resource`: `core`.
pub const DEFAULT_RESOURCE: &str = "core";

/// One response's rate-limit headers.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RateLimit {
    /// The budget per window (`x-ratelimit-limit`), if sent.
    pub limit: Option<u64>,
    /// What is left (`x-ratelimit-remaining`).
    pub remaining: u64,
    /// What was spent (`x-ratelimit-used`), if sent.
    pub used: Option<u64>,
    /// When the window resets (`x-ratelimit-reset`, epoch seconds), if sent and readable.
    pub reset: Option<SystemTime>,
    /// The resource (`x-ratelimit-resource`), [`DEFAULT_RESOURCE`] when absent.
    pub resource: String,
}

impl RateLimit {
    /// Reads the rate-limit headers; `None` without a readable `x-ratelimit-remaining`.
    pub fn from_headers(headers: &HeaderMap) -> Option<Self> {
        let remaining = number(headers, &X_RATELIMIT_REMAINING)?;
        let resource = header_bytes(headers, &X_RATELIMIT_RESOURCE)
            .and_then(|v| std::str::from_utf8(v).ok())
            .map(str::trim)
            .filter(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_graphic()))
            .unwrap_or(DEFAULT_RESOURCE)
            .to_owned();
        Some(Self {
            limit: number(headers, &X_RATELIMIT_LIMIT),
            remaining,
            used: number(headers, &X_RATELIMIT_USED),
            reset: header_bytes(headers, &X_RATELIMIT_RESET).and_then(parse_epoch_seconds),
            resource,
        })
    }
}

/// True when `headers` say `x-ratelimit-remaining: 0`: the primary limit is spent.
pub fn primary_exhausted(headers: &HeaderMap) -> bool {
    number(headers, &X_RATELIMIT_REMAINING) == Some(0)
}

fn number(headers: &HeaderMap, name: &HeaderName) -> Option<u64> {
    std::str::from_utf8(header_bytes(headers, name)?)
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The `x-github-request-id` of a response, if it carries a readable one.
pub fn request_id(headers: &HeaderMap) -> Option<String> {
    let value = std::str::from_utf8(header_bytes(headers, &X_GITHUB_REQUEST_ID)?).ok()?;
    let value = value.trim();
    (!value.is_empty()).then(|| value.to_owned())
}

/// The URL of the `rel="next"` page in a `Link` header, if any.
///
/// `<https://api.github.com/repositories/1300192/issues?page=2>; rel="next", <…>; rel="last"`.
/// Relation names are matched case-insensitively, quoted or not, among space-separated lists
/// (`rel="next last"`).
pub fn next_link(headers: &HeaderMap) -> Option<String> {
    let value = std::str::from_utf8(header_bytes(headers, http::header::LINK)?).ok()?;
    link_with_rel(value, "next")
}

/// The target of the first link with relation `rel` in a `Link` header value.
pub fn link_with_rel(value: &str, rel: &str) -> Option<String> {
    let mut rest = value;
    loop {
        let start = rest.find('<')?;
        let end = start.saturating_add(rest.get(start..)?.find('>')?);
        let target = rest.get(start.saturating_add(1)..end)?;
        rest = rest.get(end.saturating_add(1)..)?;
        let params_end = rest.find('<').unwrap_or(rest.len());
        let params = rest.get(..params_end)?;
        let matches = params.split(';').any(|param| {
            let Some((name, value)) = param.split_once('=') else {
                return false;
            };
            name.trim().eq_ignore_ascii_case("rel")
                && value
                    .trim()
                    .trim_end_matches(',')
                    .trim()
                    .trim_matches('"')
                    .split_ascii_whitespace()
                    .any(|r| r.eq_ignore_ascii_case(rel))
        });
        if matches {
            return Some(target.to_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use std::time::{Duration, UNIX_EPOCH};

    fn headers(pairs: &[(&str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_static(value),
            );
        }
        map
    }

    #[test]
    fn the_rate_limit_set_reads_in_either_casing() {
        for names in [
            [
                "x-ratelimit-limit",
                "x-ratelimit-remaining",
                "x-ratelimit-used",
                "x-ratelimit-reset",
                "x-ratelimit-resource",
            ],
            [
                "X-RateLimit-Limit",
                "X-RateLimit-Remaining",
                "X-RateLimit-Used",
                "X-RateLimit-Reset",
                "X-RateLimit-Resource",
            ],
        ] {
            let map = headers(&[
                (names[0], "5000"),
                (names[1], "4999"),
                (names[2], "1"),
                (names[3], "1789683711"),
                (names[4], "core"),
            ]);
            let rate = RateLimit::from_headers(&map).unwrap();
            assert_eq!(rate.limit, Some(5000));
            assert_eq!(rate.remaining, 4999);
            assert_eq!(rate.used, Some(1));
            assert_eq!(
                rate.reset,
                Some(UNIX_EPOCH + Duration::from_secs(1_789_683_711))
            );
            assert_eq!(rate.resource, "core");
            assert!(!primary_exhausted(&map));
        }
    }

    #[test]
    fn a_missing_resource_is_core_and_garbage_is_no_rate_limit() {
        let rate = RateLimit::from_headers(&headers(&[("x-ratelimit-remaining", "0")])).unwrap();
        assert_eq!(rate.resource, "core");
        assert_eq!(rate.reset, None);
        assert!(primary_exhausted(&headers(&[(
            "X-RateLimit-Remaining",
            " 0 "
        )])));
        assert!(RateLimit::from_headers(&headers(&[("x-ratelimit-remaining", "-1")])).is_none());
        assert!(RateLimit::from_headers(&HeaderMap::new()).is_none());
        let search = headers(&[
            ("x-ratelimit-remaining", "29"),
            ("x-ratelimit-resource", "search"),
        ]);
        assert_eq!(RateLimit::from_headers(&search).unwrap().resource, "search");
    }

    #[test]
    fn the_request_id_is_githubs() {
        let map = headers(&[("X-GitHub-Request-Id", "CE0C:3D4A:1F2B3C:2A3B4C:65F1A2B3")]);
        assert_eq!(
            request_id(&map).as_deref(),
            Some("CE0C:3D4A:1F2B3C:2A3B4C:65F1A2B3")
        );
        assert_eq!(request_id(&HeaderMap::new()), None);
    }

    #[test]
    fn the_next_link_is_found_among_others() {
        let value = r#"<https://api.github.com/repositories/1300192/issues?page=1>; rel="prev", <https://api.github.com/repositories/1300192/issues?page=3>; rel="next", <https://api.github.com/repositories/1300192/issues?page=9>; rel="last""#;
        assert_eq!(
            link_with_rel(value, "next").as_deref(),
            Some("https://api.github.com/repositories/1300192/issues?page=3")
        );
        assert_eq!(
            link_with_rel(value, "last").as_deref(),
            Some("https://api.github.com/repositories/1300192/issues?page=9")
        );
        assert_eq!(link_with_rel(value, "first"), None);
        assert_eq!(
            link_with_rel("<https://x/a?page=2>; rel=next", "next").as_deref(),
            Some("https://x/a?page=2")
        );
        assert_eq!(link_with_rel("garbage <", "next"), None);
        assert_eq!(link_with_rel("", "next"), None);
    }
}
