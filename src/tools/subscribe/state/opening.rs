//! chat-sub's state in an encrypted room, without I/O: keys arriving from the driver's
//! thread of derivations and what waited for them shown, each payload opened (and its
//! signature checked) before anything reads it, presence records judged as messages are.

use std::borrow::Cow;
use std::time::{Instant, SystemTime};

use super::{Room, Step, SubState, room};
use crate::mqtt::wire::Delivery;
use crate::room::presence;
use crate::room::seal::RoomKey;
use crate::room::sign::Fingerprint;
use crate::tools::render::{Delivered, PresenceLine};

impl SubState {
    /// The key of `room` is ready (derived on the driver's thread): what waited for it is
    /// shown now, in the order it arrived (`Done`: `--count` reached).
    pub fn key_ready(&mut self, room: &str, key: RoomKey, now: Instant) -> Step {
        let Some(r) = &mut self.room else {
            return Step::Continue;
        };
        for p in r.key_ready(room, key) {
            if self.show(&p.delivery, now, p.wall) == Step::Done {
                return Step::Done;
            }
        }
        Step::Continue
    }

    /// The rooms whose keys are wanted (each once while its messages wait), for the
    /// driver's thread of derivations.
    pub fn wanted(&mut self) -> Vec<String> {
        self.room.as_mut().map(Room::wanted).unwrap_or_default()
    }

    /// Counts and reports a payload of an encrypted room that is not shown (marked in
    /// `--json` when it is a message).
    pub(super) fn not_shown(&mut self, d: &Delivery, why: room::Kind, wall: SystemTime) {
        let Some(room) = &mut self.room else {
            return;
        };
        let is_presence = presence::is_presence(&d.topic);
        room.rejected(&d.topic, why, is_presence);
        if !is_presence {
            self.printer
                .rejected(&super::delivered(d, wall), room::code(why));
        }
    }

    /// The payload to show: as received, or in an encrypted room as decrypted, with who
    /// signed it; None (counted, reported, and in `--json` marked) when it does not open.
    pub(super) fn open<'a>(
        &mut self,
        m: &Delivered<'a>,
    ) -> Option<(Cow<'a, [u8]>, Option<Fingerprint>)> {
        let Some(room) = &mut self.room else {
            return Some((Cow::Borrowed(m.payload), None));
        };
        match room.open_message(m.topic, m.payload) {
            Ok(opened) => Some((Cow::Owned(opened.record), opened.signer)),
            Err(why) => {
                room.rejected(m.topic, why, false);
                self.printer.rejected(m, room::code(why));
                None
            }
        }
    }

    /// A presence message: the view decides whether a join or leave is shown. In an
    /// encrypted room only sealed records count (an empty leave, which cannot be sealed,
    /// is ignored: members say goodbye with a sealed leave), each newer than the last.
    pub(super) fn presence_message(&mut self, d: &Delivery, now: Instant, wall: SystemTime) {
        let (payload, mark) = match &mut self.room {
            None => (Cow::Borrowed(&d.payload[..]), None),
            Some(_) if d.payload.is_empty() => return,
            Some(room) => match room.open_presence(&d.topic, &d.payload) {
                Ok(o) if room.fresh(&d.topic, o.signer, &o.record, wall) => {
                    let topic = String::from_utf8_lossy(&d.topic);
                    let name = presence::parse(&topic).map(|(r, _)| r.to_owned());
                    // A leave is shown under the nick of the join it ends: judged by it.
                    let nick = match presence::decode(&o.record) {
                        Some(presence::Event::Leave) => self.view.joined_nick(&topic),
                        _ => None,
                    };
                    let nick = nick.or_else(|| presence::nick_of(&o.record));
                    let name = name.unwrap_or_default();
                    let mark = room.judge(&name, nick.as_deref(), o.signer, !d.retain);
                    (Cow::Owned(o.record), Some(mark))
                }
                Ok(_) => return log::debug!("a presence record that is not news (a replay?)"),
                Err(why) => return room.rejected(&d.topic, why, true),
            },
        };
        if let Some(change) = self.view.message(&d.topic, &payload, d.retain, now, mark) {
            self.printer.presence(&PresenceLine {
                room: &change.room,
                nick: &change.nick,
                joined: change.joined,
                ts: change.ts.as_deref(),
                received: wall,
                mark: change.mark,
            });
        }
    }
}
