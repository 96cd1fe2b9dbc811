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
pub mod outbox;
pub mod output;
pub mod presence;
pub mod procnet;
pub mod publish;
pub mod render;
pub mod session;
pub mod signals;
pub mod subscribe;
pub mod topic;
pub mod transport;
pub mod wire;

use std::io::Write;

use crate::error::Error;

/// Sets up logging on stderr as `tool: message`: warnings by default, `-v` info, `-vv`
/// debug (and the broker engine's info), `-vvv` trace; `RUST_LOG` overrides.
pub fn init_logging(tool: &'static str, verbose: u8) {
    let filter = match verbose {
        0 => "mqttchat=warn",
        1 => "mqttchat=info",
        2 => "mqttchat=debug,rumqttd=info",
        _ => "mqttchat=trace,rumqttd=debug",
    };
    let env = env_logger::Env::default().default_filter_or(filter);
    let logger = env_logger::Builder::from_env(env)
        .format(move |f, record| match record.level() {
            log::Level::Error | log::Level::Warn | log::Level::Info => {
                writeln!(f, "{tool}: {}", record.args())
            }
            level => writeln!(
                f,
                "{tool}: {}: {}",
                level.as_str().to_lowercase(),
                record.args()
            ),
        })
        .build();
    let max = logger.filter();
    if log::set_boxed_logger(Box::new(NoPayloads(logger))).is_ok() {
        log::set_max_level(max);
    }
}

/// The logger, minus the debug and trace records of the WebSocket library: it logs every
/// frame it sends with its bytes, and the first one is CONNECT, password included. No
/// `RUST_LOG` setting may put a password on stderr.
struct NoPayloads(env_logger::Logger);

impl NoPayloads {
    fn allowed(m: &log::Metadata) -> bool {
        let frames = ["tungstenite", "async_tungstenite", "ws_stream_tungstenite"];
        m.level() <= log::Level::Info || !frames.iter().any(|t| m.target().starts_with(t))
    }
}

impl log::Log for NoPayloads {
    fn enabled(&self, m: &log::Metadata) -> bool {
        NoPayloads::allowed(m) && self.0.enabled(m)
    }

    fn log(&self, record: &log::Record) {
        if NoPayloads::allowed(record.metadata()) {
            self.0.log(record);
        }
    }

    fn flush(&self) {
        self.0.flush();
    }
}

/// The user's nick: `--nick` (or `CHAT_NICK`, which clap folds into it), else `USER`;
/// empty values count as unset.
pub fn own_nick(flag: Option<&str>) -> Option<String> {
    let set = |n: &String| !n.is_empty();
    flag.map(str::to_owned)
        .filter(set)
        .or_else(|| std::env::var("USER").ok().filter(set))
}

/// Prints a shell completion script for the tool described by `C` on stdout.
pub fn print_completions<C: clap::CommandFactory>(shell: clap_complete::Shell, name: &str) {
    let mut cmd = C::command();
    clap_complete::generate(shell, &mut cmd, name, &mut std::io::stdout());
}

/// The runtime both tools run on: one thread (the tools' work is I/O, and the second core
/// is better left to the broker and the other tool of the pipe).
pub fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| Error::Failed(format!("cannot start the I/O runtime: {e}")))
}
