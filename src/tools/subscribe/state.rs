//! chat-sub's protocol state, without I/O: the subscriptions and their SUBACKs, each
//! message through the [`Inbox`] to the [`Printer`] or the presence [`View`], and what a
//! lost connection means ([`Takeover`], backoff). Packets go out into a [`Tx`]; lines go
//! into the printer's buffer; the time is passed in.
//!
//! In an encrypted room, a message of a room whose key is not at hand is parked in the
//! [`Room`] until the driver's thread of derivations brings the key ([`SubState::wanted`],
//! then [`SubState::key_ready`]), and printed then, in order; other rooms are printed at
//! once. Such a message is acknowledged at receipt, not once printed: the broker's window
//! of unacknowledged messages (20 with mosquitto) would otherwise fill with a flood's, and
//! hold up the rooms whose keys are at hand behind it.

use std::time::{Duration, Instant, SystemTime};

use super::inbox::Inbox;
use super::printer::Printer;
use super::room::{self, Admit, Room};
use super::takeover::{STABLE, Takeover};
use super::view::{Mode, View};
use crate::error::Error;
use crate::escape::escaped;
use crate::mqtt::dial::Backoff;
use crate::mqtt::tx::LinkError;
use crate::mqtt::tx::Tx;
use crate::mqtt::wire::{self, AckKind, Delivery, Inbound, Version};
use crate::room::presence;
use crate::room::seal;
use crate::tools::render::{Delivered, Online};

/// Packet id of our SUBSCRIBE to the chat topics.
const SUBSCRIBE_PKID: u16 = 1;
/// Packet id of our SUBSCRIBE to the presence topics (its refusal is only a warning).
const PRESENCE_PKID: u16 = 2;

/// What a packet led to.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    Continue,
    /// `--count` reached.
    Done,
    /// The broker refused a subscription (exit 4).
    Refused(String),
}

/// What chat-sub subscribes to.
pub struct Subscriptions {
    pub filters: Vec<String>,
    pub qos: u8,
    /// `--hide-own`: ask an MQTT 5 broker not to send back this connection's own messages.
    pub no_local: bool,
}

/// chat-sub's state for the whole run.
pub struct SubState {
    subs: Subscriptions,
    inbox: Inbox,
    view: View,
    printer: Printer,
    takeover: Takeover,
    /// Connections lost in a row, each soon after it was made.
    losses: Backoff,
    /// When the current connection was made.
    since: Option<Instant>,
    /// `--max-size`, for the report of a larger message.
    max_size: usize,
    /// With a room secret: payloads are opened before anything else looks at them.
    room: Option<Room>,
}

impl SubState {
    pub fn new(subs: Subscriptions, inbox: Inbox, view: View, printer: Printer) -> SubState {
        SubState {
            subs,
            inbox,
            view,
            printer,
            takeover: Takeover::default(),
            losses: Backoff::default(),
            since: None,
            max_size: wire::MAX_PACKET,
            room: None,
        }
    }

    /// An encrypted room: only what opens with its secret is shown.
    pub fn with_room(mut self, room: Option<Room>) -> SubState {
        self.room = room;
        self
    }

    /// A `--session` (one another client can take over) and `--max-size`.
    pub fn with_session(mut self, session: bool, max_size: usize) -> SubState {
        self.takeover = Takeover::new(session);
        self.max_size = max_size;
        self
    }

    /// The first connection: subscribe.
    pub fn connected(&mut self, tx: &mut Tx, now: Instant) {
        self.since = Some(now);
        self.takeover.connected();
        self.subscribe(tx);
    }

    /// Another connection: when the broker kept the session, it kept the subscriptions
    /// too and sends what it holds (QoS 2 messages it sends again are still recognised
    /// as repeats); else subscribe again.
    pub fn reconnected(&mut self, tx: &mut Tx, now: Instant) {
        self.since = Some(now);
        self.takeover.connected();
        if !tx.connack.session_present {
            self.inbox.new_session();
            self.subscribe(tx);
        }
    }

    /// Subscribes to the chat topics and, in a SUBSCRIBE of its own (a refusal of which
    /// is only a warning), to their presence topics.
    fn subscribe(&self, tx: &mut Tx) {
        let s = &self.subs;
        if self.view.mode() != Mode::Who {
            let (pkid, qos) = (SUBSCRIBE_PKID, s.qos);
            wire::encode_subscribe(tx.version, pkid, &s.filters, qos, s.no_local, tx.buf);
        }
        if self.view.mode() != Mode::Hidden {
            let filters = self.presence_filters();
            wire::encode_subscribe(tx.version, PRESENCE_PKID, &filters, 1, false, tx.buf);
        }
    }

    fn presence_filters(&self) -> Vec<String> {
        self.subs
            .filters
            .iter()
            .map(|f| presence::filter(f))
            .collect()
    }

    /// A packet from the broker at `now` (`wall` for the printed time).
    pub fn on_packet(&mut self, p: Inbound, tx: &mut Tx, now: Instant, wall: SystemTime) -> Step {
        match p {
            Inbound::Publish(d) => {
                self.takeover.received();
                return self.deliver(d, tx, now, wall);
            }
            Inbound::Oversized { delivery, size } => {
                self.takeover.received();
                self.skip_oversized(&delivery, size, tx);
            }
            Inbound::Ack {
                kind: AckKind::PubRel,
                pkid,
                ..
            } => self.inbox.released(pkid, tx),
            Inbound::SubAck { pkid, codes } => return self.suback(pkid, &codes, tx.version, now),
            other => log::debug!("ignoring {other:?}"),
        }
        Step::Continue
    }

    fn suback(&mut self, pkid: u16, codes: &[u8], version: Version, now: Instant) -> Step {
        let presence = pkid == PRESENCE_PKID;
        let filters = match presence {
            true => self.presence_filters(),
            false => self.subs.filters.clone(),
        };
        match refusal(&filters, codes, version) {
            Some(why) if presence && self.view.mode() != Mode::Who => {
                log::warn!("{why}; joins and leaves will not be shown");
            }
            Some(why) => return Step::Refused(why),
            None if presence => {
                log::debug!("presence: following {}", filters.join(" "));
                self.view.heard(now);
            }
            None => log::info!(
                "subscribed to {} (granted QoS {codes:?})",
                filters.join(" ")
            ),
        }
        Step::Continue
    }

    /// Acknowledges one message and prints it, if the inbox says so; in an encrypted
    /// room, once its room's key is at hand.
    fn deliver(&mut self, d: Delivery, tx: &mut Tx, now: Instant, wall: SystemTime) -> Step {
        if self.inbox.acknowledge(&d, tx) {
            return Step::Continue;
        }
        if !presence::is_presence(&d.topic) && !self.inbox.wants(&d) {
            return Step::Continue;
        }
        let admitted = match &mut self.room {
            None => Admit::Now(d),
            Some(r) => r.admit(d, now, wall),
        };
        let d = match admitted {
            Admit::Now(d) => d,
            Admit::Parked => return Step::Continue,
            Admit::Throttled(d) => {
                self.not_shown(&d, room::Kind::Throttled, wall);
                return Step::Continue;
            }
        };
        self.show(&d, now, wall)
    }

    /// Shows an acknowledged message (received at `wall`) if the inbox says so.
    fn show(&mut self, d: &Delivery, now: Instant, wall: SystemTime) -> Step {
        if presence::is_presence(&d.topic) {
            self.presence_message(d, now, wall);
            return Step::Continue;
        }
        if !self.inbox.wants(d) {
            return Step::Continue;
        }
        let m = delivered(d, wall);
        let Some((payload, signer)) = self.open(&m) else {
            return Step::Continue;
        };
        // What was opened is known by its nonce too (a replay of a raw message).
        let sealed = self.room.is_some().then(|| seal::nonce_of(&d.payload));
        let Some(decoded) = self
            .inbox
            .verdict(d, &payload, sealed, signer.as_ref().map(|f| &f.0))
        else {
            return Step::Continue;
        };
        let shows_marks = self.printer.shows_marks;
        let mark = self.room.as_mut().map(|room| {
            let topic = String::from_utf8_lossy(&d.topic);
            let mark = room.judge(&topic, decoded.from.as_deref(), signer, true);
            if !shows_marks {
                room.mark_unshown(&d.topic, decoded.from.as_deref(), mark);
            }
            mark
        });
        let m = Delivered {
            payload: &payload,
            mark,
            ..m
        };
        match self.printer.message(&m, &decoded) {
            true => Step::Done,
            false => Step::Continue,
        }
    }

    /// A message larger than --max-size (possible under MQTT 3.1.1, which cannot tell the
    /// broker our limit): acknowledged, so the broker does not send it again, and reported.
    fn skip_oversized(&mut self, d: &Delivery, size: usize, tx: &mut Tx) {
        self.inbox.acknowledge(d, tx);
        log::warn!(
            "skipped a message of {size} bytes on '{}': larger than --max-size ({} bytes)",
            escaped(&String::from_utf8_lossy(&d.topic)),
            self.max_size
        );
    }

    /// The connection `name` was lost at `now`: an error when the session was taken
    /// over, else the pause before the next attempt (growing while connections keep
    /// dying young, so a broker that closes them at once is not retried in a busy loop).
    pub fn lost(
        &mut self,
        failure: &LinkError,
        name: &str,
        now: Instant,
    ) -> Result<Duration, Error> {
        let lived = self
            .since
            .map_or(Duration::ZERO, |s| now.saturating_duration_since(s));
        self.takeover.lost(failure, lived, name)?;
        if lived >= STABLE {
            self.losses.reset();
        }
        self.losses.failed();
        Ok(self.losses.pause())
    }

    /// When `--who` prints the roster: not while presence records wait for a key.
    pub fn who_deadline(&self) -> Option<Instant> {
        let waiting = self.room.as_ref().is_some_and(Room::presence_waiting);
        self.view.who_deadline().filter(|_| !waiting)
    }

    /// `--who`: prints everyone online. Returns what to say on stderr when nobody is (an
    /// empty stdout, and status 0, would look like a tool that did nothing).
    pub fn print_roster(&mut self) -> Option<String> {
        let online = self.view.online();
        for &(room, nick, ts, mark) in &online {
            self.printer.who(&Online {
                room,
                nick,
                ts,
                mark,
            });
        }
        let rooms = self.subs.filters.join(", ");
        online
            .is_empty()
            .then(|| format!("nobody is online in {}", escaped(&rooms)))
    }

    /// `--count 0`: nothing to do.
    pub fn wants_none(&self) -> bool {
        self.printer.wants_none()
    }

    /// `--timeout` passed after `run_for`: a failure when `--count` was not reached.
    pub fn timed_out(&self, run_for: Duration) -> Result<(), Error> {
        match self.printer.shortfall() {
            Some((printed, n)) => Err(Error::Failed(format!(
                "timed out after {}s with {printed} of {n} message(s)",
                run_for.as_secs_f64()
            ))),
            None => Ok(()),
        }
    }

    /// What to say at the end of the run (payloads of an encrypted room that did not open).
    pub fn summary(&self) -> Option<String> {
        self.room.as_ref().and_then(Room::summary)
    }

    /// In an encrypted room, the keys pinned since the last call, to save.
    pub fn take_pins(&mut self) -> Vec<super::members::Pin> {
        self.room.as_mut().map(Room::take_pins).unwrap_or_default()
    }

    /// The lines to write to stdout.
    pub fn output(&mut self) -> &mut Vec<u8> {
        self.printer.buffer()
    }
}

/// `d` as the printer sees it, received at `wall`, before it is opened and judged.
fn delivered(d: &Delivery, wall: SystemTime) -> Delivered<'_> {
    Delivered {
        topic: &d.topic,
        payload: &d.payload,
        qos: d.qos,
        retain: d.retain,
        received: wall,
        properties: d.properties.as_deref(),
        mark: None,
    }
}

/// Why a SUBACK refuses one of `filters`, if it does.
fn refusal(filters: &[String], codes: &[u8], version: Version) -> Option<String> {
    let (filter, &code) = filters.iter().zip(codes).find(|(_, c)| **c >= 0x80)?;
    // MQTT 3.1.1 has one failure code, 0x80, with no reason.
    let why = match version {
        Version::V5 => wire::reason_text(code),
        Version::V311 => "failure",
    };
    Some(format!(
        "the broker refused the subscription to '{}': {why} ({code:#04x})",
        escaped(filter)
    ))
}

mod opening;

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
