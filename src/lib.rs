//! mqttchat: chat over MQTT as Unix pipe tools.
//!
//! `chat-pub` turns lines on stdin into messages on a topic; `chat-sub` turns topics into
//! lines on stdout, as text for people or JSON for programs; `chat-broker` is a small
//! broker for machines that have none. The binaries in `src/bin` are thin: they parse
//! arguments and hand a closure to [`tool::main`], which names the tool, sets up logging,
//! runs [`tools::publish::run`], [`tools::subscribe::run`] or `broker::run`, and turns the
//! end into an exit status. ARCHITECTURE.md is the longer map.
//!
//! The library is internal: it exists for the three binaries, the integration tests and
//! the benchmark examples of this package, and makes no semver promise to anyone else.
//!
//! The folders are the layers, and imports only go down:
//!
//! ```text
//! bin/                 the three binaries
//! tools/   broker/     chat-pub and chat-sub | chat-broker (its engine and driver)
//! cli/                 the command lines of all three (clap), their help
//! mqtt/    room/       reaching a broker and keeping the link | what a room's payloads are
//! error, escape, defaults, tool, signals      leaf modules every layer may use
//! ```
//!
//! `mqtt` and `room` do not import each other. Protocol decisions are state machines that
//! do no I/O — events in as method calls with the time passed in, packets out into a
//! `mqtt::tx::Tx` buffer, lines for the user out as values — and async drivers only wait
//! and move bytes.

#[cfg(feature = "broker")]
pub mod broker;
pub mod cli;
mod defaults;
pub mod error;
pub mod escape;
pub mod mqtt;
pub mod room;
mod signals;
pub mod tool;
pub mod tools;
