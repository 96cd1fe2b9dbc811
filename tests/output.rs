//! chat-sub's output as a user sees it (chat-sub(1) OUTPUT, JSON FORMAT, FORMAT
//! TEMPLATES): the text format, terminal safety, `--json`, `--format`, `--raw`, a closed
//! stdout, promptness, and the options that end a run (`--count`, `--timeout`) or filter
//! it (`--no-retained`).
//!
//! Every test runs the real binaries against both test brokers (`each_broker!`: the
//! embedded chat-broker, and mosquitto when installed) and compares the exact bytes
//! chat-sub wrote. Payloads that chat-pub would never send (hand-made envelopes, raw and
//! binary payloads) are published with `publish_raw`, which sends the bytes as they are
//! and needs nothing installed. The helpers set TZ=UTC, so envelope times are predictable.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::common::*;
use base64::Engine;

/// The `ts` of the hand-made envelopes, and what it looks like in UTC.
const TS: &str = "2026-01-02T03:04:05.678Z";
const TS_HMS: &str = "03:04:05";
/// The `id` of the hand-made envelopes.
const ID: &str = "0123456789abcdef0123456789abcdef";

/// Runs `chat-pub ARGS` without stdin input and checks that it succeeded.
fn chat_pub_ok(broker: &Broker, args: &[&str]) {
    run(&mut chat_pub(broker, args), b"").expect_code(0);
}

/// A hand-made envelope with the fixed `id` and `ts` (serde_json does the JSON escaping,
/// so any string can be carried).
fn envelope(from: &str, text: &str) -> Vec<u8> {
    serde_json::json!({"id": ID, "from": from, "ts": TS, "text": text})
        .to_string()
        .into_bytes()
}

/// Current UTC time in chat-sub's RFC 3339 form (fixed width, so strings compare in order).
fn now_rfc3339() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// Checks that `out` is exactly `lines` lines of UTF-8 with nothing a terminal would act
/// on: no C0 control but tab and the line ends, no DEL, no C1, no bidi control.
#[track_caller]
fn assert_terminal_safe(out: &[u8], lines: usize) {
    let s =
        std::str::from_utf8(out).unwrap_or_else(|e| panic!("output is not UTF-8 ({e}): {:?}", out));
    assert!(s.ends_with('\n'), "output does not end a line: {s:?}");
    assert_eq!(s.matches('\n').count(), lines, "line count of {s:?}");
    let bad = s.chars().find(|&c| {
        matches!(c,
            '\0'..='\x08' | '\x0b'..='\x1f' | '\x7f'..='\u{9f}'
            | '\u{061c}' | '\u{200e}' | '\u{200f}'
            | '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    });
    assert_eq!(bad, None, "a terminal control character in {s:?}");
}

/// What the default text format and `-F {topic}|{from}|{text}` printed for one message
/// published on `ROOT/LEAF`, both subscribed to `ROOT/#`.
struct Shown {
    root: String,
    text: Vec<u8>,
    template: Vec<u8>,
}

/// Publishes `payload` (at QoS 1, with `publish_raw`) on `ROOT/leaf` and collects what
/// both subscribers printed.
fn show(broker: &Broker, leaf: &str, payload: &[u8]) -> Shown {
    let root = unique_topic("shown");
    let filter = format!("{root}/#");
    let text_sub = Proc::subscriber(broker, &["-n", "1", &filter]);
    let template_sub =
        Proc::subscriber(broker, &["-n", "1", "-F", "{topic}|{from}|{text}", &filter]);
    publish_raw(broker, &format!("{root}/{leaf}"), payload, 1, false);
    Shown {
        text: text_sub.finish().expect_code(0).stdout.clone(),
        template: template_sub.finish().expect_code(0).stdout.clone(),
        root,
    }
}

impl Shown {
    /// Asserts both outputs are one safe line showing `leaf`, `from` (None: a raw
    /// message) and `text` exactly as given (the escaped forms).
    #[track_caller]
    fn expect(&self, leaf: &str, from: Option<&str>, text: &str) {
        assert_terminal_safe(&self.text, 1);
        assert_terminal_safe(&self.template, 1);
        let line = String::from_utf8_lossy(&self.text);
        let prefix = format!("[{}/{leaf}] ", self.root);
        let rest = line
            .strip_prefix(&prefix)
            .unwrap_or_else(|| panic!("{line:?} does not start with {prefix:?}"));
        let sender = from.map(|f| format!("{f}: ")).unwrap_or_default();
        assert_eq!(after_clock(rest), format!("{sender}{text}\n"));
        assert_eq!(
            String::from_utf8_lossy(&self.template),
            format!("{}/{leaf}|{}|{text}\n", self.root, from.unwrap_or(""))
        );
    }
}

/// Asserts that `-F TEMPLATE` is a usage error (exit 2, nothing on stdout) whose message
/// contains `needle`, decided before connecting: nothing listens at the broker address,
/// so a chat-sub that tried to connect would retry for [`LONG_CONNECT_TIMEOUT`] (the
/// test's deadline fails it first) and then exit 3.
#[track_caller]
fn expect_template_usage_error(template: &str, needle: &str) {
    let url = "mqtt://127.0.0.1:1"; // nothing is served on port 1
    let mut cmd = tool("chat-sub");
    cmd.args(["-b", url, "--connect-timeout", LONG_CONNECT_TIMEOUT]);
    cmd.args(["-F", template, "some/topic"]);
    let f = run(&mut cmd, b"");
    f.expect_code(2);
    assert!(f.stdout.is_empty(), "{}", f.stdout_str());
    assert!(
        f.stderr.starts_with("chat-sub: ") && f.stderr.contains(needle),
        "stderr does not say {needle:?}: {:?}",
        f.stderr
    );
}

/// A child process killed if the test ends early.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

// ---------------------------------------------------------------------------------------
// The default text format

each_broker! {
    fn text_shows_clock_nick_and_text_for_an_envelope(broker) {
        let topic = unique_topic("text");
        let sub = Proc::subscriber(broker, &["-n", "1", &topic]);
        chat_pub_ok(broker, &["--nick", "alice", "-m", "hello", &topic]);
        let out = sub.finish();
        out.expect_code(0);
        // A single plain topic: no "[topic] " prefix.
        assert_eq!(after_clock(&out.stdout_str()), "alice: hello\n");
    }
}

each_broker! {
    fn text_shows_a_raw_payload_without_sender(broker) {
        let topic = unique_topic("rawtext");
        let sub = Proc::subscriber(broker, &["-n", "1", &topic]);
        publish_raw(broker, &topic, b"hi", 1, false);
        let out = sub.finish();
        out.expect_code(0);
        assert_eq!(after_clock(&out.stdout_str()), "hi\n");
    }
}

each_broker! {
    fn text_time_is_the_envelope_ts_in_local_time(broker) {
        let topic = unique_topic("localtime");
        let utc = Proc::subscriber(broker, &["-n", "1", &topic]);
        // India is UTC+5:30 all year (a POSIX TZ rule: no tz database needed).
        let mut cmd = chat_sub(broker, &["-v", "-n", "1", &topic]);
        cmd.env("TZ", "IST-5:30");
        let india = Proc::spawn(&mut cmd);
        india.wait_stderr("subscribed to");
        publish_raw(broker, &topic, &envelope("bob", "timed"), 1, false);
        assert_eq!(
            utc.finish().expect_code(0).stdout_str(),
            format!("{TS_HMS} bob: timed\n")
        );
        assert_eq!(
            india.finish().expect_code(0).stdout_str(),
            "08:34:05 bob: timed\n"
        );
    }
}

each_broker! {
    fn text_has_a_topic_prefix_when_the_filter_has_a_wildcard(broker) {
        let root = unique_topic("prefix");
        let topic = format!("{root}/room");
        let plus = Proc::subscriber(broker, &["-n", "1", &format!("{root}/+")]);
        let hash = Proc::subscriber(broker, &["-n", "1", &format!("{root}/#")]);
        publish_raw(broker, &topic, &envelope("bob", "hey"), 1, false);
        let want = format!("[{topic}] {TS_HMS} bob: hey\n");
        assert_eq!(plus.finish().expect_code(0).stdout_str(), want);
        assert_eq!(hash.finish().expect_code(0).stdout_str(), want);
    }
}

each_broker! {
    fn text_has_a_topic_prefix_when_several_topics_are_given(broker) {
        let a = unique_topic("several");
        let b = unique_topic("several");
        let sub = Proc::subscriber(broker, &["-n", "2", &a, &b]);
        publish_raw(broker, &a, &envelope("bob", "to a"), 1, false);
        publish_raw(broker, &b, b"to b", 1, false);
        let out = sub.finish();
        out.expect_code(0);
        let lines = out.lines();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert_eq!(lines[0], format!("[{a}] {TS_HMS} bob: to a"));
        let raw = lines[1]
            .strip_prefix(&format!("[{b}] "))
            .unwrap_or_else(|| panic!("no [{b}] prefix: {:?}", lines[1]));
        assert_eq!(after_clock(raw), "to b");
    }
}

each_broker! {
    fn invalid_utf8_in_text_mode_shows_replacement_characters_on_one_line(broker) {
        let topic = unique_topic("badutf8");
        let sub = Proc::subscriber(broker, &["-n", "1", &topic]);
        publish_raw(broker, &topic, b"bad\xff\xfe\nline\x1b", 1, false);
        let out = sub.finish();
        out.expect_code(0);
        assert_terminal_safe(&out.stdout, 1);
        assert_eq!(
            after_clock(&out.stdout_str()),
            "bad\u{fffd}\u{fffd}\\nline\\x1b\n"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Terminal safety of the text format and -F, one class of characters per test.
//
// C0, DEL and C1 are tested in nick and text only: a topic holding them is malformed
// UTF-8 to MQTT, which a broker may refuse (mosquitto disconnects the publisher), so it
// cannot be relied on to reach chat-sub. Bidi controls are legal in topics and are
// tested there too.

each_broker! {
    fn c0_controls_in_nick_and_text_are_escaped(broker) {
        let shown = show(
            broker,
            "room",
            &envelope("al\x1bice\r\n", "a\nb\rc\x1b[2Jd\x1b]0;title\x07e\0"),
        );
        shown.expect(
            "room",
            Some(r"al\x1bice\r\n"),
            r"a\nb\rc\x1b[2Jd\x1b]0;title\x07e\x00",
        );
    }
}

each_broker! {
    fn c0_controls_in_a_raw_payload_are_escaped(broker) {
        let shown = show(broker, "room", b"line1\nline2\r\x1b[2J\x1b]0;title\x07");
        shown.expect("room", None, r"line1\nline2\r\x1b[2J\x1b]0;title\x07");
    }
}

each_broker! {
    fn del_in_nick_and_text_is_escaped(broker) {
        let shown = show(broker, "room", &envelope("bo\x7fb", "un\x7fdo"));
        shown.expect("room", Some(r"bo\x7fb"), r"un\x7fdo");
    }
}

each_broker! {
    fn c1_controls_in_nick_and_text_are_escaped(broker) {
        // U+009B is CSI on terminals that honour 8-bit controls; U+0085 is NEL, a newline.
        let shown = show(broker, "room", &envelope("ev\u{9b}il", "\u{9b}2Jx\u{85}y"));
        shown.expect("room", Some(r"ev\u{9b}il"), r"\u{9b}2Jx\u{85}y");
    }
}

each_broker! {
    fn bidi_controls_in_topic_nick_and_text_are_escaped(broker) {
        let shown = show(
            broker,
            "\u{202e}evil\u{2066}",
            &envelope("\u{202e}ecila", "abc\u{202e}fed\u{2066}x\u{2069}"),
        );
        shown.expect(
            r"\u{202e}evil\u{2066}",
            Some(r"\u{202e}ecila"),
            r"abc\u{202e}fed\u{2066}x\u{2069}",
        );
    }
}

each_broker! {
    fn tab_stays_a_tab_and_backslash_is_printed_once(broker) {
        let shown = show(
            broker,
            "room",
            &envelope("a\tb", "col1\tcol2 C:\\dir \\n \\x1b"),
        );
        shown.expect("room", Some("a\tb"), "col1\tcol2 C:\\dir \\n \\x1b");
    }
}

// ---------------------------------------------------------------------------------------
// --json

each_broker! {
    fn json_has_exactly_the_documented_keys_and_null_for_raw(broker) {
        let topic = unique_topic("jsonkeys");
        let sub = Proc::subscriber(broker, &["--json", "-n", "2", &topic]);
        let before = now_rfc3339();
        publish_raw(broker, &topic, &envelope("bob", "hello"), 1, false);
        publish_raw(broker, &topic, b"raw hi", 1, false);
        let out = sub.finish();
        let after = now_rfc3339();
        out.expect_code(0);
        let msgs = json_lines(&out.lines());
        assert_eq!(msgs.len(), 2, "{}", out.stdout_str());
        let keys = [
            "from", "id", "qos", "received", "retain", "text", "topic", "ts",
        ];
        for m in &msgs {
            let mut got: Vec<&str> = m
                .as_object()
                .expect("object")
                .keys()
                .map(|k| k.as_str())
                .collect();
            got.sort_unstable();
            assert_eq!(got, keys, "{m}");
            assert_eq!(m["topic"], topic.as_str());
            // Published at QoS 1, subscribed at chat-sub's default QoS 1.
            assert_eq!(m["qos"], broker.delivered_qos(1, 1));
            assert_eq!(m["retain"], false);
            let received = m["received"].as_str().expect("received is a string");
            assert!(
                before.as_str() <= received && received <= after.as_str(),
                "received {received} not between {before} and {after}"
            );
        }
        assert_eq!(msgs[0]["from"], "bob");
        assert_eq!(msgs[0]["text"], "hello");
        assert_eq!(msgs[0]["ts"], TS);
        assert_eq!(msgs[0]["id"], ID);
        assert_eq!(msgs[1]["text"], "raw hi");
        for key in ["from", "ts", "id"] {
            assert!(msgs[1][key].is_null(), "raw {key}: {}", msgs[1]);
        }
    }
}

each_broker! {
    fn json_non_utf8_payload_carries_its_exact_bytes_in_base64(broker) {
        let topic = unique_topic("jsonbin");
        let sub = Proc::subscriber(broker, &["--json", "-n", "1", &topic]);
        let payload = b"\xff\xfe\x00ok\x1b[2J\x80\n";
        publish_raw(broker, &topic, payload, 1, false);
        let out = sub.finish();
        out.expect_code(0);
        assert_terminal_safe(&out.stdout, 1);
        let m = &json_lines(&out.lines())[0];
        assert_eq!(m["text"], "\u{fffd}\u{fffd}\0ok\u{1b}[2J\u{fffd}\n");
        let b64 = m["payload_base64"].as_str().expect("payload_base64");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .expect("valid base64");
        assert_eq!(bytes, payload);
        assert_eq!(m.as_object().expect("object").len(), 9, "{m}");
    }
}

each_broker! {
    fn json_escapes_terminal_controls_but_keeps_the_values(broker) {
        let root = unique_topic("jsonsafe");
        let topic = format!("{root}/\u{202e}x\u{2066}");
        let from = "al\x1bice\u{9b}\u{202e}";
        let text = "a\nb\r\x1b[2J\x1b]0;t\x07\x7f\u{9b}\u{85}\u{202e}\u{2066}\t\\";
        let sub = Proc::subscriber(broker, &["--json", "-n", "1", &format!("{root}/#")]);
        publish_raw(broker, &topic, &envelope(from, text), 1, false);
        let out = sub.finish();
        out.expect_code(0);
        assert_terminal_safe(&out.stdout, 1);
        assert!(
            !out.stdout.contains(&b'\t'),
            "raw tab in JSON: {}",
            out.stdout_str()
        );
        let m = &json_lines(&out.lines())[0];
        assert_eq!(m["topic"], topic.as_str());
        assert_eq!(m["from"], from);
        assert_eq!(m["text"], text);
    }
}

each_broker! {
    fn json_marks_a_retained_message(broker) {
        let topic = unique_topic("jsonretain");
        chat_pub_ok(broker, &["-r", "-m", "old", &topic]);
        let sub = Proc::subscriber(broker, &["--json", "-n", "2", &topic]);
        chat_pub_ok(broker, &["-m", "new", &topic]);
        let out = sub.finish();
        out.expect_code(0);
        let msgs = json_lines(&out.lines());
        assert_eq!(msgs.len(), 2, "{}", out.stdout_str());
        assert_eq!(
            (&msgs[0]["text"], &msgs[0]["retain"]),
            (&"old".into(), &true.into())
        );
        assert_eq!(
            (&msgs[1]["text"], &msgs[1]["retain"]),
            (&"new".into(), &false.into())
        );
    }
}

// ---------------------------------------------------------------------------------------
// -F / --format

each_broker! {
    fn format_fills_every_placeholder_of_an_envelope(broker) {
        let topic = unique_topic("format");
        let template = "{topic}|{from}|{text}|{time}|{ts}|{id}|{qos}|{retain}|{received}";
        let sub = Proc::subscriber(broker, &["-n", "1", "-F", template, &topic]);
        let before = now_rfc3339();
        publish_raw(broker, &topic, &envelope("bob", "hi"), 1, false);
        let out = sub.finish();
        let after = now_rfc3339();
        out.expect_code(0);
        let line = out.stdout_str();
        let qos = broker.delivered_qos(1, 1); // published at 1, subscribed at 1
        let want = format!("{topic}|bob|hi|{TS_HMS}|{TS}|{ID}|{qos}|false|");
        let received = line
            .strip_prefix(&want)
            .unwrap_or_else(|| panic!("{line:?} does not start with {want:?}"))
            .strip_suffix('\n')
            .expect("one line");
        assert!(
            before.as_str() <= received && received <= after.as_str(),
            "received {received:?} not between {before} and {after}"
        );
    }
}

each_broker! {
    fn format_leaves_from_ts_id_empty_for_a_raw_message(broker) {
        let topic = unique_topic("formatraw");
        let template = "<{from}|{ts}|{id}|{text}|{qos}|{retain}>{time}={received}";
        let sub = Proc::subscriber(broker, &["-n", "1", "-F", template, &topic]);
        publish_raw(broker, &topic, b"hi", 1, false);
        let out = sub.finish();
        out.expect_code(0);
        let line = out.stdout_str();
        let (fields, times) = line.split_once('>').expect("a '>' in the line");
        let qos = broker.delivered_qos(1, 1); // published at 1, subscribed at 1
        assert_eq!(fields, format!("<|||hi|{qos}|false"));
        // A raw message has no ts: {time} is when it was received (TZ=UTC).
        let (time, received) = times.trim_end().split_once('=').expect("a '='");
        assert_eq!(received.len(), 24, "{received:?}");
        assert_eq!(time, &received[11..19], "{line:?}");
    }
}

each_broker! {
    fn format_doubled_braces_are_literal_and_backslash_t_is_a_tab(broker) {
        let topic = unique_topic("braces");
        let sub = Proc::subscriber(broker, &["-n", "1", "-F", r"{{{text}}}\t{{from}}", &topic]);
        publish_raw(broker, &topic, &envelope("bob", "hi"), 1, false);
        assert_eq!(sub.finish().expect_code(0).stdout_str(), "{hi}\t{from}\n");
    }
}

#[test]
fn format_unknown_placeholder_is_a_usage_error_before_connecting() {
    expect_template_usage_error("{text} {nope}", "{nope}");
}

#[test]
fn format_lone_closing_brace_is_a_usage_error_before_connecting() {
    expect_template_usage_error("{text} }", "'}'");
}

#[test]
fn format_unclosed_brace_is_a_usage_error_before_connecting() {
    expect_template_usage_error("{text", "unclosed");
}

// ---------------------------------------------------------------------------------------
// --raw

each_broker! {
    fn raw_prints_each_payload_byte_for_byte(broker) {
        let topic = unique_topic("raw");
        let sub = Proc::subscriber(broker, &["--raw", "-n", "2", &topic]);
        let binary = b"bin\x00\xff\x1b[2J\r\n\x80\xc2\x9bend";
        let env = envelope("bob", "esc \x1b");
        publish_raw(broker, &topic, binary, 1, false);
        publish_raw(broker, &topic, &env, 1, false);
        let out = sub.finish();
        out.expect_code(0);
        let want = [&binary[..], b"\n", &env, b"\n"].concat();
        assert_eq!(out.stdout, want);
    }
}

// ---------------------------------------------------------------------------------------
// A closed stdout, promptness

each_broker! {
    fn closed_stdout_ends_chat_sub_at_once_quietly_with_status_0(broker) {
        let topic = unique_topic("head");
        // A retained message arrives as soon as chat-sub subscribes, so the test needs no
        // log line to know when; nothing is published after it.
        publish_raw(broker, &topic, b"first", 1, true);
        let mut child = Guard(
            chat_sub(broker, &["-F", "{text}", &topic])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start chat-sub"),
        );
        let stdout = child.0.stdout.take().expect("stdout");
        let mut stderr = child.0.stderr.take().expect("stderr");
        let errors = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        // `head -n 1`: read one line, then close the pipe.
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = Vec::new();
            let _ = reader.read_until(b'\n', &mut line);
            let _ = tx.send((line, reader));
        });
        let (line, reader) = rx
            .recv_timeout(DEADLINE)
            .expect("no first line from chat-sub");
        assert_eq!(String::from_utf8_lossy(&line), "first\n");
        drop(reader);
        // Nothing else can end it: no -n, no -W, and nothing is published after the first
        // line, so no write finds the pipe closed. Ending at all is noticing the close.
        let mut status = None;
        wait_until(
            "chat-sub ended after its stdout was closed",
            || {
                status = child.0.try_wait().expect("try_wait");
                status.is_some()
            },
            String::new,
        );
        assert_eq!(status.and_then(|s| s.code()), Some(0), "{status:?}");
        assert_eq!(errors.join().expect("stderr reader"), "");
    }
}

each_broker! {
    /// The line is printed when it arrives, not when something else happens: with a
    /// keep-alive of an hour, far beyond the test's deadline, nothing but the message
    /// itself reaches chat-sub (no ping, no other message) before the deadline, and it
    /// does not exit.
    fn a_message_reaches_stdout_while_chat_sub_runs(broker) {
        let topic = unique_topic("prompt");
        let mut sub = Proc::subscriber(broker, &["-k", "3600", "-F", "{from}: {text}", &topic]);
        chat_pub_ok(broker, &["--nick", "alice", "-m", "ping", &topic]);
        assert_eq!(sub.wait_lines(1), ["alice: ping"]);
        assert!(!sub.exited(), "chat-sub exited: {}", sub.stderr());
    }
}

each_broker! {
    fn a_burst_of_5000_messages_arrives_complete_and_in_order(broker) {
        let topic = unique_topic("burst");
        let sub = Proc::subscriber(broker, &["-F", "{text}", "-n", "5000", &topic]);
        let input: String = (0..5000).map(|i| format!("message {i}\n")).collect();
        run(&mut chat_pub(broker, &[&topic]), input.as_bytes()).expect_code(0);
        let out = sub.finish();
        out.expect_code(0);
        if out.stdout != input.as_bytes() {
            let lines = out.lines();
            let first_wrong = lines
                .iter()
                .enumerate()
                .find(|(i, l)| **l != format!("message {i}"));
            panic!(
                "{} lines; first wrong: {first_wrong:?}\n--- stderr:\n{}",
                lines.len(),
                out.stderr
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// --count, --timeout, --no-retained

each_broker! {
    fn count_exits_0_after_n_messages(broker) {
        let topic = unique_topic("count");
        let sub = Proc::subscriber(broker, &["-F", "{text}", "-n", "2", &topic]);
        chat_pub_ok(broker, &["-m", "one", "-m", "two", "-m", "three", &topic]);
        assert_eq!(sub.finish().expect_code(0).stdout_str(), "one\ntwo\n");
    }
}

each_broker! {
    /// `-W 1` ends the run by itself (nothing else would), with status 0 and no output,
    /// and not before its second: a floor the tool's own timer guarantees, which a slower
    /// machine can only exceed.
    fn timeout_without_messages_exits_0_after_the_time(broker) {
        let topic = unique_topic("timeout");
        let started = Instant::now();
        let out = run(&mut chat_sub(broker, &["-W", "1", &topic]), b"");
        let took = started.elapsed();
        out.expect_code(0);
        assert_eq!(out.stdout_str(), "");
        assert_eq!(out.stderr, "");
        assert!(took >= Duration::from_secs(1), "took {took:?}");
    }
}

each_broker! {
    fn timeout_before_count_is_reached_exits_1_and_says_so(broker) {
        let root = unique_topic("short");
        // Retained, so both arrive at subscription time, well within the second.
        publish_raw(broker, &format!("{root}/a"), b"a", 1, true);
        publish_raw(broker, &format!("{root}/b"), b"b", 1, true);
        let filter = format!("{root}/#");
        let out = run(
            &mut chat_sub(broker, &["-F", "{text}", "-W", "1", "-n", "5", &filter]),
            b"",
        );
        out.expect_code(1);
        let mut lines = out.lines();
        lines.sort();
        assert_eq!(lines, ["a", "b"]);
        assert!(
            out.stderr.starts_with("chat-sub: ") && out.stderr.contains("2 of 5"),
            "stderr does not say 2 of 5 arrived: {:?}",
            out.stderr
        );
    }
}

each_broker! {
    fn no_retained_skips_a_retained_message_but_prints_a_live_one(broker) {
        let topic = unique_topic("noretained");
        publish_raw(broker, &topic, b"old", 1, true);
        let sub = Proc::subscriber(broker, &["-R", "-F", "{text}|{retain}", "-n", "1", &topic]);
        publish_raw(broker, &topic, b"live", 1, false);
        assert_eq!(sub.finish().expect_code(0).stdout_str(), "live|false\n");
    }
}

each_broker! {
    /// A burst that arrives while chat-sub is busy is written in large blocks, not one write
    /// per message: counted by the write(2) calls in /proc/PID/io (8 to 10 here for 5,000,
    /// with either broker). At QoS 0, because at QoS 1 a broker sends only a few
    /// unacknowledged messages at a time (mosquitto 20, chat-broker 100), which bounds any
    /// burst whatever the subscriber does.
    fn a_burst_is_written_in_blocks_not_line_by_line(broker) {
        let topic = unique_topic("blocks");
        let sub = Proc::subscriber(broker, &["-q", "0", "-F", "{text}", &topic]);
        let writes = || -> u64 {
            let io =
                std::fs::read_to_string(format!("/proc/{}/io", sub.pid())).expect("/proc/PID/io");
            io.lines()
                .find_map(|l| l.strip_prefix("syscw: "))
                .and_then(|n| n.trim().parse().ok())
                .expect("syscw in /proc/PID/io")
        };
        // Hold chat-sub still while 5,000 messages queue up at the broker, then let it go.
        sub.signal(libc::SIGSTOP);
        let input: String = (0..5000).map(|i| format!("m{i}\n")).collect();
        run(
            &mut chat_pub(broker, &["-q", "1", &topic]),
            input.as_bytes(),
        )
        .expect_code(0);
        let before = writes();
        sub.signal(libc::SIGCONT);
        let lines = sub.wait_lines(5000);
        assert_eq!(lines.len(), 5000);
        let used = writes() - before;
        assert!(
            used < 500,
            "{used} write calls for a burst of 5000 messages"
        );
    }
}
