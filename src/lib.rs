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
//! - [`topic`]: topic and filter checks.
//! - [`envelope`]: the wire format — JSON envelope, ids, timestamps, raw fallback.
//! - [`wire`]: MQTT 3.1.1 and 5 packets behind one vocabulary (rumqttc's codecs).
//! - [`transport`]: TCP, TLS (rustls, ring) and WebSocket connections.
//! - [`session`]: one connection — connect with retries, keep-alive, full-duplex I/O;
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
pub mod dedup;
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

use crate::cli::Common;
use crate::endpoint::Endpoint;
use crate::error::Error;
use crate::session::ConnectOptions;
use crate::transport::{Dialer, TlsOptions};
use crate::wire::{ConnectSpec, Login, Secret};

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

/// Turns the shared options into connection options; every problem is a usage error.
pub fn connect_options(
    common: &Common,
    tool: &str,
    max_in: usize,
) -> Result<ConnectOptions, Error> {
    let endpoint = Endpoint::parse(&common.broker)?;
    let client_id = match &common.client_id {
        Some(id) if id.is_empty() => return Err(Error::Usage("the client id is empty".into())),
        Some(id) if id.len() > 65_535 => {
            return Err(Error::Usage(
                "the client id is longer than 65535 bytes".into(),
            ));
        }
        Some(id) => id.clone(),
        None => format!("{tool}-{}", &envelope::IdSource::default().next_id()[..12]),
    };
    let tls = TlsOptions {
        cafile: common.cafile.clone(),
        cert: common.cert.clone(),
        key: common.key.clone(),
        insecure: common.insecure,
    };
    let login = login(common)?;
    Ok(ConnectOptions {
        dialer: Dialer::new(endpoint.clone(), &tls)?,
        endpoint,
        version: common.mqtt_version,
        spec: ConnectSpec {
            client_id,
            keepalive: common.keepalive,
            clean_start: true,
            session_expiry: None,
            max_packet_in: u32::try_from(max_in).unwrap_or(u32::MAX),
            login,
            will: None,
        },
        max_in,
        attempt_timeout: common
            .connect_timeout
            .max(std::time::Duration::from_millis(100)),
        reads: coalesce::Reads::Eager,
    })
}

/// User name (`-u`/`CHAT_USERNAME`) and password (`--password-file`, else
/// `CHAT_PASSWORD`). A password without a user name is a usage error.
fn login(common: &Common) -> Result<Option<Login>, Error> {
    let password = match &common.password_file {
        Some(path) => Some(read_password(path)?),
        None => std::env::var("CHAT_PASSWORD").ok(),
    };
    match (&common.username, password) {
        (None, None) => Ok(None),
        (None, Some(_)) => Err(Error::Usage(
            "a password (--password-file or CHAT_PASSWORD) needs a user name (-u or \
             CHAT_USERNAME)"
                .into(),
        )),
        (Some(user), password) => Ok(Some(Login {
            username: user.clone(),
            password: password.map(Secret::new),
        })),
    }
}

/// The first line of a password file, without its line end. Errors name the file, never
/// its content.
fn read_password(path: &std::path::Path) -> Result<String, Error> {
    let bad = |why: String| {
        Error::Usage(format!(
            "cannot read --password-file {}: {why}",
            path.display()
        ))
    };
    let bytes = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let first = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
    let first = first.strip_suffix(b"\r").unwrap_or(first);
    String::from_utf8(first.to_vec()).map_err(|_| bad("the password is not UTF-8".into()))
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
