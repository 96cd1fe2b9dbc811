//! Presence (PRESENCE in chat-pub(1) and chat-sub(1)): chat-pub announces its nick while
//! it reads a room from stdin (a retained join on `mqttchat-presence/<room>/<client id>`,
//! an empty retained leave, and the same leave as its will); chat-sub shows joins and
//! leaves that happen while it runs, `--who` lists who is online, and `--no-presence`
//! turns it off. What else changes what a person sees (`--ignore`, `--hide-own`,
//! `--color`) is in the comforts module.
//!
//! Every test that needs a broker runs against both (`each_broker!`). chat-pub is started
//! here with `member` (tests/common/room.rs), not the `chat_pub` helper (which adds
//! `--no-presence`). A subscriber that must see presence is a `watcher`: started with
//! `-vv` and waited on until both its SUBACKs arrived (the chat topics', logged at -v,
//! and the presence topics', at -vv), so no join can slip past it. Sequences end with a
//! sentinel message published after the last event, so "nothing else was printed" is
//! checked, not assumed.

use std::process::Command;

use crate::common::*;
use serde_json::Value;

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

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
            bob.wait_until("the signal ended it", Proc::exited);
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
    ///
    /// "Promptly" is measured against carol, frozen just before with the default
    /// keep-alive: a broker gives up on her only after 45 s of silence (and mosquitto 2.0
    /// checks keep-alives every 5 s or so: measured 5.7 s for a frozen `-k 1` client;
    /// chat-broker times each connection out on its own, 1.5 s). bob's leave must come before
    /// hers; then carol is killed, and her will is her leave.
    fn unclean_death_becomes_a_leave(broker) {
        let room = unique_topic("presence-will");
        let sub = watcher(broker, &["--json", &room]);
        let mut expected = Vec::new();
        for sig in [libc::SIGKILL, libc::SIGSTOP] {
            let carol = member(broker, "carol", &[&room]);
            expected.push(ev("join", "carol", &room));
            assert_eq!(wait_shorts(&sub, expected.len()), expected);
            let bob = member(broker, "bob", &["-k", "1", &room]);
            expected.push(ev("join", "bob", &room));
            assert_eq!(wait_shorts(&sub, expected.len()), expected);
            carol.signal(libc::SIGSTOP);
            bob.signal(sig);
            expected.push(ev("leave", "bob", &room));
            assert_eq!(wait_shorts(&sub, expected.len()), expected);
            drop(bob); // SIGKILL, also for the stopped one
            drop(carol); // the same: the kernel closes her socket, the broker sends her will
            expected.push(ev("leave", "carol", &room));
            assert_eq!(wait_shorts(&sub, expected.len()), expected);
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
            // The probe, its removal, bob's line and the sentinel: nothing else. (A broker
            // may send a message once per matching filter, as MQTT allows, hence dedup.)
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
    /// MQTT lets a broker refuse such client ids; mosquitto and chat-broker take them, and
    /// go on serving other clients under MQTT 5 and 3.1.1.
    fn odd_client_ids_are_encoded_and_harmless(broker) {
        let room = unique_topic("presence-client-id");
        let events = watcher(broker, &["--json", &room]);
        let mut bob = member(
            broker,
            "bob",
            &["-i", "bob/phone+1%", "--connect-timeout", "3", &room],
        );
        bob.wait_until("the join shows, or bob gave up connecting", |bob| {
            !events.stdout().is_empty() || bob.exited()
        });
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
        assert!(joined, "bob did not join:\n{}", bob.stderr());
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

        // --who ends by itself, after 0.5 s of quiet that start at its presence SUBACK:
        // a -W 0.4 started before that SUBACK (at the connection) ends it first, with
        // nothing printed, however slow the machine (both are chat-sub's own timers).
        assert_eq!(who(broker, &[&a]), "alice\nbob\nbob\n");
        assert_eq!(who(broker, &["-W", "0.4", &a]), "");
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

each_broker! {
    /// `--who` on an empty room prints nothing on stdout (for scripts) and exits 0, but
    /// says so on stderr: silence would look like a tool that did not work.
    fn who_in_an_empty_room_says_nobody_is_online(broker) {
        let room = unique_topic("presence-nobody");
        let out = run(&mut chat_sub(broker, &["--who", &room]), b"");
        out.expect_code(0);
        assert_eq!(out.stdout_str(), "");
        assert_eq!(out.stderr, format!("chat-sub: nobody is online in {room}\n"));
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
// 6. A refused presence subscription
// ---------------------------------------------------------------------------------------

const PASSWORD: &str = "Pw-alice-presence-8dQ2";

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
