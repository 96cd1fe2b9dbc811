//! What the publisher's socket-free tests share: messages numbered by line, and what a
//! broker received, decoded.

use bytes::Bytes;

use super::outgoing::Outgoing;
use crate::mqtt::tx::Peer;
use crate::mqtt::wire::{AckKind, Inbound};

/// Line `line` of the room, at `qos`: its payload is `line N`.
pub fn message(line: u64, qos: u8) -> Outgoing {
    Outgoing {
        line,
        topic: Bytes::from_static(b"room"),
        payload: Bytes::from(format!("line {line}")),
        qos,
        retain: false,
        properties: Bytes::new(),
    }
}

/// What the broker received: (line, packet id, dup) per PUBLISH of a line, (0, id,
/// false) per PUBREL, (u64::MAX, id, false) per presence PUBLISH.
pub fn received(peer: &mut Peer) -> Vec<(u64, u16, bool)> {
    let decode = |p| match p {
        Inbound::Publish(d) if d.topic.starts_with(b"room") => {
            let text = String::from_utf8_lossy(&d.payload).into_owned();
            let line = text.trim_start_matches("line ").parse().expect("line");
            (line, d.pkid, d.dup)
        }
        Inbound::Publish(d) => (u64::MAX, d.pkid, d.dup),
        Inbound::Ack {
            kind: AckKind::PubRel,
            pkid,
            ..
        } => (0, pkid, false),
        other => panic!("unexpected {other:?}"),
    };
    peer.received().into_iter().map(decode).collect()
}
