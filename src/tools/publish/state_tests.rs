//! Socket-free tests of chat-pub's protocol state: the broker's side is a [`Peer`] that
//! decodes what the state queued, and acknowledgements are fed back as packets.

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::*;
use crate::mqtt::tx::Peer;
use crate::mqtt::wire::Version;
use crate::tools::publish::streak::GIVE_UP_AFTER;
use crate::tools::publish::testing::{message, received};

const DRAIN: Duration = Duration::from_secs(5);

fn batch(lines: std::ops::RangeInclusive<u64>, qos: u8) -> Vec<Outgoing> {
    lines.map(|l| message(l, qos)).collect()
}

fn lines(sent: &[(u64, u16, bool)]) -> Vec<u64> {
    sent.iter().map(|s| s.0).collect()
}

fn ack(kind: AckKind, pkid: u16, reason: u8) -> Inbound {
    Inbound::Ack { kind, pkid, reason }
}

/// A state without presence, connected at `t0` to `peer`.
fn connected(peer: &mut Peer, t0: Instant) -> PubState {
    let mut s = PubState::new("c1".into(), None, DRAIN);
    s.connected(&mut peer.tx(), true, t0);
    s
}

/// Acknowledges every QoS 1 line in `sent` (PUBACK, reason 0).
fn ack_all(s: &mut PubState, peer: &mut Peer, sent: &[(u64, u16, bool)]) {
    for &(_, pkid, _) in sent {
        s.on_packet(ack(AckKind::PubAck, pkid, 0), &mut peer.tx());
    }
}

#[test]
fn lines_go_out_in_order_and_the_run_is_done_when_all_are_acknowledged() {
    let t0 = Instant::now();
    let mut peer = Peer::new(Version::V5, None, false);
    let mut s = connected(&mut peer, t0);
    assert!(s.wants_input(Some(0)));
    s.take(batch(1..=3, 1));
    s.end_of_input(t0);
    assert_eq!(
        s.fill(&mut peer.tx()),
        1,
        "the window has room: wake for any byte"
    );
    let sent = received(&mut peer);
    assert_eq!(lines(&sent), [1, 2, 3]);
    assert!(!s.done());
    ack_all(&mut s, &mut peer, &sent);
    assert!(s.done());
    assert!(s.outcome(Ok(()), 0).is_ok());
}

#[test]
fn the_brokers_receive_maximum_is_honoured_and_the_reader_waits_for_half_the_window() {
    let t0 = Instant::now();
    let mut peer = Peer::new(Version::V5, Some(4), false);
    let mut s = connected(&mut peer, t0);
    s.take(batch(1..=10, 1));
    let mark = s.fill(&mut peer.tx());
    let sent = received(&mut peer);
    assert_eq!(lines(&sent), [1, 2, 3, 4]);
    assert_eq!(
        mark,
        ACK_BYTES * 2,
        "woken when two of four acknowledgements are in"
    );
    assert!(
        !s.wants_input(Some(0)),
        "lines wait: no more input meanwhile"
    );
    ack_all(&mut s, &mut peer, &sent[..1]);
    s.fill(&mut peer.tx());
    assert_eq!(
        lines(&received(&mut peer)),
        [5],
        "one acknowledged, one more out"
    );
}

#[test]
fn after_a_reconnect_the_unacknowledged_go_first_within_the_new_window_then_newer_lines() {
    let t0 = Instant::now();
    let mut first = Peer::new(Version::V5, None, false);
    let mut s = connected(&mut first, t0);
    s.take(batch(1..=8, 1));
    s.fill(&mut first.tx());
    let sent = received(&mut first);
    ack_all(&mut s, &mut first, &sent[..2]);
    s.take(batch(9..=10, 1));
    let later = t0 + Duration::from_secs(60);
    s.connection_lost(&LinkError::Closed, later)
        .expect("reconnect");
    // A standby that allows 3 in flight and kept no session.
    let mut next = Peer::new(Version::V5, Some(3), false);
    s.connected(&mut next.tx(), true, later);
    s.fill(&mut next.tx());
    let resent = received(&mut next);
    assert_eq!(
        lines(&resent),
        [3, 4, 5],
        "oldest first, as many as the window"
    );
    assert!(
        resent.iter().all(|r| !r.2),
        "a new session: new ids, no DUP"
    );
    // Each acknowledgement of the oldest lets the next line out: the queued ones first.
    let mut in_flight: std::collections::VecDeque<_> = resent.into_iter().collect();
    let mut order = Vec::new();
    while let Some((line, pkid, _)) = in_flight.pop_front() {
        order.push(line);
        s.on_packet(ack(AckKind::PubAck, pkid, 0), &mut next.tx());
        s.fill(&mut next.tx());
        in_flight.extend(received(&mut next));
        assert!(in_flight.len() <= 3, "never more than the Receive Maximum");
    }
    assert_eq!(order, (3..=10).collect::<Vec<_>>());
    s.end_of_input(later);
    assert!(s.done());
}

#[test]
fn qos_2_handshake_pubrec_gets_pubrel_and_pubcomp_completes_once() {
    let t0 = Instant::now();
    let mut peer = Peer::new(Version::V5, None, false);
    let mut s = connected(&mut peer, t0);
    s.take(batch(1..=2, 2));
    s.end_of_input(t0);
    s.fill(&mut peer.tx());
    let sent = received(&mut peer);
    assert_eq!(sent, [(1, 1, false), (2, 2, false)]);
    s.on_packet(ack(AckKind::PubRec, 1, 0), &mut peer.tx());
    assert_eq!(received(&mut peer), [(0, 1, false)], "PUBREL for PUBREC");
    s.on_packet(ack(AckKind::PubComp, 1, 0), &mut peer.tx());
    s.on_packet(ack(AckKind::PubRec, 1, 0), &mut peer.tx());
    assert!(
        received(&mut peer).is_empty(),
        "a late PUBREC after PUBCOMP: nothing"
    );
    // A refused QoS 2 message ends at its PUBREC: no PUBREL, refused (exit 4).
    s.on_packet(ack(AckKind::PubRec, 2, 0x87), &mut peer.tx());
    assert!(received(&mut peer).is_empty());
    assert!(s.done());
    assert_eq!(
        s.take_notes(),
        ["line 2: refused by the broker: not authorized (0x87)"]
    );
    assert_eq!(s.outcome(Ok(()), 0).unwrap_err().exit_code(), 4);
}

#[test]
fn repeated_and_out_of_order_acknowledgements_complete_each_line_once() {
    let t0 = Instant::now();
    let mut peer = Peer::new(Version::V311, None, false);
    let mut s = connected(&mut peer, t0);
    s.take(batch(1..=3, 1));
    s.end_of_input(t0);
    s.fill(&mut peer.tx());
    received(&mut peer);
    for pkid in [3, 3, 1, 42, 1] {
        s.on_packet(ack(AckKind::PubAck, pkid, 0), &mut peer.tx());
    }
    assert_eq!(s.unfinished(), 1, "line 2 still owed");
    s.on_packet(ack(AckKind::PubAck, 2, 0x10), &mut peer.tx());
    assert!(s.done(), "a reason below 0x80 is a success");
    assert!(s.take_notes().is_empty());
}

#[test]
fn the_drain_starts_at_the_first_connection_and_its_expiry_counts_what_is_missing() {
    let t0 = Instant::now();
    let mut s = PubState::new("c1".into(), None, DRAIN);
    s.take(batch(1..=3, 1));
    s.end_of_input(t0);
    assert_eq!(
        s.drain_deadline(),
        None,
        "--connect-timeout is the limit until then"
    );
    let t1 = t0 + Duration::from_secs(2);
    let mut peer = Peer::new(Version::V5, None, false);
    s.connected(&mut peer.tx(), true, t1);
    assert_eq!(s.drain_deadline(), Some(t1 + DRAIN));
    s.fill(&mut peer.tx());
    let sent = received(&mut peer);
    ack_all(&mut s, &mut peer, &sent[..1]);
    let e = s.drain_expired();
    assert_eq!(e.exit_code(), 1);
    assert_eq!(
        s.take_notes(),
        ["2 message(s) not acknowledged by the broker within the drain timeout (5s)"]
    );
}

#[test]
fn a_signal_stops_the_input_then_a_second_one_ends_the_drain() {
    let t0 = Instant::now();
    let mut waiting = PubState::new("c1".into(), None, DRAIN);
    waiting.take(batch(1..=2, 1));
    let e = waiting.signal(Signal::Terminate).unwrap_err();
    assert_eq!(e.exit_code(), 143);
    assert_eq!(
        waiting.take_notes(),
        ["interrupted before connecting; 2 message(s) not sent"]
    );
    let mut peer = Peer::new(Version::V5, None, false);
    let mut s = connected(&mut peer, t0);
    s.take(batch(1..=2, 1));
    assert_eq!(s.signal(Signal::Interrupt).unwrap(), Stop::StopInput);
    s.end_of_input(t0);
    assert!(!s.wants_input(Some(0)));
    assert_eq!(s.drain_deadline(), Some(t0 + DRAIN));
    assert_eq!(s.signal(Signal::Interrupt).unwrap_err().exit_code(), 130);
    assert_eq!(s.take_notes(), ["stopped; 2 message(s) not acknowledged"]);
    // Drained in time, the first signal still decides the status.
    let mut drained = connected(&mut peer, t0);
    drained.end_of_input(t0);
    assert_eq!(drained.signal(Signal::Interrupt).unwrap(), Stop::Drain);
    assert_eq!(drained.outcome(Ok(()), 0).unwrap_err().exit_code(), 130);
}

#[test]
fn nothing_is_sent_before_the_presence_join_is_acknowledged_and_a_refusal_drops_presence() {
    let t0 = Instant::now();
    let announce = Announce::new("room", "c1", "alice");
    let mut s = PubState::new("c1".into(), Some(announce), DRAIN);
    let mut peer = Peer::new(Version::V5, None, false);
    s.connected(&mut peer.tx(), true, t0);
    s.take(batch(1..=2, 1));
    s.fill(&mut peer.tx());
    assert_eq!(
        received(&mut peer),
        [(u64::MAX, SPARE_PKID, false)],
        "the join alone"
    );
    s.on_packet(ack(AckKind::PubAck, SPARE_PKID, 0x87), &mut peer.tx());
    s.fill(&mut peer.tx());
    assert_eq!(lines(&received(&mut peer)), [1, 2]);
    s.leave(&mut peer.tx(), std::time::SystemTime::now());
    assert!(
        received(&mut peer).is_empty(),
        "no goodbye without presence"
    );
}

#[test]
fn a_close_right_after_the_join_drops_presence_and_is_not_blamed_on_a_line() {
    let t0 = Instant::now();
    let announce = Announce::new("room", "c1", "alice");
    let mut s = PubState::new("c1".into(), Some(announce), DRAIN);
    let mut peer = Peer::new(Version::V311, None, false);
    s.take(batch(1..=1, 1));
    for round in 0..GIVE_UP_AFTER + 1 {
        s.connected(&mut peer.tx(), true, t0);
        s.fill(&mut peer.tx());
        let sent = received(&mut peer);
        match round {
            0 => assert_eq!(sent, [(u64::MAX, SPARE_PKID, false)]),
            _ => assert_eq!(lines(&sent), [1], "the line, without a join"),
        }
        s.connection_lost(&LinkError::Closed, t0).expect("goes on");
    }
    assert!(s.take_notes().iter().all(|n| !n.contains("presence")));
}

#[test]
fn a_message_the_broker_closes_the_connection_for_three_times_is_given_up() {
    let t0 = Instant::now();
    let mut peer = Peer::new(Version::V311, None, false);
    let mut s = connected(&mut peer, t0);
    s.take(batch(1..=2, 1));
    for _ in 0..GIVE_UP_AFTER {
        s.fill(&mut peer.tx());
        assert_eq!(
            lines(&received(&mut peer))[0],
            1,
            "line 1 goes first every time"
        );
        s.connection_lost(&LinkError::Closed, t0).expect("goes on");
        s.connected(&mut peer.tx(), true, t0);
    }
    s.fill(&mut peer.tx());
    assert_eq!(lines(&received(&mut peer)), [2], "line 1 was given up");
    let notes = s.take_notes();
    assert_eq!(notes.len(), 1);
    assert!(
        notes[0]
            .starts_with("line 1: not sent: the broker closed the connection each of the 3 times")
    );
}

#[test]
fn qos_0_counts_as_delivered_only_when_the_broker_closes_after_disconnect() {
    let t0 = Instant::now();
    let mut peer = Peer::new(Version::V5, None, false);
    let mut s = connected(&mut peer, t0);
    s.take(batch(1..=2, 0));
    s.fill(&mut peer.tx());
    assert_eq!(received(&mut peer), [(1, 0, false), (2, 0, false)]);
    s.connection_lost(&LinkError::Closed, t0).expect("goes on");
    assert_eq!(
        s.take_notes(),
        ["2 message(s) sent at QoS 0 on the lost connection may not have arrived"]
    );
    s.connected(&mut peer.tx(), true, t0);
    s.take(batch(3..=3, 0));
    s.end_of_input(t0);
    s.fill(&mut peer.tx());
    assert!(s.done());
    s.disconnected(false);
    let e = s.outcome(Ok(()), 0).unwrap_err();
    assert!(
        matches!(&e, Error::Undelivered(t) if t.failed == 3),
        "{e:?}"
    );
    assert_eq!(e.exit_code(), 1);
}

#[test]
fn the_brokers_limits_lower_the_qos_and_refuse_a_too_large_message() {
    let t0 = Instant::now();
    let mut peer = Peer::new(Version::V5, None, false);
    peer.connack.max_qos = Some(1);
    peer.connack.max_packet_size = Some(20);
    let mut s = connected(&mut peer, t0);
    let mut big = message(2, 2);
    big.payload = Bytes::from(vec![b'x'; 40]);
    s.take(vec![message(1, 2), big]);
    s.fill(&mut peer.tx());
    let sent = peer.received();
    assert_eq!(sent.len(), 1);
    assert!(
        matches!(&sent[0], Inbound::Publish(d) if d.qos == 1),
        "{sent:?}"
    );
    let notes = s.take_notes();
    assert_eq!(notes.len(), 1);
    assert!(notes[0].starts_with("line 2: the message is"), "{notes:?}");
    assert!(notes[0].ends_with("more than the broker accepts (20 bytes); not sent"));
}

#[test]
fn a_takeover_of_the_client_id_ends_the_run() {
    let t0 = Instant::now();
    let mut peer = Peer::new(Version::V5, None, false);
    let mut s = connected(&mut peer, t0);
    s.take(batch(1..=1, 1));
    let e = s
        .connection_lost(&LinkError::Disconnected(0x8E), t0)
        .unwrap_err();
    let m = e.message().expect("message").to_owned();
    assert!(
        m.contains("another client connected with the client id 'c1'"),
        "{m}"
    );
    assert!(m.ends_with("1 message(s) not acknowledged"), "{m}");
}

#[test]
fn a_line_with_properties_is_not_sent_over_mqtt_3_1_1_and_is_reported() {
    let t0 = Instant::now();
    let mut peer = Peer::new(Version::V311, None, false);
    let mut s = connected(&mut peer, t0);
    let mut with = message(2, 1);
    with.properties = Bytes::from_static(&[0x03, 0, 1, b'x']);
    s.take(vec![message(1, 1), with, message(3, 1)]);
    s.end_of_input(t0);
    s.fill(&mut peer.tx());
    let sent = received(&mut peer);
    assert_eq!(
        lines(&sent),
        [1, 3],
        "line 2 never goes out without its properties"
    );
    ack_all(&mut s, &mut peer, &sent);
    assert!(s.done());
    let notes = s.take_notes().join("\n");
    assert!(
        notes.contains("line 2: it has MQTT 5 properties"),
        "{notes}"
    );
    assert!(
        s.outcome(Ok(()), 0).is_err(),
        "a line not sent fails the run"
    );
}

#[test]
fn over_mqtt_5_the_properties_go_out_with_the_message_and_count_in_its_size() {
    let t0 = Instant::now();
    let mut peer = Peer::new(Version::V5, None, false);
    let mut s = connected(&mut peer, t0);
    let mut with = message(1, 1);
    with.properties = Bytes::from_static(&[0x03, 0, 1, b'x']);
    s.take(vec![with]);
    s.end_of_input(t0);
    s.fill(&mut peer.tx());
    assert_eq!(lines(&received(&mut peer)), [1]);
}
