//! The one place JSON objects are written: envelopes, and chat-sub's `--json` lines for
//! messages, joins and leaves, and `--who`.
//!
//! An object is written straight into the output buffer, on one line, with its keys in
//! the order given and every string value escaped by [`push_json_str`] (what JSON needs,
//! plus what could act on a terminal). Keys are the tools' own ASCII names and are written
//! as they are.
//!
//! serde_json's `Serializer`, with a `Formatter` that adds the terminal-safe escapes,
//! writes the same bytes, but a chat-sub `--json` line took 199 ns with it against 154 ns
//! with this writer and 159 ns with the hand-assembled code this replaced (median of 30
//! runs of 200,000 lines, release build; BENCHMARKS.md): so JSON is written here.

use std::io::Write;

use crate::escape::push_json_str;

/// A JSON object being written; [`Object::end`] closes it.
#[must_use = "an object is only complete after end()"]
pub struct Object<'a> {
    out: &'a mut Vec<u8>,
    empty: bool,
}

impl<'a> Object<'a> {
    /// Starts an object at the end of `out`.
    #[inline]
    pub fn start(out: &'a mut Vec<u8>) -> Object<'a> {
        out.push(b'{');
        Object { out, empty: true }
    }

    /// `"key":` after a comma unless it is the first key.
    #[inline]
    fn key(&mut self, key: &str) {
        debug_assert!(key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
        let open: &[u8] = if self.empty { b"\"" } else { b",\"" };
        self.empty = false;
        self.out.reserve(open.len() + key.len() + 2);
        self.out.extend_from_slice(open);
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
    }

    /// A string member.
    #[inline]
    pub fn str(mut self, key: &str, value: &str) -> Self {
        self.key(key);
        push_json_str(self.out, value);
        self
    }

    /// A string member, or `null` for None.
    #[inline]
    pub fn opt_str(mut self, key: &str, value: Option<&str>) -> Self {
        self.key(key);
        match value {
            Some(v) => push_json_str(self.out, v),
            None => self.out.extend_from_slice(b"null"),
        }
        self
    }

    /// A number member.
    #[inline]
    pub fn uint(mut self, key: &str, value: u64) -> Self {
        self.key(key);
        let _ = write!(self.out, "{value}");
        self
    }

    /// A `true` or `false` member.
    #[inline]
    pub fn bool(mut self, key: &str, value: bool) -> Self {
        self.key(key);
        let v: &[u8] = if value { b"true" } else { b"false" };
        self.out.extend_from_slice(v);
        self
    }

    /// A member whose value is JSON already written by `write` (a nested object or array).
    #[inline]
    pub fn with(mut self, key: &str, write: impl FnOnce(&mut Vec<u8>)) -> Self {
        self.key(key);
        write(self.out);
        self
    }

    /// Closes the object.
    #[inline]
    pub fn end(self) {
        self.out.push(b'}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[inline]
    fn members_in_order_with_safe_strings() {
        let mut out = b"x".to_vec();
        Object::start(&mut out)
            .str("a", "q\"\u{1b}\u{202e}")
            .opt_str("b", None)
            .opt_str("c", Some("c"))
            .uint("n", 2)
            .bool("t", true)
            .bool("f", false)
            .end();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"x{"a":"q\"\u001b\u202e","b":null,"c":"c","n":2,"t":true,"f":false}"#
        );
        let mut empty = Vec::new();
        Object::start(&mut empty).end();
        assert_eq!(empty, b"{}");
    }
}
