//! The comforts of a person reading a room with chat-sub: `--ignore NICK` and
//! `--hide-own` hide a sender's lines and presence, and `--color` colours nicks (on a
//! terminal by default, never in a pipe or in JSON). Joins and leaves are shown too, so
//! the rooms here have members with presence (tests/common/room.rs), as in the presence
//! module.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Instant;

use crate::common::*;

// ---------------------------------------------------------------------------------------
// 1. --ignore and --hide-own
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
// 2. Colour
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
    let mut status = None;
    holds_within(end.saturating_duration_since(Instant::now()), || {
        status = child.try_wait().expect("try_wait");
        status.is_some()
    });
    let Some(status) = status else {
        let _ = child.kill();
        panic!("chat-sub on a terminal did not exit");
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
            let colour = format!("\x1b[{}m", mqttchat::tools::render::nick_color("bob"));
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
