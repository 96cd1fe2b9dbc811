//! chat-sub in an encrypted room, without I/O: every message and presence payload is
//! opened with the key of its room before anything else looks at it, and what does not
//! open is counted and reported, once per kind — a stranger who floods the topic with
//! junk gets one line on stderr, not one per message, and never a line on stdout that
//! could pass for the room's.

use std::collections::HashSet;

use crate::escape::escaped;
use crate::presence;
use crate::seal::{Keyring, Rejected};

/// The room secret's keys and what did not open with them.
pub struct Room {
    keyring: Keyring,
    /// Payloads not opened, per kind: plain, unknown version, malformed, forged.
    counts: [u64; 4],
    /// Kinds reported already (messages and presence apart).
    reported: HashSet<(Rejected, bool)>,
}

impl Room {
    pub fn new(keyring: Keyring) -> Room {
        Room {
            keyring,
            counts: [0; 4],
            reported: HashSet::new(),
        }
    }

    /// Opens a message received on `topic` (the key of the room `topic`, the topic as
    /// additional data). A topic that is not UTF-8 cannot be a room's.
    pub fn open_message(&mut self, topic: &[u8], payload: &[u8]) -> Result<Vec<u8>, Rejected> {
        let topic = std::str::from_utf8(topic).map_err(|_| Rejected::Malformed)?;
        self.keyring.open(topic, topic, payload)
    }

    /// Opens a join received on a presence topic: sealed with the key of the room the
    /// topic names, with the presence topic itself as additional data.
    pub fn open_presence(&mut self, topic: &[u8], payload: &[u8]) -> Result<Vec<u8>, Rejected> {
        let topic = std::str::from_utf8(topic).map_err(|_| Rejected::Malformed)?;
        let (room, _) = presence::parse(topic).ok_or(Rejected::Malformed)?;
        self.keyring.open(room, topic, payload)
    }

    /// Counts a payload that did not open; the first of its kind is reported.
    pub fn rejected(&mut self, topic: &[u8], why: Rejected, is_presence: bool) {
        self.counts[index(why)] += 1;
        if !self.reported.insert((why, is_presence)) {
            return;
        }
        let what = match is_presence {
            true => "a presence announcement",
            false => "a message",
        };
        log::warn!(
            "not shown: {what} on '{}' {}; more like it are only counted",
            escaped(&String::from_utf8_lossy(topic)),
            phrase(why)
        );
    }

    /// What to say at the end of the run: how many payloads did not open, by kind.
    pub fn summary(&self) -> Option<String> {
        let total: u64 = self.counts.iter().sum();
        if total == 0 {
            return None;
        }
        let kinds = [
            Rejected::Plain,
            Rejected::UnknownVersion,
            Rejected::Malformed,
            Rejected::Forged,
        ];
        let parts: Vec<String> = kinds
            .iter()
            .filter(|&&k| self.counts[index(k)] > 0)
            .map(|&k| format!("{} {}", self.counts[index(k)], code(k)))
            .collect();
        Some(format!(
            "{total} payload(s) not shown: not sealed with the room's secret ({})",
            parts.join(", ")
        ))
    }
}

fn index(why: Rejected) -> usize {
    match why {
        Rejected::Plain => 0,
        Rejected::UnknownVersion => 1,
        Rejected::Malformed => 2,
        Rejected::Forged => 3,
    }
}

/// The kind of a payload that did not open, as `--json` and the summary name it.
pub fn code(why: Rejected) -> &'static str {
    match why {
        Rejected::Plain => "plain",
        Rejected::UnknownVersion => "unknown-version",
        Rejected::Malformed => "malformed",
        Rejected::Forged => "forged",
    }
}

fn phrase(why: Rejected) -> &'static str {
    match why {
        Rejected::Plain => "is not encrypted",
        Rejected::UnknownVersion => "is encrypted with a format version this build does not know",
        Rejected::Malformed => "is a malformed encrypted payload",
        Rejected::Forged => {
            "does not open with the room's secret (another secret, copied from another topic, \
             or changed on the way)"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seal::{RoomKey, RoomSecret, seal};

    fn secret() -> RoomSecret {
        RoomSecret::new(b"a secret of the test room".to_vec()).expect("secret")
    }

    #[test]
    fn messages_and_presence_open_with_their_rooms_key_only() {
        let mut room = Room::new(Keyring::new(secret()));
        let key = RoomKey::derive(&secret(), "r/1");
        let sealed = seal(&key, "r/1", b"hello").expect("seal");
        assert_eq!(
            room.open_message(b"r/1", &sealed).as_deref(),
            Ok(&b"hello"[..])
        );
        assert_eq!(room.open_message(b"r/2", &sealed), Err(Rejected::Forged));
        let presence = presence::topic("r/1", "c1");
        let join = seal(&key, &presence, b"{}").expect("seal");
        assert_eq!(
            room.open_presence(presence.as_bytes(), &join).as_deref(),
            Ok(&b"{}"[..])
        );
        let other = presence::topic("r/1", "c2");
        assert_eq!(
            room.open_presence(other.as_bytes(), &join),
            Err(Rejected::Forged),
            "another client's presence"
        );
        assert_eq!(
            room.open_message(b"r/\xff", &sealed),
            Err(Rejected::Malformed)
        );
    }

    #[test]
    fn what_did_not_open_is_counted_by_kind() {
        let mut room = Room::new(Keyring::new(secret()));
        assert_eq!(room.summary(), None);
        for why in [Rejected::Plain, Rejected::Plain, Rejected::Forged] {
            room.rejected(b"t", why, false);
        }
        room.rejected(b"t", Rejected::Malformed, true);
        assert_eq!(
            room.summary().as_deref(),
            Some(
                "4 payload(s) not shown: not sealed with the room's secret (2 plain, \
                 1 malformed, 1 forged)"
            )
        );
        assert_eq!(room.reported.len(), 3);
    }
}
