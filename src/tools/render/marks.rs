//! The marks of who signed what in an encrypted room, as chat-sub prints them: after
//! the nick in text (`[new key …]`, `[KEY CHANGED … — not verified]`, …), as fields in
//! JSON (`verified`, `fingerprint`, `key_changed`, `new_key`, `unsigned`); and nicks with
//! the characters that show as nothing made visible.

use std::borrow::Cow;
use std::io::Write;

use super::Renderer;
use crate::room::json::Object;
use crate::room::sign::Mark;

impl Renderer {
    /// ` [mark]` after a nick (or in front of the text of a message without one): what
    /// is not verified, in an encrypted room. A changed key in bold red when colours are
    /// on.
    pub(super) fn push_mark(&self, out: &mut Vec<u8>, mark: Option<Mark>, after_nick: bool) {
        let text = match mark {
            None | Some(Mark::Verified(_)) => return,
            Some(Mark::NewKey(fp)) => format!("[new key {}]", fp.short()),
            Some(Mark::Changed(fp)) => format!("[KEY CHANGED {} — not verified]", fp.short()),
            Some(Mark::Nameless(fp)) => format!("[key {}]", fp.short()),
            Some(Mark::Unsigned) => "[unsigned]".to_owned(),
            Some(Mark::Downgraded) => DOWNGRADED.to_owned(),
        };
        let loud = matches!(mark, Some(Mark::Changed(_) | Mark::Downgraded));
        match after_nick {
            true => self.push_flag(out, &text, loud),
            false => {
                self.push_styled(out, &text, loud);
                out.push(b' ');
            }
        }
    }

    /// ` TEXT`, bold red when `loud` and colours are on.
    pub(super) fn push_flag(&self, out: &mut Vec<u8>, text: &str, loud: bool) {
        out.push(b' ');
        self.push_styled(out, text, loud);
    }

    fn push_styled(&self, out: &mut Vec<u8>, text: &str, loud: bool) {
        match self.color && loud {
            true => {
                let _ = write!(out, "\x1b[1;31m{text}\x1b[0m");
            }
            false => out.extend_from_slice(text.as_bytes()),
        }
    }
}

/// The mark of an unsigned record under a nick whose key is pinned.
pub(super) const DOWNGRADED: &str = "[UNSIGNED — not verified]";

/// In an encrypted room, who signed it: `verified`, and for a signed record its
/// `fingerprint`, with `key_changed` or `new_key` when so; `unsigned` for a record of
/// format version 1.
pub(super) fn with_mark(line: Object<'_>, mark: Option<Mark>) -> Object<'_> {
    let Some(mark) = mark else {
        return line;
    };
    let line = line.bool("verified", mark.verified());
    let line = match mark.fingerprint() {
        Some(fp) => line.str("fingerprint", &fp.to_string()),
        None => line,
    };
    match mark {
        Mark::Changed(_) => line.bool("key_changed", true),
        Mark::NewKey(_) => line.bool("new_key", true),
        Mark::Unsigned | Mark::Downgraded => line.bool("unsigned", true),
        _ => line,
    }
}

/// Whether `c` shows as nothing (Unicode's Default_Ignorable_Code_Point: zero-width
/// spaces and joiners, variation selectors, fillers, tags, …): in a nick it is written as
/// `\u{...}`, so that two nicks that look the same are the same.
pub fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{ad}' | '\u{34f}' | '\u{61c}' | '\u{115f}' | '\u{1160}' | '\u{17b4}' | '\u{17b5}'
        | '\u{180b}'..='\u{180f}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}'
        | '\u{2060}'..='\u{206f}' | '\u{3164}' | '\u{fe00}'..='\u{fe0f}' | '\u{feff}'
        | '\u{ffa0}' | '\u{fff0}'..='\u{fff8}' | '\u{1bca0}'..='\u{1bca3}'
        | '\u{1d173}'..='\u{1d17a}' | '\u{e0000}'..='\u{e0fff}')
}

/// `nick` with the characters that show as nothing written as `\u{...}`.
pub(super) fn visible(nick: &str) -> Cow<'_, str> {
    if !nick.contains(is_invisible) {
        return Cow::Borrowed(nick);
    }
    let mut out = String::with_capacity(nick.len() + 8);
    for c in nick.chars() {
        match is_invisible(c) {
            true => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            false => out.push(c),
        }
    }
    Cow::Owned(out)
}
