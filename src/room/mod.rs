//! What a room's payloads are, without sockets or terminals: the JSON envelope, the
//! original MQTTChat's dialect, presence records, the encrypted-room format and the
//! window of recent ids. Nothing here imports the connection layer (`mqtt`).
//!
//! - [`envelope`]: the wire format: JSON envelope, ids, timestamps, raw fallback;
//!   `json`: the one JSON writer.
//! - [`dialect`]: the original MQTTChat's `NAME,TEXT` payloads (`--dialect mqttchat-py`).
//! - `presence`: presence topics, the join and leave records, the roster.
//! - [`seal`]: end-to-end encrypted rooms (format version 1: Argon2id,
//!   XChaCha20-Poly1305).
//! - `dedup`: the window of recently printed message ids.

pub(crate) mod dedup;
pub mod dialect;
pub mod envelope;
pub(crate) mod json;
pub(crate) mod presence;
pub mod seal;
pub mod sign;
