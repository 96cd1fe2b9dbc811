//! Entry points for the fuzz targets under `fuzz/` (cargo-fuzz), kept in the library so
//! that they reach the engine's private parts; not an API. Each takes the fuzzer's bytes
//! and panics on a broken rule, which the fuzzer reports as a finding.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use bytes::BytesMut;

use super::engine::{Action, ConnId, Engine, In, Limits, Record, codec};
use super::store::format::{self, Clock, MAGIC};
use crate::mqtt::wire::{
    self, AckKind, ConnectSpec, PubFlags, Version as W, encode_ack, encode_connect,
    encode_disconnect, encode_ping, encode_publish, encode_subscribe,
};

pub(crate) mod acl;
pub(crate) mod passwd;
pub(crate) mod store;
pub use acl::acl;
pub use passwd::passwd;
pub use store::store;

/// The codecs of both sides, both versions: the broker's reader of client packets and
/// the tools' reader of broker packets. Any bytes: no panic, and a packet read takes
/// bytes from the buffer (no endless loop).
pub fn codec(data: &[u8]) {
    for version in [None, Some(codec::Version::V311), Some(codec::Version::V5)] {
        let mut buf = BytesMut::from(data);
        while !buf.is_empty() {
            let before = buf.len();
            match codec::read(&mut buf, version, 1 << 16) {
                Ok(Some(_)) => assert!(buf.len() < before, "a packet read took no bytes"),
                Ok(None) | Err(_) => break,
            }
        }
    }
    for version in [W::V311, W::V5] {
        let mut buf = BytesMut::from(data);
        while !buf.is_empty() {
            let before = buf.len();
            let _ = wire::peek_oversized(&buf, 1 << 16);
            match wire::decode(version, &mut buf, 1 << 16) {
                Ok(Some(_)) => assert!(buf.len() < before, "a packet read took no bytes"),
                Ok(None) | Err(_) => break,
            }
        }
    }
}

/// Reads the fuzzer's bytes as a script of what clients do.
struct Script<'a> {
    data: &'a [u8],
}

impl Script<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.data.split_first()?;
        self.data = rest;
        Some(b)
    }
}

const FILTERS: [&str; 8] = [
    "t/#",
    "t/+",
    "t/a",
    "#",
    "+/b",
    "$share/g/t/#",
    "$share/h/#",
    "x",
];
const TOPICS: [&str; 4] = ["t/a", "t/b", "x", "t"];

/// One engine driven by up to six connections doing what the script says: connecting
/// (both versions, clean or not, with session expiries and wills), subscribing (shared
/// subscriptions too), publishing at every QoS, acknowledging, sending raw bytes, losing
/// their connection, and time passing; with small limits, the byte budget included.
/// Checked after every step: nothing panics, the
/// sessions' accounting holds ([`Engine::audit`]), and a PUBLISH goes only to a client
/// that has subscribed to a filter matching its topic. The engine is durable: at the end,
/// its records, written and read back by the store's format and replayed into a new
/// engine, make an engine with the same durable state ([`same_durable_state`]).
pub fn engine(data: &[u8]) {
    let limits = Limits {
        max_connections: 5,
        max_queued: 64,
        max_queued_bytes: 4096,
        persistent_expiry: Some(Duration::from_secs(30)),
    };
    let mut e = Engine::with_limits(limits);
    e.set_durable();
    let clock = Clock::now();
    let mut disk = MAGIC.to_vec();
    format::encode(&Record::SnapshotEnd, &clock, &mut disk);
    let t0 = Instant::now();
    let mut now = t0;
    let mut s = Script { data };
    // The connection numbers in use per slot, their version, and their client id.
    let mut next_conn: ConnId = 1;
    let mut slots: [Option<(ConnId, W, usize)>; 6] = [None; 6];
    // Every filter each client id ever subscribed to.
    let mut subscribed: HashMap<usize, HashSet<&str>> = HashMap::new();
    let mut conns: HashMap<ConnId, usize> = HashMap::new();
    while let Some(op) = s.byte() {
        let slot = usize::from(s.byte().unwrap_or(0)) % slots.len();
        let arg = s.byte().unwrap_or(0);
        let mut bytes = BytesMut::new();
        match op % 8 {
            0 => {
                let version = if arg & 1 == 0 { W::V311 } else { W::V5 };
                let client = usize::from(arg >> 1) % 5;
                let spec = ConnectSpec {
                    client_id: format!("c{client}"),
                    keepalive: 30,
                    clean_start: arg & 0x40 != 0,
                    session_expiry: Some(u32::from(arg >> 4)),
                    max_packet_in: 1 << 16,
                    login: None,
                    will: (arg & 0x80 != 0).then(|| wire::Will {
                        topic: "t/will".into(),
                        payload: b"gone".to_vec(),
                        qos: arg % 3,
                        retain: arg & 2 != 0,
                    }),
                };
                encode_connect(version, &spec, &mut bytes);
                let conn = next_conn;
                next_conn += 1;
                if let Some((old, ..)) = slots[slot].replace((conn, version, client)) {
                    e.lost(old, now);
                }
                conns.insert(conn, client);
            }
            1 => {
                let filter = FILTERS[usize::from(arg) % FILTERS.len()];
                if let Some((_, version, client)) = slots[slot] {
                    subscribed.entry(client).or_default().insert(filter);
                    encode_subscribe(version, 1, &[filter.into()], arg % 3, false, &mut bytes);
                }
            }
            2 => {
                let topic = TOPICS[usize::from(arg) % TOPICS.len()];
                let f = PubFlags {
                    qos: (arg >> 2) % 3,
                    retain: arg & 0x20 != 0,
                    dup: false,
                    pkid: u16::from(arg >> 4) + 1,
                };
                if let Some((_, version, _)) = slots[slot] {
                    encode_publish(version, &mut bytes, topic.as_bytes(), b"p", &[], f);
                }
            }
            3 => {
                let kinds = [
                    AckKind::PubAck,
                    AckKind::PubRec,
                    AckKind::PubRel,
                    AckKind::PubComp,
                ];
                encode_ack(kinds[usize::from(arg) % 4], u16::from(arg >> 2), &mut bytes);
            }
            4 => {
                let n = usize::from(arg) % 48;
                for _ in 0..n {
                    bytes.extend_from_slice(&[s.byte().unwrap_or(0)]);
                }
            }
            5 => {
                if let Some((conn, ..)) = slots[slot].take() {
                    e.lost(conn, now);
                }
            }
            6 => match arg % 3 {
                0 => encode_disconnect(&mut bytes),
                1 => encode_ping(&mut bytes),
                _ => e.shutdown(now),
            },
            _ => {
                now += Duration::from_secs(u64::from(arg));
                e.tick(now);
            }
        }
        if let Some((conn, version, _)) = slots[slot].filter(|_| !bytes.is_empty()) {
            feed(&mut e, conn, version, &mut bytes, now);
        }
        e.audit()
            .unwrap_or_else(|why| panic!("the engine's accounting: {why}"));
        for a in e.actions() {
            let frame = match a {
                Action::Store(rec) => {
                    format::encode(&rec, &clock, &mut disk);
                    continue;
                }
                Action::Send(conn, frame) => (conn, frame),
                Action::Close(_) => continue,
            };
            let (conn, frame) = frame;
            let b = frame.to_bytes();
            if b[0] >> 4 != 3 {
                continue;
            }
            let topic = publish_topic(&b).unwrap_or_else(|| panic!("a bad PUBLISH: {b:?}"));
            let client = conns.get(&conn).copied();
            let filters = client.and_then(|c| subscribed.get(&c));
            let matched = filters.is_some_and(|fs| {
                fs.iter().any(|f| {
                    let f = match f.strip_prefix("$share/") {
                        Some(rest) => rest.split_once('/').map_or("", |(_, f)| f),
                        None => f,
                    };
                    crate::broker::engine::matches(f, &topic)
                })
            });
            assert!(
                matched,
                "{topic} went to connection {conn} (client {client:?}), which subscribed to \
                 {filters:?}"
            );
        }
    }
    let mut replayed = Engine::with_limits(limits);
    let scanned = format::scan(&disk, &clock, |rec| replayed.restore(rec, now));
    assert_eq!(scanned.map(|s| s.cut), Ok(0), "the records read back");
    replayed.restored();
    replayed
        .audit()
        .unwrap_or_else(|why| panic!("the replayed engine's accounting: {why}"));
    same_durable_state(&e, &replayed);
}

/// Checks that two engines keep the same: their snapshots hold the same records, but for
/// times (a replay reads them back to the millisecond) and for when sessions whose client
/// was connected expire (a replay counts it from the restart).
fn same_durable_state(live: &Engine, replayed: &Engine) {
    let canonical = |e: &Engine| {
        let mut all = Vec::new();
        e.snapshot(|rec| match rec {
            Record::Away { .. } => {}
            Record::Message { id, msg } => all.push(format!(
                "Message {id} {:?} {:?} q{} r{} {:?} expires {}",
                msg.topic,
                msg.payload,
                msg.qos,
                msg.retain,
                msg.props,
                msg.expires.is_some()
            )),
            Record::Will { client, msg, .. } => all.push(format!("Will {client} {msg}")),
            other => all.push(format!("{other:?}")),
        });
        all.sort();
        all
    };
    let (a, b) = (canonical(live), canonical(replayed));
    assert_eq!(
        a, b,
        "the replayed engine keeps another state than the live one"
    );
}

/// Hands `bytes` to the engine as connection `conn` would send them.
fn feed(e: &mut Engine, conn: ConnId, version: W, bytes: &mut BytesMut, now: Instant) {
    let version = match version {
        W::V311 => codec::Version::V311,
        W::V5 => codec::Version::V5,
    };
    // Its first packet is read as a CONNECT, the others at its version.
    let mut known = Some(version);
    if bytes.first().is_some_and(|b| b >> 4 == 1) {
        known = None;
    }
    loop {
        match codec::read(bytes, known, 1 << 16) {
            Ok(Some(mut p)) => {
                // Let in as the gate lets in an anonymous client.
                if let In::Connect(h) = &mut p {
                    h.judged = true;
                    known = Some(h.version);
                }
                e.handle(conn, p, now);
            }
            Ok(None) => return,
            Err(why) => return e.bad(conn, &why, now),
        }
    }
}

/// The topic of a PUBLISH packet as written (fixed header, remaining length, topic).
fn publish_topic(b: &[u8]) -> Option<String> {
    let mut i = 1;
    while b.get(i)? & 0x80 != 0 {
        i += 1;
    }
    i += 1;
    let len = usize::from(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]));
    let topic = b.get(i + 2..i + 2 + len)?;
    String::from_utf8(topic.to_vec()).ok()
}

#[cfg(test)]
mod tests {
    /// The targets run here on a few inputs, so that they build and hold in every test
    /// run; the fuzzer runs them on many more (fuzz/README.md).
    #[test]
    fn the_fuzz_targets_hold_on_simple_scripts() {
        let scripts: [&[u8]; 4] = [
            &[],
            &[
                0, 0, 1, 1, 0, 0, 2, 0, 0x04, 0, 1, 0x81, 1, 1, 5, 2, 0, 0x24, 5, 1, 0,
            ],
            &[
                0, 2, 0xC1, 1, 2, 5, 0, 3, 0x40, 1, 3, 6, 2, 3, 0x29, 7, 0, 40, 0, 2, 0xC1,
            ],
            &[4, 0, 20, 0x10, 0xff, 0xff, 0xff, 0xff, 0x7f, 1, 2, 3],
        ];
        for s in scripts {
            super::codec(s);
            super::engine(s);
            super::store(s);
        }
    }
}
