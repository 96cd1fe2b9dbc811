//! chat-pub and chat-sub against the brokers of other projects, when installed (see
//! tests/README.md; tests/common/foreign.rs starts them): aedes, amqtt and RabbitMQ's MQTT
//! plugin. None of them speaks MQTT 5, so every test here also checks that the default
//! `-V auto` falls back to 3.1.1. A broker that is not installed is skipped, even in CI.
//!
//! What they do differently, as measured (aedes 1.2.0, amqtt 0.12.1, RabbitMQ 3.10.8):
//! - to an MQTT 5 CONNECT, aedes and amqtt answer a 3.1.1 CONNACK with return code 1
//!   and close; RabbitMQ closes without a word. amqtt does so only for a CONNECT without
//!   properties: it parses the CONNECT as 3.1.1 first, so the properties of the tools'
//!   CONNECT (Maximum Packet Size) are read as a client id length of 1,319 bytes, and it
//!   waits for bytes that never come — no answer, no close;
//! - RabbitMQ does not deliver retained messages to wildcard subscriptions, which is
//!   how `chat-sub --who` reads presence: --who is only checked on aedes and amqtt;
//! - amqtt hands a copy of a retained message to the next client that connects after a
//!   subscriber that received it disconnected cleanly (even before that client
//!   subscribes to anything): each test runs its retained steps last, or on a topic
//!   where a stray copy is harmless;
//! - amqtt keeps no messages for an offline session of an anonymous client, so nothing
//!   here relies on sessions.

use crate::common::*;

/// Defines a test that runs once per optional broker, as `NAME::aedes`, `NAME::amqtt` and
/// `NAME::rabbitmq`, each skipped when that broker is not installed.
macro_rules! each_foreign {
    ($(#[$meta:meta])* fn $name:ident($broker:ident) $body:block $($rest:tt)*) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            fn body($broker: &ForeignBroker) $body

            #[test]
            fn aedes() {
                if let Some(b) = crate::common::aedes() {
                    body(&b);
                }
            }

            #[test]
            fn amqtt() {
                if let Some(b) = crate::common::amqtt() {
                    body(&b);
                }
            }

            #[test]
            fn rabbitmq() {
                if let Some(b) = crate::common::rabbitmq() {
                    body(&b);
                }
            }
        }
        each_foreign! { $($rest)* }
    };
    () => {};
}

/// Whether the broker delivers retained messages to wildcard subscriptions.
fn retains_for_wildcards(broker: &ForeignBroker) -> bool {
    !broker.name().starts_with("RabbitMQ")
}

each_foreign! {
    /// 1,000 lines at QoS 1, then 1,000 at QoS 0, arrive in order, none lost or repeated;
    /// both tools fell back to MQTT 3.1.1 by themselves and said so at -v.
    fn lines_in_order_at_qos_1_and_0(broker) {
        for qos in ["1", "0"] {
            let topic = unique_topic(&format!("foreign-qos{qos}"));
            let sub = Proc::subscriber_at(
                &[broker.url()],
                &["-q", qos, "-F", "{text}", "-n", "1000", &topic],
            );
            let (input, want) = numbered(1, 1000);
            let out = run(
                &mut chat_pub_at(&[broker.url()], &["-v", "-q", qos, &topic]),
                input.as_bytes(),
            );
            out.expect_code(0);
            let got = sub.finish();
            assert_exactly_once_in_order(&got.expect_code(0).lines(), &want);
            for (tool, stderr) in [("chat-pub", &out.stderr), ("chat-sub", &got.stderr)] {
                assert!(
                    stderr.contains("MQTT 3.1.1"),
                    "{}: {tool} -v: expected a line about MQTT 3.1.1, got:\n{stderr}",
                    broker.name()
                );
            }
        }
    }

    /// A retained message reaches a subscriber that starts later.
    fn a_retained_message_reaches_a_later_subscriber(broker) {
        let topic = unique_topic("foreign-retained");
        run(
            &mut chat_pub_at(&[broker.url()], &["-q", "1", "-r", "-m", "kept", &topic]),
            b"",
        )
        .expect_code(0);
        eventually_prints(
            || chat_sub_at(&[broker.url()], &["-F", "{text}", "-n", "1", "-W", "3", &topic]),
            "kept\n",
        );
    }

    /// bob's chat-pub, reading stdin, shows up as a join in a chat-sub that follows the
    /// room, and as a leave once his stdin closes; where retained messages reach wildcard
    /// subscriptions, `chat-sub --who` lists him while he is there.
    fn presence_join_and_leave(broker) {
        let room = unique_topic("foreign-presence");
        let mut cmd = chat_sub_at(&[broker.url()], &["--json", "-vv", &room]);
        let events = Proc::spawn(&mut cmd);
        events.wait_stderr("subscribed to");
        events.wait_stderr("presence: following");
        let mut bob = Proc::spawn(tool("chat-pub").args(["-b", &broker.url(), "--nick", "bob", &room]));
        let first = json_lines(&events.wait_lines(1));
        assert_eq!(
            (first[0]["event"].as_str(), first[0]["from"].as_str()),
            (Some("join"), Some("bob")),
            "{}: expected bob's join, got {}",
            broker.name(),
            first[0]
        );
        if retains_for_wildcards(broker) {
            eventually_prints(|| chat_sub_at(&[broker.url()], &["--who", &room]), "bob\n");
        }
        bob.write(b"hello\n");
        bob.finish().expect_code(0);
        let all = json_lines(&events.wait_lines(3));
        let shown: Vec<(Option<&str>, Option<&str>, Option<&str>)> = all
            .iter()
            .map(|v| (v["event"].as_str(), v["from"].as_str(), v["text"].as_str()))
            .collect();
        assert_eq!(
            shown,
            [
                (Some("join"), Some("bob"), None),
                (None, Some("bob"), Some("hello")),
                (Some("leave"), Some("bob"), None),
            ],
            "{}: expected join, message, leave",
            broker.name()
        );
        if retains_for_wildcards(broker) {
            eventually_prints(|| chat_sub_at(&[broker.url()], &["--who", &room]), "");
        }
    }
}
