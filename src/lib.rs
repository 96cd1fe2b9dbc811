//! mqttchat: chat over MQTT as Unix pipe tools.
//!
//! `chat-pub` turns lines on stdin into messages on a topic; `chat-sub` turns topics into
//! lines on stdout, as text for people or JSON for programs. The binaries in `src/bin`
//! are thin: they parse arguments, set up logging and call [`publish::run`] or
//! [`subscribe::run`]. Data flows one way:
//!
//! ```text
//! stdin → input → envelope → wire/session → broker → session/wire → envelope → render → stdout
//! ```
//!
//! Modules:
//! - [`cli`]: the clap definitions of both tools (and so of their man pages).
//! - [`endpoint`]: broker URLs.
//! - [`connect`]: shared options → connection options (brokers, client id, login), and
//!   the connector that makes attempts until one is accepted; [`dial`]: its policy as a
//!   state machine without I/O — several brokers in turn, `-V auto`, backoff.
//! - [`topic`]: topic and filter checks.
//! - [`envelope`]: the wire format — JSON envelope, ids, timestamps, raw fallback.
//! - [`wire`]: MQTT 3.1.1 and 5 packets behind one vocabulary (rumqttc's codecs).
//! - [`transport`]: TCP, TLS (rustls, ring) and WebSocket connections.
//! - [`session`]: one connection — CONNECT/CONNACK, keep-alive, full-duplex I/O;
//!   [`coalesce`]: fewer wake-ups under load (low-water marks on the socket).
//! - [`input`]: chat-pub's stdin reader and line → message preparation.
//! - [`publish`]: chat-pub's loop — reconnects, signals, drain; [`outbox`]: its record of
//!   unacknowledged messages.
//! - [`render`]: chat-sub's output formats and terminal-safe escaping.
//! - [`subscribe`]: chat-sub's loop; [`output`]: its stdout.
//! - [`presence`]: who is online — presence topics, joins, leaves, the roster.
//! - [`error`]: the error type and exit statuses.
//! - [`signals`]: SIGINT and SIGTERM for the tools' loops.
//! - [`dedup`]: chat-sub's window of recent messages, so a repeat is printed once.
//! - [`procnet`]: which process holds a listening socket (for ports picked by bind-and-close).
//! - `broker` (feature `broker`, on by default): chat-broker, rumqttd behind a front that
//!   serves MQTT 3.1.1 and 5 on one address.

#[cfg(feature = "broker")]
pub mod broker;
pub mod cli;
pub mod coalesce;
pub mod connect;
pub mod dedup;
pub mod dial;
pub mod endpoint;
pub mod envelope;
pub mod error;
pub mod input;
pub mod options;
pub mod output;
pub mod presence;
pub mod procnet;
pub mod publish;
pub mod render;
pub mod session;
pub mod signals;
pub mod subscribe;
pub mod tool;
pub mod topic;
pub mod transport;
pub mod tx;
pub mod wire;
