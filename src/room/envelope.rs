//! The wire format: the JSON envelope, its ids and timestamps, and the raw fallback for
//! every payload that is not an envelope.
//!
//! An envelope is a one-line JSON object `{"id","from","ts","text"}`; a payload is one
//! exactly when it is a JSON object with a string `text`. Readers ignore unknown keys and
//! treat a `from`, `ts` or `id` that is not a string as absent. Nothing here knows about
//! terminals or sockets.

use std::borrow::Cow;
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// A decoded payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded<'a> {
    /// The message text (for a raw payload that is not UTF-8: with U+FFFD replacements).
    pub text: Cow<'a, str>,
    /// The sender; None for a raw message.
    pub from: Option<Cow<'a, str>>,
    /// When it was written (RFC 3339), as sent; None for a raw message.
    pub ts: Option<Cow<'a, str>>,
    /// The envelope's unique id; None for a raw message.
    pub id: Option<Cow<'a, str>>,
    /// Whether the payload was an envelope (false: raw).
    pub envelope: bool,
    /// Whether the payload was valid UTF-8 (when false, `text` is lossy).
    pub utf8: bool,
    /// An encrypted payload (of a room whose secret this reader does not have): `text` is
    /// `[encrypted]`, never the ciphertext.
    pub encrypted: bool,
    /// A notice of the original MQTTChat (`noticia,TEXT` under `--dialect mqttchat-py`):
    /// `text` is the notice, shown as an event, not as a message.
    pub notice: bool,
}

#[derive(Deserialize)]
struct Wire<'a> {
    #[serde(borrow)]
    text: Cow<'a, str>,
    #[serde(default, borrow, deserialize_with = "string_or_none")]
    from: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "string_or_none")]
    ts: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "string_or_none")]
    id: Option<Cow<'a, str>>,
}

/// What is shown for the text of an encrypted message.
pub const ENCRYPTED: &str = "[encrypted]";

impl Decoded<'static> {
    /// An encrypted message, for a reader without the room's secret.
    pub fn encrypted() -> Decoded<'static> {
        Decoded {
            text: Cow::Borrowed(ENCRYPTED),
            from: None,
            ts: None,
            id: None,
            envelope: false,
            utf8: true,
            encrypted: true,
            notice: false,
        }
    }
}

/// Decodes a payload: an envelope when it is a JSON object with a string `text`, else a
/// raw message.
pub fn decode(payload: &[u8]) -> Decoded<'_> {
    let first = payload.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'{')
        && let Ok(w) = serde_json::from_slice::<Wire<'_>>(payload)
    {
        return Decoded {
            text: w.text,
            from: w.from,
            ts: w.ts,
            id: w.id,
            envelope: true,
            utf8: true,
            encrypted: false,
            notice: false,
        };
    }

    let (text, utf8) = match std::str::from_utf8(payload) {
        Ok(s) => (Cow::Borrowed(s), true),
        Err(_) => (String::from_utf8_lossy(payload), false),
    };
    Decoded {
        text,
        from: None,
        ts: None,
        id: None,
        envelope: false,
        utf8,
        encrypted: false,
        notice: false,
    }
}

/// Deserializes a string as `Some`, and any other JSON value as `None` (lenient reader).
pub fn string_or_none<'de, D>(d: D) -> Result<Option<Cow<'de, str>>, D::Error>
where
    D: Deserializer<'de>,
{
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<Cow<'de, str>>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
            Ok(Some(Cow::Borrowed(v)))
        }
        fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v.to_owned())))
        }
        fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v)))
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(None)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok(None)
        }
    }
    d.deserialize_any(V)
}

/// Appends an envelope, its keys always in this order: id, from, ts, text.
pub fn encode(out: &mut Vec<u8>, id: &str, from: &str, ts: &str, text: &str) {
    crate::room::json::Object::start(out)
        .str("id", id)
        .str("from", from)
        .str("ts", ts)
        .str("text", text)
        .end();
}

/// Generates envelope ids: 128 bits from the OS random source, as 32 hex digits.
///
/// Randomness is fetched 4 KiB at a time, so that a fast pipe does not make one system
/// call per line.
pub struct IdSource {
    pool: Vec<u8>,
    used: usize,
}

impl Default for IdSource {
    fn default() -> Self {
        IdSource {
            pool: vec![0; 4096],
            used: 4096,
        }
    }
}

impl IdSource {
    /// The next id.
    pub fn next_id(&mut self) -> String {
        if self.used + 16 > self.pool.len() {
            // The OS random source failing is not something a chat tool can work around.
            if let Err(e) = getrandom::fill(&mut self.pool) {
                panic!("the OS random source failed: {e}");
            }
            self.used = 0;
        }
        let bytes = &self.pool[self.used..self.used + 16];
        self.used += 16;
        let mut s = String::with_capacity(32);
        for b in bytes {
            s.push(char::from(HEX[usize::from(b >> 4)]));
            s.push(char::from(HEX[usize::from(b & 15)]));
        }
        s
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Now as RFC 3339 UTC with milliseconds: `2026-11-26T12:01:02.123Z`.
pub fn now_rfc3339() -> String {
    system_rfc3339(SystemTime::now())
}

/// A system time as RFC 3339 UTC with milliseconds (a time before 1970 as the epoch).
pub fn system_rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    rfc3339(d.as_secs() as i64, d.subsec_millis())
}

/// Formats Unix seconds and milliseconds (below 1000) as RFC 3339 UTC, always with three
/// digits of fraction (truncated, not rounded) and `Z`: `2026-11-26T12:01:02.123Z`. Years
/// 0 to 9999 have four digits; a time chrono cannot represent (beyond 262,000 years) shows
/// as the epoch.
pub fn rfc3339(secs: i64, millis: u32) -> String {
    chrono::DateTime::from_timestamp(secs, millis.saturating_mul(1_000_000))
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Parses an RFC 3339 timestamp to Unix seconds (None if it is not one).
pub fn parse_rfc3339(ts: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(ts)
        .ok()
        .map(|t| t.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_round_trip_keeps_every_byte_of_text() {
        let text = "tab\there \"quoted\" back\\slash é 🎉 \u{1b}[31m \u{202e}x \u{0} \u{9b}";
        let mut out = Vec::new();
        encode(&mut out, "00ff", "alice", "2026-11-26T12:01:02.123Z", text);
        let s = std::str::from_utf8(&out).unwrap();
        assert!(!s.contains('\u{1b}') && !s.contains('\u{202e}') && !s.contains('\u{9b}'));
        let d = decode(&out);
        assert!(d.envelope);
        assert_eq!(d.text, text);
        assert_eq!(d.from.as_deref(), Some("alice"));
        assert_eq!(d.id.as_deref(), Some("00ff"));
        // serde_json agrees that it is the same JSON value.
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["text"], text);
    }

    #[test]
    fn raw_fallbacks() {
        for p in [
            &b"hello"[..],
            b"",
            b"{",
            b"[1]",
            b"{\"text\":1}",
            b"\"text\"",
            b"{\"x\":\"y\"}",
        ] {
            let d = decode(p);
            assert!(!d.envelope, "{p:?}");
            assert_eq!(d.text.as_bytes(), p);
            assert!(d.from.is_none() && d.ts.is_none() && d.id.is_none());
        }
        let d = decode(b"\xff\xfeok");
        assert!(!d.utf8);
        assert_eq!(d.text, "\u{fffd}\u{fffd}ok");
    }

    #[test]
    fn lenient_fields() {
        let d = decode(br#"{"text":"hi","from":42,"ts":null,"id":{"a":[1]},"extra":true}"#);
        assert!(d.envelope);
        assert_eq!(d.text, "hi");
        assert!(d.from.is_none() && d.ts.is_none() && d.id.is_none());
    }

    #[test]
    fn deep_nesting_does_not_crash() {
        let (open, close) = ("[".repeat(100_000), "]".repeat(100_000));
        // Valid JSON object with a string text: an envelope, whatever else it carries.
        let ignored = format!("{{\"text\":\"x\",\"a\":{open}{close},\"from\":{open}{close}}}");
        let d = decode(ignored.as_bytes());
        assert!(d.envelope && d.text == "x" && d.from.is_none());
        // text that is not a string (and too deep to parse): raw.
        let deep_text = format!("{{\"text\":{open}{close}}}");
        assert!(!decode(deep_text.as_bytes()).envelope);
    }

    #[test]
    fn ids_are_unique_hex() {
        let mut ids = IdSource::default();
        let a: Vec<String> = (0..1000).map(|_| ids.next_id()).collect();
        let set: std::collections::HashSet<_> = a.iter().collect();
        assert_eq!(set.len(), 1000);
        assert!(
            a.iter()
                .all(|i| i.len() == 32 && i.bytes().all(|b| HEX.contains(&b)))
        );
    }

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_795_694_462, 123), "2026-11-26T12:01:02.123Z");
        assert_eq!(rfc3339(951_782_400, 5), "2000-02-29T00:00:00.005Z");
        assert_eq!(rfc3339(253_402_300_799, 999), "9999-12-31T23:59:59.999Z");
        assert_eq!(rfc3339(-62_135_596_800, 0), "0001-01-01T00:00:00.000Z");
        assert_eq!(
            system_rfc3339(UNIX_EPOCH - std::time::Duration::from_secs(1)),
            "1970-01-01T00:00:00.000Z"
        );
        assert_eq!(
            parse_rfc3339("2026-11-26T12:01:02.123Z"),
            Some(1_795_694_462)
        );
        assert_eq!(
            parse_rfc3339("2026-11-26T13:01:02+01:00"),
            Some(1_795_694_462)
        );
        assert_eq!(parse_rfc3339("yesterday"), None);
        let now = now_rfc3339();
        assert_eq!(now.len(), 24, "{now}");
    }
}
