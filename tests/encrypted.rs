//! End-to-end encrypted rooms (ENCRYPTION in chat-pub(1) and chat-sub(1)): members who
//! share a secret (`--room-secret-file`, or `CHAT_ROOM_SECRET`) read each other as in any
//! room, while the broker and everyone else — mosquitto_sub, chat-sub without the secret
//! — see only `mqttchat:e2:` payloads: `[encrypted]` lines, or `--json` objects marked
//! `"encrypted":true` with the exact payload, which a relay passes on. What does not open
//! with the secret (plain text, another secret, a changed, cut or copied ciphertext,
//! junk, an unknown version) is never shown as a message: it is reported once per kind on
//! stderr, counted at the end of the run, marked in `--json`, and leaves the exit status
//! alone.
//!
//! Every test that needs a broker runs against both (`each_broker!`). mosquitto_sub is
//! the outsider who sees everything the broker carries, mosquitto_pub the stranger who
//! publishes whatever bytes it likes (those tests are skipped without them, unless CI
//! requires them). Secrets live in a [`TempDir`] (mode 600), or in the environment of one
//! child. Subscribers are waited on until they subscribed (watchers until they follow
//! presence too), and sequences end with a sentinel, so "nothing else was printed" is
//! checked, not assumed.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use serde_json::Value;

use crate::common::*;

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// The members' secret.
const SECRET: &str = "Rs-members-7hQ2wLx9pK4vN8mZ";
/// A stranger's secret, as long and as good, but another.
const OTHER_SECRET: &str = "Rs-stranger-3dF6yJ1cT5bG0sHq";
/// What every payload of format version 1 starts with.
const PREFIX: &str = "mqttchat:e2:";

/// Secret files in a scratch directory: the members' (ending in `\r\n`, which is not part
/// of the secret) and a stranger's.
struct Keys {
    dir: TempDir,
    members: String,
    stranger: String,
}

impl Keys {
    fn new() -> Keys {
        let dir = TempDir::new("room-secret");
        let members = secret_file(&dir, "members", format!("{SECRET}\r\n").as_bytes());
        let stranger = secret_file(&dir, "stranger", format!("{OTHER_SECRET}\n").as_bytes());
        Keys {
            dir,
            members,
            stranger,
        }
    }

    /// A file in the scratch directory with these bytes (for `mosquitto_pub -f`).
    fn file(&self, name: &str, bytes: &[u8]) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, bytes).expect("write file");
        s(&path)
    }
}

/// Writes a secret file only its owner can read (0600); returns its path.
fn secret_file(dir: &TempDir, name: &str, content: &[u8]) -> String {
    secret_file_mode(dir, name, content, 0o600)
}

/// Writes a secret file with `mode`; returns its path.
fn secret_file_mode(dir: &TempDir, name: &str, content: &[u8], mode: u32) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, content).expect("write secret file");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    s(&path)
}

/// `chat-pub --room-secret-file KEY --nick NICK -m TEXT ROOM` (no presence), run to
/// success: a member's message, or a sentinel. Each nick signs with an identity of its
/// own, the same in every run of a test (made beside the secret file).
#[track_caller]
fn say_sealed(broker: &Broker, key: &str, room: &str, nick: &str, text: &str) {
    let data = Path::new(key).with_file_name(format!("data-{nick}"));
    let mut cmd = chat_pub(
        broker,
        &["--room-secret-file", key, "--nick", nick, "-m", text, room],
    );
    run(cmd.env("XDG_DATA_HOME", data), b"").expect_code(0);
}

/// `mosquitto_pub -q 1 -t TOPIC ARGS…`, run to success: acknowledged by the broker, so it
/// reaches subscribers in order with what is published after it.
#[track_caller]
fn mosquitto_pub(broker: &Broker, topic: &str, args: &[&str]) {
    let mut cmd = Command::new("mosquitto_pub");
    cmd.args(["-h", "127.0.0.1", "-p", &broker.port.to_string()])
        .args(["-q", "1", "-t", topic])
        .args(args);
    run(&mut cmd, b"").expect_code(0);
}

/// mosquitto_sub -v on `#`: everything the broker carries, as `TOPIC PAYLOAD` lines
/// (`(null)` for an empty payload).
struct Outsider {
    p: Proc,
    probe: String,
}

impl Outsider {
    /// Starts it, ready once it printed a retained probe under `root`, which is then
    /// cleared (its debug output is not flushed, so it cannot say when it subscribed).
    fn start(broker: &Broker, root: &str) -> Outsider {
        let probe = format!("{root}/outsider-probe");
        publish_raw(broker, &probe, b"probe", 1, true);
        let mut c = Command::new("mosquitto_sub");
        c.args(["-h", "127.0.0.1", "-p", &broker.port.to_string()])
            .args(["-v", "-t", "#"]);
        let p = Proc::spawn(&mut c);
        p.wait_stdout(&format!("{probe} probe"));
        publish_raw(broker, &probe, b"", 1, true);
        p.wait_stdout(&format!("{probe} (null)"));
        Outsider { p, probe }
    }

    /// (topic, payload) of everything it saw but the probe, in order.
    fn seen(&self) -> Vec<(String, String)> {
        String::from_utf8_lossy(&self.p.stdout())
            .lines()
            .filter_map(|l| l.split_once(' '))
            .filter(|(t, _)| *t != self.probe)
            .map(|(t, p)| (t.to_owned(), p.to_owned()))
            .collect()
    }

    /// Waits until it saw `n` payloads on topics `which` accepts; returns them.
    #[track_caller]
    fn wait_for(&self, n: usize, which: impl Fn(&str) -> bool) -> Vec<(String, String)> {
        let pick = || -> Vec<(String, String)> {
            self.seen().into_iter().filter(|(t, _)| which(t)).collect()
        };
        wait_until(
            &format!("mosquitto_sub saw {n} payloads"),
            || pick().len() >= n,
            || format!("{:#?}", self.seen()),
        );
        pick()
    }
}

/// `text` with fingerprints masked: the whole one (64 hex digits) as `FINGERPRINT`, the
/// short one of text output (16 and `…`) as `FP…`. Each run makes new identities.
fn masked(text: &str) -> String {
    let hex = |w: &str| {
        w.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    };
    let mut out = String::new();
    for (i, word) in text.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        match word.split_once('…') {
            Some((fp, rest)) if fp.len() == 16 && hex(fp) => out.push_str(&format!("FP…{rest}")),
            _ if word.trim_end().len() == 64 && hex(word.trim_end()) => {
                out.push_str("FINGERPRINT");
                out.push_str(&word[64..]);
            }
            _ => out.push_str(word),
        }
    }
    out
}

/// Whether `payload` (as mosquitto_sub prints it) is an opaque sealed line: the prefix,
/// then nothing but base64 — no nick, no text, no JSON.
fn is_sealed_line(payload: &str) -> bool {
    payload.strip_prefix(PREFIX).is_some_and(|b64| {
        !b64.is_empty()
            && b64
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/')
    })
}

/// The nonce and ciphertext of a sealed payload.
#[track_caller]
fn sealed_body(sealed: &str) -> Vec<u8> {
    let b64 = sealed
        .strip_prefix(PREFIX)
        .unwrap_or_else(|| panic!("not sealed: {sealed}"));
    STANDARD_NO_PAD.decode(b64).expect("canonical base64")
}

/// A sealed payload with this body.
fn sealed_with(body: &[u8]) -> String {
    format!("{PREFIX}{}", STANDARD_NO_PAD.encode(body))
}

/// The exact bytes in a `--json` object's `payload_base64`.
#[track_caller]
fn payload_of(v: &Value) -> Vec<u8> {
    let b64 = v["payload_base64"]
        .as_str()
        .unwrap_or_else(|| panic!("no payload_base64: {v}"));
    STANDARD.decode(b64).expect("base64")
}

/// The sorted keys of a JSON object.
fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .map(String::as_str)
        .collect();
    k.sort_unstable();
    k
}

/// Checks a `--json` line of chat-sub without the secret for a sealed message on
/// `topic`: no sender, no text, no time, no id, marked encrypted, the payload exact.
#[track_caller]
fn check_encrypted_object(v: &Value, topic: &str) -> Vec<u8> {
    assert_eq!(
        keys(v),
        [
            "encrypted",
            "from",
            "id",
            "payload_base64",
            "qos",
            "received",
            "retain",
            "text",
            "topic",
            "ts"
        ],
        "{v}"
    );
    assert_eq!(v["topic"], topic, "{v}");
    for key in ["from", "text", "ts", "id"] {
        assert!(v[key].is_null(), "{key} is not null: {v}");
    }
    assert_eq!(v["encrypted"], true, "{v}");
    let payload = payload_of(v);
    assert!(
        is_sealed_line(&String::from_utf8_lossy(&payload)),
        "payload_base64 does not hold a sealed payload: {v}"
    );
    payload
}

/// Checks a `--json` mark of a payload that did not open: `{"event":"rejected",…}`, with
/// no text.
#[track_caller]
fn check_rejected(v: &Value, topic: &str, reason: &str, qos: u8, retain: bool) {
    assert_eq!(
        keys(v),
        ["event", "qos", "reason", "received", "retain", "topic"],
        "{v}"
    );
    assert_eq!(v["event"], "rejected", "{v}");
    assert_eq!(v["topic"], topic, "{v}");
    assert_eq!(v["reason"], reason, "{v}");
    assert_eq!(v["qos"], qos, "{v}");
    assert_eq!(v["retain"], retain, "{v}");
    let received = v["received"].as_str().expect("received");
    assert!(
        chrono::DateTime::parse_from_rfc3339(received).is_ok(),
        "{v}"
    );
}

/// The reports of chat-sub's stderr, each as `(what, topic, kind)`: `what` is "message"
/// or "presence", `kind` as `--json` names it. A `not shown:` line of any other wording
/// fails.
#[track_caller]
fn reports(stderr: &str) -> Vec<(&'static str, String, &'static str)> {
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix("chat-sub: not shown: "))
        .map(|l| {
            let fail = || panic!("unexpected report wording: {l:?}\n--- stderr:\n{stderr}");
            let Some(l) = l.strip_suffix("; more like it are only counted") else {
                fail()
            };
            let (what, l) = if let Some(l) = l.strip_prefix("a message on '") {
                ("message", l)
            } else if let Some(l) = l.strip_prefix("a presence announcement on '") {
                ("presence", l)
            } else {
                fail()
            };
            let Some((topic, why)) = l.split_once("' ") else {
                fail()
            };
            let kind = match why {
                "is not encrypted" => "plain",
                "is a malformed encrypted payload" => "malformed",
                "is encrypted with a format version this build does not know" => "unknown-version",
                w if w.starts_with("does not open with the room's secret (")
                    && w.ends_with(')') =>
                {
                    "forged"
                }
                _ => fail(),
            };
            (what, topic.to_owned(), kind)
        })
        .collect()
}

/// `(what, topic, kind)` as [`reports`] gives it.
fn rep(
    what: &'static str,
    topic: &str,
    kind: &'static str,
) -> (&'static str, String, &'static str) {
    (what, topic.to_owned(), kind)
}

/// The summary lines at the end of chat-sub's stderr.
fn summaries(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.contains("payload(s) not shown"))
        .collect()
}

/// The summary line of `n` payloads, with `counts` such as "2 plain, 1 forged".
fn summary(n: usize, counts: &str) -> String {
    format!("chat-sub: {n} payload(s) not shown: not sealed with the room's secret ({counts})")
}

/// Stops a chat-sub that runs until told (SIGINT, exit 130) and returns how it ended.
#[track_caller]
fn stop(p: Proc) -> Finished {
    p.signal(libc::SIGINT);
    let out = p.finish();
    out.expect_code(130);
    out
}

/// `chat-sub --who ARGS…`, run to its end.
#[track_caller]
fn who(broker: &Broker, args: &[&str]) -> Finished {
    let mut cmd = chat_sub(broker, &["--who"]);
    cmd.args(args);
    run(&mut cmd, b"")
}

/// `chat-sub -b A -v --json -n 1 ARGS… ROOM | chat-pub -b B --json ARGS…`: a relay of one
/// message through a real pipe, started and waited on until its chat-sub subscribed (its
/// stderr goes to a file the test reads).
struct Relay {
    sub: Child,
    publisher: Option<Proc>,
    log: PathBuf,
    _dir: TempDir,
}

impl Relay {
    fn start(a: &Broker, b: &Broker, args: &[&str], room: &str) -> Relay {
        let dir = TempDir::new("relay");
        let log = dir.path().join("chat-sub.log");
        let mut sub_cmd = chat_sub(a, &["-v", "--json", "-n", "1"]);
        sub_cmd.args(args).arg(room);
        let mut sub = sub_cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("start the relay's chat-sub");
        let out = sub.stdout.take().expect("stdout");
        let mut pub_cmd = chat_pub(b, &["--json"]);
        pub_cmd.args(args);
        let publisher = Proc::spawn_with_stdin(&mut pub_cmd, Stdio::from(out));
        let relay = Relay {
            sub,
            publisher: Some(publisher),
            log,
            _dir: dir,
        };
        wait_until(
            "the relay's chat-sub subscribed",
            || relay.log().contains("subscribed to"),
            || relay.log(),
        );
        relay
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the relay passed its message on and both ends exited 0.
    #[track_caller]
    fn finish(mut self) {
        let mut status = None;
        let sub = &mut self.sub;
        let log = &self.log;
        wait_until(
            "the relay's chat-sub exited",
            || {
                status = sub.try_wait().expect("try_wait");
                status.is_some()
            },
            || std::fs::read_to_string(log).unwrap_or_default(),
        );
        assert!(
            status.is_some_and(|s| s.success()),
            "{status:?}\n{}",
            self.log()
        );
        let published = self.publisher.take().expect("publisher").finish();
        published.expect_code(0);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.sub.kill();
        let _ = self.sub.wait();
    }
}

// ---------------------------------------------------------------------------------------
// 1. Members read the room; everyone else sees sealed payloads
// ---------------------------------------------------------------------------------------

each_broker! {
    /// bob joins an encrypted room, says a line and leaves; zed says "end". Members see it
    /// all as in any room — `--json` (secret from the file, though CHAT_ROOM_SECRET holds
    /// another: the flag wins) and text (secret from CHAT_ROOM_SECRET, matching the file
    /// that ends in `\r\n`). mosquitto_sub sees only sealed lines on the room and on its
    /// presence topics (and the empty message that clears the join); chat-sub without the secret prints
    /// `[encrypted]` (also as -F's `{text}`), no join or leave, and `--json` objects
    /// marked encrypted whose payload_base64 is the bytes mosquitto_sub saw.
    fn members_read_the_room_and_outsiders_see_sealed_payloads(broker) {
        if !have_mosquitto_clients() {
            return;
        }
        let keys = Keys::new();
        let room = unique_topic("sealed-room");
        let outsider = Outsider::start(broker, &room);
        let mut json = chat_sub(broker, &["--room-secret-file", &keys.members, "--json", &room]);
        json.env("CHAT_ROOM_SECRET", OTHER_SECRET);
        let member_json = watch(json);
        let mut text = chat_sub(broker, &[&room]);
        text.env("CHAT_ROOM_SECRET", SECRET);
        let member_text = watch(text);
        let stranger_json = watcher(broker, &["--json", &room]);
        let stranger_text = watcher(broker, &[&room]);
        let stranger_template = watcher(broker, &["-F", "{from}|{text}", &room]);

        let mut bob = member(broker, "bob", &["--room-secret-file", &keys.members, &room]);
        assert_eq!(wait_shorts(&member_json, 1), [ev("join", "bob", &room)]);
        bob.write(b"Hello from bob, sealed\n");
        member_json.wait_lines(2);
        bob.finish().expect_code(0);
        member_json.wait_lines(3);
        say_sealed(broker, &keys.members, &room, "zed", "end");

        assert_eq!(
            wait_shorts(&member_json, 4),
            [
                ev("join", "bob", &room),
                "bob: Hello from bob, sealed".to_string(),
                ev("leave", "bob", &room),
                "zed: end".to_string(),
            ]
        );
        // Each member's key is new to this reader once: marked on its first line.
        let lines = member_text.wait_lines(4);
        let shown: Vec<String> = lines.iter().map(|l| masked(after_clock(l))).collect();
        assert_eq!(
            shown,
            [
                "* bob [new key FP…] joined",
                "bob: Hello from bob, sealed",
                "* bob left",
                "zed [new key FP…]: end"
            ]
        );

        // The outsider: two sealed messages on the room; on the presence topic a sealed
        // join, a sealed leave and the empty message that clears the join; nothing else.
        let presence = format!("mqttchat-presence/{room}/");
        let on_room = outsider.wait_for(2, |t| t == room);
        let on_presence = outsider.wait_for(3, |t| t.starts_with(&presence));
        let seen = outsider.seen();
        assert_eq!(seen.len(), 5, "{seen:#?}");
        for (topic, payload) in &on_room {
            assert!(is_sealed_line(payload), "{topic} {payload}");
        }
        assert!(is_sealed_line(&on_presence[0].1), "{on_presence:?}");
        assert!(is_sealed_line(&on_presence[1].1), "{on_presence:?}");
        assert_eq!(on_presence[2].1, "(null)", "{on_presence:?}");
        assert!(
            on_presence.iter().all(|(t, _)| *t == on_presence[0].0),
            "{on_presence:?}"
        );

        // chat-sub without the secret: the same two payloads, unreadable, and no presence.
        let objects = json_lines(&stranger_json.wait_lines(2));
        let payloads: Vec<Vec<u8>> = objects
            .iter()
            .map(|v| check_encrypted_object(v, &room))
            .collect();
        let seen_payloads: Vec<Vec<u8>> =
            on_room.iter().map(|(_, p)| p.as_bytes().to_vec()).collect();
        assert_eq!(payloads, seen_payloads);
        let lines = stranger_text.wait_lines(2);
        let shown: Vec<&str> = lines.iter().map(|l| after_clock(l)).collect();
        assert_eq!(shown, ["[encrypted]", "[encrypted]"]);
        assert_eq!(stranger_template.wait_lines(2), ["|[encrypted]", "|[encrypted]"]);

        // One more line ends every reader, so that nothing else was printed before it.
        say_sealed(broker, &keys.members, &room, "zed", "really the end");
        outsider.wait_for(3, |t| t == room);
        for (what, p, n) in [
            ("member --json", member_json, 5),
            ("member text", member_text, 5),
            ("stranger --json", stranger_json, 3),
            ("stranger text", stranger_text, 3),
            ("stranger -F", stranger_template, 3),
        ] {
            p.wait_lines(n);
            let out = stop(p);
            assert_eq!(out.lines().len(), n, "{what}: {:?}", out.lines());
            assert!(reports(&out.stderr).is_empty(), "{what}:\n{}", out.stderr);
            assert!(summaries(&out.stderr).is_empty(), "{what}:\n{}", out.stderr);
        }
    }
}

// ---------------------------------------------------------------------------------------
// 2. What does not open is reported, never shown
// ---------------------------------------------------------------------------------------

each_broker! {
    /// A stranger floods an encrypted room: a message sealed with another secret, plain
    /// text, a plain envelope that claims to be alice, bytes that are not UTF-8, a real
    /// ciphertext (captured by mosquitto_sub) with one bit flipped, cut short by a byte,
    /// and copied from another topic, junk after the `mqttchat:e1:` prefix, and an
    /// unknown version (`mqttchat:e9:`). Members with `-n 2` print alice's message before
    /// and after it, nothing else on stdout in text, a `rejected` object for each in
    /// `--json`; on stderr one report per kind (in the order met) and the summary; and
    /// they exit 0.
    fn what_does_not_open_is_reported_never_shown(broker) {
        if !have_mosquitto_clients() {
            return;
        }
        let keys = Keys::new();
        let room = unique_topic("sealed-hostile");
        let elsewhere = format!("{room}-elsewhere");
        let outsider = Outsider::start(broker, &room);
        let member = ["--room-secret-file", keys.members.as_str()];
        let json = Proc::subscriber(broker, &[&member[..], &["--json", "-n", "2", &room]].concat());
        let text = Proc::subscriber(broker, &[&member[..], &["-n", "2", &room]].concat());

        say_sealed(broker, &keys.members, &room, "alice", "before");
        say_sealed(broker, &keys.members, &elsewhere, "alice", "on another topic");
        let original = outsider.wait_for(1, |t| t == room)[0].1.clone();
        let copied = outsider.wait_for(1, |t| t == elsewhere)[0].1.clone();

        // Sealed with another secret.
        say_sealed(broker, &keys.stranger, &room, "mallory", "forged hello");
        // Plain text, a plain envelope, and bytes that are not UTF-8.
        mosquitto_pub(broker, &room, &["-m", "plain hello"]);
        let envelope = r#"{"id":"mallory-1","from":"alice","ts":"2026-11-29T12:00:00.000Z","text":"impersonated"}"#;
        mosquitto_pub(broker, &room, &["-m", envelope]);
        let junk = keys.file("junk", b"\xff\xfe\xfd\x00\x80 not text \xff");
        mosquitto_pub(broker, &room, &["-f", &junk]);
        // The real ciphertext, changed: a bit flipped in the encrypted part, a byte cut.
        let mut flipped = sealed_body(&original);
        flipped[30] ^= 0x01;
        mosquitto_pub(broker, &room, &["-m", &sealed_with(&flipped)]);
        let real = sealed_body(&original);
        mosquitto_pub(broker, &room, &["-m", &sealed_with(&real[..real.len() - 1])]);
        // A real ciphertext of the room's secret, for another topic.
        mosquitto_pub(broker, &room, &["-m", &copied]);
        // The prefix, then bytes that are not base64 (nor UTF-8).
        let mut prefixed = PREFIX.as_bytes().to_vec();
        prefixed.extend_from_slice(&[0xff; 80]);
        let prefixed = keys.file("prefixed", &prefixed);
        mosquitto_pub(broker, &room, &["-f", &prefixed]);
        // A version this build does not know, with a body as long as a real one.
        let future = format!("mqttchat:e9:{}", &original[PREFIX.len()..]);
        mosquitto_pub(broker, &room, &["-m", &future]);

        say_sealed(broker, &keys.members, &room, "alice", "after all that");

        let qos = broker.delivered_qos(1, 1);
        let out = json.finish();
        out.expect_code(0);
        let objects = json_lines(&out.lines());
        let reasons = [
            "forged", "plain", "plain", "plain", "forged", "forged", "forged", "malformed",
            "unknown-version",
        ];
        assert_eq!(objects.len(), reasons.len() + 2, "{:#?}", out.lines());
        assert_eq!(short(&objects[0]), "alice: before");
        for (v, reason) in objects[1..=reasons.len()].iter().zip(reasons) {
            check_rejected(v, &room, reason, qos, false);
        }
        assert_eq!(short(&objects[reasons.len() + 1]), "alice: after all that");
        let text_out = text.finish();
        text_out.expect_code(0);
        let shown: Vec<String> = text_out.lines().iter().map(|l| masked(after_clock(l))).collect();
        assert_eq!(shown, ["alice [new key FP…]: before", "alice: after all that"]);

        for (what, stderr) in [("--json", &out.stderr), ("text", &text_out.stderr)] {
            assert_eq!(
                reports(stderr),
                [
                    rep("message", &room, "forged"),
                    rep("message", &room, "plain"),
                    rep("message", &room, "malformed"),
                    rep("message", &room, "unknown-version"),
                ],
                "{what}:\n{stderr}"
            );
            assert_eq!(
                summaries(stderr),
                [summary(9, "3 plain, 1 unknown-version, 1 malformed, 4 forged")],
                "{what}:\n{stderr}"
            );
            for secret in [SECRET, OTHER_SECRET] {
                assert!(!stderr.contains(secret), "{what}:\n{stderr}");
            }
        }
    }

    /// A stranger cannot make a member's chat-sub fail: with a plain payload retained on
    /// the room, `chat-sub --room-secret-file K -W 5 ROOM` prints nothing, reports it, and
    /// exits 0 at its timeout as usual; the rejected payload is no message for `-n 1`
    /// either (with `-W`, too few messages is status 1, as without encryption).
    fn a_stranger_cannot_make_a_member_fail(broker) {
        if !have_mosquitto_clients() {
            return;
        }
        let keys = Keys::new();
        let room = unique_topic("sealed-status");
        mosquitto_pub(broker, &room, &["-r", "-m", "plain and retained"]);
        let member = ["--room-secret-file", keys.members.as_str()];
        let out = run(&mut chat_sub(broker, &[&member[..], &["-W", "5", &room]].concat()), b"");
        out.expect_code(0);
        assert_eq!(out.stdout_str(), "");
        assert_eq!(reports(&out.stderr), [rep("message", &room, "plain")], "{}", out.stderr);
        assert_eq!(summaries(&out.stderr), [summary(1, "1 plain")], "{}", out.stderr);

        let out = run(
            &mut chat_sub(broker, &[&member[..], &["--json", "-n", "1", "-W", "5", &room]].concat()),
            b"",
        );
        out.expect_code(1);
        let objects = json_lines(&out.lines());
        assert_eq!(objects.len(), 1, "{:?}", out.lines());
        check_rejected(&objects[0], &room, "plain", broker.delivered_qos(1, 1), true);
        assert_eq!(summaries(&out.stderr), [summary(1, "1 plain")], "{}", out.stderr);
        mosquitto_pub(broker, &room, &["-r", "-n"]);
    }
}

// ---------------------------------------------------------------------------------------
// 3. Replay
// ---------------------------------------------------------------------------------------

each_broker! {
    /// A stranger who captured alice's ciphertext publishes it again, then retained: a
    /// member prints it once (the id inside is a repeat), and nothing is reported. A
    /// member who starts later gets the retained copy and prints it once too.
    fn a_replayed_ciphertext_is_printed_once(broker) {
        if !have_mosquitto_clients() {
            return;
        }
        let keys = Keys::new();
        let room = unique_topic("sealed-replay");
        let outsider = Outsider::start(broker, &room);
        let member = ["--room-secret-file", keys.members.as_str()];
        let sub = Proc::subscriber(broker, &[&member[..], &["--json", &room]].concat());
        say_sealed(broker, &keys.members, &room, "alice", "only once");
        let captured = outsider.wait_for(1, |t| t == room)[0].1.clone();
        mosquitto_pub(broker, &room, &["-m", &captured]);
        mosquitto_pub(broker, &room, &["-r", "-m", &captured]);
        say_sealed(broker, &keys.members, &room, "alice", "end");
        outsider.wait_for(4, |t| t == room);
        assert_eq!(wait_shorts(&sub, 2), ["alice: only once", "alice: end"]);

        let late = Proc::subscriber(broker, &[&member[..], &["--json", &room]].concat());
        say_sealed(broker, &keys.members, &room, "alice", "end again");
        let lines = late.wait_lines(2);
        assert_eq!(shorts(&lines), ["alice: only once", "alice: end again"]);
        assert_eq!(json_lines(&lines)[0]["retain"], true, "{lines:?}");
        say_sealed(broker, &keys.members, &room, "alice", "the very end");

        for (what, p, n) in [("first", sub, 4), ("late", late, 3)] {
            p.wait_lines(n);
            let out = stop(p);
            assert_eq!(out.lines().len(), n, "{what}: {:?}", out.lines());
            assert!(reports(&out.stderr).is_empty(), "{what}:\n{}", out.stderr);
            assert!(summaries(&out.stderr).is_empty(), "{what}:\n{}", out.stderr);
        }
        // Cleared once nobody reads (an empty payload on the room is not sealed).
        mosquitto_pub(broker, &room, &["-r", "-n"]);
    }
}

each_broker! {
    /// The same holds for a raw message (`chat-pub --raw` with the secret), which has no
    /// envelope id: its captured ciphertext published again by a stranger is the same
    /// ciphertext delivered again, and is printed once.
    fn a_replayed_raw_ciphertext_is_printed_once(broker) {
        if !have_mosquitto_clients() {
            return;
        }
        let keys = Keys::new();
        let room = unique_topic("sealed-replay-raw");
        let outsider = Outsider::start(broker, &room);
        let member = ["--room-secret-file", keys.members.as_str()];
        let sub = Proc::subscriber(broker, &[&member[..], &["--json", &room]].concat());
        let mut raw = chat_pub(broker, &[&member[..], &["--raw", &room]].concat());
        run(&mut raw, b"raw, only once\n").expect_code(0);
        let captured = outsider.wait_for(1, |t| t == room)[0].1.clone();
        mosquitto_pub(broker, &room, &["-m", &captured]);
        say_sealed(broker, &keys.members, &room, "alice", "end");
        assert_eq!(wait_shorts(&sub, 2), ["-: raw, only once", "alice: end"]);
    }
}

// ---------------------------------------------------------------------------------------
// 4. Presence and --who
// ---------------------------------------------------------------------------------------

each_broker! {
    /// In an encrypted room a member sees bob's sealed join and leave; mallory's plain
    /// join (retained by mosquitto_pub) is reported, not shown, and so is nothing of the
    /// empty payloads of clients whose sealed join was never seen (mallory's leave, a
    /// ghost's). `--who` with the secret lists bob (and reports mallory's join), without
    /// it does not list bob, and with another secret lists nobody (bob's join does not
    /// open).
    fn presence_and_who_in_an_encrypted_room(broker) {
        if !have_mosquitto_clients() {
            return;
        }
        let keys = Keys::new();
        let room = unique_topic("sealed-presence");
        let member = ["--room-secret-file", keys.members.as_str()];
        let events = watch(chat_sub(broker, &[&member[..], &["--json", &room]].concat()));
        let mallory = format!("mqttchat-presence/{room}/mallory-1");
        let join = r#"{"event":"join","from":"mallory","ts":"2026-11-29T12:00:00.000Z"}"#;
        mosquitto_pub(broker, &mallory, &["-r", "-m", join]);
        mosquitto_pub(broker, &format!("mqttchat-presence/{room}/ghost-1"), &["-r", "-n"]);
        let bob = member_of(broker, &keys, "bob", &room);
        assert_eq!(wait_shorts(&events, 1), [ev("join", "bob", &room)]);

        let with = who(broker, &[&member[..], &[&room]].concat());
        with.expect_code(0);
        assert_eq!(masked(&with.stdout_str()), "bob FINGERPRINT [new key]\n");
        assert_eq!(reports(&with.stderr), [rep("presence", &mallory, "plain")], "{}", with.stderr);
        let without = who(broker, &[&room]);
        without.expect_code(0);
        assert!(!without.stdout_str().contains("bob"), "{}", without.stdout_str());
        let other = who(broker, &["--room-secret-file", &keys.stranger, &room]);
        other.expect_code(0);
        assert_eq!(other.stdout_str(), "");
        let mut kinds: Vec<&str> = reports(&other.stderr).iter().map(|r| r.2).collect();
        kinds.sort_unstable();
        assert_eq!(kinds, ["forged", "plain"], "{}", other.stderr);

        bob.finish().expect_code(0);
        events.wait_lines(2);
        mosquitto_pub(broker, &mallory, &["-r", "-n"]);
        say_sealed(broker, &keys.members, &room, "zed", "end");
        assert_eq!(
            wait_shorts(&events, 3),
            [ev("join", "bob", &room), ev("leave", "bob", &room), "zed: end".to_string()]
        );
        let out = stop(events);
        assert_eq!(out.lines().len(), 3, "{:?}", out.lines());
        assert_eq!(reports(&out.stderr), [rep("presence", &mallory, "plain")], "{}", out.stderr);
        assert_eq!(summaries(&out.stderr), [summary(1, "1 plain")], "{}", out.stderr);
        assert_eq!(who(broker, &[&member[..], &[&room]].concat()).stdout_str(), "");
    }
}

/// A member with presence (chat-pub reading stdin) and the members' secret.
fn member_of(broker: &Broker, keys: &Keys, nick: &str, room: &str) -> Proc {
    member(broker, nick, &["--room-secret-file", &keys.members, room])
}

// ---------------------------------------------------------------------------------------
// 5. --raw and --json input
// ---------------------------------------------------------------------------------------

each_broker! {
    /// `chat-pub --raw` and `--json` with a secret seal every payload for its own topic
    /// (a `--json` line may name another): mosquitto_sub sees only sealed lines and no
    /// presence, a member reading `ROOT/#` sees the texts, raw ones without a sender,
    /// and chat-sub without the secret `[TOPIC] [encrypted]`.
    fn raw_and_json_input_are_sealed_too(broker) {
        if !have_mosquitto_clients() {
            return;
        }
        let keys = Keys::new();
        let root = unique_topic("sealed-input");
        let (a, b) = (format!("{root}/a"), format!("{root}/b"));
        let all = format!("{root}/#");
        let outsider = Outsider::start(broker, &root);
        let member = ["--room-secret-file", keys.members.as_str()];
        let sub = Proc::subscriber(broker, &[&member[..], &["--json", "-n", "4", &all]].concat());
        let stranger = Proc::subscriber(broker, &["-n", "4", &all]);

        let mut raw = chat_pub(broker, &[&member[..], &["--raw", &a]].concat());
        run(&mut raw, b"a raw line\n").expect_code(0);
        let mut json = chat_pub(broker, &[&member[..], &["--json", "--nick", "bob", &a]].concat());
        let input = format!(
            "{{\"text\":\"by json\"}}\n\
             {{\"topic\":\"{b}\",\"text\":\"to b\",\"from\":\"carol\"}}\n\
             {{\"text\":\"raw by json\",\"from\":null,\"ts\":null,\"id\":null}}\n"
        );
        run(&mut json, input.as_bytes()).expect_code(0);

        let out = sub.finish();
        out.expect_code(0);
        let objects = json_lines(&out.lines());
        let mut got: Vec<(String, String)> = objects
            .iter()
            .map(|v| (v["topic"].as_str().unwrap_or("?").to_owned(), short(v)))
            .collect();
        // In order within each topic; `b`, a new room, may wait for its key while `a` goes
        // on (a stable sort by topic keeps each topic's order).
        got.sort_by(|x, y| x.0.cmp(&y.0));
        let want = [
            (&a, "-: a raw line"),
            (&a, "bob: by json"),
            (&a, "-: raw by json"),
            (&b, "carol: to b"),
        ]
        .map(|(t, s)| (t.clone(), s.to_owned()));
        assert_eq!(got, want);
        let out = stranger.finish();
        out.expect_code(0);
        let want = [&a, &a, &b, &a];
        assert_eq!(out.lines().len(), want.len(), "{:?}", out.lines());
        for (line, topic) in out.lines().iter().zip(want) {
            let prefix = format!("[{topic}] ");
            let rest = line
                .strip_prefix(&prefix)
                .unwrap_or_else(|| panic!("{line:?} does not start with {prefix:?}"));
            assert_eq!(after_clock(rest), "[encrypted]", "{line:?}");
        }
        let seen = outsider.wait_for(4, |t| t == a || t == b);
        assert_eq!(outsider.seen().len(), 4, "{:#?}", outsider.seen());
        for (topic, payload) in &seen {
            assert!(is_sealed_line(payload), "{topic} {payload}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// 6. Relays
// ---------------------------------------------------------------------------------------

each_broker! {
    /// `chat-sub --json | chat-pub --json` from broker A to broker B: a relay without the
    /// secret passes alice's sealed payload on unchanged (a member on B reads it, with
    /// the id, sender and time a member on A saw); a relay with the secret at both ends
    /// opens and seals again, and a member on B reads that too.
    fn relays_pass_the_room_on(broker) {
        let a = broker;
        let b = &broker.another();
        let keys = Keys::new();
        let room = unique_topic("sealed-relay");
        let member = ["--room-secret-file", keys.members.as_str()];
        let near = Proc::subscriber(a, &[&member[..], &["--json", "-n", "2", &room]].concat());
        let far = Proc::subscriber(b, &[&member[..], &["--json", "-n", "2", &room]].concat());

        let blind = Relay::start(a, b, &[], &room);
        say_sealed(a, &keys.members, &room, "alice", "through a blind relay");
        blind.finish();
        let trusted = Relay::start(a, b, &member, &room);
        say_sealed(a, &keys.members, &room, "alice", "through a member's relay");
        trusted.finish();

        let want = json_lines(&near.finish().expect_code(0).lines());
        let far = far.finish();
        far.expect_code(0);
        let got = json_lines(&far.lines());
        assert_eq!(
            shorts(&far.lines()),
            ["alice: through a blind relay", "alice: through a member's relay"]
        );
        for (g, w) in got.iter().zip(&want) {
            for key in ["topic", "id", "from", "ts", "text"] {
                assert_eq!(g.get(key), w.get(key), "{key}: relayed {g} vs direct {w}");
            }
        }
        assert!(reports(&far.stderr).is_empty(), "{}", far.stderr);
    }
}

each_broker! {
    /// A member's raw line may itself start like a sealed payload (`mqttchat:e1:…`, say a
    /// ciphertext pasted into the chat). A relay with the secret at both ends must seal it
    /// again on B like any other line: mosquitto_sub on B sees a sealed payload that is
    /// not the member's text, and a member on B reads what a member on A reads.
    fn a_members_relay_never_publishes_a_line_in_clear(broker) {
        if !have_mosquitto_clients() {
            return;
        }
        let a = broker;
        let b = &broker.another();
        let keys = Keys::new();
        let room = unique_topic("sealed-relay-clear");
        let outsider = Outsider::start(b, &room);
        let member = ["--room-secret-file", keys.members.as_str()];
        let near = Proc::subscriber(a, &[&member[..], &["--json", "-n", "1", &room]].concat());
        let far = Proc::subscriber(b, &[&member[..], &["--json", "-n", "1", &room]].concat());
        let relay = Relay::start(a, b, &member, &room);
        let line = "mqttchat:e1:the plans, in clear";
        let mut raw = chat_pub(a, &[&member[..], &["--raw", &room]].concat());
        run(&mut raw, format!("{line}\n").as_bytes()).expect_code(0);
        relay.finish();

        let seen = outsider.wait_for(1, |t| t == room);
        assert_ne!(seen[0].1, line, "the relay published the member's line in clear on B");
        assert!(is_sealed_line(&seen[0].1), "{seen:?}");
        // However a member shows such a line, one on B shows it as one on A does.
        let want = json_lines(&near.finish().expect_code(0).lines());
        let got = json_lines(&far.finish().expect_code(0).lines());
        for key in ["topic", "from", "text", "ts", "id", "encrypted", "payload_base64"] {
            assert_eq!(got[0].get(key), want[0].get(key), "{key}: on B {} vs on A {}", got[0], want[0]);
        }
    }
}

// ---------------------------------------------------------------------------------------
// 7. The secret: where it comes from, and where it never goes
// ---------------------------------------------------------------------------------------

/// A usage error: what it is, `--room-secret-file`, CHAT_ROOM_SECRET, and what stderr says.
type Case<'a> = (&'a str, Option<&'a str>, Option<&'a str>, &'a [&'a str]);

/// A missing file, a directory, an empty or short secret (file or CHAT_ROOM_SECRET), a
/// 4097-byte one: both tools exit 2 at once, before connecting, with one line on stderr
/// that names the file (or CHAT_ROOM_SECRET) and never the secret. The file wins over
/// CHAT_ROOM_SECRET, also when the file is the bad one.
#[test]
fn secret_problems_are_usage_errors() {
    let dir = TempDir::new("room-secret-usage");
    let url = format!("mqtt://{NOWHERE}");
    let missing = s(&dir.path().join("missing"));
    let directory = dir.path().join("a-directory");
    std::fs::create_dir(&directory).expect("mkdir");
    let directory = s(&directory);
    let short = "Rs-short-9xQ2";
    let short_file = secret_file(&dir, "short", format!("{short}\n").as_bytes());
    let empty_file = secret_file(&dir, "empty", b"\n");
    let long: String = "Rs-long-8kW3".chars().cycle().take(4097).collect();
    let long_file = secret_file(&dir, "long", format!("{long}\n").as_bytes());
    let cases: [Case; 8] = [
        ("missing file", Some(&missing), None, &[&missing]),
        ("directory", Some(&directory), None, &[&directory]),
        (
            "short file",
            Some(&short_file),
            None,
            &[&short_file, "at least 16"],
        ),
        (
            "empty file",
            Some(&empty_file),
            None,
            &[&empty_file, "at least 16"],
        ),
        (
            "4097 bytes",
            Some(&long_file),
            None,
            &[&long_file, "at most 4096"],
        ),
        (
            "empty CHAT_ROOM_SECRET",
            None,
            Some(""),
            &["CHAT_ROOM_SECRET", "at least 16"],
        ),
        (
            "short CHAT_ROOM_SECRET",
            None,
            Some(short),
            &["CHAT_ROOM_SECRET", "at least 16"],
        ),
        (
            "short file, good CHAT_ROOM_SECRET",
            Some(&short_file),
            Some(SECRET),
            &[&short_file],
        ),
    ];
    for (what, file, env, needles) in cases {
        let args: Vec<&str> = file
            .map(|f| vec!["--room-secret-file", f])
            .unwrap_or_default();
        for (name, mut cmd) in each_tool(&url, &args) {
            if let Some(env) = env {
                cmd.env("CHAT_ROOM_SECRET", env);
            }
            let out = fails_fast(&format!("{name}: {what}"), cmd, 2, needles);
            assert_eq!(
                out.stderr.lines().count(),
                1,
                "{name}: {what}:\n{}",
                out.stderr
            );
            for secret in [short, &long[..16], SECRET] {
                assert!(
                    !out.stderr.contains(secret),
                    "{name}: {what}:\n{}",
                    out.stderr
                );
            }
        }
    }
}

/// Secrets of 16 and 4096 bytes (also with a `\r\n` line end, and a file wins over an
/// empty CHAT_ROOM_SECRET) are accepted: the tools go on to connect and fail at that
/// (exit 3 at `--connect-timeout 1`). A file group or others can read gets a warning
/// that names it, not the secret, and the run goes on; a 0600 file gets none.
#[test]
fn accepted_secrets_and_the_permission_warning() {
    let dir = TempDir::new("room-secret-accepted");
    let url = format!("mqtt://{NOWHERE}");
    let sixteen = "Rs-16-bytes-4aZq";
    let big: String = "Rs-4096-5tRw".chars().cycle().take(4096).collect();
    let private = [
        secret_file(&dir, "sixteen", sixteen.as_bytes()),
        secret_file(
            &dir,
            "sixteen-crlf",
            format!("{sixteen}\r\nsecond line\n").as_bytes(),
        ),
        secret_file(&dir, "big", format!("{big}\n").as_bytes()),
    ];
    let warned = [
        secret_file_mode(&dir, "group", format!("{sixteen}\n").as_bytes(), 0o640),
        secret_file_mode(&dir, "others", format!("{sixteen}\n").as_bytes(), 0o604),
        secret_file_mode(&dir, "both", format!("{sixteen}\n").as_bytes(), 0o644),
    ];
    for file in private.iter().chain(&warned) {
        for (name, mut cmd) in each_tool(&url, &["--room-secret-file", file]) {
            cmd.env("CHAT_ROOM_SECRET", "");
            cmd.args(["--connect-timeout", "1"]);
            let out = run(&mut cmd, b"");
            out.expect_code(3);
            let warning = out
                .stderr
                .lines()
                .find(|l| l.contains("can be read by group or others"));
            match warned.contains(file) {
                true => {
                    let w = warning
                        .unwrap_or_else(|| panic!("{name} {file}: no warning:\n{}", out.stderr));
                    assert!(w.contains(file.as_str()), "{name}: {w}");
                }
                false => assert_eq!(warning, None, "{name} {file}"),
            }
            for secret in [sixteen, &big[..16]] {
                assert!(
                    !out.stderr.contains(secret),
                    "{name} {file}:\n{}",
                    out.stderr
                );
            }
        }
    }
}

each_broker! {
    /// The secret is in no output: not on stderr at -vvv nor with RUST_LOG=trace, from the
    /// file or from CHAT_ROOM_SECRET, while members talk with presence and a stranger's
    /// payload is rejected; nor in `-h`/`--help`, also with CHAT_ROOM_SECRET set.
    fn the_secret_is_never_printed(broker) {
        let keys = Keys::new();
        let mut leaks = Vec::new();
        let mut check = |what: String, stdout: &str, stderr: &str| {
            for (stream, text) in [("stdout", stdout), ("stderr", stderr)] {
                for secret in [SECRET, OTHER_SECRET] {
                    if text.contains(secret) {
                        leaks.push(format!("{what}: a secret is in {stream}:\n{text}"));
                    }
                }
            }
        };
        for loud in ["-vvv", "RUST_LOG=trace"] {
            for source in ["file", "env"] {
                let room = unique_topic("sealed-quiet");
                let with = |mut c: Command| {
                    match source {
                        "file" => c.args(["--room-secret-file", &keys.members]),
                        _ => c.env("CHAT_ROOM_SECRET", SECRET),
                    };
                    match loud {
                        "-vvv" => c.arg("-vvv"),
                        _ => c.env("RUST_LOG", "trace"),
                    };
                    c
                };
                let mut sub = with(chat_sub(broker, &["-n", "1"]));
                sub.arg(&room);
                let sub = watch(sub);
                say_sealed(broker, &keys.stranger, &room, "mallory", "forged");
                let mut bob = tool("chat-pub");
                bob.args(["-b", &broker.url(), "--nick", "bob", &room]);
                let bob = run(&mut with(bob), b"hello\n");
                bob.expect_code(0);
                let out = sub.finish();
                out.expect_code(0);
                let shown: Vec<String> = out.lines().iter().map(|l| masked(after_clock(l))).collect();
                assert_eq!(shown, ["* bob [new key FP…] joined", "bob: hello"]);
                check(format!("chat-pub {loud} {source}"), &bob.stdout_str(), &bob.stderr);
                check(format!("chat-sub {loud} {source}"), &out.stdout_str(), &out.stderr);
            }
        }
        for name in ["chat-pub", "chat-sub"] {
            for flag in ["-h", "--help"] {
                let mut c = tool(name);
                c.arg(flag).env("CHAT_ROOM_SECRET", SECRET);
                let out = run(&mut c, b"");
                out.expect_code(0);
                assert!(out.stdout_str().contains("--room-secret-file"), "{name} {flag}");
                check(format!("{name} {flag}"), &out.stdout_str(), &out.stderr);
            }
        }
        assert!(leaks.is_empty(), "{}", leaks.join("\n"));
    }
}

/// CHAT_ROOM_SECRET with a line end (`\n` or `\r`, anywhere) is a usage error of both
/// tools, with one line naming CHAT_ROOM_SECRET and not the secret: the first-line rule is
/// the secret file's only (an environment variable has no lines to cut, and cutting would
/// silently make the secret another).
#[test]
fn a_line_end_in_chat_room_secret_is_a_usage_error() {
    let url = format!("mqtt://{NOWHERE}");
    for value in [
        format!("{SECRET}\n"),
        format!("{SECRET}\r\n"),
        format!("{SECRET}\nsecond line"),
        format!("{SECRET}\r"),
    ] {
        for (name, mut cmd) in each_tool(&url, &[]) {
            cmd.env("CHAT_ROOM_SECRET", &value);
            let what = format!("{name}: CHAT_ROOM_SECRET {value:?}");
            let out = fails_fast(&what, cmd, 2, &["CHAT_ROOM_SECRET", "line end"]);
            assert_eq!(out.stderr.lines().count(), 1, "{what}:\n{}", out.stderr);
            for part in [SECRET, "second line"] {
                assert!(!out.stderr.contains(part), "{what}:\n{}", out.stderr);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// 8. A flood of new rooms
// ---------------------------------------------------------------------------------------

each_broker! {
    /// chat-sub on a wildcard and a named room while new rooms flood in, each a key to
    /// derive (sealed with the room's secret, so each opens): every message of every room
    /// is printed, in order within its topic, the named room's too; and once the flood
    /// has been printed, Argon2's work memory has gone back to the system (VmRSS well
    /// under what one more 19 MiB work memory would make it).
    fn a_flood_of_new_rooms_is_printed_in_order_and_gives_its_memory_back(broker) {
        use mqttchat::room::seal::{RoomKey, RoomSecret, seal};
        const ROOMS: usize = 48;
        const EACH: usize = 5;
        let keys = Keys::new();
        let base = unique_topic("sealed-flood");
        let (wild, named) = (format!("{base}/#"), format!("{base}-named"));
        let mut sub = chat_sub(broker, &["--room-secret-file", &keys.members, "--json"]);
        sub.args(["--no-presence", "-q", "1", "-vv", &wild, &named]);
        let sub = Proc::spawn(&mut sub);
        sub.wait_stderr("subscribed to");
        let before = status_kib(sub.pid(), "VmRSS");
        let secret = RoomSecret::new(SECRET.as_bytes().to_vec()).expect("secret");
        let mut want: Vec<Vec<String>> = Vec::new();
        for r in 0..ROOMS {
            let topic = format!("{base}/r{r}");
            let key = RoomKey::derive(&secret, &topic);
            let texts: Vec<String> = (0..EACH).map(|m| format!("r{r} m{m}")).collect();
            for (m, text) in texts.iter().enumerate() {
                let env = format!(
                    r#"{{"id":"{r}-{m}","from":"bob","ts":"2026-11-29T12:00:00.000Z","text":"{text}"}}"#
                );
                let payload = seal(&key, &topic, env.as_bytes()).expect("seal");
                publish_raw(broker, &topic, &payload, 1, false);
            }
            want.push(texts);
        }
        say_sealed(broker, &keys.members, &named, "carol", "named room");
        let lines = sub.wait_lines(ROOMS * EACH + 1);
        let texts: Vec<String> = json_lines(&lines)
            .iter()
            .map(|v| v["text"].as_str().unwrap_or_else(|| panic!("no text: {v}")).to_owned())
            .collect();
        assert!(texts.iter().any(|t| t == "named room"), "{texts:?}");
        for (r, w) in want.iter().enumerate() {
            let prefix = format!("r{r} ");
            let got: Vec<String> = texts.iter().filter(|t| t.starts_with(&prefix)).cloned().collect();
            assert_exactly_once_in_order(&got, w);
        }
        // The thread of derivations gives its work memory back once nothing more is asked
        // for; this waits for that, and fails at the deadline if it never does.
        let bound = (before + 12 * 1024).min(30 * 1024);
        wait_until(
            &format!("chat-sub's VmRSS under {bound} KiB after the flood"),
            || status_kib(sub.pid(), "VmRSS") < bound,
            || format!("VmRSS {} KiB, {before} KiB before the flood", status_kib(sub.pid(), "VmRSS")),
        );
        let out = stop(sub);
        assert!(!out.stderr.contains("not shown"), "{}", out.stderr);
    }
}
