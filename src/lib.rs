//! mqttchat: chat over MQTT as Unix pipe tools.
//!
//! `chat-pub` turns lines on stdin into messages on a topic; `chat-sub` turns topics into
//! lines on stdout, as text for people or JSON for programs; `chat-broker` is a small
//! broker for machines that have none. The binaries in `src/bin` are thin: they parse
//! arguments and hand a closure to [`tool::main`], which names the tool, sets up logging,
//! runs [`publish::run`], [`subscribe::run`] or `broker::run`, and turns the end into
//! an exit status. ARCHITECTURE.md is the longer map.
//!
//! The library is internal: it exists for the three binaries, the integration tests and
//! the benchmark examples of this package, and makes no semver promise to anyone else.
//!
//! Data flows one way:
//!
//! ```text
//! stdin → input → envelope → publish (state → outbox) → tx → session → wire → broker
//! broker → wire → session → subscribe (state → inbox → printer | view) → output → stdout
//! ```
//!
//! The protocol is decided by state machines that do no I/O — events in as method calls
//! with the time passed in, packets out into a `tx::Tx` buffer, lines for the user out as
//! values: `dial` (whom to connect to, how, when), `publish::state` with its outbox,
//! drain, join and streak, and `subscribe::state` with its inbox, view, printer and
//! takeover detector. Async drivers (`connect`, `publish`, `subscribe`) only wait and
//! move bytes; `session` owns the socket.
//!
//! Modules:
//! - [`cli`]: the clap definitions of the three tools (and so of their man pages).
//! - [`tool`]: what every `main` shares: the tool's name on every message, logging, the
//!   runtime, completions, the exit status; [`error`]: the error type and the tally of
//!   failed messages; [`signals`]: SIGINT and SIGTERM as values.
//! - `options`: the shared flags resolved into connection options (brokers, client id,
//!   login, password, TLS); `endpoint`: broker URLs; `resolve`: host names, a name that
//!   does not exist told from a resolver that is down; `transport`: TCP, TLS, WebSocket.
//! - `dial`: the connection policy; `connect`: its driver; `session`: one connection;
//!   `tx`: its sending side as state machines see it; [`coalesce`]: fewer wake-ups.
//! - `wire`: MQTT 3.1.1 and 5 packets behind one vocabulary (rumqttc's codecs); `topic`:
//!   topic and filter checks.
//! - [`envelope`]: the wire format — JSON envelope, ids, timestamps, raw fallback;
//!   [`dialect`]: the original MQTTChat's `NAME,TEXT` payloads (`--dialect mqttchat-py`);
//!   [`escape`]: terminal-safe escaping, for text and JSON; `json`: the JSON writer.
//! - [`input`]: chat-pub's stdin thread and line → message preparation.
//! - [`publish`]: chat-pub — its configuration, state, outbox and driver.
//! - [`subscribe`]: chat-sub — its configuration, state, inbox, presence view, printer,
//!   takeover detector and driver; `dedup`: its window of recent ids; `output`: stdout.
//! - [`seal`]: end-to-end encrypted rooms (format version 1: Argon2id, XChaCha20-Poly1305):
//!   chat-pub seals on its input thread, chat-sub opens in `subscribe::room`.
//! - [`render`]: chat-sub's output formats; `presence`: presence topics, payloads, roster.
//! - `broker` (feature `broker`, on by default): chat-broker's driver (sockets, tasks);
//!   `engine`: its broker logic, a state machine for MQTT 3.1.1 and 5 clients alike.

#[cfg(feature = "broker")]
pub mod broker;
pub mod cli;
pub mod coalesce;
mod connect;
mod dedup;
pub mod defaults;
mod dial;
pub mod dialect;
mod endpoint;
#[cfg(feature = "broker")]
pub mod engine;
pub mod envelope;
pub mod error;
pub mod escape;
pub mod input;
mod json;
mod options;
mod output;
mod presence;
pub mod publish;
pub mod render;
mod resolve;
pub mod seal;
mod session;
pub mod signals;
pub mod subscribe;
pub mod tool;
mod topic;
mod transport;
mod tx;
mod wire;
