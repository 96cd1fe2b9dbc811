//! The command lines of chat-pub and chat-sub (clap derive).
//!
//! [`Common`] holds the options both tools share and is flattened into [`PubArgs`] and
//! [`SubArgs`]. The first paragraph of a `///` comment is the short help (`-h`); later
//! paragraphs appear in `--help` and in the man pages, which are generated from these
//! definitions (see tests/man.rs). A help text that states the value of a constant is
//! built from the constant instead (in the `help` submodule), so that the two cannot
//! drift apart.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args, Parser};

use crate::mqtt::dial::VersionChoice;

mod broker;
mod help;
mod parse;

pub use broker::{BrokerArgs, BrokerCommand, PasswdArgs};

pub use parse::{ColorWhen, DialectChoice};
pub(crate) use parse::{parse_secs, parse_version};
use parse::{parse_size, parse_user_property};

/// Options shared by chat-pub and chat-sub.
#[derive(Args, Debug, Clone)]
pub struct Common {
    /// Broker URL: mqtt://HOST[:PORT], mqtts://, ws://, wss://, or HOST[:PORT]
    ///
    /// mqtt:// is plain TCP (port 1883), mqtts:// is TLS (port 8883), ws:// is WebSocket
    /// (port 80, path /mqtt unless the URL gives one) and wss:// is WebSocket over TLS
    /// (port 443). A bare HOST or HOST:PORT means mqtt://. IPv6 addresses go in brackets:
    /// mqtt://[::1]:1883. Credentials in the URL are refused.
    ///
    /// Several brokers (the nodes of one cluster): give -b more than once, or several URLs
    /// separated by commas or spaces (also in CHAT_BROKER). The first that answers is used;
    /// when its connection is lost, the next one in the list is tried, round robin, and
    /// what was not acknowledged is sent again there. Schemes may be mixed; the TLS
    /// options apply to every mqtts:// and wss:// URL.
    #[arg(
        short = 'b',
        long,
        env = "CHAT_BROKER",
        value_name = "URL",
        default_value = "mqtt://localhost:1883",
        hide_env_values = true,
        action = ArgAction::Append,
        help_heading = CONNECTION
    )]
    pub broker: Vec<String>,

    /// Reach the broker through a proxy: socks5://, socks5h:// or http:// (CONNECT)
    ///
    /// URL is SCHEME://[USER:PASSWORD@]HOST[:PORT]. socks5:// resolves the broker's name
    /// here; socks5h:// lets the proxy resolve it (what ssh -D and Tor want); http:// asks
    /// an HTTP proxy for a CONNECT tunnel, with basic authentication when a user is given.
    /// The default port is 1080 for SOCKS and 8080 for HTTP; %-escapes in the user name
    /// and password are decoded. Every broker of -b, and every transport, goes through
    /// it; TLS runs end to end with the broker, checked against the broker's name. A
    /// password given here can be read by every user of the machine: prefer CHAT_PROXY or
    /// the proxy key of the config file. An empty URL means no proxy.
    #[arg(long, value_name = "URL", env = "CHAT_PROXY", hide_env_values = true,
          help_heading = CONNECTION, value_parser = |s: &str| Ok::<_, String>(ProxyUrl(s.into())))]
    pub proxy: Option<ProxyUrl>,

    /// Where `proxy` came from, as messages name it (`--proxy`, `CHAT_PROXY`, the key).
    #[arg(skip)]
    pub proxy_from: String,

    /// User name to log in with
    #[arg(
        short = 'u',
        long,
        env = "CHAT_USERNAME",
        hide_env_values = true,
        value_name = "USER",
        help_heading = CONNECTION
    )]
    pub username: Option<String>,

    /// Read the password from the first line of PATH
    ///
    /// The password can also come from the environment variable CHAT_PASSWORD; it is
    /// never a plain flag, because the command line is visible to every user of the
    /// machine. It is never logged or shown in a message. A password needs -u.
    #[arg(long, value_name = "PATH", help_heading = CONNECTION)]
    pub password_file: Option<PathBuf>,

    /// Encrypt the room end to end with the secret on the first line of PATH
    ///
    /// Members of a room share a secret (at least 16 bytes; a random key such as the
    /// output of `openssl rand -base64 32` is best). Everything they publish, the JSON
    /// envelope and the presence announcements, is encrypted and authenticated with a key
    /// derived from the secret and the topic; the broker and everyone without the secret
    /// see only topics, client ids, sizes and timing. The secret can also come from the
    /// environment variable CHAT_ROOM_SECRET (the secret itself); it is never a plain flag,
    /// never logged. A file that group or others can read gets a warning. The format is
    /// in chat-sub(1), ENCRYPTION.
    #[arg(long, value_name = "PATH", help_heading = CHAT)]
    pub room_secret_file: Option<PathBuf>,

    /// Sign as the identity in PATH [default: $XDG_DATA_HOME/mqttchat/identity]
    ///
    /// In an encrypted room every message and presence record is signed with your
    /// identity, an Ed25519 key, so that members can tell who said it (see IDENTITIES in
    /// chat-sub(1)). The default identity is made on first use, mode 600; a file given
    /// here must exist: an Ed25519 private key in PEM, as `openssl genpkey -algorithm
    /// ed25519` writes it.
    #[arg(long, value_name = "PATH", help_heading = CHAT)]
    pub identity_file: Option<PathBuf>,

    /// Print the fingerprint of your identity and exit (making the identity if needed)
    ///
    /// Members compare fingerprints out of band (in person, on a call) and accept each
    /// other's with chat-sub --trust.
    #[arg(long, help_heading = CHAT)]
    pub fingerprint: bool,

    /// CA certificates (PEM) to trust for mqtts:// and wss:// [default: the system's]
    #[arg(long, value_name = "PATH", help_heading = TLS)]
    pub cafile: Option<PathBuf>,

    /// Client certificate chain (PEM) for brokers that require one; needs --key
    #[arg(long, value_name = "PATH", help_heading = TLS)]
    pub cert: Option<PathBuf>,

    /// Private key of --cert (PEM: PKCS#8, PKCS#1 or SEC1)
    #[arg(long, value_name = "PATH", help_heading = TLS)]
    pub key: Option<PathBuf>,

    /// Do not check the broker's certificate (says so on stderr every time)
    ///
    /// The connection is still encrypted, but anyone in between can read and change it.
    #[arg(long, help_heading = TLS)]
    pub insecure: bool,

    #[arg(short, long, value_name = "0|1|2", default_value_t = crate::defaults::QOS,
          help_heading = CONNECTION,
          value_parser = clap::value_parser!(u8).range(0..=2),
          help = help::short(help::qos()), long_help = help::qos())]
    pub qos: u8,

    /// Client identifier [default: the tool's name, a dash and 12 random hex digits]
    #[arg(short = 'i', long = "client-id", value_name = "ID", help_heading = CONNECTION)]
    pub client_id: Option<String>,

    /// Keep-alive interval in seconds (0 disables it)
    ///
    /// When nothing was sent for this long, a PINGREQ is sent; a broker that does not
    /// answer within another interval counts as gone.
    #[arg(short = 'k', long, value_name = "SECS", default_value_t = 30,
          help_heading = CONNECTION)]
    pub keepalive: u16,

    #[arg(long, value_name = "SECS", default_value = "10", value_parser = parse_secs,
          help_heading = CONNECTION,
          help = help::short(help::connect_timeout()), long_help = help::connect_timeout())]
    pub connect_timeout: Duration,

    #[arg(short = 'V', long = "mqtt-version", value_name = "auto|3|5", default_value = "auto",
          help_heading = CONNECTION,
          value_parser = parse_version,
          help = help::short(help::mqtt_version()), long_help = help::mqtt_version())]
    pub mqtt_version: VersionChoice,

    /// Use the settings of profile NAME of the config file
    ///
    /// The config file is $XDG_CONFIG_HOME/mqttchat/config.toml (by default
    /// ~/.config/mqttchat/config.toml), in TOML: its top-level keys apply to every run, a
    /// [profile.NAME] table on top of them with this option. Flags and the environment win
    /// over both. See FILES.
    #[arg(long, value_name = "NAME", env = "CHAT_PROFILE", hide_env_values = true,
          help_heading = PROFILES)]
    pub profile: Option<String>,

    /// Read the config file FILE instead of the default one
    #[arg(long, value_name = "FILE", conflicts_with = "no_config", help_heading = PROFILES)]
    pub config: Option<PathBuf>,

    /// Read no config file
    #[arg(long, help_heading = PROFILES)]
    pub no_config: bool,

    /// Print the settings in effect, and where each comes from, and exit
    ///
    /// Secrets are never printed: a password shows as set or not.
    #[arg(long, help_heading = PROFILES)]
    pub show_config: bool,

    /// The password of the config file (`password`), when no flag or variable gives one.
    #[arg(skip)]
    pub password_from_config: Option<crate::mqtt::wire::Secret>,

    /// More log output on stderr (repeat for more; RUST_LOG overrides)
    #[arg(short, long, action = ArgAction::Count, help_heading = OTHER)]
    pub verbose: u8,

    #[command(flatten)]
    pub about: About,
}

/// Which options of a run were given, on the command line or in the environment, rather
/// than left at their defaults: what the config file may not override.
pub struct Given(clap::ArgMatches);

impl Given {
    /// Whether the option `id` (its field name) was given.
    pub fn explicit(&self, id: &str) -> bool {
        use clap::parser::ValueSource;
        matches!(
            self.0.value_source(id),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        )
    }

    /// Whether the option `id` was given on the command line (not in the environment).
    pub fn on_command_line(&self, id: &str) -> bool {
        self.0.value_source(id) == Some(clap::parser::ValueSource::CommandLine)
    }
}

/// `--proxy`'s URL as given: it may hold a password, so `Debug` shows it without.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyUrl(pub String);

impl std::fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", crate::mqtt::proxy::redact(&self.0))
    }
}

/// Parses a tool's command line (exiting on errors and for `--help`, as clap does), and
/// keeps where each value came from.
pub fn parse<T: Parser>() -> (T, Given) {
    let matches = T::command().get_matches();
    let args = T::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    (args, Given(matches))
}

/// `--version`, `--completions` and `--help`, in every tool, last in the help.
#[derive(Args, Debug, Clone)]
pub struct About {
    /// Print the version and exit
    #[arg(long, action = ArgAction::Version, help_heading = OTHER)]
    pub version: Option<bool>,

    /// Print a completion script for SHELL (bash, zsh, fish, ...) and exit
    ///
    /// For example, for bash: chat-sub --completions bash >
    /// ~/.local/share/bash-completion/completions/chat-sub
    #[arg(long, value_name = "SHELL", value_enum, help_heading = OTHER)]
    pub completions: Option<clap_complete::Shell>,

    /// Print help (more with --help)
    #[arg(short = 'h', long, action = ArgAction::Help, help_heading = OTHER)]
    pub help: Option<bool>,
}

/// Publish lines from stdin to an MQTT topic, one message per line.
///
/// Each line is published as soon as it is read, wrapped in a JSON envelope
/// ({"id","from","ts","text"}) unless --raw is given. chat-pub exits 0 only when the
/// broker acknowledged every message (QoS 1 and 2).
#[derive(Parser, Debug, Clone)]
#[command(name = "chat-pub", version, disable_version_flag = true, disable_help_flag = true,
          after_help = help::pub_examples())]
pub struct PubArgs {
    /// The topic to publish to (no wildcards); optional with --json
    #[arg(value_name = "TOPIC",
          required_unless_present_any = ["json", "completions", "show_config", "fingerprint"])]
    pub topic: Option<String>,

    /// The sender's nick, the envelope's "from" [default: $USER, else anonymous]
    #[arg(long, value_name = "NAME", env = "CHAT_NICK", hide_env_values = true,
          help_heading = CHAT)]
    pub nick: Option<String>,

    /// Publish TEXT and do not read stdin (repeatable, sent in order)
    ///
    /// Each TEXT is one message, handled like one line of input (so with --json it is a
    /// JSON object). An empty TEXT sends an empty message.
    #[arg(short = 'm', long = "message", value_name = "TEXT", help_heading = CHAT)]
    pub messages: Vec<String>,

    /// Set the retain flag on every message
    #[arg(short = 'r', long, help_heading = CHAT)]
    pub retain: bool,

    /// Publish each line's bytes as they are, without an envelope
    ///
    /// Binary-safe: only the newline that ends a line is removed (a trailing \r is kept).
    /// Empty lines are still skipped unless --keep-empty is given too.
    #[arg(long, conflicts_with = "json", help_heading = INPUT)]
    pub raw: bool,

    /// Each input line is a JSON object, as chat-sub --json prints them
    ///
    /// Keys: text (required), and optionally topic, from, ts, id, qos, retain,
    /// payload_base64, properties (MQTT 5, as chat-sub --json prints them). topic, qos and retain override TOPIC, -q and -r for that line;
    /// from, ts and id are kept as given (absent ones are filled in); a line whose from,
    /// ts and id are all null is published raw (payload_base64's bytes, else text).
    /// Lines with an "event" key are skipped. Other keys are ignored.
    #[arg(long, help_heading = INPUT)]
    pub json: bool,

    /// Also publish empty lines (they are skipped by default)
    #[arg(long, help_heading = INPUT)]
    pub keep_empty: bool,

    #[arg(long, value_name = "BYTES", value_parser = parse_size, help_heading = INPUT,
          help = help::short(help::pub_max_size()), long_help = help::pub_max_size())]
    pub max_size: Option<usize>,

    /// After end of input, how long to wait for the broker's acknowledgements
    #[arg(long, value_name = "SECS", default_value = "30", value_parser = parse_secs,
          help_heading = CONNECTION, display_order = LAST)]
    pub drain_timeout: Duration,

    /// Add the MQTT 5 user property KEY=VALUE to every message (repeatable)
    ///
    /// Properties travel beside the payload: in clear, even in an encrypted room. They
    /// need MQTT 5: with -V 3 they are a usage error, and a broker that speaks MQTT 3.1.1
    /// only ends the run (exit status 3) before anything is sent. With --json, a line's
    /// own "properties" are sent too: its user properties first, then these; its other
    /// properties win over the flags.
    #[arg(long = "user-property", value_name = "KEY=VALUE", value_parser = parse_user_property,
          help_heading = PROPERTIES)]
    pub user_properties: Vec<(String, String)>,

    /// The MQTT 5 content type of every message, e.g. text/plain
    #[arg(long, value_name = "TYPE", help_heading = PROPERTIES)]
    pub content_type: Option<String>,

    /// How long the broker keeps each message for subscribers that did not get it yet
    ///
    /// The MQTT 5 message expiry interval, in whole seconds: a retained message or one
    /// queued for an offline session is dropped once it has waited this long.
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u32),
          help_heading = PROPERTIES)]
    pub message_expiry: Option<u32>,

    /// The MQTT 5 response topic of every message: where its reader should answer
    #[arg(long, value_name = "TOPIC", help_heading = PROPERTIES)]
    pub response_topic: Option<String>,

    /// The MQTT 5 correlation data of every message, as TEXT, to pair answers with it
    #[arg(long, value_name = "TEXT", help_heading = PROPERTIES)]
    pub correlation_data: Option<String>,

    /// Do not announce the nick as online in TOPIC
    ///
    /// While chat-pub reads a room from stdin (envelope mode, not with -m, --raw or
    /// --json), its nick is online there: a retained join on the room's presence topic,
    /// and a will that turns it offline if chat-pub dies (see PRESENCE in chat-sub(1)).
    /// With --dialect mqttchat-py, the original's notice at start is not sent either.
    #[arg(long, help_heading = CHAT)]
    pub no_presence: bool,

    /// Payloads to send: mqttchat (the JSON envelope) or mqttchat-py
    ///
    /// mqttchat-py speaks the original MQTTChat, the Python program this project descends
    /// from: each line is published as NICK,LINE, and when chat-pub starts, the original's
    /// notice "noticia,NICK entrou neste tópico" (not with --no-presence). With --json, a
    /// line's from (else --nick) and text are sent as FROM,TEXT; its ts and id have no
    /// place there. A nick with a comma cannot be carried. Not with --raw, nor with a room
    /// secret: the original cannot decrypt.
    #[arg(long, value_name = "DIALECT", value_enum, default_value = "mqttchat",
          help_heading = CHAT)]
    pub dialect: DialectChoice,

    /// The options both tools share, after chat-pub's own in the help.
    #[command(flatten)]
    pub common: Common,
}

/// Print the messages of MQTT topics as lines: text for people, JSON for programs.
///
/// Text lines are "HH:MM:SS from: text" (prefixed by "[topic] " when TOPIC has a
/// wildcard or several are given); control characters are shown escaped, so each message
/// is one line and nothing can take over the terminal.
#[derive(Parser, Debug, Clone)]
#[command(name = "chat-sub", version, disable_version_flag = true, disable_help_flag = true,
          after_help = help::sub_examples())]
pub struct SubArgs {
    /// Topics to subscribe to; the wildcards + and # are allowed
    #[arg(value_name = "TOPIC",
          required_unless_present_any = ["completions", "show_config", "fingerprint", "trust"])]
    pub topics: Vec<String>,

    /// Your nick, for --hide-own [default: $CHAT_NICK, else $USER]
    #[arg(long, value_name = "NAME", env = "CHAT_NICK", hide_env_values = true,
          help_heading = CHAT)]
    pub nick: Option<String>,

    /// Hide your own messages (those from --nick)
    ///
    /// chat-pub and chat-sub are separate connections, so this is a filter on the nick
    /// (under MQTT 5 the subscription also asks the broker not to send back what this
    /// connection publishes, which is nothing).
    #[arg(long, help_heading = CHAT)]
    pub hide_own: bool,

    /// Hide messages (and presence) from NICK (repeatable)
    #[arg(long, value_name = "NICK", help_heading = CHAT)]
    pub ignore: Vec<String>,

    #[arg(long, conflicts_with_all = ["count", "session", "format", "raw"], help_heading = CHAT,
          help = help::short(help::who()), long_help = help::who())]
    pub who: bool,

    /// Do not show joins and leaves
    #[arg(long, help_heading = CHAT)]
    pub no_presence: bool,

    /// Accept FINGERPRINT as the key of NICK in ROOM, and exit
    ///
    /// In an encrypted room, chat-sub remembers the key each nick was first seen with
    /// (in $XDG_DATA_HOME/mqttchat/known_members) and marks every line signed with
    /// another key as KEY CHANGED until you accept the new one here, having checked the
    /// fingerprint with its owner (chat-pub --fingerprint).
    #[arg(long, num_args = 3, value_names = ["NICK", "FINGERPRINT", "ROOM"],
          conflicts_with_all = ["who", "fingerprint"], help_heading = CHAT)]
    pub trust: Option<Vec<String>>,

    #[arg(long, value_name = "NAME", conflicts_with = "client_id", help_heading = CHAT,
          help = help::short(help::session()), long_help = help::session())]
    pub session: Option<String>,

    /// Payloads to read: mqttchat (the JSON envelope) or mqttchat-py too
    ///
    /// mqttchat-py reads the original MQTTChat's payloads beside envelopes and raw
    /// messages: NAME,TEXT is a message from NAME ("HH:MM:SS NAME: TEXT"; in --json from
    /// and text, with ts and id null; {from} and {text} in -F), and noticia,TEXT a notice,
    /// shown as a join is ("HH:MM:SS * TEXT"; in --json {"event":"notice",...}), not by -F,
    /// not with --no-presence, and not counted by --count. Not with --raw, nor with a room
    /// secret: the original cannot decrypt.
    #[arg(long, value_name = "DIALECT", value_enum, default_value = "mqttchat",
          help_heading = CHAT)]
    pub dialect: DialectChoice,

    /// Print one JSON object per message
    ///
    /// Keys: topic, from, text, ts, id, qos, retain, received, and payload_base64 when the
    /// payload is not UTF-8. from, ts and id are null for a raw (non-envelope) message.
    #[arg(long, conflicts_with_all = ["format", "raw"], help_heading = OUTPUT)]
    pub json: bool,

    /// Print each message with a template
    ///
    /// Placeholders: {topic} {from} {text} {time} {ts} {received} {id} {qos} {retain},
    /// and of MQTT 5 properties {content_type} and {user:KEY} (the user property KEY; its
    /// values joined by ", " when it repeats); {{ and }} are literal braces; \t, \n and \\ are a tab, a newline and a backslash.
    /// A newline ends each message.
    #[arg(short = 'F', long, value_name = "TEMPLATE", conflicts_with = "raw",
          help_heading = OUTPUT)]
    pub format: Option<String>,

    /// Print each payload's bytes exactly, then a newline
    #[arg(long, help_heading = OUTPUT)]
    pub raw: bool,

    /// Colour nicks: auto (on a terminal, unless NO_COLOR is set), always or never
    #[arg(long, value_name = "WHEN", default_value = "auto", value_enum, help_heading = OUTPUT)]
    pub color: ColorWhen,

    /// Exit after printing N messages
    #[arg(short = 'n', long, value_name = "N", help_heading = OUTPUT)]
    pub count: Option<u64>,

    /// Exit after SECS, counted from the first connection
    ///
    /// With --count, exit with status 1 if fewer than N messages arrived by then.
    #[arg(short = 'W', long, value_name = "SECS", value_parser = parse_secs,
          help_heading = OUTPUT)]
    pub timeout: Option<Duration>,

    /// Skip messages delivered because they were retained
    #[arg(short = 'R', long, help_heading = OUTPUT)]
    pub no_retained: bool,

    #[arg(long, value_name = "BYTES", value_parser = parse_size, help_heading = OUTPUT,
          help = help::short(help::sub_max_size()), long_help = help::sub_max_size())]
    pub max_size: Option<usize>,

    /// The options both tools share, after chat-sub's own in the help.
    #[command(flatten)]
    pub common: Common,
}

/// The headings that group the options in the help and the man pages, everyday ones
/// first.
const CHAT: &str = "Chat";
const INPUT: &str = "Input";
const OUTPUT: &str = "Output";
const CONNECTION: &str = "Connection";
pub(crate) const TLS: &str = "TLS";
const PROFILES: &str = "Profiles";
const PROPERTIES: &str = "Message properties (MQTT 5)";
pub(crate) const OTHER: &str = "Other";
/// The display order of an option that goes after the shared ones of its heading.
const LAST: usize = 1000;

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn definitions_are_consistent() {
        PubArgs::command().debug_assert();
        SubArgs::command().debug_assert();
        BrokerArgs::command().debug_assert();
    }
}
