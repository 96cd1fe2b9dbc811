//! MQTT 5 message properties: chat-pub sets them (`--user-property`, `--content-type`,
//! `--message-expiry`, `--response-topic`, `--correlation-data`), chat-sub `--json` and
//! `-F` show them, a relay carries them, and they are never dropped silently where MQTT
//! 3.1.1 cannot carry them. The other side is paho-mqtt speaking MQTT 5
//! (`tests/peers/mqtt5_props.py`), beside mosquitto and chat-broker.

use std::path::PathBuf;
use std::process::Command;

use serde_json::{Value, json};

use crate::common::*;
use crate::dialect::have_paho;

/// Every property flag, with user properties repeated and in an order to keep.
const FLAGS: [&str; 12] = [
    "--user-property",
    "app=ci",
    "--user-property",
    "tag=a",
    "--user-property",
    "tag=b=c",
    "--content-type",
    "text/plain; charset=utf-8",
    "--response-topic",
    "replies/alice",
    "--correlation-data",
    "req-7",
];

/// What chat-sub `--json` shows for [`FLAGS`] (and `--message-expiry 3600`, whose value
/// the broker may have counted down).
fn expected() -> Value {
    json!({
        "user": [["app", "ci"], ["tag", "a"], ["tag", "b=c"]],
        "content_type": "text/plain; charset=utf-8",
        "response_topic": "replies/alice",
        "correlation_data": "req-7",
    })
}

/// `properties` without `message_expiry`, which must be at most `at_most`.
#[track_caller]
fn without_expiry(line: &Value, at_most: u64) -> Value {
    let mut props = line["properties"].clone();
    let expiry = props
        .as_object_mut()
        .and_then(|o| o.remove("message_expiry"))
        .unwrap_or_else(|| panic!("no message_expiry in {line}"));
    let secs = expiry.as_u64().expect("a number");
    assert!(
        secs > 0 && secs <= at_most,
        "message_expiry {secs} in {line}"
    );
    props
}

/// The paho-mqtt peer: `mqtt5_props.py --port PORT ARGS…`.
fn paho(port: u16, args: &[&str]) -> Command {
    let peer: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "tests",
        "peers",
        "mqtt5_props.py",
    ]
    .iter()
    .collect();
    let mut cmd = Command::new("python3");
    cmd.arg(peer).args(["--port", &port.to_string()]).args(args);
    cmd
}

each_broker! {
    /// chat-pub's properties reach chat-sub --json in order, repeats kept, and -F; text
    /// output is unchanged; a message without properties has no "properties" key.
    fn chat_pub_sets_and_chat_sub_shows_properties(broker) {
        let room = unique_topic("props");
        let json = Proc::subscriber(broker, &["--json", &room]);
        let form = Proc::subscriber(broker, &["-F", "{user:tag}|{content_type}|{user:app}|{text}", &room]);
        let text = Proc::subscriber(broker, &[&room]);
        let mut publish = chat_pub(broker, &FLAGS);
        publish.args(["--message-expiry", "3600", "--nick", "alice", "-m", "with", &room]);
        run(&mut publish, b"").expect_code(0);
        run(&mut chat_pub(broker, &["--nick", "alice", "-m", "without", &room]), b"").expect_code(0);
        let got = json_lines(&json.wait_lines(2));
        assert_eq!(without_expiry(&got[0], 3600), expected(), "{}", got[0]);
        assert_eq!(got[1].get("properties"), None, "{}", got[1]);
        assert_eq!(
            form.wait_lines(2),
            ["a, b=c|text/plain; charset=utf-8|ci|with", "|||without"]
        );
        let lines = text.wait_lines(2);
        assert_eq!(after_clock(&lines[0]), "alice: with");
    }

    /// With paho-mqtt as the peer: what it sets, chat-sub shows (binary correlation data
    /// as correlation_data_base64), and what chat-pub sets, it reads.
    fn paho_mqtt_5_reads_and_sets_them(broker) {
        if !have_paho() {
            return;
        }
        let room = unique_topic("paho");
        let reader = Proc::spawn(&mut paho(broker.port, &["sub", &room]));
        reader.wait_stderr("subscribed");
        let mut publish = chat_pub(broker, &FLAGS);
        publish.args(["--message-expiry", "3600", "--raw", "-m", "to paho", &room]);
        run(&mut publish, b"").expect_code(0);
        let seen = json_lines(&reader.wait_lines(1));
        let mut want = expected();
        want["payload"] = json!("to paho");
        want["correlation_data_hex"] = json!(hex("req-7".as_bytes()));
        want.as_object_mut().expect("object").remove("correlation_data");
        let got = &seen[0];
        assert!(got["message_expiry"].as_u64().is_some_and(|s| s > 0 && s <= 3600), "{got}");
        let mut got = got.clone();
        got.as_object_mut().expect("object").remove("message_expiry");
        assert_eq!(got, want);

        let sub = Proc::subscriber(broker, &["--json", "-n", "1", &room]);
        let args = [
            "pub", room.as_str(), "--payload", "from paho", "--user", "k=1", "--user", "k=2",
            "--user", "é=\u{202e}x", "--content-type", "application/octet-stream",
            "--message-expiry", "120", "--response-topic", "back/here", "--correlation-hex",
            "00ff10",
        ];
        eventually_prints_with(&sub, || paho(broker.port, &args), "from paho");
        let out = sub.finish();
        out.expect_code(0);
        assert!(!out.stdout_str().contains('\u{202e}'), "{}", out.stdout_str());
        let got = &json_lines(&out.lines())[0];
        assert_eq!(
            without_expiry(got, 120),
            json!({
                "user": [["k", "1"], ["k", "2"], ["é", "\u{202e}x"]],
                "content_type": "application/octet-stream",
                "response_topic": "back/here",
                "correlation_data_base64": "AP8Q",
            })
        );
    }

    /// `chat-sub --json | chat-pub --json` carries the properties over, binary data
    /// included; the relay's own --user-property is added after the message's.
    fn a_relay_carries_them(broker) {
        let other = broker.another();
        let room = unique_topic("relay");
        let dest = Proc::subscriber(&other, &["--json", &room]);
        let source = Proc::subscriber(broker, &["--json", "-n", "1", &room]);
        let mut publish = chat_pub(broker, &FLAGS);
        publish.args(["--nick", "alice", "-m", "relay me", &room]);
        run(&mut publish, b"").expect_code(0);
        let line = source.finish();
        line.expect_code(0);
        let mut relay = chat_pub(&other, &["--json", "--user-property", "via=relay"]);
        run(&mut relay, line.stdout.as_slice()).expect_code(0);
        let got = &json_lines(&dest.wait_lines(1))[0];
        let mut want = expected();
        want["user"].as_array_mut().expect("array").push(json!(["via", "relay"]));
        assert_eq!(got["properties"], want, "{got}");
        assert_eq!((&got["from"], &got["text"]), (&json!("alice"), &json!("relay me")));

        let binary = r#"{"topic":"ROOM","text":"b","properties":{"correlation_data_base64":"/wA="}}"#;
        let mut relay = chat_pub(&other, &["--json"]);
        run(&mut relay, binary.replace("ROOM", &room).as_bytes()).expect_code(0);
        let got = &json_lines(&dest.wait_lines(2))[1];
        assert_eq!(got["properties"], json!({"correlation_data_base64": "/wA="}), "{got}");
    }
}

/// `sub` prints a line containing `needle` once the peer `publish` made runs (again,
/// until the subscriber is ready: it prints nothing before).
fn eventually_prints_with(sub: &Proc, mut publish: impl FnMut() -> Command, needle: &str) {
    wait_until(
        "the subscriber prints the peer's message",
        || {
            if String::from_utf8_lossy(&sub.stdout()).contains(needle) {
                return true;
            }
            run(&mut publish(), b"").expect_code(0);
            String::from_utf8_lossy(&sub.stdout()).contains(needle)
        },
        || sub.stderr(),
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `-V 3` with any property flag is a usage error, before anything is sent; a bad
/// `--user-property` or response topic too.
#[test]
fn mqtt_3_1_1_with_property_flags_is_a_usage_error() {
    for flag in [
        &["--user-property", "k=v"][..],
        &["--content-type", "text/plain"],
        &["--message-expiry", "5"],
        &["--response-topic", "r"],
        &["--correlation-data", "x"],
    ] {
        let mut c = tool("chat-pub");
        c.args(["-b", NOWHERE, "-V", "3", "-m", "x", "t"])
            .args(flag);
        let out = run(&mut c, b"");
        out.expect_code(2);
        assert!(
            out.stderr.contains("need MQTT 5, and -V 3"),
            "{flag:?}: {}",
            out.stderr
        );
    }
    for (flag, says) in [
        (&["--user-property", "novalue"][..], "expected KEY=VALUE"),
        (&["--response-topic", "a/#"], "wildcard"),
        (&["--message-expiry", "soon"], "--message-expiry"),
    ] {
        let mut c = tool("chat-pub");
        c.args(["-b", NOWHERE, "-m", "x", "t"]).args(flag);
        let out = run(&mut c, b"");
        out.expect_code(2);
        assert!(out.stderr.contains(says), "{flag:?}: {}", out.stderr);
    }
}

/// NATS speaks MQTT 3.1.1 only: under -V auto, property flags end the run when it
/// answers (exit 3) and nothing is published without them; a --json line's own
/// properties are reported for that line (exit 1), the other lines are sent.
#[test]
fn on_a_broker_that_speaks_only_mqtt_3_1_1_nothing_goes_without_them() {
    if !have_nats() {
        return;
    }
    // The cluster the other NATS tests use (a node of it speaks as a lone server does).
    let cluster = NatsCluster::start(3);
    let url = cluster.url(0);
    let room = unique_topic("nats");
    let reader = Proc::subscriber_at(std::slice::from_ref(&url), &["--json", &room]);
    reader.wait_stderr("subscribed to");
    let mut c = chat_pub_at(
        std::slice::from_ref(&url),
        &["--content-type", "text/plain", "-m", "lost?", &room],
    );
    let out = run(&mut c, b"");
    out.expect_code(3);
    assert!(
        out.stderr
            .contains("speaks MQTT 3.1.1 only, which cannot carry message properties"),
        "{}",
        out.stderr
    );
    let lines = format!(
        "{{\"topic\":\"{room}\",\"text\":\"one\"}}\n\
         {{\"topic\":\"{room}\",\"text\":\"two\",\"properties\":{{\"user\":[[\"k\",\"v\"]]}}}}\n\
         {{\"topic\":\"{room}\",\"text\":\"three\"}}\n"
    );
    let out = run(
        &mut chat_pub_at(std::slice::from_ref(&url), &["--json"]),
        lines.as_bytes(),
    );
    out.expect_code(1);
    assert!(
        out.stderr.contains(
            "line 2: it has MQTT 5 properties, and the broker speaks MQTT 3.1.1 only; not sent"
        ),
        "{}",
        out.stderr
    );
    let got = json_lines(&reader.wait_lines(2));
    let texts: Vec<&Value> = got.iter().map(|l| &l["text"]).collect();
    assert_eq!(texts, [&json!("one"), &json!("three")]);
    for line in &got {
        assert_eq!(line.get("properties"), None, "{line}");
    }
}

/// RabbitMQ (where installed) speaks MQTT 3.1.1 only too: the same exit 3.
#[test]
fn rabbitmq_is_told_apart_as_well() {
    let Some(rabbit) = rabbitmq() else {
        return;
    };
    let mut c = chat_pub_at(&[rabbit.url()], &["--user-property", "k=v", "-m", "x", "t"]);
    let out = run(&mut c, b"");
    out.expect_code(3);
    assert!(
        out.stderr.contains("speaks MQTT 3.1.1 only"),
        "{}",
        out.stderr
    );
}
