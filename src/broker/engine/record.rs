//! What the engine keeps across a restart, as a list of changes: the engine queues a
//! [`Record`] (`Action::Store`) for each change to a retained message or to a session
//! that outlives its connection, before any packet that depends on it; the store
//! (`broker::store`) writes them, and a restart replays them (`Engine::restore`).
//! A compaction writes the engine's whole durable state as records again
//! (`Engine::snapshot`), so the same replay reads both.

use std::sync::Arc;
use std::time::Instant;

use super::codec::{Message, Version};
use super::table::SubOpts;

/// A change to what the broker keeps. Messages are written once ([`Record::Message`]) and
/// named by their id after; a session's deliveries are numbered by `seq`, in the order
/// the session got them.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// A message that a session's queue, the retained messages or a will holds.
    Message {
        id: u64,
        msg: Arc<Message>,
    },
    /// The retained message of a topic (the message `id`), or none (`id` None).
    Retain {
        topic: String,
        id: Option<u64>,
    },
    /// A session that outlives its connection began, or was taken up again by a client
    /// (its protocol version and expiry, in seconds, as the client set them).
    Session {
        client: Arc<str>,
        version: Version,
        expiry: u32,
    },
    /// Who the session's client logged in as (its ACL rules judge what the session reads
    /// while its client is away); None: anonymous.
    User {
        client: Arc<str>,
        user: Option<Arc<str>>,
    },
    /// The session's client went away: the session ends at `expires` (None: never).
    Away {
        client: Arc<str>,
        expires: Option<Instant>,
    },
    /// The session ended (with all it held).
    End {
        client: Arc<str>,
    },
    Subscribe {
        client: Arc<str>,
        filter: String,
        opts: SubOpts,
    },
    Unsubscribe {
        client: Arc<str>,
        filter: String,
    },
    /// A QoS 1 or 2 message for the session, queued or sent.
    Queued {
        client: Arc<str>,
        seq: u64,
        msg: u64,
        qos: u8,
        retain: bool,
        sub_ids: Vec<usize>,
        share: Option<Arc<str>>,
    },
    /// Delivery `seq` was sent with packet id `pkid` (a restart sends it again as a
    /// duplicate with the same id).
    Sent {
        client: Arc<str>,
        seq: u64,
        pkid: u16,
    },
    /// QoS 2: the client's PUBREC for delivery `seq` came; PUBREL is what is left.
    Released {
        client: Arc<str>,
        seq: u64,
    },
    /// Delivery `seq` is over: acknowledged, expired, or taken by another session.
    Done {
        client: Arc<str>,
        seq: u64,
    },
    /// QoS 2 from the client: packet id `pkid` received (`held` true) or released (false).
    Qos2In {
        client: Arc<str>,
        pkid: u16,
        held: bool,
    },
    /// A will waiting for its delay: message `msg`, sent at `at`.
    Will {
        client: Arc<str>,
        at: Instant,
        msg: u64,
    },
    /// The will waiting for the client is gone (sent, or cancelled by a reconnect).
    WillDone {
        client: Arc<str>,
    },
    /// The end of a snapshot: what follows is the log written after it.
    SnapshotEnd,
}
