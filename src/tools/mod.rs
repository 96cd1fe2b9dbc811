//! chat-pub and chat-sub: their options resolved, their state machines and drivers, and
//! what they print.
//!
//! - `options`: the shared flags resolved into connection options (brokers, client id,
//!   login, password, TLS) and the room secret.
//! - [`publish`]: chat-pub — its input thread (`publish::input`), configuration, state,
//!   outbox and driver.
//! - [`subscribe`]: chat-sub — its configuration, state, inbox, presence view, printer,
//!   takeover detector and driver.
//! - [`render`]: chat-sub's output formats; `output`: stdout, written once per batch.
//! - `profile`: the config file and its profiles, applied to the options.
//! - `identity`: a member's signing identity on disk (made on first use).

pub(crate) mod identity;
pub(crate) mod options;
pub(crate) mod output;
pub(crate) mod profile;
pub mod publish;
pub mod render;
pub mod subscribe;
