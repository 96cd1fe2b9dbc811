//! A session as the store keeps it: the records of its changes (`record`, `queued`), its
//! whole state as records (`dump`), and its state rebuilt from them after a restart
//! (`restore_*`, then `recost`).

use std::collections::HashSet;
use std::sync::Arc;

use super::{Flight, Routed, Session, cost, share_cost};
use crate::broker::engine::Action;
use crate::broker::engine::record::Record;
use crate::broker::engine::table::SubOpts;

impl Session {
    /// Queues a record of a change, if the store keeps this session.
    pub(super) fn record(&self, out: &mut Vec<Action>, rec: impl FnOnce(Arc<str>) -> Record) {
        if self.durable {
            out.push(Action::Store(rec(self.client.clone())));
        }
    }

    /// The ids of the messages in its queue.
    pub fn queued_ids(&self) -> impl Iterator<Item = u64> + '_ {
        self.queue.iter().map(|d| d.msg.id)
    }

    /// How many messages it holds: in flight and queued.
    pub fn held(&self) -> usize {
        self.inflight.len() + self.queue.len()
    }

    /// Its whole state as records (a snapshot of the store): the session, when it ends
    /// if its client is `away` (else it is counted from the restart), its subscriptions
    /// (with `opts` of each filter), QoS 2 state, and its deliveries in order, each
    /// message written once (`written` holds those written already).
    pub fn dump(
        &self,
        away: bool,
        opts: impl Fn(&str) -> Option<SubOpts>,
        written: &mut HashSet<u64>,
        each: &mut impl FnMut(Record),
    ) {
        let client = || self.client.clone();
        each(Record::Session {
            client: client(),
            version: self.version,
            expiry: self.expiry,
        });
        if self.user.is_some() {
            let user = self.user.clone();
            each(Record::User {
                client: client(),
                user,
            });
        }
        if away {
            each(Record::Away {
                client: client(),
                expires: self.expires_at,
            });
        }
        for filter in &self.filters {
            if let Some(opts) = opts(filter) {
                let filter = filter.clone();
                each(Record::Subscribe {
                    client: client(),
                    filter,
                    opts,
                });
            }
        }
        for &pkid in &self.qos2_in {
            each(Record::Qos2In {
                client: client(),
                pkid,
                held: true,
            });
        }
        let sent = self.inflight.iter().map(|f| (&f.d, Some(f)));
        for (d, flight) in sent.chain(self.queue.iter().map(|d| (d, None))) {
            if written.insert(d.msg.id) {
                each(Record::Message {
                    id: d.msg.id,
                    msg: d.msg.clone(),
                });
            }
            each(queued(client(), d));
            if let Some(f) = flight {
                each(Record::Sent {
                    client: client(),
                    seq: d.seq,
                    pkid: f.pkid,
                });
                if f.released {
                    each(Record::Released {
                        client: client(),
                        seq: d.seq,
                    });
                }
            }
        }
    }

    /// A restart: a delivery the store kept, queued (a full queue drops it, counted).
    pub fn restore_queued(&mut self, d: Routed) {
        self.next_seq = self.next_seq.max(d.seq.saturating_add(1));
        match self.queue.len() >= self.queue_max {
            true => self.drop_one(),
            false => self.enqueue(d),
        }
    }

    /// A restart: each queued message's share of its bytes again, now that every session
    /// is back (`sharers`: how many queue it).
    pub fn recost(&mut self, sharers: impl Fn(u64) -> usize) {
        let (before, mut after) = (self.queued_bytes, 0);
        for d in &mut self.queue {
            d.cost = share_cost(&d.msg, sharers(d.msg.id));
            after += cost(d);
        }
        self.count_out(before);
        self.count_in(after);
    }

    /// A restart: delivery `seq` had been sent with `pkid`; it is sent again as a
    /// duplicate when the client is back.
    pub fn restore_sent(&mut self, seq: u64, pkid: u16) {
        if pkid == 0 || self.in_use.contains(&pkid) {
            return;
        }
        let Some(i) = self.queue.iter().position(|d| d.seq == seq) else {
            return;
        };
        if let Some(d) = self.queue.remove(i) {
            self.count_out(cost(&d));
            self.in_use.insert(pkid);
            self.next_pkid = pkid;
            self.inflight.push_back(Flight {
                pkid,
                d,
                released: false,
            });
        }
    }

    /// A restart: delivery `seq` had its PUBREC.
    pub fn restore_released(&mut self, seq: u64) {
        if let Some(f) = self.inflight.iter_mut().find(|f| f.d.seq == seq) {
            f.released = true;
        }
    }

    /// A restart: delivery `seq` was over.
    pub fn restore_done(&mut self, seq: u64) {
        if let Some(i) = self.inflight.iter().position(|f| f.d.seq == seq) {
            if let Some(f) = self.inflight.remove(i) {
                self.in_use.remove(&f.pkid);
            }
        } else if let Some(i) = self.queue.iter().position(|d| d.seq == seq)
            && let Some(d) = self.queue.remove(i)
        {
            self.count_out(cost(&d));
        }
    }
}

/// The record of delivery `d` to `client`'s session.
pub(super) fn queued(client: Arc<str>, d: &Routed) -> Record {
    Record::Queued {
        client,
        seq: d.seq,
        msg: d.msg.id,
        qos: d.qos,
        retain: d.retain,
        sub_ids: d.sub_ids.clone(),
        share: d.share.clone(),
    }
}
