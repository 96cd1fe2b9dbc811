//! chat-sub's output: text lines, `--format` templates, JSON lines and raw bytes.
//!
//! Text output is safe on a terminal: topic, nick and text go through the terminal-safe
//! escapes of the `escape` module (`\n`, `\x1b`, `\u{202e}`), so one message is exactly
//! one line; JSON output escapes the same characters as `\uXXXX`. Nothing here knows
//! about sockets.

use std::borrow::Cow;
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use chrono::TimeZone;

use crate::room::envelope::{self, Decoded};
use crate::room::json::Object;
use crate::room::sign::Mark;

use crate::escape::{push_escaped, push_json_str};
use crate::mqtt::wire::Properties;

mod marks;
mod template;

pub use marks::is_invisible;
use marks::{DOWNGRADED, visible, with_mark};

pub use template::{Field, Piece};

/// A message as delivered, before decoding.
#[derive(Debug, Clone, Copy)]
pub struct Delivered<'a> {
    pub topic: &'a [u8],
    pub payload: &'a [u8],
    pub qos: u8,
    pub retain: bool,
    pub received: SystemTime,
    /// Its MQTT 5 properties, when it has any the tools show.
    pub properties: Option<&'a Properties>,
    /// In an encrypted room: who signed it, as to the pinned keys.
    pub mark: Option<Mark>,
}

/// How chat-sub prints a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    /// `HH:MM:SS from: text`, with `[topic] ` in front when `topic_prefix`.
    Text { topic_prefix: bool },
    /// A parsed `--format` template.
    Template(Vec<Piece>),
    /// One JSON object per line.
    Json,
    /// The payload's bytes, then `\n`.
    Raw,
}

impl Format {
    /// Parses a `--format` template; the error names the problem.
    pub fn template(t: &str) -> Result<Format, String> {
        template::parse(t).map(Format::Template)
    }
}

/// Renders messages into a byte buffer.
pub struct Renderer {
    format: Format,
    clock: LocalClock,
    /// Colour nicks in text output (SGR sequences; the nick itself is escaped first).
    color: bool,
}

/// A join or a leave, as chat-sub shows it.
#[derive(Debug, Clone, Copy)]
pub struct PresenceLine<'a> {
    /// The room (the topic of the chat, not of the presence state).
    pub room: &'a str,
    pub nick: &'a str,
    pub joined: bool,
    /// When it happened, as the join said (RFC 3339); else `received` is used.
    pub ts: Option<&'a str>,
    pub received: SystemTime,
    /// In an encrypted room: who signed it, as to the pinned keys.
    pub mark: Option<Mark>,
}

/// One entry of `--who`.
#[derive(Debug, Clone, Copy)]
pub struct Online<'a> {
    pub room: &'a str,
    pub nick: &'a str,
    /// When it joined, as the join said.
    pub ts: Option<&'a str>,
    /// In an encrypted room: who signed the join, as to the pinned keys.
    pub mark: Option<Mark>,
}

impl Renderer {
    pub fn new(format: Format, color: bool) -> Renderer {
        Renderer {
            format,
            clock: LocalClock::default(),
            color,
        }
    }

    /// Whether messages are shown with their marks (text and JSON; a `--format` template
    /// with `{verified}`): `--raw` and other templates cannot show them.
    pub fn shows_marks(&self) -> bool {
        match &self.format {
            Format::Text { .. } | Format::Json => true,
            Format::Raw => false,
            Format::Template(pieces) => pieces.iter().any(|p| {
                matches!(
                    p,
                    Piece::Field(Field::Verified) | Piece::Field(Field::Fingerprint)
                )
            }),
        }
    }

    /// Appends a join or leave line; false (nothing written) for formats that show only
    /// messages (`--raw`, `--format`).
    pub fn render_presence(&mut self, out: &mut Vec<u8>, p: &PresenceLine) -> bool {
        let ts =
            p.ts.map(str::to_owned)
                .unwrap_or_else(|| envelope::system_rfc3339(p.received));
        match &self.format {
            Format::Json => with_mark(
                Object::start(out)
                    .str("event", if p.joined { "join" } else { "leave" })
                    .str("from", p.nick)
                    .str("topic", p.room)
                    .str("ts", &ts),
                p.mark,
            )
            .end(),
            Format::Text { topic_prefix } => {
                if *topic_prefix {
                    push_topic_prefix(out, p.room);
                }
                let secs = envelope::parse_rfc3339(&ts).unwrap_or(0);
                out.extend_from_slice(&self.clock.hms(secs));
                out.extend_from_slice(b" * ");
                self.push_nick(out, p.nick);
                self.push_mark(out, p.mark, true);
                out.extend_from_slice(if p.joined { b" joined" } else { b" left" });
            }
            Format::Template(_) | Format::Raw => return false,
        }
        out.push(b'\n');
        true
    }

    /// Appends a notice of the original MQTTChat (`--dialect mqttchat-py`), shown as a
    /// join is: `HH:MM:SS * TEXT` (received time), or `{"event":"notice",…}`; false
    /// (nothing written) for formats that show only messages (`--raw`, `--format`).
    pub fn render_notice(&mut self, out: &mut Vec<u8>, m: &Delivered, text: &str) -> bool {
        let topic = String::from_utf8_lossy(m.topic);
        match &self.format {
            Format::Json => Object::start(out)
                .str("event", "notice")
                .str("topic", &topic)
                .str("text", text)
                .str("ts", &received_rfc3339(m))
                .end(),
            Format::Text { topic_prefix } => {
                if *topic_prefix {
                    push_topic_prefix(out, &topic);
                }
                out.extend_from_slice(&self.clock.hms(received_secs(m)));
                out.extend_from_slice(b" * ");
                push_escaped(out, text);
            }
            Format::Template(_) | Format::Raw => return false,
        }
        out.push(b'\n');
        true
    }

    /// Appends the mark of a payload of an encrypted room that did not open, and why
    /// (`--json` only: other formats print nothing, the message is reported on stderr).
    pub fn render_rejected(&mut self, out: &mut Vec<u8>, m: &Delivered, reason: &str) {
        if self.format == Format::Json {
            Object::start(out)
                .str("event", "rejected")
                .str("topic", &String::from_utf8_lossy(m.topic))
                .str("reason", reason)
                .uint("qos", m.qos.into())
                .bool("retain", m.retain)
                .str("received", &received_rfc3339(m))
                .end();
            out.push(b'\n');
        }
    }

    /// Appends one line of `--who`: the nick (with `[room] ` when the topic is shown), in
    /// an encrypted room with its fingerprint and mark; or a JSON object.
    pub fn render_who(&mut self, out: &mut Vec<u8>, o: &Online) {
        match &self.format {
            Format::Json => with_mark(
                Object::start(out)
                    .str("event", "online")
                    .str("from", o.nick)
                    .str("topic", o.room)
                    .opt_str("ts", o.ts),
                o.mark,
            )
            .end(),
            format => {
                if *format == (Format::Text { topic_prefix: true }) {
                    push_topic_prefix(out, o.room);
                }
                self.push_nick(out, o.nick);
                if let Some(fp) = o.mark.and_then(Mark::fingerprint) {
                    let _ = write!(out, " {fp}");
                }
                // The fingerprint is whole here: the mark need not repeat it.
                match o.mark {
                    Some(Mark::Changed(_)) => {
                        self.push_flag(out, "[KEY CHANGED — not verified]", true)
                    }
                    Some(Mark::NewKey(_)) => self.push_flag(out, "[new key]", false),
                    Some(Mark::Unsigned) => self.push_flag(out, "[unsigned]", false),
                    Some(Mark::Downgraded) => self.push_flag(out, DOWNGRADED, true),
                    _ => {}
                }
            }
        }
        out.push(b'\n');
    }

    /// The nick, escaped, in its colour when colours are on. Characters that show as
    /// nothing are escaped in nicks too (`alice\u{200b}` is not `alice`).
    fn push_nick(&self, out: &mut Vec<u8>, nick: &str) {
        let nick = visible(nick);
        if self.color {
            let _ = write!(out, "\x1b[{}m", nick_color(&nick));
            push_escaped(out, &nick);
            out.extend_from_slice(b"\x1b[0m");
        } else {
            push_escaped(out, &nick);
        }
    }

    /// Appends one message, ending with `\n`.
    pub fn render(&mut self, out: &mut Vec<u8>, m: &Delivered, d: &Decoded) {
        match &self.format {
            Format::Raw => out.extend_from_slice(m.payload),
            Format::Json => render_json(out, m, d),
            Format::Text { topic_prefix } => {
                if *topic_prefix {
                    push_topic_prefix(out, &String::from_utf8_lossy(m.topic));
                }
                out.extend_from_slice(&self.clock.hms(message_secs(m, d)));
                out.push(b' ');
                match &d.from {
                    Some(from) => {
                        self.push_nick(out, from);
                        self.push_mark(out, m.mark, true);
                        out.extend_from_slice(b": ");
                    }
                    None => self.push_mark(out, m.mark, false),
                }
                push_escaped(out, &d.text);
            }
            Format::Template(pieces) => {
                for p in pieces {
                    match p {
                        Piece::Literal(s) => out.extend_from_slice(s.as_bytes()),
                        Piece::Field(f) => self.clock.field(out, f, m, d),
                    }
                }
            }
        }
        out.push(b'\n');
    }
}

/// The `[topic] ` in front of a text line (messages, joins and leaves, `--who`), the topic
/// escaped.
fn push_topic_prefix(out: &mut Vec<u8>, topic: &str) {
    out.push(b'[');
    push_escaped(out, topic);
    out.extend_from_slice(b"] ");
}

/// A JSON line. An encrypted message (without the secret) has no text: `text` is null,
/// `encrypted` true, and `payload_base64` holds it exactly, so that a relay passes it on.
fn render_json(out: &mut Vec<u8>, m: &Delivered, d: &Decoded) {
    let line = Object::start(out)
        .str("topic", &String::from_utf8_lossy(m.topic))
        .opt_str("from", d.from.as_deref())
        .opt_str("text", (!d.encrypted).then_some(&d.text))
        .opt_str("ts", d.ts.as_deref())
        .opt_str("id", d.id.as_deref())
        .uint("qos", m.qos.into())
        .bool("retain", m.retain)
        .str("received", &received_rfc3339(m));
    let line = match m.properties {
        Some(p) => line.with("properties", |out| push_properties(out, p)),
        None => line,
    };
    let line = match d.encrypted {
        true => line.bool("encrypted", true),
        false => line,
    };
    let line = with_mark(line, m.mark);
    if d.utf8 && !d.encrypted {
        line.end();
    } else {
        let b64 = base64::engine::general_purpose::STANDARD.encode(m.payload);
        line.str("payload_base64", &b64).end();
    }
}

/// `{"user":[["k","v"],…],"content_type":…,"message_expiry":N,"response_topic":…,
/// "correlation_data":…}`, each member only when present; correlation data that is not
/// UTF-8 is `correlation_data_base64`.
fn push_properties(out: &mut Vec<u8>, p: &Properties) {
    let mut props = Object::start(out);
    if !p.user.is_empty() {
        props = props.with("user", |out| {
            out.push(b'[');
            for (i, (k, v)) in p.user.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.push(b'[');
                push_json_str(out, k);
                out.push(b',');
                push_json_str(out, v);
                out.push(b']');
            }
            out.push(b']');
        });
    }
    if let Some(t) = &p.content_type {
        props = props.str("content_type", t);
    }
    if let Some(secs) = p.message_expiry {
        props = props.uint("message_expiry", secs.into());
    }
    if let Some(t) = &p.response_topic {
        props = props.str("response_topic", t);
    }
    if let Some(d) = &p.correlation_data {
        props = match std::str::from_utf8(d) {
            Ok(text) => props.str("correlation_data", text),
            Err(_) => props.str(
                "correlation_data_base64",
                &base64::engine::general_purpose::STANDARD.encode(d),
            ),
        };
    }
    props.end();
}

fn received_rfc3339(m: &Delivered) -> String {
    envelope::system_rfc3339(m.received)
}

/// A nick's colour: one of twelve readable SGR foreground colours (31–36, 91–96), the
/// same for the same nick in every run (FNV-1a of its bytes).
pub fn nick_color(nick: &str) -> u8 {
    const PALETTE: [u8; 12] = [31, 32, 33, 34, 35, 36, 91, 92, 93, 94, 95, 96];
    let hash = nick.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    PALETTE[(hash % PALETTE.len() as u64) as usize]
}

/// The message's time in Unix seconds: its envelope `ts`, else when it was received.
fn message_secs(m: &Delivered, d: &Decoded) -> i64 {
    d.ts.as_deref()
        .and_then(envelope::parse_rfc3339)
        .unwrap_or_else(|| received_secs(m))
}

/// When `m` was received, in seconds since the epoch.
fn received_secs(m: &Delivered) -> i64 {
    m.received
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Local `HH:MM:SS`, computed once per distinct second.
#[derive(Default)]
struct LocalClock {
    last: Option<(i64, [u8; 8])>,
}

impl LocalClock {
    fn hms(&mut self, secs: i64) -> [u8; 8] {
        if let Some((s, v)) = self.last
            && s == secs
        {
            return v;
        }
        let mut v = *b"00:00:00";
        if let Some(t) = chrono::Local.timestamp_opt(secs, 0).earliest() {
            let s = t.format("%H:%M:%S").to_string();
            if s.len() == 8 {
                v.copy_from_slice(s.as_bytes());
            }
        }
        self.last = Some((secs, v));
        v
    }

    fn field(&mut self, out: &mut Vec<u8>, f: &Field, m: &Delivered, d: &Decoded) {
        let esc_opt = |out: &mut Vec<u8>, v: &Option<Cow<str>>| {
            if let Some(s) = v {
                push_escaped(out, s);
            }
        };
        match f {
            Field::Topic => push_escaped(out, &String::from_utf8_lossy(m.topic)),
            Field::From => esc_opt(out, &d.from),
            Field::Text => push_escaped(out, &d.text),
            Field::Time => out.extend_from_slice(&self.hms(message_secs(m, d))),
            Field::Ts => esc_opt(out, &d.ts),
            Field::Received => out.extend_from_slice(received_rfc3339(m).as_bytes()),
            Field::Id => esc_opt(out, &d.id),
            Field::Qos => out.push(b'0' + m.qos),
            Field::Retain => out.extend_from_slice(if m.retain { b"true" } else { b"false" }),
            Field::Fingerprint => {
                if let Some(fp) = m.mark.and_then(Mark::fingerprint) {
                    let _ = write!(out, "{fp}");
                }
            }
            Field::Verified => {
                if let Some(mark) = m.mark {
                    let _ = write!(out, "{}", mark.verified());
                }
            }
            Field::ContentType => {
                if let Some(t) = m.properties.and_then(|p| p.content_type.as_deref()) {
                    push_escaped(out, t);
                }
            }
            Field::UserProperty(key) => {
                // Every value of the key, in order, as HTTP joins a repeated field.
                let values = m.properties.into_iter().flat_map(|p| &p.user);
                let values = values.filter(|(k, _)| k == key).map(|(_, v)| v);
                for (i, v) in values.enumerate() {
                    if i > 0 {
                        out.extend_from_slice(b", ");
                    }
                    push_escaped(out, v);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(payload: &[u8]) -> Delivered<'_> {
        Delivered {
            topic: b"room/1",
            payload,
            qos: 1,
            retain: false,
            received: UNIX_EPOCH + std::time::Duration::from_millis(1_795_694_462_123),
            properties: None,
            mark: None,
        }
    }

    fn render(format: Format, payload: &[u8]) -> String {
        let mut r = Renderer::new(format, false);
        let mut out = Vec::new();
        let m = msg(payload);
        r.render(&mut out, &m, &envelope::decode(payload));
        String::from_utf8(out).unwrap()
    }

    /// A message with `mark`, as text and as JSON.
    fn marked(payload: &[u8], mark: Mark) -> (String, serde_json::Value) {
        let mut text = Vec::new();
        let m = Delivered {
            mark: Some(mark),
            ..msg(payload)
        };
        let decoded = envelope::decode(payload);
        Renderer::new(
            Format::Text {
                topic_prefix: false,
            },
            false,
        )
        .render(&mut text, &m, &decoded);
        let mut json = Vec::new();
        Renderer::new(Format::Json, false).render(&mut json, &m, &decoded);
        let json = serde_json::from_slice(&json).expect("JSON");
        (
            String::from_utf8(text).expect("UTF-8")[9..].to_owned(),
            json,
        )
    }

    #[test]
    fn marks_in_text_and_json() {
        use crate::room::sign::Fingerprint;
        let fp = Fingerprint([0xab; 32]);
        let env = br#"{"id":"1","from":"alice","ts":"2026-11-26T12:01:02.123Z","text":"hi"}"#;
        let (text, json) = marked(env, Mark::Changed(fp));
        assert_eq!(
            text,
            "alice [KEY CHANGED abababababababab… — not verified]: hi\n"
        );
        assert_eq!(
            (
                &json["verified"],
                &json["key_changed"],
                json["fingerprint"].as_str().map(str::len)
            ),
            (
                &serde_json::json!(false),
                &serde_json::json!(true),
                Some(64)
            )
        );
        let (text, json) = marked(env, Mark::Downgraded);
        assert_eq!(text, "alice [UNSIGNED — not verified]: hi\n");
        assert_eq!(
            (&json["unsigned"], json.get("fingerprint")),
            (&serde_json::json!(true), None)
        );
        let (text, json) = marked(env, Mark::Verified(fp));
        assert_eq!(text, "alice: hi\n");
        assert_eq!(
            (&json["verified"], json.get("key_changed")),
            (&serde_json::json!(true), None)
        );
        let (text, _) = marked(b"raw bytes", Mark::Nameless(fp));
        assert_eq!(text, "[key abababababababab…] raw bytes\n");
        // A nick with a zero-width space does not pass for another.
        let env = "{\"from\":\"ali\u{200b}ce\",\"text\":\"x\"}".as_bytes();
        let (text, _) = marked(env, Mark::NewKey(fp));
        assert!(
            text.starts_with("ali\\u{200b}ce [new key abababababababab…]"),
            "{text}"
        );
    }

    #[test]
    fn text_with_and_without_sender() {
        let env = br#"{"id":"1","from":"al\u001bice","ts":"2026-11-26T12:01:02.123Z","text":"hi\nthere"}"#;
        let line = render(Format::Text { topic_prefix: true }, env);
        assert!(line.starts_with("[room/1] "), "{line}");
        assert!(line.ends_with(" al\\x1bice: hi\\nthere\n"), "{line}");
        let raw = render(
            Format::Text {
                topic_prefix: false,
            },
            b"plain",
        );
        assert_eq!(raw.len(), "HH:MM:SS plain\n".len(), "{raw}");
        assert!(raw.ends_with(" plain\n"));
    }

    #[test]
    fn json_lines_are_valid_and_complete() {
        let line = render(Format::Json, b"\xffbin\x1b");
        assert_eq!(line.matches('\n').count(), 1);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["from"], serde_json::Value::Null);
        assert_eq!(v["text"], "\u{fffd}bin\u{1b}");
        assert_eq!(v["payload_base64"], "/2Jpbhs=");
        assert_eq!(v["received"], "2026-11-26T12:01:02.123Z");
        assert!(!line.contains('\u{1b}'));
    }

    #[test]
    fn templates() {
        let env = br#"{"id":"x1","from":"bob","ts":"2026-11-26T12:01:02.123Z","text":"yo"}"#;
        let t = Format::template("{{{topic}}}\\t{from}|{text}|{id}|{qos}|{retain}|{ts}").unwrap();
        assert_eq!(
            render(t, env),
            "{room/1}\tbob|yo|x1|1|false|2026-11-26T12:01:02.123Z\n"
        );
        let t = Format::template("{from}:{text}:{id}").unwrap();
        assert_eq!(render(t, b"raw"), ":raw:\n");
        assert!(Format::template("{nope}").unwrap_err().contains("{nope}"));
        assert!(Format::template("a}b").is_err());
        assert!(Format::template("{text").unwrap_err().contains("unclosed"));
    }

    fn with_properties(format: Format, props: &Properties) -> String {
        let mut r = Renderer::new(format, false);
        let mut out = Vec::new();
        let payload = br#"{"id":"x1","from":"bob","ts":"2026-11-26T12:01:02.123Z","text":"yo"}"#;
        let m = Delivered {
            properties: Some(props),
            ..msg(payload)
        };
        r.render(&mut out, &m, &envelope::decode(payload));
        String::from_utf8(out).unwrap()
    }

    fn hostile() -> Properties {
        Properties {
            user: vec![
                ("k".into(), "1".into()),
                ("k".into(), "2\u{1b}[31m".into()),
                ("\u{202e}é\"".into(), "\n".into()),
            ],
            content_type: Some("text/plain\u{7}".into()),
            message_expiry: Some(4_294_967_295),
            response_topic: Some("re/\u{2028}".into()),
            correlation_data: Some(bytes::Bytes::from_static(b"\xff\x00id")),
        }
    }

    #[test]
    fn json_properties_keep_order_repeats_and_every_byte() {
        let line = with_properties(Format::Json, &hostile());
        assert_eq!(line.matches('\n').count(), 1, "{line}");
        assert!(!line.contains('\u{1b}') && !line.contains('\u{7}') && !line.contains('\u{202e}'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        let p = &v["properties"];
        assert_eq!(
            p["user"],
            serde_json::json!([["k", "1"], ["k", "2\u{1b}[31m"], ["\u{202e}é\"", "\n"]])
        );
        assert_eq!(p["content_type"], "text/plain\u{7}");
        assert_eq!(p["message_expiry"], 4_294_967_295u64);
        assert_eq!(p["response_topic"], "re/\u{2028}");
        assert_eq!(p["correlation_data_base64"], "/wBpZA==");
        assert!(p.get("correlation_data").is_none());
        let text = Properties {
            correlation_data: Some(bytes::Bytes::from_static(b"req-7")),
            ..Properties::default()
        };
        let v: serde_json::Value =
            serde_json::from_str(&with_properties(Format::Json, &text)).unwrap();
        assert_eq!(
            v["properties"],
            serde_json::json!({"correlation_data": "req-7"})
        );
        // None at all: no key.
        assert!(render(Format::Json, b"x").find("properties").is_none());
    }

    #[test]
    fn templates_show_user_properties_and_the_content_type_escaped() {
        let t = Format::template("{user:k}|{user:missing}|{content_type}|{text}").unwrap();
        assert_eq!(
            with_properties(t, &hostile()),
            "1, 2\\x1b[31m||text/plain\\x07|yo\n"
        );
        let t = Format::template("[{user:k}{content_type}]").unwrap();
        assert_eq!(render(t, b"raw"), "[]\n");
        // Text output is unchanged by properties.
        let plain = Format::Text {
            topic_prefix: false,
        };
        let line = with_properties(plain, &hostile());
        assert!(line.ends_with(" bob: yo\n"), "{line}");
    }
}
