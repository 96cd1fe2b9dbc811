//! The durable state: what a durable engine records, written and read back by the store's
//! format, and replayed into a new engine, is what the clients find after a restart.

use std::time::Duration;

use super::codec::In;
use super::session_tests::will;
use super::tests::*;
use super::{Action, Engine, Record};
use crate::broker::store::format::{self, Clock};

/// The engine's records so far, as the store would keep them; its other actions dropped.
fn keep(e: &mut Engine, disk: &mut Vec<u8>) {
    let clock = Clock::now();
    for a in e.actions() {
        if let Action::Store(rec) = a {
            format::encode(&rec, &clock, disk);
        }
    }
}

/// A new engine from what `disk` holds (behind the snapshot the store always begins with).
fn restart(disk: &[u8]) -> Engine {
    let mut file = format::MAGIC.to_vec();
    format::encode(&Record::SnapshotEnd, &Clock::now(), &mut file);
    file.extend_from_slice(disk);
    let mut e = Engine::new();
    let clock = Clock::now();
    let scanned = format::scan(&file, &clock, |rec| e.restore(rec, clock.instant));
    assert_eq!(scanned.map(|s| s.cut), Ok(0));
    e.restored();
    e.audit().unwrap();
    e
}

fn durable() -> Engine {
    let mut e = Engine::new();
    e.set_durable();
    e
}

fn connect(e: &mut Engine, conn: u64, v: super::Version, id: &str, clean: bool, expiry: u32) {
    e.handle(
        conn,
        In::Connect(Box::new(hello(v, id, clean, expiry))),
        t0(),
    );
}

#[test]
fn a_session_comes_back_with_what_was_in_flight_queued_and_released() {
    let mut disk = Vec::new();
    let mut e = durable();
    member(&mut e, 9, V5, "pub", &[]);
    connect(&mut e, 1, V311, "s", false, u32::MAX);
    subscribe(&mut e, 1, vec![sub("t", 2)], None);
    for (pkid, text) in [(1, "one"), (2, "two"), (3, "three"), (4, "four")] {
        e.handle(9, publish(pkid, msg("t", text, 2, false)), t0());
    }
    // "one" delivered and over, "two" released by its PUBREC, "three" and "four" in flight.
    e.handle(1, In::PubRec(1), t0());
    e.handle(1, In::PubComp(1), t0());
    e.handle(1, In::PubRec(2), t0());
    e.lost(1, t0());
    e.handle(9, publish(5, msg("t", "five", 1, false)), t0());
    keep(&mut e, &mut disk);

    let mut e = restart(&disk);
    connect(&mut e, 2, V311, "s", false, u32::MAX);
    let got = sent(&mut e, 2, V311);
    assert_eq!(
        got[0],
        Got::ConnAck {
            present: true,
            code: 0
        }
    );
    // PUBREL for "two" (type 6), "three" and "four" again with their ids, then "five".
    assert_eq!(got[1], Got::Other(6));
    let publishes: Vec<_> = (got[2..].iter())
        .map(|g| match g {
            Got::Publish {
                payload,
                dup,
                pkid,
                qos,
                ..
            } => (payload.as_str(), *dup, *pkid, *qos),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        publishes,
        [
            ("three", true, 3, 2),
            ("four", true, 4, 2),
            ("five", false, 5, 1)
        ]
    );
}

#[test]
fn retained_messages_subscriptions_and_qos_2_state_come_back() {
    let mut disk = Vec::new();
    let mut e = durable();
    connect(&mut e, 9, V5, "pub", false, 600);
    e.handle(9, publish(0, msg("status/a", "here", 0, true)), t0());
    e.handle(9, publish(0, msg("status/b", "gone", 0, true)), t0());
    e.handle(9, publish(0, msg("status/b", "", 0, true)), t0());
    connect(&mut e, 1, V5, "s", false, 600);
    subscribe(&mut e, 1, vec![sub("room/#", 1)], None);
    // A QoS 2 message received, its PUBREL not yet: the id is held across the restart.
    e.handle(9, publish(7, msg("room/x", "once", 2, false)), t0());
    keep(&mut e, &mut disk);

    let mut e = restart(&disk);
    connect(&mut e, 3, V5, "watcher", true, 0);
    subscribe(&mut e, 3, vec![sub("status/#", 0)], None);
    let got = sent(&mut e, 3, V5);
    assert!(
        matches!(&got[2..], [Got::Publish { topic, payload, retain: true, .. }] if topic == "status/a" && payload == "here"),
        "{got:?}"
    );
    // "once" was in flight to "s": sent again when it is back.
    connect(&mut e, 1, V5, "s", false, 600);
    let mut to_s = sent(&mut e, 1, V5);
    // The publisher sends its QoS 2 message again (it had no PUBCOMP): not routed twice.
    connect(&mut e, 9, V5, "pub", false, 600);
    e.handle(9, publish(7, msg("room/x", "once", 2, false)), t0());
    e.handle(9, In::PubRel(7), t0());
    to_s.extend(sent(&mut e, 1, V5));
    let once =
        (to_s.iter()).filter(|g| matches!(g, Got::Publish { payload, .. } if payload == "once"));
    assert_eq!(once.count(), 1, "{to_s:?}");
}

#[test]
fn a_delayed_will_and_the_expiry_of_a_session_come_back() {
    let mut disk = Vec::new();
    let mut e = durable();
    let mut h = hello(V5, "w", false, 60);
    h.will = will("presence/w", 30);
    e.handle(1, In::Connect(Box::new(h)), t0());
    connect(&mut e, 2, V5, "short", false, 1);
    // Connected when the broker went down: its expiry counts from the restart.
    connect(&mut e, 6, V5, "connected", false, 1);
    e.lost(1, t0());
    e.lost(2, t0());
    keep(&mut e, &mut disk);

    let mut e = restart(&disk);
    connect(&mut e, 3, V5, "watcher", true, 0);
    subscribe(&mut e, 3, vec![sub("presence/#", 0)], None);
    e.actions().for_each(drop);
    e.tick(t0() + Duration::from_secs(31));
    let got = sent(&mut e, 3, V5);
    assert!(
        matches!(&got[..], [Got::Publish { topic, payload, .. }] if topic == "presence/w" && payload == "bye"),
        "{got:?}"
    );
    // "short" expired a second after it left, "connected" a second after the restart;
    // "w" has its minute.
    for (conn, id) in [(4, "short"), (6, "connected")] {
        connect(&mut e, conn, V5, id, false, 1);
        let ack = sent(&mut e, conn, V5)[0].clone();
        assert_eq!(
            ack,
            Got::ConnAck {
                present: false,
                code: 0
            },
            "{id}"
        );
    }
    connect(&mut e, 5, V5, "w", false, 60);
    assert_eq!(
        sent(&mut e, 5, V5)[0],
        Got::ConnAck {
            present: true,
            code: 0
        }
    );
}

#[test]
fn sessions_that_end_with_their_connection_leave_nothing() {
    let mut disk = Vec::new();
    let mut e = durable();
    member(&mut e, 1, V5, "clean", &[("t", 1)]);
    connect(&mut e, 2, V311, "kept", false, u32::MAX);
    subscribe(&mut e, 2, vec![sub("t", 1)], None);
    // Ended by a clean start, then by a DISCONNECT that sets its expiry to 0.
    connect(&mut e, 3, V311, "kept", true, 0);
    connect(&mut e, 4, V5, "gone", false, 60);
    e.handle(
        4,
        In::Disconnect {
            with_will: false,
            session_expiry: Some(0),
        },
        t0(),
    );
    e.handle(1, publish(1, msg("t", "x", 1, false)), t0());
    let stored: Vec<Record> = (e.actions())
        .filter_map(|a| match a {
            Action::Store(r) => Some(r),
            _ => None,
        })
        .collect();
    assert!(
        stored
            .iter()
            .all(|r| !matches!(r, Record::Message { .. } | Record::Queued { .. })),
        "a message for sessions that end with their connection is not written: {stored:?}"
    );
    let clock = Clock::now();
    stored
        .iter()
        .for_each(|r| format::encode(r, &clock, &mut disk));
    let mut e = restart(&disk);
    for (conn, id) in [(5, "kept"), (6, "gone"), (7, "clean")] {
        connect(&mut e, conn, V5, id, false, 60);
        assert_eq!(
            sent(&mut e, conn, V5)[0],
            Got::ConnAck {
                present: false,
                code: 0
            },
            "{id}"
        );
    }
}

/// Found by the fuzz target `engine`: a session taken up by a client of the other
/// version was recorded with the version of the client before.
#[test]
fn a_session_taken_up_in_the_other_version_is_recorded_in_it() {
    let mut e = durable();
    connect(&mut e, 1, V5, "s", false, u32::MAX);
    connect(&mut e, 2, V311, "s", false, u32::MAX);
    let last = (e.actions())
        .filter_map(|a| match a {
            Action::Store(r @ Record::Session { .. }) => Some(r),
            _ => None,
        })
        .last();
    assert!(
        matches!(
            last,
            Some(Record::Session {
                version: super::Version::V311,
                ..
            })
        ),
        "{last:?}"
    );
}
