//! chat-pub's presence on a connection, without I/O: the retained join sent first on
//! every connection, at QoS 1 with the packet id the outbox never uses. Nothing else is
//! sent until its PUBACK: a broker that refuses it (an MQTT 5 reason code) or closes the
//! connection meanwhile refused the announcement — a strict broker's topic rules, an ACL
//! — not a line, and chat goes on without presence.

use std::time::SystemTime;

use bytes::Bytes;

use super::outbox::SPARE_PKID;
use crate::mqtt::tx::LinkError;
use crate::mqtt::tx::Tx;
use crate::mqtt::wire::{self, PubFlags};
use crate::room::presence::Announce;

/// The announcement, while the broker accepts it.
pub struct Join {
    announce: Option<Announce>,
    /// The join was sent on this connection and not acknowledged yet.
    waiting: bool,
}

impl Join {
    pub fn new(announce: Option<Announce>) -> Join {
        Join {
            announce,
            waiting: false,
        }
    }

    /// A connection was accepted; `has_will` false when the broker refused the will (then
    /// the join goes too). Sends the join, if there is one.
    pub fn connected(&mut self, tx: &mut Tx, has_will: bool) {
        if !has_will {
            self.announce = None;
        }
        if let Some(a) = &self.announce {
            publish(tx, a.topic(), a.join_record(), 1, SPARE_PKID, true);
            self.waiting = true;
        }
    }

    /// Whether lines must wait for the join's PUBACK.
    pub fn waiting(&self) -> bool {
        self.waiting
    }

    /// The PUBACK of the join: lines may go out now. A refusal (MQTT 5) leaves chat
    /// without presence.
    pub fn acknowledged(&mut self, reason: u8) {
        self.waiting = false;
        if reason >= 0x80 && self.announce.take().is_some() {
            log::warn!(
                "the broker refused the presence announcement: {} ({reason:#04x}); going on \
                 without presence",
                wire::reason_text(reason)
            );
        }
    }

    /// The connection was lost; true when nothing but the join was sent on it (so the
    /// broker refused the join, and it is dropped).
    pub fn lost(&mut self, why: &LinkError) -> bool {
        if !std::mem::take(&mut self.waiting) || self.announce.take().is_none() {
            return false;
        }
        log::warn!(
            "connection lost right after the presence announcement ({why}): the broker \
             refuses it (topic or authorization); going on without presence"
        );
        true
    }

    /// Before the next connection, at `now`: in an encrypted room, a new join and will
    /// (later than the ones a reader may have taken); returns the will's payload.
    pub fn renew(&mut self, now: SystemTime) -> Option<Vec<u8>> {
        let a = self.announce.as_mut()?;
        if let Err(e) = a.renew(now) {
            log::warn!("presence not renewed: {e}");
        }
        a.sealed_will()
    }

    /// The goodbye before DISCONNECT, at `now`, if the nick is online.
    pub fn leave(&self, tx: &mut Tx, now: SystemTime) {
        if let Some(a) = &self.announce {
            for (payload, retain) in a.goodbye(now) {
                publish(tx, a.topic(), &payload, 0, 0, retain);
            }
        }
    }
}

/// Appends a PUBLISH of `payload` on the presence `topic`.
fn publish(tx: &mut Tx, topic: &Bytes, payload: &Bytes, qos: u8, pkid: u16, retain: bool) {
    let flags = PubFlags {
        qos,
        retain,
        dup: false,
        pkid,
    };
    wire::encode_publish(tx.version, tx.buf, topic, payload, &[], flags);
}
