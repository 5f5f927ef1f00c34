//! Server hints: how long the server asks us to wait, and the clamp that bounds obeying it.
//!
//! Pure parsers of the bytes a server sends, each taking `&[u8]` (so they read
//! [`http::HeaderValue::as_bytes`] directly, whatever its encoding) and, where a date must be
//! read, the caller's wall time `now` (from [`crate::clock::Clock::wall`]). None of them
//! allocates, panics or overflows, on any input; `None` means "no usable hint", and the caller
//! falls back to its own backoff.
//!
//! | header | parser | example |
//! |---|---|---|
//! | `retry-after-ms` | [`parse_retry_after_ms`] | `644`, `1.5` |
//! | `Retry-After` (seconds) | [`parse_retry_after`] | `120`, `1.5` |
//! | `Retry-After` (HTTP-date) | [`parse_retry_after`], [`parse_http_date`] | `Wed, 21 Oct 2026 07:28:00 GMT` |
//! | epoch-second reset | [`parse_epoch_reset`], [`parse_epoch_seconds`] | `x-ratelimit-reset: 1789683711` |
//!
//! [`Hint::from_headers`] applies the precedence over the generic headers; a provider crate adds
//! its own reset headers on top (GitHub: `retry-after`, else `x-ratelimit-reset` when
//! `x-ratelimit-remaining` is 0). [`Clamp`] then decides whether the wait is obeyed in-process or
//! handed back as [`HintTooLong`] so a queue can park the work.
//!
//! Decisions where the RFCs and providers are silent:
//! - **Numbers** are `1*DIGIT [ "." 1*DIGIT ]` after trimming whitespace: no sign, exponent, hex,
//!   `inf`/`nan`, `.5` or `5.`. Fractions are honoured (openai-python reads `Retry-After` as a
//!   float, and `retry-after-ms` is fractional by nature), exact to the nanosecond and rounded up
//!   past it, so a hint is never obeyed early. Values past `Duration::MAX` (about 584 billion
//!   years) saturate to it; the clamp refuses them.
//! - **The past means now**: an HTTP-date or epoch reset already past gives a zero wait.
//! - **Zero is a hint**: `Retry-After: 0` is `Some(Duration::ZERO)` ("retry now"); whether to
//!   retry at once is the caller's policy (openai-python ignores non-positive values).
//! - **Repeated headers**: only the first value is read, even if it is garbage and a later one is
//!   not (the same as [`http::HeaderMap::get`]).
//! - **Non-UTF-8 values** are not an error for the map: that one header yields no hint and the
//!   next header in precedence order is tried.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderMap;
use http::header::{AsHeaderName, RETRY_AFTER};

mod decimal;
mod http_date;
mod wall;

pub use http_date::{format_http_date, parse_http_date};

use decimal::Unit;

/// The name of the `retry-after-ms` header (lowercase, as [`http::HeaderMap`] stores names).
///
/// Not registered with IANA. The Stainless-generated SDKs (openai-python, openai-node) read it
/// before `Retry-After`; whether api.openai.com sends it is unverified, so it is optional.
/// `Retry-After` itself is [`http::header::RETRY_AFTER`].
pub const RETRY_AFTER_MS: &str = "retry-after-ms";

/// `retry-after-ms` as a parsed header name: looking a header up by `&str` parses the name on
/// every lookup, by `&HeaderName` it does not.
static RETRY_AFTER_MS_NAME: http::HeaderName = http::HeaderName::from_static(RETRY_AFTER_MS);

/// Where a [`Hint`] came from: which header, in which form.
///
/// Carried for telemetry and logs ("waiting 60 s (retry-after)"), and so a caller can trust
/// some sources more than others.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HintSource {
    /// `retry-after-ms`: milliseconds, possibly fractional.
    RetryAfterMs,
    /// `Retry-After` as delta-seconds (`120`, or fractional `1.5`).
    RetryAfterSeconds,
    /// `Retry-After` as an HTTP-date.
    RetryAfterDate,
    /// An epoch-second reset header (`x-ratelimit-reset: 1789683711`).
    EpochReset,
}

impl HintSource {
    /// A short stable label for telemetry: `retry-after-ms`, `retry-after`, `retry-after-date`,
    /// `epoch-reset`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::RetryAfterMs => "retry-after-ms",
            Self::RetryAfterSeconds => "retry-after",
            Self::RetryAfterDate => "retry-after-date",
            Self::EpochReset => "epoch-reset",
        }
    }
}

/// How long a server asked us to wait, and which header said so.
///
/// A hint beats local backoff: when a response carries one, the wait is the server's (subject
/// to the [`Clamp`]); without one the caller backs off on its own schedule.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use http::{HeaderMap, HeaderValue};
/// use ratewise_core::hint::{Clamp, Hint, HintSource};
///
/// let mut headers = HeaderMap::new();
/// headers.insert("retry-after", HeaderValue::from_static("60"));
/// let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_789_683_651);
///
/// let hint = Hint::from_headers(&headers, now).unwrap();
/// assert_eq!(hint, Hint::new(Duration::from_secs(60), HintSource::RetryAfterSeconds));
/// assert_eq!(Clamp::default().apply(hint.wait), Ok(Duration::from_secs(60)));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Hint {
    /// How long to wait from `now`; zero means "retry now".
    pub wait: Duration,
    /// Which header, in which form.
    pub source: HintSource,
}

impl Hint {
    /// A hint to wait `wait`, as told by `source` (for provider crates reading their own headers).
    pub const fn new(wait: Duration, source: HintSource) -> Self {
        Self { wait, source }
    }

    /// The hint in a response's generic headers: `retry-after-ms`, then `Retry-After`.
    ///
    /// Precedence follows openai-python and openai-node: `retry-after-ms` first (it is the more
    /// precise of the two), then `Retry-After` as seconds or as an HTTP-date. A header that is
    /// present but unparseable (garbage, non-UTF-8) is skipped, not fatal: the next one is
    /// tried. Names match case-insensitively; of repeated headers only the first value is read.
    /// Provider-specific reset headers are not consulted here; see [`Hint::epoch_reset`].
    pub fn from_headers(headers: &HeaderMap, now: SystemTime) -> Option<Self> {
        header_bytes(headers, &RETRY_AFTER_MS_NAME)
            .and_then(Self::retry_after_ms)
            .or_else(|| header_bytes(headers, RETRY_AFTER).and_then(|v| Self::retry_after(v, now)))
    }

    /// A `Retry-After` value as a hint, with its form as the source; see [`parse_retry_after`].
    pub fn retry_after(value: &[u8], now: SystemTime) -> Option<Self> {
        let value = value.trim_ascii();
        if value.first()?.is_ascii_digit() {
            let wait = decimal::parse(value, Unit::Seconds)?;
            Some(Self::new(wait, HintSource::RetryAfterSeconds))
        } else {
            let at = parse_http_date(value, now)?;
            Some(Self::new(wait_until(at, now), HintSource::RetryAfterDate))
        }
    }

    /// A `retry-after-ms` value as a hint; see [`parse_retry_after_ms`].
    pub fn retry_after_ms(value: &[u8]) -> Option<Self> {
        parse_retry_after_ms(value).map(|wait| Self::new(wait, HintSource::RetryAfterMs))
    }

    /// An epoch-second reset value as a hint; see [`parse_epoch_reset`].
    pub fn epoch_reset(value: &[u8], now: SystemTime) -> Option<Self> {
        parse_epoch_reset(value, now).map(|wait| Self::new(wait, HintSource::EpochReset))
    }
}

/// Parses a `Retry-After` value, delta-seconds or HTTP-date, into the wait it asks for.
///
/// - delta-seconds: `120` is 120 s; a fraction is honoured (`1.5` is 1.5 s, as openai-python
///   reads it); a value past `Duration::MAX` saturates to it;
/// - HTTP-date, in any form [`parse_http_date`] reads: the time from `now` until then, zero if it
///   is already past ("retry now").
///
/// Whitespace around the value is ignored. Empty, negative, `+1`, hex, exponent forms and
/// anything else return `None`, so the caller falls back to backoff.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use ratewise_core::hint::parse_retry_after;
///
/// let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_792_566_400); // 2026-10-21 07:06:40
/// assert_eq!(parse_retry_after(b"120", now), Some(Duration::from_secs(120)));
/// assert_eq!(
///     parse_retry_after(b"Wed, 21 Oct 2026 07:28:00 GMT", now),
///     Some(Duration::from_secs(1280))
/// );
/// assert_eq!(parse_retry_after(b"Sun, 06 Nov 1994 08:49:37 GMT", now), Some(Duration::ZERO));
/// assert_eq!(parse_retry_after(b"-1", now), None);
/// ```
pub fn parse_retry_after(value: &[u8], now: SystemTime) -> Option<Duration> {
    Hint::retry_after(value, now).map(|hint| hint.wait)
}

/// Parses a `retry-after-ms` value: milliseconds, fractional allowed (`1.5` is 1.5 ms).
///
/// Same number grammar as [`parse_retry_after`]'s delta-seconds; saturates at `Duration::MAX`.
///
/// ```
/// use std::time::Duration;
/// use ratewise_core::hint::parse_retry_after_ms;
///
/// assert_eq!(parse_retry_after_ms(b"644"), Some(Duration::from_millis(644)));
/// assert_eq!(parse_retry_after_ms(b" 9816.5 "), Some(Duration::from_micros(9_816_500)));
/// assert_eq!(parse_retry_after_ms(b"1e3"), None);
/// ```
pub fn parse_retry_after_ms(value: &[u8]) -> Option<Duration> {
    decimal::parse(value.trim_ascii(), Unit::Millis)
}

/// Parses an epoch-second timestamp (`x-ratelimit-reset: 1789683711`) into the instant it names.
///
/// Seconds since 1970-01-01T00:00:00Z, UTC, as GitHub and SendGrid send them; a fraction is
/// honoured. An instant past `SystemTime`'s range saturates to its end. This does not guess
/// whether a number is an epoch or a delta (some APIs send `X-RateLimit-Reset` as seconds
/// *remaining*): the provider crate knows its dialect and picks the parser.
pub fn parse_epoch_seconds(value: &[u8]) -> Option<SystemTime> {
    let since_epoch = decimal::parse(value.trim_ascii(), Unit::Seconds)?;
    Some(wall::saturating_add(UNIX_EPOCH, since_epoch))
}

/// Parses an epoch-second reset into the wait from `now` until it; zero if it is already past.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use ratewise_core::hint::parse_epoch_reset;
///
/// let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_789_683_651);
/// assert_eq!(parse_epoch_reset(b"1789683711", now), Some(Duration::from_secs(60)));
/// assert_eq!(parse_epoch_reset(b"1392815263", now), Some(Duration::ZERO));
/// ```
pub fn parse_epoch_reset(value: &[u8], now: SystemTime) -> Option<Duration> {
    parse_epoch_seconds(value).map(|at| wait_until(at, now))
}

/// Parses a server's retry decision (`x-should-retry`, `Stripe-Should-Retry`): `true` or
/// `false`, case-insensitive, surrounding whitespace ignored; anything else is `None`.
///
/// ```
/// use ratewise_core::hint::parse_should_retry;
///
/// assert_eq!(parse_should_retry(b" TRUE "), Some(true));
/// assert_eq!(parse_should_retry(b"false"), Some(false));
/// assert_eq!(parse_should_retry(b"1"), None);
/// ```
pub fn parse_should_retry(value: &[u8]) -> Option<bool> {
    let value = value.trim_ascii();
    if value.eq_ignore_ascii_case(b"true") {
        Some(true)
    } else if value.eq_ignore_ascii_case(b"false") {
        Some(false)
    } else {
        None
    }
}

/// The bytes of the first `name` header in `headers`, if any; names match case-insensitively.
///
/// The one lookup every hint reader shares, so provider crates read their reset headers the same
/// way: the first of repeated values wins, the value is raw bytes (non-UTF-8 is the parser's
/// problem, not the map's), and an invalid name is simply absent.
pub fn header_bytes<K: AsHeaderName>(headers: &HeaderMap, name: K) -> Option<&[u8]> {
    headers.get(name).map(http::HeaderValue::as_bytes)
}

/// The first `name` header as a non-negative integer (`X-RateLimit-Remaining: 499`), if it is
/// one: surrounding whitespace is ignored; a negative, fractional, non-UTF-8 or absent value is
/// `None`. The count readers of `X-RateLimit-Limit`/`-Remaining` share.
///
/// ```
/// use http::{HeaderMap, HeaderValue};
/// use ratewise_core::hint::header_u64;
///
/// let mut headers = HeaderMap::new();
/// headers.insert("x-ratelimit-remaining", HeaderValue::from_static(" 499 "));
/// headers.insert("x-ratelimit-limit", HeaderValue::from_static("-1"));
/// assert_eq!(header_u64(&headers, "x-ratelimit-remaining"), Some(499));
/// assert_eq!(header_u64(&headers, "x-ratelimit-limit"), None);
/// assert_eq!(header_u64(&headers, "x-ratelimit-reset"), None);
/// ```
pub fn header_u64<K: AsHeaderName>(headers: &HeaderMap, name: K) -> Option<u64> {
    std::str::from_utf8(header_bytes(headers, name)?)
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The wait from `now` until `at`: zero once `at` is past.
fn wait_until(at: SystemTime, now: SystemTime) -> Duration {
    at.duration_since(now).unwrap_or(Duration::ZERO)
}

/// The clamp policy: a server hint longer than `max` is not slept on.
///
/// A client that sleeps for whatever `Retry-After` says can be parked for hours by one bad
/// response. Past the clamp the caller gets [`HintTooLong`] carrying the full wait, so a queue
/// can park the job until then instead of holding a worker. The default, 120 s, matches
/// openai-python's `MAX_RETRY_AFTER_DELAY`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Clamp {
    max: Duration,
}

impl Clamp {
    /// The default longest wait obeyed at the client layer: 120 s.
    pub const DEFAULT_MAX: Duration = Duration::from_secs(120);

    /// A clamp that obeys hints up to `max`.
    pub const fn new(max: Duration) -> Self {
        Self { max }
    }

    /// The longest hint obeyed.
    pub const fn max(&self) -> Duration {
        self.max
    }

    /// `Ok(wait)` when the hint may be slept on, else the typed refusal carrying the full wait.
    pub fn apply(&self, wait: Duration) -> Result<Duration, HintTooLong> {
        if wait <= self.max {
            Ok(wait)
        } else {
            Err(HintTooLong {
                wait,
                max: self.max,
            })
        }
    }
}

impl Default for Clamp {
    fn default() -> Self {
        Self::new(Self::DEFAULT_MAX)
    }
}

/// A server asked for a wait longer than the clamp allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "server asked to wait {wait:?}, longer than the {max:?} this client sleeps; park the work and retry after the wait"
)]
#[non_exhaustive]
pub struct HintTooLong {
    /// The full wait the server asked for.
    pub wait: Duration,
    /// The clamp that refused it.
    pub max: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderName, HeaderValue};

    /// 2026-09-17T22:20:51Z: one minute before GitHub's sample `x-ratelimit-reset: 1789683711`.
    fn now() -> SystemTime {
        at(1_789_683_651)
    }

    fn at(unix_seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(unix_seconds)
    }

    fn secs(s: u64) -> Option<Duration> {
        Some(Duration::from_secs(s))
    }

    fn headers(pairs: &[(&str, &[u8])]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_bytes(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn retry_after_delta_seconds_from_real_responses_are_that_many_seconds() {
        let cases: &[(&[u8], Option<Duration>)] = &[
            (b"60", secs(60)),   // GitHub secondary rate limit
            (b"120", secs(120)), // RFC 9110 §10.2.3
            (b"0", secs(0)),
            (b"007", secs(7)),
            (b"18446744073709551615", secs(u64::MAX)),
        ];
        for (value, want) in cases {
            assert_eq!(parse_retry_after(value, now()), *want, "{value:?}");
            let hint = Hint::retry_after(value, now()).unwrap();
            assert_eq!(hint.source, HintSource::RetryAfterSeconds);
        }
    }

    #[test]
    fn retry_after_http_date_is_read_in_all_three_rfc_forms() {
        let before = at(784_111_777 - 37); // 1994-11-06T08:49:00Z
        for value in [
            &b"Sun, 06 Nov 1994 08:49:37 GMT"[..], // IMF-fixdate
            b"Sunday, 06-Nov-94 08:49:37 GMT",     // RFC 850
            b"Sun Nov  6 08:49:37 1994",           // asctime
            b"Sun Nov 06 08:49:37 1994",           // asctime, zero-padded day
            b"sun, 06 nov 1994 08:49:37 gmt",      // names in any case
            b"Sun,  06 Nov 1994   08:49:37 UTC",   // runs of spaces, UTC
            b"Sunday, 06 Nov 1994 08:49:37 GMT",   // long weekday in IMF form
            b"Sun, 06-Nov-1994 08:49:37 GMT",      // four-digit year in RFC 850 form
            b"Sun, 6 Nov 1994 08:49:37 GMT",       // one-digit day
        ] {
            let hint = Hint::retry_after(value, before);
            assert_eq!(
                hint,
                Some(Hint::new(
                    Duration::from_secs(37),
                    HintSource::RetryAfterDate
                )),
                "{}",
                String::from_utf8_lossy(value)
            );
        }
        assert_eq!(
            parse_http_date(b"Fri, 31 Dec 1999 23:59:59 GMT", now()),
            Some(at(946_684_799))
        );
        // The article's example, seen 1280 s before.
        assert_eq!(
            parse_retry_after(b"Wed, 21 Oct 2026 07:28:00 GMT", at(1_792_567_680 - 1280)),
            secs(1280)
        );
    }

    #[test]
    fn retry_after_http_date_in_the_past_means_retry_now() {
        assert_eq!(
            parse_retry_after(b"Sun, 06 Nov 1994 08:49:37 GMT", now()),
            secs(0)
        );
        assert_eq!(
            parse_retry_after(b"Thu, 01 Jan 1970 00:00:00 GMT", now()),
            secs(0)
        );
        assert_eq!(
            parse_retry_after(b"Sat, 01 Jan 0000 00:00:00 GMT", now()),
            secs(0)
        );
    }

    #[test]
    fn retry_after_fractional_seconds_are_honoured_like_openai_python() {
        assert_eq!(
            parse_retry_after(b"1.5", now()),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            parse_retry_after(b"0.25", now()),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            parse_retry_after(b"9.816", now()),
            Some(Duration::from_millis(9816))
        );
    }

    #[test]
    fn retry_after_tolerates_surrounding_whitespace() {
        assert_eq!(parse_retry_after(b"  120\t", now()), secs(120));
        assert_eq!(parse_retry_after(b"\t60 ", now()), secs(60));
        let date = parse_retry_after(b" Sun, 06 Nov 1994 08:49:37 GMT  ", at(784_111_777 - 1));
        assert_eq!(date, secs(1));
        assert_eq!(
            parse_retry_after_ms(b" 644 "),
            Some(Duration::from_millis(644))
        );
        assert_eq!(
            parse_epoch_seconds(b" 1789683711\t"),
            Some(at(1_789_683_711))
        );
    }

    #[test]
    fn retry_after_garbage_is_no_hint_so_the_caller_backs_off() {
        let garbage: &[&[u8]] = &[
            b"",
            b"   ",
            b"-1",
            b"-0",
            b"+1",
            b"0x10",
            b"1e3",
            b"1.5e3",
            b"1E3",
            b".5",
            b"5.",
            b"1,5",
            b"12 0",
            b"120s",
            b"inf",
            b"NaN",
            b"soon",
            b"\xff\xfe",
            b"Sun, 06 Nov 1994",               // no time
            b"Sun, 06 Nov 1994 08:49:37",      // IMF without zone
            b"Sun, 06 Nov 1994 08:49:37 PST",  // not GMT
            b"Sun, 06 Nov 94 08:49:37 GMT",    // two-digit year in IMF form
            b"06 Nov 1994 08:49:37 GMT",       // no weekday
            b"Sun 06 Nov 1994 08:49:37 GMT",   // no comma
            b"Foo, 06 Nov 1994 08:49:37 GMT",  // not a weekday
            b"Sun, 06 Foo 1994 08:49:37 GMT",  // not a month
            b"Sun, 32 Dec 1994 08:49:37 GMT",  // no 32nd
            b"Sun, 00 Dec 1994 08:49:37 GMT",  // no 0th
            b"Sun, 31 Nov 1994 08:49:37 GMT",  // November has 30 days
            b"Sun, 30 Feb 1994 08:49:37 GMT",  // February never has 30
            b"Sun, 29 Feb 2026 08:49:37 GMT",  // 2026 is not a leap year
            b"Sun, 29 Feb 1900 08:49:37 GMT",  // 1900 is not a leap year
            b"Sun, 06 Nov 1994 24:00:00 GMT",  // no hour 24
            b"Sun, 06 Nov 1994 08:60:00 GMT",  // no minute 60
            b"Sun, 06 Nov 1994 08:49:61 GMT",  // at most a leap second
            b"Sun, 06 Nov 1994 8:49:37 GMT",   // one-digit hour
            b"Sun, 06 Nov 19945 08:49:37 GMT", // five-digit year
            b"Sun, 06 Nov 1994 08:49:37 GMT extra",
            b"Sunday, 06-Nov-94-01 08:49:37 GMT",
            b"Sun Nov  6 08:49:37 94", // two-digit year in asctime
        ];
        for value in garbage {
            let shown = String::from_utf8_lossy(value);
            assert_eq!(
                parse_retry_after(value, now()),
                None,
                "Retry-After {shown:?}"
            );
            assert_eq!(
                parse_retry_after_ms(value),
                None,
                "retry-after-ms {shown:?}"
            );
            assert_eq!(parse_epoch_reset(value, now()), None, "reset {shown:?}");
        }
    }

    #[test]
    fn retry_after_too_large_for_a_duration_saturates_and_the_clamp_refuses_it() {
        let wait = parse_retry_after(b"99999999999999999999", now()).unwrap();
        assert_eq!(wait, Duration::MAX);
        assert_eq!(
            parse_retry_after_ms(b"99999999999999999999999999"),
            Some(Duration::MAX)
        );
        let refused = Clamp::default().apply(wait).unwrap_err();
        assert_eq!(refused.wait, Duration::MAX);
    }

    #[test]
    fn http_date_accepts_29_february_only_in_leap_years() {
        assert!(parse_http_date(b"Thu, 29 Feb 2024 00:00:00 GMT", now()).is_some());
        assert!(parse_http_date(b"Tue, 29 Feb 2000 00:00:00 GMT", now()).is_some());
        assert!(parse_http_date(b"Sun, 29 Feb 2026 00:00:00 GMT", now()).is_none());
        assert!(parse_http_date(b"Thu, 29 Feb 1900 00:00:00 GMT", now()).is_none());
    }

    #[test]
    fn http_date_weekday_need_not_agree_with_the_date() {
        let right = parse_http_date(b"Sun, 06 Nov 1994 08:49:37 GMT", now());
        assert_eq!(
            parse_http_date(b"Mon, 06 Nov 1994 08:49:37 GMT", now()),
            right
        );
        assert_eq!(
            parse_http_date(b"Friday, 06-Nov-94 08:49:37 GMT", now()),
            right
        );
    }

    #[test]
    fn http_date_leap_second_reads_as_the_next_second() {
        assert_eq!(
            parse_http_date(b"Sat, 31 Dec 2016 23:59:60 GMT", now()),
            parse_http_date(b"Sun, 01 Jan 2017 00:00:00 GMT", now())
        );
    }

    #[test]
    fn rfc850_two_digit_years_use_the_fifty_year_rule_relative_to_now() {
        let in_2026 = now();
        let year = |value: &[u8], now| parse_http_date(value, now).map(format_http_date);
        let cases: &[(&[u8], &str)] = &[
            (b"Sunday, 06-Nov-94 08:49:37 GMT", "1994"),
            (b"Sunday, 06-Nov-30 08:49:37 GMT", "2030"),
            (b"Sunday, 06-Nov-76 08:49:37 GMT", "2076"), // exactly 50 years ahead: future
            (b"Sunday, 06-Nov-77 08:49:37 GMT", "1977"), // 51 years ahead: the past century
            (b"Sunday, 06-Nov-00 08:49:37 GMT", "2000"),
        ];
        for (value, want) in cases {
            let got = year(value, in_2026).unwrap();
            assert!(got.contains(want), "{got} should be in {want}");
        }
        // Late in a century, small two-digit years are in the next one.
        let in_2090 = parse_http_date(b"Sun, 01 Jan 2090 00:00:00 GMT", now()).unwrap();
        let got = year(b"Monday, 06-Nov-10 08:49:37 GMT", in_2090).unwrap();
        assert!(got.contains("2110"), "{got}");
        // A retry date written in RFC 850 form, one minute ahead.
        let ahead = parse_retry_after(b"Thursday, 17-Sep-26 22:21:51 GMT", now());
        assert_eq!(ahead, secs(60));
    }

    #[test]
    fn http_date_years_up_to_9999_do_not_overflow() {
        assert_eq!(
            parse_http_date(b"Fri, 31 Dec 9999 23:59:59 GMT", now()),
            Some(at(253_402_300_799))
        );
        assert_eq!(
            parse_retry_after(b"Fri, 31 Dec 9999 23:59:59 GMT", now()),
            secs(253_402_300_799 - 1_789_683_651)
        );
        assert_eq!(
            parse_http_date(b"Sat, 01 Jan 0000 00:00:00 GMT", now()),
            Some(UNIX_EPOCH - Duration::from_secs(62_167_219_200))
        );
    }

    #[test]
    fn retry_after_ms_reads_fractional_milliseconds() {
        let cases: &[(&[u8], Option<Duration>)] = &[
            (b"644", Some(Duration::from_millis(644))),
            (b"9816", Some(Duration::from_millis(9816))),
            (b"1.5", Some(Duration::from_micros(1500))),
            (b"0.000001", Some(Duration::from_nanos(1))),
            (b"0", Some(Duration::ZERO)),
        ];
        for (value, want) in cases {
            assert_eq!(parse_retry_after_ms(value), *want, "{value:?}");
        }
        assert_eq!(
            Hint::retry_after_ms(b"644"),
            Some(Hint::new(
                Duration::from_millis(644),
                HintSource::RetryAfterMs
            ))
        );
    }

    #[test]
    fn epoch_reset_from_github_and_sendgrid_is_the_wait_until_then() {
        assert_eq!(parse_epoch_seconds(b"1789683711"), Some(at(1_789_683_711)));
        assert_eq!(parse_epoch_reset(b"1789683711", now()), secs(60));
        assert_eq!(
            Hint::epoch_reset(b"1789683711", now()),
            Some(Hint::new(Duration::from_secs(60), HintSource::EpochReset))
        );
        assert_eq!(parse_epoch_seconds(b"1392815263"), Some(at(1_392_815_263)));
        assert_eq!(
            parse_epoch_seconds(b"1392815263.5"),
            Some(at(1_392_815_263) + Duration::from_millis(500))
        );
    }

    #[test]
    fn epoch_reset_in_the_past_means_retry_now() {
        assert_eq!(parse_epoch_reset(b"1392815263", now()), secs(0)); // SendGrid's 2014 sample
        assert_eq!(parse_epoch_reset(b"0", now()), secs(0));
    }

    #[test]
    fn epoch_reset_beyond_system_time_saturates_instead_of_overflowing() {
        let end = parse_epoch_seconds(b"99999999999999999999").unwrap();
        assert!(end > at(u64::from(u32::MAX)));
        let wait = parse_epoch_reset(b"99999999999999999999", now()).unwrap();
        assert!(wait > Duration::from_secs(1 << 40));
    }

    #[test]
    fn headers_prefer_retry_after_ms_over_retry_after() {
        let map = headers(&[("retry-after", b"60"), ("retry-after-ms", b"644")]);
        assert_eq!(
            Hint::from_headers(&map, now()),
            Some(Hint::new(
                Duration::from_millis(644),
                HintSource::RetryAfterMs
            ))
        );
    }

    #[test]
    fn headers_fall_back_to_retry_after_when_retry_after_ms_is_unusable() {
        for bad in [&b"soon"[..], b"-5", b"\xff\xfe"] {
            let map = headers(&[("retry-after-ms", bad), ("retry-after", b"60")]);
            assert_eq!(
                Hint::from_headers(&map, now()),
                Some(Hint::new(
                    Duration::from_secs(60),
                    HintSource::RetryAfterSeconds
                ))
            );
        }
        let date = headers(&[("retry-after", b"Thu, 17 Sep 2026 22:21:51 GMT")]);
        assert_eq!(
            Hint::from_headers(&date, now()),
            Some(Hint::new(
                Duration::from_secs(60),
                HintSource::RetryAfterDate
            ))
        );
    }

    #[test]
    fn headers_without_a_usable_hint_give_none() {
        assert_eq!(Hint::from_headers(&HeaderMap::new(), now()), None);
        let map = headers(&[
            ("x-ratelimit-reset", b"1789683711"),
            ("retry-after", b"later"),
        ]);
        assert_eq!(Hint::from_headers(&map, now()), None);
    }

    #[test]
    fn headers_repeated_only_the_first_value_counts() {
        let map = headers(&[("retry-after", b"60"), ("retry-after", b"120")]);
        assert_eq!(Hint::from_headers(&map, now()).map(|h| h.wait), secs(60));
        let map = headers(&[("retry-after", b"later"), ("retry-after", b"120")]);
        assert_eq!(Hint::from_headers(&map, now()), None);
        let map = headers(&[
            ("x-ratelimit-reset", b"1789683711"),
            ("x-ratelimit-reset", b"1"),
        ]);
        assert_eq!(
            header_bytes(&map, "x-ratelimit-reset"),
            Some(&b"1789683711"[..])
        );
    }

    #[test]
    fn headers_match_names_case_insensitively() {
        let map = headers(&[("Retry-After-Ms", b"644"), ("RETRY-AFTER", b"60")]);
        assert_eq!(
            Hint::from_headers(&map, now()).map(|h| h.source),
            Some(HintSource::RetryAfterMs)
        );
        let map = headers(&[("X-RateLimit-Reset", b"1392815263")]); // SendGrid's spelling
        assert_eq!(
            header_bytes(&map, "X-RATELIMIT-RESET"),
            Some(&b"1392815263"[..])
        );
        assert_eq!(
            header_bytes(&map, "x-ratelimit-reset"),
            Some(&b"1392815263"[..])
        );
    }

    #[test]
    fn headers_with_non_utf8_values_are_read_as_bytes_not_rejected() {
        let map = headers(&[("x-note", b"caf\xe9"), ("retry-after", b"60")]);
        assert_eq!(Hint::from_headers(&map, now()).map(|h| h.wait), secs(60));
        let map = headers(&[("retry-after", b"6\xb00")]);
        assert_eq!(Hint::from_headers(&map, now()), None);
        assert_eq!(header_bytes(&map, "retry-after"), Some(&b"6\xb00"[..]));
    }

    #[test]
    fn header_bytes_of_an_invalid_name_is_absent() {
        let map = headers(&[("retry-after", b"60")]);
        assert_eq!(header_bytes(&map, "retry after"), None);
        assert_eq!(header_bytes(&map, ""), None);
        assert_eq!(header_bytes(&map, "r\u{e9}try"), None);
    }

    #[test]
    fn hint_sources_have_stable_telemetry_labels() {
        assert_eq!(HintSource::RetryAfterMs.as_str(), "retry-after-ms");
        assert_eq!(HintSource::RetryAfterSeconds.as_str(), "retry-after");
        assert_eq!(HintSource::RetryAfterDate.as_str(), "retry-after-date");
        assert_eq!(HintSource::EpochReset.as_str(), "epoch-reset");
    }

    #[test]
    fn clamp_passes_waits_up_to_its_max_and_refuses_longer_ones_with_the_full_wait() {
        let clamp = Clamp::default();
        assert_eq!(
            clamp.apply(Duration::from_secs(120)),
            Ok(Duration::from_secs(120))
        );
        let err = clamp.apply(Duration::from_secs(3600)).unwrap_err();
        assert_eq!(err.wait, Duration::from_secs(3600));
        assert_eq!(err.max, Duration::from_secs(120));
    }
}
