//! What becomes of each message chat-sub receives, without I/O: its acknowledgement, and
//! the verdict — printed, or dropped (a QoS 2 or envelope repeat, a hidden nick, a
//! retained message under `--no-retained`).

use std::collections::HashSet;

use crate::mqtt::tx::Tx;
use crate::mqtt::wire::{self, AckKind, Delivery};
use crate::room::dedup::{Key, Recent};
use crate::room::dialect::{self, Dialect};
use crate::room::envelope::Decoded;
use crate::room::seal;

/// The rules every incoming message goes through.
#[derive(Default)]
pub struct Inbox {
    /// Incoming QoS 2 packet ids printed and waiting for PUBREL (a resend is not printed).
    qos2_pending: HashSet<u16>,
    /// Recently printed messages, so that one delivered again is printed once.
    recent: Recent,
    /// Nicks whose messages are not shown (`--ignore`, `--hide-own`).
    hidden: HashSet<String>,
    /// `--no-retained`.
    no_retained: bool,
    /// Repeats dropped so far (for -vv).
    repeats: u64,
    /// The payloads of the room (`--dialect`).
    dialect: Dialect,
    /// Whether the dialect's notices are shown (not with `--no-presence`).
    hide_notices: bool,
    /// In an encrypted room with `--hide-own`: your nick and your identity's fingerprint.
    /// Only what your identity signed is hidden: another member's record under your nick
    /// is shown, marked.
    own: Option<(String, [u8; 32])>,
}

impl Inbox {
    pub fn new(hidden: HashSet<String>, no_retained: bool) -> Inbox {
        Inbox {
            hidden,
            no_retained,
            ..Inbox::default()
        }
    }

    /// Reads payloads in `dialect`; its notices are dropped when `hide_notices`.
    pub fn with_dialect(self, dialect: Dialect, hide_notices: bool) -> Inbox {
        Inbox {
            dialect,
            hide_notices,
            ..self
        }
    }

    /// `--hide-own` in an encrypted room: hides `nick`'s messages only when signed by the
    /// identity of `fingerprint`.
    pub fn with_own(mut self, nick: String, fingerprint: [u8; 32]) -> Inbox {
        self.hidden.remove(&nick);
        self.own = Some((nick, fingerprint));
        self
    }

    /// A new session at the broker: nothing it sends is a repeat of a QoS 2 delivery.
    pub fn new_session(&mut self) {
        self.qos2_pending.clear();
    }

    /// Queues the acknowledgement of `d`; true if it repeats a QoS 2 message already
    /// printed (and not yet released).
    pub fn acknowledge(&mut self, d: &Delivery, tx: &mut Tx) -> bool {
        match d.qos {
            1 => {
                wire::encode_ack(AckKind::PubAck, d.pkid, tx.buf);
                false
            }
            2 => {
                wire::encode_ack(AckKind::PubRec, d.pkid, tx.buf);
                !self.qos2_pending.insert(d.pkid)
            }
            _ => false,
        }
    }

    /// PUBREL: the QoS 2 delivery is complete.
    pub fn released(&mut self, pkid: u16, tx: &mut Tx) {
        self.qos2_pending.remove(&pkid);
        wire::encode_ack(AckKind::PubComp, pkid, tx.buf);
    }

    /// Whether `d` is wanted at all (`--no-retained` skips retained messages).
    pub fn wants(&self, d: &Delivery) -> bool {
        !(self.no_retained && d.retain)
    }

    /// The verdict on an acknowledged message whose `payload` (as received, or as
    /// decrypted from `sealed`) is to be printed: decoded, or None when its nick is
    /// hidden or it was printed before (same envelope id, or same ciphertext).
    pub fn verdict<'a>(
        &mut self,
        d: &Delivery,
        payload: &'a [u8],
        sealed: Option<&[u8]>,
        signer: Option<&[u8; 32]>,
    ) -> Option<Decoded<'a>> {
        let decoded = match sealed {
            // Without the secret: shown as encrypted, never as its ciphertext.
            None if seal::well_formed(payload) => Decoded::encrypted(),
            _ => dialect::decode(payload, self.dialect),
        };
        if decoded.notice && self.hide_notices {
            return None;
        }
        let hidden = |f: &str| self.hidden.contains(f);
        if decoded.from.as_deref().is_some_and(hidden) {
            return None;
        }
        if let Some((nick, fp)) = &self.own
            && decoded.from.as_deref() == Some(nick.as_str())
            && signer == Some(fp)
        {
            return None;
        }
        let key = match (&decoded.id, d.retain) {
            // Without the secret: an encrypted message is known by its topic and bytes
            // (not by its nonce alone, which anybody could copy onto junk).
            _ if decoded.encrypted => Some(Key::Retained {
                topic: &d.topic,
                payload,
            }),
            (Some(id), _) => Some(match signer {
                Some(fp) => Key::SignedId(id, fp),
                None => Key::Id(id),
            }),
            (None, true) => Some(Key::Retained {
                topic: &d.topic,
                payload,
            }),
            (None, false) => None,
        };
        let replayed = sealed.is_some_and(|c| !self.recent.first_time(Key::Sealed(c)));
        if key.is_some_and(|k| !self.recent.first_time(k)) || replayed {
            self.repeats += 1;
            log::debug!(
                "dropped a repeat ({} so far; packet id {}, dup {}, retain {})",
                self.repeats,
                d.pkid,
                d.dup,
                d.retain
            );
            return None;
        }
        Some(decoded)
    }
}
