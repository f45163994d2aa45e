//! Text that a person will read: what may cross the wire, and how stored
//! text is printed.
//!
//! A peer chooses its device name, a key comment, a host or user name. If
//! such a string reached a terminal raw, an escape sequence in it could
//! redraw the screen (a pairing code, a sheet) or hide what follows; a bidi
//! override could reorder what the person reads. So:
//! - [`check`] refuses, at decode, any string holding a control or format
//!   character: Unicode `Cc` (C0, DEL, C1), `Cf` (bidi controls, zero-width
//!   characters, soft hyphen, tags, …), the line and paragraph separators
//!   `Zl`/`Zp`, and every space (`Zs`) but the ASCII one: an ideographic or
//!   no-break space pads a field until what follows falls off the screen,
//!   or passes for a plain space in a name.
//! - [`clip`] caps how much of one peer string a sheet shows
//!   ([`MAX_SHOWN_CHARS`]), saying how much it left out.
//! - [`escape`] is for text that did not come through [`check`] (files
//!   written by an older build, a signer's error message): it prints every
//!   such character, and the backslash, as a visible escape, so the output
//!   is unambiguous and inert.

use std::borrow::Cow;
use std::fmt::Write;

/// The most characters of one peer string a sheet or a log line shows.
pub const MAX_SHOWN_CHARS: usize = 256;

/// Whether `c` may not appear in text shown to a person: `Cc`, `Cf`,
/// `Zl`, `Zp`, and `Zs` other than U+0020.
pub fn is_forbidden(c: char) -> bool {
    c.is_control() || is_format(c) || is_separator_but_space(c)
}

/// `s` cut to [`MAX_SHOWN_CHARS`] characters, the cut said in words;
/// borrowed when it fits.
pub fn clip(s: &str) -> Cow<'_, str> {
    let Some((end, _)) = s.char_indices().nth(MAX_SHOWN_CHARS) else {
        return Cow::Borrowed(s);
    };
    let left = s.get(end..).map_or(0, |rest| rest.chars().count());
    let kept = s.get(..end).unwrap_or_default();
    Cow::Owned(format!("{kept}… ({left} more characters not shown)"))
}

/// The first forbidden character of `s`, if any.
pub fn first_forbidden(s: &str) -> Option<char> {
    s.chars().find(|&c| is_forbidden(c))
}

/// `Ok` when `s` holds no forbidden character; else the first one.
pub fn check(s: &str) -> Result<(), char> {
    first_forbidden(s).map_or(Ok(()), Err)
}

/// `s` with every forbidden character, and `\`, written as an escape
/// (`\e`, `\n`, `\t`, `\\`, `\u{202e}`); borrowed when nothing changes.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| c == '\\' || is_forbidden(c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\u{1b}' => out.push_str("\\e"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if is_forbidden(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// JSON text (a log's lines, for `--json`) with every forbidden character
/// written as a JSON `\uXXXX` escape (a surrogate pair past U+FFFF): the
/// same JSON to a parser, inert on a terminal. Line breaks between lines
/// are kept, so `text` may hold many lines.
pub fn escape_json(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| c != '\n' && is_forbidden(c)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if c != '\n' && is_forbidden(c) {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                let _ = write!(out, "\\u{unit:04x}");
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A last guard for a message put together from many sources (an error
/// on its way to stderr): forbidden characters other than the line feed
/// become `\u{..}` escapes; everything else, backslashes included, is left
/// as it is, so text already [`escape`]d reads the same.
pub fn defuse(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| c != '\n' && is_forbidden(c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c != '\n' && is_forbidden(c) {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// What kind of character a refused `c` is, for an error: `a space
/// other than U+0020 (Zs)`.
pub fn kind(c: char) -> &'static str {
    if c.is_control() {
        "a control character (Cc)"
    } else if is_format(c) {
        "a format character (Cf)"
    } else if c == '\u{2028}' {
        "a line separator (Zl)"
    } else if c == '\u{2029}' {
        "a paragraph separator (Zp)"
    } else if is_separator_but_space(c) {
        "a space other than U+0020 (Zs)"
    } else {
        "a character allowed in text"
    }
}

/// How a refused character is named in an error: `U+001B`.
pub fn describe(c: char) -> String {
    format!("U+{:04X}", u32::from(c))
}

/// Unicode general category `Z` (separators), Unicode 15.1, but U+0020:
/// `Zs` U+00A0, U+1680, U+2000–U+200A, U+202F, U+205F, U+3000; `Zl`
/// U+2028; `Zp` U+2029. The list has not grown since Unicode 6.3.
fn is_separator_but_space(c: char) -> bool {
    matches!(
        u32::from(c),
        0x00A0 | 0x1680 | 0x2000..=0x200A | 0x2028 | 0x2029 | 0x202F | 0x205F | 0x3000
    )
}

/// Unicode general category `Cf` (format), Unicode 15.1. A short table:
/// these are what the standard assigns, and new ones are rare.
fn is_format(c: char) -> bool {
    matches!(
        u32::from(c),
        0x00AD
            | 0x0600..=0x0605
            | 0x061C
            | 0x06DD
            | 0x070F
            | 0x0890..=0x0891
            | 0x08E2
            | 0x180E
            | 0x200B..=0x200F
            | 0x202A..=0x202E
            | 0x2060..=0x2064
            | 0x2066..=0x206F
            | 0xFEFF
            | 0xFFF9..=0xFFFB
            | 0x110BD
            | 0x110CD
            | 0x13430..=0x1343F
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0001
            | 0xE0020..=0xE007F
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_controls_formats_and_separators() {
        for bad in [
            "evil\u{1b}[2J",
            "a\nb",
            "a\rb",
            "tab\there",
            "del\u{7f}",
            "c1\u{9b}2J",
            "nel\u{85}",
            "rlo\u{202e}gnp.exe",
            "lri\u{2066}x",
            "zw\u{200b}sp",
            "bom\u{feff}",
            "soft\u{ad}hyphen",
            "tag\u{e0041}",
            "ls\u{2028}",
            "ps\u{2029}",
            "nbsp\u{a0}",
            "ogham\u{1680}",
            "en quad\u{2000}",
            "hair\u{200a}",
            "narrow nbsp\u{202f}",
            "math\u{205f}",
            "root:@staging \u{3000}\u{3000}",
        ] {
            assert!(check(bad).is_err(), "{bad:?} passed");
        }
        for good in ["laptop", "Jörg's Mac", "電話", "a b-c_d.e", "emoji 📱", ""] {
            assert_eq!(check(good), Ok(()), "{good:?} refused");
        }
        assert_eq!(first_forbidden("ok\u{1b}x\n"), Some('\u{1b}'));
        assert_eq!(describe('\u{1b}'), "U+001B");
        assert_eq!(describe('\u{202e}'), "U+202E");
        assert_eq!(first_forbidden("a b\u{3000}"), Some('\u{3000}'));
        // The ASCII space is the one separator allowed; other spaces
        // (U+180E was one before Unicode 6.3) are still refused as Cf.
        assert_eq!(check("two words"), Ok(()));
        assert!(check("mongolian\u{180e}").is_err());
        assert_eq!(kind('\u{3000}'), "a space other than U+0020 (Zs)");
        assert_eq!(kind('\u{1b}'), "a control character (Cc)");
        assert_eq!(kind('\u{202e}'), "a format character (Cf)");
        assert_eq!(kind('\u{2028}'), "a line separator (Zl)");
    }

    #[test]
    fn clip_caps_a_peer_string_and_says_so() {
        let fits = "x".repeat(MAX_SHOWN_CHARS);
        assert!(matches!(clip(&fits), Cow::Borrowed(_)));
        let long = "電".repeat(MAX_SHOWN_CHARS + 64);
        let shown = clip(&long);
        assert!(shown.starts_with(&"電".repeat(MAX_SHOWN_CHARS)));
        assert!(
            shown.ends_with("… (64 more characters not shown)"),
            "{shown}"
        );
        assert_eq!(
            shown.chars().filter(|&c| c == '電').count(),
            MAX_SHOWN_CHARS
        );
    }

    #[test]
    fn escape_is_visible_inert_and_unambiguous() {
        assert!(matches!(escape("laptop"), Cow::Borrowed("laptop")));
        assert_eq!(escape("evil\u{1b}[2J\u{1b}[H"), "evil\\e[2J\\e[H");
        assert_eq!(escape("a\nb\r\t"), "a\\nb\\r\\t");
        assert_eq!(escape("x\u{202e}y"), "x\\u{202e}y");
        assert_eq!(escape("c1\u{9b}"), "c1\\u{9b}");
        // A literal backslash cannot pose as an escape.
        assert_eq!(escape("\\e"), "\\\\e");
        for s in ["\u{1b}]0;title\u{7}", "\u{2028}\u{85}\u{feff}"] {
            assert_eq!(first_forbidden(&escape(s)), None);
        }
    }

    #[test]
    fn defuse_keeps_lines_and_earlier_escapes() {
        assert!(matches!(defuse("two\nlines \\e"), Cow::Borrowed(_)));
        assert_eq!(defuse("a\u{1b}[2J\nb\rc"), "a\\u{1b}[2J\nb\\u{d}c");
        assert_eq!(first_forbidden(&defuse("x\u{202e}\t")), None);
    }

    #[test]
    fn escape_json_keeps_the_json_and_the_lines() {
        let text = "{\"d\":\"a\u{202e}b\u{1b}\u{e0041}\"}\n{\"d\":\"ok\"}\n";
        let escaped = escape_json(text);
        assert_eq!(
            escaped,
            "{\"d\":\"a\\u202eb\\u001b\\udb40\\udc41\"}\n{\"d\":\"ok\"}\n"
        );
        assert!(matches!(escape_json("{}\n"), Cow::Borrowed(_)));
    }
}
