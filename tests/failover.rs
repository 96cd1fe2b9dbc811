//! Every broker people run (BROKERS in chat-pub(1) and chat-sub(1)): `-V auto` in front
//! of brokers that speak only MQTT 3.1.1, a broker that refuses the presence will,
//! several brokers with failover, and input read while no broker answers.
//!
//! The brokers are the real ones (chat-broker and mosquitto, through [`each_broker!`]). A
//! proxy in front of them stands in for a broker that refuses MQTT 5 the way RabbitMQ
//! (closes the connection) or amqtt (answers "unacceptable protocol version" and keeps the
//! socket open) do, and for a cluster node that dies (it stops listening). The real
//! foreign brokers and a NATS cluster are in tests/cluster.rs and tests/foreign.rs.

use crate::common::*;

each_broker! {
    /// `-V auto` (the default) in front of a broker that closes the connection on an MQTT
    /// 5 CONNECT: both tools connect again with MQTT 3.1.1, say so at -v, and chat works;
    /// a strict `-V 5` ends at once with status 3 and a hint.
    fn auto_falls_back_when_the_broker_closes_on_mqtt_5(broker) {
        falls_back(broker, Mqtt5::Close);
    }

    /// The same in front of a broker that answers an MQTT 5 CONNECT with a 3.1.1 CONNACK
    /// "unacceptable protocol version" and keeps the connection open.
    fn auto_falls_back_when_the_broker_refuses_mqtt_5(broker) {
        falls_back(broker, Mqtt5::Refuse);
    }

    /// The same in front of a broker that does not answer an MQTT 5 CONNECT at all: after
    /// a short wait (not the whole connect timeout), MQTT 3.1.1 is tried.
    fn auto_falls_back_when_the_broker_ignores_mqtt_5(broker) {
        falls_back(broker, Mqtt5::Ignore);
    }

    /// A broker that closes the connection, without a word, for chat-pub's will (as NATS
    /// does for a will topic it refuses): chat-pub connects once more without the will,
    /// says that it goes on without presence, and the lines arrive; no join is shown.
    fn a_refused_will_leaves_chat_pub_without_presence(broker) {
        let topic = unique_topic("nowill");
        let rule = Rule { mqtt5: Mqtt5::Refuse, close_on_will: true };
        let proxy = Proxy::with_rule(broker, rule);
        let sub = Proc::subscriber(broker, &["--json", "-n", "2", &topic]);
        let out = run(
            tool("chat-pub").args(["-b", &proxy.url(), "--nick", "al", &topic]),
            b"one\ntwo\n",
        );
        out.expect_code(0);
        assert_eq!(out.stderr.matches("going on without presence").count(), 1, "{}", out.stderr);
        assert!(out.stderr.contains("refused the connection with the presence will"), "{}", out.stderr);
        let lines = sub.finish().expect_code(0).lines();
        let objects = json_lines(&lines);
        let texts: Vec<_> = objects.iter().map(|v| v["text"].clone()).collect();
        assert_eq!(texts, ["one", "two"], "no join before the lines: {lines:?}");
    }

    /// chat-pub with two brokers (two ways to the same broker): the first one dies in the
    /// middle of a stream; chat-pub moves on to the second, says so, sends again what was
    /// not acknowledged, and every line is printed exactly once, in order.
    fn chat_pub_moves_on_to_the_next_broker(broker) {
        let topic = unique_topic("failpub");
        let (first, second) = (Proxy::start(broker), Proxy::start(broker));
        let sub = Proc::subscriber(broker, &["-F", "{text}", "-n", "6000", &topic]);
        let mut publisher = Proc::spawn(tool("chat-pub").args([
            "-b", &first.url(), "-b", &second.url(), "--no-presence", &topic,
        ]));
        let (input, _) = numbered(1, 3000);
        publisher.write(input.as_bytes());
        sub.wait_lines(1000);
        first.shut();
        let (input, _) = numbered(3001, 6000);
        publisher.write(input.as_bytes());
        let out = publisher.finish();
        out.expect_code(0);
        let moved = format!("reconnected to {}", second.url());
        assert!(out.stderr.contains(&moved), "{}", out.stderr);
        let (_, want) = numbered(1, 6000);
        assert_exactly_once_in_order(&sub.finish().expect_code(0).lines(), &want);
    }

    /// `chat-sub --session` with two brokers: the first dies while lines are published;
    /// chat-sub resumes its session through the second and prints every line exactly once.
    /// `CHAT_BROKER` holds the list, separated by a comma and a space.
    fn chat_sub_resumes_its_session_on_the_next_broker(broker) {
        let topic = unique_topic("failsub");
        let (first, second) = (Proxy::start(broker), Proxy::start(broker));
        let session = format!("failover-{}", unique_topic("s").replace('/', "-"));
        let mut cmd = tool("chat-sub");
        cmd.env("CHAT_BROKER", format!("{}, {}", first.url(), second.url()))
            .args(["--session", &session, "-v", "-F", "{text}", "-n", "4000", &topic]);
        let sub = Proc::spawn(&mut cmd);
        sub.wait_stderr("subscribed to");
        let mut publisher = Proc::spawn(&mut chat_pub(broker, &[&topic]));
        let (input, _) = numbered(1, 2000);
        publisher.write(input.as_bytes());
        sub.wait_lines(500);
        first.shut();
        let (input, _) = numbered(2001, 4000);
        publisher.write(input.as_bytes());
        publisher.finish().expect_code(0);
        let got = sub.finish();
        let (_, want) = numbered(1, 4000);
        assert_exactly_once_in_order(&got.expect_code(0).lines(), &want);
        let moved = format!("reconnected to {}; session resumed", second.url());
        assert!(got.stderr.contains(&moved), "{}", got.stderr);
    }

    /// The first broker of the list is down from the start: both tools connect to the next
    /// one and say which.
    fn the_first_broker_that_answers_is_used(broker) {
        let topic = unique_topic("firstup");
        let dead = Proxy::start(broker);
        dead.shut();
        let list = format!("{},{}", dead.url(), broker.url());
        let mut cmd = tool("chat-sub");
        cmd.args(["-b", &list, "-n", "1", "-F", "{text}", "-v", &topic]);
        let sub = Proc::spawn(&mut cmd);
        sub.wait_stderr("subscribed to");
        let out = run(
            tool("chat-pub").args(["-b", &list, "--no-presence", "-m", "hello", &topic]),
            b"",
        );
        out.expect_code(0);
        let connected = format!("connected to {}", broker.url());
        assert!(out.stderr.contains(&connected), "{}", out.stderr);
        let got = sub.finish();
        assert_eq!(got.expect_code(0).lines(), ["hello"]);
        assert!(got.stderr.contains(&connected), "{}", got.stderr);
    }

    /// Input that ends while no broker answers: chat-pub read it all the same, so the end
    /// of input starts the drain timeout, which ends the run with status 1 and the count
    /// of lines not acknowledged.
    fn end_of_input_while_every_broker_is_down_ends_by_the_drain_timeout(broker) {
        let topic = unique_topic("eofdown");
        let (a, b) = (Proxy::start(broker), Proxy::start(broker));
        let sub = Proc::subscriber(broker, &["-F", "{text}", &topic]);
        let mut publisher = Proc::spawn(tool("chat-pub").args([
            "-b", &a.url(), "-b", &b.url(), "--drain-timeout", "1", "--nick", "n", &topic,
        ]));
        publisher.write(b"one\n");
        sub.wait_lines(1);
        a.shut();
        b.shut();
        publisher.wait_stderr("connection lost");
        publisher.write(b"two\nthree\n");
        let out = publisher.finish();
        out.expect_code(1);
        let said = "message(s) not acknowledged by the broker within the drain timeout";
        assert_unacknowledged(&out.stderr, said, 2);
    }

    /// A signal while no broker answers: chat-pub drains what it read for the drain
    /// timeout, then exits 143 with the count of lines not acknowledged.
    fn a_signal_while_every_broker_is_down_exits_143_with_the_count(broker) {
        let topic = unique_topic("sigdown");
        let a = Proxy::start(broker);
        let sub = Proc::subscriber(broker, &["-F", "{text}", &topic]);
        let mut publisher = Proc::spawn(tool("chat-pub").args([
            "-b", &a.url(), "--drain-timeout", "1", "--no-presence", &topic,
        ]));
        publisher.write(b"one\n");
        sub.wait_lines(1);
        a.shut();
        publisher.wait_stderr("connection lost");
        publisher.write(b"two\nthree\nfour\n");
        // Lines still in the pipe when the signal comes are not read any more (as the man
        // page says): signal once chat-pub has read them all, while disconnected.
        publisher.wait_stdin_read();
        publisher.signal(libc::SIGTERM);
        let out = publisher.finish();
        out.expect_code(143);
        assert_unacknowledged(&out.stderr, "message(s) not acknowledged", 3);
    }
}

/// The body of the fall-back tests.
fn falls_back(broker: &Broker, mqtt5: Mqtt5) {
    let topic = unique_topic("fallback");
    let proxy = Proxy::with(broker, mqtt5);
    let mut cmd = tool("chat-sub");
    cmd.args(["-b", &proxy.url(), "-v", "--json", "-n", "2", &topic]);
    let sub = Proc::spawn(&mut cmd);
    sub.wait_stderr("subscribed to");
    let out = run(
        tool("chat-pub").args(["-b", &proxy.url(), "-v", "--nick", "al", &topic]),
        b"one\ntwo\n",
    );
    out.expect_code(0);
    let got = sub.finish();
    let lines = got.expect_code(0).lines();
    let objects = json_lines(&lines);
    // Presence works under MQTT 3.1.1 as well (the will and the join went through).
    assert_eq!(objects[0]["event"], "join", "{lines:?}");
    let texts: Vec<_> = objects[1..].iter().map(|v| v["text"].clone()).collect();
    assert_eq!(texts, ["one", "two"], "{lines:?}");
    for stderr in [&out.stderr, &got.stderr] {
        assert!(
            stderr.contains("does not speak MQTT 5") && stderr.contains("using MQTT 3.1.1"),
            "{stderr}"
        );
        assert!(stderr.contains("(MQTT 3.1.1)"), "{stderr}");
    }
    if mqtt5 == Mqtt5::Ignore {
        return; // silence is no refusal: a strict -V 5 waits for its --connect-timeout
    }
    for name in ["chat-pub", "chat-sub"] {
        let mut cmd = tool(name);
        cmd.args([
            "-b",
            &proxy.url(),
            "-V",
            "5",
            "--connect-timeout",
            LONG_CONNECT_TIMEOUT,
        ]);
        cmd.args(if name == "chat-pub" {
            ["-m", "x"]
        } else {
            ["-n", "1"]
        });
        let out = run(cmd.arg(&topic), b"");
        out.expect_code(3);
        assert!(
            out.stderr.contains("does not accept MQTT 5") && out.stderr.contains("try -V 3"),
            "{name}: {}",
            out.stderr
        );
    }
}
