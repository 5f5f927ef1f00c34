//! How many SMS segments a body takes, counted as carriers count them.
//!
//! Twilio's per-sender throughput is in *segments* per second, not messages, so the pacing cost
//! of a message is its segment count:
//!
//! - **GSM-7**, when every character is in the GSM 03.38 default alphabet or its extension
//!   table: up to **160** septets in one segment, else **153** per segment (7 septets go to the
//!   concatenation header). Extension characters (`^ { } \ [ ~ ] | €` and form feed) take two
//!   septets (escape + character), and a pair is never split across segments.
//! - **UCS-2** otherwise (one character outside GSM-7 switches the whole message): up to **70**
//!   UTF-16 code units in one segment, else **67** per segment. Characters outside the BMP
//!   (most emoji) take two units, a surrogate pair, never split across segments.
//!
//! An empty body is one segment (a message is still sent, as an MMS or an empty SMS).
//!
//! ```
//! use ratewise_twilio::segments::{Encoding, count};
//!
//! assert_eq!(count("Your code is 123456").count, 1);
//! assert_eq!(count(&"a".repeat(161)).count, 2);
//! let emoji = count("On my way 🚗");
//! assert_eq!((emoji.encoding, emoji.count), (Encoding::Ucs2, 1));
//! ```

/// The encoding a body is sent in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Encoding {
    /// The GSM 03.38 7-bit default alphabet (with its extension table).
    Gsm7,
    /// UCS-2 (UTF-16 code units): any body with a character outside GSM-7.
    Ucs2,
}

impl Encoding {
    /// Units that fit in a single-segment message: 160 septets or 70 UTF-16 units.
    pub const fn single(&self) -> usize {
        match self {
            Self::Gsm7 => 160,
            Self::Ucs2 => 70,
        }
    }

    /// Units per segment of a concatenated message: 153 septets or 67 UTF-16 units.
    pub const fn per_segment(&self) -> usize {
        match self {
            Self::Gsm7 => 153,
            Self::Ucs2 => 67,
        }
    }
}

/// A body's encoding, length in units and segment count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Segments {
    /// The encoding carriers will use.
    pub encoding: Encoding,
    /// Length in septets (GSM-7) or UTF-16 code units (UCS-2).
    pub units: usize,
    /// Segments sent (at least 1).
    pub count: u32,
}

/// The GSM 03.38 default alphabet (one septet each).
const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";

/// The GSM 03.38 extension table (escape + character: two septets each).
const GSM7_EXTENDED: &str = "\u{c}^{}\\[~]|€";

/// Septets `c` takes in GSM-7, or `None` when it is not in the alphabet.
pub fn gsm7_septets(c: char) -> Option<usize> {
    if GSM7_BASIC.contains(c) {
        Some(1)
    } else if GSM7_EXTENDED.contains(c) {
        Some(2)
    } else {
        None
    }
}

/// Counts the segments of `body` (see the [module docs](self) for the rules).
pub fn count(body: &str) -> Segments {
    let gsm: Option<Vec<usize>> = body.chars().map(gsm7_septets).collect();
    let (encoding, units) = match gsm {
        Some(septets) => (Encoding::Gsm7, septets),
        None => (
            Encoding::Ucs2,
            body.chars().map(char::len_utf16).collect::<Vec<_>>(),
        ),
    };
    let total: usize = units.iter().sum();
    let count = if total <= encoding.single() {
        1
    } else {
        split(&units, encoding.per_segment())
    };
    Segments {
        encoding,
        units: total,
        count,
    }
}

/// Segments needed when characters of `units` each are packed in order, none split, into
/// segments of `capacity` units.
fn split(units: &[usize], capacity: usize) -> u32 {
    let mut segments: u32 = 1;
    let mut used = 0;
    for &size in units {
        if used + size > capacity {
            segments = segments.saturating_add(1);
            used = 0;
        }
        used += size;
    }
    segments
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn seg(body: &str) -> (Encoding, usize, u32) {
        let s = count(body);
        (s.encoding, s.units, s.count)
    }

    #[test]
    fn gsm7_fits_160_in_one_and_153_per_segment_after() {
        assert_eq!(seg(""), (Encoding::Gsm7, 0, 1));
        assert_eq!(seg(&"a".repeat(160)), (Encoding::Gsm7, 160, 1));
        assert_eq!(seg(&"a".repeat(161)), (Encoding::Gsm7, 161, 2));
        assert_eq!(seg(&"a".repeat(306)), (Encoding::Gsm7, 306, 2));
        assert_eq!(seg(&"a".repeat(307)), (Encoding::Gsm7, 307, 3));
        assert_eq!(seg(&"a".repeat(459)), (Encoding::Gsm7, 459, 3));
    }

    #[test]
    fn gsm7_accented_letters_and_greek_stay_single_septet() {
        assert_eq!(seg("Café à Zürich, Δ Ω £5 ¿qué?"), (Encoding::Gsm7, 27, 1));
    }

    #[test]
    fn extended_characters_count_double_and_are_not_split() {
        assert_eq!(seg("€"), (Encoding::Gsm7, 2, 1));
        assert_eq!(seg("{[]}"), (Encoding::Gsm7, 8, 1));
        assert_eq!(seg(&"€".repeat(80)), (Encoding::Gsm7, 160, 1));
        assert_eq!(seg(&"€".repeat(81)), (Encoding::Gsm7, 162, 2));
        // 152 plain septets, then an escape pair: the pair moves whole to segment 2.
        let body = format!("{}€{}", "a".repeat(152), "a".repeat(10));
        assert_eq!(seg(&body), (Encoding::Gsm7, 164, 2));
        let body = format!("{}€{}", "a".repeat(152), "a".repeat(152));
        assert_eq!(
            seg(&body),
            (Encoding::Gsm7, 306, 3),
            "no split pair: 152 | 2+151 | 1"
        );
    }

    #[test]
    fn one_non_gsm_character_switches_the_whole_body_to_ucs2() {
        assert_eq!(seg(&"a".repeat(70)), (Encoding::Gsm7, 70, 1));
        let body = format!("{}ç", "a".repeat(69)); // ç (lower case) is not GSM-7
        assert_eq!(seg(&body), (Encoding::Ucs2, 70, 1));
        let body = format!("{}ç", "a".repeat(70));
        assert_eq!(seg(&body), (Encoding::Ucs2, 71, 2));
        assert_eq!(seg(&"ж".repeat(134)), (Encoding::Ucs2, 134, 2));
        assert_eq!(seg(&"ж".repeat(135)), (Encoding::Ucs2, 135, 3));
        assert_eq!(seg("你好"), (Encoding::Ucs2, 2, 1));
    }

    #[test]
    fn emoji_take_two_units_and_a_surrogate_pair_is_not_split() {
        assert_eq!(seg("👍"), (Encoding::Ucs2, 2, 1));
        assert_eq!(seg(&"😀".repeat(35)), (Encoding::Ucs2, 70, 1));
        assert_eq!(seg(&"😀".repeat(36)), (Encoding::Ucs2, 72, 2));
        // 66 units, then a pair that would straddle 67: it moves to segment 2.
        let body = format!("{}😀{}", "ж".repeat(66), "ж".repeat(10));
        assert_eq!(seg(&body), (Encoding::Ucs2, 78, 2));
        let body = format!("{}😀{}", "ж".repeat(66), "ж".repeat(66));
        assert_eq!(seg(&body), (Encoding::Ucs2, 134, 3));
    }

    proptest! {
        #[test]
        fn segments_cover_the_units_and_never_exceed_one_per_unit(body in ".{0,400}") {
            let s = count(&body);
            let per = s.encoding.per_segment();
            prop_assert!(s.count >= 1);
            if s.units > s.encoding.single() {
                prop_assert!(s.count as usize * per >= s.units);
                prop_assert!(s.count as usize <= s.units);
            } else {
                prop_assert_eq!(s.count, 1);
            }
        }
    }
}
