//! One client's session in the engine: its subscriptions, and the messages on their way
//! to it — unacknowledged ones in flight (at most the client's receive maximum), the
//! rest queued, kept while the client is away if the session outlives the connection.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use super::codec::{Message, Version};
use super::codes::Packet;
use super::record::Record;
use super::write::{self, Form, Frame};
use super::{Action, ConnId};

mod durable;
use durable::queued;

/// Most messages in flight to one client, whatever receive maximum it asks for.
pub const WINDOW_MAX: usize = 1000;
/// Most messages queued for one session by default (`--max-queued-messages`); beyond,
/// new ones are dropped (and counted in the log).
pub const QUEUE_MAX: usize = 1_000_000;

/// A message routed to one session, at the QoS and with the flags it gets. (A message a
/// client receives, as it reads it, is `mqtt::wire::Delivery`.)
#[derive(Debug, Clone)]
pub struct Routed {
    pub msg: Arc<Message>,
    pub qos: u8,
    pub retain: bool,
    pub sub_ids: Vec<usize>,
    /// The shared subscription (`$share/GROUP/FILTER`) it came through, if it did.
    pub share: Option<Arc<str>>,
    /// Its number in the session (a durable session's records name it by this).
    pub seq: u64,
    /// What it counts against `--max-queued-bytes` while queued ([`cost`]).
    pub cost: u32,
}

#[derive(Debug)]
struct Flight {
    pkid: u16,
    d: Routed,
    /// PUBREC came (QoS 2): PUBREL was sent, PUBCOMP is awaited.
    released: bool,
}

#[derive(Debug)]
pub struct Session {
    /// Its client id.
    pub client: Arc<str>,
    /// Whether the store keeps it (`--data-dir`, and it outlives its connection): each
    /// change to it is queued as a [`Record`].
    pub durable: bool,
    pub conn: Option<ConnId>,
    /// Its user, whose ACL rules it reads by (None: anonymous).
    pub user: Option<Arc<str>>,
    pub version: Version,
    /// The filters it is subscribed to.
    pub filters: HashSet<String>,
    /// Seconds the session outlives its connection (`u32::MAX`: forever).
    pub expiry: u32,
    pub expires_at: Option<Instant>,
    /// QoS 2 packet ids received and not yet released.
    pub qos2_in: HashSet<u16>,
    max_packet: Option<u32>,
    window: usize,
    next_pkid: u16,
    in_use: HashSet<u16>,
    inflight: VecDeque<Flight>,
    queue: VecDeque<Routed>,
    /// Most messages `queue` may hold.
    queue_max: usize,
    /// What `queue` holds, by [`cost`].
    queued_bytes: usize,
    /// The same, summed over every session of the engine (`--max-queued-bytes`).
    total: Arc<AtomicUsize>,
    /// Messages dropped because the queue was full, not yet logged.
    pub dropped: u64,
    /// The number of the next delivery.
    next_seq: u64,
}

impl Session {
    pub fn new(
        client: Arc<str>,
        version: Version,
        queue_max: usize,
        total: Arc<AtomicUsize>,
    ) -> Session {
        Session {
            client,
            durable: false,
            conn: None,
            user: None,
            version,
            filters: HashSet::new(),
            expiry: 0,
            expires_at: None,
            qos2_in: HashSet::new(),
            max_packet: None,
            window: WINDOW_MAX,
            next_pkid: 0,
            in_use: HashSet::new(),
            inflight: VecDeque::new(),
            queue: VecDeque::new(),
            queue_max,
            queued_bytes: 0,
            total,
            dropped: 0,
            next_seq: 1,
        }
    }

    /// A connection takes the session: what was in flight is sent again (marked as a
    /// duplicate), then what was queued, as far as the window allows.
    pub fn attach(
        &mut self,
        conn: ConnId,
        version: Version,
        receive_max: u16,
        max_packet: Option<u32>,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        self.conn = Some(conn);
        self.version = version;
        self.window = (receive_max as usize).clamp(1, WINDOW_MAX);
        self.max_packet = max_packet;
        self.expires_at = None;
        for f in &self.inflight {
            let bytes = match f.released {
                true => Some(write::ack(Packet::PubRel, f.pkid).into()),
                false => encode(version, &f.d, f.pkid, true, now),
            };
            // A message now larger than the client takes stays unsent, as a new one would.
            if let Some(bytes) = bytes.filter(|b| self.fits(b)) {
                out.push(Action::Send(conn, bytes));
            }
        }
        self.pump(now, out);
    }

    /// Sends or queues a message. `shared` is the same message already written for a
    /// QoS 0 delivery without subscription ids, when the caller has it.
    pub fn deliver(
        &mut self,
        d: Routed,
        shared: Option<&Frame>,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let mut d = d;
        if d.qos > 0 {
            let direct =
                self.conn.is_some() && self.inflight.len() < self.window && self.queue.is_empty();
            if !direct && self.queue.len() >= self.queue_max {
                return self.drop_one();
            }
            d.seq = self.next_seq;
            self.next_seq += 1;
            self.record(out, |client| queued(client, &d));
        }
        let Some(conn) = self.conn else {
            if d.qos > 0 {
                self.enqueue(d);
            }
            return;
        };
        if d.qos == 0 {
            let bytes = match shared {
                Some(b) => Some(b.clone()),
                None => encode(self.version, &d, 0, false, now),
            };
            if let Some(bytes) = bytes.filter(|b| self.fits(b)) {
                out.push(Action::Send(conn, bytes));
            }
            return;
        }
        if self.inflight.len() < self.window && self.queue.is_empty() {
            self.launch(conn, d, now, out);
        } else {
            self.enqueue(d);
        }
    }

    /// Whether a packet is within the client's maximum packet size (MQTT 5): larger
    /// messages are skipped for it, as MQTT says.
    fn fits(&self, bytes: &Frame) -> bool {
        self.max_packet.is_none_or(|m| bytes.len() <= m as usize)
    }

    /// A message that finds the queue full is dropped, and counted.
    fn drop_one(&mut self) {
        if self.dropped == 0 {
            log::warn!(
                "a session holds {} queued messages: new ones are dropped",
                self.queue_max
            );
        }
        self.dropped += 1;
    }

    fn enqueue(&mut self, d: Routed) {
        self.count_in(cost(&d));
        self.queue.push_back(d);
    }

    fn count_in(&mut self, bytes: usize) {
        self.queued_bytes += bytes;
        self.total.fetch_add(bytes, Ordering::Relaxed);
    }

    fn count_out(&mut self, bytes: usize) {
        self.queued_bytes -= bytes;
        self.total.fetch_sub(bytes, Ordering::Relaxed);
    }

    /// Takes the oldest queued message out.
    fn dequeue(&mut self) -> Option<Routed> {
        let d = self.queue.pop_front()?;
        self.count_out(cost(&d));
        Some(d)
    }

    /// Sends a QoS 1 or 2 message, unless it expired (MQTT 5) or is too large.
    fn launch(&mut self, conn: ConnId, d: Routed, now: Instant, out: &mut Vec<Action>) {
        let pkid = self.take_pkid();
        let Some(bytes) = encode(self.version, &d, pkid, false, now).filter(|b| self.fits(b))
        else {
            self.in_use.remove(&pkid);
            return self.record(out, |client| Record::Done { client, seq: d.seq });
        };
        self.record(out, |client| Record::Sent {
            client,
            seq: d.seq,
            pkid,
        });
        out.push(Action::Send(conn, bytes));
        self.inflight.push_back(Flight {
            pkid,
            d,
            released: false,
        });
    }

    fn take_pkid(&mut self) -> u16 {
        loop {
            self.next_pkid = self.next_pkid.checked_add(1).unwrap_or(1);
            if self.in_use.insert(self.next_pkid) {
                return self.next_pkid;
            }
        }
    }

    /// Fills the window from the queue.
    fn pump(&mut self, now: Instant, out: &mut Vec<Action>) {
        let Some(conn) = self.conn else { return };
        while self.inflight.len() < self.window {
            let Some(d) = self.dequeue() else {
                return;
            };
            self.launch(conn, d, now, out);
        }
    }

    fn position(&self, pkid: u16) -> Option<usize> {
        self.inflight.iter().position(|f| f.pkid == pkid)
    }

    /// PUBACK or PUBCOMP: the message is delivered.
    pub fn acked(&mut self, pkid: u16, now: Instant, out: &mut Vec<Action>) {
        if let Some(i) = self.position(pkid) {
            let seq = self.inflight[i].d.seq;
            self.inflight.remove(i);
            self.in_use.remove(&pkid);
            self.record(out, |client| Record::Done { client, seq });
            self.pump(now, out);
        }
    }

    /// Takes out what came through shared subscriptions and the client has not received:
    /// queued, or in flight without its PUBREC (the client may have it, but it did not say
    /// so). Its group's other members get it instead.
    pub fn take_shared(&mut self, out: &mut Vec<Action>) -> Vec<Routed> {
        let mut taken = Vec::new();
        let mut kept = VecDeque::with_capacity(self.inflight.len());
        for f in self.inflight.drain(..) {
            match f.d.share.is_some() && !f.released {
                true => {
                    self.in_use.remove(&f.pkid);
                    taken.push(f.d);
                }
                false => kept.push_back(f),
            }
        }
        self.inflight = kept;
        let (shared, queue): (VecDeque<Routed>, VecDeque<Routed>) =
            self.queue.drain(..).partition(|d| d.share.is_some());
        self.queue = queue;
        self.count_out(shared.iter().map(cost).sum());
        taken.extend(shared);
        for d in &taken {
            self.record(out, |client| Record::Done { client, seq: d.seq });
        }
        taken
    }

    /// The bytes its queue holds, by [`cost`].
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes
    }

    /// Its accounting: at most a window in flight while connected, one packet id per
    /// message in flight and no other in use, a queue within its bound.
    pub fn audit(&self) -> Result<(), String> {
        if self.conn.is_some() && self.inflight.len() > self.window {
            return Err(format!(
                "{} in flight, window {}",
                self.inflight.len(),
                self.window
            ));
        }
        let ids: HashSet<u16> = self.inflight.iter().map(|f| f.pkid).collect();
        if ids.len() != self.inflight.len() || ids != self.in_use {
            return Err(format!(
                "packet ids in flight {ids:?} are not those in use {:?}",
                self.in_use
            ));
        }
        if self.queue.len() > self.queue_max {
            return Err(format!(
                "{} queued, bound {}",
                self.queue.len(),
                self.queue_max
            ));
        }
        let bytes: usize = self.queue.iter().map(cost).sum();
        if bytes != self.queued_bytes {
            return Err(format!(
                "{bytes} bytes queued, counted {}",
                self.queued_bytes
            ));
        }
        Ok(())
    }

    /// PUBREC: answer PUBREL and wait for PUBCOMP.
    pub fn received(&mut self, pkid: u16, out: &mut Vec<Action>) {
        if let Some(i) = self.position(pkid) {
            let f = &mut self.inflight[i];
            if !f.released {
                f.released = true;
                let seq = f.d.seq;
                self.record(out, |client| Record::Released { client, seq });
            }
        }
        if let Some(conn) = self.conn {
            out.push(Action::Send(conn, write::ack(Packet::PubRel, pkid).into()));
        }
    }
}

/// What a queued message counts against `--max-queued-bytes`, fixed when it was routed.
pub fn cost(d: &Routed) -> usize {
    d.cost as usize
}

/// The cost of a message routed to `sharers` sessions that may queue it: what a queue
/// spends on it, and a share of its topic and payload, which are held once however many
/// sessions queue it (so that a message queued for 10,000 sessions away counts its
/// payload once, not 10,000 times).
pub fn share_cost(msg: &Message, sharers: usize) -> u32 {
    let bytes = msg.topic.len() + msg.payload.len();
    u32::try_from(QUEUED_OVERHEAD + bytes / sharers.max(1)).unwrap_or(u32::MAX)
}

/// What a queue spends per message beside the message itself (its `Routed`).
const QUEUED_OVERHEAD: usize = 64;

impl Drop for Session {
    /// A session that ends gives back what it held.
    fn drop(&mut self) {
        self.total.fetch_sub(self.queued_bytes, Ordering::Relaxed);
    }
}

/// The PUBLISH of a delivery; `None` when it expired before it could be sent (a resend,
/// `dup`, goes out all the same: its delivery had begun).
fn encode(v: Version, d: &Routed, pkid: u16, dup: bool, now: Instant) -> Option<Frame> {
    let form = Form {
        qos: d.qos,
        retain: d.retain,
        dup,
        pkid,
        sub_ids: &d.sub_ids,
        now,
    };
    write::publish(v, &d.msg, form)
}
