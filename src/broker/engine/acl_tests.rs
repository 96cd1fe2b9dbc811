//! The engine with an ACL (`--acl-file`) and logins judged by the driver: refused
//! CONNECTs, PUBLISHes and SUBSCRIBEs, and deliveries only of what a client may read.

use std::sync::Arc;

use super::codec::Version;
use super::codes::ConnectRefusal;
use super::session_tests::will;
use super::tests::*;
use super::{Action, Engine, Record};
use crate::broker::auth::acl::Acl;

const ACL: &str = "\
user alice
topic readwrite rooms/alice/#
topic read rooms/lobby
topic deny rooms/alice/secret

user bob
topic readwrite rooms/lobby
topic readwrite rooms/bob/#

user admin
topic write rooms/#
";

fn engine() -> Engine {
    let mut e = Engine::new();
    e.set_acl(Some(Arc::new(Acl::parse(ACL).expect("the ACL parses"))));
    e
}

/// Connects `who` as user `who` on connection `conn`.
fn login(e: &mut Engine, conn: u64, who: &str, v: Version) {
    let mut h = hello(v, who, true, 0);
    h.user = Some(Arc::from(who));
    e.handle(conn, super::codec::In::Connect(Box::new(h)), t0());
    assert_eq!(
        sent(e, conn, v),
        vec![Got::ConnAck {
            present: false,
            code: 0
        }]
    );
}

/// Asserts that connection `conn` got a CONNACK refusing it with `code`, and was closed.
fn assert_refused(e: &mut Engine, conn: u64, v: Version, code: u8) {
    let ack = Got::ConnAck {
        present: false,
        code,
    };
    assert_eq!(sent(e, conn, v), vec![ack, Got::Other(0)]);
}

fn topics(got: &[Got]) -> Vec<String> {
    (got.iter())
        .filter_map(|g| match g {
            Got::Publish { topic, .. } => Some(topic.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_refusal_from_the_driver_is_the_connacks() {
    let mut e = engine();
    for (conn, v, refusal, code) in [
        (1, Version::V5, ConnectRefusal::BadUsernameOrPassword, 0x86),
        (2, Version::V5, ConnectRefusal::NotAuthorized, 0x87),
        (3, Version::V311, ConnectRefusal::BadUsernameOrPassword, 4),
        (4, Version::V311, ConnectRefusal::NotAuthorized, 5),
    ] {
        let mut h = hello(v, "alice", true, 0);
        h.refused = Some(refusal);
        e.handle(conn, super::codec::In::Connect(Box::new(h)), t0());
        assert_refused(&mut e, conn, v, code);
    }
    assert_eq!(e.clients(), 0);
}

#[test]
fn a_will_the_client_may_not_write_refuses_the_connect() {
    let mut e = engine();
    let mut h = hello(Version::V5, "alice", true, 0);
    h.user = Some(Arc::from("alice"));
    h.will = will("rooms/bob/x", 0);
    e.handle(1, super::codec::In::Connect(Box::new(h)), t0());
    assert_refused(&mut e, 1, Version::V5, 0x87);
}

#[test]
fn a_refused_publish_is_answered_0x87_under_5_and_acknowledged_under_3_1_1() {
    let mut e = engine();
    login(&mut e, 1, "alice", Version::V5);
    login(&mut e, 2, "bob", Version::V311);
    login(&mut e, 3, "bob-reader", Version::V5);
    subscribe(&mut e, 2, vec![sub("rooms/#", 1)], None);
    let _ = sent(&mut e, 2, Version::V311);
    // alice may not write the lobby (read only), nor her secret topic (denied).
    e.handle(1, publish(7, msg("rooms/lobby", "no", 1, false)), t0());
    e.handle(
        1,
        publish(8, msg("rooms/alice/secret", "no", 2, false)),
        t0(),
    );
    e.handle(1, publish(0, msg("rooms/lobby", "no", 0, false)), t0());
    let got: Vec<Vec<u8>> = (e.actions())
        .filter_map(|a| match a {
            Action::Send(1, f) => Some(f.to_bytes().to_vec()),
            _ => None,
        })
        .collect();
    assert_eq!(
        got,
        vec![vec![0x40, 4, 0, 7, 0x87, 0], vec![0x50, 4, 0, 8, 0x87, 0]]
    );
    // bob (3.1.1) may not write alice's room: acknowledged, and dropped.
    e.handle(2, publish(9, msg("rooms/alice/x", "no", 1, false)), t0());
    e.handle(2, publish(10, msg("rooms/bob/x", "yes", 1, false)), t0());
    let got = sent(&mut e, 2, Version::V311);
    assert_eq!(topics(&got), vec!["rooms/bob/x"], "{got:?}");
    assert!(got.contains(&Got::Other(4)), "PUBACKs: {got:?}");
}

#[test]
fn a_subscription_that_can_read_nothing_is_refused_and_one_that_can_read_some_gets_that() {
    let mut e = engine();
    login(&mut e, 1, "alice", Version::V5);
    login(&mut e, 2, "admin", Version::V5);
    e.handle(
        1,
        super::codec::In::Subscribe {
            pkid: 5,
            filters: vec![
                sub("rooms/bob/#", 1),
                sub("rooms/#", 1),
                sub("rooms/alice/secret", 1),
            ],
            id: None,
        },
        t0(),
    );
    let suback: Vec<Vec<u8>> = (e.actions())
        .filter_map(|a| match a {
            Action::Send(1, f) => Some(f.to_bytes().to_vec()),
            _ => None,
        })
        .collect();
    assert_eq!(suback, vec![vec![0x90, 6, 0, 5, 0, 0x87, 1, 0x87]]);
    for t in [
        "rooms/bob/x",
        "rooms/alice/secret",
        "rooms/lobby",
        "rooms/alice/y",
    ] {
        e.handle(2, publish(0, msg(t, "m", 0, false)), t0());
    }
    let got = sent(&mut e, 1, Version::V5);
    assert_eq!(topics(&got), vec!["rooms/lobby", "rooms/alice/y"]);
}

#[test]
fn retained_messages_are_read_by_the_same_rules() {
    let mut e = engine();
    login(&mut e, 2, "bob", Version::V5);
    for t in ["rooms/bob/kept", "rooms/lobby"] {
        e.handle(2, publish(0, msg(t, "kept", 0, true)), t0());
    }
    login(&mut e, 1, "alice", Version::V5);
    subscribe(&mut e, 1, vec![sub("rooms/#", 0)], None);
    let got = sent(&mut e, 1, Version::V5);
    assert_eq!(topics(&got), vec!["rooms/lobby"], "{got:?}");
}

#[test]
fn an_absent_session_reads_by_its_users_rules_and_keeps_them_across_a_restart() {
    let mut e = engine();
    e.set_durable();
    let mut h = hello(Version::V5, "alice-laptop", false, 3600);
    h.user = Some(Arc::from("alice"));
    e.handle(1, super::codec::In::Connect(Box::new(h)), t0());
    subscribe(&mut e, 1, vec![sub("rooms/#", 1)], None);
    e.handle(
        1,
        super::codec::In::Disconnect {
            with_will: false,
            session_expiry: None,
        },
        t0(),
    );
    let mut records = Vec::new();
    (e.actions()).for_each(|a| {
        if let Action::Store(r) = a {
            records.push(r)
        }
    });
    assert!(
        records.contains(&Record::User {
            client: Arc::from("alice-laptop"),
            user: Some(Arc::from("alice"))
        }),
        "{records:?}"
    );
    // After a restart, the replayed session still reads as alice.
    let mut again = engine();
    again.set_durable();
    for r in records {
        again.restore(r, t0());
    }
    again.restored();
    login(&mut again, 2, "admin", Version::V5);
    for t in ["rooms/bob/x", "rooms/alice/x"] {
        again.handle(2, publish(1, msg(t, "m", 1, false)), t0());
    }
    let _ = again.actions().count();
    let mut h = hello(Version::V5, "alice-laptop", false, 3600);
    h.user = Some(Arc::from("alice"));
    again.handle(3, super::codec::In::Connect(Box::new(h)), t0());
    let got = sent(&mut again, 3, Version::V5);
    assert_eq!(topics(&got), vec!["rooms/alice/x"], "{got:?}");
}

#[test]
fn another_users_login_under_a_client_id_is_refused_and_leaves_the_session_alone() {
    let mut e = engine();
    let mut h = hello(Version::V5, "shared-id", false, 3600);
    h.user = Some(Arc::from("alice"));
    e.handle(1, super::codec::In::Connect(Box::new(h)), t0());
    subscribe(&mut e, 1, vec![sub("rooms/alice/#", 1)], None);
    e.handle(
        1,
        super::codec::In::Disconnect {
            with_will: false,
            session_expiry: None,
        },
        t0(),
    );
    login(&mut e, 2, "admin", Version::V5);
    e.handle(
        2,
        publish(1, msg("rooms/alice/x", "for alice", 1, false)),
        t0(),
    );
    let _ = e.actions().count();
    // bob, under alice's client id: refused, and her session is as it was.
    let mut h = hello(Version::V5, "shared-id", false, 3600);
    h.user = Some(Arc::from("bob"));
    e.handle(3, super::codec::In::Connect(Box::new(h)), t0());
    assert_refused(&mut e, 3, Version::V5, 0x87);
    let mut h = hello(Version::V5, "shared-id", false, 3600);
    h.user = Some(Arc::from("alice"));
    e.handle(4, super::codec::In::Connect(Box::new(h)), t0());
    let got = sent(&mut e, 4, Version::V5);
    assert_eq!(topics(&got), vec!["rooms/alice/x"], "{got:?}");
}

#[test]
fn a_connect_the_driver_did_not_judge_is_refused() {
    let mut e = Engine::new();
    let mut h = hello(Version::V5, "anyone", true, 0);
    h.judged = false;
    e.handle(1, super::codec::In::Connect(Box::new(h)), t0());
    assert_refused(&mut e, 1, Version::V5, 0x87);
}

#[test]
fn a_shared_subscription_gives_each_message_to_a_member_that_may_read_it() {
    let mut e = engine();
    login(&mut e, 1, "alice", Version::V5);
    login(&mut e, 2, "bob", Version::V5);
    login(&mut e, 3, "admin", Version::V5);
    // Both may read the lobby; only bob may read rooms/bob/x.
    for conn in [1, 2] {
        subscribe(&mut e, conn, vec![sub("$share/g/rooms/#", 0)], None);
    }
    let _ = e.actions().count();
    for _ in 0..4 {
        e.handle(3, publish(0, msg("rooms/bob/x", "m", 0, false)), t0());
    }
    let (mut alice, mut bob) = (0, 0);
    for a in e.actions() {
        match a {
            Action::Send(1, _) => alice += 1,
            Action::Send(2, _) => bob += 1,
            _ => {}
        }
    }
    assert_eq!((alice, bob), (0, 4), "bob gets every one, alice none");
}

#[test]
fn a_user_the_new_password_file_lacks_is_disconnected() {
    let mut e = engine();
    for (conn, who, by_password) in [(1, "alice", true), (2, "bob", true), (3, "carol", false)] {
        let mut h = hello(Version::V5, who, true, 0);
        (h.user, h.by_password) = (Some(Arc::from(who)), by_password);
        e.handle(conn, super::codec::In::Connect(Box::new(h)), t0());
    }
    let _ = e.actions().count();
    // The new file has bob only; carol came by her certificate, not the file.
    e.revoke(|u| u == "bob", t0());
    assert_eq!(
        sent(&mut e, 1, Version::V5),
        vec![Got::Other(14), Got::Other(0)]
    );
    assert_eq!(e.clients(), 2);
}
