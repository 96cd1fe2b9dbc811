//! chat-sub in an encrypted room, without I/O: every message and presence payload is
//! opened with the key of its room before anything else looks at it, and what does not
//! open is counted and reported, once per kind — a stranger who floods the topic with
//! junk gets one line on stderr, not one per message, and never a line on stdout that
//! could pass for the room's.

use std::collections::{HashMap, HashSet};
use std::time::{Instant, SystemTime};

use crate::escape::escaped;
use crate::mqtt::topic;
use crate::room::presence;
use crate::room::seal::{self, Keyring, Rejected, Version};
use crate::room::sign::{Fingerprint, Mark, Verifier};

use super::members::{Members, Pin};

/// New keys derived at once at most (a wildcard subscription meeting its rooms, or
/// retained messages on many topics), and then per second: each costs ~20 ms of the one
/// I/O thread, so a stranger's flood of well-formed junk on new topics must not stall it.
pub const NEW_KEYS_BURST: f64 = 64.0;
pub const NEW_KEYS_PER_SEC: f64 = 8.0;

/// How far ahead of the local clock a presence record's time may be (clocks differ).
pub const PRESENCE_AHEAD: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

/// Why a payload is not shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Rejected(Rejected),
    /// Well-formed, on a topic whose key would be one too many new keys at once.
    Throttled,
    /// Opened with the room's secret (format version 2), but its signature does not
    /// check: someone who has the secret forged or changed it.
    BadSignature,
}

/// A payload opened: its record, and who signed it (None: format version 1, unsigned).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    pub record: Vec<u8>,
    pub signer: Option<Fingerprint>,
}

/// The room secret's keys and what did not open with them.
pub struct Room {
    keyring: Keyring,
    /// Payloads not shown, per kind: plain, unknown version, malformed, forged,
    /// throttled, bad signature.
    counts: [u64; 6],
    /// Checks the signatures of format version 2.
    verifier: Verifier,
    /// The keys pinned per room and nick.
    members: Members,
    /// Kinds reported already (messages and presence apart).
    reported: HashSet<(Kind, bool)>,
    budget: Budget,
    /// The last presence record taken per presence topic: its time (ms), and whether it
    /// is a leave.
    presence: HashMap<String, (i64, bool)>,
}

impl Room {
    /// A room whose keys of `filters` without wildcards are derived now, and kept.
    pub fn new(mut keyring: Keyring, filters: &[String]) -> Room {
        for f in filters.iter().filter(|f| !topic::has_wildcard(f)) {
            keyring.pin(f);
        }
        Room {
            keyring,
            counts: [0; 6],
            verifier: Verifier::default(),
            members: Members::default(),
            reported: HashSet::new(),
            budget: Budget::default(),
            presence: HashMap::new(),
        }
    }

    /// With the pins read from the file.
    pub fn with_members(self, members: Members) -> Room {
        Room { members, ..self }
    }

    /// The mark of a record opened in `room`, from `nick` (see `members`).
    pub fn judge(&mut self, room: &str, nick: Option<&str>, signer: Option<Fingerprint>) -> Mark {
        self.members.judge(room, nick, signer)
    }

    /// The pins made since the last call, to save.
    pub fn take_pins(&mut self) -> Vec<Pin> {
        self.members.take_unsaved()
    }

    /// Whether an opened presence record on `topic`, received at `wall`, is news: its
    /// `ts` must be a valid time not ahead of `wall` by more than [`PRESENCE_AHEAD`], and
    /// (time, leave) later than the last record taken for the topic — a leave wins over a
    /// join of the same time (chat-pub gives each connection's join and will a new time).
    /// So a captured join or will published again changes nothing.
    pub fn fresh(&mut self, topic: &[u8], plain: &[u8], wall: SystemTime) -> bool {
        let Some((Some(ts), leave)) = presence::decode_record(plain) else {
            return false;
        };
        let Ok(t) = chrono::DateTime::parse_from_rfc3339(&ts) else {
            return false;
        };
        let now = chrono::DateTime::<chrono::Utc>::from(wall);
        if t.timestamp_millis() > (now + PRESENCE_AHEAD).timestamp_millis() {
            return false;
        }
        let record = (t.timestamp_millis(), leave);
        let topic = String::from_utf8_lossy(topic).into_owned();
        match self.presence.get(&topic) {
            Some(&last) if record <= last => false,
            _ => {
                self.presence.insert(topic, record);
                true
            }
        }
    }

    /// Opens a message received on `topic` (the key of the room `topic`, the topic as
    /// additional data). A topic that is not UTF-8 cannot be a room's.
    pub fn open_message(
        &mut self,
        topic: &[u8],
        payload: &[u8],
        now: Instant,
    ) -> Result<Opened, Kind> {
        let topic = std::str::from_utf8(topic).map_err(|_| Kind::Rejected(Rejected::Malformed))?;
        self.open(topic, topic, payload, now)
    }

    /// Opens a presence payload: sealed with the key of the room the topic names, with
    /// the presence topic itself as additional data.
    pub fn open_presence(
        &mut self,
        topic: &[u8],
        payload: &[u8],
        now: Instant,
    ) -> Result<Opened, Kind> {
        let malformed = Kind::Rejected(Rejected::Malformed);
        let topic = std::str::from_utf8(topic).map_err(|_| malformed)?;
        let (room, _) = presence::parse(topic).ok_or(malformed)?;
        self.open(room, topic, payload, now)
    }

    fn open(
        &mut self,
        room: &str,
        topic: &str,
        payload: &[u8],
        now: Instant,
    ) -> Result<Opened, Kind> {
        if !self.keyring.has(room) && seal::well_formed(payload) && !self.budget.take(now) {
            return Err(Kind::Throttled);
        }
        let (version, mut plain) = (self.keyring)
            .open(room, topic, payload)
            .map_err(Kind::Rejected)?;
        if version == Version::V1 {
            return Ok(Opened {
                record: plain,
                signer: None,
            });
        }
        let signed = (self.verifier)
            .check(room, topic, &plain)
            .map_err(|_| Kind::BadSignature)?;
        let (signer, start) = (signed.fingerprint, plain.len() - signed.record.len());
        plain.drain(..start);
        Ok(Opened {
            record: plain,
            signer: Some(signer),
        })
    }

    /// Counts a payload that was not shown; the first of its kind is reported.
    pub fn rejected(&mut self, topic: &[u8], why: Kind, is_presence: bool) {
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

    /// What to say at the end of the run: how many payloads were not shown, by kind.
    pub fn summary(&self) -> Option<String> {
        let total: u64 = self.counts.iter().sum();
        if total == 0 {
            return None;
        }
        let kinds = [
            Kind::Rejected(Rejected::Plain),
            Kind::Rejected(Rejected::UnknownVersion),
            Kind::Rejected(Rejected::Malformed),
            Kind::Rejected(Rejected::Forged),
            Kind::Throttled,
            Kind::BadSignature,
        ];
        let parts: Vec<String> = kinds
            .iter()
            .filter(|&&k| self.counts[index(k)] > 0)
            .map(|&k| format!("{} {}", self.counts[index(k)], code(k)))
            .collect();
        let what = match self.counts[index(Kind::BadSignature)] {
            0 => "not sealed with the room's secret",
            _ => "not sealed with the room's secret, or not signed right",
        };
        Some(format!(
            "{total} payload(s) not shown: {what} ({})",
            parts.join(", ")
        ))
    }
}

/// A token bucket of new key derivations.
struct Budget {
    tokens: f64,
    at: Option<Instant>,
}

impl Default for Budget {
    fn default() -> Budget {
        Budget {
            tokens: NEW_KEYS_BURST,
            at: None,
        }
    }
}

impl Budget {
    fn take(&mut self, now: Instant) -> bool {
        if let Some(at) = self.at {
            let earned = now.saturating_duration_since(at).as_secs_f64() * NEW_KEYS_PER_SEC;
            self.tokens = (self.tokens + earned).min(NEW_KEYS_BURST);
        }
        self.at = Some(now);
        match self.tokens >= 1.0 {
            true => {
                self.tokens -= 1.0;
                true
            }
            false => false,
        }
    }
}

fn index(why: Kind) -> usize {
    match why {
        Kind::Rejected(Rejected::Plain) => 0,
        Kind::Rejected(Rejected::UnknownVersion) => 1,
        Kind::Rejected(Rejected::Malformed) => 2,
        Kind::Rejected(Rejected::Forged) => 3,
        Kind::Throttled => 4,
        Kind::BadSignature => 5,
    }
}

/// The kind of a payload not shown, as `--json` and the summary name it.
pub fn code(why: Kind) -> &'static str {
    match why {
        Kind::Rejected(Rejected::Plain) => "plain",
        Kind::Rejected(Rejected::UnknownVersion) => "unknown-version",
        Kind::Rejected(Rejected::Malformed) => "malformed",
        Kind::Rejected(Rejected::Forged) => "forged",
        Kind::Throttled => "throttled",
        Kind::BadSignature => "bad-signature",
    }
}

fn phrase(why: Kind) -> &'static str {
    match why {
        Kind::Rejected(Rejected::Plain) => "is not encrypted",
        Kind::Rejected(Rejected::UnknownVersion) => {
            "is encrypted with a format version this build does not know"
        }
        Kind::Rejected(Rejected::Malformed) => "is a malformed encrypted payload",
        Kind::Rejected(Rejected::Forged) => {
            "does not open with the room's secret (another secret, copied from another topic, \
             or changed on the way)"
        }
        Kind::Throttled => {
            "was not opened: too many new rooms at once (a flood of new topics?); a new \
             room's key is derived when the pace drops"
        }
        Kind::BadSignature => {
            "opens with the room's secret but its signature does not check (forged or \
             changed by someone who has the secret)"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::room::seal::{RoomKey, RoomSecret, seal};

    const FORGED: Kind = Kind::Rejected(Rejected::Forged);

    fn secret() -> RoomSecret {
        RoomSecret::new(b"a secret of the test room".to_vec()).expect("secret")
    }

    #[test]
    fn messages_and_presence_open_with_their_rooms_key_only() {
        let mut room = Room::new(Keyring::new(secret()), &[]);
        let key = RoomKey::derive(&secret(), "r/1");
        let now = Instant::now();
        let sealed = seal(&key, "r/1", b"hello").expect("seal");
        assert_eq!(
            room.open_message(b"r/1", &sealed, now)
                .map(|o| o.record)
                .as_deref(),
            Ok(&b"hello"[..])
        );
        assert_eq!(room.open_message(b"r/2", &sealed, now), Err(FORGED));
        let presence = presence::topic("r/1", "c1");
        let join = seal(&key, &presence, b"{}").expect("seal");
        assert_eq!(
            room.open_presence(presence.as_bytes(), &join, now)
                .map(|o| o.record)
                .as_deref(),
            Ok(&b"{}"[..])
        );
        let other = presence::topic("r/1", "c2");
        assert_eq!(
            room.open_presence(other.as_bytes(), &join, now),
            Err(FORGED),
            "another client's presence"
        );
        assert_eq!(
            room.open_message(b"r/\xff", &sealed, now),
            Err(Kind::Rejected(Rejected::Malformed))
        );
    }

    #[test]
    fn what_did_not_open_is_counted_by_kind() {
        let mut room = Room::new(Keyring::new(secret()), &[]);
        assert_eq!(room.summary(), None);
        let plain = Kind::Rejected(Rejected::Plain);
        for why in [plain, plain, FORGED] {
            room.rejected(b"t", why, false);
        }
        room.rejected(b"t", Kind::Rejected(Rejected::Malformed), true);
        assert_eq!(
            room.summary().as_deref(),
            Some(
                "4 payload(s) not shown: not sealed with the room's secret (2 plain, \
                 1 malformed, 1 forged)"
            )
        );
        assert_eq!(room.reported.len(), 3);
    }

    #[test]
    fn new_keys_are_budgeted_and_the_named_rooms_are_derived_at_once() {
        let mut room = Room::new(Keyring::new(secret()), &["named".into(), "w/#".into()]);
        assert!(room.keyring.has("named") && !room.keyring.has("w/#"));
        let t0 = Instant::now();
        let mut budget = Budget::default();
        let taken = (0..100).filter(|_| budget.take(t0)).count();
        assert_eq!(taken, NEW_KEYS_BURST as usize);
        assert!(!budget.take(t0 + std::time::Duration::from_millis(100)));
        assert!(budget.take(t0 + std::time::Duration::from_millis(130)));
        // Over budget, a well-formed payload on a new topic is throttled, not derived for.
        room.budget.tokens = 0.0;
        room.budget.at = Some(t0);
        let key = RoomKey::derive(&secret(), "w/new");
        let sealed = seal(&key, "w/new", b"x").expect("seal");
        assert_eq!(
            room.open_message(b"w/new", &sealed, t0),
            Err(Kind::Throttled)
        );
        assert!(!room.keyring.has("w/new"));
        // A named room is never throttled.
        let named = seal(&RoomKey::derive(&secret(), "named"), "named", b"y").expect("seal");
        assert_eq!(
            room.open_message(b"named", &named, t0)
                .map(|o| o.record)
                .as_deref(),
            Ok(&b"y"[..])
        );
    }
}
