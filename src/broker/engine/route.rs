//! Routing: a message from a client or a will goes to every session subscribed to its
//! topic, each once, at the lower of the two QoS; a subscription gets the retained
//! messages that match it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::codec::{self, Message, Version};
use super::codes::{Packet, SubAckCode, SubRefusal, Unsubscribed};
use super::record::Record;
use super::session::{Routed, Session, share_cost};
use super::table::{self, SubOpts};
use super::write::{self, Form, Frame};
use super::{Action, ConnId, Engine};
use crate::broker::auth::acl::{Access, Acl};
use crate::mqtt::topic::check_shared;
use rumqttc::v5::mqttbytes::v5::DisconnectReasonCode as Reason;

/// Most filters one session may subscribe to (beyond, SUBACK says "quota exceeded").
pub const MAX_FILTERS: usize = 10_000;
/// MQTT 5's reason code "quota exceeded".
const QUOTA_EXCEEDED: u8 = 0x97;
/// MQTT 5's reason code "not authorized".
const NOT_AUTHORIZED: u8 = 0x87;

/// One session that gets a message, merged over its matching filters (not over shared
/// subscriptions: each is a delivery of its own).
struct Target {
    who: Arc<str>,
    qos: u8,
    keep_retain: bool,
    ids: Vec<usize>,
    share: Option<Arc<str>>,
}

impl Engine {
    /// A PUBLISH from a client: routed, then acknowledged.
    pub(super) fn inbound(
        &mut self,
        conn: ConnId,
        client: &Arc<str>,
        pkid: u16,
        msg: Message,
        now: Instant,
    ) {
        if self.over_budget(conn, pkid, &msg, now) || self.denied(conn, client, pkid, &msg) {
            return;
        }
        match msg.qos {
            0 => self.publish(msg, Some(client), now),
            1 => {
                self.publish(msg, Some(client), now);
                self.send(conn, write::ack(Packet::PubAck, pkid));
            }
            _ => {
                let s = self.sessions.get_mut(client);
                let (fresh, durable) =
                    s.map_or((false, false), |s| (s.qos2_in.insert(pkid), s.durable));
                if fresh && durable {
                    let (client, held) = (client.clone(), true);
                    self.out
                        .push(Action::Store(Record::Qos2In { client, pkid, held }));
                }
                if fresh {
                    self.publish(msg, Some(client), now);
                }
                self.send(conn, write::ack(Packet::PubRec, pkid));
            }
        }
    }

    /// Whether the ACL refuses the client this message: then under MQTT 5 a QoS 1 or 2
    /// message is refused with reason 0x87 "not authorized" in its PUBACK or PUBREC;
    /// under 3.1.1, which cannot say so, it is acknowledged and dropped (as mosquitto
    /// does), and logged; a QoS 0 message is dropped and logged.
    fn denied(&mut self, conn: ConnId, client: &Arc<str>, pkid: u16, msg: &Message) -> bool {
        let Some(c) = self.conns.get(&conn) else {
            return true;
        };
        let (user, v) = (c.user.clone(), c.version);
        if self.allowed(Access::Write, user.as_deref(), client, &msg.topic) {
            return false;
        }
        log::info!(
            "{}: may not publish to {} (--acl-file): dropped",
            crate::escape::escaped(client),
            crate::escape::escaped(&msg.topic)
        );
        let kind = match msg.qos {
            0 => return true,
            1 => Packet::PubAck,
            _ => Packet::PubRec,
        };
        match v {
            Version::V5 => self.send(conn, write::refusal(kind, pkid, NOT_AUTHORIZED)),
            Version::V311 => self.send(conn, write::ack(kind, pkid)),
        }
        true
    }

    /// Whether the queues hold more than `--max-queued-bytes`: then a QoS 0 message is
    /// dropped (counted, and logged as the count doubles), a QoS 1 or 2 one refused,
    /// never taken and lost: under MQTT 5 with reason 0x97 "quota exceeded" in its PUBACK
    /// or PUBREC; under 3.1.1, which cannot say so, by closing the publisher's connection
    /// (its client sends the message again when it is back). A QoS 2 message already
    /// received (its packet id held) is acknowledged as before.
    fn over_budget(&mut self, conn: ConnId, pkid: u16, msg: &Message, now: Instant) -> bool {
        let queued = self.queued.load(std::sync::atomic::Ordering::Relaxed);
        if queued <= self.limits.max_queued_bytes {
            self.dropped_over_budget = 0;
            return false;
        }
        let client = self.conns.get(&conn).map(|c| (c.client.clone(), c.version));
        let Some((client, v)) = client else {
            return true;
        };
        let repeat =
            msg.qos == 2 && (self.sessions.get(&client)).is_some_and(|s| s.qos2_in.contains(&pkid));
        if repeat {
            return false;
        }
        let limit = self.limits.max_queued_bytes;
        match (msg.qos, v) {
            (0, _) => {
                self.dropped_over_budget += 1;
                if self.dropped_over_budget.is_power_of_two() {
                    log::warn!(
                        "{} QoS 0 messages dropped: the queues hold {queued} bytes, over \
                         --max-queued-bytes ({limit})",
                        self.dropped_over_budget
                    );
                }
            }
            (q, Version::V5) => {
                let kind = if q == 1 {
                    Packet::PubAck
                } else {
                    Packet::PubRec
                };
                self.send(conn, write::refusal(kind, pkid, QUOTA_EXCEEDED));
            }
            (_, Version::V311) => {
                log::warn!(
                    "connection {conn}: closed: a QoS {} message came while the queues hold \
                     {queued} bytes, over --max-queued-bytes ({limit}); MQTT 3.1.1 cannot \
                     refuse it otherwise",
                    msg.qos
                );
                self.out.push(Action::Close(conn));
                self.end(conn, true, now);
            }
        }
        true
    }

    /// UNSUBSCRIBE: each filter dropped, and whether it was there, in the UNSUBACK.
    pub(super) fn unsubscribe(
        &mut self,
        conn: ConnId,
        client: &Arc<str>,
        pkid: u16,
        filters: Vec<String>,
    ) {
        let v = self.conns.get(&conn).map_or(Version::V311, |c| c.version);
        let mut codes = Vec::with_capacity(filters.len());
        for f in filters {
            let was = self.table.unsubscribe(&f, client);
            if let Some(s) = self.sessions.get_mut(client) {
                s.filters.remove(&f);
                if was && s.durable {
                    let client = client.clone();
                    let filter = f.clone();
                    self.out
                        .push(Action::Store(Record::Unsubscribe { client, filter }));
                }
            }
            codes.push(match was {
                true => Unsubscribed::Success,
                false => Unsubscribed::NoSubscriptionExisted,
            });
        }
        self.send(conn, write::unsuback(v, pkid, &codes));
    }

    pub(super) fn subscribe(
        &mut self,
        conn: ConnId,
        client: &Arc<str>,
        pkid: u16,
        filters: Vec<codec::SubReq>,
        id: Option<usize>,
        now: Instant,
    ) {
        let v = self.conns.get(&conn).map_or(Version::V311, |c| c.version);
        let failed = SubAckCode::Refused;
        let mut codes = Vec::with_capacity(filters.len());
        let mut retained = Vec::new();
        for r in filters {
            if crate::mqtt::topic::check_filter(&r.filter).is_err() {
                codes.push(failed(SubRefusal::TopicFilterInvalid));
                continue;
            }
            let shared = table::split_shared(&r.filter);
            if r.filter.starts_with("$share/") {
                let valid = shared.is_some_and(|(g, f)| check_shared(g, f).is_ok());
                if !valid {
                    codes.push(failed(SubRefusal::TopicFilterInvalid));
                    continue;
                }
                // MQTT-3.8.3-4: No Local on a shared subscription is a protocol error.
                if r.no_local {
                    return self.kick(conn, Reason::ProtocolError, now);
                }
            }
            let user = self.sessions.get(client).and_then(|s| s.user.clone());
            let may = (self.acl.as_ref())
                .is_none_or(|acl| acl.may_subscribe(user.as_deref(), client, &r.filter));
            if !may {
                log::info!(
                    "{}: may read nothing {} matches (--acl-file): subscription refused",
                    crate::escape::escaped(client),
                    crate::escape::escaped(&r.filter)
                );
                codes.push(failed(SubRefusal::NotAuthorized));
                continue;
            }
            let full = (self.sessions.get(client))
                .is_some_and(|s| s.filters.len() >= MAX_FILTERS && !s.filters.contains(&r.filter));
            if full {
                codes.push(failed(SubRefusal::QuotaExceeded));
                continue;
            }
            let qos = r.qos.min(2);
            let opts = SubOpts {
                qos,
                no_local: r.no_local,
                keep_retain: r.keep_retain,
                id,
            };
            let new = self.table.subscribe(&r.filter, client, opts.clone());
            if let Some(s) = self.sessions.get_mut(client) {
                s.filters.insert(r.filter.clone());
                if s.durable {
                    let (client, filter) = (client.clone(), r.filter.clone());
                    let sub = Record::Subscribe {
                        client,
                        filter,
                        opts,
                    };
                    self.out.push(Action::Store(sub));
                }
            }
            // A shared subscription gets no retained messages (MQTT 5 §4.8.2).
            if shared.is_none() && (r.retain_handling == 0 || (r.retain_handling == 1 && new)) {
                let mut kept = self.table.retained_for(&r.filter, now);
                kept.retain(|m| self.allowed(Access::Read, user.as_deref(), client, &m.topic));
                retained.extend(kept.into_iter().map(|msg| Routed {
                    qos: msg.qos.min(qos),
                    retain: true,
                    sub_ids: id.into_iter().collect(),
                    share: None,
                    seq: 0,
                    cost: share_cost(&msg, 1),
                    msg,
                }));
            }
            codes.push(SubAckCode::Granted(qos));
        }
        self.send(conn, write::suback(v, pkid, &codes));
        if let Some(s) = self.sessions.get_mut(client) {
            for d in retained {
                stored(s, &d.msg, d.qos, &mut self.out);
                s.deliver(d, None, now, &mut self.out);
            }
        }
    }

    /// Keeps a retained message and hands a message to every session subscribed to its
    /// topic (not to the publisher's own where it subscribed with no-local).
    pub(super) fn publish(&mut self, mut msg: Message, from: Option<&Arc<str>>, now: Instant) {
        let expiry = msg.props.as_ref().and_then(|p| p.message_expiry_interval);
        msg.expires = expiry.map(|secs| now + Duration::from_secs(secs.into()));
        msg.id = self.number();
        if msg.retain {
            self.table.retain(&msg);
            if self.durable {
                let (topic, id) = (msg.topic.clone(), msg.id);
                if !msg.payload.is_empty() {
                    let kept = Arc::new(msg.clone());
                    self.record(Record::Message { id, msg: kept });
                }
                let id = (!msg.payload.is_empty()).then_some(id);
                self.record(Record::Retain { topic, id });
            }
        }
        let msg = Arc::new(msg);
        // Written to the store once, before the first session that keeps it.
        let mut written = msg.retain && !msg.payload.is_empty();
        let mut targets = self.targets(&msg.topic, from);
        if self.acl.is_some() {
            targets.retain(|t| may_read(&self.acl, &self.sessions, &t.who, &msg.topic));
        }
        // The sessions that may queue it (those away, at least): they share its bytes.
        let away = (targets.iter())
            .filter(|t| (self.sessions.get(&t.who)).is_some_and(|s| s.conn.is_none()))
            .count();
        let cost = share_cost(&msg, away);
        // A QoS 0 message is written once per protocol version for everyone it can be.
        let mut shared: [Option<Option<Frame>>; 2] = [None, None];
        for t in targets {
            let Some(s) = self.sessions.get_mut(&t.who) else {
                continue;
            };
            let d = Routed {
                msg: msg.clone(),
                qos: msg.qos.min(t.qos),
                retain: t.keep_retain && msg.retain,
                sub_ids: t.ids,
                share: t.share,
                seq: 0,
                cost,
            };
            if !written && s.durable && d.qos > 0 {
                written = true;
                stored(s, &msg, d.qos, &mut self.out);
            }
            let plain = d.qos == 0 && !d.retain && d.sub_ids.is_empty() && s.conn.is_some();
            let share = plain.then(|| {
                let slot = &mut shared[(s.version == Version::V5) as usize];
                let form = Form {
                    qos: 0,
                    retain: false,
                    dup: false,
                    pkid: 0,
                    sub_ids: &[],
                    now,
                };
                (slot.get_or_insert_with(|| write::publish(s.version, &msg, form))).clone()
            });
            s.deliver(d, share.flatten().as_ref(), now, &mut self.out);
        }
    }

    /// The sessions a message to `topic` goes to, each once. The subscribers of the topic
    /// itself (a room's members) are unique already; those found through wildcards (a few
    /// monitors, usually) are merged into them.
    fn targets(&mut self, topic: &str, from: Option<&Arc<str>>) -> Vec<Target> {
        let target = |who: &Arc<str>, o: &SubOpts| {
            let own = o.no_local && from == Some(who);
            (!own).then(|| Target {
                who: who.clone(),
                qos: o.qos,
                keep_retain: o.keep_retain,
                ids: o.id.into_iter().collect(),
                share: None,
            })
        };
        let mut found = Vec::new();
        let mut wild: HashMap<Arc<str>, Target> = HashMap::new();
        self.table.matching(
            topic,
            |who, o| found.extend(target(who, o)),
            |who, o| {
                if let Some(t) = target(who, o) {
                    match wild.get_mut(who) {
                        Some(m) => merge(m, t),
                        None => drop(wild.insert(who.clone(), t)),
                    }
                }
            },
        );
        if !wild.is_empty() {
            for t in &mut found {
                if let Some(w) = wild.remove(&t.who) {
                    merge(t, w);
                }
            }
            found.extend(wild.into_values());
        }
        self.shared_targets(topic, &mut found);
        found
    }

    /// One member of each shared subscription whose filter matches `topic`, in turn.
    fn shared_targets(&mut self, topic: &str, found: &mut Vec<Target>) {
        let Engine {
            table,
            sessions,
            acl,
            ..
        } = self;
        let connected = |who: &Arc<str>| sessions.get(who).is_some_and(|s| s.conn.is_some());
        let reads = |who: &Arc<str>| may_read(acl, sessions, who, topic);
        for (key, group) in table.shared_matching(topic) {
            let Some(i) = pick(group, connected, reads, None) else {
                continue;
            };
            let (who, o) = &group.members[i];
            found.push(Target {
                who: who.clone(),
                qos: o.qos,
                keep_retain: o.keep_retain,
                ids: o.id.into_iter().collect(),
                share: Some(Arc::from(key.as_str())),
            });
        }
    }

    /// What `from`'s session had from shared subscriptions and its client did not receive
    /// goes to another member of each group (one connected if there is one); with no other
    /// member, it stays with `from` if its session lives on, else it is gone (as a
    /// message to a session that ends).
    pub(super) fn redistribute(&mut self, from: &Arc<str>, now: Instant) {
        let out = &mut self.out;
        let Some(orphans) = self.sessions.get_mut(from).map(|s| s.take_shared(out)) else {
            return;
        };
        for d in orphans {
            let Engine {
                table,
                sessions,
                acl,
                ..
            } = &mut *self;
            let connected = |who: &Arc<str>| sessions.get(who).is_some_and(|s| s.conn.is_some());
            let reads = |who: &Arc<str>| may_read(acl, sessions, who, &d.msg.topic);
            let key = d.share.as_deref().unwrap_or_default();
            let other = (table.group_mut(key)).and_then(|g| {
                pick(g, connected, reads, Some(from)).map(|i| g.members[i].0.clone())
            });
            let to = other.unwrap_or_else(|| from.clone());
            if !reads(&to) {
                continue;
            }
            if let Some(s) = self.sessions.get_mut(&to) {
                stored(s, &d.msg, d.qos, &mut self.out);
                s.deliver(d, None, now, &mut self.out);
            }
        }
    }
}

/// Whether the session `who` may read `topic` (always, without an ACL).
fn may_read(
    acl: &Option<Arc<Acl>>,
    sessions: &HashMap<Arc<str>, Session>,
    who: &Arc<str>,
    topic: &str,
) -> bool {
    acl.as_ref().is_none_or(|acl| {
        let user = sessions.get(who).and_then(|s| s.user.as_deref());
        acl.allows(Access::Read, user, who, topic)
    })
}

/// The member of `group` whose turn it is, among those that may read the message: the
/// first connected one from `group.next` on, else simply the next (its session keeps the
/// message until it is back); never `except`.
fn pick(
    group: &mut table::Group,
    connected: impl Fn(&Arc<str>) -> bool,
    reads: impl Fn(&Arc<str>) -> bool,
    except: Option<&Arc<str>>,
) -> Option<usize> {
    let n = group.members.len();
    let eligible = |i: &usize| {
        let who = &group.members[*i].0;
        except.is_none_or(|e| who != e) && reads(who)
    };
    let order = || (0..n).map(|k| (group.next + k) % n).filter(eligible);
    let chosen = (order().find(|&i| connected(&group.members[i].0))).or_else(|| order().next())?;
    group.next = (chosen + 1) % n;
    Some(chosen)
}

/// Writes `msg` to the store before a delivery of it at `qos` to `s`, if `s` keeps it.
fn stored(s: &Session, msg: &Arc<Message>, qos: u8, out: &mut Vec<Action>) {
    if s.durable && qos > 0 {
        let (id, msg) = (msg.id, msg.clone());
        out.push(Action::Store(Record::Message { id, msg }));
    }
}

/// One delivery for two matching subscriptions: the higher QoS, both ids.
fn merge(into: &mut Target, t: Target) {
    into.qos = into.qos.max(t.qos);
    into.keep_retain |= t.keep_retain;
    into.ids.extend(t.ids);
}
