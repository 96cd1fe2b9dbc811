//! chat-broker itself (chat-broker(1)): where it listens, what it says, how it stops, and
//! its exit statuses. Traffic through it is tested by every `each_broker!` test.

#![cfg(feature = "broker")]

use std::net::TcpListener;
use std::process::Command;

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
/// start (each client holds three), and says so with -v.
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

/// rumqttd cannot take client ids with `+ # / $` (it drops them without a CONNACK, then
/// panics when the id returns, and serves no new client of that version): chat-broker's
/// front refuses them with the proper reason code, so the client stops at once (exit 4)
/// and the broker goes on serving everyone else.
#[test]
fn client_ids_the_engine_cannot_take_are_refused() {
    let broker = Broker::embedded();
    for version in ["5", "3"] {
        for id in ["a/b", "x+y", "#", "$sys"] {
            let out = run(
                &mut chat_pub(&broker, &["-V", version, "-i", id, "-m", "x", "t"]),
                b"",
            );
            out.expect_code(4);
            assert!(
                out.stderr.contains("refused the client id"),
                "{}",
                out.stderr
            );
        }
        run(
            &mut chat_pub(&broker, &["-V", version, "-m", "fine", "t"]),
            b"",
        )
        .expect_code(0);
    }
    assert!(
        broker.log().contains("refused client id"),
        "{}",
        broker.log()
    );
    assert!(!broker.log().contains("panicked"), "{}", broker.log());
}
