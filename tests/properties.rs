//! Property tests of the pure parts of the wire format and of chat-sub's output, over
//! arbitrary inputs: bytes, Unicode strings full of controls, bidi controls and line
//! separators, JSON with lone surrogate escapes, deep nesting and huge strings.
//!
//! - `envelope::decode` never panics, takes a payload for an envelope exactly when it is
//!   a JSON object with a string `text`, and round-trips what `envelope::encode` wrote;
//!   encoded envelopes and `push_json_str` output are valid JSON (serde_json reads the
//!   same values) with no raw terminal control characters.
//! - `escape::push_escaped` and `Renderer::render` (text, templates) always print one
//!   terminal-safe UTF-8 line; JSON rendering prints one line that parses as an object
//!   with the documented keys, and `payload_base64` gives back the exact bytes.
//! - `Preparer::prepare` never panics on `--json` input, and what it publishes is an
//!   envelope built from the line, or the raw message's exact bytes; every line
//!   chat-sub --json prints is valid input that relays the message.
//!
//! The oracles are written here, independently of the code under test: the list of
//! terminal controls, the expected escapes, serde_json as the reference JSON parser, and
//! a reader of an object's top level that skips unknown keys, as readers of the envelope
//! must (serde_json's `Value` cannot be that reference: it refuses more than 128 levels
//! of nesting and lone surrogates even inside keys that readers ignore). Input sizes are
//! capped so that each property takes well under a second in the debug profile; the
//! huge-string properties run fewer cases.

use std::borrow::Cow;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use bytes::Bytes;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use serde::Deserialize;
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::common::is_terminal_control;
use serde_json::Value;

use mqttchat::escape::{push_escaped, push_json_str};
use mqttchat::room::envelope::{self, IdSource};
use mqttchat::tools::publish::input::{Mode, Prepared, Preparer};
use mqttchat::tools::render::{Delivered, Format, Renderer};

// ---------------------------------------------------------------------------------------
// Oracles

/// The first terminal control character in `s` other than those in `allowed`.
fn first_control(s: &str, allowed: &[char]) -> Option<char> {
    s.chars()
        .find(|&c| is_terminal_control(c) && !allowed.contains(&c))
}

/// What chat-sub's text output shows for `s` (chat-sub(1) OUTPUT): `\n`, `\r`, `\xHH` for
/// other C0 and DEL, `\u{…}` for the rest; tab as it is; backslashes not doubled.
/// A nick as text output shows it before the terminal escapes: the characters that show
/// as nothing (Default_Ignorable_Code_Point) written as `\u{...}`.
fn expected_nick(s: &str) -> String {
    s.chars()
        .map(|c| match mqttchat::tools::render::is_invisible(c) {
            true => format!("\\u{{{:x}}}", c as u32),
            false => c.to_string(),
        })
        .collect()
}

fn expected_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '\t' => out.push(c),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\u{0}'..='\u{1f}' | '\u{7f}' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if is_terminal_control(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Checks that `out` is exactly one line of UTF-8 that is safe on a terminal: one `\n`,
/// at the end, and no control character but tab.
fn check_text_line(out: &[u8]) -> Result<(), TestCaseError> {
    let s = std::str::from_utf8(out)
        .map_err(|e| TestCaseError::fail(format!("not UTF-8 ({e}): {out:?}")))?;
    let body = s
        .strip_suffix('\n')
        .ok_or_else(|| TestCaseError::fail(format!("does not end a line: {s:?}")))?;
    prop_assert_eq!(first_control(body, &['\t']), None, "in {:?}", s);
    Ok(())
}

/// A top-level value as the readers see it.
#[derive(Debug, Clone, PartialEq)]
enum Scalar {
    Str(String),
    Null,
    Bool(bool),
    UInt(u64),
    /// Another number, an array or an object (not looked into).
    Other,
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Scalar, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_str<E>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar::Str(v.to_owned()))
            }
            fn visit_unit<E>(self) -> Result<Scalar, E> {
                Ok(Scalar::Null)
            }
            fn visit_bool<E>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar::Bool(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar::UInt(v))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Scalar, E> {
                Ok(Scalar::Other)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Scalar, E> {
                Ok(Scalar::Other)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Scalar::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Scalar::Other)
            }
        }
        d.deserialize_any(V)
    }
}

/// Reads the top level of a JSON object as a reader that knows the keys `known` does
/// (readers of the envelope ignore keys they do not know): each known key with its value,
/// in order, duplicates kept; other keys skipped unread (so, as in serde, a lone
/// surrogate or any depth of nesting passes there). `event` is only null or not.
struct ObjectReader<'k>(&'k [&'k str]);

impl<'de> DeserializeSeed<'de> for ObjectReader<'_> {
    type Value = Vec<(String, Scalar)>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ObjectReader<'_> {
    type Value = Vec<(String, Scalar)>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = Vec::new();
        while let Some(k) = map.next_key::<String>()? {
            if !self.0.contains(&k.as_str()) {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            let v = if k == "event" {
                match map.next_value::<Option<IgnoredAny>>()? {
                    Some(_) => Scalar::Other,
                    None => Scalar::Null,
                }
            } else {
                map.next_value::<Scalar>()?
            };
            fields.push((k, v));
        }
        Ok(fields)
    }
}

/// `p` as a JSON object read by a reader that knows `known` (None: not such an object).
fn read_object(p: &[u8], known: &[&str]) -> Option<Fields> {
    let mut de = serde_json::Deserializer::from_slice(p);
    let fields = ObjectReader(known).deserialize(&mut de).ok()?;
    de.end().ok()?;
    Some(Fields(fields))
}

/// The known keys of an object.
struct Fields(Vec<(String, Scalar)>);

impl Fields {
    fn get(&self, key: &str) -> Option<&Scalar> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    fn str(&self, key: &str) -> Option<&str> {
        match self.get(key) {
            Some(Scalar::Str(s)) => Some(s),
            _ => None,
        }
    }

    fn has_duplicates(&self) -> bool {
        self.0
            .iter()
            .enumerate()
            .any(|(i, (k, _))| self.0[..i].iter().any(|(k2, _)| k2 == k))
    }
}

/// The keys the envelope reader knows, and those of `chat-pub --json` (chat-pub(1) JSON
/// INPUT).
const ENVELOPE_KEYS: &[&str] = &["text", "from", "ts", "id"];
const JSON_LINE_KEYS: &[&str] = &[
    "text",
    "from",
    "ts",
    "id",
    "topic",
    "qos",
    "retain",
    "payload_base64",
    "event",
];

/// A key's value as a string, None when it is absent or not a string.
fn str_of<'a>(o: &'a serde_json::Map<String, Value>, key: &str) -> Option<&'a str> {
    o.get(key).and_then(Value::as_str)
}

fn is_hex_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

// ---------------------------------------------------------------------------------------
// Generators

/// Characters that matter here, drawn often: JSON specials, every kind of terminal
/// control, characters next to them, and multi-byte ones.
const SPECIAL: &[char] = &[
    '"',
    '\\',
    '/',
    '{',
    '}',
    '[',
    ']',
    ':',
    ',',
    'u',
    '\n',
    '\r',
    '\t',
    '\0',
    '\u{1b}',
    '\u{7}',
    '\u{7f}',
    '\u{80}',
    '\u{85}',
    '\u{9b}',
    '\u{9d}',
    '\u{9f}',
    '\u{a0}',
    '\u{61c}',
    '\u{200b}',
    '\u{200d}',
    '\u{200e}',
    '\u{200f}',
    '\u{2027}',
    '\u{2028}',
    '\u{2029}',
    '\u{202a}',
    '\u{202d}',
    '\u{202e}',
    '\u{202f}',
    '\u{2065}',
    '\u{2066}',
    '\u{2069}',
    '\u{206a}',
    '\u{feff}',
    '\u{fffd}',
    '\u{10ffff}',
    'é',
    '🎉',
];

/// Any character, with controls, bidi controls and separators drawn often.
fn hostile_char() -> impl Strategy<Value = char> {
    prop_oneof![
        3 => select(SPECIAL),
        2 => (0u32..0xa0).prop_map(|c| char::from_u32(c).unwrap()),
        1 => (0x2000u32..0x2070).prop_map(|c| char::from_u32(c).unwrap()),
        3 => any::<char>(),
    ]
}

/// A length up to `max`, often a very short one (where edge cases live).
fn length(max: usize) -> impl Strategy<Value = usize> {
    prop_oneof![0..=max.min(4), 0..=max]
}

/// A string of up to `max` hostile characters.
fn hostile_string(max: usize) -> impl Strategy<Value = String> {
    length(max).prop_flat_map(|n| vec(hostile_char(), n).prop_map(|v| v.into_iter().collect()))
}

/// Up to `max` arbitrary bytes.
fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    length(max).prop_flat_map(|n| vec(any::<u8>(), n))
}

/// A string of up to about 2 MiB: a hostile piece repeated.
fn huge_string() -> impl Strategy<Value = String> {
    (hostile_string(32), 1usize..40_000).prop_map(|(s, n)| s.repeat(n))
}

/// `s` as a JSON string literal escaping only what JSON requires (`"`, `\`, C0): DEL,
/// C1, bidi controls and separators stay raw, as other publishers may send them.
fn json_min(s: &str) -> String {
    let mut out = String::from('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c < ' ' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `s` as a JSON string literal with every character escaped as `\uXXXX` (surrogate
/// pairs beyond the BMP).
fn json_all_escaped(s: &str) -> String {
    let mut out = String::from('"');
    for u in s.encode_utf16() {
        out.push_str(&format!("\\u{u:04X}"));
    }
    out.push('"');
    out
}

/// JSON string literals that are not valid UTF-16: lone and reversed surrogates.
const BAD_SURROGATES: &[&str] = &[
    r#""\ud800""#,
    r#""\udfff""#,
    r#""a\ud800b""#,
    r#""\ud800\u0041""#,
    r#""\ude00\ud83d""#,
    r#""\ud800\ud800""#,
    r#""\ud83d""#,
    r#""\udc00x""#,
];

/// A JSON string literal: valid in several spellings, or with bad surrogates.
fn json_string() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => hostile_string(24).prop_map(|s| serde_json::to_string(&s).unwrap()),
        3 => hostile_string(24).prop_map(|s| json_min(&s)),
        1 => hostile_string(8).prop_map(|s| json_all_escaped(&s)),
        1 => select(BAD_SURROGATES).prop_map(str::to_owned),
        1 => select(&["\"2026-11-26T12:01:02.123Z\"", "\"/w==\"", "\"a/#\"", "\"x/y\"", "\"\""][..])
            .prop_map(str::to_owned),
    ]
}

/// `depth` levels of nesting around `null`: arrays, objects, or both.
fn deep(depth: usize, kind: u8) -> String {
    match kind % 3 {
        0 => format!("{}null{}", "[".repeat(depth), "]".repeat(depth)),
        1 => format!("{}null{}", "{\"a\":".repeat(depth), "}".repeat(depth)),
        _ => format!("{}null{}", "[{\"a\":".repeat(depth), "}]".repeat(depth)),
    }
}

/// A JSON value as text (sometimes invalid: bad surrogates, too deep for parsers).
fn json_value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        4 => json_string(),
        1 => Just("null".to_owned()),
        1 => any::<bool>().prop_map(|b| b.to_string()),
        1 => any::<i64>().prop_map(|n| n.to_string()),
        1 => select(&["0", "1", "2", "3", "-1", "256", "1.5", "1e400", "-0"][..]).prop_map(str::to_owned),
        1 => (1usize..100_000, any::<u8>()).prop_map(|(d, k)| deep(d, k)),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(","))),
            vec((json_key(), inner), 0..4).prop_map(|kv| object(&kv)),
        ]
    })
}

/// An object key: mostly the ones the readers look at.
fn json_key() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => select(&[
            "text", "from", "ts", "id", "topic", "qos", "retain", "payload_base64", "event",
            "extra",
        ][..])
        .prop_map(|k| format!("\"{k}\"")),
        1 => json_string(),
    ]
}

fn object(kv: &[(String, String)]) -> String {
    let fields: Vec<String> = kv.iter().map(|(k, v)| format!("{k}:{v}")).collect();
    format!("{{{}}}", fields.join(","))
}

/// A JSON object as text: the keys readers look at, with values of any kind.
fn json_object() -> impl Strategy<Value = String> {
    vec((json_key(), json_value()), 0..8).prop_map(|kv| object(&kv))
}

/// An object that is likely to be a well-formed envelope or `--json` line: every
/// special key at most once, mostly with a plausible value, now and then any value; a
/// quarter of them in chat-sub's raw form (`from`, `ts` and `id` all null).
fn likely_object() -> impl Strategy<Value = String> {
    let s = || {
        prop_oneof![
            12 => hostile_string(24).prop_map(|s| serde_json::to_string(&s).unwrap()),
            2 => hostile_string(24).prop_map(|s| json_min(&s)),
            1 => json_value(),
        ]
    };
    let meta =
        || proptest::option::weighted(0.7, prop_oneof![6 => s(), 1 => Just("null".to_owned())]);
    let small = |choices: &'static [&'static str]| select(choices).prop_map(str::to_owned);
    let base64 = bytes(64).prop_map(|b| {
        format!(
            "\"{}\"",
            base64::engine::general_purpose::STANDARD.encode(b)
        )
    });
    (
        proptest::option::weighted(0.95, s()),
        (meta(), meta(), meta()),
        proptest::option::weighted(0.25, Just(())),
        proptest::option::of(prop_oneof![
            4 => small(&["\"x/y\"", "null"]),
            1 => small(&["\"a/#\"", "\"\"", "1"]),
        ]),
        proptest::option::of(prop_oneof![
            4 => small(&["0", "1", "2", "null"]),
            1 => small(&["3", "-1", "\"1\"", "1.0"]),
        ]),
        proptest::option::of(prop_oneof![
            4 => small(&["true", "false", "null"]),
            1 => small(&["1", "\"true\""]),
        ]),
        proptest::option::of(prop_oneof![4 => base64, 1 => s()]),
        proptest::option::weighted(0.05, s()),
    )
        .prop_map(
            |(text, (from, ts, id), raw_form, topic, qos, retain, b64, event)| {
                let (from, ts, id) = match raw_form {
                    Some(()) => {
                        let null = || Some("null".to_owned());
                        (null(), null(), null())
                    }
                    None => (from, ts, id),
                };
                let mut kv = Vec::new();
                for (k, v) in [
                    ("text", text),
                    ("from", from),
                    ("ts", ts),
                    ("id", id),
                    ("topic", topic),
                    ("qos", qos),
                    ("retain", retain),
                    ("payload_base64", b64),
                    ("event", event),
                ] {
                    if let Some(v) = v {
                        kv.push((format!("\"{k}\""), v));
                    }
                }
                object(&kv)
            },
        )
}

/// Pieces of JSON syntax thrown together: mostly invalid, close to valid.
fn json_soup() -> impl Strategy<Value = Vec<u8>> {
    const FRAGMENTS: &[&str] = &[
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        "\"",
        "\"text\"",
        "\"from\"",
        "\"ts\"",
        "\"id\"",
        "\"event\"",
        "\"payload_base64\"",
        "null",
        "true",
        "1",
        "-0.5e3",
        "\\",
        "\\u",
        "\\ud800",
        "\\udc00",
        "\\ud83d\\ude00",
        "\\u001b",
        "\\u202e",
        "\\n",
        " ",
        "\n",
        "\"x\"",
        "\"/w==\"",
    ];
    vec(
        prop_oneof![
            4 => select(FRAGMENTS).prop_map(|s| s.as_bytes().to_vec()),
            1 => hostile_string(4).prop_map(String::into_bytes),
            1 => vec(any::<u8>(), 1..4),
        ],
        0..40,
    )
    .prop_map(|v| v.concat())
}

/// A timestamp string: RFC 3339 (UTC or with an offset) or anything else.
fn ts_string() -> impl Strategy<Value = String> {
    prop_oneof![
        (-100_000_000_000i64..300_000_000_000, 0u32..1000)
            .prop_map(|(s, ms)| envelope::rfc3339(s, ms)),
        (0i64..4_000_000_000, -86_399i32..86_400).prop_map(|(s, off)| {
            let off = chrono::FixedOffset::east_opt(off / 60 * 60).unwrap();
            chrono::DateTime::from_timestamp(s, 0)
                .unwrap()
                .with_timezone(&off)
                .to_rfc3339()
        }),
        hostile_string(30),
    ]
}

/// An envelope as chat-pub writes it, from arbitrary strings.
fn encoded_envelope() -> impl Strategy<Value = Vec<u8>> {
    (
        hostile_string(40),
        hostile_string(40),
        ts_string(),
        hostile_string(200),
    )
        .prop_map(|(id, from, ts, text)| {
            let mut out = Vec::new();
            envelope::encode(&mut out, &id, &from, &ts, &text);
            out
        })
}

/// A payload as another publisher might send it.
fn payload() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        2 => bytes(1024),
        2 => hostile_string(256).prop_map(String::into_bytes),
        2 => encoded_envelope(),
        2 => likely_object().prop_map(String::into_bytes),
        1 => json_object().prop_map(String::into_bytes),
        1 => json_soup(),
    ]
}

/// A topic as delivered: UTF-8 with controls, or (from a broken broker) any bytes.
fn topic() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => hostile_string(40).prop_map(String::into_bytes),
        1 => bytes(40),
    ]
}

/// When a message was received: around now, long ago, far ahead, or before 1970.
fn received() -> impl Strategy<Value = SystemTime> {
    (-10_000_000_000_000i64..10_000_000_000_000).prop_map(|ms| {
        let d = Duration::from_millis(ms.unsigned_abs());
        if ms < 0 {
            UNIX_EPOCH - d
        } else {
            UNIX_EPOCH + d
        }
    })
}

/// A `--format` template without literal line breaks (those are the user's choice).
fn template() -> impl Strategy<Value = String> {
    const PIECES: &[&str] = &[
        "{topic}",
        "{from}",
        "{text}",
        "{time}",
        "{ts}",
        "{received}",
        "{id}",
        "{qos}",
        "{retain}",
        "{{",
        "}}",
        "\\t",
        "\\\\",
        "|",
        " ",
        ": ",
        "x",
        "é",
    ];
    vec(select(PIECES), 0..12).prop_map(|v| v.concat())
}

// ---------------------------------------------------------------------------------------
// envelope

/// Checks `decode` on one payload against the definition (chat-pub(1) THE ENVELOPE): an
/// envelope exactly when it is a JSON object with a string `text`; `from`, `ts` and `id`
/// only when strings; else raw, with the text as it is (U+FFFD for bytes that are not
/// UTF-8).
fn check_decode(p: &[u8]) -> Result<(), TestCaseError> {
    let d = envelope::decode(p);
    prop_assert_eq!(d.utf8, std::str::from_utf8(p).is_ok());
    let fields = read_object(p, ENVELOPE_KEYS);
    if d.envelope {
        let f = fields.ok_or_else(|| {
            TestCaseError::fail(format!("an envelope that is not an object: {p:?}"))
        })?;
        prop_assert!(!f.has_duplicates());
        prop_assert_eq!(Some(&*d.text), f.str("text"));
        prop_assert_eq!(d.from.as_deref(), f.str("from"));
        prop_assert_eq!(d.ts.as_deref(), f.str("ts"));
        prop_assert_eq!(d.id.as_deref(), f.str("id"));
        // Where serde_json can parse the whole payload, it reads the same values.
        if let Ok(Value::Object(o)) = serde_json::from_slice::<Value>(p) {
            prop_assert_eq!(Some(&*d.text), str_of(&o, "text"));
            prop_assert_eq!(d.from.as_deref(), str_of(&o, "from"));
        }
    } else {
        prop_assert!(d.from.is_none() && d.ts.is_none() && d.id.is_none());
        prop_assert_eq!(&*d.text, &*String::from_utf8_lossy(p));
        // Raw although an object with a string text: only when a key the envelope reader
        // knows is there twice (ambiguous JSON, shown as it is).
        if let Some(f) = fields
            && f.str("text").is_some()
        {
            prop_assert!(
                f.has_duplicates(),
                "raw, but an object with a string text: {:?}",
                String::from_utf8_lossy(p)
            );
        }
    }
    Ok(())
}

proptest! {
    #[test]
    fn decode_agrees_with_serde_json(p in payload()) {
        check_decode(&p)?;
    }

    #[test]
    fn decode_never_panics_on_bytes(p in bytes(4096)) {
        check_decode(&p)?;
    }

    #[test]
    fn decode_never_panics_on_json_soup(p in json_soup()) {
        check_decode(&p)?;
    }

    #[test]
    fn decode_survives_deep_nesting(
        depth in 1usize..150_000,
        kind in any::<u8>(),
        around in select(&["", "{\"text\":\"x\",\"a\":", "{\"text\":", "{\"from\":"][..]),
    ) {
        let close = if around.is_empty() { "" } else { "}" };
        check_decode(format!("{around}{}{close}", deep(depth, kind)).as_bytes())?;
    }

    #[test]
    fn encode_round_trips_and_is_safe_json(
        id in hostile_string(40),
        from in hostile_string(40),
        ts in ts_string(),
        text in hostile_string(300),
    ) {
        let mut out = Vec::new();
        envelope::encode(&mut out, &id, &from, &ts, &text);
        let s = std::str::from_utf8(&out).unwrap();
        prop_assert_eq!(first_control(s, &[]), None, "in {:?}", s);
        let d = envelope::decode(&out);
        prop_assert!(d.envelope && d.utf8);
        prop_assert_eq!(&*d.text, &*text);
        prop_assert_eq!(d.from.as_deref(), Some(&*from));
        prop_assert_eq!(d.ts.as_deref(), Some(&*ts));
        prop_assert_eq!(d.id.as_deref(), Some(&*id));
        let v: Value = serde_json::from_str(s).unwrap();
        let expected = serde_json::json!({"id": id, "from": from, "ts": ts, "text": text});
        prop_assert_eq!(v, expected);
        prop_assert!(s.starts_with("{\"id\":") && s.ends_with('}'), "{}", s);
    }

    #[test]
    fn push_json_str_is_a_safe_json_literal(s in hostile_string(300)) {
        let mut out = Vec::new();
        push_json_str(&mut out, &s);
        let lit = std::str::from_utf8(&out).unwrap();
        prop_assert_eq!(first_control(lit, &[]), None, "in {:?}", lit);
        prop_assert_eq!(serde_json::from_str::<String>(lit).unwrap(), s);
    }

    #[test]
    fn rfc3339_matches_chrono_and_parses_back(
        secs in -62_135_596_800i64..253_402_300_800,
        millis in 0u32..1000,
    ) {
        let s = envelope::rfc3339(secs, millis);
        let reference = chrono::DateTime::from_timestamp(secs, millis * 1_000_000).unwrap();
        prop_assert_eq!(&s, &reference.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string());
        prop_assert_eq!(envelope::parse_rfc3339(&s), Some(secs));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn huge_strings_round_trip(text in huge_string(), from in huge_string()) {
        let mut out = Vec::new();
        push_json_str(&mut out, &text);
        prop_assert_eq!(serde_json::from_slice::<String>(&out).unwrap(), text.clone());
        out.clear();
        envelope::encode(&mut out, "i", &from, "t", &text);
        let s = std::str::from_utf8(&out).unwrap();
        prop_assert_eq!(first_control(s, &[]), None);
        let d = envelope::decode(&out);
        prop_assert!(d.envelope);
        prop_assert!(d.text == text && d.from.as_deref() == Some(&*from));
    }
}

// ---------------------------------------------------------------------------------------
// render

fn render(
    format: Format,
    topic: &[u8],
    payload: &[u8],
    qos: u8,
    retain: bool,
    at: SystemTime,
) -> Vec<u8> {
    let m = Delivered {
        topic,
        payload,
        qos,
        retain,
        received: at,
        properties: None,
        mark: None,
    };
    let mut out = Vec::new();
    Renderer::new(format, false).render(&mut out, &m, &envelope::decode(payload));
    out
}

/// Checks a `--json` line against the message it shows.
fn check_json_line(
    out: &[u8],
    topic: &[u8],
    payload: &[u8],
    qos: u8,
    retain: bool,
    at: SystemTime,
) -> Result<(), TestCaseError> {
    let s =
        std::str::from_utf8(out).map_err(|e| TestCaseError::fail(format!("not UTF-8 ({e})")))?;
    let body = s
        .strip_suffix('\n')
        .ok_or_else(|| TestCaseError::fail("no final newline"))?;
    // Every string is escaped: not even a tab or a newline is left raw.
    prop_assert_eq!(first_control(body, &[]), None, "in {:?}", s);
    let v: Value = serde_json::from_str(body)
        .map_err(|e| TestCaseError::fail(format!("not JSON ({e}): {body:?}")))?;
    let o = v
        .as_object()
        .ok_or_else(|| TestCaseError::fail("not an object"))?;
    let not_utf8 = std::str::from_utf8(payload).is_err();
    let mut keys: Vec<&str> = o.keys().map(String::as_str).collect();
    keys.sort_unstable();
    let mut expected = vec![
        "from", "id", "qos", "received", "retain", "text", "topic", "ts",
    ];
    if not_utf8 {
        expected.insert(2, "payload_base64");
    }
    prop_assert_eq!(keys, expected);
    let d = envelope::decode(payload);
    let opt = |v: &Option<Cow<str>>| v.as_deref().map_or(Value::Null, Value::from);
    prop_assert_eq!(&o["topic"], &Value::from(String::from_utf8_lossy(topic)));
    prop_assert_eq!(&o["text"], &Value::from(&*d.text));
    prop_assert_eq!(&o["from"], &opt(&d.from));
    prop_assert_eq!(&o["ts"], &opt(&d.ts));
    prop_assert_eq!(&o["id"], &opt(&d.id));
    prop_assert_eq!(&o["qos"], &Value::from(qos));
    prop_assert_eq!(&o["retain"], &Value::from(retain));
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let received = envelope::rfc3339(since.as_secs() as i64, since.subsec_millis());
    prop_assert_eq!(&o["received"], &Value::from(received));
    if not_utf8 {
        let b64 = o["payload_base64"].as_str().unwrap();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| TestCaseError::fail(format!("bad payload_base64 ({e})")))?;
        prop_assert_eq!(bytes, payload);
    }
    Ok(())
}

proptest! {
    #[test]
    fn push_escaped_is_one_safe_line_with_the_documented_escapes(s in hostile_string(300)) {
        let mut out = Vec::new();
        push_escaped(&mut out, &s);
        let shown = String::from_utf8(out).unwrap();
        prop_assert_eq!(first_control(&shown, &['\t']), None, "in {:?}", shown);
        prop_assert_eq!(&shown, &expected_escape(&s));
        if first_control(&s, &['\t']).is_none() {
            prop_assert_eq!(shown, s);
        }
    }

    #[test]
    fn text_rendering_is_one_safe_line(
        topic in topic(),
        payload in payload(),
        prefix in any::<bool>(),
        qos in 0u8..=2,
        retain in any::<bool>(),
        at in received(),
    ) {
        let out = render(Format::Text { topic_prefix: prefix }, &topic, &payload, qos, retain, at);
        check_text_line(&out)?;
        // The clock is always there and always `HH:MM:SS`.
        let s = String::from_utf8(out).unwrap();
        let rest = if prefix {
            let lossy = String::from_utf8_lossy(&topic);
            let p = format!("[{}] ", expected_escape(&lossy));
            prop_assert!(s.starts_with(&p), "{:?} does not start with {:?}", s, p);
            s[p.len()..].to_owned()
        } else {
            s
        };
        let b = rest.as_bytes();
        prop_assert!(
            b.len() >= 9 && b[2] == b':' && b[5] == b':' && b[8] == b' '
                && [0, 1, 3, 4, 6, 7].iter().all(|&i| b[i].is_ascii_digit()),
            "no clock in {:?}", rest
        );
        let d = envelope::decode(&payload);
        let sender = d.from.as_deref().map(|f| format!("{}: ", expected_escape(&expected_nick(f)))).unwrap_or_default();
        prop_assert_eq!(&rest[9..], format!("{sender}{}\n", expected_escape(&d.text)));
    }

    #[test]
    fn template_rendering_is_one_safe_line(
        t in template(),
        topic in topic(),
        payload in payload(),
        qos in 0u8..=2,
        retain in any::<bool>(),
        at in received(),
    ) {
        let format = Format::template(&t).map_err(TestCaseError::fail)?;
        check_text_line(&render(format, &topic, &payload, qos, retain, at))?;
    }

    #[test]
    fn template_parsing_never_panics(t in hostile_string(40)) {
        let _ = Format::template(&t);
    }

    #[test]
    fn json_rendering_is_one_complete_object(
        topic in topic(),
        payload in payload(),
        qos in 0u8..=2,
        retain in any::<bool>(),
        at in received(),
    ) {
        let out = render(Format::Json, &topic, &payload, qos, retain, at);
        check_json_line(&out, &topic, &payload, qos, retain, at)?;
    }

    #[test]
    fn raw_rendering_is_the_bytes_and_a_newline(payload in bytes(512)) {
        let out = render(Format::Raw, b"t", &payload, 1, false, UNIX_EPOCH);
        prop_assert_eq!(&out[..payload.len()], &payload[..]);
        prop_assert_eq!(&out[payload.len()..], b"\n");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn huge_messages_render_as_one_line(text in huge_string(), from in huge_string(), bin in any::<bool>()) {
        let mut payload = Vec::new();
        envelope::encode(&mut payload, "i", &from, "t", &text);
        if bin {
            payload = text.into_bytes();
            payload.push(0xff);
        }
        let at = UNIX_EPOCH;
        check_text_line(&render(Format::Text { topic_prefix: true }, b"t", &payload, 1, false, at))?;
        let t = Format::template("{from}|{text}").unwrap();
        check_text_line(&render(t, b"t", &payload, 1, false, at))?;
        check_json_line(&render(Format::Json, b"t", &payload, 1, false, at), b"t", &payload, 1, false, at)?;
    }
}

// ---------------------------------------------------------------------------------------
// input

const DEFAULT_TOPIC: &str = "room";

fn preparer(mode: Mode, nick: &str) -> Preparer {
    Preparer {
        mode,
        topic: Some(Bytes::from_static(DEFAULT_TOPIC.as_bytes())),
        qos: 1,
        retain: false,
        nick: nick.to_owned(),
        max_size: 1 << 24,
        ids: IdSource::default(),
        sealer: None,
        dialect: mqttchat::room::dialect::Dialect::Envelope,
        notice: None,
        properties: Default::default(),
        encoded: Default::default(),
    }
}

/// Checks what `prepare` made of one `--json` line against chat-pub(1) JSON INPUT.
fn check_json_prepared(line: &[u8], nick: &str) -> Result<(), TestCaseError> {
    let r = preparer(Mode::Json, nick).prepare(7, line);
    let fields = read_object(line, JSON_LINE_KEYS);
    let m = match r {
        Err(why) => {
            prop_assert!(!why.is_empty());
            return Ok(());
        }
        Ok(Prepared::Skip) => {
            // Only a presence event is skipped.
            let f = fields.ok_or_else(|| TestCaseError::fail("skipped a non-object"))?;
            prop_assert!(f.get("event").is_some_and(|e| *e != Scalar::Null));
            return Ok(());
        }
        Ok(Prepared::Message(m) | Prepared::ToSeal(m)) => m,
    };
    let f = fields.ok_or_else(|| {
        TestCaseError::fail(format!("published a line that is not an object: {line:?}"))
    })?;
    prop_assert!(!f.has_duplicates());
    prop_assert!(f.get("event").is_none_or(|e| *e == Scalar::Null));
    let text = f
        .str("text")
        .ok_or_else(|| TestCaseError::fail("published a line without a string text"))?;
    prop_assert_eq!(m.line, 7);
    prop_assert_eq!(
        &m.topic[..],
        f.str("topic").unwrap_or(DEFAULT_TOPIC).as_bytes()
    );
    let qos = match f.get("qos") {
        Some(Scalar::UInt(q)) => *q,
        _ => 1,
    };
    prop_assert_eq!(u64::from(m.qos), qos);
    prop_assert_eq!(m.retain, f.get("retain") == Some(&Scalar::Bool(true)));
    let null = |k: &str| f.get(k) == Some(&Scalar::Null);
    if null("from") && null("ts") && null("id") {
        // A raw message as chat-sub --json shows it: its exact bytes.
        let expected = match f.str("payload_base64") {
            Some(b64) => base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap(),
            None => text.as_bytes().to_vec(),
        };
        prop_assert_eq!(&m.payload[..], &expected[..]);
        return Ok(());
    }
    // Otherwise an envelope: safe JSON with exactly the four keys.
    let s = std::str::from_utf8(&m.payload)
        .map_err(|_| TestCaseError::fail("an envelope that is not UTF-8"))?;
    prop_assert_eq!(first_control(s, &[]), None, "in {:?}", s);
    let e: Value = serde_json::from_str(s).unwrap();
    let mut keys: Vec<&str> = e.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    prop_assert_eq!(keys, vec!["from", "id", "text", "ts"]);
    let d = envelope::decode(&m.payload);
    prop_assert!(d.envelope);
    prop_assert_eq!(&*d.text, text);
    prop_assert_eq!(d.from.as_deref(), Some(f.str("from").unwrap_or(nick)));
    match f.str("ts") {
        Some(ts) => prop_assert_eq!(d.ts.as_deref(), Some(ts)),
        None => prop_assert!(envelope::parse_rfc3339(d.ts.as_deref().unwrap()).is_some()),
    }
    match f.str("id") {
        Some(id) => prop_assert_eq!(d.id.as_deref(), Some(id)),
        None => prop_assert!(is_hex_id(d.id.as_deref().unwrap())),
    }
    Ok(())
}

proptest! {
    #[test]
    fn json_input_never_panics_on_bytes(line in bytes(2048)) {
        check_json_prepared(&line, "me")?;
    }

    #[test]
    fn json_input_never_panics_on_json_soup(line in json_soup()) {
        check_json_prepared(&line, "me")?;
    }

    #[test]
    fn json_input_objects(line in prop_oneof![3 => likely_object(), 1 => json_object()], nick in hostile_string(16)) {
        check_json_prepared(line.as_bytes(), &nick)?;
    }

    #[test]
    fn json_input_survives_deep_nesting(depth in 1usize..150_000, kind in any::<u8>()) {
        let line = format!("{{\"text\":\"x\",\"extra\":{}}}", deep(depth, kind));
        check_json_prepared(line.as_bytes(), "me")?;
    }

    #[test]
    fn envelope_input_round_trips_any_text(text in hostile_string(500), nick in hostile_string(24)) {
        let r = preparer(Mode::Envelope, &nick).prepare(1, text.as_bytes());
        let Ok(Prepared::Message(m)) = r else {
            return Err(TestCaseError::fail(format!("not published: {text:?}")));
        };
        let s = std::str::from_utf8(&m.payload).unwrap();
        prop_assert_eq!(first_control(s, &[]), None, "in {:?}", s);
        let d = envelope::decode(&m.payload);
        prop_assert!(d.envelope);
        prop_assert_eq!(&*d.text, &*text);
        prop_assert_eq!(d.from.as_deref(), Some(&*nick));
        prop_assert!(is_hex_id(d.id.as_deref().unwrap()));
        prop_assert!(envelope::parse_rfc3339(d.ts.as_deref().unwrap()).is_some());
        prop_assert_eq!(&m.topic[..], DEFAULT_TOPIC.as_bytes());
    }

    #[test]
    fn envelope_input_takes_exactly_the_utf8_lines(line in bytes(512)) {
        let r = preparer(Mode::Envelope, "me").prepare(1, &line);
        match std::str::from_utf8(&line) {
            Ok(text) => {
                let Ok(Prepared::Message(m)) = r else {
                    return Err(TestCaseError::fail("valid UTF-8 not published"));
                };
                prop_assert_eq!(&*envelope::decode(&m.payload).text, text);
            }
            Err(_) => prop_assert!(r.is_err()),
        }
    }

    /// `chat-sub --json | chat-pub --json` (chat-pub(1) JSON INPUT): every line chat-sub
    /// prints is valid input, a raw message is published as its exact bytes, and an
    /// envelope keeps its text and every field it had.
    #[test]
    fn chat_sub_json_lines_relay_the_message(
        payload in payload(),
        qos in 0u8..=2,
        retain in any::<bool>(),
        at in received(),
    ) {
        let mut line = render(Format::Json, b"x/y", &payload, qos, retain, at);
        line.pop();
        let r = preparer(Mode::Json, "relay").prepare(1, &line);
        let Ok(Prepared::Message(m)) = r else {
            return Err(TestCaseError::fail(format!(
                "not relayed: {:?}",
                String::from_utf8_lossy(&line)
            )));
        };
        prop_assert_eq!((&m.topic[..], m.qos, m.retain), (&b"x/y"[..], qos, retain));
        let d = envelope::decode(&payload);
        if !d.envelope {
            prop_assert_eq!(&m.payload[..], &payload[..]);
        } else if d.from.is_none() && d.ts.is_none() && d.id.is_none() {
            // Shown exactly like a raw message, and relayed as one: its text.
            prop_assert_eq!(&m.payload[..], d.text.as_bytes());
        } else {
            let r = envelope::decode(&m.payload);
            prop_assert!(r.envelope);
            prop_assert_eq!(&r.text, &d.text);
            for (got, had) in [(&r.from, &d.from), (&r.ts, &d.ts), (&r.id, &d.id)] {
                if had.is_some() {
                    prop_assert_eq!(got, had);
                }
            }
        }
    }
}
