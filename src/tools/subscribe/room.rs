//! chat-sub in an encrypted room, without I/O: every message and presence payload is
//! opened with the key of its room before anything else looks at it, and what does not
//! open is counted and reported, once per kind — a stranger who floods the topic with
//! junk gets one line on stderr, not one per message, and never a line on stdout that
//! could pass for the room's.
//!
//! A room whose key is not at hand (a new topic under a wildcard) waits for it: its
//! well-formed payload asks for the key ([`Room::wanted`], derived by the driver's thread
//! of derivations, `subscribe::derive`) and is parked, with every later payload of that
//! room behind it, until [`Room::key_ready`] hands them back in arrival order. Rooms
//! whose key is at hand go on meanwhile: a flood of new topics holds up only itself.
//! What waits is bounded ([`Limits`]); what does not fit is `throttled`, like a new room
//! over the budget of derivations.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Instant, SystemTime};

use bytes::Bytes;

use crate::mqtt::topic;
use crate::mqtt::wire::Delivery;
use crate::room::presence;
use crate::room::seal::{self, Keyring, Rejected, RoomKey, Version};
use crate::room::sign::{Fingerprint, Mark, Verifier};

use super::members::{Members, Pin};

mod report;

pub use report::code;

/// New keys derived at once at most (a wildcard subscription meeting its rooms, or
/// retained messages on many topics), and then per second: each costs ~20 ms of a core,
/// so a stranger's flood of well-formed junk on new topics costs at most ~16% of one.
pub const NEW_KEYS_BURST: f64 = 64.0;
pub const NEW_KEYS_PER_SEC: f64 = 8.0;

/// How much may wait for keys: per room and in all, messages and bytes (topic and
/// payload).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub room_messages: usize,
    pub room_bytes: usize,
    pub all_messages: usize,
    pub all_bytes: usize,
}

/// What a flood of new rooms may park: a few seconds of a busy room each, and far more
/// than the budget of derivations lets a stranger's junk reach.
pub const LIMITS: Limits = Limits {
    room_messages: 1024,
    room_bytes: 16 << 20,
    all_messages: 8192,
    all_bytes: 64 << 20,
};

/// A delivery (acknowledged already) waiting for the key of its room.
pub struct Parked {
    pub delivery: Delivery,
    /// When it was received, for the printed time and presence's clock check.
    pub wall: SystemTime,
}

/// The deliveries waiting for one room's key, and their bytes.
#[derive(Default)]
struct Queue {
    parked: VecDeque<Parked>,
    bytes: usize,
}

/// What becomes of a delivery before it is opened.
pub enum Admit {
    /// Its room's key is at hand, or it needs none (malformed, not encrypted): open it.
    Now(Delivery),
    /// Parked until its room's key is ready.
    Parked,
    /// One new room too many at once, or no room left to wait in: counted, not shown.
    Throttled(Delivery),
}

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
    /// Whether an unsigned message was reported to an output without marks.
    told_unsigned: bool,
    /// Kinds reported already (messages and presence apart).
    reported: HashSet<(Kind, bool)>,
    budget: Budget,
    /// The last presence record taken per presence topic: its time (ms), and whether it
    /// is a leave.
    presence: HashMap<(String, Option<Fingerprint>), (i64, bool)>,
    /// Deliveries waiting for their room's key, per room, in arrival order.
    waiting: HashMap<String, Queue>,
    /// What waits in all: messages, bytes, and of those presence records.
    load: (usize, usize, usize),
    limits: Limits,
    /// Rooms whose key is asked for, not yet handed to the thread of derivations.
    wanted: Vec<String>,
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
            told_unsigned: false,
            reported: HashSet::new(),
            budget: Budget::default(),
            presence: HashMap::new(),
            waiting: HashMap::new(),
            load: (0, 0, 0),
            limits: LIMITS,
            wanted: Vec::new(),
        }
    }

    /// With the pins read from the file.
    pub fn with_members(self, members: Members) -> Room {
        Room { members, ..self }
    }

    /// The mark of a record opened in `room`, from `nick` (see `members`); a first-seen
    /// key is pinned only when `shown` (retained presence is learnt silently).
    pub fn judge(
        &mut self,
        room: &str,
        nick: Option<&str>,
        signer: Option<Fingerprint>,
        shown: bool,
    ) -> Mark {
        self.members.judge(room, nick, signer, shown)
    }

    /// The pins made since the last call, to save.
    pub fn take_pins(&mut self) -> Vec<Pin> {
        self.members.take_unsaved()
    }

    /// Decides whether a delivery received at `now` (`wall`) waits for its room's key: a
    /// well-formed payload of a room whose key is not at hand asks for it, within the
    /// budget of new keys; anything of a room already waiting waits behind it.
    pub fn admit(&mut self, d: Delivery, now: Instant, wall: SystemTime) -> Admit {
        let Some(room) = room_of(&d.topic) else {
            return Admit::Now(d);
        };
        let queued = self.waiting.contains_key(room);
        if !queued && (self.keyring.has(room) || !seal::well_formed(&d.payload)) {
            return Admit::Now(d);
        }
        let size = d.topic.len() + d.payload.len();
        let fits = self.fits(room, size);
        if !fits || (!queued && !self.budget.take(now)) {
            return Admit::Throttled(d);
        }
        let room = room.to_owned();
        if !queued {
            self.wanted.push(room.clone());
        }
        let is_presence = presence::is_presence(&d.topic);
        self.load.0 += 1;
        self.load.1 += size;
        self.load.2 += usize::from(is_presence);
        // Copies, so that a small payload does not keep a whole read buffer alive.
        let delivery = Delivery {
            topic: Bytes::copy_from_slice(&d.topic),
            payload: Bytes::copy_from_slice(&d.payload),
            ..d
        };
        let queue = self.waiting.entry(room).or_default();
        queue.parked.push_back(Parked { delivery, wall });
        queue.bytes += size;
        Admit::Parked
    }

    #[cfg(test)]
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// Whether one more delivery of `size` bytes may wait for the key of `room`.
    fn fits(&self, room: &str, size: usize) -> bool {
        let (messages, bytes) = self
            .waiting
            .get(room)
            .map_or((0, 0), |q| (q.parked.len(), q.bytes));
        let l = &self.limits;
        messages < l.room_messages
            && bytes + size <= l.room_bytes
            && self.load.0 < l.all_messages
            && self.load.1 + size <= l.all_bytes
    }

    /// The rooms whose keys are wanted since the last call, each once while it waits.
    pub fn wanted(&mut self) -> Vec<String> {
        std::mem::take(&mut self.wanted)
    }

    /// The key of `room`, derived elsewhere: kept, and what waited for it handed back in
    /// arrival order, to be opened now.
    pub fn key_ready(&mut self, room: &str, key: RoomKey) -> VecDeque<Parked> {
        self.keyring.insert(room, key);
        let queue = self.waiting.remove(room).unwrap_or_default();
        let presence = queue
            .parked
            .iter()
            .filter(|p| presence::is_presence(&p.delivery.topic))
            .count();
        self.load.0 -= queue.parked.len();
        self.load.1 -= queue.bytes;
        self.load.2 -= presence;
        queue.parked
    }

    /// Whether presence records wait for a key (`--who` is not done hearing).
    pub fn presence_waiting(&self) -> bool {
        self.load.2 > 0
    }

    /// Whether an opened presence record on `topic`, received at `wall`, is news: its
    /// `ts` must be a valid time not ahead of `wall` by more than [`PRESENCE_AHEAD`], and
    /// (time, leave) later than the last record taken for the topic — a leave wins over a
    /// join of the same time (chat-pub gives each connection's join and will a new time).
    /// So a captured join or will published again changes nothing. Kept per signer: a
    /// record signed by another member, dated ahead, does not make the owner's records
    /// old news.
    pub fn fresh(
        &mut self,
        topic: &[u8],
        signer: Option<Fingerprint>,
        plain: &[u8],
        wall: SystemTime,
    ) -> bool {
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
        let key = (String::from_utf8_lossy(topic).into_owned(), signer);
        match self.presence.get(&key) {
            Some(&last) if record <= last => false,
            _ => {
                self.presence.insert(key, record);
                true
            }
        }
    }

    /// Opens a message received on `topic` (the key of the room `topic`, the topic as
    /// additional data). A topic that is not UTF-8 cannot be a room's.
    pub fn open_message(&mut self, topic: &[u8], payload: &[u8]) -> Result<Opened, Kind> {
        let topic = std::str::from_utf8(topic).map_err(|_| Kind::Rejected(Rejected::Malformed))?;
        self.open(topic, topic, payload)
    }

    /// Opens a presence payload: sealed with the key of the room the topic names, with
    /// the presence topic itself as additional data.
    pub fn open_presence(&mut self, topic: &[u8], payload: &[u8]) -> Result<Opened, Kind> {
        let malformed = Kind::Rejected(Rejected::Malformed);
        let topic = std::str::from_utf8(topic).map_err(|_| malformed)?;
        let (room, _) = presence::parse(topic).ok_or(malformed)?;
        self.open(room, topic, payload)
    }

    fn open(&mut self, room: &str, topic: &str, payload: &[u8]) -> Result<Opened, Kind> {
        // Keys are derived on the thread of derivations (`admit` parks what waits for
        // one), never here: the keyring opens only with a key at hand.
        if !self.keyring.has(room) && seal::well_formed(payload) {
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
}

/// The room whose key opens a payload on `topic`: the topic itself, or the room a
/// presence topic announces; none for a topic that cannot be a room's (not UTF-8).
fn room_of(topic: &[u8]) -> Option<&str> {
    let topic = std::str::from_utf8(topic).ok()?;
    match presence::is_presence(topic.as_bytes()) {
        true => presence::parse(topic).map(|(room, _)| room),
        false => Some(topic),
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
        let sealed = seal(&key, "r/1", b"hello").expect("seal");
        assert_eq!(
            room.open_message(b"r/1", &sealed),
            Err(Kind::Throttled),
            "no key is derived here"
        );
        room.key_ready("r/1", key.clone());
        room.key_ready("r/2", RoomKey::derive(&secret(), "r/2"));
        assert_eq!(
            room.open_message(b"r/1", &sealed)
                .map(|o| o.record)
                .as_deref(),
            Ok(&b"hello"[..])
        );
        assert_eq!(room.open_message(b"r/2", &sealed), Err(FORGED));
        let presence = presence::topic("r/1", "c1");
        let join = seal(&key, &presence, b"{}").expect("seal");
        assert_eq!(
            room.open_presence(presence.as_bytes(), &join)
                .map(|o| o.record)
                .as_deref(),
            Ok(&b"{}"[..])
        );
        let other = presence::topic("r/1", "c2");
        assert_eq!(
            room.open_presence(other.as_bytes(), &join),
            Err(FORGED),
            "another client's presence"
        );
        assert_eq!(
            room.open_message(b"r/\xff", &sealed),
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
        let wall = SystemTime::now();
        assert!(matches!(
            room.admit(delivery("w/new", &sealed), t0, wall),
            Admit::Throttled(_)
        ));
        assert!(!room.keyring.has("w/new") && room.wanted().is_empty());
        // A named room is never throttled; junk needs no key.
        let named = seal(&RoomKey::derive(&secret(), "named"), "named", b"y").expect("seal");
        assert!(matches!(
            room.admit(delivery("named", &named), t0, wall),
            Admit::Now(_)
        ));
        assert!(matches!(
            room.admit(delivery("w/other", b"junk"), t0, wall),
            Admit::Now(_)
        ));
        assert_eq!(
            room.open_message(b"named", &named)
                .map(|o| o.record)
                .as_deref(),
            Ok(&b"y"[..])
        );
    }

    fn delivery(topic: &str, payload: &[u8]) -> Delivery {
        Delivery {
            topic: Bytes::copy_from_slice(topic.as_bytes()),
            payload: Bytes::copy_from_slice(payload),
            qos: 1,
            retain: false,
            dup: false,
            pkid: 1,
            properties: None,
        }
    }
}
