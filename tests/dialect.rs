//! `--dialect mqttchat-py`: the tools in a room of the original MQTTChat, whose members
//! send `NAME,TEXT` and announce themselves with `noticia,NAME entrou neste tópico`.
//!
//! The original's side is played by `tests/peers/mqttchat_py.py`, a small paho-mqtt
//! program of this project that speaks that format (python3 with paho-mqtt: required in
//! CI, skipped elsewhere when missing).

use std::path::PathBuf;
use std::process::Command;

use crate::common::*;

/// Whether python3 with paho-mqtt can run the peer; false means "skip" (not in CI).
pub fn have_paho() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import paho.mqtt.client"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            !tools_required(),
            "python3 with paho-mqtt is required here (CI is set): python3 -m pip install paho-mqtt"
        );
        eprintln!("skipped: python3 with paho-mqtt is not installed");
    }
    ok
}

/// A member of the original program's room, named `name`, subscribed and announced.
fn original_member(broker: &Broker, name: &str, room: &str) -> Proc {
    let peer: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "tests",
        "peers",
        "mqttchat_py.py",
    ]
    .iter()
    .collect();
    let port = broker.port.to_string();
    let mut cmd = Command::new("python3");
    cmd.arg(peer).args(["--port", &port, "--name", name, room]);
    let p = Proc::spawn(&mut cmd);
    p.wait_stderr("subscribed");
    p
}

/// Text lines without their `HH:MM:SS `.
fn texts(lines: &[String]) -> Vec<&str> {
    lines.iter().map(|l| after_clock(l)).collect()
}

each_broker! {
    /// Each side reads the other: chat-sub shows the original's lines as messages from
    /// their sender and its notice as a notice, in text, JSON and -F; the original shows
    /// chat-pub's lines as its own members' and its notice at start. Envelopes of other
    /// clients keep working beside the dialect.
    fn the_original_and_the_tools_understand_each_other(broker) {
        if !have_paho() {
            return;
        }
        let room = unique_topic("dialect");
        let py = ["--dialect", "mqttchat-py"];
        let text = Proc::subscriber(broker, &[&py[..], &[room.as_str()]].concat());
        let json = Proc::subscriber(broker, &[&py[..], &["--json", &room]].concat());
        let form = Proc::subscriber(broker, &[&py[..], &["-F", "{from}|{text}", &room]].concat());
        let mut seed = original_member(broker, "seeduser", &room);
        seed.write(b"oi, tudo bem?\n");
        assert_eq!(
            texts(&text.wait_lines(2)),
            ["* seeduser entrou neste tópico", "seeduser: oi, tudo bem?"]
        );

        // With presence (the helper chat_pub turns it off): the notice at start too.
        let mut alice = tool("chat-pub");
        alice.args(["-b", &broker.url(), "--dialect", "mqttchat-py", "--nick", "alice", &room]);
        run(&mut alice, b"hello from chat-pub\n").expect_code(0);
        run(&mut chat_pub(broker, &["--nick", "bob", "-m", "an envelope", &room]), b"")
            .expect_code(0);
        assert_eq!(
            seed.wait_lines(4)[..4],
            [
                "seeduser entrou neste tópico",
                "seeduser: oi, tudo bem?",
                "alice entrou neste tópico",
                "alice: hello from chat-pub",
            ],
            "the original shows chat-pub's notice and line as its own members'"
        );
        assert_eq!(
            texts(&text.wait_lines(7))[2..],
            [
                "* alice joined",
                "* alice entrou neste tópico",
                "alice: hello from chat-pub",
                "* alice left",
                "bob: an envelope",
            ]
        );

        let objects = json_lines(&json.wait_lines(7));
        assert_eq!(objects[0]["event"], "notice");
        assert_eq!(objects[0]["topic"], room.as_str());
        assert_eq!(objects[0]["text"], "seeduser entrou neste tópico");
        assert!(objects[0]["ts"].is_string(), "{}", objects[0]);
        let said = &objects[1];
        assert_eq!((&said["from"], &said["text"]), (&"seeduser".into(), &"oi, tudo bem?".into()));
        assert!(said["ts"].is_null() && said["id"].is_null(), "{said}");
        assert_eq!(objects[6]["from"], "bob");

        assert_eq!(
            form.wait_lines(3),
            ["seeduser|oi, tudo bem?", "alice|hello from chat-pub", "bob|an envelope"],
            "-F shows messages only, as with joins and leaves"
        );
        drop(seed.take_stdin());
        seed.finish().expect_code(0);
    }
}

/// The original cannot decrypt: the dialect in an encrypted room is a usage error, and so
/// are a nick it cannot carry and --raw (which sends no format at all).
#[test]
fn what_the_dialect_cannot_carry_is_a_usage_error() {
    let dir = TempDir::new("dialect-secret");
    let secret = dir.path().join("room.secret");
    std::fs::write(&secret, "sixteen bytes or more\n").expect("write secret");
    let secret = secret.to_str().expect("UTF-8 path");
    let said = "--dialect mqttchat-py cannot be used with a room secret (--room-secret-file or \
                CHAT_ROOM_SECRET): the original MQTTChat cannot decrypt";
    for name in ["chat-pub", "chat-sub"] {
        let args = [
            "--dialect",
            "mqttchat-py",
            "--room-secret-file",
            secret,
            "room",
        ];
        let out = run(tool(name).args(["-b", "127.0.0.1:1"]).args(args), b"x\n");
        out.expect_code(2);
        assert_eq!(out.stderr, format!("{name}: {said}\n"));
        let mut cmd = tool(name);
        cmd.args(["-b", "127.0.0.1:1", "--dialect", "mqttchat-py", "room"]);
        let out = run(cmd.env("CHAT_ROOM_SECRET", "sixteen bytes or more"), b"x\n");
        out.expect_code(2);
        let out = run(
            tool(name).args([
                "-b",
                "127.0.0.1:1",
                "--dialect",
                "mqttchat-py",
                "--raw",
                "room",
            ]),
            b"x\n",
        );
        out.expect_code(2);
        let raw = "--dialect mqttchat-py cannot be used with --raw, which takes payloads as \
                   they are";
        assert_eq!(out.stderr, format!("{name}: {raw}\n"));
        // The default dialect, named, is the envelope's: --raw goes with it.
        let args = [
            "-b",
            "127.0.0.1:1",
            "--connect-timeout",
            "0",
            "--dialect",
            "mqttchat",
        ];
        let out = run(tool(name).args(args).args(["--raw", "room"]), b"x\n");
        out.expect_code(3);
    }
    let args = [
        "-b",
        "127.0.0.1:1",
        "--dialect",
        "mqttchat-py",
        "--nick",
        "a,b",
        "room",
    ];
    let out = run(tool("chat-pub").args(args), b"x\n");
    out.expect_code(2);
    assert!(out.stderr.contains("has a comma"), "{}", out.stderr);
}

each_broker! {
    /// A notice is shown as a join is: not counted by --count, hidden by --no-presence.
    fn notices_are_events_not_messages(broker) {
        let room = unique_topic("dialect-notice");
        let args = ["--dialect", "mqttchat-py", "-n", "1", &room];
        let counted = Proc::subscriber(broker, &args);
        let quiet = Proc::subscriber(broker, &[&args[..], &["--no-presence"]].concat());
        for payload in ["noticia,carol entrou neste tópico", "carol,oi"] {
            run(
                &mut chat_pub(broker, &["--raw", "-m", payload, &room]),
                b"",
            )
            .expect_code(0);
        }
        let out = counted.finish();
        out.expect_code(0);
        assert_eq!(
            texts(&out.lines()),
            ["* carol entrou neste tópico", "carol: oi"]
        );
        let out = quiet.finish();
        out.expect_code(0);
        assert_eq!(texts(&out.lines()), ["carol: oi"]);
    }

    /// A relay into an original room: `chat-pub --json --dialect mqttchat-py` sends a line's
    /// from (else --nick) and text as FROM,TEXT; a from it cannot carry is a per-line error.
    /// Without TOPIC (each line names its own) there is no room to send the notice to.
    fn a_relay_speaks_the_dialect_line_by_line(broker) {
        let room = unique_topic("dialect-relay");
        let raw = Proc::subscriber(broker, &["--raw", &room]);
        let input = format!(
            "{{\"topic\":\"{room}\",\"from\":\"x\",\"text\":\"y, z\"}}\n\
             {{\"topic\":\"{room}\",\"from\":\"a,b\",\"text\":\"q\"}}\n\
             {{\"topic\":\"{room}\",\"text\":\"mine\",\"ts\":\"T\",\"id\":\"I\"}}\n"
        );
        let mut relay = chat_pub(
            broker,
            &["--json", "--dialect", "mqttchat-py", "--nick", "alice"],
        );
        let out = run(&mut relay, input.as_bytes());
        out.expect_code(1);
        assert!(
            out.stderr.contains("line 2: the nick 'a,b' has a comma"),
            "{}",
            out.stderr
        );
        assert_eq!(raw.wait_lines(2), ["x,y, z", "alice,mine"]);
    }
}
