//! Terminal-safe escaping: the one rule for every string that reaches a terminal, as text
//! or inside JSON.
//!
//! Some characters act on a terminal instead of being shown: the C0 controls, DEL, the C1
//! controls, the Unicode bidi controls (Bidi_Control) and the line and paragraph
//! separators. None of them is ever printed as it is. In text ([`push_escaped`]) they are
//! shown as `\n`, `\r`, `\xHH` or `\u{...}`, so a message stays one line and cannot move
//! the cursor or reorder what follows; tab stays a tab and backslashes are not doubled.
//! In JSON ([`push_json_str`]) they are written as `\uXXXX` escapes, which leave the JSON
//! value unchanged but keep the bytes safe to print.

use std::io::Write;

/// Characters never printed as they are: C0 controls, DEL, C1 controls, the Unicode
/// bidi controls (Bidi_Control) and the line/paragraph separators.
pub fn needs_escape(c: char) -> bool {
    matches!(c,
        '\0'..='\x1f' | '\x7f'..='\u{9f}'
        | '\u{061c}' | '\u{200e}' | '\u{200f}'
        | '\u{2028}'..='\u{202e}'
        | '\u{2066}'..='\u{2069}')
}

/// Appends `s` with every character that could act on a terminal escaped: `\n`, `\r`,
/// `\xHH` for other C0 controls and DEL, `\u{...}` for C1, bidi controls and line or
/// paragraph separators. Tab stays a tab; backslashes are not doubled.
pub fn push_escaped(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, c) in s.char_indices() {
        if c == '\t' || !needs_escape(c) {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        let _ = match c {
            '\n' => write!(out, "\\n"),
            '\r' => write!(out, "\\r"),
            '\0'..='\x1f' | '\x7f' => write!(out, "\\x{:02x}", c as u32),
            _ => write!(out, "\\u{{{:x}}}", c as u32),
        };
        start = i + c.len_utf8();
    }
    out.extend_from_slice(&bytes[start..]);
}

/// `s` as [`push_escaped`] shows it: safe to put in a message on a terminal.
pub fn escaped(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len());
    push_escaped(&mut out, s);
    // Escaping only replaces whole characters by ASCII, so the result is still UTF-8.
    String::from_utf8(out).unwrap_or_default()
}

/// Appends `s` as a JSON string. Besides what JSON requires (`"`, `\` and C0), every
/// character that could act on a terminal is escaped as `\uXXXX`: DEL, the C1 controls,
/// the bidi controls and the line/paragraph separators. The JSON value is the same; the
/// bytes are safe to print.
pub fn push_json_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let (mut start, mut i) = (0, 0);
    while i < bytes.len() {
        if !may_start_json_escape(bytes[i]) {
            i += 1;
            continue;
        }
        // Only first bytes of characters get here (see may_start_json_escape).
        let c = s[i..].chars().next().unwrap_or_default();
        let next = i + c.len_utf8();
        let esc: Option<&[u8]> = match c {
            '"' => Some(b"\\\""),
            '\\' => Some(b"\\\\"),
            '\n' => Some(b"\\n"),
            '\r' => Some(b"\\r"),
            '\t' => Some(b"\\t"),
            c if needs_escape(c) => None,
            _ => {
                i = next;
                continue;
            }
        };
        out.extend_from_slice(&bytes[start..i]);
        match esc {
            Some(e) => out.extend_from_slice(e),
            None => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
        }
        (start, i) = (next, next);
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Whether a byte of UTF-8 may begin a character that [`push_json_str`] escapes: C0, `"`,
/// `\`, DEL, or the first byte of the C1 controls (0xC2), of U+061C (0xD8) and of the bidi
/// controls and separators from U+2000 (0xE2). None of these is a continuation byte
/// (0x80–0xBF), so a scan that skips every other byte stops only at a character's start.
fn may_start_json_escape(b: u8) -> bool {
    matches!(b, 0..=0x1f | b'"' | b'\\' | 0x7f | 0xc2 | 0xd8 | 0xe2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_keeps_one_line_and_no_escape_bytes() {
        let mut out = Vec::new();
        push_escaped(
            &mut out,
            "a\nb\rc\td\u{1b}[2J\u{7f}\u{9b}\u{202e}\u{2066}\\",
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "a\\nb\\rc\td\\x1b[2J\\x7f\\u{9b}\\u{202e}\\u{2066}\\"
        );
    }

    #[test]
    fn json_strings_escape_what_json_and_the_terminal_need() {
        let mut out = Vec::new();
        push_json_str(
            &mut out,
            "\"q\" \\ \n\r\t\u{8}\u{c}\u{1b}\u{7f}\u{9b}\u{61c}\u{2028}\u{202e}\u{2066} é 🎉",
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\"\\\"q\\\" \\\\ \\n\\r\\t\\u0008\\u000c\\u001b\\u007f\\u009b\\u061c\\u2028\
             \\u202e\\u2066 é 🎉\""
        );
    }

    #[test]
    fn every_character_is_escaped_in_json_by_the_rule() {
        for c in (0..=0x10ffffu32).filter_map(char::from_u32) {
            let expected = match c {
                '"' => "\\\"".to_string(),
                '\\' => "\\\\".to_string(),
                '\n' => "\\n".to_string(),
                '\r' => "\\r".to_string(),
                '\t' => "\\t".to_string(),
                c if needs_escape(c) => format!("\\u{:04x}", c as u32),
                c => c.to_string(),
            };
            let mut out = Vec::new();
            push_json_str(&mut out, &format!("a{c}b{c}"));
            assert_eq!(
                String::from_utf8(out).unwrap(),
                format!("\"a{expected}b{expected}\""),
                "U+{:04X}",
                c as u32
            );
        }
    }

    #[test]
    fn only_the_documented_characters_need_escaping() {
        let escaped: Vec<u32> = (0..=0x10ffffu32)
            .filter_map(char::from_u32)
            .filter(|&c| needs_escape(c))
            .map(u32::from)
            .collect();
        let expected: Vec<u32> = (0..=0x1f)
            .chain(0x7f..=0x9f)
            .chain([0x61c, 0x200e, 0x200f])
            .chain(0x2028..=0x202e)
            .chain(0x2066..=0x2069)
            .collect();
        assert_eq!(escaped, expected);
    }
}
