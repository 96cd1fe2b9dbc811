//! chat-broker itself (chat-broker(1)): where it listens, what it says, how it stops, and
//! its exit statuses. Traffic through it is tested by every `each_broker!` test.

#![cfg(feature = "broker")]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::*;

fn chat_broker(args: &[&str]) -> Command {
    let mut c = Command::new(chat_broker_bin().expect("built with the broker feature"));
    c.args(args).env_remove("RUST_LOG");
    c
}

/// Starts chat-broker and waits for its start line; returns the process and that line.
fn start(args: &[&str]) -> (Proc, String) {
    let p = Proc::spawn(&mut chat_broker(args));
    p.wait_stderr("\n");
    let line = p.stderr().lines().next().unwrap_or_default().to_string();
    (p, line)
}

/// chat-broker on a free loopback port with `extra` flags, once it listens; and its URL.
fn serving(extra: &[&str]) -> (Proc, String) {
    let (broker, line) = start(&[&["--listen", "127.0.0.1:0"], extra].concat());
    let addr = line
        .trim_start_matches("chat-broker: listening on ")
        .split(' ')
        .next()
        .unwrap_or_default()
        .to_string();
    (broker, format!("mqtt://{addr}"))
}

/// Runs `reader` (a `chat-sub --session …` with `-v`) until it subscribed, then stops it:
/// its session waits on the broker for it.
fn leave_a_session(reader: &mut Command) {
    let mut away = Proc::spawn(reader);
    away.wait_stderr("subscribed to");
    away.signal(libc::SIGINT);
    away.wait_until("the reader left", |p| p.exited());
}

#[test]
fn prints_one_line_saying_where_it_listens() {
    let (p, line) = start(&["--listen", "127.0.0.1:0", "--listen", "127.0.0.1:0"]);
    assert!(
        line.starts_with("chat-broker: listening on 127.0.0.1:") && line.contains(", 127.0.0.1:"),
        "{line}"
    );
    assert!(line.ends_with("(MQTT 3.1.1 and 5)"), "{line}");
    assert!(p.stdout().is_empty());
    // Both addresses serve clients.
    let ports: Vec<u16> = line
        .split("127.0.0.1:")
        .skip(1)
        .map(|s| {
            s.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
                .parse()
                .unwrap()
        })
        .collect();
    for port in ports {
        let out = run(
            tool("chat-sub").args(["-b", &format!("127.0.0.1:{port}"), "-W", "0.2", "t"]),
            b"",
        );
        out.expect_code(0);
    }
    assert_eq!(p.stderr().lines().count(), 1, "{}", p.stderr());
}

#[test]
fn stops_with_status_0_on_sigint_and_sigterm() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        let (p, _) = start(&["--listen", "127.0.0.1:0"]);
        p.signal(sig);
        let out = p.finish();
        out.expect_code(0);
    }
}

/// SIGTERM stops gracefully: the MQTT 5 client is told "server shutting down" (0x8B),
/// the 3.1.1 one sees its connection closed, what was queued is written first, and the
/// broker exits 0 and accepts nobody new meanwhile.
#[test]
fn sigterm_tells_mqtt_5_clients_and_exits_0() {
    let (broker, url) = serving(&[]);
    let v5 = Proc::spawn(tool("chat-sub").args(["-b", &url, "-V", "5", "-v", "room"]));
    v5.wait_stderr("subscribed to");
    let v3 = Proc::spawn(tool("chat-sub").args(["-b", &url, "-V", "3", "-v", "room"]));
    v3.wait_stderr("subscribed to");
    run(
        tool("chat-pub").args(["-b", &url, "--no-presence", "-m", "last words", "room"]),
        b"",
    )
    .expect_code(0);
    v5.wait_stdout("last words");
    v3.wait_stdout("last words");
    broker.signal(libc::SIGTERM);
    v5.wait_stderr("the broker disconnected: server shutting down (0x8b)");
    v3.wait_stderr("connection lost: the broker closed the connection");
    let out = broker.finish();
    out.expect_code(0);
}

/// With --max-connections 1, a second client is refused in its CONNACK (0x97 under
/// MQTT 5, "server unavailable" under 3.1.1) and says so when it gives up; once the first
/// leaves, it gets in.
#[test]
fn max_connections_refuses_the_client_beyond() {
    let (_broker, url) = serving(&["--max-connections", "1"]);
    let mut first = Proc::spawn(tool("chat-sub").args(["-b", &url, "-v", "room"]));
    first.wait_stderr("subscribed to");
    for (version, said) in [
        ("5", "quota exceeded (0x97)"),
        ("3", "server unavailable (0x03)"),
    ] {
        let out = run(
            tool("chat-pub").args([
                "-b",
                &url,
                "-V",
                version,
                "--connect-timeout",
                "0.5",
                "-m",
                "x",
                "room",
            ]),
            b"",
        );
        out.expect_code(3);
        assert!(out.stderr.contains(said), "-V {version}: {}", out.stderr);
    }
    first.signal(libc::SIGINT);
    first.wait_until("the first client left", |p| p.exited());
    run(
        tool("chat-pub").args(["-b", &url, "--no-presence", "-m", "now", "room"]),
        b"",
    )
    .expect_code(0);
}

/// --max-queued-messages: a session away while 10 lines are published keeps the first
/// 3, the broker says how many it dropped, the publisher is not failed.
#[test]
fn a_full_session_queue_keeps_the_oldest_and_says_so() {
    let (broker, url) = serving(&["--max-queued-messages", "3"]);
    let reader = |extra: &[&str]| {
        let mut c = tool("chat-sub");
        c.args([
            "-b",
            &url,
            "--session",
            "queued",
            "-q",
            "1",
            "-F",
            "{text}",
            "-v",
        ])
        .args(extra)
        .arg("room");
        c
    };
    leave_a_session(&mut reader(&[]));
    let (input, sent) = numbered(1, 10);
    run(
        tool("chat-pub").args(["-b", &url, "--no-presence", "-q", "1", "room"]),
        input.as_bytes(),
    )
    .expect_code(0);
    let back = Proc::spawn(&mut reader(&["-n", "3"]));
    let out = back.finish();
    out.expect_code(0);
    assert_eq!(out.lines(), sent[..3]);
    broker.signal(libc::SIGTERM);
    let log = broker.finish();
    assert!(
        log.stderr
            .contains("queued: 7 messages dropped while it was away: its queue was full"),
        "{}",
        log.stderr
    );
}

/// --max-queued-bytes: with a session away filling the budget, chat-pub's lines beyond it
/// are refused (0x97, reported by line number, exit 1), and every line it did not report
/// reaches the session when it is back: none is taken and lost.
#[test]
fn over_the_byte_budget_lines_are_refused_never_lost() {
    let (_broker, url) = serving(&["--max-queued-bytes", "2K"]);
    let reader = |extra: &[&str]| {
        let mut c = tool("chat-sub");
        c.args(["-b", &url, "--session", "budget", "-q", "1", "--raw", "-v"])
            .args(extra)
            .arg("room");
        c
    };
    leave_a_session(&mut reader(&[]));
    let (input, sent) = numbered(1, 40);
    let out = run(
        tool("chat-pub").args(["-b", &url, "--no-presence", "--raw", "-q", "1", "room"]),
        input.as_bytes(),
    );
    out.expect_code(1);
    let refused: Vec<usize> = (out.stderr.lines())
        .filter(|l| l.ends_with("refused by the broker: quota exceeded (0x97)"))
        .filter_map(|l| {
            l.strip_prefix("chat-pub: line ")?
                .split(':')
                .next()?
                .parse()
                .ok()
        })
        .collect();
    assert!(!refused.is_empty(), "nothing refused:\n{}", out.stderr);
    let kept: Vec<String> = (1..=sent.len())
        .filter(|n| !refused.contains(n))
        .map(|n| sent[n - 1].clone())
        .collect();
    let back = Proc::spawn(&mut reader(&["-n", &kept.len().to_string()]));
    let got = back.finish();
    got.expect_code(0);
    assert_eq!(got.lines(), kept);
}

#[test]
fn a_port_in_use_exits_3_with_one_message() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = run(&mut chat_broker(&["--listen", &addr]), b"");
    out.expect_code(3);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(
        out.stderr.contains(&addr) && out.stderr.to_lowercase().contains("in use"),
        "{}",
        out.stderr
    );
    // What to do about it: use the broker that is there, or another port.
    let port = taken.local_addr().unwrap().port();
    let hint = format!(
        "another program listens there, usually a broker (chat-broker or mosquitto): the \
         clients can use it as it is (-b {addr}), or give this broker another port \
         (--listen 127.0.0.1:{})",
        port.wrapping_add(1).max(1024)
    );
    assert!(out.stderr.contains(&hint), "{}", out.stderr);
}

#[test]
fn a_bad_address_exits_2() {
    for bad in ["1883", "127.0.0.1", "127.0.0.1:99999", "127.0.0.1:x"] {
        let out = run(&mut chat_broker(&["--listen", bad]), b"");
        out.expect_code(2);
        assert!(out.stderr.contains(bad), "{bad}: {}", out.stderr);
    }
    let out = run(&mut chat_broker(&["--bogus"]), b"");
    out.expect_code(2);
    // A port alone is not an address: which host is meant is asked for, not guessed.
    let out = run(&mut chat_broker(&["--listen", ":1883"]), b"");
    out.expect_code(2);
    assert_eq!(
        out.stderr,
        "chat-broker: invalid --listen address ':1883': give the host too: 127.0.0.1:1883 \
         (this machine only) or 0.0.0.0:1883 (every network interface)\n"
    );
}

#[test]
fn verbose_logs_connections() {
    let broker = Broker::embedded(); // started with -v
    run(&mut chat_pub(&broker, &["-V", "3", "-m", "x", "t"]), b"").expect_code(0);
    run(&mut chat_pub(&broker, &["-V", "5", "-m", "x", "t"]), b"").expect_code(0);
    let log = broker.log();
    assert!(log.contains("connected (MQTT 3.1.1)"), "{log}");
    assert!(log.contains("connected (MQTT 5)"), "{log}");
    assert!(log.contains("disconnected after"), "{log}");
}

/// Like any server, chat-broker raises its soft limit of open files to the hard limit at
/// start (each client holds one), and says so with -v.
#[test]
fn the_open_file_limit_is_raised_to_the_hard_limit() {
    let bin = chat_broker_bin().expect("built with the broker feature");
    let script = format!("ulimit -S -n 64 && exec '{}' -v --listen 127.0.0.1:0", bin);
    let mut cmd = Command::new("sh");
    cmd.args(["-c", &script]).env_remove("RUST_LOG");
    let p = Proc::spawn(&mut cmd);
    p.wait_stderr("listening on");
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", p.pid())).expect("limits");
    let files = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("a line for open files");
    let v: Vec<&str> = files.split_whitespace().collect();
    // "Max open files <soft> <hard> files"
    assert_eq!(v[3], v[4], "{files}");
    assert_ne!(v[3], "64", "{files}");
    assert!(
        p.stderr().contains(&format!("open files: up to {}", v[4])),
        "{}",
        p.stderr()
    );
}

#[test]
fn version_flag() {
    let out = run(&mut chat_broker(&["--version"]), b"");
    out.expect_code(0);
    assert!(out.stdout_str().contains(env!("CARGO_PKG_VERSION")));
}

/// A persistent session (clean session off) keeps QoS 1 messages published while its
/// subscriber was away, under MQTT 3.1.1 and 5 (with a session expiry), as mosquitto_sub
/// uses them.
#[test]
fn persistent_sessions_keep_messages_for_absent_subscribers() {
    if !have_mosquitto_clients() {
        return;
    }
    let broker = Broker::embedded();
    for (version, expiry) in [("311", &[][..]), ("5", &["-x", "300"][..])] {
        let base = unique_topic("session");
        let id = format!("persistent-{version}");
        let sub = |flags: &[&str]| {
            let mut c = Command::new("mosquitto_sub");
            c.args([
                "-p",
                &broker.port.to_string(),
                "-V",
                version,
                "-q",
                "1",
                "-c",
            ])
            .args(["-i", &id, "-t", &format!("{base}/#"), "-C", "1", "-W", "10"])
            .args(expiry)
            .args(flags);
            c
        };
        // A retained probe shows that the session exists and is subscribed.
        publish_raw(&broker, &format!("{base}/probe"), b"probe", 1, true);
        assert_eq!(run(&mut sub(&[]), b"").expect_code(0).lines(), ["probe"]);
        // Published while nobody is connected: kept in the session. (-R: skip the
        // retained probe, which the new SUBSCRIBE sends again.)
        let away = format!("{base}/chat");
        run(
            &mut chat_pub(&broker, &["-q", "1", "--raw", "-m", "while away", &away]),
            b"",
        )
        .expect_code(0);
        let back = run(&mut sub(&["-R"]), b"");
        assert_eq!(
            back.expect_code(0).lines(),
            ["while away"],
            "MQTT {version}"
        );
    }
}

/// MQTT lets a client id hold any characters, and mosquitto takes them all: so does
/// chat-broker, under both versions, and the sessions stay apart.
#[test]
fn client_ids_with_topic_characters_are_taken() {
    let broker = Broker::embedded();
    for version in ["5", "3"] {
        for id in ["a/b", "x+y", "#", "$sys"] {
            let topic = unique_topic("odd-id");
            let sub = Proc::subscriber(&broker, &["-V", version, "-i", id, "-F", "{text}", &topic]);
            run(
                &mut chat_pub(&broker, &["-V", version, "-m", id, &topic]),
                b"",
            )
            .expect_code(0);
            assert_eq!(sub.wait_lines(1), [id], "MQTT {version}");
        }
    }
    assert!(!broker.log().contains("panicked"), "{}", broker.log());
}

/// A crowd in one room: 1,000 members (MQTT 3.1.1 and 5 in turn, each with a will, as
/// chat-sub's presence has) join on raw connections; none is refused, a chat-pub line
/// reaches every one, and the broker's peak RSS stays within a generous bound (rumqttd,
/// the engine before, needed about 67 MiB per 1,000).
#[test]
fn a_room_of_a_thousand_members() {
    // The members' sockets are this process's files (and other tests run alongside).
    let files = mqttchat::tool::raise_open_files();
    let crowd = 1000.min(files as usize / 2);
    let broker = Broker::embedded();
    let room = unique_topic("crowd");
    let mut members = Vec::new();
    for i in 0..crowd {
        let level = if i % 2 == 0 { 4 } else { 5 };
        let mut s = TcpStream::connect(("127.0.0.1", broker.port)).expect("connect");
        let will = format!("{room}-will/{i}");
        s.write_all(&connect_packet(level, &format!("{room}-{i}"), Some(&will)))
            .expect("send CONNECT");
        s.write_all(&subscribe_packet(level, &room))
            .expect("send SUBSCRIBE");
        members.push(s);
    }
    // CONNACK (accepted), then SUBACK: what each member has read so far.
    let end = Instant::now() + Duration::from_secs(60);
    let mut seen: Vec<Vec<u8>> = vec![Vec::new(); members.len()];
    let read_until = |s: &mut TcpStream, got: &mut Vec<u8>, done: &dyn Fn(&[u8]) -> bool| {
        let mut chunk = [0u8; 4096];
        while !done(got) {
            let left = end.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "timed out; read {got:?}");
            s.set_read_timeout(Some(left)).expect("timeout");
            let n = s.read(&mut chunk).expect("read");
            assert!(n > 0, "the broker closed a member's connection: {got:?}");
            got.extend_from_slice(&chunk[..n]);
        }
    };
    for (i, s) in members.iter_mut().enumerate() {
        read_until(s, &mut seen[i], &|b| b.contains(&0x90));
        assert_eq!(
            (seen[i][0], seen[i][3]),
            (0x20, 0),
            "member {i} refused: {:?}",
            seen[i]
        );
    }
    run(&mut chat_pub(&broker, &["-m", "hello crowd", &room]), b"").expect_code(0);
    for (i, s) in members.iter_mut().enumerate() {
        read_until(s, &mut seen[i], &|b| {
            b.windows(11).any(|w| w == b"hello crowd")
        });
    }
    let kib = status_kib(broker.pid(), "VmHWM");
    eprintln!(
        "chat-broker peak RSS with {crowd} members: {} MiB",
        kib / 1024
    );
    assert!(kib < 64 << 10, "peak RSS {kib} KiB");
}

/// A member that stops reading must not make the broker grow without end: once 64 MiB
/// wait to be written to it, QoS 0 messages to it are dropped and the log says so, while
/// a member that reads still gets everything.
#[test]
fn a_member_that_does_not_read_costs_bounded_memory() {
    let broker = Broker::embedded();
    let room = unique_topic("stalled");
    let member = |name: &str| {
        let mut s = TcpStream::connect(("127.0.0.1", broker.port)).expect("connect");
        s.write_all(&connect_packet(4, &format!("{room}-{name}"), None))
            .expect("send CONNECT");
        s.write_all(&subscribe_packet(4, &room))
            .expect("send SUBSCRIBE");
        s
    };
    let _stalled = member("stalled");
    // The reader reads as fast as it can: 150 messages of 1 MiB and their headers.
    let mut reader = member("reader");
    let want = 150 * (1 << 20);
    let reading = std::thread::spawn(move || {
        let mut chunk = vec![0u8; 1 << 16];
        let mut total = 0;
        reader
            .set_read_timeout(Some(Duration::from_secs(60)))
            .expect("timeout");
        while total < want {
            match reader.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
        total
    });
    let line = format!("{}\n", "x".repeat(1 << 20));
    let args = ["--raw", "-q", "0", "--max-size", "2M", &room];
    run(&mut chat_pub(&broker, &args), line.repeat(150).as_bytes()).expect_code(0);
    let got = reading.join().expect("the reader");
    assert!(got >= want, "the reading member got {got} of {want} bytes");
    wait_until(
        "the broker says it dropped messages",
        || broker.log().contains("QoS 0 messages dropped"),
        || broker.log(),
    );
    let kib = status_kib(broker.pid(), "VmHWM");
    assert!(kib < 160 << 10, "peak RSS {kib} KiB");
}

/// What a client sends after its DISCONNECT is not read: a CONNECT in the same write
/// cannot take over another client's session.
#[test]
fn nothing_after_a_disconnect_is_read() {
    let broker = Broker::embedded();
    let victim_id = unique_topic("victim");
    let mut victim = TcpStream::connect(("127.0.0.1", broker.port)).expect("connect");
    victim
        .write_all(&connect_packet(4, &victim_id, None))
        .expect("send CONNECT");
    let mut connack = [0u8; 4];
    victim.read_exact(&mut connack).expect("CONNACK");
    assert_eq!(connack, [0x20, 2, 0, 0]);
    let mut bytes = connect_packet(4, &unique_topic("other"), None);
    bytes.extend_from_slice(&[0xE0, 0]);
    bytes.extend_from_slice(&connect_packet(4, &victim_id, None));
    let answer = exchange(broker.port, &bytes, 100, Duration::from_secs(5)).expect("exchange");
    assert!(answer.closed, "{answer:?}");
    assert_eq!(answer.bytes, [0x20, 2, 0, 0], "one CONNACK only");
    victim.write_all(&[0xC0, 0]).expect("send PINGREQ");
    victim
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut pong = [0u8; 2];
    victim
        .read_exact(&mut pong)
        .expect("PINGRESP: still connected");
    assert_eq!(pong, [0xD0, 0]);
}
