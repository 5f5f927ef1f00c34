//! [`SenderType`]: what kind of number a message is sent from, which sets its throughput.
//!
//! Twilio queues every message per sending number and drains the queue at the sender's rate
//! (errors 21611 and 30001 docs; support article 4411046744987):
//!
//! | sender | inferred from `From` | segments/s |
//! |---|---|---|
//! | US/CA long code | `+` and digits, not toll-free | 1 |
//! | US/CA toll-free | `+1` and an 800, 833, 844, 855, 866, 877 or 888 area code | 3 |
//! | short code | 3 to 8 digits without `+` | 100 |
//! | anything else (alphanumeric id, `whatsapp:`…) | | 1 (the long-code rate, the safe side) |
//!
//! High-throughput toll-free (25 to 150 MPS) and other upgrades are not visible in the number:
//! override a sender's type or rate in [`TwilioLimits`](crate::TwilioLimits).

use std::fmt;

use ratewise_core::limit::Rate;

/// The kind of sender a `From` value is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SenderType {
    /// A standard 10-digit number (US/CA long code, or any other E.164 number): 1 segment/s.
    LongCode,
    /// A US/CA toll-free number: 3 segments/s by default.
    TollFree,
    /// A short code (5 or 6 digits in the US): 100 segments/s.
    ShortCode,
    /// Anything else (an alphanumeric sender id, a `whatsapp:` or `messenger:` address):
    /// paced at the long-code rate unless overridden.
    Other,
}

/// North American toll-free area codes.
const TOLL_FREE_AREA_CODES: [&str; 7] = ["800", "833", "844", "855", "866", "877", "888"];

impl SenderType {
    /// Infers the type from a `From` value (see the [module docs](self)).
    ///
    /// ```
    /// use ratewise_twilio::SenderType;
    ///
    /// assert_eq!(SenderType::infer("+15005550006"), SenderType::LongCode);
    /// assert_eq!(SenderType::infer("+18005550100"), SenderType::TollFree);
    /// assert_eq!(SenderType::infer("24273"), SenderType::ShortCode);
    /// assert_eq!(SenderType::infer("ACME"), SenderType::Other);
    /// ```
    pub fn infer(from: &str) -> Self {
        let from = from.trim();
        if let Some(digits) = from.strip_prefix('+') {
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Self::Other;
            }
            let toll_free = digits.len() == 11
                && digits.starts_with('1')
                && TOLL_FREE_AREA_CODES
                    .iter()
                    .any(|code| digits.get(1..4) == Some(*code));
            return if toll_free {
                Self::TollFree
            } else {
                Self::LongCode
            };
        }
        if (3..=8).contains(&from.len()) && from.bytes().all(|b| b.is_ascii_digit()) {
            return Self::ShortCode;
        }
        Self::Other
    }

    /// Twilio's documented default throughput for this type, in segments.
    pub const fn default_rate(&self) -> Rate {
        match self {
            Self::LongCode | Self::Other => Rate::per_second(1),
            Self::TollFree => Rate::per_second(3),
            Self::ShortCode => Rate::per_second(100),
        }
    }

    /// `long_code`, `toll_free`, `short_code` or `other`.
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::LongCode => "long_code",
            Self::TollFree => "toll_free",
            Self::ShortCode => "short_code",
            Self::Other => "other",
        }
    }
}

impl fmt::Display for SenderType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_classified_by_shape_and_area_code() {
        let cases = [
            ("+15005550006", SenderType::LongCode),
            ("+14155552671", SenderType::LongCode),
            ("+447700900123", SenderType::LongCode),
            ("+18005550100", SenderType::TollFree),
            ("+18335550100", SenderType::TollFree),
            ("+18885550100", SenderType::TollFree),
            (" +18665550100 ", SenderType::TollFree),
            ("+448005550100", SenderType::LongCode),
            ("+1800555010", SenderType::LongCode),
            ("24273", SenderType::ShortCode),
            ("898211", SenderType::ShortCode),
            ("123", SenderType::ShortCode),
            ("123456789", SenderType::Other),
            ("ACME", SenderType::Other),
            ("whatsapp:+14155552671", SenderType::Other),
            ("+", SenderType::Other),
            ("+1-800-555-0100", SenderType::Other),
            ("", SenderType::Other),
        ];
        for (from, expected) in cases {
            assert_eq!(SenderType::infer(from), expected, "{from:?}");
        }
    }

    #[test]
    fn default_rates_are_twilios() {
        assert_eq!(SenderType::LongCode.default_rate(), Rate::per_second(1));
        assert_eq!(SenderType::TollFree.default_rate(), Rate::per_second(3));
        assert_eq!(SenderType::ShortCode.default_rate(), Rate::per_second(100));
        assert_eq!(SenderType::Other.default_rate(), Rate::per_second(1));
    }
}
