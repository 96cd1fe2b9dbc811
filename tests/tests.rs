//! The integration tests: one test binary with a module per concern (as ripgrep does),
//! so that `cargo test` links one executable, not one per file. Run a part of them by
//! module path, e.g. `cargo test --test tests tls::` or `cargo test --test tests
//! cluster:: -- --nocapture`.
//!
//! Every test runs as a thread of this one process, next to tests of the other modules.
//! Nothing here may change process-wide state: no `std::env::set_var`, no change of
//! directory, umask or signal dispositions (a child gets its environment through its
//! `Command`); ports are picked free, never fixed; and any file descriptor a test opens
//! must be close-on-exec (std's are; raw libc calls need the flag), or a child another
//! test spawns meanwhile inherits it.

#[macro_use]
mod common;

mod architecture;
mod authorization;
mod broker;
mod broker_access;
mod cli;
mod cluster;
mod comforts;
mod credentials;
mod delivery;
mod dialect;
mod durable;
mod encrypted;
mod failover;
mod foreign;
mod hostile;
mod identities;
mod interop;
mod kernel;
mod lifecycle;
mod man;
mod message_properties;
mod output;
mod presence;
mod profiles;
mod properties;
mod proxies;
mod pubsub;
mod readme;
mod reconnect;
mod sealing;
mod shared_subscriptions;
mod tls;
mod websocket;
