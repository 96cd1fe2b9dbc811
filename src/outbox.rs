//! chat-pub's record of unacknowledged messages (QoS 1 and 2), in the order they were
//! first sent: the one place that knows what the broker still owes an acknowledgement for.
//! chat-pub picks every packet id, so each acknowledgement names its line; after a
//! reconnect the outbox sends everything unfinished again, oldest first.

use std::collections::{HashMap, VecDeque};

use crate::input::Message;
use crate::session::Link;
use crate::wire::{self, AckKind, PubFlags, Version};

/// Most messages in flight at once under MQTT 3.1.1 (MQTT 5 brokers say their own).
pub const WINDOW: usize = 1024;
/// QoS 2 in flight under 3.1.1: mosquitto's default `max_inflight_messages` silently drops
/// incoming QoS 2 beyond 20 while still completing the handshake (TRAPS.md).
pub const WINDOW_QOS2_V311: usize = 20;
/// Unacknowledged payload bytes kept at most (at least one message is always allowed).
pub const WINDOW_BYTES: usize = 16 << 20;
/// The packet id the outbox never assigns: kept for the one QoS 1 message outside it,
/// chat-pub's presence announcement.
pub const SPARE_PKID: u16 = u16::MAX;

/// Where a QoS 1/2 message is in its handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Sent; waiting for PUBACK (QoS 1) or PUBREC (QoS 2).
    Sent,
    /// PUBREC received and PUBREL sent; waiting for PUBCOMP.
    Released,
    /// Acknowledged; removed once everything before it is too.
    Done,
}

struct Entry {
    msg: Message,
    pkid: u16,
    stage: Stage,
}

/// The record of unacknowledged messages, in the order they were first sent.
#[derive(Default)]
pub struct Outbox {
    entries: VecDeque<Entry>,
    /// Sequence number of `entries[0]`.
    base: u64,
    /// Packet id in flight → sequence number.
    by_pkid: HashMap<u16, u64>,
    last_pkid: u16,
    bytes: usize,
}

impl Outbox {
    pub fn len(&self) -> usize {
        self.by_pkid.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_pkid.is_empty()
    }

    pub fn has_room(&self, link: &Link, m: &Message) -> bool {
        let window = match link.version {
            Version::V5 => usize::from(link.connack.receive_max.unwrap_or(u16::MAX)).min(WINDOW),
            Version::V311 if m.qos == 2 => WINDOW_QOS2_V311,
            Version::V311 => WINDOW,
        };
        self.len() < window && (self.is_empty() || self.bytes + m.payload.len() <= WINDOW_BYTES)
    }

    /// A free packet id (1..=65534, never [`SPARE_PKID`]; the window is far smaller, so
    /// one is always free).
    pub fn assign(&mut self) -> u16 {
        loop {
            self.last_pkid = match self.last_pkid + 1 {
                SPARE_PKID => 1,
                next => next,
            };
            if !self.by_pkid.contains_key(&self.last_pkid) {
                return self.last_pkid;
            }
        }
    }

    pub fn push(&mut self, msg: Message, pkid: u16) {
        let seq = self.base + self.entries.len() as u64;
        self.bytes += msg.payload.len();
        self.by_pkid.insert(pkid, seq);
        self.entries.push_back(Entry {
            msg,
            pkid,
            stage: Stage::Sent,
        });
    }

    fn entry(&mut self, pkid: u16) -> Option<&mut Entry> {
        let seq = *self.by_pkid.get(&pkid)?;
        self.entries.get_mut((seq - self.base) as usize)
    }

    /// Marks a QoS 2 message as released (PUBREC received). False for an unknown id.
    pub fn released(&mut self, pkid: u16) -> bool {
        match self.entry(pkid) {
            Some(e) if e.stage != Stage::Done => {
                e.stage = Stage::Released;
                true
            }
            _ => false,
        }
    }

    /// Marks a message as done; returns its line number (None for an unknown id).
    pub fn complete(&mut self, pkid: u16) -> Option<u64> {
        let e = self.entry(pkid)?;
        e.stage = Stage::Done;
        let (line, len) = (e.msg.line, e.msg.payload.len());
        self.by_pkid.remove(&pkid);
        self.bytes -= len;
        while self.entries.front().is_some_and(|e| e.stage == Stage::Done) {
            self.entries.pop_front();
            self.base += 1;
        }
        Some(line)
    }

    /// Gives up on the oldest unfinished message; returns its line number.
    pub fn give_up_oldest(&mut self) -> Option<u64> {
        let pkid = self.entries.iter().find(|e| e.stage != Stage::Done)?.pkid;
        self.complete(pkid)
    }

    /// After a reconnect: sends every unfinished message again, oldest first. When the
    /// broker kept our session, with the same ids (PUBREL for released ones); else as new
    /// publishes with new ids: at least once, and the envelope id lets readers drop the
    /// duplicates.
    pub fn resend(&mut self, link: &mut Link) {
        let kept = link.connack.session_present;
        if !kept {
            self.by_pkid.clear();
        }
        for i in 0..self.entries.len() {
            if self.entries[i].stage == Stage::Done {
                continue;
            }
            if !kept {
                let pkid = self.assign();
                self.by_pkid.insert(pkid, self.base + i as u64);
                let e = &mut self.entries[i];
                e.pkid = pkid;
                e.stage = Stage::Sent;
            }
            let e = &self.entries[i];
            match e.stage {
                Stage::Released => wire::encode_ack(AckKind::PubRel, e.pkid, &mut link.wbuf),
                _ => encode(link, &e.msg, e.pkid, kept),
            }
        }
    }
}

/// Appends the PUBLISH of `m` with this packet id.
pub fn encode(link: &mut Link, m: &Message, pkid: u16, dup: bool) {
    let flags = PubFlags {
        qos: m.qos,
        retain: m.retain,
        dup,
        pkid,
    };
    wire::encode_publish(link.version, &mut link.wbuf, &m.topic, &m.payload, flags);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packet_ids_wrap_around_skipping_the_spare_one_and_those_in_flight() {
        let mut o = Outbox {
            last_pkid: SPARE_PKID - 2,
            ..Outbox::default()
        };
        o.by_pkid.insert(1, 0);
        let ids: Vec<u16> = (0..3).map(|_| o.assign()).collect();
        assert_eq!(ids, [SPARE_PKID - 1, 2, 3]);
    }
}
