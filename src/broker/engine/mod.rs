//! chat-broker's engine: what an MQTT 3.1.1 and 5 broker decides, as a state machine.
//!
//! It does no I/O and reads no clock. The driver (`broker`) gives it each connection's
//! packets ([`Engine::handle`]), bytes it could not read ([`Engine::bad`]), the end of a
//! connection ([`Engine::lost`]) and, now and then, the time ([`Engine::tick`]); then it
//! carries out the [`Action`]s the engine queued: bytes to send on a connection, and
//! connections to close.
//!
//! What it keeps: sessions by client id (subscriptions, messages in flight and queued;
//! MQTT 3.1.1 sessions without clean session and MQTT 5 ones with an expiry outlive the
//! connection), the subscription table, retained messages, wills (MQTT 5: with their
//! delay). Everything lives in memory.

pub mod codec;
mod codes;
mod durable;
pub mod record;
mod route;
mod session;
mod table;
mod write;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::broker::auth::acl::{Access, Acl};
use crate::mqtt::topic::check_publish;

pub use codec::{Bad, In, Version};
use codec::{Hello, Message, StoredWill};
pub use codes::ConnectRefusal;
use codes::Packet;
pub use record::Record;
use rumqttc::v5::mqttbytes::v5::DisconnectReasonCode as Reason;
use session::Session;
use table::Table;
pub use table::{SubOpts, matches};
pub use write::Frame;

/// The largest packet a client may send (announced to MQTT 5 clients): a larger one ends
/// its connection.
pub const BROKER_MAX_PACKET: usize = 16 << 20;

/// A connection, as the driver numbers them.
pub type ConnId = u64;

/// What the driver must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Write this packet on the connection.
    Send(ConnId, Frame),
    /// Write what was queued before, then close the connection.
    Close(ConnId),
    /// Keep this change in the store (`--data-dir`); nothing queued after it may leave the
    /// broker before it is on disk.
    Store(Record),
}

/// A connected client.
struct Conn {
    client: Arc<str>,
    /// Who logged in (its ACL rules), or None: anonymous.
    user: Option<Arc<str>>,
    /// Whether the password file vouched for `user`.
    by_password: bool,
    version: Version,
    will: Option<StoredWill>,
    aliases: HashMap<u16, String>,
}

/// What the engine allows (chat-broker(1) LIMITS).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most clients connected at once (`--max-connections`); beyond, CONNACK refuses.
    pub max_connections: usize,
    /// Most QoS 1 and 2 messages queued for one session (`--max-queued-messages`).
    pub max_queued: usize,
    /// Most bytes queued for all sessions together (`--max-queued-bytes`): beyond, QoS 0
    /// messages are dropped and QoS 1 and 2 ones refused.
    pub max_queued_bytes: usize,
    /// How long a session that would never end (MQTT 3.1.1 without clean session, MQTT 5
    /// with expiry 0xFFFFFFFF) is kept without its client (`--persistent-client-expiration`);
    /// None: for ever.
    pub persistent_expiry: Option<Duration>,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: usize::MAX,
            max_queued: session::QUEUE_MAX,
            max_queued_bytes: usize::MAX,
            persistent_expiry: None,
        }
    }
}

#[derive(Default)]
pub struct Engine {
    limits: Limits,
    /// Bytes queued for every session together (each session adds and takes its own).
    queued: Arc<std::sync::atomic::AtomicUsize>,
    /// QoS 0 messages dropped over `--max-queued-bytes` since the budget was last hit.
    dropped_over_budget: u64,
    conns: HashMap<ConnId, Conn>,
    sessions: HashMap<Arc<str>, Session>,
    table: Table,
    /// Wills waiting for their delay, by client id.
    wills: HashMap<Arc<str>, (Instant, Message)>,
    assigned: u64,
    /// Whether the store keeps the sessions that outlive their connection and the
    /// retained messages (`--data-dir`): then each change to them is queued as a record.
    durable: bool,
    /// The number of the last message routed.
    last_msg: u64,
    /// While the store is replayed: its messages by number.
    replay: HashMap<u64, Arc<Message>>,
    /// What each client may read and write (`--acl-file`); None: everything.
    acl: Option<Arc<Acl>>,
    out: Vec<Action>,
}

impl Engine {
    #[cfg(test)]
    pub fn new() -> Engine {
        Engine::default()
    }

    /// An engine with these limits.
    pub fn with_limits(limits: Limits) -> Engine {
        Engine {
            limits,
            ..Engine::default()
        }
    }

    /// An engine whose durable state the store keeps (see [`Action::Store`]).
    pub fn set_durable(&mut self) {
        self.durable = true;
    }

    /// Judges every later PUBLISH, SUBSCRIBE and delivery by `acl` (None: all allowed).
    /// Subscriptions made before stay; what reaches them is judged by the new rules.
    pub fn set_acl(&mut self, acl: Option<Arc<Acl>>) {
        self.acl = acl;
    }

    /// Disconnects the clients the password file vouched for whose user `known` no longer
    /// knows (SIGHUP read a new file): MQTT 5 clients are told, 0x87 "not authorized".
    pub fn revoke(&mut self, known: impl Fn(&str) -> bool, now: Instant) {
        let mut gone: Vec<ConnId> = (self.conns.iter())
            .filter(|(_, c)| c.by_password && c.user.as_deref().is_some_and(|u| !known(u)))
            .map(|(id, _)| *id)
            .collect();
        gone.sort_unstable();
        for conn in gone {
            log::warn!("connection {conn}: its user is no longer in the password file");
            self.kick(conn, Reason::NotAuthorized, now);
        }
    }

    /// Whether the ACL lets `user` (the client `client`) read or write `topic`.
    fn allowed(&self, access: Access, user: Option<&str>, client: &str, topic: &str) -> bool {
        (self.acl.as_ref()).is_none_or(|acl| acl.allows(access, user, client, topic))
    }

    /// A number for a message the engine routes.
    fn number(&mut self) -> u64 {
        self.last_msg += 1;
        self.last_msg
    }

    /// Queues a record, if the store keeps anything.
    fn record(&mut self, rec: Record) {
        if self.durable {
            self.out.push(Action::Store(rec));
        }
    }

    /// Moves the actions queued so far into `into` (empty), in order, and keeps its
    /// buffer for the next ones: no allocation per call.
    pub fn take_actions(&mut self, into: &mut Vec<Action>) {
        debug_assert!(into.is_empty());
        std::mem::swap(&mut self.out, into);
    }

    /// The actions queued by the calls so far, in order.
    pub fn actions(&mut self) -> std::vec::Drain<'_, Action> {
        self.out.drain(..)
    }

    /// Checks the engine's own accounting (for the fuzz targets and tests): every
    /// connection has its session, a session's connection is one the engine knows, and
    /// each session's window, packet ids and queue add up ([`Session::audit`]).
    pub fn audit(&self) -> Result<(), String> {
        if self.conns.len() > self.limits.max_connections {
            return Err(format!(
                "{} connections, more than the limit {}",
                self.conns.len(),
                self.limits.max_connections
            ));
        }
        for (conn, c) in &self.conns {
            let s = (self.sessions.get(&c.client))
                .ok_or_else(|| format!("connection {conn} has no session {}", c.client))?;
            if s.conn != Some(*conn) {
                return Err(format!("connection {conn}'s session says {:?}", s.conn));
            }
        }
        let total: usize = self.sessions.values().map(Session::queued_bytes).sum();
        let counted = self.queued.load(std::sync::atomic::Ordering::Relaxed);
        if total != counted {
            return Err(format!(
                "{total} bytes queued in the sessions, counted {counted}"
            ));
        }
        for (who, s) in &self.sessions {
            if let Some(conn) = s.conn.filter(|c| !self.conns.contains_key(c)) {
                return Err(format!(
                    "session {who} holds connection {conn}, which is gone"
                ));
            }
            s.audit().map_err(|why| format!("session {who}: {why}"))?;
        }
        Ok(())
    }

    /// How many clients are connected (for the tests).
    #[cfg(test)]
    pub fn clients(&self) -> usize {
        self.conns.len()
    }

    /// A packet from a connection. The first must be CONNECT.
    pub fn handle(&mut self, conn: ConnId, packet: In, now: Instant) {
        if let In::Connect(hello) = packet {
            match self.conns.contains_key(&conn) {
                true => self.kick(conn, Reason::ProtocolError, now),
                false => self.connect(conn, *hello, now),
            }
            return;
        }
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let client = c.client.clone();
        match packet {
            In::Connect(_) => {}
            p @ In::Publish { .. } => self.publish_in(conn, &client, p, now),
            In::PubAck(pkid) | In::PubComp(pkid) => {
                if let Some(s) = self.sessions.get_mut(&client) {
                    s.acked(pkid, now, &mut self.out);
                }
            }
            In::PubRec(pkid) => {
                if let Some(s) = self.sessions.get_mut(&client) {
                    s.received(pkid, &mut self.out);
                }
            }
            In::PubRel(pkid) => {
                if let Some(s) = self.sessions.get_mut(&client)
                    && s.qos2_in.remove(&pkid)
                    && s.durable
                {
                    let held = false;
                    self.out
                        .push(Action::Store(Record::Qos2In { client, pkid, held }));
                }
                self.send(conn, write::ack(Packet::PubComp, pkid));
            }
            In::Subscribe { pkid, filters, id } => {
                self.subscribe(conn, &client, pkid, filters, id, now)
            }
            In::Unsubscribe { pkid, filters } => self.unsubscribe(conn, &client, pkid, filters),
            In::PingReq => self.send(conn, write::pingresp()),
            In::Disconnect {
                with_will,
                session_expiry,
            } => {
                if let (Some(e), Some(s)) = (session_expiry, self.sessions.get_mut(&client)) {
                    s.expiry = e;
                    if self.durable && e != 0 {
                        self.keep(&client);
                    }
                }
                self.out.push(Action::Close(conn));
                self.end(conn, with_will, now);
            }
            In::Unexpected(what) => {
                log::info!("connection {conn}: a client sent {what}; closing");
                self.kick(conn, Reason::ProtocolError, now)
            }
        }
    }

    /// A PUBLISH: its topic alias (MQTT 5) resolved, its topic checked.
    fn publish_in(&mut self, conn: ConnId, client: &Arc<str>, p: In, now: Instant) {
        let In::Publish {
            pkid,
            topic,
            alias,
            mut msg,
        } = p
        else {
            return;
        };
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if let Some(a) = alias {
            if a == 0 || a > write::TOPIC_ALIAS_MAX {
                return self.kick(conn, Reason::TopicAliasInvalid, now);
            }
            if topic.is_empty() {
                match c.aliases.get(&a) {
                    Some(t) => msg.topic = t.clone(),
                    None => return self.kick(conn, Reason::ProtocolError, now),
                }
            } else {
                c.aliases.insert(a, topic);
            }
        }
        if check_publish(&msg.topic).is_err() {
            return self.kick(conn, Reason::TopicNameInvalid, now);
        }
        self.inbound(conn, client, pkid, msg, now);
    }

    /// Bytes from the connection that are not MQTT, or a packet larger than allowed.
    pub fn bad(&mut self, conn: ConnId, why: &Bad, now: Instant) {
        let reason = match why {
            Bad::TooLarge => Reason::PacketTooLarge,
            Bad::Malformed(_) | Bad::Level(_) => Reason::MalformedPacket,
        };
        match self.conns.contains_key(&conn) {
            true => self.kick(conn, reason, now),
            false => self.out.push(Action::Close(conn)),
        }
    }

    /// The connection ended without DISCONNECT (closed, failed, or silent for longer
    /// than its keep-alive allows): its will is sent.
    pub fn lost(&mut self, conn: ConnId, now: Instant) {
        self.end(conn, true, now);
    }

    /// Sends the wills whose delay is over and forgets the sessions and retained messages
    /// that expired.
    pub fn tick(&mut self, now: Instant) {
        self.table.forget_expired(now);
        let due: Vec<Arc<str>> = (self.wills.iter())
            .filter(|(_, (at, _))| *at <= now)
            .map(|(who, _)| who.clone())
            .collect();
        for who in due {
            if let Some((_, msg)) = self.wills.remove(&who) {
                self.record(Record::WillDone { client: who });
                self.publish(msg, None, now);
            }
        }
        let expired: Vec<Arc<str>> = (self.sessions.iter())
            .filter(|(_, s)| s.conn.is_none() && s.expires_at.is_some_and(|at| at <= now))
            .map(|(who, _)| who.clone())
            .collect();
        for who in expired {
            self.forget(&who);
        }
    }

    /// The broker stops: every client is told (MQTT 5: DISCONNECT 0x8B, "server shutting
    /// down") and its connection closed after what is queued for it. Each connection ends
    /// as one the server closes without a DISCONNECT from the client: its will is
    /// published (MQTT 5 §3.1.2.5), at once or, with a delay, when the delay is over (so
    /// not before the process exits, as the session lasts while it waits).
    pub fn shutdown(&mut self, now: Instant) {
        let mut conns: Vec<ConnId> = self.conns.keys().copied().collect();
        conns.sort_unstable();
        for conn in conns {
            self.kick(conn, Reason::ServerShuttingDown, now);
        }
    }

    fn send(&mut self, conn: ConnId, bytes: Bytes) {
        self.out.push(Action::Send(conn, bytes.into()));
    }

    /// Ends a connection for a protocol error: MQTT 5 clients are told why.
    fn kick(&mut self, conn: ConnId, reason: Reason, now: Instant) {
        if let Some(b) = (self.conns.get(&conn)).and_then(|c| write::disconnect(c.version, reason))
        {
            self.send(conn, b);
        }
        self.out.push(Action::Close(conn));
        self.end(conn, true, now);
    }

    fn connect(&mut self, conn: ConnId, h: Hello, now: Instant) {
        let v = h.version;
        // A client that takes over its own session's connection does not add one.
        let taking_over =
            (self.sessions.get(h.client_id.as_str())).is_some_and(|s| s.conn.is_some());
        let full = self.conns.len() >= self.limits.max_connections && !taking_over;
        let will_denied = (h.will.as_ref()).is_some_and(|w| {
            !self.allowed(Access::Write, h.user.as_deref(), &h.client_id, &w.msg.topic)
        });
        // Another user's session (connected or kept) is not this login's to take.
        let owner = (self.sessions.get(h.client_id.as_str())).and_then(|s| s.user.clone());
        let theirs = owner.is_some() && owner != h.user;
        let refused = match () {
            _ if h.refused.is_some() => h.refused,
            _ if !h.judged => Some(ConnectRefusal::NotAuthorized),
            _ if theirs => Some(ConnectRefusal::NotAuthorized),
            _ if full => Some(ConnectRefusal::TooManyConnections),
            _ if h.auth_method => Some(ConnectRefusal::BadAuthenticationMethod),
            _ if h.client_id.is_empty() && v == Version::V311 && !h.clean => {
                Some(ConnectRefusal::ClientIdNotValid)
            }
            _ if (h.will.as_ref()).is_some_and(|w| check_publish(&w.msg.topic).is_err()) => {
                Some(ConnectRefusal::WillTopicInvalid)
            }
            _ if will_denied => Some(ConnectRefusal::NotAuthorized),
            _ => None,
        };
        if let Some(why) = refused {
            log::info!("connection {conn}: refused with reason {:#04x}", why.code());
            if let Some(b) = write::connack(v, false, Some(why), None) {
                self.send(conn, b);
            }
            self.out.push(Action::Close(conn));
            return;
        }
        let assigned = h.client_id.is_empty().then(|| self.assign_id());
        let id: Arc<str> = Arc::from(assigned.as_deref().unwrap_or(&h.client_id));
        if let Some(old) = self.sessions.get(&id).and_then(|s| s.conn) {
            log::info!("connection {old}: session taken over by connection {conn}");
            self.kick(old, Reason::SessionTakenOver, now);
        }
        // A reconnect cancels a will that waits for its delay, unless it ends the session.
        if let Some((_, will)) = self.wills.remove(&id) {
            self.record(Record::WillDone { client: id.clone() });
            if h.clean {
                self.publish(will, None, now);
            }
        }
        // An anonymous client's session taken by a user starts afresh (what was queued
        // for it was judged by the anonymous rules).
        let foreign = (self.sessions.get(&id)).is_some_and(|s| s.user != h.user);
        if foreign {
            log::info!(
                "{}: a login as another user: its session starts afresh",
                crate::escape::escaped(&id)
            );
        }
        if h.clean || foreign {
            self.forget(&id);
        }
        let resumed = self.sessions.contains_key(&id);
        let (queue_max, total) = (self.limits.max_queued, self.queued.clone());
        let s = (self.sessions.entry(id.clone()))
            .or_insert_with(|| Session::new(id.clone(), v, queue_max, total));
        (s.expiry, s.version) = (h.session_expiry, v);
        s.user = h.user.clone();
        if s.durable && s.expiry == 0 {
            // Taken up again by a client that lets it end with the connection.
            s.durable = false;
            self.out
                .push(Action::Store(Record::End { client: id.clone() }));
        }
        if self.durable && s.expiry != 0 {
            self.keep(&id);
        }
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        if let Some(ack) = write::connack(v, resumed, None, assigned.as_deref()) {
            self.out.push(Action::Send(conn, ack.into()));
        }
        if s.dropped > 0 {
            let n = std::mem::take(&mut s.dropped);
            log::warn!(
                "{}: {n} messages dropped while it was away: its queue was full ({} messages, \
                 --max-queued-messages)",
                crate::escape::escaped(&id),
                self.limits.max_queued
            );
        }
        s.attach(conn, v, h.receive_max, h.max_packet, now, &mut self.out);
        self.conns.insert(
            conn,
            Conn {
                client: id,
                user: h.user,
                by_password: h.by_password,
                version: v,
                will: h.will,
                aliases: HashMap::new(),
            },
        );
    }

    fn assign_id(&mut self) -> String {
        loop {
            self.assigned += 1;
            let id = format!("chat-broker-{}", self.assigned);
            if !self.sessions.contains_key(id.as_str()) {
                return id;
            }
        }
    }

    /// The connection is over: the session stays or ends by its expiry, and the will
    /// (when `will`) is sent, at once or after its delay.
    fn end(&mut self, conn: ConnId, will: bool, now: Instant) {
        let Some(c) = self.conns.remove(&conn) else {
            return;
        };
        // The session's expiry, if it was this connection's (not yet taken over).
        let mut expiry = None;
        let own = (self.sessions.get(&c.client)).is_some_and(|s| s.conn == Some(conn));
        if own {
            if let Some(s) = self.sessions.get_mut(&c.client) {
                s.conn = None;
            }
            self.redistribute(&c.client, now);
        }
        if let Some(s) = (self.sessions.get_mut(&c.client)).filter(|_| own) {
            s.conn = None;
            expiry = Some(s.expiry);
            if s.dropped > 0 {
                let n = std::mem::take(&mut s.dropped);
                log::warn!("{}: {n} messages dropped, its queue was full", c.client);
            }
            if s.expiry != 0 && s.expiry != u32::MAX {
                s.expires_at = Some(now + Duration::from_secs(s.expiry.into()));
            }
            if s.expiry == u32::MAX {
                s.expires_at = self.limits.persistent_expiry.map(|d| now + d);
            }
            if s.durable {
                let (client, expires) = (c.client.clone(), s.expires_at);
                self.out
                    .push(Action::Store(Record::Away { client, expires }));
            }
        }
        if expiry == Some(0) {
            self.forget(&c.client);
        }
        let expiry = expiry.unwrap_or(0);
        let Some(w) = c.will.filter(|_| will) else {
            return;
        };
        match w.delay_secs.min(expiry) {
            0 => self.publish(w.msg, None, now),
            secs => {
                let at = now + Duration::from_secs(secs.into());
                let mut msg = w.msg;
                msg.id = self.number();
                if self.durable {
                    let (client, id) = (c.client.clone(), msg.id);
                    let kept = Arc::new(msg.clone());
                    self.record(Record::Message { id, msg: kept });
                    self.record(Record::Will {
                        client,
                        at,
                        msg: id,
                    });
                }
                self.wills.insert(c.client, (at, msg));
            }
        }
    }

    /// Ends a session and its subscriptions.
    fn forget(&mut self, who: &Arc<str>) {
        if let Some(s) = self.sessions.remove(who) {
            for f in &s.filters {
                self.table.unsubscribe(f, who);
            }
            if s.durable {
                self.out.push(Action::Store(Record::End {
                    client: who.clone(),
                }));
            }
        }
    }
}

#[cfg(test)]
mod acl_tests;
#[cfg(test)]
mod durable_tests;
#[cfg(test)]
mod fuzz_tests;
#[cfg(test)]
mod session_tests;
#[cfg(test)]
mod tests;
