//! The codec and the engine fed bytes no client should send.

use super::tests::t0;
use super::{Engine, In, codec};
use bytes::BytesMut;
use std::time::Duration;

/// Hostile bytes: valid client streams of both versions (CONNECT, SUBSCRIBE, PUBLISH at
/// every QoS, acknowledgements, PINGREQ, DISCONNECT), cut short and with bytes changed at
/// random, are read and handed to one engine. Whatever they say, nothing may panic, and
/// no connection outlives its end.
#[test]
fn mangled_packets_never_panic_the_engine() {
    use crate::mqtt::wire::{
        AckKind, ConnectSpec, PubFlags, Version as W, encode_ack, encode_connect,
        encode_disconnect, encode_ping, encode_publish, encode_subscribe,
    };
    let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut e = Engine::new();
    for (round, w) in (0..4000u64).zip([W::V311, W::V5].into_iter().cycle()) {
        let mut b = BytesMut::new();
        let spec = ConnectSpec {
            client_id: format!("c{}", round % 50),
            keepalive: 30,
            clean_start: round % 3 == 0,
            session_expiry: Some((round % 4) as u32),
            max_packet_in: 1000,
            login: None,
            will: None,
        };
        encode_connect(w, &spec, &mut b);
        encode_subscribe(
            w,
            1,
            &["t/#".into(), "t/+".into()],
            (round % 3) as u8,
            round % 2 == 0,
            &mut b,
        );
        for qos in 0..3 {
            let f = PubFlags {
                qos,
                retain: round % 5 == 0,
                dup: false,
                pkid: 7,
            };
            encode_publish(w, &mut b, b"t/x", b"payload", &[], f);
        }
        for kind in [
            AckKind::PubAck,
            AckKind::PubRec,
            AckKind::PubRel,
            AckKind::PubComp,
        ] {
            encode_ack(kind, (next() % 4) as u16, &mut b);
        }
        encode_ping(&mut b);
        if round % 7 == 0 {
            encode_disconnect(&mut b);
        }
        let mut bytes = b.to_vec();
        for _ in 0..(next() % 4) {
            let i = (next() as usize) % bytes.len();
            bytes[i] = next() as u8;
        }
        bytes.truncate(bytes.len() - (next() as usize % 8).min(bytes.len()));
        let conn = round;
        let mut buf = BytesMut::from(&bytes[..]);
        let mut version = None;
        loop {
            match codec::read(&mut buf, version, 1 << 16) {
                Ok(Some(mut p)) => {
                    if let In::Connect(h) = &mut p {
                        h.judged = true;
                        version = Some(h.version);
                    }
                    e.handle(conn, p, t0());
                }
                Ok(None) => break,
                Err(why) => {
                    e.bad(conn, &why, t0());
                    break;
                }
            }
        }
        if round % 2 == 0 {
            e.lost(conn, t0());
        }
        e.tick(t0() + Duration::from_secs(round % 10));
        e.actions().for_each(drop);
    }
    // Once the odd rounds' connections end too, the engine holds none.
    (1..4000).step_by(2).for_each(|conn| e.lost(conn, t0()));
    assert_eq!(e.clients(), 0);
}
