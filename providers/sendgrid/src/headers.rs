//! SendGrid's header names and formats.
//!
//! SendGrid reports each endpoint's budget on its responses: `X-RateLimit-Limit: 500`,
//! `X-RateLimit-Remaining: 499`, `X-RateLimit-Reset: 1392815263` (the reset as **epoch
//! seconds**). The headers are not guaranteed: `/v3/mail/send` has been seen answering without
//! them, so every reader here returns `None` rather than guess. A 202 from mail send carries
//! `X-Message-Id`, SendGrid's id of the accepted message (it appears in the event webhook and the
//! activity feed as the prefix of `sg_message_id`).

use http::{HeaderMap, HeaderName};
use ratewise_core::clock::Timestamp;
use ratewise_core::hint::{header_bytes, header_u64, parse_epoch_seconds};
use ratewise_core::quota::{BudgetName, QuotaSnapshot};

/// `X-RateLimit-Limit`: the endpoint's requests per refresh period.
pub const RATE_LIMIT_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
/// `X-RateLimit-Remaining`: requests left in the current period.
pub const RATE_LIMIT_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
/// `X-RateLimit-Reset`: when the period ends, in epoch seconds.
pub const RATE_LIMIT_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");
/// `X-Message-Id`: the id of a message accepted by `/v3/mail/send` (202).
pub const MESSAGE_ID: HeaderName = HeaderName::from_static("x-message-id");

/// The quota the `X-RateLimit-*` headers report, as a snapshot of `budget`; `None` unless both
/// `X-RateLimit-Remaining` and a readable `X-RateLimit-Reset` are present (the limit is optional).
pub fn quota_snapshot(
    headers: &HeaderMap,
    budget: BudgetName,
    at: Timestamp,
) -> Option<QuotaSnapshot> {
    let remaining = header_u64(headers, &RATE_LIMIT_REMAINING)?;
    let reset = parse_epoch_seconds(header_bytes(headers, &RATE_LIMIT_RESET)?)?;
    let snapshot = QuotaSnapshot::new(budget, remaining, at.instant_at(reset), at.instant);
    Some(match header_u64(headers, &RATE_LIMIT_LIMIT) {
        Some(limit) => snapshot.with_limit(limit),
        None => snapshot,
    })
}

/// The `X-Message-Id` of an accepted send, if it carries a readable one.
pub fn message_id(headers: &HeaderMap) -> Option<String> {
    let value = std::str::from_utf8(header_bytes(headers, &MESSAGE_ID)?).ok()?;
    let value = value.trim();
    (!value.is_empty()).then(|| value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use ratewise_core::clock::{Clock, ManualClock};
    use std::time::{Duration, UNIX_EPOCH};

    fn headers(pairs: &[(HeaderName, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(name.clone(), HeaderValue::from_static(value));
        }
        map
    }

    fn at(epoch: u64) -> Timestamp {
        let clock = ManualClock::with_wall(UNIX_EPOCH + Duration::from_secs(epoch));
        clock.timestamp()
    }

    #[test]
    fn the_documented_headers_read_as_a_snapshot_resetting_at_the_epoch_second() {
        let now = at(1_392_815_203);
        let map = headers(&[
            (RATE_LIMIT_LIMIT, "500"),
            (RATE_LIMIT_REMAINING, "499"),
            (RATE_LIMIT_RESET, "1392815263"),
        ]);
        let snapshot = quota_snapshot(&map, BudgetName::from_static("b"), now).unwrap();
        assert_eq!(snapshot.limit, Some(500));
        assert_eq!(snapshot.remaining, 499);
        assert_eq!(snapshot.reset_at - now.instant, Duration::from_secs(60));
        assert_eq!(snapshot.observed_at, now.instant);
    }

    #[test]
    fn absent_or_unreadable_headers_give_no_snapshot() {
        let now = at(1_000);
        let budget = || BudgetName::from_static("b");
        assert!(quota_snapshot(&HeaderMap::new(), budget(), now).is_none());
        let no_reset = headers(&[(RATE_LIMIT_REMAINING, "3")]);
        assert!(quota_snapshot(&no_reset, budget(), now).is_none());
        let garbage = headers(&[(RATE_LIMIT_REMAINING, "-1"), (RATE_LIMIT_RESET, "1100")]);
        assert!(quota_snapshot(&garbage, budget(), now).is_none());
        let no_limit = headers(&[(RATE_LIMIT_REMAINING, "0"), (RATE_LIMIT_RESET, "1100")]);
        let snapshot = quota_snapshot(&no_limit, budget(), now).unwrap();
        assert_eq!(snapshot.limit, None);
        assert_eq!(snapshot.remaining, 0);
    }

    #[test]
    fn a_reset_in_the_past_maps_to_now() {
        let now = at(2_000);
        let map = headers(&[(RATE_LIMIT_REMAINING, "0"), (RATE_LIMIT_RESET, "1500")]);
        let snapshot = quota_snapshot(&map, BudgetName::from_static("b"), now).unwrap();
        assert_eq!(snapshot.reset_at, now.instant);
    }

    #[test]
    fn the_message_id_is_trimmed_and_empty_ones_are_absent() {
        let map = headers(&[(
            MESSAGE_ID,
            " 14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0 ",
        )]);
        assert_eq!(
            message_id(&map).as_deref(),
            Some("14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0")
        );
        assert_eq!(message_id(&headers(&[(MESSAGE_ID, "  ")])), None);
        assert_eq!(message_id(&HeaderMap::new()), None);
    }
}
