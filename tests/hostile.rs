//! Hostile payloads against running subscribers (the envelope in the README, chat-sub(1)
//! OUTPUT and JSON FORMAT): whatever another client publishes, chat-sub stays alive and
//! prints exactly one line per message — valid JSON with the documented keys under
//! `--json`, and terminal-safe text in the default format and with `-F`.
//!
//! One test per broker (`each_broker!`) starts `chat-sub --json`, `chat-sub` and
//! `chat-sub -F '{from}|{text}'` on one topic, publishes every payload below with
//! `publish_raw` (the bytes as they are, at QoS 1, in order), then a valid envelope as a
//! marker, and checks each subscriber's output line by line against the payload it shows:
//! deep nesting (100,000 levels), lone surrogate escapes, a 1 MB nick, a multi-megabyte
//! text, an empty payload, 200 random binary payloads, every C0 and C1 control and bidi
//! control, invalid UTF-8, bare JSON scalars and fragments. Payloads stay well under
//! chat-broker's 16 MiB limit.

use crate::common::*;
use base64::Engine;
use mqttchat::escape::push_escaped;
use mqttchat::room::envelope;

const TS: &str = "2026-01-02T03:04:05.678Z";

/// A tiny seeded xorshift64 generator: the same "random" payloads on every run.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// An envelope written by serde_json, not by us: it leaves DEL, C1, bidi controls and
/// line separators raw inside the JSON strings, as other publishers may.
fn envelope_json(id: &str, from: &str, text: &str) -> Vec<u8> {
    serde_json::json!({"id": id, "from": from, "ts": TS, "text": text})
        .to_string()
        .into_bytes()
}

/// Every terminal control character.
fn controls() -> Vec<char> {
    ('\u{0}'..='\u{206f}')
        .filter(|&c| is_terminal_control(c))
        .collect()
}

/// The hostile payloads, each with a name for failure messages.
fn payloads() -> Vec<(String, Vec<u8>)> {
    let mut p: Vec<(String, Vec<u8>)> = Vec::new();
    let mut add = |name: &str, bytes: Vec<u8>| p.push((name.to_owned(), bytes));

    // Deep nesting: too deep for serde_json's recursion limit where it is read, and
    // skipped without limit where it is ignored.
    let (open, close) = ("[".repeat(100_000), "]".repeat(100_000));
    add("deep array", format!("{open}{close}").into_bytes());
    add("deep unclosed array", open.clone().into_bytes());
    add(
        "deep object",
        format!("{}1{}", "{\"a\":".repeat(100_000), "}".repeat(100_000)).into_bytes(),
    );
    add(
        "deep ignored key",
        format!("{{\"text\":\"deep\",\"x\":{open}{close}}}").into_bytes(),
    );
    add(
        "deep text",
        format!("{{\"text\":{open}{close}}}").into_bytes(),
    );
    add(
        "deep from",
        format!("{{\"text\":\"t\",\"from\":{open}{close},\"id\":\"deep-from\"}}").into_bytes(),
    );

    // Lone and reversed surrogates.
    add("lone surrogate text", br#"{"text":"\ud800"}"#.to_vec());
    add(
        "lone surrogate from",
        br#"{"id":"lone-from","from":"\ud800","ts":"2026-01-02T03:04:05.678Z","text":"x"}"#
            .to_vec(),
    );
    add(
        "reversed pair",
        br#"{"text":"\ude00\ud83d","from":"a"}"#.to_vec(),
    );
    add(
        "trailing lead",
        br#"{"text":"ok","from":"\ud83d"}"#.to_vec(),
    );
    add(
        "lone surrogate in an ignored key",
        br#"{"text":"kept","x":"\udfff","id":"lone-ignored"}"#.to_vec(),
    );
    add(
        "valid pair",
        br#"{"text":"\ud83d\ude00","id":"valid-pair"}"#.to_vec(),
    );

    // Huge fields.
    let nick_piece = "nick\u{1b}[2J\u{202e}\u{7}\n";
    let nick = nick_piece.repeat((1 << 20) / nick_piece.len());
    add(
        "1 MB nick",
        envelope_json("huge-nick", &nick, "hello from a long nick"),
    );
    let text_piece = "lorem ipsum \u{1b}[31mred\u{1b}[0m \u{202e}desrever\u{202c} \r\n\t\u{9b}2J ";
    let text = text_piece.repeat((3 << 20) / text_piece.len());
    add("3 MB text", envelope_json("huge-text", "big", &text));
    add("3 MB raw", text.into_bytes());

    add("empty", Vec::new());

    // Every control character: alone in a raw payload, then all in one envelope.
    for c in controls() {
        add(
            &format!("U+{:04X}", c as u32),
            format!("a{c}z").into_bytes(),
        );
    }
    let all: String = controls().into_iter().collect();
    add("all controls", all.clone().into_bytes());
    add(
        "all controls envelope",
        envelope_json("all-controls", &all, &all),
    );
    add(
        "controls as JSON escapes",
        br#"{"id":"escapes","from":"\u001b]0;pwned\u0007","ts":"x","text":"\u001b[2J\r\n\u202e\u2028\u0000"}"#.to_vec(),
    );
    add(
        "C1 bytes (not UTF-8)",
        (0x80u8..0xa0).chain([0x1b, 0x9b, 0x7f]).collect(),
    );
    add("every byte", (0u8..=255).collect());

    // Invalid UTF-8.
    for (name, bytes) in [
        ("overlong slash", &b"\xc0\xaf"[..]),
        ("encoded surrogate", b"\xed\xa0\x80"),
        ("truncated euro", b"\xe2\x82"),
        ("beyond U+10FFFF", b"\xf4\x90\x80\x80"),
        ("ff fe", b"\xff\xfe"),
        ("lone continuation", b"\x80"),
        ("truncated emoji", b"\xf0\x9f\x98"),
        ("escape then invalid", b"\x1b[2J\xff\x1b]0;t\x07"),
        ("invalid inside JSON", b"{\"text\":\"\xff\",\"from\":\"x\"}"),
        ("invalid after JSON", b"{\"text\":\"x\"}\xff"),
    ] {
        add(name, bytes.to_vec());
    }

    // JSON fragments and scalars.
    for s in [
        "{",
        "}",
        "[",
        "42",
        "-1.5e300",
        "null",
        "true",
        "\"text\"",
        "[]",
        "{}",
        "{\"text\":1}",
        "{\"text\":null}",
        "{\"text\":\"a\",\"text\":\"b\"}",
        "{\"text\":\"{from}|{text}}}{{\",\"from\":\"{text}\",\"id\":\"braces\"}",
        " \t\r\n{\"text\":\"after whitespace\",\"id\":\"ws\"}",
        "\u{c}{\"text\":\"after form feed\"}",
    ] {
        add(&format!("JSON {s:?}"), s.as_bytes().to_vec());
    }

    // Random binary.
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    for i in 0..200 {
        let n = (rng.next() % 4097) as usize;
        add(&format!("random #{i}"), rng.bytes(n));
    }
    p
}

/// Splits output bytes into lines, checking that it is UTF-8 and ends with a newline.
#[track_caller]
fn split_lines(out: &[u8], what: &str) -> Vec<String> {
    let s = std::str::from_utf8(out).unwrap_or_else(|e| panic!("{what}: not UTF-8 ({e})"));
    let body = s
        .strip_suffix('\n')
        .unwrap_or_else(|| panic!("{what}: output does not end a line"));
    body.split('\n').map(str::to_owned).collect()
}

/// What the text formats show for `s`.
fn shown(s: &str) -> String {
    let mut out = Vec::new();
    push_escaped(&mut out, s);
    String::from_utf8(out).unwrap()
}

/// Checks that a text line has no raw control character but tab.
#[track_caller]
fn assert_safe(line: &str, name: &str) {
    let bad = line.chars().find(|&c| c != '\t' && is_terminal_control(c));
    assert_eq!(bad, None, "{name}: a raw control character in {line:.200?}");
}

/// Checks a `--json` line against the payload it shows.
#[track_caller]
fn check_json(line: &str, topic: &str, payload: &[u8], name: &str) {
    assert_eq!(
        line.chars().find(|&c| is_terminal_control(c)),
        None,
        "{name}: a raw control character in {line:.200?}"
    );
    let v: serde_json::Value = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("{name}: not JSON ({e}): {line:.200}"));
    let o = v
        .as_object()
        .unwrap_or_else(|| panic!("{name}: not an object"));
    let utf8 = std::str::from_utf8(payload).is_ok();
    let mut keys: Vec<&str> = o.keys().map(String::as_str).collect();
    keys.sort_unstable();
    let mut expected = vec![
        "from", "id", "qos", "received", "retain", "text", "topic", "ts",
    ];
    if !utf8 {
        expected.insert(2, "payload_base64");
    }
    assert_eq!(keys, expected, "{name}");
    let d = envelope::decode(payload);
    let opt = |v: &Option<std::borrow::Cow<str>>| {
        v.as_deref()
            .map_or(serde_json::Value::Null, serde_json::Value::from)
    };
    assert_eq!(o["topic"], topic, "{name}");
    assert!(o["text"] == *d.text, "{name}: text differs");
    assert!(o["from"] == opt(&d.from), "{name}: from differs");
    assert_eq!(o["ts"], opt(&d.ts), "{name}");
    assert_eq!(o["id"], opt(&d.id), "{name}");
    assert_eq!(o["qos"], 1, "{name}");
    assert_eq!(o["retain"], false, "{name}");
    assert!(o["received"].is_string(), "{name}");
    if !utf8 {
        let b64 = o["payload_base64"].as_str().expect("payload_base64 string");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap_or_else(|e| panic!("{name}: bad payload_base64 ({e})"));
        assert!(
            bytes == payload,
            "{name}: payload_base64 is not the payload"
        );
    }
}

/// Checks a default-format line (`HH:MM:SS [from: ]text`) against the payload.
#[track_caller]
fn check_text(line: &str, payload: &[u8], name: &str) {
    assert_safe(line, name);
    let b = line.as_bytes();
    let clock = b.len() >= 9
        && [0, 1, 3, 4, 6, 7].iter().all(|&i| b[i].is_ascii_digit())
        && b[2] == b':'
        && b[5] == b':'
        && b[8] == b' ';
    assert!(clock, "{name}: no clock in {line:.200?}");
    let d = envelope::decode(payload);
    let sender = d
        .from
        .as_deref()
        .map(|f| format!("{}: ", shown(f)))
        .unwrap_or_default();
    assert!(
        line[9..] == format!("{sender}{}", shown(&d.text)),
        "{name}: shows {:.200?}",
        &line[9..]
    );
}

/// Checks a `-F '{from}|{text}'` line against the payload.
#[track_caller]
fn check_template(line: &str, payload: &[u8], name: &str) {
    assert_safe(line, name);
    let d = envelope::decode(payload);
    let expected = format!(
        "{}|{}",
        shown(d.from.as_deref().unwrap_or("")),
        shown(&d.text)
    );
    assert!(line == expected, "{name}: shows {line:.200?}");
}

each_broker! {
    fn hostile_payloads_are_one_safe_line_each(broker) {
        let topic = unique_topic("hostile");
        let json = Proc::subscriber(broker, &["--json", &topic]);
        let text = Proc::subscriber(broker, &[&topic]);
        let template = Proc::subscriber(broker, &["-F", "{from}|{text}", &topic]);

        let mut messages = payloads();
        let marker = envelope_json("marker-id", "marker", "the end");
        messages.push(("marker".to_owned(), marker));
        for (_, payload) in &messages {
            publish_raw(broker, &topic, payload, 1, false);
        }

        let n = messages.len();
        for (what, sub, check) in [
            ("--json", &json, 0),
            ("text", &text, 1),
            ("-F", &template, 2),
        ] {
            sub.wait_lines(n);
            let lines = split_lines(&sub.stdout(), what);
            assert_eq!(lines.len(), n, "{what}: one line per message");
            for ((name, payload), line) in messages.iter().zip(&lines) {
                match check {
                    0 => check_json(line, &topic, payload, name),
                    1 => check_text(line, payload, name),
                    _ => check_template(line, payload, name),
                }
            }
            assert!(lines[n - 1].contains("the end"), "{what}: the marker is not last");
        }
        // Alive, and on its first connection: no payload made anyone drop it.
        for (what, mut sub) in [("--json", json), ("text", text), ("-F", template)] {
            assert!(!sub.exited(), "{what} exited:\n{}", sub.stderr());
            let log = sub.stderr();
            assert!(!log.contains("reconnected"), "{what}:\n{log}");
        }
    }
}
