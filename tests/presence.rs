//! Presence and the chat comforts (SPEC §10): chat-pub announces its nick while it reads a
//! room from stdin (a retained join on `mqttchat-presence/<room>/<client id>`, an empty
//! retained leave, and the same leave as its will); chat-sub shows joins and leaves that
//! happen while it runs, `--who` lists who is online, and `--no-presence`, `--ignore`,
//! `--hide-own` and `--color` change what is shown. Also `--completions`.
//!
//! Every test that needs a broker runs against both (`each_broker!`). chat-pub is started
//! here with `tool("chat-pub")`, not the `chat_pub` helper (which adds `--no-presence`).
//! A subscriber that must see presence is started with `-vv` and waited on until both its
//! SUBACKs arrived (the chat topics', logged at -v, and the presence topics', at -vv), so
//! no join can slip past it. Sequences end with a sentinel message published after the
//! last event, so "nothing else was printed" is checked, not assumed.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::Value;

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// Starts `cmd` (a chat-sub) with `-vv` and waits until it follows its topics and their
/// presence topics.
fn watch(mut cmd: Command) -> Proc {
    cmd.arg("-vv");
    let p = Proc::spawn(&mut cmd);
    p.wait_stderr("subscribed to");
    p.wait_stderr("presence: following");
    p
}

/// `chat-sub -b BROKER -vv ARGS…`, once it follows the topics and their presence.
fn watcher(broker: &Broker, args: &[&str]) -> Proc {
    watch(chat_sub(broker, args))
}

/// `chat-pub -b BROKER --nick NICK ARGS…` with presence (the default), reading the stdin
/// the test writes to.
fn member(broker: &Broker, nick: &str, args: &[&str]) -> Proc {
    let mut c = tool("chat-pub");
    c.args(["-b", &broker.url(), "--nick", nick]).args(args);
    Proc::spawn(&mut c)
}

/// Publishes one message from `nick` without presence (a sentinel, or plain chat).
#[track_caller]
fn say(broker: &Broker, room: &str, nick: &str, text: &str) {
    run(
        &mut chat_pub(broker, &["--nick", nick, "-m", text, room]),
        b"",
    )
    .expect_code(0);
}

/// A short form of one `chat-sub --json` line: `join bob @room`, `leave bob @room`,
/// `online bob @room`, or `bob: text` (`-: text` for a raw message). Presence objects are
/// checked on the way: exactly the keys event, from, topic and ts, with ts an RFC 3339
/// UTC time in milliseconds (chat-pub's, or the time received for a leave).
#[track_caller]
fn short(v: &Value) -> String {
    let Some(event) = v.get("event") else {
        let from = v["from"].as_str().unwrap_or("-");
        let text = v["text"].as_str().unwrap_or_else(|| panic!("no text: {v}"));
        return format!("{from}: {text}");
    };
    let obj = v.as_object().expect("an object");
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
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
fn shorts(lines: &[String]) -> Vec<String> {
    json_lines(lines).iter().map(short).collect()
}

/// Waits until the watcher printed `n` lines; returns them in short form.
#[track_caller]
fn wait_shorts(p: &Proc, n: usize) -> Vec<String> {
    shorts(&p.wait_lines(n))
}

/// `join NICK @ROOM` and friends, for comparisons with [`short`].
fn ev(event: &str, nick: &str, room: &str) -> String {
    format!("{event} {nick} @{room}")
}

/// The first `n` panics in a broker log, each with its message (the line after).
fn panics(log: &str, n: usize) -> String {
    let lines: Vec<&str> = log.lines().collect();
    let found: Vec<String> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.contains("panicked at"))
        .take(n)
        .map(|(i, l)| format!("{l}\n{}", lines.get(i + 1).unwrap_or(&"")))
        .collect();
    found.join("\n")
}

/// Waits (with the deadline) until the process has exited, without closing its stdin.
#[track_caller]
fn wait_for_exit(p: &mut Proc) {
    let end = Instant::now() + DEADLINE;
    while !p.exited() {
        assert!(
            Instant::now() < end,
            "still running after {DEADLINE:?}:\n{}",
            p.stderr()
        );
        std::thread::sleep(Duration::from_millis(5)); // polling interval
    }
}

/// The retained presence state of everyone in `room` (and below), as a fresh subscriber
/// of the presence topics receives it.
fn retained_presence(broker: &Broker, room: &str) -> Vec<Received> {
    retained_messages(
        broker,
        &format!("mqttchat-presence/{room}/#"),
        &format!("mqttchat-presence/{room}/probe/probe"),
    )
}

/// `chat-sub --who ARGS…`: what it printed (it must exit 0).
#[track_caller]
fn who(broker: &Broker, args: &[&str]) -> String {
    let mut cmd = chat_sub(broker, &["--who"]);
    cmd.args(args);
    run(&mut cmd, b"").expect_code(0).stdout_str()
}

// ---------------------------------------------------------------------------------------
// 1. Joins and leaves
// ---------------------------------------------------------------------------------------

each_broker! {
    /// `chat-sub --json ROOM` shows bob's join when chat-pub starts reading stdin, his
    /// message, and his leave when stdin closes (a clean exit, status 0) — once: a leave
    /// followed by the will, or a second goodbye, would show up before the sentinel.
    fn join_and_leave_in_json(broker) {
        let room = unique_topic("presence");
        let sub = watcher(broker, &["--json", &room]);
        let before = chrono::Utc::now();
        let mut bob = member(broker, "bob", &[&room]);
        assert_eq!(wait_shorts(&sub, 1), [ev("join", "bob", &room)]);
        // The join carries chat-pub's time.
        let join = &json_lines(&sub.wait_lines(1))[0];
        let ts = chrono::DateTime::parse_from_rfc3339(join["ts"].as_str().unwrap()).unwrap();
        let slack = chrono::Duration::seconds(1);
        assert!(ts >= before - slack && ts <= chrono::Utc::now() + slack, "{join}");
        bob.write(b"hello\n");
        sub.wait_lines(2);
        bob.finish().expect_code(0);
        sub.wait_lines(3);
        say(broker, &room, "zed", "end");
        assert_eq!(
            wait_shorts(&sub, 4),
            [
                ev("join", "bob", &room),
                "bob: hello".to_string(),
                ev("leave", "bob", &room),
                "zed: end".to_string(),
            ]
        );
    }

    /// SIGINT and SIGTERM stop chat-pub after a drain (130, 143); its nick leaves, once.
    fn leave_on_sigint_and_sigterm(broker) {
        let room = unique_topic("presence-signal");
        let sub = watcher(broker, &["--json", &room]);
        let mut expected = Vec::new();
        for (sig, code) in [(libc::SIGINT, 130), (libc::SIGTERM, 143)] {
            let mut bob = member(broker, "bob", &[&room]);
            expected.push(ev("join", "bob", &room));
            assert_eq!(wait_shorts(&sub, expected.len()), expected);
            bob.write(format!("before {sig}\n").as_bytes());
            expected.push(format!("bob: before {sig}"));
            assert_eq!(wait_shorts(&sub, expected.len()), expected);
            bob.signal(sig);
            // stdin stays open: the signal alone must end it.
            wait_for_exit(&mut bob);
            bob.finish().expect_code(code);
            expected.push(ev("leave", "bob", &room));
            assert_eq!(wait_shorts(&sub, expected.len()), expected);
        }
        say(broker, &room, "zed", "end");
        expected.push("zed: end".to_string());
        assert_eq!(wait_shorts(&sub, expected.len()), expected);
    }

    /// Text output marks joins and leaves: `HH:MM:SS * bob joined` / `* bob left`, with
    /// `[ROOM] ` in front when the subscription has a wildcard.
    fn text_marks_joins_and_leaves(broker) {
        let root = unique_topic("presence-text");
        let room = format!("{root}/a");
        let plain = watcher(broker, &[&room]);
        let wild = watcher(broker, &[&format!("{root}/#")]);
        let mut bob = member(broker, "bob", &[&room]);
        plain.wait_lines(1);
        bob.write(b"hi\n");
        plain.wait_lines(2);
        bob.finish().expect_code(0);
        plain.wait_lines(3);
        say(broker, &room, "zed", "end");
        let expected = ["* bob joined", "bob: hi", "* bob left", "zed: end"];
        let lines = plain.wait_lines(4);
        let shown: Vec<&str> = lines.iter().map(|l| after_clock(l)).collect();
        assert_eq!(shown, expected, "{lines:?}");
        let lines = wild.wait_lines(4);
        let prefix = format!("[{room}] ");
        let shown: Vec<&str> = lines
            .iter()
            .map(|l| {
                after_clock(
                    l.strip_prefix(&prefix)
                        .unwrap_or_else(|| panic!("{l:?} does not start with {prefix:?}")),
                )
            })
            .collect();
        assert_eq!(shown, expected, "{lines:?}");
    }

    /// Presence lines are not messages for `-n`: `-n 2` ends after the second message,
    /// with the joins and the leave in between printed but not counted.
    fn presence_does_not_count_for_count(broker) {
        let room = unique_topic("presence-count");
        let sub = watcher(broker, &["--json", "-n", "2", &room]);
        let mut bob = member(broker, "bob", &[&room]);
        sub.wait_lines(1);
        bob.write(b"one\n");
        sub.wait_lines(2);
        bob.finish().expect_code(0);
        sub.wait_lines(3);
        let mut alice = member(broker, "alice", &[&room]);
        sub.wait_lines(4);
        alice.write(b"two\n");
        let out = sub.finish();
        out.expect_code(0);
        assert_eq!(
            shorts(&out.lines()),
            [
                ev("join", "bob", &room),
                "bob: one".to_string(),
                ev("leave", "bob", &room),
                ev("join", "alice", &room),
                "alice: two".to_string(),
            ]
        );
    }
}

// ---------------------------------------------------------------------------------------
// 2. Unclean death: the will
// ---------------------------------------------------------------------------------------

each_broker! {
    /// `chat-pub -k 1` dying without DISCONNECT ends as a leave, published by the broker
    /// (the will): killed with SIGKILL (the kernel closes the socket), and frozen with
    /// SIGSTOP (the connection stays open and silent: the broker gives up after 1.5
    /// keep-alives). Both promptly — the -k 1 keep-alive, not the default 30 s, decides —
    /// and no state is left retained.
    fn unclean_death_becomes_a_leave(broker) {
        let room = unique_topic("presence-will");
        let sub = watcher(broker, &["--json", &room]);
        let mut expected = Vec::new();
        for sig in [libc::SIGKILL, libc::SIGSTOP] {
            let bob = member(broker, "bob", &["-k", "1", &room]);
            expected.push(ev("join", "bob", &room));
            assert_eq!(wait_shorts(&sub, expected.len()), expected);
            let t0 = Instant::now();
            bob.signal(sig);
            expected.push(ev("leave", "bob", &room));
            assert_eq!(wait_shorts(&sub, expected.len()), expected);
            let took = t0.elapsed();
            eprintln!("{:?}: leave {took:?} after signal {sig}", broker.kind);
            // 1.5 keep-alives of silence, plus the broker's timer: mosquitto 2.0 checks
            // keep-alives only every 5 s or so (measured: 5.7 s for a frozen client), rumqttd
            // times each connection out on its own (1.5 s). Under 10 s either way, where a
            // broker told the default keep-alive instead of -k 1 would take 45 s.
            assert!(took < Duration::from_secs(10), "the leave took {took:?}");
            drop(bob); // SIGKILL, also for the stopped one
        }
        assert_eq!(who(broker, &[&room]), "");
        assert_eq!(retained_presence(broker, &room), []);
        say(broker, &room, "zed", "end");
        expected.push("zed: end".to_string());
        assert_eq!(wait_shorts(&sub, expected.len()), expected);
    }
}

// ---------------------------------------------------------------------------------------
// 3. Presence lives beside the room, and leaves nothing behind
// ---------------------------------------------------------------------------------------

each_broker! {
    /// While bob is online with presence, its state is one retained join at
    /// `mqttchat-presence/ROOM/<client id>`; subscribers of ROOM and of
    /// `ROOM/#` that do not ask for presence (`chat-sub --no-presence`, mosquitto_sub) see
    /// chat only; after bob left, nothing is retained and `--who` prints nothing.
    fn presence_lives_beside_the_room(broker) {
        let room = unique_topic("presence-beside");
        let below = format!("{room}/#");
        // mosquitto_sub first: it is ready once it printed a retained probe (its debug
        // output is not flushed before), which is then cleared before the others start.
        let mosquitto_sub = have_mosquitto_clients().then(|| {
            let probe = format!("{room}/probe");
            publish_raw(broker, &probe, b"probe", 1, true);
            let mut c = Command::new("mosquitto_sub");
            c.args(["-h", "127.0.0.1", "-p", &broker.port.to_string()])
                .args(["-d", "-v", "-t", &room, "-t", &below]);
            let p = Proc::spawn(&mut c);
            p.wait_stdout(&format!("{probe} probe"));
            publish_raw(broker, &probe, b"", 1, true);
            p.wait_stdout(&format!("{probe} (null)"));
            p
        });
        let events = watcher(broker, &["--json", &room]);
        let exact = Proc::subscriber(broker, &["--no-presence", "--json", &room]);
        let subtree = Proc::subscriber(broker, &["--no-presence", "--json", &below]);

        let mut bob = member(broker, "bob", &["-i", "bob-phone-1", &room]);
        assert_eq!(wait_shorts(&events, 1), [ev("join", "bob", &room)]);
        let state = retained_presence(broker, &room);
        assert_eq!(state.len(), 1, "{state:?}");
        assert_eq!(
            state[0].topic,
            format!("mqttchat-presence/{room}/bob-phone-1")
        );
        assert!(state[0].retain, "{state:?}");
        let join: Value = serde_json::from_slice(&state[0].payload).expect("join is JSON");
        assert_eq!((&join["event"], &join["from"]), (&"join".into(), &"bob".into()));
        assert_eq!(who(broker, &[&room]), "bob\n");

        bob.write(b"one\n");
        bob.finish().expect_code(0);
        events.wait_lines(3);
        say(broker, &room, "zed", "end");
        assert_eq!(
            wait_shorts(&events, 4),
            [
                ev("join", "bob", &room),
                "bob: one".to_string(),
                ev("leave", "bob", &room),
                "zed: end".to_string(),
            ]
        );
        for sub in [&exact, &subtree] {
            assert_eq!(wait_shorts(sub, 2), ["bob: one", "zed: end"]);
        }
        if let Some(m) = &mosquitto_sub {
            m.wait_stdout(&format!("{room} {{"));
            m.wait_stdout("\"end\"");
            let out = String::from_utf8_lossy(&m.stdout()).into_owned();
            assert!(!out.contains("mqttchat-presence"), "{out}");
            // The probe, its removal, bob's line and the sentinel: nothing else. (rumqttd
            // sends a message once per matching filter, as MQTT allows, hence dedup.)
            let mut shown: Vec<&str> = out
                .lines()
                .filter(|l| !l.starts_with("Client ") && !l.starts_with("Subscribed "))
                .collect();
            shown.dedup();
            assert_eq!(shown.len(), 4, "{out}");
            let probe = format!("{room}/probe");
            assert_eq!(shown[..2], [format!("{probe} probe"), format!("{probe} (null)")]);
            assert!(shown[2].starts_with(&format!("{room} {{")) && shown[2].contains("\"one\""));
            assert!(shown[3].starts_with(&format!("{room} {{")) && shown[3].contains("\"end\""));
        }

        // Nothing left behind.
        assert_eq!(retained_presence(broker, &room), []);
        assert_eq!(
            retained_messages(broker, "mqttchat-presence/#", "mqttchat-presence/probe/probe"),
            []
        );
        assert_eq!(who(broker, &[&room]), "");
        for sub in [&exact, &subtree] {
            let out = String::from_utf8_lossy(&sub.stdout()).into_owned();
            assert_eq!(out.lines().count(), 2, "{out}");
        }
    }

    /// A client id that cannot stand in a topic level as it is ('/', '+', '%') is
    /// percent-encoded in the presence topic, and the nick still comes from the join.
    /// MQTT lets a broker refuse such client ids; rumqttd does (it drops the connection
    /// without CONNACK), so on chat-broker a refusal is accepted — but whatever happens
    /// to bob, the broker must go on serving other clients under MQTT 5 and 3.1.1.
    fn odd_client_ids_are_encoded_and_harmless(broker) {
        let room = unique_topic("presence-client-id");
        let events = watcher(broker, &["--json", &room]);
        let mut bob = member(
            broker,
            "bob",
            &["-i", "bob/phone+1%", "--connect-timeout", "3", &room],
        );
        // Until the join shows, or bob gave up connecting.
        let end = Instant::now() + DEADLINE;
        while events.stdout().is_empty() && !bob.exited() {
            assert!(Instant::now() < end, "neither a join nor an exit:\n{}", bob.stderr());
            std::thread::sleep(Duration::from_millis(5)); // polling interval
        }
        let joined = !events.stdout().is_empty();
        for version in ["5", "3"] {
            let mut c = chat_pub(
                broker,
                &["-V", version, "--connect-timeout", "5", "--nick", "zed", "-m", version, &room],
            );
            let out = run(&mut c, b"");
            assert_eq!(
                out.code(),
                Some(0),
                "the broker stopped serving MQTT {version} clients after bob's connection \
                 attempts (bob joined: {joined}):\n{}\n--- bob:\n{}\n\
                 --- panics in the broker's log:\n{}",
                out.stderr,
                bob.stderr(),
                panics(&broker.log(), 2)
            );
        }
        if !joined {
            assert_eq!(broker.kind, Kind::Embedded, "bob did not join:\n{}", bob.stderr());
            eprintln!("chat-broker refused the client id bob/phone+1%:\n{}", bob.stderr());
            return;
        }
        let state = retained_presence(broker, &room);
        assert_eq!(state.len(), 1, "{state:?}");
        assert_eq!(state[0].topic, format!("mqttchat-presence/{room}/bob%2Fphone%2B1%25"));
        bob.finish().expect_code(0);
        assert_eq!(
            wait_shorts(&events, 4),
            [
                ev("join", "bob", &room),
                "zed: 5".to_string(),
                "zed: 3".to_string(),
                ev("leave", "bob", &room),
            ]
        );
        assert_eq!(retained_presence(broker, &room), []);
    }

    /// Presence already retained when chat-sub subscribes is not news (no join), but the
    /// later leave is, with the nick the retained join gave (not the client id).
    fn retained_presence_is_no_join_but_its_leave_shows(broker) {
        let room = unique_topic("presence-retained");
        let first = watcher(broker, &["--json", &room]);
        let mut bob = member(broker, "bob", &["-i", "client-of-bob", &room]);
        assert_eq!(wait_shorts(&first, 1), [ev("join", "bob", &room)]);
        let late = watcher(broker, &["--json", &room]);
        let late_text = watcher(broker, &[&room]);
        bob.write(b"hi\n");
        bob.finish().expect_code(0);
        first.wait_lines(3);
        say(broker, &room, "zed", "end");
        assert_eq!(
            wait_shorts(&late, 3),
            ["bob: hi".to_string(), ev("leave", "bob", &room), "zed: end".to_string()]
        );
        let lines = late_text.wait_lines(3);
        let shown: Vec<&str> = lines.iter().map(|l| after_clock(l)).collect();
        assert_eq!(shown, ["bob: hi", "* bob left", "zed: end"]);
    }
}

// ---------------------------------------------------------------------------------------
// 4. --who
// ---------------------------------------------------------------------------------------

each_broker! {
    /// `chat-sub --who ROOM` prints the nicks online, sorted, one per line, and exits 0;
    /// the same nick twice (two clients) is two presences; `--json` prints "online"
    /// objects; a wildcard shows `[room] nick`; `--ignore` applies; leaving updates it.
    fn who_lists_the_nicks_online(broker) {
        let root = unique_topic("presence-who");
        let (a, b) = (format!("{root}/a"), format!("{root}/b"));
        let all = format!("{root}/#");
        assert_eq!(who(broker, &[&a]), "", "nobody yet");
        let events = watcher(broker, &["--json", &all]);
        let bob1 = member(broker, "bob", &[&a]);
        events.wait_lines(1);
        let _alice = member(broker, "alice", &[&a]);
        events.wait_lines(2);
        let _bob2 = member(broker, "bob", &[&a]);
        events.wait_lines(3);
        let _carol = member(broker, "carol", &[&b]);
        events.wait_lines(4);

        let t0 = Instant::now();
        assert_eq!(who(broker, &[&a]), "alice\nbob\nbob\n");
        // 0.5 s of quiet after the presence SUBACK, no more than a few seconds.
        let took = t0.elapsed();
        assert!(took >= Duration::from_millis(500) && took < Duration::from_secs(5), "{took:?}");
        assert_eq!(who(broker, &[&b]), "carol\n");
        assert_eq!(
            who(broker, &[&all]),
            format!("[{a}] alice\n[{a}] bob\n[{a}] bob\n[{b}] carol\n")
        );
        assert_eq!(who(broker, &["--ignore", "bob", &a]), "alice\n");
        let json = who(broker, &["--json", &all]);
        let objects: Vec<String> = json.lines().map(str::to_owned).collect();
        assert_eq!(
            shorts(&objects),
            [
                ev("online", "alice", &a),
                ev("online", "bob", &a),
                ev("online", "bob", &a),
                ev("online", "carol", &b),
            ]
        );

        bob1.finish().expect_code(0);
        assert_eq!(wait_shorts(&events, 5)[4], ev("leave", "bob", &a));
        assert_eq!(who(broker, &[&a]), "alice\nbob\n");
    }
}

// ---------------------------------------------------------------------------------------
// 5. Turning presence off
// ---------------------------------------------------------------------------------------

each_broker! {
    /// chat-pub announces nothing with `--no-presence`, `-m`, `--raw` or `--json`;
    /// `chat-sub --no-presence` shows no joins and leaves (of an announcing chat-pub that
    /// follows), only the messages.
    fn turning_presence_off(broker) {
        let room = unique_topic("presence-off");
        let events = watcher(broker, &["--json", &room]);
        let quiet = watch_quiet(broker, &room);
        let pub_ = |args: &[&str], input: &[u8]| {
            let mut c = tool("chat-pub");
            c.args(["-b", &broker.url(), "--nick", "bob"]).args(args).arg(&room);
            run(&mut c, input).expect_code(0);
        };
        pub_(&["--no-presence"], b"no presence\n");
        pub_(&["-m", "by -m"], b"");
        pub_(&["--raw"], b"raw line\n");
        pub_(&["--json"], b"{\"text\":\"by json\"}\n");
        let mut carol = member(broker, "carol", &[&room]);
        carol.write(b"last\n");
        carol.finish().expect_code(0);
        events.wait_lines(7);
        say(broker, &room, "zed", "end");
        assert_eq!(
            wait_shorts(&events, 8),
            [
                "bob: no presence".to_string(),
                "bob: by -m".to_string(),
                "-: raw line".to_string(),
                "bob: by json".to_string(),
                ev("join", "carol", &room),
                "carol: last".to_string(),
                ev("leave", "carol", &room),
                "zed: end".to_string(),
            ]
        );
        assert_eq!(
            wait_shorts(&quiet, 6),
            [
                "bob: no presence",
                "bob: by -m",
                "-: raw line",
                "bob: by json",
                "carol: last",
                "zed: end",
            ]
        );
        // It did not even subscribe to the presence topics (that SUBACK would have come
        // right after the first).
        assert!(!quiet.stderr().contains("presence: following"), "{}", quiet.stderr());
    }
}

/// `chat-sub --no-presence --json -vv ROOM`, once subscribed (it has no presence SUBACK).
fn watch_quiet(broker: &Broker, room: &str) -> Proc {
    let p = Proc::spawn(&mut chat_sub(
        broker,
        &["--no-presence", "--json", "-vv", room],
    ));
    p.wait_stderr("subscribed to");
    p
}

// ---------------------------------------------------------------------------------------
// 6. --ignore and --hide-own
// ---------------------------------------------------------------------------------------

each_broker! {
    /// `--ignore NICK` (repeatable) hides that sender's messages, joins and leaves.
    fn ignore_hides_a_sender(broker) {
        let room = unique_topic("presence-ignore");
        let all = watcher(broker, &["--json", &room]);
        let some = watcher(broker, &["--json", "--ignore", "bob", "--ignore", "carol", &room]);
        let mut n = 0;
        for nick in ["bob", "alice", "carol"] {
            let mut p = member(broker, nick, &[&room]);
            n += 1;
            all.wait_lines(n);
            p.write(format!("I am {nick}\n").as_bytes());
            n += 1;
            all.wait_lines(n);
            p.finish().expect_code(0);
            n += 1;
            all.wait_lines(n);
        }
        say(broker, &room, "zed", "end");
        assert_eq!(wait_shorts(&all, 10).len(), 10);
        assert_eq!(
            wait_shorts(&some, 4),
            [
                ev("join", "alice", &room),
                "alice: I am alice".to_string(),
                ev("leave", "alice", &room),
                "zed: end".to_string(),
            ]
        );
    }

    /// `--hide-own` hides the lines (and the presence) of your own nick, taken from
    /// `--nick`, else CHAT_NICK, else USER (as chat-pub takes it). `-n 1` would end on the
    /// first line shown, so each must print exactly the other nick's message.
    fn hide_own_hides_your_lines(broker) {
        let room = unique_topic("presence-hide-own");
        let hide = ["--json", "-n", "1", "--hide-own"];
        let mut by_flag = chat_sub(broker, &hide);
        by_flag.args(["--nick", "me", &room]);
        by_flag.env("USER", "someone-else");
        let mut by_chat_nick = chat_sub(broker, &hide);
        by_chat_nick.arg(&room);
        by_chat_nick.env("CHAT_NICK", "me").env("USER", "someone-else");
        let mut by_user = chat_sub(broker, &hide);
        by_user.arg(&room).env("USER", "me");
        let subs: Vec<Proc> = [by_flag, by_chat_nick, by_user].into_iter().map(watch).collect();
        let reference = watcher(broker, &["--json", &room]);
        let mut me = member(broker, "me", &[&room]);
        reference.wait_lines(1);
        me.write(b"mine\n");
        me.finish().expect_code(0);
        reference.wait_lines(3);
        say(broker, &room, "you", "yours");
        assert_eq!(
            wait_shorts(&reference, 4),
            [
                ev("join", "me", &room),
                "me: mine".to_string(),
                ev("leave", "me", &room),
                "you: yours".to_string(),
            ]
        );
        for sub in subs {
            let out = sub.finish();
            out.expect_code(0);
            assert_eq!(shorts(&out.lines()), ["you: yours"], "{}", out.stderr);
        }
    }
}

/// `--hide-own` with no nick from anywhere (no --nick, CHAT_NICK or USER, or only empty
/// ones) is a usage error before connecting (exit 2, not 3 for the unreachable broker).
#[test]
fn hide_own_without_a_nick_is_a_usage_error() {
    let url = format!("mqtt://127.0.0.1:{}", free_port());
    let cases: [(&[&str], Option<&str>); 3] =
        [(&[], None), (&[], Some("")), (&["--nick", ""], None)];
    for (args, user) in cases {
        let mut c = tool("chat-sub");
        c.args(["-b", &url, "--connect-timeout", "1", "--hide-own"])
            .args(args)
            .arg("room");
        match user {
            Some(u) => c.env("USER", u),
            None => c.env_remove("USER"),
        };
        let out = run(&mut c, b"");
        out.expect_code(2);
        assert!(
            out.stderr.contains("--hide-own"),
            "{args:?} {user:?}: {}",
            out.stderr
        );
        assert!(out.stdout.is_empty());
    }
}

// ---------------------------------------------------------------------------------------
// 7. Colour
// ---------------------------------------------------------------------------------------

/// The palette of nick colours: SGR foreground 31–36 and 91–96.
const PALETTE: [&str; 12] = [
    "31", "32", "33", "34", "35", "36", "91", "92", "93", "94", "95", "96",
];

/// The colour of every nick in text lines coloured by `--color always` (nick → SGR code),
/// checking that nothing but `\x1b[Cm…\x1b[0m` around nicks has an ESC byte.
#[track_caller]
fn nick_colours(out: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for line in out.lines() {
        let rest = line
            .split_once('\x1b')
            .map(|(_, r)| r)
            .unwrap_or_else(|| panic!("no colour in {line:?}"));
        let (code, rest) = rest
            .strip_prefix('[')
            .and_then(|r| r.split_once('m'))
            .unwrap_or_else(|| panic!("no SGR in {line:?}"));
        assert!(PALETTE.contains(&code), "colour {code} in {line:?}");
        let (nick, rest) = rest
            .split_once("\x1b[0m")
            .unwrap_or_else(|| panic!("no reset in {line:?}"));
        assert!(
            !rest.contains('\x1b') && !nick.contains('\x1b'),
            "stray ESC in {line:?}"
        );
        found.push((nick.to_string(), code.to_string()));
    }
    found
}

each_broker! {
    /// `--color always` wraps every nick (of messages, joins and leaves) in an SGR colour
    /// from the palette and a reset, the same colour for the same nick in two runs, and a
    /// nick's own control characters stay escaped; `--color never`, the default in a
    /// pipe, and `--json` (even with `--color always`) have no ESC byte at all.
    fn color_always_and_never(broker) {
        let room = unique_topic("presence-color");
        let run1 = watcher(broker, &["--color", "always", &room]);
        let run2 = watcher(broker, &["--color", "always", &room]);
        let never = watcher(broker, &["--color", "never", &room]);
        let default = watcher(broker, &[&room]);
        let json = watcher(broker, &["--color", "always", "--json", &room]);
        let mut bob = member(broker, "bob", &[&room]);
        run1.wait_lines(1);
        bob.write(b"hi\n");
        bob.finish().expect_code(0);
        run1.wait_lines(3);
        say(broker, &room, "alice", "hello");
        say(broker, &room, "ev\x1b[2Jil", "boo");
        say(broker, &room, "bob", "again");
        let lines1 = run1.wait_lines(6).join("\n");
        let lines2 = run2.wait_lines(6).join("\n");
        let colours1 = nick_colours(&lines1);
        let nicks: Vec<&str> = colours1.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(nicks, ["bob", "bob", "bob", "alice", "ev\\x1b[2Jil", "bob"], "{lines1:?}");
        let bob_colour = &colours1[0].1;
        assert!(colours1.iter().filter(|(n, _)| n == "bob").all(|(_, c)| c == bob_colour));
        assert_eq!(nick_colours(&lines2), colours1, "another run, other colours");
        let plain: Vec<String> = run1
            .wait_lines(6)
            .iter()
            .map(|l| l.replace(&format!("\x1b[{bob_colour}m"), "").replace("\x1b[0m", ""))
            .collect();
        assert_eq!(after_clock(&plain[1]), "bob: hi");

        for (what, p) in [("never", &never), ("default", &default), ("json", &json)] {
            p.wait_lines(6);
            let out = p.stdout();
            assert!(!out.contains(&0x1b), "{what}: {:?}", String::from_utf8_lossy(&out));
        }
        let plain_default: Vec<String> = default.wait_lines(6);
        assert_eq!(after_clock(&plain_default[1]), "bob: hi");
    }
}

/// A new pseudo-terminal: (master, slave), both close-on-exec. openpty(3) cannot set the
/// flag, and without it a child that another test spawns meanwhile would inherit the
/// slave side: the master's reader, which ends once the last holder of the slave side has
/// exited, would then wait for that child too.
fn openpty() -> (File, OwnedFd) {
    use std::os::unix::fs::OpenOptionsExt;
    let terminal = |path: &str| {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY) // std adds O_CLOEXEC itself
            .open(path)
            .unwrap_or_else(|e| panic!("open {path}: {e}"))
    };
    let master = terminal("/dev/ptmx");
    let fd = master.as_raw_fd();
    let mut name = [0 as libc::c_char; 128];
    // SAFETY: grantpt and unlockpt take an open master descriptor; ptsname_r writes a
    // NUL-terminated name of at most `name.len()` bytes into `name`.
    let r = unsafe {
        if libc::grantpt(fd) != 0 || libc::unlockpt(fd) != 0 {
            -1
        } else {
            libc::ptsname_r(fd, name.as_mut_ptr(), name.len())
        }
    };
    assert_eq!(
        r,
        0,
        "a pseudo-terminal: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: ptsname_r succeeded, so `name` holds a NUL-terminated string.
    let path = unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) };
    let slave = terminal(&path.to_string_lossy());
    (master, slave.into())
}

/// Runs `chat-sub -v -n 1 ARGS ROOM` (with NO_COLOR set to `no_color`, if given) with
/// stdout on a pseudo-terminal, publishes one message from bob once it has subscribed,
/// and returns what reached the terminal (read from the master side).
fn on_terminal(broker: &Broker, args: &[&str], no_color: Option<&str>) -> Vec<u8> {
    let room = unique_topic("presence-tty");
    let (mut master, slave) = openpty();
    let mut cmd = chat_sub(broker, &["-v", "-n", "1"]);
    cmd.args(args).arg(&room);
    if let Some(v) = no_color {
        cmd.env("NO_COLOR", v);
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(slave))
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("start chat-sub");
    drop(cmd); // the Command holds our copy of the slave side
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let mut chunk = [0u8; 4096];
        // Ends with EIO once the child, the last holder of the slave side, has exited.
        while let Ok(n) = master.read(&mut chunk) {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&chunk[..n]);
        }
        out
    });
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let end = Instant::now() + DEADLINE;
    let mut seen = Vec::new();
    loop {
        let left = end.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.contains("subscribed to") => break,
            Ok(line) => seen.push(line),
            Err(e) => {
                let _ = child.kill();
                panic!("chat-sub never subscribed ({e}): {seen:?}");
            }
        }
    }
    publish_raw(
        broker,
        &room,
        br#"{"id":"0123456789abcdef0123456789abcdef","from":"bob","text":"hi"}"#,
        1,
        false,
    );
    let status = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break s;
        }
        if Instant::now() >= end {
            let _ = child.kill();
            panic!("chat-sub on a terminal did not exit");
        }
        std::thread::sleep(Duration::from_millis(5)); // polling interval
    };
    assert!(status.success(), "chat-sub on a terminal: {status}");
    reader.join().expect("pty reader")
}

each_broker! {
    /// `--color auto` (the default) colours on a terminal, unless NO_COLOR is set to
    /// something; `--color never` does not, on a terminal either.
    fn color_auto_on_a_terminal(broker) {
        let cases: [(&[&str], Option<&str>, bool); 5] = [
            (&[], None, true),
            (&["--color", "auto"], None, true),
            (&[], Some("1"), false),
            (&[], Some(""), true),
            (&["--color", "never"], None, false),
        ];
        for (args, env, coloured) in cases {
            let out = on_terminal(broker, args, env);
            let text = String::from_utf8_lossy(&out);
            assert!(text.contains("bob") && text.contains("hi"), "{args:?} {env:?}: {text:?}");
            let colour = format!("\x1b[{}m", mqttchat::render::nick_color("bob"));
            assert_eq!(
                out.contains(&0x1b),
                coloured,
                "{args:?} {env:?}: {text:?}"
            );
            if coloured {
                assert!(text.contains(&format!("{colour}bob\x1b[0m: hi")), "{text:?}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// 8. Shell completions
// ---------------------------------------------------------------------------------------

/// `--completions SHELL` prints a completion script for the tool and exits 0, without a
/// broker or a topic; an unknown shell is a usage error.
#[test]
fn completions() {
    let mut cases = vec![
        (
            bin("chat-pub"),
            "chat-pub",
            "bash",
            vec!["--nick", "--no-presence", "--json"],
        ),
        (
            bin("chat-sub"),
            "chat-sub",
            "zsh",
            vec!["--json", "--who", "--ignore", "--color"],
        ),
    ];
    match chat_broker_bin() {
        Some(b) => cases.push((PathBuf::from(b), "chat-broker", "fish", vec!["listen"])),
        None => eprintln!("skipped chat-broker: built without the `broker` feature"),
    }
    for (path, name, shell, flags) in cases {
        let out = run(Command::new(&path).args(["--completions", shell]), b"");
        out.expect_code(0);
        let script = out.stdout_str();
        assert!(script.contains(name), "{name} {shell}:\n{script}");
        for flag in flags {
            assert!(
                script.contains(flag),
                "{name} {shell}: no {flag}:\n{script}"
            );
        }
        assert!(out.stderr.is_empty(), "{}", out.stderr);
        let bad = run(
            Command::new(&path).args(["--completions", "no-such-shell"]),
            b"",
        );
        bad.expect_code(2);
    }
}

// ---------------------------------------------------------------------------------------
// 9. A refused presence subscription
// ---------------------------------------------------------------------------------------

const PASSWORD: &str = "Pw-alice-presence-8dQ2";

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// When the broker refuses the presence subscription, chat-sub says once on stderr that
/// joins and leaves will not be shown and goes on printing messages (exit 0 at `-n 1`),
/// under MQTT 5 and 3.1.1; `--who`, which is nothing but presence, is refused (exit 4).
/// A chat-pub whose presence the broker refuses still delivers its lines and exits 0, and
/// says so where the broker tells it (MQTT 5).
#[test]
fn refused_presence_subscription_is_a_warning() {
    let dir = TempDir::new("presence-dynsec");
    let Some(broker) = dynsec_broker(&dir, PASSWORD) else {
        return;
    };
    let pw = s(&readable_file(&dir.path().join("pw"), PASSWORD));
    let login = ["-u", "alice", "--password-file", &pw];
    for version in ["5", "3"] {
        let room = format!("chat/ok/{version}");
        let mut cmd = chat_sub(&broker, &login);
        cmd.args(["-V", version, "-v", "-n", "1", &room]);
        let sub = Proc::spawn(&mut cmd);
        sub.wait_stderr("subscribed to");
        sub.wait_stderr("joins and leaves will not be shown");
        // The line comes from a chat-pub with presence, whose join and leave this broker
        // refuses too: presence is best effort, the chat goes through.
        let mut publisher = tool("chat-pub");
        publisher
            .args(["-b", &broker.url(), "-V", version])
            .args(login)
            .args(["--nick", "alice", &room]);
        let published = run(&mut publisher, b"still here\n");
        published.expect_code(0);
        // Under MQTT 5 the broker says it refuses the join (PUBACK "not authorized"), and
        // chat-pub says once that it goes on without presence; 3.1.1 has no way to say it.
        let said = published
            .stderr
            .matches("going on without presence")
            .count();
        assert_eq!(said, usize::from(version == "5"), "{}", published.stderr);
        let out = sub.finish();
        out.expect_code(0);
        let lines = out.lines();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert_eq!(after_clock(&lines[0]), "alice: still here");
        assert_eq!(
            out.stderr
                .matches("joins and leaves will not be shown")
                .count(),
            1,
            "{}",
            out.stderr
        );
        assert!(
            out.stderr.contains(&format!(
                "refused the subscription to 'mqttchat-presence/{room}/+'"
            )),
            "{}",
            out.stderr
        );

        let mut who = chat_sub(&broker, &login);
        who.args(["-V", version, "--who", &room]);
        let out = run(&mut who, b"");
        out.expect_code(4);
        assert!(out.stderr.contains("mqttchat-presence/"), "{}", out.stderr);
    }
}
