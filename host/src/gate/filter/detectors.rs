//! The built-in detectors: a pattern each, and for some a check the pattern cannot express
//! (Luhn for card numbers, the reserved ranges of US SSNs).
//!
//! Patterns use ASCII word boundaries and classes (`(?-u)`), so the whole set runs in the lazy
//! DFA whatever the text.

/// A built-in detector.
pub(super) struct Builtin {
    /// Its name, as in `redact` lists and `[REDACTED:name]`.
    pub name: &'static str,
    /// The regular expression.
    pub pattern: &'static str,
    /// A check on each match, when the pattern alone would match too much.
    pub check: Option<fn(&str) -> bool>,
}

/// Every built-in detector, in the order of `manifest::BUILTIN_DETECTORS`.
pub(super) const BUILTINS: &[Builtin] = &[
    Builtin {
        name: "email",
        pattern: r"(?i-u)\b[a-z0-9][a-z0-9._%+-]{0,63}@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,24}\b",
        check: None,
    },
    Builtin {
        name: "credit-card",
        pattern: r"(?-u)\b[2-6](?:[ -]?[0-9]){12,18}\b",
        check: Some(is_card_number),
    },
    Builtin {
        name: "ssn",
        pattern: r"(?-u)\b[0-9]{3}-[0-9]{2}-[0-9]{4}\b",
        check: Some(is_ssn),
    },
    Builtin {
        name: "aws-key",
        pattern: r"(?-u)\b(?:AKIA|ASIA|ABIA|ACCA|AIDA|AROA|AIPA|ANPA|ANVA|APKA)[0-9A-Z]{16}\b",
        check: None,
    },
    Builtin {
        name: "github-token",
        pattern: r"(?-u)\b(?:gh[pousr]_[A-Za-z0-9]{36,251}|github_pat_[A-Za-z0-9_]{22,242})\b",
        check: None,
    },
    Builtin {
        name: "slack-token",
        pattern: r"(?-u)\bxox[abposre]-[A-Za-z0-9-]{10,250}|https://hooks\.slack\.com/(?:services|workflows)/[A-Za-z0-9/_-]{20,}",
        check: None,
    },
    Builtin {
        name: "openai-key",
        pattern: r"(?-u)\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{32,}",
        check: None,
    },
    Builtin {
        name: "google-api-key",
        pattern: r"(?-u)\bAIza[0-9A-Za-z_-]{35}",
        check: None,
    },
    Builtin {
        name: "stripe-key",
        pattern: r"(?-u)\b(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{16,247}\b",
        check: None,
    },
    Builtin {
        name: "private-key",
        pattern: r"(?s)-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----.*?(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|\z)",
        check: None,
    },
    Builtin {
        name: "jwt",
        pattern: r"(?-u)\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*",
        check: None,
    },
];

/// A payment card number: 13 to 19 digits (spaces or dashes between them allowed), an issuer
/// prefix in use (Visa, Mastercard, Amex, Discover, JCB, Diners, UnionPay) and a valid Luhn
/// check digit.
pub(super) fn is_card_number(text: &str) -> bool {
    let digits: Vec<u8> = text
        .bytes()
        .filter(u8::is_ascii_digit)
        .map(|b| b - b'0')
        .collect();
    if !(13..=19).contains(&digits.len()) {
        return false;
    }
    let prefix = |n: usize| {
        digits[..n]
            .iter()
            .fold(0u32, |acc, &d| acc * 10 + u32::from(d))
    };
    let known_issuer = match digits[0] {
        4 => true,                                                  // Visa
        5 => (51..=55).contains(&prefix(2)),                        // Mastercard
        2 => (2221..=2720).contains(&prefix(4)),                    // Mastercard
        3 => matches!(prefix(2), 34 | 37 | 35 | 36 | 38 | 30 | 39), // Amex, JCB, Diners
        6 => matches!(prefix(2), 60 | 62 | 64 | 65),                // Discover, UnionPay
        _ => false,
    };
    known_issuer && luhn(&digits)
}

/// The Luhn checksum of `digits` (most significant first) is valid.
pub(super) fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// A US social security number `AAA-GG-SSSS` outside the ranges never issued: area 000, 666
/// or 900-999, group 00, serial 0000.
pub(super) fn is_ssn(text: &str) -> bool {
    let mut parts = text.split('-');
    let (Some(area), Some(group), Some(serial)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    area != "000" && area != "666" && !area.starts_with('9') && group != "00" && serial != "0000"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_detector_is_named_in_the_manifest_and_back() {
        let names: Vec<&str> = BUILTINS.iter().map(|b| b.name).collect();
        assert_eq!(names, crate::manifest::BUILTIN_DETECTORS);
        for builtin in BUILTINS {
            regex::Regex::new(builtin.pattern).unwrap_or_else(|e| panic!("{}: {e}", builtin.name));
        }
    }

    #[test]
    fn luhn_and_issuer_prefixes_decide_card_numbers() {
        assert!(is_card_number("4111111111111111"));
        assert!(is_card_number("4111 1111 1111 1111"));
        assert!(is_card_number("5555-5555-5555-4444"));
        assert!(is_card_number("378282246310005")); // Amex, 15 digits
        assert!(is_card_number("6011111111111117"));
        assert!(!is_card_number("4111111111111112"), "bad check digit");
        assert!(
            !is_card_number("1234567812345670"),
            "Luhn-valid but no issuer starts with 1"
        );
        assert!(!is_card_number("411111111111"), "too short");
    }

    #[test]
    fn reserved_ssn_ranges_are_not_ssns() {
        assert!(is_ssn("123-45-6789"));
        for reserved in [
            "000-12-3456",
            "666-12-3456",
            "912-34-5678",
            "123-00-4567",
            "123-45-0000",
        ] {
            assert!(!is_ssn(reserved), "{reserved}");
        }
    }
}
