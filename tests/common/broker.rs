//! Test brokers: the embedded chat-broker (always there) and mosquitto (when installed),
//! each started by the test on a free 127.0.0.1 port and killed on drop.
//!
//! [`each_broker!`] writes a test once and runs it against both. What MQTT leaves to the
//! broker, [`Broker`] says in one place ([`Broker::delivered_qos`]) instead of in every
//! assertion.
//!
//! Without mosquitto the mosquitto variants pass as skipped, so `cargo test` works on a
//! machine with nothing installed. With `CI` or `MQTTCHAT_REQUIRE_MOSQUITTO` set in the
//! environment (as .ci/run does), a missing mosquitto fails them instead; so does any
//! other program CI installs ([`have_program`]: nats-server, openssl, …).

use super::{LISTEN_WAIT, TempDir, holds_within, send_signal, wait_until};
use std::process::{Child, Command, Stdio};

/// Which broker implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// chat-broker, the project's own broker.
    Embedded,
    /// mosquitto 2.x, the reference broker.
    Mosquitto,
}

/// Settings every mosquitto gets: the default `max_queued_messages` (1000) silently drops
/// messages to a subscriber that falls behind, which would hide our own losses.
const MOSQUITTO_BASE: &str = "allow_anonymous true\npersistence false\n\
    max_queued_messages 10000000\nset_tcp_nodelay true\nlog_dest stderr\n";

/// A running test broker.
pub struct Broker {
    pub kind: Kind,
    pub port: u16,
    child: Child,
    dir: TempDir,
    /// mosquitto's extra config lines (kept for a restart).
    extra: String,
    /// chat-broker's extra flags (kept for a restart).
    flags: Vec<String>,
}

/// Whether the environment demands the programs CI installs (`CI` or
/// `MQTTCHAT_REQUIRE_MOSQUITTO` set, as .ci/run does): then a missing one is a failure of
/// the tests that need it, never a skip.
pub fn tools_required() -> bool {
    std::env::var_os("CI").is_some() || std::env::var_os("MQTTCHAT_REQUIRE_MOSQUITTO").is_some()
}

/// Whether an external program can be run here (what it answers does not matter).
pub fn installed(cmd: &str) -> bool {
    Command::new(cmd)
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Whether tests that need mosquitto (the broker) can run; false means "skip". Panics
/// when it is missing but required.
pub fn have_mosquitto() -> bool {
    have("mosquitto")
}

/// Whether tests that need mosquitto_pub/mosquitto_sub can run (see [`have_mosquitto`]).
pub fn have_mosquitto_clients() -> bool {
    have("mosquitto_pub") && have("mosquitto_sub")
}

fn have(cmd: &str) -> bool {
    have_program(cmd, "apt-get install -y mosquitto mosquitto-clients")
}

/// Whether `cmd` runs here; false means "skip" (with a line on stderr), except where the
/// environment demands the programs CI installs ([`tools_required`]): then its absence
/// fails, saying `install`.
pub fn have_program(cmd: &str, install: &str) -> bool {
    if installed(cmd) {
        return true;
    }
    assert!(
        !tools_required(),
        "{cmd} is required here (CI is set) but not installed: {install}"
    );
    eprintln!("skipped: {cmd} is not installed");
    false
}

/// The chat-broker binary, absent when built without the `broker` feature (cargo names
/// the binary's path even then, and an earlier build may have left one behind).
pub fn chat_broker_bin() -> Option<&'static str> {
    option_env!("CARGO_BIN_EXE_chat-broker").filter(|_| cfg!(feature = "broker"))
}

/// Whether a broker of this kind can be started here (false: skip the test).
pub fn available(kind: Kind) -> bool {
    match kind {
        Kind::Embedded => {
            let there = chat_broker_bin().is_some();
            if !there {
                eprintln!("skipped: built without chat-broker (feature `broker`)");
            }
            there
        }
        Kind::Mosquitto => have_mosquitto(),
    }
}

impl Broker {
    /// Starts a broker of this kind with default settings.
    pub fn start(kind: Kind) -> Broker {
        match kind {
            Kind::Embedded => Broker::embedded(),
            Kind::Mosquitto => Broker::mosquitto_with(""),
        }
    }

    /// Another broker of the same kind (e.g. the far side of a relay).
    pub fn another(&self) -> Broker {
        Broker::start(self.kind)
    }

    /// chat-broker on a port of its choosing (`--listen 127.0.0.1:0`), read back from the
    /// line it prints at start.
    pub fn embedded() -> Broker {
        Broker::embedded_on(0, &[])
    }

    /// chat-broker as [`Broker::embedded`], with more `flags` after `-v --listen
    /// 127.0.0.1:0` (`--password-file FILE`, `--tls-listen 127.0.0.1:0`, `-vv`, …). The
    /// plain listener is [`Broker::port`]; [`Broker::url_of`] names the others.
    #[cfg(feature = "broker")]
    pub fn embedded_with(flags: &[&str]) -> Broker {
        let flags: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
        Broker::embedded_on(0, &flags)
    }

    fn embedded_on(port: u16, flags: &[String]) -> Broker {
        let bin = chat_broker_bin().expect("chat-broker was not built (feature `broker`)");
        let dir = TempDir::new("chat-broker");
        let log_path = dir.path().join("broker.log");
        let log = std::fs::File::create(&log_path).expect("log file");
        let mut child = Command::new(bin)
            .args(["-v", "--listen", &format!("127.0.0.1:{port}")])
            .args(flags)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start chat-broker");
        let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
        let (mut port, mut exited) = (None, None);
        wait_until(
            "chat-broker says where it listens",
            || {
                port = listening_port(&log());
                exited = child.try_wait().ok().flatten();
                port.is_some() || exited.is_some()
            },
            log,
        );
        match (port, exited) {
            (Some(port), _) => Broker {
                kind: Kind::Embedded,
                port,
                child,
                dir,
                extra: String::new(),
                flags: flags.to_vec(),
            },
            (None, status) => panic!("chat-broker exited ({status:?}) at start:\n{}", log()),
        }
    }

    /// mosquitto with extra config lines (e.g. `max_packet_size 100000`).
    pub fn mosquitto_with(extra: &str) -> Broker {
        Broker::mosquitto_custom(0, |_| extra.to_string()).0
    }

    /// mosquitto with `extra_ports` more free ports, and config lines made from all the
    /// ports (`ports[0]` is the main listener, already declared on 127.0.0.1): options of
    /// the main listener first, then further `listener` sections. Returns the ports too.
    pub fn mosquitto_custom(
        extra_ports: usize,
        config: impl Fn(&[u16]) -> String,
    ) -> (Broker, Vec<u16>) {
        let dir = TempDir::new("mosquitto");
        for _ in 0..20 {
            let ports: Vec<u16> = (0..=extra_ports).map(|_| super::free_port()).collect();
            let extra = config(&ports);
            if let Some(child) = start_mosquitto(&dir, &ports, &extra) {
                let broker = Broker {
                    kind: Kind::Mosquitto,
                    port: ports[0],
                    child,
                    dir,
                    extra,
                    flags: Vec::new(),
                };
                return (broker, ports);
            }
        }
        panic!("mosquitto did not start; log:\n{}", read_log(&dir));
    }

    /// `mqtt://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    /// The URL of chat-broker's first listener of `scheme` (`mqtt`, `mqtts`, `ws` or
    /// `wss`), as its start line names it: `mqtts://127.0.0.1:PORT`.
    #[cfg(feature = "broker")]
    #[track_caller]
    pub fn url_of(&self, scheme: &str) -> String {
        let log = self.log();
        let urls = listener_urls(&log);
        let prefix = format!("{scheme}://");
        let found = urls.into_iter().find(|u| u.starts_with(&prefix));
        found.unwrap_or_else(|| panic!("chat-broker does not listen on {scheme}://:\n{log}"))
    }

    /// Waits until the broker's log says `needle` (chat-broker's `-v` output).
    #[cfg(feature = "broker")]
    #[track_caller]
    pub fn wait_log(&self, needle: &str) {
        wait_until(
            &format!("the broker's log says {needle:?}"),
            || self.log().contains(needle),
            || self.log(),
        );
    }

    /// The QoS at which a subscriber at `subscribed` receives a message published at
    /// `published`: the lower of the two, as MQTT says.
    pub fn delivered_qos(&self, published: u8, subscribed: u8) -> u8 {
        published.min(subscribed)
    }

    /// The broker's process id.
    #[cfg(feature = "broker")]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal (`libc::SIGSTOP`, `SIGCONT`, `SIGTERM`, …) to the broker process.
    pub fn signal(&self, sig: i32) {
        send_signal(self.child.id(), sig);
    }

    /// The broker's log so far (mosquitto's log, or chat-broker's `-v` output).
    pub fn log(&self) -> String {
        read_log(&self.dir)
    }

    /// Stops the broker as an administrator would (SIGTERM) and waits until it is gone.
    /// mosquitto saves its persistence file, if configured, on the way out.
    pub fn stop(&mut self) {
        self.signal(libc::SIGTERM);
        let _ = self.child.wait();
    }

    /// Starts a stopped broker again on the same port (and, for mosquitto, with the same
    /// configuration and persistence directory).
    pub fn start_again(&mut self) {
        match self.kind {
            Kind::Embedded => {
                let fresh = Broker::embedded_on(self.port, &self.flags);
                *self = fresh;
            }
            Kind::Mosquitto => {
                self.child = start_mosquitto(&self.dir, &[self.port], &self.extra)
                    .unwrap_or_else(|| panic!("mosquitto did not restart:\n{}", self.log()));
            }
        }
    }

    /// A broker of this kind on a given port (e.g. one a tool is already trying to reach).
    pub fn start_on(kind: Kind, port: u16) -> Broker {
        match kind {
            Kind::Embedded => Broker::embedded_on(port, &[]),
            Kind::Mosquitto => {
                let dir = TempDir::new("mosquitto");
                let child = start_mosquitto(&dir, &[port], "")
                    .unwrap_or_else(|| panic!("mosquitto did not start on {port}"));
                Broker {
                    kind,
                    port,
                    child,
                    dir,
                    extra: String::new(),
                    flags: Vec::new(),
                }
            }
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_log(dir: &TempDir) -> String {
    ["mosquitto.log", "broker.log"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(dir.path().join(f)).ok())
        .collect()
}

/// The port in chat-broker's "listening on 127.0.0.1:PORT" line.
fn listening_port(log: &str) -> Option<u16> {
    let rest = log.split("listening on 127.0.0.1:").nth(1)?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Every listener of chat-broker's start line ("listening on 127.0.0.1:1883,
/// mqtts://127.0.0.1:8883 (MQTT 3.1.1 and 5)") as a URL; a plain one gets `mqtt://`.
#[cfg(feature = "broker")]
pub fn listener_urls(log: &str) -> Vec<String> {
    let Some(rest) = log.split("listening on ").nth(1) else {
        return Vec::new();
    };
    let names = rest.split(" (MQTT").next().unwrap_or_default();
    (names.split(", "))
        .map(|n| match n.contains("://") {
            true => n.to_string(),
            false => format!("mqtt://{n}"),
        })
        .collect()
}

/// Starts mosquitto with its main listener on `ports[0]`; None if it did not come up
/// listening on every port itself (e.g. a port was taken).
fn start_mosquitto(dir: &TempDir, ports: &[u16], extra: &str) -> Option<Child> {
    let port = ports[0];
    let conf = dir.path().join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!("listener {port} 127.0.0.1\n{MOSQUITTO_BASE}{extra}\n"),
    )
    .expect("write mosquitto.conf");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.path().join("mosquitto.log"))
        .expect("log file");
    let mut child = Command::new("mosquitto")
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start mosquitto");
    // mosquitto 2.0.11 binds websockets listeners to every address, whatever the config
    // says, so the extra ports are checked on any address.
    let extra_ready = |child: &mut Child| {
        ports[1..]
            .iter()
            .all(|&p| super::listens_on_port(child.id(), p))
    };
    if super::wait_for_port(port, &mut child)
        && holds_within(LISTEN_WAIT, || extra_ready(&mut child))
    {
        return Some(child);
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// Defines a test that runs once per broker, as `NAME::embedded` and `NAME::mosquitto`:
///
/// ```ignore
/// each_broker! {
///     fn round_trip(broker) { … uses broker: &Broker … }
/// }
/// ```
#[macro_export]
macro_rules! each_broker {
    ($(#[$meta:meta])* fn $name:ident($broker:ident) $body:block $($rest:tt)*) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[allow(unused_variables)]
            fn body($broker: &$crate::common::Broker) $body

            #[test]
            fn embedded() {
                if $crate::common::available($crate::common::Kind::Embedded) {
                    body(&$crate::common::Broker::start($crate::common::Kind::Embedded));
                }
            }

            #[test]
            fn mosquitto() {
                if $crate::common::available($crate::common::Kind::Mosquitto) {
                    body(&$crate::common::Broker::start($crate::common::Kind::Mosquitto));
                }
            }
        }
        $crate::each_broker! { $($rest)* }
    };
    () => {};
}
