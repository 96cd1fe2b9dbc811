//! Never lose a line (chat-pub(1) DELIVERY, chat-sub(1) RECONNECTION AND SESSIONS):
//! connections cut under chat-pub and under chat-sub, and a broker restarted mid-stream.
//! At least once on the wire (resends after a reconnect) plus de-duplication by envelope
//! id in chat-sub = exactly once on screen.
//!
//! The tests print what they saw (cuts, lines, repeats dropped) with `--nocapture`.

use std::io::Write;
use std::process::Stdio;

use crate::common::*;

/// How many repeats chat-sub dropped, from its `-vv` log.
fn repeats_dropped(stderr: &str) -> usize {
    stderr
        .lines()
        .filter_map(|l| l.split("dropped a repeat (").nth(1))
        .filter_map(|r| r.split(' ').next()?.parse().ok())
        .max()
        .unwrap_or(0)
}

each_broker! {
    /// 20,000 lines at QoS 1 stream through a proxy that cuts chat-pub's connection five
    /// times, each time while messages are in flight; chat-pub resends what was not
    /// acknowledged and exits 0, and a subscriber prints every line exactly once, in order.
    fn cuts_under_chat_pub_lose_and_repeat_nothing(broker) {
        let topic = unique_topic("pubcuts");
        let proxy = Proxy::start(broker);
        let sub = Proc::subscriber(broker, &["-vv", "-F", "{text}", "-n", "20000", &topic]);
        let mut publisher = Proc::spawn(
            tool("chat-pub").args(["-b", &proxy.url(), "--no-presence", "-q", "1", &topic]),
        );
        for chunk in 0..5 {
            let (input, _) = numbered(chunk * 4000 + 1, chunk * 4000 + 4000);
            publisher.write(input.as_bytes());
            // Cut once part of this chunk has arrived: the rest is in flight or unsent.
            sub.wait_lines(chunk * 4000 + 1000);
            proxy.cut();
        }
        let out = publisher.finish();
        out.expect_code(0);
        assert!(out.stderr.contains("connection lost"), "{}", out.stderr);
        assert!(out.stderr.contains("reconnected"), "{}", out.stderr);
        let got = sub.finish();
        let (_, want) = numbered(1, 20_000);
        assert_exactly_once_in_order(&got.expect_code(0).lines(), &want);
        println!(
            "{:?}: {} cuts, {} connections, 20000 lines, {} repeats dropped",
            broker.kind,
            proxy.cuts(),
            proxy.accepted(),
            repeats_dropped(&got.stderr)
        );
        // Every cut but the last one left lines to send; after the last, chat-pub may have
        // had everything acknowledged already, and then ends without connecting again.
        assert!(proxy.accepted() >= 5, "chat-pub reconnected {} times", proxy.accepted() - 1);
    }

    /// chat-sub --session behind a proxy that cuts its connection four times while lines
    /// are published at QoS 1: the broker keeps what arrives meanwhile, and every line is
    /// printed exactly once, in order.
    fn cuts_under_chat_sub_with_a_session_lose_and_repeat_nothing(broker) {
        let topic = unique_topic("subcuts");
        let proxy = Proxy::start(broker);
        let session = format!("session-{}", unique_topic("s").replace('/', "-"));
        let mut cmd = tool("chat-sub");
        cmd.args(["-b", &proxy.url(), "--session", &session, "-q", "1"])
            .args(["-vv", "-F", "{text}", "-n", "10000", &topic]);
        let sub = Proc::spawn(&mut cmd);
        sub.wait_stderr("subscribed to");
        let mut publisher = Proc::spawn(&mut chat_pub(broker, &["-q", "1", &topic]));
        for chunk in 0..4 {
            let (input, _) = numbered(chunk * 2500 + 1, chunk * 2500 + 2500);
            publisher.write(input.as_bytes());
            sub.wait_lines(chunk * 2500 + 500);
            proxy.cut();
        }
        publisher.finish().expect_code(0);
        let got = sub.finish();
        let (_, want) = numbered(1, 10_000);
        assert_exactly_once_in_order(&got.expect_code(0).lines(), &want);
        assert!(got.stderr.contains("session resumed"), "{}", got.stderr);
        println!(
            "{:?}: {} cuts, {} connections, 10000 lines, {} repeats dropped",
            broker.kind,
            proxy.cuts(),
            proxy.accepted(),
            repeats_dropped(&got.stderr)
        );
    }

    /// Without --session, lines published while chat-sub was cut off are missed, and
    /// chat-sub says when: the lines it prints are in order and never repeated, and the
    /// gap falls between its "connection lost" and "reconnected" messages.
    fn cuts_under_chat_sub_without_a_session_miss_but_never_repeat(broker) {
        let topic = unique_topic("nosession");
        let proxy = Proxy::start(broker);
        let mut cmd = tool("chat-sub");
        cmd.args(["-b", &proxy.url(), "-v", "-F", "{text}", &topic]);
        let sub = Proc::spawn(&mut cmd);
        sub.wait_stderr("subscribed to");
        run(&mut chat_pub(broker, &["-m", "before", &topic]), b"").expect_code(0);
        sub.wait_lines(1);
        proxy.cut();
        sub.wait_stderr("connection lost");
        run(&mut chat_pub(broker, &["-m", "during", &topic]), b"").expect_code(0);
        // Wait for the resubscription (a second "subscribed to") before the last line.
        wait_until(
            "chat-sub subscribed again",
            || sub.stderr().matches("subscribed to").count() >= 2,
            || sub.stderr(),
        );
        run(&mut chat_pub(broker, &["-m", "after", &topic]), b"").expect_code(0);
        let lines = sub.wait_lines(2);
        assert_eq!(lines, ["before", "after"], "{}", sub.stderr());
    }
}

/// mosquitto with persistence, stopped (SIGTERM) and started again on the same port in
/// the middle of a stream: chat-pub and chat-sub --session both say that the connection
/// was lost and regained, and every line arrives exactly once, in order.
#[test]
fn a_broker_restart_loses_nothing() {
    if !have_mosquitto() {
        return;
    }
    let dir = TempDir::new("persist");
    let config = format!(
        "persistence true\npersistence_location {}/\nuser root\n",
        dir.path().display()
    );
    let mut broker = Broker::mosquitto_with(&config);
    let topic = unique_topic("restart");
    let mut cmd = chat_sub(&broker, &["--session", "restart-sub", "-q", "1", "-v"]);
    cmd.args(["-F", "{text}", "-n", "6000", &topic]);
    let sub = Proc::spawn(&mut cmd);
    sub.wait_stderr("subscribed to");
    let mut publisher = Proc::spawn(chat_pub(&broker, &["-q", "1", &topic]).stderr(Stdio::piped()));
    let (first, _) = numbered(1, 3000);
    publisher.write(first.as_bytes());
    sub.wait_lines(1000);
    broker.stop();
    let (second, _) = numbered(3001, 6000);
    publisher.write(second.as_bytes());
    broker.start_again();
    let out = publisher.finish();
    out.expect_code(0);
    assert!(out.stderr.contains("connection lost") && out.stderr.contains("reconnected"));
    let got = sub.finish();
    let (_, want) = numbered(1, 6000);
    assert_exactly_once_in_order(&got.expect_code(0).lines(), &want);
    assert!(got.stderr.contains("connection lost"), "{}", got.stderr);
    assert!(got.stderr.contains("session resumed"), "{}", got.stderr);
    let _ = std::io::stdout().flush();
}

/// A broker that is down behind a proxy or a load balancer shows as connections accepted
/// and closed before any CONNACK. chat-pub and chat-sub, connected at MQTT 5 before, wait
/// for it as for any lost connection (they once took the closes for a refusal of MQTT 5
/// and exited 3), and carry on when it is back.
#[test]
#[cfg(feature = "broker")]
fn a_broker_down_behind_a_proxy_is_waited_for() {
    let dir = TempDir::new("behind");
    let store = dir.path().display().to_string();
    let mut broker = Broker::embedded_with(&["--data-dir", &store]);
    let proxy = Proxy::start(&broker);
    let url = [proxy.url()];
    let topic = unique_topic("behind");
    let args = [
        "--session",
        "behind-sub",
        "-q",
        "1",
        "-v",
        "-F",
        "{text}",
        "-n",
        "2",
    ];
    let mut cmd = chat_sub_at(&url, &args);
    let sub = Proc::spawn(cmd.arg(&topic));
    sub.wait_stderr("subscribed to");
    let mut publisher = Proc::spawn(chat_pub_at(&url, &["-q", "1", &topic]).stderr(Stdio::piped()));
    publisher.write(b"before\n");
    sub.wait_lines(1);
    broker.stop();
    // Both tools meet a few connections that the proxy accepts and closes.
    let seen = proxy.accepted();
    wait_until(
        "the tools tried the proxy a few times",
        || proxy.accepted() >= seen + 6,
        || format!("chat-sub:\n{}", sub.stderr()),
    );
    broker.start_again();
    publisher.write(b"after\n");
    let out = publisher.finish();
    out.expect_code(0);
    let got = sub.finish();
    assert_eq!(
        got.expect_code(0).lines(),
        ["before", "after"],
        "{}",
        got.stderr
    );
}
