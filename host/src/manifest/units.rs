//! Byte sizes (`"64MiB"`) and durations (`"250ms"`) as operators write them.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A number of bytes.
///
/// Parses from a plain number of bytes (`"65536"`) or a number with a unit (`"64MiB"`, `"10MB"`,
/// `"1.5GiB"`): see [`parse_size`]. Displays in the largest binary unit that represents it
/// exactly (`64MiB`, `1536KiB`), or in bytes (`1000B`); the display parses back to the same
/// value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// One kibibyte, 1024 bytes.
    pub const KIB: ByteSize = ByteSize(1 << 10);
    /// One mebibyte, 1024 KiB.
    pub const MIB: ByteSize = ByteSize(1 << 20);
    /// One gibibyte, 1024 MiB.
    pub const GIB: ByteSize = ByteSize(1 << 30);

    /// `n` kibibytes, saturating at `u64::MAX`.
    pub const fn kib(n: u64) -> ByteSize {
        ByteSize(n.saturating_mul(1 << 10))
    }

    /// `n` mebibytes, saturating at `u64::MAX`.
    pub const fn mib(n: u64) -> ByteSize {
        ByteSize(n.saturating_mul(1 << 20))
    }

    /// `n` gibibytes, saturating at `u64::MAX`.
    pub const fn gib(n: u64) -> ByteSize {
        ByteSize(n.saturating_mul(1 << 30))
    }

    /// The number of bytes.
    pub const fn bytes(self) -> u64 {
        self.0
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(&str, u64); 6] = [
            ("EiB", 1 << 60),
            ("PiB", 1 << 50),
            ("TiB", 1 << 40),
            ("GiB", 1 << 30),
            ("MiB", 1 << 20),
            ("KiB", 1 << 10),
        ];
        if self.0 != 0 {
            for (unit, factor) in UNITS {
                if self.0.is_multiple_of(factor) {
                    return write!(f, "{}{unit}", self.0 / factor);
                }
            }
        }
        write!(f, "{}B", self.0)
    }
}

impl FromStr for ByteSize {
    type Err = SizeError;

    fn from_str(s: &str) -> Result<ByteSize, SizeError> {
        parse_size(s)
    }
}

/// Why a string is not a byte size.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    /// Not a number followed by an optional unit.
    #[error("expected a number of bytes such as 65536 or \"64MiB\"")]
    Malformed,
    /// A number followed by something that is not a size unit.
    #[error("unknown unit `{0}`: expected B, KB, KiB, MB, MiB, GB, GiB, TB or TiB")]
    UnknownUnit(String),
    /// A fraction that does not come out to a whole number of bytes (`"0.1KiB"`).
    #[error("not a whole number of bytes")]
    Fractional,
    /// More than `u64::MAX` bytes.
    #[error("too large: at most 16EiB")]
    Overflow,
}

/// Parses a byte size: a number of bytes, optionally followed by a unit.
///
/// - The number is decimal digits with an optional fraction (`"1.5GiB"`); the result must be a
///   whole number of bytes.
/// - Units, case-insensitive: `B`; decimal `KB` `MB` `GB` `TB` (powers of 1000); binary `KiB`
///   `MiB` `GiB` `TiB` (powers of 1024). Spaces are allowed around the number and the unit
///   (`"64 MiB"`).
/// - Signs, exponents and digit separators are rejected.
///
/// The range a particular setting accepts (for example memory, 1MiB..=4GiB) is checked by the
/// caller, not here.
pub fn parse_size(s: &str) -> Result<ByteSize, SizeError> {
    let s = s.trim();
    let number_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(number_end);
    let unit = unit.trim_start();
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() || (number.contains('.') && fraction.is_empty()) || fraction.contains('.') {
        return Err(SizeError::Malformed);
    }
    let factor: u128 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        _ if unit.starts_with(|c: char| c.is_ascii_alphabetic()) => {
            return Err(SizeError::UnknownUnit(unit.to_owned()));
        }
        _ => return Err(SizeError::Malformed),
    };
    let whole: u128 = whole.parse().map_err(|_| SizeError::Overflow)?;
    let mut bytes = whole.checked_mul(factor).ok_or(SizeError::Overflow)?;
    if !fraction.is_empty() {
        // Exact arithmetic: fraction digits / 10^len, times the factor, must be whole bytes.
        let fraction = fraction.trim_end_matches('0');
        if fraction.len() > 30 {
            return Err(SizeError::Fractional);
        }
        let denominator = 10u128.pow(fraction.len() as u32);
        let numerator: u128 = if fraction.is_empty() {
            0
        } else {
            fraction.parse().map_err(|_| SizeError::Malformed)?
        };
        let scaled = numerator.checked_mul(factor).ok_or(SizeError::Overflow)?;
        if scaled % denominator != 0 {
            return Err(SizeError::Fractional);
        }
        bytes = bytes
            .checked_add(scaled / denominator)
            .ok_or(SizeError::Overflow)?;
    }
    u64::try_from(bytes)
        .map(ByteSize)
        .map_err(|_| SizeError::Overflow)
}

/// Why a string is not a duration.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Not a sequence of numbers with units.
    #[error("expected a duration such as \"250ms\", \"5s\" or \"2m\"")]
    Malformed,
    /// A bare number: its unit is ambiguous.
    #[error("missing unit after `{0}`: write \"{0}s\" for seconds or \"{0}ms\" for milliseconds")]
    MissingUnit(String),
    /// A number followed by something that is not a duration unit.
    #[error("unknown unit `{0}`: expected ms, s, m or h")]
    UnknownUnit(String),
    /// Longer than [`Duration::MAX`].
    #[error("too large")]
    Overflow,
}

/// Parses a duration: one or more whole numbers, each followed by a unit.
///
/// Units: `ms` (milliseconds), `s` (seconds), `m` (minutes), `h` (hours), lowercase. Parts add
/// up and may be separated by spaces: `"1m30s"`, `"1h 15m"`. A bare number is rejected, since its
/// unit would be a guess. Zero (`"0s"`) parses; settings that need a positive duration check that
/// themselves.
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(DurationError::Malformed);
    }
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits_end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits_end == 0 {
            return Err(DurationError::Malformed);
        }
        let (digits, tail) = rest.split_at(digits_end);
        let unit_end = tail
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_end);
        let value: u64 = digits.parse().map_err(|_| DurationError::Overflow)?;
        let part = match unit {
            "ms" => Some(Duration::from_millis(value)),
            "s" => Some(Duration::from_secs(value)),
            "m" => value.checked_mul(60).map(Duration::from_secs),
            "h" => value.checked_mul(3600).map(Duration::from_secs),
            "" if tail.trim().is_empty() => {
                return Err(DurationError::MissingUnit(digits.to_owned()));
            }
            "" => return Err(DurationError::Malformed),
            other => return Err(DurationError::UnknownUnit(other.to_owned())),
        };
        total = part
            .and_then(|part| total.checked_add(part))
            .ok_or(DurationError::Overflow)?;
        rest = tail.trim_start();
    }
    Ok(total)
}

/// Formats a duration the way [`parse_duration`] reads it: `"250ms"`, `"10s"`, `"1h"`,
/// `"1m30s"`. Sub-millisecond remainders are dropped.
pub fn format_duration(duration: Duration) -> String {
    let mut millis = duration.as_millis();
    if millis == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    for (unit, factor) in [("h", 3_600_000u128), ("m", 60_000), ("s", 1_000), ("ms", 1)] {
        if millis >= factor {
            out.push_str(&format!("{}{unit}", millis / factor));
            millis %= factor;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_plain_bytes_and_units() {
        let cases = [
            ("65536", 65_536),
            ("0", 0),
            ("512B", 512),
            ("512KiB", 512 * 1024),
            ("64MiB", 64 << 20),
            ("64 MiB", 64 << 20),
            (" 1GiB ", 1 << 30),
            ("1TiB", 1 << 40),
            ("10MB", 10_000_000),
            ("4kb", 4_000),
            ("4KB", 4_000),
            ("2gb", 2_000_000_000),
            ("1.5GiB", 3 << 29),
            ("1.5KiB", 1536),
            ("0.5kb", 500),
            ("2.0MiB", 2 << 20),
            ("18446744073709551615", u64::MAX),
        ];
        for (text, bytes) in cases {
            assert_eq!(parse_size(text), Ok(ByteSize(bytes)), "{text}");
        }
    }

    #[test]
    fn sizes_reject_malformed_input() {
        for text in [
            "", "lots", "MiB", "-1MiB", "+1MiB", "1.MiB", ".5MiB", "1.2.3MiB", "1e6", "1_000",
            "1 2MiB", "64MiB!",
        ] {
            assert!(parse_size(text).is_err(), "{text:?} parsed");
        }
        assert_eq!(parse_size("lots"), Err(SizeError::Malformed));
        assert_eq!(
            parse_size("64 megabytes"),
            Err(SizeError::UnknownUnit("megabytes".into()))
        );
        assert_eq!(parse_size("4k"), Err(SizeError::UnknownUnit("k".into())));
        assert_eq!(parse_size("0.1KiB"), Err(SizeError::Fractional));
        assert_eq!(parse_size("0.5B"), Err(SizeError::Fractional));
        assert_eq!(parse_size("18446744073709551616"), Err(SizeError::Overflow));
        assert_eq!(parse_size("16777216TiB"), Err(SizeError::Overflow));
        assert_eq!(
            parse_size("99999999999999999999999999999999999999999"),
            Err(SizeError::Overflow)
        );
    }

    #[test]
    fn size_error_message_shows_an_example() {
        assert_eq!(
            SizeError::Malformed.to_string(),
            "expected a number of bytes such as 65536 or \"64MiB\""
        );
    }

    #[test]
    fn sizes_display_exactly_and_round_trip() {
        let cases = [
            (0, "0B"),
            (1000, "1000B"),
            (1024, "1KiB"),
            (1536, "1536B"),
            (64 << 20, "64MiB"),
            (3 << 29, "1536MiB"),
            (1 << 30, "1GiB"),
            (u64::MAX, "18446744073709551615B"),
        ];
        for (bytes, text) in cases {
            assert_eq!(ByteSize(bytes).to_string(), text);
            assert_eq!(text.parse::<ByteSize>(), Ok(ByteSize(bytes)));
        }
        assert_eq!(ByteSize::kib(3).to_string(), "3KiB");
    }

    #[test]
    fn durations_parse_units_and_compounds() {
        let cases = [
            ("250ms", Duration::from_millis(250)),
            ("5s", Duration::from_secs(5)),
            ("2m", Duration::from_secs(120)),
            ("1h", Duration::from_secs(3600)),
            ("1m30s", Duration::from_secs(90)),
            ("1h 15m", Duration::from_secs(4500)),
            (" 1s 500ms ", Duration::from_millis(1500)),
            ("0s", Duration::ZERO),
        ];
        for (text, duration) in cases {
            assert_eq!(parse_duration(text), Ok(duration), "{text}");
        }
    }

    #[test]
    fn durations_reject_malformed_input() {
        assert_eq!(parse_duration(""), Err(DurationError::Malformed));
        assert_eq!(parse_duration("soon"), Err(DurationError::Malformed));
        assert_eq!(parse_duration("-5s"), Err(DurationError::Malformed));
        assert_eq!(parse_duration("1.5s"), Err(DurationError::Malformed));
        assert_eq!(
            parse_duration("5"),
            Err(DurationError::MissingUnit("5".into()))
        );
        assert_eq!(parse_duration("5 s"), Err(DurationError::Malformed));
        assert_eq!(
            parse_duration("5sec"),
            Err(DurationError::UnknownUnit("sec".into()))
        );
        assert_eq!(
            parse_duration("5S"),
            Err(DurationError::UnknownUnit("S".into()))
        );
        assert_eq!(
            parse_duration("99999999999999999999s"),
            Err(DurationError::Overflow)
        );
        assert_eq!(
            parse_duration("18446744073709551615h"),
            Err(DurationError::Overflow)
        );
    }

    #[test]
    fn durations_format_in_parseable_form() {
        for (duration, text) in [
            (Duration::ZERO, "0s"),
            (Duration::from_millis(250), "250ms"),
            (Duration::from_secs(10), "10s"),
            (Duration::from_secs(3600), "1h"),
            (Duration::from_secs(90), "1m30s"),
            (Duration::from_millis(1500), "1s500ms"),
        ] {
            assert_eq!(format_duration(duration), text);
            assert_eq!(parse_duration(text), Ok(duration));
        }
    }
}
