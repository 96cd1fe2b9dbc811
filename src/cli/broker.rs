//! chat-broker's command line.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args, Parser, Subcommand};

use super::parse::{parse_budget, parse_period};
use super::{About, OTHER, TLS, help};

/// The heading of who may connect and what they may do.
const ACCESS: &str = "Access control";

/// A small MQTT broker for a machine or a LAN that has none.
///
/// Serves MQTT 3.1.1 and 5 clients on the same address, with QoS 0–2, retained messages,
/// persistent sessions and shared subscriptions, kept in memory, or on disk too with
/// --data-dir. It is not a production broker: for that,
/// and for more than one machine, use mosquitto or a clustered broker (EMQX, HiveMQ,
/// VerneMQ) — chat-pub and chat-sub speak plain MQTT, so only --broker changes.
#[derive(Parser, Debug, Clone)]
#[command(name = "chat-broker", version, disable_version_flag = true, disable_help_flag = true,
          after_help = help::broker_examples(), args_conflicts_with_subcommands = true,
          subcommand_value_name = "COMMAND", subcommand_help_heading = "Commands")]
pub struct BrokerArgs {
    #[command(subcommand)]
    pub command: Option<BrokerCommand>,

    #[arg(short = 'l', long = "listen", value_name = "ADDR",
          help = help::short(help::listen()), long_help = help::listen())]
    pub listen: Vec<String>,

    /// Also serve MQTT over TLS on ADDR (repeatable; needs --certfile and --keyfile)
    ///
    /// MQTT's port for TLS is 8883. The same engine serves every listener: retained
    /// messages, sessions and the ACL are the same on each.
    #[arg(long, value_name = "ADDR", help_heading = TLS)]
    pub tls_listen: Vec<String>,

    /// Also serve MQTT over WebSocket on ADDR (repeatable): subprotocol mqtt, any path
    ///
    /// For browsers and for chat-pub -b ws://HOST:PORT. With --certfile and --keyfile
    /// it is WebSocket over TLS (wss://).
    #[arg(long, value_name = "ADDR")]
    pub ws_listen: Vec<String>,

    /// Let web pages from ORIGIN use --ws-listen without logging in (repeatable; * for any)
    ///
    /// A browser lets any page it shows open a WebSocket to any address, this machine's
    /// included, and says which page in the Origin header. Where clients may connect
    /// without a password (no --password-file, or --allow-anonymous), a WebSocket
    /// handshake with an Origin not given here is refused (403), so that a page from
    /// anywhere cannot read and write the rooms of a broker on loopback or a LAN.
    /// Clients that send no Origin (chat-pub, chat-sub, mosquitto's) are not concerned.
    /// ORIGIN is as browsers send it: scheme, host and port, e.g. http://localhost:8080.
    #[arg(long, value_name = "ORIGIN")]
    pub ws_origin: Vec<String>,

    /// Let clients in only with a username and password from FILE
    ///
    /// FILE is in mosquitto_passwd's format (USER:HASH lines, $7$ PBKDF2-SHA512 or $6$
    /// salted SHA-512): a file made by mosquitto_passwd works as it is, and `chat-broker
    /// passwd FILE USER` adds a user without mosquitto. A wrong username or password gets
    /// CONNACK "bad username or password" (MQTT 5: 0x86; 3.1.1: 4), a client without a
    /// username "not authorized" (0x87; 5) unless --allow-anonymous. Failed logins slow
    /// down the next ones from the same address. SIGHUP reads FILE again.
    #[arg(long, value_name = "FILE", help_heading = ACCESS)]
    pub password_file: Option<PathBuf>,

    /// Let clients in without a username (on an address that is not loopback, or with a
    /// --password-file)
    ///
    /// Then anyone who reaches the port may publish and subscribe (within --acl-file),
    /// which chat-broker says at start. Without --password-file, a username a client
    /// sends is believed, not checked.
    #[arg(long, help_heading = ACCESS)]
    pub allow_anonymous: bool,

    /// Let each client read and write only what FILE grants it
    ///
    /// FILE is in mosquitto's acl_file format: `user NAME` starts a user's rules, `topic
    /// [read|write|readwrite|deny] FILTER` grants (or denies) a filter, rules before the
    /// first `user` line are for anonymous clients, and `pattern [ACCESS] FILTER` applies
    /// to every client with %u (its username) and %c (its client id) put in. What FILE
    /// does not grant is denied. A refused PUBLISH gets reason 0x87 "not authorized" in
    /// its PUBACK or PUBREC under MQTT 5 (under 3.1.1 it is acknowledged and dropped, as
    /// mosquitto does), a SUBSCRIBE that can read nothing gets 0x87 (3.1.1: 0x80) in its
    /// SUBACK; a subscription that may read part of what it matches gets only that part.
    /// SIGHUP reads FILE again. See ACCESS CONTROL below.
    #[arg(long, value_name = "FILE", help_heading = ACCESS)]
    pub acl_file: Option<PathBuf>,

    /// The certificate chain for --tls-listen and wss (PEM)
    #[arg(long, value_name = "FILE", help_heading = TLS)]
    pub certfile: Option<PathBuf>,

    /// The private key of --certfile (PEM: PKCS#8, PKCS#1 or SEC1)
    #[arg(long, value_name = "FILE", help_heading = TLS)]
    pub keyfile: Option<PathBuf>,

    /// Trust client certificates signed by the CAs in FILE (PEM)
    ///
    /// With it, a client that presents a certificate must present one these CAs signed;
    /// --require-certificate makes presenting one a condition.
    #[arg(long, value_name = "FILE", help_heading = TLS)]
    pub cafile: Option<PathBuf>,

    /// Refuse TLS clients without a certificate that --cafile's CAs signed (mutual TLS)
    #[arg(long, requires = "cafile", help_heading = TLS)]
    pub require_certificate: bool,

    /// Take a TLS client's username from its certificate (the subject's common name)
    ///
    /// Its ACL rules are then that name's, and no password is asked of it, as with
    /// mosquitto's use_identity_as_username. Needs --require-certificate.
    #[arg(long, requires = "require_certificate", help_heading = TLS)]
    pub use_identity_as_username: bool,

    /// Keep retained messages and persistent sessions in DIR, across restarts and crashes
    ///
    /// What is kept: retained messages; sessions that outlive their connection, with their
    /// subscriptions, the QoS 1 and 2 messages queued or in flight for them and their QoS 2
    /// state; wills waiting out their delay; the expiry of each. A QoS 1 or 2 message is
    /// acknowledged only once it is on disk (one sync covers every message that came
    /// meanwhile), so the publisher's acknowledgement survives kill -9 and power loss.
    /// DIR is created if missing; one broker at a time may use it. A store that cannot be
    /// read stops the start (exit 1), never an empty start.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<std::path::PathBuf>,

    /// Most clients connected at once [default: the open-file limit, less 64]
    ///
    /// A client beyond it is refused in its CONNACK: 0x97 "quota exceeded" under MQTT 5,
    /// return code 3 "server unavailable" under 3.1.1 (chat-pub and chat-sub try again
    /// until --connect-timeout). A client that takes over its own session does not count
    /// twice.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_connections: Option<u64>,

    /// Most QoS 1 and 2 messages kept for one client that is away or behind
    ///
    /// Beyond it, new messages for that client are dropped (the oldest stay, so it reads
    /// an unbroken stretch), counted, and logged when it reconnects or leaves; the
    /// publisher is not told, its message reached every other subscriber.
    #[arg(long, value_name = "N", default_value_t = 1_000_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_queued_messages: u64,

    /// Most bytes kept for all clients together [default: a quarter of the memory]
    ///
    /// Counted over every session's queue: 64 bytes for each queued message, and its topic
    /// and payload once, however many sessions queue it (it is held once). Beyond it, QoS
    /// 0 messages are dropped and counted, and QoS 1 and 2 messages are refused, never
    /// taken and lost: with reason 0x97 "quota exceeded" in the PUBACK or PUBREC under
    /// MQTT 5; under 3.1.1, which has no such answer, by closing the publisher's connection
    /// (it sends the message again when it is back). SIZE is bytes, or with K, M or G.
    #[arg(long, value_name = "SIZE", value_parser = parse_budget)]
    pub max_queued_bytes: Option<u64>,

    /// Forget a session that would never end once its client was away this long
    ///
    /// MQTT 3.1.1 clients without clean session, and MQTT 5 clients with a session expiry
    /// of 0xFFFFFFFF, keep their session for ever by default, as with mosquitto. TIME is a
    /// number and a unit: s, m, h, d or w, e.g. 14d (as mosquitto's
    /// persistent_client_expiration).
    #[arg(long, value_name = "TIME", value_parser = parse_period)]
    pub persistent_client_expiration: Option<Duration>,

    /// Log connections on stderr (repeat for the engine's own logs; RUST_LOG overrides)
    #[arg(short, long, action = ArgAction::Count, help_heading = OTHER)]
    pub verbose: u8,

    #[command(flatten)]
    pub about: About,
}

/// chat-broker's commands besides serving.
#[derive(Subcommand, Debug, Clone)]
pub enum BrokerCommand {
    /// Add a user to a password file, or change their password, or delete them
    ///
    /// The password is read from the terminal, twice and without echo, or else as one
    /// line from stdin (for scripts: printf '%s\n' "$PASS" | chat-broker passwd FILE USER).
    /// FILE is created if missing, readable by its owner only; other lines stay as they
    /// are. The hash is PBKDF2-SHA512 with a random salt and 101 iterations, in
    /// mosquitto_passwd's format ($7$), so mosquitto reads the file too. A running broker
    /// reads it again on SIGHUP.
    Passwd(PasswdArgs),
}

/// `chat-broker passwd`'s arguments.
#[derive(Args, Debug, Clone)]
pub struct PasswdArgs {
    /// The password file
    pub file: PathBuf,
    /// The user
    pub user: String,
    /// Delete USER from FILE instead
    #[arg(short = 'D', long)]
    pub delete: bool,
}
