//! The view of a text the detectors run on when it holds disguises: fullwidth, mathematical,
//! superscript and other-script digits and letters folded to ASCII, odd spaces and dashes
//! folded to ` ` and `-`, and invisible characters (zero-width, bidi controls, soft hyphens,
//! variation selectors, tag characters, combining marks) dropped. Every byte of the view
//! remembers where its character started in the original, so a hit found in the view redacts
//! the original span, disguises included.
//!
//! ASCII text never comes here, and text with nothing to fold gets no view: both are scanned
//! as they are.

/// What becomes of one character in the view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fold {
    /// Kept as it is.
    Keep,
    /// Left out (invisible).
    Drop,
    /// Replaced by this ASCII character.
    To(u8),
}

/// A text as the detectors see it.
pub(super) struct View {
    /// The folded text.
    pub text: String,
    /// For each byte of `text`, the offset in the original of the character it came from.
    starts: Vec<u32>,
}

impl View {
    /// The span of the original that the view's `start..end` came from: from the start of
    /// its first character up to the next character the view kept, so invisible characters
    /// trailing the hit (a bidi isolate's end, a combining mark) go with it.
    pub fn original(&self, original: &str, start: usize, end: usize) -> (usize, usize) {
        let from = self.starts[start] as usize;
        let to = self
            .starts
            .get(end)
            .map_or(original.len(), |&next| next as usize);
        (from, to)
    }
}

/// The view of `text`, or `None` when the detectors can scan `text` as it is (it is ASCII,
/// it has nothing to fold, or it is too large to index).
pub(super) fn view(text: &str) -> Option<View> {
    if text.is_ascii() || u32::try_from(text.len()).is_err() {
        return None;
    }
    let first = text.char_indices().find(|&(_, c)| fold(c) != Fold::Keep)?.0;
    let mut view = View {
        text: String::with_capacity(text.len()),
        starts: Vec::with_capacity(text.len()),
    };
    view.text.push_str(&text[..first]);
    for (at, c) in text[..first].char_indices() {
        view.starts
            .extend(std::iter::repeat_n(at as u32, c.len_utf8()));
    }
    for (at, c) in text[first..].char_indices() {
        let at = (first + at) as u32;
        match fold(c) {
            Fold::Keep => {
                view.text.push(c);
                view.starts.extend(std::iter::repeat_n(at, c.len_utf8()));
            }
            Fold::Drop => {}
            Fold::To(ascii) => {
                view.text.push(char::from(ascii));
                view.starts.push(at);
            }
        }
    }
    Some(view)
}

/// `text` folded, without the index (for secret values).
pub(super) fn folded(text: &str) -> Option<String> {
    view(text).map(|view| view.text)
}

/// The first code point of each run of ten decimal digits (0 to 9) outside ASCII: Arabic-Indic,
/// Devanagari, Bengali, Thai, ..., fullwidth.
const DIGIT_ZEROS: &[u32] = &[
    0x0660, 0x06F0, 0x07C0, 0x0966, 0x09E6, 0x0A66, 0x0AE6, 0x0B66, 0x0BE6, 0x0C66, 0x0CE6, 0x0D66,
    0x0DE6, 0x0E50, 0x0ED0, 0x0F20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80, 0x1A90,
    0x1B50, 0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0, 0xFF10,
    0x104A0, 0x11066, 0x1D7CE, 0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6,
];

fn fold(c: char) -> Fold {
    let code = c as u32;
    if code < 0x80 {
        return Fold::Keep;
    }
    // Invisible: soft hyphen, combining marks, format and bidi controls, variation selectors,
    // fillers, tag characters.
    if matches!(code,
        0x00AD | 0x034F | 0x061C | 0x115F | 0x1160 | 0x17B4 | 0x17B5 | 0x180B..=0x180F
        | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x206F | 0x3164 | 0xFE00..=0xFE0F
        | 0xFEFF | 0xFFA0 | 0x1BCA0..=0x1BCA3 | 0x1D173..=0x1D17A | 0xE0000..=0xE0FFF
        | 0x0300..=0x036F | 0x1AB0..=0x1AFF | 0x1DC0..=0x1DFF | 0x20D0..=0x20FF | 0xFE20..=0xFE2F)
    {
        return Fold::Drop;
    }
    // CJK, Hangul and the other large blocks with nothing to fold: no table walk.
    if matches!(code, 0x3001..=0xA61F | 0xAC00..=0xFDFF | 0x1D800..) {
        return Fold::Keep;
    }
    let ascii = |offset: u32| Fold::To(offset as u8);
    match code {
        // Fullwidth ASCII: `！` to `～`.
        0xFF01..=0xFF5E => ascii(code - 0xFF01 + 0x21),
        // Spaces.
        0x00A0 | 0x1680 | 0x2000..=0x200A | 0x202F | 0x205F | 0x3000 => Fold::To(b' '),
        // Dashes and minus signs.
        0x2010..=0x2015 | 0x2212 | 0xFE58 | 0xFE63 => Fold::To(b'-'),
        // Small forms.
        0xFE52 => Fold::To(b'.'),
        0xFE62 => Fold::To(b'+'),
        0xFE6B => Fold::To(b'@'),
        // Superscript and subscript digits.
        0x00B9 => Fold::To(b'1'),
        0x00B2 | 0x00B3 => ascii(code - 0x00B2 + u32::from(b'2')),
        0x2070 => Fold::To(b'0'),
        0x2074..=0x2079 => ascii(code - 0x2074 + u32::from(b'4')),
        0x2080..=0x2089 => ascii(code - 0x2080 + u32::from(b'0')),
        // Circled digits ① to ⑨.
        0x2460..=0x2468 => ascii(code - 0x2460 + u32::from(b'1')),
        // Mathematical alphanumeric letters: 13 styles of A-Z then a-z.
        0x1D400..=0x1D6A3 => {
            let index = (code - 0x1D400) % 52;
            if index < 26 {
                ascii(u32::from(b'A') + index)
            } else {
                ascii(u32::from(b'a') + index - 26)
            }
        }
        _ => match DIGIT_ZEROS
            .iter()
            .find(|&&zero| (zero..zero + 10).contains(&code))
        {
            Some(zero) => ascii(u32::from(b'0') + code - zero),
            None => Fold::Keep,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_and_plain_unicode_get_no_view() {
        assert!(view("plain ascii 4111").is_none());
        assert!(view("héllo wörld, 東京").is_none());
    }

    #[test]
    fn disguises_fold_and_map_back_to_the_original_span() {
        let original = "card ４１１１\u{200B}1111\u{202E}１１１１ 1111 end";
        let view = view(original).expect("a view");
        assert_eq!(view.text, "card 411111111111 1111 end");
        let start = view.text.find('4').expect("4");
        let end = view.text.find(" end").expect("end");
        let (from, to) = view.original(original, start, end);
        assert_eq!(&original[..from], "card ");
        assert_eq!(&original[to..], " end");
    }

    #[test]
    fn other_scripts_and_styles_fold() {
        let text = "\u{0664}\u{0661}\u{0661}\u{0661} \u{1D41A}\u{1D5EE}\u{1D7D2} x\u{FE6B}y\u{FF0E}z \u{00B2}";
        assert_eq!(view(text).expect("view").text, "4111 aa4 x@y.z 2");
        assert_eq!(folded("ａ\u{00AD}ｂ").as_deref(), Some("ab"));
    }

    #[test]
    fn kept_multibyte_characters_map_to_their_start() {
        let original = "é\u{200B}x";
        let view = view(original).expect("view");
        assert_eq!(view.text, "éx");
        assert_eq!(view.original(original, 0, 2), (0, 5));
        assert_eq!(view.original(original, 2, 3), (5, 6));
    }
}
