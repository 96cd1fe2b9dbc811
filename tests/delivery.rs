//! Delivery before exit: chat-pub exits 0 only when every message reached the broker,
//! many lines arrive complete and in order at every QoS and in both protocol versions,
//! and lines that cannot be sent are reported by number while the rest still arrive.

use crate::common::*;

/// `seq=00000001 …` lines, `n` of them, `len` bytes each (without the newline).
fn numbered(n: usize, len: usize) -> (String, Vec<String>) {
    let lines: Vec<String> = (1..=n)
        .map(|i| {
            let head = format!("seq={i:08} ");
            let pad = "x".repeat(len.saturating_sub(head.len()));
            head + &pad
        })
        .collect();
    (lines.join("\n") + "\n", lines)
}

/// Publishes `n` numbered lines with `pub_args` and checks that a subscriber with
/// `sub_args` printed exactly those lines, in order.
fn bulk(broker: &Broker, n: usize, pub_args: &[&str], sub_args: &[&str]) {
    let topic = unique_topic("bulk");
    let count = n.to_string();
    let mut args = vec!["-F", "{text}", "-n", &count];
    args.extend_from_slice(sub_args);
    args.push(&topic);
    let sub = Proc::subscriber(broker, &args);
    let (input, lines) = numbered(n, 100);
    let mut args = pub_args.to_vec();
    args.push(&topic);
    let publisher = run(&mut chat_pub(broker, &args), input.as_bytes());
    publisher.expect_code(0);
    assert!(
        publisher.stderr.is_empty(),
        "chat-pub stderr: {}",
        publisher.stderr
    );
    let got = sub.finish();
    got.expect_code(0);
    let got = got.lines();
    assert_eq!(got.len(), n, "lost or extra lines");
    if let Some(i) = (0..n).find(|&i| got[i] != lines[i]) {
        panic!(
            "line {} differs: got {:?}, expected {:?}",
            i + 1,
            got[i],
            lines[i]
        );
    }
}

each_broker! {
    fn ten_thousand_lines_at_qos1(broker) {
        bulk(broker, 10_000, &["-q", "1"], &["-q", "1"]);
    }
}

each_broker! {
    fn ten_thousand_lines_at_qos1_mqtt311(broker) {
        bulk(
            broker,
            10_000,
            &["-q", "1", "-V", "3"],
            &["-q", "1", "-V", "3"],
        );
    }
}

each_broker! {
    /// mosquitto's default max_inflight_messages (20) silently drops incoming QoS 2 from a
    /// 3.1.1 client that has more in flight: the broker here keeps its defaults.
    fn two_thousand_lines_at_qos2_with_default_broker_inflight(broker) {
        bulk(
            broker,
            2_000,
            &["-q", "2", "-V", "3"],
            &["-q", "2", "-V", "3"],
        );
        bulk(broker, 2_000, &["-q", "2"], &["-q", "2"]);
    }
}

each_broker! {
    fn ten_thousand_lines_at_qos0(broker) {
        bulk(broker, 10_000, &["-q", "0"], &["-q", "0"]);
    }
}

each_broker! {
    /// Under a stream of messages chat-sub lets the kernel wake it only for several
    /// kilobytes at a time (src/mqtt/coalesce/). The end of a burst, and a lone line after
    /// it, must still be printed with no further traffic to push them out — also when the
    /// broker sends only a small window before it wants acknowledgements (QoS 1 to an
    /// MQTT 3.1.1 subscriber: 20 at a time at mosquitto, about 5 KB with these 100-byte
    /// lines, below the first mark). This checks that nothing is stranded; that the mark
    /// is raised and lowered at all is checked by the unit tests of src/mqtt/coalesce/ (1,000-byte
    /// lines make it likely here: 8 KiB within a millisecond is 8 lines).
    fn the_end_of_a_burst_and_a_lone_line_after_it_are_printed(broker) {
        for (qos, version, len) in [("0", "5", 1000), ("1", "3", 100), ("1", "5", 1000)] {
            let topic = unique_topic("burst");
            let sub = Proc::subscriber(
                broker,
                &["-F", "{text}", "-q", qos, "-V", version, &topic],
            );
            let (input, lines) = numbered(20_000, len);
            run(&mut chat_pub(broker, &["-q", qos, &topic]), input.as_bytes()).expect_code(0);
            assert_eq!(sub.wait_lines(20_000), lines, "QoS {qos}, MQTT {version}");
            run(&mut chat_pub(broker, &["-q", qos, &topic]), b"lone\n").expect_code(0);
            let got = sub.wait_lines(20_001);
            assert_eq!(got[20_000..], ["lone"], "QoS {qos}, MQTT {version}");
        }
    }
}

each_broker! {
    /// mosquitto_pub -l stops after 65,535 lines at QoS 1 and exits 0; chat-pub must not.
    fn a_hundred_thousand_lines_at_qos1(broker) {
        bulk(broker, 100_000, &["-q", "1"], &["-q", "1"]);
    }
}

each_broker! {
fn a_300_kb_line_arrives_whole(broker) {
    for version in ["5", "3"] {
        let topic = unique_topic("big");
        let sub = Proc::subscriber(broker, &["-V", version, "--raw", "-n", "2", &topic]);
        let big: String = (0..300_000)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect();
        let input = format!("{big}\nafter\n");
        run(
            &mut chat_pub(broker, &["-V", version, "--raw", &topic]),
            input.as_bytes(),
        )
        .expect_code(0);
        let out = sub.finish();
        out.expect_code(0);
        assert!(
            out.stdout == input.as_bytes(),
            "MQTT {version}: payload differs"
        );
    }
}
}

/// Under MQTT 5 the broker announces its maximum packet size; a bigger line is reported
/// by number and skipped, the others are delivered, and the exit status says so.
#[test]
fn a_line_larger_than_the_broker_accepts_is_reported_and_skipped() {
    if have_mosquitto() {
        // mosquitto announces max_packet_size in its MQTT 5 CONNACK.
        let broker = Broker::mosquitto_with("max_packet_size 100000");
        oversize_line_is_skipped(&broker, 200_000);
    }
    if available(Kind::Embedded) {
        // chat-broker announces its 16 MiB.
        oversize_line_is_skipped(&Broker::embedded(), 17 << 20);
    }
}

fn oversize_line_is_skipped(broker: &Broker, size: usize) {
    let topic = unique_topic("oversize");
    let sub = Proc::subscriber(broker, &["-F", "{text}", "-n", "2", &topic]);
    let input = format!("first\n{}\nthird\n", "y".repeat(size));
    let args = ["--max-size", "64M", &topic];
    let out = run(&mut chat_pub(broker, &args), input.as_bytes());
    out.expect_code(1);
    assert!(
        out.stderr.contains("line 2:") && out.stderr.contains("broker accepts"),
        "stderr: {}",
        out.stderr
    );
    assert_eq!(
        out.stderr.lines().count(),
        1,
        "one error line: {}",
        out.stderr
    );
    assert_eq!(sub.finish().expect_code(0).lines(), ["first", "third"]);
}

each_broker! {
fn a_line_longer_than_max_size_is_reported_and_skipped(broker) {
    for version in ["5", "3"] {
        let topic = unique_topic("maxsize");
        let sub = Proc::subscriber(broker, &["-F", "{text}", "-n", "2", &topic]);
        let input = format!("short\n{}\nlast", "z".repeat(5000));
        let args = ["-V", version, "--raw", "--max-size", "1000", &topic];
        let out = run(&mut chat_pub(broker, &args), input.as_bytes());
        out.expect_code(1);
        assert!(out.stderr.contains("line 2:"), "stderr: {}", out.stderr);
        assert!(out.stderr.contains("1000 bytes"), "stderr: {}", out.stderr);
        assert_eq!(sub.finish().expect_code(0).lines(), ["short", "last"]);
    }
}
}

each_broker! {
    fn invalid_utf8_lines_are_reported_and_the_rest_delivered(broker) {
        let topic = unique_topic("utf8");
        let sub = Proc::subscriber(broker, &["-F", "{text}", "-n", "3", &topic]);
        let out = run(
            &mut chat_pub(broker, &[&topic]),
            b"one\nbad \xff\xfe here\ntwo\n\xc3\nthree\n",
        );
        out.expect_code(1);
        let errors: Vec<&str> = out.stderr.lines().collect();
        assert_eq!(errors.len(), 2, "stderr: {}", out.stderr);
        assert!(
            errors[0].starts_with("chat-pub: line 2:") && errors[0].contains("UTF-8"),
            "{}",
            errors[0]
        );
        assert!(errors[1].starts_with("chat-pub: line 4:"), "{}", errors[1]);
        assert_eq!(sub.finish().expect_code(0).lines(), ["one", "two", "three"]);
    }
}

each_broker! {
    fn invalid_json_lines_are_reported_and_the_rest_delivered(broker) {
        let topic = unique_topic("json");
        let sub = Proc::subscriber(broker, &["-F", "{text}", "-n", "2", &topic]);
        let input = "{\"text\":\"ok\"}\n{not json\n{\"no_text\":1}\n[1,2]\n{\"text\":\"ok2\",\"topic\":\"a/#\"}\n{\"text\":\"ok3\"}\n";
        let out = run(
            &mut chat_pub(broker, &["--json", &topic]),
            input.as_bytes(),
        );
        out.expect_code(1);
        let errors: Vec<&str> = out.stderr.lines().collect();
        assert_eq!(errors.len(), 4, "stderr: {}", out.stderr);
        for (e, n) in errors.iter().zip([2, 3, 4, 5]) {
            assert!(e.starts_with(&format!("chat-pub: line {n}:")), "{e}");
        }
        assert_eq!(sub.finish().expect_code(0).lines(), ["ok", "ok3"]);
    }
}

each_broker! {
    /// --json lines choose their own topic, QoS and retain flag.
    fn json_input_overrides_topic_qos_and_retain(broker) {
        let base = unique_topic("jsonover");
        let filter = format!("{base}/#");
        let sub = Proc::subscriber(
            broker,
            &["-q", "2", "-F", "{topic} {qos} {text}", "-n", "2", &filter],
        );
        let input = format!(
            "{{\"topic\":\"{base}/a\",\"qos\":0,\"text\":\"zero\"}}\n{{\"topic\":\"{base}/b\",\"qos\":2,\"text\":\"two\"}}\n"
        );
        run(&mut chat_pub(broker, &["--json"]), input.as_bytes()).expect_code(0);
        assert_eq!(
            sub.finish().expect_code(0).lines(),
            [
                format!("{base}/a {} zero", broker.delivered_qos(0, 2)),
                format!("{base}/b 2 two")
            ]
        );
        // A retained message from --json is there for a later subscriber.
        let input = format!("{{\"topic\":\"{base}/r\",\"retain\":true,\"text\":\"kept\"}}\n");
        run(&mut chat_pub(broker, &["--json"]), input.as_bytes()).expect_code(0);
        let late = run(
            &mut chat_sub(broker, &["-F", "{retain} {text}", "-n", "1", &filter]),
            b"",
        );
        assert_eq!(late.expect_code(0).lines(), ["true kept"]);
    }
}

each_broker! {
    /// MQTT 3.1.1 cannot tell the broker chat-sub's --max-size: a bigger message is skipped
    /// with a warning (and acknowledged), and the messages after it still arrive.
    fn chat_sub_skips_messages_over_its_max_size_under_mqtt311(broker) {
        let topic = unique_topic("submax");
        let sub = Proc::subscriber(
            broker,
            &["-V", "3", "--max-size", "1000", "--raw", "-n", "2", &topic],
        );
        let input = format!("small\n{}\nafter\n", "b".repeat(50_000));
        run(&mut chat_pub(broker, &["--raw", &topic]), input.as_bytes()).expect_code(0);
        let out = sub.finish();
        assert_eq!(out.expect_code(0).stdout, b"small\nafter\n".to_vec());
        assert!(
            out.stderr.contains("skipped a message of 50") && out.stderr.contains(&topic),
            "{}",
            out.stderr
        );
    }
}

/// A broker that drops the connection instead of refusing a message (over its size limit,
/// under MQTT 3.1.1 or with the embedded broker) must not make chat-pub resend it forever:
/// after three lost connections in a row the message is reported and given up, and the
/// other lines still arrive.
fn poison_message_is_given_up(broker: &Broker, version: &str, size: usize) {
    let topic = unique_topic("poison");
    let sub = Proc::subscriber(broker, &["-F", "{text}", "-n", "2", &topic]);
    let input = format!("before\n{}\nafter\n", "p".repeat(size));
    let args = ["-V", version, "--raw", "--max-size", "64M", &topic];
    let out = run(&mut chat_pub(broker, &args), input.as_bytes());
    out.expect_code(1);
    assert!(
        out.stderr
            .contains("line 2: not sent: the broker closed the connection each of the 3 times")
            && out
                .stderr
                .contains("too large for the broker, at a QoS it does not support"),
        "{}",
        out.stderr
    );
    assert_eq!(sub.finish().expect_code(0).lines(), ["before", "after"]);
}

#[test]
fn a_message_that_makes_mosquitto_drop_the_connection_is_given_up() {
    if have_mosquitto() {
        let broker = Broker::mosquitto_with("max_packet_size 100000");
        poison_message_is_given_up(&broker, "3", 200_000);
    }
}

#[test]
fn a_message_over_the_embedded_brokers_limit_is_given_up() {
    if available(Kind::Embedded) {
        // chat-broker accepts messages up to 16 MiB and drops the connection beyond; it
        // announces the limit under MQTT 5 only, so a 3.1.1 client finds out this way.
        poison_message_is_given_up(&Broker::embedded(), "3", 17 << 20);
    }
}
