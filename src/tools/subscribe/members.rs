//! Who is who in encrypted rooms, without I/O: the key each nick was first seen with in
//! each room ("pinned", as ssh pins a host's key in known_hosts), and the mark each
//! signed or unsigned record gets against it. The file behind the pins is read and
//! written by `tools::known`; this keeps the table and says which lines to add.
//!
//! - A nick never seen in a room: its key is pinned, and this first record is marked as
//!   a new key.
//! - The pinned key: verified.
//! - Another key: marked as a changed key, on every record, until the user accepts it
//!   (`chat-sub --trust NICK FINGERPRINT ROOM`, which pins the new one); the pin stays.
//! - A record of format version 1 carries no signature: unsigned, on every record.
//! - A signed record without a nick (a raw message): its key is shown, not verified.

use std::collections::HashMap;

use crate::room::sign::{Fingerprint, Mark};

/// One pin: in `room`, `nick` has the key of `fingerprint`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    pub room: String,
    pub nick: String,
    pub fingerprint: Fingerprint,
}

/// The pins, and those made in this run that are not saved yet.
#[derive(Debug, Default)]
pub struct Members {
    /// Room → nick → key.
    pins: HashMap<String, HashMap<String, Fingerprint>>,
    /// Nick → every key pinned for it, in any room.
    keys_of: HashMap<String, Vec<Fingerprint>>,
    unsaved: Vec<Pin>,
}

impl Members {
    /// The pins read from the file: a later line for the same room and nick wins (an
    /// accepted key is appended).
    pub fn new(pins: impl IntoIterator<Item = Pin>) -> Members {
        let mut m = Members::default();
        for p in pins {
            m.pins
                .entry(p.room)
                .or_default()
                .insert(p.nick, p.fingerprint);
        }
        for room in m.pins.values() {
            for (nick, fp) in room {
                let keys = m.keys_of.entry(nick.clone()).or_default();
                if !keys.contains(fp) {
                    keys.push(*fp);
                }
            }
        }
        m
    }

    fn pin(&mut self, room: String, nick: String, fp: Fingerprint) {
        let keys = self.keys_of.entry(nick.clone()).or_default();
        if !keys.contains(&fp) {
            keys.push(fp);
        }
        self.pins.entry(room).or_default().insert(nick, fp);
    }

    /// The mark of a record in `room` from `nick` (None: no nick), signed with the key of
    /// `signer` (None: unsigned). A first-seen key is pinned when `pin` (a record that is
    /// shown; retained state learnt silently must not pin what nobody saw).
    ///
    /// A nick first seen in a room but pinned in another: its key there is its key here
    /// too (pinned here when it matches, a changed key when not), so that a member cannot
    /// take a known nick in a room it never spoke in.
    pub fn judge(
        &mut self,
        room: &str,
        nick: Option<&str>,
        signer: Option<Fingerprint>,
        pin: bool,
    ) -> Mark {
        let Some(fp) = signer else {
            return match nick.is_some_and(|n| self.keys_of.contains_key(n)) {
                true => Mark::Downgraded,
                false => Mark::Unsigned,
            };
        };
        let Some(nick) = nick else {
            return Mark::Nameless(fp);
        };
        match self.pins.get(room).and_then(|r| r.get(nick)) {
            Some(&p) if p == fp => return Mark::Verified(fp),
            Some(_) => return Mark::Changed(fp),
            None => {}
        }
        let elsewhere = self.keys_of.get(nick).map(|k| k.contains(&fp));
        let mark = match elsewhere {
            Some(false) => return Mark::Changed(fp),
            Some(true) => Mark::Verified(fp),
            None => Mark::NewKey(fp),
        };
        if pin {
            self.pin(room.to_owned(), nick.to_owned(), fp);
            self.unsaved.push(Pin {
                room: room.to_owned(),
                nick: nick.to_owned(),
                fingerprint: fp,
            });
        }
        mark
    }

    /// The pins made since the last call, to append to the file.
    pub fn take_unsaved(&mut self) -> Vec<Pin> {
        std::mem::take(&mut self.unsaved)
    }
}

/// A pin as a line of the file: `ROOM NICK FINGERPRINT`, room and nick with `%`, space,
/// and control characters as `%XX`.
pub fn format_pin(p: &Pin) -> String {
    format!(
        "{} {} {}\n",
        encode(&p.room),
        encode(&p.nick),
        p.fingerprint
    )
}

/// A line of the file: a pin, None for a blank line or a `#` comment, or why it is not
/// one.
pub fn parse_pin(line: &str) -> Result<Option<Pin>, String> {
    let line = line.trim_end_matches(['\r', '\n']);
    if line.trim().is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let mut fields = line.split(' ');
    let (Some(room), Some(nick), Some(fp), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err("not ROOM NICK FINGERPRINT".into());
    };
    Ok(Some(Pin {
        room: decode(room)?,
        nick: decode(nick)?,
        fingerprint: Fingerprint::parse(fp)?,
    }))
}

fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '%' | ' ' | '\u{7f}' | '\0'..='\u{1f}' => out.push_str(&format!("%{:02X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

fn decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()));
            let hex = hex.ok_or("a % without two hex digits")?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| "a % without two hex digits")?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "not UTF-8".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Fingerprint = Fingerprint([1; 32]);
    const B: Fingerprint = Fingerprint([2; 32]);

    #[test]
    fn first_seen_pins_then_verifies_and_another_key_is_changed_every_time() {
        let mut m = Members::default();
        assert_eq!(m.judge("r", Some("alice"), Some(A), true), Mark::NewKey(A));
        assert_eq!(
            m.judge("r", Some("alice"), Some(A), true),
            Mark::Verified(A)
        );
        for _ in 0..3 {
            assert_eq!(m.judge("r", Some("alice"), Some(B), true), Mark::Changed(B));
        }
        assert_eq!(
            m.judge("r", Some("alice"), Some(A), true),
            Mark::Verified(A)
        );
        // Per room: the same nick elsewhere is someone else.
        // Per room, but a nick's key from another room counts: another key is a changed
        // one (not pinned), the same key is pinned here too.
        assert_eq!(m.judge("s", Some("alice"), Some(B), true), Mark::Changed(B));
        assert_eq!(
            m.judge("s", Some("alice"), Some(A), true),
            Mark::Verified(A)
        );
        assert_eq!(m.judge("s", Some("bob"), Some(B), true), Mark::NewKey(B));
        // Unsigned: plain for a nick never pinned, loud for one that signs elsewhere.
        assert_eq!(m.judge("r", Some("carol"), None, true), Mark::Unsigned);
        assert_eq!(m.judge("r", Some("alice"), None, true), Mark::Downgraded);
        assert_eq!(m.judge("r", None, Some(B), true), Mark::Nameless(B));
        let saved: Vec<_> = m
            .take_unsaved()
            .into_iter()
            .map(|p| (p.room, p.nick))
            .collect();
        let pair = |r: &str, n: &str| (r.to_owned(), n.to_owned());
        assert_eq!(
            saved,
            [pair("r", "alice"), pair("s", "alice"), pair("s", "bob")]
        );
        assert!(m.take_unsaved().is_empty());
    }

    #[test]
    fn a_later_line_wins_so_an_accepted_key_verifies() {
        let pin = |fp| Pin {
            room: "r".into(),
            nick: "alice".into(),
            fingerprint: fp,
        };
        let mut m = Members::new([pin(A), pin(B)]);
        assert_eq!(
            m.judge("r", Some("alice"), Some(B), true),
            Mark::Verified(B)
        );
        assert_eq!(m.judge("r", Some("alice"), Some(A), true), Mark::Changed(A));
    }

    #[test]
    fn pins_are_written_and_read_back_whatever_the_room_and_nick() {
        for (room, nick) in [("r", "alice"), ("a b/%c", "zoë\tx"), ("équipe/#x", "a\nb")] {
            let pin = Pin {
                room: room.into(),
                nick: nick.into(),
                fingerprint: A,
            };
            let line = format_pin(&pin);
            assert_eq!(line.matches(' ').count(), 2, "{line:?}");
            assert_eq!(line.matches('\n').count(), 1, "{line:?}");
            assert_eq!(parse_pin(&line), Ok(Some(pin)));
        }
        assert_eq!(parse_pin("# a comment"), Ok(None));
        assert_eq!(parse_pin(""), Ok(None));
        for bad in [
            "r alice",
            "r alice 0101",
            "r a%zz x",
            "r a%+f x",
            &format!("r a b {A}"),
        ] {
            assert!(parse_pin(bad).is_err(), "{bad}");
        }
    }
}
