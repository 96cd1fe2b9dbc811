//! The connection layer: reaching a broker and keeping the link, for chat-pub and
//! chat-sub. Nothing here knows what a room's payloads are (`room`) or what the tools
//! print.
//!
//! - `wire`: MQTT 3.1.1 and 5 packets behind one vocabulary (rumqttc's codecs); `topic`:
//!   topic and filter checks.
//! - `endpoint`: broker URLs; `resolve`: host names, a name that does not exist told from
//!   a resolver that is down; `transport`: TCP, TLS, WebSocket.
//! - `dial`: **the connection policy, a state machine** (which node, which version, the
//!   will, pauses); `connect`: its driver and the connection options it needs;
//!   `connection`: the run's connection as both tools' drivers use it (next event,
//!   reconnect), and what they say when it is lost or made again.
//! - `link`: one connection (CONNECT/CONNACK, keep-alive, buffered I/O); `tx`: its
//!   sending side as state machines see it; [`coalesce`]: fewer wake-ups under load.

pub mod coalesce;
pub(crate) mod connect;
pub(crate) mod connection;
pub(crate) mod dial;
pub(crate) mod endpoint;
pub(crate) mod link;
pub(crate) mod proxy;
pub(crate) mod resolve;
pub(crate) mod topic;
pub(crate) mod transport;
pub(crate) mod tx;
pub(crate) mod wire;
