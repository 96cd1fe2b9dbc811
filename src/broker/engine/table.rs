//! Who is subscribed to what, and the retained messages: the engine's routing tables.
//!
//! Filters without wildcards are found by the topic itself, in one hash lookup; only
//! wildcard filters are matched level by level. A member of a room is one entry under
//! the room's filter, so a message to a crowd costs one lookup and one pass over it.
//! Shared subscriptions (`$share/GROUP/FILTER`) are groups of their own: a message that
//! matches a group's filter goes to one of its members, which the engine picks.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::codec::Message;

/// How a session subscribed to one filter.
#[derive(Debug, Clone, PartialEq)]
pub struct SubOpts {
    pub qos: u8,
    pub no_local: bool,
    pub keep_retain: bool,
    pub id: Option<usize>,
}

/// The subscribers of one filter, by session.
pub type Members = HashMap<Arc<str>, SubOpts>;

#[derive(Default)]
pub struct Table {
    exact: HashMap<String, Members>,
    wild: HashMap<String, Members>,
    /// Shared subscriptions, by their whole filter (`$share/GROUP/FILTER`).
    shared: HashMap<String, Group>,
    retained: HashMap<String, Arc<Message>>,
}

/// The members of one shared subscription, in the order they joined, and whose turn is
/// next.
#[derive(Debug, Default)]
pub struct Group {
    /// The filter after `$share/GROUP/`.
    pub filter: String,
    pub members: Vec<(Arc<str>, SubOpts)>,
    pub next: usize,
}

/// `$share/GROUP/FILTER` split into GROUP and FILTER; None when `filter` is not one.
/// (Whether GROUP and FILTER are valid is checked by `mqtt::topic::check_shared`.)
pub fn split_shared(filter: &str) -> Option<(&str, &str)> {
    filter.strip_prefix("$share/")?.split_once('/')
}

impl Table {
    /// Adds or replaces a subscription; true when it is new.
    pub fn subscribe(&mut self, filter: &str, who: &Arc<str>, opts: SubOpts) -> bool {
        if let Some((_, inner)) = split_shared(filter) {
            let group = (self.shared.entry(filter.to_string())).or_insert_with(|| Group {
                filter: inner.to_string(),
                ..Group::default()
            });
            return match group.members.iter_mut().find(|(w, _)| w == who) {
                Some((_, o)) => {
                    *o = opts;
                    false
                }
                None => {
                    group.members.push((who.clone(), opts));
                    true
                }
            };
        }
        let map = match has_wildcard(filter) {
            true => &mut self.wild,
            false => &mut self.exact,
        };
        let members = match map.get_mut(filter) {
            Some(m) => m,
            None => map.entry(filter.to_string()).or_default(),
        };
        members.insert(who.clone(), opts).is_none()
    }

    /// Removes a subscription; true when there was one.
    pub fn unsubscribe(&mut self, filter: &str, who: &str) -> bool {
        if split_shared(filter).is_some() {
            let Some(group) = self.shared.get_mut(filter) else {
                return false;
            };
            let before = group.members.len();
            group.members.retain(|(w, _)| &**w != who);
            let was = group.members.len() < before;
            if group.members.is_empty() {
                self.shared.remove(filter);
            }
            return was;
        }
        let map = match has_wildcard(filter) {
            true => &mut self.wild,
            false => &mut self.exact,
        };
        let Some(members) = map.get_mut(filter) else {
            return false;
        };
        let was = members.remove(who).is_some();
        if members.is_empty() {
            map.remove(filter);
        }
        was
    }

    /// Calls `each` with every subscription whose filter matches `topic`.
    /// `exact` is called for the subscribers of the filter that is the topic itself (each
    /// once), `wild` for those of every matching wildcard filter.
    pub fn matching(
        &self,
        topic: &str,
        mut exact: impl FnMut(&Arc<str>, &SubOpts),
        mut wild: impl FnMut(&Arc<str>, &SubOpts),
    ) {
        if let Some(members) = self.exact.get(topic) {
            members.iter().for_each(|(w, o)| exact(w, o));
        }
        for (filter, members) in &self.wild {
            if matches(filter, topic) {
                members.iter().for_each(|(w, o)| wild(w, o));
            }
        }
    }

    /// The shared subscriptions whose filter matches `topic`.
    pub fn shared_matching<'a>(
        &'a mut self,
        topic: &'a str,
    ) -> impl Iterator<Item = (&'a String, &'a mut Group)> + 'a {
        (self.shared.iter_mut()).filter(move |(_, g)| matches(&g.filter, topic))
    }

    /// The group of the shared subscription `filter` (`$share/GROUP/FILTER`).
    pub fn group_mut(&mut self, filter: &str) -> Option<&mut Group> {
        self.shared.get_mut(filter)
    }

    /// How `who` subscribed to `filter`, if it did.
    pub fn opts(&self, filter: &str, who: &str) -> Option<SubOpts> {
        if split_shared(filter).is_some() {
            let group = self.shared.get(filter)?;
            let (_, o) = group.members.iter().find(|(w, _)| &**w == who)?;
            return Some(o.clone());
        }
        let map = match has_wildcard(filter) {
            true => &self.wild,
            false => &self.exact,
        };
        map.get(filter)?.get(who).cloned()
    }

    /// Every retained message.
    pub fn retained(&self) -> impl Iterator<Item = &Arc<Message>> {
        self.retained.values()
    }

    /// Keeps a retained message as it is (a restart: the store's copy is its own).
    pub fn restore_retained(&mut self, msg: Arc<Message>) {
        self.retained.insert(msg.topic.clone(), msg);
    }

    /// Forgets the retained message of `topic`.
    pub fn unretain(&mut self, topic: &str) {
        self.retained.remove(topic);
    }

    /// Forgets the retained messages whose MQTT 5 expiry interval ended.
    pub fn forget_expired(&mut self, now: Instant) {
        self.retained
            .retain(|_, m| m.expires.is_none_or(|at| at > now));
    }

    /// Keeps a retained message, or forgets the topic's when the payload is empty.
    pub fn retain(&mut self, msg: &Message) {
        if msg.payload.is_empty() {
            self.retained.remove(&msg.topic);
        } else {
            // A copy of its own: the payload as read shares a buffer with whatever else
            // came in the same read, which a retained message would keep alive.
            let kept = Message {
                payload: Bytes::copy_from_slice(&msg.payload),
                ..msg.clone()
            };
            self.retained.insert(msg.topic.clone(), Arc::new(kept));
        }
    }

    /// The retained messages a new subscription to `filter` gets (not those whose MQTT 5
    /// expiry interval ended).
    pub fn retained_for(&self, filter: &str, now: Instant) -> Vec<Arc<Message>> {
        let live = |m: &&Arc<Message>| m.expires.is_none_or(|at| at > now);
        if !has_wildcard(filter) {
            return self
                .retained
                .get(filter)
                .filter(live)
                .cloned()
                .into_iter()
                .collect();
        }
        let mut found: Vec<_> = self
            .retained
            .values()
            .filter(|m| matches(filter, &m.topic))
            .filter(live)
            .cloned()
            .collect();
        found.sort_by(|a, b| a.topic.cmp(&b.topic));
        found
    }
}

fn has_wildcard(filter: &str) -> bool {
    crate::mqtt::topic::has_wildcard(filter)
}

/// Whether a (valid) filter matches a topic. Wildcards at the first level do not match
/// topics that start with `$`.
pub fn matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && filter.starts_with(['+', '#']) {
        return false;
    }
    let mut t = topic.split('/');
    for f in filter.split('/') {
        match (f, t.next()) {
            ("#", _) => return true,
            ("+", Some(_)) => {}
            (f, Some(level)) if f == level => {}
            _ => return false,
        }
    }
    t.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_match_as_mqtt_says() {
        let yes = [
            ("a/b", "a/b"),
            ("a/+", "a/b"),
            ("+/+", "a/b"),
            ("#", "a/b/c"),
            ("a/#", "a"),
            ("a/#", "a/b/c"),
            ("+", ""),
            ("a/+/c", "a//c"),
            ("$SYS/#", "$SYS/x"),
        ];
        for (f, t) in yes {
            assert!(matches(f, t), "{f} should match {t}");
        }
        let no = [
            ("a/b", "a/c"),
            ("a/+", "a/b/c"),
            ("a/+", "a"),
            ("+", "a/b"),
            ("#", "$SYS/x"),
            ("+/x", "$SYS/x"),
            ("a/b/c", "a/b"),
        ];
        for (f, t) in no {
            assert!(!matches(f, t), "{f} should not match {t}");
        }
    }

    fn who(s: &str) -> Arc<str> {
        Arc::from(s)
    }

    fn opts(qos: u8) -> SubOpts {
        SubOpts {
            qos,
            no_local: false,
            keep_retain: false,
            id: None,
        }
    }

    #[test]
    fn exact_and_wildcard_subscribers_are_both_found() {
        let mut t = Table::default();
        assert!(t.subscribe("room", &who("a"), opts(0)));
        assert!(!t.subscribe("room", &who("a"), opts(1)));
        assert!(t.subscribe("r/+", &who("x"), opts(0)));
        assert!(t.subscribe("#", &who("b"), opts(2)));
        let mut seen = Vec::new();
        let mut wild = Vec::new();
        t.matching(
            "room",
            |w, o| seen.push((w.to_string(), o.qos)),
            |w, o| wild.push((w.to_string(), o.qos)),
        );
        seen.extend(wild);
        seen.sort();
        assert_eq!(seen, [("a".to_string(), 1), ("b".to_string(), 2)]);
        assert!(t.unsubscribe("room", "a"));
        assert!(!t.unsubscribe("room", "a"));
        seen.clear();
        t.matching("room", |w, _| seen.push((w.to_string(), 0)), |_, _| {});
        assert_eq!(seen, []);
    }

    #[test]
    fn an_empty_payload_or_the_expiry_forgets_the_retained_message() {
        let mut t = Table::default();
        let now = Instant::now();
        let mut m = Message {
            topic: "a/b".into(),
            payload: "x".into(),
            qos: 1,
            retain: true,
            props: None,
            expires: None,
            id: 0,
        };
        t.retain(&m);
        assert_eq!(t.retained_for("a/b", now).len(), 1);
        assert_eq!(t.retained_for("a/#", now).len(), 1);
        assert_eq!(t.retained_for("b/#", now).len(), 0);
        m.payload = bytes::Bytes::new();
        t.retain(&m);
        assert!(t.retained_for("#", now).is_empty());
        m.payload = "y".into();
        m.expires = Some(now + std::time::Duration::from_secs(10));
        t.retain(&m);
        assert_eq!(t.retained_for("a/b", now).len(), 1);
        let later = now + std::time::Duration::from_secs(10);
        assert!(t.retained_for("a/b", later).is_empty());
        assert!(t.retained_for("#", later).is_empty());
        t.forget_expired(later);
        assert!(t.retained.is_empty());
    }
}
