//! Socket-free tests of chat-sub in an encrypted room: what opens is shown, what does not
//! is marked and counted; replays; presence records; a reader without the secret; and
//! rooms waiting for their keys while the others go on. The thread of derivations is
//! played by [`derive_wanted`], which derives what the state asks for, when the test says.

use super::*;
use crate::tools::subscribe::room::{LIMITS, Limits, NEW_KEYS_BURST};

/// chat-sub on `room/#` in a room encrypted with `secret`, printing JSON lines.
fn member(secret: &str, hidden: &[&str]) -> (SubState, Peer) {
    let secret = crate::room::seal::RoomSecret::new(secret.as_bytes().to_vec()).expect("secret");
    let room = super::room::Room::new(crate::room::seal::Keyring::new(secret), &[]);
    connected(sub(Mode::Shown, hidden, false, None).with_room(Some(room)))
}

fn sealed(secret: &str, room: &str, topic: &str, payload: &str) -> String {
    let secret = crate::room::seal::RoomSecret::new(secret.as_bytes().to_vec()).expect("secret");
    let key = crate::room::seal::RoomKey::derive(&secret, room);
    let out = crate::room::seal::seal(&key, topic, payload.as_bytes()).expect("seal");
    String::from_utf8(out).expect("ASCII")
}

const SECRET: &str = "the room's secret, 32 bytes long";

/// What the driver's thread of derivations does: derives every key the state wants, and
/// hands each back; the last step.
fn derive_wanted(s: &mut SubState) -> Step {
    let secret = crate::room::seal::RoomSecret::new(SECRET.as_bytes().to_vec()).expect("secret");
    let mut step = Step::Continue;
    for room in s.wanted() {
        let key = crate::room::seal::RoomKey::derive(&secret, &room);
        step = s.key_ready(&room, key, Instant::now());
    }
    step
}

/// A packet, then the keys it asked for, as if derived at once.
fn feed(s: &mut SubState, peer: &mut Peer, p: Inbound) -> Step {
    match super::feed(s, peer, p) {
        Step::Continue => derive_wanted(s),
        step => step,
    }
}

#[test]
fn in_an_encrypted_room_only_what_opens_is_shown_and_the_rest_is_marked_and_counted() {
    let (mut s, mut peer) = member(SECRET, &["mallory"]);
    let hi = sealed(SECRET, "room/a", "room/a", &envelope("1", "bob", "hi"));
    feed(&mut s, &mut peer, publish("room/a", &hi, 1, 1, false));
    // The same ciphertext again (a replay) is a repeat of envelope id 1.
    feed(&mut s, &mut peer, publish("room/a", &hi, 1, 2, false));
    let plain = envelope("2", "bob", "plain");
    feed(&mut s, &mut peer, publish("room/a", &plain, 1, 3, false));
    let other = sealed("another secret, also long", "room/a", "room/a", "x");
    feed(&mut s, &mut peer, publish("room/a", &other, 1, 4, false));
    // Copied to another topic of the room's wildcard.
    feed(&mut s, &mut peer, publish("room/b", &hi, 1, 5, false));
    let hidden = sealed(SECRET, "room/a", "room/a", &envelope("3", "mallory", "x"));
    feed(&mut s, &mut peer, publish("room/a", &hidden, 1, 6, false));
    assert_eq!(
        printed(&mut s),
        ["hi", "rejected ", "rejected ", "rejected "]
    );
    assert_eq!(acks(&mut peer).len(), 6, "everything is acknowledged");
    assert_eq!(
        s.summary().as_deref(),
        Some("3 payload(s) not shown: not sealed with the room's secret (1 plain, 2 forged)")
    );
}

#[test]
fn without_the_secret_an_encrypted_message_is_marked_never_shown_as_text() {
    let (mut s, mut peer) = connected(sub(Mode::Shown, &[], false, None));
    let hi = sealed(SECRET, "room/a", "room/a", &envelope("1", "bob", "hi"));
    feed(&mut s, &mut peer, publish("room/a", &hi, 1, 1, false));
    let out = String::from_utf8(std::mem::take(s.output())).expect("UTF-8");
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("JSON");
    assert_eq!(
        (v["text"].is_null(), v["encrypted"].as_bool()),
        (true, Some(true))
    );
    let b64 = v["payload_base64"].as_str().expect("payload_base64");
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("base64");
    assert_eq!(bytes, hi.as_bytes(), "exactly the payload, for relays");
    assert_eq!(s.summary(), None);
}

#[test]
fn encrypted_presence_opens_with_the_room_key_and_a_stranger_leave_is_ignored() {
    let (mut s, mut peer) = member(SECRET, &[]);
    let t = presence::topic("room/a", "c1");
    let join = r#"{"event":"join","from":"bob","ts":"2026-11-29T10:00:00.000Z"}"#;
    let sealed_join = sealed(SECRET, "room/a", &t, join);
    feed(&mut s, &mut peer, publish(&t, &sealed_join, 1, 1, false));
    // Anybody can publish an empty leave: it cannot be sealed, so it is not trusted.
    feed(&mut s, &mut peer, publish(&t, "", 1, 2, false));
    // A plain join is not shown; nor a sealed join copied to another client's topic.
    let t2 = presence::topic("room/a", "c2");
    feed(&mut s, &mut peer, publish(&t2, join, 1, 3, false));
    feed(&mut s, &mut peer, publish(&t2, &sealed_join, 1, 4, false));
    let leave = r#"{"event":"leave","from":"bob","ts":"2026-11-29T10:00:00.000Z"}"#;
    let sealed_leave = sealed(SECRET, "room/a", &t, leave);
    feed(&mut s, &mut peer, publish(&t, &sealed_leave, 0, 0, false));
    // The captured join published again after the will is old news; after a reconnect
    // chat-pub sends a join with a later time.
    feed(&mut s, &mut peer, publish(&t, &sealed_join, 1, 5, false));
    let rejoin = r#"{"event":"join","from":"bob","ts":"2026-11-29T10:30:00.000Z"}"#;
    let sealed_rejoin = sealed(SECRET, "room/a", &t, rejoin);
    feed(&mut s, &mut peer, publish(&t, &sealed_rejoin, 1, 6, false));
    feed(&mut s, &mut peer, publish(&t, &sealed_leave, 1, 9, false));
    // The goodbye, later; then the captured join published again is old news.
    let bye = r#"{"event":"leave","from":"bob","ts":"2026-11-29T11:00:00.000Z"}"#;
    feed(
        &mut s,
        &mut peer,
        publish(&t, &sealed(SECRET, "room/a", &t, bye), 0, 0, false),
    );
    feed(&mut s, &mut peer, publish(&t, &sealed_join, 1, 7, false));
    // A record from the far future (a member's trick to block a client) is ignored.
    let future = r#"{"event":"join","from":"bob","ts":"2999-01-01T00:00:00.000Z"}"#;
    feed(
        &mut s,
        &mut peer,
        publish(&t, &sealed(SECRET, "room/a", &t, future), 1, 8, false),
    );
    assert_eq!(
        printed(&mut s),
        ["join bob", "leave bob", "join bob", "leave bob"]
    );
    assert_eq!(
        s.summary().as_deref(),
        Some("2 payload(s) not shown: not sealed with the room's secret (1 plain, 1 forged)")
    );
}

#[test]
fn without_the_secret_encrypted_presence_shows_neither_join_nor_leave() {
    let (mut s, mut peer) = connected(sub(Mode::Shown, &[], false, None));
    let t = presence::topic("room/a", "c1");
    let join = String::from_utf8(presence::join_payload("bob")).expect("UTF-8");
    feed(
        &mut s,
        &mut peer,
        publish(&t, &sealed(SECRET, "room/a", &t, &join), 1, 1, false),
    );
    feed(&mut s, &mut peer, publish(&t, "", 1, 2, false));
    assert!(printed(&mut s).is_empty());
}

#[test]
fn a_replayed_raw_message_is_printed_once_and_a_decrypted_one_is_never_marked_encrypted() {
    let (mut s, mut peer) = member(SECRET, &[]);
    let raw = sealed(SECRET, "room/a", "room/a", "deploy");
    feed(&mut s, &mut peer, publish("room/a", &raw, 1, 1, false));
    feed(&mut s, &mut peer, publish("room/a", &raw, 0, 0, false));
    // A member's raw line that looks like a sealed payload is shown as the text it is.
    let inner = sealed(SECRET, "room/a", "room/a", "x");
    let looks = sealed(SECRET, "room/a", "room/a", &inner);
    feed(&mut s, &mut peer, publish("room/a", &looks, 1, 2, false));
    assert_eq!(printed(&mut s), ["deploy", inner.as_str()]);
}

/// chat-sub on `room/#` and the named room `named` (its key derived at start), in the
/// room encrypted with SECRET.
fn member_named(mode: Mode, count: Option<u64>) -> (SubState, Peer) {
    let secret = crate::room::seal::RoomSecret::new(SECRET.as_bytes().to_vec()).expect("secret");
    let filters = ["named".to_owned(), "room/#".to_owned()];
    let room = super::room::Room::new(crate::room::seal::Keyring::new(secret), &filters);
    connected(sub(mode, &[], false, count).with_room(Some(room)))
}

fn text(room: &str, id: &str, text: &str) -> String {
    sealed(SECRET, room, room, &envelope(id, "bob", text))
}

#[test]
fn a_named_room_prints_while_new_rooms_wait_for_their_keys_which_print_in_order() {
    let (mut s, mut peer) = member_named(Mode::Shown, None);
    let one = |n: usize| {
        publish(
            "room/new",
            &text("room/new", &n.to_string(), &format!("new {n}")),
            1,
            n as u16,
            false,
        )
    };
    super::feed(&mut s, &mut peer, one(1));
    let other = publish(
        "room/other",
        &text("room/other", "o", "other"),
        1,
        10,
        false,
    );
    super::feed(&mut s, &mut peer, other);
    super::feed(&mut s, &mut peer, one(2));
    // Junk on the waiting room waits too: its report keeps its place.
    super::feed(
        &mut s,
        &mut peer,
        publish("room/new", "plain", 1, 11, false),
    );
    super::feed(&mut s, &mut peer, one(3));
    let named = publish("named", &text("named", "n", "named"), 1, 12, false);
    super::feed(&mut s, &mut peer, named);
    assert_eq!(printed(&mut s), ["named"], "the named room did not wait");
    assert_eq!(
        s.summary().as_deref(),
        Some("5 payload(s) not shown: still waiting for their room's key at the end"),
        "what waits is not lost silently"
    );
    assert_eq!(acks(&mut peer).len(), 6, "all acknowledged at receipt");
    assert_eq!(
        s.wanted(),
        ["room/new", "room/other"],
        "each room asked for once"
    );
    assert!(s.wanted().is_empty(), "and only once");
    let key = |room: &str| {
        let secret =
            crate::room::seal::RoomSecret::new(SECRET.as_bytes().to_vec()).expect("secret");
        crate::room::seal::RoomKey::derive(&secret, room)
    };
    // The keys may come back in any order: each room keeps its own.
    assert_eq!(
        s.key_ready("room/other", key("room/other"), Instant::now()),
        Step::Continue
    );
    assert_eq!(printed(&mut s), ["other"]);
    s.key_ready("room/new", key("room/new"), Instant::now());
    assert_eq!(printed(&mut s), ["new 1", "new 2", "rejected ", "new 3"]);
    // With its key at hand, the room goes on at once.
    super::feed(&mut s, &mut peer, one(4));
    assert_eq!(printed(&mut s), ["new 4"]);
    assert!(s.wanted().is_empty());
}

#[test]
fn count_is_reached_by_a_message_that_waited() {
    let (mut s, mut peer) = member_named(Mode::Shown, Some(2));
    for n in 1..=3 {
        let p = publish("room/a", &text("room/a", &n.to_string(), "x"), 1, n, false);
        assert_eq!(super::feed(&mut s, &mut peer, p), Step::Continue);
    }
    assert_eq!(derive_wanted(&mut s), Step::Done);
    assert_eq!(printed(&mut s), ["x", "x"]);
}

#[test]
fn what_waits_is_bounded_and_the_rest_is_throttled_not_lost() {
    let (mut s, mut peer) = member_named(Mode::Shown, None);
    s.room.as_mut().expect("room").set_limits(Limits {
        room_messages: 2,
        all_messages: 3,
        ..LIMITS
    });
    let msg = |room: &str, n: u16| publish(room, &text(room, &n.to_string(), room), 1, n, false);
    for (room, n) in [
        ("room/a", 1),
        ("room/a", 2),
        ("room/a", 3),
        ("room/b", 4),
        ("room/c", 5),
    ] {
        super::feed(&mut s, &mut peer, msg(room, n));
    }
    // room/a holds two, room/b the third in all; room/a's third and room/c do not fit.
    assert_eq!(printed(&mut s), ["rejected ", "rejected "]);
    let summary = s.summary().expect("a summary");
    assert!(summary.contains("(2 throttled)"), "{summary}");
    assert_eq!(derive_wanted(&mut s), Step::Continue);
    assert_eq!(printed(&mut s), ["room/a", "room/a", "room/b"]);
    assert!(s.wanted().is_empty(), "no key asked for what did not fit");
    // Bytes are bounded too.
    let (mut s, mut peer) = member_named(Mode::Shown, None);
    s.room.as_mut().expect("room").set_limits(Limits {
        room_bytes: 100,
        ..LIMITS
    });
    super::feed(&mut s, &mut peer, msg("room/a", 1));
    assert_eq!(
        printed(&mut s),
        ["rejected "],
        "larger than a room may hold"
    );
}

#[test]
fn over_the_budget_a_new_room_is_throttled_and_asks_for_no_key() {
    let (mut s, mut peer) = member_named(Mode::Shown, None);
    let burst = NEW_KEYS_BURST as u16;
    // Well-formed on every topic (it would not open but on room/0: a stranger's flood).
    let payload = text("room/0", "1", "x");
    let t0 = Instant::now();
    for n in 0..=burst {
        let p = publish(&format!("room/{n}"), &payload, 0, 0, false);
        s.on_packet(p, &mut peer.tx(), t0, SystemTime::now());
    }
    assert_eq!(s.wanted().len(), burst as usize);
    assert_eq!(printed(&mut s), ["rejected "], "the one over the burst");
}

#[test]
fn who_waits_for_presence_records_whose_keys_are_being_derived() {
    let (mut s, mut peer) = member_named(Mode::Who, None);
    let t0 = Instant::now();
    let granted = Inbound::SubAck {
        pkid: 2,
        codes: vec![1],
    };
    s.on_packet(granted, &mut peer.tx(), t0, SystemTime::now());
    assert_eq!(s.who_deadline(), Some(t0 + WHO_QUIET));
    let t = presence::topic("room/a", "c1");
    let join = r#"{"event":"join","from":"bob","ts":"2026-11-29T10:00:00.000Z"}"#;
    let p = publish(&t, &sealed(SECRET, "room/a", &t, join), 1, 1, true);
    s.on_packet(p, &mut peer.tx(), t0, SystemTime::now());
    assert_eq!(
        s.who_deadline(),
        None,
        "no deadline while a record waits for its key"
    );
    let t1 = t0 + Duration::from_secs(2);
    let secret = crate::room::seal::RoomSecret::new(SECRET.as_bytes().to_vec()).expect("secret");
    let key = crate::room::seal::RoomKey::derive(&secret, "room/a");
    s.key_ready("room/a", key, t1);
    assert_eq!(s.who_deadline(), Some(t1 + WHO_QUIET), "heard when opened");
    assert_eq!(s.print_roster(), None);
    assert_eq!(printed(&mut s), ["online bob"]);
}

#[test]
fn what_waits_survives_a_reconnection_and_a_redelivery_prints_once() {
    let (mut s, mut peer) = member_named(Mode::Shown, None);
    let hi = publish("room/a", &text("room/a", "1", "hi"), 1, 1, false);
    super::feed(&mut s, &mut peer, hi.clone());
    let lost = LinkError::Closed;
    let _ = s.lost(&lost, "c", Instant::now());
    let mut again = Peer::new(Version::V311, None, false);
    s.reconnected(&mut again.tx(), Instant::now());
    super::feed(&mut s, &mut again, hi);
    assert!(printed(&mut s).is_empty());
    derive_wanted(&mut s);
    assert_eq!(printed(&mut s), ["hi"]);
}

/// `record` signed by `who` and sealed in format version 2 for `topic` of `room`.
fn signed(who: &crate::room::sign::Identity, room: &str, topic: &str, record: &str) -> String {
    let secret = crate::room::seal::RoomSecret::new(SECRET.as_bytes().to_vec()).expect("secret");
    let key = crate::room::seal::RoomKey::derive(&secret, room);
    let item = crate::room::sign::Item {
        room,
        topic,
        record: record.as_bytes(),
    };
    let out = crate::room::sign::seal_one(who, &key, item).expect("seal");
    String::from_utf8(out).expect("ASCII")
}

/// Each printed JSON line's (from, verified, fingerprint, key_changed, new_key).
fn marks(s: &mut SubState) -> Vec<(String, bool, String, bool, bool)> {
    let out = String::from_utf8(std::mem::take(s.output())).expect("UTF-8");
    out.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("JSON");
            (
                v["from"].as_str().unwrap_or("").to_owned(),
                v["verified"].as_bool().expect("verified"),
                v["fingerprint"].as_str().unwrap_or("").to_owned(),
                v["key_changed"].as_bool().unwrap_or(false),
                v["new_key"].as_bool().unwrap_or(false),
            )
        })
        .collect()
}

#[test]
fn three_members_each_signed_and_every_forgery_of_a_nick_is_marked() {
    use crate::room::sign::Identity;
    let [alice, bob, carol] = [1u8, 2, 3].map(|i| Identity::from_seed(&[i; 32]));
    let fp = |who: &Identity| who.fingerprint().to_string();
    let (mut s, mut peer) = member(SECRET, &[]);
    let say = |s: &mut SubState, peer: &mut Peer, who: &Identity, id: &str, nick: &str, pkid| {
        let p = signed(who, "room/a", "room/a", &envelope(id, nick, "x"));
        feed(s, peer, publish("room/a", &p, 1, pkid, false));
    };
    say(&mut s, &mut peer, &alice, "1", "alice", 1);
    say(&mut s, &mut peer, &bob, "2", "bob", 2);
    say(&mut s, &mut peer, &alice, "3", "alice", 3);
    // Carol (a member: she has the secret) speaks as alice, then as bob, again and again.
    say(&mut s, &mut peer, &carol, "4", "alice", 4);
    say(&mut s, &mut peer, &carol, "5", "bob", 5);
    say(&mut s, &mut peer, &carol, "6", "alice", 6);
    say(&mut s, &mut peer, &carol, "7", "carol", 7);
    // An unsigned (version 1) message under bob's nick.
    let v1 = sealed(SECRET, "room/a", "room/a", &envelope("8", "bob", "x"));
    feed(&mut s, &mut peer, publish("room/a", &v1, 1, 8, false));
    let row = |nick: &str, verified, who: &Identity, changed, new| {
        (nick.to_owned(), verified, fp(who), changed, new)
    };
    assert_eq!(
        marks(&mut s),
        [
            row("alice", false, &alice, false, true),
            row("bob", false, &bob, false, true),
            row("alice", true, &alice, false, false),
            row("alice", false, &carol, true, false),
            row("bob", false, &carol, true, false),
            row("alice", false, &carol, true, false),
            row("carol", false, &carol, false, true),
            ("bob".to_owned(), false, String::new(), false, false),
        ]
    );
    let pins: Vec<_> = s.take_pins().into_iter().map(|p| p.nick).collect();
    assert_eq!(pins, ["alice", "bob", "carol"]);
}

#[test]
fn a_record_with_a_bad_signature_is_not_shown_and_is_counted() {
    use crate::room::sign::Identity;
    let (alice, mallory) = (Identity::from_seed(&[1; 32]), Identity::from_seed(&[9; 32]));
    let (mut s, mut peer) = member(SECRET, &[]);
    // Mallory signs, then puts alice's key in place of hers: the signature fails.
    let secret = crate::room::seal::RoomSecret::new(SECRET.as_bytes().to_vec()).expect("secret");
    let key = crate::room::seal::RoomKey::derive(&secret, "room/a");
    let record = envelope("1", "alice", "pay mallory");
    let item = crate::room::sign::Item {
        room: "room/a",
        topic: "room/a",
        record: record.as_bytes(),
    };
    let mut plain = mallory.sign(&[item]).remove(0);
    plain[2..34].copy_from_slice(&alice.public());
    let v = crate::room::seal::Version::V2;
    let forged = crate::room::seal::seal_as(v, &key, "room/a", &plain).expect("seal");
    let forged = String::from_utf8(forged).expect("ASCII");
    feed(&mut s, &mut peer, publish("room/a", &forged, 1, 1, false));
    assert_eq!(printed(&mut s), ["rejected "]);
    assert_eq!(
        s.summary().as_deref(),
        Some(
            "1 payload(s) not shown: not sealed with the room's secret, or not signed right \
             (1 bad-signature)"
        )
    );
}

#[test]
fn signed_presence_is_marked_like_messages_and_who_shows_fingerprints() {
    use crate::room::sign::Identity;
    let (alice, carol) = (Identity::from_seed(&[1; 32]), Identity::from_seed(&[3; 32]));
    let (mut s, mut peer) = member(SECRET, &[]);
    let say = signed(&alice, "room/a", "room/a", &envelope("1", "alice", "x"));
    feed(&mut s, &mut peer, publish("room/a", &say, 1, 1, false));
    let t = presence::topic("room/a", "c9");
    let join = r#"{"event":"join","from":"alice","ts":"2026-11-29T10:00:00.000Z"}"#;
    let forged_join = signed(&carol, "room/a", &t, join);
    feed(&mut s, &mut peer, publish(&t, &forged_join, 1, 2, false));
    let m = marks(&mut s);
    assert_eq!(
        m[1],
        (
            "alice".into(),
            false,
            carol.fingerprint().to_string(),
            true,
            false
        )
    );
}

#[test]
fn a_leave_signed_by_another_key_than_the_join_is_marked_and_changes_nothing() {
    use crate::room::sign::Identity;
    let (alice, carol) = (Identity::from_seed(&[1; 32]), Identity::from_seed(&[3; 32]));
    let (mut s, mut peer) = member(SECRET, &[]);
    let t = presence::topic("room/a", "alice-1");
    let join = r#"{"event":"join","from":"alice","ts":"2026-11-29T10:00:00.000Z"}"#;
    let leave = r#"{"event":"leave","from":"carol","ts":"2026-11-29T10:00:01.000Z"}"#;
    feed(
        &mut s,
        &mut peer,
        publish(&t, &signed(&alice, "room/a", &t, join), 1, 1, false),
    );
    feed(
        &mut s,
        &mut peer,
        publish(&t, &signed(&carol, "room/a", &t, leave), 1, 2, false),
    );
    let m = marks(&mut s);
    assert_eq!(m.len(), 2);
    assert_eq!(
        m[1],
        (
            "alice".into(),
            false,
            carol.fingerprint().to_string(),
            true,
            false
        )
    );
    assert_eq!(s.view.online().len(), 1, "alice is still online");
}

#[test]
fn retained_presence_pins_nothing() {
    use crate::room::sign::Identity;
    let carol = Identity::from_seed(&[3; 32]);
    let (mut s, mut peer) = member(SECRET, &[]);
    let t = presence::topic("room/a", "x-1");
    let join = r#"{"event":"join","from":"alice","ts":"2026-11-29T10:00:00.000Z"}"#;
    feed(
        &mut s,
        &mut peer,
        publish(&t, &signed(&carol, "room/a", &t, join), 1, 1, true),
    );
    assert!(s.take_pins().is_empty());
}

#[test]
fn another_members_record_with_a_copied_id_is_shown_marked_not_taken_for_a_repeat() {
    use crate::room::sign::Identity;
    let (alice, carol) = (Identity::from_seed(&[1; 32]), Identity::from_seed(&[3; 32]));
    let (mut s, mut peer) = member(SECRET, &[]);
    let say = |who: &Identity, text: &str| {
        signed(who, "room/a", "room/a", &envelope("same-id", "alice", text))
    };
    feed(
        &mut s,
        &mut peer,
        publish("room/a", &say(&carol, "first"), 1, 1, false),
    );
    feed(
        &mut s,
        &mut peer,
        publish("room/a", &say(&alice, "real"), 1, 2, false),
    );
    feed(
        &mut s,
        &mut peer,
        publish("room/a", &say(&alice, "real again"), 1, 3, false),
    );
    let m = marks(&mut s);
    let who: Vec<_> = m.iter().map(|r| r.2.clone()).collect();
    let fp = |i: &Identity| i.fingerprint().to_string();
    assert_eq!(
        who,
        [fp(&carol), fp(&alice)],
        "alice's own repeat is still a repeat"
    );
}

#[test]
fn a_leave_is_shown_only_under_a_join_it_ends_and_with_that_joins_mark() {
    use crate::room::sign::Identity;
    let (alice, carol) = (Identity::from_seed(&[1; 32]), Identity::from_seed(&[3; 32]));
    let (mut s, mut peer) = member(SECRET, &[]);
    let record = |event: &str, nick: &str, sec: u8| {
        format!(r#"{{"event":"{event}","from":"{nick}","ts":"2026-11-29T10:00:0{sec}.000Z"}}"#)
    };
    // alice speaks (her key is pinned), and joins on her own topic.
    let hi = signed(&alice, "room/a", "room/a", &envelope("1", "alice", "hi"));
    feed(&mut s, &mut peer, publish("room/a", &hi, 1, 1, false));
    let a = presence::topic("room/a", "alice-1");
    let join = signed(&alice, "room/a", &a, &record("join", "alice", 1));
    feed(&mut s, &mut peer, publish(&a, &join, 1, 2, false));
    // carol's own leave on a topic nobody joined: not shown (under whose nick?).
    let nobody = presence::topic("room/a", "alice-2");
    let leave = signed(&carol, "room/a", &nobody, &record("leave", "carol", 2));
    feed(&mut s, &mut peer, publish(&nobody, &leave, 1, 3, false));
    // An unsigned leave on alice's topic: marked, and alice stays online.
    let v1 = sealed(SECRET, "room/a", &a, &record("leave", "alice", 3));
    feed(&mut s, &mut peer, publish(&a, &v1, 1, 4, false));
    // carol joins as alice on a topic of her own (changed key), then leaves it.
    let c = presence::topic("room/a", "carol-1");
    let fake = signed(&carol, "room/a", &c, &record("join", "alice", 4));
    feed(&mut s, &mut peer, publish(&c, &fake, 1, 5, false));
    let bye = signed(&carol, "room/a", &c, &record("leave", "carol", 5));
    feed(&mut s, &mut peer, publish(&c, &bye, 1, 6, false));
    let out = String::from_utf8(std::mem::take(s.output())).expect("UTF-8");
    let seen: Vec<(String, String, bool, bool, bool)> = out
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("JSON");
            (
                v["event"].as_str().unwrap_or("message").to_owned(),
                v["from"].as_str().unwrap_or("").to_owned(),
                v["verified"].as_bool().unwrap_or(false),
                v["key_changed"].as_bool().unwrap_or(false),
                v["unsigned"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    let row = |e: &str, n: &str, v, k, u| (e.to_owned(), n.to_owned(), v, k, u);
    assert_eq!(
        seen,
        [
            row("message", "alice", false, false, false),
            row("join", "alice", true, false, false),
            row("leave", "alice", false, false, true),
            row("join", "alice", false, true, false),
            row("leave", "alice", false, true, false),
        ]
    );
    let online: Vec<_> = s.view.online().iter().map(|o| o.1.to_owned()).collect();
    assert_eq!(online, ["alice"], "alice's own join still stands");
}
