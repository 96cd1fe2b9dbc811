//! The engine driven by packets in and actions out: no sockets, time passed in.

use super::codec::{Hello, Message, SubReq};
use super::*;
use bytes::BytesMut;
use rumqttc::mqttbytes::v4;
use rumqttc::v5::mqttbytes::v5;

pub(super) fn t0() -> Instant {
    Instant::now()
}

pub(super) fn hello(version: Version, id: &str, clean: bool, expiry: u32) -> Hello {
    Hello {
        version,
        client_id: id.into(),
        clean,
        keep_alive: 30,
        session_expiry: expiry,
        receive_max: u16::MAX,
        max_packet: None,
        will: None,
        auth_method: false,
        login: None,
        user: None,
        refused: None,
        by_password: false,
        judged: true,
    }
}

pub(super) fn msg(topic: &str, payload: &str, qos: u8, retain: bool) -> Message {
    Message {
        topic: topic.into(),
        payload: Bytes::copy_from_slice(payload.as_bytes()),
        qos,
        retain,
        props: None,
        expires: None,
        id: 0,
    }
}

pub(super) fn publish(pkid: u16, m: Message) -> In {
    In::Publish {
        pkid,
        topic: m.topic.clone(),
        alias: None,
        msg: m,
    }
}

pub(super) fn sub(filter: &str, qos: u8) -> SubReq {
    SubReq {
        filter: filter.into(),
        qos,
        no_local: false,
        keep_retain: false,
        retain_handling: 0,
    }
}

pub(super) fn subscribe(e: &mut Engine, conn: ConnId, reqs: Vec<SubReq>, id: Option<usize>) {
    e.handle(
        conn,
        In::Subscribe {
            pkid: 1,
            filters: reqs,
            id,
        },
        t0(),
    );
}

/// A packet the engine sent, read back as MQTT 5 (3.1.1 packets read the same way
/// where it matters here: type, flags, ids, topic, payload).
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Got {
    ConnAck {
        present: bool,
        code: u8,
    },
    Publish {
        topic: String,
        payload: String,
        qos: u8,
        retain: bool,
        dup: bool,
        pkid: u16,
        ids: Vec<usize>,
    },
    Other(u8),
}

/// Everything queued so far for `conn`, read back; `Close` shows as `Other(0)`.
pub(super) fn sent(e: &mut Engine, conn: ConnId, v: Version) -> Vec<Got> {
    let actions: Vec<Action> = e.actions().collect();
    let mut got = Vec::new();
    for a in actions {
        match a {
            Action::Send(c, b) if c == conn => got.push(read_back(b, v)),
            Action::Close(c) if c == conn => got.push(Got::Other(0)),
            _ => {}
        }
    }
    got
}

pub(super) fn read_back(f: Frame, v: Version) -> Got {
    let b = f.to_bytes();
    let mut buf = BytesMut::from(&b[..]);
    match (b[0] >> 4, v) {
        (2, Version::V311) => {
            let Ok(v4::Packet::ConnAck(a)) = v4::Packet::read(&mut buf, 1 << 20) else {
                panic!()
            };
            Got::ConnAck {
                present: a.session_present,
                code: a.code as u8,
            }
        }
        (2, Version::V5) => Got::ConnAck {
            present: b[2] == 1,
            code: b[3],
        },
        (3, Version::V311) => {
            let Ok(v4::Packet::Publish(p)) = v4::Packet::read(&mut buf, 1 << 20) else {
                panic!()
            };
            Got::Publish {
                topic: p.topic,
                payload: String::from_utf8(p.payload.to_vec()).unwrap(),
                qos: p.qos as u8,
                retain: p.retain,
                dup: p.dup,
                pkid: p.pkid,
                ids: vec![],
            }
        }
        (3, Version::V5) => {
            let Ok(v5::Packet::Publish(p)) = v5::Packet::read(&mut buf, None) else {
                panic!()
            };
            Got::Publish {
                topic: String::from_utf8(p.topic.to_vec()).unwrap(),
                payload: String::from_utf8(p.payload.to_vec()).unwrap(),
                qos: p.qos as u8,
                retain: p.retain,
                dup: p.dup,
                pkid: p.pkid,
                ids: p
                    .properties
                    .map(|p| p.subscription_identifiers)
                    .unwrap_or_default(),
            }
        }
        (kind, _) => Got::Other(kind),
    }
}

pub(super) fn text(got: &[Got]) -> Vec<String> {
    got.iter()
        .filter_map(|g| match g {
            Got::Publish { payload, .. } => Some(payload.clone()),
            _ => None,
        })
        .collect()
}

pub(super) const V311: Version = Version::V311;
pub(super) const V5: Version = Version::V5;

/// A connected client with subscriptions, its actions so far cleared.
pub(super) fn member(e: &mut Engine, conn: ConnId, v: Version, id: &str, filters: &[(&str, u8)]) {
    e.handle(conn, In::Connect(Box::new(hello(v, id, true, 0))), t0());
    let reqs = filters.iter().map(|(f, q)| sub(f, *q)).collect();
    subscribe(e, conn, reqs, None);
    e.actions().for_each(drop);
}

#[test]
fn a_message_reaches_both_versions_at_the_lower_qos() {
    let mut e = Engine::new();
    member(&mut e, 1, V311, "a", &[("room", 0)]);
    member(&mut e, 2, V5, "b", &[("room", 2)]);
    member(&mut e, 3, V5, "pub", &[]);
    e.handle(3, publish(7, msg("room", "hi", 1, false)), t0());
    let all: Vec<Action> = e.actions().collect();
    let to = |c| {
        all.iter()
            .filter(move |a| matches!(a, Action::Send(x, _) if *x == c))
    };
    let Some(Action::Send(_, b)) = to(1).next() else {
        panic!("{all:?}")
    };
    assert_eq!(
        read_back(b.clone(), V311),
        Got::Publish {
            topic: "room".into(),
            payload: "hi".into(),
            qos: 0,
            retain: false,
            dup: false,
            pkid: 0,
            ids: vec![],
        }
    );
    let Some(Action::Send(_, b)) = to(2).next() else {
        panic!("{all:?}")
    };
    assert!(matches!(
        read_back(b.clone(), V5),
        Got::Publish {
            qos: 1,
            pkid: 1,
            ..
        }
    ));
    let Some(Action::Send(_, b)) = to(3).next() else {
        panic!("{all:?}")
    };
    assert_eq!(b.to_bytes()[..], [0x40, 2, 0, 7], "PUBACK");
}

#[test]
fn retained_messages_come_after_the_suback_and_an_empty_one_clears() {
    let mut e = Engine::new();
    member(&mut e, 1, V5, "pub", &[]);
    e.handle(1, publish(1, msg("a/b", "kept", 1, true)), t0());
    e.handle(1, publish(0, msg("a/c", "gone", 0, true)), t0());
    e.handle(1, publish(0, msg("a/c", "", 0, true)), t0());
    e.handle(2, In::Connect(Box::new(hello(V311, "s", true, 0))), t0());
    subscribe(&mut e, 2, vec![sub("a/#", 0)], None);
    let got = sent(&mut e, 2, V311);
    assert_eq!(got[1], Got::Other(9), "SUBACK first: {got:?}");
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(matches!(&got[2], Got::Publish { payload, retain: true, .. } if payload == "kept"));
    // Live, the retain flag is cleared unless the subscriber asked to keep it.
    let mut keep = sub("x", 0);
    keep.keep_retain = true;
    subscribe(&mut e, 2, vec![sub("a/b", 0)], None);
    e.handle(3, In::Connect(Box::new(hello(V5, "k", true, 0))), t0());
    subscribe(&mut e, 3, vec![keep], None);
    e.actions().for_each(drop);
    e.handle(1, publish(0, msg("a/b", "new", 0, true)), t0());
    e.handle(1, publish(0, msg("x", "new", 0, true)), t0());
    let all: Vec<Action> = e.actions().collect();
    for a in all {
        if let Action::Send(c @ (2 | 3), b) = a {
            let v = if c == 2 { V311 } else { V5 };
            let Got::Publish { retain, .. } = read_back(b, v) else {
                continue;
            };
            assert_eq!(retain, c == 3, "connection {c}");
        }
    }
}

#[test]
fn the_window_is_the_clients_receive_maximum() {
    let mut e = Engine::new();
    member(&mut e, 9, V5, "pub", &[]);
    let mut h = hello(V5, "s", true, 0);
    h.receive_max = 2;
    e.handle(1, In::Connect(Box::new(h)), t0());
    subscribe(&mut e, 1, vec![sub("t", 1)], None);
    e.actions().for_each(drop);
    for (i, p) in ["a", "b", "c"].iter().enumerate() {
        e.handle(9, publish(i as u16 + 1, msg("t", p, 1, false)), t0());
    }
    assert_eq!(text(&sent(&mut e, 1, V5)), ["a", "b"]);
    e.handle(1, In::PubAck(1), t0());
    assert_eq!(text(&sent(&mut e, 1, V5)), ["c"]);
}

#[test]
fn no_local_qos_2_once_aliases_and_merged_subscriptions() {
    let mut e = Engine::new();
    e.handle(1, In::Connect(Box::new(hello(V5, "me", true, 0))), t0());
    let mut own = sub("t/a", 0);
    own.no_local = true;
    subscribe(&mut e, 1, vec![own], None);
    subscribe(&mut e, 1, vec![sub("t/+", 1)], Some(5));
    subscribe(&mut e, 1, vec![sub("t/#", 2)], Some(6));
    e.actions().for_each(drop);
    e.handle(2, In::Connect(Box::new(hello(V5, "other", true, 0))), t0());
    // An alias is set up with a topic, then used alone.
    let aliased = |topic: &str| In::Publish {
        pkid: 1,
        topic: topic.into(),
        alias: Some(3),
        msg: msg(topic, "x", 2, false),
    };
    e.handle(2, aliased("t/a"), t0());
    e.handle(2, aliased(""), t0());
    let got = sent(&mut e, 1, V5);
    assert_eq!(got.len(), 1, "a QoS 2 duplicate is delivered once: {got:?}");
    let Got::Publish {
        topic,
        qos,
        mut ids,
        ..
    } = got[0].clone()
    else {
        panic!()
    };
    ids.sort();
    assert_eq!((topic.as_str(), qos, ids), ("t/a", 2, vec![5, 6]));
    // Its own message reaches it through t/+ and t/#, not t/a (no-local).
    e.handle(1, publish(0, msg("t/b", "own", 0, false)), t0());
    e.handle(1, publish(0, msg("t/a", "own", 0, false)), t0());
    assert_eq!(text(&sent(&mut e, 1, V5)), ["own", "own"]);
    // An unknown alias is a protocol error.
    e.handle(
        2,
        In::Publish {
            pkid: 0,
            topic: String::new(),
            alias: Some(9),
            msg: msg("", "x", 0, false),
        },
        t0(),
    );
    assert!(sent(&mut e, 2, V5).contains(&Got::Other(0)));
}

#[test]
fn bad_topics_and_filters_are_refused() {
    let mut e = Engine::new();
    e.handle(1, In::Connect(Box::new(hello(V311, "c", true, 0))), t0());
    subscribe(
        &mut e,
        1,
        vec![sub("a/#/b", 0), sub("ok/+", 1), sub("$share/g", 0)],
        None,
    );
    let all: Vec<Action> = e.actions().collect();
    assert_eq!(
        all[1],
        Action::Send(
            1,
            Bytes::from_static(&[0x90, 5, 0, 1, 0x80, 1, 0x80]).into()
        )
    );
    e.handle(1, publish(0, msg("a/+", "x", 0, false)), t0());
    assert_eq!(e.actions().collect::<Vec<_>>(), [Action::Close(1)]);
}

#[test]
fn a_session_holds_at_most_ten_thousand_filters() {
    let mut e = Engine::new();
    e.handle(1, In::Connect(Box::new(hello(V5, "many", true, 0))), t0());
    let reqs = (0..route::MAX_FILTERS)
        .map(|i| sub(&format!("t/{i}"), 0))
        .collect();
    subscribe(&mut e, 1, reqs, None);
    e.actions().for_each(drop);
    // One more is refused; one it has already may be subscribed to again.
    subscribe(&mut e, 1, vec![sub("t/new", 0), sub("t/7", 1)], None);
    let all: Vec<Action> = e.actions().collect();
    let suback = Bytes::from_static(&[0x90, 5, 0, 1, 0, 0x97, 1]);
    assert_eq!(all, [Action::Send(1, suback.into())]);
}

#[test]
fn shutdown_tells_mqtt_5_clients_closes_everyone_and_publishes_the_wills() {
    let mut e = Engine::new();
    member(&mut e, 1, V5, "a", &[("room", 1)]);
    let mut with_will = hello(V311, "b", true, 0);
    with_will.will = Some(StoredWill {
        msg: msg("room/presence/b", "offline", 1, true),
        delay_secs: 0,
    });
    e.handle(2, In::Connect(Box::new(with_will)), t0());
    e.actions().for_each(drop);
    e.shutdown(t0());
    let all: Vec<Action> = e.actions().collect();
    let Some(Action::Send(1, disconnect)) = all.first() else {
        panic!("{all:?}")
    };
    let bytes = disconnect.to_bytes();
    assert_eq!(
        (bytes[0], bytes[2]),
        (0xE0, 0x8B),
        "DISCONNECT 0x8B: {bytes:?}"
    );
    assert!(
        all.contains(&Action::Close(1)) && all.contains(&Action::Close(2)),
        "{all:?}"
    );
    // MQTT 3.1.1 has no DISCONNECT from the server: only the close.
    assert!(
        !all.iter().any(|a| matches!(a, Action::Send(2, _))),
        "{all:?}"
    );
    assert_eq!(e.clients(), 0);
    // The will went to the retained store, as when the server closes any connection.
    member(&mut e, 3, V5, "c", &[]);
    subscribe(&mut e, 3, vec![sub("room/presence/#", 1)], None);
    let got = sent(&mut e, 3, V5);
    assert!(
        got.iter().any(
            |g| matches!(g, Got::Publish { topic, retain: true, .. } if topic == "room/presence/b")
        ),
        "{got:?}"
    );
}

/// Messages each member of `conns` got, by payload.
fn texts_of(all: &[Action], conn: ConnId, v: Version) -> Vec<String> {
    let got: Vec<Got> = (all.iter())
        .filter_map(|a| match a {
            Action::Send(c, b) if *c == conn => Some(read_back(b.clone(), v)),
            _ => None,
        })
        .collect();
    text(&got)
}

#[test]
fn a_shared_subscription_gives_each_message_to_one_member_in_turn() {
    let mut e = Engine::new();
    member(&mut e, 1, V5, "w1", &[("$share/workers/jobs", 1)]);
    member(&mut e, 2, V311, "w2", &[("$share/workers/jobs", 1)]);
    member(&mut e, 3, V5, "all", &[("jobs", 1), ("$share/other/#", 0)]);
    member(&mut e, 4, V5, "boss", &[]);
    for i in 0..4 {
        e.handle(
            4,
            publish(10 + i, msg("jobs", &format!("job {i}"), 1, false)),
            t0(),
        );
    }
    let all: Vec<Action> = e.actions().collect();
    assert_eq!(texts_of(&all, 1, V5), ["job 0", "job 2"]);
    assert_eq!(texts_of(&all, 2, V311), ["job 1", "job 3"]);
    // A plain subscription and another group get every one, each its own delivery.
    assert_eq!(
        texts_of(&all, 3, V5),
        [
            "job 0", "job 0", "job 1", "job 1", "job 2", "job 2", "job 3", "job 3"
        ]
    );
}

#[test]
fn a_member_that_goes_away_leaves_its_unacknowledged_messages_to_the_others() {
    let mut e = Engine::new();
    member(&mut e, 1, V5, "w1", &[("$share/g/jobs", 1)]);
    member(&mut e, 2, V5, "w2", &[("$share/g/jobs", 1)]);
    member(&mut e, 3, V5, "boss", &[]);
    for i in 0..4 {
        e.handle(
            3,
            publish(10 + i, msg("jobs", &format!("job {i}"), 1, false)),
            t0(),
        );
    }
    let all: Vec<Action> = e.actions().collect();
    assert_eq!(texts_of(&all, 1, V5), ["job 0", "job 2"]);
    // w1 acknowledges job 0 only, then its connection drops.
    let Some(Action::Send(_, first)) = all.iter().find(|a| matches!(a, Action::Send(1, _))) else {
        panic!("{all:?}")
    };
    let Got::Publish { pkid, .. } = read_back(first.clone(), V5) else {
        panic!()
    };
    e.handle(1, In::PubAck(pkid), t0());
    e.lost(1, t0());
    let all: Vec<Action> = e.actions().collect();
    assert_eq!(texts_of(&all, 2, V5), ["job 2"], "{all:?}");
    // From now on, everything goes to the member that is there.
    e.handle(3, publish(20, msg("jobs", "job 4", 1, false)), t0());
    let all: Vec<Action> = e.actions().collect();
    assert_eq!(texts_of(&all, 2, V5), ["job 4"]);
}

#[test]
fn a_shared_subscription_gets_no_retained_messages_and_no_local_is_a_protocol_error() {
    let mut e = Engine::new();
    member(&mut e, 1, V5, "p", &[]);
    e.handle(1, publish(1, msg("jobs", "kept", 1, true)), t0());
    e.actions().for_each(drop);
    member(&mut e, 2, V5, "w", &[]);
    subscribe(&mut e, 2, vec![sub("$share/g/jobs", 1)], None);
    let got = sent(&mut e, 2, V5);
    assert_eq!(got, [Got::Other(9)], "a SUBACK only: {got:?}");
    for bad in ["$share//jobs", "$share/g+/jobs", "$share/g"] {
        subscribe(&mut e, 2, vec![sub(bad, 1)], None);
        let all: Vec<Action> = e.actions().collect();
        let Some(Action::Send(2, suback)) = all.first() else {
            panic!("{bad}: {all:?}")
        };
        assert_eq!(suback.to_bytes().last(), Some(&0x8F), "{bad}");
    }
    let mut no_local = sub("$share/g/jobs", 1);
    no_local.no_local = true;
    subscribe(&mut e, 2, vec![no_local], None);
    let all: Vec<Action> = e.actions().collect();
    let Some(Action::Send(2, disconnect)) = all.first() else {
        panic!("{all:?}")
    };
    assert_eq!(disconnect.to_bytes()[2], 0x82, "protocol error");
    assert!(all.contains(&Action::Close(2)));
}

#[test]
fn beyond_max_connections_a_connack_refuses_but_a_takeover_does_not_count() {
    let mut e = Engine::with_limits(Limits {
        max_connections: 2,
        ..Limits::default()
    });
    member(&mut e, 1, V5, "a", &[]);
    member(&mut e, 2, V5, "b", &[]);
    e.handle(3, In::Connect(Box::new(hello(V5, "c", true, 0))), t0());
    assert_eq!(
        sent(&mut e, 3, V5),
        [
            Got::ConnAck {
                present: false,
                code: 0x97
            },
            Got::Other(0)
        ]
    );
    e.handle(4, In::Connect(Box::new(hello(V311, "d", true, 0))), t0());
    assert_eq!(
        sent(&mut e, 4, V311),
        [
            Got::ConnAck {
                present: false,
                code: 3
            },
            Got::Other(0)
        ]
    );
    // "b" again, from a new connection: it takes its session over, the count stays 2.
    e.handle(5, In::Connect(Box::new(hello(V5, "b", false, 60))), t0());
    let got = sent(&mut e, 5, V5);
    assert!(matches!(got[0], Got::ConnAck { code: 0, .. }), "{got:?}");
    assert_eq!(e.clients(), 2);
    // One leaves: there is room again.
    e.handle(
        1,
        In::Disconnect {
            with_will: false,
            session_expiry: None,
        },
        t0(),
    );
    e.handle(6, In::Connect(Box::new(hello(V5, "c", true, 0))), t0());
    let got = sent(&mut e, 6, V5);
    assert!(matches!(got[0], Got::ConnAck { code: 0, .. }), "{got:?}");
}

#[test]
fn a_full_queue_keeps_the_oldest_and_an_abandoned_session_expires_when_asked() {
    let limits = Limits {
        max_queued: 2,
        persistent_expiry: Some(Duration::from_secs(3600)),
        ..Limits::default()
    };
    let mut e = Engine::with_limits(limits);
    e.handle(
        1,
        In::Connect(Box::new(hello(V311, "away", false, u32::MAX))),
        t0(),
    );
    subscribe(&mut e, 1, vec![sub("room", 1)], None);
    e.handle(
        1,
        In::Disconnect {
            with_will: false,
            session_expiry: None,
        },
        t0(),
    );
    member(&mut e, 2, V5, "pub", &[]);
    for i in 0..4 {
        e.handle(
            2,
            publish(10 + i, msg("room", &format!("m{i}"), 1, false)),
            t0(),
        );
    }
    e.actions().for_each(drop);
    e.handle(
        3,
        In::Connect(Box::new(hello(V311, "away", false, u32::MAX))),
        t0(),
    );
    let got = sent(&mut e, 3, V311);
    assert_eq!(
        got[0],
        Got::ConnAck {
            present: true,
            code: 0
        }
    );
    assert_eq!(text(&got), ["m0", "m1"], "the oldest are kept");
    // Away again: kept for the hour, forgotten after it.
    e.lost(3, t0());
    e.tick(t0() + Duration::from_secs(3599));
    e.handle(
        4,
        In::Connect(Box::new(hello(V311, "away", false, u32::MAX))),
        t0(),
    );
    assert!(matches!(
        sent(&mut e, 4, V311)[0],
        Got::ConnAck { present: true, .. }
    ));
    let later = t0() + Duration::from_secs(3601);
    e.lost(4, t0());
    e.tick(later);
    e.handle(
        5,
        In::Connect(Box::new(hello(V311, "away", false, u32::MAX))),
        later,
    );
    assert!(matches!(
        sent(&mut e, 5, V311)[0],
        Got::ConnAck { present: false, .. }
    ));
}

#[test]
fn over_the_byte_budget_qos_0_is_dropped_and_qos_1_refused_never_lost() {
    let mut e = Engine::with_limits(Limits {
        max_queued_bytes: 300,
        ..Limits::default()
    });
    // A session away, whose queue fills the budget (each message costs 64 + 3 + 40).
    e.handle(
        1,
        In::Connect(Box::new(hello(V5, "away", false, 600))),
        t0(),
    );
    subscribe(&mut e, 1, vec![sub("t/a", 1)], None);
    e.handle(
        1,
        In::Disconnect {
            with_will: false,
            session_expiry: None,
        },
        t0(),
    );
    member(&mut e, 2, V5, "online", &[("t/a", 0)]);
    member(&mut e, 3, V5, "pub5", &[]);
    member(&mut e, 4, V311, "pub3", &[]);
    let body = "x".repeat(40);
    for i in 0..3 {
        e.handle(3, publish(10 + i, msg("t/a", &body, 1, false)), t0());
    }
    e.actions().for_each(drop);
    e.audit().unwrap();
    // Over it now: MQTT 5 gets 0x97 in its PUBACK, nothing is routed.
    e.handle(3, publish(20, msg("t/a", "refused", 1, false)), t0());
    let all: Vec<Action> = e.actions().collect();
    assert_eq!(
        all,
        [Action::Send(
            3,
            Bytes::from_static(&[0x40, 4, 0, 20, 0x97, 0]).into()
        )]
    );
    // QoS 0: dropped; MQTT 3.1.1 QoS 1: its connection closed.
    e.handle(3, publish(0, msg("t/a", "dropped", 0, false)), t0());
    assert_eq!(e.actions().count(), 0);
    e.handle(4, publish(21, msg("t/a", "closed", 1, false)), t0());
    assert_eq!(e.actions().collect::<Vec<_>>(), [Action::Close(4)]);
    e.audit().unwrap();
    // The session comes back and takes its queue: the budget frees, messages flow again.
    e.handle(
        5,
        In::Connect(Box::new(hello(V5, "away", false, 600))),
        t0(),
    );
    assert_eq!(text(&sent(&mut e, 5, V5)).len(), 3);
    e.handle(3, publish(22, msg("t/a", "again", 1, false)), t0());
    let all: Vec<Action> = e.actions().collect();
    assert_eq!(texts_of(&all, 2, V5), ["again"]);
    e.audit().unwrap();
}

/// A message queued for many sessions away counts its topic and payload once against
/// `--max-queued-bytes`, shared among them (it is held once), and 64 bytes for each queue.
#[test]
fn a_message_queued_for_many_sessions_counts_its_bytes_once() {
    let mut e = Engine::new();
    for (conn, id) in [(1, "a"), (2, "b"), (3, "c")] {
        e.handle(conn, In::Connect(Box::new(hello(V5, id, false, 600))), t0());
        subscribe(&mut e, conn, vec![sub("t/a", 1)], None);
        e.lost(conn, t0());
    }
    member(&mut e, 9, V5, "pub", &[]);
    e.handle(9, publish(1, msg("t/a", &"x".repeat(3000), 1, false)), t0());
    e.audit().unwrap();
    let counted = e.queued.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(counted, 3 * (64 + 3003 / 3));
}
