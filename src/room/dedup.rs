//! chat-sub's memory of what it already printed, so that a message delivered again is
//! printed once.
//!
//! Delivery at QoS 1 and 2 is at least once: after a reconnect chat-pub sends what was not
//! acknowledged, and a broker sends a session's unacknowledged messages again. Envelopes
//! carry a unique `id`; a retained message (sent again after every resubscription) is
//! known by its topic and payload. The memory is a window of the most recent keys, so it
//! stays bounded however long chat-sub runs. Keys are hashed with a per-process random
//! key, so a publisher cannot craft ids that collide with other senders' messages.

use std::collections::hash_map::RandomState;
use std::collections::{HashSet, VecDeque};
use std::hash::{BuildHasher, Hash, Hasher};

/// How many recent messages are remembered.
pub const RECENT_IDS: usize = 10_000;

/// A bounded window of recently printed messages.
pub struct Recent {
    seen: HashSet<u64>,
    order: VecDeque<u64>,
    hasher: RandomState,
    cap: usize,
}

impl Default for Recent {
    fn default() -> Self {
        Recent::with_capacity(RECENT_IDS)
    }
}

/// What identifies a message for de-duplication.
#[derive(Debug, Clone, Copy)]
pub enum Key<'a> {
    /// An envelope's `id`.
    Id(&'a str),
    /// A signed envelope's `id`, with the fingerprint of its signer: another member's
    /// record that copies the id is not a repeat of it (it is shown, and marked).
    SignedId(&'a str, &'a [u8; 32]),
    /// A retained message without an id: its topic and payload.
    Retained { topic: &'a [u8], payload: &'a [u8] },
    /// An encrypted message: its nonce as received (each message has its own).
    Sealed(&'a [u8]),
}

impl Recent {
    pub fn with_capacity(cap: usize) -> Recent {
        Recent {
            seen: HashSet::with_capacity(cap.min(RECENT_IDS)),
            order: VecDeque::with_capacity(cap.min(RECENT_IDS)),
            hasher: RandomState::new(),
            cap: cap.max(1),
        }
    }

    /// Records `key`; false if it was already in the window (a repeat: do not print).
    pub fn first_time(&mut self, key: Key) -> bool {
        let mut h = self.hasher.build_hasher();
        match key {
            Key::Id(id) => (0u8, id).hash(&mut h),
            Key::Retained { topic, payload } => (1u8, topic, payload).hash(&mut h),
            Key::Sealed(payload) => (2u8, payload).hash(&mut h),
            Key::SignedId(id, signer) => (3u8, id, signer).hash(&mut h),
        }
        let digest = h.finish();
        if !self.seen.insert(digest) {
            return false;
        }
        self.order.push_back(digest);
        if self.order.len() > self.cap
            && let Some(old) = self.order.pop_front()
        {
            self.seen.remove(&old);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_are_caught_within_the_window_only() {
        let mut r = Recent::with_capacity(3);
        assert!(r.first_time(Key::Id("a")));
        assert!(!r.first_time(Key::Id("a")));
        for id in ["b", "c", "d"] {
            assert!(r.first_time(Key::Id(id)));
        }
        // "a" fell out of the window of 3.
        assert!(r.first_time(Key::Id("a")));
        assert!(!r.first_time(Key::Id("d")));
    }

    #[test]
    fn retained_messages_are_known_by_topic_and_payload() {
        let mut r = Recent::default();
        let k = |t: &'static [u8], p: &'static [u8]| Key::Retained {
            topic: t,
            payload: p,
        };
        assert!(r.first_time(k(b"t", b"x")));
        assert!(!r.first_time(k(b"t", b"x")));
        assert!(r.first_time(k(b"t", b"y")));
        assert!(r.first_time(k(b"u", b"x")));
        // An id never collides with a retained key of the same bytes.
        assert!(r.first_time(Key::Id("x")));
    }
}
