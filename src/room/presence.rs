//! Presence: who is online in a room, kept as retained state beside it.
//!
//! While chat-pub reads a room from stdin, its client has a presence topic
//!
//! ```text
//! mqttchat-presence/<room>/<client id, percent-encoded>
//! ```
//!
//! holding a retained join, `{"event":"join","from":NICK,"ts":TIME}`. Leaving publishes an
//! empty retained message there, which both tells the subscribers and deletes the retained
//! state (no clutter is left); the same empty message is registered as the connection's
//! will, so the broker publishes it when chat-pub dies without saying goodbye. In an
//! encrypted room every record is signed and sealed ([`Announce::seal_join`]): the will is
//! a sealed leave record, retained, and the goodbye a sealed leave before the empty one. Presence
//! lives under its own first level, so a subscriber of the room — even of `room/#` — sees
//! chat only, and a subscription filter maps to a presence filter level by level.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use serde::Deserialize;

use crate::room::envelope;
use crate::room::seal::RoomKey;
use crate::room::sign::{self, Identity, Item, Mark, Sealer};

/// The first topic level of every presence topic.
pub const TOPIC_PREFIX: &str = "mqttchat-presence";

/// The presence topic of a client in a room.
pub fn topic(room: &str, client_id: &str) -> String {
    format!("{TOPIC_PREFIX}/{room}/{}", encode_level(client_id))
}

/// The presence filter that matches the presence topics of the rooms `filter` matches.
pub fn filter(filter: &str) -> String {
    if filter == "#" || filter.ends_with("/#") {
        // `#` already matches one more level (the client id).
        format!("{TOPIC_PREFIX}/{filter}")
    } else {
        format!("{TOPIC_PREFIX}/{filter}/+")
    }
}

/// Whether a topic is a presence topic.
pub fn is_presence(topic: &[u8]) -> bool {
    topic.starts_with(TOPIC_PREFIX.as_bytes()) && topic.get(TOPIC_PREFIX.len()) == Some(&b'/')
}

/// Splits a presence topic into the room and the (decoded) client id.
pub fn parse(topic: &str) -> Option<(&str, String)> {
    let rest = topic.strip_prefix(TOPIC_PREFIX)?.strip_prefix('/')?;
    let (room, id) = rest.rsplit_once('/')?;
    Some((room, decode_level(id)))
}

/// A client id as one topic level: every byte outside `[A-Za-z0-9_-]` as `%XX`. Not just
/// the characters MQTT forbids in a level (`/ + #`, NUL): strict brokers refuse more in
/// topics (NATS refuses `.` and spaces, RabbitMQ maps `.` and `/` onto each other), and a
/// client id like `alice.laptop` must still give a topic every broker takes.
pub fn encode_level(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    if out.is_empty() {
        out.push_str("%00"); // an empty level would merge with its neighbours in meaning
    }
    out
}

/// Undoes [`encode_level`] (invalid escapes are kept as they are).
pub fn decode_level(level: &str) -> String {
    let bytes = level.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The retained join of `nick`, now.
pub fn join_payload(nick: &str) -> Vec<u8> {
    record("join", nick, &envelope::now_rfc3339())
}

/// A presence record: `{"event":…,"from":…,"ts":…}`.
fn record(event: &str, nick: &str, ts: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(nick.len() + 64);
    crate::room::json::Object::start(&mut out)
        .str("event", event)
        .str("from", nick)
        .str("ts", ts)
        .end();
    out
}

/// chat-pub's presence in a room: where it announces itself, the join it publishes
/// there, and the will that says goodbye when it dies.
pub struct Announce {
    topic: Bytes,
    join: Bytes,
    /// In an encrypted room, the sealed leave record with the join's time (the will);
    /// empty otherwise.
    will: Bytes,
    nick: String,
    room: String,
    /// In an encrypted room, its key (boxed: moved around, it leaves no copies), the
    /// identity that signs, and the time of the current join, in Unix milliseconds.
    sealed: Option<(Box<RoomKey>, Arc<Identity>, i64)>,
}

impl Announce {
    /// The presence of the client `client_id` with `nick` in `room`, joining now.
    pub fn new(room: &str, client_id: &str, nick: &str) -> Announce {
        Announce {
            topic: Bytes::from(topic(room, client_id)),
            join: Bytes::from(join_payload(nick)),
            will: Bytes::new(),
            nick: nick.to_owned(),
            room: room.to_owned(),
            sealed: None,
        }
    }

    /// Signs and encrypts the presence with the key of its room (its additional data is
    /// the presence topic, so a record cannot pass for another client's or room's): the
    /// join, and as the will a leave record with the join's time. An empty payload cannot
    /// be sealed, so members trust only sealed records.
    pub fn seal_join(&mut self, sealer: &mut Sealer, now: SystemTime) -> Result<(), String> {
        let key = Box::new(sealer.keyring.key(&self.room).clone());
        self.sealed = Some((key, sealer.identity().clone(), 0));
        self.renew(now)
    }

    /// A presence record signed and sealed for this presence topic.
    fn seal(
        &self,
        key: &RoomKey,
        identity: &Identity,
        event: &str,
        ts: &str,
    ) -> Result<Bytes, String> {
        let topic = std::str::from_utf8(&self.topic).map_err(|_| "the topic is not UTF-8")?;
        let record = record(event, &self.nick, ts);
        let item = Item {
            room: &self.room,
            topic,
            record: &record,
        };
        sign::seal_one(identity, key, item).map(Bytes::from)
    }

    /// In an encrypted room, a new join and will for the next connection, with a time
    /// later than any before: a reader takes a record only if it is later than the last
    /// one it took, so a captured join or will published again is old news.
    pub fn renew(&mut self, now: SystemTime) -> Result<(), String> {
        let Some((key, identity, last)) = &self.sealed else {
            return Ok(());
        };
        let ms = unix_ms(now).max(*last + 1);
        let ts = envelope::rfc3339(ms.div_euclid(1000), ms.rem_euclid(1000) as u32);
        let join = self.seal(key, identity, "join", &ts)?;
        let will = self.seal(key, identity, "leave", &ts)?;
        (self.join, self.will) = (join, will);
        if let Some((_, _, last)) = &mut self.sealed {
            *last = ms;
        }
        Ok(())
    }

    /// In an encrypted room, the will's payload after [`Announce::renew`].
    pub fn sealed_will(&self) -> Option<Vec<u8>> {
        self.sealed.as_ref().map(|_| self.will.to_vec())
    }

    /// The presence topic, where the join, the will and the goodbye go.
    pub fn topic(&self) -> &Bytes {
        &self.topic
    }

    /// The join record, published retained at QoS 1 on every connection (a broker may
    /// have lost it).
    pub fn join_record(&self) -> &Bytes {
        &self.join
    }

    /// The will's payload: dying without DISCONNECT publishes it, retained (offline; in
    /// an encrypted room a sealed leave, else empty: no state left behind).
    pub fn will_payload(&self) -> Vec<u8> {
        self.will.to_vec()
    }

    /// The goodbye, in order, as (payload, retain), each at QoS 0 (the DISCONNECT
    /// handshake that ends every run makes sure the broker read them, and a goodbye is
    /// never a failed line): in an encrypted room a leave record sealed now (newer than
    /// the join, so that the join published again by anybody is old news), then always
    /// the retained empty message that means offline and clears the state.
    pub fn goodbye(&self, now: SystemTime) -> Vec<(Bytes, bool)> {
        let mut out = Vec::with_capacity(2);
        if let Some((key, identity, last)) = &self.sealed {
            let ms = unix_ms(now).max(*last + 1);
            let ts = envelope::rfc3339(ms.div_euclid(1000), ms.rem_euclid(1000) as u32);
            match self.seal(key, identity, "leave", &ts) {
                Ok(sealed) => out.push((sealed, false)),
                Err(e) => log::warn!("no encrypted goodbye: {e}"),
            }
        }
        out.push((Bytes::new(), true));
        out
    }
}

/// `t` in Unix milliseconds (0 before 1970).
fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A presence message as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Online, with the nick and when it joined (as sent).
    Join { nick: String, ts: Option<String> },
    /// Offline (an empty payload: a goodbye or the will).
    Leave,
}

#[derive(Deserialize)]
struct Record {
    #[serde(default)]
    event: Option<String>,
    from: String,
    #[serde(default)]
    ts: Option<String>,
}

/// Reads a presence payload (empty, or a join or leave record); None for one that is
/// neither a join nor a leave.
pub fn decode(payload: &[u8]) -> Option<Event> {
    if payload.is_empty() {
        return Some(Event::Leave);
    }
    let r: Record = serde_json::from_slice(payload).ok()?;
    match r.event.as_deref() {
        Some("leave") => Some(Event::Leave),
        None | Some("join") => Some(Event::Join {
            nick: r.from,
            ts: r.ts,
        }),
        Some(_) => None,
    }
}

/// The nick of a presence record.
pub fn nick_of(payload: &[u8]) -> Option<String> {
    serde_json::from_slice::<Record>(payload)
        .ok()
        .map(|r| r.from)
}

/// The `ts` of a presence record, and whether it is a leave.
pub fn decode_record(payload: &[u8]) -> Option<(Option<String>, bool)> {
    let r: Record = serde_json::from_slice(payload).ok()?;
    match r.event.as_deref() {
        None | Some("join") => Some((r.ts, false)),
        Some("leave") => Some((r.ts, true)),
        Some(_) => None,
    }
}

/// A change worth a line: somebody joined or left while chat-sub was watching.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub room: String,
    pub nick: String,
    pub joined: bool,
    pub ts: Option<String>,
    /// In an encrypted room, who signed the record.
    pub mark: Option<Mark>,
}

/// Someone online: (room, nick, when they joined, in an encrypted room who signed the
/// join).
pub type Online<'a> = (&'a str, &'a str, Option<&'a str>, Option<Mark>);

/// Who is online, as a subscriber learns it from presence messages.
#[derive(Debug, Default)]
pub struct Roster {
    /// Presence topic → (room, nick, when it joined, who signed the join).
    online: HashMap<String, (String, String, Option<String>, Option<Mark>)>,
}

impl Roster {
    /// Takes one presence message. Returns the change to show, if any: state that was
    /// already retained when chat-sub subscribed is learnt silently (it is not news), and
    /// a leave is shown with the nick its join gave (or the client id, if none was seen).
    pub fn update(
        &mut self,
        topic: &str,
        payload: &[u8],
        retained: bool,
        mark: Option<Mark>,
    ) -> Option<Change> {
        let (room, id) = parse(topic)?;
        let event = decode(payload)?;
        // A record signed by another key than the join it would replace or end (another
        // member's forgery on this client's presence topic) changes nothing: it is shown
        // as a changed key, under the nick of the join and its own.
        // An unsigned record does not end or replace a signed join either.
        let joined_by = (self.online.get(topic))
            .and_then(|e| e.3)
            .and_then(Mark::fingerprint);
        let signer = mark.and_then(Mark::fingerprint);
        if let Some(was) = joined_by
            && signer != Some(was)
        {
            let nick = match &event {
                Event::Join { nick, .. } => nick.clone(),
                Event::Leave => self.online[topic].1.clone(),
            };
            return Some(Change {
                room: room.to_string(),
                nick,
                joined: matches!(event, Event::Join { .. }),
                ts: None,
                mark: Some(signer.map_or(Mark::Downgraded, Mark::Changed)),
            });
        }
        match event {
            Event::Join { nick, ts } => {
                let known = self.online.insert(
                    topic.to_string(),
                    (room.to_string(), nick.clone(), ts.clone(), mark),
                );
                // A join already known (a repeat after a reconnect) is not news either.
                (!retained && known.is_none()).then(|| Change {
                    room: room.to_string(),
                    nick,
                    joined: true,
                    ts,
                    mark,
                })
            }
            Event::Leave => {
                let known = self.online.remove(topic);
                // A retained goodbye (a sealed will) of someone never seen is not news; in
                // an encrypted room (marks), no leave is: it would be shown under a nick
                // that its signature was not judged by.
                if (retained || mark.is_some()) && known.is_none() {
                    return None;
                }
                // Shown under the join's nick (by which the caller judged it; its key
                // was checked above against the join's).
                let nick = known.map_or(id, |(_, nick, _, _)| nick);
                Some(Change {
                    room: room.to_string(),
                    nick,
                    joined: false,
                    ts: None,
                    mark,
                })
            }
        }
    }

    /// The nick of the join on `topic`, if one is online there.
    pub fn nick_at(&self, topic: &str) -> Option<&str> {
        self.online.get(topic).map(|e| e.1.as_str())
    }

    /// Everyone online, sorted by room and nick.
    pub fn online(&self) -> Vec<Online<'_>> {
        let mut all: Vec<_> = self
            .online
            .values()
            .map(|(room, nick, ts, mark)| (room.as_str(), nick.as_str(), ts.as_deref(), *mark))
            .collect();
        all.sort_by(|a, b| (a.0, a.1, a.2).cmp(&(b.0, b.1, b.2)));
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_and_filters() {
        assert_eq!(
            topic("lobby", "chat-pub-1"),
            "mqttchat-presence/lobby/chat-pub-1"
        );
        assert_eq!(
            topic("lobby", "alice.laptop é"),
            "mqttchat-presence/lobby/alice%2Elaptop%20%C3%A9"
        );
        assert_eq!(
            topic("a/b", "x/y+#%"),
            "mqttchat-presence/a/b/x%2Fy%2B%23%25"
        );
        assert_eq!(filter("lobby"), "mqttchat-presence/lobby/+");
        assert_eq!(filter("chat/+"), "mqttchat-presence/chat/+/+");
        assert_eq!(filter("chat/#"), "mqttchat-presence/chat/#");
        assert_eq!(filter("#"), "mqttchat-presence/#");
        assert_eq!(
            parse("mqttchat-presence/a/b/x%2Fy"),
            Some(("a/b", "x/y".to_string()))
        );
        assert!(is_presence(b"mqttchat-presence/x/y"));
        assert!(!is_presence(b"mqttchat-presence-not/x"));
        assert!(!is_presence(b"lobby"));
    }

    #[test]
    fn client_ids_round_trip_through_a_level() {
        for id in [
            "plain",
            "a/b",
            "+#%",
            "é\u{1b}[2J",
            "",
            "%zz",
            "alice.laptop",
            "a b",
        ] {
            let level = encode_level(id);
            let strict = |c: char| c.is_ascii_alphanumeric() || "_-%".contains(c);
            assert!(level.chars().all(strict) && !level.is_empty(), "{level}");
            if !id.is_empty() {
                assert_eq!(decode_level(&level), id);
            }
        }
    }

    #[test]
    fn roster_shows_news_only() {
        let mut r = Roster::default();
        let t = topic("lobby", "c1");
        let join = join_payload("bob");
        // Retained at subscription time: learnt, not shown.
        assert_eq!(r.update(&t, &join, true, None), None);
        assert_eq!(r.online(), vec![("lobby", "bob", r.online()[0].2, None)]);
        // Leaving is news, with the nick the join gave.
        let left = r.update(&t, b"", false, None).unwrap();
        assert_eq!((left.nick.as_str(), left.joined), ("bob", false));
        assert!(r.online().is_empty());
        // A live join is news; the same join again is not.
        assert!(r.update(&t, &join, false, None).unwrap().joined);
        assert_eq!(r.update(&t, &join, false, None), None);
        // A leave of someone never seen shows the client id.
        let other = topic("lobby", "who%knows");
        assert_eq!(
            r.update(&other, b"", false, None).unwrap().nick,
            "who%knows"
        );
        assert_eq!(r.update("lobby", &join, false, None), None);
    }

    #[test]
    fn payloads() {
        let join = join_payload("bo\"b");
        match decode(&join) {
            Some(Event::Join { nick, ts }) => {
                assert_eq!(nick, "bo\"b");
                assert!(ts.is_some());
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(decode(b""), Some(Event::Leave));
        assert_eq!(decode(b"junk"), None);
    }

    #[test]
    fn each_connection_gets_a_join_and_will_later_than_the_last() {
        use crate::room::seal::{Keyring, RoomSecret, Version};
        use crate::room::sign::Verifier;
        let secret = || RoomSecret::new(b"a room secret, long enough".to_vec()).expect("s");
        let me = Arc::new(Identity::from_seed(&[3; 32]));
        let mut sealer = Sealer::new(Keyring::new(secret()), me.clone());
        let mut ring = Keyring::new(secret());
        let mut a = Announce::new("r", "c1", "bob");
        a.seal_join(&mut sealer, SystemTime::now()).expect("sealed");
        let t = topic("r", "c1");
        // Signed by its member for the room and the presence topic.
        let open = |ring: &mut Keyring, p: &[u8]| {
            let (version, plain) = ring.open("r", &t, p).expect("opens");
            assert_eq!(version, Version::V2);
            let signed = Verifier::default().check("r", &t, &plain).expect("signed");
            assert_eq!(signed.fingerprint, me.fingerprint());
            decode_record(signed.record).expect("a record")
        };
        let (join1, leave1) = (open(&mut ring, &a.join), open(&mut ring, &a.will_payload()));
        assert_eq!(
            (join1.0.clone(), join1.1, leave1.1),
            (leave1.0.clone(), false, true)
        );
        a.renew(SystemTime::now()).expect("renewed");
        let join2 = open(&mut ring, &a.join);
        let will2 = a.sealed_will().expect("sealed");
        assert!(join2.0 > join1.0, "{join2:?} after {join1:?}");
        assert_eq!(open(&mut ring, &will2), (join2.0, true));
    }
}
