//! chat-pub's record of unacknowledged messages (QoS 1 and 2), in the order they were
//! first sent: the one place that knows what the broker still owes an acknowledgement for.
//! chat-pub picks every packet id, so each acknowledgement names its line; after a
//! reconnect the outbox sends everything unfinished again, oldest first.

use std::collections::{HashMap, VecDeque};

use super::outgoing::Outgoing;
use crate::mqtt::tx::Tx;
use crate::mqtt::wire::{self, AckKind, PubFlags, Version};

/// Most messages in flight at once under MQTT 3.1.1 (MQTT 5 brokers say their own).
pub const WINDOW: usize = 1024;
/// QoS 2 in flight under 3.1.1: mosquitto's default `max_inflight_messages` silently drops
/// incoming QoS 2 beyond 20 while still completing the handshake (ARCHITECTURE.md,
/// "Broker and library traps the code depends on").
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
    /// To be sent again on this connection once the window has room (after a reconnect
    /// to a broker that allows fewer messages in flight than were unacknowledged).
    Queued,
}

struct Entry {
    msg: Outgoing,
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
    /// Entries in [`Stage::Queued`].
    queued: usize,
}

impl Outbox {
    pub fn len(&self) -> usize {
        self.by_pkid.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_pkid.is_empty()
    }

    /// Whether messages wait to be sent again (the window was full at the reconnect).
    pub fn has_queued(&self) -> bool {
        self.queued > 0
    }

    /// Messages sent on this connection and not acknowledged yet.
    pub fn in_flight(&self) -> usize {
        self.by_pkid.len() - self.queued
    }

    /// Whether `m` may be sent now: the window has room, and nothing older waits for it.
    pub fn has_room(&self, tx: &Tx, m: &Outgoing) -> bool {
        self.queued == 0
            && self.in_flight() < window(tx, m.qos)
            && (self.is_empty() || self.bytes + m.payload.len() <= WINDOW_BYTES)
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

    pub fn push(&mut self, msg: Outgoing, pkid: u16) {
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

    /// Moves a message to `stage`, keeping the count of queued ones.
    fn set_stage(&mut self, pkid: u16, stage: Stage) -> Option<&mut Entry> {
        let e = self.entry(pkid)?;
        let was_queued = e.stage == Stage::Queued;
        e.stage = stage;
        self.queued -= usize::from(was_queued);
        self.entry(pkid)
    }

    /// Marks a QoS 2 message as released (PUBREC received). False for an unknown id.
    pub fn released(&mut self, pkid: u16) -> bool {
        match self.entry(pkid) {
            Some(e) if e.stage != Stage::Done => {
                self.set_stage(pkid, Stage::Released);
                true
            }
            _ => false,
        }
    }

    /// Marks a message as done; returns its line number (None for an unknown id).
    pub fn complete(&mut self, pkid: u16) -> Option<u64> {
        let e = self.set_stage(pkid, Stage::Done)?;
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

    /// After a reconnect: sends every unfinished message again, oldest first, as far as
    /// the new connection's window allows (the rest is queued for [`Outbox::send_queued`]).
    /// When the broker kept our session, with the same ids (PUBREL for released ones);
    /// else as new publishes with new ids: at least once, and the envelope id lets readers
    /// drop the duplicates.
    pub fn resend(&mut self, tx: &mut Tx) {
        let kept = tx.connack.session_present;
        if !kept {
            self.by_pkid.clear();
        }
        self.queued = 0;
        let mut sent = 0;
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
            let e = &mut self.entries[i];
            match e.stage {
                // In flight at the broker already: its session holds it.
                Stage::Released => wire::encode_ack(AckKind::PubRel, e.pkid, tx.buf),
                _ if sent < window(tx, e.msg.qos) => {
                    e.stage = Stage::Sent;
                    encode(tx, &e.msg, e.pkid, kept);
                }
                _ => {
                    e.stage = Stage::Queued;
                    self.queued += 1;
                    continue;
                }
            }
            sent += 1;
        }
    }

    /// Sends queued messages, oldest first, while the window has room.
    pub fn send_queued(&mut self, tx: &mut Tx) {
        let mut i = 0;
        while self.queued > 0 && i < self.entries.len() {
            let e = &self.entries[i];
            if e.stage == Stage::Queued {
                if self.in_flight() >= window(tx, e.msg.qos) {
                    return;
                }
                encode(tx, &e.msg, e.pkid, false);
                self.entries[i].stage = Stage::Sent;
                self.queued -= 1;
            }
            i += 1;
        }
    }
}

/// How many messages at `qos` may be in flight on `tx`: the broker's Receive Maximum
/// under MQTT 5 (at most [`WINDOW`]); under 3.1.1 [`WINDOW`], and [`WINDOW_QOS2_V311`] at
/// QoS 2.
fn window(tx: &Tx, qos: u8) -> usize {
    match tx.version {
        Version::V5 => usize::from(tx.connack.receive_max.unwrap_or(u16::MAX)).min(WINDOW),
        Version::V311 if qos == 2 => WINDOW_QOS2_V311,
        Version::V311 => WINDOW,
    }
}

/// Appends the PUBLISH of `m` with this packet id.
pub fn encode(tx: &mut Tx, m: &Outgoing, pkid: u16, dup: bool) {
    let flags = PubFlags {
        qos: m.qos,
        retain: m.retain,
        dup,
        pkid,
    };
    wire::encode_publish(
        tx.version,
        tx.buf,
        &m.topic,
        &m.payload,
        &m.properties,
        flags,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mqtt::tx::Peer;
    use crate::tools::publish::testing::{message, received};

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

    /// Sends `n` QoS `qos` messages on a connection without a window of its own.
    fn outbox_with(n: u64, qos: u8) -> (Outbox, Peer) {
        let mut o = Outbox::default();
        let mut first = Peer::new(Version::V5, None, false);
        for line in 1..=n {
            let m = message(line, qos);
            assert!(o.has_room(&first.tx(), &m));
            let pkid = o.assign();
            encode(&mut first.tx(), &m, pkid, false);
            o.push(m, pkid);
        }
        received(&mut first);
        (o, first)
    }

    #[test]
    fn a_reconnect_resends_in_order_within_the_new_brokers_receive_maximum() {
        let (mut o, _) = outbox_with(12, 1);
        // Lines 1 and 2 were acknowledged before the connection was lost.
        o.complete(1);
        o.complete(2);
        let mut next = Peer::new(Version::V5, Some(4), false);
        o.resend(&mut next.tx());
        let resent = received(&mut next);
        let lines: Vec<u64> = resent.iter().map(|w| w.0).collect();
        assert_eq!(lines, [3, 4, 5, 6], "only the Receive Maximum goes out");
        assert!(resent.iter().all(|w| !w.2), "a new session: no DUP");
        assert_eq!((o.len(), o.in_flight()), (10, 4));
        // A newer line waits behind the queued ones, even when the window has room.
        assert!(!o.has_room(&next.tx(), &message(13, 1)));
        // Each acknowledgement lets one more queued line out, oldest first.
        let mut order = lines;
        let ack_oldest = |o: &mut Outbox| {
            let oldest = *o.by_pkid.keys().min().expect("in flight");
            o.complete(oldest);
        };
        while o.has_queued() {
            ack_oldest(&mut o);
            o.send_queued(&mut next.tx());
            order.extend(received(&mut next).iter().map(|w| w.0));
            assert!(o.in_flight() <= 4);
        }
        assert_eq!(order, (3..=12).collect::<Vec<_>>());
        // Nothing queued any more: new lines wait only for the window.
        assert!(!o.has_room(&next.tx(), &message(13, 1)), "4 in flight");
        ack_oldest(&mut o);
        assert!(o.has_room(&next.tx(), &message(13, 1)));
    }

    #[test]
    fn a_kept_session_gets_the_same_ids_with_dup_and_pubrel_for_released_messages() {
        let (mut o, _) = outbox_with(3, 2);
        assert!(o.released(1), "PUBREC for line 1");
        let mut again = Peer::new(Version::V311, None, true);
        o.resend(&mut again.tx());
        assert_eq!(
            received(&mut again),
            [(0, 1, false), (2, 2, true), (3, 3, true)],
            "PUBREL for the released one, the others again with DUP, same ids"
        );
        assert_eq!(o.complete(1), Some(1));
        assert_eq!(o.complete(1), None, "a repeated PUBCOMP is ignored");
        assert_eq!(o.complete(3), Some(3), "out of order");
        assert_eq!(o.complete(2), Some(2));
        assert!(o.is_empty());
    }

    #[test]
    fn qos_2_under_3_1_1_keeps_twenty_in_flight_after_a_reconnect() {
        let (mut o, _) = outbox_with(30, 2);
        let mut next = Peer::new(Version::V311, None, false);
        o.resend(&mut next.tx());
        assert_eq!(received(&mut next).len(), WINDOW_QOS2_V311);
        assert_eq!(o.in_flight(), WINDOW_QOS2_V311);
    }
}
