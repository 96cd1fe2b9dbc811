//! chat-broker --data-dir (chat-broker(1) STORE): what it keeps survives SIGTERM, kill -9
//! and a torn write; a store that cannot be read stops the start; one broker per
//! directory.

#![cfg(feature = "broker")]

use std::path::Path;
use std::process::{Command, Stdio};

use crate::common::*;

/// chat-broker on `port` keeping its store in `dir`, once it listens.
fn durable_broker(port: u16, dir: &Path) -> Proc {
    let p = Proc::spawn(&mut broker_cmd(port, dir));
    p.wait_stderr("listening on");
    p
}

fn broker_cmd(port: u16, dir: &Path) -> Command {
    let mut c = Command::new(chat_broker_bin().expect("built with the broker feature"));
    c.args(["-v", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(dir)
        .env_remove("RUST_LOG");
    c
}

/// Ends the broker as a crash would.
fn crash(mut broker: Proc) {
    broker.signal(libc::SIGKILL);
    broker.wait_until("the broker is gone", |p| p.exited());
}

/// The goal of the store: a `chat-sub --session` reader and a QoS 1 stream of 20,000
/// lines, the broker killed (-9) three times in the middle and started again on the same
/// directory: chat-pub is acknowledged for every line, and the reader prints each once,
/// in order.
#[test]
fn every_acknowledged_line_survives_three_kill_9() {
    let dir = TempDir::new("store");
    let port = free_port();
    let url = [format!("mqtt://127.0.0.1:{port}")];
    let mut broker = durable_broker(port, dir.path());
    let topic = unique_topic("crash");
    let args = ["--session", "crash-reader", "-q", "1", "-v", "-F", "{text}"];
    let mut reader = chat_sub_at(&url, &args);
    reader.args(["-n", "20000", &topic]);
    let reader = Proc::spawn(&mut reader);
    reader.wait_stderr("subscribed to");
    let mut publisher = Proc::spawn(chat_pub_at(&url, &["-q", "1", &topic]).stderr(Stdio::piped()));
    for round in 0..4 {
        let (lines, _) = numbered(round * 5000 + 1, round * 5000 + 5000);
        publisher.write(lines.as_bytes());
        if round < 3 {
            reader.wait_lines(round * 5000 + 2500);
            crash(broker);
            broker = durable_broker(port, dir.path());
        }
    }
    let out = publisher.finish();
    out.expect_code(0);
    let got = reader.finish();
    let (_, want) = numbered(1, 20000);
    assert_exactly_once_in_order(&got.expect_code(0).lines(), &want);
    assert!(got.stderr.contains("session resumed"), "{}", got.stderr);
    drop(broker);
}

/// Retained messages, and a session's subscription and queue, after a SIGTERM restart and
/// after kill -9: a reader that was away gets what was published meanwhile, a newcomer
/// gets the retained status.
#[test]
fn retained_messages_and_sessions_survive_restarts() {
    let dir = TempDir::new("store");
    let port = free_port();
    let url = [format!("mqtt://127.0.0.1:{port}")];
    let topic = unique_topic("kept");
    let status = format!("{topic}/status");
    let reader_args = ["--session", "kept-reader", "-q", "1", "-v", "-F", "{text}"];
    let mut broker = durable_broker(port, dir.path());
    let mut away = Proc::spawn(chat_sub_at(&url, &reader_args).arg(&topic));
    away.wait_stderr("subscribed to");
    away.signal(libc::SIGINT);
    away.wait_until("the reader left", |p| p.exited());
    for (n, stop) in [(1, libc::SIGTERM), (2, libc::SIGKILL)] {
        let line = format!("while away {n}");
        run(
            &mut chat_pub_at(&url, &["-q", "1", "-m", &line, &topic]),
            b"",
        )
        .expect_code(0);
        let text = format!("status {n}");
        let retain = ["-r", "-q", "1", "-m", &text, &status];
        run(&mut chat_pub_at(&url, &retain), b"").expect_code(0);
        broker.signal(stop);
        broker.wait_until("the broker stopped", |p| p.exited());
        broker = durable_broker(port, dir.path());
        let mut newcomer = chat_sub_at(&url, &["-F", "{text}", "-n", "1", &status]);
        assert_eq!(run(&mut newcomer, b"").expect_code(0).lines(), [text]);
    }
    let mut back = chat_sub_at(&url, &reader_args);
    back.args(["-n", "2", &topic]);
    let got = run(&mut back, b"");
    assert_eq!(got.expect_code(0).lines(), ["while away 1", "while away 2"]);
    assert!(
        broker.stderr().contains("sessions 1,"),
        "{}",
        broker.stderr()
    );
}

/// A write that a crash cut short (here: half a record at the end of the file) is cut
/// off at the next start, with a warning, and what came before it is all there.
#[test]
fn a_torn_tail_is_cut_off_and_the_rest_kept() {
    let (dir, port, url, topic) = a_stopped_store();
    let store = dir.path().join("store");
    let mut bytes = std::fs::read(&store).unwrap();
    // A record's frame that says 100 bytes follow, and 3 of them.
    bytes.extend_from_slice(&[100, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7]);
    std::fs::write(&store, &bytes).unwrap();
    let broker = durable_broker(port, dir.path());
    let said = broker.stderr();
    let warned = said.contains("last 11 bytes were a write that a crash cut short");
    assert!(warned, "{said}");
    let mut newcomer = chat_sub_at(&url, &["-F", "{text}", "-n", "1", &topic]);
    assert_eq!(run(&mut newcomer, b"").expect_code(0).lines(), ["kept"]);
}

/// A store with a retained "kept" on a topic of its own, its broker stopped: the
/// directory, the broker's port and URL, and the topic.
fn a_stopped_store() -> (TempDir, u16, [String; 1], String) {
    let dir = TempDir::new("store");
    let port = free_port();
    let url = [format!("mqtt://127.0.0.1:{port}")];
    let topic = unique_topic("kept");
    let mut broker = durable_broker(port, dir.path());
    let retain = ["-r", "-q", "1", "-m", "kept", &topic];
    run(&mut chat_pub_at(&url, &retain), b"").expect_code(0);
    broker.signal(libc::SIGTERM);
    broker.wait_until("the broker stopped", |p| p.exited());
    (dir, port, url, topic)
}

/// A store damaged before its end (a byte of the snapshot changed): chat-broker does not
/// start (exit 1), says which file and what to do, and leaves the file as it was.
#[test]
fn a_damaged_store_stops_the_start() {
    let (dir, port, ..) = a_stopped_store();
    let store = dir.path().join("store");
    let mut bytes = std::fs::read(&store).unwrap();
    // The first record's checksum (after the 16-byte header and its length).
    bytes[20] ^= 0xFF;
    std::fs::write(&store, &bytes).unwrap();
    let out = run(&mut broker_cmd(port, dir.path()), b"");
    out.expect_code(1);
    let said = format!("{}", store.display());
    assert!(out.stderr.contains(&said), "{}", out.stderr);
    assert!(out.stderr.contains("cannot be read"), "{}", out.stderr);
    assert!(out.stderr.contains("move the file away"), "{}", out.stderr);
    assert_eq!(
        std::fs::read(&store).unwrap(),
        bytes,
        "the file is left as it was"
    );
}

/// Two brokers on one directory would write over each other: the second refuses.
#[test]
fn one_broker_per_data_directory() {
    let dir = TempDir::new("store");
    let _first = durable_broker(free_port(), dir.path());
    let out = run(&mut broker_cmd(free_port(), dir.path()), b"");
    out.expect_code(1);
    assert!(
        out.stderr
            .contains("another chat-broker uses the data directory"),
        "{}",
        out.stderr
    );
}
