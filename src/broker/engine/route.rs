//! Routing: a message from a client or a will goes to every session subscribed to its
//! topic, each once, at the lower of the two QoS; a subscription gets the retained
//! messages that match it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::codec::{self, Message, Version};
use super::codes::{Packet, SubAckCode, SubRefusal, Unsubscribed};
use super::session::Routed;
use super::table::SubOpts;
use super::write::{self, Form, Frame};
use super::{ConnId, Engine};

/// Most filters one session may subscribe to (beyond, SUBACK says "quota exceeded").
pub const MAX_FILTERS: usize = 10_000;

/// One session that gets a message, merged over its matching filters.
struct Target {
    who: Arc<str>,
    qos: u8,
    keep_retain: bool,
    ids: Vec<usize>,
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
        match msg.qos {
            0 => self.publish(msg, Some(client), now),
            1 => {
                self.publish(msg, Some(client), now);
                self.send(conn, write::ack(Packet::PubAck, pkid));
            }
            _ => {
                let fresh = (self.sessions.get_mut(client)).is_some_and(|s| s.qos2_in.insert(pkid));
                if fresh {
                    self.publish(msg, Some(client), now);
                }
                self.send(conn, write::ack(Packet::PubRec, pkid));
            }
        }
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
            if r.filter.starts_with("$share/") {
                codes.push(failed(SubRefusal::SharedSubscriptionsNotSupported));
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
            let new = self.table.subscribe(&r.filter, client, opts);
            if let Some(s) = self.sessions.get_mut(client) {
                s.filters.insert(r.filter.clone());
            }
            if r.retain_handling == 0 || (r.retain_handling == 1 && new) {
                let kept = self.table.retained_for(&r.filter, now);
                retained.extend(kept.into_iter().map(|msg| Routed {
                    qos: msg.qos.min(qos),
                    retain: true,
                    sub_ids: id.into_iter().collect(),
                    msg,
                }));
            }
            codes.push(SubAckCode::Granted(qos));
        }
        self.send(conn, write::suback(v, pkid, &codes));
        if let Some(s) = self.sessions.get_mut(client) {
            for d in retained {
                s.deliver(d, None, now, &mut self.out);
            }
        }
    }

    /// Keeps a retained message and hands a message to every session subscribed to its
    /// topic (not to the publisher's own where it subscribed with no-local).
    pub(super) fn publish(&mut self, mut msg: Message, from: Option<&Arc<str>>, now: Instant) {
        let expiry = msg.props.as_ref().and_then(|p| p.message_expiry_interval);
        msg.expires = expiry.map(|secs| now + Duration::from_secs(secs.into()));
        if msg.retain {
            self.table.retain(&msg);
        }
        let msg = Arc::new(msg);
        let targets = self.targets(&msg.topic, from);
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
            };
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
    fn targets(&self, topic: &str, from: Option<&Arc<str>>) -> Vec<Target> {
        let target = |who: &Arc<str>, o: &SubOpts| {
            let own = o.no_local && from == Some(who);
            (!own).then(|| Target {
                who: who.clone(),
                qos: o.qos,
                keep_retain: o.keep_retain,
                ids: o.id.into_iter().collect(),
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
        if wild.is_empty() {
            return found;
        }
        for t in &mut found {
            if let Some(w) = wild.remove(&t.who) {
                merge(t, w);
            }
        }
        found.extend(wild.into_values());
        found
    }
}

/// One delivery for two matching subscriptions: the higher QoS, both ids.
fn merge(into: &mut Target, t: Target) {
    into.qos = into.qos.max(t.qos);
    into.keep_retain |= t.keep_retain;
    into.ids.extend(t.ids);
}
