//! Sessions, wills and takeovers in the engine: packets in, actions out, time passed in.

use super::codec::{In, StoredWill};
use super::tests::*;
use super::{Action, Engine};
use bytes::Bytes;
use std::time::Duration;

pub(super) fn will(topic: &str, delay_secs: u32) -> Option<StoredWill> {
    Some(StoredWill {
        msg: msg(topic, "bye", 0, true),
        delay_secs,
    })
}

#[test]
fn a_persistent_session_keeps_messages_and_resends_what_was_unacknowledged() {
    let mut e = Engine::new();
    member(&mut e, 9, V5, "pub", &[]);
    e.handle(
        1,
        In::Connect(Box::new(hello(V311, "s", false, u32::MAX))),
        t0(),
    );
    subscribe(&mut e, 1, vec![sub("t", 1)], None);
    e.handle(9, publish(1, msg("t", "one", 1, false)), t0());
    e.lost(1, t0());
    e.handle(9, publish(2, msg("t", "two", 1, false)), t0());
    e.handle(9, publish(3, msg("t", "zero", 0, false)), t0());
    e.actions().for_each(drop);
    e.handle(
        2,
        In::Connect(Box::new(hello(V311, "s", false, u32::MAX))),
        t0(),
    );
    let got = sent(&mut e, 2, V311);
    assert_eq!(
        got[0],
        Got::ConnAck {
            present: true,
            code: 0
        }
    );
    assert!(
        matches!(&got[1], Got::Publish { payload, dup: true, pkid: 1, .. } if payload == "one")
    );
    assert!(
        matches!(&got[2], Got::Publish { payload, dup: false, pkid: 2, .. } if payload == "two")
    );
    assert_eq!(
        got.len(),
        3,
        "QoS 0 is not kept for an absent client: {got:?}"
    );
    // A clean session starts over.
    e.handle(3, In::Connect(Box::new(hello(V311, "s", true, 0))), t0());
    assert_eq!(
        sent(&mut e, 3, V311)[0],
        Got::ConnAck {
            present: false,
            code: 0
        }
    );
}

#[test]
fn a_will_is_sent_when_the_connection_is_lost_not_after_disconnect() {
    let mut e = Engine::new();
    member(&mut e, 1, V5, "w", &[("will/#", 0)]);
    for (conn, end) in [(2, "lost"), (3, "disconnect"), (4, "disconnect with will")] {
        let mut h = hello(V311, &format!("c{conn}"), true, 0);
        h.will = will(&format!("will/{conn}"), 0);
        e.handle(conn, In::Connect(Box::new(h)), t0());
        match end {
            "lost" => e.lost(conn, t0()),
            _ => e.handle(
                conn,
                In::Disconnect {
                    with_will: end.contains("will"),
                    session_expiry: None,
                },
                t0(),
            ),
        }
    }
    assert_eq!(text(&sent(&mut e, 1, V5)), ["bye", "bye"]);
    // A will with a delay waits for it, and a reconnect in time cancels it.
    for (conn, id) in [(5, "late"), (6, "back")] {
        let mut h = hello(V5, id, true, 60);
        h.will = will(&format!("will/{id}"), 10);
        e.handle(conn, In::Connect(Box::new(h)), t0());
        e.lost(conn, t0());
    }
    e.handle(7, In::Connect(Box::new(hello(V5, "back", false, 60))), t0());
    e.tick(t0() + Duration::from_secs(5));
    assert_eq!(text(&sent(&mut e, 1, V5)), Vec::<String>::new());
    e.tick(t0() + Duration::from_secs(11));
    let got = sent(&mut e, 1, V5);
    assert!(
        matches!(&got[..], [Got::Publish { topic, .. }] if topic == "will/late"),
        "{got:?}"
    );
}

#[test]
fn a_second_connection_takes_the_session_over() {
    let mut e = Engine::new();
    member(&mut e, 1, V5, "w", &[("will", 0)]);
    let mut h = hello(V5, "dup", false, 60);
    h.will = will("will", 0);
    e.handle(2, In::Connect(Box::new(h)), t0());
    subscribe(&mut e, 2, vec![sub("t", 1)], None);
    e.actions().for_each(drop);
    e.handle(3, In::Connect(Box::new(hello(V5, "dup", false, 60))), t0());
    let all: Vec<Action> = e.actions().collect();
    assert!(
        all.contains(&Action::Send(
            2,
            Bytes::from_static(&[0xE0, 2, 0x8E, 0]).into()
        )),
        "{all:?}"
    );
    assert!(all.contains(&Action::Close(2)), "{all:?}");
    let to_w = all.iter().any(|a| matches!(a, Action::Send(1, _)));
    assert!(to_w, "the old connection's will is sent: {all:?}");
    let ack = all.iter().find_map(|a| match a {
        Action::Send(3, b) => Some(read_back(b.clone(), V5)),
        _ => None,
    });
    assert_eq!(
        ack,
        Some(Got::ConnAck {
            present: true,
            code: 0
        })
    );
    // Packets still arriving from the old connection are ignored.
    e.handle(2, publish(0, msg("t", "late", 0, false)), t0());
    assert_eq!(e.actions().count(), 0);
}

#[test]
fn sessions_expire_and_ids_are_assigned() {
    let mut e = Engine::new();
    e.handle(1, In::Connect(Box::new(hello(V5, "s", true, 10))), t0());
    e.lost(1, t0());
    e.tick(t0() + Duration::from_secs(11));
    e.handle(2, In::Connect(Box::new(hello(V5, "s", false, 10))), t0());
    assert_eq!(
        sent(&mut e, 2, V5)[0],
        Got::ConnAck {
            present: false,
            code: 0
        }
    );
    // No client id: MQTT 5 gets one; 3.1.1 only with a clean session.
    e.handle(3, In::Connect(Box::new(hello(V5, "", false, 0))), t0());
    let all: Vec<Action> = e.actions().collect();
    let Action::Send(3, b) = &all[0] else {
        panic!()
    };
    assert!(
        b.to_bytes().windows(13).any(|w| w == b"chat-broker-1"),
        "{b:?}"
    );
    e.handle(4, In::Connect(Box::new(hello(V311, "", false, 0))), t0());
    assert_eq!(
        sent(&mut e, 4, V311),
        [
            Got::ConnAck {
                present: false,
                code: 2
            },
            Got::Other(0)
        ]
    );
    assert_eq!(e.clients(), 2);
}

#[test]
fn a_will_with_a_bad_topic_is_refused_and_a_clean_start_sends_a_waiting_will() {
    let mut e = Engine::new();
    for (conn, v, topic) in [(1, V5, "a/+"), (2, V311, "#"), (3, V5, "")] {
        let mut h = hello(v, &format!("c{conn}"), true, 0);
        h.will = will(topic, 0);
        e.handle(conn, In::Connect(Box::new(h)), t0());
        let got = sent(&mut e, conn, v);
        let want = match v {
            V5 => vec![
                Got::ConnAck {
                    present: false,
                    code: 0x90,
                },
                Got::Other(0),
            ],
            // MQTT 3.1.1 has no return code for it: the connection just ends.
            _ => vec![Got::Other(0)],
        };
        assert_eq!(got, want, "will topic {topic:?}");
    }
    assert_eq!(e.clients(), 0);
    // A will waiting for its delay is sent when a clean start ends the session.
    member(&mut e, 9, V5, "w", &[("will/#", 0)]);
    let mut h = hello(V5, "late", false, 60);
    h.will = will("will/late", 30);
    e.handle(4, In::Connect(Box::new(h)), t0());
    e.lost(4, t0());
    e.handle(5, In::Connect(Box::new(hello(V5, "late", true, 0))), t0());
    assert_eq!(text(&sent(&mut e, 9, V5)), ["bye"]);
    e.tick(t0() + Duration::from_secs(60));
    assert_eq!(text(&sent(&mut e, 9, V5)), Vec::<String>::new());
}

/// MQTT 5 message expiry: a queued message goes out with what is left of its interval,
/// and not at all once it ended; a retained one stops being handed out then too.
#[test]
fn an_expired_message_is_not_delivered() {
    use super::codec::Props;
    use rumqttc::v5::mqttbytes::v5;
    let mut e = Engine::new();
    member(&mut e, 9, V5, "pub", &[]);
    let expiring = |payload: &str, secs: u32| {
        let mut m = msg("t", payload, 1, true);
        m.props = Some(Box::new(Props {
            message_expiry_interval: Some(secs),
            ..Props::default()
        }));
        publish(1, m)
    };
    e.handle(1, In::Connect(Box::new(hello(V5, "s", false, 3600))), t0());
    subscribe(&mut e, 1, vec![sub("t", 1)], None);
    e.lost(1, t0());
    e.handle(9, expiring("short", 10), t0());
    e.handle(9, expiring("long", 100), t0());
    e.actions().for_each(drop);
    let later = t0() + Duration::from_secs(40);
    e.handle(2, In::Connect(Box::new(hello(V5, "s", false, 3600))), later);
    let all: Vec<Action> = e.actions().collect();
    let publishes: Vec<v5::Publish> = (all.into_iter())
        .filter_map(|a| match a {
            Action::Send(2, f) if f.head[0] >> 4 == 3 => {
                let mut b = bytes::BytesMut::from(&f.to_bytes()[..]);
                match v5::Packet::read(&mut b, None) {
                    Ok(v5::Packet::Publish(p)) => Some(p),
                    other => panic!("{other:?}"),
                }
            }
            _ => None,
        })
        .collect();
    assert_eq!(publishes.len(), 1, "{publishes:?}");
    assert_eq!(&publishes[0].payload[..], b"long");
    let left = publishes[0]
        .properties
        .as_ref()
        .and_then(|p| p.message_expiry_interval);
    assert_eq!(left, Some(60));
    // The retained "long" is handed to a new subscriber until its interval ends.
    member(&mut e, 3, V5, "early", &[]);
    subscribe(&mut e, 3, vec![sub("t", 0)], None);
    assert_eq!(text(&sent(&mut e, 3, V5)), ["long"]);
    let end = t0() + Duration::from_secs(100);
    e.handle(4, In::Connect(Box::new(hello(V5, "late", true, 0))), end);
    e.handle(
        4,
        In::Subscribe {
            pkid: 1,
            filters: vec![sub("t", 0)],
            id: None,
        },
        end,
    );
    assert_eq!(text(&sent(&mut e, 4, V5)), Vec::<String>::new());
}
