//! chat-pub's protocol state, without I/O: messages taken from the input, the window of
//! unacknowledged ones ([`Outbox`]), the presence join, acknowledgements, lost
//! connections and the drain. Events come in as method calls with the time passed in;
//! packets go out into a [`Tx`]; what the user is to be told waits in the [`Tally`].

use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime};

use super::drain::Drain;
use super::join::Join;
use super::outbox::{Outbox, SPARE_PKID, encode};
use super::outgoing::{LineNo, Outgoing};
use super::streak::{self, Streak};
use crate::error::Signal;
use crate::error::{Error, Tally};
use crate::mqtt::tx::LinkError;
use crate::mqtt::tx::Tx;
use crate::mqtt::wire::{self, AckKind, Inbound, Version};
use crate::room::presence::Announce;

/// Stop taking input while this much waits for the socket (unconnected: read, not sent).
pub const UNSENT_HIGH: usize = 256 << 10;
/// The smallest acknowledgement: PUBACK, PUBREC or PUBCOMP without a reason code.
const ACK_BYTES: usize = 4;
/// What a signal leads to when the run goes on.
#[derive(Debug, PartialEq, Eq)]
pub enum Stop {
    /// Stop the input and take what it already read, then drain.
    StopInput,
    /// Input had ended already: the drain goes on.
    Drain,
}

/// chat-pub's state from the first line read to the last acknowledgement.
pub struct PubState {
    /// For messages.
    client_id: String,
    /// Where the nick is announced as online, if it is.
    join: Join,
    /// The outbox is to be sent again (after the join, on a new connection).
    resend_due: bool,
    outbox: Outbox,
    /// Messages taken from the input but not yet sent (waiting for the window, or for a
    /// connection).
    pending: VecDeque<Outgoing>,
    /// Payload bytes in `pending`: what may be read while no broker is connected.
    pending_bytes: usize,
    tally: Tally,
    /// QoS 0 messages written on the current connection: confirmed only when the broker
    /// closes it after our DISCONNECT.
    qos0_unconfirmed: u64,
    /// Whether the user was told that the broker lowers our QoS.
    warned_qos: bool,
    /// Connections lost in a row, and when the current one was made.
    streak: Streak,
    /// End of input, signals, the drain deadline.
    drain: Drain,
}

impl PubState {
    /// A run that announces `presence` (if any) and drains within `drain_timeout`.
    pub fn new(client_id: String, presence: Option<Announce>, drain_timeout: Duration) -> Self {
        PubState {
            client_id,
            join: Join::new(presence),
            resend_due: false,
            outbox: Outbox::default(),
            pending: VecDeque::new(),
            pending_bytes: 0,
            tally: Tally::default(),
            qos0_unconfirmed: 0,
            warned_qos: false,
            streak: Streak::default(),
            drain: Drain::new(drain_timeout),
        }
    }

    /// Whether a connection was accepted at least once.
    fn connected_once(&self) -> bool {
        self.streak.connected_once()
    }

    /// Whether to read more input: with a connection (`unsent` = bytes it has not written
    /// yet), once everything taken went out; without one, within the memory bound.
    pub fn wants_input(&self, unsent: Option<usize>) -> bool {
        self.drain.input_open()
            && match unsent {
                Some(n) => self.pending.is_empty() && n < UNSENT_HIGH,
                None => self.pending_bytes < UNSENT_HIGH,
            }
    }

    /// Messages read and not acknowledged yet.
    pub fn unfinished(&self) -> usize {
        self.outbox.len() + self.pending.len()
    }

    /// Everything read was acknowledged (or given up) and no more will be read.
    pub fn done(&self) -> bool {
        self.connected_once() && !self.drain.input_open() && self.unfinished() == 0
    }

    /// When the drain ends, once it started.
    pub fn drain_deadline(&self) -> Option<Instant> {
        self.drain.deadline()
    }

    /// `--drain-timeout`: how long the acknowledgements may take once input ended.
    pub fn drain_timeout(&self) -> Duration {
        self.drain.timeout()
    }

    /// Takes a batch of messages from the input.
    pub fn take(&mut self, batch: Vec<Outgoing>) {
        self.pending_bytes += batch.iter().map(|m| m.payload.len()).sum::<usize>();
        self.pending.extend(batch);
    }

    /// End of input: everything read must now be acknowledged within the drain timeout.
    pub fn end_of_input(&mut self, now: Instant) {
        self.drain.end_of_input(now, self.connected_once());
    }

    /// SIGINT or SIGTERM. The first stops reading and drains what was read; a second one,
    /// or one before any connection, ends the run with what is left.
    pub fn signal(&mut self, signal: Signal) -> Result<Stop, Error> {
        if !self.connected_once() {
            let n = self.pending.len();
            let note = format!("interrupted before connecting; {n} message(s) not sent");
            self.tally.note(note);
            return Err(Error::Interrupted(signal));
        }
        if self.drain.stop(signal).is_some() {
            let n = self.unfinished();
            self.tally
                .note(format!("stopped; {n} message(s) not acknowledged"));
            return Err(Error::Interrupted(signal));
        }
        Ok(match self.drain.input_open() {
            true => Stop::StopInput,
            false => Stop::Drain,
        })
    }

    /// A connection was accepted: announce presence (unless the broker refused the will,
    /// `has_will` false), then send the outbox again.
    pub fn connected(&mut self, tx: &mut Tx, has_will: bool, now: Instant) {
        match self.streak.connected_once() {
            // (The connection says that it reconnected; this, what it means here.)
            true if !self.outbox.is_empty() => log::warn!(
                "sending {} unacknowledged message(s) again",
                self.outbox.len()
            ),
            true => {}
            // Input that ended before the first connection starts the drain now.
            false => self.drain.connected(now),
        }
        self.resend_due = true;
        self.streak.connected(now);
        self.join.connected(tx, has_will);
    }

    /// A connection attempt after the first failed for good: retrying cannot fix it, so
    /// the run ends with what was left undelivered.
    pub fn cannot_reconnect(&self, e: Error) -> Error {
        let with_count = |m| format!("{m}; {} message(s) not acknowledged", self.unfinished());
        match e {
            Error::Unreachable(m) if self.connected_once() => Error::Failed(with_count(m)),
            Error::Refused(m) if self.connected_once() => Error::Refused(with_count(m)),
            e => e,
        }
    }

    /// Moves pending messages onto the wire while the window allows; returns how many
    /// bytes the reader should wait for before waking. With the window full, nothing can
    /// go out until acknowledgements free it: the reader then wakes when half of them are
    /// in (each is at least [`ACK_BYTES`]), not for each one — a broker that writes every
    /// acknowledgement on its own would otherwise wake chat-pub up to once per message.
    pub fn fill(&mut self, tx: &mut Tx) -> usize {
        if self.join.waiting() {
            return 1;
        }
        if std::mem::take(&mut self.resend_due) {
            self.outbox.resend(tx);
        }
        self.fill_window(tx);
        let full = self.outbox.has_queued()
            || self
                .pending
                .front()
                .is_some_and(|m| m.qos > 0 && !self.outbox.has_room(tx, m));
        match full {
            true => ACK_BYTES * (self.outbox.in_flight() / 2).max(1),
            false => 1,
        }
    }

    fn fill_window(&mut self, tx: &mut Tx) {
        // What a reconnect could not send again at once goes first.
        self.outbox.send_queued(tx);
        while let Some(m) = self.pending.front() {
            if tx.unsent() >= UNSENT_HIGH || (m.qos > 0 && !self.outbox.has_room(tx, m)) {
                return;
            }
            let Some(m) = self.pending.pop_front() else {
                return;
            };
            self.pending_bytes -= m.payload.len();
            if let Some(m) = self.fit(tx, m) {
                self.send(tx, m);
            }
        }
    }

    /// `m` as the broker accepts it: at its highest QoS, or not at all when too large.
    fn fit(&mut self, tx: &Tx, mut m: Outgoing) -> Option<Outgoing> {
        if let Some(max_qos) = tx.connack.max_qos.filter(|&q| m.qos > q) {
            if !std::mem::replace(&mut self.warned_qos, true) {
                log::warn!(
                    "the broker supports QoS {max_qos} at most; publishing at QoS {max_qos}"
                );
            }
            m.qos = max_qos;
        }
        if tx.version == Version::V311 && !m.properties.is_empty() {
            // Only a --json line's own properties get here (those of the flags end the run
            // at the connection): never sent without them.
            self.tally.fail(
                1,
                format!(
                    "{}: it has MQTT 5 properties, and the broker speaks MQTT 3.1.1 only; not \
                     sent (remove them with jq 'del(.properties)' to send it without)",
                    LineNo(m.line)
                ),
            );
            return None;
        }
        let props = m.properties.len();
        let size = wire::publish_size(tx.version, m.topic.len(), m.payload.len(), props, m.qos);
        match tx.connack.max_packet_size.filter(|&l| size > l as usize) {
            Some(limit) => {
                let line = m.line;
                self.tally.fail(
                    1,
                    format!(
                        "{}: the message is {size} bytes, more than the broker \
                         accepts ({limit} bytes); not sent",
                        LineNo(line)
                    ),
                );
                None
            }
            None => Some(m),
        }
    }

    fn send(&mut self, tx: &mut Tx, m: Outgoing) {
        let pkid = match m.qos {
            0 => {
                self.qos0_unconfirmed += 1;
                0
            }
            _ => self.outbox.assign(),
        };
        encode(tx, &m, pkid, false);
        if m.qos > 0 {
            self.outbox.push(m, pkid);
        }
    }

    /// A packet from the broker: acknowledgements complete lines (or refuse them), a
    /// PUBREC is answered with PUBREL.
    pub fn on_packet(&mut self, packet: Inbound, tx: &mut Tx) {
        let Inbound::Ack { kind, pkid, reason } = packet else {
            // Not its content: a PUBLISH's payload has no place in a log.
            log::debug!("ignoring a packet that is not an acknowledgement");
            return;
        };
        match kind {
            AckKind::PubAck if pkid == SPARE_PKID => self.join.acknowledged(reason),
            AckKind::PubAck | AckKind::PubComp => {
                if let Some(line) = self.outbox.complete(pkid) {
                    self.streak.acknowledged();
                    self.check_reason(line, reason);
                }
            }
            // A refused QoS 2 publish ends here: no PUBREL, and its slot is free.
            AckKind::PubRec if reason >= 0x80 => {
                if let Some(line) = self.outbox.complete(pkid) {
                    self.check_reason(line, reason);
                }
            }
            AckKind::PubRec => {
                if self.outbox.released(pkid) {
                    wire::encode_ack(AckKind::PubRel, pkid, tx.buf);
                }
            }
            AckKind::PubRel => log::debug!("ignoring {packet:?}"),
        }
    }

    /// Reports a refusal (MQTT 5 reason code ≥ 0x80) for one line.
    fn check_reason(&mut self, line: u64, reason: u8) {
        if reason < 0x80 {
            return;
        }
        let why = wire::reason_text(reason);
        let note = format!(
            "{}: refused by the broker: {why} ({reason:#04x})",
            LineNo(line)
        );
        match reason {
            0x87 => self.tally.refuse(note),
            _ => self.tally.fail(1, note),
        }
    }

    /// The connection was lost: reports it, decides what to give up, and returns the
    /// pause before the next attempt.
    pub fn connection_lost(
        &mut self,
        why: &LinkError,
        now: Instant,
    ) -> Result<(Duration, bool), Error> {
        if matches!(why, LinkError::Disconnected(0x8E)) {
            // Another client connected with our client id: reconnecting would knock it off
            // in turn, and so on for ever.
            return Err(Error::Failed(format!(
                "another client connected with the client id '{}' (session taken over); \
                 {} message(s) not acknowledged",
                self.client_id,
                self.unfinished()
            )));
        }
        if self.join.lost(why) {
            return Ok((self.streak.pause(), true));
        }
        if self.qos0_unconfirmed > 0 {
            let n = std::mem::take(&mut self.qos0_unconfirmed);
            let note =
                format!("{n} message(s) sent at QoS 0 on the lost connection may not have arrived");
            self.tally.fail(n, note);
        }
        if self.streak.lost(now) {
            self.give_up_oldest();
        }
        Ok((self.streak.pause(), false))
    }

    /// The oldest message ended every connection of a streak: it is given up.
    fn give_up_oldest(&mut self) {
        if let Some(line) = self.outbox.give_up_oldest() {
            self.tally.fail(1, streak::given_up(LineNo(line)));
        }
    }

    /// Before a reconnect, at `wall`: the next will, if it changes (encrypted rooms).
    pub fn renew_presence(&mut self, wall: SystemTime) -> Option<Vec<u8>> {
        self.join.renew(wall)
    }

    /// Everything is acknowledged, at `wall`: the goodbye to send before DISCONNECT.
    pub fn leave(&mut self, tx: &mut Tx, wall: SystemTime) {
        self.join.leave(tx, wall);
    }

    /// The DISCONNECT handshake ended; `confirmed` when the broker closed the connection,
    /// so that it read everything (the only confirmation QoS 0 messages get).
    pub fn disconnected(&mut self, confirmed: bool) {
        let n = self.qos0_unconfirmed;
        if !confirmed && n > 0 {
            let note = "the connection ended before the broker confirmed it";
            self.tally.fail(
                n,
                format!("{note}; {n} message(s) sent at QoS 0 may not have arrived"),
            );
        }
    }

    /// The time allowed for the DISCONNECT handshake.
    pub fn disconnect_deadline(&self, now: Instant) -> Instant {
        self.drain.disconnect_deadline(now)
    }

    /// A signal that came with the last acknowledgements.
    pub fn late_signal(&mut self, signal: Signal) {
        self.drain.late_signal(signal);
    }

    /// The drain timeout passed with messages unacknowledged.
    pub fn drain_expired(&mut self) -> Error {
        let missing = self.unfinished() as u64;
        self.tally.fail(missing.max(1), self.drain.expired(missing));
        Error::Undelivered(self.tally.clone())
    }

    /// What the user is to be told, oldest first.
    pub fn take_notes(&mut self) -> Vec<String> {
        self.tally.take_notes()
    }

    /// The end of the run: a signal decides the status, then an error, then the failed
    /// messages (`input_failures` more were reported by the input).
    pub fn outcome(&mut self, result: Result<(), Error>, input_failures: u64) -> Result<(), Error> {
        self.tally.failed += input_failures;
        match (self.drain.stopped_by(), result) {
            (Some(signal), _) => Err(Error::Interrupted(signal)),
            (None, Err(Error::Undelivered(_))) | (None, Ok(())) => self.tally.clone().into_result(),
            (None, Err(e)) => Err(e),
        }
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
