//! The engine's durable state (`--data-dir`): a durable session (one that outlives its
//! connection) starts with its whole state written as records ([`Engine::keep`]), the
//! replay of the records after a restart ([`Engine::restore`]), and the whole durable
//! state written again for a compaction ([`Engine::snapshot`]).
//!
//! The replay trusts nothing: a record that names a session, a message or a delivery
//! the engine does not have is skipped, so that any sequence of records leaves the
//! engine consistent (the fuzz target `store` checks it).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::codec::Message;
use super::record::Record;
use super::session::{Routed, Session, share_cost};
use super::{Action, Engine};

impl Engine {
    /// The session `who` is kept by the store from now on: a session record, and its
    /// whole state the first time.
    pub(super) fn keep(&mut self, who: &Arc<str>) {
        let Engine {
            sessions,
            table,
            out,
            ..
        } = self;
        let Some(s) = sessions.get_mut(who) else {
            return;
        };
        if s.durable {
            let (client, version, expiry) = (who.clone(), s.version, s.expiry);
            out.push(Action::Store(Record::Session {
                client,
                version,
                expiry,
            }));
            let (client, user) = (who.clone(), s.user.clone());
            out.push(Action::Store(Record::User { client, user }));
            return;
        }
        s.durable = true;
        // Its client is connecting, or disconnecting (and `end` says when it expires).
        let opts = |filter: &str| table.opts(filter, who);
        s.dump(false, opts, &mut HashSet::new(), &mut |r| {
            out.push(Action::Store(r))
        });
    }

    /// Hands every record of the durable state to `each`, ending with
    /// [`Record::SnapshotEnd`]: the retained messages, the durable sessions, the wills
    /// that wait for their delay. Each message is written once, before the first record
    /// that names it.
    pub fn snapshot(&self, mut each: impl FnMut(Record)) {
        let mut written = HashSet::new();
        for msg in self.table.retained() {
            if written.insert(msg.id) {
                let (id, msg) = (msg.id, msg.clone());
                each(Record::Message { id, msg });
            }
            let (topic, id) = (msg.topic.clone(), Some(msg.id));
            each(Record::Retain { topic, id });
        }
        for (who, s) in self.sessions.iter().filter(|(_, s)| s.durable) {
            let opts = |filter: &str| self.table.opts(filter, who);
            s.dump(s.conn.is_none(), opts, &mut written, &mut each);
        }
        for (who, (at, msg)) in &self.wills {
            let (client, at, id) = (who.clone(), *at, msg.id);
            if written.insert(id) {
                let msg = Arc::new(msg.clone());
                each(Record::Message { id, msg });
            }
            each(Record::Will {
                client,
                at,
                msg: id,
            });
        }
        each(Record::SnapshotEnd);
    }

    /// Replays one record of the store (a restart, before any client connects).
    /// [`Engine::restored`] ends the replay.
    pub fn restore(&mut self, rec: Record, now: Instant) {
        self.durable = true;
        match rec {
            Record::Message { id, msg } => {
                self.last_msg = self.last_msg.max(id);
                let msg = match msg.id == id {
                    true => msg,
                    false => Arc::new(Message {
                        id,
                        ..(*msg).clone()
                    }),
                };
                self.replay.insert(id, msg);
            }
            Record::Retain { topic, id: None } => self.table.unretain(&topic),
            Record::Retain {
                topic,
                id: Some(id),
            } => {
                if let Some(msg) = self.replay.get(&id).filter(|m| m.topic == topic) {
                    self.table.restore_retained(msg.clone());
                }
            }
            Record::Session {
                client, expiry: 0, ..
            } => self.forget(&client),
            Record::Session {
                client,
                version,
                expiry,
            } => {
                let (queue_max, total) = (self.limits.max_queued, self.queued.clone());
                let s = (self.sessions.entry(client.clone()))
                    .or_insert_with(|| Session::new(client, version, queue_max, total));
                s.durable = true;
                s.version = version;
                s.expiry = expiry;
                // Its client, connected or not, is away since the restart.
                s.expires_at = match expiry {
                    u32::MAX => self.limits.persistent_expiry.map(|d| now + d),
                    secs => Some(now + Duration::from_secs(secs.into())),
                };
            }
            Record::Away { client, expires } => {
                if let Some(s) = self.sessions.get_mut(&client) {
                    s.expires_at = expires;
                }
            }
            Record::User { client, user } => {
                if let Some(s) = self.sessions.get_mut(&client) {
                    s.user = user;
                }
            }
            Record::End { client } => self.forget(&client),
            Record::Subscribe {
                client,
                filter,
                opts,
            } => {
                if let Some(s) = self.sessions.get_mut(&client) {
                    self.table.subscribe(&filter, &client, opts);
                    s.filters.insert(filter);
                }
            }
            Record::Unsubscribe { client, filter } => {
                if let Some(s) = self.sessions.get_mut(&client)
                    && s.filters.remove(&filter)
                {
                    self.table.unsubscribe(&filter, &client);
                }
            }
            Record::Queued {
                client,
                seq,
                msg,
                qos,
                retain,
                sub_ids,
                share,
            } => {
                let msg = self.replay.get(&msg).cloned();
                if let (Some(s), Some(msg)) = (self.sessions.get_mut(&client), msg) {
                    s.restore_queued(Routed {
                        cost: share_cost(&msg, 1),
                        msg,
                        qos: qos.clamp(1, 2),
                        retain,
                        sub_ids,
                        share,
                        seq,
                    });
                }
            }
            Record::Sent { client, seq, pkid } => {
                if let Some(s) = self.sessions.get_mut(&client) {
                    s.restore_sent(seq, pkid);
                }
            }
            Record::Released { client, seq } => {
                if let Some(s) = self.sessions.get_mut(&client) {
                    s.restore_released(seq);
                }
            }
            Record::Done { client, seq } => {
                if let Some(s) = self.sessions.get_mut(&client) {
                    s.restore_done(seq);
                }
            }
            Record::Qos2In { client, pkid, held } => {
                if let Some(s) = self.sessions.get_mut(&client) {
                    match held {
                        true => s.qos2_in.insert(pkid),
                        false => s.qos2_in.remove(&pkid),
                    };
                }
            }
            Record::Will { client, at, msg } => {
                if let Some(msg) = self.replay.get(&msg) {
                    self.wills.insert(client, (at, (**msg).clone()));
                }
            }
            Record::WillDone { client } => drop(self.wills.remove(&client)),
            Record::SnapshotEnd => {}
        }
        // The replay writes nothing: the records are the store's already.
        self.out.clear();
    }

    /// The replay is over: what it needed is let go. Says how many sessions, retained
    /// messages and queued messages it brought back.
    pub fn restored(&mut self) -> (usize, usize, usize) {
        self.replay = Default::default();
        // Each message's bytes shared among the sessions that queue it, as when routed.
        let mut sharers: HashMap<u64, usize> = HashMap::new();
        for s in self.sessions.values() {
            for id in s.queued_ids() {
                *sharers.entry(id).or_default() += 1;
            }
        }
        for s in self.sessions.values_mut() {
            s.recost(|id| sharers.get(&id).copied().unwrap_or(1));
        }
        let queued = self.sessions.values().map(Session::held).sum();
        (self.sessions.len(), self.table.retained().count(), queued)
    }
}
