//! chat-pub: read lines, publish, track acknowledgements, drain, disconnect.
//!
//! Every message at QoS 1 or 2 stays in the [`Outbox`] — the one record of what is
//! unacknowledged — until the broker acknowledged it (PUBACK, or PUBREC then PUBCOMP).
//! chat-pub picks the packet ids itself, so each acknowledgement names its line, and
//! after a reconnect the outbox sends again, in order, before any newer line.

use std::collections::VecDeque;
use std::future::{Future, pending};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep, sleep_until};

use crate::cli::PubArgs;
use crate::connect::{self, Connector};
use crate::dial::Backoff;
use crate::envelope::IdSource;
use crate::error::{Error, Tally};
use crate::input::{self, Control, LineRules, Message, Mode, Preparer, Source};
use crate::outbox::{Outbox, SPARE_PKID, encode};
use crate::presence::Announce;
use crate::session::{Link, LinkError};
use crate::signals::Signals;
use crate::topic;
use crate::wire::{self, AckKind, Inbound};

/// Default `--max-size` of chat-pub: 1 MiB.
pub const DEFAULT_MAX_SIZE: usize = 1 << 20;
/// Stop taking input while this much is waiting for the socket.
const UNSENT_HIGH: usize = 256 << 10;
/// The smallest acknowledgement: PUBACK, PUBREC or PUBCOMP without a reason code.
const ACK_BYTES: usize = 4;
/// Input batches buffered between the stdin thread and the publisher.
const INPUT_BATCHES: usize = 4;
/// Connections lost in a row, with no acknowledgement in between, after which the oldest
/// unacknowledged message is taken for the cause (a broker that disconnects instead of
/// refusing, e.g. a message over its size limit under MQTT 3.1.1) and given up.
const GIVE_UP_AFTER: u32 = 3;
/// A broker drops a connection for a message it refuses as soon as the message arrives,
/// and the oldest unacknowledged message is sent first on a new connection. A connection
/// that lived longer than this was lost for another reason (a cluster busy electing a
/// new leader after a node died closes connections after seconds): its loss starts a new
/// streak instead of extending one.
const POISON_WINDOW: Duration = Duration::from_millis(1500);

/// Runs chat-pub to completion.
pub fn run(args: PubArgs) -> Result<(), Error> {
    if let Some(t) = &args.topic {
        topic::check_publish(t).map_err(Error::Usage)?;
    }
    let max_size = args.max_size.unwrap_or(DEFAULT_MAX_SIZE);
    let mut opts = connect::options(&args.common, "chat-pub", 64 * 1024)?;
    // With a full window, wake for half of it acknowledged, not for each (`fill`).
    opts.reads = crate::coalesce::Reads::Told;
    let mode = match (args.raw, args.json) {
        (true, _) => Mode::Raw,
        (_, true) => Mode::Json,
        _ => Mode::Envelope,
    };
    let prep = Preparer {
        mode,
        topic: args
            .topic
            .as_ref()
            .map(|t| Bytes::copy_from_slice(t.as_bytes())),
        qos: args.common.qos,
        retain: args.retain,
        nick: nick(args.nick.as_deref()),
        max_size,
        ids: IdSource::default(),
    };
    let rules = LineRules {
        keep_cr: args.raw,
        keep_empty: args.keep_empty,
        max_line: max_size,
    };
    let source = match args.messages.is_empty() {
        true => Source::Stdin,
        false => Source::Args(args.messages.clone()),
    };
    let rt = crate::runtime()?;
    let (tx, rx) = mpsc::channel(INPUT_BATCHES);
    let control = Arc::new(Control::default());
    input::spawn(source, prep, rules, tx, control.clone())
        .map_err(|e| Error::Failed(format!("cannot start the input thread: {e}")))?;
    // The nick is online in TOPIC while chat-pub reads the room from stdin as chat.
    let presence = match (
        &args.topic,
        mode,
        args.messages.is_empty(),
        args.no_presence,
    ) {
        (Some(room), Mode::Envelope, true, false) => {
            let announce = Announce::new(room, &opts.spec.client_id, &nick(args.nick.as_deref()));
            opts.spec.will = Some(announce.will());
            Some(announce)
        }
        _ => None,
    };
    let mut publisher = Publisher {
        client_id: opts.spec.client_id.clone(),
        presence,
        joining: false,
        resend_due: false,
        outbox: Outbox::default(),
        pending: VecDeque::new(),
        pending_bytes: 0,
        tally: Tally::default(),
        qos0_unconfirmed: 0,
        warned_qos: false,
        losses: Backoff::default(),
        link_since: Instant::now(),
        input: Input {
            rx,
            control,
            open: true,
        },
        stopped_by: None,
        drain_timeout: args.drain_timeout,
        drain_deadline: None,
    };
    let result = rt.block_on(async {
        let mut signals = Signals::install()?;
        let mut connector = Connector::new(opts);
        publisher
            .run(&mut connector, args.common.connect_timeout, &mut signals)
            .await
    });
    publisher.tally.failed += publisher.input.control.failures.load(Ordering::Relaxed);
    // A signal decides the status (SPEC §8), once the drain has been reported.
    match (publisher.stopped_by, result) {
        (Some(code), _) => Err(Error::Reported(code)),
        (None, Err(e)) => Err(e),
        (None, Ok(())) => publisher.tally.into_result(),
    }
}

/// The input side as the publisher sees it.
struct Input {
    rx: mpsc::Receiver<Vec<Message>>,
    control: Arc<Control>,
    /// False after end of input, or after a signal stopped reading.
    open: bool,
}

/// The envelope's `from`: `--nick`/`$CHAT_NICK`, else `$USER`, else `anonymous`.
fn nick(flag: Option<&str>) -> String {
    crate::own_nick(flag).unwrap_or_else(|| "anonymous".to_owned())
}

/// A connection being made (kept across turns of the loop, so that input, a signal or
/// the drain deadline does not start it over).
type Dialing<'a> = Pin<Box<dyn Future<Output = Result<Link, Error>> + 'a>>;

struct Publisher {
    /// For messages.
    client_id: String,
    /// Where the nick is announced as online, if it is.
    presence: Option<Announce>,
    /// The join was sent on this connection and not acknowledged yet. Nothing else is
    /// sent meanwhile: a broker that closes the connection now refused the announcement
    /// (a strict broker's topic rules, an ACL), not a line, and chat goes on without it.
    joining: bool,
    /// The outbox is to be sent again (after the join, on a new connection).
    resend_due: bool,
    outbox: Outbox,
    /// Messages taken from the input but not yet sent (waiting for the window, or for a
    /// connection).
    pending: VecDeque<Message>,
    /// Payload bytes in `pending`: what may be read while no broker is connected.
    pending_bytes: usize,
    tally: Tally,
    /// QoS 0 messages written on the current connection: confirmed only when the broker
    /// closes it after our DISCONNECT.
    qos0_unconfirmed: u64,
    /// Whether the user was told that the broker lowers our QoS.
    warned_qos: bool,
    /// Connections lost in a row without any acknowledgement in between.
    losses: Backoff,
    /// When the current (or last) connection was accepted.
    link_since: Instant,
    input: Input,
    /// The exit status of the signal that stopped reading, if one did.
    stopped_by: Option<u8>,
    drain_timeout: Duration,
    /// Set at end of input (or on a signal): acknowledgements must arrive by then.
    drain_deadline: Option<Instant>,
}

impl Publisher {
    /// The loop: reads input and publishes it while connected, keeps reading (within the
    /// memory bound) while (re)connecting, so that end of input always starts the drain.
    async fn run(
        &mut self,
        connector: &mut Connector,
        connect_timeout: Duration,
        signals: &mut Signals,
    ) -> Result<(), Error> {
        let mut link: Option<Link> = None;
        let first = Instant::now() + connect_timeout;
        let mut dialing: Option<Dialing> = Some(Box::pin(connector.establish(Some(first))));
        let mut connected_once = false;
        loop {
            if let Some(l) = link.as_mut() {
                self.fill(l);
            }
            let done = !self.input.open && self.pending.is_empty() && self.outbox.is_empty();
            if done && connected_once {
                break;
            }
            // Until the first connection, --connect-timeout is the only limit (exit 3).
            let draining = self.drain_deadline.filter(|_| connected_once);
            if draining.is_some_and(|d| Instant::now() >= d) {
                return Err(self.drain_expired());
            }
            let want_input = self.input.open
                && match &link {
                    Some(l) => self.pending.is_empty() && l.unsent() < UNSENT_HIGH,
                    None => self.pending_bytes < UNSENT_HIGH,
                };
            let drain_at = draining.unwrap_or_else(Instant::now);
            tokio::select! {
                biased;
                code = signals.recv() => {
                    if !connected_once {
                        self.stopped_by = Some(code);
                        eprintln!(
                            "chat-pub: interrupted before connecting; {} message(s) not sent",
                            self.pending.len()
                        );
                        return Ok(());
                    }
                    self.interrupted(code).await?;
                }
                r = io(&mut link) => {
                    if let Some(pause) = self.after_io(&mut link, r)? {
                        // No connection is being made while one is up; assigning None
                        // tells the borrow checker that `connector` is free again.
                        #[allow(unused_assignments)]
                        {
                            dialing = None;
                        }
                        dialing = Some(Box::pin(reconnect(connector, pause)));
                    }
                }
                r = dial(&mut dialing) => {
                    dialing = None;
                    let mut l = r.map_err(|e| self.cannot_reconnect(e, connected_once))?;
                    self.connected(&mut l, connector, connected_once);
                    connected_once = true;
                    link = Some(l);
                }
                batch = self.input.rx.recv(), if want_input => match batch {
                    Some(b) => self.take(b),
                    None => self.end_of_input(),
                },
                _ = sleep_until(drain_at), if draining.is_some() => {
                    return Err(self.drain_expired());
                }
            }
        }
        if let Some(l) = link {
            self.finish(l, signals).await;
        }
        Ok(())
    }

    /// Handles what the connection brought; on a loss, reports it and returns the pause
    /// before the next attempt (the link is gone then).
    fn after_io(
        &mut self,
        link: &mut Option<Link>,
        io: Result<(), LinkError>,
    ) -> Result<Option<Duration>, Error> {
        let Some(l) = link.as_mut() else {
            return Ok(None);
        };
        match io.and_then(|()| self.handle_packets(l)) {
            Ok(()) => Ok(None),
            Err(lost) => {
                *link = None;
                self.connection_lost(lost)?;
                Ok(Some(self.losses.pause()))
            }
        }
    }

    /// A connection was accepted: announce presence (if the broker did not refuse the
    /// will), then send the outbox again.
    fn connected(&mut self, link: &mut Link, connector: &Connector, again: bool) {
        if !connector.has_will() {
            self.presence = None;
        }
        if !again && !self.input.open {
            // Input ended before the first connection: the drain starts now.
            self.drain_deadline = Some(Instant::now() + self.drain_timeout);
        }
        if again {
            log::warn!(
                "reconnected to {}; sending {} unacknowledged message(s) again",
                connector.endpoint(),
                self.outbox.len()
            );
        }
        self.resend_due = true;
        self.link_since = Instant::now();
        if let Some(p) = &self.presence {
            // At QoS 1 with the packet id the outbox never uses, so that its PUBACK says
            // whether the broker took it; nothing else is sent until then (`joining`).
            p.join(link, SPARE_PKID);
            self.joining = true;
        }
    }

    /// A failure of a connection attempt after the first: only those retrying cannot fix
    /// end the run, with what was left undelivered.
    fn cannot_reconnect(&self, e: Error, again: bool) -> Error {
        let missing = self.outbox.len() + self.pending.len();
        match e {
            Error::Unreachable(m) if again => {
                Error::Failed(format!("{m}; {missing} message(s) not acknowledged"))
            }
            Error::Refused(m) if again => {
                Error::Refused(format!("{m}; {missing} message(s) not acknowledged"))
            }
            e => e,
        }
    }

    /// Takes a batch of messages from the input thread.
    fn take(&mut self, batch: Vec<Message>) {
        self.pending_bytes += batch.iter().map(|m| m.payload.len()).sum::<usize>();
        self.pending.extend(batch);
    }

    /// Everything is acknowledged: say goodbye (presence), disconnect, and make sure the
    /// broker read it all (which is how QoS 0 messages count as delivered).
    async fn finish(&mut self, mut link: Link, signals: &mut Signals) {
        log::info!("every message acknowledged; disconnecting");
        if let Some(p) = &self.presence {
            p.leave(&mut link);
        }
        let deadline = self
            .drain_deadline
            .unwrap_or_else(Instant::now)
            .max(Instant::now() + Duration::from_secs(1));
        if !link.disconnect(deadline).await && self.qos0_unconfirmed > 0 {
            eprintln!(
                "chat-pub: the connection ended before the broker confirmed it; {} message(s) \
                 sent at QoS 0 may not have arrived",
                self.qos0_unconfirmed
            );
            self.tally.failed += self.qos0_unconfirmed;
        }
        // A signal that came while the last acknowledgements arrived still decides the
        // status: the user asked for it (nothing is left to drain).
        if self.stopped_by.is_none() {
            tokio::select! {
                biased;
                code = signals.recv() => self.stopped_by = Some(code),
                () = std::future::ready(()) => {}
            }
        }
    }

    /// End of input: everything read must now be acknowledged within the drain timeout.
    fn end_of_input(&mut self) {
        self.input.open = false;
        let end = Instant::now() + self.drain_timeout;
        self.drain_deadline = Some(self.drain_deadline.map_or(end, |d| d.min(end)));
    }

    /// SIGINT or SIGTERM. The first stops reading and drains what was read (every line the
    /// input thread has handed over or is handing over); a second one ends the drain.
    async fn interrupted(&mut self, code: u8) -> Result<(), Error> {
        if self.stopped_by.is_some() {
            self.stopped_by = Some(code);
            eprintln!(
                "chat-pub: stopped; {} message(s) not acknowledged",
                self.outbox.len() + self.pending.len()
            );
            return Err(Error::Reported(code));
        }
        self.stopped_by = Some(code);
        if self.input.open {
            log::warn!("interrupted: sending what was read, then exiting (again to quit now)");
            let control = self.input.control.clone();
            control.stop.store(true, Ordering::Release);
            // Take every batch the thread has read, until it waits in read(2) or has ended.
            let give_up = Instant::now() + Duration::from_secs(1);
            loop {
                match self.input.rx.try_recv() {
                    Ok(b) => self.take(b),
                    Err(mpsc::error::TryRecvError::Disconnected) => break,
                    Err(mpsc::error::TryRecvError::Empty)
                        if control.idle.load(Ordering::Acquire) || Instant::now() > give_up =>
                    {
                        break;
                    }
                    Err(mpsc::error::TryRecvError::Empty) => {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                }
            }
        }
        self.end_of_input();
        Ok(())
    }

    /// Moves pending messages onto the wire while the window allows. With the window
    /// full, nothing can go out until acknowledgements free it: the reader then wakes
    /// when half of them are in (each is at least [`ACK_BYTES`]), not for each one — a
    /// broker that writes every acknowledgement on its own would otherwise wake chat-pub
    /// (in the broker's own time) up to once per message.
    fn fill(&mut self, link: &mut Link) {
        if self.joining {
            link.wake_at(1);
            return;
        }
        if std::mem::take(&mut self.resend_due) {
            self.outbox.resend(link);
        }
        self.fill_window(link);
        let full = self.outbox.has_queued()
            || self
                .pending
                .front()
                .is_some_and(|m| m.qos > 0 && !self.outbox.has_room(link, m));
        link.wake_at(match full {
            true => ACK_BYTES * (self.outbox.in_flight() / 2).max(1),
            false => 1,
        });
    }

    fn fill_window(&mut self, link: &mut Link) {
        // What a reconnect could not send again at once goes first.
        self.outbox.send_queued(link);
        while let Some(m) = self.pending.front() {
            if link.unsent() >= UNSENT_HIGH || (m.qos > 0 && !self.outbox.has_room(link, m)) {
                return;
            }
            let Some(mut m) = self.pending.pop_front() else {
                return;
            };
            self.pending_bytes -= m.payload.len();
            if let Some(max_qos) = link.connack.max_qos.filter(|&q| m.qos > q) {
                if !self.warned_qos {
                    log::warn!(
                        "the broker supports QoS {max_qos} at most; publishing at QoS {max_qos}"
                    );
                    self.warned_qos = true;
                }
                m.qos = max_qos;
            }
            let size = wire::publish_size(link.version, m.topic.len(), m.payload.len(), m.qos);
            if let Some(limit) = link.connack.max_packet_size.filter(|&l| size > l as usize) {
                eprintln!(
                    "chat-pub: line {}: the message is {size} bytes, more than the broker \
                     accepts ({limit} bytes); not sent",
                    m.line
                );
                self.tally.failed += 1;
                continue;
            }
            let pkid = match m.qos {
                0 => {
                    self.qos0_unconfirmed += 1;
                    0
                }
                _ => self.outbox.assign(),
            };
            encode(link, &m, pkid, false);
            if m.qos > 0 {
                self.outbox.push(m, pkid);
            }
        }
    }

    fn handle_packets(&mut self, link: &mut Link) -> Result<(), LinkError> {
        while let Some(p) = link.next_packet()? {
            match p {
                Inbound::Ack {
                    kind: AckKind::PubAck,
                    pkid: SPARE_PKID,
                    reason,
                } => self.joined(reason),
                Inbound::Ack {
                    kind: AckKind::PubAck | AckKind::PubComp,
                    pkid,
                    reason,
                } => {
                    if let Some(line) = self.outbox.complete(pkid) {
                        self.losses.reset();
                        self.check_reason(line, reason);
                    }
                }
                Inbound::Ack {
                    kind: AckKind::PubRec,
                    pkid,
                    reason,
                } if reason >= 0x80 => {
                    // A refused QoS 2 publish ends here: no PUBREL, and its slot is free.
                    if let Some(line) = self.outbox.complete(pkid) {
                        self.check_reason(line, reason);
                    }
                }
                Inbound::Ack {
                    kind: AckKind::PubRec,
                    pkid,
                    ..
                } => {
                    if self.outbox.released(pkid) {
                        wire::encode_ack(AckKind::PubRel, pkid, &mut link.wbuf);
                    }
                }
                other => log::debug!("ignoring {other:?}"),
            }
        }
        Ok(())
    }

    /// The broker acknowledged the presence join: lines may go out now. A refusal (MQTT 5)
    /// leaves chat without presence.
    fn joined(&mut self, reason: u8) {
        self.joining = false;
        if reason >= 0x80 && self.presence.take().is_some() {
            log::warn!(
                "the broker refused the presence announcement: {} ({reason:#04x}); going on \
                 without presence",
                wire::reason_text(reason)
            );
        }
    }

    /// Reports a refusal (MQTT 5 reason code ≥ 0x80) for one line.
    fn check_reason(&mut self, line: u64, reason: u8) {
        if reason < 0x80 {
            return;
        }
        eprintln!(
            "chat-pub: line {line}: refused by the broker: {} ({reason:#04x})",
            wire::reason_text(reason)
        );
        match reason {
            0x87 => self.tally.refused += 1,
            _ => self.tally.failed += 1,
        }
    }

    /// Reports a lost connection and decides what to give up before reconnecting.
    fn connection_lost(&mut self, why: LinkError) -> Result<(), Error> {
        if matches!(why, LinkError::Disconnected(0x8E)) {
            // Another client connected with our client id: reconnecting would knock it off
            // in turn, and so on for ever.
            return Err(Error::Failed(format!(
                "another client connected with the client id '{}' (session taken over); \
                 {} message(s) not acknowledged",
                self.client_id,
                self.outbox.len() + self.pending.len()
            )));
        }
        if std::mem::take(&mut self.joining) && self.presence.take().is_some() {
            // Nothing but the join was sent on this connection.
            log::warn!(
                "connection lost right after the presence announcement ({why}): the broker \
                 refuses it (topic or authorization); going on without presence"
            );
            return Ok(());
        }
        log::warn!("connection lost: {why}; reconnecting");
        if self.qos0_unconfirmed > 0 {
            eprintln!(
                "chat-pub: {} message(s) sent at QoS 0 on the lost connection may not have arrived",
                self.qos0_unconfirmed
            );
            self.tally.failed += std::mem::take(&mut self.qos0_unconfirmed);
        }
        if self.link_since.elapsed() > POISON_WINDOW {
            self.losses.reset();
        }
        if self.losses.failed() >= GIVE_UP_AFTER {
            self.losses.reset();
            if let Some(line) = self.outbox.give_up_oldest() {
                eprintln!(
                    "chat-pub: line {line}: not sent: the broker closed the connection each of \
                     the {GIVE_UP_AFTER} times this message was sent; it may be too large for \
                     the broker, at a QoS it does not support, on a topic it refuses, or not \
                     authorized"
                );
                self.tally.failed += 1;
            }
        }
        Ok(())
    }

    fn drain_expired(&mut self) -> Error {
        let missing = self.outbox.len() + self.pending.len();
        eprintln!(
            "chat-pub: {missing} message(s) not acknowledged by the broker within the drain \
             timeout ({}s)",
            self.drain_timeout.as_secs_f64()
        );
        self.tally.failed += missing as u64;
        match self.tally.into_result() {
            Err(e) => e,
            Ok(()) => Error::Reported(1),
        }
    }
}

/// After a lost connection: the next broker of the list, after a pause when connections
/// keep dying young.
async fn reconnect(connector: &mut Connector, pause: Duration) -> Result<Link, Error> {
    connector.lost();
    sleep(pause).await;
    connector.establish(None).await
}

/// The current connection's next I/O; never ready without one.
async fn io(link: &mut Option<Link>) -> Result<(), LinkError> {
    match link {
        Some(l) => l.io().await,
        None => pending().await,
    }
}

/// The connection being made; never ready without one.
async fn dial(dialing: &mut Option<Dialing<'_>>) -> Result<Link, Error> {
    match dialing {
        Some(d) => d.await,
        None => pending().await,
    }
}
