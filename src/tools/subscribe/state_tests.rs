//! Socket-free tests of chat-sub's protocol state: packets are fed in as the broker
//! would send them; what the state queued for the broker is decoded with rumqttc, and
//! what it printed is read back as JSON lines.

use std::collections::HashSet;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use rumqttc::mqttbytes::v4;

use super::*;
use crate::defaults::WHO_QUIET;
use crate::mqtt::tx::Peer;
use crate::tools::render::{Format, Renderer};
use crate::tools::subscribe::inbox::Inbox;
use crate::tools::subscribe::printer::Printer;
use crate::tools::subscribe::takeover::TAKEOVER_AFTER;
use crate::tools::subscribe::view::{Mode, View};

/// chat-sub on `room/#` at QoS 2, printing JSON lines.
fn sub(mode: Mode, hidden: &[&str], no_retained: bool, count: Option<u64>) -> SubState {
    let hidden: HashSet<String> = hidden.iter().map(|s| s.to_string()).collect();
    let subs = Subscriptions {
        filters: vec!["room/#".into()],
        qos: 2,
        no_local: false,
    };
    let printer = Printer::new(Renderer::new(Format::Json, false), count);
    let inbox = Inbox::new(hidden.clone(), no_retained);
    SubState::new(subs, inbox, View::new(mode, hidden), printer)
}

/// A connected subscriber and its broker, the SUBSCRIBEs taken off the wire.
fn connected(state: SubState) -> (SubState, Peer) {
    let (mut s, mut peer) = (state, Peer::new(Version::V311, None, false));
    s.connected(&mut peer.tx(), Instant::now());
    subscribed(&mut peer);
    (s, peer)
}

/// The filters of each SUBSCRIBE queued for `peer` (a 3.1.1 connection).
fn subscribed(peer: &mut Peer) -> Vec<Vec<String>> {
    let mut buf = peer.buf.split();
    let mut out = Vec::new();
    while !buf.is_empty() {
        match v4::Packet::read(&mut buf, wire::MAX_PACKET).expect("packet") {
            v4::Packet::Subscribe(s) => out.push(s.filters.into_iter().map(|f| f.path).collect()),
            other => panic!("expected SUBSCRIBE, got {other:?}"),
        }
    }
    out
}

/// The acknowledgements queued for the broker: (kind, packet id).
fn acks(peer: &mut Peer) -> Vec<(AckKind, u16)> {
    let mut buf = peer.buf.split();
    let mut out = Vec::new();
    while !buf.is_empty() {
        out.push(
            match v4::Packet::read(&mut buf, wire::MAX_PACKET).expect("packet") {
                v4::Packet::PubAck(a) => (AckKind::PubAck, a.pkid),
                v4::Packet::PubRec(a) => (AckKind::PubRec, a.pkid),
                v4::Packet::PubComp(a) => (AckKind::PubComp, a.pkid),
                other => panic!("expected an acknowledgement, got {other:?}"),
            },
        );
    }
    out
}

fn publish(topic: &str, payload: &str, qos: u8, pkid: u16, retain: bool) -> Inbound {
    Inbound::Publish(Delivery {
        topic: Bytes::from(topic.to_owned()),
        payload: Bytes::from(payload.to_owned()),
        qos,
        retain,
        dup: false,
        pkid,
        properties: None,
    })
}

fn envelope(id: &str, from: &str, text: &str) -> String {
    format!(r#"{{"id":"{id}","from":"{from}","ts":"2026-11-29T10:00:00.000Z","text":"{text}"}}"#)
}

fn feed(s: &mut SubState, peer: &mut Peer, p: Inbound) -> Step {
    s.on_packet(p, &mut peer.tx(), Instant::now(), SystemTime::now())
}

/// Each printed line's `text`, or `event` for presence lines; the buffer is emptied.
fn printed(s: &mut SubState) -> Vec<String> {
    let out = std::mem::take(s.output());
    let text = String::from_utf8(out).expect("UTF-8");
    let field = |v: serde_json::Value| match v.get("event") {
        Some(e) => format!(
            "{} {}",
            e.as_str().unwrap_or(""),
            v["from"].as_str().unwrap_or("")
        ),
        None => v["text"].as_str().expect("text").to_owned(),
    };
    let parse = |l: &str| serde_json::from_str(l).expect("JSON line");
    text.lines().map(parse).map(field).collect()
}

#[test]
fn it_subscribes_to_the_chat_and_presence_topics_and_again_only_without_a_kept_session() {
    let mut s = sub(Mode::Shown, &[], false, None);
    let mut peer = Peer::new(Version::V311, None, false);
    s.connected(&mut peer.tx(), Instant::now());
    let both = subscribed(&mut peer);
    assert_eq!(
        both,
        [vec!["room/#".to_owned()], vec![presence::filter("room/#")]]
    );
    let mut kept = Peer::new(Version::V311, None, true);
    s.reconnected(&mut kept.tx(), Instant::now());
    assert!(
        subscribed(&mut kept).is_empty(),
        "the broker kept the subscriptions"
    );
    s.reconnected(&mut peer.tx(), Instant::now());
    assert_eq!(subscribed(&mut peer), both);
    let (mut who, mut p) = (
        sub(Mode::Who, &[], false, None),
        Peer::new(Version::V311, None, false),
    );
    who.connected(&mut p.tx(), Instant::now());
    assert_eq!(
        subscribed(&mut p),
        [vec![presence::filter("room/#")]],
        "--who"
    );
    let (mut quiet, mut p) = (
        sub(Mode::Hidden, &[], false, None),
        Peer::new(Version::V311, None, false),
    );
    quiet.connected(&mut p.tx(), Instant::now());
    assert_eq!(
        subscribed(&mut p),
        [vec!["room/#".to_owned()]],
        "--no-presence"
    );
}

#[test]
fn qos_2_is_printed_once_until_released_and_each_qos_gets_its_acknowledgement() {
    let (mut s, mut peer) = connected(sub(Mode::Shown, &[], false, None));
    feed(&mut s, &mut peer, publish("room/a", "zero", 0, 0, false));
    feed(&mut s, &mut peer, publish("room/a", "one", 1, 7, false));
    feed(&mut s, &mut peer, publish("room/a", "two", 2, 8, false));
    feed(&mut s, &mut peer, publish("room/a", "two", 2, 8, false));
    let rel = Inbound::Ack {
        kind: AckKind::PubRel,
        pkid: 8,
        reason: 0,
    };
    feed(&mut s, &mut peer, rel);
    feed(
        &mut s,
        &mut peer,
        publish("room/a", "two again", 2, 8, false),
    );
    assert_eq!(printed(&mut s), ["zero", "one", "two", "two again"]);
    use AckKind::*;
    let expected = [
        (PubAck, 7),
        (PubRec, 8),
        (PubRec, 8),
        (PubComp, 8),
        (PubRec, 8),
    ];
    assert_eq!(acks(&mut peer), expected);
}

#[test]
fn a_new_session_forgets_unreleased_qos_2_ids() {
    let (mut s, mut peer) = connected(sub(Mode::Shown, &[], false, None));
    feed(&mut s, &mut peer, publish("room/a", "first", 2, 3, false));
    s.reconnected(&mut peer.tx(), Instant::now());
    peer.buf.clear();
    feed(&mut s, &mut peer, publish("room/a", "second", 2, 3, false));
    assert_eq!(printed(&mut s), ["first", "second"]);
}

#[test]
fn an_envelope_or_a_retained_message_delivered_again_is_printed_once() {
    let (mut s, mut peer) = connected(sub(Mode::Shown, &[], false, None));
    let e = envelope("id-1", "bob", "hello");
    feed(&mut s, &mut peer, publish("room/a", &e, 1, 1, false));
    feed(&mut s, &mut peer, publish("room/b", &e, 1, 2, false));
    feed(&mut s, &mut peer, publish("room/a", "state", 0, 0, true));
    feed(&mut s, &mut peer, publish("room/a", "state", 0, 0, true));
    feed(&mut s, &mut peer, publish("room/a", "plain", 0, 0, false));
    feed(&mut s, &mut peer, publish("room/a", "plain", 0, 0, false));
    assert_eq!(printed(&mut s), ["hello", "state", "plain", "plain"]);
    assert_eq!(acks(&mut peer).len(), 2, "a repeat is acknowledged too");
}

#[test]
fn hidden_nicks_and_retained_messages_under_no_retained_are_not_printed() {
    let (mut s, mut peer) = connected(sub(Mode::Shown, &["eve"], true, None));
    feed(
        &mut s,
        &mut peer,
        publish("room/a", &envelope("1", "eve", "psst"), 0, 0, false),
    );
    feed(
        &mut s,
        &mut peer,
        publish("room/a", &envelope("2", "bob", "old"), 0, 0, true),
    );
    feed(
        &mut s,
        &mut peer,
        publish("room/a", &envelope("3", "bob", "new"), 0, 0, false),
    );
    assert_eq!(printed(&mut s), ["new"]);
}

#[test]
fn joins_and_leaves_are_shown_but_not_counted_and_hidden_nicks_are_not_shown() {
    let (mut s, mut peer) = connected(sub(Mode::Shown, &["eve"], false, Some(1)));
    let join =
        |nick: &str| format!(r#"{{"event":"join","from":"{nick}","ts":"2026-11-29T10:00:00Z"}}"#);
    let bob = presence::topic("room/a", "c-bob");
    let eve = presence::topic("room/a", "c-eve");
    // Live joins (a retained one is the state before chat-sub came, not news).
    assert_eq!(
        feed(&mut s, &mut peer, publish(&bob, &join("bob"), 1, 1, false)),
        Step::Continue
    );
    feed(&mut s, &mut peer, publish(&eve, &join("eve"), 1, 2, false));
    feed(&mut s, &mut peer, publish(&bob, "", 1, 3, false));
    let step = feed(&mut s, &mut peer, publish("room/a", "hi", 0, 0, false));
    assert_eq!(step, Step::Done, "--count 1 reached by the message alone");
    assert_eq!(printed(&mut s), ["join bob", "leave bob", "hi"]);
}

#[test]
fn who_waits_for_quiet_after_each_presence_message_then_prints_the_roster() {
    let (mut s, mut peer) = connected(sub(Mode::Who, &["eve"], false, None));
    assert_eq!(s.who_deadline(), None, "nothing heard yet");
    let t0 = Instant::now();
    let granted = Inbound::SubAck {
        pkid: 2,
        codes: vec![1],
    };
    s.on_packet(granted, &mut peer.tx(), t0, SystemTime::now());
    assert_eq!(s.who_deadline(), Some(t0 + WHO_QUIET));
    let t1 = t0 + Duration::from_millis(300);
    let join = |nick: &str| format!(r#"{{"event":"join","from":"{nick}"}}"#);
    for (client, nick) in [("c1", "bob"), ("c2", "eve")] {
        let p = publish(&presence::topic("room/a", client), &join(nick), 1, 1, true);
        s.on_packet(p, &mut peer.tx(), t1, SystemTime::now());
    }
    assert_eq!(s.who_deadline(), Some(t1 + WHO_QUIET));
    assert!(printed(&mut s).is_empty(), "--who prints no joins");
    assert_eq!(s.print_roster(), None, "somebody is online");
    assert_eq!(printed(&mut s), ["online bob"]);
}

#[test]
fn who_in_an_empty_room_prints_nothing_but_says_so() {
    let (mut s, _peer) = connected(sub(Mode::Who, &["eve"], false, None));
    assert_eq!(
        s.print_roster().as_deref(),
        Some("nobody is online in room/#")
    );
    assert!(printed(&mut s).is_empty(), "stdout stays empty for scripts");
}

#[test]
fn a_refused_subscription_ends_the_run_but_a_refused_presence_one_does_not() {
    let (mut s, mut peer) = connected(sub(Mode::Shown, &[], false, None));
    let suback = |pkid, code| Inbound::SubAck {
        pkid,
        codes: vec![code],
    };
    assert_eq!(feed(&mut s, &mut peer, suback(2, 0x80)), Step::Continue);
    assert_eq!(
        feed(&mut s, &mut peer, suback(1, 0x80)),
        Step::Refused("the broker refused the subscription to 'room/#': failure (0x80)".into())
    );
}

#[test]
fn a_message_over_max_size_is_acknowledged_and_not_printed() {
    let (mut s, mut peer) = connected(sub(Mode::Shown, &[], false, None));
    let Inbound::Publish(delivery) = publish("room/a", "", 1, 9, false) else {
        unreachable!()
    };
    let big = Inbound::Oversized {
        delivery,
        size: 1 << 20,
    };
    assert_eq!(feed(&mut s, &mut peer, big), Step::Continue);
    assert!(printed(&mut s).is_empty());
    assert_eq!(acks(&mut peer), [(AckKind::PubAck, 9)]);
}

#[test]
fn losses_back_off_while_connections_die_young_and_a_taken_session_ends_the_run() {
    let mut s = sub(Mode::Shown, &[], false, None).with_session(true, 1024);
    let mut peer = Peer::new(Version::V311, None, true);
    let t0 = Instant::now();
    s.connected(&mut peer.tx(), t0);
    let mut pauses = Vec::new();
    for _ in 1..TAKEOVER_AFTER {
        pauses.push(s.lost(&LinkError::Closed, "s1", t0).expect("goes on"));
        s.reconnected(&mut peer.tx(), t0);
    }
    assert!(pauses.windows(2).all(|w| w[0] <= w[1]), "{pauses:?}");
    let e = s.lost(&LinkError::Closed, "s1", t0).unwrap_err();
    assert!(
        e.message()
            .is_some_and(|m| m.contains("the session 's1' was taken over"))
    );
}

#[test]
fn timeout_fails_only_when_count_was_not_reached() {
    let (mut s, mut peer) = connected(sub(Mode::Shown, &[], false, Some(2)));
    feed(&mut s, &mut peer, publish("room/a", "one", 0, 0, false));
    let e = s.timed_out(Duration::from_secs(3)).unwrap_err();
    assert_eq!(
        e.message(),
        Some("timed out after 3s with 1 of 2 message(s)")
    );
    let (unbounded, _) = connected(sub(Mode::Shown, &[], false, None));
    assert!(unbounded.timed_out(Duration::from_secs(3)).is_ok());
}

/// The same, in an encrypted room.
#[path = "state_room_tests.rs"]
mod encrypted;
