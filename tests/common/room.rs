//! People in a room, for the tests of presence and of what a person reading the room
//! sees: chat-pub with presence reading a room from the test (a member), chat-sub
//! following a room and its presence (a watcher), plain messages, and a short form of
//! `chat-sub --json` lines to compare with.

use std::process::Command;

use serde_json::Value;

use super::{Broker, Proc, chat_pub, chat_sub, json_lines, run, tool};

/// Starts `cmd` (a chat-sub) with `-vv` and waits until it follows its topics and their
/// presence topics.
pub fn watch(mut cmd: Command) -> Proc {
    cmd.arg("-vv");
    let p = Proc::spawn(&mut cmd);
    p.wait_stderr("subscribed to");
    p.wait_stderr("presence: following");
    p
}

/// `chat-sub -b BROKER -vv ARGS…`, once it follows the topics and their presence.
pub fn watcher(broker: &Broker, args: &[&str]) -> Proc {
    watch(chat_sub(broker, args))
}

/// `chat-pub -b BROKER --nick NICK ARGS…` with presence (the default), reading the stdin
/// the test writes to.
pub fn member(broker: &Broker, nick: &str, args: &[&str]) -> Proc {
    let mut c = tool("chat-pub");
    c.args(["-b", &broker.url(), "--nick", nick]).args(args);
    Proc::spawn(&mut c)
}

/// Publishes one message from `nick` without presence (a sentinel, or plain chat).
#[track_caller]
pub fn say(broker: &Broker, room: &str, nick: &str, text: &str) {
    run(
        &mut chat_pub(broker, &["--nick", nick, "-m", text, room]),
        b"",
    )
    .expect_code(0);
}

/// A short form of one `chat-sub --json` line: `join bob @room`, `leave bob @room`,
/// `online bob @room`, or `bob: text` (`-: text` for a raw message). Presence objects are
/// checked on the way: exactly the keys event, from, topic and ts (and in an encrypted
/// room the signer's: verified, fingerprint, new_key, key_changed), with ts an RFC 3339
/// UTC time in milliseconds (chat-pub's, or the time received for a leave).
#[track_caller]
pub fn short(v: &Value) -> String {
    let Some(event) = v.get("event") else {
        let from = v["from"].as_str().unwrap_or("-");
        let text = v["text"].as_str().unwrap_or_else(|| panic!("no text: {v}"));
        return format!("{from}: {text}");
    };
    let obj = v.as_object().expect("an object");
    const SIGNER: [&str; 4] = ["verified", "fingerprint", "new_key", "key_changed"];
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.retain(|k| !SIGNER.contains(k));
    keys.sort_unstable();
    assert_eq!(keys, ["event", "from", "topic", "ts"], "{v}");
    let ts = v["ts"]
        .as_str()
        .unwrap_or_else(|| panic!("ts is no string: {v}"));
    assert!(
        ts.len() == 24 && ts.ends_with('Z') && chrono::DateTime::parse_from_rfc3339(ts).is_ok(),
        "ts is not RFC 3339 UTC with milliseconds: {v}"
    );
    format!(
        "{} {} @{}",
        event
            .as_str()
            .unwrap_or_else(|| panic!("event is no string: {v}")),
        v["from"]
            .as_str()
            .unwrap_or_else(|| panic!("from is no string: {v}")),
        v["topic"]
            .as_str()
            .unwrap_or_else(|| panic!("topic is no string: {v}")),
    )
}

/// [`short`] of every line.
#[track_caller]
pub fn shorts(lines: &[String]) -> Vec<String> {
    json_lines(lines).iter().map(short).collect()
}

/// Waits until the watcher printed `n` lines; returns them in short form.
#[track_caller]
pub fn wait_shorts(p: &Proc, n: usize) -> Vec<String> {
    shorts(&p.wait_lines(n))
}

/// `join NICK @ROOM` and friends, for comparisons with [`short`].
pub fn ev(event: &str, nick: &str, room: &str) -> String {
    format!("{event} {nick} @{room}")
}
